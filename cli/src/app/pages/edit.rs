//! Corrections and edits in the app: a goal's details and level texts, its status,
//! correcting one's own rating (as `duet rate --amend`), editing one's own reflection and
//! undoing one's latest change (as `duet undo`). Each form calls the same operation as
//! the command line; none erases history.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::{Path, State};
use duet_core::Level;
use duet_core::app::{GoalChanges, GoalDetail, GoalRecord, Owner};
use duet_core::model::Goal;
use duet_core::vocab::Status;
use maud::{Markup, html};
use serde::Deserialize;

use super::came_from::CameFrom;
use super::layout::{csrf, level, level_name};
use crate::app::server::PageQuery;
use crate::app::server::{App, PageResult, see_other};
use crate::commands::undo;

/// The goal page's forms: edit the details and level texts (and whose it is), set the
/// status, correct one's latest rating (`latest`, its id, sent with the correction so
/// that a rating made since is not the one corrected). Folded away (`details`) so
/// the page reads first. `me` is this device's person id, `people` the names people are
/// shown by.
pub fn goal_forms(
    g: &GoalRecord,
    token: &str,
    me: &str,
    people: &BTreeMap<String, String>,
    latest: Option<&str>,
) -> Markup {
    let text = |l: i64| g.levels.get(&l.to_string()).cloned().unwrap_or_default();
    html! {
        section aria-labelledby="change" class="change" {
            h2 id="change" { "Change or correct" }
            details {
                summary { "Edit the goal and its level texts" }
                form method="post" action=(format!("/goals/{}/edit", g.id)) {
                    (csrf(token))
                    label for="edit-title" { "Title" }
                    // No maxlength: a title written elsewhere may be longer, and a
                    // browser would then refuse to send the form at all.
                    input id="edit-title" name="title" required value=(g.title);
                    (was("title", &one_line(&g.title)))
                    label for="edit-why" { "Why it matters" }
                    textarea id="edit-why" name="why" rows="2" { (g.why) }
                    (was("why", &g.why))
                    (super::layout::area_choice("edit-area", &g.area))
                    (was("area", &g.area))
                    @for l in (-2i64..=2).rev() {
                        @let id = format!("edit-level{l}");
                        label for=(id) { "Level " (level(l)) " (" (level_name(l)) ")" }
                        input id=(id) name=(format!("level{l}")) value=(text(l));
                        (was(&format!("level{l}"), &one_line(&text(l))))
                    }
                    (owner_choice(g, me, people))
                    button type="submit" { "Save the changes" }
                }
            }
            form method="post" action=(format!("/goals/{}/status", g.id)) class="status-form" {
                (csrf(token))
                label for="goal-status" { "Status" }
                select id="goal-status" name="status" {
                    @for s in Status::ALL {
                        option value=(s.as_str()) selected[s.as_str() == g.status] { (s.as_str()) }
                    }
                }
                button type="submit" { "Set the status" }
            }
            @if let Some(latest) = latest { details {
                summary { "Correct my latest rating of this goal" }
                form method="post" action=(format!("/goals/{}/amend", g.id)) {
                    (csrf(token))
                    input type="hidden" name="corrects" value=(latest);
                    fieldset {
                        legend { "The level it should have been" }
                        @for l in (-2i64..=2).rev() {
                            @let id = format!("amend{l}");
                            div class="check" {
                                input type="radio" id=(id) name="level" value=(l) required;
                                label for=(id) { (level(l)) " " (level_name(l)) }
                            }
                        }
                    }
                    label for="amend-note" { "A note (optional; your partner reads it with the correction)" }
                    textarea id="amend-note" name="note" rows="2" {}
                    button type="submit" { "Correct the rating" }
                }
            } }
        }
    }
}

/// Whose the goal is: both of ours or my own, as a choice; a goal of the partner's own
/// is theirs to change, and says so.
fn owner_choice(g: &GoalRecord, me: &str, people: &BTreeMap<String, String>) -> Markup {
    html! {
        @if g.owner == "shared" || g.owner == me {
            (was("owner", if g.owner == me { "me" } else { "shared" }))
            fieldset {
                legend { "Whose goal" }
                div class="check" {
                    input type="radio" id="owner-shared" name="owner" value="shared" checked[g.owner != me];
                    label for="owner-shared" { "Both of ours" }
                }
                div class="check" {
                    input type="radio" id="owner-me" name="owner" value="me" checked[g.owner == me];
                    label for="owner-me" { "My own (about me; we both still see and rate it)" }
                }
            }
        } @else {
            p class="muted" { (crate::output::name_of(people, &g.owner)) "'s own goal: only they can make it a goal of you both." }
        }
    }
}

/// What a one-line field shows of `text`: a browser strips line breaks from an input's
/// value, so its `was-` value is compared without them too.
fn one_line(text: &str) -> String {
    text.chars().filter(|c| !matches!(c, '\n' | '\r')).collect()
}

