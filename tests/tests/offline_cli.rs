//! One partner using `duet` fully offline on one device, through the real binary.

use duet_tests::Device;

#[test]
fn one_partner_walks_through_goals_steps_ratings_reflections_and_exports_everything() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let added = d.json(&[
        "goal",
        "add",
        "Weekly check-in",
        "--area",
        "communication",
        "--why",
        "We drift apart when busy",
        "--expected",
        "30 minutes every Sunday",
        "--level",
        "-2=We do not talk",
        "--level",
        "-1=Less than 30 minutes",
        "--level",
        "1=Sunday and midweek",
        "--level",
        "+2=Twice a week and we plan together",
        "--due",
        "2027-03-01",
    ]);
    let goal = added["id"].as_str().expect("goal id").to_string();
    let prefix = &goal[..6];
    let step = d.json(&["step", "add", prefix, "Put a reminder in both calendars"]);
    let step = step["id"].as_str().expect("step id").to_string();
    d.ok(&["step", "done", "Weekly check-in", &step[..5]]);
    d.ok(&["rate", prefix, "-1", "--note", "We skipped one Sunday"]);
    // A note may start with a dash, as a list does.
    d.ok(&[
        "rate",
        "weekly check-in",
        "2",
        "--note",
        "- talked, - walked",
    ]);
    d.ok(&["reflect", "--goal", prefix, "Sunday felt good"]);
    d.run_with_stdin(
        &["reflect", "--private", "-"],
        Some("Only for me: I was scared\n"),
    )
    .ok();

    let list = d.ok(&["goal", "list"]);
    assert!(
        list.contains("Weekly check-in") && list.contains("1/1 steps"),
        "{list}"
    );
    let show = d.ok(&["goal", "show", prefix]);
    assert!(
        show.contains("Twice a week") && show.contains("We skipped one Sunday"),
        "{show}"
    );

    let export = d.json(&["export"]);
    let shared = &export["shared"];
    let g = &shared["goals"][0];
    assert_eq!(g["title"], "Weekly check-in");
    assert_eq!(g["area"], "communication");
    assert_eq!(g["why"], "We drift apart when busy");
    assert_eq!(g["due"], "2027-03-01");
    assert_eq!(g["status"], "active");
    assert_eq!(g["levels"]["-2"], "We do not talk");
    assert_eq!(g["levels"]["-1"], "Less than 30 minutes");
    assert_eq!(g["levels"]["0"], "30 minutes every Sunday");
    assert_eq!(g["levels"]["1"], "Sunday and midweek");
    assert_eq!(g["levels"]["2"], "Twice a week and we plan together");
    assert_eq!(g["steps"][0]["text"], "Put a reminder in both calendars");
    assert_eq!(g["steps"][0]["done"], true);
    let levels: Vec<i64> = shared["ratings"]
        .as_array()
        .expect("ratings")
        .iter()
        .map(|r| r["level"].as_i64().expect("level"))
        .collect();
    assert_eq!(levels, vec![-1, 2]);
    assert_eq!(shared["ratings"][0]["note"], "We skipped one Sunday");
    assert_eq!(shared["reflections"][0]["text"], "Sunday felt good");
    assert_eq!(shared["reflections"][0]["goal"], goal.as_str());
    // The private reflection lives only in the personal space.
    let text = export.to_string();
    assert_eq!(text.matches("Only for me: I was scared").count(), 1);
    assert_eq!(
        export["personal"]["reflections"][0]["text"],
        "Only for me: I was scared"
    );
    assert_eq!(shared["reflections"].as_array().expect("array").len(), 1);

    // SQL metacharacters are just text.
    let sql = "Robert'); DROP TABLE changes; -- \" OR 1=1";
    d.ok(&["goal", "add", sql, "--area", "other", "--why", sql]);
    d.ok(&["reflect", sql]);
    let export = d.json(&["export"]);
    assert_eq!(export["shared"]["goals"][1]["title"], sql);
    assert_eq!(export["shared"]["goals"][1]["why"], sql);
    assert!(d.ok(&["goal", "show", sql]).contains("DROP TABLE"));

    d.ok(&["goal", "status", prefix, "archived"]);
    assert!(!d.ok(&["goal", "list"]).contains("Weekly check-in"));
    assert!(d.ok(&["goal", "list", "--all"]).contains("archived"));
}

/// Every row of every table, to prove a failed command changed nothing.
fn snapshot(d: &Device) -> Vec<String> {
    duet_tests::dump_sqlite(&d.db())
}

fn assert_one_line_error_with_hint(r: &duet_tests::Run, code: i32, needle: &str) {
    assert_eq!(r.code, code, "exit code for {needle:?}: {r:?}");
    assert!(
        r.stderr.contains(needle),
        "stderr lacks {needle:?}: {}",
        r.stderr
    );
    assert_eq!(r.stderr.trim().lines().count(), 1, "one line: {}", r.stderr);
    assert!(r.stdout.is_empty(), "nothing on stdout: {}", r.stdout);
}

#[test]
fn a_rating_has_the_same_local_day_in_progress_goal_show_reflections_and_the_day_filters() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Hydration", "--area", "communication"]);
    // 20:00 UTC on the 22nd is 09:00 on the 23rd in Auckland.
    let auckland = |args: &[&str], now: Option<&str>| {
        let mut env = vec![("TZ", "Pacific/Auckland")];
        env.extend(now.map(|t| ("DUET_NOW", t)));
        d.ok_env(args, &env)
    };
    let morning = Some("2026-03-22T20:00:00Z");
    auckland(&["rate", "hydration", "1"], morning);
    auckland(&["reflect", "--goal", "hydration", "Drank more"], morning);
    let progress = auckland(&["progress"], None);
    assert!(progress.contains("on 2026-03-23"), "{progress}");
    let shown = auckland(&["goal", "show", "hydration"], None);
    assert!(shown.contains("2026-03-23 09:00"), "{shown}");
    assert!(
        shown
            .lines()
            .any(|l| l.contains("Drank more") && l.contains("2026-03-23")),
        "{shown}"
    );
    let reflections = auckland(&["reflections"], None);
    assert!(reflections.contains("2026-03-23 09:00"), "{reflections}");
    // The day filters take the same local days.
    let rated = |args: &[&str]| auckland(args, None).contains("rated");
    assert!(rated(&["history", "--since", "2026-03-23"]));
    assert!(rated(&["history", "--until", "2026-03-23"]));
    assert!(!rated(&["history", "--until", "2026-03-22"]));
    assert!(!rated(&["history", "--since", "2026-03-24"]));
}

