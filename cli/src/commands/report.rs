//! `duet report --html FILE`: one self-contained, printable HTML file with inline SVG
//! charts of both partners' ratings, the T-score over time and recent reflections.
//!
//! Self-contained means no scripts, fonts, images or styles from anywhere: a Content
//! Security Policy of `default-src 'none'` forbids the page any network access at all.

use std::fmt::Write as _;

use anyhow::Context;
use duet_core::model::Reflection;
use duet_core::progress::{GoalProgress, Progress, TPoint, progress};
use duet_core::store::SpaceKind;

use super::{Ctx, parse_day};
use crate::output::when;

/// Write a self-contained HTML report (charts, T-scores, recent shared reflections).
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  duet report --html progress.html --since 2026-01-01")]
pub struct Args {
    /// Where to write the report.
    #[arg(long, value_name = "FILE")]
    html: std::path::PathBuf,
    /// Only this goal (id prefix or exact title).
    #[arg(long)]
    goal: Option<String>,
    /// Only ratings and reflections on or after this day (YYYY-MM-DD, UTC).
    #[arg(long, value_parser = parse_day)]
    since: Option<i64>,
    /// Also include your own private reflections (never your partner's).
    #[arg(long)]
    include_private: bool,
}

const PALETTE: [&str; 4] = ["#1f6feb", "#d1495b", "#2a9d8f", "#8f5fd7"];
const JOINT: &str = "#444";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

struct Frame {
    t0: i64,
    t1: i64,
    w: f64,
    h: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    y0: f64,
    y1: f64,
}

impl Frame {
    /// The report's chart size and margins, for a time span and a value range.
    fn chart(t0: i64, t1: i64, y0: f64, y1: f64) -> Frame {
        Frame {
            t0,
            t1,
            w: 640.0,
            h: 220.0,
            left: 120.0,
            right: 16.0,
            top: 12.0,
            bottom: 24.0,
            y0,
            y1,
        }
    }

    fn x(&self, t: i64) -> f64 {
        let span = (self.t1 - self.t0).max(1) as f64;
        self.left + (t - self.t0) as f64 / span * (self.w - self.left - self.right)
    }
    fn y(&self, v: f64) -> f64 {
        let span = self.y1 - self.y0;
        self.top + (self.y1 - v) / span * (self.h - self.top - self.bottom)
    }
}

fn axis_dates(svg: &mut String, f: &Frame) {
    let _ = write!(
        svg,
        r##"<text x="{:.0}" y="{:.0}" class="ax">{}</text><text x="{:.0}" y="{:.0}" class="ax" text-anchor="end">{}</text>"##,
        f.left,
        f.h - 4.0,
        esc(&day(f.t0)),
        f.w - f.right,
        f.h - 4.0,
        esc(&day(f.t1))
    );
}

fn day(ms: i64) -> String {
    when(ms).chars().take(10).collect()
}

/// Both partners' ratings of one goal over time on the -2..+2 scale.
fn goal_chart(g: &GoalProgress, t0: i64, t1: i64) -> String {
    let f = Frame::chart(t0, t1, -2.4, 2.4);
    let mut svg = format!(
        r##"<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="Ratings of {} over time">"##,
        f.w,
        f.h,
        esc(&g.title)
    );
    for l in -2..=2 {
        let y = f.y(l as f64);
        let label = match l {
            -2 => "−2 much less",
            -1 => "−1 less",
            0 => "0 expected",
            1 => "+1 more",
            _ => "+2 much more",
        };
        let class = if l == 0 { "expected" } else { "grid" };
        let _ = write!(
            svg,
            r##"<line x1="{:.0}" y1="{y:.1}" x2="{:.0}" y2="{y:.1}" class="{class}"/><text x="{:.0}" y="{:.1}" class="ax" text-anchor="end">{label}</text>"##,
            f.left,
            f.w - f.right,
            f.left - 6.0,
            y + 4.0
        );
    }
    for (i, s) in g.partners.iter().enumerate() {
        if s.ratings.is_empty() {
            continue;
        }
        let colour = PALETTE[i % PALETTE.len()];
        let pts: Vec<String> = s
            .ratings
            .iter()
            .map(|p| format!("{:.1},{:.1}", f.x(p.at), f.y(p.level as f64)))
            .collect();
        let _ = write!(
            svg,
            r##"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"><title>{}</title></polyline>"##,
            pts.join(" "),
            esc(&s.name)
        );
        // Markers only while they stay readable (and the file small).
        if s.ratings.len() <= 120 {
            for p in &s.ratings {
                let _ = write!(
                    svg,
                    r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"##,
                    f.x(p.at),
                    f.y(p.level as f64)
                );
            }
        }
    }
    axis_dates(&mut svg, &f);
    svg.push_str("</svg>");
    svg
}

