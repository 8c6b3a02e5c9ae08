//! `duet report --html FILE`: one self-contained, printable HTML file for a therapist:
//! the period covered, both partners' T-scores over time, and per goal (of every status)
//! its status and since when, level descriptions, steps, ratings with their notes and a
//! chart, then the reflections grouped by goal. Core gives the data ([`Device::report`]);
//! this renders it with maud, which escapes every value it inserts.
//!
//! Self-contained means no scripts, fonts, images or styles from anywhere: a Content
//! Security Policy of `default-src 'none'` forbids the page any network access at all.
//!
//! [`Device::report`]: duet_core::device::Device::report

pub(crate) mod charts;
mod goal;
mod reflections;
mod series_style;

use anyhow::Context;
use duet_core::app::{ReportData, ReportQuery};
use duet_core::progress::Progress;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use self::charts::t_chart;
use self::series_style::{TOGETHER, key, partner};
use super::{Ctx, parse_day};
use crate::output::{day, when};

/// Write a self-contained HTML report for a therapist (goals, ratings, reflections).
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  duet report --html progress.html --since 2026-01-01")]
pub struct Args {
    /// Where to write the report (replaced if it exists; readable by you only).
    #[arg(long, value_name = "FILE")]
    html: std::path::PathBuf,
    /// Only this goal (its title, a word or the start of it, or the start of its id).
    #[arg(long)]
    goal: Option<String>,
    /// Only ratings and reflections on or after this day (YYYY-MM-DD, local time).
    #[arg(long, value_parser = parse_day)]
    since: Option<i64>,
    /// Also include your own private reflections (never your partner's); the page then
    /// says so at the top.
    #[arg(long)]
    include_private: bool,
}

