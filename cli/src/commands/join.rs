//! `duet join`: join the partner's shared space with an invite code, or add this device
//! to one's own spaces with a device code; undone when the relay refuses it.

use duet_core::app::JoinError;
use duet_core::device::Device;
use duet_core::pairing_code::{PairingError, ShortCode};
use serde_json::json;

use super::Ctx;
use crate::UsageError;
use crate::output::safe_line;
use crate::progress::Progress;
use crate::transport::Http;

/// Join your partner's shared space with an invite code, or add this device to your own
/// spaces with a code from `duet device add`.
#[derive(Debug, clap::Args)]
pub struct JoinArgs {
    /// The code from `duet invite` (partner) or `duet device add` (your other device);
    /// `-` reads it from standard input, which keeps it (it carries the space's keys) out
    /// of the process list and the shell's history.
    code: String,
    /// Your name, as your partner will see it (not needed with a device code).
    #[arg(long)]
    name: Option<String>,
    /// The relay to reach your partner through: needed with a short code (from `duet
    /// invite --short`), which names none.
    #[arg(long, value_name = "URL")]
    relay: Option<String>,
}

/// The long invite code that a short one stands for, fetched through `relay`.
pub fn redeem(typed: &str, relay: Option<&str>) -> anyhow::Result<String> {
    let relay = relay.ok_or_else(|| {
        UsageError(
            "a short code names no relay: give the one your partner uses with --relay URL".into(),
        )
    })?;
    let relay = super::relay::check_relay_url(relay)?;
    let http = Http::new()?;
    match Device::redeem_short_code(&http, &relay, typed) {
        Ok(code) => Ok(code.encode()),
        Err(PairingError::Code(e)) => Err(UsageError(e.to_string()).into()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot use the short code")),
    }
}

/// A failed join, in the command line's words.
pub fn join_failure(e: JoinError, home: &std::path::Path) -> anyhow::Error {
    match e {
        JoinError::Code(e) => UsageError(crate::advice::message(&e)).into(),
        e @ JoinError::DeviceCodeOfAnother(_) => UsageError(crate::advice::message(&e)).into(),
        JoinError::NameRequired => {
            UsageError("a name is required with a partner's invite code: --name NAME".into()).into()
        }
        JoinError::Setup(e) => {
            anyhow::Error::new(e).context(format!("cannot join in {}", home.display()))
        }
        JoinError::Refused { ref error, .. }
            if error == duet_core::protocol::ErrorCode::InviteExpired.as_str() =>
        {
            let said = crate::advice::message(&e);
            match relay_clock_ahead() {
                Some(ahead) => anyhow::anyhow!(
                    "{said}; but the relay's clock is {ahead} ahead of this device's: if this \
                     device's clock is right, the relay's is wrong and every code expires early \
                     there (tell the relay's operator)"
                ),
                None => anyhow::anyhow!(said),
            }
        }
        e @ (JoinError::Refused { .. }
        | JoinError::OwnInvite
        | JoinError::AlreadyJoined
        | JoinError::Departed(_)) => {
            anyhow::anyhow!(crate::advice::message(&e))
        }
        JoinError::FirstSync(e) => anyhow::Error::new(e).context(
            "joined locally, but the first sync failed; run `duet sync` to finish joining",
        ),
    }
}

/// The long code `a` stands for: a short code redeemed through the relay given (its
/// name and relay checked first), a long one as typed.
fn long_code(ctx: &Ctx, a: &JoinArgs) -> anyhow::Result<String> {
    if ShortCode::looks_short(&a.code) {
        // Checked before the code is used up: it works once.
        if a.name.is_none() {
            return Err(
                UsageError("a name is required with a short code: --name NAME".into()).into(),
            );
        }
        if let Ok(dev) = Device::open_with(&ctx.home, ctx.clock) {
            anyhow::bail!(
                "{} is set up already (as {}); join with a new home: --home DIR",
                ctx.home.display(),
                safe_line(&dev.me.name)
            );
        }
        // The code's shape and the relay are checked before saying it waits.
        if a.relay.is_none() {
            return Err(UsageError(
                "a short code names no relay: give the one your partner uses with --relay URL"
                    .into(),
            )
            .into());
        }
        ShortCode::parse(&a.code).map_err(|e| UsageError(e.to_string()))?;
        if !ctx.out.quiet && !ctx.out.json {
            crate::output::note(
                "Waiting for your partner's device to answer the code (up to 2 minutes)...",
            );
        }
        return redeem(&a.code, a.relay.as_deref());
    } else if a.relay.is_some() {
        // Neither a long code nor a short one's shape: a short code mistyped.
        let long = duet_core::invite::InviteCode::decode(&a.code).is_ok()
            || duet_core::invite::DeviceCode::decode(&a.code).is_ok();
        if !long {
            ShortCode::parse(&a.code).map_err(|e| UsageError(e.to_string()))?;
        }
        return Err(UsageError(
            "--relay goes with a short code only: a long code names its relay".into(),
        )
        .into());
    }
    Ok(a.code.clone())
}

/// The most read of a code piped in: a code is a few hundred characters.
const PIPED_CODE_MAX: u64 = 64 * 1024;

/// The code typed or pasted on standard input (`duet join -`): on a terminal, its first
/// line that is not blank; piped, all of it (a code wrapped over lines, as a mail or a
/// note keeps it, reads as it does given as an argument), up to [`PIPED_CODE_MAX`].
fn code_from_stdin(ctx: &Ctx) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal, Read};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut piped = Vec::new();
        stdin
            .lock()
            .take(PIPED_CODE_MAX + 1)
            .read_to_end(&mut piped)
            .map_err(|e| {
                anyhow::Error::new(e).context("cannot read the code from standard input")
            })?;
        if piped.len() as u64 > PIPED_CODE_MAX {
            anyhow::bail!(UsageError(format!(
                "standard input holds more than {} KiB, far more than a code; give the code \
                 `duet invite` or `duet device add` printed",
                PIPED_CODE_MAX / 1024
            )));
        }
        let Ok(text) = String::from_utf8(piped) else {
            anyhow::bail!(UsageError(
                "standard input is not UTF-8 text; give the code as `duet invite` or `duet device add` printed it".into()
            ));
        };
        if !text.trim().is_empty() {
            return Ok(text.trim().to_string());
        }
        anyhow::bail!(UsageError(
            "standard input held no code; give the code `duet invite` or `duet device add` printed"
                .into(),
        ));
    }
    if !ctx.out.quiet {
        crate::output::note("Paste the code and press Enter:");
    }
    for line in stdin.lock().lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                anyhow::bail!(UsageError(
                    "standard input is not UTF-8 text; give the code as `duet invite` or `duet device add` printed it".into()
                ))
            }
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context("cannot read the code from standard input")
                );
            }
        };
        if !line.trim().is_empty() {
            return Ok(line.trim().to_string());
        }
    }
    Err(UsageError(
        "standard input held no code; give the code `duet invite` or `duet device add` printed"
            .into(),
    )
    .into())
}

