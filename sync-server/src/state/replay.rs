//! The read nonces a relay has seen recently, per device: a signed read is answered
//! once, and a nonce is forgotten once its request would be refused as stale anyway.

use std::collections::HashMap;

use duet_core::identity::DeviceKey;
use duet_core::protocol::READ_WINDOW_SECS;

/// How often (seconds) the replay cache drops nonces whose timestamp left the window.
const PRUNE_EVERY_SECS: i64 = 10;

/// Read nonces seen recently, per device, with the request's timestamp.
#[derive(Default)]
pub(super) struct ReplayCache {
    seen: HashMap<(DeviceKey, String), i64>,
    last_prune: i64,
}

impl ReplayCache {
    /// Records the nonce; false when it was already used (a replay).
    pub(super) fn insert(&mut self, device: DeviceKey, nonce: &str, time: i64, now: i64) -> bool {
        if now - self.last_prune >= PRUNE_EVERY_SECS {
            // A request signed before `now - window` is refused as stale anyway, so its
            // nonce no longer needs remembering.
            self.seen.retain(|_, t| *t >= now - READ_WINDOW_SECS);
            self.last_prune = now;
        }
        match self.seen.entry((device, nonce.to_string())) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(time);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_refused_twice_and_forgotten_once_its_time_is_stale() {
        let mut cache = ReplayCache::default();
        let now = 1_000_000;
        assert!(cache.insert([1; 32], "n", now, now));
        assert!(!cache.insert([1; 32], "n", now, now + 1));
        // Another device may use the same nonce.
        assert!(cache.insert([2; 32], "n", now, now));
        // Past the window the entry is pruned (the request would be stale anyway).
        let later = now + READ_WINDOW_SECS + PRUNE_EVERY_SECS + 1;
        assert!(cache.insert([3; 32], "m", later, later));
        assert_eq!(cache.seen.len(), 1);
    }
}
