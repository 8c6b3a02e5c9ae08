//! Who may change what in a space's document: the owner rules every client checks on
//! every change it receives, before applying it.
//!
//! A signature proves which device wrote a change, not what the change may touch, and
//! the person a rating or reflection names is plain data. So each operation of a
//! received change is placed in the document (its path from the root) and checked
//! against the person of the device that signed the event (P):
//!
//! - the root collections are written only once, when the space is created;
//! - `people/<id>`: only by a device of person `id` (nobody renames the other);
//! - `ratings/<id>`: created once, naming P as the rater, and never modified again (a
//!   correction is a new rating by the same person); never deleted;
//! - `reflections/<id>`: created naming P as the author; changed only by a device of
//!   its author, who stays its author; never deleted;
//! - `goals/<id>`: created naming P as the creator; its fields are shared and editable
//!   by both partners, except the creator and creation time; a goal is archived, never
//!   deleted; `weights/<person>` is set only by that person; `owner` is `shared` or P
//!   (nobody makes a goal the other's own), and a goal that is one person's own has its
//!   owner changed only by that person;
//! - `goals/<id>/steps/<id>`: created naming P; shared text; the completion (`done_by`,
//!   `done_at`) names P and is changed only by the person who completed it, except
//!   that either partner may reopen a step (both set to null);
//! - whatever is written into a goal that exists keeps the model's shape (`shape`), so
//!   that no partner can make the other's goal unreadable;
//! - `seals/<id>` and `rounds/<id>` (the blind check-ins, `rituals`): a seal is created
//!   once naming P as the rater and never changed; a round is opened naming P, and
//!   later only closed, once, naming P;
//! - a rating that reveals a seal must be the rater's own and match the seal's
//!   commitment; a rating that corrects another must correct one of P's own;
//! - anything else is refused.
//!
//! A change that breaks a rule is refused as a whole with every other change of its
//! event (see `sync`): nothing is half-applied.
//!
//! What a shared field held is read as the change's author saw it (the document at the
//! change's dependencies), not as this device holds it now: both partners completing
//! one step, or closing one round, while apart is not one changing the other's, and
//! every device then decides the same whatever order the changes reach it in.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write;
use std::rc::Rc;

use automerge::legacy::{Key, ObjectId, OpId, OpType};
use automerge::{Automerge, Change, ChangeHash, ObjType, Prop, ReadDoc, ScalarValue, Value};

mod rituals;
mod shape;

/// The owner of a goal of both partners (`goals/<id>/owner`).
const SHARED_OWNER: &str = "shared";

/// Why a change was refused: what it tried to do, in words for the history.
pub type Violation = String;

/// A reason as it is kept and shown: the ids in it are the sender's text, so it is cut
/// to 300 characters with control characters escaped.
fn shown(reason: String) -> String {
    let cut: String = reason.chars().take(300).collect();
    let mut out: String = cut
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if reason.chars().count() > 300 {
        out.push_str("...");
    }
    out
}

/// Checks every change of one event, signed by a device of `person` (hex person id),
/// against the owner rules, with `doc` as it stands before the event is applied.
pub fn check(doc: &Automerge, person: &str, changes: &[Change]) -> Result<(), Violation> {
    let mut checker = Checker {
        doc,
        person,
        paths: HashMap::new(),
        created: Created::default(),
        new_steps: shape::NewSteps::default(),
        existing: RefCell::new(HashMap::new()),
        lookup: RefCell::new(String::new()),
        heads: doc.get_heads(),
        seen: Vec::new(),
        seen_of: HashMap::new(),
        seen_values: RefCell::new(HashMap::new()),
    };
    for change in changes {
        checker.change(change).map_err(shown)?;
    }
    checker.finish().map_err(shown)?;
    checker.new_steps.finish().map_err(shown)
}

/// Writes map keys into `out` as one string, each prefixed with its length: the keys
/// are the sender's text and may hold any separator, and no two lists may share one.
fn join_keys(out: &mut String, keys: &[&str]) {
    out.clear();
    for k in keys {
        let _ = write!(out, "{}:{k}", k.len());
    }
}

