//! The home's write lock: one writer at a time per home, across processes.
//!
//! Every operation that reads the document or the store to decide what to write holds
//! this lock from the read to the commit, so two `duet` processes on one home (a watcher
//! beside a `rate`, two commands started by a script) never make two Automerge changes
//! with the same actor sequence number. It is an advisory `flock` on `duet.lock` beside
//! the database (docs/decisions.md says why not SQLite's own write lock): the kernel drops
//! it when a process dies, so a crash never leaves the home locked. Readers never take
//! it; SQLite's WAL gives them a stable view while a writer works.
//!
//! The lock is re-entrant within one [`HomeLock`] (a workflow that writes in several
//! steps may call helpers that take it again); separate `HomeLock`s on the same home,
//! in one process or in several, exclude each other.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// File name of the lock inside the home directory.
pub const LOCK_FILE: &str = "duet.lock";

/// How long a writer waits for another before it says so.
pub const NOTICE_AFTER: Duration = Duration::from_secs(1);

/// How long a writer waits for another before it gives up (changing nothing).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process held the lock for the whole wait.
    #[error(
        "another duet command has been writing to {home} for {waited_s} s; nothing was changed. \
         Wait for it to finish (a `sync` with a slow relay, a join of a long history) and try again"
    )]
    Busy {
        /// The home directory.
        home: PathBuf,
        /// Seconds waited.
        waited_s: u64,
    },
    /// The home cannot be written (a read-only copy or another user's files).
    #[error(
        "{home} is read-only for this user: reading works, writing does not; \
         run the command as the home's owner or on a writable copy"
    )]
    ReadOnly {
        /// The home directory.
        home: PathBuf,
    },
    /// The home's disk is full: it was opened for reading only.
    #[error(
        "the disk that holds {home} is full: reading works, writing does not (nothing saved \
         before is lost); free some space, then run the command again"
    )]
    DiskFull {
        /// The home directory.
        home: PathBuf,
    },
    /// The lock file could not be opened or locked.
    #[error("cannot lock {path}: {cause}; check the home directory's permissions")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// What the system said (in the message, not a source: said once).
        cause: std::io::Error,
    },
}

/// Called once when a writer has waited [`NOTICE_AFTER`] for another process.
pub type WaitNotice = Arc<dyn Fn() + Send + Sync>;

/// The write lock of one home, as held by one store.
#[derive(Clone)]
pub struct HomeLock {
    inner: Arc<Inner>,
}

struct Inner {
    home: PathBuf,
    path: PathBuf,
    /// `None` for a read-only home: every attempt to write fails.
    file: Option<File>,
    /// Read-only because its disk is full (said so to a write).
    full: bool,
    /// How many guards of this lock are alive (re-entrancy).
    depth: Mutex<u32>,
    notice: Mutex<Option<WaitNotice>>,
    wait: Mutex<Duration>,
}

impl std::fmt::Debug for HomeLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HomeLock")
            .field("path", &self.inner.path)
            .field("writable", &self.inner.file.is_some())
            .finish()
    }
}

impl HomeLock {
    /// The lock of `home`, creating its file (owner-only) if missing.
    pub fn open(home: &Path) -> Result<HomeLock, LockError> {
        let path = home.join(LOCK_FILE);
        let file = open_lock_file(&path).map_err(|source| LockError::Io {
            path: path.clone(),
            cause: source,
        })?;
        Ok(Self::with(home, path, Some(file)))
    }

    /// The lock of a home this user may only read: taking it always fails.
    pub fn read_only(home: &Path) -> HomeLock {
        Self::with(home, home.join(LOCK_FILE), None)
    }

    /// The lock of a home opened for reading only because its disk is full: taking it
    /// always fails, saying so.
    pub fn disk_full(home: &Path) -> HomeLock {
        let mut lock = Self::with(home, home.join(LOCK_FILE), None);
        if let Some(inner) = Arc::get_mut(&mut lock.inner) {
            inner.full = true;
        }
        lock
    }

