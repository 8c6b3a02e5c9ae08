//! The entities a space holds that this version cannot read, with their raw content as
//! JSON, so that an export carries what it could not type.

use automerge::{ObjId, ObjType, ReadDoc, Value};

use super::entity::{Collection, collection_entities, entity_obj};
use crate::doc::SpaceDoc;

/// An entity of a space that this version cannot read, with what it holds.
///
/// [`View::problems`] names them in one line each; [`problems_of`] gives them with their
/// raw content, so that an export can carry what it could not type (nothing a partner
/// wrote is silently left out).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    /// The collection: `people`, `goals`, `ratings` or `reflections`.
    pub collection: String,
    /// The entity's key in its collection.
    pub id: String,
    /// Why it could not be read.
    pub reason: String,
    /// Its raw content as JSON (`null` when the document could not be read).
    pub raw: serde_json::Value,
}

impl std::fmt::Display for Problem {
    /// The same line as [`View::problems`] holds: "collection id: reason".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.collection, self.id, self.reason)
    }
}

impl Problem {
    /// A problem from one of [`View::problems`]' lines, without its raw content (for
    /// when the document itself cannot be loaded).
    pub fn from_line(line: &str) -> Problem {
        let (head, reason) = line.split_once(": ").unwrap_or((line, ""));
        let (collection, id) = head.split_once(' ').unwrap_or(("", head));
        Problem {
            collection: collection.to_string(),
            id: id.to_string(),
            reason: reason.to_string(),
            raw: serde_json::Value::Null,
        }
    }
}

/// Every entity of `doc` that does not hydrate, with its raw content. Loading the
/// document is the price: callers ask only when [`View::problems`] is not empty.
pub fn problems_of(doc: &SpaceDoc) -> Vec<Problem> {
    let am = doc.automerge();
    let mut out = Vec::new();
    for coll in Collection::ALL {
        for entity in collection_entities(am, coll) {
            if let Err((id, e)) = entity {
                let raw = entity_obj(am, coll, &id).map_or(serde_json::Value::Null, |obj| {
                    raw_json(am, &obj, id.as_str(), 0)
                });
                out.push(Problem {
                    collection: coll.name().to_string(),
                    raw,
                    id,
                    reason: e.to_string(),
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.collection, &a.id).cmp(&(&b.collection, &b.id)));
    out
}

/// How deep [`raw_json`] follows nested objects: a partner's entity may nest without
/// limit, and the recursion must not exhaust the stack.
const RAW_DEPTH: usize = 32;

/// The JSON form of whatever is stored at `prop` of `obj`: maps and lists as JSON, text
/// as a string, counters and timestamps as numbers, bytes as hex.
fn raw_json(
    am: &automerge::Automerge,
    obj: &ObjId,
    prop: impl Into<automerge::Prop>,
    depth: usize,
) -> serde_json::Value {
    use serde_json::Value as J;
    match am.get(obj, prop) {
        Ok(Some((Value::Scalar(s), _))) => scalar_json(&s),
        Ok(Some((Value::Object(_), _))) if depth >= RAW_DEPTH => {
            J::String("(nested too deeply to show)".into())
        }
        Ok(Some((Value::Object(ObjType::Text), id))) => J::String(am.text(&id).unwrap_or_default()),
        Ok(Some((Value::Object(ObjType::List), id))) => J::Array(
            (0..am.length(&id))
                .map(|i| raw_json(am, &id, i, depth + 1))
                .collect(),
        ),
        Ok(Some((Value::Object(_), id))) => J::Object(
            am.keys(&id)
                .map(|k| {
                    let v = raw_json(am, &id, k.as_str(), depth + 1);
                    (k, v)
                })
                .collect(),
        ),
        Ok(None) | Err(_) => J::Null,
    }
}

fn scalar_json(s: &automerge::ScalarValue) -> serde_json::Value {
    use automerge::ScalarValue as S;
    use serde_json::{Value as J, json};
    match s {
        S::Bytes(b) => json!({ "bytes": hex::encode(b) }),
        S::Str(s) => J::String(s.to_string()),
        S::Int(i) | S::Timestamp(i) => json!(i),
        S::Uint(u) => json!(u),
        // NaN and infinities have no JSON number.
        S::F64(f) => {
            serde_json::Number::from_f64(*f).map_or_else(|| J::String(f.to_string()), J::Number)
        }
        S::Counter(c) => json!(i64::from(c)),
        S::Boolean(b) => J::Bool(*b),
        S::Unknown { type_code, bytes } => {
            json!({ "unknown_type": type_code, "bytes": hex::encode(bytes) })
        }
        S::Null => J::Null,
    }
}