/// The code as given: read from standard input for `-`; none at all is a usage error.
fn given_code(ctx: &Ctx, code: &str) -> anyhow::Result<String> {
    if code == "-" {
        return code_from_stdin(ctx);
    }
    if code.trim().is_empty() {
        return Err(UsageError(
            "no code was given: give the code `duet invite` or `duet device add` printed, or `-` to read it from standard input".into(),
        )
        .into());
    }
    Ok(code.to_string())
}

/// A device code joins as the person who made it, and a join run again to finish goes
/// on as the name it began with: a name given is said as not used.
fn name_kept(a: &JoinArgs, kept: &str) {
    if let Some(name) = a.name.as_deref().filter(|n| n.trim() != kept) {
        let why = if duet_core::invite::is_device_code(&a.code) {
            format!("a device code joins as {}, who made it", safe_line(kept))
        } else {
            format!("this device began its join as {}", safe_line(kept))
        };
        crate::output::note(&format!(
            "note: {why}; --name {} was not used",
            safe_line(name)
        ));
    }
}

/// Runs `duet join`.
pub fn run(ctx: &Ctx, mut a: JoinArgs) -> anyhow::Result<()> {
    a.code = given_code(ctx, &a.code)?;
    a.code = long_code(ctx, &a)?;
    let http = Http::new()?.with_progress(Progress::start(&ctx.out, "joining"));
    let joined = Device::join_code(&ctx.home, &a.code, a.name.as_deref(), ctx.clock, &http)
        .map_err(|e| join_failure(e, &ctx.home))?;
    let (mut dev, space, reports) = (joined.device, joined.space, joined.reports);
    drop(http);
    if let Some(folder) = &joined.set_aside {
        crate::output::note(&format!(
            "note: what you wrote on this device while its earlier join waited (the relay refused that code) is kept in {}; read it with `duet --home {} reflections --private` (or `export`)",
            folder.display(),
            folder.display()
        ));
    }
    if let Some(e) = &joined.unfinished {
        // Most often the shared space's join went through and the relay refused to make
        // this person's personal space (its creation limit): said, so the shared space is
        // not taken for the missing part.
        let personal_missing = dev.status().is_ok_and(|st| {
            st.spaces
                .iter()
                .any(|s| s.kind == "personal" && s.not_on_relay)
        });
        let which = if personal_missing {
            "; the shared space works, your personal space (private reflections) is not on \
             the relay yet"
        } else {
            ""
        };
        ctx.out.warn(format!(
            "joined, but the first sync did not finish ({}){which}; a later `duet sync` \
             finishes it",
            crate::advice::message(e)
        ));
    }
    name_kept(&a, &dev.me.name);
    refuse_without_key(&reports)?;
    // The sync just built the read models; no need to load the whole document again.
    let partners = dev.partners()?;
    let (here, gone) = dev.partners_by_presence()?;
    let goals = dev.goals(true)?.goals.len();
    if ctx.out.json {
        return ctx.out.json(&json!({ "joined": space.to_string(), "partners": partners, "reports": reports.iter().map(|(k, r)| json!({"space": k.as_str(), "report": r})).collect::<Vec<_>>() }));
    }
    // A first sync that stopped before the shared space was read knows no one in it.
    let unread = joined.unfinished.is_some() && here.is_empty() && gone.is_empty() && goals == 0;
    let with = match (here.is_empty(), gone.is_empty()) {
        (false, _) => format!(" with {}", safe_line(&here.join(", "))),
        (true, true) if !unread => " (your partner has not joined it yet)".to_string(), // a device code
        (true, _) => String::new(),
    };
    let synced = if unread {
        "Nothing synced yet".to_string()
    } else {
        format!("{} synced", duet_core::words::count(goals, "goal", "goals"))
    };
    ctx.out
        .line(format!("Joined the shared space{with}. {synced}."))?;
    if !gone.is_empty() {
        ctx.out.line(format!(
            "No device of {} is in it any more (left or removed): what was shared stays readable here.",
            safe_line(&gone.join(", "))
        ))?;
    }
    let device_code = duet_core::invite::is_device_code(&a.code);
    note_same_name(&dev.me.name, &here, device_code);
    Ok(())
}

