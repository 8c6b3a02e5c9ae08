//! A goal: its details and five level texts, its steps (`steps`), both partners'
//! ratings over time (the report's chart) and the reflections about it with replies.

use std::collections::BTreeMap;

use crate::app::server::PageQuery;
use axum::Form;
use axum::extract::{Path, State};
use duet_core::app::{GoalDetail, GoalRecord, NewGoalInput, RatingRecord, SealedRecord};
use duet_core::progress::Progress;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Nav, level, level_name};
use super::reflections::thread;
use super::today::{iso_when, partner_line};
use crate::app::server::{App, PageResult};
use crate::commands::report::charts;
use crate::output::name_of;

/// Ratings a goal's page lists at first, newest first: a long history would otherwise
/// make a page of megabytes (100,000 rows at 100,000 ratings). A link lists more.
const RATINGS_LISTED: usize = 50;

/// `?ratings=N`: how many of the newest ratings to list (anything unreadable lists the
/// first page's count).
#[derive(Deserialize)]
pub struct GoalQuery {
    ratings: Option<String>,
    /// What a form did (`super::devices::told`).
    #[serde(default)]
    shown: String,
}

/// How many ratings to list for `?ratings=N` (anything unreadable: the first page's).
fn listed(asked: Option<&str>) -> usize {
    asked
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(RATINGS_LISTED)
        .max(RATINGS_LISTED)
}

/// `GET /goals/{id}`.
pub async fn goal(
    State(app): State<App>,
    Path(id): Path<String>,
    PageQuery(q): PageQuery<GoalQuery>,
) -> PageResult {
    let listed = listed(q.ratings.as_deref());
    let (detail, (progress, latest), merged, me) = app
        .with_device(move |dev| {
            let detail = dev.goal_detail(&id, Some(listed))?;
            let (progress, merged, latest) = match &detail {
                GoalDetail::Found { goal, .. } => (
                    Some(dev.progress(Some(&goal.id))?),
                    dev.merged_texts(Some(&goal.id))?,
                    dev.latest_own_rating(&goal.id)?,
                ),
                GoalDetail::Unreadable(_) => (None, Vec::new(), None),
            };
            let member = dev.departed()?.is_none();
            let today = crate::output::day(dev.now());
            let me = (
                dev.me.person_id.to_string(),
                member,
                dev.present_people()?,
                today,
            );
            Ok((detail, (progress, latest), merged, me))
        })
        .await?;
    let (me, member, present, today) = me;
    let GoalDetail::Found {
        goal,
        ratings,
        rating_count: total,
        people,
        reflections,
        sealed,
        ..
    } = detail
    else {
        let main = html! {
            h1 { "This goal cannot be read here" }
            p { "It was written by a newer version of Duet. `duet goal show` prints its raw content." }
        };
        return Ok(app.page("A goal", Nav::None, main));
    };
    let g = GoalRecord::from(goal.as_ref());
    // Newest first (the core gave only those listed).
    let ratings: Vec<RatingRecord> = ratings.iter().rev().map(RatingRecord::from).collect();
    let token = app.csrf().to_string();
    let main = html! {
        h1 dir="auto" { (g.title) }
        (super::devices::said(&super::devices::recall(&app, &q.shown)))
        (about(&g, duet_core::app::overdue(&goal, &today), &people))
        @for m in &merged {
            p class="problem" {
                "The " (field_name(&m.field)) " was changed on two devices while apart, and the two changes were merged letter by letter. Set it as it should read with Edit below."
            }
        }
        @if !g.why.is_empty() { p dir="auto" { (g.why) } }
        (levels(&g.levels))
        @if let Some(p) = &progress { (now(p, &g, member)) }
        (super::steps::section(&g, &people, &present, &me, member.then_some(token.as_str())))
        @if member {
            (super::edit::goal_forms(&g, &token, &me, &people, latest.as_deref()))
        }
        (ratings_section(&ratings, total, &sealed, &people, progress.as_ref(), (&g.id, &me)))
        section aria-labelledby="about" {
            h2 id="about" { "Reflections about it" }
            @if reflections.is_empty() { p class="muted" { "None yet." } }
            @for r in &reflections { (thread(r, &me, member.then_some(token.as_str()), &super::came_from::CameFrom::goal(&g.id))) }
            @if member {
                p { a href=(format!("/reflections?goal={}", g.id)) { "Write a reflection about this goal" } }
            }
        }
    };
    Ok(app.page(&g.title, Nav::None, main))
}

