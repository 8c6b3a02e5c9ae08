//! Short pairing codes: `417-aardvark-adroitness`, a code people can read aloud, that
//! carries the long invite code from one partner's device to the other's through the
//! relay without the relay learning it.
//!
//! The number (the *nameplate*) names a mailbox on the relay; the two words (16 random
//! bits, from the PGP word list in [`wordlist`]) are the password of a SPAKE2 exchange
//! (Ed25519 group, fixed identities [`ID_A`] and [`ID_B`]). Both sides derive the same
//! key only when they used the same words; the partner proves it with a confirmation
//! hash, and the creator then seals the long code under a key derived from it. One
//! claim per mailbox, so a wrong guess burns the code: an attacker gets one try in
//! 65,536 per code.
//!
//! The password is the two words, not the whole code: the creator runs SPAKE2 before
//! the relay names the mailbox, and the number is public anyway (the relay routes by
//! it), so leaving it out of the password costs no secrecy.
//!
//! No HTTP here: [`exchange`] drives the relay through the [`PairingRelay`] trait.

mod exchange;
pub mod wordlist;

use spake2::{Ed25519Group, Identity as SpakeIdentity, Password, Spake2};
use zeroize::Zeroizing;

use crate::crypto::SpaceKey;

pub use exchange::{Creator, PairingError, PairingRelay, claim_long_code};

/// SPAKE2 identity of the creator (side A).
pub const ID_A: &[u8] = b"duet/pairing/a";
/// SPAKE2 identity of the partner (side B).
pub const ID_B: &[u8] = b"duet/pairing/b";
/// Domain of the partner's key confirmation: `SHA-256(CONFIRM_DOMAIN || K)`.
pub const CONFIRM_DOMAIN: &[u8] = b"duet/pairing/confirm-b\0";
/// Domain of the key that seals the long code: `SHA-256(SEAL_DOMAIN || K)`.
pub const SEAL_DOMAIN: &[u8] = b"duet/pairing/seal\0";
/// The largest nameplate a relay hands out (it grows from 3 to 5 digits when crowded).
pub const MAX_NAMEPLATE: u32 = 99_999;

/// A short code: the mailbox number and the two words (as byte values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortCode {
    /// The relay's mailbox number.
    pub nameplate: u32,
    /// The even word's and the odd word's byte values.
    pub words: [u8; 2],
}

/// Why a string is not a short code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShortCodeError {
    /// Not a number and two words.
    #[error(
        "this is not a short code: a short code is a number and two words, like \
         417-aardvark-adroitness; check it with your partner"
    )]
    Shape,
    /// The number is 0 or too large.
    #[error(
        "the number of a short code is between 1 and {MAX_NAMEPLATE}; check it with your partner"
    )]
    Number,
    /// A word is not in the list.
    #[error("`{0}` is not a word of duet's short codes; check its spelling with your partner")]
    UnknownWord(String),
    /// The words are in each other's place.
    #[error(
        "the two words of the code are in the wrong order (it should be {0}); check it with \
         your partner"
    )]
    Swapped(String),
}

impl ShortCode {
    /// Two random words for a mailbox numbered `nameplate`.
    pub fn random(nameplate: u32) -> ShortCode {
        ShortCode {
            nameplate,
            words: crate::ids::random_bytes(),
        }
    }

    /// The SPAKE2 password: the two words, lower case, joined by `-`.
    pub fn password(&self) -> String {
        format!(
            "{}-{}",
            wordlist::EVEN[usize::from(self.words[0])],
            wordlist::ODD[usize::from(self.words[1])]
        )
    }

    /// Whether `s` looks like a short code rather than a long one (it starts with a
    /// digit): decides how `duet join` reads what was typed.
    pub fn looks_short(s: &str) -> bool {
        s.trim_start().starts_with(|c: char| c.is_ascii_digit())
    }

