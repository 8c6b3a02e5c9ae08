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
