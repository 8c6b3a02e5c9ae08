//! The couple's rituals through the real binaries and relay: rating blind (sealed until
//! both have rated, or the round closes; a forged reveal is refused), correcting a
//! rating, withdrawing a reflection, and answering one.

use duet_core::device::Device as CoreDevice;
use duet_core::model::Rating;
use duet_core::store::SpaceKind;
use duet_tests::{Device, Relay, pair};
use serde_json::Value;

const GOAL: &str = "Weekly check-in";

/// A paired couple with one goal both devices hold.
fn couple(relay: &Relay) -> (Device, Device) {
    let (alex, sam) = pair(relay);
    alex.ok(&["goal", "add", GOAL, "--area", "communication"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    (alex, sam)
}

/// The ratings of the shared space in `d`'s export, as (rater name, level, note).
fn ratings(d: &Device) -> Vec<(String, i64, Option<String>)> {
    let export = d.json(&["export"]);
    let shared = &export["shared"];
    let mut out: Vec<(String, i64, Option<String>)> = shared["ratings"]
        .as_array()
        .expect("ratings")
        .iter()
        .map(|r| {
            let rater = r["rater"].as_str().expect("rater");
            (
                shared["people"][rater]["name"]
                    .as_str()
                    .expect("name")
                    .to_string(),
                r["level"].as_i64().expect("level"),
                r["note"].as_str().map(str::to_string),
            )
        })
        .collect();
    out.sort();
    out
}

/// Every file under `dir`, recursively.
fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_blind_rating_reaches_the_partner_only_as_a_commitment_until_they_rate() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    let canary = "Canary-sealed-note-4e1d";
    let out = alex.ok(&["rate", GOAL, "-2", "--note", canary]);
    assert!(out.contains("sealed"), "{out}");
    // Alex's own report shows the sealed rating once, with its level, marked sealed.
    let report = alex.home.join("report.html");
    alex.ok(&["report", "--html", report.to_str().expect("path")]);
    let html = std::fs::read_to_string(&report).expect("the report");
    assert!(
        html.contains("sealed: not shown to the partner yet"),
        "{html}"
    );
    assert!(!html.contains("not revealed yet"), "listed twice: {html}");
    assert!(
        html.contains("“rated blind” marks a rating given first"),
        "{html}"
    );
    // Its latest level is that sealed rating, not one rated before it.
    assert!(
        html.contains("<bdi>Alex</bdi>: −2 (rated blind, not shown to the partner yet)")
            && !html.contains("rated blind since"),
        "{html}"
    );
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);

    // Sam's device holds that Alex rated, and nothing of what.
    let export = sam.json(&["export"]);
    assert_eq!(export["shared"]["sealed"].as_array().map(Vec::len), Some(1));
    assert!(ratings(&sam).is_empty(), "{:?}", ratings(&sam));
    for args in [
        &["progress", "--json"][..],
        &["history", "--json"],
        &["export", "--json"],
    ] {
        let out = sam.ok(args);
        assert!(
            !out.contains(canary),
            "`{}` shows the note: {out}",
            args.join(" ")
        );
        assert!(
            !out.contains("\"level\":-2") && !out.contains("\"level\": -2"),
            "{out}"
        );
    }
    for f in files(&sam.home) {
        assert!(
            !duet_tests::file_contains(&f, canary),
            "{} holds the sealed note",
            f.display()
        );
    }
    let progress = sam.ok(&["progress"]);
    assert!(
        progress.contains("Alex has rated; rate to see it"),
        "{progress}"
    );
    // Sam's report says so too: a rating, not "not rated", and no level.
    let report = sam.home.join("report.html");
    sam.ok(&["report", "--html", report.to_str().expect("path")]);
    let html = std::fs::read_to_string(&report).expect("the report");
    assert!(
        html.contains("<bdi>Alex</bdi>: rated blind, not revealed yet")
            && !html.contains("<bdi>Alex</bdi>: not rated"),
        "{html}"
    );

    // Sam rates: in the clear (Alex is committed); Alex's device reveals on its sync.
    let out = sam.ok(&["rate", GOAL, "1", "--note", "Sam's view"]);
    assert!(!out.contains("sealed"), "{out}");
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    let both = vec![
        ("Alex".to_string(), -2, Some(canary.to_string())),
        ("Sam".to_string(), 1, Some("Sam's view".to_string())),
    ];
    assert_eq!(ratings(&alex), both);
    assert_eq!(ratings(&sam), both);
    let history = sam.ok(&["history"]);
    assert!(
        history.contains("blind rating of \"Weekly check-in\" was revealed"),
        "{history}"
    );
}

#[test]
fn a_rating_that_answers_a_blind_one_opens_it_though_an_older_round_ends_first() {
    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["goal", "add", "Weekly talk", "--area", "communication"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    let t0 = duet_core::ids::now_ms() - 30 * DAY;
    let run = |d: &Device, args: &[&str], ms: i64| d.ok_env(args, &[("DUET_NOW", &ms.to_string())]);
    // Apart, each opens a round: Sam's ends two hours before Alex's.
    run(&sam, &["rate", "talk", "1"], t0);
    run(
        &alex,
        &["rate", GOAL, "-1", "--note", "Alex, blind"],
        t0 + 2 * HOUR,
    );
    for d in [&alex, &sam, &alex] {
        run(d, &["sync"], t0 + 3 * HOUR);
    }
    // Sam answers Alex's blind rating three days on: in the clear. (On the round's last
    // day it would be the next check-in's rating: `a_skipped_week_…` below.)
    let out = run(&sam, &["rate", GOAL, "2"], t0 + 3 * DAY);
    assert!(!out.contains("sealed"), "{out}");
    run(&sam, &["sync"], t0 + 3 * DAY);
    // Alex's device brings Sam's rating after Sam's round ended, before its own did:
    // Alex sees Sam's level, so Alex's opens too (it stayed sealed, and Alex could still
    // correct it unseen).
    let after = t0 + 7 * DAY + MINUTE;
    run(&alex, &["sync"], after);
    run(&sam, &["sync"], after);
    let both = vec![
        ("Alex".to_string(), -1, Some("Alex, blind".to_string())),
        ("Sam".to_string(), 2, None),
    ];
    // (Sam's rating of the talk, level 1, aside.)
    let of_goal = |d: &Device| {
        let mut r = ratings(d);
        r.retain(|(_, level, _)| *level != 1);
        r
    };
    assert_eq!(of_goal(&alex), both);
    assert_eq!(of_goal(&sam), both);
}

#[test]
fn a_partner_who_has_answered_a_blind_rating_is_told_it_opens_when_the_rater_syncs() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["rate", GOAL, "-1"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    // Alex sees their own blind rating as theirs, never as someone else's to wait for.
    let show = alex.ok(&["goal", "show", GOAL]);
    assert!(
        show.contains("(blind: sealed until your partner rates too)"),
        "{show}"
    );
    // Once, on the rating's own line.
    assert_eq!(show.matches("sealed until").count(), 1, "{show}");
    assert!(!show.contains("rate to see it"), "{show}");
    // Before Sam rates: rating is what opens it, and nothing can be scored yet.
    let progress = sam.ok(&["progress"]);
    assert!(
        progress.contains("Alex has rated; rate to see it"),
        "{progress}"
    );
    assert!(
        progress.contains("No T-score yet: a sealed rating counts once it is revealed"),
        "{progress}"
    );
    assert_eq!(opening(&sam), Some(false));

    // Sam rates, and has not synced yet: only Alex's device can open the seal now.
    sam.ok(&["rate", GOAL, "1"]);
    let progress = sam.ok(&["progress"]);
    assert!(
        progress.contains("Alex has rated; shown once Alex's device syncs"),
        "{progress}"
    );
    assert!(!progress.contains("rate to see it"), "{progress}");
    assert_eq!(opening(&sam), Some(true));
    let show = sam.ok(&["goal", "show", GOAL]);
    assert!(
        show.contains("Alex has rated blind: shown once Alex's device syncs"),
        "{show}"
    );
    // The sealed rating's line carries its time, as a rating's does ("YYYY-MM-DD HH:MM").
    let line = show
        .lines()
        .find(|l| l.contains("Alex has rated blind"))
        .expect("the sealed line");
    assert_eq!(
        line.trim_start().split("  ").next().map(str::len),
        Some(16),
        "{line}"
    );
    let checkin = sam
        .run_with_stdin(&["checkin"], Some("\n"))
        .ok()
        .to_string();
    assert!(
        checkin.contains("you have both rated it in this check-in"),
        "{checkin}"
    );
    assert!(!checkin.contains("rate to see theirs"), "{checkin}");

    // Once Alex's device has synced and Sam's has fetched the reveal, nothing waits.
    for d in [&sam, &alex, &sam] {
        d.ok(&["sync"]);
    }
    let progress = sam.ok(&["progress"]);
    assert!(!progress.contains("has rated;"), "{progress}");
    assert_eq!(opening(&sam), Some(false));
    // Alex's device revealed in its sync: its progress counts both, as Sam's does.
    assert_eq!(
        alex.json(&["progress"])["goals"],
        sam.json(&["progress"])["goals"]
    );
}

/// Whether `d`'s `progress --json` says Alex's sealed rating opens at Alex's next sync.
fn opening(d: &Device) -> Option<bool> {
    let p = d.json(&["progress"]);
    let alex = p["goals"][0]["partners"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == "Alex")?
        .clone();
    alex["opening"].as_bool()
}

#[test]
fn a_revealed_rating_that_does_not_match_its_commitment_is_refused() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["rate", GOAL, "-2", "--note", "honest"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    // Alex's modified client sees Sam's +2 coming and "reveals" +2 with the real salt.
    {
        let mut dev = CoreDevice::open(&alex.home).expect("open Alex's device");
        let key = dev
            .store()
            .space(SpaceKind::Personal)
            .expect("personal space")
            .key;
        let view = dev.raw_view(SpaceKind::Shared).expect("view");
        let seal = view.seals.first().expect("the seal").clone();
        let inside = duet_core::seal::open_box(&key, &seal.id, &seal.sealed).expect("open");
        let forged = Rating {
            id: duet_core::ids::new_id(),
            goal: seal.goal.clone(),
            rater: seal.rater.clone(),
            at: seal.at,
            level: duet_core::Level::MUCH_MORE,
            note: Some("honest".into()),
            round: Some(seal.round.clone()),
            reveals: Some(seal.id.clone()),
            salt: Some(inside.salt),
            corrects: None,
            withdrawn: None,
        };
        dev.edit(SpaceKind::Shared, |doc, _| {
            let c = doc.put_rating(&forged, "reveal", seal.at + 1)?;
            Ok(((), c.into_iter().collect()))
        })
        .expect("forge");
    }
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    assert!(ratings(&sam).is_empty(), "{:?}", ratings(&sam));
    let refused: Vec<Value> = sam
        .history()
        .into_iter()
        .filter(|e| e["kind"] == "change_refused")
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    let reason = refused[0]["after"].as_str().unwrap_or_default();
    assert!(reason.contains("other than was sealed"), "{reason}");
}

#[test]
fn a_round_closed_by_the_partner_reveals_a_lone_rating() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["rate", GOAL, "1", "--note", "alone"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    let out = sam.ok(&["checkin", "--close"]);
    assert!(
        out.contains("Closed") && out.contains("Your partner's sealed ratings open"),
        "{out}"
    );
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    assert_eq!(
        ratings(&sam),
        vec![("Alex".to_string(), 1, Some("alone".to_string()))]
    );
}

/// A round both rated (every rating revealed) closed: nothing is said to open later
/// (it spoke of the partner's sealed ratings to come, of which there were none).
#[test]
fn a_round_closed_with_every_rating_revealed_speaks_of_nothing_to_open() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["rate", GOAL, "1"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    sam.ok(&["rate", GOAL, "0"]);
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    let out = alex.ok(&["checkin", "--close"]);
    assert!(
        out.contains("nothing in it was still sealed") && !out.contains("open when"),
        "{out}"
    );
}

/// Both partners close the same round while apart: the document keeps one close, and
/// so does the history (it showed the round closed twice).
#[test]
fn a_round_closed_by_both_partners_apart_shows_one_close() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["rate", GOAL, "1"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    alex.ok(&["checkin", "--close"]);
    sam.ok(&["checkin", "--close"]);
    for d in [&alex, &sam, &alex] {
        d.ok(&["sync"]);
    }
    for d in [&alex, &sam] {
        let history = d.ok(&["history"]);
        assert_eq!(
            history.matches("closed the check-in round").count(),
            1,
            "{history}"
        );
    }
    assert_eq!(
        alex.ok(&["history"])
            .lines()
            .filter(|l| l.contains("closed the check-in"))
            .collect::<Vec<_>>(),
        sam.ok(&["history"])
            .lines()
            .filter(|l| l.contains("closed the check-in"))
            .collect::<Vec<_>>(),
        "both show the same close"
    );
}

/// A partner who closes a round without having rated has seen the other's blind rating
/// when it opens: their own rating of that goal afterwards is in the clear (sealed, it
/// would ask the partner to rate again to see an answer to a rating they gave already).
/// The next one is blind again.
#[test]
fn a_rating_made_after_closing_a_round_that_revealed_the_partners_is_in_the_clear() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    sam.ok(&["rate", GOAL, "-2", "--note", "still hurt"]);
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    alex.ok(&["checkin", "--close"]);
    for d in [&alex, &sam, &alex] {
        d.ok(&["sync"]);
    }
    let seen = ("Sam".to_string(), -2, Some("still hurt".to_string()));
    assert!(ratings(&alex).contains(&seen), "{:?}", ratings(&alex));
    let out = alex.ok(&["rate", GOAL, "-1"]);
    assert!(!out.contains("sealed"), "{out}");
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    assert!(
        ratings(&sam).contains(&("Alex".to_string(), -1, None)),
        "{:?}",
        ratings(&sam)
    );
    let next = alex.ok(&["rate", GOAL, "0"]);
    assert!(next.contains("sealed"), "{next}");
}

