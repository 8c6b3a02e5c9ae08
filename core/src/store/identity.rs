//! The device identity: reading it, and creating it with the first spaces.

use automerge::Change;
use rusqlite::{OptionalExtension, params};

use super::changes::insert_change;
use super::events::insert_event;
use super::spaces::{insert_epoch_key, insert_space};
use super::view::build_view;
use super::{SpaceRecord, Store, StoreError, corrupt};
use crate::crypto::SpaceKey;
use crate::event::Event;
use crate::identity::Identity;

/// What a new home starts with besides its own new spaces.
#[derive(Default)]
pub struct Begun {
    /// Spaces joined with a code: their join events wait for the first sync.
    pub joined: Vec<JoinedSpace>,
    /// The relay's creation token for the spaces made here.
    pub create_token: Option<String>,
}

/// A space joined with a code, before its first sync.
pub struct JoinedSpace {
    /// The space (its key is the code's).
    pub rec: SpaceRecord,
    /// This device's signed join.
    pub join: Event,
    /// The keys of the epochs after the first, in order, from the code.
    pub later_keys: Vec<SpaceKey>,
}

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
        self.initialise_all(identity, spaces, &Begun::default())
    }

    /// [`Store::initialise`], with the spaces joined by a code and the relay's creation
    /// token in the same transaction: a process killed halfway leaves an empty home,
    /// which a second `init` or `join` may use, never an identity without its spaces.
    pub fn initialise_all(
        &mut self,
        identity: &Identity,
        spaces: &[(SpaceRecord, Vec<Event>, Vec<Change>)],
        begun: &Begun,
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
        for j in &begun.joined {
            insert_space(&tx, &j.rec, now)?;
            insert_event(&tx, &j.rec.id, &j.join, false, None)?;
            for (i, k) in j.later_keys.iter().enumerate() {
                insert_epoch_key(&tx, &j.rec.id, i as u32 + 1, k)?;
            }
        }
        if let Some(token) = &begun.create_token {
            tx.execute("UPDATE spaces SET create_token = ?1", params![token])?;
        }
        tx.commit()?;
        Ok(())
    }
}
