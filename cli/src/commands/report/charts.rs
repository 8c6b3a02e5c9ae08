//! The report's inline SVG charts: each partner's ratings of one goal, and the T-scores
//! over time. Drawn with maud like the page, so names and titles are escaped.
//!
//! Every shape is written with an end tag (`<line ...></line>`): inside `<svg>` the HTML
//! parser does not close a bare `<line ...>`, and what follows would end up inside it.

use duet_core::app::ReportData;
use duet_core::progress::{GoalProgress, TPoint};
use maud::{Markup, html};

use crate::output::when;

/// The partners' colours, in people order.
pub const PALETTE: [&str; 4] = ["#1f6feb", "#d1495b", "#2a9d8f", "#8f5fd7"];
/// The colour of "together".
pub const JOINT: &str = "#444";

/// A chart's size, margins and scales.
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

    fn view_box(&self) -> String {
        format!("0 0 {} {}", self.w, self.h)
    }

    /// A horizontal grid line at `v` with its label on the left.
    fn grid(&self, v: f64, class: &str, label: &str) -> Markup {
        let y = format!("{:.1}", self.y(v));
        html! {
            line x1=(format!("{:.0}", self.left)) y1=(y) x2=(format!("{:.0}", self.w - self.right))
                y2=(y) class=(class) {}
            text x=(format!("{:.0}", self.left - 6.0)) y=(format!("{:.1}", self.y(v) + 4.0))
                class="ax" text-anchor="end" { (label) }
        }
    }

    /// The first and the last day under the time axis.
    fn axis_dates(&self) -> Markup {
        let y = format!("{:.0}", self.h - 4.0);
        html! {
            text x=(format!("{:.0}", self.left)) y=(y) class="ax" { (day(self.t0)) }
            text x=(format!("{:.0}", self.w - self.right)) y=(y) class="ax" text-anchor="end" {
                (day(self.t1))
            }
        }
    }
}

fn day(ms: i64) -> String {
    when(ms).chars().take(10).collect()
}

/// Both partners' ratings of one goal over time on the -2..+2 scale.
pub fn goal_chart(g: &GoalProgress, t0: i64, t1: i64) -> Markup {
    let f = Frame::chart(t0, t1, -2.4, 2.4);
    let levels = [
        (-2, "−2 much less"),
        (-1, "−1 less"),
        (0, "0 expected"),
        (1, "+1 more"),
        (2, "+2 much more"),
    ];
    html! {
        svg class="chart" viewBox=(f.view_box()) role="img"
            aria-label=(format!("Ratings of {} over time", g.title)) {
            @for (l, label) in levels {
                (f.grid(l as f64, if l == 0 { "expected" } else { "grid" }, label))
            }
            @for (i, s) in g.partners.iter().enumerate().filter(|(_, s)| !s.ratings.is_empty()) {
                @let colour = PALETTE[i % PALETTE.len()];
                @let pts: Vec<String> = s.ratings.iter()
                    .map(|p| format!("{:.1},{:.1}", f.x(p.at), f.y(p.level as f64)))
                    .collect();
                polyline fill="none" stroke=(colour) stroke-width="2" points=(pts.join(" ")) {
                    title { (s.name) }
                }
                // Markers only while they stay readable (and the file small).
                @if s.ratings.len() <= 120 {
                    @for p in &s.ratings {
                        circle cx=(format!("{:.1}", f.x(p.at)))
                            cy=(format!("{:.1}", f.y(p.level as f64))) r="3" fill=(colour) {}
                    }
                }
            }
            (f.axis_dates())
        }
    }
}

/// T-scores over time: each partner and together.
pub fn t_chart(d: &ReportData) -> Markup {
    let mut series: Vec<(&str, &str, &[TPoint])> = Vec::new();
    for (i, (id, name)) in d.progress.people.iter().enumerate() {
        if let Some(v) = d.t_by_person.get(id) {
            series.push((name, PALETTE[i % PALETTE.len()], v));
        }
    }
    series.push(("together", JOINT, &d.t_joint));
    let (lo, hi) = series
        .iter()
        .flat_map(|(_, _, v)| v.iter().map(|x| x.t))
        .fold((30.0f64, 70.0f64), |(lo, hi), t| (lo.min(t), hi.max(t)));
    let f = Frame::chart(d.t0, d.t1, lo - 2.0, hi + 2.0);
    let steps = std::iter::successors(Some((lo / 10.0).ceil() * 10.0), |t| Some(t + 10.0))
        .take_while(|t| *t <= hi);
    html! {
        svg class="chart" viewBox=(f.view_box()) role="img" aria-label="GAS T-score over time" {
            @for t in steps {
                @let class = if (t - 50.0).abs() < 1e-9 { "expected" } else { "grid" };
                (f.grid(t, class, &format!("{t:.0}")))
            }
            @for (name, colour, v) in series.iter().filter(|(_, _, v)| !v.is_empty()) {
                @let pts: Vec<String> = v.iter()
                    .map(|p| format!("{:.1},{:.1}", f.x(p.at), f.y(p.t)))
                    .collect();
                @let dash = (*colour == JOINT).then_some("5 3");
                polyline fill="none" stroke=(colour) stroke-width="2" stroke-dasharray=[dash]
                    points=(pts.join(" ")) {
                    title { (name) }
                }
            }
            (f.axis_dates())
        }
    }
}
