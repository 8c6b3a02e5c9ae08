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
        "another duet command{} has been writing to {home} for {waited_s} s; nothing was changed. \
         {}",
        holder.map(|p| format!(" (process {p})")).unwrap_or_default(),
        busy_advice(*holder, *stopped)
    )]
    Busy {
        /// The home directory.
        home: PathBuf,
        /// Seconds waited.
        waited_s: u64,
        /// The process holding it, as it wrote in the lock file.
        holder: Option<u32>,
        /// Whether that process is stopped (Ctrl-Z): it will not finish by itself.
        stopped: bool,
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
    /// The filesystem that holds the home is mounted read-only (a disk the system
    /// remounted after errors, a read-only share): not the user's doing, nor a copy's.
    #[error(
        "the disk that holds {home} is mounted read-only: reading works, writing does not \
         (nothing saved before is lost); mount it for writing again (or restart after a \
         disk error), then run the command again"
    )]
    MountedReadOnly {
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
    #[error("cannot lock {path}: {cause}; {}", lock_advice(.cause))]
    Io {
        /// The lock file.
        path: PathBuf,
        /// What the system said (in the message, not a source: said once).
        cause: std::io::Error,
    },
}

/// What to do when the lock file could not be opened or locked: the permissions, or a
/// disk mounted read-only (which no permission puts right).
fn lock_advice(cause: &std::io::Error) -> &'static str {
    if cause.kind() == std::io::ErrorKind::ReadOnlyFilesystem {
        "the disk that holds the home is mounted read-only (nothing saved before is lost): mount it for writing again, then run the command again"
    } else {
        "check the home directory's permissions"
    }
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
    /// Read-only because its filesystem is mounted so (said so to a write).
    mounted: bool,
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

    /// The lock of a home on a filesystem mounted read-only: taking it always fails,
    /// saying so.
    pub fn mounted_read_only(home: &Path) -> HomeLock {
        let mut lock = Self::with(home, home.join(LOCK_FILE), None);
        if let Some(inner) = Arc::get_mut(&mut lock.inner) {
            inner.mounted = true;
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
                mounted: false,
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

    /// Takes the notice and the wait set on `other` (the lock of the same home, opened
    /// before: a process that opens its home again keeps how its writers wait).
    pub fn keep_settings_of(&self, other: &HomeLock) {
        let notice = lock_ignoring_poison(&other.inner.notice).clone();
        *lock_ignoring_poison(&self.inner.notice) = notice;
        let wait = *lock_ignoring_poison(&other.inner.wait);
        *lock_ignoring_poison(&self.inner.wait) = wait;
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
            } else if self.inner.mounted {
                LockError::MountedReadOnly { home }
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
                    Ok(()) => {
                        write_holder(file);
                        break;
                    }
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
                    let holder = holder_of(file);
                    return Err(LockError::Busy {
                        home: self.inner.home.clone(),
                        waited_s: waited.as_secs(),
                        holder,
                        stopped: holder.is_some_and(is_stopped),
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

/// What to do about a writer that holds the lock: wait, or, when it is stopped, resume
/// or end it.
fn busy_advice(holder: Option<u32>, stopped: bool) -> String {
    match holder {
        Some(p) if stopped => format!(
            "It is stopped (Ctrl-Z in a terminal?) and will not finish by itself: resume it \
             there with `fg`, or end it with `kill {p}`, then try again"
        ),
        _ => "Wait for it to finish (a `sync` with a slow relay, a join of a long history) \
              and try again"
            .to_string(),
    }
}

/// Writes this process's id into the lock file it has just taken, for a writer that
/// waits to name it (nothing else reads the file; a failure only leaves it unnamed).
fn write_holder(file: &File) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        let id = format!("{:<10}", std::process::id());
        let _ = file.write_at(id.as_bytes(), 0);
    }
    #[cfg(not(unix))]
    let _ = file;
}

/// The process id the lock's holder wrote ([`write_holder`]).
fn holder_of(file: &File) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 10];
        let n = file.read_at(&mut buf, 0).ok()?;
        std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        None
    }
}

/// Whether process `pid` is stopped (state `T` in `/proc`; never on systems without it).
fn is_stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
            Some(state == 'T')
        })
        .unwrap_or(false)
}

/// A lock file of a home (`path`), opened for reading and writing and made owner-only
/// if missing: the write lock's, and the store's open lock
/// ([`crate::store::OpenLock`]). A symbolic link in its place is refused, not followed:
/// followed, it had the file it names created or written (a process id) wherever it led.
pub(crate) fn open_lock_file(path: &Path) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    opts.open(path).map_err(|e| {
        if path
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            std::io::Error::other(format!(
                "it is a symbolic link, which duet does not follow in a home ({e}); remove it"
            ))
        } else {
            e
        }
    })
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
    fn a_writer_that_waits_in_vain_names_the_process_holding_the_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = HomeLock::open(dir.path()).expect("lock a");
        let b = HomeLock::open(dir.path()).expect("lock b");
        b.set_wait(Duration::from_millis(20));
        let _held = a.acquire().expect("a takes it");
        let err = b.acquire().expect_err("held");
        let me = std::process::id();
        assert!(
            matches!(err, LockError::Busy { holder: Some(p), stopped: false, .. } if p == me),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&format!("(process {me})")),
            "{err}"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_stopped_process_is_told_from_a_running_one() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep runs");
        let pid = child.id();
        assert!(!is_stopped(pid));
        let stop = |sig: &str| {
            std::process::Command::new("kill")
                .args([sig, &pid.to_string()])
                .status()
                .expect("kill runs")
        };
        assert!(stop("-STOP").success());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !is_stopped(pid) {
            assert!(std::time::Instant::now() < deadline, "never seen stopped");
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        let advice = busy_advice(Some(pid), true);
        assert!(advice.contains(&format!("kill {pid}")), "{advice}");
    }

    #[test]
    fn a_read_only_home_refuses_every_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = HomeLock::read_only(dir.path());
        assert!(matches!(l.acquire(), Err(LockError::ReadOnly { .. })));
    }
}
