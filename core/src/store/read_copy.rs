//! A store read from a copy in memory: a home this user may read but not write, or
//! whose disk has no room left (SQLite cannot even grow its shared-memory file there).
//! Reading works as ever (read models are derived into the copy); every write is
//! refused, saying why.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::{DB_FILE, Store, StoreError, corrupt};
use crate::lock::HomeLock;

impl Store {
    /// Goes on from a copy in memory of this store, as [`Store::open`] does on a disk
    /// with no room left: every write is refused from now on, saying the disk is full.
    pub(super) fn go_on_in_memory(&mut self) -> Result<(), StoreError> {
        let home = self.home();
        let mut copy = Self::open_read_only(&home, self.path.clone(), HomeLock::disk_full(&home))?;
        copy.clock = self.clock;
        *self = copy;
        Ok(())
    }

    /// Opens a home this user may read but not write (a backup copy, another user's
    /// disk): the database is copied into memory through a read-only connection, so
    /// that reading (which may build missing read models) never touches the files.
    /// Every write fails with [`LockError::ReadOnly`].
    pub(super) fn open_read_only(
        home: &Path,
        path: PathBuf,
        lock: HomeLock,
    ) -> Result<Store, StoreError> {
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
                        cause: std::io::Error::new(
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
            lock,
            read_only: true,
            repairs: Vec::new(),
            clock: crate::clock::Clock::System,
            loads: Default::default(),
            _open: None,
        };
        store.migrate()?;
        Ok(store)
    }
}
