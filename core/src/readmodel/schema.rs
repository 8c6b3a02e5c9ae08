//! The read-model tables (created by a store migration) and the small helpers every
//! file here uses to write and read them: cached statements, JSON columns, heads.

use automerge::ChangeHash;
use rusqlite::Connection;

/// The tables (a store migration creates them).
pub(crate) const SCHEMA: &str = r#"
CREATE TABLE rm_state (
    space TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    heads BLOB NOT NULL
);
CREATE TABLE rm_people (
    space TEXT NOT NULL, id TEXT NOT NULL, json TEXT NOT NULL,
    PRIMARY KEY (space, id)
);
CREATE TABLE rm_goals (
    space TEXT NOT NULL, id TEXT NOT NULL, created_at INTEGER NOT NULL, json TEXT NOT NULL,
    PRIMARY KEY (space, id)
);
CREATE TABLE rm_steps (
    space TEXT NOT NULL, goal TEXT NOT NULL, id TEXT NOT NULL, json TEXT NOT NULL,
    PRIMARY KEY (space, goal, id)
);
CREATE TABLE rm_ratings (
    space TEXT NOT NULL, id TEXT NOT NULL, goal TEXT NOT NULL, rater TEXT NOT NULL,
    at INTEGER NOT NULL, level INTEGER NOT NULL, note TEXT,
    PRIMARY KEY (space, id)
);
CREATE TABLE rm_reflections (
    space TEXT NOT NULL, id TEXT NOT NULL, at INTEGER NOT NULL, json TEXT NOT NULL,
    PRIMARY KEY (space, id)
);
CREATE TABLE rm_changes (
    space TEXT NOT NULL, hash BLOB NOT NULL, at INTEGER NOT NULL, deps BLOB NOT NULL,
    pos INTEGER NOT NULL,
    PRIMARY KEY (space, hash)
);
CREATE TABLE rm_history (
    space TEXT NOT NULL, change BLOB NOT NULL, idx INTEGER NOT NULL, pos INTEGER NOT NULL,
    at INTEGER NOT NULL, goal TEXT, json TEXT NOT NULL,
    PRIMARY KEY (space, change, idx)
);
CREATE INDEX rm_history_order ON rm_history (space, pos, idx, at);
CREATE TABLE rm_problems (
    space TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL, error TEXT NOT NULL,
    PRIMARY KEY (space, collection, id)
);
"#;

/// The tables of the rituals (a later store migration): ratings as whole JSON (they
/// gained rounds, reveals and corrections), sealed ratings and check-in rounds.
pub(crate) const RITUALS_SCHEMA: &str = r#"
ALTER TABLE rm_ratings ADD COLUMN json TEXT;
CREATE TABLE rm_seals (
    space TEXT NOT NULL, id TEXT NOT NULL, at INTEGER NOT NULL, json TEXT NOT NULL,
    PRIMARY KEY (space, id)
);
CREATE TABLE rm_rounds (
    space TEXT NOT NULL, id TEXT NOT NULL, json TEXT NOT NULL,
    PRIMARY KEY (space, id)
);
"#;

/// What every write reads, indexed (a later store migration), so that a write costs the
/// same whatever the history's length: the blind rules' ratings (a rating's round, and
/// whether it reveals, corrects or withdraws another: `ritual`; filled by a rebuild,
/// [`super::VERSION`] 5), and the history's last position.
pub(crate) const WRITE_PATH_SCHEMA: &str = r#"
ALTER TABLE rm_ratings ADD COLUMN round TEXT;
ALTER TABLE rm_ratings ADD COLUMN ritual INTEGER NOT NULL DEFAULT 0;
CREATE INDEX rm_ratings_round ON rm_ratings (space, round) WHERE round IS NOT NULL;
CREATE INDEX rm_ratings_ritual ON rm_ratings (space) WHERE ritual = 1;
CREATE INDEX rm_ratings_own ON rm_ratings (space, goal, rater);
CREATE INDEX rm_changes_pos ON rm_changes (space, pos);
"#;

/// Runs one statement through the connection's statement cache (refreshes run the same
/// few statements many times).
pub(super) fn exec(
    conn: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
) -> Result<usize, rusqlite::Error> {
    conn.prepare_cached(sql)?.execute(p)
}

pub(super) fn json<T: serde::Serialize>(v: &T) -> Result<String, rusqlite::Error> {
    serde_json::to_string(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

pub(super) fn parse<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, rusqlite::Error> {
    serde_json::from_str(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(super) fn encode_heads(heads: &[ChangeHash]) -> Vec<u8> {
    heads.iter().flat_map(|h| h.0).collect()
}

pub(super) fn decode_heads(bytes: &[u8]) -> Option<Vec<ChangeHash>> {
    if !bytes.len().is_multiple_of(32) {
        return None;
    }
    bytes
        .chunks(32)
        .map(|c| c.try_into().ok().map(ChangeHash))
        .collect()
}