/// The answer to a rating seen through a close, taken back with `undo` and given again:
/// still in the clear (the withdrawn answer counted as rated, so the new one was sealed
/// for a week, and the partner had to rate again to see it).
#[test]
fn an_answer_taken_back_and_given_again_after_a_close_stays_in_the_clear() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["rate", GOAL, "1"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    sam.ok(&["checkin", "--close"]);
    for d in [&sam, &alex, &sam] {
        d.ok(&["sync"]);
    }
    let slip = sam.ok(&["rate", GOAL, "0"]);
    assert!(!slip.contains("sealed"), "{slip}");
    sam.ok(&["undo"]);
    let again = sam.ok(&["rate", GOAL, "-1"]);
    assert!(!again.contains("sealed"), "{again}");
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    assert!(
        ratings(&alex).contains(&("Sam".to_string(), -1, None)),
        "seen without rating again: {:?}",
        ratings(&alex)
    );
}

/// The other side of a close: Sam rates blind and closes the round at once, which shows
/// Sam's rating to Alex. Alex's rating of that goal then cannot be blind either: it is
/// made in the clear, in that round, and Sam's check-in does not ask Sam to rate again
/// to see it (it was sealed in a new round, and did).
#[test]
fn a_rating_made_after_the_partner_closed_a_round_showing_theirs_is_in_the_clear() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    sam.ok(&["rate", GOAL, "2"]);
    sam.ok(&["checkin", "--close"]);
    for d in [&sam, &alex] {
        d.ok(&["sync"]);
    }
    assert!(ratings(&alex).contains(&("Sam".to_string(), 2, None)));
    let out = alex.ok(&["rate", GOAL, "1"]);
    assert!(!out.contains("sealed"), "{out}");
    for d in [&alex, &sam] {
        d.ok(&["sync"]);
    }
    assert!(ratings(&sam).contains(&("Alex".to_string(), 1, None)));
    let plan = sam.run_full(&["checkin"], Some("\n"), &[]).ok().to_string();
    assert!(!plan.contains("rate to see theirs"), "{plan}");
}

