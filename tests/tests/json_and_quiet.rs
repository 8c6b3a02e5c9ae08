//! Every command that prints honours `--json` (one JSON value on stdout, or JSON Lines
//! for `history`) and `--quiet` (nothing on stdout) (issue 19). One prepared home, the
//! commands in sequence; each is run once with `--json` and once with `--quiet`.

use duet_tests::{Device, Relay};

/// Why `args` broke `--json`, if it did.
fn json_complaint(d: &Device, args: &[&str]) -> Option<String> {
    let mut a = args.to_vec();
    a.push("--json");
    let r = d.run(&a);
    if r.code != 0 {
        return Some(format!("duet {}: failed: {}", a.join(" "), r.stderr));
    }
    let lines = args[0] == "history";
    let valid = if lines {
        r.stdout
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    } else {
        serde_json::from_str::<serde_json::Value>(&r.stdout).is_ok()
    };
    (!valid).then(|| format!("duet {}: not JSON: {:?}", a.join(" "), r.stdout))
}

/// Why `args` broke `--quiet`, if it did.
fn quiet_complaint(d: &Device, args: &[&str]) -> Option<String> {
    let mut a = args.to_vec();
    a.push("--quiet");
    let r = d.run(&a);
    if r.code != 0 {
        return Some(format!("duet {}: failed: {}", a.join(" "), r.stderr));
    }
    (!r.stdout.is_empty()).then(|| format!("duet {}: printed {:?}", a.join(" "), r.stdout))
}

#[test]
fn every_printing_command_honours_json_and_quiet() {
    let relay = Relay::start();
    let d = Device::new();
    let report = d.home.with_file_name("report.html");
    let report = report.to_str().expect("a UTF-8 path");
    let mut failures = Vec::new();
    failures.extend(json_complaint(
        &d,
        &["init", "--name", "Alex", "--relay", &relay.url],
    ));
    failures.extend(quiet_complaint(&Device::new(), &["init", "--name", "Sam"]));

    // Commands that change what they act on: each run once, with one flag or the other.
    for (args, json) in [
        (&["goal", "add", "Walk", "--area", "trust"][..], true),
        (&["goal", "add", "Cook", "--area", "quality-time"], false),
        (&["step", "add", "Walk", "Plan the route"], true),
        (&["step", "add", "Walk", "Pack a lunch"], false),
        (&["step", "done", "Walk", "route"], true),
        (&["step", "reopen", "Walk", "route"], true),
        (&["step", "done", "Walk", "lunch"], false),
        (&["step", "reopen", "Walk", "lunch"], false),
    ] {
        failures.extend(if json {
            json_complaint(&d, args)
        } else {
            quiet_complaint(&d, args)
        });
    }
    // (command, whether --quiet must print nothing: a code is what `invite` and `device
    // add` exist to print, so it is printed even then)
    let commands: &[(&[&str], bool)] = &[
        (&["goal", "list"], true),
        (&["goal", "show", "Walk"], true),
        (&["goal", "edit", "Walk", "--why", "Fresh air"], true),
        (&["goal", "status", "Walk", "paused"], true),
        (&["goal", "status", "Walk", "active"], true),
        (&["rate", "Walk", "1", "--note", "A good week"], true),
        (&["undo"], true),
        (&["reflect", "It went well"], true),
        (&["reflections"], true),
        (&["checkin", "--rate", "Walk=0"], true),
        (&["checkin", "--close"], true),
        (&["history"], true),
        (&["progress"], true),
        (&["report", "--html", report], true),
        (&["export"], true),
        (&["sync"], true),
        (&["status"], true),
        (&["relay", "set", &relay.url], true),
        (&["device", "list"], true),
        (&["verify"], true),
        (&["invite"], false),
        (&["device", "add"], false),
    ];
    for (args, quiet) in commands {
        failures.extend(json_complaint(&d, args));
        if *quiet {
            failures.extend(quiet_complaint(&d, args));
        }
    }
    assert!(
        failures.is_empty(),
        "commands that do not honour --json or --quiet:\n{}",
        failures.join("\n")
    );
    // --quiet leaves notes unsaid (a partner's device not verified yet), not only stdout.
    let (alex, _sam) = duet_tests::pair(&relay);
    assert!(alex.run(&["sync"]).stderr.contains("note: not verified"));
    let quiet = alex.run(&["sync", "--quiet"]);
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert!(!quiet.stderr.contains("note:"), "{}", quiet.stderr);
    // The check-in's walk, answered on stdin: its words go with the prompts, the JSON
    // alone on stdout.
    let walked = d.run_with_stdin(&["checkin", "--json"], Some("1\n\n"));
    assert_eq!(walked.code, 0, "{}", walked.stderr);
    let rated: serde_json::Value = serde_json::from_str(&walked.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", walked.stdout));
    assert_eq!(rated["rated"].as_array().map(Vec::len), Some(1), "{rated}");
    assert_eq!(
        rated["rated"][0]["level"], 1,
        "the level given is said: {rated}"
    );
    assert!(walked.stderr.contains("Walk"), "{}", walked.stderr);
    // What reports in words as it goes refuses --json rather than print words.
    for args in [&["sync", "--watch", "--json"][..], &["demo", "--json"]] {
        let r = d.run(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
        assert!(
            r.stderr.contains("without") || r.stderr.contains("a single `duet sync`"),
            "what to do: {}",
            r.stderr
        );
    }
}

/// The error line a failed `--json` command printed last on stderr, parsed, with its
/// exit code and the whole of stderr.
fn json_error(d: &Device, args: &[&str]) -> (i32, serde_json::Value, String) {
    let mut a = args.to_vec();
    a.push("--json");
    let r = d.run(&a);
    assert!(
        r.stdout.is_empty(),
        "stdout holds only data: {:?}",
        r.stdout
    );
    // Every line on stderr is JSON (a note or a warning before the error too).
    let lines: Vec<serde_json::Value> = r
        .stderr
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("duet {}: a line is not JSON ({e}): {l}", a.join(" ")))
        })
        .collect();
    let value = lines.last().cloned().expect("the error");
    (r.code, value, r.stderr)
}

