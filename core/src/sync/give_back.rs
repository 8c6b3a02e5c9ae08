//! Giving a relay back the events it lost. A relay restored from an older backup serves
//! less than this device already read, or numbers new events with cursors this device
//! already read past (so a plain read after the cursor would skip them). Either way this
//! device pushes again every event the relay had once taken, its own and its partner's
//! (events are self-authenticating: any device may carry any member's), in the order the
//! relay had numbered them, so that each fits the membership and chains before it; then
//! it forgets the old numbering and reads the space again from the start.

use super::push::{in_batches, push_batch, push_unacked};
use super::{SyncError, SyncReport, Transport, TransportError};
use crate::advice::Warning;
use crate::protocol::{ErrorCode, EventStatus};
use crate::store::{SpaceRecord, Store};
use crate::words::count;

/// How this device saw that the relay lost events.
#[derive(Debug, Clone, Copy)]
pub(super) enum Loss {
    /// The relay's newest cursor is below this device's.
    EndsBefore {
        /// The relay's newest cursor.
        newest: u64,
        /// This device's cursor.
        cursor: u64,
    },
    /// The relay serves another event (or none) where this device read one.
    Renumbered {
        /// The cursor of the event this device read there.
        at: u64,
    },
    /// The relay refused this device's next event as a gap in its chain: it lost one it
    /// had taken after this device's last read, which no read shows.
    ChainBroken,
    /// The relay refused a read as by a device that never was a member, though it had
    /// taken this device's join (or genesis): it lost the events that made it one.
    MemberForgotten,
    /// The relay answered that it does not hold this personal space, though it had taken
    /// the event that made this device a member of it, and holds the shared space.
    SpaceForgotten,
    /// The relay acknowledged this device's event at a cursor this device had read past
    /// without finding the event there: an earlier read hid it, or the relay renumbered.
    AckedBehind {
        /// The cursor it named.
        at: u64,
    },
}

impl Loss {
    fn describe(self) -> String {
        match self {
            Loss::EndsBefore { newest, cursor } => format!(
                "the relay now ends at cursor {newest} but this device already received or sent events up to {cursor}"
            ),
            Loss::Renumbered { at } => format!(
                "the relay no longer serves at cursor {at} the event this device received there"
            ),
            Loss::ChainBroken => "the relay refused this device's next event as a gap in its \
                 chain, so it no longer holds an event of this device it had taken"
                .to_string(),
            Loss::MemberForgotten => "the relay answered that this device never was a member \
                 of the space, though it had taken the event that made it one"
                .to_string(),
            Loss::SpaceForgotten => "the relay answered that it does not hold your personal \
                 space, though it had taken its first events (it holds your shared space)"
                .to_string(),
            Loss::AckedBehind { at } => format!(
                "the relay acknowledged this device's event at cursor {at}, which this device had \
                 read past without finding it there"
            ),
        }
    }
}

/// Pushes this device's unacknowledged events. When the relay refuses them as a gap in
/// this device's own chain (409 `broken_chain`), it lost an event it had taken from this
/// device after this device last read (a backup restored in between, or a relay that
/// acknowledged what it did not keep): no read shows that, so the refusal is the sign,
/// and every event it once took is given back before pushing again, once per sync.
pub(super) fn push_or_give_back(
    store: &mut Store,
    rec: &SpaceRecord,
    relay: &str,
    transport: &dyn Transport,
    report: &mut SyncReport,
) -> Result<Option<TransportError>, SyncError> {
    let refusal = push_unacked(store, rec, relay, transport, report)?;
    let broken = matches!(
        &refusal,
        Some(TransportError::Refused { status: 409, body }) if body.error == ErrorCode::BrokenChain
    );
    let behind = report.acked_behind;
    if report.rollback || !(broken || behind.is_some()) {
        super::push::warn_acked_behind(report);
        return Ok(refusal);
    }
    report.acked_behind = None;
    if broken {
        report.push_refused = None;
        return give_back(store, rec, relay, transport, report, Loss::ChainBroken);
    }
    // What the relay says it holds is read again from the start, where this device's
    // event shows at its cursor (or the relay is found out).
    let at = behind.unwrap_or_default();
    give_back(
        store,
        rec,
        relay,
        transport,
        report,
        Loss::AckedBehind { at },
    )
}

