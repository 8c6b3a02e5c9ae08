//! The therapist report holds the couple's notes and reflections: it is written readable
//! by its owner only, and only to a new or regular file: a symlink planted at the output
//! path is neither followed nor replaced (so the report cannot be made to overwrite
//! another file), and a device, a pipe or `-` is refused, never swapped for a file.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};

use duet_tests::Device;

#[test]
fn the_report_is_private_and_a_planted_symlink_is_not_followed() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Walk", "--area", "trust"]);
    d.ok(&["rate", "Walk", "1", "--note", "a private note"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, b"precious").expect("victim");
    let out = dir.path().join("report.html");
    std::os::unix::fs::symlink(&victim, &out).expect("plant a symlink");

    let r = d.run(&["report", "--html", out.to_str().expect("path")]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("not a regular file"), "{}", r.stderr);
    assert_eq!(
        std::fs::read(&victim).expect("victim"),
        b"precious",
        "the file behind the symlink is untouched"
    );
    let meta = std::fs::symlink_metadata(&out).expect("the symlink");
    assert!(meta.file_type().is_symlink(), "nor is the symlink replaced");

    // A new file is written, owner-only.
    let fresh = dir.path().join("fresh.html");
    d.ok(&["report", "--html", fresh.to_str().expect("path")]);
    let meta = std::fs::symlink_metadata(&fresh).expect("report");
    assert!(meta.file_type().is_file(), "the report is a regular file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "owner-only");
    assert!(
        std::fs::read_to_string(&fresh)
            .expect("report")
            .contains("Walk")
    );
}

#[test]
fn a_pipe_or_a_dash_given_as_the_report_file_is_refused_not_replaced() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let dir = tempfile::tempdir().expect("tempdir");
    // A named pipe stands for any special file (`/dev/stdout` is not touched in a test).
    let fifo = dir.path().join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let r = d.run(&["report", "--html", fifo.to_str().expect("path")]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("not a regular file"), "{}", r.stderr);
    let meta = std::fs::symlink_metadata(&fifo).expect("the pipe");
    assert!(meta.file_type().is_fifo(), "still a pipe");

    let mut dash = d.command(&["report", "--html", "-"]);
    let r = duet_tests::Run::from(dash.current_dir(dir.path()).output().expect("duet runs"));
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("give a file name"), "{}", r.stderr);
    assert!(!dir.path().join("-").exists(), "no file named -");

    // A folder that does not exist is named, not the temporary file made inside it.
    let missing = dir.path().join("no-such-folder");
    let target = missing.join("report.html");
    let r = d.run(&["report", "--html", target.to_str().expect("path")]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "{}: that folder does not exist",
            missing.display()
        )) && !r.stderr.contains("no-such-folder/.tmp"),
        "{}",
        r.stderr
    );
}

/// Ratings made within one day sit over that day's date on the report's charts: the
/// time axis starts at the day's midnight and names it (it started at the first rating,
/// and named only the next midnight, a day none of them was made on).
#[test]
fn ratings_of_one_day_are_charted_over_that_days_date() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Walk", "--area", "trust"]);
    d.ok(&["rate", "Walk", "1"]);
    let today = chrono::Local::now().format("%Y-%m-%d").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("report.html");
    d.ok(&["report", "--html", out.to_str().expect("path")]);
    let html = std::fs::read_to_string(&out).expect("the report");
    let labels: Vec<&str> = html
        .split("class=\"ax tick\"")
        .skip(1)
        .filter_map(|s| s.split('>').nth(1)?.split('<').next())
        .collect();
    assert!(!labels.is_empty(), "{html}");
    assert!(
        labels.iter().all(|l| *l == today || *l > today.as_str())
            && labels.contains(&today.as_str()),
        "every chart names {today}: {labels:?}"
    );
}

