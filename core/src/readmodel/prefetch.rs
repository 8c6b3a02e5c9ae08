//! A read-only view of a document for hydrating many entities at once. autosurgeon
//! reads an entity one field at a time, and each field read on the document is a seek
//! by key through the operations; here the first read of a map takes all its entries in
//! one pass (`map_range`) and later reads of the same map are lookups. The answers are
//! the document's (each key's winning value), so an entity hydrates the same either way;
//! the read-model consistency property test holds the two paths to that.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::RangeBounds;
use std::rc::Rc;

use automerge::{AutomergeError, ObjId, ObjType, Prop, Value};

/// How many maps are kept read (the collection being walked, its entity, and a few
/// nested maps of it such as a goal's levels and steps).
const KEEP: usize = 8;

/// A map larger than this is looked up through a hash index (a collection).
const INDEX_FROM: usize = 16;

/// One map's entries, read in one pass.
struct Entries {
    items: Vec<(String, Value<'static>, ObjId)>,
    index: Option<HashMap<String, usize>>,
}

impl Entries {
    fn find(&self, key: &str) -> Option<&(String, Value<'static>, ObjId)> {
        match &self.index {
            Some(index) => index.get(key).map(|&i| &self.items[i]),
            None => self.items.iter().find(|(k, _, _)| k == key),
        }
    }
}

/// The document, with the maps read so far.
pub(super) struct Prefetched<'d> {
    am: &'d automerge::Automerge,
    maps: RefCell<Vec<(ObjId, Rc<Entries>)>>,
}

impl<'d> Prefetched<'d> {
    pub(super) fn new(am: &'d automerge::Automerge) -> Prefetched<'d> {
        Prefetched {
            am,
            maps: RefCell::new(Vec::with_capacity(KEEP)),
        }
    }

    /// The entries of `obj` when it is a map, read now unless kept (then moved to most
    /// recent); `None` for other objects.
    fn entries(&self, obj: &ObjId) -> Option<Rc<Entries>> {
        let mut maps = self.maps.borrow_mut();
        if let Some(i) = maps.iter().position(|(o, _)| o == obj) {
            let hit = maps.remove(i);
            let entries = hit.1.clone();
            maps.push(hit);
            return Some(entries);
        }
        if !matches!(
            automerge::ReadDoc::object_type(self.am, obj),
            Ok(ObjType::Map | ObjType::Table)
        ) {
            return None;
        }
        let items: Vec<_> = automerge::ReadDoc::map_range(self.am, obj, ..)
            .map(|item| {
                let id = item.id();
                (item.key.into_owned(), item.value.into_value(), id)
            })
            .collect();
        let index = (items.len() > INDEX_FROM).then(|| {
            items
                .iter()
                .enumerate()
                .map(|(i, (k, _, _))| (k.clone(), i))
                .collect()
        });
        let entries = Rc::new(Entries { items, index });
        if maps.len() == KEEP {
            maps.remove(0);
        }
        maps.push((obj.clone(), entries.clone()));
        Some(entries)
    }
}

impl autosurgeon::ReadDoc for Prefetched<'_> {
    type Parents<'a>
        = automerge::Parents<'a>
    where
        Self: 'a;

    fn get_heads(&self) -> Vec<automerge::ChangeHash> {
        self.am.get_heads()
    }

    fn get<P: Into<Prop>>(
        &self,
        obj: &ObjId,
        prop: P,
    ) -> Result<Option<(Value<'_>, ObjId)>, AutomergeError> {
        let prop = prop.into();
        if let Prop::Map(key) = &prop
            && let Some(entries) = self.entries(obj)
        {
            return Ok(entries.find(key).map(|(_, v, id)| (v.clone(), id.clone())));
        }
        automerge::ReadDoc::get(self.am, obj, prop)
    }

    fn object_type<O: AsRef<ObjId>>(&self, obj: O) -> Option<ObjType> {
        automerge::ReadDoc::object_type(self.am, obj).ok()
    }

    fn map_range<'a, O, R>(&'a self, obj: O, range: R) -> automerge::iter::MapRange<'a>
    where
        R: RangeBounds<String> + 'a,
        O: AsRef<ObjId>,
        R: RangeBounds<String>,
    {
        automerge::ReadDoc::map_range(self.am, obj, range)
    }

    fn list_range<O: AsRef<ObjId>, R: RangeBounds<usize>>(
        &self,
        obj: O,
        range: R,
    ) -> automerge::iter::ListRange<'_> {
        automerge::ReadDoc::list_range(self.am, obj, range)
    }

    fn length<O: AsRef<ObjId>>(&self, obj: O) -> usize {
        automerge::ReadDoc::length(self.am, obj)
    }

    fn text<O: AsRef<ObjId>>(&self, obj: O) -> Result<String, AutomergeError> {
        automerge::ReadDoc::text(self.am, obj)
    }

    fn parents<O: AsRef<ObjId>>(&self, obj: O) -> Result<Self::Parents<'_>, AutomergeError> {
        automerge::ReadDoc::parents(self.am, obj)
    }

    fn is_empty(&self) -> bool {
        automerge::ReadDoc::keys(self.am, automerge::ROOT).count() == 0
    }
}
