//! `duet invite`, `duet join`, `duet sync`, `duet status` and `duet relay set`: pairing
//! and syncing through a relay.

use anyhow::Context;
use duet_core::device::{Device, DeviceError};
use duet_core::invite::{DeviceCode, InviteCode};
use duet_core::store::SpaceKind;
use duet_core::sync::fold_state;
use duet_core::sync::{SyncError, TransportError};
use serde_json::json;

use super::Ctx;
use crate::UsageError;
use crate::output::{data, note, safe_line};
use crate::transport::Http;

/// Checks that a relay URL is http(s)://host[:port].
pub fn check_relay_url(url: &str) -> anyhow::Result<()> {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url
            .split("://")
            .nth(1)
            .is_some_and(|rest| !rest.is_empty() && !rest.contains(' '));
    if !ok {
        return Err(UsageError(format!(
            "relay URL must look like https://relay.example.org or http://127.0.0.1:8787 (got {url:?})"
        ))
        .into());
    }
    Ok(())
}

/// Parses a duration like `24h`, `30m`, `7d`.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("expected a duration like 30m, 24h or 7d (got {s:?})"))?;
    let ms = match unit {
        "m" => 60_000,
        "h" | "" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("unknown duration unit {unit:?}: use m, h or d")),
    };
    if n <= 0 || n > 30 * 24 {
        return Err("the invite lifetime must be between 1 minute and 30 days".into());
    }
    Ok(n * ms)
}

/// Print a single-use invite code for your partner's device.
#[derive(Debug, clap::Args)]
pub struct InviteArgs {
    /// How long the code stays valid: 30m, 24h, 7d.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    expires: i64,
}

/// Runs `duet invite`.
pub fn invite(ctx: &Ctx, a: InviteArgs) -> anyhow::Result<()> {
    let mut dev = ctx.device()?;
    let code = dev.invite(a.expires)?;
    // The relay must know the invite before the partner can use it.
    let reports = dev.sync(&Http::new()?)
        .context("the invite was created but could not reach the relay; run `duet sync` before your partner joins")?;
    // A code the relay does not know (e.g. the shared space could not be created there
    // without a creation token) would only fail on the partner's side.
    if let Some(m) = reports.iter().find_map(|(k, r)| {
        (*k == SpaceKind::Shared)
            .then_some(r.push_refused.as_ref())
            .flatten()
    }) {
        anyhow::bail!(
            "the invite was created but the relay refused it, so your partner could not use it: {m}"
        );
    }
    if ctx.out.json {
        return ctx.out.json(&json!({
            "code": code.encode(),
            "expires_at": crate::output::iso(code.expires_at),
        }));
    }
    if !ctx.out.quiet {
        note("Give this code to your partner in person or over a channel you both trust.");
        note(&format!(
            "Anyone who has it can join your shared space until it is used or expires ({}).",
            crate::output::when(code.expires_at)
        ));
    }
    data(&code.encode())?;
    Ok(())
}

/// Join your partner's shared space with an invite code, or add this device to your own
/// spaces with a code from `duet device add`.
#[derive(Debug, clap::Args)]
pub struct JoinArgs {
    /// The code from `duet invite` (partner) or `duet device add` (your other device).
    code: String,
    /// Your name, as your partner will see it (not needed with a device code).
    #[arg(long)]
    name: Option<String>,
}

/// Runs `duet join`.
pub fn join(ctx: &Ctx, a: JoinArgs) -> anyhow::Result<()> {
    let home_existed = ctx.home.exists();
    let (mut dev, space) = if a.code.trim().starts_with(duet_core::invite::DEVICE_PREFIX) {
        let code = DeviceCode::decode(&a.code).map_err(|e| UsageError(e.to_string()))?;
        let dev = Device::join_own(&ctx.home, &code)
            .with_context(|| format!("cannot join in {}", ctx.home.display()))?;
        (dev, code.shared.space)
    } else {
        let code = InviteCode::decode(&a.code).map_err(|e| UsageError(e.to_string()))?;
        let name = a.name.ok_or_else(|| {
            UsageError("a name is required with a partner's invite code: --name NAME".into())
        })?;
        let dev = Device::join(&ctx.home, &code, &name)
            .with_context(|| format!("cannot join in {}", ctx.home.display()))?;
        (dev, code.space)
    };
    let reports = match dev.sync(&Http::new()?) {
        Ok(r) => r,
        Err(DeviceError::Sync(SyncError::Transport(TransportError::Refused { status, body }))) => {
            // The relay said no (used, expired or unknown invite): undo the half-made
            // device so the same home can join with a new code.
            let db = dev.store.path().to_path_buf();
            drop(dev);
            for suffix in ["", "-wal", "-shm"] {
                let mut p = db.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(std::path::PathBuf::from(p));
            }
            if !home_existed {
                let _ = std::fs::remove_dir(&ctx.home);
            }
            anyhow::bail!(
                "the relay refused to let this device join ({status} {}: {}); ask your partner for a new code with `duet invite`",
                body.error,
                body.message
            );
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(
                "joined locally, but the first sync failed; run `duet sync` to finish joining",
            ));
        }
    };
    // The sync just built the read models; no need to load the whole document again.
    let view = dev.view_parts(SpaceKind::Shared, duet_core::readmodel::Parts::Goals)?;
    let partners: Vec<String> = view
        .people
        .into_iter()
        .filter(|(id, _)| *id != dev.me.person_id)
        .map(|(_, p)| p.name)
        .collect();
    if ctx.out.json {
        return ctx.out.json(&json!({ "joined": space.to_string(), "partners": partners, "reports": reports.iter().map(|(k, r)| json!({"space": k.as_str(), "report": r})).collect::<Vec<_>>() }));
    }
    ctx.out.line(format!(
        "Joined the shared space with {}. {} goals synced.",
        if partners.is_empty() {
            "your partner".to_string()
        } else {
            safe_line(&partners.join(", ")).into_owned()
        },
        view.goals.len()
    ))?;
    Ok(())
}

