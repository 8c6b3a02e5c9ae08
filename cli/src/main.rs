//! `duet`: shared relationship goals, offline first, end-to-end encrypted.
//!
//! `main` only parses arguments and dispatches; each subcommand lives in its own module
//! under `commands/`. Exit codes: 0 success (also when the reader of stdout closed the
//! pipe early), 1 failure, 2 usage error, 3 a failure that can pass later as it is (a
//! relay out of reach, late or busy). With `--json` the error is one JSON line on stderr.

mod advice;
mod app;
mod bidi;
mod commands;
mod confirm;
mod interrupt;
mod live;
mod output;
mod progress;
mod relay_clock;
mod transport;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

/// A usage error (exit code 2): the arguments were wrong, not the world.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn main() -> ExitCode {
    // `--color` also governs clap's own help and usage errors, which are printed
    // before the arguments are parsed into `Cli`.
    let matches = commands::Cli::command()
        .color(colour_asked())
        .try_get_matches()
        .unwrap_or_else(|e| exit_on(e));
    let mut cli = commands::Cli::from_arg_matches(&matches).unwrap_or_else(|e| exit_on(e));
    // `--home`, else DUET_HOME; set but empty, DUET_HOME counts as unset, as XDG's
    // variables do (`DUET_HOME= duet`).
    if cli.home.is_none() {
        cli.home = std::env::var_os("DUET_HOME")
            .filter(|h| !h.is_empty())
            .map(std::path::PathBuf::from);
    }
    let json = cli.json;
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of stdout went away (`duet export | head`): it has what it wanted,
        // so this is a success, as for `git log | head` (see docs/decisions.md).
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let code = exit_code(&err);
            let hint = advice::hint(&err);
            if json {
                output::json_error(&format!("{err:#}"), hint.as_deref(), code);
                return ExitCode::from(code);
            }
            // Error messages can quote a partner's text (a title in "matches several
            // goals"), so they are made terminal-safe like everything else printed.
            match hint {
                Some(hint) => output::note(&format!("error: {err:#}; {hint}")),
                None => output::note(&format!("error: {err:#}")),
            }
            ExitCode::from(code)
        }
    }
}

/// 2 for wrong arguments (a value the document cannot hold among them: a text too
/// long, a level out of range), 3 for a failure that can pass later as it is (a relay
/// out of reach, late or busy), 1 for any other failure.
fn exit_code(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<UsageError>().is_some() || advice::bad_value(err) {
        2
    } else if advice::try_later(err) {
        advice::EXIT_TRY_LATER
    } else {
        1
    }
}

/// Ends on clap's word: help and version as clap prints them; wrong arguments as clap
/// says them, or, under `--json`, as one JSON line on stderr (exit code 2 either way).
fn exit_on(e: clap::Error) -> ! {
    let json = std::env::args_os().any(|a| a == "--json");
    if !json || !e.use_stderr() {
        e.exit();
    }
    let said = e.render().to_string();
    let hint = "see `duet help` and `duet COMMAND --help`";
    output::json_error(&json_usage_error(e.kind(), &said), Some(hint), 2);
    std::process::exit(2)
}

/// A usage error as one line: everything before the usage (the error, what is missing,
/// the allowed values and clap's suggestion), each part after a semicolon; for a command
/// given without its subcommand (clap prints that command's help), which subcommands
/// there are.
fn json_usage_error(kind: clap::error::ErrorKind, said: &str) -> String {
    if kind == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let subcommands: Vec<&str> = said
            .lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .filter_map(|l| l.split_whitespace().next())
            .filter(|c| *c != "help")
            .collect();
        return format!("a subcommand is needed: {}", subcommands.join(", "));
    }
    let told: Vec<&str> = said
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    told.join("; ").trim_start_matches("error: ").to_string()
}

/// The `--color` choice among the raw arguments (clap decides its own colours before
/// it has parsed them).
fn colour_asked() -> clap::ColorChoice {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let given = args.iter().enumerate().find_map(|(i, a)| {
        let a = a.to_str()?;
        match a.strip_prefix("--color=") {
            Some(v) => Some(v.to_string()),
            None if a == "--color" => args.get(i + 1)?.to_str().map(str::to_string),
            None => None,
        }
    });
    match given.as_deref() {
        Some("never") => clap::ColorChoice::Never,
        Some("always") => clap::ColorChoice::Always,
        _ => clap::ColorChoice::Auto,
    }
}

/// Whether an error comes from writing to a closed pipe, however deeply it is wrapped.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
