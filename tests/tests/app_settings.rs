//! What a partner who only uses `duet app` looks after on the Partner and devices page:
//! the relay (set while the app runs, and used at once), open codes (withdrawn, and then
//! refused by the relay), and leaving (asked first, with the export to download). A
//! refused form shows what was typed into it, and the app's advice names its pages, not
//! `duet` commands.

use duet_tests::app::App;
use duet_tests::{Device, Relay, pair};

#[test]
fn a_relay_set_in_the_app_is_synced_through_at_once_without_a_restart() {
    let relay = Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex"]);
    let app = App::start(&alex);
    app.wait_for("/", "No relay set");
    // Without a relay, making an invite says where to set one, in the app's words.
    let no_relay = app.post("/devices/invite", &[]);
    assert!(
        no_relay
            .body
            .contains("set a relay on the Partner and devices page"),
        "{}",
        no_relay.body
    );
    assert!(
        !no_relay.body.contains("duet relay set"),
        "{}",
        no_relay.body
    );

    let refused = app.post("/relay", &[("relay", "ftp://relay.example.org")]);
    assert!(
        refused.body.contains("only http and https work"),
        "{}",
        refused.body
    );
    let set = app.post("/relay", &[("relay", &format!(" {}/", relay.url))]);
    assert_eq!(set.status, 303, "{}", set.body);
    let shown = app.get(set.header("location").expect("the page"));
    assert!(shown.body.contains("The relay is now"), "{}", shown.body);
    assert_eq!(alex.json(&["status"])["spaces"][0]["relay"], relay.url);
    app.wait_for("/", "Relay reachable");

    // The partner joins through it, and what they write reaches the open app live.
    let sam = Device::new();
    sam.ok(&["join", &alex.invite_code(), "--name", "Sam"]);
    sam.ok(&["reflect", "Thank you for the walk"]);
    sam.ok(&["sync"]);
    app.wait_for("/reflections", "Thank you for the walk");
}

