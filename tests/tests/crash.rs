//! Crashes: `kill -9` of the relay during pushes and of the CLI during a sync or a local
//! write. Whatever was acknowledged or committed survives; the next sync converges.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use duet_tests::{Device, Relay, bin, pair};

/// Hashes of the events a device holds as acknowledged by the relay.
fn acked(d: &Device) -> BTreeSet<Vec<u8>> {
    let conn =
        rusqlite::Connection::open_with_flags(d.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("db");
    let mut stmt = conn
        .prepare("SELECT hash FROM events WHERE acked = 1")
        .expect("query");
    stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect()
}

fn relay_hashes(relay: &Relay) -> BTreeSet<Vec<u8>> {
    let conn = rusqlite::Connection::open(&relay.db).expect("relay db");
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity");
    assert_eq!(ok, "ok", "relay database integrity after kill -9");
    let mut stmt = conn.prepare("SELECT hash FROM events").expect("query");
    stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect()
}

fn spawn_sync(d: &Device) -> std::process::Child {
    Command::new(bin("duet"))
        .arg("sync")
        .env("DUET_HOME", &d.home)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("duet sync starts")
}

#[test]
fn the_relay_killed_at_any_moment_of_twenty_push_rounds_keeps_every_acknowledged_event() {
    let mut relay = Relay::start();
    let (a, _b) = pair(&relay);
    a.ok(&["goal", "add", "Listen first", "--area", "empathy"]);
    a.ok(&["sync"]);
    for round in 0..20u32 {
        for i in 0..=(round % 4) {
            a.ok(&[
                "rate",
                "Listen first",
                if (round + i) % 2 == 0 { "1" } else { "0" },
            ]);
        }
        let mut sync = spawn_sync(&a);
        // Vary the moment of the kill: at once, once the sync is under way (its
        // database shows activity), or after it finished.
        match round % 3 {
            0 => {}
            1 => {
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline && sync.try_wait().expect("wait").is_none() {
                    if a.home.join("duet.db-wal").exists() {
                        break;
                    }
                    std::thread::yield_now();
                }
            }
            _ => {
                let _ = sync.wait();
            }
        }
        relay.kill();
        let _ = sync.wait();
        relay.restart();
        let stored = relay_hashes(&relay);
        let missing: Vec<_> = acked(&a).difference(&stored).cloned().collect();
        assert!(
            missing.is_empty(),
            "round {round}: {} acknowledged event(s) lost",
            missing.len()
        );
    }
    a.ok(&["sync"]);
}

#[test]
fn the_cli_killed_during_sync_or_a_write_loses_nothing_committed_and_converges() {
    let relay = Relay::start();
    let (a, b) = pair(&relay);
    a.ok(&["goal", "add", "Evening walk", "--area", "quality-time"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    for round in 0..10u32 {
        // A local write killed at some point: before, during or after its commit.
        let mut write = Command::new(bin("duet"))
            .args(["rate", "Evening walk", "1"])
            .env("DUET_HOME", &a.home)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("duet rate starts");
        if round % 2 == 0 {
            let _ = write.kill();
        }
        let _ = write.wait();
        let before = a.json(&["export"])["shared"]["ratings"]
            .as_array()
            .expect("ratings")
            .len();
        // A sync killed mid-way.
        let mut sync = spawn_sync(&a);
        if round % 3 != 2 {
            let _ = sync.kill();
        }
        let _ = sync.wait();
        // The store opens and keeps everything committed.
        let after = a.json(&["export"])["shared"]["ratings"]
            .as_array()
            .expect("ratings")
            .len();
        assert_eq!(
            before, after,
            "round {round}: committed ratings survive a killed sync"
        );
    }
    // Alex's ratings are blind until the round closes: closing reveals them, so both
    // devices then hold the same shared content.
    a.ok(&["checkin", "--close"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    assert_eq!(a.json(&["export"])["shared"], b.json(&["export"])["shared"]);
    let status = a.json(&["status"]);
    assert_eq!(status["spaces"][0]["pending_changes"], 0);
    assert_eq!(status["spaces"][0]["unsent_events"], 0);
}

/// The processes whose parent is `pid` (from `/proc`).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let child: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let rest = &stat[stat.rfind(')')? + 1..];
        let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
        (ppid == pid).then_some(child)
    })
    .collect()
}

/// A check-in walk on a terminal ended abruptly at the second goal (Ctrl-C, a closed
/// window, a crash) keeps the goal rated before it. The walk runs on a real
/// pseudo-terminal (util-linux `script`); it is ended with SIGKILL, which nothing can
/// catch or ignore (Ctrl-C does nothing to a process started with SIGINT ignored, as a
/// background job's children are).
#[test]
fn a_checkin_walk_ended_abruptly_keeps_the_goals_rated_before_it() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: install script (util-linux) to run the check-in on a terminal");
        return;
    }
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "First goal", "--area", "trust"]);
    d.ok(&["goal", "add", "Second goal", "--area", "trust"]);
    let line = format!("exec {} checkin", bin("duet").display());
    let mut walk = Command::new("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .env("DUET_HOME", &d.home)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("script starts");
    let mut out = walk.stdout.take().expect("stdout");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut s = seen.lock().expect("lock");
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let wait_for = |what: &str, times: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen.lock().expect("lock").matches(what).count() < times {
            assert!(
                Instant::now() < deadline,
                "no {what:?} within 30 s: {}",
                seen.lock().expect("lock")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    use std::io::Write;
    let mut keys = walk.stdin.take().expect("stdin");
    wait_for("Your level", 1);
    keys.write_all(b"1\r").expect("type");
    wait_for("A note", 1);
    keys.write_all(b"a good week\r").expect("type");
    wait_for("Your level", 2);
    let duet = children_of(walk.id());
    assert_eq!(duet.len(), 1, "the walk runs under script: {duet:?}");
    let killed = Command::new("kill")
        .args(["-KILL", &duet[0].to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = walk.wait().expect("the walk ends");
    drop(keys);
    let _ = reader.join();
    assert!(!status.success(), "the walk was ended");
    let ratings = d.json(&["export"])["shared"]["ratings"].clone();
    let mine: Vec<_> = ratings.as_array().expect("ratings").iter().collect();
    assert_eq!(mine.len(), 1, "the first goal's rating was kept: {ratings}");
}

/// Ctrl-C or SIGTERM while `duet rate` runs: the rating is saved and said, or not saved
/// at all. Stopped between its commit and its report, a rating was saved unsaid (exit
/// 130), and the person who rated again rated twice. The signals come at moments spread
/// over the command's run, before, during and after its write.
#[test]
fn an_interrupted_rating_is_saved_and_said_or_not_saved() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Evening walk", "--area", "quality-time"]);
    let mut said = 0;
    for round in 0..30u64 {
        let child = d
            .command(&["rate", "Evening walk", "1"])
            .spawn()
            .expect("duet rate starts");
        // The moment of the signal, in steps of half a millisecond.
        std::thread::sleep(Duration::from_micros(500 * (round % 24)));
        let signal = if round % 2 == 0 { "-INT" } else { "-TERM" };
        let _ = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status();
        let out = child.wait_with_output().expect("duet rate ends");
        if String::from_utf8_lossy(&out.stdout).contains("Rated \"Evening walk\"") {
            said += 1;
        }
        assert_eq!(
            duet_tests::ratings(&d),
            said,
            "round {round}: every rating saved was said, and only those ({out:?})"
        );
    }
}

/// Runs `demo` (a command that starts `duet demo`, in a temporary folder of its own
/// given as TMPDIR), sends `signal` once its relay runs, and reads it to its end (a
/// reader gone would end the demo by a broken pipe instead): its exit status, the lines
/// it printed after the signal, and what it left in that folder.
fn demo_signalled(
    mut demo: Command,
    signal: &str,
) -> (
    std::process::ExitStatus,
    Vec<String>,
    Vec<std::ffi::OsString>,
) {
    use std::io::BufRead as _;
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut demo = demo
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("duet demo starts");
    let mut lines = std::io::BufReader::new(demo.stdout.take().expect("stdout")).lines();
    let started = lines
        .by_ref()
        .any(|l| l.is_ok_and(|l| l.starts_with("Relay running at")));
    assert!(started, "the demo starts its relay");
    let _ = Command::new("kill")
        .args([signal, &demo.id().to_string()])
        .status();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = demo.wait().expect("the demo ends");
    let left = std::fs::read_dir(tmp.path())
        .expect("the temporary folder")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    (status, rest, left)
}

/// `duet demo` stopped by a signal once its relay runs leaves no folder behind (its
/// homes hold keys): the folder a finished demo removes goes on an interrupt too.
/// SIGTERM: a test run in the background of a script starts with SIGINT ignored.
#[test]
fn an_interrupted_demo_leaves_no_folder_behind() {
    let mut demo = Command::new(bin("duet"));
    demo.arg("demo");
    let (status, _, left) = demo_signalled(demo, "-TERM");
    // Finished before the signal came, it removed its folder as usual.
    assert!(left.is_empty(), "left behind ({status:?}): {left:?}");
}

/// A signal ignored when duet starts stays ignored (`nohup duet sync --watch &`, a
/// script's background job): listening for it let it stop the command. The demo,
/// started with SIGINT ignored and sent one once its relay runs, goes on to its end.
#[test]
fn a_signal_ignored_at_start_stays_ignored() {
    let mut demo = Command::new("sh");
    demo.arg("-c")
        .arg("trap '' INT; exec \"$0\" demo")
        .arg(bin("duet"));
    let (status, rest, _) = demo_signalled(demo, "-INT");
    assert_eq!(status.code(), Some(0), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("Try it yourself")),
        "it ran to its end: {rest:?}"
    );
}
