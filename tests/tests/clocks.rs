//! A device whose clock is days off: each sync measures it against the relay's clock,
//! says so, and the device refuses to rate or close a check-in until the clocks agree,
//! since its partner's device places ratings (and opens blind ones together) by their
//! times. The clocks are moved with libfaketime; `.ci/run` installs it.

use duet_tests::{Device, Relay, Run, faketime_or_skip, pair};

/// `duet args` on `d` with its clock moved by `offset` (libfaketime's `+10d`, `-10d`).
fn at_offset(d: &Device, offset: &str, args: &[&str]) -> Run {
    let duet = duet_tests::bin("duet");
    let mut all = vec!["-f", offset, duet.to_str().expect("a UTF-8 path")];
    all.extend_from_slice(args);
    // The wrapper names a semaphore after its pid and fails when one of that name is
    // left (a faketime killed by another test, its pid used again): run it again, as
    // another process with another pid.
    for _ in 0..5 {
        let mut cmd = duet_tests::duet_command(std::path::Path::new("faketime"), &d.home, &all);
        cmd.env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        let run: Run = cmd.output().expect("faketime runs").into();
        if !run.stderr.contains("faketime: sem_open: File exists") {
            return run;
        }
    }
    panic!("faketime could not make its semaphore five times in a row")
}

fn ratings_of(d: &Device) -> usize {
    let export = d.json(&["export"]);
    ["ratings", "sealed"]
        .iter()
        .map(|k| export["shared"][k].as_array().map_or(0, Vec::len))
        .sum()
}

