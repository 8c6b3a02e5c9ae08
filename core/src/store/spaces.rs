//! The spaces on this device: their records (kind, key, relay, cursor), the relay's
//! creation token, and the keys of later epochs.

use automerge::Change;
use rusqlite::{Connection, OptionalExtension, params};

use super::changes::insert_change;
use super::events::insert_event;
use super::{Store, StoreError, corrupt, space_id};
use crate::crypto::SpaceKey;
use crate::event::{Event, SpaceId};

/// Whether a space is shared by the couple or personal to one person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpaceKind {
    /// Both partners' devices.
    Shared,
    /// Only the owner's devices.
    Personal,
}

impl SpaceKind {
    /// Stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            SpaceKind::Shared => "shared",
            SpaceKind::Personal => "personal",
        }
    }
}

/// A space as recorded on this device.
#[derive(Debug, Clone)]
pub struct SpaceRecord {
    /// Id.
    pub id: SpaceId,
    /// Shared or personal.
    pub kind: SpaceKind,
    /// Symmetric key.
    pub key: SpaceKey,
    /// Relay base URL.
    pub relay: Option<String>,
    /// Last relay cursor pulled.
    pub cursor: u64,
}

impl Store {
    /// Adds a space (joined later), with events and changes, in one transaction.
    pub fn add_space(
        &mut self,
        rec: &SpaceRecord,
        events: &[Event],
        changes: &[Change],
    ) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        let now = self.now();
        let tx = self.conn.transaction()?;
        insert_space(&tx, rec, now)?;
        for ev in events {
            insert_event(&tx, &rec.id, ev, false, None)?;
        }
        for c in changes {
            insert_change(&tx, &rec.id, c, true)?;
        }
        // No read models yet: the first sync builds them once, from the whole history.
        tx.commit()?;
        Ok(())
    }

    /// Marks every space's read models stale: the next read rebuilds them from the
    /// document (see [`crate::device::Device::forget_read_models`]).
    pub fn forget_read_models(&mut self) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        for rec in self.spaces()? {
            crate::readmodel::forget(&self.conn, &rec.id)?;
        }
        Ok(())
    }

    /// Every space on this device.
    pub fn spaces(&self) -> Result<Vec<SpaceRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT space, kind, key, relay, cursor FROM spaces ORDER BY kind DESC")
            .map_err(corrupt(&self.path))?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, kind, key, relay, cursor) = row?;
            let key: [u8; 32] = key
                .try_into()
                .map_err(|_| StoreError::Damaged("space key".into()))?;
            out.push(SpaceRecord {
                id: space_id(&id)?,
                kind: if kind == "personal" {
                    SpaceKind::Personal
                } else {
                    SpaceKind::Shared
                },
                key: SpaceKey::from_bytes(key),
                relay,
                cursor: cursor as u64,
            });
        }
        Ok(out)
    }

    /// The space of a kind.
    pub fn space(&self, kind: SpaceKind) -> Result<SpaceRecord, StoreError> {
        self.spaces()?
            .into_iter()
            .find(|s| s.kind == kind)
            .ok_or_else(|| StoreError::NoSpace(kind.as_str().to_string()))
    }

    fn space_by_id(&self, space: &SpaceId) -> Result<SpaceRecord, StoreError> {
        self.spaces()?
            .into_iter()
            .find(|s| s.id == *space)
            .ok_or_else(|| StoreError::NoSpace(space.to_string()))
    }

    /// Sets the relay URL of every space.
    pub fn set_relay(&mut self, url: &str) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        self.conn
            .execute("UPDATE spaces SET relay = ?1", params![url])?;
        Ok(())
    }

    /// Sets the relay's creation token for every space (`None` forgets it). It is sent
    /// to the relay only with a space's unacknowledged genesis, never shown.
    pub fn set_create_token(&mut self, token: Option<&str>) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        self.conn
            .execute("UPDATE spaces SET create_token = ?1", params![token])?;
        Ok(())
    }

    /// The relay's creation token kept for `space`, if any.
    pub fn create_token(&self, space: &SpaceId) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT create_token FROM spaces WHERE space = ?1",
                params![space.to_string()],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
    }

    /// Every key of a space by epoch (epoch 0 is the space's first key).
    pub fn epoch_keys(
        &self,
        space: &SpaceId,
    ) -> Result<std::collections::BTreeMap<u32, SpaceKey>, StoreError> {
        let mut out = std::collections::BTreeMap::new();
        out.insert(0, self.space_by_id(space)?.key);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT epoch, key FROM epoch_keys WHERE space = ?1")?;
        let rows = stmt.query_map(params![space.to_string()], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        for row in rows {
            let (epoch, key) = row?;
            let key: [u8; 32] = key
                .try_into()
                .map_err(|_| StoreError::Damaged("epoch key".into()))?;
            out.insert(epoch as u32, SpaceKey::from_bytes(key));
        }
        Ok(out)
    }

    /// Stores the key of an epoch.
    pub fn add_epoch_key(
        &mut self,
        space: &SpaceId,
        epoch: u32,
        key: &SpaceKey,
    ) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        insert_epoch_key(&self.conn, space, epoch, key)
    }
}

pub(super) fn insert_space(
    tx: &rusqlite::Transaction<'_>,
    rec: &SpaceRecord,
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO spaces (space, kind, key, relay, cursor, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            rec.id.to_string(),
            rec.kind.as_str(),
            rec.key.as_bytes().to_vec(),
            rec.relay,
            rec.cursor as i64,
            now
        ],
    )?;
    Ok(())
}

pub(super) fn insert_epoch_key(
    conn: &Connection,
    space: &SpaceId,
    epoch: u32,
    key: &SpaceKey,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT OR REPLACE INTO epoch_keys (space, epoch, key) VALUES (?1, ?2, ?3)",
        params![space.to_string(), i64::from(epoch), key.as_bytes().to_vec()],
    )?;
    Ok(())
}
