//! Several devices per person, removal, and verifying each other in person.

use duet_tests::{Device, Relay};

fn code_of(d: &Device, args: &[&str]) -> String {
    d.json(args)["code"].as_str().expect("code").to_string()
}

/// Asserts no rating on `d` waits sealed, so both partners' exports can be compared.
fn assert_nothing_sealed(d: &Device) {
    let export = d.json(&["export"]);
    assert_eq!(
        export["shared"]["sealed"].as_array().map(Vec::len),
        Some(0),
        "a blind rating is still sealed: {export}"
    );
}

/// A device's key, as `duet status --json` gives it.
fn device_key(d: &Device) -> String {
    d.json(&["status"])["device"]
        .as_str()
        .expect("key")
        .to_string()
}

fn verify_code(d: &Device) -> String {
    d.json(&["verify"])["code"]
        .as_str()
        .expect("code")
        .to_string()
}

#[test]
fn a_phone_added_before_the_partner_joined_is_not_told_it_joined_with_them() {
    let relay = Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let phone = Device::new();
    let joined = phone.ok(&["join", &code_of(&alex, &["device", "add"])]);
    assert!(
        joined.contains("your partner has not joined it yet"),
        "{joined}"
    );
}

/// A code carries a space's keys: given as `-`, it is read from standard input (a pipe
/// or a paste), out of the process list and the shell's history, for a partner's invite
/// and a device code alike, also wrapped over lines; a blank input is a usage error that
/// sets nothing up.
#[test]
fn a_code_read_from_standard_input_joins_without_appearing_in_the_arguments() {
    let relay = Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let sam = Device::new();
    let blank = sam.run_with_stdin(&["join", "-", "--name", "Sam"], Some("\n  \n"));
    assert_eq!(blank.code, 2, "{blank:?}");
    assert!(blank.stderr.contains("held no code"), "{}", blank.stderr);
    assert!(!sam.db().exists(), "nothing set up");
    let empty = sam.run(&["join", "", "--name", "Sam"]);
    assert_eq!(empty.code, 2, "{empty:?}");
    assert!(
        empty.stderr.contains("no code was given"),
        "{}",
        empty.stderr
    );
    // Wrapped over lines, indented, with Windows line ends (as a mail or a note keeps
    // it): read whole, as the argument form reads it (only the first line was read).
    let invite = alex.invite_code();
    let wrapped: Vec<String> = invite
        .as_bytes()
        .chunks(40)
        .map(|c| format!("  {}\r\n", String::from_utf8_lossy(c)))
        .collect();
    let joined = sam.run_with_stdin(&["join", "-", "--name", "Sam"], Some(&wrapped.concat()));
    assert_eq!(joined.code, 0, "{joined:?}");
    assert!(joined.stdout.contains("with Alex"), "{}", joined.stdout);
    let phone = Device::new();
    let added = phone.run_with_stdin(&["join", "-"], Some(&alex.device_code()));
    assert_eq!(added.code, 0, "{added:?}");
    assert!(added.stdout.contains("with Sam"), "{}", added.stdout);
}

/// A partner handed Alex's device code by mistake (`duet2d-` and `duet2-` look alike)
/// who joins with their own name is refused before the code is used: joined, they would
/// be a device of Alex's, reading Alex's private reflections. Alex's own name joins.
#[test]
fn a_device_code_given_with_another_persons_name_is_refused_and_left_unused() {
    let relay = Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    alex.ok(&["reflect", "--private", "Private-canary-9e1d only for Alex"]);
    alex.ok(&["sync"]);
    let code = code_of(&alex, &["device", "add"]);
    let sam = Device::new();
    let refused = sam.run(&["join", &code, "--name", "Sam"]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.stderr.contains("device code of Alex's") && refused.stderr.contains("duet invite"),
        "{}",
        refused.stderr
    );
    assert!(!sam.db().exists(), "nothing set up");
    let phone = Device::new();
    phone.ok(&["join", &code, "--name", "alex"]);
    assert!(
        phone
            .ok(&["reflections", "--private"])
            .contains("Private-canary-9e1d")
    );
}

