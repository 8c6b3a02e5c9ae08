//! A reader that stops early (`duet export | head -c1`) ends `duet` quietly: no panic, no
//! error line, exit status 0, for every command that prints (issue 12, acceptance 4).
//!
//! Writing into a pipe whose reader is gone fails with EPIPE only once the pipe is full or
//! closed, so each case makes sure the write really happens after the close: long outputs
//! (well over the 64 KiB a Linux pipe buffers) read by a reader that takes one byte and
//! closes, and outputs that cannot be made that long (names are capped at 200
//! characters) written into a pipe closed before the command starts printing.

use std::io::Read;
use std::time::{Duration, Instant};

use duet_core::Area;
use duet_core::device::Device as CoreDevice;
use duet_core::doc::NewGoal;
use duet_core::store::SpaceKind;
use duet_tests::{Device, Relay};

/// More than a pipe buffers, so the command is still writing when its reader leaves (and
/// within the 100,000 characters a text may have).
const LONG: usize = 90_000;

/// Goals enough for `goal list` (which clips titles) to print more than [`LONG`] bytes.
const MANY_GOALS: usize = 1_200;

/// Adds [`MANY_GOALS`] goals through duet-core directly (a process per goal is slow).
fn add_many_goals(d: &Device) {
    let mut dev = CoreDevice::open(&d.home).expect("open");
    dev.edit(SpaceKind::Shared, |doc, me| {
        let mut changes = Vec::new();
        for g in 0..MANY_GOALS {
            let goal = NewGoal {
                title: format!("Goal number {g} of the many this couple keeps"),
                area: Some(Area::ALL[g % Area::ALL.len()]),
                ..Default::default()
            };
            changes.extend(doc.add_goal(&me.person_id, goal, duet_testkit::now_ms())?.1);
        }
        Ok(((), changes))
    })
    .expect("goals");
}

/// How long one command may take before the test calls it hung.
const DEADLINE: Duration = Duration::from_secs(120);

/// What a command did when its stdout was cut off.
struct Cut {
    code: Option<i32>,
    stderr: String,
}

/// Runs `duet args` on `home` with stdout piped to a reader that reads `take` bytes and
/// then closes the pipe (at once when `take` is 0).
fn run_cut(d: &Device, args: &[&str], take: usize) -> Cut {
    let mut child = d.command(args).spawn().expect("duet starts");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    // stderr is drained beside, so that a chatty command cannot block on it.
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut got = vec![0u8; take];
    if take > 0 {
        // Returns at the first byte, or at end of file if the command printed nothing.
        stdout.read_exact(&mut got).expect("the command prints");
    }
    drop(stdout);
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for duet") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("duet {args:?} did not end within {DEADLINE:?} after its reader left");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Cut {
        code: status.code(),
        stderr: errors.join().expect("stderr reader"),
    }
}

/// Why a cut-off command did not end quietly, if it did not.
fn complaint(args: &[&str], cut: &Cut) -> Option<String> {
    let quiet = cut.code == Some(0)
        && !cut.stderr.contains("panicked")
        && !cut.stderr.lines().any(|l| l.starts_with("error"));
    (!quiet).then(|| {
        format!(
            "duet {}: exit {:?}, stderr {:?}",
            args.join(" "),
            cut.code,
            cut.stderr.chars().take(400).collect::<String>()
        )
    })
}

