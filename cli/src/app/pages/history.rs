//! History: the joint timeline, newest first, filtered by goal and partner through the
//! query (`/history?goal=ID&by=NAME`), the same query as `duet history --goal --by`.

use crate::app::server::PageQuery;
use axum::extract::State;
use duet_core::history::HistoryQuery;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::Nav;
use crate::app::server::{App, PageResult};
use crate::output::when;

/// The events a page shows (the newest), and as many more at each "Show older events".
const SHOWN: usize = 500;

/// The most times "Show older events" widens the page (100,000 events).
const MOST_PAGES: usize = 200;

/// The filters.
#[derive(Deserialize, Default)]
pub struct HistoryFilter {
    goal: Option<String>,
    by: Option<String>,
    /// What the undo form did (`super::devices::remember`).
    #[serde(default)]
    shown: String,
    /// How many times [`SHOWN`] events to show: two years of weekly check-ins hold
    /// thousands, and the page showed the newest 500 with no way to the rest.
    pages: Option<usize>,
}

/// `GET /history`.
pub async fn history(State(app): State<App>, PageQuery(f): PageQuery<HistoryFilter>) -> PageResult {
    let goal = f.goal.filter(|g| !g.is_empty());
    let by = f.by.filter(|b| !b.is_empty());
    let pages = f.pages.unwrap_or(1).clamp(1, MOST_PAGES);
    let query = HistoryQuery {
        goal: goal.clone(),
        by: by.clone(),
        last: Some(SHOWN * pages),
        ..HistoryQuery::default()
    };
    let (events, goals, people) = app
        .with_device(move |dev| {
            let goals: Vec<(String, String)> = dev
                .goals(true)?
                .goals
                .iter()
                .map(|g| (g.id.clone(), g.title.as_str().to_string()))
                .collect();
            // Both as every page shows them (names that look alike with their ids), so
            // that the filter names one person.
            let shown = duet_core::names::shown(
                &dev.view_parts(
                    duet_core::store::SpaceKind::Shared,
                    duet_core::readmodel::Parts::Goals,
                )?
                .people,
            );
            let me = dev.me.person_id.to_string();
            let mut people = vec![
                shown
                    .get(&me)
                    .cloned()
                    .unwrap_or_else(|| dev.me.name.clone()),
            ];
            people.extend(
                shown
                    .into_iter()
                    .filter(|(id, _)| *id != me)
                    .map(|(_, n)| n),
            );
            let undo = match dev.member_of(duet_core::store::SpaceKind::Shared)? {
                true => dev.undo_preview()?,
                false => duet_core::app::UndoPreview::Nothing,
            };
            Ok((dev.history(query)?, goals, (people, undo)))
        })
        .await?;
    let (people, undo) = people;
    let main = html! {
        h1 { "History" }
        (super::devices::said(&super::devices::recall(&app, &f.shown)))
        (filters(&goals, &people, goal.as_deref(), by.as_deref()))
        // Above the timeline, beside the newest events it is about: below up to 500
        // events, a phone's reader scrolled screens to reach it.
        (undo_part(app.csrf(), &undo))
        @if events.is_empty() { p class="muted" { "Nothing yet." } }
        ol class="timeline" reversed {
            @for e in events.iter().rev() {
                li {
                    span class="when" { (when(e.at)) } " " (people_set_apart(e, &people))
                    @if e.never_sent {
                        " " span class="muted" { "(never sent: shown on this device only)" }
                    } @else if e.dated_ahead {
                        " " span class="muted" { "(dated ahead of this device's clock)" }
                    }
                }
            }
        }
        @if events.len() >= SHOWN * pages && pages < MOST_PAGES {
            (older(goal.as_deref(), by.as_deref(), pages + 1))
        }
    };
    Ok(app.page("History", Nav::History, main))
}

/// The undo button naming what it takes back, or why there is none.
fn undo_part(csrf: &str, undo: &duet_core::app::UndoPreview) -> Markup {
    html! {
        @match undo {
            duet_core::app::UndoPreview::Would(undone, id) => (super::edit::undo_form(csrf, undone, id)),
            duet_core::app::UndoPreview::AfterWithdrawal => p class="muted" {
                "Nothing to undo: your latest act withdrew a reflection, which cannot be taken back, and nothing older is undone in its place. A rating is corrected on its goal's page; a reflection is edited or withdrawn on "
                a href="/reflections" { "Reflections" } "."
            },
            duet_core::app::UndoPreview::Nothing => {},
        }
    }
}

/// "Show older events": the same filters, `pages` times [`SHOWN`] events (a form, so
/// that the filters need no encoding into a link).
fn older(goal: Option<&str>, by: Option<&str>, pages: usize) -> Markup {
    html! {
        form method="get" action="/history" class="older" {
            @if let Some(g) = goal { input type="hidden" name="goal" value=(g); }
            @if let Some(b) = by { input type="hidden" name="by" value=(b); }
            input type="hidden" name="pages" value=(pages);
            button type="submit" { "Show older events" }
        }
    }
}

/// An event's line with the names, titles and texts people wrote in it set apart from
/// Duet's words (a Hebrew title would otherwise take the level after it into its run).
fn people_set_apart(e: &duet_core::history::HistoryEvent, people: &[String]) -> Markup {
    let mut pieces: Vec<&str> = people.iter().map(String::as_str).collect();
    pieces.push(&e.author_name);
    pieces.extend(
        [&e.goal_title, &e.before, &e.after]
            .into_iter()
            .filter_map(|s| s.as_deref()),
    );
    crate::bidi::isolated_in(&e.summary, &pieces)
}

/// The form that filters the timeline by goal and by person.
fn filters(
    goals: &[(String, String)],
    people: &[String],
    goal: Option<&str>,
    by: Option<&str>,
) -> Markup {
    html! {
    form method="get" action="/history" class="filters" {
        label for="goal" { "Goal" }
        select id="goal" name="goal" {
            option value="" { "Every goal" }
            @for (id, title) in goals {
                option value=(id) selected[goal == Some(id.as_str())] { (title) }
            }
        }
        label for="by" { "Who" }
        select id="by" name="by" {
            option value="" { "Both of you" }
            @for name in people {
                option value=(name) selected[by == Some(name.as_str())] { (name) }
            }
        }
        button type="submit" { "Show" }
    }
    }
}
