//! The progress summary of a space kept as a read model (`rm_progress`), so that
//! `duet progress` reads what it prints instead of every rating: each goal's latest
//! levels, gap and counts, the current T-scores, and the latest points of each series
//! ([`Progress::bounded`]), with the last rating it counted.
//!
//! A refresh that only adds ratings given after that one (by time, then id), that
//! correct or withdraw nothing, counts them in ([`Progress::append`]); a new seal or
//! revealed rating also updates who has rated blind. Anything else (a goal or person
//! changed, a correction, a rating that sorts earlier, as a partner's offline ratings
//! can) computes the summary again from every rating, as a rebuild does.

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::entity::Collection;
use super::schema::{exec, json, parse};
use super::{View, queries};
use crate::event::SpaceId;
use crate::model::Rating;
use crate::progress::Progress;

/// The table (a store migration creates it; [`super::VERSION`] 6 fills it).
pub(crate) const PROGRESS_SCHEMA: &str = r#"
CREATE TABLE rm_progress (
    space TEXT PRIMARY KEY,
    json TEXT NOT NULL
);
"#;

/// What is kept for a space.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// The bounded progress over the goals in scope.
    pub progress: Progress,
    /// The last rating counted, as (time, id); `None` before the first.
    pub last: Option<(i64, String)>,
}

impl Summary {
    /// Counts in a plain rating (correcting and withdrawing nothing) that comes after
    /// the last one counted (by time, then id), as the full computation would; `false`
    /// when it cannot be counted so and the summary must be computed from everything.
    pub(crate) fn count_in(&mut self, r: &Rating) -> bool {
        let plain = r.corrects.is_none() && r.withdrawn.is_none();
        let later = self
            .last
            .as_ref()
            .is_none_or(|(at, id)| (r.at, &r.id) > (*at, id));
        if !plain || !later || r.validate().is_err() || !self.progress.append(r) {
            return false;
        }
        self.last = Some((r.at, r.id.clone()));
        true
    }
}

impl Summary {
    /// The summary with each goal's `worth_talking` by today's rule: one kept by an
    /// earlier version marked a gap on a goal no longer active too.
    fn with_talk_rule(mut self) -> Self {
        for g in &mut self.progress.goals {
            g.worth_talking = crate::progress::worth_talking(g.gap, &g.status);
        }
        self
    }
}

/// The summary of a space, if one is kept.
pub(crate) fn summary(
    conn: &Connection,
    space: &SpaceId,
) -> Result<Option<Summary>, rusqlite::Error> {
    load(conn, &space.to_string())
}

fn load(conn: &Connection, sid: &str) -> Result<Option<Summary>, rusqlite::Error> {
    conn.prepare_cached("SELECT json FROM rm_progress WHERE space = ?1")?
        .query_row(params![sid], |r| r.get::<_, String>(0))
        .optional()?
        .map(|j| parse::<Summary>(&j))
        .transpose()
        .map(|s| s.map(Summary::with_talk_rule))
}

fn save(conn: &Connection, sid: &str, s: &Summary) -> Result<(), rusqlite::Error> {
    exec(
        conn,
        "INSERT INTO rm_progress (space, json) VALUES (?1, ?2)
         ON CONFLICT (space) DO UPDATE SET json = ?2",
        params![sid, json(s)?],
    )?;
    Ok(())
}

/// The ratings that count, and every seal, of the tables as they are: what
/// [`crate::progress::progress`] reads.
fn whole_view(conn: &Connection, space: &SpaceId) -> Result<View, rusqlite::Error> {
    let view = View {
        people: queries::people(conn, space)?,
        goals: queries::goals(conn, space)?,
        ratings: queries::ratings(conn, space)?,
        seals: queries::seals(conn, space)?,
        ..View::default()
    };
    Ok(crate::rituals::effective(view))
}

/// Computes a space's summary again from every rating in its tables.
pub(crate) fn recompute(conn: &Connection, space: &SpaceId) -> Result<(), rusqlite::Error> {
    let view = whole_view(conn, space)?;
    let last = view.ratings.iter().map(|r| (r.at, r.id.clone())).max();
    let progress = crate::progress::progress(&view, None).bounded();
    save(conn, &space.to_string(), &Summary { progress, last })
}

/// The blind ratings' state, small whatever the history: the ratings that reveal,
/// correct or withdraw another, and every seal. Withdrawn and corrected ratings stay:
/// a seal whose reveal was withdrawn is revealed all the same (not waiting again).
fn blind_view(conn: &Connection, space: &SpaceId) -> Result<View, rusqlite::Error> {
    Ok(View {
        ratings: queries::ritual_ratings(conn, space, false, None)?,
        seals: queries::seals(conn, space)?,
        ..View::default()
    })
}

/// `person`'s blind ratings still waiting to be revealed.
pub(crate) fn own_waiting_seals(
    conn: &Connection,
    space: &SpaceId,
    person: &str,
) -> Result<Vec<crate::model::Seal>, rusqlite::Error> {
    let blind = blind_view(conn, space)?;
    Ok(crate::rituals::waiting_seals(&blind)
        .into_iter()
        .filter(|s| s.rater == person)
        .cloned()
        .collect())
}

