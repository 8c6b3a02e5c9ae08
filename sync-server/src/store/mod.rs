//! The relay's storage, behind one set of traits with two backends (the shape atuin
//! uses for its server database): SQLite ([`sqlite`], the default: embedded, one file)
//! and PostgreSQL ([`postgres`], for several relay instances over one database).
//!
//! - [`Reads`]: the reads the writer needs, on a connection or inside its transaction;
//! - [`WriteTxn`]: the writer's group transaction (savepoint per push, fork evidence,
//!   a per-space lock that serializes writers of a space across instances, the
//!   announcement of new cursors to other instances, and the durable commit);
//! - [`Backend`]: the writer's connection, which opens those transactions;
//! - [`Reader`]: the connection that serves pages to readers.
//!
//! Every promise of the relay (durable acknowledgement, idempotence, one order per
//! space, chain and membership checks under concurrency) rests on these: cursors grow
//! within a space in commit order, a space's writers are serialized by
//! [`WriteTxn::lock_spaces`] until commit, and `(space, hash)` and `(space, author,
//! seq)` are unique in the database itself.

mod foreign;
pub use foreign::{created_with_a_token, refuse_foreign};
pub mod migrations;
mod opened_file;
pub mod postgres;
mod private;
pub mod sqlite;

use std::collections::HashMap;

use duet_core::event::{Event, SpaceId};

pub use sqlite::Store;

/// A storage failure. Its details are logged, never sent to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error("PostgreSQL error: {}", postgres_words(.0))]
    Postgres(#[from] ::postgres::Error),
    /// The database was written by a newer relay.
    #[error(
        "the database has schema version {found}, newer than this relay's {supported}; \
         run a newer duet-relay or point --db at another database"
    )]
    TooNew {
        /// The version found in the database.
        found: i64,
        /// The newest version this relay knows.
        supported: i64,
    },
    /// A stored value is out of range (a corrupted or foreign database).
    #[error("the database holds an invalid value: {0}")]
    Corrupt(&'static str),
    /// A PostgreSQL transaction was aborted by an earlier error and cannot commit.
    #[error("the write transaction was aborted by an earlier error; push again")]
    Aborted,
    /// The PostgreSQL database does not answer (a restart, a failover): the request may
    /// be made again in a moment.
    #[error("the database is out of reach: {0}")]
    Unreachable(String),
    /// The writer thread could not be started.
    #[error("cannot start the relay's writer thread: {0}")]
    Thread(std::io::Error),
    /// The database file was deleted or replaced while the relay ran: what it wrote
    /// would go to a file no longer there, and be lost at the next start.
    #[error(
        "the relay's database file {0} was deleted or replaced while the relay ran; nothing \
         more is written until the relay is restarted (it then opens the file at that path)"
    )]
    FileGone(std::path::PathBuf),
    /// The file is another program's SQLite database: it is left as it is.
    #[error(
        "{0} is an SQLite database of another program (it has tables but no relay schema); \
         it was left unchanged: point --db at a new file or at the relay's own database"
    )]
    Foreign(std::path::PathBuf),
}

/// A PostgreSQL error with the server's own message (its `Display` says only "db
/// error" for everything the server refused: a missing database, a wrong password).
fn postgres_words(e: &::postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

impl StoreError {
    /// Whether the database file may not be written (SQLite: read-only, or not opened
    /// for lack of permission).
    pub fn is_not_writable(&self) -> bool {
        use rusqlite::ffi::ErrorCode;
        match self {
            StoreError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied)
            ),
            _ => false,
        }
    }

    /// Whether the database is out of reach for now (PostgreSQL: the connection was lost,
    /// or connecting again failed): answered 503, to be retried.
    pub fn is_unreachable(&self) -> bool {
        match self {
            StoreError::Unreachable(_) => true,
            // The connection closed, the server's goodbye on it (class 57P: an operator's
            // pg_terminate_backend, a shutdown, idle_session_timeout, "cannot connect
            // now" while it starts), or the socket failing under it.
            StoreError::Postgres(e) => {
                e.is_closed()
                    || e.code().is_some_and(|c| c.code().starts_with("57P"))
                    || std::error::Error::source(e)
                        .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some())
            }
            _ => false,
        }
    }

    /// Whether the database refused to grow (SQLITE_FULL: the disk is full, or the file
    /// reached `--max-db-bytes`; PostgreSQL's disk_full).
    pub fn is_full(&self) -> bool {
        match self {
            StoreError::Sqlite(e) => {
                e.sqlite_error_code() == Some(rusqlite::ffi::ErrorCode::DiskFull)
            }
            StoreError::Postgres(e) => e.code() == Some(&::postgres::error::SqlState::DISK_FULL),
            _ => false,
        }
    }

    /// Whether the database says its own file is damaged (SQLite's "malformed" and "not a
    /// database", PostgreSQL's data_corrupted and index_corrupted): restoring a backup
    /// mends it, trying again does not.
    pub fn is_damaged(&self) -> bool {
        use ::postgres::error::SqlState;
        use rusqlite::ffi::ErrorCode;
        match self {
            StoreError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
            ),
            StoreError::Postgres(e) => {
                e.code() == Some(&SqlState::DATA_CORRUPTED)
                    || e.code() == Some(&SqlState::INDEX_CORRUPTED)
            }
            _ => false,
        }
    }
}

