//! The event envelope: the one place that encodes and decodes what travels.
//!
//! Layout (all integers big-endian), version 1:
//!
//! ```text
//! offset size field
//! 0      4    magic "DUET"
//! 4      1    format version (1)
//! 5      1    kind (1 genesis, 2 invite, 3 join, 4 remove, 5 changes)
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

use crate::crypto::{OpenError, SpaceKey, sha256};
use crate::identity::{DeviceKey, Identity, verify};

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

/// A space id: 16 random bytes, written as 32 lower-case hex characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpaceId(pub [u8; 16]);

impl SpaceId {
    /// A fresh random space id.
    pub fn generate() -> Self {
        SpaceId(crate::ids::random_bytes())
    }

    /// Parses the strict textual form: exactly 32 lower-case hex characters.
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 32
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return None;
        }
        let bytes = hex::decode(s).ok()?;
        Some(SpaceId(bytes.try_into().ok()?))
    }
}

impl std::fmt::Display for SpaceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

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
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::Genesis => 1,
            Kind::Invite => 2,
            Kind::Join => 3,
            Kind::Remove => 4,
            Kind::Changes => 5,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => Kind::Genesis,
            2 => Kind::Invite,
            3 => Kind::Join,
            4 => Kind::Remove,
            5 => Kind::Changes,
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

fn header_bytes(h: &Header, payload_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload_len + SIG_LEN);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(h.kind.code());
    out.extend_from_slice(&h.space.0);
    out.extend_from_slice(&h.author);
    out.extend_from_slice(&h.seq.to_be_bytes());
    out.extend_from_slice(&h.prev);
    out.extend_from_slice(&h.time.to_be_bytes());
    out
}

fn signing_message(signed: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIGN_DOMAIN.len() + signed.len());
    msg.extend_from_slice(SIGN_DOMAIN);
    msg.extend_from_slice(signed);
    msg
}

impl Event {
    /// Builds and signs an event. `header.author` must be `signer`'s key.
    fn sign_raw(header: Header, payload: &[u8], signer: &Identity) -> Event {
        let mut bytes = header_bytes(&header, payload.len());
        bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        bytes.extend_from_slice(payload);
        let sig = signer.sign(&signing_message(&bytes));
        bytes.extend_from_slice(&sig);
        let hash = sha256(&bytes);
        Event {
            header,
            bytes,
            hash,
        }
    }

    /// A signed membership event with its payload in the clear. The kind is the op's,
    /// whatever `header.kind` says, so a membership payload can never travel unencrypted
    /// under the `changes` kind.
    pub fn membership(mut header: Header, op: &MembershipOp, signer: &Identity) -> Event {
        header.kind = op.kind();
        Event::sign_raw(header, &op.encode(), signer)
    }

    /// A signed `changes` event of epoch 0 (the space's first key).
    pub fn changes(header: Header, plaintext: &[u8], key: &SpaceKey, signer: &Identity) -> Event {
        Event::changes_at(header, 0, plaintext, key, signer)
    }

    /// A signed `changes` event whose plaintext is sealed with the key of `epoch`. The
    /// payload is epoch (u32) || sealed; the associated data is the header without the
    /// length, followed by the epoch.
    pub fn changes_at(
        mut header: Header,
        epoch: u32,
        plaintext: &[u8],
        key: &SpaceKey,
        signer: &Identity,
    ) -> Event {
        header.kind = Kind::Changes;
        let mut aad = header_bytes(&header, 0);
        aad.extend_from_slice(&epoch.to_be_bytes());
        let mut payload = epoch.to_be_bytes().to_vec();
        payload.extend(key.seal(&aad, plaintext));
        Event::sign_raw(header, &payload, signer)
    }

