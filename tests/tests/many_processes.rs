//! Issue 12, acceptance 1: many `duet` processes on one home at once. Eight processes
//! write together (ratings, reflections shared and private, steps, goal edits, syncs)
//! beside a `sync --watch` on the same home and a partner who writes and syncs on the
//! other side; afterwards nothing a command reported as saved is missing from either
//! partner's export, no command saw a document error, both stores pass SQLite's
//! integrity check and the home still takes writes (the storm itself is
//! `duet_tests::storm`, shared with the benchmark harness, which runs it at full size).
//!
//! A command may fail only by saying that another duet command held the home's write
//! lock for the whole bounded wait, and then it must have changed nothing; every other
//! non-zero exit fails the test.

use duet_tests::storm::{self, Size};
use duet_tests::{Relay, bin, pair};

#[test]
fn eight_processes_on_one_home_lose_nothing() {
    let relay = Relay::start_with(&storm::RELAY_OPTIONS);
    let (a, b) = pair(&relay);
    let out = storm::run(&bin("duet"), &a.home, &b.home, Size::ci(), storm::seed());
    eprintln!("storm: {}", out.summary());
    assert!(out.problems.is_empty(), "{}", out.report());
}
