//! The typed shape of a space's Automerge document.
//!
//! These structs are mapped to and from the document with `autosurgeon`. Enumerations
//! (area, status, owner) are stored as short strings and parsed at the edges, so a
//! document written by a newer version with a new area still hydrates on an older one.
//! Text that both partners co-edit is [`autosurgeon::Text`] (a CRDT text object);
//! every other scalar is last-writer-wins. Collections are maps keyed by random ids, so
//! concurrent additions from both partners never collide.

use std::collections::BTreeMap;

use autosurgeon::{Hydrate, Reconcile, Text};
use serde::{Deserialize, Serialize};

/// The current document schema version, stored at the root as `schema`.
pub const SCHEMA_VERSION: u64 = 1;

/// A person known to the space: one partner (the devices they own sign as them).
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Person {
    /// Display name chosen at `duet init` / `duet join`.
    pub name: String,
}

/// The five Goal Attainment Scaling level descriptions of a goal.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize, Default)]
pub struct Levels {
    /// -2: much less than expected.
    #[serde(with = "text_serde")]
    pub much_less: Text,
    /// -1: less than expected.
    #[serde(with = "text_serde")]
    pub less: Text,
    /// 0: the expected outcome, written as a SMART statement.
    #[serde(with = "text_serde")]
    pub expected: Text,
    /// +1: more than expected.
    #[serde(with = "text_serde")]
    pub more: Text,
    /// +2: much more than expected.
    #[serde(with = "text_serde")]
    pub much_more: Text,
}

impl Levels {
    /// The description of one level (-2..=2).
    pub fn get(&self, level: i8) -> Option<&Text> {
        match level {
            -2 => Some(&self.much_less),
            -1 => Some(&self.less),
            0 => Some(&self.expected),
            1 => Some(&self.more),
            2 => Some(&self.much_more),
            _ => None,
        }
    }

    /// The mutable description of one level (-2..=2).
    pub fn get_mut(&mut self, level: i8) -> Option<&mut Text> {
        match level {
            -2 => Some(&mut self.much_less),
            -1 => Some(&mut self.less),
            0 => Some(&mut self.expected),
            1 => Some(&mut self.more),
            2 => Some(&mut self.much_more),
            _ => None,
        }
    }
}

/// An actionable step of a goal.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Step {
    /// Random id, unique within the goal.
    #[key]
    pub id: String,
    /// What to do (co-edited text).
    #[serde(with = "text_serde")]
    pub text: Text,
    /// Person id of the partner who takes it on, if any.
    pub assignee: Option<String>,
    /// Person id of who added it.
    pub created_by: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// Person id of who marked it done.
    pub done_by: Option<String>,
    /// When it was marked done (ms since epoch).
    pub done_at: Option<i64>,
}

/// A shared relationship goal.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Goal {
    /// Random id (32 hex chars); users type any unique prefix.
    #[key]
    pub id: String,
    /// One of [`crate::Area`], as a string.
    pub area: String,
    /// Short title (co-edited text).
    #[serde(with = "text_serde")]
    pub title: Text,
    /// Why this goal matters (co-edited text).
    #[serde(with = "text_serde")]
    pub why: Text,
    /// The five GAS level descriptions.
    pub levels: Levels,
    /// `shared`, or the person id of the partner who owns it.
    pub owner: String,
    /// One of [`crate::Status`], as a string.
    pub status: String,
    /// Optional due date, `YYYY-MM-DD`.
    pub due: Option<String>,
    /// Person id of the creator.
    pub created_by: String,
    /// Creation time, ms since epoch.
    pub created_at: i64,
    /// GAS weight per person id (absent means 1).
    pub weights: BTreeMap<String, f64>,
    /// Steps keyed by their id.
    pub steps: BTreeMap<String, Step>,
}

/// One partner's GAS rating of a goal at a moment. Append-only.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Rating {
    /// Random id.
    #[key]
    pub id: String,
    /// Goal id.
    pub goal: String,
    /// Person id of the rater.
    pub rater: String,
    /// When it was given, ms since epoch.
    pub at: i64,
    /// GAS level, -2..=2.
    pub level: i64,
    /// Optional note.
    pub note: Option<String>,
}

/// A written reflection, optionally about a goal.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Reflection {
    /// Random id.
    #[key]
    pub id: String,
    /// Person id of the author.
    pub author: String,
    /// When it was written, ms since epoch.
    pub at: i64,
    /// Goal id, if it is about one goal.
    pub goal: Option<String>,
    /// The prompt it answers, if any.
    pub prompt: Option<String>,
    /// The reflection itself.
    #[serde(with = "text_serde")]
    pub text: Text,
}

/// Serde for co-edited text: its current value as a plain string. Used by the read
/// models, which keep values, not CRDT state.
mod text_serde {
    use autosurgeon::Text;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Text, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(t.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        Ok(Text::with_value(String::deserialize(d)?))
    }
}
