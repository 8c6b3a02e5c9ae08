//! The typed content of a space as the reading commands use it: people, goals, ratings,
//! reflections, seals and rounds. The read models fill it (`crate::readmodel`, also
//! straight from a document with `View::of`); `progress` and `rituals` compute over it.

use std::collections::BTreeMap;

use crate::model::{Goal, Person, Rating, Reflection, Round, Seal};

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
    /// Every sealed rating, oldest first: commitments only, unless this person's own.
    pub seals: Vec<Seal>,
    /// Every check-in round, oldest first.
    pub rounds: Vec<Round>,
    /// Entities that did not hydrate: "collection id: error".
    pub problems: Vec<String>,
}

impl View {
    /// One goal by id.
    pub fn goal(&self, id: &str) -> Option<&Goal> {
        self.goals.iter().find(|g| g.id == id)
    }

    /// Puts every list in its reading order (by time, then id).
    pub(crate) fn sort(&mut self) {
        self.goals
            .sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        self.ratings
            .sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        self.reflections
            .sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        self.seals.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        self.rounds
            .sort_by(|a, b| (a.opened_at, &a.id).cmp(&(b.opened_at, &b.id)));
        self.problems.sort();
    }
}
