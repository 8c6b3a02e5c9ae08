//! The report's inline SVG charts: each partner's ratings of one goal, and the T-scores
//! over time. Drawn with maud like the page, so names and titles are escaped.
//!
//! Every shape is written with an end tag (`<line ...></line>`): inside `<svg>` the HTML
//! parser does not close a bare `<line ...>`, and what follows would end up inside it.

use duet_core::app::ReportData;
use duet_core::progress::{GoalProgress, TPoint};
use maud::{Markup, html};

use super::series_style::{self, Style, TOGETHER, key, line, marker};

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

    /// The time axis: a vertical grid line and a dated label at each tick.
    fn time_axis(&self) -> Markup {
        let (top, bottom) = (format!("{:.0}", self.top), self.h - self.bottom);
        let right = self.w - self.right;
        html! {
            g class="time-axis" {
                line x1=(format!("{:.0}", self.left)) y1=(format!("{bottom:.0}"))
                    x2=(format!("{right:.0}")) y2=(format!("{bottom:.0}")) class="axis" {}
                @for (t, label) in ticks(self.t0, self.t1) {
                    @let x = self.x(t);
                    // A label near the right edge ends at its tick instead of overflowing.
                    @let anchor = if x > right - 32.0 { "end" } else { "middle" };
                    line x1=(format!("{x:.1}")) y1=(top) x2=(format!("{x:.1}"))
                        y2=(format!("{bottom:.0}")) class="grid" {}
                    text x=(format!("{x:.1}")) y=(format!("{:.0}", self.h - 6.0)) class="ax tick"
                        text-anchor=(anchor) data-at=(t) { (label) }
                }
            }
        }
    }
}

/// How far apart the ticks of a time axis are.
#[derive(Clone, Copy)]
enum Every {
    Days(i64),
    Months(i32),
}

/// The spacings tried, finest first; the first that gives few enough ticks is used.
const EVERY: [Every; 11] = [
    Every::Days(1),
    Every::Days(2),
    Every::Days(7),
    Every::Days(14),
    Every::Months(1),
    Every::Months(2),
    Every::Months(3),
    Every::Months(6),
    Every::Months(12),
    Every::Months(24),
    Every::Months(60),
];

/// The most ticks an axis gets (their labels must not overlap).
const MAX_TICKS: i64 = 6;

/// The ticks between `t0` and `t1` (local midnights, or first days of months), each with
/// its label; for a span longer than the coarsest spacing allows, its two ends.
fn ticks(t0: i64, t1: i64) -> Vec<(i64, String)> {
    let days = (t1 - t0) / 86_400_000;
    let fits = |every: &Every| match *every {
        Every::Days(n) => days / n < MAX_TICKS,
        Every::Months(n) => days / (31 * i64::from(n)) < MAX_TICKS - 1,
    };
    let Some(every) = EVERY.into_iter().find(fits) else {
        return vec![(t0, year(t0)), (t1, year(t1))];
    };
    let (Some(start), Some(end)) = (local(t0), local(t1)) else {
        return Vec::new();
    };
    let start = start.date_naive();
    let mut out = Vec::new();
    match every {
        Every::Days(n) => {
            let days = std::iter::successors(Some(start), |d| {
                d.checked_add_days(chrono::Days::new(n as u64))
            });
            for d in days.take_while(|d| *d <= end.date_naive()) {
                out.extend(
                    midnight(d)
                        .filter(|t| (t0..=t1).contains(t))
                        .map(|t| (t, d.format("%Y-%m-%d").to_string())),
                );
            }
        }
        Every::Months(n) => {
            use chrono::Datelike as _;
            let first = start.year() * 12 + start.month0() as i32;
            let first = first + (n - first.rem_euclid(n)) % n;
            for m in (first..).step_by(n as usize).take(MAX_TICKS as usize + 2) {
                let Some(d) = chrono::NaiveDate::from_ymd_opt(
                    m.div_euclid(12),
                    m.rem_euclid(12) as u32 + 1,
                    1,
                ) else {
                    break;
                };
                let label = d.format(if n < 12 { "%b %Y" } else { "%Y" }).to_string();
                out.extend(
                    midnight(d)
                        .filter(|t| (t0..=t1).contains(t))
                        .map(|t| (t, label.clone())),
                );
            }
        }
    }
    out
}

/// A moment in the local time zone.
fn local(ms: i64) -> Option<chrono::DateTime<chrono::Local>> {
    use chrono::TimeZone as _;
    chrono::Local.timestamp_millis_opt(ms).single()
}

/// The local midnight starting a day (none when a clock change skips it).
fn midnight(d: chrono::NaiveDate) -> Option<i64> {
    use chrono::TimeZone as _;
    let t = chrono::Local.from_local_datetime(&d.and_hms_opt(0, 0, 0)?);
    t.earliest().map(|t| t.timestamp_millis())
}

/// The year of a moment, as a label.
fn year(ms: i64) -> String {
    local(ms).map_or_else(String::new, |t| t.format("%Y").to_string())
}

