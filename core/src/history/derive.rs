//! The events one change made, derived from its operations (through the shared
//! [`crate::opwalk`]): which object and property each touched, resolved to a path like
//! `goals/<id>/status`, never from commit messages, which are only labels.

use std::collections::{BTreeMap, HashMap};

use automerge::legacy::OpId;
use automerge::{Change, ChangeHash};

use super::resolve::Resolver;
use super::{HistoryEvent, HistoryKind};
use crate::opwalk::{Op, Paths, walk};

/// The events one change made, in a stable order, before names, titles and summaries
/// are filled in ([`super::name_events`]). They depend only on the change and the
/// document state it was made on, so a read model can keep them.
pub(crate) fn change_events(
    r: &Resolver<'_>,
    paths: &mut Paths,
    change: &Change,
) -> Vec<HistoryEvent> {
    let mut d = Derivation::new(r, change);
    for op in walk(r.doc, paths, change) {
        d.op(&op);
    }
    d.finish()
}

/// What merges many operations into one event: its kind, goal, and item|field.
type EventKey = (HistoryKind, String, String);

/// The key of the event of `kind` for (goal, item, field).
fn event_key(kind: HistoryKind, goal: Option<&str>, item: &str, field: Option<&str>) -> EventKey {
    (
        kind,
        goal.unwrap_or("").to_string(),
        format!("{item}|{}", field.unwrap_or_default()),
    )
}

/// The events of one change as its operations are walked.
struct Derivation<'r, 'a> {
    r: &'r Resolver<'a>,
    /// Every event of the change starts as a copy of this (author, time, change).
    base: HistoryEvent,
    /// The heads the change was made on, and the heads just after it.
    deps: Vec<ChangeHash>,
    after: [ChangeHash; 1],
    events: BTreeMap<EventKey, HistoryEvent>,
    /// Objects created in this change -> the event they belong to.
    created_here: HashMap<OpId, EventKey>,
    goals_created: Vec<String>,
    steps_created: Vec<String>,
}

impl<'r, 'a> Derivation<'r, 'a> {
    fn new(r: &'r Resolver<'a>, change: &Change) -> Self {
        let hash = change.hash();
        Derivation {
            r,
            base: HistoryEvent::by(
                HistoryKind::GoalCreated,
                change.timestamp(),
                None,
                String::new(),
                change.actor_id().to_hex_string(),
                hex::encode(hash.0),
            ),
            deps: change.deps().to_vec(),
            after: [hash],
            events: BTreeMap::new(),
            created_here: HashMap::new(),
            goals_created: Vec::new(),
            steps_created: Vec::new(),
        }
    }

    /// The event of `kind` for (goal, item, field), made on first use.
    fn push(
        &mut self,
        kind: HistoryKind,
        goal: Option<&str>,
        item: &str,
        field: Option<String>,
    ) -> (EventKey, &mut HistoryEvent) {
        let k = event_key(kind, goal, item, field.as_deref());
        let base = &self.base;
        let ev = self
            .events
            .entry(k.clone())
            .or_insert_with(|| HistoryEvent {
                kind,
                goal: goal.map(str::to_string),
                field,
                item: (!item.is_empty()).then(|| item.to_string()),
                ..base.clone()
            });
        (k, ev)
    }

    /// Adds what one operation did to the change's events.
    fn op(&mut self, op: &Op) {
        // A field of an object created in this change belongs to that object's event.
        if let Some(k) = op.obj.as_ref().and_then(|o| self.created_here.get(o)) {
            let k = k.clone();
            self.fill_in(&k, op);
            return;
        }
        let path: Vec<&str> = op
            .path
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .map(String::as_str)
            .collect();
        let key = op.key.as_str();
        match path.as_slice() {
            ["goals"] if op.make => {
                self.goals_created.push(key.to_string());
                let (k, _) = self.push(HistoryKind::GoalCreated, Some(key), "", None);
                self.created_here.insert(op.id.clone(), k);
            }
            ["goals", g, "steps", s] if key == "done_at" && op.value.is_some() => {
                self.step_text(HistoryKind::StepDone, g, s);
            }
            ["goals", g, "steps", s] if key == "done_at" => {
                self.step_text(HistoryKind::StepReopened, g, s);
            }
            ["goals", g, "steps", s, "text", ..] if self.made_before(g, s) => {
                self.step_edited(g, s);
            }
            ["goals", g, "steps", s] if key == "assignee" && self.made_before(g, s) => {
                let k = self.step_text(HistoryKind::StepAssigned, g, s);
                if let Some(ev) = self.events.get_mut(&k) {
                    ev.person = op.value.clone();
                }
            }
            ["goals", g, rest @ ..] if !self.goals_created.iter().any(|c| c == g) => {
                self.goal_edit(g, rest, op)
            }
            ["ratings"] if op.make => self.created(HistoryKind::RatingGiven, op),
            ["reflections"] if op.make => self.created(HistoryKind::ReflectionWritten, op),
            ["reflections", r] if key == "withdrawn_at" && op.value.is_some() => {
                let goal = self.r.reflection_goal(r);
                let reply = self.r.reflection_is_reply(r).then(|| "reply".to_string());
                self.push(HistoryKind::ReflectionWithdrawn, goal.as_deref(), r, reply);
            }
            // A put of null too: `undo` taking back a reflection's only edit. `undo`
            // writes back the time of the edit before (or null), an edit the time of
            // its change: an older time marks an edit taken back.
            ["reflections", r] if key == "edited_at" => {
                let when = op.value.as_deref().and_then(|v| v.parse::<i64>().ok());
                let undone = when.is_none_or(|t| t < self.base.at);
                self.reflection_edited(r, undone);
            }
            ["seals"] if op.make => self.created(HistoryKind::RatingSealed, op),
            // Closing several rounds (opened by both while apart) is one close; it names
            // its rounds and the time it wrote, so that of two closes made apart the
            // history shows the one the document kept (`CountedActs`).
            ["rounds", round] if key == "closed_at" && op.value.is_some() => {
                let (_, ev) = self.push(HistoryKind::RoundClosed, None, "", None);
                let rounds = ev.item.get_or_insert_with(String::new);
                if !rounds.is_empty() {
                    rounds.push(',');
                }
                rounds.push_str(round);
                ev.after = op.value.clone();
            }
            ["people"] if op.make => self.created(HistoryKind::PersonNamed, op),
            ["people", who] if key == "name" => {
                let (_, ev) = self.push(HistoryKind::PersonNamed, None, who, None);
                ev.after = op.value.clone();
            }
            _ => {}
        }
    }

