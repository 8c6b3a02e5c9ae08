//! Running out of room: per-space quotas (507 `quota_exceeded`) and a database that
//! cannot grow (507 `storage_full`, from SQLITE_FULL), against the real process, and the
//! byte quota (which fork evidence does not count toward) in process; a damaged database
//! file said to the operator, at start and with each request it fails.

mod common;

use axum::http::StatusCode;
use common::process::{Proc, Space};
use common::{Couple, Relay};
use duet_core::event::SpaceId;
use duet_core::protocol::ErrorCode;
use duet_core::protocol::{EventStatus, H_CURSOR};
use duet_relay::Config;

/// Random (incompressible) plaintext.
fn noise(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        out.extend_from_slice(&duet_core::ids::random_bytes::<32>());
    }
    out.truncate(len);
    out
}

#[test]
fn a_push_that_does_not_fit_the_database_cap_gets_507_storage_full_and_changes_nothing() {
    // A fresh database takes a handful of 4 KiB pages (14 of them); 128 KiB leaves room
    // for small events only, and keeps the fresh database below the 90% past which no
    // space is created.
    let p = Proc::start_with(&["--max-db-bytes", "131072"]);
    let mut s = Space::create(&p);
    let small = s.alex.changes(s.id, &s.key, b"fits");
    p.push(&s.id, &[&small]).ok();
    let before = p.events();
    assert_eq!(before.len(), 4);

    let (seq, prev) = (s.alex.seq, s.alex.prev);
    let big = s.alex.changes(s.id, &s.key, &noise(200_000));
    let r = p.push(&s.id, &[&big]);
    assert_eq!(r.status, 507, "{}", String::from_utf8_lossy(&r.body));
    let e = r.error();
    assert_eq!(e.error, ErrorCode::StorageFull);
    assert!(e.message.contains("nothing was stored"), "{}", e.message);
    // A batch that starts with a small event: all or nothing.
    s.alex.seq = seq;
    s.alex.prev = prev;
    let one = s.alex.changes(s.id, &s.key, b"small first");
    let two = s.alex.changes(s.id, &s.key, &noise(200_000));
    let r = p.push(&s.id, &[&one, &two]);
    assert_eq!(r.status, 507);
    assert_eq!(r.error().error, ErrorCode::StorageFull);

    // Nothing was half-written, the file is sound, and reads are still served.
    assert_eq!(p.events(), before);
    let (_, integrity) = p.tables_and_integrity();
    assert_eq!(integrity, "ok");
    let r = p.read(&s.sam, &s.id, "after=0");
    r.ok();
    let page = duet_core::protocol::decode_page(&r.body).expect("a page");
    let stored: Vec<Vec<u8>> = before.iter().map(|e| e.3.clone()).collect();
    let served: Vec<Vec<u8>> = page.into_iter().map(|(_, b)| b).collect();
    assert_eq!(served, stored);
    assert_eq!(
        r.header(H_CURSOR),
        Some(before[3].0.to_string().as_str()),
        "duet-cursor is the newest cursor"
    );
    // The device's chain is unchanged on the relay: the small event alone still fits.
    let r = p.push(&s.id, &[&one]);
    r.ok();
    assert_eq!(p.events().len(), 5);
    assert_eq!(p.healthz().ok().status, 200);
    let file = std::fs::metadata(&p.db).expect("db metadata").len();
    assert!(file <= 131072, "the database file grew to {file} bytes");
}

#[test]
fn a_space_over_its_event_quota_gets_507_quota_exceeded_while_other_spaces_accept() {
    let p = Proc::start_with(&["--space-max-events", "5"]);
    let mut s = Space::create(&p); // 3 events
    let a = s.alex.changes(s.id, &s.key, b"4");
    let b = s.sam.changes(s.id, &s.key, b"5");
    p.push(&s.id, &[&a, &b]).ok();
    let before = p.events();

    let c = s.alex.changes(s.id, &s.key, b"6");
    let r = p.push(&s.id, &[&c]);
    assert_eq!(r.status, 507);
    let e = r.error();
    assert_eq!(e.error, ErrorCode::QuotaExceeded);
    assert!(e.message.contains("nothing was stored"), "{}", e.message);
    assert_eq!(p.events(), before);
    // Duplicates store nothing, so they are still acknowledged.
    let r = p.push(&s.id, &[&a, &b]);
    let resp: duet_core::protocol::PushResponse =
        serde_json::from_slice(&r.ok().body).expect("a push response");
    assert!(
        resp.results
            .iter()
            .all(|x| x.status == EventStatus::Duplicate)
    );
    // Reads go on.
    assert_eq!(p.read(&s.sam, &s.id, "").ok().status, 200);

    // Another space has its own quota.
    let mut t = Space::create(&p);
    let x = t.alex.changes(t.id, &t.key, b"4");
    p.push(&t.id, &[&x]).ok();
    let y = t.alex.changes(t.id, &t.key, b"5");
    let z = t.alex.changes(t.id, &t.key, b"6");
    // A batch crossing the quota is refused whole.
    let r = p.push(&t.id, &[&y, &z]);
    assert_eq!(r.status, 507);
    assert_eq!(r.error().error, ErrorCode::QuotaExceeded);
    assert_eq!(p.events().len(), before.len() + 4);
    p.push(&t.id, &[&y]).ok();
    assert_eq!(p.events().len(), before.len() + 5);
}

