//! `duet start-over`: sets this home's device aside (moved into a folder of the home,
//! nothing deleted) where going on with it cannot help, so that `duet init` or
//! `duet join` sets the same home up anew; the app's "Start over" on the command line.

use duet_core::device::StartOver;
use serde_json::json;

use super::Ctx;

/// Set this device aside (kept in a folder of the home) so the home can start anew.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Start over without asking (for scripts).
    #[arg(long)]
    yes: bool,
    /// Start over although events of this device have not reached the relay (a leave
    /// among them): for a relay gone for good. They stay in the folder, unsent.
    #[arg(long)]
    anyway: bool,
}

/// Runs `duet start-over`.
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let mut dev = ctx.device()?;
    let Some(why) = dev.may_start_over()? else {
        let partners = dev.partners()?.join(" and ");
        let key = hex::encode(dev.me.device_key());
        let me = dev.me.person_id.to_string();
        let own_others = dev
            .device_list()?
            .iter()
            .any(|d| d.person == me && !d.this_device && !d.removed && !d.left);
        let with = if partners.is_empty() {
            "your other devices".to_string()
        } else {
            crate::output::safe_line(&partners).to_string()
        };
        let this_only = if own_others {
            format!(
                "to stop using this device only, remove it from another of your devices (`duet \
                 device remove {}` there), then start over here; ",
                crate::output::short_key(&key)
            )
        } else {
            String::new()
        };
        anyhow::bail!(
            "nothing was set aside: this device shares its space with {with}; {this_only}to \
             stop for all your devices, leave first (`duet leave`); or keep it and use another \
             folder for a new device (`duet --home DIR init`)"
        );
    };
    let unsent = dev.unsent_before_starting_over(why)?;
    if unsent.events > 0 && !a.anyway {
        anyhow::bail!(
            "nothing was set aside: {}; run `duet sync` first (the relay must be reachable), \
             then start over; if no sync can send them (the relay is gone for good), `duet \
             start-over --anyway` sets them aside unsent, still readable in the folder",
            unsent.describe()
        );
    }
    let reason = match why {
        StartOver::Departed => "this device can no longer sync its shared space",
        StartOver::Alone => "nobody else has joined your shared space",
        StartOver::PartnerGone => "your partner is no longer in your shared space",
    };
    crate::confirm::ask(
        ctx,
        &format!(
            "{}; starting over moves this device's store into a folder of its home (nothing is \
             deleted, `duet --home FOLDER` still reads it), and `duet init` or `duet join CODE` \
             then sets the home up anew",
            crate::output::capitalised(reason)
        ),
        "Start over?",
        "To start over, run the command again with --yes",
        "nothing was set aside",
        a.yes,
    )?;
    // Said in the next step: the new identity needs a relay to pair through, and the
    // store that knew it is set aside.
    let relay = dev.relay()?;
    let aside = dev.set_home_aside()?;
    if ctx.out.json {
        return ctx.out.json(&json!({
            "set_aside": aside,
            "why": match why {
                StartOver::Departed => "departed",
                StartOver::Alone => "alone",
                StartOver::PartnerGone => "partner_gone",
            },
        }));
    }
    said(ctx, &aside, relay.as_deref())
}

/// Where the device was set aside, and what to run next.
fn said(ctx: &Ctx, aside: &std::path::Path, relay: Option<&str>) -> anyhow::Result<()> {
    let shown = aside.display().to_string();
    ctx.out.line(format!(
        "This device is set aside in {}; it still reads with `duet --home {} history`.",
        crate::output::safe_line(&shown),
        crate::output::safe_line(&for_shell(&shown))
    ))?;
    let init = match relay {
        Some(url) => format!(
            "`duet init --name NAME --relay {}` (with `--token TOKEN` if its operator gave you one)",
            crate::output::safe_line(&for_shell(url))
        ),
        None => "`duet init --name NAME --relay URL`".to_string(),
    };
    ctx.out.line(format!(
        "Next: {init} to start new, or `duet join CODE --name NAME` with a code from your partner (`duet invite`) or from one of your devices (`duet device add`)."
    ))?;
    Ok(())
}

/// `path` as one word of a shell command line: quoted when it holds anything but the
/// characters a path usually has.
fn for_shell(path: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:@,".contains(c);
    if !path.is_empty() && path.chars().all(plain) {
        return path.to_string();
    }
    format!("'{}'", path.replace('\'', "'\\''"))
}
