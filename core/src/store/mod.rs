//! The device's local store: one SQLite database holding the identity, the spaces
//! (key, relay, cursor), every document change, a document snapshot per space, and every
//! event verbatim.
//!
//! Every method that changes state runs in one SQLite transaction, so a crash leaves the
//! previous state or the new one. Opening a space loads its snapshot and applies only the
//! changes stored after it. The database file is created readable by its owner only,
//! because it holds the device's secret key and the space keys.
//!
//! One job per file, each adding its own `impl Store` block: `schema` (migrations and
//! the repair that comes with an upgrade), `identity`, `spaces` (records, relay,
//! epoch keys), `changes` (change log and snapshots), `events` (event log and
//! acknowledgements), `pulled` (storing a pulled page), `held` (held and refused
//! events), `verification`, `alerts`, `view` (read-model plumbing), and `restore`
//! (filling a store from a backup). This file opens
//! the database and holds its locks.

mod alerts;
pub use alerts::Departed;
mod changes;
mod events;
mod found;
mod held;
mod identity;
mod in_use;
pub(crate) use in_use::in_use;
mod open_lock;
pub use open_lock::{MOVE_WAIT, OPEN_LOCK_FILE, OpenLock};
pub(crate) mod private;
mod pulled;
mod read_copy;
mod relay_loss;
mod restore;
mod restore_leftover;
mod schema;
mod set_aside;
mod setup_mark;
pub use setup_mark::{SETUP_MARK_FILE, clear_killed_setup_of};
mod spaces;
mod timeline;
mod verification;
mod view;

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::doc::DocError;
use crate::event::SpaceId;
use crate::lock::{HomeLock, LockError, WriteGuard};

pub use changes::{OpenStats, SNAPSHOT_EVERY};
pub use events::{Redo, StoredAt};
pub use held::{
    MAX_HELD_BYTES, MAX_HELD_EVENTS, MAX_REFUSED_BYTES, MAX_REFUSED_KEPT, RefusedRecord,
};
pub use identity::{Begun, JoinedSpace};
pub use pulled::{Accepted, Pulled, Refused};
pub use restore::RestoredChange;
pub use restore_leftover::{STAGING, beside, restore_lock_path, staging_folders, stopped_restore};
pub use spaces::{SpaceKind, SpaceRecord};

impl crate::advice::Advice for StoreError {
    fn next_step(&self) -> Option<crate::advice::NextStep> {
        use crate::advice::NextStep;
        match self {
            StoreError::NotInitialised => Some(NextStep::SetUp),
            StoreError::AlreadyInitialised(_) => Some(NextStep::OtherHome),
            StoreError::Io { cause, .. } | StoreError::Unreadable { cause, .. }
                if cause.kind() == std::io::ErrorKind::ReadOnlyFilesystem =>
            {
                Some(NextStep::MountWritable)
            }
            StoreError::Io { .. } | StoreError::Unreadable { .. } => {
                Some(NextStep::CheckHomePermissions)
            }
            StoreError::Corrupt { .. }
            | StoreError::Empty(_)
            | StoreError::Missing { .. }
            | StoreError::Damaged(_) => Some(NextStep::RestoreFromBackup),
            StoreError::Sqlite(e) => match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure) => {
                    Some(NextStep::FreeSpace)
                }
                Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
                    Some(NextStep::RestoreFromBackup)
                }
                Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen) => {
                    Some(NextStep::CheckHomePermissions)
                }
                _ => None,
            },
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(e)
    }
}

/// SQLite's failure in words that say what it means for this device's data (what it
/// was writing is not kept; what was kept before stays).
fn sqlite_said(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => "the disk that holds this device's data is full: \
             what this command was writing was not saved (nothing saved before is lost)"
            .to_string(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
            format!("this device's data is damaged ({e})")
        }
        // On a full disk SQLite often cannot even make its shared-memory file, and says
        // only this (every command fails, reading ones too).
        Some(rusqlite::ErrorCode::SystemIoFailure) => format!(
            "this device's data could not be read or written ({e}): the disk is probably \
             full or failing (nothing saved before is lost)"
        ),
        Some(rusqlite::ErrorCode::ReadOnly) => {
            format!("this device's data cannot be written ({e})")
        }
        // Past the busy wait: another program (not a duet process, which takes the
        // home's lock first) kept the database locked.
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            "another program kept this device's data locked for the whole wait (a program \
             reading or copying duet.db, such as sqlite3 or a backup tool): nothing was \
             changed; run the command again once it is done"
                .to_string()
        }
        _ => format!("database error: {e}"),
    }
}

/// File name of the store inside the home directory.
pub const DB_FILE: &str = "duet.db";

