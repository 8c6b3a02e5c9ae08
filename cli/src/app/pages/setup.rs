//! First-run setup: on a home without a device, every page leads here; the form makes
//! this device's identity and spaces as `duet init --name NAME [--relay URL --token T]`
//! does (the same checks of the URL and token, the same core call), once the relay
//! answers: a mistyped address is refused before a device is made.

use axum::Form;
use axum::extract::State;
use axum::response::{Html, IntoResponse};
use duet_core::app::JoinError;
use duet_core::device::Device;
use maud::html;
use serde::Deserialize;

use super::layout::{Nav, csrf, page};
use crate::app::server::{App, PageError, PageResult, see_other};
use crate::transport::Http;

/// `GET /setup`.
pub async fn setup(State(app): State<App>) -> PageResult {
    // A device whose whole join the relay refused for good joined nothing: a new code
    // sets this home up again (`Device::join_code` gives the old one up).
    let again = match app.with_device(|d| Ok(d.joined_nothing_for_good()?)).await {
        Ok(false) => return Ok(see_other("/")),
        Ok(true) => true,
        Err(_) => false,
    };
    if again {
        let main = html! {
            h1 { "Join again" }
            p { "The relay refused this device's join for good, so it joined nothing. Ask your partner for a new invite (or make a device code on your other device) and join with it here." }
            (join_form(app.csrf()))
        };
        return Ok(Html(page("Join again", Nav::None, None, main).into_string()).into_response());
    }
    let earlier = duet_core::device::set_aside_in(&app.home);
    let main = html! {
        h1 { "Welcome to Duet" }
        p { "Duet keeps your shared goals on your own devices, end-to-end encrypted. Start new if you are the first of you two; join with a code if your partner (or another device of yours) gave you one; bring a lost device back from its backup at the end of this page." }
        @if !earlier.is_empty() {
            p class="notice" {
                "What this app's earlier devices held is kept in " (app.home.display()) ", in "
                (earlier.join(", ")) ". To open one again, run "
                code { "duet app --home " (app.home.join(&earlier[earlier.len() - 1]).display()) }
                " in a terminal."
            }
        }
        h2 { "Start new" }
        form method="post" action="/setup" class="setup" {
            (csrf(app.csrf()))
            label for="name" { "Your name (your partner sees it)" }
            input id="name" name="name" required maxlength="200" autocomplete="given-name";
            label for="relay" { "Relay address (optional; you can add it later on the Partner and devices page)" }
            input id="relay" name="relay" type="url" placeholder="https://relay.example.org";
            label for="token" { "Creation token (only if the relay's operator gave you one)" }
            input id="token" name="token" autocomplete="off";
            button type="submit" { "Set up this device" }
        }
        h2 { "Join with a code" }
        (join_form(app.csrf()))
        (super::backup::restore_section(app.csrf()))
    };
    // No status line: there is nothing to sync yet.
    Ok(Html(page("Set up Duet", Nav::None, None, main).into_string()).into_response())
}

/// The form that joins with a partner's invite or a device code.
fn join_form(token: &str) -> maud::Markup {
    html! {
        form method="post" action="/setup/join" class="setup" {
            (csrf(token))
            label for="join-name" { "Your name (your partner sees it; not needed with a device code)" }
            input id="join-name" name="name" maxlength="200" autocomplete="given-name";
            label for="code" { "The code your partner's invite (or your other device) shows" }
            input id="code" name="code" required autocomplete="off" spellcheck="false";
            label for="join-relay" { "Relay address (only for a short code read aloud, like 417-aardvark-adroitness)" }
            input id="join-relay" name="relay" type="url" placeholder="https://relay.example.org";
            button type="submit" { "Join" }
        }
    }
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
    let relay = Some(f.relay.trim())
        .filter(|r| !r.is_empty())
        .map(crate::commands::relay::check_relay_url)
        .transpose()?;
    let token = Some(f.token.trim().to_string()).filter(|t| !t.is_empty());
    if token.is_some() && relay.is_none() {
        return Err(PageError::from(anyhow::anyhow!(
            "a creation token goes with a relay address; give both, or neither"
        )));
    }
    // A mistyped address would make a device that never syncs: check it answers first.
    if let Some(r) = relay.clone() {
        let answer = tokio::task::spawn_blocking({
            let r = r.clone();
            move || Http::probe(&r)
        })
        .await;
        if let Ok(Err(e)) = answer {
            return Err(PageError::from(anyhow::anyhow!(
                "no Duet relay answers at {r} ({e}); check the address, or leave it empty \
                 to set up now and add the relay later on the Partner and devices page"
            )));
        }
    }
    let (home, clock) = (app.home.clone(), app.clock);
    let kept = app.device.clone();
    let made = tokio::task::spawn_blocking(move || -> anyhow::Result<Option<String>> {
        // Held until the first sync is done: the live thread then finds the spaces made.
        let mut kept = kept.blocking_lock();
        let token = crate::commands::relay::creation_token(token.as_deref())?;
        let mut dev = Device::init_with_token(&home, &f.name, relay.as_deref(), token, clock)?;
        // The first sync makes the spaces on the relay: a refusal (a token it refuses or
        // has used up) is said now, where it can be put right, not later in the status
        // line.
        let http = Http::new()?;
        let refused = match relay.as_ref().map(|_| dev.sync(&http)) {
            Some(Err(e)) if crate::advice::relay_refused(&e) => {
                Some(crate::app::advice::message(&e))
            }
            _ => None,
        };
        *kept = Some(dev);
        Ok(refused)
    })
    .await;
    let refused = match made {
        Ok(r) => r?,
        Err(e) => return Err(anyhow::anyhow!("the setup failed: {e}").into()),
    };
    if let Some(refused) = refused {
        return Ok(super::devices::done(
            &app,
            super::devices::Made::Warning(format!(
                "This device is set up, but {refused}. Until then everything stays on this device."
            )),
        ));
    }
    Ok(see_other("/"))
}

