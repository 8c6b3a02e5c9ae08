//! Reading pages from the relay. The home's write lock is held while a page is
//! verified, applied and stored, never while waiting for the relay; what another process
//! committed in between is loaded again first. Events waiting for an earlier one are
//! retried whenever something changed, and a sync stops early (saying why) rather than
//! read without end.

use crate::advice::Warning;
use std::collections::{BTreeMap, HashMap};

use super::give_back::{Loss, give_back};
use super::local::Local;
pub(super) use super::page_run::Batch;
use super::page_run::PageRun;
use super::stop::{PageEnd, Stop};
use super::{
    Arrivals, AtAfter, MAX_STALLS_PER_SYNC, SyncError, SyncReport, Transport, TransportError,
};
use crate::event::Event;
use crate::identity::Identity;
use crate::protocol::MAX_READ_LIMIT;
use crate::store::{SpaceRecord, Store};

/// Where a read starts: after the stored cursor, or below it when events still wait
/// from an earlier sync (they may wait for one the relay left out of a page while the
/// cursor moved past it: read again from below that gap).
pub(super) fn start_cursor(store: &Store, rec: &SpaceRecord) -> Result<u64, SyncError> {
    Ok(match store.gap_floor(&rec.id)? {
        Some(floor) => floor.min(rec.cursor),
        None => rec.cursor,
    })
}

/// The pull of one sync: what it has learnt so far and what it reports. Filing one
/// event is in `process`.
pub(super) struct Pull<'a> {
    pub(super) rec: &'a SpaceRecord,
    pub(super) me: &'a Identity,
    /// Space keys by epoch, including those received during this pull.
    pub(super) keys: BTreeMap<u32, crate::crypto::SpaceKey>,
    /// What arrived, keyed by person id (named at the end of the sync).
    pub(super) arrivals: BTreeMap<String, Arrivals>,
    /// Contents refused at the parser's deadline in this sync.
    pub(super) stalls: usize,
    /// Changes that arrived but wait in the document, by the device that signed them.
    pub(super) queued: BTreeMap<[u8; 32], usize>,
    /// Whether this read started at the space's first event (a join, a read again from
    /// the start), and the cursor it has reached: an event whose changes build on
    /// changes this device lacks is held while a read from the start may still bring
    /// them, and judged once one has passed it ([`Pull::process`]).
    pub(super) from_start: bool,
    pub(super) reached: u64,
    /// The epoch of a key change (removal or rotation) this device was a recipient of
    /// but took no key from (its entry did not open to the key committed to): the sync
    /// then starts a new key for every member ([`super::package`]).
    pub(super) refused_key: Option<u32>,
    /// The stored cursor stays at or below this: an entry after it was not an authentic
    /// event of the space ([`Pull::not_authentic`]).
    pub(super) floor: Option<u64>,
    pub(super) report: &'a mut SyncReport,
}

impl<'a> Pull<'a> {
    /// A pull of `rec`'s space, starting with the space keys stored here.
    pub(super) fn new(
        rec: &'a SpaceRecord,
        me: &'a Identity,
        keys: BTreeMap<u32, crate::crypto::SpaceKey>,
        report: &'a mut SyncReport,
    ) -> Self {
        Pull {
            rec,
            me,
            keys,
            arrivals: BTreeMap::new(),
            stalls: 0,
            queued: BTreeMap::new(),
            from_start: false,
            reached: 0,
            refused_key: None,
            floor: None,
            report,
        }
    }

