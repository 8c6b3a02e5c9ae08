//! The joint history: what each change of a space's document did, as domain events.
//!
//! Events are derived from the operations inside the changes (which object and property
//! each one touched, resolved to a path like `goals/<id>/status`), never from commit
//! messages, which are only labels. Changes are ordered causally (a change never comes
//! before one it depends on) and, among changes that are free to go next, by the
//! author's timestamp and then by hash. So device clocks influence only the order of
//! concurrent changes, a wrong clock can never put an effect before its cause, and every
//! device holding the same changes computes the same history.
//!
//! The files: `derive` turns one change into events, `order` orders the changes,
//! `resolve` reads field values at a change's heads, `render` fills in names, titles and
//! summaries and adds the events from outside the document, and `timeline` gives the
//! history as `duet history` shows it, from a store's read models.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::doc::{DocError, SpaceDoc};
use crate::identity::DeviceKey;
use crate::membership::Member;

mod counted;
mod derive;
mod merged;
mod order;
mod render;
mod resolve;
mod timeline;

pub use counted::{CountedActs, first_reveals};
pub(crate) use derive::change_events;
pub(crate) use derive::short_text;
pub(crate) use merged::text_mark;
pub use merged::{MergedText, merged_reflections, merged_texts};
pub use order::{causal_order, causal_order_of};
pub use render::{membership_history, name_events, refused_history};
pub(crate) use resolve::Resolver;
pub use timeline::{HistoryQuery, PeopleAndGoals, TimelineSource, timeline};

/// Where a stored history event stands: (position of its change, index in the change).
pub type HistoryPos = (i64, i64);

/// A stored history event with its position.
pub type HistoryRow = (HistoryPos, HistoryEvent);

/// A refused event as the store records it: its hash, the reason, its bytes and when it
/// was refused (ms since epoch).
pub type RefusedRecord = ([u8; 32], String, Vec<u8>, i64);

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum HistoryKind {
    /// A goal was created.
    GoalCreated,
    /// A goal's field changed.
    FieldEdited,
    /// A goal's status changed.
    StatusChanged,
    /// A step was added.
    StepAdded,
    /// A step was marked done.
    StepDone,
    /// A partner rated a goal.
    RatingGiven,
    /// A reflection was written.
    ReflectionWritten,
    /// A person joined or changed their name.
    PersonNamed,
    /// A device joined a space (membership event).
    DeviceJoined,
    /// A member removed a device (membership event).
    DeviceRemoved,
    /// This device refused what a device sent (it broke the owner rules, forged its
    /// authorship or did not decrypt): nothing of it was applied.
    ChangeRefused,
    /// A partner rated a goal blind: sealed until the other rates it or the round ends.
    RatingSealed,
    /// A partner withdrew one of their ratings (`item` names it).
    RatingWithdrawn,
    /// A partner closed the check-in round.
    RoundClosed,
    /// A partner edited their reflection (`item`).
    ReflectionEdited,
    /// A partner withdrew their reflection (`item`); its text is gone from every view.
    ReflectionWithdrawn,
    /// A completed step was opened again.
    StepReopened,
    /// A partner left the shared space (all their devices with them).
    PersonLeft,
    /// A member withdrew an unused invite (`item` is its key).
    InviteRevoked,
    /// A step's text was corrected (`before` and `after` are its text).
    StepEdited,
    /// A step was given to someone (`person`), or to nobody in particular.
    StepAssigned,
}

/// One domain event of the history. Field names are stable (JSON Lines output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    /// Kind of event.
    pub kind: HistoryKind,
    /// Author's clock, ms since epoch.
    pub at: i64,
    /// Person id of the author (via the device that made the change).
    pub author: Option<String>,
    /// Author's display name.
    pub author_name: String,
    /// Hex device key that made the change.
    pub device: String,
    /// Hex hash of the Automerge change.
    pub change: String,
    /// Goal concerned.
    pub goal: Option<String>,
    /// The goal's current title.
    pub goal_title: Option<String>,
    /// Which field (for edits): title, why, area, due, owner, weight, level:-2..level:2.
    pub field: Option<String>,
    /// Value before (short fields, as the author saw it).
    pub before: Option<String>,
    /// Value after.
    pub after: Option<String>,
    /// GAS level, for ratings.
    pub level: Option<i64>,
    /// Id of the step, rating or reflection concerned.
    pub item: Option<String>,
    /// The person a step was given to (person id), for `step_assigned` and for a step
    /// added for someone.
    #[serde(default)]
    pub person: Option<String>,
    /// One readable line.
    pub summary: String,
    /// Made on this device after it was removed from (or left) the space, before it
    /// learned so: the change never reached the space and shows on this device only.
    #[serde(default)]
    pub never_sent: bool,
    /// Dated more than [`crate::progress::AHEAD_MS`] after this device's clock: made on a
    /// device whose clock was wrong (`progress` and the report mark the same).
    #[serde(default)]
    pub dated_ahead: bool,
}

impl HistoryEvent {
    /// An event of `kind` by an author, with every optional field empty and no summary.
    pub(crate) fn by(
        kind: HistoryKind,
        at: i64,
        author: Option<String>,
        author_name: String,
        device: String,
        change: String,
    ) -> HistoryEvent {
        HistoryEvent {
            kind,
            at,
            author,
            author_name,
            device,
            change,
            goal: None,
            goal_title: None,
            field: None,
            before: None,
            after: None,
            level: None,
            item: None,
            person: None,
            summary: String::new(),
            never_sent: false,
            dated_ahead: false,
        }
    }
}

/// Derives the history of a space's document. `devices` maps every device that was ever
/// a member to its person (from the membership events).
pub fn history(
    doc: &SpaceDoc,
    devices: &BTreeMap<DeviceKey, Member>,
) -> Result<Vec<HistoryEvent>, DocError> {
    let am = doc.automerge();
    let people = crate::names::shown(&doc.people()?);
    let r = Resolver::new(am);
    let mut paths = crate::opwalk::Paths::default();
    let mut out = Vec::new();
    for change in causal_order(am.get_changes(&[])) {
        out.extend(change_events(&r, &mut paths, &change));
    }
    name_events(&mut out, devices, &people, &|g| r.title(g));
    Ok(out)
}
