//! New entities (a rating, a seal, a round, a reflection) written without loading the
//! document: the change Automerge itself would make, built from what the store keeps of
//! the document's tip ([`Tip`]: its heads, its largest operation counter, this device's
//! last change, the collections' object ids), so that a one-shot `duet rate` or `duet
//! reflect` costs the same whatever the history's length.
//!
//! The operations are autosurgeon's own: the entities are written into a scratch
//! document whose collections stand in for the real ones, then the operations' ids are
//! moved onto this device's actor, after the real document's counters, and onto the real
//! collections. The result is byte for byte the change [`SpaceDoc::put_new`] makes on the
//! loaded document (`core/tests/detached.rs` checks that over many histories). Anything
//! the scratch write produced that this move cannot place (an operation at the root, a
//! reference to an object it did not make) yields `None`: the caller loads the document.

use std::collections::BTreeMap;
use std::str::FromStr;

use automerge::legacy::{ElementId, Key, ObjectId, OpId};
use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{ActorId, Automerge, Change, ChangeHash, ExpandedChange, ObjId, ObjType, ROOT};
use automerge::{ReadDoc, Value};
use autosurgeon::reconcile_prop;
use serde::{Deserialize, Serialize};

use super::{DocError, LATE_COLLECTIONS, SpaceDoc};
use crate::model::{Rating, Reflection, Round, Seal};

/// A new entity for its collection (its id is new: nothing under it yet).
#[derive(Debug, Clone, Copy)]
pub enum New<'a> {
    /// A rating (given in the clear, a reveal, a correction).
    Rating(&'a Rating),
    /// A sealed rating.
    Seal(&'a Seal),
    /// A check-in round.
    Round(&'a Round),
    /// A reflection or a reply (its text is a new text object).
    Reflection(&'a Reflection),
}

impl<'a> New<'a> {
    /// A sealed rating, after the round it opens when that round is new: what a blind
    /// rating writes, in one change.
    pub fn sealed(seal: &'a Seal, new_round: Option<&'a Round>) -> Vec<New<'a>> {
        new_round
            .map(New::Round)
            .into_iter()
            .chain([New::Seal(seal)])
            .collect()
    }
}

/// The change message of a blind rating.
pub const SEALED_MESSAGE: &str = "rate sealed";

/// The collections [`New`] writes into.
const COLLECTIONS: [&str; 4] = ["ratings", "seals", "rounds", "reflections"];

impl New<'_> {
    /// The root collection it goes into.
    pub fn collection(&self) -> &'static str {
        match self {
            New::Rating(_) => "ratings",
            New::Seal(_) => "seals",
            New::Round(_) => "rounds",
            New::Reflection(_) => "reflections",
        }
    }

    /// The goal it names, which must exist. (A reflection's goal is not checked here: a
    /// private one names a goal of the shared space.)
    fn goal(&self) -> Option<&str> {
        match self {
            New::Rating(r) => Some(&r.goal),
            New::Seal(s) => Some(&s.goal),
            New::Round(_) | New::Reflection(_) => None,
        }
    }

    fn validate(&self) -> Result<(), DocError> {
        match self {
            New::Rating(r) => r.validate()?,
            New::Seal(s) => s.validate()?,
            New::Round(r) => r.validate()?,
            New::Reflection(r) => {
                if super::blank(r.text.as_str()) {
                    return Err(DocError::Empty("reflection text"));
                }
                r.validate()?
            }
        }
        Ok(())
    }

    fn put(&self, tx: &mut Transaction<'_>, obj: &ObjId) -> Result<(), DocError> {
        match self {
            New::Rating(r) => reconcile_prop(tx, obj, r.id.as_str(), *r)?,
            New::Seal(s) => reconcile_prop(tx, obj, s.id.as_str(), *s)?,
            New::Round(r) => reconcile_prop(tx, obj, r.id.as_str(), *r)?,
            New::Reflection(r) => reconcile_prop(tx, obj, r.id.as_str(), *r)?,
        }
        Ok(())
    }
}

