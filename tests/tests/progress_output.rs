//! Work that can take a while shows progress on stderr, and only where a person watches
//! (issue 19, acceptance 3): `duet join` of a long history draws a progress line on a
//! terminal, and none under `--quiet` or when stderr is a pipe. The terminal is the
//! pseudo-terminal of util-linux's `script`; without it the test says it is skipped.

use std::process::{Command, Stdio};

use duet_core::device::Device as CoreDevice;
use duet_core::doc::NewGoal;
use duet_core::store::SpaceKind;
use duet_core::{Area, Level};
use duet_tests::{Device, Relay, bin};

/// What the progress line starts with during a join.
const PROGRESS: &str = "joining: ";

/// A history long enough for a join to take about a second: goals rated week after week.
fn long_history(d: &Device) {
    let mut dev = CoreDevice::open(&d.home).expect("open");
    dev.edit(SpaceKind::Shared, |doc, me| {
        let mut changes = Vec::new();
        let start = duet_testkit::now_ms() - 400 * 86_400_000;
        for g in 0..60 {
            let goal = NewGoal {
                title: format!("Goal {g}"),
                area: Some(Area::ALL[g % Area::ALL.len()]),
                ..Default::default()
            };
            let (id, c) = doc.add_goal(&me.person_id, goal, start)?;
            changes.extend(c);
            for w in 0..50i64 {
                let level = Level::try_from((w + g as i64) % 5 - 2).expect("level");
                changes.extend(
                    doc.rate(&id, &me.person_id, level, None, start + w * 86_400_000)?
                        .1,
                );
            }
        }
        Ok(((), changes))
    })
    .expect("history");
}

/// A one-time code for another device of the history's owner.
fn device_code(owner: &Device) -> String {
    owner.ok(&["device", "add"]).trim().to_string()
}

/// Whether `script` (util-linux) runs here.
fn have_script() -> bool {
    Command::new("script")
        .args(["-qfec", "true", "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `duet join CODE [extra]` on a new home under a pseudo-terminal, stdout sent to
/// /dev/null: what the terminal shows is stderr.
fn join_on_a_terminal(code: &str, extra: &str) -> String {
    let home = tempfile::tempdir().expect("tempdir");
    let line = format!(
        "'{}' join '{code}' {extra} >/dev/null",
        bin("duet").display()
    );
    let out = Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .env("DUET_HOME", home.path().join("home"))
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .output()
        .expect("script runs");
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "join failed: {shown}");
    shown
}

#[test]
fn a_join_shows_progress_on_a_terminal_only_and_never_when_quiet() {
    if !have_script() {
        eprintln!("skipped: install util-linux (script) to run this test");
        return;
    }
    let relay = Relay::start();
    let owner = Device::new();
    owner.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    long_history(&owner);
    owner.ok(&["sync"]);

    let shown = join_on_a_terminal(&device_code(&owner), "");
    assert!(
        shown.contains(PROGRESS),
        "progress on a terminal: {shown:?}"
    );

    let shown = join_on_a_terminal(&device_code(&owner), "--quiet");
    assert!(!shown.contains(PROGRESS), "none with --quiet: {shown:?}");

    let piped = Device::new();
    let run = piped.run(&["join", &device_code(&owner)]);
    run.ok();
    assert!(
        !run.stderr.contains(PROGRESS),
        "none into a pipe: {:?}",
        run.stderr
    );
    assert!(
        !run.stderr.contains('\r'),
        "no drawing into a pipe: {:?}",
        run.stderr
    );
}
