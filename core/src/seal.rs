//! Blind ratings, cryptographically: the commitment a sealed rating carries, and the box
//! that keeps its level and note for the rater's own devices until it is revealed.
//!
//! A sealed rating (`model::Seal`) travels to the partner holding two things:
//! - a **commitment**, SHA-256 over the rating's identity and content with a random
//!   256-bit salt, so the partner learns nothing from it (no guessing a level out of
//!   five: the salt is secret) and the rater cannot later reveal another level or note;
//! - a **box**, the level, note and salt encrypted (XChaCha20-Poly1305) under a key
//!   derived from the rater's *personal* space key, which only the rater's devices
//!   hold. Any of them can open it to reveal, however long the round stays open; the
//!   partner's device holds only ciphertext. Its plaintext is padded to a multiple of
//!   256 bytes so that its length says little about the note's.
//!
//! Revealing writes a plain rating with `reveals`, the level, the note and the salt;
//! every device checks [`commitment`] against the seal before applying it (`rules`).

use serde::{Deserialize, Serialize};

use crate::crypto::{SpaceKey, sha256};
use crate::vocab::Level;

/// The fields a commitment binds, besides level, note and salt: which seal, of which
/// goal, by whom, in which round, correcting what.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// The seal's id.
    pub seal: &'a str,
    /// The goal id.
    pub goal: &'a str,
    /// The rater's person id.
    pub rater: &'a str,
    /// The round id.
    pub round: &'a str,
    /// The rating it corrects, if any.
    pub corrects: Option<&'a str>,
    /// When the rating was given (ms).
    pub at: i64,
}

/// What a box holds: the rating itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sealed {
    /// The level.
    pub level: i64,
    /// The note, if any.
    pub note: Option<String>,
    /// The commitment's salt, 64 hex characters.
    pub salt: String,
}

/// Why a box could not be opened.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SealError {
    /// Not hex, not decryptable with this key, or not a rating inside.
    #[error("this sealed rating cannot be opened with this device's personal key")]
    Unopenable,
}

/// The commitment, as 64 hex characters, to a rating of `level` with `note` and `salt`.
/// Each field is length-prefixed, so no two different ratings give the same input.
pub fn commitment(b: Binding<'_>, level: i64, note: Option<&str>, salt: &str) -> String {
    let mut input = Vec::new();
    let at = b.at.to_string();
    let level = level.to_string();
    let fields: [Option<&str>; 9] = [
        Some("duet-seal/1"),
        Some(b.seal),
        Some(b.goal),
        Some(b.rater),
        Some(b.round),
        b.corrects,
        Some(&at),
        Some(&level),
        note,
    ];
    for f in fields.into_iter().chain([Some(salt)]) {
        match f {
            None => input.push(0u8),
            Some(s) => {
                input.push(1u8);
                input.extend_from_slice(&(s.len() as u64).to_be_bytes());
                input.extend_from_slice(s.as_bytes());
            }
        }
    }
    hex::encode(sha256(&input))
}

/// A fresh random salt, 64 hex characters.
pub fn new_salt() -> String {
    hex::encode(SpaceKey::generate().as_bytes())
}

/// The key of one seal's box: derived from the personal space key and the seal id.
fn box_key(personal: &SpaceKey, seal: &str) -> SpaceKey {
    let mut input = b"duet-seal-box/1".to_vec();
    input.extend_from_slice(&(seal.len() as u64).to_be_bytes());
    input.extend_from_slice(seal.as_bytes());
    input.extend_from_slice(personal.as_bytes());
    SpaceKey::from_bytes(sha256(&input))
}

/// Encrypts a rating for the rater's own devices; hex.
pub fn seal_box(personal: &SpaceKey, seal: &str, content: &Sealed) -> String {
    let mut plain = serde_json::to_vec(content).unwrap_or_default();
    // JSON ignores trailing whitespace: pad to hide the note's length.
    let padded = plain.len().div_ceil(256).max(1) * 256;
    plain.resize(padded, b' ');
    hex::encode(box_key(personal, seal).seal(seal.as_bytes(), &plain))
}

/// Opens a box sealed by this person's devices.
pub fn open_box(personal: &SpaceKey, seal: &str, sealed: &str) -> Result<Sealed, SealError> {
    let bytes = hex::decode(sealed).map_err(|_| SealError::Unopenable)?;
    let plain = box_key(personal, seal)
        .open(seal.as_bytes(), &bytes)
        .map_err(|_| SealError::Unopenable)?;
    let content: Sealed = serde_json::from_slice(&plain).map_err(|_| SealError::Unopenable)?;
    Level::try_from(content.level).map_err(|_| SealError::Unopenable)?;
    Ok(content)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> Binding<'static> {
        Binding {
            seal: "s1",
            goal: "g1",
            rater: "p1",
            round: "r1",
            corrects: None,
            at: 5,
        }
    }

    #[test]
    fn a_commitment_binds_level_note_and_salt() {
        let salt = new_salt();
        let c = commitment(binding(), 1, Some("ok"), &salt);
        assert_eq!(c, commitment(binding(), 1, Some("ok"), &salt));
        assert_ne!(c, commitment(binding(), 2, Some("ok"), &salt));
        assert_ne!(c, commitment(binding(), 1, Some("ok!"), &salt));
        assert_ne!(c, commitment(binding(), 1, None, &salt));
        assert_ne!(c, commitment(binding(), 1, Some("ok"), &new_salt()));
        let other_goal = Binding {
            goal: "g2",
            ..binding()
        };
        assert_ne!(c, commitment(other_goal, 1, Some("ok"), &salt));
    }

    #[test]
    fn only_the_personal_key_opens_a_box() {
        let mine = SpaceKey::generate();
        let content = Sealed {
            level: -1,
            note: Some("canary".into()),
            salt: new_salt(),
        };
        let b = seal_box(&mine, "s1", &content);
        assert!(!b.contains(&hex::encode("canary")));
        assert_eq!(open_box(&mine, "s1", &b), Ok(content.clone()));
        assert_eq!(
            open_box(&SpaceKey::generate(), "s1", &b),
            Err(SealError::Unopenable)
        );
        assert_eq!(open_box(&mine, "s2", &b), Err(SealError::Unopenable));
        let short = seal_box(
            &mine,
            "s1",
            &Sealed {
                note: None,
                ..content
            },
        );
        assert_eq!(b.len(), short.len(), "a short note is padded");
    }
}
