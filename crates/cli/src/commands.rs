//! The client commands: `hs read`, `hs his`, `hs write`, `hs watch`.

use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

use hs_core::value::{Grid, Ref, Value};
use hs_prometheus::Side;

use crate::cli::{ClientArgs, EventLog, HisArgs, OutputFormat, ReadArgs, WatchArgs, WriteArgs};
use crate::client::{Client, ConnectOptions, parse_ref};
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
        let observers = Observers::build(
            ObserverChoice {
                event_log: EventLog::Default,
                stats: args.stats,
                metrics: false,
            },
            Side::Client,
            None,
            &[],
        );
        let client = Client::connect(&ConnectOptions {
            url: args.url.clone(),
            credentials: args.user.clone().zip(args.password.clone()),
            timeout: args.timeout,
            observer: match crate::client::normalise_url(&args.url)?.0 {
                crate::client::Transport::Http => observers.http.clone(),
                crate::client::Transport::Ws => observers.ws.clone(),
            },
        })
        .await?;
        Ok(Session {
            client,
            observers,
            format: args.format,
        })
    }

    fn print(&self, grid: &Grid, columns: &[String]) -> Result<(), CliError> {
        let text = output::render(grid, self.format, columns)?;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        if !text.ends_with('\n') {
            stdout.write_all(b"\n")?;
        }
        stdout.flush()?;
        Ok(())
    }

    async fn close(self) {
        self.client.close().await;
        if let Some(stats) = &self.observers.stats {
            eprintln!("{}", stats.snapshot());
        }
    }
}

/// `hs read`. By id, the entities found are printed and the ids not found
/// are named in the error, which makes the exit status 1 (as `ls a b`
/// reports a missing `b` after listing `a`).
pub(crate) async fn read(args: ReadArgs) -> Result<(), CliError> {
    let session = Session::open(&args.client).await?;
    let result = match &args.filter {
        Some(filter) => session
            .client
            .read_filter(filter, args.limit)
            .await
            .map(|grid| (grid, Vec::new())),
        None => {
            let ids: Vec<_> = args.ids.iter().map(|id| parse_ref(id)).collect();
            session
                .client
                .read_ids(&ids)
                .await
                .map(|grid| split_unknown(grid, &ids))
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
        .await;
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
            .point_write(&id, args.level, val, &args.who)
            .await?;
        session.client.point_write_array(&id).await
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
pub(crate) async fn watch(args: WatchArgs) -> Result<(), CliError> {
    let session = Session::open(&args.client).await?;
    let result = watch_loop(&session, &args).await;
    session.close().await;
    result
}

async fn watch_loop(session: &Session, args: &WatchArgs) -> Result<(), CliError> {
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
    let mut pushes = session.client.watch_events();
    let (watch_id, _current) = session.client.watch_sub("hs watch", &ids).await?;
    eprintln!(
        "watching {} (watch {watch_id}, {}); Ctrl-C to stop",
        output::plural(ids.len(), "entity", "entities"),
        match session.client.transport() {
            crate::client::Transport::Ws => "server pushes".to_owned(),
            crate::client::Transport::Http => format!("polling every {:?}", args.poll),
        }
    );
    let deadline = args.duration.map(|d| tokio::time::Instant::now() + d);
    let mut printed = 0u64;
    let outcome = loop {
        if args.count.is_some_and(|count| printed >= count) {
            break Ok(());
        }
        let next = session
            .client
            .next_change(&watch_id, &mut pushes, args.poll);
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
                if let Err(error) = heading.and_then(|()| session.print(&grid, &[])) {
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
    if let Err(error) = session.client.watch_close(&watch_id).await {
        log::debug!(target: "hs::observe", "watchUnsub on exit: {error}");
    }
    outcome
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_ids_are_named_whether_the_server_sends_empty_rows_or_none() {
        use hs_core::value::Dict;
        let entity = |id: &str| {
            let mut row = Dict::new();
            row.insert("id".into(), Value::from(Ref::from(id)));
            row.insert("dis".into(), Value::from(id));
            row
        };
        let asked: Vec<Ref> = ["a", "x", "b", "x"].map(Ref::from).into();
        // Haystack's answer: one row per id, empty for an unknown one.
        let with_placeholders =
            Grid::make_from_dicts(vec![entity("a"), Dict::new(), entity("b"), Dict::new()]);
        let (grid, missing) = split_unknown(with_placeholders, &asked);
        assert_eq!(grid.rows.len(), 2);
        assert_eq!(missing, ["@x"]);
        // A server that leaves unknown ids out.
        let (grid, missing) = split_unknown(Grid::make_from_dicts(vec![entity("b")]), &asked);
        assert_eq!(grid.rows.len(), 1);
        assert_eq!(missing, ["@a", "@x"]);
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
