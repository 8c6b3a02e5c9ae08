//! The invites of both spaces as `duet invite list` and the app's Partner and devices
//! page show them: each partner invite and device code (its two halves paired), whose
//! it is, and whether it still admits anyone.

use serde::Serialize;

use super::records::iso;
use crate::device::{Device, DeviceError};
use crate::membership::{Invite, SpaceState};
use crate::readmodel::Parts;
use crate::store::SpaceKind;

/// One invite of a space, as `duet invite list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct InviteRow {
    /// Hex invite key (what `revoke` takes a prefix of).
    pub id: String,
    /// `shared` or `personal`.
    pub space: String,
    /// `partner` (admits a new person) or `device` (a device code's half).
    pub kind: &'static str,
    /// The name of the person whose device made it.
    pub issued_by: String,
    /// When it was made (RFC 3339).
    pub issued_at: String,
    /// When it stops admitting anyone (RFC 3339).
    pub expires_at: String,
    /// Expiry, ms (for text renderings).
    #[serde(skip)]
    pub expires_ms: i64,
    /// `open`, `used`, `revoked`, `expired`, or `closed` (a partner invite once the
    /// partner has joined).
    pub state: &'static str,
    /// For a device code's half, the id of its other half (the code admits a device into
    /// both spaces: one invite in each).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pair: Option<String>,
    /// A device code of another person (the partner's, for a device of theirs): its
    /// other half is in their personal space, which this device neither reads nor
    /// writes, so it is theirs to withdraw (not part of the JSON).
    #[serde(skip)]
    pub others_device_code: bool,
}

/// What a device code's two halves share: the person it adds a device to, the issuer,
/// the expiry.
type DeviceCodeKey = ([u8; 16], String, i64);

impl Device {
    /// Every invite of both spaces, newest first.
    pub fn invites(&mut self) -> Result<Vec<InviteRow>, DeviceError> {
        let people = crate::names::shown(&self.view_parts(SpaceKind::Shared, Parts::Goals)?.people);
        let now = self.now();
        let mut rows = Vec::new();
        // A device code's two halves: the same person, issuer and expiry, one per space.
        let mut halves: Vec<(usize, SpaceKind, DeviceCodeKey)> = Vec::new();
        let me = self.me.person();
        for kind in [SpaceKind::Shared, SpaceKind::Personal] {
            let rec = self.store.space(kind)?;
            let state = crate::sync::fold_state(&self.store, &rec.id)?;
            for (key, inv) in state.invites() {
                let by = inv.by.map(hex::encode).unwrap_or_default();
                if let Some(person) = inv.person {
                    halves.push((rows.len(), kind, (person, by.clone(), inv.expires_at)));
                }
                rows.push(InviteRow {
                    id: hex::encode(key),
                    space: kind.as_str().to_string(),
                    kind: if inv.person.is_some() {
                        "device"
                    } else {
                        "partner"
                    },
                    issued_by: people.get(&by).cloned().unwrap_or_else(|| "someone".into()),
                    issued_at: iso(inv.issued_at),
                    expires_at: iso(inv.expires_at),
                    expires_ms: inv.expires_at,
                    state: invite_state(&state, inv, now),
                    pair: None,
                    others_device_code: inv.person.is_some_and(|p| p != me),
                });
            }
        }
        // Looked up, not searched: a space may hold a thousand invites.
        let shared = |k: &SpaceKind| *k == SpaceKind::Shared;
        let by_code: std::collections::HashMap<(bool, &DeviceCodeKey), usize> = halves
            .iter()
            .map(|(i, k, c)| ((shared(k), c), *i))
            .collect();
        for (i, kind, code) in &halves {
            if let Some(j) = by_code.get(&(!shared(kind), code)) {
                rows[*i].pair = Some(rows[*j].id.clone());
            }
        }
        // A device code one half of which was withdrawn (by the partner, in the shared
        // space) admits no one: its other half is not open either.
        let revoked: std::collections::HashSet<String> = rows
            .iter()
            .filter(|r| r.state == "revoked")
            .map(|r| r.id.clone())
            .collect();
        for r in &mut rows {
            if r.state == "open" && r.pair.as_ref().is_some_and(|p| revoked.contains(p)) {
                r.state = "revoked";
            }
        }
        rows.sort_by(|a, b| b.issued_at.cmp(&a.issued_at));
        Ok(rows)
    }
}

/// Whether an invite still admits anyone now.
pub(super) fn invite_state(state: &SpaceState, inv: &Invite, now: i64) -> &'static str {
    if inv.revoked {
        "revoked"
    } else if inv.used {
        "used"
    } else if inv.expires_at < now {
        "expired"
    } else if (inv.person.is_none() && !state.is_personal() && state.persons_ever().len() >= 2)
        // The device that made it is no longer a member: the code died with it.
        || !state.is_member(&inv.issuer)
    {
        "closed"
    } else {
        "open"
    }
}
