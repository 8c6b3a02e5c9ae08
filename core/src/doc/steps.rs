//! The operations on a goal's steps: adding one (for someone, or for either partner),
//! completing it, correcting its text, and who it is for. Reopening is with the
//! rituals.

use automerge::{Change, ObjId, ObjType, ReadDoc, ScalarValue};
use autosurgeon::{Text, reconcile_prop};

use super::{DocError, SpaceDoc, update_text};
use crate::ids::new_id;
use crate::model::{Step, limits, valid};

/// A step's completion as its fields hold it: who (a person id) and when (ms).
pub type Completion = (Option<String>, Option<i64>);

impl SpaceDoc {
    /// Who completed a step and when (`None`: not done), read from its two fields alone:
    /// a goal with thousands of steps is not read whole to decide one. A step whose
    /// `done_by` is set counts as done even without a readable time, as the owner rules
    /// read it.
    pub fn step_done(&self, goal_id: &str, step_id: &str) -> Result<Option<Completion>, DocError> {
        let step = self.step_obj(goal_id, step_id)?;
        let at = self.scalar(&step, "done_at")?.and_then(|v| v.as_i64());
        let by = self
            .scalar(&step, "done_by")?
            .and_then(|v| v.as_str().map(str::to_string));
        Ok((at.is_some() || by.is_some()).then_some((by, at)))
    }

    /// A goal's owner (`shared`, or a person id), read from that field alone.
    pub fn goal_owner(&self, goal_id: &str) -> Result<String, DocError> {
        let goal = self.goal_obj(goal_id)?;
        Ok(self
            .scalar(&goal, "owner")?
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "shared".to_string()))
    }

    /// The scalar at `key` of `obj`, if it holds one.
    fn scalar(&self, obj: &ObjId, key: &str) -> Result<Option<ScalarValue>, DocError> {
        Ok(match self.automerge().get(obj, key)? {
            Some((automerge::Value::Scalar(s), _)) => Some(s.into_owned()),
            _ => None,
        })
    }

    /// Adds a step to a goal; returns the step id.
    pub fn add_step(
        &mut self,
        goal_id: &str,
        author: &str,
        text: &str,
        now: i64,
    ) -> Result<(String, Option<Change>), DocError> {
        self.add_step_for(goal_id, author, text, None, now)
    }

    /// Adds a step to a goal for a person of the space (`assignee`), or for nobody in
    /// particular; returns the step id.
    pub fn add_step_for(
        &mut self,
        goal_id: &str,
        author: &str,
        text: &str,
        assignee: Option<&str>,
        now: i64,
    ) -> Result<(String, Option<Change>), DocError> {
        if super::blank(text) {
            return Err(DocError::Empty("step text"));
        }
        let goal = self.goal_obj(goal_id)?;
        let steps = match self.doc.get(&goal, "steps")? {
            Some((automerge::Value::Object(ObjType::Map), id)) => id,
            _ => return Err(DocError::Malformed("steps")),
        };
        let step = Step {
            id: new_id(),
            text: Text::with_value(text.trim()),
            assignee: assignee.map(str::to_string),
            created_by: author.to_string(),
            created_at: now,
            done_by: None,
            done_at: None,
        };
        step.validate()?;
        let id = step.id.clone();
        let change = self.commit("add step", now, |tx| {
            reconcile_prop(tx, &steps, id.as_str(), &step)?;
            Ok(())
        })?;
        Ok((id, change))
    }

    /// Marks a step done by `author`.
    pub fn complete_step(
        &mut self,
        goal_id: &str,
        step_id: &str,
        author: &str,
        now: i64,
    ) -> Result<Option<Change>, DocError> {
        let step = self.step_obj(goal_id, step_id)?;
        self.commit("complete step", now, |tx| {
            reconcile_prop(tx, &step, "done_by", Some(author))?;
            reconcile_prop(tx, &step, "done_at", Some(now))?;
            Ok(())
        })
    }

    /// Replaces a step's text, as a diff of what it holds (so that both partners'
    /// corrections made while apart merge); `None` when it already reads so.
    pub fn edit_step(
        &mut self,
        goal_id: &str,
        step_id: &str,
        text: &str,
        now: i64,
    ) -> Result<Option<Change>, DocError> {
        let text = text.trim();
        if super::blank(text) {
            return Err(DocError::Empty("step text"));
        }
        valid::length(text, limits::MAX_TEXT_CHARS)?;
        let step = self.step_obj(goal_id, step_id)?;
        self.commit("edit step", now, |tx| update_text(tx, &step, "text", text))
    }

    /// Gives a step to a person of the space, or to nobody (`None`); `None` when it was
    /// already theirs.
    pub fn assign_step(
        &mut self,
        goal_id: &str,
        step_id: &str,
        assignee: Option<&str>,
        now: i64,
    ) -> Result<Option<Change>, DocError> {
        if let Some(a) = assignee {
            valid::length(a, limits::MAX_ID_CHARS)?;
        }
        let step = self.step_obj(goal_id, step_id)?;
        self.commit("assign step", now, |tx| {
            reconcile_prop(tx, &step, "assignee", assignee)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use automerge::ActorId;

    use crate::doc::{NewGoal, SpaceDoc};

    #[test]
    fn writing_what_a_step_already_says_makes_no_change() {
        let (mut doc, _) = SpaceDoc::create(ActorId::random(), 1).expect("create");
        let (goal, _) = doc
            .add_goal(
                "a1",
                NewGoal {
                    title: "Walk".into(),
                    ..Default::default()
                },
                2,
            )
            .expect("goal");
        let (step, _) = doc
            .add_step_for(&goal, "a1", "Buy shoes", Some("b2"), 3)
            .expect("step");
        assert!(
            doc.assign_step(&goal, &step, Some("b2"), 4)
                .expect("same")
                .is_none()
        );
        assert!(
            doc.edit_step(&goal, &step, " Buy shoes ", 4)
                .expect("same")
                .is_none()
        );
        assert!(
            doc.assign_step(&goal, &step, None, 5)
                .expect("nobody")
                .is_some()
        );
        assert!(
            doc.edit_step(&goal, &step, "Buy boots", 6)
                .expect("edit")
                .is_some()
        );
        assert!(doc.edit_step(&goal, &step, "  ", 7).is_err());
        let s = &doc.goal(&goal).expect("read").steps[&step];
        assert_eq!(
            (s.text.as_str(), s.assignee.as_deref()),
            ("Buy boots", None)
        );
    }
}
