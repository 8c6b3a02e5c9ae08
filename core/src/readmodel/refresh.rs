//! Keeping a space's tables current: what new changes touched (through the shared
//! [`crate::opwalk`]), refreshing just that, rebuilding everything when needed, and the
//! version and heads the tables reflect.

use std::collections::BTreeSet;

use automerge::{ChangeHash, ReadDoc};
use rusqlite::{Connection, OptionalExtension, params};

use super::entity::{Collection, entity_obj};
use super::history_tables::{add_history, derive_all, rewrite_history};
use super::schema::{decode_heads, encode_heads, exec};
use super::write::{clear, delete_entity, write_collection, write_entity};
use super::{VERSION, progress_table, tip_table};
use crate::doc::SpaceDoc;
use crate::event::SpaceId;
use crate::opwalk::{Paths, walk};

/// What a set of changes touched: whole collections, or single entities.
#[derive(Default)]
struct Touched {
    everything: bool,
    collections: BTreeSet<Collection>,
    entities: BTreeSet<(Collection, String)>,
}

/// Works out which entities `changes` touched, resolving each operation's object to its
/// path in the current document.
fn touched(am: &automerge::Automerge, changes: &[automerge::Change]) -> Touched {
    let mut t = Touched::default();
    let mut paths = Paths::default();
    for change in changes {
        for op in walk(am, &mut paths, change) {
            let Some(path) = op.path else {
                // An object the document cannot place: rebuild everything.
                t.everything = true;
                return t;
            };
            let key = op.in_map.then_some(op.key);
            match &path[..] {
                // A put at the root: a collection itself was (re)created.
                [] => {
                    if let Some(c) = key.as_deref().and_then(Collection::named) {
                        t.collections.insert(c);
                    }
                }
                // A put into a collection: the entity under that key.
                [c] => {
                    if let (Some(c), Some(k)) = (Collection::named(c), key) {
                        t.entities.insert((c, k));
                    }
                }
                // Anything deeper belongs to the entity at the second level.
                [c, id, ..] => {
                    if let Some(c) = Collection::named(c) {
                        t.entities.insert((c, id.clone()));
                    }
                }
            }
        }
    }
    t
}

/// Brings a space's tables up to `doc` (called inside the transaction that stores the
/// changes). Only what changed since the tables' heads is rewritten; tables that do not
/// exist yet for the space are left for a rebuild.
pub(crate) fn refresh(
    conn: &Connection,
    space: &SpaceId,
    doc: &SpaceDoc,
) -> Result<(), rusqlite::Error> {
    let sid = space.to_string();
    let am = doc.automerge();
    let heads = doc.heads();
    let state: Option<(i64, Vec<u8>)> = conn
        .query_row(
            "SELECT version, heads FROM rm_state WHERE space = ?1",
            params![sid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let old = match state {
        Some((VERSION, h)) => decode_heads(&h),
        // Missing (a new or just-joined space) or another version: the tables are
        // rebuilt once, on next use (`Store::view`, or the end of a sync).
        _ => return Ok(()),
    };
    let (t, old_heads, new_changes) = match old {
        Some(old) if old == heads => return tip_table::record(conn, &sid, doc),
        Some(old) if old.iter().all(|h| am.get_change_by_hash(h).is_some()) => {
            let new = am.get_changes(&old);
            (touched(am, &new), old, new)
        }
        _ => (
            Touched {
                everything: true,
                ..Touched::default()
            },
            Vec::new(),
            Vec::new(),
        ),
    };
    if t.everything {
        rebuild(conn, space, doc)?;
    } else {
        add_history(conn, &sid, am, &old_heads, new_changes)?;
        for c in &t.collections {
            clear(conn, &sid, Some(*c))?;
            write_collection(conn, &sid, am, *c)?;
        }
        for (c, id) in &t.entities {
            if t.collections.contains(c) {
                continue;
            }
            delete_entity(conn, &sid, *c, id)?;
            if let Some(obj) = entity_obj(am, *c, id) {
                write_entity(conn, &sid, am, &obj, *c, id)?;
            }
        }
        progress_table::update(conn, space, &t.entities, &t.collections)?;
    }
    set_state(conn, &sid, &heads)?;
    tip_table::record(conn, &sid, doc)
}

/// Rewrites a space's tables from the whole document.
pub(crate) fn rebuild(
    conn: &Connection,
    space: &SpaceId,
    doc: &SpaceDoc,
) -> Result<(), rusqlite::Error> {
    let sid = space.to_string();
    let am = doc.automerge();
    // The history's rows are derived from the document on another core while this one
    // writes the entities and the progress summary (a join's rebuild is its largest
    // single step); only this thread touches the database.
    std::thread::scope(|s| {
        let history = s.spawn(|| derive_all(am));
        clear(conn, &sid, None)?;
        for c in Collection::ALL {
            write_collection(conn, &sid, am, c)?;
        }
        progress_table::recompute(conn, space)?;
        let derived = match history.join() {
            Ok(derived) => derived?,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        rewrite_history(conn, &sid, derived)
    })?;
    set_state(conn, &sid, &doc.heads())?;
    tip_table::record(conn, &sid, doc)
}

/// Records that a space's tables are of this version and reflect `heads`.
pub(super) fn set_state(
    conn: &Connection,
    sid: &str,
    heads: &[ChangeHash],
) -> Result<(), rusqlite::Error> {
    exec(
        conn,
        "INSERT INTO rm_state (space, version, heads) VALUES (?1, ?2, ?3)
         ON CONFLICT (space) DO UPDATE SET version = ?2, heads = ?3",
        params![sid, VERSION, encode_heads(heads)],
    )?;
    Ok(())
}

/// The version and heads a space's tables are at, as bytes (empty when they have none).
pub(crate) fn state_key(conn: &Connection, space: &SpaceId) -> Result<Vec<u8>, rusqlite::Error> {
    Ok(conn
        .query_row(
            "SELECT version, heads FROM rm_state WHERE space = ?1",
            params![space.to_string()],
            |r| {
                let mut key = r.get::<_, i64>(0)?.to_be_bytes().to_vec();
                key.extend(r.get::<_, Vec<u8>>(1)?);
                Ok(key)
            },
        )
        .optional()?
        .unwrap_or_default())
}

/// Marks a space's read models stale: they are rebuilt from the document on next use.
pub(crate) fn forget(conn: &Connection, space: &SpaceId) -> Result<(), rusqlite::Error> {
    conn.execute(
        "DELETE FROM rm_state WHERE space = ?1",
        params![space.to_string()],
    )?;
    Ok(())
}

/// Whether the tables of a space are current for this version.
pub(crate) fn is_current(conn: &Connection, space: &SpaceId) -> Result<bool, rusqlite::Error> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM rm_state WHERE space = ?1 AND version = ?2",
            params![space.to_string(), VERSION],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}
