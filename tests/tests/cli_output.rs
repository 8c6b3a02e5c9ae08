//! Snapshots of every `duet` command's human (text) output, so that a change to what a
//! person reads is reviewed as a diff (`tests/snapshots/`). Each test plays a short scene
//! with the real binaries and snapshots its transcript: `$ duet ARGS`, then standard
//! output, then `--- stderr` and `--- exit code N` when there are any.
//!
//! The clock is fixed: every command runs with `DUET_NOW` one minute after the one
//! before, from 2099-03-01 10:00 UTC, so times and orders are the same on every run. It
//! runs ahead of the real clock on purpose: the relay judges invite expiry by its own
//! (real) clock, so a code made at a fixed time in the past would be expired there.
//! What is random or comes from the machine is replaced with a placeholder:
//! - `[DEVICE-n]`: a device key (full or its 12-character prefix), numbered in the order
//!   the devices joined (1 is the first partner's first device);
//! - `[SPACE-ID]`: a 32-character space id; `[ID]`: an 8-character goal, step or
//!   reflection id prefix;
//! - `[INVITE-CODE]`, `[DEVICE-CODE]`: the codes of `duet invite` and `duet device add`;
//! - `[SAFETY-CODE]`: the six groups of digits of `duet verify`;
//! - `[RELAY]`: the test relay's URL (its port is chosen by the OS); `[TMP]`: a
//!   temporary directory;
//! - `[TIME]`: a time taken from the system clock rather than `DUET_NOW` (none should be
//!   left: core reads one clock).
//!
//! What is listed in the order of the random device keys (`duet device list`, the members
//! in `duet status`, the "not verified" note) is put in placeholder order before the
//! snapshot, and a couple is made again until Alex's person id sorts before Sam's (the
//! order of `duet progress`), so nothing swaps between runs.
//!
//! To accept a change on purpose: `INSTA_UPDATE=always cargo test -p duet-tests --test
//! cli_output`, then review the diff of `tests/snapshots/`.

use std::cell::{Cell, RefCell};

use duet_tests::{Device, Relay};

/// The fixed clock's first reading: 2099-03-01 10:00 UTC, in milliseconds.
const START_MS: i64 = 4_076_042_400_000;
/// The day of every time the fixed clock gives (the scenes run far fewer than 840 commands).
const FIXED_DAY: &str = "2099-03-01";

/// A scene: a clock that ticks a minute per command, the device keys seen so far and the
/// transcript since the last snapshot.
struct Scene {
    tick: Cell<i64>,
    keys: RefCell<Vec<String>>,
    relays: RefCell<Vec<String>>,
    transcript: RefCell<String>,
}

impl Scene {
    fn new() -> Scene {
        Scene {
            tick: Cell::new(0),
            keys: RefCell::new(Vec::new()),
            relays: RefCell::new(Vec::new()),
            transcript: RefCell::new(String::new()),
        }
    }

    /// `DUET_NOW` for the next command, a minute after the last one.
    fn now(&self) -> String {
        let t = self.tick.get();
        self.tick.set(t + 1);
        (START_MS + t * 60_000).to_string()
    }

    /// Runs `duet ARGS` on `d` and adds it to the transcript; returns standard output.
    fn run(&self, d: &Device, args: &[&str]) -> String {
        self.run_with(d, args, None)
    }

    /// [`Scene::run`] with standard input.
    fn run_with(&self, d: &Device, args: &[&str], stdin: Option<&str>) -> String {
        let now = self.now();
        let r = d.run_full(args, stdin, &[("DUET_NOW", &now)]);
        let mut t = self.transcript.borrow_mut();
        t.push_str(&format!("$ duet {}\n", shell_words(args)));
        t.push_str(&r.stdout);
        if !r.stderr.is_empty() {
            t.push_str("--- stderr\n");
            t.push_str(&r.stderr);
        }
        if r.code != 0 {
            t.push_str(&format!("--- exit code {}\n", r.code));
        }
        t.push('\n');
        r.stdout
    }

    /// Starts a relay whose URL the snapshots show as `[RELAY]`.
    fn relay(&self) -> Relay {
        let relay = Relay::start();
        self.relays.borrow_mut().push(relay.url.clone());
        relay
    }

