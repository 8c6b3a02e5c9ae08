//! The local store: atomic commits and fast opening from a snapshot.

use duet_core::device::Device;
use duet_core::ids::now_ms;
use duet_core::store::{SNAPSHOT_EVERY, SpaceKind, Store};
use duet_core::{Area, Level};

#[test]
fn a_store_with_20000_ratings_opens_from_its_snapshot_without_replaying_history() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut dev = Device::init(home.path(), "Alex", None).expect("init");
    let goal = dev
        .edit(SpaceKind::Shared, |doc, me| {
            let (id, c) = doc.add_goal(
                &me.person_id,
                duet_core::doc::NewGoal {
                    title: "Daily appreciation".into(),
                    area: Some(Area::EmotionalSupport),
                    ..Default::default()
                },
                now_ms(),
            )?;
            Ok((id, c.into_iter().collect()))
        })
        .expect("goal");
    // 20,000 ratings, committed in batches of 1,000 (one transaction each).
    for batch in 0..20 {
        dev.edit(SpaceKind::Shared, |doc, me| {
            let mut changes = Vec::new();
            for i in 0..1000 {
                let level = Level::try_from(((batch * 1000 + i) % 5) as i64 - 2).expect("level");
                let (_, c) = doc.rate(&goal, &me.person_id, level, None, now_ms())?;
                changes.extend(c);
            }
            Ok(((), changes))
        })
        .expect("ratings");
    }
    drop(dev);

    let dev = Device::open(home.path()).expect("reopen");
    let (_, doc, stats) = dev.load(SpaceKind::Shared).expect("load");
    assert!(stats.from_snapshot, "opening used the snapshot");
    assert!(
        (stats.replayed_changes as i64) < SNAPSHOT_EVERY,
        "only the tail after the snapshot is replayed, not all history: {stats:?}"
    );
    assert!(
        stats.snapshot_changes >= 20_000 - SNAPSHOT_EVERY,
        "{stats:?}"
    );
    assert_eq!(doc.goals().expect("goals").len(), 1);
    assert_eq!(doc.ratings().expect("ratings").len(), 20_000);
}

#[test]
fn a_corrupt_database_file_is_reported_and_left_untouched() {
    let home = tempfile::tempdir().expect("tempdir");
    let path = home.path().join(duet_core::store::DB_FILE);
    std::fs::write(&path, b"this is not a database, but it is someone's data").expect("write");
    let before = std::fs::read(&path).expect("read");
    let err = Store::open(home.path(), true).expect_err("corrupt store must not open");
    assert!(
        err.to_string().contains("damaged or not a duet database"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&path).expect("read"),
        before,
        "the file is unchanged"
    );
}

#[cfg(unix)]
#[test]
fn the_database_holding_keys_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().expect("tempdir");
    Device::init(home.path(), "Alex", None).expect("init");
    let mode = std::fs::metadata(home.path().join(duet_core::store::DB_FILE))
        .expect("db")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_join_that_fails_halfway_leaves_an_empty_home_that_a_second_join_uses() {
    let alex_home = tempfile::tempdir().expect("tempdir");
    let mut alex =
        Device::init(alex_home.path(), "Alex", Some("http://127.0.0.1:9")).expect("init");
    let code = alex.add_device(3_600_000).expect("a device code");
    // A code whose second space clashes with its first: the second space's row fails
    // after the identity and the first space were written, as a process killed there
    // would stop. Nothing of it may stay.
    let mut clashing = code.clone();
    clashing.personal.space = clashing.shared.space;
    let home = tempfile::tempdir().expect("tempdir");
    assert!(Device::join_own(home.path(), &clashing).is_err());
    let store = Store::open(home.path(), false).expect("the store");
    assert!(
        store.identity().expect("readable").is_none(),
        "an identity without its spaces was left behind"
    );
    drop(store);
    let again = Device::join_own(home.path(), &code).expect("the second join");
    assert_eq!(
        again.space(SpaceKind::Personal).expect("personal").id,
        code.personal.space
    );
    assert_eq!(
        again.space(SpaceKind::Shared).expect("shared").id,
        code.shared.space
    );
}

#[test]
fn an_open_store_keeps_its_files_from_being_moved_until_it_is_closed() {
    use duet_core::store::OpenLock;
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let made = Store::open(&home, true).expect("set up");
    // What `start-over` takes before it moves the files: refused while a store is open
    // in any process (a reader that opened it a moment before included).
    assert!(
        OpenLock::to_move(&home, std::time::Duration::ZERO)
            .expect("the lock file")
            .is_none()
    );
    drop(made);
    let reader = Store::open(&home, false).expect("opened again");
    assert!(
        OpenLock::to_move(&home, std::time::Duration::ZERO)
            .expect("the lock file")
            .is_none()
    );
    drop(reader);
    let moving = OpenLock::to_move(&home, std::time::Duration::ZERO)
        .expect("the lock file")
        .expect("nothing holds the store open");
    // While the files move, a store opened meanwhile waits, then finds no store.
    let away = dir.path().join("aside");
    std::fs::create_dir(&away).expect("a folder");
    let opening = {
        let home = home.clone();
        std::thread::spawn(move || Store::open(&home, false).map(|_| ()))
    };
    for name in ["duet.db", "duet.db-wal", "duet.db-shm"] {
        let _ = std::fs::rename(home.join(name), away.join(name));
    }
    drop(moving);
    let opened = opening.join().expect("the opening thread");
    assert!(
        matches!(opened, Err(duet_core::store::StoreError::NotInitialised)),
        "{opened:?}"
    );
    let left: Vec<_> = std::fs::read_dir(&home)
        .expect("the home")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("duet.db"))
        .collect();
    assert!(left.is_empty(), "files made beside a moved store: {left:?}");
}
