//! The device's local store: one SQLite database holding the identity, the spaces
//! (key, relay, cursor), every document change, a document snapshot per space, and every
//! event verbatim.
//!
//! Every method that changes state runs in one SQLite transaction, so a crash leaves the
//! previous state or the new one. Opening a space loads its snapshot and applies only the
//! changes stored after it. The database file is created readable by its owner only,
//! because it holds the device's secret key and the space keys.

use std::path::{Path, PathBuf};

use automerge::Change;
use rusqlite::{Connection, OptionalExtension, params};

use crate::crypto::SpaceKey;
use crate::doc::{DocError, SpaceDoc};
use crate::event::{Event, SpaceId};
use crate::identity::Identity;
use crate::lock::{HomeLock, LockError, WriteGuard};
use crate::readmodel::{Parts, View};

mod timeline;

/// File name of the store inside the home directory.
pub const DB_FILE: &str = "duet.db";
/// A new snapshot is written once this many changes follow the last one.
pub const SNAPSHOT_EVERY: i64 = 500;

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
];

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

/// The schema version from which stores can no longer hold two local changes with one
/// sequence number (the home's write lock came with it); older stores are checked once.
const REPAIRED_FROM: i64 = 6;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No identity yet.
    #[error(
        "this device has no duet identity yet; run `duet init --name NAME` or `duet join CODE --name NAME` first"
    )]
    NotInitialised,
    /// Identity already present.
    #[error("this home already has a duet identity ({0}); use another --home to start over")]
    AlreadyInitialised(String),
    /// The file is not a SQLite database or is damaged.
    #[error(
        "the store {path} is damaged or not a duet database ({source}); restore it from a backup or move it away"
    )]
    Corrupt {
        /// Database path.
        path: PathBuf,
        /// SQLite's words.
        source: rusqlite::Error,
    },
    /// The database was written by a newer duet.
    #[error("the store was written by a newer duet (schema {0}); upgrade duet")]
    TooNew(i64),
    /// The home directory cannot be created or written.
    #[error("cannot write to {path}: {source}; check the permissions of --home / DUET_HOME")]
    Io {
        /// Path concerned.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The space is not in this store.
    #[error("no {0} space on this device")]
    NoSpace(String),
    /// A stored blob is damaged.
    #[error("stored data is damaged: {0}")]
    Damaged(String),
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The document failed.
    #[error(transparent)]
    Doc(#[from] DocError),
    /// The home's write lock could not be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
}

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

/// A refused event as recorded: its hash, the reason, its bytes and when it was refused
/// (ms since epoch).
pub type RefusedRecord = ([u8; 32], String, Vec<u8>, i64);

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

/// The device's database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// The home's cross-process write lock; every method that writes takes it.
    lock: HomeLock,
    /// A read-only home, read through an in-memory copy: derived tables may be built
    /// in memory, nothing reaches the files.
    read_only: bool,
    /// What opening the store repaired, to tell the user (once: the repair runs with
    /// the schema upgrade).
    repairs: Vec<String>,
}

fn corrupt(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| match &source {
        rusqlite::Error::SqliteFailure(e, _)
            if matches!(
                e.code,
                rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt
            ) =>
        {
            StoreError::Corrupt {
                path: path.to_path_buf(),
                source,
            }
        }
        rusqlite::Error::SqliteFailure(e, _)
            if matches!(
                e.code,
                rusqlite::ErrorCode::ReadOnly
                    | rusqlite::ErrorCode::CannotOpen
                    | rusqlite::ErrorCode::PermissionDenied
            ) =>
        {
            StoreError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    source.to_string(),
                ),
            }
        }
        _ => StoreError::Sqlite(source),
    }
}

fn space_id(s: &str) -> Result<SpaceId, StoreError> {
    SpaceId::parse(s).ok_or_else(|| StoreError::Damaged(format!("space id {s:?}")))
}

