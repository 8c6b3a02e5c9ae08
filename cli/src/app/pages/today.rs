//! Today: the active goals with each partner's latest level (under the blind rules, as
//! `duet progress` decides), their open steps, the open check-in round, and a form to add
//! a goal.

use axum::extract::State;
use duet_core::app::{CheckinPlan, GoalRecord};
use duet_core::progress::{GoalProgress, PartnerSeries, Progress};
use maud::{Markup, html};

use super::layout::{Nav, csrf, level, level_name};
use crate::app::server::{App, PageResult};
use crate::bidi::bdi;
use crate::output::when;

/// What Today shows, read in one visit to the device.
struct Today {
    goals: Vec<GoalRecord>,
    /// The paused, achieved and archived goals: listed, so that each can be found again.
    others: Vec<GoalRecord>,
    progress: Progress,
    plan: CheckinPlan,
    departed: Option<duet_core::store::Departed>,
    partner: duet_core::app::Partner,
    /// Joined, its first sync not finished: the partner is not known here yet.
    joining: bool,
}

/// What Today is asked to say besides itself.
#[derive(serde::Deserialize, Default)]
pub struct TodayQuery {
    /// Set after a join that set aside the device of an earlier, refused join.
    set_aside: Option<String>,
    /// Set after a join from the setup page: said on Today (it said nothing).
    joined: Option<String>,
}

/// What Today says above the goals after a join: that it is done, and where what was
/// written under an earlier, refused join is kept (`kept`, a folder of the home).
fn notices(
    home: &std::path::Path,
    joined: bool,
    partner: &duet_core::app::Partner,
    kept: Option<&str>,
) -> Markup {
    html! {
        @if joined {
            p class="notice" role="status" data-result {
                "This device joined your shared space"
                @if let duet_core::app::Partner::Here(name) = partner {
                    ", with " (bdi(name)) ". What either of you adds shows on both sides."
                } @else { "." }
            }
        }
        @if let Some(folder) = kept {
            p class="notice" {
                "What you wrote on this device while its earlier join waited (the relay refused that code) is kept in "
                (home.display()) ", in " (folder) ". To open it, run "
                code { "duet app --home " (home.join(folder).display()) }
                " in a terminal."
            }
        }
    }
}

/// `GET /`.
pub async fn today(
    State(app): State<App>,
    axum::extract::Query(q): axum::extract::Query<TodayQuery>,
) -> PageResult {
    let t = app
        .with_device(|dev| {
            // Its join refused for good, this device joined nothing: nothing here can
            // be done but join again, on the setup page.
            if dev.joined_nothing_for_good()? {
                return Ok(None);
            }
            let (goals, others) = dev
                .goals(true)?
                .goals
                .iter()
                .map(GoalRecord::from)
                .partition(|g| g.status == "active");
            Ok(Some(Today {
                goals,
                others,
                progress: dev.progress(None)?,
                plan: dev.checkin_plan()?,
                departed: dev.departed()?,
                partner: dev.partner()?,
                joining: dev.joining()?,
            }))
        })
        .await?;
    let Some(t) = t else {
        return Ok(crate::app::server::see_other("/setup"));
    };
    let kept = q
        .set_aside
        .is_some()
        .then(|| duet_core::device::set_aside_in(&app.home).pop())
        .flatten();
    // A device that left (or was removed) reads what the space held; it writes no more.
    let member = t.departed.is_none();
    let main = html! {
        h1 { "Today" }
        (notices(&app.home, q.joined.is_some(), &t.partner, kept.as_deref()))
        @match &t.departed {
            Some(d) => p class="warning" { (d.describe()) ". What it held stays readable here; nothing more can be rated or added." },
            None => {
                @if let duet_core::app::Partner::Gone(name) = &t.partner {
                    p { (bdi(name)) " is no longer in your shared space: your ratings are in the clear from now on." }
                }
                // Set up with "Start new": the one step left is the partner's invite.
                @if matches!(t.partner, duet_core::app::Partner::NotYet) && !t.joining {
                    p class="next" {
                        "Nobody else is in your shared space yet: invite your partner on "
                        a href="/devices" { "Partner and devices" }
                        " (a code to send, or a short one to read aloud)."
                    }
                }
                (round(&t.plan, matches!(t.partner, duet_core::app::Partner::Gone(_))))
            }
        }
        @if t.goals.is_empty() && t.others.is_empty() {
            p { "No active goals yet. Add your first one below: what you want, and what “as expected” looks like." }
        } @else if t.goals.is_empty() {
            p { "No active goals right now: the others are below (set one active again on its page), or add a new one." }
        }
        @for g in &t.goals {
            (goal_card(g, &t.progress, member))
        }
        @if member { (add_goal_form(app.csrf(), t.goals.is_empty())) }
        (others(&t.others))
    };
    Ok(app.page("Today", Nav::Today, main))
}

/// The goals that are not active, each a link to its page (where its status is set
/// again): out of Today's way, never out of reach.
fn others(goals: &[GoalRecord]) -> Markup {
    html! {
        @if !goals.is_empty() {
            details class="other-goals" {
                summary { "Paused, achieved and archived goals (" (goals.len()) ")" }
                ul {
                    @for g in goals {
                        li { a href=(format!("/goals/{}", g.id)) { (bdi(&g.title)) } " · " (g.status) }
                    }
                }
            }
        }
    }
}

