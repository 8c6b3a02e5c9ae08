//! A couple's lifecycle through the real binaries and relay: exactly two persons (a
//! leftover, a revoked, a used and a hand-made invite all fail to add a third), removing
//! the other partner's device is asked for and explained, a removed device learns who
//! removed it and when, and a partner who leaves takes everything up to the leave and
//! nothing after it.

use duet_core::device::Device as CoreDevice;
use duet_core::event::{Event, Kind, MembershipOp};
use duet_core::identity::keypair_from_seed;
use duet_core::invite::InviteCode;
use duet_core::store::SpaceKind;
use duet_tests::proxy::RelayProxy;
use duet_tests::{Device, Relay, pair};

#[test]
fn removing_the_partners_only_device_asks_first_and_says_what_it_means() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    sam.ok(&["sync"]);
    let sam_key = sam.json(&["export"])["me"]["device"]
        .as_str()
        .expect("Sam's device key")
        .to_string();
    // A script (no terminal to ask on) without --yes: refused, nothing removed.
    let refused = alex.run(&["device", "remove", &sam_key[..12]]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("Sam's only device")
            && refused
                .stderr
                .contains("no longer be able to read or write")
            && refused.stderr.contains("--yes"),
        "{}",
        refused.stderr
    );
    // It says the removal is for good, and what to do instead for a lost device.
    assert!(
        refused.stderr.contains("for good")
            && refused
                .stderr
                .contains("no backup or new device of Sam's comes back")
            && refused.stderr.contains("brings it back from a backup"),
        "{}",
        refused.stderr
    );
    let listed = alex.json(&["device", "list"]);
    let row = listed
        .as_array()
        .expect("devices")
        .iter()
        .find(|d| d["device"] == sam_key.as_str())
        .expect("Sam's device");
    assert_eq!(row["removed"], false, "nothing was removed");
    // With --yes it goes through.
    let out = alex.ok(&["device", "remove", &sam_key[..12], "--yes"]);
    assert!(out.contains("Removed device"), "{out}");
    // Alex's status says Sam is gone, as it says of a partner who left.
    let status = alex.ok(&["status"]);
    assert!(
        status.contains("Sam is gone: every device of theirs was removed"),
        "{status}"
    );
    let json = alex.json(&["status"]);
    assert_eq!(json["spaces"][0]["left"][0]["removed"], true, "{json}");
    // So does `verify` (it said no partner had joined yet, and to invite one).
    let verify = alex.ok(&["verify"]);
    assert!(
        verify.contains("Sam is no longer in the shared space") && !verify.contains("duet invite"),
        "{verify}"
    );
    // Nor is a confirmation recorded: there is no partner's device left to vouch for.
    let confirm = alex.run(&["verify", "--confirm"]);
    assert!(
        confirm.code == 1
            && confirm
                .stderr
                .contains("Sam is no longer in the shared space")
            && confirm.stderr.contains("nothing was recorded")
            && !confirm.stdout.contains("Recorded"),
        "{confirm:?}"
    );
    // Sam's device, not synced since, learns it as it makes a code: the same advice as
    // once known (it pointed to `start-over` the first time, and said nothing of the
    // removal).
    let first = sam.run(&["device", "add"]);
    assert!(
        first.code != 0
            && first.stderr.contains("duet backup FILE")
            && !first.stderr.contains("start-over"),
        "{first:?}"
    );
    // Said once, by the error (the news of the code's sync said it first).
    assert_eq!(
        first
            .stderr
            .matches("removed from the shared space by")
            .count(),
        1,
        "{first:?}"
    );
    // Sam's own device is told it was removed, not that Sam is gone.
    sam.run(&["sync"]);
    let status = sam.ok(&["status"]);
    assert!(
        status.contains("removed") && !status.contains("Sam is gone"),
        "{status}"
    );
    // Sam's personal space still works here: a new device of Sam's gets it through a
    // backup, not `start-over` (which sets it aside).
    let add = sam.run(&["device", "add"]);
    assert!(
        add.code != 0
            && add.stderr.contains("duet backup FILE")
            && !add.stderr.contains("start-over"),
        "{add:?}"
    );
}

fn invite_code(d: &Device) -> String {
    d.json(&["invite"])["code"]
        .as_str()
        .expect("invite code")
        .to_string()
}

