//! Both partners doing the same shared act while apart (completing one step, closing one
//! check-in round) through the real binaries and relay: neither device takes the other's
//! act for a change of its own (each refused the other's whole event, and every later
//! change of that device waited behind it for good), and both end with the same space.

use duet_tests::{Device, Relay, pair};

/// A paired couple who both hold a goal with one step.
fn couple(relay: &Relay) -> (Device, Device) {
    let (alex, sam) = pair(relay);
    alex.ok(&["goal", "add", "Weekly walk", "--area", "quality-time"]);
    alex.ok(&["step", "add", "walk", "Buy shoes"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    (alex, sam)
}

/// Syncs both until each has the other's last act, and says nothing was refused.
fn sync_both(alex: &Device, sam: &Device) {
    for d in [alex, sam, alex, sam] {
        let run = d.run(&["sync"]);
        let said = format!("{}{}", run.ok(), run.stderr);
        assert!(!said.contains("refused"), "{said}");
    }
    for d in [alex, sam] {
        assert_eq!(d.json(&["status"])["spaces"][0]["refused_events"], 0);
    }
    assert_eq!(
        alex.json(&["export"])["shared"],
        sam.json(&["export"])["shared"],
        "both devices hold the same space"
    );
}

#[test]
fn partners_who_complete_one_step_while_apart_keep_each_others_changes() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["step", "done", "walk", "Buy shoes"]);
    // In the same change set as Sam's completion: an edit that must not be lost with it.
    sam.ok(&["goal", "edit", "walk", "--title", "Weekly walk together"]);
    sam.ok(&["step", "done", "walk", "Buy shoes"]);
    alex.ok(&["sync"]);
    sync_both(&alex, &sam);
    for d in [&alex, &sam] {
        let goal = d.json(&["goal", "show", "walk"]);
        assert_eq!(goal["title"], "Weekly walk together", "{goal}");
        assert_eq!(goal["steps"][0]["done"], true, "{goal}");
        let history = d.ok(&["history"]);
        for who in ["Alex", "Sam"] {
            assert!(
                history.contains(&format!("{who} completed step \"Buy shoes\"")),
                "{history}"
            );
        }
    }
    // What each writes next still reaches the other.
    alex.ok(&["reflect", "We both bought shoes"]);
    sync_both(&alex, &sam);
    assert!(sam.ok(&["reflections"]).contains("We both bought shoes"));
}

#[test]
fn partners_who_close_one_round_while_apart_both_see_both_ratings() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["rate", "walk", "1", "--note", "Alex, blind"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    alex.ok(&["checkin", "--close"]);
    sam.ok(&["checkin", "--close"]);
    alex.ok(&["sync"]);
    sync_both(&alex, &sam);
    for d in [&alex, &sam] {
        let export = d.json(&["export"]);
        let notes: Vec<&str> = export["shared"]["ratings"]
            .as_array()
            .expect("ratings")
            .iter()
            .filter_map(|r| r["note"].as_str())
            .collect();
        assert_eq!(
            notes,
            ["Alex, blind"],
            "the round's rating is revealed to both"
        );
        assert_eq!(export["shared"]["sealed"].as_array().map(Vec::len), Some(0));
    }
}

#[test]
fn partners_who_correct_and_give_out_one_step_while_apart_agree_on_it() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["step", "add", "walk", "Pick a route", "--for", "Sam"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    // Apart: both correct the same step's text, and each gives it to someone else.
    alex.ok(&["step", "edit", "walk", "shoes", "Buy walking shoes"]);
    alex.ok(&["step", "assign", "walk", "shoes", "me"]);
    sam.ok(&["step", "edit", "walk", "shoes", "Buy shoes on Saturday"]);
    sam.ok(&["step", "assign", "walk", "route", "nobody"]);
    let typo = sam.run(&["step", "assign", "walk", "shoes", "Alx"]);
    assert_eq!(typo.code, 1, "{}", typo.stderr);
    assert!(
        typo.stderr.contains("no person matches \"Alx\"") && typo.stderr.contains("Sam"),
        "{}",
        typo.stderr
    );
    alex.ok(&["sync"]);
    sync_both(&alex, &sam);
    let alex_id = alex.person_id();
    for d in [&alex, &sam] {
        let goal = d.json(&["goal", "show", "walk"]);
        let step = |text: &str| {
            goal["steps"]
                .as_array()
                .expect("steps")
                .iter()
                .find(|s| s["text"].as_str().is_some_and(|t| t.contains(text)))
                .cloned()
                .unwrap_or_else(|| panic!("no step {text:?} in {goal}"))
        };
        // Both corrections merge as text does; each assignment is kept.
        let shoes = step("shoes");
        let text = shoes["text"].as_str().expect("text");
        assert!(
            text.contains("walking") && text.contains("Saturday"),
            "{text}"
        );
        assert_eq!(shoes["assignee"], alex_id.as_str(), "{goal}");
        assert_eq!(step("route")["assignee"], serde_json::Value::Null, "{goal}");
        let history = d.ok(&["history"]);
        for line in [
            "Alex added step \"Pick a route\" to \"Weekly walk\", for Sam",
            "Alex corrected step \"Buy shoes\" of \"Weekly walk\": now \"Buy walking shoes\"",
            "Sam corrected step \"Buy shoes\" of \"Weekly walk\": now \"Buy shoes on Saturday\"",
            "Alex took on step",
            "Sam left step \"Pick a route\" of \"Weekly walk\" to either of you",
        ] {
            assert!(history.contains(line), "{line:?} in\n{history}");
        }
        let shown = d.ok(&["goal", "show", "walk"]);
        assert!(shown.contains("(for Alex)"), "{shown}");
    }
}

