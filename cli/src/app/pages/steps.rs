//! A goal's steps in the app: the list (who each is for, who did it), and the forms to
//! add one for someone, mark one done, reopen it, correct its text and give it to
//! someone, each through the same call as `duet step`.

use std::collections::{BTreeMap, BTreeSet};

use axum::Form;
use axum::extract::{Path, State};
use duet_core::app::{Assignee, GoalDetail, GoalRecord, StepRecord};
use duet_core::device::Device;
use maud::{Markup, html};
use serde::Deserialize;

use super::devices::told;
use super::edit::{changed, changed_meanwhile, was};
use super::layout::csrf;
use crate::app::server::{App, PageResult};
use crate::bidi::bdi;
use crate::output::name_of;

/// The steps, with a form to complete or reopen each, to change each open one, and to
/// add one. `me` is this device's person id; `present` the people still in the shared
/// space (the only ones a step is offered to); `forms` is the page's token, none once
/// this device may no longer write (the steps are then only listed).
pub fn section(
    g: &GoalRecord,
    people: &BTreeMap<String, String>,
    present: &BTreeSet<String>,
    me: &str,
    forms: Option<&str>,
) -> Markup {
    // Who a step may be given to: those still here (and `me`, always offered).
    let offered: BTreeMap<String, String> = people
        .iter()
        .filter(|(p, _)| present.contains(*p))
        .map(|(p, n)| (p.clone(), n.clone()))
        .collect();
    html! {
        section aria-labelledby="steps" {
            h2 id="steps" { "Steps" }
            @if g.steps.is_empty() { p class="muted" { "No steps yet." } }
            ul class="steps" {
                @for s in &g.steps {
                    li {
                        @match forms {
                            Some(token) => (step(g, s, (people, &offered), me, token)),
                            None => (listed(s, people, me)),
                        }
                    }
                }
            }
            @if let Some(token) = forms { form method="post" action=(format!("/goals/{}/steps", g.id)) {
                (csrf(token))
                label for="step" { "A new step" }
                input id="step" name="text" required;
                (who_select("step-who", &offered, me, None))
                button type="submit" { "Add the step" }
            } }
        }
    }
}

/// A step as it stands, without forms.
fn listed(s: &StepRecord, people: &BTreeMap<String, String>, me: &str) -> Markup {
    html! {
        @if s.done {
            span class="done" { "✓ " (bdi(&s.text)) }
            @if let Some(by) = &s.done_by { span class="muted" { " done by " (bdi(name_of(people, by))) } }
        } @else {
            (bdi(&s.text))
            @if let Some(a) = &s.assignee { span class="muted" { " for " (bdi(for_whom(people, me, a))) } }
        }
    }
}

/// One step: done (with who did it and a Reopen button), or open (with who it is for,
/// Mark done, and a folded form to change it, which offers it to `offered`).
fn step(
    g: &GoalRecord,
    s: &StepRecord,
    (people, offered): (&BTreeMap<String, String>, &BTreeMap<String, String>),
    me: &str,
    token: &str,
) -> Markup {
    let action = |what: &str| format!("/goals/{}/steps/{}/{what}", g.id, s.id);
    // The step's own assignee stays a choice though gone: saving a corrected text must
    // not give the step to someone else.
    let mut with_current = offered.clone();
    if let Some((p, name)) = s.assignee.as_ref().and_then(|a| people.get_key_value(a)) {
        with_current.insert(p.clone(), name.clone());
    }
    html! {
        @if s.done {
            form method="post" class="inline" action=(action("reopen")) {
                (csrf(token))
                span class="done" { "✓ " (bdi(&s.text)) }
                @if let Some(by) = &s.done_by { span class="muted" { " done by " (bdi(name_of(people, by))) } }
                " "
                button type="submit" { "Reopen" (named(&s.text)) }
            }
        } @else {
            form method="post" class="inline" action=(action("done")) {
                (csrf(token))
                (bdi(&s.text))
                @if let Some(a) = &s.assignee { span class="muted" { " for " (bdi(for_whom(people, me, a))) } }
                " "
                button type="submit" { "Mark done" (named(&s.text)) }
            }
            details class="edit" {
                summary { "Change" (named(&s.text)) }
                form method="post" action=(action("edit")) {
                    (csrf(token))
                    @let field = format!("text-{}", s.id);
                    label for=(field) { "The step, corrected" }
                    input id=(field) name="text" required value=(s.text);
                    (was("text", &s.text))
                    (who_select(&format!("who-{}", s.id), &with_current, me, Some(s.assignee.as_deref())))
                    (was("who", &who_value(me, s.assignee.as_deref())))
                    button type="submit" { "Save" }
                }
            }
        }
    }
}

/// A step's first words, heard after its button's word by a screen reader (every
/// step has the same buttons) and not shown.
fn named(text: &str) -> Markup {
    html! { span class="visually-hidden" { " “" (super::reflections::first_words(text)) "”" } }
}

/// The value the "for whom" choice has for an assignee.
fn who_value(me: &str, assignee: Option<&str>) -> String {
    match assignee {
        None => "nobody".to_string(),
        Some(p) if p == me => "me".to_string(),
        Some(p) => person_value(p),
    }
}

