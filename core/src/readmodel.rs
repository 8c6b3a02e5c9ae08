//! Read models: the typed content of each space's document (people, goals, steps,
//! ratings, reflections) kept as SQLite tables beside the changes.
//!
//! They are an event-sourcing projection. Every store method that adds changes to a
//! space refreshes them in the same transaction, from the document the command already
//! holds, so reading commands (`goal list`, `progress`, `report`) never load the
//! Automerge document. A refresh touches only the entities the new changes touched: the
//! changes since the heads the tables were last brought to are decoded, each operation's
//! object is resolved to its path in the document, and the entity at the head of that
//! path (a goal, a rating, ...) is hydrated again and rewritten. An entity that does not
//! hydrate (a member wrote data this version cannot read) is left out and listed as a
//! problem instead of failing the transaction. When [`VERSION`] changes, or the tables
//! are missing for a space, they are rebuilt from the document on next use.

use std::collections::{BTreeMap, BTreeSet};

use automerge::legacy::{Key, OpType};
use automerge::{ChangeHash, ObjId, ObjType, ROOT, ReadDoc, Value};
use autosurgeon::hydrate_prop;
use rusqlite::{Connection, OptionalExtension, params};

use crate::doc::{DocError, SpaceDoc};
use crate::event::SpaceId;
use crate::history::{
    HistoryEvent, HistoryKind, HistoryQuery, Paths, Resolver, causal_order, causal_order_of,
    change_events,
};
use crate::model::{Goal, Person, Rating, Reflection, Step};

/// Version of the read-model tables' content. Bump it when what they hold changes: every
/// space's tables are then rebuilt from its document. Version 3: entities are checked
/// against the model's ranges as they are read (rows written before are rebuilt, so an
/// out-of-range value a partner sent earlier becomes a listed problem).
pub const VERSION: i64 = 3;

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

/// The typed content of a space, as the reading commands use it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    /// Every person by person id.
    pub people: BTreeMap<String, Person>,
    /// Every goal, by creation time.
    pub goals: Vec<Goal>,
    /// Every rating, oldest first.
    pub ratings: Vec<Rating>,
    /// Every reflection, oldest first.
    pub reflections: Vec<Reflection>,
    /// Entities that did not hydrate: "collection id: error".
    pub problems: Vec<String>,
}

impl View {
    /// Reads the view straight from a document (what the tables must always equal).
    pub fn of(doc: &SpaceDoc) -> View {
        let mut view = View::default();
        let am = doc.automerge();
        for coll in Collection::ALL {
            for entity in collection_entities(am, coll) {
                match entity {
                    Ok(e) => view.add(e),
                    Err((id, e)) => view.problems.push(format!("{} {id}: {e}", coll.name())),
                }
            }
        }
        view.sort();
        view
    }

    /// One goal by id.
    pub fn goal(&self, id: &str) -> Option<&Goal> {
        self.goals.iter().find(|g| g.id == id)
    }

    fn add(&mut self, e: Entity) {
        match e {
            Entity::Person(id, p) => {
                self.people.insert(id, p);
            }
            Entity::Goal(g) => self.goals.push(*g),
            Entity::Rating(r) => self.ratings.push(r),
            Entity::Reflection(r) => self.reflections.push(r),
        }
    }

    fn sort(&mut self) {
        self.goals
            .sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        self.ratings
            .sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        self.reflections
            .sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        self.problems.sort();
    }
}

/// An entity of a space that this version cannot read, with what it holds.
///
/// [`View::problems`] names them in one line each; [`problems_of`] gives them with their
/// raw content, so that an export can carry what it could not type (nothing a partner
/// wrote is silently left out).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    /// The collection: `people`, `goals`, `ratings` or `reflections`.
    pub collection: String,
    /// The entity's key in its collection.
    pub id: String,
    /// Why it could not be read.
    pub reason: String,
    /// Its raw content as JSON (`null` when the document could not be read).
    pub raw: serde_json::Value,
}

impl std::fmt::Display for Problem {
    /// The same line as [`View::problems`] holds: "collection id: reason".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.collection, self.id, self.reason)
    }
}

