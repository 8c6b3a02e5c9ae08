//! `duet status`: this device, its spaces, what waits, what was refused, and members.

use duet_core::app::{SpaceStatus, Status};

use super::Ctx;
use crate::output::{safe_line, short_key};

/// Show relay, spaces, cursor, pending changes and members.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {}

/// `duet status --json`: the typed status and the home it was read from.
#[derive(serde::Serialize)]
struct StatusJson<'a> {
    #[serde(flatten)]
    status: &'a Status,
    home: &'a std::path::Path,
}

/// Runs `duet status`.
pub fn run(ctx: &Ctx, _a: StatusArgs) -> anyhow::Result<()> {
    let status = ctx.device()?.status()?;
    if ctx.out.json {
        return ctx.out.json(&StatusJson {
            status: &status,
            home: &ctx.home,
        });
    }
    ctx.out.line(format!(
        "{} (device {})",
        safe_line(&status.name),
        short_key(&status.device)
    ))?;
    if let Some(n) = super::device::unverified_note(&status.unverified) {
        ctx.out.line(format!("  NOTE: {}", safe_line(&n)))?;
    }
    for s in &status.spaces {
        print_space(ctx, s)?;
    }
    Ok(())
}

/// One space's lines of `duet status`.
fn print_space(ctx: &Ctx, s: &SpaceStatus) -> Result<(), crate::output::StdoutError> {
    ctx.out.line(format!(
        "{} space {}\n  relay: {}\n  cursor: {}   pending changes: {}   unsent events: {}   refused: {}",
        s.kind,
        s.space,
        safe_line(s.relay.as_deref().unwrap_or("(none: `duet relay set URL`)")),
        s.cursor,
        s.pending_changes,
        s.unsent_events,
        s.refused_events,
    ))?;
    if s.not_on_relay && s.departed.is_none() {
        ctx.out.line(
            "  not on the relay yet: `duet sync` (or `duet invite`) creates it there, and says so if the relay needs a creation token",
        )?;
    }
    if s.joining {
        ctx.out.line(
            "  joining is not finished: the first sync did not complete; run `duet sync` to finish it (nothing is lost)",
        )?;
    }
    if let Some(alert) = &s.alert {
        ctx.out.line(format!("  WARNING: {}", safe_line(alert)))?;
    }
    // The five latest refusals; `duet history` lists them all in their place.
    for r in &s.refused[s.refused.len().saturating_sub(5)..] {
        // A refused event whose signature does not verify names no person (nor, truly,
        // its device): "an unknown device" then, not "an unknown device's device".
        let from = match r.person {
            Some(_) => format!("{}'s device {}", safe_line(&r.name), short_key(&r.device)),
            None => format!("a device not known here ({})", short_key(&r.device)),
        };
        ctx.out.line(format!(
            "  REFUSED from {}: {}",
            safe_line(&from),
            safe_line(r.reason.as_deref().unwrap_or(""))
        ))?;
    }
    if s.waiting_events > 0 {
        ctx.out.line(format!(
            "  {} for an earlier event the relay has not served",
            duet_core::words::count(s.waiting_events, "event waits", "events wait")
        ))?;
    }
    if let Some(d) = &s.departed {
        ctx.out.line(format!("  {}", safe_line(&d.describe())))?;
        // A leave is this device's last event: while anything is unsent, so is the leave,
        // and what came before it goes with it.
        if d.left && s.unsent_events > 0 {
            ctx.out.line(
                "  the leave has not reached the relay yet: it goes, with what was written before it, at the next `duet sync`",
            )?;
        } else if s.pending_changes + s.unsent_events as i64 > 0 {
            ctx.out.line(
                "  what is pending or unsent here can no longer reach the space (`duet export` keeps it)",
            )?;
        }
    }
    for l in &s.left {
        let name = safe_line(l.name.as_deref().unwrap_or("a partner"));
        let when = crate::output::when(l.at_ms);
        ctx.out.line(if l.removed {
            format!("  {name} is gone: every device of theirs was removed, the last on {when}")
        } else {
            format!("  {name} left on {when}")
        })?;
    }
    for m in &s.members {
        ctx.out.line(format!(
            "  member {} device {}{}",
            safe_line(m.name.as_deref().unwrap_or("(name not synced yet)")),
            short_key(&m.device),
            if m.this_device { " (this device)" } else { "" }
        ))?;
    }
    Ok(())
}
