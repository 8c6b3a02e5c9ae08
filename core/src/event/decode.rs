//! Reading an event: every field of the envelope is checked and the signature verified
//! before an [`Event`] exists.

use super::{
    Event, EventError, HEADER_LEN, Header, Kind, MAGIC, MAX_EVENT_BYTES, SIG_LEN, SpaceId, VERSION,
    signing_message,
};
use crate::crypto::sha256;
use crate::identity::verify;

impl Event {
    /// Decodes bytes and verifies the signature. Nothing else is trusted yet.
    pub fn decode(bytes: Vec<u8>) -> Result<Event, EventError> {
        Self::decode_checked(bytes, true)
    }

    /// Decodes an event this device's (or the relay's) store kept: the envelope is read
    /// and checked as by [`Event::decode`], the signature is not verified again. Only
    /// events that were verified (or signed here) are ever stored, and whoever can change
    /// the store holds this device's keys anyway, or is the relay's operator
    /// (docs/threat-model.md); verifying them again made every fold of a space's
    /// membership cost a signature per event of its history (on the relay, a fold after
    /// a restart or an eviction from its cache held every other space's pushes).
    pub fn decode_stored(bytes: Vec<u8>) -> Result<Event, EventError> {
        Self::decode_checked(bytes, false)
    }

    /// The kind of a stored event, read from its header alone (no copy, hash or
    /// signature check): `None` for bytes that are not an event.
    pub(crate) fn stored_kind(bytes: &[u8]) -> Option<Kind> {
        if bytes.len() < HEADER_LEN + SIG_LEN {
            return None;
        }
        read_header(bytes).ok().map(|(header, _)| header.kind)
    }

    /// The space an event's header names, read from the header alone (nothing checked,
    /// no signature verified): `None` for bytes too short to be an event. The relay
    /// refuses a push whose events name another space than its URL before it verifies
    /// any signature.
    pub fn claimed_space(bytes: &[u8]) -> Option<SpaceId> {
        if bytes.len() < HEADER_LEN + SIG_LEN {
            return None;
        }
        let mut space = [0u8; 16];
        space.copy_from_slice(bytes.get(6..22)?);
        Some(SpaceId(space))
    }

    /// The kind an event's bytes claim (read from the header without checking it): `None`
    /// for bytes too short to be an event, or an unknown kind.
    pub fn claimed_kind(bytes: &[u8]) -> Option<Kind> {
        if bytes.len() < HEADER_LEN + SIG_LEN {
            return None;
        }
        Kind::from_code(*bytes.get(5)?)
    }

    fn decode_checked(bytes: Vec<u8>, verify_signature: bool) -> Result<Event, EventError> {
        let len = bytes.len();
        if len > MAX_EVENT_BYTES {
            return Err(EventError::TooLarge(len));
        }
        if len < HEADER_LEN + SIG_LEN {
            return Err(EventError::Truncated(len));
        }
        let (header, declared) = read_header(&bytes)?;
        check_sequence(header.seq, &header.prev)?;
        let signed_end = HEADER_LEN + declared;
        let mut sig = [0u8; 64];
        sig.copy_from_slice(&bytes[signed_end..]);
        if verify_signature && !verify(&header.author, &signing_message(&bytes[..signed_end]), &sig)
        {
            return Err(EventError::BadSignature);
        }
        let hash = sha256(&bytes);
        Ok(Event {
            header,
            bytes,
            hash,
        })
    }
}

/// Reads the fixed header of `bytes` (at least [`HEADER_LEN`] + [`SIG_LEN`] long) and
/// checks that its payload length matches the bytes present: the header and that length.
fn read_header(bytes: &[u8]) -> Result<(Header, usize), EventError> {
    let len = bytes.len();
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
    let header = Header {
        kind,
        space: SpaceId(space),
        author,
        seq,
        prev,
        time,
    };
    Ok((header, declared))
}

/// Checks that `seq` counts from 1 and that `prev` names a predecessor exactly when there
/// is one.
fn check_sequence(seq: u64, prev: &[u8; 32]) -> Result<(), EventError> {
    if seq == 0 {
        return Err(EventError::BadSequence("seq starts at 1"));
    }
    if seq == 1 && *prev != [0u8; 32] {
        return Err(EventError::BadSequence(
            "the first event of an author has no prev",
        ));
    }
    if seq > 1 && *prev == [0u8; 32] {
        return Err(EventError::BadSequence("a later event must name its prev"));
    }
    Ok(())
}