/// T-scores over time: each partner and together.
fn t_chart(p: &Progress, t0: i64, t1: i64, since: Option<i64>) -> String {
    let keep = |v: &Vec<TPoint>| -> Vec<TPoint> {
        v.iter()
            .filter(|x| since.is_none_or(|s| x.at >= s))
            .cloned()
            .collect()
    };
    let mut series: Vec<(String, &str, Vec<TPoint>)> = Vec::new();
    for (i, (id, name)) in p.people.iter().enumerate() {
        if let Some(v) = p.t_by_person.get(id) {
            series.push((name.clone(), PALETTE[i % PALETTE.len()], keep(v)));
        }
    }
    series.push(("together".into(), JOINT, keep(&p.t_joint)));
    let (lo, hi) = series
        .iter()
        .flat_map(|(_, _, v)| v.iter().map(|x| x.t))
        .fold((30.0f64, 70.0f64), |(lo, hi), t| (lo.min(t), hi.max(t)));
    let f = Frame::chart(t0, t1, lo - 2.0, hi + 2.0);
    let mut svg = format!(
        r##"<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="GAS T-score over time">"##,
        f.w, f.h
    );
    let mut t = (lo / 10.0).ceil() * 10.0;
    while t <= hi {
        let y = f.y(t);
        let class = if (t - 50.0).abs() < 1e-9 {
            "expected"
        } else {
            "grid"
        };
        let _ = write!(
            svg,
            r##"<line x1="{:.0}" y1="{y:.1}" x2="{:.0}" y2="{y:.1}" class="{class}"/><text x="{:.0}" y="{:.1}" class="ax" text-anchor="end">{t:.0}</text>"##,
            f.left,
            f.w - f.right,
            f.left - 6.0,
            y + 4.0
        );
        t += 10.0;
    }
    for (name, colour, v) in &series {
        if v.is_empty() {
            continue;
        }
        let pts: Vec<String> = v
            .iter()
            .map(|p| format!("{:.1},{:.1}", f.x(p.at), f.y(p.t)))
            .collect();
        let dash = if *colour == JOINT {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        let _ = write!(
            svg,
            r##"<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{}"><title>{}</title></polyline>"##,
            pts.join(" "),
            esc(name)
        );
    }
    axis_dates(&mut svg, &f);
    svg.push_str("</svg>");
    svg
}

fn legend(p: &Progress) -> String {
    let mut s = String::from(r#"<p class="legend">"#);
    for (i, name) in p.people.values().enumerate() {
        let _ = write!(
            s,
            r#"<span style="color:{}">&#9632;</span> {} &nbsp; "#,
            PALETTE[i % PALETTE.len()],
            esc(name)
        );
    }
    let _ = write!(
        s,
        r#"<span style="color:{JOINT}">&#9632;</span> together (T-score only)</p>"#
    );
    s
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:720px;margin:1rem auto;padding:0 1rem;color:#222;line-height:1.4}\
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}\
.chart{width:100%;height:auto;display:block}.grid{stroke:#e4e4e4}.expected{stroke:#888;stroke-dasharray:4 3}\
.ax{font-size:11px;fill:#666}.muted{color:#666}.legend{font-size:.9rem}\
table{border-collapse:collapse}td,th{padding:.2rem .6rem;text-align:left;border-bottom:1px solid #eee}\
blockquote{margin:.5rem 0;padding-left:.8rem;border-left:3px solid #ddd}\
@media print{h2{break-before:auto}.chart{break-inside:avoid}}";

/// Runs `duet report`.
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let mut dev = ctx.device()?;
    let view = dev.view(SpaceKind::Shared)?;
    let only = a
        .goal
        .as_deref()
        .map(|q| dev.resolve_goal(q))
        .transpose()?
        .map(|g| vec![g]);
    let mut p = progress(&view, only.as_deref());
    if let Some(s) = a.since {
        for g in &mut p.goals {
            for partner in &mut g.partners {
                partner.ratings.retain(|r| r.at >= s);
            }
        }
    }
    let mut reflections: Vec<(Reflection, bool)> =
        view.reflections.into_iter().map(|r| (r, false)).collect();
    if a.include_private {
        let personal = dev.view(SpaceKind::Personal)?;
        reflections.extend(
            personal
                .reflections
                .into_iter()
                .filter(|r| r.author == dev.me.person_id)
                .map(|r| (r, true)),
        );
    }
    reflections.retain(|(r, _)| {
        a.since.is_none_or(|s| r.at >= s)
            && only.as_ref().is_none_or(|g| r.goal.as_ref() == g.first())
    });
    reflections.sort_by_key(|(r, _)| std::cmp::Reverse(r.at));
    reflections.truncate(20);

    let times: Vec<i64> = p
        .goals
        .iter()
        .flat_map(|g| {
            g.partners
                .iter()
                .flat_map(|s| s.ratings.iter().map(|r| r.at))
        })
        .collect();
    let now = ctx.clock.now();
    let t0 = times.iter().min().copied().unwrap_or(now - 86_400_000);
    let t1 = times
        .iter()
        .max()
        .copied()
        .unwrap_or(now)
        .max(t0 + 86_400_000);

    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'"><title>Duet progress report</title><style>{STYLE}</style></head><body>"#
    );
    let names: Vec<String> = p.people.values().cloned().collect();
    let names: Vec<String> = names.iter().map(|n| esc(n)).collect();
    let _ = write!(html, "<h1>Progress report: {}</h1>", names.join(" &amp; "));
    let _ = write!(
        html,
        r#"<p class="muted">Made {} with duet. Each partner rates each goal separately on the Goal Attainment Scale: −2 much less than expected, 0 the expected outcome, +2 much more. A T-score of 50 means goals met as expected.</p>"#,
        esc(&when(now))
    );
    html.push_str(&legend(&p));
    html.push_str("<h2>GAS T-score over time</h2>");
    let mut summary = String::from("<table><tr><th>Who</th><th>T-score now</th></tr>");
    for (id, name) in &p.people {
        let t = p
            .current(id)
            .map(|t| format!("{t:.1}"))
            .unwrap_or_else(|| "–".into());
        let _ = write!(summary, "<tr><td>{}</td><td>{t}</td></tr>", esc(name));
    }
    let joint = p
        .current_joint()
        .map(|t| format!("{t:.1}"))
        .unwrap_or_else(|| "–".into());
    let _ = write!(
        summary,
        "<tr><td>together</td><td>{joint}</td></tr></table>"
    );
    html.push_str(&summary);
    html.push_str(&t_chart(&p, t0, t1, a.since));
    for g in &p.goals {
        let _ = write!(html, "<h2>{}</h2>", esc(&g.title));
        if !g.expected.is_empty() {
            let _ = write!(
                html,
                "<p><strong>Expected outcome:</strong> {}</p>",
                esc(&g.expected)
            );
        }
        let latest: Vec<String> = g
            .partners
            .iter()
            .map(|s| {
                format!(
                    "{}: {}",
                    esc(&s.name),
                    s.latest
                        .and_then(|l| duet_core::Level::try_from(l).ok())
                        .map(|l| l.to_string())
                        .unwrap_or_else(|| "not rated".into())
                )
            })
            .collect();
        let _ = write!(
            html,
            "<p>Latest — {}{}</p>",
            latest.join(" · "),
            g.gap
                .map(|d| if d == 0 {
                    " · in agreement".to_string()
                } else {
                    format!(" · {d} level(s) apart")
                })
                .unwrap_or_default()
        );
        html.push_str(&goal_chart(g, t0, t1));
    }
    html.push_str("<h2>Recent reflections</h2>");
    if reflections.is_empty() {
        html.push_str(r#"<p class="muted">None in this period.</p>"#);
    }
    for (r, private) in &reflections {
        let author = p
            .people
            .get(&r.author)
            .cloned()
            .unwrap_or_else(|| "someone".into());
        let _ = write!(
            html,
            r#"<blockquote><p>{}</p><p class="muted">{} · {}{}</p></blockquote>"#,
            esc(r.text.as_str()).replace('\n', "<br>"),
            esc(&author),
            esc(&when(r.at)),
            if *private { " · private" } else { "" }
        );
    }
    html.push_str("</body></html>\n");
    write_private(&a.html, html.as_bytes()).with_context(|| {
        format!(
            "cannot write the report to {}; choose a writable path",
            a.html.display()
        )
    })?;
    ctx.out.line(format!(
        "Wrote {} ({} goals, {} KB).",
        a.html.display(),
        p.goals.len(),
        html.len().div_ceil(1024)
    ))?;
    Ok(())
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