/// What the relay tells its operator when the database is damaged.
pub const DAMAGED: &str = "the relay database is damaged: stop the relay and restore the \
     newest backup (docs/self-hosting.md, \"Restoring\"); the devices give back what the \
     backup lacks at their next sync";

/// A page of `(cursor, event bytes)` and whether more events wait after it.
pub type Page = (Vec<(u64, Vec<u8>)>, bool);

/// How much a space stores against its quota: its events and their bytes (fork evidence
/// is kept apart, under bounds of its own: [`crate::writer::ForkLimits`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Stored events.
    pub events: u64,
    /// Their total size in bytes (the event bytes only, not the database's overhead).
    pub bytes: u64,
}

impl Usage {
    /// This usage plus `events` events of `bytes` bytes.
    pub fn plus(self, events: u64, bytes: u64) -> Usage {
        Usage {
            events: self.events.saturating_add(events),
            bytes: self.bytes.saturating_add(bytes),
        }
    }
}

/// The fork evidence already kept, as it bears on one more fork event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForkRoom {
    /// This event is already kept as evidence.
    pub kept: bool,
    /// Evidence rows kept for its author in the space.
    pub device_rows: u64,
    /// Bytes of evidence kept for the whole space.
    pub space_bytes: u64,
}

/// The reads of the relay's storage, on a plain connection or inside the writer's
/// transaction (which also sees the rows it has written but not yet committed).
pub trait Reads {
    /// The stored event of `author` with `seq` in `space`, if any: its cursor and hash.
    /// Every lookup of a stored event goes through the unique (space, author, seq):
    /// an event's hash covers its author and seq.
    fn stored_at(
        &mut self,
        space: &SpaceId,
        author: &[u8; 32],
        seq: u64,
    ) -> Result<Option<(u64, [u8; 32])>, StoreError>;

    /// The cursor of the stored event of `author` with `seq` in `space`, if any.
    fn cursor_at(
        &mut self,
        space: &SpaceId,
        author: &[u8; 32],
        seq: u64,
    ) -> Result<Option<u64>, StoreError> {
        Ok(self.stored_at(space, author, seq)?.map(|(c, _)| c))
    }

    /// The hash of the stored event of `author` with `seq` in `space`, if any.
    fn hash_at(
        &mut self,
        space: &SpaceId,
        author: &[u8; 32],
        seq: u64,
    ) -> Result<Option<[u8; 32]>, StoreError> {
        Ok(self.stored_at(space, author, seq)?.map(|(_, h)| h))
    }

    /// The cursor of `event` in `space`, if this very event is stored there.
    fn stored_cursor(&mut self, space: &SpaceId, event: &Event) -> Result<Option<u64>, StoreError> {
        let h = event.header();
        Ok(self
            .stored_at(space, &h.author, h.seq)?
            .filter(|(_, hash)| *hash == event.hash())
            .map(|(c, _)| c))
    }

    /// The cursors of those of `events` that are stored in `space`, by hash (one query
    /// where a query is a round trip to a server).
    fn cursors_of(
        &mut self,
        space: &SpaceId,
        events: &[&Event],
    ) -> Result<HashMap<[u8; 32], u64>, StoreError> {
        let mut out = HashMap::new();
        for ev in events {
            if let Some(c) = self.stored_cursor(space, ev)? {
                out.insert(ev.hash(), c);
            }
        }
        Ok(out)
    }

    /// The newest cursor of `space` (0 when it has no events).
    fn newest_cursor(&mut self, space: &SpaceId) -> Result<u64, StoreError>;

    /// The hash of the event of `space` stored at `cursor`, if one is.
    fn hash_at_cursor(
        &mut self,
        space: &SpaceId,
        cursor: u64,
    ) -> Result<Option<[u8; 32]>, StoreError>;

    /// What is kept of the fork evidence of `space` that concerns `event`: whether this
    /// very event is kept already, how many rows its author has, and the bytes of the
    /// whole space's evidence.
    fn fork_room(&mut self, space: &SpaceId, event: &Event) -> Result<ForkRoom, StoreError>;