    /// Reads a code as people type it: any case, words separated by `-`, spaces or
    /// both.
    pub fn parse(s: &str) -> Result<ShortCode, ShortCodeError> {
        let lower = s.to_lowercase();
        let parts: Vec<&str> = lower
            .split(|c: char| c == '-' || c == '_' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .collect();
        let [number, first, second] = parts[..] else {
            return Err(ShortCodeError::Shape);
        };
        if !number.bytes().all(|b| b.is_ascii_digit()) || number.len() > 6 {
            return Err(ShortCodeError::Shape);
        }
        let nameplate: u32 = number.parse().map_err(|_| ShortCodeError::Shape)?;
        if nameplate == 0 || nameplate > MAX_NAMEPLATE {
            return Err(ShortCodeError::Number);
        }
        let find = |list: &[&str; 256], w: &str| list.iter().position(|x| *x == w);
        match (find(&wordlist::EVEN, first), find(&wordlist::ODD, second)) {
            (Some(a), Some(b)) => Ok(ShortCode {
                nameplate,
                words: [a as u8, b as u8],
            }),
            _ if find(&wordlist::EVEN, second).is_some()
                && find(&wordlist::ODD, first).is_some() =>
            {
                Err(ShortCodeError::Swapped(format!(
                    "{nameplate}-{second}-{first}"
                )))
            }
            (None, _) => Err(ShortCodeError::UnknownWord(first.to_string())),
            (Some(_), None) => Err(ShortCodeError::UnknownWord(second.to_string())),
        }
    }
}

impl std::fmt::Display for ShortCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.nameplate, self.password())
    }
}

/// The key both sides derive from SPAKE2 (wiped when dropped).
pub struct SharedKey(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedKey(..)")
    }
}

fn domain_hash(domain: &[u8], key: &[u8]) -> [u8; 32] {
    let mut m = Zeroizing::new(domain.to_vec());
    m.extend_from_slice(key);
    crate::crypto::sha256(&m)
}

impl SharedKey {
    /// The partner's confirmation: hex `SHA-256(CONFIRM_DOMAIN || K)`.
    pub fn confirmation(&self) -> String {
        hex::encode(domain_hash(CONFIRM_DOMAIN, &self.0))
    }

    /// Whether `confirm` (hex) is this key's confirmation, compared in constant time.
    pub fn confirms(&self, confirm: &str) -> bool {
        let mine = self.confirmation();
        mine.len() == confirm.len()
            && mine
                .bytes()
                .zip(confirm.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// The XChaCha20-Poly1305 key that seals the long code (same construction as event
    /// payloads: `nonce (24) || ciphertext || tag`, no associated data).
    fn seal_key(&self) -> SpaceKey {
        SpaceKey::from_bytes(domain_hash(SEAL_DOMAIN, &self.0))
    }

    /// Seals `long_code` for the partner.
    pub fn seal(&self, long_code: &str) -> Vec<u8> {
        self.seal_key().seal(b"", long_code.as_bytes())
    }

    /// Opens what [`SharedKey::seal`] sealed; `None` when it was sealed under another key
    /// or altered.
    pub fn open(&self, sealed: &[u8]) -> Option<String> {
        let plain = self.seal_key().open(b"", sealed).ok()?;
        String::from_utf8(plain).ok()
    }
}

/// One side's SPAKE2 state, before the other side's message arrives.
pub struct Exchange(Spake2<Ed25519Group>);

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exchange(..)")
    }
}

impl Exchange {
    /// Starts side A (the creator) with the code's words; returns its message.
    pub fn start_a(code: &ShortCode) -> (Exchange, Vec<u8>) {
        let password = Password::new(code.password().as_bytes());
        let (state, msg) = Spake2::<Ed25519Group>::start_a(
            &password,
            &SpakeIdentity::new(ID_A),
            &SpakeIdentity::new(ID_B),
        );
        (Exchange(state), msg)
    }

