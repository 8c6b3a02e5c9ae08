//! `duet`: shared relationship goals, offline first, end-to-end encrypted.
//!
//! `main` only parses arguments and dispatches; each subcommand lives in its own module
//! under `commands/`. Exit codes: 0 success (also when the reader of stdout closed the
//! pipe early), 1 failure, 2 usage error.

mod advice;
mod app;
mod bidi;
mod commands;
mod confirm;
mod live;
mod output;
mod progress;
mod relay_clock;
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
        // The reader of stdout went away (`duet export | head`): it has what it wanted,
        // so this is a success, as for `git log | head` (see docs/decisions.md).
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // Error messages can quote a partner's text (a title in "matches several
            // goals"), so they are made terminal-safe like everything else printed.
            match advice::hint(&err) {
                Some(hint) => output::note(&format!("error: {err:#}; {hint}")),
                None => output::note(&format!("error: {err:#}")),
            }
            if err.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// Whether an error comes from writing to a closed pipe, however deeply it is wrapped.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
