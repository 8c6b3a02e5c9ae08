//! This person's reflections edited on two of their devices while apart: Automerge
//! merges the two edits of one text letter by letter, so the reflection reads as a mix
//! of both, and nothing else would say so (see [`crate::history::merged_reflections`]).

use serde::Serialize;

use crate::device::{Device, DeviceError};
use crate::store::SpaceKind;

/// One of this person's reflections whose text reads as a merge of edits made apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MergedReflection {
    /// Its id.
    pub id: String,
    /// A private one (the personal space).
    pub private: bool,
    /// What it reads now, cut to one line as the history shows texts.
    pub reads: String,
}

impl Device {
    /// This person's standing reflections, shared and private, that read as a merge of
    /// edits made on two of their devices while apart. Editing one again settles it.
    pub fn merged_reflections(&mut self) -> Result<Vec<MergedReflection>, DeviceError> {
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
            let mine = view
                .reflections
                .iter()
                .filter(|r| r.author == me)
                .map(|r| (r.id.as_str(), r.text.as_str()));
            for (id, text) in crate::history::merged_reflections(&edits, mine) {
                out.push(MergedReflection {
                    id: id.to_string(),
                    private: kind == SpaceKind::Personal,
                    reads: crate::history::short_text(text),
                });
            }
        }
        Ok(out)
    }
}
