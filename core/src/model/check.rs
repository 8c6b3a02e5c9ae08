//! Hydration with the model's ranges: the `#[autosurgeon(hydrate = ...)]` of each
//! field. A value out of range fails to hydrate, so its entity is never read; a text
//! object longer than the model's limit is read clipped to it instead.

use std::collections::BTreeMap;

use super::{Hydrate, HydrateError, Invalid, Prop, ReadDoc, Text, limits, valid};

fn refuse(e: Invalid) -> HydrateError {
    HydrateError::unexpected("a value within the model's ranges", e.to_string())
}

pub fn level<D: ReadDoc>(
    doc: &D,
    obj: &automerge::ObjId,
    prop: Prop<'_>,
) -> Result<crate::vocab::Level, HydrateError> {
    let v = i64::hydrate(doc, obj, prop)?;
    valid::level(v).map_err(refuse)?;
    crate::vocab::Level::try_from(v).map_err(|_| refuse(Invalid::Level(v)))
}

pub fn time<D: ReadDoc>(
    doc: &D,
    obj: &automerge::ObjId,
    prop: Prop<'_>,
) -> Result<i64, HydrateError> {
    let v = i64::hydrate(doc, obj, prop)?;
    valid::time(v).map_err(refuse)?;
    Ok(v)
}

pub fn opt_time<D: ReadDoc>(
    doc: &D,
    obj: &automerge::ObjId,
    prop: Prop<'_>,
) -> Result<Option<i64>, HydrateError> {
    let v = optional::<D, i64>(doc, obj, prop)?;
    v.map_or(Ok(()), valid::time).map_err(refuse)?;
    Ok(v)
}

/// An optional field: absent reads as null, like a null (an independent client, or
/// a newer or older version, may leave it out).
fn optional<D: ReadDoc, T: Hydrate>(
    doc: &D,
    obj: &automerge::ObjId,
    prop: Prop<'_>,
) -> Result<Option<T>, HydrateError> {
    if doc.get(obj, &prop)?.is_none() {
        return Ok(None);
    }
    Option::<T>::hydrate(doc, obj, prop)
}

fn string<D: ReadDoc>(
    doc: &D,
    obj: &automerge::ObjId,
    prop: Prop<'_>,
    max: usize,
) -> Result<String, HydrateError> {
    let v = String::hydrate(doc, obj, prop)?;
    valid::length(&v, max).map_err(refuse)?;
    Ok(v)
}

fn opt_string<D: ReadDoc>(
    doc: &D,
    obj: &automerge::ObjId,
    prop: Prop<'_>,
    max: usize,
) -> Result<Option<String>, HydrateError> {
    let v = optional::<D, String>(doc, obj, prop)?;
    if let Some(s) = &v {
        valid::length(s, max).map_err(refuse)?;
    }
    Ok(v)
}

pub fn opt_bool<D: ReadDoc>(
    doc: &D,
    obj: &automerge::ObjId,
    prop: Prop<'_>,
) -> Result<Option<bool>, HydrateError> {
    optional::<D, bool>(doc, obj, prop)
}

pub fn sealed<D: ReadDoc>(
    doc: &D,
    obj: &automerge::ObjId,
    prop: Prop<'_>,
) -> Result<String, HydrateError> {
    string(doc, obj, prop, limits::MAX_SEALED_CHARS)
}

pub fn word<D: ReadDoc, T: crate::vocab::Vocabulary>(
    doc: &D,
    obj: &automerge::ObjId,
    prop: Prop<'_>,
) -> Result<crate::vocab::Word<T>, HydrateError> {
    Ok(crate::vocab::Word::read(&id(doc, obj, prop)?))
}

pub fn id<D: ReadDoc>(
    doc: &D,
    obj: &automerge::ObjId,
    prop: Prop<'_>,
) -> Result<String, HydrateError> {
    let v = String::hydrate(doc, obj, prop)?;
    valid::id(&v).map_err(refuse)?;
    Ok(v)
}

pub fn opt_id<D: ReadDoc>(
    doc: &D,
    obj: &automerge::ObjId,
    prop: Prop<'_>,
) -> Result<Option<String>, HydrateError> {
    let v = optional::<D, String>(doc, obj, prop)?;
    if let Some(s) = &v {
        valid::id(s).map_err(refuse)?;
    }
    Ok(v)
}

pub fn name<D: ReadDoc>(
    doc: &D,
    obj: &automerge::ObjId,
    prop: Prop<'_>,
) -> Result<String, HydrateError> {
    string(doc, obj, prop, limits::MAX_NAME_CHARS)
}

pub fn opt_text<D: ReadDoc>(
    doc: &D,
    obj: &automerge::ObjId,
    prop: Prop<'_>,
) -> Result<Option<String>, HydrateError> {
    opt_string(doc, obj, prop, limits::MAX_TEXT_CHARS)
}

pub fn text<D: ReadDoc>(
    doc: &D,
    obj: &automerge::ObjId,
    prop: Prop<'_>,
) -> Result<Text, HydrateError> {
    let v = Text::hydrate(doc, obj, prop)?;
    if valid::length(v.as_str(), limits::MAX_TEXT_CHARS).is_ok() {
        return Ok(v);
    }
    // Clipped, not refused: two partners' concurrent splices may each be short and
    // together too long, and a goal's texts are shared (`rules::shape`): refusing would
    // hide the whole goal.
    let clipped: String = v.as_str().chars().take(limits::MAX_TEXT_CHARS).collect();
    Ok(Text::with_value(clipped))
}

pub fn due<D: ReadDoc>(
    doc: &D,
    obj: &automerge::ObjId,
    prop: Prop<'_>,
) -> Result<Option<String>, HydrateError> {
    let v = optional::<D, String>(doc, obj, prop)?;
    if let Some(s) = &v {
        valid::due(s).map_err(refuse)?;
    }
    Ok(v)
}

pub fn weights<D: ReadDoc>(
    doc: &D,
    obj: &automerge::ObjId,
    prop: Prop<'_>,
) -> Result<BTreeMap<String, f64>, HydrateError> {
    let v = BTreeMap::<String, f64>::hydrate(doc, obj, prop)?;
    for (person, w) in &v {
        valid::length(person, limits::MAX_ID_CHARS).map_err(refuse)?;
        valid::weight(*w).map_err(refuse)?;
    }
    Ok(v)
}
