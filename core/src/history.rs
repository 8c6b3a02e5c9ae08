//! The joint history: what each change of a space's document did, as domain events.
//!
//! Events are derived from the operations inside the changes (which object and property
//! each one touched, resolved to a path like `goals/<id>/status`), never from commit
//! messages, which are only labels. Changes are ordered causally (a change never comes
//! before one it depends on) and, among changes that are free to go next, by the
//! author's timestamp and then by hash. So device clocks influence only the order of
//! concurrent changes, a wrong clock can never put an effect before its cause, and every
//! device holding the same changes computes the same history.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use automerge::legacy::{Key, ObjectId, OpId, OpType};
use automerge::{Change, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use serde::{Deserialize, Serialize};

use crate::doc::{DocError, SpaceDoc};
use crate::event::SpaceId;
use crate::identity::DeviceKey;
use crate::identity::Identity;
use crate::membership::Member;
use crate::readmodel::Parts;
use crate::store::{Store, StoreError};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum HistoryKind {
    /// A goal was created.
    GoalCreated,
    /// A goal's field changed.
    FieldEdited,
    /// A goal's status changed.
    StatusChanged,
    /// A step was added.
    StepAdded,
    /// A step was marked done.
    StepDone,
    /// A partner rated a goal.
    RatingGiven,
    /// A reflection was written.
    ReflectionWritten,
    /// A person joined or changed their name.
    PersonNamed,
    /// A device joined a space (membership event).
    DeviceJoined,
    /// A member removed a device (membership event).
    DeviceRemoved,
    /// This device refused what a device sent (it broke the owner rules, forged its
    /// authorship or did not decrypt): nothing of it was applied.
    ChangeRefused,
}

/// One domain event of the history. Field names are stable (JSON Lines output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    /// Kind of event.
    pub kind: HistoryKind,
    /// Author's clock, ms since epoch.
    pub at: i64,
    /// Person id of the author (via the device that made the change).
    pub author: Option<String>,
    /// Author's display name.
    pub author_name: String,
    /// Hex device key that made the change.
    pub device: String,
    /// Hex hash of the Automerge change.
    pub change: String,
    /// Goal concerned.
    pub goal: Option<String>,
    /// The goal's current title.
    pub goal_title: Option<String>,
    /// Which field (for edits): title, why, area, due, owner, weight, level:-2..level:2.
    pub field: Option<String>,
    /// Value before (short fields, as the author saw it).
    pub before: Option<String>,
    /// Value after.
    pub after: Option<String>,
    /// GAS level, for ratings.
    pub level: Option<i64>,
    /// Id of the step, rating or reflection concerned.
    pub item: Option<String>,
    /// One readable line.
    pub summary: String,
}

impl HistoryEvent {
    /// An event of `kind` by an author, with every optional field empty and no summary.
    pub(crate) fn by(
        kind: HistoryKind,
        at: i64,
        author: Option<String>,
        author_name: String,
        device: String,
        change: String,
    ) -> HistoryEvent {
        HistoryEvent {
            kind,
            at,
            author,
            author_name,
            device,
            change,
            goal: None,
            goal_title: None,
            field: None,
            before: None,
            after: None,
            level: None,
            item: None,
            summary: String::new(),
        }
    }
}

/// Orders changes causally; ties (changes free to go next) by time, then hash.
pub fn causal_order(changes: Vec<Change>) -> Vec<Change> {
    let meta: Vec<(ChangeHash, i64, Vec<ChangeHash>)> = changes
        .iter()
        .map(|c| (c.hash(), c.timestamp(), c.deps().to_vec()))
        .collect();
    let mut by_hash: HashMap<ChangeHash, Change> =
        changes.into_iter().map(|c| (c.hash(), c)).collect();
    causal_order_of(&meta)
        .into_iter()
        .filter_map(|h| by_hash.remove(&h))
        .collect()
}

