//! One space's Automerge document and the operations on it.
//!
//! Every operation is one Automerge transaction, so it becomes exactly one change with
//! the device's actor id, a message naming the operation and a timestamp (ms since the
//! Unix epoch). Operations reconcile only the properties they touch (via `autosurgeon`'s
//! `reconcile_prop`), so concurrent edits of different fields never overwrite each other.

use std::collections::BTreeMap;

use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{ActorId, Automerge, Change, ChangeHash, ObjId, ObjType, ROOT, ReadDoc};
use autosurgeon::{Text, hydrate_prop, reconcile_prop};

use crate::ids::new_id;
use crate::model::{Goal, Levels, Person, Rating, Reflection, SCHEMA_VERSION};
use crate::vocab::{Area, Level, Status};

/// The root collections of a space document, each a map. A new space holds every one
/// from the start (`rounds` and `seals` came later: older spaces get them on first use,
/// [`LATE_COLLECTIONS`]), so a rating never has to create one and can be written without
/// loading the document (`doc/detached.rs`).
pub const ROOT_COLLECTIONS: [&str; 6] = [
    "people",
    "goals",
    "ratings",
    "reflections",
    "rounds",
    "seals",
];

mod detached;
mod rituals;
mod steps;
mod typed;
pub use detached::{New, SEALED_MESSAGE, Tip};
pub use rituals::{LATE_COLLECTIONS, REFLECT_MESSAGE, UNDO_MESSAGE, new_reflection};
pub use typed::{blank, validate_date};

/// What to do about a value out of range, when it comes from this device's own command.
fn invalid_advice(e: &crate::model::Invalid) -> &'static str {
    use crate::model::Invalid;
    match e {
        Invalid::Time(_) => {
            "set this device's clock right (automatic time), or DUET_NOW to a time in range"
        }
        Invalid::TooLong { .. } => "shorten it",
        _ => "pick a value in range",
    }
}

/// What went wrong with a document operation.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// No goal with this id.
    #[error("no goal with id {0}")]
    NoSuchGoal(String),
    /// No reflection with this id.
    #[error("no reflection with id {0}")]
    NoSuchReflection(String),
    /// No step with this id in the goal.
    #[error("no step with id {0} in this goal")]
    NoSuchStep(String),
    /// The document lacks one of its root collections.
    #[error("the document has no `{0}` collection; it was not created by duet or is damaged")]
    Malformed(&'static str),
    /// A text argument was empty (or showed nothing: only invisible characters).
    #[error("the {0} is empty (or only invisible characters); write a few words")]
    Empty(&'static str),
    /// An invalid date.
    #[error("due date must be YYYY-MM-DD, with a year of four digits (got {0:?})")]
    BadDate(String),
    /// Automerge refused the operation or the data.
    #[error("document error: {0}")]
    Automerge(Box<automerge::AutomergeError>),
    /// The data did not have the expected shape.
    #[error("document data has an unexpected shape: {0}")]
    Hydrate(Box<autosurgeon::HydrateError>),
    /// Writing typed data failed.
    #[error("could not write to the document: {0}")]
    Reconcile(Box<autosurgeon::ReconcileError>),
    /// A value outside the model's ranges (every device would refuse to read it).
    #[error("{0}; nothing was written: {advice}", advice = invalid_advice(.0))]
    Invalid(crate::model::Invalid),
    /// Changing whose goal it is, of a goal that is the other person's own (every other
    /// device would refuse the change, and this device's later ones with it).
    #[error("this goal is {0}'s own: only {0} can make it a goal of you both; nothing was written")]
    OthersGoal(String),
}

// Not `#[from]`: that would make the value also the error's source, and a chain of
// errors printed whole would say it twice.
impl From<crate::model::Invalid> for DocError {
    fn from(e: crate::model::Invalid) -> Self {
        DocError::Invalid(e)
    }
}

// The library errors are large; boxing keeps every `Result` in the engine small.
impl From<automerge::AutomergeError> for DocError {
    fn from(e: automerge::AutomergeError) -> Self {
        DocError::Automerge(Box::new(e))
    }
}

impl From<autosurgeon::HydrateError> for DocError {
    fn from(e: autosurgeon::HydrateError) -> Self {
        DocError::Hydrate(Box::new(e))
    }
}

impl From<autosurgeon::ReconcileError> for DocError {
    fn from(e: autosurgeon::ReconcileError) -> Self {
        DocError::Reconcile(Box::new(e))
    }
}

/// The fields of a new goal.
#[derive(Debug, Clone, Default)]
pub struct NewGoal {
    /// Title.
    pub title: String,
    /// Area.
    pub area: Option<Area>,
    /// Why it matters.
    pub why: String,
    /// Level descriptions, indexed by level.
    pub levels: BTreeMap<i8, String>,
    /// `None` for shared, or the owning person id.
    pub owner: Option<String>,
    /// Due date `YYYY-MM-DD`.
    pub due: Option<String>,
}

/// Changes to a goal's fields; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct GoalEdit {
    /// New title.
    pub title: Option<String>,
    /// New area.
    pub area: Option<Area>,
    /// New why.
    pub why: Option<String>,
    /// New level descriptions.
    pub levels: BTreeMap<i8, String>,
    /// New due date; `Some(None)` clears it.
    pub due: Option<Option<String>>,
    /// New weight for a person id.
    pub weight: Option<(String, f64)>,
    /// New owner: `shared` or a person id.
    pub owner: Option<String>,
}