    /// Decodes bytes and verifies the signature. Nothing else is trusted yet.
    pub fn decode(bytes: Vec<u8>) -> Result<Event, EventError> {
        let len = bytes.len();
        if len > MAX_EVENT_BYTES {
            return Err(EventError::TooLarge(len));
        }
        if len < HEADER_LEN + SIG_LEN {
            return Err(EventError::Truncated(len));
        }
        if &bytes[0..4] != MAGIC {
            return Err(EventError::BadMagic);
        }
        if bytes[4] != VERSION {
            return Err(EventError::UnsupportedVersion(bytes[4]));
        }
        let kind = Kind::from_code(bytes[5]).ok_or(EventError::UnknownKind(bytes[5]))?;
        let arr = |r: std::ops::Range<usize>| -> [u8; 32] {
            let mut a = [0u8; 32];
            a.copy_from_slice(&bytes[r]);
            a
        };
        let mut space = [0u8; 16];
        space.copy_from_slice(&bytes[6..22]);
        let author = arr(22..54);
        let seq = u64::from_be_bytes(
            bytes[54..62]
                .try_into()
                .map_err(|_| EventError::Truncated(len))?,
        );
        let prev = arr(62..94);
        let time = i64::from_be_bytes(
            bytes[94..102]
                .try_into()
                .map_err(|_| EventError::Truncated(len))?,
        );
        let declared = u32::from_be_bytes(
            bytes[102..106]
                .try_into()
                .map_err(|_| EventError::Truncated(len))?,
        ) as usize;
        let actual = len - HEADER_LEN - SIG_LEN;
        if declared != actual {
            return Err(EventError::LengthMismatch { declared, actual });
        }
        if seq == 0 {
            return Err(EventError::BadSequence("seq starts at 1"));
        }
        if seq == 1 && prev != [0u8; 32] {
            return Err(EventError::BadSequence(
                "the first event of an author has no prev",
            ));
        }
        if seq > 1 && prev == [0u8; 32] {
            return Err(EventError::BadSequence("a later event must name its prev"));
        }
        let signed_end = HEADER_LEN + declared;
        let mut sig = [0u8; 64];
        sig.copy_from_slice(&bytes[signed_end..]);
        if !verify(&author, &signing_message(&bytes[..signed_end]), &sig) {
            return Err(EventError::BadSignature);
        }
        let hash = sha256(&bytes);
        Ok(Event {
            header: Header {
                kind,
                space: SpaceId(space),
                author,
                seq,
                prev,
                time,
            },
            bytes,
            hash,
        })
    }

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

/// Domain separation prefix of the invite key's signature inside a join event.
pub const JOIN_DOMAIN: &[u8] = b"duet/join/v1\0";

/// A membership event's payload, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipOp {
    /// Payload: person id (16) || personal flag (1) || X25519 public key (32).
    Genesis {
        /// The creator's person id.
        person: [u8; 16],
        /// Whether this is a personal space (only its owner's devices may join).
        personal: bool,
        /// The creator device's X25519 key (new space keys are wrapped to it).
        x25519: [u8; 32],
    },
    /// Payload: invite public key (32) || expires at, ms since epoch (8), then for a
    /// device code || the person id (16) the new device joins as. Without it the invite
    /// admits a new person (the partner).
    Invite {
        /// The one-time invite key.
        invite_key: DeviceKey,
        /// After this instant the invite admits no one.
        expires_at: i64,
        /// For a device code: the person (the inviter's own) the new device belongs to.
        /// `None`: a partner invite, which admits a person not yet in the space.
        person: Option<[u8; 16]>,
    },
    /// Payload: invite public key (32) || person id (16) || X25519 public key (32) ||
    /// invite signature (64) over JOIN_DOMAIN || space id || joining device key || person id.
    Join {
        /// The invite key being used.
        invite_key: DeviceKey,
        /// The joining person's id.
        person: [u8; 16],
        /// The joining device's X25519 key.
        x25519: [u8; 32],
        /// The invite key's signature binding the joiner.
        invite_sig: [u8; 64],
    },
    /// Payload: removed device key (32) || new epoch (u32) || ephemeral X25519 public key
    /// (32) || recipient count (u16) || per recipient: device key (32) || wrapped new
    /// space key (72) || commitment to the new key (32; absent in removals made before
    /// it existed). Every remaining member is a recipient; the removed device is not.
    Remove {
        /// The device that loses membership.
        device: DeviceKey,
        /// The epoch the new space key starts.
        epoch: u32,
        /// Ephemeral X25519 public key of the key wrapping.
        eph: [u8; 32],
        /// The new space key wrapped for each remaining member device.
        keys: Vec<(DeviceKey, [u8; crate::keywrap::WRAPPED_LEN])>,
        /// [`crate::keywrap::commitment`] to the new key, checked by every recipient.
        commit: Option<[u8; 32]>,
    },
}

impl MembershipOp {
    /// The event kind this op travels as.
    pub fn kind(&self) -> Kind {
        match self {
            MembershipOp::Genesis { .. } => Kind::Genesis,
            MembershipOp::Invite { .. } => Kind::Invite,
            MembershipOp::Join { .. } => Kind::Join,
            MembershipOp::Remove { .. } => Kind::Remove,
        }
    }

