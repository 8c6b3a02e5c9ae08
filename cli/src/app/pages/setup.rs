//! First-run setup: on a home without a device, every page leads here; the form makes
//! this device's identity and spaces as `duet init --name NAME [--relay URL --token T]`
//! does (the same checks of the URL and token, the same core call).

use axum::Form;
use axum::extract::State;
use axum::response::{Html, IntoResponse};
use duet_core::device::Device;
use maud::html;
use serde::Deserialize;

use super::layout::{Nav, csrf, page};
use crate::app::server::{App, PageError, PageResult, see_other};

/// `GET /setup`.
pub async fn setup(State(app): State<App>) -> PageResult {
    if app.with_device(|_| Ok(())).await.is_ok() {
        return Ok(see_other("/"));
    }
    let main = html! {
        h1 { "Welcome to Duet" }
        p { "Duet keeps your shared goals on your own devices. Start with your name; a relay lets your partner's device and yours exchange changes, end-to-end encrypted." }
        form method="post" action="/setup" class="setup" {
            (csrf(app.csrf()))
            label for="name" { "Your name (your partner sees it)" }
            input id="name" name="name" required maxlength="100" autocomplete="given-name";
            label for="relay" { "Relay address (optional; you can add it later with `duet relay set URL`)" }
            input id="relay" name="relay" type="url" placeholder="https://relay.example.org";
            label for="token" { "Creation token (only if the relay's operator gave you one)" }
            input id="token" name="token" autocomplete="off";
            button type="submit" { "Set up this device" }
        }
        p class="muted" { "Joining your partner's space with a code is not in the app yet: run `duet join CODE --name NAME`, then start `duet app` again." }
    };
    // No status line: there is nothing to sync yet.
    Ok(Html(page("Set up Duet", Nav::None, None, main).into_string()).into_response())
}

/// The setup form.
#[derive(Deserialize)]
pub struct SetupForm {
    name: String,
    #[serde(default)]
    relay: String,
    #[serde(default)]
    token: String,
}

/// `POST /setup`.
pub async fn create(State(app): State<App>, Form(f): Form<SetupForm>) -> PageResult {
    let relay = Some(f.relay.trim().to_string()).filter(|r| !r.is_empty());
    let token = Some(f.token.trim().to_string()).filter(|t| !t.is_empty());
    if let Some(r) = &relay {
        crate::commands::relay::check_relay_url(r)?;
    }
    if token.is_some() && relay.is_none() {
        return Err(PageError::from(anyhow::anyhow!(
            "a creation token goes with a relay address; give both, or neither"
        )));
    }
    let (home, clock) = (app.home.clone(), app.clock);
    let made = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut dev = Device::init_with(&home, &f.name, relay.as_deref(), clock)?;
        if let Some(token) = crate::commands::relay::creation_token(token.as_deref())? {
            dev.set_create_token(token)?;
        }
        Ok(())
    })
    .await;
    match made {
        Ok(r) => r?,
        Err(e) => return Err(anyhow::anyhow!("the setup failed: {e}").into()),
    }
    Ok(see_other("/"))
}