#[test]
fn a_failure_under_json_is_one_json_line_on_stderr_and_offline_exits_3() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    }; // dropped: nothing listens there now
    let d = Device::new();
    let relay = format!("http://127.0.0.1:{closed}");
    d.ok(&["init", "--name", "Alex", "--relay", &relay]);
    // Offline: the same command can pass later as it is, so a script may wait and retry.
    let (code, e, _) = json_error(&d, &["sync"]);
    assert_eq!(code, 3, "{e}");
    assert_eq!(e["exit_code"], 3, "{e}");
    let said = e["error"].as_str().unwrap_or_default();
    assert!(said.contains("connection refused"), "{e}");
    assert!(
        e["hint"]
            .as_str()
            .is_some_and(|h| h.contains("is the relay running")),
        "{e}"
    );
    // The same failure in words exits 3 too.
    assert_eq!(d.run(&["sync"]).code, 3);
    // A name nothing answers to needs a change first: 1.
    let (code, e, _) = json_error(&d, &["goal", "show", "Gardening"]);
    assert_eq!((code, &e["exit_code"]), (1, &serde_json::json!(1)), "{e}");
    assert!(
        e["error"]
            .as_str()
            .unwrap_or_default()
            .contains("no goal matches"),
        "{e}"
    );
    // Wrong arguments: 2, also where the argument parser finds them.
    let (code, e, _) = json_error(&d, &["sync", "--watch"]);
    assert_eq!((code, &e["exit_code"]), (2, &serde_json::json!(2)), "{e}");
    let (code, e, _) = json_error(&d, &["rate", "walk", "5"]);
    assert_eq!((code, &e["exit_code"]), (2, &serde_json::json!(2)), "{e}");
    assert!(
        e["error"].as_str().unwrap_or_default().contains("'5'"),
        "{e}"
    );
    // What the parser says after its first line comes too: the argument missing, the
    // command it takes a typo for.
    let (code, e, _) = json_error(&d, &["rate", "walk"]);
    assert_eq!(code, 2, "{e}");
    assert!(
        e["error"].as_str().unwrap_or_default().contains("<LEVEL>"),
        "{e}"
    );
    let (_, e, _) = json_error(&d, &["goa", "list"]);
    assert!(
        e["error"]
            .as_str()
            .unwrap_or_default()
            .contains("'goa'; tip: a similar subcommand exists: 'goal'"),
        "{e}"
    );
    // A command without its subcommand names them (the parser prints the command's
    // help, whose first line was all the error said).
    let (code, e, _) = json_error(&d, &["goal"]);
    assert_eq!(code, 2, "{e}");
    let said = e["error"].as_str().unwrap_or_default();
    assert!(said.contains("add, list, show, edit, status"), "{e}");
    let bare = duet_tests::duet_command(&duet_tests::bin("duet"), &d.home, &["--json", "step"])
        .output()
        .expect("duet runs");
    let said = String::from_utf8_lossy(&bare.stderr);
    assert!(
        said.contains("a subcommand is needed: add, done, reopen, edit, assign"),
        "{said}"
    );
    // A command that tries to sync first says so in a JSON note before its error.
    let (_, e, raw) = json_error(&d, &["device", "remove", "ffff"]);
    assert!(raw.lines().count() >= 2, "a note, then the error: {raw}");
    assert!(e["error"].is_string(), "{e}");
    // A short code or a restore while the relay is down can pass later: 3.
    let joiner = Device::new();
    let args = [
        "join",
        "123-aardvark-adroitness",
        "--name",
        "Zoe",
        "--relay",
        &relay,
    ];
    let (code, e, _) = json_error(&joiner, &args);
    assert_eq!(code, 3, "{e}");
    let outside = tempfile::tempdir().expect("a folder outside the home");
    let file = outside.path().join("alex.bak");
    let file = file.to_str().expect("path");
    let pass = "a passphrase long enough\n";
    let backup = d.run_with_stdin(&["backup", file, "--passphrase-fd", "0"], Some(pass));
    assert_eq!(backup.code, 0, "{}", backup.stderr);
    let restored = Device::new();
    let again = restored.run_with_stdin(&["restore", file, "--passphrase-fd", "0"], Some(pass));
    assert_eq!(again.code, 3, "{}", again.stderr);
}