/// Once the partner has left, there is no one to rate blind against: a rating is in the
/// clear at once.
#[test]
fn after_the_partner_left_a_rating_is_not_sealed() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    let export = sam.home.join("mine.json");
    sam.ok(&["leave", "--yes", "--export", export.to_str().expect("path")]);
    alex.ok(&["sync"]);
    let out = alex.ok(&["rate", GOAL, "1"]);
    assert!(!out.contains("sealed"), "{out}");
    assert_eq!(
        alex.json(&["export"])["shared"]["sealed"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    assert_eq!(ratings(&alex), vec![("Alex".to_string(), 1, None)]);
}

#[test]
fn a_blind_rating_corrected_before_the_partner_rates_is_a_correction_in_both_histories() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["rate", GOAL, "-1"]);
    alex.ok(&["rate", GOAL, "1", "--amend", "--note", "meant +1"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    for d in [&alex, &sam] {
        let history = d.ok(&["history"]);
        assert_eq!(
            history.matches("rated \"Weekly check-in\" blind").count(),
            1,
            "{history}"
        );
        assert!(
            history.contains("Alex corrected their blind rating of \"Weekly check-in\""),
            "{history}"
        );
    }
    // Alex's export says Sam has not seen it yet (handed on, it read as seen).
    let export = alex.ok(&["export"]);
    assert!(
        export.contains("sealed: not shown to the partner yet"),
        "{export}"
    );
    assert!(
        !sam.ok(&["export"]).contains("rated +1"),
        "nothing of it on Sam's side"
    );
    // Sam rates; Alex's device reveals the correction, and only it counts.
    sam.ok(&["rate", GOAL, "0"]);
    for d in [&sam, &alex, &sam] {
        d.ok(&["sync"]);
    }
    assert_eq!(
        ratings(&sam),
        vec![
            ("Alex".to_string(), 1, Some("meant +1".to_string())),
            ("Sam".to_string(), 0, None)
        ]
    );
    // The reveal reads as one, not as a second correction made after Sam's answer.
    for d in [&alex, &sam] {
        let history = d.ok(&["history"]);
        assert_eq!(history.matches("corrected").count(), 1, "{history}");
        assert!(
            history.contains("Alex's blind rating of \"Weekly check-in\" was revealed: +1"),
            "{history}"
        );
    }
}

#[test]
fn a_correction_undone_after_the_partner_rated_opens_the_rating_it_brings_back() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["rate", GOAL, "1", "--note", "first"]);
    alex.ok(&["rate", GOAL, "2", "--amend", "--note", "amended"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    sam.ok(&["rate", GOAL, "0"]);
    for d in [&sam, &alex, &sam] {
        d.ok(&["sync"]);
    }
    // Undoing the correction brings the first rating back: Sam has rated, so it opens
    // at once, not "sealed until your partner rates too" until the next sync.
    alex.ok(&["undo"]);
    let shown = alex.ok(&["goal", "show", GOAL]);
    assert!(!shown.contains("sealed until"), "{shown}");
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    assert_eq!(
        ratings(&sam),
        vec![
            ("Alex".to_string(), 1, Some("first".to_string())),
            ("Sam".to_string(), 0, None)
        ]
    );
}

#[test]
fn a_corrected_rating_and_a_withdrawn_reflection_leave_every_view_on_both_sides() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    let rate = format!("{GOAL}=-1");
    let note = format!("{GOAL}=typo");
    alex.ok(&["checkin", "--rate", &rate, "--note", &note]);
    alex.ok(&["checkin", "--close"]);
    let withdrawn = "Canary-withdrawn-reflection-9b2c";
    let id = alex.json(&["reflect", "--goal", GOAL, withdrawn])["id"]
        .as_str()
        .expect("id")
        .to_string();
    alex.ok(&["rate", GOAL, "1", "--amend", "--note", "meant +1"]);
    alex.ok(&["reflect", "--withdraw", &id[..8]]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    for d in [&alex, &sam] {
        assert_eq!(
            ratings(d),
            vec![("Alex".to_string(), 1, Some("meant +1".to_string()))]
        );
        let progress = d.json(&["progress"]);
        assert!(progress.to_string().contains("\"latest\":1"), "{progress}");
        for args in [&["export", "--json"][..], &["reflections", "--json"]] {
            let out = d.ok(args);
            assert!(!out.contains(withdrawn), "{out}");
        }
        let report = d.home.join("report.html");
        d.ok(&["report", "--html", report.to_str().expect("path")]);
        let html = std::fs::read_to_string(&report).expect("report");
        assert!(!html.contains(withdrawn), "the report shows withdrawn text");
        assert!(
            html.contains("<td dir=\"auto\">meant +1</td><td class=\"marks\">corrected")
                && !html.contains(">typo</td>"),
            "the report shows the corrected rating, marked, and not the mistake"
        );
        let history = d.ok(&["history"]);
        assert!(history.contains("corrected their rating"), "{history}");
        assert!(history.contains("withdrew a reflection"), "{history}");
    }
    // The withdrawal is Alex's latest act: `undo` takes back nothing older in its place.
    let refused = alex.run(&["undo"]);
    assert!(
        refused.code != 0 && refused.stderr.contains("a withdrawal cannot be taken back"),
        "{refused:?}"
    );
    assert!(
        alex.json(&["progress"])
            .to_string()
            .contains("\"latest\":1")
    );
}

#[test]
fn partners_answer_each_others_reflections() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["goal", "add", "Run more", "--area", "other", "--mine"]);
    alex.ok(&["reflect", "--goal", GOAL, "How did Sunday feel to you?"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    let listed = sam.json(&["reflections"]);
    let id = listed[0]["id"].as_str().expect("id").to_string();
    assert_eq!(listed[0]["author_name"], "Alex");
    assert_eq!(listed[0]["goal_title"], GOAL);
    sam.ok(&["reflect", "--reply", &id[..8], "Calmer than last time."]);
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    for d in [&alex, &sam] {
        let listed = d.json(&["reflections", "--goal", GOAL]);
        assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
        assert_eq!(listed[0]["replies"][0]["text"], "Calmer than last time.");
        assert_eq!(listed[0]["replies"][0]["author_name"], "Sam");
        let text = d.ok(&["reflections"]);
        assert!(
            text.contains("How did Sunday feel") && text.contains("Calmer"),
            "{text}"
        );
        let full = d.ok(&["history", "--full"]);
        assert!(
            full.contains("Calmer than last time."),
            "history --full shows the text: {full}"
        );
        assert!(!d.ok(&["history"]).contains("Calmer than last time."));
        // The text export keeps who answered whom (the reply stood alone, as if it
        // were a reflection of its own).
        let export = d.ok(&["export"]);
        assert!(
            export.contains("## Run more [other; active; Alex's goal]"),
            "{export}"
        );
        assert!(
            export.contains("Alex on \"Weekly check-in\": How did Sunday feel"),
            "what it is about: {export}"
        );
        let asked = export.find("How did Sunday feel").expect("the reflection");
        let answered = export.find("↳ ").expect("its reply, marked as one");
        assert!(
            answered > asked && export[answered..].contains("Sam: Calmer than last time."),
            "{export}"
        );
    }
    // Only the author may edit or withdraw.
    let err = sam.run(&["reflect", "--withdraw", &id[..8]]);
    assert_ne!(err.code, 0);
    assert!(err.stderr.contains("only its author"), "{}", err.stderr);
    assert!(
        err.stderr.contains(&format!(
            "answer it with `duet reflect --reply {}",
            &id[..8]
        )),
        "{}",
        err.stderr
    );
    // Alex withdraws it: Sam's answer stands, and says what it answered is gone.
    alex.ok(&["reflect", "--withdraw", &id[..8]]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    for d in [&alex, &sam] {
        let listed = d.json(&["reflections"]);
        assert_eq!(listed[0]["text"], "Calmer than last time.", "{listed}");
        assert_eq!(listed[0]["answers_withdrawn"], true, "{listed}");
        let text = d.ok(&["reflections"]);
        assert!(
            text.contains("(a reply to a reflection that was withdrawn)"),
            "{text}"
        );
        let export = d.ok(&["export"]);
        assert!(
            export.contains("(a reply to a reflection that was withdrawn)"),
            "{export}"
        );
    }
    // That reply has no thread left to answer in: no reply form, and no reply to it.
    let orphan = alex.json(&["reflections"])[0]["id"]
        .as_str()
        .expect("its id")
        .to_string();
    let app = duet_tests::app::App::start(&alex);
    let page = app.get("/reflections").body;
    assert!(
        !page.contains(&format!("/reflections/{orphan}/reply")),
        "{page}"
    );
    drop(app);
    let refused = alex.run(&["reflect", "--reply", &orphan[..8], "And more"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused
            .stderr
            .contains("answers a reflection its author has withdrawn"),
        "{}",
        refused.stderr
    );
    // Sam takes his reply back: the history says a reply was withdrawn, not a reflection.
    sam.ok(&["reflect", "--withdraw", "last"]);
    let history = sam.ok(&["history"]);
    assert!(history.contains("Sam withdrew a reply"), "{history}");
}

#[test]
fn partners_who_both_rate_blind_while_apart_see_both_once_their_devices_have_synced() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    // Both open a round and seal a rating while apart (two `seals` maps are made).
    alex.ok(&["rate", GOAL, "0", "--note", "from Alex"]);
    sam.ok(&["rate", GOAL, "-1", "--note", "from Sam"]);
    // Sam sends; Alex learns Sam rated and reveals; Sam reveals; Alex gets it.
    for d in [&sam, &alex, &sam, &alex] {
        d.ok(&["sync"]);
    }
    let both = vec![
        ("Alex".to_string(), 0, Some("from Alex".to_string())),
        ("Sam".to_string(), -1, Some("from Sam".to_string())),
    ];
    assert_eq!(ratings(&alex), both);
    assert_eq!(ratings(&sam), both);
    for d in [&alex, &sam] {
        assert_eq!(
            d.json(&["export"])["shared"]["sealed"]
                .as_array()
                .map(Vec::len),
            Some(0),
            "nothing stays sealed"
        );
    }
    // The two rounds opened apart are closed by one close, which history shows once.
    alex.ok(&["checkin", "--close"]);
    let history = alex.ok(&["history"]);
    assert_eq!(
        history.matches("closed the check-in round").count(),
        1,
        "{history}"
    );
}

/// Whether `d` sees a rating of `level` (the partner's, once revealed or answered).
fn sees_level(d: &Device, level: i64) -> bool {
    ratings(d).iter().any(|(_, l, _)| *l == level)
}

#[test]
fn a_rating_after_both_rated_apart_is_blind_again_until_the_partner_answers() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["rate", GOAL, "0"]);
    sam.ok(&["rate", GOAL, "-1"]);
    for d in [&sam, &alex, &sam, &alex] {
        d.ok(&["sync"]);
    }
    // Both rated while apart, each in a round of their own: that check-in is complete,
    // and Alex's next rating of the goal is blind again, though both rounds are open.
    let out = alex.ok(&["rate", GOAL, "2"]);
    assert!(out.contains("sealed"), "{out}");
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    assert!(
        !sees_level(&sam, 2),
        "Sam sees Alex's new level before rating"
    );
    let plan = sam.run_full(&["checkin"], Some("\n"), &[]).ok().to_string();
    assert!(plan.contains("rate to see theirs"), "{plan}");
    let out = sam.ok(&["rate", GOAL, "1"]);
    assert!(!out.contains("sealed"), "{out}");
    for d in [&sam, &alex, &sam] {
        d.ok(&["sync"]);
    }
    assert!(sees_level(&sam, 2) && sees_level(&alex, 1));
}

#[test]
fn a_rating_made_before_the_partner_revealed_their_apart_seal_is_blind_too() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["rate", GOAL, "0"]);
    sam.ok(&["rate", GOAL, "-1"]);
    sam.ok(&["sync"]);
    // Alex learns of Sam's seal (not yet revealed: Sam has not synced since) and rates
    // again: Sam's seal was answered by Alex's first, not by this one.
    alex.ok(&["sync"]);
    let out = alex.ok(&["rate", GOAL, "2"]);
    assert!(out.contains("sealed"), "{out}");
    for d in [&alex, &sam, &alex, &sam] {
        d.ok(&["sync"]);
    }
    assert!(
        sees_level(&sam, 0) && sees_level(&alex, -1),
        "the first two open"
    );
    assert!(
        !sees_level(&sam, 2),
        "Sam sees Alex's new level before rating"
    );
}

#[test]
fn a_checkin_walks_the_goals_and_takes_answers_from_the_terminal_or_a_pipe() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&[
        "goal",
        "add",
        GOAL,
        "--area",
        "communication",
        "--expected",
        "We talk every Sunday",
    ]);
    d.ok(&["goal", "add", "Date night", "--area", "quality-time"]);
    // Level 1 with a note for the first goal; the second is skipped (an empty line).
    let run = d.run_with_stdin(&["checkin"], Some("1\nTwo good talks\n\n"));
    let out = run.ok();
    // The expected outcome is 0 (as every other view says), not "+0".
    assert!(
        out.contains("   0  We talk every Sunday"),
        "the level texts are shown: {out}"
    );
    assert!(run.stderr.contains("Your level"), "{}", run.stderr);
    let export = d.json(&["export"]);
    let rated = export["shared"]["ratings"].as_array().expect("ratings");
    assert_eq!(rated.len(), 1, "{rated:?}");
    assert_eq!(rated[0]["level"], 1);
    assert_eq!(rated[0]["note"], "Two good talks");
    // With --json, the prompts are JSON lines on stderr too.
    let run = d.run_with_stdin(&["checkin", "--json"], Some("\n\n\n\n"));
    assert_eq!(run.code, 0, "{run:?}");
    for line in run.stderr.lines() {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "not JSON: {line:?}"
        );
    }
    assert!(run.stderr.contains("Your level"), "{}", run.stderr);

    // A wrong level piped in cannot be asked again: it stops the check-in, so that the
    // answers after it never land on the wrong goals.
    let wrong = d.run_with_stdin(
        &["checkin"],
        Some(
            "5
-2


",
        ),
    );
    assert_eq!(wrong.code, 2, "{wrong:?}");
    assert!(
        wrong.stderr.contains("nothing was rated"),
        "{}",
        wrong.stderr
    );
    assert!(
        wrong.stderr.contains("two lines per active goal"),
        "{}",
        wrong.stderr
    );
    let export = d.json(&["export"]);
    assert_eq!(
        export["shared"]["ratings"].as_array().map(Vec::len),
        Some(1)
    );
}

