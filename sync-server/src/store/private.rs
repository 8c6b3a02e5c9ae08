//! The relay's SQLite files are private to their owner: they hold the couples'
//! ciphertext, their membership and the creators' addresses.

use std::path::Path;

/// Creates an empty database file readable and writable by its owner only, unless it
/// exists: it holds the couples' ciphertext, their membership and the creators'
/// addresses, and SQLite gives its `-wal` and `-shm` files the same permissions. A file
/// that cannot be made here is left to SQLite, which says why.
pub(super) fn create_private(path: &Path) {
    if path.as_os_str() == ":memory:" || path.to_string_lossy().starts_with("file:") {
        return;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    if options.open(path).is_err() {
        keep_private(path);
    }
}

/// Makes an existing database file and its `-wal` and `-shm` private to their owner
/// when others may read them (a copy restored from a backup with the usual umask),
/// saying so: the relay made them 0600, and SQLite gives new `-wal` and `-shm` files the
/// database's permissions.
fn keep_private(path: &Path) {
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = std::path::PathBuf::from(name);
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 == 0 {
            continue;
        }
        match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700)) {
            Ok(()) => tracing::warn!(
                file = %file.display(),
                "the database could be read by other users (mode {mode:o}): made private to its owner"
            ),
            Err(e) => tracing::warn!(
                file = %file.display(),
                "the database can be read by other users (mode {mode:o}) and could not be made private ({e}): run chmod 600 on it"
            ),
        }
    }
}
