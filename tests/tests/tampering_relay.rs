//! A relay that withholds, reorders, truncates or rolls back what it serves. The relay
//! here is the real process; the tampering is done to its database underneath it, as a
//! malicious operator (or a restore from an old backup) would.

use duet_tests::{Device, Relay, pair};
use rusqlite::{Connection, params};

/// One stored relay row, enough to put it back.
struct Row {
    cursor: i64,
    space: String,
    hash: Vec<u8>,
    author: Vec<u8>,
    seq: i64,
    kind: String,
    bytes: Vec<u8>,
    received_at: i64,
}

/// Removes the newest `n` changes events from the relay's database; returns them oldest
/// first.
fn take_newest(relay: &Relay, n: usize) -> Vec<Row> {
    let conn = Connection::open(&relay.db).expect("relay db");
    let mut stmt = conn
        .prepare(
            "SELECT cursor, space, hash, author, seq, kind, bytes, received_at FROM events
             WHERE kind = 'changes' ORDER BY cursor DESC LIMIT ?1",
        )
        .expect("select");
    let rows: Vec<(i64, Row)> = stmt
        .query_map([n as i64], |r| {
            Ok((
                r.get(0)?,
                Row {
                    cursor: r.get(0)?,
                    space: r.get(1)?,
                    hash: r.get(2)?,
                    author: r.get(3)?,
                    seq: r.get(4)?,
                    kind: r.get(5)?,
                    bytes: r.get(6)?,
                    received_at: r.get(7)?,
                },
            ))
        })
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect();
    for (cursor, _) in &rows {
        conn.execute("DELETE FROM events WHERE cursor = ?1", [cursor])
            .expect("delete");
    }
    let mut rows: Vec<Row> = rows.into_iter().map(|(_, r)| r).collect();
    rows.reverse();
    rows
}

/// Puts rows back (they get new, higher cursors), in the given order.
fn put_back(relay: &Relay, rows: &[Row]) {
    let conn = Connection::open(&relay.db).expect("relay db");
    for r in rows {
        conn.execute(
            "INSERT INTO events (space, hash, author, seq, kind, bytes, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![r.space, r.hash, r.author, r.seq, r.kind, r.bytes, r.received_at],
        )
        .expect("insert");
    }
}

/// Puts a row back where it was (its old cursor).
fn put_back_where_it_was(relay: &Relay, r: &Row) {
    let conn = Connection::open(&relay.db).expect("relay db");
    conn.execute(
        "INSERT INTO events (cursor, space, hash, author, seq, kind, bytes, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![r.cursor, r.space, r.hash, r.author, r.seq, r.kind, r.bytes, r.received_at],
    )
    .expect("insert");
}

fn ratings(d: &Device) -> usize {
    d.json(&["export"])["shared"]["ratings"]
        .as_array()
        .expect("ratings")
        .len()
}

/// Sam makes `n` ratings, each synced as its own event. Sam closes each round at once,
/// so every event carries a rating Alex can see (a blind one would reach Alex as a seal).
fn sam_rates(b: &Device, n: usize) {
    for i in 0..n {
        rate_synced(b, if i % 2 == 0 { "1" } else { "-1" });
    }
}

/// One rating of the check-in goal at `level`, revealed at once and synced as its own
/// event.
fn rate_synced(d: &Device, level: &str) {
    d.ok(&["rate", "Weekly check-in", level]);
    d.ok(&["checkin", "--close"]);
    d.ok(&["sync"]);
}

/// Both partners hold the same shared space, with no rating left sealed.
#[track_caller]
fn assert_converged(a: &Device, b: &Device) {
    let (sa, sb) = (
        a.json(&["export"])["shared"].clone(),
        b.json(&["export"])["shared"].clone(),
    );
    assert_eq!(sa["sealed"].as_array().map(Vec::len), Some(0), "{sa}");
    assert_eq!(sa, sb);
}