/// The longest path of the database file SQLite opens: its limit is 512 bytes for any of
/// its files, the write-ahead log's name 4 bytes longer.
const MAX_DB_PATH_BYTES: usize = 500;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No identity yet.
    #[error("this device has no duet identity yet")]
    NotInitialised,
    /// The database's path is longer than SQLite opens (its files' names included).
    #[error(
        "the home {} is too long a path for the database ({len} bytes; at most {MAX_DB_PATH_BYTES}): \
         choose a home with a shorter path (--home or DUET_HOME)",
        .home.display()
    )]
    PathTooLong {
        /// The home.
        home: PathBuf,
        /// The database file's whole path, in bytes.
        len: usize,
    },
    /// Identity already present.
    #[error(
        "this home already has a duet identity ({})",
        crate::names::one_line(.0)
    )]
    AlreadyInitialised(String),
    /// The file is not a SQLite database or is damaged.
    #[error("the store {path} is damaged or not a duet database ({cause})")]
    Corrupt {
        /// Database path.
        path: PathBuf,
        /// SQLite's words (in the message, not a source: said once).
        cause: rusqlite::Error,
    },
    /// The database file is there but empty: cut off before anything was written to it.
    #[error(
        "the store {} is empty: it was cut off before anything was written to it (a full \
         disk, an interrupted copy), so this home holds no device; if this device was \
         never set up, delete that file and set it up",
        .0.display()
    )]
    Empty(PathBuf),
    /// The database file is not there, or not a file, while something of it is: its
    /// write-ahead log, a link to it, a directory in its place. "No identity yet" would
    /// send the user to set up a new device over what is left of this one.
    #[error(
        "the store {} is missing ({why}); put it back, or bring this device back from a \
         backup",
        .path.display()
    )]
    Missing {
        /// The store's path.
        path: PathBuf,
        /// What is there instead.
        why: &'static str,
    },
    /// The database was written by a newer duet.
    #[error("the store was written by a newer duet (schema {0}); upgrade duet")]
    TooNew(i64),
    /// The home directory cannot be created or written.
    #[error("cannot write to {path}: {cause}")]
    Io {
        /// Path concerned.
        path: PathBuf,
        /// OS error (in the message, not a source: said once).
        cause: std::io::Error,
    },
    /// The store cannot be looked at (its home's permissions): not a home without a
    /// device, which would send the user to set one up.
    #[error("cannot read {path}: {cause}")]
    Unreadable {
        /// Path concerned.
        path: PathBuf,
        /// OS error.
        cause: std::io::Error,
    },
    /// The home given is a file, not a directory.
    #[error(
        "{} is a file; the home is the directory that holds {DB_FILE}: give --home / DUET_HOME that directory ({})",
        .0.display(),
        .0.parent().filter(|p| !p.as_os_str().is_empty()).map_or_else(|| ".".into(), |p| p.display().to_string())
    )]
    HomeIsFile(PathBuf),
    /// The space is not in this store.
    #[error("no {0} space on this device")]
    NoSpace(String),
    /// A stored blob is damaged.
    #[error("stored data is damaged: {0}")]
    Damaged(String),
    /// SQLite failed (its words in the message, not a source: said once).
    #[error("{}", sqlite_said(.0))]
    Sqlite(rusqlite::Error),
    /// The document failed.
    #[error(transparent)]
    Doc(#[from] DocError),
    /// The home's write lock could not be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
}

