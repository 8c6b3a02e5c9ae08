//! Helpers for Duet's cross-crate tests: the real `duet` and `duet-relay` binaries, each
//! device in its own temporary home, and a relay process on 127.0.0.1 with port 0.

use std::io::Read;
pub mod app;
pub mod proxy;
pub mod relay_client;
pub mod storm;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// The directory holding the built binaries (target/debug or target/release), building
/// `duet` and `duet-relay` first so the tests always run the current code.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> (tests) or target/<profile>/<bin> (duet-bench).
        let mut dir = exe
            .parent()
            .expect("executable has a directory")
            .to_path_buf();
        if dir.file_name().is_some_and(|n| n == "deps") {
            dir.pop();
        }
        let release = dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "duet", "-p", "duet-relay"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cargo runs");
        assert!(status.success(), "building duet and duet-relay failed");
        dir
    })
}

pub use duet_testkit::pg::{PG_ENV, schema_on};
pub use duet_testkit::{RelayBinary, TOKEN_FILE_MODE};

/// A fresh schema on the `DUET_TEST_POSTGRES` server, as a URL; `None` with a note that
/// the test is skipped when the variable is not set.
pub fn postgres_schema() -> Option<String> {
    duet_testkit::pg::fresh()
}

/// Path of a built binary.
pub fn bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// The `duet` binary at `duet` with `args` on `home`, the way every test starts it: no
/// colour, no standard input, standard output and error piped.
pub fn duet_command(duet: &Path, home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(duet);
    cmd.args(args)
        .env("DUET_HOME", home)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// One device: the `duet` CLI with its own home.
pub struct Device {
    /// The home directory (kept alive by `_dir`).
    pub home: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

/// What a command did.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "command failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Parses stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.ok())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

impl Device {
    /// A device with a fresh temporary home.
    pub fn new() -> Device {
        let dir = tempfile::tempdir().expect("tempdir");
        Device {
            home: dir.path().join("home"),
            _dir: Some(dir),
        }
    }

    /// A device whose home is `home` (not cleaned up).
    pub fn at(home: PathBuf) -> Device {
        Device { home, _dir: None }
    }

    /// `duet` with these arguments on this device, not started yet.
    pub fn command(&self, args: &[&str]) -> Command {
        duet_command(&bin("duet"), &self.home, args)
    }

    /// Runs `duet` with these arguments.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, None)
    }

    /// Runs `duet` with these arguments and standard input.
    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        self.run_full(args, stdin, &[])
    }

    /// Runs `duet` with extra environment variables (e.g. `DUET_NOW`), asserting success.
    #[track_caller]
    pub fn ok_env(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        self.run_full(args, None, env).ok().to_string()
    }

    /// Runs `duet` with arguments, optional standard input and extra environment.
    pub fn run_full(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args);
        cmd.envs(env.iter().copied());
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().expect("duet starts");
        if let Some(input) = stdin {
            use std::io::Write;
            let written = child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes());
            // A command that refuses before reading its input (a backup into its own
            // home) may be gone before it is written: its answer is what is checked.
            if let Err(e) = written
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                panic!("write stdin: {e}");
            }
        }
        Run::from(child.wait_with_output().expect("duet runs"))
    }

    /// Runs `duet` and asserts success; returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        r.ok().to_string()
    }

    /// Runs `duet ... --json` and parses the output.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        self.run(&a).json()
    }

    /// A partner invite code (`duet invite --json`).
    #[track_caller]
    pub fn invite_code(&self) -> String {
        self.json(&["invite"])["code"]
            .as_str()
            .expect("invite code")
            .to_string()
    }

    /// This device's key, hex (`duet status`), as `duet device remove` takes it.
    pub fn key(&self) -> String {
        self.json(&["status"])["device"]
            .as_str()
            .expect("the device's key")
            .to_string()
    }

    /// A device code for another device of this person (`duet device add`).
    pub fn device_code(&self) -> String {
        self.json(&["device", "add"])["code"]
            .as_str()
            .expect("a device code")
            .to_string()
    }

    /// How many of this device's invites are open (`duet invite list`).
    #[track_caller]
    pub fn open_invites(&self) -> usize {
        self.json(&["invite", "list"])
            .as_array()
            .expect("invites")
            .iter()
            .filter(|i| i["state"] == "open")
            .count()
    }

    /// This device's person id (`duet export --json`).
    #[track_caller]
    pub fn person_id(&self) -> String {
        self.json(&["export"])["me"]["person"]
            .as_str()
            .expect("person id")
            .to_string()
    }

    /// `duet history --json` parsed (JSON Lines).
    pub fn history(&self) -> Vec<serde_json::Value> {
        let out = self.ok(&["history", "--json"]);
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line ({e}): {l}")))
            .collect()
    }

    /// The path of the device's database.
    pub fn db(&self) -> PathBuf {
        self.home.join("duet.db")
    }
}

