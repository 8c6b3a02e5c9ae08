//! `status`: this device, and for each space its relay, cursor, what waits to be sent,
//! what was refused or waits for the relay, its alert and its members.

use serde::Serialize;

use super::UnverifiedDevice;
use crate::device::{Device, DeviceError};
use crate::readmodel::Parts;
use crate::store::SpaceRecord;

/// A member device of a space.
#[derive(Debug, Clone, Serialize)]
pub struct MemberStatus {
    /// Hex device key.
    pub device: String,
    /// Person id.
    pub person: String,
    /// The person's name, once synced.
    pub name: Option<String>,
    /// Whether this is the device being used.
    pub this_device: bool,
}

/// Something this device refused, with the device that sent it.
#[derive(Debug, Clone, Serialize)]
pub struct RefusedStatus {
    /// Hex key of the device that signed it.
    pub device: String,
    /// Its person id, when known.
    pub person: Option<String>,
    /// Its person's name ("an unknown device" when not known).
    pub name: String,
    /// Why it was refused.
    pub reason: Option<String>,
    /// Hex hash of the refused event or change.
    pub event: String,
}

/// One space's state.
#[derive(Debug, Clone, Serialize)]
pub struct SpaceStatus {
    /// "shared" or "personal".
    pub kind: &'static str,
    /// Space id.
    pub space: String,
    /// Relay URL, if set.
    pub relay: Option<String>,
    /// How far this device has read the relay.
    pub cursor: u64,
    /// Local changes not yet packaged.
    pub pending_changes: i64,
    /// Events not yet acknowledged by the relay.
    pub unsent_events: usize,
    /// This device made the space and the relay has not stored it yet: never synced,
    /// or the relay refused to create it (a creation token); the next sync creates it.
    pub not_on_relay: bool,
    /// This device joined the space but its first sync never finished: the space's
    /// goals (and its partner's events) have not arrived; the next sync finishes it.
    pub joining: bool,
    /// How many events this device refused.
    pub refused_events: usize,
    /// The refusals kept as evidence, oldest first.
    pub refused: Vec<RefusedStatus>,
    /// Events waiting for an earlier one the relay has not served.
    pub waiting_events: usize,
    /// A warning about the relay (lost events, forks).
    pub alert: Option<String>,
    /// Current member devices.
    pub members: Vec<MemberStatus>,
    /// How this device's membership ended, if it did.
    pub departed: Option<crate::store::Departed>,
    /// Persons who left the space, with when (RFC 3339).
    pub left: Vec<LeftStatus>,
    /// Whether the document was loaded from a snapshot.
    pub snapshot: bool,
    /// Changes applied after the snapshot.
    pub changes_after_snapshot: usize,
}

/// `status`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Shared-space devices the user has not verified.
    pub unverified: Vec<UnverifiedDevice>,
    /// This person's name.
    pub name: String,
    /// Hex key of this device.
    pub device: String,
    /// Both spaces.
    pub spaces: Vec<SpaceStatus>,
}

/// A person who left a space, or whose every device was removed from it: either way
/// gone from it for good.
#[derive(Debug, Clone, Serialize)]
pub struct LeftStatus {
    /// Person id.
    pub person: String,
    /// The person's name, as last synced.
    pub name: Option<String>,
    /// When they left, or their last device was removed (RFC 3339).
    pub at: String,
    /// Their devices were removed (by a member) rather than the person leaving.
    pub removed: bool,
    /// When, ms (for text renderings).
    #[serde(skip)]
    pub at_ms: i64,
}