    /// Reads pages after the stored cursor until the relay's end or a reason to stop
    /// (the report then says why). Returns the cursor reached.
    pub(super) fn read_all(
        &mut self,
        store: &mut Store,
        local: &mut Local,
        relay: &str,
        transport: &dyn Transport,
        push_refusal: &mut Option<TransportError>,
    ) -> Result<u64, SyncError> {
        let mut cursor = start_cursor(store, self.rec)?;
        self.from_start = cursor == 0;
        let mut pages = 0usize;
        // The first read starts after the last event this device read, which the relay
        // must still hold at that cursor: if it does not, it lost events and numbers new
        // ones with cursors this device has read past.
        let mut anchor = store.cursor_anchor(&self.rec.id, cursor)?;
        // Own events the relay acknowledged may have cursors past the last read; the
        // relay must serve each of them there, not another event it numbered after
        // losing them, and must not end before the last of them.
        let mut own_after = store.events_after_cursor(&self.rec.id, cursor)?;
        let mut gave_back = false;
        loop {
            let after = anchor.map_or(cursor, |(at, _)| at);
            // If the pull fails after a refused push, the push's reason is the real one
            // (e.g. a join the relay refused leaves the device unable to read).
            let page = transport.pull(relay, &self.rec.id, after, MAX_READ_LIMIT, self.me);
            let mut page = match page {
                Ok(page) => page,
                Err(e) => match self.forgotten(store, local, transport, &e, push_refusal) {
                    // Once per sync, as for any loss: given back, then read from the start.
                    Some(loss) if !gave_back => {
                        gave_back = true;
                        self.give_back(store, local, relay, transport, push_refusal, loss)?;
                        (cursor, anchor) = (0, None);
                        own_after.clear();
                        continue;
                    }
                    Some(Loss::MemberForgotten) => return Err(self.still_denied(store, e)?),
                    _ => return Err(push_refusal.take().unwrap_or(e).into()),
                },
            };
            let (more, newest) = (page.more, page.newest);
            pages += 1;
            let page_start = cursor;
            let anchored = anchor.take();
            let loss = self.loss_in(&mut page, &own_after, after, cursor, anchored);
            if let Some(loss) = loss.filter(|_| !gave_back) {
                // Once per sync: a relay that keeps losing events is told so again by
                // the next sync.
                gave_back = true;
                self.give_back(store, local, relay, transport, push_refusal, loss)?;
                cursor = 0;
                own_after.clear();
                continue;
            }
            let lock = store.write_lock()?;
            let (stop, held) =
                self.take_page(store, local, page.events, &mut cursor, pages == 1)?;
            drop(lock);
            let read = PageEnd {
                more,
                newest,
                anchored: anchored.is_some(),
                moved: cursor > page_start,
                pages,
                cursor,
            };
            let Some(stop) = read.next(stop) else {
                continue;
            };
            self.finish(store, stop, cursor, held)?;
            return Ok(cursor);
        }
    }

    /// What `page` (read after `after`, the device's cursor being `cursor`) shows the
    /// relay lost, if anything; the entries at or below the cursor of a page read from
    /// the anchor are dropped (read before: refused contents are never read twice).
    fn loss_in(
        &mut self,
        page: &mut super::Page,
        own_after: &BTreeMap<u64, [u8; 32]>,
        after: u64,
        cursor: u64,
        anchored: Option<(u64, [u8; 32])>,
    ) -> Option<Loss> {
        let acked_up_to = own_after.keys().next_back().copied().unwrap_or(0);
        let mut loss = self
            .note_relay(page.newest, page.forks, cursor.max(acked_up_to))
            .or_else(|| own_lost(own_after, after, &page.events, page.more, page.newest));
        if let Some((at, hash)) = anchored {
            if anchor_moved(page.at_after, hash) {
                loss = loss.or(Some(Loss::Renumbered { at }));
            }
            page.events.retain(|(c, _)| *c > cursor);
        }
        loss
    }

    /// Gives the relay back what it lost (see `give_back`); the read then starts over
    /// from the space's first event.
    fn give_back(
        &mut self,
        store: &mut Store,
        local: &mut Local,
        relay: &str,
        transport: &dyn Transport,
        push_refusal: &mut Option<TransportError>,
        loss: Loss,
    ) -> Result<(), SyncError> {
        *push_refusal = give_back(store, self.rec, relay, transport, self.report, loss)?;
        self.from_start = true;
        // Own events the relay refused to take back are folded no more (they would
        // refuse what it took in their place). Only then is the state folded anew: the
        // old positions are forgotten, and the order stored in is not the relay's.
        if std::mem::take(&mut self.report.own_unsent_on_give_back) {
            let _lock = store.write_lock()?;
            local.read_from_start(store, self.rec)?;
        }
        Ok(())
    }

