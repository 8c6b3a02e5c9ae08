//! The store's schema: the migrations in order, and the one-time repair of duplicate
//! sequence numbers that runs when a store older than the write lock is upgraded.

use automerge::Change;
use rusqlite::{OptionalExtension, params};

use super::changes::insert_change;
use super::{Store, StoreError, corrupt, space_id};

/// Schema migrations, applied in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE identity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    secret BLOB NOT NULL,
    person_id TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE spaces (
    space TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('shared', 'personal')),
    key BLOB NOT NULL,
    relay TEXT,
    cursor INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE changes (
    id INTEGER PRIMARY KEY,
    space TEXT NOT NULL,
    hash BLOB NOT NULL,
    bytes BLOB NOT NULL,
    local INTEGER NOT NULL,
    pushed INTEGER NOT NULL DEFAULT 0,
    UNIQUE (space, hash)
);
CREATE INDEX changes_pending ON changes (space, local, pushed);
CREATE TABLE snapshots (
    space TEXT PRIMARY KEY,
    bytes BLOB NOT NULL,
    upto INTEGER NOT NULL
);
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    space TEXT NOT NULL,
    hash BLOB NOT NULL,
    author BLOB NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    bytes BLOB NOT NULL,
    acked INTEGER NOT NULL DEFAULT 0,
    relay_cursor INTEGER,
    UNIQUE (space, hash),
    UNIQUE (space, author, seq)
);
CREATE TABLE rejected (
    id INTEGER PRIMARY KEY,
    space TEXT NOT NULL,
    hash BLOB NOT NULL,
    reason TEXT NOT NULL,
    bytes BLOB NOT NULL,
    at INTEGER NOT NULL
);
"#,
    r#"
CREATE TABLE held (
    id INTEGER PRIMARY KEY,
    space TEXT NOT NULL,
    hash BLOB NOT NULL,
    cursor INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    UNIQUE (space, hash)
);
ALTER TABLE spaces ADD COLUMN alert TEXT;
"#,
    r#"
CREATE TABLE verified (
    space TEXT NOT NULL,
    device BLOB NOT NULL,
    code TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (space, device)
);
"#,
    r#"
CREATE TABLE epoch_keys (
    space TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    key BLOB NOT NULL,
    PRIMARY KEY (space, epoch)
);
"#,
    crate::readmodel::SCHEMA,
    // Opening a store of an older version after this one runs the duplicate-seq repair
    // once (`repair_duplicate_seqs`); what it did is kept here.
    r#"
CREATE TABLE repairs (
    id INTEGER PRIMARY KEY,
    space TEXT NOT NULL,
    summary TEXT NOT NULL,
    at INTEGER NOT NULL
);
"#,
    // Refused events past the evidence cap are counted, not kept (`MAX_REFUSED_KEPT`).
    r#"
ALTER TABLE spaces ADD COLUMN refused_not_kept INTEGER NOT NULL DEFAULT 0;
CREATE INDEX rejected_space_hash ON rejected (space, hash);
"#,
    // The relay operator's creation token (`duet init --token`, `duet relay set
    // --token`), sent only on pushes that carry the space's unacknowledged genesis.
    r#"
ALTER TABLE spaces ADD COLUMN create_token TEXT;
"#,
    crate::readmodel::RITUALS_SCHEMA,
    // How this device's membership of a space ended, once a sync learnt it (JSON of
    // `store::Departed`): shared edits are then refused with that reason.
    r#"
ALTER TABLE spaces ADD COLUMN departed TEXT;
"#,
    crate::readmodel::WRITE_PATH_SCHEMA,
    crate::readmodel::PROGRESS_SCHEMA,
    crate::readmodel::TIP_SCHEMA,
    // Summaries kept before a withdrawn or corrected reveal stopped bringing its seal
    // back as waiting may count that rating still: dropped, and kept again from the
    // tables by the next `progress` (`Store::progress_summary`).
    r#"
DELETE FROM rm_progress;
"#,
    // The event that anchors a space's cursor (`Store::cursor_anchor`), found at once:
    // each sync checks that the relay still serves it where it did.
    r#"
CREATE INDEX IF NOT EXISTS events_relay_cursor ON events (space, relay_cursor);
"#,
    // This device's unsent changes, set aside while another copy of the device (a
    // restored backup, a copied home) had numbered its own changes the same way: the
    // sync that set them aside makes them again after that copy's (`Store::set_aside`).
    r#"
CREATE TABLE IF NOT EXISTS set_aside (
    id INTEGER PRIMARY KEY,
    space TEXT NOT NULL,
    bytes BLOB NOT NULL
);
"#,
    // Whether anyone left or was removed (`Store::has_departures`), asked by every
    // blind rating, found without reading a space's events.
    r#"