    /// Learns the device keys `d` knows, numbering new ones in the order they joined.
    fn learn_devices(&self, d: &Device) {
        let now = self.now();
        let out = d.ok_env(&["device", "list", "--json"], &[("DUET_NOW", &now)]);
        let rows: serde_json::Value = serde_json::from_str(&out).expect("device list JSON");
        let mut rows: Vec<(String, String)> = rows
            .as_array()
            .expect("an array of devices")
            .iter()
            .map(|r| {
                (
                    r["joined_at"].as_str().expect("joined_at").to_string(),
                    r["device"].as_str().expect("device").to_string(),
                )
            })
            .collect();
        rows.sort();
        let mut keys = self.keys.borrow_mut();
        for (_, key) in rows {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }

    /// The transcript since the last snapshot, with device keys replaced by their
    /// `[DEVICE-n]` placeholder; clears it.
    fn take(&self) -> String {
        let mut text = std::mem::take(&mut *self.transcript.borrow_mut());
        for (i, key) in self.keys.borrow().iter().enumerate() {
            let label = format!("[DEVICE-{}]", i + 1);
            text = text.replace(key.as_str(), &label);
            text = text.replace(&key[..12], &label);
        }
        for url in self.relays.borrow().iter() {
            text = text.replace(url.as_str(), "[RELAY]");
        }
        sort_device_lines(&text)
    }
}

/// Joins arguments as a shell would show them: quoted when they hold a space.
fn shell_words(args: &[&str]) -> String {
    args.iter()
        .map(|a| {
            if a.is_empty() || a.contains([' ', '"', '\'']) {
                format!("{a:?}")
            } else {
                (*a).to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The number of the first `[DEVICE-n]` placeholder in `s`.
fn device_number(s: &str) -> u32 {
    s.split("[DEVICE-")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX)
}

/// Puts in placeholder order what is in the order of the random device keys: each run of
/// consecutive lines of `duet device list` or of members in `duet status`, and the list
/// of devices in the "not verified" note.
fn sort_device_lines(text: &str) -> String {
    let keyed = |l: &str| l.starts_with("[DEVICE-") || l.starts_with("  member ");
    let mut out: Vec<String> = Vec::new();
    let mut run: Vec<&str> = Vec::new();
    for line in text.split('\n') {
        if keyed(line) {
            run.push(line);
            continue;
        }
        run.sort_by_key(|l| device_number(l));
        out.extend(run.drain(..).map(str::to_string));
        out.push(sort_unverified(line));
    }
    run.sort_by_key(|l| device_number(l));
    out.extend(run.drain(..).map(str::to_string));
    out.join("\n")
}

/// `... not verified: device A (X), B (Y). Compare ...` with the devices in placeholder
/// order.
fn sort_unverified(line: &str) -> String {
    const START: &str = "not verified: device ";
    const END: &str = ". Compare";
    let (Some(a), Some(b)) = (line.find(START), line.find(END)) else {
        return line.to_string();
    };
    let a = a + START.len();
    let mut devices: Vec<&str> = line[a..b].split(", ").collect();
    devices.sort_by_key(|d| device_number(d));
    format!("{}{}{}", &line[..a], devices.join(", "), &line[b..])
}

/// The filters every snapshot goes through, in order (see the module comment).
fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    // Times of the fixed clock (2099, also a day or more later, as invite expiry) stay;
    // every other time would be the system clock's.
    s.add_filter(r"2099-(\d\d-\d\d) (\d\d:\d\d)", "<<fixed $1 $2>>");
    s.add_filter(r"\b\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?\b", "[TIME]");
    s.add_filter(r"<<fixed (\d\d-\d\d) (\d\d:\d\d)>>", "2099-$1 $2");
    s.add_filter(r"duet[12]d-[A-Za-z0-9_-]+", "[DEVICE-CODE]");
    s.add_filter(r"duet[12]-[A-Za-z0-9_-]+", "[INVITE-CODE]");
    s.add_filter(r"\b\d{5}( \d{5}){5}\b", "[SAFETY-CODE]");
    s.add_filter(r"(/[^/\s]+)*/\.tmp[0-9A-Za-z]+", "[TMP]");
    s.add_filter(r"\b[0-9a-f]{32}\b", "[SPACE-ID]");
    s.add_filter(r"\b[0-9a-f]{8}\b", "[ID]");
    s
}

/// Asserts the scene's transcript against the snapshot `name`.
#[track_caller]
fn snapshot(scene: &Scene, name: &str) {
    let text = scene.take();
    settings().bind(|| insta::assert_snapshot!(name, text));
}

/// A fresh relay on which Alex inits and invites, and Sam joins; the scene learns both
/// devices. Views that list both partners (`duet progress`) order them by their random
/// person ids, so the couple is made again (on a new relay, whose cursors start afresh)
/// until Alex's id sorts first.
fn couple(scene: &Scene) -> (Relay, Device, Device) {
    let start = scene.tick.get();
    loop {
        scene.tick.set(start);
        scene.transcript.borrow_mut().clear();
        scene.keys.borrow_mut().clear();
        let relay = scene.relay();
        let alex = Device::new();
        let sam = Device::new();
        scene.run(&alex, &["init", "--name", "Alex", "--relay", &relay.url]);
        // Learnt one by one, so that the numbers never hang on join times alone.
        scene.learn_devices(&alex);
        let code = invite_code(&scene.run(&alex, &["invite"]));
        scene.run(&sam, &["join", &code, "--name", "Sam"]);
        let devices = sam.json(&["device", "list"]);
        let person = |name: &str| {
            devices
                .as_array()
                .expect("an array of devices")
                .iter()
                .find(|d| d["name"] == name)
                .and_then(|d| d["person"].as_str())
                .expect("a person id")
                .to_string()
        };
        if person("Alex") < person("Sam") {
            scene.learn_devices(&sam);
            return (relay, alex, sam);
        }
    }
}

/// The code in the output of `duet invite` or `duet device add`.
fn invite_code(out: &str) -> String {
    out.split_whitespace()
        .find(|w| w.starts_with("duet2"))
        .unwrap_or_else(|| panic!("no code in {out:?}"))
        .to_string()
}

/// Adds the goal most scenes use.
fn add_weekly_check_in(scene: &Scene, d: &Device) {
    scene.run(
        d,
        &[
            "goal",
            "add",
            "Weekly check-in",
            "--area",
            "communication",
            "--why",
            "We drift apart",
            "--expected",
            "We talk 30 minutes every Sunday",
            "--level=-2=We do not talk",
            "--level",
            "2=We talk twice a week",
            "--due",
            "2026-06-30",
        ],
    );
}

#[test]
fn commands_before_init_say_there_is_no_home_yet() {
    let scene = Scene::new();
    let nobody = Device::new();
    scene.run(&nobody, &["status"]);
    scene.run(&nobody, &["goal", "list"]);
    scene.run(&nobody, &["sync"]);
    snapshot(&scene, "no_home_yet");
}

#[test]
fn a_fresh_home_shows_empty_states_and_a_lone_device() {
    let scene = Scene::new();
    let alex = Device::new();
    scene.run(&alex, &["init", "--name", "Alex"]);
    scene.learn_devices(&alex);
    scene.run(&alex, &["init", "--name", "Alex"]);
    scene.run(&alex, &["status"]);
    scene.run(&alex, &["goal", "list"]);
    scene.run(&alex, &["goal", "list", "--all"]);
    scene.run(&alex, &["progress"]);
    scene.run(&alex, &["history"]);
    scene.run(&alex, &["export"]);
    scene.run(&alex, &["device", "list"]);
    scene.run(&alex, &["verify"]);
    scene.run(&alex, &["sync"]);
    scene.run(&alex, &["invite"]);
    snapshot(&scene, "fresh_home");

    scene.run(&alex, &["relay", "set", "not a url"]);
    scene.run(&alex, &["relay", "set", "https://relay.invalid"]);
    scene.run(&alex, &["status"]);
    snapshot(&scene, "relay_set");
}

#[test]
fn goal_commands_show_titles_areas_levels_and_steps() {
    let scene = Scene::new();
    let alex = Device::new();
    scene.run(&alex, &["init", "--name", "Alex"]);
    scene.learn_devices(&alex);
    scene.take();

    add_weekly_check_in(&scene, &alex);
    scene.run(
        &alex,
        &[
            "goal",
            "add",
            "Phone-free dinners",
            "--area",
            "quality-time",
        ],
    );
    scene.run(&alex, &["goal", "list"]);
    scene.run(&alex, &["goal", "show", "Weekly check-in"]);
    scene.run(&alex, &["progress"]);
    snapshot(&scene, "goal_add_list_show");

    let step = scene.run(
        &alex,
        &["step", "add", "Weekly check-in", "Put it in the calendar"],
    );
    let step_id = step
        .split_whitespace()
        .nth(2)
        .expect("Added step ID to goal ...")
        .to_string();
    // One step yet: the error lists the known steps in the order of their random ids.
    scene.run(&alex, &["step", "done", "Weekly check-in", "nope"]);
    scene.run(&alex, &["step", "add", "Weekly check-in", "Book a sitter"]);
    scene.run(&alex, &["step", "done", "Weekly check-in", &step_id]);
    scene.run(&alex, &["goal", "show", "Weekly check-in"]);
    snapshot(&scene, "steps");

    scene.run(
        &alex,
        &[
            "goal",
            "edit",
            "Weekly check-in",
            "--title",
            "Weekly talk",
            "--area",
            "empathy",
            "--level",
            "1=We talk and listen",
            "--weight",
            "2",
            "--due",
            "none",
        ],
    );
    scene.run(&alex, &["goal", "edit", "Weekly talk"]);
    scene.run(&alex, &["goal", "status", "Weekly talk", "paused"]);
    scene.run(&alex, &["goal", "status", "Phone-free dinners", "achieved"]);
    scene.run(&alex, &["goal", "list"]);
    scene.run(&alex, &["goal", "list", "--all"]);
    scene.run(&alex, &["goal", "status", "Weekly talk", "active"]);
    scene.run(&alex, &["goal", "show", "Weekly talk"]);
    // The weight is Alex's own: said so in the history.
    scene.run(&alex, &["history", "--goal", "Weekly talk", "--limit", "8"]);
    snapshot(&scene, "goal_edit_and_status");

    scene.run(&alex, &["goal", "show", "no such goal"]);
    scene.run(&alex, &["goal", "add", "Bad area", "--area", "chores"]);
    scene.run(
        &alex,
        &["goal", "add", "Bad due", "--area", "other", "--due", "soon"],
    );
    scene.run(&alex, &["goal", "status", "Weekly talk", "done"]);
    scene.run(&alex, &["rate", "Weekly talk", "3"]);
    scene.run(&alex, &["rate", "no such goal", "1"]);
    scene.run(&alex, &["history", "--since", "yesterday"]);
    snapshot(&scene, "goal_errors");
}

#[test]
fn ratings_and_reflections_show_in_progress_history_export_and_report() {
    let scene = Scene::new();
    let (_relay, alex, sam) = couple(&scene);
    add_weekly_check_in(&scene, &alex);
    scene.take();

    scene.run(
        &alex,
        &[
            "rate",
            "Weekly check-in",
            "-1",
            "--note",
            "Skipped one week",
        ],
    );
    scene.run(&alex, &["rate", "Weekly check-in", "0"]);
    scene.run(
        &alex,
        &[
            "reflect",
            "--goal",
            "Weekly check-in",
            "Sunday talk went well",
        ],
    );
    scene.run(&alex, &["reflect", "--private", "Only for me"]);
    scene.run_with(
        &alex,
        &["reflect", "--prompt", "What went well?", "-"],
        Some("We laughed\n"),
    );
    snapshot(&scene, "rate_and_reflect");

    scene.run(&alex, &["sync"]);
    scene.run(&sam, &["sync"]);
    scene.run(
        &sam,
        &["rate", "Weekly check-in", "2", "--note", "Great talk"],
    );
    scene.run(&sam, &["sync"]);
    scene.run(&alex, &["sync"]);
    scene.run(&alex, &["sync"]);
    snapshot(&scene, "sync_tells_what_arrived");

    scene.run(&alex, &["progress"]);
    scene.run(&alex, &["progress", "--goal", "Weekly check-in"]);
    scene.run(&alex, &["goal", "show", "Weekly check-in"]);
    snapshot(&scene, "progress");

    scene.run(&alex, &["history"]);
    scene.run(&alex, &["history", "--by", "Sam"]);
    scene.run(
        &alex,
        &["history", "--goal", "Weekly check-in", "--limit", "2"],
    );
    scene.run(&alex, &["history", "--since", "2099-03-02"]);
    scene.run(&alex, &["history", "--by", "Nobody"]);
    snapshot(&scene, "history");

    scene.run(&alex, &["export"]);
    scene.run(&sam, &["export"]);
    snapshot(&scene, "export");

    let html = alex.home.with_file_name("report.html");
    let html = html.to_str().expect("a UTF-8 path");
    scene.run(&alex, &["report", "--html", html]);
    scene.run(
        &alex,
        &[
            "report",
            "--html",
            html,
            "--include-private",
            "--since",
            FIXED_DAY,
        ],
    );
    scene.run(&alex, &["report", "--html", html, "--goal", "no such goal"]);
    snapshot(&scene, "report");
}

#[test]
fn pairing_shows_status_and_the_safety_code_until_verified() {
    let scene = Scene::new();
    let (_relay, alex, sam) = couple(&scene);
    snapshot(&scene, "invite_and_join");

    scene.run(&alex, &["sync"]);
    scene.run(&alex, &["status"]);
    scene.run(&sam, &["status"]);
    scene.run(&alex, &["device", "list"]);
    scene.run(&alex, &["verify"]);
    scene.run(&sam, &["verify"]);
    snapshot(&scene, "paired_not_verified");

    scene.run(&alex, &["verify", "--confirm"]);
    scene.run(&alex, &["device", "list"]);
    scene.run(&alex, &["status"]);
    scene.run(&alex, &["sync", "--drop-waiting"]);
    snapshot(&scene, "verified");

    // Sam has joined: a partner invite is refused before anyone could use it.
    scene.run(&alex, &["invite"]);
    let stranger = Device::new();
    scene.run(&stranger, &["join", "not-a-code", "--name", "Kim"]);
    snapshot(&scene, "join_refused");
}

#[test]
fn devices_can_be_added_listed_and_removed() {
    let scene = Scene::new();
    let (_relay, alex, sam) = couple(&scene);
    scene.run(&alex, &["sync"]);
    scene.take();

    let code = invite_code(&scene.run(&alex, &["device", "add"]));
    let laptop = Device::new();
    scene.run(&laptop, &["join", &code]);
    scene.learn_devices(&laptop);
    scene.run(&laptop, &["status"]);
    scene.run(&alex, &["device", "list"]);
    scene.run(&sam, &["sync"]);
    scene.run(&sam, &["device", "list"]);
    snapshot(&scene, "device_add_and_join");

    let laptop_key = scene.keys.borrow()[2].clone();
    scene.run(&alex, &["device", "remove", &laptop_key[..12]]);
    scene.run(&alex, &["device", "remove", "ffffffffffff"]);
    scene.run(&alex, &["device", "list"]);
    scene.run(&sam, &["sync"]);
    scene.run(&laptop, &["sync"]);
    snapshot(&scene, "device_remove");
}

/// The demo's "GAS T-scores" line with its partners in name order (they are listed in
/// the order of their random person ids).
fn partners_in_name_order(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        match line.split_once(':') {
            Some((head, scores)) if head.starts_with("GAS T-scores") => {
                let words: Vec<&str> = scores.split_whitespace().collect();
                let mut pairs: Vec<String> = words.chunks(2).map(|p| p.join(" ")).collect();
                // "together N" stays last; the partners are sorted.
                let together = pairs.pop().unwrap_or_default();
                pairs.sort();
                pairs.push(together);
                out.push_str(&format!("{head}:  {}\n", pairs.join("  ")));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

#[test]
fn the_demo_tells_a_couples_first_week() {
    // The demo runs on the real clock: Alex's edits come before Sam's, so the goals and
    // ratings it lists keep their order (a fixed clock would tie them, ordered by ids).
    let d = Device::new();
    let r = d.run_full(&["demo"], None, &[]);
    assert_eq!(r.code, 0, "the demo runs: {}", r.stderr);
    let text = format!("$ duet demo\n{}", partners_in_name_order(&r.stdout));
    let mut s = settings();
    s.add_filter(r"http://127\.0\.0\.1:\d+", "[RELAY]");
    s.add_filter(r"(/[^/\s]+)*/duet-demo-[0-9A-Za-z]+", "[TMP]");
    s.bind(|| insta::assert_snapshot!("demo", text));
}
