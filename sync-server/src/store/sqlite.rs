//! The relay's SQLite backend: every accepted event verbatim, with its cursor, and the
//! evidence of forks (an author signing two different events with the same seq): a few
//! conflicting events kept per device, and a count of the attempts beyond them.
//!
//! The database runs in WAL mode with `synchronous=FULL`, so a committed transaction is
//! on disk before the relay answers. The schema is versioned with `PRAGMA user_version`
//! and migrated forward on open. One relay process should own a database file (SQLite
//! has no way to tell other processes about commits; several relay instances need the
//! PostgreSQL backend).
//!
//! A [`Txn`] is one durable transaction shared by many pushes (group commit, see
//! [`crate::writer`]); each push's rows go in under their own savepoint, so one push's
//! failure leaves the others'. `BEGIN IMMEDIATE` already excludes every other writer,
//! so [`WriteTxn::lock_spaces`] has nothing to do.

use std::path::Path;
use std::time::Duration;

use duet_core::event::{Event, SpaceId};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{
    Backend, ForkRoom, Page, Reader, Reads, StoreError, WriteTxn, fill_page, to_hash, to_i64,
    to_u64,
};

pub use super::migrations::SCHEMA_VERSION;

/// How long a connection waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs SQLite's `quick_check` over the database at `path` on a read-only connection of
/// its own (it reads the whole file, so the relay runs it beside serving): the problems
/// found, at most ten, or none for a sound file.
pub fn quick_check(path: &Path) -> Result<Vec<String>, StoreError> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mut stmt = conn.prepare("PRAGMA quick_check(10)")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let found = rows.collect::<Result<Vec<_>, _>>()?;
    Ok(found.into_iter().filter(|r| r != "ok").collect())
}

/// One connection to the relay database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    /// The file opened (none for a database that is no plain file): checked before each
    /// write transaction and each health check.
    file: Option<super::opened_file::OpenedFile>,
}

impl Store {
    /// Opens (creating if needed, readable by its owner only) the database at `path`
    /// and migrates it.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        super::foreign::refuse_foreign(path)?;
        super::private::create_private(path);
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // journal_mode returns the resulting mode as a row.
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let file = super::opened_file::OpenedFile::at(path);
        let mut store = Store { conn, file };
        store.migrate()?;
        Ok(store)
    }

    /// Caps the database file at about `bytes` (rounded down to whole pages) with
    /// `PRAGMA max_page_count`: SQLite then answers SQLITE_FULL to a write that would grow
    /// the file beyond it. A cap below the current size keeps the current size.
    /// Returns the cap in pages.
    pub fn set_max_bytes(&self, bytes: u64) -> Result<u64, StoreError> {
        let page_size: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let page_size = to_u64(page_size, "page_size")?.max(1);
        let pages = i64::try_from((bytes / page_size).max(1)).unwrap_or(i64::MAX);
        let set: i64 =
            self.conn
                .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
                    r.get(0)
                })?;
        to_u64(set, "max_page_count")
    }

    /// The database's size: its pages times their size.
    pub fn size_bytes(&self) -> Result<u64, StoreError> {
        let pages: i64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let size: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok(to_u64(pages, "page_count")?.saturating_mul(to_u64(size, "page_size")?))
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        let start = usize::try_from(version).map_err(|_| StoreError::Corrupt("user_version"))?;
        for sql in super::migrations::migrations(super::migrations::Dialect::Sqlite, start) {
            tx.execute_batch(&sql)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        Ok(())
    }

    /// Stores `events` (all of `space`) in one durable transaction; returns their cursors
    /// in order and the space's newest cursor. Nothing is stored if any insert fails.
    pub fn insert_events(
        &mut self,
        space: &SpaceId,
        events: &[&Event],
        received_at: i64,
    ) -> Result<(Vec<u64>, u64), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let cursors = insert_rows(&tx, space, events, received_at)?;
        let newest = newest_in(&tx, space)?;
        tx.commit()?;
        Ok((cursors, newest))
    }

    /// Starts the writer's group transaction (`BEGIN IMMEDIATE`), once the database
    /// file is still the one opened (a file deleted or replaced under a running relay
    /// would take writes that no start ever reads).
    pub fn begin(&mut self) -> Result<Txn<'_>, StoreError> {
        self.file.as_ref().map_or(Ok(()), |f| f.still_there())?;
        Ok(Txn {
            tx: self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?,
        })
    }

    /// Up to `limit` events of `space` after `after`, in cursor order, stopping once the
    /// page holds `max_bytes` of events (it always holds at least one when any wait).
    /// The flag says whether more events wait after the page.
    pub fn page(
        &self,
        space: &SpaceId,
        after: u64,
        limit: u32,
        max_bytes: usize,
    ) -> Result<Page, StoreError> {
        page_in(&self.conn, space, after, limit, max_bytes)
    }

    /// [`Store::page`], the space's newest cursor and its number of refused fork
    /// attempts, read from one snapshot: the newest cursor is never below a cursor of
    /// the page.
    pub fn page_and_newest(
        &mut self,
        space: &SpaceId,
        after: u64,
        limit: u32,
        max_bytes: usize,
    ) -> Result<(Page, u64, u64), StoreError> {
        let tx = self.conn.transaction()?;
        let page = page_in(&tx, space, after, limit, max_bytes)?;
        let newest = newest_in(&tx, space)?;
        let forks = fork_attempts_in(&tx, space)?;
        tx.commit()?;
        Ok((page, newest, forks))
    }
}