#[test]
fn a_device_whose_clock_is_days_off_is_told_at_sync_and_rates_only_once_it_is_right() {
    if !faketime_or_skip() {
        return;
    }
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    alex.ok(&["goal", "add", "Kind words daily", "--area", "communication"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);

    // Sam's phone runs ten days ahead: its sync works, and says what is wrong.
    let synced = at_offset(&sam, "+10d", &["sync"]);
    assert_eq!(synced.code, 0, "{synced:?}");
    assert!(
        synced
            .stderr
            .contains("this device's clock is 10 days ahead of the relay's")
            && synced.stderr.contains("set this device's clock right"),
        "{}",
        synced.stderr
    );
    // A blind rating dated ten days on would open a round Alex's never meets; a close
    // would reveal ratings Alex made after it. Both are refused, and nothing is written.
    for args in [&["rate", "kind", "1"][..], &["checkin", "--close"]] {
        let refused = at_offset(&sam, "+10d", args);
        assert_eq!(refused.code, 1, "{args:?}: {refused:?}");
        assert!(
            refused.stderr.contains("10 days ahead of the relay's")
                && refused.stderr.contains("nothing was written"),
            "{}",
            refused.stderr
        );
    }
    assert_eq!(ratings_of(&sam), 0);
    // Set right (the clock went back past the sync that measured it): rating works at
    // once, and the next sync is quiet.
    sam.ok(&["rate", "kind", "1"]);
    let quiet = sam.run(&["sync"]);
    assert!(!quiet.stderr.contains("clock"), "{quiet:?}");

    // Alex's laptop runs ten days behind: refused too, and still after the clock is set
    // right (ten days on could be ten days of use), until a sync measures it again.
    let synced = at_offset(&alex, "-10d", &["sync"]);
    assert!(
        synced
            .stderr
            .contains("this device's clock is 10 days behind the relay's"),
        "{}",
        synced.stderr
    );
    let before = ratings_of(&alex);
    let refused = alex.run(&["rate", "kind", "-1"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("then run `duet sync`")
            && refused
                .stderr
                .contains("at this device's latest sync, its clock was 10 days behind"),
        "{}",
        refused.stderr
    );
    assert_eq!(ratings_of(&alex), before);
    alex.ok(&["sync"]);
    alex.ok(&["rate", "kind", "-1"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]); // Sam's device reveals, answered
    alex.ok(&["sync"]);
    // Rated on clocks that agree, the blind check-in opens on both sides.
    for d in [&alex, &sam] {
        let progress = d.ok(&["progress"]);
        assert!(
            !progress.contains("sealed") && !progress.contains("has rated"),
            "{progress}"
        );
    }
}

#[test]
fn a_clock_that_lost_its_time_is_named_before_anything_is_dated_by_it() {
    if !faketime_or_skip() {
        return;
    }
    let d = Device::new();
    d.ok(&["init", "--name", "Quinn"]);
    d.ok(&["goal", "add", "Listen first", "--area", "communication"]);
    // A phone back at 1970 after its battery ran out, and one before 1970 (where the
    // time library panicked): each is named, with the way out, and nothing is written.
    for (at, shown) in [
        ("@1970-01-02 00:00:00", "1970-01-02"),
        ("@1969-12-25 10:00:00", "1969-12-25"),
    ] {
        let r = at_offset(&d, at, &["rate", "listen", "1"]);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(
            r.stderr
                .contains(&format!("this device's clock reads {shown}"))
                && r.stderr.contains("set the clock right"),
            "{}",
            r.stderr
        );
    }
    assert_eq!(ratings_of(&d), 0);
}

#[test]
fn a_clock_found_wrong_opens_no_seal_early_undoes_nothing_and_one_set_back_is_refused() {
    if !faketime_or_skip() {
        return;
    }
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    alex.ok(&["goal", "add", "Chores shared", "--area", "shared-vision"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    alex.ok(&["rate", "chores", "2"]);
    alex.ok(&["sync"]);
    // Ten days on by Alex's clock the round looks over: the sync that finds the clock
    // wrong sends no reveal, so Sam still rates blind.
    let synced = at_offset(&alex, "+10d", &["sync"]);
    assert!(synced.stderr.contains("10 days ahead"), "{synced:?}");
    sam.ok(&["sync"]);
    let progress = sam.ok(&["progress"]);
    assert!(
        progress.contains("Alex has rated; rate to see it"),
        "{progress}"
    );
    // Nor is "the latest act" picked by times that clock wrote.
    let undo = at_offset(&alex, "+10d", &["undo"]);
    assert_eq!(undo.code, 1, "{undo:?}");
    // A clock measured right, then set back two days (a battery that ran out): refused
    // though no sync has seen it yet.
    alex.ok(&["sync"]);
    let back = at_offset(&alex, "-2d", &["rate", "chores", "1", "--amend"]);
    assert_eq!(back.code, 1, "{back:?}");
    assert!(
        back.stderr.contains("clock went back 2 days"),
        "{}",
        back.stderr
    );
}

#[test]
fn a_clock_found_minutes_behind_and_set_right_rates_offline() {
    if !faketime_or_skip() {
        return;
    }
    let mut relay = Relay::start();
    let (alex, _sam) = pair(&relay);
    alex.ok(&["goal", "add", "Kind words daily", "--area", "communication"]);
    // The laptop ran 20 minutes behind at its latest sync.
    let synced = at_offset(&alex, "-20m", &["sync"]);
    assert!(
        synced.stderr.contains("20 minutes behind the relay's"),
        "{}",
        synced.stderr
    );
    // Its clock is set right, and the network is gone: a sync cannot measure it again,
    // and rating goes on (20 minutes are within what the rounds take).
    relay.kill();
    let before = ratings_of(&alex);
    alex.ok(&["rate", "kind", "1"]);
    let rated = ratings_of(&alex);
    assert!(rated > before);
    // Still 20 minutes behind: refused, as before.
    let refused = at_offset(&alex, "-20m", &["rate", "kind", "0"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert_eq!(ratings_of(&alex), rated);
}

#[test]
fn a_rating_dated_months_before_its_goal_was_made_is_refused() {
    if !faketime_or_skip() {
        return;
    }
    let d = Device::new();
    d.ok(&["init", "--name", "Quinn"]);
    d.ok(&["goal", "add", "Listen first", "--area", "communication"]);
    // A clock seven months behind (set by hand, or a battery reset to a date after
    // 2025): the rating would open the goal's progress before the goal existed.
    let r = at_offset(&d, "-210d", &["rate", "listen", "1"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("before this goal was made")
            && r.stderr.contains("set this device's clock right"),
        "{}",
        r.stderr
    );
    assert_eq!(ratings_of(&d), 0);
    // Minutes apart (two devices' clocks) are no concern.
    let r = at_offset(&d, "-10m", &["rate", "listen", "1"]);
    assert_eq!(r.code, 0, "{r:?}");
}

/// Alex's laptop, a month ahead, adds a goal before a sync finds its clock wrong: the
/// goal is dated a month on. Sam's device, whose clock its latest sync found right,
/// rates it (refusing would leave the goal unrated by both until its date).
#[test]
fn a_goal_dated_ahead_by_its_makers_clock_is_rated_by_a_partner_whose_clock_is_right() {
    if !faketime_or_skip() {
        return;
    }
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    let added = at_offset(
        &alex,
        "+30d",
        &["goal", "add", "Phones away", "--area", "intimacy"],
    );
    assert_eq!(added.code, 0, "{added:?}");
    at_offset(&alex, "+30d", &["sync"]);
    sam.ok(&["sync"]);
    let rated = sam.run(&["rate", "phones", "1"]);
    assert_eq!(rated.code, 0, "{rated:?}");
    assert!(ratings_of(&sam) > 0);
}

/// A check-in whose second answer is refused (its goal made after this device's clock
/// reads) rates nothing, as the refusal says: not the first goal either.
#[test]
fn a_checkin_refused_at_its_second_goal_rates_nothing() {
    if !faketime_or_skip() {
        return;
    }
    let d = Device::new();
    d.ok(&["init", "--name", "Quinn"]);
    let old = at_offset(
        &d,
        "-300d",
        &["goal", "add", "Walk together", "--area", "quality-time"],
    );
    assert_eq!(old.code, 0, "{old:?}");
    d.ok(&["goal", "add", "Listen first", "--area", "communication"]);
    let r = at_offset(
        &d,
        "-210d",
        &["checkin", "--rate", "walk=1", "--rate", "listen=1"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("nothing was written"), "{}", r.stderr);
    assert_eq!(ratings_of(&d), 0);
}

/// A rating given while the clock ran a month ahead counts as the latest until its date:
/// the report handed to a therapist says so (as `progress` and `history` do), and says the time zone
/// its times are in (two partners in two zones date one rating differently).
#[test]
fn the_report_marks_a_rating_dated_ahead_and_names_its_time_zone() {
    if !faketime_or_skip() {
        return;
    }
    let d = Device::new();
    d.ok(&["init", "--name", "Quinn"]);
    d.ok(&["goal", "add", "Listen first", "--area", "communication"]);
    let rated = at_offset(&d, "+30d", &["rate", "listen", "2"]);
    assert_eq!(rated.code, 0, "{rated:?}");
    // The history, where a couple reads when things happened, marks it as well.
    let history = d.ok(&["history"]);
    let line = history
        .lines()
        .find(|l| l.contains("rated"))
        .expect("the rating");
    assert!(
        line.ends_with("(dated ahead of this device's clock)"),
        "{history}"
    );
    let events = d.ok(&["--json", "history"]);
    let marked: Vec<bool> = events
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|e| e["dated_ahead"] == serde_json::json!(true))
        .collect();
    assert_eq!(marked.iter().filter(|m| **m).count(), 1, "{events}");
    // And the reflections, where a reflection's date is read.
    let wrote = at_offset(&d, "+30d", &["reflect", "From a clock ahead"]);
    assert_eq!(wrote.code, 0, "{wrote:?}");
    let listed = d.ok(&["reflections"]);
    assert!(
        listed.contains("(dated ahead of this device's clock):"),
        "{listed}"
    );
    assert_eq!(d.json(&["reflections"])[0]["dated_ahead"], true);
    let file = d.home.join("report.html");
    let path = file.to_str().expect("a UTF-8 path");
    let made = d.run_full(&["report", "--html", path], None, &[("TZ", "IST-5:30")]);
    assert_eq!(made.code, 0, "{made:?}");
    let html = std::fs::read_to_string(&file).expect("the report");
    assert!(html.contains("(dated ahead)"), "{html}");
    assert!(html.contains("id=\"dated-ahead\""), "{html}");
    assert!(
        html.contains("times are this device's (UTC+05:30)"),
        "{html}"
    );
}

/// The night a zone leaves daylight saving time repeats an hour: two ratings an hour
/// apart both read 01:30, so each carries its offset; a report over the change names
/// both offsets (it named the offset of the day it was made, an hour off for the rest).
#[test]
fn times_in_the_repeated_hour_carry_their_offset_and_a_report_names_both_offsets() {
    const LOS_ANGELES: (&str, &str) = ("TZ", "PST8PDT,M3.2.0,M11.1.0");
    let at = |when: &'static str| [LOS_ANGELES, ("DUET_NOW", when)];
    let d = Device::new();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let r = d.run_full(args, None, env);
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
        r.stdout
    };
    run(&["init", "--name", "Alex"], &at("2026-10-31T20:00:00Z"));
    run(
        &["goal", "add", "Date night", "--area", "intimacy"],
        &at("2026-10-31T20:00:00Z"),
    );
    // 01:30 in daylight saving time, then 01:30 again an hour later.
    run(&["rate", "date", "1"], &at("2026-11-01T08:30:00Z"));
    run(&["rate", "date", "0"], &at("2026-11-01T09:30:00Z"));
    // An ordinary hour carries nothing.
    run(&["rate", "date", "2"], &at("2026-11-02T18:00:00Z"));
    let shown = run(&["goal", "show", "date"], &at("2026-12-01T18:00:00Z"));
    for line in [
        "2026-11-01 01:30 UTC-07:00",
        "2026-11-01 01:30 UTC-08:00",
        "2026-11-02 10:00 ",
    ] {
        assert!(shown.contains(line), "{line}: {shown}");
    }
    assert!(!shown.contains("10:00 UTC"), "{shown}");
    let file = d.home.join("report.html");
    let path = file.to_str().expect("a UTF-8 path");
    run(&["report", "--html", path], &at("2026-12-01T18:00:00Z"));
    let html = std::fs::read_to_string(&file).expect("the report");
    assert!(
        html.contains(
            "times are this device's (UTC-07:00 or UTC-08:00: each time in its own date's offset"
        ),
        "{html}"
    );
    // Made before the change, with ratings dated after it (a clock that was ahead):
    // their offset is named too.
    run(&["report", "--html", path], &at("2026-11-01T07:00:00Z"));
    let html = std::fs::read_to_string(&file).expect("the report");
    assert!(
        html.contains("times are this device's (UTC-07:00 or UTC-08:00"),
        "{html}"
    );
}
