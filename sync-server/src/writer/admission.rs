//! Admission: the checks a pushed event passes before it is stored, against the working
//! state of its space in the group: the space in its header, membership before the
//! chain (so that only members leave fork evidence), the full rules of
//! [`duet_core::membership`], fork evidence within its bounds, and the space's quota. A
//! push is admitted all or nothing.

use std::collections::HashMap;

use duet_core::event::{Event, Kind, SpaceId};
use duet_core::membership::{AdmitError, SpaceState};
use duet_core::protocol::{EventResult, EventStatus, PushResponse};

use super::{Cached, ForkLimits, PreparedPush, SpaceCache, current, lock};
use crate::creation::Credential;
use crate::error::ApiError;
use crate::limits::Config;
use crate::logging::Throttle;
use crate::store::{StoreError, Usage, WriteTxn};

/// Fork logs: at most a line a second, however fast a member equivocates.
static FORK_LOG: Throttle = Throttle::per_second();

/// Pushes refused over a space's quota: at most a line a second (a couple's device
/// retries its held changes at every sync).
static QUOTA_LOG: Throttle = Throttle::per_second();

/// What happened to a group's transaction while handling one push.
pub(super) enum Step {
    /// The push was handled (accepted or refused); the transaction is still open.
    Handled(Result<PushResponse, ApiError>),
    /// The database ended the whole transaction: this push gets the error, the others
    /// must be handled again.
    Lost(ApiError),
}

/// What one pushed event turned out to be while checking the batch.
enum Slot<'a> {
    /// Already stored, at this cursor.
    Stored(u64),
    /// New and admissible.
    New(&'a Event),
    /// A second copy of the new event at this index of the batch.
    Again(usize),
}

/// A group in progress: the working state of every space it touched.
pub(super) struct Group<'a> {
    pub(super) cache: &'a SpaceCache,
    pub(super) config: &'a Config,
    pub(super) forks: ForkLimits,
    /// Per space: the committed state plus the pushes of this group accepted so far.
    pub(super) work: HashMap<SpaceId, Cached>,
    /// Whether anything was written (events or fork evidence).
    pub(super) wrote: bool,
    /// Events stored by the group.
    pub(super) stored: u64,
}

