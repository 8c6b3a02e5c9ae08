//! `duet report --html FILE`: one self-contained, printable HTML file with inline SVG
//! charts of both partners' ratings, the T-score over time and recent reflections. Core
//! gives the data ([`Device::report`]); this renders it with maud, which escapes every
//! value it inserts.
//!
//! Self-contained means no scripts, fonts, images or styles from anywhere: a Content
//! Security Policy of `default-src 'none'` forbids the page any network access at all.
//!
//! [`Device::report`]: duet_core::device::Device::report

mod charts;

use anyhow::Context;
use duet_core::app::{ReportData, ReportQuery, ReportReflection};
use duet_core::progress::{GoalProgress, Progress};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use self::charts::{JOINT, PALETTE, goal_chart, t_chart};
use super::{Ctx, parse_day};
use crate::output::when;

/// Write a self-contained HTML report (charts, T-scores, recent shared reflections).
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  duet report --html progress.html --since 2026-01-01")]
pub struct Args {
    /// Where to write the report.
    #[arg(long, value_name = "FILE")]
    html: std::path::PathBuf,
    /// Only this goal (its title, a word or the start of it, or the start of its id).
    #[arg(long)]
    goal: Option<String>,
    /// Only ratings and reflections on or after this day (YYYY-MM-DD, UTC).
    #[arg(long, value_parser = parse_day)]
    since: Option<i64>,
    /// Also include your own private reflections (never your partner's).
    #[arg(long)]
    include_private: bool,
}

/// The page's own style sheet (the only one: the CSP allows inline styles and nothing
/// else).
const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:720px;margin:1rem auto;padding:0 1rem;color:#222;line-height:1.4}\
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}\
.chart{width:100%;height:auto;display:block}.grid{stroke:#e4e4e4}.expected{stroke:#888;stroke-dasharray:4 3}\
.ax{font-size:11px;fill:#666}.muted{color:#666}.legend{font-size:.9rem}\
table{border-collapse:collapse}td,th{padding:.2rem .6rem;text-align:left;border-bottom:1px solid #eee}\
blockquote{margin:.5rem 0;padding-left:.8rem;border-left:3px solid #ddd}\
@media print{h2{break-before:auto}.chart{break-inside:avoid}}";

/// No network access at all; only the inline style sheet.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'";

/// Runs `duet report`.
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let data = ctx.device()?.report(&ReportQuery {
        goal: a.goal,
        since: a.since,
        include_private: a.include_private,
    })?;
    let html = page(&data).into_string() + "\n";
    write_private(&a.html, html.as_bytes()).with_context(|| {
        format!(
            "cannot write the report to {}; choose a writable path",
            a.html.display()
        )
    })?;
    if ctx.out.json {
        return ctx.out.json(&ReportWritten {
            file: &a.html,
            goals: data.progress.goals.len(),
            bytes: html.len(),
        });
    }
    ctx.out.line(format!(
        "Wrote {} ({}, {} KB).",
        a.html.display(),
        duet_core::words::count(data.progress.goals.len(), "goal", "goals"),
        html.len().div_ceil(1024)
    ))?;
    Ok(())
}

/// `duet report --json`: what was written.
#[derive(serde::Serialize)]
struct ReportWritten<'a> {
    file: &'a std::path::Path,
    goals: usize,
    bytes: usize,
}

/// The whole page.
fn page(d: &ReportData) -> Markup {
    let p = &d.progress;
    let names: Vec<&str> = p.people.values().map(String::as_str).collect();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                meta http-equiv="Content-Security-Policy" content=(CSP);
                title { "Duet progress report" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "Progress report: " (names.join(" & ")) }
                p class="muted" {
                    "Made " (when(d.made_at)) " with duet. Each partner rates each goal separately on the Goal Attainment Scale: −2 much less than expected, 0 the expected outcome, +2 much more. A T-score of 50 means goals met as expected."
                }
                (legend(p))
                h2 { "GAS T-score over time" }
                (summary(p))
                (t_chart(d))
                @for g in &p.goals {
                    (goal_section(g, d))
                }
                h2 { "Recent reflections" }
                @if d.reflections.is_empty() {
                    p class="muted" { "None in this period." }
                }
                @for r in &d.reflections {
                    (reflection(r))
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
                span style=(format!("color:{}", PALETTE[i % PALETTE.len()])) { "■" }
                " " (name) " \u{a0} "
            }
            span style=(format!("color:{JOINT}")) { "■" }
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
                tr { td { (name) } td { (t(p.current(id))) } }
            }
            tr { td { "together" } td { (t(p.current_joint())) } }
        }
    }
}

/// One goal: its title, expected outcome, both latest levels and its chart.
fn goal_section(g: &GoalProgress, d: &ReportData) -> Markup {
    let latest: Vec<String> = g
        .partners
        .iter()
        .map(|s| {
            let level = s
                .latest
                .and_then(|l| duet_core::Level::try_from(l).ok())
                .map(|l| l.to_string());
            format!("{}: {}", s.name, level.as_deref().unwrap_or("not rated"))
        })
        .collect();
    let gap = match g.gap {
        Some(0) => " · in agreement".to_string(),
        Some(d) => format!(
            " · {} apart",
            duet_core::words::count(d as usize, "level", "levels")
        ),
        None => String::new(),
    };
    html! {
        h2 { (g.title) }
        @if !g.expected.is_empty() {
            p { strong { "Expected outcome:" } " " (g.expected) }
        }
        p { "Latest — " (latest.join(" · ")) (gap) }
        (goal_chart(g, d.t0, d.t1))
    }
}

/// One quoted reflection, its lines kept.
fn reflection(r: &ReportReflection) -> Markup {
    let author = r.author_name.as_deref().unwrap_or("someone");
    html! {
        blockquote {
            p {
                @for (i, line) in r.text.split('\n').enumerate() {
                    @if i > 0 { br; }
                    (line)
                }
            }
            p class="muted" {
                (author) " · " (when(r.at))
                @if r.private { " · private" }
            }
        }
    }
}

/// Writes `bytes` to `path` readable by the owner only (the report holds the couple's
/// notes and reflections): through a new temporary file in the same directory, renamed
/// over `path`, so that a symlink planted at `path` is replaced, never followed, and a
/// reader never sees half a report.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    // tempfile creates the file with mode 0600.
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
