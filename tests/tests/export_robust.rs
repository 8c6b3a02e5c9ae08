//! A partner's malformed entity never traps the other partner's data (issue 12,
//! acceptance 3): a rating whose level is stored as a float, written into the shared
//! document by the partner's device and synced through a real relay, leaves `export`
//! (JSON and text) and `goal show` working on the other device, with everything else in
//! them and the malformed rating listed with its id, reason and raw content.

use automerge::transaction::Transactable;
use automerge::{ObjType, ROOT, ReadDoc, ScalarValue};
use duet_core::doc::DocError;
use duet_core::store::SpaceKind;
use duet_tests::{Relay, pair};

/// The id of the malformed rating.
const BAD: &str = "0badc0de0badc0de0badc0de0badc0de";

/// Writes, on the device at `home`, a rating of `goal` whose level is 1.5: what another
/// version or a bug could leave in the document, and what duet itself never writes.
fn write_float_rating(home: &std::path::Path, goal: &str) {
    let mut dev = duet_core::device::Device::open(home).expect("open the partner's store");
    dev.edit(SpaceKind::Shared, |doc, me| {
        let change = doc.raw_transaction("rate", duet_core::ids::now_ms(), |tx| {
            let ratings = match tx.get(ROOT, "ratings")? {
                Some((automerge::Value::Object(ObjType::Map), id)) => id,
                _ => return Err(DocError::Malformed("ratings")),
            };
            let r = tx.put_object(&ratings, BAD, ObjType::Map)?;
            tx.put(&r, "id", BAD)?;
            tx.put(&r, "goal", goal)?;
            tx.put(&r, "rater", me.person_id.as_str())?;
            tx.put(&r, "at", duet_core::ids::now_ms())?;
            tx.put(&r, "level", 1.5f64)?;
            tx.put(&r, "note", ScalarValue::Null)?;
            Ok(())
        })?;
        Ok(((), change.into_iter().collect()))
    })
    .expect("write the malformed rating");
}

#[test]
fn a_partners_malformed_rating_is_listed_and_everything_else_still_exports() {
    let relay = Relay::start();
    let (a, b) = pair(&relay);
    let goal = a.json(&["goal", "add", "Walk", "--area", "trust"])["id"]
        .as_str()
        .expect("goal id")
        .to_string();
    a.ok(&["rate", &goal, "1", "--note", "a good week"]);
    // Alex shares openly: closing the round reveals the blind rating, so Sam holds it.
    a.ok(&["checkin", "--close"]);
    write_float_rating(&a.home, &goal);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    b.ok(&["rate", &goal, "0", "--note", "as planned"]);
    b.ok(&["reflect", "--private", "only for me"]);

    let export = b.run(&["export", "--json"]).json();
    let shared = &export["shared"];
    assert_eq!(shared["goals"][0]["id"], goal.as_str());
    let notes: Vec<&str> = shared["ratings"]
        .as_array()
        .expect("ratings")
        .iter()
        .filter_map(|r| r["note"].as_str())
        .collect();
    assert_eq!(notes, ["a good week", "as planned"], "{shared:#}");
    assert_eq!(
        export["personal"]["reflections"][0]["text"], "only for me",
        "the private data is exported too"
    );
    let problems = shared["problems"].as_array().expect("a problems array");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = &problems[0];
    assert_eq!(p["collection"], "ratings");
    assert_eq!(p["id"], BAD);
    assert!(p["reason"].as_str().is_some_and(|r| !r.is_empty()), "{p:#}");
    assert_eq!(p["raw"]["level"], 1.5, "the raw content is kept: {p:#}");
    assert_eq!(p["raw"]["goal"], goal.as_str());
    assert_eq!(export["personal"]["problems"], serde_json::json!([]));

    let text = b.ok(&["export"]);
    assert!(text.contains("as planned"), "{text}");
    assert!(text.contains("Could not read"), "{text}");
    assert!(text.contains(&format!("ratings {BAD}:")), "{text}");

    let shown = b.ok(&["goal", "show", &goal]);
    assert!(
        shown.contains("a good week") && shown.contains("as planned"),
        "{shown}"
    );
    assert!(shown.contains(&format!("ratings {BAD}:")), "{shown}");
    let shown = b.json(&["goal", "show", &goal]);
    assert_eq!(
        shown["ratings"].as_array().map(Vec::len),
        Some(2),
        "{shown:#}"
    );
    assert_eq!(shown["problems"][0]["id"], BAD, "{shown:#}");

    // The partner who wrote it is not trapped either.
    let theirs = a.run(&["export", "--json"]).json();
    assert_eq!(theirs["shared"]["problems"][0]["id"], BAD);
}

/// A goal whose due date no version of duet reads (written by another version, or by
/// hand): `goal show` lists what it holds and fails, in text and in JSON, so that a
/// script does not take the list of problems for the goal.
#[test]
fn showing_a_goal_this_device_cannot_read_lists_it_and_fails() {
    let d = duet_tests::Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let goal = d.json(&["goal", "add", "Walk", "--area", "trust"])["id"]
        .as_str()
        .expect("goal id")
        .to_string();
    let mut dev = duet_core::device::Device::open(&d.home).expect("open the store");
    let id = goal.clone();
    dev.edit(SpaceKind::Shared, move |doc, _| {
        let change = doc.raw_transaction("edit goal", duet_core::ids::now_ms(), |tx| {
            let goals = match tx.get(ROOT, "goals")? {
                Some((automerge::Value::Object(ObjType::Map), goals)) => goals,
                _ => return Err(DocError::Malformed("goals")),
            };
            let Some((_, g)) = tx.get(&goals, id.as_str())? else {
                return Err(DocError::Malformed("goal"));
            };
            tx.put(&g, "due", "+10000-01-01")?;
            Ok(())
        })?;
        Ok(((), change.into_iter().collect()))
    })
    .expect("write the due date");
    drop(dev);
    let text = d.run(&["goal", "show", &goal[..8]]);
    assert_eq!(text.code, 1, "{text:?}");
    assert!(text.stdout.contains("+10000-01-01"), "{text:?}");
    assert!(text.stderr.contains("cannot be read"), "{text:?}");
    let json = d.run(&["goal", "show", &goal[..8], "--json"]);
    assert_eq!(json.code, 1, "{json:?}");
    let listed: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert!(
        listed["problems"].as_array().is_some_and(|p| !p.is_empty()),
        "{listed}"
    );
}