/// [`causal_order`] over change metadata: (hash, timestamp, deps). Deps outside the set
/// are ignored.
pub fn causal_order_of(changes: &[(ChangeHash, i64, Vec<ChangeHash>)]) -> Vec<ChangeHash> {
    let time: HashMap<ChangeHash, i64> = changes.iter().map(|(h, t, _)| (*h, *t)).collect();
    let mut waiting: HashMap<ChangeHash, usize> = HashMap::new();
    let mut dependents: HashMap<ChangeHash, Vec<ChangeHash>> = HashMap::new();
    let mut ready = BinaryHeap::new();
    for (hash, at, deps) in changes {
        let missing: Vec<ChangeHash> = deps
            .iter()
            .copied()
            .filter(|d| time.contains_key(d))
            .collect();
        if missing.is_empty() {
            ready.push(Reverse((*at, *hash)));
        } else {
            waiting.insert(*hash, missing.len());
            for d in missing {
                dependents.entry(d).or_default().push(*hash);
            }
        }
    }
    let mut out = Vec::with_capacity(changes.len());
    let mut done: std::collections::HashSet<ChangeHash> = std::collections::HashSet::new();
    while let Some(Reverse((_, h))) = ready.pop() {
        if !done.insert(h) {
            continue;
        }
        for d in dependents.remove(&h).unwrap_or_default() {
            if let Some(n) = waiting.get_mut(&d) {
                *n -= 1;
                if *n == 0 {
                    waiting.remove(&d);
                    if let Some(t) = time.get(&d) {
                        ready.push(Reverse((*t, d)));
                    }
                }
            }
        }
        out.push(h);
    }
    out
}

fn short_text(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let cut: String = s.chars().take(MAX - 1).collect();
        format!("{cut}…")
    }
}

fn scalar_text(v: &ScalarValue) -> Option<String> {
    match v {
        ScalarValue::Str(s) => Some(s.to_string()),
        ScalarValue::Int(i) => Some(i.to_string()),
        ScalarValue::Uint(i) => Some(i.to_string()),
        ScalarValue::F64(f) => Some(f.to_string()),
        ScalarValue::Boolean(b) => Some(b.to_string()),
        ScalarValue::Null => None,
        other => Some(other.to_string()),
    }
}

/// Reads goals and their fields from the document, at its current state or at given heads.
pub(crate) struct Resolver<'a> {
    doc: &'a automerge::Automerge,
    goals: Option<ObjId>,
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(doc: &'a automerge::Automerge) -> Resolver<'a> {
        let goals = match doc.get(ROOT, "goals") {
            Ok(Some((Value::Object(ObjType::Map), id))) => Some(id),
            _ => None,
        };
        Resolver { doc, goals }
    }

    fn map_child(&self, obj: &ObjId, key: &str) -> Option<ObjId> {
        match self.doc.get(obj, key).ok()? {
            Some((Value::Object(_), id)) => Some(id),
            _ => None,
        }
    }

    fn goal(&self, goal: &str) -> Option<ObjId> {
        self.map_child(self.goals.as_ref()?, goal)
    }

    /// The object at a path below a goal (e.g. ["title"], ["levels", "expected"]).
    fn goal_path(&self, goal: &str, path: &[&str]) -> Option<ObjId> {
        let mut obj = self.goal(goal)?;
        for p in path {
            obj = self.map_child(&obj, p)?;
        }
        Some(obj)
    }

    fn text_at(&self, obj: &ObjId, heads: &[ChangeHash]) -> Option<String> {
        self.doc.text_at(obj, heads).ok()
    }

    pub(crate) fn title(&self, goal: &str) -> Option<String> {
        let t = self.goal_path(goal, &["title"])?;
        self.doc.text(&t).ok()
    }

    fn scalar_at(&self, obj: &ObjId, key: &str, heads: &[ChangeHash]) -> Option<String> {
        match self.doc.get_at(obj, key, heads).ok()? {
            Some((Value::Scalar(v), _)) => scalar_text(&v),
            _ => None,
        }
    }
}

fn level_field(name: &str) -> &str {
    match name {
        "much_less" => "level:-2",
        "less" => "level:-1",
        "expected" => "level:0",
        "more" => "level:+1",
        "much_more" => "level:+2",
        other => other,
    }
}

