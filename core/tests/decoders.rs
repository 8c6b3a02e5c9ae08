//! Every decoder of outside bytes returns an error instead of panicking, on random and
//! on mutated valid inputs.

use duet_core::crypto::SpaceKey;
use duet_core::event::{
    Event, Header, Kind, MembershipOp, SpaceId, decode_changes, encode_raw_changes,
};
use duet_core::identity::Identity;
use duet_core::invite::InviteCode;
use duet_core::protocol::{decode_batch, decode_page};
use proptest::prelude::*;

fn valid_event() -> Vec<u8> {
    let id = Identity::generate("A");
    Event::membership(
        Header {
            kind: Kind::Invite,
            space: SpaceId([1; 16]),
            author: id.device_key(),
            seq: 1,
            prev: [0; 32],
            time: 5,
        },
        &MembershipOp::Invite {
            invite_key: [2; 32],
            expires_at: 99,
            person: None,
        },
        &id,
    )
    .into_bytes()
}

fn valid_changes(bundle: bool) -> Vec<u8> {
    let id = Identity::generate("A");
    let (mut doc, first) = duet_core::doc::SpaceDoc::create(id.actor(), 1).expect("doc");
    let (_, c) = doc
        .add_goal(&id.person_id, Default::default(), 2)
        .unwrap_or_else(|_| {
            doc.reflect(&id.person_id, None, None, "text", 3)
                .expect("reflect")
        });
    let mut changes = vec![first];
    changes.extend(c);
    if bundle {
        duet_core::event::encode_changes(doc.automerge(), &changes).expect("bundle")
    } else {
        encode_raw_changes(&changes)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic_any_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Event::decode(bytes.clone());
        let _ = decode_batch(&bytes);
        let _ = decode_page(&bytes);
        let _ = decode_changes(&bytes);
        // Blobs of the local store: stored changes and document snapshots.
        let _ = automerge::Change::from_bytes(bytes.clone());
        let _ = automerge::Automerge::load(&bytes);
        let _ = InviteCode::decode(&String::from_utf8_lossy(&bytes));
        let mut prefixed = b"duet1-".to_vec();
        prefixed.extend(&bytes);
        let _ = InviteCode::decode(&String::from_utf8_lossy(&prefixed));
        if let Ok(ev) = Event::decode(bytes) {
            let _ = MembershipOp::decode(&ev);
            let _ = ev.open(&SpaceKey::generate());
        }
    }

    #[test]
    fn mutated_valid_events_never_panic_and_never_verify(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let valid_event_bytes = valid_event();
        let mut bytes = valid_event_bytes.clone();
        for (i, x) in &flips {
            let at = i.index(bytes.len());
            bytes[at] ^= x;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        // Two flips of the same byte by the same value cancel out.
        prop_assume!(bytes != valid_event_bytes);
        prop_assert!(Event::decode(bytes).is_err());
    }

    #[test]
    fn mutated_changes_payloads_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..8),
        cut in any::<prop::sample::Index>(),
        bundle in any::<bool>(),
    ) {
        let mut bytes = valid_changes(bundle);
        for (i, x) in &flips {
            let at = i.index(bytes.len());
            bytes[at] ^= x;
        }
        let _ = decode_changes(&bytes);
        bytes.truncate(cut.index(bytes.len()));
        let _ = decode_changes(&bytes);
    }
}
