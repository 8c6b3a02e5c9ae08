//! `duet join`: join the partner's shared space with an invite code, or add this device
//! to one's own spaces with a device code; undone when the relay refuses it.

use anyhow::Context;
use duet_core::device::{Device, DeviceError};
use duet_core::invite::{DeviceCode, InviteCode};
use duet_core::sync::{SyncError, TransportError};
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
    /// The code from `duet invite` (partner) or `duet device add` (your other device).
    code: String,
    /// Your name, as your partner will see it (not needed with a device code).
    #[arg(long)]
    name: Option<String>,
}

/// Runs `duet join`.
pub fn run(ctx: &Ctx, a: JoinArgs) -> anyhow::Result<()> {
    let home_existed = ctx.home.exists();
    let (mut dev, space) = if a.code.trim().starts_with(duet_core::invite::DEVICE_PREFIX) {
        let code =
            DeviceCode::decode(&a.code).map_err(|e| UsageError(crate::advice::message(&e)))?;
        let dev = Device::join_own_with(&ctx.home, &code, ctx.clock)
            .with_context(|| format!("cannot join in {}", ctx.home.display()))?;
        (dev, code.shared.space)
    } else {
        let code =
            InviteCode::decode(&a.code).map_err(|e| UsageError(crate::advice::message(&e)))?;
        let name = a.name.ok_or_else(|| {
            UsageError("a name is required with a partner's invite code: --name NAME".into())
        })?;
        let dev = Device::join_with(&ctx.home, &code, &name, ctx.clock)
            .with_context(|| format!("cannot join in {}", ctx.home.display()))?;
        (dev, code.space)
    };
    let http = Http::new()?.with_progress(Progress::start(&ctx.out, "joining"));
    let reports = match dev.sync(&http) {
        Ok(r) => r,
        Err(DeviceError::Sync(SyncError::Transport(TransportError::Refused { status, body }))) => {
            // The relay said no (used, expired or unknown invite): undo the half-made
            // device so the same home can join with a new code.
            dev.abandon(!home_existed);
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
    drop(http);
    // The sync just built the read models; no need to load the whole document again.
    let partners = dev.partners()?;
    let goals = dev.goals(true)?.goals.len();
    if ctx.out.json {
        return ctx.out.json(&json!({ "joined": space.to_string(), "partners": partners, "reports": reports.iter().map(|(k, r)| json!({"space": k.as_str(), "report": r})).collect::<Vec<_>>() }));
    }
    ctx.out.line(format!(
        "Joined the shared space with {}. {} synced.",
        if partners.is_empty() {
            "your partner".to_string()
        } else {
            safe_line(&partners.join(", ")).into_owned()
        },
        duet_core::words::count(goals, "goal", "goals")
    ))?;
    Ok(())
}
