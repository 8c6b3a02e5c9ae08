//! New space keys: the signed event that starts the next key epoch, either removing a
//! device (`remove`) or not (`rotate`, after a leave), with the key wrapped for exactly the
//! members who stay.

use crate::crypto::SpaceKey;
use crate::event::{Event, Header, Kind, MembershipOp, SpaceId};
use crate::identity::{DeviceKey, Identity};
use crate::membership::SpaceState;

/// The event starting epoch `state.epoch() + 1` in `space`, signed by `me` as its event
/// `seq` after `prev`, with the new key. `removed` is the device that loses membership;
/// `None` makes a rotation.
pub fn next_epoch(
    me: &Identity,
    space: SpaceId,
    state: &SpaceState,
    (seq, prev): (u64, [u8; 32]),
    removed: Option<&DeviceKey>,
    now: i64,
) -> (Event, u32, SpaceKey) {
    let epoch = state.epoch() + 1;
    let key = SpaceKey::generate();
    let remaining: Vec<(DeviceKey, [u8; 32])> = state
        .members()
        .iter()
        .filter(|(k, _)| Some(*k) != removed)
        .map(|(k, m)| (*k, m.x25519))
        .collect();
    let (eph, keys) = crate::keywrap::wrap(&key, &remaining, &space, epoch);
    let commit = crate::keywrap::commitment(&key, &space, epoch);
    let op = match removed {
        Some(device) => MembershipOp::Remove {
            device: *device,
            epoch,
            eph,
            keys,
            commit: Some(commit),
        },
        None => MembershipOp::Rotate {
            epoch,
            eph,
            keys,
            commit,
        },
    };
    let ev = Event::membership(
        Header {
            kind: op.kind(),
            space,
            author: me.device_key(),
            seq: seq + 1,
            prev,
            time: now,
        },
        &op,
        me,
    );
    debug_assert!(matches!(ev.kind(), Kind::Remove | Kind::Rotate));
    (ev, epoch, key)
}