/// Derives the history of a space's document. `devices` maps every device that was ever
/// a member to its person (from the membership events).
pub fn history(
    doc: &SpaceDoc,
    devices: &BTreeMap<DeviceKey, Member>,
) -> Result<Vec<HistoryEvent>, DocError> {
    let am = doc.automerge();
    let people = names(&doc.people()?);
    let r = Resolver::new(am);
    let mut paths = Paths::default();
    let mut out = Vec::new();
    for change in causal_order(am.get_changes(&[])) {
        out.extend(change_events(&r, &mut paths, &change));
    }
    name_events(&mut out, devices, &people, &|g| r.title(g));
    Ok(out)
}

/// What `duet history` asks for.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    /// Only events about this goal id.
    pub goal: Option<String>,
    /// Only events at or after this time (ms).
    pub since: Option<i64>,
    /// Only events before this time (ms).
    pub until: Option<i64>,
    /// Only events by the person of this name (case-insensitive).
    pub by: Option<String>,
    /// Only the last N events.
    pub last: Option<usize>,
}

/// The joint history of a space as `duet history` shows it, from the read models
/// (never loading the document): the document's events in history order, each device
/// joining or being removed placed before the first event later than it, filtered, with
/// names and titles as they are now.
pub fn timeline(
    store: &mut Store,
    space: &SpaceId,
    me: &Identity,
    q: &HistoryQuery,
) -> Result<Vec<HistoryEvent>, StoreError> {
    // A name filter needs the names, which are resolved after the query.
    let last = if q.by.is_some() { None } else { q.last };
    let rows = store.history_rows(space, me, q, last)?;
    let view = store.view(space, me, Parts::Goals)?;
    let people = names(&view.people);
    let titles: HashMap<&str, String> = view
        .goals
        .iter()
        .map(|g| (g.id.as_str(), g.title.as_str().to_string()))
        .collect();
    // Decoded (and verified) once, for both the authors' persons and the membership events.
    let stored = store.stored_events(space)?;
    let devices = crate::membership::SpaceState::fold(&stored);
    let (keys, mut events): (Vec<(i64, i64)>, Vec<HistoryEvent>) = rows.into_iter().unzip();
    name_events(&mut events, devices.all_devices(), &people, &|g| {
        titles.get(g).cloned()
    });
    // Merge by (position, 0 = membership first, order among equals).
    let mut merged: Vec<((i64, i64), u8, usize, HistoryEvent)> = keys
        .into_iter()
        .zip(events)
        .enumerate()
        .map(|(i, (k, e))| (k, 1, i, e))
        .collect();
    for (i, m) in membership_history(&stored, &people).into_iter().enumerate() {
        let keep = q.goal.is_none()
            && q.since.is_none_or(|s| m.at >= s)
            && q.until.is_none_or(|u| m.at < u);
        if keep {
            let at = store
                .history_first_after(space, m.at)?
                .unwrap_or((i64::MAX, i64::MAX));
            merged.push((at, 0, i, m));
        }
    }
    let refused = store.refused_events(space)?;
    for (i, r) in refused_history(&refused, &devices, &people)
        .into_iter()
        .enumerate()
    {
        let keep = q.since.is_none_or(|s| r.at >= s) && q.until.is_none_or(|u| r.at < u);
        if keep {
            let at = store
                .history_first_after(space, r.at)?
                .unwrap_or((i64::MAX, i64::MAX));
            merged.push((at, 2, i, r));
        }
    }
    merged.sort_by_key(|(k, kind, i, _)| (*k, *kind, *i));
    let mut out: Vec<HistoryEvent> = merged.into_iter().map(|(_, _, _, e)| e).collect();
    if let Some(b) = &q.by {
        out.retain(|e| e.author_name.eq_ignore_ascii_case(b));
    }
    if let Some(n) = q.last {
        let skip = out.len().saturating_sub(n);
        out.drain(..skip);
    }
    Ok(out)
}

/// Person id -> display name.
pub fn names(people: &BTreeMap<String, crate::model::Person>) -> BTreeMap<String, String> {
    people
        .iter()
        .map(|(k, p)| (k.clone(), p.name.clone()))
        .collect()
}

