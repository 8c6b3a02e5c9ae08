//! The relay over real TCP: the embedded relay and the `duet-relay` binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use duet_relay::Embedded;

/// A plain HTTP/1.1 GET; returns the status code and the body.
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

#[test]
fn the_embedded_relay_serves_healthz_over_tcp_and_stops_on_drop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = Embedded::start(&dir.path().join("relay.db")).expect("start");
    let url = relay.url();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let addr = relay.addr();
    let (status, body) = http_get(addr, duet_core::protocol::HEALTHZ_PATH).expect("healthz");
    assert_eq!(status, 200);
    assert!(body.contains(r#"{"status":"ok"}"#), "{body}");
    let (status, body) = http_get(addr, "/v1/spaces/..%2F../events").expect("junk");
    assert_eq!(status, 400);
    assert!(
        body.contains(duet_core::protocol::ErrorCode::BadSpaceId.as_str()),
        "{body}"
    );

    let started = Instant::now();
    drop(relay);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopping took too long"
    );
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

#[test]
fn the_binary_prints_its_address_serves_and_stops_on_sigterm() {
    prints_its_address_serves_and_stops_on("TERM");
}

/// SIGHUP (a reload, to an operator; a closed terminal) stops it as SIGTERM does: its
/// default action killed it at once, live sockets told nothing.
#[test]
fn the_binary_stops_cleanly_on_sighup() {
    prints_its_address_serves_and_stops_on("HUP");
}

fn prints_its_address_serves_and_stops_on(sig: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("bin.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_duet-relay"))
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn duet-relay");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read line");
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("duet-relay listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("an address");
    assert_ne!(addr.port(), 0);
    let (status, _) = http_get(addr, duet_core::protocol::HEALTHZ_PATH).expect("healthz");
    assert_eq!(status, 200);
    assert!(db.exists());

    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args([&format!("-{sig}"), &pid])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("duet-relay did not stop on SIG{sig}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "SIG{sig}: exit status {status}");
}

#[test]
fn the_binary_explains_an_address_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_duet-relay"))
        .args(["--listen", &addr.to_string(), "--db"])
        .arg(dir.path().join("x.db"))
        // Set for another program: the operator still gets the message, not a backtrace.
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run duet-relay");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("choose another --listen"), "{err}");
    assert!(!err.to_lowercase().contains("backtrace"), "{err}");
    assert!(out.stdout.is_empty());
    let left = std::fs::read_dir(dir.path()).expect("ls").count();
    assert_eq!(left, 0, "no database or token file is left behind");
}

