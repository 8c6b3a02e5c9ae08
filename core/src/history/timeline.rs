//! The joint history as `duet history` shows it, read from a store's read models (never
//! loading the document). The store is reached through [`TimelineSource`], so the
//! history does not depend on the store (the store depends on the history).

use std::collections::{BTreeMap, HashMap};

use super::counted::CountedActs;
use super::{HistoryEvent, HistoryKind, HistoryPos, HistoryRow, RefusedRecord};
use super::{membership_history, name_events, refused_history};
use crate::event::{Event, SpaceId};
use crate::identity::Identity;
use crate::membership::SpaceState;
use crate::model::{Goal, Person};

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

impl HistoryQuery {
    /// Whether a time is within the query's `since` and `until`.
    fn in_window(&self, at: i64) -> bool {
        self.since.is_none_or(|s| at >= s) && self.until.is_none_or(|u| at < u)
    }
}

/// Every person of a space by person id, and every goal.
pub type PeopleAndGoals = (BTreeMap<String, Person>, Vec<Goal>);

/// What [`timeline`] reads: a device's read models and event log (the store implements
/// it). The read models are made current by the first of these calls if they are not.
pub trait TimelineSource {
    /// What a failed read returns.
    type Error;

    /// The stored history events matching the goal and time filters of `q` (not the
    /// name), in history order, each with its position; `last` keeps only the last N.
    fn history_rows(
        &mut self,
        space: &SpaceId,
        identity: &Identity,
        q: &HistoryQuery,
        last: Option<usize>,
    ) -> Result<Vec<HistoryRow>, Self::Error>;

    /// The acts readers count of those two devices may both have made: each seal's
    /// first reveal, each round's close ([`CountedActs`]).
    fn counted_acts(
        &mut self,
        space: &SpaceId,
        identity: &Identity,
    ) -> Result<CountedActs, Self::Error>;

    /// Every person of the space by person id, and every goal.
    fn people_and_goals(
        &mut self,
        space: &SpaceId,
        identity: &Identity,
    ) -> Result<PeopleAndGoals, Self::Error>;

    /// The space's events in the relay's order (decoded and verified).
    fn stored_events(&self, space: &SpaceId) -> Result<Vec<Event>, Self::Error>;

    /// What this device refused of what others sent to the space.
    fn refused_events(&self, space: &SpaceId) -> Result<Vec<RefusedRecord>, Self::Error>;

    /// The position of the first stored history event later than `at`.
    fn history_first_after(
        &self,
        space: &SpaceId,
        at: i64,
    ) -> Result<Option<HistoryPos>, Self::Error>;
}

/// An event with where it goes: (position, 0 = membership, 1 = document, 2 = refused,
/// order among equals).
type Placed = (HistoryPos, u8, usize, HistoryEvent);

/// Document events fetched past a query's last N on the first try: second reveals (not
/// shown) leave the window short, which a wider fetch then makes up.
const WINDOW_MARGIN: usize = 16;

/// The joint history of a space as `duet history` shows it, from the read models: the
/// document's events in history order, each device joining or being removed (and each
/// refused change) placed before the first event later than it, filtered, with names
/// and titles as they are now. With a last N (and no name filter), only the end of the
/// document's events is read: a window wide enough to hold N shown events, which is
/// then the same as the end of the whole history.
pub fn timeline<S: TimelineSource>(
    store: &mut S,
    space: &SpaceId,
    me: &Identity,
    q: &HistoryQuery,
) -> Result<Vec<HistoryEvent>, S::Error> {
    // A name filter needs the names, which are resolved after the query.
    let last = if q.by.is_some() { None } else { q.last };
    // Read once, however often the window of document events grows.
    let around = Around::read(store, space, me, q)?;
    let mut fetch = last.map(|n| n.saturating_add(WINDOW_MARGIN));
    loop {
        let rows = store.history_rows(space, me, q, fetch)?;
        // The first row read, when rows before it were left unread.
        let start = match fetch {
            Some(m) if rows.len() >= m => rows.first().map(|(k, _)| *k),
            _ => None,
        };
        let shown = around.merged(rows, start);
        match (last, fetch, start) {
            (Some(n), Some(m), Some(_)) if shown.len() < n => fetch = Some(m.saturating_mul(4)),
            _ => return Ok(filter_tail(shown, q)),
        }
    }
}

