//! The writer's tests: groups, failed commits, rollbacks and fork evidence, on SQLite
//! (and one group on PostgreSQL, when `DUET_TEST_POSTGRES` names a server).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use duet_core::crypto::SpaceKey;
use duet_core::protocol::{ErrorCode, EventStatus};
// The test kit's signer (it depends on duet-core only, so no second relay is linked).
use duet_testkit::ChainSigner as Dev;

use super::queue::{Worker, take_group};
use super::*;
use crate::limits::Config;
use crate::live::Live;
use crate::store::Store;

fn prepared(space: SpaceId, events: &[&Event]) -> PreparedPush {
    PreparedPush {
        space,
        hashes: events.iter().map(|e| e.hash()).collect(),
        events: events.iter().map(|e| (*e).clone()).collect(),
        now_ms: duet_core::ids::now_ms(),
        credential: Default::default(),
        memory: None,
    }
}

fn worker(dir: &tempfile::TempDir, max_db_bytes: u64) -> Worker<Store> {
    let store = Store::open(&dir.path().join("relay.db")).expect("open");
    if max_db_bytes > 0 {
        store.set_max_bytes(max_db_bytes).expect("cap");
    }
    worker_over(store)
}

fn worker_over<B: crate::store::Backend>(store: B) -> Worker<B> {
    Worker {
        store,
        cache: super::SpaceStates::shared(0),
        config: Config {
            open_registration: true,
            ..Config::default()
        },
        forks: ForkLimits::default(),
        counters: Arc::default(),
        live: Live::default(),
        fail_commits: 0,
    }
}

/// Hands `pushes` to the worker as one queue (the first group holds them all) and
/// runs groups until the queue is empty; returns the answers in order.
fn run<B: crate::store::Backend>(
    w: &mut Worker<B>,
    pushes: Vec<PreparedPush>,
) -> Vec<Result<PushResponse, ApiError>> {
    let mut answers = Vec::new();
    let mut pending = VecDeque::new();
    for p in pushes {
        let (reply, answer) = oneshot::channel();
        pending.push_back(Job::Push(p, reply));
        answers.push(answer);
    }
    while !pending.is_empty() {
        let group = take_group(&mut pending);
        w.run_group(group, &mut pending);
    }
    answers
        .into_iter()
        .map(|mut a| a.try_recv().expect("every push is answered"))
        .collect()
}

fn accepted_cursor(r: &Result<PushResponse, ApiError>) -> u64 {
    let resp = r.as_ref().expect("accepted");
    assert_eq!(resp.results.len(), 1);
    assert_eq!(resp.results[0].status, EventStatus::Accepted);
    resp.results[0].cursor.expect("a cursor")
}

fn code(r: &Result<PushResponse, ApiError>) -> Option<ErrorCode> {
    r.as_ref().err().map(ApiError::code)
}

fn stored(w: &mut Worker<Store>, space: SpaceId) -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    w.store
        .for_each_event(&space, 0, &mut |_, bytes: Vec<u8>| {
            out.push(duet_core::crypto::sha256(&bytes))
        })
        .expect("read");
    out
}