/// Fills in what an event shows but its change does not fix: the author's person and
/// current name, the goal's current title, and the summary line.
pub fn name_events(
    events: &mut [HistoryEvent],
    devices: &BTreeMap<DeviceKey, Member>,
    people: &BTreeMap<String, String>,
    title: &dyn Fn(&str) -> Option<String>,
) {
    let mut titles: HashMap<String, Option<String>> = HashMap::new();
    for ev in events {
        let device: Option<DeviceKey> =
            hex::decode(&ev.device).ok().and_then(|b| b.try_into().ok());
        ev.author = device
            .as_ref()
            .and_then(|d| devices.get(d))
            .map(|m| hex::encode(m.person));
        ev.author_name = ev
            .author
            .as_ref()
            .and_then(|p| people.get(p).cloned())
            .unwrap_or_else(|| format!("device {}", &ev.device[..8.min(ev.device.len())]));
        if let Some(g) = &ev.goal {
            ev.goal_title = titles.entry(g.clone()).or_insert_with(|| title(g)).clone();
        }
        ev.summary = summary(ev, people);
    }
}

/// A property key as a path segment: the map key, or `#` for a list position.
pub(crate) fn key_text(key: &Key) -> String {
    match key {
        Key::Map(s) => s.to_string(),
        Key::Seq(_) => "#".to_string(),
    }
}

/// Paths of the document's objects (`goals/<id>/title`). Objects made by the changes
/// walked so far are placed from their make operation; any other is looked up in the
/// document (which costs a search of its operations, so results are remembered).
#[derive(Default)]
pub(crate) struct Paths {
    known: HashMap<OpId, Option<Vec<String>>>,
}

impl Paths {
    /// Records that operation `id` made an object at `key` of `parent`.
    pub(crate) fn made(
        &mut self,
        am: &automerge::Automerge,
        id: OpId,
        parent: &ObjectId,
        key: &Key,
    ) {
        let path = self.of(am, parent).map(|mut p| {
            p.push(key_text(key));
            p
        });
        self.known.insert(id, path);
    }

    pub(crate) fn of(&mut self, am: &automerge::Automerge, obj: &ObjectId) -> Option<Vec<String>> {
        let ObjectId::Id(id) = obj else {
            return Some(Vec::new());
        };
        self.known
            .entry(id.clone())
            .or_insert_with(|| {
                // `import_obj` is how Automerge turns an operation id into an object id
                // of this document.
                let exid = am
                    .import_obj(&format!("{}@{}", id.0, id.1.to_hex_string()))
                    .ok()?;
                let path = am.parents(exid).ok()?.path();
                Some(
                    path.into_iter()
                        .map(|(_, prop)| match prop {
                            automerge::Prop::Map(s) => s,
                            automerge::Prop::Seq(_) => "#".to_string(),
                        })
                        .collect(),
                )
            })
            .clone()
    }
}

