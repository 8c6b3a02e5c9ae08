//! `duet device add|list|remove` and `duet verify`: several devices per person, and
//! checking in person that no one else's device is in the shared space.

use anyhow::Context;
use duet_core::app::UnverifiedDevice;
use duet_core::device::DeviceError;

use super::Ctx;
use crate::output::{note, safe_line, when};
use crate::transport::Http;

/// Device subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DeviceCmd {
    /// Print a one-time code that adds another device of yours (shared and personal space).
    #[command(
        after_help = "Example:\n  duet device add --expires 30m   # then, on the other device: duet join CODE"
    )]
    Add {
        /// How long the code stays valid: 30m, 24h, 7d.
        #[arg(long, default_value = "24h", value_parser = super::invite::parse_duration)]
        expires: i64,
    },
    /// List every device of both partners.
    #[command(after_help = "Example:\n  duet device list")]
    List,
    /// Remove a device (one of yours, or a partner's lost device) from the spaces.
    Remove {
        /// Device key prefix, as shown by `duet device list`.
        #[arg(value_parser = device_prefix)]
        device: String,
        /// Remove a device of your partner without asking (for scripts).
        #[arg(long)]
        yes: bool,
    },
}

/// Why no device can be added when this one left the shared space, or the partner
/// removed it from there: its personal space still works here, and `start-over` (the
/// advice for a device in no space) would set it aside.
fn gone_from_shared(dev: &mut duet_core::device::Device) -> anyhow::Result<Option<anyhow::Error>> {
    let personal_kept = dev.member_of(duet_core::store::SpaceKind::Personal)?;
    Ok(dev
        .departed()?
        .filter(|d| d.left || personal_kept)
        .map(|left| {
            anyhow::anyhow!(
                "{}, and a new device joins both spaces: none can be added. Your personal space \
             stays yours on this device: to carry it to a new one, write a backup here (`duet \
             backup FILE`), bring it back there (`duet restore FILE --home DIR`) and use that \
             one from then on; `duet export` keeps everything readable",
                left.describe()
            )
        }))
}

/// Runs a device subcommand.
pub fn run(ctx: &Ctx, cmd: DeviceCmd) -> anyhow::Result<()> {
    match cmd {
        DeviceCmd::Add { expires } => {
            let mut dev = ctx.device()?;
            if let Some(e) = gone_from_shared(&mut dev)? {
                return Err(e);
            }
            let made = dev.invite_own_device(&Http::new()?, expires);
            super::sync::note_news(&dev.take_news(), ctx.out.quiet);
            // Learnt by the sync that came with it: the same advice as when known before.
            if made.is_err()
                && let Some(e) = gone_from_shared(&mut dev)?
            {
                return Err(e);
            }
            let code = super::invite::Made::from(made.map(|c| (c.encode(), c.expires_at)))?;
            if ctx.out.json {
                return code.hand_over(ctx, &mut dev);
            }
            if !ctx.out.quiet {
                note("On your other device run: duet join CODE");
                note(&format!(
                    "The code gives access to your private reflections too: keep it to yourself. It expires {}.",
                    when(code.expires_at)
                ));
            }
            code.warn_unsent(ctx, "your other device can join with it");
            code.hand_over(ctx, &mut dev)
        }
        DeviceCmd::List => list(ctx),
        DeviceCmd::Remove { device, yes } => remove(ctx, &device, yes),
    }
}

/// A device key prefix that names something: empty is a usage error (exit 2).
fn device_prefix(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err(
            "it is empty; give the start of a device's key, as `duet device list` shows it".into(),
        );
    }
    Ok(s.to_string())
}

