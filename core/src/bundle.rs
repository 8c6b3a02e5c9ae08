//! Guarded parsing of Automerge bundles received from other devices.
//!
//! Automerge 0.12's bundle parser is marked experimental, and on malformed input it can
//! panic or loop for a very long time (both found by `core/tests/decoders.rs`). It also
//! never checks the checksum in the chunk header. So before a bundle reaches it:
//! - the chunk header is checked here (magic bytes, chunk type, exact length, and the
//!   SHA-256 checksum Automerge writes), which refuses corrupted bytes at once;
//! - the parse runs on its own thread with a deadline, so that a crafted bundle with a
//!   valid checksum (only a member holding the space key can send one) cannot hang the
//!   device: past the deadline the bundle is refused and the stuck thread is left to end
//!   with the process;
//! - a panic in the parser ends only that thread and becomes an ordinary error; the
//!   panic message is kept off the terminal.

use crate::event::PayloadError;
use sha2::{Digest, Sha256};
use std::sync::{Once, mpsc};
use std::time::Duration;

/// How long one bundle may take to parse. A full-size event's bundle parses in well
/// under a second even in a debug build; the slack is for slow devices.
pub const PARSE_DEADLINE: Duration = Duration::from_secs(30);

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const BUNDLE_CHUNK: u8 = 3;
const PARSER_THREAD: &str = "duet-bundle-parse";

/// Parses a bundle into its changes, within [`PARSE_DEADLINE`].
pub fn parse(data: &[u8]) -> Result<Vec<automerge::Change>, PayloadError> {
    parse_within(data, PARSE_DEADLINE)
}

/// Parses a bundle into its changes, refusing it if the parse takes longer than `deadline`.
pub fn parse_within(
    data: &[u8],
    deadline: Duration,
) -> Result<Vec<automerge::Change>, PayloadError> {
    check_header(data)?;
    silence_parser_panics();
    let (tx, rx) = mpsc::sync_channel(1);
    let owned = data.to_vec();
    std::thread::Builder::new()
        .name(PARSER_THREAD.into())
        .spawn(move || {
            let result = automerge::Bundle::try_from(owned.as_slice())
                .map_err(|e| PayloadError::Malformed(e.to_string()))
                .and_then(|b| {
                    b.to_changes()
                        .map_err(|e| PayloadError::Malformed(e.to_string()))
                });
            // The receiver may have given up already; nothing is left to tell then.
            let _ = tx.send(result);
        })
        .map_err(|e| PayloadError::Malformed(format!("could not start the parser: {e}")))?;
    match rx.recv_timeout(deadline) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(PayloadError::Malformed(format!(
            "the Automerge bundle did not parse within {} s",
            deadline.as_secs_f64()
        ))),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(PayloadError::Malformed(
            "the Automerge bundle is malformed (its parser failed)".into(),
        )),
    }
}

/// Checks the chunk header: magic, type, a length that covers exactly the rest, and
/// the checksum (the first 4 bytes of SHA-256 over type, LEB128 length and body).
fn check_header(data: &[u8]) -> Result<(), PayloadError> {
    let bad = |why: &str| Err(PayloadError::Malformed(format!("bundle header: {why}")));
    if data.len() < 10 {
        return bad("too short");
    }
    if data[0..4] != MAGIC {
        return bad("not an Automerge chunk");
    }
    if data[8] != BUNDLE_CHUNK {
        return bad("not a bundle chunk");
    }
    let (len, len_bytes) = match read_uleb(&data[9..]) {
        Some(v) => v,
        None => return bad("bad length"),
    };
    let body_start = 9 + len_bytes;
    if u64::try_from(data.len() - body_start).ok() != Some(len) {
        return bad("length does not match the data");
    }
    let mut hasher = Sha256::new();
    hasher.update(&data[8..]);
    let digest = hasher.finalize();
    if digest[0..4] != data[4..8] {
        return bad("checksum mismatch (the data is corrupted)");
    }
    Ok(())
}

/// Reads an unsigned LEB128 number of at most 10 bytes; returns it and its size.
fn read_uleb(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (i, &b) in bytes.iter().take(10).enumerate() {
        let part = u64::from(b & 0x7f);
        value |= part.checked_shl(7 * i as u32)?;
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Installs (once) a panic hook that stays quiet for the parser thread and passes every
/// other panic to the hook that was there before.
fn silence_parser_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() != Some(PARSER_THREAD) {
                previous(info);
            }
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bundle body, found by fuzzing, on which Automerge's parser spins for minutes,
    /// carrying a correct checksum as a hostile member could compute.
    const SPINNING: &[u8] = include_bytes!("../tests/fixtures/spinning_bundle.bin");

    #[test]
    fn a_bundle_that_spins_the_parser_is_refused_at_the_deadline() {
        check_header(SPINNING).expect("the fixture has a valid header");
        let err = parse_within(SPINNING, Duration::from_millis(300)).expect_err("refused");
        assert!(err.to_string().contains("did not parse within"), "{err}");
    }

    #[test]
    fn a_corrupted_bundle_is_refused_by_its_checksum() {
        let mut bytes = SPINNING.to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let err = parse(&bytes).expect_err("refused");
        assert!(err.to_string().contains("checksum"), "{err}");
    }
}
