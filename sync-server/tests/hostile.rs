//! Hostile clients against the real `duet-relay` process: floods, slow headers and
//! bodies, oversized bodies, path traversal and SQL in the URL. Each test starts its own
//! relay on 127.0.0.1 with the flags it needs.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::process::{Proc, Space, http, read_reply};
use duet_core::event::SpaceId;
use duet_core::protocol::ErrorCode;
use duet_core::protocol::{
    H_CURSOR, H_DEVICE, H_NONCE, H_SIGNATURE, H_TIME, MAX_BODY_BYTES, events_path,
};

/// The Retry-After of a 429, in whole seconds.
fn retry_after(r: &common::process::Reply) -> u64 {
    r.header("retry-after")
        .unwrap_or_else(|| panic!("a 429 without Retry-After: {:?}", r.headers))
        .parse()
        .expect("Retry-After in seconds")
}

#[test]
fn a_flood_from_one_device_gets_429_with_retry_after_while_other_devices_are_served() {
    // 0.01 token per second: nothing refills during the test.
    let p = Proc::start_with(&[
        "--rate-per-ip",
        "0",
        "--rate-per-device",
        "0.01",
        "--burst-per-device",
        "6",
    ]);
    let mut s = Space::create(&p); // one push each by Alex and Sam
    let mut other = Space::create(&p);
    let before = p.event_count();

    // Alex has 5 requests left; the flood keeps asking.
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..40 {
        let r = p.read(&s.alex, &s.id, "");
        statuses.push(r.status);
        if r.status == 429 {
            limited = Some(r);
        } else {
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            assert_eq!(
                r.header(H_CURSOR).map(|c| c.parse::<u64>().is_ok()),
                Some(true)
            );
        }
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    let limited = limited.expect("a 429");
    assert_eq!(limited.error().error, ErrorCode::RateLimited);
    assert!(retry_after(&limited) >= 1);

    // Alex's pushes are limited too (the author is the device), and nothing is stored.
    let ev = s.alex.changes(s.id, &s.key, b"during the flood");
    let r = p.push(&s.id, &[&ev]);
    assert_eq!(r.status, 429);
    assert_eq!(r.error().error, ErrorCode::RateLimited);
    assert!(retry_after(&r) >= 1);
    assert_eq!(p.event_count(), before);

    // Another device of the same space, and a device of another space, are served.
    assert_eq!(p.read(&s.sam, &s.id, "").ok().status, 200);
    let ev = s.sam.changes(s.id, &s.key, b"sam is fine");
    p.push(&s.id, &[&ev]).ok();
    let ev = other.alex.changes(other.id, &other.key, b"elsewhere");
    p.push(&other.id, &[&ev]).ok();
    assert_eq!(p.read(&other.sam, &other.id, "").ok().status, 200);
    assert_eq!(p.event_count(), before + 2);
    // A forged header naming Sam's device does not spend Sam's allowance: the signature
    // does not verify, so nothing is charged.
    let path = common::events_path(&s.id);
    let auth = s.alex.read_auth(&path, "");
    let sam_key = hex::encode(s.sam.key());
    for _ in 0..10 {
        let time = auth.time.to_string();
        let r = p.request(
            "GET",
            &path,
            &[
                (H_DEVICE, &sam_key),
                (H_TIME, &time),
                (H_NONCE, &auth.nonce),
                (H_SIGNATURE, &auth.signature),
            ],
            b"",
        );
        assert_eq!(r.error().error, ErrorCode::BadSignature);
    }
    assert_eq!(p.read(&s.sam, &s.id, "").ok().status, 200);
    // The health check still answers.
    assert_eq!(p.healthz().ok().status, 200);
}

#[test]
fn a_flood_from_one_address_gets_429_while_other_addresses_and_healthz_are_served() {
    let p = Proc::start_with(&[
        "--rate-per-ip",
        "0.01",
        "--burst-per-ip",
        "5",
        "--rate-per-device",
        "0",
        "--client-ip-header",
        "X-Forwarded-For",
    ]);
    let junk = events_path(&SpaceId::generate());
    let flood = [("X-Forwarded-For", "198.51.100.4, 203.0.113.7")];
    let mut codes = Vec::new();
    for _ in 0..30 {
        let r = p.request("GET", &junk, &flood, b"");
        let e = r.error();
        if r.status == 429 {
            assert_eq!(e.error, ErrorCode::RateLimited);
            assert!(retry_after(&r) >= 1);
        }
        codes.push(r.status);
    }
    // Unsigned reads: 401 until the bucket is empty, then 429.
    assert_eq!(&codes[..5], &[401; 5]);
    assert!(codes[5..].iter().all(|c| *c == 429), "{codes:?}");

    // Another address (the last one in the header is the client) is served.
    let r = p.request("GET", &junk, &[("X-Forwarded-For", "203.0.113.8")], b"");
    assert_eq!(r.status, 401);
    // The health check is not rate limited, even for the flooding address.
    for _ in 0..20 {
        let r = p.request("GET", duet_core::protocol::HEALTHZ_PATH, &flood, b"");
        assert_eq!(r.status, 200);
    }
    // Real work from another address still goes through.
    let s = Space::create(&p);
    assert_eq!(p.read(&s.sam, &s.id, "").ok().status, 200);
}

#[test]
fn without_the_header_option_the_per_address_limit_uses_the_tcp_peer_and_ignores_spoofing() {
    let p = Proc::start_with(&["--rate-per-ip", "0.01", "--burst-per-ip", "3"]);
    let junk = events_path(&SpaceId::generate());
    for i in 0..6 {
        let spoof = format!("203.0.113.{i}");
        let r = p.request("GET", &junk, &[("X-Forwarded-For", &spoof)], b"");
        assert_eq!(r.status, if i < 3 { 401 } else { 429 }, "request {i}");
    }
    assert_eq!(p.healthz().status, 200);
}

/// Reads until the relay closes the connection; returns what it sent, or panics after
/// `deadline`.
fn wait_for_close(stream: &mut TcpStream, deadline: Instant) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("read timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("reading failed: {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "the relay kept a stalled connection open"
        );
    }
}

