//! Checking one served event, trusting nothing the relay says: signature, space,
//! membership, the author's hash chain, the key epoch, decryption, and that every
//! Automerge change inside is authored by the signer's actor.

use std::collections::BTreeMap;

use automerge::Change;

use crate::event::{Event, Kind, PayloadError, decode_changes};
use crate::identity::actor_for;
use crate::membership::{AdmitError, SpaceState};
use crate::store::SpaceRecord;

/// A verified event. The outer error of [`verify_event`] refuses the event entirely
/// (not authentic, or not admissible here); this inner one refuses only its content
/// (authentic and in sequence, but undecryptable or carrying forged authorship).
type Verified = (Event, Result<Vec<Change>, ContentRefusal>);

/// Why the content of an authentic event was refused.
pub(super) struct ContentRefusal {
    pub(super) reason: String,
    /// The parser did not finish in time (it costs seconds; a sync stops after a few).
    pub(super) stalled: bool,
}

impl From<String> for ContentRefusal {
    fn from(reason: String) -> Self {
        ContentRefusal {
            reason,
            stalled: false,
        }
    }
}

/// Why a served event is not taken now.
pub(super) enum Rejection {
    /// Authentic, but an earlier event of its author is missing: keep it until then.
    Wait,
    /// Not acceptable, with the reason.
    Refuse(String),
    /// Not an authentic event of this space at all (it does not decode, its signature
    /// does not verify, or it names another space): an honest relay verified every
    /// event it stores, so it never serves one. Served where an event of the space was
    /// due, it is not that event: the stored cursor stays before it (`Pull::not_authentic`).
    NotAuthentic(String),
    /// Authentic and in sequence, but sealed under a key epoch this device lacks.
    NoKey(u32),
}

/// Verifies one pulled event against the space's state.
pub(super) fn verify_event(
    state: &SpaceState,
    rec: &SpaceRecord,
    keys: &BTreeMap<u32, crate::crypto::SpaceKey>,
    bytes: Vec<u8>,
) -> Result<Verified, Rejection> {
    let ev = Event::decode(bytes).map_err(|e| Rejection::NotAuthentic(e.to_string()))?;
    if ev.header().space != rec.id {
        return Err(Rejection::NotAuthentic(
            "it is an event of another space".into(),
        ));
    }
    match state.check(&ev, None) {
        Ok(_) => {}
        // An earlier event of the author, the genesis, the invite a join uses, or the
        // join of a device never seen yet may still arrive: wait for it.
        Err(AdmitError::Gap { .. } | AdmitError::NoSuchSpace | AdmitError::UnknownInvite) => {
            return Err(Rejection::Wait);
        }
        Err(AdmitError::NotMember)
            if !state.all_devices().contains_key(&ev.header().author)
                && !state.is_removed(&ev.header().author) =>
        {
            return Err(Rejection::Wait);
        }
        // Sealed under a key epoch whose rotation event has not been served here yet.
        Err(AdmitError::FutureEpoch { got, .. }) => return Err(Rejection::NoKey(got)),
        Err(AdmitError::Fork(seq)) => {
            return Err(Rejection::Refuse(format!(
                "equivocation: device {} signed two different events with seq {seq}; the first one is kept",
                &hex::encode(ev.header().author)[..12]
            )));
        }
        Err(e) => return Err(Rejection::Refuse(e.to_string())),
    }
    if ev.kind() != Kind::Changes {
        return Ok((ev, Ok(Vec::new())));
    }
    let epoch = ev.epoch().unwrap_or(0);
    let key = keys.get(&epoch).ok_or(Rejection::NoKey(epoch))?;
    let content = open_changes(&ev, key);
    Ok((ev, content))
}

fn open_changes(ev: &Event, key: &crate::crypto::SpaceKey) -> Result<Vec<Change>, ContentRefusal> {
    let plain = ev.open(key).map_err(|e| e.to_string())?;
    let changes = decode_changes(&plain).map_err(|e| ContentRefusal {
        stalled: matches!(e, PayloadError::Stalled(_)),
        reason: e.to_string(),
    })?;
    let actor = actor_for(&ev.header().author);
    if let Some(bad) = changes.iter().find(|c| c.actor_id() != &actor) {
        return Err(format!(
            "it carries a change by actor {} that is not its signer's (forged authorship)",
            bad.actor_id()
        )
        .into());
    }
    Ok(changes)
}
