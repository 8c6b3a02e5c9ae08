//! Filing one served event: accepted (its changes applied, a removal's new space key
//! taken), refused (kept as evidence, with the reason reported) or held until an earlier
//! event of its author or its key arrives.

use crate::advice::{NextStep, Warning};
use automerge::{Change, ReadDoc};

use super::SyncError;
use super::pull::{Batch, Pull};
use super::summary::{membership_news, person_key, tally};
use super::verify::{ContentRefusal, Rejection, verify_event};
use crate::doc::SpaceDoc;
use crate::event::{Event, MembershipOp};
use crate::membership::SpaceState;
use crate::store::{Accepted, Refused};

impl Pull<'_> {
    /// Verifies one served event and files it as accepted, refused or held (waiting for
    /// an earlier event of its author).
    pub(super) fn process(
        &mut self,
        state: &mut SpaceState,
        doc: &mut SpaceDoc,
        batch: &mut Batch,
        c: u64,
        bytes: Vec<u8>,
    ) -> Result<(), SyncError> {
        let hash = crate::crypto::sha256(&bytes);
        match verify_event(state, self.rec, &self.keys, bytes.clone()) {
            Ok((ev, content)) => {
                // A relay that left out of a page an event of another device that this
                // one builds on (its change placed in an object only that event made):
                // held, not refused for good, while a read from the start, which the
                // next sync makes for it, may bring what it builds on; judged once one
                // has passed it.
                if let Ok(changes) = &content
                    && !(self.from_start && self.reached >= c)
                    && builds_on_what_is_missing(state, doc, &ev, changes)
                {
                    batch.held.push((c, bytes));
                    return Ok(());
                }
                self.take_rotated_key(&ev, batch);
                // `verify_event` checked admissibility; admit cannot fail now. The chain
                // advances even when the content is refused, so the author's later
                // events still fit.
                let _ = state.admit(&ev, None);
                // Signed as this device but not made by this copy: another copy's
                // changes may reuse the numbers of this copy's unsent ones (the sync
                // then sets those aside and makes them again after).
                if let Ok(changes) = &content
                    && ev.header().author == self.me.device_key()
                    && super::set_aside::another_copy_numbered(doc, changes)
                {
                    return Err(SyncError::AnotherCopy { unsent: true });
                }
                let outcome = match content {
                    Ok(changes) => check_and_apply(state, doc, &ev, changes)?,
                    Err(refusal) => Err(refusal),
                };
                let changes = match outcome {
                    Ok(changes) => changes,
                    Err(refusal) => {
                        self.refuse_content(batch, hash, &ev, refusal, bytes);
                        Vec::new()
                    }
                };
                self.count_arrivals(state, doc, &ev, &changes);
                if ev.header().author != self.me.device_key()
                    && let Some(news) = membership_news(state, &ev, &self.me.device_key())
                {
                    self.report.membership.push(news);
                }
                self.report.received_events += 1;
                batch.accepted.push(Accepted {
                    event: ev,
                    cursor: c,
                    changes,
                });
            }
            Err(rejection) => {
                let plain = !self.named_after_departure(state, &rejection, &bytes);
                self.file_rejection(batch, c, hash, bytes, rejection, plain);
            }
        }
        Ok(())
    }

    /// Names an event refused as by a device this one saw leave or removed (the relay
    /// took it after a departure it no longer shows); whether it did.
    fn named_after_departure(
        &mut self,
        state: &SpaceState,
        rejection: &Rejection,
        bytes: &[u8],
    ) -> bool {
        if !matches!(rejection, Rejection::Refuse(_)) {
            return false;
        }
        let Some((author, d)) = Event::decode(bytes.to_vec()).ok().and_then(|ev| {
            let author = ev.header().author;
            state.departure(&author).map(|d| (author, *d))
        }) else {
            return false;
        };
        super::summary::after_departure(self.report, &hex::encode(&author[..6]), 1, &d);
        true
    }

    /// Files an event that was not accepted: held (waiting for an earlier event or a
    /// key) or refused (said in a warning when `say`).
    fn file_rejection(
        &mut self,
        batch: &mut Batch,
        c: u64,
        hash: [u8; 32],
        bytes: Vec<u8>,
        rejection: Rejection,
        say: bool,
    ) {
        match rejection {
            Rejection::Wait => batch.held.push((c, bytes)),
            Rejection::NoKey(epoch) => {
                let w = Warning::new(format!(
                    "events are encrypted under key epoch {epoch}, which this device has no key for: a removal (key rotation) event has not been served to it; they wait"
                ));
                if !self.report.warnings.contains(&w) {
                    self.report.warnings.push(w);
                }
                batch.held.push((c, bytes));
            }
            // Not filed: the read stops before it and reads its cursor again.
            Rejection::NotAuthentic(reason) => batch.not_authentic = Some(reason),
            Rejection::Refuse(reason) => {
                if say {
                    self.report.warnings.push(Warning::new(format!(
                        "refused event {} served by the relay: {reason}",
                        &hex::encode(hash)[..12]
                    )));
                }
                batch.refused.push(Refused {
                    hash,
                    reason,
                    bytes,
                });
            }
        }
    }

    /// Counts the changes of an accepted event that were applied; those whose
    /// dependencies this device lacks (a change it refused, or one not served yet) wait
    /// in the document, and are counted as waiting instead ([`Pull::warn_queued`]).
    fn count_arrivals(
        &mut self,
        state: &SpaceState,
        doc: &SpaceDoc,
        ev: &Event,
        changes: &[Change],
    ) {
        // Nothing waits while Automerge's queue is empty (the usual case); else a change
        // is applied when the change graph has it.
        let am = doc.automerge();
        let queue_empty = am.get_missing_deps(&[]).is_empty();
        let applied = |c: &Change| queue_empty || am.get_change_meta_by_hash(&c.hash()).is_some();
        let waiting = changes.iter().filter(|c| !applied(c)).count();
        if waiting > 0 {
            *self.queued.entry(ev.header().author).or_default() += waiting;
        }
        let arrived: Vec<&Change> = changes.iter().filter(|c| applied(c)).collect();
        if !arrived.is_empty() {
            tally(&mut self.arrivals, person_key(state, ev), arrived);
        }
    }

    /// One warning per device whose changes wait, however many events they came in.
    pub(super) fn warn_queued(&mut self) {
        for (device, n) in std::mem::take(&mut self.queued) {
            let (count, verb) = match n {
                1 => ("1 change".to_string(), "waits"),
                n => (format!("{n} changes"), "wait"),
            };
            self.report.warnings.push(Warning::then(
                format!(
                    "{count} of device {} {verb} for an earlier change this device refused or has not received; kept, and applied if that change comes. A change this device refused never comes",
                    &hex::encode(device)[..12]
                ),
                NextStep::ReplaceDevice,
            ));
        }
    }

    /// A removal or rotation hands this device the next epoch's key, if it remains:
    /// take it.
    fn take_rotated_key(&mut self, ev: &Event, batch: &mut Batch) {
        let Ok(op) = MembershipOp::decode(ev) else {
            return;
        };
        let Some(rekey) = op.rekey() else { return };
        let epoch = rekey.epoch;
        let Some((_, wrapped)) = rekey.keys.iter().find(|(d, _)| *d == self.me.device_key()) else {
            return;
        };
        match crate::keywrap::unwrap_committed(
            self.me,
            rekey.eph,
            wrapped,
            &self.rec.id,
            epoch,
            rekey.commit,
        ) {
            Ok(key) => {
                self.keys.insert(epoch, key.clone());
                batch.new_keys.push((epoch, key));
            }
            Err(e) => {
                self.refused_key = Some(epoch);
                self.report.warnings.push(Warning::then(
                    format!(
                        "{e} (the key change by device {}); this device takes no key from it, and starts a new key \
                         for every member of the space so that writing goes on. If this happens again, that device \
                         is misbehaving",
                        &hex::encode(ev.header().author)[..12]
                    ),
                    NextStep::CompareSafetyCode,
                ));
            }
        }
    }

    /// Files the refused content of an authentic event as evidence and reports it.
    fn refuse_content(
        &mut self,
        batch: &mut Batch,
        hash: [u8; 32],
        ev: &Event,
        refusal: ContentRefusal,
        bytes: Vec<u8>,
    ) {
        let ContentRefusal { reason, stalled } = refusal;
        if stalled {
            self.stalls += 1;
        }
        batch.flush = true;
        self.report.warnings.push(Warning::new(format!(
            "refused the content of event {} by device {}: {reason}",
            &hex::encode(hash)[..12],
            &hex::encode(ev.header().author)[..12]
        )));
        batch.refused.push(Refused {
            hash,
            reason,
            bytes,
        });
    }
}

