//! Safety codes: what two partners compare in person to know that no one else's device
//! (a relay's, or an invite-code thief's) sits in their shared space.
//!
//! The code is derived from the space's genesis event and, for every current member
//! device, its key, the person it belongs to and its X25519 key (to which new space keys
//! are wrapped), so it is the same on every device with the same membership and changes
//! whenever a device joins or leaves, or is claimed for another person. It carries 99
//! bits (30 decimal digits): making a device key whose membership gives a chosen code
//! would take some 2^99 tries.

use crate::crypto::sha256;
use crate::identity::DeviceKey;
use crate::membership::SpaceState;

/// Domain separation of the safety code.
const DOMAIN: &[u8] = b"duet/safety/v2\0";

/// Digits in a safety code, shown in groups of five.
pub const DIGITS: usize = 30;

/// The current member device keys, sorted.
pub fn members(state: &SpaceState) -> Vec<DeviceKey> {
    state.members().keys().copied().collect()
}

/// The 30-digit safety code of a space's current membership, as six groups of five
/// digits (`12345 67890 ...`), or `None` before the genesis is known.
pub fn safety_code(state: &SpaceState) -> Option<String> {
    let genesis = state.genesis()?;
    let mut input = DOMAIN.to_vec();
    input.extend_from_slice(&genesis);
    for (key, m) in state.members() {
        input.extend_from_slice(key);
        input.extend_from_slice(&m.person);
        input.extend_from_slice(&m.x25519);
    }
    let digest = sha256(&input);
    // Three 10-digit groups from three 64-bit words: each word mod 10^10 keeps ~33
    // bits with a bias below 2^-30.
    let mut digits = String::with_capacity(DIGITS);
    for word in digest.chunks_exact(8).take(3) {
        let mut n = [0u8; 8];
        n.copy_from_slice(word);
        digits.push_str(&format!("{:010}", u64::from_be_bytes(n) % 10_000_000_000));
    }
    let groups: Vec<&str> = (0..DIGITS / 5).map(|i| &digits[i * 5..i * 5 + 5]).collect();
    Some(groups.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Header, Kind, MembershipOp, SpaceId};
    use crate::identity::Identity;

    fn genesis(id: &Identity, space: SpaceId, x25519: [u8; 32]) -> Event {
        Event::membership(
            Header {
                kind: Kind::Genesis,
                space,
                author: id.device_key(),
                seq: 1,
                prev: [0; 32],
                time: 1,
            },
            &MembershipOp::Genesis {
                person: id.person(),
                personal: false,
                x25519,
            },
            id,
        )
    }

    #[test]
    fn the_code_has_thirty_digits_and_covers_person_and_wrapping_key() {
        let id = Identity::generate("Alex");
        let space = SpaceId::generate();
        let code = |x: [u8; 32]| {
            let e = genesis(&id, space, x);
            let mut state = SpaceState::default();
            state.admit(&e, None).expect("genesis");
            safety_code(&state).expect("code")
        };
        let a = code([1; 32]);
        assert_eq!(a.len(), DIGITS + DIGITS / 5 - 1, "{a}");
        assert!(
            a.split(' ')
                .all(|g| g.len() == 5 && g.bytes().all(|b| b.is_ascii_digit()))
        );
        assert_ne!(a, code([2; 32]), "another X25519 key gives another code");
    }
}
