//! Live sync end to end (issue 8): both partners run `duet sync --watch`; partner A
//! rates with an ordinary `duet rate` (no sync), and the time until B's watcher prints
//! the rating is measured. It covers A's watcher noticing the local change, its push,
//! the relay's notification and B's pull. On one SQLite relay, and on two relay
//! instances over one PostgreSQL database (A on one, B on the other).

use std::time::Instant;

use duet_tests::{Relay, Watcher, pair};

use crate::figures::Figures;

/// Ratings timed one after another.
const ROUNDS: usize = 12;

/// Runs the scenario on `relays` (A uses the first, B the last); figures are prefixed
/// with `prefix`.
fn measure(prefix: &str, one: &Relay, two: &Relay, figs: &mut Figures) {
    let (a, b) = pair(one);
    if two.url != one.url {
        b.ok(&["relay", "set", &two.url]);
    }
    a.ok(&["goal", "add", "Evening walk", "--area", "quality-time"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    let mut wa = Watcher::start(&a);
    let mut wb = Watcher::start(&b);
    let mut times = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS {
        let level = ["-1", "0", "1"][i % 3];
        let t = Instant::now();
        // Blind: B has not rated, so each rating arrives sealed (a seal is what travels).
        a.ok(&["rate", "Evening walk", level]);
        wb.wait_for("shared: 1 sealed rating from Alex");
        times.push(t.elapsed().as_secs_f64());
        wa.wait_for("shared: sent 1 change");
    }
    drop(wa);
    drop(wb);
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let max = times[times.len() - 1];
    figs.add(
        &format!("{prefix}live_rating_to_partner_median"),
        median,
        "s",
    );
    figs.add(&format!("{prefix}live_rating_to_partner_max"), max, "s");
}

/// On one SQLite relay.
pub fn on_sqlite(figs: &mut Figures) {
    println!("== live sync end to end: one SQLite relay ==");
    let relay = Relay::start();
    measure("", &relay, &relay, figs);
}

/// On two instances over one PostgreSQL database (a fresh schema of `server`).
pub fn on_postgres(server: &str, figs: &mut Figures) {
    println!("== live sync end to end: two relay instances on PostgreSQL ==");
    let url = duet_tests::schema_on(server);
    let one = Relay::start_on(&url, &[]);
    let two = Relay::start_on(&url, &[]);
    measure("pg_", &one, &two, figs);
}
