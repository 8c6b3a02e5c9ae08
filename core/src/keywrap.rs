//! Handing a new space key to each remaining device when a device is removed.
//!
//! Every device has an X25519 key derived from its ed25519 secret (so no new secret needs
//! storing), published in its genesis or join event. A `remove` event carries the next
//! epoch's space key wrapped for every remaining member: one ephemeral X25519 key per
//! event, and per recipient the new key sealed with XChaCha20-Poly1305 under
//! SHA-256(domain ‖ shared secret ‖ ephemeral public ‖ recipient public), bound to the
//! space and epoch as associated data. The removed device is not a recipient.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use curve25519_dalek::montgomery::MontgomeryPoint;

use crate::crypto::{SpaceKey, sha256};
use crate::identity::{DeviceKey, Identity};
use crate::ids::SpaceId;
use crate::ids::random_bytes;

const X_DOMAIN: &[u8] = b"duet/x25519/v1\0";
const COMMIT_DOMAIN: &[u8] = b"duet/epoch-key-commit/v1\0";
const WRAP_DOMAIN: &[u8] = b"duet/epoch-key/v1\0";

/// Length of one wrapped key: nonce (24) ‖ sealed key (32 + 16).
pub const WRAPPED_LEN: usize = 24 + 48;

/// This device's X25519 secret scalar bytes (clamped when used).
fn x25519_secret(id: &Identity) -> [u8; 32] {
    let mut input = X_DOMAIN.to_vec();
    input.extend_from_slice(&id.secret_bytes());
    sha256(&input)
}

/// This device's X25519 public key.
pub fn x25519_public(id: &Identity) -> [u8; 32] {
    MontgomeryPoint::mul_base_clamped(x25519_secret(id)).to_bytes()
}

fn wrap_key(shared: &[u8; 32], eph: &[u8; 32], recipient: &[u8; 32]) -> [u8; 32] {
    let mut input = WRAP_DOMAIN.to_vec();
    input.extend_from_slice(shared);
    input.extend_from_slice(eph);
    input.extend_from_slice(recipient);
    sha256(&input)
}

fn aad(space: &SpaceId, epoch: u32, device: &DeviceKey) -> Vec<u8> {
    let mut a = space.0.to_vec();
    a.extend_from_slice(&epoch.to_be_bytes());
    a.extend_from_slice(device);
    a
}

/// Wraps `key` for each `(device, x25519 public key)`; returns the ephemeral public key
/// and one `(device, wrapped)` per recipient.
pub fn wrap(
    key: &SpaceKey,
    recipients: &[(DeviceKey, [u8; 32])],
    space: &SpaceId,
    epoch: u32,
) -> ([u8; 32], Vec<(DeviceKey, [u8; WRAPPED_LEN])>) {
    let eph_secret: [u8; 32] = random_bytes();
    let out = recipients
        .iter()
        .map(|(device, xpub)| {
            (
                *device,
                wrap_one(key, &eph_secret, device, xpub, space, epoch),
            )
        })
        .collect();
    (ephemeral_public(&eph_secret), out)
}

/// The public half of an ephemeral wrapping secret.
pub fn ephemeral_public(eph_secret: &[u8; 32]) -> [u8; 32] {
    MontgomeryPoint::mul_base_clamped(*eph_secret).to_bytes()
}

/// `key` wrapped for one recipient device under the ephemeral secret `eph_secret`.
pub fn wrap_one(
    key: &SpaceKey,
    eph_secret: &[u8; 32],
    device: &DeviceKey,
    xpub: &[u8; 32],
    space: &SpaceId,
    epoch: u32,
) -> [u8; WRAPPED_LEN] {
    let eph_public = ephemeral_public(eph_secret);
    let shared = MontgomeryPoint(*xpub).mul_clamped(*eph_secret).to_bytes();
    let k = wrap_key(&shared, &eph_public, xpub);
    let cipher = XChaCha20Poly1305::new(&k.into());
    let nonce: [u8; 24] = random_bytes();
    #[allow(clippy::expect_used)]
    let ct = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: key.as_bytes(),
                aad: &aad(space, epoch, device),
            },
        )
        .expect("encryption of 32 bytes in memory cannot fail");
    let mut w = [0u8; WRAPPED_LEN];
    w[..24].copy_from_slice(&nonce);
    w[24..].copy_from_slice(&ct);
    w
}

/// Unwraps the key wrapped for this device, if it is one of the recipients and nothing
/// was altered.
pub fn unwrap(
    me: &Identity,
    eph_public: &[u8; 32],
    wrapped: &[u8; WRAPPED_LEN],
    space: &SpaceId,
    epoch: u32,
) -> Option<SpaceKey> {
    if is_low_order(eph_public) {
        return None;
    }
    let secret = x25519_secret(me);
    let my_public = x25519_public(me);
    let shared = MontgomeryPoint(*eph_public).mul_clamped(secret).to_bytes();
    let k = wrap_key(&shared, eph_public, &my_public);
    let cipher = XChaCha20Poly1305::new(&k.into());
    let nonce: [u8; 24] = wrapped[..24].try_into().ok()?;
    let plain = cipher
        .decrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &wrapped[24..],
                aad: &aad(space, epoch, &me.device_key()),
            },
        )
        .ok()?;
    Some(SpaceKey::from_bytes(plain.try_into().ok()?))
}