/// The events one change made, in a stable order, before names, titles and summaries
/// are filled in ([`name_events`]). They depend only on the change and the document
/// state it was made on, so a read model can keep them.
pub(crate) fn change_events(
    r: &Resolver<'_>,
    paths: &mut Paths,
    change: &Change,
) -> Vec<HistoryEvent> {
    let ex = change.decode();
    let actor = ex.actor_id.clone();
    let hash = change.hash();
    let deps = change.deps().to_vec();
    let after_heads = [hash];
    let base = HistoryEvent::by(
        HistoryKind::GoalCreated,
        change.timestamp(),
        None,
        String::new(),
        actor.to_hex_string(),
        hex::encode(hash.0),
    );
    // Events of this change, keyed to merge many ops into one event.
    let mut events: BTreeMap<(HistoryKind, String, String), HistoryEvent> = BTreeMap::new();
    // Objects created in this change -> the event key they belong to.
    let mut created_here: HashMap<OpId, (HistoryKind, String, String)> = HashMap::new();
    let mut goals_created: Vec<String> = Vec::new();
    let start = ex.start_op.get();
    for (i, op) in ex.operations.iter().enumerate() {
        let id = OpId(start + i as u64, actor.clone());
        // Path of the object the op acts on (empty if the document cannot place it).
        let path = paths.of(r.doc, &op.obj).unwrap_or_default();
        if let OpType::Make(_) = op.action {
            paths.made(r.doc, id.clone(), &op.obj, &op.key);
        }
        let key = key_text(&op.key);
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        let make = matches!(op.action, OpType::Make(_));
        let value = match &op.action {
            OpType::Put(v) => scalar_text(v),
            _ => None,
        };
        // Parent-object fill-ins (fields of a rating/reflection/step/person created here).
        if let ObjectId::Id(parent) = &op.obj
            && let Some(k) = created_here.get(parent).cloned()
        {
            {
                if let Some(ev) = events.get_mut(&k) {
                    match (ev.kind, key.as_str()) {
                        (HistoryKind::RatingGiven, "goal")
                        | (HistoryKind::ReflectionWritten, "goal") => ev.goal = value.clone(),
                        (HistoryKind::RatingGiven, "level") => {
                            ev.level = value.as_deref().and_then(|v| v.parse().ok())
                        }
                        (HistoryKind::RatingGiven, "note") => ev.after = value.clone(),
                        (HistoryKind::PersonNamed, "name") => ev.after = value.clone(),
                        _ => {}
                    }
                }
                continue;
            }
        }
        let mut push =
            |kind: HistoryKind, goal: Option<&str>, item: &str, field: Option<String>| {
                let k = (
                    kind,
                    goal.unwrap_or("").to_string(),
                    format!("{item}|{}", field.clone().unwrap_or_default()),
                );
                events.entry(k.clone()).or_insert_with(|| HistoryEvent {
                    kind,
                    goal: goal.map(str::to_string),
                    field,
                    item: (!item.is_empty()).then(|| item.to_string()),
                    ..base.clone()
                });
                k
            };
        match p.as_slice() {
            ["goals"] if make => {
                goals_created.push(key.clone());
                let k = push(HistoryKind::GoalCreated, Some(&key), "", None);
                created_here.insert(id, k);
            }
            ["goals", g] if !goals_created.iter().any(|c| c == g) => match key.as_str() {
                "status" => {
                    let k = push(
                        HistoryKind::StatusChanged,
                        Some(g),
                        "",
                        Some("status".into()),
                    );
                    if let (Some(ev), Some(obj)) = (events.get_mut(&k), r.goal(g)) {
                        ev.before = r.scalar_at(&obj, "status", &deps);
                        ev.after = value.clone();
                    }
                }
                "area" | "due" | "owner" => {
                    let k = push(HistoryKind::FieldEdited, Some(g), "", Some(key.clone()));
                    if let (Some(ev), Some(obj)) = (events.get_mut(&k), r.goal(g)) {
                        ev.before = r.scalar_at(&obj, &key, &deps);
                        ev.after = value.clone();
                    }
                }
                _ => {}
            },
            ["goals", g, field @ ("title" | "why")]
            | ["goals", g, field @ ("title" | "why"), ..]
                if !goals_created.iter().any(|c| c == g) =>
            {
                let field = field.to_string();
                let k = push(HistoryKind::FieldEdited, Some(g), "", Some(field.clone()));
                if let (Some(ev), Some(obj)) = (events.get_mut(&k), r.goal_path(g, &[&field])) {
                    ev.before = r.text_at(&obj, &deps).map(|t| short_text(&t));
                    ev.after = r.text_at(&obj, &after_heads).map(|t| short_text(&t));
                }
            }
            ["goals", g, "levels", lv, ..] if !goals_created.iter().any(|c| c == g) => {
                let lv = lv.to_string();
                let k = push(
                    HistoryKind::FieldEdited,
                    Some(g),
                    "",
                    Some(level_field(&lv).to_string()),
                );
                if let (Some(ev), Some(obj)) =
                    (events.get_mut(&k), r.goal_path(g, &["levels", &lv]))
                {
                    ev.before = r.text_at(&obj, &deps).map(|t| short_text(&t));
                    ev.after = r.text_at(&obj, &after_heads).map(|t| short_text(&t));
                }
            }
            ["goals", g, "weights"] if !goals_created.iter().any(|c| c == g) => {
                let k = push(
                    HistoryKind::FieldEdited,
                    Some(g),
                    &key,
                    Some("weight".into()),
                );
                if let Some(ev) = events.get_mut(&k) {
                    ev.after = value.clone();
                }
            }
            ["goals", g, "steps"] if make && !goals_created.iter().any(|c| c == g) => {
                let k = push(HistoryKind::StepAdded, Some(g), &key, None);
                if let (Some(ev), Some(obj)) =
                    (events.get_mut(&k), r.goal_path(g, &["steps", &key, "text"]))
                {
                    ev.after = r.text_at(&obj, &after_heads).map(|t| short_text(&t));
                }
                created_here.insert(id, k);
            }
            ["goals", g, "steps", s] if key == "done_at" && value.is_some() => {
                let k = push(HistoryKind::StepDone, Some(g), s, None);
                if let (Some(ev), Some(obj)) =
                    (events.get_mut(&k), r.goal_path(g, &["steps", s, "text"]))
                {
                    ev.after = r.text_at(&obj, &after_heads).map(|t| short_text(&t));
                }
            }
            ["ratings"] if make => {
                let k = push(HistoryKind::RatingGiven, None, &key, None);
                created_here.insert(id, k);
            }
            ["reflections"] if make => {
                let k = push(HistoryKind::ReflectionWritten, None, &key, None);
                created_here.insert(id, k);
            }
            ["people"] if make => {
                let k = push(HistoryKind::PersonNamed, None, &key, None);
                created_here.insert(id, k);
            }
            ["people", who] if key == "name" => {
                let k = push(HistoryKind::PersonNamed, None, who, None);
                if let Some(ev) = events.get_mut(&k) {
                    ev.after = value.clone();
                }
            }
            _ => {}
        }
    }
    // Finish: the title a new goal was given, in a stable order within the change.
    let mut evs: Vec<HistoryEvent> = events.into_values().collect();
    evs.sort_by_key(|e| (e.kind, e.goal.clone(), e.item.clone()));
    for ev in &mut evs {
        if ev.kind == HistoryKind::GoalCreated
            && let Some(obj) = ev.goal.as_deref().and_then(|g| r.goal_path(g, &["title"]))
        {
            ev.after = r.text_at(&obj, &after_heads);
        }
    }
    evs
}

