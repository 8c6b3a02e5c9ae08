//! The other benchmark programs, run as their own processes so that timings and memory
//! are theirs alone: the relay's ingest and memory benchmarks (`relay_bench`,
//! `relay_rss`, binaries of this package, so that they share the harness's compiled
//! dependencies), and the samod peer (`bench-peer/`, outside the workspace so that
//! `cargo test --workspace` never builds samod). Each is built before anything is
//! measured.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::figures::Figures;

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// The target directory this harness was built into (`target/release`'s parent).
fn target_dir() -> PathBuf {
    duet_tests::bin_dir()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| root().join("target"))
}

/// Builds the relay benchmarks (release; they share the harness's dependencies, so
/// this takes seconds).
pub fn build_benches() -> Result<(), String> {
    let status = cargo()
        .args(["build", "--release", "-p", "duet-tests", "--bins"])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building the relay benchmarks failed".into());
    }
    Ok(())
}

/// Builds the samod peer (release), into this workspace's target directory.
pub fn build_peer() -> Result<(), String> {
    let status = cargo()
        .args([
            "build",
            "--release",
            "--manifest-path",
            "bench-peer/Cargo.toml",
        ])
        .arg("--target-dir")
        .arg(target_dir())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building the samod peer (bench-peer/) failed".into());
    }
    Ok(())
}

/// Runs a built program, echoes its output and takes its `bench:` lines as figures
/// named `prefix` + name.
fn run(path: PathBuf, args: &[String], prefix: &str, figs: &mut Figures) -> Result<(), String> {
    let shown = path.display().to_string();
    println!("== {shown} {} ==", args.join(" "));
    let out = Command::new(&path)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines().filter(|l| !l.starts_with("bench: ")) {
        println!("  {line}");
    }
    if !out.status.success() {
        return Err(format!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if figs.absorb(prefix, &stdout) == 0 {
        return Err(format!("{shown} printed no `bench:` lines"));
    }
    Ok(())
}

fn program(name: &str) -> PathBuf {
    target_dir().join("release").join(name)
}

/// Relay ingest: single-event pushers at several concurrencies, batched pushes, live-push
/// latency and the machine baselines (a durable commit per event, verify_strict, batch
/// verification), on SQLite, or on PostgreSQL (figures prefixed `pg_`) when `postgres`
/// names a server.
pub fn relay_ingest(
    events: usize,
    postgres: Option<&str>,
    figs: &mut Figures,
) -> Result<(), String> {
    let mut args = Vec::new();
    let prefix = match postgres {
        Some(url) => {
            // Half the events: PostgreSQL takes single-event pushes several times slower,
            // and the figures are rates.
            args.extend(["--events".to_string(), (events / 2).max(1).to_string()]);
            args.extend(["--postgres".to_string(), url.to_string()]);
            "pg_"
        }
        None => {
            args.extend(["--events".to_string(), events.to_string()]);
            ""
        }
    };
    run(program("relay_bench"), &args, prefix, figs)
}

/// Relay ingest with the relay pinned to one core and the clients to another (figures
/// prefixed `pinned_`), when `taskset` is there and the machine has two cores: 64
/// single-event pushers beside one core's `verify_strict`, the relay's cost alone.
pub fn relay_pinned(events: usize, cores: usize, figs: &mut Figures) -> Result<(), String> {
    let taskset = Command::new("taskset")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !taskset || cores < 2 {
        println!("== relay pinned to one core: skipped (needs taskset and two cores) ==");
        return Ok(());
    }
    let args: Vec<String> = ["--pin", "0,1", "--clients", "64", "--events"]
        .iter()
        .map(|a| a.to_string())
        .chain([events.to_string()])
        .collect();
    run(program("relay_bench"), &args, "pinned_", figs)
}

/// A PostgreSQL server for the relay's PostgreSQL figures: `DUET_TEST_POSTGRES` if set,
/// else the throwaway server `.ci/postgres` starts (installing Debian's package if
/// needed).
pub fn postgres_server() -> Result<String, String> {
    if let Ok(url) = std::env::var("DUET_TEST_POSTGRES") {
        return Ok(url);
    }
    println!("== starting a throwaway PostgreSQL with .ci/postgres ==");
    let out = Command::new(root().join(".ci").join("postgres"))
        .output()
        .map_err(|e| format!("cannot run .ci/postgres: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            ".ci/postgres failed: {}; set DUET_TEST_POSTGRES to a server, or pass --no-postgres",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Relay memory with `spaces` spaces of `events` events each (figures `rss_S_` for 100
/// events, `rss_SxE_` otherwise), the relay's default space cache.
pub fn relay_memory(spaces: usize, events: usize, figs: &mut Figures) -> Result<(), String> {
    let args = vec![
        "--spaces".to_string(),
        spaces.to_string(),
        "--events".to_string(),
        events.to_string(),
    ];
    let prefix = if events == 100 {
        format!("rss_{spaces}_")
    } else {
        format!("rss_{spaces}x{events}_")
    };
    run(program("relay_rss"), &args, &prefix, figs)
}

/// The samod peer on the two-partner scenario with `n` edits.
pub fn samod_peer(n: usize, figs: &mut Figures) -> Result<(), String> {
    let args = vec!["--changes".to_string(), n.to_string()];
    let path = target_dir().join("release").join("duet-bench-peer");
    run(path, &args, &format!("peer_{n}_"), figs)
}
