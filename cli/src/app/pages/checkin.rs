//! The check-in: one goal at a time with its five level descriptions, a level picker
//! (radio buttons with labels) and a note, sent through the same operation as `duet
//! checkin` (blind: sealed until the partner has rated the goal too).

use axum::Form;
use axum::extract::{Query, State};
use duet_core::Level;
use duet_core::app::{CheckinGoal, CheckinPlan};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Nav, csrf, level, level_name};
use super::today::iso_when;
use crate::app::server::{App, PageResult, see_other};

/// Which goal to show, and what the last rating did.
#[derive(Deserialize, Default)]
pub struct CheckinQuery {
    goal: Option<String>,
    rated: Option<String>,
    sealed: Option<bool>,
}

/// `GET /checkin`.
pub async fn checkin(State(app): State<App>, Query(q): Query<CheckinQuery>) -> PageResult {
    let (plan, departed, partner) = app
        .with_device(|dev| Ok((dev.checkin_plan()?, dev.departed()?, dev.partner()?)))
        .await?;
    let alone = matches!(partner, duet_core::app::Partner::Gone(_));
    // A device that left (or was removed) rates no more: say so instead of the forms.
    if let Some(d) = departed {
        let main = html! {
            h1 { "Check-in" }
            p class="warning" { (d.describe()) ". Nothing more can be rated from this device." }
            p { a href="/" { "Back to Today" } }
        };
        return Ok(app.page("Check-in", Nav::Checkin, main));
    }
    let plan: CheckinPlan = plan;
    let pick = match &q.goal {
        Some(id) => plan.goals.iter().find(|g| &g.id == id),
        None => plan.goals.iter().find(|g| !g.rated),
    };
    let done_title = q
        .rated
        .as_ref()
        .and_then(|id| plan.goals.iter().find(|g| &g.id == id))
        .map(|g| g.title.clone());
    let main = html! {
        h1 { "Check-in" }
        p class="muted" {
            @if alone {
                "Your partner is no longer in the shared space: each rating is in the clear at once."
            } @else {
                "Rate each goal on your own. Your rating stays sealed until your partner has rated the goal too; then you both see both."
            }
        }
        @if let Some(title) = done_title {
            p class="done" role="status" {
                "Rated “" (title) "”"
                @if q.sealed == Some(true) { ": sealed until your partner rates it too." } @else { "." }
            }
        }
        @match pick {
            Some(g) => (goal_form(g, app.csrf())),
            None if plan.goals.is_empty() => p { "There are no active goals to rate. " a href="/" { "Add one on Today." } },
            None => p { "You have rated every goal in this check-in. " a href="/" { "Back to Today" } },
        }
        @if let Some(r) = &plan.round {
            form method="post" action="/checkin/close" class="close" {
                (csrf(app.csrf()))
                p class="muted" { "This check-in closes by itself on " (iso_when(&r.ends_at)) "." }
                button type="submit" { "Close the check-in now and reveal my ratings" }
            }
        }
        @if plan.goals.len() > 1 {
            nav aria-label="Goals of this check-in" {
                h2 { "All goals" }
                ul {
                    @for g in &plan.goals {
                        li {
                            a href=(format!("/checkin?goal={}", g.id)) { (g.title) }
                            @if g.rated { span class="muted" { " · rated" } }
                        }
                    }
                }
            }
        }
    };
    Ok(app.page("Check-in", Nav::Checkin, main))
}

/// One goal's rating form.
fn goal_form(g: &CheckinGoal, token: &str) -> Markup {
    html! {
        form method="post" action="/checkin" class="checkin" {
            (csrf(token))
            input type="hidden" name="goal" value=(g.id);
            h2 { (g.title) }
            @if g.partner_rated && !g.rated {
                p { "Your partner has rated this goal; rate it to see theirs." }
            }
            @if !g.partner_steps.is_empty() {
                p { "Since you last rated it, your partner completed:" }
                ul { @for s in &g.partner_steps { li { (s) } } }
            }
            @if g.rated && g.partner_rated {
                p class="muted" { "You have both rated it in this check-in; rating again starts a new blind rating." }
            } @else if g.rated {
                p class="muted" { "You have rated it in this check-in already; rating again adds a new rating." }
            }
            fieldset {
                legend { "Where are you with it?" }
                @for (l, text) in &g.levels {
                    @let id = format!("level{l}");
                    div class="level" {
                        input type="radio" name="level" id=(id) value=(l) required;
                        label for=(id) {
                            strong { (level(*l as i64)) " " (level_name(*l as i64)) }
                            @if !text.is_empty() { br; span { (text) } }
                        }
                    }
                }
            }
            label for="note" { "A note (optional)" }
            textarea id="note" name="note" rows="3" {}
            button type="submit" { "Rate" }
        }
    }
}

/// A rating.
#[derive(Deserialize)]
pub struct RateForm {
    goal: String,
    level: String,
    #[serde(default)]
    note: String,
}

/// `POST /checkin`.
pub async fn rate(State(app): State<App>, Form(f): Form<RateForm>) -> PageResult {
    let level: Level = f
        .level
        .parse()
        .map_err(|e| anyhow::anyhow!("{e}; pick one of the five levels"))?;
    let note = Some(f.note.trim().to_string()).filter(|n| !n.is_empty());
    let rated = app
        .with_device(move |dev| Ok(dev.checkin(&[(f.goal, level, note)], None)?))
        .await?;
    let Some(r) = rated.first() else {
        return Ok(see_other("/checkin"));
    };
    Ok(see_other(&format!(
        "/checkin?rated={}&sealed={}",
        r.goal, r.sealed
    )))
}

/// `POST /checkin/close`: as `duet checkin --close`.
pub async fn close(State(app): State<App>) -> PageResult {
    app.with_device(|dev| Ok(dev.close_rounds()?)).await?;
    Ok(see_other("/"))
}
