//! Whether another connection has a store open: asked before its files are deleted or
//! moved (a join in place of a device that joined nothing, starting over). SQLite removes
//! a database's log by its name when its last connection closes, so a `duet sync
//! --watch` or `duet app` left running on the old store would, on closing, remove the log
//! of the store made in its place.
//!
//! In WAL mode every open connection holds a shared lock on the database file for as
//! long as it is open; a connection in exclusive locking mode cannot take its exclusive
//! lock while any other (of this process or another) holds one.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

/// Whether any connection but none of the caller's (closed first) has the database at
/// `db` open. A database that is missing or cannot be opened is in no one's use here.
pub fn in_use(db: &Path) -> bool {
    if !db.is_file() {
        return false;
    }
    let Ok(conn) = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE) else {
        return false;
    };
    let probe = || -> rusqlite::Result<()> {
        conn.busy_timeout(std::time::Duration::ZERO)?;
        let _: String = conn.query_row("PRAGMA locking_mode = EXCLUSIVE", [], |r| r.get(0))?;
        conn.execute_batch("BEGIN EXCLUSIVE; COMMIT;")
    };
    matches!(
        probe(),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::DatabaseBusy
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_open_connection_is_seen_and_a_closed_one_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("duet.db");
        let other = Connection::open(&db).expect("open");
        let _: String = other
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .expect("wal");
        other.execute_batch("CREATE TABLE t (x)").expect("table");
        assert!(in_use(&db));
        drop(other);
        assert!(!in_use(&db));
        assert!(!in_use(&dir.path().join("missing.db")));
    }
}
