//! The relay on the Partner and devices page: its address and the operator's creation
//! token, set or changed as `duet relay set URL [--token T]` does (the same checks, the
//! same core call). The live thread notices the change and syncs through the new relay.

use axum::Form;
use axum::extract::State;
use maud::{Markup, html};
use serde::Deserialize;

use super::devices::{Made, done};
use super::layout::csrf;
use crate::app::server::{App, PageError, PageResult};
use crate::transport::Http;

/// The relay section: the address in use and the form to change it.
pub fn section(relay: Option<&str>, token: &str) -> Markup {
    html! {
        section aria-labelledby="relay" {
            h2 id="relay" { "Relay" }
            @match relay {
                Some(r) => p { "This device syncs through " code { (r) } ". It stores only encrypted events: it cannot read your goals or reflections." },
                None => p { "No relay is set: everything stays on this device until you add one (your partner needs the same relay)." },
            }
            form method="post" action="/relay" class="setup" {
                (csrf(token))
                label for="relay-url" { "Relay address" }
                input id="relay-url" name="relay" type="url" required value=[relay] placeholder="https://relay.example.org";
                label for="relay-token" { "Creation token (only if the relay's operator gave you one; kept here, never shown)" }
                input id="relay-token" name="token" autocomplete="off";
                button type="submit" { @if relay.is_some() { "Change the relay" } @else { "Set the relay" } }
            }
        }
    }
}

/// The relay form.
#[derive(Deserialize)]
pub struct RelayForm {
    relay: String,
    #[serde(default)]
    token: String,
}

/// `POST /relay`: as `duet relay set URL [--token T]`, once a Duet relay answers there
/// (a mistyped address would move this device off a relay that works: it is refused and
/// nothing changes).
pub async fn set(State(app): State<App>, Form(f): Form<RelayForm>) -> PageResult {
    let url = crate::commands::relay::check_relay_url(&f.relay)?;
    let token = Some(f.token.trim().to_string()).filter(|t| !t.is_empty());
    crate::commands::relay::creation_token(token.as_deref())?;
    let answer = tokio::task::spawn_blocking({
        let url = url.clone();
        move || Http::probe(&url)
    })
    .await;
    match answer {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(PageError::from(anyhow::anyhow!(
                "no Duet relay answers at {url} ({e}); nothing was changed: check the address, \
                 or send it again once the relay is up"
            )));
        }
        Err(e) => {
            return Err(PageError::from(anyhow::anyhow!(
                "the relay could not be checked: {e}"
            )));
        }
    }
    let set_url = url.clone();
    let refused = app
        .with_device(move |dev| {
            let old = dev.relay()?;
            dev.set_relay(&set_url, token.as_deref())?;
            // A token given is for making the spaces there: one the relay refuses is
            // said now, where it can be put right, as the setup page says it.
            if token.is_some()
                && let Err(e) = dev.sync(&Http::new()?)
                && matches!(
                    duet_core::advice::Advice::next_step(&e),
                    Some(duet_core::advice::NextStep::CreationToken { .. })
                )
            {
                return Ok(Some(crate::app::advice::message(&e)));
            }
            Ok(old
                .and_then(|old| crate::commands::relay::holds_no_spaces(dev, Some(&old), &set_url)))
        })
        .await?;
    // Once stored: the live thread syncs with it and listens again.
    if let Ok(mut live) = app.live.lock() {
        live.relisten = true;
    }
    let made = match refused {
        Some(warning) => Made::Warning(format!("The relay is now {url}, but {warning}.")),
        None => Made::Notice(format!(
            "The relay is now {url}; Duet syncs through it from now on."
        )),
    };
    Ok(done(&app, made))
}
