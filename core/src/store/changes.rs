//! The change log and snapshots: loading a space's document, storing local changes,
//! what is not yet sent, and when a snapshot is written.

use automerge::Change;
use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, corrupt};
use crate::doc::{New, SpaceDoc, Tip};
use crate::event::SpaceId;
use crate::identity::Identity;

/// A new snapshot is written once this many changes follow the last one.
pub const SNAPSHOT_EVERY: i64 = 500;

/// ... or once the changes after the last one hold this many bytes: a few hundred
/// changes of long texts (every character an operation) took a second and a half to
/// replay at every write of a text, where a snapshot of them loads in a fraction.
pub const SNAPSHOT_BYTES: i64 = 256 * 1024;

/// How a document was opened (for tests and `duet status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenStats {
    /// Whether a snapshot was loaded.
    pub from_snapshot: bool,
    /// Changes covered by the snapshot.
    pub snapshot_changes: i64,
    /// Changes applied after the snapshot.
    pub replayed_changes: usize,
}

impl Store {
    /// Loads a space's document: latest snapshot plus the changes stored after it.
    pub fn load_doc(
        &self,
        space: &SpaceId,
        identity: &Identity,
    ) -> Result<(SpaceDoc, OpenStats), StoreError> {
        self.loads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let sid = space.to_string();
        let snap: Option<(Vec<u8>, i64)> = self
            .conn
            .query_row(
                "SELECT bytes, upto FROM snapshots WHERE space = ?1",
                params![sid],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(corrupt(&self.path))?;
        let tail = self.changes_after(&sid, snap.as_ref().map_or(0, |s| s.1))?;
        let stats = OpenStats {
            from_snapshot: snap.is_some(),
            snapshot_changes: self.snapshot_changes(&sid, snap.as_ref().map(|s| s.1))?,
            replayed_changes: tail.len(),
        };
        let doc = match SpaceDoc::load(
            identity.actor(),
            snap.as_ref().map(|s| s.0.as_slice()),
            tail,
        ) {
            Ok(doc) => doc,
            // A damaged snapshot is only a shortcut: every change it covers is stored.
            Err(e) if snap.is_some() => self
                .changes_after(&sid, 0)
                .and_then(|all| Ok(SpaceDoc::load(identity.actor(), None, all)?))
                .map_err(|_| {
                    StoreError::Damaged(format!(
                        "this device's copy of a space does not load ({e})"
                    ))
                })?,
            Err(e) => {
                return Err(StoreError::Damaged(format!(
                    "this device's copy of a space does not load ({e})"
                )));
            }
        };
        Ok((doc, stats))
    }

    /// A space's stored changes after row `upto` (0: every one), oldest first.
    fn changes_after(&self, sid: &str, upto: i64) -> Result<Vec<Change>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT bytes FROM changes WHERE space = ?1 AND id > ?2 ORDER BY id")?;
        let mut out = Vec::new();
        for b in stmt.query_map(params![sid, upto], |r| r.get::<_, Vec<u8>>(0))? {
            out.push(
                Change::from_bytes(b?).map_err(|e| StoreError::Damaged(format!("change: {e}")))?,
            );
        }
        Ok(out)
    }

    /// The newest row of a space's changes (0 when it has none): it moves whenever a
    /// change of the space is stored, by this process or another, which is what a kept
    /// document of the space is checked against.
    pub fn newest_change_row(&self, space: &SpaceId) -> Result<i64, StoreError> {
        Ok(crate::readmodel::newest_row(
            &self.conn,
            &space.to_string(),
        )?)
    }

