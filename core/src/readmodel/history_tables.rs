//! The history tables: each change's events as derived once (`rm_history`), in the
//! causal order of the changes (`rm_changes`), kept up to date as changes arrive and read
//! by [`crate::history::timeline`] without loading the document.

use std::collections::{BTreeMap, BTreeSet};

use automerge::ChangeHash;
use rusqlite::{Connection, OptionalExtension, params};

use super::schema::{decode_heads, encode_heads, exec, json, parse};
use crate::event::SpaceId;
use crate::history::{
    HistoryEvent, HistoryKind, HistoryPos, HistoryQuery, HistoryRow, Resolver, causal_order,
    causal_order_of, change_events,
};
use crate::opwalk::Paths;

/// Keeps the history tables up to date with `new` changes (all in `am`). When every new
/// change comes after all the old ones (a local edit, or a partner's edits made on top of
/// everything seen here), their events are appended; otherwise the causal order of every
/// change is computed again from the stored metadata and the positions that moved are
/// rewritten.
pub(super) fn add_history(
    conn: &Connection,
    sid: &str,
    am: &automerge::Automerge,
    old_heads: &[ChangeHash],
    new: Vec<automerge::Change>,
) -> Result<(), rusqlite::Error> {
    add_history_placed(conn, sid, am, Paths::default(), old_heads, new)
}

/// [`add_history`] with some objects already placed (`paths`): changes whose every
/// object is placed there or made by themselves need nothing of `am`.
pub(super) fn add_history_placed(
    conn: &Connection,
    sid: &str,
    am: &automerge::Automerge,
    mut paths: Paths,
    old_heads: &[ChangeHash],
    new: Vec<automerge::Change>,
) -> Result<(), rusqlite::Error> {
    let new_hashes: BTreeSet<ChangeHash> = new.iter().map(|c| c.hash()).collect();
    let old: BTreeSet<ChangeHash> = old_heads.iter().copied().collect();
    let appends = new.iter().all(|c| {
        let outside: BTreeSet<ChangeHash> = c
            .deps()
            .iter()
            .copied()
            .filter(|d| !new_hashes.contains(d))
            .collect();
        // Depending on every old head, it comes after every old change (Automerge
        // also names the actor's previous change, which may be an older one).
        outside.is_empty() || old.is_subset(&outside)
    });
    let next: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(pos), -1) + 1 FROM rm_changes WHERE space = ?1")?
        .query_row(params![sid], |r| r.get(0))?;
    write_history(conn, sid, am, &mut paths, causal_order(new), next)?;
    if !appends {
        reorder_history(conn, sid)?;
    }
    Ok(())
}

/// The history rows of every change of the document, derived without the database
/// (so that a rebuild derives them on another thread while it writes the entities).
pub(super) fn derive_all(am: &automerge::Automerge) -> Result<Vec<DerivedChange>, rusqlite::Error> {
    derive(am, &mut Paths::default(), causal_order(am.get_changes(&[])))
}

/// Rewrites a space's history tables with the rows of every change ([`derive_all`]).
pub(super) fn rewrite_history(
    conn: &Connection,
    sid: &str,
    derived: Vec<DerivedChange>,
) -> Result<(), rusqlite::Error> {
    for table in ["rm_changes", "rm_history"] {
        conn.execute(
            &format!("DELETE FROM {table} WHERE space = ?1"),
            params![sid],
        )?;
    }
    write_derived(conn, sid, derived, 0)
}

/// One change's rows: its hash, author time and deps, and its events as stored.
pub(super) struct DerivedChange {
    hash: Vec<u8>,
    at: i64,
    deps: Vec<u8>,
    /// (index in the change, time, goal, JSON of [`StoredEvent`]) per event.
    events: Vec<(i64, i64, Option<String>, String)>,
}