#[test]
fn bad_input_gets_a_one_line_reason_and_hint_and_changes_nothing() {
    let d = Device::new();
    // Missing init.
    let r = d.run(&["goal", "list"]);
    assert_one_line_error_with_hint(&r, 1, "duet init --name NAME");

    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Weekly check-in", "--area", "communication"]);
    d.ok(&["goal", "add", "Weekend walk", "--area", "quality-time"]);
    // A second goal with the same title makes the title alone ambiguous.
    d.ok(&["goal", "add", "Weekend walk", "--area", "trust"]);
    let before = snapshot(&d);

    let r = d.run(&["rate", "Gardening", "1"]);
    assert_one_line_error_with_hint(&r, 1, "no goal matches \"Gardening\"");
    assert!(
        r.stderr.contains("Weekly check-in"),
        "lists the known goals: {}",
        r.stderr
    );

    // Neither a code nor --all: the usage error names both.
    let r = d.run(&["invite", "revoke"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("<CODE|--all>"), "{}", r.stderr);

    // An empty name is a typo, as an empty title is (exit 2).
    let r = d.run(&["rate", "", "1"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("an empty goal name"), "{}", r.stderr);

    let r = d.run(&["rate", "Weekend walk", "1"]);
    assert_one_line_error_with_hint(&r, 1, "matches several goals");
    assert_eq!(
        r.stderr.matches("Weekend walk").count(),
        3,
        "both candidates listed: {}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("titles are the same: give the start of the id"),
        "{}",
        r.stderr
    );
    let export = d.json(&["export"]);
    let ids: Vec<String> = export["shared"]["goals"]
        .as_array()
        .expect("goals")
        .iter()
        .map(|g| g["id"].as_str().expect("id").to_string())
        .collect();

    let r = d.run(&["rate", &ids[0][..8], "3"]);
    assert_eq!(r.code, 2, "level 3 is a usage error: {r:?}");
    assert!(r.stderr.contains("-2, -1, 0, 1 or 2"), "{}", r.stderr);

    // A level's text given twice: one would be lost, so neither is taken.
    for twice in [
        &["--expected", "bar", "--level", "0=foo"][..],
        &["--level", "1=first", "--level", "1=second"][..],
    ] {
        let mut args = vec!["goal", "add", "Level test", "--area", "trust"];
        args.extend_from_slice(twice);
        let r = d.run(&args);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.stderr.contains("was given twice"), "{}", r.stderr);
    }
    assert!(!d.ok(&["goal", "list"]).contains("Level test"));

    // A malformed argument is a usage error wherever it is given (a text longer than
    // the document holds too); a name nothing answers to is a failure.
    let too_long = "t".repeat(100_001);
    for (args, code) in [
        (&["goal", "add", &too_long, "--area", "trust"][..], 2),
        (&["step", "add", &ids[0][..8], &too_long], 2),
        (&["goal", "add", "  ", "--area", "trust"][..], 2),
        (
            &["goal", "add", "X", "--area", "trust", "--due", "2026-02-30"],
            2,
        ),
        (&["goal", "edit", &ids[0][..8], "--due", "tomorrow"], 2),
        (&["goal", "edit", &ids[0][..8], "--weight", "0"], 2),
        (&["goal", "edit", &ids[0][..8], "--weight", "1e9"], 2),
        (&["goal", "edit", &ids[0][..8], "--weight", "NaN"], 2),
        (&["checkin", "--rate", "walk"], 2),
        (&["step", "add", &ids[0][..8], "   "], 2),
        (&["reflect", "  "], 2),
        (&["init", "--name", " "], 2),
        (&["rate", "xyzzy", "1"], 1),
        (&["invite", "revoke", "ffffffff"], 1),
    ] {
        let r = d.run(args);
        assert_eq!(r.code, code, "{args:?}: {}", r.stderr);
    }
    assert_eq!(
        d.json(&["goal", "list"]).as_array().map(Vec::len),
        Some(ids.len())
    );

    // A blank reflection is a usage error whether given as an argument or piped in.
    for stdin in [None, Some("  \n")] {
        let args: &[&str] = if stdin.is_some() {
            &["reflect", "-"]
        } else {
            &["reflect", " "]
        };
        let r = d.run_with_stdin(args, stdin);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
    }
    let r = d.run_with_stdin(&["reflect", "-"], Some(&too_long));
    assert_eq!(r.code, 2, "a reflection too long, piped in: {}", r.stderr);

    let r = d.run(&["goal", "add", "X", "--area", "romance"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("communication"),
        "lists the areas: {}",
        r.stderr
    );

    let r = d.run(&["goal", "add", "X", "--area", "trust", "--due", "next week"]);
    assert_one_line_error_with_hint(&r, 2, "YYYY-MM-DD");
    // Written right but not in the calendar: said so, not "write it as YYYY-MM-DD".
    let r = d.run(&["history", "--since", "2026-02-30"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("not a day of the calendar"),
        "{}",
        r.stderr
    );
    // A year of two digits is not the year 27 (a goal due two thousand years ago, a
    // filter that matches everything); a day before 1970 holds nothing.
    for args in [
        &["goal", "add", "X", "--area", "trust", "--due", "27-06-30"][..],
        &["history", "--since", "26-12-07"],
        &["history", "--until", "+2026-12-07"],
        &["report", "--html", "r.html", "--since", "1969-12-31"],
    ] {
        let r = d.run(args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(
            r.stderr.contains("YYYY-MM-DD") || r.stderr.contains("before 1970"),
            "{args:?}: {}",
            r.stderr
        );
    }
    // A round's length without its unit names the units a round can have.
    let r = d.run(&["checkin", "--rate", "x=0", "--period", "2"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("like 12h, 3d or 2w") && !r.stderr.contains("sec"),
        "{}",
        r.stderr
    );
    // East of UTC, 1970-01-01 starts before the clock's zero: the report starts there,
    // not at "an impossible time".
    let file = d.home.join("since-1970.html");
    let path = file.to_str().expect("a UTF-8 path");
    let r = d.run_full(
        &["report", "--html", path, "--since", "1970-01-01"],
        None,
        &[("TZ", "IST-5:30")],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let html = std::fs::read_to_string(&file).expect("the report");
    assert!(!html.contains("impossible"), "{html}");
    assert!(html.contains("1970-01-01"), "{html}");

    let r = d.run(&["init", "--name", "Alex again"]);
    assert_one_line_error_with_hint(&r, 1, "already has a duet identity");

    assert_eq!(snapshot(&d), before, "failed commands changed nothing");

    // Windows line ends piped in are stored as the app stores them: no `\r` left.
    d.run_with_stdin(
        &["reflect", "-"],
        Some("Written on Windows\r\nsecond line\r\n"),
    )
    .ok();
    let texts = d.json(&["reflections"]).to_string();
    assert!(
        texts.contains("Written on Windows\\nsecond line") && !texts.contains("\\r"),
        "{texts}"
    );
}

/// A couple who archived "Weekly check-in" and began it again: its title names the one
/// being rated (each command that names a goal by its title refused, and said to type
/// more of a title typed whole).
#[test]
fn a_goal_begun_again_after_archiving_is_named_by_its_title() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Weekly check-in", "--area", "communication"]);
    d.ok(&["goal", "status", "weekly", "archived"]);
    d.ok(&["goal", "add", "Weekly check-in", "--area", "communication"]);
    let again = d.json(&["goal", "list"])[0]["id"]
        .as_str()
        .expect("the goal begun again")
        .to_string();
    d.ok(&["rate", "Weekly check-in", "1"]);
    d.ok(&["checkin", "--rate", "weekly=2"]);
    d.ok(&["step", "add", "weekly", "Put it in the calendar"]);
    let shown = d.json(&["goal", "show", "weekly"]);
    assert_eq!(shown["id"].as_str(), Some(again.as_str()), "{shown}");
    let levels: Vec<i64> = shown["ratings"]
        .as_array()
        .expect("ratings")
        .iter()
        .filter_map(|r| r["level"].as_i64())
        .collect();
    assert_eq!(levels, vec![1, 2], "{shown}");
    assert_eq!(shown["steps"].as_array().map(Vec::len), Some(1), "{shown}");
    // Begun a third time, the two not archived need their ids; the error says which
    // one is archived.
    d.ok(&["goal", "add", "Weekly check-in", "--area", "trust"]);
    let r = d.run(&["rate", "weekly", "0"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("\"Weekly check-in\" (archived)"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_corrupt_database_gives_a_clear_error_and_is_not_overwritten() {
    let d = Device::new();
    std::fs::create_dir_all(&d.home).expect("home");
    std::fs::write(d.db(), b"definitely not sqlite, but precious").expect("write");
    let r = d.run(&["goal", "list"]);
    assert_one_line_error_with_hint(&r, 1, "damaged or not a duet database");
    assert!(
        r.stderr.contains("duet restore FILE --home DIR"),
        "the error points to the way back: {}",
        r.stderr
    );
    let r = d.run(&["init", "--name", "Alex"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        std::fs::read(d.db()).expect("db"),
        b"definitely not sqlite, but precious"
    );
}

#[test]
fn a_home_given_as_the_store_file_names_the_directory_instead() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let file = Device::at(d.db());
    for args in [&["goal", "list"][..], &["init", "--name", "Alex"]] {
        let r = file.run(args);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(
            r.stderr
                .contains("is a file; the home is the directory that holds duet.db")
                && r.stderr.contains(&d.home.display().to_string()),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("duet init"), "{}", r.stderr);
    }
}

#[test]
fn a_damaged_page_in_a_working_store_is_said_with_the_way_back() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Walk", "--area", "trust"]);
    // Everything in the main file, then one of its pages overwritten, as a failing disk
    // would: the store opens, and reading that table fails.
    {
        let c = rusqlite::Connection::open(d.db()).expect("open");
        c.pragma_update(None, "wal_checkpoint", "TRUNCATE")
            .expect("checkpoint");
    }
    let mut bytes = std::fs::read(d.db()).expect("db");
    assert!(bytes.len() > 8192, "{} bytes", bytes.len());
    for b in &mut bytes[8192..12288] {
        *b = 0xff;
    }
    std::fs::write(d.db(), &bytes).expect("damage");
    let r = d.run(&["status"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("damaged"), "{}", r.stderr);
    assert!(
        r.stderr.contains("duet restore FILE --home DIR"),
        "the error points to the way back: {}",
        r.stderr
    );
}

/// A stored snapshot damaged on disk (a failing disk, a flipped bit) is only a shortcut:
/// every change it covers is stored, and the document loads from them; a write and a
/// backup still work. Damaged changes as well are said with the way back.
#[test]
fn a_damaged_snapshot_loads_from_the_changes_and_damaged_changes_say_the_way_back() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    // Three long reflections pass the bytes after which a snapshot is written; it is
    // written by the next write that loads the document (a reflection is written on the
    // stored tip).
    for n in 0..3 {
        d.ok(&["reflect", &format!("{n} {}", "long words ".repeat(9000))]);
    }
    d.ok(&["goal", "add", "Walk", "--area", "trust"]);
    let db = rusqlite::Connection::open(d.db()).expect("open");
    let snapshots: Vec<(String, Vec<u8>)> = db
        .prepare("SELECT space, bytes FROM snapshots")
        .and_then(|mut q| q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .expect("the snapshots");
    assert!(!snapshots.is_empty(), "a snapshot was written");
    for (space, mut bytes) in snapshots {
        for b in bytes.iter_mut().skip(40).take(64) {
            *b ^= 0x5a;
        }
        db.execute(
            "UPDATE snapshots SET bytes = ?2 WHERE space = ?1",
            rusqlite::params![space, bytes],
        )
        .expect("damage a snapshot");
    }
    d.ok(&["reflect", "Written after the damage"]);
    assert!(d.ok(&["reflections"]).contains("Written after the damage"));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("alex.duetbackup");
    let file = file.to_str().expect("utf-8 path");
    d.run_with_stdin(
        &["backup", file, "--passphrase-fd", "0"],
        Some("a long enough passphrase"),
    )
    .ok();
    db.execute("UPDATE snapshots SET bytes = zeroblob(length(bytes))", [])
        .expect("damage the snapshots");
    db.execute("UPDATE changes SET bytes = zeroblob(length(bytes))", [])
        .expect("damage the changes");
    drop(db);
    let r = d.run(&["reflect", "Nowhere to go"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("damaged") && r.stderr.contains("duet restore FILE --home DIR"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_empty_duet_home_counts_as_unset_and_an_empty_home_flag_is_refused() {
    let user = tempfile::tempdir().expect("tempdir");
    let blank = Device::at(std::path::PathBuf::new());
    let mut cmd = blank.command(&["init", "--name", "Alex"]);
    cmd.env("HOME", user.path()).env_remove("XDG_DATA_HOME");
    let r = duet_tests::Run::from(cmd.output().expect("duet runs"));
    r.ok();
    assert!(
        user.path().join(".local/share/duet").is_dir(),
        "`DUET_HOME=` uses the platform data directory, as if unset: {r:?}"
    );
    let d = Device::new();
    let r = d.run(&["status", "--home", ""]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--home is empty"), "{}", r.stderr);
    assert!(!d.home.exists(), "nothing is made for an empty --home");
}

#[test]
fn a_home_that_cannot_be_written_gives_a_clear_error() {
    let d = Device::new();
    // A home path below a regular file can never be created, whoever runs the test
    // (permission bits do not stop root, a file in the way does).
    let parent = d.home.parent().expect("parent").join("not-a-dir");
    std::fs::create_dir_all(parent.parent().expect("p")).expect("dir");
    std::fs::write(&parent, b"x").expect("file");
    let blocked = Device::at(parent.join("home"));
    let r = blocked.run(&["init", "--name", "Alex"]);
    assert_one_line_error_with_hint(&r, 1, "check the permissions of --home / DUET_HOME");
    assert_eq!(std::fs::read(&parent).expect("file"), b"x");
}

#[test]
fn help_and_version_work_and_show_examples() {
    let d = Device::new();
    let help = d.ok(&["--help"]);
    assert!(
        help.contains("Examples:") && help.contains("duet rate"),
        "{help}"
    );
    assert!(d.ok(&["--version"]).starts_with("duet "));
    let r = d.run(&["frobnicate"]);
    assert_eq!(r.code, 2);
    // `--color` governs the help and the usage errors too (clap prints them itself).
    let coloured = d.run(&["--color", "always", "rat"]);
    assert_eq!(coloured.code, 2);
    assert!(coloured.stderr.contains("\x1b["), "{:?}", coloured.stderr);
    assert!(
        coloured.stderr.contains("rate"),
        "a suggestion: {}",
        coloured.stderr
    );
    let plain = d.run(&["--color=never", "rat"]);
    assert!(!plain.stderr.contains('\x1b'), "{:?}", plain.stderr);
}

#[test]
fn progress_shows_both_levels_sparklines_and_t_scores_with_colour_only_when_wanted() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Weekly check-in", "--area", "communication"]);
    for level in ["-2", "0", "2"] {
        d.ok(&["rate", "Weekly check-in", level]);
    }
    let plain = d.ok(&["progress", "--color", "never"]);
    assert!(plain.contains("Alex") && plain.contains("▁▄█"), "{plain}");
    assert!(
        plain.contains("GAS T-score") && plain.contains("Alex 70.0"),
        "{plain}"
    );
    assert!(
        !plain.contains('\u{1b}'),
        "no escape codes with --color never"
    );
    let coloured = d.ok(&["progress", "--color", "always"]);
    assert!(
        coloured.contains("\u{1b}["),
        "escape codes with --color always"
    );
    // Not a terminal (the test captures stdout) and NO_COLOR set by the helper: plain.
    assert!(!d.ok(&["progress"]).contains('\u{1b}'));
    let json = d.json(&["progress"]);
    assert_eq!(json["t_score"]["by_person"][d.person_id()], 70.0);
    assert_eq!(json["goals"][0]["partners"][0]["latest"], 2);
}

#[test]
fn quiet_reading_commands_print_nothing() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Weekly check-in", "--area", "communication"]);
    d.ok(&["rate", "Weekly check-in", "1", "--note", "good"]);
    let html = d.home.join("report.html");
    let html = html.to_str().expect("utf-8 path");
    for args in [
        &["goal", "list"][..],
        &["goal", "show", "Weekly check-in"],
        &["history"],
        &["progress"],
        &["export"],
        &["status"],
        &["device", "list"],
        &["report", "--html", html],
    ] {
        let mut quiet = vec!["--quiet"];
        quiet.extend_from_slice(args);
        assert!(!d.ok(args).is_empty(), "{args:?} prints without --quiet");
        assert_eq!(d.ok(&quiet), "", "{quiet:?} prints nothing");
    }
}

#[test]
fn lists_clip_long_titles_and_show_and_json_keep_them_whole() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let title = format!("Walk {}", "t".repeat(10_000));
    let id = d.json(&["goal", "add", &title, "--area", "trust"])["id"]
        .as_str()
        .expect("goal id")
        .to_string();
    let list = d.ok(&["goal", "list"]);
    let line = list.lines().next().expect("one goal listed");
    assert!(
        line.contains(&format!("Walk {}…", "t".repeat(54))),
        "{line}"
    );
    assert!(line.chars().count() < 200, "clipped: {line}");
    assert!(
        line.ends_with("(0/0 steps)"),
        "what follows stays in view: {line}"
    );
    assert_eq!(d.json(&["goal", "show", &id])["title"], title.as_str());
    assert_eq!(d.json(&["goal", "list"])[0]["title"], title.as_str());
    assert!(d.ok(&["goal", "show", &id]).contains(&title));
    d.ok(&["rate", "walk", "1"]);
    let progress = d.ok(&["progress"]);
    assert!(
        progress.lines().all(|l| l.chars().count() < 200),
        "progress cuts it too: {progress}"
    );
    let history = d.ok(&["history"]);
    assert!(
        history.lines().all(|l| l.chars().count() <= 160),
        "history cuts its lines at 160 columns: {history}"
    );
    assert!(history.contains("Alex rated \"Walk tttt"), "{history}");
    let full = d.ok(&["history", "--full"]);
    assert!(full.contains(&title), "--full gives lines whole");
    let lines = d.ok(&["history", "--json"]);
    let whole = lines.lines().any(|l| {
        serde_json::from_str::<serde_json::Value>(l).expect("JSON Lines")["goal_title"]
            == title.as_str()
    });
    assert!(whole, "--json keeps the title whole");
}

#[test]
fn a_second_goal_with_a_title_already_taken_is_added_and_said() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let first = d.json(&["goal", "add", "Walk", "--area", "trust"])["id"]
        .as_str()
        .expect("id")
        .to_string();
    let run = d.run(&["goal", "add", "walk ", "--area", "other"]);
    run.ok();
    assert!(
        run.stderr.contains("another goal has this title too") && run.stderr.contains(&first[..8]),
        "{}",
        run.stderr
    );
    // A title of its own says nothing.
    let run = d.run(&["goal", "add", "Talk", "--area", "other"]);
    run.ok();
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    // Retitled to a title another goal has: said as well.
    let run = d.run(&["goal", "edit", "talk", "--title", "WALK"]);
    run.ok();
    assert!(
        run.stderr.contains("another goal has this title too") && run.stderr.contains(&first[..8]),
        "{}",
        run.stderr
    );
}

#[test]
fn a_rating_given_while_the_clock_was_a_year_ahead_is_marked_and_replaced_with_amend() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&[
        "goal",
        "add",
        "Talk every evening",
        "--area",
        "communication",
    ]);
    let next_year = (duet_testkit::now_ms() + 400 * 86_400_000).to_string();
    d.ok_env(&["rate", "talk", "1"], &[("DUET_NOW", &next_year)]);

    // Today's rating is not the latest: the one dated next year is, and both say so.
    let rated = d.ok(&["rate", "talk", "-2"]);
    assert!(
        rated.contains("still the +1 dated") && rated.contains("--amend"),
        "{rated}"
    );
    let shown = d.ok(&["progress"]);
    assert!(shown.contains("latest +1"), "{shown}");
    assert!(
        shown.contains("dated ahead of this device's clock"),
        "{shown}"
    );
    let json = d.json(&["progress"]);
    assert_eq!(
        json["goals"][0]["partners"][0]["dated_ahead"], true,
        "{json}"
    );

    // The correction replaces the misdated rating; nothing is marked any more.
    let amended = d.ok(&["rate", "talk", "-1", "--amend"]);
    assert!(!amended.contains("dated"), "{amended}");
    let shown = d.ok(&["progress"]);
    assert!(shown.contains("latest -1"), "{shown}");
    assert!(!shown.contains("dated ahead"), "{shown}");
}

#[test]
fn editing_the_last_reflection_means_the_shared_one_unless_private_is_said() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["reflect", "Sunday talk went well, I felt heard"]);
    d.ok(&["reflect", "--private", "I still worry about money talks"]);

    // The private note is newer, but `last` of an edit means the newest shared one.
    let edited = d.ok(&[
        "reflect",
        "--edit",
        "last",
        "Sunday talk went well, I felt really heard",
    ]);
    assert!(edited.contains("shared reflection"), "{edited}");
    let shared = d.ok(&["reflections"]);
    assert!(shared.contains("I felt really heard"), "{shared}");
    let private = d.ok(&["reflections", "--private"]);
    assert!(
        private.contains("I still worry about money talks"),
        "{private}"
    );

    let edited = d.ok(&[
        "reflect",
        "--edit",
        "last",
        "--private",
        "Money talks scare me less",
    ]);
    assert!(edited.contains("private reflection"), "{edited}");
    let withdrawn = d.json(&["reflect", "--withdraw", "last", "--private"]);
    assert_eq!(withdrawn["private"], true, "{withdrawn}");
    let private = d.ok(&["reflections", "--private"]);
    assert!(!private.contains("Money talks"), "{private}");
    assert!(
        private.contains("No private reflections (none written yet, or every one withdrawn)"),
        "{private}"
    );
    let shared = d.ok(&["reflections"]);
    assert!(shared.contains("I felt really heard"), "{shared}");
}

/// `undo` right after an edit takes the edit back (the words before it, written again),
/// not the whole reflection: a withdrawal cannot be brought back. The edit of an older
/// reflection is taken back the same way, not the newest reflection withdrawn.
#[test]
fn undo_after_an_edit_takes_the_edit_back_and_keeps_the_reflection() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["reflect", "An older one"]);
    d.ok(&["reflect", "First words"]);
    d.ok(&["reflect", "--edit", "last", "Corrected words"]);
    let undone = d.ok(&["undo"]);
    assert!(
        undone.contains("Took back your edit") && undone.contains("\"First words\" again"),
        "{undone}"
    );
    let shared = d.ok(&["reflections"]);
    assert!(
        shared.contains("First words") && !shared.contains("Corrected words"),
        "{shared}"
    );
    // The history tells the edit and its taking back apart (two "edited" lines read as
    // two edits).
    let history = d.ok(&["history"]);
    assert_eq!(
        history.matches("edited a reflection").count(),
        1,
        "{history}"
    );
    assert_eq!(
        history.matches("took back an edit of a reflection").count(),
        1,
        "{history}"
    );
    // An older reflection edited last: its edit is the act taken back.
    let older = d.json(&["reflections"])[0]["id"]
        .as_str()
        .expect("the older reflection's id")
        .to_string();
    d.ok(&["reflect", "--edit", &older, "An older one, reworded"]);
    let undone = d.json(&["undo"]);
    assert_eq!(undone["edit"], true, "{undone}");
    assert_eq!(undone["restored"], "An older one", "{undone}");
    assert_eq!(undone["id"], older.as_str(), "{undone}");
    // A private reflection likewise.
    d.ok(&["reflect", "--private", "Mine alone"]);
    d.ok(&["reflect", "--edit", "last", "--private", "Mine, reworded"]);
    let undone = d.ok(&["undo"]);
    assert!(undone.contains("private reflection"), "{undone}");
    let private = d.ok(&["reflections", "--private"]);
    assert!(
        private.contains("Mine alone") && !private.contains("reworded"),
        "{private}"
    );
    let shared = d.ok(&["reflections"]);
    assert!(
        shared.contains("An older one") && shared.contains("First words"),
        "{shared}"
    );
    // A reply is named as one.
    d.ok(&["reflect", "--reply", &older, "And one more thing"]);
    let undone = d.ok(&["undo"]);
    assert!(undone.contains("Withdrew your reply"), "{undone}");
}

/// A withdrawal asked for cannot be taken back, and `undo` right after it must not take
/// back something older in its place (it withdrew the reflection before); a withdrawal
/// `undo` made is an act taken back, and the next `undo` goes on to the one before.
#[test]
fn undo_after_a_withdrawal_takes_back_nothing_older_in_its_place() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["reflect", "X one"]);
    d.ok(&["reflect", "Y two"]);
    d.ok(&["reflect", "--withdraw", "last"]);
    let refused = d.run(&["undo"]);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(
        refused.stderr.contains("a withdrawal cannot be taken back"),
        "{}",
        refused.stderr
    );
    assert!(d.ok(&["reflections"]).contains("X one"));
    // Undo after undo: each takes back the act before, down to that withdrawal.
    d.ok(&["reflect", "Z three"]);
    d.ok(&["reflect", "W four"]);
    assert!(d.ok(&["undo"]).contains("W four"));
    assert!(d.ok(&["undo"]).contains("Z three"));
    let again = d.run(&["undo"]);
    assert!(
        again.code != 0 && again.stderr.contains("a withdrawal cannot be taken back"),
        "{again:?}"
    );
    assert!(d.ok(&["reflections"]).contains("X one"));
}

/// Undo after undo goes back in time, edits included: an edit taken back is not taken
/// back again (the words would flip back and forth), the next `undo` goes on to the
/// edit before it, then to the writing; and a reflection whose only edit was taken back
/// no longer says it was edited.
#[test]
fn undo_after_undo_of_an_edit_goes_on_to_the_act_before_it() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["reflect", "An older one"]);
    d.ok(&["reflect", "First words"]);
    d.ok(&["reflect", "--edit", "last", "Second words"]);
    d.ok(&["reflect", "--edit", "last", "Third words"]);
    assert!(d.ok(&["undo"]).contains("\"Second words\" again"));
    let listed = d.ok(&["reflections"]);
    assert!(
        listed.contains("Second words") && listed.contains("(edited)"),
        "{listed}"
    );
    assert!(d.ok(&["undo"]).contains("\"First words\" again"));
    let listed = d.ok(&["reflections"]);
    assert!(
        listed.contains("First words") && !listed.contains("(edited)"),
        "{listed}"
    );
    assert!(
        d.json(&["reflections"])
            .as_array()
            .expect("a list")
            .iter()
            .all(|r| r["edited_at"].is_null()),
        "{listed}"
    );
    let withdrew = d.ok(&["undo"]);
    assert!(withdrew.contains("First words"), "{withdrew}");
    let listed = d.ok(&["reflections"]);
    assert!(
        listed.contains("An older one") && !listed.contains("words"),
        "{listed}"
    );
    // The history keeps every edit, and says which were taken back.
    let history = d.ok(&["history"]);
    assert_eq!(
        history.matches("edited a reflection").count(),
        2,
        "{history}"
    );
    assert_eq!(
        history.matches("took back an edit of a reflection").count(),
        2,
        "{history}"
    );
}