/// Polls the relay's log until it holds `want`, for at most 30 seconds.
fn logged(p: &Proc, want: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let log = p.log();
        if log.contains(want) || std::time::Instant::now() > deadline {
            return log;
        }
        std::thread::yield_now();
    }
}

#[test]
fn a_damaged_database_is_said_at_start_and_with_each_request_it_fails() {
    let mut p = Proc::start_logged(&[]);
    let s = Space::create(&p);
    let log = logged(&p, "is sound");
    assert!(log.contains("database check:"), "{log}");
    p.kill();
    // Everything in the main file, then every page after the first (the header and
    // the schema stay readable, so the relay opens it) overwritten, as a failing disk or
    // a stray write would.
    let conn = rusqlite::Connection::open(&p.db).expect("open the stopped relay's database");
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
    drop(conn);
    let mut bytes = std::fs::read(&p.db).expect("read the database");
    assert!(bytes.len() > 3 * 4096, "{} bytes", bytes.len());
    for b in &mut bytes[4096..] {
        *b = 0x5a;
    }
    std::fs::write(&p.db, bytes).expect("damage the database");
    p.restart();
    let log = logged(&p, "the relay database is damaged");
    assert!(
        log.contains("restore the newest backup"),
        "the start does not say the file is damaged:\n{log}"
    );
    // A read the damage fails is logged with what to do, and the client gets 500
    // `internal` without the details.
    let r = p.read(&s.sam, &s.id, "");
    assert_eq!(r.status, 500);
    assert!(!String::from_utf8_lossy(&r.body).contains("backup"));
    let failed = p.log();
    let request_lines = failed
        .lines()
        .filter(|l| l.contains("request failed") && l.contains("restore the newest backup"))
        .count();
    assert_eq!(request_lines, 1, "{failed}");
}

/// A database file deleted (or replaced) under a running relay: the relay wrote on into
/// the deleted file, answered "stored", and lost all of it at its next start. It now
/// refuses writes (500, without claiming to know what was stored), and its log says why
/// and what to do.
#[test]
fn a_database_file_deleted_under_the_running_relay_takes_no_more_writes() {
    let p = Proc::start_logged(&[]);
    let mut s = Space::create(&p);
    std::fs::remove_file(&p.db).expect("delete the database file");
    let ev = s.alex.changes(s.id, &s.key, b"after the file went");
    let r = p.push(&s.id, &[&ev]);
    assert_eq!(r.status, 500, "{}", String::from_utf8_lossy(&r.body));
    // Not "nothing was stored": a relay failing inside cannot know that; a push sent
    // again is safe, and the answer says so.
    let said = r.error().message;
    assert!(
        said.contains("never stored twice") && !said.contains("nothing was stored"),
        "{said}"
    );
    let log = logged(&p, "was deleted or replaced");
    assert!(log.contains("until the relay is restarted"), "{log}");
    // A monitor hears it too: the instance is taken out of rotation (it answered 200
    // while every push failed).
    let health = p.healthz();
    assert_eq!(
        health.status,
        503,
        "{}",
        String::from_utf8_lossy(&health.body)
    );
}

/// A checkpoint cut short (the disk full, or the file-size limit, as a stopping relay
/// folds its log into the database) leaves the database's first page new and pages it
/// names only in the write-ahead log. SQLite reads the database whole through its log;
/// the relay's check before it opens the file read the main file alone, called a sound
/// database "malformed", and the relay would not start again.
#[test]
fn a_database_whose_checkpoint_stopped_half_way_is_read_through_its_log() {
    let mut p = Proc::start_with(&[]);
    let _space = Space::create(&p);
    let stored = p.event_count();
    assert!(stored > 0);
    // Killed: nothing folded, the relay's pages are in the log.
    p.kill();
    let wal = std::path::PathBuf::from(format!("{}-wal", p.db.display()));
    assert!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) > 0);
    // The first page as a finished fold writes it (from a copy folded whole), over the
    // main file: the first step of a checkpoint that then ran out of room.
    let copy = tempfile::tempdir().expect("tempdir");
    let folded = copy.path().join("relay.db");
    std::fs::copy(&p.db, &folded).expect("copy the database");
    std::fs::copy(&wal, copy.path().join("relay.db-wal")).expect("copy its log");
    let conn = rusqlite::Connection::open(&folded).expect("open the copy");
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("fold the copy");
    let page: usize = conn
        .query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))
        .expect("page size") as usize;
    drop(conn);
    let first = std::fs::read(&folded).expect("read the copy")[..page].to_vec();
    let mut main = std::fs::read(&p.db).expect("read the database");
    main.resize(main.len().max(page), 0);
    main[..page].copy_from_slice(&first);
    std::fs::write(&p.db, &main).expect("write the first page");
    p.restart();
    assert_eq!(p.healthz().status, 200);
    assert_eq!(p.event_count(), stored, "everything is there");
}

