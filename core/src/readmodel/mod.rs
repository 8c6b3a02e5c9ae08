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
//!
//! The files: `schema` (the tables), `entity` (the collections and hydrating their
//! entities), `refresh` (what changes touched, refreshing or rebuilding), `write` (an
//! entity's rows), `history_tables` (each change's history events, in causal order),
//! `queries` (reading the rows back), `problem` (what did not hydrate, raw),
//! `prefetch` (reading each map of the document in one pass while hydrating) and
//! `progress_table` (the progress summary, kept current with each rating).

use crate::doc::SpaceDoc;

mod entity;
mod history_tables;
mod prefetch;
mod problem;
mod progress_table;
mod queries;
mod refresh;
mod schema;
mod tip_table;
mod write;

pub use crate::history::{HistoryPos, HistoryRow};
pub use crate::view::View;
pub(crate) use history_tables::{
    LastMade, goal_field_edits, history_first_after, history_rows, last_made, reflection_edits,
};
pub use problem::{Problem, problems_of};
pub use progress_table::Summary;
pub(crate) use progress_table::{
    PROGRESS_SCHEMA, dropped_meanwhile, own_waiting_seals, recompute as recompute_progress, summary,
};
pub(crate) use queries::{
    goals, people, problems, ratings, reflections, ritual_ratings, rounds, seals,
};
pub(crate) use refresh::{forget, is_current, rebuild, refresh, state_key};
pub(crate) use schema::{RITUALS_SCHEMA, SCHEMA, WRITE_PATH_SCHEMA};
pub(crate) use tip_table::{TIP_SCHEMA, current_tip, newest_row, refresh_new};

use entity::{Collection, Entity, collection_entities};

/// Version of the read-model tables' content. Bump it when what they hold changes: every
/// space's tables are then rebuilt from its document. Version 3: entities are checked
/// against the model's ranges as they are read (rows written before are rebuilt, so an
/// out-of-range value a partner sent earlier becomes a listed problem). Version 4:
/// ratings kept whole as JSON, seals and rounds. Version 5: ratings' round and ritual
/// columns (see [`WRITE_PATH_SCHEMA`]). Version 6: the progress summary
/// ([`PROGRESS_SCHEMA`]). Version 7: a blind rating that corrects another is a
/// correction in the history. Version 8: a step's corrected text and who a step is for
/// are in the history. Version 9: a reflection edit keeps a digest of the text it left
/// (to tell a merge of edits made apart, [`crate::history::merged_reflections`]).
/// Version 10: a reflection's edits and withdrawal carry the goal it is about, and an
/// edit taken back by `undo` is marked (`field` "undone"), a reply's withdrawal too
/// (`field` "reply"). Version 11: the reveal of a corrected blind rating is a reveal in the
/// history (it read as a second correction, made at the reveal). Version 12: a round's
/// close names its rounds and the time it wrote (of two closes made apart, the history
/// shows the one kept).
pub const VERSION: i64 = 12;

// `View` lives in `crate::view` (what `progress` and `rituals` compute over, without
// depending on the tables); reading it from a document is the read models' job.
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

    fn add(&mut self, e: Entity) {
        match e {
            Entity::Person(id, p) => {
                self.people.insert(id, p);
            }
            Entity::Goal(g) => self.goals.push(*g),
            Entity::Rating(r) => self.ratings.push(r),
            Entity::Reflection(r) => self.reflections.push(r),
            Entity::Seal(r) => self.seals.push(r),
            Entity::Round(r) => self.rounds.push(r),
        }
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
