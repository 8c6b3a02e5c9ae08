//! A leave the relay acknowledged but does not hold. A device that left reads the shared
//! space no more, so a relay that took the leave and lost it (or answered a push it never
//! stored) was never found out: the partner kept writing to a person who believed they
//! had left, under a key that person still held. At each sync the leaver asks the relay
//! what it stores at the leave's cursor (a read's `duet-after-hash`, which a relay gives a
//! departed device up to the event that ended its membership); another event or none
//! there, and the device gives back what the relay once took, the leave included.

use super::give_back::{Loss, give_back};
use super::{SyncError, SyncReport, Transport, TransportError};
use crate::identity::Identity;
use crate::store::{SpaceRecord, Store};

/// Gives the relay back its events when it does not hold this device's leave where it
/// acknowledged it; the give-back's refusal, if any. A relay that does not say what it
/// stores there (or cannot be read now) is not judged: the next sync asks again.
pub(super) fn give_back_lost_leave(
    store: &mut Store,
    rec: &SpaceRecord,
    me: &Identity,
    (relay, transport): (&str, &dyn Transport),
    report: &mut SyncReport,
) -> Result<Option<TransportError>, SyncError> {
    let Some((at, hash)) = store.own_last_acked(&rec.id, &me.device_key())? else {
        return Ok(None);
    };
    let Ok(page) = transport.pull(relay, &rec.id, at, 1, me) else {
        return Ok(None);
    };
    if !super::pull::anchor_moved(page.at_after, hash) {
        return Ok(None);
    }
    give_back(
        store,
        rec,
        relay,
        transport,
        report,
        Loss::Renumbered { at },
    )
}