/// The rows of `changes` (in causal order).
fn derive(
    am: &automerge::Automerge,
    paths: &mut Paths,
    changes: Vec<automerge::Change>,
) -> Result<Vec<DerivedChange>, rusqlite::Error> {
    let r = Resolver::new(am);
    changes
        .iter()
        .map(|c| {
            let events = change_events(&r, paths, c)
                .into_iter()
                .enumerate()
                .map(|(idx, ev)| {
                    Ok((
                        idx as i64,
                        ev.at,
                        ev.goal.clone(),
                        json(&StoredEvent::of(&ev))?,
                    ))
                })
                .collect::<Result<_, rusqlite::Error>>()?;
            Ok(DerivedChange {
                hash: c.hash().0.to_vec(),
                at: c.timestamp(),
                deps: encode_heads(c.deps()),
                events,
            })
        })
        .collect()
}

/// Writes the events of `changes` (in causal order) from position `first` on.
fn write_history(
    conn: &Connection,
    sid: &str,
    am: &automerge::Automerge,
    paths: &mut Paths,
    changes: Vec<automerge::Change>,
    first: i64,
) -> Result<(), rusqlite::Error> {
    write_derived(conn, sid, derive(am, paths, changes)?, first)
}

/// Writes derived rows from position `first` on.
fn write_derived(
    conn: &Connection,
    sid: &str,
    derived: Vec<DerivedChange>,
    first: i64,
) -> Result<(), rusqlite::Error> {
    for (i, c) in derived.into_iter().enumerate() {
        let pos = first + i as i64;
        exec(
            conn,
            "INSERT OR REPLACE INTO rm_changes (space, hash, at, deps, pos) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![sid, c.hash, c.at, c.deps, pos],
        )?;
        for (idx, at, goal, json) in c.events {
            exec(
                conn,
                "INSERT OR REPLACE INTO rm_history (space, change, idx, pos, at, goal, json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![sid, c.hash, idx, pos, at, goal, json],
            )?;
        }
    }
    Ok(())
}

/// Computes the causal order of every stored change again and rewrites moved positions.
fn reorder_history(conn: &Connection, sid: &str) -> Result<(), rusqlite::Error> {
    let mut stmt =
        conn.prepare_cached("SELECT hash, at, deps, pos FROM rm_changes WHERE space = ?1")?;
    let rows = stmt.query_map(params![sid], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Vec<u8>>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    let mut meta = Vec::new();
    let mut was: BTreeMap<ChangeHash, i64> = BTreeMap::new();
    for row in rows {
        let (hash, at, deps, pos) = row?;
        let (Ok(hash), Some(deps)) = (<[u8; 32]>::try_from(hash), decode_heads(&deps)) else {
            continue;
        };
        was.insert(ChangeHash(hash), pos);
        meta.push((ChangeHash(hash), at, deps));
    }
    for (pos, hash) in causal_order_of(&meta).into_iter().enumerate() {
        let pos = pos as i64;
        if was.get(&hash) != Some(&pos) {
            exec(
                conn,
                "UPDATE rm_changes SET pos = ?3 WHERE space = ?1 AND hash = ?2",
                params![sid, hash.0.to_vec(), pos],
            )?;
            exec(
                conn,
                "UPDATE rm_history SET pos = ?3 WHERE space = ?1 AND change = ?2",
                params![sid, hash.0.to_vec(), pos],
            )?;
        }
    }
    Ok(())
}

/// The stored history events matching the goal and time filters of `q` (not the name,
/// which is resolved later), in history order, with their position; `last` keeps only
/// the last N.
pub(crate) fn history_rows(
    conn: &Connection,
    space: &SpaceId,
    q: &HistoryQuery,
    last: Option<usize>,
) -> Result<Vec<HistoryRow>, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT pos, idx, change, json FROM rm_history WHERE space = ?1
           AND (?2 IS NULL OR goal = ?2) AND (?3 IS NULL OR at >= ?3) AND (?4 IS NULL OR at < ?4)
         ORDER BY pos DESC, idx DESC LIMIT ?5",
    )?;
    let limit = last.map_or(-1, |n| n as i64);
    let rows = stmt.query_map(
        params![space.to_string(), q.goal, q.since, q.until, limit],
        |r| {
            Ok((
                (r.get::<_, i64>(0)?, r.get::<_, i64>(1)?),
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, String>(3)?,
            ))
        },
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (key, change, j) = row?;
        out.push((key, parse::<StoredEvent>(&j)?.event(&change)));
    }
    out.reverse();
    Ok(out)
}