/// A partner's rating still sealed is listed (when, never how), so the report's period
/// runs to it: the title's last day is the day of the newest row the report shows.
#[test]
fn the_reports_period_runs_to_the_partners_sealed_rating_it_lists() {
    let relay = duet_tests::Relay::start();
    let (alex, sam) = duet_tests::pair(&relay);
    let day = 24 * 3_600_000;
    let t0 = duet_core::ids::now_ms() - 30 * day;
    let at = |d: &Device, args: &[&str], ms: i64| d.ok_env(args, &[("DUET_NOW", &ms.to_string())]);
    at(
        &alex,
        &["goal", "add", "Weekly talk", "--area", "communication"],
        t0,
    );
    at(&alex, &["sync"], t0);
    at(&sam, &["sync"], t0);
    at(&alex, &["rate", "talk", "1"], t0 + 60_000);
    at(&alex, &["sync"], t0 + 60_000);
    at(&sam, &["sync"], t0 + 60_000);
    at(&sam, &["rate", "talk", "0"], t0 + 120_000);
    at(&sam, &["sync"], t0 + 120_000);
    at(&alex, &["sync"], t0 + 120_000);
    at(
        &sam,
        &["rate", "talk", "-2", "--note", "SEALED_NOTE"],
        t0 + 4 * day,
    );
    at(&sam, &["sync"], t0 + 4 * day);
    at(&alex, &["sync"], t0 + 4 * day);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("report.html");
    at(
        &alex,
        &["report", "--html", out.to_str().expect("path")],
        t0 + 4 * day + 60_000,
    );
    let html = std::fs::read_to_string(&out).expect("the report");
    assert!(!html.contains("SEALED_NOTE"), "nothing sealed is shown");
    let last = chrono::DateTime::from_timestamp_millis(t0 + 4 * day)
        .expect("a time")
        .with_timezone(&chrono::Local)
        .format("%Y-%m-%d")
        .to_string();
    let title = html
        .split("<title>")
        .nth(1)
        .and_then(|t| t.split("</title>").next())
        .expect("a title");
    assert!(title.contains(&format!("to {last}")), "{title}");
}

/// `duet export --output FILE` writes what standard output would show (JSON or text),
/// readable by its owner only: the shell's `>` makes a file every user of the machine
/// can read, with the private reflections in it.
#[test]
fn an_export_written_to_a_file_is_the_export_and_private() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["reflect", "--private", "Private-canary-31f0"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("export.json");
    d.ok(&["--json", "export", "--output", json.to_str().expect("path")]);
    let text = dir.path().join("export.txt");
    let said = d.ok(&["export", "-o", text.to_str().expect("path")]);
    assert!(said.contains("readable by you only)"), "{said}");
    // A second export over the first says it replaced it.
    let again = d.ok(&["export", "-o", text.to_str().expect("path")]);
    assert!(
        again.contains("it replaced the file that was there"),
        "{again}"
    );
    for file in [&json, &text] {
        let meta = std::fs::symlink_metadata(file).expect("export");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "owner-only");
    }
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json")).expect("JSON");
    let printed = d.json(&["export"]);
    assert_eq!(written["personal"], printed["personal"]);
    assert_eq!(
        std::fs::read_to_string(&text).expect("text"),
        d.ok(&["export"])
    );
    assert!(d.ok(&["export"]).contains("Private-canary-31f0"));
    // `-` is standard output, as the option's help says.
    assert_eq!(d.ok(&["export", "-o", "-"]), d.ok(&["export"]));
}

/// A home `duet` makes (its parents with it) and each folder `start-over` sets aside
/// are their owner's only: the files in them were, but any user of the machine could
/// list them and see their sizes. A folder that existed keeps its mode.
#[test]
fn a_home_made_by_duet_and_a_folder_set_aside_are_the_owners_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(dir.path(), open).expect("chmod");
    let home = dir.path().join("made").join("home");
    let d = Device::at(home.clone());
    d.ok(&["init", "--name", "Alex"]);
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("folder").permissions().mode() & 0o777;
    assert_eq!(mode(&home), 0o700, "the home");
    assert_eq!(
        mode(&dir.path().join("made")),
        0o700,
        "its parent made with it"
    );
    assert_eq!(mode(dir.path()), 0o755, "a folder that existed");
    d.ok(&["start-over", "--yes"]);
    let aside = duet_core::device::set_aside_in(&home);
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(mode(&home.join(&aside[0])), 0o700, "the folder set aside");
}

/// A report or an export stopped by a signal while it is written leaves no temporary
/// file beside it (one held the whole report, readable by its owner, and stayed): the
/// file is written and said before the signal stops the command. Signals at moments
/// spread over the run.
#[test]
fn a_report_stopped_by_a_signal_leaves_no_temporary_file() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Walk", "--area", "trust"]);
    d.ok(&["reflect", &"a long reflection ".repeat(4000)]);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("report.html");
    for round in 0..40u64 {
        let args: &[&str] = if round % 2 == 0 {
            &["report", "--html", out.to_str().expect("path")]
        } else {
            &["export", "--output", out.to_str().expect("path")]
        };
        let child = d.command(args).spawn().expect("duet starts");
        // A run takes some 30 ms (debug build): the moments cover it.
        std::thread::sleep(std::time::Duration::from_millis(round));
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let ended = child.wait_with_output().expect("duet ends");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("the folder")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "report.html")
            .collect();
        assert!(left.is_empty(), "round {round} ({ended:?}) left {left:?}");
        let said = String::from_utf8_lossy(&ended.stdout).contains("report.html");
        assert!(
            !said || out.exists(),
            "round {round}: said as written, and there"
        );
    }
}

