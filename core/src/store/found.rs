//! What a home holds where its store should be: the store file, nothing (a home without
//! a device, set up here), or something else that must not be taken for either.

use std::path::Path;

use super::{OpenLock, SETUP_MARK_FILE, StoreError, private, setup_mark};

/// The store file's metadata, or `None` when nothing is there. Unreadable is not absent:
/// "no identity yet" sent the user to `init`, which failed on the same permissions.
pub(super) fn metadata(path: &Path) -> Result<Option<std::fs::Metadata>, StoreError> {
    match path.metadata() {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(cause) => Err(StoreError::Unreadable {
            path: path.to_path_buf(),
            cause,
        }),
    }
}

/// What stands where the store should be, when it is not a store file: a directory, a
/// link to nothing, or nothing but the write-ahead log it left.
pub(super) fn missing_store(
    path: &Path,
    found: Option<&std::fs::Metadata>,
) -> Option<&'static str> {
    match found {
        Some(m) if m.is_dir() => Some("a directory stands in its place"),
        Some(_) => None,
        None if path.symlink_metadata().is_ok() => Some("it is a link to a file that is not there"),
        None => {
            let mut wal = path.as_os_str().to_owned();
            wal.push("-wal");
            Path::new(&wal).exists().then_some(
                "its write-ahead log is still here: the store was moved or deleted; setting \
                 up a device here would throw that log away",
            )
        }
    }
}

/// Makes the home and its store file for a setup, marked as one until its schema is
/// committed; the open lock `open` is traded for the same lock held exclusively.
pub(super) fn begin_setup(
    home: &Path,
    path: &Path,
    open: Option<OpenLock>,
) -> Result<Option<OpenLock>, StoreError> {
    private::create_dir(home, true).map_err(|source| StoreError::Io {
        path: home.to_path_buf(),
        cause: source,
    })?;
    drop(open);
    let open = OpenLock::to_set_up(home);
    setup_mark::place(home).map_err(|cause| StoreError::Io {
        path: home.join(SETUP_MARK_FILE),
        cause,
    })?;
    private::create_file(path)?;
    Ok(open)
}