/// `device remove` takes a device out of the shared space, then out of the personal
/// one: stopped in between (killed, the laptop closed), the device stayed in the
/// personal space and read every private reflection written after. The next sync
/// finishes the removal and says so.
#[test]
fn a_removal_cut_short_between_the_two_spaces_is_finished_by_the_next_sync() {
    let relay = Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let phone = Device::new();
    phone.ok(&["join", &code_of(&alex, &["device", "add"])]);
    alex.ok(&["sync"]);
    let key = device_key(&phone);
    let phone_key: duet_core::identity::DeviceKey = hex::decode(&key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .expect("a device key");
    {
        // What the command had done when it stopped: the shared removal only.
        let mut dev = duet_core::device::Device::open(&alex.home).expect("open the home");
        let removed = dev
            .remove_device(duet_core::store::SpaceKind::Shared, &phone_key)
            .expect("the shared removal");
        assert!(removed);
    }
    let synced = alex.run(&["sync"]);
    assert_eq!(synced.code, 0, "{synced:?}");
    assert!(
        synced
            .stderr
            .contains(&format!("device {} was still in this space", &key[..12])),
        "{}",
        synced.stderr
    );
    alex.ok(&[
        "reflect",
        "--private",
        "Private-canary-3c1f after the removal",
    ]);
    alex.ok(&["sync"]);
    phone.run(&["sync"]);
    let seen = phone.json(&["export"]).to_string();
    assert!(!seen.contains("Private-canary-3c1f"), "{seen}");
}

#[test]
fn a_second_device_of_one_person_gets_the_private_space_and_the_partner_never_does() {
    let relay = Relay::start();
    let a1 = Device::new();
    let b = Device::new();
    let a2 = Device::new();
    a1.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    b.ok(&["join", &code_of(&a1, &["invite"]), "--name", "Sam"]);
    a1.ok(&["reflect", "--private", "Private-canary-41c7 only for Alex"]);
    a1.ok(&["goal", "add", "Weekly check-in", "--area", "communication"]);
    a1.ok(&["sync"]);

    let used = code_of(&a1, &["device", "add"]);
    a2.ok(&["join", &used]);
    // A code given to a device in the space already joins nothing, and says so (its
    // own new code, meant for the next device); the join just made, run again (as after
    // an interrupted one that had gone through), is done.
    let fresh = code_of(&a1, &["device", "add"]);
    let again = a1.run(&["join", &fresh]);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(
        again
            .stderr
            .contains("this device is in this shared space already"),
        "{}",
        again.stderr
    );
    let again = a2.run(&["join", &used]);
    assert!(again.ok().contains("Joined"), "{again:?}");
    let export = a2.json(&["export"]);
    assert_eq!(export["me"]["name"], "Alex", "the new device is Alex's");
    assert_eq!(
        export["me"]["person"],
        a1.json(&["export"])["me"]["person"],
        "same person"
    );
    assert!(
        export["personal"]
            .to_string()
            .contains("Private-canary-41c7"),
        "A2 sees A1's private reflections"
    );
    assert_eq!(export["shared"]["goals"][0]["title"], "Weekly check-in");

    // A2 writes privately too; A1 receives it, B never does.
    a2.ok(&[
        "reflect",
        "--private",
        "Private-canary-9d02 from the laptop",
    ]);
    a2.ok(&["sync"]);
    a1.ok(&["sync"]);
    b.ok(&["sync"]);
    assert!(
        a1.json(&["export"])["personal"]
            .to_string()
            .contains("Private-canary-9d02")
    );
    let b_export = b.json(&["export"]).to_string();
    assert!(!b_export.contains("Private-canary-41c7") && !b_export.contains("Private-canary-9d02"));
    assert!(!duet_tests::file_contains(&b.db(), "Private-canary"));

    let devices = a1.json(&["device", "list"]);
    let devices = devices.as_array().expect("devices");
    assert_eq!(devices.len(), 3, "{devices:?}");
    assert_eq!(devices.iter().filter(|d| d["name"] == "Alex").count(), 2);
    assert!(devices.iter().all(|d| d["joined_at"].is_string()));
}

#[test]
fn a_removed_device_can_no_longer_read_or_write_and_the_others_carry_on() {
    let relay = Relay::start();
    let a1 = Device::new();
    let b = Device::new();
    let a2 = Device::new();
    a1.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    b.ok(&["join", &code_of(&a1, &["invite"]), "--name", "Sam"]);
    a1.ok(&["goal", "add", "Weekly check-in", "--area", "communication"]);
    a1.ok(&["sync"]);
    b.ok(&["sync"]);
    a2.ok(&["join", &code_of(&a1, &["device", "add"])]);
    let a2_key = device_key(&a2);

    let out = a1.ok(&["device", "remove", &a2_key[..10]]);
    assert!(out.contains("Removed device"), "{out}");
    // Removed twice (another window, the partner's device did it first): said as gone.
    let again = a1.run(&["device", "remove", &a2_key[..10]]);
    assert!(
        again.stderr.contains("is no longer in your spaces"),
        "{}",
        again.stderr
    );
    // The removed device: it learns who removed it and what it made that never reached
    // the space, and syncs no more; in no space at all, each sync fails from then on
    // (a script that syncs on a schedule learns it, in text as in JSON).
    a2.ok(&["rate", "Weekly check-in", "1"]);
    a2.ok(&["reflect", "--private", "Written after the removal"]);
    let r = a2.run(&["sync"]);
    assert_eq!(r.code, 1, "{r:?}");
    // The private reflection never reaches Alex's other devices, and its list says so.
    let private = a2.run(&["reflections", "--private"]);
    assert!(
        private.stdout.contains("Written after the removal")
            && private
                .stderr
                .contains("1 private change made on this device never reached your personal space"),
        "{private:?}"
    );
    assert!(
        r.stderr.contains("removed from the shared space by Alex")
            && r.stderr
                .contains("1 change made on this device never reached the shared space"),
        "{}",
        r.stderr
    );
    // Its views still show that rating, from its whole document: the history marks it,
    // and every view of the shared space says it shows here only.
    let history = a2.ok(&["history"]);
    let rated = history
        .lines()
        .find(|l| l.contains("rated"))
        .expect("the rating in the history");
    assert!(
        rated.ends_with("(never sent: shown on this device only)"),
        "{history}"
    );
    assert!(
        !history
            .lines()
            .any(|l| l.contains("created") && l.contains("never sent"))
    );
    let rows = a2.ok(&["history", "--json"]);
    let marks: Vec<(String, bool)> = rows
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json line"))
        .map(|e| (e["kind"].to_string(), e["never_sent"] == true))
        .collect();
    assert!(
        marks.contains(&("\"rating_sealed\"".into(), true)),
        "{rows}"
    );
    assert!(
        marks.iter().filter(|(_, never)| *never).count() == 1,
        "{rows}"
    );
    // So does the export handed on (a therapist would read the rating as one the
    // partner had).
    let export = a2.json(&["export"]);
    let never = &export["shared"]["never_sent"];
    assert_eq!(never.as_array().map(Vec::len), Some(1), "{never}");
    assert_eq!(never[0]["kind"], "rating_sealed", "{never}");
    let text = a2.ok(&["export"]);
    assert!(
        text.contains("## Never sent") && text.contains("your partner never had these"),
        "{text}"
    );
    assert_eq!(
        b.json(&["export"])["shared"]["never_sent"],
        serde_json::json!([]),
        "the partner's export holds none"
    );
    for view in [&["goal", "list"][..], &["progress"], &["reflections"]] {
        let r = a2.run(view);
        assert!(
            r.code == 0
                && r.stderr
                    .contains("1 change made on this device never reached"),
            "{view:?}: {r:?}"
        );
    }
    // A write refused there says what is left to do: read, or start over.
    let write = a2.run(&["reflect", "After the removal"]);
    assert!(
        write.code != 0
            && write
                .stderr
                .contains("removed from the shared space by Alex")
            && write.stderr.contains("`duet start-over`"),
        "{write:?}"
    );
    let again = a2.run(&["sync"]);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(again.stdout.contains("shared: not synced"), "{again:?}");
    assert!(
        !again.stderr.contains("removed") && !again.stderr.contains("not verified"),
        "said once, and no nagging to verify a space it left: {again:?}"
    );
    let json = a2.run(&["sync", "--json"]);
    assert_eq!(json.code, 1, "{json:?}");
    assert!(
        json.stderr.contains("no longer a member of any space"),
        "{json:?}"
    );
    assert_eq!(a2.run(&["sync", "--quiet"]).stdout, "");
    // It has no one left to vouch for there: confirming the safety code is refused.
    let vouch = a2.run(&["verify", "--confirm"]);
    assert_ne!(vouch.code, 0, "{vouch:?}");
    assert!(vouch.stderr.contains("removed"), "{}", vouch.stderr);
    // Nor is it told to.
    let shown = a2.ok(&["verify"]);
    assert!(
        !shown.contains("--confirm") && shown.contains("nothing left to confirm"),
        "{shown}"
    );
    // The others carry on and converge. Both rate blind; the syncs carry the reveals:
    // Alex's device reveals on learning Sam rated, Sam's on learning Alex did.
    b.ok(&["rate", "Weekly check-in", "-1"]);
    let synced = b.ok(&["sync"]);
    assert!(
        synced.contains("shared: Alex added a device")
            && synced.contains("shared: Alex removed one of their devices"),
        "Sam's sync says what happened to Alex's devices: {synced}"
    );
    a1.ok(&["rate", "Weekly check-in", "0"]);
    a1.ok(&["sync"]);
    b.ok(&["sync"]);
    a1.ok(&["sync"]);
    assert_nothing_sealed(&a1);
    assert_nothing_sealed(&b);
    assert_eq!(
        a1.json(&["export"])["shared"],
        b.json(&["export"])["shared"]
    );
    assert_eq!(
        b.json(&["export"])["shared"]["ratings"]
            .as_array()
            .expect("ratings")
            .len(),
        2
    );
    let list = b.json(&["device", "list"]);
    let removed: Vec<_> = list
        .as_array()
        .expect("list")
        .iter()
        .filter(|d| d["removed"] == true)
        .collect();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["device"], a2_key.as_str());
    // The history shows who removed whom, and when.
    let history = b.history();
    let removal = history
        .iter()
        .find(|e| e["kind"] == "device_removed")
        .expect("the removal is in the history");
    assert_eq!(removal["author_name"], "Alex");
    assert_eq!(removal["item"], a2_key.as_str());
    assert!(removal["at"].as_i64().is_some());
    assert!(b.ok(&["history"]).contains("Alex removed device"));
    let r = a1.run(&["device", "remove", "ffffffffffff"]);
    // As for a goal no title matches: the command was well formed, nothing answers.
    assert_eq!(r.code, 1, "an unknown device is a failure: {r:?}");
    assert!(r.stderr.contains("`duet device list`"), "{}", r.stderr);
    // The removed device starts over without being held for what it can never send.
    let out = a2.ok(&["start-over", "--yes"]);
    assert!(out.contains("set aside in"), "{out}");
}

