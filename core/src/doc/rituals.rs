//! The operations of the couple's rituals: blind ratings (seals, reveals, rounds),
//! corrections, replies, edited and withdrawn reflections, reopened steps.
//!
//! `rounds` and `seals` are root collections newer than the others: a space created
//! before them gets each the first time it is needed. Two devices may both create one
//! while apart; Automerge then keeps both maps as a conflict, so readers take the union
//! of every map under the key ([`SpaceDoc::collection_objs`]) and writers write into
//! the one Automerge shows, and nothing either side wrote is lost.

use automerge::{Change, ObjId, ObjType, ROOT, ReadDoc};
use autosurgeon::reconcile_prop;

use super::{DocError, New, SpaceDoc, update_text};
use crate::model::{Rating, Reflection, Round, Seal};

/// The change message of what `undo` writes to take an act back.
pub const UNDO_MESSAGE: &str = "undo";

/// The change message of a new reflection or reply.
pub const REFLECT_MESSAGE: &str = "reflect";

/// A new reflection by `author` (not a reply), written at `at`.
pub fn new_reflection(
    author: &str,
    goal: Option<&str>,
    prompt: Option<&str>,
    text: &str,
    at: i64,
) -> Reflection {
    Reflection {
        id: crate::ids::new_id(),
        author: author.to_string(),
        at,
        goal: goal.map(str::to_string),
        prompt: prompt.map(str::to_string),
        text: autosurgeon::Text::with_value(text),
        reply_to: None,
        edited_at: None,
        withdrawn_at: None,
    }
}

/// The root collections created on first use.
pub const LATE_COLLECTIONS: [&str; 2] = ["rounds", "seals"];