/// A failed join, in the app's words.
fn join_failure(e: JoinError) -> anyhow::Error {
    anyhow::anyhow!(crate::app::advice::message(&e))
}

/// The join form.
#[derive(Deserialize)]
pub struct JoinForm {
    #[serde(default)]
    name: String,
    code: String,
    #[serde(default)]
    relay: String,
}

/// `POST /setup/join`: as `duet join CODE [--name NAME] [--relay URL]` (the same core
/// operation: first sync, the half-made device given up when the relay refuses); the
/// joined device becomes the app's.
pub async fn join(State(app): State<App>, Form(f): Form<JoinForm>) -> PageResult {
    let (home, clock) = (app.home.clone(), app.clock);
    let kept = app.device.clone();
    let joined = tokio::task::spawn_blocking(move || -> anyhow::Result<(Option<String>, bool)> {
        let name = Some(f.name.trim()).filter(|n| !n.is_empty());
        let relay = Some(f.relay.trim()).filter(|r| !r.is_empty());
        let mut code = f.code.trim().to_string();
        if duet_core::pairing_code::ShortCode::looks_short(&code) {
            if name.is_none() {
                anyhow::bail!("a name is required with a short code");
            }
            if relay.is_none() {
                anyhow::bail!(
                    "a short code names no relay: give the relay address your partner uses too"
                );
            }
            code = crate::commands::join::redeem(&code, relay)?;
        }
        let http = Http::new()?;
        // Held for the whole join: the live thread waits rather than open a device the
        // relay may still refuse.
        let mut kept = kept.blocking_lock();
        // Closed first: a device that joined nothing is given up by the join, its files
        // deleted (any other is opened again by the next page).
        drop(kept.take());
        match Device::join_code(&home, &code, name, clock, &http) {
            Ok(joined) => {
                // A code older than a removal: joined, but it can never catch up.
                let stuck = crate::commands::join::refuse_without_key(&joined.reports);
                let unfinished = joined.unfinished.as_ref().map(|e| {
                    format!(
                        "joined; the first sync did not finish ({}), and Duet finishes it on its own once the relay takes it",
                        crate::app::advice::message(e)
                    )
                });
                let set_aside = joined.set_aside.is_some();
                *kept = Some(joined.device);
                stuck.map(|()| (unfinished, set_aside))
            }
            // Joined here: the live sync finishes it once the relay answers. Today is
            // where the person goes on; its status line says why it is not done yet.
            Err(JoinError::FirstSync(e)) => Ok((
                Some(format!(
                    "joined on this device; the first sync did not finish ({}), and Duet finishes joining on its own once the relay answers",
                    crate::app::advice::message(&e)
                )),
                false,
            )),
            Err(e) => Err(join_failure(e)),
        }
    })
    .await;
    let (unfinished, set_aside) = match joined {
        Ok(r) => r?,
        Err(e) => return Err(anyhow::anyhow!("the join failed: {e}").into()),
    };
    // Said on the status line until a sync succeeds (the live thread's own words about
    // the relay replace it once it has tried).
    let finished = unfinished.is_none();
    if let (Some(said), Ok(mut live)) = (unfinished, app.live.lock()) {
        live.problem = Some(said);
    }
    // Today says the device joined (when the first sync finished), and where what was
    // written under a refused join is kept.
    let joined = if finished { "joined=1" } else { "" };
    let aside = if set_aside { "set_aside=1" } else { "" };
    let query = [joined, aside]
        .into_iter()
        .filter(|q| !q.is_empty())
        .collect::<Vec<_>>()
        .join("&");
    Ok(see_other(&match query.is_empty() {
        true => "/".to_string(),
        false => format!("/?{query}"),
    }))
}