/// How many steps of a path from the root the rules read (`goals/<id>/steps/<id>/<field>`
/// is the deepest they tell apart); deeper ones are only counted.
const KEPT_STEPS: usize = 5;

/// A path from the root: its first [`KEPT_STEPS`] steps (map keys, with `None` for a
/// position in a list or text) and its length. Keeping only the head makes placing an
/// object cost the same at any depth: a partner nesting objects thousands deep made
/// each new object copy its whole path (the check of one event grew with the square of
/// its depth, and a few kilobytes held a sync for minutes).
#[derive(Clone, Debug, Default)]
struct Path {
    head: Vec<Option<String>>,
    depth: usize,
    /// Whether every step, kept or not, is a map key.
    all_keys: bool,
}

impl Path {
    fn root() -> Path {
        Path {
            head: Vec::new(),
            depth: 0,
            all_keys: true,
        }
    }

    /// The path of what this path's object holds at `step`.
    fn child(&self, step: Option<&str>) -> Path {
        let mut head = self.head.clone();
        if head.len() < KEPT_STEPS {
            head.push(step.map(str::to_string));
        }
        Path {
            head,
            depth: self.depth + 1,
            all_keys: self.all_keys && step.is_some(),
        }
    }

    /// The map keys from the root up to the first position in a list or text (at most
    /// [`KEPT_STEPS`]), then `step` when every step before it is a map key and it is
    /// one too.
    fn keys<'a>(&'a self, step: Option<&'a str>) -> Vec<&'a str> {
        let mut keys: Vec<&str> = self.head.iter().map_while(|k| k.as_deref()).collect();
        if self.all_keys
            && self.depth < KEPT_STEPS
            && let Some(k) = step
        {
            keys.push(k);
        }
        keys
    }
}

/// A value found in the document, with the id of the op (or object) holding it.
type Found = (Value<'static>, automerge::ObjId);

/// The scalars written into the ratings and seals an event creates, by id: what the
/// reveal and correction checks read at the end.
#[derive(Default)]
struct Created {
    ratings: HashMap<String, rituals::Fields>,
    seals: HashMap<String, rituals::Fields>,
}

struct Checker<'a> {
    doc: &'a Automerge,
    person: &'a str,
    /// The paths of objects seen so far (and those created by this event), by id; shared,
    /// as every op into an object asks for its path.
    paths: HashMap<OpId, Rc<Path>>,
    created: Created,
    /// The steps this event makes in goals that already exist.
    new_steps: shape::NewSteps,
    /// What [`Checker::existing`] found, by keys (length-prefixed and joined, so that no
    /// two lists of keys share one): the document does not change during a check, and
    /// the ops of one entity ask about it once per field.
    existing: RefCell<HashMap<String, Option<Found>>>,
    /// The joined keys of the lookup at hand (one buffer, not one string per lookup).
    lookup: RefCell<String>,
    /// The document's heads before the event.
    heads: Vec<ChangeHash>,
    /// The heads of the document as the author of the change at hand saw it: its
    /// dependencies, each of this event's own changes replaced by what that one saw.
    seen: Vec<ChangeHash>,
    /// [`Checker::seen`] of each change of this event checked so far.
    seen_of: HashMap<ChangeHash, Vec<ChangeHash>>,
    /// What [`Checker::seen_value`] found for the change at hand, by object and key
    /// (a change may write one field many times).
    seen_values: RefCell<HashMap<(automerge::ObjId, String), Option<Value<'static>>>>,
}

