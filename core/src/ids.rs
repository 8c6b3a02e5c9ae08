//! Random identifiers and the clock.
//!
//! Ids are 128 random bits in lower-case hex: collisions between two partners adding
//! things offline are negligible, so collections can be maps keyed by id.

/// A fresh random 128-bit id as 32 hex characters.
pub fn new_id() -> String {
    hex::encode(random_bytes::<16>())
}

/// `N` bytes from the operating system's CSPRNG.
///
/// # Panics
/// Only if the operating system cannot provide randomness at all, in which case no key
/// could be made safely either.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut buf).expect("the operating system's random number generator failed");
    buf
}

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The first 8 characters of an id, as shown to users.
pub fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// A space id: 16 random bytes, written as 32 lower-case hex characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpaceId(pub [u8; 16]);

impl SpaceId {
    /// A fresh random space id.
    pub fn generate() -> Self {
        SpaceId(random_bytes())
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

/// A person id that is not 32 hex characters.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("a person id must be 32 hex characters (got {0:?})")]
pub struct BadPersonId(pub String);

/// A person's id: 16 random bytes, written as 32 lower-case hex characters. It is made
/// only from valid input, so its bytes are always whole (never padded or cut to fit).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PersonId {
    hex: String,
    bytes: [u8; 16],
}

impl PersonId {
    /// A fresh random person id.
    pub fn generate() -> Self {
        PersonId::from_bytes(random_bytes())
    }

    /// The person id of these 16 bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        PersonId {
            hex: hex::encode(bytes),
            bytes,
        }
    }

    /// Parses 32 hex characters (either case; kept in lower case).
    pub fn parse(s: &str) -> Result<Self, BadPersonId> {
        let bad = || BadPersonId(s.chars().take(40).collect());
        let bytes: [u8; 16] = hex::decode(s)
            .map_err(|_| bad())?
            .try_into()
            .map_err(|_| bad())?;
        Ok(PersonId::from_bytes(bytes))
    }

    /// The 16 bytes membership events carry.
    pub fn bytes(&self) -> [u8; 16] {
        self.bytes
    }

    /// The 32 hex characters documents and read models key people by.
    pub fn as_str(&self) -> &str {
        &self.hex
    }
}

impl std::ops::Deref for PersonId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.hex
    }
}

impl std::fmt::Display for PersonId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.hex)
    }
}

impl PartialEq<String> for PersonId {
    fn eq(&self, other: &String) -> bool {
        self.hex == *other
    }
}

impl PartialEq<PersonId> for String {
    fn eq(&self, other: &PersonId) -> bool {
        *self == other.hex
    }
}

impl PartialEq<str> for PersonId {
    fn eq(&self, other: &str) -> bool {
        self.hex == other
    }
}

impl serde::Serialize for PersonId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.hex)
    }
}

#[cfg(test)]
mod tests {
    use super::PersonId;

    #[test]
    fn a_person_id_is_32_hex_characters_or_nothing() {
        let p = PersonId::parse("00112233445566778899AABBCCDDEEFF").expect("hex");
        assert_eq!(p.as_str(), "00112233445566778899aabbccddeeff");
        assert_eq!(p.bytes()[15], 0xff);
        // Never padded or cut to fit: short, long and non-hex ids are refused.
        for bad in [
            "",
            "0011",
            &"00".repeat(17),
            "zz112233445566778899aabbccddeeff",
        ] {
            assert!(PersonId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