/// What a field of a form showed when the page was made (`was-NAME`), sent back with it.
pub fn was(name: &str, value: &str) -> Markup {
    html! { input type="hidden" name=(format!("was-{name}")) value=(value); }
}

/// A form's field as the user left it, if they changed it: a field sent with what the
/// page showed (`was-NAME`) and unchanged is not written, so that a page left open does
/// not write back over what the partner (or another window) changed meanwhile; a field
/// sent without it is written as given.
pub fn changed<'a>(form: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    let now = form.get(name)?.trim();
    match form.get(&format!("was-{name}")) {
        Some(was) if was.trim() == now => None,
        _ => Some(now),
    }
}

/// `POST /goals/{id}/edit`: as `duet goal edit`, with the fields the user changed.
pub async fn edit_goal(
    State(app): State<App>,
    Path(id): Path<String>,
    Form(f): Form<BTreeMap<String, String>>,
) -> PageResult {
    let levels = (-2i8..=2)
        .filter_map(|l| Some((l, changed(&f, &format!("level{l}"))?.to_string())))
        .collect();
    let owner = changed(&f, "owner")
        .map(str::parse::<Owner>)
        .transpose()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let area = changed(&f, "area")
        .map(str::parse::<duet_core::vocab::Area>)
        .transpose()
        .map_err(|_| anyhow::anyhow!("pick one of the areas offered"))?;
    let changes = GoalChanges {
        area,
        title: changed(&f, "title")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        why: changed(&f, "why").map(str::to_string),
        levels,
        owner,
        ..GoalChanges::default()
    };
    let goal = id.clone();
    // Compared and written under the home's lock: an edit committed while this form
    // waited its turn is compared too.
    app.with_device(move |dev| {
        dev.exclusively(|dev| {
            if let GoalDetail::Found { goal: now, .. } = dev.goal_detail(&goal, Some(0))? {
                refuse_overwrite(&f, &now)?;
            }
            Ok(dev.edit_goal(&goal, changes)?)
        })
    })
    .await?;
    Ok(super::devices::told(
        &app,
        &format!("/goals/{id}"),
        "The goal is saved.",
    ))
}

/// Refuses an edit of a text the partner (or another window) changed since the page
/// was shown, when this form changed it too: the last one saved would silently drop the
/// other's words. The page says what it reads now and what this form had, so nothing
/// typed is lost.
fn refuse_overwrite(f: &BTreeMap<String, String>, now: &Goal) -> anyhow::Result<()> {
    // (name, what it is, what it reads now, what its field showed of that)
    let fields = [
        (
            "title",
            "title",
            now.title.as_str(),
            one_line(now.title.as_str()),
        ),
        ("why", "why", now.why.as_str(), now.why.as_str().to_string()),
    ]
    .into_iter()
    .chain((-2i8..=2).map(|l| {
        let text = now.levels.get(l).map_or("", |t| t.as_str());
        (
            LEVEL_FIELDS[(l + 2) as usize],
            "level text",
            text,
            one_line(text),
        )
    }));
    for (name, what, current, shown) in fields {
        let (Some(mine), Some(was)) = (changed(f, name), f.get(&format!("was-{name}"))) else {
            continue;
        };
        if changed_meanwhile(was, &shown, mine) {
            anyhow::bail!(
                "the {what} was changed meanwhile (by your partner, or in another window): it \
                 now reads \"{}\"; yours, \"{mine}\", was not saved. Open the goal again and \
                 make your change to what it reads now",
                current.trim()
            );
        }
    }
    Ok(())
}

/// Whether a text a form changed to `mine`, shown as `was`, now reads `now` that is
/// neither: changed meanwhile elsewhere too, so saving would drop the other's words.
pub fn changed_meanwhile(was: &str, now: &str, mine: &str) -> bool {
    was.trim() != now.trim() && mine.trim() != now.trim()
}

/// The form names of the five level texts, -2 first.
const LEVEL_FIELDS: [&str; 5] = ["level-2", "level-1", "level0", "level1", "level2"];

/// The status form.
#[derive(Deserialize)]
pub struct StatusForm {
    status: String,
}

/// `POST /goals/{id}/status`: as `duet goal status`.
pub async fn set_status(
    State(app): State<App>,
    Path(id): Path<String>,
    Form(f): Form<StatusForm>,
) -> PageResult {
    let status: Status = f
        .status
        .parse()
        .map_err(|_| anyhow::anyhow!("pick one of the statuses offered"))?;
    let goal = id.clone();
    let (_, changed) = app
        .with_device(move |dev| Ok(dev.set_goal_status(&goal, status)?))
        .await?;
    let said = if changed {
        format!("The goal is {} now.", status.as_str())
    } else {
        format!("The goal was {} already: nothing changed.", status.as_str())
    };
    Ok(super::devices::told(&app, &format!("/goals/{id}"), said))
}

/// The correction of a rating.
#[derive(Deserialize)]
pub struct AmendForm {
    level: String,
    #[serde(default)]
    note: String,
    /// The rating the page showed as the latest (sent since 2026-12-06).
    corrects: Option<String>,
}