    /// Stores new local changes (and a fresh snapshot when due) in one transaction.
    pub fn commit_local(
        &mut self,
        space: &SpaceId,
        changes: &[Change],
        doc: &SpaceDoc,
    ) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        let tx = self.conn.transaction()?;
        write_local(&tx, space, changes, doc)?;
        tx.commit()?;
        Ok(())
    }

    /// What loading a space's document would start from (its snapshot, and the changes
    /// stored after it), without loading it: what `duet status` reports.
    pub fn open_stats(&self, space: &SpaceId) -> Result<OpenStats, StoreError> {
        let sid = space.to_string();
        let upto: Option<i64> = self
            .conn
            .query_row(
                "SELECT upto FROM snapshots WHERE space = ?1",
                params![sid],
                |r| r.get(0),
            )
            .optional()?;
        let after: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM changes WHERE space = ?1 AND id > ?2",
            params![sid, upto.unwrap_or(0)],
            |r| r.get(0),
        )?;
        Ok(OpenStats {
            from_snapshot: upto.is_some(),
            snapshot_changes: self.snapshot_changes(&sid, upto)?,
            replayed_changes: usize::try_from(after).unwrap_or(0),
        })
    }

    /// How many changes the snapshot taken at change row `upto` covers (0 without one).
    fn snapshot_changes(&self, sid: &str, upto: Option<i64>) -> Result<i64, StoreError> {
        let Some(upto) = upto else { return Ok(0) };
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM changes WHERE space = ?1 AND id <= ?2",
            params![sid, upto],
            |r| r.get(0),
        )?)
    }

    /// How many times this store loaded a space's document since it was opened.
    pub fn documents_loaded(&self) -> u64 {
        self.loads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The document's tip for a change by `identity` built without loading it
    /// ([`crate::doc::Tip`]), when it is current and the changes after the snapshot
    /// leave room for one more (a load writes the next snapshot, so the tail stays short).
    pub fn tip(&self, space: &SpaceId, identity: &Identity) -> Result<Option<Tip>, StoreError> {
        let tail = tail_after_snapshot(&self.conn, &space.to_string())?;
        if tail.due(1) {
            return Ok(None);
        }
        Ok(crate::readmodel::current_tip(
            &self.conn,
            space,
            &identity.actor(),
        )?)
    }

    /// Stores a local change built on `tip` (by [`Tip::put_new`] with `entities`) and
    /// brings the read models to it, in one transaction.
    pub fn commit_new(
        &mut self,
        space: &SpaceId,
        change: &Change,
        entities: &[New<'_>],
        tip: &Tip,
    ) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        let tx = self.conn.transaction()?;
        insert_change(&tx, space, change, true)?;
        crate::readmodel::refresh_new(&tx, space, change, entities, tip)?;
        tx.commit()?;
        Ok(())
    }

    /// Writes a snapshot of `doc` now, covering every stored change.
    pub fn snapshot_now(&mut self, space: &SpaceId, doc: &SpaceDoc) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        let tx = self.conn.transaction()?;
        maybe_snapshot(&tx, space, doc, true)?;
        tx.commit()?;
        Ok(())
    }

    /// Local changes not yet sent in an event, oldest first: (row id, change).
    pub fn pending_changes(&self, space: &SpaceId) -> Result<Vec<(i64, Change)>, StoreError> {
        changes_of(
            &self.conn,
            "SELECT id, bytes FROM changes WHERE space = ?1 AND local = 1 AND pushed = 0 ORDER BY id",
            space,
        )
    }

    /// The hashes of the local changes not yet in an event (hex), read without decoding
    /// the changes.
    pub fn pending_hashes(
        &self,
        space: &SpaceId,
    ) -> Result<std::collections::BTreeSet<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT hash FROM changes WHERE space = ?1 AND local = 1 AND pushed = 0",
        )?;
        let rows = stmt.query_map(params![space.to_string()], |r| r.get::<_, Vec<u8>>(0))?;
        rows.map(|h| Ok(hex::encode(h?))).collect()
    }

    /// Whether anything this device wrote in the space is not on the relay yet: a local
    /// change not yet in an event, or an event not acknowledged.
    pub fn has_unsent(&self, space: &SpaceId) -> Result<bool, StoreError> {
        Ok(self.pending_count(space)? > 0 || self.first_unacked(space)?.is_some())
    }

    /// Number of local changes not yet in an event.
    pub fn pending_count(&self, space: &SpaceId) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM changes WHERE space = ?1 AND local = 1 AND pushed = 0",
            params![space.to_string()],
            |r| r.get(0),
        )?)
    }
}

