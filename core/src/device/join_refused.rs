//! A join the relay refuses for good: the device that made the code was removed (or the
//! code withdrawn, spent or expired) before the join reached the relay. Either the whole
//! join (a first sync that failed, then the code died) or only a device code's personal
//! half (its shared half went through first): then the device stays in the shared space
//! but can never read the personal one. The sync records the refusal as the space's
//! alert (`duet status` shows it, and writes there say it), says what to do, and stops
//! asking the relay about a personal space that refused it.

use super::{Device, DeviceError};
use crate::advice::{NextStep, Warning};
use crate::protocol::ErrorCode;
use crate::store::{SpaceKind, SpaceRecord};
use crate::sync::{SyncError, SyncReport, Transport, TransportError};

/// What the alert of a space whose join was refused for good says, in every case.
const JOIN_REFUSED: &str = "refused this device's join for good";

impl Device {
    /// The alert of `rec` when an earlier sync found its join refused for good.
    pub(crate) fn join_refused_before(
        &self,
        rec: &SpaceRecord,
    ) -> Result<Option<String>, DeviceError> {
        Ok(self
            .store
            .alert(&rec.id)?
            .filter(|a| a.contains(JOIN_REFUSED)))
    }

    /// The error for a write in `rec` whose join never finished: refused for good (said
    /// so, with what to do), or still to be finished by a sync.
    pub(crate) fn unfinished_join(&self, rec: &SpaceRecord) -> Result<DeviceError, DeviceError> {
        Ok(match self.join_refused_before(rec)? {
            Some(alert) => DeviceError::JoinRefused {
                alert,
                device: self
                    .joined_shared()?
                    .then(|| hex::encode(self.me.device_key())),
                refusal: None,
            },
            None => DeviceError::JoinUnfinished,
        })
    }

    /// Syncs `rec` (see [`Device::sync_one`]), unless an earlier sync found a personal
    /// space's join refused for good (`None`: nothing to sync); a sync that finds it so
    /// gives a report holding only the warning.
    pub(super) fn sync_unless_join_refused(
        &mut self,
        rec: &SpaceRecord,
        transport: &dyn Transport,
    ) -> Result<Option<SyncReport>, DeviceError> {
        if rec.kind == SpaceKind::Personal && self.join_refused_before(rec)?.is_some() {
            return Ok(None);
        }
        match self.sync_one(rec, transport) {
            Ok(report) => Ok(Some(report)),
            Err(e) => match self.join_refused(rec, &e)? {
                Some(w) => Ok(Some(SyncReport {
                    warnings: vec![w],
                    ..SyncReport::default()
                })),
                None => Err(e),
            },
        }
    }

    /// Forgets the refusals for good of this device's joins (their alerts), so that the
    /// next sync asks the relay again.
    pub(crate) fn forget_join_refusals(&mut self) -> Result<(), DeviceError> {
        for rec in self.store.spaces()? {
            if self.join_refused_before(&rec)?.is_some() {
                self.store.set_alert(&rec.id, None)?;
            }
        }
        Ok(())
    }

    /// Whether the relay refused this device's whole join for good: it is in no space,
    /// and a new code may set its home up again.
    pub fn joined_nothing_for_good(&self) -> Result<bool, DeviceError> {
        if self.joined_shared()? {
            return Ok(false);
        }
        for rec in self.store.spaces()? {
            if self.join_refused_before(&rec)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether this person wrote anything on this device (a goal, a rating, a
    /// reflection, private ones included) in either space: what a join refused for good
    /// must not take with it when a new code sets the home up again.
    pub(crate) fn wrote_anything(&mut self) -> Result<bool, DeviceError> {
        let me = self.me.person_id.to_string();
        for kind in [SpaceKind::Shared, SpaceKind::Personal] {
            if self.store.space(kind).is_err() {
                continue;
            }
            let v = self.raw_view(kind)?;
            if v.goals.iter().any(|g| g.created_by == me)
                || v.ratings.iter().any(|r| r.rater == me)
                || v.seals.iter().any(|s| s.rater == me)
                || v.reflections.iter().any(|r| r.author == me)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether this device's join of the shared space went through.
    pub(crate) fn joined_shared(&self) -> Result<bool, DeviceError> {
        let shared = self.store.space(SpaceKind::Shared)?;
        Ok(!self.store.join_unfinished(&shared.id, shared.cursor)?)
    }

    /// `e`, the failure of syncing `rec`, when it is the relay refusing this device's
    /// join of `rec` for good, recorded as the space's alert: a warning when only the
    /// personal space refused it (the shared space syncs on), the refusal as an error
    /// when this device joined nothing; `None` for any other failure.
    fn join_refused(
        &mut self,
        rec: &SpaceRecord,
        e: &DeviceError,
    ) -> Result<Option<Warning>, DeviceError> {
        let DeviceError::Sync(SyncError::Transport(TransportError::Refused { status, body })) = e
        else {
            return Ok(None);
        };
        let why = match body.error {
            ErrorCode::InviteRevoked => {
                "the device that made its code was removed, or the code withdrawn, before it arrived"
            }
            ErrorCode::InviteExpired => "its code expired before it arrived",
            ErrorCode::InviteUsed => "another device used its code first",
            _ => return Ok(None),
        };
        if !self.store.join_unfinished(&rec.id, rec.cursor)? {
            return Ok(None);
        }
        if rec.kind == SpaceKind::Personal && self.joined_shared()? {
            let alert = format!(
                "your personal space {JOIN_REFUSED} ({why}): this device is in the shared space, but it can never read your private reflections"
            );
            self.store.set_alert(&rec.id, Some(&alert))?;
            return Ok(Some(Warning::then(
                alert,
                NextStep::JoinAgain {
                    device: Some(hex::encode(self.me.device_key())),
                },
            )));
        }
        let alert = format!("the relay {JOIN_REFUSED} ({why}), so this device joined nothing");
        self.store.set_alert(&rec.id, Some(&alert))?;
        Err(DeviceError::JoinRefused {
            alert,
            device: None,
            refusal: Some(Box::new((*status, body.clone()))),
        })
    }
}
