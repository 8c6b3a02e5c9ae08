//! Pushing this device's events the relay has not acknowledged yet.

use super::{SyncError, SyncReport, Transport, TransportError};
use crate::advice::{NextStep, Warning};
use crate::event::{Event, Kind};
use crate::protocol::{ErrorBody, ErrorCode, EventStatus, PushResponse, encode_batch};
use crate::store::{SpaceRecord, Store};

/// Pushes every event of this device the relay has not acknowledged, in batches under
/// the body limit. A refusal is remembered (and returned) rather than failing the sync,
/// so the partner's events can still be pulled.
pub(super) fn push_unacked(
    store: &mut Store,
    rec: &SpaceRecord,
    relay: &str,
    transport: &dyn Transport,
    report: &mut SyncReport,
) -> Result<Option<TransportError>, SyncError> {
    // A new event gets a cursor past every one the relay served before: one acknowledged
    // at or below what this device read was not stored there (or the relay lost what it
    // served), and a later read would never show it missing. Read before the events to
    // send: another process's pull that reads one of them marks it sent, in the same
    // transaction as its cursor, so an event still listed here is past that cursor.
    let read_up_to = store.read_cursor(&rec.id)?;
    let batches = in_batches(store.unacked_events(&rec.id)?);
    let token = store.create_token(&rec.id)?;
    let (mut behind, mut unproven, mut behind_n) = (None, 0, 0);
    for batch in batches {
        let resp = match push_batch(transport, relay, rec, &batch, token.as_deref()) {
            Ok(resp) => resp,
            Err(TransportError::Refused { status, body }) => {
                return refused(store, rec, relay, status, body, report);
            }
            Err(e) => return Err(e.into()),
        };
        let mut acked = Vec::new();
        // An event counts as sent only when the answer names it (its hash, in its
        // place) as stored at a cursor: an event that is not acknowledged so is sent
        // again; taken as sent, it would reach no one until its author wrote again.
        unproven += batch.len().saturating_sub(resp.results.len());
        for (r, ev) in resp.results.iter().zip(&batch) {
            if !matches!(r.status, EventStatus::Accepted | EventStatus::Duplicate) {
                continue;
            }
            let hash = crate::crypto::sha256(ev);
            let cursor = r.cursor.filter(|c| i64::try_from(*c).is_ok());
            let Some(c) = cursor.filter(|_| r.hash.eq_ignore_ascii_case(&hex::encode(hash))) else {
                unproven += 1;
                continue;
            };
            if c <= read_up_to {
                behind.get_or_insert(c);
                behind_n += 1;
                continue;
            }
            acked.push((hash, Some(c)));
        }
        report.pushed_events += acked.len();
        store.mark_acked(&rec.id, &acked)?;
    }
    if let Some(c) = behind {
        report.acked_behind = Some(report.acked_behind.map_or(c, |b| b.min(c)));
    }
    // The last push of a sync says what stays unsent (a later one sends them again).
    report.unsent = unproven + behind_n;
    if unproven > 0 {
        report.warnings.push(Warning::then(
            format!(
                "the relay's answer did not acknowledge {unproven} of this device's events as \
                 stored (no cursor, or another event's hash): they stay unsent and go again \
                 with the next sync (if this repeats, the address may not lead to a Duet relay)"
            ),
            NextStep::CheckRelayUrl,
        ));
    }
    Ok(None)
}

/// Says that the relay acknowledged one of this device's events at a cursor this device
/// had read past (when no reading again from the start can settle it in this sync).
pub(super) fn warn_acked_behind(report: &mut SyncReport) {
    if let Some(c) = report.acked_behind.take() {
        report.warnings.push(Warning::new(format!(
            "the relay acknowledged this device's event at cursor {c}, which this device had \
             already read past: it did not keep it, or lost events (restored from an old backup, \
             or tampered with); the event stays unsent and goes again with the next sync"
        )));
    }
}