#[test]
fn every_reading_command_exits_quietly_when_its_reader_closes_after_one_byte() {
    let d = Device::new();
    // A long title, why and note make every reading command print far more than a pipe
    // holds (the title in progress and `show`, the note in history); lists clip titles,
    // so many goals fill `goal list`.
    let title = format!("Walk {}", "t".repeat(LONG));
    let why = format!("Because {}", "w".repeat(LONG));
    let note = format!("A good week {}", "n".repeat(LONG));
    d.ok(&["init", "--name", "Alex"]);
    let goal = d.json(&["goal", "add", &title, "--area", "trust", "--why", &why])["id"]
        .as_str()
        .expect("goal id")
        .to_string();
    d.ok(&["rate", &goal, "1", "--note", &note]);
    d.ok(&["reflect", "--private", "only for me"]);
    add_many_goals(&d);

    let commands: &[&[&str]] = &[
        &["goal", "list"],
        &["goal", "list", "--json"],
        &["goal", "show", &goal],
        &["goal", "show", &goal, "--json"],
        &["history"],
        &["history", "--json"],
        &["progress"],
        &["progress", "--json"],
        &["export"],
        &["export", "--json"],
    ];
    let mut failures = Vec::new();
    for args in commands {
        // The case proves something only if the output does not fit in the pipe.
        let full = d.run(args);
        assert!(
            full.ok().len() > LONG,
            "duet {args:?} printed only {} bytes; the test needs more than a pipe holds",
            full.stdout.len()
        );
        failures.extend(complaint(args, &run_cut(&d, args, 1)));
    }
    // A few lines long whatever the data: the pipe is closed before they print.
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["device", "list"],
        &["device", "list", "--json"],
    ] {
        failures.extend(complaint(args, &run_cut(&d, args, 0)));
    }
    assert!(
        failures.is_empty(),
        "commands that did not end quietly:\n{}",
        failures.join("\n")
    );
}

#[test]
fn short_outputs_into_an_already_closed_pipe_exit_quietly() {
    let relay = Relay::start();
    let d = Device::new();
    d.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let goal = d.json(&["goal", "add", "Walk", "--area", "trust"])["id"]
        .as_str()
        .expect("goal id")
        .to_string();
    d.ok(&["sync"]);
    let report = d.home.with_file_name("report.html");
    let report = report.to_str().expect("a UTF-8 path");

    let commands: &[&[&str]] = &[
        &["verify"],
        &["verify", "--json"],
        &["sync"],
        &["rate", &goal, "0"],
        &["step", "add", &goal, "Plan the route"],
        &["reflect", "It went well"],
        &["report", "--html", report],
        &["goal", "add", "Cook", "--area", "quality-time"],
        &["history", "--limit", "1"],
        &["status"],
    ];
    let failures: Vec<String> = commands
        .iter()
        .filter_map(|args| complaint(args, &run_cut(&d, args, 0)))
        .collect();
    assert!(
        failures.is_empty(),
        "commands that did not end quietly:\n{}",
        failures.join("\n")
    );
}

/// `duet invite | true`: the code was made and announced, and nobody has it. It is
/// withdrawn, and the command fails saying so (a closed pipe was a success, and the
/// code stayed open for days).
#[test]
fn a_code_written_into_a_closed_pipe_is_withdrawn_and_said_to_be() {
    let relay = Relay::start();
    let d = Device::new();
    d.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    d.ok(&["sync"]);
    for args in [&["invite"][..], &["device", "add"], &["invite", "--json"]] {
        let cut = run_cut(&d, args, 0);
        assert_eq!(cut.code, Some(1), "{args:?}: {}", cut.stderr);
        assert!(
            cut.stderr.contains("so no one has it; it was withdrawn"),
            "{args:?}: {}",
            cut.stderr
        );
        let listed = d.json(&["invite", "list"]);
        let all = listed.as_array().expect("a list of invites");
        assert!(!all.is_empty(), "{listed}");
        let open = all.iter().filter(|i| i["state"] == "open").count();
        assert_eq!(open, 0, "{args:?} left a code open");
    }
}

#[test]
fn a_change_whose_confirmation_cannot_be_printed_is_said_to_be_done() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full, a file every write to fails with ENOSPC");
    let out = d
        .command(&["goal", "add", "Full disk walk", "--area", "trust"])
        .stdout(full)
        .output()
        .expect("run duet");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot write to standard output, but what the command did is done"),
        "{stderr}"
    );
    // A script that retries would otherwise add the goal twice.
    assert_eq!(d.json(&["goal", "list"])[0]["title"], "Full disk walk");
}
