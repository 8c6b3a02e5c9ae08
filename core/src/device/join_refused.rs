//! A device code's personal half refused for good after its shared half went through:
//! the device that made the code was removed (or the code withdrawn, spent or expired)
//! between the two joins. The device stays in the shared space but can never read the
//! personal one; the sync records that once (the personal space's alert, which `duet
//! status` shows), says what to do, and stops asking the relay.

use super::{Device, DeviceError};
use crate::advice::{NextStep, Warning};
use crate::protocol::ErrorCode;
use crate::store::{SpaceKind, SpaceRecord};
use crate::sync::{SyncError, SyncReport, Transport, TransportError};

/// How the alert of a personal space whose join was refused for good begins.
const JOIN_REFUSED: &str = "your personal space refused this device's join for good";

impl Device {
    /// Whether an earlier sync found `rec`'s join refused for good: nothing to sync there.
    pub(crate) fn join_refused_before(&self, rec: &SpaceRecord) -> Result<bool, DeviceError> {
        Ok(rec.kind == SpaceKind::Personal
            && self
                .store
                .alert(&rec.id)?
                .is_some_and(|a| a.starts_with(JOIN_REFUSED)))
    }

    /// Syncs `rec` (see [`Device::sync_one`]), unless an earlier sync found its join
    /// refused for good (`None`: nothing to sync); a sync that finds it so gives a
    /// report holding only the warning.
    pub(super) fn sync_unless_join_refused(
        &mut self,
        rec: &SpaceRecord,
        transport: &dyn Transport,
    ) -> Result<Option<SyncReport>, DeviceError> {
        if self.join_refused_before(rec)? {
            return Ok(None);
        }
        match self.sync_one(rec, transport) {
            Ok(report) => Ok(Some(report)),
            Err(e) => match self.personal_join_refused(rec, &e)? {
                Some(w) => Ok(Some(SyncReport {
                    warnings: vec![w],
                    ..SyncReport::default()
                })),
                None => Err(e),
            },
        }
    }

    /// `e`, the failure of syncing `rec`, as a warning when it is the relay refusing for
    /// good this device's join of its personal space while its shared space's join went
    /// through (recorded as the personal space's alert); `None` for any other failure.
    fn personal_join_refused(
        &mut self,
        rec: &SpaceRecord,
        e: &DeviceError,
    ) -> Result<Option<Warning>, DeviceError> {
        let DeviceError::Sync(SyncError::Transport(TransportError::Refused { body, .. })) = e
        else {
            return Ok(None);
        };
        let why = match body.error {
            ErrorCode::InviteRevoked => {
                "the device that made its code was removed, or the code withdrawn, before this half arrived"
            }
            ErrorCode::InviteExpired => "its code expired before this half arrived",
            ErrorCode::InviteUsed => "another device used its code first",
            _ => return Ok(None),
        };
        if rec.kind != SpaceKind::Personal || !self.store.join_unfinished(&rec.id, rec.cursor)? {
            return Ok(None);
        }
        let shared = self.store.space(SpaceKind::Shared)?;
        if self.store.join_unfinished(&shared.id, shared.cursor)? {
            return Ok(None);
        }
        let text = format!(
            "{JOIN_REFUSED} ({why}): this device is in the shared space, but it can never read your private reflections"
        );
        self.store.set_alert(&rec.id, Some(&text))?;
        Ok(Some(Warning::then(
            text,
            NextStep::JoinAgainInNewHome {
                device: hex::encode(self.me.device_key()),
            },
        )))
    }
}
