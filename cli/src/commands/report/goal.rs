//! One goal of the report: its header (title, area, status and since when, why), the five
//! level descriptions, the steps with who completed them and when, the partners' latest
//! levels with the chart, and each partner's ratings as a table.

use std::collections::BTreeMap;

use duet_core::app::{PartnerRatings, RatingRecord, ReportGoal, StepRecord};
use maud::{Markup, html};

use super::charts::goal_chart;
use super::day;
use crate::output::{name_of, when_of};

/// The marks of a rating in its table's "marks" column: a correction (it replaced an
/// earlier rating, which no longer counts), a rating given blind and revealed.
pub fn rating_marks(r: &RatingRecord) -> Vec<&'static str> {
    let mut marks = Vec::new();
    if r.corrects.is_some() {
        marks.push("corrected");
    }
    if r.blind {
        marks.push("rated blind");
    }
    marks
}

/// A rating row's marks; `sealed` for one's own rating still sealed from the partner.
fn row_marks(r: &RatingRecord, sealed: bool) -> String {
    let mut marks = rating_marks(r);
    if sealed {
        marks.push("sealed: not shown to the partner yet");
    }
    marks.join(", ")
}

/// One goal's section.
pub fn goal_section(g: &ReportGoal, people: &BTreeMap<String, String>, t0: i64, t1: i64) -> Markup {
    let goal = &g.goal;
    html! {
        section class="goal" id=(format!("goal-{}", goal.id)) data-status=(goal.status) {
            (header(g, people))
            h3 { "Levels" }
            (levels(&goal.levels))
            h3 { "Steps" }
            (steps(&goal.steps, people))
            h3 { "Ratings" }
            p { "Latest — " (latest(g)) }
            (goal_chart(&g.progress, t0, t1))
            @for p in &g.ratings {
                (ratings_table(p))
            }
        }
    }
}

/// Title, area, whose goal (when one partner's own), status with the day it was set,
/// whether it counts, and why it matters.
fn header(g: &ReportGoal, people: &BTreeMap<String, String>) -> Markup {
    let goal = &g.goal;
    html! {
        header class="goal-head" {
            h2 dir="auto" { (goal.title) }
            p class="meta" {
                // In words, as the app names it ("Quality time", not its slug).
                span class="area" { (crate::output::area_name(&goal.area)) } " · "
                @if goal.owner != "shared" { span class="owner" { (crate::bidi::bdi(name_of(people, &goal.owner))) "'s own goal" } " · " }
                span class="status" data-status=(goal.status) {
                    "Status: " strong { (goal.status) } " since " (day(g.status_since))
                    @if !g.status_changed { " (when it was created)" }
                }
                @if let Some(due) = &goal.due { " · due " (due) }
            }
            @if !g.counts {
                p class="muted" { "Not counted in the T-scores while " (goal.status) "." }
            }
            @if !goal.why.is_empty() {
                p class="why" { strong { "Why it matters:" } " " (crate::bidi::bdi(&goal.why)) }
            }
        }
    }
}

/// The five level descriptions, +2 first; an empty one says so.
fn levels(levels: &BTreeMap<String, String>) -> Markup {
    const MEANING: [(i8, &str); 5] = [
        (2, "much more than expected"),
        (1, "more than expected"),
        (0, "expected outcome"),
        (-1, "less than expected"),
        (-2, "much less than expected"),
    ];
    html! {
        table class="levels" {
            @for (level, meaning) in MEANING {
                @let text = levels.get(&level.to_string()).map(String::as_str).unwrap_or("");
                tr data-level=(level) class=[(level == 0).then_some("expected")] {
                    th { (signed(level.into())) } td class="muted" { (meaning) }
                    td class="description" dir="auto" {
                        @if text.is_empty() { span class="muted" { "not described" } }
                        @else { (text) }
                    }
                }
            }
        }
    }
}

