//! `duet backup FILE` and `duet restore FILE`: this device in one passphrase-encrypted
//! file, and back. Core owns the format and the crypto (`duet_core::backup`); this file
//! reads the passphrase (from the terminal without echo, or one line from
//! `--passphrase-fd N`, never from the command line) and says what happened.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use duet_core::backup::{self, BackupError};
use duet_core::device::DeviceError;
use duet_core::sync::{SyncError, TransportError};
use zeroize::Zeroizing;

use super::Ctx;
use crate::UsageError;
use crate::output::{note, safe_line, when};
use crate::transport::Http;

/// Write this device (keys, spaces, documents) to one passphrase-encrypted file.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The backup file to write (created readable by you only).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    force: bool,
    /// Read the passphrase as one line from this file descriptor (for scripts) instead
    /// of asking on the terminal.
    #[arg(long, value_name = "N")]
    passphrase_fd: Option<u32>,
}

/// Bring a lost device back from a backup file into a new home (`--home DIR`).
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The backup file `duet backup` wrote.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Read the passphrase as one line from this file descriptor (for scripts) instead
    /// of asking on the terminal.
    #[arg(long, value_name = "N")]
    passphrase_fd: Option<u32>,
    /// Sync through this relay instead of the one the backup names (the relay moved to
    /// a new address since the backup was made).
    #[arg(long, value_name = "URL")]
    relay: Option<String>,
    /// The creation token the relay's operator gave you, when the backup holds none or
    /// a wrong one (the relay then never created the spaces).
    /// Or set DUET_CREATE_TOKEN, which other users of the machine cannot read (a command
    /// line shows in their process list).
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
}

/// The command line's advice for each way a backup or restore fails; `undone` says
/// what was not written (for the errors that carry their own advice).
fn explain(e: BackupError, undone: &'static str) -> anyhow::Error {
    let advice = match &e {
        BackupError::NotABackup => "check that FILE is a file `duet backup` wrote",
        BackupError::UnknownVersion(_) => "restore it with a newer duet",
        BackupError::Truncated { .. } | BackupError::Damaged(_) => {
            "nothing was restored; use another copy of the backup file"
        }
        BackupError::WrongPassphrase => {
            "nothing was restored; check the passphrase (letters, case and spaces count) and run `duet restore` again"
        }
        BackupError::ShortPassphrase(_) => "nothing was written; choose a longer passphrase",
        BackupError::Exists(_) => "choose another FILE, or pass --force to replace it",
        BackupError::InHome(_) => {
            "write it outside --home, best on another disk or device (`duet backup FILE`)"
        }
        BackupError::NotAFile(_) => "choose another FILE",
        BackupError::HomeHasDevice(_) | BackupError::HomeNotEmpty(_) => {
            "pass --home with a new directory"
        }
        BackupError::RestoreRunning(_) => {
            "nothing was written by this one; wait for the other to finish and read what it says"
        }
        BackupError::RestoreLockNotOwn(_) => "nothing was written",
        BackupError::Incomplete(_) | BackupError::RelayRefused(_) => {
            "check the relay (`duet status` on the partner's device) and run `duet restore` again"
        }
        BackupError::Io { .. } | BackupError::Store(_) | BackupError::Device(_) => {
            return anyhow::Error::new(e).context(undone);
        }
    };
    anyhow::anyhow!("{e}; {advice}")
}

/// The longest passphrase line read from a file descriptor, in bytes.
const PASSPHRASE_LINE_MAX: u64 = 4096;

