//! The part of the store a sync works on (document, membership state, space keys),
//! reloaded whenever another process committed since it was read. The document is
//! loaded only when the sync needs it (an event to check and apply, changes to bundle,
//! read models to build): a sync that brings nothing new reads no history.

use std::collections::BTreeMap;

use super::{SyncError, fold_state};
use crate::doc::SpaceDoc;
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
}

impl Local {
    /// Reads them, taking `kept` (a document the caller held at the space's newest
    /// change row `mark`) when nothing was stored since; the document is otherwise
    /// loaded on first use. Call with the lock held.
    pub(super) fn load(
        store: &Store,
        rec: &SpaceRecord,
        kept: Option<super::KeptDoc>,
    ) -> Result<Local, SyncError> {
        let seen = store.data_version()?;
        let doc = match kept {
            Some((mark, doc)) if store.newest_change_row(&rec.id)? == mark => Some(doc),
            _ => None,
        };
        Ok(Local {
            doc,
            state: fold_state(store, &rec.id)?,
            keys: store.epoch_keys(&rec.id)?,
            seen,
        })
    }

    /// Reads them again if another process committed since (the document then waits
    /// for its next use); call with the lock held. Returns whether it did.
    pub(super) fn refresh(&mut self, store: &Store, rec: &SpaceRecord) -> Result<bool, SyncError> {
        if store.data_version()? == self.seen {
            return Ok(false);
        }
        *self = Local::load(store, rec, None)?;
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
