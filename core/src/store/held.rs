//! Held and refused events: events waiting for an earlier event or a key, and refused
//! events kept as evidence, each within its cap.

use rusqlite::{OptionalExtension, params};

use super::{Refused, Store, StoreError};
use crate::event::SpaceId;

/// Events waiting for an earlier event or a key (held) that this device keeps per space.
/// Honest waits are short (an event served before its predecessor); only a relay making
/// them up fills this. Past it, a sync stops reading until they fit or are dropped
/// ([`Store::drop_held`]).
pub const MAX_HELD_EVENTS: usize = 1000;
/// Bytes of held events this device keeps per space.
pub const MAX_HELD_BYTES: usize = 64 * 1024 * 1024;
/// Refused events kept as evidence per space (their bytes, reason and time); later ones
/// are only counted.
pub const MAX_REFUSED_KEPT: usize = 100;
/// Bytes of refused events kept as evidence per space.
pub const MAX_REFUSED_BYTES: usize = 16 * 1024 * 1024;

/// A refused event as recorded: its hash, the reason, its bytes and when it was refused
/// (ms since epoch).
pub type RefusedRecord = ([u8; 32], String, Vec<u8>, i64);

impl Store {
    /// Events waiting for an earlier event of their author: (cursor, bytes), in cursor
    /// order.
    pub fn held(&self, space: &SpaceId) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT cursor, bytes FROM held WHERE space = ?1 ORDER BY cursor")?;
        let rows = stmt.query_map(params![space.to_string()], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many events wait in a space and their bytes.
    pub fn held_stats(&self, space: &SpaceId) -> Result<(usize, usize), StoreError> {
        let (n, bytes): (i64, i64) = self.conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(bytes)), 0) FROM held WHERE space = ?1",
            params![space.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((n.max(0) as usize, bytes.max(0) as usize))
    }

    /// Where a read must start again for the relay to serve what the waiting events wait
    /// for, when that lies below the cursor (a relay that left an event out of a page,
    /// then served its successors: the cursor moved past the gap): for an event whose
    /// author's earlier events are not all here, the relay cursor of the latest of them
    /// this device stored; for one that waits for a key or for its author's admission, the
    /// start. `None` when nothing waits.
    pub fn gap_floor(&self, space: &SpaceId) -> Result<Option<u64>, StoreError> {
        let mut floor: Option<u64> = None;
        for (_, bytes) in self.held(space)? {
            let below = match crate::event::Event::decode(bytes) {
                Ok(ev) => self.before_gap(space, ev.header())?,
                Err(_) => 0,
            };
            floor = Some(floor.map_or(below, |f| f.min(below)));
        }
        Ok(floor)
    }

