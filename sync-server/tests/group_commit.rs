//! Group commit under concurrency: many pushes at once to shared and separate spaces
//! are each stored exactly once, in gap-free chains, with increasing cursors, in fewer
//! commits than requests; and a refused push does not affect the pushes queued with it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::http::StatusCode;
use common::{Couple, Device, Relay, now_ms};
use duet_core::crypto::SpaceKey;
use duet_core::event::{Event, SpaceId};
use duet_core::protocol::{ErrorCode, EventStatus, encode_batch};
use duet_relay::{ApiError, Config, Rate};

/// Pushes from one device must not be slowed by the rate limits here.
fn unlimited() -> Config {
    Config {
        rate_per_ip: Rate::OFF,
        rate_per_device: Rate::OFF,
        ..Config::default()
    }
}

/// A space whose first device pushed the genesis and `n - 1` invites, each used by one
/// more device of the same person. Returns the space, its key and the `n` member devices.
async fn space_of(relay: &Relay, n: usize) -> (SpaceId, SpaceKey, Vec<Device>) {
    let space = SpaceId::generate();
    let mut owner = Device::new("owner");
    let g = owner.genesis(space, false);
    relay.push(&space, &[&g]).await.push();
    let mut devices = Vec::new();
    for i in 1..n {
        let seed = [u8::try_from(i).expect("few devices"); 32];
        let inv = owner.invite(space, seed, now_ms() + 3_600_000);
        relay.push(&space, &[&inv]).await.push();
        // Devices of the owner's person: a shared space admits two persons at most.
        let mut d = owner.sibling(&format!("device {i}"));
        let j = d.join(space, seed);
        relay.push(&space, &[&j]).await.push();
        devices.push(d);
    }
    devices.insert(0, owner);
    (space, SpaceKey::generate(), devices)
}

/// Every event of `space`, `(cursor, event)`, read page by page by `reader`.
async fn read_all(relay: &Relay, reader: &Device, space: &SpaceId) -> Vec<(u64, Event)> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let (page, more) = relay
            .read_page(reader, space, &format!("after={after}"))
            .await;
        for (cursor, bytes) in page {
            after = cursor;
            out.push((
                cursor,
                Event::decode(bytes).expect("a stored event decodes"),
            ));
        }
        if !more {
            return out;
        }
    }
}

