//! Helpers for Duet's cross-crate tests: the real `duet` and `duet-relay` binaries, each
//! device in its own temporary home, and a relay process on 127.0.0.1 with port 0.

use std::io::Read;
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

/// The env var naming the PostgreSQL server of the tests.
pub const PG_ENV: &str = "DUET_TEST_POSTGRES";

/// A fresh schema on the `DUET_TEST_POSTGRES` server, as a URL; `None` with a note that
/// the test is skipped when the variable is not set.
pub fn postgres_schema() -> Option<String> {
    let Ok(base) = std::env::var(PG_ENV) else {
        eprintln!(
            "skipped: this test needs PostgreSQL; set {PG_ENV} (e.g. {PG_ENV}=\"$(.ci/postgres)\", as .ci/run does)"
        );
        return None;
    };
    Some(schema_on(&base))
}

/// A fresh schema on the PostgreSQL server at `base`, as a URL whose connections use it.
pub fn schema_on(base: &str) -> String {
    let schema = format!("t_{}", hex_id());
    duet_relay::store::postgres::create_schema(base, &schema)
        .unwrap_or_else(|e| panic!("cannot create a schema on {base}: {e}"))
}

fn hex_id() -> String {
    duet_core::ids::random_bytes::<8>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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

impl Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

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
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
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

/// A `duet-relay` process on 127.0.0.1 with a port chosen by the OS.
pub struct Relay {
    child: Child,
    /// Base URL.
    pub url: String,
    /// Database file.
    pub db: PathBuf,
    /// Who may create spaces, passed again on a restart.
    registration: Vec<String>,
    _dir: Option<tempfile::TempDir>,
}

/// The options that say who may create spaces on a relay started with `extra`: the
/// tests create spaces without a creation token (`--open-registration`, and no limit
/// of creations per address), unless they give tokens (`--create-token`) or ask for the relay's default, a token it makes and
/// keeps next to its database ([`TOKEN_FILE_MODE`]).
fn registration(extra: &[&str]) -> Vec<String> {
    let chosen = extra.iter().any(|a| {
        a.starts_with("--create-token") || *a == "--open-registration" || *a == TOKEN_FILE_MODE
    });
    let mut out = Vec::new();
    if !chosen {
        out.push("--open-registration".to_string());
        // Many tests create more spaces from 127.0.0.1 than a stranger may in a day.
        if !extra
            .iter()
            .any(|a| a.starts_with("--max-creations-per-ip"))
        {
            out.extend(["--max-creations-per-ip".to_string(), "0".to_string()]);
        }
    }
    out
}

/// Not a relay option: given to [`Relay::start_with`], it starts the relay as an
/// operator would by default (no token given: it makes one, in `<db>.create-token`).
pub const TOKEN_FILE_MODE: &str = "<token file>";

impl Relay {
    /// Starts a relay with a fresh database.
    pub fn start() -> Relay {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("relay.db");
        let mut r = Relay::start_at(&db, "127.0.0.1:0");
        r._dir = Some(dir);
        r
    }

    /// Starts a relay with a fresh database and extra command-line options.
    pub fn start_with(extra: &[&str]) -> Relay {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("relay.db");
        let mut r = Relay::spawn(&db, "127.0.0.1:0", extra);
        r._dir = Some(dir);
        r
    }

    /// Starts a relay over a fresh schema of the PostgreSQL server named by
    /// `DUET_TEST_POSTGRES`, or `None` (with a note that the test is skipped) without one.
    pub fn start_postgres() -> Option<Relay> {
        let url = postgres_schema()?;
        Some(Relay::start_database(&url))
    }

    /// Starts a relay over the database `db` (a SQLite path or a PostgreSQL URL, which
    /// several relays may share).
    pub fn start_database(db: &str) -> Relay {
        Relay::spawn(Path::new(db), "127.0.0.1:0", &[])
    }

    /// Starts a relay on `listen` with the database at `db`.
    pub fn start_at(db: &Path, listen: &str) -> Relay {
        Relay::spawn(db, listen, &[])
    }

    fn spawn(db: &Path, listen: &str, extra: &[&str]) -> Relay {
        let registration = registration(extra);
        let mut child = Command::new(bin("duet-relay"))
            .args(extra.iter().filter(|a| **a != TOKEN_FILE_MODE))
            .args(&registration)
            .args(["--listen", listen, "--db"])
            .arg(db)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("duet-relay starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        // The relay prints its address as soon as it listens; read_line returns at once
        // if the process dies, so this cannot hang.
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("relay output");
        let url = line
            .trim()
            .strip_prefix("duet-relay listening on ")
            .unwrap_or_else(|| panic!("unexpected relay output: {line:?}"))
            .to_string();
        Relay {
            child,
            url,
            db: db.to_path_buf(),
            registration,
            _dir: None,
        }
    }

    /// The `host:port` the relay listens on.
    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    /// Kills the process (no graceful shutdown) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Restarts on the same address and database.
    pub fn restart(&mut self) {
        self.kill();
        let addr = self.addr();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let fresh = Relay::start_at_checked(&self.db, &addr, &self.registration);
            match fresh {
                Some(mut r) => {
                    std::mem::swap(&mut self.child, &mut r.child);
                    r._dir = None;
                    std::mem::forget(r);
                    return;
                }
                None if Instant::now() < deadline => std::thread::yield_now(),
                None => panic!("relay could not restart on {addr}"),
            }
        }
    }

    fn start_at_checked(db: &Path, listen: &str, registration: &[String]) -> Option<Relay> {
        let mut child = Command::new(bin("duet-relay"))
            .args(registration)
            .args(["--listen", listen, "--db"])
            .arg(db)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let stdout = child.stdout.take()?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).ok()?;
        let url = line
            .trim()
            .strip_prefix("duet-relay listening on ")?
            .to_string();
        Some(Relay {
            child,
            url,
            db: db.to_path_buf(),
            registration: registration.to_vec(),
            _dir: None,
        })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill();
    }
}

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
    use std::io::{Read, Write};
    let addr = base_url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to relay");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("write head");
    stream.write_all(body).expect("write body");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read answer");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Pairs two devices through `relay`: Alex inits and invites, Sam joins.
pub fn pair(relay: &Relay) -> (Device, Device) {
    let a = Device::new();
    let b = Device::new();
    a.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let code = a.json(&["invite"])["code"]
        .as_str()
        .expect("invite code")
        .to_string();
    b.ok(&["join", &code, "--name", "Sam"]);
    (a, b)
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