#[test]
fn a_note_or_prompt_past_the_limit_is_named_and_nothing_is_written() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Walks", "--area", "trust"]);
    let long = "c".repeat(100_001);
    let rated = d.run(&["rate", "Walks", "1", "--note", &long]);
    assert_eq!(rated.code, 2, "{}", rated.stderr);
    assert!(
        rated.stderr.contains("the note (--note) may have at most"),
        "{}",
        rated.stderr
    );
    let reflected = d.run(&["reflect", "--prompt", &long, "Short words"]);
    assert_eq!(reflected.code, 2, "{}", reflected.stderr);
    assert!(
        reflected.stderr.contains("the prompt (--prompt)"),
        "{}",
        reflected.stderr
    );
    assert_eq!(d.json(&["reflections"]).as_array().map(Vec::len), Some(0));
    assert!(d.json(&["progress"])["goals"][0]["partners"][0]["latest"].is_null());
}

#[test]
fn a_blank_prompt_is_no_prompt() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["reflect", "--prompt", "  ", "We talked"]);
    d.ok(&["reflect", "--prompt", "What went well?", "We listened"]);
    let listed = d.json(&["reflections"]);
    assert_eq!(listed[0]["prompt"], serde_json::Value::Null, "{listed}");
    assert_eq!(listed[1]["prompt"], "What went well?", "{listed}");
    // The text form shows the prompt a reflection answers, and no empty one.
    let text = d.ok(&["reflections"]);
    assert!(
        text.contains("  (What went well?)\n  We listened"),
        "{text}"
    );
    assert!(!text.contains("()"), "{text}");
}

