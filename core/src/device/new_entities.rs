//! Writing new entities (a rating, a seal, a round): on the tip the store keeps when no
//! document is held, so that a one-shot `duet rate` does not load the history
//! ([`crate::doc::Tip`]); from the document otherwise.

use super::{Device, DeviceError};
use crate::doc::New;
use crate::store::SpaceKind;

impl Device {
    /// Writes new entities (a rating, a seal, a round) in one change. Without a kept
    /// document, the change is built from the tip the store keeps (no load of the
    /// history); when there is none to build on, the document is loaded as for any edit.
    /// Entities naming a goal must name one the read models hold.
    pub(crate) fn put_new(
        &mut self,
        kind: SpaceKind,
        entities: &[New<'_>],
        message: &str,
        now: i64,
    ) -> Result<(), DeviceError> {
        if self.put_on_tip(kind, entities, message, now)? {
            return Ok(());
        }
        self.edit(kind, |doc, _| {
            let change = doc.put_new(entities, message, now)?;
            Ok(((), change.into_iter().collect()))
        })
    }

    /// [`Device::put_new`] on the stored tip; `false` when there is none to build on.
    fn put_on_tip(
        &mut self,
        kind: SpaceKind,
        entities: &[New<'_>],
        message: &str,
        now: i64,
    ) -> Result<bool, DeviceError> {
        let _lock = self.store.write_lock()?;
        let rec = self.store.space(kind)?;
        let mark = self.store.newest_change_row(&rec.id)?;
        // A departed space is refused by `edit`; a kept document writes as fast.
        if self.store.departed(&rec.id)?.is_some() || self.docs.holds(&rec.id, mark) {
            return Ok(false);
        }
        let Some(tip) = self.store.tip(&rec.id, &self.me)? else {
            return Ok(false);
        };
        let Some(change) = tip.put_new(entities, message, now)? else {
            return Ok(false);
        };
        self.store.commit_new(&rec.id, &change, entities, &tip)?;
        Ok(true)
    }
}
