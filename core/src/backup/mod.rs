//! Backing up this device into one passphrase-encrypted file, and restoring it.
//!
//! A backup holds the device's identity (secret key, person, name), every space's keys of
//! every epoch, relay and creation token, its document, and the device's own events the
//! relay has not acknowledged; `format` seals it (Argon2id, then XChaCha20-Poly1305),
//! `contents` says what is inside, `restore` brings the device back.
//!
//! A restore brings back the *same* device key, not a new device of the same person: a
//! new device must be added by a device that still exists (the lost one is the only one
//! in the common case), and the partner would have to see and accept a new device. The
//! price is that a device key must never write from two places: a restore therefore
//! reads this device's whole history from the relay before anything can be written, so
//! its next event continues its own chain (see `restore`), and the docs say to restore
//! only a device that is lost.

mod contents;
mod format;
mod restore;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::device::{Device, DeviceError};
use crate::store::StoreError;

pub use format::{HEADER_LEN, KdfParams, MAGIC, VERSION};
pub use restore::{
    Reroute, Restored, RestoredSpace, check_restore_target, restore, restore_bytes,
    restore_stopped, restore_via,
};

/// The shortest passphrase a backup is written with.
pub const MIN_PASSPHRASE_CHARS: usize = 10;

/// The largest backup file read (a restore reads it whole).
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Why a backup or a restore failed. Nothing is written when one fails.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The file does not start with the backup marker.
    #[error("this file is not a duet backup")]
    NotABackup,
    /// A format version this duet does not know.
    #[error(
        "this backup was written in format version {0}, which this version of duet does not read"
    )]
    UnknownVersion(u16),
    /// Shorter than its header says.
    #[error(
        "the backup file is cut short ({have} of {expected} bytes): it was not copied completely"
    )]
    Truncated {
        /// Bytes present.
        have: u64,
        /// Bytes the header announces.
        expected: u64,
    },
    /// Altered or unreadable.
    #[error("the backup file is damaged: {0}")]
    Damaged(String),
    /// The passphrase does not derive the key the file was sealed with.
    #[error("the passphrase does not open this backup")]
    WrongPassphrase,
    /// Too short a passphrase for a file that holds the device's keys.
    #[error(
        "the passphrase is too short: a backup holds this device's keys, so use at least {0} characters (several words)"
    )]
    ShortPassphrase(usize),
    /// The backup file exists already.
    #[error("{0} exists already")]
    Exists(PathBuf),
    /// The backup file would be written inside the device's own home.
    #[error(
        "{0} is inside this device's home: a backup there is lost with the device (and replacing a file there can break it)"
    )]
    InHome(PathBuf),
    /// --force over something that is not a regular file (a symlink, a device node).
    #[error("{0} is not a regular file; --force replaces only a file")]
    NotAFile(PathBuf),
    /// The target home holds a device already.
    #[error("{0} already holds a duet device; a restore never replaces one")]
    HomeHasDevice(PathBuf),
    /// The target home holds other files.
    #[error("{0} is not empty; a restore creates a new home")]
    HomeNotEmpty(PathBuf),
    /// Another restore into the same home is running.
    #[error("another restore into {0} is running")]
    RestoreRunning(PathBuf),
    /// The restore's lock file beside the home belongs to another user of the machine.
    #[error(
        "{0} belongs to another user of this machine, who could hold every restore into \
         this home: restore into a home in a folder of your own (not a shared one such as \
         /tmp), or have that file removed"
    )]
    RestoreLockNotOwn(PathBuf),
    /// A file could not be read or written.
    #[error("cannot {action} {path}: {cause}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// What the system said (in the message, not a source: said once).
        cause: std::io::Error,
    },
    /// The relay did not give this device's whole history back.
    #[error("the relay did not serve this device's whole history ({0}); nothing was restored")]
    Incomplete(String),
    /// The relay refused this device's events.
    #[error("the relay refused this device's events ({0}); nothing was restored")]
    RelayRefused(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A device workflow (the sync of a restore) failed.
    #[error(transparent)]
    Device(#[from] DeviceError),
}

impl crate::advice::Advice for BackupError {
    fn next_step(&self) -> Option<crate::advice::NextStep> {
        match self {
            BackupError::Store(e) => e.next_step(),
            BackupError::Device(e) => e.next_step(),
            _ => None,
        }
    }
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BackupError + 'a {
    move |source| BackupError::Io {
        action,
        path: path.to_path_buf(),
        // The system's words name its error number ("os error 28"), not what to do.
        cause: match source.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                std::io::Error::new(
                    source.kind(),
                    "the disk is full (nothing was written there: free some space, then try \
                     again)",
                )
            }
            _ => source,
        },
    }
}