/// Pushes one batch of stored events; the operator's creation `token` goes only with the
/// batch that creates the space (it holds the genesis): it never leaves the device
/// otherwise.
pub(super) fn push_batch(
    transport: &dyn Transport,
    relay: &str,
    rec: &SpaceRecord,
    batch: &[Vec<u8>],
    token: Option<&str>,
) -> Result<PushResponse, TransportError> {
    let creates = batch
        .iter()
        .any(|ev| Event::stored_kind(ev) == Some(Kind::Genesis));
    transport.push(
        relay,
        &rec.id,
        encode_batch(batch.iter().map(Vec::as_slice)),
        token.filter(|_| creates),
    )
}

/// Whether the relay refused a push because its author is not (or no longer) a member.
pub(super) fn is_not_a_member(status: u16, body: &ErrorBody) -> bool {
    status == 403 && body.error == ErrorCode::NotAMember
}

/// The relay will take none of this device's unsent events (it says the device is not a
/// member: removed, most likely, by another device that synced first). Withdraws them,
/// so that the space's events are folded in the relay's order: an unsent removal or
/// leave of this device, folded first, would refuse the genuine removal of this device
/// as signed by a device it had removed, and the device would never learn it was
/// removed. Their changes stay here (unsent), a withdrawn membership change is redone
/// if the device is still a member after the pull (a relay that says so falsely cannot
/// undo it). A join or genesis not yet taken is kept: nothing was folded before it.
fn withdraw_unsent(
    store: &mut Store,
    rec: &SpaceRecord,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let Some((first, kind)) = store.first_unacked(&rec.id)? else {
        return Ok(());
    };
    if kind == Kind::Join.as_str() || kind == Kind::Genesis.as_str() {
        return Ok(());
    }
    let keys = store.epoch_keys(&rec.id)?;
    if let Some(redo) = store.withdraw_unacked(&rec.id, &first, &keys)? {
        report.redo.extend(redo);
        report.withdrawn = true;
    }
    Ok(())
}

/// The most bytes of events one push carries (a larger event goes alone), far under the
/// relay's body limit ([`crate::protocol::MAX_BODY_BYTES`], 16 MiB): a push must reach the relay within
/// its request timeout (60 s by default), which 16 MiB does only above some 280 KB/s.
/// A mebibyte needs about 17 KB/s, and what a slow link sent stays sent when a later
/// batch times out: the next sync goes on from there.
pub const PUSH_BATCH_BYTES: usize = 1024 * 1024;

