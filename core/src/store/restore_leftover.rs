//! What a restore into a home leaves beside it: its staging folder (a whole copy of the
//! device being brought back, keys included) and its lock. Here, below both the backup
//! and the device, so that setting up a device can refuse to sit beside a restore
//! stopped half-way.

use std::path::{Path, PathBuf};

/// What the staging folder of a restore is named after: `.HOME.restoring-RANDOM`.
pub const STAGING: &str = ".restoring-";

/// The lock a restore into the home `leaf` of `parent` holds while it runs.
pub fn restore_lock_path(parent: &Path, leaf: &str) -> PathBuf {
    parent.join(format!(".{leaf}.restore.lock"))
}

/// The folder a restore into `home` works beside, and the home's name in it.
pub fn beside(home: &Path) -> (PathBuf, String) {
    let parent = match home.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let leaf = home
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "home".into());
    (parent, leaf)
}

/// The staging folders of restores into the home `leaf` of `parent` (a running one's,
/// or a killed one's left behind).
pub fn staging_folders(parent: &Path, leaf: &str) -> Vec<PathBuf> {
    let prefix = format!(".{leaf}{STAGING}");
    std::fs::read_dir(parent)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name().to_string_lossy().starts_with(&prefix)
                && e.file_type().is_ok_and(|t| t.is_dir())
        })
        .map(|e| e.path())
        .collect()
}

/// The staging folder a restore into `home` left when it was stopped (none while a
/// restore holds its lock: that one is running, and says so itself).
pub fn stopped_restore(home: &Path) -> Option<PathBuf> {
    let (parent, leaf) = beside(home);
    let folder = staging_folders(&parent, &leaf).into_iter().next()?;
    let lock = restore_lock_path(&parent, leaf.as_str());
    let running = std::fs::OpenOptions::new()
        .read(true)
        .open(&lock)
        .is_ok_and(|f| matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)));
    (!running).then_some(folder)
}
