//! Storing a pulled page: accepted events with their changes, refused and held events,
//! acknowledgements of own events, new epoch keys and the cursor, in one transaction.

use automerge::Change;
use rusqlite::params;

use super::changes::{insert_change, maybe_snapshot};
use super::events::insert_event;
use super::held::keep_refused;
use super::spaces::insert_epoch_key;
use super::{Store, StoreError};
use crate::crypto::SpaceKey;
use crate::doc::SpaceDoc;
use crate::event::{Event, SpaceId};

/// A pulled event accepted by the client, ready to store.
#[derive(Debug)]
pub struct Accepted {
    /// The event.
    pub event: Event,
    /// Relay cursor it came with.
    pub cursor: u64,
    /// Changes it carried (already applied to the document).
    pub changes: Vec<Change>,
}

/// A pulled event refused by the client, kept as evidence.
#[derive(Debug)]
pub struct Refused {
    /// Hash of the bytes.
    pub hash: [u8; 32],
    /// Why.
    pub reason: String,
    /// The bytes as served.
    pub bytes: Vec<u8>,
}

/// One pulled page, as [`Store::store_pulled`] stores it.
#[derive(Debug)]
pub struct Pulled<'a> {
    /// Accepted events with their changes.
    pub accepted: &'a [Accepted],
    /// Refused events (evidence).
    pub refused: &'a [Refused],
    /// Own events the relay served back: (hash, cursor).
    pub own_acked: &'a [([u8; 32], u64)],
    /// Events waiting for a predecessor: (cursor, bytes).
    pub held: &'a [(u64, Vec<u8>)],
    /// Hashes of held events that were accepted or refused now.
    pub released: &'a [[u8; 32]],
    /// Space keys of new epochs received in removal events.
    pub new_keys: &'a [(u32, SpaceKey)],
}

impl Store {
    /// Stores a pulled page in one transaction: accepted events and their changes,
    /// refused events as evidence, held events (waiting for a predecessor), released
    /// held events, acknowledgements of own events, and the new cursor. `doc` already has
    /// the changes; a sync that needed no document passes none (its page brought no
    /// changes, so neither a snapshot nor the read models move).
    pub fn store_pulled(
        &mut self,
        space: &SpaceId,
        page: &Pulled<'_>,
        cursor: u64,
        doc: Option<&SpaceDoc>,
    ) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        let now = self.now();
        let sid = space.to_string();
        let tx = self.conn.transaction()?;
        // Events refused before, in an order a lying relay served, are judged again by a
        // read from the start: one taken now is no longer kept as refused. (Looked up
        // only when the space has refused events at all: a join stores many pages.)
        let any_refused: bool = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM rejected WHERE space = ?1)")?
            .query_row(params![sid], |r| r.get(0))?;
        for a in page.accepted {
            insert_event(&tx, space, &a.event, true, Some(a.cursor))?;
            if any_refused {
                tx.execute(
                    "DELETE FROM rejected WHERE space = ?1 AND hash = ?2",
                    params![sid, a.event.hash().to_vec()],
                )?;
            }
            for c in &a.changes {
                insert_change(&tx, space, c, false)?;
            }
        }
        for r in page.refused {
            keep_refused(&tx, &sid, r, now)?;
        }
        for h in page.released {
            tx.execute(
                "DELETE FROM held WHERE space = ?1 AND hash = ?2",
                params![sid, h.to_vec()],
            )?;
        }
        for (c, bytes) in page.held {
            tx.execute(
                "INSERT OR IGNORE INTO held (space, hash, cursor, bytes) VALUES (?1, ?2, ?3, ?4)",
                params![sid, crate::crypto::sha256(bytes).to_vec(), *c as i64, bytes],
            )?;
        }
        for (epoch, key) in page.new_keys {
            insert_epoch_key(&tx, space, *epoch, key)?;
        }
        for (hash, c) in page.own_acked {
            tx.execute(
                "UPDATE events SET acked = 1, relay_cursor = ?3 WHERE space = ?1 AND hash = ?2",
                params![sid, hash.to_vec(), *c as i64],
            )?;
        }
        tx.execute(
            "UPDATE spaces SET cursor = MAX(cursor, ?2) WHERE space = ?1",
            params![sid, cursor as i64],
        )?;
        match doc {
            Some(doc) => {
                maybe_snapshot(&tx, space, doc, false)?;
                crate::readmodel::refresh(&tx, space, doc)?;
            }
            // Changes without their document (no caller does this): the read models
            // are rebuilt on next use rather than left behind.
            None if page.accepted.iter().any(|a| !a.changes.is_empty()) => {
                crate::readmodel::forget(&tx, space)?;
            }
            None => {}
        }
        tx.commit()?;
        Ok(())
    }
}
