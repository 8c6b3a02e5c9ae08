//! Reading events: only member devices, with fresh signed requests, get pages.

mod common;

use axum::http::StatusCode;
use common::{Couple, Device, events_path};
use duet_core::event::SpaceId;
use duet_core::protocol::ErrorCode;
use duet_core::protocol::{MAX_READ_LIMIT, ReadAuth, read_message};

fn signed_at(dev: &Device, path: &str, query: &str, time: i64) -> ReadAuth {
    let nonce = hex::encode(duet_core::ids::random_bytes::<16>());
    let sig = dev.id.sign(&read_message("GET", path, query, time, &nonce));
    ReadAuth {
        device: hex::encode(dev.key()),
        time,
        nonce,
        signature: hex::encode(sig),
    }
}

crate::conformance! {
    #[tokio::test]
    async fn a_read_without_the_signed_headers_is_401_unauthenticated() {
        let c = Couple::new().await;
        let a = c.relay.read_with(&events_path(&c.space), "", None).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(a.error().error, ErrorCode::Unauthenticated);
    }

    #[tokio::test]
    async fn a_read_whose_nonce_holds_a_space_is_401_unauthenticated_though_signed() {
        let c = Couple::new().await;
        let path = events_path(&c.space);
        let time = duet_core::ids::now_ms() / 1000;
        let nonce = "a b".to_string();
        let sig = c.alex.id.sign(&read_message("GET", &path, "", time, &nonce));
        let auth = ReadAuth {
            device: hex::encode(c.alex.key()),
            time,
            nonce,
            signature: hex::encode(sig),
        };
        let a = c.relay.read_with(&path, "", Some(&auth)).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(a.error().error, ErrorCode::Unauthenticated);
    }

    #[tokio::test]
    async fn a_replayed_read_is_401_replayed_request() {
        let c = Couple::new().await;
        let path = events_path(&c.space);
        let auth = c.alex.read_auth(&path, "after=0");
        let first = c.relay.read_with(&path, "after=0", Some(&auth)).await;
        assert_eq!(first.status, StatusCode::OK);
        let again = c.relay.read_with(&path, "after=0", Some(&auth)).await;
        assert_eq!(again.status, StatusCode::UNAUTHORIZED);
        assert_eq!(again.error().error, ErrorCode::ReplayedRequest);
        // A freshly signed read works.
        assert_eq!(
            c.relay.read(&c.alex, &c.space, "after=0").await.status,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn a_stale_or_future_read_is_401_stale_request() {
        let c = Couple::new().await;
        let path = events_path(&c.space);
        let now = duet_core::ids::now_ms() / 1000;
        // The last: signed 2^63 s before now, where `now - time` wraps to i64::MIN.
        for time in [now - 3600, now + 3600, now + i64::MIN] {
            let auth = signed_at(&c.alex, &path, "", time);
            let a = c.relay.read_with(&path, "", Some(&auth)).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED);
            assert_eq!(a.error().error, ErrorCode::StaleRequest);
        }
        let auth = signed_at(&c.alex, &path, "", now - 60);
        assert_eq!(
            c.relay.read_with(&path, "", Some(&auth)).await.status,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn a_read_signature_for_another_query_or_by_another_key_is_401_bad_signature() {
        let c = Couple::new().await;
        let path = events_path(&c.space);
        let auth = c.alex.read_auth(&path, "after=0");
        let a = c.relay.read_with(&path, "after=1", Some(&auth)).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(a.error().error, ErrorCode::BadSignature);
        // Claiming to be Sam with Alex's signature.
        let mut auth = c.alex.read_auth(&path, "");
        auth.device = hex::encode(c.sam.key());
        let a = c.relay.read_with(&path, "", Some(&auth)).await;
        assert_eq!(a.error().error, ErrorCode::BadSignature);
        // Garbage in the headers.
        let mut auth = c.alex.read_auth(&path, "");
        auth.signature = "zz".into();
        let a = c.relay.read_with(&path, "", Some(&auth)).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn a_read_by_a_non_member_is_403_and_of_an_unknown_space_404() {
        let mut c = Couple::new().await;
        let eve = Device::new("Eve");
        let a = c.relay.read(&eve, &c.space, "").await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        assert_eq!(a.error().error, ErrorCode::NotAMember);

        let a = c.relay.read(&c.alex, &SpaceId::generate(), "").await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert_eq!(a.error().error, ErrorCode::NoSuchSpace);

        // A removed member reads on only up to its removal (so that it learns who removed
        // it and when), never what is written after it.
        let op = common::remove_op(c.space, c.sam.key(), 1, &[(c.alex.key(), c.alex.x25519())]);
        let remove = c.alex.membership(c.space, &op);
        c.relay.push(&c.space, &[&remove]).await.push();
        let later = c.alex.changes(c.space, &c.key, b"after the removal");
        c.relay.push(&c.space, &[&later]).await.push();
        let (page, more) = c.relay.read_page(&c.sam, &c.space, "").await;
        assert!(!more);
        let last = page.last().expect("events up to the removal");
        assert_eq!(last.1, remove.bytes(), "the page ends with the removal");
        assert!(page.iter().all(|(_, b)| b.as_slice() != later.bytes()));
        let a = c.relay.read(&c.sam, &c.space, "").await;
        assert_eq!(
            a.header(duet_core::protocol::H_CURSOR),
            Some(last.0.to_string().as_str()),
            "its newest cursor is the removal's"
        );
        let (after, _) = c
            .relay
            .read_page(&c.sam, &c.space, &format!("after={}", last.0))
            .await;
        assert!(after.is_empty(), "nothing after the removal");
        // Not even which cursors after it hold an event: the members' see the hash.
        let query = format!("after={}", last.0 + 1);
        let probe = c.relay.read(&c.sam, &c.space, &query).await;
        assert_eq!(probe.header(duet_core::protocol::H_AFTER_HASH), Some("-"));
        assert_eq!(probe.header(duet_core::protocol::H_FORKS), Some("0"));
        let member = c.relay.read(&c.alex, &c.space, &query).await;
        assert_eq!(
            member.header(duet_core::protocol::H_AFTER_HASH),
            Some(hex::encode(later.hash()).as_str())
        );
    }

    #[tokio::test]
    async fn reads_come_in_pages_with_duet_more() {
        let mut c = Couple::new().await;
        for n in 0..5u8 {
            let ev = c.alex.changes(c.space, &c.key, &[n]);
            c.relay.push(&c.space, &[&ev]).await.push();
        }
        // 3 membership events + 5 changes.
        let mut cursor = 0;
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let (page, more) = c
                .relay
                .read_page(&c.sam, &c.space, &format!("after={cursor}&limit=3"))
                .await;
            pages += 1;
            assert!(page.len() <= 3);
            assert_eq!(
                more,
                seen.len() + page.len() < 8,
                "more flag after {cursor}"
            );
            for (cur, bytes) in page {
                assert!(cur > cursor);
                cursor = cur;
                seen.push(bytes);
            }
            if !more {
                break;
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(seen.len(), 8);
        // Past the end: an empty page.
        let (page, more) = c
            .relay
            .read_page(&c.sam, &c.space, &format!("after={cursor}"))
            .await;
        assert!(page.is_empty() && !more);
        // A limit above the maximum is lowered to it.
        let q = format!("limit={}", MAX_READ_LIMIT + 1);
        let (page, more) = c.relay.read_page(&c.sam, &c.space, &q).await;
        assert_eq!((page.len(), more), (8, false));
    }

    #[tokio::test]
    async fn a_bad_query_is_400_bad_query() {
        let c = Couple::new().await;
        for q in [
            "limit=0",
            "after=x",
            "after=-1",
            "limit=",
            "after",
            "after=1&after=2",
            "offset=3",
            "after=99999999999999999999999",
        ] {
            let a = c.relay.read(&c.alex, &c.space, q).await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "query {q}");
            assert_eq!(a.error().error, ErrorCode::BadQuery, "query {q}");
        }
    }

    #[tokio::test]
    async fn every_read_says_the_spaces_newest_cursor_in_duet_cursor() {
        let mut c = Couple::new().await;
        let mut newest = 0;
        for n in 0..3u8 {
            let ev = c.alex.changes(c.space, &c.key, &[n]);
            newest = c.relay.push(&c.space, &[&ev]).await.push().cursor;
        }
        // Another space's events do not count.
        let other = Couple::new().await;
        assert!(other.relay.event_count() > 0);
        for query in [
            "",
            "after=0&limit=1",
            &format!("after={newest}"),
            "after=99999",
        ] {
            let a = c.relay.read(&c.sam, &c.space, query).await;
            assert_eq!(a.status, StatusCode::OK, "{query}");
            assert_eq!(
                a.header(duet_core::protocol::H_CURSOR),
                Some(newest.to_string().as_str()),
                "{query}"
            );
        }
        // Errors do not carry it.
        let a = c.relay.read(&Device::new("Eve"), &c.space, "").await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        assert!(a.header(duet_core::protocol::H_CURSOR).is_none());
    }
}