impl Group<'_> {
    /// Handles one push inside the group's transaction.
    pub(super) fn handle<T: WriteTxn>(&mut self, txn: &mut T, push: &PreparedPush) -> Step {
        let result = self.push(txn, push);
        if txn.is_open() {
            return Step::Handled(result);
        }
        Step::Lost(result.err().unwrap_or_else(|| {
            ApiError::Internal("the write transaction was rolled back".to_string())
        }))
    }

    /// The working state of `space`: from this group, the cache, or folded from the
    /// database (the space is untouched by this group, so that is its committed state).
    pub(super) fn space<T: WriteTxn>(
        &mut self,
        txn: &mut T,
        space: SpaceId,
    ) -> Result<&mut Cached, StoreError> {
        if !self.work.contains_key(&space) {
            // The group holds the space's lock: what the database has now is final.
            let cached = lock(self.cache).get(&space).cloned();
            let c = current(txn, space, cached)?;
            if c.state.exists() {
                lock(self.cache).insert(space, c.clone());
            }
            self.work.insert(space, c);
        }
        self.work
            .get_mut(&space)
            .ok_or(StoreError::Corrupt("working state vanished"))
    }

    /// Checks and stores one push (all or nothing), exactly as a lone push.
    fn push<T: WriteTxn>(
        &mut self,
        txn: &mut T,
        push: &PreparedPush,
    ) -> Result<PushResponse, ApiError> {
        let space = push.space;
        let hashes = &push.hashes;
        let Cached {
            state: mut work,
            usage,
            ..
        } = self.space(txn, space)?.clone();
        // Which of the batch are stored already (earlier pushes of this group included).
        // Only an event at or below its author's head can be: the rest are not looked up.
        let seen: Vec<&Event> = push
            .events
            .iter()
            .filter(|ev| {
                let h = ev.header();
                work.head(&h.author).is_some_and(|(seq, _)| h.seq <= seq)
            })
            .collect();
        let stored = if seen.is_empty() {
            HashMap::new()
        } else {
            txn.cursors_of(&space, &seen)?
        };
        // A push that creates the space must be allowed to (token, limits, headroom)
        // before any of its events is looked at.
        let creation = match push.events.first() {
            Some(first) if !work.exists() && first.kind() == Kind::Genesis => {
                Some(self.check_creation(txn, push, first)?)
            }
            _ => None,
        };
        let (slots, rejection) = self.classify(txn, &mut work, push, &stored);
        if let Some((bad, error)) = rejection {
            return Err(refused(hashes, &slots, &stored, bad, error));
        }
        let new: Vec<&Event> = slots
            .iter()
            .filter_map(|s| match s {
                Slot::New(ev) => Some(*ev),
                _ => None,
            })
            .collect();
        let new_bytes: u64 = new.iter().map(|ev| ev.bytes().len() as u64).sum();
        let after = usage.plus(new.len() as u64, new_bytes);
        self.check_quota(space, usage, after)?;
        let (cursors, newest) = if new.is_empty() {
            (Vec::new(), newest_told(&stored))
        } else {
            let (cursors, newest) = self.store(txn, push, &new, creation.as_ref())?;
            *self.space(txn, space)? = Cached {
                state: work,
                usage: after,
                cursor: newest,
            };
            (cursors, newest)
        };
        tracing::info!(
            %space,
            accepted = cursors.len(),
            duplicates = slots.len() - cursors.len(),
            cursor = newest,
            "push stored"
        );
        Ok(PushResponse {
            results: accepted(hashes, &slots, &cursors),
            cursor: newest,
        })
    }

    /// Sorts the batch's events into stored, new (admitted into `work`) and repeated,
    /// in order; stops at the first refused one: the slots so far, and its index and why.
    fn classify<'p, T: WriteTxn>(
        &mut self,
        txn: &mut T,
        work: &mut SpaceState,
        push: &'p PreparedPush,
        stored: &HashMap<[u8; 32], u64>,
    ) -> (Vec<Slot<'p>>, Option<(usize, ApiError)>) {
        let mut slots = Vec::with_capacity(push.hashes.len());
        let mut new_in_batch: HashMap<[u8; 32], usize> = HashMap::new();
        for (i, ev) in push.events.iter().enumerate() {
            let hash = push.hashes[i];
            if let Some(&cursor) = stored.get(&hash) {
                slots.push(Slot::Stored(cursor));
                continue;
            }
            if let Some(&first) = new_in_batch.get(&hash) {
                slots.push(Slot::Again(first));
                continue;
            }
            match self.check_one(txn, work, push.space, ev, push.now_ms) {
                Ok(ev) => {
                    new_in_batch.insert(hash, i);
                    slots.push(Slot::New(ev));
                }
                Err(e) => return (slots, Some((i, e))),
            }
        }
        (slots, None)
    }

    /// Stores the admitted `new` events of `push` (and the creation of its space, if it
    /// creates one); returns their cursors and the space's newest.
    fn store<T: WriteTxn>(
        &mut self,
        txn: &mut T,
        push: &PreparedPush,
        new: &[&Event],
        creation: Option<&Credential>,
    ) -> Result<(Vec<u64>, u64), ApiError> {
        let space = push.space;
        if let Some(c) = creation {
            // Counted before the rows go in: a creation that then fails still counts
            // against the limits, which errs on the side of the relay.
            // The address only where the per-address limit counts it.
            let counted = self.config.max_creations_per_ip > 0;
            let address = c.address.filter(|_| counted).map(|a| a.to_string());
            txn.record_creation(&space, push.now_ms, address.as_deref(), c.token.as_deref())?;
            // Who created a space is kept only as long as the per-address limit needs.
            txn.forget_creators_before(
                push.now_ms
                    .saturating_sub(crate::creation::CREATION_WINDOW_MS),
            )?;
        }
        let cursors = txn.insert_events(&space, new, push.now_ms)?;
        self.wrote = true;
        self.stored += cursors.len() as u64;
        // Cursors only grow: the last one inserted is the space's newest.
        let newest = match cursors.last() {
            Some(c) => *c,
            None => txn.newest_cursor(&space)?,
        };
        Ok((cursors, newest))
    }

    /// Refuses a push that would take the space from `before` to `after`, over a quota.
    fn check_quota(&self, space: SpaceId, before: Usage, after: Usage) -> Result<(), ApiError> {
        let c = self.config;
        let over_events = c.space_max_events > 0 && after.events > c.space_max_events;
        let over_bytes = c.space_max_bytes > 0 && after.bytes > c.space_max_bytes;
        if !over_events && !over_bytes {
            return Ok(());
        }
        if let Some(suppressed) = QUOTA_LOG.allow() {
            tracing::warn!(
                %space,
                events = before.events,
                bytes = before.bytes,
                suppressed,
                "push refused: over the space's quota"
            );
        }
        Err(ApiError::QuotaExceeded(format!(
            "this push would bring the space to {} events and {} bytes, over this relay's \
             quota of {} events and {} bytes per space (0 = no limit); nothing was stored. \
             The space already holds {} events and {} bytes; ask the relay's operator to \
             raise --space-max-events / --space-max-bytes",
            after.events,
            after.bytes,
            c.space_max_events,
            c.space_max_bytes,
            before.events,
            before.bytes
        )))
    }

    /// Keeps `ev` as evidence that its author (a current member: membership is checked
    /// first) forked their chain at a seq where `existing` is stored, if the device's and
    /// the space's evidence have room; otherwise counts the attempt only. Evidence is
    /// not counted against the space's quota.
    fn record_fork<T: WriteTxn>(
        &mut self,
        txn: &mut T,
        space: SpaceId,
        ev: &Event,
        existing: &[u8; 32],
        now_ms: i64,
    ) -> Evidence {
        let author = ev.header().author;
        let recorded = txn.fork_room(&space, ev).and_then(|room| {
            if room.kept {
                return Ok(None);
            }
            let size = ev.bytes().len() as u64;
            let fits = room.device_rows < self.forks.per_device
                && room.space_bytes.saturating_add(size) <= self.forks.space_bytes;
            if fits {
                txn.insert_fork(ev, existing, now_ms)?;
                Ok(Some(Evidence::Kept))
            } else {
                txn.count_fork(&space, &author)?;
                Ok(Some(Evidence::Counted))
            }
        });
        let evidence = match recorded {
            Ok(None) => return Evidence::Kept,
            Ok(Some(e)) => e,
            Err(e) => {
                // The push is still refused as a fork; only the evidence is missing.
                tracing::error!(%space, "cannot record fork evidence: {e}");
                return Evidence::Failed;
            }
        };
        self.wrote = true;
        if let Some(suppressed) = FORK_LOG.allow() {
            tracing::warn!(
                %space,
                author = %hex::encode(author),
                seq = ev.header().seq,
                kept = matches!(evidence, Evidence::Kept),
                suppressed,
                "fork refused: a member signed two events with one seq"
            );
        }
        evidence
    }

    /// Admits one new, authentic event into the working state.
    fn check_one<'e, T: WriteTxn>(
        &mut self,
        txn: &mut T,
        work: &mut SpaceState,
        space: SpaceId,
        ev: &'e Event,
        now_ms: i64,
    ) -> Result<&'e Event, ApiError> {
        let h = ev.header();
        if h.space != space {
            return Err(ApiError::wrong_space(h.space, space));
        }
        if !work.exists() && ev.kind() != Kind::Genesis {
            return Err(ApiError::from_admit_error(AdmitError::NoSuchSpace));
        }
        // Membership before the chain: whatever its seq, a removed or unknown device's
        // event is refused here, so it never reaches the fork evidence (rules 6 and 9
        // of docs/protocol.md; a genesis or a join goes on to the full check).
        if work.exists() {
            if work.is_removed(&h.author) {
                return Err(ApiError::from_admit_error(AdmitError::Removed));
            }
            if !work.is_member(&h.author) && !matches!(ev.kind(), Kind::Join | Kind::Genesis) {
                return Err(ApiError::from_admit_error(AdmitError::NotMember));
            }
        }
        match work.admit(ev, Some(now_ms)) {
            Ok(_) => Ok(ev),
            Err(AdmitError::Fork(seq)) if work.is_member(&h.author) => {
                let author = h.author;
                match txn.hash_at(&space, &author, seq)? {
                    Some(existing) if existing != ev.hash() => {
                        let evidence = self.record_fork(txn, space, ev, &existing, now_ms);
                        Err(ApiError::Fork(format!(
                            "fork: device {} already has event {} with seq {seq} in this \
                             space; the relay keeps that one and {}. A device must never \
                             sign two events with the same seq: sync before writing again",
                            hex::encode(author),
                            hex::encode(existing),
                            match evidence {
                                Evidence::Kept => "keeps this conflicting event as evidence",
                                Evidence::Counted => {
                                    "counts this conflicting event (the evidence it keeps \
                                     of this device's forks is full)"
                                }
                                Evidence::Failed => "could not record this conflicting event",
                            }
                        )))
                    }
                    // The other event of this seq is earlier in the same push: a push is
                    // all or nothing, so neither is kept.
                    None => Err(ApiError::Fork(format!(
                        "fork: this push holds two events of device {} with seq {seq}; \
                         nothing of it is stored. A device must never sign two events with \
                         the same seq: sync before writing again",
                        hex::encode(author)
                    ))),
                    Some(_) => Err(ApiError::from_admit_error(AdmitError::Fork(seq))),
                }
            }
            Err(e) => Err(ApiError::from_admit_error(e)),
        }
    }
}