    /// An entity (rating, reflection, person) made by `op`; its fields fill the event in.
    fn created(&mut self, kind: HistoryKind, op: &Op) {
        let (k, _) = self.push(kind, None, &op.key, None);
        self.created_here.insert(op.id.clone(), k);
    }

    /// A field set on an object created in this change.
    fn fill_in(&mut self, k: &EventKey, op: &Op) {
        let Some(ev) = self.events.get_mut(k) else {
            return;
        };
        let value = op.value.clone();
        match (ev.kind, op.key.as_str()) {
            (
                HistoryKind::RatingGiven
                | HistoryKind::ReflectionWritten
                | HistoryKind::RatingSealed,
                "goal",
            ) => ev.goal = value,
            // A rating's marks: a reveal of a sealed one, a correction, a withdrawal.
            // `before` names the seal revealed: two devices of one person may both
            // reveal it, and the history shows the reveal readers count. The reveal of a
            // corrected seal carries the seal's `corrects` too; the correction was shown
            // when it was sealed, and read again here it said the rater corrected the
            // rating at the reveal, after the partner's answer.
            (HistoryKind::RatingGiven, "reveals") if value.is_some() => {
                ev.field = Some("revealed".into());
                ev.before = value;
            }
            (HistoryKind::RatingGiven | HistoryKind::RatingSealed, "corrects")
                if value.is_some() && ev.field.as_deref() != Some("revealed") =>
            {
                ev.field = Some("correction".into());
                ev.before = value;
            }
            (HistoryKind::RatingGiven, "withdrawn") if value.as_deref() == Some("true") => {
                ev.kind = HistoryKind::RatingWithdrawn;
            }
            (HistoryKind::ReflectionWritten, "reply_to") if value.is_some() => {
                ev.field = Some("reply".into());
                ev.before = value;
            }
            (HistoryKind::RatingGiven, "level") => {
                ev.level = value.as_deref().and_then(|v| v.parse().ok())
            }
            (HistoryKind::RatingGiven, "note") => ev.after = value,
            (HistoryKind::PersonNamed, "name") => ev.after = value,
            (HistoryKind::StepAdded, "assignee") => ev.person = value,
            (HistoryKind::GoalCreated, "owner") if value.as_deref() != Some("shared") => {
                ev.person = value
            }
            _ => {}
        }
    }

    /// An operation below goal `g` (not created in this change), at `rest` below it.
    fn goal_edit(&mut self, g: &str, rest: &[&str], op: &Op) {
        let key = op.key.as_str();
        match rest {
            [] => match key {
                "status" => self.scalar_edit(HistoryKind::StatusChanged, g, key, op),
                "area" | "due" | "owner" => self.scalar_edit(HistoryKind::FieldEdited, g, key, op),
                _ => {}
            },
            [field @ ("title" | "why"), ..] => self.text_edit(g, field, &[field]),
            ["levels", lv, ..] => self.text_edit(g, level_field(lv), &["levels", lv]),
            ["weights"] => {
                let (_, ev) = self.push(
                    HistoryKind::FieldEdited,
                    Some(g),
                    key,
                    Some("weight".into()),
                );
                ev.after = op.value.clone();
            }
            ["steps"] if op.make => {
                let k = self.step_text(HistoryKind::StepAdded, g, key);
                self.created_here.insert(op.id.clone(), k);
                self.steps_created.push(key.to_string());
            }
            _ => {}
        }
    }

