//! A store broken by two processes that committed at once before the home had a write
//! lock (tests/fixtures/duplicate-seq, made with the release binary of that time and
//! the reproduction of the issue) opens again: the repeated changes are re-made with
//! the same content, nothing reported saved is lost, the user is told once, and the
//! repaired device syncs with a partner who converges.

use std::path::Path;

use duet_tests::{Device, Relay};
use serde_json::Value;

fn fixture() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/duplicate-seq"
    ))
}

/// The ids and texts that must survive, per space: (space kind, id, text).
fn expected() -> Vec<(String, String, String)> {
    let raw = std::fs::read_to_string(fixture().join("expected.json")).expect("expected.json");
    let v: Value = serde_json::from_str(&raw).expect("expected.json is JSON");
    let mut out = Vec::new();
    for kind in ["shared", "personal"] {
        for (coll, field) in [("ratings", "note"), ("reflections", "text")] {
            for e in v[kind][coll].as_array().into_iter().flatten() {
                out.push((
                    kind.to_string(),
                    e["id"].as_str().expect("id").to_string(),
                    e[field].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
    }
    assert!(out.len() >= 6, "the fixture lists what was saved");
    out
}

fn assert_holds(export: &Value, items: &[(String, String, String)], who: &str) {
    for (kind, id, text) in items {
        let space = export[kind].to_string();
        assert!(
            space.contains(id.as_str()) && space.contains(text.as_str()),
            "{who}'s {kind} export lacks {id} ({text:?}): {space}"
        );
    }
}

#[test]
fn a_store_broken_by_two_processes_repairs_itself_and_syncs() {
    let a = Device::new();
    std::fs::create_dir_all(&a.home).expect("home");
    std::fs::copy(fixture().join("duet.db"), a.home.join("duet.db")).expect("copy fixture");
    let items = expected();

    // The first command repairs the store, says so once, and loses nothing.
    let first = a.run(&["export", "--json"]);
    assert!(
        first.stderr.contains("repaired"),
        "the user is told what was repaired: {}",
        first.stderr
    );
    assert_holds(&first.json(), &items, "A");
    let again = a.run(&["goal", "list"]);
    again.ok();
    assert!(
        !again.stderr.contains("repaired"),
        "told once only: {}",
        again.stderr
    );

    // Writes work again, and the repaired changes sync to a partner who converges.
    // Closing the round reveals the (blind) rating, so the partner can hold it.
    a.ok(&["rate", "Walk", "0", "--note", "after the repair"]);
    a.ok(&["checkin", "--close"]);
    let relay = Relay::start();
    a.ok(&["relay", "set", &relay.url]);
    a.ok(&["sync"]);
    let code = a.json(&["invite"])["code"]
        .as_str()
        .expect("invite code")
        .to_string();
    let b = Device::new();
    b.ok(&["join", &code, "--name", "Sam"]);
    b.ok(&["sync"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    let shared: Vec<_> = items
        .iter()
        .filter(|(kind, _, _)| kind == "shared")
        .cloned()
        .collect();
    let b_export = b.json(&["export"]);
    assert_holds(&b_export, &shared, "B");
    assert!(
        b_export["shared"].to_string().contains("after the repair"),
        "the partner has the write made after the repair"
    );
    let a_export = a.json(&["export"]);
    for (who, export) in [("A", &a_export), ("B", &b_export)] {
        assert_eq!(
            export["shared"]["sealed"].as_array().map(Vec::len),
            Some(0),
            "no rating waits sealed on {who}"
        );
    }
    assert_eq!(
        a_export["shared"]["ratings"], b_export["shared"]["ratings"],
        "both partners hold the same ratings"
    );
    for (kind, _, text) in items.iter().filter(|(k, _, _)| k == "personal") {
        assert!(
            !b_export.to_string().contains(text.as_str()),
            "A's private {kind} reflection must not reach B"
        );
    }
}