fn summary(ev: &HistoryEvent, people: &BTreeMap<String, String>) -> String {
    let who = &ev.author_name;
    let goal = ev
        .goal_title
        .clone()
        .map(|t| format!("\"{t}\""))
        .unwrap_or_else(|| "a goal".into());
    let q = |s: &Option<String>| {
        s.clone()
            .map(|s| format!("\"{s}\""))
            .unwrap_or_else(|| "(none)".into())
    };
    match ev.kind {
        HistoryKind::GoalCreated => format!("{who} created goal {}", q(&ev.after)),
        HistoryKind::FieldEdited => format!(
            "{who} changed the {} of {goal}: {} -> {}",
            ev.field.as_deref().unwrap_or("field"),
            q(&ev.before),
            q(&ev.after)
        ),
        HistoryKind::StatusChanged => format!(
            "{who} set {goal} from {} to {}",
            ev.before.as_deref().unwrap_or("?"),
            ev.after.as_deref().unwrap_or("?")
        ),
        HistoryKind::StepAdded => format!("{who} added step {} to {goal}", q(&ev.after)),
        HistoryKind::StepDone => format!("{who} completed step {} of {goal}", q(&ev.after)),
        HistoryKind::RatingGiven => {
            let level = ev
                .level
                .and_then(|l| crate::Level::try_from(l).ok())
                .map(|l| format!("{l} ({})", l.meaning()))
                .unwrap_or_else(|| "?".into());
            let note = ev
                .after
                .as_ref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default();
            format!("{who} rated {goal} {level}{note}")
        }
        HistoryKind::ReflectionWritten => match &ev.goal {
            Some(_) => format!("{who} wrote a reflection on {goal}"),
            None => format!("{who} wrote a reflection"),
        },
        HistoryKind::DeviceJoined => format!(
            "a device of {} joined ({})",
            ev.before.as_deref().unwrap_or("someone"),
            ev.item
                .as_deref()
                .map(|d| &d[..12.min(d.len())])
                .unwrap_or("?")
        ),
        HistoryKind::DeviceRemoved => format!(
            "{who} removed device {} of {}",
            ev.item
                .as_deref()
                .map(|d| &d[..12.min(d.len())])
                .unwrap_or("?"),
            ev.before.as_deref().unwrap_or("someone")
        ),
        HistoryKind::PersonNamed => {
            let name = ev
                .after
                .clone()
                .or_else(|| ev.item.as_ref().and_then(|p| people.get(p).cloned()))
                .unwrap_or_default();
            format!("{name} joined the space")
        }
        HistoryKind::ChangeRefused => format!(
            "REFUSED a change from {who}'s device {}: {}; nothing of it was applied",
            &ev.device[..12.min(ev.device.len())],
            ev.after.as_deref().unwrap_or("")
        ),
    }
}

