//! Hostile input at the edges: oversized bodies, junk space ids, unknown routes.

mod common;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use common::{Couple, Relay};
use duet_core::protocol::ErrorCode;
use duet_core::protocol::{MAX_BODY_BYTES, events_path};

/// A stranger's push that sent 2 MiB and then nothing more, served by `app` and polled
/// once: it has taken its share of the push memory (four times the body it sent) and
/// waits for the rest.
fn stopped_push(
    app: axum::Router,
) -> std::pin::Pin<Box<tower::util::Oneshot<axum::Router, Request<Body>>>> {
    use tower::ServiceExt;
    let sent = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from(vec![
        0u8;
        2 * 1024
            * 1024
    ]))]);
    let stuck = Request::post(events_path(&duet_core::event::SpaceId::generate()))
        .body(Body::from_stream(futures_util::StreamExt::chain(
            sent,
            futures_util::stream::pending(),
        )))
        .expect("request");
    let mut holder = Box::pin(app.oneshot(stuck));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(
        std::future::Future::poll(holder.as_mut(), &mut cx).is_pending(),
        "the stranger's push waits for its body"
    );
    holder
}

/// Polls `f` until it returns true, or panics after `within`.
async fn eventually(within: std::time::Duration, mut f: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !f().await {
        assert!(
            std::time::Instant::now() < deadline,
            "condition not met within {within:?}"
        );
        tokio::task::yield_now().await;
    }
}

