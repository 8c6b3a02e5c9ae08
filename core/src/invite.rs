//! Invite codes: everything a partner's new device needs to join a shared space.
//!
//! A code carries the relay URL, the space id, the space key and the invite secret (the
//! seed of a one-time ed25519 key that a member authorised in an `invite` event). Anyone
//! holding it before it is used or expires can join and read the space, so it must be
//! passed in person or over a channel the couple trusts.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::crypto::SpaceKey;
use crate::event::SpaceId;

/// Prefix of every invite code (versioned).
pub const PREFIX: &str = "duet1-";

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
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(b))
    }

    /// Parses a code.
    pub fn decode(s: &str) -> Result<InviteCode, InviteCodeError> {
        let body = s
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(InviteCodeError("it does not start with duet1-"))?;
        let b = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| InviteCodeError("it is not base64url"))?;
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
        assert_eq!(InviteCode::decode(&code.encode()), Ok(code));
        assert!(InviteCode::decode("duet1-AAAA").is_err());
        assert!(InviteCode::decode("hello").is_err());
    }
}

/// Prefix of a code that adds another device of the same person.
pub const DEVICE_PREFIX: &str = "duet1d-";

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
        format!("{DEVICE_PREFIX}{}", URL_SAFE_NO_PAD.encode(b))
    }

    /// Parses a code.
    pub fn decode(s: &str) -> Result<DeviceCode, InviteCodeError> {
        let body = s
            .trim()
            .strip_prefix(DEVICE_PREFIX)
            .ok_or(InviteCodeError("it does not start with duet1d-"))?;
        let b = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| InviteCodeError("it is not base64url"))?;
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
        assert_eq!(DeviceCode::decode(&code.encode()), Ok(code));
        assert!(DeviceCode::decode("duet1d-AAAA").is_err());
        assert!(DeviceCode::decode("duet1-AAAA").is_err());
    }
}
