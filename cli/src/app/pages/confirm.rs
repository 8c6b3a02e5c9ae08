//! The question a form that cannot be taken back asks before it acts (withdrawing a
//! reflection, closing a check-in). With script the page asks in a dialog and sends the
//! form with `confirm=yes`; without it the form arrives unconfirmed, and this page asks
//! instead, with a form that sends it again confirmed.

use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Nav, csrf};
use crate::app::server::App;

/// A form that asks first (withdrawing, closing, removing a device, leaving): confirmed
/// once `confirm` is `yes`.
#[derive(Deserialize, Default)]
pub struct Confirmed {
    #[serde(default)]
    confirm: String,
}

impl Confirmed {
    /// Whether the person said yes (in the dialog, or on [`page`]).
    pub fn yes(&self) -> bool {
        self.confirm == "yes"
    }
}

/// The hidden field the page's script sets to `yes` once the dialog is answered so.
pub fn field() -> Markup {
    html! { input type="hidden" name="confirm" value=""; }
}

/// The question: `title` as the heading, `what` it means, a button `yes` that sends
/// `action` confirmed, and a way back to `back`.
pub fn page(
    app: &App,
    nav: Nav,
    (title, what): (&str, Markup),
    action: &str,
    yes: &str,
    back: &str,
) -> Response {
    let main = html! {
        h1 { (title) }
        (what)
        form method="post" action=(action) {
            (csrf(app.csrf()))
            input type="hidden" name="confirm" value="yes";
            button type="submit" class="danger" { (yes) }
        }
        p { a href=(back) { "No, go back" } }
    };
    app.page(title, nav, main)
}
