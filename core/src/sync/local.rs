//! The part of the store a sync works on (document, membership state, space keys),
//! reloaded whenever another process committed since it was read. The document is
//! loaded only when the sync needs it (an event to check and apply, changes to bundle,
//! read models to build): a sync that brings nothing new reads no history.
//!
//! While a sync reads, the membership state is the relay's order up to the read: this
//! device's own events that the relay placed further on (a removal pushed at the start
//! of the sync) or has not taken yet join it when the read reaches them or ends, so
//! that an event the relay placed before them is judged as every other device judges
//! it (a removed device's last reflection, stored before the removal reached the relay,
//! is kept here too).

use std::collections::BTreeMap;

use super::SyncError;
use crate::doc::SpaceDoc;
use crate::event::Event;
use crate::identity::Identity;
use crate::membership::SpaceState;
use crate::store::{SpaceRecord, Store};

/// What a sync holds of the store: the document (once needed), the verified membership
/// state and the space keys, as of SQLite's `data_version` `seen`.
pub(super) struct Local {
    doc: Option<SpaceDoc>,
    pub(super) state: SpaceState,
    pub(super) keys: BTreeMap<u32, crate::crypto::SpaceKey>,
    pub(super) seen: i64,
    /// Where the read has reached (`None`: not reading, everything stored is folded).
    through: Option<u64>,
    /// This device's events left out of `state` until the read reaches or ends.
    after: Vec<Event>,
}

impl Local {
    /// Reads them, taking `kept` (a document the caller held at the space's newest
    /// change row `mark`) when nothing was stored since; the document is otherwise
    /// loaded on first use. Call with the lock held.
    /// `through`: where a read starts (see the module doc), `None` outside reads.
    pub(super) fn load(
        store: &Store,
        rec: &SpaceRecord,
        kept: Option<super::KeptDoc>,
        through: Option<u64>,
    ) -> Result<Local, SyncError> {
        let seen = store.data_version()?;
        let doc = match kept {
            Some((mark, doc)) if store.newest_change_row(&rec.id)? == mark => Some(doc),
            _ => None,
        };
        let (read, after) = store.events_split_at(&rec.id, through.unwrap_or(u64::MAX))?;
        Ok(Local {
            doc,
            state: SpaceState::fold(&read),
            keys: store.epoch_keys(&rec.id)?,
            seen,
            through,
            after,
        })
    }

    /// The relay lost events and refused to take back some of this device's own, now
    /// unsent: the state is folded anew as for a read from the start (the unsent ones
    /// join it when the read ends), the document kept. Call with the lock held.
    pub(super) fn read_from_start(
        &mut self,
        store: &Store,
        rec: &SpaceRecord,
    ) -> Result<(), SyncError> {
        let doc = self.doc.take();
        *self = Local::load(store, rec, None, Some(0))?;
        self.doc = doc;
        Ok(())
    }

    /// The read has reached `cursor`: what is stored up to there is the relay's order
    /// (used when another process's commit makes the state be read again).
    pub(super) fn read_to(&mut self, cursor: u64) {
        if self.through.is_some() {
            self.through = Some(cursor);
        }
    }

    /// The read is over: this device's events left out join the state, in the order
    /// they were stored (those the read reached are in it already).
    pub(super) fn read_done(&mut self) {
        for ev in std::mem::take(&mut self.after) {
            let _ = self.state.admit(&ev, None);
        }
        self.through = None;
    }

    /// Reads them again if another process committed since (the document then waits
    /// for its next use); call with the lock held. Returns whether it did.
    pub(super) fn refresh(&mut self, store: &Store, rec: &SpaceRecord) -> Result<bool, SyncError> {
        if store.data_version()? == self.seen {
            return Ok(false);
        }
        let through = self.through;
        *self = Local::load(store, rec, None, through)?;
        Ok(true)
    }

    /// The membership state and the document, loading the document if this sync has
    /// not needed it yet; call with the lock held, after [`Local::refresh`].
    pub(super) fn with_doc(
        &mut self,
        store: &Store,
        me: &Identity,
        rec: &SpaceRecord,
    ) -> Result<(&mut SpaceState, &mut SpaceDoc), SyncError> {
        let doc = match self.doc.take() {
            Some(doc) => doc,
            None => store.load_doc(&rec.id, me)?.0,
        };
        Ok((&mut self.state, self.doc.insert(doc)))
    }

    /// The document, if this sync loaded (or was given) it.
    pub(super) fn loaded(&self) -> Option<&SpaceDoc> {
        self.doc.as_ref()
    }

    /// Gives the document up, if this sync loaded (or was given) it.
    pub(super) fn into_doc(self) -> Option<SpaceDoc> {
        self.doc
    }
}
