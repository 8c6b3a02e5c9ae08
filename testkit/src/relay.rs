//! A real `duet-relay` process on 127.0.0.1 with a port chosen by the OS, over a SQLite
//! file in its own temporary directory (or a database given, e.g. a PostgreSQL schema
//! from [`crate::pg`]); requests through [`crate::http`] and read-only looks into its
//! SQLite database.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use duet_core::event::{Event, SpaceId};
use duet_core::protocol::HEALTHZ_PATH;
use rusqlite::{Connection, OpenFlags};

use crate::ChainSigner;
use crate::http::{self, Reply};

/// Where a test crate finds the built relay: integration tests of the relay's own crate
/// know it at compile time, the end-to-end tests build it first.
pub trait RelayBinary {
    /// `RUST_LOG` of a relay whose standard error goes to the test's.
    const LOG_LEVEL: &'static str;
    /// The path of the built `duet-relay`.
    fn path() -> PathBuf;
}

/// Not a relay option: given to [`RelayProcess::start_with`], it starts the relay as an
/// operator would by default (no token given: it makes one, in `<db>.create-token`).
pub const TOKEN_FILE_MODE: &str = "<token file>";

/// The log file of a relay started with [`RelayProcess::start_logged`], in its directory.
const LOG_FILE: &str = "relay.log";

/// A `duet-relay` process; killed when dropped.
pub struct RelayProcess<B: RelayBinary> {
    child: Child,
    /// The bound address.
    pub addr: SocketAddr,
    /// The base URL (`http://` and the address).
    pub url: String,
    /// The temporary directory of the database (and of the log, if any).
    pub dir: tempfile::TempDir,
    /// The database (a SQLite file, or a PostgreSQL URL given to [`RelayProcess::start_on`]).
    pub db: PathBuf,
    /// Who may create spaces, passed again on a restart.
    registration: Vec<String>,
    binary: PhantomData<B>,
}

/// One start of the binary.
struct Launch<'a> {
    db: &'a OsStr,
    listen: &'a str,
    args: &'a [&'a str],
    level: &'a str,
    stderr: Stdio,
    wrapper: &'a [&'a str],
}

/// The options that say who may create spaces on a relay started with `extra`: the
/// tests create spaces without a creation token (`--open-registration`, and no limit
/// of creations per address), unless they give tokens (`--create-token`) or ask for the
/// relay's default, a token it makes and keeps next to its database ([`TOKEN_FILE_MODE`]).
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