#[test]
fn a_third_person_cannot_join_with_a_leftover_revoked_used_or_hand_made_invite() {
    let relay = Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let revoked = invite_code(&alex);
    let used = invite_code(&alex);
    let leftover = invite_code(&alex);
    let listed = alex.json(&["invite", "list"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");

    // A revoked invite admits no one: the relay refuses, and nothing is left behind.
    alex.ok(&["invite", "revoke", &revoked]);
    let sam = Device::new();
    let r = sam.run(&["join", &revoked, "--name", "Sam"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("revoked"), "{}", r.stderr);
    assert!(!sam.db().exists(), "no half-made device behind");

    sam.ok(&["join", &used, "--name", "Sam"]);
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);

    // Once Sam has joined, a used invite, a leftover one and a fresh one all fail.
    let eve = Device::new();
    let r = eve.run(&["join", &used, "--name", "Eve"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("already used"), "{}", r.stderr);
    // The home the join made is gone with it, lock file and all (protocol.md).
    assert!(
        !eve.home.exists(),
        "{:?}",
        std::fs::read_dir(&eve.home).map(|d| d.count())
    );
    let r = eve.run(&["join", &leftover, "--name", "Eve"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("two persons"), "{}", r.stderr);
    let r = alex.run(&["invite"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("Sam has joined already") && r.stderr.contains("duet device add"),
        "{}",
        r.stderr
    );
    let states: Vec<String> = alex
        .json(&["invite", "list"])
        .as_array()
        .expect("invites")
        .iter()
        .map(|i| i["state"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        states.iter().filter(|s| *s == "revoked").count(),
        1,
        "{states:?}"
    );
    assert_eq!(
        states.iter().filter(|s| *s == "used").count(),
        1,
        "{states:?}"
    );
    assert_eq!(
        states.iter().filter(|s| *s == "closed").count(),
        1,
        "{states:?}"
    );

    // A modified client of Alex's signs a fresh partner invite by hand: the relay takes
    // the invite, but refuses the third person's join with it.
    let secret = [42u8; 32];
    let code = {
        let mut dev = CoreDevice::open(&alex.home).expect("Alex's device");
        let rec = dev.space(SpaceKind::Shared).expect("shared space");
        let expires_at = dev.now() + 3_600_000;
        dev.sign_membership(
            SpaceKind::Shared,
            &MembershipOp::Invite {
                invite_key: keypair_from_seed(secret).1,
                expires_at,
                person: None,
            },
        )
        .expect("hand-made invite");
        InviteCode {
            relay: relay.url.clone(),
            space: rec.id,
            key: rec.key.clone(),
            later_keys: Vec::new(),
            secret,
            expires_at,
        }
        .encode()
    };
    alex.ok(&["sync"]);
    let r = eve.run(&["join", &code, "--name", "Eve"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("two persons"), "{}", r.stderr);
    assert!(!eve.db().exists(), "no half-made device behind");
    sam.ok(&["sync"]);
    assert_eq!(
        sam.json(&["status"])["spaces"][0]["members"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "Sam's device counts two members"
    );
}

#[test]
fn a_removed_partner_learns_who_and_when_refuses_shared_edits_and_keeps_everything() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    sam.ok(&["goal", "add", "Walk together", "--area", "quality-time"]);
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    let sam_key = sam.json(&["export"])["me"]["device"]
        .as_str()
        .expect("Sam's device key")
        .to_string();
    // At 15:00 UTC: 04:00 the next day in Auckland, where Sam is.
    let removed_at = "2026-12-02T15:00:00Z";
    alex.ok_env(
        &["device", "remove", &sam_key[..12], "--yes"],
        &[("DUET_NOW", removed_at)],
    );
    let auckland = [("TZ", "Pacific/Auckland")];
    let on = "removed from the shared space by Alex on 2026-12-03 04:00";

    let r = sam.run_full(&["sync"], None, &auckland);
    let said = format!("{}{}", r.stdout, r.stderr);
    assert!(said.contains(on), "{said}");
    let r = sam.run_full(
        &["goal", "add", "Queued?", "--area", "quality-time"],
        None,
        &auckland,
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains(on) && r.stderr.contains("duet export"),
        "{}",
        r.stderr
    );
    let export = sam.json(&["export"]);
    let titles: Vec<&str> = export["shared"]["goals"]
        .as_array()
        .expect("goals")
        .iter()
        .filter_map(|g| g["title"].as_str())
        .collect();
    assert_eq!(titles, ["Walk together"], "{export}");
    // The personal space is Sam's own: it goes on.
    sam.ok(&["reflect", "--private", "still mine"]);
}

/// Sam's epoch keys of the shared space, read from Sam's store.
/// The events the relay holds, in its order, from the first leave on.
fn events_from_the_leave(relay: &Relay) -> Vec<Event> {
    let events: Vec<Event> = relay
        .events()
        .into_iter()
        .filter_map(|(_, _, _, bytes)| Event::decode(bytes).ok())
        .collect();
    let leave = events
        .iter()
        .position(|e| e.kind() == Kind::Leave)
        .expect("the leave reached the relay");
    events[leave..].to_vec()
}

fn epoch_keys(home: &std::path::Path) -> Vec<(u32, duet_core::crypto::SpaceKey)> {
    let dev = CoreDevice::open(home).expect("device");
    let rec = dev.space(SpaceKind::Shared).expect("shared");
    dev.store()
        .epoch_keys(&rec.id)
        .expect("keys")
        .into_iter()
        .collect()
}

#[test]
fn after_a_partner_leaves_the_other_writes_under_a_key_the_leaver_never_had() {
    let relay = Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let leftover = invite_code(&alex);
    let sam = Device::new();
    sam.ok(&["join", &invite_code(&alex), "--name", "Sam"]);
    alex.ok(&["goal", "add", "Before the leave", "--area", "trust"]);
    alex.ok(&["sync"]);
    // An export over a file that exists is refused before anything happens.
    let precious = sam.home.join("notes.txt");
    std::fs::write(&precious, "precious").expect("a file of Sam's");
    let refused = sam.run(&[
        "leave",
        "--yes",
        "--export",
        precious.to_str().expect("path"),
    ]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("exists already"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&precious).expect("kept"),
        "precious"
    );
    assert!(sam.json(&["status"])["spaces"][0]["departed"].is_null());
    let export = sam.home.join("mine.json");
    let out = sam.ok(&["leave", "--yes", "--export", export.to_str().expect("path")]);
    assert!(out.contains("You left the shared space"), "{out}");
    let kept = std::fs::read_to_string(&export).expect("the leaver's export");
    assert!(
        kept.contains("Before the leave"),
        "the export holds what Sam could read"
    );
    // Leaving again (the same command, run twice) says the first leave happened.
    let again = sam.run(&["leave", "--yes", "--export", export.to_str().expect("path")]);
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(again.stderr.contains("you left"), "{}", again.stderr);
    assert!(
        !again.stderr.contains("has not reached"),
        "{}",
        again.stderr
    );
    // A new device cannot join a space left: how the personal space, which stays the
    // leaver's, goes to a new one is said (not `start-over`, which would set it aside).
    let add = sam.run(&["device", "add"]);
    assert_eq!(add.code, 1, "{add:?}");
    assert!(
        add.stderr.contains("duet backup") && add.stderr.contains("duet restore"),
        "{}",
        add.stderr
    );

    let synced = alex.ok(&["sync"]);
    assert!(
        synced.contains("shared: Sam left the shared space"),
        "the sync says who left: {synced}"
    );
    let devices = alex.ok(&["device", "list"]);
    assert!(
        devices.contains("(left)") && !devices.contains("(removed)"),
        "{devices}"
    );
    // The space stays the couple's: no new partner, and the invite says why.
    let invite = alex.run(&["invite"]);
    assert!(
        invite
            .stderr
            .contains("Sam is no longer in this shared space")
            && invite.stderr.contains("`duet start-over`"),
        "{}",
        invite.stderr
    );
    alex.ok(&["goal", "add", "After the leave", "--area", "trust"]);
    alex.ok(&["sync"]);

    // Alex's events after the leave are sealed under an epoch Sam has no key for, and no
    // key Sam holds opens them.
    let sam_keys = epoch_keys(&sam.home);
    let alex_key = alex.json(&["export"])["me"]["device"]
        .as_str()
        .expect("Alex's device")
        .to_string();
    let events = events_from_the_leave(&relay);
    assert!(
        events.iter().any(|e| e.kind() == Kind::Rotate),
        "Alex's device started a new key"
    );
    let later: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind() == Kind::Changes && hex::encode(e.header().author) == alex_key)
        .collect();
    assert!(!later.is_empty(), "Alex wrote after the leave");
    for ev in later {
        let epoch = ev.epoch().expect("epoch");
        assert!(sam_keys.iter().all(|(e, _)| *e < epoch), "epoch {epoch}");
        for (_, k) in &sam_keys {
            assert!(
                ev.open(k).is_err(),
                "a key of the leaver opens a later event"
            );
        }
    }

    for d in [&alex, &sam] {
        let lines: Vec<String> = d
            .history()
            .iter()
            .filter_map(|e| e["summary"].as_str().map(str::to_string))
            .collect();
        assert!(
            lines
                .iter()
                .any(|l| l.contains("Sam left the shared space")),
            "{lines:?}"
        );
    }
    let status = alex.ok(&["status"]);
    assert!(status.contains("Sam left on"), "{status}");
    let status = sam.ok(&["status"]);
    assert!(status.contains("you left the shared space on"), "{status}");
    // Nobody takes Sam's place: a partner invite left over from before admits no one.
    let eve = Device::new();
    let r = eve.run(&["join", &leftover, "--name", "Eve"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("two persons"), "{}", r.stderr);
    let r = sam.run(&["goal", "add", "Still here?", "--area", "trust"]);
    assert!(
        r.stderr.contains("you left the shared space"),
        "{}",
        r.stderr
    );
    sam.ok(&["reflect", "--private", "my own notes go on"]);
    assert!(!alex.ok(&["goal", "list"]).contains("Still here?"));
}

/// A device code Sam made for a new phone, and not used, admits no one once Sam left:
/// leaving withdraws the codes one made first.
#[test]
fn codes_made_before_leaving_admit_no_one_after() {
    let relay = Relay::start();
    let (alex, sam) = duet_tests::pair(&relay);
    let phone_code = sam.json(&["device", "add"])["code"]
        .as_str()
        .expect("a device code")
        .to_string();
    let export = sam.home.join("mine.json");
    sam.ok(&["leave", "--yes", "--export", export.to_str().expect("path")]);
    let states: Vec<String> = sam
        .json(&["invite", "list"])
        .as_array()
        .expect("invites")
        .iter()
        .filter(|r| r["kind"] == "device")
        .map(|r| r["state"].to_string())
        .collect();
    assert_eq!(
        states,
        ["\"revoked\"", "\"revoked\""],
        "both halves withdrawn"
    );
    let phone = Device::new();
    let joined = phone.run(&["join", &phone_code]);
    assert_ne!(
        joined.code, 0,
        "a new device joined a space its person left"
    );
    // The advice names the leave, not only `duet device add`, which refuses after it.
    assert!(
        joined.stderr.contains("invite_revoked")
            && joined.stderr.contains("or you left the shared space there")
            && joined
                .stderr
                .contains("if you have not left, make a new one"),
        "a device code's advice is a device code's: {}",
        joined.stderr
    );
    alex.ok(&["sync"]);
    assert_eq!(
        alex.json(&["device", "list"]).as_array().map(Vec::len),
        Some(2),
        "no third device"
    );
}

#[test]
fn a_client_refuses_a_third_persons_join_even_when_a_relay_serves_it() {
    use duet_core::membership::{AdmitError, SpaceState};
    use duet_testkit::{ChainSigner, couple::Couple};
    // A lying relay serves a third person's join with a partner invite Alex made before
    // Sam joined: the client's rules refuse it, also after Sam's device was removed.
    let (mut c, first) = Couple::signed([1; 32]);
    let leftover = c
        .alex
        .invite(c.space, [2; 32], duet_testkit::now_ms() + 3_600_000);
    let mut state = SpaceState::default();
    for ev in first.owner.iter().chain([&leftover, &first.join]) {
        state.admit(ev, None).expect("the couple's own events");
    }
    let mut eve = ChainSigner::new("Eve");
    let join = eve.join(c.space, [2; 32]);
    assert_eq!(state.check(&join, None), Err(AdmitError::SpaceFull));
    let removal = duet_core::rekey::next_epoch(
        &c.alex.id,
        c.space,
        &state,
        (c.alex.seq, c.alex.prev),
        Some(&c.sam.key()),
        duet_testkit::now_ms(),
    )
    .0;
    state
        .admit(&removal, None)
        .expect("Alex removes Sam's device");
    assert_eq!(state.check(&join, None), Err(AdmitError::SpaceFull));
}

#[test]
fn a_revocation_that_loses_a_race_is_withdrawn_and_what_followed_it_still_syncs() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    let code = alex.json(&["device", "add"])["code"]
        .as_str()
        .expect("device code")
        .to_string();
    sam.ok(&["sync"]);
    // Alex revokes the code while the relay cannot be reached, then writes a goal.
    alex.ok(&["relay", "set", "http://127.0.0.1:9"]);
    let offline = alex.run(&["invite", "revoke", &code]);
    assert_ne!(offline.code, 0, "the revocation could not be pushed");
    alex.ok(&[
        "goal",
        "add",
        "Cook together on Sundays",
        "--area",
        "quality-time",
    ]);
    // Meanwhile Sam revokes the same code, and the relay takes Sam's first.
    sam.ok(&["invite", "revoke", &code]);
    // Alex's revocation lost the race: withdrawn, and the goal after it still arrives.
    alex.ok(&["relay", "set", &relay.url]);
    let out = alex.run(&["sync"]);
    assert!(out.stderr.contains("withdrawn"), "{out:?}");
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    assert!(
        duet_tests::shared_titles(&sam).contains(&"Cook together on Sundays".to_string()),
        "{:?}",
        duet_tests::shared_titles(&sam)
    );
    let r = Device::new().run(&["join", &code]);
    assert_ne!(r.code, 0, "the code stays revoked: {r:?}");
}

/// Sam leaves while the relay cannot be reached, and meanwhile Sam's new phone joins with
/// a device code Sam made: the revocation of that code, signed before the leave, loses
/// the race and is withdrawn, and the leave after it is signed again, not lost.
#[test]
fn a_leave_behind_a_revocation_that_lost_a_race_still_reaches_the_partner() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    let code = sam.json(&["device", "add"])["code"]
        .as_str()
        .expect("device code")
        .to_string();
    sam.ok(&["relay", "set", "http://127.0.0.1:9"]);
    let export = sam.home.join("mine.json");
    sam.ok(&["leave", "--yes", "--export", export.to_str().expect("path")]);
    Device::new().ok(&["join", &code]);
    sam.ok(&["relay", "set", &relay.url]);
    sam.run(&["sync"]);
    let synced = alex.ok(&["sync"]);
    assert!(synced.contains("Sam left the shared space"), "{synced}");
}

/// What a relay that lies about revocations answers: every push holding a `revoke`
/// event gets 409 `conflict` ("the invite was closed meanwhile") and nothing is stored.
fn revocations_conflict(events: &[Event]) -> Option<(u16, String)> {
    let ev = events.iter().find(|ev| ev.kind() == Kind::Revoke)?;
    let answer = serde_json::json!({
        "error": "conflict",
        "message": "the invite was revoked or used meanwhile",
        "results": [{"hash": hex::encode(ev.hash()), "status": "rejected",
                     "reason": "invite closed"}],
    });
    Some((409, answer.to_string()))
}

#[test]
fn a_relay_that_falsely_answers_conflict_cannot_make_a_revocation_disappear() {
    let relay = Relay::start();
    let (alex, _sam) = pair(&relay);
    let code = alex.json(&["device", "add"])["code"]
        .as_str()
        .expect("device code")
        .to_string();
    // Alex revokes the code through a relay that answers every revocation with a false
    // "conflict", hoping Alex's device withdraws it and the code stays open.
    let liar = RelayProxy::start(&relay.url, revocations_conflict);
    alex.ok(&["relay", "set", &liar.url]);
    let r = alex.run(&["invite", "revoke", &code]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("has not reached the relay"),
        "{}",
        r.stderr
    );
    assert!(liar.answered() >= 1, "the revocation went through the liar");
    // The revocation stays on Alex's device, and each sync says the relay refuses it.
    let device_invite_state = |d: &Device| {
        d.json(&["invite", "list"])
            .as_array()
            .expect("invite rows")
            .iter()
            .find(|row| row["kind"] == "device")
            .map(|row| row["state"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(device_invite_state(&alex).as_deref(), Some("revoked"));
    let again = alex.run(&["sync"]);
    assert!(again.stderr.contains("keeps refusing"), "{again:?}");
    assert_eq!(device_invite_state(&alex).as_deref(), Some("revoked"));
    // Once Alex reaches an honest relay, the revocation arrives: the code admits no one.
    alex.ok(&["relay", "set", &relay.url]);
    alex.ok(&["sync"]);
    let r = Device::new().run(&["join", &code]);
    assert_ne!(r.code, 0, "the code stays revoked: {r:?}");
    assert!(r.stderr.contains("revoked"), "{}", r.stderr);
}

#[test]
fn after_leaving_a_lost_device_is_still_taken_out_of_the_personal_space() {
    let relay = Relay::start();
    let (_alex, sam) = pair(&relay);
    let phone = Device::new();
    let code = sam.json(&["device", "add"])["code"]
        .as_str()
        .expect("a device code")
        .to_string();
    phone.ok(&["join", &code]);
    sam.ok(&["sync"]);
    let export = sam.home.join("mine.json");
    sam.ok(&["leave", "--yes", "--export", export.to_str().expect("path")]);
    // The phone is lost; Sam takes it out of what is left: the personal space.
    let key = phone.json(&["status"])["device"]
        .as_str()
        .expect("device key")
        .to_string();
    let out = sam.ok(&["device", "remove", &key[..12], "--yes"]);
    assert!(out.contains("from the personal space"), "{out}");
    sam.ok(&[
        "reflect",
        "--private",
        "Canary-3f9 after the phone was lost",
    ]);
    sam.ok(&["sync"]);
    let _ = phone.run(&["sync"]);
    let held = phone.run(&["export"]).stdout;
    assert!(!held.contains("Canary-3f9"), "the lost phone reads it");
}

/// A device's join the relay stored, cut off before the space was read back (the
/// relay stopped, the process was killed): its commands say the join is unfinished, as
/// for a join never stored (a goal or a reflection said the data was damaged).
#[test]
fn a_join_the_relay_stored_but_never_answered_reads_of_is_said_unfinished() {
    let relay = Relay::start();
    let alex = Device::new();
    let proxy = RelayProxy::start_dropping_reads(&relay.url);
    alex.ok(&["init", "--name", "Alex", "--relay", &proxy.url]);
    alex.ok(&["goal", "add", "Walk together", "--area", "quality-time"]);
    alex.ok(&["sync"]);
    let code = alex.device_code();
    proxy.drop_reads();
    let phone = Device::new();
    let cut = phone.run_with_stdin(&["join", "-"], Some(&code));
    assert_ne!(cut.code, 0, "{cut:?}");
    let status = phone.json(&["status"]);
    assert_eq!(
        status["spaces"][0]["unsent_events"], 0,
        "the join was stored: {status}"
    );
    for write in [
        &["goal", "add", "Evening walk", "--area", "trust"][..],
        &["reflect", "hello"][..],
        &["rate", "walk", "1"][..],
    ] {
        let r = phone.run(write);
        assert!(
            r.code != 0
                && r.stderr.contains("joining is not finished")
                && !r.stderr.contains("damaged"),
            "{write:?}: {r:?}"
        );
    }
    assert_eq!(status["spaces"][0]["joining"], true, "{status}");
    // Nor does it hand out a partner invite: it does not know who is in the space yet
    // (a code that could admit no one was printed, "Anyone who has it can join").
    let invite = phone.run(&["invite"]);
    assert!(
        invite.code != 0 && invite.stderr.contains("joining is not finished"),
        "{invite:?}"
    );
}

#[test]
fn the_same_join_run_again_after_it_was_cut_off_finishes_it() {
    let mut relay = Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    alex.ok(&["goal", "add", "Walk together", "--area", "quality-time"]);
    alex.ok(&["sync"]);
    let code = invite_code(&alex);
    // Sam's join is cut off before its sync finished (here: the relay went away).
    relay.kill();
    let sam = Device::new();
    let cut = sam.run(&["join", &code, "--name", "Sam"]);
    assert_ne!(cut.code, 0, "{cut:?}");
    // Meanwhile, each command says the join is unfinished, none that the data is damaged.
    let listed = sam.ok(&["goal", "list"]);
    assert!(listed.contains("joining is not finished"), "{listed}");
    assert!(sam.ok(&["status"]).contains("joining is not finished"));
    let devices = sam.ok(&["device", "list"]);
    assert!(devices.contains("joining is not finished"), "{devices}");
    assert_eq!(sam.json(&["status"])["spaces"][0]["joining"], true);
    for write in [
        &["goal", "add", "Evening walk", "--area", "trust"][..],
        &["reflect", "hello"][..],
        &["rate", "walk", "1"][..],
    ] {
        let r = sam.run(write);
        assert_ne!(r.code, 0, "{r:?}");
        assert!(
            r.stderr.contains("joining is not finished") && !r.stderr.contains("damaged"),
            "{write:?}: {}",
            r.stderr
        );
    }
    relay.restart();
    // Running the same command again finishes it, rather than sending Sam to another
    // home (where the invite, once used, would let no one in).
    // (Under another name, said as kept: it spoke of a device code.)
    let again = sam.run(&["join", &code, "--name", "Samuel"]);
    assert!(
        again.code == 0
            && again.stdout.contains("Joined the shared space with Alex")
            && again.stderr.contains("began its join as Sam;")
            && !again.stderr.contains("device code"),
        "{again:?}"
    );
    assert!(sam.ok(&["goal", "list"]).contains("Walk together"));
    // Another space's code in a home set up already is still refused.
    let other = Device::new();
    other.ok(&["init", "--name", "Kim", "--relay", &relay.url]);
    let r = sam.run(&["join", &invite_code(&other), "--name", "Sam"]);
    assert!(r.stderr.contains("already has a duet identity"), "{r:?}");
}

#[test]
fn a_join_on_a_clock_days_ahead_names_the_clock_not_only_the_code() {
    let relay = Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let code = invite_code(&alex);
    let two_days_on = (duet_core::ids::now_ms() + 2 * 86_400_000).to_string();
    let sam = Device::new();
    let r = sam.run_full(
        &["join", &code, "--name", "Sam"],
        None,
        &[("DUET_NOW", &two_days_on)],
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("expired 24 hours ago by this device's clock")
            && r.stderr.contains("this device's clock is ahead"),
        "{}",
        r.stderr
    );
    // With the clock right, the same code works.
    sam.ok(&["join", &code, "--name", "Sam"]);
}

#[test]
fn an_invite_made_on_a_clock_days_behind_is_withdrawn_and_the_clock_named() {
    let relay = Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let two_days_ago = (duet_core::ids::now_ms() - 2 * 86_400_000).to_string();
    let r = alex.run_full(&["invite"], None, &[("DUET_NOW", &two_days_ago)]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("clock is 2 days behind the relay's")
            && r.stderr.contains("withdrawn")
            && r.stderr
                .contains("if it is right already, the relay's clock is wrong"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.trim().is_empty(),
        "a dead code was given: {}",
        r.stdout
    );
    let states = alex.json(&["invite", "list"]).to_string();
    assert!(!states.contains("\"open\""), "{states}");
    // A short code's invite lives 10 minutes: none is read aloud on that clock either
    // (it used to wait for a partner whose join could only fail as expired).
    let mut short = alex.command(&["invite", "--short"]);
    short
        .env("DUET_NOW", &two_days_ago)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = short.spawn().expect("duet invite --short");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("`duet invite --short` gave a code on a clock 2 days behind, and waits");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let (said, code) = (
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout),
    );
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("clock is 2 days behind the relay's"),
        "{said}"
    );
    assert!(code.trim().is_empty(), "a dead code was given: {code}");
    let states = alex.json(&["invite", "list"]).to_string();
    assert!(!states.contains("\"open\""), "{states}");
    // On a clock set right, the invite is made as always.
    alex.ok(&["invite"]);
}

/// A leave cut off between storing its event and marking the home as left (Ctrl-C, a
/// full disk, a crash) leaves neither: before, the leave was queued while every command
/// acted as a member, and the next sync left, stranding what was written meanwhile.
#[test]
fn a_leave_cut_off_half_way_leaves_nothing_queued_and_what_follows_reaches_the_partner() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    // The home's second write of the leave fails, as a process killed between the two
    // would leave it (a trigger on the real store refuses marking the space as left).
    let stop = |d: &Device, sql: &str| {
        let conn = rusqlite::Connection::open(d.db()).expect("the store");
        conn.execute_batch(sql).expect("trigger");
    };
    stop(
        &sam,
        "CREATE TRIGGER cut_off BEFORE UPDATE OF departed ON spaces
         BEGIN SELECT RAISE(ABORT, 'cut off'); END;",
    );
    let export = sam.home.join("mine.json");
    let cut = sam.run(&["leave", "--yes", "--export", export.to_str().expect("path")]);
    assert_ne!(cut.code, 0, "{cut:?}");
    stop(&sam, "DROP TRIGGER cut_off;");
    // Sam, told the leave did not happen, writes on, and syncs.
    sam.ok(&["reflect", "Written after the leave was cut off"]);
    sam.ok(&["sync"]);
    let synced = alex.ok(&["sync"]);
    assert!(!synced.contains("Sam left"), "{synced}");
    assert!(
        alex.ok(&["reflections"])
            .contains("Written after the leave was cut off")
    );
}

/// Trying one's own partner invite on one's own device (to "check it works") joins no
/// one: it is said so, and the invite stays open for the partner. It used to say
/// "Joined the shared space with your partner".
#[test]
fn joining_with_ones_own_invite_is_refused_and_the_invite_stays_open() {
    let relay = Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let code = alex.invite_code();
    let own = alex.run(&["join", &code, "--name", "Alex"]);
    assert_ne!(own.code, 0, "{own:?}");
    assert!(
        own.stderr.contains("this is your own invite"),
        "{}",
        own.stderr
    );
    assert_eq!(alex.open_invites(), 1);
    let sam = Device::new();
    sam.ok(&["join", &code, "--name", "Sam"]);
    alex.ok(&["sync"]);
    assert!(alex.ok(&["status"]).contains("Sam"));
}

/// The code printed by `duet invite` or `duet device add` run while the relay is down.
fn code_made_offline(d: &Device, args: &[&str]) -> String {
    let made = d.run(args);
    made.stdout
        .split_whitespace()
        .find(|w| w.starts_with("duet2"))
        .unwrap_or_else(|| panic!("a code made offline is given: {made:?}"))
        .to_string()
}

/// Alex sets up and invites while the relay is down: the code is given, and the relay
/// learns of the space and the invite with Alex's next sync. Sam, trying it first, is
/// told to have Alex sync (not only to ask for a new code); once Alex synced, the same
/// code joins. Likewise a device code made offline, and the device that made it.
#[test]
fn codes_made_offline_join_once_their_maker_synced_and_the_joiner_is_told_so() {
    let mut relay = Relay::start();
    let alex = Device::new();
    relay.kill();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let code = code_made_offline(&alex, &["invite"]);
    relay.restart();
    let sam = Device::new();
    let early = sam.run(&["join", &code, "--name", "Sam"]);
    assert_ne!(early.code, 0, "the relay does not know the space yet");
    assert!(
        early
            .stderr
            .contains("ask your partner to run `duet sync`, then join again"),
        "{}",
        early.stderr
    );
    alex.ok(&["sync"]);
    sam.ok(&["join", &code, "--name", "Sam"]);

    relay.kill();
    let phone_code = code_made_offline(&alex, &["device", "add"]);
    relay.restart();
    let phone = Device::new();
    let early = phone.run(&["join", &phone_code]);
    assert!(
        early.stderr.contains("unknown_invite")
            && early
                .stderr
                .contains("run `duet sync` on your other device, then join again"),
        "{}",
        early.stderr
    );
    alex.ok(&["sync"]);
    phone.ok(&["join", &phone_code]);
    alex.ok(&["sync"]);
    assert_eq!(
        alex.json(&["device", "list"]).as_array().map(Vec::len),
        Some(3),
        "Sam's device and Alex's phone joined with codes made offline"
    );
}

/// Alex's new phone joins after Sam left: it is not told it joined "with Sam".
#[test]
fn a_device_joining_after_the_partner_left_is_told_they_are_gone() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    sam.ok(&[
        "leave",
        "--yes",
        "--export",
        sam.home.join("mine.json").to_str().expect("path"),
    ]);
    alex.ok(&["sync"]);
    let code = alex.device_code();
    let phone = Device::new();
    let joined = phone.ok(&["join", &code]);
    assert!(
        !joined.contains("with Sam") && joined.contains("No device of Sam is in it any more"),
        "{joined}"
    );
}

/// Alex's tablet was removed; a new code tried in the tablet's home does not say it
/// joined (it joined nothing, and the code stays open for a new home).
#[test]
fn a_removed_devices_home_is_told_it_cannot_join_again() {
    let relay = Relay::start();
    let (alex, _sam) = pair(&relay);
    let tablet = Device::new();
    tablet.ok(&["join", &alex.device_code()]);
    let key = tablet.json(&["status"])["device"]
        .as_str()
        .expect("the tablet's key")
        .to_string();
    alex.ok(&["sync"]);
    alex.ok(&["device", "remove", &key, "--yes"]);
    let again = tablet.run(&["join", &alex.device_code()]);
    assert_ne!(again.code, 0, "{again:?}");
    assert!(
        again
            .stderr
            .contains("this device was removed from the shared space by Alex")
            && again.stderr.contains("cannot join again")
            && again.stderr.contains("use another --home")
            && again.stderr.contains("duet start-over"),
        "{}",
        again.stderr
    );
}

/// Sam writes and leaves with the relay out of reach: `duet status` says the leave and
/// what came before it go with the next sync (not that they can never reach the space),
/// and they do.
#[test]
fn an_offline_leave_is_said_to_go_with_the_next_sync_and_it_does() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    sam.ok(&["relay", "set", "http://127.0.0.1:9"]);
    sam.ok(&["reflect", "Last words before leaving"]);
    let export = sam.home.join("mine.json");
    sam.ok(&["leave", "--yes", "--export", export.to_str().expect("path")]);
    let status = sam.ok(&["status"]);
    assert!(
        status.contains("the leave has not reached the relay yet")
            && !status.contains("can no longer reach the space"),
        "{status}"
    );
    sam.ok(&["relay", "set", &relay.url]);
    // What the sync did is said once: the leave went (it said "not synced" and "sent
    // what was waiting" in two lines).
    let synced = sam.ok(&["sync"]);
    assert!(
        synced.contains("shared: your leave of ")
            && synced.contains("reached the relay with 1 event written before it;")
            && !synced.contains("not synced")
            && !synced.contains("sent what was waiting"),
        "{synced}"
    );
    alex.ok(&["sync"]);
    assert!(
        alex.ok(&["reflections"])
            .contains("Last words before leaving")
    );
    assert!(
        !sam.ok(&["status"])
            .contains("has not reached the relay yet")
    );
}

/// Sam leaves with the relay out of reach, then starts over: the leave would never
/// reach the space (Alex would go on counting Sam in it, and could invite nobody), so
/// starting over waits for a sync; after it, the home starts over and Alex sees Sam gone.
#[test]
fn a_home_whose_leave_has_not_reached_the_relay_syncs_before_it_starts_over() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    sam.ok(&["relay", "set", "http://127.0.0.1:9"]);
    sam.ok(&["reflect", "Last words before leaving"]);
    let export = sam.home.join("mine.json");
    sam.ok(&["leave", "--yes", "--export", export.to_str().expect("path")]);
    let refused = sam.run(&["start-over", "--yes"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    for said in [
        "nothing was set aside",
        "leave (and 1 other change of this device) has not reached the relay",
        "`duet sync` first",
        "--anyway",
    ] {
        assert!(refused.stderr.contains(said), "{said}: {}", refused.stderr);
    }
    assert!(duet_core::device::set_aside_in(&sam.home).is_empty());

    sam.ok(&["relay", "set", &relay.url]);
    sam.ok(&["sync"]);
    let out = sam.ok(&["start-over", "--yes"]);
    assert!(out.contains("set aside in"), "{out}");
    assert!(alex.ok(&["sync"]).contains("Sam left"));
    assert!(
        alex.ok(&["reflections"])
            .contains("Last words before leaving")
    );
    // Alex is told Sam is gone (not that Sam has joined already), and how to share Duet
    // with someone new.
    let invite = alex.run(&["invite"]);
    assert!(
        invite
            .stderr
            .contains("Sam is no longer in this shared space")
            && invite.stderr.contains("`duet start-over`"),
        "{invite:?}"
    );
}

/// After a leave that reached the relay, a private reflection written offline would
/// still reach Sam's other devices: starting over waits for it too, unless told the
/// relay is gone for good.
#[test]
fn a_private_change_not_yet_sent_holds_start_over_until_told_anyway() {
    let relay = Relay::start();
    let (_alex, sam) = pair(&relay);
    let export = sam.home.join("mine.json");
    sam.ok(&["leave", "--yes", "--export", export.to_str().expect("path")]);
    sam.ok(&["relay", "set", "http://127.0.0.1:9"]);
    sam.ok(&["reflect", "--private", "Only for me, after leaving"]);
    let refused = sam.run(&["start-over", "--yes"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("1 change of this device has not reached the relay"),
        "{}",
        refused.stderr
    );
    let out = sam.ok(&["start-over", "--yes", "--anyway"]);
    assert!(out.contains("set aside in"), "{out}");
}

/// A code carries the keys up to the epoch it was made in, and no device is given a key
/// after it joins: a removal withdraws every open code, so that a device never joins a
/// space it could not read or write (it looked set up and did nothing, for good).
#[test]
fn a_removal_withdraws_the_open_codes_made_before_it() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    let laptop = Device::new();
    laptop.ok(&["join", &alex.device_code()]);
    // The phone is lost: a code for the new one first, then the removal of the old.
    let new_phone_code = alex.device_code();
    let partner_code = sam.run(&["invite"]);
    assert_ne!(partner_code.code, 0, "the space has two people already");
    let laptop_key = laptop.json(&["status"])["device"]
        .as_str()
        .expect("key")
        .to_string();
    let said = alex.ok(&["device", "remove", &laptop_key[..10]]);
    assert!(
        said.contains("1 open code was withdrawn with it"),
        "the removal says so: {said}"
    );
    alex.ok(&["sync"]);
    let new_phone = Device::new();
    let joined = new_phone.run(&["join", &new_phone_code]);
    assert_eq!(joined.code, 1, "{}", joined.stderr);
    assert!(
        joined.stderr.contains("invite_revoked") && joined.stderr.contains("a device removal or"),
        "{}",
        joined.stderr
    );
    // A code made after the removal carries its key: that device reads what follows.
    alex.ok(&["goal", "add", "After the removal", "--area", "trust"]);
    alex.ok(&["sync"]);
    let fresh = Device::new();
    fresh.ok(&["join", &alex.device_code()]);
    assert!(fresh.ok(&["goal", "list"]).contains("After the removal"));
}

/// A device that left reads what it had; a blind rating its partner revealed after the
/// leave went under a key it never learns, so it is not told to rate to see it.
#[test]
fn a_device_that_left_is_not_told_to_rate_to_see_a_blind_rating() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    alex.ok(&["goal", "add", "Evening walk", "--area", "trust"]);
    alex.ok(&["rate", "walk", "-2"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    let export = sam.home.join("mine.json");
    sam.ok(&["leave", "--yes", "--export", export.to_str().expect("path")]);
    alex.ok(&["sync"]);
    let progress = sam.ok(&["progress"]);
    assert!(!progress.contains("rate to see it"), "{progress}");
    assert!(
        progress.contains("Alex rated blind: this device is no longer in the shared space"),
        "{progress}"
    );
    let shown = sam.ok(&["goal", "show", "walk"]);
    assert!(!shown.contains("rate to see it"), "{shown}");
    assert!(shown.contains("so it stays sealed here"), "{shown}");
}

/// A partner invite made by a device that had not heard of the partner's join yet
/// admits no one: the same command's sync learns of it, and says so instead of giving
/// the code.
#[test]
fn an_invite_made_before_hearing_of_the_partners_join_is_not_given() {
    let relay = Relay::start();
    let nia = Device::new();
    nia.ok(&["init", "--name", "Nia", "--relay", &relay.url]);
    let first = nia.invite_code();
    let oli = Device::new();
    oli.ok(&["join", &first, "--name", "Oli"]);
    let again = nia.run(&["invite"]);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(
        again.stderr.contains("Oli has joined already"),
        "{}",
        again.stderr
    );
    assert!(again.stdout.is_empty(), "no code given: {}", again.stdout);
    let max = Device::new();
    let used = max.run(&["join", &first, "--name", "Max"]);
    assert_ne!(used.code, 0);
    assert!(
        !used.stderr.contains("ask your partner for a new one"),
        "a new invite would not help: {}",
        used.stderr
    );
}

/// A code made on one device while another, apart, removed a device: the remover could
/// not withdraw a code it had not heard of, and the new device joins without the key of
/// what follows. It is told so, instead of looking set up.
#[test]
fn a_device_joining_with_a_code_older_than_a_removal_made_apart_is_told_it_cannot_catch_up() {
    let mut relay = Relay::start();
    let phone_code = duet_tests::code_older_than_a_removal_made_apart(&mut relay);
    let phone = Device::new();
    let joined = phone.run(&["join", &phone_code]);
    assert_eq!(joined.code, 1, "{}", joined.stderr);
    assert!(
        joined.stderr.contains("made before a device was removed")
            && joined.stderr.contains("duet device add"),
        "{}",
        joined.stderr
    );
}

/// A code made before the partner left carries only the key the partner knew, and no
/// device is given a key after it joins: the key rotation after the leave withdraws
/// every open code, so its device is refused at the join and told what to do, instead of
/// joining a space it could never read.
#[test]
fn the_new_key_after_a_partners_leave_withdraws_the_codes_made_before_it() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    let phone_code = alex.device_code();
    let export = sam.home.join("mine.json");
    sam.ok(&["leave", "--yes", "--export", export.to_str().expect("path")]);
    let synced = alex.run(&["sync"]);
    assert_eq!(synced.code, 0, "{synced:?}");
    assert!(
        synced
            .stderr
            .contains("1 open code made before the partner left was withdrawn")
            && synced.stderr.contains("duet device add"),
        "{}",
        synced.stderr
    );
    let phone = Device::new();
    let joined = phone.run(&["join", &phone_code]);
    assert_eq!(joined.code, 1, "{}", joined.stderr);
    assert!(
        joined.stderr.contains("invite_revoked") && joined.stderr.contains("partner's leave"),
        "{}",
        joined.stderr
    );
    // A code made after the new key carries it: that device reads what follows.
    alex.ok(&["goal", "add", "After the leave", "--area", "trust"]);
    alex.ok(&["sync"]);
    let fresh = Device::new();
    fresh.ok(&["join", &alex.device_code()]);
    assert!(fresh.ok(&["goal", "list"]).contains("After the leave"));
}

/// Sam set Duet up alone ("init") where Alex's code was meant, and wrote a goal there.
/// `duet start-over` asks first, then sets that device aside in a folder of the home,
/// where it still reads; the same home then joins Alex. Alex, whose partner is in the
/// space, is told to leave first, and nothing of theirs moves.
#[test]
fn a_home_set_up_alone_by_mistake_starts_over_on_the_command_line_and_joins_the_partner() {
    let relay = Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let sam = Device::new();
    sam.ok(&["init", "--name", "Sam", "--relay", &relay.url]);
    sam.ok(&["goal", "add", "Written alone", "--area", "trust"]);
    sam.ok(&[
        "reflect",
        "--private",
        "Private-canary-77b2 before starting over",
    ]);

    let unasked = sam.run(&["start-over"]);
    assert_eq!(unasked.code, 2, "no terminal to ask on: {unasked:?}");
    assert!(unasked.stderr.contains("--yes"), "{unasked:?}");
    assert!(
        sam.ok(&["goal", "list"]).contains("Written alone"),
        "nothing moved"
    );

    let out = sam.ok(&["start-over", "--yes"]);
    assert!(
        out.contains("set aside in") && out.contains("duet join CODE"),
        "{out}"
    );
    // A new identity needs the relay to pair through: the one set aside is named.
    assert!(
        out.contains(&format!("`duet init --name NAME --relay {}`", relay.url)),
        "{out}"
    );
    let aside = duet_core::device::set_aside_in(&sam.home);
    assert_eq!(aside.len(), 1, "{aside:?}");
    let old = Device::at(sam.home.join(&aside[0]));
    assert!(old.ok(&["goal", "list"]).contains("Written alone"));

    sam.ok(&["join", &alex.invite_code(), "--name", "Sam"]);
    alex.ok(&["sync"]);
    assert!(alex.ok(&["status"]).contains("Sam"), "Alex sees Sam join");
    // The private reflections written before are said to be in the folder set aside.
    let private = sam.run(&["reflections", "--private"]);
    assert!(
        private.stderr.contains(&aside[0]) && private.stderr.contains("reflections --private"),
        "{private:?}"
    );
    assert!(
        old.ok(&["reflections", "--private"])
            .contains("Private-canary-77b2")
    );

    let refused = alex.run(&["start-over", "--yes"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("duet leave") && refused.stderr.contains("Sam"),
        "{refused:?}"
    );
    // Alex has no other device: removing this one from another is not offered.
    assert!(
        !refused.stderr.contains("duet device remove"),
        "{refused:?}"
    );
    assert!(duet_core::device::set_aside_in(&alex.home).is_empty());
}

/// After Sam left, Alex's device speaks of no partner: closing a check-in does not
/// promise that Sam's ratings open, and leaving in turn is not "the space you share with
/// Sam".
#[test]
fn after_the_partner_left_closing_a_check_in_and_leaving_speak_of_no_partner() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    alex.ok(&["goal", "add", "Weekly check-in", "--area", "communication"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    sam.ok(&["rate", "weekly", "1"]);
    alex.ok(&["rate", "weekly", "-1"]);
    let export = sam.home.join("sam-export.json");
    sam.ok(&["leave", "--yes", "--export", export.to_str().expect("path")]);
    alex.ok(&["sync"]);
    let closed = alex.ok(&["checkin", "--close"]);
    assert!(
        closed.starts_with("Closed the check-in round") && !closed.contains("partner"),
        "{closed}"
    );
    let asked = alex.run(&["leave"]);
    assert_eq!(asked.code, 2, "{asked:?}");
    assert!(
        asked.stderr.contains("leave the shared space") && !asked.stderr.contains("Sam"),
        "{asked:?}"
    );
}

/// Alex writes offline while Sam leaves; the sync that learns of the leave starts a new
/// key and seals what Alex wrote under it, in the same sync: nothing of Alex's after
/// the leave is under a key Sam holds (the sync sealed it under the old key, since its
/// own rotation did not reach the state it packaged with).
#[test]
fn what_was_written_while_the_partner_left_is_sealed_under_the_new_key() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    alex.ok(&["sync"]);
    let export = sam.home.join("mine.json");
    sam.ok(&["leave", "--yes", "--export", export.to_str().expect("path")]);
    alex.ok(&["reflect", "Canary-4c9 written while Sam left"]);
    alex.ok(&["sync"]);
    let sam_keys = epoch_keys(&sam.home);
    let alex_key = alex.json(&["status"])["device"]
        .as_str()
        .expect("Alex's device")
        .to_string();
    let events = events_from_the_leave(&relay);
    let shared = events[0].header().space;
    let after: Vec<&Event> = events
        .iter()
        .filter(|e| e.header().space == shared && e.kind() == Kind::Changes)
        .filter(|e| hex::encode(e.header().author) == alex_key)
        .collect();
    assert!(!after.is_empty(), "Alex's reflection went out");
    for ev in after {
        let epoch = ev.epoch().expect("epoch");
        assert!(
            sam_keys.iter().all(|(e, _)| *e < epoch),
            "sealed under epoch {epoch}"
        );
    }
}

/// A leave made while the relay is out of reach is done on this device and sent by the
/// next sync: leaving again says so, and to sync, rather than only that the leave
/// happened.
#[test]
fn leaving_again_before_the_leave_was_sent_says_to_sync() {
    let mut relay = Relay::start();
    let (_alex, sam) = pair(&relay);
    relay.kill();
    let export = sam.home.join("mine.json");
    sam.ok(&["leave", "--yes", "--export", export.to_str().expect("path")]);
    let other = sam.home.join("again.json");
    let again = sam.run(&["leave", "--yes", "--export", other.to_str().expect("path")]);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(
        again
            .stderr
            .contains("the leave has not reached the relay yet: run `duet sync`"),
        "{}",
        again.stderr
    );
}

/// A partner who joins with a code made offline and syncs before its maker did: the
/// space is not on the relay yet. Said so, with the partner's sync as the next step
/// (exit 3); it said the relay had lost its database and to tell its operator.
#[test]
fn a_join_before_the_inviters_first_sync_waits_for_it_in_words() {
    let mut relay = Relay::start();
    relay.kill();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let code = alex.invite_code();
    let sam = Device::new();
    let cut = sam.run(&["join", &code, "--name", "Sam"]);
    assert_eq!(cut.code, 3, "{cut:?}");
    relay.restart();
    let early = sam.run(&["sync"]);
    assert!(
        early.code == 3
            && early.stderr.contains("ask your partner to run `duet sync`")
            && !early.stderr.contains("lost its database"),
        "{early:?}"
    );
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    assert!(sam.ok(&["status"]).contains("Alex"));
}
