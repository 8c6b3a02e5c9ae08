//! The relay's schema, written once for both backends: entry `i` of [`MIGRATIONS`] moves
//! a database from version `i` to `i + 1`. Column types differ between SQLite and
//! PostgreSQL, so they are placeholders that [`migrations`] fills in for a [`Dialect`].

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 4;

/// Migrations, with `{cursor}` (the ever-growing event cursor), `{rowid}` (a row id),
/// `{int}` (a 64-bit integer) and `{bytes}` (raw bytes) for the dialect's types.
const MIGRATIONS: &[&str] = &[
    // Version 1.
    //
    // `cursor` is never reused and always grows, so it is also strictly increasing within
    // every space (on PostgreSQL, where one sequence serves all spaces, because writers of
    // a space are serialized): a space's cursors are an increasing (gapped) sequence,
    // which is all a reader needs to resume after the last cursor it saw. Hashes and keys
    // are raw bytes; `space` is its 32-char hex form.
    "CREATE TABLE events (
        cursor      {cursor},
        space       TEXT    NOT NULL,
        hash        {bytes} NOT NULL,
        author      {bytes} NOT NULL,
        seq         {int}   NOT NULL,
        kind        TEXT    NOT NULL,
        bytes       {bytes} NOT NULL,
        received_at {int}   NOT NULL,
        UNIQUE (space, hash),
        UNIQUE (space, author, seq)
    );
    CREATE INDEX events_space_cursor ON events (space, cursor);
    -- Evidence of equivocation: an event whose author already has another event stored
    -- with the same seq. `existing_hash` names the stored one; `bytes` is the signed
    -- conflicting event. Never served to readers.
    CREATE TABLE forks (
        id            {rowid},
        space         TEXT    NOT NULL,
        author        {bytes} NOT NULL,
        seq           {int}   NOT NULL,
        existing_hash {bytes} NOT NULL,
        hash          {bytes} NOT NULL,
        bytes         {bytes} NOT NULL,
        received_at   {int}   NOT NULL,
        UNIQUE (space, hash)
    );",
    // Version 2: fork evidence is bounded per device and per space; attempts past the
    // bound are only counted here (one row per device), so a member's fork spam takes
    // no room that grows.
    "CREATE TABLE fork_counts (
        space   TEXT    NOT NULL,
        author  {bytes} NOT NULL,
        refused {int}   NOT NULL,
        PRIMARY KEY (space, author)
    );
    CREATE INDEX forks_space_author ON forks (space, author);",
    // Version 3: who created each space (client address, and a digest of the creation
    // token), for the per-address and per-token creation limits; events by author, to
    // tell whether a device is already a member somewhere on this relay.
    "CREATE TABLE creations (
        space      TEXT    PRIMARY KEY,
        created_at {int}   NOT NULL,
        address    TEXT,
        token      TEXT
    );
    CREATE INDEX creations_address ON creations (address, created_at);
    CREATE INDEX creations_token ON creations (token);
    CREATE INDEX events_author ON events (author, space);",
    // Version 4: fewer index entries per event, since each one a push writes lands in a
    // different leaf (the relay's writes are mostly such pages). The spaces a device is
    // in are those where it wrote its seq 1, so the index by author holds only those
    // rows. On SQLite, stored events are found by (space, author, seq) alone: an event's
    // hash covers its author and seq, so the unique index on (space, hash) says nothing
    // more, and the table is rebuilt without it (copying the events and keeping the
    // cursor sequence where it was). PostgreSQL keeps it: its writer prefetches the
    // stored hashes of a whole group in one query.
    "{version_4}",
];

/// Version 4 on SQLite: the events table rebuilt without `UNIQUE (space, hash)`.
const VERSION_4_SQLITE: &str = "CREATE TABLE events_v4 (
        cursor      INTEGER PRIMARY KEY AUTOINCREMENT,
        space       TEXT    NOT NULL,
        hash        BLOB    NOT NULL,
        author      BLOB    NOT NULL,
        seq         INTEGER NOT NULL,
        kind        TEXT    NOT NULL,
        bytes       BLOB    NOT NULL,
        received_at INTEGER NOT NULL,
        UNIQUE (space, author, seq)
    );
    INSERT INTO events_v4 (cursor, space, hash, author, seq, kind, bytes, received_at)
        SELECT cursor, space, hash, author, seq, kind, bytes, received_at
        FROM events ORDER BY cursor;
    DELETE FROM sqlite_sequence WHERE name = 'events_v4';
    INSERT INTO sqlite_sequence (name, seq)
        SELECT 'events_v4', seq FROM sqlite_sequence WHERE name = 'events';
    DROP TABLE events;
    ALTER TABLE events_v4 RENAME TO events;
    CREATE INDEX events_space_cursor ON events (space, cursor);
    CREATE INDEX events_first_by_author ON events (author, space) WHERE seq = 1;";

/// Version 4 on PostgreSQL: only the index by author changes.
const VERSION_4_POSTGRES: &str = "DROP INDEX events_author;
    CREATE INDEX events_first_by_author ON events (author, space) WHERE seq = 1;";

/// The SQL dialect of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The migrations from `version` on, in the dialect's SQL.
pub fn migrations(dialect: Dialect, version: usize) -> Vec<String> {
    let types: [(&str, &str); 5] = match dialect {
        Dialect::Sqlite => [
            ("{version_4}", VERSION_4_SQLITE),
            ("{cursor}", "INTEGER PRIMARY KEY AUTOINCREMENT"),
            ("{rowid}", "INTEGER PRIMARY KEY"),
            ("{int}", "INTEGER"),
            ("{bytes}", "BLOB"),
        ],
        Dialect::Postgres => [
            ("{version_4}", VERSION_4_POSTGRES),
            ("{cursor}", "BIGSERIAL PRIMARY KEY"),
            ("{rowid}", "BIGSERIAL PRIMARY KEY"),
            ("{int}", "BIGINT"),
            ("{bytes}", "BYTEA"),
        ],
    };
    MIGRATIONS
        .iter()
        .skip(version)
        .map(|sql| {
            types
                .iter()
                .fold(sql.to_string(), |s, (from, to)| s.replace(from, to))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{Dialect, SCHEMA_VERSION, migrations};

    #[test]
    fn every_placeholder_is_filled_in_both_dialects() {
        for d in [Dialect::Sqlite, Dialect::Postgres] {
            let all = migrations(d, 0);
            assert_eq!(all.len() as i64, SCHEMA_VERSION);
            assert!(all.iter().all(|sql| !sql.contains('{')), "{d:?}");
        }
        assert!(migrations(Dialect::Postgres, 0)[0].contains("cursor      BIGSERIAL"));
        assert_eq!(migrations(Dialect::Sqlite, 4).len(), 0);
    }
}
