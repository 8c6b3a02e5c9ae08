//! Two partners, each with the real `duet` binary and their own home, syncing through
//! the real `duet-relay` process.

use duet_tests::{Device, Relay, file_contains, pair};
use serde_json::Value;

fn shared(d: &Device) -> Value {
    d.json(&["export"])["shared"].clone()
}

#[test]
fn partners_edit_offline_and_converge_while_the_relay_and_partner_see_no_private_plaintext() {
    let relay = Relay::start();
    let (a, b) = pair(&relay);
    a.ok(&[
        "goal",
        "add",
        "Canary-goal-7f3a weekly walk",
        "--area",
        "quality-time",
        "--expected",
        "Canary-expected-19c2",
    ]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    assert_eq!(
        b.json(&["goal", "list"])[0]["title"],
        "Canary-goal-7f3a weekly walk"
    );

    // Both edit while apart, including the same goal.
    a.ok(&[
        "rate",
        "Canary-goal-7f3a weekly walk",
        "1",
        "--note",
        "Canary-note-a-5be1",
    ]);
    a.ok(&[
        "goal",
        "edit",
        "Canary-goal-7f3a weekly walk",
        "--title",
        "Canary-goal-7f3a weekly walk on Sundays",
    ]);
    a.ok(&[
        "reflect",
        "--private",
        "Canary-private-0d9e I am not sure about this",
    ]);
    let gid = b.json(&["goal", "list"])[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    b.ok(&["rate", &gid[..8], "-1", "--note", "Canary-note-b-77aa"]);
    b.ok(&[
        "goal",
        "edit",
        &gid[..8],
        "--title",
        "Our Canary-goal-7f3a weekly walk",
    ]);
    b.ok(&[
        "goal",
        "add",
        "Canary-goal-b-2c44 phone-free dinners",
        "--area",
        "communication",
    ]);
    b.ok(&["reflect", "--goal", &gid[..8], "Canary-reflection-b-e8f0"]);

    // Sync in both orders, and twice.
    let out = a.ok(&["sync"]);
    assert!(out.contains("sent"), "{out}");
    let out = b.ok(&["sync"]);
    assert!(out.contains("from Alex"), "B is told what arrived: {out}");
    let out = a.ok(&["sync"]);
    assert!(
        out.contains("from Sam") && out.contains("rating"),
        "A is told what arrived: {out}"
    );
    b.ok(&["sync"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);

    let sa = shared(&a);
    let sb = shared(&b);
    assert_eq!(sa, sb, "the shared space is identical on both devices");
    assert_eq!(
        sa["ratings"].as_array().expect("ratings").len(),
        2,
        "both ratings survive"
    );
    assert_eq!(sa["goals"].as_array().expect("goals").len(), 2);
    let title = sa["goals"][0]["title"].as_str().expect("title");
    assert!(
        title.contains("Our") && title.contains("on Sundays"),
        "title merged: {title}"
    );

    // The private reflection stays with Alex.
    let private = "Canary-private-0d9e";
    assert!(
        a.json(&["export"])["personal"]
            .to_string()
            .contains(private)
    );
    assert!(!b.json(&["export"]).to_string().contains(private));
    assert!(!file_contains(&b.db(), private), "absent from B's store");
    assert!(!file_contains(&relay.db, private), "absent from the relay");
    // The grep is able to see plaintext in a store: A's own store has it.
    assert!(
        file_contains(&a.db(), private),
        "control: the canary is visible in A's store"
    );

    // The relay's database holds no plaintext of goals, ratings or reflections.
    for canary in [
        "Canary-goal-7f3a",
        "Canary-expected-19c2",
        "Canary-note-a-5be1",
        "Canary-note-b-77aa",
        "Canary-goal-b-2c44",
        "Canary-reflection-b-e8f0",
    ] {
        assert!(
            !file_contains(&relay.db, canary),
            "relay database contains {canary:?}"
        );
    }

    let status = a.json(&["status"]);
    let shared_status = &status["spaces"][0];
    assert_eq!(shared_status["kind"], "shared");
    assert_eq!(shared_status["pending_changes"], 0);
    assert_eq!(
        shared_status["members"].as_array().expect("members").len(),
        2
    );
}

#[test]
fn a_relay_killed_between_and_during_syncs_loses_nothing_acknowledged() {
    let mut relay = Relay::start();
    let (a, b) = pair(&relay);
    a.ok(&["goal", "add", "Listen first", "--area", "empathy"]);
    a.ok(&["sync"]);

    // Killed between syncs: a clear error, nothing lost, a retry completes. Alex closes
    // each round so Sam receives the ratings in the clear, not as seals.
    a.ok(&["rate", "Listen first", "0"]);
    a.ok(&["checkin", "--close"]);
    relay.kill();
    let r = a.run(&["sync"]);
    assert_eq!(r.code, 3, "the relay is out of reach: {r:?}");
    assert!(r.stderr.contains("cannot reach the relay"), "{}", r.stderr);
    assert!(r.stderr.contains("run `duet sync` again"), "{}", r.stderr);
    relay.restart();
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    assert_eq!(shared(&b)["ratings"].as_array().expect("ratings").len(), 1);

    // Killed during a sync: whatever the relay acknowledged survives; a retry completes.
    for i in 0..30 {
        a.ok(&["rate", "Listen first", if i % 2 == 0 { "1" } else { "-1" }]);
    }
    a.ok(&["checkin", "--close"]);
    let child = std::process::Command::new(duet_tests::bin("duet"))
        .args(["sync"])
        .env("DUET_HOME", &a.home)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sync starts");
    relay.kill();
    let _ = child.wait_with_output();
    relay.restart();
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    for d in [&a, &b] {
        assert_eq!(shared(d)["sealed"].as_array().map(Vec::len), Some(0));
    }
    assert_eq!(shared(&a), shared(&b));
    assert_eq!(shared(&b)["ratings"].as_array().expect("ratings").len(), 31);
}

#[test]
fn a_used_invite_is_refused_and_the_same_home_can_join_with_a_new_code() {
    let relay = Relay::start();
    let a = Device::new();
    a.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let code = a.json(&["invite"])["code"]
        .as_str()
        .expect("code")
        .to_string();
    let b = Device::new();
    b.ok(&["join", &code, "--name", "Sam"]);

    let c = Device::new();
    let r = c.run(&["join", &code, "--name", "Eve"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("invite_used")
            && r.stderr.contains("ask your partner for a new invite")
            && r.stderr.contains("run `duet device add` there"),
        "{}",
        r.stderr
    );
    assert!(
        !c.db().exists(),
        "the refused join left no half-made device behind"
    );

    // A shared space holds two persons: a partner invite asked for now is not given
    // (its own sync learns that Sam joined; lifecycle.rs has the joins that try).
    let fresh = a.run(&["invite"]);
    assert_eq!(fresh.code, 1, "{fresh:?}");
    assert!(fresh.stderr.contains("two persons"), "{}", fresh.stderr);
    assert!(fresh.stdout.is_empty(), "no code given: {}", fresh.stdout);

    // The same home then joins with a valid code: a device code of Sam's.
    let own = b.json(&["device", "add"])["code"]
        .as_str()
        .expect("device code")
        .to_string();
    b.ok(&["sync"]);
    c.ok(&["join", &own]);
    assert_eq!(
        c.json(&["status"])["spaces"][0]["members"]
            .as_array()
            .expect("members")
            .len(),
        3
    );

    let r = c.run(&["join", "duet1-garbage", "--name", "Eve"]);
    assert_eq!(r.code, 2, "a malformed code is a usage error: {r:?}");
    assert!(
        r.stderr.contains("not a valid duet invite code"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_demo_shows_two_partners_converging_through_an_embedded_relay() {
    let d = Device::new();
    let out = d.ok(&["demo"]);
    assert!(out.contains("Relay running at http://127.0.0.1:"), "{out}");
    assert!(
        out.contains("shared documents are identical: true"),
        "{out}"
    );
    assert!(
        out.contains("Alex's private reflections: 1 on Alex's device, 0 on Sam's."),
        "{out}"
    );
    assert!(out.contains("GAS T-scores"), "{out}");
    assert!(
        !d.home.exists(),
        "the demo leaves the user's own home alone"
    );
}

#[test]
fn a_busy_relay_answering_429_is_retried_after_its_retry_after() {
    // One request per second per device: a sync needs several, so it meets 429s.
    let relay = Relay::start_with(&["--rate-per-device", "1", "--burst-per-device", "1"]);
    let (a, b) = pair(&relay);
    a.ok(&["goal", "add", "Patience", "--area", "empathy"]);
    let r = a.run(&["sync"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("relay is busy; retrying"),
        "the 429 path ran: {}",
        r.stderr
    );
    b.ok(&["sync"]);
    assert_eq!(b.json(&["goal", "list"])[0]["title"], "Patience");
}
