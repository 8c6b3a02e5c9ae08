//! `duet backup` and `duet restore` through the real binaries and relay: a lost device
//! comes back from its file and passphrase, reads and writes both spaces, continues its
//! own chain after changes it made since the backup (no fork), and a wrong passphrase
//! or a cut file writes nothing. Two copies of one device that both wrote offline keep
//! both copies' changes.

use duet_tests::proxy::RelayProxy;
use duet_tests::{Device, Relay, pair};

const PASS: &str = "correct horse battery staple\n";

fn restore(d: &Device, file: &str, pass: &str) -> duet_tests::Run {
    d.run_with_stdin(&["restore", file, "--passphrase-fd", "0"], Some(pass))
}

/// Writes `d`'s backup with [`PASS`] into a new temporary directory (removed when the
/// returned guard is dropped); returns the guard and the file's path.
fn backup(d: &Device) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("alex.duetbackup");
    let file = file.to_str().expect("utf-8 path").to_string();
    d.run_with_stdin(&["backup", &file, "--passphrase-fd", "0"], Some(PASS))
        .ok();
    (dir, file)
}

#[test]
fn a_lost_device_comes_back_from_its_backup_and_carries_on_without_a_fork() {
    let relay = Relay::start();
    let (a, b) = pair(&relay);
    a.ok(&["reflect", "--private", "Private-canary-5e1 only for Alex"]);
    a.ok(&["goal", "add", "Weekly check-in", "--area", "communication"]);
    a.ok(&["rate", "weekly", "1"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("alex.duetbackup");
    let file_s = file.to_str().expect("utf-8 path");
    a.run_with_stdin(&["backup", file_s, "--passphrase-fd", "0"], Some(PASS))
        .ok();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file)
            .expect("backup")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the backup is private to its owner");
    }
    for canary in ["Private-canary", "Weekly check-in", "Alex"] {
        assert!(
            !duet_tests::file_contains(&file, canary),
            "{canary} in clear"
        );
    }
    // Refused before any passphrase is read (so none is given here).
    let again = a.run(&["backup", file_s, "--passphrase-fd", "0"]);
    assert!(again.stderr.contains("exists already"), "{}", again.stderr);
    // Not to standard output (nor to a file named `-`): a usage error, exit 2.
    let dash = a.run(&["backup", "-", "--passphrase-fd", "0"]);
    assert!(
        dash.code == 2 && dash.stderr.contains("never to standard output"),
        "{}",
        dash.stderr
    );
    // Not into the device's own home, least of all over its database.
    let db = a.home.join("duet.db");
    let db_s = db.to_str().expect("path");
    let over = a.run_with_stdin(
        &["backup", db_s, "--force", "--passphrase-fd", "0"],
        Some(PASS),
    );
    assert!(
        over.code != 0 && over.stderr.contains("inside this device's home"),
        "{}",
        over.stderr
    );
    a.ok(&["goal", "list"]);

    // A change after the backup reaches the relay; then the device is lost.
    a.ok(&[
        "goal",
        "add",
        "Made after the backup",
        "--area",
        "quality-time",
    ]);
    a.ok(&["sync"]);
    std::fs::remove_dir_all(&a.home).expect("lose the home");

    let restored = Device::new();
    let wrong = restore(&restored, file_s, "not the passphrase\n");
    assert_ne!(wrong.code, 0);
    assert!(
        wrong
            .stderr
            .contains("the passphrase does not open this backup"),
        "{}",
        wrong.stderr
    );
    let cut = dir.path().join("cut.duetbackup");
    let bytes = std::fs::read(&file).expect("read backup");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write cut copy");
    let cut_run = restore(&restored, cut.to_str().expect("utf-8"), PASS);
    assert_ne!(cut_run.code, 0);
    assert!(cut_run.stderr.contains("cut short"), "{}", cut_run.stderr);
    assert!(!restored.home.exists(), "a failed restore writes nothing");
    let taken = b.run(&["restore", file_s, "--passphrase-fd", "0"]);
    assert!(
        taken.stderr.contains("already holds a duet device"),
        "{}",
        taken.stderr
    );

    // No `duet sync` here: the restore itself read the device's history back, so what it
    // shows and writes next already follows the change made after the backup.
    restore(&restored, file_s, PASS).ok();
    let export = restored.json(&["export"]);
    assert!(
        export["personal"]
            .to_string()
            .contains("Private-canary-5e1")
    );
    let shared = duet_tests::shared_titles(&restored);
    assert!(
        shared.contains(&"Weekly check-in".to_string()),
        "{shared:?}"
    );
    assert!(
        shared.contains(&"Made after the backup".to_string()),
        "the restore read back what the device sent after its backup: {shared:?}"
    );

    // It writes both spaces, continuing its own chain.
    restored.ok(&["reflect", "--private", "Private-canary-77a after restore"]);
    restored.ok(&["goal", "add", "Evening walks", "--area", "quality-time"]);
    let sync = restored.run(&["sync"]);
    sync.ok();
    let partner = b.run(&["sync", "--json"]);
    let reports = partner.json();
    assert!(
        reports
            .as_array()
            .expect("reports")
            .iter()
            .all(|r| r["report"]["forks"] == 0),
        "{reports}"
    );
    for out in [&sync.stderr, &partner.stderr, &sync.stdout] {
        assert!(
            !out.contains("fork") && !out.contains("equivocation"),
            "{out}"
        );
    }
    assert!(duet_tests::shared_titles(&b).contains(&"Evening walks".to_string()));
    assert!(!b.json(&["export"]).to_string().contains("Private-canary"));

    // The private reflection written after the restore is on the relay: a second restore
    // of the same old backup reads it back.
    let second = Device::new();
    restore(&second, file_s, PASS).ok();
    assert!(
        second.json(&["export"])["personal"]
            .to_string()
            .contains("Private-canary-77a")
    );
}

