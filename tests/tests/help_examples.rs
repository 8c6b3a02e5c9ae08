//! Every example a person can copy, from `duet --help`, from the help of each subcommand
//! (found by walking the help's own command lists) and from README.md's code blocks,
//! runs as written and succeeds.
//!
//! What counts as an example:
//! - in the help, each indented line under a line that starts with `Example` and ends
//!   with `:` (`Examples:`), up to the next blank or unindented line; a line ending in
//!   `\` goes on on the next; `#` starts a comment. A help line outside such a section
//!   that starts with `duet ` fails the test: write it under `Examples:`;
//! - in README.md, each line of a code block (indented or fenced) in which a line
//!   starts with `duet ` (the Quick start's `cargo` blocks build the workspace and are
//!   not `duet` examples).
//!
//! Each runs with `sh -c` exactly as written, in sequence, with the built `duet` first on
//! `PATH`, in one world set up once: a relay from the test kit, Alex's device (the
//! default `DUET_HOME`, holding [`GOALS`]) paired with Sam's, `HOME`, `TMPDIR` and the
//! working directory in a temporary folder. Where that one home cannot serve:
//! - `duet init` and `duet join` create a device, so they run in a fresh empty home;
//! - `duet goal add` runs in a copy of Alex's home: the world already holds the goals
//!   the examples name, and a second goal with the same title would make that title
//!   ambiguous for every later example; `duet relay set` too, so that the world keeps
//!   its relay;
//! - `$CODE` is a fresh invite code, for `duet join "$CODE"`: from a new device of
//!   another couple, since Alex's shared space already holds two persons.
//!
//! An example that names a goal names one of [`GOALS`] (add it there if needed); one that
//! cannot run in a test at all goes in [`EXEMPT`] with its reason.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use duet_tests::{Device, Relay, bin_dir};

/// The goals of Alex's home: (title, area). "Weekly check-in" is every example's goal;
/// "Date night" makes finding it by a word of its title a real choice.
const GOALS: &[(&str, &str)] = &[
    ("Weekly check-in", "communication"),
    ("Date night", "quality-time"),
];

/// Examples that cannot run here, matched without their trailing comment, each with why.
/// The test fails when an entry matches no example, so that the list stays narrow.
const EXEMPT: &[(&str, &str)] = &[
    (
        "duet sync --watch",
        "runs until interrupted; tests/live.rs runs it and watches what it prints",
    ),
    (
        "duet app",
        "serves until interrupted; tests/app_security.rs and app_browser.rs run it",
    ),
    (
        "duet start-over",
        "only where going on cannot help (Alex's partner is in the space), and it asks first; \
         tests/lifecycle.rs runs it on a home set up alone",
    ),
    (
        "duet app --port 8080 --no-open",
        "serves until interrupted (and port 8080 may be taken); tests/app_security.rs runs it",
    ),
];

/// Examples that pipe into another program run only where it is installed:
/// (text in the example, program).
const NEEDS: &[(&str, &str)] = &[("| man ", "man")];

/// Far longer than any example takes; only a hanging one meets it.
const DEADLINE: Duration = Duration::from_secs(120);

/// One example and where it was found.
struct Example {
    source: String,
    text: String,
}