#[test]
fn a_partner_who_marks_done_a_step_the_other_completed_is_told_so_and_keeps_syncing() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["step", "done", "walk", "shoes"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    // Sam did it too, and says so: the completion stays Alex's. (Writing over it was a
    // change every other device refused, and each later change of Sam's waited behind
    // it for good.)
    let said = sam.ok(&["step", "done", "walk", "shoes"]);
    assert!(
        said.contains("was done already by Alex") && said.contains("nothing changed"),
        "{said}"
    );
    let json = sam.json(&["step", "done", "walk", "shoes"]);
    assert_eq!(json["already"]["by"], alex.person_id().as_str(), "{json}");
    sam.ok(&["reflect", "I bought some too"]);
    sync_both(&alex, &sam);
    assert!(alex.ok(&["reflections"]).contains("I bought some too"));
    let goal = alex.json(&["goal", "show", "walk"]);
    assert_eq!(
        goal["steps"][0]["done_by"],
        alex.person_id().as_str(),
        "{goal}"
    );
}

#[test]
fn a_title_renamed_by_both_while_apart_is_said_to_be_merged_until_one_sets_it() {
    let relay = Relay::start();
    let (alex, sam) = couple(&relay);
    alex.ok(&["goal", "edit", "walk", "--title", "Weekly Sunday walk"]);
    sam.ok(&["goal", "edit", "walk", "--title", "Weekly walk (Sundays)"]);
    alex.ok(&["step", "edit", "walk", "Buy shoes", "Buy running shoes"]);
    sam.ok(&["step", "edit", "walk", "Buy shoes", "Buy shoes together"]);
    alex.ok(&["sync"]);
    // Each device's sync that brings the other's rename says what the title reads now.
    let said = sam.run(&["sync"]).stderr;
    assert!(
        said.contains("title of goal") && said.contains("changed on two devices while apart"),
        "{said}"
    );
    let said = alex.run(&["sync"]).stderr;
    assert!(
        said.contains("changed on two devices while apart"),
        "{said}"
    );
    let shown = sam.json(&["goal", "show", "walk"]);
    let merged = shown["merged_while_apart"].as_array().expect("merged");
    let title = merged
        .iter()
        .find(|m| m["field"] == "title")
        .expect("title");
    assert_eq!(title["reads"], shown["title"], "{shown}");
    let step = merged
        .iter()
        .find(|m| m["field"].as_str().is_some_and(|f| f.starts_with("step:")))
        .expect("the step's text too");
    assert_eq!(step["reads"], shown["steps"][0]["text"], "{shown}");
    let said = sam.ok(&["goal", "show", "walk"]);
    assert!(
        said.contains("--title TITLE") && said.contains("duet step edit"),
        "{said}"
    );
    let id = shown["id"].as_str().expect("id").to_string();
    {
        let app = duet_tests::app::App::start(&sam);
        let page = app.get(&format!("/goals/{id}")).body;
        assert!(
            page.contains("changed on two devices while apart"),
            "{page}"
        );
    }

    // One sets it, having seen the mix: settled on both devices.
    alex.ok(&["goal", "edit", &id[..8], "--title", "Weekly Sunday walk"]);
    let step_id = shown["steps"][0]["id"]
        .as_str()
        .expect("step id")
        .to_string();
    sam.ok(&[
        "step",
        "edit",
        &id[..8],
        &step_id[..8],
        "Buy shoes together",
    ]);
    sync_both(&alex, &sam);
    for d in [&alex, &sam] {
        let shown = d.json(&["goal", "show", &id[..8]]);
        assert_eq!(shown["title"], "Weekly Sunday walk");
        assert_eq!(
            shown["merged_while_apart"],
            serde_json::json!([]),
            "{shown}"
        );
    }
}