CREATE INDEX IF NOT EXISTS events_departures ON events (space) WHERE kind IN ('leave', 'remove');
"#,
    // How far the relay's clock was from this device's at the latest sync, and when by
    // this device's clock (`Store::relay_clock`): ratings are refused while they
    // disagree (`Device::ensure_clock_agrees`).
    r#"
ALTER TABLE spaces ADD COLUMN relay_ahead_ms INTEGER;
ALTER TABLE spaces ADD COLUMN relay_ahead_at INTEGER;
"#,
];

/// The schema version from which stores can no longer hold two local changes with one
/// sequence number (the home's write lock came with it); older stores are checked once.
const REPAIRED_FROM: i64 = 6;

impl Store {
    pub(super) fn migrate(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(corrupt(&path))?;
        let target = MIGRATIONS.len() as i64;
        if version > target {
            return Err(StoreError::TooNew(version));
        }
        if version == target {
            return Ok(());
        }
        let _lock = self.derived_lock()?;
        // Another process may have migrated while this one waited for the lock.
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(corrupt(&path))?;
        if version >= target {
            return Ok(());
        }
        let tx = self.conn.transaction().map_err(corrupt(&path))?;
        for m in &MIGRATIONS[version as usize..] {
            tx.execute_batch(m).map_err(corrupt(&path))?;
        }
        if version > 0 && version < REPAIRED_FROM {
            self.repairs = repair_duplicate_seqs(&tx)?;
        }
        tx.pragma_update(None, "user_version", target)
            .map_err(corrupt(&path))?;
        tx.commit().map_err(corrupt(&path))?;
        Ok(())
    }

    /// What opening this store repaired (empty almost always), for the user to be told.
    pub fn repairs(&self) -> &[String] {
        &self.repairs
    }

    /// The schema version.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }
}

/// Finds, in every space, local changes that repeat a sequence number of this device
/// (two processes committed at once before the home had a write lock), re-makes them as
/// new changes with the same content (see [`crate::repair`]), and drops the snapshot and
/// read models built without them. Returns a line per repaired space. A space that
/// cannot be repaired is left as it was, and the reason is returned instead.
fn repair_duplicate_seqs(tx: &rusqlite::Transaction<'_>) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    let Some(actor) = tx
        .query_row("SELECT secret FROM identity WHERE id = 1", [], |r| {
            r.get::<_, Vec<u8>>(0)
        })
        .optional()?
        .and_then(|s| <[u8; 32]>::try_from(s).ok())
        .map(|s| crate::identity::actor_of_secret(&s))
    else {
        return Ok(out);
    };
    let spaces: Vec<(String, String)> = {
        let mut stmt = tx.prepare("SELECT space, kind FROM spaces ORDER BY kind DESC")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (sid, kind) in spaces {
        let mut changes = Vec::new();
        let mut pushed = std::collections::HashMap::new();
        {
            let mut stmt = tx.prepare(
                "SELECT id, bytes, local AND pushed FROM changes WHERE space = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map(params![sid], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, bool>(2)?,
                ))
            })?;
            for row in rows {
                let (id, bytes, sent) = row?;
                let change = Change::from_bytes(bytes)
                    .map_err(|e| StoreError::Damaged(format!("change: {e}")))?;
                pushed.insert(id, sent);
                changes.push((id, change));
            }
        }
        let repair = match crate::repair::repair_duplicates(changes, &actor) {
            Ok(r) if r.is_empty() => continue,
            Ok(r) => r,
            Err(e) => {
                out.push(format!("the {kind} space could not be repaired: {e}"));
                continue;
            }
        };
        if repair.delete.iter().any(|id| pushed.get(id) == Some(&true)) {
            out.push(format!(
                "the {kind} space holds two changes of this device with one sequence number, \
                 one of them already sent; it cannot be repaired here"
            ));
            continue;
        }
        let space = space_id(&sid)?;
        for id in &repair.delete {
            tx.execute("DELETE FROM changes WHERE id = ?1", params![id])?;
        }
        for r in &repair.remade {
            insert_change(tx, &space, &r.change, true)?;
        }
        tx.execute("DELETE FROM snapshots WHERE space = ?1", params![sid])?;
        crate::readmodel::forget(tx, &space)?;
        let summary = format!("{kind} space: {}", repair.summary());
        tx.execute(
            "INSERT INTO repairs (space, summary, at) VALUES (?1, ?2, ?3)",
            params![sid, summary, crate::ids::now_ms()],
        )?;
        out.push(summary);
    }
    Ok(out)
}
