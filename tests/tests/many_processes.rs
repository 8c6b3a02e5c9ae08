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

#[test]
fn two_undos_at_once_take_back_two_acts_not_one_twice() {
    let d = duet_tests::Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Weekly check-in", "--area", "communication"]);
    d.ok(&["rate", "weekly", "1", "--note", "first"]);
    d.ok(&["rate", "weekly", "2", "--note", "second"]);
    d.ok(&["reflect", "First words"]);
    d.ok(&["reflect", "Second words"]);
    let both = |args: &[&str]| {
        let started: Vec<_> = (0..2)
            .map(|_| d.command(args).spawn().expect("spawn duet"))
            .collect();
        let outs: Vec<serde_json::Value> = started
            .into_iter()
            .map(|c| {
                let out = c.wait_with_output().expect("wait");
                assert!(out.status.success(), "{out:?}");
                serde_json::from_slice(&out.stdout).expect("JSON")
            })
            .collect();
        outs
    };
    // The two reflections are the latest acts: each undo takes back one of them.
    let undone = both(&["undo", "--json"]);
    assert_ne!(undone[0]["id"], undone[1]["id"], "{undone:?}");
    assert_eq!(d.json(&["reflections"]).as_array().map(Vec::len), Some(0));
    // Then the two ratings, by `undo`, and never one rating twice.
    let undone = both(&["undo", "--json"]);
    assert_ne!(undone[0]["id"], undone[1]["id"], "{undone:?}");
    let progress = d.json(&["progress"]);
    assert!(
        progress["goals"][0]["partners"][0]["latest"].is_null(),
        "{progress}"
    );
    // `reflect --withdraw last` twice at once withdraws two reflections.
    d.ok(&["reflect", "Third words"]);
    d.ok(&["reflect", "Fourth words"]);
    let withdrawn = both(&["reflect", "--withdraw", "last", "--json"]);
    assert_ne!(withdrawn[0]["id"], withdrawn[1]["id"], "{withdrawn:?}");
}
