//! Fuzz target: the envelope decoder and everything that reads a decoded event's
//! payload must never panic, whatever the bytes.
#![no_main]

use duet_core::crypto::SpaceKey;
use duet_core::event::{Event, MembershipOp, decode_changes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = duet_core::protocol::decode_batch(data);
    let _ = duet_core::protocol::decode_page(data);
    let _ = decode_changes(data);
    if let Ok(ev) = Event::decode(data.to_vec()) {
        let _ = MembershipOp::decode(&ev);
        let _ = ev.epoch();
        let _ = ev.open(&SpaceKey::from_bytes([0; 32]));
    }
});