/// Stores this device's new changes of a space, already in `doc`, with a fresh snapshot
/// when due and the read models brought to `doc` (inside the caller's transaction).
pub(super) fn write_local(
    tx: &rusqlite::Transaction<'_>,
    space: &SpaceId,
    changes: &[Change],
    doc: &SpaceDoc,
) -> Result<(), StoreError> {
    for c in changes {
        insert_change(tx, space, c, true)?;
    }
    maybe_snapshot(tx, space, doc, false)?;
    crate::readmodel::refresh(tx, space, doc)?;
    Ok(())
}

/// The (row id, change) pairs a query selecting `id, bytes` for space `?1` returns.
pub(super) fn changes_of(
    conn: &rusqlite::Connection,
    sql: &str,
    space: &SpaceId,
) -> Result<Vec<(i64, Change)>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut out = Vec::new();
    for row in stmt.query_map(params![space.to_string()], |r| {
        Ok((r.get(0)?, r.get::<_, Vec<u8>>(1)?))
    })? {
        let (id, b) = row?;
        out.push((
            id,
            Change::from_bytes(b).map_err(|e| StoreError::Damaged(format!("change: {e}")))?,
        ));
    }
    Ok(out)
}

pub(super) fn insert_change(
    tx: &rusqlite::Transaction<'_>,
    space: &SpaceId,
    c: &Change,
    local: bool,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO changes (space, hash, bytes, local, pushed) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        space.to_string(),
        c.hash().0.to_vec(),
        c.raw_bytes(),
        local,
        !local
    ])?;
    Ok(())
}

/// The changes of a space after its snapshot: how many, their bytes, the newest row.
struct Tail {
    count: i64,
    bytes: i64,
    newest: Option<i64>,
}

impl Tail {
    /// Whether a snapshot is due once `more` changes are added.
    fn due(&self, more: i64) -> bool {
        self.count + more >= SNAPSHOT_EVERY || self.bytes >= SNAPSHOT_BYTES
    }
}

/// The changes of a space that follow its snapshot.
fn tail_after_snapshot(conn: &rusqlite::Connection, sid: &str) -> Result<Tail, StoreError> {
    let upto: i64 = conn
        .prepare_cached("SELECT upto FROM snapshots WHERE space = ?1")?
        .query_row(params![sid], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    // `+space`: walk the rowids after the snapshot (a short tail), not every change of
    // the space in the index on `space`. `length` of a blob reads no content.
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(bytes)), 0), MAX(id) FROM changes
             WHERE +space = ?1 AND id > ?2",
        )?
        .query_row(params![sid, upto], |r| {
            Ok(Tail {
                count: r.get(0)?,
                bytes: r.get(1)?,
                newest: r.get(2)?,
            })
        })?)
}

/// Writes a snapshot when enough changes follow the last one (or when forced). Skipped
/// while the document waits for missing dependencies, because a snapshot would not
/// contain the queued changes it claims to cover.
pub(super) fn maybe_snapshot(
    tx: &rusqlite::Transaction<'_>,
    space: &SpaceId,
    doc: &SpaceDoc,
    force: bool,
) -> Result<(), StoreError> {
    use automerge::ReadDoc;
    let sid = space.to_string();
    let tail = tail_after_snapshot(tx, &sid)?;
    let Some(max) = tail.newest else {
        return Ok(());
    };
    if !force && !tail.due(0) {
        return Ok(());
    }
    if !doc.automerge().get_missing_deps(&[]).is_empty() {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO snapshots (space, bytes, upto) VALUES (?1, ?2, ?3)
         ON CONFLICT (space) DO UPDATE SET bytes = excluded.bytes, upto = excluded.upto",
        params![sid, doc.save(), max],
    )?;
    Ok(())
}