/// Reads one line from file descriptor `fd` (through /dev/fd, so no unsafe code).
fn from_fd(fd: u32) -> anyhow::Result<Zeroizing<String>> {
    // Read from, they wait on this command's own output for ever (`| cat`).
    if matches!(fd, 1 | 2) {
        return Err(UsageError(format!(
            "file descriptor {fd} is this command's {}, not something to read a passphrase \
             from; give 0 (standard input) or another one opened for reading \
             (`--passphrase-fd 3 3<file`)",
            if fd == 1 { "output" } else { "error output" }
        ))
        .into());
    }
    let path = format!("/dev/fd/{fd}");
    let file = std::fs::File::open(&path).map_err(|e| {
        UsageError(format!(
            "cannot read the passphrase from file descriptor {fd} ({e}); is it open? \
             (in a shell: `--passphrase-fd 3 3<file`)"
        ))
    })?;
    let mut line = Zeroizing::new(String::new());
    // At most a line's worth: `3</dev/zero` was read until memory ran out.
    std::io::BufReader::new(std::io::Read::take(file, PASSPHRASE_LINE_MAX + 1))
        .read_line(&mut line)
        .map_err(|e| {
            anyhow::anyhow!("cannot read the passphrase from file descriptor {fd}: {e}")
        })?;
    if line.len() as u64 > PASSPHRASE_LINE_MAX {
        return Err(UsageError(format!(
            "file descriptor {fd} gave more than {PASSPHRASE_LINE_MAX} bytes without a line \
             end; give the passphrase as one line"
        ))
        .into());
    }
    let trimmed = Zeroizing::new(line.trim_end_matches(['\n', '\r']).to_string());
    if trimmed.is_empty() {
        anyhow::bail!("file descriptor {fd} gave an empty passphrase; write it as one line");
    }
    Ok(trimmed)
}

/// Asks on the terminal without echo; twice when `confirm`.
fn from_terminal(confirm: bool) -> anyhow::Result<Zeroizing<String>> {
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt).map(Zeroizing::new).map_err(|e| {
            anyhow::anyhow!(
                "cannot ask for the passphrase on a terminal ({e}); pass --passphrase-fd N to read it from a file descriptor"
            )
        })
    };
    let first = ask("Backup passphrase: ")?;
    if confirm && *ask("Same passphrase again: ")? != *first {
        anyhow::bail!("the two passphrases differ; nothing was written, run `duet backup` again");
    }
    Ok(first)
}

fn passphrase(fd: Option<u32>, confirm: bool) -> anyhow::Result<Zeroizing<String>> {
    match fd {
        Some(fd) => from_fd(fd),
        None => from_terminal(confirm),
    }
}

/// Runs `duet backup`.
pub fn run_backup(ctx: &Ctx, a: BackupArgs) -> anyhow::Result<()> {
    let explain = |e| explain(e, "no backup was written");
    // `-` is standard output to most tools; a backup holds the device's keys and is
    // only ever written to a private file.
    if a.file.as_os_str() == "-" {
        return Err(UsageError(
            "a backup is written to a file readable by you only, never to standard output: \
             give a path, e.g. `duet backup ~/duet.backup`"
                .into(),
        )
        .into());
    }
    backup::check_backup_target(&a.file, a.force).map_err(explain)?;
    backup::check_backup_place(&a.file, a.force, &ctx.home).map_err(explain)?;
    // Where the file goes is checked before any passphrase is asked for; a descriptor
    // is read before this process opens files of its own: one of them (the store, its
    // lock) could take the number of a descriptor the shell never opened, and its first
    // line would become the backup's passphrase.
    let given = a.passphrase_fd.map(from_fd).transpose()?;
    let dev = ctx.device()?;
    let pass = match given {
        Some(pass) => pass,
        None => from_terminal(true)?,
    };
    let summary = backup::backup(&dev, &a.file, &pass, a.force).map_err(explain)?;
    if ctx.out.json {
        return ctx.out.json(&summary);
    }
    ctx.out.line(format!(
        "Backup written to {} ({} KiB, {} spaces).",
        a.file.display(),
        summary.bytes.div_ceil(1024),
        summary.spaces
    ))?;
    ctx.out.line(
        "Keep the file and the passphrase apart: together they are this device. \
         Restore with `duet restore FILE --home DIR` if this device is lost.",
    )?;
    Ok(())
}

