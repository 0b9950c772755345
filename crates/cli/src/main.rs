//! `hs`: serve a Haystack store over HTTP and WebSocket, query it, watch it,
//! load-test it, and tour the observers. Run `hs --help`.

mod bench;
mod cli;
mod client;
mod commands;
mod demo;
mod error;
mod logging;
mod observers;
mod otlp;
mod output;
mod serve;
mod serve_tls;
mod tls;
mod users;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::error::CliError;
use crate::logging::LogStyle;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let (default_filter, style) = match &cli.command {
        Command::Serve(_) => ("info", LogStyle::Stderr),
        Command::Demo(args) if args.verbose => ("debug", LogStyle::DemoTranscript),
        Command::Demo(_) => ("info", LogStyle::DemoTranscript),
        // The client commands and bench print each failure once themselves
        // (bench as one summary); the libraries' WARN lines about the same
        // failure (a refused login, a retried attempt) would repeat it, as
        // would rustls-platform-verifier's ERROR line about a certificate
        // it refused.
        _ => ("error,rustls_platform_verifier=off", LogStyle::Stderr),
    };
    logging::init(cli.log.as_deref(), default_filter, style);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The reader went away (`hs read ... | head -1`): nothing is left to
        // tell it, so end quietly, as Unix tools do.
        Err(error) if error.is_broken_pipe() => std::process::ExitCode::SUCCESS,
        Err(error) => {
            match error.hint() {
                Some(hint) => eprintln!("error: {error}\nhint: {hint}"),
                None => eprintln!("error: {error}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Serve(args) => serve::run(args).await,
        Command::About(args) => commands::about(args).await,
        Command::Ops(args) => commands::ops(args).await,
        Command::Nav(args) => commands::nav(args).await,
        Command::Read(args) => commands::read(args).await,
        Command::His(args) => commands::his(args).await,
        Command::Write(args) => commands::write(args).await,
        Command::Watch(args) => commands::watch(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Demo(args) => demo::run(args).await,
    }
}
