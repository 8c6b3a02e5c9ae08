//! Two `duet-relay` processes over one PostgreSQL database, each partner's device on its
//! own instance: they converge, a watcher hears of its partner's rating committed on the
//! other instance, and a watcher whose instance is killed reconnects after the restart
//! and misses nothing. Needs `DUET_TEST_POSTGRES` (`.ci/run` provides it); without it
//! each test says it was skipped.

use duet_tests::{Device, Relay, Watcher, pair, postgres_schema, ratings};

/// Two instances over one fresh database, and a couple: Alex on the first, Sam on the
/// second.
fn couple_on_two_instances() -> Option<(Relay, Relay, Device, Device)> {
    let url = postgres_schema()?;
    let one = Relay::start_on(&url, &[]);
    let two = Relay::start_on(&url, &[]);
    let (a, b) = pair(&one);
    b.ok(&["relay", "set", &two.url]);
    Some((one, two, a, b))
}

fn shared_export(d: &Device) -> serde_json::Value {
    let mut v = d.json(&["export"])["shared"].clone();
    // The document is the same; only the device that exported it differs.
    if let Some(o) = v.as_object_mut() {
        o.remove("exported_by");
    }
    v
}

#[test]
fn partners_on_different_instances_converge() {
    let Some((_one, _two, a, b)) = couple_on_two_instances() else {
        return;
    };
    a.ok(&["goal", "add", "Evening walk", "--area", "quality-time"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    // Both edit offline, then sync through their own instances.
    a.ok(&["rate", "Evening walk", "1"]);
    a.ok(&["goal", "add", "Cook together", "--area", "quality-time"]);
    b.ok(&["rate", "Evening walk", "-1", "--note", "rainy week"]);
    b.ok(&["reflect", "We walked twice"]);
    // Both rated blind: each device reveals once it has the other's seal, so the last
    // reveal needs one more sync to travel.
    for d in [&a, &b, &a, &b] {
        d.ok(&["sync"]);
    }
    assert_eq!(shared_export(&a), shared_export(&b));
    assert_eq!(ratings(&a), 2);
}

#[test]
fn watchers_on_two_instances_see_each_others_ratings_and_one_survives_a_restart_of_its_instance() {
    let Some((_one, mut two, a, b)) = couple_on_two_instances() else {
        return;
    };
    a.ok(&["goal", "add", "Evening walk", "--area", "quality-time"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    let mut wa = Watcher::start(&a);
    let mut wb = Watcher::start(&b);

    // A rates (A's watcher sends it to instance one); B listens on instance two.
    // Sam has not rated: Alex's rating travels sealed.
    a.ok(&["rate", "Evening walk", "1"]);
    wa.wait_for("shared: sent 1 change");
    wb.wait_for("shared: 1 sealed rating from Alex");
    // And back: B's watcher sends to instance two, A hears of it on instance one, and
    // A's watcher reveals Alex's rating, which B hears of.
    b.ok(&["rate", "Evening walk", "0"]);
    wa.wait_for("shared: 1 rating from Sam");
    wa.wait_for("sent 1 change");
    wb.wait_for("1 revealed rating from Alex");

    // B's instance dies; A goes on rating through the other one (both rated in this
    // round: a new rating is blind again, in a new round).
    two.kill();
    wb.wait_for("reconnecting");
    a.ok(&["rate", "Evening walk", "2"]);
    wa.wait_for("shared: sent 1 change");
    two.restart();
    // Either first: the return is said once both sockets are back, and the shared one
    // may have read the rating before the personal one is.
    wb.wait_for("shared: 1 sealed rating from Alex");
    wb.printed("Connected to the relay again");
    assert_eq!(ratings(&b), 2, "Alex's new rating reached Sam sealed");
    assert_eq!(
        b.json(&["export"])["shared"]["sealed"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[test]
fn an_instance_whose_database_sessions_were_ended_connects_again_and_its_watcher_hears_on() {
    let Some(url) = postgres_schema() else {
        return;
    };
    let name = format!("duet_two_{}", std::process::id());
    let one = Relay::start_on(&url, &[]);
    let two = Relay::start_logged_on(&duet_testkit::pg::named(&url, &name), &[]);
    let (a, b) = pair(&one);
    b.ok(&["relay", "set", &two.url]);
    a.ok(&["goal", "add", "Evening walk", "--area", "quality-time"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    let mut wb = Watcher::start(&b);
    // Every session of instance two ends (its writer's, its reader's, its listener's),
    // as a restart of PostgreSQL, a failover or an operator's pg_terminate_backend does.
    let ended = duet_testkit::pg::end_sessions(&url, &name);
    assert!(
        ended >= 3,
        "the writer, the reader and the listener: {ended}"
    );
    // Alex's change, through instance one, reaches Sam's watcher on instance two; and
    // Sam's own change goes through instance two, which connected again.
    a.ok(&["goal", "add", "Cook together", "--area", "quality-time"]);
    a.ok(&["sync"]);
    wb.wait_for("1 goal from Alex");
    wb.stop();
    b.ok(&["reflect", "We walked twice"]);
    b.ok(&["sync"]);
    assert!(a.ok(&["sync"]).contains("1 reflection from Sam"));
    // Ended again and again (a pooler, idle_session_timeout): the next push meets the
    // server's goodbye on the old connection, and is answered "retry", not refused.
    for round in 0..3 {
        duet_testkit::pg::end_sessions(&url, &name);
        b.ok(&["reflect", &format!("Round {round}")]);
        b.ok(&["sync"]);
    }
    assert!(a.ok(&["sync"]).contains("3 reflections from Sam"));
    // Lost sessions, met and got over, are no ERROR in its log (each was one, a false
    // alarm to an operator who alerts on them).
    let log = two.log();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

/// An instance whose database no longer answers (here its schema is dropped, as a
/// database gone or out of reach would) says so at `/healthz`: 503, so that a monitor
/// or a load balancer takes it out; it answered 200 while the database answered.
#[test]
fn healthz_answers_503_once_the_database_does_not_answer() {
    let Some(url) = postgres_schema() else {
        return;
    };
    let relay = Relay::start_on(&url, &[]);
    let addr = relay.addr().parse().expect("the relay's address");
    let health = || duet_testkit::http::http(addr, "GET", "/healthz", &[], b"");
    assert_eq!(health().status, 200);
    duet_testkit::pg::drop_schema_of(&url);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let answer = health();
        if answer.status == 503 {
            assert!(answer.text().contains("unavailable"), "{}", answer.text());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {}",
            answer.status
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