    /// The relay still refuses this device's reads as by a device never a member after
    /// it was given back every event it lost: said in this device's words (the relay's
    /// repeated, "not a member", read as the truth), and kept as the space's alert.
    fn still_denied(&self, store: &mut Store, e: TransportError) -> Result<SyncError, SyncError> {
        let TransportError::Refused { status, mut body } = e else {
            return Ok(e.into());
        };
        // Short: a relay's message is shown clipped.
        body.message = "this device gave it back all it held and it still says so, though it \
             took the event that made this device a member: it lost data or lies; tell its \
             operator (nothing here is lost)"
            .into();
        let alert = format!(
            "the relay refused this device's reads ({status} {}): {}",
            body.error, body.message
        );
        store.set_alert(&self.rec.id, Some(&alert))?;
        Ok(SyncError::Transport(TransportError::Refused {
            status,
            body,
        }))
    }

    /// Notes an entry served at cursor `at` that is not an authentic event of the space:
    /// warned once per sync (the first such entry), and kept as the space's alert.
    fn not_authentic(&mut self, at: u64, reason: &str) {
        if self.report.not_authentic.is_some() {
            return;
        }
        self.report.not_authentic = Some(at);
        self.report.warnings.push(Warning::new(format!(
            "the relay served at cursor {at} something that is not an event of this space ({reason}); \
             this device reads past it but reads there again at every sync, until the relay serves the \
             event due there. A relay serves only events it verified: if this stays, its copy is damaged \
             or something between rewrites what it sends (tell the relay's operator); nothing of yours is lost"
        )));
    }

    /// What a read's refusal says the relay lost, when it is something this device can
    /// give back: the event that made it a member, or its whole personal space.
    fn forgotten(
        &self,
        store: &Store,
        local: &Local,
        transport: &dyn Transport,
        e: &TransportError,
        push_refusal: &Option<TransportError>,
    ) -> Option<Loss> {
        let member = local.state.is_member(&self.me.device_key());
        if push_refusal.is_none()
            && super::give_back::member_forgotten(store, (self.rec, self.me), member, e)
        {
            return Some(Loss::MemberForgotten);
        }
        super::give_back::space_forgotten(store, self.rec, self.me, transport, e)
            .then_some(Loss::SpaceForgotten)
    }

    /// Ends a read at `cursor`: says why it stopped before the relay's end, if it did; a
    /// whole read from the start sends again what the relay did not serve of this
    /// device's.
    fn finish(
        &mut self,
        store: &mut Store,
        stop: Option<Stop>,
        cursor: u64,
        held: usize,
    ) -> Result<(), SyncError> {
        match stop {
            Some(stop) => {
                self.report.incomplete = true;
                self.report.warnings.push(stop.warning(cursor, held));
            }
            None if self.from_start => self.unsend_unserved(store)?,
            None => {}
        }
        Ok(())
    }

    /// After a whole read from the start: this device's events the relay acknowledged
    /// and did not serve are sent again (see [`Store::unsend_unserved_own`]); a relay
    /// that acknowledged a push and then a give-back of it without keeping either would
    /// otherwise keep the event from the partner until this device wrote again.
    fn unsend_unserved(&mut self, store: &mut Store) -> Result<(), SyncError> {
        let n = store.unsend_unserved_own(&self.rec.id, &self.me.device_key())?;
        // Unsent again after this sync's pushes, unless a later push of it sends it.
        self.report.unsent += n;
        if n > 0 {
            self.report.warnings.push(Warning::new(format!(
                "the relay had acknowledged {} of this device's that it did not serve when the \
                 space was read again from the start: it did not keep {}; {} sent again",
                crate::words::count(n, "event", "events"),
                if n == 1 { "it" } else { "them" },
                if n == 1 { "it is" } else { "they are" },
            )));
        }
        Ok(())
    }

    /// Notes what the relay says of the space: the fork attempts it refused, and an end
    /// before this device's `cursor` (it lost events), which it returns.
    fn note_relay(&mut self, newest: Option<u64>, forks: Option<u64>, cursor: u64) -> Option<Loss> {
        if let Some(n) = forks.filter(|n| *n > 0) {
            self.report.forks = n;
        }
        newest
            .filter(|n| *n < cursor)
            .map(|newest| Loss::EndsBefore { newest, cursor })
    }

