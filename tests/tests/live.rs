//! Live sync: `duet sync --watch` on both partners' devices, through the real relay's
//! live socket (`GET /v1/spaces/{space}/live`). Waits poll the watcher's output with a
//! deadline; nothing sleeps.

use duet_core::identity::Identity;
use duet_core::protocol::{H_DEVICE, H_NONCE, H_SIGNATURE, H_TIME, ReadAuth};
use duet_tests::{Device, Relay, Watcher, pair};
use tungstenite::client::IntoClientRequest;

#[test]
fn a_rating_made_on_one_watching_device_appears_on_the_other_without_a_manual_sync() {
    let relay = Relay::start();
    let (a, b) = couple_with_a_goal(&relay);

    let mut wa = Watcher::start(&a);
    let mut wb = Watcher::start(&b);
    // A rates with an ordinary command: A's watcher notices the local change and sends
    // it; B's watcher hears of it from the relay and pulls it (sealed: Sam has not rated).
    a.ok(&["rate", "Evening walk", "1", "--note", "lovely"]);
    wa.wait_for("shared: sent 1 change");
    wb.wait_for("shared: 1 sealed rating from Alex");
    assert_eq!(
        b.json(&["export"])["shared"]["sealed"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // And the other way round: Sam's rating (in the clear, Alex has rated) reaches A's
    // watcher, which reveals Alex's rating and sends it in that same sync.
    b.ok(&["rate", "Evening walk", "2"]);
    wa.wait_for("shared: 1 rating from Sam");
    wb.wait_for("shared: 1 revealed rating from Alex");
    assert_eq!(duet_tests::ratings(&a), 2);
    assert_eq!(duet_tests::ratings(&b), 2);
}

/// A home set up offline exists on the relay only once its first push has made its
/// spaces: a watcher started right after `init` opened its sockets first, was refused
/// ("the relay does not have this space") and stopped. It pushes first now, and hears
/// the partner who joins afterwards.
#[test]
fn a_watcher_started_right_after_an_offline_setup_keeps_watching() {
    let mut relay = Relay::start();
    let a = Device::new();
    // Offline: `init` sends the spaces at once when the relay answers.
    relay.kill();
    a.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    a.ok(&["goal", "add", "Evening walk", "--area", "quality-time"]);
    relay.restart();
    let mut wa = Watcher::start(&a);
    wa.wait_for("personal: sent");
    let b = Device::new();
    b.ok(&["join", &a.invite_code(), "--name", "Sam"]);
    b.ok(&["rate", "Evening walk", "1"]);
    b.ok(&["sync"]);
    let said = wa.wait_for("sealed rating from Sam");
    assert!(!said.contains("stopped watching"), "{said}");
    // A signal is how a watcher is stopped (Ctrl-C, its help says): an ordinary end.
    assert_eq!(wa.interrupt().code(), Some(0));
}

/// A paired couple who both have the goal "Evening walk".
fn couple_with_a_goal(relay: &Relay) -> (Device, Device) {
    let (a, b) = pair(relay);
    a.ok(&["goal", "add", "Evening walk", "--area", "quality-time"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    (a, b)
}

/// Polls `f` until it holds, or fails after the watch deadline.
#[track_caller]
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + duet_tests::WATCH_DEADLINE;
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {:?}",
            duet_tests::WATCH_DEADLINE
        );
        std::thread::yield_now();
    }
}

#[test]
fn ratings_made_in_a_quick_row_while_watching_are_all_sent_even_during_a_sync() {
    let relay = Relay::start();
    let (a, b) = couple_with_a_goal(&relay);
    let _wa = Watcher::start(&a);
    let _wb = Watcher::start(&b);
    // No waiting between them: most land while A's watcher is syncing the one before.
    for level in ["-1", "0", "1", "2", "1", "0"] {
        a.ok(&["rate", "Evening walk", level]);
    }
    // Alex shares openly: closing the round reveals the blind ratings at once.
    a.ok(&["checkin", "--close"]);
    eventually("A's watcher sends every rating", || {
        a.json(&["status"])["spaces"].as_array().is_some_and(|s| {
            s.iter()
                .all(|s| s["pending_changes"] == 0 && s["unsent_events"] == 0)
        })
    });
    eventually("B's watcher pulls every rating", || {
        duet_tests::ratings(&b) == 6
    });
}

#[test]
fn a_watcher_reconnects_after_the_relay_restarts_and_misses_nothing() {
    let mut relay = Relay::start();
    let (a, b) = couple_with_a_goal(&relay);
    let mut wb = Watcher::start(&b);

    // The relay dies; B's watcher says so and keeps trying.
    relay.kill();
    wb.wait_for("reconnecting");
    // A rates and syncs once the relay is back: B's watcher reconnects on its own and
    // pulls what was committed while it was away.
    relay.restart();
    a.ok(&["rate", "Evening walk", "-1"]);
    // Alex shares openly: closing the round reveals the blind rating at once.
    a.ok(&["checkin", "--close"]);
    a.ok(&["sync"]);
    // Either first: the sockets' return is said once both are back, and the shared
    // one's news may be read before the personal one is.
    wb.wait_for("1 revealed rating");
    wb.printed("Connected to the relay again");
    assert_eq!(duet_tests::ratings(&b), 1);
}

#[test]
fn a_relay_stopped_by_its_operator_is_said_as_stopping_not_as_a_broken_connection() {
    let mut relay = Relay::start();
    let (_a, b) = couple_with_a_goal(&relay);
    let mut wb = Watcher::start(&b);
    // Lost once and back, so that the watcher says when its socket is open again.
    relay.kill();
    wb.wait_for("reconnecting");
    relay.restart();
    wb.wait_for("Connected to the relay again");
    // A planned stop (SIGTERM): each open socket is closed with a word before the exit.
    relay.terminate(std::time::Duration::from_secs(30));
    wb.wait_for("the relay is stopping");
    let said = wb.stop();
    // The relay's stop and return are the relay's, said once each without naming one
    // space as if the other's socket were still fine (or still down).
    assert!(
        said.iter()
            .filter(|l| l.contains("Connected to the relay again"))
            .count()
            == 1
            && said
                .iter()
                .filter(|l| l.contains("the relay is stopping"))
                .count()
                == 1
            && !said
                .iter()
                .any(|l| l.contains(" space)") || l.starts_with("shared:")),
        "{said:#?}"
    );
    assert!(
        !said
            .iter()
            .any(|l| l.contains("handshake") || l.contains("os error")),
        "{said:#?}"
    );
}

#[test]
fn changes_made_while_the_relay_is_down_are_sent_by_the_watcher_when_it_returns() {
    let mut relay = Relay::start();
    let (a, b) = couple_with_a_goal(&relay);
    let mut wa = Watcher::start(&a);
    let mut wb = Watcher::start(&b);

    relay.kill();
    wa.wait_for("reconnecting");
    a.ok(&["rate", "Evening walk", "2"]);
    // Alex shares openly: closing the round reveals the blind rating at once.
    a.ok(&["checkin", "--close"]);
    wa.printed("sync did not finish");
    // Another change while the relay is still down: the same failure is not said again.
    a.ok(&["reflect", "Written while the relay was down"]);
    relay.restart();
    // (The sealed rating, the close and the reveal: one sync or more, as they were
    // packaged while the relay was down.)
    wa.wait_for("shared: sent");
    wa.printed("the sync goes through again");
    wb.wait_for("1 revealed rating");
    assert_eq!(duet_tests::ratings(&b), 1);
    let lines = wa.stop();
    let failures: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("sync did not finish"))
        .collect();
    assert!(
        failures.windows(2).all(|w| w[0] != w[1]),
        "a failure is said once while it lasts: {lines:#?}"
    );
}

