//! Syncing a device's spaces: each from the document this process keeps when it is
//! current, the document the sync leaves kept for the next write or sync, and what a
//! sync leaves to do (membership changes to redo, this person's name in a space just
//! joined, the blind ratings now due).

use automerge::Change;

use super::{Device, DeviceError};
use crate::advice::{NextStep, Warning};
use crate::store::{SpaceKind, SpaceRecord};
use crate::sync::{SyncReport, Transport};

impl Device {
    /// Syncs one space, from the document this process keeps of it when it is current,
    /// and keeps the document the sync leaves (a later write or sync loads nothing).
    pub(crate) fn sync_one(
        &mut self,
        rec: &SpaceRecord,
        transport: &dyn Transport,
    ) -> Result<SyncReport, DeviceError> {
        // The sync checks the mark under the home's write lock, where it loads otherwise.
        let kept = self.docs.take_marked(&rec.id);
        let (report, doc) =
            crate::sync::sync_space(&mut self.store, &self.me, rec, transport, kept)?;
        if let Some((mark, doc)) = doc {
            self.docs.keep(rec.id, mark, doc);
        }
        Ok(report)
    }

    /// Syncs every space; adds this person's name to a newly joined shared document.
    /// Fails at the first space whose sync fails ([`Device::sync_each`] keeps what the
    /// spaces before it did).
    pub fn sync(
        &mut self,
        transport: &dyn Transport,
    ) -> Result<Vec<(SpaceKind, SyncReport)>, DeviceError> {
        match self.sync_each(transport)? {
            (done, None) => Ok(done),
            (_, Some((_, e))) => Err(e),
        }
    }

    /// [`Device::sync`], returning what the spaces synced before a failure did beside
    /// the failure and its space: the shared space synced stays said when the personal
    /// space's creation is refused (a relay's daily cap on new spaces, say).
    #[allow(clippy::type_complexity)]
    pub fn sync_each(
        &mut self,
        transport: &dyn Transport,
    ) -> Result<
        (
            Vec<(SpaceKind, SyncReport)>,
            Option<(SpaceKind, DeviceError)>,
        ),
        DeviceError,
    > {
        let mut out = Vec::new();
        // A removal of one's own device cut short between its two spaces is finished
        // first, and goes out with this sync.
        let finished = self.finish_own_removals()?;
        let mut failed = None;
        for rec in self.store.spaces()? {
            match self.sync_space_fully(&rec, transport, &finished) {
                Ok(Some(report)) => out.push((rec.kind, report)),
                Ok(None) => {}
                Err(e) => {
                    failed = Some((rec.kind, e));
                    break;
                }
            }
        }
        self.warn_of_own_devices_removed(&mut out)?;
        Ok((out, failed))
    }

    /// Syncs one space with what follows its sync (none for a join the relay refused).
    fn sync_space_fully(
        &mut self,
        rec: &SpaceRecord,
        transport: &dyn Transport,
        finished: &[(SpaceKind, [u8; 32])],
    ) -> Result<Option<SyncReport>, DeviceError> {
        let Some(mut report) = self.sync_unless_join_refused(rec, transport)? else {
            return Ok(None);
        };
        for (_, d) in finished.iter().filter(|(k, _)| *k == rec.kind) {
            report.warnings.push(Warning::new(format!(
                "device {} was still in this space after its removal from the other one \
                 was cut short (the command stopped); it is removed from here too",
                &hex::encode(d)[..12]
            )));
        }
        self.record_relay_clock(rec, transport, &mut report)?;
        self.redo_withdrawn(rec, transport, &mut report)?;
        if report.rotated && report.departed.is_none() {
            self.withdraw_codes_after_rotation(rec, transport, &mut report)?;
        }
        // A freshly joined space does not list this person yet: add the name (not in
        // a space this device has left or was removed from: nothing would send it).
        if report.unnamed && report.departed.is_none() {
            // On the document the sync just left (no second load of the history).
            let now = self.clock.now();
            self.edit(rec.kind, |doc, me| {
                let changes: Vec<Change> = if doc.people()?.contains_key(me.person_id.as_str()) {
                    Vec::new() // another process on this home added it meanwhile
                } else {
                    doc.set_person(&me.person_id, &me.name, now)?
                        .into_iter()
                        .collect()
                };
                Ok(((), changes))
            })?;
            let rec = self.store.space(rec.kind)?;
            let again = self.sync_one(&rec, transport)?;
            report.pushed_events += again.pushed_events;
            report.pushed_changes += again.pushed_changes;
            report.cursor = again.cursor;
        }
        if rec.kind == SpaceKind::Shared && report.departed.is_none() {
            self.reveal_after_sync(transport, &mut report)?;
        }
        Ok(Some(report))
    }

