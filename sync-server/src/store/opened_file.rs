//! The relay's SQLite file as it was opened: a file moved, deleted or replaced under a
//! running relay still answers through the open handle, but nothing written after would
//! be read by the next start, so writes and health checks ask first.

use std::path::{Path, PathBuf};

use super::StoreError;

/// The file at a path, and its device and inode when opened.
#[derive(Debug)]
pub struct OpenedFile {
    path: PathBuf,
    id: (u64, u64),
}

impl OpenedFile {
    /// The file at `path`, if there is a plain file there.
    pub fn at(path: &Path) -> Option<OpenedFile> {
        let id = id_of(path)?;
        Some(OpenedFile {
            path: path.to_path_buf(),
            id,
        })
    }

    /// Fails when the file at the path is no longer the one opened.
    pub fn still_there(&self) -> Result<(), StoreError> {
        match id_of(&self.path) == Some(self.id) {
            true => Ok(()),
            false => Err(StoreError::FileGone(self.path.clone())),
        }
    }
}

/// The device and inode of the file at `path`, if there is one.
fn id_of(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}
