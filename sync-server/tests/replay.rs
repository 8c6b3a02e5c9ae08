//! A stranger replaying genuine signed events against the real `duet-relay` process:
//! whoever holds a copy of a couple's events (a removed device, a leaked backup) can
//! send them again, but the copies cost the sender's address, never the author's
//! device, and a body sent to another space than its events', or to a space the relay
//! does not hold, costs no signature at all.

mod common;

use common::process::{Proc, Space};
use common::stranger::{ATTACKER, request_from};
use duet_core::event::SpaceId;
use duet_core::protocol::{ErrorBody, ErrorCode, ReadAuth, encode_batch};

fn error_of(body: &[u8]) -> ErrorBody {
    serde_json::from_slice(body).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(body)))
}

/// Sends `body` to `space` five times from the attacker's address: each is answered
/// `status` with `code` (never 429: the copies cost the relay no signature budget).
fn replayed_five_times(p: &Proc, space: &SpaceId, body: &[u8], status: u16, code: ErrorCode) {
    let path = common::events_path(space);
    for n in 1..=5 {
        let r = request_from(ATTACKER, p.addr, "POST", &path, body);
        assert_eq!(
            r.status,
            status,
            "replay {n}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(error_of(&r.body).error, code);
    }
}

#[test]
fn a_replayed_event_costs_its_sender_and_never_locks_its_author_out() {
    // The relay's default limits: a device may make 40 requests at once, 20 a second.
    let p = Proc::start();
    let mut s = Space::create(&p);
    let rating = s.alex.changes(s.id, &s.key, b"a rating Alex made");
    assert_eq!(p.push(&s.id, &[&rating]).status, 200);
    let body = encode_batch([rating.bytes()]);
    let path = common::events_path(&s.id);
    for n in 1..=60 {
        let r = request_from(ATTACKER, p.addr, "POST", &path, &body);
        assert_eq!(
            r.status,
            200,
            "replay {n}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let next = s
        .alex
        .changes(s.id, &s.key, b"the next rating, right after");
    let r = p.push(&s.id, &[&next]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn a_signed_body_sent_to_another_space_is_refused_before_a_signature_is_verified() {
    // An address may have 50 signatures verified at once, then one a second.
    let p = Proc::start_with(&["--verify-per-ip", "1", "--verify-burst-per-ip", "50"]);
    let mut s = Space::create(&p);
    let events: Vec<_> = (0..40)
        .map(|i| {
            s.alex
                .changes(s.id, &s.key, format!("entry {i}").as_bytes())
        })
        .collect();
    let body = encode_batch(events.iter().map(|e| e.bytes()));
    let made_up = common::events_path(&SpaceId::generate());
    for n in 1..=5 {
        let r = request_from(ATTACKER, p.addr, "POST", &made_up, &body);
        assert_eq!(r.status, 400, "replay {n} to a made-up space");
        let e = error_of(&r.body);
        assert_eq!(e.error, ErrorCode::Malformed, "{}", e.message);
        assert!(
            e.message.contains("but was pushed to space"),
            "{}",
            e.message
        );
    }
    // To the space itself, after the couple sent them, every copy is verified, and the
    // address pays for each.
    let batch: Vec<_> = events.iter().collect();
    let r = p.push(&s.id, &batch);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let real = common::events_path(&s.id);
    let first = request_from(ATTACKER, p.addr, "POST", &real, &body);
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    let second = request_from(ATTACKER, p.addr, "POST", &real, &body);
    assert_eq!(
        second.status,
        429,
        "{}",
        String::from_utf8_lossy(&second.body)
    );
    let e = error_of(&second.body);
    assert!(e.message.contains("signatures"), "{}", e.message);
    // The couple's own address has its own budget.
    let next = s.alex.changes(s.id, &s.key, b"written meanwhile");
    let r = p.push(&s.id, &[&next]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn a_signed_body_replayed_to_a_space_the_relay_does_not_hold_costs_no_signature() {
    // An address may have 50 signatures verified at once, then one a second.
    let p = Proc::start_with(&["--verify-per-ip", "1", "--verify-burst-per-ip", "50"]);
    // Signed once for a made-up space, then sent again and again: each copy would have
    // cost the relay 40 signatures before it found the space missing.
    let made_up = SpaceId::generate();
    let mut mallory = common::Device::new("Mallory");
    let key = duet_core::crypto::SpaceKey::generate();
    let events: Vec<_> = (0..40)
        .map(|i| mallory.changes(made_up, &key, format!("entry {i}").as_bytes()))
        .collect();
    let body = encode_batch(events.iter().map(|e| e.bytes()));
    replayed_five_times(&p, &made_up, &body, 404, ErrorCode::NoSuchSpace);
}

#[test]
fn a_captured_read_sent_again_or_long_after_never_spends_its_devices_allowance() {
    // 0.01 token a second: nothing refills during the test.
    let p = Proc::start_with(&[
        "--rate-per-ip",
        "0",
        "--rate-per-device",
        "0.01",
        "--burst-per-device",
        "10",
    ]);
    let s = Space::create(&p);
    let path = common::events_path(&s.id);
    let get = |auth: &ReadAuth| {
        let headers = auth.headers();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        p.request("GET", &path, &headers, b"")
    };
    // A read seen on the wire (a proxy's log), and one captured a day ago.
    let seen = ReadAuth::sign(&s.alex.id, "GET", &path, "");
    assert_eq!(get(&seen).status, 200);
    let day_ago = duet_core::ids::now_ms() / 1000 - 86_400;
    let old = ReadAuth::sign_at(&s.alex.id, "GET", &path, "", day_ago);
    for _ in 0..20 {
        assert_eq!(get(&seen).error().error, ErrorCode::ReplayedRequest);
        assert_eq!(get(&old).error().error, ErrorCode::StaleRequest);
    }
    // Forty copies later, Alex's own reads are served.
    for _ in 0..3 {
        assert_eq!(p.read(&s.alex, &s.id, "").status, 200);
    }
}

#[test]
fn a_creation_without_a_token_signed_once_and_replayed_costs_one_signature() {
    // A relay that creates spaces for its operator's token only, and lets an address
    // have 50 signatures verified at once, then one a second.
    let p = Proc::start_with(&[
        "--create-token",
        "the-operators-token",
        "--verify-per-ip",
        "1",
        "--verify-burst-per-ip",
        "50",
    ]);
    // A stranger's body for a made-up space that starts with its genesis, signed once
    // and sent again and again without a token: each copy would have cost the relay 41
    // signatures before the writer found no token.
    let made_up = SpaceId::generate();
    let mut mallory = common::Device::new("Mallory");
    let key = duet_core::crypto::SpaceKey::generate();
    let mut events = vec![mallory.genesis(made_up, false)];
    events.extend((0..40).map(|i| mallory.changes(made_up, &key, format!("entry {i}").as_bytes())));
    let body = encode_batch(events.iter().map(|e| e.bytes()));
    replayed_five_times(&p, &made_up, &body, 403, ErrorCode::CreateTokenRequired);
}