#[test]
fn undo_after_a_correction_brings_back_the_rating_it_corrected() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Kind words", "--area", "intimacy"]);
    let latest = |d: &Device| d.json(&["progress"])["goals"][0]["partners"][0]["latest"].clone();
    d.ok(&["rate", "kind", "1"]);
    d.ok(&["rate", "kind", "2", "--amend"]);
    assert_eq!(latest(&d), 2);
    // The goal's page marks it, as the history and the export do.
    let shown = d.ok(&["goal", "show", "kind"]);
    let rated = shown
        .lines()
        .find(|l| l.contains("Alex"))
        .expect("the rating");
    assert!(rated.contains("+2  (corrected)"), "{shown}");
    // Undo names what it took back: the goal's title and the level.
    let said = d.ok(&["undo"]);
    assert!(
        said.contains("rating of \"Kind words\"") && said.contains(": +2 (much more"),
        "{said}"
    );
    assert!(
        said.contains("it corrected your earlier rating, +1, which counts again"),
        "and what counts again: {said}"
    );
    assert_eq!(latest(&d), 1, "undoing the correction restores +1");
    d.ok(&["undo"]);
    assert_eq!(
        latest(&d),
        serde_json::Value::Null,
        "then the rating itself goes"
    );
}

#[test]
fn a_weight_of_zero_is_refused_and_other_weights_are_shown() {
    let d = Device::new();
    d.ok(&["init", "--name", "Mo"]);
    d.ok(&["goal", "add", "Hugs", "--area", "intimacy"]);
    let r = d.run(&["goal", "edit", "hugs", "--weight", "0"]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stderr.contains("more than 0") && r.stderr.contains("paused"),
        "{}",
        r.stderr
    );
    assert!(!d.ok(&["goal", "show", "hugs"]).contains("weights"));

    d.ok(&["goal", "edit", "hugs", "--weight", "2.5"]);
    let shown = d.ok(&["goal", "show", "hugs"]);
    assert!(shown.contains("weights: Mo 2.5"), "{shown}");
}