impl StoreError {
    /// Whether a stored row did not read as what its column should hold (a damaged
    /// byte in a row SQLite itself still reads).
    pub fn is_damaged_row(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite(
                rusqlite::Error::FromSqlConversionFailure(..)
                    | rusqlite::Error::InvalidColumnType(..)
                    | rusqlite::Error::IntegralValueOutOfRange(..)
                    | rusqlite::Error::Utf8Error(..)
            )
        )
    }

    /// Whether another process on the home held its write lock (or another program the
    /// database's) for the whole wait: nothing was changed, and the same command can pass
    /// once that process is done.
    pub fn is_busy(&self) -> bool {
        matches!(self, StoreError::Lock(LockError::Busy { .. }))
            || matches!(
                self,
                StoreError::Sqlite(e) if matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                )
            )
    }
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
    /// The clock of the times this store records (the device's, see `set_clock`).
    clock: crate::clock::Clock,
    /// How many times a space's document was loaded (what a write without a load saves).
    loads: std::sync::atomic::AtomicU64,
    /// The home's open lock, held shared while the connection lives (dropped after it:
    /// fields drop in order); none for a home read from a copy in memory.
    _open: Option<OpenLock>,
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
                cause: source,
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
                cause: std::io::Error::new(
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
    /// Takes the times it records from `clock` (the device's) from now on.
    pub fn set_clock(&mut self, clock: crate::clock::Clock) {
        self.clock = clock;
    }

    /// Now, on the store's clock (ms since the Unix epoch).
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Opens the store in `home`, creating the directory and database if `create`.
    pub fn open(home: &Path, create: bool) -> Result<Store, StoreError> {
        match Self::open_writable(home, create)? {
            Opening::Writable(store) => Ok(store),
            Opening::CopyNeeded(path, lock) => Self::open_read_only(home, path, lock),
        }
    }

    /// Opens a home only if it takes writes now: `None` where [`Store::open`] would read
    /// a copy in memory (a full disk, a read-only home), with nothing copied, so that a
    /// process holding such a copy can ask again at little cost.
    pub fn open_if_writable(home: &Path) -> Result<Option<Store>, StoreError> {
        Ok(match Self::open_writable(home, false)? {
            Opening::Writable(store) => Some(store),
            Opening::CopyNeeded(..) => None,
        })
    }

    fn open_writable(home: &Path, create: bool) -> Result<Opening, StoreError> {
        let path = home.join(DB_FILE);
        // Said before anything is made: SQLite refuses a longer path as "unable to open",
        // which read as a permission problem, and left an empty store behind.
        let len = std::path::absolute(&path).map_or(0, |p| p.as_os_str().len());
        if len > MAX_DB_PATH_BYTES {
            return Err(StoreError::PathTooLong {
                home: home.to_path_buf(),
                len,
            });
        }
        // A home given as a file (often the store itself) is not a home without a
        // device: saying "no identity yet" would send the user to `init`, which fails.
        if home.is_file() {
            return Err(StoreError::HomeIsFile(home.to_path_buf()));
        }
        // Taken before the files are looked at: a store being set up or moved meanwhile
        // is seen whole or not at all (see `open_lock`).
        let open = home.is_dir().then(|| OpenLock::shared(home)).flatten();
        let mut open = setup_mark::clear_when_killed(home, &path, open);
        // An empty file is no device, but not a home never set up either: "no identity
        // yet" would send the user to set up a new device (and reading it would write a
        // schema into it).
        let found = found::metadata(&path)?;
        if !create && found.as_ref().is_some_and(|m| m.is_file() && m.len() == 0) {
            return Err(StoreError::Empty(path));
        }
        if let Some(why) = found::missing_store(&path, found.as_ref()) {
            return Err(StoreError::Missing { path, why });
        }
        let mut setting_up = false;
        if found.is_none() {
            if !create {
                return Err(StoreError::NotInitialised);
            }
            open = found::begin_setup(home, &path, open)?;
            setting_up = true;
        }
        let lock = match lock_for(home, &path, create)? {
            Ok(lock) => lock,
            Err(read_only) => return Ok(Opening::CopyNeeded(path, read_only)),
        };
        let conn = Connection::open(&path).map_err(corrupt(&path))?;
        let mut store = Store {
            conn,
            path,
            lock,
            read_only: false,
            repairs: Vec::new(),
            clock: crate::clock::Clock::System,
            loads: Default::default(),
            _open: open,
        };
        match store.configure().and_then(|()| store.migrate()) {
            Ok(()) => {
                if setting_up {
                    // The schema is committed: the store is no longer a setup's leftover.
                    setup_mark::remove(home);
                    if let Some(open) = &store._open {
                        open.share();
                    }
                }
                Ok(Opening::Writable(store))
            }
            // A disk with no room left: SQLite cannot even grow its shared-memory file,
            // and every command failed, reading ones too. Read from a copy in memory,
            // as for a read-only home; every write is refused, saying the disk is full.
            Err(e) if !create && disk_full(&e) => {
                let path = store.path.clone();
                drop(store);
                Ok(Opening::CopyNeeded(path, HomeLock::disk_full(home)))
            }
            Err(e) => Err(e),
        }
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

    /// The home this store's database lies in.
    pub(crate) fn home(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
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
}

/// What opening a home found: a store to write, or a home to read from a copy in
/// memory (with the lock that says why every write is refused).
enum Opening {
    Writable(Store),
    CopyNeeded(PathBuf, HomeLock),
}

/// Whether this user can open the database for writing (opening changes nothing).
/// The home's lock for writing, or (`Err`) the lock of a home that can only be read:
/// this user's permissions, or a filesystem mounted read-only (said apart to a write).
fn lock_for(
    home: &Path,
    path: &Path,
    create: bool,
) -> Result<Result<HomeLock, HomeLock>, StoreError> {
    match HomeLock::open(home) {
        Ok(lock) if writable(path) => Ok(Ok(lock)),
        Ok(_) => Ok(Err(HomeLock::read_only(home))),
        Err(LockError::Io { cause, .. })
            if !create && cause.kind() == std::io::ErrorKind::ReadOnlyFilesystem =>
        {
            Ok(Err(HomeLock::mounted_read_only(home)))
        }
        Err(LockError::Io { cause, .. }) if !create && is_read_only(&cause) => {
            Ok(Err(HomeLock::read_only(home)))
        }
        Err(e) => Err(e.into()),
    }
}

fn writable(path: &Path) -> bool {
    std::fs::OpenOptions::new().append(true).open(path).is_ok()
}

/// Whether SQLite failed for want of disk space (said as a full disk, or, when it could
/// not grow its shared-memory file, as an I/O failure).
fn disk_full(e: &StoreError) -> bool {
    let StoreError::Sqlite(e) = e else {
        return false;
    };
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure)
    )
}