impl Default for Device {
    fn default() -> Self {
        Device::new()
    }
}

/// The relay binary [`bin_dir`] builds.
pub struct BuiltRelay;

impl RelayBinary for BuiltRelay {
    const LOG_LEVEL: &'static str = "warn";
    fn path() -> PathBuf {
        bin("duet-relay")
    }
}

/// A `duet-relay` process on 127.0.0.1 with a port chosen by the OS (the test kit's).
pub type Relay = duet_testkit::RelayProcess<BuiltRelay>;

/// Whether `needle` occurs anywhere in the file (or its SQLite WAL).
pub fn file_contains(path: &Path, needle: &str) -> bool {
    let mut hay = std::fs::read(path).unwrap_or_default();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    hay.extend(std::fs::read(PathBuf::from(wal)).unwrap_or_default());
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Every row of every table of a SQLite database, as text, tables in name order.
pub fn dump_sqlite(path: &Path) -> Vec<String> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open database read-only");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .expect("tables")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("names");
    let mut out = Vec::new();
    for t in tables {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{t}\""))
            .expect("select");
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                let mut row = format!("{t}:");
                for i in 0..n {
                    let v: rusqlite::types::Value = r.get(i)?;
                    row.push_str(&format!(" {v:?}"));
                }
                Ok(row)
            })
            .expect("rows");
        for row in rows {
            out.push(row.expect("row"));
        }
    }
    out
}

/// A minimal HTTP/1.1 POST over a plain TCP connection (tests that play a misbehaving
/// client). Returns the status code and the body.
pub fn http_post(base_url: &str, path: &str, body: &[u8]) -> (u16, String) {
    http_post_with(base_url, path, body, &[])
}

/// [`http_post`] with extra request headers.
pub fn http_post_with(
    base_url: &str,
    path: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> (u16, String) {
    let addr = base_url
        .trim_start_matches("http://")
        .parse()
        .expect("a relay address");
    let mut all = vec![("Content-Type", "application/octet-stream")];
    all.extend_from_slice(headers);
    let answer = duet_testkit::http::http(addr, "POST", path, &all, body);
    (answer.status, answer.text())
}

/// Pairs two devices through `relay`: Alex inits and invites, Sam joins.
pub fn pair(relay: &Relay) -> (Device, Device) {
    let a = Device::new();
    let b = Device::new();
    a.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    b.ok(&["join", &a.invite_code(), "--name", "Sam"]);
    (a, b)
}

/// A device code made on Alex's laptop while Sam, offline, removed his lost tablet:
/// Sam could not withdraw a code he had not heard of, so a device joining with it finds
/// the space at a key epoch it was never given. Returns the code; the relay holds the
/// removal.
pub fn code_older_than_a_removal_made_apart(relay: &mut Relay) -> String {
    let (alex, sam) = pair(relay);
    let tablet = Device::new();
    tablet.ok(&["join", &sam.device_code()]);
    let laptop = Device::new();
    laptop.ok(&["join", &alex.device_code()]);
    sam.ok(&["sync"]);
    let key = tablet.json(&["status"])["device"]
        .as_str()
        .expect("the tablet's key")
        .to_string();
    relay.kill();
    assert_eq!(sam.run(&["device", "remove", &key[..10]]).code, 3);
    relay.restart();
    let code = laptop.device_code();
    sam.ok(&["sync"]);
    code
}

/// Generous: the watcher reacts in milliseconds; a loaded CI machine may be slow.
pub const WATCH_DEADLINE: Duration = Duration::from_secs(60);

/// A `duet sync --watch` process whose output lines (stdout and stderr) are collected;
/// waits poll them with a deadline.
pub struct Watcher {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Watcher {
    /// Starts `duet sync --watch` on `d` and waits until it says it is watching.
    pub fn start(d: &Device) -> Watcher {
        Watcher::start_with(&bin("duet"), &d.home)
    }

    /// Starts `duet sync --watch` with the binary at `duet` on `home` (the benchmark
    /// harness runs the release build) and waits until it says it is watching.
    pub fn start_with(duet: &Path, home: &Path) -> Watcher {
        let mut child = duet_command(duet, home, &["sync", "--watch"])
            .spawn()
            .expect("duet sync --watch starts");
        let (tx, lines) = channel();
        fn forward(r: impl Read + Send + 'static, tx: std::sync::mpsc::Sender<String>) {
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines() {
                    let Ok(line) = line else { return };
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            });
        }
        forward(child.stdout.take().expect("stdout"), tx.clone());
        forward(child.stderr.take().expect("stderr"), tx);
        let mut w = Watcher {
            child,
            lines,
            seen: Vec::new(),
        };
        w.wait_for("Watching for changes");
        w
    }

    /// A line containing `text` printed at any time, those seen while starting included
    /// (stderr and stdout arrive in either order), waiting for it if need be.
    #[track_caller]
    pub fn printed(&mut self, text: &str) -> String {
        match self.seen.iter().find(|l| l.contains(text)) {
            Some(line) => line.clone(),
            None => self.wait_for(text),
        }
    }

    /// Waits until a line containing `text` is printed (after those already seen).
    #[track_caller]
    pub fn wait_for(&mut self, text: &str) -> String {
        let deadline = Instant::now() + WATCH_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "no line with {text:?} within {WATCH_DEADLINE:?}; saw {:#?}",
                        self.seen
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "the watcher ended before printing {text:?}; saw {:#?}",
                        self.seen
                    )
                }
            }
        }
    }
}