    /// The relay cursor of `h`'s author's latest stored event before it, when the one
    /// right before it is missing; 0 otherwise (it waits for something else).
    fn before_gap(&self, space: &SpaceId, h: &crate::event::Header) -> Result<u64, StoreError> {
        let (seq, cursor): (Option<i64>, Option<i64>) = self
            .conn
            .prepare_cached(
                "SELECT MAX(seq), MAX(relay_cursor) FROM events
                 WHERE space = ?1 AND author = ?2 AND seq < ?3",
            )?
            .query_row(
                params![
                    space.to_string(),
                    h.author.to_vec(),
                    i64::try_from(h.seq).unwrap_or(i64::MAX)
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
        let chained = seq.is_some_and(|s| s.saturating_add(1) == i64::try_from(h.seq).unwrap_or(0));
        Ok(match cursor {
            Some(c) if !chained => u64::try_from(c).unwrap_or(0),
            _ => 0,
        })
    }

    /// Whether this device refused the event `hash` of a space and kept it as evidence:
    /// a relay serving it again does not make it checked (and warned about) twice.
    pub fn was_refused(&self, space: &SpaceId, hash: &[u8; 32]) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM rejected WHERE space = ?1 AND hash = ?2")?
            .query_row(params![space.to_string(), hash.to_vec()], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Drops every event waiting in a space (for an earlier event or a key), for when a
    /// relay served more than [`MAX_HELD_EVENTS`] that never fit and sync stopped
    /// reading. Returns how many were dropped. The next sync reads on from its cursor; a
    /// dropped event is not read again (unless the relay serves it again).
    pub fn drop_held(&mut self, space: &SpaceId) -> Result<usize, StoreError> {
        let _lock = self.write_lock()?;
        Ok(self.conn.execute(
            "DELETE FROM held WHERE space = ?1",
            params![space.to_string()],
        )?)
    }

    /// Refused events recorded for a space, oldest first: (hash, reason, event bytes,
    /// when this device refused it).
    pub fn refused_events(&self, space: &SpaceId) -> Result<Vec<RefusedRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT hash, reason, bytes, at FROM rejected WHERE space = ?1 ORDER BY id")?;
        let rows = stmt.query_map(params![space.to_string()], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (hash, reason, bytes, at) = row?;
            let hash = <[u8; 32]>::try_from(hash)
                .map_err(|_| StoreError::Damaged("refused event hash".into()))?;
            out.push((hash, reason, bytes, at));
        }
        Ok(out)
    }

    /// How many events this device refused in a space: those kept as evidence and those
    /// only counted past [`MAX_REFUSED_KEPT`].
    pub fn refused_total(&self, space: &SpaceId) -> Result<usize, StoreError> {
        let (kept, not_kept): (i64, i64) = self.conn.query_row(
            "SELECT (SELECT COUNT(*) FROM rejected WHERE space = ?1),
                    COALESCE((SELECT refused_not_kept FROM spaces WHERE space = ?1), 0)",
            params![space.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((kept.max(0) + not_kept.max(0)) as usize)
    }

    /// Refused events recorded for a space: (hex hash, reason).
    pub fn refused(&self, space: &SpaceId) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT hash, reason FROM rejected WHERE space = ?1 ORDER BY id")?;
        let rows = stmt.query_map(params![space.to_string()], |r| {
            Ok((hex::encode(r.get::<_, Vec<u8>>(0)?), r.get::<_, String>(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Records a refused event as evidence, once per hash, while the space's evidence is
/// under [`MAX_REFUSED_KEPT`] and [`MAX_REFUSED_BYTES`]; past that it is only counted, so
/// that a partner or relay cannot grow the store without bound with refused content.
pub(super) fn keep_refused(
    tx: &rusqlite::Transaction<'_>,
    sid: &str,
    r: &Refused,
    now: i64,
) -> Result<(), StoreError> {
    let known = tx
        .prepare_cached("SELECT 1 FROM rejected WHERE space = ?1 AND hash = ?2")?
        .query_row(params![sid, r.hash.to_vec()], |_| Ok(()))
        .optional()?
        .is_some();
    if known {
        return Ok(());
    }
    let (kept, bytes): (i64, i64) = tx
        .prepare_cached(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(bytes)), 0) FROM rejected WHERE space = ?1",
        )?
        .query_row(params![sid], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let fits = (kept.max(0) as usize) < MAX_REFUSED_KEPT
        && (bytes.max(0) as usize).saturating_add(r.bytes.len()) <= MAX_REFUSED_BYTES;
    if fits {
        tx.execute(
            "INSERT INTO rejected (space, hash, reason, bytes, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![sid, r.hash.to_vec(), r.reason, r.bytes, now],
        )?;
    } else {
        tx.execute(
            "UPDATE spaces SET refused_not_kept = refused_not_kept + 1 WHERE space = ?1",
            params![sid],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Pulled, SpaceKind};

    fn refused(i: u32, len: usize) -> Refused {
        Refused {
            hash: crate::crypto::sha256(&i.to_be_bytes()),
            reason: format!("refusal {i}"),
            bytes: vec![1; len],
        }
    }

    /// A fresh device's store, its shared space and that space's document.
    fn fresh() -> (
        tempfile::TempDir,
        Store,
        crate::store::SpaceRecord,
        crate::doc::SpaceDoc,
    ) {
        let home = tempfile::tempdir().expect("tempdir");
        drop(crate::device::Device::init(home.path(), "Alex", None).expect("init"));
        let store = Store::open(home.path(), false).expect("store");
        let me = store.require_identity().expect("identity");
        let rec = store.space(SpaceKind::Shared).expect("shared");
        let (doc, _) = store.load_doc(&rec.id, &me).expect("doc");
        (home, store, rec, doc)
    }

    /// Long texts are snapshotted once the changes after the last snapshot hold
    /// [`crate::store::changes::SNAPSHOT_BYTES`], not only every 500 changes: a few
    /// hundred long reflections made every text write replay them (1.5 s).
    #[test]
    fn changes_holding_many_bytes_are_snapshotted_before_five_hundred() {
        let (_home, mut store, rec, mut doc) = fresh();
        let before = store.open_stats(&rec.id).expect("stats");
        assert!(!before.from_snapshot);
        for i in 0..3i64 {
            let change = doc
                .raw_transaction("long text", i, |tx| {
                    use automerge::transaction::Transactable;
                    tx.put(automerge::ROOT, format!("blob{i}"), "x".repeat(100_000))?;
                    Ok(())
                })
                .expect("a change")
                .expect("it changed something");
            store
                .commit_local(&rec.id, &[change], &doc)
                .expect("stored");
        }
        let after = store.open_stats(&rec.id).expect("stats");
        assert!(after.from_snapshot, "{after:?}");
        assert_eq!(after.replayed_changes, 0, "{after:?}");
    }

    #[test]
    fn refused_evidence_is_kept_once_up_to_its_cap_and_the_rest_is_counted() {
        let (_home, mut store, rec, doc) = fresh();
        let mut page: Vec<Refused> = (0..150).map(|i| refused(i, 100)).collect();
        // The same refusal again (a relay serving it twice) is kept once.
        page.push(refused(0, 100));
        fn pulled(refused: &[Refused]) -> Pulled<'_> {
            Pulled {
                accepted: &[],
                refused,
                own_acked: &[],
                held: &[],
                released: &[],
                new_keys: &[],
            }
        }
        store
            .store_pulled(&rec.id, &pulled(&page), 0, Some(&doc))
            .expect("stored");
        assert_eq!(
            store.refused(&rec.id).expect("kept").len(),
            MAX_REFUSED_KEPT
        );
        assert_eq!(store.refused_total(&rec.id).expect("total"), 150);
        // Bytes are capped too: a big one past the byte cap is only counted.
        let other = store.space(SpaceKind::Personal).expect("personal");
        let big: Vec<Refused> = (0..3).map(|i| refused(1000 + i, 7 << 20)).collect();
        store
            .store_pulled(&other.id, &pulled(&big), 0, Some(&doc))
            .expect("stored");
        assert_eq!(store.refused(&other.id).expect("kept").len(), 2);
        assert_eq!(store.refused_total(&other.id).expect("total"), 3);
    }

    #[test]
    fn waiting_events_are_measured_and_dropped() {
        let (_home, mut store, rec, doc) = fresh();
        let held = vec![(5u64, vec![1u8; 10]), (6, vec![2u8; 20])];
        let pulled = Pulled {
            accepted: &[],
            refused: &[],
            own_acked: &[],
            held: &held,
            released: &[],
            new_keys: &[],
        };
        store
            .store_pulled(&rec.id, &pulled, 6, Some(&doc))
            .expect("stored");
        assert_eq!(store.held_stats(&rec.id).expect("stats"), (2, 30));
        assert_eq!(store.drop_held(&rec.id).expect("dropped"), 2);
        assert_eq!(store.held_stats(&rec.id).expect("stats"), (0, 0));
        assert!(store.held(&rec.id).expect("held").is_empty());
    }
}
