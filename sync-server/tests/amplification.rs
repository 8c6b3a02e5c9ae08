//! A stranger's junk against the real `duet-relay` process (issue 13, finding 3, and the
//! refused-request logging of finding 8).
//!
//! Every malformed body gets a small answer (the first error and a count, never a list
//! as long as the body) for bounded work, so the relay's memory stays proportional to
//! the bodies it holds: its peak resident memory, read from /proc, stays under 300 MB
//! with four 16 MiB junk bodies at once. Refused requests are logged at most about once
//! a second, each line counting those suppressed before it.

mod common;

use std::time::{Duration, Instant};

use common::events_path;
use common::process::{Proc, Space, http};
use duet_core::event::{MAX_EVENT_BYTES, SpaceId};
use duet_core::protocol::ErrorCode;
use duet_core::protocol::{MAX_BODY_BYTES, encode_batch};

/// The most an answer to junk may weigh.
const SMALL_ANSWER: usize = 4096;

/// The relay's peak resident memory must stay under this (acceptance 2 of issue 13).
const PEAK_RSS: u64 = 300 * 1000 * 1000;

/// 16 MiB of zero-length frames: 4,194,304 frames, each a zero length prefix.
fn zero_frames() -> Vec<u8> {
    vec![0u8; MAX_BODY_BYTES]
}

/// 16 MiB of event-sized frames of random junk (none decodes).
fn junk_frames() -> Vec<u8> {
    let frame: Vec<u8> = (0..170u32).map(|i| (i * 37 % 251) as u8).collect();
    let n = MAX_BODY_BYTES / (frame.len() + 4);
    encode_batch(std::iter::repeat_n(frame.as_slice(), n))
}

/// Three frames each one byte over the event limit (12 MiB).
fn oversized_frames() -> Vec<u8> {
    let big = vec![1u8; MAX_EVENT_BYTES + 1];
    encode_batch([big.as_slice(), big.as_slice(), big.as_slice()])
}

#[test]
fn junk_bodies_get_a_small_answer_and_four_at_once_keep_the_relay_under_300_mb() {
    let p = Proc::start_with(&["--rate-per-ip", "0"]);
    let mut s = Space::create(&p);
    let path = events_path(&s.id);
    let before = p.event_count();

    for (what, body, status, code) in [
        (
            "zero-length frames",
            zero_frames(),
            400,
            ErrorCode::Malformed,
        ),
        ("junk frames", junk_frames(), 400, ErrorCode::Malformed),
        (
            "oversized frames",
            oversized_frames(),
            413,
            ErrorCode::TooLarge,
        ),
        (
            "a frame longer than the body",
            vec![0, 0, 1, 0, 1, 2, 3],
            400,
            ErrorCode::Malformed,
        ),
        (
            "a frame longer than any event, cut short",
            vec![0, 0xff, 0, 0, 1, 2, 3],
            413,
            ErrorCode::TooLarge,
        ),
    ] {
        let r = p.request("POST", &path, &[], &body);
        assert!(
            r.body.len() < SMALL_ANSWER,
            "{what}: a {} byte answer",
            r.body.len()
        );
        assert_eq!((r.status, r.error().error), (status, code), "{what}");
    }
    // The answer names the first bad frame and counts them all.
    let e = p.request("POST", &path, &[], &zero_frames()).error();
    assert!(e.message.contains("frame 1 "), "{}", e.message);
    assert!(
        e.message.contains("4194304 of the 4194304 frames"),
        "{}",
        e.message
    );
    assert!(e.results.len() <= 1);

    // Four at once.
    let addr = p.addr;
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || http(addr, "POST", &path, &[], &zero_frames()))
        })
        .collect();
    for t in senders {
        let r = t.join().expect("a sender thread");
        assert_eq!(r.status, 400);
        assert!(
            r.body.len() < SMALL_ANSWER,
            "a {} byte answer",
            r.body.len()
        );
    }
    let peak = p.peak_rss();
    assert!(
        peak < PEAK_RSS,
        "the relay's peak resident memory reached {} MB",
        peak / 1_000_000
    );

    // Nothing was stored, and the couple is served as before.
    assert_eq!(p.event_count(), before);
    let ev = s.alex.changes(s.id, &s.key, b"still here");
    p.push(&s.id, &[&ev]).ok();
    assert_eq!(p.read(&s.sam, &s.id, "").ok().status, 200);
}

#[test]
fn refused_requests_are_logged_about_once_a_second_each_line_counting_the_suppressed() {
    const FLOOD: u64 = 300;
    let p = Proc::start_logged(&["--rate-per-ip", "0"]);
    let junk = events_path(&SpaceId::generate());
    let start = Instant::now();
    for i in 0..FLOOD {
        let r = if i % 2 == 0 {
            p.request("GET", &junk, &[], b"")
        } else {
            p.request("POST", &junk, &[], b"\0\0\0\x01x")
        };
        assert!(matches!(r.status, 400 | 401), "{}", r.status);
    }
    let flood_secs = start.elapsed().as_secs();
    // One more after a quiet second goes out, with the count of the rest.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(p.request("GET", &junk, &[], b"").status, 401);
    logged_once_a_second(&p, "request refused:", FLOOD + 1, flood_secs);
}

/// A space's devices retry what its quota refused at every sync: those refusals are
/// logged about once a second too (each was a line of its own), counting the rest.
#[test]
fn refusals_over_a_spaces_quota_are_logged_about_once_a_second() {
    const FLOOD: u64 = 100;
    let p = Proc::start_logged(&[
        "--rate-per-ip",
        "0",
        "--rate-per-device",
        "0",
        "--space-max-events",
        "3",
    ]);
    let mut s = Space::create(&p);
    let over = s.alex.changes(s.id, &s.key, b"one too many");
    let start = Instant::now();
    for _ in 0..FLOOD {
        let r = p.push(&s.id, &[&over]);
        assert_eq!(r.error().error, ErrorCode::QuotaExceeded);
    }
    let flood_secs = start.elapsed().as_secs();
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        p.push(&s.id, &[&over]).error().error,
        ErrorCode::QuotaExceeded
    );
    logged_once_a_second(&p, "over the space's quota", FLOOD + 1, flood_secs);
}

/// The log's lines holding `needle`: about one a second of the `flood_secs` the flood
/// took (and one after it), their `suppressed=` counts adding up to `total`.
fn logged_once_a_second(p: &Proc, needle: &str, total: u64, flood_secs: u64) {
    let mut log = String::new();
    for _ in 0..50 {
        log = p.log();
        if log.lines().filter(|l| l.contains(needle)).count() > 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(needle)).collect();
    assert!(
        (lines.len() as u64) <= flood_secs + 3,
        "{} lines for {total} refusals in {flood_secs} s",
        lines.len(),
    );
    let suppressed: u64 = lines
        .iter()
        .map(|l| {
            l.split("suppressed=")
                .nth(1)
                .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("a refusal line without its count: {l}"))
        })
        .sum();
    assert_eq!(
        lines.len() as u64 + suppressed,
        total,
        "every refusal is logged or counted"
    );
}
