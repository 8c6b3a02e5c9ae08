//! The device identity: reading it, and creating it with the first spaces.

use automerge::Change;
use rusqlite::{OptionalExtension, params};

use super::changes::insert_change;
use super::events::insert_event;
use super::spaces::insert_space;
use super::view::build_view;
use super::{SpaceRecord, Store, StoreError, corrupt};
use crate::event::Event;
use crate::identity::Identity;

impl Store {
    /// The device identity, if initialised.
    pub fn identity(&self) -> Result<Option<Identity>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT secret, person_id, name FROM identity WHERE id = 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )
            .optional()
            .map_err(corrupt(&self.path))?;
        match row {
            None => Ok(None),
            Some((secret, person, name)) => {
                let secret: [u8; 32] = secret
                    .try_into()
                    .map_err(|_| StoreError::Damaged("device secret key".into()))?;
                Identity::from_parts(secret, person, name)
                    .map(Some)
                    .map_err(|e| StoreError::Damaged(e.to_string()))
            }
        }
    }

    /// The identity, or [`StoreError::NotInitialised`].
    pub fn require_identity(&self) -> Result<Identity, StoreError> {
        self.identity()?.ok_or(StoreError::NotInitialised)
    }

    /// Creates the identity and its first spaces, each with its genesis-time events and
    /// first document change, in one transaction.
    pub fn initialise(
        &mut self,
        identity: &Identity,
        spaces: &[(SpaceRecord, Vec<Event>, Vec<Change>)],
    ) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        if let Some(existing) = self.identity()? {
            return Err(StoreError::AlreadyInitialised(existing.name));
        }
        let now = self.now();
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO identity (id, secret, person_id, name, created_at) VALUES (1, ?1, ?2, ?3, ?4)",
            params![identity.secret_bytes().to_vec(), identity.person_id.as_str(), identity.name, now],
        )?;
        for (rec, events, changes) in spaces {
            insert_space(&tx, rec, now)?;
            for ev in events {
                insert_event(&tx, &rec.id, ev, false, None)?;
            }
            for c in changes {
                insert_change(&tx, &rec.id, c, true)?;
            }
            build_view(&tx, &rec.id, identity, changes)?;
        }
        tx.commit()?;
        Ok(())
    }
}