/// The reads, on any connection or transaction. SQLite keeps no index by hash (schema 4):
/// see [`Reads::stored_at`].
fn stored_at_in(
    conn: &Connection,
    space: &SpaceId,
    author: &[u8; 32],
    seq: u64,
) -> Result<Option<(u64, [u8; 32])>, StoreError> {
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT cursor, hash FROM events WHERE space = ?1 AND author = ?2 AND seq = ?3",
        )?
        .query_row(
            params![space.to_string(), &author[..], to_i64(seq, "seq")?],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    row.map(|(c, h)| Ok((to_u64(c, "cursor")?, to_hash(h)?)))
        .transpose()
}

fn fork_room_in(conn: &Connection, space: &SpaceId, event: &Event) -> Result<ForkRoom, StoreError> {
    let space = space.to_string();
    let kept: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM forks WHERE space = ?1 AND hash = ?2")?
        .query_row(params![space, &event.hash()[..]], |r| r.get(0))?;
    let rows: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM forks WHERE space = ?1 AND author = ?2")?
        .query_row(params![space, &event.header().author[..]], |r| r.get(0))?;
    let bytes: i64 = conn
        .prepare_cached("SELECT COALESCE(SUM(LENGTH(bytes)), 0) FROM forks WHERE space = ?1")?
        .query_row(params![space], |r| r.get(0))?;
    Ok(ForkRoom {
        kept: kept > 0,
        device_rows: to_u64(rows, "fork count")?,
        space_bytes: to_u64(bytes, "fork bytes")?,
    })
}

/// Fork attempts refused in `space`: evidence kept plus attempts only counted.
fn fork_attempts_in(conn: &Connection, space: &SpaceId) -> Result<u64, StoreError> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT (SELECT COUNT(*) FROM forks WHERE space = ?1)
                  + (SELECT COALESCE(SUM(refused), 0) FROM fork_counts WHERE space = ?1)",
        )?
        .query_row(params![space.to_string()], |r| r.get(0))?;
    to_u64(n, "fork count")
}

fn for_each_event_in(
    conn: &Connection,
    space: &SpaceId,
    after: u64,
    f: &mut dyn FnMut(u64, Vec<u8>),
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT cursor, bytes FROM events WHERE space = ?1 AND cursor > ?2 ORDER BY cursor",
    )?;
    let mut rows = stmt.query(params![
        space.to_string(),
        i64::try_from(after).unwrap_or(i64::MAX)
    ])?;
    while let Some(row) = rows.next()? {
        f(to_u64(row.get(0)?, "cursor")?, row.get(1)?);
    }
    Ok(())
}

