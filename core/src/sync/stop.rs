//! Why a sync stops reading before the relay's end (a limit of pages, a relay that
//! misbehaves, contents that stall the parser, too many events waiting), and what it
//! says then: a sync never reads without end, and never calls itself up to date when the
//! relay's own answers say it is not.

use super::{MAX_PAGES_PER_SYNC, MAX_STALLS_PER_SYNC};
use crate::advice::{NextStep, Warning};
use crate::store::{MAX_HELD_BYTES, MAX_HELD_EVENTS};

/// Why a sync stopped reading before the relay's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// [`MAX_PAGES_PER_SYNC`] pages read.
    Pages,
    /// The relay said more wait but served nothing past the cursor.
    Stuck,
    /// The relay's last page ended below the newest cursor it gave with it.
    Short(u64),
    /// [`MAX_STALLS_PER_SYNC`] contents stalled the parser.
    Stalls,
    /// [`MAX_HELD_EVENTS`] (or [`MAX_HELD_BYTES`]) events wait already.
    Held,
}

impl Stop {
    pub(super) fn warning(self, cursor: u64, held: usize) -> Warning {
        match self {
            Stop::Pages => Warning::then(
                format!(
                    "read {MAX_PAGES_PER_SYNC} pages in this sync and the relay has more; stopped at cursor {cursor}"
                ),
                NextStep::SyncAgain,
            ),
            Stop::Stuck => Warning::new(format!(
                "the relay says more events wait after cursor {cursor} but serves nothing new; stopped reading \
                 (the relay is misbehaving); the next sync asks again"
            )),
            Stop::Short(newest) => Warning::new(format!(
                "the relay says its newest event is at cursor {newest} but its last page ended at cursor \
                 {cursor}; stopped reading (the relay, or something between it and this device, is \
                 misbehaving); the next sync asks again"
            )),
            Stop::Stalls => Warning::then(
                format!(
                    "stopped reading at cursor {cursor}: {MAX_STALLS_PER_SYNC} events carried content that did not parse in time \
                     (refused and recorded, never read again)"
                ),
                NextStep::SyncAgain,
            ),
            Stop::Held => Warning::then(
                format!(
                    "stopped reading at cursor {cursor}: {held} events already wait for an earlier event or a key \
                     (at most {MAX_HELD_EVENTS} or {} MiB are kept); a relay serving this many that never fit is misbehaving",
                    MAX_HELD_BYTES >> 20
                ),
                NextStep::DropWaiting,
            ),
        }
    }
}

/// What a page just taken tells of the read: whether the relay says more wait, its
/// newest cursor, and how far the read got.
pub(super) struct PageEnd {
    /// `duet-more`.
    pub(super) more: bool,
    /// `duet-cursor`, when the relay sent it.
    pub(super) newest: Option<u64>,
    /// The page began at the anchor (it may hold only what was read before).
    pub(super) anchored: bool,
    /// The cursor moved past where the page began.
    pub(super) moved: bool,
    /// Pages read in this sync.
    pub(super) pages: usize,
    /// The cursor after the page.
    pub(super) cursor: u64,
}

impl PageEnd {
    /// After a page that stopped the read as `taken` (or not): `None` to read on,
    /// `Some(None)` at the relay's end, `Some(Some(stop))` to stop early.
    pub(super) fn next(&self, taken: Option<Stop>) -> Option<Option<Stop>> {
        match taken {
            Some(stop) => Some(Some(stop)),
            // The relay's newest cursor comes from the page's own snapshot: an end
            // below it left events out (a relay, or something between, cut it).
            None if !self.more => Some(self.newest.filter(|n| *n > self.cursor).map(Stop::Short)),
            None if self.anchored => None,
            None if !self.moved => Some(Some(Stop::Stuck)),
            None if self.pages >= MAX_PAGES_PER_SYNC => Some(Some(Stop::Pages)),
            None => None,
        }
    }
}
