//! Edits of the shared goals and of reflections (steps: `steps`): each resolves what the user typed,
//! makes the change in one transaction under the home's write lock, and returns the ids.

use std::collections::BTreeMap;

use crate::device::{Device, DeviceError};
use crate::doc::{DocError, GoalEdit, NewGoal};
use crate::store::SpaceKind;
use crate::vocab::{Area, Status};

/// A new goal as the user describes it.
#[derive(Debug, Clone, Default)]
pub struct NewGoalInput {
    /// Title.
    pub title: String,
    /// Area.
    pub area: Option<Area>,
    /// Why it matters.
    pub why: Option<String>,
    /// Level descriptions by level (-2..2).
    pub levels: BTreeMap<i8, String>,
    /// Due day, YYYY-MM-DD.
    pub due: Option<String>,
    /// A goal of this person's own (about them, rated by both), not of both.
    pub mine: bool,
}

/// Whose a goal is: both partners', or the person of this device's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Both partners' (`shared`).
    Shared,
    /// This person's own (`me`): about them, still seen and rated by both.
    Me,
}

impl std::str::FromStr for Owner {
    type Err = String;

    fn from_str(s: &str) -> Result<Owner, String> {
        match s.trim().to_lowercase().as_str() {
            "shared" | "both" => Ok(Owner::Shared),
            "me" | "mine" => Ok(Owner::Me),
            other => Err(format!(
                "a goal is `shared` or your own (`me`); got {other:?}. Only your partner can make a goal theirs"
            )),
        }
    }
}

/// What to change in a goal; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct GoalChanges {
    /// New title.
    pub title: Option<String>,
    /// New area.
    pub area: Option<Area>,
    /// New "why".
    pub why: Option<String>,
    /// Level descriptions to set.
    pub levels: BTreeMap<i8, String>,
    /// New due day; `Some(None)` clears it.
    pub due: Option<Option<String>>,
    /// This person's weight for the goal (0 or more).
    pub weight: Option<f64>,
    /// Whose the goal is.
    pub owner: Option<Owner>,
}

/// A reflection to write.
#[derive(Debug, Clone, Default)]
pub struct ReflectionInput {
    /// The text.
    pub text: String,
    /// The goal it is about (id prefix or exact title).
    pub goal: Option<String>,
    /// The prompt it answers.
    pub prompt: Option<String>,
    /// Only on this person's devices (the personal space).
    pub private: bool,
}

impl Device {
    /// Adds a goal to the shared space; returns its id.
    pub fn add_goal(&mut self, input: NewGoalInput) -> Result<String, DeviceError> {
        let now = self.now();
        let new = NewGoal {
            title: input.title,
            area: input.area,
            why: input.why.unwrap_or_default(),
            levels: input.levels,
            owner: input.mine.then(|| self.me.person_id.to_string()),
            due: input.due,
        };
        self.edit(SpaceKind::Shared, |doc, me| {
            let (id, c) = doc.add_goal(&me.person_id, new, now)?;
            Ok((id, c.into_iter().collect()))
        })
    }

    /// Edits a goal; returns its id and whether anything changed.
    pub fn edit_goal(
        &mut self,
        query: &str,
        changes: GoalChanges,
    ) -> Result<(String, bool), DeviceError> {
        if let Some(w) = changes.weight
            && (!w.is_finite() || w <= 0.0 || w > crate::model::limits::MAX_WEIGHT)
        {
            return Err(DeviceError::BadWeight(w));
        }
        let id = self.resolve_goal(query)?;
        let edit = GoalEdit {
            title: changes.title,
            area: changes.area,
            why: changes.why,
            levels: changes.levels,
            due: changes.due,
            weight: changes.weight.map(|w| (self.me.person_id.to_string(), w)),
            owner: changes.owner.map(|o| match o {
                Owner::Shared => "shared".to_string(),
                Owner::Me => self.me.person_id.to_string(),
            }),
        };
        let now = self.now();
        let changed = self.edit(SpaceKind::Shared, |doc, me| {
            // Read where the change is made: what every device will judge it by.
            let owner = match edit.owner {
                Some(_) => doc.goal_owner(&id)?,
                None => "shared".to_string(),
            };
            if owner != "shared" && owner != me.person_id.as_str() {
                let name = crate::names::shown(&doc.people()?).remove(&owner);
                return Err(DocError::OthersGoal(name.unwrap_or(owner)));
            }
            let c = doc.edit_goal(&id, edit, now)?;
            Ok((c.is_some(), c.into_iter().collect()))
        })?;
        Ok((id, changed))
    }

    /// Sets a goal's status; returns its id and whether it changed (a goal that has the
    /// status already is left as it is: nothing is written).
    pub fn set_goal_status(
        &mut self,
        query: &str,
        status: Status,
    ) -> Result<(String, bool), DeviceError> {
        let id = self.resolve_goal(query)?;
        let now = self.now();
        let changed = self.edit(SpaceKind::Shared, |doc, _| {
            let c = doc.set_status(&id, status, now)?;
            Ok((c.is_some(), c.into_iter().collect()))
        })?;
        Ok((id, changed))
    }

    /// Writes a reflection, shared or private; returns its id.
    pub fn reflect(&mut self, input: ReflectionInput) -> Result<String, DeviceError> {
        let goal = match &input.goal {
            Some(q) => Some(self.resolve_goal(q)?),
            None => None,
        };
        let kind = if input.private {
            SpaceKind::Personal
        } else {
            SpaceKind::Shared
        };
        let now = self.now();
        // A blank prompt is no prompt (a blank text is refused: it would say nothing).
        let prompt = input.prompt.as_deref().filter(|p| !crate::doc::blank(p));
        let reflection = crate::doc::new_reflection(
            &self.me.person_id,
            goal.as_deref(),
            prompt,
            &input.text,
            now,
        );
        let entities = [crate::doc::New::Reflection(&reflection)];
        self.put_new(kind, &entities, crate::doc::REFLECT_MESSAGE, now)?;
        Ok(reflection.id)
    }
}