/// [`Reads`] for anything that derefs to a connection.
macro_rules! reads_over_connection {
    ($ty:ty, $conn:ident => $get:expr) => {
        impl Reads for $ty {
            fn stored_at(
                &mut self,
                space: &SpaceId,
                author: &[u8; 32],
                seq: u64,
            ) -> Result<Option<(u64, [u8; 32])>, StoreError> {
                let $conn = &*self;
                stored_at_in($get, space, author, seq)
            }

            fn newest_cursor(&mut self, space: &SpaceId) -> Result<u64, StoreError> {
                let $conn = &*self;
                newest_in($get, space)
            }

            fn hash_at_cursor(
                &mut self,
                space: &SpaceId,
                cursor: u64,
            ) -> Result<Option<[u8; 32]>, StoreError> {
                let $conn = &*self;
                hash_at_cursor_in($get, space, cursor)
            }

            fn fork_room(
                &mut self,
                space: &SpaceId,
                event: &Event,
            ) -> Result<ForkRoom, StoreError> {
                let $conn = &*self;
                fork_room_in($get, space, event)
            }

            fn for_each_event(
                &mut self,
                space: &SpaceId,
                after: u64,
                f: &mut dyn FnMut(u64, Vec<u8>),
            ) -> Result<(), StoreError> {
                let $conn = &*self;
                for_each_event_in($get, space, after, f)
            }

            fn spaces_of_author(
                &mut self,
                author: &[u8; 32],
                limit: u32,
            ) -> Result<Vec<SpaceId>, StoreError> {
                let $conn = &*self;
                spaces_of_author_in($get, author, limit)
            }
        }
    };
}

reads_over_connection!(Store, s => &s.conn);
reads_over_connection!(Txn<'_>, t => &t.tx);

impl Store {
    /// The newest cursor of `space` (0 when it has no events).
    pub fn newest_cursor(&self, space: &SpaceId) -> Result<u64, StoreError> {
        newest_in(&self.conn, space)
    }

    /// The underlying connection (tests and tools).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

impl Backend for Store {
    type Txn<'a> = Txn<'a>;

    fn begin(&mut self) -> Result<Txn<'_>, StoreError> {
        Store::begin(self)
    }
}

impl Reader for Store {
    fn page_and_newest(
        &mut self,
        space: &SpaceId,
        after: u64,
        limit: u32,
        max_bytes: usize,
    ) -> Result<(Page, u64, u64), StoreError> {
        Store::page_and_newest(self, space, after, limit, max_bytes)
    }

    /// As every reader, once the file at `--db` is still the one opened (moved or
    /// deleted, it still answers reads through the open file).
    fn answers(&mut self) -> Result<(), StoreError> {
        self.file.as_ref().map_or(Ok(()), |f| f.still_there())?;
        self.newest_cursor(&SpaceId([0; 16])).map(|_| ())
    }
}

/// The writer's open transaction: the rows of many pushes, committed (made durable)
/// together by [`WriteTxn::commit`], or rolled back together when dropped.
#[derive(Debug)]
pub struct Txn<'a> {
    tx: rusqlite::Transaction<'a>,
}