    /// The payload bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            MembershipOp::Genesis {
                person,
                personal,
                x25519,
            } => {
                out.extend_from_slice(person);
                out.push(u8::from(*personal));
                out.extend_from_slice(x25519);
            }
            MembershipOp::Invite {
                invite_key,
                expires_at,
                person,
            } => {
                out.extend_from_slice(invite_key);
                out.extend_from_slice(&expires_at.to_be_bytes());
                if let Some(person) = person {
                    out.extend_from_slice(person);
                }
            }
            MembershipOp::Join {
                invite_key,
                person,
                x25519,
                invite_sig,
            } => {
                out.extend_from_slice(invite_key);
                out.extend_from_slice(person);
                out.extend_from_slice(x25519);
                out.extend_from_slice(invite_sig);
            }
            MembershipOp::Remove {
                device,
                epoch,
                eph,
                keys,
                commit,
            } => {
                out.extend_from_slice(device);
                out.extend_from_slice(&epoch.to_be_bytes());
                out.extend_from_slice(eph);
                out.extend_from_slice(&(keys.len().min(u16::MAX as usize) as u16).to_be_bytes());
                for (d, w) in keys.iter().take(u16::MAX as usize) {
                    out.extend_from_slice(d);
                    out.extend_from_slice(w);
                }
                if let Some(c) = commit {
                    out.extend_from_slice(c);
                }
            }
        }
        out
    }

    /// Decodes the payload of a membership event.
    pub fn decode(event: &Event) -> Result<MembershipOp, EventError> {
        let p = event.payload();
        let take32 = |r: std::ops::Range<usize>| -> [u8; 32] {
            let mut a = [0u8; 32];
            a.copy_from_slice(&p[r]);
            a
        };
        match event.kind() {
            Kind::Genesis => {
                if p.len() != 49 || p[16] > 1 {
                    return Err(EventError::BadPayload("genesis"));
                }
                let mut person = [0u8; 16];
                person.copy_from_slice(&p[..16]);
                Ok(MembershipOp::Genesis {
                    person,
                    personal: p[16] == 1,
                    x25519: take32(17..49),
                })
            }
            Kind::Invite => {
                if p.len() != 40 && p.len() != 56 {
                    return Err(EventError::BadPayload("invite"));
                }
                let mut t = [0u8; 8];
                t.copy_from_slice(&p[32..40]);
                let person = (p.len() == 56).then(|| {
                    let mut person = [0u8; 16];
                    person.copy_from_slice(&p[40..56]);
                    person
                });
                Ok(MembershipOp::Invite {
                    invite_key: take32(0..32),
                    expires_at: i64::from_be_bytes(t),
                    person,
                })
            }
            Kind::Join => {
                if p.len() != 144 {
                    return Err(EventError::BadPayload("join"));
                }
                let mut person = [0u8; 16];
                person.copy_from_slice(&p[32..48]);
                let mut invite_sig = [0u8; 64];
                invite_sig.copy_from_slice(&p[80..144]);
                Ok(MembershipOp::Join {
                    invite_key: take32(0..32),
                    person,
                    x25519: take32(48..80),
                    invite_sig,
                })
            }
            Kind::Remove => {
                const ENTRY: usize = 32 + crate::keywrap::WRAPPED_LEN;
                if p.len() < 70 {
                    return Err(EventError::BadPayload("remove"));
                }
                let n = u16::from_be_bytes([p[68], p[69]]) as usize;
                let body = 70 + n * ENTRY;
                if p.len() != body && p.len() != body + 32 {
                    return Err(EventError::BadPayload("remove"));
                }
                let commit = (p.len() == body + 32).then(|| take32(body..body + 32));
                let mut keys = Vec::with_capacity(n);
                for i in 0..n {
                    let at = 70 + i * ENTRY;
                    let mut w = [0u8; crate::keywrap::WRAPPED_LEN];
                    w.copy_from_slice(&p[at + 32..at + ENTRY]);
                    keys.push((take32(at..at + 32), w));
                }
                Ok(MembershipOp::Remove {
                    device: take32(0..32),
                    epoch: u32::from_be_bytes([p[32], p[33], p[34], p[35]]),
                    eph: take32(36..68),
                    keys,
                    commit,
                })
            }
            Kind::Changes => Err(EventError::BadPayload("changes (not a membership event)")),
        }
    }

    /// The message an invite key signs to admit `joiner` as `person` into `space`.
    pub fn join_message(space: &SpaceId, joiner: &DeviceKey, person: &[u8; 16]) -> Vec<u8> {
        let mut m = JOIN_DOMAIN.to_vec();
        m.extend_from_slice(&space.0);
        m.extend_from_slice(joiner);
        m.extend_from_slice(person);
        m
    }
}

