//! The integrity alert of a space's last sync, shown by `duet status`.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};
use crate::event::SpaceId;

impl Store {
    /// Records (or clears) the integrity alert of a space's last sync, shown by
    /// `duet status` until a sync no longer finds a problem.
    pub fn set_alert(&mut self, space: &SpaceId, alert: Option<&str>) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        self.conn.execute(
            "UPDATE spaces SET alert = ?2 WHERE space = ?1",
            params![space.to_string(), alert],
        )?;
        Ok(())
    }

    /// The integrity alert of a space's last sync, if any.
    pub fn alert(&self, space: &SpaceId) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT alert FROM spaces WHERE space = ?1",
                params![space.to_string()],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }
}