#[test]
fn changes_that_never_reached_the_relay_are_sent_by_the_restored_device() {
    let relay = Relay::start();
    let a = Device::new();
    let b = Device::new();
    a.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let code = a.invite_code();
    b.ok(&["join", &code, "--name", "Sam"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    a.ok(&["goal", "add", "Written offline", "--area", "trust"]);
    let (_dir, file) = backup(&a);
    let file_s = file.as_str();
    std::fs::remove_dir_all(&a.home).expect("lose the home before it synced");

    // The phone is lost: its old invite code is tried first on the new one, and refused
    // (used); the restore into the same folder still works.
    let restored = Device::new();
    let tried = restored.run(&["join", &code, "--name", "Alex"]);
    assert_ne!(tried.code, 0, "a used code is refused");
    let said = restore(&restored, file_s, PASS);
    assert!(
        said.ok().contains("1 change that had not reached it sent"),
        "{}",
        said.stdout
    );
    b.ok(&["sync"]);
    assert!(duet_tests::shared_titles(&b).contains(&"Written offline".to_string()));
}

/// A relay that answers the restore with a refusal was reached: the restore says what it
/// answered, and does not send the person to check that it is reachable. Here the "new
/// address" given is another relay, which holds none of the spaces.
#[test]
fn a_restore_a_reachable_relay_refuses_says_its_answer_not_to_check_the_relay() {
    let relay = Relay::start();
    let (a, _b) = pair(&relay);
    let (_dir, file) = backup(&a);
    let other = Relay::start();
    let restored = Device::new();
    let refused = restored.run_with_stdin(
        &[
            "restore",
            &file,
            "--passphrase-fd",
            "0",
            "--relay",
            &other.url,
        ],
        Some(PASS),
    );
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(
        refused.stderr.contains("does not hold the space")
            && refused.stderr.contains("nothing was written")
            && !refused.stderr.contains("reachable"),
        "{}",
        refused.stderr
    );
}

#[test]
fn two_copies_of_a_device_that_both_wrote_offline_keep_both_copies_changes() {
    let relay = Relay::start();
    let (a, b) = pair(&relay);
    a.ok(&["goal", "add", "Weekly check-in", "--area", "communication"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    // Sam has rated blind, so Alex's ratings are given in the clear.
    b.ok(&["rate", "Weekly", "0"]);
    b.ok(&["sync"]);
    a.ok(&["sync"]);
    let (_dir, file) = backup(&a);
    let file_s = file.as_str();
    // The phone thought lost is restored; the old one turns up and both write offline.
    let restored = Device::new();
    restore(&restored, file_s, PASS).ok();
    a.ok(&["rate", "Weekly", "1", "--note", "from the old phone"]);
    a.ok(&["reflect", "Written on the old phone"]);
    restored.ok(&["rate", "Weekly", "-1", "--note", "from the restored phone"]);
    restored.ok(&["goal", "add", "Date night", "--area", "intimacy"]);
    restored.ok(&["step", "add", "Date night", "Book a table"]);

    // The old phone's changes reach the relay first, with the numbers the restored
    // one gave its own: the restored one makes its own again after them.
    a.ok(&["sync"]);
    let synced = restored.run(&["sync"]);
    let said = format!("{}{}", synced.ok(), synced.stderr);
    assert!(
        said.contains("another copy of this device")
            && said.contains("3 unsent changes were made again"),
        "{said}"
    );
    for d in [&a, &b, &restored, &a] {
        d.ok(&["sync"]);
    }
    for d in [&a, &b, &restored] {
        let notes: Vec<String> = d.json(&["export"])["shared"]["ratings"]
            .as_array()
            .expect("ratings")
            .iter()
            .filter_map(|r| r["note"].as_str().map(str::to_string))
            .collect();
        assert!(
            notes.contains(&"from the old phone".to_string())
                && notes.contains(&"from the restored phone".to_string()),
            "{notes:?}"
        );
        assert!(duet_tests::shared_titles(d).contains(&"Date night".to_string()));
        let steps = d.json(&["goal", "show", "Date night"])["steps"].clone();
        assert_eq!(steps[0]["text"], "Book a table", "{steps}");
        let reflections = d.ok(&["reflections"]);
        assert!(
            reflections.contains("Written on the old phone"),
            "{reflections}"
        );
        assert_eq!(d.json(&["status"])["spaces"][0]["pending_changes"], 0);
    }
    // Both copies' histories name the same acts, and the store loads as it should.
    let history = restored.ok(&["history"]);
    assert!(history.contains("from the restored phone"), "{history}");
    assert_eq!(history, a.ok(&["history"]));
}

/// A change still unsent when the backup was taken is in both copies: the restored copy
/// sends it, and the old copy, finding it on the relay, must not make it again (a second
/// change creating the same reflection, which every device refuses).
#[test]
fn a_change_both_copies_held_unsent_is_sent_once_and_the_partner_refuses_nothing() {
    let relay = Relay::start();
    let (a, b) = pair(&relay);
    a.ok(&["reflect", "Written before the backup, unsent"]);
    let (_dir, file) = backup(&a);
    a.ok(&["reflect", "Written on the old phone"]);
    let restored = Device::new();
    restore(&restored, file.as_str(), PASS).ok();
    restored.ok(&["reflect", "Written on the restored phone"]);
    restored.ok(&["sync"]);
    let synced = a.run(&["sync"]);
    let said = format!("{}{}", synced.ok(), synced.stderr);
    assert!(
        said.contains("1 unsent change was made again")
            && said.contains("1 unsent change of this copy was among them, sent by that copy"),
        "{said}"
    );
    // Both copies keep writing, and every write reaches the partner.
    a.ok(&["reflect", "The old phone again"]);
    for d in [&a, &restored, &b, &a] {
        let run = d.run(&["sync"]);
        assert!(!run.stderr.contains("refused"), "{}", run.stderr);
    }
    for d in [&a, &b, &restored] {
        assert_eq!(d.json(&["status"])["spaces"][0]["refused_events"], 0);
        let texts = d.ok(&["reflections"]);
        for t in [
            "Written before the backup, unsent",
            "Written on the old phone",
            "Written on the restored phone",
            "The old phone again",
        ] {
            assert_eq!(texts.matches(t).count(), 1, "{t:?} once in {texts}");
        }
    }
}

#[test]
fn a_copy_whose_push_was_cut_off_goes_on_after_the_other_copys_event() {
    let relay = Relay::start();
    let (a, b) = pair(&relay);
    a.ok(&["goal", "add", "Weekly check-in", "--area", "communication"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    let (_dir, file) = backup(&a);
    let restored = Device::new();
    restore(&restored, &file, PASS).ok();
    // The restored phone packages its reflection into an event, but the push is cut
    // off (the relay in front answers every push with an error): the event stays
    // unsent under the next event number of this device.
    let cut = RelayProxy::start(&relay.url, |_| {
        Some((
            500,
            r#"{"error":"http_error","message":"cut off"}"#.to_string(),
        ))
    });
    restored.ok(&["relay", "set", &cut.url]);
    restored.ok(&["reflect", "from the restored phone"]);
    let cut_off = restored.run(&["sync"]);
    assert_ne!(cut_off.code, 0);
    assert!(
        !cut_off.stdout.contains("sent"),
        "nothing was sent: {}",
        cut_off.stdout
    );
    assert_eq!(restored.json(&["status"])["spaces"][0]["unsent_events"], 1);
    // The old phone signs its own event with that number, and the relay takes it.
    a.ok(&["reflect", "from the old phone"]);
    a.ok(&["sync"]);
    // Back on the real relay, the restored phone withdraws its unsent event and sends
    // its reflection after the old phone's (it refused that event, as an equivocation
    // of its own device, and answered every sync with the relay's 409 `fork`).
    restored.ok(&["relay", "set", &relay.url]);
    let synced = restored.run(&["sync"]);
    let said = format!("{}{}", synced.ok(), synced.stderr);
    assert!(said.contains("another copy of this device"), "{said}");
    // Its reflection went out after the withdrawal, in the same sync, and is counted.
    assert!(synced.stdout.contains("sent 1 change"), "{}", synced.stdout);
    for d in [&a, &b, &restored, &a, &b] {
        d.ok(&["sync"]);
    }
    for d in [&a, &b, &restored] {
        let reflections = d.ok(&["reflections"]);
        assert!(
            reflections.contains("from the restored phone")
                && reflections.contains("from the old phone"),
            "{reflections}"
        );
        let status = d.json(&["status"]);
        assert_eq!(status["spaces"][0]["unsent_events"], 0, "{status}");
        assert_eq!(status["spaces"][0]["refused_events"], 0, "{status}");
    }
    assert!(cut.answered() >= 1);
    // The relay keeps the refused event as evidence and counts it in every read: said
    // once, then kept in `status`, not repeated at every sync.
    let again = b.run(&["sync"]);
    assert!(!again.stderr.contains("equivocation"), "{}", again.stderr);
    assert!(b.ok(&["status"]).contains("1 equivocation attempt"));
}

#[test]
fn a_restored_device_keeps_the_partners_devices_it_had_verified() {
    let relay = Relay::start();
    let (a, _b) = pair(&relay);
    // The code as the person saw it (this syncs), then the confirmation of that code.
    a.ok(&["verify"]);
    a.ok(&["verify", "--confirm"]);
    let verified = |d: &Device| -> Vec<bool> {
        d.json(&["device", "list"])
            .as_array()
            .expect("devices")
            .iter()
            .filter(|row| row["name"] == "Sam")
            .map(|row| row["verified"] == true)
            .collect()
    };
    assert_eq!(verified(&a), vec![true]);
    let (_dir, file) = backup(&a);
    let restored = Device::new();
    restore(&restored, &file, PASS).ok();
    assert_eq!(verified(&restored), vec![true], "compared once, in person");
    let said = restored.run(&["sync"]).stderr;
    assert!(!said.contains("not verified"), "{said}");
}

/// The operator moves the relay (its database copied) to a new address: the relay
/// there, with the folder holding its database.
fn moved(old: &mut Relay) -> (tempfile::TempDir, Relay) {
    old.kill();
    let moved = tempfile::tempdir().expect("tempdir");
    for suffix in ["", "-wal", "-shm"] {
        let mut from = old.db.as_os_str().to_owned();
        from.push(suffix);
        if std::path::Path::new(&from).exists() {
            std::fs::copy(&from, moved.path().join(format!("relay.db{suffix}")))
                .expect("copy the database");
        }
    }
    let db = moved.path().join("relay.db");
    let new = Relay::start_on(db.to_str().expect("path"), &[]);
    (moved, new)
}

#[test]
fn a_backup_is_restored_through_the_relays_new_address_after_it_moved() {
    let mut old = Relay::start();
    let (a, b) = pair(&old);
    a.ok(&["goal", "add", "Weekly check-in", "--area", "communication"]);
    a.ok(&["sync"]);
    let (_dir, file) = backup(&a);
    let (_moved, new) = moved(&mut old);
    b.ok(&["relay", "set", &new.url]);
    // Alex's phone is lost; the backup names the old address, which nothing answers.
    let restored = Device::new();
    let r = restore(&restored, &file, PASS);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("--relay URL"), "{}", r.stderr);
    let r = restored.run_with_stdin(
        &[
            "restore",
            &file,
            "--passphrase-fd",
            "0",
            "--relay",
            &new.url,
        ],
        Some(PASS),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        restored.json(&["status"])["spaces"][0]["relay"],
        new.url.as_str()
    );
    restored.ok(&["goal", "add", "After the move", "--area", "trust"]);
    restored.ok(&["sync"]);
    b.ok(&["sync"]);
    assert!(b.ok(&["goal", "list"]).contains("After the move"));
}

#[test]
fn the_app_brings_a_device_back_through_the_relays_new_address() {
    let mut old = Relay::start();
    let (a, b) = pair(&old);
    a.ok(&["goal", "add", "Weekly check-in", "--area", "communication"]);
    a.ok(&["sync"]);
    let (_dir, file) = backup(&a);
    let bytes = std::fs::read(&file).expect("the backup");
    let (_moved, new) = moved(&mut old);
    b.ok(&["relay", "set", &new.url]);
    // Alex's phone is lost; Alex has no terminal, only the app on a new one.
    let restored = Device::new();
    let app = duet_tests::app::App::start(&restored);
    app.wait_for("/setup", "The relay's new address");
    let pass = PASS.trim();
    let typo = app.post_file(
        "/setup/restore",
        &[("passphrase", pass), ("relay", "htps//relay")],
        ("backup", &bytes),
    );
    assert!(
        typo.body.contains("relay URL must look like"),
        "{}",
        typo.body
    );
    let left = std::fs::read_dir(&restored.home).map_or(0, |d| d.count());
    assert_eq!(
        left, 0,
        "a restore with a mistyped relay wrote into the home"
    );
    let back = app.post_file(
        "/setup/restore",
        &[("passphrase", pass), ("relay", &new.url)],
        ("backup", &bytes),
    );
    assert_eq!(back.status, 303, "{}", back.body);
    assert_eq!(
        restored.json(&["status"])["spaces"][0]["relay"],
        new.url.as_str()
    );
    app.wait_for("/", "Weekly check-in");
    restored.ok(&["goal", "add", "After the move", "--area", "trust"]);
    restored.ok(&["sync"]);
    b.ok(&["sync"]);
    assert!(b.ok(&["goal", "list"]).contains("After the move"));
}

/// Alex's phone wrote offline, was backed up, then removed from Alex's laptop: brought
/// back, it says it was removed and that what it wrote stays here, not that it was sent.
#[test]
fn a_device_removed_since_its_backup_comes_back_saying_so_and_calls_nothing_sent() {
    let relay = Relay::start();
    let (a, _b) = pair(&relay);
    let code = a.device_code();
    let phone = Device::new();
    phone.ok(&["join", &code]);
    let key = phone.key();
    phone.ok(&["reflect", "Written on the phone, never sent"]);
    let (_dir, file) = backup(&phone);
    a.ok(&["sync"]);
    a.ok(&["device", "remove", &key, "--yes"]);
    let restored = Device::new();
    let said = restore(&restored, file.as_str(), PASS);
    let out = said.ok();
    assert!(
        !out.contains("reached it sent") && out.contains("kept on this device, not sent"),
        "{out}"
    );
    assert!(
        out.contains("WARNING: this device was removed from the shared space by Alex"),
        "{out}"
    );
}

/// The token a relay's operator gave.
const TOKEN: &str = "the-operators-token";

/// Alex's device set up with a mistyped creation token on a relay that wants [`TOKEN`]
/// (its spaces were never created there), with one goal.
fn with_mistyped_token(relay: &Relay) -> Device {
    let a = Device::new();
    a.ok(&[
        "init", "--name", "Alex", "--relay", &relay.url, "--token", "mistyped",
    ]);
    a.ok(&["goal", "add", "Weekly check-in", "--area", "communication"]);
    a
}

#[test]
fn a_backup_made_with_a_wrong_creation_token_is_restored_with_the_right_one() {
    let relay = Relay::start_with(&["--create-token", TOKEN]);
    let a = with_mistyped_token(&relay);
    assert_ne!(a.run(&["sync"]).code, 0);
    let (_dir, file) = backup(&a);
    // The phone is lost; the backup holds the wrong token, which the restore says how
    // to replace.
    let restored = Device::new();
    let r = restore(&restored, &file, PASS);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("--token"), "{}", r.stderr);
    let r = restored.run_with_stdin(
        &["restore", &file, "--passphrase-fd", "0", "--token", TOKEN],
        Some(PASS),
    );
    assert_eq!(r.code, 0, "{r:?}");
    // The spaces now exist on the relay: a partner joins and sees the goal.
    let b = Device::new();
    b.ok(&["join", &restored.invite_code(), "--name", "Sam"]);
    restored.ok(&["sync"]);
    b.ok(&["sync"]);
    assert!(b.ok(&["goal", "list"]).contains("Weekly check-in"));
}

#[test]
fn the_app_brings_back_a_device_whose_creation_token_was_wrong_with_the_right_one() {
    let relay = Relay::start_with(&["--create-token", TOKEN]);
    let a = with_mistyped_token(&relay);
    let (_dir, file) = backup(&a);
    let bytes = std::fs::read(&file).expect("the backup");
    let restored = Device::new();
    let app = duet_tests::app::App::start(&restored);
    app.wait_for("/setup", "creation token");
    let back = app.post_file(
        "/setup/restore",
        &[("passphrase", PASS.trim()), ("relay", ""), ("token", TOKEN)],
        ("backup", &bytes),
    );
    assert_eq!(back.status, 303, "{}", back.body);
    // The relay now holds the spaces: a partner's join works.
    let b = Device::new();
    b.ok(&["join", &restored.invite_code(), "--name", "Sam"]);
    restored.ok(&["sync"]);
    b.ok(&["sync"]);
    assert!(b.ok(&["goal", "list"]).contains("Weekly check-in"));
}

/// Eda's phone, found again after she restored its backup on a new one, leaves while
/// offline; the restored copy had sent what the backup held first. The leave was
/// withdrawn as a fork at every sync of the old phone, and the partner's fork alarm grew
/// with each; now the old phone reads what the copy sent and signs its leave after it.
#[test]
fn a_leave_made_offline_after_a_restored_copy_synced_reaches_the_space_once() {
    let relay = Relay::start();
    let (eda, fin) = pair(&relay);
    eda.ok(&["reflect", "Written before the backup, not sent"]);
    let (dir, file) = backup(&eda);
    eda.ok(&["relay", "set", "http://127.0.0.1:9"]);
    let export = dir.path().join("eda-export.json");
    let left = eda.run(&["leave", "--yes", "--export", export.to_str().expect("path")]);
    assert!(left.code == 0 || left.code == 3, "{left:?}");
    let copy = Device::new();
    restore(&copy, &file, PASS).ok();
    eda.ok(&["relay", "set", &relay.url]);
    eda.run(&["sync"]);
    let again = eda.run(&["sync"]);
    assert!(
        !again.stderr.contains("another copy") && !again.stderr.contains("keeps refusing"),
        "{again:?}"
    );
    assert!(eda.ok(&["status"]).contains("unsent events: 0"));
    let synced = fin.ok(&["sync"]);
    assert!(
        synced.contains("Eda left") || synced.contains("left the shared space"),
        "{synced}"
    );
    // The old phone's first push could not know of the copy's event: one attempt, which
    // the partner is told of, and no more.
    let status = fin.ok(&["status"]);
    assert!(
        status.contains("WARNING: 1 equivocation attempt") && status.contains("Alex left"),
        "{status}"
    );
}

/// Started over by mistake (in the app or on the command line): the backup brings the
/// device back into the same home, beside the one set aside.
#[test]
fn a_device_is_brought_back_into_the_home_it_was_started_over_in() {
    let relay = Relay::start();
    let a = Device::new();
    a.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    a.ok(&["goal", "add", "Sunday walks", "--area", "quality-time"]);
    a.ok(&["sync"]);
    let (_dir, file) = backup(&a);
    a.ok(&["start-over", "--yes"]);
    let aside: Vec<_> = std::fs::read_dir(&a.home)
        .expect("the home")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("set-aside-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    restore(&a, &file, PASS).ok();
    assert!(duet_tests::shared_titles(&a).contains(&"Sunday walks".to_string()));
    assert!(
        a.home.join(&aside[0]).join("duet.db").is_file(),
        "the set-aside device stays"
    );
    // A home holding a device is still refused.
    let again = restore(&a, &file, PASS);
    assert_ne!(again.code, 0, "{again:?}");
}

/// A restore reads the relay before it moves the device into its home: a home set up
/// by another command meanwhile (an `init` typed in a second terminal) is not replaced.
#[test]
fn a_restore_never_replaces_a_device_set_up_in_its_home_while_it_ran() {
    let relay = Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    alex.ok(&["sync"]);
    let (_dir, file) = backup(&alex);
    let slow = RelayProxy::start_gated(&relay.url);
    let new = Device::new();
    let mut restoring = new
        .command(&[
            "restore",
            &file,
            "--passphrase-fd",
            "0",
            "--relay",
            &slow.url,
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("duet restore starts");
    {
        use std::io::Write;
        let mut stdin = restoring.stdin.take().expect("stdin");
        stdin.write_all(PASS.as_bytes()).expect("the passphrase");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while slow.waiting() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the restore never asked the relay"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    new.ok(&["init", "--name", "Other"]);
    new.ok(&["goal", "add", "Other's goal", "--area", "trust"]);
    slow.open_gate();
    let restored = duet_tests::Run::from(restoring.wait_with_output().expect("the restore ends"));
    assert_ne!(restored.code, 0, "{restored:?}");
    assert!(restored.stderr.contains("already"), "{}", restored.stderr);
    assert!(new.ok(&["status"]).starts_with("Other"));
    assert!(new.ok(&["goal", "list"]).contains("Other's goal"));
}

/// A restore killed before it moved the device in leaves its staging folder beside the
/// home, which holds no device yet: commands there say to run the restore again (not
/// to set the home up anew), and running it again finishes it.
#[test]
fn a_home_whose_restore_was_stopped_says_to_run_it_again() {
    let relay = Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    alex.ok(&["sync"]);
    let (_dir, file) = backup(&alex);
    let new = Device::new();
    let leaf = new
        .home
        .file_name()
        .expect("a home name")
        .to_string_lossy()
        .to_string();
    let staging = new
        .home
        .with_file_name(format!(".{leaf}.restoring-0badc0de"));
    std::fs::create_dir_all(&staging).expect("what a killed restore leaves");
    let r = new.run(&["status"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("was stopped before it finished")
            && r.stderr.contains("duet restore FILE"),
        "{}",
        r.stderr
    );
    // Nor is a new device set up beside it (the folder holds the restored device's
    // keys): `init` and `join` say what to do, and write nothing.
    for args in [&["init", "--name", "Other"][..], &["join", "not-a-code"]] {
        let refused = new.run(args);
        assert_ne!(refused.code, 0, "{refused:?}");
        assert!(
            refused.stderr.contains("was stopped before it finished")
                && refused.stderr.contains("delete that folder"),
            "{}",
            refused.stderr
        );
    }
    assert!(!new.home.join("duet.db").exists());
    restore(&new, &file, PASS).ok();
    assert!(new.ok(&["status"]).starts_with("Alex"));
    assert!(!staging.exists(), "the stopped restore's folder is cleared");
}

/// `--passphrase-fd` naming a descriptor the shell never opened is refused as such
/// (exit 2), and no backup is written: the number was read after duet had opened its
/// own files, one of which took it, and its first line (empty) became "the passphrase".
#[test]
fn a_passphrase_descriptor_that_is_not_open_is_refused_and_nothing_is_written() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("alex.duet");
    let file_s = file.to_str().expect("utf-8 path");
    for fd in ["9", "5"] {
        let refused = d.run(&["backup", file_s, "--passphrase-fd", fd]);
        assert_eq!(refused.code, 2, "{}", refused.stderr);
        assert!(refused.stderr.contains("is it open?"), "{}", refused.stderr);
        assert!(!file.exists());
    }
}

/// A backup killed while it wrote (kill -9, a power cut) leaves its temporary file: a
/// sealed copy of the device's keys the person does not know of. The next backup to
/// that name removes it, but not one a running backup holds.
#[test]
fn a_killed_backups_temporary_file_is_removed_by_the_next_but_not_a_running_ones() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("k.bak");
    let stale = dir.path().join(".k.bak.tmp-0badcafe");
    let running = dir.path().join(".k.bak.tmp-0c0ffee0");
    let left_an_hour_ago = |tmp: &std::path::Path| {
        std::fs::write(tmp, b"part of a sealed backup").expect("a temporary file");
        let aged = std::process::Command::new("touch")
            .args(["-d", "1 hour ago"])
            .arg(tmp)
            .status()
            .is_ok_and(|s| s.success());
        assert!(aged, "touch");
    };
    left_an_hour_ago(&stale);
    left_an_hour_ago(&running);
    // Another backup still writing holds its file locked (as `flock` does here).
    let mut holder = std::process::Command::new("flock")
        .arg("-x")
        .arg(&running)
        .args(["sleep", "120"])
        .spawn()
        .expect("flock runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::OpenOptions::new()
        .write(true)
        .open(&running)
        .is_ok_and(|f| f.try_lock().is_ok())
    {
        assert!(std::time::Instant::now() < deadline, "never locked");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let path = file.to_str().expect("a UTF-8 path");
    d.run_with_stdin(&["backup", path, "--passphrase-fd", "0"], Some(PASS))
        .ok();
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(file.is_file(), "the backup is written");
    assert!(
        !stale.exists(),
        "the killed backup's temporary file is removed"
    );
    assert!(running.exists(), "a running backup's file is left alone");
    // A backup refused for the file there (no --force) still clears it.
    left_an_hour_ago(&stale);
    let refused = d.run_with_stdin(&["backup", path, "--passphrase-fd", "0"], Some(PASS));
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(!stale.exists(), "removed by a refused backup too");
}

/// The laptop queued the removal of Alex's phone while offline, was backed up, then lost;
/// meanwhile the phone added a tablet. The restore carries the queued removal out, and
/// the tablet's with it (it joined with the removed phone's code): it says both, as
/// `duet sync` would (it said only how many events it read back).
#[test]
fn a_restore_says_the_removal_it_carries_out_and_what_it_took_with_it() {
    let mut relay = Relay::start();
    let (alex, _sam) = pair(&relay);
    let phone = Device::new();
    phone.ok(&["join", &alex.device_code(), "--name", "Alex"]);
    alex.ok(&["sync"]);
    let key = phone.key();
    relay.kill();
    let _ = alex.run(&["device", "remove", &key[..12], "--yes"]);
    let (_dir, file) = backup(&alex);
    relay.restart();
    let tablet = Device::new();
    tablet.ok(&["join", &phone.device_code(), "--name", "Alex"]);
    phone.ok(&["sync"]);

    let restored = Device::new();
    let r = restore(&restored, &file, PASS);
    let said = format!("{}{}", r.ok(), r.stderr);
    assert!(said.contains("it was removed too"), "{said}");
    // And the removal queued on the laptop, sent now, is said as sent.
    assert!(
        said.contains("that the backed-up device had not sent yet, sent now"),
        "{said}"
    );
    assert!(
        tablet.run(&["sync"]).stdout.contains("removed")
            || tablet.run(&["status"]).stdout.contains("removed"),
        "the tablet learns it"
    );
}

/// A restore into a home in a folder others may write to (`/tmp`): another user who
/// planted a symbolic link where the restore's lock goes had an empty file made wherever
/// it led (even with a wrong passphrase), and one who made the lock file could hold it
/// and stop every restore there.
#[cfg(unix)]
#[test]
fn a_restore_beside_a_shared_folder_follows_no_planted_link_and_waits_on_no_other_user() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let (_dir, file) = backup(&d);
    let shared = tempfile::tempdir().expect("the shared folder");
    let private = tempfile::tempdir().expect("a folder of the restoring user");
    let planted = private.path().join("PLANTED");
    std::os::unix::fs::symlink(&planted, shared.path().join(".vhome.restore.lock"))
        .expect("the planted link");
    let into = Device::at(shared.path().join("vhome"));
    let linked = restore(&into, &file, "not the passphrase\n");
    assert!(
        linked.code != 0 && linked.stderr.contains("symbolic link"),
        "{linked:?}"
    );
    assert!(!planted.exists(), "nothing is made where the link leads");
    assert!(!into.home.exists(), "nothing was written");
    // Another user's lock file: refused, not waited on (only root can make one here).
    let lock = shared.path().join(".other.restore.lock");
    std::fs::write(&lock, "").expect("the lock file");
    if std::os::unix::fs::chown(&lock, Some(65534), Some(65534)).is_err() {
        eprintln!("skipped: another user's lock file needs root to make (chown)");
        return;
    }
    let other = Device::at(shared.path().join("other"));
    let held = restore(&other, &file, PASS);
    assert!(
        held.code != 0
            && held
                .stderr
                .contains("belongs to another user of this machine"),
        "{held:?}"
    );
    assert!(!other.home.exists(), "nothing was written");
}
