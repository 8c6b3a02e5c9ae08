//! What a device keeps to notice that its relay lost events (an operator restored an
//! older backup) and to give them back: the event that anchors its cursor, the events
//! the relay had taken, and forgetting the relay's old numbering once they are back.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};
use crate::event::SpaceId;

impl Store {
    /// The cursor this device has read a space up to (0 before its first read).
    pub fn read_cursor(&self, space: &SpaceId) -> Result<u64, StoreError> {
        let c: Option<i64> = self
            .conn
            .prepare_cached("SELECT cursor FROM spaces WHERE space = ?1")?
            .query_row(params![space.to_string()], |r| r.get(0))
            .optional()?;
        Ok(c.map_or(0, |c| u64::try_from(c).unwrap_or(0)))
    }

    /// The stored event with the highest relay cursor at or below `cursor`, as (cursor,
    /// hash): the relay must still serve it at that cursor. `None` when no stored event
    /// has a cursor there (nothing read yet, or only refused events).
    pub fn cursor_anchor(
        &self,
        space: &SpaceId,
        cursor: u64,
    ) -> Result<Option<(u64, [u8; 32])>, StoreError> {
        let row: Option<(i64, Vec<u8>)> = self
            .conn
            .prepare_cached(
                "SELECT relay_cursor, hash FROM events
                 WHERE space = ?1 AND relay_cursor > 0 AND relay_cursor <= ?2
                 ORDER BY relay_cursor DESC LIMIT 1",
            )?
            .query_row(
                params![space.to_string(), i64::try_from(cursor).unwrap_or(i64::MAX)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(c, h)| {
            let hash = <[u8; 32]>::try_from(h)
                .map_err(|_| StoreError::Damaged("a stored event's hash".into()))?;
            Ok((u64::try_from(c).unwrap_or(0), hash))
        })
        .transpose()
    }

    /// The stored events of a space with a relay cursor after `cursor` (this device's
    /// own, acknowledged past its last read), as cursor -> hash: a page that serves
    /// another event at one of those cursors comes from a relay that lost it.
    pub fn events_after_cursor(
        &self,
        space: &SpaceId,
        cursor: u64,
    ) -> Result<std::collections::BTreeMap<u64, [u8; 32]>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT relay_cursor, hash FROM events WHERE space = ?1 AND relay_cursor > ?2",
        )?;
        let rows = stmt.query_map(
            params![space.to_string(), i64::try_from(cursor).unwrap_or(i64::MAX)],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
        )?;
        let mut out = std::collections::BTreeMap::new();
        for row in rows {
            let (c, h) = row?;
            let hash = <[u8; 32]>::try_from(h)
                .map_err(|_| StoreError::Damaged("a stored event's hash".into()))?;
            out.insert(u64::try_from(c).unwrap_or(0), hash);
        }
        Ok(out)
    }

    /// Every event of a space the relay once took (acknowledged, or served to this
    /// device), in the order the relay numbered them: the order to give them back in.
    /// This device's events still waiting for an acknowledgement are not among them.
    pub fn relay_taken_events(&self, space: &SpaceId) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT bytes FROM events WHERE space = ?1 AND acked = 1
                 ORDER BY relay_cursor IS NULL, relay_cursor, id",
        )?;
        let rows = stmt.query_map(params![space.to_string()], |r| r.get::<_, Vec<u8>>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// After a read from the start to the relay's end: this device's events the relay
    /// acknowledged but did not serve (none of their positions was set by the read) are
    /// not on the relay (it did not keep them, or lost them and took a give-back it did
    /// not keep either), so they are marked unsent, to be pushed again. Returns how many.
    pub fn unsend_unserved_own(
        &mut self,
        space: &SpaceId,
        author: &crate::identity::DeviceKey,
    ) -> Result<usize, StoreError> {
        let _lock = self.write_lock()?;
        Ok(self.conn.execute(
            "UPDATE events SET acked = 0
             WHERE space = ?1 AND author = ?2 AND acked = 1 AND relay_cursor IS NULL",
            params![space.to_string(), author.to_vec()],
        )?)
    }

    /// The relay refused to take back this device's event `hash` (it took a conflicting
    /// one meanwhile: the partner's removal while it had lost this device's): that event
    /// and this device's after it are marked unsent, so that the space is read again
    /// without them (folded first, they would refuse what the relay took in their place)
    /// and they are pushed, withdrawn as a lost race and made again. Returns how many; none
    /// when `hash` is not this device's.
    pub fn unsend_own_from(
        &mut self,
        space: &SpaceId,
        author: &crate::identity::DeviceKey,
        hash: &[u8; 32],
    ) -> Result<usize, StoreError> {
        let _lock = self.write_lock()?;
        Ok(self.conn.execute(
            "UPDATE events SET acked = 0
             WHERE space = ?1 AND author = ?2 AND acked = 1 AND seq >= (
                 SELECT seq FROM events WHERE space = ?1 AND author = ?2 AND hash = ?3)",
            params![space.to_string(), author.to_vec(), hash.to_vec()],
        )?)
    }

    /// This device's newest event of a space that the relay acknowledged at a cursor it
    /// named, with that cursor and the event's hash (a device that left: its leave).
    pub fn own_last_acked(
        &self,
        space: &SpaceId,
        author: &crate::identity::DeviceKey,
    ) -> Result<Option<(u64, [u8; 32])>, StoreError> {
        let row: Option<(i64, Vec<u8>)> = self
            .conn
            .prepare_cached(
                "SELECT relay_cursor, hash FROM events
                 WHERE space = ?1 AND author = ?2 AND acked = 1 AND relay_cursor IS NOT NULL
                 ORDER BY seq DESC LIMIT 1",
            )?
            .query_row(params![space.to_string(), author.to_vec()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let Some((cursor, hash)) = row else {
            return Ok(None);
        };
        let hash = hash
            .try_into()
            .map_err(|_| StoreError::Damaged("event hash".into()))?;
        Ok(u64::try_from(cursor).ok().map(|c| (c, hash)))
    }

    /// Forgets where the relay had numbered this space's events and sets the cursor back
    /// to the start, in one transaction: the space is read again in the relay's new
    /// numbering, which gives each event it serves its new cursor (those it does not
    /// serve keep none, and sort last, in the order they were stored). Events waiting
    /// for an earlier one are dropped: the new reading serves them again.
    pub fn forget_relay_positions(&mut self, space: &SpaceId) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        let sid = space.to_string();
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE events SET relay_cursor = NULL WHERE space = ?1",
            params![sid],
        )?;
        // Waiting events carry the old numbering too; the relay serves them again.
        tx.execute("DELETE FROM held WHERE space = ?1", params![sid])?;
        tx.execute(
            "UPDATE spaces SET cursor = 0 WHERE space = ?1",
            params![sid],
        )?;
        tx.commit()?;
        Ok(())
    }
}