/// What a backup wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupSummary {
    /// The file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Spaces in it.
    pub spaces: usize,
    /// Own events in it that the relay had not acknowledged yet.
    pub unsent_events: usize,
}

/// Refuses a backup path that exists unless `force`: call before asking for a
/// passphrase.
pub fn check_backup_target(path: &Path, force: bool) -> Result<(), BackupError> {
    // A backup to this name refused for the file there still clears what a killed one
    // left beside it.
    let (dir, prefix) = temp_place(path);
    clear_stale_temps(&dir, &prefix);
    if !force && std::fs::symlink_metadata(path).is_ok() {
        return Err(BackupError::Exists(path.to_path_buf()));
    }
    Ok(())
}

/// Refuses a backup file inside the device's `home` (it would be lost with the device,
/// and `--force` replaced the device's own database), and `--force` over anything but a
/// regular file (a symlink or a device node is not a backup to replace).
pub fn check_backup_place(path: &Path, force: bool, home: &Path) -> Result<(), BackupError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let (Ok(dir), Ok(home)) = (dir.canonicalize(), home.canonicalize())
        && dir.starts_with(&home)
    {
        return Err(BackupError::InHome(path.to_path_buf()));
    }
    if force && std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(BackupError::NotAFile(path.to_path_buf()));
    }
    Ok(())
}

/// Writes a backup of `dev` to `path`, sealed under `passphrase`.
pub fn backup(
    dev: &Device,
    path: &Path,
    passphrase: &str,
    force: bool,
) -> Result<BackupSummary, BackupError> {
    backup_with(dev, path, passphrase, force, KdfParams::DEFAULT)
}

/// [`backup`] with given key-derivation costs (tests use cheap ones).
pub fn backup_with(
    dev: &Device,
    path: &Path,
    passphrase: &str,
    force: bool,
    params: KdfParams,
) -> Result<BackupSummary, BackupError> {
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(BackupError::ShortPassphrase(MIN_PASSPHRASE_CHARS));
    }
    check_backup_target(path, force)?;
    let sealed = seal_with(dev, passphrase, params)?;
    write_private(path, &sealed.bytes, force)?;
    Ok(BackupSummary {
        path: path.to_path_buf(),
        bytes: sealed.bytes.len() as u64,
        spaces: sealed.spaces,
        unsent_events: sealed.unsent_events,
    })
}

/// A backup made in memory (the bytes of the file [`backup`] writes), for a front end
/// that hands it on itself, such as `duet app`'s download.
pub struct SealedBackup {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// Spaces in it.
    pub spaces: usize,
    /// Own events in it that the relay had not acknowledged yet.
    pub unsent_events: usize,
}

/// Seals a backup of `dev` under `passphrase` in memory.
pub fn seal(dev: &Device, passphrase: &str) -> Result<SealedBackup, BackupError> {
    seal_with(dev, passphrase, KdfParams::DEFAULT)
}

/// [`seal`] with given key-derivation costs.
pub fn seal_with(
    dev: &Device,
    passphrase: &str,
    params: KdfParams,
) -> Result<SealedBackup, BackupError> {
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(BackupError::ShortPassphrase(MIN_PASSPHRASE_CHARS));
    }
    let contents = contents::Contents::collect(dev)?;
    let unsent_events = contents.spaces.iter().map(|s| s.unsent_events.len()).sum();
    let spaces = contents.spaces.len();
    let plain = zeroize::Zeroizing::new(
        serde_json::to_vec(&contents)
            .map_err(|e| BackupError::Damaged(format!("cannot encode: {e}")))?,
    );
    drop(contents);
    Ok(SealedBackup {
        bytes: format::seal(&plain, passphrase, params)?,
        spaces,
        unsent_events,
    })
}