impl Store {
    /// Opens the store in `home`, creating the directory and database if `create`.
    pub fn open(home: &Path, create: bool) -> Result<Store, StoreError> {
        let path = home.join(DB_FILE);
        if !path.exists() {
            if !create {
                return Err(StoreError::NotInitialised);
            }
            std::fs::create_dir_all(home).map_err(|source| StoreError::Io {
                path: home.to_path_buf(),
                source,
            })?;
            create_private_file(&path)?;
        }
        let lock = match HomeLock::open(home) {
            Ok(lock) if writable(&path) => lock,
            Ok(_) => return Self::open_read_only(home, path),
            Err(LockError::Io { source, .. }) if !create && is_read_only(&source) => {
                return Self::open_read_only(home, path);
            }
            Err(e) => return Err(e.into()),
        };
        let conn = Connection::open(&path).map_err(corrupt(&path))?;
        let mut store = Store {
            conn,
            path,
            lock,
            read_only: false,
            repairs: Vec::new(),
        };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    /// Opens a home this user may read but not write (a backup copy, another user's
    /// disk): the database is copied into memory through a read-only connection, so
    /// that reading (which may build missing read models) never touches the files.
    /// Every write fails with [`LockError::ReadOnly`].
    fn open_read_only(home: &Path, path: PathBuf) -> Result<Store, StoreError> {
        use rusqlite::OpenFlags;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
        let probe = |c: &Connection| {
            c.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
        };
        let uri = |extra: &str| {
            format!(
                "file:{}?mode=ro{extra}",
                path.to_string_lossy()
                    .replace('%', "%25")
                    .replace('?', "%3f")
                    .replace('#', "%23")
            )
        };
        let source = match Connection::open_with_flags(uri(""), flags) {
            Ok(c) if probe(&c).is_ok() => c,
            // WAL needs a shared-memory file beside the database; in a directory this
            // user cannot write it cannot be created. Without a `-wal` file every
            // committed transaction is in the database file, and reading it as
            // immutable is exact.
            _ => {
                let wal = home.join(format!("{DB_FILE}-wal"));
                if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
                    return Err(StoreError::Io {
                        path: wal,
                        source: std::io::Error::new(
                            std::io::ErrorKind::PermissionDenied,
                            "the store has a write-ahead log that this user cannot open; \
                             open the home once as its owner (any duet command) so it is folded into the database",
                        ),
                    });
                }
                let c = Connection::open_with_flags(uri("&immutable=1"), flags)
                    .map_err(corrupt(&path))?;
                probe(&c).map_err(corrupt(&path))?;
                c
            }
        };
        let mut conn = Connection::open_in_memory().map_err(corrupt(&path))?;
        {
            let backup = rusqlite::backup::Backup::new(&source, &mut conn)?;
            backup
                .run_to_completion(i32::MAX, std::time::Duration::ZERO, None)
                .map_err(corrupt(&path))?;
        }
        let mut store = Store {
            conn,
            path,
            lock: HomeLock::read_only(home),
            read_only: true,
            repairs: Vec::new(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// Takes the home's write lock (re-entrant): hold it from reading what decides a
    /// write to committing it.
    pub fn write_lock(&self) -> Result<WriteGuard, StoreError> {
        Ok(self.lock.acquire()?)
    }

    /// The home's write lock, to configure how writers wait.
    pub fn home_lock(&self) -> &HomeLock {
        &self.lock
    }

    /// Whether this home is read-only for this user.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The lock for writing derived tables (read models): none is needed in a read-only
    /// home, whose tables live in memory only.
    fn derived_lock(&self) -> Result<Option<WriteGuard>, StoreError> {
        if self.read_only {
            Ok(None)
        } else {
            self.write_lock().map(Some)
        }
    }

    /// The database file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SQLite's `data_version`: it changes when another connection (another `duet`
    /// process) commits to this store, so a long-running command can notice local edits
    /// made meanwhile without reading any table.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    fn configure(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        self.conn
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(corrupt(&path))?;
        // WAL gives readers a stable view while a sync writes; FULL makes commits durable.
        let _: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(corrupt(&path))?;
        self.conn
            .execute_batch(
                // A 32 MiB page cache: rebuilding the read models of a long history
                // writes large tables and their indexes in one transaction.
                "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -32768;",
            )
            .map_err(corrupt(&path))?;
        Ok(())
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
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
                Ok(Some(Identity::from_parts(secret, person, name)))
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
        let now = crate::ids::now_ms();
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO identity (id, secret, person_id, name, created_at) VALUES (1, ?1, ?2, ?3, ?4)",
            params![identity.secret_bytes().to_vec(), identity.person_id, identity.name, now],
        )?;
        for (rec, events, changes) in spaces {
            insert_space(&tx, rec, now)?;
            for ev in events {
                insert_event(&tx, &rec.id, ev, false, None)?;
            }
            for c in changes {
                insert_change(&tx, &rec.id, c, true)?;
            }
            build_view(&tx, &rec.id, changes)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Adds a space (joined later), with events and changes, in one transaction.
    pub fn add_space(
        &mut self,
        rec: &SpaceRecord,
        events: &[Event],
        changes: &[Change],
    ) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        let tx = self.conn.transaction()?;
        insert_space(&tx, rec, crate::ids::now_ms())?;
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

    /// Loads a space's document: latest snapshot plus the changes stored after it.
    pub fn load_doc(
        &self,
        space: &SpaceId,
        identity: &Identity,
    ) -> Result<(SpaceDoc, OpenStats), StoreError> {
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
        let upto = snap.as_ref().map_or(0, |s| s.1);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT bytes FROM changes WHERE space = ?1 AND id > ?2 ORDER BY id")?;
        let mut tail = Vec::new();
        for b in stmt.query_map(params![sid, upto], |r| r.get::<_, Vec<u8>>(0))? {
            tail.push(
                Change::from_bytes(b?).map_err(|e| StoreError::Damaged(format!("change: {e}")))?,
            );
        }
        let snapshot_changes = if snap.is_some() {
            self.conn.query_row(
                "SELECT COUNT(*) FROM changes WHERE space = ?1 AND id <= ?2",
                params![sid, upto],
                |r| r.get(0),
            )?
        } else {
            0
        };
        let stats = OpenStats {
            from_snapshot: snap.is_some(),
            snapshot_changes,
            replayed_changes: tail.len(),
        };
        let doc = SpaceDoc::load(
            identity.actor(),
            snap.as_ref().map(|s| s.0.as_slice()),
            tail,
        )?;
        Ok((doc, stats))
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
        for c in changes {
            insert_change(&tx, space, c, true)?;
        }
        maybe_snapshot(&tx, space, doc, false)?;
        crate::readmodel::refresh(&tx, space, doc)?;
        tx.commit()?;
        Ok(())
    }

    /// The typed content of a space from its read-model tables, rebuilding them from
    /// the document first if they are missing or of an older version. With
    /// [`Parts::Goals`], ratings and reflections are left empty (not read).
    pub fn view(
        &mut self,
        space: &SpaceId,
        identity: &Identity,
        parts: Parts,
    ) -> Result<View, StoreError> {
        self.current_view(space, identity)?;
        let c = &self.conn;
        let all = parts == Parts::All;
        Ok(View {
            people: crate::readmodel::people(c, space)?,
            goals: crate::readmodel::goals(c, space)?,
            ratings: if all {
                crate::readmodel::ratings(c, space)?
            } else {
                Vec::new()
            },
            reflections: if all {
                crate::readmodel::reflections(c, space)?
            } else {
                Vec::new()
            },
            problems: crate::readmodel::problems(c, space)?,
        })
    }

    /// The stored history events of a space matching `q`, in history order, each with
    /// its position (see [`crate::history::timeline`]). Rebuilds stale read models first.
    pub fn history_rows(
        &mut self,
        space: &SpaceId,
        identity: &Identity,
        q: &crate::history::HistoryQuery,
        last: Option<usize>,
    ) -> Result<Vec<crate::readmodel::HistoryRow>, StoreError> {
        self.current_view(space, identity)?;
        Ok(crate::readmodel::history_rows(&self.conn, space, q, last)?)
    }

    /// The position of the first stored history event later than `at`.
    pub fn history_first_after(
        &self,
        space: &SpaceId,
        at: i64,
    ) -> Result<Option<crate::readmodel::HistoryPos>, StoreError> {
        Ok(crate::readmodel::history_first_after(
            &self.conn, space, at,
        )?)
    }

    /// Builds a space's read-model tables from `doc` unless they are current.
    pub fn ensure_view(&mut self, space: &SpaceId, doc: &SpaceDoc) -> Result<(), StoreError> {
        if !crate::readmodel::is_current(&self.conn, space)? {
            self.rebuild_from(space, doc)?;
        }
        Ok(())
    }

    /// Makes a space's read-model tables current, loading the document only if they
    /// are missing or of an older version.
    fn current_view(&mut self, space: &SpaceId, identity: &Identity) -> Result<(), StoreError> {
        if !crate::readmodel::is_current(&self.conn, space)? {
            self.rebuild_view(space, identity)?;
        }
        Ok(())
    }

    /// Rewrites a space's read-model tables from its document.
    pub fn rebuild_view(&mut self, space: &SpaceId, identity: &Identity) -> Result<(), StoreError> {
        // Held from the load to the commit, so a write committed meanwhile is not lost
        // from the tables.
        let _lock = self.derived_lock()?;
        let (doc, _) = self.load_doc(space, identity)?;
        self.rebuild_from(space, &doc)
    }

    fn rebuild_from(&mut self, space: &SpaceId, doc: &SpaceDoc) -> Result<(), StoreError> {
        let _lock = self.derived_lock()?;
        let tx = self.conn.transaction()?;
        crate::readmodel::rebuild(&tx, space, doc)?;
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
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, bytes FROM changes WHERE space = ?1 AND local = 1 AND pushed = 0 ORDER BY id",
        )?;
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

    /// Number of local changes not yet in an event.
    pub fn pending_count(&self, space: &SpaceId) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM changes WHERE space = ?1 AND local = 1 AND pushed = 0",
            params![space.to_string()],
            |r| r.get(0),
        )?)
    }

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

