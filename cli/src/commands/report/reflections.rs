//! The report's reflections, grouped by the goal they are about: each with its author,
//! date, prompt and text, a private one marked as such.

use duet_core::app::{ReflectionGroup, ReportReflection};
use maud::{Markup, html};

use crate::output::when;

/// Every group of reflections, or a line saying there are none.
pub fn reflections(groups: &[ReflectionGroup]) -> Markup {
    html! {
        section class="reflections" {
            h2 { "Reflections" }
            @if groups.is_empty() {
                p class="muted" { "None in this period." }
            }
            @for g in groups {
                div class="reflection-group" data-goal=(g.goal.as_deref().unwrap_or("")) {
                    h3 {
                        @match (&g.goal, &g.title) {
                            (Some(_), Some(title)) => { "About " (crate::bidi::bdi(title)) }
                            (Some(id), None) => {
                                "About a goal this device cannot read (" (duet_core::ids::short(id)) ")"
                            }
                            (None, _) => { "Not about a goal" }
                        }
                    }
                    @for r in &g.reflections {
                        (reflection(r))
                    }
                }
            }
        }
    }
}

/// One reflection, its lines kept. (Replies go inside its `article`.)
pub fn reflection(r: &ReportReflection) -> Markup {
    let author = r.author_name.as_deref().unwrap_or("someone");
    html! {
        article class=(if r.private { "reflection private" } else { "reflection" }) {
            p class="byline" {
                strong class="author" { (crate::bidi::bdi(author)) } " · " (when(r.at))
                @if r.private {
                    " · " span class="private-mark" { "Private: only on " (crate::bidi::bdi(author)) "'s devices" }
                }
            }
            @if let Some(prompt) = &r.prompt {
                p class="prompt" { em { (prompt) } }
            }
            blockquote {
                @for (i, line) in r.text.split('\n').enumerate() {
                    @if i > 0 { br; }
                    (line)
                }
            }
            @if r.edited_at.is_some() {
                p class="muted edited" { "(edited)" }
            }
            @if !r.replies.is_empty() {
                div class="replies" {
                    @for reply in &r.replies {
                        (reflection(reply))
                    }
                }
            }
        }
    }
}
