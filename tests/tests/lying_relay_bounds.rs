//! A malicious relay cannot make the real `duet` CLI loop, fill its store with events
//! that never verify, or read an unbounded answer. The relay here is a small lying HTTP
//! server on 127.0.0.1 that serves pages crafted per test: one that always says more
//! events wait, one that serves thousands of events signed by keys no member has (they
//! wait for a join that never comes), and one whose answers are larger than any relay
//! sends, or endless.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use duet_core::crypto::SpaceKey;
use duet_core::event::{Event, Header, Kind, SpaceId};
use duet_core::identity::Identity;
use duet_core::protocol::{H_MORE, MAX_BODY_BYTES, encode_page};
use duet_core::store::{MAX_HELD_EVENTS, SpaceKind, Store};
use duet_core::sync::MAX_PAGES_PER_SYNC;
use duet_tests::{Device, Run};

/// One read request: the space and the `after` cursor.
struct ReadRequest {
    space: SpaceId,
    after: u64,
}

type Handler = dyn Fn(&ReadRequest, &mut TcpStream) + Send + Sync;

/// The lying relay: answers every push with "nothing stored" and every read with what
/// `handler` writes; counts the reads.
struct LyingRelay {
    url: String,
    reads: Arc<AtomicUsize>,
}

impl LyingRelay {
    fn start(handler: impl Fn(&ReadRequest, &mut TcpStream) + Send + Sync + 'static) -> LyingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let reads = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let counter = reads.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let handler = handler.clone();
                let counter = counter.clone();
                std::thread::spawn(move || serve(stream, &*handler, &counter));
            }
        });
        LyingRelay { url, reads }
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

/// Serves one request on a connection, then closes it.
fn serve(mut stream: TcpStream, handler: &Handler, reads: &AtomicUsize) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    let _ = reader.read_exact(&mut body);
    if method == "POST" {
        let json = br#"{"results":[],"cursor":0}"#;
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            json.len()
        );
        let _ = stream.write_all(json);
        return;
    }
    // GET /v1/spaces/{space}/events?after=N&limit=L
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let space = path
        .split('/')
        .nth(3)
        .and_then(SpaceId::parse)
        .unwrap_or(SpaceId([0; 16]));
    let after = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("after="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // A read of events; `init`'s check that a relay answers (`/healthz`) is not one.
    if path.ends_with("/events") {
        reads.fetch_add(1, Ordering::SeqCst);
    }
    handler(&ReadRequest { space, after }, &mut stream);
}

/// Writes a read answer: `events` framed as a page, with the `more` flag.
fn answer_page(stream: &mut TcpStream, events: &[(u64, Vec<u8>)], more: bool) {
    answer_page_ending(stream, events, more, "");
}

/// Like [`answer_page`], with `headers` (each ending in CRLF) among the answer's.
fn answer_page_ending(
    stream: &mut TcpStream,
    events: &[(u64, Vec<u8>)],
    more: bool,
    headers: &str,
) {
    let body = encode_page(events);
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n{H_MORE}: {}\r\n{headers}connection: close\r\n\r\n",
        body.len(),
        u8::from(more)
    );
    let _ = stream.write_all(&body);
}

/// An authentic event of a device no member ever admitted: it can only wait for a join
/// that never comes. A relay can make any number of them.
fn stranger_event(space: SpaceId, payload: usize) -> Vec<u8> {
    let id = Identity::generate("stranger");
    let header = Header {
        kind: Kind::Changes,
        space,
        author: id.device_key(),
        seq: 1,
        prev: [0; 32],
        time: duet_core::ids::now_ms(),
    };
    Event::changes(header, &vec![7u8; payload], &SpaceKey::generate(), &id).into_bytes()
}

/// A device initialised with `relay` as its relay (it has never reached it).
fn device_on(relay: &LyingRelay) -> Device {
    let d = Device::new();
    // Set up offline, then pointed at the relay (`init --relay` syncs at once with a
    // relay that answers): every read counted is the test's own sync's.
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["relay", "set", &relay.url]);
    d
}