/// Push local changes and pull your partner's, verifying everything.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Keep syncing until interrupted (Ctrl-C): your partner's changes arrive as soon as
    /// the relay has them, and changes made on this device are sent within a second.
    #[arg(long)]
    watch: bool,
    /// First drop the events that wait for an earlier event the relay never served
    /// (after a warning that says their number reached the cap), then sync.
    #[arg(long, conflicts_with = "watch")]
    drop_waiting: bool,
}

/// Runs `duet sync`.
pub fn sync(ctx: &Ctx, a: SyncArgs) -> anyhow::Result<()> {
    if a.watch {
        return watch(ctx);
    }
    if a.drop_waiting {
        let n = ctx.device()?.drop_waiting()?;
        note(&format!(
            "dropped {n} waiting event{}; if any was genuine, it is read again when the relay serves it again",
            if n == 1 { "" } else { "s" }
        ));
    }
    let mut dev = ctx.device()?;
    let reports = dev
        .sync(&Http::new()?)
        .context("sync did not finish; nothing was lost, run `duet sync` again")?;
    if ctx.out.json {
        return ctx.out.json(
            &reports
                .iter()
                .map(|(k, r)| json!({ "space": k.as_str(), "report": r }))
                .collect::<Vec<_>>(),
        );
    }
    print_reports(ctx, &reports)?;
    if let Some(n) = super::device::unverified_note(&mut dev)? {
        note(&format!("note: {}", safe_line(&n)));
    }
    let refused: Vec<String> = reports
        .iter()
        .filter_map(|(k, r)| {
            r.push_refused
                .as_ref()
                .map(|m| format!("{} space: {m}", k.as_str()))
        })
        .collect();
    if !refused.is_empty() {
        anyhow::bail!(
            "the relay refused this device's changes ({}); they are kept on this device. If the relay was restored from an old backup, see docs/self-hosting.md",
            refused.join("; ")
        );
    }
    if reports
        .iter()
        .all(|(_, r)| r.arrivals.is_empty() && r.pushed_changes == 0)
    {
        ctx.out.line("Up to date.")?;
    }
    Ok(())
}

/// Prints what a sync did: warnings, what arrived from whom, how many changes were sent.
fn print_reports(
    ctx: &Ctx,
    reports: &[(SpaceKind, duet_core::sync::SyncReport)],
) -> std::io::Result<()> {
    for (kind, r) in reports {
        for w in &r.warnings {
            note(&format!(
                "warning ({} space): {}",
                kind.as_str(),
                safe_line(w)
            ));
        }
        for a in &r.arrivals {
            // "2 ratings from NAME": the name is the partner's.
            ctx.out
                .line(format!("{}: {}", kind.as_str(), safe_line(&a.summary())))?;
        }
        if r.pushed_changes > 0 {
            ctx.out.line(format!(
                "{}: sent {} change{}",
                kind.as_str(),
                r.pushed_changes,
                if r.pushed_changes == 1 { "" } else { "s" }
            ))?;
        }
    }
    Ok(())
}

/// How often `duet sync --watch` looks for changes other `duet` commands made on this
/// device (one `PRAGMA data_version`, no table read).
const LOCAL_CHECK: std::time::Duration = std::time::Duration::from_millis(200);