#[test]
fn pushes_of_one_group_share_one_commit_and_a_refused_one_leaves_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = worker(&dir, 0);
    let (s1, s2) = (SpaceId::generate(), SpaceId::generate());
    let key = SpaceKey::generate();
    let (mut alex, mut bob, mut eve) = (Dev::new("Alex"), Dev::new("Bob"), Dev::new("Eve"));
    let g1 = alex.genesis(s1, false);
    let g2 = bob.genesis(s2, false);
    let a2 = alex.changes(s1, &key, b"2");
    // A gap: seq 4 right after 2.
    let (seq, prev) = (alex.seq, alex.prev);
    alex.seq += 1;
    let gap = alex.changes(s1, &key, b"gap");
    (alex.seq, alex.prev) = (seq, prev);
    let intruder = eve.changes(s1, &key, b"not a member");
    let b2 = bob.changes(s2, &key, b"b2");
    let a3 = alex.changes(s1, &key, b"3");
    let a4 = alex.changes(s1, &key, b"4");

    let answers = run(
        &mut w,
        vec![
            prepared(s1, &[&g1]),
            prepared(s2, &[&g2]),
            prepared(s1, &[&a2]),
            prepared(s1, &[&gap]),
            prepared(s1, &[&intruder]),
            prepared(s2, &[&b2]),
            // Admitted after a2 of the same group, not yet committed.
            prepared(s1, &[&a3]),
            prepared(s1, &[&a2]),
            // All or nothing: a4 is not stored with the intruder...
            prepared(s1, &[&a4, &intruder]),
            // ...but is on its own.
            prepared(s1, &[&a4]),
        ],
    );
    let codes: Vec<_> = answers.iter().map(code).collect();
    assert_eq!(
        codes,
        [
            None,
            None,
            None,
            Some(ErrorCode::BrokenChain),
            Some(ErrorCode::NotAMember),
            None,
            None,
            None,
            Some(ErrorCode::NotAMember),
            None
        ]
    );
    let cursors: Vec<u64> = [0, 1, 2, 5, 6, 9]
        .iter()
        .map(|&i| accepted_cursor(&answers[i]))
        .collect();
    assert_eq!(
        cursors,
        [1, 2, 3, 4, 5, 6],
        "cursors follow the queue order"
    );
    // The repeated a2 is a duplicate with its cursor from the same group.
    let dup = answers[7].as_ref().expect("duplicate");
    assert_eq!(dup.results[0].status, EventStatus::Duplicate);
    assert_eq!(dup.results[0].cursor, Some(3));
    // The refused batch names each event's fate.
    match &answers[8] {
        Err(ApiError::Batch { results, .. }) => {
            assert_eq!(results[0].status, EventStatus::NotStored);
            assert_eq!(results[1].status, EventStatus::Rejected);
        }
        other => panic!("expected a refused batch, got {other:?}"),
    }
    // The space's newest cursor is as of each push.
    assert_eq!(answers[6].as_ref().map(|r| r.cursor).ok(), Some(5));

    assert_eq!(
        w.counters.commits.load(Ordering::Relaxed),
        1,
        "one commit for the whole group"
    );
    assert_eq!(w.counters.requests.load(Ordering::Relaxed), 10);
    assert_eq!(w.counters.events.load(Ordering::Relaxed), 6);
    assert_eq!(
        w.counters.largest_group.load(Ordering::Relaxed),
        10,
        "refusals are answered with their group"
    );
    assert_eq!(
        stored(&mut w, s1),
        [g1.hash(), a2.hash(), a3.hash(), a4.hash()]
    );
    assert_eq!(stored(&mut w, s2), [g2.hash(), b2.hash()]);
    let mut cache = lock(&w.cache);
    assert_eq!(
        cache
            .get(&s1)
            .and_then(|c| c.state.head(&alex.id.device_key())),
        Some((4, a4.hash()))
    );
    assert_eq!(cache.get(&s1).map(|c| c.usage.events), Some(4));
}

