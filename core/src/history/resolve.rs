//! Reads goals and their fields from the document, at its current state or at the heads
//! a change was made on, for the values an event shows before and after it.

use std::cell::RefCell;

use automerge::{ChangeHash, ObjId, ObjType, ROOT, ReadDoc, Value};

use crate::opwalk::scalar_text;

/// A text read at given heads, as shown: the object, the heads, the text (if any).
type ReadText = (ObjId, Vec<ChangeHash>, Option<String>);

/// Reads goals and their fields from the document, at its current state or at given heads.
pub(crate) struct Resolver<'a> {
    pub(super) doc: &'a automerge::Automerge,
    goals: Option<ObjId>,
    /// The last text read at given heads, as shown: the text just after one change is
    /// the text the next change of a chain was made on, and reading a text at past
    /// heads walks every operation the text ever had.
    last_text: RefCell<Option<ReadText>>,
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(doc: &'a automerge::Automerge) -> Resolver<'a> {
        let goals = match doc.get(ROOT, "goals") {
            Ok(Some((Value::Object(ObjType::Map), id))) => Some(id),
            _ => None,
        };
        Resolver {
            doc,
            goals,
            last_text: RefCell::new(None),
        }
    }

    fn map_child(&self, obj: &ObjId, key: &str) -> Option<ObjId> {
        match self.doc.get(obj, key).ok()? {
            Some((Value::Object(_), id)) => Some(id),
            _ => None,
        }
    }

    pub(super) fn goal(&self, goal: &str) -> Option<ObjId> {
        self.map_child(self.goals.as_ref()?, goal)
    }

    /// The object at a path below a goal (e.g. ["title"], ["levels", "expected"]).
    pub(super) fn goal_path(&self, goal: &str, path: &[&str]) -> Option<ObjId> {
        let mut obj = self.goal(goal)?;
        for p in path {
            obj = self.map_child(&obj, p)?;
        }
        Some(obj)
    }

    pub(super) fn text_at(&self, obj: &ObjId, heads: &[ChangeHash]) -> Option<String> {
        self.doc.text_at(obj, heads).ok()
    }

    /// The text of `obj` at `heads` passed through `shown`, remembering the last one read.
    pub(super) fn shown_text_at(
        &self,
        obj: &ObjId,
        heads: &[ChangeHash],
        shown: impl Fn(&str) -> String,
    ) -> Option<String> {
        if let Some((o, h, text)) = self.last_text.borrow().as_ref()
            && o == obj
            && h.as_slice() == heads
        {
            return text.clone();
        }
        let text = self.text_at(obj, heads).map(|t| shown(&t));
        *self.last_text.borrow_mut() = Some((obj.clone(), heads.to_vec(), text.clone()));
        text
    }

    /// The text object of a reflection.
    pub(super) fn reflection_text(&self, reflection: &str) -> Option<ObjId> {
        let reflections = self.map_child(&ROOT, "reflections")?;
        let r = self.map_child(&reflections, reflection)?;
        self.map_child(&r, "text")
    }

    /// The goal a reflection is about (`None`: about none, or not a string), so that its
    /// edits and withdrawal are found by the goal as its writing is.
    pub(super) fn reflection_goal(&self, reflection: &str) -> Option<String> {
        self.reflection_str(reflection, "goal")
    }

    /// Whether a reflection is a reply (its `reply_to` names another).
    pub(super) fn reflection_is_reply(&self, reflection: &str) -> bool {
        self.reflection_str(reflection, "reply_to").is_some()
    }

    /// A string field of a reflection.
    fn reflection_str(&self, reflection: &str, key: &str) -> Option<String> {
        let reflections = self.map_child(&ROOT, "reflections")?;
        let r = self.map_child(&reflections, reflection)?;
        match self.doc.get(&r, key).ok()? {
            Some((Value::Scalar(v), _)) => match v.as_ref() {
                automerge::ScalarValue::Str(g) => Some(g.to_string()),
                _ => None,
            },
            _ => None,
        }
    }

    /// The current title of a goal.
    pub(crate) fn title(&self, goal: &str) -> Option<String> {
        let t = self.goal_path(goal, &["title"])?;
        self.doc.text(&t).ok()
    }

    pub(super) fn scalar_at(&self, obj: &ObjId, key: &str, heads: &[ChangeHash]) -> Option<String> {
        match self.doc.get_at(obj, key, heads).ok()? {
            Some((Value::Scalar(v), _)) => scalar_text(&v),
            _ => None,
        }
    }
}
