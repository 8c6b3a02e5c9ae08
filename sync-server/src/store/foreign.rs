//! The check that `--db` names the relay's own SQLite database (or a new file), not
//! another program's, before the relay changes anything in it.

use std::path::Path;

use rusqlite::Connection;

use super::StoreError;

/// How long the check waits for another program's write lock.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Refuses an existing SQLite database that another program made (tables, but not the
/// relay's `events`, or no schema version of the relay's), and one of a newer relay:
/// the relay once added its tables to another program's database, set its schema
/// version, switched it to WAL and made it owner-only, and served from it. Checked
/// read-only and without a lock file (`immutable`), before anything is changed or made
/// beside it; a database with a write-ahead log beside it is read through the log (a
/// checkpoint cut short, by a full disk as the relay stopped, leaves the main file's
/// first page naming pages only the log holds: read alone, a sound database was called
/// malformed and the relay would not start).
pub fn refuse_foreign(path: &Path) -> Result<(), StoreError> {
    if !path.is_file() {
        return Ok(());
    }
    let conn = open_read_only(path)?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0));
    let tables = count("SELECT count(*) FROM sqlite_master WHERE type = 'table'")?;
    let relays =
        count("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'")?;
    if tables > 0 && (version == 0 || relays == 0) {
        return Err(StoreError::Foreign(path.to_path_buf()));
    }
    if version > super::migrations::SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found: version,
            supported: super::migrations::SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Whether a space of the database at `path` was created with a creation token (a
/// database that ran with `--open-registration` only has none; one older than the
/// record of creations is taken to have some).
pub fn created_with_a_token(path: &Path) -> Result<bool, StoreError> {
    let conn = open_read_only(path)?;
    let recorded: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'creations'",
        [],
        |r| r.get(0),
    )?;
    if recorded == 0 {
        return Ok(true);
    }
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM creations WHERE token IS NOT NULL)",
        [],
        |r| r.get(0),
    )?)
}

/// The database at `path`, read-only and changing nothing beside it: read through its
/// write-ahead log when it has one (see [`refuse_foreign`]), else `immutable`.
fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
        | rusqlite::OpenFlags::SQLITE_OPEN_URI;
    let mut log = path.as_os_str().to_owned();
    log.push("-wal");
    let logged = std::fs::metadata(&log).is_ok_and(|m| m.len() > 0);
    let conn = match logged {
        true => Connection::open_with_flags(path, flags - rusqlite::OpenFlags::SQLITE_OPEN_URI)?,
        false => Connection::open_with_flags(immutable_uri(path), flags)?,
    };
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// `path` as an SQLite URI opened `immutable` (no `-shm` or `-wal` made beside it): the
/// characters a URI's path gives a meaning to are escaped.
fn immutable_uri(path: &Path) -> String {
    let mut escaped = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' | '?' | '#' => escaped.push_str(&format!("%{:02X}", c as u32)),
            c => escaped.push(c),
        }
    }
    format!("file:{escaped}?immutable=1")
}
