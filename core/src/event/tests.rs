//! Tests of the event envelope: round trips, tampering, truncation, versions.

use super::*;
use crate::identity::Identity;

fn header(id: &Identity) -> Header {
    Header {
        kind: Kind::Changes,
        space: SpaceId([7; 16]),
        author: id.device_key(),
        seq: 1,
        prev: [0; 32],
        time: 1_700_000_000_000,
    }
}

#[test]
fn an_event_round_trips_and_its_payload_opens() {
    let id = Identity::generate("Alex");
    let key = SpaceKey::generate();
    let ev = Event::changes(header(&id), b"plain", &key, &id);
    let back = Event::decode(ev.bytes().to_vec()).expect("decodes");
    assert_eq!(back, ev);
    assert_eq!(back.open(&key).as_deref(), Ok(&b"plain"[..]));
}

#[test]
fn every_mutated_byte_is_refused() {
    let id = Identity::generate("Alex");
    let key = SpaceKey::generate();
    let ev = Event::changes(header(&id), b"plain", &key, &id);
    for i in 0..ev.bytes().len() {
        let mut bytes = ev.bytes().to_vec();
        bytes[i] ^= 0x01;
        assert!(
            Event::decode(bytes).is_err(),
            "byte {i} flipped was accepted"
        );
    }
}

#[test]
fn truncated_and_wrong_version_events_are_refused_with_a_reason() {
    let id = Identity::generate("Alex");
    let ev = Event::membership(
        header(&id),
        &MembershipOp::Invite {
            invite_key: [3; 32],
            expires_at: 1,
            person: None,
        },
        &id,
    );
    assert!(matches!(
        Event::decode(ev.bytes()[..50].to_vec()),
        Err(EventError::Truncated(50))
    ));
    let mut v2 = ev.bytes().to_vec();
    v2[4] = 2;
    assert_eq!(Event::decode(v2), Err(EventError::UnsupportedVersion(2)));
}

#[test]
fn a_stored_event_is_read_without_its_signature_verified_again_but_its_envelope_checked() {
    let id = Identity::generate("Alex");
    let key = SpaceKey::generate();
    let ev = Event::changes(header(&id), b"plain", &key, &id);
    assert_eq!(
        Event::decode_stored(ev.bytes().to_vec()).expect("decodes"),
        ev
    );
    // The signature is the last 64 bytes: only a fresh decode looks at it.
    let mut resigned = ev.bytes().to_vec();
    let last = resigned.len() - 1;
    resigned[last] ^= 0x01;
    assert_eq!(
        Event::decode(resigned.clone()),
        Err(EventError::BadSignature)
    );
    assert!(Event::decode_stored(resigned).is_ok());
    assert!(matches!(
        Event::decode_stored(ev.bytes()[..50].to_vec()),
        Err(EventError::Truncated(50))
    ));
    let mut v2 = ev.bytes().to_vec();
    v2[4] = 2;
    assert_eq!(
        Event::decode_stored(v2),
        Err(EventError::UnsupportedVersion(2))
    );
}