/// `POST /goals/{id}/amend`: as `duet rate GOAL LEVEL --amend`.
pub async fn amend(
    State(app): State<App>,
    Path(id): Path<String>,
    Form(f): Form<AmendForm>,
) -> PageResult {
    let level: Level = f
        .level
        .parse()
        .map_err(|e| anyhow::anyhow!("{e}; pick one of the five levels"))?;
    let note = Some(f.note.trim().to_string()).filter(|n| !n.is_empty());
    let goal = id.clone();
    let shown = f.corrects.filter(|c| !c.is_empty());
    app.with_device(move |dev| {
        Ok(dev.amend_shown_rating(&goal, level, note.as_deref(), shown.as_deref())?)
    })
    .await?;
    let said = format!("Your rating is corrected to {}.", f.level.trim());
    Ok(super::devices::told(&app, &format!("/goals/{id}"), said))
}

/// The edit form of one's own reflection (shown with it).
pub fn reflection_form(id: &str, text: &str, token: &str, from: &CameFrom) -> Markup {
    html! {
        details class="edit" {
            summary { "Edit" span class="visually-hidden" { " the reflection “" (super::reflections::first_words(text)) "”" } }
            form method="post" action=(from.action(&format!("/reflections/{id}/edit"))) {
                (csrf(token))
                @let field = format!("edit-{id}");
                label for=(field) { "The reflection, corrected" }
                textarea id=(field) name="text" rows="3" required { (text) }
                (was("text", text))
                button type="submit" { "Save the edit" }
            }
        }
    }
}

/// A reflection's new text.
#[derive(Deserialize)]
pub struct TextForm {
    text: String,
    /// What the page showed (sent by the page since 2026-12-03).
    #[serde(rename = "was-text")]
    was: Option<String>,
}

/// `POST /reflections/{id}/edit`: as `duet reflect --edit`; only the author's own.
pub async fn edit_reflection(
    State(app): State<App>,
    Path(id): Path<String>,
    PageQuery(from): PageQuery<CameFrom>,
    Form(f): Form<TextForm>,
) -> PageResult {
    if f.text.trim().is_empty() {
        return Err(
            anyhow::anyhow!("the reflection is empty; write something, or withdraw it").into(),
        );
    }
    app.with_device(move |dev| {
        dev.exclusively(|dev| {
            // Edited elsewhere since the page was shown (another window, the command
            // line, another device): saving would silently drop that edit.
            let now = dev.reflection_texts()?.remove(&id);
            if let (Some(was), Some(now)) = (&f.was, &now)
                && changed_meanwhile(was, now, &f.text)
            {
                anyhow::bail!(
                    "the reflection was edited meanwhile (in another window or on another device): \
                 it now reads \"{}\"; yours, \"{}\", was not saved. Open the reflections \
                 again and make your change to what it reads now",
                    now.trim(),
                    f.text.trim()
                );
            }
            Ok(dev.edit_reflection(&id, false, f.text.trim())?)
        })
    })
    .await?;
    Ok(super::devices::told(
        &app,
        &from.page(),
        "The edit is saved.",
    ))
}

/// The undo form (on the history page), naming what it takes back: the act the latest
/// when the page was made, which is all the form undoes.
pub fn undo_form(token: &str, undone: &duet_core::app::Undone, id: &str) -> Markup {
    html! {
        form method="post" action="/undo" class="undo" {
            (csrf(token))
            input type="hidden" name="expect" value=(id);
            button type="submit" { "Undo " (set_apart(&undo::named(undone, undo::Words::Page), undone)) }
            p class="muted" { "Your latest rating, reflection, edit of a reflection or step completion. Nothing is erased: the history keeps both the act and what undid it (a withdrawal, the words before an edit, a reopened step)." }
        }
    }
}

/// `undo`'s words with the people's texts in them set apart ([`crate::bidi::bdi`]).
pub fn set_apart(said: &str, undone: &duet_core::app::Undone) -> Markup {
    let texts = undo::texts(undone);
    let pieces: Vec<&str> = texts.iter().map(String::as_str).collect();
    crate::bidi::isolated_in(said, &pieces)
}

/// The undo form: the id of the act its page named.
#[derive(Deserialize)]
pub struct UndoForm {
    #[serde(default)]
    expect: String,
}

/// `POST /undo`: as `duet undo`, if the latest act is still the one the page named;
/// back to the history, which says what was undone.
pub async fn undo(State(app): State<App>, Form(f): Form<UndoForm>) -> PageResult {
    let undone = app
        .with_device(move |dev| Ok(dev.undo_expecting(Some(&f.expect))?))
        .await?;
    let said = undo::said(&undone, undo::Words::Page);
    let made = super::devices::Made::NoticeApart(said, undo::texts(&undone));
    let token = super::devices::remember(&app, made);
    Ok(see_other(&format!("/history?shown={token}")))
}
