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
    /// Shared space key.
    pub key: SpaceKey,
    /// Seed of the one-time invite key.
    pub secret: [u8; 32],
    /// Expiry, ms since epoch.
    pub expires_at: i64,
}

/// Why a string is not an invite code.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "this is not a valid duet invite code ({0}); ask your partner to run `duet invite` again and copy the whole code"
)]
pub struct InviteCodeError(&'static str);

impl InviteCode {
    /// The printable code.
    pub fn encode(&self) -> String {
        let mut b = Vec::new();
        b.extend_from_slice(&self.space.0);
        b.extend_from_slice(self.key.as_bytes());
        b.extend_from_slice(&self.secret);
        b.extend_from_slice(&self.expires_at.to_be_bytes());
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
        if b.len() < 16 + 32 + 32 + 8 + 1 {
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
        let relay = String::from_utf8(b[88..].to_vec())
            .map_err(|_| InviteCodeError("the relay URL is not text"))?;
        Ok(InviteCode {
            relay,
            space: SpaceId(space),
            key: SpaceKey::from_bytes(key),
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
            secret: [9; 32],
            expires_at: 42,
        };
        assert_eq!(InviteCode::decode(&code.encode()), Ok(code));
        assert!(InviteCode::decode("duet1-AAAA").is_err());
        assert!(InviteCode::decode("hello").is_err());
    }
}
