//! The frame of every page: the navigation, the status line, the main content (which the
//! script reloads when the store changes) and the style sheet and script from the binary.

use maud::{DOCTYPE, Markup, html};

use crate::app::live::LiveState;
use crate::app::security::{CSRF_FIELD, ONCE_FIELD};
use crate::output::when;

/// Which page is shown (marked in the navigation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Today,
    Checkin,
    Reflections,
    History,
    Report,
    Devices,
    /// A page not in the navigation (a goal).
    None,
}

const LINKS: &[(Nav, &str, &str)] = &[
    (Nav::Today, "/", "Today"),
    (Nav::Checkin, "/checkin", "Check-in"),
    (Nav::Reflections, "/reflections", "Reflections"),
    (Nav::History, "/history", "History"),
    (Nav::Report, "/report", "Report"),
    (Nav::Devices, "/devices", "Partner and devices"),
];

/// A whole page (bidirectional controls in its text shown, not obeyed: `crate::bidi`).
pub fn page(title: &str, nav: Nav, status: Option<&LiveState>, main: Markup) -> Markup {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                title { (title) " · Duet" }
                // No icon: a browser would ask for /favicon.ico outside the app's path.
                link rel="icon" href="data:,";
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to the page" }
                header {
                    p class="brand" { "Duet" }
                    nav aria-label="Pages" {
                        ul {
                            @for (n, href, label) in LINKS {
                                li {
                                    @if *n == nav {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(s) = status { (status_line(s)) }
                // Said by the script when the page is read again, or when a change
                // waits for what is being typed (outside what a reload replaces).
                p id="updates" class="updates" role="status" aria-live="polite" {}
                main id="main" tabindex="-1" { (main) }
            }
        }
    };
    maud::PreEscaped(crate::bidi::shown(page.into_string()))
}

/// Relay, last sync, pending changes and warnings, in plain words.
fn status_line(s: &LiveState) -> Markup {
    let relay = match (s.has_relay, s.reachable) {
        (None, _) => "Opening this device…",
        (Some(false), _) if s.syncs_none => {
            "Not syncing: this device is no longer in a space it can sync"
        }
        (Some(false), _) => "No relay set: everything stays on this device",
        (Some(true), None) => "Connecting to the relay…",
        (Some(true), Some(true)) => "Relay reachable",
        (Some(true), Some(false)) => "Relay not reachable right now",
    };
    html! {
        section class="status" aria-label="Sync status" id="status" {
            span { (relay) }
            @if let Some(t) = s.last_sync {
                span { " · last sync " (when(t)) }
            }
            @if s.has_relay == Some(true) && s.pending > 0 {
                span { " · " (duet_core::words::count(s.pending as usize, "change", "changes")) " not sent yet" }
            }
            @if let Some(p) = &s.problem {
                p class="warning" { (p) }
            }
            @for w in &s.warnings {
                p class="warning" { (w) }
            }
            @if s.unverified {
                p class="warning" { "a device in your shared space is not verified yet: compare the safety code in person (" (crate::app::advice::DEVICES_PAGE) ")" }
            }
            @for (at, w) in &s.said {
                p class="warning" { "At " (when(*at)) ", a sync said: " (w) }
            }
        }
    }
}

/// The hidden fields of every form: the CSRF token, and a fresh value that makes the
/// form count once (`crate::app::once`). The `once` value is a text field kept out of
/// sight, not a hidden one: a browser fills a page's changed text fields back in when
/// Back shows it again, and the page's script marks this one changed (`app.js`,
/// `keepOnce`), so that a form sent again unchanged after Back is the same form.
pub fn csrf(token: &str) -> Markup {
    html! {
        input type="hidden" name=(CSRF_FIELD) value=(token);
        input type="text" name=(ONCE_FIELD) value=(crate::app::once::fresh()) hidden tabindex="-1" aria-hidden="true";
    }
}

/// A calm page for a failure, saying what to do.
pub fn problem(text: &str) -> Markup {
    problem_kept(text, &[], None)
}

/// A refused form's problem with what was typed into it (if anything), to copy and
/// send again from the page it came from (`back`).
pub fn problem_kept(text: &str, typed: &[(&str, String)], back: Option<&str>) -> Markup {
    kept_page(text, typed, Some(back))
}

/// A form of another run of Duet refused (see `security::STARTED_AGAIN`), with what was
/// typed: no link back (this run's pages refuse that page's forms, and its links lead
/// to the same refusal without this run's key).
pub fn stale_kept(text: &str, typed: &[(&str, String)]) -> Markup {
    kept_page(text, typed, None)
}

/// A refusal with what was typed; `back`: the links on (`None`: no links).
fn kept_page(text: &str, typed: &[(&str, String)], back: Option<Option<&str>>) -> Markup {
    page(
        "Something needs attention",
        Nav::None,
        None,
        html! {
            // The answer to a form (its address may also be a page's): the script never
            // reads the address again in its place, which would wipe the refusal.
            h1 data-form-answer { "Something needs attention" }
            p class="problem" role="alert" data-result { (text) }
            @if !typed.is_empty() {
                h2 { "What you wrote" }
                @if back.is_some() {
                    p { "Nothing was saved. Your words are kept below: copy them, go back and send them again." }
                } @else {
                    p { "Nothing was saved. Your words are kept below: copy them, and send them from Duet's window." }
                }
            }
            @for (i, (label, value)) in typed.iter().enumerate() {
                label for=(format!("kept-{i}")) { (label) }
                textarea id=(format!("kept-{i}")) readonly rows="4" { (value) }
            }
            @match back {
                Some(Some(back)) => p { a href=(back) { "Back to the page" } " · " a href="/" { "Today" } },
                Some(None) => p { a href="/" { "Back to Today" } },
                None => {}
            }
        },
    )
}

/// A button that copies the text of the element `id` (a code), with the place that says
/// whether it did; hidden until the page's script shows it.
pub fn copy_button(id: &str) -> Markup {
    html! {
        button type="button" class="copy" data-copy=(id) hidden { "Copy the code" }
        " "
        span class="muted" role="status" id=(format!("{id}-copied")) {}
    }
}

/// A level as people read it: "+1", "0", "−2".
pub fn level(l: i64) -> String {
    match l {
        l if l > 0 => format!("+{l}"),
        l if l < 0 => format!("−{}", -l),
        _ => "0".into(),
    }
}

/// What each level means on the GAS scale, in the words every view uses (History said
/// "expected outcome" where Today said "as expected").
pub fn level_name(l: i64) -> &'static str {
    duet_core::Level::try_from(l).map_or("much less than expected", |l| l.meaning())
}

/// An area in words ("emotional-support" is "Emotional support").
pub use crate::output::area_name;

/// A choice of the relationship's areas, `selected` chosen (a goal's area, or "other").
pub fn area_choice(id: &str, selected: &str) -> Markup {
    html! {
        label for=(id) { "Area" }
        select id=(id) name="area" {
            @for a in duet_core::vocab::Area::ALL {
                option value=(a.as_str()) selected[a.as_str() == selected] { (area_name(a.as_str())) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// The app's words for a level are the history's (and the command line's): one
    /// rating read "as expected" on Today and "expected outcome" in History.
    #[test]
    fn every_level_is_named_as_the_history_names_it() {
        for l in -2..=2 {
            let level = duet_core::Level::try_from(l).expect("a level");
            assert_eq!(super::level_name(l), level.meaning());
        }
    }
}
