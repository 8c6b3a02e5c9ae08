//! A long-running process keeps its document between writes: it must never write from a
//! document that another process (or a pull) has moved past, or two changes of this
//! device would share a sequence number and the store would be broken for good.

use duet_core::app::GoalDetail;
use duet_core::app::NewGoalInput;
use duet_core::device::Device;
use duet_core::store::SpaceKind;

fn goal(title: &str) -> NewGoalInput {
    NewGoalInput {
        title: title.into(),
        ..Default::default()
    }
}

fn titles(d: &mut Device) -> Vec<String> {
    let mut t: Vec<String> = d
        .goals(true)
        .expect("goals")
        .goals
        .iter()
        .map(|g| g.title.as_str().to_string())
        .collect();
    t.sort();
    t
}

#[test]
fn a_kept_document_is_read_again_after_another_process_wrote() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    drop(Device::init(&home, "Alex", None).expect("init"));
    // Two "processes" on one home: a watcher that keeps its document, and a CLI write.
    let mut watcher = Device::open(&home).expect("open");
    let mut cli = Device::open(&home).expect("open");
    watcher
        .add_goal(goal("First"))
        .expect("first write, document kept");
    watcher
        .add_goal(goal("Second"))
        .expect("second write, from the kept document");
    cli.add_goal(goal("From the CLI"))
        .expect("another process writes");
    watcher
        .add_goal(goal("Third"))
        .expect("the watcher reads the document again and writes on");
    drop((watcher, cli));
    // A fresh open rebuilds the document from every stored change: all four are there,
    // and opening repaired nothing (no two changes share a sequence number).
    let mut fresh = Device::open(&home).expect("open again");
    assert!(fresh.repairs().is_empty(), "{:?}", fresh.repairs());
    let (_, doc, _) = fresh
        .load(duet_core::store::SpaceKind::Shared)
        .expect("load");
    let goals = doc.goals().expect("goals");
    assert_eq!(goals.len(), 4, "{goals:?}");
    assert_eq!(
        titles(&mut fresh),
        ["First", "From the CLI", "Second", "Third"]
    );
}

/// Two processes on one new home in `dir`: the app, which keeps its views, and the CLI
/// writing beside it.
fn app_beside_cli(dir: &std::path::Path) -> (Device, Device) {
    let home = dir.join("home");
    drop(Device::init(&home, "Alex", None).expect("init"));
    let mut app = Device::open(&home).expect("open");
    app.keep_views();
    (app, Device::open(&home).expect("open"))
}

#[test]
fn a_kept_view_is_read_again_after_another_process_wrote() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut app, mut cli) = app_beside_cli(dir.path());
    app.add_goal(goal("First")).expect("the app writes");
    assert_eq!(titles(&mut app), ["First"]);
    assert_eq!(titles(&mut app), ["First"], "read from the kept view");
    cli.add_goal(goal("From the CLI"))
        .expect("another process writes");
    assert_eq!(
        titles(&mut app),
        ["First", "From the CLI"],
        "the kept view was left for the tables"
    );
    let rated = |d: &mut Device| -> usize {
        let p = d.progress(None).expect("progress");
        p.goals
            .iter()
            .filter(|g| g.title == "First")
            .flat_map(|g| &g.partners)
            .map(|s| s.ratings.len())
            .sum()
    };
    assert_eq!(rated(&mut app), 0, "the whole view is kept now");
    let level = duet_core::Level::try_from(1).expect("level");
    cli.rate("First", level, None).expect("the CLI rates");
    assert_eq!(rated(&mut app), 1, "the kept view was left for the tables");
    assert_eq!(rated(&mut cli), 1);
}

/// What the tables show of the shared space equals what its document holds, read afresh.
fn assert_tables_match_the_document(home: &std::path::Path) {
    assert_space_matches_its_document(home, SpaceKind::Shared);
}

/// What the tables show of a space equals what its document holds, read afresh.
fn assert_space_matches_its_document(home: &std::path::Path, kind: SpaceKind) {
    let mut fresh = Device::open(home).expect("open again");
    assert!(fresh.repairs().is_empty(), "{:?}", fresh.repairs());
    let (_, doc, _) = fresh.load(kind).expect("load");
    let tables = fresh.raw_view(kind).expect("view");
    assert_eq!(tables, duet_core::readmodel::View::of(&doc));
}

/// How many ratings `progress` counts, over every goal and partner.
fn counted(progress: &duet_core::progress::Progress) -> usize {
    progress
        .goals
        .iter()
        .flat_map(|g| &g.partners)
        .map(|s| s.ratings.len())
        .sum()
}

/// A new home in `dir` with one goal, written by a process that has ended.
fn home_with_goal(dir: &std::path::Path, title: &str) -> std::path::PathBuf {
    let home = dir.join("home");
    let mut setup = Device::init(&home, "Alex", None).expect("init");
    setup.add_goal(goal(title)).expect("a goal");
    home
}

