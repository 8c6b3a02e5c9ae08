//! Two `duet-relay` processes over one PostgreSQL database, written to at once: every
//! event is accepted exactly once, both serve one and the same order, and a fork sent
//! to both halves at once is refused. Needs `DUET_TEST_POSTGRES` (`.ci/run` provides
//! it); without it the test says it was skipped.

mod common;

use std::collections::{BTreeMap, HashSet};

use common::process::{Proc, Reply};
use common::{Device, PG_ENV, fresh_postgres, now_ms};
use duet_core::crypto::SpaceKey;
use duet_core::event::{Event, SpaceId};
use duet_core::protocol::{PushResponse, decode_page};

const UNLIMITED: &[&str] = &["--rate-per-ip", "0", "--rate-per-device", "0"];

fn postgres_or_skip() -> Option<String> {
    if std::env::var(PG_ENV).is_err() {
        eprintln!("skipped: two relay instances need PostgreSQL; set {PG_ENV} (as .ci/run does)");
        return None;
    }
    Some(fresh_postgres())
}

fn status_of(r: &Reply) -> String {
    if r.status == 200 {
        let resp: PushResponse = serde_json::from_slice(&r.body).expect("a push response");
        format!("{:?}", resp.results[0].status).to_lowercase()
    } else {
        let body: serde_json::Value = serde_json::from_slice(&r.body).expect("an error body");
        body["error"].as_str().unwrap_or("?").to_string()
    }
}

/// Pushes `ev` to both instances at the same moment; the two answers' statuses.
fn push_to_both(a: &Proc, b: &Proc, space: &SpaceId, ev: &Event) -> [String; 2] {
    std::thread::scope(|s| {
        let ta = s.spawn(|| status_of(&a.push(space, &[ev])));
        let tb = s.spawn(|| status_of(&b.push(space, &[ev])));
        [ta.join().expect("push a"), tb.join().expect("push b")]
    })
}

/// Every event of the space as one instance serves it: `(cursor, event bytes)`.
fn read_all(p: &Proc, reader: &Device, space: &SpaceId) -> Vec<(u64, Vec<u8>)> {
    let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
    loop {
        let after = out.last().map_or(0, |(c, _)| *c);
        let r = p.read(reader, space, &format!("after={after}&limit=100"));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let page = decode_page(&r.body).expect("a page");
        let more = r.header(duet_core::protocol::H_MORE) == Some("1");
        out.extend(page);
        if !more {
            return out;
        }
    }
}

#[test]
fn two_instances_accept_each_event_once_serve_one_order_and_refuse_a_split_fork() {
    let Some(url) = postgres_or_skip() else {
        return;
    };
    let a = Proc::start_on(&url, UNLIMITED);
    let b = Proc::start_on(&url, UNLIMITED);

    // The space is made on one instance and joined on the other.
    let space = SpaceId::generate();
    let key = SpaceKey::generate();
    let mut alex = Device::new("Alex");
    let mut sam = Device::new("Sam");
    let seed = [3u8; 32];
    let g = alex.genesis(space, false);
    let i = alex.invite(space, seed, now_ms() + 3_600_000);
    assert_eq!(a.push(&space, &[&g, &i]).status, 200);
    let j = sam.join(space, seed);
    assert_eq!(status_of(&b.push(&space, &[&j])), "accepted");

    // Both partners write at once, each event sent to both instances at once.
    const EACH: usize = 40;
    let outcomes: Vec<[String; 2]> = std::thread::scope(|s| {
        let writers: Vec<_> = [&mut alex, &mut sam]
            .into_iter()
            .map(|dev| {
                let (a, b, key) = (&a, &b, &key);
                s.spawn(move || {
                    (0..EACH)
                        .map(|n| {
                            let ev = dev.changes(space, key, format!("edit {n}").as_bytes());
                            push_to_both(a, b, &space, &ev)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        writers
            .into_iter()
            .flat_map(|w| w.join().expect("writer"))
            .collect()
    });
    for o in &outcomes {
        let mut sorted = o.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            ["accepted", "duplicate"],
            "each event is accepted exactly once, the other copy is a duplicate"
        );
    }

    // Alex signs two different events with the same seq and sends one to each instance.
    let (seq, prev) = (alex.seq, alex.prev);
    let one = alex.changes(space, &key, b"one");
    alex.seq = seq;
    alex.prev = prev;
    let other = alex.changes(space, &key, b"other");
    let [ra, rb] = std::thread::scope(|s| {
        let ta = s.spawn(|| status_of(&a.push(&space, &[&one])));
        let tb = s.spawn(|| status_of(&b.push(&space, &[&other])));
        [ta.join().expect("a"), tb.join().expect("b")]
    });
    let mut both = vec![ra, rb];
    both.sort();
    assert_eq!(both, ["accepted", "fork"], "one half of the fork is kept");

    // Both instances serve the same order, with every event once and gap-free chains.
    let from_a = read_all(&a, &alex, &space);
    let from_b = read_all(&b, &sam, &space);
    assert_eq!(
        from_a, from_b,
        "one order, seen identically from both instances"
    );
    assert_eq!(from_a.len(), 3 + 2 * EACH + 1);
    let cursors: Vec<u64> = from_a.iter().map(|(c, _)| *c).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "cursors grow");
    let mut hashes = HashSet::new();
    let mut chains: BTreeMap<[u8; 32], Vec<u64>> = BTreeMap::new();
    for (_, bytes) in &from_a {
        let ev = Event::decode(bytes.clone()).expect("a stored event decodes");
        assert!(hashes.insert(ev.hash()), "no event is stored twice");
        chains
            .entry(ev.header().author)
            .or_default()
            .push(ev.header().seq);
    }
    for seqs in chains.values() {
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, &expected, "each author's chain is whole and in order");
    }
}

#[test]
fn a_relay_started_again_on_its_postgresql_database_logs_no_notice() {
    let Some(url) = postgres_or_skip() else {
        return;
    };
    drop(Proc::start_on(&url, UNLIMITED));
    // The tables exist now: PostgreSQL answers their `IF NOT EXISTS` with notices, which
    // ask nothing of the operator.
    let again = Proc::start_logged_on(&url, UNLIMITED);
    assert_eq!(again.healthz().status, 200);
    let log = again.log();
    assert!(log.contains("relay started"), "{log}");
    assert!(!log.contains("NOTICE"), "{log}");
}
