//! How each series of a chart is drawn, so that it is told apart without colour: a
//! report printed in black and white turned the partners' two colours into nearly the
//! same grey, with the same solid line and dots. Each partner has a colour, a line
//! (solid, dashed) and a marker shape (filled circle, hollow square); "together" is
//! dotted with diamonds. The legends draw the same sample beside each name.

use maud::{Markup, html};

/// The partners' colours, in people order.
pub const PALETTE: [&str; 4] = ["#1f6feb", "#d1495b", "#2a9d8f", "#8f5fd7"];
/// The colour of "together".
pub const JOINT: &str = "#444";

/// A marker's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// A filled circle.
    Circle,
    /// A hollow square.
    Square,
    /// A filled triangle.
    Triangle,
    /// A hollow circle.
    Ring,
    /// A filled diamond ("together").
    Diamond,
}

/// How one series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    /// Its colour.
    pub colour: &'static str,
    /// Its line's dash pattern (`stroke-dasharray`); none for a solid line.
    pub dash: Option<&'static str>,
    /// Its markers' shape.
    pub marker: Marker,
}

/// The style of the `i`th partner (in people order).
pub fn partner(i: usize) -> Style {
    const DASHES: [Option<&str>; 4] = [None, Some("8 4"), Some("12 3 3 3"), Some("3 3")];
    const MARKERS: [Marker; 4] = [
        Marker::Circle,
        Marker::Square,
        Marker::Triangle,
        Marker::Ring,
    ];
    Style {
        colour: PALETTE[i % PALETTE.len()],
        dash: DASHES[i % DASHES.len()],
        marker: MARKERS[i % MARKERS.len()],
    }
}

/// The style of "together".
pub const TOGETHER: Style = Style {
    colour: JOINT,
    dash: Some("2 3"),
    marker: Marker::Diamond,
};

/// A marker of `style` centred on (`x`, `y`), about `r` in radius.
pub fn marker(style: Style, x: f64, y: f64, r: f64) -> Markup {
    let c = style.colour;
    let (cx, cy) = (format!("{x:.1}"), format!("{y:.1}"));
    match style.marker {
        Marker::Circle => html! { circle cx=(cx) cy=(cy) r=(r) fill=(c) {} },
        Marker::Ring => html! {
            circle cx=(cx) cy=(cy) r=(r) fill="#fff" stroke=(c) stroke-width="1.5" {}
        },
        Marker::Square => html! {
            rect x=(format!("{:.1}", x - r)) y=(format!("{:.1}", y - r))
                width=(format!("{:.1}", 2.0 * r)) height=(format!("{:.1}", 2.0 * r))
                fill="#fff" stroke=(c) stroke-width="1.5" {}
        },
        Marker::Triangle => html! {
            polygon fill=(c) points=(format!(
                "{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}",
                x, y - 1.2 * r, x - 1.1 * r, y + 0.8 * r, x + 1.1 * r, y + 0.8 * r
            )) {}
        },
        Marker::Diamond => html! {
            polygon fill=(c) points=(format!(
                "{:.1},{:.1} {:.1},{:.1} {:.1},{:.1} {:.1},{:.1}",
                x, y - 1.3 * r, x + 1.3 * r, y, x, y + 1.3 * r, x - 1.3 * r, y
            )) {}
        },
    }
}

/// A series' line through `points` ("x,y x,y …"), named for a screen reader.
pub fn line(style: Style, points: &str, name: &str) -> Markup {
    html! {
        polyline fill="none" stroke=(style.colour) stroke-width="2"
            stroke-dasharray=[style.dash] points=(points) {
            @if !name.is_empty() { title { (name) } }
        }
    }
}

/// A legend's sample of `style`: a short stretch of its line with its marker on it.
pub fn key(style: Style) -> Markup {
    html! {
        svg width="28" height="12" viewBox="0 0 28 12" aria-hidden="true" class="key" {
            (line(style, "1,6 27,6", ""))
            (marker(style, 14.0, 6.0, 3.5))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_partners_and_together_differ_in_line_and_marker_not_colour_alone() {
        let all = [partner(0), partner(1), partner(2), partner(3), TOGETHER];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert!(a.dash != b.dash && a.marker != b.marker, "{a:?} {b:?}");
            }
        }
    }
}
