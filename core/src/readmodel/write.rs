//! Writing entities into the tables: one entity, a whole collection, and the problems
//! of those that do not hydrate; and clearing them before they are written again.

use automerge::ObjId;
use rusqlite::{Connection, params};

use super::entity::{Collection, Entity, collection_entities};
use super::schema::{exec, json};
use crate::doc::DocError;

pub(super) const TABLES: [(&str, Collection); 7] = [
    ("rm_people", Collection::People),
    ("rm_goals", Collection::Goals),
    ("rm_steps", Collection::Goals),
    ("rm_ratings", Collection::Ratings),
    ("rm_reflections", Collection::Reflections),
    ("rm_seals", Collection::Seals),
    ("rm_rounds", Collection::Rounds),
];

pub(super) fn clear(
    conn: &Connection,
    sid: &str,
    only: Option<Collection>,
) -> Result<(), rusqlite::Error> {
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

pub(super) fn delete_entity(
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
        Collection::Seals => exec(
            conn,
            "DELETE FROM rm_seals WHERE space = ?1 AND id = ?2",
            params![sid, id],
        )?,
        Collection::Rounds => exec(
            conn,
            "DELETE FROM rm_rounds WHERE space = ?1 AND id = ?2",
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

pub(super) fn write_entity(
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
pub(super) fn write_collection(
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

pub(super) fn store_entity(
    conn: &Connection,
    sid: &str,
    entity: Entity,
) -> Result<(), rusqlite::Error> {
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
                "INSERT OR REPLACE INTO rm_ratings
                 (space, id, goal, rater, at, level, note, json, round, ritual)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    sid,
                    r.id,
                    r.goal,
                    r.rater,
                    r.at,
                    r.level.get(),
                    r.note,
                    json(&r)?,
                    r.round,
                    r.reveals.is_some() || r.corrects.is_some() || r.withdrawn.is_some()
                ],
            )?;
        }
        Entity::Seal(r) => {
            exec(
                conn,
                "INSERT OR REPLACE INTO rm_seals (space, id, at, json) VALUES (?1, ?2, ?3, ?4)",
                params![sid, r.id, r.at, json(&r)?],
            )?;
        }
        Entity::Round(r) => {
            exec(
                conn,
                "INSERT OR REPLACE INTO rm_rounds (space, id, json) VALUES (?1, ?2, ?3)",
                params![sid, r.id, json(&r)?],
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
