//! Benchmarks with figures, not assertions: `cargo run --release -p duet-tests --bin duet-bench`.
//!
//! Scenario (DESIGN.md): partner A makes N small edits offline (GAS ratings), then syncs
//! through a real relay process; partner B, on a fresh device, joins and syncs. Prints
//! timings, bytes on the wire against Automerge's own compressed size, and how long the
//! read commands take on the resulting history.

use std::process::Command;
use std::time::Instant;

use duet_core::Level;
use duet_core::device::Device as CoreDevice;
use duet_core::ids::now_ms;
use duet_core::store::SpaceKind;
use duet_tests::{Device, Relay, bin};

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

fn run(d: &Device, args: &[&str]) -> f64 {
    let t = Instant::now();
    let out = Command::new(bin("duet"))
        .args(args)
        .env("DUET_HOME", &d.home)
        .output()
        .expect("duet runs");
    assert!(
        out.status.success(),
        "duet {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    secs(t)
}

fn main() {
    let n: usize = std::env::args()
        .skip_while(|a| a != "--changes")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let profile = if bin("duet").to_string_lossy().contains("/release/") {
        "release"
    } else {
        "debug"
    };
    println!(
        "duet-bench: {n} offline ratings, {profile} binaries, {} cores",
        std::thread::available_parallelism()
            .map(|p| p.get())
            .unwrap_or(1)
    );

    let relay = Relay::start();
    let a = Device::new();
    let b = Device::new();
    run(&a, &["init", "--name", "Alex", "--relay", &relay.url]);
    run(
        &a,
        &[
            "goal",
            "add",
            "Daily appreciation",
            "--area",
            "emotional-support",
        ],
    );
    let code = String::from_utf8(
        Command::new(bin("duet"))
            .args(["invite", "--quiet"])
            .env("DUET_HOME", &a.home)
            .output()
            .expect("invite")
            .stdout,
    )
    .expect("utf-8");
    let code = code.trim().to_string();

    // 1. N offline edits, one Automerge change each, committed in batches of 1,000.
    let t = Instant::now();
    let save_bytes;
    let am_load;
    {
        let mut dev = CoreDevice::open(&a.home).expect("open");
        let (_, doc, _) = dev.load(SpaceKind::Shared).expect("load");
        let goal = doc.goals().expect("goals")[0].id.clone();
        let mut done = 0;
        while done < n {
            let batch = (n - done).min(1000);
            dev.edit(SpaceKind::Shared, |doc, me| {
                let mut changes = Vec::new();
                for i in 0..batch {
                    let level = Level::try_from(((done + i) % 5) as i64 - 2).expect("level");
                    changes.extend(doc.rate(&goal, &me.person_id, level, None, now_ms())?.1);
                }
                Ok(((), changes))
            })
            .expect("ratings");
            done += batch;
        }
        let (_, doc, _) = dev.load(SpaceKind::Shared).expect("load");
        let saved = doc.save();
        save_bytes = saved.len();
        let t = Instant::now();
        let _ = automerge::Automerge::load(&saved).expect("loads");
        am_load = secs(t);
    }
    let edit = secs(t);

    // 2. Reopening A's store (snapshot + tail).
    let t = Instant::now();
    let dev = CoreDevice::open(&a.home).expect("open");
    let (_, _, stats) = dev.load(SpaceKind::Shared).expect("load");
    let reopen = secs(t);
    drop(dev);

    // 3. A pushes everything.
    let relay_changes = || -> (i64, i64) {
        rusqlite::Connection::open(&relay.db)
            .expect("relay db")
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(bytes)), 0) FROM events WHERE kind = 'changes'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("sizes")
    };
    let (events_before, bytes_before) = relay_changes();
    let push = run(&a, &["sync"]);
    let (events_after, bytes_after) = relay_changes();
    let (events, wire) = (events_after - events_before, bytes_after - bytes_before);

    // 4. B joins fresh and pulls everything.
    let join = run(&b, &["join", &code, "--name", "Sam"]);

    // 5. Read commands on B's store.
    let history = run(&b, &["history", "--json"]);
    let progress = run(&b, &["progress", "--json"]);
    let list = run(&b, &["goal", "list"]);
    let history50 = run(&b, &["history", "--limit", "50"]);
    let rate = run(&b, &["rate", "Daily appreciation", "1"]);

    // Machine-readable lines: `bench: NAME VALUE UNIT`.
    println!(
        "bench: offline_edit_per_change {:.1} us",
        edit * 1e6 / n as f64
    );
    println!("bench: reopen_store {:.1} ms", reopen * 1e3);
    println!("bench: push_backlog {:.3} s", push);
    println!("bench: backlog_events {events} events");
    println!("bench: wire_bytes {wire} bytes");
    println!(
        "bench: wire_bytes_per_change {:.1} bytes",
        wire as f64 / n as f64
    );
    println!("bench: automerge_save_bytes {save_bytes} bytes");
    println!(
        "bench: wire_over_save {:.3} ratio",
        wire as f64 / save_bytes as f64
    );
    println!("bench: fresh_join {join:.3} s");
    println!("bench: history_json {history:.3} s");
    println!("bench: progress_json {progress:.3} s");
    println!("bench: goal_list {list:.3} s");
    println!("bench: history_limit_50 {history50:.3} s");
    println!("bench: rate {rate:.3} s");
    println!("bench: automerge_load {am_load:.3} s");
    println!();
    println!("| measure | value |");
    println!("| --- | --- |");
    println!(
        "| {n} offline ratings (engine, 1,000 per transaction) | {edit:.2} s ({:.0} us per change) |",
        edit * 1e6 / n as f64
    );
    println!(
        "| reopen A's store | {:.0} ms (snapshot: {}, replayed after it: {}) |",
        reopen * 1e3,
        stats.from_snapshot,
        stats.replayed_changes
    );
    println!("| A `duet sync` (push) | {push:.2} s |");
    println!("| events on the wire for the backlog | {events} |");
    println!(
        "| bytes on the wire (encrypted events) | {wire} ({:.1} B per change) |",
        wire as f64 / n as f64
    );
    println!(
        "| Automerge `save()` of the whole document | {save_bytes} ({:.2}x the wire) |",
        wire as f64 / save_bytes as f64
    );
    println!("| B `duet join` (fresh device, pull everything) | {join:.2} s |");
    println!("| B `duet history --json` | {history:.2} s |");
    println!("| B `duet progress --json` | {progress:.2} s |");
    println!("| B `duet goal list` | {list:.2} s |");
    println!("| B `duet history --limit 50` | {history50:.2} s |");
    println!("| B `duet rate` | {rate:.2} s |");
    println!("| Automerge `load()` of the same document (in process) | {am_load:.2} s |");
}