#[test]
fn a_completed_step_is_reopened_and_undo_takes_back_the_latest_act() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", GOAL, "--area", "communication"]);
    d.ok(&["step", "add", GOAL, "Set an alarm"]);
    d.ok(&["step", "done", GOAL, "alarm"]);
    d.ok(&["step", "reopen", GOAL, "alarm"]);
    let done = |d: &Device| d.json(&["export"])["shared"]["goals"][0]["steps"][0]["done"].clone();
    assert_eq!(done(&d), false);
    d.ok(&["step", "done", GOAL, "alarm"]);
    let undone = d.json(&["undo"]);
    assert_eq!(undone["undid"], "step");
    assert_eq!(undone["text"], "Set an alarm", "{undone}");
    assert_eq!(undone["title"], GOAL, "{undone}");
    assert_eq!(done(&d), false);
    let history = d.ok(&["history"]);
    assert!(
        history.contains("reopened step \"Set an alarm\""),
        "{history}"
    );
    // A reflection written after it is the latest act: undo withdraws it.
    d.ok(&["reflect", "Canary-undo-7c1d"]);
    assert_eq!(d.json(&["undo"])["undid"], "reflection");
    assert!(!d.ok(&["export", "--json"]).contains("Canary-undo-7c1d"));
    assert!(
        d.ok(&["history", "--full"])
            .contains("withdrew a reflection")
    );
    // A private reflection written after a shared one is the latest act: undo takes it
    // back, names it, and leaves the shared one (which the partner may have answered).
    d.ok(&["reflect", "Shared-canary-4b8"]);
    d.ok(&["reflect", "--private", "Private-canary-9e2"]);
    let undone = d.ok(&["undo"]);
    assert!(
        undone.contains("private reflection") && undone.contains("Private-canary-9e2"),
        "{undone}"
    );
    assert!(d.ok(&["reflections"]).contains("Shared-canary-4b8"));
    assert!(
        !d.ok(&["reflections", "--private"])
            .contains("Private-canary-9e2")
    );
}

#[test]
fn a_rating_taken_back_before_it_was_sent_does_not_open_the_partners_seal() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["rate", GOAL, "1"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);

    // Sam rates (in the clear: Alex is committed), thinks better of it and undoes it
    // before any sync: Alex's seal must stay shut, or rating and undoing would be a way
    // to see the other's level without giving one.
    sam.ok(&["rate", GOAL, "-1"]);
    // Made in the clear, the level still reaches Alex's history, withdrawn: said so.
    let undone = sam.ok(&["undo"]);
    assert!(undone.contains("keeps it, level and all"), "{undone}");
    for d in [&sam, &alex, &sam] {
        d.ok(&["sync"]);
    }
    assert!(ratings(&sam).is_empty(), "{:?}", ratings(&sam));
    let progress = sam.ok(&["progress"]);
    assert!(
        progress.contains("Alex has rated; rate to see it"),
        "{progress}"
    );

    // Rating for good opens it, as always.
    sam.ok(&["rate", GOAL, "0"]);
    for d in [&sam, &alex, &sam] {
        d.ok(&["sync"]);
    }
    let both = vec![("Alex".to_string(), 1, None), ("Sam".to_string(), 0, None)];
    assert_eq!(ratings(&sam), both);
}

/// Leaving reveals the leaver's blind ratings first (packaged ahead of the leave, which
/// ends their writing), and the partner who stays reveals theirs once the other is gone:
/// no rating waits for someone who is not coming back.
#[test]
fn blind_ratings_made_before_a_leave_are_revealed_on_both_sides() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["goal", "add", "Sunday walk", "--area", "quality-time"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    assert!(alex.ok(&["rate", GOAL, "1"]).contains("sealed"));
    alex.ok(&["sync"]);
    assert!(sam.ok(&["rate", "sunday", "2"]).contains("sealed"));
    let export = sam.home.join("mine.json");
    sam.ok(&["leave", "--yes", "--export", export.to_str().expect("path")]);

    alex.ok(&["sync"]);
    let mut got = ratings(&alex);
    got.sort();
    assert_eq!(
        got,
        vec![("Alex".to_string(), 1, None), ("Sam".to_string(), 2, None)]
    );
    let progress = alex.ok(&["progress"]);
    assert!(!progress.contains("sealed"), "{progress}");
    assert!(!progress.contains("rate to see it"), "{progress}");
}

/// A partner removed while their blind rating is sealed never reveals it: the one who
/// stays is told it stays sealed (not to rate to see it), and their own is revealed.
#[test]
fn a_blind_rating_of_a_partner_no_longer_there_is_said_to_stay_sealed() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["goal", "add", "Sunday walk", "--area", "quality-time"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    assert!(alex.ok(&["rate", "sunday", "-1"]).contains("sealed"));
    assert!(sam.ok(&["rate", GOAL, "2"]).contains("sealed"));
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    let devices = alex.json(&["device", "list"]);
    let sams = devices
        .as_array()
        .and_then(|d| d.iter().find(|r| r["name"] == "Sam"))
        .and_then(|r| r["device"].as_str())
        .expect("Sam's device")
        .to_string();
    alex.ok(&["device", "remove", &sams, "--yes"]);
    alex.ok(&["sync"]);

    let progress = alex.ok(&["progress"]);
    assert!(
        progress.contains("Sam is no longer in the shared space: their blind rating stays sealed"),
        "{progress}"
    );
    assert!(!progress.contains("rate to see it"), "{progress}");
    assert_eq!(ratings(&alex), vec![("Alex".to_string(), -1, None)]);
    let shown = alex.ok(&["goal", "show", GOAL]);
    assert!(
        shown.contains("is no longer in the shared space"),
        "{shown}"
    );
}

const HOUR: i64 = 60 * 60_000;
const DAY: i64 = 24 * HOUR;

/// Runs `args` on `d` with its clock at `ms`.
fn at(d: &Device, args: &[&str], ms: i64) -> String {
    d.ok_env(args, &[("DUET_NOW", &ms.to_string())])
}

/// What `d`'s export still holds sealed.
fn sealed_count(d: &Device) -> Option<usize> {
    d.json(&["export"])["shared"]["sealed"]
        .as_array()
        .map(Vec::len)
}

#[test]
fn blind_ratings_made_apart_open_together_though_one_round_ended_before_they_met() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    let t0 = duet_core::ids::now_ms() - 30 * DAY;
    // Alex rates blind and stays offline; three days later Sam, who has not seen it,
    // rates blind too: two rounds, Alex's ending first.
    at(&alex, &["rate", GOAL, "2"], t0);
    at(
        &sam,
        &["rate", GOAL, "-1", "--note", "Sam, blind"],
        t0 + 3 * DAY,
    );
    // They meet after Alex's round ended and before Sam's did.
    for d in [&alex, &sam, &alex, &sam] {
        at(d, &["sync"], t0 + 8 * DAY);
    }
    // Sam sees Alex's level, so Sam's is shown too: not left sealed, open to a
    // correction Alex would take for a blind rating.
    let both = vec![
        ("Alex".to_string(), 2, None),
        ("Sam".to_string(), -1, Some("Sam, blind".to_string())),
    ];
    assert_eq!(ratings(&alex), both);
    assert_eq!(ratings(&sam), both);
    assert_eq!(sealed_count(&sam), Some(0));
}

#[test]
fn a_weekly_checkin_that_starts_before_last_weeks_round_ends_is_blind_again() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    let t0 = duet_core::ids::now_ms() - 30 * DAY;
    at(&alex, &["rate", GOAL, "1"], t0);
    at(&alex, &["sync"], t0);
    at(&sam, &["sync"], t0 + HOUR);
    at(&sam, &["rate", GOAL, "0"], t0 + HOUR);
    at(&sam, &["sync"], t0 + HOUR);
    at(&alex, &["sync"], t0 + 2 * HOUR);
    at(&sam, &["sync"], t0 + 2 * HOUR);
    // A week later, an hour earlier by the clock (a change to summer time): last week's
    // round is still open for that hour, and both rated in it.
    let next = t0 + 7 * DAY - HOUR;
    let out = at(&alex, &["rate", GOAL, "-2"], next);
    assert!(out.contains("sealed"), "{out}");
    at(&alex, &["sync"], next);
    at(&sam, &["sync"], next);
    let seen = |d: &Device| ratings(d).iter().any(|(_, level, _)| *level == -2);
    assert!(!seen(&sam), "Sam sees Alex's new level before rating");
    let clock = next.to_string();
    let plan = sam
        .run_full(&["checkin"], Some("\n"), &[("DUET_NOW", &clock)])
        .ok()
        .to_string();
    assert!(plan.contains("rate to see theirs"), "{plan}");
    // Sam's answer is in the clear, and opens Alex's.
    let out = at(&sam, &["rate", GOAL, "1"], next + 60_000);
    assert!(!out.contains("sealed"), "{out}");
    for d in [&sam, &alex, &sam] {
        at(d, &["sync"], next + 60_000);
    }
    assert!(seen(&sam));
}