    /// Verifies, applies and stores one page, then retries the events waiting for an
    /// earlier one; call with the home's write lock held. Moves `cursor` past what was
    /// read; returns why to stop reading, if so, and how many events wait.
    fn take_page(
        &mut self,
        store: &mut Store,
        local: &mut Local,
        mut page: Vec<(u64, Vec<u8>)>,
        cursor: &mut u64,
        first: bool,
    ) -> Result<(Option<Stop>, usize), SyncError> {
        local.read_to(*cursor);
        let refreshed = local.refresh(store, self.rec)?;
        if refreshed {
            self.keys = local.keys.clone();
        }
        let received_before = self.report.received_events;
        let (held_count, held_bytes) = store.held_stats(&self.rec.id)?;
        let mut run = PageRun {
            batch: Batch::default(),
            cursor: *cursor,
            floor: self.floor,
            held_count,
            held_bytes,
            stop: None,
        };
        // The relay's order is the cursor order; a page served shuffled is put back.
        page.sort_by_key(|(c, _)| *c);
        self.take_served(store, local, &mut run, page)?;
        // Events that were waiting for a predecessor may fit now; they cannot unless
        // something changed since they were last checked.
        if first || refreshed || self.report.received_events > received_before {
            self.retry_waiting(store, local, &mut run)?;
        }
        store.store_pulled(
            &self.rec.id,
            &run.batch.as_pulled(),
            run.stored_cursor(),
            local.loaded(),
        )?;
        self.floor = run.floor;
        local.seen = store.data_version()?;
        *cursor = run.cursor;
        Ok((run.stop, run.held_count))
    }

    /// Files each event of a page, moving the cursor past it, until too many wait or
    /// stalled the parser.
    fn take_served(
        &mut self,
        store: &mut Store,
        local: &mut Local,
        run: &mut PageRun,
        page: Vec<(u64, Vec<u8>)>,
    ) -> Result<(), SyncError> {
        // Each entry's hash, with the cursor it was first served at.
        let mut seen = HashMap::new();
        for (c, bytes) in page {
            if self.stalls >= MAX_STALLS_PER_SYNC {
                run.stop = Some(Stop::Stalls);
                break;
            }
            // Entries are processed whatever order the relay served them in (the hash
            // chain, not the cursor, decides what fits); the cursor only moves forward.
            let before = run.cursor;
            run.cursor = run.cursor.max(c);
            self.reached = run.cursor;
            let hash = crate::crypto::sha256(&bytes);
            // Only where this device read before (a read again from below a gap) can an
            // entry be one it refused: a fresh read pays no lookup per event. A read from
            // the start (the relay was found to have rolled back or tampered with what it
            // served) judges them again: a refusal may have come of the order a lying
            // page served (a removal before a join it names), and kept for good it would
            // keep a removed device a member here.
            let read_before = c <= self.rec.cursor && !self.from_start;
            if let Some(&first) = seen.get(&hash) {
                if first != c {
                    self.copy_at(run, before, c, first);
                }
                continue; // served twice in one page
            }
            seen.insert(hash, c);
            if read_before && store.was_refused(&self.rec.id, &hash)? {
                continue; // refused before
            }
            if let Some(stored) = store.stored_at(&self.rec.id, &hash)? {
                self.take_known(local, run, (before, c), (hash, bytes), stored);
                continue;
            }
            let len = bytes.len();
            let held = run.batch.held.len();
            let (state, doc) = local.with_doc(store, self.me, self.rec)?;
            self.process(state, doc, &mut run.batch, c, bytes)?;
            if let Some(reason) = run.batch.not_authentic.take() {
                // The event due here is not this: the read goes on, but the stored
                // cursor stays before it, so that every sync reads it again until the
                // real one is served (moving past would skip it for good).
                run.stay_before(before);
                self.not_authentic(c, &reason);
            }
            if run.batch.held.len() > held && !run.hold(len) {
                // Not kept, and the cursor stays before it: read again once the
                // waiting events fit or are dropped.
                run.cursor = before;
                run.stop = Some(Stop::Held);
                break;
            }
            run.flush_refused(store, &self.rec.id, local.loaded())?;
        }
        Ok(())
    }