crate::conformance! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_pushes_to_shared_and_separate_spaces_are_each_stored_once_in_gap_free_chains() {
        const TASKS_PER_SPACE: [usize; 4] = [4, 2, 1, 1];
        const EVENTS: usize = 50;
        let relay = Relay::with_config(unlimited());
        let mut spaces = Vec::new();
        for n in TASKS_PER_SPACE {
            spaces.push(space_of(&relay, n).await);
        }
        let setup_events = u64::try_from(relay.event_count()).expect("a count");
        let setup_requests = relay.state.writer_stats().requests;

        let relay = Arc::new(relay);
        let mut tasks = Vec::new();
        for (space, key, devices) in spaces {
            for mut dev in devices {
                let (relay, key) = (relay.clone(), key.clone());
                tasks.push(tokio::spawn(async move {
                    let mut acked = Vec::new();
                    for i in 0..EVENTS {
                        let ev = dev.changes(space, &key, format!("event {i}").as_bytes());
                        let resp = relay.push(&space, &[&ev]).await.push();
                        assert_eq!(resp.results.len(), 1);
                        let r = &resp.results[0];
                        assert_eq!(r.status, EventStatus::Accepted, "{r:?}");
                        let cursor = r.cursor.expect("an accepted event has a cursor");
                        assert!(
                            resp.cursor >= cursor,
                            "the newest cursor is at least its own"
                        );
                        acked.push((ev.hash(), cursor));
                    }
                    (space, dev, acked)
                }));
            }
        }
        assert_eq!(tasks.len(), 8);
        let mut acked: BTreeMap<SpaceId, BTreeMap<[u8; 32], u64>> = BTreeMap::new();
        let mut readers: BTreeMap<SpaceId, Device> = BTreeMap::new();
        for t in tasks {
            let (space, dev, events) = t.await.expect("a pushing task");
            for (hash, cursor) in events {
                let first = acked.entry(space).or_default().insert(hash, cursor);
                assert!(first.is_none(), "an event acknowledged twice");
            }
            readers.entry(space).or_insert(dev);
        }
        let relay = Arc::into_inner(relay).expect("the tasks are done");
        let total = setup_events + 8 * EVENTS as u64;
        assert_eq!(u64::try_from(relay.event_count()).expect("a count"), total);

        let stats = relay.state.writer_stats();
        let requests = stats.requests - setup_requests;
        assert_eq!(requests, 8 * EVENTS as u64);
        assert!(
            stats.commits < stats.requests,
            "concurrent pushes share commits: {stats:?}"
        );
        eprintln!("writer: {stats:?}");

        let mut relay = relay;
        for round in ["before", "after"] {
            if round == "after" {
                // A fresh state folds each space again on its first read.
                relay.restart();
            }
            let mut all_cursors = BTreeSet::new();
            for (space, reader) in &readers {
                let events = read_all(&relay, reader, space).await;
                let cursors: Vec<u64> = events.iter().map(|(c, _)| *c).collect();
                assert!(
                    cursors.windows(2).all(|w| w[0] < w[1]),
                    "cursors increase within a space"
                );
                all_cursors.extend(cursors);
                // Every author's chain is gap-free: seq 1, 2, 3... each naming the previous.
                let mut heads: BTreeMap<[u8; 32], (u64, [u8; 32])> = BTreeMap::new();
                for (_, ev) in &events {
                    let h = ev.header();
                    let (seq, prev) = heads.get(&h.author).copied().unwrap_or((0, [0; 32]));
                    assert_eq!(
                        h.seq,
                        seq + 1,
                        "no gap in {}'s chain",
                        hex::encode(h.author)
                    );
                    assert_eq!(h.prev, prev);
                    heads.insert(h.author, (h.seq, ev.hash()));
                }
                // Exactly the acknowledged events, each at its acknowledged cursor.
                let served: BTreeMap<[u8; 32], u64> = events
                    .iter()
                    .filter(|(_, ev)| ev.kind() == duet_core::event::Kind::Changes)
                    .map(|(c, ev)| (ev.hash(), *c))
                    .collect();
                assert_eq!(Some(&served), acked.get(space));
            }
            // Nothing was rolled back: the cursors of all spaces are exactly 1..=total.
            assert_eq!(
                all_cursors,
                (1..=total).collect::<BTreeSet<u64>>(),
                "{round}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_push_queued_with_others_leaves_them_accepted() {
        let mut c = Couple::on(Relay::with_config(unlimited())).await;
        let before = c.relay.event_count();
        let state = c.relay.state.clone();
        let now = now_ms();
        let prepare = |events: &[&Event]| {
            let body = encode_batch(events.iter().map(|e| e.bytes()));
            state
                .prepare_push(c.space, &body, now)
                .expect("authentic events are prepared")
        };

        let alex_before = (c.alex.seq, c.alex.prev);
        let a1 = c.alex.changes(c.space, &c.key, b"a1");
        let s1 = c.sam.changes(c.space, &c.key, b"s1");
        // Alex signs another event with a1's seq: a fork of an event queued just before.
        let alex_after = (c.alex.seq, c.alex.prev);
        (c.alex.seq, c.alex.prev) = alex_before;
        let fork = c.alex.changes(c.space, &c.key, b"a1 again");
        (c.alex.seq, c.alex.prev) = alex_after;
        let mut eve = Device::new("Eve");
        let intruder = eve.changes(c.space, &c.key, b"let me in");
        // A gap in Sam's chain: seq + 2 right after s1.
        let sam_after = (c.sam.seq, c.sam.prev);
        c.sam.seq += 1;
        let gap = c.sam.changes(c.space, &c.key, b"s3 without s2");
        (c.sam.seq, c.sam.prev) = sam_after;
        let s2 = c.sam.changes(c.space, &c.key, b"s2");
        let a2 = c.alex.changes(c.space, &c.key, b"a2");

        let pushes = [
            prepare(&[&a1]),
            prepare(&[&s1]),
            prepare(&[&fork]),
            prepare(&[&a2]),
            prepare(&[&intruder]),
            prepare(&[&s2]),
            prepare(&[&gap]),
            prepare(&[&a2, &intruder]),
        ];
        // Queued back to back, before any is awaited.
        let answers: Vec<_> = pushes.into_iter().map(|p| state.submit(p)).collect();
        let mut results = Vec::new();
        for a in answers {
            results.push(a.await);
        }
        let code = |r: &Result<_, ApiError>| r.as_ref().err().map(ApiError::code);
        let codes: Vec<_> = results.iter().map(code).collect();
        assert_eq!(
            codes,
            [
                None,
                None,
                Some(ErrorCode::Fork),
                None,
                Some(ErrorCode::NotAMember),
                None,
                Some(ErrorCode::BrokenChain),
                Some(ErrorCode::NotAMember)
            ]
        );
        let accepted: Vec<u64> = [0, 1, 3, 5]
            .iter()
            .map(|&i| {
                let resp = results[i].as_ref().expect("accepted");
                assert_eq!(resp.results[0].status, EventStatus::Accepted);
                resp.results[0].cursor.expect("a cursor")
            })
            .collect();
        assert!(accepted.windows(2).all(|w| w[0] < w[1]), "{accepted:?}");
        // The last batch: a2 already stored (duplicate), the intruder rejected.
        if let Err(ApiError::Batch { results, .. }) = &results[7] {
            assert_eq!(results[0].status, EventStatus::Duplicate);
            assert_eq!(results[0].cursor, Some(accepted[2]));
            assert_eq!(results[1].status, EventStatus::Rejected);
        } else {
            panic!("expected a refused batch: {:?}", results[7]);
        }
        assert_eq!(c.relay.event_count(), before + 4);
        let stored = c.relay.stored_hashes(&c.space);
        for ev in [&a1, &s1, &a2, &s2] {
            assert!(stored.contains(&ev.hash().to_vec()));
        }
        for ev in [&fork, &intruder, &gap] {
            assert!(!stored.contains(&ev.hash().to_vec()));
        }
        // The fork of an event from the same burst is kept as evidence.
        let forks = c.relay.forks();
        assert_eq!(forks.len(), 1);
        assert_eq!(forks[0].existing_hash, a1.hash().to_vec());
        // The relay still takes Sam's next event after the refused gap.
        let s3 = c.sam.changes(c.space, &c.key, b"s3");
        assert_eq!(c.relay.push(&c.space, &[&s3]).await.status, StatusCode::OK);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pushes_queued_together_are_answered_by_fewer_commits_than_requests() {
        const N: usize = 64;
        let mut c = Couple::on(Relay::with_config(unlimited())).await;
        let state = c.relay.state.clone();
        let start = state.writer_stats();
        // One event per request, all from Alex: each admissible only after the previous.
        let events: Vec<Event> = (0..N)
            .map(|i| c.alex.changes(c.space, &c.key, format!("{i}").as_bytes()))
            .collect();
        let prepared: Vec<_> = events
            .iter()
            .map(|ev| {
                let body = encode_batch([ev.bytes()]);
                state
                    .prepare_push(c.space, &body, now_ms())
                    .expect("prepared")
            })
            .collect();
        let answers: Vec<_> = prepared.into_iter().map(|p| state.submit(p)).collect();
        let mut cursors = Vec::new();
        for a in answers {
            let resp = a.await.expect("accepted");
            assert_eq!(resp.results[0].status, EventStatus::Accepted);
            cursors.push(resp.results[0].cursor.expect("a cursor"));
        }
        assert!(cursors.windows(2).all(|w| w[1] == w[0] + 1), "{cursors:?}");
        let stats = state.writer_stats();
        let requests = stats.requests - start.requests;
        let commits = stats.commits - start.commits;
        assert_eq!(requests, N as u64);
        assert_eq!(stats.events - start.events, N as u64);
        assert!(
            commits < requests,
            "{N} pushes queued together took {commits} commits"
        );
        assert!(stats.largest_group > 1, "{stats:?}");
    }
}
