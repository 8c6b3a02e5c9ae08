//! The other benchmark programs, run as their own processes so that timings and memory
//! are theirs alone: the relay's ingest and memory examples, and the samod peer
//! (`bench-peer/`, outside the workspace so that `cargo test --workspace` never builds
//! samod). Each is built before anything is measured.

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

/// Builds the relay examples and the samod peer (release). The peer shares this
/// workspace's target directory, so the crates both use are built once.
pub fn build(peer: bool) -> Result<(), String> {
    let status = cargo()
        .args(["build", "--release", "-p", "duet-relay", "--examples"])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building the relay examples failed".into());
    }
    if peer {
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

fn example(name: &str) -> PathBuf {
    target_dir().join("release").join("examples").join(name)
}

/// Relay ingest: single-event pushers at several concurrencies, batched pushes, and the
/// machine baselines (fsync per event, verify_strict, batch verification).
pub fn relay_ingest(events: usize, figs: &mut Figures) -> Result<(), String> {
    let args = vec!["--events".to_string(), events.to_string()];
    run(example("relay_bench"), &args, "", figs)
}

/// Relay memory with `spaces` spaces of 100 events each.
pub fn relay_memory(spaces: usize, figs: &mut Figures) -> Result<(), String> {
    let args = vec!["--spaces".to_string(), spaces.to_string()];
    run(example("relay_rss"), &args, &format!("rss_{spaces}_"), figs)
}

/// The samod peer on the two-partner scenario with `n` edits.
pub fn samod_peer(n: usize, figs: &mut Figures) -> Result<(), String> {
    let args = vec!["--changes".to_string(), n.to_string()];
    let path = target_dir().join("release").join("duet-bench-peer");
    run(path, &args, &format!("peer_{n}_"), figs)
}