crate::conformance! {
    #[tokio::test]
    async fn a_member_who_joins_device_after_device_is_stopped_and_the_partners_devices_still_join() {
        // Every join costs each later push more (the space's state grows with every
        // device ever admitted): past the cap, a member's own device codes admit no more.
        // The cap is the member's own: the partner still adds a device.
        use duet_core::membership::MAX_DEVICES_PER_PERSON;
        let mut c = Couple::new().await;
        let expires = common::now_ms() + 3_600_000;
        let seed = |i: usize| {
            let mut s = [9u8; 32];
            s[..8].copy_from_slice(&(i as u64).to_le_bytes());
            s
        };
        let extra = MAX_DEVICES_PER_PERSON;
        let invites: Vec<_> = (0..extra)
            .map(|i| c.alex.invite(c.space, seed(i), expires))
            .collect();
        c.relay.push(&c.space, &invites.iter().collect::<Vec<_>>()).await.push();
        let joins: Vec<_> = (0..extra)
            .map(|i| c.alex.sibling(&format!("Alex {i}")).join(c.space, seed(i)))
            .collect();
        let (room, over) = joins.split_at(extra - 1);
        c.relay.push(&c.space, &room.iter().collect::<Vec<_>>()).await.push();

        let refused = c.relay.push(&c.space, &[&over[0]]).await;
        assert_eq!(
            refused.status,
            StatusCode::INSUFFICIENT_STORAGE,
            "{}",
            String::from_utf8_lossy(&refused.body)
        );
        assert_eq!(refused.error().error, ErrorCode::QuotaExceeded);
        assert!(refused.error().message.contains("devices"), "{:?}", refused.error());
        // The couple's own writing goes on, and Sam's device code still admits Sam's phone.
        let ev = c.alex.changes(c.space, &c.key, b"still writing");
        c.relay.push(&c.space, &[&ev]).await.push();
        let phone = [200u8; 32];
        let invite = c.sam.invite(c.space, phone, expires);
        c.relay.push(&c.space, &[&invite]).await.push();
        let join = c.sam.sibling("Sam's phone").join(c.space, phone);
        c.relay.push(&c.space, &[&join]).await.push();
    }

    #[tokio::test]
    async fn an_oversized_body_with_content_length_is_413_json() {
        let c = Couple::new().await;
        let before = c.relay.event_count();
        let body = vec![0u8; MAX_BODY_BYTES + 1];
        let req = Request::post(common::events_path(&c.space))
            .header("content-length", body.len().to_string())
            .body(Body::from(body))
            .expect("request");
        let a = c.relay.send(req).await;
        assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(a.header("content-type"), Some("application/json"));
        assert_eq!(a.error().error, ErrorCode::TooLarge);
        assert_eq!(c.relay.event_count(), before);
    }

    #[tokio::test]
    async fn an_oversized_chunked_body_without_content_length_is_413_json() {
        let c = Couple::new().await;
        let chunk = Bytes::from(vec![0u8; 1024 * 1024]);
        let chunks =
            (0..=MAX_BODY_BYTES / chunk.len()).map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
        let req = Request::post(common::events_path(&c.space))
            .body(Body::from_stream(futures_util::stream::iter(chunks)))
            .expect("request");
        assert!(req.headers().get("content-length").is_none());
        let a = c.relay.send(req).await;
        assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(a.error().error, ErrorCode::TooLarge);
    }

    #[tokio::test]
    async fn an_event_over_the_event_limit_is_413() {
        let c = Couple::new().await;
        let big = vec![0u8; duet_core::event::MAX_EVENT_BYTES + 1];
        let a = c
            .relay
            .push_raw(
                &common::events_path(&c.space),
                duet_core::protocol::encode_batch([big.as_slice()]),
            )
            .await;
        assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(a.error().error, ErrorCode::TooLarge);
    }

    #[tokio::test]
    async fn junk_space_ids_are_refused_without_touching_the_database() {
        let c = Couple::new().await;
        let before = c.relay.event_count();
        let valid = c.space.to_string();
        let junk = [
            "..%2F..".to_string(),
            "%2e%2e".to_string(),
            "..".to_string(),
            format!("{valid}0"),
            valid.to_uppercase(),
            format!("{}%00", &valid[..31]),
            "%00".to_string(),
            "%FF%FE".to_string(),
            format!("{}g", &valid[..31]),
            format!(" {}", &valid[..31]).replace(' ', "%20"),
        ];
        for id in junk {
            let path = events_path(&id);
            let push = c.relay.push_raw(&path, b"\0\0\0\x01x".to_vec()).await;
            assert!(
                matches!(push.status, StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND),
                "push to {path}: {}",
                push.status
            );
            let auth = c.alex.read_auth(&path, "");
            let read = c.relay.read_with(&path, "", Some(&auth)).await;
            assert!(
                matches!(read.status, StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND),
                "read of {path}: {}",
                read.status
            );
            for a in [push, read] {
                let code = a.error().error;
                assert!(
                    code == ErrorCode::BadSpaceId || code == ErrorCode::NotFound,
                    "{path}: {code}"
                );
            }
        }
        assert_eq!(c.relay.event_count(), before);
    }

    #[tokio::test]
    async fn unknown_routes_and_methods_get_json_errors_and_healthz_is_ok() {
        let relay = Relay::new();
        let a = relay
            .send(
                Request::get("/v2/nothing")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert_eq!(a.error().error, ErrorCode::NotFound);
        let a = relay
            .send(
                Request::delete(duet_core::protocol::HEALTHZ_PATH)
                    .body(Body::empty())
                    .expect("request"),
            )
            .await;
        assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(a.error().error, ErrorCode::MethodNotAllowed);
        assert!(a.error().message.contains("the health check is a GET"), "{}", a.error().message);
        let a = relay
            .send(
                Request::get(duet_core::protocol::HEALTHZ_PATH)
                    .body(Body::empty())
                    .expect("request"),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_slice(&a.body).expect("json");
        assert_eq!(v, serde_json::json!({"status": "ok"}));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_beyond_the_in_flight_limit_are_shed_with_503_json_and_retry_after() {
        use duet_relay::Config;
        use tower::ServiceExt;
        let relay = Relay::with_config(Config {
            max_in_flight: 1,
            ..Config::default()
        });
        let c = Couple::on(relay).await;
        // A member's long-poll for a claim on its mailbox holds the only slot.
        let router = duet_relay::app(c.relay.state.clone());
        let signed = |method: &str, path: &str, query: &str| {
            let uri = format!("{path}?{query}");
            let mut req = Request::builder().method(method).uri(uri.trim_end_matches('?'));
            for (name, value) in
                duet_core::protocol::ReadAuth::sign(&c.alex.id, method, path, query).headers()
            {
                req = req.header(name, value);
            }
            req
        };
        let open = signed("POST", &duet_core::protocol::pairings_path(&c.space), "")
            .body(Body::from(r#"{"msg":"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"}"#))
            .expect("request");
        let opened = common::send_to(router.clone(), open).await;
        assert_eq!(opened.status, StatusCode::OK, "{:?}", opened.body);
        let nameplate: u32 = serde_json::from_slice::<serde_json::Value>(&opened.body)
            .ok()
            .and_then(|v| v["nameplate"].as_u64())
            .and_then(|n| u32::try_from(n).ok())
            .expect("a nameplate");
        let wait = duet_core::protocol::pairing_claim_wait_path(&c.space, nameplate);
        let hold = || {
            let poll = signed("GET", &wait, "wait=25").body(Body::empty()).expect("request");
            tokio::spawn(router.clone().oneshot(poll))
        };
        let mut holder = hold();
        // Any route but /healthz, which is outside the in-flight limit.
        let probe = || {
            Request::get("/v2/nothing")
                .body(Body::empty())
                .expect("request")
        };
        let mut shed = None;
        eventually(std::time::Duration::from_secs(10), async || {
            // The holder finishes only if it was shed itself, having arrived while a probe
            // held the slot: send it again.
            if holder.is_finished() {
                holder = hold();
            }
            let a = c.relay.send(probe()).await;
            if a.status == StatusCode::SERVICE_UNAVAILABLE {
                shed = Some(a);
                return true;
            }
            false
        })
        .await;
        let shed = shed.expect("a 503");
        assert_eq!(shed.error().error, ErrorCode::Overloaded);
        assert_eq!(shed.header("retry-after"), Some("1"));
        // The health check answers all the same.
        let health = Request::get(duet_core::protocol::HEALTHZ_PATH).body(Body::empty()).expect("request");
        assert_eq!(c.relay.send(health).await.status, StatusCode::OK);
        // A push whose body never ends holds a connection, not the slot: once the
        // long-poll is gone, requests are served again beside it.
        let stuck = Request::post(events_path(&duet_core::event::SpaceId::generate()))
            .body(Body::from_stream(futures_util::stream::pending::<
                Result<Bytes, std::io::Error>,
            >()))
            .expect("request");
        let mut trickle = Box::pin(duet_relay::app(c.relay.state.clone()).oneshot(stuck));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(
            std::future::Future::poll(trickle.as_mut(), &mut cx).is_pending(),
            "the endless push waits for its body"
        );
        holder.abort();
        eventually(std::time::Duration::from_secs(10), async || {
            c.relay.send(probe()).await.status == StatusCode::NOT_FOUND
        })
        .await;
        drop(trickle);
    }

    /// Pushes hold memory (their body, and the events decoded from it) until answered:
    /// past the relay's push memory, a push is refused as soon as its body outgrows it, so that strangers
    /// sending large bodies from many addresses cannot take more than the budget.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pushes_beyond_the_push_memory_are_shed_at_once_and_served_once_it_is_free() {
        use duet_relay::Config;
        let relay = Relay::with_config(Config {
            max_push_memory: 8 * 1024 * 1024,
            // The stranger's body never comes: it is not cut off for its rate meanwhile.
            min_body_rate: 0,
            ..Config::default()
        });
        let mut c = Couple::on(relay).await;
        // A stranger's push that sent 2 MiB and then nothing more holds it all (a push is
        // counted at four times the body it has sent). Polled once here, it has taken
        // its share and waits for the rest before anything else runs.
        let holder = stopped_push(duet_relay::app(c.relay.state.clone()));
        let ev = c.alex.changes(c.space, &c.key, b"a couple's ordinary push");
        let shed = c.relay.push(&c.space, &[&ev]).await;
        assert_eq!(shed.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", shed.body);
        assert_eq!(shed.error().error, ErrorCode::Overloaded);
        assert_eq!(shed.header("retry-after"), Some("1"));
        // Once the stranger's push is gone, the couple's refused one goes through.
        drop(holder);
        assert_eq!(c.relay.push(&c.space, &[&ev]).await.status, StatusCode::OK);
    }

    /// Sent fast and stopped short of its end, a push earned time on the minimum-rate
    /// line (2 MiB at 4 KiB/s: over eight minutes) and held its memory until the request
    /// timeout; 16 such pushes from 4 addresses kept every couple's push refused. A body
    /// may not pause longer than the grace.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_push_sent_fast_and_then_stopped_is_cut_off_at_the_grace_and_the_couple_pushes() {
        use duet_relay::Config;
        let relay = Relay::with_config(Config {
            max_push_memory: 8 * 1024 * 1024,
            body_grace: std::time::Duration::from_secs(1),
            ..Config::default()
        });
        let mut c = Couple::on(relay).await;
        let holder = stopped_push(duet_relay::app(c.relay.state.clone()));
        let ev = c.alex.changes(c.space, &c.key, b"a couple's ordinary push");
        let shed = c.relay.push(&c.space, &[&ev]).await;
        assert_eq!(shed.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", shed.body);
        // Cut off a second after its body stopped, not minutes later.
        let answer = tokio::time::timeout(std::time::Duration::from_secs(10), holder)
            .await
            .expect("the stopped push was still held after 10 s")
            .expect("an answer");
        assert_eq!(answer.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(c.relay.push(&c.space, &[&ev]).await.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn the_per_address_limit_keys_on_the_peer_address_of_each_connection() {
        use axum::extract::ConnectInfo;
        use duet_relay::{Config, Rate};
        let relay = Relay::with_config(Config {
            rate_per_ip: Rate {
                per_sec: 0.01,
                burst: 2,
            },
            ..Config::default()
        });
        let from = |ip: &str| {
            let mut req = Request::get("/v2/nothing")
                .body(Body::empty())
                .expect("request");
            let peer = std::net::SocketAddr::new(ip.parse().expect("an address"), 40000);
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        };
        for _ in 0..2 {
            assert_eq!(
                relay.send(from("192.0.2.1")).await.status,
                StatusCode::NOT_FOUND
            );
        }
        let a = relay.send(from("192.0.2.1")).await;
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(a.error().error, ErrorCode::RateLimited);
        assert!(a.header("retry-after").is_some());
        assert_eq!(
            relay.send(from("192.0.2.2")).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            relay.send(from("2001:db8::7")).await.status,
            StatusCode::NOT_FOUND
        );
    }
}

/// A push holds its share of the push memory until it is answered, not only while its
/// body arrives: the body, the events decoded from it and their verification outlive
/// the body's reading (a stranger's replayed pushes took a relay with 1 GiB of push
/// memory to 2.2 GB once the share was given back as the body was in).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_waiting_for_the_writer_still_holds_its_push_memory() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tower::ServiceExt;
    let relay = Relay::with_config(duet_relay::Config {
        max_push_memory: 8 * 1024 * 1024,
        ..duet_relay::Config::default()
    });
    let mut c = Couple::on(relay).await;
    assert_eq!(
        c.relay.read(&c.sam, &c.space, "").await.status,
        StatusCode::OK
    );
    // Another connection holds the database's write lock: the writer's next commit waits.
    let blocker = rusqlite::Connection::open(&c.relay.db).expect("open the relay's database");
    blocker
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    // One push of 2.5 MB (counted at four times: the whole budget), its body sent in
    // full at once; `read` says when the relay has taken its end.
    let ev = c.alex.changes(c.space, &c.key, &vec![7u8; 2_500_000]);
    let body = duet_core::protocol::encode_batch([ev.bytes()]);
    let read = Arc::new(AtomicBool::new(false));
    let end = Arc::clone(&read);
    let pieces = futures_util::stream::unfold(Some(body), move |left| {
        let end = Arc::clone(&end);
        async move {
            match left {
                Some(body) => Some((Ok::<_, std::io::Error>(Bytes::from(body)), None)),
                None => {
                    end.store(true, Ordering::SeqCst);
                    None
                }
            }
        }
    });
    let request = Request::post(events_path(&c.space))
        .body(Body::from_stream(pieces))
        .expect("request");
    let pushing = tokio::spawn(duet_relay::app(c.relay.state.clone()).oneshot(request));
    eventually(std::time::Duration::from_secs(30), async || {
        read.load(Ordering::SeqCst)
    })
    .await;
    // Its body is in; the push waits for the writer, and still holds the memory: a
    // read's page is refused for now.
    let refused = c.relay.read(&c.sam, &c.space, "").await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "the read was served while the push held the memory"
    );
    assert_eq!(refused.error().error, ErrorCode::Overloaded);
    // Once it is stored and answered, the memory is free again.
    blocker
        .execute_batch("ROLLBACK")
        .expect("give the lock back");
    let answered = pushing.await.expect("the push's task").expect("an answer");
    assert_eq!(answered.status(), StatusCode::OK);
    assert_eq!(
        c.relay.read(&c.sam, &c.space, "").await.status,
        StatusCode::OK
    );
}