/// Whose line is whose in [`goal_chart`], for a page that shows the chart without the
/// report's legend (the app's goal page): names, not colour alone.
pub fn goal_legend(g: &GoalProgress) -> Markup {
    html! {
        p class="legend" {
            @for (i, s) in g.partners.iter().enumerate().filter(|(_, s)| !s.ratings.is_empty()) {
                // Drawn, not styled: the app's pages allow no inline style.
                (key(series_style::partner(i)))
                " " (crate::bidi::bdi(&s.name)) " \u{a0} "
            }
        }
    }
}

/// The span a chart of ratings made between `t0` and `t1` shows: from the local midnight
/// that starts the first rating's day, and at least that whole day, so that ratings of
/// one day sit over that day's date (not before the next day's midnight).
pub fn day_span(t0: i64, t1: i64) -> (i64, i64) {
    let start = local(t0)
        .and_then(|t| midnight(t.date_naive()))
        .filter(|m| *m <= t0)
        .unwrap_or(t0);
    (start, t1.max(start + 86_400_000))
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
            (f.time_axis())
            @for (i, s) in g.partners.iter().enumerate().filter(|(_, s)| !s.ratings.is_empty()) {
                @let style = series_style::partner(i);
                @let pts: Vec<String> = s.ratings.iter()
                    .map(|p| format!("{:.1},{:.1}", f.x(p.at), f.y(p.level as f64)))
                    .collect();
                (line(style, &pts.join(" "), &s.name))
                // Markers only while they stay readable (and the file small).
                @if s.ratings.len() <= 120 {
                    @for p in &s.ratings {
                        (marker(style, f.x(p.at), f.y(p.level as f64), 3.0))
                    }
                }
            }
        }
    }
}

/// T-scores over time: each partner and together.
pub fn t_chart(d: &ReportData, t0: i64, t1: i64) -> Markup {
    let mut series: Vec<(&str, Style, &[TPoint])> = Vec::new();
    for (i, (id, name)) in d.progress.people.iter().enumerate() {
        if let Some(v) = d.t_by_person.get(id) {
            series.push((name, series_style::partner(i), v));
        }
    }
    series.push(("together", TOGETHER, &d.t_joint));
    let (lo, hi) = series
        .iter()
        .flat_map(|(_, _, v)| v.iter().map(|x| x.t))
        .fold((30.0f64, 70.0f64), |(lo, hi), t| (lo.min(t), hi.max(t)));
    let f = Frame::chart(t0, t1, lo - 2.0, hi + 2.0);
    let steps = std::iter::successors(Some((lo / 10.0).ceil() * 10.0), |t| Some(t + 10.0))
        .take_while(|t| *t <= hi);
    html! {
        svg class="chart" viewBox=(f.view_box()) role="img" aria-label="GAS T-score over time" {
            @for t in steps {
                @let class = if (t - 50.0).abs() < 1e-9 { "expected" } else { "grid" };
                (f.grid(t, class, &format!("{t:.0}")))
            }
            (f.time_axis())
            @for (name, style, v) in series.iter().filter(|(_, _, v)| !v.is_empty()) {
                @let pts: Vec<String> = v.iter()
                    .map(|p| format!("{:.1},{:.1}", f.x(p.at), f.y(p.t)))
                    .collect();
                (line(*style, &pts.join(" "), name))
                // Markers while they stay readable: a lone score is a dot, not nothing.
                @if v.len() <= 120 {
                    @for p in v.iter() {
                        (marker(*style, f.x(p.at), f.y(p.t), 2.5))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_TICKS, day_span, local, ticks};

    const DAY: i64 = 86_400_000;
    const T: i64 = 1_700_000_000_000;

    #[test]
    fn every_span_gets_a_few_dated_ticks() {
        assert_eq!(ticks(T, T + DAY).len(), 1, "one midnight in a day");
        let week = ticks(T, T + 7 * DAY);
        assert!(
            week.iter()
                .all(|(_, l)| l.len() == 10 && l.starts_with("2023-11-"))
        );
        let two_years = ticks(T, T + 730 * DAY);
        assert!(
            (3..=MAX_TICKS as usize).contains(&two_years.len()),
            "{two_years:?}"
        );
        assert!(
            two_years
                .iter()
                .all(|(t, l)| (T..=T + 730 * DAY).contains(t) && l.len() == 8)
        );
        // Times as far apart as the model allows: the two ends, no endless loop.
        let far = ticks(0, 253_402_300_799_000);
        assert_eq!(far.len(), 2, "{far:?}");
    }

    #[test]
    fn ratings_of_one_day_are_charted_over_that_days_date() {
        let (t0, t1) = day_span(T, T + 3_600_000);
        assert!(t0 <= T && t1 >= T + 3_600_000, "{t0} {t1}");
        let day = local(T)
            .expect("a local time")
            .format("%Y-%m-%d")
            .to_string();
        assert_eq!(ticks(t0, t1).first().map(|(_, l)| l.clone()), Some(day));
    }
}