/// Set up against a relay that wants a creation token, with a wrong one: the setup says
/// so at once, nothing syncs and the relay refuses the live sockets. The token given on the Partner and devices page makes
/// the spaces and opens the sockets again, so the partner's words arrive live.
#[test]
fn a_creation_token_given_in_the_app_opens_the_live_sync_again() {
    let relay = Relay::start_with(&["--create-token", "couples-token"]);
    let alex = Device::new();
    let app = App::start(&alex);
    // Set up in the app with a token the relay does not know: said at once, in words.
    let set_up = app.post(
        "/setup",
        &[
            ("name", "Alex"),
            ("relay", &relay.url),
            ("token", "mistyped-token"),
        ],
    );
    assert_eq!(set_up.status, 303, "{}", set_up.body);
    let said = app.get(set_up.header("location").expect("the page it leads to"));
    assert!(
        said.body
            .contains("did not accept this device's creation token"),
        "{}",
        said.body
    );
    let refused = app.wait_for(
        "/",
        "enter it with the relay's address on the Partner and devices page",
    );
    assert!(!refused.body.contains("duet relay set"), "{}", refused.body);
    assert!(
        !refused.body.contains("duet-create-token"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("Relay reachable"), "{}", refused.body);
    let mistyped = app.post("/relay", &[("relay", "http://127.0.0.1:9"), ("token", "x")]);
    assert!(
        mistyped.body.contains("nothing was changed"),
        "{}",
        mistyped.body
    );
    assert_eq!(alex.json(&["status"])["spaces"][0]["relay"], relay.url);
    // A wrong token given on the Partner and devices page is said there too, not only
    // in the status line.
    let wrong = app.post(
        "/relay",
        &[("relay", &relay.url), ("token", "still-mistyped")],
    );
    assert_eq!(wrong.status, 303, "{}", wrong.body);
    let said = app.get(wrong.header("location").expect("the page"));
    assert!(
        said.body
            .contains("did not accept this device's creation token")
            && !said.body.contains("syncs through it from now on"),
        "{}",
        said.body
    );
    let given = app.post(
        "/relay",
        &[("relay", &relay.url), ("token", "couples-token")],
    );
    assert_eq!(given.status, 303, "{}", given.body);
    app.wait_for("/", "Relay reachable");
    let sam = Device::new();
    sam.ok(&["join", &alex.invite_code(), "--name", "Sam"]);
    sam.ok(&["reflect", "The token worked"]);
    sam.ok(&["sync"]);
    app.wait_for("/reflections", "The token worked");
}

#[test]
fn a_code_withdrawn_in_the_app_no_longer_lets_anyone_join() {
    let relay = Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let app = App::start(&alex);
    // A double click sends the form twice: one code, and both copies lead to it.
    let first = app.post("/devices/invite", &[("once", "double-click")]);
    let second = app.post("/devices/invite", &[("once", "double-click")]);
    assert_eq!(first.status, 303, "{}", first.body);
    let shown = first.header("location").expect("the page of the code");
    assert!(shown.starts_with("/devices?shown="), "{shown}");
    assert_eq!(second.header("location"), Some(shown));
    assert_eq!(
        alex.json(&["invite", "list"]).as_array().map(Vec::len),
        Some(1)
    );
    let made = app.get(shown);
    let code = between(&made.body, "id=\"made-code\">", "<").to_string();
    // A device code (one invite in each space) is one row, withdrawn whole.
    app.post("/devices/add", &[]);
    let page = app.get("/devices");
    assert_eq!(
        page.body.matches("action=\"/invites/").count(),
        2,
        "{}",
        page.body
    );
    // Who made a code is set apart, as every name (a right-to-left one drew the date).
    assert!(page.body.contains(" made by <bdi>"), "{}", page.body);
    let device_row = &page.body[page
        .body
        .find("Device code <code>")
        .expect("the device code")..];
    let revoke = between(device_row, "action=\"/invites/", "\"").to_string();
    app.post(&format!("/invites/{revoke}"), &[]);
    let halves: Vec<serde_json::Value> = alex
        .json(&["invite", "list"])
        .as_array()
        .expect("invites")
        .iter()
        .filter(|r| r["kind"] == "device")
        .map(|r| r["state"].clone())
        .collect();
    assert_eq!(halves, ["revoked", "revoked"], "both halves withdrawn");
    // The invite's page, still in the browser's history, shows it while it is open.
    assert!(
        app.get(shown).body.contains(&code),
        "the partner invite is open"
    );

    let page = app.get("/devices");
    let revoke = between(&page.body, "action=\"/invites/", "\"").to_string();
    let withdrawn = app.post(&format!("/invites/{revoke}"), &[]);
    let withdrawn = app.get(withdrawn.header("location").expect("the page"));
    assert!(
        withdrawn
            .body
            .contains("The code is withdrawn: nobody can join with it now"),
        "{}",
        withdrawn.body
    );
    assert!(!withdrawn.body.contains("Open codes"), "{}", withdrawn.body);
    // Withdrawn, it is shown there no more (the address stays in the history).
    let again = app.get(shown);
    assert!(
        !again.body.contains(&code) && again.body.contains("That code is shown no more"),
        "{}",
        again.body
    );
    let sam = Device::new();
    let join = sam.run(&["join", &code, "--name", "Sam"]);
    assert_ne!(join.code, 0, "joined with a withdrawn code");
    assert_eq!(alex.json(&["invite", "list"])[0]["state"], "revoked");
}

/// A device code the partner made for a device of theirs is theirs: not listed to be
/// withdrawn here (withdrawn from this side, its half in their personal space, which
/// this device cannot write, stayed open while their page no longer showed it).
#[test]
fn the_partners_device_code_is_not_offered_to_withdraw() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    alex.ok(&["device", "add"]);
    sam.ok(&["sync"]);
    let theirs = App::start(&sam);
    let page = theirs.get("/devices").body;
    assert!(!page.contains("Device code <code>"), "{page}");
    drop(theirs);
    let own = App::start(&alex);
    let page = own.get("/devices").body;
    assert!(page.contains("Device code <code>"), "{page}");
    drop(own);
    // Withdrawn by the partner all the same (the command line may: a code seen by
    // someone else): the maker's list shows no half of it open.
    sam.ok(&["invite", "revoke", "--all"]);
    sam.ok(&["sync"]);
    alex.ok(&["sync"]);
    let list = alex.json(&["invite", "list"]);
    let open = list
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["state"] == "open")
        .count();
    assert_eq!(open, 0, "{list}");
}