/// The open check-in round, or an invitation to start one (blind while there is a
/// partner to rate blind against, `alone` once they are gone).
fn round(plan: &CheckinPlan, alone: bool) -> Markup {
    let to_rate = plan.goals.iter().filter(|g| !g.rated).count();
    // "Blind" only for what would be sealed: a goal the partner has rated is rated in
    // the clear, in answer.
    let blind = plan.goals.iter().filter(|g| !g.rated && g.blind).count();
    let how = match blind {
        _ if alone => String::new(),
        0 => String::new(),
        b if b == to_rate => " blind".to_string(),
        b => format!(" ({b} blind)"),
    };
    html! {
        section class="round" aria-label="Check-in" {
            @if let Some(r) = &plan.round {
                p { "A check-in is open until " (iso_when(&r.ends_at)) "." }
            }
            @if to_rate > 0 {
                p { a href="/checkin" { "Rate " (duet_core::words::count(to_rate, "goal", "goals")) (how) } }
            } @else if !plan.goals.is_empty() {
                p { "You have rated every goal in this check-in." }
            }
        }
    }
}

/// One goal: title, both partners' latest levels, open steps.
fn goal_card(g: &GoalRecord, p: &Progress, member: bool) -> Markup {
    let gp = p.goals.iter().find(|x| x.goal == g.id);
    let open: Vec<_> = g.steps.iter().filter(|s| !s.done).collect();
    html! {
        article class="goal card" {
            h2 { a href=(format!("/goals/{}", g.id)) { (bdi(&g.title)) } }
            @if let Some(who) = (g.owner != "shared").then(|| for_whom(gp, &p.me, &g.owner)).flatten() {
                p class="muted" { @if who == "you" { "Your own goal" } @else { (bdi(&who)) "'s own goal" } }
            }
            @if let Some(expected) = g.levels.get("0").filter(|t| !t.is_empty()) {
                p class="muted" { "As expected: " (bdi(expected)) }
            }
            @if let Some(gp) = gp {
                ul class="partners" {
                    @for s in &gp.partners {
                        li { (partner_line(s, &p.me, !member)) }
                    }
                }
                @match gp.gap {
                    Some(0) => p class="muted" { "You agree." },
                    Some(n) if gp.worth_talking => p { (n) " levels apart: worth talking about." },
                    _ => {},
                }
            }
            @if !open.is_empty() {
                h3 { "Open steps" }
                ul class="steps" {
                    @for s in open {
                        li {
                            (bdi(&s.text))
                            @if let Some(who) = s.assignee.as_deref().and_then(|a| for_whom(gp, &p.me, a)) {
                                span class="muted" { " for " (bdi(&who)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// "you", or the name (as shown) of the partner a step is for; `None` for an id that
/// is neither.
fn for_whom(gp: Option<&GoalProgress>, me: &str, person: &str) -> Option<String> {
    if person == me {
        return Some("you".to_string());
    }
    gp?.partners
        .iter()
        .find(|s| s.person == person)
        .map(|s| s.name.clone())
}

/// A partner's latest level, or what the blind rules allow to say; `gone`: this device
/// left or was removed, and nothing sealed opens here any more.
pub fn partner_line(s: &PartnerSeries, me: &str, gone: bool) -> Markup {
    html! {
        strong { (bdi(&s.name)) } ": "
        @match s.latest {
            Some(l) => { (level(l)) " (" (level_name(l)) ")" @if let Some(t) = s.latest_at { span class="muted" { " on " (when(t)) } } },
            None if s.sealed => span class="muted" { "rated blind" },
            None => span class="muted" { "not rated yet" },
        }
        @if s.dated_ahead {
            br;
            span class="sealed" { "dated ahead of this device's clock: it stays the latest until then (if the date is wrong, its rater corrects it)" }
        }
        @if s.sealed {
            br;
            span class="sealed" {
                @if gone {
                    @if s.person == me { "you rated blind" } @else { (bdi(&s.name)) " rated blind" }
                    ": " (crate::advice::STAYS_SEALED)
                } @else if s.person == me {
                    "you have rated blind: sealed until your partner rates too"
                } @else if s.left {
                    (bdi(&s.name)) " is no longer in the shared space: their blind rating stays sealed"
                } @else if s.opening {
                    (bdi(&s.name)) " has rated; shown once " (bdi(&s.name)) "'s device syncs"
                } @else {
                    (bdi(&s.name)) " has rated; rate to see it"
                }
            }
        }
    }
}

/// An RFC 3339 time in local time, as the rest of the pages show times.
pub fn iso_when(iso: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(iso)
        .map(|t| when(t.timestamp_millis()))
        .unwrap_or_else(|_| iso.to_string())
}

/// Adding a goal with its five level descriptions; folded away once there are goals.
fn add_goal_form(token: &str, first: bool) -> Markup {
    let levels = [
        ("2", "+2 much more than expected"),
        ("1", "+1 more than expected"),
        ("0", "0 the expected outcome"),
        ("-1", "−1 less than expected"),
        ("-2", "−2 much less than expected"),
    ];
    html! {
        details class="add-goal" open[first] {
            summary { h2 id="add-goal" { "Add a goal" } }
            form method="post" action="/goals" {
                (csrf(token))
                label for="title" { "Title" }
                // No maxlength here or below: a browser cuts a longer paste without a
                // word; the limits are Duet's (100,000 characters), said when passed.
                input id="title" name="title" required;
                label for="why" { "Why it matters (optional)" }
                textarea id="why" name="why" rows="2" {}
                (super::layout::area_choice("area", "other"))
                fieldset {
                    legend { "What each level looks like" }
                    @for (l, label) in levels {
                        label for=(format!("level{l}")) { (label) }
                        input id=(format!("level{l}")) name=(format!("level{l}"));
                    }
                }
                div class="check" {
                    input type="checkbox" id="mine" name="mine" value="1";
                    label for="mine" { "A goal of my own (about me; we both still see and rate it)" }
                }
                button type="submit" { "Add the goal" }
            }
        }
    }
}
