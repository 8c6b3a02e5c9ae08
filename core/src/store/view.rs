//! Read-model plumbing: reading a space's typed content and history from its read-model
//! tables, and building them from the document when they are missing or stale.

use std::collections::BTreeMap;

use automerge::Change;

use super::{Store, StoreError};
use crate::doc::SpaceDoc;
use crate::event::SpaceId;
use crate::identity::Identity;
use crate::model::Person;
use crate::readmodel::{Parts, View};

impl Store {
    /// The typed content of a space from its read-model tables, rebuilding them from
    /// the document first if they are missing or of an older version. With
    /// [`Parts::Goals`], ratings and reflections are left empty (not read).
    pub fn view(
        &mut self,
        space: &SpaceId,
        identity: &Identity,
        parts: Parts,
    ) -> Result<View, StoreError> {
        self.current_view(space, identity)?;
        let c = &self.conn;
        let all = parts == Parts::All;
        Ok(View {
            people: crate::readmodel::people(c, space)?,
            goals: crate::readmodel::goals(c, space)?,
            ratings: if all {
                crate::readmodel::ratings(c, space)?
            } else {
                Vec::new()
            },
            reflections: if all {
                crate::readmodel::reflections(c, space)?
            } else {
                Vec::new()
            },
            seals: if all {
                crate::readmodel::seals(c, space)?
            } else {
                Vec::new()
            },
            rounds: crate::readmodel::rounds(c, space)?,
            problems: crate::readmodel::problems(c, space)?,
        })
    }

    /// The state the read-model tables of a space are at (version and heads, written
    /// with them), after bringing them up to date: equal states, equal views.
    pub fn view_state(
        &mut self,
        space: &SpaceId,
        identity: &Identity,
    ) -> Result<Vec<u8>, StoreError> {
        self.current_view(space, identity)?;
        Ok(crate::readmodel::state_key(&self.conn, space)?)
    }

    /// What the blind rules need when this person rates, from the read-model tables:
    /// every round and seal, and only the ratings of [`crate::readmodel::ritual_ratings`]
    /// (`own`: the (goal, rater) whose ratings a correction looks at). No people, goals
    /// or reflections.
    pub fn ritual_view(
        &mut self,
        space: &SpaceId,
        identity: &Identity,
        own: Option<(&str, &str)>,
    ) -> Result<View, StoreError> {
        self.current_view(space, identity)?;
        let c = &self.conn;
        Ok(View {
            ratings: crate::readmodel::ritual_ratings(c, space, true, own)?,
            seals: crate::readmodel::seals(c, space)?,
            rounds: crate::readmodel::rounds(c, space)?,
            ..View::default()
        })
    }

    /// The stored history events of a space matching `q`, in history order, each with
    /// its position (see [`crate::history::timeline`]). Rebuilds stale read models first.
    pub fn history_rows(
        &mut self,
        space: &SpaceId,
        identity: &Identity,
        q: &crate::history::HistoryQuery,
        last: Option<usize>,
    ) -> Result<Vec<crate::readmodel::HistoryRow>, StoreError> {
        self.current_view(space, identity)?;
        Ok(crate::readmodel::history_rows(&self.conn, space, q, last)?)
    }

    /// Which of `items` was made last (see [`crate::readmodel::last_made`]). Rebuilds
    /// stale read models first.
    pub(crate) fn last_made(
        &mut self,
        space: &SpaceId,
        identity: &Identity,
        items: &std::collections::HashSet<&str>,
    ) -> Result<Option<crate::readmodel::LastMade>, StoreError> {
        self.current_view(space, identity)?;
        Ok(crate::readmodel::last_made(&self.conn, space, items)?)
    }

    /// The reflection edits of a space, in history order. Rebuilds stale read models
    /// first.
    pub fn reflection_edits(
        &mut self,
        space: &SpaceId,
        identity: &Identity,
    ) -> Result<Vec<crate::history::HistoryEvent>, StoreError> {
        self.current_view(space, identity)?;
        Ok(crate::readmodel::reflection_edits(&self.conn, space)?)
    }

    /// The edits of goal fields and step texts of a space, in history order (see
    /// [`crate::readmodel::goal_field_edits`]).
    pub fn goal_field_edits(
        &mut self,
        space: &SpaceId,
        identity: &Identity,
        goal: Option<&str>,
    ) -> Result<Vec<crate::history::HistoryEvent>, StoreError> {
        self.current_view(space, identity)?;
        Ok(crate::readmodel::goal_field_edits(&self.conn, space, goal)?)
    }

    /// The position of the first stored history event later than `at`.
    pub fn history_first_after(
        &self,
        space: &SpaceId,
        at: i64,
    ) -> Result<Option<crate::readmodel::HistoryPos>, StoreError> {
        Ok(crate::readmodel::history_first_after(
            &self.conn, space, at,
        )?)
    }

