//! Safety codes: what two partners compare in person to know that no one else's device
//! (a relay's, or an invite-code thief's) sits in their shared space.
//!
//! The code is derived from the space's genesis event and every current member device
//! key, so it is the same on every device with the same membership and changes whenever a
//! device joins or leaves.

use crate::crypto::sha256;
use crate::identity::DeviceKey;
use crate::membership::SpaceState;

/// Domain separation of the safety code.
const DOMAIN: &[u8] = b"duet/safety/v1\0";

/// The current member device keys, sorted.
pub fn members(state: &SpaceState) -> Vec<DeviceKey> {
    state.members().keys().copied().collect()
}

/// The 12-digit safety code of a space's current membership, as `1234 5678 9012`, or
/// `None` before the genesis is known.
pub fn safety_code(state: &SpaceState) -> Option<String> {
    let genesis = state.genesis()?;
    let mut input = DOMAIN.to_vec();
    input.extend_from_slice(&genesis);
    for key in members(state) {
        input.extend_from_slice(&key);
    }
    let digest = sha256(&input);
    let mut n = [0u8; 8];
    n.copy_from_slice(&digest[..8]);
    let digits = format!("{:012}", u64::from_be_bytes(n) % 1_000_000_000_000);
    Some(format!(
        "{} {} {}",
        &digits[0..4],
        &digits[4..8],
        &digits[8..12]
    ))
}