/// Splits events into batches of at most [`PUSH_BATCH_BYTES`] (each event framed with 4
/// bytes), an event larger than that in a batch of its own.
pub(crate) fn in_batches(events: Vec<Vec<u8>>) -> Vec<Vec<Vec<u8>>> {
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut size = 0;
    let mut batches = Vec::new();
    for ev in events {
        if !batch.is_empty() && size + ev.len() + 4 > PUSH_BATCH_BYTES {
            batches.push(std::mem::take(&mut batch));
            size = 0;
        }
        size += ev.len() + 4;
        batch.push(ev);
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

/// An invite of this device refused for the space's quota (its person has made as many
/// invites as a person may, or the space is full) can never be taken: left first in the
/// queue it would hold back everything this device writes after it. It is withdrawn
/// (the changes after it are packaged again) and the refusal said, naming the code it
/// belonged to as dead.
fn withdraw_invite_over_quota(
    store: &mut Store,
    rec: &SpaceRecord,
    status: u16,
    body: &ErrorBody,
) -> Result<Option<Warning>, SyncError> {
    if status != 507 || body.error != ErrorCode::QuotaExceeded {
        return Ok(None);
    }
    let Some((first, kind)) = store.first_unacked(&rec.id)? else {
        return Ok(None);
    };
    let rejected = body
        .results
        .iter()
        .find(|r| r.status == EventStatus::Rejected)
        .is_some_and(|r| r.hash.eq_ignore_ascii_case(&hex::encode(first)));
    if !rejected || kind != Kind::Invite.as_str() {
        return Ok(None);
    }
    let keys = store.epoch_keys(&rec.id)?;
    store.withdraw_unacked(&rec.id, &first, &keys)?;
    Ok(Some(Warning::new(format!(
        "the relay refused an invite this device made ({status} {}: {}); it was withdrawn, \
         so the code made with it admits no one, and what this device wrote after it is sent",
        body.error, body.message
    ))))
}

/// Handles the relay's refusal of a batch: a lost membership race is withdrawn (and
/// `None` returned, nothing to report as refused); any other refusal is reported and
/// returned.
fn refused(
    store: &mut Store,
    rec: &SpaceRecord,
    relay: &str,
    status: u16,
    body: ErrorBody,
    report: &mut SyncReport,
) -> Result<Option<TransportError>, SyncError> {
    // A membership change of ours lost a race with a concurrent one (stale epoch, already
    // removed...), or another copy of this device (restored from a backup, or a copy of
    // its home) signed an event with the same sequence number first (`fork`): withdraw
    // ours and what followed it; the changes are packaged again after the pull (the
    // other copy's come first) and a removal redone if still needed.
    if status == 409
        && matches!(body.error, ErrorCode::Conflict | ErrorCode::Fork)
        && let Some(first) = body
            .results
            .iter()
            .find(|r| r.status == EventStatus::Rejected)
            .and_then(|r| hex::decode(&r.hash).ok())
            .and_then(|h| <[u8; 32]>::try_from(h).ok())
    {
        let keys = store.epoch_keys(&rec.id)?;
        if let Some(redo) = store.withdraw_unacked(&rec.id, &first, &keys)? {
            report.warnings.push(if body.error == ErrorCode::Fork {
                Warning::then(
                    "another copy of this device (restored from a backup, or a copy of its home) sent an event of its own first; this copy's unsent events were withdrawn and their changes are sent after it",
                    NextStep::UseOneCopy,
                )
            } else {
                // Routine (two devices of one person rotating the key after a leave);
                // said without the relay's words, which name protocol terms and commands.
                Warning::new("a change to who is in the space, made on this device, crossed one made at the same time on another device; this device's was withdrawn and is made again if still needed")
            });
            report.redo.extend(redo);
            report.withdrawn = true;
            return Ok(None);
        }
    }
    if is_not_a_member(status, &body) {
        withdraw_unsent(store, rec, report)?;
    }
    if let Some(w) = withdraw_invite_over_quota(store, rec, status, &body)? {
        report.push_refused = Some(w);
        return Ok(None);
    }
    report.push_refused = Some(if status == 403 && body.error.wants_a_token() {
        Warning::then(
            if body.error == ErrorCode::TokenExhausted {
                format!(
                    "the relay at {relay} has created all the spaces this device's creation \
                         token may create"
                )
            } else {
                format!(
                    "the relay at {relay} only lets couples with a creation token create spaces"
                )
            },
            NextStep::CreationToken {
                relay: Some(relay.to_string()),
            },
        )
    } else if status == 409 && body.error == ErrorCode::BrokenChain {
        // Still a gap after this sync gave the relay back what it lost (restored from
        // an old backup): the next sync gives back again.
        Warning::then(
            format!("{status} {}: {}", body.error, body.message),
            NextStep::SyncAgain,
        )
    } else {
        Warning::new(format!("{status} {}: {}", body.error, body.message))
    });
    Ok(Some(TransportError::Refused { status, body }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_carry_a_mebibyte_at_most_and_a_larger_event_alone() {
        let sizes = [600_000, 600_000, 3_000_000, 10, 10, 1_048_572];
        let events: Vec<Vec<u8>> = sizes.iter().map(|n| vec![0u8; *n]).collect();
        let batches = in_batches(events);
        let lens: Vec<Vec<usize>> = batches
            .iter()
            .map(|b| b.iter().map(Vec::len).collect())
            .collect();
        assert_eq!(
            lens,
            vec![
                vec![600_000],
                vec![600_000],
                vec![3_000_000],
                vec![10, 10],
                vec![1_048_572]
            ]
        );
        for batch in &batches {
            let framed: usize = batch.iter().map(|e| e.len() + 4).sum();
            assert!(batch.len() == 1 || framed <= PUSH_BATCH_BYTES, "{framed}");
        }
    }
}