/// A partner invite used with the inviter's own name: most likely a second device of the
/// inviter's, which then joined as a second person. Said, with the way back.
fn note_same_name(me: &str, partners: &[String], device_code: bool) {
    let plain = |n: &str| n.split(" #").next().unwrap_or(n).trim().to_lowercase();
    if device_code || !partners.iter().any(|p| plain(p) == plain(me)) {
        return;
    }
    crate::output::note(&format!(
        "note: your partner here is called {} too. If this is another device of theirs (or          of yours), it joined as a second person: a device joins its person with the code of          `duet device add`; `duet leave` here, then `duet start-over` and join with that code",
        safe_line(me)
    ));
}

/// A join with a code older than a removal: this device can never catch up, and must
/// not look set up.
pub(crate) fn refuse_without_key(
    reports: &[(duet_core::store::SpaceKind, duet_core::sync::SyncReport)],
) -> anyhow::Result<()> {
    if let Some(epoch) = reports.iter().find_map(|(_, r)| r.missing_key) {
        anyhow::bail!(
            "this device joined, but with a code made before a device was removed from the \
             space: it holds no key for what was written since (key epoch {epoch}), so it \
             can read none of it and what it writes would wait for ever; make a new code on \
             your other device (`duet device add`), join with it in a new folder (--home \
             DIR), then remove this one there (`duet device list` shows it)"
        );
    }
    Ok(())
}

/// How far the relay's clock is ahead of this device's, in words, when by more than an
/// hour (a relay that judges codes expired by a clock far ahead refuses them all).
fn relay_clock_ahead() -> Option<String> {
    crate::relay_clock::observed_ahead_ms()
        .filter(|ms| *ms > 3_600_000)
        .map(|ms| duet_core::words::span(ms / 1000))
}