/// A watcher stopped while what this device made has not reached the relay (the relay
/// is down) says so and how to send it, still as an ordinary end; with nothing unsent
/// it just stops.
#[test]
fn a_watcher_stopped_with_changes_unsent_says_so() {
    let mut relay = Relay::start();
    let (a, _b) = couple_with_a_goal(&relay);
    let quiet = Watcher::start(&a);
    let (status, said) = quiet.interrupt_saying();
    assert!(status.success() && !said.contains("relay yet"), "{said}");
    let mut watching = Watcher::start(&a);
    relay.kill();
    watching.wait_for("reconnecting");
    a.ok(&["reflect", "Written while the relay was down"]);
    watching.printed("sync did not finish");
    let (status, said) = watching.interrupt_saying();
    assert!(status.success(), "{said}");
    assert!(
        said.contains("not reached the relay yet") && said.contains("duet sync"),
        "{said}"
    );
}

fn shared_space(d: &Device) -> String {
    d.json(&["status"])["spaces"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["kind"] == "shared"))
        .and_then(|s| s["space"].as_str())
        .expect("a shared space")
        .to_string()
}

/// The request opening a live socket of `space`, signed by `id` (or unsigned).
fn live_request(
    relay: &Relay,
    space: &str,
    id: Option<&Identity>,
) -> tungstenite::handshake::client::Request {
    let path = format!("/v1/spaces/{space}/live");
    let mut req = format!("ws://{}{path}", relay.addr())
        .into_client_request()
        .expect("request");
    if let Some(id) = id {
        let auth = ReadAuth::sign(id, "GET", &path, "");
        for (name, value) in [
            (H_DEVICE, auth.device),
            (H_TIME, auth.time.to_string()),
            (H_NONCE, auth.nonce),
            (H_SIGNATURE, auth.signature),
        ] {
            req.headers_mut()
                .insert(name, value.parse().expect("header value"));
        }
    }
    req
}

