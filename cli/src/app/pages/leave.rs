//! Leaving the shared space from the app, as `duet leave` does: a page that says what it
//! means and offers the export of everything this device can read first, then (with
//! `confirm=yes`) the signed leave, sent at once. What this device holds stays readable;
//! the personal space is untouched.

use axum::Form;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use duet_core::store::Departed;
use maud::{Markup, html};

use super::devices::Made;
use super::layout::{Nav, csrf};
use crate::app::server::{App, PageResult, see_other};
use crate::transport::Http;

/// The leave section: the button, or what leaving (or a removal) left behind; whether
/// the personal space is untouched depends on `personal_gone` (a removal by one's own
/// other device takes this device out of it too).
pub fn section(departed: Option<&Departed>, personal_gone: bool, token: &str) -> Markup {
    html! {
        section aria-labelledby="leave" {
            h2 id="leave" { "Leave the shared space" }
            @match departed {
                Some(d) if !personal_gone => p { (d.describe()) ". What it held stays readable here, and your personal space is untouched." },
                Some(d) => p { (d.describe()) ". What it held stays readable here." },
                None => {
                    p { "If you want to stop sharing, you can leave: none of your devices will read or write the shared space again. You are asked to confirm first." }
                    form method="post" action="/leave" {
                        (csrf(token))
                        button type="submit" class="danger" { "Leave…" }
                    }
                }
            }
        }
    }
}

/// `POST /leave`: first the page saying what it means (`GET /leave/confirm`, a page of
/// its own, so that Back and reload work), then (with `confirm=yes`) the leave, sent at
/// once (as `duet leave --yes`, whose export the page offers as a download).
pub async fn leave(State(app): State<App>, Form(f): Form<super::confirm::Confirmed>) -> PageResult {
    let confirmed = f.yes();
    let made = app
        .with_device(move |dev| {
            if let Some(d) = dev.departed()? {
                return Err(duet_core::device::DeviceError::Departed(d).into());
            }
            // Everything the partner wrote up to now, so the export holds it; offline,
            // leave with what this device holds (the leave is sent by a later sync).
            if let Ok(http) = Http::new() {
                let _ = dev.sync(&http);
            }
            if !confirmed {
                return Ok(None);
            }
            dev.leave()?;
            // The person must not close the app believing the partner was told.
            Ok(Some(match dev.sync(&Http::new()?) {
                Ok(_) => Made::Notice("You left the shared space; your partner's devices learn it at their next sync.".into()),
                Err(e) => Made::Warning(format!(
                    "You left the shared space on this device, but the relay does not have the leave yet ({}); until it does, your partner is not told. Duet sends it on its own once the relay answers, while the app runs (or at the next `duet sync`).",
                    crate::app::advice::message(&e)
                )),
            }))
        })
        .await?;
    Ok(match made {
        Some(made) => super::devices::done(&app, made),
        None => see_other("/leave/confirm"),
    })
}

/// `GET /leave/confirm`: the question (a device that left already goes back to its page).
pub async fn question(State(app): State<App>) -> PageResult {
    let partners = app
        .with_device(|dev| {
            Ok(match dev.departed()? {
                Some(_) => None,
                None => Some(dev.partners()?.join(" and ")),
            })
        })
        .await?;
    Ok(match partners {
        Some(partners) => confirm_page(&app, &partners),
        None => see_other("/devices"),
    })
}

/// Asks before leaving, with the export to download first.
fn confirm_page(app: &App, partners: &str) -> Response {
    let with = if partners.is_empty() {
        "the shared space".to_string()
    } else {
        format!("the space you share with {partners}")
    };
    let main = html! {
        h1 { "Leave " (with) "?" }
        p class="warning" { "None of your devices will read or write it again, and this cannot be undone. What your partner's devices already hold stays with them; what this device holds stays readable here. Your blind ratings still sealed are shown to your partner as you leave (no one is left to rate blind against)." }
        p { a href="/export" download="duet-export.json" { "Download everything this device can read (JSON) first" } }
        form method="post" action="/leave" {
            (csrf(app.csrf()))
            input type="hidden" name="confirm" value="yes";
            button type="submit" class="danger" { "Yes, leave" }
        }
        p { a href="/devices" { "No, stay" } }
    };
    app.page("Leave the shared space", Nav::Devices, main)
}

/// `GET /export`: everything this device can read, as `duet export` writes it (a
/// download: the browser saves it, nothing is shown).
pub async fn export(State(app): State<App>) -> PageResult {
    let body = app
        .with_device(|dev| {
            let export = dev.export()?;
            Ok(serde_json::to_vec_pretty(&export)?)
        })
        .await?;
    let headers = [
        (header::CONTENT_TYPE, "application/json"),
        (
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"duet-export.json\"",
        ),
        (header::CACHE_CONTROL, "no-store"),
    ];
    Ok((headers, body).into_response())
}
