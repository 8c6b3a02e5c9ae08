//! A partner cannot drive the other partner's terminal (issue 12, acceptance 5): a name,
//! goal title, why, level text, note, step and reflection full of escape sequences (OSC 0
//! retitles the window, CSI 2J clears the screen), BEL, a C1 control and a newline reach
//! the other device through a real relay; its text output shows them as visible escapes
//! and never starts a line with the text after the newline, while `--json` keeps the
//! exact text.

use duet_tests::{Device, Relay};
use serde_json::Value;

/// What follows the newline in every hostile text: it must never begin a printed line.
const FAKE: &str = "FAKE-LINE all synced";

/// A hostile text: OSC 0 (window title), CSI 2J (clear screen), BEL, C1 CSI (U+009B), a
/// tab and a newline.
fn hostile(what: &str) -> String {
    format!("{what}\x1b]0;pwned\x07 \x1b[2J\u{9b}31m\tx\n{FAKE}")
}

/// The bytes that must never reach a terminal raw.
fn raw_controls(s: &str) -> Vec<char> {
    s.chars()
        .filter(|c| (c.is_control() && *c != '\n') || *c == '\u{9b}')
        .collect()
}

/// Whether any string inside `v` equals `text`.
fn holds(v: &Value, text: &str) -> bool {
    match v {
        Value::String(s) => s == text,
        Value::Array(a) => a.iter().any(|x| holds(x, text)),
        Value::Object(o) => o.values().any(|x| holds(x, text)),
        _ => false,
    }
}

#[test]
fn a_partners_control_characters_are_shown_not_obeyed_and_json_keeps_them() {
    let relay = Relay::start();
    let a = Device::new();
    let b = Device::new();
    let name = hostile("Alex");
    let title = hostile("Walk");
    let why = hostile("why");
    let expected = hostile("expected");
    let note = hostile("note");
    let step = hostile("step");
    let reflection = hostile("reflection");
    let level = format!("-2={}", hostile("level"));

    a.ok(&["init", "--name", &name, "--relay", &relay.url]);
    let goal = a.json(&[
        "goal",
        "add",
        &title,
        "--area",
        "trust",
        "--why",
        &why,
        "--expected",
        &expected,
        "--level",
        &level,
    ])["id"]
        .as_str()
        .expect("goal id")
        .to_string();
    a.ok(&["rate", &goal, "-1", "--note", &note]);
    // Closed so the rating reaches Sam in the clear, hostile note and all.
    a.ok(&["checkin", "--close"]);
    a.ok(&["step", "add", &goal, &step]);
    a.ok(&["reflect", "--goal", &goal, &reflection]);
    let code = a.json(&["invite"])["code"]
        .as_str()
        .expect("invite code")
        .to_string();
    b.ok(&["join", &code, "--name", "Sam"]);
    let synced = b.run(&["sync"]);
    synced.ok();

    let mut shown = vec![("sync".to_string(), synced.stdout + &synced.stderr)];
    for args in [
        &["goal", "list"][..],
        &["goal", "show", &goal],
        &["history"],
        &["progress"],
        &["device", "list"],
        &["status"],
        &["export"],
    ] {
        let r = b.run(args);
        r.ok();
        shown.push((args.join(" "), r.stdout + &r.stderr));
    }
    // Errors that list the people by name (the name's line break printed a line of
    // the partner's under them).
    for args in [
        &["history", "--by", "nobody"][..],
        &["step", "add", &goal, "Another", "--for", "Robin"],
    ] {
        let r = b.run(args);
        assert!(r.code != 0 && r.stderr.contains("Alex"), "{r:?}");
        shown.push((args.join(" "), r.stdout + &r.stderr));
    }
    // The partner invite refused for Alex being there, and Alex's home set up already.
    for (dev, args) in [(&b, &["invite"][..]), (&a, &["init", "--name", "Again"])] {
        let r = dev.run(args);
        assert!(r.code != 0 && r.stderr.contains("Alex"), "{r:?}");
        shown.push((args.join(" "), r.stdout + &r.stderr));
    }
    // And the refusal of Alex's device code given with another name.
    let wrong = Device::new().run(&["join", &a.device_code(), "--name", "Sam"]);
    assert!(wrong.stderr.contains("device code of"), "{wrong:?}");
    shown.push(("join DEVICE-CODE --name Sam".into(), wrong.stderr));
    for (cmd, out) in &shown {
        assert!(
            raw_controls(out).is_empty(),
            "`duet {cmd}` printed raw control characters {:?}:\n{out}",
            raw_controls(out)
        );
        // Export keeps a reflection's lines as lines (it is a block of text), indented
        // under its heading; every other field is one line.
        let starts_line = |l: &str| match cmd.as_str() {
            "export" => l.starts_with(FAKE),
            _ => l.trim_start().starts_with(FAKE),
        };
        assert!(
            !out.lines().any(starts_line),
            "`duet {cmd}` let a partner's newline start a line:\n{out}"
        );
    }
    // Shown, not dropped: the reader sees that something odd was there.
    let list = &shown[1].1;
    assert!(
        list.contains("Walk\\x1b]0;pwned\\x07 \\x1b[2J\\u{9b}31m\\tx\\nFAKE-LINE"),
        "the title is shown with visible escapes:\n{list}"
    );

    // JSON is for programs: the exact text, escaped only as JSON escapes.
    assert_eq!(b.json(&["goal", "list"])[0]["title"], title.as_str());
    let shown_goal = b.json(&["goal", "show", &goal]);
    assert_eq!(shown_goal["title"], title.as_str());
    assert_eq!(shown_goal["why"], why.as_str());
    assert_eq!(shown_goal["levels"]["0"], expected.as_str());
    assert_eq!(shown_goal["steps"][0]["text"], step.as_str());
    assert_eq!(shown_goal["ratings"][0]["note"], note.as_str());
    let history = b.history();
    assert!(
        history.iter().any(|e| e["author_name"] == name.as_str()),
        "history --json keeps the name: {history:#?}"
    );
    assert!(
        history.iter().any(|e| e["goal_title"] == title.as_str()),
        "history --json keeps the title: {history:#?}"
    );
    assert!(holds(&b.json(&["progress"])["people"], &name));
    assert!(holds(&b.json(&["device", "list"]), &name));
    assert!(holds(&b.json(&["status"]), &name));
    let export = b.json(&["export"]);
    assert_eq!(
        export["shared"]["reflections"][0]["text"],
        reflection.as_str()
    );
    assert!(holds(&export["shared"]["people"], &name));
}