#[test]
fn every_example_in_the_help_and_the_readme_runs_as_written() {
    let world = World::new();
    let mut help = Vec::new();
    walk_help(&world.alex, &mut Vec::new(), &mut help);
    assert!(
        help.iter().any(|e| e.source == "duet --help"),
        "`duet --help` shows examples"
    );
    let readme = readme_examples();
    assert!(!readme.is_empty(), "README.md shows `duet` examples");

    let mut used = vec![false; EXEMPT.len()];
    let mut failures = Vec::new();
    for (n, ex) in help.iter().chain(&readme).enumerate() {
        let command = ex.text.split(" #").next().unwrap_or_default().trim();
        if let Some(i) = EXEMPT.iter().position(|(e, _)| *e == command) {
            used[i] = true;
            continue;
        }
        if let Some((_, tool)) = NEEDS
            .iter()
            .find(|(pat, tool)| ex.text.contains(pat) && !installed(tool))
        {
            eprintln!("skipped (install {tool}): {}", ex.text);
            continue;
        }
        if let Err(why) = world.run(n, ex) {
            failures.push(format!("{}: {}\n{why}", ex.source, ex.text));
        }
    }
    for (i, (e, _)) in EXEMPT.iter().enumerate() {
        assert!(used[i], "the exemption {e:?} matches no example: remove it");
    }
    assert!(
        failures.is_empty(),
        "{} example(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// The help of `duet` and of every subcommand under `path`, walked through the command
/// lists of the help itself; adds their examples to `out`.
fn walk_help(alex: &Device, path: &mut Vec<String>, out: &mut Vec<Example>) {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let help = alex.ok(&args);
    let source = format!("duet {}", args.join(" "));
    out.extend(help_examples(&help, &source));
    for name in subcommands(&help) {
        path.push(name);
        walk_help(alex, path, out);
        path.pop();
    }
}

/// The subcommands a help lists under `Commands:` (without clap's own `help`).
fn subcommands(help: &str) -> Vec<String> {
    let Some(list) = help.split("Commands:\n").nth(1) else {
        return Vec::new();
    };
    list.lines()
        .take_while(|l| l.starts_with("  "))
        // Wrapped descriptions are indented further than the names.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// The examples of one help text; panics on a command line outside an Examples section.
fn help_examples(help: &str, source: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut in_section = false;
    let mut in_usage = false;
    let mut lines = help.lines();
    while let Some(line) = lines.next() {
        let indented = line.starts_with(char::is_whitespace);
        // A usage with several forms goes on over indented lines.
        if !indented {
            in_usage = line.starts_with("Usage:");
        } else if in_usage {
            continue;
        }
        if !indented {
            in_section = line.starts_with("Example") && line.trim_end().ends_with(':');
            assert!(
                in_section || !line.starts_with("Example"),
                "{source}: write examples on their own lines under `Examples:`: {line:?}"
            );
        }
        let trimmed = line.trim();
        if !in_section || !indented {
            assert!(
                !trimmed.starts_with("duet "),
                "{source}: a command outside an `Examples:` section, which this test would \
                 not run: {line:?}"
            );
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            in_section = !trimmed.is_empty();
            continue;
        }
        out.push(Example {
            source: source.to_string(),
            text: continued(trimmed, &mut lines),
        });
    }
    out
}

/// `first` with the lines that follow it when it ends in `\`, as the shell reads them.
fn continued<'a>(first: &str, rest: &mut impl Iterator<Item = &'a str>) -> String {
    let mut text = first.to_string();
    while text.ends_with('\\') {
        let Some(next) = rest.next() else { break };
        text.push('\n');
        text.push_str(next);
    }
    text
}

/// The lines of README.md's code blocks that call `duet`: every line of a block where
/// one starts with `duet `, since its other lines prepare for those.
fn readme_examples() -> Vec<Example> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md is readable");
    let mut blocks: Vec<Vec<(usize, &str)>> = vec![Vec::new()];
    let mut fenced = false;
    for (n, line) in readme.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        fenced ^= fence;
        if !fence && (fenced || line.starts_with("    ")) && !line.trim().is_empty() {
            blocks.last_mut().expect("a block").push((n + 1, line));
        } else if blocks.last().is_some_and(|b| !b.is_empty()) {
            blocks.push(Vec::new());
        }
    }
    let mut out = Vec::new();
    for block in blocks {
        if !block.iter().any(|(_, l)| l.trim().starts_with("duet ")) {
            continue;
        }
        let mut lines = block.into_iter();
        while let Some((n, line)) = lines.next() {
            let mut rest = lines.by_ref().map(|(_, l)| l);
            out.push(Example {
                source: format!("README.md line {n}"),
                text: continued(line.trim(), &mut rest),
            });
        }
    }
    out
}