#[test]
fn progress_json_keys_each_partners_t_score_by_person_id_even_with_one_name() {
    let relay = Relay::start();
    let a = Device::new();
    let b = Device::new();
    a.ok(&["init", "--name", "Sam", "--relay", &relay.url]);
    b.ok(&["join", &a.invite_code(), "--name", "Sam"]);
    a.ok(&["goal", "add", "Weekly check-in", "--area", "communication"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    a.ok(&["rate", "Weekly check-in", "2"]);
    b.ok(&["rate", "Weekly check-in", "-2"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    a.ok(&["sync"]);
    let json = a.json(&["progress"]);
    let scores = &json["t_score"]["by_person"];
    // Keyed by person id, as `people` and the series are; the names are told apart.
    assert_eq!(scores[a.person_id()], 70.0, "{json}");
    assert_eq!(scores[b.person_id()], 30.0, "{json}");
    let names = [
        &json["people"][a.person_id()],
        &json["people"][b.person_id()],
    ];
    assert!(names[0] != names[1], "{json}");
}

/// Under `--json` a note is a JSON line on stderr, not left out: a sync's "not
/// verified", a goal's title that another goal has too.
#[test]
fn notes_under_json_are_json_lines_not_dropped() {
    let relay = Relay::start();
    let (alex, _sam) = duet_tests::pair(&relay);
    let notes = |args: &[&str]| -> Vec<serde_json::Value> {
        let r = alex.run(args);
        assert_eq!(r.code, 0, "{r:?}");
        r.stderr
            .lines()
            .map(|l| serde_json::from_str(l).expect("every stderr line is JSON"))
            .collect()
    };
    let said = |all: &[serde_json::Value], needle: &str| {
        all.iter()
            .any(|n| n["note"].as_str().is_some_and(|t| t.contains(needle)))
    };
    let synced = notes(&["--json", "sync"]);
    assert!(said(&synced, "not verified"), "{synced:?}");
    alex.ok(&["goal", "add", "Walk", "--area", "trust"]);
    let added = notes(&["--json", "goal", "add", "Walk", "--area", "trust"]);
    assert!(said(&added, "another goal has this title too"), "{added:?}");
}
