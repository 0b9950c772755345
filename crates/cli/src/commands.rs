//! The client commands: `hs about`, `hs ops`, `hs nav`, `hs read`, `hs his`,
//! `hs write`, `hs watch`.

use hs_core::observe::targets;
use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

use hs_core::observe::ErrorKind;
use hs_core::ops::ReadRequest;
use hs_core::value::{Grid, Ref, Value};
use hs_prometheus::Side;

use crate::cli::{
    AboutArgs, ClientArgs, EventLog, HisArgs, NavArgs, OpsArgs, OutputFormat, ReadArgs, WatchArgs,
    WatchMode, WriteArgs,
};
use crate::client::{Client, ConnectOptions, Transport, parse_ref};
use crate::error::CliError;
use crate::observers::{ObserverChoice, Observers};
use crate::output::{self, outln};

/// A connected client and the observers attached to it.
struct Session {
    client: Client,
    observers: Observers,
    format: OutputFormat,
}

impl Session {
    async fn open(args: &ClientArgs) -> Result<Session, CliError> {
        Self::open_with(args, None).await
    }

    /// [`open`](Self::open); over WebSocket with `reconnect`, a client that
    /// reconnects with that backoff whenever its connection ends.
    async fn open_with(
        args: &ClientArgs,
        reconnect: Option<hs_core::client::Backoff>,
    ) -> Result<Session, CliError> {
        let observers = Observers::build(
            ObserverChoice {
                event_log: EventLog::Default,
                stats: args.stats,
                metrics: false,
            },
            Side::Client,
            None,
            None,
            &[],
        );
        let client = Client::connect(&ConnectOptions {
            url: args.url.clone(),
            credentials: credentials(args)?,
            timeout: args.timeout,
            observer: match crate::client::normalise_url(&args.url)?.0 {
                crate::client::Transport::Http => observers.http.clone(),
                crate::client::Transport::Ws => observers.ws.clone(),
            },
            wire: args.format.wire(),
            token: args.token.clone().map(hs_core::auth::AuthToken::from),
            ws_auth: args.ws_auth,
            reconnect,
            tls: crate::tls::ClientTls::load(&args.tls)?,
        })
        .await?;
        Ok(Session {
            client,
            observers,
            format: args.format,
        })
    }

    fn print(&self, grid: &Grid, columns: &[String]) -> Result<(), CliError> {
        print_text(&output::render(grid, self.format, columns)?)
    }

    async fn close(self) {
        self.client.finish().await;
        if let Some(stats) = &self.observers.stats {
            eprintln!("{}", stats.snapshot());
        }
    }
}

/// `--user` and `--password`; a user without a password is an error unless
/// a `--token` is given (then HS_USER may well be exported for other uses).
fn credentials(args: &ClientArgs) -> Result<Option<(String, String)>, CliError> {
    match (&args.user, &args.password, &args.token) {
        (Some(user), Some(password), _) => Ok(Some((user.clone(), password.clone()))),
        (Some(_), None, None) => Err(CliError::Usage(
            "--user needs a password: --password or the HS_PASSWORD environment variable"
                .to_owned(),
        )),
        _ => Ok(None),
    }
}

/// `hs about`: as a table, one line per tag (the grid has one wide row).
pub(crate) async fn about(args: AboutArgs) -> Result<(), CliError> {
    let session = Session::open(&args.client).await?;
    let result = session.client.about().await.map_err(CliError::from);
    let printed = result.and_then(|grid| match session.format {
        OutputFormat::Table => print_text(&output::table(&transpose(&grid), &[])),
        _ => session.print(&grid, &[]),
    });
    session.close().await;
    printed
}

/// A grid's first row as a grid of `tag`, `value` rows (one per non-empty
/// cell), values as the table prints them.
fn transpose(grid: &Grid) -> Grid {
    let rows = grid.rows.first().map_or_else(Vec::new, |row| {
        grid.columns
            .iter()
            .filter_map(|column| {
                let value = row.get(&column.name)?;
                let mut line = hs_core::value::Dict::new();
                line.insert("tag".to_owned(), Value::make_str(&column.name));
                line.insert("value".to_owned(), Value::make_str(&output::cell(value)));
                Some(line)
            })
            .collect()
    });
    Grid::make_from_dicts(rows)
}

/// `hs ops`.
pub(crate) async fn ops(args: OpsArgs) -> Result<(), CliError> {
    let session = Session::open(&args.client).await?;
    let result = session.client.ops().await.map_err(CliError::from);
    let printed = result.and_then(|grid| session.print(&grid, &[]));
    session.close().await;
    printed
}