#[test]
fn acts_that_change_nothing_or_are_shown_nowhere_say_so() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Date night", "--area", "quality-time"]);
    let r = d.run(&["rate", "date", "1", "--amend"]);
    assert!(
        r.stderr
            .contains("no rating of yours of goal \"Date night\" that counts"),
        "{}",
        r.stderr
    );
    let r = d.run(&["reflect", "--reply", "last", "Thank you"]);
    assert!(
        r.stderr.contains("no shared reflection to answer yet"),
        "{}",
        r.stderr
    );
    // `last` answers the partner: with only one's own written, it names none.
    d.ok(&["reflect", "We should book earlier"]);
    let r = d.run(&["reflect", "--reply", "last", "Talking to myself"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("your partner has written no shared reflection yet"),
        "{}",
        r.stderr
    );
    assert!(!d.ok(&["reflections"]).contains("Talking to myself"));

    d.ok(&["step", "add", "date", "Book a table"]);
    let reopened = d.ok(&["step", "reopen", "date", "book"]);
    assert!(
        reopened.contains("was not done; nothing changed"),
        "{reopened}"
    );
    assert_eq!(
        d.json(&["step", "reopen", "date", "book"])["changed"],
        false
    );

    d.ok(&["goal", "status", "date", "archived"]);
    let rated = d.ok(&["rate", "date", "1"]);
    assert!(rated.contains("is paused or archived"), "{rated}");
}