    /// Every event of a space in the order this device accepted them.
    pub fn events(&self, space: &SpaceId) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT bytes FROM events WHERE space = ?1
                 ORDER BY relay_cursor IS NULL, relay_cursor, id",
        )?;
        let rows = stmt.query_map(params![space.to_string()], |r| r.get::<_, Vec<u8>>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// This device's events the relay has not acknowledged, oldest first.
    pub fn unacked_events(&self, space: &SpaceId) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT bytes FROM events WHERE space = ?1 AND acked = 0 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![space.to_string()], |r| r.get::<_, Vec<u8>>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks events as acknowledged (durably stored by the relay).
    pub fn mark_acked(&mut self, space: &SpaceId, hashes: &[[u8; 32]]) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        let tx = self.conn.transaction()?;
        {
            let mut stmt =
                tx.prepare_cached("UPDATE events SET acked = 1 WHERE space = ?1 AND hash = ?2")?;
            for h in hashes {
                stmt.execute(params![space.to_string(), h.to_vec()])?;
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

    /// Stores a pulled page in one transaction: accepted events and their changes,
    /// refused events as evidence, held events (waiting for a predecessor), released
    /// held events, acknowledgements of own events, and the new cursor. `doc` already has
    /// the changes.
    pub fn store_pulled(
        &mut self,
        space: &SpaceId,
        page: &Pulled<'_>,
        cursor: u64,
        doc: &SpaceDoc,
    ) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        let now = crate::ids::now_ms();
        let sid = space.to_string();
        let tx = self.conn.transaction()?;
        for a in page.accepted {
            insert_event(&tx, space, &a.event, true, Some(a.cursor))?;
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
        maybe_snapshot(&tx, space, doc, false)?;
        crate::readmodel::refresh(&tx, space, doc)?;
        tx.commit()?;
        Ok(())
    }

    /// Every stored event of a space that decodes, in stored order.
    pub fn stored_events(&self, space: &SpaceId) -> Result<Vec<Event>, StoreError> {
        Ok(self
            .events(space)?
            .into_iter()
            .filter_map(|b| Event::decode(b).ok())
            .collect())
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

    fn space_by_id(&self, space: &SpaceId) -> Result<SpaceRecord, StoreError> {
        self.spaces()?
            .into_iter()
            .find(|s| s.id == *space)
            .ok_or_else(|| StoreError::NoSpace(space.to_string()))
    }

    /// Withdraws this device's unacknowledged events from the one with hash `from` on
    /// (the relay refused it because a concurrent membership change won): deletes them,
    /// marks the changes they carried as not sent (they are packaged again), and forgets
    /// the key of any epoch a withdrawn removal had started. One transaction. Returns the
    /// devices whose withdrawn removal may need doing again.
    pub fn withdraw_unacked(
        &mut self,
        space: &SpaceId,
        from: &[u8; 32],
        keys: &std::collections::BTreeMap<u32, SpaceKey>,
    ) -> Result<Option<Vec<crate::identity::DeviceKey>>, StoreError> {
        let _lock = self.write_lock()?;
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
                crate::event::Kind::Remove => {
                    if let Ok(crate::event::MembershipOp::Remove { device, epoch, .. }) =
                        crate::event::MembershipOp::decode(&ev)
                    {
                        tx.execute(
                            "DELETE FROM epoch_keys WHERE space = ?1 AND epoch = ?2",
                            params![sid, i64::from(epoch)],
                        )?;
                        redo.push(device);
                    }
                }
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

    /// Records that the user compared `code` in person and confirmed these devices.
    pub fn confirm_verified(
        &mut self,
        space: &SpaceId,
        code: &str,
        devices: &[crate::identity::DeviceKey],
    ) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        let now = crate::ids::now_ms();
        let tx = self.conn.transaction()?;
        for d in devices {
            tx.execute(
                "INSERT INTO verified (space, device, code, at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (space, device) DO UPDATE SET code = excluded.code, at = excluded.at",
                params![space.to_string(), d.to_vec(), code, now],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Devices the user has verified in a space.
    pub fn verified(&self, space: &SpaceId) -> Result<Vec<crate::identity::DeviceKey>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT device FROM verified WHERE space = ?1")?;
        let rows = stmt.query_map(params![space.to_string()], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for r in rows {
            if let Ok(k) = r?.try_into() {
                out.push(k);
            }
        }
        Ok(out)
    }

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

    /// How many events wait in a space and their bytes.
    pub fn held_stats(&self, space: &SpaceId) -> Result<(usize, usize), StoreError> {
        let (n, bytes): (i64, i64) = self.conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(bytes)), 0) FROM held WHERE space = ?1",
            params![space.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((n.max(0) as usize, bytes.max(0) as usize))
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

fn insert_epoch_key(
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
        .map(|s| Identity::from_parts(s, String::new(), String::new()).actor())
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
        tx.execute("DELETE FROM rm_state WHERE space = ?1", params![sid])?;
        let summary = format!("{kind} space: {}", repair.summary());
        tx.execute(
            "INSERT INTO repairs (space, summary, at) VALUES (?1, ?2, ?3)",
            params![sid, summary, crate::ids::now_ms()],
        )?;
        out.push(summary);
    }
    Ok(out)
}

/// Whether this user can open the database for writing (opening changes nothing).
fn writable(path: &Path) -> bool {
    std::fs::OpenOptions::new().append(true).open(path).is_ok()
}

fn is_read_only(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    )
}

fn create_private_file(path: &Path) -> Result<(), StoreError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
        .map(|_| ())
        .map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })
}

fn insert_space(
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

/// Records a refused event as evidence, once per hash, while the space's evidence is
/// under [`MAX_REFUSED_KEPT`] and [`MAX_REFUSED_BYTES`]; past that it is only counted, so
/// that a partner or relay cannot grow the store without bound with refused content.
fn keep_refused(
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

fn insert_event(
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

/// Builds the read models of a new space from its first changes, so that reading it
/// never has to write.
fn build_view(
    tx: &rusqlite::Transaction<'_>,
    space: &SpaceId,
    changes: &[Change],
) -> Result<(), StoreError> {
    let doc = SpaceDoc::load(automerge::ActorId::random(), None, changes.to_vec())?;
    crate::readmodel::rebuild(tx, space, &doc)?;
    Ok(())
}

fn insert_change(
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

/// Writes a snapshot when enough changes follow the last one (or when forced). Skipped
/// while the document waits for missing dependencies, because a snapshot would not
/// contain the queued changes it claims to cover.
fn maybe_snapshot(
    tx: &rusqlite::Transaction<'_>,
    space: &SpaceId,
    doc: &SpaceDoc,
    force: bool,
) -> Result<(), StoreError> {
    use automerge::ReadDoc;
    let sid = space.to_string();
    let upto: i64 = tx
        .query_row(
            "SELECT upto FROM snapshots WHERE space = ?1",
            params![sid],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let (count, max): (i64, Option<i64>) = tx.query_row(
        "SELECT COUNT(*), MAX(id) FROM changes WHERE space = ?1 AND id > ?2",
        params![sid, upto],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let Some(max) = max else { return Ok(()) };
    if !force && count < SNAPSHOT_EVERY {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(i: u32, len: usize) -> Refused {
        Refused {
            hash: crate::crypto::sha256(&i.to_be_bytes()),
            reason: format!("refusal {i}"),
            bytes: vec![1; len],
        }
    }

    #[test]
    fn refused_evidence_is_kept_once_up_to_its_cap_and_the_rest_is_counted() {
        let home = tempfile::tempdir().expect("tempdir");
        drop(crate::device::Device::init(home.path(), "Alex", None).expect("init"));
        let mut store = Store::open(home.path(), false).expect("store");
        let me = store.require_identity().expect("identity");
        let rec = store.space(SpaceKind::Shared).expect("shared");
        let (doc, _) = store.load_doc(&rec.id, &me).expect("doc");
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
            .store_pulled(&rec.id, &pulled(&page), 0, &doc)
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
            .store_pulled(&other.id, &pulled(&big), 0, &doc)
            .expect("stored");
        assert_eq!(store.refused(&other.id).expect("kept").len(), 2);
        assert_eq!(store.refused_total(&other.id).expect("total"), 3);
    }

    #[test]
    fn waiting_events_are_measured_and_dropped() {
        let home = tempfile::tempdir().expect("tempdir");
        drop(crate::device::Device::init(home.path(), "Alex", None).expect("init"));
        let mut store = Store::open(home.path(), false).expect("store");
        let me = store.require_identity().expect("identity");
        let rec = store.space(SpaceKind::Shared).expect("shared");
        let (doc, _) = store.load_doc(&rec.id, &me).expect("doc");
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
            .store_pulled(&rec.id, &pulled, 6, &doc)
            .expect("stored");
        assert_eq!(store.held_stats(&rec.id).expect("stats"), (2, 30));
        assert_eq!(store.drop_held(&rec.id).expect("dropped"), 2);
        assert_eq!(store.held_stats(&rec.id).expect("stats"), (0, 0));
        assert!(store.held(&rec.id).expect("held").is_empty());
    }
}