/// Whether an X25519 public key is of low order (the all-zero key among them): a
/// key shared with it is a constant anyone can compute, so a space key wrapped to such a
/// device would be readable by whoever sees the removal event (the relay). Every client
/// and the relay refuse such keys in genesis and join events.
pub fn is_low_order(x25519: &[u8; 32]) -> bool {
    // A clamped scalar is a multiple of the cofactor 8 and not of the group order, so
    // the product is the identity (encoded as zero) exactly for the low-order points.
    MontgomeryPoint(*x25519).mul_clamped([0x55; 32]).to_bytes() == [0u8; 32]
}

/// The commitment a removal carries to the new epoch's key: every recipient checks that
/// the key it unwrapped is the one committed to, so a member cannot hand each device a
/// different key (whose devices would then refuse each other's edits as altered).
pub fn commitment(key: &SpaceKey, space: &SpaceId, epoch: u32) -> [u8; 32] {
    let mut input = COMMIT_DOMAIN.to_vec();
    input.extend_from_slice(&space.0);
    input.extend_from_slice(&epoch.to_be_bytes());
    input.extend_from_slice(key.as_bytes());
    sha256(&input)
}

/// Why this device takes no key from a removal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnwrapError {
    /// The wrapped key does not open for this device.
    #[error("the key of epoch {0} wrapped for this device does not open")]
    DoesNotOpen(u32),
    /// The removal carries no commitment to its key (made by an older version).
    #[error("the key change (removal or rotation) starting epoch {0} does not commit to its key")]
    Uncommitted(u32),
    /// The key opens but is not the one the removal commits to: the remover handed
    /// devices different keys.
    #[error(
        "the key of epoch {0} wrapped for this device is not the key its key change commits to: the device that made it signed different keys for different devices"
    )]
    NotCommitted(u32),
}

/// Unwraps this device's key of `epoch` from a removal and checks it against the
/// removal's commitment.
pub fn unwrap_committed(
    me: &Identity,
    eph_public: &[u8; 32],
    wrapped: &[u8; WRAPPED_LEN],
    space: &SpaceId,
    epoch: u32,
    commit: Option<&[u8; 32]>,
) -> Result<SpaceKey, UnwrapError> {
    let commit = commit.ok_or(UnwrapError::Uncommitted(epoch))?;
    let key =
        unwrap(me, eph_public, wrapped, space, epoch).ok_or(UnwrapError::DoesNotOpen(epoch))?;
    if commitment(&key, space, epoch) != *commit {
        return Err(UnwrapError::NotCommitted(epoch));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_recipients_can_unwrap_the_new_key() {
        let a = Identity::generate("A");
        let b = Identity::generate("B");
        let removed = Identity::generate("C");
        let space = SpaceId::generate();
        let key = SpaceKey::generate();
        let (eph, wrapped) = wrap(
            &key,
            &[
                (a.device_key(), x25519_public(&a)),
                (b.device_key(), x25519_public(&b)),
            ],
            &space,
            1,
        );
        assert_eq!(
            unwrap(&a, &eph, &wrapped[0].1, &space, 1),
            Some(key.clone())
        );
        assert_eq!(
            unwrap(&b, &eph, &wrapped[1].1, &space, 1),
            Some(key.clone())
        );
        assert_eq!(unwrap(&removed, &eph, &wrapped[0].1, &space, 1), None);
        assert_eq!(
            unwrap(&a, &eph, &wrapped[0].1, &space, 2),
            None,
            "bound to the epoch"
        );
        assert_eq!(
            unwrap(&b, &eph, &wrapped[0].1, &space, 1),
            None,
            "bound to the recipient"
        );
    }

    #[test]
    fn low_order_keys_are_recognised_and_real_ones_are_not() {
        assert!(is_low_order(&[0u8; 32]));
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(is_low_order(&one), "u = 1 has order 4");
        assert!(!is_low_order(&x25519_public(&Identity::generate("A"))));
    }

    #[test]
    fn a_key_other_than_the_committed_one_is_refused() {
        let a = Identity::generate("A");
        let space = SpaceId::generate();
        let key = SpaceKey::generate();
        let other = SpaceKey::generate();
        let (eph, wrapped) = wrap(&other, &[(a.device_key(), x25519_public(&a))], &space, 1);
        let commit = commitment(&key, &space, 1);
        assert_eq!(
            unwrap_committed(&a, &eph, &wrapped[0].1, &space, 1, Some(&commit)),
            Err(UnwrapError::NotCommitted(1))
        );
        let right = commitment(&other, &space, 1);
        assert_eq!(
            unwrap_committed(&a, &eph, &wrapped[0].1, &space, 1, Some(&right)),
            Ok(other)
        );
    }
}
