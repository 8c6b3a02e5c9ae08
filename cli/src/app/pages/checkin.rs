//! The check-in: one goal at a time with its five level descriptions, a level picker
//! (radio buttons with labels) and a note, sent through the same operation as `duet
//! checkin` (blind: sealed until the partner has rated the goal too).

use crate::app::server::PageQuery;
use axum::Form;
use axum::extract::State;
use duet_core::Level;
use duet_core::app::{CheckinGoal, CheckinPlan, GoalDetail};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Nav, csrf, level, level_name};
use super::today::iso_when;
use crate::app::server::{App, PageResult, see_other};
use crate::bidi::bdi;

/// Which goal to show, and what the last rating did.
#[derive(Deserialize, Default)]
pub struct CheckinQuery {
    goal: Option<String>,
    rated: Option<String>,
    sealed: Option<bool>,
    /// The check-in was just closed here.
    closed: Option<bool>,
    /// How many of one's ratings stayed sealed at that close.
    still_sealed: Option<usize>,
}

/// `GET /checkin`.
pub async fn checkin(State(app): State<App>, PageQuery(q): PageQuery<CheckinQuery>) -> PageResult {
    let asked = [q.goal.clone(), q.rated.clone()];
    let (plan, departed, partner, [goal, rated]) = app
        .with_device(move |dev| {
            let plan = dev.checkin_plan()?;
            let named = asked.map(|a| a.and_then(|a| named(dev, &plan, &a)));
            Ok((plan, dev.departed()?, dev.partner()?, named))
        })
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
    let in_plan = |n: &Option<Named>| match n {
        Some(Named::InPlan(id)) => plan.goals.iter().find(|g| &g.id == id),
        _ => None,
    };
    let pick = match &goal {
        Some(_) => in_plan(&goal),
        None => plan.goals.iter().find(|g| !g.rated),
    };
    let done_title = match &rated {
        Some(Named::Inactive { title, .. }) => Some(title.clone()),
        _ => in_plan(&rated).map(|g| g.title.clone()),
    };
    let not_here = match &goal {
        Some(Named::Inactive { id, title, status }) => Some((id, title, status)),
        _ => None,
    };
    let main = html! {
        h1 { "Check-in" }
        p class="muted" {
            @if alone {
                "Your partner is no longer in the shared space: each rating is in the clear at once."
            } @else {
                "Rate each goal on your own. Your rating stays sealed until your partner has rated the goal too; then you both see both."
            }
        }
        @if q.closed == Some(true) { (closed_notice(q.still_sealed.unwrap_or(0))) }
        @if let Some(title) = done_title {
            p class="done" role="status" data-result {
                "Rated “" (bdi(title)) "”"
                @if q.sealed == Some(true) { ": sealed until your partner rates it too." } @else { "." }
            }
        }
        // Set aside meanwhile (another window, the command line): kept, but not counted.
        @if let Some(Named::Inactive { id, status, .. }) = &rated {
            p class="notice" role="status" {
                "It is " (status) " now, so Progress does not show this rating. "
                a href=(format!("/goals/{id}")) { "Set it active on its page" }
                " to count it again."
            }
        }
        @if let Some((id, title, status)) = not_here {
            p class="warning" {
                "“" (bdi(title)) "” is " (status) ": a check-in rates the active goals. "
                a href=(format!("/goals/{id}")) { "Set it active on its page" }
                " to rate it."
            }
        }
        @match pick {
            Some(g) => (goal_form(g, &seen(&plan, g), app.csrf(), alone)),
            None if not_here.is_some() => p { a href="/checkin" { "Rate the active goals" } },
            None if plan.goals.is_empty() => p { "There are no active goals to rate. " a href="/" { "Add one on Today." } },
            None => p { "You have rated every goal in this check-in. " a href="/" { "Back to Today" } },
        }
        (round_and_goals(&plan, app.csrf(), alone))
    };
    Ok(app.page("Check-in", Nav::Checkin, main))
}

/// The open round's close form (not once the partner is gone: nothing is left sealed
/// for them), and every goal of the check-in.
fn round_and_goals(plan: &CheckinPlan, token: &str, alone: bool) -> Markup {
    html! {
        @if let Some(r) = plan.round.as_ref().filter(|_| !alone) {
            form method="post" action="/checkin/close" class="close"
                data-confirm=(CLOSE_MEANS) {
                (csrf(token))
                (super::confirm::field())
                p class="muted" { "This check-in closes by itself on " (iso_when(&r.ends_at)) "." }
                button type="submit" { "Close the check-in now and show both partners' ratings" }
            }
        }
        @if plan.goals.len() > 1 {
            nav aria-label="Goals of this check-in" {
                h2 { "All goals" }
                ul {
                    @for g in &plan.goals {
                        li {
                            a href=(format!("/checkin?goal={}", g.id)) { (bdi(&g.title)) }
                            @if g.rated { span class="muted" { " · rated" } }
                        }
                    }
                }
            }
        }
    }
}