/// What the history places around the document's events: each seal's first reveal,
/// the names and titles they are read with, who each device is, and the events from
/// outside the document (devices joining or removed, refused changes) with their places.
struct Around {
    counted: CountedActs,
    people: BTreeMap<String, String>,
    titles: HashMap<String, String>,
    devices: SpaceState,
    placed: Vec<Placed>,
}

impl Around {
    fn read<S: TimelineSource>(
        store: &mut S,
        space: &SpaceId,
        me: &Identity,
        q: &HistoryQuery,
    ) -> Result<Around, S::Error> {
        let counted = store.counted_acts(space, me)?;
        let (people, goals) = store.people_and_goals(space, me)?;
        let people = crate::names::shown(&people);
        let titles = goals
            .iter()
            .map(|g| (g.id.clone(), g.title.as_str().to_string()))
            .collect();
        // Decoded (and verified) once, for the authors' persons and the membership events.
        let stored = store.stored_events(space)?;
        let devices = SpaceState::fold(&stored);
        let mut placed = Vec::new();
        let membership = membership_history(&stored, &people)
            .into_iter()
            .filter(|m| q.goal.is_none() && q.in_window(m.at));
        place(store, space, &mut placed, 0, membership)?;
        let refused = store.refused_events(space)?;
        let refused = refused_history(&refused, &devices, &people)
            .into_iter()
            .filter(|r| q.in_window(r.at));
        place(store, space, &mut placed, 2, refused)?;
        Ok(Around {
            counted,
            people,
            titles,
            devices,
            placed,
        })
    }

    /// The document's `rows` with the events from outside the document placed among
    /// them, in history order; with `start`, only what goes at or after the row there.
    fn merged(&self, mut rows: Vec<HistoryRow>, start: Option<HistoryPos>) -> Vec<HistoryEvent> {
        self.counted.drop_uncounted(&mut rows);
        // A reflection edit's `after` is a digest kept to tell merges by, not to show.
        for (_, e) in &mut rows {
            if e.kind == HistoryKind::ReflectionEdited {
                e.after = None;
            }
        }
        let (keys, mut events): (Vec<HistoryPos>, Vec<HistoryEvent>) = rows.into_iter().unzip();
        name_events(
            &mut events,
            self.devices.all_devices(),
            &self.people,
            &|g| self.titles.get(g).cloned(),
        );
        let mut merged: Vec<Placed> = keys
            .into_iter()
            .zip(events)
            .enumerate()
            .map(|(i, (k, e))| (k, 1, i, e))
            .collect();
        // Placed before the first row read: it goes among the rows left unread.
        merged.extend(
            self.placed
                .iter()
                .filter(|(k, _, _, _)| start.is_none_or(|s| *k >= s))
                .cloned(),
        );
        merged.sort_by_key(|(k, kind, i, _)| (*k, *kind, *i));
        merged.into_iter().map(|(_, _, _, e)| e).collect()
    }
}

/// Adds events from outside the document, each before the first document event later
/// than it (at the end when there is none).
fn place<S: TimelineSource>(
    store: &S,
    space: &SpaceId,
    merged: &mut Vec<Placed>,
    kind: u8,
    events: impl Iterator<Item = HistoryEvent>,
) -> Result<(), S::Error> {
    for (i, e) in events.enumerate() {
        let at = store
            .history_first_after(space, e.at)?
            .unwrap_or((i64::MAX, i64::MAX));
        merged.push((at, kind, i, e));
    }
    Ok(())
}

/// The query's name filter and its last N, applied to the merged history.
fn filter_tail(mut out: Vec<HistoryEvent>, q: &HistoryQuery) -> Vec<HistoryEvent> {
    if let Some(b) = &q.by {
        out.retain(|e| e.author_name.eq_ignore_ascii_case(b));
    }
    if let Some(n) = q.last {
        let skip = out.len().saturating_sub(n);
        out.drain(..skip);
    }
    out
}
