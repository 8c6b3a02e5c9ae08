//! The entities of a space's document (people, goals, ratings, reflections) as the read
//! models hold them: each collection, and each entity hydrated from the document.

use std::collections::BTreeMap;

use automerge::{ObjId, ObjType, ROOT, ReadDoc, Value};
use autosurgeon::hydrate_prop;

use crate::doc::DocError;
use crate::model::{Goal, Person, Rating, Reflection};

/// A top-level collection of the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Collection {
    People,
    Goals,
    Ratings,
    Reflections,
}

impl Collection {
    pub(super) const ALL: [Collection; 4] = [
        Collection::People,
        Collection::Goals,
        Collection::Ratings,
        Collection::Reflections,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Collection::People => "people",
            Collection::Goals => "goals",
            Collection::Ratings => "ratings",
            Collection::Reflections => "reflections",
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
}

impl Entity {
    /// Hydrates the entity `id` of a collection; `None` when it is not there.
    pub(super) fn hydrate(
        am: &automerge::Automerge,
        obj: &ObjId,
        coll: Collection,
        id: &str,
    ) -> Result<Option<Entity>, DocError> {
        if am.get(obj, id)?.is_none() {
            return Ok(None);
        }
        Ok(Some(match coll {
            Collection::People => Entity::Person(id.to_string(), hydrate_prop(am, obj, id)?),
            Collection::Goals => Entity::Goal(Box::new(hydrate_prop(am, obj, id)?)),
            Collection::Ratings => Entity::Rating(hydrate_prop(am, obj, id)?),
            Collection::Reflections => Entity::Reflection(hydrate_prop(am, obj, id)?),
        }))
    }
}

impl Entity {
    /// Hydrates a whole collection in one pass.
    pub(super) fn hydrate_all(
        am: &automerge::Automerge,
        c: Collection,
    ) -> Result<Vec<Entity>, DocError> {
        fn all<T: autosurgeon::Hydrate>(
            am: &automerge::Automerge,
            c: Collection,
        ) -> Result<BTreeMap<String, T>, DocError> {
            Ok(hydrate_prop(am, ROOT, c.name())?)
        }
        Ok(match c {
            Collection::People => all::<Person>(am, c)?
                .into_iter()
                .map(|(id, p)| Entity::Person(id, p))
                .collect(),
            Collection::Goals => all::<Goal>(am, c)?
                .into_values()
                .map(|g| Entity::Goal(Box::new(g)))
                .collect(),
            Collection::Ratings => all::<Rating>(am, c)?
                .into_values()
                .map(Entity::Rating)
                .collect(),
            Collection::Reflections => all::<Reflection>(am, c)?
                .into_values()
                .map(Entity::Reflection)
                .collect(),
        })
    }
}

/// Every entity of a collection: hydrated in one pass, or one by one when the collection
/// as a whole does not hydrate, each that fails given as (id, error).
pub(super) fn collection_entities(
    am: &automerge::Automerge,
    c: Collection,
) -> Vec<Result<Entity, (String, DocError)>> {
    let Some(obj) = collection_obj(am, c) else {
        return Vec::new();
    };
    if let Ok(all) = Entity::hydrate_all(am, c) {
        return all.into_iter().map(Ok).collect();
    }
    am.keys(&obj)
        .filter_map(|id| match Entity::hydrate(am, &obj, c, &id) {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(e) => Some(Err((id, e))),
        })
        .collect()
}

pub(super) fn collection_obj(am: &automerge::Automerge, coll: Collection) -> Option<ObjId> {
    match am.get(ROOT, coll.name()).ok()? {
        Some((Value::Object(ObjType::Map), id)) => Some(id),
        _ => None,
    }
}
