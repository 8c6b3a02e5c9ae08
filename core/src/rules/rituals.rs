//! The owner rules of the rituals: sealed ratings, check-in rounds, reveals and
//! corrections. A reveal is checked against its seal's commitment here, so a rater who
//! has seen the partner's rating cannot reveal a different one than they sealed.

use std::collections::HashMap;

use automerge::legacy::OpType;
use automerge::{ObjType, ROOT, ReadDoc, ScalarValue, Value};

use super::{Checker, Violation};
use crate::seal::{Binding, commitment};

/// The scalar fields of one entity.
pub(super) type Fields = HashMap<String, ScalarValue>;

impl Checker<'_> {
    /// Keeps the scalars this event writes into the ratings and seals it creates
    /// (`keys`: collection, id, field).
    pub(super) fn remember(&mut self, keys: &[&str], action: &OpType) {
        let (&[coll, id, field], OpType::Put(v)) = (keys, action) else {
            return;
        };
        let created = match coll {
            "ratings" => &mut self.created.ratings,
            "seals" => &mut self.created.seals,
            _ => return,
        };
        let fields = match created.get_mut(id) {
            Some(fields) => fields,
            None => created.entry(id.to_string()).or_default(),
        };
        fields.insert(field.to_string(), v.clone());
    }

    /// The map of an entity of a late collection (`rounds`, `seals`), in any of the
    /// maps stored under its key.
    fn late_entity(&self, coll: &str, id: &str) -> Option<automerge::ObjId> {
        let maps = self.doc.get_all(ROOT, coll).ok()?;
        maps.into_iter().find_map(|(v, obj)| {
            if !matches!(v, Value::Object(ObjType::Map)) {
                return None;
            }
            match self.doc.get(&obj, id).ok()? {
                Some((Value::Object(ObjType::Map), e)) => Some(e),
                _ => None,
            }
        })
    }

    pub(super) fn seal_rule(
        &self,
        id: Option<&str>,
        field: Option<&str>,
        depth: usize,
        action: &OpType,
    ) -> Result<(), Violation> {
        let id = id.ok_or("it writes the seals map oddly")?;
        if self.late_entity("seals", id).is_some() {
            return Err(format!("it changes an existing sealed rating ({id})"));
        }
        if field == Some("rater") && depth == 3 && !self.names_me(action) {
            return Err(format!("it seals rating {id} in another person's name"));
        }
        Ok(())
    }

    pub(super) fn round_rule(
        &self,
        id: Option<&str>,
        field: Option<&str>,
        depth: usize,
        action: &OpType,
    ) -> Result<(), Violation> {
        let id = id.ok_or("it writes the rounds map oddly")?;
        let Some(round) = self.late_entity("rounds", id) else {
            if field == Some("opened_by") && depth == 3 && !self.names_me(action) {
                return Err(format!("it opens round {id} in another person's name"));
            }
            return Ok(());
        };
        // Closed as the author saw it: both closing it while apart is no change of a
        // closed round.
        let closed = matches!(
            self.seen_value(&round, "closed_at"),
            Some(Value::Scalar(v)) if !matches!(v.as_ref(), ScalarValue::Null)
        );
        match field {
            _ if closed => Err(format!("it changes round {id}, which is closed")),
            Some("closed_by") if depth == 3 && self.names_me(action) => Ok(()),
            Some("closed_at") if depth == 3 => super::shape::closed_at(id, action),
            _ => Err(format!("it changes round {id} other than by closing it")),
        }
    }

    /// The checks that need a whole new rating: a reveal matches its seal, a correction
    /// corrects the rater's own.
    pub(super) fn finish(&self) -> Result<(), Violation> {
        for (id, fields) in &self.created.ratings {
            if let Some(corrects) = text(fields, "corrects") {
                let target = self
                    .fields_of("ratings", &corrects)
                    .or_else(|| self.fields_of("seals", &corrects));
                let rater = target.as_ref().and_then(|f| text(f, "rater"));
                if rater.as_deref() != Some(self.person) {
                    return Err(format!(
                        "rating {id} corrects {corrects}, which is not a rating of its rater"
                    ));
                }
            }
            if let Some(seal) = text(fields, "reveals") {
                self.check_reveal(id, &seal, fields)?;
            }
        }
        Ok(())
    }

    fn check_reveal(&self, id: &str, seal_id: &str, rating: &Fields) -> Result<(), Violation> {
        let seal = self
            .fields_of("seals", seal_id)
            .ok_or_else(|| format!("rating {id} reveals {seal_id}, which is no sealed rating"))?;
        let same = |f: &str| text(&seal, f) == text(rating, f);
        let same_at = int(&seal, "at").is_some() && int(&seal, "at") == int(rating, "at");
        if text(&seal, "rater").as_deref() != Some(self.person)
            || !same("goal")
            || !same("round")
            || !same("corrects")
            || !same_at
        {
            return Err(format!(
                "rating {id} reveals {seal_id} but is not that sealed rating"
            ));
        }
        let (Some(goal), Some(round), Some(at), Some(level), Some(salt), Some(want)) = (
            text(&seal, "goal"),
            text(&seal, "round"),
            int(&seal, "at"),
            int(rating, "level"),
            text(rating, "salt"),
            text(&seal, "commitment"),
        ) else {
            return Err(format!(
                "rating {id} reveals {seal_id} without its level or salt"
            ));
        };
        let corrects = text(&seal, "corrects");
        let binding = Binding {
            seal: seal_id,
            goal: &goal,
            rater: self.person,
            round: &round,
            corrects: corrects.as_deref(),
            at,
        };
        let note = text(rating, "note");
        if commitment(binding, level, note.as_deref(), &salt) != want {
            return Err(format!(
                "rating {id} reveals {seal_id} with a level or note other than was sealed"
            ));
        }
        Ok(())
    }

    /// The scalar fields of a rating or seal: created by this event, or in the document.
    fn fields_of(&self, coll: &str, id: &str) -> Option<Fields> {
        let created = match coll {
            "ratings" => self.created.ratings.get(id),
            "seals" => self.created.seals.get(id),
            _ => None,
        };
        if let Some(f) = created {
            return Some(f.clone());
        }
        let obj = if coll == "seals" {
            self.late_entity(coll, id)?
        } else {
            match self.existing(&[coll, id])? {
                (Value::Object(ObjType::Map), obj) => obj,
                _ => return None,
            }
        };
        let mut out = Fields::new();
        for key in self.doc.keys(&obj) {
            if let Ok(Some((Value::Scalar(v), _))) = self.doc.get(&obj, key.as_str()) {
                out.insert(key, v.into_owned());
            }
        }
        Some(out)
    }
}

fn text(fields: &Fields, name: &str) -> Option<String> {
    match fields.get(name)? {
        ScalarValue::Str(s) => Some(s.to_string()),
        _ => None,
    }
}

fn int(fields: &Fields, name: &str) -> Option<i64> {
    match fields.get(name)? {
        ScalarValue::Int(i) => Some(*i),
        _ => None,
    }
}
