//! The live thread's hold on the device: a page that sets the home aside (starting
//! over) asks the live thread to let go of its device first, since SQLite removes a
//! database's log by its name when its last connection closes, and a connection closed
//! after the home was set up anew would remove the new log.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Whether the live thread holds a device, and whether a page wants it to let go.
#[derive(Default)]
pub struct LiveHold {
    /// Set by a page that needs the live thread to close its device.
    want: AtomicBool,
    /// Whether the live thread has a device open.
    holding: Mutex<bool>,
    /// Told when `holding` changes.
    changed: Condvar,
}

impl LiveHold {
    /// The live thread opened a device (true) or closed it (false).
    pub fn set_holding(&self, holding: bool) {
        let mut held = self.holding.lock().unwrap_or_else(|p| p.into_inner());
        *held = holding;
        self.changed.notify_all();
    }

    /// Whether a page wants the live thread to let go of its device.
    pub fn wanted(&self) -> bool {
        self.want.load(Ordering::Relaxed)
    }

    /// Asks the live thread to close its device and waits up to `within` for it (the
    /// caller holds the app's device slot, so that it opens none again meanwhile).
    /// False when it did not let go in time (a sync with a slow relay).
    pub fn let_go(&self, within: Duration) -> bool {
        self.want.swap(true, Ordering::Relaxed);
        let held = self.holding.lock().unwrap_or_else(|p| p.into_inner());
        let released = match self.changed.wait_timeout_while(held, within, |h| *h) {
            Ok((held, _)) => !*held,
            Err(_) => false,
        };
        self.want.swap(false, Ordering::Relaxed);
        released
    }
}
