//! Reading goals: the list, and one goal with its ratings and unreadable parts.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::device::{Device, DeviceError};
use crate::model::{Goal, Rating};
use crate::readmodel::{Parts, Problem, View};
use crate::store::SpaceKind;
use crate::vocab::Status;

/// The goals of the shared space.
#[derive(Debug, Clone)]
pub struct GoalList {
    /// The goals asked for (all, or the active ones).
    pub goals: Vec<Goal>,
    /// Entities this version could not read (one line each).
    pub problems: Vec<String>,
    /// Person id -> the name they are shown by (whose goal is whose).
    pub people: BTreeMap<String, String>,
}

/// One goal, or what could be read of it.
#[derive(Debug, Clone)]
pub enum GoalDetail {
    /// The goal, its ratings, and the unreadable entities that name it.
    Found {
        /// The goal.
        goal: Box<Goal>,
        /// Its ratings, oldest first (the newest ones only, when asked for fewer).
        ratings: Vec<Rating>,
        /// How many ratings it has in all.
        rating_count: usize,
        /// Unreadable entities of this goal.
        problems: Vec<Problem>,
        /// Person id -> name.
        people: std::collections::BTreeMap<String, String>,
        /// The shared reflections about it, with their replies.
        reflections: Vec<super::ReflectionItem>,
        /// Its ratings still sealed (who rated when, not how).
        sealed: Vec<super::SealedRecord>,
    },
    /// The goal itself cannot be read by this version: its raw content.
    Unreadable(Vec<Problem>),
}

/// `goal show --json` when the goal was read.
#[derive(Debug, Serialize)]
pub struct GoalShowJson<'a> {
    /// The goal.
    #[serde(flatten)]
    pub goal: super::GoalRecord,
    /// Its ratings.
    pub ratings: Vec<super::RatingRecord>,
    /// Its ratings still sealed.
    pub sealed: &'a [super::SealedRecord],
    /// The shared reflections about it, with their replies.
    pub reflections: &'a [super::ReflectionItem],
    /// Unreadable entities of this goal.
    pub problems: &'a [Problem],
    /// Its texts that read as a merge of edits made on both sides while apart.
    pub merged_while_apart: &'a [crate::history::MergedText],
}

/// Whether a goal is past its due day: active, with a due day (YYYY-MM-DD) before
/// `today` (the local day, as the front end reads it). Paused, achieved and archived
/// goals are not overdue.
pub fn overdue(goal: &crate::model::Goal, today: &str) -> bool {
    goal.status.as_str() == "active" && goal.due.as_deref().is_some_and(|d| d < today)
}

impl Device {
    /// The shared space's goals: every goal with `all`, else the active ones.
    pub fn goals(&mut self, all: bool) -> Result<GoalList, DeviceError> {
        let view = self.view_parts(SpaceKind::Shared, Parts::Goals)?;
        let goals = view
            .goals
            .into_iter()
            .filter(|g| all || g.status == Status::Active)
            .collect();
        Ok(GoalList {
            goals,
            problems: view.problems,
            people: crate::names::shown(&view.people),
        })
    }

    /// Resolves what a user typed (a title, a word or the start of one, or an id or its
    /// start: [`crate::resolve::resolve`]) to a goal id of the shared space.
    pub fn resolve_goal(&mut self, query: &str) -> Result<String, DeviceError> {
        Ok(self.resolve_goal_titled(query)?.0)
    }

    /// [`Device::resolve_goal`], with the goal's title: what a confirmation names, since
    /// a query may match another goal than the one meant.
    pub fn resolve_goal_titled(&mut self, query: &str) -> Result<(String, String), DeviceError> {
        self.resolve_goal_made(query)
            .map(|(id, title, _)| (id, title))
    }

    /// [`Device::resolve_goal_titled`], with when the goal was made.
    pub(crate) fn resolve_goal_made(
        &mut self,
        query: &str,
    ) -> Result<(String, String, i64), DeviceError> {
        let view = self.view_parts(SpaceKind::Shared, Parts::Goals)?;
        let id = match resolve_in(&view.goals, query) {
            Ok(id) => id,
            Err(_) if view.goals.is_empty() && self.joining()? => {
                let rec = self.space(SpaceKind::Shared)?;
                return Err(self.unfinished_join(&rec)?);
            }
            Err(e) => return Err(e.into()),
        };
        let (title, made) = view
            .goals
            .iter()
            .find(|g| g.id == id)
            .map(|g| (g.title.as_str().to_string(), g.created_at))
            .unwrap_or_default();
        Ok((id, title, made))
    }