crate::conformance! {
    #[tokio::test]
    async fn fork_evidence_is_kept_outside_the_quota_even_when_the_space_is_full() {
        let config = Config {
            space_max_events: 4,
            ..Config::default()
        };
        let mut c = Couple::on(Relay::with_config(config)).await; // 3 events
        let (seq, prev) = (c.alex.seq, c.alex.prev);
        let first = c.alex.changes(c.space, &c.key, b"first");
        c.relay.push(&c.space, &[&first]).await.push(); // 4: the space is full
        c.alex.seq = seq;
        c.alex.prev = prev;
        let fork = c.alex.changes(c.space, &c.key, b"second");
        let a = c.relay.push(&c.space, &[&fork]).await;
        assert_eq!(a.status, StatusCode::CONFLICT);
        assert_eq!(a.error().error, ErrorCode::Fork);
        assert_eq!(c.relay.forks().len(), 1, "evidence has bounds of its own");
        // The quota counts the space's events only, and still holds.
        let next = c.sam.changes(c.space, &c.key, b"fifth");
        let a = c.relay.push(&c.space, &[&next]).await;
        assert_eq!(a.error().error, ErrorCode::QuotaExceeded);
    }

    #[tokio::test]
    async fn a_push_over_the_byte_quota_is_refused_whole_and_counted_after_a_restart() {
        let config = Config {
            space_max_bytes: 20_000,
            ..Config::default()
        };
        let mut c = Couple::on(Relay::with_config(config.clone())).await;
        let ev = c.alex.changes(c.space, &c.key, &noise(10_000));
        c.relay.push(&c.space, &[&ev]).await.push();
        let before = c.relay.event_count();
        let big = c.sam.changes(c.space, &c.key, &noise(10_000));
        let a = c.relay.push(&c.space, &[&big]).await;
        assert_eq!(a.status, StatusCode::INSUFFICIENT_STORAGE);
        assert_eq!(a.error().error, ErrorCode::QuotaExceeded);
        assert_eq!(c.relay.event_count(), before);

        // After a restart the usage is counted again from the database.
        c.relay.restart_with(config);
        let a = c.relay.push(&c.space, &[&big]).await;
        assert_eq!(a.error().error, ErrorCode::QuotaExceeded);
        assert_eq!(c.relay.event_count(), before);
        // Other spaces are not affected.
        let other = SpaceId::generate();
        let mut kim = common::Device::new("Kim");
        let g = kim.genesis(other, true);
        c.relay.push(&other, &[&g]).await.push();
    }
}

#[test]
fn a_relay_under_a_file_size_limit_refuses_the_push_past_it_and_keeps_serving() {
    let has_prlimit = std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_prlimit {
        eprintln!(
            "skipped: install prlimit (util-linux) to start the relay under a file-size limit"
        );
        return;
    }
    // `ulimit -f`, or systemd's LimitFSIZE: a write past it raises SIGXFSZ, which used to
    // kill the relay in the middle of a commit.
    let p = Proc::start_logged_under(&["prlimit", "--fsize=400000:400000"], &[]);
    let mut s = Space::create(&p);
    let before = p.events();
    let (seq, prev) = (s.alex.seq, s.alex.prev);
    let big = s.alex.changes(s.id, &s.key, &noise(600_000));
    let r = p.push(&s.id, &[&big]);
    assert!(r.status >= 500, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(p.healthz().ok().status, 200, "the relay still serves");
    assert_eq!(p.events(), before, "nothing was half-written");
    s.alex.seq = seq;
    s.alex.prev = prev;
    let small = s.alex.changes(s.id, &s.key, b"fits");
    p.push(&s.id, &[&small]).ok();
    assert!(p.log().contains("file-size limit"), "{}", p.log());
}

#[test]
fn a_cap_below_the_database_size_is_warned_of_at_start() {
    // A fresh database takes some 56 KiB: a cap of 4 KiB (a typo) keeps it at that size,
    // and every push that needs room is refused; the operator is told at start.
    let p = Proc::start_logged(&["--max-db-bytes", "4096"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !p.log().contains("below the database's size") {
        assert!(
            std::time::Instant::now() < deadline,
            "no warning of the cap:\n{}",
            p.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(p.log().contains("WARN"), "{}", p.log());
}
