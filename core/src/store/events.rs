//! The event log: this device's own events, their acknowledgement by the relay, reading
//! stored events, and withdrawing unacknowledged ones the relay refused.

use rusqlite::{OptionalExtension, params};

use super::spaces::insert_epoch_key;
use super::{Store, StoreError};
use crate::crypto::SpaceKey;
use crate::event::{Event, SpaceId};

/// Where a stored event was served: the relay's cursor for it (none before one is
/// known), and its author's device key.
pub type StoredAt = (Option<u64>, Vec<u8>);

impl Store {
    /// Records this device's new events and marks the changes they carry as sent.
    pub fn record_own_events(
        &mut self,
        space: &SpaceId,
        events: &[Event],
        change_ids: &[i64],
    ) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        let tx = self.conn.transaction()?;
        for ev in events {
            insert_event(&tx, space, ev, false, None)?;
        }
        {
            let mut stmt = tx.prepare_cached("UPDATE changes SET pushed = 1 WHERE id = ?1")?;
            for id in change_ids {
                stmt.execute(params![id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Records this device's removal event together with the key of the epoch it starts,
    /// in one transaction (a crash leaves neither or both).
    pub fn record_removal(
        &mut self,
        space: &SpaceId,
        event: &Event,
        epoch: u32,
        key: &SpaceKey,
    ) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        let tx = self.conn.transaction()?;
        insert_epoch_key(&tx, space, epoch, key)?;
        insert_event(&tx, space, event, false, None)?;
        tx.commit()?;
        Ok(())
    }

    /// Records this device's leave event and that it left, in one transaction: a leave
    /// stored but not marked (a Ctrl-C between the two) let the person go on writing as
    /// a member, and the next sync left, stranding what they wrote.
    pub fn record_leave(
        &mut self,
        space: &SpaceId,
        event: &Event,
        departed: &super::alerts::Departed,
    ) -> Result<(), StoreError> {
        let json =
            serde_json::to_string(departed).map_err(|e| StoreError::Damaged(e.to_string()))?;
        let _lock = self.write_lock()?;
        let tx = self.conn.transaction()?;
        insert_event(&tx, space, event, false, None)?;
        tx.execute(
            "UPDATE spaces SET departed = ?2 WHERE space = ?1",
            params![space.to_string(), json],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Every event of a space in the order this device accepted them.
    pub fn events(&self, space: &SpaceId) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT bytes FROM events WHERE space = ?1
                 ORDER BY relay_cursor IS NULL, relay_cursor, id",
        )?;
        let rows = stmt.query_map(params![space.to_string()], |r| r.get::<_, Vec<u8>>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every stored event of a space that decodes, in stored order (their signatures
    /// were verified when they were stored: [`Event::decode_stored`]).
    pub fn stored_events(&self, space: &SpaceId) -> Result<Vec<Event>, StoreError> {
        Ok(self
            .events(space)?
            .into_iter()
            .filter_map(|b| Event::decode_stored(b).ok())
            .collect())
    }

    /// Every stored event of a space that decodes, split for a read from `through`: the
    /// relay's order up to there (then events the relay holds but no longer places, as
    /// [`Store::stored_events`] has them), and what the relay ordered after it or has not
    /// taken yet (this device's acknowledged events past the read, its unsent ones).
    /// Events the read brings are checked against the first part only: the relay's
    /// order decides, not the order this device wrote in.
    pub fn events_split_at(
        &self,
        space: &SpaceId,
        through: u64,
    ) -> Result<(Vec<Event>, Vec<Event>), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT bytes, relay_cursor, acked FROM events WHERE space = ?1
                 ORDER BY relay_cursor IS NULL, relay_cursor, id",
        )?;
        let rows = stmt.query_map(params![space.to_string()], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, bool>(2)?,
            ))
        })?;
        let (mut read, mut after) = (Vec::new(), Vec::new());
        for row in rows {
            let (bytes, cursor, acked) = row?;
            let Ok(ev) = Event::decode_stored(bytes) else {
                continue;
            };
            let beyond = match cursor {
                Some(c) => u64::try_from(c).is_ok_and(|c| c > through),
                None => !acked,
            };
            if beyond { &mut after } else { &mut read }.push(ev);
        }
        Ok((read, after))
    }

    /// This device's events the relay has not acknowledged, oldest first.
    pub fn unacked_events(&self, space: &SpaceId) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT bytes FROM events WHERE space = ?1 AND acked = 0 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![space.to_string()], |r| r.get::<_, Vec<u8>>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The events `author` (this device) wrote that the relay acknowledged, by seq: a
    /// backup carries them, so that a restore can give back those a relay restored from
    /// an older copy of its database lost (written again, their changes would take
    /// sequence numbers the partner's devices hold with the originals: a fork).
    pub fn acked_own_events(
        &self,
        space: &SpaceId,
        author: &crate::identity::DeviceKey,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT bytes FROM events WHERE space = ?1 AND author = ?2 AND acked = 1 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![space.to_string(), author.to_vec()], |r| {
            r.get::<_, Vec<u8>>(0)
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether a space holds a `leave` or `remove` event (one indexed look, before a fold
    /// of every event asks who is still there).
    pub fn has_departures(&self, space: &SpaceId) -> Result<bool, StoreError> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM events WHERE space = ?1 AND kind IN ('leave', 'remove'))",
            params![space.to_string()],
            |r| r.get(0),
        )?)
    }

