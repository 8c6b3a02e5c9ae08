//! One page of a pull being taken: what it produced so far (stored in one transaction,
//! or more when refused content is stored at once), the cursor past what was read, where
//! the stored cursor stays, and the count and size of the events waiting.

use super::SyncError;
use super::stop::Stop;
use crate::doc::SpaceDoc;
use crate::event::SpaceId;
use crate::store::{Accepted, MAX_HELD_BYTES, MAX_HELD_EVENTS, Refused, Store};

/// One page being taken: what it produced so far, the cursor past what was read, and
/// the count and size of the events waiting (stored and new).
pub(super) struct PageRun {
    pub(super) batch: Batch,
    pub(super) cursor: u64,
    /// Where the stored cursor stays: before the first entry of this read that was not
    /// an authentic event of the space.
    pub(super) floor: Option<u64>,
    pub(super) held_count: usize,
    pub(super) held_bytes: usize,
    pub(super) stop: Option<Stop>,
}

impl PageRun {
    /// The cursor stored with what this page took: past what was read, or the floor.
    pub(super) fn stored_cursor(&self) -> u64 {
        self.floor.map_or(self.cursor, |f| f.min(self.cursor))
    }

    /// Keeps the stored cursor at `before` or lower: the entry after it was not the
    /// event due there, which every sync reads for again until it is served.
    pub(super) fn stay_before(&mut self, before: u64) {
        self.floor = Some(self.floor.map_or(before, |f| f.min(before)));
    }

    /// Counts the event just held; if more would wait than are kept, drops it and
    /// returns false.
    pub(super) fn hold(&mut self, len: usize) -> bool {
        self.held_count += 1;
        self.held_bytes += len;
        if self.held_count > MAX_HELD_EVENTS || self.held_bytes > MAX_HELD_BYTES {
            self.batch.held.pop();
            self.held_count -= 1;
            return false;
        }
        true
    }

    /// Stores the batch at once if it holds refused content, with the cursor past it:
    /// an interrupted sync never reads that content again.
    pub(super) fn flush_refused(
        &mut self,
        store: &mut Store,
        space: &SpaceId,
        doc: Option<&SpaceDoc>,
    ) -> Result<(), SyncError> {
        if self.batch.flush {
            store.store_pulled(space, &self.batch.as_pulled(), self.stored_cursor(), doc)?;
            self.batch = Batch::default();
        }
        Ok(())
    }
}

/// What one page of a pull produced, stored in one transaction (or more: a refused
/// content is stored at once, see `flush`).
#[derive(Default)]
pub(super) struct Batch {
    pub(super) accepted: Vec<Accepted>,
    pub(super) refused: Vec<Refused>,
    pub(super) own: Vec<([u8; 32], u64)>,
    pub(super) held: Vec<(u64, Vec<u8>)>,
    pub(super) released: Vec<[u8; 32]>,
    pub(super) new_keys: Vec<(u32, crate::crypto::SpaceKey)>,
    /// Content was refused: store what this batch holds now.
    pub(super) flush: bool,
    /// The entry just processed was not an authentic event of this space, and why.
    pub(super) not_authentic: Option<String>,
}

impl Batch {
    pub(super) fn as_pulled(&self) -> crate::store::Pulled<'_> {
        crate::store::Pulled {
            accepted: &self.accepted,
            refused: &self.refused,
            own_acked: &self.own,
            held: &self.held,
            released: &self.released,
            new_keys: &self.new_keys,
        }
    }
}
