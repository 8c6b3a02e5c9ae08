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
        for prefix in [&b"duet1-"[..], b"duet2-"] {
            let mut prefixed = prefix.to_vec();
            prefixed.extend(&bytes);
            let _ = InviteCode::decode(&String::from_utf8_lossy(&prefixed));
        }
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

/// A small deterministic generator (xorshift), so that the mutations below are the same
/// on every run.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn write_uleb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// `chunk` (an Automerge chunk) with `body` in place of its body and the checksum
/// Automerge would write for it, as a member with the space key can make.
fn with_good_checksum(chunk: &[u8], body: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let kind = chunk[8];
    let mut head = vec![kind];
    write_uleb(&mut head, body.len() as u64);
    let digest = Sha256::new()
        .chain_update(&head)
        .chain_update(body)
        .finalize();
    let mut out = chunk[0..4].to_vec();
    out.extend_from_slice(&digest[0..4]);
    out.push(kind);
    write_uleb(&mut out, body.len() as u64);
    out.extend_from_slice(body);
    out
}

/// A bundle of maps, text, lists, counters and deletions: most of Automerge's columns.
fn varied_bundle() -> Vec<u8> {
    use automerge::transaction::Transactable;
    use automerge::{ObjType, ROOT};
    let mut doc = automerge::Automerge::new();
    for i in 0..30i64 {
        let mut tx = doc.transaction();
        let m = tx
            .put_object(ROOT, format!("k{}", i % 4), ObjType::Map)
            .expect("map");
        tx.put(&m, "level", i).expect("put");
        tx.put(&m, "share", 1.5f64).expect("put");
        tx.put(&m, "on", i % 2 == 0).expect("put");
        let t = tx.put_object(&m, "text", ObjType::Text).expect("text");
        tx.splice_text(&t, 0, 0, "hello there").expect("splice");
        let l = tx.put_object(&m, "list", ObjType::List).expect("list");
        tx.insert(&l, 0, "a").expect("insert");
        tx.insert(&l, 1, 2i64).expect("insert");
        tx.put(&m, "count", automerge::ScalarValue::counter(3))
            .expect("put");
        tx.increment(&m, "count", 2).expect("increment");
        tx.delete(&m, "on").expect("delete");
        tx.commit();
    }
    let changes = doc.get_changes(&[]);
    let bundle = doc
        .bundle(changes.iter().map(|c| c.hash()))
        .expect("bundle");
    bundle.bytes().to_vec()
}

/// A member can make any bytes pass the chunk checksum. Mutated bundles with their
/// checksum made good (bit flips, random bytes, large numbers, and run lengths too long
/// for 64 bits, which spun Automerge's boolean decoder forever) are each parsed or
/// refused, none past its deadline, and none takes the process down.
#[test]
fn bundles_mutated_with_their_checksum_made_good_never_stall_the_parser() {
    let bundle = varied_bundle();
    // The body's length, then the body.
    let n = bundle[9..]
        .iter()
        .position(|b| b & 0x80 == 0)
        .expect("length")
        + 1;
    let len = bundle[9..9 + n]
        .iter()
        .rev()
        .fold(0usize, |v, b| (v << 7) | usize::from(b & 0x7f));
    let at = 9 + n;
    let original = &bundle[at..];
    assert_eq!(original.len(), len);
    let mut rng = Xorshift(3);
    let mut stalled = Vec::new();
    for case in 0..3000 {
        let mut body = original.to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(body.len());
            let mut put = |bytes: &[u8]| {
                for (k, b) in bytes.iter().enumerate() {
                    if let Some(slot) = body.get_mut(at + k) {
                        *slot = *b;
                    }
                }
            };
            match rng.below(4) {
                0 => put(&[rng.next() as u8]),
                1 => {
                    let mut big = Vec::new();
                    write_uleb(&mut big, rng.next() >> rng.below(64));
                    put(&big);
                }
                _ => {
                    // A number of up to ten bytes whose last byte overflows 64 bits.
                    let k = rng.below(10) + 1;
                    let mut bytes: Vec<u8> = (1..k).map(|_| 0x80 | rng.next() as u8).collect();
                    bytes.push(0x7f);
                    put(&bytes);
                }
            }
        }
        let bytes = with_good_checksum(&bundle, &body);
        if let Err(duet_core::bundle::PayloadError::Stalled(_)) = duet_core::bundle::parse(&bytes) {
            stalled.push(case);
        }
    }
    assert!(
        stalled.is_empty(),
        "cases that stalled the parser: {stalled:?}"
    );
}