/// Runs `duet restore`.
pub fn run_restore(ctx: &Ctx, a: RestoreArgs) -> anyhow::Result<()> {
    // The relay tried: the one given, or else the one the backup names.
    let reach = match &a.relay {
        Some(url) => format!("{url} is reachable"),
        None => "the relay the backup names is reachable (or give its new address with \
                 --relay URL)"
            .to_string(),
    };
    // The sync of a restore is what fails here: the advice is to restore again, not to
    // run `duet sync` in a home that was never created.
    let explain = |e| match e {
        BackupError::Device(d) if needs_token(&d) => {
            anyhow::anyhow!(
                "{d}; the restore did not finish and nothing was written: run `duet restore` \
                 again with the creation token the relay's operator gave you (--token TOKEN)"
            )
        }
        BackupError::Device(DeviceError::Sync(SyncError::Transport(t))) => {
            // A relay that answered was reached: its answer says what stands in the way.
            let said = if matches!(t, duet_core::sync::TransportError::Refused { .. }) {
                format!(
                    "{t}; the restore did not finish and nothing was written: once that is \
                     settled, run `duet restore` again"
                )
            } else {
                format!(
                    "{t}; the restore did not finish and nothing was written: check that \
                     {reach}, then run `duet restore` again"
                )
            };
            if crate::advice::transport_retry_helps(&t) {
                crate::advice::TryLater(said).into()
            } else {
                anyhow::anyhow!(said)
            }
        }
        // A full disk, say: its own advice, not the relay's.
        BackupError::Device(d) => anyhow::anyhow!(
            "the restore did not finish and nothing was written: {}",
            crate::advice::message(&d)
        ),
        e => explain(e, "the restore did not finish; nothing was written"),
    };
    let relay = a
        .relay
        .as_deref()
        .map(super::relay::check_relay_url)
        .transpose()?;
    let token = super::relay::given_token(a.token, true);
    let token = super::relay::creation_token(token.as_deref())?;
    backup::check_restore_target(&ctx.home).map_err(explain)?;
    let pass = passphrase(a.passphrase_fd, false)?;
    let http = Http::new()?;
    let to = backup::Reroute {
        relay: relay.as_deref(),
        token,
    };
    let restored =
        backup::restore_via(&a.file, &pass, &ctx.home, &http, ctx.clock, to).map_err(explain)?;
    if (relay.is_some() || token.is_some()) && restored.spaces.iter().all(|s| !s.online) {
        note(
            "note: --relay and --token were not used: the device backed up had no relay; set \
             one with `duet relay set URL [--token TOKEN]`, then `duet sync`",
        );
    }
    if ctx.out.json {
        return ctx.out.json(&restored);
    }
    print_restored(ctx, &restored, &a.file)
}

/// Whether the relay refused the restore's sync for want of a (right) creation token.
fn needs_token(d: &DeviceError) -> bool {
    matches!(d, DeviceError::Sync(SyncError::Transport(TransportError::Refused { status: 403, body }))
        if body.error.wants_a_token())
}

fn print_restored(ctx: &Ctx, r: &backup::Restored, file: &Path) -> anyhow::Result<()> {
    ctx.out.line(format!(
        "Restored {}'s device {} from {} (written {}) into {}.",
        safe_line(&r.name),
        &r.device[..12],
        file.display(),
        when(r.written_at),
        r.home.display()
    ))?;
    use duet_core::words::count;
    for s in &r.spaces {
        let mut line = match s.online {
            true => format!(
                "  {} space: {} read back from the relay",
                s.space,
                count(s.received_events, "event", "events")
            ),
            false => format!("  {} space: no relay set", s.space),
        };
        if s.sent_waiting > 0 {
            // A removal queued offline, say: done now, and said (it went without a word).
            line.push_str(&format!(
                ", {} that the backed-up device had not sent yet, sent now (`duet history` \
                 says what they did)",
                count(s.sent_waiting, "event", "events")
            ));
        }
        if s.resent_changes > 0 && s.still_unsent == 0 {
            line.push_str(&format!(
                ", {} that had not reached it sent",
                count(s.resent_changes, "change", "changes")
            ));
        } else if s.still_unsent > 0 {
            line.push_str(&format!(
                "; {} kept on this device, not sent",
                count(s.still_unsent, "change or event", "changes and events")
            ));
        }
        ctx.out.line(line)?;
        // As `duet sync` says them: a removal the backed-up device had queued is carried
        // out by this restore (it said nothing of it).
        for w in &s.warnings {
            super::sync::note_warning(s.space, w);
        }
        match &s.departed {
            Some(d) => ctx.out.line(format!(
                "  WARNING: {}; what it holds stays readable here (`duet export`)",
                safe_line(d)
            ))?,
            None if !s.online && s.still_unsent > 0 => ctx
                .out
                .line("  they go once a relay is set (`duet relay set URL`, then `duet sync`)")?,
            None => {}
        }
    }
    note(
        "note: this is the same device as the one backed up; if that one turns up, do not use it again \
         (two copies of one device would fork its history)",
    );
    Ok(())
}