fn is_read_only(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    )
}

/// The files of the SQLite database at `db`: itself, then its log and its index of the
/// log (the order a move keeps: see [`crate::device::Device::set_home_aside`]).
pub(crate) fn files_of(db: &Path) -> [PathBuf; 3] {
    ["", "-wal", "-shm"].map(|suffix| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::advice::{Advice, NextStep};

    fn failure(code: i32) -> StoreError {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            None,
        ))
    }

    /// A database another program kept locked for the whole wait (a real SQLite
    /// failure): the command can pass later, and the words say what to do.
    #[test]
    fn a_database_another_program_kept_locked_is_busy_and_says_to_run_again() {
        let dir = tempfile::tempdir().expect("a folder");
        let path = dir.path().join("other.db");
        let holder = Connection::open(&path).expect("open");
        holder
            .execute_batch("CREATE TABLE t (x); BEGIN IMMEDIATE; INSERT INTO t VALUES (1);")
            .expect("hold the write lock");
        let writer = Connection::open(&path).expect("open");
        writer
            .busy_timeout(std::time::Duration::ZERO)
            .expect("no wait");
        let refused = writer
            .execute("INSERT INTO t VALUES (2)", [])
            .expect_err("the database is locked");
        let e = StoreError::from(refused);
        assert!(e.is_busy(), "{e:?}");
        let said = e.to_string();
        assert!(
            said.contains("another program kept this device's data locked")
                && said.contains("run the command again"),
            "{said}"
        );
    }

    #[test]
    fn what_stands_in_place_of_a_missing_store_is_named_not_taken_for_a_new_home() {
        let dir = tempfile::tempdir().expect("a folder");
        let home = dir.path();
        std::fs::write(home.join("duet.db-wal"), b"left behind").expect("a log");
        for create in [false, true] {
            let Err(e) = Store::open(home, create) else {
                panic!("opened over a lone log");
            };
            assert!(e.to_string().contains("write-ahead log"), "{e}");
            assert_eq!(
                crate::advice::Advice::next_step(&e),
                Some(crate::advice::NextStep::RestoreFromBackup)
            );
        }
        std::fs::remove_file(home.join("duet.db-wal")).expect("gone");
        std::fs::create_dir(home.join("duet.db")).expect("a directory");
        let Err(e) = Store::open(home, false) else {
            panic!("opened a directory");
        };
        assert!(e.to_string().contains("a directory"), "{e}");
    }

    #[test]
    fn a_store_file_made_meanwhile_by_another_setup_is_no_failure() {
        let dir = tempfile::tempdir().expect("a folder");
        let path = dir.path().join("duet.db");
        private::create_file(&path).expect("made");
        // The second of two `duet join`s on one fresh home said "File exists".
        private::create_file(&path).expect("made meanwhile is fine");
    }

    #[test]
    fn a_full_disk_and_a_damaged_store_say_what_they_mean_and_what_to_do() {
        let full = failure(rusqlite::ffi::SQLITE_FULL);
        assert!(
            full.to_string()
                .contains("disk that holds this device's data is full")
        );
        assert_eq!(full.next_step(), Some(NextStep::FreeSpace));
        let damaged = failure(rusqlite::ffi::SQLITE_CORRUPT);
        assert!(damaged.to_string().contains("damaged"), "{damaged}");
        assert_eq!(damaged.next_step(), Some(NextStep::RestoreFromBackup));
        let io = failure(rusqlite::ffi::SQLITE_IOERR);
        assert!(io.to_string().contains("probably full or failing"), "{io}");
        assert_eq!(io.next_step(), Some(NextStep::FreeSpace));
        let busy = failure(rusqlite::ffi::SQLITE_BUSY);
        assert!(
            busy.to_string()
                .contains("another program kept this device's data locked"),
            "{busy}"
        );
        assert_eq!(busy.next_step(), None);
        let other = failure(rusqlite::ffi::SQLITE_MISMATCH);
        assert!(other.to_string().starts_with("database error"), "{other}");
    }
}
