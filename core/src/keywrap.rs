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
use crate::event::SpaceId;
use crate::identity::{DeviceKey, Identity};
use crate::ids::random_bytes;

const X_DOMAIN: &[u8] = b"duet/x25519/v1\0";
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
    let eph_public = MontgomeryPoint::mul_base_clamped(eph_secret).to_bytes();
    let mut out = Vec::new();
    for (device, xpub) in recipients {
        let shared = MontgomeryPoint(*xpub).mul_clamped(eph_secret).to_bytes();
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
        out.push((*device, w));
    }
    (eph_public, out)
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
}
