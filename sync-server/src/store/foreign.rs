//! The check that `--db` names the relay's own SQLite database (or a new file), not
//! another program's, before the relay changes anything in it.

use std::path::Path;

use rusqlite::Connection;

use super::StoreError;

/// How long the check waits for another program's write lock.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Refuses an existing SQLite database that another program made (tables, and no
/// schema version of the relay's): the relay once added its tables to it, set its
/// schema version, switched it to WAL and made it owner-only, and served from it.
/// Checked read-only, before anything is changed.
pub(super) fn refuse_foreign(path: &Path) -> Result<(), StoreError> {
    if !path.is_file() {
        return Ok(());
    }
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
        [],
        |r| r.get(0),
    )?;
    if version == 0 && tables > 0 {
        return Err(StoreError::Foreign(path.to_path_buf()));
    }
    Ok(())
}