/// The edits of goal fields and step texts of a space (of one goal, with `goal`), in
/// history order: what [`crate::history::merged_texts`] reads.
pub(crate) fn goal_field_edits(
    conn: &Connection,
    space: &SpaceId,
    goal: Option<&str>,
) -> Result<Vec<HistoryEvent>, rusqlite::Error> {
    let sql = "SELECT change, json FROM rm_history WHERE space = ?1 AND (?2 IS NULL OR goal = ?2)
           AND (instr(json, '\"field_edited\"') > 0 OR instr(json, '\"step_edited\"') > 0)
         ORDER BY pos, idx";
    events_of(conn, sql, params![space.to_string(), goal], |k| {
        matches!(k, HistoryKind::FieldEdited | HistoryKind::StepEdited)
    })
}

/// Which of `items` (ids of ratings, seals, reflections and completed steps) was made
/// last in the history's causal order (the order changes were made in, whatever the
/// clocks said; changes made apart ordered by their times). Read from the end, only
/// until one is found; with the row of its change in the store (the order this device
/// stored changes in, across spaces), when the store still holds it and this device made
/// it: a sync stores one space's changes before the other's, so only for this device's
/// own changes is that order the order they were made in. An edit or a withdrawal of a
/// reflection among `items` counts as an act on it ([`LastMade::edit`], or a withdrawal
/// asked for); a withdrawal or an edit `undo` made does not (it took an act back, and
/// with an edit, the edit before it).
pub(crate) fn last_made(
    conn: &Connection,
    space: &SpaceId,
    items: &std::collections::HashSet<&str>,
) -> Result<Option<LastMade>, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT h.change, h.json, CASE WHEN c.local = 1 THEN c.id END FROM rm_history h
           LEFT JOIN changes c ON c.space = h.space AND c.hash = h.change
         WHERE h.space = ?1
           AND (instr(h.json, '\"rating_given\"') > 0 OR instr(h.json, '\"rating_sealed\"') > 0
             OR instr(h.json, '\"reflection_written\"') > 0 OR instr(h.json, '\"step_done\"') > 0
             OR instr(h.json, '\"reflection_edited\"') > 0
             OR instr(h.json, '\"reflection_withdrawn\"') > 0)
         ORDER BY h.pos DESC, h.idx DESC",
    )?;
    let mut rows = stmt.query(params![space.to_string()])?;
    // Reflections whose withdrawal `undo` made: that act was taken back, and so is every
    // earlier act on them (the scan reads the history from its end).
    let mut taken_back: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut edits_taken_back: std::collections::HashMap<String, usize> =
        std::collections::HashMap::new();
    while let Some(row) = rows.next()? {
        let (change, j): (Vec<u8>, String) = (row.get(0)?, row.get(1)?);
        let stored: Option<i64> = row.get(2)?;
        let event = parse::<StoredEvent>(&j)?.event(&change);
        let Some(item) = event
            .item
            .filter(|i| items.contains(i.as_str()) && !taken_back.contains(i))
        else {
            continue;
        };
        let edit = event.kind == HistoryKind::ReflectionEdited;
        let withdrawn = event.kind == HistoryKind::ReflectionWithdrawn;
        if withdrawn && by_undo(conn, space, &change)? {
            taken_back.insert(item);
            continue;
        }
        // An edit `undo` wrote takes back the edit of that reflection before it.
        if edit && by_undo(conn, space, &change)? {
            *edits_taken_back.entry(item).or_default() += 1;
            continue;
        }
        if edit && let Some(n) = edits_taken_back.get_mut(&item).filter(|n| **n > 0) {
            *n -= 1;
            continue;
        }
        let made = edit
            || withdrawn
            || matches!(
                event.kind,
                HistoryKind::RatingGiven
                    | HistoryKind::RatingSealed
                    | HistoryKind::ReflectionWritten
                    | HistoryKind::StepDone
            );
        if made {
            let edit = match edit {
                true => Some(automerge::ChangeHash(change.try_into().map_err(|_| {
                    rusqlite::Error::InvalidColumnType(
                        0,
                        "change".into(),
                        rusqlite::types::Type::Blob,
                    )
                })?)),
                false => None,
            };
            return Ok(Some(LastMade {
                item,
                row: stored,
                edit,
            }));
        }
    }
    Ok(None)
}

