//! Keys a member hands out cannot be turned against the couple: a removal that wraps a
//! different key for each device is caught by its commitment, and a device whose
//! X25519 key is of low order (so that keys wrapped to it would be public) cannot join.
//! Both attacks are made as an attacker would: events signed with real keys, pushed to
//! the real relay.

use duet_core::crypto::SpaceKey;
use duet_core::device::Device as CoreDevice;
use duet_core::event::{Event, Header, Kind, MembershipOp};
use duet_core::identity::{Identity, keypair_from_seed};
use duet_core::invite::InviteCode;
use duet_core::keywrap::{commitment, ephemeral_public, wrap_one};
use duet_core::store::SpaceKind;
use duet_core::sync::fold_state;
use duet_tests::{Device, Relay, http_post, pair};

/// Adds a second device of the person on `d`, joined and synced.
fn second_device(d: &Device) -> Device {
    let code = d.json(&["device", "add"])["code"]
        .as_str()
        .expect("device code")
        .to_string();
    d.ok(&["sync"]);
    let other = Device::new();
    other.ok(&["join", &code]);
    other.ok(&["sync"]);
    other
}

fn shared_refused(d: &Device) -> u64 {
    let status = d.json(&["status"]);
    status["spaces"]
        .as_array()
        .expect("spaces")
        .iter()
        .find(|s| s["kind"] == "shared")
        .and_then(|s| s["refused_events"].as_u64())
        .expect("refused count")
}