/// The answer to a batch refused at its event `bad`: one result per event, the events
/// already stored as duplicates, the refused one with its reason, the rest not stored.
fn refused(
    hashes: &[[u8; 32]],
    slots: &[Slot<'_>],
    stored: &HashMap<[u8; 32], u64>,
    bad: usize,
    error: ApiError,
) -> ApiError {
    let results = hashes
        .iter()
        .enumerate()
        .map(|(i, hash)| {
            let (status, cursor, reason) = match slots.get(i) {
                Some(Slot::Stored(c)) => (EventStatus::Duplicate, Some(*c), None),
                Some(_) => (EventStatus::NotStored, None, None),
                None if i == bad => (EventStatus::Rejected, None, Some(error.message())),
                None => match stored.get(hash) {
                    Some(c) => (EventStatus::Duplicate, Some(*c), None),
                    None => (EventStatus::NotStored, None, None),
                },
            };
            EventResult {
                hash: hex::encode(hash),
                status,
                reason,
                cursor,
            }
        })
        .collect();
    ApiError::Batch {
        error: Box::new(error),
        results,
    }
}

/// The results of an accepted batch: the new events with the `cursors` they were
/// stored at (in order), the others as duplicates with their first copy's cursor.
fn accepted(hashes: &[[u8; 32]], slots: &[Slot<'_>], cursors: &[u64]) -> Vec<EventResult> {
    let mut cursor_at: HashMap<usize, u64> = HashMap::new();
    let mut next = cursors.iter();
    let mut results = Vec::with_capacity(slots.len());
    for (i, slot) in slots.iter().enumerate() {
        let (status, cursor) = match slot {
            Slot::Stored(c) => (EventStatus::Duplicate, Some(*c)),
            Slot::New(_) => {
                let c = next.next().copied();
                if let Some(c) = c {
                    cursor_at.insert(i, c);
                }
                (EventStatus::Accepted, c)
            }
            Slot::Again(first) => (EventStatus::Duplicate, cursor_at.get(first).copied()),
        };
        results.push(EventResult {
            hash: hex::encode(hashes[i]),
            status,
            reason: None,
            cursor,
        });
    }
    results
}

/// What became of a refused fork event.
enum Evidence {
    /// Kept (now or before) in the space's fork evidence.
    Kept,
    /// Only counted: the device's or the space's evidence is full.
    Counted,
    /// Neither: the database failed (logged).
    Failed,
}

/// The cursor a push that stored nothing is answered with: the highest of its own
/// events'. Nothing proves who sent it (a push is not signed, its events are): a removed
/// device, or anyone holding one of a member's old events, re-sending it learns the
/// cursors of what it sent, not how far the space moved since.
fn newest_told(stored: &HashMap<[u8; 32], u64>) -> u64 {
    stored.values().copied().max().unwrap_or(0)
}