impl Problem {
    /// A problem from one of [`View::problems`]' lines, without its raw content (for
    /// when the document itself cannot be loaded).
    pub fn from_line(line: &str) -> Problem {
        let (head, reason) = line.split_once(": ").unwrap_or((line, ""));
        let (collection, id) = head.split_once(' ').unwrap_or(("", head));
        Problem {
            collection: collection.to_string(),
            id: id.to_string(),
            reason: reason.to_string(),
            raw: serde_json::Value::Null,
        }
    }
}

/// Every entity of `doc` that does not hydrate, with its raw content. Loading the
/// document is the price: callers ask only when [`View::problems`] is not empty.
pub fn problems_of(doc: &SpaceDoc) -> Vec<Problem> {
    let am = doc.automerge();
    let mut out = Vec::new();
    for coll in Collection::ALL {
        let Some(obj) = collection_obj(am, coll) else {
            continue;
        };
        for entity in collection_entities(am, coll) {
            if let Err((id, e)) = entity {
                out.push(Problem {
                    collection: coll.name().to_string(),
                    raw: raw_json(am, &obj, id.as_str(), 0),
                    id,
                    reason: e.to_string(),
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.collection, &a.id).cmp(&(&b.collection, &b.id)));
    out
}

/// How deep [`raw_json`] follows nested objects: a partner's entity may nest without
/// limit, and the recursion must not exhaust the stack.
const RAW_DEPTH: usize = 32;

/// The JSON form of whatever is stored at `prop` of `obj`: maps and lists as JSON, text
/// as a string, counters and timestamps as numbers, bytes as hex.
fn raw_json(
    am: &automerge::Automerge,
    obj: &ObjId,
    prop: impl Into<automerge::Prop>,
    depth: usize,
) -> serde_json::Value {
    use serde_json::Value as J;
    match am.get(obj, prop) {
        Ok(Some((Value::Scalar(s), _))) => scalar_json(&s),
        Ok(Some((Value::Object(_), _))) if depth >= RAW_DEPTH => {
            J::String("(nested too deeply to show)".into())
        }
        Ok(Some((Value::Object(ObjType::Text), id))) => J::String(am.text(&id).unwrap_or_default()),
        Ok(Some((Value::Object(ObjType::List), id))) => J::Array(
            (0..am.length(&id))
                .map(|i| raw_json(am, &id, i, depth + 1))
                .collect(),
        ),
        Ok(Some((Value::Object(_), id))) => J::Object(
            am.keys(&id)
                .map(|k| {
                    let v = raw_json(am, &id, k.as_str(), depth + 1);
                    (k, v)
                })
                .collect(),
        ),
        Ok(None) | Err(_) => J::Null,
    }
}

fn scalar_json(s: &automerge::ScalarValue) -> serde_json::Value {
    use automerge::ScalarValue as S;
    use serde_json::{Value as J, json};
    match s {
        S::Bytes(b) => json!({ "bytes": hex::encode(b) }),
        S::Str(s) => J::String(s.to_string()),
        S::Int(i) | S::Timestamp(i) => json!(i),
        S::Uint(u) => json!(u),
        // NaN and infinities have no JSON number.
        S::F64(f) => {
            serde_json::Number::from_f64(*f).map_or_else(|| J::String(f.to_string()), J::Number)
        }
        S::Counter(c) => json!(i64::from(c)),
        S::Boolean(b) => J::Bool(*b),
        S::Unknown { type_code, bytes } => {
            json!({ "unknown_type": type_code, "bytes": hex::encode(bytes) })
        }
        S::Null => J::Null,
    }
}

/// Which parts of a [`View`] to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parts {
    /// Everything.
    All,
    /// People and goals (with steps) only: what `goal list` needs.
    Goals,
}

/// A top-level collection of the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Collection {
    People,
    Goals,
    Ratings,
    Reflections,
}

impl Collection {
    const ALL: [Collection; 4] = [
        Collection::People,
        Collection::Goals,
        Collection::Ratings,
        Collection::Reflections,
    ];

    fn name(self) -> &'static str {
        match self {
            Collection::People => "people",
            Collection::Goals => "goals",
            Collection::Ratings => "ratings",
            Collection::Reflections => "reflections",
        }
    }

    fn named(name: &str) -> Option<Collection> {
        Collection::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// One hydrated entity.
enum Entity {
    Person(String, Person),
    Goal(Box<Goal>),
    Rating(Rating),
    Reflection(Reflection),
}

impl Entity {
    /// Hydrates the entity `id` of a collection; `None` when it is not there.
    fn hydrate(
        am: &automerge::Automerge,
        obj: &ObjId,
        coll: Collection,
        id: &str,
    ) -> Result<Option<Entity>, DocError> {
        if am.get(obj, id)?.is_none() {
            return Ok(None);
        }
        Ok(Some(match coll {
            Collection::People => Entity::Person(id.to_string(), hydrate_prop(am, obj, id)?),
            Collection::Goals => Entity::Goal(Box::new(hydrate_prop(am, obj, id)?)),
            Collection::Ratings => Entity::Rating(hydrate_prop(am, obj, id)?),
            Collection::Reflections => Entity::Reflection(hydrate_prop(am, obj, id)?),
        }))
    }
}

impl Entity {
    /// Hydrates a whole collection in one pass.
    fn hydrate_all(am: &automerge::Automerge, c: Collection) -> Result<Vec<Entity>, DocError> {
        fn all<T: autosurgeon::Hydrate>(
            am: &automerge::Automerge,
            c: Collection,
        ) -> Result<BTreeMap<String, T>, DocError> {
            Ok(hydrate_prop(am, ROOT, c.name())?)
        }
        Ok(match c {
            Collection::People => all::<Person>(am, c)?
                .into_iter()
                .map(|(id, p)| Entity::Person(id, p))
                .collect(),
            Collection::Goals => all::<Goal>(am, c)?
                .into_values()
                .map(|g| Entity::Goal(Box::new(g)))
                .collect(),
            Collection::Ratings => all::<Rating>(am, c)?
                .into_values()
                .map(Entity::Rating)
                .collect(),
            Collection::Reflections => all::<Reflection>(am, c)?
                .into_values()
                .map(Entity::Reflection)
                .collect(),
        })
    }
}

/// Every entity of a collection: hydrated in one pass, or one by one when the collection
/// as a whole does not hydrate, each that fails given as (id, error).
fn collection_entities(
    am: &automerge::Automerge,
    c: Collection,
) -> Vec<Result<Entity, (String, DocError)>> {
    let Some(obj) = collection_obj(am, c) else {
        return Vec::new();
    };
    if let Ok(all) = Entity::hydrate_all(am, c) {
        return all.into_iter().map(Ok).collect();
    }
    am.keys(&obj)
        .filter_map(|id| match Entity::hydrate(am, &obj, c, &id) {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(e) => Some(Err((id, e))),
        })
        .collect()
}

fn collection_obj(am: &automerge::Automerge, coll: Collection) -> Option<ObjId> {
    match am.get(ROOT, coll.name()).ok()? {
        Some((Value::Object(ObjType::Map), id)) => Some(id),
        _ => None,
    }
}

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
        let ex = change.decode();
        let start = ex.start_op.get();
        for (i, op) in ex.operations.iter().enumerate() {
            let key = match &op.key {
                Key::Map(s) => Some(s.to_string()),
                Key::Seq(_) => None,
            };
            let Some(path) = paths.of(am, &op.obj) else {
                // An object the document cannot place: rebuild everything.
                t.everything = true;
                return t;
            };
            if let OpType::Make(_) = op.action {
                let id = automerge::legacy::OpId(start + i as u64, ex.actor_id.clone());
                paths.made(am, id, &op.obj, &op.key);
            }
            match path.as_slice() {
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

fn encode_heads(heads: &[ChangeHash]) -> Vec<u8> {
    heads.iter().flat_map(|h| h.0).collect()
}

fn decode_heads(bytes: &[u8]) -> Option<Vec<ChangeHash>> {
    if !bytes.len().is_multiple_of(32) {
        return None;
    }
    bytes
        .chunks(32)
        .map(|c| c.try_into().ok().map(ChangeHash))
        .collect()
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
        Some(old) if old == heads => return Ok(()),
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
            if let Some(obj) = collection_obj(am, *c) {
                write_entity(conn, &sid, am, &obj, *c, id)?;
            }
        }
    }
    set_state(conn, &sid, &heads)
}

/// Rewrites a space's tables from the whole document.
pub(crate) fn rebuild(
    conn: &Connection,
    space: &SpaceId,
    doc: &SpaceDoc,
) -> Result<(), rusqlite::Error> {
    let sid = space.to_string();
    let am = doc.automerge();
    clear(conn, &sid, None)?;
    for c in Collection::ALL {
        write_collection(conn, &sid, am, c)?;
    }
    for table in ["rm_changes", "rm_history"] {
        conn.execute(
            &format!("DELETE FROM {table} WHERE space = ?1"),
            params![sid],
        )?;
    }
    write_history(conn, &sid, am, causal_order(am.get_changes(&[])), 0)?;
    set_state(conn, &sid, &doc.heads())
}

/// Records that a space's tables are of this version and reflect `heads`.
fn set_state(conn: &Connection, sid: &str, heads: &[ChangeHash]) -> Result<(), rusqlite::Error> {
    exec(
        conn,
        "INSERT INTO rm_state (space, version, heads) VALUES (?1, ?2, ?3)
         ON CONFLICT (space) DO UPDATE SET version = ?2, heads = ?3",
        params![sid, VERSION, encode_heads(heads)],
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

/// Keeps the history tables up to date with `new` changes (all in `am`). When every new
/// change comes after all the old ones (a local edit, or a partner's edits made on top of
/// everything seen here), their events are appended; otherwise the causal order of every
/// change is computed again from the stored metadata and the positions that moved are
/// rewritten.
fn add_history(
    conn: &Connection,
    sid: &str,
    am: &automerge::Automerge,
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
        outside.is_empty() || outside == old
    });
    let next: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(pos), -1) + 1 FROM rm_changes WHERE space = ?1")?
        .query_row(params![sid], |r| r.get(0))?;
    write_history(conn, sid, am, causal_order(new), next)?;
    if !appends {
        reorder_history(conn, sid)?;
    }
    Ok(())
}

/// Writes the events of `changes` (in causal order) from position `first` on.
fn write_history(
    conn: &Connection,
    sid: &str,
    am: &automerge::Automerge,
    changes: Vec<automerge::Change>,
    first: i64,
) -> Result<(), rusqlite::Error> {
    let r = Resolver::new(am);
    let mut paths = Paths::default();
    for (i, c) in changes.iter().enumerate() {
        let pos = first + i as i64;
        let hash = c.hash().0.to_vec();
        exec(
            conn,
            "INSERT OR REPLACE INTO rm_changes (space, hash, at, deps, pos) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![sid, hash, c.timestamp(), encode_heads(c.deps()), pos],
        )?;
        for (idx, ev) in change_events(&r, &mut paths, c).into_iter().enumerate() {
            exec(
                conn,
                "INSERT OR REPLACE INTO rm_history (space, change, idx, pos, at, goal, json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    sid,
                    hash,
                    idx as i64,
                    pos,
                    ev.at,
                    ev.goal,
                    json(&StoredEvent::of(&ev))?
                ],
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

/// Where a stored history event stands: (position of its change, index in the change).
pub type HistoryPos = (i64, i64);

/// A stored history event with its position.
pub type HistoryRow = (HistoryPos, HistoryEvent);

const TABLES: [(&str, Collection); 5] = [
    ("rm_people", Collection::People),
    ("rm_goals", Collection::Goals),
    ("rm_steps", Collection::Goals),
    ("rm_ratings", Collection::Ratings),
    ("rm_reflections", Collection::Reflections),
];

fn clear(conn: &Connection, sid: &str, only: Option<Collection>) -> Result<(), rusqlite::Error> {
    for (table, c) in TABLES {
        if only.is_none_or(|o| o == c) {
            conn.execute(
                &format!("DELETE FROM {table} WHERE space = ?1"),
                params![sid],
            )?;
        }
    }
    match only {
        None => exec(
            conn,
            "DELETE FROM rm_problems WHERE space = ?1",
            params![sid],
        )?,
        Some(c) => exec(
            conn,
            "DELETE FROM rm_problems WHERE space = ?1 AND collection = ?2",
            params![sid, c.name()],
        )?,
    };
    Ok(())
}

fn delete_entity(
    conn: &Connection,
    sid: &str,
    c: Collection,
    id: &str,
) -> Result<(), rusqlite::Error> {
    match c {
        Collection::People => exec(
            conn,
            "DELETE FROM rm_people WHERE space = ?1 AND id = ?2",
            params![sid, id],
        )?,
        Collection::Goals => {
            exec(
                conn,
                "DELETE FROM rm_steps WHERE space = ?1 AND goal = ?2",
                params![sid, id],
            )?;
            exec(
                conn,
                "DELETE FROM rm_goals WHERE space = ?1 AND id = ?2",
                params![sid, id],
            )?
        }
        Collection::Ratings => exec(
            conn,
            "DELETE FROM rm_ratings WHERE space = ?1 AND id = ?2",
            params![sid, id],
        )?,
        Collection::Reflections => exec(
            conn,
            "DELETE FROM rm_reflections WHERE space = ?1 AND id = ?2",
            params![sid, id],
        )?,
    };
    exec(
        conn,
        "DELETE FROM rm_problems WHERE space = ?1 AND collection = ?2 AND id = ?3",
        params![sid, c.name(), id],
    )?;
    Ok(())
}

/// Runs one statement through the connection's statement cache (refreshes run the same
/// few statements many times).
fn exec(conn: &Connection, sql: &str, p: impl rusqlite::Params) -> Result<usize, rusqlite::Error> {
    conn.prepare_cached(sql)?.execute(p)
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, rusqlite::Error> {
    serde_json::to_string(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

fn write_entity(
    conn: &Connection,
    sid: &str,
    am: &automerge::Automerge,
    obj: &ObjId,
    c: Collection,
    id: &str,
) -> Result<(), rusqlite::Error> {
    match Entity::hydrate(am, obj, c, id) {
        Ok(Some(e)) => store_entity(conn, sid, e),
        Ok(None) => Ok(()),
        Err(e) => record_problem(conn, sid, c, id, &e),
    }
}

/// Writes every entity of a collection, recording those that do not hydrate.
fn write_collection(
    conn: &Connection,
    sid: &str,
    am: &automerge::Automerge,
    c: Collection,
) -> Result<(), rusqlite::Error> {
    for entity in collection_entities(am, c) {
        match entity {
            Ok(e) => store_entity(conn, sid, e)?,
            Err((id, e)) => record_problem(conn, sid, c, &id, &e)?,
        }
    }
    Ok(())
}

fn record_problem(
    conn: &Connection,
    sid: &str,
    c: Collection,
    id: &str,
    e: &DocError,
) -> Result<(), rusqlite::Error> {
    exec(
        conn,
        "INSERT OR REPLACE INTO rm_problems (space, collection, id, error)
         VALUES (?1, ?2, ?3, ?4)",
        params![sid, c.name(), id, e.to_string()],
    )?;
    Ok(())
}

fn store_entity(conn: &Connection, sid: &str, entity: Entity) -> Result<(), rusqlite::Error> {
    match entity {
        Entity::Person(id, p) => {
            exec(
                conn,
                "INSERT OR REPLACE INTO rm_people (space, id, json) VALUES (?1, ?2, ?3)",
                params![sid, id, json(&p)?],
            )?;
        }
        Entity::Goal(mut g) => {
            let steps = std::mem::take(&mut g.steps);
            exec(
                conn,
                "INSERT OR REPLACE INTO rm_goals (space, id, created_at, json) VALUES (?1, ?2, ?3, ?4)",
                params![sid, g.id, g.created_at, json(&g)?],
            )?;
            for (sid_key, s) in steps {
                exec(
                    conn,
                    "INSERT OR REPLACE INTO rm_steps (space, goal, id, json) VALUES (?1, ?2, ?3, ?4)",
                    params![sid, g.id, sid_key, json(&s)?],
                )?;
            }
        }
        Entity::Rating(r) => {
            exec(
                conn,
                "INSERT OR REPLACE INTO rm_ratings (space, id, goal, rater, at, level, note)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![sid, r.id, r.goal, r.rater, r.at, r.level, r.note],
            )?;
        }
        Entity::Reflection(r) => {
            exec(
                conn,
                "INSERT OR REPLACE INTO rm_reflections (space, id, at, json) VALUES (?1, ?2, ?3, ?4)",
                params![sid, r.id, r.at, json(&r)?],
            )?;
        }
    }
    Ok(())
}

fn parse<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, rusqlite::Error> {
    serde_json::from_str(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Every person of a space.
pub(crate) fn people(
    conn: &Connection,
    space: &SpaceId,
) -> Result<BTreeMap<String, Person>, rusqlite::Error> {
    let mut stmt = conn.prepare_cached("SELECT id, json FROM rm_people WHERE space = ?1")?;
    let rows = stmt.query_map(params![space.to_string()], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = BTreeMap::new();
    for row in rows {
        let (id, j) = row?;
        out.insert(id, parse(&j)?);
    }
    Ok(out)
}

/// Every goal of a space with its steps, by creation time.
pub(crate) fn goals(conn: &Connection, space: &SpaceId) -> Result<Vec<Goal>, rusqlite::Error> {
    let sid = space.to_string();
    let mut steps: BTreeMap<String, BTreeMap<String, Step>> = BTreeMap::new();
    let mut stmt = conn.prepare_cached("SELECT goal, id, json FROM rm_steps WHERE space = ?1")?;
    let rows = stmt.query_map(params![sid], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (goal, id, j) = row?;
        steps.entry(goal).or_default().insert(id, parse(&j)?);
    }
    let mut out: Vec<Goal> = json_rows(
        conn,
        "SELECT json FROM rm_goals WHERE space = ?1 ORDER BY created_at, id",
        space,
    )?;
    for g in &mut out {
        g.steps = steps.remove(&g.id).unwrap_or_default();
    }
    Ok(out)
}

/// The values of a query's one JSON column, for one space.
fn json_rows<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    space: &SpaceId,
) -> Result<Vec<T>, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params![space.to_string()], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(parse(&row?)?);
    }
    Ok(out)
}

/// Every rating of a space, oldest first.
pub(crate) fn ratings(conn: &Connection, space: &SpaceId) -> Result<Vec<Rating>, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, goal, rater, at, level, note FROM rm_ratings WHERE space = ?1 ORDER BY at, id",
    )?;
    let rows = stmt.query_map(params![space.to_string()], |r| {
        Ok(Rating {
            id: r.get(0)?,
            goal: r.get(1)?,
            rater: r.get(2)?,
            at: r.get(3)?,
            level: r.get(4)?,
            note: r.get(5)?,
        })
    })?;
    rows.collect()
}

/// Every reflection of a space, oldest first.
pub(crate) fn reflections(
    conn: &Connection,
    space: &SpaceId,
) -> Result<Vec<Reflection>, rusqlite::Error> {
    json_rows(
        conn,
        "SELECT json FROM rm_reflections WHERE space = ?1 ORDER BY at, id",
        space,
    )
}

/// The problems recorded for a space.
pub(crate) fn problems(conn: &Connection, space: &SpaceId) -> Result<Vec<String>, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT collection, id, error FROM rm_problems WHERE space = ?1 ORDER BY collection, id",
    )?;
    let rows = stmt.query_map(params![space.to_string()], |r| {
        Ok(format!(
            "{} {}: {}",
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?
        ))
    })?;
    let mut out: Vec<String> = rows.collect::<Result<_, _>>()?;
    out.sort();
    Ok(out)
}
