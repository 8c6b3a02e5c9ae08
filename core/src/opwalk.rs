//! The one walk over an Automerge change's operations, shared by the history and the
//! read models: each operation comes out placed in the document (the path of the object
//! it acts on, like `goals/<id>/steps`), with its key and, for a put of a scalar, the
//! value as text. Both derive "which entity or field was set to what" from this.
//!
//! It reads the change through `automerge::legacy` (`Change::decode`), the only form
//! of a change's operations that Automerge 0.12 exposes.
//!
//! A partner can nest objects thousands deep. So a path keeps only its first
//! [`KEPT_STEPS`] steps (no reader looks deeper), and an object the walk has not placed
//! is placed by climbing only up to the nearest placed ancestor ([`place`]): placing
//! each object of a chain costs the same at any depth, where copying and looking up
//! whole paths made one crafted event of a few kilobytes cost minutes.

use std::collections::HashMap;
use std::rc::Rc;

use automerge::legacy::{Key, ObjectId, OpId, OpType};
use automerge::{Change, ReadDoc, ScalarValue};

/// One operation of a change, placed in the document.
pub(crate) struct Op {
    /// The operation's id (an object it makes has this id).
    pub(crate) id: OpId,
    /// The object it acts on; `None` for the document's root.
    pub(crate) obj: Option<OpId>,
    /// The path of that object (empty for the root; its first [`KEPT_STEPS`] steps);
    /// `None` when the document cannot place it.
    pub(crate) path: Option<ObjPath>,
    /// The map key it sets, or `#` for a list position.
    pub(crate) key: String,
    /// Whether the key is a map key (not a list position).
    pub(crate) in_map: bool,
    /// Whether it makes an object (a map, list or text).
    pub(crate) make: bool,
    /// The value it puts, as text, when it puts a non-null scalar.
    pub(crate) value: Option<String>,
}

/// A placed object's path, shared by every operation on it (copied for none of them).
pub(crate) type ObjPath = Rc<[String]>;

/// How many steps of a path are kept. Readers match at most four
/// (`goals/<id>/steps/<id>`); a deeper path keeps its first steps and is cut there.
pub(crate) const KEPT_STEPS: usize = 8;

/// Places the document's object `obj` (an operation id) in `known` with its path, and
/// every ancestor met on the way up: it climbs only to the nearest ancestor `known`
/// places (or the root, whose path is `root`), then makes each path below from its
/// parent's with `child`. `None` (nothing recorded) when the document cannot place it.
/// Shared by the walk and the owner rules, which keep paths of their own kinds.
pub(crate) fn place<P: Clone>(
    am: &automerge::Automerge,
    obj: &OpId,
    known: &mut HashMap<OpId, P>,
    root: P,
    child: impl Fn(&P, &automerge::Prop) -> P,
) -> Option<P> {
    if let Some(path) = known.get(obj) {
        return Some(path.clone());
    }
    // `import_obj` is how Automerge turns an operation id into an object id of this
    // document.
    let exid = am
        .import_obj(&format!("{}@{}", obj.0, obj.1.to_hex_string()))
        .ok()?;
    let mut node = obj.clone();
    let mut steps = Vec::new();
    let mut anchor = None;
    for parent in am.parents(&exid).ok()? {
        steps.push((node, parent.prop));
        match parent.obj {
            automerge::ObjId::Root => break,
            automerge::ObjId::Id(counter, actor, _) => {
                let id = OpId(counter, actor);
                if known.contains_key(&id) {
                    anchor = Some(id);
                    break;
                }
                node = id;
            }
        }
    }
    let mut path = match anchor {
        None => root,
        Some(a) => known.get(&a)?.clone(),
    };
    for (node, prop) in steps.into_iter().rev() {
        path = child(&path, &prop);
        known.insert(node, path.clone());
    }
    Some(path)
}