/// A goal a link names (`goal=`, `rated=`), by id or the start of it.
enum Named {
    /// A goal of the check-in, by its full id.
    InPlan(String),
    /// A goal outside it (paused or archived): a check-in rates the active goals.
    Inactive {
        id: String,
        title: String,
        status: String,
    },
}

/// What `asked` names: a goal of `plan`, or another goal found as `duet rate` finds it;
/// `None` when nothing answers to it.
fn named(dev: &mut duet_core::device::Device, plan: &CheckinPlan, asked: &str) -> Option<Named> {
    if plan.goals.iter().any(|g| g.id == asked) {
        return Some(Named::InPlan(asked.to_string()));
    }
    let Ok(GoalDetail::Found { goal, .. }) = dev.goal_detail(asked, Some(0)) else {
        return None;
    };
    Some(if plan.goals.iter().any(|g| g.id == goal.id) {
        Named::InPlan(goal.id)
    } else {
        Named::Inactive {
            id: goal.id,
            title: goal.title.as_str().to_string(),
            status: goal.status.to_string(),
        }
    })
}

/// What a goal's form was rendered for: the open round (or none) and whether this person
/// had rated the goal in it. A form sent after either changed (a second tab rated the
/// goal, or the round was closed) rates nothing, and says why.
fn seen(plan: &CheckinPlan, g: &CheckinGoal) -> String {
    let round = plan.round.as_ref().map_or("none", |r| r.id.as_str());
    format!("{round}:{}", u8::from(g.rated))
}

/// Why a form rendered for `was` ([`seen`]) must not rate now, if it must not.
fn stale(plan: &CheckinPlan, goal: &str, was: &str) -> Option<&'static str> {
    let (round, rated) = was.split_once(':')?;
    let g = plan.goals.iter().find(|g| g.id == goal)?;
    let now_round = plan.round.as_ref().map(|r| r.id.as_str());
    if round != "none" && now_round != Some(round) {
        return Some(
            "the check-in this page showed was closed meanwhile (in another window, or by your partner); nothing was rated. Open the check-in page again to rate in a new one",
        );
    }
    // Rated since: in the round the page showed, or in one opened since (by that rating).
    (rated == "0" && g.rated && (round == "none" || now_round == Some(round))).then_some(
        "you rated this goal in this check-in meanwhile (in another window); nothing was rated. To change that rating, correct it on the goal's page",
    )
}

/// One goal's rating form (`alone`: the partner is gone, and reads no note).
fn goal_form(g: &CheckinGoal, seen: &str, token: &str, alone: bool) -> Markup {
    html! {
        form method="post" action="/checkin" class="checkin" {
            (csrf(token))
            input type="hidden" name="goal" value=(g.id);
            input type="hidden" name="seen" value=(seen);
            h2 dir="auto" { (g.title) }
            @if g.answers && !g.rated {
                p { "Your partner has rated this goal; rate it to see theirs." }
            } @else if g.answers {
                p { "Your partner has rated this goal again; rate it again to see theirs." }
            }
            @if !g.partner_steps.is_empty() {
                p { "Since you last rated it, your partner completed:" }
                ul { @for s in &g.partner_steps { li dir="auto" { (s) } } }
            }
            @if g.rated && g.partner_rated && !g.answers {
                p class="muted" { "You have both rated it in this check-in; rating again starts a new blind rating." }
            } @else if g.rated && !g.answers {
                p class="muted" { "You have rated it in this check-in already; rating again adds a new rating." }
            }
            fieldset {
                legend { "Where are you with it?" }
                @for (l, text) in &g.levels {
                    @let id = format!("level{l}");
                    div class="level" {
                        // Not filled back in by Back: the page then shows the next
                        // goal, and the level and note typed for the one before would
                        // rate it (a rating never chosen, a note about another goal).
                        input type="radio" name="level" id=(id) value=(l) required autocomplete="off";
                        label for=(id) {
                            strong { (level(*l as i64)) " " (level_name(*l as i64)) }
                            @if !text.is_empty() { br; (bdi(text)) }
                        }
                    }
                }
            }
            @if alone {
                label for="note" { "A note (optional)" }
            } @else {
                label for="note" { "A note (optional; your partner reads it with your rating)" }
            }
            textarea id="note" name="note" rows="3" autocomplete="off" {}
            button type="submit" { "Rate" }
        }
    }
}

