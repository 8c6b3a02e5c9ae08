//! Pushing events: what the relay accepts, refuses, and stores.

mod common;

use axum::http::StatusCode;
use common::{Couple, Device, Relay, events_path, now_ms};
use duet_core::crypto::SpaceKey;
use duet_core::event::{Event, MembershipOp, SpaceId};
use duet_core::protocol::ErrorCode;
use duet_core::protocol::{EventStatus, encode_batch};

crate::conformance! {
    #[tokio::test]
    async fn genesis_invite_join_and_changes_are_accepted_and_readable_by_both_members() {
        let relay = Relay::new();
        let space = SpaceId::generate();
        let key = SpaceKey::generate();
        let mut alex = Device::new("Alex");
        let mut sam = Device::new("Sam");
        let seed = [3u8; 32];

        let g = alex.genesis(space, false);
        let i = alex.invite(space, seed, now_ms() + 60_000);
        let resp = relay.push(&space, &[&g, &i]).await.push();
        assert!(
            resp.results
                .iter()
                .all(|r| r.status == EventStatus::Accepted)
        );
        assert_eq!(resp.results[0].hash, hex::encode(g.hash()));
        let c1 = resp.results[0].cursor.expect("cursor");
        let c2 = resp.results[1].cursor.expect("cursor");
        assert!(c1 < c2);
        assert_eq!(resp.cursor, c2);

        let j = sam.join(space, seed);
        let a = alex.changes(space, &key, b"alex's goal");
        let s = sam.changes(space, &key, b"sam's rating");
        let resp = relay.push(&space, &[&j, &s]).await.push();
        assert!(
            resp.results
                .iter()
                .all(|r| r.status == EventStatus::Accepted)
        );
        relay.push(&space, &[&a]).await.push();

        let all: Vec<Vec<u8>> = [&g, &i, &j, &s, &a]
            .iter()
            .map(|e| e.bytes().to_vec())
            .collect();
        for reader in [&alex, &sam] {
            let (page, more) = relay.read_page(reader, &space, "after=0").await;
            assert!(!more);
            let bytes: Vec<Vec<u8>> = page.iter().map(|(_, b)| b.clone()).collect();
            assert_eq!(bytes, all);
            assert!(page.windows(2).all(|w| w[0].0 < w[1].0), "cursors increase");
            let opened = Event::decode(page[4].1.clone())
                .expect("decodes")
                .open(&key);
            assert_eq!(opened.as_deref(), Ok(&b"alex's goal"[..]));
        }
        // Reading after the third cursor returns the rest.
        let (page, _) = relay
            .read_page(&sam, &space, &format!("after={}", c2))
            .await;
        assert_eq!(page.len(), 3);
    }

    #[tokio::test]
    async fn a_replayed_event_is_a_duplicate_and_stored_once() {
        let mut c = Couple::new().await;
        let ev = c.alex.changes(c.space, &c.key, b"once");
        let first = c.relay.push(&c.space, &[&ev]).await.push();
        assert_eq!(first.results[0].status, EventStatus::Accepted);
        let before = c.relay.event_count();

        let again = c.relay.push(&c.space, &[&ev]).await.push();
        assert_eq!(again.results[0].status, EventStatus::Duplicate);
        assert_eq!(again.results[0].cursor, first.results[0].cursor);
        assert_eq!(again.cursor, first.cursor);
        // Twice in one batch, too.
        let next = c.alex.changes(c.space, &c.key, b"twice");
        let both = c.relay.push(&c.space, &[&next, &next, &ev]).await.push();
        let statuses: Vec<_> = both.results.iter().map(|r| r.status).collect();
        assert_eq!(
            statuses,
            [
                EventStatus::Accepted,
                EventStatus::Duplicate,
                EventStatus::Duplicate
            ]
        );
        assert_eq!(both.results[0].cursor, both.results[1].cursor);
        assert_eq!(c.relay.event_count(), before + 1);
    }

    #[tokio::test]
    async fn a_forged_signature_or_header_is_refused_with_401_and_nothing_is_stored() {
        let mut c = Couple::new().await;
        let before = c.relay.event_count();
        let ev = c.alex.changes(c.space, &c.key, b"genuine");
        let len = ev.bytes().len();
        // Last byte of the signature; the time field of the header; a payload byte.
        for at in [len - 1, 100, 110] {
            let mut bytes = ev.bytes().to_vec();
            bytes[at] ^= 0x01;
            let a = c
                .relay
                .push_raw(&events_path(&c.space), encode_batch([bytes.as_slice()]))
                .await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "byte {at}");
            let body = a.error();
            assert_eq!(body.error, ErrorCode::BadSignature);
            assert_eq!(body.results.len(), 1);
            assert_eq!(body.results[0].status, EventStatus::Rejected);
            assert!(body.results[0].reason.is_some());
        }
        assert_eq!(c.relay.event_count(), before);
        // The genuine event is still accepted afterwards.
        c.relay.push(&c.space, &[&ev]).await.push();
    }

    #[tokio::test]
    async fn a_validly_signed_event_by_a_non_member_is_refused_with_403() {
        let c = Couple::new().await;
        let before = c.relay.event_count();
        let mut eve = Device::new("Eve");
        for ev in [
            eve.changes(c.space, &c.key, b"let me in"),
            Device::new("Eve2").invite(c.space, [9; 32], now_ms() + 60_000),
        ] {
            let a = c.relay.push(&c.space, &[&ev]).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN);
            assert_eq!(a.error().error, ErrorCode::NotAMember);
        }
        assert_eq!(c.relay.event_count(), before);
    }

    #[tokio::test]
    async fn a_removed_member_can_no_longer_push() {
        let mut c = Couple::new().await;
        let op = common::remove_op(c.space, c.sam.key(), 1, &[(c.alex.key(), c.alex.x25519())]);
        let remove = c.alex.membership(c.space, &op);
        c.relay.push(&c.space, &[&remove]).await.push();
        let ev = c.sam.changes(c.space, &c.key, b"still here?");
        let a = c.relay.push(&c.space, &[&ev]).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        assert_eq!(a.error().error, ErrorCode::NotAMember);
    }

    #[tokio::test]
    async fn a_fork_is_refused_with_409_the_first_is_kept_and_evidence_is_recorded() {
        let mut c = Couple::new().await;
        let (seq, prev) = (c.alex.seq, c.alex.prev);
        let first = c.alex.changes(c.space, &c.key, b"first");
        c.relay.push(&c.space, &[&first]).await.push();
        // Same seq and prev, other content.
        c.alex.seq = seq;
        c.alex.prev = prev;
        let other = c.alex.changes(c.space, &c.key, b"other");
        assert_eq!(first.header().seq, other.header().seq);
        let before = c.relay.event_count();

        let a = c.relay.push(&c.space, &[&other]).await;
        assert_eq!(a.status, StatusCode::CONFLICT);
        let body = a.error();
        assert_eq!(body.error, ErrorCode::Fork);
        assert_eq!(body.results[0].status, EventStatus::Rejected);
        assert_eq!(c.relay.event_count(), before);
        let stored = c.relay.stored_hashes(&c.space);
        assert!(stored.contains(&first.hash().to_vec()));
        assert!(!stored.contains(&other.hash().to_vec()));

        let forks = c.relay.forks();
        assert_eq!(forks.len(), 1);
        let fork = &forks[0];
        assert_eq!(fork.author, c.alex.key().to_vec());
        assert_eq!(fork.seq, i64::try_from(first.header().seq).expect("small"));
        assert_eq!(fork.existing_hash, first.hash().to_vec());
        assert_eq!(fork.bytes, other.bytes());

        // Sending the same forked event again keeps one evidence row.
        let a = c.relay.push(&c.space, &[&other]).await;
        assert_eq!(a.status, StatusCode::CONFLICT);
        assert_eq!(c.relay.forks().len(), 1);
    }

    #[tokio::test]
    async fn two_events_of_one_seq_in_one_push_are_both_refused_and_said_so() {
        let mut c = Couple::new().await;
        let (seq, prev) = (c.alex.seq, c.alex.prev);
        let first = c.alex.changes(c.space, &c.key, b"first");
        (c.alex.seq, c.alex.prev) = (seq, prev);
        let other = c.alex.changes(c.space, &c.key, b"other");
        let before = c.relay.event_count();
        let a = c.relay.push(&c.space, &[&first, &other]).await;
        assert_eq!(a.status, StatusCode::CONFLICT);
        let body = a.error();
        assert_eq!(body.error, ErrorCode::Fork);
        assert!(
            body.message.contains("this push holds two events")
                && !body.message.contains("keeps"),
            "{}",
            body.message
        );
        assert_eq!(c.relay.event_count(), before, "neither is stored");
        assert!(c.relay.forks().is_empty(), "nothing to keep as evidence");
    }

    #[tokio::test]
    async fn a_gap_or_a_wrong_prev_is_a_broken_chain() {
        let mut c = Couple::new().await;
        let before = c.relay.event_count();
        c.alex.seq += 1; // skip one
        let gap = c.alex.changes(c.space, &c.key, b"gap");
        let a = c.relay.push(&c.space, &[&gap]).await;
        assert_eq!(a.status, StatusCode::CONFLICT);
        assert_eq!(a.error().error, ErrorCode::BrokenChain);

        c.sam.prev = [1; 32];
        let wrong_prev = c.sam.changes(c.space, &c.key, b"wrong prev");
        let a = c.relay.push(&c.space, &[&wrong_prev]).await;
        assert_eq!(a.status, StatusCode::CONFLICT);
        assert_eq!(a.error().error, ErrorCode::BrokenChain);
        assert_eq!(c.relay.event_count(), before);
    }

    #[tokio::test]
    async fn a_reused_invite_is_refused_with_invite_used() {
        let c = Couple::new().await; // Sam used invite seed [7; 32].
        let mut kim = Device::new("Kim");
        let j = kim.join(c.space, [7u8; 32]);
        let a = c.relay.push(&c.space, &[&j]).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        assert_eq!(a.error().error, ErrorCode::InviteUsed);
    }

    #[tokio::test]
    async fn an_expired_invite_is_refused_with_invite_expired() {
        let relay = Relay::new();
        let space = SpaceId::generate();
        let mut alex = Device::new("Alex");
        let mut sam = Device::new("Sam");
        let seed = [5u8; 32];
        let expires = now_ms() - 10_000;
        let g = alex.genesis(space, false);
        let i = alex.invite(space, seed, expires);
        relay.push(&space, &[&g, &i]).await.push();
        // The join claims a time before expiry: the relay's clock decides.
        let op = sam.join_op(space, seed);
        let j = sam.membership_at(space, &op, expires - 1);
        let before = relay.event_count();
        let a = relay.push(&space, &[&j]).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        assert_eq!(a.error().error, ErrorCode::InviteExpired);
        assert_eq!(relay.event_count(), before);
    }

    #[tokio::test]
    async fn join_failures_have_their_own_codes() {
        let c = Couple::new().await;
        // Unknown invite.
        let mut kim = Device::new("Kim");
        let j = kim.join(c.space, [42u8; 32]);
        let a = c.relay.push(&c.space, &[&j]).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        assert_eq!(a.error().error, ErrorCode::UnknownInvite);

        // An invite signature that does not bind this joiner.
        let mut alex = c.alex;
        let inv = alex.invite(c.space, [43u8; 32], now_ms() + 60_000);
        c.relay.push(&c.space, &[&inv]).await.push();
        let mut lee = Device::new("Lee");
        let op = match Device::new("other").join_op(c.space, [43u8; 32]) {
            MembershipOp::Join {
                invite_key,
                invite_sig,
                ..
            } => MembershipOp::Join {
                invite_key,
                person: lee.person(),
                x25519: lee.x25519(),
                invite_sig,
            },
            _ => unreachable!("join_op builds a join"),
        };
        let j = lee.membership(c.space, &op);
        let a = c.relay.push(&c.space, &[&j]).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(a.error().error, ErrorCode::BadInviteSignature);
    }

    #[tokio::test]
    async fn someone_elses_device_cannot_join_a_personal_space() {
        let relay = Relay::new();
        let space = SpaceId::generate();
        let mut alex = Device::new("Alex");
        let mut laptop = alex.sibling("Alex's laptop");
        let mut sam = Device::new("Sam");
        let g = alex.genesis(space, true);
        let i1 = alex.invite(space, [1; 32], now_ms() + 60_000);
        let i2 = alex.invite(space, [2; 32], now_ms() + 60_000);
        relay.push(&space, &[&g, &i1, &i2]).await.push();
        let j = sam.join(space, [1; 32]);
        let a = relay.push(&space, &[&j]).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        assert_eq!(a.error().error, ErrorCode::NotAMember);
        let j = laptop.join(space, [2; 32]);
        relay.push(&space, &[&j]).await.push();
    }

    #[tokio::test]
    async fn a_batch_with_one_bad_event_stores_nothing() {
        let mut c = Couple::new().await;
        let before = c.relay.event_count();
        let old = c.alex.changes(c.space, &c.key, b"already there");
        c.relay.push(&c.space, &[&old]).await.push();
        let good1 = c.alex.changes(c.space, &c.key, b"one");
        let good2 = c.sam.changes(c.space, &c.key, b"two");
        let mut eve = Device::new("Eve");
        let bad = eve.changes(c.space, &c.key, b"intruder");
        let good3 = c.alex.changes(c.space, &c.key, b"three");

        let a = c
            .relay
            .push(&c.space, &[&old, &good1, &good2, &bad, &good3, &old])
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        let body = a.error();
        assert_eq!(body.error, ErrorCode::NotAMember);
        let statuses: Vec<_> = body.results.iter().map(|r| r.status).collect();
        assert_eq!(
            statuses,
            [
                EventStatus::Duplicate,
                EventStatus::NotStored,
                EventStatus::NotStored,
                EventStatus::Rejected,
                EventStatus::NotStored,
                EventStatus::Duplicate
            ]
        );
        assert_eq!(body.results[3].hash, hex::encode(bad.hash()));
        assert_eq!(c.relay.event_count(), before + 1);

        // Without the intruder, the same batch goes through.
        let ok = c
            .relay
            .push(&c.space, &[&good1, &good2, &good3])
            .await
            .push();
        assert!(ok.results.iter().all(|r| r.status == EventStatus::Accepted));
    }

    #[tokio::test]
    async fn malformed_bodies_and_misplaced_events_are_400_malformed() {
        let mut c = Couple::new().await;
        let before = c.relay.event_count();
        let path = events_path(&c.space);
        for body in [
            Vec::new(),                           // empty batch
            vec![0, 0, 0],                        // truncated length
            vec![0, 0, 0, 9, 1, 2],               // shorter than its length
            encode_batch([&b"not an event"[..]]), // not an event
        ] {
            let a = c.relay.push_raw(&path, body).await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST);
            assert_eq!(a.error().error, ErrorCode::Malformed);
        }
        // A valid event of another space, pushed to this one.
        let other = SpaceId::generate();
        let ev = c.alex.changes(other, &c.key, b"elsewhere");
        let a = c.relay.push(&c.space, &[&ev]).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert_eq!(a.error().error, ErrorCode::Malformed);
        // A wrong format version (the signature covers it, but decoding stops first).
        let mut v2 = ev.bytes().to_vec();
        v2[4] = 2;
        let a = c.relay.push_raw(&path, encode_batch([v2.as_slice()])).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert_eq!(a.error().error, ErrorCode::Malformed);
        assert_eq!(c.relay.event_count(), before);
    }

    #[tokio::test]
    async fn events_for_a_space_without_genesis_are_404_and_a_second_genesis_409() {
        let c = Couple::new().await;
        let mut x = Device::new("X");
        let nowhere = SpaceId::generate();
        let ev = x.changes(nowhere, &c.key, b"hello?");
        let a = c.relay.push(&nowhere, &[&ev]).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert_eq!(a.error().error, ErrorCode::NoSuchSpace);

        let mut y = Device::new("Y");
        let g = y.genesis(c.space, false);
        let a = c.relay.push(&c.space, &[&g]).await;
        assert_eq!(a.status, StatusCode::CONFLICT);
        assert_eq!(a.error().error, ErrorCode::Conflict);
    }

    #[tokio::test]
    async fn membership_survives_a_restart_of_the_relay() {
        let mut c = Couple::new().await;
        let ev = c.sam.changes(c.space, &c.key, b"before restart");
        c.relay.push(&c.space, &[&ev]).await.push();
        c.relay.restart();
        // Chain heads and members are rebuilt from the database.
        let ev = c.sam.changes(c.space, &c.key, b"after restart");
        c.relay.push(&c.space, &[&ev]).await.push();
        let mut eve = Device::new("Eve");
        let bad = eve.changes(c.space, &c.key, b"no");
        assert_eq!(
            c.relay.push(&c.space, &[&bad]).await.status,
            StatusCode::FORBIDDEN
        );
        let (page, _) = c.relay.read_page(&c.alex, &c.space, "").await;
        assert_eq!(page.len(), 5);
        assert_eq!(page[4].1, ev.bytes());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_pushes_of_the_same_events_store_them_once() {
        let mut c = Couple::new().await;
        let before = c.relay.event_count();
        let a = c.alex.changes(c.space, &c.key, b"a");
        let b = c.alex.changes(c.space, &c.key, b"b");
        let body = encode_batch([a.bytes(), b.bytes()]);
        let relay = std::sync::Arc::new(c.relay);
        let path = events_path(&c.space);
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let (relay, path, body) = (relay.clone(), path.clone(), body.clone());
                tokio::spawn(async move { relay.push_raw(&path, body).await.push() })
            })
            .collect();
        let mut accepted = 0;
        for t in tasks {
            let resp = t.await.expect("task");
            accepted += resp
                .results
                .iter()
                .filter(|r| r.status == EventStatus::Accepted)
                .count();
            assert!(resp.results.iter().all(|r| r.cursor.is_some()));
        }
        assert_eq!(accepted, 2);
        assert_eq!(relay.event_count(), before + 2);
    }
}