#[test]
fn leaving_in_the_app_asks_first_offers_the_export_and_then_leaves() {
    let relay = Relay::start();
    let (alex, sam) = duet_tests::pair(&relay);
    sam.ok(&["goal", "add", "Sunday walk", "--area", "quality-time"]);
    sam.ok(&["sync"]);
    let app = App::start(&alex);
    // The question is a page of its own (Back and reload show it again, not a form
    // to send again).
    let posted = app.post("/leave", &[]);
    assert_eq!(
        posted.header("location"),
        Some("/leave/confirm"),
        "{}",
        posted.body
    );
    let asked = app.get("/leave/confirm");
    assert_eq!(asked.status, 200, "{}", asked.body);
    // A GET of the form's address goes back to its page.
    let reload = app.get("/leave");
    assert_eq!(reload.status, 303);
    assert_eq!(reload.header("location"), Some("/devices"));
    assert!(
        asked.body.contains("Leave the space you share with Sam?"),
        "{}",
        asked.body
    );
    assert!(alex.json(&["status"])["spaces"][0]["departed"].is_null());
    let export = app.get("/export");
    assert_eq!(
        export.header("content-disposition"),
        Some("attachment; filename=\"duet-export.json\"")
    );
    let export: serde_json::Value = serde_json::from_str(&export.body).expect("JSON");
    assert!(export.to_string().contains("Sunday walk"), "{export}");

    let left = app.post("/leave", &[("confirm", "yes")]);
    assert_eq!(left.status, 303, "{}", left.body);
    assert!(!alex.json(&["status"])["spaces"][0]["departed"].is_null());
    assert!(sam.ok(&["sync"]).contains("Alex left"));
    let page = app.get("/devices");
    assert!(page.body.contains("left"), "{}", page.body);
    // Nothing is offered that a device no longer in the space could do.
    for action in [
        "/leave",
        "/devices/invite",
        "/devices/add",
        "/devices/verify",
        "/remove",
    ] {
        assert!(!page.body.contains(action), "{action}: {}", page.body);
    }
    // Starting over is: this device can never sync the shared space again. What it
    // holds is offered first in a form the app can still give (the set-aside copy
    // opens only from a terminal).
    assert!(page.body.contains("/start-over"), "{}", page.body);
    assert!(
        page.body
            .contains("Download everything this device can read"),
        "{}",
        page.body
    );
    // Private reflections remain Alex's own to write; replies to shared ones do not.
    let reflections = app.get("/reflections").body;
    assert!(
        reflections.contains(r#"type="hidden" name="private" value="on""#),
        "{reflections}"
    );
    assert!(!reflections.contains("/reply"), "{reflections}");
    // And the partner's app says Alex is gone, not that Alex has joined.
    let sams = App::start(&sam);
    let page = sams.get("/devices");
    assert!(
        page.body
            .contains("<bdi>Alex</bdi> is no longer in your shared space"),
        "{}",
        page.body
    );
    // Sam may start over to share Duet with someone else.
    assert!(page.body.contains("/start-over"), "{}", page.body);
    assert!(
        page.body
            .contains("To share Duet with someone else, start over here"),
        "{}",
        page.body
    );
    // Today and the check-in say so too: ratings are no longer blind.
    let today = sams.get("/").body;
    assert!(
        today.contains(
            "<bdi>Alex</bdi> is no longer in your shared space: your ratings are in the clear"
        ),
        "{today}"
    );
    assert!(!today.contains(" blind"), "{today}");
    let checkin = sams.get("/checkin").body;
    assert!(
        checkin.contains("each rating is in the clear at once"),
        "{checkin}"
    );
    // Alex starts over: the new device's pages say nothing of the one set aside.
    app.wait_for("/", "can no longer change it");
    let started = app.post("/start-over", &[("confirm", "yes")]);
    assert_eq!(
        started.header("location"),
        Some("/setup"),
        "{}",
        started.body
    );
    assert_eq!(app.post("/setup", &[("name", "Alex")]).status, 303);
    let today = app.get("/").body;
    assert!(!today.contains("can no longer change it"), "{today}");
    // A step is no longer offered to Alex, in the app or on the command line.
    let goal = sams
        .get(&format!("/goals/{}", goal_id(&sam, "Sunday walk")))
        .body;
    assert!(goal.contains(r#"name="who""#), "{goal}");
    assert!(!goal.contains(r#"<option value="Alex""#), "{goal}");
    for who in ["Alex", "partner"] {
        let given = sam.run(&["step", "add", "Sunday walk", "Buy maps", "--for", who]);
        assert_ne!(given.code, 0, "{who}: {given:?}");
        assert!(
            given
                .stderr
                .contains("Alex is no longer in this shared space"),
            "{who}: {given:?}"
        );
    }
}

/// The id of the goal titled `title` on `d`.
fn goal_id(d: &Device, title: &str) -> String {
    d.json(&["goal", "list"])
        .as_array()
        .and_then(|goals| goals.iter().find(|g| g["title"] == title))
        .and_then(|g| g["id"].as_str())
        .expect("the goal")
        .to_string()
}

#[test]
fn a_refused_form_shows_back_what_was_typed_into_it() {
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex"]);
    let app = App::start(&alex);
    let words = "I felt <heard> when we talked on Sunday";
    let refused = app.post("/reflections/nosuchreflection/reply", &[("text", words)]);
    assert!(refused.status >= 400, "{}", refused.body);
    assert!(refused.body.contains("What you wrote"), "{}", refused.body);
    assert!(
        refused
            .body
            .contains("I felt &lt;heard&gt; when we talked on Sunday"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("readonly"), "{}", refused.body);
}

/// The text of `page` after `start`, up to `end`.
fn between<'a>(page: &'a str, start: &str, end: &str) -> &'a str {
    let from = page
        .find(start)
        .unwrap_or_else(|| panic!("{start} in {page}"))
        + start.len();
    let len = page[from..].find(end).expect("an end");
    &page[from..from + len]
}

/// A removal made while the relay is down is recorded: the page says it has not reached
/// the relay yet (not an error page), and the next sync sends it.
#[test]
fn a_removal_made_while_the_relay_is_down_is_kept_and_said() {
    let mut relay = Relay::start();
    let (alex, sam) = duet_tests::pair(&relay);
    let key = sam.json(&["status"])["device"]
        .as_str()
        .expect("Sam's device")[..12]
        .to_string();
    alex.ok(&["sync"]);
    let app = App::start(&alex);
    relay.kill();
    let removed = app.post(&format!("/devices/{key}/remove"), &[("confirm", "yes")]);
    assert_eq!(removed.status, 303, "{}", removed.body);
    let page = app.get(removed.header("location").expect("the page"));
    assert!(
        page.body
            .contains("the relay does not have the removal yet"),
        "{}",
        page.body
    );
    relay.restart();
    alex.ok(&["sync"]);
    sam.run(&["sync"]);
    assert!(!sam.json(&["status"])["spaces"][0]["departed"].is_null());
    // Back to the question once the device is gone: said, not an error page.
    let again = app.get(&format!("/devices/{key}/remove/confirm"));
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(again.body.contains("removed already"), "{}", again.body);
}

/// A partner without a terminal backs up from the Partner and devices page (the file a
/// download, sealed: nothing readable in it, the passphrase never shown back), loses the
/// device, and brings it back on the setup page of a new app; it carries on where it was.
#[test]
fn a_backup_downloaded_in_the_app_brings_the_lost_device_back_in_a_new_app() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    alex.ok(&["goal", "add", "Walk on Sundays", "--area", "quality-time"]);
    alex.ok(&["reflect", "--private", "Canary-7q2 only for Alex"]);
    alex.ok(&["sync"]);
    let app = App::start(&alex);
    let pass = "our long walk passphrase";

    let differ = app.post(
        "/backup",
        &[("passphrase", pass), ("again", "another passphrase")],
    );
    assert!(
        differ.body.contains("the two passphrases differ"),
        "{}",
        differ.body
    );
    assert!(
        !differ.body.contains(pass),
        "the passphrase is shown back: {}",
        differ.body
    );
    let short = app.post(
        "/backup",
        &[("passphrase", "tiny-pw"), ("again", "tiny-pw")],
    );
    assert!(short.body.contains("too short"), "{}", short.body);
    assert!(!short.body.contains("tiny-pw"), "{}", short.body);

    let made = app.post("/backup", &[("passphrase", pass), ("again", pass)]);
    assert_eq!(made.status, 200, "{}", made.body);
    let disposition = made.header("content-disposition").unwrap_or_default();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert!(disposition.contains(".duetbackup"), "{disposition}");
    assert!(made.bytes.starts_with(b"DUETBKUP"), "not a backup file");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("downloaded.duetbackup");
    std::fs::write(&file, &made.bytes).expect("save the download");
    for canary in ["Walk on Sundays", "Canary-7q2", "Alex"] {
        assert!(
            !duet_tests::file_contains(&file, canary),
            "{canary} in clear"
        );
    }
    drop(app);
    std::fs::remove_dir_all(&alex.home).expect("the device is lost");

    let new = Device::new();
    let app = App::start(&new);
    app.wait_for("/setup", "Bring back a lost device");
    let wrong = app.post_file(
        "/setup/restore",
        &[("passphrase", "not our passphrase")],
        ("backup", &made.bytes),
    );
    assert!(
        wrong
            .body
            .contains("the passphrase does not open this backup"),
        "{}",
        wrong.body
    );
    assert!(!wrong.body.contains("not our passphrase"), "{}", wrong.body);
    let left = std::fs::read_dir(&new.home).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "a refused restore wrote into the home");

    let once = "5f1d0c9a7e3b4a2f8c6d1e0b9a8f7e6d";
    let back = app.post_file(
        "/setup/restore",
        &[("once", once), ("passphrase", pass)],
        ("backup", &made.bytes),
    );
    assert_eq!(back.status, 303, "{}", back.body);
    // A double click sends the form again: it leads to the same page, not to a refusal.
    let again = app.post_file(
        "/setup/restore",
        &[("once", once), ("passphrase", pass)],
        ("backup", &made.bytes),
    );
    assert_eq!(again.status, 303, "{}", again.body);
    assert_eq!(again.header("location"), back.header("location"));
    let said = app.get(back.header("location").expect("the page it leads to"));
    assert!(said.body.contains("device is back"), "{}", said.body);
    app.wait_for("/", "Walk on Sundays");
    assert!(new.ok(&["reflections", "--private"]).contains("Canary-7q2"));

    // The same device, carrying on: what it writes reaches the partner, with no fork.
    new.ok(&["reflect", "Back on a new phone"]);
    new.ok(&["sync"]);
    sam.ok(&["sync"]);
    assert!(sam.ok(&["reflections"]).contains("Back on a new phone"));
    assert!(!sam.ok(&["status"]).contains("fork"));
}

/// The upload form is a state-changing form like the others: without this run's CSRF
/// token (a page of another site posting a file), it is refused and nothing is written.
#[test]
fn an_upload_without_the_apps_token_restores_nothing() {
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("alex.duetbackup");
    let file = file.to_str().expect("utf-8 path");
    let pass = "correct horse battery staple\n";
    alex.run_with_stdin(&["backup", file, "--passphrase-fd", "0"], Some(pass))
        .ok();
    let bytes = std::fs::read(file).expect("the backup");

    let new = Device::new();
    let app = App::start(&new);
    let (content_type, body) = duet_tests::app::multipart(
        &[("csrf", &"0".repeat(64)), ("passphrase", pass.trim())],
        ("backup", &bytes),
    );
    let (cookie, origin) = (app.cookie(), app.origin());
    let forged = app.request_raw(
        "POST",
        "/setup/restore",
        &[
            ("Cookie", &cookie),
            ("Origin", &origin),
            ("Content-Type", &content_type),
        ],
        &body,
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    let left = std::fs::read_dir(&new.home).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "a forged upload wrote into the home");
    // The same form with the token brings the device back.
    let real = app.post_file(
        "/setup/restore",
        &[("passphrase", pass.trim())],
        ("backup", &bytes),
    );
    assert_eq!(real.status, 303, "{}", real.body);
    // A device is in the home now (the command fails without one).
    new.ok(&["status"]);
}

#[test]
fn a_short_code_made_in_the_app_is_read_aloud_and_a_wrong_guess_burns_it() {
    let relay = Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let app = App::start(&alex);
    let short = |app: &App| {
        let made = app.post("/devices/short", &[]);
        assert_eq!(made.status, 303, "{}", made.body);
        let shown = made
            .header("location")
            .expect("the code's page")
            .to_string();
        let page = app.get(&shown).body;
        let code = between(&page, "id=\"made-code\">", "<").to_string();
        assert_eq!(between(&page, "id=\"made-relay\">", "<"), relay.url);
        (shown, code)
    };

    // Alone in the space, there is no one to compare a safety code with yet.
    assert!(!app.get("/devices").body.contains("/devices/verify"));

    // A wrong guess (another first word): the code is burned, the page says so, and
    // the invite behind it is withdrawn.
    let (shown, code) = short(&app);
    let mut parts: Vec<&str> = code.split('-').collect();
    parts[1] = if parts[1] == "aardvark" {
        "absurd"
    } else {
        "aardvark"
    };
    let wrong = parts.join("-");
    let stranger = Device::new();
    let refused = stranger.run(&["join", &wrong, "--relay", &relay.url, "--name", "Eve"]);
    assert_ne!(refused.code, 0, "{refused:?}");
    app.wait_for(&shown, "so it is burned");
    assert_eq!(alex.open_invites(), 0, "{}", alex.ok(&["invite", "list"]));

    // Two new codes; the first, read right: the partner's device joins.
    let (shown, code) = short(&app);
    let (second_shown, second) = short(&app);
    let sam = Device::new();
    sam.ok(&["join", &code, "--relay", &relay.url, "--name", "Sam"]);
    app.wait_for(&shown, "Your partner's device received the invite");
    app.wait_for("/devices", "You share this space with <bdi>Sam</bdi>");
    assert!(app.get("/devices").body.contains("/devices/verify"));
    // The second, used by someone else afterwards, is not said to let them in.
    let third = Device::new();
    let refused = third.run(&["join", &second, "--relay", &relay.url, "--name", "Eve"]);
    assert_ne!(refused.code, 0, "{refused:?}");
    app.wait_for(
        &second_shown,
        "your partner has already joined with another one",
    );
}

#[test]
fn an_invite_made_in_the_app_on_a_clock_days_behind_is_withdrawn_and_the_clock_named() {
    let relay = Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let two_days_ago = (duet_core::ids::now_ms() - 2 * 86_400_000).to_string();
    let app = App::start_env(&alex, &[("DUET_NOW", &two_days_ago)]);
    let made = app.post("/devices/invite", &[]);
    assert!(
        made.body
            .contains("this computer's clock is 2 days behind the relay's"),
        "{}",
        made.body
    );
    // Nor is a short code shown to be read aloud.
    let short = app.post("/devices/short", &[]);
    assert!(
        short
            .body
            .contains("this computer's clock is 2 days behind the relay's"),
        "{}",
        short.body
    );
    drop(app);
    let states = alex.json(&["invite", "list"]).to_string();
    assert!(!states.contains("\"open\""), "{states}");
}

#[test]
fn leaving_in_the_app_while_the_relay_is_away_says_the_partner_is_not_told_yet() {
    let mut relay = Relay::start();
    let (alex, sam) = pair(&relay);
    let app = App::start(&alex);
    relay.kill();
    app.post("/leave", &[]);
    let left = app.post("/leave", &[("confirm", "yes")]);
    assert_eq!(left.status, 303, "{}", left.body);
    let shown = app.get(left.header("location").expect("the page"));
    assert!(
        shown.body.contains("the relay does not have the leave yet"),
        "{}",
        shown.body
    );
    // The status line counts the leave as not sent, and the app sends it once the
    // relay is back.
    app.wait_for("/", "not sent yet");
    relay.restart();
    app.wait_for("/", "Relay reachable");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if sam.ok(&["sync"]).contains("Alex left") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the leave never went");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Sam removes Alex's laptop from the shared space; it still reads Alex's personal space.
/// The CLI's sync says so; the app's device list said only "removed", with no way to
/// take it out there. It now says what it still reads, and its Remove takes it out.
#[test]
fn a_device_the_partner_removed_is_shown_as_still_reading_the_personal_space_and_can_be_removed() {
    let relay = Relay::start();
    let (alex, sam) = duet_tests::pair(&relay);
    let laptop = Device::new();
    laptop.ok(&["join", &alex.device_code()]);
    let key = laptop.json(&["status"])["device"]
        .as_str()
        .expect("the laptop's key")[..12]
        .to_string();
    sam.ok(&["sync"]);
    sam.ok(&["device", "remove", &key, "--yes"]);
    alex.ok(&["sync"]);
    let app = App::start(&alex);
    let page = app.get("/devices");
    assert!(
        page.body
            .contains("it still reads your private reflections")
            && page.body.contains(&format!("/devices/{key}/remove")),
        "{}",
        page.body
    );
    let removed = app.post(&format!("/devices/{key}/remove"), &[("confirm", "yes")]);
    assert_eq!(removed.status, 303, "{}", removed.body);
    alex.ok(&["sync"]);
    let personal = alex.json(&["status"])["spaces"][1]["members"].to_string();
    assert!(!personal.contains(&key), "{personal}");
}

/// Alex's laptop removes the phone while the phone writes a reflection offline: once
/// the phone learns of its removal, its app says that what was written there never
/// reached the shared space (the reflection still shows on its pages, as the rest).
#[test]
fn a_removed_device_s_app_says_what_it_wrote_never_reached_the_partner() {
    let relay = Relay::start();
    let (alex, _sam) = pair(&relay);
    let phone = Device::new();
    phone.ok(&["join", &alex.device_code()]);
    let key = phone.json(&["status"])["device"]
        .as_str()
        .expect("the phone's key")[..12]
        .to_string();
    alex.ok(&["sync"]);
    alex.ok(&["device", "remove", &key, "--yes"]);
    phone.ok(&["reflect", "Written as the phone was removed"]);
    // In no space any more: the sync says so, and fails.
    assert_eq!(phone.run(&["sync"]).code, 1);
    let app = App::start(&phone);
    app.wait_for("/", "1 change made here never reached it");
}

/// A leave made while the relay is out of reach: the app's Start over says it has not
/// reached the relay and sets nothing aside unless told to start over anyway (for a relay
/// gone for good), and then does.
#[test]
fn the_apps_start_over_waits_for_an_unsent_leave_unless_told_the_relay_is_gone() {
    let relay = Relay::start();
    let (_alex, sam) = pair(&relay);
    sam.ok(&["relay", "set", "http://127.0.0.1:9"]);
    let export = sam.home.join("mine.json");
    sam.ok(&["leave", "--yes", "--export", export.to_str().expect("path")]);
    let app = App::start(&sam);
    let page = app.get("/devices");
    assert!(
        page.body.contains("leave has not reached the relay yet")
            && page.body.contains(r#"name="anyway""#),
        "{}",
        page.body
    );
    let refused = app.post("/start-over", &[("confirm", "yes")]);
    assert!(refused.status >= 400, "{}", refused.body);
    assert!(
        refused.body.contains("nothing was set aside")
            && refused.body.contains("let the app send it first"),
        "{}",
        refused.body
    );
    assert!(duet_core::device::set_aside_in(&sam.home).is_empty());
    let started = app.post("/start-over", &[("confirm", "yes"), ("anyway", "yes")]);
    assert_eq!(
        started.header("location"),
        Some("/setup"),
        "{}",
        started.body
    );
    assert_eq!(duet_core::device::set_aside_in(&sam.home).len(), 1);
}

/// Set up in the app with a creation token the relay has used up: said on the page the
/// setup leads to, as a wrong token is (it led to Today, the refusal only in the status
/// line).
#[test]
fn a_used_up_creation_token_is_said_at_the_apps_setup() {
    let relay = Relay::start_with(&[
        "--create-token",
        "couples-token",
        "--max-creations-per-token",
        "1",
    ]);
    let first = Device::new();
    first.ok(&[
        "init",
        "--name",
        "Kim",
        "--relay",
        &relay.url,
        "--token",
        "couples-token",
    ]);
    let alex = Device::new();
    let app = App::start(&alex);
    let set_up = app.post(
        "/setup",
        &[
            ("name", "Alex"),
            ("relay", &relay.url),
            ("token", "couples-token"),
        ],
    );
    assert_eq!(set_up.status, 303, "{}", set_up.body);
    let said = app.get(set_up.header("location").expect("the page it leads to"));
    assert!(
        said.body.contains("This device is set up, but") && said.body.contains("token"),
        "{}",
        said.body
    );
}