/// Whether a program is on `PATH`.
fn installed(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The relay, Alex's and Sam's devices, and the folders the examples run in.
struct World {
    dir: tempfile::TempDir,
    relay: Relay,
    alex: Device,
    _sam: Device,
    /// A device whose partner has not joined yet: partner invites are made there (Alex's
    /// space has Sam, so it takes no more).
    lone: Device,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        for sub in ["user", "work", "tmp"] {
            std::fs::create_dir(dir.path().join(sub)).expect("create a folder");
        }
        let relay = Relay::start();
        let alex = Device::at(dir.path().join("alex"));
        let sam = Device::at(dir.path().join("sam"));
        alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
        for (title, area) in GOALS {
            alex.ok(&["goal", "add", title, "--area", area]);
        }
        sam.ok(&["join", &invite(&alex), "--name", "Sam"]);
        sam.ok(&["rate", GOALS[0].0, "1", "--note", "Better than last month"]);
        // A reflection of the partner's, which `reflect --reply last` answers.
        sam.ok(&["reflect", "I liked that we put the phones away"]);
        sam.ok(&["sync"]);
        alex.ok(&["sync"]);
        let lone = Device::at(dir.path().join("lone"));
        lone.ok(&["init", "--name", "Robin", "--relay", &relay.url]);
        World {
            dir,
            relay,
            alex,
            _sam: sam,
            lone,
        }
    }

    /// Runs example number `n` where it belongs; the reason when it fails.
    fn run(&self, n: usize, ex: &Example) -> Result<(), String> {
        let words: Vec<&str> = ex.text.split_whitespace().collect();
        let command = words
            .iter()
            .position(|w| *w == "duet")
            .map(|i| &words[i + 1..])
            .unwrap_or_default();
        let home = match command {
            ["init" | "join", ..] => self.dir.path().join(format!("fresh-{n}")),
            ["invite", sub, ..] if !["list", "revoke"].contains(sub) => self.lone.home.clone(),
            ["invite"] => self.lone.home.clone(),
            ["goal", "add", ..] | ["relay", "set", ..] => {
                let copy = self.dir.path().join(format!("copy-{n}"));
                copy_dir(&self.alex.home, &copy);
                copy
            }
            _ => self.alex.home.clone(),
        };
        let out = self.dir.path().join(format!("out-{n}.txt"));
        let file = std::fs::File::create(&out).expect("create the output file");
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(&ex.text)
            .current_dir(self.dir.path().join("work"))
            .env("PATH", search_path())
            .env("HOME", self.dir.path().join("user"))
            .env("DUET_HOME", &home)
            .env("TMPDIR", self.dir.path().join("tmp"))
            .env("NO_COLOR", "1")
            .env("PAGER", "cat")
            .env("MANPAGER", "cat")
            .env_remove("DUET_NOW")
            .stdin(Stdio::null())
            .stderr(file.try_clone().expect("share the output file"))
            .stdout(file);
        if ex.text.contains("$CODE") {
            // A shared space admits two persons, and Alex's has Sam: the code comes
            // from another couple's first partner.
            let inviter = Device::at(self.dir.path().join(format!("inviter-{n}")));
            inviter.ok(&["init", "--name", "Robin", "--relay", &self.relay.url]);
            sh.env("CODE", invite(&inviter));
        }
        let code = finish(sh.spawn().expect("sh starts"));
        let printed = std::fs::read_to_string(&out).unwrap_or_default();
        match code {
            Some(0) => Ok(()),
            Some(c) => Err(format!("exit code {c}; it printed:\n{printed}")),
            None => Err(format!(
                "still running after {DEADLINE:?} (killed); it printed:\n{printed}"
            )),
        }
    }
}

/// Waits for `child` until [`DEADLINE`]: its exit code, or `None` (killed) when it
/// hangs. Polled, since the standard library has no wait with a limit.
fn finish(mut child: std::process::Child) -> Option<i32> {
    let until = Instant::now() + DEADLINE;
    loop {
        match child.try_wait().expect("wait for sh") {
            Some(status) => return Some(status.code().unwrap_or(-1)),
            None if Instant::now() >= until => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// The built binaries first, then the caller's `PATH` (for `sh`, `echo`, `man`, ...).
fn search_path() -> String {
    let rest = std::env::var("PATH").unwrap_or_default();
    format!("{}:{rest}", bin_dir().display())
}

/// A fresh invite code from `alex`'s device.
fn invite(alex: &Device) -> String {
    alex.json(&["invite"])["code"]
        .as_str()
        .expect("an invite code")
        .to_string()
}

/// Copies a home (files and folders) to `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("read the home") {
        let entry = entry.expect("a home entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("its type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a file");
        }
    }
}
