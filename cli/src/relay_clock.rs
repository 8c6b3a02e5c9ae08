//! The relay's clock as this process knows it. A signed read must carry a time within
//! [`READ_WINDOW_SECS`] of the relay's clock, so a device whose clock is off by more
//! (or a relay whose clock is: a small box without network time) could not sync at all.
//! When the relay refuses a read, its answer's `Date` says what its clock reads; reads
//! are then signed with this device's time moved by the difference. Every answer's
//! `Date` is noted too: a sync records how far the clocks are apart, and warns when
//! they are (the times Duet records, ratings and reflections, come from this device's
//! clock; `duet_core::device::CLOCK_TOLERANCE_MS`).

use std::sync::atomic::{AtomicI64, Ordering};

use duet_core::protocol::READ_WINDOW_SECS;

/// Seconds the relay's clock is ahead of this device's (negative: behind); 0 until a
/// relay's answer says otherwise. One per process: the pulls and the live socket sign
/// with it.
static AHEAD: AtomicI64 = AtomicI64::new(0);

/// How far the relay's clock was ahead of this device's at its latest answer, ms
/// ([`NOT_OBSERVED`] before any): what a sync records, so that a rating made on a clock
/// days off is refused (`duet_core::device::CLOCK_TOLERANCE_MS`).
static OBSERVED: AtomicI64 = AtomicI64::new(NOT_OBSERVED);
const NOT_OBSERVED: i64 = i64::MIN;

/// Notes what the relay's clock read at an answer (its `Date`, whole seconds: taken as
/// the middle of its second).
pub fn observe(date: Option<&str>) {
    let Some(relay_ms) = date_ms(date).map(|ms| ms + 500) else {
        return;
    };
    OBSERVED.swap(
        relay_ms - chrono::Utc::now().timestamp_millis(),
        Ordering::Relaxed,
    );
}

/// What an answer's `Date` header says, ms since the epoch (whole seconds).
fn date_ms(date: Option<&str>) -> Option<i64> {
    date.and_then(|d| chrono::DateTime::parse_from_rfc2822(d.trim()).ok())
        .map(|t| t.timestamp_millis())
}

/// A time the relay gave (its clock, ms) as this device's clock reads it: what a person
/// is shown next to the other times on this device.
pub fn to_local(relay_ms: i64) -> i64 {
    relay_ms.saturating_sub(observed_ahead_ms().unwrap_or(0))
}

/// How far the relay's clock was ahead of this device's at its latest answer (ms).
pub fn observed_ahead_ms() -> Option<i64> {
    Some(OBSERVED.load(Ordering::Relaxed)).filter(|a| *a != NOT_OBSERVED)
}

/// This device's time, Unix seconds.
fn local_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The time to sign a read with: this device's, moved to the relay's clock once known.
pub fn signing_time() -> i64 {
    local_now() + AHEAD.load(Ordering::Relaxed)
}

/// The relay's time as this process knows it, Unix milliseconds: the system clock moved
/// by what a relay's answer said (not `DUET_NOW`: the relay's clock is the real one).
fn relay_now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis() + AHEAD.load(Ordering::Relaxed) * 1000
}

/// How far this device's `now` (ms) is behind the relay's clock, in words, when it is
/// behind by more than `by_ms`.
pub fn behind_by(now_ms: i64, by_ms: i64) -> Option<String> {
    let behind = relay_now_ms() - now_ms;
    (behind > by_ms).then(|| duet_core::words::span(behind / 1000))
}

/// Learns the relay's clock from the `Date` of an answer that refused a read signed at
/// `signed_at` (401); returns whether that time was too far from the relay's, so that
/// the read signed again now carries the relay's time (sign it again, once).
pub fn learn(status: u16, date: Option<&str>, signed_at: i64) -> bool {
    if status != 401 {
        return false;
    }
    let Some(relay_now) = date_ms(date).map(|ms| ms.div_euclid(1000)) else {
        return false;
    };
    // A time this far from the one signed with is why the read was refused; nearer,
    // it was refused for another reason, which signing again would not change.
    if relay_now.abs_diff(signed_at) <= (READ_WINDOW_SECS / 2).unsigned_abs() {
        return false;
    }
    let ahead = relay_now - local_now();
    // Another thread (the other space's socket) may have learnt it meanwhile.
    if (ahead - AHEAD.load(Ordering::Relaxed)).abs() > READ_WINDOW_SECS / 2 {
        AHEAD.swap(ahead, Ordering::Relaxed);
    }
    true
}
