//! One front-end action read and written as one: the home's write lock is held from
//! reading what decides a write (a page's "was" fields compared with what is stored) to
//! committing it, so that no other process (the command line beside the app, a watcher's
//! sync) writes in between. Reads never wait for the lock: without it, an edit committed
//! while the app's form waited its turn would pass the comparison and be written over.

use crate::device::{Device, DeviceError};

impl Device {
    /// Runs `f` on this device holding the home's write lock (re-entrant: the writes
    /// inside take it again at once).
    pub fn exclusively<T, E: From<DeviceError>>(
        &mut self,
        f: impl FnOnce(&mut Device) -> Result<T, E>,
    ) -> Result<T, E> {
        let _lock = self
            .store
            .write_lock()
            .map_err(|e| E::from(DeviceError::Store(e)))?;
        f(self)
    }
}
