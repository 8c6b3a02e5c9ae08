//! `duet leave`: this person leaves the shared space, keeping a full export of what this
//! device can read; the personal space is untouched.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::json;

use super::Ctx;
use crate::output::note;
use crate::transport::Http;

/// Leave the shared space (all your devices with it), keeping an export of everything.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the export of everything this device can read (JSON, mode 0600).
    #[arg(long, default_value = "duet-export.json")]
    export: PathBuf,
    /// Leave without asking (for scripts).
    #[arg(long)]
    yes: bool,
}

/// A second leave: the first happened. One stopped before it was sent (killed,
/// offline) is done here, and the next sync sends it: that is what to do, not leave
/// again.
fn left_already(
    dev: &mut duet_core::device::Device,
    d: duet_core::store::Departed,
) -> anyhow::Error {
    let unsent = d.left
        && dev.status().is_ok_and(|st| {
            st.spaces
                .iter()
                .any(|s| s.kind == "shared" && s.unsent_events > 0)
        });
    if unsent {
        return anyhow::anyhow!(
            "{}; the leave has not reached the relay yet: run `duet sync` to send it",
            d.describe()
        );
    }
    anyhow::anyhow!(crate::advice::message(
        &duet_core::device::DeviceError::Departed(d)
    ))
}

/// Syncs the leave out; why the relay has not confirmed it, if it has not. A sync that
/// went through may still have had the leave refused (a relay that no longer counts this
/// device a member): then the leave is still unsent here.
fn send_leave(dev: &mut duet_core::device::Device) -> anyhow::Result<Option<String>> {
    Ok(match dev.sync(&Http::new()?) {
        Err(e) => Some(crate::advice::message(&e)),
        Ok(_) if dev.unsent()?.leave => {
            Some("the relay did not take it; `duet status` says why".to_string())
        }
        Ok(_) => None,
    })
}

/// Runs `duet leave`.
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let mut dev = ctx.device()?;
    // Said first: a second leave is told that the first one happened, not asked for
    // another export file.
    if let Some(d) = dev.departed()? {
        return Err(left_already(&mut dev, d));
    }
    // Checked before anything is asked or sent: leaving must not cost another file.
    if a.export.exists() {
        anyhow::bail!(crate::UsageError(format!(
            "{} exists already and the export would overwrite it; name another file with \
             --export FILE (you did not leave)",
            a.export.display()
        )));
    }
    // Everything the partner wrote up to now, so the export holds it.
    if let Err(e) = dev.sync(&Http::new()?) {
        note(&format!(
            "note: could not sync first ({}); leaving with what this device holds",
            crate::advice::message(&e)
        ));
    }
    // Only a partner still in the space is left behind (one who left first is gone).
    let partners = dev.partners_by_presence()?.0.join(" and ");
    let with = if partners.is_empty() {
        "the shared space".to_string()
    } else {
        format!(
            "the space you share with {}",
            crate::output::safe_line(&partners)
        )
    };
    crate::confirm::ask(
        ctx,
        &format!(
            "You are about to leave {with}: none of your devices will read or write it again, \
             and this cannot be undone. What your partner's devices already hold stays with them, \
             and your blind ratings still sealed are shown to them as you leave"
        ),
        "Leave?",
        "To leave, run the command again with --yes",
        "you did not leave",
        a.yes,
    )?;
    // The export and the leave under one hold of the home's write lock: what another
    // duet process writes meanwhile (a watcher, the app) is in the export or after the
    // leave (refused), never between the two.
    let held = dev.hold_writes()?;
    let export = dev.export()?;
    let body = serde_json::to_vec_pretty(&export).context("cannot write the export")?;
    crate::output::write_private(&a.export, &body, &ctx.home).with_context(|| {
        format!(
            "cannot write the export to {}; nothing was left",
            a.export.display()
        )
    })?;
    let left = dev.leave()?;
    drop(held);
    let unconfirmed = send_leave(&mut dev)?;
    if ctx.out.json {
        return ctx.out.json(&json!({
            "left_at": crate::output::iso(left.at),
            "export": a.export,
            "sent": unconfirmed.is_none(),
        }));
    }
    ctx.out.line(format!(
        "You left the shared space. Everything this device could read is in {}; this device keeps it readable too, and your personal space is untouched.",
        a.export.display()
    ))?;
    if let Some(why) = unconfirmed {
        note(&format!(
            "note: the leave is recorded here, but the relay has not confirmed it ({why}); run `duet sync`, which sends it or finds it there"
        ));
    }
    Ok(())
}
