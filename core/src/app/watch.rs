//! What a long-running front end (`sync --watch`, the local app) needs to follow this
//! device: the relays to listen to, and whether other processes changed the store or
//! left changes unsent.

use crate::device::{Device, DeviceError};
use crate::event::SpaceId;
use crate::store::SpaceKind;

/// A space to listen to on its relay's live socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveTarget {
    /// Relay URL.
    pub relay: String,
    /// The space.
    pub space: SpaceId,
    /// Which of this device's spaces it is.
    pub kind: SpaceKind,
}

impl Device {
    /// The spaces that have a relay, to listen to.
    pub fn live_targets(&self) -> Result<Vec<LiveTarget>, DeviceError> {
        let mut targets = Vec::new();
        for rec in self.store.spaces()? {
            // A space this device departed serves it nothing more.
            if self.store.departed(&rec.id)?.is_some() {
                continue;
            }
            if let Some(relay) = rec.relay {
                targets.push(LiveTarget {
                    relay,
                    space: rec.id,
                    kind: rec.kind,
                });
            }
        }
        Ok(targets)
    }

    /// A number that changes whenever another process commits to this device's store
    /// (SQLite's `data_version`; this process's own commits do not move it).
    pub fn data_version(&self) -> Result<i64, DeviceError> {
        Ok(self.store.data_version()?)
    }

    /// Whether any space has changes or events not yet sent.
    pub fn has_unsent(&self) -> Result<bool, DeviceError> {
        for rec in self.store.spaces()? {
            if self.store.has_unsent(&rec.id)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
