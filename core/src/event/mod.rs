//! The event envelope: the one place that encodes and decodes what travels.
//!
//! Layout (all integers big-endian), version 1:
//!
//! ```text
//! offset size field
//! 0      4    magic "DUET"
//! 4      1    format version (1)
//! 5      1    kind (1 genesis, 2 invite, 3 join, 4 remove, 5 changes, 6 revoke,
//!             7 leave, 8 rotate)
//! 6      16   space id
//! 22     32   author device key (ed25519 public key)
//! 54     8    seq: the author's event counter in this space, from 1
//! 62     32   prev: SHA-256 of the author's previous event in this space (zeros for seq 1)
//! 94     8    time: author's clock, ms since the Unix epoch (informational)
//! 102    4    payload length n
//! 106    n    payload
//! 106+n  64   ed25519 signature over SIGN_DOMAIN || bytes[0..106+n]
//! ```
//!
//! The event's hash (its id) is SHA-256 of all bytes including the signature. A
//! `changes` payload is the key epoch (u32) followed by the plaintext sealed with that
//! epoch's space key, with bytes[0..102] (the header without the length) and the epoch as
//! associated data. Decoding always verifies the signature (strictly), so
//! an [`Event`] value is always authentic as far as its signer goes.
//!
//! The envelope is written in `encode` and read in `decode`; membership payloads are in
//! `membership` and the plaintext of a `changes` event in `changes`.

mod changes;
mod decode;
mod encode;
mod membership;

use crate::crypto::{OpenError, SpaceKey};
use crate::identity::DeviceKey;
pub use crate::ids::SpaceId;

pub use changes::{
    CODEC_BUNDLE, CODEC_RAW, PayloadError, decode_changes, encode_changes, encode_raw_changes,
};
pub use membership::{JOIN_DOMAIN, MembershipOp, Rekey};

/// Magic bytes at the start of every event.
pub const MAGIC: &[u8; 4] = b"DUET";
/// The envelope format version this code writes and reads.
pub const VERSION: u8 = 1;
/// Domain separation prefix of event signatures.
pub const SIGN_DOMAIN: &[u8] = b"duet/event/v1\0";
/// Header length before the payload.
pub const HEADER_LEN: usize = 106;
/// Offset of the payload length (end of the associated data).
const AAD_LEN: usize = 102;
/// Signature length.
pub const SIG_LEN: usize = 64;
/// Largest event accepted anywhere (a changes backlog is split below it).
pub const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// What an event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Creates a space and names its first device.
    Genesis,
    /// Authorises a one-time invite key.
    Invite,
    /// Admits a new device with an invite.
    Join,
    /// Ends a device's membership.
    Remove,
    /// Encrypted Automerge changes.
    Changes,
    /// Withdraws an invite that has not been used.
    Revoke,
    /// Its author's person leaves the space: every device of that person stops being a
    /// member.
    Leave,
    /// Starts a new key epoch without removing anyone (after a leave: the leaver knew
    /// the old key).
    Rotate,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::Genesis => 1,
            Kind::Invite => 2,
            Kind::Join => 3,
            Kind::Remove => 4,
            Kind::Changes => 5,
            Kind::Revoke => 6,
            Kind::Leave => 7,
            Kind::Rotate => 8,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => Kind::Genesis,
            2 => Kind::Invite,
            3 => Kind::Join,
            4 => Kind::Remove,
            5 => Kind::Changes,
            6 => Kind::Revoke,
            7 => Kind::Leave,
            8 => Kind::Rotate,
            _ => return None,
        })
    }

    /// Lower-case name, as in the protocol document.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Genesis => "genesis",
            Kind::Invite => "invite",
            Kind::Join => "join",
            Kind::Remove => "remove",
            Kind::Changes => "changes",
            Kind::Revoke => "revoke",
            Kind::Leave => "leave",
            Kind::Rotate => "rotate",
        }
    }

    /// Whether this is a membership event (signed, not encrypted).
    pub fn is_membership(self) -> bool {
        self != Kind::Changes
    }
}

/// Why bytes are not a valid event.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventError {
    /// Fewer bytes than the fixed header and signature.
    #[error("event is truncated ({0} bytes)")]
    Truncated(usize),
    /// Wrong magic bytes.
    #[error("not a duet event (bad magic)")]
    BadMagic,
    /// A format version this build does not know.
    #[error("unsupported event format version {0}; upgrade duet")]
    UnsupportedVersion(u8),
    /// Unknown kind byte.
    #[error("unknown event kind {0}")]
    UnknownKind(u8),
    /// The declared payload length disagrees with the byte count.
    #[error("payload length field says {declared} bytes but {actual} are present")]
    LengthMismatch {
        /// Declared.
        declared: usize,
        /// Present.
        actual: usize,
    },
    /// Larger than [`MAX_EVENT_BYTES`].
    #[error("event of {0} bytes exceeds the {MAX_EVENT_BYTES}-byte limit")]
    TooLarge(usize),
    /// seq is 0, or prev is not zero for seq 1.
    #[error("invalid sequence: {0}")]
    BadSequence(&'static str),
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// A membership payload is malformed.
    #[error("malformed {0} payload")]
    BadPayload(&'static str),
    /// A changes payload does not decrypt.
    #[error(transparent)]
    Decrypt(#[from] OpenError),
}

/// The header fields of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// What the event does.
    pub kind: Kind,
    /// The space it belongs to.
    pub space: SpaceId,
    /// Signer's device key.
    pub author: DeviceKey,
    /// Author's per-space sequence number, from 1.
    pub seq: u64,
    /// Hash of the author's previous event (zeros for seq 1).
    pub prev: [u8; 32],
    /// Author's clock, ms since epoch (not trusted for ordering).
    pub time: i64,
}

/// A decoded, signature-verified event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    header: Header,
    bytes: Vec<u8>,
    hash: [u8; 32],
}
fn signing_message(signed: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIGN_DOMAIN.len() + signed.len());
    msg.extend_from_slice(SIGN_DOMAIN);
    msg.extend_from_slice(signed);
    msg
}
impl Event {
    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The kind.
    pub fn kind(&self) -> Kind {
        self.header.kind
    }

    /// The exact bytes, as signed and stored.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Consumes the event into its bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// SHA-256 of the whole event: its id.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// The payload (clear for membership events, sealed for changes).
    pub fn payload(&self) -> &[u8] {
        &self.bytes[HEADER_LEN..self.bytes.len() - SIG_LEN]
    }

    /// The key epoch a `changes` event is sealed under.
    pub fn epoch(&self) -> Option<u32> {
        if self.kind() != Kind::Changes {
            return None;
        }
        let p = self.payload();
        (p.len() >= 4).then(|| u32::from_be_bytes([p[0], p[1], p[2], p[3]]))
    }

    /// Decrypts a `changes` payload with the key of its epoch.
    pub fn open(&self, key: &SpaceKey) -> Result<Vec<u8>, EventError> {
        let p = self.payload();
        if p.len() < 4 {
            return Err(EventError::BadPayload("changes"));
        }
        let mut aad = self.bytes[..AAD_LEN].to_vec();
        aad.extend_from_slice(&p[..4]);
        Ok(key.open(&aad, &p[4..])?)
    }
}

#[cfg(test)]
mod tests;
