//! Reading a relay's answer: never past what an honest relay could send, and never
//! slower than a pace after a grace (a relay that trickles its answer would otherwise
//! hold a sync for ever).

use std::io::Read;
use std::time::Duration;

use duet_core::sync::TransportError;

/// The slowest answer read after the first `timeout`: a relay that trickles its
/// answer a byte at a time would otherwise hold a sync for ever, since each read waits
/// only for the next bytes. A 16 MiB page at this rate still arrives (in about an hour).
pub(super) const MIN_ANSWER_RATE: u64 = 4096;

/// A body read that fails once it falls behind [`MIN_ANSWER_RATE`] after a grace.
struct Paced<R> {
    inner: R,
    start: std::time::Instant,
    grace: Duration,
    read: u64,
}

impl<R: Read> Read for Paced<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let elapsed = self.start.elapsed();
        if let Some(late) = elapsed.checked_sub(self.grace)
            && self.read < late.as_secs().saturating_mul(MIN_ANSWER_RATE)
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the relay sent {} bytes in {} s, slower than {MIN_ANSWER_RATE} bytes a second",
                    self.read,
                    elapsed.as_secs()
                ),
            ));
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Reads an answer's body, refusing it (unread past `cap` bytes) when it is larger, or
/// when it comes slower than [`MIN_ANSWER_RATE`] after the first `grace`.
pub(super) fn read_capped(
    relay: &str,
    resp: reqwest::blocking::Response,
    cap: usize,
    grace: Duration,
) -> Result<Vec<u8>, TransportError> {
    let too_large = || TransportError::TooLarge {
        relay: relay.to_string(),
        limit: cap,
    };
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    let paced = Paced {
        inner: resp,
        start: std::time::Instant::now(),
        grace,
        read: 0,
    };
    paced
        .take(cap as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| match e.kind() {
            // Too slow (the pace above) or too long: said with what arrived.
            std::io::ErrorKind::TimedOut => TransportError::Unreachable {
                relay: relay.to_string(),
                detail: format!("reading the answer failed: {e}"),
            },
            _ => TransportError::CutOff {
                relay: relay.to_string(),
            },
        })?;
    if body.len() > cap {
        return Err(too_large());
    }
    Ok(body)
}