#[test]
fn slow_headers_are_disconnected_after_the_header_timeout_while_others_are_served() {
    let p = Proc::start_with(&["--header-timeout-secs", "1"]);
    let started = Instant::now();
    let mut partial = TcpStream::connect(p.addr).expect("connect");
    partial
        .write_all(b"GET /heal")
        .expect("write part of a request line");
    let mut silent = TcpStream::connect(p.addr).expect("connect");

    // Meanwhile another client is served, several times.
    for _ in 0..3 {
        assert_eq!(p.healthz().ok().status, 200);
    }
    let s = Space::create(&p);
    assert_eq!(p.read(&s.alex, &s.id, "").ok().status, 200);

    let deadline = started + Duration::from_secs(15);
    for stream in [&mut partial, &mut silent] {
        let got = wait_for_close(stream, deadline);
        // hyper may say 408 before closing; nothing else.
        assert!(
            got.is_empty() || got.starts_with(b"HTTP/1.1 408"),
            "{:?}",
            String::from_utf8_lossy(&got)
        );
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900),
        "closed too early: {elapsed:?}"
    );
    assert_eq!(p.healthz().ok().status, 200);

    // A stalled connection does not hold up a graceful stop.
    let mut stalled = TcpStream::connect(p.addr).expect("connect");
    stalled.write_all(b"POST /v1/sp").expect("write");
    p.terminate(Duration::from_secs(10));
}

#[test]
fn a_body_that_arrives_too_slowly_gets_408_timeout_json_and_nothing_is_stored() {
    let p = Proc::start_with(&["--request-timeout-secs", "1"]);
    let s = Space::create(&p);
    let before = p.event_count();
    let mut stream = TcpStream::connect(p.addr).expect("connect");
    write!(
        stream,
        "POST {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1000\r\n\r\n\0\0\0\x10",
        common::events_path(&s.id)
    )
    .expect("write");
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    let r = read_reply(&mut stream);
    assert_eq!(r.status, 408);
    assert_eq!(r.error().error, ErrorCode::Timeout);
    assert!(r.error().message.contains("push again"), "{:?}", r.error());
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(p.event_count(), before);
    assert_eq!(p.healthz().ok().status, 200);
    // Another request cut off is not told about pushes.
    let mut stream = TcpStream::connect(p.addr).expect("connect");
    write!(
        stream,
        "POST {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1000\r\n\r\n{{",
        duet_core::protocol::pairing_claim_path(123)
    )
    .expect("write");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    let r = read_reply(&mut stream);
    assert_eq!(r.status, 408);
    let said = r.error().message;
    assert!(
        !said.contains("push") && said.contains("Send it again"),
        "{said}"
    );
}