fn list(ctx: &Ctx) -> anyhow::Result<()> {
    let mut dev = ctx.device()?;
    let rows = dev.device_list()?;
    if ctx.out.json {
        return ctx.out.json(&rows);
    }
    // The devices are read from the space's membership, which a join cut short has
    // not read yet: an empty list said nothing.
    if rows.is_empty() && dev.joining()? {
        ctx.out.line(
            "No devices here yet: joining is not finished (the first sync did not complete). Run `duet sync` to finish it; the space's devices arrive with it.",
        )?;
        return Ok(());
    }
    for r in &rows {
        ctx.out.line(format!(
            "{}  {} joined {}  last pushed {}  {}{}{}",
            crate::output::short_key(&r.device),
            crate::output::pad(&safe_line(r.name.as_deref().unwrap_or("?")), 10),
            when(r.joined_ms),
            r.last_pushed_ms.map(when).unwrap_or_else(|| "-".into()),
            if r.verified {
                "verified"
            } else {
                "NOT verified"
            },
            match (r.removed, r.left) {
                (true, true) => "  (left)",
                (true, false) => "  (removed)",
                _ => "",
            },
            if r.this_device { "  (this device)" } else { "" },
        ))?;
    }
    Ok(())
}

/// Asks before a device of the partner is removed, saying what it means; `--yes`
/// answers for scripts. Without a terminal to ask on, refuses.
fn consent(
    ctx: &Ctx,
    dev: &mut duet_core::device::Device,
    device: &[u8; 32],
    yes: bool,
) -> anyhow::Result<()> {
    let Some(p) = dev.partner_removal(device)? else {
        return Ok(());
    };
    let name = safe_line(&p.name).to_string();
    let what = if p.last_device {
        format!(
            "this is {name}'s only device: {name} will no longer be able to read or write your \
             shared space, for good, as after a leave: no backup or new device of {name}'s \
             comes back into it, and it takes no other partner (they keep what their device \
             already holds). If {name} has only lost this device, {name} brings it back from \
             a backup (`duet restore`) instead"
        )
    } else {
        format!(
            "this is one of {name}'s devices: it will no longer read or write your shared space"
        )
    };
    crate::confirm::ask(
        ctx,
        &what,
        "Remove it?",
        &format!("Talk with {name} first; to remove it, run the command again with --yes"),
        "nothing was removed",
        yes,
    )
}

fn remove(ctx: &Ctx, query: &str, yes: bool) -> anyhow::Result<()> {
    let mut dev = ctx.device()?;
    // Learn about devices that joined since the last sync; offline, work from what is known.
    if let Err(e) = dev.sync(&Http::new()?) {
        note(&format!(
            "note: could not sync first ({}); using the devices known on this device",
            crate::advice::message(&e)
        ));
    }
    // Not a usage error: the command was well formed, no device answers to it.
    let device = dev.find_device(query).map_err(|e| match e {
        DeviceError::NoSuchDevice(_) => {
            anyhow::anyhow!("{e}; `duet device list` shows the devices")
        }
        e => anyhow::Error::new(e),
    })?;
    consent(ctx, &mut dev, &device, yes)?;
    let done = dev.remove_device_everywhere(&device)?;
    let removed: Vec<&str> = done.spaces.iter().map(|k| k.as_str()).collect();
    if removed.is_empty() {
        anyhow::bail!(
            "device {} is in no space this device can still change; `duet device list` shows the devices",
            &hex::encode(device)[..12]
        );
    }
    const NOT_SENT: &str = "the removal is recorded on this device, but the relay has not confirmed it (if the connection broke on the way back, it may have reached it); run `duet sync`, which sends it or finds it there";
    let reports = dev.sync(&Http::new()?).context(NOT_SENT)?;
    if let Some((kind, _)) = reports.iter().find(|(_, r)| r.departed_now) {
        anyhow::bail!(
            "this device was itself removed from the {} space before its removal of device {} reached the relay, so that removal was not made; `duet status` says who removed this device",
            kind.as_str(),
            &hex::encode(device)[..12]
        );
    }
    if dev.unsent_removals()? > 0 {
        anyhow::bail!(
            "{NOT_SENT} (the relay refused it; if `duet sync` keeps saying so, the relay may be misbehaving)"
        );
    }
    let withdrawn = done.codes_withdrawn;
    let short = &hex::encode(device)[..12];
    let (spaces, it) = if removed.len() > 1 {
        ("spaces", "them")
    } else {
        ("space", "it")
    };
    ctx.out.line(format!(
        "Removed device {short} from the {} {spaces}. It can no longer read or write {it} through the relay.{}",
        removed.join(" and "),
        if removed.contains(&"personal") {
            ""
        } else {
            " Its personal space is its person's: they are told at their next sync, and only they can remove it there."
        }
    ))?;
    if withdrawn > 0 {
        ctx.out.line(format!(
            "{} withdrawn with it (made before the removal, {} the space's old key); `duet device add` or `duet invite` makes a new one.",
            duet_core::words::count(withdrawn, "open code was", "open codes were"),
            if withdrawn == 1 { "it carried" } else { "they carried" }
        ))?;
    }
    Ok(())
}

