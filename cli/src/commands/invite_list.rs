//! `duet invite list` and `duet invite revoke`: the invites made so far, and withdrawing
//! those still open with a signed revocation the relay enforces.

use anyhow::Context;
use duet_core::app::{InviteRow, RevokeTarget};

use super::Ctx;
use crate::output::{safe_line, when};
use crate::transport::Http;

fn print_rows(ctx: &Ctx, rows: &[InviteRow]) -> anyhow::Result<()> {
    for r in rows {
        ctx.out.line(format!(
            "{}  {:<8} {:<7} {:<8} by {} (expires {})",
            &r.id[..12],
            r.state,
            r.kind,
            r.space,
            safe_line(&r.issued_by),
            when(r.expires_ms)
        ))?;
    }
    Ok(())
}

/// Runs `duet invite list`.
pub fn list(ctx: &Ctx) -> anyhow::Result<()> {
    let mut dev = ctx.device()?;
    let rows = dev.invites()?;
    if ctx.out.json {
        return ctx.out.json(&rows);
    }
    if rows.is_empty() {
        ctx.out
            .line("No invites yet. Make one for your partner with `duet invite`.")?;
        return Ok(());
    }
    print_rows(ctx, &rows)
}

/// Runs `duet invite revoke [CODE|ID|--all]`.
pub fn revoke(ctx: &Ctx, code: Option<String>, all: bool) -> anyhow::Result<()> {
    let target = match code {
        _ if all => RevokeTarget::All,
        Some(c) if duet_core::invite::is_code(&c) => RevokeTarget::Code(c.trim().to_string()),
        Some(c) => RevokeTarget::Id(c.trim().to_string()),
        None => RevokeTarget::All,
    };
    let mut dev = ctx.device()?;
    // Learn which invites were used meanwhile; offline, revoke what is known here.
    if let Err(e) = dev.sync(&Http::new()?) {
        crate::output::note(&format!(
            "note: could not sync first ({}); revoking what this device knows",
            crate::advice::message(&e)
        ));
    }
    let revoked = dev.revoke_invites(&target).map_err(|e| {
        anyhow::anyhow!(
            "{}; `duet invite list` shows the open ones",
            crate::advice::message(&e)
        )
    })?;
    const NOT_SENT: &str = "the revocation is recorded on this device but has not reached the relay; until `duet sync` takes it there, the code can still be used";
    dev.sync(&Http::new()?).context(NOT_SENT)?;
    if dev.unsent_revocations()? > 0 {
        anyhow::bail!(
            "{NOT_SENT} (the relay refused it as conflicting; if `duet sync` keeps saying so, the relay may be misbehaving)"
        );
    }
    if ctx.out.json {
        return ctx.out.json(&revoked);
    }
    if revoked.is_empty() {
        ctx.out.line("No open invites to revoke.")?;
        return Ok(());
    }
    for r in &revoked {
        ctx.out.line(format!(
            "Revoked {} invite {} ({} space): nobody can join with it now.",
            r.kind,
            &r.id[..12],
            r.space
        ))?;
    }
    Ok(())
}