fn setup() -> (Relay, Device, Device) {
    let relay = Relay::start();
    let (a, b) = pair(&relay);
    a.ok(&["goal", "add", "Weekly check-in", "--area", "communication"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    (relay, a, b)
}

#[test]
fn a_withheld_event_makes_later_ones_wait_until_it_is_served_and_nothing_is_lost() {
    let (relay, a, b) = setup();
    sam_rates(&b, 3);
    // The relay withholds the first of Sam's three rating events: it serves the later
    // two, then the withheld one only afterwards.
    let rows = take_newest(&relay, 3);
    put_back(&relay, &rows[1..]);
    // (Told to drop what waited before it, of which there was nothing: what waits after
    // its read is said to need another.)
    let r = a.run(&["sync", "--drop-waiting"]);
    assert_eq!(
        r.code, 3,
        "not up to date, and a scheduled sync learns it: {r:?}"
    );
    assert!(
        r.stderr
            .contains("set aside only what waited before this sync read"),
        "{r:?}"
    );
    assert!(
        r.stderr.contains("wait for an earlier event"),
        "the wait is reported: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains("not up to date: 2 events wait")
            && r.stderr.contains("run `duet sync` again later")
            && !r.stdout.contains("Up to date."),
        "the sync says it is not up to date and what to do: {r:?}"
    );
    assert_eq!(ratings(&a), 0, "nothing out of order is applied");
    let status = a.json(&["status"]);
    assert_eq!(status["spaces"][0]["waiting_events"], 2);
    assert!(a.ok(&["status"]).contains("wait for an earlier event"));

    put_back(&relay, &rows[..1]);
    let r = a.run(&["sync"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        ratings(&a),
        3,
        "once served, the withheld event and those waiting apply"
    );
    assert_eq!(a.json(&["status"])["spaces"][0]["waiting_events"], 0);
    assert_converged(&a, &b);
}

#[test]
fn an_event_left_out_of_a_page_is_read_again_where_it_was_and_those_after_it_apply() {
    let (relay, a, b) = setup();
    sam_rates(&b, 3);
    // The relay leaves the first of Sam's three rating events out of what it serves,
    // then serves it again only where it was: below the cursor Alex has read past.
    let rows = take_newest(&relay, 3);
    put_back(&relay, &rows[1..]);
    assert_eq!(a.run(&["sync"]).code, 3, "two events wait");
    assert_eq!(ratings(&a), 0, "nothing out of order is applied");
    put_back_where_it_was(&relay, &rows[0]);
    let r = a.run(&["sync"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(ratings(&a), 3, "the gap is read again: {}", r.stderr);
    assert_eq!(a.json(&["status"])["spaces"][0]["waiting_events"], 0);
    assert_converged(&a, &b);
}

#[test]
fn events_served_in_reverse_order_are_all_applied() {
    let (relay, a, b) = setup();
    sam_rates(&b, 4);
    let mut rows = take_newest(&relay, 4);
    rows.reverse();
    put_back(&relay, &rows);
    a.ok(&["sync"]);
    assert_eq!(ratings(&a), 4);
    assert_converged(&a, &b);
}

#[test]
fn a_relay_that_rolls_back_is_detected_and_given_back_what_it_lost() {
    let (mut relay, a, b) = setup();
    sam_rates(&b, 3);
    a.ok(&["sync"]);
    assert_eq!(ratings(&a), 3);
    let before = a.json(&["export"])["shared"].clone();
    // The operator restores an older copy: the newest events disappear.
    let lost = take_newest(&relay, 2);
    relay.restart();
    let kept = relay_hashes(&relay).len();
    let r = a.run(&["sync"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("lost or hides events") && r.stderr.contains("gave back 2 events"),
        "rollback reported by sync: {}",
        r.stderr
    );
    let status = a.ok(&["status"]);
    assert!(
        status.contains("WARNING") && status.contains("lost or be hiding events"),
        "{status}"
    );
    assert_eq!(
        a.json(&["export"])["shared"],
        before,
        "nothing already received is dropped"
    );
    // Alex's device carried Sam's two lost events back to the relay.
    assert_eq!(relay_hashes(&relay).len(), kept + 2);
    for row in &lost {
        assert!(relay_hashes(&relay).contains(&row.hash), "given back");
    }
    sam_rates(&b, 1);
    a.ok(&["sync"]);
    assert_eq!(ratings(&a), 4);
    assert_converged(&a, &b);
}

/// The hashes of every event the relay stores.
fn relay_hashes(relay: &Relay) -> Vec<Vec<u8>> {
    let conn = Connection::open(&relay.db).expect("relay db");
    let mut stmt = conn.prepare("SELECT hash FROM events").expect("select");
    stmt.query_map([], |r| r.get(0))
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect()
}

/// A copy of the relay's database (the file and its write-ahead log), taken with the
/// relay stopped, as an operator's backup; the relay is started again.
struct Backup {
    dir: tempfile::TempDir,
}

const DB_FILES: [&str; 3] = ["", "-wal", "-shm"];

fn with_suffix(db: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

impl Backup {
    fn take(relay: &mut Relay) -> Backup {
        relay.kill();
        let dir = tempfile::tempdir().expect("tempdir");
        for suffix in DB_FILES {
            let from = with_suffix(&relay.db, suffix);
            if from.exists() {
                std::fs::copy(&from, with_suffix(&dir.path().join("relay.db"), suffix))
                    .expect("copy the database");
            }
        }
        relay.restart();
        Backup { dir }
    }

    /// Stops the relay, puts the backup in place of its database (moving the newer
    /// files away, as docs/self-hosting.md says) and starts it again.
    fn restore(&self, relay: &mut Relay) {
        relay.kill();
        for suffix in DB_FILES {
            let _ = std::fs::remove_file(with_suffix(&relay.db, suffix));
            let from = with_suffix(&self.dir.path().join("relay.db"), suffix);
            if from.exists() {
                std::fs::copy(&from, with_suffix(&relay.db, suffix)).expect("restore");
            }
        }
        relay.restart();
    }
}

/// Alex makes `n` ratings, each synced as its own event (and revealed at once).
fn alex_rates(a: &Device, n: usize) {
    for _ in 0..n {
        rate_synced(a, "2");
    }
}

#[test]
fn partners_give_back_what_a_relay_restored_from_an_old_backup_lost_and_sync_on() {
    let (mut relay, a, b) = setup();
    let backup = Backup::take(&mut relay);
    alex_rates(&a, 1);
    sam_rates(&b, 1);
    a.ok(&["sync"]);
    assert_eq!((ratings(&a), ratings(&b)), (2, 2));
    backup.restore(&mut relay);

    // Sam's next push follows an event the relay lost: his device gives back both
    // partners' lost events, then sends the new one.
    b.ok(&["rate", "Weekly check-in", "0"]);
    b.ok(&["checkin", "--close"]);
    let r = b.run(&["sync"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("gave back"), "{}", r.stderr);
    a.ok(&["sync"]);
    assert_eq!(ratings(&a), 3, "Alex gets Sam's new rating");
    // Both go on as before: no broken chain, nothing lost.
    alex_rates(&a, 1);
    b.ok(&["sync"]);
    assert_eq!(ratings(&b), 4);
    assert_converged(&a, &b);
}

#[test]
fn a_device_ahead_of_a_restored_relay_still_gets_what_was_sent_after_the_restore() {
    let (mut relay, a, b) = setup();
    let backup = Backup::take(&mut relay);
    // Alex syncs two ratings that Sam never reads before the restore loses them.
    alex_rates(&a, 2);
    backup.restore(&mut relay);
    // Sam, who lost nothing of his own, rates twice: the restored relay numbers his
    // events with cursors Alex's device has already read past, and now ends at or
    // after Alex's cursor, so only the event Alex read last tells the story.
    sam_rates(&b, 2);
    let r = a.run(&["sync"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("no longer serves at cursor") && r.stderr.contains("gave back 2 events"),
        "{}",
        r.stderr
    );
    assert_eq!(ratings(&a), 4, "Sam's two ratings reached Alex");
    b.ok(&["sync"]);
    assert_eq!(ratings(&b), 4, "Alex's two lost ratings reached Sam");
    alex_rates(&a, 1);
    b.ok(&["sync"]);
    assert_converged(&a, &b);
}

#[test]
fn a_change_sent_after_the_last_read_reaches_the_partner_though_a_restored_relay_gave_its_cursor_to_another()
 {
    let (mut relay, a, b) = setup();
    let backup = Backup::take(&mut relay);
    // Sam sends a reflection and reads nothing after it; the relay is then restored
    // from the copy made before, and numbers Alex's next change where Sam's was.
    b.ok(&["reflect", "Canary-8d1 glad we talked"]);
    b.ok(&["sync"]);
    backup.restore(&mut relay);
    a.ok(&["reflect", "me too"]);
    a.ok(&["sync"]);
    // Sam's next sync is served Alex's change at that cursor: the relay lost Sam's.
    let r = b.run(&["sync"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("gave back"), "{}", r.stderr);
    a.ok(&["sync"]);
    assert!(a.ok(&["reflections"]).contains("Canary-8d1"));
    assert_converged(&a, &b);
}

#[test]
fn a_truncated_read_is_completed_by_the_next_sync() {
    let (relay, a, b) = setup();
    sam_rates(&b, 3);
    // The relay serves only the first of three new events (the tail is cut off)...
    let rows = take_newest(&relay, 2);
    a.ok(&["sync"]);
    assert_eq!(ratings(&a), 1);
    // ...and serves the rest later.
    put_back(&relay, &rows);
    a.ok(&["sync"]);
    assert_eq!(ratings(&a), 3);
    assert_converged(&a, &b);
}

#[test]
fn an_equivocating_device_is_refused_and_both_partners_are_warned() {
    use duet_core::event::{Event, Header, Kind};
    use duet_core::store::{SpaceKind, Store};
    let (relay, a, b) = setup();
    // Sam's device signs a second, different event with a sequence number it already used.
    let (space, forged) = {
        let store = Store::open(&b.home, false).expect("B store");
        let sam = store.require_identity().expect("identity");
        let rec = store.space(SpaceKind::Shared).expect("shared");
        let ev = Event::changes(
            Header {
                kind: Kind::Changes,
                space: rec.id,
                author: sam.device_key(),
                seq: 1,
                prev: [0; 32],
                time: 0,
            },
            b"\x02",
            &rec.key,
            &sam,
        );
        (rec.id, ev)
    };
    let body = duet_core::protocol::encode_batch([forged.bytes()]);
    let (status, answer) =
        duet_tests::http_post(&relay.url, &format!("/v1/spaces/{space}/events"), &body);
    assert_eq!(status, 409, "{answer}");
    assert!(answer.contains("\"fork\""), "{answer}");
    let before = a.json(&["export"])["shared"].clone();
    for d in [&a, &b] {
        let r = d.run(&["sync"]);
        assert_eq!(r.code, 0, "{r:?}");
        assert!(
            r.stderr.contains("equivocation")
                && r.stderr
                    .contains("was copied, a key may have been stolen; compare")
                && r.stderr.contains("`duet verify`"),
            "warned on sync, with what to do: {}",
            r.stderr
        );
        assert!(d.ok(&["status"]).contains("equivocation"), "and in status");
    }
    assert_eq!(
        a.json(&["export"])["shared"],
        before,
        "the first event is kept, nothing changes"
    );
}

#[test]
fn an_event_the_relay_lost_after_this_devices_last_read_is_given_back_at_the_next_sync() {
    let (mut relay, a, b) = setup();
    // Sam's sync reads first, then sends the new goal: Sam's device never reads back
    // where the relay put it. The relay is then restored from a copy made before it.
    b.ok(&[
        "goal",
        "add",
        "Sam's goal before the restore",
        "--area",
        "trust",
    ]);
    assert!(b.ok(&["sync"]).contains("sent 1 change"));
    take_newest(&relay, 1);
    relay.restart();
    // Alex writes meanwhile: the relay numbers Alex's event with the cursor it gave
    // Sam's goal, and reaches past it (so it does not end before Sam's cursor).
    for title in [
        "Alex's first after the restore",
        "Alex's second after the restore",
    ] {
        a.ok(&["goal", "add", title, "--area", "trust"]);
        a.ok(&["sync"]);
    }
    // Sam's next read is served Alex's event where the relay had put Sam's goal: the
    // device gives back what the relay lost, with nothing new of its own to send.
    let r = b.run(&["sync"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("no longer serves at cursor") && r.stderr.contains("gave back"),
        "{}",
        r.stderr
    );
    a.ok(&["sync"]);
    let goals = a.ok(&["goal", "list"]);
    assert!(goals.contains("Sam's goal before the restore"), "{goals}");

    // Both go on: Sam's next change follows in an unbroken chain.
    b.ok(&[
        "goal",
        "add",
        "Sam's goal after the restore",
        "--area",
        "trust",
    ]);
    b.ok(&["sync"]);
    a.ok(&["sync"]);
    assert!(
        a.ok(&["goal", "list"])
            .contains("Sam's goal after the restore")
    );
    assert_converged(&a, &b);
}

/// A couple paired through a proxy in front of a real relay: Alex syncs through the
/// proxy, which answers pushes with `answer`; Sam reaches the relay through it too.
fn couple_behind(
    answer: duet_tests::proxy::Answer,
) -> (Relay, duet_tests::proxy::RelayProxy, Device, Device) {
    let relay = Relay::start();
    let proxy = duet_tests::proxy::RelayProxy::start(&relay.url, answer);
    let a = Device::new();
    let b = Device::new();
    a.ok(&["init", "--name", "Alex", "--relay", &proxy.url]);
    b.ok(&["join", &a.invite_code(), "--name", "Sam"]);
    a.ok(&["sync"]);
    (relay, proxy, a, b)
}

/// Armed by the test: the next push carrying a `changes` event reaches the relay, which
/// stores it, and the device is told 409 `fork`.
static FALSE_FORK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn false_fork_once(events: &[duet_core::event::Event]) -> Option<(u16, String)> {
    let ev = events
        .iter()
        .find(|e| e.kind() == duet_core::event::Kind::Changes)?;
    if !FALSE_FORK.swap(false, std::sync::atomic::Ordering::SeqCst) {
        return None;
    }
    let answer = serde_json::json!({
        "error": "fork",
        "message": "another event of this device holds this sequence number",
        "results": [{"hash": hex::encode(ev.hash()), "status": "rejected", "reason": "fork"}],
    });
    Some((409, answer.to_string()))
}

/// A relay that keeps a push and answers it as a fork makes the device send its changes
/// again in a new event: the partner takes them once, refuses nothing, and gets what
/// follows. Before, both devices refused the second event as "replacing" a reflection
/// its own changes had made, and everything its author wrote after waited for good.
#[test]
fn changes_a_relay_kept_but_answered_as_a_fork_reach_the_partner_once_and_what_follows_too() {
    let relay = Relay::start();
    let proxy = duet_tests::proxy::RelayProxy::start_lying_after(&relay.url, false_fork_once);
    let a = Device::new();
    let b = Device::new();
    a.ok(&["init", "--name", "Alex", "--relay", &proxy.url]);
    b.ok(&["join", &a.invite_code(), "--name", "Sam"]);
    a.ok(&["sync"]);
    FALSE_FORK.store(true, std::sync::atomic::Ordering::SeqCst);
    a.ok(&["reflect", "Reflection one"]);
    a.run(&["sync"]);
    assert_eq!(proxy.answered(), 1, "the lie was told");
    a.ok(&["sync"]);
    a.ok(&["reflect", "Reflection two"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    let seen = b.ok(&["reflections"]);
    assert!(
        seen.contains("Reflection one") && seen.contains("Reflection two"),
        "{seen}"
    );
    for d in [&a, &b] {
        let status = d.ok(&["status"]);
        assert!(!status.contains("REFUSED"), "{status}");
    }
    assert_converged(&a, &b);
}

/// Armed by the test: the next push carrying a `changes` event is answered "accepted"
/// at a far cursor by the proxy, and never reaches the relay.
static FAKE_ACK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn fake_ack_once(events: &[duet_core::event::Event]) -> Option<(u16, String)> {
    fake_ack_at(events, &FAKE_ACK, 1_000_000)
}

/// Armed by the test: like [`FAKE_ACK`], at cursor 1, which the device read long ago.
static FAKE_LOW_ACK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn fake_low_ack_once(events: &[duet_core::event::Event]) -> Option<(u16, String)> {
    fake_ack_at(events, &FAKE_LOW_ACK, 0)
}

/// "Accepted" for each event from cursor `base + 1` on, once `armed`, for a push that
/// carries a `changes` event.
fn fake_ack_at(
    events: &[duet_core::event::Event],
    armed: &std::sync::atomic::AtomicBool,
    base: usize,
) -> Option<(u16, String)> {
    use duet_core::event::Kind;
    if !events.iter().any(|e| e.kind() == Kind::Changes)
        || !armed.swap(false, std::sync::atomic::Ordering::SeqCst)
    {
        return None;
    }
    let results: Vec<String> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            format!(
                r#"{{"hash":"{}","status":"accepted","cursor":{}}}"#,
                hex::encode(e.hash()),
                base + 1 + i
            )
        })
        .collect();
    let body = format!(
        r#"{{"results":[{}],"cursor":{}}}"#,
        results.join(","),
        base + events.len()
    );
    Some((200, body))
}

/// A relay that says it stored a change it never kept is found out by the next read (the
/// relay ends before the cursor it acknowledged), and the change is given back: the
/// partner gets it without its author writing again.
#[test]
fn a_change_a_relay_acknowledged_without_keeping_is_given_back_at_the_next_sync() {
    let (_relay, liar, a, b) = couple_behind(fake_ack_once);
    FAKE_ACK.store(true, std::sync::atomic::Ordering::SeqCst);
    a.ok(&["reflect", "Said to be stored, never kept"]);
    let faked = a.run(&["sync"]);
    assert_eq!(liar.answered(), 1, "the proxy answered the push itself");
    // The next read finds the relay ends before what it acknowledged.
    let next = a.run(&["sync"]);
    let said = format!("{}{}", faked.stderr, next.stderr);
    assert!(
        said.contains("already received or sent events up to"),
        "{said}"
    );
    b.ok(&["sync"]);
    assert!(
        b.ok(&["reflections"])
            .contains("Said to be stored, never kept")
    );
}

/// Armed by the test with a count: that many pushes carrying a `changes` event are
/// answered "accepted" by the proxy, never reaching the relay: the first without a
/// cursor, the next at a cursor past any the relay can give (2^64-1).
static CURSORLESS_ACKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn cursorless_ack(events: &[duet_core::event::Event]) -> Option<(u16, String)> {
    use std::sync::atomic::Ordering::SeqCst;
    if !events
        .iter()
        .any(|e| e.kind() == duet_core::event::Kind::Changes)
    {
        return None;
    }
    let left = CURSORLESS_ACKS.load(SeqCst);
    if left == 0
        || CURSORLESS_ACKS
            .compare_exchange(left, left - 1, SeqCst, SeqCst)
            .is_err()
    {
        return None;
    }
    let cursor = if left == 2 {
        String::new()
    } else {
        format!(r#","cursor":{}"#, u64::MAX)
    };
    let results: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                r#"{{"hash":"{}","status":"accepted"{cursor}}}"#,
                hex::encode(e.hash())
            )
        })
        .collect();
    Some((
        200,
        format!(r#"{{"results":[{}],"cursor":1}}"#, results.join(",")),
    ))
}

/// A relay that says "accepted" without a cursor, or at one no relay gives, has not
/// acknowledged anything: the change stays unsent, with a warning, and the next sync
/// sends it. Before, it counted as sent and reached no one until its author wrote again.
#[test]
fn a_change_acknowledged_without_a_real_cursor_stays_unsent_and_goes_with_the_next_sync() {
    let (_relay, liar, a, b) = couple_behind(cursorless_ack);
    CURSORLESS_ACKS.store(2, std::sync::atomic::Ordering::SeqCst);
    a.ok(&["reflect", "Said to be stored, with no cursor"]);
    for _ in 0..2 {
        let faked = a.run(&["sync"]);
        assert!(
            faked
                .stderr
                .contains("did not acknowledge 1 of this device's events"),
            "{faked:?}"
        );
        assert_eq!(a.json(&["status"])["spaces"][0]["unsent_events"], 1);
    }
    assert_eq!(liar.answered(), 2, "the proxy answered both pushes itself");
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    assert!(
        b.ok(&["reflections"])
            .contains("Said to be stored, with no cursor")
    );
}

/// A relay that says it stored a change at a cursor this device read long ago is found
/// out at once (a new event's cursor is past all served before): the device reads the
/// space again from the start, and sends the change again in the same sync.
#[test]
fn a_change_acknowledged_at_a_cursor_already_read_is_sent_again() {
    let (_relay, liar, a, b) = couple_behind(fake_low_ack_once);
    FAKE_LOW_ACK.store(true, std::sync::atomic::Ordering::SeqCst);
    a.ok(&["reflect", "Said to be stored long ago"]);
    let faked = a.run(&["sync"]);
    assert_eq!(liar.answered(), 1, "the proxy answered the push itself");
    assert!(
        faked
            .stderr
            .contains("had read past without finding it there")
            && faked.stderr.contains("read the space again from the start"),
        "{}",
        faked.stderr
    );
    assert_eq!(a.json(&["status"])["spaces"][0]["unsent_events"], 0);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    assert!(
        b.ok(&["reflections"])
            .contains("Said to be stored long ago")
    );
}

/// Armed by the test: the next push carrying a `changes` event is answered 503, once.
static BUSY_ONCE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn busy_once(events: &[duet_core::event::Event]) -> Option<(u16, String)> {
    use duet_core::event::Kind;
    if !events.iter().any(|e| e.kind() == Kind::Changes)
        || !BUSY_ONCE.swap(false, std::sync::atomic::Ordering::SeqCst)
    {
        return None;
    }
    Some((
        503,
        r#"{"error":"overloaded","message":"the relay is busy"}"#.to_string(),
    ))
}

/// A change whose push failed goes with the next sync, which says it sent it (it said
/// "Up to date.": the change was made in an earlier command, so none was new).
#[test]
fn a_sync_that_sends_a_change_left_by_a_failed_push_says_so() {
    let (_relay, proxy, a, b) = couple_behind(busy_once);
    BUSY_ONCE.store(true, std::sync::atomic::Ordering::SeqCst);
    a.ok(&["reflect", "Sent on the second try"]);
    let busy = a.run(&["sync"]);
    assert_eq!(proxy.answered(), 1, "{busy:?}");
    let sent = a.ok(&["sync"]);
    assert!(sent.contains("sent what was waiting"), "{sent}");
    assert!(!sent.contains("Up to date"), "{sent}");
    b.ok(&["sync"]);
    assert!(b.ok(&["reflections"]).contains("Sent on the second try"));
}

/// A device lost after the relay was restored from an older copy of its database: its
/// backup holds the events the relay lost since, and the restore gives them back instead
/// of writing their changes again under the sequence numbers the partner's device holds
/// with the originals (a fork it refused for good, while every sync said "Up to date.").
#[test]
fn a_device_restored_after_the_relay_lost_its_events_gives_them_back_instead_of_forking() {
    const PASS: &str = "correct horse battery staple\n";
    let (mut relay, a, b) = setup();
    let relay_copy = Backup::take(&mut relay);
    a.ok(&["reflect", "Canary-3f2 after the relay's copy"]);
    alex_rates(&a, 1);
    b.ok(&["sync"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("alex.duetbackup");
    let file = file.to_str().expect("utf-8 path");
    a.run_with_stdin(&["backup", file, "--passphrase-fd", "0"], Some(PASS))
        .ok();
    relay_copy.restore(&mut relay);
    // Alex's device is lost; the new one comes back from the backup before Sam syncs.
    let again = Device::new();
    let restored = again.run_with_stdin(&["restore", file, "--passphrase-fd", "0"], Some(PASS));
    assert_eq!(restored.code, 0, "{restored:?}");
    b.ok(&["sync"]);
    let status = b.ok(&["status"]);
    assert!(!status.contains("REFUSED"), "{status}");
    again.ok(&["reflect", "Canary-9c4 after the restore"]);
    again.ok(&["sync"]);
    b.ok(&["sync"]);
    assert!(b.ok(&["reflections"]).contains("Canary-9c4"));
    assert_converged(&again, &b);
}

/// The relay serves Alex's last rating with one byte changed: Sam's device refuses the
/// copy, reads on, but keeps its cursor before it, so once the relay serves the real
/// event (its damage mended, or the rewriting between them gone) the rating arrives,
/// though Alex writes nothing more. Moving past it would have skipped it for good.
#[test]
fn an_event_the_relay_altered_is_read_again_and_the_real_one_arrives_once_served() {
    let (relay, a, b) = setup();
    alex_rates(&a, 1);
    let mut altered = take_newest(&relay, 1).remove(0);
    let real = altered.bytes.clone();
    let last = altered.bytes.len() - 1;
    altered.bytes[last] ^= 0x01;
    put_back_where_it_was(&relay, &altered);
    let lied_to = b.run(&["sync"]);
    assert_eq!(lied_to.code, 3, "not up to date, and said so: {lied_to:?}");
    assert!(
        lied_to.stderr.contains("not an event of this space")
            && !lied_to.stdout.contains("Up to date"),
        "{lied_to:?}"
    );
    let status = b.ok(&["status"]);
    assert!(
        status.contains("not an event of this space") && !status.contains("REFUSED"),
        "the status keeps saying it, and nothing is refused for good: {status}"
    );
    assert_eq!(ratings(&b), 0);
    let conn = Connection::open(&relay.db).expect("relay db");
    conn.execute(
        "UPDATE events SET bytes = ?1 WHERE cursor = ?2",
        params![real, altered.cursor],
    )
    .expect("the real event served again");
    b.ok(&["sync"]);
    assert_eq!(ratings(&b), 1, "Alex's rating arrived");
    assert!(!b.ok(&["status"]).contains("not an event of this space"));
    assert_converged(&a, &b);
}

/// A relay leaves out of Sam's read the event of Alex's phone that made a goal, and
/// serves the step Alex's laptop added to it: the step is held, not refused for good,
/// and the next sync reads the space again from the start, where the relay serves the
/// goal; both then apply.
#[test]
fn a_change_built_on_another_devices_event_left_out_of_a_page_waits_and_applies_once_it_is_served()
{
    let (relay, a, b) = setup();
    let phone = Device::new();
    phone.ok(&["join", &a.device_code()]);
    phone.ok(&["goal", "add", "Phone goal", "--area", "trust"]);
    phone.ok(&["sync"]);
    a.ok(&["sync"]);
    a.ok(&["step", "add", "phone goal", "Call the florist"]);
    a.ok(&["sync"]);
    // The two newest changes events: the phone's goal, then the laptop's step.
    let taken = take_newest(&relay, 2);
    put_back_where_it_was(&relay, &taken[1]);
    let first = b.run(&["sync"]);
    assert_eq!(first.code, 3, "the step waits: not up to date: {first:?}");
    assert!(!first.stderr.contains("refused"), "{}", first.stderr);
    put_back_where_it_was(&relay, &taken[0]);
    b.ok(&["sync"]);
    let shown = b.ok(&["goal", "show", "phone goal"]);
    assert!(shown.contains("Call the florist"), "{shown}");
    assert_eq!(b.json(&["status"])["spaces"][0]["refused_events"], 0);
}

/// An answer saying every one of `events` was stored, at cursors of the liar's making
/// (`base` plus each event's seq), the space's newest at `newest`.
fn accepted_at(
    events: &[duet_core::event::Event],
    base: u64,
    newest: u64,
) -> Option<(u16, String)> {
    let results: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            serde_json::json!({
                "hash": hex::encode(e.hash()),
                "status": "accepted",
                "cursor": base + e.header().seq,
            })
        })
        .collect();
    let answer = serde_json::json!({ "results": results, "cursor": newest });
    Some((200, answer.to_string()))
}

/// A relay that answers every push "accepted" at a cursor of its own making and keeps
/// nothing.
fn accept_without_keeping(events: &[duet_core::event::Event]) -> Option<(u16, String)> {
    accepted_at(events, 1_000_000, 2_000_000)
}

/// A relay acknowledges Alex's reflection without keeping it, and then the events Alex
/// gives back when it sees the relay lost it: once the relay is honest, the reflection
/// still reaches Sam (it used to wait for Alex's next write, which the relay would then
/// refuse as a gap in Alex's chain).
#[test]
fn a_change_whose_push_and_give_back_a_relay_acknowledged_without_keeping_reaches_the_partner() {
    let (relay, a, b) = setup();
    let liar = duet_tests::proxy::RelayProxy::start(&relay.url, accept_without_keeping);
    a.ok(&["relay", "set", &liar.url]);
    a.ok(&["reflect", "Canary-51d the florist called"]);
    a.ok(&["sync"]);
    let second = a.run(&["sync"]);
    // Still a liar: the reflection is not acknowledged for real, and the sync says so.
    assert_eq!(second.code, 3, "{second:?}");
    assert!(second.stderr.contains("gave back"), "{}", second.stderr);
    assert!(
        second.stderr.contains("has not acknowledged 1 event"),
        "{}",
        second.stderr
    );
    a.ok(&["relay", "set", &relay.url]);
    a.ok(&["sync"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    assert!(b.ok(&["reflections"]).contains("Canary-51d"));
}

/// Alex's phone joined after the operator's last backup, and the relay is restored from
/// it: only the phone holds its join, and the relay answers its reads as by a device
/// that never was a member. The phone gives back what the relay had taken (its join,
/// and the device code Alex made for it) and syncs on; what it writes reaches Sam,
/// though neither Alex's laptop nor Sam synced since the restore.
#[test]
fn a_device_that_joined_after_the_relays_backup_gives_its_join_back_and_syncs_on() {
    let (mut relay, a, b) = setup();
    let backup = Backup::take(&mut relay);
    let phone = Device::new();
    phone.ok(&["join", &a.device_code()]);
    backup.restore(&mut relay);
    phone.ok(&["reflect", "Canary-7d1 from the phone after the restore"]);
    let sync = phone.run(&["sync"]);
    assert_eq!(sync.code, 0, "{sync:?}");
    assert!(sync.stderr.contains("gave back"), "{sync:?}");
    b.ok(&["sync"]);
    assert!(b.ok(&["reflections"]).contains("Canary-7d1"));
    a.ok(&["sync"]);
    let phone_key = phone.json(&["status"])["device"]
        .as_str()
        .expect("the phone's key")
        .to_string();
    assert!(a.ok(&["device", "list"]).contains(&phone_key[..12]));
    assert_converged(&phone, &b);
}

/// Sam joined after the operator's last backup, so his personal space was created after
/// it too; the relay is restored from that backup and answers that it does not hold the
/// personal space. Sam's device gives it back (its genesis needs no token: Sam is a
/// member of the shared space there) and every sync after finishes; his private
/// reflection, written after the restore, is on the relay for his other devices.
#[test]
fn a_personal_space_created_after_the_relays_backup_is_given_back_and_syncs_on() {
    let mut relay = Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    alex.ok(&["sync"]);
    let backup = Backup::take(&mut relay);
    let sam = Device::new();
    sam.ok(&["join", &alex.invite_code(), "--name", "Sam"]);
    alex.ok(&["sync"]);
    backup.restore(&mut relay);
    alex.ok(&["sync"]);
    sam.ok(&["reflect", "--private", "Canary-9e2 kept for myself"]);
    let sync = sam.run(&["sync"]);
    assert_eq!(sync.code, 0, "{sync:?}");
    assert!(sync.stderr.contains("personal"), "{sync:?}");
    let again = sam.run(&["sync"]);
    assert_eq!(again.code, 0, "{again:?}");
    let personal = sam.json(&["status"])["spaces"]
        .as_array()
        .expect("spaces")
        .iter()
        .find(|s| s["kind"] == "personal")
        .expect("Sam's personal space")["space"]
        .as_str()
        .expect("its id")
        .to_string();
    let tablet = Device::new();
    tablet.ok(&["join", &sam.device_code()]);
    assert!(
        tablet
            .ok(&["reflections", "--private"])
            .contains("Canary-9e2")
    );
    assert!(duet_tests::file_contains(&relay.db, &personal));
}

/// Swaps the events the relay serves at two cursors.
fn swap_cursors(relay: &Relay, a: i64, b: i64) {
    let conn = Connection::open(&relay.db).expect("relay db");
    for (from, to) in [(a, -1), (b, a), (-1, b)] {
        conn.execute(
            "UPDATE events SET cursor = ?2 WHERE cursor = ?1",
            params![from, to],
        )
        .expect("move a row");
    }
}

/// The relay cursor of the newest event of `kind` in `space`.
fn newest_cursor_of(relay: &Relay, space: &str, kind: &str) -> i64 {
    let conn = Connection::open(&relay.db).expect("relay db");
    conn.query_row(
        "SELECT MAX(cursor) FROM events WHERE space = ?1 AND kind = ?2",
        [space, kind],
        |r| r.get(0),
    )
    .expect("a cursor")
}

/// The relay serves, for one read, a removal before the join of a device it names: the
/// partner's device refuses the removal. Read again from the start on an honest relay,
/// the removal is judged again and taken: the removed device is no member there, and
/// what the remover writes under the new key arrives.
#[test]
fn a_removal_refused_in_an_order_a_lying_relay_served_is_taken_once_read_in_order() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    let lost = Device::new();
    lost.ok(&["join", &alex.device_code()]);
    let phone = Device::new();
    phone.ok(&["join", &sam.device_code()]);
    alex.ok(&["sync"]);
    let lost_key = lost.json(&["status"])["device"]
        .as_str()
        .expect("key")
        .to_string();
    alex.ok(&["device", "remove", &lost_key, "--yes"]);
    let shared = sam.json(&["status"])["spaces"][0]["space"]
        .as_str()
        .expect("the shared space")
        .to_string();
    let (join, removal) = (
        newest_cursor_of(&relay, &shared, "join"),
        newest_cursor_of(&relay, &shared, "remove"),
    );
    swap_cursors(&relay, join, removal);
    let lied = sam.run(&["sync"]);
    assert!(lied.stderr.contains("refused event"), "{lied:?}");
    swap_cursors(&relay, join, removal);
    let _ = sam.run(&["sync"]);
    sam.ok(&["sync"]);
    alex.ok(&["reflect", "written after the removal"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    let status = sam.json(&["status"]);
    let shared = &status["spaces"][0];
    assert!(
        !shared["members"].to_string().contains(&lost_key[..12]),
        "the removed device is no member on Sam's device: {shared}"
    );
    assert!(
        shared["refused"].as_array().is_none_or(Vec::is_empty),
        "nor is the removal kept as refused: {shared}"
    );
    assert!(
        sam.ok(&["reflections"])
            .contains("written after the removal"),
        "what Alex writes under the new key reaches Sam"
    );
}

/// A relay that stored Sam's reflection, answered as if it had not, and hid it from
/// Sam's reads while Sam read past it: once honest, it answers "duplicate, at cursor N",
/// below what Sam has read. That proves the event is there; Sam reads the space again
/// from the start, finds it, and has nothing left unsent (before, the event stayed
/// unsent and every later sync warned, for good).
#[test]
fn an_event_acknowledged_below_what_was_read_is_read_again_and_counts_as_sent() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    let liar = duet_tests::proxy::RelayProxy::start_hiding_pushes(&relay.url);
    sam.ok(&["relay", "set", &liar.url]);
    sam.ok(&["reflect", "Sent, though the relay said not"]);
    // Not "Up to date.": a script learns the sync left something unsent.
    let lied_to = sam.run(&["sync"]);
    assert_eq!(lied_to.code, 3, "{lied_to:?}");
    assert!(
        lied_to.stderr.contains("has not acknowledged 1 event")
            && !lied_to.stdout.contains("Up to date"),
        "{lied_to:?}"
    );
    alex.ok(&["sync"]);
    alex.ok(&["reflect", "After Sam's"]);
    alex.ok(&["sync"]);
    sam.run(&["sync"]);
    let unsent = |d: &Device| d.json(&["status"])["spaces"][0]["unsent_events"].clone();
    assert_eq!(unsent(&sam), 1, "the relay's lie left it unsent");

    liar.be_honest();
    let first = sam.run(&["sync"]);
    assert_eq!(unsent(&sam), 0, "{first:?}");
    let again = sam.run(&["sync"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(!again.stderr.contains("acknowledged"), "{again:?}");
    assert!(again.stdout.contains("Up to date."), "{again:?}");
    assert_converged(&alex, &sam);
}

/// Armed by the test: the next push holding a join is answered "accepted" at a cursor
/// of the proxy's making, and never reaches the relay.
static FAKE_JOIN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn fake_join_once(events: &[duet_core::event::Event]) -> Option<(u16, String)> {
    use duet_core::event::Kind;
    if !events.iter().any(|e| e.kind() == Kind::Join)
        || !FAKE_JOIN.swap(false, std::sync::atomic::Ordering::SeqCst)
    {
        return None;
    }
    accepted_at(events, 999_980, 999_999)
}

/// A relay says Sam's join was stored and keeps none of it; then it answers Sam's read
/// as by a device that never was a member. Sam's device gives the join back and reads
/// the space, in the same `duet join`: it joins for real (before, that and every later
/// sync failed with `not_a_member`, and the join was never sent again).
#[test]
fn a_join_acknowledged_but_never_kept_is_given_back_and_goes_through() {
    let relay = Relay::start();
    let liar = duet_tests::proxy::RelayProxy::start(&relay.url, fake_join_once);
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &liar.url]);
    alex.ok(&["goal", "add", "Weekly check-in", "--area", "communication"]);
    alex.ok(&["sync"]);
    let code = alex.invite_code();
    let sam = Device::new();
    FAKE_JOIN.store(true, std::sync::atomic::Ordering::SeqCst);
    let joined = sam.run(&["join", &code, "--name", "Sam"]);
    assert_eq!(liar.answered(), 1, "the proxy answered the join itself");
    assert!(
        joined
            .stdout
            .contains("Joined the shared space with Alex. 1 goal synced."),
        "{joined:?}"
    );
    let synced = sam.run(&["sync"]);
    assert_eq!(synced.code, 0, "{synced:?}");
    assert!(sam.ok(&["goal", "list"]).contains("Weekly check-in"));
    alex.ok(&["sync"]);
    assert!(alex.ok(&["device", "list"]).contains("Sam"));
}

/// A page that serves a copy of an earlier event at the cursor of the partner's next
/// one (a lying or broken relay) must not leave that event skipped when an honest read
/// serves it: the device said "Up to date." at every sync after, and Sam's reflection
/// never reached Alex.
#[test]
fn an_event_copied_over_the_next_in_a_page_is_read_again_where_it_was() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    alex.ok(&["sync"]);
    sam.ok(&["reflect", "The first one"]);
    sam.ok(&["sync"]);
    sam.ok(&["reflect", "The one due next"]);
    sam.ok(&["sync"]);
    let proxy = duet_tests::proxy::RelayProxy::start_copying_once(&relay.url);
    alex.ok(&["relay", "set", &proxy.url]);
    let lied = alex.run(&["sync"]);
    assert!(proxy.has_copied(), "the proxy never lied: {lied:?}");
    assert!(
        lied.stderr.contains("a copy of the event"),
        "{}",
        lied.stderr
    );
    alex.ok(&["sync"]);
    let read = alex.ok(&["reflections"]);
    assert!(
        read.contains("The first one") && read.contains("The one due next"),
        "{read}"
    );
}

/// The same lie the other way round: the copy comes first, in the place of an earlier
/// event, and the original after it. The event the copy stood in for is read again.
#[test]
fn an_event_copied_over_an_earlier_one_in_a_page_leaves_that_one_read_again() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    alex.ok(&["sync"]);
    sam.ok(&["reflect", "The one stood in for"]);
    sam.ok(&["sync"]);
    sam.ok(&["reflect", "The one copied"]);
    sam.ok(&["sync"]);
    let proxy = duet_tests::proxy::RelayProxy::start_copying_back_once(&relay.url);
    alex.ok(&["relay", "set", &proxy.url]);
    let lied = alex.run(&["sync"]);
    assert!(proxy.has_copied(), "the proxy never lied: {lied:?}");
    alex.ok(&["sync"]);
    let read = alex.ok(&["reflections"]);
    assert!(
        read.contains("The one stood in for") && read.contains("The one copied"),
        "{read}"
    );
}

/// The relay restored from a backup older than a removal, on which the removed device
/// (which never heard of it) writes first and removes the device that removed it: the
/// partner's device saw the removal, does not apply what the relay took from it after,
/// and says why, not "withheld or lost"; the sync does not end as up to date.
#[test]
fn events_a_restored_relay_took_from_a_device_after_its_removal_are_named_and_not_applied() {
    let (mut relay, a, b) = setup();
    let code = a.device_code();
    let laptop = Device::new();
    laptop.ok(&["join", &code]);
    laptop.ok(&["sync"]);
    let key = laptop.json(&["status"])["device"]
        .as_str()
        .expect("the laptop's key")
        .to_string();
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    let backup = Backup::take(&mut relay);
    a.ok(&["device", "remove", &key, "--yes"]);
    b.ok(&["sync"]);
    backup.restore(&mut relay);

    // The laptop writes first on the restored relay, which no longer has the removal:
    // it removes the phone that removed it.
    let phone = a.json(&["status"])["device"]
        .as_str()
        .expect("the phone's key")
        .to_string();
    laptop.ok(&["device", "remove", &phone, "--yes"]);
    laptop.ok(&["sync"]);
    let named = |r: &duet_tests::Run| {
        assert_ne!(r.code, 0, "{r:?}");
        assert!(
            r.stderr.contains("this device saw removed on")
                && r.stderr.contains("restored from an older backup"),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("withheld or lost"), "{}", r.stderr);
        assert!(!r.stderr.contains("refused event"), "{}", r.stderr);
    };
    // The removal of the phone alone (refused here as by a removed device): named too.
    named(&b.run(&["sync"]));
    // And what the laptop writes next (waiting here behind what it refused).
    laptop.ok(&["reflect", "Written after the removal"]);
    laptop.ok(&["sync"]);
    named(&b.run(&["sync"]));
    let reflections = b.json(&["reflections"]);
    assert_eq!(
        reflections.as_array().map(Vec::len),
        Some(0),
        "{reflections}"
    );

    // Alex's phone, now removed on that relay, leaves: the relay refuses the leave, and
    // `leave` says it is not confirmed (it said nothing).
    let export = a.home.join("leave-export.json");
    let left = a.run(&[
        "leave",
        "--yes",
        "--export",
        export.to_str().expect("utf-8"),
    ]);
    assert!(
        left.stderr.contains("the relay has not confirmed it"),
        "{left:?}"
    );
}

/// A leave the relay took and then lost (restored from a backup made just before it, or
/// a relay that answered a push it never stored): the leaver reads the space no more,
/// so nothing found it out, and the partner went on writing to a person who believed
/// they had left. The leaver's next sync finds the leave missing and gives it back.
#[test]
fn a_leave_the_relay_lost_is_given_back_by_the_leavers_next_sync() {
    let (mut relay, a, b) = setup();
    let export = a.home.join("left.json");
    a.ok(&[
        "leave",
        "--yes",
        "--export",
        export.to_str().expect("a path"),
    ]);
    // The relay loses its newest event: the leave.
    let conn = Connection::open(&relay.db).expect("relay db");
    let gone = conn
        .execute(
            "DELETE FROM events WHERE cursor = (SELECT MAX(cursor) FROM events) AND kind = 'leave'",
            [],
        )
        .expect("delete");
    assert_eq!(gone, 1, "the leave was the relay's newest event");
    drop(conn);
    relay.restart();
    b.ok(&["sync"]);
    assert!(!b.ok(&["history"]).contains("left the shared space"));
    let r = a.run(&["sync"]);
    assert!(r.stderr.contains("gave back"), "{r:?}");
    b.ok(&["sync"]);
    let history = b.ok(&["history"]);
    assert!(history.contains("left the shared space"), "{history}");
    // Found once: the next sync has nothing to give back.
    let again = a.run(&["sync"]);
    assert!(!again.stderr.contains("gave back"), "{again:?}");
}

/// Answers every push that holds an invite as stored, at cursors far past the relay's,
/// without passing it on: a relay that says it took what it never keeps.
fn fake_ack_of_invites(events: &[duet_core::event::Event]) -> Option<(u16, String)> {
    use duet_core::event::Kind;
    if !events.iter().any(|e| e.kind() == Kind::Invite) {
        return None;
    }
    let results: Vec<serde_json::Value> = (0u64..)
        .zip(events)
        .map(|(i, e)| {
            serde_json::json!({
                "hash": hex::encode(e.hash()), "status": "accepted", "cursor": 1_000_000 + i
            })
        })
        .collect();
    let newest = 1_000_000 + events.len() as u64;
    Some((
        200,
        serde_json::json!({ "results": results, "cursor": newest }).to_string(),
    ))
}

/// An invite or a device code the relay answered for but does not keep: no code is
/// shown (one was, with exit 0, and the partner learnt it only when the join failed).
#[test]
fn a_code_the_relay_answered_for_but_does_not_keep_is_not_shown() {
    let relay = Relay::start();
    let liar = duet_tests::proxy::RelayProxy::start(&relay.url, fake_ack_of_invites);
    let lee = Device::new();
    lee.ok(&["init", "--name", "Lee", "--relay", &liar.url]);
    lee.ok(&["sync"]);
    for made in [&["invite"][..], &["device", "add"]] {
        let r = lee.run(made);
        assert_eq!(r.code, 1, "{made:?}: {r:?}");
        assert!(
            r.stderr.contains("does not hold it"),
            "{made:?}: {}",
            r.stderr
        );
        assert!(!r.stdout.contains("duet2"), "{made:?}: {}", r.stdout);
    }
    assert!(liar.answered() >= 2, "the relay was lied for");
}

/// A copy of an event read in an earlier sync, served in the place of the partner's
/// next one, by a relay that does not say what it stores at the cursor a read starts
/// after (no `duet-after-hash`, which the protocol allows): the device said "Up to
/// date.", took the copy's cursor, and that event, then everything the partner wrote
/// after it, never came (each sync read on after the copy).
#[test]
fn an_event_read_before_and_served_again_in_the_place_of_the_next_leaves_that_one_read_again() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    let proxy = duet_tests::proxy::RelayProxy::start_copying_earlier(&relay.url);
    alex.ok(&["relay", "set", &proxy.url]);
    sam.ok(&["reflect", "The first one"]);
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    sam.ok(&["reflect", "The one due next"]);
    sam.ok(&["sync"]);
    proxy.copy_earlier_once();
    let lied = alex.run(&["sync"]);
    assert!(proxy.has_copied(), "the proxy never lied: {lied:?}");
    assert!(lied.stderr.contains("a copy of the event"), "{lied:?}");
    sam.ok(&["goal", "add", "Written after", "--area", "trust"]);
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    let read = alex.ok(&["reflections"]);
    assert!(
        read.contains("The first one") && read.contains("The one due next"),
        "{read}"
    );
    assert!(alex.ok(&["goal", "list"]).contains("Written after"));
}

/// The database set back under a running relay (a PostgreSQL dump restored while its
/// instances ran): the relay decides from the database, not from the space's state it
/// kept in memory, and the partners give back what was lost and sync on. It refused
/// every push that gave a lost event back as a fork ("two events of device … with seq
/// N", the other one only in its memory) until it was restarted.
#[test]
fn a_database_set_back_under_the_running_relay_is_decided_from_the_database() {
    let (relay, a, b) = setup();
    let db = Connection::open(&relay.db).expect("the relay's database");
    let before: i64 = db
        .query_row("SELECT MAX(cursor) FROM events", [], |r| r.get(0))
        .expect("the newest cursor");
    alex_rates(&a, 1);
    sam_rates(&b, 1);
    a.ok(&["sync"]);
    assert_eq!((ratings(&a), ratings(&b)), (2, 2));
    let lost = db
        .execute("DELETE FROM events WHERE cursor > ?1", params![before])
        .expect("set back");
    assert!(lost > 0, "the ratings' events are gone from the database");

    b.ok(&["rate", "Weekly check-in", "0"]);
    b.ok(&["checkin", "--close"]);
    let r = b.run(&["sync"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("gave back") && !r.stderr.contains("fork"),
        "{}",
        r.stderr
    );
    a.ok(&["sync"]);
    assert_eq!(ratings(&a), 3, "Alex gets Sam's new rating");
    alex_rates(&a, 1);
    b.ok(&["sync"]);
    assert_eq!(ratings(&b), 4);
    assert_converged(&a, &b);
}

/// The devices of the shared space as `device list` shows them on `d`: key and whether
/// it is still a member.
fn members(d: &Device) -> Vec<String> {
    let rows = d.json(&["device", "list"]);
    let mut keys: Vec<String> = rows
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["removed"] == false)
        .filter_map(|r| r["device"].as_str().map(str::to_string))
        .collect();
    keys.sort();
    keys
}

/// Each partner removes a device of their own across a relay restored from a backup
/// taken before either: the relay keeps only Sam's removal. Alex's device had folded
/// its own removal first, refused Sam's as a stale key epoch, and both stayed apart for
/// good (each sync withdrew and redid Alex's removal, refused again). Now the space is
/// read again in the relay's order, Alex's removal made anew after Sam's, and his goal
/// written under the key the relay lost still reaches Sam.
#[test]
fn removals_on_both_sides_of_a_relay_restore_end_in_one_membership_and_lose_nothing() {
    let (mut relay, a, b) = setup();
    let (phone_a, phone_b) = (Device::new(), Device::new());
    for (d, phone) in [(&a, &phone_a), (&b, &phone_b)] {
        let code = d.device_code();
        d.ok(&["sync"]);
        phone.ok(&["join", &code]);
    }
    for d in [&a, &b, &phone_a, &phone_b] {
        d.ok(&["sync"]);
    }
    let backup = Backup::take(&mut relay);
    a.ok(&["device", "remove", &phone_a.key(), "--yes"]);
    a.ok(&[
        "goal",
        "add",
        "Written after the removal",
        "--area",
        "trust",
    ]);
    a.ok(&["sync"]);
    backup.restore(&mut relay);
    b.ok(&["device", "remove", &phone_b.key(), "--yes"]);
    b.ok(&["reflect", "Also after a removal"]);
    b.ok(&["sync"]);
    let first = a.run(&["sync"]);
    assert!(
        first
            .stderr
            .contains("which this device makes again after it")
            && !first.stderr.contains("they stay on this device"),
        "{first:?}"
    );
    for _ in 0..2 {
        let _ = b.run(&["sync"]);
        let _ = a.run(&["sync"]);
    }
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    assert_eq!(members(&a), members(&b));
    assert_eq!(members(&a).len(), 2, "{:?}", members(&a));
    let status = a.json(&["status"]);
    assert_eq!(status["spaces"][0]["refused_events"], 0, "{status}");
    assert!(
        b.ok(&["goal", "list"])
            .contains("Written after the removal")
    );
    assert!(a.ok(&["reflections"]).contains("Also after a removal"));
    let code = |d: &Device| d.json(&["verify"])["code"].clone();
    assert_eq!(code(&a), code(&b));
}

/// A relay that answers every read of a member as by a device never a member, after it
/// was given back every event it lost: the sync says so in the device's words and
/// keeps it as the space's alert (it repeated the relay's "not a member", and the
/// give-back's warning was never shown).
#[test]
fn a_relay_that_keeps_denying_a_member_its_reads_is_said_to_have_lost_or_lied() {
    let relay = Relay::start();
    let proxy = duet_tests::proxy::RelayProxy::start_denying_reads(&relay.url);
    let a = Device::new();
    a.ok(&["init", "--name", "Alex", "--relay", &proxy.url]);
    a.ok(&["goal", "add", "Walk together", "--area", "trust"]);
    a.ok(&["sync"]);
    proxy.drop_reads();
    let r = a.run(&["sync"]);
    assert!(
        r.code != 0
            && r.stderr
                .contains("it still says so, though it took the event")
            && r.stderr
                .contains("tell its operator (nothing here is lost)"),
        "{r:?}"
    );
    let status = a.ok(&["status"]);
    assert!(status.contains("lost data or lies"), "{status}");
    assert!(a.ok(&["goal", "list"]).contains("Walk together"));
}