/// Runs `duet sync --watch`: one live socket per space (`crate::live`), a sync whenever
/// the relay says a space moved or this device has unsent changes, until interrupted.
fn watch(ctx: &Ctx) -> anyhow::Result<()> {
    use crate::live::{self, Signal};
    use std::sync::mpsc::RecvTimeoutError;

    let mut dev = ctx.device()?;
    let http = Http::new()?;
    let (tx, rx) = std::sync::mpsc::channel();
    let mut listening = 0;
    for rec in dev.store.spaces()? {
        let Some(relay) = rec.relay.clone() else {
            continue;
        };
        live::spawn(relay, rec.id, rec.kind, dev.me.clone(), tx.clone());
        listening += 1;
    }
    drop(tx);
    if listening == 0 {
        return Err(SyncError::NoRelay.into());
    }
    ctx.out.line(
        "Watching for changes; press Ctrl-C to stop. Changes made here are sent as you make them.",
    )?;
    let mut seen = dev.store.data_version()?;
    let mut lost = false;
    // A sync that stopped early (a page cap, a stalled parse) reads on at the next check.
    let mut more = false;
    loop {
        let due = match rx.recv_timeout(LOCAL_CHECK) {
            Ok(Signal::Moved) => true,
            Ok(Signal::Connected(kind)) => {
                if lost {
                    ctx.out
                        .line(format!("{}: connected to the relay again", kind.as_str()))?;
                    lost = false;
                }
                false
            }
            Ok(Signal::Lost {
                space,
                error,
                retry_in,
            }) => {
                if !lost {
                    note(&format!(
                        "warning ({} space): {error}; reconnecting (next try in {:.1} s), \
                         changes made meanwhile are kept and sent then",
                        space.as_str(),
                        retry_in.as_secs_f64()
                    ));
                }
                lost = true;
                false
            }
            Ok(Signal::Refused(kind, msg)) => {
                note(&format!(
                    "warning ({} space): stopped watching: {msg}",
                    kind.as_str()
                ));
                listening -= 1;
                if listening == 0 {
                    anyhow::bail!(
                        "the relay refused every live connection; check `duet status` and the relay URL"
                    );
                }
                false
            }
            Err(RecvTimeoutError::Timeout) => {
                let now = dev.store.data_version()?;
                let changed = now != seen;
                seen = now;
                std::mem::take(&mut more) || (changed && pending_here(&dev)?)
            }
            Err(RecvTimeoutError::Disconnected) => {
                anyhow::bail!("every live connection stopped; run `duet sync --watch` again")
            }
        };
        if !due {
            continue;
        }
        // Several signals may be queued: one sync covers them all.
        match dev.sync(&http) {
            Ok(reports) => {
                print_reports(ctx, &reports)?;
                more = reports.iter().any(|(_, r)| r.incomplete);
                for (kind, r) in &reports {
                    if let Some(m) = &r.push_refused {
                        note(&format!(
                            "warning ({} space): the relay refused this device's changes ({m}); they are kept here",
                            kind.as_str()
                        ));
                    }
                }
            }
            // The live thread reconnects and a sync follows; nothing is lost meanwhile.
            Err(e) => note(&format!(
                "warning: sync did not finish ({e}); retrying when the relay answers"
            )),
        }
        // `seen` is not read again here: this device's own commits do not move its
        // data_version, and a `duet` command that commits during the sync must still be
        // noticed at the next check.
    }
}

