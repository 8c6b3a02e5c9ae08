//! Invite codes: everything a partner's new device needs to join a shared space.
//!
//! A code carries the relay URL, the space id, the space key and the invite secret (the
//! seed of a one-time ed25519 key that a member authorised in an `invite` event). Anyone
//! holding it before it is used or expires can join and read the space, so it must be
//! passed in person or over a channel the couple trusts.
//!
//! Codes are written as version 2 (`duet2-`, `duet2d-`): the payload ends with a check of
//! 4 bytes, so that a code copied without its last characters is refused instead of read
//! as another relay address (the relay URL is the payload's last field). Version 1 codes
//! (`duet1-`, `duet1d-`, without a check) are still read.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::crypto::SpaceKey;
use crate::event::SpaceId;

/// Prefix of every invite code this version writes.
pub const PREFIX: &str = "duet2-";
/// Prefix of the invite codes of version 1 (no check), still read.
const V1_PREFIX: &str = "duet1-";
/// Bytes of the check at the end of a version 2 code.
const CHECK_LEN: usize = 4;

/// The check of a version 2 code's payload.
fn check(payload: &[u8]) -> [u8; CHECK_LEN] {
    let digest = Sha256::new()
        .chain_update(b"duet/code-check\0")
        .chain_update(payload)
        .finalize();
    let mut out = [0u8; CHECK_LEN];
    out.copy_from_slice(&digest[..CHECK_LEN]);
    out
}

/// A payload written as a version 2 code: the prefix, then base64url of it and its check.
fn wrap(prefix: &str, mut payload: Vec<u8>) -> String {
    let c = check(&payload);
    payload.extend_from_slice(&c);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(payload))
}

/// The payload of a code written with `v2` (its check verified) or `v1` (none).
fn unwrap(s: &str, v2: &str, v1: &str) -> Result<Vec<u8>, InviteCodeError> {
    // No code holds a space: one inside was put there by a chat or a mail that wrapped
    // the code across lines.
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let s = s.as_str();
    let (body, checked) = match (s.strip_prefix(v2), s.strip_prefix(v1)) {
        (Some(body), _) => (body, true),
        (None, Some(body)) => (body, false),
        (None, None) => {
            return Err(InviteCodeError(
                "it does not start with duet2- (a partner's invite) or duet2d- (a device code), \
                 nor reads as a short code (three parts, like 417-aardvark-adroitness)",
            ));
        }
    };
    let mut b = URL_SAFE_NO_PAD.decode(body).map_err(|_| {
        // Only the code's own characters, but not a whole code: cut short (base64 ends
        // in a way only a whole code ends).
        let own = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        InviteCodeError(if body.chars().all(own) {
            "it is incomplete or mistyped; copy the whole code, exactly"
        } else {
            "it holds characters no code has; copy the whole code, exactly"
        })
    })?;
    if checked {
        let at = b
            .len()
            .checked_sub(CHECK_LEN)
            .ok_or(InviteCodeError("it is too short"))?;
        if b[at..] != check(&b[..at]) {
            return Err(InviteCodeError(
                "it is incomplete or mistyped: its end does not match the rest",
            ));
        }
        b.truncate(at);
    }
    Ok(b)
}

/// Whether `s` looks like a device code (of any version) rather than a partner's invite.
pub fn is_device_code(s: &str) -> bool {
    let s = s.trim();
    s.starts_with(DEVICE_PREFIX) || s.starts_with(V1_DEVICE_PREFIX)
}

/// Whether `s` looks like an invite or device code (of any version).
pub fn is_code(s: &str) -> bool {
    let s = s.trim();
    is_device_code(s) || s.starts_with(PREFIX) || s.starts_with(V1_PREFIX)
}

/// A decoded invite code.
#[derive(Debug, Clone, PartialEq)]
pub struct InviteCode {
    /// Relay base URL.
    pub relay: String,
    /// Shared space id.
    pub space: SpaceId,
    /// Shared space key of epoch 0.
    pub key: SpaceKey,
    /// Keys of the later epochs (1, 2, ...), so the new device can read all history.
    pub later_keys: Vec<SpaceKey>,
    /// Seed of the one-time invite key.
    pub secret: [u8; 32],
    /// Expiry, ms since epoch.
    pub expires_at: i64,
}

fn push_keys(b: &mut Vec<u8>, keys: &[SpaceKey]) {
    let n = keys.len().min(255);
    b.push(n as u8);
    for k in &keys[..n] {
        b.extend_from_slice(k.as_bytes());
    }
}