/// Codec byte of a changes plaintext: an Automerge bundle (compressed columnar changes).
pub const CODEC_BUNDLE: u8 = 1;
/// Codec byte of a changes plaintext: raw Automerge changes, each `u32 length || bytes`.
pub const CODEC_RAW: u8 = 2;

/// Why a changes plaintext could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PayloadError {
    /// Empty plaintext.
    #[error("empty changes payload")]
    Empty,
    /// Codec byte unknown to this build.
    #[error("unknown changes codec {0}; upgrade duet")]
    UnknownCodec(u8),
    /// The Automerge data did not parse.
    #[error("changes do not parse: {0}")]
    Malformed(String),
    /// Decompressed, the content would exceed what one event may cost in memory.
    #[error(
        "the changes expand to more than {limit} bytes when decompressed (a compression bomb); refused without reading further"
    )]
    TooLarge {
        /// The cap, in decompressed bytes per event.
        limit: usize,
    },
    /// More Automerge operations than one event may carry.
    #[error(
        "the changes hold more than {limit} operations, more than one event may carry; refused"
    )]
    TooManyOps {
        /// The cap, in operations per event.
        limit: u64,
    },
    /// The parser did not finish before its deadline (crafted content can make it spin).
    #[error(
        "the Automerge content did not parse within {} s; refused (crafted or corrupted content)",
        .0.as_secs_f64()
    )]
    Stalled(std::time::Duration),
}

/// Encodes `changes` (all present in `doc`) as a changes plaintext, as a bundle.
pub fn encode_changes(
    doc: &automerge::Automerge,
    changes: &[automerge::Change],
) -> Result<Vec<u8>, automerge::AutomergeError> {
    let bundle = doc.bundle(changes.iter().map(|c| c.hash()))?;
    let mut out = Vec::with_capacity(bundle.bytes().len() + 1);
    out.push(CODEC_BUNDLE);
    out.extend_from_slice(bundle.bytes());
    Ok(out)
}

/// Encodes raw changes (the fallback codec).
pub fn encode_raw_changes(changes: &[automerge::Change]) -> Vec<u8> {
    let mut out = vec![CODEC_RAW];
    for c in changes {
        out.extend_from_slice(&(c.raw_bytes().len() as u32).to_be_bytes());
        out.extend_from_slice(c.raw_bytes());
    }
    out
}

/// Decodes a changes plaintext into Automerge changes (not yet applied). The content is
/// untrusted (any member can sign anything): both codecs are parsed by [`crate::bundle`],
/// with bounded memory and a deadline.
pub fn decode_changes(plain: &[u8]) -> Result<Vec<automerge::Change>, PayloadError> {
    let (&codec, data) = plain.split_first().ok_or(PayloadError::Empty)?;
    match codec {
        CODEC_BUNDLE => crate::bundle::parse(data),
        CODEC_RAW => crate::bundle::parse_raw(data),
        other => Err(PayloadError::UnknownCodec(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(id: &Identity) -> Header {
        Header {
            kind: Kind::Changes,
            space: SpaceId([7; 16]),
            author: id.device_key(),
            seq: 1,
            prev: [0; 32],
            time: 1_700_000_000_000,
        }
    }

    #[test]
    fn an_event_round_trips_and_its_payload_opens() {
        let id = Identity::generate("Alex");
        let key = SpaceKey::generate();
        let ev = Event::changes(header(&id), b"plain", &key, &id);
        let back = Event::decode(ev.bytes().to_vec()).expect("decodes");
        assert_eq!(back, ev);
        assert_eq!(back.open(&key).as_deref(), Ok(&b"plain"[..]));
    }

    #[test]
    fn every_mutated_byte_is_refused() {
        let id = Identity::generate("Alex");
        let key = SpaceKey::generate();
        let ev = Event::changes(header(&id), b"plain", &key, &id);
        for i in 0..ev.bytes().len() {
            let mut bytes = ev.bytes().to_vec();
            bytes[i] ^= 0x01;
            assert!(
                Event::decode(bytes).is_err(),
                "byte {i} flipped was accepted"
            );
        }
    }

    #[test]
    fn truncated_and_wrong_version_events_are_refused_with_a_reason() {
        let id = Identity::generate("Alex");
        let ev = Event::membership(
            header(&id),
            &MembershipOp::Invite {
                invite_key: [3; 32],
                expires_at: 1,
                person: None,
            },
            &id,
        );
        assert!(matches!(
            Event::decode(ev.bytes()[..50].to_vec()),
            Err(EventError::Truncated(50))
        ));
        let mut v2 = ev.bytes().to_vec();
        v2[4] = 2;
        assert_eq!(Event::decode(v2), Err(EventError::UnsupportedVersion(2)));
    }
}
