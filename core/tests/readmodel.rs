//! The read models: reading commands use them instead of the document, they are rebuilt
//! when their version changes, and content this version cannot read is reported, not
//! lost. (Their consistency under random edits and syncs is checked by
//! `tests/tests/convergence.rs`.)

use automerge::transaction::Transactable;
use automerge::{ROOT, ReadDoc};
use duet_core::device::Device;
use duet_core::doc::NewGoal;
use duet_core::readmodel::{VERSION, View};
use duet_core::store::{DB_FILE, SpaceKind};
use duet_core::{Area, Level};
use rusqlite::Connection;

fn device_with_a_rated_goal(home: &std::path::Path) -> (Device, String) {
    let mut dev = Device::init(home, "Alex", None).expect("init");
    let goal = dev
        .edit(SpaceKind::Shared, |doc, me| {
            let (id, c) = doc.add_goal(
                &me.person_id,
                NewGoal {
                    title: "Weekly check-in".into(),
                    area: Some(Area::Communication),
                    ..Default::default()
                },
                1_000,
            )?;
            Ok((id, c.into_iter().collect()))
        })
        .expect("goal");
    dev.edit(SpaceKind::Shared, |doc, me| {
        let (_, c) = doc.rate(&goal, &me.person_id, Level::EXPECTED, None, 2_000)?;
        let (_, s) = doc.add_step(&goal, &me.person_id, "Pick a time", 3_000)?;
        Ok(((), c.into_iter().chain(s).collect()))
    })
    .expect("rate");
    (dev, goal)
}

#[test]
fn reading_a_space_uses_the_tables_not_the_document() {
    let home = tempfile::tempdir().expect("tempdir");
    let (mut dev, goal) = device_with_a_rated_goal(home.path());
    let before = dev.view(SpaceKind::Shared).expect("view");
    assert_eq!(before.goals.len(), 1);
    assert_eq!(before.goals[0].steps.len(), 1);
    assert_eq!(before.ratings.len(), 1);
    // Take the document away: what is read must come from the read-model tables.
    let db = Connection::open(home.path().join(DB_FILE)).expect("db");
    db.execute_batch("DELETE FROM changes; DELETE FROM snapshots;")
        .expect("delete");
    let after = dev.view(SpaceKind::Shared).expect("view");
    assert_eq!(after, before);
    assert_eq!(
        after.goal(&goal).expect("goal").title.as_str(),
        "Weekly check-in"
    );
}

#[test]
fn read_models_of_an_older_version_are_rebuilt_from_the_document() {
    let home = tempfile::tempdir().expect("tempdir");
    let (mut dev, _) = device_with_a_rated_goal(home.path());
    let db = Connection::open(home.path().join(DB_FILE)).expect("db");
    db.execute_batch(
        "UPDATE rm_state SET version = 0; DELETE FROM rm_goals; DELETE FROM rm_ratings;",
    )
    .expect("age the tables");
    let view = dev.view(SpaceKind::Shared).expect("view");
    let (_, doc, _) = dev.load(SpaceKind::Shared).expect("load");
    assert_eq!(view, View::of(&doc));
    dev.view(SpaceKind::Personal)
        .expect("the personal space too");
    assert_eq!(view.goals.len(), 1);
    assert_eq!(view.ratings.len(), 1);
    let versions: Vec<i64> = db
        .prepare("SELECT DISTINCT version FROM rm_state")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(versions, vec![VERSION]);
}