#[test]
fn oversized_bodies_with_and_without_content_length_get_413_json() {
    let p = Proc::start_with(&[]);
    let s = Space::create(&p);
    let before = p.events();
    let path = common::events_path(&s.id);

    // Announced: refused on the header, before any body is read.
    let mut stream = TcpStream::connect(p.addr).expect("connect");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY_BYTES + 1
    )
    .expect("write head");
    stream.write_all(&[0u8; 4096]).expect("write some body");
    let r = read_reply(&mut stream);
    assert_eq!(r.status, 413);
    assert_eq!(r.error().error, ErrorCode::TooLarge);

    // Chunked, no length: refused once the limit is crossed. The body is written from
    // another thread while this one reads the answer.
    let mut stream = TcpStream::connect(p.addr).expect("connect");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .expect("write head");
    let mut writer = stream.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        let chunk = vec![0u8; 1024 * 1024];
        for _ in 0..=MAX_BODY_BYTES / chunk.len() + 1 {
            let framed = writer
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .and_then(|()| writer.write_all(&chunk))
                .and_then(|()| writer.write_all(b"\r\n"));
            if framed.is_err() {
                return; // the relay stopped reading: expected
            }
        }
        let _ = writer.write_all(b"0\r\n\r\n");
    });
    let r = read_reply(&mut stream);
    assert_eq!(r.status, 413);
    assert_eq!(r.error().error, ErrorCode::TooLarge);
    drop(stream);
    sender.join().expect("sender thread");

    assert_eq!(p.events(), before);
    assert_eq!(p.healthz().ok().status, 200);
}

#[test]
fn path_traversal_and_junk_space_ids_get_400_or_404_json_and_touch_nothing() {
    let p = Proc::start_with(&[]);
    let s = Space::create(&p);
    let before = p.events();
    let files = p.files();
    let valid = s.id.to_string();
    let long = "a".repeat(10 * 1024);
    let targets = [
        "/v1/spaces/..%2F..%2Fetc/events".to_string(),
        "/v1/spaces/..%2F..%2F..%2F..%2Fetc%2Fpasswd/events".to_string(),
        "/v1/spaces/%2e%2e/events".to_string(),
        "/v1/spaces/%2e%2e%2f%2e%2e%2frelay.db/events".to_string(),
        "/v1/spaces/../events".to_string(),
        "/v1/spaces/../../../etc/passwd".to_string(),
        "/v1/spaces/%00/events".to_string(),
        format!("/v1/spaces/{}%00/events", &valid[..31]),
        format!("/v1/spaces/{valid}%00/events"),
        format!("/v1/spaces/{long}/events"),
        format!("/v1/spaces/{valid}{long}/events"),
        format!("/v1/spaces/{valid}/..%2F..%2Fevents"),
        format!("/v1/spaces/{}/events", valid.to_uppercase()),
        "/v1/spaces/%FF%FE/events".to_string(),
        "/v1/spaces//events".to_string(),
    ];
    for target in &targets {
        for method in ["GET", "POST"] {
            let body: &[u8] = if method == "POST" {
                b"\0\0\0\x01x"
            } else {
                b""
            };
            let r = p.request(method, target, &[], body);
            assert!(
                matches!(r.status, 400 | 404),
                "{method} {}: {}",
                &target[..target.len().min(80)],
                r.status
            );
            let code = r.error().error;
            assert!(
                code == ErrorCode::BadSpaceId || code == ErrorCode::NotFound,
                "{method} {target}: {code}"
            );
        }
    }
    assert_eq!(p.events(), before);
    assert_eq!(p.files(), files);
    let (_, integrity) = p.tables_and_integrity();
    assert_eq!(integrity, "ok");
}

