//! The shape of what a partner writes into a goal that already exists, and into a round.
//!
//! A goal is shared: both partners edit its text, and it holds the other's steps and,
//! through its ratings, the other's progress. It is read whole (`model::Goal`), so one
//! field of another datatype, a deleted title or a step without its text would make the
//! whole goal unreadable on every device: a partner could hide the other's own goal,
//! with its ratings, from every list and from progress. So each operation into an
//! existing goal is checked against the model's datatype of the field it writes, per
//! operation and with nothing read from the document, which keeps the verdict the same
//! on every device whatever order concurrent changes reach it in:
//!
//! - `title`, `why`, the five levels and a step's `text` are made only as text objects;
//!   what happens inside one (splices) is the text's own;
//! - the scalars (`area`, `status`, `due`, a weight, a step's `assignee`, `done_by`,
//!   `done_at`) are put only with their datatype, within the model's ranges
//!   (`model::valid`), and the optional ones also as null;
//! - no field the model knows is deleted, an `id` is never changed, `levels` is never
//!   replaced, and a step is made only as a map that ends the event with its `id`,
//!   `text`, `created_by` and `created_at` (see [`NewSteps`]).
//!
//! A text longer than the model's limit cannot be told apart per operation (two
//! concurrent splices may each be short), so the reader clips it instead
//! (`model::check::text`). Keys the model does not know stay free (a newer version's
//! fields).

use std::collections::HashMap;

use automerge::ObjType;
use automerge::ScalarValue as S;
use automerge::legacy::OpType;

use super::Violation;
use crate::model::valid;

/// The five level texts of a goal.
const LEVELS: [&str; 5] = ["much_less", "less", "expected", "more", "much_more"];

/// What a known field holds.
#[derive(Clone, Copy)]
enum Kind {
    /// A text object.
    Text,
    /// An id or a vocabulary word (a string, `model::valid::id`).
    Id,
    /// An id or null.
    OptId,
    /// A time (an int, `model::valid::time`).
    Time,
    /// A time or null.
    OptTime,
    /// A due date or null.
    OptDue,
    /// Never written once the entity exists.
    Fixed,
}

/// The kind of a field of an existing goal (`None`: not one the model knows, or one
/// the other rules decide alone).
fn goal_field(field: &str) -> Option<Kind> {
    Some(match field {
        "id" => Kind::Fixed,
        "title" | "why" => Kind::Text,
        "area" | "status" => Kind::Id,
        "due" => Kind::OptDue,
        _ => return None,
    })
}

/// The kind of a field of a step.
fn step_field(field: &str) -> Option<Kind> {
    Some(match field {
        "text" => Kind::Text,
        "assignee" | "done_by" => Kind::OptId,
        "done_at" => Kind::OptTime,
        _ => return None,
    })
}

/// Whether `action` puts a value of `kind`.
fn fits(kind: Kind, action: &OpType) -> bool {
    match (kind, action) {
        (Kind::Text, OpType::Make(ObjType::Text)) => true,
        (Kind::OptId | Kind::OptTime | Kind::OptDue, OpType::Put(S::Null)) => true,
        (Kind::Id | Kind::OptId, OpType::Put(S::Str(s))) => valid::id(s).is_ok(),
        (Kind::Time | Kind::OptTime, OpType::Put(S::Int(t))) => valid::time(*t).is_ok(),
        (Kind::OptDue, OpType::Put(S::Str(s))) => valid::due(s).is_ok(),
        _ => false,
    }
}

fn what(kind: Kind) -> &'static str {
    match kind {
        Kind::Text => "a text",
        Kind::Id => "an id",
        Kind::OptId => "an id or null",
        Kind::Time => "a time",
        Kind::OptTime => "a time or null",
        Kind::OptDue => "a YYYY-MM-DD date or null",
        Kind::Fixed => "never changed",
    }
}

/// One operation writing `field` of an entity that must keep its shape.
fn field_op(
    entity: &str,
    field: &str,
    kind: Option<Kind>,
    action: &OpType,
) -> Result<(), Violation> {
    let Some(kind) = kind else {
        return Ok(());
    };
    match (kind, action) {
        (_, OpType::Delete) => Err(format!("it deletes the {field} of {entity}")),
        (Kind::Fixed, _) => Err(format!("it changes the {field} of {entity}")),
        (kind, action) if fits(kind, action) => Ok(()),
        (kind, _) => Err(format!(
            "it writes the {field} of {entity} as other than {}",
            what(kind)
        )),
    }
}

