//! `duet invite --short`: a partner invite handed over through a short code read aloud
//! (`417-aardvark-adroitness`); waits until the partner's device has used it.

use duet_core::invite::InviteCode;
use duet_core::pairing_code::{Creator, PairingError};
use duet_core::store::SpaceKind;
use serde_json::json;

use super::Ctx;
use crate::output::{data, note};
use crate::transport::Http;

/// A short code's lifetime unless `--expires` says otherwise.
const DEFAULT_MS: i64 = 10 * 60_000;
/// A short code's longest lifetime: 16 bits of words are only safe for a short while.
const MAX_MS: i64 = 60 * 60_000;

/// What to tell the creator when the exchange failed.
fn failure(e: PairingError) -> anyhow::Error {
    match e {
        PairingError::Burned => anyhow::anyhow!(
            "the code was tried with other words (a typo, or someone else trying codes), so it \
             is burned and nobody can use it; make a new one with `duet invite --short` and \
             read it out carefully"
        ),
        PairingError::Expired => anyhow::anyhow!(
            "the short code expired unused; make a new one with `duet invite --short` when \
             your partner is ready"
        ),
        other => anyhow::Error::new(other).context("the short code failed"),
    }
}

/// Revokes the invite behind a burned or expired short code, so that nothing is left
/// open (best effort: nobody else ever held its secret).
fn withdraw(ctx: &Ctx, invite: &duet_core::invite::InviteCode, http: &Http) {
    let target = duet_core::app::RevokeTarget::Code(invite.encode());
    let done = ctx.device().and_then(|mut dev| {
        dev.revoke_invites(&target)?;
        dev.sync(http)?;
        Ok(())
    });
    if let Err(e) = done {
        note(&format!(
            "note: the invite behind the code could not be revoked ({e:#}); `duet invite revoke --all` does it"
        ));
    }
}

/// Makes the invite, sends it and opens its mailbox on the relay; the home is released
/// when it returns (only the identity is needed while waiting).
fn open(
    ctx: &Ctx,
    lifetime: i64,
) -> anyhow::Result<(Creator, InviteCode, duet_core::identity::Identity, Http)> {
    let mut dev = ctx.device()?;
    let invite = dev.invite(lifetime)?;
    let http = Http::new()?;
    // An invite whose short code was never shown is withdrawn: it would otherwise reach
    // the relay at the next sync as an open invite nobody can use.
    let give_up = |dev: &mut duet_core::device::Device, e: anyhow::Error| {
        let _ = dev.revoke_invites(&duet_core::app::RevokeTarget::Code(invite.encode()));
        e
    };
    // The relay must know the invite before the partner's device can use it.
    let reports = match dev.sync(&http) {
        Ok(reports) => reports,
        Err(e) => {
            let e = anyhow::Error::new(e);
            // A relay that answered and refused (a creation token it does not take, say)
            // is not out of reach: trying again as it is would not help.
            let context = if crate::advice::transport_error(&e)
                .is_some_and(|t| matches!(t, duet_core::sync::TransportError::Refused { .. }))
            {
                "a short code needs the relay at once, and it refused this device's sync; no code was made"
            } else {
                "a short code needs the relay at once, and it cannot be reached; no code was made: check the relay and try again"
            };
            return Err(give_up(&mut dev, e.context(context)));
        }
    };
    if let Some(m) = reports.iter().find_map(|(k, r)| {
        (*k == SpaceKind::Shared)
            .then_some(r.push_refused.as_ref())
            .flatten()
    }) {
        let e = anyhow::anyhow!(
            "the relay refused the invite, so no short code was made: {}",
            crate::advice::warning(m)
        );
        return Err(give_up(&mut dev, e));
    }
    let code = invite.encode();
    if let Some(behind) =
        crate::commands::invite::withdrawn_if_dead(&mut dev, &code, invite.expires_at)
    {
        anyhow::bail!(
            "this device's clock is {behind} behind the relay's, so the code's invite would \
             have expired before your partner could use it; no code was made: set this \
             device's clock right (automatic time), then run `duet invite --short` again (if \
             it is right already, the relay's clock is wrong: ask its operator to set it; \
             until then `duet invite --expires 7d` makes a long code that outlives the \
             difference)"
        );
    }
    let creator = match dev.open_short_code(&http, &invite, lifetime) {
        Ok(creator) => creator,
        Err(e) => return Err(give_up(&mut dev, failure(e))),
    };
    Ok((creator, invite, dev.me.clone(), http))
}

/// Runs `duet invite --short`.
pub fn run(ctx: &Ctx, expires: Option<i64>) -> anyhow::Result<()> {
    let lifetime = match expires {
        Some(ms) if ms > MAX_MS => {
            note("note: a short code lasts at most 1 hour; this one expires in 1 hour.");
            MAX_MS
        }
        Some(ms) => ms,
        None => DEFAULT_MS,
    };
    let (creator, invite, me, http) = open(ctx, lifetime)?;
    let code = creator.code().to_string();
    if ctx.out.json {
        // JSON Lines: the code at once (a script reads it while this waits), the outcome
        // at the end.
        let expires_at = crate::output::iso(crate::relay_clock::to_local(creator.expires_at()));
        data(&json!({ "code": code, "expires_at": expires_at }).to_string())?;
    } else {
        if !ctx.out.quiet {
            note("Read this code to your partner; on their device they run:");
            note(&format!(
                "  duet join {code} --relay {} --name NAME",
                invite.relay
            ));
            note(&format!(
                "It works once, until {}. Waiting for their device...",
                // The mailbox's end by the relay's clock, told by this device's.
                crate::output::when(crate::relay_clock::to_local(creator.expires_at()))
            ));
        }
        data(&code)?;
    }
    if let Err(e) = creator.finish(&http, &me) {
        if matches!(e, PairingError::Burned | PairingError::Expired) {
            withdraw(ctx, &invite, &http);
        }
        return Err(failure(e));
    }
    if ctx.out.json {
        data(&json!({ "code": code, "delivered": true }).to_string())?;
        return Ok(());
    }
    ctx.out.line(
        "Your partner's device received the invite; it joins your shared space as soon as it \
         syncs.",
    )?;
    Ok(())
}
