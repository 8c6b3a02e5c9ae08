//! A device's identity: its ed25519 signing key and the person it belongs to.
//!
//! The Automerge actor id of every change a device makes is its 32-byte public key, so
//! anyone holding an event can check that the changes inside were authored by the
//! event's signer.

use automerge::ActorId;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

pub use crate::ids::BadPersonId;
use crate::ids::{PersonId, random_bytes};

/// A device's 32-byte ed25519 public key.
pub type DeviceKey = [u8; 32];

/// This device's secret identity.
#[derive(Clone)]
pub struct Identity {
    signing: SigningKey,
    /// Random id of the person who owns this device.
    pub person_id: PersonId,
    /// The person's display name.
    pub name: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("device", &hex::encode(self.device_key()))
            .field("person_id", &self.person_id)
            .field("name", &self.name)
            .finish()
    }
}

impl Identity {
    /// A new device key for a new person.
    pub fn generate(name: &str) -> Self {
        Identity {
            signing: SigningKey::from_bytes(&random_bytes()),
            person_id: PersonId::generate(),
            name: name.to_string(),
        }
    }

    /// Restores an identity from the stored secret key and person id.
    pub fn from_parts(
        secret: [u8; 32],
        person_id: String,
        name: String,
    ) -> Result<Self, BadPersonId> {
        Ok(Identity {
            signing: SigningKey::from_bytes(&secret),
            person_id: PersonId::parse(&person_id)?,
            name,
        })
    }

    /// The person id as the 16 bytes membership events carry.
    pub fn person(&self) -> [u8; 16] {
        self.person_id.bytes()
    }

    /// The secret key bytes, for the local store only.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The device's public key.
    pub fn device_key(&self) -> DeviceKey {
        self.signing.verifying_key().to_bytes()
    }

    /// The Automerge actor id of this device's changes.
    pub fn actor(&self) -> ActorId {
        actor_for(&self.device_key())
    }

    /// Signs `message` (already domain-separated by the caller).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

/// A person id (32 hex characters) as the 16 bytes membership events carry; anything
/// else is refused (never padded or cut to fit).
pub fn person_bytes(person_id: &str) -> Result<[u8; 16], BadPersonId> {
    PersonId::parse(person_id).map(|p| p.bytes())
}

/// The actor id of the device whose secret key this is.
pub fn actor_of_secret(secret: &[u8; 32]) -> ActorId {
    actor_for(&SigningKey::from_bytes(secret).verifying_key().to_bytes())
}

/// The actor id a device's changes must carry.
pub fn actor_for(device: &DeviceKey) -> ActorId {
    ActorId::from(&device[..])
}

/// Verifies an ed25519 signature strictly (rejecting malleable and small-order forms).
pub fn verify(device: &DeviceKey, message: &[u8], signature: &[u8; 64]) -> bool {
    let Some(key) = verifying_key(device) else {
        return false;
    };
    let sig = ed25519_dalek::Signature::from_bytes(signature);
    key.verify_strict(message, &sig).is_ok()
}

/// Keys decompressed per thread: at most this many, then the cache starts afresh.
const KEY_CACHE: usize = 1024;

thread_local! {
    /// Decompressing a public key costs about a sixth of a verification, and a relay or a
    /// pull sees the same few devices' keys over and over.
    static KEYS: std::cell::RefCell<std::collections::HashMap<DeviceKey, VerifyingKey>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// `device` as a verifying key (`None`: not a point on the curve), from the thread's
/// cache when it was decompressed before.
fn verifying_key(device: &DeviceKey) -> Option<VerifyingKey> {
    KEYS.with_borrow_mut(|keys| {
        if let Some(key) = keys.get(device) {
            return Some(*key);
        }
        let key = VerifyingKey::from_bytes(device).ok()?;
        if keys.len() >= KEY_CACHE {
            keys.clear();
        }
        keys.insert(*device, key);
        Some(key)
    })
}

/// A throwaway signing key (for invites: the invite secret is its seed).
pub fn keypair_from_seed(seed: [u8; 32]) -> (SigningKey, DeviceKey) {
    let sk = SigningKey::from_bytes(&seed);
    let pk = sk.verifying_key().to_bytes();
    (sk, pk)
}