impl WriteTxn for Txn<'_> {
    fn lock_spaces(&mut self, _spaces: &[SpaceId]) -> Result<(), StoreError> {
        // BEGIN IMMEDIATE holds SQLite's write lock already.
        Ok(())
    }

    fn insert_events(
        &mut self,
        space: &SpaceId,
        events: &[&Event],
        received_at: i64,
    ) -> Result<Vec<u64>, StoreError> {
        // A savepoint per push, through cached statements (parsing them anew for every
        // push cost about 6% of the writer's time).
        let run = |sql: &str| -> Result<(), StoreError> {
            self.tx.prepare_cached(sql)?.execute([])?;
            Ok(())
        };
        run("SAVEPOINT push")?;
        match insert_rows(&self.tx, space, events, received_at) {
            Ok(cursors) => {
                run("RELEASE push")?;
                Ok(cursors)
            }
            Err(e) => {
                // The push's rows go; the error that matters is the insert's.
                let _ = run("ROLLBACK TO push").and_then(|()| run("RELEASE push"));
                Err(e)
            }
        }
    }

    fn insert_fork(
        &mut self,
        event: &Event,
        existing_hash: &[u8; 32],
        received_at: i64,
    ) -> Result<bool, StoreError> {
        insert_fork_in(&self.tx, event, existing_hash, received_at)
    }

    fn count_fork(&mut self, space: &SpaceId, author: &[u8; 32]) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT INTO fork_counts (space, author, refused) VALUES (?1, ?2, 1)
                 ON CONFLICT (space, author) DO UPDATE SET refused = refused + 1",
            )?
            .execute(params![space.to_string(), &author[..]])?;
        Ok(())
    }

    fn creations_from(&mut self, address: &str, since_ms: i64) -> Result<u64, StoreError> {
        let n: i64 = self.tx.query_row(
            "SELECT COUNT(*) FROM creations WHERE address = ?1 AND created_at >= ?2",
            params![address, since_ms],
            |r| r.get(0),
        )?;
        to_u64(n, "creation count")
    }

    fn creations_with(&mut self, token: &str) -> Result<u64, StoreError> {
        let n: i64 = self.tx.query_row(
            "SELECT COUNT(*) FROM creations WHERE token = ?1",
            params![token],
            |r| r.get(0),
        )?;
        to_u64(n, "creation count")
    }

    fn record_creation(
        &mut self,
        space: &SpaceId,
        at_ms: i64,
        address: Option<&str>,
        token: Option<&str>,
    ) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT OR IGNORE INTO creations (space, created_at, address, token)
             VALUES (?1, ?2, ?3, ?4)",
            params![space.to_string(), at_ms, address, token],
        )?;
        Ok(())
    }

    fn forget_creators_before(&mut self, before_ms: i64) -> Result<(), StoreError> {
        self.tx.execute(
            "UPDATE creations SET address = NULL WHERE address IS NOT NULL AND created_at < ?1",
            params![before_ms],
        )?;
        Ok(())
    }

    fn db_bytes(&mut self) -> Result<Option<u64>, StoreError> {
        let pages: i64 = self.tx.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let size: i64 = self.tx.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok(Some(
            to_u64(pages, "page_count")?.saturating_mul(to_u64(size, "page_size")?),
        ))
    }

    fn announce(&mut self, _space: &SpaceId, _cursor: u64) -> Result<(), StoreError> {
        // One process owns a SQLite database: the writer tells its own live sockets.
        Ok(())
    }

    fn is_open(&self) -> bool {
        !self.tx.is_autocommit()
    }

    /// With `synchronous=FULL`, the rows are on disk when this returns `Ok`.
    fn commit(self) -> Result<(), StoreError> {
        self.tx.commit()?;
        Ok(())
    }
}

fn insert_rows(
    conn: &Connection,
    space: &SpaceId,
    events: &[&Event],
    received_at: i64,
) -> Result<Vec<u64>, StoreError> {
    let mut cursors = Vec::with_capacity(events.len());
    let mut stmt = conn.prepare_cached(
        "INSERT INTO events (space, hash, author, seq, kind, bytes, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let space_hex = space.to_string();
    for ev in events {
        let h = ev.header();
        stmt.execute(params![
            space_hex,
            &ev.hash()[..],
            &h.author[..],
            to_i64(h.seq, "seq")?,
            h.kind.as_str(),
            ev.bytes(),
            received_at,
        ])?;
        cursors.push(to_u64(conn.last_insert_rowid(), "cursor")?);
    }
    Ok(cursors)
}

fn insert_fork_in(
    conn: &Connection,
    event: &Event,
    existing_hash: &[u8; 32],
    received_at: i64,
) -> Result<bool, StoreError> {
    let h = event.header();
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO forks (space, author, seq, existing_hash, hash, bytes, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            h.space.to_string(),
            &h.author[..],
            to_i64(h.seq, "seq")?,
            &existing_hash[..],
            &event.hash()[..],
            event.bytes(),
            received_at,
        ])?;
    Ok(n > 0)
}