#[test]
fn a_weekly_rating_made_before_the_partners_reveal_arrived_is_blind_again() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    let t0 = duet_core::ids::now_ms() - 30 * DAY;
    at(&alex, &["rate", GOAL, "-1"], t0);
    at(&alex, &["sync"], t0);
    at(&sam, &["sync"], t0 + HOUR);
    at(&sam, &["rate", GOAL, "0"], t0 + HOUR);
    at(&sam, &["sync"], t0 + HOUR);
    // Alex's device reveals; Sam's does not hear of it before next week's rating.
    at(&alex, &["sync"], t0 + 2 * HOUR);
    let next = t0 + 7 * DAY - HOUR;
    let out = at(&sam, &["rate", GOAL, "2", "--note", "great week"], next);
    assert!(
        out.contains("sealed"),
        "Sam answered last week already: {out}"
    );
    at(&sam, &["sync"], next);
    at(&alex, &["sync"], next + 60_000);
    let seen = |d: &Device| ratings(d).iter().any(|(_, level, _)| *level == 2);
    assert!(!seen(&alex), "Alex sees Sam's new level before rating");
    // Alex's answer is in the clear and opens Sam's.
    let out = at(&alex, &["rate", GOAL, "1"], next + 120_000);
    assert!(!out.contains("sealed"), "{out}");
    for d in [&alex, &sam, &alex] {
        at(d, &["sync"], next + 120_000);
    }
    assert!(seen(&alex));
}

#[test]
fn a_round_dated_a_year_ahead_by_a_wrong_clock_does_not_end_blind_checkins() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    let now = duet_core::ids::now_ms();
    // Alex's clock is a year ahead for one rating, then set right.
    at(&alex, &["rate", GOAL, "1"], now + 365 * DAY);
    at(&alex, &["sync"], now);
    at(&sam, &["sync"], now);
    // Sam's rating is still blind: the round from the future is not open.
    let out = at(&sam, &["rate", GOAL, "-1"], now + HOUR);
    assert!(out.contains("sealed"), "{out}");
}

#[test]
fn undo_takes_back_the_rating_just_made_not_one_dated_ahead_by_a_wrong_clock() {
    let relay = Relay::start();
    let (alex, _sam) = couple(&relay);
    alex.ok(&["goal", "add", "Date night", "--area", "quality-time"]);
    let now = duet_core::ids::now_ms();
    at(&alex, &["rate", "Date night", "2"], now + 365 * DAY);
    at(&alex, &["rate", GOAL, "-1"], now);
    let out = at(&alex, &["undo"], now + 60_000);
    assert!(out.contains(GOAL), "{out}");
    assert!(!out.contains("Date night"), "{out}");
}

#[test]
fn undo_takes_back_the_rating_just_made_after_the_clock_went_back_an_hour() {
    let relay = Relay::start();
    let (alex, _sam) = couple(&relay);
    alex.ok(&["goal", "add", "Date night", "--area", "quality-time"]);
    let now = duet_core::ids::now_ms();
    at(&alex, &["rate", "Date night", "1"], now);
    at(&alex, &["rate", GOAL, "-1"], now + 7 * DAY);
    // The clock set back an hour since (or it was an hour fast): the rating just made is
    // dated "ahead", and is still what undo takes back.
    let out = at(&alex, &["undo"], now + 7 * DAY - HOUR);
    assert!(out.contains(GOAL), "{out}");
    assert!(!out.contains("Date night"), "{out}");
    // And a week-old correction is not what an undo after a later rating takes.
    at(
        &alex,
        &["rate", "Date night", "2", "--amend"],
        now + 7 * DAY,
    );
    at(&alex, &["rate", GOAL, "1"], now + 8 * DAY);
    let out = at(&alex, &["undo"], now + 8 * DAY - 2 * HOUR);
    assert!(out.contains(GOAL), "{out}");
    assert!(!out.contains("Date night"), "{out}");
}

#[test]
fn undo_takes_back_the_rating_made_after_a_private_reflection_on_a_clock_set_back() {
    let relay = Relay::start();
    let (alex, _sam) = couple(&relay);
    let now = duet_core::ids::now_ms();
    at(&alex, &["reflect", "--private", "a note to myself"], now);
    // The clock set back 50 minutes since: the rating is dated before the reflection,
    // and is still what was done last.
    at(&alex, &["rate", GOAL, "1"], now - 50 * 60_000);
    let out = at(&alex, &["undo"], now - 49 * 60_000);
    assert!(out.contains(GOAL), "{out}");
    assert!(!out.contains("private reflection"), "{out}");
}

/// A sync stores the shared space's changes before the personal space's, so a private
/// reflection written on another device arrives "after" a rating made here: the order
/// the store holds them in is the making order only for this device's own acts.
#[test]
fn undo_takes_back_the_rating_just_made_not_a_private_reflection_synced_from_another_device() {
    let relay = Relay::start();
    let (alex, _sam) = couple(&relay);
    let laptop = Device::new();
    laptop.ok(&["join", &alex.device_code()]);
    alex.ok(&["sync"]);
    let now = duet_core::ids::now_ms();
    at(
        &laptop,
        &["reflect", "--private", "a note from the laptop"],
        now - HOUR,
    );
    at(&laptop, &["sync"], now - HOUR);
    at(
        &alex,
        &["rate", GOAL, "1", "--note", "rated on the phone"],
        now,
    );
    at(&alex, &["sync"], now);
    let out = at(&alex, &["undo"], now + 60_000);
    assert!(out.contains(GOAL), "{out}");
    assert!(!out.contains("private reflection"), "{out}");
    assert!(
        alex.ok(&["reflections", "--private"])
            .contains("a note from the laptop")
    );
}

#[test]
fn closing_says_which_of_ones_ratings_stay_sealed_after_a_close_not_yet_heard_of() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["goal", "add", "Date night", "--area", "quality-time"]);
    let t = duet_core::ids::now_ms();
    at(&alex, &["rate", GOAL, "1"], t);
    at(&alex, &["sync"], t);
    at(&sam, &["sync"], t + 60_000);
    at(&sam, &["checkin", "--close"], t + 2 * 60_000);
    at(&sam, &["sync"], t + 2 * 60_000);
    // Alex rates before hearing of Sam's close: that rating stays sealed at the sync.
    at(&alex, &["rate", "Date night", "2"], t + 3 * 60_000);
    at(&alex, &["sync"], t + 4 * 60_000);
    let out = at(&alex, &["checkin", "--close"], t + 5 * 60_000);
    assert!(
        out.contains("1 of your ratings stays sealed")
            && out.contains("made in a round already closed")
            && out.contains("once your partner rates that goal,"),
        "{out}"
    );
}

#[test]
fn a_blind_rating_with_a_note_too_long_is_refused_when_made_not_at_its_reveal() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    let long = "z".repeat(100_001);
    let r = alex.run(&["rate", GOAL, "2", "--note", &long]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("at most 100000 characters"),
        "{}",
        r.stderr
    );
    // Nothing sealed waits to fail a reveal: both rate, and every sync after succeeds.
    alex.ok(&["rate", GOAL, "2", "--note", "a good week"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    sam.ok(&["rate", GOAL, "1"]);
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    assert_eq!(ratings(&sam).len(), 2, "both revealed");
}

#[test]
fn a_period_given_while_a_round_is_open_is_said_unused_and_the_rounds_end_is_shown() {
    let relay = Relay::start();
    let (alex, _sam) = couple(&relay);
    alex.ok(&["goal", "add", "Date night", "--area", "quality-time"]);
    let first = alex.run(&["checkin", "--rate", "weekly=1", "--period", "1h"]);
    assert!(
        first.stdout.contains("the check-in round ends ("),
        "{first:?}"
    );
    assert!(!first.stderr.contains("--period"), "{first:?}");
    let second = alex.run(&["checkin", "--rate", "date=2", "--period", "30d"]);
    assert_eq!(second.code, 0, "{second:?}");
    assert!(
        second.stderr.contains("a check-in round was already open")
            && second
                .stderr
                .contains("--period applies only to a new round"),
        "{second:?}"
    );
}

#[test]
fn last_is_the_reflection_just_written_even_after_one_dated_ahead_by_a_wrong_clock() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    // Written while the clock was a day ahead, then the clock is put right.
    let tomorrow = (duet_core::ids::now_ms() + 86_400_000).to_string();
    d.ok_env(
        &["reflect", "Monday: we argued about money"],
        &[("DUET_NOW", &tomorrow)],
    );
    d.ok(&["reflect", "Tuesdya: a good talk"]);
    d.ok(&["reflect", "--edit", "last", "Tuesday: a good talk"]);
    let texts = |d: &Device| -> Vec<String> {
        d.json(&["export"])["shared"]["reflections"]
            .as_array()
            .expect("reflections")
            .iter()
            .filter(|r| r["withdrawn_at"].is_null())
            .map(|r| r["text"].as_str().expect("text").to_string())
            .collect()
    };
    let mut now = texts(&d);
    now.sort();
    assert_eq!(
        now,
        ["Monday: we argued about money", "Tuesday: a good talk"]
    );
    d.ok(&["reflect", "--withdraw", "last"]);
    assert_eq!(texts(&d), ["Monday: we argued about money"]);
}