    /// The people of a space as its read models list them, if they are current and
    /// list `person` (what a sync that brought nothing new reports from).
    pub fn named_in_view(
        &self,
        space: &SpaceId,
        person: &str,
    ) -> Result<Option<BTreeMap<String, Person>>, StoreError> {
        if !crate::readmodel::is_current(&self.conn, space)? {
            return Ok(None);
        }
        let people = crate::readmodel::people(&self.conn, space)?;
        Ok(people.contains_key(person).then_some(people))
    }

    /// Builds a space's read-model tables from `doc` unless they are current.
    pub fn ensure_view(&mut self, space: &SpaceId, doc: &SpaceDoc) -> Result<(), StoreError> {
        if !crate::readmodel::is_current(&self.conn, space)? {
            self.rebuild_from(space, doc)?;
        }
        Ok(())
    }

    /// The progress summary of a space's goals in scope, as its tables keep it (see
    /// `readmodel::progress_table`), with `person`'s blind ratings still waiting to be
    /// revealed, both read in one transaction (another process's reveal never shows in
    /// one and not the other); rebuilt with the tables when they are stale. `None` when
    /// the space keeps no summary yet.
    pub fn progress_summary(
        &mut self,
        space: &SpaceId,
        identity: &Identity,
        person: &str,
    ) -> Result<Option<(crate::readmodel::Summary, Vec<crate::model::Seal>)>, StoreError> {
        self.current_view(space, identity)?;
        if let Some(found) = self.kept_summary(space, person)? {
            return Ok(Some(found));
        }
        // None kept (a store that a migration dropped them from): kept again now, from
        // every rating in the tables, rather than computed on every read.
        self.deriving(|store| {
            let _lock = store.derived_lock()?;
            let tx = store.conn.transaction()?;
            crate::readmodel::recompute_progress(&tx, space)?;
            tx.commit()?;
            Ok(())
        })?;
        self.kept_summary(space, person)
    }

    /// The kept summary and `person`'s waiting seals, read in one transaction.
    fn kept_summary(
        &mut self,
        space: &SpaceId,
        person: &str,
    ) -> Result<Option<(crate::readmodel::Summary, Vec<crate::model::Seal>)>, StoreError> {
        let tx = self.conn.transaction()?;
        let Some(summary) = crate::readmodel::summary(&tx, space)? else {
            return Ok(None);
        };
        let seals = crate::readmodel::own_waiting_seals(&tx, space, person)?;
        Ok(Some((summary, seals)))
    }

    /// Makes a space's read-model tables current, loading the document only if they
    /// are missing or of an older version.
    fn current_view(&mut self, space: &SpaceId, identity: &Identity) -> Result<(), StoreError> {
        if !crate::readmodel::is_current(&self.conn, space)? {
            self.deriving(|store| store.rebuild_view(space, identity))?;
        }
        Ok(())
    }

    /// Writes what a read derived (read models); on a disk too full to keep it, the
    /// store goes on from a copy in memory, as it opens on a full disk, and writes it
    /// there: a read never fails for want of room to keep what it derived (`progress`
    /// did, after a sync had brought the partner's rating, where `status` worked).
    fn deriving<T>(
        &mut self,
        mut write: impl FnMut(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match write(self) {
            Err(e) if !self.read_only && super::disk_full(&e) => {
                self.go_on_in_memory()?;
                write(self)
            }
            done => done,
        }
    }

    /// Rewrites a space's read-model tables from its document.
    pub fn rebuild_view(&mut self, space: &SpaceId, identity: &Identity) -> Result<(), StoreError> {
        // Held from the load to the commit, so a write committed meanwhile is not lost
        // from the tables.
        let _lock = self.derived_lock()?;
        let (doc, _) = self.load_doc(space, identity)?;
        self.rebuild_from(space, &doc)
    }

    fn rebuild_from(&mut self, space: &SpaceId, doc: &SpaceDoc) -> Result<(), StoreError> {
        let _lock = self.derived_lock()?;
        let tx = self.conn.transaction()?;
        crate::readmodel::rebuild(&tx, space, doc)?;
        tx.commit()?;
        Ok(())
    }
}

/// Builds the read models of a new space from its first changes, so that reading it
/// never has to write.
pub(super) fn build_view(
    tx: &rusqlite::Transaction<'_>,
    space: &SpaceId,
    identity: &Identity,
    changes: &[Change],
) -> Result<(), StoreError> {
    // As this device's document, so that the tip recorded with the tables serves its
    // first rating.
    let doc = SpaceDoc::load(identity.actor(), None, changes.to_vec())?;
    crate::readmodel::rebuild(tx, space, &doc)?;
    Ok(())
}
