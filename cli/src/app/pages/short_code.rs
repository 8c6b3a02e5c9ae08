//! A short code to read aloud, made in the app (as `duet invite --short`): the partner
//! invite is made and sent, its mailbox opened on the relay, and a task waits for the
//! partner's device to claim it. The Partner and devices page shows the code with the
//! relay's address to read out, then what became of it (the page reloads on its own).

use axum::extract::State;
use duet_core::app::RevokeTarget;
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
            h2 id="made" { "Your short code" }
            p { "Read it to your partner, with the relay's address. In their Duet app they choose \"Join with a code\" and type both; on a terminal they run " code { "duet join CODE --relay ADDRESS --name NAME" } "." }
            p class="code" id="made-code" { (code) }
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
            let invite = dev.invite_partner(&http, LIFETIME_MS).map_err(|e| {
                anyhow::anyhow!(
                    "{}; a short code needs the relay at once (an invite code works once Duet has synced)",
                    crate::app::advice::message(&e)
                )
            })?;
            let creator = dev
                .open_short_code(&http, &invite, LIFETIME_MS)
                .map_err(|e| anyhow::anyhow!("the relay could not keep a short code: {e}"))?;
            Ok((creator, invite, dev.me.clone()))
        })
        .await?;
    let code = creator.code().to_string();
    let token = remember(
        &app,
        Made::Short {
            code,
            relay: invite.relay.clone(),
            expires_at: creator.expires_at(),
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
            Ok(Ok(())) => Made::Notice(
                "Your partner's device received the invite; it joins your shared space as soon as it syncs."
                    .into(),
            ),
            Ok(Err(e)) => {
                withdraw(&waiter, invite.encode()).await;
                Made::Warning(failed(&e))
            }
            Err(_) => Made::Warning("Waiting for your partner's device stopped; make a new code.".into()),
        };
        super::devices::replace(&waiter, &kept, outcome);
        let _ = waiter.changes.send(());
    });
    Ok(see_other(&format!("/devices?shown={token}")))
}

/// What a failed exchange means, in the app's words.
fn failed(e: &PairingError) -> String {
    match e {
        PairingError::Burned => "Someone typed a wrong code, so this code is burned and nobody can use it. Make a new one and read it out carefully.".into(),
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
