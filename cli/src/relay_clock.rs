//! The relay's clock as this process knows it. A signed read must carry a time within
//! [`READ_WINDOW_SECS`] of the relay's clock, so a device whose clock is off by more
//! (or a relay whose clock is: a small box without network time) could not sync at all.
//! When the relay refuses a read, its answer's `Date` says what its clock reads; reads
//! are then signed with this device's time moved by the difference, and the person is
//! told once which clock differs and by how much, since the times Duet records (ratings,
//! reflections) come from this device's clock.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use duet_core::protocol::READ_WINDOW_SECS;

/// Seconds the relay's clock is ahead of this device's (negative: behind); 0 until a
/// relay's answer says otherwise. One per process: the pulls and the live socket sign
/// with it.
static AHEAD: AtomicI64 = AtomicI64::new(0);

/// Whether the person has been told that the clocks differ.
static TOLD: AtomicBool = AtomicBool::new(false);

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
    let Some(relay_now) = date
        .and_then(|d| chrono::DateTime::parse_from_rfc2822(d.trim()).ok())
        .map(|t| t.timestamp())
    else {
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
    if !TOLD.swap(true, Ordering::Relaxed) {
        eprintln!("note: {}", differ(ahead));
    }
    true
}

/// What the person is told: which clock is ahead, by how much, and what it means.
fn differ(ahead: i64) -> String {
    let (which, by) = if ahead > 0 {
        ("the relay's clock is ahead of this device's", ahead)
    } else {
        ("this device's clock is ahead of the relay's", -ahead)
    };
    format!(
        "{which} by {}; reads are signed with the relay's time. If this device's clock is the wrong one, set it right (automatic time): ratings and reflections are dated by it",
        duet_core::words::span(by)
    )
}