/// The processes whose parent is `pid` (read from /proc; none where there is none).
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                // The parent is the second field after the command, which is in
                // parentheses and may hold spaces.
                .and_then(|stat| {
                    let rest = stat.rsplit_once(')')?.1;
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// Starts the binary (through `wrapper`, if any) and reads its first line, the address it
/// listens on; `None` if it could not start or listen.
fn launch(bin: &Path, l: Launch) -> Option<(Child, String)> {
    let mut command = match l.wrapper.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let mut child = command
        .args(l.args.iter().filter(|a| **a != TOKEN_FILE_MODE))
        .args(["--listen", l.listen, "--db"])
        .arg(l.db)
        .env("RUST_LOG", l.level)
        .stdout(Stdio::piped())
        .stderr(l.stderr)
        .spawn()
        .ok()?;
    let stdout = child.stdout.take()?;
    let mut line = String::new();
    // The relay prints its address as soon as it listens; read_line returns at once if
    // the process dies, so this cannot hang.
    BufReader::new(stdout).read_line(&mut line).ok()?;
    let url = line.trim().strip_prefix("duet-relay listening on ")?;
    Some((child, url.to_string()))
}

impl<B: RelayBinary> RelayProcess<B> {
    /// Starts a relay with a fresh database.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a relay with a fresh database and extra command-line options.
    pub fn start_with(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("relay.db");
        Self::spawn(dir, db, "127.0.0.1:0", args, None, &[])
    }

    /// Starts a relay over the database `db` (a SQLite path or a PostgreSQL URL, which
    /// several relays may share).
    pub fn start_on(db: &str, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::spawn(dir, PathBuf::from(db), "127.0.0.1:0", args, None, &[])
    }

    /// [`RelayProcess::start_on`], logging as [`RelayProcess::start_logged`] does.
    pub fn start_logged_on(db: &str, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = std::fs::File::create(dir.path().join(LOG_FILE)).expect("create the log");
        Self::spawn(dir, PathBuf::from(db), "127.0.0.1:0", args, Some(log), &[])
    }

    /// Starts a relay over a fresh schema of the PostgreSQL server named by
    /// `DUET_TEST_POSTGRES`, or `None` (with a note that the test is skipped) without one.
    pub fn start_postgres() -> Option<Self> {
        Some(Self::start_on(&crate::pg::fresh()?, &[]))
    }

    /// Starts a relay like [`RelayProcess::start_with`], logging at `info` to
    /// [`RelayProcess::log`] (a file, so that a flood of log lines can never block the
    /// relay on a full pipe).
    pub fn start_logged(args: &[&str]) -> Self {
        Self::start_logged_under(&[], args)
    }

    /// [`RelayProcess::start_logged`] with the binary run through `wrapper`, a program
    /// that executes its remaining arguments in its own place (e.g. `prlimit
    /// --nofile=N:M`), so that the process id is still the relay's.
    pub fn start_logged_under(wrapper: &[&str], args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("relay.db");
        let log = std::fs::File::create(dir.path().join(LOG_FILE)).expect("create the log");
        Self::spawn(dir, db, "127.0.0.1:0", args, Some(log), wrapper)
    }

    fn spawn(
        dir: tempfile::TempDir,
        db: PathBuf,
        listen: &str,
        args: &[&str],
        log: Option<std::fs::File>,
        wrapper: &[&str],
    ) -> Self {
        let registration = registration(args);
        let reg: Vec<&str> = registration.iter().map(String::as_str).collect();
        let all = [args, &reg].concat();
        // Under a wrapper (libfaketime preloaded into a multithreaded process), a start
        // now and then dies before it listens, on a loaded machine: tried three times,
        // and the log of the last try is shown if none starts.
        let tries = if wrapper.is_empty() { 1 } else { 3 };
        for attempt in 1..=tries {
            let stderr = match log.as_ref().and_then(|f| f.try_clone().ok()) {
                Some(file) => Stdio::from(file),
                None => Stdio::inherit(),
            };
            let level = if log.is_some() { "info" } else { B::LOG_LEVEL };
            let launched = launch(
                &B::path(),
                Launch {
                    db: db.as_os_str(),
                    listen,
                    args: &all,
                    level,
                    stderr,
                    wrapper,
                },
            );
            if let Some((child, url)) = launched {
                return Self::with(child, url, dir, db, registration);
            }
            if attempt == tries {
                let said = std::fs::read_to_string(dir.path().join(LOG_FILE)).unwrap_or_default();
                panic!(
                    "duet-relay did not start and print its address ({tries} tries); its log:\n{said}"
                );
            }
        }
        unreachable!("the last try returns or panics")
    }

    fn with(
        child: Child,
        url: String,
        dir: tempfile::TempDir,
        db: PathBuf,
        registration: Vec<String>,
    ) -> Self {
        let addr = url
            .strip_prefix("http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("not an address: {url:?}"));
        RelayProcess {
            child,
            addr,
            url,
            dir,
            db,
            registration,
            binary: PhantomData,
        }
    }

    /// The database it was started on (a SQLite path or a PostgreSQL URL).
    pub fn db(&self) -> &std::path::Path {
        &self.db
    }

    /// The `host:port` the relay listens on.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Kills the process (no graceful shutdown) and waits for it. A relay started
    /// through a wrapper (libfaketime's `faketime` forks it and waits) is its child:
    /// killed first, or it would outlive the test.
    pub fn kill(&mut self) {
        for pid in children_of(self.child.id()) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Restarts on the same address and database (retrying while the port is not free);
    /// a relay started with [`RelayProcess::start_logged`] goes on logging to its log.
    pub fn restart(&mut self) {
        self.kill();
        let addr = self.addr();
        let reg: Vec<&str> = self.registration.iter().map(String::as_str).collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        let log = self.dir.path().join(LOG_FILE);
        loop {
            let appended = std::fs::OpenOptions::new().append(true).open(&log);
            let (level, stderr) = match appended {
                Ok(file) => ("info", Stdio::from(file)),
                Err(_) => ("error", Stdio::null()),
            };
            let launch_once = Launch {
                db: self.db.as_os_str(),
                listen: &addr,
                args: &reg,
                level,
                stderr,
                wrapper: &[],
            };
            match launch(&B::path(), launch_once) {
                Some((child, _)) => {
                    self.child = child;
                    return;
                }
                None if Instant::now() < deadline => std::thread::yield_now(),
                None => panic!("relay could not restart on {addr}"),
            }
        }
    }

    /// What the relay logged so far (started with [`RelayProcess::start_logged`]).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(LOG_FILE)).expect("read the relay's log")
    }

    /// The relay's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The relay process's peak resident memory so far (`VmHWM` of /proc/PID/status),
    /// in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmHWM in /proc/PID/status: {status}"));
        kib * 1024
    }

    /// Sends SIGTERM and waits (with a deadline) for a successful exit.
    pub fn terminate(mut self, within: Duration) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(killed.success());
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "exit status {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "duet-relay did not stop within {within:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One request on a fresh connection (`Connection: close`).
    pub fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        http::http(self.addr, method, target, headers, body)
    }

    /// `GET /healthz`.
    pub fn healthz(&self) -> Reply {
        self.request("GET", HEALTHZ_PATH, &[], b"")
    }

    /// Pushes `events` to `space`.
    pub fn push(&self, space: &SpaceId, events: &[&Event]) -> Reply {
        http::push(self.addr, space, events)
    }

    /// A read of `space` signed by `reader` (the query is sent as signed).
    pub fn read(&self, reader: &ChainSigner, space: &SpaceId, query: &str) -> Reply {
        http::read(self.addr, reader, space, query)
    }
}

/// Read-only looks into the relay's SQLite database, while it runs.
impl<B: RelayBinary> RelayProcess<B> {
    /// A read-only connection to the database (the relay keeps running).
    pub fn db_ro(&self) -> Connection {
        Connection::open_with_flags(&self.db, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the relay database read-only")
    }

    /// Rows of the events table.
    pub fn event_count(&self) -> i64 {
        self.db_ro()
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .expect("count events")
    }

    /// Every stored event: `(cursor, space, hash, bytes)` in cursor order.
    pub fn events(&self) -> Vec<(i64, String, Vec<u8>, Vec<u8>)> {
        let conn = self.db_ro();
        let mut stmt = conn
            .prepare("SELECT cursor, space, hash, bytes FROM events ORDER BY cursor")
            .expect("prepare");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    /// The tables of the database and the integrity check's answer.
    pub fn tables_and_integrity(&self) -> (Vec<String>, String) {
        let conn = self.db_ro();
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .expect("prepare");
        let tables = stmt
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("integrity_check");
        (tables, ok)
    }

    /// The names of the files in the database's directory.
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl<B: RelayBinary> Drop for RelayProcess<B> {
    fn drop(&mut self) {
        self.kill();
    }
}