/// Reads `n u8 || n × key` at `at`; returns the keys and the offset after them.
fn read_keys(b: &[u8], at: usize) -> Result<(Vec<SpaceKey>, usize), InviteCodeError> {
    let n = *b.get(at).ok_or(InviteCodeError("it is too short"))? as usize;
    let end = at + 1 + n * 32;
    if b.len() < end {
        return Err(InviteCodeError("it is too short"));
    }
    let keys = (0..n)
        .map(|i| {
            let mut k = [0u8; 32];
            k.copy_from_slice(&b[at + 1 + i * 32..at + 33 + i * 32]);
            SpaceKey::from_bytes(k)
        })
        .collect();
    Ok((keys, end))
}

/// Why a string is not an invite code.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("this is not a valid duet invite code ({0})")]
pub struct InviteCodeError(&'static str);

impl crate::advice::Advice for InviteCodeError {
    fn next_step(&self) -> Option<crate::advice::NextStep> {
        Some(crate::advice::NextStep::CopyInviteAgain)
    }
}

impl InviteCode {
    /// The printable code.
    pub fn encode(&self) -> String {
        let mut b = Vec::new();
        b.extend_from_slice(&self.space.0);
        b.extend_from_slice(self.key.as_bytes());
        b.extend_from_slice(&self.secret);
        b.extend_from_slice(&self.expires_at.to_be_bytes());
        push_keys(&mut b, &self.later_keys);
        b.extend_from_slice(self.relay.as_bytes());
        wrap(PREFIX, b)
    }

    /// Parses a code.
    pub fn decode(s: &str) -> Result<InviteCode, InviteCodeError> {
        let b = unwrap(s, PREFIX, V1_PREFIX)?;
        if b.len() < 16 + 32 + 32 + 8 + 1 + 1 {
            return Err(InviteCodeError("it is too short"));
        }
        let mut space = [0u8; 16];
        space.copy_from_slice(&b[..16]);
        let mut key = [0u8; 32];
        key.copy_from_slice(&b[16..48]);
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&b[48..80]);
        let mut t = [0u8; 8];
        t.copy_from_slice(&b[80..88]);
        let (later_keys, at) = read_keys(&b, 88)?;
        if b.len() <= at {
            return Err(InviteCodeError("it has no relay URL"));
        }
        let relay = String::from_utf8(b[at..].to_vec())
            .map_err(|_| InviteCodeError("the relay URL is not text"))?;
        Ok(InviteCode {
            relay,
            space: SpaceId(space),
            key: SpaceKey::from_bytes(key),
            later_keys,
            secret,
            expires_at: i64::from_be_bytes(t),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_round_trips_and_junk_is_refused() {
        let code = InviteCode {
            relay: "http://127.0.0.1:8787".into(),
            space: SpaceId::generate(),
            key: SpaceKey::generate(),
            later_keys: vec![SpaceKey::generate()],
            secret: [9; 32],
            expires_at: 42,
        };
        let written = code.encode();
        assert!(written.starts_with("duet2-"), "{written}");
        assert_eq!(InviteCode::decode(&written), Ok(code.clone()));
        assert!(InviteCode::decode("duet1-AAAA").is_err());
        assert!(InviteCode::decode("hello").is_err());
        // A code copied without its last characters is refused, whatever is cut.
        for cut in 1..=12 {
            let short = &written[..written.len() - cut];
            let e = InviteCode::decode(short).expect_err(short);
            assert!(e.0.contains("incomplete or mistyped"), "cut {cut}: {}", e.0);
        }
        // Wrapped across lines by a chat or a mail, it is still the code.
        let wrapped = format!("{}\n {}", &written[..20], &written[20..]);
        assert!(InviteCode::decode(&wrapped).is_ok());
        let odd = format!("{}!", &written[..written.len() - 1]);
        let e = InviteCode::decode(&odd).expect_err("not a code's character");
        assert!(e.0.contains("characters no code has"), "{}", e.0);
        // A version 1 code (no check) is still read.
        let mut v1 = URL_SAFE_NO_PAD
            .decode(written.trim_start_matches("duet2-"))
            .expect("base64url");
        v1.truncate(v1.len() - CHECK_LEN);
        let v1 = format!("duet1-{}", URL_SAFE_NO_PAD.encode(v1));
        assert_eq!(InviteCode::decode(&v1), Ok(code));
    }
}

/// Prefix of a code that adds another device of the same person.
pub const DEVICE_PREFIX: &str = "duet2d-";
/// Prefix of the device codes of version 1 (no check), still read.
const V1_DEVICE_PREFIX: &str = "duet1d-";

/// One space's part of a code: id, key and one-time invite secret.
#[derive(Debug, Clone, PartialEq)]
pub struct SpaceGrant {
    /// Space id.
    pub space: SpaceId,
    /// Space key of epoch 0.
    pub key: SpaceKey,
    /// Keys of the later epochs.
    pub later_keys: Vec<SpaceKey>,
    /// Seed of the one-time invite key for this space.
    pub secret: [u8; 32],
}

/// A code from `duet device add`: everything another device of the same person needs to
/// join both the shared and the personal space, as that person.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceCode {
    /// Relay base URL.
    pub relay: String,
    /// The person the new device belongs to.
    pub person: [u8; 16],
    /// The person's name.
    pub name: String,
    /// The shared space.
    pub shared: SpaceGrant,
    /// The personal space.
    pub personal: SpaceGrant,
    /// Expiry, ms since epoch.
    pub expires_at: i64,
}

impl DeviceCode {
    /// The printable code.
    pub fn encode(&self) -> String {
        let mut b = Vec::new();
        for g in [&self.shared, &self.personal] {
            b.extend_from_slice(&g.space.0);
            b.extend_from_slice(g.key.as_bytes());
            b.extend_from_slice(&g.secret);
        }
        b.extend_from_slice(&self.person);
        b.extend_from_slice(&self.expires_at.to_be_bytes());
        let name = self.name.as_bytes();
        let n = name.len().min(255);
        b.push(n as u8);
        b.extend_from_slice(&name[..n]);
        push_keys(&mut b, &self.shared.later_keys);
        push_keys(&mut b, &self.personal.later_keys);
        b.extend_from_slice(self.relay.as_bytes());
        wrap(DEVICE_PREFIX, b)
    }

    /// Parses a code.
    pub fn decode(s: &str) -> Result<DeviceCode, InviteCodeError> {
        let b = unwrap(s, DEVICE_PREFIX, V1_DEVICE_PREFIX)?;
        const FIXED: usize = 2 * 80 + 16 + 8 + 1;
        if b.len() < FIXED + 1 {
            return Err(InviteCodeError("it is too short"));
        }
        let grant = |at: usize| {
            let mut space = [0u8; 16];
            space.copy_from_slice(&b[at..at + 16]);
            let mut key = [0u8; 32];
            key.copy_from_slice(&b[at + 16..at + 48]);
            let mut secret = [0u8; 32];
            secret.copy_from_slice(&b[at + 48..at + 80]);
            SpaceGrant {
                space: SpaceId(space),
                key: SpaceKey::from_bytes(key),
                later_keys: Vec::new(),
                secret,
            }
        };
        let mut t = [0u8; 8];
        t.copy_from_slice(&b[176..184]);
        let name_len = b[184] as usize;
        if b.len() < FIXED + name_len + 1 {
            return Err(InviteCodeError("it is too short"));
        }
        let name = String::from_utf8(b[185..185 + name_len].to_vec())
            .map_err(|_| InviteCodeError("the name is not text"))?;
        let (shared_keys, at) = read_keys(&b, 185 + name_len)?;
        let (personal_keys, at) = read_keys(&b, at)?;
        if b.len() <= at {
            return Err(InviteCodeError("it has no relay URL"));
        }
        let relay = String::from_utf8(b[at..].to_vec())
            .map_err(|_| InviteCodeError("the relay URL is not text"))?;
        let mut shared = grant(0);
        shared.later_keys = shared_keys;
        let mut personal = grant(80);
        personal.later_keys = personal_keys;
        Ok(DeviceCode {
            relay,
            person: b[160..176]
                .try_into()
                .map_err(|_| InviteCodeError("it is too short"))?,
            name,
            shared,
            personal,
            expires_at: i64::from_be_bytes(t),
        })
    }
}

#[cfg(test)]
mod device_code_tests {
    use super::*;

    #[test]
    fn a_device_code_round_trips_and_junk_is_refused() {
        let g = || SpaceGrant {
            space: SpaceId::generate(),
            key: SpaceKey::generate(),
            later_keys: vec![SpaceKey::generate(), SpaceKey::generate()],
            secret: [7; 32],
        };
        let code = DeviceCode {
            relay: "https://relay.example".into(),
            person: [7; 16],
            name: "Alex".into(),
            shared: g(),
            personal: g(),
            expires_at: 1234,
        };
        let written = code.encode();
        assert!(written.starts_with("duet2d-"), "{written}");
        assert_eq!(DeviceCode::decode(&written), Ok(code));
        assert!(DeviceCode::decode("duet1d-AAAA").is_err());
        assert!(DeviceCode::decode("duet1-AAAA").is_err());
        assert!(DeviceCode::decode(&written[..written.len() - 1]).is_err());
        assert!(is_device_code(&written) && is_code(&written));
    }
}