/// Runs the binary to its end (it refuses to start); returns its stderr.
fn refused_start(args: &[&str], db: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_duet-relay"))
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(db)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run duet-relay");
    assert!(!out.status.success(), "started: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_token_no_client_could_send_is_refused_at_start_without_showing_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("relay.db");
    for (args, said) in [
        (
            &["--create-token", ""][..],
            "is empty (an unset shell variable?)",
        ),
        (
            &[
                "--create-token",
                "ok-token",
                "--create-token",
                "tok with space",
            ][..],
            "token 2 of 2",
        ),
        (&["--create-token", "héllo"][..], "not printable ASCII"),
    ] {
        let err = refused_start(args, &db);
        assert!(err.contains(said), "{args:?}: {err}");
        assert!(
            !err.contains("tok with space") && !err.contains("héllo"),
            "{err}"
        );
    }
    // A token file holding one no client could send is refused too.
    std::fs::write(dir.path().join("relay.db.create-token"), "tok with space\n").expect("write");
    let err = refused_start(&[], &db);
    assert!(err.contains("holds no usable token"), "{err}");
    assert!(!db.exists(), "nothing made");
}

#[test]
fn a_second_relay_on_the_same_file_is_refused_and_a_database_made_new_is_said() {
    a_second_relay_is_refused();
}

/// An operator's `DUET_RELAY_OPEN_REGISTRATION=1` (as environment files write it) opens
/// registration; it was refused as "invalid value '1' for '--open-registration'".
#[test]
fn the_open_registration_variable_takes_the_words_environment_files_use() {
    for (value, open) in [("1", true), ("yes", true), ("0", false)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let log_file = dir.path().join("relay.log");
        let mut relay = Command::new(env!("CARGO_BIN_EXE_duet-relay"))
            .args(["--listen", "127.0.0.1:0", "--db"])
            .arg(dir.path().join("relay.db"))
            .env("DUET_RELAY_OPEN_REGISTRATION", value)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_file).expect("the log"))
            .spawn()
            .expect("spawn duet-relay");
        // Started once its database is checked, the last line of its start.
        let deadline = Instant::now() + Duration::from_secs(10);
        let log = loop {
            let log = std::fs::read_to_string(&log_file).unwrap_or_default();
            if log.contains("database check") || Instant::now() > deadline {
                break log;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = relay.kill();
        let _ = relay.wait();
        assert!(log.contains("database check"), "{value}: {log}");
        assert_eq!(log.contains("open registration"), open, "{value}: {log}");
    }
}

fn a_second_relay_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("relay.db");
    // The token file of a database that is not there (moved, or a mistyped --db).
    std::fs::write(dir.path().join("relay.db.create-token"), "0123abcd\n").expect("write");
    let mut first = Command::new(env!("CARGO_BIN_EXE_duet-relay"))
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn duet-relay");
    let mut line = String::new();
    BufReader::new(first.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read line");
    assert!(line.starts_with("duet-relay listening on"), "{line}");

    let err = refused_start(&[], &db);
    assert!(err.contains("another relay is running on --db"), "{err}");
    // Through a link to the same file: refused too, and no token file is left beside
    // the link (one was made before the refusal).
    let link = dir.path().join("link.db");
    std::fs::hard_link(&db, &link).expect("a hard link");
    let err = refused_start(&[], &link);
    assert!(err.contains("another relay is running on --db"), "{err}");
    assert!(!dir.path().join("link.db.create-token").exists());

    let _ = first.kill();
    let mut log = String::new();
    first
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut log)
        .expect("log");
    let _ = first.wait();
    assert!(log.contains("started a new, empty database"), "{log}");
    assert!(
        log.contains("the creation token file of a database at this path exists"),
        "{log}"
    );
}

#[test]
fn a_db_that_is_a_directory_or_not_sqlite_is_named_and_nothing_is_made_beside_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("state");
    std::fs::create_dir(&folder).expect("mkdir");
    let other = dir.path().join("notes.txt");
    std::fs::write(&other, "not a database").expect("write");
    for (db, said) in [
        (&folder, "is a directory; give a file in it"),
        (&other, "is not a SQLite database"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_duet-relay"))
            .args(["--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .env("RUST_BACKTRACE", "0")
            .output()
            .expect("run duet-relay");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(said), "{err}");
        assert!(out.stdout.is_empty());
    }
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .expect("ls")
        .chain(std::fs::read_dir(&folder).expect("ls"))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["notes.txt", "state"], "no token file was made");
}

/// The debug log names a request's path, never its query: a pairing claim's `token`
/// (a bearer secret for one read of the sealed code) was written out with it.
#[test]
fn the_debug_log_writes_no_query_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("log");
    let (mut relay, addr) = started_logging(
        &["--open-registration"],
        &dir.path().join("relay.db"),
        &log,
        "debug",
    );
    let asked = http_get(addr, "/v1/pairings/431/sealed?token=SECRETCLAIM7&wait=0");
    assert!(asked.is_ok(), "{asked:?}");
    let _ = relay.kill();
    let _ = relay.wait();
    let said = std::fs::read_to_string(&log).expect("the log");
    assert!(
        said.contains("/v1/pairings/431/sealed") && !said.contains("SECRETCLAIM7"),
        "{said}"
    );
}

