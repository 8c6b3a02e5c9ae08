//! `duet device add|list|remove` and `duet verify`: several devices per person, and
//! checking in person that no one else's device is in the shared space.

use std::collections::BTreeMap;

use anyhow::Context;
use duet_core::store::SpaceKind;
use duet_core::sync::fold_state;
use duet_core::verify::{members, safety_code};
use serde_json::json;

use super::Ctx;
use crate::UsageError;
use crate::output::{data, iso, note, safe_line, when};
use crate::transport::Http;

/// Device subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DeviceCmd {
    /// Print a one-time code that adds another device of yours (shared and personal space).
    Add {
        /// How long the code stays valid: 30m, 24h, 7d.
        #[arg(long, default_value = "24h", value_parser = super::sync::parse_duration)]
        expires: i64,
    },
    /// List every device of both partners.
    List,
    /// Remove a device (one of yours, or a partner's lost device) from the spaces.
    Remove {
        /// Device key prefix, as shown by `duet device list`.
        device: String,
    },
}

/// Runs a device subcommand.
pub fn run(ctx: &Ctx, cmd: DeviceCmd) -> anyhow::Result<()> {
    match cmd {
        DeviceCmd::Add { expires } => {
            let mut dev = ctx.device()?;
            let code = dev.add_device(expires)?;
            dev.sync(&Http::new()?).context(
                "the code was created but could not reach the relay; run `duet sync` before using it",
            )?;
            if ctx.out.json {
                return ctx
                    .out
                    .json(&json!({ "code": code.encode(), "expires_at": iso(code.expires_at) }));
            }
            if !ctx.out.quiet {
                note("On your other device run: duet join CODE");
                note(&format!(
                    "The code gives access to your private reflections too: keep it to yourself. It expires {}.",
                    when(code.expires_at)
                ));
            }
            data(&code.encode())?;
            Ok(())
        }
        DeviceCmd::List => list(ctx),
        DeviceCmd::Remove { device } => remove(ctx, &device),
    }
}

/// Person id -> name, from the read models: a partner's malformed entity never stops
/// the listing.
fn names(dev: &mut duet_core::device::Device) -> anyhow::Result<BTreeMap<String, String>> {
    Ok(dev
        .view_parts(SpaceKind::Shared, duet_core::readmodel::Parts::Goals)?
        .people
        .into_iter()
        .map(|(k, p)| (k, p.name))
        .collect())
}

fn list(ctx: &Ctx) -> anyhow::Result<()> {
    let mut dev = ctx.device()?;
    let rec = dev.space(SpaceKind::Shared)?;
    let state = fold_state(&dev.store, &rec.id)?;
    let people = names(&mut dev)?;
    let verified = dev.store.verified(&rec.id)?;
    let last = state.last_times();
    let mut rows = Vec::new();
    for (key, m) in state.all_devices() {
        let person = hex::encode(m.person);
        rows.push(json!({
            "device": hex::encode(key),
            "person": person,
            "name": people.get(&person),
            "joined_at": iso(m.joined_at),
            "last_pushed_at": last.get(key).map(|t| iso(*t)),
            "verified": *key == dev.me.device_key() || verified.contains(key),
            "removed": state.is_removed(key),
            "this_device": *key == dev.me.device_key(),
        }));
    }
    if ctx.out.json {
        return ctx.out.json(&rows);
    }
    for (r, (key, m)) in rows.iter().zip(state.all_devices()) {
        ctx.out.line(format!(
            "{}  {:<10} joined {}  last pushed {}  {}{}{}",
            &hex::encode(key)[..12],
            safe_line(r["name"].as_str().unwrap_or("?")),
            when(m.joined_at),
            last.get(key)
                .map(|t| when(*t))
                .unwrap_or_else(|| "-".into()),
            if r["verified"] == true {
                "verified"
            } else {
                "NOT verified"
            },
            if r["removed"] == true {
                "  (removed)"
            } else {
                ""
            },
            if r["this_device"] == true {
                "  (this device)"
            } else {
                ""
            },
        ))?;
    }
    Ok(())
}