    /// Whether the relay acknowledged any event `author` (this device) wrote, in any space.
    pub fn relay_holds_own_event(
        &self,
        author: &crate::identity::DeviceKey,
    ) -> Result<bool, StoreError> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM events WHERE author = ?1 AND acked = 1)",
            params![author.to_vec()],
            |r| r.get(0),
        )?)
    }

    /// Whether the relay acknowledged the event that made `author` a member of `space`
    /// (its join, or the space's genesis): a relay that then answers its reads as by a
    /// device that never was one lost that event, or never kept it.
    pub fn entry_acked(
        &self,
        space: &SpaceId,
        author: &crate::identity::DeviceKey,
    ) -> Result<bool, StoreError> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM events WHERE space = ?1 AND author = ?2 AND acked = 1
               AND kind IN ('join', 'genesis'))",
            params![space.to_string(), author.to_vec()],
            |r| r.get(0),
        )?)
    }

    /// Marks events as acknowledged (durably stored by the relay), with the cursor the
    /// relay gave each, unless a read already placed it: the next read checks the relay
    /// still reaches that far (a relay that acknowledged what it did not keep does not).
    pub fn mark_acked(
        &mut self,
        space: &SpaceId,
        acked: &[([u8; 32], Option<u64>)],
    ) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE events SET acked = 1, relay_cursor = COALESCE(relay_cursor, ?3)
                 WHERE space = ?1 AND hash = ?2",
            )?;
            for (h, cursor) in acked {
                let cursor = cursor.and_then(|c| i64::try_from(c).ok());
                stmt.execute(params![space.to_string(), h.to_vec(), cursor])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// This device's last event in a space: (seq, hash).
    pub fn own_head(
        &self,
        space: &SpaceId,
        author: &crate::identity::DeviceKey,
    ) -> Result<Option<(u64, [u8; 32])>, StoreError> {
        let row: Option<(i64, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT seq, hash FROM events WHERE space = ?1 AND author = ?2 ORDER BY seq DESC LIMIT 1",
                params![space.to_string(), author.to_vec()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match row {
            None => Ok(None),
            Some((seq, hash)) => Ok(Some((
                seq as u64,
                hash.try_into()
                    .map_err(|_| StoreError::Damaged("event hash".into()))?,
            ))),
        }
    }

    /// The event of `space` with `hash`, if stored: the cursor the relay served (or
    /// acknowledged) it at, if one, and its author's device key.
    pub fn stored_at(
        &self,
        space: &SpaceId,
        hash: &[u8; 32],
    ) -> Result<Option<StoredAt>, StoreError> {
        let row: Option<(Option<i64>, Vec<u8>)> = self
            .conn
            .prepare_cached(
                "SELECT relay_cursor, author FROM events WHERE space = ?1 AND hash = ?2",
            )?
            .query_row(params![space.to_string(), hash.to_vec()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        Ok(row.map(|(c, author)| (c.and_then(|c| u64::try_from(c).ok()), author)))
    }

    /// Whether an event with this hash is stored.
    pub fn has_event(&self, space: &SpaceId, hash: &[u8; 32]) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM events WHERE space = ?1 AND hash = ?2",
                params![space.to_string(), hash.to_vec()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// The kinds of this device's unacknowledged events in the space, oldest first.
    pub fn unacked_kinds(&self, space: &SpaceId) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT kind FROM events WHERE space = ?1 AND acked = 0 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![space.to_string()], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// This device's first unacknowledged event in the space (its hash and kind), if any.
    pub fn first_unacked(&self, space: &SpaceId) -> Result<Option<([u8; 32], String)>, StoreError> {
        let row: Option<(Vec<u8>, String)> = self
            .conn
            .query_row(
                "SELECT hash, kind FROM events WHERE space = ?1 AND acked = 0 ORDER BY seq LIMIT 1",
                params![space.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(hash, kind)| {
            let hash = hash
                .try_into()
                .map_err(|_| StoreError::Damaged("event hash".into()))?;
            Ok((hash, kind))
        })
        .transpose()
    }

    /// Whether this device joined the space and never finished its first sync: it has
    /// read nothing from the relay (`cursor` 0) and its own first event is its `join`,
    /// acknowledged or not (a join stopped after the relay stored it, before it read
    /// the space back, holds no document yet either).
    pub fn join_unfinished(&self, space: &SpaceId, cursor: u64) -> Result<bool, StoreError> {
        if cursor > 0 {
            return Ok(false);
        }
        let first: Option<String> = self
            .conn
            .query_row(
                "SELECT kind FROM events WHERE space = ?1 ORDER BY seq LIMIT 1",
                params![space.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(first.is_some_and(|kind| kind == crate::event::Kind::Join.as_str()))
    }

    /// Withdraws this device's unacknowledged events from the one with hash `from` on
    /// (the relay refused it because a concurrent membership change won): deletes them,
    /// marks the changes they carried as not sent (they are packaged again), and forgets
    /// the key of any epoch a withdrawn removal had started. One transaction. Returns the
    /// withdrawn removals and revocations, which may need doing again.
    pub fn withdraw_unacked(
        &mut self,
        space: &SpaceId,
        from: &[u8; 32],
        keys: &std::collections::BTreeMap<u32, SpaceKey>,
    ) -> Result<Option<Vec<Redo>>, StoreError> {
        let _lock = self.write_lock()?;
        let me = self.require_identity()?;
        let mut keys = keys.clone();
        let sid = space.to_string();
        let tx = self.conn.transaction()?;
        let seq: Option<i64> = tx
            .query_row(
                "SELECT seq FROM events WHERE space = ?1 AND hash = ?2 AND acked = 0",
                params![sid, from.to_vec()],
                |r| r.get(0),
            )
            .optional()?;
        let Some(seq) = seq else { return Ok(None) };
        let rows: Vec<Vec<u8>> = {
            let mut stmt = tx.prepare(
                "SELECT bytes FROM events WHERE space = ?1 AND acked = 0 AND seq >= ?2 ORDER BY seq",
            )?;
            let rows = stmt.query_map(params![sid, seq], |r| r.get::<_, Vec<u8>>(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut redo = Vec::new();
        for bytes in rows {
            let Ok(ev) = Event::decode(bytes) else {
                continue;
            };
            match ev.kind() {
                crate::event::Kind::Changes => {
                    let changes = ev
                        .epoch()
                        .and_then(|e| keys.get(&e))
                        .and_then(|k| ev.open(k).ok())
                        .and_then(|p| crate::event::decode_changes(&p).ok())
                        .unwrap_or_default();
                    for c in changes {
                        tx.execute(
                            "UPDATE changes SET pushed = 0 WHERE space = ?1 AND hash = ?2",
                            params![sid, c.hash().0.to_vec()],
                        )?;
                    }
                }
                crate::event::Kind::Remove | crate::event::Kind::Rotate => {
                    let Ok(op) = crate::event::MembershipOp::decode(&ev) else {
                        continue;
                    };
                    if let Some(rekey) = op.rekey() {
                        // This device's changes after it are under the key it made, though
                        // the epoch's stored key may since be another's that the relay
                        // took first (a partner's removal while it had lost this one):
                        // that one stays, this one opens what is withdrawn.
                        let made = rekey
                            .keys
                            .iter()
                            .find(|(d, _)| *d == me.device_key())
                            .and_then(|(_, w)| {
                                crate::keywrap::unwrap(&me, rekey.eph, w, space, rekey.epoch)
                            });
                        let stored = keys.get(&rekey.epoch).map(|k| *k.as_bytes());
                        let ours = made.as_ref().map(|k| *k.as_bytes());
                        if made.is_none() || stored == ours {
                            tx.execute(
                                "DELETE FROM epoch_keys WHERE space = ?1 AND epoch = ?2",
                                params![sid, i64::from(rekey.epoch)],
                            )?;
                        }
                        if let Some(k) = made {
                            keys.insert(rekey.epoch, k);
                        }
                    }
                    // A withdrawn rotation is made again by the next sync (the space
                    // still needs one); a removal is redone by the caller.
                    if let crate::event::MembershipOp::Remove { device, keys, .. } = op {
                        let known = keys.iter().map(|(d, _)| *d).collect();
                        redo.push(Redo::Removal { device, known });
                    }
                }
                crate::event::Kind::Revoke => {
                    if let Ok(crate::event::MembershipOp::Revoke { invite_key }) =
                        crate::event::MembershipOp::decode(&ev)
                    {
                        redo.push(Redo::Revocation(invite_key));
                    }
                }
                crate::event::Kind::Leave => redo.push(Redo::Leave),
                _ => {}
            }
            tx.execute(
                "DELETE FROM events WHERE space = ?1 AND hash = ?2",
                params![sid, ev.hash().to_vec()],
            )?;
        }
        tx.commit()?;
        Ok(Some(redo))
    }
}

pub(super) fn insert_event(
    tx: &rusqlite::Transaction<'_>,
    space: &SpaceId,
    ev: &Event,
    acked: bool,
    cursor: Option<u64>,
) -> Result<(), StoreError> {
    let h = ev.header();
    tx.prepare_cached(
        "INSERT OR IGNORE INTO events (space, hash, author, seq, kind, bytes, acked, relay_cursor)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        space.to_string(),
        ev.hash().to_vec(),
        h.author.to_vec(),
        h.seq as i64,
        h.kind.as_str(),
        ev.bytes(),
        acked,
        cursor.map(|c| c as i64)
    ])?;
    Ok(())
}

/// A membership change of this device that the relay refused as conflicting and that
/// was withdrawn: done again unless the state it aimed at already holds. Redoing rather
/// than dropping keeps a relay that answers "conflict" falsely from undoing a removal
/// or reopening an invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redo {
    /// Remove this device (if it is still a member); `known` are the members the
    /// withdrawn removal handed its key to (those this device knew of then).
    Removal {
        /// The device to remove.
        device: crate::identity::DeviceKey,
        /// The other members when the removal was first signed.
        known: Vec<crate::identity::DeviceKey>,
    },
    /// Revoke this invite (if it is still neither revoked nor used).
    Revocation(crate::identity::DeviceKey),
    /// Leave the space (if this device is still a member): a leave signed after a
    /// change the relay refused as conflicting (a revocation of an invite used
    /// meanwhile) is withdrawn with it, and must not be lost.
    Leave,
}