/// Opens a live socket signed by `id` (or unsigned); the relay's status and body on refusal.
fn open_live(relay: &Relay, space: &str, id: Option<&Identity>) -> Result<(), (u16, String)> {
    match tungstenite::connect(live_request(relay, space, id)) {
        Ok(_) => Ok(()),
        Err(tungstenite::Error::Http(resp)) => Err((
            resp.status().as_u16(),
            String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).into_owned(),
        )),
        Err(e) => panic!("the relay did not answer the upgrade: {e}"),
    }
}

#[test]
fn a_live_socket_is_refused_unsigned_or_to_a_non_member() {
    let relay = Relay::start();
    let (a, _b) = pair(&relay);
    let space = shared_space(&a);
    let (status, body) = open_live(&relay, &space, None).expect_err("unsigned is refused");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("signed by a member device"), "{body}");
    let outsider = Identity::generate("Eve");
    let (status, body) =
        open_live(&relay, &space, Some(&outsider)).expect_err("a non-member is refused");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("not a member"), "{body}");
}

/// A watcher whose device the partner removes learns why and says it (as `duet sync`
/// does), and keeps watching the personal space.
#[test]
fn a_watcher_says_who_removed_its_device_and_when() {
    let relay = Relay::start();
    let (alex, sam) = duet_tests::pair(&relay);
    let mut watching = Watcher::start(&sam);
    let key = sam.json(&["status"])["device"]
        .as_str()
        .expect("its key")
        .to_string();
    alex.ok(&["device", "remove", &key[..12], "--yes"]);
    let said = watching.wait_for("this device was removed from the shared space by Alex");
    assert!(!said.contains("stopped watching"), "{said}");
    sam.ok(&["reflect", "--private", "still mine"]);
    let lines = watching.stop();
    assert!(
        !lines.iter().any(|l| l.contains("stopped watching")),
        "{lines:?}"
    );
}