/// A goal text's history name in words: "title", "why", "level +1 text", "text of a
/// step".
fn field_name(field: &str) -> String {
    if field.starts_with("step:") {
        return "text of a step".to_string();
    }
    match field.strip_prefix("level:") {
        Some(l) => format!("level {l} text"),
        None => field.to_string(),
    }
}

/// The five level descriptions, +2 first.
fn levels(levels: &BTreeMap<String, String>) -> Markup {
    html! {
        h2 { "Levels" }
        dl class="levels" {
            @for l in (-2i64..=2).rev() {
                dt { (level(l)) " " span class="muted" { (level_name(l)) } }
                dd dir="auto" {
                    @match levels.get(&l.to_string()).filter(|t| !t.is_empty()) {
                        Some(t) => (t),
                        None => span class="muted" { "not written" },
                    }
                }
            }
        }
    }
}

/// Both partners' latest level, under the blind rules; a link to rate the goal while it
/// is active (a check-in rates the active goals: the link led to a refusal).
fn now(p: &Progress, g: &GoalRecord, member: bool) -> Markup {
    let id = &g.id;
    html! {
        @if let Some(gp) = p.goals.iter().find(|x| &x.goal == id) {
            ul class="partners" {
                @for s in &gp.partners { li { (partner_line(s, &p.me, !member)) } }
            }
            @if member && g.status == "active" {
                p { a href=(format!("/checkin?goal={id}")) { "Rate this goal" } }
            } @else if member {
                p class="muted" { "A check-in rates the active goals: set this one active (Status, below) to rate it." }
            }
        }
    }
}

/// What a sealed rating's row says: shown once both have rated, or, once the other
/// has (its time has come), once its rater's device syncs.
fn sealed_note(gp: Option<&duet_core::progress::GoalProgress>, s: &SealedRecord) -> String {
    let rater = gp
        .into_iter()
        .flat_map(|g| &g.partners)
        .find(|p| p.person == s.rater);
    match rater {
        Some(p) if p.left => format!("sealed: {} is no longer in the shared space", p.name),
        Some(p) if p.opening => format!("sealed: shown once {}'s device syncs", p.name),
        _ => "sealed: shown once both have rated".to_string(),
    }
}