/// `hs nav`.
pub(crate) async fn nav(args: NavArgs) -> Result<(), CliError> {
    let session = Session::open(&args.client).await?;
    // nav ids are Refs on hs and haystack-py; accept them with or without the @.
    let nav_id = args
        .nav_id
        .as_deref()
        .map(|id| id.trim().trim_start_matches('@'));
    let result = session.client.nav(nav_id).await.map_err(CliError::from);
    let printed = result.and_then(|grid| session.print(&grid, &args.columns));
    session.close().await;
    printed
}

/// `hs read`. By id, the entities found are printed and the ids not found
/// are named in the error, which makes the exit status 1 (as `ls a b`
/// reports a missing `b` after listing `a`).
pub(crate) async fn read(args: ReadArgs) -> Result<(), CliError> {
    let session = Session::open(&args.client).await?;
    if let (true, Some(filter)) = (args.explain, &args.filter) {
        let result = explain(&session, filter, args.limit).await;
        session.close().await;
        return result;
    }
    let result = match &args.filter {
        Some(filter) => session
            .client
            .read_filter(filter, args.limit)
            .await
            .map(|grid| (grid, Vec::new()))
            .map_err(CliError::from),
        None => {
            let ids: Vec<_> = args.ids.iter().map(|id| parse_ref(id)).collect();
            session
                .client
                .read_ids(&ids)
                .await
                .map(|grid| split_unknown(grid, &ids))
                .map_err(CliError::from)
        }
    };
    let printed = result.and_then(|(grid, missing)| {
        session.print(&grid, &args.columns)?;
        if missing.is_empty() {
            Ok(())
        } else {
            Err(CliError::NotFound {
                missing,
                asked: args.ids.len(),
            })
        }
    });
    session.close().await;
    printed
}

/// `hs read --explain`: the plan from the answer's meta, then the row count.
async fn explain(session: &Session, filter: &str, limit: Option<usize>) -> Result<(), CliError> {
    let request = hs_core::ops::build::read_explain(filter, limit);
    let answer = session.client.call("read", request).await?;
    let plan = match answer
        .meta
        .as_ref()
        .and_then(|meta| meta.get(ReadRequest::EXPLAIN))
    {
        Some(Value::Str(plan)) => plan.as_str().to_owned(),
        _ => {
            return Err(CliError::Protocol(
                "the server answered the read without its plan: only an hs server explains \
                 its reads"
                    .to_owned(),
            ));
        }
    };
    let rows = answer.rows.len();
    print_text(&format!(
        "{plan}{rows} {}",
        if rows == 1 { "row" } else { "rows" }
    ))
}

/// A read-by-id answer without its placeholder rows, and the ids (as `@id`)
/// it has no entity for. Haystack answers an unknown id with an empty row;
/// matching by id rather than by position also copes with servers that
/// leave the row out.
fn split_unknown(mut grid: Grid, asked: &[Ref]) -> (Grid, Vec<String>) {
    grid.rows
        .retain(|row| matches!(row.get("id"), Some(Value::Ref(_))));
    let found: HashSet<&str> = grid
        .rows
        .iter()
        .filter_map(|row| match row.get("id") {
            Some(Value::Ref(id)) => Some(id.value()),
            _ => None,
        })
        .collect();
    let mut missing: Vec<String> = Vec::new();
    for id in asked {
        let name = format!("@{}", id.value());
        if !found.contains(id.value()) && !missing.contains(&name) {
            missing.push(name);
        }
    }
    (grid, missing)
}

/// `hs his`.
pub(crate) async fn his(args: HisArgs) -> Result<(), CliError> {
    let session = Session::open(&args.client).await?;
    let result = session
        .client
        .his_read(&parse_ref(&args.id), &args.range)
        .await
        .map_err(CliError::from);
    let printed = result.and_then(|grid| session.print(&grid, &[]));
    session.close().await;
    printed
}

/// `hs write`: writes the level, then prints the priority array.
pub(crate) async fn write(args: WriteArgs) -> Result<(), CliError> {
    let val = parse_val(&args.val)?;
    let session = Session::open(&args.client).await?;
    let id = parse_ref(&args.id);
    let result = async {
        session
            .client
            .point_write(&id, args.level, val.as_ref(), &args.who, None)
            .await?;
        Ok(session.client.point_write_array(&id).await?)
    }
    .await;
    let printed = result.and_then(|grid| session.print(&grid, &[]));
    session.close().await;
    printed
}

