//! A `tracing` layer recording the spans on target `hs::span` (feature
//! `test-util`), for tests of the spans' contract: name, level, fields (as
//! made and as recorded later), parent, `follows_from` links and the order
//! they close in.
//!
//! A test that runs its servers and clients on a current-thread runtime
//! installs it for its thread ([`capture`]): it sees every span they make,
//! and tests running on other threads do not mix.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::DefaultGuard;
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::observe::targets::SPAN as TARGET;

/// One span as recorded; `serial` is its index in [`SpanLog::spans`]
/// (tracing reuses ids, serials are never reused).
#[derive(Debug, Clone)]
pub struct SpanRecord {
    /// Its index in [`SpanLog::spans`].
    pub serial: usize,
    /// The span's name.
    pub name: &'static str,
    /// The span's level.
    pub level: Level,
    /// Every field recorded, as text.
    pub fields: BTreeMap<String, String>,
    /// The parent's serial, when the parent was recorded.
    pub parent: Option<usize>,
    /// The serials of the spans it follows from (links).
    pub follows_from: Vec<usize>,
    /// Its place in the order spans closed, once closed.
    pub closed: Option<usize>,
}

impl SpanRecord {
    /// A field's value; `None` when it was never recorded.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

#[derive(Default)]
struct Inner {
    /// Record only the spans of this side (and those with no `hs.side`).
    side: Option<&'static str>,
    spans: Vec<SpanRecord>,
    /// Live span ids to serials.
    live: HashMap<Id, usize>,
    closes: usize,
}

/// The recorder; clones share one log.
#[derive(Clone, Default)]
#[allow(missing_debug_implementations)]
pub struct SpanLog(Arc<Mutex<Inner>>);

/// Installs a recorder for the current thread until the guard is dropped.
pub fn capture() -> (SpanLog, DefaultGuard) {
    capture_log(SpanLog::default())
}

/// [`capture`], keeping only the spans of one side (`"server"` or
/// `"client"`) and the spans that name no side (`haystack.dispatch`): the
/// clients of a server's test make spans of their own.
pub fn capture_side(side: &'static str) -> (SpanLog, DefaultGuard) {
    let log = SpanLog::default();
    log.0.lock().side = Some(side);
    capture_log(log)
}

fn capture_log(log: SpanLog) -> (SpanLog, DefaultGuard) {
    let subscriber = tracing_subscriber::registry().with(log.clone());
    let guard = tracing::subscriber::set_default(subscriber);
    (log, guard)
}

impl SpanLog {
    /// Every span recorded so far, in the order they were made.
    pub fn spans(&self) -> Vec<SpanRecord> {
        self.0.lock().spans.clone()
    }

    /// The spans named `name`.
    pub fn named(&self, name: &str) -> Vec<SpanRecord> {
        self.spans()
            .into_iter()
            .filter(|span| span.name == name)
            .collect()
    }

    /// Waits (bounded) until `done` holds for the spans recorded; the
    /// servers close some spans on their own tasks (a WebSocket request's
    /// once its answer is written).
    pub async fn wait_until(&self, done: impl Fn(&[SpanRecord]) -> bool) -> bool {
        for _ in 0..500 {
            if done(&self.spans()) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        done(&self.spans())
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `field::display` values arrive here, written with their Display.
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S> Layer<S> for SpanLog
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let meta = attrs.metadata();
        if meta.target() != TARGET {
            return;
        }
        // The registry has resolved the parent: explicit, or the current span.
        let parent_id = ctx
            .span(id)
            .and_then(|span| span.parent())
            .map(|parent| parent.id());
        let mut inner = self.0.lock();
        let parent = parent_id.and_then(|parent| inner.live.get(&parent).copied());
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let other_side = fields
            .get("hs.side")
            .is_some_and(|side| inner.side.is_some_and(|kept| side != kept));
        if other_side {
            return;
        }
        let serial = inner.spans.len();
        inner.spans.push(SpanRecord {
            serial,
            name: meta.name(),
            level: *meta.level(),
            fields,
            parent,
            follows_from: Vec::new(),
            closed: None,
        });
        inner.live.insert(id.clone(), serial);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut inner = self.0.lock();
        if let Some(&serial) = inner.live.get(id) {
            values.record(&mut Fields(&mut inner.spans[serial].fields));
        }
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, _ctx: Context<'_, S>) {
        let mut inner = self.0.lock();
        let (Some(&serial), Some(&from)) = (inner.live.get(id), inner.live.get(follows)) else {
            return;
        };
        inner.spans[serial].follows_from.push(from);
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        let mut inner = self.0.lock();
        if let Some(serial) = inner.live.remove(&id) {
            let order = inner.closes;
            inner.closes += 1;
            inner.spans[serial].closed = Some(order);
        }
    }
}
