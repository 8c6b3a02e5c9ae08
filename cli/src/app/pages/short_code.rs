//! A short code to read aloud, made in the app (as `duet invite --short`): the partner
//! invite is made and sent, its mailbox opened on the relay, and a task waits for the
//! partner's device to claim it. The Partner and devices page shows the code with the
//! relay's address to read out, then what became of it (the page reloads on its own).

use axum::extract::State;
use duet_core::app::{InviteError, RevokeTarget};
use duet_core::pairing_code::PairingError;
use maud::{Markup, html};

use super::devices::{Made, remember};
use crate::app::server::{App, PageResult, see_other};
use crate::output::when;
use crate::transport::Http;

/// How long a short code made in the app works: 16 bits of words are safe only briefly.
const LIFETIME_MS: i64 = 10 * 60_000;

/// The code while the partner has not used it yet.
pub fn waiting(code: &str, relay: &str, expires_at: i64) -> Markup {
    html! {
        section class="made" aria-labelledby="made" {
            h2 id="made" data-result { "Your short code" }
            p { "Read it to your partner, with the relay's address. In their Duet app they choose \"Join with a code\" and type both; on a terminal they run " code { "duet join CODE --relay ADDRESS --name NAME" } "." }
            p class="code" id="made-code" { (code) }
            (super::layout::copy_button("made-code"))
            p { "Relay: " code id="made-relay" { (relay) } }
            p class="muted" role="status" { "Waiting for your partner's device. It works once, until " (when(expires_at)) "; a wrong guess burns it." }
        }
    }
}

/// `POST /devices/short`: makes the invite, sends it, opens its mailbox and shows the
/// code; a task waits for the partner's device and then says what happened.
pub async fn make(State(app): State<App>) -> PageResult {
    let (creator, invite, me) = app
        .with_device(|dev| {
            let http = Http::new()?;
            let invite = match dev.invite_partner(&http, LIFETIME_MS) {
                Ok(invite) => invite,
                // Made but not sent: its code is never shown, so it is withdrawn.
                Err(InviteError::Unsent { code, source, .. }) => {
                    let _ = dev.revoke_invites(&RevokeTarget::Code(code));
                    if let duet_core::device::DeviceError::Sync(duet_core::sync::SyncError::Transport(
                        duet_core::sync::TransportError::Refused { .. },
                    )) = source.as_ref()
                    {
                        anyhow::bail!(
                            "a short code needs the relay at once, and it refused this device's sync ({}); no code was made",
                            crate::app::advice::message(source.as_ref())
                        );
                    }
                    anyhow::bail!(
                        "a short code needs the relay at once, and it cannot be reached ({}); no code was made. Try again once it answers, or make an invite code, which works once Duet has synced",
                        crate::app::advice::message(source.as_ref())
                    );
                }
                Err(e) => anyhow::bail!(crate::app::advice::message(&e)),
            };
            let code = invite.encode();
            if let Some(behind) =
                crate::commands::invite::withdrawn_if_dead(dev, &code, invite.expires_at)
            {
                anyhow::bail!(
                    "this computer's clock is {behind} behind the relay's, so the code would \
                     have expired before your partner could use it; no code was made: set this \
                     computer's clock right (automatic time), then make a new one (if it is \
                     right already, the relay's clock is wrong: ask its operator to set it)"
                );
            }
            let creator = match dev.open_short_code(&http, &invite, LIFETIME_MS) {
                Ok(creator) => creator,
                Err(e) => {
                    let _ = dev.revoke_invites(&RevokeTarget::Code(invite.encode()));
                    anyhow::bail!("the relay could not keep a short code ({e}); no code was made");
                }
            };
            Ok((creator, invite, dev.me.clone()))
        })
        .await?;
    let code = creator.code().to_string();
    let token = remember(
        &app,
        Made::Short {
            code,
            relay: invite.relay.clone(),
            // The mailbox's end by the relay's clock, told by this computer's.
            expires_at: crate::relay_clock::to_local(creator.expires_at()),
        },
    );
    let (waiter, kept) = (app.clone(), token.clone());
    tokio::spawn(async move {
        let finished = tokio::task::spawn_blocking(move || {
            let http = Http::new().map_err(|_| PairingError::BadMessage("no HTTP client"))?;
            creator.finish(&http, &me)
        })
        .await;
        let outcome = match finished {
            Ok(Ok(())) => received(&waiter, invite.encode()).await,
            Ok(Err(e)) => {
                withdraw(&waiter, invite.encode()).await;
                Made::Warning(failed(&e))
            }
            Err(_) => {
                Made::Warning("Waiting for your partner's device stopped; make a new code.".into())
            }
        };
        super::devices::replace(&waiter, &kept, outcome);
        let _ = waiter.changes.send(());
    });
    Ok(see_other(&format!("/devices?shown={token}")))
}

/// The code was used. If the partner had already joined with another code, the relay
/// lets no third person in: say so (and withdraw this invite) rather than promise a join.
async fn received(app: &App, code: String) -> Made {
    let taken = app
        .with_device(move |dev| {
            // The partner is here, and this code's invite is not the one they used: it
            // admits nobody now (a space holds two people).
            let here = matches!(dev.partner()?, duet_core::app::Partner::Here(_));
            Ok(here && dev.code_state(&code)? != Some("used"))
        })
        .await
        .unwrap_or(false);
    if taken {
        return Made::Warning(
            "Someone used this code, but your partner has already joined with another one: a shared space holds two people, so that device is not let in."
                .into(),
        );
    }
    Made::Notice(
        "Your partner's device received the invite; it joins your shared space as soon as it syncs."
            .into(),
    )
}

/// What a failed exchange means, in the app's words.
fn failed(e: &PairingError) -> String {
    match e {
        PairingError::Burned => "The code was tried with other words (a typo, or someone else trying codes), so it is burned and nobody can use it. Make a new one and read it out carefully.".into(),
        PairingError::Expired => "The short code expired unused. Make a new one when your partner is ready.".into(),
        other => format!("The short code failed ({other}). Make a new one, or use an invite code."),
    }
}

/// Withdraws the invite behind a code that can no longer be used (best effort: nobody
/// else ever held its secret, and the page says the code failed either way).
async fn withdraw(app: &App, code: String) {
    let _ = app
        .with_device(move |dev| {
            dev.revoke_invites(&RevokeTarget::Code(code))?;
            dev.sync(&Http::new()?)?;
            Ok(())
        })
        .await;
}