/// Writes `entities` in order, each into the collection `target` gives.
fn put_all(
    tx: &mut Transaction<'_>,
    entities: &[New<'_>],
    mut target: impl FnMut(&mut Transaction<'_>, &'static str) -> Result<ObjId, DocError>,
) -> Result<(), DocError> {
    for e in entities {
        let obj = target(tx, e.collection())?;
        e.put(tx, &obj)?;
    }
    Ok(())
}

impl SpaceDoc {
    /// Writes new entities in one change; `message` names the operation. The
    /// collections created on first use ([`LATE_COLLECTIONS`]) are created if missing.
    pub fn put_new(
        &mut self,
        entities: &[New<'_>],
        message: &str,
        now: i64,
    ) -> Result<Option<Change>, DocError> {
        for e in entities {
            if let Some(goal) = e.goal() {
                self.goal_obj(goal)?;
            }
            e.validate()?;
        }
        self.commit(message, now, |tx| {
            put_all(tx, entities, |tx, name| match tx.get(ROOT, name)? {
                Some((Value::Object(ObjType::Map), id)) => Ok(id),
                _ if LATE_COLLECTIONS.contains(&name) => {
                    Ok(tx.put_object(ROOT, name, ObjType::Map)?)
                }
                _ => Err(DocError::Malformed(name)),
            })
        })
    }
}

/// What a change on top of the whole document needs to know of it. Hashes and actors are
/// hex, so that the store keeps it as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tip {
    /// The actor of the document's new changes (this device).
    actor: String,
    /// That actor's last sequence number in the document (0 before its first change).
    seq: u64,
    /// That actor's last change.
    last: Option<String>,
    /// The largest operation counter of the document.
    max_op: u64,
    /// The document's heads.
    heads: Vec<String>,
    /// The object each collection of [`COLLECTIONS`] is written into (as
    /// `counter@actor`), for those the document has.
    collections: BTreeMap<String, String>,
}

impl Tip {
    /// The tip of `doc` as it is now.
    pub fn of(doc: &SpaceDoc) -> Tip {
        let am = doc.automerge();
        let heads = am.get_heads();
        let last = am.get_last_local_change();
        // Every change's operations come after those of the changes it depends on, so
        // the largest counter is in a head (or in this actor's own last change, which a
        // partner's change with hand-picked counters cannot lower).
        let max_op = heads
            .iter()
            .filter_map(|h| am.get_change_by_hash(h))
            .chain(last.clone())
            .map(|c| c.max_op())
            .max()
            .unwrap_or(0);
        let collections = COLLECTIONS
            .iter()
            .filter_map(|name| match am.get(ROOT, *name) {
                Ok(Some((Value::Object(ObjType::Map), id))) => {
                    Some((name.to_string(), id.to_string()))
                }
                _ => None,
            })
            .collect();
        Tip {
            actor: am.get_actor().to_hex_string(),
            seq: last.as_ref().map_or(0, |c| c.seq()),
            last: last.map(|c| hex::encode(c.hash().0)),
            max_op,
            heads: heads.iter().map(|h| hex::encode(h.0)).collect(),
            collections,
        }
    }

    /// Whether new changes by `actor` can be built on this tip.
    pub fn is_for(&self, actor: &ActorId) -> bool {
        self.actor == actor.to_hex_string()
    }

    /// The heads, as the store keeps them for the read models.
    pub fn heads(&self) -> Option<Vec<ChangeHash>> {
        self.heads.iter().map(|h| hash_of(h)).collect()
    }

    /// The largest operation counter of the document.
    pub fn max_op(&self) -> u64 {
        self.max_op
    }

    /// This actor's last change and its sequence number.
    pub fn last(&self) -> Option<(ChangeHash, u64)> {
        Some((hash_of(self.last.as_deref()?)?, self.seq))
    }

    /// The tip once `change` (built on this one) is in the document.
    pub fn after(&self, change: &Change) -> Tip {
        Tip {
            seq: change.seq(),
            last: Some(hex::encode(change.hash().0)),
            max_op: change.max_op(),
            heads: vec![hex::encode(change.hash().0)],
            ..self.clone()
        }
    }

    /// The collections' objects as operation ids, with their names.
    pub fn collection_ids(&self) -> Vec<(OpId, &str)> {
        self.collections
            .iter()
            .filter_map(|(name, id)| match ObjectId::from_str(id) {
                Ok(ObjectId::Id(op)) => Some((op, name.as_str())),
                _ => None,
            })
            .collect()
    }

    /// The change [`SpaceDoc::put_new`] would make with `entities` on the document this
    /// is the tip of; `None` when it cannot be built here (a collection the document
    /// does not have yet: the caller loads the document).
    pub fn put_new(
        &self,
        entities: &[New<'_>],
        message: &str,
        now: i64,
    ) -> Result<Option<Change>, DocError> {
        for e in entities {
            e.validate()?;
        }
        let (Some(actor), Some(heads)) = (actor_of(&self.actor), self.heads()) else {
            return Ok(None);
        };
        let real: BTreeMap<&str, OpId> = self
            .collection_ids()
            .into_iter()
            .map(|(op, name)| (name, op))
            .collect();
        if entities.iter().any(|e| !real.contains_key(e.collection())) {
            return Ok(None);
        }
        let Some(scratch) = scratch_change(entities, message, now)? else {
            return Ok(None);
        };
        let mut deps = heads;
        if let Some((last, _)) = self.last()
            && !deps.contains(&last)
        {
            // As Automerge does: a change names its actor's previous one.
            deps.push(last);
        }
        // A partner's change may carry counters near the top of the range: no room
        // after them sends the write to the document.
        let Some(start_op) = self
            .max_op
            .checked_add(1)
            .and_then(std::num::NonZeroU64::new)
        else {
            return Ok(None);
        };
        let Some(operations) = moved(&scratch, &real, &actor, start_op.get()) else {
            return Ok(None);
        };
        Ok(Some(Change::from(ExpandedChange {
            operations,
            actor_id: actor,
            hash: None,
            seq: self.seq + 1,
            start_op,
            time: scratch.time,
            message: scratch.message,
            deps,
            extra_bytes: Vec::new(),
            author: None,
        })))
    }
}

/// The scratch change: `entities` written by autosurgeon into a document holding only
/// empty collections named as the real ones.
fn scratch_change(
    entities: &[New<'_>],
    message: &str,
    now: i64,
) -> Result<Option<ExpandedChange>, DocError> {
    let mut scratch = Automerge::new();
    let mut objs: BTreeMap<&'static str, ObjId> = BTreeMap::new();
    let mut tx = scratch.transaction();
    for name in COLLECTIONS {
        objs.insert(name, tx.put_object(ROOT, name, ObjType::Map)?);
    }
    tx.commit();
    let msg = message.to_string();
    let outcome = scratch
        .transact_with(
            |_| CommitOptions::default().with_message(msg).with_time(now),
            |tx| {
                put_all(tx, entities, |_, name| {
                    objs.get(name).cloned().ok_or(DocError::Malformed(name))
                })
            },
        )
        .map_err(|failure| failure.error)?;
    Ok(outcome
        .hash
        .and_then(|h| scratch.get_change_by_hash(&h))
        .map(|c| c.decode()))
}

/// The scratch change's operations moved onto `actor` from counter `start`, with the
/// scratch collections replaced by the real ones; `None` if an operation refers to
/// anything else.
fn moved(
    scratch: &ExpandedChange,
    real: &BTreeMap<&str, OpId>,
    actor: &ActorId,
    start: u64,
) -> Option<Vec<automerge::legacy::Op>> {
    let first = scratch.start_op.get();
    // The scratch collections were made in this order by the first scratch change.
    let stand_ins: BTreeMap<u64, &OpId> = COLLECTIONS
        .iter()
        .enumerate()
        .filter_map(|(i, name)| Some((i as u64 + 1, real.get(name)?)))
        .collect();
    let move_id = |id: &OpId| -> Option<OpId> {
        if id.1 != scratch.actor_id {
            return None;
        }
        if id.0 >= first {
            Some(OpId((id.0 - first).checked_add(start)?, actor.clone()))
        } else {
            stand_ins.get(&id.0).map(|op| (*op).clone())
        }
    };
    scratch
        .operations
        .iter()
        .map(|op| {
            let obj = match &op.obj {
                ObjectId::Root => return None,
                ObjectId::Id(id) => ObjectId::Id(move_id(id)?),
            };
            let key = match &op.key {
                Key::Seq(ElementId::Id(id)) => Key::Seq(ElementId::Id(move_id(id)?)),
                other => other.clone(),
            };
            // A new entity overwrites nothing: any predecessor is one of its own ops.
            let pred = op
                .pred
                .iter()
                .map(|p| (p.0 >= first).then(|| move_id(p)).flatten())
                .collect::<Option<Vec<OpId>>>()?;
            Some(automerge::legacy::Op {
                action: op.action.clone(),
                obj,
                key,
                pred: pred.into(),
                insert: op.insert,
            })
        })
        .collect()
}

fn hash_of(hex_hash: &str) -> Option<ChangeHash> {
    let bytes: [u8; 32] = hex::decode(hex_hash).ok()?.try_into().ok()?;
    Some(ChangeHash(bytes))
}

fn actor_of(hex_actor: &str) -> Option<ActorId> {
    hex::decode(hex_actor).ok().map(ActorId::from)
}