impl Checker<'_> {
    fn change(&mut self, change: &Change) -> Result<(), Violation> {
        let mut seen: Vec<ChangeHash> = Vec::new();
        for d in change.deps() {
            match self.seen_of.get(d) {
                Some(s) => seen.extend(s.iter().copied()),
                None => seen.push(*d),
            }
        }
        seen.sort_unstable();
        seen.dedup();
        if seen != self.seen {
            self.seen_values.borrow_mut().clear();
        }
        self.seen = seen;
        self.seen_of.insert(change.hash(), self.seen.clone());
        let expanded = change.decode();
        let actor = expanded.actor_id.clone();
        let start = expanded.start_op.get();
        for (i, op) in expanded.operations.iter().enumerate() {
            let parent = self.path_of(&op.obj)?;
            let key = match &op.key {
                Key::Map(k) => Some(k.as_str()),
                _ => None,
            };
            let keys = parent.keys(key);
            let depth = parent.depth + 1;
            if depth == 1
                && let Some(top) = key
                && crate::doc::LATE_COLLECTIONS.contains(&top)
                && matches!(op.action, OpType::Make(ObjType::Map))
            {
                // A late root map made while apart from another device's is a
                // conflict readers merge; one made over an existing map would hide it.
                if !op.pred.is_empty() {
                    return Err(format!("it replaces the document's `{top}` collection"));
                }
            } else {
                self.rule(&keys, depth, &op.action)?;
            }
            if depth == 3 && keys.len() == 3 {
                self.remember(&keys, &op.action);
            }
            if let OpType::Make(_) = op.action {
                // The object this op makes gets the op's id.
                let id = OpId(start + i as u64, actor.clone());
                self.paths.insert(id, Rc::new(parent.child(key)));
            }
        }
        Ok(())
    }

    /// The path of an object: made by this event, or already in the document.
    fn path_of(&mut self, obj: &ObjectId) -> Result<Rc<Path>, Violation> {
        let ObjectId::Id(id) = obj else {
            return Ok(Rc::new(Path::root()));
        };
        crate::opwalk::place(
            self.doc,
            id,
            &mut self.paths,
            Rc::new(Path::root()),
            |parent, prop| {
                Rc::new(parent.child(match prop {
                    Prop::Map(k) => Some(k.as_str()),
                    Prop::Seq(_) => None,
                }))
            },
        )
        .ok_or_else(|| {
            format!(
                "it writes into an object this device does not have ({}@{})",
                id.0, id.1
            )
        })
    }

    /// Whether the document (before this event) has a value at these map keys.
    fn existing(&self, keys: &[&str]) -> Option<Found> {
        {
            let mut lookup = self.lookup.borrow_mut();
            join_keys(&mut lookup, keys);
            if let Some(found) = self.existing.borrow().get(lookup.as_str()) {
                return found.clone();
            }
        }
        let found = match keys.split_last() {
            None => None,
            Some((last, [])) => self.get_owned(&automerge::ROOT, last),
            Some((last, parent)) => match self.existing(parent) {
                Some((Value::Object(_), obj)) => self.get_owned(&obj, last),
                _ => None,
            },
        };
        let mut key = String::new();
        join_keys(&mut key, keys);
        self.existing.borrow_mut().insert(key, found.clone());
        found
    }

    fn get_owned(&self, obj: &automerge::ObjId, key: &str) -> Option<Found> {
        let (v, id) = self.doc.get(obj, key).ok().flatten()?;
        Some((v.into_owned(), id))
    }

    /// The value at `key` of `obj` as the author of the change at hand saw it (see
    /// [`Checker::seen`]); the document as it is when that was all of it.
    fn seen_value(&self, obj: &automerge::ObjId, key: &str) -> Option<Value<'static>> {
        let at = (obj.clone(), key.to_string());
        if let Some(v) = self.seen_values.borrow().get(&at) {
            return v.clone();
        }
        let found = if self.seen == self.heads {
            self.doc.get(obj, key)
        } else {
            // Only heads the document has (a change whose dependencies are missing is
            // not applied anyway).
            let missing = self.doc.get_missing_deps(&self.seen);
            let seen: Vec<ChangeHash> = self
                .seen
                .iter()
                .filter(|h| !missing.contains(h))
                .copied()
                .collect();
            self.doc.get_at(obj, key, &seen)
        };
        let value = found.ok().flatten().map(|(v, _)| v.into_owned());
        self.seen_values.borrow_mut().insert(at, value.clone());
        value
    }

    /// The string at these map keys in the document, if any.
    fn existing_str(&self, keys: &[&str]) -> Option<String> {
        match self.existing(keys)? {
            (Value::Scalar(s), _) => match s.as_ref() {
                ScalarValue::Str(s) => Some(s.to_string()),
                _ => None,
            },
            _ => None,
        }
    }

    fn is_map(&self, keys: &[&str]) -> bool {
        matches!(self.existing(keys), Some((Value::Object(ObjType::Map), _)))
    }

    /// Whether `action` writes exactly the string P.
    fn names_me(&self, action: &OpType) -> bool {
        matches!(action, OpType::Put(ScalarValue::Str(s)) if s.as_str() == self.person)
    }

    /// Checks one op at a path `depth` keys deep, whose map keys from the root (up to a
    /// list or text) are `keys`.
    fn rule(&mut self, keys: &[&str], depth: usize, action: &OpType) -> Result<(), Violation> {
        let Some(&top) = keys.first() else {
            return Err("it writes a list at the document's root".into());
        };
        if depth == 1 {
            return if (top == "schema" || crate::doc::ROOT_COLLECTIONS.contains(&top))
                && self.existing(&[top]).is_none()
            {
                Ok(())
            } else {
                Err(format!("it replaces the document's `{top}` collection"))
            };
        }
        // Past the collection and the entity id, a path may go through text (None);
        // `keys` holds the map keys up to there.
        let id = keys.get(1).copied();
        let field = keys.get(2).copied();
        let whole = depth == 2;
        match top {
            "people" => match id {
                Some(p) if p == self.person => Ok(()),
                _ => Err("it changes the other partner's name".into()),
            },
            "ratings" => {
                let id = id.ok_or("it writes the ratings map oddly")?;
                if self.existing(&["ratings", id]).is_some() {
                    return Err(format!("it changes an existing rating ({id})"));
                }
                if field == Some("rater") && depth == 3 && !self.names_me(action) {
                    return Err(format!("it writes rating {id} in another person's name"));
                }
                Ok(())
            }
            "reflections" => {
                let id = id.ok_or("it writes the reflections map oddly")?;
                match self.existing_str(&["reflections", id, "author"]) {
                    Some(author) if author != self.person => {
                        Err(format!("it changes the other partner's reflection ({id})"))
                    }
                    Some(_) if whole => Err(format!("it replaces or deletes reflection {id}")),
                    Some(_) if field == Some("author") && depth == 3 => {
                        Err(format!("it changes the author of reflection {id}"))
                    }
                    None if self.existing(&["reflections", id]).is_some() => {
                        Err(format!("it changes reflection {id}, which names no author"))
                    }
                    None if field == Some("author") && depth == 3 && !self.names_me(action) => Err(
                        format!("it writes reflection {id} in another person's name"),
                    ),
                    _ => Ok(()),
                }
            }
            "goals" => self.goal_rule(keys, depth, action),
            "seals" => self.seal_rule(id, field, depth, action),
            "rounds" => self.round_rule(id, field, depth, action),
            _ => Err(format!(
                "it writes `{top}`, which this version does not know"
            )),
        }
    }

    fn goal_rule(&mut self, keys: &[&str], depth: usize, action: &OpType) -> Result<(), Violation> {
        let id = keys
            .get(1)
            .copied()
            .ok_or("it writes the goals map oddly")?;
        let exists = self.is_map(&["goals", id]);
        let field = keys.get(2).copied();
        if !exists {
            // A new goal: everything inside is new, but names its creator truly.
            if field == Some("created_by") && depth == 3 && !self.names_me(action) {
                return Err(format!("it creates goal {id} in another person's name"));
            }
            if field == Some("weights") && depth >= 4 && keys.get(3) != Some(&self.person) {
                return Err(format!("it sets the other partner's weight of goal {id}"));
            }
            if field == Some("steps") && depth >= 5 {
                return self.new_step_rule(id, keys, depth, action, false);
            }
            if field == Some("owner") && depth == 3 && !self.owner_of_mine(action) {
                return Err(format!("it creates goal {id} as the other partner's own"));
            }
            return Ok(());
        }
        match field {
            None => Err(format!("it replaces or deletes goal {id}")),
            Some("owner") if depth == 3 => self.owner_rule(id, action),
            Some("created_by" | "created_at") if depth == 3 => {
                Err(format!("it changes who created goal {id}, or when"))
            }
            Some("weights") if depth == 3 => Err(format!("it replaces the weights of goal {id}")),
            Some("weights") if keys.get(3) != Some(&self.person) => {
                Err(format!("it sets the other partner's weight of goal {id}"))
            }
            Some("steps") if depth == 3 => Err(format!("it replaces the steps of goal {id}")),
            Some("steps") => self.step_rule(id, keys, depth, action),
            _ => shape::goal_op(id, keys, depth, action),
        }
    }

    /// Whether `action` makes a goal shared, or the writer's own.
    fn owner_of_mine(&self, action: &OpType) -> bool {
        self.names_me(action)
            || matches!(action, OpType::Put(ScalarValue::Str(s)) if s.as_str() == SHARED_OWNER)
    }

    /// A put of an existing goal's owner: to shared or to the writer, and only by the
    /// person whose goal it is (as the author saw it) when it is one person's own.
    fn owner_rule(&self, goal: &str, action: &OpType) -> Result<(), Violation> {
        if !self.owner_of_mine(action) {
            return Err(format!("it makes goal {goal} the other partner's own"));
        }
        let owner = self.existing(&["goals", goal]).and_then(|(_, obj)| {
            match self.seen_value(&obj, "owner")? {
                Value::Scalar(s) => match s.as_ref() {
                    ScalarValue::Str(s) => Some(s.to_string()),
                    _ => None,
                },
                _ => None,
            }
        });
        match owner {
            Some(o) if o != SHARED_OWNER && o != self.person => Err(format!(
                "it changes whose goal {goal} is, which only its owner may"
            )),
            _ => Ok(()),
        }
    }

    /// A step inside an existing goal.
    fn step_rule(
        &mut self,
        goal: &str,
        keys: &[&str],
        depth: usize,
        action: &OpType,
    ) -> Result<(), Violation> {
        let step = keys
            .get(3)
            .copied()
            .ok_or("it writes a goal's steps oddly")?;
        if !self.is_map(&["goals", goal, "steps", step]) {
            return self.new_step_rule(goal, keys, depth, action, true);
        }
        let field = keys.get(4).copied();
        // Who had completed it as the author saw it: both completing it while apart
        // is not one changing the other's completion.
        let done_by =
            self.existing(&["goals", goal, "steps", step])
                .and_then(|(_, obj)| match self.seen_value(&obj, "done_by")? {
                    Value::Scalar(s) => match s.as_ref() {
                        ScalarValue::Str(s) => Some(s.to_string()),
                        _ => None,
                    },
                    _ => None,
                });
        match field {
            None => Err(format!("it replaces or deletes step {step}")),
            Some("created_by" | "created_at") if depth == 5 => {
                Err(format!("it changes who added step {step}, or when"))
            }
            Some("done_by" | "done_at")
                if done_by.as_deref().is_some_and(|d| d != self.person)
                    && !matches!(action, OpType::Put(ScalarValue::Null)) =>
            {
                Err(format!(
                    "it changes the other partner's completion of step {step}"
                ))
            }
            Some("done_by")
                if depth == 5
                    && !self.names_me(action)
                    && !matches!(action, OpType::Put(ScalarValue::Null) | OpType::Delete) =>
            {
                Err(format!("it completes step {step} in another person's name"))
            }
            _ => shape::step_op(keys, depth, action, None),
        }
    }

    /// A step being created (in a new goal, or in an existing one: `in_existing`).
    fn new_step_rule(
        &mut self,
        goal: &str,
        keys: &[&str],
        depth: usize,
        action: &OpType,
        in_existing: bool,
    ) -> Result<(), Violation> {
        let field = keys.get(4).copied();
        let named = self.names_me(action) || matches!(action, OpType::Put(ScalarValue::Null));
        match field {
            Some("created_by") if depth == 5 && !self.names_me(action) => Err(format!(
                "it adds a step to goal {goal} in another person's name"
            )),
            Some("done_by") if depth == 5 && !named => Err(format!(
                "it completes a step of goal {goal} in another person's name"
            )),
            _ if in_existing => shape::step_op(keys, depth, action, Some(&mut self.new_steps)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Level;
    use crate::doc::SpaceDoc;
    use automerge::ActorId;

    const ALEX: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const SAM: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    /// A space created by Alex with a goal, a rating and a reflection, and Sam's copy.
    fn couple() -> (SpaceDoc, SpaceDoc, String) {
        let (mut alex, first) = SpaceDoc::create(ActorId::random(), 1).expect("create");
        let mut changes = vec![first];
        changes.extend(alex.set_person(ALEX, "Alex", 2).expect("name"));
        let (goal, c) = alex
            .add_goal(
                ALEX,
                crate::doc::NewGoal {
                    title: "Walk".into(),
                    ..Default::default()
                },
                3,
            )
            .expect("goal");
        changes.extend(c);
        let mut sam = SpaceDoc::empty(ActorId::random());
        sam.apply(changes).expect("apply");
        (alex, sam, goal)
    }

    fn last(doc: &SpaceDoc, made: Option<Change>) -> Vec<Change> {
        let _ = doc;
        made.into_iter().collect()
    }

    #[test]
    fn no_two_lists_of_keys_share_a_lookup() {
        let joined = |keys: &[&str]| {
            let mut out = String::new();
            join_keys(&mut out, keys);
            out
        };
        let lists: [&[&str]; 6] = [
            &["ratings", "ab"],
            &["ratings", "a", "b"],
            &["ratings", "a:b"],
            &["ratings", "1:a", "b"],
            &["ratings1:a", "b"],
            &["ratings", "a", "1:b"],
        ];
        let all: std::collections::HashSet<String> = lists.iter().map(|l| joined(l)).collect();
        assert_eq!(all.len(), lists.len());
    }

    #[test]
    fn honest_edits_of_both_partners_pass() {
        let (alex, mut sam, goal) = couple();
        let before = sam.clone();
        let mut made = Vec::new();
        made.extend(sam.set_person(SAM, "Sam", 4).expect("name"));
        made.extend(
            sam.rate(&goal, SAM, Level::MORE, Some("ok"), 5)
                .expect("rate")
                .1,
        );
        made.extend(
            sam.reflect(SAM, None, None, "we walked", 6)
                .expect("reflect")
                .1,
        );
        let (step, c) = sam.add_step(&goal, SAM, "shoes", 7).expect("step");
        made.extend(c);
        made.extend(sam.complete_step(&goal, &step, SAM, 8).expect("done"));
        made.extend(
            sam.edit_goal(
                &goal,
                crate::doc::GoalEdit {
                    title: Some("Walk more".into()),
                    weight: Some((SAM.into(), 2.0)),
                    ..Default::default()
                },
                9,
            )
            .expect("edit"),
        );
        check(before.automerge(), SAM, &made).expect("honest edits pass");
        let _ = alex;
    }

    #[test]
    fn completing_a_step_the_other_completed_is_refused_but_completing_it_while_apart_passes() {
        let (mut alex, mut sam, goal) = couple();
        let (step, c) = alex.add_step(&goal, ALEX, "shoes", 4).expect("step");
        sam.apply(c.into_iter().collect()).expect("apply");
        let done = alex.complete_step(&goal, &step, ALEX, 5).expect("done");
        // While apart: Sam completes it too, not having seen Alex's completion; Alex's
        // device, which holds it, checks Sam's change.
        let mut apart = sam.clone();
        let mine = apart.complete_step(&goal, &step, SAM, 6).expect("done");
        check(alex.automerge(), SAM, &last(&apart, mine)).expect("completed while apart");
        // Having seen Alex's completion, Sam's change overwrites it.
        sam.apply(done.into_iter().collect()).expect("apply");
        let before = sam.clone();
        let over = sam.complete_step(&goal, &step, SAM, 7).expect("done");
        let err = check(before.automerge(), SAM, &last(&sam, over)).expect_err("refused");
        assert!(err.contains("other partner's completion"), "{err}");
        // Either may reopen it.
        let before = sam.clone();
        let reopened = sam.reopen_step(&goal, &step, 8).expect("reopen");
        check(before.automerge(), SAM, &last(&sam, reopened)).expect("reopening passes");
    }

    #[test]
    fn a_goal_is_made_ones_own_or_shared_again_only_by_its_owner() {
        let (mut alex, mut sam, shared) = couple();
        let owner = |who: &str| crate::doc::GoalEdit {
            owner: Some(who.to_string()),
            ..Default::default()
        };
        // Nobody makes a goal the other's own, on creation or after.
        let before = sam.clone();
        let (_, c) = sam
            .add_goal(
                SAM,
                crate::doc::NewGoal {
                    title: "Listen".into(),
                    owner: Some(ALEX.into()),
                    ..Default::default()
                },
                4,
            )
            .expect("goal");
        let err = check(before.automerge(), SAM, &last(&sam, c)).expect_err("refused");
        assert!(err.contains("as the other partner's own"), "{err}");
        let mut other = alex.clone();
        let before = other.clone();
        let c = other.edit_goal(&shared, owner(SAM), 5).expect("edit");
        let err = check(before.automerge(), ALEX, &last(&other, c)).expect_err("refused");
        assert!(err.contains("the other partner's own"), "{err}");
        // Alex makes the shared goal Alex's own: Sam may then neither make it shared nor
        // take it, while Alex may give it back.
        let before = alex.clone();
        let mine = alex.edit_goal(&shared, owner(ALEX), 6).expect("edit");
        check(before.automerge(), ALEX, &last(&alex, mine.clone())).expect("one's own");
        sam.apply(mine.into_iter().collect()).expect("apply");
        for to in ["shared", SAM] {
            let mut try_it = sam.clone();
            let c = try_it.edit_goal(&shared, owner(to), 7).expect("edit");
            let err = check(sam.automerge(), SAM, &last(&try_it, c)).expect_err("refused");
            assert!(
                err.contains("only its owner may") || err.contains("other partner's own"),
                "{to}: {err}"
            );
        }
        let before = alex.clone();
        let back = alex.edit_goal(&shared, owner("shared"), 8).expect("edit");
        check(before.automerge(), ALEX, &last(&alex, back)).expect("given back");
    }

    #[test]
    fn closing_a_round_the_other_closed_is_refused_but_closing_it_while_apart_passes() {
        let (mut alex, mut sam, _) = couple();
        let round = crate::model::Round {
            id: "r".repeat(32),
            opened_by: ALEX.into(),
            opened_at: 4,
            ends_at: 1_000_000,
            closed_by: None,
            closed_at: None,
        };
        let opened = alex
            .put_new(&[crate::doc::New::Round(&round)], "open", 4)
            .expect("open");
        sam.apply(opened.into_iter().collect()).expect("apply");
        let ids = [round.id.clone()];
        let closed = alex.close_rounds(&ids, ALEX, 5).expect("close");
        let mut apart = sam.clone();
        let mine = apart.close_rounds(&ids, SAM, 6).expect("close");
        check(alex.automerge(), SAM, &last(&apart, mine)).expect("closed while apart");
        sam.apply(closed.into_iter().collect()).expect("apply");
        let before = sam.clone();
        let again = sam.close_rounds(&ids, SAM, 7).expect("close");
        let err = check(before.automerge(), SAM, &last(&sam, again)).expect_err("refused");
        assert!(err.contains("which is closed"), "{err}");
    }

    #[test]
    fn a_rating_in_the_other_partners_name_is_refused() {
        let (_, mut sam, goal) = couple();
        let before = sam.clone();
        let (_, c) = sam
            .rate(&goal, ALEX, Level::MUCH_LESS, None, 5)
            .expect("rate");
        let err = check(before.automerge(), SAM, &last(&sam, c)).expect_err("refused");
        assert!(err.contains("another person's name"), "{err}");
    }

    #[test]
    fn renaming_the_other_partner_is_refused() {
        let (_, mut sam, _) = couple();
        let before = sam.clone();
        let c = sam.set_person(ALEX, "Liar", 5).expect("rename");
        let err = check(before.automerge(), SAM, &last(&sam, c)).expect_err("refused");
        assert!(err.contains("name"), "{err}");
    }

    #[test]
    fn an_existing_rating_is_never_modified_even_by_its_rater() {
        let (mut alex, _, goal) = couple();
        let (rating, _) = alex.rate(&goal, ALEX, Level::MORE, None, 5).expect("rate");
        let before = alex.clone();
        let c = alex
            .raw_transaction("rewrite", 6, |tx| {
                use automerge::transaction::Transactable;
                let (_, ratings) = tx
                    .get(automerge::ROOT, "ratings")?
                    .ok_or(crate::doc::DocError::Malformed("ratings"))?;
                let (_, r) = tx
                    .get(&ratings, rating.as_str())?
                    .ok_or(crate::doc::DocError::Malformed("rating"))?;
                tx.put(&r, "level", -2i64)?;
                Ok(())
            })
            .expect("raw");
        let err = check(before.automerge(), ALEX, &last(&alex, c)).expect_err("refused");
        assert!(err.contains("existing rating"), "{err}");
    }

    fn make_seals(doc: &mut SpaceDoc, at: i64) -> Vec<Change> {
        let c = doc
            .raw_transaction("rate sealed", at, |tx| {
                use automerge::transaction::Transactable;
                tx.put_object(automerge::ROOT, "seals", ObjType::Map)?;
                Ok(())
            })
            .expect("raw");
        c.into_iter().collect()
    }

    /// A couple in a space made before `rounds` and `seals` came with every space.
    fn couple_of_an_older_space() -> (SpaceDoc, SpaceDoc) {
        let mut alex = SpaceDoc::empty(ActorId::random());
        let first = alex
            .raw_transaction("create space", 1, |tx| {
                use automerge::transaction::Transactable;
                tx.put(automerge::ROOT, "schema", crate::model::SCHEMA_VERSION)?;
                for coll in ["people", "goals", "ratings", "reflections"] {
                    tx.put_object(automerge::ROOT, coll, ObjType::Map)?;
                }
                Ok(())
            })
            .expect("create");
        let mut sam = SpaceDoc::empty(ActorId::random());
        sam.apply(first.into_iter().collect()).expect("apply");
        (alex, sam)
    }

    #[test]
    fn a_late_collection_made_while_apart_passes_but_one_made_over_another_is_refused() {
        let (mut alex, mut sam) = couple_of_an_older_space();
        let before = alex.clone();
        make_seals(&mut alex, 5);
        // Sam makes his own while apart: a conflict readers merge.
        let concurrent = make_seals(&mut sam, 5);
        check(alex.automerge(), SAM, &concurrent).expect("made while apart");
        // Sam, having Alex's, makes one over it: it would hide Alex's seals.
        let mut sam = before.clone();
        sam.apply(alex.automerge().get_changes(&[])).expect("apply");
        let over = make_seals(&mut sam, 6);
        let err = check(alex.automerge(), SAM, &over).expect_err("refused");
        assert!(err.contains("replaces"), "{err}");
    }
}
