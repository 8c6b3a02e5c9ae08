//! Filling a store from a backup: which changes of a space are stored already, and
//! storing the others with the flags they had on the device that was backed up.

use std::collections::HashSet;

use automerge::Change;
use rusqlite::params;

use super::changes::maybe_snapshot;
use super::{Store, StoreError};
use crate::event::SpaceId;
use crate::identity::Identity;

/// A change from a backup, with what the backed-up device knew of it.
#[derive(Debug)]
pub struct RestoredChange {
    /// The change.
    pub change: Change,
    /// Made by this device.
    pub local: bool,
    /// Already carried by an event of this device (or not this device's to send).
    pub sent: bool,
}

impl Store {
    /// The hashes of every change of a space stored here.
    pub fn change_hashes(&self, space: &SpaceId) -> Result<HashSet<[u8; 32]>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT hash FROM changes WHERE space = ?1")?;
        let rows = stmt.query_map(params![space.to_string()], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = HashSet::new();
        for h in rows {
            out.insert(
                <[u8; 32]>::try_from(h?).map_err(|_| StoreError::Damaged("change hash".into()))?,
            );
        }
        Ok(out)
    }

    /// Stores changes from a backup (those already stored are left as they are), then
    /// brings the snapshot and read models up to the document they make, in one
    /// transaction.
    pub fn restore_changes(
        &mut self,
        space: &SpaceId,
        changes: &[RestoredChange],
        me: &Identity,
    ) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let _lock = self.write_lock()?;
        let (mut doc, _) = self.load_doc(space, me)?;
        doc.apply(changes.iter().map(|c| c.change.clone()).collect())?;
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO changes (space, hash, bytes, local, pushed) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for c in changes {
                stmt.execute(params![
                    space.to_string(),
                    c.change.hash().0.to_vec(),
                    c.change.raw_bytes(),
                    c.local,
                    c.sent
                ])?;
            }
        }
        maybe_snapshot(&tx, space, &doc, false)?;
        crate::readmodel::refresh(&tx, space, &doc)?;
        tx.commit()?;
        Ok(())
    }
}