    /// Up to `limit` spaces in which `author` has events (to tell whether a device is
    /// already a member of a space on this relay).
    fn spaces_of_author(
        &mut self,
        author: &[u8; 32],
        limit: u32,
    ) -> Result<Vec<SpaceId>, StoreError>;

    /// Calls `f` with every stored event of `space` after cursor `after`, in cursor order.
    fn for_each_event(
        &mut self,
        space: &SpaceId,
        after: u64,
        f: &mut dyn FnMut(u64, Vec<u8>),
    ) -> Result<(), StoreError>;
}

/// The writer's open transaction: the rows of many pushes, committed (made durable)
/// together by [`WriteTxn::commit`], or rolled back together when dropped.
pub trait WriteTxn: Reads {
    /// Makes every other writer of these spaces (in this process or another relay
    /// instance) wait until this transaction ends. Called once per group, before
    /// anything of these spaces is read, with the spaces in ascending order (so two
    /// instances never wait on each other).
    fn lock_spaces(&mut self, spaces: &[SpaceId]) -> Result<(), StoreError>;

    /// Reads at once what the group's pushes will ask of their `spaces` (locked
    /// already): their newest cursors and which of `hashes` are stored, so that a
    /// backend whose every query is a round trip to a server answers those reads from
    /// memory. Called once per group, right after [`WriteTxn::lock_spaces`].
    fn prefetch(
        &mut self,
        spaces: &[SpaceId],
        hashes: &[(SpaceId, [u8; 32])],
    ) -> Result<(), StoreError> {
        let _ = (spaces, hashes);
        Ok(())
    }

    /// Stores `events` (all of `space`): all of them, or none when the insert fails.
    /// After a failure either the transaction is still open with the rows of earlier
    /// pushes (SQLite, under a savepoint), or [`WriteTxn::is_open`] says it is gone
    /// (PostgreSQL, which aborts the transaction) and the writer handles the group's
    /// other pushes again. Returns their cursors in order.
    fn insert_events(
        &mut self,
        space: &SpaceId,
        events: &[&Event],
        received_at: i64,
    ) -> Result<Vec<u64>, StoreError>;

    /// Records `event` as evidence that its author forked their chain at its seq, where
    /// `existing_hash` is already stored. Returns whether a new row was written.
    fn insert_fork(
        &mut self,
        event: &Event,
        existing_hash: &[u8; 32],
        received_at: i64,
    ) -> Result<bool, StoreError>;

    /// Counts one more fork attempt by `author` in `space` whose evidence is not kept
    /// (the device's or the space's evidence is full).
    fn count_fork(&mut self, space: &SpaceId, author: &[u8; 32]) -> Result<(), StoreError>;

    /// Spaces created from the client address `address` since `since_ms`.
    fn creations_from(&mut self, address: &str, since_ms: i64) -> Result<u64, StoreError>;

    /// Spaces created with the token named `token` (see [`crate::creation::token_id`]).
    fn creations_with(&mut self, token: &str) -> Result<u64, StoreError>;

    /// Records the creation of `space`, with the address and token id it came with.
    fn record_creation(
        &mut self,
        space: &SpaceId,
        at_ms: i64,
        address: Option<&str>,
        token: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Forgets the addresses of creations made before `before_ms` (the per-address
    /// limit looks back one window only; the creations and their tokens stay counted).
    fn forget_creators_before(&mut self, before_ms: i64) -> Result<(), StoreError>;

    /// The database's size in bytes where the relay caps it (SQLite); `None` elsewhere.
    fn db_bytes(&mut self) -> Result<Option<u64>, StoreError>;

    /// Tells the other relay instances, once this transaction commits, that `space`'s
    /// newest cursor is `cursor` (their live sockets then hear of it). Nothing to do
    /// where one process owns the database.
    fn announce(&mut self, space: &SpaceId, cursor: u64) -> Result<(), StoreError>;

    /// Whether the transaction is still open (SQLite may roll a whole transaction back
    /// by itself after some errors; PostgreSQL aborts it on any error).
    fn is_open(&self) -> bool;

    /// Commits: the rows are durable when this returns `Ok`.
    fn commit(self) -> Result<(), StoreError>;
}

/// The writer's connection.
pub trait Backend: Reads + Send + 'static {
    /// Its group transaction.
    type Txn<'a>: WriteTxn
    where
        Self: 'a;

    /// Starts a group transaction.
    fn begin(&mut self) -> Result<Self::Txn<'_>, StoreError>;
}

/// The connection that serves reads.
pub trait Reader: Reads + Send {
    /// Up to `limit` events of `space` after `after` (stopping once the page holds
    /// `max_bytes`, with at least one event when any wait), the space's newest cursor
    /// and its number of refused fork attempts (evidence kept, and attempts counted
    /// without it), all from one snapshot: the newest cursor is never
    /// below a cursor of the page.
    fn page_and_newest(
        &mut self,
        space: &SpaceId,
        after: u64,
        limit: u32,
        max_bytes: usize,
    ) -> Result<(Page, u64, u64), StoreError>;

