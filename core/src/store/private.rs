//! Files and folders of a home made readable by their owner only: the couple's notes
//! are in them, and even their names and sizes are nobody else's business.

use std::path::Path;

use super::StoreError;

/// Makes the folder `path` (and, with `recursive`, the parents it lacks) with mode
/// 0700; a folder that exists keeps its mode.
pub(crate) fn create_dir(path: &Path, recursive: bool) -> std::io::Result<()> {
    let mut dirs = std::fs::DirBuilder::new();
    dirs.recursive(recursive);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut dirs, 0o700);
    dirs.create(path)
}

/// Makes the empty store file `path` with mode 0600.
pub(super) fn create_file(path: &Path) -> Result<(), StoreError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        // Another process setting up the same home made it meanwhile: what decides
        // between the two is the setup under the home's lock, which names what it found.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::Io {
            path: path.to_path_buf(),
            cause: source,
        }),
    }
}