/// Sets who has rated blind and waits to be revealed, per goal and partner.
fn mark_sealed(progress: &mut Progress, blind: &View) {
    let waiting: BTreeSet<(&str, &str)> = crate::rituals::waiting_seals(blind)
        .into_iter()
        .map(|s| (s.goal.as_str(), s.rater.as_str()))
        .collect();
    for g in &mut progress.goals {
        for s in &mut g.partners {
            s.sealed = waiting.contains(&(g.goal.as_str(), s.person.as_str()));
        }
    }
}

thread_local! {
    /// Set while [`dropped_meanwhile`] runs on this thread.
    static DROPPED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with the summaries of the spaces it writes dropped (in each write's own
/// transaction) rather than kept up to date: for a run of many writes, each of which
/// reads every seal and may compute the summary from every rating (a sync's reveals:
/// one change each, hundreds after a partner's offline ratings, made the sync
/// quadratic). The next read computes the summary once (`Store::progress_summary`).
pub(crate) fn dropped_meanwhile<T>(f: impl FnOnce() -> T) -> T {
    let before = DROPPED.with(|d| d.replace(true));
    let out = f();
    DROPPED.with(|d| d.set(before));
    out
}

/// Brings a space's summary up to the entities a refresh just rewrote (`touched`) and
/// the collections it rewrote whole (`collections`: the first seal or round of a space
/// creates its map).
pub(super) fn update(
    conn: &Connection,
    space: &SpaceId,
    touched: &BTreeSet<(Collection, String)>,
    collections: &BTreeSet<Collection>,
) -> Result<(), rusqlite::Error> {
    if DROPPED.with(std::cell::Cell::get) {
        exec(
            conn,
            "DELETE FROM rm_progress WHERE space = ?1",
            params![space.to_string()],
        )?;
        return Ok(());
    }
    let counted = |c: &Collection| {
        matches!(
            c,
            Collection::People | Collection::Goals | Collection::Ratings
        )
    };
    let seals_rewritten = collections.contains(&Collection::Seals);
    if collections.iter().any(counted)
        || touched
            .iter()
            .any(|(c, _)| matches!(c, Collection::People | Collection::Goals))
    {
        return recompute(conn, space);
    }
    if !seals_rewritten
        && !touched
            .iter()
            .any(|(c, _)| matches!(c, Collection::Ratings | Collection::Seals))
    {
        return Ok(()); // reflections or rounds only
    }
    let sid = space.to_string();
    let Some(mut s) = load(conn, &sid)? else {
        return recompute(conn, space);
    };
    let blind = blind_view(conn, space)?;
    let mut new: Vec<Rating> = Vec::new();
    for (c, id) in touched {
        match c {
            Collection::Ratings => match rating(conn, &sid, id)? {
                Some(r) => new.push(r),
                // Gone, or no longer readable (now a listed problem).
                None => return recompute(conn, space),
            },
            Collection::Seals => {
                let corrects = blind
                    .seals
                    .iter()
                    .any(|seal| &seal.id == id && seal.corrects.is_some());
                if corrects {
                    return recompute(conn, space);
                }
            }
            _ => {}
        }
    }
    // A seal that corrects a rating takes it out: count again (of a rewritten seals
    // map, every seal is looked at).
    if seals_rewritten && blind.seals.iter().any(|seal| seal.corrects.is_some()) {
        return recompute(conn, space);
    }
    new.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    if !append_all(&mut s, &new, &blind) {
        return recompute(conn, space);
    }
    mark_sealed(&mut s.progress, &blind);
    save(conn, &sid, &s)
}

/// Counts `new` ratings (oldest first) into the summary; `false` when one of them cannot
/// simply be appended (it corrects or withdraws, reveals a seal revealed before, is
/// superseded, sorts before the last one counted, or is out of range): the summary is
/// then computed again from everything.
fn append_all(s: &mut Summary, new: &[Rating], blind: &View) -> bool {
    let superseded = crate::rituals::superseded(blind);
    for r in new {
        let first_reveal = r.reveals.as_deref().is_none_or(|seal| {
            blind
                .ratings
                .iter()
                .filter(|o| o.reveals.as_deref() == Some(seal))
                .all(|o| o.id == r.id)
        });
        if !first_reveal
            || superseded.contains(r.id.as_str())
            || r.reveals
                .as_deref()
                .is_some_and(|seal| superseded.contains(seal))
            || !s.count_in(r)
        {
            return false;
        }
    }
    true
}

/// One rating of the tables by id.
fn rating(conn: &Connection, sid: &str, id: &str) -> Result<Option<Rating>, rusqlite::Error> {
    conn.prepare_cached("SELECT json FROM rm_ratings WHERE space = ?1 AND id = ?2")?
        .query_row(params![sid, id], |r| r.get::<_, String>(0))
        .optional()?
        .map(|j| parse(&j))
        .transpose()
}
