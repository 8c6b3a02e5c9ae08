//! The home's open lock: every process with the store open holds a shared `flock` on
//! `duet.open` beside it for as long as its connection lives, and whatever sets the
//! store up, moves or deletes its files holds it exclusively meanwhile.
//!
//! SQLite names a database's log and shared memory after the database's path, and no
//! other lock covers a reader: a `duet history` that opened the store while `duet
//! start-over` moved its files aside made a log in the home for the moved database, and
//! the next store set up there read that log as its own (damaged for good, writes that
//! were said saved lost). A process that opened a store another was setting up read it
//! empty. Like the write lock ([`crate::lock`]) it is advisory, and the kernel drops it
//! when a process dies.

use std::fs::{File, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

/// File name of the open lock inside the home directory.
pub const OPEN_LOCK_FILE: &str = "duet.open";

/// How long setting a store up waits for processes that look at the home meanwhile
/// (they hold the lock for the moment it takes to find no store).
const SETUP_WAIT: Duration = Duration::from_secs(10);

/// How long moving a store's files waits for other processes to close it: a one-shot
/// command (a script polling `status`) holds it for a moment.
pub const MOVE_WAIT: Duration = Duration::from_secs(3);

/// The open lock, held (shared or exclusive) until dropped.
#[derive(Debug)]
pub struct OpenLock(File);

/// The lock file of `home`; opened for reading only where it cannot be made or written
/// (a `flock` needs no write access).
fn lock_file(home: &Path) -> Result<File, std::io::Error> {
    let path = home.join(OPEN_LOCK_FILE);
    crate::lock::open_lock_file(&path).or_else(|_| File::open(&path))
}

impl OpenLock {
    /// Held shared: waits while another process sets the store up or moves it.
    pub fn shared(home: &Path) -> Option<OpenLock> {
        let file = lock_file(home).ok()?;
        file.lock_shared().ok()?;
        Some(OpenLock(file))
    }

    /// Held exclusively to set a store up, once the processes that look at the home
    /// meanwhile let go (at most [`SETUP_WAIT`]; past it, the setup goes on without).
    pub fn to_set_up(home: &Path) -> Option<OpenLock> {
        Self::exclusive(home, SETUP_WAIT).ok().flatten()
    }

    /// Held exclusively to move or delete the store's files, once no other process has
    /// the store open, waiting up to `wait` for those that do (a one-shot command holds
    /// it for a moment; a watcher or the app for good): `Ok(None)` when one still has.
    pub fn to_move(home: &Path, wait: Duration) -> Result<Option<OpenLock>, std::io::Error> {
        Self::exclusive(home, wait)
    }

    /// Held exclusively once no other holder is left, waiting up to `wait`: `Ok(None)`
    /// when one still is.
    fn exclusive(home: &Path, wait: Duration) -> Result<Option<OpenLock>, std::io::Error> {
        let file = lock_file(home)?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(OpenLock(file))),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(TryLockError::WouldBlock) => return Ok(None),
                Err(TryLockError::Error(e)) => return Err(e),
            }
        }
    }

    /// Lets other processes open the store again, this one keeping it open (a store it
    /// has just set up). Linux's `flock` turns the exclusive lock into a shared one.
    pub fn share(&self) {
        let _ = self.0.lock_shared();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_store_keeps_its_files_from_moving_until_it_is_closed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let open = OpenLock::shared(dir.path()).expect("held shared");
        let other = OpenLock::shared(dir.path()).expect("shared with another");
        assert!(
            OpenLock::to_move(dir.path(), Duration::ZERO)
                .expect("lock file")
                .is_none()
        );
        drop((open, other));
        let moving = OpenLock::to_move(dir.path(), Duration::ZERO)
            .expect("lock file")
            .expect("no one has it open");
        assert!(
            OpenLock::to_move(dir.path(), Duration::ZERO)
                .expect("lock file")
                .is_none()
        );
        drop(moving);
        let setting_up = OpenLock::to_set_up(dir.path()).expect("exclusive");
        setting_up.share();
        let reader = OpenLock::shared(dir.path()).expect("shared once set up");
        assert!(
            OpenLock::to_move(dir.path(), Duration::ZERO)
                .expect("lock file")
                .is_none()
        );
        drop((setting_up, reader));
    }

    #[test]
    fn moving_waits_for_a_command_that_has_the_store_open_for_a_moment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reading = OpenLock::shared(dir.path()).expect("held shared");
        let (tx, rx) = std::sync::mpsc::channel();
        let home = dir.path().to_path_buf();
        let mover = std::thread::spawn(move || {
            tx.send(()).expect("send");
            OpenLock::to_move(&home, Duration::from_secs(60)).map(|l| l.is_some())
        });
        rx.recv().expect("the mover started");
        // A one-shot command that read for a moment, then ended.
        std::thread::sleep(Duration::from_millis(50));
        drop(reading);
        assert!(mover.join().expect("the mover").expect("the lock file"));
    }
}