/// A Zinc scalar, or `None` for `null` (release the level).
pub(crate) fn parse_val(raw: &str) -> Result<Option<Value>, CliError> {
    let raw = raw.trim();
    match raw {
        "null" | "N" => return Ok(None),
        // Zinc spells booleans T and F; accept the words people type.
        "true" => return Ok(Some(Value::make_true())),
        "false" => return Ok(Some(Value::make_false())),
        _ => {}
    }
    libhaystack::encoding::zinc::decode::from_str(raw)
        .map(Some)
        .map_err(|_| {
            CliError::Usage(format!(
                "`{raw}` is not a Zinc value: try 72, 72°F, true, \"text\" or null"
            ))
        })
}

/// `hs watch`: subscribes, prints each change set, stops after `--count`
/// changes, after `--duration`, or on Ctrl-C, and closes the watch.
///
/// It outlives its server: over WebSocket the client reconnects and
/// re-subscribes by itself ([`ReconnectingWsClient`](hs_ws_client::ReconnectingWsClient));
/// over HTTP a poll that cannot reach the server, or finds the watch gone,
/// subscribes again with [`watch_backoff`] until it succeeds.
pub(crate) async fn watch(args: WatchArgs) -> Result<(), CliError> {
    let session = Session::open_with(&args.client, Some(watch_backoff())).await?;
    let result = watch_loop(&session, &args).await;
    session.close().await;
    result
}

async fn watch_loop(session: &Session, args: &WatchArgs) -> Result<(), CliError> {
    let transport = session.client.transport();
    let mut source = match (args.mode, transport) {
        (WatchMode::Push, Transport::Http) => {
            return Err(CliError::Usage(
                "HTTP has no pushes: use --mode poll (or auto), or a ws:// URL".to_owned(),
            ));
        }
        (WatchMode::Push, Transport::Ws) => ChangeSource::Push,
        (WatchMode::Auto, Transport::Ws) => ChangeSource::PushOrPoll,
        (WatchMode::Poll, _) | (WatchMode::Auto, Transport::Http) => ChangeSource::Poll,
    };
    let entities = session.client.read_filter(&args.filter, None).await?;
    let ids: Vec<_> = entities
        .rows
        .iter()
        .filter_map(|row| match row.get("id") {
            Some(Value::Ref(id)) => Some(id.clone()),
            _ => None,
        })
        .collect();
    if ids.is_empty() {
        return Err(CliError::Usage(format!(
            "no entity matches `{}`",
            args.filter
        )));
    }
    let mut pushes = match source {
        ChangeSource::Poll => None,
        ChangeSource::Push | ChangeSource::PushOrPoll => session.client.watch_events(),
    };
    let (mut watch_id, current) = session
        .client
        .subscribe("hs watch", &ids, args.lease)
        .await?;
    let lease = granted_lease(&current);
    let poll = poll_interval(args.poll, lease);
    eprintln!(
        "watching {} (watch {watch_id}): {}; Ctrl-C to stop",
        output::plural(ids.len(), "entity", "entities"),
        source.describe(poll)
    );
    let deadline = args.duration.map(|d| tokio::time::Instant::now() + d);
    let mut printed = 0u64;
    let outcome = loop {
        if args.count.is_some_and(|count| printed >= count) {
            break Ok(());
        }
        let watch = Resubscribe {
            ids: &ids,
            lease: args.lease,
        };
        let next = next_change(
            session,
            &mut watch_id,
            &watch,
            &mut source,
            &mut pushes,
            poll,
            lease,
        );
        let sleep_until = deadline
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400 * 365));
        let change = tokio::select! {
            change = next => change,
            () = tokio::time::sleep_until(sleep_until) => break Ok(()),
            _ = tokio::signal::ctrl_c() => break Ok(()),
        };
        match change {
            Ok(Some(grid)) => {
                let heading = match session.format {
                    OutputFormat::Table => {
                        outln!("── {} change(s) at {}", grid.rows.len(), chrono_now())
                    }
                    _ => Ok(()),
                };
                // A closed stdout still closes the watch on the way out.
                if let Err(error) = heading.and_then(|()| session.print(&grid, &args.columns)) {
                    break Err(error);
                }
                printed += 1;
            }
            Ok(None) => {
                break Err(CliError::Protocol(
                    "the server closed the connection".to_owned(),
                ));
            }
            Err(error) => break Err(error),
        }
    };
    // Best effort and bounded: the server may be gone or restarting (a
    // reconnecting client would wait for it); its lease ends the watch then.
    let close = session.client.watch_unsub(&watch_id, &[], true);
    match tokio::time::timeout(CLOSE_ON_EXIT, close).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => log::debug!(target: targets::OBSERVE, "watchUnsub on exit: {error}"),
        Err(_) => log::debug!(target: targets::OBSERVE, "watchUnsub on exit: no answer"),
    }
    outcome
}

