//! The couple's joint history through the real CLI and relay: the same on both devices,
//! every change once with its true author, in causal order even with a wrong clock.

use duet_tests::{Relay, pair};
use serde_json::Value;

fn position(h: &[Value], pred: impl Fn(&Value) -> bool) -> usize {
    h.iter()
        .position(pred)
        .unwrap_or_else(|| panic!("event not found in {h:#?}"))
}

#[test]
fn both_partners_see_the_same_causal_history_with_true_authors() {
    let relay = Relay::start();
    let (a, b) = pair(&relay);
    a.ok(&[
        "goal",
        "add",
        "Weekly check-in",
        "--area",
        "communication",
        "--expected",
        "30 minutes on Sunday",
    ]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    b.ok(&["goal", "add", "Evening walk", "--area", "quality-time"]);
    // Concurrent offline work on both sides.
    a.ok(&["rate", "Weekly check-in", "1", "--note", "good"]);
    b.ok(&["rate", "Weekly check-in", "-1", "--note", "too short"]);
    a.ok(&[
        "goal",
        "edit",
        "Weekly check-in",
        "--title",
        "Weekly check-in on Sunday",
    ]);
    b.ok(&["goal", "edit", "Weekly check-in", "--why", "We drift apart"]);
    b.ok(&["goal", "status", "Evening walk", "paused"]);
    // Syncs in both orders.
    b.ok(&["sync"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    a.ok(&["rate", "Evening walk", "0"]);
    // Alex closes the round, so the walk rating (made blind) is revealed to Sam too.
    a.ok(&["checkin", "--close"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);

    let ha = a.history();
    let hb = b.history();
    assert_eq!(ha, hb, "identical history on both devices");

    // Every change appears once, with the right author.
    let kinds: Vec<(&str, &str, &str)> = ha
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().expect("kind"),
                e["author_name"].as_str().expect("author"),
                e["field"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let count = |k: (&str, &str, &str)| kinds.iter().filter(|x| **x == k).count();
    assert_eq!(count(("goal_created", "Alex", "")), 1);
    assert_eq!(count(("goal_created", "Sam", "")), 1);
    // Every rating is made blind: listed once sealed when made, once given when revealed.
    assert_eq!(count(("rating_sealed", "Alex", "")), 2);
    assert_eq!(count(("rating_sealed", "Sam", "")), 1);
    assert_eq!(count(("rating_given", "Alex", "revealed")), 2);
    assert_eq!(count(("rating_given", "Sam", "revealed")), 1);
    assert_eq!(count(("field_edited", "Alex", "title")), 1);
    assert_eq!(count(("field_edited", "Sam", "why")), 1);
    assert_eq!(count(("status_changed", "Sam", "status")), 1);
    assert_eq!(count(("person_named", "Alex", "")), 1);
    assert_eq!(count(("person_named", "Sam", "")), 1);
    let mut seen = std::collections::BTreeSet::new();
    for e in &ha {
        let key = (
            e["change"].clone().to_string(),
            e["kind"].to_string(),
            e["item"].to_string(),
            e["field"].to_string(),
        );
        assert!(seen.insert(key), "event listed twice: {e}");
    }
    let edit = &ha[position(&ha, |e| e["field"] == "title")];
    assert_eq!(edit["before"], "Weekly check-in");
    assert_eq!(edit["after"], "Weekly check-in on Sunday");
    let status = &ha[position(&ha, |e| e["kind"] == "status_changed")];
    assert_eq!(
        (status["before"].as_str(), status["after"].as_str()),
        (Some("active"), Some("paused"))
    );

    // Causal order: nothing about a goal before the goal exists; Alex's rating of the
    // walk (made after syncing the pause) comes after the pause.
    let created = position(&ha, |e| {
        e["kind"] == "goal_created" && e["author_name"] == "Alex"
    });
    let sams_seal = position(&ha, |e| {
        e["kind"] == "rating_sealed" && e["author_name"] == "Sam"
    });
    let sams_rating = position(&ha, |e| {
        e["kind"] == "rating_given" && e["author_name"] == "Sam"
    });
    assert!(created < sams_seal && sams_seal < sams_rating);
    let pause = position(&ha, |e| e["kind"] == "status_changed");
    let walk_seal = position(&ha, |e| {
        e["kind"] == "rating_sealed" && e["goal_title"] == "Evening walk"
    });
    let walk_rating = position(&ha, |e| e["kind"] == "rating_given" && e["level"] == 0);
    assert!(pause < walk_seal && walk_seal < walk_rating);

    // Filters.
    let text = a.ok(&["history", "--by", "sam"]);
    assert!(text.lines().all(|l| l.contains("Sam")), "{text}");
    let last = a.ok(&["history", "--limit", "1"]);
    assert_eq!(last.lines().count(), 1);
    assert!(
        last.contains("Alex's blind rating of \"Evening walk\" was revealed: 0"),
        "{last}"
    );
}

#[test]
fn a_device_whose_clock_is_years_behind_still_gets_a_causal_history() {
    let relay = Relay::start();
    let (a, b) = pair(&relay);
    b.ok(&["goal", "add", "Date night", "--area", "quality-time"]);
    b.ok(&["sync"]);
    a.ok(&["sync"]);
    // Alex's clock says 2001: every change Alex makes now claims to predate the goal.
    let past = [("DUET_NOW", "2001-01-01T00:00:00Z")];
    a.ok_env(&["rate", "Date night", "2", "--note", "lovely"], &past);
    a.ok_env(&["step", "add", "Date night", "Book the table"], &past);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    let h = b.history();
    assert_eq!(h, a.history());
    let created = position(&h, |e| e["kind"] == "goal_created");
    // The rating is made blind (sealed) under the wrong clock; Alex's next sync, on a
    // right clock, finds its round long over and reveals it.
    let rating = position(&h, |e| e["kind"] == "rating_sealed");
    let revealed = position(&h, |e| e["kind"] == "rating_given");
    let step = position(&h, |e| e["kind"] == "step_added");
    assert!(
        created < rating && rating < revealed && created < step,
        "effects never precede their cause"
    );
    assert!(
        h[rating]["at"].as_i64() < h[created]["at"].as_i64(),
        "the wrong clock is visible, not trusted"
    );
}