/// A rating.
#[derive(Deserialize)]
pub struct RateForm {
    goal: String,
    /// Empty when none of the five was picked (said as such).
    #[serde(default)]
    level: String,
    #[serde(default)]
    note: String,
    /// What the form was rendered for ([`seen`]); absent, nothing is checked.
    #[serde(default)]
    seen: String,
}

/// `POST /checkin`.
pub async fn rate(State(app): State<App>, Form(f): Form<RateForm>) -> PageResult {
    if f.level.trim().is_empty() {
        return Err(anyhow::anyhow!("no level was picked; pick one of the five, then Rate").into());
    }
    let level: Level = f
        .level
        .parse()
        .map_err(|e| anyhow::anyhow!("{e}; pick one of the five levels"))?;
    let note = Some(f.note.trim().to_string()).filter(|n| !n.is_empty());
    let goal = f.goal.clone();
    let rated = app
        .with_device(move |dev| {
            if !f.seen.is_empty()
                && let Some(why) = stale(&dev.checkin_plan()?, &f.goal, &f.seen)
            {
                return Ok(Err(why));
            }
            Ok(Ok(dev.checkin(&[(f.goal, level, note)], None)?))
        })
        .await?;
    let rated = match rated {
        Ok(rated) => rated,
        Err(why) => {
            let page = app.page("Nothing was rated", Nav::None, refused(why, &goal));
            return Ok(axum::response::IntoResponse::into_response((
                axum::http::StatusCode::CONFLICT,
                page,
            )));
        }
    };
    let Some(r) = rated.first() else {
        return Ok(see_other("/checkin"));
    };
    Ok(see_other(&format!(
        "/checkin?rated={}&sealed={}",
        r.goal, r.sealed
    )))
}

/// A rating refused for a form shown before the check-in changed: why, and links to
/// where it is put right (the goal's page corrects a rating; the check-in rates anew).
fn refused(why: &str, goal: &str) -> Markup {
    html! {
        // The answer to a form: the script never reads the address again in its place.
        h1 data-form-answer { "Nothing was rated" }
        p class="problem" { (why) }
        p {
            a href=(format!("/goals/{goal}")) { "Open the goal's page" }
            " · " a href="/checkin" { "Back to the check-in" }
        }
    }
}

/// What the check-in page says after its close: what was shown to the partner, and
/// which of one's ratings stay sealed (`still_sealed`).
fn closed_notice(still_sealed: usize) -> Markup {
    html! {
        p class="done" role="status" data-result {
            "The check-in is closed: your blind ratings in it are shown to your partner. A new rating starts a new check-in."
        }
        @if still_sealed > 0 {
            p class="notice" role="status" {
                (if still_sealed == 1 { "1 of your ratings stays".to_string() } else { format!("{still_sealed} of your ratings stay") })
                " sealed: made in a round already closed (on a device that had not heard of the close), "
                (if still_sealed == 1 { "it opens" } else { "each opens" })
                " once your partner rates that goal, or once a round's length has passed since."
            }
        }
    }
}

/// What closing the check-in does, asked before it is done.
const CLOSE_MEANS: &str = "Close the check-in now? Your blind ratings in it are shown to your partner, also of goals they have not rated yet, and your partner's blind ratings in it are shown to you once their device syncs, also of goals you have not rated.";

/// `POST /checkin/close`: as `duet checkin --close`; asked first (`super::confirm`).
pub async fn close(
    State(app): State<App>,
    axum::Form(f): axum::Form<super::confirm::Confirmed>,
) -> PageResult {
    if !f.yes() {
        return Ok(super::confirm::page(
            &app,
            Nav::Checkin,
            (
                "Close the check-in now?",
                html! { p class="warning" { (CLOSE_MEANS) } },
            ),
            "/checkin/close",
            "Yes, close it and show both partners' ratings",
            "/checkin",
        ));
    }
    let closed = app.with_device(|dev| Ok(dev.close_rounds()?)).await?;
    Ok(see_other(&format!(
        "/checkin?closed=true&still_sealed={}",
        closed.still_sealed
    )))
}