    /// Whether the database answers a read (`/healthz`): a read of a space no one has,
    /// which the database's index answers "none".
    fn answers(&mut self) -> Result<(), StoreError> {
        self.newest_cursor(&SpaceId([0; 16])).map(|_| ())
    }
}

/// A commit that moved a space's newest cursor (what the writer announces and the
/// live sockets hear).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The space written.
    pub space: SpaceId,
    /// Its newest cursor after the commit.
    pub cursor: u64,
}

/// Where the relay's database is: a SQLite file, or a PostgreSQL URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite database file.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL connection URL (`postgres://` or `postgresql://`).
    Postgres(String),
}

impl Location {
    /// `postgres://...` and `postgresql://...` are PostgreSQL; anything else is a path.
    pub fn parse(db: &str) -> Location {
        if db.starts_with("postgres://") || db.starts_with("postgresql://") {
            Location::Postgres(db.to_string())
        } else {
            Location::Sqlite(db.into())
        }
    }

    /// For messages: the path, or the URL without its password.
    pub fn display(&self) -> String {
        match self {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Postgres(url) => postgres::redact(url),
        }
    }
}

impl From<&std::path::Path> for Location {
    fn from(p: &std::path::Path) -> Self {
        Location::Sqlite(p.to_path_buf())
    }
}

impl From<&std::path::PathBuf> for Location {
    fn from(p: &std::path::PathBuf) -> Self {
        Location::Sqlite(p.clone())
    }
}

/// Fills a page from `(cursor, bytes)` rows in cursor order (at most `limit + 1` of
/// them): at most `limit` events and `max_bytes` of framed events, but at least one;
/// the flag says whether more wait.
pub(crate) fn fill_page(
    rows: impl IntoIterator<Item = Result<(u64, Vec<u8>), StoreError>>,
    limit: u32,
    max_bytes: usize,
) -> Result<Page, StoreError> {
    let mut out = Vec::new();
    let mut size = 0usize;
    for row in rows {
        let (cursor, bytes) = row?;
        // 12 bytes of framing per event on the wire (cursor and length).
        if out.len() >= limit as usize || (!out.is_empty() && size + bytes.len() + 12 > max_bytes) {
            return Ok((out, true));
        }
        size += bytes.len() + 12;
        out.push((cursor, bytes));
    }
    Ok((out, false))
}

pub(crate) fn to_i64(v: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt(what))
}

pub(crate) fn to_u64(v: i64, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(what))
}

pub(crate) fn to_hash(v: Vec<u8>) -> Result<[u8; 32], StoreError> {
    v.try_into()
        .map_err(|_| StoreError::Corrupt("hash is not 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_selects_postgresql_and_anything_else_is_a_sqlite_path() {
        for url in ["postgres://u@h/db", "postgresql://u:p@h:5432/db"] {
            assert_eq!(Location::parse(url), Location::Postgres(url.to_string()));
        }
        assert_eq!(
            Location::parse("relay.db"),
            Location::Sqlite("relay.db".into())
        );
        assert_eq!(
            Location::parse("postgres.db"),
            Location::Sqlite("postgres.db".into())
        );
    }

    #[test]
    fn a_page_holds_at_most_the_limit_and_the_byte_cap_but_always_one_event() {
        let rows = |n: u64, size: usize| (1..=n).map(move |c| Ok((c, vec![0u8; size])));
        assert_eq!(
            fill_page(rows(3, 10), 2, usize::MAX)
                .map(|(p, m)| (p.len(), m))
                .ok(),
            Some((2, true))
        );
        assert_eq!(
            fill_page(rows(2, 10), 2, usize::MAX)
                .map(|(p, m)| (p.len(), m))
                .ok(),
            Some((2, false))
        );
        // Each event costs its bytes plus 12 of framing: 100 bytes hold one of 60.
        assert_eq!(
            fill_page(rows(3, 60), 10, 100)
                .map(|(p, m)| (p.len(), m))
                .ok(),
            Some((1, true))
        );
        // A single event larger than the cap is still served.
        assert_eq!(
            fill_page(rows(1, 500), 10, 100)
                .map(|(p, m)| (p.len(), m))
                .ok(),
            Some((1, false))
        );
    }
}