/// The operations of `change` in order, each placed in `am` (the document holding the
/// change). `paths` remembers placed objects across changes: walk the changes of one
/// document in causal order with the same `paths`.
pub(crate) fn walk<'p>(
    am: &'p automerge::Automerge,
    paths: &'p mut Paths,
    change: &Change,
) -> impl Iterator<Item = Op> + 'p {
    let ex = change.decode();
    let actor = ex.actor_id;
    let start = ex.start_op.get();
    ex.operations.into_iter().enumerate().map(move |(i, op)| {
        let id = OpId(start + i as u64, actor.clone());
        // The path is taken before the op's own object is recorded: an op never acts
        // on the object it makes.
        let path = paths.of(am, &op.obj);
        let make = matches!(op.action, OpType::Make(_));
        if make {
            paths.made(am, id.clone(), &op.obj, &op.key);
        }
        Op {
            id,
            obj: match op.obj {
                ObjectId::Root => None,
                ObjectId::Id(o) => Some(o),
            },
            path,
            key: key_text(&op.key),
            in_map: matches!(op.key, Key::Map(_)),
            make,
            value: match &op.action {
                OpType::Put(v) => scalar_text(v),
                _ => None,
            },
        }
    })
}

/// A scalar as text; `None` for null.
pub(crate) fn scalar_text(v: &ScalarValue) -> Option<String> {
    match v {
        ScalarValue::Str(s) => Some(s.to_string()),
        ScalarValue::Int(i) => Some(i.to_string()),
        ScalarValue::Uint(i) => Some(i.to_string()),
        ScalarValue::F64(f) => Some(f.to_string()),
        ScalarValue::Boolean(b) => Some(b.to_string()),
        ScalarValue::Null => None,
        other => Some(other.to_string()),
    }
}

/// A property key as a path segment: the map key, or `#` for a list position.
fn key_text(key: &Key) -> String {
    match key {
        Key::Map(s) => s.to_string(),
        Key::Seq(_) => "#".to_string(),
    }
}

/// Paths of the document's objects (`goals/<id>/title`). Objects made by the changes
/// walked so far are placed from their make operation; any other is looked up in the
/// document (which costs a search of its operations, so results are remembered).
#[derive(Default)]
pub(crate) struct Paths {
    known: HashMap<OpId, Option<ObjPath>>,
}

impl Paths {
    /// Paths with these objects already placed.
    pub(crate) fn placed(known: impl IntoIterator<Item = (OpId, Vec<String>)>) -> Paths {
        Paths {
            known: known
                .into_iter()
                .map(|(id, p)| (id, Some(p.into())))
                .collect(),
        }
    }

    /// Records that operation `id` made an object at `key` of `parent`.
    fn made(&mut self, am: &automerge::Automerge, id: OpId, parent: &ObjectId, key: &Key) {
        let path = self.of(am, parent).map(|p| child(&p, key_text(key)));
        self.known.insert(id, path);
    }

    /// The path of `obj`, or `None` when the document cannot place it.
    fn of(&mut self, am: &automerge::Automerge, obj: &ObjectId) -> Option<ObjPath> {
        let ObjectId::Id(id) = obj else {
            return Some(Rc::from([]));
        };
        let path = place(
            am,
            id,
            &mut self.known,
            Some(Rc::from([])),
            |parent, prop| {
                let step = match prop {
                    automerge::Prop::Map(s) => s.clone(),
                    automerge::Prop::Seq(_) => "#".to_string(),
                };
                parent.as_ref().map(|p| child(p, step))
            },
        );
        path.unwrap_or_else(|| {
            self.known.insert(id.clone(), None);
            None
        })
    }
}

/// `path` with `step` added, unless it already holds [`KEPT_STEPS`] (then `path` itself).
fn child(path: &ObjPath, step: String) -> ObjPath {
    if path.len() >= KEPT_STEPS {
        return Rc::clone(path);
    }
    path.iter().cloned().chain(std::iter::once(step)).collect()
}