/// A damaged byte in a row SQLite still reads, in a table derived from the document (a
/// reflection's row here): the command that meets it fails saying so and to run it again,
/// and the next one rebuilds the tables from the document, with nothing lost.
#[test]
fn a_damaged_row_of_the_tables_derived_from_the_document_is_rebuilt_by_the_next_command() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["reflect", "Canary-77 kept in the document"]);
    let conn = rusqlite::Connection::open(d.home.join("duet.db")).expect("the store");
    conn.execute("UPDATE rm_reflections SET json = substr(json, 1, 20)", [])
        .expect("a damaged row");
    drop(conn);
    let failed = d.run(&["reflections"]);
    assert_eq!(failed.code, 3, "{failed:?}");
    assert!(
        failed.stderr.contains("run this one again"),
        "{}",
        failed.stderr
    );
    assert!(d.ok(&["reflections"]).contains("Canary-77"));
}

/// A store file cut off before anything was written to it holds no device: it is named
/// so, with the advice to restore, not taken for a home to set up (and reading it writes
/// nothing into it), and a restore refuses it without calling it a device.
#[test]
fn an_empty_store_file_is_named_as_cut_off_not_as_a_home_to_set_up() {
    let d = Device::new();
    std::fs::create_dir_all(&d.home).expect("the home");
    let db = d.home.join("duet.db");
    std::fs::write(&db, b"").expect("an empty store");
    let r = d.run(&["status"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("is empty") && r.stderr.contains("duet restore"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("duet init"), "{}", r.stderr);
    assert_eq!(std::fs::metadata(&db).expect("the store").len(), 0);
    let restore = d.run_with_stdin(
        &["restore", "backup.duetbackup", "--passphrase-fd", "0"],
        Some("correct horse battery staple\n"),
    );
    assert_ne!(restore.code, 0);
    assert!(
        !restore.stderr.contains("holds a duet device"),
        "{}",
        restore.stderr
    );
}

/// A setup killed before its first commit (Ctrl-C in `duet init`'s first milliseconds,
/// the app closed while setting up) leaves an empty store beside the setup's mark: the
/// next command clears it, and the home is one never set up, not a store to restore.
#[test]
fn a_setup_killed_before_it_wrote_anything_leaves_a_home_that_sets_up_again() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    assert!(
        !d.home.join("duet.setting-up").exists(),
        "a setup that ended takes its mark away"
    );

    // What the killed setup leaves: its mark, then the empty database file.
    let killed = Device::new();
    std::fs::create_dir_all(&killed.home).expect("the home");
    std::fs::write(killed.home.join("duet.setting-up"), b"").expect("the mark");
    std::fs::write(killed.home.join("duet.db"), b"").expect("an empty store");
    let r = killed.run(&["status"]);
    assert!(
        r.stderr.contains("duet init") && !r.stderr.contains("is empty"),
        "{r:?}"
    );
    assert!(!killed.home.join("duet.db").exists());
    assert!(!killed.home.join("duet.setting-up").exists());
    killed.ok(&["init", "--name", "Sam"]);
    killed.ok(&["goal", "add", "Walk", "--area", "trust"]);
    assert!(killed.ok(&["goal", "list"]).contains("Walk"));
}

#[test]
fn a_parse_deadline_that_is_no_number_is_refused_before_anything_is_read() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let r = d.run_full(&["status"], None, &[("DUET_PARSE_DEADLINE_MS", "3s")]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("DUET_PARSE_DEADLINE_MS must be milliseconds"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_empty_goal_list_speaks_of_other_goals_only_when_there_are_some() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let empty = d.ok(&["goal", "list"]);
    assert!(
        empty.contains("No goals yet") && !empty.contains("--all"),
        "{empty}"
    );
    d.ok(&["goal", "add", "Walk", "--area", "trust"]);
    d.ok(&["goal", "status", "Walk", "paused"]);
    let paused = d.ok(&["goal", "list"]);
    assert!(
        paused.contains("goal list --all` shows the others"),
        "{paused}"
    );
}

/// What cannot be saved as typed is a typo (exit 2) and changes nothing: a title or a
/// reflection of invisible characters only (it would print as nothing), a due date of a
/// five-digit year (no reader takes it: the goal would vanish on both devices), a note
/// for a goal not rated in the same check-in, an empty goal name, and bytes that are
/// not text on standard input.
#[test]
fn text_that_shows_nothing_or_cannot_be_read_back_is_a_typo_and_changes_nothing() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Weekly check-in", "--area", "communication"]);
    let before = snapshot(&d);
    for args in [
        &["goal", "add", "\u{200b}\u{2060}\u{feff}", "--area", "trust"][..],
        &["goal", "edit", "weekly", "--title", "\u{200b}"],
        &["reflect", "\u{200b} \u{200d}"],
        &["goal", "edit", "weekly", "--due", "+10000-01-01"],
        &["checkin", "--rate", "weekly=1", "--note", "nosuch=late"],
        &["rate", "", "1"],
        &["step", "add", " ", "Book a table"],
    ] {
        let r = d.run(args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
    }
    let mut stdin_reflection =
        duet_tests::duet_command(&duet_tests::bin("duet"), &d.home, &["reflect", "-"]);
    let mut child = stdin_reflection
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("duet runs");
    {
        use std::io::Write;
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(b"not text \xff\xfe").expect("written");
    }
    let out = child.wait_with_output().expect("duet ends");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not UTF-8"));
    assert_eq!(snapshot(&d), before, "nothing was written");
}

#[test]
fn history_names_a_level_text_changed_in_words() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let id = d.json(&["goal", "add", "Sunday walk", "--area", "quality-time"])["id"]
        .as_str()
        .expect("an id")
        .to_string();
    d.ok(&["goal", "edit", &id, "--level", "+2=Every Sunday"]);
    let history = d.ok(&["history"]);
    assert!(
        history.contains("changed the level +2 text of \"Sunday walk\""),
        "{history}"
    );
    assert!(!history.contains("level:"), "{history}");
}

#[test]
fn an_active_goal_past_its_due_day_is_marked_overdue() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let before = [("DUET_NOW", "2027-01-01T12:00:00Z")];
    let after = [("DUET_NOW", "2027-02-01T12:00:00Z")];
    d.ok_env(
        &[
            "goal",
            "add",
            "Plan the trip",
            "--area",
            "shared-vision",
            "--due",
            "2027-01-15",
        ],
        &before,
    );
    assert!(
        !d.ok_env(&["goal", "show", "trip"], &before)
            .contains("overdue")
    );
    let shown = d.ok_env(&["goal", "show", "trip"], &after);
    assert!(shown.contains("due: 2027-01-15 (overdue)"), "{shown}");
    let listed = d.ok_env(&["goal", "list"], &after);
    assert!(listed.contains("overdue (due 2027-01-15)"), "{listed}");
    // A goal paused (or achieved) is not overdue.
    d.ok_env(&["goal", "status", "trip", "paused"], &after);
    let shown = d.ok_env(&["goal", "show", "trip"], &after);
    assert!(!shown.contains("overdue"), "{shown}");
}