/// Runs `duet` with a watchdog: past `limit` it is killed and the test fails. Returns
/// what it did and its peak resident memory (KiB).
fn run_bounded(d: &Device, args: &[&str], limit: Duration) -> (Run, u64) {
    let mut child = d.command(args).spawn().expect("duet starts");
    let collect = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = collect(Box::new(child.stdout.take().expect("stdout")));
    let err = collect(Box::new(child.stderr.take().expect("stderr")));
    let started = Instant::now();
    let mut peak = 0u64;
    let code = loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            && let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kib);
        }
        match child.try_wait().expect("wait") {
            Some(status) => break status.code().unwrap_or(-1),
            None if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`duet {}` still ran after {limit:?} (peak {peak} KiB); killed",
                    args.join(" ")
                );
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let run = Run {
        code,
        stdout: out.join().expect("stdout"),
        stderr: err.join().expect("stderr"),
    };
    (run, peak)
}

/// Events waiting on `d`, per space.
fn waiting(d: &Device) -> Vec<usize> {
    let store = Store::open(&d.home, false).expect("store");
    store
        .spaces()
        .expect("spaces")
        .iter()
        .map(|rec| store.held_stats(&rec.id).expect("held").0)
        .collect()
}

#[test]
fn a_relay_that_always_says_more_cannot_keep_a_sync_reading() {
    // Each read serves one new event past the cursor and says more wait, forever.
    let relay = LyingRelay::start(|r, s| {
        let ev = stranger_event(r.space, 16);
        answer_page(s, &[(r.after + 1, ev)], true);
    });
    let alex = device_on(&relay);
    let (run, _) = run_bounded(&alex, &["sync"], Duration::from_secs(240));
    assert_eq!(
        run.code, 3,
        "stopped early: not up to date, and said so: {run:?}"
    );
    assert!(!run.stdout.contains("Up to date"), "{run:?}");
    assert!(
        run.stderr.lines().count() < 20,
        "and says it in a few lines: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("pages in this sync") && run.stderr.contains("duet sync` again"),
        "the sync stops and says why: {}",
        run.stderr
    );
    let spaces = alex.json(&["status"])["spaces"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    assert!(
        relay.reads() <= spaces * MAX_PAGES_PER_SYNC,
        "{} reads for {spaces} spaces",
        relay.reads()
    );
}

#[test]
fn a_relay_that_says_more_but_serves_nothing_new_is_left_at_once() {
    let relay = LyingRelay::start(|_, s| answer_page(s, &[], true));
    let alex = device_on(&relay);
    let (run, _) = run_bounded(&alex, &["sync"], Duration::from_secs(60));
    assert_eq!(
        run.code, 3,
        "stopped early: not up to date, and said so: {run:?}"
    );
    assert!(!run.stdout.contains("Up to date"), "{run:?}");
    assert!(
        run.stderr.contains("serves nothing new"),
        "the sync says the relay misbehaves: {}",
        run.stderr
    );
    assert!(relay.reads() <= 4, "{} reads", relay.reads());
}

/// A page that ends below the newest cursor the relay gives with it (`duet-more: 0`)
/// left events out: the sync says so and is not up to date, as when `duet-more` lies.
#[test]
fn a_relay_whose_last_page_ends_below_its_newest_cursor_is_not_up_to_date() {
    let relay = LyingRelay::start(|_, s| answer_page_ending(s, &[], false, "duet-cursor: 5\r\n"));
    let alex = device_on(&relay);
    let (run, _) = run_bounded(&alex, &["sync"], Duration::from_secs(60));
    assert_eq!(run.code, 3, "not up to date, and said so: {run:?}");
    assert!(!run.stdout.contains("Up to date"), "{run:?}");
    assert!(
        run.stderr.contains("newest event is at cursor 5"),
        "the sync says the relay left events out: {}",
        run.stderr
    );
}

#[test]
fn a_relay_serving_thousands_of_events_that_never_verify_does_not_grow_the_store() {
    // 3,000 events of devices no member admitted, 400 a page.
    const TOTAL: u64 = 3000;
    let relay = LyingRelay::start(|r, s| {
        let end = (r.after + 400).min(TOTAL);
        let events: Vec<(u64, Vec<u8>)> = (r.after + 1..=end)
            .map(|c| (c, stranger_event(r.space, 64)))
            .collect();
        answer_page(s, &events, end < TOTAL);
    });
    let alex = device_on(&relay);
    let (run, _) = run_bounded(&alex, &["sync"], Duration::from_secs(240));
    assert_eq!(
        run.code, 3,
        "stopped early: not up to date, and said so: {run:?}"
    );
    assert!(!run.stdout.contains("Up to date"), "{run:?}");
    assert!(
        run.stderr.contains("already wait") && run.stderr.contains("--drop-waiting"),
        "the sync stops reading and says how to go on: {}",
        run.stderr
    );
    let held = waiting(&alex);
    assert!(
        held.iter().all(|n| *n <= MAX_HELD_EVENTS) && held.contains(&MAX_HELD_EVENTS),
        "at most {MAX_HELD_EVENTS} wait per space: {held:?}"
    );
    // Another sync keeps them and stops at the same place...
    let (again, _) = run_bounded(&alex, &["sync"], Duration::from_secs(240));
    assert_eq!(
        again.code, 3,
        "stopped early: not up to date, and said so: {again:?}"
    );
    assert!(!again.stdout.contains("Up to date"), "{again:?}");
    assert_eq!(waiting(&alex), held);
    // ...until they are dropped: then it reads on.
    {
        let mut store = Store::open(&alex.home, false).expect("store");
        let rec = store.space(SpaceKind::Shared).expect("shared");
        let dropped = store.drop_held(&rec.id).expect("dropped");
        assert_eq!(dropped, MAX_HELD_EVENTS);
        assert_eq!(store.held_stats(&rec.id).expect("held"), (0, 0));
    }
    let (after, _) = run_bounded(&alex, &["sync"], Duration::from_secs(240));
    assert_eq!(
        after.code, 3,
        "stopped early: not up to date, and said so: {after:?}"
    );
    assert!(!after.stdout.contains("Up to date"), "{after:?}");
    assert!(waiting(&alex).iter().all(|n| *n <= MAX_HELD_EVENTS));
}

#[test]
fn an_answer_larger_than_any_relay_sends_is_refused() {
    // A well-formed page of authentic (if useless) events, past the body limit.
    let relay = LyingRelay::start(|r, s| {
        let events: Vec<(u64, Vec<u8>)> = (1..=5)
            .map(|c| (r.after + c, stranger_event(r.space, 3_500_000)))
            .collect();
        answer_page(s, &events, false);
    });
    let alex = device_on(&relay);
    let (run, peak_kib) = run_bounded(&alex, &["sync"], Duration::from_secs(60));
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("larger than {}", MAX_BODY_BYTES + 64 * 1024)),
        "the answer is refused unread, with its reason: {}",
        run.stderr
    );
    assert!(peak_kib < 200 * 1024, "{peak_kib} KiB");
    assert_eq!(
        waiting(&alex).iter().sum::<usize>(),
        0,
        "nothing of it is kept"
    );
}

#[test]
fn an_endless_answer_is_cut_off() {
    // No length: the body goes on until the client hangs up (or 2 GiB, so that a client
    // that reads it all fails this test without exhausting the machine's memory).
    let relay = LyingRelay::start(|_, s| {
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n{H_MORE}: 0\r\nconnection: close\r\n\r\n"
        );
        let chunk = vec![0u8; 64 * 1024];
        for _ in 0..(2usize << 30) / chunk.len() {
            if s.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let alex = device_on(&relay);
    let (run, peak_kib) = run_bounded(&alex, &["sync"], Duration::from_secs(60));
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("larger than"),
        "the answer is cut off, with its reason: {}",
        run.stderr
    );
    assert!(peak_kib < 200 * 1024, "{peak_kib} KiB");
}

/// A relay that asks for a wait of days (429 with a long `Retry-After`) is not waited
/// for, and the device says how long it was asked to wait, beside "run it again" (read
/// alone, as "at once").
#[test]
fn a_wait_of_days_asked_by_the_relay_is_said_not_waited_for() {
    let relay = LyingRelay::start(|_, s| {
        let body = r#"{"error":"rate_limited","message":"slow down"}"#;
        let _ = write!(
            s,
            "HTTP/1.1 429 Too Many Requests\r\nretry-after: 999999\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
    });
    let alex = device_on(&relay);
    let (run, _) = run_bounded(&alex, &["sync"], Duration::from_secs(120));
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr
            .contains("asks this device to wait 11 days before"),
        "{}",
        run.stderr
    );
}