/// A space's document with this device as the author of new changes.
#[derive(Debug, Clone)]
pub struct SpaceDoc {
    doc: Automerge,
}

impl SpaceDoc {
    /// An empty document authored by `actor` (for a device joining an existing space).
    pub fn empty(actor: ActorId) -> Self {
        SpaceDoc {
            doc: Automerge::new().with_actor(actor),
        }
    }

    /// A fresh space document with its root collections, created by `actor`.
    pub fn create(actor: ActorId, now: i64) -> Result<(Self, Change), DocError> {
        let mut doc = SpaceDoc::empty(actor);
        let change = doc.commit("create space", now, |tx| {
            tx.put(ROOT, "schema", SCHEMA_VERSION)?;
            for coll in ROOT_COLLECTIONS {
                tx.put_object(ROOT, coll, ObjType::Map)?;
            }
            Ok(())
        })?;
        // `create` always writes, so there is always a change.
        let change = change.ok_or(DocError::Malformed("schema"))?;
        Ok((doc, change))
    }

    /// Rebuilds a document from a saved snapshot plus the changes made after it.
    pub fn load(
        actor: ActorId,
        snapshot: Option<&[u8]>,
        tail: Vec<Change>,
    ) -> Result<Self, DocError> {
        let doc = match snapshot {
            Some(bytes) => Automerge::load(bytes)?.with_actor(actor),
            None => Automerge::new().with_actor(actor),
        };
        let mut doc = SpaceDoc { doc };
        doc.apply(tail)?;
        Ok(doc)
    }

    /// Applies changes received from elsewhere, in one batch.
    pub fn apply(&mut self, changes: Vec<Change>) -> Result<(), DocError> {
        if !changes.is_empty() {
            self.doc.apply_changes(changes)?;
            // Automerge finds this actor's own changes (`get_last_local_change`, which
            // the document's tip records) only once it is set with them present.
            let actor = self.doc.get_actor().clone();
            self.doc.set_actor(actor);
        }
        Ok(())
    }

    /// The underlying Automerge document.
    pub fn automerge(&self) -> &Automerge {
        &self.doc
    }

    /// The compressed whole-document form, used as the store's snapshot.
    pub fn save(&self) -> Vec<u8> {
        self.doc.save()
    }