#[test]
fn a_one_shot_rating_is_written_without_loading_the_document() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = home_with_goal(dir.path(), "Walks");
    let level = duet_core::Level::try_from(1).expect("level");
    // Two one-shot `duet rate`s: each a fresh process holding no document.
    for n in 1..=2 {
        let mut cli = Device::open(&home).expect("open");
        let before = cli.store().documents_loaded();
        let rated = cli.rate("Walks", level, Some("a long one")).expect("rate");
        assert_eq!(
            cli.store().documents_loaded(),
            before,
            "rating {n} loaded the document"
        );
        let progress = cli.progress(None).expect("progress");
        assert_eq!(
            counted(&progress),
            n,
            "rating {n} ({rated:?}) shows in progress"
        );
        assert_tables_match_the_document(&home);
    }
    // Another process's write (from its document) leaves the tip of what it wrote.
    let mut other = Device::open(&home).expect("open");
    other.add_goal(goal("Dinners")).expect("another write");
    let mut cli = Device::open(&home).expect("open");
    let before = cli.store().documents_loaded();
    cli.rate("Dinners", level, None).expect("rate");
    cli.rate("Walks", level, None).expect("rate again");
    assert_eq!(cli.store().documents_loaded(), before);
    assert_tables_match_the_document(&home);
}

#[test]
fn one_shot_reflections_and_replies_are_written_without_loading_the_document() {
    use duet_core::app::{ReflectionInput, ReflectionQuery};
    let dir = tempfile::tempdir().expect("temp dir");
    let home = home_with_goal(dir.path(), "Walks");
    let input = |text: &str, goal: Option<&str>, private: bool| ReflectionInput {
        text: text.into(),
        goal: goal.map(str::to_string),
        prompt: None,
        private,
    };
    // Each a fresh process holding no document, as one-shot `duet reflect`s are.
    let writes: [(&str, Option<&str>, bool); 3] = [
        ("We walked after dinner 🙂", Some("Walks"), false),
        ("Only for me:\nI was tired", Some("Walks"), true),
        ("And talked on the way", None, false),
    ];
    let mut ids = Vec::new();
    for (text, goal, private) in writes {
        let mut cli = Device::open(&home).expect("open");
        let before = cli.store().documents_loaded();
        ids.push(cli.reflect(input(text, goal, private)).expect("reflect"));
        assert_eq!(cli.store().documents_loaded(), before, "{text:?} loaded it");
    }
    let mut cli = Device::open(&home).expect("open");
    let before = cli.store().documents_loaded();
    let reply = cli.reply(&ids[0], "Yes, let us keep it").expect("reply");
    assert_eq!(
        cli.store().documents_loaded(),
        before,
        "the reply loaded it"
    );
    let shared = cli.reflections(&ReflectionQuery::default()).expect("list");
    let texts: Vec<(&str, Vec<&str>)> = shared
        .iter()
        .map(|r| {
            (
                r.text.as_str(),
                r.replies.iter().map(|p| p.id.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        texts,
        [
            ("We walked after dinner 🙂", vec![reply.as_str()]),
            ("And talked on the way", vec![])
        ]
    );
    let private = ReflectionQuery {
        private: true,
        ..Default::default()
    };
    let mine = cli.reflections(&private).expect("private list");
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0].goal_title.as_deref(), Some("Walks"));
    // The history kept as the writes went is the one rebuilt from the document.
    let history = |dev: &mut Device| dev.history(Default::default()).expect("history");
    let kept = history(&mut cli);
    drop(cli);
    let db = rusqlite::Connection::open(home.join("duet.db")).expect("the store");
    db.execute("UPDATE rm_state SET version = 0", [])
        .expect("age the tables");
    drop(db);
    let mut fresh = Device::open(&home).expect("open");
    assert_eq!(kept, history(&mut fresh));
    let written = kept
        .iter()
        .filter(|e| matches!(e.kind, duet_core::history::HistoryKind::ReflectionWritten))
        .count();
    assert_eq!(written, 3, "two reflections and a reply: {kept:?}");
    drop(fresh);
    assert_space_matches_its_document(&home, SpaceKind::Shared);
    assert_space_matches_its_document(&home, SpaceKind::Personal);
}

#[test]
fn a_damaged_tip_sends_the_rating_to_the_document_and_is_written_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = home_with_goal(dir.path(), "Walks");
    let db = rusqlite::Connection::open(home.join("duet.db")).expect("the store");
    let damaged = db
        .execute("UPDATE rm_tip SET json = '{\"not\": \"a tip\"'", [])
        .expect("damage the kept tip");
    assert!(damaged > 0, "a tip was kept");
    drop(db);
    let level = duet_core::Level::try_from(0).expect("level");
    let mut cli = Device::open(&home).expect("open");
    let before = cli.store().documents_loaded();
    cli.rate("Walks", level, None)
        .expect("the rating is made all the same");
    assert_eq!(
        cli.store().documents_loaded(),
        before + 1,
        "from the document"
    );
    drop(cli);
    // The document's refresh wrote the tip again: the next rating needs no load.
    let mut cli = Device::open(&home).expect("open");
    let before = cli.store().documents_loaded();
    cli.rate("Walks", level, None).expect("rate again");
    assert_eq!(cli.store().documents_loaded(), before);
    assert_tables_match_the_document(&home);
}