/// What this device refused of what others sent, as history: the device that signed
/// it, its person, and why (the reason is in `after`). `state` is the space's folded
/// membership, which the caller already holds.
pub fn refused_history(
    refused: &[crate::store::RefusedRecord],
    state: &crate::membership::SpaceState,
    people: &BTreeMap<String, String>,
) -> Vec<HistoryEvent> {
    refused
        .iter()
        .map(|(hash, reason, bytes, at)| {
            let ev = crate::event::Event::decode(bytes.clone()).ok();
            let device = ev.as_ref().map(|e| e.header().author);
            let person =
                device.and_then(|d| state.all_devices().get(&d).map(|m| hex::encode(m.person)));
            let name = person
                .as_ref()
                .and_then(|p| people.get(p).cloned())
                .unwrap_or_else(|| "an unknown device".into());
            let mut e = HistoryEvent::by(
                HistoryKind::ChangeRefused,
                ev.as_ref().map_or(*at, |e| e.header().time),
                person,
                name,
                device.map(hex::encode).unwrap_or_default(),
                hex::encode(hash),
            );
            e.after = Some(reason.clone());
            e.summary = summary(&e, people);
            e
        })
        .collect()
}

/// Membership events of a space as history: devices joining and being removed (who
/// removed whom, and when). `events` are the space's events in the relay's order.
pub fn membership_history(
    events: &[crate::event::Event],
    people: &BTreeMap<String, String>,
) -> Vec<HistoryEvent> {
    use crate::event::MembershipOp;
    let mut state = crate::membership::SpaceState::default();
    let mut out = Vec::new();
    for ev in events {
        let before = state.clone();
        if state.admit(ev, None).is_err() {
            continue;
        }
        let name_of = |device: &DeviceKey| -> (Option<String>, String) {
            let person = state
                .all_devices()
                .get(device)
                .or_else(|| before.all_devices().get(device))
                .map(|m| hex::encode(m.person));
            let name = person
                .as_ref()
                .and_then(|p| people.get(p).cloned())
                .unwrap_or_else(|| "someone".into());
            (person, name)
        };
        let h = ev.header();
        let (author, author_name) = name_of(&h.author);
        let base = HistoryEvent::by(
            HistoryKind::DeviceJoined,
            h.time,
            author,
            author_name,
            hex::encode(h.author),
            hex::encode(ev.hash()),
        );
        let mut e = match MembershipOp::decode(ev) {
            Ok(MembershipOp::Join { .. }) | Ok(MembershipOp::Genesis { .. }) => HistoryEvent {
                item: Some(hex::encode(h.author)),
                before: Some(base.author_name.clone()),
                ..base
            },
            Ok(MembershipOp::Remove { device, .. }) => HistoryEvent {
                kind: HistoryKind::DeviceRemoved,
                item: Some(hex::encode(device)),
                before: Some(name_of(&device).1),
                ..base
            },
            _ => continue,
        };
        e.summary = summary(&e, people);
        out.push(e);
    }
    out
}