/// How long `hs watch` waits, on its way out, for the server to close the watch.
const CLOSE_ON_EXIT: Duration = Duration::from_secs(2);

/// Where `hs watch` gets its changes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChangeSource {
    /// The server's pushes only.
    Push,
    /// `watchPoll` every interval.
    Poll,
    /// Pushes, with a `watchPoll` after every interval without one; the first
    /// push settles on [`Push`](Self::Push), the first poll that finds
    /// changes on [`Poll`](Self::Poll) (the server did not push them).
    PushOrPoll,
}

impl ChangeSource {
    fn describe(self, poll: Duration) -> String {
        match self {
            ChangeSource::Push => "waiting for server pushes".to_owned(),
            ChangeSource::Poll => format!("polling with watchPoll every {poll:?}"),
            ChangeSource::PushOrPoll => {
                format!(
                    "waiting for server pushes, polling with watchPoll every {poll:?} without one"
                )
            }
        }
    }
}

/// What `hs watch` subscribes again when its watch is lost.
struct Resubscribe<'a> {
    ids: &'a [Ref],
    lease: Option<Duration>,
}

/// How `hs watch` retries a server that went away: quickly at first (a
/// restart), then at most every 10 s.
fn watch_backoff() -> hs_core::client::Backoff {
    hs_core::client::Backoff::new(Duration::from_millis(200), Duration::from_secs(10))
}

/// Whether `error` means the server is out of reach for now (down,
/// restarting, not answering).
fn unreachable(error: &CliError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::Connect | ErrorKind::ConnectionClosed | ErrorKind::Timeout
    )
}

/// Handles a failed poll or renewal: a server out of reach is waited for
/// (a reconnecting WebSocket client re-subscribes by itself; over HTTP the
/// watch is subscribed again), a watch the server no longer knows (it
/// restarted, or the lease ran out) is subscribed again; anything else ends
/// `hs watch`.
async fn recover(
    session: &Session,
    watch_id: &mut String,
    watch: &Resubscribe<'_>,
    error: CliError,
) -> Result<(), CliError> {
    let reconnects = matches!(session.client, Client::WsReconnecting(_));
    if unreachable(&error) && reconnects {
        eprintln!("the server is out of reach ({error}): reconnecting");
        return Ok(());
    }
    if !unreachable(&error) && error.kind() != ErrorKind::NotFound {
        return Err(error);
    }
    eprintln!("watch {watch_id} lost ({error}): subscribing again");
    let backoff = watch_backoff();
    let mut attempt: u32 = 0;
    loop {
        tokio::time::sleep(backoff.delay(attempt)).await;
        match session
            .client
            .subscribe("hs watch", watch.ids, watch.lease)
            .await
        {
            Ok((new_id, _current)) => {
                eprintln!("re-subscribed as watch {new_id}");
                *watch_id = new_id;
                return Ok(());
            }
            Err(error) if unreachable(&error) => {
                log::debug!(target: targets::OBSERVE, "re-subscription attempt {}: {error}", attempt + 1);
                attempt = attempt.saturating_add(1);
            }
            Err(error) => return Err(error),
        }
    }
}