#[test]
fn a_revealed_rating_undone_in_a_fresh_process_stays_withdrawn_and_loads_no_document() {
    use duet_core::clock::Clock;
    let dir = tempfile::tempdir().expect("temp dir");
    let home = home_with_goal(dir.path(), "Walks");
    let level = duet_core::Level::try_from(1).expect("level");
    let t0 = Device::open(&home).expect("open").now();
    // Alone in the space so far, a rating is sealed, in a round of its own.
    let rated = Device::open_with(&home, Clock::Fixed(t0))
        .expect("open")
        .rate("Walks", level, None)
        .expect("rate");
    assert!(rated.sealed, "{rated:?}");
    // Once the round is over, a one-shot command reveals it from the stored tip.
    let later = Clock::Fixed(t0 + duet_core::rituals::DEFAULT_ROUND_MS + 1);
    let mut cli = Device::open_with(&home, later).expect("open");
    let before = cli.store().documents_loaded();
    assert_eq!(cli.reveal_due().expect("reveal"), 1);
    assert_eq!(
        cli.store().documents_loaded(),
        before,
        "the reveal loaded it"
    );
    drop(cli);
    assert_tables_match_the_document(&home);
    // `duet undo` withdraws that rating, from the tip too.
    let mut cli = Device::open_with(&home, later).expect("open");
    let before = cli.store().documents_loaded();
    let undone = cli.undo().expect("undo");
    assert!(
        matches!(undone, duet_core::app::Undone::Rating { .. }),
        "{undone:?}"
    );
    assert_eq!(cli.store().documents_loaded(), before, "the undo loaded it");
    let progress = cli.progress(None).expect("progress");
    assert_eq!(
        counted(&progress),
        0,
        "the withdrawn rating no longer counts"
    );
    // Nor does its seal wait again: nothing is shown sealed, nothing revealed anew.
    let sealed = progress
        .goals
        .iter()
        .flat_map(|g| &g.partners)
        .any(|s| s.sealed);
    assert!(!sealed, "the withdrawn rating's seal is shown as waiting");
    assert_eq!(cli.reveal_due().expect("reveal"), 0);
    drop(cli);
    assert_tables_match_the_document(&home);
}

#[test]
fn pages_share_one_kept_view_until_another_process_writes_and_list_only_the_newest_ratings() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut app, mut cli) = app_beside_cli(dir.path());
    app.add_goal(goal("First")).expect("a goal");
    for l in [-1, 0, 1] {
        let level = duet_core::Level::try_from(l).expect("level");
        app.rate("First", level, None).expect("rate");
    }
    let shown = app.shown_view(SpaceKind::Shared).expect("view");
    let again = app.shown_view(SpaceKind::Shared).expect("view");
    assert!(
        std::sync::Arc::ptr_eq(&shown, &again),
        "one view, not a copy"
    );
    let newest = |d: &mut Device| match d.goal_detail("First", Some(2)).expect("detail") {
        GoalDetail::Found {
            ratings,
            rating_count,
            ..
        } => (
            ratings.iter().map(|r| r.level.get()).collect::<Vec<_>>(),
            rating_count,
        ),
        GoalDetail::Unreadable(p) => panic!("unreadable: {p:?}"),
    };
    assert_eq!(
        newest(&mut app),
        (vec![0, 1], 3),
        "the newest two, oldest first"
    );
    cli.rate("First", duet_core::Level::try_from(2).expect("level"), None)
        .expect("another process rates");
    let after = app.shown_view(SpaceKind::Shared).expect("view");
    assert!(!std::sync::Arc::ptr_eq(&shown, &after), "read again");
    assert_eq!(newest(&mut app), (vec![1, 2], 4));
}

#[test]
fn status_says_what_a_load_would_start_from_without_loading_the_history() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut app, _) = app_beside_cli(dir.path());
    app.add_goal(goal("First")).expect("a goal");
    app.rate("First", duet_core::Level::try_from(1).expect("level"), None)
        .expect("rate");
    let home = dir.path().join("home");
    let mut cli = Device::open(&home).expect("open");
    let status = cli.status().expect("status");
    assert_eq!(cli.store().documents_loaded(), 0, "no history read");
    for kind in [SpaceKind::Shared, SpaceKind::Personal] {
        let (_, _, loaded) = cli.load(kind).expect("load");
        let shown = status
            .spaces
            .iter()
            .find(|s| s.kind == kind.as_str())
            .expect("the space");
        assert_eq!(
            (shown.snapshot, shown.changes_after_snapshot),
            (loaded.from_snapshot, loaded.replayed_changes),
            "{kind:?}"
        );
    }
}
