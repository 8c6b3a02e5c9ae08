//! Symmetric encryption of event payloads and the hash used for event ids.
//!
//! Payloads are sealed with XChaCha20-Poly1305 under the space key, with a fresh random
//! 24-byte nonce per event (random nonces are safe at this size) and the event header as
//! associated data, so a ciphertext cannot be moved to another event, author or space.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::ids::random_bytes;

/// Length of the random nonce that prefixes every sealed payload.
pub const NONCE_LEN: usize = 24;
/// Length of the Poly1305 tag.
pub const TAG_LEN: usize = 16;

/// A space's 256-bit symmetric key. Wiped from memory when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct SpaceKey([u8; 32]);

impl Drop for SpaceKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for SpaceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpaceKey(..)")
    }
}

/// Decryption failed: wrong key, or the ciphertext or its header was altered.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("payload does not decrypt: it was altered, or it is for another key")]
pub struct OpenError;

impl SpaceKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        SpaceKey(random_bytes())
    }

    /// A key from its bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        SpaceKey(bytes)
    }

    /// The key's bytes (for the local store and invite codes only).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Encrypts `plaintext` bound to `aad`; returns nonce || ciphertext || tag.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new(&self.0.into());
        let nonce_bytes: [u8; NONCE_LEN] = random_bytes();
        let nonce = XNonce::from(nonce_bytes);
        #[allow(clippy::expect_used)]
        let ct = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypts what [`SpaceKey::seal`] produced with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(OpenError);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenError)?;
        let cipher = XChaCha20Poly1305::new(&self.0.into());
        cipher
            .decrypt(&XNonce::from(nonce), Payload { msg: ct, aad })
            .map_err(|_| OpenError)
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_payload_opens_only_with_the_same_key_and_header() {
        let key = SpaceKey::generate();
        let sealed = key.seal(b"header", b"secret goal");
        assert_eq!(
            key.open(b"header", &sealed).as_deref(),
            Ok(&b"secret goal"[..])
        );
        assert_eq!(key.open(b"headex", &sealed), Err(OpenError));
        assert_eq!(
            SpaceKey::generate().open(b"header", &sealed),
            Err(OpenError)
        );
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(key.open(b"header", &flipped), Err(OpenError));
        assert_eq!(key.open(b"header", &sealed[..10]), Err(OpenError));
    }
}