/// The next change set: see [`ChangeSource`]. `None` when the connection
/// ended. Switching source is announced on stderr. Waiting only for pushes,
/// the watch is renewed twice per `lease`, as polls would. A lost server or
/// watch is recovered from ([`recover`]).
async fn next_change(
    session: &Session,
    watch_id: &mut String,
    watch: &Resubscribe<'_>,
    source: &mut ChangeSource,
    pushes: &mut Option<hs_ws_client::WatchEvents>,
    poll: Duration,
    lease: Option<Duration>,
) -> Result<Option<Grid>, CliError> {
    loop {
        match (*source, pushes.as_mut()) {
            (ChangeSource::Push, Some(stream)) => {
                let next_push = session.client.next_push(watch_id, stream);
                let Some(renew_every) = lease.map(|lease| lease / 2) else {
                    return Ok(next_push.await);
                };
                match tokio::time::timeout(renew_every, next_push).await {
                    Ok(push) => return Ok(push),
                    // A `watchSub` of the watch with no ids renews its lease (a
                    // push-only client never polls, which renews it otherwise).
                    Err(_elapsed) => match session
                        .client
                        .watch_sub(Some(watch_id), "hs watch", &[], None)
                        .await
                    {
                        Ok(_) => {
                            log::debug!(target: targets::WS_CLIENT, "watch {watch_id} renewed");
                        }
                        Err(error) => recover(session, watch_id, watch, error.into()).await?,
                    },
                }
            }
            (ChangeSource::PushOrPoll, Some(stream)) => {
                match tokio::time::timeout(poll, session.client.next_push(watch_id, stream)).await {
                    Ok(Some(grid)) => {
                        *source = ChangeSource::Push;
                        eprintln!("a push arrived: {}", source.describe(poll));
                        return Ok(Some(grid));
                    }
                    Ok(None) => return Ok(None),
                    Err(_elapsed) => match session.client.watch_poll(watch_id, false).await {
                        Ok(grid) if !grid.rows.is_empty() => {
                            // Changes no push announced: this server does not push.
                            *source = ChangeSource::Poll;
                            *pushes = None;
                            eprintln!("no push from the server: {}", source.describe(poll));
                            return Ok(Some(grid));
                        }
                        Ok(_) => {}
                        Err(error) => recover(session, watch_id, watch, error.into()).await?,
                    },
                }
            }
            (ChangeSource::Push | ChangeSource::PushOrPoll, None) => return Ok(None),
            (ChangeSource::Poll, _) => {
                tokio::time::sleep(poll).await;
                match session.client.watch_poll(watch_id, false).await {
                    Ok(grid) if !grid.rows.is_empty() => return Ok(Some(grid)),
                    Ok(_) => {}
                    Err(error) => recover(session, watch_id, watch, error.into()).await?,
                }
            }
        }
    }
}

/// The lease the server granted, in the `watchSub` response's meta (a
/// zero or missing lease is none).
fn granted_lease(watch_sub: &Grid) -> Option<Duration> {
    // The request parser reads the same meta (`lease` with its time unit).
    hs_core::ops::WatchSubRequest::from_grid(watch_sub)
        .ok()
        .and_then(|sub| sub.lease)
        .filter(|lease| !lease.is_zero())
}

/// `--poll`, shortened to half the granted lease so the watch never
/// expires between polls.
fn poll_interval(requested: Duration, lease: Option<Duration>) -> Duration {
    match lease {
        Some(lease) if requested > lease / 2 => {
            log::warn!(
                target: targets::OBSERVE,
                "--poll {requested:?} is longer than half the watch lease ({lease:?}): polling every {:?}",
                lease / 2
            );
            lease / 2
        }
        _ => requested,
    }
}

/// The local wall-clock time as `HH:MM:SS` UTC (no timezone database needed).
fn chrono_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "{:02}:{:02}:{:02}Z",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

/// Writes `text` to stdout, ending it with a newline.
fn print_text(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        stdout.write_all(b"\n")?;
    }
    stdout.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_come_at_least_twice_per_lease() {
        let granted = |lease: Option<Duration>| {
            granted_lease(&hs_core::ops::build::watch_sub(
                Some("w-1"),
                None,
                &[],
                lease,
            ))
        };
        let second = Duration::from_secs(1);
        let minute = Duration::from_secs(60);
        assert_eq!(granted(Some(minute)), Some(minute));
        assert_eq!(granted(Some(Duration::ZERO)), None);
        assert_eq!(granted(None), None);
        assert_eq!(poll_interval(second, Some(minute)), second);
        assert_eq!(poll_interval(minute, Some(minute)), minute / 2);
        assert_eq!(poll_interval(minute, None), minute);
    }

    #[test]
    fn values_parse_as_zinc() {
        assert_eq!(parse_val("null").unwrap(), None);
        assert!(matches!(parse_val("72").unwrap(), Some(Value::Number(_))));
        assert!(matches!(parse_val("72°F").unwrap(), Some(Value::Number(n)) if n.unit.is_some()));
        assert!(matches!(parse_val("true").unwrap(), Some(Value::Bool(_))));
        assert!(matches!(parse_val("\"on\"").unwrap(), Some(Value::Str(_))));
        assert!(parse_val("seventy").is_err());
    }
}