/// Piped answers are two lines a goal, a skipped goal's too: the answers after a skip
/// land on the goals they were meant for.
#[test]
fn a_goal_skipped_in_a_piped_checkin_leaves_the_later_answers_on_their_goals() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    for title in ["Weekly talk", "Date night", "Chores split"] {
        d.ok(&["goal", "add", title, "--area", "trust"]);
    }
    let order: Vec<String> = d
        .json(&["goal", "list"])
        .as_array()
        .expect("goals")
        .iter()
        .map(|g| g["title"].as_str().expect("title").to_string())
        .collect();
    // The first goal listed is skipped; the other two get -2 and +1 with their notes.
    let run = d.run_with_stdin(
        &["checkin"],
        Some("\n\n-2\nnote for the second\n1\nnote for the third\n"),
    );
    run.ok();
    let export = d.json(&["export"]);
    let title_of = |id: &serde_json::Value| {
        export["shared"]["goals"]
            .as_array()
            .expect("goals")
            .iter()
            .find(|g| &g["id"] == id)
            .map(|g| g["title"].as_str().expect("title").to_string())
    };
    let mut rated: Vec<(String, i64, String)> = export["shared"]["ratings"]
        .as_array()
        .expect("ratings")
        .iter()
        .map(|r| {
            (
                title_of(&r["goal"]).expect("a goal"),
                r["level"].as_i64().expect("level"),
                r["note"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    rated.sort();
    let mut expected = vec![
        (order[1].clone(), -2, "note for the second".to_string()),
        (order[2].clone(), 1, "note for the third".to_string()),
    ];
    expected.sort();
    assert_eq!(rated, expected);
}

/// A blind rating corrected while sealed, the partner's rating after it, then `undo`:
/// the correction goes and the rating it corrected counts again, revealed to both (it
/// was lost on every device).
#[test]
fn undoing_a_sealed_correction_after_the_partner_rated_brings_back_the_first_rating() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["rate", GOAL, "-2", "--note", "original"]);
    alex.ok(&["rate", GOAL, "1", "--amend"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    sam.ok(&["rate", GOAL, "0"]);
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    let said = alex.ok(&["undo"]);
    assert!(
        said.contains("it corrected your earlier rating, -2") && said.contains("counts again"),
        "undo says which rating counts again: {said}"
    );
    for d in [&alex, &sam, &alex, &sam] {
        d.ok(&["sync"]);
    }
    let expected = vec![
        ("Alex".to_string(), -2, Some("original".to_string())),
        ("Sam".to_string(), 0, None),
    ];
    assert_eq!(ratings(&alex), expected);
    assert_eq!(ratings(&sam), expected);
}

/// A blind rating made on a device that had not heard that the partner closed the round
/// lands in the closed round: it stays sealed (the partner never rated against it)
/// until the partner rates the goal after it.
#[test]
fn a_blind_rating_made_after_the_round_was_closed_elsewhere_stays_sealed() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["goal", "add", "Date night", "--area", "quality-time"]);
    alex.ok(&["rate", "Date night", "1"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    sam.ok(&["checkin", "--close"]);
    sam.ok(&["sync"]);
    // Alex has not heard of the close: his rating goes into the round he knows.
    alex.ok(&["rate", GOAL, "-2", "--note", "ALEX_SECRET"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    for args in [
        &["export"][..],
        &["goal", "show", GOAL],
        &["history", "--full"],
    ] {
        let shown = sam.ok(args);
        assert!(!shown.contains("ALEX_SECRET"), "{args:?}: {shown}");
    }
    // Sam rates it blind; then both see both, and nothing was lost.
    sam.ok(&["rate", GOAL, "0"]);
    for d in [&sam, &alex, &sam] {
        d.ok(&["sync"]);
    }
    assert!(
        ratings(&sam).contains(&("Alex".to_string(), -2, Some("ALEX_SECRET".to_string()))),
        "{:?}",
        ratings(&sam)
    );
}

/// A correction says which rating it replaced, and that a revealed one is corrected in
/// the clear: on a device not synced yet, the newest rating it holds may be last
/// check-in's, not the one meant.
#[test]
fn a_correction_names_the_rating_it_replaced_and_says_when_the_partner_sees_it() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["rate", GOAL, "-2"]);
    let sealed = alex.ok(&["rate", GOAL, "-1", "--amend"]);
    assert!(sealed.contains("It replaces your rating given"), "{sealed}");
    assert!(!sealed.contains("your partner had seen"), "{sealed}");
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    sam.ok(&["rate", GOAL, "0"]);
    for d in [&sam, &alex, &sam] {
        d.ok(&["sync"]);
    }
    let seen = alex.ok(&["rate", GOAL, "2", "--amend"]);
    assert!(
        seen.contains("It replaces your rating given")
            && seen.contains("the newest this device holds; your partner had seen it"),
        "{seen}"
    );
    // Nothing is promised of a rating made since on another device: it is not replaced.
    assert!(
        seen.contains("made since on another device is not replaced")
            && !seen.contains("corrected there"),
        "{seen}"
    );
}

/// A blind rating corrected after its round ended is revealed at once: the correction
/// says so, not "sealed until the round ends" with a date gone by.
#[test]
fn a_blind_rating_corrected_after_its_round_ended_is_not_said_to_wait_for_that_end() {
    let relay = Relay::start();
    let (alex, _sam) = couple(&relay);
    let now = duet_core::ids::now_ms();
    at(&alex, &["rate", GOAL, "-2"], now);
    at(&alex, &["sync"], now);
    let out = at(&alex, &["rate", GOAL, "1", "--amend"], now + 9 * DAY);
    assert!(!out.contains("round ends"), "{out}");
    assert!(out.contains("Revealed 1 sealed rating"), "{out}");
}

/// Alex's check-in opens a round; Sam, not synced since, rates the goal and opens one
/// of their own. The two rounds are paired and both ratings open; both partners'
/// check-ins then count the goal as rated by both (Alex's asked for it again, its
/// rating in the older round of the pair left behind by the newer).
#[test]
fn a_checkin_counts_a_rating_made_in_the_round_paired_with_the_partners() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["checkin", "--rate", &format!("{GOAL}=1")]);
    alex.ok(&["sync"]);
    sam.ok(&["rate", GOAL, "-1"]);
    for d in [&sam, &alex, &sam] {
        d.ok(&["sync"]);
    }
    for d in [&alex, &sam] {
        let walk = d.run_with_stdin(&["checkin"], Some(""));
        assert!(
            walk.stdout
                .contains("you have both rated it in this check-in"),
            "{walk:?}"
        );
    }
}

/// Whether `d`'s history shows Alex's rating of `level` revealed.
fn shows_alex_revealed(d: &Device, level: &str) -> bool {
    d.ok(&["history"]).lines().any(|l| {
        l.contains("Alex's blind rating") && l.contains(level) && l.contains("was revealed")
    })
}

#[test]
fn a_blind_rating_undone_after_the_partner_answered_it_is_shown_to_them_withdrawn() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["rate", GOAL, "-2", "--note", "too harsh"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    // Sam answers Alex's seal in the clear, trusting it opens; Alex, not yet synced,
    // takes the seal back.
    sam.ok(&["rate", GOAL, "0"]);
    sam.ok(&["sync"]);
    let out = alex.ok(&["undo"]);
    assert!(out.contains("as far as this device knows"), "{out}");
    for d in [&alex, &sam] {
        d.ok(&["sync"]);
    }
    // Alex sees Sam's rating, so Sam sees Alex's, as it was, and that it was withdrawn.
    assert!(sees_level(&alex, 0));
    assert!(shows_alex_revealed(&sam, "-2"), "{}", sam.ok(&["history"]));
    let history = sam.ok(&["history"]);
    assert!(history.contains("Alex withdrew a rating"), "{history}");
    // It stays withdrawn: it counts nowhere.
    assert!(!sees_level(&sam, -2), "{:?}", ratings(&sam));
    assert_eq!(ratings(&alex), ratings(&sam));
}

#[test]
fn a_blind_rating_undone_while_the_partners_apart_seal_opened_against_it_is_shown_too() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    // Both rate blind while apart; Alex's seal reaches the relay, then Alex undoes it
    // before Sam's device, which reveals Sam's seal against Alex's, hears of the undo.
    alex.ok(&["rate", GOAL, "2"]);
    sam.ok(&["rate", GOAL, "-2"]);
    alex.ok(&["sync"]);
    alex.ok(&["undo"]);
    for d in [&sam, &alex, &sam] {
        d.ok(&["sync"]);
    }
    assert!(sees_level(&alex, -2), "{:?}", ratings(&alex));
    assert!(shows_alex_revealed(&sam, "+2"), "{}", sam.ok(&["history"]));
    assert!(!sees_level(&sam, 2), "{:?}", ratings(&sam));
}

#[test]
fn a_blind_rating_undone_before_the_partner_rated_stays_unseen_when_they_rate_later() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["rate", GOAL, "2"]);
    alex.ok(&["sync"]);
    alex.ok(&["undo"]);
    alex.ok(&["sync"]);
    // Sam hears of the seal and its withdrawal together, then rates blind.
    sam.ok(&["sync"]);
    let out = sam.ok(&["rate", GOAL, "1"]);
    assert!(out.contains("sealed"), "{out}");
    for d in [&sam, &alex, &sam] {
        d.ok(&["sync"]);
    }
    assert!(!shows_alex_revealed(&sam, "+2"), "{}", sam.ok(&["history"]));
    assert!(!sees_level(&alex, 1), "{:?}", ratings(&alex));
}

#[test]
fn correcting_an_undone_rating_or_withdrawing_twice_says_what_became_of_it() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", GOAL, "--area", "communication"]);
    d.ok(&["rate", "weekly", "1"]);
    d.ok(&["undo"]);
    let r = d.run(&["rate", "weekly", "2", "--amend"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "no rating of yours of goal \"{GOAL}\" that counts"
        )) && r.stderr.contains("undone"),
        "the title, not the query, and why: {}",
        r.stderr
    );
    let id = d.json(&["reflect", "A good week"])["id"]
        .as_str()
        .expect("an id")
        .to_string();
    d.ok(&["reflect", "--withdraw", &id]);
    let again = d.run(&["reflect", "--withdraw", &id]);
    assert_ne!(again.code, 0, "{again:?}");
    assert!(
        again.stderr.contains("was withdrawn already"),
        "{}",
        again.stderr
    );
}