#[test]
fn partners_see_the_same_safety_code_and_the_unverified_note_clears_after_confirming() {
    let relay = Relay::start();
    let a1 = Device::new();
    let b = Device::new();
    a1.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    b.ok(&["join", &code_of(&a1, &["invite"]), "--name", "Sam"]);
    a1.ok(&["sync"]);
    let code = verify_code(&a1);
    // 30 digits in six groups of five (about 99 bits).
    assert_eq!(code.len(), 35, "{code}");
    assert!(
        code.split(' ')
            .all(|g| g.len() == 5 && g.bytes().all(|b| b.is_ascii_digit())),
        "{code}"
    );
    assert_eq!(code, verify_code(&b), "same code on both partners' devices");

    let r = a1.run(&["sync"]);
    assert!(
        r.stderr.contains("not verified"),
        "the partner's new device is flagged: {}",
        r.stderr
    );
    assert!(a1.ok(&["status"]).contains("not verified"));
    a1.ok(&["verify", "--confirm"]);
    assert!(
        a1.ok(&["verify"]).contains("Verified already"),
        "said once confirmed"
    );
    let r = a1.run(&["sync"]);
    assert!(!r.stderr.contains("not verified"), "{}", r.stderr);
    assert!(!a1.ok(&["status"]).contains("not verified"));

    // Another device joins: the code changes everywhere, and the note comes back.
    let a2 = Device::new();
    a2.ok(&["join", &code_of(&a1, &["device", "add"])]);
    b.ok(&["sync"]);
    let new_code = verify_code(&a1);
    assert_ne!(new_code, code, "a new device changes the code");
    assert_eq!(
        a1.json(&["verify"])["verified"],
        false,
        "a new device is not verified"
    );
    assert_eq!(new_code, verify_code(&b));
    assert_eq!(new_code, verify_code(&a2));
    let r = a1.run(&["sync"]);
    assert!(r.stderr.contains("not verified"), "{}", r.stderr);
    // Confirming the code compared before the device joined confirms nothing.
    let stale = b.run(&["verify", "--confirm", &code]);
    assert_ne!(stale.code, 0, "{stale:?}");
    assert!(
        stale.stderr.contains("safety code changed"),
        "{}",
        stale.stderr
    );
    assert!(b.ok(&["status"]).contains("not verified"));
    // A code one digit short, or with letters, is a typo: exit 2, said as such, and
    // the code to compare is not handed back to paste.
    for typo in [&new_code[..new_code.len() - 1], "abc"] {
        let typed = b.run(&["verify", "--confirm", typo]);
        assert_eq!(typed.code, 2, "{typed:?}");
        assert!(
            typed.stderr.contains("that is not a safety code")
                && !typed.stderr.contains("changed")
                && !typed.stderr.contains(&new_code),
            "{typed:?}"
        );
    }
    // The code pasted as `duet verify` shows it, its groups apart.
    let mut pasted = vec!["verify", "--confirm"];
    pasted.extend(new_code.split(' '));
    assert!(pasted.len() > 3, "{new_code}");
    b.ok(&pasted);
    assert!(!b.ok(&["status"]).contains("not verified"));
}