    /// An event this device holds already, served at `c`: its place (the device's own
    /// state knows it), or, read before at another cursor and not this device's own
    /// (whose cursor a push's answer named), a copy in the place of the event due at
    /// `c`, as within a page: taken, it moved the stored cursor past that event for
    /// good, and what the partner wrote after it waited on it.
    fn take_known(
        &mut self,
        local: &mut Local,
        run: &mut PageRun,
        (before, c): (u64, u64),
        (hash, bytes): ([u8; 32], Vec<u8>),
        (served_at, author): crate::store::StoredAt,
    ) {
        if let Some(first) = served_at.filter(|&at| at != c)
            && author != self.me.device_key().to_vec()
        {
            return self.copy_at(run, before, c, first);
        }
        if let Ok(ev) = Event::decode(bytes) {
            let _ = local.state.admit(&ev, None);
        }
        run.batch.own.push((hash, c));
    }

    /// A copy of the event served at `first`, in the place of the event due at `c`:
    /// moving past `c` would skip that one for good when an honest read serves it.
    fn copy_at(&mut self, run: &mut PageRun, before: u64, c: u64, first: u64) {
        run.stay_before(before);
        self.not_authentic(
            c,
            &format!("a copy of the event it served at cursor {first}"),
        );
    }

    /// Retries the stored waiting events with those this page held, round after round
    /// while a round takes any; what still does not fit stays held.
    fn retry_waiting(
        &mut self,
        store: &mut Store,
        local: &mut Local,
        run: &mut PageRun,
    ) -> Result<(), SyncError> {
        let mut waiting = store.held(&self.rec.id)?;
        waiting.append(&mut run.batch.held);
        while !waiting.is_empty() {
            let mut progressed = false;
            let mut still = Vec::new();
            for (c, bytes) in waiting {
                let hash = crate::crypto::sha256(&bytes);
                // Served again and taken meanwhile: not checked twice.
                if run.batch.accepted.iter().any(|a| a.event.hash() == hash)
                    || store.has_event(&self.rec.id, &hash)?
                {
                    run.batch.released.push(hash);
                    continue;
                }
                if self.stalls >= MAX_STALLS_PER_SYNC {
                    run.stop.get_or_insert(Stop::Stalls);
                    still.push((c, bytes));
                    continue;
                }
                let before = run.batch.accepted.len() + run.batch.refused.len();
                let (state, doc) = local.with_doc(store, self.me, self.rec)?;
                self.process(state, doc, &mut run.batch, c, bytes.clone())?;
                // A waiting event was authentic when it was held.
                run.batch.not_authentic = None;
                if run.batch.accepted.len() + run.batch.refused.len() > before {
                    progressed = true;
                    run.batch.released.push(hash);
                } else {
                    run.batch.held.pop();
                    still.push((c, bytes));
                }
                run.flush_refused(store, &self.rec.id, local.loaded())?;
            }
            waiting = still;
            if !progressed {
                break;
            }
        }
        run.batch.held.append(&mut waiting);
        Ok(())
    }
}

/// Whether the relay no longer serves the anchor's event where this device read it. A
/// relay that does not say (an older one) is not taken for one that lost events.
pub(super) fn anchor_moved(at_after: AtAfter, hash: [u8; 32]) -> bool {
    match at_after {
        AtAfter::Unsaid => false,
        AtAfter::Nothing => true,
        AtAfter::Event(h) => h != hash,
    }
}

/// The loss at the first cursor, among those the relay gave this device's events past
/// its last read (`own`), that a page read after `after` passes without serving that
/// event: another event there, or none before the page's end (a relay restored from an
/// older backup, which numbers new events from where the backup ended).
fn own_lost(
    own: &std::collections::BTreeMap<u64, [u8; 32]>,
    after: u64,
    events: &[(u64, Vec<u8>)],
    more: bool,
    newest: Option<u64>,
) -> Option<Loss> {
    let last = events.iter().map(|(c, _)| *c).max();
    // What the relay says bounds the range (an end below `after` is another loss,
    // which `note_relay` tells).
    let reached = if more { last } else { newest.max(last) }?;
    if reached <= after {
        return None;
    }
    let mut passed = own.range(after.saturating_add(1)..=reached).peekable();
    // Most pages pass none of this device's events (a join's, a partner's): no map.
    passed.peek()?;
    let served: std::collections::HashMap<u64, &[u8]> =
        events.iter().map(|(c, b)| (*c, b.as_slice())).collect();
    passed
        .find(|(c, hash)| {
            served
                .get(c)
                .is_none_or(|bytes| crate::crypto::sha256(bytes) != **hash)
        })
        .map(|(&at, _)| Loss::Renumbered { at })
}