/// From how many changes an event's owner rules are checked on a second core while its
/// changes are applied: a joiner's backlog arrives in a few events of tens of thousands
/// of changes each, where the rules take about half as long as applying.
const CHECK_BESIDE_APPLY_FROM: usize = 2_000;

/// An event is checked beside its apply only if its operations are also at least one
/// in this many of the document's: the copy of the document the rules read costs in proportion to the
/// document (about 5 ms at 50,000 changes), what the overlap saves in proportion to the
/// event (the rules take some 150 times longer per operation than copying), so a
/// partner's stream of smaller events into a long history is checked as before, not
/// each with a copy of everything.
const CHECK_BESIDE_APPLY_SHARE: u64 = 16;

/// Whether an event is worth checking beside its apply (see the two constants above).
fn check_beside_apply(doc: &SpaceDoc, changes: &[Change]) -> bool {
    use automerge::ReadDoc;
    let ops: u64 = changes.iter().map(|c| c.len() as u64).sum();
    changes.len() >= CHECK_BESIDE_APPLY_FROM
        && ops.saturating_mul(CHECK_BESIDE_APPLY_SHARE) >= doc.automerge().stats().num_ops
}

/// Checks an authentic event's changes against the owner rules and applies those that
/// pass to `doc`; refused content leaves `doc` as it was. A large event is checked on a
/// second core while it is applied, against a copy of the document as it was, which
/// becomes the document again if the rules refuse.
fn check_and_apply(
    state: &SpaceState,
    doc: &mut SpaceDoc,
    ev: &Event,
    changes: Vec<Change>,
) -> Result<Result<Vec<Change>, ContentRefusal>, SyncError> {
    // Changes the document has already are nothing new, whichever event carried them
    // first: a device told falsely that its push was refused sends its changes again
    // in a new event, and checking them again would read their own writes as the
    // replacement of an existing entity.
    let changes: Vec<Change> = changes
        .into_iter()
        .filter(|c| doc.automerge().get_change_by_hash(&c.hash()).is_none())
        .collect();
    if !check_beside_apply(doc, &changes) {
        let changes = match owner_rules(state, doc, ev, changes) {
            Ok(changes) => changes,
            Err(refusal) => return Ok(Err(refusal)),
        };
        doc.apply(changes.clone())?;
        return Ok(Ok(changes));
    }
    let before = doc.clone();
    let to_apply = changes.clone();
    let (verdict, applied) = std::thread::scope(|s| {
        let rules = s.spawn(|| owner_rules(state, &before, ev, changes));
        let applied = doc.apply(to_apply);
        (rules.join(), applied)
    });
    match verdict {
        Ok(Ok(changes)) => {
            applied?;
            Ok(Ok(changes))
        }
        Ok(Err(refusal)) => {
            *doc = before;
            Ok(Err(refusal))
        }
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Whether `changes` depend on changes the document does not have (nor the event
/// itself), and the owner rules refuse them as they stand: they may be right once those
/// arrive.
fn builds_on_what_is_missing(
    state: &SpaceState,
    doc: &SpaceDoc,
    ev: &Event,
    changes: &[Change],
) -> bool {
    let am = doc.automerge();
    let own: std::collections::HashSet<automerge::ChangeHash> =
        changes.iter().map(Change::hash).collect();
    let missing = changes
        .iter()
        .flat_map(|c| c.deps())
        .any(|d| !own.contains(d) && am.get_change_meta_by_hash(d).is_none());
    missing && owner_rules(state, doc, ev, changes.to_vec()).is_err()
}

/// What an authentic, in-sequence event may touch: the owner rules, against the person
/// of the device that signed it.
fn owner_rules(
    state: &SpaceState,
    doc: &SpaceDoc,
    ev: &Event,
    changes: Vec<Change>,
) -> Result<Vec<Change>, ContentRefusal> {
    let person = state
        .all_devices()
        .get(&ev.header().author)
        .map(|m| hex::encode(m.person))
        .ok_or_else(|| {
            ContentRefusal::from("its signer belongs to no person of this space".to_string())
        })?;
    crate::rules::check(doc.automerge(), &person, &changes)
        .map(|()| changes)
        .map_err(|v| format!("it breaks the owner rules: {v}").into())
}