/// The folder a backup to `path` writes its temporary file in, and that file's name
/// before its random part.
fn temp_place(path: &Path) -> (PathBuf, String) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "backup".into());
    (dir, format!(".{name}.tmp-"))
}

/// Removes the temporary files named `prefix…` in `dir` that a backup killed while it
/// wrote left behind (a sealed copy of the device's keys, however partial, that the
/// person does not know of): those no running backup holds locked, and not just made.
fn clear_stale_temps(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let settled = |m: &std::fs::Metadata| {
        m.modified()
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > std::time::Duration::from_secs(5))
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(prefix));
        let stale = ours
            && std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && settled(&m))
            && std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .is_ok_and(|f| f.try_lock().is_ok());
        if stale {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Writes `bytes` to `path` atomically (a private temporary file beside it, synced,
/// then renamed over it, or without `force` linked to it only if nothing is there:
/// another backup written to the same name meanwhile is not replaced), readable by its
/// owner only.
fn write_private(path: &Path, bytes: &[u8], force: bool) -> Result<(), BackupError> {
    // (What a killed backup left was cleared by `check_backup_target`, run first.)
    let (dir, prefix) = temp_place(path);
    let tmp = dir.join(format!(
        "{prefix}{}",
        hex::encode(crate::ids::random_bytes::<4>())
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let written = (|| {
        let mut f = opts.open(&tmp)?;
        // Held while it is written: a temporary file nobody holds is a killed backup's.
        let _ = f.try_lock();
        f.write_all(bytes)?;
        f.sync_all()?;
        if force {
            return std::fs::rename(&tmp, path);
        }
        match std::fs::hard_link(&tmp, path) {
            // The backup is in place; the temporary name left behind is only clutter.
            Ok(()) => {
                let _ = std::fs::remove_file(&tmp);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e),
            // A file system without links: the check before sealing has to do.
            Err(_) => std::fs::rename(&tmp, path),
        }
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            return Err(BackupError::Exists(path.to_path_buf()));
        }
        return Err(io("write", path)(e));
    }
    // Make the rename itself durable where the platform allows opening a directory.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads a backup file whole, refusing one larger than any backup, and one that does not
/// start as a backup before reading the rest (`/dev/zero`, whose size says 0, was read
/// until memory ran out; a large other file was read whole first).
fn read_file(path: &Path) -> Result<Vec<u8>, BackupError> {
    use std::io::Read as _;
    let meta = std::fs::metadata(path).map_err(io("read", path))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let file = std::fs::File::open(path).map_err(io("read", path))?;
    let mut bytes = Vec::new();
    let mut reading = file.take(MAX_FILE_BYTES + 1);
    (&mut reading)
        .take(MAGIC.len() as u64)
        .read_to_end(&mut bytes)
        .map_err(io("read", path))?;
    if bytes.len() < MAGIC.len() || bytes[..] != MAGIC[..] {
        return Err(BackupError::NotABackup);
    }
    reading.read_to_end(&mut bytes).map_err(io("read", path))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

/// A file larger than any backup.
fn too_large() -> BackupError {
    BackupError::Damaged(format!(
        "it is larger than {} GiB, more than any backup",
        MAX_FILE_BYTES >> 30
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_written_meanwhile_to_the_same_name_is_not_replaced_without_force() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("couple.duet");
        // Another `duet backup` wrote it after this one checked the name was free.
        std::fs::write(&path, b"the other backup").expect("write");
        assert!(matches!(
            write_private(&path, b"this backup", false),
            Err(BackupError::Exists(_))
        ));
        assert_eq!(std::fs::read(&path).expect("read"), b"the other backup");
        let left: Vec<_> = dir.path().read_dir().expect("dir").collect();
        assert_eq!(left.len(), 1, "no temporary file is left: {left:?}");
        write_private(&path, b"this backup", true).expect("with force");
        assert_eq!(std::fs::read(&path).expect("read"), b"this backup");
    }
}