#[test]
fn sql_in_the_space_id_and_the_query_is_refused_with_400_and_the_database_is_intact() {
    let p = Proc::start_with(&[]);
    let mut s = Space::create(&p);
    let ev = s.alex.changes(s.id, &s.key, b"keep me");
    p.push(&s.id, &[&ev]).ok();
    let before = p.events();
    let (tables, _) = p.tables_and_integrity();

    for id in [
        "%27%3B%20DROP%20TABLE%20events%3B%20--",
        "';DROP%20TABLE%20events;--",
        "x'%20OR%20'1'='1",
        "1%20OR%201=1",
        "%22%3B%20DELETE%20FROM%20events%3B%20--",
    ] {
        let target = events_path(id);
        let r = p.request("GET", &target, &[], b"");
        assert_eq!(r.status, 400, "{target}");
        assert_eq!(r.error().error, ErrorCode::BadSpaceId);
        let r = p.request("POST", &target, &[], b"\0\0\0\x01x");
        assert_eq!(r.status, 400, "{target}");
        assert_eq!(r.error().error, ErrorCode::BadSpaceId);
    }
    // The space's own id with a letter percent-encoded is not its id: the id is the 32
    // characters as sent (it was decoded, and a push through it was stored).
    let id = s.id.to_string();
    let encoded = format!("%{:02x}{}", id.as_bytes()[0], &id[1..]);
    let again = s.alex.changes(s.id, &s.key, b"through a disguised address");
    let body = duet_core::protocol::encode_batch([again.bytes()]);
    let r = p.request("POST", &events_path(&encoded), &[], &body);
    assert_eq!((r.status, r.error().error), (400, ErrorCode::BadSpaceId));
    assert_eq!(p.events(), before, "nothing was stored through it");
    // Queries signed by a member, so that only their content is refused.
    for query in [
        "after=0;DROP%20TABLE%20events",
        "after=0%27%3B%20DROP%20TABLE%20events%3B%20--",
        "after=1'%20OR%20'1'='1",
        "limit=1);DELETE%20FROM%20events;--",
        "after=0&limit=1%20UNION%20SELECT%20*%20FROM%20forks",
        "after=0&';DROP%20TABLE%20events;--=1",
    ] {
        let r = p.read(&s.alex, &s.id, query);
        assert_eq!(r.status, 400, "{query}");
        assert_eq!(r.error().error, ErrorCode::BadQuery, "{query}");
    }
    assert_eq!(p.events(), before);
    let (tables_after, integrity) = p.tables_and_integrity();
    assert_eq!(tables_after, tables);
    assert!(tables.contains(&"events".to_string()));
    assert_eq!(integrity, "ok");
    // Reads still serve everything.
    let r = p.read(&s.sam, &s.id, "after=0");
    let page = duet_core::protocol::decode_page(&r.ok().body).expect("a page");
    assert_eq!(page.len(), 4);
    assert_eq!(page[3].1, ev.bytes());
}

#[test]
fn unknown_routes_and_methods_over_tcp_are_json_and_healthz_is_ok() {
    let p = Proc::start_with(&[]);
    let r = http(p.addr, "GET", "/etc/passwd", &[], b"");
    assert_eq!((r.status, r.error().error), (404, ErrorCode::NotFound));
    let r = http(
        p.addr,
        "DELETE",
        duet_core::protocol::HEALTHZ_PATH,
        &[],
        b"",
    );
    assert_eq!(
        (r.status, r.error().error),
        (405, ErrorCode::MethodNotAllowed)
    );
    assert_eq!(p.healthz().ok().body, br#"{"status":"ok"}"#);
}

/// A signed read of `space` by `reader` sent on a socket whose receive buffer is tiny
/// and that is never read from: the answer waits in the relay.
fn read_never_taken(p: &Proc, reader: &common::Device, space: &SpaceId) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a socket");
    socket.set_recv_buffer_size(4096).expect("a small buffer");
    socket.connect(&p.addr.into()).expect("connect");
    let mut stream: TcpStream = socket.into();
    let path = events_path(space);
    let signed: String = reader
        .read_auth(&path, "")
        .headers()
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: relay\r\n{signed}\r\n").expect("the request");
    stream
}

/// A relay started with `flags` (and a minimum rate of 64 KB/s: the relay sees bytes
/// taken up to a third of a send buffer late, and gives that time at the rate on top of
/// the 3 s grace), a space holding a page of some 8 MB (more than the sockets' buffers
/// hold), and two reads of it whose answers have started and are never taken.
fn two_unread_pages(flags: &[&str]) -> (Proc, Space, [TcpStream; 2]) {
    let mut args = flags.to_vec();
    args.extend([
        "--min-body-rate",
        "65536",
        "--body-grace-secs",
        "3",
        "--rate-per-ip",
        "0",
        "--rate-per-device",
        "0",
    ]);
    let p = Proc::start_with(&args);
    let mut s = Space::create(&p);
    for fill in [1u8, 2] {
        let ev = s.alex.changes(s.id, &s.key, &vec![fill; 4_000_000]);
        p.push(&s.id, &[&ev]).ok();
    }
    let stuck = [
        read_never_taken(&p, &s.sam, &s.id),
        read_never_taken(&p, &s.sam, &s.id),
    ];
    // Both answers have started (peeking takes nothing from the socket).
    for socket in &stuck {
        let deadline = Instant::now() + Duration::from_secs(30);
        while socket.peek(&mut [0u8; 1]).unwrap_or(0) == 0 {
            assert!(Instant::now() < deadline, "the answer never started");
        }
    }
    (p, s, stuck)
}