/// The page's own style sheet (the only one: the CSP allows inline styles and nothing
/// else). Printed, it is black on white, and a goal's header, a table row, a chart or a
/// reflection is never split across pages.
const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:760px;margin:1rem auto;padding:0 1rem;color:#222;background:#fff;line-height:1.4;overflow-wrap:anywhere}th,td{overflow-wrap:break-word}td bdi,td[dir=auto]{overflow-wrap:anywhere}\
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}h3{font-size:1rem;margin:1rem 0 .3rem}h4{font-size:.95rem;margin:.8rem 0 .2rem}\
.chart{width:100%;height:auto;display:block}.grid{stroke:#e4e4e4}.axis{stroke:#999}.expected{stroke:#888;stroke-dasharray:4 3}\
.ax{font-size:11px;fill:#666}.muted{color:#666}.legend{font-size:.9rem}.key{vertical-align:middle}\
table{border-collapse:collapse;margin:.3rem 0}td,th{padding:.2rem .6rem;text-align:left;vertical-align:top;border-bottom:1px solid #eee}\
.levels tr.expected{font-weight:600}.ratings{font-size:.9rem}.steps{padding-left:1rem;list-style:none}\
.status strong{text-transform:capitalize}\
.banner{border:3px solid #b00020;background:#fff4f4;color:#600;padding:.6rem .9rem;font-weight:600}\
.reflection{margin:.6rem 0}.reflection blockquote{margin:.2rem 0;padding-left:.8rem;border-left:3px solid #ddd;unicode-bidi:plaintext}\
.reflection.private blockquote{border-left-color:#b00020}.replies{margin-left:1.5rem}tr.sealed td{color:#666}.private-mark{color:#b00020;font-weight:600}\
@media print{@page{margin:15mm}\
body{max-width:none;margin:0;padding:0;color:#000;background:#fff;font-size:10.5pt}\
.muted,.banner,.private-mark{color:#000}.ax{fill:#000}.banner{background:#fff;border-color:#000}\
a{color:#000;text-decoration:none}\
h2,h3,h4{break-after:avoid}.goal-head,tr,.chart,.reflection,.banner,.legend{break-inside:avoid}\
thead{display:table-header-group}.goal{break-before:page}}";

/// No network access at all; only the inline style sheet.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'";

/// Runs `duet report`.
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let data = ctx.view_device()?.report(&ReportQuery {
        goal: a.goal,
        since: a.since,
        include_private: a.include_private,
    })?;
    let html = page(&data).into_string() + "\n";
    // Written and said before a signal stops the command.
    let _held = crate::interrupt::hold();
    crate::output::write_private(&a.html, html.as_bytes(), &ctx.home).with_context(|| {
        format!(
            "cannot write the report to {}; choose a writable path",
            a.html.display()
        )
    })?;
    let private = data.private_reflections();
    if ctx.out.json {
        return ctx.out.json(&ReportWritten {
            file: &a.html,
            goals: data.goals.len(),
            private_reflections: private,
            bytes: html.len(),
        });
    }
    ctx.out.line(format!(
        "Wrote {} ({}, {} KB).",
        a.html.display(),
        duet_core::words::count(data.goals.len(), "goal", "goals"),
        html.len().div_ceil(1024)
    ))?;
    if private > 0 {
        ctx.out.line(format!(
            "It contains {} that only your devices hold: share it only with someone who may read {}.",
            duet_core::words::count(private, "private reflection", "private reflections"),
            if private == 1 { "it" } else { "them" }
        ))?;
    }
    Ok(())
}

/// `duet report --json`: what was written.
#[derive(serde::Serialize)]
struct ReportWritten<'a> {
    file: &'a std::path::Path,
    goals: usize,
    private_reflections: usize,
    bytes: usize,
}

/// The whole page (also the app's `/report/print`), bidirectional controls in its text
/// shown, not obeyed (`crate::bidi`): a partner's title must not reverse the levels.
pub(crate) fn page(d: &ReportData) -> Markup {
    let p = &d.progress;
    // Ratings of one day sit over that day's date, as in the app's goal page.
    let (t0, t1) = charts::day_span(d.t0, d.t1);
    let names: Vec<&str> = p.people.values().map(String::as_str).collect();
    let title = format!("Progress report: {}, {}", names.join(" & "), period(d));
    let private = d.private_reflections();
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                meta http-equiv="Content-Security-Policy" content=(CSP);
                title {
                    (title)
                    @if private > 0 { " (with private reflections)" }
                }
                style { (PreEscaped(STYLE)) }
            }
            body {
                @if private > 0 {
                    div class="banner" id="private-banner" role="note" {
                        "This report contains "
                        (duet_core::words::count(private, "private reflection", "private reflections"))
                        ", marked “private” below. Only the author's own devices hold them: \
                        the partner has never seen them. Share this page only with someone who may read them."
                    }
                }
                @let own_sealed = own_sealed(d);
                @if own_sealed > 0 {
                    div class="banner" id="own-sealed-banner" role="note" {
                        "This report shows "
                        (duet_core::words::count(own_sealed, "rating of yours", "ratings of yours"))
                        " still sealed: rated blind, your partner has not seen "
                        (if own_sealed == 1 { "it" } else { "them" })
                        " yet. Shown to them before they rate, it would spoil their blind rating."
                    }
                }
                h1 { "Progress report: " (heading_names(&names)) ", " (period(d)) }
                p class="muted" {
                    "Made " (when(d.made_at)) " with duet; times are this device's (" (zone(d)) "). Each partner rates each goal separately on the Goal Attainment Scale: −2 much less than expected, 0 the expected outcome, +2 much more. A T-score of 50 means goals met as expected; 10 points is one standard deviation."
                }
                p class="muted" id="marks-legend" {
                    "In the ratings tables, “rated blind” marks a rating given first in a check-in and sealed until the partner had rated the goal too; the partner's rating that answered it, given without seeing it, carries no mark. “corrected” marks a rating that replaced an earlier one of its rater."
                }
                @if p.goals.iter().flat_map(|g| &g.partners).any(|s| s.dated_ahead) {
                    p class="muted" id="dated-ahead" {
                        "A rating marked “dated ahead” bears a date after this report was made: it was given on a device whose clock was wrong, and counts as its rater's latest (in the T-scores too) until that date. If the date is wrong, its rater replaces it (`duet rate GOAL LEVEL --amend`)."
                    }
                }
                (contents(d))
                (legend(p))
                h2 { "GAS T-score over time" }
                p class="muted" {
                    "“together” scores both partners' latest ratings of every goal as one set with the GAS formula (ρ = 0.3, each rating weighted by its goal's weight for its rater); it is not the average of the two scores."
                }
                (summary(p))
                (t_chart(d, t0, t1))
                @for g in &d.goals {
                    (goal::goal_section(g, &p.people, t0, t1))
                }
                (reflections::reflections(&d.reflections))
            }
        }
    };
    maud::PreEscaped(crate::bidi::shown(page.into_string()))
}

/// How many of this person's own ratings the report lists that are still sealed (their
/// device opens them for them; the partner has not seen them).
fn own_sealed(d: &ReportData) -> usize {
    d.goals
        .iter()
        .flat_map(|g| &g.ratings)
        .filter(|p| p.person == d.progress.me)
        .map(|p| p.sealed.len())
        .sum()
}

/// The partners' names for the heading, each set apart from the others and the date.
fn heading_names(names: &[&str]) -> Markup {
    html! {
        @for (i, name) in names.iter().enumerate() {
            @if i > 0 { " & " }
            (crate::bidi::bdi(name))
        }
    }
}

/// The offsets the report's times are in: one, or those the device's zone had over the
/// period and since (a change to or from daylight saving time between), to the latest
/// time it shows (a rating dated ahead of this device's clock may be after it was made).
fn zone(d: &ReportData) -> String {
    let offsets =
        crate::output::utc_offsets(d.period.from.min(d.made_at), d.made_at.max(d.period.to));
    match offsets.as_slice() {
        [one] => one.clone(),
        many => format!(
            "{}: each time in its own date's offset, as the zone changed for daylight saving time",
            many.join(" or ")
        ),
    }
}

/// The period covered, as days: "2026-01-01 to 2026-03-31".
fn period(d: &ReportData) -> String {
    let from = day(d.period.from);
    let to = day(d.period.to);
    if from == to {
        from
    } else {
        format!("{from} to {to}")
    }
}

/// The goals, each with its status, linking to its section.
fn contents(d: &ReportData) -> Markup {
    html! {
        @if d.goals.is_empty() {
            p class="muted" { "No goals yet." }
        } @else {
            ol class="contents" {
                @for g in &d.goals {
                    li {
                        a href=(format!("#goal-{}", g.goal.id)) { (crate::bidi::bdi(&g.goal.title)) }
                        span class="muted" { " · " (g.goal.status) }
                    }
                }
            }
        }
    }
}

/// Whose colour is whose.
fn legend(p: &Progress) -> Markup {
    html! {
        p class="legend" {
            @for (i, name) in p.people.values().enumerate() {
                (key(partner(i)))
                " " (crate::bidi::bdi(name)) " \u{a0} "
            }
            (key(TOGETHER))
            " together (T-score only)"
        }
    }
}

/// Each partner's T-score now, and together.
fn summary(p: &Progress) -> Markup {
    let t = |t: Option<f64>| t.map(|t| format!("{t:.1}")).unwrap_or_else(|| "–".into());
    html! {
        table {
            tr { th { "Who" } th { "T-score now" } }
            @for (id, name) in &p.people {
                tr { td dir="auto" { (name) } td { (t(p.current(id))) } }
            }
            tr { td { "together" } td { (t(p.current_joint())) } }
        }
    }
}