    /// Whether this device joined the shared space and its first sync never finished
    /// (its goals have not arrived yet; the next sync finishes the join).
    pub fn joining(&mut self) -> Result<bool, DeviceError> {
        let rec = self.space(SpaceKind::Shared)?;
        Ok(self.store.join_unfinished(&rec.id, rec.cursor)?)
    }

    /// The goal texts that read as a merge of edits made on both sides while apart (of
    /// one goal, by id, or of all): see [`crate::history::merged_texts`].
    pub fn merged_texts(
        &mut self,
        goal: Option<&str>,
    ) -> Result<Vec<crate::history::MergedText>, DeviceError> {
        let rec = self.space(SpaceKind::Shared)?;
        let me = self.me.clone();
        let edits = self.store.goal_field_edits(&rec.id, &me, goal)?;
        if edits.is_empty() {
            return Ok(Vec::new());
        }
        let goals = self.view_parts(SpaceKind::Shared, Parts::Goals)?.goals;
        Ok(crate::history::merged_texts(&edits, &goals))
    }

    /// One goal of the shared space, with its ratings; a goal this version cannot read
    /// comes back as its raw content instead of "no such goal".
    pub fn goal_detail(
        &mut self,
        query: &str,
        newest: Option<usize>,
    ) -> Result<GoalDetail, DeviceError> {
        let view = self.shown_view(SpaceKind::Shared)?;
        let problems = self.problems(SpaceKind::Shared, &view);
        let id = match resolve_in(&view.goals, query) {
            Ok(id) => id,
            Err(e) => {
                let unreadable: Vec<Problem> = problems
                    .into_iter()
                    .filter(|p| p.collection == "goals" && p.id.starts_with(query.trim()))
                    .collect();
                if unreadable.len() != 1 {
                    return Err(e.into());
                }
                return Ok(GoalDetail::Unreadable(unreadable));
            }
        };
        let goal =
            view.goal(&id)
                .cloned()
                .ok_or_else(|| crate::resolve::ResolveError::Unknown {
                    what: "goal",
                    query: id.clone(),
                    hint: "it is not in the shared space".into(),
                })?;
        let of_goal = || view.ratings.iter().filter(|r| r.goal == id);
        let rating_count = of_goal().count();
        let mut ratings: Vec<Rating> = of_goal()
            .rev()
            .take(newest.unwrap_or(usize::MAX))
            .cloned()
            .collect();
        ratings.reverse();
        // Unreadable entities of this goal: itself or anything that names it.
        let problems = problems
            .into_iter()
            .filter(|p| {
                (p.collection == "goals" && p.id == id)
                    || p.raw.get("goal").and_then(|v| v.as_str()) == Some(id.as_str())
            })
            .collect();
        let reflections = super::reflections::threads(&view, &view, false, self.now())
            .into_iter()
            .filter(|t| t.goal.as_deref() == Some(id.as_str()))
            .collect();
        let sealed = crate::rituals::waiting_seals(&view)
            .into_iter()
            .filter(|s| s.goal == id)
            .map(super::SealedRecord::from)
            .collect();
        Ok(GoalDetail::Found {
            goal: Box::new(goal),
            ratings,
            rating_count,
            problems,
            people: crate::names::shown(&view.people),
            reflections,
            sealed,
        })
    }

    /// The entities of a space that could not be read, with their raw content. The
    /// document is loaded only when the read model lists any; if even that fails, they
    /// are given without their content rather than failing the command.
    pub fn problems(&self, kind: SpaceKind, view: &View) -> Vec<Problem> {
        if view.problems.is_empty() {
            return Vec::new();
        }
        match self.load(kind) {
            Ok((_, doc, _)) => crate::readmodel::problems_of(&doc),
            Err(_) => view
                .problems
                .iter()
                .map(|p| Problem::from_line(p))
                .collect(),
        }
    }
}

/// Resolves a goal reference among goals by [`crate::resolve::resolve`]'s rules; an
/// archived goal gives way to one not archived that matches as well
/// ([`crate::resolve::resolve_setting_aside`]).
pub(crate) fn resolve_in(
    goals: &[Goal],
    query: &str,
) -> Result<String, crate::resolve::ResolveError> {
    let archived = |id: &str| {
        goals
            .iter()
            .any(|g| g.id == id && g.status == Status::Archived)
            .then_some("archived")
    };
    crate::resolve::resolve_setting_aside(
        "goal",
        query,
        goals
            .iter()
            .map(|g| (g.id.as_str(), g.title.as_str().to_string())),
        &archived,
    )
}
