//! A partner with valid keys tries to write in the other's name, the way a hostile
//! partner would: by editing their own device's store and using the ordinary CLI, by
//! crafting an Automerge change by hand with duet-core, and by adding a device that
//! claims the other's person. Each time the victim's `progress`, `export`, `history` and
//! report attribute nothing to the victim that the victim's devices did not sign, and
//! `history` names the refused change and the device that sent it. A partner who joins
//! under a name that looks like the other's is shown with their id wherever a name is.

use duet_core::device::Device as CoreDevice;
use duet_core::doc::DocError;
use duet_core::store::SpaceKind;
use duet_tests::{Device, Relay, pair};
use serde_json::Value;

/// Alex (the victim) and Sam (the attacker), paired and synced, with a goal and one
/// rating and reflection by Alex. Alex closes the round so the rating is in the clear:
/// Sam holds it and a forged change can target it. Returns Alex's person id too.
fn couple(relay: &Relay) -> (Device, Device, String) {
    let (alex, sam) = pair(relay);
    alex.ok(&["goal", "add", "Walk", "--area", "trust"]);
    alex.ok(&["rate", "Walk", "1", "--note", "alex's own rating"]);
    alex.ok(&["checkin", "--close"]);
    alex.ok(&["reflect", "alex's own reflection"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    let person = alex.json(&["export"])["me"]["person"]
        .as_str()
        .expect("person id")
        .to_string();
    (alex, sam, person)
}

/// Everything the victim's device attributes to the victim.
fn attributed_to(victim: &Device, person: &str) -> Vec<String> {
    let export = victim.json(&["export"]);
    let mut out = Vec::new();
    for r in export["shared"]["ratings"].as_array().into_iter().flatten() {
        if r["rater"] == person {
            out.push(format!("rating {} {}", r["level"], r["note"]));
        }
    }
    for r in export["shared"]["reflections"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if r["author"] == person {
            out.push(format!("reflection {}", r["text"]));
        }
    }
    out.push(format!(
        "name {}",
        export["shared"]["people"][person]["name"]
    ));
    out.sort();
    out
}

/// The victim's views hold nothing of the attack, and history names the refusal.
fn assert_victim_unharmed(victim: &Device, person: &str, before: &[String], marker: &str) {
    assert_eq!(
        attributed_to(victim, person),
        before,
        "the export attributes to the victim only what the victim's devices signed"
    );
    for args in [&["progress", "--json"][..], &["export", "--json"]] {
        let out = victim.ok(args);
        assert!(
            !out.contains(marker),
            "`duet {}` shows the forged {marker:?}: {out}",
            args.join(" ")
        );
    }
    let report = victim.home.join("report.html");
    victim.ok(&["report", "--html", report.to_str().expect("path")]);
    let html = std::fs::read_to_string(&report).expect("report");
    assert!(!html.contains(marker), "the report shows the forgery");
    let history = victim.history();
    let refused: Vec<&Value> = history
        .iter()
        .filter(|e| e["kind"] == "change_refused")
        .collect();
    assert!(
        !refused.is_empty(),
        "history names the refused change: {history:?}"
    );
    assert!(
        refused
            .iter()
            .all(|e| e["device"].as_str().is_some_and(|d| d.len() == 64)),
        "and the device that sent it: {refused:?}"
    );
    assert!(
        victim.ok(&["history"]).contains("REFUSED"),
        "the text history says so"
    );
    let status = victim.json(&["status"]);
    let shared = status["spaces"]
        .as_array()
        .expect("spaces")
        .iter()
        .find(|s| s["kind"] == "shared")
        .expect("shared space");
    assert!(
        shared["refused"].as_array().is_some_and(|r| r
            .iter()
            .any(|e| e["device"].as_str().is_some_and(|d| d.len() == 64))),
        "status names the refused change and its device: {shared}"
    );
    assert!(
        victim.ok(&["status"]).contains("REFUSED from"),
        "and says so in text"
    );
}

#[test]
fn a_partner_who_takes_the_others_person_id_cannot_rate_in_their_name() {
    let relay = Relay::start();
    let (alex, sam, alex_person) = couple(&relay);
    let before = attributed_to(&alex, &alex_person);
    // Sam edits their own store so that their device claims to be Alex, then uses
    // the ordinary CLI.
    {
        let c = rusqlite::Connection::open(sam.db()).expect("open Sam's store");
        c.execute(
            "UPDATE identity SET person_id = ?1",
            rusqlite::params![alex_person],
        )
        .expect("rewrite Sam's person");
    }
    let _ = sam.run(&["rate", "Walk", "-2", "--note", "forged by sam"]);
    let _ = sam.run(&["reflect", "forged reflection by sam"]);
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    assert_victim_unharmed(&alex, &alex_person, &before, "forged");
}

#[test]
fn a_hand_made_change_cannot_rewrite_the_others_rating_or_rename_them() {
    let relay = Relay::start();
    let (alex, sam, alex_person) = couple(&relay);
    let before = attributed_to(&alex, &alex_person);
    let rating = alex.json(&["export"])["shared"]["ratings"][0]["id"]
        .as_str()
        .expect("rating id")
        .to_string();
    // One change, with Sam's own actor and keys: Alex's +1 becomes -2 with a new note,
    // and Alex is renamed.
    {
        let mut dev = CoreDevice::open(&sam.home).expect("open Sam's device");
        let target = alex_person.clone();
        dev.edit(SpaceKind::Shared, move |doc, _| {
            let c = doc.raw_transaction("rate", 1, |tx| {
                use automerge::ReadDoc;
                use automerge::transaction::Transactable;
                let (_, ratings) = tx
                    .get(automerge::ROOT, "ratings")?
                    .ok_or(DocError::Malformed("ratings"))?;
                let (_, r) = tx
                    .get(&ratings, rating.as_str())?
                    .ok_or(DocError::Malformed("rating"))?;
                tx.put(&r, "level", -2i64)?;
                tx.put(&r, "note", "forged note")?;
                let (_, people) = tx
                    .get(automerge::ROOT, "people")?
                    .ok_or(DocError::Malformed("people"))?;
                let (_, p) = tx
                    .get(&people, target.as_str())?
                    .ok_or(DocError::Malformed("person"))?;
                tx.put(&p, "name", "forged name")?;
                Ok(())
            })?;
            Ok(((), c.into_iter().collect()))
        })
        .expect("craft the change");
    }
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    assert_victim_unharmed(&alex, &alex_person, &before, "forged");
    let export = alex.json(&["export"]);
    assert_eq!(
        export["shared"]["ratings"][0]["level"], 1,
        "the rating stands"
    );
}

#[test]
fn a_partner_cannot_add_a_device_in_the_others_name() {
    let relay = Relay::start();
    let (alex, sam, alex_person) = couple(&relay);
    let before = attributed_to(&alex, &alex_person);
    // Sam issues a device code for Sam, and a new device uses it claiming to be Alex.
    let code = sam.json(&["device", "add"])["code"]
        .as_str()
        .expect("device code")
        .to_string();
    sam.ok(&["sync"]);
    let mut code = duet_core::invite::DeviceCode::decode(&code).expect("code decodes");
    code.person = duet_core::identity::person_bytes(&alex_person).expect("a person id");
    code.name = "Alex".into();
    let fake = Device::new();
    CoreDevice::join_own(&fake.home, &code).expect("prepare the join");
    let joined = fake.run(&["sync"]);
    assert_ne!(
        joined.code, 0,
        "the relay refuses a join in another person's name: {}",
        joined.stdout
    );
    let _ = fake.run(&["rate", "Walk", "-2", "--note", "forged by the new device"]);
    let _ = fake.run(&["sync"]);
    alex.ok(&["sync"]);
    let devices = alex.json(&["device", "list"]);
    let alexs: Vec<&Value> = devices
        .as_array()
        .expect("device list")
        .iter()
        .filter(|d| d["person"] == alex_person.as_str())
        .collect();
    assert_eq!(
        alexs.len(),
        1,
        "only Alex's own device is Alex's: {devices}"
    );
    assert_eq!(
        attributed_to(&alex, &alex_person),
        before,
        "nothing new is attributed to Alex"
    );
    for args in [&["progress", "--json"][..], &["history", "--json"]] {
        let out = alex.ok(args);
        assert!(
            !out.contains("forged by the new device"),
            "`duet {}` shows the forgery: {out}",
            args.join(" ")
        );
    }
    let report = alex.home.join("report.html");
    alex.ok(&["report", "--html", report.to_str().expect("path")]);
    let html = std::fs::read_to_string(&report).expect("report");
    assert!(
        !html.contains("forged by the new device"),
        "the report shows the forgery"
    );
}

/// A large event (a backlog of thousands of changes, which a device checks on a second
/// core while applying it) with one forged change among honest ones is refused whole:
/// what was applied meanwhile is taken back, and nothing of it shows.
#[test]
fn a_forgery_at_the_end_of_a_large_event_is_refused_whole_and_nothing_of_it_stays() {
    let relay = Relay::start();
    let (alex, sam, alex_person) = couple(&relay);
    let before = attributed_to(&alex, &alex_person);
    let ratings_before = alex.json(&["export"])["shared"]["ratings"]
        .as_array()
        .map_or(0, Vec::len);
    {
        let mut dev = CoreDevice::open(&sam.home).expect("open Sam's device");
        let target = alex_person.clone();
        dev.edit(SpaceKind::Shared, move |doc, me| {
            let goal = doc.goals()?[0].id.clone();
            let mut changes = Vec::new();
            for i in 0..2_500i64 {
                let level = duet_core::Level::try_from(i % 5 - 2).expect("level");
                let note = format!("sam's walk {i}");
                changes.extend(
                    doc.rate(&goal, &me.person_id, level, Some(&note), i + 10)?
                        .1,
                );
            }
            let forged = duet_core::Level::try_from(-2).expect("level");
            changes.extend(
                doc.rate(&goal, &target, forged, Some("forged by sam"), 9_999)?
                    .1,
            );
            Ok(((), changes))
        })
        .expect("craft the backlog");
    }
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    assert_victim_unharmed(&alex, &alex_person, &before, "forged");
    let export = alex.ok(&["export", "--json"]);
    assert!(
        !export.contains("sam's walk"),
        "an honest change of the refused event stayed"
    );
    assert_eq!(
        alex.json(&["export"])["shared"]["ratings"]
            .as_array()
            .map_or(0, Vec::len),
        ratings_before
    );
}

#[test]
fn a_partner_who_joins_under_a_name_like_the_others_is_told_apart_everywhere() {
    let relay = Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    alex.ok(&["goal", "add", "Walk", "--area", "trust"]);
    let code = alex.invite_code();
    // "Аlex" with a Cyrillic А: the same on screen, another name to a computer.
    let fake = "\u{410}lex";
    let sam = Device::new();
    sam.ok(&["join", &code, "--name", fake]);
    sam.ok(&["rate", "Walk", "-2", "--note", "it was awful"]);
    sam.ok(&["reflect", "I never want to walk again"]);
    sam.ok(&["sync"]);
    let synced = alex.ok(&["sync"]);
    let (alex_id, sam_id) = (alex.person_id(), sam.person_id());
    let real = format!("Alex #{}", &alex_id[..4]);
    let faked = format!("{fake} #{}", &sam_id[..4]);
    assert!(synced.contains(&faked), "{synced}");
    // Every line that names the partner says which one it is.
    let history = alex.ok(&["history"]);
    let progress = alex.ok(&["progress"]);
    let reflections = alex.ok(&["reflections"]);
    for (what, out) in [
        ("history", &history),
        ("progress", &progress),
        ("reflections", &reflections),
    ] {
        assert!(out.contains(&faked), "{what}: {out}");
        assert_eq!(
            out.matches(fake).count(),
            out.matches(&faked).count(),
            "{what} names the partner without the id: {out}"
        );
    }
    assert!(
        history.contains(&format!("{real} created goal")),
        "{history}"
    );
    assert!(progress.contains(&real), "{progress}");
    let report = alex.home.with_file_name("report.html");
    let report_s = report.to_str().expect("utf-8 path");
    alex.ok(&["report", "--html", report_s]);
    let html = std::fs::read_to_string(&report).expect("the report");
    assert!(html.contains(&faked) && html.contains(&real));
    assert_eq!(html.matches(fake).count(), html.matches(&faked).count());
    // The history can still be asked for one of them, by the name as shown.
    let by = alex.ok(&["history", "--by", &faked]);
    assert!(
        by.contains("wrote a reflection") && !by.contains("created goal"),
        "{by}"
    );
    // The export keeps names as written.
    assert_eq!(
        alex.json(&["export"])["shared"]["people"][&sam_id]["name"],
        fake
    );
}

#[test]
fn a_goal_of_ones_own_is_made_shared_only_by_its_owner() {
    let relay = Relay::start();
    let (alex, sam, alex_person) = couple(&relay);
    alex.ok(&[
        "goal",
        "add",
        "Listen without interrupting",
        "--area",
        "empathy",
        "--mine",
    ]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    for d in [&alex, &sam] {
        assert!(
            d.ok(&["goal", "list"])
                .contains("Listen without interrupting  (Alex's goal)")
        );
    }
    // Sam's own client says no, and writes nothing.
    for owner in ["shared", "me"] {
        let run = sam.run(&["goal", "edit", "listen", "--owner", owner]);
        assert_eq!(run.code, 1, "{owner}: {}", run.stderr);
        assert!(
            run.stderr.contains("this goal is Alex's own"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(sam.json(&["status"])["spaces"][0]["pending_changes"], 0);
    // A hand-made change with Sam's own keys is refused by Alex's device; what Sam
    // writes after it waits behind it, and the sync says so instead of announcing it.
    let goal = alex.json(&["goal", "show", "listen"])["id"]
        .as_str()
        .expect("goal id")
        .to_string();
    {
        let mut dev = CoreDevice::open(&sam.home).expect("open Sam's device");
        dev.edit(SpaceKind::Shared, move |doc, _| {
            let edit = duet_core::doc::GoalEdit {
                owner: Some("shared".into()),
                ..Default::default()
            };
            Ok(((), doc.edit_goal(&goal, edit, 1)?.into_iter().collect()))
        })
        .expect("craft the change");
    }
    sam.ok(&["sync"]);
    sam.ok(&["reflect", "after the forged change"]);
    sam.ok(&["sync"]);
    let run = alex.run(&["sync"]);
    let said = format!("{}{}", run.ok(), run.stderr);
    assert!(said.contains("it changes whose goal"), "{said}");
    assert!(
        said.contains("1 change of device") && said.contains("waits"),
        "{said}"
    );
    assert!(!said.contains("1 reflection from Sam"), "{said}");
    // As the warning says, Sam goes on with a new device: what it writes arrives, and
    // is not said to wait.
    let sam2 = Device::new();
    let code = sam.json(&["device", "add"])["code"]
        .as_str()
        .expect("a device code")
        .to_string();
    sam2.ok(&["join", &code]);
    sam2.ok(&["reflect", "from a new device"]);
    sam2.ok(&["sync"]);
    let run = alex.run(&["sync"]);
    let said = format!("{}{}", run.ok(), run.stderr);
    assert!(
        said.contains("1 reflection from Sam") && !said.contains("waits"),
        "{said}"
    );
    let shown = alex.json(&["goal", "show", "listen"]);
    assert_eq!(shown["owner"], alex_person.as_str(), "{shown}");
    let report = alex.home.join("report.html");
    alex.ok(&["report", "--html", report.to_str().expect("path")]);
    let html = std::fs::read_to_string(&report).expect("report");
    assert!(
        html.contains("<bdi>Alex</bdi>'s own goal"),
        "the report says whose goal it is"
    );
    assert!(
        alex.ok(&["progress"])
            .contains("Listen without interrupting  (Alex's goal)")
    );
    // Alex makes it a goal of them both.
    alex.ok(&["goal", "edit", "listen", "--owner", "shared"]);
    assert!(
        alex.ok(&["history"])
            .contains("Alex made \"Listen without interrupting\" a goal of you both")
    );
    assert!(
        alex.ok(&["history"])
            .contains("Alex created goal \"Listen without interrupting\", their own")
    );
}

/// Sam's modified client signs `n` partner invites, stored to go out with the next sync.
fn sign_invites(sam: &Device, n: usize, first_seed: u64) {
    use duet_core::event::MembershipOp;
    let mut dev = CoreDevice::open(&sam.home).expect("open Sam's device");
    let expires_at = dev.now() + 3_600_000;
    for i in 0..n as u64 {
        let mut seed = [3u8; 32];
        seed[..8].copy_from_slice(&(first_seed + i).to_le_bytes());
        let op = MembershipOp::Invite {
            invite_key: duet_core::identity::keypair_from_seed(seed).1,
            expires_at,
            person: None,
        };
        dev.sign_membership(SpaceKind::Shared, &op)
            .expect("hand-made invite");
    }
}

#[test]
fn a_partner_who_spends_every_invite_leaves_the_other_free_to_add_a_device() {
    use duet_core::membership::MAX_INVITES_PER_PERSON;
    let relay = Relay::start_logged(&[]);
    let (alex, sam) = pair(&relay);
    let shared_invites = |d: &Device| {
        d.json(&["invite", "list"])
            .as_array()
            .expect("invites")
            .iter()
            .filter(|i| i["space"] == "shared")
            .count()
    };
    let had = shared_invites(&sam);
    // Sam spends all of Sam's own invites (accepted), then signs as many more as the
    // space held in all before invites were counted per person (1,024).
    sign_invites(&sam, MAX_INVITES_PER_PERSON, 0);
    sam.ok(&["sync"]);
    sign_invites(&sam, 1024 - had - MAX_INVITES_PER_PERSON, 10_000);
    let r = sam.run(&["sync"]);
    assert_ne!(r.code, 0, "the invites past Sam's own are refused: {r:?}");
    assert!(
        r.stderr.contains("as many as a person may ever make"),
        "{}",
        r.stderr
    );
    // A client's refusal, not the relay's failure: its log keeps ERROR for those (each
    // refused push was an ERROR line, which alerts an operator and hides real ones).
    for _ in 0..3 {
        let _ = sam.run(&["sync"]);
    }
    let log = relay.log();
    assert!(!log.contains("ERROR"), "{log}");
    assert!(log.contains("request refused"), "{log}");
    // Alex still adds a phone, and what Alex writes still reaches Sam.
    let code = alex.json(&["device", "add"])["code"]
        .as_str()
        .expect("a device code")
        .to_string();
    let phone = Device::new();
    phone.ok(&["join", &code]);
    phone.ok(&["goal", "add", "Written on the phone", "--area", "trust"]);
    phone.ok(&["sync"]);
    let _ = sam.run(&["sync"]);
    assert!(
        sam.ok(&["goal", "list"]).contains("Written on the phone"),
        "Sam still hears from Alex's devices"
    );
    // Sam's own next device code is refused in words, not printed as if it worked.
    let r = sam.run(&["device", "add"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        !r.stdout.contains("duet2"),
        "no code is shown: {}",
        r.stdout
    );
}
