//! The entities of a space's document (people, goals, ratings, reflections, seals and
//! rounds) as the read models hold them: each collection, and each entity hydrated from
//! the document.

use std::collections::BTreeMap;

use automerge::{ObjId, ObjType, ROOT, ReadDoc, Value};
use autosurgeon::hydrate_prop;

use super::prefetch::Prefetched;
use crate::doc::DocError;
use crate::model::{Goal, Person, Rating, Reflection, Round, Seal};

/// A top-level collection of the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Collection {
    People,
    Goals,
    Ratings,
    Reflections,
    Seals,
    Rounds,
}

impl Collection {
    pub(super) const ALL: [Collection; 6] = [
        Collection::People,
        Collection::Goals,
        Collection::Ratings,
        Collection::Reflections,
        Collection::Seals,
        Collection::Rounds,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Collection::People => "people",
            Collection::Goals => "goals",
            Collection::Ratings => "ratings",
            Collection::Reflections => "reflections",
            Collection::Seals => "seals",
            Collection::Rounds => "rounds",
        }
    }

    pub(super) fn named(name: &str) -> Option<Collection> {
        Collection::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// One hydrated entity.
pub(super) enum Entity {
    Person(String, Person),
    Goal(Box<Goal>),
    Rating(Rating),
    Reflection(Reflection),
    Seal(Seal),
    Round(Round),
}

impl Entity {
    /// Hydrates the entity `id` of a collection; `None` when it is not there.
    pub(super) fn hydrate<D: autosurgeon::ReadDoc>(
        am: &D,
        obj: &ObjId,
        coll: Collection,
        id: &str,
    ) -> Result<Option<Entity>, DocError> {
        if autosurgeon::ReadDoc::get(am, obj, id)?.is_none() {
            return Ok(None);
        }
        Ok(Some(match coll {
            Collection::People => Entity::Person(id.to_string(), hydrate_prop(am, obj, id)?),
            Collection::Goals => Entity::Goal(Box::new(hydrate_prop(am, obj, id)?)),
            Collection::Ratings => Entity::Rating(hydrate_prop(am, obj, id)?),
            Collection::Reflections => Entity::Reflection(hydrate_prop(am, obj, id)?),
            Collection::Seals => Entity::Seal(hydrate_prop(am, obj, id)?),
            Collection::Rounds => Entity::Round(hydrate_prop(am, obj, id)?),
        }))
    }
}

impl Entity {
    /// Hydrates a whole collection in one pass.
    pub(super) fn hydrate_all<D: autosurgeon::ReadDoc>(
        am: &D,
        c: Collection,
    ) -> Result<Vec<Entity>, DocError> {
        fn all<D: autosurgeon::ReadDoc, T: autosurgeon::Hydrate>(
            am: &D,
            c: Collection,
        ) -> Result<BTreeMap<String, T>, DocError> {
            Ok(hydrate_prop(am, ROOT, c.name())?)
        }
        Ok(match c {
            Collection::People => all::<D, Person>(am, c)?
                .into_iter()
                .map(|(id, p)| Entity::Person(id, p))
                .collect(),
            Collection::Goals => all::<D, Goal>(am, c)?
                .into_values()
                .map(|g| Entity::Goal(Box::new(g)))
                .collect(),
            Collection::Ratings => all::<D, Rating>(am, c)?
                .into_values()
                .map(Entity::Rating)
                .collect(),
            Collection::Reflections => all::<D, Reflection>(am, c)?
                .into_values()
                .map(Entity::Reflection)
                .collect(),
            Collection::Seals => all::<D, Seal>(am, c)?
                .into_values()
                .map(Entity::Seal)
                .collect(),
            Collection::Rounds => all::<D, Round>(am, c)?
                .into_values()
                .map(Entity::Round)
                .collect(),
        })
    }
}

/// Every entity of a collection: hydrated in one pass, or one by one when the collection
/// as a whole does not hydrate (or is stored as several concurrently created maps), each
/// that fails given as (id, error). Each map is read whole once ([`Prefetched`]).
pub(super) fn collection_entities(
    am: &automerge::Automerge,
    c: Collection,
) -> Vec<Result<Entity, (String, DocError)>> {
    let objs = collection_objs(am, c);
    let doc = Prefetched::new(am);
    if objs.len() == 1
        && let Ok(all) = Entity::hydrate_all(&doc, c)
    {
        return all.into_iter().map(Ok).collect();
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for obj in &objs {
        for id in am.keys(obj) {
            if !seen.insert(id.clone()) {
                continue;
            }
            match Entity::hydrate(&doc, obj, c, &id) {
                Ok(Some(e)) => out.push(Ok(e)),
                Ok(None) => {}
                Err(e) => out.push(Err((id, e))),
            }
        }
    }
    out
}

/// Every map stored under the collection's root key: one, or several when two devices
/// created a late collection (`doc::LATE_COLLECTIONS`) while apart.
pub(super) fn collection_objs(am: &automerge::Automerge, coll: Collection) -> Vec<ObjId> {
    am.get_all(ROOT, coll.name())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(v, id)| matches!(v, Value::Object(ObjType::Map)).then_some(id))
        .collect()
}

/// The map of the collection that holds entity `id`, if any does.
pub(super) fn entity_obj(am: &automerge::Automerge, coll: Collection, id: &str) -> Option<ObjId> {
    collection_objs(am, coll)
        .into_iter()
        .find(|obj| matches!(am.get(obj, id), Ok(Some(_))))
}