    fn with(home: &Path, path: PathBuf, file: Option<File>) -> HomeLock {
        HomeLock {
            inner: Arc::new(Inner {
                home: home.to_path_buf(),
                path,
                file,
                full: false,
                depth: Mutex::new(0),
                notice: Mutex::new(None),
                wait: Mutex::new(DEFAULT_WAIT),
            }),
        }
    }

    /// Whether writes can ever take this lock.
    pub fn writable(&self) -> bool {
        self.inner.file.is_some()
    }

    /// Sets what to do when a writer waits for another process (a front end prints
    /// "another duet command is writing; waiting").
    pub fn on_wait(&self, notice: WaitNotice) {
        *lock_ignoring_poison(&self.inner.notice) = Some(notice);
    }

    /// Sets how long a writer waits before giving up.
    pub fn set_wait(&self, wait: Duration) {
        *lock_ignoring_poison(&self.inner.wait) = wait;
    }

    /// Takes the lock, waiting for another process for at most the configured time.
    /// Re-entrant: a second guard of the same lock is granted at once.
    pub fn acquire(&self) -> Result<WriteGuard, LockError> {
        let Some(file) = &self.inner.file else {
            let home = self.inner.home.clone();
            return Err(if self.inner.full {
                LockError::DiskFull { home }
            } else {
                LockError::ReadOnly { home }
            });
        };
        let mut depth = lock_ignoring_poison(&self.inner.depth);
        if *depth == 0 {
            let wait = *lock_ignoring_poison(&self.inner.wait);
            let start = Instant::now();
            let mut told = false;
            loop {
                match file.try_lock() {
                    Ok(()) => break,
                    Err(TryLockError::WouldBlock) => {}
                    Err(TryLockError::Error(source)) => {
                        return Err(LockError::Io {
                            path: self.inner.path.clone(),
                            cause: source,
                        });
                    }
                }
                let waited = start.elapsed();
                if waited >= wait {
                    return Err(LockError::Busy {
                        home: self.inner.home.clone(),
                        waited_s: waited.as_secs(),
                    });
                }
                if !told && waited >= NOTICE_AFTER {
                    told = true;
                    if let Some(n) = lock_ignoring_poison(&self.inner.notice).as_ref() {
                        n();
                    }
                }
                // The other writer holds the lock for milliseconds (one command's
                // commit); polling briefly keeps this free of any timer thread.
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        *depth += 1;
        Ok(WriteGuard {
            inner: self.inner.clone(),
        })
    }
}

/// Proof that this store holds its home's write lock; released on drop.
#[must_use = "the lock is released when the guard is dropped"]
pub struct WriteGuard {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WriteGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteGuard")
    }
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        let mut depth = lock_ignoring_poison(&self.inner.depth);
        *depth = depth.saturating_sub(1);
        if *depth == 0
            && let Some(file) = &self.inner.file
        {
            // Closing the process releases it too; an error here changes nothing.
            let _ = file.unlock();
        }
    }
}

/// A lock file of a home (`path`), opened for reading and writing and made owner-only
/// if missing: the write lock's, and the store's open lock
/// ([`crate::store::OpenLock`]).
pub(crate) fn open_lock_file(path: &Path) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// A poisoned mutex only means another thread panicked while holding it; the counter
/// and settings inside are still meaningful.
fn lock_ignoring_poison<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_home_waits_then_gives_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = HomeLock::open(dir.path()).expect("lock a");
        let b = HomeLock::open(dir.path()).expect("lock b");
        b.set_wait(Duration::from_millis(50));
        let held = a.acquire().expect("a takes it");
        let again = a.acquire().expect("re-entrant");
        assert!(matches!(b.acquire(), Err(LockError::Busy { .. })));
        drop(again);
        assert!(
            matches!(b.acquire(), Err(LockError::Busy { .. })),
            "still held by the outer guard"
        );
        drop(held);
        let _g = b.acquire().expect("free once a let go");
    }

    #[test]
    fn a_read_only_home_refuses_every_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = HomeLock::read_only(dir.path());
        assert!(matches!(l.acquire(), Err(LockError::ReadOnly { .. })));
    }
}
