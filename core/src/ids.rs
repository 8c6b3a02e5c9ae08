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