#[test]
fn history_cuts_a_long_title_and_keeps_what_follows_it() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let title = format!("Walk together {}", "and talk about the week ".repeat(6));
    d.ok(&["goal", "add", &title, "--area", "quality-time"]);
    d.ok(&["rate", "walk", "2", "--note", "best week yet"]);
    let history = d.ok(&["history"]);
    let rated = history
        .lines()
        .find(|l| l.contains("rated"))
        .unwrap_or_else(|| panic!("{history}"));
    // Alone in the space, the rating is blind: what follows the title is still shown.
    assert!(rated.contains("sealed until both have rated)"), "{rated}");
    // `--full` keeps the whole title.
    assert!(d.ok(&["history", "--full"]).contains(title.trim_end()));
}

#[test]
fn a_home_path_too_long_for_the_database_is_said_so_and_leaves_nothing() {
    let base = Device::new();
    let home = base.home.join("a".repeat(240)).join("b".repeat(240));
    let d = Device::at(home.clone());
    let r = d.run(&["init", "--name", "Alex"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("too long a path for the database") && r.stderr.contains("shorter path"),
        "{}",
        r.stderr
    );
    assert!(!home.exists(), "nothing is made");
    let r = d.run(&["status"]);
    assert!(r.stderr.contains("too long a path"), "{}", r.stderr);
}

#[test]
fn the_export_names_the_blind_rating_each_revealed_rating_opened() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Sunday walk", "--area", "quality-time"]);
    let rated = d.json(&["rate", "walk", "1", "--note", "first"]);
    assert_eq!(rated["sealed"], true, "{rated}");
    let printed = rated["id"].as_str().expect("an id").to_string();
    d.ok(&["checkin", "--close"]);
    let export = d.json(&["export"]);
    let ratings = export["shared"]["ratings"].as_array().expect("ratings");
    assert!(
        ratings
            .iter()
            .any(|r| r["reveals"] == printed.as_str() && r["blind"] == true),
        "the id `rate` printed is named: {ratings:?}"
    );
}

/// `--edit last` with every shared reflection withdrawn says so, not "you have written
/// none yet" (a reflection withdrawn on another device while edited on this one).
#[test]
fn editing_the_last_reflection_when_all_were_withdrawn_says_so() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["reflect", "A first thought"]);
    d.ok(&["undo"]);
    let r = d.run(&["reflect", "--edit", "last", "A better thought"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("every one withdrawn"), "{r:?}");
}

/// A name past its limit is refused before the home is made: nothing is left behind
/// (an `init` said "nothing was written" and left a store of 237 KB).
#[test]
fn an_init_with_a_name_too_long_leaves_nothing_behind() {
    let d = Device::new();
    let long = "n".repeat(201);
    let r = d.run(&["init", "--name", &long]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(!d.home.join("duet.db").exists(), "{r:?}");
    d.ok(&["init", "--name", "Alex"]);
}

/// A usage error names only what must be typed: with DUET_HOME set (as every test runs
/// `duet`), not `--home <DIR>`, which clap named when it read the variable itself.
#[test]
fn a_usage_error_does_not_ask_for_home_when_duet_home_is_set() {
    let d = Device::new();
    let wrong = d.run(&["reflect", "--edit", "abc"]);
    assert_eq!(wrong.code, 2, "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains("Usage: duet reflect") && !wrong.stderr.contains("--home"),
        "{}",
        wrong.stderr
    );
}

/// Arguments that cannot mean anything are usage errors (exit 2) that say why: an empty
/// name or device key, a range of days that ends before it starts, an invite lifetime
/// without its unit (`--expires 30` was 30 hours, meant perhaps as minutes).
#[test]
fn arguments_that_cannot_mean_anything_are_usage_errors() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    for (args, says) in [
        (&["history", "--by", ""][..], "empty"),
        (&["device", "remove", ""], "empty"),
        (
            &["history", "--since", "2027-01-01", "--until", "2026-01-01"],
            "--since is after --until",
        ),
        (&["invite", "--expires", "30"], "30m for minutes"),
    ] {
        let wrong = d.run(args);
        assert_eq!(wrong.code, 2, "{args:?}: {}", wrong.stderr);
        assert!(wrong.stderr.contains(says), "{args:?}: {}", wrong.stderr);
    }
}