    /// Membership changes withdrawn after a conflict: redoes those the membership as it
    /// now stands still needs (the device is a member, the invite open), syncing again.
    fn redo_withdrawn(
        &mut self,
        rec: &SpaceRecord,
        transport: &dyn Transport,
        report: &mut SyncReport,
    ) -> Result<(), DeviceError> {
        // Membership changes withdrawn after a conflict: redo those the membership as
        // it now stands still needs (the device is a member, the invite open).
        let mut redo = std::mem::take(&mut report.redo);
        let mut held = std::mem::take(&mut report.held_for_redo);
        // A redone change can lose another race; try a few rounds.
        for _ in 0..3 {
            if redo.is_empty() && !held {
                break;
            }
            let mut redone = false;
            for r in redo.drain(..) {
                redone |= self.redo(rec.kind, &r, &mut report.warnings)?;
            }
            // Changes held back for a removal's redo go out now, whether it was
            // redone (under its new key) or is no longer needed.
            if !redone && !held {
                break;
            }
            let rec = self.store.space(rec.kind)?;
            let mut more = self.sync_one(&rec, transport)?;
            redo = std::mem::take(&mut more.redo);
            held = more.held_for_redo;
            report.absorb(more);
        }
        // Still refused: keep them on this device rather than drop them (a relay
        // that answers "conflict" falsely must not undo a removal or reopen an
        // invite); the next sync sends them again.
        let mut kept = false;
        for r in redo.drain(..) {
            kept |= self.redo(rec.kind, &r, &mut report.warnings)?;
        }
        if kept {
            report.warnings.push(Warning::then(
                "the relay keeps refusing a membership change of this device (a device removal or an invite's revocation) as conflicting; it stays on this device and is sent again by the next sync",
                NextStep::SyncAgain,
            ));
        }
        Ok(())
    }

    /// A device of this person that someone removed from the shared space (the
    /// partner: a lost phone, or one they distrust) still reads the personal space,
    /// which only this person can change: said once, as the removal arrives, with the
    /// way to take it out there too.
    fn warn_of_own_devices_removed(
        &self,
        out: &mut [(SpaceKind, SyncReport)],
    ) -> Result<(), DeviceError> {
        let Some((_, shared)) = out.iter_mut().find(|(k, _)| *k == SpaceKind::Shared) else {
            return Ok(());
        };
        let removed: Vec<[u8; 32]> = shared
            .membership
            .iter()
            .filter_map(|n| n.removed)
            .filter(|d| *d != self.me.device_key())
            .collect();
        if removed.is_empty() {
            return Ok(());
        }
        // Removed by this person (from another of their devices): that removal takes it
        // out of the personal space too, and may simply not have arrived yet.
        let shared_state =
            crate::sync::fold_state(&self.store, &self.store.space(SpaceKind::Shared)?.id)?;
        let me = self.me.person();
        let by_partner = |d: &[u8; 32]| {
            shared_state.departure(d).is_none_or(|dep| {
                shared_state
                    .all_devices()
                    .get(&dep.by)
                    .is_none_or(|m| m.person != me)
            })
        };
        let personal = self.store.space(SpaceKind::Personal)?;
        let state = crate::sync::fold_state(&self.store, &personal.id)?;
        for device in removed
            .iter()
            .filter(|d| state.is_member(d) && by_partner(d))
        {
            let short = &hex::encode(device)[..12];
            shared.warnings.push(Warning::then(
                format!(
                    "your device {short} was removed from the shared space, but it still \
                     reads your personal space (your private reflections), which only you \
                     can change"
                ),
                NextStep::RemoveOwnDevice {
                    device: hex::encode(device),
                },
            ));
        }
        Ok(())
    }

    /// A partner left and this sync started a new key epoch: every open code carries
    /// only the keys up to the old one, and no device is given a key after it joins, so
    /// each is withdrawn (as a removal does, [`Device::remove_device`]) and the
    /// withdrawals go out now; a device joining with one is refused and told to ask
    /// for a new code, instead of joining a space it could never read.
    fn withdraw_codes_after_rotation(
        &mut self,
        rec: &SpaceRecord,
        transport: &dyn Transport,
        report: &mut SyncReport,
    ) -> Result<(), DeviceError> {
        if self.ensure_member(SpaceKind::Shared).is_err() {
            return Ok(());
        }
        let withdrawn = self.revoke_invites(&crate::app::RevokeTarget::All)?;
        // A device code has a half in each space: count codes, not halves.
        if withdrawn.is_empty() {
            return Ok(());
        }
        let codes = withdrawn
            .iter()
            .filter(|r| r.space == "shared")
            .count()
            .max(1);
        report.warnings.push(Warning::then(
            format!(
                "{} made before the partner left {} withdrawn: {} only the key the partner \
                 knew",
                crate::words::count(codes, "open code", "open codes"),
                if codes == 1 { "was" } else { "were" },
                if codes == 1 {
                    "it carried"
                } else {
                    "they carried"
                },
            ),
            NextStep::MakeCodeAgain,
        ));
        let rec = self.store.space(rec.kind)?;
        report.absorb(self.sync_one(&rec, transport)?);
        Ok(())
    }
}
