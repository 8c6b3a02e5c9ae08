//! The document's tip kept beside the read models (`rm_tip`), and the refresh of the
//! tables by a change built from it: together they let a rating, a seal or a round be
//! written without loading the document ([`crate::doc::Tip`]).
//!
//! Every refresh from a document records its tip with the space's newest change row
//! (the mark), and so does a write on the tip. A tip is used only while that row is
//! still the newest, the tables are at its heads and this device's latest stored change
//! is the one it names; a change stored any other way (a refresh that could not run, a
//! repair) sends the next writer to the document, which records the tip again.

use std::collections::BTreeSet;

use automerge::{ActorId, Change};
use rusqlite::{Connection, OptionalExtension, params};

use super::entity::{Collection, Entity};
use super::history_tables::add_history_placed;
use super::refresh::set_state;
use super::schema::{decode_heads, exec, json, parse};
use super::{VERSION, progress_table, write};
use crate::doc::{New, SpaceDoc, Tip};
use crate::event::SpaceId;
use crate::opwalk::Paths;

/// The table (a store migration creates it), and the index that finds a space's newest
/// change row and this device's newest change without walking the history.
pub(crate) const TIP_SCHEMA: &str = r#"
CREATE TABLE rm_tip (
    space TEXT PRIMARY KEY,
    mark INTEGER NOT NULL,
    json TEXT NOT NULL
);
CREATE INDEX changes_newest ON changes (space, local, id);
"#;

/// The space's newest change row (0 before any): the newest of the partner's and of
/// this device's, each one step down `changes_newest`.
pub(crate) fn newest_row(conn: &Connection, sid: &str) -> Result<i64, rusqlite::Error> {
    conn.prepare_cached(
        "SELECT MAX(COALESCE((SELECT MAX(id) FROM changes WHERE space = ?1 AND local = 0), 0),
                    COALESCE((SELECT MAX(id) FROM changes WHERE space = ?1 AND local = 1), 0))",
    )?
    .query_row(params![sid], |r| r.get(0))
}

fn save(conn: &Connection, sid: &str, tip: &Tip) -> Result<(), rusqlite::Error> {
    let mark = newest_row(conn, sid)?;
    exec(
        conn,
        "INSERT INTO rm_tip (space, mark, json) VALUES (?1, ?2, ?3)
         ON CONFLICT (space) DO UPDATE SET mark = ?2, json = ?3",
        params![sid, mark, json(tip)?],
    )?;
    Ok(())
}

/// Records the tip of `doc`, which holds every change stored for the space.
pub(super) fn record(conn: &Connection, sid: &str, doc: &SpaceDoc) -> Result<(), rusqlite::Error> {
    save(conn, sid, &Tip::of(doc))
}

/// The tip of `space` if a change by `actor` can be built on it now.
pub(crate) fn current_tip(
    conn: &Connection,
    space: &SpaceId,
    actor: &ActorId,
) -> Result<Option<Tip>, rusqlite::Error> {
    let sid = space.to_string();
    let kept: Option<(i64, String)> = conn
        .prepare_cached("SELECT mark, json FROM rm_tip WHERE space = ?1")?
        .query_row(params![sid], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((mark, j)) = kept else {
        return Ok(None);
    };
    // A damaged row is no tip: the write loads the document, whose refresh writes the
    // row again.
    let Ok(tip) = parse::<Tip>(&j) else {
        return Ok(None);
    };
    if mark != newest_row(conn, &sid)? || !tip.is_for(actor) {
        return Ok(None);
    }
    let state: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT version, heads FROM rm_state WHERE space = ?1")?
        .query_row(params![sid], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let tables_at_tip = matches!(state, Some((VERSION, ref h)) if decode_heads(h) == tip.heads());
    if !tables_at_tip || !own_last_matches(conn, &sid, &tip)? {
        return Ok(None);
    }
    Ok(Some(tip))
}

/// Whether this device's latest stored change is the tip's (a sequence number given
/// twice would make every partner refuse the second change).
fn own_last_matches(conn: &Connection, sid: &str, tip: &Tip) -> Result<bool, rusqlite::Error> {
    let latest: Option<Vec<u8>> = conn
        .prepare_cached(
            "SELECT bytes FROM changes WHERE space = ?1 AND local = 1 ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![sid], |r| r.get(0))
        .optional()?;
    let Some(bytes) = latest else {
        return Ok(tip.last().is_none());
    };
    let Ok(change) = Change::from_bytes(bytes) else {
        return Ok(false);
    };
    Ok(tip.last() == Some((change.hash(), change.seq())))
}

/// Brings the tables from `tip` to `change` (built on it, and just stored), which puts
/// `entities` into their collections: their rows, the change's history, the progress
/// summary, the heads, and the tip after it.
pub(crate) fn refresh_new(
    conn: &Connection,
    space: &SpaceId,
    change: &Change,
    entities: &[New<'_>],
    tip: &Tip,
) -> Result<(), rusqlite::Error> {
    let sid = space.to_string();
    let old_heads = tip.heads().unwrap_or_default();
    // The change's operations act on the collections or on objects it makes itself, so
    // the history needs no document to place them.
    let paths = Paths::placed(
        tip.collection_ids()
            .into_iter()
            .map(|(op, name)| (op, vec![name.to_string()])),
    );
    let nothing = automerge::Automerge::new();
    add_history_placed(
        conn,
        &sid,
        &nothing,
        paths,
        &old_heads,
        vec![change.clone()],
    )?;
    let mut touched = BTreeSet::new();
    for e in entities {
        let (c, id, entity) = match e {
            New::Rating(r) => (Collection::Ratings, &r.id, Entity::Rating((*r).clone())),
            New::Seal(s) => (Collection::Seals, &s.id, Entity::Seal((*s).clone())),
            New::Round(r) => (Collection::Rounds, &r.id, Entity::Round((*r).clone())),
            New::Reflection(r) => (
                Collection::Reflections,
                &r.id,
                Entity::Reflection((*r).clone()),
            ),
        };
        touched.insert((c, id.clone()));
        write::store_entity(conn, &sid, entity)?;
    }
    progress_table::update(conn, space, &touched, &BTreeSet::new())?;
    set_state(conn, &sid, &[change.hash()])?;
    save(conn, &sid, &tip.after(change))
}
