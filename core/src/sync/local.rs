//! The part of the store a sync works on (document, membership state, space keys),
//! reloaded whenever another process committed since it was read.

use std::collections::BTreeMap;

use super::{SyncError, fold_state};
use crate::doc::SpaceDoc;
use crate::identity::Identity;
use crate::membership::SpaceState;
use crate::store::{SpaceRecord, Store};

/// What a sync holds of the store: the document, the verified membership state and the
/// space keys, as of SQLite's `data_version` `seen`.
pub(super) struct Local {
    pub(super) doc: SpaceDoc,
    pub(super) state: SpaceState,
    pub(super) keys: BTreeMap<u32, crate::crypto::SpaceKey>,
    pub(super) seen: i64,
}

impl Local {
    /// Loads them, starting from `kept` (a document the caller held at the space's
    /// newest change row `mark`) when nothing was stored since; call with the lock held.
    pub(super) fn load(
        store: &Store,
        me: &Identity,
        rec: &SpaceRecord,
        kept: Option<super::KeptDoc>,
    ) -> Result<Local, SyncError> {
        let seen = store.data_version()?;
        let doc = match kept {
            Some((mark, doc)) if store.newest_change_row(&rec.id)? == mark => doc,
            _ => store.load_doc(&rec.id, me)?.0,
        };
        Ok(Local {
            doc,
            state: fold_state(store, &rec.id)?,
            keys: store.epoch_keys(&rec.id)?,
            seen,
        })
    }

    /// Loads them again if another process committed since; call with the lock held.
    /// Returns whether it did.
    pub(super) fn refresh(
        &mut self,
        store: &Store,
        me: &Identity,
        rec: &SpaceRecord,
    ) -> Result<bool, SyncError> {
        if store.data_version()? == self.seen {
            return Ok(false);
        }
        *self = Local::load(store, me, rec, None)?;
        Ok(true)
    }
}