/// Gives back every event the relay once took, then sets the space to be read again
/// from the start; pushes this device's unacknowledged events after them (the first
/// push of the sync was refused if the relay lost their predecessors) and returns that
/// push's refusal, if any. A refusal of the events given back is reported and ends the
/// giving back; what the relay took stays.
pub(super) fn give_back(
    store: &mut Store,
    rec: &SpaceRecord,
    relay: &str,
    transport: &dyn Transport,
    report: &mut SyncReport,
    loss: Loss,
) -> Result<Option<TransportError>, SyncError> {
    report.rollback = true;
    let token = store.create_token(&rec.id)?;
    let mut taken_back = 0usize;
    let mut refusal = None;
    for batch in in_batches(store.relay_taken_events(&rec.id)?) {
        match push_batch(transport, relay, rec, &batch, token.as_deref()) {
            Ok(resp) => {
                taken_back += resp
                    .results
                    .iter()
                    .filter(|r| r.status == EventStatus::Accepted)
                    .count();
            }
            Err(TransportError::Refused { status, body }) => {
                refusal = Some(format!("{status} {}: {}", body.error, body.message));
                if status == 409 && body.error == ErrorCode::Conflict {
                    report.own_unsent_on_give_back |= unsend_refused_own(store, rec, &body)?;
                }
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    store.forget_relay_positions(&rec.id)?;
    report.given_back += taken_back;
    let mut text = format!(
        "{}: it lost or hides events (restored from an old backup, or tampered with); this device gave back {} it held \
         and read the space again from the start",
        loss.describe(),
        count(taken_back, "event", "events")
    );
    match refusal {
        // This device's own key change lost to one the relay took meanwhile: made again.
        Some(_) if report.own_unsent_on_give_back => text.push_str(
            "; it had taken a change to who is in the space from another device in place of \
             one of this device's, which this device makes again after it",
        ),
        Some(why) => text.push_str(&format!(
            "; the relay refused to take back the rest ({why}): they stay on this device (its export has them)"
        )),
        None => {}
    }
    report.warnings.push(Warning::new(text));
    let refusal = push_unacked(store, rec, relay, transport, report);
    super::push::warn_acked_behind(report);
    refusal
}

/// A give-back refused as conflicting at one of this device's own events (a key change
/// the relay lost and, meanwhile, took the partner's in its place): that event and this
/// device's after it are no longer counted as on the relay (see
/// [`Store::unsend_own_from`]). Before, the device folded its lost removal first,
/// refused the partner's for a stale key epoch, and the two stayed apart for good.
fn unsend_refused_own(
    store: &mut Store,
    rec: &SpaceRecord,
    body: &crate::protocol::ErrorBody,
) -> Result<bool, SyncError> {
    let Some(hash) = body
        .results
        .iter()
        .find(|r| r.status == EventStatus::Rejected)
        .and_then(|r| hex::decode(&r.hash).ok())
        .and_then(|h| <[u8; 32]>::try_from(h).ok())
    else {
        return Ok(false);
    };
    let me = store.require_identity()?.device_key();
    Ok(store.unsend_own_from(&rec.id, &me, &hash)? > 0)
}

/// Whether a read's refusal says the relay does not hold this personal space though it
/// took the event that made this device a member (the genesis, or its join), while it
/// is the relay of this person's shared space (a read there shows this device a
/// member): a relay restored from a backup older than the personal space. Only then is
/// the space given back, its genesis first, which a member's first personal space needs
/// no token for; a relay that never held it, or another relay than the shared space's,
/// is given nothing (docs/decisions.md, "A relay that lost events").
pub(super) fn space_forgotten(
    store: &Store,
    rec: &SpaceRecord,
    me: &crate::identity::Identity,
    transport: &dyn Transport,
    e: &TransportError,
) -> bool {
    let TransportError::Refused { body, .. } = e else {
        return false;
    };
    if body.error != ErrorCode::NoSuchSpace
        || rec.kind != crate::store::SpaceKind::Personal
        || !store
            .entry_acked(&rec.id, &me.device_key())
            .unwrap_or(false)
    {
        return false;
    }
    let Ok(shared) = store.space(crate::store::SpaceKind::Shared) else {
        return false;
    };
    let Some(relay) = rec.relay.as_deref() else {
        return false;
    };
    shared.relay.as_deref() == Some(relay) && transport.pull(relay, &shared.id, 0, 1, me).is_ok()
}

/// Whether a read's refusal says the relay never knew this device as a member while
/// this device holds the events that made it one, which the relay took: a relay
/// restored from a backup older than this device's join. Only this device may hold its
/// join (its partner's devices may not have read it yet), so only it can give it back.
/// `member`: whether the membership this device folded makes it one (a device that has
/// read nothing yet folds none: its acknowledged join says it).
pub(super) fn member_forgotten(
    store: &Store,
    (rec, me): (&SpaceRecord, &crate::identity::Identity),
    member: bool,
    e: &TransportError,
) -> bool {
    let TransportError::Refused { status, body } = e else {
        return false;
    };
    let me = me.device_key();
    super::push::is_not_a_member(*status, body)
        && (member || store.entry_acked(&rec.id, &me).unwrap_or(false))
}