/// Whether any space of this device has changes not yet sent.
fn pending_here(dev: &Device) -> anyhow::Result<bool> {
    for rec in dev.store.spaces()? {
        if dev.store.pending_count(&rec.id)? > 0 || !dev.store.unacked_events(&rec.id)?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Show relay, spaces, cursor, pending changes and members.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {}

/// Runs `duet status`.
pub fn status(ctx: &Ctx, _a: StatusArgs) -> anyhow::Result<()> {
    let mut dev = ctx.device()?;
    let mut spaces = Vec::new();
    for rec in dev.store.spaces()? {
        let state = fold_state(&dev.store, &rec.id)?;
        let (_, stats) = dev.store.load_doc(&rec.id, &dev.me)?;
        // Names from the read models: a partner's malformed entity never stops `status`.
        let people = dev
            .view_parts(rec.kind, duet_core::readmodel::Parts::Goals)?
            .people;
        let members: Vec<_> = state
            .members()
            .iter()
            .map(|(k, m)| {
                let person = hex::encode(m.person);
                json!({
                    "device": hex::encode(k),
                    "person": person,
                    "name": people.get(&person).map(|p| p.name.clone()),
                    "this_device": *k == dev.me.device_key(),
                })
            })
            .collect();
        // What this device refused, newest last, with the device that sent it.
        let names: std::collections::BTreeMap<String, String> = people
            .iter()
            .map(|(k, p)| (k.clone(), p.name.clone()))
            .collect();
        let refused: Vec<_> = duet_core::history::refused_history(
            &dev.store.refused_events(&rec.id)?,
            &state,
            &names,
        )
        .into_iter()
        .map(|e| {
            json!({
                "device": e.device,
                "person": e.author,
                "name": e.author_name,
                "reason": e.after,
                "event": e.change,
            })
        })
        .collect();
        spaces.push(json!({
            "kind": rec.kind.as_str(),
            "space": rec.id.to_string(),
            "relay": rec.relay,
            "cursor": rec.cursor,
            "pending_changes": dev.store.pending_count(&rec.id)?,
            "unsent_events": dev.store.unacked_events(&rec.id)?.len(),
            "refused_events": dev.store.refused_total(&rec.id)?,
            "refused": refused,
            "waiting_events": dev.store.held_stats(&rec.id)?.0,
            "alert": dev.store.alert(&rec.id)?,
            "members": members,
            "snapshot": stats.from_snapshot,
            "changes_after_snapshot": stats.replayed_changes,
        }));
    }
    let unverified = super::device::unverified_note(&mut dev)?;
    let v = json!({
        "unverified": unverified,
        "name": dev.me.name,
        "device": hex::encode(dev.me.device_key()),
        "home": ctx.home,
        "spaces": spaces,
    });
    if ctx.out.json {
        return ctx.out.json(&v);
    }
    ctx.out.line(format!(
        "{} (device {})",
        safe_line(&dev.me.name),
        &hex::encode(dev.me.device_key())[..12]
    ))?;
    if let Some(n) = &unverified {
        ctx.out.line(format!("  NOTE: {}", safe_line(n)))?;
    }
    for s in &spaces {
        ctx.out.line(format!(
            "{} space {}\n  relay: {}\n  cursor: {}   pending changes: {}   unsent events: {}   refused: {}",
            s["kind"].as_str().unwrap_or(""),
            s["space"].as_str().unwrap_or(""),
            safe_line(s["relay"].as_str().unwrap_or("(none: `duet relay set URL`)")),
            s["cursor"],
            s["pending_changes"],
            s["unsent_events"],
            s["refused_events"],
        ))?;
        if let Some(alert) = s["alert"].as_str() {
            ctx.out.line(format!("  WARNING: {}", safe_line(alert)))?;
        }
        // The five latest refusals; `duet history` lists them all in their place.
        let refused = s["refused"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        for r in &refused[refused.len().saturating_sub(5)..] {
            let device = r["device"].as_str().unwrap_or("");
            ctx.out.line(format!(
                "  REFUSED from {}'s device {}: {}",
                safe_line(r["name"].as_str().unwrap_or("?")),
                safe_line(&device[..12.min(device.len())]),
                safe_line(r["reason"].as_str().unwrap_or(""))
            ))?;
        }
        if s["waiting_events"].as_u64().unwrap_or(0) > 0 {
            ctx.out.line(format!(
                "  {} event(s) wait for an earlier event the relay has not served",
                s["waiting_events"]
            ))?;
        }
        if let Some(ms) = s["members"].as_array() {
            for m in ms {
                ctx.out.line(format!(
                    "  member {} device {}{}",
                    safe_line(m["name"].as_str().unwrap_or("(name not synced yet)")),
                    &m["device"].as_str().unwrap_or("")
                        [..12.min(m["device"].as_str().unwrap_or("").len())],
                    if m["this_device"].as_bool() == Some(true) {
                        " (this device)"
                    } else {
                        ""
                    }
                ))?;
            }
        }
    }
    Ok(())
}

/// Relay subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RelayCmd {
    /// Set the relay URL for every space on this device.
    Set {
        /// e.g. https://relay.example.org or http://127.0.0.1:8787
        url: String,
        /// The creation token the relay's operator gave you, needed by a relay that
        /// lets only couples with one create spaces (kept here, never shown).
        #[arg(long, value_name = "TOKEN")]
        token: Option<String>,
    },
}

/// The creation token given on the command line, checked: `None` when none was given.
pub fn creation_token(token: Option<&str>) -> anyhow::Result<Option<&str>> {
    let Some(token) = token.map(str::trim) else {
        return Ok(None);
    };
    // A header value: printable ASCII, no spaces (the relay makes 32 hex characters).
    if token.is_empty() || token.len() > 256 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        anyhow::bail!(
            "the creation token must be 1 to 256 printable characters without spaces; copy \
             it exactly as the relay's operator gave it"
        );
    }
    Ok(Some(token))
}

/// Runs `duet relay`.
pub fn relay(ctx: &Ctx, cmd: RelayCmd) -> anyhow::Result<()> {
    match cmd {
        RelayCmd::Set { url, token } => {
            check_relay_url(&url)?;
            let token = creation_token(token.as_deref())?;
            let mut dev = ctx.device()?;
            dev.store.set_relay(url.trim_end_matches('/'))?;
            if let Some(token) = token {
                dev.store.set_create_token(Some(token))?;
            }
            ctx.out.line(format!(
                "Relay set to {}. Run `duet sync` to send your changes.",
                safe_line(&url)
            ))?;
            Ok(())
        }
    }
}