impl Watcher {
    /// Kills the watcher (a crash is a case the store must survive anyway) and returns
    /// every line it printed.
    pub fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + WATCH_DEADLINE;
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line);
        }
        std::mem::take(&mut self.seen)
    }
}

impl Watcher {
    /// Stops the watcher with a signal, as a person or a service manager does: its exit
    /// status. SIGTERM, not Ctrl-C's SIGINT: a test run in the background of a script
    /// starts with SIGINT ignored, which duet then keeps ignoring.
    pub fn interrupt(self) -> std::process::ExitStatus {
        self.interrupt_saying().0
    }

    /// [`Watcher::interrupt`], with the line it ends on.
    pub fn interrupt_saying(mut self) -> (std::process::ExitStatus, String) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM");
        let status = self.ended();
        let said = self.wait_for("Stopped watching.");
        (status, said)
    }
}

impl Watcher {
    /// Waits until the watcher ends by itself: its exit status.
    pub fn ended(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + WATCH_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("the watcher's status") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the watcher did not end within {WATCH_DEADLINE:?}"
            );
            std::thread::yield_now();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many ratings the device holds for its first goal, both partners together.
pub fn ratings(d: &Device) -> usize {
    d.json(&["progress"])["goals"][0]["partners"]
        .as_array()
        .map_or(0, |ps| {
            ps.iter()
                .map(|p| p["ratings"].as_array().map_or(0, Vec::len))
                .sum()
        })
}

/// Whether libfaketime's `faketime` runs here (tests that move a clock with it print
/// "skipped: install faketime" otherwise; `.ci/run` installs it).
pub fn faketime_or_skip() -> bool {
    let installed = Command::new("faketime")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        println!("skipped: install faketime (the Debian package `faketime`) to run this test");
    }
    installed
}

/// A relay whose clock (and so its `Date`) is moved by `offset` (libfaketime's `+10m`,
/// `-20m`), logging at `info`; only after [`faketime_or_skip`].
pub fn relay_with_clock(offset: &str) -> Relay {
    let wrapper = [
        "env",
        "FAKETIME_DONT_FAKE_MONOTONIC=1",
        "faketime",
        "-f",
        offset,
    ];
    Relay::start_logged_under(&wrapper, &[])
}

/// Headless Chromium's path, when one is installed (tests that need it print "skipped:
/// install chromium" otherwise).
pub fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            let out = Command::new("sh")
                .args(["-c", &format!("command -v {name}")])
                .output()
                .ok()?;
            let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
            (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
        })
}

/// The flags every test starts headless Chromium with: no GPU, nothing fetched or
/// synced in the background, no first-run pages.
pub const HEADLESS_CHROMIUM: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
];

/// The titles of the shared space's goals in `d`'s export.
pub fn shared_titles(d: &Device) -> Vec<String> {
    d.json(&["export"])["shared"]["goals"]
        .as_array()
        .expect("goals")
        .iter()
        .map(|g| g["title"].as_str().expect("title").to_string())
        .collect()
}