fn remove(ctx: &Ctx, query: &str) -> anyhow::Result<()> {
    let mut dev = ctx.device()?;
    // Learn about devices that joined since the last sync; offline, work from what is known.
    if let Err(e) = dev.sync(&Http::new()?) {
        note(&format!(
            "note: could not sync first ({e}); using the devices known on this device"
        ));
    }
    // Devices of both spaces: a device may have joined only the personal space.
    let q = query.trim().to_ascii_lowercase();
    let mut matches: Vec<[u8; 32]> = Vec::new();
    for kind in [SpaceKind::Shared, SpaceKind::Personal] {
        let rec = dev.space(kind)?;
        let state = fold_state(&dev.store, &rec.id)?;
        for k in state.members().keys() {
            if !q.is_empty() && hex::encode(k).starts_with(&q) && !matches.contains(k) {
                matches.push(*k);
            }
        }
    }
    let device = match matches.as_slice() {
        [one] => *one,
        [] => {
            return Err(UsageError(format!(
                "no current device matches {query:?}; `duet device list` shows the devices"
            ))
            .into());
        }
        _ => {
            return Err(UsageError(format!(
                "{query:?} matches several devices; type more of the key"
            ))
            .into());
        }
    };
    if device == dev.me.device_key() {
        return Err(UsageError(
            "this is the device you are using; remove it from another of your devices".into(),
        )
        .into());
    }
    let mut removed = Vec::new();
    for kind in [SpaceKind::Shared, SpaceKind::Personal] {
        if dev.remove_device(kind, &device)? {
            removed.push(kind.as_str());
        }
    }
    dev.sync(&Http::new()?).context(
        "the removal is recorded on this device but has not reached the relay; run `duet sync`",
    )?;
    ctx.out.line(format!(
        "Removed device {} from the {} space{}. It can no longer read or write through the relay.",
        &hex::encode(device)[..12],
        removed.join(" and "),
        if removed.len() > 1 { "s" } else { "" }
    ))?;
    Ok(())
}

/// Show the safety code of the shared space; compare it in person, then confirm.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Record that you compared the code in person and it matched.
    #[arg(long)]
    confirm: bool,
}

/// Runs `duet verify`.
pub fn verify(ctx: &Ctx, a: VerifyArgs) -> anyhow::Result<()> {
    let mut dev = ctx.device()?;
    // The code is about the current membership: learn of devices that joined meanwhile.
    if let Err(e) = dev.sync(&Http::new()?) {
        note(&format!(
            "note: could not sync first ({e}); the code reflects the devices known here"
        ));
    }
    let rec = dev.space(SpaceKind::Shared)?;
    let state = fold_state(&dev.store, &rec.id)?;
    let code = safety_code(&state)
        .context("the shared space has not been synced yet; run `duet sync` first")?;
    if a.confirm {
        dev.store
            .confirm_verified(&rec.id, &code, &members(&state))?;
    }
    if ctx.out.json {
        return ctx.out.json(
            &json!({ "code": code, "devices": state.members().len(), "confirmed": a.confirm }),
        );
    }
    ctx.out.line(format!(
        "Safety code: {code}  ({} devices)",
        state.members().len()
    ))?;
    if a.confirm {
        ctx.out.line("Recorded: these devices are verified.")?;
    } else {
        ctx.out.line("Compare it with your partner's `duet verify` in person; if it matches, run `duet verify --confirm`.")?;
    }
    Ok(())
}

/// A plain note about devices not verified yet (for `duet sync` and `duet status`).
pub fn unverified_note(dev: &mut duet_core::device::Device) -> anyhow::Result<Option<String>> {
    let unverified = dev.unverified()?;
    if unverified.is_empty() {
        return Ok(None);
    }
    let people = names(dev)?;
    let list: Vec<String> = unverified
        .iter()
        .map(|(k, p)| {
            format!(
                "{} ({})",
                &hex::encode(k)[..12],
                people.get(p).cloned().unwrap_or_else(|| "unknown".into())
            )
        })
        .collect();
    Ok(Some(format!(
        "not verified: device {}. Compare `duet verify` codes in person, then run `duet verify --confirm`",
        list.join(", ")
    )))
}
