//! Reflections edited on two devices of their author while apart: Automerge merges the
//! two edits of one text letter by letter, so the reflection reads as a mix of both, and
//! nothing else would say so (see [`crate::history::merged_reflections`]). The author is
//! told to set it again; the partner, that it may read oddly until then.

use serde::Serialize;

use crate::device::{Device, DeviceError};
use crate::store::SpaceKind;

/// A reflection whose text reads as a merge of edits made apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MergedReflection {
    /// Its id.
    pub id: String,
    /// A private one (the personal space).
    pub private: bool,
    /// This person's own (else the partner's, whose name follows).
    pub yours: bool,
    /// The author's name, for the partner's.
    pub author_name: Option<String>,
    /// What it reads now, cut to one line as the history shows texts.
    pub reads: String,
}

impl Device {
    /// The standing reflections, this person's (shared and private) and the partner's,
    /// that read as a merge of edits made on two devices of their author while apart,
    /// of those with an edit among `arrived` (hex change hashes: what a sync brought, so
    /// that a merge is told once, not at each sync that brings another edit). Its
    /// author editing one again settles it.
    pub fn merged_reflections(
        &mut self,
        arrived: &std::collections::BTreeSet<String>,
    ) -> Result<Vec<MergedReflection>, DeviceError> {
        let me = self.me.person_id.to_string();
        let mut out = Vec::new();
        for kind in [SpaceKind::Shared, SpaceKind::Personal] {
            let rec = self.space(kind)?;
            let identity = self.me.clone();
            let edits = self.store.reflection_edits(&rec.id, &identity)?;
            if edits.is_empty() {
                continue;
            }
            let view = self.view(kind)?;
            let texts = view
                .reflections
                .iter()
                .map(|r| (r.id.as_str(), r.text.as_str()));
            let merged = crate::history::merged_reflections(&edits, texts);
            let news = merged.into_iter().filter(|(id, _)| {
                edits
                    .iter()
                    .any(|e| e.item.as_deref() == Some(*id) && arrived.contains(&e.change))
            });
            for (id, text) in news {
                let author = view
                    .reflections
                    .iter()
                    .find(|r| r.id == id)
                    .map(|r| &r.author);
                let yours = author.is_some_and(|a| *a == me);
                out.push(MergedReflection {
                    id: id.to_string(),
                    private: kind == SpaceKind::Personal,
                    yours,
                    author_name: author
                        .filter(|_| !yours)
                        .and_then(|a| view.people.get(a.as_str()))
                        .map(|p| p.name.clone()),
                    reads: crate::history::short_text(text),
                });
            }
        }
        Ok(out)
    }
}

impl Device {
    /// This person's reflections (shared and private) withdrawn on one of their devices
    /// though edited on another afterwards, while the two were apart: the edit is not
    /// shown (a withdrawn reflection stays withdrawn) and nothing else would say so. Each
    /// as (id, private).
    pub fn edits_after_withdrawal(&mut self) -> Result<Vec<(String, bool)>, DeviceError> {
        let me = self.me.person_id.to_string();
        let mut out = Vec::new();
        for kind in [SpaceKind::Shared, SpaceKind::Personal] {
            // As written: the shown view leaves withdrawn reflections out.
            let view = self.raw_view(kind)?;
            out.extend(
                view.reflections
                    .iter()
                    .filter(|r| r.author == me)
                    .filter(
                        |r| matches!((r.withdrawn_at, r.edited_at), (Some(w), Some(e)) if e > w),
                    )
                    .map(|r| (r.id.clone(), kind == SpaceKind::Personal)),
            );
        }
        Ok(out)
    }
}
