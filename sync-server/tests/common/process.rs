//! The real `duet-relay` binary as a child process on 127.0.0.1, plain HTTP/1.1 over
//! `std::net::TcpStream`, and read-only looks into its database with rusqlite.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use duet_core::event::{Event, SpaceId};
use duet_core::protocol::{ErrorBody, HEALTHZ_PATH, encode_batch};
use rusqlite::{Connection, OpenFlags};

use super::{Device, events_path};

/// The log file of a relay started with [`Proc::start_logged`], in its directory.
const LOG_FILE: &str = "relay.log";

/// A `duet-relay` process with a database in its own temporary directory.
pub struct Proc {
    child: Child,
    /// The bound address.
    pub addr: SocketAddr,
    /// The directory holding the database (and nothing else).
    pub dir: tempfile::TempDir,
    /// The database file.
    pub db: PathBuf,
}

impl Proc {
    /// Starts the binary with `--listen 127.0.0.1:0 --db DIR/relay.db` and `args`, and
    /// waits for its "listening on" line.
    pub fn start(args: &[&str]) -> Proc {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("relay.db");
        let arg = db.to_string_lossy().into_owned();
        Proc::spawn(dir, db, &arg, args)
    }

    /// Starts the binary over the database `db` (a PostgreSQL URL, shared by several
    /// processes).
    pub fn start_on(db: &str, args: &[&str]) -> Proc {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("unused.db");
        Proc::spawn(dir, path, db, args)
    }

    /// Starts the binary like [`Proc::start`], logging at `info` to [`Proc::log`] (a
    /// file, so that a flood of log lines can never block the relay on a full pipe).
    pub fn start_logged(args: &[&str]) -> Proc {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("relay.db");
        let arg = db.to_string_lossy().into_owned();
        let log = std::fs::File::create(dir.path().join(LOG_FILE)).expect("create the log");
        Proc::spawn_with(dir, db, &arg, args, Some(log))
    }

    /// [`Proc::start_logged`] with the binary run through `wrapper`, a program that
    /// executes its remaining arguments in its own place (e.g. `prlimit --nofile=N:M`),
    /// so that the process id is still the relay's.
    pub fn start_logged_under(wrapper: &[&str], args: &[&str]) -> Proc {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("relay.db");
        let arg = db.to_string_lossy().into_owned();
        let log = std::fs::File::create(dir.path().join(LOG_FILE)).expect("create the log");
        Proc::spawn_under(dir, db, &arg, args, Some(log), wrapper)
    }

    fn spawn(dir: tempfile::TempDir, db: PathBuf, db_arg: &str, args: &[&str]) -> Proc {
        Proc::spawn_with(dir, db, db_arg, args, None)
    }

    fn spawn_with(
        dir: tempfile::TempDir,
        db: PathBuf,
        db_arg: &str,
        args: &[&str],
        log: Option<std::fs::File>,
    ) -> Proc {
        Proc::spawn_under(dir, db, db_arg, args, log, &[])
    }

    fn spawn_under(
        dir: tempfile::TempDir,
        db: PathBuf,
        db_arg: &str,
        args: &[&str],
        log: Option<std::fs::File>,
        wrapper: &[&str],
    ) -> Proc {
        let (level, stderr) = match log {
            Some(file) => ("info", Stdio::from(file)),
            None => ("error", Stdio::inherit()),
        };
        let relay = env!("CARGO_BIN_EXE_duet-relay");
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(relay);
                c
            }
            None => Command::new(relay),
        };
        command
            .args(["--listen", "127.0.0.1:0", "--db", db_arg])
            .args(args);
        // These tests create spaces without a creation token, unless one is given, and
        // more of them from 127.0.0.1 than a stranger may in a day.
        if !args.iter().any(|a| a.starts_with("--create-token")) {
            command.arg("--open-registration");
            if !args.iter().any(|a| a.starts_with("--max-creations-per-ip")) {
                command.args(["--max-creations-per-ip", "0"]);
            }
        }
        let mut child = command
            .env("RUST_LOG", level)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn duet-relay");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        // read_line returns at once if the process dies, so this cannot hang.
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the first line");
        let addr = line
            .trim()
            .strip_prefix("duet-relay listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("an address");
        Proc {
            child,
            addr,
            dir,
            db,
        }
    }

    /// What the relay logged so far (started with [`Proc::start_logged`]).
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
        http(self.addr, method, target, headers, body)
    }

    /// `GET /healthz`.
    pub fn healthz(&self) -> Reply {
        self.request("GET", HEALTHZ_PATH, &[], b"")
    }

    /// Pushes `events` to `space`.
    pub fn push(&self, space: &SpaceId, events: &[&Event]) -> Reply {
        let body = encode_batch(events.iter().map(|e| e.bytes()));
        self.request("POST", &events_path(space), &[], &body)
    }

    /// A read of `space` signed by `reader` (the query is sent as signed).
    pub fn read(&self, reader: &Device, space: &SpaceId, query: &str) -> Reply {
        let path = events_path(space);
        let auth = reader.read_auth(&path, query);
        let target = if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        };
        let headers = auth.headers();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        self.request("GET", &target, &headers, b"")
    }

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

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The first header of this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The JSON error body (panics with the answer if it is not one).
    pub fn error(&self) -> ErrorBody {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{} {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not an error body ({e}): {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts a 200.
    pub fn ok(&self) -> &Reply {
        assert_eq!(
            self.status,
            200,
            "expected 200: {}",
            String::from_utf8_lossy(&self.body)
        );
        self
    }
}

/// Writes a request (`Connection: close`, `Content-Length` when there is a body or the
/// method is POST) and reads the whole answer.
pub fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write head");
    stream.write_all(body).expect("write body");
    read_reply(&mut stream)
}

/// Reads one answer until the relay closes the connection.
pub fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut raw = Vec::new();
    // A reset after the full answer arrived is fine; the answer is what counts.
    if let Err(e) = stream.read_to_end(&mut raw) {
        assert!(
            e.kind() == std::io::ErrorKind::ConnectionReset && !raw.is_empty(),
            "reading the answer failed: {e}"
        );
    }
    parse_reply(&raw).unwrap_or_else(|| {
        panic!(
            "not an HTTP answer: {:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(500)])
        )
    })
}

/// Parses an HTTP/1.1 answer with a `Content-Length` (or none: the rest is the body).
pub fn parse_reply(raw: &[u8]) -> Option<Reply> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let len = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok());
    assert!(
        !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding")),
        "chunked answers are not expected"
    );
    if let Some(len) = len {
        body.truncate(len);
    }
    Some(Reply {
        status,
        headers,
        body,
    })
}

/// A shared space on the relay process: Alex pushed its genesis and an invite, Sam
/// joined with it (3 events, one push each).
pub struct Space {
    pub id: SpaceId,
    pub key: duet_core::crypto::SpaceKey,
    pub alex: Device,
    pub sam: Device,
}

impl Space {
    pub fn create(p: &Proc) -> Space {
        let id = SpaceId::generate();
        let mut alex = Device::new("Alex");
        let mut sam = Device::new("Sam");
        let seed = duet_core::ids::random_bytes::<32>();
        let g = alex.genesis(id, false);
        let i = alex.invite(id, seed, super::now_ms() + 3_600_000);
        p.push(&id, &[&g, &i]).ok();
        let j = sam.join(id, seed);
        p.push(&id, &[&j]).ok();
        Space {
            id,
            key: duet_core::crypto::SpaceKey::generate(),
            alex,
            sam,
        }
    }
}
