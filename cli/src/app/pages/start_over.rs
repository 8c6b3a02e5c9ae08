//! Starting over in the app, where no terminal is at hand to start it with another home:
//! offered on the Partner and devices page when going on here cannot help (this device
//! left its shared space or was removed, or nobody else ever joined it: set up with
//! "Start new" where the partner's code was meant). The store is set aside in a folder
//! of the home, nothing deleted, and the setup page follows.

use std::time::Duration;

use axum::Form;
use axum::extract::State;
use duet_core::device::{Device, StartOver, Unsent};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::csrf;
use crate::app::server::{App, PageResult, see_other};

/// How long the page waits for the live sync to let go of the device.
const LET_GO_WITHIN: Duration = Duration::from_secs(60);

/// The section, when this home may start over.
pub fn section(why: Option<(StartOver, Unsent)>, token: &str) -> Markup {
    let Some((why, unsent)) = why else {
        return html! {};
    };
    html! {
        section aria-labelledby="start-over" {
            h2 id="start-over" { "Start over" }
            @match why {
                StartOver::Departed => p { "This device can no longer sync its shared space. To set Duet up anew here, or join with a new code, start over." },
                StartOver::Alone => p { "Nobody else has joined your shared space. If your partner has set up Duet already, start over here and join with their code instead." },
                StartOver::PartnerGone => p { "Your partner is no longer in your shared space. To share Duet with someone else, start over here." },
            }
            p { "What this device holds is kept, in a folder inside Duet's folder on this computer; the app no longer shows it (only a terminal opens it again), so take a copy you can read first." }
            p { a href="/export" download="duet-export.json" { "Download everything this device can read (JSON)" } " · " a href="/report" { "the report, to print or save" } }
            @if unsent.events > 0 {
                p class="warning" { (crate::output::capitalised(&unsent.describe())) ". " (SYNC_FIRST) }
            }
            form method="post" action="/start-over" {
                (csrf(token))
                label {
                    input type="checkbox" name="confirm" value="yes" required;
                    " Set this device aside and go to the setup page"
                }
                @if unsent.events > 0 {
                    label {
                        input type="checkbox" name="anyway" value="yes";
                        " Start over although this never reaches the relay (only if it is gone for good)"
                    }
                }
                button type="submit" class="danger" { "Start over" }
            }
        }
    }
}

/// What to do first when something has not reached the relay.
const SYNC_FIRST: &str = "Let the app send it first: it syncs whenever the relay can be reached (the line at the top of the page says whether it can); then start over.";

/// The start-over form.
#[derive(Deserialize)]
pub struct StartOverForm {
    #[serde(default)]
    confirm: String,
    /// Start over although events have not reached the relay.
    #[serde(default)]
    anyway: String,
}

/// `POST /start-over`: the live sync lets go of the device, the store is set aside
/// ([`Device::set_home_aside`]) and the setup page follows.
pub async fn start_over(State(app): State<App>, Form(f): Form<StartOverForm>) -> PageResult {
    if f.confirm != "yes" {
        return Err(anyhow::anyhow!(
            "nothing was set aside: tick the box to say you want to start over"
        )
        .into());
    }
    let (home, clock) = (app.home.clone(), app.clock);
    let (slot, hold) = (app.device.clone(), app.live_hold.clone());
    let set_aside = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        // Held throughout: neither a page nor the live sync opens the device meanwhile.
        let mut kept = slot.blocking_lock();
        let dev = match kept.take() {
            Some(dev) => dev,
            None => Device::open_with(&home, clock)?,
        };
        let Some(why) = dev.may_start_over()? else {
            *kept = Some(dev);
            anyhow::bail!(
                "nothing was set aside: this device shares its space with your partner; leave it first (Leave the shared space, on the Partner and devices page)"
            );
        };
        let unsent = dev.unsent_before_starting_over(why)?;
        if unsent.events > 0 && f.anyway != "yes" {
            *kept = Some(dev);
            anyhow::bail!(
                "nothing was set aside: {}; {}",
                unsent.describe(),
                SYNC_FIRST.to_lowercase()
            );
        }
        if !hold.let_go(LET_GO_WITHIN) {
            *kept = Some(dev);
            anyhow::bail!(
                "nothing was set aside: the sync running in the background did not stop in time; try again in a minute"
            );
        }
        dev.set_home_aside()?;
        Ok(())
    })
    .await;
    match set_aside {
        Ok(r) => r?,
        Err(e) => return Err(anyhow::anyhow!("starting over failed: {e}").into()),
    }
    // Nothing the set-aside device's sync said belongs on the new one's pages.
    if let Ok(mut live) = app.live.lock() {
        *live = Default::default();
    }
    Ok(see_other("/setup"))
}