    /// Starts side B (the partner) with the code's words; returns its message.
    pub fn start_b(code: &ShortCode) -> (Exchange, Vec<u8>) {
        let password = Password::new(code.password().as_bytes());
        let (state, msg) = Spake2::<Ed25519Group>::start_b(
            &password,
            &SpakeIdentity::new(ID_A),
            &SpakeIdentity::new(ID_B),
        );
        (Exchange(state), msg)
    }

    /// The shared key from the other side's message; `None` when the message is not a
    /// SPAKE2 message of the other side. A wrong password gives a key all the same, one
    /// that differs from the other side's.
    pub fn finish(self, other: &[u8]) -> Option<SharedKey> {
        self.0
            .finish(other)
            .ok()
            .map(|k| SharedKey(Zeroizing::new(k)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_round_trips_and_reads_as_people_type_it() {
        for _ in 0..50 {
            let code = ShortCode::random(417);
            assert_eq!(ShortCode::parse(&code.to_string()), Ok(code));
        }
        let code = ShortCode {
            nameplate: 417,
            words: [0, 0],
        };
        assert_eq!(code.to_string(), "417-aardvark-adroitness");
        for typed in [
            "417-aardvark-adroitness",
            " 417-Aardvark-ADROITNESS\n",
            "417 aardvark adroitness",
            "417 - aardvark  -  adroitness",
            "417_aardvark_adroitness",
        ] {
            assert_eq!(ShortCode::parse(typed), Ok(code), "{typed:?}");
        }
        assert!(ShortCode::looks_short(" 417-aardvark-adroitness"));
        assert!(!ShortCode::looks_short("duet1-AAAA"));
    }

    #[test]
    fn mistyped_codes_say_what_is_wrong() {
        assert_eq!(
            ShortCode::parse("417-aardvak-adroitness"),
            Err(ShortCodeError::UnknownWord("aardvak".into()))
        );
        assert_eq!(
            ShortCode::parse("417-adroitness-aardvark"),
            Err(ShortCodeError::Swapped("417-aardvark-adroitness".into()))
        );
        assert_eq!(
            ShortCode::parse("0-aardvark-adroitness"),
            Err(ShortCodeError::Number)
        );
        assert_eq!(ShortCode::parse("417-aardvark"), Err(ShortCodeError::Shape));
        assert_eq!(
            ShortCode::parse("x17-aardvark-adroitness"),
            Err(ShortCodeError::Shape)
        );
        assert_eq!(ShortCode::parse(""), Err(ShortCodeError::Shape));
    }

    #[test]
    fn the_word_lists_are_two_disjoint_sets_of_256() {
        let mut all: Vec<&str> = wordlist::EVEN
            .iter()
            .chain(&wordlist::ODD)
            .copied()
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 512);
    }

    #[test]
    fn the_same_words_give_one_key_and_the_long_code_crosses() {
        let code = ShortCode::random(5);
        let (a, msg_a) = Exchange::start_a(&code);
        let (b, msg_b) = Exchange::start_b(&code);
        let ka = a.finish(&msg_b).expect("A finishes");
        let kb = b.finish(&msg_a).expect("B finishes");
        assert!(ka.confirms(&kb.confirmation()));
        let sealed = ka.seal("duet1-secret");
        assert_eq!(kb.open(&sealed).as_deref(), Some("duet1-secret"));
    }

    #[test]
    fn a_wrong_password_fails_the_confirmation_and_cannot_open_the_seal() {
        let code = ShortCode {
            nameplate: 5,
            words: [1, 2],
        };
        let guess = ShortCode {
            nameplate: 5,
            words: [1, 3],
        };
        let (a, msg_a) = Exchange::start_a(&code);
        let (b, msg_b) = Exchange::start_b(&guess);
        let ka = a.finish(&msg_b).expect("A finishes");
        let kb = b.finish(&msg_a).expect("B finishes");
        assert!(!ka.confirms(&kb.confirmation()));
        assert!(!ka.confirms(""));
        assert_eq!(kb.open(&ka.seal("duet1-secret")), None);
    }
}