/// What [`last_made`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LastMade {
    /// The item (a rating's, seal's, reflection's or step's id).
    pub item: String,
    /// Its change's row in the store, when this device made it.
    pub row: Option<i64>,
    /// The latest act was an edit of the reflection `item`: that edit's change.
    pub edit: Option<automerge::ChangeHash>,
}

/// Whether the stored change `hash` of the space was written by `undo` (its message).
fn by_undo(conn: &Connection, space: &SpaceId, hash: &[u8]) -> Result<bool, rusqlite::Error> {
    let bytes: Option<Vec<u8>> = conn
        .prepare_cached("SELECT bytes FROM changes WHERE space = ?1 AND hash = ?2")?
        .query_row(params![space.to_string(), hash], |r| r.get(0))
        .optional()?;
    Ok(bytes
        .and_then(|b| automerge::Change::from_bytes(b).ok())
        .is_some_and(|c| c.message().is_some_and(|m| *m == *crate::doc::UNDO_MESSAGE)))
}

/// The edits of reflections of a space, in history order: what
/// [`crate::history::merged_reflections`] reads.
pub(crate) fn reflection_edits(
    conn: &Connection,
    space: &SpaceId,
) -> Result<Vec<HistoryEvent>, rusqlite::Error> {
    let sql = "SELECT change, json FROM rm_history WHERE space = ?1
           AND instr(json, '\"reflection_edited\"') > 0
         ORDER BY pos, idx";
    events_of(conn, sql, params![space.to_string()], |k| {
        k == HistoryKind::ReflectionEdited
    })
}

/// The history events `sql` selects (`change, json` rows, picked by their kind's name in
/// the stored JSON with SQLite's `instr`, so only they are parsed) whose kind `keep`
/// takes: the name may also appear in an event's text.
fn events_of(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    keep: impl Fn(HistoryKind) -> bool,
) -> Result<Vec<HistoryEvent>, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, |r| {
        Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (change, j) = row?;
        let event = parse::<StoredEvent>(&j)?.event(&change);
        if keep(event.kind) {
            out.push(event);
        }
    }
    Ok(out)
}

/// The position of the first history event (in history order) later than `at`.
pub(crate) fn history_first_after(
    conn: &Connection,
    space: &SpaceId,
    at: i64,
) -> Result<Option<HistoryPos>, rusqlite::Error> {
    conn.prepare_cached(
        "SELECT pos, idx FROM rm_history WHERE space = ?1 AND at > ?2 ORDER BY pos, idx LIMIT 1",
    )?
    .query_row(params![space.to_string(), at], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .optional()
}

/// A history event as `rm_history` keeps it: only what its change fixed, without empty
/// fields (a long history has one row per change); the change hash is the row's
/// `change` column, and names, titles and the summary are filled in when read.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredEvent {
    kind: HistoryKind,
    at: i64,
    device: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    goal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    level: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    item: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    person: Option<String>,
}

impl StoredEvent {
    fn of(e: &HistoryEvent) -> StoredEvent {
        StoredEvent {
            kind: e.kind,
            at: e.at,
            device: e.device.clone(),
            goal: e.goal.clone(),
            field: e.field.clone(),
            before: e.before.clone(),
            after: e.after.clone(),
            level: e.level,
            item: e.item.clone(),
            person: e.person.clone(),
        }
    }

    fn event(self, change: &[u8]) -> HistoryEvent {
        HistoryEvent {
            goal: self.goal,
            field: self.field,
            before: self.before,
            after: self.after,
            level: self.level,
            item: self.item,
            person: self.person,
            ..HistoryEvent::by(
                self.kind,
                self.at,
                None,
                String::new(),
                self.device,
                hex::encode(change),
            )
        }
    }
}
