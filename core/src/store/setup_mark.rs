//! The mark of a store being set up: `duet.setting-up` stands in the home from before
//! `duet.db` is made until its schema is committed.
//!
//! A setup killed in between (Ctrl-C in the first milliseconds of `duet init`, the app
//! closed while it set a device up) leaves an empty database file. Without the mark
//! such a file cannot be told from a store cut off by a full disk or an interrupted
//! copy, which is said as such and left alone; with it, the file is known to be a
//! setup's that never wrote anything, and the next command clears it as if the home
//! had never been set up (the app then offers its setup page again).

use std::path::Path;

/// File name of the mark inside the home directory.
pub const SETUP_MARK_FILE: &str = "duet.setting-up";

/// Places the mark, before the database file is made (under the open lock, held
/// exclusively).
pub(crate) fn place(home: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(home.join(SETUP_MARK_FILE))
        .map(drop)
}

/// Takes the mark away once the schema is committed (a mark left beside a store that
/// is not empty is ignored, so failing here loses nothing).
pub(crate) fn remove(home: &Path) {
    let _ = std::fs::remove_file(home.join(SETUP_MARK_FILE));
}

/// Whether `db` is what a killed setup leaves: an empty file, its log empty or absent,
/// and the mark beside it.
pub(crate) fn killed_setup(home: &Path, db: &Path) -> bool {
    let empty = |p: &Path| {
        p.symlink_metadata()
            .is_ok_and(|m| m.is_file() && m.len() == 0)
    };
    let [_, wal, _] = super::files_of(db);
    home.join(SETUP_MARK_FILE).is_file() && empty(db) && (!wal.exists() || empty(&wal))
}

/// Deletes what a killed setup left (the empty database, its empty log and index, the
/// mark), when that is what is there. Call with the open lock held exclusively: a setup
/// still running holds it, so what is seen here is one that ended.
fn clear_killed_setup(home: &Path, db: &Path) -> std::io::Result<bool> {
    if !killed_setup(home, db) {
        return Ok(false);
    }
    // The database last: a log is never left without it.
    for file in super::files_of(db).iter().rev() {
        match std::fs::remove_file(file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    remove(home);
    Ok(true)
}

/// Clears what a killed setup left in `home` (see [`clear_killed_setup`]), taking the
/// open lock for it: for a command that sets a device up by other means (a restore).
pub fn clear_killed_setup_of(home: &Path) {
    drop(clear_when_killed(home, &home.join(super::DB_FILE), None));
}

/// What a setup killed before its first commit left is cleared, under the open lock held
/// exclusively (a setup still running holds it): the home is one never set up. Takes the
/// shared lock `open` of a store being opened, and gives it back.
pub(crate) fn clear_when_killed(
    home: &Path,
    db: &Path,
    open: Option<super::OpenLock>,
) -> Option<super::OpenLock> {
    if !killed_setup(home, db) {
        return open;
    }
    drop(open);
    let exclusive = super::OpenLock::to_set_up(home)?;
    // Not cleared (a home this user may not write): said as an empty store.
    let _ = clear_killed_setup(home, db);
    exclusive.share();
    Some(exclusive)
}