/// The chart and the table of ratings (`ratings`: the newest of `total`, newest first)
/// with a link to older ones; sealed ones say only who and when.
fn ratings_section(
    ratings: &[RatingRecord],
    total: usize,
    sealed: &[SealedRecord],
    people: &BTreeMap<String, String>,
    progress: Option<&Progress>,
    (id, me): (&str, &str),
) -> Markup {
    let gp = progress.and_then(|p| p.goals.iter().find(|x| x.goal == id));
    // One's own sealed ratings are on this device with their level: listed once, as a
    // rating that says it is sealed, not again as a seal.
    let own_sealed =
        |r: &RatingRecord| r.rater == me && sealed.iter().any(|s| s.rater == me && s.at == r.at);
    let times: Vec<i64> = gp
        .iter()
        .flat_map(|g| {
            g.partners
                .iter()
                .flat_map(|s| s.ratings.iter().map(|r| r.at))
        })
        .collect();
    html! {
        section aria-labelledby="ratings" {
            h2 id="ratings" { "Ratings over time" }
            @if let (Some(gp), Some(t0), Some(t1)) = (gp, times.iter().min(), times.iter().max()) {
                @let (t0, t1) = charts::day_span(*t0, *t1);
                (charts::goal_chart(gp, t0, t1))
                (charts::goal_legend(gp))
            }
            @if ratings.is_empty() && sealed.is_empty() {
                p class="muted" { "No ratings yet." }
            } @else {
                table {
                    thead { tr { th { "When" } th { "Who" } th { "Level" } th { "Note" } } }
                    tbody {
                        @for s in sealed.iter().rev().filter(|s| s.rater != me) {
                            tr { td { (iso_when(&s.at)) } td dir="auto" { (name_of(people, &s.rater)) } td colspan="2" class="muted" { (sealed_note(gp, s)) } }
                        }
                        @for r in ratings {
                            tr {
                                td { (iso_when(&r.at)) }
                                td dir="auto" { (name_of(people, &r.rater)) }
                                td {
                                    (level(r.level))
                                    // As `goal show`, the export and the report mark it.
                                    @if r.corrects.is_some() { span class="muted" { " (corrected)" } }
                                }
                                td {
                                    (crate::bidi::bdi(r.note.as_deref().unwrap_or("")))
                                    @if own_sealed(r) { span class="muted" { " (sealed: your partner sees it once both have rated)" } }
                                }
                            }
                        }
                    }
                }
                @if total > ratings.len() {
                    p {
                        "The latest " (ratings.len()) " of " (total) " ratings. "
                        a href=(format!("/goals/{id}?ratings={}#ratings", ratings.len() * 4)) { "Show older ratings" }
                    }
                }
            }
        }
    }
}

/// The add-goal form.
#[derive(Deserialize)]
pub struct NewGoalForm {
    title: String,
    #[serde(default)]
    why: String,
    #[serde(default)]
    area: String,
    #[serde(default, rename = "level2")]
    l2: String,
    #[serde(default, rename = "level1")]
    l1: String,
    #[serde(default, rename = "level0")]
    l0: String,
    #[serde(default, rename = "level-1")]
    m1: String,
    #[serde(default, rename = "level-2")]
    m2: String,
    /// Present (a ticked box) for a goal of one's own.
    #[serde(default)]
    mine: Option<String>,
}

/// `POST /goals`.
pub async fn add_goal(State(app): State<App>, Form(f): Form<NewGoalForm>) -> PageResult {
    let levels = [(2, f.l2), (1, f.l1), (0, f.l0), (-1, f.m1), (-2, f.m2)]
        .into_iter()
        .filter(|(_, t)| !t.trim().is_empty())
        .map(|(l, t)| (l, t.trim().to_string()))
        .collect();
    let area = Some(f.area.trim())
        .filter(|a| !a.is_empty())
        .map(str::parse::<duet_core::vocab::Area>)
        .transpose()
        .map_err(|_| anyhow::anyhow!("pick one of the areas offered"))?;
    let input = NewGoalInput {
        title: f.title.trim().to_string(),
        area,
        why: Some(f.why.trim().to_string()).filter(|w| !w.is_empty()),
        levels,
        mine: f.mine.is_some(),
        ..NewGoalInput::default()
    };
    let id = app.with_device(move |dev| Ok(dev.add_goal(input)?)).await?;
    Ok(super::devices::told(
        &app,
        &format!("/goals/{id}"),
        "The goal is added.",
    ))
}

/// A goal's area, status, due day (overdue or not) and whose it is, in one line.
fn about(g: &GoalRecord, overdue: bool, people: &BTreeMap<String, String>) -> Markup {
    html! {
        p class="muted" {
            (super::layout::area_name(&g.area)) " · " (g.status) @if let Some(d) = &g.due { " · due " (d) @if overdue { " (overdue)" } }
            @if g.owner != "shared" { " · " (crate::bidi::bdi(name_of(people, &g.owner))) "'s own goal" }
        }
    }
}
