//! Duet's benchmark harness: figures, not assertions. One command runs every scenario of
//! issue 6 and prints each figure as `bench: NAME VALUE UNIT`, then the targets as
//! ratios of figures measured in the same run, and writes both into docs/benchmarks.md:
//!
//!     cargo run --release -p duet-tests --bin duet-bench
//!
//! Scenarios: the CLI scenario (offline edits, push, fresh join, read commands, `rate`)
//! at 10,000 and 100,000 changes; relay ingest with 1-64 single-event pushers and batched
//! pushes beside the machine's fsync and signature-verification rates; relay memory with
//! 1,000 and 10,000 spaces of 100 events; the samod peer on the same two-partner
//! scenario at 10,000 and 20,000 edits; live sync end to end (a rating on one watching
//! device until the partner's watcher prints it); concurrent writes on one home (issue 12:
//! the storm of `tests/many_processes.rs`, 20 rounds with 1, 2, 4 and 8 writer processes,
//! in commands per second); relay ingest, live-push latency and live sync again on
//! PostgreSQL (`DUET_TEST_POSTGRES`, or a throwaway server from `.ci/postgres`).
//! `--quick` runs small sizes (for trying the harness, never written to the docs);
//! `--no-docs` leaves docs/benchmarks.md alone; `--no-peer` skips samod (its first build
//! takes minutes); `--no-postgres` skips the PostgreSQL figures; `--concurrent-writes-only`
//! runs just the concurrent-writes storm (never written to the docs); `--rituals-only`
//! the blind rules over thousands of unrevealed seals, and a couple's offline ratings
//! revealed by their syncs (both also part of every run).

mod cli_scenario;
mod figures;
mod live_scenario;
mod offline_ratings_scenario;
mod programs;
mod report;
mod rituals_scenario;
mod storm_scenario;
mod targets;

use std::time::Instant;

use figures::Figures;

struct Options {
    quick: bool,
    docs: bool,
    peer: bool,
    postgres: bool,
    concurrent_writes_only: bool,
    cli_only: bool,
    rituals_only: bool,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        quick: false,
        docs: true,
        peer: true,
        postgres: true,
        concurrent_writes_only: false,
        cli_only: false,
        rituals_only: false,
    };
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--no-docs" => o.docs = false,
            "--no-peer" => o.peer = false,
            "--no-postgres" => o.postgres = false,
            "--concurrent-writes-only" => o.concurrent_writes_only = true,
            "--cli-only" => o.cli_only = true,
            "--rituals-only" => o.rituals_only = true,
            other => {
                return Err(format!(
                    "unknown option {other:?}; the options are --quick, --no-docs, --no-peer, --no-postgres, --concurrent-writes-only, --cli-only and --rituals-only"
                ));
            }
        }
    }
    Ok(o)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("duet-bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let started = Instant::now();
    let opts = options()?;
    let release = duet_tests::bin_dir().ends_with("release");
    let cores = std::thread::available_parallelism().map_or(1, |p| p.get());
    if !release {
        return Err(
            "run it as a release build: cargo run --release -p duet-tests --bin duet-bench".into(),
        );
    }
    // Relay memory runs: (spaces, events per space).
    type Sizes = (
        &'static [usize],
        usize,
        &'static [(usize, usize)],
        &'static [usize],
    );
    let (cli_sizes, ingest_events, rss_spaces, peer_sizes): Sizes = if opts.quick {
        (&[2_000, 10_000], 1_600, &[(200, 100)], &[2_000])
    } else {
        (
            &[10_000, 100_000],
            6_400,
            &[(1_000, 100), (10_000, 100), (100_000, 10)],
            &[10_000, 30_000],
        )
    };
    let storm_rounds = if opts.quick {
        5
    } else {
        duet_tests::storm::Size::full().rounds
    };
    let seal_counts: &[usize] = if opts.quick {
        &[1_000]
    } else {
        &[1_000, 5_000, 20_000]
    };
    let offline_ratings: &[usize] = if opts.quick { &[50] } else { &[200, 400] };
    if opts.rituals_only {
        rituals_scenario::measure(seal_counts, &mut Figures::default());
        offline_ratings_scenario::measure(offline_ratings, &mut Figures::default());
        return Ok(());
    }
    if opts.concurrent_writes_only {
        println!("duet-bench: {cores} cores, release build; the concurrent-writes storm only");
        storm_scenario::measure(storm_rounds, &mut Figures::default())?;
        println!(
            "duet-bench: done in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    if opts.cli_only {
        // The CLI scenario alone, for development: figures printed, nothing written.
        println!("duet-bench: {cores} cores, release build; the CLI scenario only");
        let mut figs = Figures::default();
        for &n in cli_sizes {
            cli_scenario::run_scenario(n, &mut figs);
        }
        return Ok(());
    }
    println!("duet-bench: {cores} cores, release build; building the other programs first");
    let build = Instant::now();
    programs::build_benches()?;
    // The samod peer builds (minutes, from a clean clone) while the largest store is
    // prepared; nothing is measured meanwhile but the time to prepare it, which is not
    // reported.
    let largest = cli_sizes.iter().copied().max().unwrap_or(0);
    let peer_build = opts.peer.then(|| std::thread::spawn(programs::build_peer));
    let big = cli_scenario::prepare(largest);
    if let Some(t) = peer_build {
        t.join()
            .map_err(|_| "the thread building the samod peer panicked".to_string())??;
    }
    let build_seconds = build.elapsed().as_secs_f64();

    let mut figs = Figures::default();
    for &n in cli_sizes.iter().filter(|&&n| n != largest) {
        cli_scenario::run_scenario(n, &mut figs);
    }
    cli_scenario::measure(big, &mut figs, false);
    live_scenario::on_sqlite(&mut figs);
    storm_scenario::measure(storm_rounds, &mut figs)?;
    rituals_scenario::measure(seal_counts, &mut figs);
    offline_ratings_scenario::measure(offline_ratings, &mut figs);
    programs::relay_ingest(ingest_events, None, &mut figs)?;
    programs::relay_pinned(ingest_events, cores, &mut figs)?;
    if opts.postgres {
        let url = programs::postgres_server()?;
        live_scenario::on_postgres(&url, &mut figs);
        programs::relay_ingest(ingest_events, Some(&url), &mut figs)?;
    }
    for &(spaces, events) in rss_spaces {
        programs::relay_memory(spaces, events, &mut figs)?;
    }
    if opts.peer {
        for &n in peer_sizes {
            programs::samod_peer(n, &mut figs)?;
        }
    }

    println!("== targets (ratios of figures from this run) ==");
    let outcomes = targets::evaluate(&mut figs, largest);
    for o in &outcomes {
        println!(
            "target: {} = {} {} ({}): {}",
            o.what,
            figures::show(o.ratio),
            o.bound,
            o.figure,
            if o.met { "met" } else { "NOT met" }
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("duet-bench: done in {:.1} minutes", seconds / 60.0);
    if opts.docs && !opts.quick && opts.peer && opts.postgres {
        let header = format!(
            "Latest full run: {}, {cores} cores, release build",
            report::today()
        );
        let section = report::section(
            "cargo run --release -p duet-tests --bin duet-bench",
            &header,
            &figs,
            &outcomes,
            (seconds, build_seconds),
        );
        let p = report::write(&section)?;
        println!("duet-bench: wrote the figures into {}", p.display());
    }
    Ok(())
}