/// The newest `changes` event in the relay's database.
fn newest_changes_event(relay: &Relay) -> duet_core::event::Event {
    let conn = rusqlite::Connection::open(&relay.db).expect("relay db");
    let bytes: Vec<u8> = conn
        .query_row(
            "SELECT bytes FROM events WHERE kind = 'changes' ORDER BY cursor DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("an event");
    duet_core::event::Event::decode(bytes).expect("decodes")
}

fn three_devices(relay: &Relay) -> (Device, Device, Device) {
    let a1 = Device::new();
    let b = Device::new();
    let a2 = Device::new();
    a1.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    b.ok(&["join", &code_of(&a1, &["invite"]), "--name", "Sam"]);
    a1.ok(&["goal", "add", "Weekly check-in", "--area", "communication"]);
    a1.ok(&["sync"]);
    b.ok(&["sync"]);
    a2.ok(&["join", &code_of(&a1, &["device", "add"])]);
    b.ok(&["sync"]);
    (a1, b, a2)
}

#[test]
fn after_a_removal_new_events_cannot_be_decrypted_with_anything_the_removed_device_holds() {
    let relay = Relay::start();
    let (a1, b, a2) = three_devices(&relay);
    let a2_key = device_key(&a2);
    a1.ok(&["device", "remove", &a2_key[..10]]);
    a1.ok(&[
        "rate",
        "Weekly check-in",
        "2",
        "--note",
        "after the removal",
    ]);
    // Alex shares openly: closing the round reveals the blind rating at once.
    a1.ok(&["checkin", "--close"]);
    a1.ok(&["sync"]);
    let ev = newest_changes_event(&relay);
    assert_eq!(ev.epoch(), Some(1), "written under the new epoch");
    // Every key the removed device holds fails.
    let store = duet_core::store::Store::open(&a2.home, false).expect("A2 store");
    let space = store
        .space(duet_core::store::SpaceKind::Shared)
        .expect("space")
        .id;
    let keys = store.epoch_keys(&space).expect("keys");
    assert!(!keys.is_empty());
    for (epoch, key) in &keys {
        assert!(
            ev.open(key).is_err(),
            "A2's key of epoch {epoch} opened a post-removal event"
        );
    }
    // The remaining devices read it and converge.
    b.ok(&["sync"]);
    assert_nothing_sealed(&a1);
    assert_nothing_sealed(&b);
    assert_eq!(
        a1.json(&["export"])["shared"],
        b.json(&["export"])["shared"]
    );
    assert!(
        b.json(&["export"])
            .to_string()
            .contains("after the removal")
    );
}

#[test]
fn a_partner_offline_during_the_removal_converges_and_then_writes_under_the_new_epoch() {
    let relay = Relay::start();
    let (a1, b, a2) = three_devices(&relay);
    // Sam is offline: edits locally while Alex removes the laptop.
    b.ok(&["rate", "Weekly check-in", "-1", "--note", "offline edit"]);
    let a2_key = device_key(&a2);
    a1.ok(&["device", "remove", &a2_key[..10]]);
    a1.ok(&["rate", "Weekly check-in", "1"]);
    a1.ok(&["sync"]);
    // Sam comes back (and, as Alex rated too, reveals his blind rating).
    b.ok(&["sync"]);
    assert_eq!(
        newest_changes_event(&relay).epoch(),
        Some(1),
        "Sam's offline edits go out under the new key"
    );
    // Alex's device reveals Alex's rating; Sam's gets it.
    a1.ok(&["sync"]);
    b.ok(&["sync"]);
    assert_nothing_sealed(&a1);
    assert_nothing_sealed(&b);
    assert_eq!(
        a1.json(&["export"])["shared"],
        b.json(&["export"])["shared"]
    );
    assert_eq!(
        b.json(&["export"])["shared"]["ratings"]
            .as_array()
            .expect("ratings")
            .len(),
        2
    );
    assert!(
        !a2.json(&["export"]).to_string().contains("offline edit"),
        "the removed device never gets it"
    );
}

#[test]
fn a_rotation_withheld_by_the_relay_is_reported_and_recovered() {
    let relay = Relay::start();
    let (a1, b, a2) = three_devices(&relay);
    // Sam's second device, which will learn of the rotation.
    let b2 = Device::new();
    b2.ok(&["join", &code_of(&b, &["device", "add"])]);
    a1.ok(&["sync"]);
    let a2_key = device_key(&a2);
    a1.ok(&["device", "remove", &a2_key[..10]]);
    b2.ok(&["sync"]);
    b2.ok(&["rate", "Weekly check-in", "2", "--note", "from the desktop"]);
    b2.ok(&["sync"]);
    // The relay hides the removal (and its new key) from Sam's phone.
    let conn = rusqlite::Connection::open(&relay.db).expect("relay db");
    let (cursor, row): (i64, Vec<u8>) = conn
        .query_row(
            "SELECT cursor, bytes FROM events WHERE kind = 'remove' LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the removal");
    let (space, hash, author, seq, received): (String, Vec<u8>, Vec<u8>, i64, i64) = conn
        .query_row(
            "SELECT space, hash, author, seq, received_at FROM events WHERE cursor = ?1",
            [cursor],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .expect("row");
    conn.execute("DELETE FROM events WHERE cursor = ?1", [cursor])
        .expect("hide");
    let r = b.run(&["sync"]);
    assert_eq!(r.code, 3, "not up to date while the event waits: {r:?}");
    assert!(
        r.stderr.contains("no key for"),
        "the missing epoch is reported: {}",
        r.stderr
    );
    assert!(!b.json(&["export"]).to_string().contains("from the desktop"));
    assert!(
        b.json(&["status"])["spaces"][0]["waiting_events"]
            .as_u64()
            .expect("n")
            > 0
    );
    // Served later, everything applies.
    conn.execute(
        "INSERT INTO events (space, hash, author, seq, kind, bytes, received_at) VALUES (?1, ?2, ?3, ?4, 'remove', ?5, ?6)",
        rusqlite::params![space, hash, author, seq, row, received],
    )
    .expect("unhide");
    b.ok(&["sync"]);
    assert!(b.json(&["export"]).to_string().contains("from the desktop"));
    assert_eq!(b.json(&["status"])["spaces"][0]["waiting_events"], 0);
}

fn removed_set(d: &Device) -> Vec<String> {
    let mut v: Vec<String> = d
        .json(&["device", "list"])
        .as_array()
        .expect("list")
        .iter()
        .filter(|x| x["removed"] == true)
        .map(|x| x["device"].as_str().expect("key").to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn concurrent_membership_changes_while_apart_reach_the_same_membership_everywhere() {
    let mut relay = Relay::start();
    let (a1, b, a2) = three_devices(&relay);
    let b2 = Device::new();
    b2.ok(&["join", &code_of(&b, &["device", "add"])]);
    a1.ok(&["sync"]);
    b.ok(&["sync"]);
    let a2_key = device_key(&a2);
    let b2_key = device_key(&b2);

    // Apart (the relay is unreachable): both remove the laptop (Sam confirms removing
    // Alex's device with --yes), and Sam also removes his own second device.
    relay.kill();
    // 3: the relay is out of reach, and the removal waits on the device for a sync.
    assert_eq!(a1.run(&["device", "remove", &a2_key[..10]]).code, 3);
    assert_eq!(b.run(&["device", "remove", &a2_key[..10], "--yes"]).code, 3);
    assert_eq!(b.run(&["device", "remove", &b2_key[..10]]).code, 3);
    a1.ok(&["rate", "Weekly check-in", "1"]);
    b.ok(&["rate", "Weekly check-in", "-1"]);
    relay.restart();

    a1.ok(&["sync"]);
    let r = b.run(&["sync"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("crossed one made at the same time on another device")
            && !r.stderr.contains("epoch"),
        "the lost race is explained: {}",
        r.stderr
    );
    a1.ok(&["sync"]);
    b.ok(&["sync"]);

    let expected = {
        let mut v = vec![a2_key.clone(), b2_key.clone()];
        v.sort();
        v
    };
    assert_eq!(removed_set(&a1), expected);
    assert_eq!(removed_set(&b), expected);
    assert_eq!(
        verify_code(&a1),
        verify_code(&b),
        "same membership, same safety code"
    );
    assert_nothing_sealed(&a1);
    assert_nothing_sealed(&b);
    assert_eq!(
        a1.json(&["export"])["shared"],
        b.json(&["export"])["shared"]
    );
    assert_eq!(
        b.json(&["export"])["shared"]["ratings"]
            .as_array()
            .expect("ratings")
            .len(),
        2
    );
    // Both removed devices are locked out: each learns it, and writes nothing shared.
    for d in [&a2, &b2] {
        let r = d.run(&["sync"]);
        assert!(r.stderr.contains("removed from the shared space"), "{r:?}");
        assert_ne!(d.run(&["reflect", "Still here?"]).code, 0);
    }
}

#[test]
fn one_partner_adding_a_device_while_the_other_removes_one_converges() {
    let mut relay = Relay::start();
    let (a1, b, a2) = three_devices(&relay);
    a1.ok(&["sync"]);
    let a2_key = device_key(&a2);
    // Sam removes the laptop while offline (it is Alex's: a script confirms with --yes)...
    relay.kill();
    assert_eq!(b.run(&["device", "remove", &a2_key[..10], "--yes"]).code, 3);
    relay.restart();
    // ...while Alex adds a third device of his own.
    let a3 = Device::new();
    a3.ok(&["join", &code_of(&a1, &["device", "add"])]);
    let r = b.run(&["sync"]);
    assert_eq!(r.code, 0, "{r:?}");
    a1.ok(&["sync"]);
    a3.ok(&["sync"]);
    b.ok(&["sync"]);
    assert_eq!(removed_set(&a1), vec![a2_key.clone()]);
    assert_eq!(removed_set(&b), vec![a2_key.clone()]);
    assert_eq!(removed_set(&a3), vec![a2_key]);
    let code = verify_code(&a1);
    assert_eq!(code, verify_code(&b));
    assert_eq!(code, verify_code(&a3));
    // The new device got the new key and can write and be read.
    a3.ok(&[
        "rate",
        "Weekly check-in",
        "2",
        "--note",
        "from the new device",
    ]);
    // Alex shares openly: closing the round reveals the blind rating at once.
    a3.ok(&["checkin", "--close"]);
    a3.ok(&["sync"]);
    b.ok(&["sync"]);
    assert!(
        b.json(&["export"])
            .to_string()
            .contains("from the new device")
    );
}

#[test]
fn two_devices_of_one_person_removing_each_other_while_apart_end_with_the_first_to_sync() {
    let mut relay = Relay::start();
    let (a1, b, a2) = three_devices(&relay);
    a1.ok(&["sync"]); // the phone knows the laptop
    let (a1_key, a2_key) = (device_key(&a1), device_key(&a2));

    // Apart, each of Alex's devices removes the other (a lost phone found again).
    relay.kill();
    assert_eq!(a1.run(&["device", "remove", &a2_key[..10]]).code, 3);
    assert_eq!(a2.run(&["device", "remove", &a1_key[..10]]).code, 3);
    relay.restart();

    // The phone syncs first: its removal stands, and the laptop learns it was removed
    // rather than refusing the removal as one signed by a device it had removed.
    a1.ok(&["sync"]);
    let r = a2.run(&["sync"]);
    assert!(r.stderr.contains("removed from the shared space"), "{r:?}");
    assert!(!r.stderr.contains("refused"), "{r:?}");
    // Removed from both spaces, nothing syncs here any more: a script syncing on a
    // schedule is told so by the exit code, each time, with what to do.
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("no longer a member of any space"),
        "{r:?}"
    );
    let again = a2.run(&["sync"]);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(again.stdout.contains("membership ended"), "{again:?}");
    assert!(again.stderr.contains("`duet start-over`"), "{again:?}");
    assert_eq!(removed_set(&a2), vec![a2_key.clone()], "the laptop agrees");
    b.ok(&["sync"]);
    assert_eq!(removed_set(&b), vec![a2_key.clone()]);
    assert_eq!(removed_set(&a1), vec![a2_key]);
    a1.ok(&["rate", "Weekly check-in", "1"]);
    a1.ok(&["sync"]);
    b.ok(&["sync"]);
    assert_eq!(verify_code(&a1), verify_code(&b));
}

/// What a relay that lies about removals answers: every push holding a `remove` event
/// gets 403 `not_a_member` ("the author was removed") and nothing is stored.
fn removals_not_a_member(events: &[duet_core::event::Event]) -> Option<(u16, String)> {
    events
        .iter()
        .any(|ev| ev.kind() == duet_core::event::Kind::Remove)
        .then(|| {
            let answer = serde_json::json!({
                "error": "not_a_member",
                "message": "the author was removed from this space",
            });
            (403, answer.to_string())
        })
}

#[test]
fn a_relay_that_falsely_says_the_remover_was_removed_cannot_undo_the_removal() {
    let relay = Relay::start();
    let (a1, b, a2) = three_devices(&relay);
    a1.ok(&["sync"]);
    let a2_key = device_key(&a2);
    // Through the liar, Alex's device withdraws its removal (as if removed itself), then
    // finds it is still a member: the removal is signed again and stays on the device.
    let liar = duet_tests::proxy::RelayProxy::start(&relay.url, removals_not_a_member);
    a1.ok(&["relay", "set", &liar.url]);
    let r = a1.run(&["device", "remove", &a2_key[..10]]);
    assert_ne!(r.code, 0, "{r:?}");
    a1.ok(&["rate", "Weekly check-in", "2"]);
    let r = a1.run(&["sync"]);
    assert_ne!(r.code, 0, "the refusal is said: {r:?}");
    assert!(r.stderr.contains("keeps refusing"), "{r:?}");
    assert!(liar.answered() >= 2, "the removal went through the liar");
    assert_eq!(removed_set(&a1), vec![a2_key.clone()]);
    // At an honest relay, the removal and the rating made after it arrive.
    a1.ok(&["relay", "set", &relay.url]);
    a1.ok(&["sync"]);
    let arrived = b.ok(&["sync"]);
    assert_eq!(removed_set(&b), vec![a2_key]);
    assert!(arrived.contains("1 sealed rating from Alex"), "{arrived}");
    assert!(
        a2.run(&["sync"])
            .stderr
            .contains("removed from the shared space")
    );
}

#[test]
fn what_a_device_wrote_before_its_removal_reached_the_relay_stays_on_every_device() {
    let mut relay = Relay::start();
    let (a1, b, a2) = three_devices(&relay);
    a1.ok(&["sync"]);
    let a2_key = device_key(&a2);
    // The phone removes the laptop while the relay cannot be reached (a train, a push
    // cut off): the removal waits on the phone.
    relay.kill();
    assert_eq!(a1.run(&["device", "remove", &a2_key[..10]]).code, 3);
    relay.restart();
    // Meanwhile the laptop, still a member on the relay, writes; Sam reads it and
    // writes on, after it.
    let laptop = "written on the laptop before the removal reached the relay";
    a2.ok(&["reflect", laptop]);
    a2.ok(&["sync"]);
    b.ok(&["sync"]);
    b.ok(&["reflect", "Sam, later"]);
    b.ok(&["sync"]);
    // The phone's sync places its removal after both in the relay's order, and takes
    // them as Sam's device did: nothing refused, nothing waiting.
    let r = a1.run(&["sync"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("refused"), "{r:?}");
    a1.ok(&["sync"]);
    b.ok(&["sync"]);
    for d in [&a1, &b] {
        let listed = d.ok(&["reflections"]);
        assert!(
            listed.contains(laptop) && listed.contains("Sam, later"),
            "{listed}"
        );
        let status = d.json(&["status"]);
        let shared = &status["spaces"][0];
        assert_eq!(shared["kind"], "shared", "{status}");
        assert_eq!(shared["refused_events"], 0, "{status}");
        assert_eq!(shared["waiting_events"], 0, "{status}");
    }
    assert_eq!(removed_set(&a1), vec![a2_key.clone()]);
    assert_eq!(removed_set(&b), vec![a2_key]);
    assert_eq!(verify_code(&a1), verify_code(&b));
}

#[test]
fn what_the_remover_wrote_after_a_removal_that_lost_a_race_stays_unreadable_to_the_removed_device()
{
    let mut relay = Relay::start();
    let (a1, b, a2) = three_devices(&relay);
    a1.ok(&["sync"]);
    let a2_key = device_key(&a2);
    // The phone removes the lost laptop while the relay cannot be reached, and writes.
    relay.kill();
    assert_eq!(a1.run(&["device", "remove", &a2_key[..10]]).code, 3);
    let secret = "written after removing the lost laptop";
    a1.ok(&["reflect", secret]);
    relay.restart();
    // Meanwhile Sam adds a device: the phone's removal loses the race, is withdrawn
    // and redone.
    let b2 = Device::new();
    b2.ok(&["join", &code_of(&b, &["device", "add"])]);
    b.ok(&["sync"]);
    a1.ok(&["sync"]);
    assert_eq!(removed_set(&a1), vec![a2_key.clone()]);
    // The laptop reads up to its removal, and nothing the phone wrote after it.
    a2.run(&["sync"]);
    let export = a2.json(&["export"]).to_string();
    assert!(
        !export.contains(secret),
        "the removed laptop reads: {export}"
    );
    // Sam's devices read it.
    b.ok(&["sync"]);
    assert!(b.ok(&["reflections"]).contains(secret));
}

#[test]
fn a_device_the_partner_removed_is_named_to_its_person_as_still_reading_their_private_space() {
    let relay = Relay::start();
    let a1 = Device::new();
    let b = Device::new();
    let a2 = Device::new();
    a1.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    b.ok(&["join", &code_of(&a1, &["invite"]), "--name", "Sam"]);
    a2.ok(&["join", &code_of(&a1, &["device", "add"])]);
    a1.ok(&["sync"]);
    b.ok(&["sync"]);
    let a2_key = device_key(&a2);

    // Sam removes Alex's phone (lost, or distrusted): only from the shared space,
    // which is all Sam can change, and Sam is told so.
    let out = b.ok(&["device", "remove", &a2_key[..12], "--yes"]);
    assert!(
        out.contains("from the shared space") && out.contains("only they can remove it there"),
        "{out}"
    );
    // Alex's next sync says the phone still reads Alex's private reflections, and how to
    // take it out; once Alex does, it no longer gets them.
    let r = a1.run(&["sync"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("still reads your personal space")
            && r.stderr
                .contains(&format!("duet device remove {}", &a2_key[..12])),
        "{}",
        r.stderr
    );
    assert!(
        !a1.run(&["sync"]).stderr.contains("still reads"),
        "said as the removal arrives, not at every sync"
    );
    a1.ok(&["device", "remove", &a2_key[..12], "--yes"]);
    a1.ok(&["reflect", "--private", "Canary-after-removal-77"]);
    a1.ok(&["sync"]);
    a2.run(&["sync"]);
    let private = a2.ok(&["reflections", "--private"]);
    assert!(!private.contains("Canary-after-removal-77"), "{private}");
}

/// Sol and Tam, and Sol's phone, lost: Sol removes it from a laptop that is offline (its
/// relay unreachable), so the removal waits there while the phone is still online.
/// Returns Sol (offline), Tam, the phone and its key.
fn phone_removed_offline(relay: &Relay) -> (Device, Device, Device, String) {
    let (sol, tam) = duet_tests::pair(relay);
    let phone = Device::new();
    phone.ok(&["join", &code_of(&sol, &["device", "add"])]);
    let phone_key = device_key(&phone);
    sol.ok(&["sync"]);
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    sol.ok(&["relay", "set", &format!("http://{dead}")]);
    let removed = sol.run(&["device", "remove", &phone_key[..12], "--yes"]);
    assert!(
        removed.stderr.contains("the removal is recorded"),
        "{removed:?}"
    );
    (sol, tam, phone, phone_key)
}

/// The keys of the devices `d` lists as current (not removed).
fn current_devices(d: &Device) -> Vec<String> {
    d.json(&["device", "list"])
        .as_array()
        .expect("devices")
        .iter()
        .filter(|r| r["removed"] == false)
        .filter_map(|r| r["device"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn a_code_made_on_a_lost_phone_while_its_removal_waited_offline_admits_no_one() {
    let relay = Relay::start();
    let (sol, tam, phone, phone_key) = phone_removed_offline(&relay);
    // The phone, still online, makes a device code.
    let stolen = code_of(&phone, &["device", "add"]);
    sol.ok(&["relay", "set", &relay.url]);
    sol.ok(&["sync"]);
    // Sol's list shows the phone's code as one the relay would refuse, not open.
    let invites = sol.json(&["invite", "list"]);
    let states: Vec<&str> = invites
        .as_array()
        .expect("invites")
        .iter()
        .filter_map(|i| i["state"].as_str())
        .collect();
    assert!(
        states.contains(&"closed") && !states.contains(&"open"),
        "{invites}"
    );
    // Whoever holds the phone joins with that code after the removal reached the relay:
    // refused, so no later key change can hand them the couple's keys.
    let thief = Device::new();
    let joined = thief.run(&["join", &stolen]);
    assert_ne!(joined.code, 0, "{joined:?}");
    assert!(joined.stderr.contains("withdrawn"), "{}", joined.stderr);
    // Nobody new is a member, on either partner's devices.
    for d in [&sol, &tam] {
        d.ok(&["sync"]);
        let keys = current_devices(d);
        assert_eq!(
            keys.len(),
            2,
            "Sol's laptop and Tam's device only: {keys:?}"
        );
        assert!(!keys.contains(&phone_key), "{keys:?}");
    }
}

#[test]
fn a_device_a_lost_phone_admitted_while_its_removal_waited_is_removed_with_it() {
    let relay = Relay::start();
    let (sol, tam, phone, phone_key) = phone_removed_offline(&relay);
    // Whoever holds the phone adds a device of their own before the removal is sent.
    let thief = Device::new();
    thief.ok(&["join", &code_of(&phone, &["device", "add"])]);
    let thief_key = device_key(&thief);
    sol.ok(&["relay", "set", &relay.url]);
    let synced = sol.run(&["sync"]);
    assert!(
        synced
            .stderr
            .contains("joined the shared space with a code made on the device you removed"),
        "{synced:?}"
    );
    // What Sol writes from now on, shared or private, never reaches it.
    sol.ok(&["reflect", "Shared after the removal"]);
    sol.ok(&["reflect", "--private", "Private after the removal"]);
    sol.ok(&["sync"]);
    tam.ok(&["sync"]);
    thief.run(&["sync"]);
    let seen = thief.json(&["export"]).to_string();
    assert!(!seen.contains("after the removal"), "{seen}");
    for d in [&sol, &tam] {
        let current = current_devices(d);
        assert!(
            !current.contains(&thief_key) && !current.contains(&phone_key),
            "{current:?}"
        );
    }
}

/// Whether the proxy below refuses a join pushed to a personal space.
static HOLD_PERSONAL_JOINS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(true);
/// The shared space's id, whose joins the proxy lets through.
static SHARED_SPACE: std::sync::OnceLock<duet_core::ids::SpaceId> = std::sync::OnceLock::new();

fn personal_joins_unreachable(events: &[duet_core::event::Event]) -> Option<(u16, String)> {
    let held = HOLD_PERSONAL_JOINS.load(std::sync::atomic::Ordering::SeqCst)
        && events.iter().any(|e| {
            e.kind() == duet_core::event::Kind::Join
                && Some(&e.header().space) != SHARED_SPACE.get()
        });
    held.then(|| (502, r#"{"error":"bad_gateway"}"#.to_string()))
}

#[test]
fn a_device_whose_code_died_between_its_two_joins_is_told_to_start_again_in_a_new_home() {
    let relay = Relay::start();
    let (sol, _tam) = duet_tests::pair(&relay);
    let phone = Device::new();
    phone.ok(&["join", &code_of(&sol, &["device", "add"])]);
    let shared = sol.json(&["status"])["spaces"][0]["space"]
        .as_str()
        .and_then(duet_core::ids::SpaceId::parse)
        .expect("the shared space's id");
    SHARED_SPACE.set(shared).expect("set once");
    // The phone's code reaches the relay through a proxy that fails personal joins: the
    // tablet's shared half lands, its personal half does not.
    let proxy = duet_tests::proxy::RelayProxy::start(&relay.url, personal_joins_unreachable);
    phone.ok(&["relay", "set", &proxy.url]);
    let tablet = Device::new();
    let joined = tablet.run(&["join", &code_of(&phone, &["device", "add"])]);
    assert_eq!(joined.code, 0, "the shared half landed: {joined:?}");
    assert!(
        joined.stderr.contains("the first sync did not finish"),
        "the personal half did not land: {joined:?}"
    );
    // Sol removes the phone from the laptop before the tablet tries again: the code dies
    // with it, and the relay refuses the personal half for good.
    sol.ok(&["sync"]);
    sol.ok(&["device", "remove", &device_key(&phone)[..12], "--yes"]);
    sol.ok(&["sync"]);
    HOLD_PERSONAL_JOINS.store(false, std::sync::atomic::Ordering::SeqCst);
    let synced = tablet.run(&["sync"]);
    assert_eq!(synced.code, 0, "the shared space syncs on: {synced:?}");
    let tablet_key = device_key(&tablet);
    for told in [
        "can never read your private reflections",
        "--home NEWDIR",
        &format!("duet device remove {}", &tablet_key[..12]),
    ] {
        assert!(synced.stderr.contains(told), "{told}: {synced:?}");
    }
    // A private reflection is refused with the same words, not "joining is not finished".
    let private = tablet.run(&["reflect", "--private", "Only for me"]);
    assert_ne!(private.code, 0);
    assert!(
        private
            .stderr
            .contains("refused this device's join for good")
            && !private.stderr.contains("joining is not finished"),
        "{}",
        private.stderr
    );
    // Later syncs no longer ask the relay; the status says it instead of "finish joining".
    assert_eq!(tablet.run(&["sync"]).code, 0);
    let status = tablet.ok(&["status"]);
    assert!(
        status.contains("refused this device's join for good")
            && !status.contains("joining is not finished"),
        "{status}"
    );
}

#[test]
fn a_join_whose_code_died_before_its_first_sync_says_so_and_a_new_code_joins_in_the_same_home() {
    let relay = Relay::start();
    let (sol, _tam) = duet_tests::pair(&relay);
    let phone = Device::new();
    phone.ok(&["join", &code_of(&sol, &["device", "add"])]);
    // A code that names a relay address where nothing answers (the tablet's first sync
    // fails there); the phone announces it to the real relay.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    phone.ok(&["relay", "set", &format!("http://{dead}")]);
    let made = phone.run(&["device", "add"]);
    let code = made
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with("duet2"))
        .unwrap_or_else(|| panic!("a code made offline: {made:?}"))
        .to_string();
    phone.ok(&["relay", "set", &relay.url]);
    phone.ok(&["sync"]);
    let tablet = Device::new();
    let joined = tablet.run(&["join", &code]);
    assert_eq!(
        joined.code, 3,
        "joined here, the first sync to come: {joined:?}"
    );
    // The phone is removed before the tablet's first sync gets through.
    sol.ok(&["sync"]);
    sol.ok(&["device", "remove", &device_key(&phone)[..12], "--yes"]);
    tablet.ok(&["relay", "set", &relay.url]);
    let synced = tablet.run(&["sync"]);
    assert_eq!(synced.code, 1, "{synced:?}");
    for told in ["joined nothing", "join with it again here"] {
        assert!(synced.stderr.contains(told), "{told}: {synced:?}");
    }
    assert!(!synced.stderr.contains("ask for a new one"), "{synced:?}");
    let status = tablet.ok(&["status"]);
    assert!(
        status.contains("refused this device's join for good")
            && !status.contains("joining is not finished"),
        "{status}"
    );
    // Not while another process has the store open (a watcher would remove the new
    // store's log when it closes).
    let new_code = code_of(&sol, &["device", "add"]);
    let watcher = rusqlite::Connection::open(tablet.db()).expect("the store");
    let _: i64 = watcher
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .expect("a read");
    let busy = tablet.run(&["join", &new_code]);
    assert_ne!(busy.code, 0, "{busy:?}");
    assert!(busy.stderr.contains("another duet command"), "{busy:?}");
    drop(watcher);
    // A new code joins in the same home at the first try: the device that joined
    // nothing is given up for the new one.
    let rejoined = tablet.run(&["join", &new_code]);
    assert_eq!(rejoined.code, 0, "{rejoined:?}");
    let status = tablet.ok(&["status"]);
    assert!(!status.contains("refused this device"), "{status}");
    sol.ok(&["goal", "add", "Walk after dinner", "--area", "quality-time"]);
    sol.ok(&["sync"]);
    tablet.ok(&["sync"]);
    assert!(tablet.ok(&["goal", "list"]).contains("Walk after dinner"));
}

/// The shared space whose removals the proxy below lets through.
static REMOVALS_SHARED: std::sync::OnceLock<duet_core::ids::SpaceId> = std::sync::OnceLock::new();

fn personal_removals_unreachable(events: &[duet_core::event::Event]) -> Option<(u16, String)> {
    let held = events.iter().any(|e| {
        e.kind() == duet_core::event::Kind::Remove
            && Some(&e.header().space) != REMOVALS_SHARED.get()
    });
    held.then(|| (502, r#"{"error":"bad_gateway"}"#.to_string()))
}

#[test]
fn a_device_its_own_person_removed_is_not_said_to_still_read_the_personal_space() {
    let relay = Relay::start();
    let laptop = Device::new();
    laptop.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let (phone, tablet) = (Device::new(), Device::new());
    phone.ok(&["join", &laptop.device_code()]);
    tablet.ok(&["join", &laptop.device_code()]);
    laptop.ok(&["sync"]);
    let shared = laptop.json(&["status"])["spaces"][0]["space"]
        .as_str()
        .and_then(duet_core::ids::SpaceId::parse)
        .expect("the shared space's id");
    REMOVALS_SHARED.set(shared).expect("set once");
    // The laptop removes the phone; its removal from the personal space is held up.
    let proxy = duet_tests::proxy::RelayProxy::start(&relay.url, personal_removals_unreachable);
    laptop.ok(&["relay", "set", &proxy.url]);
    let _ = laptop.run(&["device", "remove", &device_key(&phone)[..12], "--yes"]);
    // The tablet hears of the shared removal first: no advice to remove it again.
    let synced = tablet.run(&["sync"]);
    assert_eq!(synced.code, 0, "{synced:?}");
    assert!(
        !synced.stderr.contains("still reads your personal space"),
        "{}",
        synced.stderr
    );
}

/// The shared space whose joins the lying proxy below lets through.
static LIED_SHARED: std::sync::OnceLock<duet_core::ids::SpaceId> = std::sync::OnceLock::new();

fn personal_joins_said_revoked(events: &[duet_core::event::Event]) -> Option<(u16, String)> {
    let lied = events.iter().any(|e| {
        e.kind() == duet_core::event::Kind::Join && Some(&e.header().space) != LIED_SHARED.get()
    });
    lied.then(|| {
        (
            403,
            r#"{"error":"invite_revoked","message":"this invite was revoked by a member of the space: ask for a new one"}"#
                .to_string(),
        )
    })
}

#[test]
fn a_personal_half_a_lying_relay_called_revoked_is_asked_again_at_another_relay() {
    let relay = Relay::start();
    let (sol, _tam) = duet_tests::pair(&relay);
    let shared = sol.json(&["status"])["spaces"][0]["space"]
        .as_str()
        .and_then(duet_core::ids::SpaceId::parse)
        .expect("the shared space's id");
    LIED_SHARED.set(shared).expect("set once");
    // The code names a relay that says every personal join's code was withdrawn.
    let liar = duet_tests::proxy::RelayProxy::start(&relay.url, personal_joins_said_revoked);
    sol.ok(&["relay", "set", &liar.url]);
    let phone = Device::new();
    let _ = phone.run(&["join", &code_of(&sol, &["device", "add"])]);
    assert!(liar.answered() > 0, "the proxy lied");
    let status = phone.ok(&["status"]);
    assert!(
        status.contains("refused this device's join for good"),
        "{status}"
    );
    // At the real relay the code is alive: the personal space is joined after all.
    sol.ok(&["relay", "set", &relay.url]);
    phone.ok(&["relay", "set", &relay.url]);
    let synced = phone.run(&["sync"]);
    assert_eq!(synced.code, 0, "{synced:?}");
    let status = phone.ok(&["status"]);
    assert!(!status.contains("refused this device"), "{status}");
    phone.ok(&["reflect", "--private", "Only for me"]);
    phone.ok(&["sync"]);
    sol.ok(&["sync"]);
    assert!(
        sol.ok(&["reflections", "--private"])
            .contains("Only for me")
    );
}

/// The partner invite used on one's own second device, with one's own name: it joins as
/// a second person, and says so with the way to join as a device of the same person.
#[test]
fn a_partner_invite_used_with_the_inviters_name_says_it_joined_as_a_second_person() {
    let relay = Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let laptop = Device::new();
    let joined = laptop.run(&["join", &alex.invite_code(), "--name", "alex"]);
    assert_eq!(joined.code, 0, "{joined:?}");
    assert!(
        joined.stderr.contains("joined as a second person")
            && joined.stderr.contains("`duet device add`"),
        "{joined:?}"
    );
    // A partner of another name is told nothing of the kind.
    let sam_relay = Relay::start();
    let blake = Device::new();
    blake.ok(&["init", "--name", "Blake", "--relay", &sam_relay.url]);
    let sam = Device::new();
    let other = sam.run(&["join", &blake.invite_code(), "--name", "Sam"]);
    assert!(!other.stderr.contains("second person"), "{other:?}");
}

/// Alex's laptop, on but not synced since Sam removed his phone (a key rotation), makes
/// a device code: it reads first, so the code carries the space's current key, and
/// what the new tablet writes reaches Sam. The tablet joined a member without that key:
/// its join failed, its writes never left it, and every sync said "Up to date".
#[test]
fn a_device_code_made_before_reading_a_removal_carries_the_current_key() {
    let relay = Relay::start();
    let (alex, sam) = duet_tests::pair(&relay);
    let phone = Device::new();
    phone.ok(&["join", &sam.device_code(), "--name", "Sam"]);
    for d in [&alex, &sam, &phone, &alex] {
        d.ok(&["sync"]);
    }
    let key = phone.key();
    sam.ok(&["device", "remove", &key[..12], "--yes"]);
    sam.ok(&["sync"]);

    let tablet = Device::new();
    tablet.ok(&["join", &alex.device_code(), "--name", "Alex"]);
    tablet.ok(&["reflect", "Written on the new tablet"]);
    let synced = tablet.run(&["sync"]);
    assert_eq!(synced.code, 0, "{synced:?}");
    sam.ok(&["sync"]);
    assert!(
        sam.ok(&["reflections"])
            .contains("Written on the new tablet"),
        "Sam reads what the tablet wrote"
    );
}

/// A device that joined with a code older than a removal (made offline, sent after the
/// removal was read) holds no key for what was written since: its sync fails with what
/// to do (it said "Up to date." and exited 0 for ever, its own changes waiting).
#[test]
fn a_device_without_the_spaces_key_is_not_told_up_to_date() {
    let mut relay = Relay::start();
    let (alex, sam) = duet_tests::pair(&relay);
    let phone = Device::new();
    phone.ok(&["join", &sam.device_code(), "--name", "Sam"]);
    for d in [&alex, &sam, &phone, &alex] {
        d.ok(&["sync"]);
    }
    // Alex's laptop makes a code while the relay is out of reach.
    relay.kill();
    let made = alex.run(&["device", "add"]);
    let code = made
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("duet"))
        .unwrap_or_else(|| panic!("a code given though unsent: {made:?}"))
        .trim()
        .to_string();
    relay.restart();
    // Meanwhile Sam removes his phone; then the laptop sends the code.
    let key = phone.key();
    sam.ok(&["device", "remove", &key[..12], "--yes"]);
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);

    let tablet = Device::new();
    let joined = tablet.run(&["join", &code, "--name", "Alex"]);
    assert!(
        joined.stderr.contains("made before a device was removed"),
        "{joined:?}"
    );
    let synced = tablet.run(&["sync"]);
    assert_eq!(synced.code, 3, "{synced:?}");
    assert!(
        synced.stderr.contains("holds no key") && !synced.stdout.contains("Up to date"),
        "{synced:?}"
    );
    // The watch says what to do as well, once.
    let mut watching = duet_tests::Watcher::start(&tablet);
    watching.wait_for("duet device add");
    let said = watching.stop();
    assert_eq!(
        said.iter()
            .filter(|l| l.contains("duet device add"))
            .count(),
        1,
        "{said:#?}"
    );
}

/// What the syncs made with a code read is said beside it: Sam removed Alex's phone
/// while Alex's laptop was not syncing; the laptop's `device add` reads the removal and
/// says it (it said only the code, and the next sync "Up to date").
#[test]
fn making_a_code_says_what_its_syncs_read() {
    let relay = Relay::start();
    let (alex, sam) = duet_tests::pair(&relay);
    let phone = Device::new();
    phone.ok(&["join", &alex.device_code(), "--name", "Alex"]);
    for d in [&alex, &sam] {
        d.ok(&["sync"]);
    }
    let key = phone.key();
    sam.ok(&["device", "remove", &key[..12], "--yes"]);
    sam.ok(&["reflect", "Written by Sam"]);
    sam.ok(&["sync"]);
    let made = alex.run(&["device", "add"]);
    assert_eq!(made.code, 0, "{made:?}");
    assert!(
        made.stderr.contains("shared: Sam removed")
            && made.stderr.contains("1 reflection from Sam"),
        "{made:?}"
    );
    // Quiet, only warnings are said, as `sync -q` says them; stdout is the code alone.
    sam.ok(&["reflect", "Written by Sam again"]);
    sam.ok(&["sync"]);
    let quiet = alex.run(&["device", "add", "-q"]);
    assert_eq!(quiet.code, 0, "{quiet:?}");
    assert!(!quiet.stderr.contains("from Sam"), "{quiet:?}");
    assert_eq!(quiet.stdout.trim().lines().count(), 1, "{quiet:?}");
}