/// The value of another person's choice: by id, since a name may read `me` or `nobody`.
fn person_value(person: &str) -> String {
    format!("{PERSON}{person}")
}

/// What a choice's value starts with when it names a person by id.
const PERSON: &str = "person:";

/// The assignee a choice's value names.
fn assignee_of(who: &str) -> Assignee {
    match who.strip_prefix(PERSON) {
        Some(id) => Assignee::Person(id.to_string()),
        None => Assignee::parse(who),
    }
}

/// "you" for this person, else their name as shown.
fn for_whom(people: &BTreeMap<String, String>, me: &str, person: &str) -> String {
    if person == me {
        "you".to_string()
    } else {
        name_of(people, person)
    }
}

/// The "for whom" choice: either of you, me, or each other person by the name they are
/// shown by; `current` is the step's assignee when changing one.
fn who_select(
    id: &str,
    people: &BTreeMap<String, String>,
    me: &str,
    current: Option<Option<&str>>,
) -> Markup {
    let now = current.flatten();
    html! {
        label for=(id) { "For" }
        select id=(id) name="who" {
            option value="nobody" selected[now.is_none()] { "either of you" }
            option value="me" selected[now == Some(me)] { "me" }
            @for (p, name) in people.iter().filter(|(p, _)| *p != me) {
                option value=(person_value(p)) selected[now == Some(p.as_str())] { (name) }
            }
        }
    }
}

/// A step's text and who it is for.
#[derive(Deserialize)]
pub struct StepForm {
    text: String,
    #[serde(default)]
    who: Option<String>,
}

impl StepForm {
    fn assignee(&self) -> Assignee {
        self.who.as_deref().map_or(Assignee::Nobody, assignee_of)
    }
}

/// `POST /goals/{id}/steps`: as `duet step add --for`.
pub async fn add_step(
    State(app): State<App>,
    Path(id): Path<String>,
    Form(f): Form<StepForm>,
) -> PageResult {
    let goal = id.clone();
    app.with_device(move |dev| Ok(dev.add_step(&goal, f.text.trim(), &f.assignee())?))
        .await?;
    Ok(told(&app, &format!("/goals/{id}"), "The step is added."))
}

/// `POST /goals/{id}/steps/{step}/edit`: as `duet step edit` and `duet step assign`,
/// with what the user changed.
pub async fn edit_step(
    State(app): State<App>,
    Path((id, step)): Path<(String, String)>,
    Form(f): Form<BTreeMap<String, String>>,
) -> PageResult {
    let goal = id.clone();
    let text = changed(&f, "text").map(str::to_string);
    let who = changed(&f, "who").map(assignee_of);
    // Compared and written under the home's lock: an edit committed while this form
    // waited its turn is compared too.
    app.with_device(move |dev| {
        dev.exclusively(|dev| {
            if let Some(text) = text {
                refuse_overwrite(dev, &goal, &step, f.get("was-text"), &text)?;
                dev.edit_step(&goal, &step, &text)?;
            }
            if let Some(who) = who {
                dev.assign_step(&goal, &step, &who)?;
            }
            Ok(())
        })
    })
    .await?;
    Ok(told(&app, &format!("/goals/{id}"), "The step is saved."))
}

/// Refuses a step's new text `mine` when the step was changed since the page showed
/// `was` (the command line, another window, the partner) to something else: saving
/// would silently drop that edit.
fn refuse_overwrite(
    dev: &mut Device,
    goal: &str,
    step: &str,
    was: Option<&String>,
    mine: &str,
) -> anyhow::Result<()> {
    let (Some(was), GoalDetail::Found { goal: now, .. }) = (was, dev.goal_detail(goal, Some(0))?)
    else {
        return Ok(());
    };
    let Some(current) = now.steps.get(step).map(|s| s.text.as_str().trim()) else {
        return Ok(());
    };
    if changed_meanwhile(was, current, mine) {
        anyhow::bail!(
            "the step was changed meanwhile (by your partner, or in another window): it now \
             reads \"{current}\"; yours, \"{mine}\", was not saved. Open the goal again and \
             make your change to what it reads now"
        );
    }
    Ok(())
}

/// `POST /goals/{id}/steps/{step}/done`.
pub async fn complete_step(
    State(app): State<App>,
    Path((id, step)): Path<(String, String)>,
) -> PageResult {
    let goal = id.clone();
    let done = app
        .with_device(move |dev| Ok(dev.complete_step(&goal, &step)?))
        .await?;
    let said = match done.already.and_then(|a| a.name) {
        None => "The step is done. Well done.".to_string(),
        Some(name) => format!("That step was done already, by {name}: nothing changed."),
    };
    Ok(told(&app, &format!("/goals/{id}"), said))
}

/// `POST /goals/{id}/steps/{step}/reopen`.
pub async fn reopen_step(
    State(app): State<App>,
    Path((id, step)): Path<(String, String)>,
) -> PageResult {
    let goal = id.clone();
    let (_, changed) = app
        .with_device(move |dev| Ok(dev.reopen_step(&goal, &step)?))
        .await?;
    let said = if changed {
        "The step is open again."
    } else {
        "That step was open already: nothing changed."
    };
    Ok(told(&app, &format!("/goals/{id}"), said))
}