#[test]
fn a_failed_commit_refuses_every_push_of_the_group_and_the_state_does_not_move() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = worker(&dir, 0);
    let (s1, s2) = (SpaceId::generate(), SpaceId::generate());
    let key = SpaceKey::generate();
    let (mut alex, mut bob, mut eve) = (Dev::new("Alex"), Dev::new("Bob"), Dev::new("Eve"));
    let g1 = alex.genesis(s1, false);
    assert_eq!(code(&run(&mut w, vec![prepared(s1, &[&g1])])[0]), None);

    w.fail_commits = 1;
    let a2 = alex.changes(s1, &key, b"2");
    let g2 = bob.genesis(s2, false);
    let intruder = eve.changes(s1, &key, b"no");
    let answers = run(
        &mut w,
        vec![
            prepared(s1, &[&a2]),
            prepared(s2, &[&g2]),
            prepared(s1, &[&intruder]),
        ],
    );
    for a in &answers {
        assert_eq!(code(a), Some(ErrorCode::StorageFull));
        assert_eq!(a.as_ref().err().map(|e| e.status().as_u16()), Some(507));
    }
    assert_eq!(stored(&mut w, s1), [g1.hash()]);
    assert!(stored(&mut w, s2).is_empty());
    assert_eq!(w.counters.commits.load(Ordering::Relaxed), 1);
    // The cache did not take the refused group in: the same pushes go through now.
    assert_eq!(
        lock(&w.cache)
            .get(&s1)
            .and_then(|c| c.state.head(&alex.id.device_key())),
        Some((1, g1.hash()))
    );
    let answers = run(&mut w, vec![prepared(s1, &[&a2]), prepared(s2, &[&g2])]);
    assert_eq!(accepted_cursor(&answers[0]), 2);
    assert_eq!(accepted_cursor(&answers[1]), 3);
    assert_eq!(w.counters.commits.load(Ordering::Relaxed), 2);
}

#[test]
fn when_sqlite_rolls_the_group_back_only_the_push_that_did_not_fit_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = worker(&dir, 64 * 1024);
    let (s1, s2) = (SpaceId::generate(), SpaceId::generate());
    let key = SpaceKey::generate();
    let (mut alex, mut bob) = (Dev::new("Alex"), Dev::new("Bob"));
    let g1 = alex.genesis(s1, false);
    let (seq, prev) = (alex.seq, alex.prev);
    let big = alex.changes(s1, &key, &vec![0u8; 200_000]);
    (alex.seq, alex.prev) = (seq, prev);
    let small = alex.changes(s1, &key, b"fits");
    let g2 = bob.genesis(s2, false);

    let answers = run(
        &mut w,
        vec![
            prepared(s1, &[&g1]),
            prepared(s1, &[&big]),
            prepared(s2, &[&g2]),
            // Same seq as the big one, which was not stored.
            prepared(s1, &[&small]),
        ],
    );
    let codes: Vec<_> = answers.iter().map(code).collect();
    assert_eq!(codes, [None, Some(ErrorCode::StorageFull), None, None]);
    assert_eq!(stored(&mut w, s1), [g1.hash(), small.hash()]);
    assert_eq!(stored(&mut w, s2), [g2.hash()]);
    // The first transaction was lost; the three others were committed together.
    assert_eq!(w.counters.commits.load(Ordering::Relaxed), 1);
    assert_eq!(w.counters.requests.load(Ordering::Relaxed), 4);
    assert!(
        w.store.connection().is_autocommit(),
        "no transaction left open"
    );
}

#[test]
fn fork_evidence_is_bounded_per_device_and_per_space_and_the_rest_is_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = worker(&dir, 0);
    w.forks = ForkLimits {
        per_device: 2,
        space_bytes: 3 * 1000,
    };
    let space = SpaceId::generate();
    let key = SpaceKey::generate();
    let (mut alex, mut sam) = (Dev::new("Alex"), Dev::new("Sam"));
    let g = alex.genesis(space, false);
    let seed = [5u8; 32];
    let inv = alex.invite(space, seed, duet_core::ids::now_ms() + 60_000);
    let join = sam.join(space, seed);
    let (a_at, s_at) = ((alex.seq, alex.prev), (sam.seq, sam.prev));
    let a2 = alex.changes(space, &key, b"a2");
    let s2 = sam.changes(space, &key, b"s2");
    let ok = run(&mut w, vec![prepared(space, &[&g, &inv, &join, &a2, &s2])]);
    assert_eq!(code(&ok[0]), None);

    // About 900 bytes each: Alex's third fork is over his bound; Sam's second is
    // over the space's.
    let fork = |d: &mut Dev, at: (u64, [u8; 32]), i: u8| {
        (d.seq, d.prev) = at;
        d.changes(space, &key, &[i; 700])
    };
    let forks = [
        fork(&mut alex, a_at, 1),
        fork(&mut alex, a_at, 2),
        fork(&mut alex, a_at, 3),
        fork(&mut sam, s_at, 4),
        fork(&mut sam, s_at, 5),
    ];
    let answers = run(
        &mut w,
        forks.iter().map(|f| prepared(space, &[f])).collect(),
    );
    assert!(answers.iter().all(|a| code(a) == Some(ErrorCode::Fork)));
    let kept: Vec<[u8; 32]> = {
        let conn = w.store.connection();
        let mut stmt = conn
            .prepare("SELECT hash FROM forks ORDER BY id")
            .expect("prepare");
        stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))
            .expect("query")
            .map(|h| h.expect("row").try_into().expect("32 bytes"))
            .collect()
    };
    assert_eq!(kept, [forks[0].hash(), forks[1].hash(), forks[3].hash()]);
    let (_, _, attempts) = w.store.page_and_newest(&space, 0, 1, 1).expect("read");
    assert_eq!(attempts, 5);
    // The quota counts the events only.
    assert_eq!(lock(&w.cache).get(&space).map(|c| c.usage.events), Some(5));
}