/// The steps in the order they were added, done or open.
fn steps(steps: &[StepRecord], people: &BTreeMap<String, String>) -> Markup {
    html! {
        @if steps.is_empty() {
            p class="muted" { "No steps." }
        } @else {
            ul class="steps" {
                @for s in steps {
                    li class=(if s.done { "step done" } else { "step open" }) {
                        (if s.done { "✓ " } else { "○ " }) span class="step-text" { (crate::bidi::bdi(&s.text)) }
                        span class="muted" {
                            @if s.done {
                                " — done"
                                @if let Some(by) = &s.done_by {
                                    " by " span class="done-by" { (crate::bidi::bdi(name_of(people, by))) }
                                }
                                @if let Some(at) = &s.done_at {
                                    " on " span class="done-at" { (when_of(at)) }
                                }
                            } @else {
                                " — open"
                                @if let Some(a) = &s.assignee { ", for " (name_of(people, a)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Each partner's latest level, and how far apart they are.
fn latest(g: &ReportGoal) -> Markup {
    let levels: Vec<(&str, String)> = g
        .progress
        .partners
        .iter()
        .map(|s| {
            let level = s.latest.map(signed);
            // A blind rating still sealed is a rating, not "not rated" (its level is
            // never shown until it opens).
            let none = if s.sealed {
                "rated blind, not revealed yet"
            } else {
                "not rated"
            };
            // This device opens its own sealed ratings: the latest level shown may be
            // that sealed rating itself, not one before it.
            let own_sealed_latest = g.ratings.iter().any(|p| {
                p.person == s.person
                    && p.ratings
                        .last()
                        .is_some_and(|r| p.sealed.iter().any(|x| x.id == r.id))
            });
            let said = match (level, s.sealed) {
                (Some(l), true) if own_sealed_latest => {
                    format!("{l} (rated blind, not shown to the partner yet)")
                }
                (Some(l), true) => format!("{l} (and rated blind since)"),
                (level, _) => level.unwrap_or_else(|| none.to_string()),
            };
            let said = match s.dated_ahead {
                true => format!("{said} (dated ahead)"),
                false => said,
            };
            // A weight other than 1 moves the T-scores: said where the level is.
            let said = match s.weight {
                w if (w - 1.0).abs() > f64::EPSILON => format!("{said} (weight {w})"),
                _ => said,
            };
            (s.name.as_str(), said)
        })
        .collect();
    let gap = match g.progress.gap {
        Some(0) => " · in agreement".to_string(),
        // As `progress` and the app say it: a clinician should not have to work it out.
        // Only on a goal still worked on (`progress::worth_talking`).
        Some(d) if g.progress.worth_talking => format!(" · {d} levels apart: worth talking about"),
        Some(d) => format!(
            " · {} apart",
            duet_core::words::count(d as usize, "level", "levels")
        ),
        None => String::new(),
    };
    html! {
        @for (i, (name, level)) in levels.iter().enumerate() {
            @if i > 0 { " · " }
            (crate::bidi::bdi(name)) ": " (level)
        }
        (gap)
    }
}

/// One partner's ratings: date, level, note and marks, oldest first. This person's own
/// sealed ratings, which this device opens, are among the ratings, marked sealed; the
/// sealed rows that follow are those it cannot open.
fn ratings_table(p: &PartnerRatings) -> Markup {
    let opened = |id: &str| p.ratings.iter().any(|r| r.id == id);
    let sealed = |id: &str| p.sealed.iter().any(|s| s.id == id);
    html! {
        h4 { (crate::bidi::bdi(&p.name)) "'s ratings" }
        @if p.ratings.is_empty() && p.sealed.is_empty() {
            p class="muted" { "No ratings in this period." }
        } @else {
            table class="ratings" data-person=(p.person) {
                thead { tr { th { "Date" } th { "Level" } th { "Note" } th { "Marks" } } }
                tbody {
                    @for r in &p.ratings {
                        tr {
                            td { (when_of(&r.at)) } td { (signed(r.level)) }
                            td dir="auto" { @if let Some(n) = &r.note { (n) } }
                            td class="marks" { (row_marks(r, sealed(&r.id))) }
                        }
                    }
                    @for sealed in p.sealed.iter().filter(|s| !opened(&s.id)) {
                        tr class="sealed" {
                            td { (when_of(&sealed.at)) } td { "—" }
                            td class="muted" { "not revealed yet" }
                            td class="marks" { "sealed" }
                        }
                    }
                }
            }
        }
    }
}

/// A level with its sign: +1, 0, -1 (with a real minus).
fn signed(level: i64) -> String {
    match level {
        l if l > 0 => format!("+{l}"),
        l if l < 0 => format!("−{}", -l),
        _ => "0".into(),
    }
}
