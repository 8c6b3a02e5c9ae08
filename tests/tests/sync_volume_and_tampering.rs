//! Large offline backlogs, and events the relay altered or a member forged.

use duet_core::Level;
use duet_core::device::Device as CoreDevice;
use duet_core::event::{Event, Header, Kind, encode_raw_changes};
use duet_core::ids::now_ms;
use duet_core::store::{SpaceKind, Store};
use duet_tests::{Device, Relay, pair};
use serde_json::Value;

fn relay_events(relay: &Relay, kind: &str) -> i64 {
    let conn = rusqlite::Connection::open(&relay.db).expect("relay db");
    conn.query_row("SELECT COUNT(*) FROM events WHERE kind = ?1", [kind], |r| {
        r.get(0)
    })
    .expect("count")
}

#[test]
fn ten_thousand_offline_ratings_travel_in_one_event_and_one_sync_each() {
    let relay = Relay::start();
    let (a, b) = pair(&relay);
    a.ok(&[
        "goal",
        "add",
        "Daily appreciation",
        "--area",
        "emotional-support",
    ]);
    let before = relay_events(&relay, "changes");
    {
        // Ten thousand ratings made offline through the engine the CLI uses.
        let mut dev = CoreDevice::open(&a.home).expect("open A");
        let (_, doc, _) = dev.load(SpaceKind::Shared).expect("load");
        let goal = doc.goals().expect("goals")[0].id.clone();
        dev.edit(SpaceKind::Shared, |doc, me| {
            let mut changes = Vec::new();
            for i in 0..10_000 {
                let level = Level::try_from((i % 5) as i64 - 2).expect("level");
                changes.extend(doc.rate(&goal, &me.person_id, level, None, now_ms())?.1);
            }
            Ok(((), changes))
        })
        .expect("ratings");
    }
    a.ok(&["sync"]);
    assert_eq!(
        relay_events(&relay, "changes") - before,
        1,
        "the whole backlog (goal + 10,000 ratings) travels as one event"
    );
    let out = b.ok(&["sync"]);
    assert!(out.contains("10000 ratings"), "{out}");
    let ratings = b.json(&["export"])["shared"]["ratings"]
        .as_array()
        .expect("ratings")
        .len();
    assert_eq!(ratings, 10_000);
}

fn shared_of(d: &Device) -> Value {
    d.json(&["export"])["shared"].clone()
}

#[test]
fn the_client_refuses_ciphertext_the_relay_altered_keeps_the_rest_and_stays_usable() {
    let relay = Relay::start();
    let (a, b) = pair(&relay);
    a.ok(&["goal", "add", "Trust exercise", "--area", "trust"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    // Closed at once so the event the relay alters carries the rating itself, not a seal.
    b.ok(&["rate", "Trust exercise", "2", "--note", "tampered with"]);
    b.ok(&["checkin", "--close"]);
    b.ok(&["sync"]);
    // The relay operator flips one byte of Sam's newest changes event.
    {
        let conn = rusqlite::Connection::open(&relay.db).expect("relay db");
        let (cursor, mut bytes): (i64, Vec<u8>) = conn
            .query_row(
                "SELECT cursor, bytes FROM events WHERE kind = 'changes' ORDER BY cursor DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("latest event");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x40;
        conn.execute(
            "UPDATE events SET bytes = ?1 WHERE cursor = ?2",
            rusqlite::params![bytes, cursor],
        )
        .expect("tamper");
    }
    let r = a.run(&["sync"]);
    assert_eq!(r.code, 3, "not up to date, and said so: {r:?}");
    assert!(
        r.stderr.contains("warning") && r.stderr.contains("not an event of this space"),
        "clear warning: {}",
        r.stderr
    );
    let s = shared_of(&a);
    assert_eq!(
        s["goals"].as_array().expect("goals").len(),
        1,
        "everything else is kept"
    );
    assert!(
        s["ratings"].as_array().expect("ratings").is_empty(),
        "the altered rating is not applied"
    );
    // Still usable: A edits and syncs, B receives it (both still say the altered event
    // is missing, and nothing is refused for good: it arrives once the relay serves it).
    a.ok(&["rate", "Trust exercise", "0"]);
    a.ok(&["checkin", "--close"]);
    assert_eq!(a.run(&["sync"]).code, 3);
    assert_eq!(b.run(&["sync"]).code, 3);
    assert_eq!(
        shared_of(&b)["ratings"].as_array().expect("ratings").len(),
        2
    );
    assert_eq!(a.json(&["status"])["spaces"][0]["refused_events"], 0);
    // Said as the sync says it: read past, and read there again at every sync.
    let status = a.ok(&["status"]);
    assert!(
        status.contains("not an event of this space") && status.contains("reads past it"),
        "{status}"
    );
}

#[test]
fn the_client_refuses_a_change_authored_by_someone_other_than_the_signer() {
    let relay = Relay::start();
    let (a, b) = pair(&relay);
    a.ok(&["goal", "add", "Weekly check-in", "--area", "communication"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    // Sam's device (a member, so the relay accepts it) signs an event carrying a change
    // made under Alex's actor id: history forged in Alex's name.
    {
        let alex = Store::open(&a.home, false)
            .expect("A store")
            .require_identity()
            .expect("A id");
        let mut store = Store::open(&b.home, false).expect("B store");
        let sam = store.require_identity().expect("B id");
        let rec = store.space(SpaceKind::Shared).expect("shared");
        let (mut doc, _) = store.load_doc(&rec.id, &alex).expect("doc as Alex");
        let goal = doc.goals().expect("goals")[0].id.clone();
        let (_, forged) = doc
            .rate(
                &goal,
                &alex.person_id,
                Level::MUCH_LESS,
                Some("forged in Alex's name"),
                now_ms(),
            )
            .expect("forged change");
        let forged = forged.expect("a change");
        let (seq, prev) = store
            .own_head(&rec.id, &sam.device_key())
            .expect("head")
            .expect("has events");
        let ev = Event::changes(
            Header {
                kind: Kind::Changes,
                space: rec.id,
                author: sam.device_key(),
                seq: seq + 1,
                prev,
                time: now_ms(),
            },
            &encode_raw_changes(&[forged]),
            &rec.key,
            &sam,
        );
        store
            .record_own_events(&rec.id, &[ev], &[])
            .expect("store forged event");
    }
    b.ok(&["sync"]);
    let r = a.run(&["sync"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("forged authorship"), "{}", r.stderr);
    assert!(
        !a.json(&["export"])
            .to_string()
            .contains("forged in Alex's name")
    );
    // Sam's later honest events still arrive.
    b.ok(&["goal", "add", "Date night", "--area", "quality-time"]);
    b.ok(&["sync"]);
    a.ok(&["sync"]);
    assert_eq!(shared_of(&a)["goals"].as_array().expect("goals").len(), 2);
}