#[test]
fn a_removal_cannot_hand_each_device_a_different_key() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    alex.ok(&["goal", "add", "Walk", "--area", "trust"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    let alex2 = second_device(&alex);
    let sam2 = second_device(&sam);
    for d in [&alex, &sam, &alex2, &sam2] {
        d.ok(&["sync"]);
    }

    // Sam removes Sam's second device, but wraps one key for Alex's second device and
    // another for everyone else, committing to the first.
    {
        let mut dev = CoreDevice::open(&sam.home).expect("open Sam");
        let rec = dev.space(SpaceKind::Shared).expect("shared");
        let state = fold_state(dev.store(), &rec.id).expect("state");
        let alex2_key = CoreDevice::open(&alex2.home)
            .expect("alex2")
            .me
            .device_key();
        let sam2_key = CoreDevice::open(&sam2.home).expect("sam2").me.device_key();
        let epoch = state.epoch() + 1;
        let (k1, k2) = (SpaceKey::generate(), SpaceKey::generate());
        let eph_secret = duet_core::ids::random_bytes::<32>();
        let keys = state
            .members()
            .iter()
            .filter(|(k, _)| **k != sam2_key)
            .map(|(k, m)| {
                let key = if *k == alex2_key { &k2 } else { &k1 };
                (*k, wrap_one(key, &eph_secret, k, &m.x25519, &rec.id, epoch))
            })
            .collect();
        let (seq, prev) = dev
            .store()
            .own_head(&rec.id, &dev.me.device_key())
            .expect("head")
            .expect("Sam has events");
        let ev = Event::membership(
            Header {
                kind: Kind::Remove,
                space: rec.id,
                author: dev.me.device_key(),
                seq: seq + 1,
                prev,
                time: duet_core::ids::now_ms(),
            },
            &MembershipOp::Remove {
                device: sam2_key,
                epoch,
                eph: ephemeral_public(&eph_secret),
                keys,
                commit: Some(commitment(&k1, &rec.id, epoch)),
            },
            &dev.me,
        );
        dev.store_mut()
            .record_removal(&rec.id, &ev, epoch, &k1)
            .expect("record the removal");
    }
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    let caught = alex2.run(&["sync"]);
    assert!(
        format!("{}{}", caught.stdout, caught.stderr).contains("commits to"),
        "Alex's second device says the removal handed it another key: {caught:?}"
    );
    // Alex's first device writes under the committed key; the second never takes the
    // other key, so it never refuses Alex's own edits as altered.
    alex.ok(&["rate", "Walk", "1", "--note", "after the removal"]);
    alex.ok(&["sync"]);
    alex2.run(&["sync"]);
    assert_eq!(
        shared_refused(&alex2),
        0,
        "Alex's devices do not refuse each other's edits"
    );
}

#[test]
fn a_join_with_a_low_order_x25519_key_is_refused_by_the_relay() {
    let relay = Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let code = alex.json(&["invite"])["code"]
        .as_str()
        .expect("invite code")
        .to_string();
    alex.ok(&["sync"]);
    let code = InviteCode::decode(&code).expect("invite decodes");
    let joiner = Identity::generate("Mallory");
    let person = joiner.person();
    let (invite_key, invite_pub) = keypair_from_seed(code.secret);
    let msg = MembershipOp::join_message(&code.space, &joiner.device_key(), &person);
    let invite_sig = {
        use ed25519_dalek::Signer;
        invite_key.sign(&msg).to_bytes()
    };
    let ev = Event::membership(
        Header {
            kind: Kind::Join,
            space: code.space,
            author: joiner.device_key(),
            seq: 1,
            prev: [0; 32],
            time: duet_core::ids::now_ms(),
        },
        &MembershipOp::Join {
            invite_key: invite_pub,
            person,
            x25519: [0; 32],
            invite_sig,
        },
        &joiner,
    );
    let body = duet_core::protocol::encode_batch([ev.bytes()]);
    let (status, answer) = http_post(
        &relay.url,
        &format!("/v1/spaces/{}/events", code.space),
        &body,
    );
    assert!(
        (400..500).contains(&status),
        "the relay refuses the weak key: {status} {answer}"
    );
    assert!(answer.contains("low order"), "and says why: {answer}");
}

/// Sam's modified client rotates the key (a new epoch for the same members) and wraps
/// for Alex's only device another key than the one it commits to: Alex's device takes
/// no key, says so, and starts a new key for every member in the same sync, so what
/// Alex writes still reaches Sam (it used to wait on Alex's device for good, the sync
/// saying "Up to date.").
#[test]
fn a_rotation_that_hands_a_device_the_wrong_key_is_answered_with_a_new_key_for_everyone() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    alex.ok(&["goal", "add", "Walk", "--area", "trust"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    {
        let mut dev = CoreDevice::open(&sam.home).expect("open Sam");
        let rec = dev.space(SpaceKind::Shared).expect("shared");
        let state = fold_state(dev.store(), &rec.id).expect("state");
        let sam_key = dev.me.device_key();
        let epoch = state.epoch() + 1;
        let (k1, k2) = (SpaceKey::generate(), SpaceKey::generate());
        let eph_secret = duet_core::ids::random_bytes::<32>();
        let keys = state
            .members()
            .iter()
            .map(|(k, m)| {
                let key = if *k == sam_key { &k1 } else { &k2 };
                (*k, wrap_one(key, &eph_secret, k, &m.x25519, &rec.id, epoch))
            })
            .collect();
        let (seq, prev) = dev
            .store()
            .own_head(&rec.id, &sam_key)
            .expect("head")
            .expect("Sam has events");
        let ev = Event::membership(
            Header {
                kind: Kind::Rotate,
                space: rec.id,
                author: sam_key,
                seq: seq + 1,
                prev,
                time: duet_core::ids::now_ms(),
            },
            &MembershipOp::Rotate {
                epoch,
                eph: ephemeral_public(&eph_secret),
                keys,
                commit: commitment(&k1, &rec.id, epoch),
            },
            &dev.me,
        );
        dev.store_mut()
            .record_removal(&rec.id, &ev, epoch, &k1)
            .expect("record the rotation");
    }
    sam.ok(&["sync"]);
    alex.ok(&["reflect", "Canary-5e2 after the rotation"]);
    let caught = alex.run(&["sync"]);
    assert_eq!(caught.code, 0, "{caught:?}");
    assert!(
        caught.stderr.contains("commits to") && caught.stderr.contains("starts a new key"),
        "{caught:?}"
    );
    assert!(!caught.stderr.contains("local changes wait"), "{caught:?}");
    sam.ok(&["sync"]);
    assert!(sam.ok(&["reflections"]).contains("Canary-5e2"));
    alex.ok(&["reflect", "Canary-8b0 later on"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    assert!(sam.ok(&["reflections"]).contains("Canary-8b0"));
}