/// An operation into an existing goal `goal`, `keys` deep (collection, goal id,
/// field, ...) with `depth` steps from the root (more than `keys.len()` inside a text).
/// Steps are [`step_op`]'s.
pub(super) fn goal_op(
    goal: &str,
    keys: &[&str],
    depth: usize,
    action: &OpType,
) -> Result<(), Violation> {
    let at_key = depth == keys.len();
    match keys.get(2..) {
        Some([field]) if at_key => {
            field_op(&format!("goal {goal}"), field, goal_field(field), action)
        }
        Some(["levels", level]) if at_key => {
            let kind = LEVELS.contains(level).then_some(Kind::Text);
            field_op(
                &format!("goal {goal}"),
                &format!("level {level}"),
                kind,
                action,
            )
        }
        Some(["weights", _]) if at_key => match action {
            OpType::Delete => Ok(()),
            OpType::Put(S::F64(w)) if valid::weight(*w).is_ok() => Ok(()),
            _ => Err(format!(
                "it writes a weight of goal {goal} as other than a number from 0 to {}",
                crate::model::limits::MAX_WEIGHT
            )),
        },
        _ => Ok(()),
    }
}

/// An operation into a step of an existing goal: `keys` are collection, goal, `steps`,
/// step, field. `new`: the step is made by this event.
pub(super) fn step_op(
    keys: &[&str],
    depth: usize,
    action: &OpType,
    new: Option<&mut NewSteps>,
) -> Result<(), Violation> {
    let (Some(&goal), Some(&step)) = (keys.get(1), keys.get(3)) else {
        return Ok(());
    };
    let at_key = depth == keys.len();
    let entity = format!("step {step} of goal {goal}");
    match (keys.get(4), new) {
        (None, Some(new)) if at_key => {
            if !matches!(action, OpType::Make(ObjType::Map)) {
                return Err(format!("it makes {entity} as other than a map"));
            }
            new.made(goal, step)
        }
        (Some(&field), new) if at_key => {
            let kind = match (field, &new) {
                ("id", None) => Some(Kind::Fixed),
                ("id" | "created_by", Some(_)) => Some(Kind::Id),
                ("created_at", Some(_)) => Some(Kind::Time),
                _ => step_field(field),
            };
            field_op(&entity, field, kind, action)?;
            if let Some(new) = new {
                new.wrote(goal, step, field);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The fields a step needs to be read (`model::Step`'s required ones).
const STEP_NEEDS: [&str; 4] = ["id", "text", "created_by", "created_at"];

/// The steps an event makes in existing goals, with the required fields written into
/// each: a step made without one would make its goal unreadable.
#[derive(Default)]
pub(super) struct NewSteps {
    /// (goal, step) -> which of [`STEP_NEEDS`] it has, one bit each.
    steps: HashMap<(String, String), u8>,
}

impl NewSteps {
    fn made(&mut self, goal: &str, step: &str) -> Result<(), Violation> {
        let key = (goal.to_string(), step.to_string());
        if self.steps.insert(key, 0).is_some() {
            // Two maps at one key: either may win the merge, and only one was filled.
            return Err(format!("it makes step {step} of goal {goal} twice"));
        }
        Ok(())
    }

    fn wrote(&mut self, goal: &str, step: &str, field: &str) {
        let Some(bit) = STEP_NEEDS.iter().position(|f| *f == field) else {
            return;
        };
        if let Some(has) = self.steps.get_mut(&(goal.to_string(), step.to_string())) {
            *has |= 1 << bit;
        }
    }

    /// At the end of the event: every step made has what it needs.
    pub(super) fn finish(&self) -> Result<(), Violation> {
        for ((goal, step), has) in &self.steps {
            if let Some(missing) = (0..STEP_NEEDS.len()).find(|b| has & (1 << b) == 0) {
                return Err(format!(
                    "it makes step {step} of goal {goal} with no {}",
                    STEP_NEEDS[missing]
                ));
            }
        }
        Ok(())
    }
}

/// The `closed_at` of a round: a time (a round is closed once, see `rituals`).
pub(super) fn closed_at(round: &str, action: &OpType) -> Result<(), Violation> {
    match action {
        OpType::Put(S::Int(t)) if valid::time(*t).is_ok() => Ok(()),
        _ => Err(format!("it closes round {round} at other than a time")),
    }
}

#[cfg(test)]
mod tests {
    use automerge::transaction::{Transactable, Transaction};
    use automerge::{ActorId, ObjId, ROOT, ReadDoc};

    use crate::doc::{DocError, NewGoal, SpaceDoc};
    use crate::model::limits::MAX_TEXT_CHARS;

    const ALEX: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const SAM: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    /// Alex's space with Alex's own goal, and Sam's copy of it.
    fn couple() -> (SpaceDoc, SpaceDoc, String) {
        let (mut alex, first) = SpaceDoc::create(ActorId::random(), 1).expect("create");
        let mut changes = vec![first];
        changes.extend(alex.set_person(ALEX, "Alex", 2).expect("name"));
        let mine = NewGoal {
            title: "Walk".into(),
            owner: Some(ALEX.into()),
            ..Default::default()
        };
        let (goal, c) = alex.add_goal(ALEX, mine, 3).expect("goal");
        changes.extend(c);
        let mut sam = SpaceDoc::empty(ActorId::random());
        sam.apply(changes).expect("apply");
        (alex, sam, goal)
    }

    fn goal_obj(tx: &Transaction<'_>, goal: &str) -> Result<ObjId, DocError> {
        let (_, goals) = tx.get(ROOT, "goals")?.ok_or(DocError::Malformed("goals"))?;
        let (_, g) = tx.get(&goals, goal)?.ok_or(DocError::Malformed("goal"))?;
        Ok(g)
    }

    /// The verdict on one change Sam's modified client makes in Alex's goal.
    fn sam_writes(
        f: impl FnOnce(&mut Transaction<'_>, ObjId) -> Result<(), DocError>,
    ) -> (Result<(), String>, SpaceDoc, String) {
        let (alex, mut sam, goal) = couple();
        let g = goal.clone();
        let c = sam
            .raw_transaction("crafted", 4, move |tx| {
                let obj = goal_obj(tx, &g)?;
                f(tx, obj)
            })
            .expect("craft");
        let verdict =
            super::super::check(alex.automerge(), SAM, &c.into_iter().collect::<Vec<_>>());
        (verdict, sam, goal)
    }

    fn step(tx: &mut Transaction<'_>, g: &ObjId, text: bool) -> Result<ObjId, DocError> {
        let (_, steps) = tx.get(g, "steps")?.ok_or(DocError::Malformed("steps"))?;
        let s = tx.put_object(&steps, "s1", automerge::ObjType::Map)?;
        tx.put(&s, "id", "s1")?;
        if text {
            let t = tx.put_object(&s, "text", automerge::ObjType::Text)?;
            tx.splice_text(&t, 0, 0, "shoes")?;
        }
        tx.put(&s, "created_by", SAM)?;
        tx.put(&s, "created_at", 4)?;
        for absent in ["assignee", "done_by", "done_at"] {
            tx.put(&s, absent, automerge::ScalarValue::Null)?;
        }
        Ok(s)
    }

    /// Each crafted write would make Alex's goal unreadable on every device (it is read
    /// whole): each is refused, and Sam's copy shows the harm it would do.
    #[test]
    fn a_partner_cannot_make_the_others_goal_unreadable() {
        type Craft = fn(&mut Transaction<'_>, ObjId) -> Result<(), DocError>;
        let crafts: [(&str, Craft); 9] = [
            ("title of goal", |tx, g| Ok(tx.put(&g, "title", 7)?)),
            ("deletes the why", |tx, g| Ok(tx.delete(&g, "why")?)),
            ("area of goal", |tx, g| Ok(tx.put(&g, "area", "../x")?)),
            ("due of goal", |tx, g| Ok(tx.put(&g, "due", "soon")?)),
            ("changes the id", |tx, g| Ok(tx.put(&g, "id", "other")?)),
            ("level expected", |tx, g| {
                let (_, l) = tx.get(&g, "levels")?.ok_or(DocError::Malformed("l"))?;
                Ok(tx.put(&l, "expected", "plain")?)
            }),
            ("step s1 of goal", |tx, g| {
                let s = step(tx, &g, true)?;
                Ok(tx.put(&s, "done_at", "yesterday")?)
            }),
            ("with no text", |tx, g| step(tx, &g, false).map(|_| ())),
            ("weight of goal", |tx, g| {
                let (_, w) = tx.get(&g, "weights")?.ok_or(DocError::Malformed("w"))?;
                Ok(tx.put(&w, SAM, f64::NAN)?)
            }),
        ];
        for (words, craft) in crafts {
            let (verdict, sam, goal) = sam_writes(craft);
            let err = verdict.expect_err(words);
            assert!(err.contains(words), "{words}: {err}");
            if words == "changes the id" {
                continue; // read, but under another id than its ratings name
            }
            let am = sam.automerge();
            let (_, goals) = am.get(ROOT, "goals").unwrap().unwrap();
            let read: Result<crate::model::Goal, _> =
                autosurgeon::hydrate_prop(am, &goals, goal.as_str());
            assert!(
                read.is_err(),
                "{words}: the craft would not even hide the goal"
            );
        }
    }

    #[test]
    fn a_partners_honest_step_and_edits_in_the_others_goal_pass() {
        let (verdict, _, _) = sam_writes(|tx, g| {
            step(tx, &g, true)?;
            let (_, t) = tx.get(&g, "title")?.ok_or(DocError::Malformed("t"))?;
            tx.splice_text(&t, 0, 0, "Long ")?;
            tx.put(&g, "due", "2027-01-31")?;
            tx.put(&g, "status", "paused")?;
            tx.put(&g, "future_field", 3)?;
            Ok(())
        });
        verdict.expect("an honest edit passes");
    }

    #[test]
    fn a_text_past_the_limit_is_read_clipped_not_refused() {
        let (mut alex, _, goal) = couple();
        alex.raw_transaction("long", 5, |tx| {
            let g = goal_obj(tx, &goal)?;
            let (_, t) = tx.get(&g, "why")?.ok_or(DocError::Malformed("why"))?;
            tx.splice_text(&t, 0, 0, &"y".repeat(MAX_TEXT_CHARS + 10))?;
            Ok(())
        })
        .expect("write");
        let read = alex.goal(&goal).expect("the goal still reads");
        assert_eq!(read.why.as_str().chars().count(), MAX_TEXT_CHARS);
    }
}