#[test]
fn a_goal_this_version_cannot_read_is_reported_and_the_others_still_show() {
    let home = tempfile::tempdir().expect("tempdir");
    let (mut dev, goal) = device_with_a_rated_goal(home.path());
    // A member (say, a newer version) writes a goal whose title is not text.
    let (rec, mut doc, _) = dev.load(SpaceKind::Shared).expect("load");
    let mut am = doc.automerge().fork();
    let goals = match am.get(ROOT, "goals").expect("get") {
        Some((_, id)) => id,
        None => panic!("no goals map"),
    };
    let mut tx = am.transaction();
    let odd = tx
        .put_object(&goals, "odd-goal", automerge::ObjType::Map)
        .expect("put");
    tx.put(&odd, "title", 42).expect("put");
    tx.commit();
    let change = am.get_last_local_change().expect("change").clone();
    doc.apply(vec![change.clone()]).expect("apply");
    dev.store_mut()
        .commit_local(&rec.id, &[change], &doc)
        .expect("stored");

    let view = dev.view(SpaceKind::Shared).expect("view");
    assert_eq!(view.goals.len(), 1, "the readable goal still shows");
    assert_eq!(view.goals[0].id, goal);
    assert_eq!(view.problems.len(), 1, "{:?}", view.problems);
    assert!(
        view.problems[0].starts_with("goals odd-goal:"),
        "{:?}",
        view.problems
    );
    assert_eq!(view, View::of(&doc));
}

#[test]
fn progress_reads_its_kept_summary_and_shows_the_latest_ratings_with_their_count() {
    let home = tempfile::tempdir().expect("tempdir");
    let (mut dev, goal) = device_with_a_rated_goal(home.path());
    for i in 0..59 {
        let level = Level::try_from(i % 5 - 2).expect("level");
        dev.edit(SpaceKind::Shared, |doc, me| {
            let (_, c) = doc.rate(&goal, &me.person_id, level, None, 10_000 + i)?;
            Ok(((), c.into_iter().collect()))
        })
        .expect("rate");
    }
    let before = dev.progress(None).expect("progress");
    let alex = &before.goals[0].partners[0];
    assert_eq!(alex.count, 60);
    assert_eq!(alex.ratings.len(), duet_core::progress::KEEP_POINTS);
    assert_eq!(alex.latest, Some(1), "58 % 5 - 2");
    assert_eq!(before.t_count_joint, 60);
    // Take every rating away underneath: progress still reads what it prints.
    let db = Connection::open(home.path().join(DB_FILE)).expect("db");
    db.execute_batch("DELETE FROM rm_ratings;").expect("delete");
    assert_eq!(dev.progress(None).expect("progress"), before);
}

#[test]
fn a_summary_kept_by_an_older_version_is_dropped_and_kept_again_from_the_tables() {
    let home = tempfile::tempdir().expect("tempdir");
    let (dev, _) = device_with_a_rated_goal(home.path());
    let right = {
        let mut dev = dev;
        dev.progress(None).expect("progress")
    };
    // A summary as an older version may have kept it (here: counting no rating at all),
    // in a store of the version before the one that drops them.
    let db = Connection::open(home.path().join(DB_FILE)).expect("db");
    let (space, json): (String, String) = db
        .query_row("SELECT space, json FROM rm_progress", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("a kept summary");
    let mut wrong: serde_json::Value = serde_json::from_str(&json).expect("json");
    wrong["progress"]["t_count_joint"] = serde_json::json!(0);
    db.execute(
        "UPDATE rm_progress SET json = ?2 WHERE space = ?1",
        rusqlite::params![space, wrong.to_string()],
    )
    .expect("damage");
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    // The migration that drops them is the fifth to last (the four after it add an
    // index, the set-aside table, another index and the relay clock's columns, which a
    // store of then did not have).
    db.execute_batch(
        "ALTER TABLE spaces DROP COLUMN relay_ahead_ms; ALTER TABLE spaces DROP COLUMN relay_ahead_at;",
    )
    .expect("a store of then");
    db.pragma_update(None, "user_version", version - 5)
        .expect("back five versions");
    drop(db);
    let mut dev = Device::open(home.path()).expect("open: the migration runs");
    assert_eq!(dev.progress(None).expect("progress"), right);
    // And kept again, so that the next `progress` reads it.
    let db = Connection::open(home.path().join(DB_FILE)).expect("db");
    let kept: i64 = db
        .query_row("SELECT COUNT(*) FROM rm_progress", [], |r| r.get(0))
        .expect("count");
    assert_eq!(kept, 1);
}