/// The persons of a space who left it, once each.
fn left_of(
    state: &crate::membership::SpaceState,
    names: &std::collections::BTreeMap<String, String>,
    me: [u8; 16],
) -> Vec<LeftStatus> {
    let mut out: Vec<LeftStatus> = Vec::new();
    for (device, m) in state.all_devices() {
        let person = hex::encode(m.person);
        match state.departure(device) {
            Some(d) if d.left && !out.iter().any(|l| l.person == person) => {
                out.push(LeftStatus {
                    name: names.get(&person).cloned(),
                    person,
                    at: super::records::iso(d.at),
                    removed: false,
                    at_ms: d.at,
                });
            }
            _ => {}
        }
    }
    // A person none of whose devices is a member any more, who did not leave: every
    // device of theirs was removed (the last removal is when they went). Not this
    // person: their own removal is this device's `departed`, said to them as "you".
    let members: std::collections::BTreeSet<[u8; 16]> =
        state.members().values().map(|m| m.person).collect();
    for p in state.persons_ever() {
        let person = hex::encode(p);
        if p == me || members.contains(&p) || out.iter().any(|l| l.person == person) {
            continue;
        }
        let last = state
            .all_devices()
            .iter()
            .filter(|(_, m)| m.person == p)
            .filter_map(|(device, _)| state.departure(device).map(|d| d.at))
            .max();
        if let Some(at) = last {
            out.push(LeftStatus {
                name: names.get(&person).cloned(),
                person,
                at: super::records::iso(at),
                removed: true,
                at_ms: at,
            });
        }
    }
    out
}

impl Device {
    /// This device and the state of each of its spaces.
    pub fn status(&mut self) -> Result<Status, DeviceError> {
        let mut spaces = Vec::new();
        let mut unverified = Vec::new();
        for rec in self.store.spaces()? {
            spaces.push(self.space_status(&rec, &mut unverified)?);
        }
        Ok(Status {
            unverified,
            name: self.me.name.clone(),
            device: hex::encode(self.me.device_key()),
            spaces,
        })
    }

    /// One space's state; for the shared space, also its unverified devices (from the
    /// membership and names folded here once).
    fn space_status(
        &mut self,
        rec: &SpaceRecord,
        unverified: &mut Vec<UnverifiedDevice>,
    ) -> Result<SpaceStatus, DeviceError> {
        let state = crate::sync::fold_state(&self.store, &rec.id)?;
        // What a load would start from, without loading the history.
        let stats = self.store.open_stats(&rec.id)?;
        // Names from the read models: a partner's malformed entity never stops `status`.
        let names = crate::names::shown(&self.view_parts(rec.kind, Parts::Goals)?.people);
        // Nothing is left to verify in a space this device departed.
        if rec.kind == crate::store::SpaceKind::Shared && self.store.departed(&rec.id)?.is_none() {
            *unverified = self.unverified_in(&rec.id, &state, &names)?;
        }
        let members = state
            .members()
            .iter()
            .map(|(k, m)| {
                let person = hex::encode(m.person);
                MemberStatus {
                    device: hex::encode(k),
                    name: names.get(&person).cloned(),
                    person,
                    this_device: *k == self.me.device_key(),
                }
            })
            .collect();
        let refused =
            crate::history::refused_history(&self.store.refused_events(&rec.id)?, &state, &names)
                .into_iter()
                .map(|e| RefusedStatus {
                    device: e.device,
                    person: e.author,
                    name: e.author_name,
                    reason: e.after,
                    event: e.change,
                })
                .collect();
        Ok(SpaceStatus {
            kind: rec.kind.as_str(),
            space: rec.id.to_string(),
            relay: rec.relay.clone(),
            cursor: rec.cursor,
            pending_changes: self.store.pending_count(&rec.id)?,
            unsent_events: self.store.unacked_events(&rec.id)?.len(),
            not_on_relay: rec.relay.is_some()
                && self
                    .store
                    .first_unacked(&rec.id)?
                    .is_some_and(|(_, kind)| kind == "genesis"),
            // A join refused for good is said by the alert (the shared space's also
            // ends the personal space's join: nothing more is sent there).
            joining: self.store.join_unfinished(&rec.id, rec.cursor)?
                && self.join_refused_before(rec)?.is_none()
                && self
                    .join_refused_before(&self.store.space(crate::store::SpaceKind::Shared)?)?
                    .is_none(),
            refused_events: self.store.refused_total(&rec.id)?,
            refused,
            waiting_events: self.store.held_stats(&rec.id)?.0,
            alert: self.store.alert(&rec.id)?,
            members,
            departed: self.store.departed(&rec.id)?,
            left: left_of(&state, &names, self.me.person_id.bytes()),
            snapshot: stats.from_snapshot,
            changes_after_snapshot: stats.replayed_changes,
        })
    }
}
