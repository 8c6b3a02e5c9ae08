//! What a space's syncs found: the integrity alert of the last one, shown by `duet
//! status`, and how this device's membership ended, if it did.

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

/// How this device's membership of a space ended, as a sync (or `leave`) learnt it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Departed {
    /// `shared` or `personal`: the space whose membership ended.
    pub space: String,
    /// The name of the person whose device ended it (this person's own when leaving).
    pub by: String,
    /// This device's person left (rather than being removed by a member).
    pub left: bool,
    /// The device that signed the removal or leave (hex).
    pub device: String,
    /// When (the event's author time, ms since the Unix epoch).
    pub at: i64,
}

impl Departed {
    /// What happened, in words: who ended the membership and when.
    pub fn describe(&self) -> String {
        // In local time, as every other time a person reads (one event, one day).
        let when = chrono::TimeZone::timestamp_millis_opt(&chrono::Local, self.at)
            .single()
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| "an unknown time".into());
        if self.left {
            format!(
                "you left the {} space on {when}, so this device can no longer change it",
                self.space
            )
        } else {
            format!(
                "this device was removed from the {} space by {} on {when}, so it can no longer change it",
                self.space, self.by
            )
        }
    }
}

impl Store {
    /// Records that this device is no longer a member of `space`.
    pub fn set_departed(&mut self, space: &SpaceId, d: &Departed) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        let json = serde_json::to_string(d).map_err(|e| StoreError::Damaged(e.to_string()))?;
        self.conn.execute(
            "UPDATE spaces SET departed = ?2 WHERE space = ?1",
            params![space.to_string(), json],
        )?;
        Ok(())
    }

    /// Records how far the relay's clock was ahead of this device's (ms, negative:
    /// behind) at a sync, and when that was by this device's clock.
    pub fn set_relay_clock(
        &mut self,
        space: &SpaceId,
        ahead: i64,
        at: i64,
    ) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        self.conn.execute(
            "UPDATE spaces SET relay_ahead_ms = ?2, relay_ahead_at = ?3 WHERE space = ?1",
            params![space.to_string(), ahead, at],
        )?;
        Ok(())
    }

    /// How far the relay's clock was ahead of this device's at the latest sync that
    /// learnt it, and when: `(ahead, at)` in ms.
    pub fn relay_clock(&self, space: &SpaceId) -> Result<Option<(i64, i64)>, StoreError> {
        let row: Option<(Option<i64>, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT relay_ahead_ms, relay_ahead_at FROM spaces WHERE space = ?1",
                params![space.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(row.and_then(|(a, t)| a.zip(t)))
    }

    /// How this device's membership of `space` ended, if it did.
    pub fn departed(&self, space: &SpaceId) -> Result<Option<Departed>, StoreError> {
        let json: Option<String> = self
            .conn
            .query_row(
                "SELECT departed FROM spaces WHERE space = ?1",
                params![space.to_string()],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        json.map(|j| serde_json::from_str(&j).map_err(|e| StoreError::Damaged(e.to_string())))
            .transpose()
    }
}
