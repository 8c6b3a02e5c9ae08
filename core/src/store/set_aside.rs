//! This device's unsent changes set aside while another copy of the device (restored
//! from a backup, or a copied home) has numbered its own changes the same way: both
//! copies sign as one device and write as one Automerge actor, so the document cannot
//! hold both copies' change number 9. The sync that finds this sets this copy's unsent
//! changes aside, takes the other copy's, and makes them again after those
//! (`crate::repair::remake_after`); kept in a table meanwhile, so that a sync cut off in
//! between loses nothing (the next sync makes them again).

use automerge::Change;
use rusqlite::params;

use super::changes::{changes_of, write_local};
use super::{Store, StoreError};
use crate::doc::SpaceDoc;
use crate::event::SpaceId;

impl Store {
    /// Moves this device's changes of a space that are in no event yet out of its
    /// change log (which then loads without them: its snapshot is dropped, and its read
    /// models are rebuilt on next use) into the set-aside table, in one transaction.
    /// Returns how many.
    pub fn set_aside_unsent(&mut self, space: &SpaceId) -> Result<usize, StoreError> {
        let _lock = self.write_lock()?;
        let sid = space.to_string();
        let tx = self.conn.transaction()?;
        let moved = tx.execute(
            "INSERT INTO set_aside (space, bytes)
             SELECT space, bytes FROM changes
             WHERE space = ?1 AND local = 1 AND pushed = 0 ORDER BY id",
            params![sid],
        )?;
        tx.execute(
            "DELETE FROM changes WHERE space = ?1 AND local = 1 AND pushed = 0",
            params![sid],
        )?;
        tx.execute("DELETE FROM snapshots WHERE space = ?1", params![sid])?;
        crate::readmodel::forget(&tx, space)?;
        tx.commit()?;
        Ok(moved)
    }

    /// The changes set aside for a space, in the order they were made: (row, change).
    pub fn set_aside(&self, space: &SpaceId) -> Result<Vec<(i64, Change)>, StoreError> {
        changes_of(
            &self.conn,
            "SELECT id, bytes FROM set_aside WHERE space = ?1 ORDER BY id",
            space,
        )
    }

    /// Stores the changes made again from those set aside (rows `rows`) as unsent local
    /// changes, already applied to `doc`, and drops the rows, in one transaction.
    pub fn take_back_set_aside(
        &mut self,
        space: &SpaceId,
        rows: &[i64],
        remade: &[Change],
        doc: &SpaceDoc,
    ) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        let tx = self.conn.transaction()?;
        write_local(&tx, space, remade, doc)?;
        for row in rows {
            tx.execute("DELETE FROM set_aside WHERE id = ?1", params![row])?;
        }
        tx.commit()?;
        Ok(())
    }
}