/// A page still going out holds no slot of the requests being worked on: slow readers
/// (256 from 8 addresses, reading at the minimum rate) held every slot, and every
/// couple's sync was refused for as long as they read. What they hold is memory
/// (below) and their connections, and a reader that takes nothing is cut off.
#[test]
fn a_reader_that_stops_taking_its_page_holds_no_request_slot_and_is_cut_off() {
    // 40 MB for pushes and pages: the two unsent pages hold most of it.
    let (p, s, stuck) = two_unread_pages(&[
        "--max-in-flight-per-ip",
        "2",
        "--max-in-flight",
        "2",
        "--max-push-memory",
        "40000000",
    ]);
    // Both slots would be taken by the two pages: another read is answered all the same,
    // from the same address.
    let r = p.read(&s.sam, &s.id, "after=2&limit=1");
    assert_eq!(
        r.status,
        200,
        "the unsent pages held the slots: {}",
        String::from_utf8_lossy(&r.body)
    );
    // A whole page fits again once the relay has cut off the readers that took nothing.
    let deadline = Instant::now() + Duration::from_secs(60);
    let page = loop {
        let r = p.read(&s.sam, &s.id, "");
        if r.status == 200 {
            break r.body.len();
        }
        assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
        assert!(
            Instant::now() < deadline,
            "the stuck readers were never cut off"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    for mut socket in stuck {
        socket
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("a timeout");
        let mut got = Vec::new();
        let _ = socket.read_to_end(&mut got);
        assert!(
            got.len() < page,
            "the whole page went out ({} bytes) to a client that stopped reading",
            got.len()
        );
    }
}

#[test]
fn unread_pages_count_against_the_relays_memory_and_a_read_past_it_is_told_to_retry() {
    // 40 MB for pushes and pages: two unread pages of some 8 MB, counted at twice their
    // size, leave too little for a third.
    let (p, s, stuck) = two_unread_pages(&["--max-push-memory", "40000000"]);
    let refused = p.read(&s.sam, &s.id, "");
    assert_eq!(refused.status, 503, "a third page was made beside the two");
    assert_eq!(refused.error().error, ErrorCode::Overloaded);
    assert!(
        refused.header("retry-after").is_some(),
        "{:?}",
        refused.headers
    );
    // A small read still fits, and the budget comes back once the relay cuts off the
    // readers that took nothing.
    assert_eq!(p.read(&s.sam, &s.id, "after=2&limit=1").status, 200);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = p.read(&s.sam, &s.id, "");
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
        assert!(
            Instant::now() < deadline,
            "the unread pages kept the memory"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(stuck);
}

#[test]
fn a_reader_well_above_the_minimum_rate_gets_its_whole_page() {
    // The minimum rate at 256 KB/s (so that the test is short); the client takes about
    // 600 KB/s, with a small receive buffer, as a slow link would.
    let rate = 256 * 1024;
    let p = Proc::start_with(&[
        "--min-body-rate",
        &rate.to_string(),
        "--body-grace-secs",
        "1",
        "--rate-per-ip",
        "0",
        "--rate-per-device",
        "0",
    ]);
    let mut s = Space::create(&p);
    // A page of some 5 MB, more than the 4 MiB a send buffer may grow to.
    for fill in [1u8, 2] {
        let ev = s.alex.changes(s.id, &s.key, &vec![fill; 2_500_000]);
        p.push(&s.id, &[&ev]).ok();
    }
    let mut stream = read_never_taken(&p, &s.sam, &s.id);
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a timeout");
    let (start, taking) = (Instant::now(), 600_000.0);
    let mut got = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
        if answer_complete(&got) {
            break;
        }
        // Paced: the client takes no faster than `taking` bytes a second.
        let due = Duration::from_secs_f64(got.len() as f64 / taking);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    let reply = common::process::parse_reply(&got).expect("a whole answer");
    assert_eq!(reply.status, 200);
    let framed: usize = 2 * (2_500_000 + 12);
    assert!(
        reply.body.len() > framed,
        "cut off after {} of more than {framed} bytes",
        reply.body.len()
    );
}

/// Whether `raw` holds a whole answer: its head and the `content-length` it announces.
fn answer_complete(raw: &[u8]) -> bool {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    head.lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .is_some_and(|n| raw.len() >= split + 4 + n)
}