impl SpaceDoc {
    /// Every map stored under a root key (one, or several after concurrent creation).
    pub fn collection_objs(&self, name: &str) -> Vec<ObjId> {
        self.automerge()
            .get_all(ROOT, name)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(v, id)| matches!(v, automerge::Value::Object(ObjType::Map)).then_some(id))
            .collect()
    }

    /// Writes a rating made whole by the caller (a reveal, a correction, a rating in a
    /// round); `message` names the operation.
    pub fn put_rating(
        &mut self,
        rating: &Rating,
        message: &str,
        now: i64,
    ) -> Result<Option<Change>, DocError> {
        self.put_new(&[New::Rating(rating)], message, now)
    }

    /// Writes a sealed rating, opening `round` in the same change when it is new.
    pub fn put_seal(
        &mut self,
        seal: &Seal,
        new_round: Option<&Round>,
        now: i64,
    ) -> Result<Option<Change>, DocError> {
        self.put_new(&New::sealed(seal, new_round), super::SEALED_MESSAGE, now)
    }

    /// Closes the open rounds `ids` early, in `person`'s name.
    pub fn close_rounds(
        &mut self,
        ids: &[String],
        person: &str,
        now: i64,
    ) -> Result<Option<Change>, DocError> {
        let mut found = Vec::new();
        for id in ids {
            for obj in self.collection_objs("rounds") {
                if let Some((automerge::Value::Object(ObjType::Map), o)) =
                    self.automerge().get(&obj, id.as_str())?
                {
                    found.push(o);
                }
            }
        }
        self.commit("close round", now, |tx| {
            for round in &found {
                reconcile_prop(tx, round, "closed_by", Some(person))?;
                reconcile_prop(tx, round, "closed_at", Some(now))?;
            }
            Ok(())
        })
    }

    /// Writes a new reflection made whole by the caller (a reflection, a reply).
    pub fn put_reflection(
        &mut self,
        reflection: &Reflection,
        now: i64,
    ) -> Result<Option<Change>, DocError> {
        self.put_new(&[New::Reflection(reflection)], REFLECT_MESSAGE, now)
    }

    /// Replaces a reflection's text (a diff, like every co-edited text).
    pub fn edit_reflection(
        &mut self,
        id: &str,
        text: &str,
        now: i64,
    ) -> Result<Option<Change>, DocError> {
        if super::blank(text) {
            return Err(DocError::Empty("reflection text"));
        }
        let len = text
            .chars()
            .take(crate::model::limits::MAX_TEXT_CHARS + 1)
            .count();
        if len > crate::model::limits::MAX_TEXT_CHARS {
            return Err(crate::model::Invalid::TooLong {
                len,
                max: crate::model::limits::MAX_TEXT_CHARS,
            }
            .into());
        }
        let obj = self.reflection_obj(id)?;
        self.commit("edit reflection", now, |tx| {
            update_text(tx, &obj, "text", text)?;
            reconcile_prop(tx, &obj, "edited_at", Some(now))?;
            Ok(())
        })
    }

    /// Withdraws a reflection: its text is emptied and the time recorded. Earlier text
    /// stays in the document's history (Automerge deletes nothing it has synced). `undo`
    /// withdraws with [`UNDO_MESSAGE`]: its withdrawal is an act taken back, where one
    /// asked for is an act of its own (which `undo` cannot take back).
    pub fn withdraw_reflection(
        &mut self,
        id: &str,
        by_undo: bool,
        now: i64,
    ) -> Result<Option<Change>, DocError> {
        let obj = self.reflection_obj(id)?;
        let message = if by_undo {
            UNDO_MESSAGE
        } else {
            "withdraw reflection"
        };
        self.commit(message, now, |tx| {
            update_text(tx, &obj, "text", "")?;
            reconcile_prop(tx, &obj, "withdrawn_at", Some(now))?;
            Ok(())
        })
    }

    /// Takes back the edit `edit` of a reflection (`undo`): the text and `edited_at` it
    /// had just before that change are written again, with [`UNDO_MESSAGE`], so that
    /// the next `undo` goes on to the act before the edit; a reflection whose only edit
    /// is taken back reads as never edited (`edited_at` null). Returns the words written
    /// again; `None` when the document does not hold that change or the reflection had
    /// no text then.
    pub fn undo_reflection_edit(
        &mut self,
        id: &str,
        edit: &automerge::ChangeHash,
        now: i64,
    ) -> Result<Option<(String, Option<Change>)>, DocError> {
        let obj = self.reflection_obj(id)?;
        let am = self.automerge();
        let Some(change) = am.get_change_by_hash(edit) else {
            return Ok(None);
        };
        let before = change.deps().to_vec();
        let text = match am.get_at(&obj, "text", &before)? {
            Some((automerge::Value::Object(ObjType::Text), text)) => am.text_at(&text, &before)?,
            _ => return Ok(None),
        };
        if super::blank(&text) {
            return Ok(None);
        }
        let edited_at = match am.get_at(&obj, "edited_at", &before)? {
            Some((automerge::Value::Scalar(v), _)) => v.as_i64(),
            _ => None,
        };
        let c = self.commit(UNDO_MESSAGE, now, |tx| {
            update_text(tx, &obj, "text", &text)?;
            reconcile_prop(tx, &obj, "edited_at", edited_at)?;
            Ok(())
        })?;
        Ok(Some((text, c)))
    }

    /// Reopens a completed step.
    pub fn reopen_step(
        &mut self,
        goal_id: &str,
        step_id: &str,
        now: i64,
    ) -> Result<Option<Change>, DocError> {
        let step = self.step_obj(goal_id, step_id)?;
        self.commit("reopen step", now, |tx| {
            reconcile_prop(tx, &step, "done_by", None::<String>)?;
            reconcile_prop(tx, &step, "done_at", None::<i64>)?;
            Ok(())
        })
    }

    fn reflection_obj(&self, id: &str) -> Result<ObjId, DocError> {
        let reflections = self.collection("reflections")?;
        match self.automerge().get(&reflections, id)? {
            Some((automerge::Value::Object(ObjType::Map), o)) => Ok(o),
            _ => Err(DocError::NoSuchReflection(id.to_string())),
        }
    }
}