/// What a command suggests fits what was typed: no reflection about a goal suggests
/// writing one about that goal; two steps that match say to type more of the text; a
/// safety code with no partner yet is not to be confirmed now.
#[test]
fn suggestions_fit_what_was_typed() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Weekly check-in", "--area", "communication"]);
    let none = d.ok(&["reflections", "--goal", "Weekly check-in"]);
    assert!(
        none.contains("`duet reflect --goal \"Weekly check-in\" TEXT` writes one"),
        "{none}"
    );
    d.ok(&["step", "add", "weekly", "Set an alarm for Sunday"]);
    d.ok(&["step", "add", "weekly", "Set an alarm for Monday"]);
    let both = d.run(&["step", "done", "weekly", "alarm"]);
    assert_eq!(both.code, 1, "{both:?}");
    assert!(
        both.stderr.contains("type more of the text"),
        "{}",
        both.stderr
    );
    // Nobody to compare the safety code with yet: said, rather than "confirm it".
    let alone = d.ok(&["verify"]);
    assert!(alone.contains("No partner has joined yet"), "{alone}");
    let lone = d.run(&["verify", "--confirm"]);
    assert!(
        lone.code == 1
            && lone
                .stderr
                .contains("no partner has joined the shared space yet"),
        "{lone:?}"
    );
    // An area or a status mistyped is matched to the nearest word, and the shell's
    // completion offers the words (it offered file names).
    let typo = d.run(&["goal", "add", "Walks", "--area", "comunication"]);
    assert_eq!(typo.code, 2, "{typo:?}");
    assert!(
        typo.stderr
            .contains("a similar value exists: 'communication'"),
        "{}",
        typo.stderr
    );
    let typo = d.run(&["goal", "status", "weekly", "pausd"]);
    assert!(typo.stderr.contains("'paused'"), "{}", typo.stderr);
    let completion = d.ok(&["completions", "bash"]);
    assert!(completion.contains("emotional-support"), "no areas offered");
}

/// One check-in that names a goal twice (two words of its title) rates nothing: both
/// ratings would count, the second as a new blind rating.
#[test]
fn a_checkin_naming_a_goal_twice_rates_nothing() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Weekly check-in", "--area", "communication"]);
    let twice = d.run(&["checkin", "--rate", "weekly=1", "--rate", "check=2"]);
    assert_eq!(twice.code, 2, "{twice:?}");
    assert!(
        twice
            .stderr
            .contains("rates goal \"Weekly check-in\" twice"),
        "{}",
        twice.stderr
    );
    let export = d.json(&["export"]);
    for k in ["ratings", "sealed"] {
        let written = &export["shared"][k];
        assert!(
            written.as_array().is_none_or(Vec::is_empty),
            "{k}: {written}"
        );
    }
}

/// A symbolic link where the home's lock file should be is refused, not followed: it
/// had the file it named created and written wherever it led.
#[test]
fn a_lock_file_replaced_by_a_link_is_refused_not_followed() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let target = elsewhere.path().join("not-duets");
    let lock = d.home.join("duet.lock");
    std::fs::remove_file(&lock).expect("the lock file is there");
    std::os::unix::fs::symlink(&target, &lock).expect("link");
    let r = d.run(&["reflect", "A quiet week"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("symbolic link"), "{}", r.stderr);
    assert!(!target.exists(), "the link was followed");
}

/// An export or a report named after one of duet's own files in the home (`-o
/// HOME/duet.db`) replaced the device's store: the device was lost. Refused, and the
/// device reads on as before.
#[test]
fn an_export_or_report_never_replaces_the_devices_own_files() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Keep me", "--area", "trust"]);
    let store = d.home.join("duet.db");
    let lock = d.home.join("duet.lock");
    let (store, lock) = (
        store.to_str().expect("utf-8"),
        lock.to_str().expect("utf-8"),
    );
    for args in [
        &["export", "--output", store][..],
        &["export", "--json", "--output", store],
        &["report", "--html", store],
        &["report", "--html", lock],
    ] {
        let r = d.run(args);
        assert!(
            r.code != 0 && r.stderr.contains("one of duet's own files"),
            "{args:?}: {r:?}"
        );
    }
    assert!(d.ok(&["goal", "list"]).contains("Keep me"));
}

/// Endless input (`/dev/zero` on standard input, as a passphrase's file descriptor or as
/// the backup file) is refused in words after a bounded read: it was read until memory
/// ran out (an abort with a backtrace, or the system's out-of-memory killer).
#[test]
fn endless_input_is_refused_after_a_bounded_read() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Walk", "--area", "trust"]);
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let backup = elsewhere.path().join("alex.duetbackup");
    let backup = backup.to_str().expect("utf-8");
    let fresh = Device::new();
    for (dev, args, said) in [
        (&d, &["checkin"][..], "longer than 512 KiB"),
        (&d, &["reflect", "-"], "more than 1 MiB"),
        (
            &d,
            &["backup", backup, "--passphrase-fd", "0"],
            "more than 4096 bytes",
        ),
        (&fresh, &["join", "-", "--name", "Sam"], "more than 64 KiB"),
        (
            &fresh,
            &["restore", backup, "--passphrase-fd", "0"],
            "more than 4096 bytes",
        ),
    ] {
        let zero = std::fs::File::open("/dev/zero").expect("/dev/zero");
        let out = dev.command(args).stdin(zero).output().expect("duet");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code() == Some(2) && stderr.contains(said),
            "{args:?}: {out:?}"
        );
    }
    let endless = fresh.run_with_stdin(
        &["restore", "/dev/zero", "--passphrase-fd", "0"],
        Some("correct horse battery staple\n"),
    );
    assert!(
        endless.code != 0 && endless.stderr.contains("not a duet backup"),
        "{endless:?}"
    );
    assert!(!fresh.home.join("duet.db").exists(), "nothing set up");
    // A few NUL bytes are no reflection (it was saved, blank to read).
    let nul = d.run_with_stdin(&["reflect", "-"], Some("\0\0\0\n"));
    assert!(nul.code == 2 && nul.stderr.contains("NUL bytes"), "{nul:?}");
    assert_eq!(d.json(&["reflections"]).as_array().map(Vec::len), Some(0));
}

/// A `--home "~/duet"` the shell did not expand made a folder named `~` where the
/// command ran; a passphrase read from standard output (`--passphrase-fd 1 | cat`)
/// waited for ever. Both are refused in words, and nothing is made.
#[test]
fn a_quoted_tilde_home_and_a_passphrase_from_the_output_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = duet_tests::duet_command(
        &duet_tests::bin("duet"),
        std::path::Path::new("~/duet-tilde"),
        &["init", "--name", "Alex"],
    )
    .env_remove("DUET_HOME")
    .args(["--home", "~/duet-tilde"])
    .current_dir(dir.path())
    .output()
    .expect("duet");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(2) && stderr.contains("did not expand"),
        "{out:?}"
    );
    assert!(!dir.path().join("~").exists(), "no folder named ~");
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let file = dir.path().join("b.duetbackup");
    let r = d.run(&[
        "backup",
        file.to_str().expect("utf-8"),
        "--passphrase-fd",
        "1",
    ]);
    assert!(
        r.code == 2 && r.stderr.contains("this command's output"),
        "{r:?}"
    );
}