fn spaces_of_author_in(
    conn: &Connection,
    author: &[u8; 32],
    limit: u32,
) -> Result<Vec<SpaceId>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT space FROM events WHERE author = ?1 AND seq = 1 LIMIT ?2")?;
    let rows = stmt.query_map(params![&author[..], limit], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(SpaceId::parse(&row?).ok_or(StoreError::Corrupt("space id"))?);
    }
    Ok(out)
}

fn newest_in(conn: &Connection, space: &SpaceId) -> Result<u64, StoreError> {
    let c: Option<i64> = conn
        .prepare_cached("SELECT MAX(cursor) FROM events WHERE space = ?1")?
        .query_row(params![space.to_string()], |r| r.get(0))?;
    to_u64(c.unwrap_or(0), "cursor")
}

fn hash_at_cursor_in(
    conn: &Connection,
    space: &SpaceId,
    cursor: u64,
) -> Result<Option<[u8; 32]>, StoreError> {
    conn.prepare_cached("SELECT hash FROM events WHERE cursor = ?1 AND space = ?2")?
        .query_row(params![to_i64(cursor, "cursor")?, space.to_string()], |r| {
            r.get::<_, Vec<u8>>(0)
        })
        .optional()?
        .map(to_hash)
        .transpose()
}

fn page_in(
    conn: &Connection,
    space: &SpaceId,
    after: u64,
    limit: u32,
    max_bytes: usize,
) -> Result<Page, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT cursor, bytes FROM events WHERE space = ?1 AND cursor > ?2
         ORDER BY cursor LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        params![
            space.to_string(),
            // Cursors never exceed i64::MAX, so a larger `after` means "after everything".
            i64::try_from(after).unwrap_or(i64::MAX),
            i64::from(limit) + 1
        ],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
    )?;
    fill_page(
        rows.map(|r| {
            let (cursor, bytes) = r?;
            Ok((to_u64(cursor, "cursor")?, bytes))
        }),
        limit,
        max_bytes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet_core::event::{Header, Kind};
    use duet_core::identity::Identity;

    fn events(n: u64, payload: usize) -> (SpaceId, Vec<Event>) {
        let id = Identity::generate("A");
        let key = duet_core::crypto::SpaceKey::generate();
        let space = SpaceId::generate();
        let mut prev = [0u8; 32];
        let mut out = Vec::new();
        for seq in 1..=n {
            let h = Header {
                kind: Kind::Changes,
                space,
                author: id.device_key(),
                seq,
                prev,
                time: 0,
            };
            let ev = Event::changes(h, &vec![0u8; payload], &key, &id);
            prev = ev.hash();
            out.push(ev);
        }
        (space, out)
    }

    #[test]
    fn the_database_and_its_journal_files_are_private_to_their_owner() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|_| StoreError::Corrupt("tempdir"))?;
        let path = dir.path().join("relay.db");
        let mut store = Store::open(&path)?;
        let (space, evs) = events(1, 10);
        store.insert_events(&space, &[&evs[0]], 1)?;
        #[cfg(unix)]
        assert_private(dir.path())?;
        Ok(())
    }

    #[test]
    #[cfg(unix)]
    fn a_database_restored_readable_by_others_is_made_private_again() -> Result<(), StoreError> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().map_err(|_| StoreError::Corrupt("tempdir"))?;
        let path = dir.path().join("relay.db");
        drop(Store::open(&path)?);
        // Copied back from a backup with the usual umask.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .map_err(|_| StoreError::Corrupt("chmod"))?;
        let mut store = Store::open(&path)?;
        let (space, evs) = events(1, 10);
        store.insert_events(&space, &[&evs[0]], 1)?;
        assert_private(dir.path())
    }

    /// Asserts that `relay.db` in `dir`, its `-wal` and its `-shm` are 0600.
    #[cfg(unix)]
    fn assert_private(dir: &Path) -> Result<(), StoreError> {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm"] {
            let file = dir.join(format!("relay.db{suffix}"));
            let mode = std::fs::metadata(&file)
                .map_err(|_| StoreError::Corrupt("no such file"))?
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
        Ok(())
    }

    #[test]
    fn creators_addresses_are_forgotten_after_the_window_and_tokens_still_count()
    -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|_| StoreError::Corrupt("tempdir"))?;
        let mut store = Store::open(&dir.path().join("t.db"))?;
        let mut txn = store.begin()?;
        txn.record_creation(&SpaceId::generate(), 1_000, Some("192.0.2.7"), Some("t1"))?;
        txn.record_creation(&SpaceId::generate(), 5_000, Some("192.0.2.7"), Some("t1"))?;
        txn.forget_creators_before(2_000)?;
        assert_eq!(txn.creations_from("192.0.2.7", 0)?, 1);
        assert_eq!(txn.creations_with("t1")?, 2);
        Ok(())
    }

    #[test]
    fn pages_stop_at_the_limit_or_the_byte_cap_and_say_when_more_wait() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|_| StoreError::Corrupt("tempdir"))?;
        let mut store = Store::open(&dir.path().join("t.db"))?;
        let (space, evs) = events(5, 100);
        let refs: Vec<&Event> = evs.iter().collect();
        let (cursors, newest) = store.insert_events(&space, &refs, 1)?;
        assert_eq!(newest, cursors[4]);
        assert_eq!(store.newest_cursor(&space)?, newest);
        assert_eq!(store.newest_cursor(&SpaceId::generate())?, 0);

        let (page, more) = store.page(&space, 0, 2, usize::MAX)?;
        assert_eq!((page.len(), more), (2, true));
        let (page, more) = store.page(&space, cursors[2], 2, usize::MAX)?;
        assert_eq!((page.len(), more), (2, false));
        let (page, more) = store.page(&space, 0, 1000, usize::MAX)?;
        assert_eq!((page.len(), more), (5, false));
        // Each entry is 12 bytes of framing plus the event.
        let one = evs[0].bytes().len() + 12;
        let (page, more) = store.page(&space, 0, 1000, 2 * one + 1)?;
        assert_eq!((page.len(), more), (2, true));
        // An event larger than the cap is still served, alone.
        let (page, more) = store.page(&space, 0, 1000, 1)?;
        assert_eq!((page.len(), more), (1, true));
        let (page, more) = store.page(&space, u64::MAX, 1000, 1)?;
        assert_eq!((page.len(), more), (0, false));
        Ok(())
    }

    #[test]
    fn a_capped_database_answers_sqlite_full_and_keeps_what_it_had() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|_| StoreError::Corrupt("tempdir"))?;
        let mut store = Store::open(&dir.path().join("t.db"))?;
        let pages = store.set_max_bytes(96 * 1024)?;
        assert_eq!(pages, 24);
        let (space, evs) = events(3, 50_000);
        store
            .insert_events(&space, &[&evs[0]], 1)
            .err()
            .map_or_else(
                || panic!("a 50 KB event should not fit in 96 KiB next to the schema"),
                |e| assert!(e.is_full(), "{e}"),
            );
        let (small_space, small) = events(1, 10);
        store.insert_events(&small_space, &[&small[0]], 1)?;
        let refs: Vec<&Event> = evs.iter().collect();
        let e = store.insert_events(&space, &refs, 1).err();
        assert!(e.is_some_and(|e| e.is_full()));
        // Rolled back: no transaction left open, nothing of the batch stored.
        assert!(store.conn.is_autocommit());
        assert_eq!(store.newest_cursor(&space)?, 0);
        assert_eq!(store.newest_cursor(&small_space)?, 1);
        let ok: String = store
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        assert_eq!(ok, "ok");
        // Not every error is "full".
        assert!(!StoreError::Corrupt("x").is_full());
        Ok(())
    }

    #[test]
    fn a_failed_insert_in_a_group_transaction_leaves_the_earlier_rows() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|_| StoreError::Corrupt("tempdir"))?;
        let mut store = Store::open(&dir.path().join("t.db"))?;
        let (space, evs) = events(3, 10);
        let mut txn = store.begin()?;
        assert_eq!(txn.insert_events(&space, &[&evs[0]], 1)?, [1]);
        // The second row of this batch repeats a stored event: the batch is undone whole.
        let e = txn.insert_events(&space, &[&evs[1], &evs[0]], 1);
        assert!(e.is_err());
        assert!(
            txn.is_open(),
            "a constraint error leaves the transaction open"
        );
        assert_eq!(txn.stored_cursor(&space, &evs[1])?, None);
        assert_eq!(txn.insert_events(&space, &[&evs[1], &evs[2]], 1)?.len(), 2);
        // The undone batch gave back its cursor (AUTOINCREMENT rolls back too).
        assert_eq!(txn.newest_cursor(&space)?, 3);
        txn.commit()?;
        let stored: Vec<u64> = [0, 1, 2]
            .iter()
            .filter_map(|&i| store.stored_cursor(&space, &evs[i]).ok().flatten())
            .collect();
        assert_eq!(stored.len(), 3);
        // An uncommitted transaction leaves nothing.
        let (other, more) = events(1, 10);
        let mut txn = store.begin()?;
        txn.insert_events(&other, &[&more[0]], 1)?;
        drop(txn);
        assert_eq!(store.newest_cursor(&other)?, 0);
        Ok(())
    }

    #[test]
    fn reopening_keeps_events_and_a_newer_schema_is_refused() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|_| StoreError::Corrupt("tempdir"))?;
        let path = dir.path().join("t.db");
        let (space, evs) = events(1, 10);
        let mut store = Store::open(&path)?;
        store.insert_events(&space, &[&evs[0]], 1)?;
        drop(store);
        let mut store = Store::open(&path)?;
        assert_eq!(store.stored_cursor(&space, &evs[0])?, Some(1));
        assert_eq!(
            store.cursor_at(&space, &evs[0].header().author, 1)?,
            Some(1)
        );
        assert_eq!(
            store.hash_at(&space, &evs[0].header().author, 1)?,
            Some(evs[0].hash())
        );
        store
            .conn
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)?;
        drop(store);
        assert!(matches!(Store::open(&path), Err(StoreError::TooNew { .. })));
        Ok(())
    }

    #[test]
    fn a_version_3_database_keeps_its_events_and_cursors_and_loses_the_hash_index()
    -> Result<(), StoreError> {
        use crate::store::migrations::{Dialect, migrations};
        let dir = tempfile::tempdir().map_err(|_| StoreError::Corrupt("tempdir"))?;
        let path = dir.path().join("t.db");
        let (space, evs) = events(3, 10);
        {
            let conn = Connection::open(&path)?;
            for sql in migrations(Dialect::Sqlite, 0).iter().take(3) {
                conn.execute_batch(sql)?;
            }
            conn.pragma_update(None, "user_version", 3)?;
            insert_rows(&conn, &space, &[&evs[0], &evs[1]], 1)?;
        }
        let mut store = Store::open(&path)?;
        assert_eq!(store.stored_cursor(&space, &evs[1])?, Some(2));
        assert_eq!(store.insert_events(&space, &[&evs[2]], 1)?, (vec![3], 3));
        let author = evs[0].header().author;
        let mut txn = store.begin()?;
        assert_eq!(txn.spaces_of_author(&author, 10)?, [space]);
        // A copy of a stored event is refused by the unique (space, author, seq).
        assert!(txn.insert_events(&space, &[&evs[1]], 1).is_err());
        drop(txn);
        let indexes: Vec<String> = {
            let mut stmt = store.conn.prepare(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' \
                 ORDER BY name",
            )?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        assert_eq!(
            indexes,
            [
                "events_first_by_author",
                "events_space_cursor",
                "sqlite_autoindex_events_1"
            ]
        );
        Ok(())
    }
}
