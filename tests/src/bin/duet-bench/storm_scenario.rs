//! Concurrent writes on one home (issue 12): the storm of `tests/many_processes.rs`
//! (`duet_tests::storm`) at full size, 20 rounds with 1, 2, 4 and 8 writer processes at
//! once, each beside a `sync --watch` on the same home and a partner who writes and
//! syncs, through a relay without request-rate limits (`storm::RELAY_OPTIONS` says why).
//! The figure is the writers' commands per second of wall time; a storm that loses a
//! change or breaks a store is an error, not a figure.

use duet_tests::storm::{self, Size};
use duet_tests::{Relay, bin, pair};

use crate::figures::Figures;

/// The writer counts measured.
const WRITERS: [usize; 4] = [1, 2, 4, 8];

/// Runs the storm with `rounds` rounds per writer count; figures are
/// `concurrent_writes_{writers}` in cmd/s.
pub fn measure(rounds: usize, figs: &mut Figures) -> Result<(), String> {
    for writers in WRITERS {
        println!("== concurrent writes: {writers} writer(s) x {rounds} rounds on one home ==");
        let relay = Relay::start_with(&storm::RELAY_OPTIONS);
        let (a, b) = pair(&relay);
        let out = storm::run(
            &bin("duet"),
            &a.home,
            &b.home,
            Size { writers, rounds },
            storm::seed(),
        );
        println!("  {}", out.summary());
        if !out.problems.is_empty() {
            return Err(format!(
                "the concurrent-writes storm lost changes or broke a store: {}",
                out.report()
            ));
        }
        figs.add(
            &format!("concurrent_writes_{writers}"),
            out.commands_per_second(),
            "cmd/s",
        );
    }
    Ok(())
}