    /// The current heads.
    pub fn heads(&self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// Whether the document has been initialised (has its root collections).
    pub fn is_initialised(&self) -> bool {
        self.collection("goals").is_ok()
    }

    fn commit<F>(&mut self, message: &str, now: i64, f: F) -> Result<Option<Change>, DocError>
    where
        F: FnOnce(&mut Transaction<'_>) -> Result<(), DocError>,
    {
        let msg = message.to_string();
        let outcome = self
            .doc
            .transact_with(
                |_| CommitOptions::default().with_message(msg).with_time(now),
                f,
            )
            .map_err(|failure| failure.error)?;
        Ok(outcome
            .hash
            .and_then(|hash| self.doc.get_change_by_hash(&hash)))
    }

    /// Runs `f` as one raw Automerge transaction authored by this device, outside the
    /// typed operations. Only for tests that must write what duet itself never writes
    /// (a partner's malformed entity, as another version or a bug could leave it); the
    /// engine never calls it.
    #[doc(hidden)]
    pub fn raw_transaction<F>(
        &mut self,
        message: &str,
        now: i64,
        f: F,
    ) -> Result<Option<Change>, DocError>
    where
        F: FnOnce(&mut Transaction<'_>) -> Result<(), DocError>,
    {
        self.commit(message, now, f)
    }

    fn collection(&self, name: &'static str) -> Result<ObjId, DocError> {
        match self.doc.get(ROOT, name)? {
            Some((automerge::Value::Object(ObjType::Map), id)) => Ok(id),
            _ => Err(DocError::Malformed(name)),
        }
    }

    fn step_obj(&self, goal_id: &str, step_id: &str) -> Result<ObjId, DocError> {
        let goal = self.goal_obj(goal_id)?;
        let steps = match self.doc.get(&goal, "steps")? {
            Some((automerge::Value::Object(ObjType::Map), id)) => id,
            _ => return Err(DocError::Malformed("steps")),
        };
        match self.doc.get(&steps, step_id)? {
            Some((automerge::Value::Object(ObjType::Map), id)) => Ok(id),
            _ => Err(DocError::NoSuchStep(step_id.to_string())),
        }
    }

    fn goal_obj(&self, goal_id: &str) -> Result<ObjId, DocError> {
        let goals = self.collection("goals")?;
        match self.doc.get(&goals, goal_id)? {
            Some((automerge::Value::Object(ObjType::Map), id)) => Ok(id),
            _ => Err(DocError::NoSuchGoal(goal_id.to_string())),
        }
    }

    /// Records or renames a person (a partner) in the space.
    pub fn set_person(
        &mut self,
        person_id: &str,
        name: &str,
        now: i64,
    ) -> Result<Option<Change>, DocError> {
        if blank(name) {
            return Err(DocError::Empty("name"));
        }
        let people = self.collection("people")?;
        let person = Person {
            name: name.trim().to_string(),
        };
        person.validate()?;
        self.commit("set person", now, |tx| {
            reconcile_prop(tx, &people, person_id, &person)?;
            Ok(())
        })
    }

    /// Adds a goal; returns its id and the change.
    pub fn add_goal(
        &mut self,
        author: &str,
        new: NewGoal,
        now: i64,
    ) -> Result<(String, Option<Change>), DocError> {
        if blank(&new.title) {
            return Err(DocError::Empty("title"));
        }
        let due = new.due.as_deref().map(validate_date).transpose()?;
        let goals = self.collection("goals")?;
        let mut levels = Levels::default();
        for (level, text) in &new.levels {
            if let Some(slot) = levels.get_mut(*level) {
                *slot = Text::with_value(text);
            }
        }
        let goal = Goal {
            id: new_id(),
            area: new.area.unwrap_or(Area::Other).into(),
            title: Text::with_value(new.title.trim()),
            why: Text::with_value(&new.why),
            levels,
            owner: new.owner.unwrap_or_else(|| "shared".to_string()),
            status: Status::Active.into(),
            due,
            created_by: author.to_string(),
            created_at: now,
            weights: BTreeMap::new(),
            steps: BTreeMap::new(),
        };
        goal.validate()?;
        let id = goal.id.clone();
        let change = self.commit("add goal", now, |tx| {
            reconcile_prop(tx, &goals, id.as_str(), &goal)?;
            Ok(())
        })?;
        Ok((id, change))
    }

    /// Edits a goal's fields. Text fields are updated by diff so concurrent edits merge.
    pub fn edit_goal(
        &mut self,
        goal_id: &str,
        edit: GoalEdit,
        now: i64,
    ) -> Result<Option<Change>, DocError> {
        let obj = self.goal_obj(goal_id)?;
        if edit.title.as_ref().is_some_and(|t| blank(t)) {
            return Err(DocError::Empty("title"));
        }
        let due = match &edit.due {
            Some(Some(d)) => Some(Some(validate_date(d)?)),
            Some(None) => Some(None),
            None => None,
        };
        use crate::model::limits::{MAX_TEXT_CHARS, MAX_WEIGHT};
        let texts = edit
            .title
            .iter()
            .chain(&edit.why)
            .chain(edit.levels.values());
        for t in texts {
            let len = t.chars().take(MAX_TEXT_CHARS + 1).count();
            if len > MAX_TEXT_CHARS {
                return Err(crate::model::Invalid::TooLong {
                    len,
                    max: MAX_TEXT_CHARS,
                }
                .into());
            }
        }
        if let Some((_, w)) = &edit.weight
            && !(w.is_finite() && (0.0..=MAX_WEIGHT).contains(w))
        {
            return Err(crate::model::Invalid::Weight(*w).into());
        }
        self.commit("edit goal", now, |tx| {
            if let Some(title) = &edit.title {
                update_text(tx, &obj, "title", title.trim())?;
            }
            if let Some(why) = &edit.why {
                update_text(tx, &obj, "why", why)?;
            }
            if let Some(area) = edit.area {
                reconcile_prop(tx, &obj, "area", area.as_str())?;
            }
            if !edit.levels.is_empty() {
                let mut levels: Levels = hydrate_prop(&*tx, &obj, "levels")?;
                for (level, text) in &edit.levels {
                    if let Some(slot) = levels.get_mut(*level) {
                        slot.update(text);
                    }
                }
                reconcile_prop(tx, &obj, "levels", &levels)?;
            }
            if let Some(due) = &due {
                reconcile_prop(tx, &obj, "due", due)?;
            }
            if let Some(owner) = &edit.owner {
                reconcile_prop(tx, &obj, "owner", owner.as_str())?;
            }
            if let Some((person, weight)) = &edit.weight {
                let mut weights: BTreeMap<String, f64> = hydrate_prop(&*tx, &obj, "weights")?;
                weights.insert(person.clone(), *weight);
                reconcile_prop(tx, &obj, "weights", &weights)?;
            }
            Ok(())
        })
    }

    /// Sets a goal's status.
    pub fn set_status(
        &mut self,
        goal_id: &str,
        status: Status,
        now: i64,
    ) -> Result<Option<Change>, DocError> {
        let obj = self.goal_obj(goal_id)?;
        self.commit("set status", now, |tx| {
            reconcile_prop(tx, &obj, "status", status.as_str())?;
            Ok(())
        })
    }

    /// Records `rater`'s GAS rating of a goal; returns the rating id.
    pub fn rate(
        &mut self,
        goal_id: &str,
        rater: &str,
        level: Level,
        note: Option<&str>,
        now: i64,
    ) -> Result<(String, Option<Change>), DocError> {
        self.goal_obj(goal_id)?;
        let ratings = self.collection("ratings")?;
        let rating = Rating {
            id: new_id(),
            goal: goal_id.to_string(),
            rater: rater.to_string(),
            at: now,
            level,
            note: note.map(str::to_string).filter(|n| !n.trim().is_empty()),
            round: None,
            reveals: None,
            salt: None,
            corrects: None,
            withdrawn: None,
        };
        rating.validate()?;
        let id = rating.id.clone();
        let change = self.commit("rate", now, |tx| {
            reconcile_prop(tx, &ratings, id.as_str(), &rating)?;
            Ok(())
        })?;
        Ok((id, change))
    }

    /// Records a reflection; returns its id.
    pub fn reflect(
        &mut self,
        author: &str,
        goal_id: Option<&str>,
        prompt: Option<&str>,
        text: &str,
        now: i64,
    ) -> Result<(String, Option<Change>), DocError> {
        let reflection = rituals::new_reflection(author, goal_id, prompt, text, now);
        let change = self.put_reflection(&reflection, now)?;
        Ok((reflection.id, change))
    }

    /// Every person of the space by person id.
    pub fn people(&self) -> Result<BTreeMap<String, Person>, DocError> {
        if !self.is_initialised() {
            return Ok(BTreeMap::new());
        }
        Ok(hydrate_prop(&self.doc, ROOT, "people")?)
    }

    /// Every goal, sorted by creation time.
    pub fn goals(&self) -> Result<Vec<Goal>, DocError> {
        if !self.is_initialised() {
            return Ok(Vec::new());
        }
        let map: BTreeMap<String, Goal> = hydrate_prop(&self.doc, ROOT, "goals")?;
        let mut goals: Vec<Goal> = map.into_values().collect();
        goals.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(goals)
    }

    /// One goal.
    pub fn goal(&self, goal_id: &str) -> Result<Goal, DocError> {
        self.goal_obj(goal_id)?;
        Ok(hydrate_prop(&self.doc, self.collection("goals")?, goal_id)?)
    }

    /// Every rating, oldest first.
    pub fn ratings(&self) -> Result<Vec<Rating>, DocError> {
        if !self.is_initialised() {
            return Ok(Vec::new());
        }
        let map: BTreeMap<String, Rating> = hydrate_prop(&self.doc, ROOT, "ratings")?;
        let mut v: Vec<Rating> = map.into_values().collect();
        v.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        Ok(v)
    }

    /// Every reflection, oldest first.
    pub fn reflections(&self) -> Result<Vec<Reflection>, DocError> {
        if !self.is_initialised() {
            return Ok(Vec::new());
        }
        let map: BTreeMap<String, Reflection> = hydrate_prop(&self.doc, ROOT, "reflections")?;
        let mut v: Vec<Reflection> = map.into_values().collect();
        v.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        Ok(v)
    }
}

/// Replaces a co-edited text property with `value`, as a diff of what it holds. The text
/// is read inside the transaction that writes it, so the heads it is read at are those
/// it is written at: read outside, a document whose newest change by this device is not
/// a head (the partner's later change depends on it), or that has several heads after a
/// merge, makes autosurgeon report stale heads, since the transaction lists this device's
/// last change among its deps.
pub(crate) fn update_text(
    tx: &mut Transaction<'_>,
    obj: &ObjId,
    prop: &str,
    value: &str,
) -> Result<(), DocError> {
    let mut text: Text = hydrate_prop(&*tx, obj, prop)?;
    text.update(value);
    reconcile_prop(tx, obj, prop, &text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A due date is written only as every reader takes it: a year of five digits
    /// (which chrono reads) would hide the goal on both devices.
    #[test]
    fn a_due_date_is_written_only_as_readers_take_it() {
        assert_eq!(
            validate_date(" 2027-01-31 ").ok().as_deref(),
            Some("2027-01-31")
        );
        for bad in ["+10000-01-01", "-0001-01-01", "2027-02-30", "27-1-31"] {
            assert!(validate_date(bad).is_err(), "{bad}");
        }
    }

    /// Texts with accents, emoji (several code points each) and invisible marks are
    /// edited where the edit is, not at a byte offset taken for a character one.
    #[test]
    fn edits_of_texts_beyond_ascii_write_exactly_the_new_text() {
        let (mut doc, _) = SpaceDoc::create(ActorId::random(), 1).expect("create");
        let cases = [
            ("Café plan", "Café plan together"),
            ("👩‍❤️‍👨 plan", "plan"),
            (
                "Be kinder (ça va, très bien)",
                "Be kinder (long title shortened by Alex)",
            ),
            ("\u{202e}right to left\u{202c} é", "right to left, é 👨"),
        ];
        for (i, (before, after)) in cases.into_iter().enumerate() {
            let (goal, _) = doc
                .add_goal(
                    "p",
                    NewGoal {
                        title: before.into(),
                        ..Default::default()
                    },
                    2 + i as i64,
                )
                .expect("goal");
            doc.edit_goal(
                &goal,
                GoalEdit {
                    title: Some(after.into()),
                    ..Default::default()
                },
                3 + i as i64,
            )
            .expect("edited");
            assert_eq!(doc.goal(&goal).expect("goal").title.as_str(), after);
        }
    }

    #[test]
    fn values_no_device_could_read_back_are_refused_before_they_are_written() {
        let (mut doc, _) = SpaceDoc::create(ActorId::random(), 1).expect("create");
        let long = "x".repeat(crate::model::limits::MAX_TEXT_CHARS + 1);
        let (goal, _) = doc
            .add_goal(
                "p",
                NewGoal {
                    title: "Walk".into(),
                    ..Default::default()
                },
                2,
            )
            .expect("goal");
        let heads = doc.heads();
        assert!(matches!(
            doc.rate(&goal, "p", crate::Level::MORE, Some(&long), 3),
            Err(DocError::Invalid(_))
        ));
        assert!(matches!(
            doc.reflect("p", None, None, &long, 3),
            Err(DocError::Invalid(_))
        ));
        assert!(matches!(
            doc.set_person("p", &"n".repeat(201), 3),
            Err(DocError::Invalid(_))
        ));
        assert!(matches!(
            doc.edit_goal(
                &goal,
                GoalEdit {
                    weight: Some(("p".into(), f64::NAN)),
                    ..Default::default()
                },
                3
            ),
            Err(DocError::Invalid(_))
        ));
        assert_eq!(doc.heads(), heads, "nothing was written");
    }
}