/// Show the safety code of the shared space; compare it in person, then confirm.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Record that you compared the code in person and it matched. Give the code you
    /// compared (`--confirm 58177...`) to be sure no device joined since you looked;
    /// without it, only a code that did not change during this command is confirmed.
    /// The code may be pasted as shown, its six groups apart.
    #[arg(long, value_name = "CODE", num_args = 0..=6)]
    confirm: Option<Vec<String>>,
}

/// Runs `duet verify`.
pub fn verify(ctx: &Ctx, a: VerifyArgs) -> anyhow::Result<()> {
    // The code as typed: one word, or its groups as `duet verify` shows them.
    let confirm = a.confirm.map(|groups| groups.join(" "));
    let mut dev = ctx.device()?;
    // Without a code, what is confirmed is the code as it stood before the sync below: a
    // device the sync brings in was never shown to the person.
    let before = match confirm.as_deref() {
        Some("") => dev.safety(false).ok().map(|s| s.code),
        _ => None,
    };
    // The code is about the current membership: learn of devices that joined meanwhile.
    if let Err(e) = dev.sync(&Http::new()?) {
        note(&format!(
            "note: could not sync first ({}); the code reflects the devices known here",
            crate::advice::message(&e)
        ));
    }
    let compared = match confirm.as_deref() {
        None => None,
        Some("") => Some(before.as_deref()),
        Some(code) => Some(Some(code)),
    };
    let safety = dev.confirm_safety(compared).map_err(|e| match e {
        DeviceError::NotSynced => anyhow::anyhow!("{e}; run `duet sync` first"),
        e => e.into(),
    })?;
    if ctx.out.json {
        return ctx.out.json(&safety);
    }
    ctx.out.line(format!(
        "Safety code: {}  ({})",
        safety.code,
        duet_core::words::count(safety.devices, "device", "devices")
    ))?;
    if confirm.is_some() {
        ctx.out.line("Recorded: these devices are verified.")?;
    } else if let Some(d) = dev.departed()? {
        // Nothing to vouch for any more: the code is of the space as this device last
        // saw it.
        ctx.out.line(format!(
            "{}: this code is of the shared space as this device last saw it, and there is nothing left to confirm here.",
            safe_line(&d.describe())
        ))?;
    } else if safety.verified {
        ctx.out.line(
            "Verified already: you confirmed these devices in person. Compare again whenever you like.",
        )?;
    } else if dev.partners_by_presence()?.0.is_empty() {
        // Gone is not "not yet": an invite is refused then, and nobody is left to compare.
        match dev.partner()? {
            duet_core::app::Partner::Gone(name) => ctx.out.line(format!(
                "{} is no longer in the shared space (they left, or their last device was removed): there is no partner's code to compare this one with.",
                safe_line(&name)
            ))?,
            _ => ctx.out.line("No partner has joined yet: once they have (`duet invite`), compare this code with their `duet verify` in person; if it matches, run `duet verify --confirm`.")?,
        }
    } else {
        ctx.out.line("Compare it in person with the code your partner's Duet shows (`duet verify`, or Partner and devices in the app); if it matches, run `duet verify --confirm`.")?;
    }
    Ok(())
}

/// A plain note about devices not verified yet (for `duet sync` and `duet status`).
pub fn unverified_note(unverified: &[UnverifiedDevice]) -> Option<String> {
    if unverified.is_empty() {
        return None;
    }
    let list: Vec<String> = unverified
        .iter()
        .map(|d| {
            format!(
                "{} ({})",
                crate::output::short_key(&d.device),
                d.name.as_deref().unwrap_or("unknown")
            )
        })
        .collect();
    Some(format!(
        "not verified: device {}. Compare `duet verify` codes in person, then run `duet verify --confirm`",
        list.join(", ")
    ))
}