    /// A scalar field of a goal: its value before the change (read once per change: a
    /// change may put the field many times), and the last one put.
    fn scalar_edit(&mut self, kind: HistoryKind, g: &str, key: &str, op: &Op) {
        if let Some(ev) = self
            .events
            .get_mut(&event_key(kind, Some(g), "", Some(key)))
        {
            if self.r.goal(g).is_some() {
                ev.after = op.value.clone();
            }
            return;
        }
        let before = self
            .r
            .goal(g)
            .map(|obj| self.r.scalar_at(&obj, key, &self.deps));
        let (_, ev) = self.push(kind, Some(g), "", Some(key.to_string()));
        if let Some(before) = before {
            ev.before = before;
            ev.after = op.value.clone();
        }
    }

    /// A text field of a goal (at `path` below it): its text before and after the change,
    /// read once per change (a change typing N characters has N operations on it, and
    /// each read walks the whole text).
    fn text_edit(&mut self, g: &str, field: &str, path: &[&str]) {
        if self.events.contains_key(&event_key(
            HistoryKind::FieldEdited,
            Some(g),
            "",
            Some(field),
        )) {
            return;
        }
        let texts = self.r.goal_path(g, path).map(|obj| {
            (
                self.r.shown_text_at(&obj, &self.deps, short_text),
                self.r.shown_text_at(&obj, &self.after, short_text),
            )
        });
        let (_, ev) = self.push(
            HistoryKind::FieldEdited,
            Some(g),
            "",
            Some(field.to_string()),
        );
        if let Some((before, after)) = texts {
            ev.before = before;
            ev.after = after;
        }
    }

    /// A reflection edited: a digest of its text just after the change, which tells a
    /// merge of two edits made apart from either one ([`super::merged_reflections`]);
    /// not the text, which a withdrawal takes out of every view.
    fn reflection_edited(&mut self, r: &str, undone: bool) {
        let after = self
            .r
            .reflection_text(r)
            .and_then(|obj| self.r.shown_text_at(&obj, &self.after, super::text_mark));
        let goal = self.r.reflection_goal(r);
        let field = undone.then(|| "undone".to_string());
        let (_, ev) = self.push(HistoryKind::ReflectionEdited, goal.as_deref(), r, field);
        ev.after = after;
    }

    /// Whether step `s` of goal `g` was there before this change (neither made in it).
    fn made_before(&self, g: &str, s: &str) -> bool {
        !self.goals_created.iter().any(|c| c == g) && !self.steps_created.iter().any(|c| c == s)
    }

    /// A step's text corrected: its text before and after the change, read once per
    /// change (as a goal's texts are).
    fn step_edited(&mut self, g: &str, s: &str) {
        let k = event_key(HistoryKind::StepEdited, Some(g), s, None);
        if self.events.contains_key(&k) {
            return;
        }
        let texts = self.r.goal_path(g, &["steps", s, "text"]).map(|obj| {
            (
                self.r.shown_text_at(&obj, &self.deps, short_text),
                self.r.shown_text_at(&obj, &self.after, short_text),
            )
        });
        let (_, ev) = self.push(HistoryKind::StepEdited, Some(g), s, None);
        if let Some((before, after)) = texts {
            ev.before = before;
            ev.after = after;
        }
    }

    /// A step event, showing the step's text just after the change (read once per
    /// change and event).
    fn step_text(&mut self, kind: HistoryKind, g: &str, step: &str) -> EventKey {
        let k = event_key(kind, Some(g), step, None);
        if self.events.contains_key(&k) {
            return k;
        }
        let text = self
            .r
            .goal_path(g, &["steps", step, "text"])
            .map(|obj| self.r.text_at(&obj, &self.after).map(|t| short_text(&t)));
        let (k, ev) = self.push(kind, Some(g), step, None);
        if let Some(text) = text {
            ev.after = text;
        }
        k
    }

    /// The events in a stable order within the change, each new goal with the title it
    /// was given.
    fn finish(self) -> Vec<HistoryEvent> {
        let mut evs: Vec<HistoryEvent> = self.events.into_values().collect();
        evs.sort_by_key(|e| (e.kind, e.goal.clone(), e.item.clone()));
        for ev in &mut evs {
            if ev.kind == HistoryKind::GoalCreated
                && let Some(obj) = ev
                    .goal
                    .as_deref()
                    .and_then(|g| self.r.goal_path(g, &["title"]))
            {
                ev.after = self.r.text_at(&obj, &self.after);
            }
        }
        evs
    }
}

/// A level's key as the field an event names.
fn level_field(name: &str) -> &str {
    match name {
        "much_less" => "level:-2",
        "less" => "level:-1",
        "expected" => "level:0",
        "more" => "level:+1",
        "much_more" => "level:+2",
        other => other,
    }
}

/// A text cut to one short line for an event.
pub(crate) fn short_text(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let cut: String = s.chars().take(MAX - 1).collect();
        format!("{cut}…")
    }
}