/// A relay database cut short (a copy that stopped halfway, a disk that lost its end):
/// said as damaged, with what to do (SQLite's "malformed" came three times over).
#[test]
fn a_database_cut_short_is_said_to_be_damaged_with_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("relay.db");
    let (mut relay, _) = started_logging(
        &["--open-registration"],
        &db,
        &dir.path().join("log"),
        "info",
    );
    let stopped = Command::new("kill")
        .args(["-TERM", &relay.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(stopped);
    let _ = relay.wait();
    let size = std::fs::metadata(&db).expect("the database").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .and_then(|f| f.set_len(size / 2))
        .expect("cut it short");
    let err = refused_start(&["--open-registration"], &db);
    assert!(
        err.contains("the relay database is damaged")
            && err.contains("restore the newest backup")
            && !err.contains("Error code"),
        "{err}"
    );
}

/// `--db` pointed by mistake at another program's SQLite database: the relay once added
/// its tables to it, set its schema version, made it owner-only and served from it (or,
/// with a schema version above the relay's, called it a newer relay's and still
/// changed it and made a token file beside it). It is refused now, and left byte for
/// byte as it was, nothing made beside it.
#[test]
fn another_programs_sqlite_database_is_refused_and_left_unchanged() {
    use std::os::unix::fs::PermissionsExt;
    for version in [0, 7] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("notes.sqlite");
        let conn = rusqlite::Connection::open(&db).expect("a database");
        conn.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');")
            .expect("another program's table");
        conn.pragma_update(None, "user_version", version)
            .expect("its version");
        drop(conn);
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let before = std::fs::read(&db).expect("read");
        // Without --open-registration: a creation token file would be made beside it.
        let err = refused_start(&[], &db);
        assert!(
            err.contains("of another program"),
            "version {version}: {err}"
        );
        assert_eq!(std::fs::read(&db).expect("read"), before, "unchanged");
        let mode = std::fs::metadata(&db).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o644, "its mode too");
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").collect();
        assert_eq!(left.len(), 1, "nothing made beside it: {left:?}");
    }
}

#[test]
fn a_database_from_a_newer_relay_is_said_as_such_not_as_a_directory_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("relay.db");
    let conn = rusqlite::Connection::open(&db).expect("a database");
    conn.pragma_update(None, "user_version", 99)
        .expect("version");
    drop(conn);
    let err = refused_start(&["--open-registration"], &db);
    assert!(err.contains("newer than this relay's"), "{err}");
    assert!(
        !err.contains("directory exists"),
        "the headline points elsewhere: {err}"
    );
}

#[test]
fn a_postgresql_database_that_does_not_exist_is_named_in_the_servers_words() {
    let Ok(base) = std::env::var("DUET_TEST_POSTGRES") else {
        eprintln!("skipped: set DUET_TEST_POSTGRES (.ci/postgres) to run the PostgreSQL case");
        return;
    };
    let Some((server, _)) = base.rsplit_once('/') else {
        panic!("DUET_TEST_POSTGRES is not a URL with a database: {base}");
    };
    let missing = format!("{server}/duet_no_such_database_7f3a");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_duet-relay"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--open-registration",
            "--db",
            &missing,
        ])
        .current_dir(dir.path())
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run duet-relay");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not exist"),
        "the server's reason is said: {err}"
    );
}

/// A flood's refusals are counted in the log within the report period even when no
/// refusal follows it: the count waited for the next refusal, so an operator read
/// "refused=1" through a whole flood, and its real size late or never.
#[test]
fn refusals_after_the_first_are_logged_when_the_period_ends() {
    let (dir, mut relay, statuses) = flooded();
    let log_file = dir.path().join("relay.log");
    assert_eq!(statuses[1..], [429; 4], "{statuses:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let log = loop {
        let log = std::fs::read_to_string(&log_file).unwrap_or_default();
        if log.contains("refused=3") || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = relay.kill();
    let _ = relay.wait();
    assert!(log.contains("refused=1"), "the first at once: {log}");
    assert!(
        log.contains("refused=3"),
        "the rest once the period ends: {log}"
    );
}

/// Refusals counted in the last period before the relay stops are logged as it stops:
/// they waited for the period's end, which the stop cut short.
#[test]
fn refusals_counted_when_the_relay_stops_are_logged() {
    let (dir, mut relay, _) = flooded();
    let log_file = dir.path().join("relay.log");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &relay.id().to_string()])
        .status();
    let _ = relay.wait();
    let log = std::fs::read_to_string(&log_file).unwrap_or_default();
    assert!(log.contains("refused=3"), "the rest when it stops: {log}");
}

