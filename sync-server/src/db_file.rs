//! The relay's SQLite file, before the relay opens it: a `--db` that cannot be one is
//! refused before anything is made beside it (a missing directory, a directory, a file
//! that is not SQLite); one relay runs per file (an exclusive lock, held while it runs:
//! two relays on one file would each keep their own space cache, limits and live
//! sockets, so a device listening on one never hears a push stored through the other);
//! and a database made new is said as such, with a warning when its creation token file
//! exists without it (a moved database, or a mistyped path).

use std::fs::File;
use std::path::Path;

/// The file, locked for this relay until dropped.
#[derive(Debug)]
pub struct Claimed {
    _lock: Option<File>,
    /// The file did not exist: this relay starts an empty database.
    pub made: bool,
}

/// Refuses a `--db` that cannot be the relay's SQLite file (said before anything is
/// made beside it, such as the creation token file).
pub fn check(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        // A file where the directory should be: `mkdir -p` would fail on it.
        if dir.exists() {
            anyhow::bail!(
                "--db {}: {} is a file, not a directory; give a path in a directory (or \
                 move that file away)",
                path.display(),
                dir.display()
            );
        }
        anyhow::bail!(
            "--db {}: the directory {} does not exist; create it (`mkdir -p {}`) or give \
             another path",
            path.display(),
            dir.display(),
            dir.display()
        );
    }
    if path.is_dir() {
        anyhow::bail!(
            "--db {} is a directory; give a file in it, e.g. {}",
            path.display(),
            path.join("duet-relay.db").display()
        );
    }
    let mut head = [0u8; 16];
    let read = File::open(path).and_then(|mut f| {
        use std::io::Read;
        f.read(&mut head)
    });
    if matches!(read, Ok(n) if n > 0 && head[..n] != b"SQLite format 3\0"[..n]) {
        anyhow::bail!(
            "--db {} is not a SQLite database (another file, or a damaged one): check the \
             path; a damaged relay database is mended by restoring its newest backup \
             (docs/self-hosting.md, \"Restoring\")",
            path.display()
        );
    }
    // Another program's database, or a newer relay's, is refused before a creation
    // token file is made beside it.
    crate::store::refuse_foreign(path).map_err(|e| match e.is_damaged() {
        // SQLite's own words came three times over ("malformed: malformed: Error code
        // 11"), with nothing of what to do.
        true => anyhow::anyhow!(
            "cannot open --db {}: {}",
            path.display(),
            crate::store::DAMAGED
        ),
        false => e.into(),
    })?;
    Ok(())
}

/// Takes the file for this relay (made empty, owner-only, when missing), or says which
/// other relay holds it. A path SQLite reads as a URI or `:memory:` is not a file here.
pub fn claim(path: &Path) -> anyhow::Result<Claimed> {
    let name = path.to_string_lossy();
    if name == ":memory:" || name.starts_with("file:") {
        return Ok(Claimed {
            _lock: None,
            made: false,
        });
    }
    let made = !path.exists();
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path).map_err(|e| {
        anyhow::anyhow!(
            "cannot open --db {}: {e}; check that the relay's user may read and write it \
             and its directory",
            path.display()
        )
    })?;
    // An advisory lock of its own (flock), apart from SQLite's record locks on the file.
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another relay is running on --db {}: stop it first, or give this one its own \
             file; one SQLite file serves one relay (several instances share a PostgreSQL \
             database, docs/self-hosting.md)",
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            anyhow::bail!("cannot lock --db {}: {e}", path.display())
        }
    }
    Ok(Claimed {
        _lock: Some(file),
        made,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_db_in_a_directory_that_does_not_exist_is_said_so_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("nodir").join("relay.db");
        let err = check(&db).expect_err("refused").to_string();
        assert!(
            err.contains("does not exist") && err.contains("mkdir -p"),
            "{err}"
        );
        check(&dir.path().join("relay.db")).expect("a new file in a directory");
    }

    #[test]
    fn a_db_under_a_file_is_not_told_to_make_that_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("afile"), b"notes").expect("a file");
        let err = check(&dir.path().join("afile").join("relay.db"))
            .expect_err("refused")
            .to_string();
        assert!(err.contains("is a file, not a directory"), "{err}");
        assert!(!err.contains("mkdir"), "{err}");
    }

    #[test]
    fn a_file_is_claimed_by_one_relay_at_a_time_and_free_again_once_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("relay.db");
        let first = claim(&path).expect("free");
        assert!(first.made, "a new database");
        let err = claim(&path).expect_err("held").to_string();
        assert!(err.contains("another relay is running"), "{err}");
        drop(first);
        let again = claim(&path).expect("free again");
        assert!(!again.made, "the file exists now");
    }
}