/// A watcher whose device another device of its person removes from every space fails,
/// as `duet sync` then does: a script or service that restarts it must learn that
/// nothing will sync there again (it ended with success).
#[test]
fn a_watcher_whose_device_is_in_no_space_any_more_fails_as_sync_does() {
    let relay = Relay::start();
    let (alex, _sam) = duet_tests::pair(&relay);
    let phone = Device::new();
    phone.ok(&["join", &alex.device_code(), "--name", "Alex"]);
    let mut watching = Watcher::start(&phone);
    let key = phone.json(&["status"])["device"]
        .as_str()
        .expect("its key")
        .to_string();
    alex.ok(&["device", "remove", &key[..12], "--yes"]);
    watching.wait_for("no longer a member of any space");
    assert_eq!(watching.ended().code(), Some(1));
}

#[test]
fn a_watcher_started_while_the_relay_is_down_says_so_in_words() {
    let mut relay = Relay::start();
    let (_a, b) = couple_with_a_goal(&relay);
    relay.kill();
    let mut wb = Watcher::start(&b);
    // Said on stderr, maybe before stdout's "Watching for changes".
    wb.printed("nothing answers there");
    let lines = wb.stop();
    assert!(
        !lines.iter().any(|l| l.contains("URL error")),
        "the socket library's words: {lines:?}"
    );
}

/// The space's live connections all taken (here: one allowed, and Alex's device holds
/// it): the partner's watcher says so in words, waits as long as the relay's
/// `Retry-After` asks before trying again, and syncs on its own meanwhile.
#[test]
fn a_watcher_refused_a_live_connection_for_now_waits_as_the_relay_asks() {
    let relay = Relay::start_with(&["--max-live-per-space", "1"]);
    let (alex, sam) = pair(&relay);
    let space = shared_space(&alex);
    let me = duet_core::device::Device::open(&alex.home)
        .expect("Alex's device")
        .me
        .clone();
    let _held = tungstenite::connect(live_request(&relay, &space, Some(&me)))
        .expect("Alex's live connection");
    let mut sams = Watcher::start(&sam);
    let said = sams.printed("no live connection free for now");
    assert!(said.contains("shared space"), "{said}");
    assert!(
        said.contains("next try in 30 s"),
        "the relay's Retry-After is waited for: {said}"
    );
}

/// The relay's operator restarts it on the wrong database (an empty one), then puts the
/// right one back: the watcher says the refusal once, keeps trying, and is back without
/// being started again (it stopped for good, and the device synced live no more).
#[test]
fn a_watcher_waits_out_a_relay_restarted_on_the_wrong_database() {
    let mut relay = Relay::start();
    let (a, b) = couple_with_a_goal(&relay);
    let mut wb = Watcher::start(&b);
    relay.kill();
    wb.wait_for("reconnecting");
    // The database with its WAL (a killed relay leaves its last commits there).
    let db = relay.db().display().to_string();
    let files = ["", "-wal", "-shm"].map(|end| (format!("{db}{end}"), format!("{db}.right{end}")));
    for (file, aside) in &files {
        let _ = std::fs::rename(file, aside);
    }
    relay.restart();
    wb.wait_for("live connection refused");
    wb.printed("trying again every");
    relay.kill();
    for (file, aside) in &files {
        let _ = std::fs::remove_file(file);
        let _ = std::fs::rename(aside, file);
    }
    relay.restart();
    wb.wait_for("Connected to the relay again");
    a.ok(&["rate", "Evening walk", "2"]);
    a.ok(&["checkin", "--close"]);
    a.ok(&["sync"]);
    wb.wait_for("1 revealed rating");
    let said = wb.stop();
    // Once per space while it lasts (each is tried again every 15 s).
    for space in ["shared", "personal"] {
        let refused = format!("warning ({space} space): live connection refused");
        assert!(
            said.iter().filter(|l| l.contains(&refused)).count() <= 1,
            "said once while it lasts: {said:#?}"
        );
    }
}