/// A relay logging warnings to `relay.log` in the folder returned, allowed one read a
/// very long while per address, read five times: the statuses it answered.
fn flooded() -> (tempfile::TempDir, std::process::Child, Vec<u16>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_file = dir.path().join("relay.log");
    let db = dir.path().join("relay.db");
    let rate = ["--rate-per-ip", "0.001", "--burst-per-ip", "1"];
    let (relay, addr) = started_logging(&rate, &db, &log_file, "warn");
    let path = duet_core::protocol::events_path(&duet_core::event::SpaceId::generate());
    let statuses = (0..5)
        .map(|_| http_get(addr, &path).expect("an answer").0)
        .collect();
    (dir, relay, statuses)
}

/// The binary started on `db` with `args`, logging at `level` to `log`, once it says
/// where it listens.
fn started_logging(
    args: &[&str],
    db: &std::path::Path,
    log: &std::path::Path,
    level: &str,
) -> (std::process::Child, SocketAddr) {
    let mut relay = Command::new(env!("CARGO_BIN_EXE_duet-relay"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .arg("--db")
        .arg(db)
        .env("RUST_LOG", level)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("the log"))
        .spawn()
        .expect("spawn duet-relay");
    let mut line = String::new();
    BufReader::new(relay.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read line");
    let addr = line
        .trim()
        .strip_prefix("duet-relay listening on http://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (relay, addr)
}

/// A database moved without its token file: the relay makes a new token, which the
/// couples do not have, and says so (it said only "made a space creation token"). A
/// database that ran with `--open-registration` had no token to lose, and is not warned
/// of when it is first started with one.
#[test]
fn a_database_started_without_its_token_file_is_warned_of() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Starts the relay on `db` with `args`, creates a space through it (with the
    // token of its file, if it made one), and gives its log.
    let run = |db: &std::path::Path, args: &[&str], log: &str| {
        let log = dir.path().join(log);
        let (mut relay, addr) = started_logging(args, db, &log, "info");
        let mut file = db.as_os_str().to_owned();
        file.push(".create-token");
        let token = std::fs::read_to_string(&file).ok();
        let token = token.as_deref().map(str::trim);
        let space = duet_core::event::SpaceId::generate();
        let genesis = duet_testkit::ChainSigner::new("Alex").genesis(space, false);
        let headers: Vec<_> = token
            .map(|t| (duet_core::protocol::H_CREATE_TOKEN, t))
            .into_iter()
            .collect();
        let path = duet_core::protocol::events_path(&space);
        let body = duet_core::protocol::encode_batch([genesis.bytes()]);
        let created = duet_testkit::http::http(addr, "POST", &path, &headers, &body);
        assert_eq!(created.status, 200, "{created:?}");
        let _ = relay.kill();
        let _ = relay.wait();
        std::fs::read_to_string(log).expect("the log")
    };
    let db = dir.path().join("relay.db");
    let first = run(&db, &[], "first.log");
    assert!(!first.contains("had none beside it"), "{first}");
    std::fs::remove_file(dir.path().join("relay.db.create-token")).expect("the token file");
    let moved = run(&db, &[], "moved.log");
    assert!(
        moved.contains("made a new space creation token for a database that had none beside it"),
        "{moved}"
    );
    let open = dir.path().join("open.db");
    run(&open, &["--open-registration"], "open.log");
    let closed = run(&open, &[], "closed.log");
    assert!(
        closed.contains("made a space creation token") && !closed.contains("had none beside it"),
        "{closed}"
    );
}

/// A mistyped database URL is said as one: `mysql://…` or `postgres:/…` was taken for a
/// SQLite path and answered "create the directory mysql://a@b".
#[test]
fn a_database_url_of_another_kind_is_refused_as_such() {
    for url in ["mysql://a@b/c", "postgres:/broken", "postgresq://u@h/d"] {
        let err = refused_start(&[], std::path::Path::new(url));
        assert!(
            err.contains("which is not a database this relay takes")
                && err.contains("postgres://USER")
                && !err.contains("mkdir"),
            "{url}: {err}"
        );
    }
}
