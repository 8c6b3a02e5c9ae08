//! Reading the tables back: the people, goals with their steps, ratings, reflections and
//! problems of a space, as the reading commands use them.

use std::collections::BTreeMap;

use rusqlite::{Connection, params};

use super::schema::parse;
use crate::event::SpaceId;
use crate::model::{Goal, Person, Rating, Reflection, Round, Seal, Step};

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
    json_rows(
        conn,
        "SELECT json FROM rm_ratings WHERE space = ?1 ORDER BY at, id",
        space,
    )
}

/// The ratings the blind rules look at when this person rates (see
/// [`crate::rituals`]): those that reveal, correct or withdraw another, with `in_rounds`
/// those given in a round (which rounds were paired while apart depends on every
/// round's ratings), and, for a correction, `own`'s (goal, rater) ratings; oldest
/// first. Ratings outside rounds, most of a long history, are left.
pub(crate) fn ritual_ratings(
    conn: &Connection,
    space: &SpaceId,
    in_rounds: bool,
    own: Option<(&str, &str)>,
) -> Result<Vec<Rating>, rusqlite::Error> {
    let sid = space.to_string();
    let mut rows: BTreeMap<String, String> = BTreeMap::new();
    let mut add = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<(), rusqlite::Error> {
        let mut stmt = conn.prepare_cached(sql)?;
        let found = stmt.query_map(p, |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in found {
            let (id, j) = row?;
            rows.insert(id, j);
        }
        Ok(())
    };
    add(
        "SELECT id, json FROM rm_ratings WHERE space = ?1 AND ritual = 1",
        &[&sid],
    )?;
    if in_rounds {
        add(
            "SELECT id, json FROM rm_ratings WHERE space = ?1 AND round IS NOT NULL",
            &[&sid],
        )?;
    }
    if let Some((goal, rater)) = own {
        add(
            "SELECT id, json FROM rm_ratings WHERE space = ?1 AND goal = ?2 AND rater = ?3",
            &[&sid, &goal, &rater],
        )?;
    }
    let mut out: Vec<Rating> = rows.values().map(|j| parse(j)).collect::<Result<_, _>>()?;
    out.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    Ok(out)
}

/// Every sealed rating of a space, oldest first.
pub(crate) fn seals(conn: &Connection, space: &SpaceId) -> Result<Vec<Seal>, rusqlite::Error> {
    json_rows(
        conn,
        "SELECT json FROM rm_seals WHERE space = ?1 ORDER BY at, id",
        space,
    )
}

/// Every check-in round of a space, oldest first.
pub(crate) fn rounds(conn: &Connection, space: &SpaceId) -> Result<Vec<Round>, rusqlite::Error> {
    let mut rounds: Vec<Round> =
        json_rows(conn, "SELECT json FROM rm_rounds WHERE space = ?1", space)?;
    rounds.sort_by(|a, b| (a.opened_at, &a.id).cmp(&(b.opened_at, &b.id)));
    Ok(rounds)
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
