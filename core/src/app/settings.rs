//! This device's settings: the relay every space syncs through, and the relay
//! operator's creation token.

use crate::device::{Device, DeviceError};

impl Device {
    /// Sets the relay of every space (a trailing `/` is dropped) and, when given, the
    /// creation token to send with this device's genesis events.
    pub fn set_relay(&mut self, url: &str, token: Option<&str>) -> Result<(), DeviceError> {
        let url = url.trim_end_matches('/');
        // A refusal for good is the word of the relay that gave it: another relay is
        // asked again (one that lied about a code keeps no space from this device).
        if self.relay()?.as_deref() != Some(url) {
            self.forget_join_refusals()?;
        }
        self.store.set_relay(url)?;
        if let Some(token) = token {
            self.set_create_token(token)?;
        }
        Ok(())
    }

    /// Keeps the relay operator's creation token on this device.
    pub fn set_create_token(&mut self, token: &str) -> Result<(), DeviceError> {
        Ok(self.store.set_create_token(Some(token))?)
    }

    /// The relay this device syncs through (every space has the same one), if set.
    pub fn relay(&self) -> Result<Option<String>, DeviceError> {
        Ok(self.store.spaces()?.into_iter().find_map(|rec| rec.relay))
    }
}
