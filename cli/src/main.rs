//! `duet`: shared relationship goals, offline first, end-to-end encrypted.
//!
//! `main` only parses arguments and dispatches; each subcommand lives in its own module
//! under `commands/`. Exit codes: 0 success, 1 failure, 2 usage error.

mod clock;
mod commands;
mod live;
mod output;
mod transport;

use std::process::ExitCode;

use clap::Parser;

/// A usage error (exit code 2): the arguments were wrong, not the world.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A closed pipe (e.g. `duet export | head`) is not a failure.
            if err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {err:#}");
            if err.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