#[test]
fn a_reflection_edited_on_two_devices_while_apart_is_said_to_read_as_a_merge() {
    let relay = Relay::start();
    let laptop = Device::new();
    laptop.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let phone = Device::new();
    phone.ok(&["join", &laptop.device_code()]);
    let sam = Device::new();
    sam.ok(&["join", &laptop.invite_code(), "--name", "Sam"]);
    laptop.ok(&["reflect", "Original reflection about Sunday talks"]);
    laptop.ok(&["sync"]);
    phone.ok(&["sync"]);
    // Edited on both while apart: Automerge merges the two edits letter by letter.
    laptop.ok(&[
        "reflect",
        "--edit",
        "last",
        "Laptop says: we did great this week",
    ]);
    phone.ok(&[
        "reflect",
        "--edit",
        "last",
        "Phone version: we skipped Sunday again",
    ]);
    laptop.ok(&["sync"]);
    let told = phone.run(&["sync"]);
    assert_eq!(told.code, 0, "{told:?}");
    assert!(
        told.stderr
            .contains("was edited on two of your devices while apart")
            && told.stderr.contains("duet reflect --edit"),
        "{}",
        told.stderr
    );
    // The partner is told it may read oddly, and by whose devices.
    let partner = sam.run(&["sync"]);
    assert!(
        partner.stderr.contains("Alex's reflection")
            && partner
                .stderr
                .contains("edited on two of their devices while apart")
            && !partner.stderr.contains("duet reflect --edit"),
        "{}",
        partner.stderr
    );
    // The digest the history keeps of an edit's text is not shown as the edit's value.
    for line in phone.ok(&["history", "--json"]).lines() {
        let e: serde_json::Value = serde_json::from_str(line).expect("JSON");
        if e["kind"] == "reflection_edited" {
            assert!(e["after"].is_null(), "{e}");
        }
    }
    // Said once: an edit of another reflection arriving later does not say it again.
    sam.ok(&["reflect", "Sam's own thought"]);
    sam.ok(&["reflect", "--edit", "last", "Sam's own thought, reworded"]);
    sam.ok(&["sync"]);
    let later = phone.run(&["sync"]);
    assert!(later.stdout.contains("reflection edit"), "{later:?}");
    assert!(!later.stderr.contains("while apart"), "{}", later.stderr);
    // Set again as meant: nothing more is said.
    phone.ok(&[
        "reflect",
        "--edit",
        "last",
        "We skipped Sunday, and that is fine",
    ]);
    phone.ok(&["sync"]);
    let settled = laptop.run(&["sync"]);
    assert!(
        !settled.stderr.contains("while apart"),
        "{}",
        settled.stderr
    );
}

/// A revealed rating taken back with `undo` is taken back to rate again: the check-in no
/// longer calls the goal rated by this person.
#[test]
fn after_undoing_a_revealed_rating_the_checkin_asks_for_it_again() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["rate", GOAL, "1"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    sam.ok(&["rate", GOAL, "0"]);
    for d in [&sam, &alex] {
        d.ok(&["sync"]);
    }
    let before = alex.run_with_stdin(&["checkin"], Some(""));
    assert!(
        before.ok().contains("you have both rated it"),
        "{}",
        before.stdout
    );
    alex.ok(&["undo"]);
    let after = alex.run_with_stdin(&["checkin"], Some(""));
    let said = after.ok();
    assert!(
        !said.contains("you have both rated it") && !said.contains("you have rated it"),
        "{said}"
    );
    assert!(
        !said.contains("rate to see theirs"),
        "Sam's rating is shown already: {said}"
    );
    for d in [&alex, &sam] {
        d.ok(&["sync"]);
    }
    let sams = sam.run_with_stdin(&["checkin"], Some(""));
    assert!(
        !sams.ok().contains("you have both rated it"),
        "Alex took his back: {}",
        sams.stdout
    );
}

/// A partner who left had their blind ratings opened as they left: the check-in does not
/// promise to show them for a rating.
#[test]
fn after_the_partner_left_the_checkin_does_not_promise_their_rating() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    sam.ok(&["rate", GOAL, "1"]);
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    let before = alex.run_with_stdin(&["checkin"], Some(""));
    assert!(
        before.ok().contains("rate to see theirs"),
        "{}",
        before.stdout
    );
    let export = sam.home.with_extension("export.json");
    sam.ok(&["leave", "--yes", "--export", export.to_str().expect("path")]);
    alex.ok(&["sync"]);
    let after = alex.run_with_stdin(&["checkin"], Some(""));
    assert!(
        !after.ok().contains("rate to see theirs"),
        "{}",
        after.stdout
    );
}

/// Correcting a rating the partner has seen does not count as rating the goal again:
/// the partner's newer blind rating stays sealed (it was opened: the correction was
/// made in the partner's new round).
#[test]
fn correcting_a_seen_rating_does_not_open_the_partners_newer_blind_rating() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    let t0 = duet_core::ids::now_ms() - 30 * DAY;
    at(&alex, &["rate", GOAL, "1"], t0);
    for d in [&alex, &sam] {
        at(d, &["sync"], t0 + 60_000);
    }
    at(&sam, &["rate", GOAL, "-1"], t0 + 120_000);
    for d in [&sam, &alex] {
        at(d, &["sync"], t0 + 180_000);
    }
    // The next day Sam rates again, blind; Alex corrects yesterday's rating.
    at(
        &sam,
        &["rate", GOAL, "2", "--note", "SAM_NEW_SECRET"],
        t0 + DAY,
    );
    for d in [&sam, &alex] {
        at(d, &["sync"], t0 + DAY + 60_000);
    }
    at(&alex, &["rate", GOAL, "0", "--amend"], t0 + DAY + 120_000);
    for d in [&alex, &sam, &alex] {
        at(d, &["sync"], t0 + DAY + 180_000);
    }
    for args in [
        &["export"][..],
        &["goal", "show", GOAL],
        &["history", "--full"],
        &["progress", "--json"],
    ] {
        let shown = at(&alex, args, t0 + DAY + 240_000);
        assert!(!shown.contains("SAM_NEW_SECRET"), "{args:?}: {shown}");
    }
    assert_eq!(
        sealed_count(&alex),
        Some(1),
        "Sam's new rating stays sealed"
    );
}

/// Two devices of Alex's rate the goal blind at the same moment, apart; Sam's rating
/// answers one of them. The check-in tells Sam that a rating of Alex's still waits and
/// that rating again shows it (it does: the next rating is made in the clear).
#[test]
fn a_second_blind_rating_from_the_partners_other_device_is_said_to_wait_for_a_rating() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    let phone = Device::new();
    phone.ok(&["join", &alex.device_code()]);
    for d in [&alex, &phone, &sam, &alex] {
        d.ok(&["sync"]);
    }
    let t0 = duet_core::ids::now_ms() - 30 * DAY;
    at(&alex, &["rate", GOAL, "1"], t0);
    at(&phone, &["rate", GOAL, "-2"], t0);
    for d in [&alex, &phone, &sam, &alex, &phone] {
        at(d, &["sync"], t0 + 60_000);
    }
    at(&sam, &["rate", GOAL, "0"], t0 + 120_000);
    for d in [&sam, &alex, &phone, &sam] {
        at(d, &["sync"], t0 + 180_000);
    }
    let said = sam.run_full(
        &["checkin"],
        Some(""),
        &[("DUET_NOW", &(t0 + 240_000).to_string())],
    );
    assert!(
        said.ok()
            .contains("your partner has rated it again; rate again to see theirs"),
        "{}",
        said.stdout
    );
    let rated = at(&sam, &["rate", GOAL, "1", "--json"], t0 + 300_000);
    let rated: serde_json::Value = serde_json::from_str(&rated).expect("JSON");
    assert_eq!(rated["sealed"], false, "{rated}");
}

/// `history --limit N` shows the last N lines of `history`, whatever the history
/// leaves out (a second reveal) or places among the document's events (devices joining).
fn limit_is_the_end_of_the_history(d: &Device) {
    let whole = d.ok(&["history"]);
    let whole: Vec<&str> = whole.lines().collect();
    for n in 1..=whole.len() + 1 {
        let limited = d.ok(&["history", "--limit", &n.to_string()]);
        let end = &whole[whole.len().saturating_sub(n)..];
        assert_eq!(limited.lines().collect::<Vec<_>>(), end, "--limit {n}");
    }
}

/// A seal revealed by both of its rater's devices (each closed the round before it heard
/// of the other's close, as two watching devices reveal at once) is one rating: one
/// `rate --amend` corrects it and one `undo` takes it back, on every device; the
/// partner's sync tells of one closed round and one revealed rating.
#[test]
fn a_rating_revealed_by_two_devices_of_its_rater_is_corrected_and_undone_once() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["goal", "add", "Date night", "--area", "quality-time"]);
    let laptop = Device::new();
    laptop.ok(&["join", &alex.device_code()]);
    let all = [&alex, &laptop, &sam];
    let sync_all = || {
        for d in all.iter().chain(all.iter()) {
            d.ok(&["sync"]);
        }
    };
    let revealed_twice = |goal: &str, level: &str| {
        alex.ok(&["rate", goal, level]);
        alex.ok(&["sync"]);
        laptop.ok(&["sync"]);
        alex.ok(&["checkin", "--close"]);
        laptop.ok(&["checkin", "--close"]);
        alex.ok(&["sync"]);
        laptop.ok(&["sync"]);
        let told = sam.ok(&["sync"]);
        // One round, one rating: each told once, though both devices closed and revealed.
        assert!(told.contains("1 closed round,"), "{told}");
        assert!(told.contains("1 revealed rating "), "{told}");
        sync_all();
    };
    let alex_only = |level: i64| vec![("Alex".to_string(), level, None)];
    revealed_twice(GOAL, "1");
    assert_eq!(ratings(&sam), alex_only(1));
    for d in all {
        limit_is_the_end_of_the_history(d);
    }
    alex.ok(&["rate", GOAL, "-2", "--amend"]);
    sync_all();
    for d in all {
        assert_eq!(ratings(d), alex_only(-2), "the +1 still counts");
    }
    revealed_twice("Date night", "2");
    assert!(alex.ok(&["undo"]).contains("+2"));
    sync_all();
    for d in all {
        assert_eq!(ratings(d), alex_only(-2), "the undone +2 still counts");
    }
}

/// Sam takes back his answers to two of Alex's check-ins and rates again: the rating
/// answers the newest check-in (it answered the oldest, so the check-in asked for the
/// goal again), and the app does not call a rating that answers Alex's "blind".
#[test]
fn a_rating_made_after_taking_back_two_answers_answers_the_newest_checkin() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["rate", GOAL, "-1"]);
    for d in [&alex, &sam] {
        d.ok(&["sync"]);
    }
    sam.ok(&["rate", GOAL, "0"]);
    for d in [&sam, &alex] {
        d.ok(&["sync"]);
    }
    alex.ok(&["rate", GOAL, "2"]);
    for d in [&alex, &sam] {
        d.ok(&["sync"]);
    }
    sam.ok(&["rate", GOAL, "1"]);
    for d in [&sam, &alex, &sam] {
        d.ok(&["sync"]);
    }
    sam.ok(&["undo"]);
    sam.ok(&["undo"]);
    // Alex's ratings of both check-ins show: a new rating of Sam's answers, in the clear.
    let app = duet_tests::app::App::start(&sam);
    let today = app.get("/").body;
    assert!(today.contains("Rate 1 goal</a>"), "{today}");
    drop(app);
    let out = sam.ok(&["rate", GOAL, "1"]);
    assert!(!out.contains("sealed"), "{out}");
    let plan = sam.run_full(&["checkin"], Some("\n"), &[]).ok().to_string();
    assert!(
        plan.contains("you have both rated it in this check-in"),
        "{plan}"
    );
}