/// Printed in black and white, the partners' two colours were nearly one grey, with the
/// same solid line and dots: each partner's line and markers differ in shape too, and
/// the legend draws them beside each name.
#[test]
fn the_partners_lines_differ_without_colour() {
    let relay = duet_tests::Relay::start();
    let (alex, sam) = duet_tests::pair(&relay);
    alex.ok(&["goal", "add", "Walk", "--area", "trust"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    alex.ok(&["rate", "Walk", "1"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    sam.ok(&["rate", "Walk", "-1"]);
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("report.html");
    alex.ok(&["report", "--html", out.to_str().expect("path")]);
    let html = std::fs::read_to_string(&out).expect("the report");
    let chart = html
        .split("aria-label=\"GAS T-score over time\"")
        .nth(1)
        .and_then(|s| s.split("</svg>").next())
        .expect("the T-score chart");
    // One partner solid with filled circles, the other dashed with hollow squares;
    // together dotted with diamonds.
    for drawn in [
        "<circle",
        "<rect",
        "stroke-dasharray=\"8 4\"",
        "stroke-dasharray=\"2 3\"",
        "<polygon",
    ] {
        assert!(chart.contains(drawn), "{drawn} in {chart}");
    }
    let legend = html
        .split("class=\"legend\"")
        .nth(1)
        .and_then(|s| s.split("</p>").next())
        .expect("the legend");
    assert_eq!(legend.matches("class=\"key\"").count(), 3, "{legend}");
    // Two levels apart is said, as `progress` says it.
    assert!(
        html.contains("2 levels apart: worth talking about"),
        "{html}"
    );
    // Once the goal is achieved, it still counts, and says it is achieved; its gap is
    // no longer a talk to have (months later it still read as one).
    let talk = |d: &Device| {
        let json: serde_json::Value =
            serde_json::from_str(&d.ok(&["progress", "--json"])).expect("progress --json");
        json["goals"][0]["worth_talking"].clone()
    };
    assert_eq!(talk(&alex), serde_json::json!(true));
    alex.ok(&["goal", "status", "Walk", "achieved"]);
    // `--json` says what the text says (it kept `worth_talking: true`).
    assert_eq!(talk(&alex), serde_json::json!(false));
    // So does a summary kept by an earlier version, which marked it on any goal.
    let db = rusqlite::Connection::open(alex.db()).expect("the store");
    let marked = db
        .execute(
            "UPDATE rm_progress SET json = replace(json, '\"worth_talking\":false', '\"worth_talking\":true')",
            [],
        )
        .expect("the kept summary");
    drop(db);
    assert!(marked > 0, "a kept summary");
    assert_eq!(talk(&alex), serde_json::json!(false));
    let progress = alex.ok(&["progress"]);
    assert!(
        progress.contains("Walk  (achieved)")
            && progress.contains("2 levels apart")
            && !progress.contains("worth talking"),
        "{progress}"
    );
    alex.ok(&["report", "--html", out.to_str().expect("path")]);
    let html = std::fs::read_to_string(&out).expect("the report");
    assert!(
        html.contains("2 levels apart") && !html.contains("worth talking"),
        "{html}"
    );
}

/// A report shown in a joint session must not spoil a blind rating: the rater's own
/// report lists their still-sealed rating with its level, and says so at the top. A
/// goal weighted other than 1 says so where its level is, and "together" is explained.
#[test]
fn the_raters_report_warns_of_their_sealed_rating_and_shows_weights() {
    let relay = duet_tests::Relay::start();
    let (alex, sam) = duet_tests::pair(&relay);
    alex.ok(&["goal", "add", "Walk", "--area", "trust"]);
    alex.ok(&["goal", "edit", "Walk", "--weight", "3"]);
    alex.ok(&["rate", "Walk", "1"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    let report = |d: &Device| {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("report.html");
        d.ok(&["report", "--html", out.to_str().expect("path")]);
        std::fs::read_to_string(&out).expect("the report")
    };
    let alexs = report(&alex);
    assert!(
        alexs.contains("This report shows 1 rating of yours still sealed"),
        "{alexs}"
    );
    assert!(alexs.contains("(weight 3)"), "{alexs}");
    assert!(
        alexs.contains("it is not the average of the two scores"),
        "{alexs}"
    );
    let sams = report(&sam);
    assert!(!sams.contains("own-sealed-banner"), "{sams}");
}