/// On PostgreSQL a group's rows wait in memory until the commit: a push of the group
/// still sees the ones before it, a repeated event gets its first copy's cursor, and a
/// fork against an event of the same group still leaves its evidence (the rows are sent
/// before that read).
#[test]
fn on_postgres_a_group_sees_its_own_rows_before_they_are_sent() {
    use crate::store::Reader as _;
    let Some(url) = duet_testkit::pg::fresh() else {
        return;
    };
    let mut w = worker_over(crate::store::postgres::PgStore::open(&url).expect("open"));
    let space = SpaceId::generate();
    let key = SpaceKey::generate();
    let mut alex = Dev::new("Alex");
    let g = alex.genesis(space, false);
    let at = (alex.seq, alex.prev);
    let a2 = alex.changes(space, &key, b"a2");
    let a3 = alex.changes(space, &key, b"a3");
    (alex.seq, alex.prev) = at;
    let fork = alex.changes(space, &key, b"fork");
    let answers = run(
        &mut w,
        [&g, &a2, &a3, &a2, &fork]
            .iter()
            .map(|e| prepared(space, &[e]))
            .collect(),
    );
    let codes: Vec<_> = answers.iter().map(code).collect();
    assert_eq!(codes, [None, None, None, None, Some(ErrorCode::Fork)]);
    let cursors: Vec<u64> = answers[..3].iter().map(accepted_cursor).collect();
    assert!(cursors.windows(2).all(|c| c[0] < c[1]), "{cursors:?}");
    let dup = answers[3].as_ref().expect("duplicate");
    assert_eq!(dup.results[0].status, EventStatus::Duplicate);
    assert_eq!(dup.results[0].cursor, Some(cursors[1]));
    let fork_message = answers[4].as_ref().err().map(ApiError::message);
    assert!(
        fork_message
            .as_deref()
            .is_some_and(|m| m.contains("as evidence")),
        "{fork_message:?}"
    );
    assert_eq!(w.counters.commits.load(Ordering::Relaxed), 1);
    let ((page, _), newest, forks) = w
        .store
        .page_and_newest(&space, 0, 10, 1 << 20)
        .expect("read");
    let got: Vec<(u64, Vec<u8>)> = page;
    let want: Vec<(u64, Vec<u8>)> = cursors
        .iter()
        .zip([&g, &a2, &a3])
        .map(|(c, e)| (*c, e.bytes().to_vec()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(newest, cursors[2]);
    assert_eq!(forks, 1);
}

#[test]
fn a_group_holds_at_most_its_cap_of_requests() {
    let mut pending = VecDeque::new();
    for _ in 0..MAX_GROUP_REQUESTS + 10 {
        let (reply, _) = oneshot::channel();
        pending.push_back(Job::Load(SpaceId::generate(), reply));
    }
    assert_eq!(take_group(&mut pending).len(), MAX_GROUP_REQUESTS);
    assert_eq!(take_group(&mut pending).len(), 10);
    assert!(take_group(&mut pending).is_empty());
}