#[test]
fn a_partners_right_to_left_override_and_mark_are_shown_not_obeyed_in_the_report_and_the_app() {
    let relay = Relay::start();
    let (alex, sam) = duet_tests::pair(&relay);
    // Sam's title would reverse everything after it on Alex's page: "+1" read as "1+";
    // an invisible right-to-left mark at its end pulls the level beside it the same way.
    let title = "Hostile evil\u{202e}txt.exe\u{200f}";
    let shown = "Hostile evil\\u{202e}txt.exe\\u{200f}";
    let raw = |page: &str| page.contains('\u{202e}') || page.contains('\u{200f}');
    sam.ok(&["goal", "add", title, "--area", "trust"]);
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    alex.ok(&["rate", "hostile", "1"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("report.html");
    alex.ok(&["report", "--html", out.to_str().expect("path")]);
    let html = std::fs::read_to_string(&out).expect("the report");
    assert!(!raw(&html), "a raw control in the report");
    assert!(html.contains(shown), "{html}");
    // The app's pages too; its edit form keeps the stored title (what it sends back).
    let app = duet_tests::app::App::start(&alex);
    let today = app.get("/").body;
    assert!(today.contains(shown), "{today}");
    let goal = app.get(&app.first_goal_link()).body;
    let text = goal.replace(&format!("value=\"{title}\""), "");
    assert!(goal.contains(&format!("value=\"{title}\"")), "{goal}");
    assert!(!raw(&text), "a raw control outside the form: {text}");
}

/// Hebrew and Arabic names and titles sit in Duet's English sentences on the pages; each
/// is set apart (`<bdi>`), or a right-to-left title takes the level after it into its
/// own run ("נועה rated "الحوار" +1" read with the +1 inside the quotes) and a name
/// swaps the colours of the report's legend.
#[test]
fn right_to_left_names_and_titles_are_set_apart_from_levels_dates_and_colours() {
    let relay = Relay::start();
    let (alex, sam) = (Device::new(), Device::new());
    alex.ok(&["init", "--name", "ليلى", "--relay", &relay.url]);
    sam.ok(&["join", &alex.invite_code(), "--name", "נועה"]);
    sam.ok(&["goal", "add", "ריצה 2x", "--area", "trust"]);
    sam.ok(&["rate", "ריצה", "1"]);
    sam.ok(&["step", "add", "ריצה", "לקנות נעליים"]);
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    alex.ok(&["rate", "ריצה", "-1"]);
    // Sam's blind rating opens once Sam's device has heard of Alex's.
    for d in [&alex, &sam, &alex] {
        d.ok(&["sync"]);
    }
    let app = duet_tests::app::App::start(&alex);
    let today = app.get("/").body;
    for said in [
        "<bdi>ריצה 2x</bdi></a>",
        "<strong><bdi>ليلى</bdi></strong>: −1",
        "<strong><bdi>נועה</bdi></strong>: +1",
        "<bdi>לקנות נעליים</bdi>",
    ] {
        assert!(today.contains(said), "{said} in {today}");
    }
    let history = app.get("/history").body;
    assert!(
        history.contains("<bdi>ليلى</bdi> rated &quot;<bdi>ריצה 2x</bdi>&quot; -1"),
        "{history}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("report.html");
    alex.ok(&["report", "--html", out.to_str().expect("path")]);
    let html = std::fs::read_to_string(&out).expect("the report");
    for said in [
        // In the order of their person ids (random).
        "<h1>Progress report: <bdi>",
        "</bdi> &amp; <bdi>",
        "<bdi>נועה</bdi>: +1",
        "<bdi>ليلى</bdi>: −1",
        "</svg> <bdi>ليلى</bdi>",
    ] {
        assert!(html.contains(said), "{said} in {html}");
    }
    let goal = app.get(&app.first_goal_link()).body;
    assert!(goal.contains("</svg> <bdi>ليلى</bdi>"), "{goal}");
}