/// A reply to a reflection its author has withdrawn since (a list or page read before)
/// is refused in words that say so and what to do, with no internal id.
#[test]
fn a_reply_to_a_reflection_withdrawn_since_says_so_in_words() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["reflect", "We talked on Sunday"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    let id = sam.json(&["reflections"])[0]["id"]
        .as_str()
        .expect("its id")
        .to_string();
    alex.ok(&["reflect", "--withdraw", "last"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    let late = sam.run(&["reflect", "--reply", &id, "A late answer"]);
    assert_ne!(late.code, 0);
    assert!(
        late.stderr.contains("withdrawn that reflection")
            && late.stderr.contains("duet reflect TEXT")
            && !late.stderr.contains(&id),
        "{}",
        late.stderr
    );
}

/// Alex corrects one rating on the laptop and again on the phone while the two are
/// apart: one rating was corrected, so one counts (the later correction, the phone's),
/// on every device, in the progress and the export alike.
#[test]
fn a_rating_corrected_on_two_devices_while_apart_counts_once_as_the_later_correction() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    let phone = Device::new();
    phone.ok(&["join", &alex.device_code()]);
    let all = [&alex, &phone, &sam];
    let t0 = duet_core::ids::now_ms() - 2 * HOUR;
    let sync_all = |ms: i64| {
        for d in all.iter().chain(all.iter()) {
            at(d, &["sync"], ms);
        }
    };
    sync_all(t0);
    at(&alex, &["rate", GOAL, "1"], t0 + 1_000);
    sync_all(t0 + 2_000);
    at(&sam, &["rate", GOAL, "0"], t0 + 3_000);
    sync_all(t0 + 4_000);
    sync_all(t0 + 5_000);
    at(&alex, &["rate", GOAL, "2", "--amend"], t0 + 6_000);
    at(&phone, &["rate", GOAL, "-2", "--amend"], t0 + 7_000);
    sync_all(t0 + 8_000);
    for d in all {
        let alexs: Vec<i64> = ratings(d)
            .into_iter()
            .filter(|(who, _, _)| who == "Alex")
            .map(|(_, level, _)| level)
            .collect();
        assert_eq!(alexs, [-2], "one rating, corrected last to -2");
        let progress = at(d, &["progress", "--json"], t0 + 9_000);
        let progress: serde_json::Value = serde_json::from_str(&progress).expect("JSON");
        let alex_series = progress["goals"][0]["partners"]
            .as_array()
            .expect("partners")
            .iter()
            .find(|p| p["name"] == "Alex")
            .expect("Alex's series")
            .clone();
        assert_eq!(alex_series["count"], 1, "{alex_series}");
    }
}

/// Alex withdraws a reflection on the laptop while the phone, apart, edits it: the
/// reflection stays withdrawn, and the phone's sync says that the edit made there is not
/// shown (it was lost to every view without a word).
#[test]
fn an_edit_made_apart_after_the_reflection_was_withdrawn_elsewhere_is_said() {
    let relay = Relay::start();
    let (laptop, _sam) = pair(&relay);
    let phone = Device::new();
    phone.ok(&["join", &laptop.device_code()]);
    laptop.ok(&["reflect", "A first try at saying it"]);
    laptop.ok(&["sync"]);
    phone.ok(&["sync"]);
    laptop.ok(&["reflect", "--withdraw", "last"]);
    laptop.ok(&["sync"]);
    phone.ok(&["reflect", "--edit", "last", "Said better, on the phone"]);
    let told = phone.run(&["sync"]);
    assert_eq!(told.code, 0, "{told:?}");
    assert!(
        told.stderr
            .contains("was withdrawn on another of your devices, and the edit made after it"),
        "{}",
        told.stderr
    );
    assert!(!phone.ok(&["reflections"]).contains("Said better"));
}

/// Weekly check-ins, Alex at 18:00 and Sam at 20:00 each Sunday; Alex skips one week.
/// Sam's rating of that week opens a round that is still open when Alex rates the next
/// Sunday: answering it, Alex's rating was made in the clear, Sam saw it before rating,
/// and the pairing stayed a week off for good. A round past half its time is last
/// week's check-in: Alex's rating closes it and is blind in a new round, which Sam's
/// answers.
#[test]
fn a_skipped_week_does_not_leave_the_check_ins_a_week_apart() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    const WEEK: i64 = 7 * 24 * 3600 * 1000;
    let start = duet_testkit::now_ms() + 3600 * 1000;
    let at = |d: &Device, t: i64, args: &[&str]| {
        let r = d.run_full(args, None, &[("DUET_NOW", &t.to_string())]);
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
        r.stdout
    };
    for week in 0..4 {
        let alex_at = start + week * WEEK;
        let sam_at = alex_at + 2 * 3600 * 1000;
        if week != 1 {
            at(&alex, alex_at, &["sync"]);
            at(&alex, alex_at, &["rate", GOAL, "1"]);
            at(&alex, alex_at + 1000, &["sync"]);
        }
        at(&sam, sam_at, &["sync"]);
        if week >= 2 {
            // Sam has not rated this week: Alex's rating of it is not shown to him.
            let p: serde_json::Value =
                serde_json::from_str(&at(&sam, sam_at, &["--json", "progress"])).expect("JSON");
            let alex_now = p["goals"][0]["partners"]
                .as_array()
                .and_then(|ps| ps.iter().find(|s| s["name"] == "Alex"))
                .cloned()
                .expect("Alex's series");
            assert_eq!(alex_now["sealed"], true, "week {week}: {alex_now}");
        }
        at(&sam, sam_at, &["rate", GOAL, "0"]);
        at(&sam, sam_at + 1000, &["sync"]);
        at(&alex, alex_at + 24 * 3600 * 1000, &["sync"]);
    }
}

/// A check-in is one moment: its ratings share its time, so the progress series has no
/// point half-way through it (a score of 54 between two of 60).
#[test]
fn the_ratings_of_one_checkin_share_its_time() {
    let d = Device::new();
    d.ok(&["init", "--name", "Quinn"]);
    for title in ["Walk together", "Listen first", "Cook on Sundays"] {
        d.ok(&["goal", "add", title, "--area", "quality-time"]);
    }
    d.ok(&[
        "checkin",
        "--rate",
        "walk=1",
        "--rate",
        "listen=-1",
        "--rate",
        "cook=2",
    ]);
    let export = d.json(&["export"]);
    let times: std::collections::BTreeSet<&str> = export["shared"]["ratings"]
        .as_array()
        .expect("ratings")
        .iter()
        .map(|r| r["at"].as_str().expect("a time"))
        .collect();
    assert_eq!(times.len(), 1, "{times:?}");
}

/// A goal's history tells what became of its reflections: an edit and a withdrawal are
/// found by the goal, as the writing is (a withdrawn one read as if it still stood).
#[test]
fn a_goals_history_shows_its_reflections_edits_and_withdrawal() {
    let d = Device::new();
    d.ok(&["init", "--name", "Quinn"]);
    d.ok(&[
        "goal",
        "add",
        "Phones away at dinner",
        "--area",
        "quality-time",
    ]);
    d.ok(&["goal", "add", "Walk together", "--area", "quality-time"]);
    d.ok(&["reflect", "--goal", "phones", "We managed three dinners"]);
    d.ok(&["reflect", "--edit", "last", "We managed four dinners"]);
    d.ok(&["reflect", "--withdraw", "last"]);
    d.ok(&["reflect", "--goal", "walk", "A long walk on Sunday"]);
    d.ok(&["reflect", "--withdraw", "last"]);
    let history = d.ok(&["history", "--goal", "phones"]);
    assert!(
        history.contains("edited a reflection on \"Phones away at dinner\""),
        "{history}"
    );
    assert_eq!(
        history.matches("withdrew a reflection").count(),
        1,
        "{history}"
    );
    let lines = d.ok(&["--json", "history", "--goal", "walk"]);
    let kinds: Vec<String> = lines
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        kinds.iter().any(|k| k == "reflection_withdrawn"),
        "{kinds:?}"
    );
}

/// Both partners mark one step done while apart; one undoes theirs. The completion is
/// one field, so the step opens for both: the undo says so, naming the partner (it said
/// only "Reopened", and the partner's completion went without a word).
#[test]
fn undoing_a_step_both_completed_apart_says_it_is_open_for_both() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["step", "add", GOAL, "Book a table"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    let step = alex.json(&["goal", "show", GOAL])["steps"][0]["id"]
        .as_str()
        .expect("the step")
        .to_string();
    alex.ok(&["step", "done", GOAL, &step]);
    sam.ok(&["step", "done", GOAL, &step]);
    for d in [&alex, &sam, &alex] {
        d.ok(&["sync"]);
    }
    // The document keeps one of the two completions (Automerge's rule picks which):
    // its author is the one who can undo it.
    let first = sam.run(&["undo"]);
    let (undone, other) = match first.code {
        0 => (first, "Alex"),
        _ => (alex.run(&["undo"]), "Sam"),
    };
    assert_eq!(undone.code, 0, "{undone:?}");
    assert!(
        undone
            .stdout
            .contains(&format!("{other} had marked it done too"))
            && undone.stdout.contains("open for both"),
        "{undone:?}"
    );
    // Alone, an undo names no one.
    for d in [&alex, &sam, &alex] {
        d.ok(&["sync"]);
    }
    alex.ok(&["step", "done", GOAL, &step]);
    let alone = alex.ok(&["undo"]);
    assert!(!alone.contains("too"), "{alone}");
}
