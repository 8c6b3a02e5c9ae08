//! `duet invite`: a single-use code for the partner's device, announced to the relay.

use anyhow::Context;
use duet_core::store::SpaceKind;
use serde_json::json;

use super::Ctx;
use crate::output::{data, note};
use crate::transport::Http;

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
pub fn run(ctx: &Ctx, a: InviteArgs) -> anyhow::Result<()> {
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
