//! `duet app`'s forms change what the command line reads (one home, no relay): a goal
//! with level texts, a step added, done, reopened, corrected and given to someone, a
//! blind rating and the check-in closed, a reflection written and withdrawn; a goal
//! edited and its status set, a rating corrected, a reflection edited and undone, a
//! goal made one's own; each page answers 200. A join the relay refuses leaves the home
//! ready for a new code, and a home whose join was refused for good joins again on the
//! setup page. A partner who answered a blind rating is told it opens when the
//! rater's device syncs.

use duet_tests::Device;
use duet_tests::app::App;

/// The page a redirect leads to, without the query that names what the form did.
fn page_of(location: &str) -> String {
    location.split('?').next().unwrap_or_default().to_string()
}

/// The value of the hidden field `name` on a page.
fn hidden(page: &str, name: &str) -> String {
    let field = format!(r#"name="{name}" value=""#);
    let at = page
        .find(&field)
        .map(|i| i + field.len())
        .expect("the field");
    page[at..].split('"').next().unwrap_or_default().to_string()
}

#[test]
fn the_apps_forms_make_the_same_changes_as_the_command_line() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let app = App::start(&d);
    let added = app.post(
        "/goals",
        &[("title", "Sunday walk"), ("level0", "Twice a month")],
    );
    assert_eq!(added.status, 303, "{}", added.body);
    let goal = page_of(added.header("location").expect("the goal's page"));
    let id = goal.trim_start_matches("/goals/").to_string();
    assert_eq!(
        d.json(&["goal", "show", &id])["levels"]["0"],
        "Twice a month"
    );

    assert_eq!(
        app.post(&format!("{goal}/steps"), &[("text", "Find a route")])
            .status,
        303
    );
    let step = d.json(&["goal", "show", &id])["steps"][0]["id"]
        .as_str()
        .expect("a step")
        .to_string();
    let done = |d: &Device| d.json(&["goal", "show", &id])["steps"][0]["done"].clone();
    assert_eq!(
        app.post(&format!("{goal}/steps/{step}/done"), &[]).status,
        303
    );
    assert_eq!(done(&d), true);
    assert_eq!(
        app.post(&format!("{goal}/steps/{step}/reopen"), &[]).status,
        303
    );
    assert_eq!(done(&d), false);
    // Changed in its folded form: the text corrected, and the step given to me.
    let edit = format!("{goal}/steps/{step}/edit");
    assert!(app.get(&goal).body.contains(&edit));
    assert_eq!(
        app.post(
            &edit,
            &[("text", "Find a route by the river"), ("who", "me")]
        )
        .status,
        303
    );
    let changed = d.json(&["goal", "show", &id])["steps"][0].clone();
    assert_eq!(changed["text"], "Find a route by the river", "{changed}");
    assert_eq!(changed["assignee"], d.person_id().as_str(), "{changed}");
    assert!(app.get(&goal).body.contains(" for <bdi>you</bdi>"));

    let rated = app.post(
        "/checkin",
        &[("goal", &id), ("level", "1"), ("note", "Nice")],
    );
    assert_eq!(rated.status, 303, "{}", rated.body);
    assert!(app.get("/checkin").body.contains("Close the check-in now"));
    // Without the page's script the form arrives unconfirmed: a page asks first.
    let asked = app.post("/checkin/close", &[]);
    assert_eq!(asked.status, 200, "{}", asked.body);
    assert!(asked.body.contains("Yes, close it"), "{}", asked.body);
    assert!(
        app.get("/checkin").body.contains("Close the check-in now"),
        "still open"
    );
    let closed = app.post("/checkin/close", &[("confirm", "yes")]);
    assert_eq!(closed.status, 303);
    let said = app.get(closed.header("location").expect("where it leads"));
    assert!(
        said.body.contains("The check-in is closed"),
        "{}",
        said.body
    );
    let ratings = d.json(&["goal", "show", &id])["ratings"].clone();
    assert_eq!(ratings[0]["level"], 1, "{ratings}");

    assert_eq!(
        app.post("/reflections", &[("text", "A good week")]).status,
        303
    );
    let r = d.json(&["reflections"])[0]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    // Its buttons and fields say which reflection they are for (they repeat down the
    // page, and a screen reader lists them by name).
    let listed = app.get("/reflections").body;
    for named in [
        "aria-label=\"Withdraw the reflection “A good week”\"",
        "Edit<span class=\"visually-hidden\"> the reflection “A good week”</span>",
    ] {
        assert!(listed.contains(named), "{named} in {listed}");
    }
    let asked = app.post(&format!("/reflections/{r}/withdraw"), &[]);
    assert!(
        asked.status == 200
            && asked.body.contains("Yes, withdraw it")
            && asked.body.contains("A good week"),
        "{}",
        asked.body
    );
    assert_eq!(d.json(&["reflections"]).as_array().map(Vec::len), Some(1));
    assert_eq!(
        app.post(&format!("/reflections/{r}/withdraw"), &[("confirm", "yes")])
            .status,
        303
    );
    assert_eq!(d.json(&["reflections"]).as_array().map(Vec::len), Some(0));
    // The history offers no undo now, and says why (the Undo button went without a word).
    let history = app.get("/history").body;
    assert!(
        history.contains("your latest act withdrew a reflection, which cannot be taken back")
            && !history.contains("class=\"undo\""),
        "{history}"
    );

    // A level that is not one of the five is refused with the command line's words.
    let bad = app.post("/checkin", &[("goal", &id), ("level", "7")]);
    assert!(
        bad.status >= 400 && bad.body.contains("GAS level must be"),
        "{}",
        bad.body
    );
    let none = app.post("/checkin", &[("goal", &id)]);
    assert!(
        none.status >= 400 && none.body.contains("no level was picked"),
        "{}",
        none.body
    );
    for page in [
        "/",
        &goal,
        "/checkin",
        "/reflections",
        "/history",
        "/report",
        "/report/print",
    ] {
        assert_eq!(app.get(page).status, 200, "{page}");
    }
}

#[test]
fn a_home_without_a_device_is_set_up_in_the_app() {
    let d = Device::new();
    let app = App::start(&d);
    let first = app.get("/");
    assert_eq!(first.status, 303, "{}", first.body);
    assert_eq!(first.header("location"), Some("/setup"));
    let form = app.get("/setup");
    assert!(form.body.contains("Your name"), "{}", form.body);
    let csrf_at = form
        .body
        .find("name=\"csrf\" value=\"")
        .expect("a CSRF field")
        + 19;
    let csrf = &form.body[csrf_at..csrf_at + 64];
    let (cookie, origin) = (app.cookie(), app.origin());
    let headers = [("Cookie", cookie.as_str()), ("Origin", origin.as_str())];
    let post = |fields: &[(&str, &str)]| {
        let mut all = vec![("csrf", csrf)];
        all.extend_from_slice(fields);
        app.request("POST", "/setup", &headers, &duet_tests::app::encode(&all))
    };
    // A relay URL the command line would refuse is refused with its words.
    let bad = post(&[("name", "Sam"), ("relay", "ftp://relay")]);
    assert!(
        bad.body.contains("only http and https work"),
        "{}",
        bad.body
    );
    // An address where no relay answers makes no device (it would never sync); the
    // name typed is shown back.
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let nobody = format!("http://{}", free.local_addr().expect("its address"));
    drop(free);
    let down = post(&[("name", "Sam"), ("relay", &nobody)]);
    assert!(
        down.body.contains("no Duet relay answers at") && down.body.contains(">Sam</textarea>"),
        "{}",
        down.body
    );
    assert_eq!(app.get("/").status, 303, "no device made");
    let made = post(&[("name", "Sam")]);
    assert_eq!(made.status, 303, "{}", made.body);
    assert_eq!(d.json(&["status"])["name"], "Sam");
    let today = app.get("/");
    assert_eq!(today.status, 200);
    // The one step left is said where the person lands (it was said nowhere).
    assert!(
        today
            .body
            .contains("Nobody else is in your shared space yet: invite your partner"),
        "{}",
        today.body
    );
    assert_eq!(app.get("/setup").status, 303, "set up once");
}

#[test]
fn the_status_line_says_when_the_relay_is_out_of_reach_and_when_it_is_back() {
    let mut relay = duet_tests::Relay::start();
    let (alex, _sam) = duet_tests::pair(&relay);
    let app = App::start(&alex);
    app.wait_for("/", "Relay reachable");
    relay.kill();
    app.wait_for("/", "Relay not reachable right now");
    alex.ok(&["reflect", "Written while the relay was away"]);
    app.wait_for("/", "not sent yet");
    relay.restart();
    // The relay answers again before the live socket is back: the warning goes once it is.
    app.wait_until("/", "the relay reachable and no reconnecting", |body| {
        body.contains("Relay reachable") && !body.contains("reconnecting")
    });
    app.wait_for("/", "last sync");
}

#[test]
fn corrections_in_the_app_are_those_of_the_command_line() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let app = App::start(&d);
    let added = app.post(
        "/goals",
        &[("title", "Sunday walk"), ("area", "quality-time")],
    );
    let goal = page_of(added.header("location").expect("the goal"));
    let id = goal.trim_start_matches("/goals/").to_string();
    let show = || d.json(&["goal", "show", &id]);
    // The area chosen on Today's form, shown in words; nothing rated, nothing to correct.
    assert_eq!(show()["area"], "quality-time");
    let page = app.get(&goal).body;
    assert!(page.contains("Quality time"), "{page}");
    assert!(!page.contains("Correct my latest rating"), "{page}");

    // The goal's details and a level text, then its status.
    let edited = app.post(
        &format!("{goal}/edit"),
        &[
            ("title", "Long Sunday walk"),
            ("why", "Time to talk"),
            ("level1", "Most Sundays"),
        ],
    );
    assert_eq!(edited.status, 303, "{}", edited.body);
    assert_eq!(show()["title"], "Long Sunday walk");
    assert_eq!(show()["levels"]["1"], "Most Sundays");
    let area = app.post(
        &format!("{goal}/edit"),
        &[
            ("title", "Long Sunday walk"),
            ("was-title", "Long Sunday walk"),
            ("area", "communication"),
            ("was-area", "quality-time"),
        ],
    );
    assert_eq!(area.status, 303, "{}", area.body);
    assert_eq!(show()["area"], "communication");
    assert_eq!(show()["title"], "Long Sunday walk");
    assert!(app.get(&goal).body.contains("Edit the goal"));
    assert_eq!(show()["owner"], "shared");
    // Made one's own with the same form (as `duet goal edit --owner me`), and said so.
    let mine = app.post(
        &format!("{goal}/edit"),
        &[("title", "Long Sunday walk"), ("owner", "me")],
    );
    assert_eq!(mine.status, 303, "{}", mine.body);
    assert_eq!(show()["owner"], d.person_id().as_str());
    assert!(app.get(&goal).body.contains("<bdi>Alex</bdi>'s own goal"));
    assert!(app.get("/").body.contains("Your own goal"));
    // A page left open writes back only what was changed on it: the title changed
    // elsewhere meanwhile (the partner's sync, another window) stays.
    let page = app.get(&goal).body;
    assert!(
        page.contains(r#"name="was-title" value="Long Sunday walk""#),
        "the form says what it showed"
    );
    d.ok(&["goal", "edit", &id, "--title", "Longer Sunday walk"]);
    let stale = app.post(
        &format!("{goal}/edit"),
        &[
            ("title", "Long Sunday walk"),
            ("was-title", "Long Sunday walk"),
            ("why", "Time to talk, and to walk"),
            ("was-why", "Time to talk"),
        ],
    );
    assert_eq!(stale.status, 303, "{}", stale.body);
    assert_eq!(show()["title"], "Longer Sunday walk");
    assert_eq!(show()["why"], "Time to talk, and to walk");
    // Today's form cuts nothing a person pastes (a browser cuts at a field's maxlength
    // without a word): a title of 250 characters is kept whole.
    let today = app.get("/").body;
    assert!(!today.contains("maxlength"), "{today}");
    let long = "Long title ".repeat(25);
    let added = app.post("/goals", &[("title", long.trim())]);
    assert_eq!(added.status, 303, "{}", added.body);
    assert!(d.ok(&["goal", "list"]).contains("Long title Long title"));
    // A goal added as one's own from Today's form.
    let own = app.post("/goals", &[("title", "Breathe first"), ("mine", "1")]);
    assert_eq!(own.status, 303, "{}", own.body);
    assert_eq!(
        d.json(&["goal", "show", "breathe"])["owner"],
        d.person_id().as_str()
    );
    assert_eq!(
        app.post(&format!("{goal}/status"), &[("status", "paused")])
            .status,
        303
    );
    assert_eq!(show()["status"], "paused");
    // Its page offers no rating a check-in would refuse, and says how to rate it.
    let paused = app.get(&goal).body;
    assert!(
        !paused.contains("Rate this goal") && paused.contains("set this one active"),
        "{paused}"
    );
    // Off Today's list, its page is still a link away (where it is made active again).
    let today = app.get("/").body;
    assert!(
        today.contains("Paused, achieved and archived goals (1)")
            && today.contains(&format!("href=\"{goal}\"")),
        "{today}"
    );
    assert!(
        app.post(&format!("{goal}/status"), &[("status", "gone")])
            .status
            >= 400
    );
    app.post(&format!("{goal}/status"), &[("status", "active")]);

    // A rating, corrected (as `duet rate --amend`).
    app.post("/checkin", &[("goal", &id), ("level", "1")]);
    app.post("/checkin/close", &[("confirm", "yes")]);
    let page = app.get(&goal).body;
    assert!(page.contains("Correct my latest rating"), "{page}");
    // The chart says whose line is whose in words, not by colour alone.
    assert!(page.contains("class=\"legend\""), "{page}");
    let shown = hidden(&page, "corrects");
    let amended = app.post(
        &format!("{goal}/amend"),
        &[("level", "-1"), ("corrects", &shown)],
    );
    assert_eq!(amended.status, 303, "{}", amended.body);
    let progress = d.json(&["progress"]);
    assert_eq!(
        progress["goals"][0]["partners"][0]["latest"], -1,
        "{progress}"
    );
    // A page left open while a newer rating was made corrects nothing (it corrected
    // the newer one, which the page never showed).
    let page = app.get(&goal).body;
    assert!(
        page.contains("−1<span class=\"muted\"> (corrected)</span>"),
        "{page}"
    );
    let shown = hidden(&page, "corrects");
    d.ok(&["rate", &id, "2"]);
    let stale = app.post(
        &format!("{goal}/amend"),
        &[("level", "0"), ("corrects", &shown)],
    );
    assert!(stale.status >= 400, "{}", stale.body);
    assert!(stale.body.contains("nothing was written"), "{}", stale.body);
    let progress = d.json(&["progress"]);
    assert_eq!(
        progress["goals"][0]["partners"][0]["latest"], 2,
        "{progress}"
    );

    // A reflection edited, then the edit undone (its author's latest change).
    app.post("/reflections", &[("text", "A good weak")]);
    let r = d.json(&["reflections"])[0]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    let fixed = app.post(
        &format!("/reflections/{r}/edit"),
        &[("text", "A good week")],
    );
    assert_eq!(fixed.status, 303, "{}", fixed.body);
    assert_eq!(d.json(&["reflections"])[0]["text"], "A good week");
    // The button names what it takes back, and takes back only that: a page left open
    // while something newer was done undoes nothing.
    let history = app.get("/history").body;
    assert!(
        history.contains("Undo the edit of your shared reflection")
            && history.contains("A good week"),
        "{history}"
    );
    let expect = hidden(&history, "expect");
    app.post("/reflections", &[("text", "Written in another window")]);
    let stale = app.post("/undo", &[("expect", &expect)]);
    assert!(
        stale.status >= 400 && stale.body.contains("nothing was undone"),
        "{}",
        stale.body
    );
    assert_eq!(d.json(&["reflections"]).as_array().map(Vec::len), Some(2));
    // The newer reflection is withdrawn, and the page it leads to says so.
    let newer = hidden(&app.get("/history").body, "expect");
    let withdrawn = app.post("/undo", &[("expect", &newer)]);
    assert_eq!(withdrawn.status, 303);
    let said = app
        .get(withdrawn.header("location").expect("a redirect"))
        .body;
    assert!(
        said.contains("Withdrew your shared reflection")
            && said.contains("Written in another window"),
        "{said}"
    );
    // Then the edit is taken back: the reflection stays, with its words before it.
    let undone = app.post("/undo", &[("expect", &expect)]);
    assert_eq!(undone.status, 303);
    let left = d.json(&["reflections"]);
    assert_eq!(left.as_array().map(Vec::len), Some(1), "{left}");
    assert_eq!(left[0]["text"], "A good weak", "{left}");
    let said = app.get(undone.header("location").expect("a redirect")).body;
    assert!(
        said.contains("Took back your edit") && said.contains("A good weak"),
        "{said}"
    );
    // Every id on every page names one element (a label's `for`, a region's name).
    for page in duet_tests::app::PAGES.into_iter().chain([goal.as_str()]) {
        let body = app.get(page).body;
        let mut ids: Vec<&str> = body
            .split(" id=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        ids.sort_unstable();
        let twice: Vec<_> = ids.windows(2).filter(|w| w[0] == w[1]).collect();
        assert!(twice.is_empty(), "{page}: ids used twice: {twice:?}");
    }
    // A refusal with nothing typed leads back to the page the form was sent from.
    let refused = app.post_from(
        "/reflections",
        "/reflections/nosuch/withdraw",
        &[("confirm", "yes")],
    );
    assert!(refused.status >= 400, "{}", refused.body);
    assert!(
        refused
            .body
            .contains(r#"href="/reflections">Back to the page"#),
        "{}",
        refused.body
    );
}

#[test]
fn a_join_the_relay_refuses_leaves_the_home_ready_for_a_new_code() {
    let relay = duet_tests::Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let revoked = alex.json(&["invite"])["code"]
        .as_str()
        .expect("a code")
        .to_string();
    alex.ok(&["invite", "revoke", "--all"]);
    alex.ok(&["sync"]);
    let sam = Device::new();
    let app = App::start(&sam);
    let refused = app.post("/setup/join", &[("name", "Sam"), ("code", &revoked)]);
    assert!(
        refused.status >= 400 && refused.body.contains("refused to let this device join"),
        "{}",
        refused.body
    );
    assert_eq!(app.get("/").status, 303, "still no device: setup again");
    let code = alex.json(&["invite"])["code"]
        .as_str()
        .expect("a code")
        .to_string();
    let joined = app.post("/setup/join", &[("name", "Sam"), ("code", &code)]);
    assert_eq!(joined.status, 303, "{}", joined.body);
    assert_eq!(sam.json(&["status"])["name"], "Sam");
    // Today says the join is done, and with whom (it said nothing).
    let today = app.get(joined.header("location").expect("a redirect")).body;
    assert!(
        today.contains("This device joined your shared space, with <bdi>Alex</bdi>"),
        "{today}"
    );
    alex.ok(&["sync"]);
    assert!(alex.ok(&["device", "list"]).contains("Sam"));
}

/// A partner who calls themself "me" (or "nobody") is a choice of their own in the
/// app's "for whom" list, told apart from this person's own "me": a step given to them
/// goes to them.
#[test]
fn a_step_is_given_to_a_partner_named_me_and_not_to_oneself() {
    let relay = duet_tests::Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let sam = Device::new();
    sam.ok(&["join", &alex.invite_code(), "--name", "me"]);
    alex.ok(&["sync"]);
    alex.ok(&["goal", "add", "Sunday walk", "--area", "quality-time"]);
    let app = App::start(&alex);
    let goal = app.first_goal_link();
    let page = app.get(&goal).body;
    // The choices of the new step's "for whom" list, in order: either of you, me, then
    // the partner.
    let list = page
        .split("name=\"who\"")
        .nth(1)
        .and_then(|l| l.split("</select>").next())
        .expect("the new step's list");
    let values: Vec<String> = list
        .split("<option value=\"")
        .skip(1)
        .filter_map(|o| o.split('"').next())
        .map(str::to_string)
        .collect();
    assert_eq!(values.len(), 3, "{values:?}");
    assert_eq!(&values[..2], ["nobody", "me"], "{values:?}");
    let added = app.post(
        &format!("{goal}/steps"),
        &[("text", "Pack the thermos"), ("who", &values[2])],
    );
    assert_eq!(added.status, 303, "{}", added.body);
    let id = goal.trim_start_matches("/goals/");
    let step = alex.json(&["goal", "show", id])["steps"][0].clone();
    assert_eq!(step["assignee"], sam.person_id().as_str(), "{step}");
}

/// Sam joins in the app while the relay is down and writes a private reflection; the
/// code is withdrawn before the join reaches the relay. Today then leads to the setup
/// page (nothing else can be done there), and joining again with a new code keeps what
/// was written, set aside in a folder of the home, and says where.
#[test]
fn joining_again_after_a_refused_join_keeps_what_was_written_meanwhile() {
    let mut relay = duet_tests::Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let first = alex.json(&["invite"])["code"]
        .as_str()
        .expect("a code")
        .to_string();
    relay.kill();
    let sam = Device::new();
    let app = App::start(&sam);
    let pending = app.post("/setup/join", &[("name", "Sam"), ("code", &first)]);
    assert_eq!(pending.status, 303, "{}", pending.body);
    let written = app.post(
        "/reflections",
        &[("text", "Words for me alone"), ("private", "on")],
    );
    assert_eq!(written.status, 303, "{}", written.body);
    alex.run(&["invite", "revoke", "--all"]);
    relay.restart();
    alex.ok(&["sync"]);
    let refused = sam.run(&["sync"]);
    assert_ne!(refused.code, 0, "{refused:?}");
    let today = app.get("/");
    assert_eq!(today.status, 303);
    assert_eq!(today.header("location"), Some("/setup"));

    let second = alex.json(&["invite"])["code"]
        .as_str()
        .expect("a code")
        .to_string();
    let joined = app.post("/setup/join", &[("name", "Sam"), ("code", &second)]);
    assert_eq!(joined.status, 303, "{}", joined.body);
    let to = joined.header("location").expect("where to").to_string();
    let said = app.get(&to);
    assert!(said.body.contains("is kept in"), "{}", said.body);
    let folder = duet_core::device::set_aside_in(&sam.home)
        .pop()
        .expect("the earlier device set aside");
    let earlier = Device::at(sam.home.join(folder));
    assert!(
        earlier
            .ok(&["reflections", "--private"])
            .contains("Words for me alone")
    );
    alex.ok(&["sync"]);
    assert!(alex.ok(&["device", "list"]).contains("Sam"));
}

/// A goal rated many times lists its newest ratings and links to older ones, rather than
/// a page of every rating ever made (100,000 rows, megabytes, at 100,000 ratings).
#[test]
fn a_long_rated_goal_lists_its_newest_ratings_and_links_to_older_ones() {
    use duet_core::device::Device as CoreDevice;
    use duet_core::store::SpaceKind;
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Sunday walk", "--area", "quality-time"]);
    {
        let mut dev = CoreDevice::open(&d.home).expect("open");
        let (_, doc, _) = dev.load(SpaceKind::Shared).expect("load");
        let goal = doc.goals().expect("goals")[0].id.clone();
        dev.edit(SpaceKind::Shared, |doc, me| {
            let mut changes = Vec::new();
            for i in 0..60i64 {
                let level = duet_core::Level::try_from(i % 5 - 2).expect("level");
                let note = format!("walk number {i:02}");
                let at = 1_700_000_000_000 + i * 86_400_000;
                changes.extend(doc.rate(&goal, &me.person_id, level, Some(&note), at)?.1);
            }
            Ok(((), changes))
        })
        .expect("sixty ratings");
    }
    let app = App::start(&d);
    let goal = app.first_goal_link();
    let page = app.get(&goal);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("walk number 59"), "the newest is listed");
    assert!(
        page.body.contains("walk number 10"),
        "the fiftieth newest too"
    );
    assert!(!page.body.contains("walk number 09"), "older ones are not");
    assert!(page.body.contains("The latest 50 of 60 ratings."));
    let more = format!("{goal}?ratings=200#ratings");
    assert!(page.body.contains(&more), "a link lists more");
    let all = app.get(&format!("{goal}?ratings=200"));
    assert!(
        all.body.contains("walk number 00"),
        "the link lists them all"
    );
    assert!(!all.body.contains("The latest"));
    // Whatever the query says, the page answers with its first page.
    let odd = app.get(&format!("{goal}?ratings=lots"));
    assert_eq!(odd.status, 200);
    assert!(odd.body.contains("The latest 50 of 60 ratings."));
}

#[test]
fn the_app_says_a_blind_rating_answered_opens_when_its_rater_syncs() {
    let relay = duet_tests::Relay::start();
    let (alex, sam) = duet_tests::pair(&relay);
    alex.ok(&["goal", "add", "Sunday walk", "--area", "quality-time"]);
    alex.ok(&["rate", "Sunday walk", "-1"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    let id = sam.json(&["goal", "list"])[0]["id"]
        .as_str()
        .expect("the goal's id")
        .to_string();
    let app = App::start(&sam);
    let today = app.get("/").body;
    assert!(
        today.contains("<bdi>Alex</bdi> has rated; rate to see it"),
        "{today}"
    );
    assert!(
        !today.contains("Alex</bdi></strong>: <span class=\"muted\">not rated yet"),
        "{today}"
    );
    assert!(today.contains("rated blind"), "{today}");
    let form = app.get(&format!("/checkin?goal={id}")).body;
    assert!(form.contains("Your partner has rated this goal"), "{form}");

    let rated = app.post("/checkin", &[("goal", &id), ("level", "1")]);
    assert_eq!(rated.status, 303, "{}", rated.body);
    // Alex's device, not running, is the only one that can open the seal now.
    let today = app.get("/").body;
    assert!(
        today.contains("<bdi>Alex</bdi> has rated; shown once <bdi>Alex</bdi>")
            && today.contains("s device syncs"),
        "{today}"
    );
    assert!(!today.contains("rate to see it"), "{today}");
    let page = app.get(&format!("/goals/{id}")).body;
    assert!(
        page.contains("sealed: shown once Alex") && !page.contains("shown once both have rated"),
        "{page}"
    );
    let form = app.get(&format!("/checkin?goal={id}")).body;
    assert!(
        form.contains("You have both rated it in this check-in"),
        "{form}"
    );
    assert!(!form.contains("Your partner has rated this goal"), "{form}");
}

#[test]
fn the_history_filter_tells_two_people_of_one_name_apart() {
    let relay = duet_tests::Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let other = Device::new();
    other.ok(&["join", &alex.invite_code(), "--name", "Alex"]);
    other.ok(&["reflect", "From the other Alex"]);
    other.ok(&["sync"]);
    alex.ok(&["sync"]);
    let id = |d: &Device| d.person_id()[..4].to_string();
    let (mine, theirs) = (
        format!("Alex #{}", id(&alex)),
        format!("Alex #{}", id(&other)),
    );
    let app = App::start(&alex);
    let page = app.get("/history").body;
    for name in [&mine, &theirs] {
        assert!(
            page.contains(&format!("<option value=\"{name}\"")),
            "{page}"
        );
    }
    let by = app.get(&format!("/history?by=Alex%20%23{}", id(&other)));
    assert_eq!(by.status, 200, "{}", by.body);
    assert!(
        by.body
            .contains(&format!("<bdi>{theirs}</bdi> wrote a reflection"))
            && !by.body.contains(&format!("<bdi>{mine}</bdi> joined")),
        "{}",
        by.body
    );
}

#[test]
fn ones_own_blind_rating_is_listed_once_on_the_goal_page() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Sunday walk", "--area", "quality-time"]);
    assert!(
        d.ok(&["rate", "walk", "-1", "--note", "Rained twice"])
            .contains("sealed")
    );
    let app = App::start(&d);
    let page = app.get(&app.first_goal_link()).body;
    assert_eq!(page.matches("Rained twice").count(), 1, "{page}");
    assert!(
        !page.contains("sealed: shown once both have rated"),
        "{page}"
    );
    assert!(
        page.contains("(sealed: your partner sees it once both have rated)"),
        "{page}"
    );
}

#[test]
fn a_device_removed_by_its_partner_is_told_so_in_the_app() {
    let relay = duet_tests::Relay::start();
    let (alex, _sam) = duet_tests::pair(&relay);
    let second = Device::new();
    let code = alex.json(&["device", "add"])["code"]
        .as_str()
        .expect("a device code")
        .to_string();
    alex.ok(&["goal", "add", "Sunday walk", "--area", "quality-time"]);
    alex.ok(&["step", "add", "Sunday walk", "Set a reminder"]);
    alex.ok(&[
        "reflect",
        "--goal",
        "Sunday walk",
        "How was Sunday for you?",
    ]);
    alex.ok(&["sync"]);
    second.ok(&["join", &code]);
    let key = second.json(&["status"])["device"]
        .as_str()
        .expect("its key")
        .to_string();
    let app = App::start(&second);
    app.wait_for("/", "Relay reachable");
    alex.ok(&["device", "remove", &key[..12], "--yes"]);
    let told = app.wait_for("/", "this device was removed from the shared space by Alex");
    assert!(!told.body.contains("not sent yet"), "{}", told.body);
    // Its relay is still set: the status line says why it no longer syncs.
    let today = app.wait_for("/", "Not syncing: this device is no longer in a space");
    assert!(!today.body.contains("No relay set"), "{}", today.body);
    // Its pages still read, but offer nothing it can no longer do.
    let today = app.wait_for("/", "nothing more can be rated or added");
    assert!(!today.body.contains(r#"action="/goals""#), "{}", today.body);
    assert!(!today.body.contains("blind"), "{}", today.body);
    let checkin = app.get("/checkin").body;
    assert!(checkin.contains("Nothing more can be rated"), "{checkin}");
    assert!(!checkin.contains("<form"), "{checkin}");
    // Nor a step, a reply, a reflection or an undo.
    let goal = app.get(&app.first_goal_link()).body;
    for action in ["/steps", "/reply", "/edit", "/withdraw"] {
        assert!(!goal.contains(action), "{action}: {goal}");
    }
    assert!(
        goal.contains("Set a reminder"),
        "the steps are still listed: {goal}"
    );
    // Removed by its own person's other device, it is out of both spaces: nothing to
    // write at all, what it holds still read.
    let reflections = app.get("/reflections").body;
    assert!(
        !reflections.contains("<form method=\"post\""),
        "{reflections}"
    );
    assert!(
        reflections.contains("How was Sunday for you?"),
        "{reflections}"
    );
    assert!(
        reflections.contains("no longer in your spaces"),
        "{reflections}"
    );
    assert!(!app.get("/history").body.contains(r#"action="/undo""#));
    // Nor is it told its personal space is untouched: it is out of that one too.
    let devices = app.get("/devices").body;
    assert!(
        devices.contains("What it held stays readable here") && !devices.contains("untouched"),
        "{devices}"
    );
}

#[test]
fn a_reply_to_a_reflection_gone_meanwhile_points_to_the_reflections_page() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let app = App::start(&d);
    let refused = app.post(
        "/reflections/0123456789abcdef0123456789abcdef/reply",
        &[("text", "An answer")],
    );
    assert!(refused.status >= 400, "{}", refused.body);
    assert!(
        refused.body.contains("the Reflections page lists them") && !refused.body.contains("`duet"),
        "{}",
        refused.body
    );
}

#[test]
fn an_edit_over_a_title_changed_meanwhile_is_refused_and_keeps_both_words() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Sunday talk", "--area", "communication"]);
    let app = App::start(&d);
    let goal = app.first_goal_link();
    // The page is open; meanwhile the title changes (another window, or the partner).
    d.ok(&["goal", "edit", "sunday", "--title", "Sunday talk (Sam)"]);
    let edit = format!("{goal}/edit");
    let refused = app.post(
        &edit,
        &[
            ("title", "Sunday talk (Alex)"),
            ("was-title", "Sunday talk"),
        ],
    );
    assert_ne!(refused.status, 303, "{}", refused.body);
    assert!(
        refused.body.contains("Sunday talk (Sam)") && refused.body.contains("Sunday talk (Alex)"),
        "{}",
        refused.body
    );
    assert_eq!(
        d.json(&["goal", "show", "sunday"])["title"],
        "Sunday talk (Sam)"
    );
    // A field the form did not change is not in the way of one it did.
    let why = app.post(
        &edit,
        &[
            ("title", "Sunday talk"),
            ("was-title", "Sunday talk"),
            ("why", "We drift apart"),
            ("was-why", ""),
        ],
    );
    assert_eq!(why.status, 303, "{}", why.body);
    let shown = d.json(&["goal", "show", "sunday"]);
    assert_eq!(shown["title"], "Sunday talk (Sam)");
    assert_eq!(shown["why"], "We drift apart");
}

/// A step's text changed elsewhere since the page was shown (the command line, the
/// partner) is not written over by the page's form: refused, with both texts.
#[test]
fn a_step_edit_over_a_text_changed_meanwhile_is_refused_and_keeps_both_words() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Sunday talk", "--area", "communication"]);
    d.ok(&["step", "add", "sunday", "Find a quiet room"]);
    let app = App::start(&d);
    let goal = app.first_goal_link();
    let step = d.json(&["goal", "show", "sunday"])["steps"][0]["id"]
        .as_str()
        .expect("a step")
        .to_string();
    d.ok(&[
        "step",
        "edit",
        "sunday",
        "quiet",
        "Find a quiet room upstairs",
    ]);
    let refused = app.post(
        &format!("{goal}/steps/{step}/edit"),
        &[
            ("text", "Find a quiet café"),
            ("was-text", "Find a quiet room"),
        ],
    );
    assert_ne!(refused.status, 303, "{}", refused.body);
    assert!(
        refused.body.contains("Find a quiet room upstairs")
            && refused.body.contains("Find a quiet café"),
        "{}",
        refused.body
    );
    assert_eq!(
        d.json(&["goal", "show", "sunday"])["steps"][0]["text"],
        "Find a quiet room upstairs"
    );
}

/// An edit form that arrives while another `duet` process writes the goal (the command
/// line beside the app holds the home) is compared with what that process wrote, once
/// the app's turn comes, not with what the goal read before: the edit is refused and
/// the other words stay.
#[test]
fn an_edit_form_that_waited_for_another_command_is_compared_with_what_it_wrote() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Sunday talk", "--area", "communication"]);
    let app = App::start(&d);
    let goal = app.first_goal_link();
    let mut other = duet_core::device::Device::open(&d.home).expect("open the home");
    let answer = std::thread::scope(|s| {
        let mut post = None;
        other
            .exclusively(|other| {
                post = Some(s.spawn(|| {
                    app.post(
                        &format!("{goal}/edit"),
                        &[
                            ("title", "Sunday talk (Alex)"),
                            ("was-title", "Sunday talk"),
                        ],
                    )
                }));
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                while !app.said().contains("the app waits for it") {
                    assert!(std::time::Instant::now() < deadline, "{}", app.said());
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                // Written while the app's form waits for the home.
                let title = duet_core::app::GoalChanges {
                    title: Some("Sunday talk (Sam)".into()),
                    ..Default::default()
                };
                other.edit_goal("sunday", title).map(drop)
            })
            .expect("the other command writes");
        post.map(|p| p.join().expect("the form is answered"))
    })
    .expect("the form was sent");
    assert_ne!(answer.status, 303, "{}", answer.body);
    assert!(answer.body.contains("Sunday talk (Sam)"), "{}", answer.body);
    assert_eq!(
        d.json(&["goal", "show", "sunday"])["title"],
        "Sunday talk (Sam)"
    );
}

/// A copy of this device's home (a restored backup, a copied folder) sends first what
/// both wrote: the app's sync makes its own change again after the copy's, and says so
/// on the status line, where the live sync's next round does not wipe it out.
#[test]
fn another_copy_of_the_device_writing_first_is_said_in_the_app() {
    let relay = duet_tests::Relay::start();
    let (alex, sam) = duet_tests::pair(&relay);
    alex.ok(&["sync"]);
    let copy_dir = tempfile::tempdir().expect("tempdir");
    let copy = Device::at(copy_dir.path().join("copy"));
    let cp = std::process::Command::new("cp")
        .args(["-r"])
        .arg(&alex.home)
        .arg(&copy.home)
        .status()
        .expect("cp runs");
    assert!(cp.success());
    // Both write; the copy sends first, and the app's first sync finds it.
    alex.ok(&["reflect", "Written on the original"]);
    copy.ok(&["reflect", "Written on the copy"]);
    copy.ok(&["sync"]);
    let app = App::start(&alex);
    app.wait_for("/", "another copy of this device");
    // The live sync goes on (the partner's reflection arrives) and the warning stays.
    sam.ok(&["sync"]);
    sam.ok(&["reflect", "Sam's answer"]);
    sam.ok(&["sync"]);
    let later = app.wait_for("/reflections", "Sam's answer");
    assert!(
        later.body.contains("another copy of this device"),
        "{}",
        later.body
    );
    let both = alex.ok(&["reflections"]);
    assert!(
        both.contains("Written on the copy") && both.contains("Written on the original"),
        "{both}"
    );
}

#[test]
fn a_device_that_joined_while_the_relay_was_down_finishes_joining_on_its_own() {
    let mut relay = duet_tests::Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    alex.ok(&["sync"]);
    // The code is made while the relay is down: it reaches the relay only later.
    relay.kill();
    let code = alex.json(&["device", "add"])["code"]
        .as_str()
        .expect("a device code")
        .to_string();
    let second = Device::new();
    let app = App::start(&second);
    // The join is made here; Today says why it is not finished yet.
    let joined = app.post("/setup/join", &[("code", &code)]);
    assert_eq!(joined.header("location"), Some("/"), "{}", joined.body);
    let today = app.get("/").body;
    assert!(
        today.contains("joined on this device") || today.contains("sync did not finish"),
        "{today}"
    );
    // Not "invite your partner": the space's members are not known here yet.
    assert!(
        !today.contains("Nobody else is in your shared space"),
        "{today}"
    );
    relay.restart();
    // The relay does not know the code yet: the join is refused for now.
    app.wait_for("/", "no such invite");
    alex.ok(&["sync"]);
    // No socket tells the app (the relay refuses a device not yet a member): its own
    // retry finishes the join.
    app.wait_until("/", "the join finished", |_| {
        second.json(&["status"])["spaces"]
            .as_array()
            .is_some_and(|spaces| {
                spaces.iter().all(|s| {
                    s["unsent_events"] == 0 && s["members"].as_array().map(Vec::len) == Some(2)
                })
            })
    });
}

/// A browser sends a textarea's line breaks as CRLF and strips them from a one-line
/// field: what the app writes has the command line's LF, and a form sent back unchanged
/// is not taken for an edit made over someone else's.
#[test]
fn text_from_a_browser_form_has_the_command_lines_line_breaks_and_edits_pass() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let two_lines = d.json(&["goal", "add", "Two\nlines", "--area", "trust"])["id"]
        .as_str()
        .expect("id")
        .to_string();
    d.ok(&["goal", "edit", &two_lines[..8], "--why", "one\ntwo"]);
    let app = App::start(&d);
    let goal = format!("/goals/{two_lines}");
    let page = app.get(&goal).body;
    assert!(
        page.contains(r#"name="was-title" value="Twolines""#),
        "the title's field shows it on one line, as a browser sends it back: {page}"
    );
    // Sent as a browser sends the form: the title as its field shows it, the why with
    // CRLF, one line added to it.
    let saved = app.post(
        &format!("{goal}/edit"),
        &[
            ("title", "Twolines"),
            ("was-title", "Twolines"),
            ("why", "one\r\ntwo\r\nthree"),
            ("was-why", "one\r\ntwo"),
        ],
    );
    assert_eq!(saved.status, 303, "{}", saved.body);
    let shown = d.json(&["goal", "show", &two_lines[..8]]);
    assert_eq!(shown["why"], "one\ntwo\nthree");
    assert_eq!(
        shown["title"], "Two\nlines",
        "a title left alone stays as it was"
    );
    // A reflection written in paragraphs reaches the terminal without a stray \r.
    let wrote = app.post("/reflections", &[("text", "Para one.\r\n\r\nPara two.")]);
    assert_eq!(wrote.status, 303, "{}", wrote.body);
    assert_eq!(
        d.json(&["reflections"])[0]["text"],
        "Para one.\n\nPara two."
    );
}

#[test]
fn a_reflection_edited_elsewhere_since_its_page_was_shown_is_not_overwritten() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["reflect", "First words"]);
    let id = d.json(&["reflections"])[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let app = App::start(&d);
    assert!(
        app.get("/reflections")
            .body
            .contains(r#"name="was-text" value="First words""#)
    );
    // Meanwhile, on the command line:
    d.ok(&["reflect", "--edit", "last", "Second words"]);
    let edit = format!("/reflections/{id}/edit");
    let stale = app.post(&edit, &[("text", "Tab words"), ("was-text", "First words")]);
    assert_ne!(stale.status, 303, "{}", stale.body);
    assert!(
        stale.body.contains("Second words") && stale.body.contains("Tab words"),
        "both texts are shown: {}",
        stale.body
    );
    assert_eq!(d.json(&["reflections"])[0]["text"], "Second words");
    let fresh = app.post(
        &edit,
        &[("text", "Third words"), ("was-text", "Second words")],
    );
    assert_eq!(fresh.status, 303, "{}", fresh.body);
    assert_eq!(d.json(&["reflections"])[0]["text"], "Third words");
}

#[test]
fn rate_this_goal_on_a_paused_goal_says_it_is_paused_and_a_rating_is_confirmed() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let paused = d.json(&["goal", "add", "Evening walk", "--area", "trust"])["id"]
        .as_str()
        .expect("id")
        .to_string();
    let active = d.json(&["goal", "add", "Sunday talk", "--area", "trust"])["id"]
        .as_str()
        .expect("id")
        .to_string();
    d.ok(&["goal", "status", &paused[..8], "paused"]);
    let app = App::start(&d);
    let page = app.get(&format!("/checkin?goal={paused}")).body;
    assert!(page.contains("is paused"), "{page}");
    assert!(!page.contains("You have rated every goal"), "{page}");
    // A link by the start of an id finds the goal as `duet rate` does.
    let page = app.get(&format!("/checkin?goal={}", &active[..8])).body;
    assert!(page.contains("<h2 dir=\"auto\">Sunday talk</h2>"), "{page}");
    // A rating of a goal paused since its form was shown is saved and confirmed.
    let rated = app.post("/checkin", &[("goal", paused.as_str()), ("level", "1")]);
    assert_eq!(rated.status, 303, "{}", rated.body);
    let back = rated.header("location").expect("where to").to_string();
    let page = app.get(&back).body;
    assert!(page.contains("Rated “<bdi>Evening walk</bdi>”"), "{page}");
    assert!(
        page.contains("It is paused now, so Progress does not show this rating"),
        "the rating is kept, not counted, and that is said: {page}"
    );
}

/// Joined in the app with a code older than a removal made apart: the page says the
/// device cannot catch up and how to join again, as `duet join` does.
#[test]
fn a_join_in_the_app_with_a_code_older_than_a_removal_says_it_cannot_catch_up() {
    let mut relay = duet_tests::Relay::start();
    let phone_code = duet_tests::code_older_than_a_removal_made_apart(&mut relay);
    let phone = Device::new();
    let app = App::start(&phone);
    let joined = app.post("/setup/join", &[("code", &phone_code)]);
    assert_ne!(joined.status, 303, "{}", joined.body);
    assert!(
        joined.body.contains("made before a device was removed"),
        "{}",
        joined.body
    );
}

#[test]
fn an_address_edited_by_hand_gets_the_calm_problem_page() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let app = App::start(&d);
    for address in ["/checkin?rated=x&sealed=maybe", "/checkin?sealed=2"] {
        let page = app.get(address);
        assert_eq!(page.status, 400, "{address}: {}", page.body);
        assert!(
            page.body.contains("Something needs attention")
                && page.body.contains("use the page's links and forms"),
            "{address}: {}",
            page.body
        );
    }
}

#[test]
fn a_checkin_form_from_a_second_tab_or_a_closed_round_rates_nothing() {
    let relay = duet_tests::Relay::start();
    let (alex, _sam) = duet_tests::pair(&relay);
    alex.ok(&["goal", "add", "Cook together", "--area", "quality-time"]);
    let app = App::start(&alex);
    let ratings = || {
        alex.json(&["export"])["shared"]["sealed"]
            .as_array()
            .map(Vec::len)
    };
    // Two tabs show the same form; the first rates.
    let page = app.get("/checkin").body;
    let goal = hidden(&page, "goal");
    let seen = hidden(&page, "seen");
    let form = |level: &'static str| {
        vec![
            ("goal", goal.clone()),
            ("seen", seen.clone()),
            ("level", level.to_string()),
        ]
    };
    let post = |fields: Vec<(&str, String)>| {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        app.post("/checkin", &fields)
    };
    assert_eq!(post(form("-1")).status, 303);
    assert_eq!(ratings(), Some(1));
    // The second tab's copy rates nothing, and says why.
    let second = post(form("1"));
    assert!(
        second.status >= 400
            && second
                .body
                .contains("you rated this goal in this check-in meanwhile"),
        "{}",
        second.body
    );
    // It leads where the rating is corrected: the goal's page.
    assert!(
        second.body.contains(&format!("href=\"/goals/{goal}\"")),
        "{}",
        second.body
    );
    assert_eq!(ratings(), Some(1));
    // A form from before the round was closed rates nothing either.
    let fresh = hidden(&app.get(&format!("/checkin?goal={goal}")).body, "seen");
    alex.ok(&["checkin", "--close"]);
    let closed = post(vec![
        ("goal", goal.clone()),
        ("seen", fresh),
        ("level", "2".to_string()),
    ]);
    assert!(
        closed.status >= 400 && closed.body.contains("was closed meanwhile"),
        "{}",
        closed.body
    );
}

/// Waits until `d`'s goals, synced by its app's live thread alone, include `title`.
fn synced_by_the_app(d: &Device, title: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !d.ok(&["goal", "list"]).contains(title) {
        assert!(
            std::time::Instant::now() < deadline,
            "the live thread never synced the new device"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_home_whose_join_was_refused_for_good_joins_again_on_the_setup_page() {
    let relay = duet_tests::Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    // An invite naming an address where nothing answers: Sam's first sync fails there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    alex.ok(&["relay", "set", &format!("http://{dead}")]);
    let early = alex.json(&["invite"])["code"]
        .as_str()
        .expect("a code")
        .to_string();
    alex.ok(&["relay", "set", &relay.url]);
    alex.ok(&["sync"]);
    let sam = Device::new();
    assert_eq!(sam.run(&["join", &early, "--name", "Sam"]).code, 3);
    // The app runs while Alex withdraws the invite before Sam's join reaches the relay;
    // its live thread finds the join refused once the relay is set right.
    let app = App::start(&sam);
    alex.ok(&["invite", "revoke", "--all"]);
    alex.ok(&["sync"]);
    sam.ok(&["relay", "set", &relay.url]);
    let setup = app.wait_for("/setup", "Join again");
    assert_eq!(setup.status, 200, "{}", setup.body);
    let code = alex.json(&["invite"])["code"]
        .as_str()
        .expect("a code")
        .to_string();
    let joined = app.post("/setup/join", &[("name", "Sam"), ("code", &code)]);
    assert_eq!(joined.status, 303, "{}", joined.body);
    assert_eq!(app.get("/setup").status, 303, "joined: no setup page now");
    alex.ok(&["sync"]);
    assert!(alex.ok(&["device", "list"]).contains("Sam"));
    // The app's live thread syncs the new device: Alex's goal arrives without a word.
    alex.ok(&["goal", "add", "Cook together", "--area", "quality-time"]);
    alex.ok(&["sync"]);
    synced_by_the_app(&sam, "Cook together");
    let status = sam.ok(&["status"]);
    assert!(!status.contains("refused this device"), "{status}");
}

#[test]
fn a_home_set_up_by_mistake_starts_over_in_the_app_and_joins_the_partner() {
    let relay = duet_tests::Relay::start();
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let sam = Device::new();
    let app = App::start(&sam);
    // "Start new" where Alex's code was meant, and a goal written there.
    let made = app.post("/setup", &[("name", "Sam"), ("relay", &relay.url)]);
    assert_eq!(made.status, 303, "{}", made.body);
    assert_eq!(
        app.post("/goals", &[("title", "Written alone")]).status,
        303
    );
    // The live sync holds the device by now (it synced it once).
    let devices = app.wait_for("/devices", "last sync");
    assert!(devices.body.contains("Start over"), "{}", devices.body);
    // Without the box ticked nothing is set aside, nor while another process has the
    // store open.
    let unticked = app.post("/start-over", &[]);
    assert!(unticked.status >= 400, "{}", unticked.body);
    let watcher = rusqlite::Connection::open(sam.db()).expect("the store");
    let _: i64 = watcher
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .expect("a read");
    let busy = app.post("/start-over", &[("confirm", "yes")]);
    assert!(busy.status >= 400, "{}", busy.body);
    assert!(busy.body.contains("another duet command"), "{}", busy.body);
    drop(watcher);
    assert!(sam.ok(&["goal", "list"]).contains("Written alone"));

    let started = app.post("/start-over", &[("confirm", "yes")]);
    assert_eq!(started.status, 303, "{}", started.body);
    assert_eq!(started.header("location"), Some("/setup"));
    let setup = app.get("/setup");
    assert_eq!(setup.status, 200, "{}", setup.body);
    assert!(setup.body.contains("set-aside-"), "{}", setup.body);
    let code = alex.json(&["invite"])["code"]
        .as_str()
        .expect("a code")
        .to_string();
    let joined = app.post("/setup/join", &[("name", "Sam"), ("code", &code)]);
    assert_eq!(joined.status, 303, "{}", joined.body);
    alex.ok(&["sync"]);
    assert!(alex.ok(&["device", "list"]).contains("Sam"));
    // The live sync follows the new device; what was written alone stays in its folder.
    alex.ok(&["goal", "add", "Cook together", "--area", "quality-time"]);
    alex.ok(&["sync"]);
    synced_by_the_app(&sam, "Cook together");
    assert!(!sam.ok(&["goal", "list"]).contains("Written alone"));
    let aside = std::fs::read_dir(&sam.home)
        .expect("the home")
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("set-aside-"))
        .expect("the folder set aside");
    // The setup page said how to open it again.
    let open_again = format!("duet app --home {}", aside.path().display());
    assert!(setup.body.contains(&open_again), "{}", setup.body);
    let before = Device::at(aside.path());
    assert!(before.ok(&["goal", "list"]).contains("Written alone"));
    // Sam now shares the space with Alex: starting over is not offered any more.
    assert!(!app.get("/devices").body.contains("Start over"));
}

#[test]
fn a_page_opened_while_another_waits_for_a_silent_relay_says_it_is_busy() {
    // Takes connections and never answers: a relay whose process hangs, a middlebox.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let relay = format!("http://{}", silent.local_addr().expect("address"));
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay]);
    let app = App::start(&alex);
    let outcome = std::thread::scope(|s| {
        // The invite is announced to the relay first: the page holds the device meanwhile.
        let inviting = s.spawn(|| app.post("/devices/invite", &[]));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let busy = loop {
            // Before the fix, this waited for the invite's whole network wait.
            let page = app.get("/");
            if page.status == 503 {
                break page;
            }
            assert_eq!(page.status, 200, "{}", page.body);
            assert!(
                std::time::Instant::now() < deadline && !inviting.is_finished(),
                "no page said it waited for another; the last:\n{}",
                page.body
            );
        };
        assert!(
            busy.body.contains("busy with another page") && busy.body.contains("try again"),
            "{}",
            busy.body
        );
        // The invite itself ends saying the relay did not answer, in the stall limit.
        let invited = inviting.join().expect("the invite's request");
        assert_eq!(invited.status, 303, "{}", invited.body);
        invited.header("location").expect("the outcome").to_string()
    });
    let devices = app.get(&outcome);
    assert!(
        devices.body.contains("has not reached the relay yet")
            && devices.body.contains("timed out"),
        "{}",
        devices.body
    );
    // The device is free again.
    assert_eq!(app.get("/").status, 200);
    drop(silent);
}

#[test]
fn the_goal_page_marks_an_active_goal_past_its_due_day() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let when = [("DUET_NOW", "2027-02-01T12:00:00Z")];
    d.ok_env(
        &[
            "goal",
            "add",
            "Plan the trip",
            "--area",
            "shared-vision",
            "--due",
            "2027-01-15",
        ],
        &when,
    );
    let app = App::start_env(&d, &when);
    let page = app.get(&app.first_goal_link());
    assert!(
        page.body.contains("due 2027-01-15 (overdue)"),
        "{}",
        page.body
    );
}

#[test]
fn closing_in_the_app_says_which_of_ones_ratings_stay_sealed() {
    let relay = duet_tests::Relay::start();
    let (alex, sam) = duet_tests::pair(&relay);
    alex.ok(&["goal", "add", "Weekly check-in", "--area", "communication"]);
    alex.ok(&["goal", "add", "Date night", "--area", "quality-time"]);
    alex.ok(&["sync"]);
    let t = duet_core::ids::now_ms();
    let at = |d: &Device, args: &[&str], ms: i64| {
        d.ok_env(args, &[("DUET_NOW", ms.to_string().as_str())]);
    };
    at(&alex, &["rate", "weekly", "1"], t);
    at(&alex, &["sync"], t);
    at(&sam, &["sync"], t + 60_000);
    at(&sam, &["checkin", "--close"], t + 2 * 60_000);
    at(&sam, &["sync"], t + 2 * 60_000);
    // Alex rates before hearing of Sam's close: that rating stays sealed.
    at(&alex, &["rate", "date night", "2"], t + 3 * 60_000);
    at(&alex, &["sync"], t + 4 * 60_000);
    let now = (t + 5 * 60_000).to_string();
    let app = App::start_env(&alex, &[("DUET_NOW", now.as_str())]);
    let closed = app.post("/checkin/close", &[("confirm", "yes")]);
    assert_eq!(closed.status, 303, "{}", closed.body);
    let page = app.get(closed.header("location").expect("the check-in page"));
    assert!(
        page.body.contains("1 of your ratings stays sealed"),
        "{}",
        page.body
    );
}

/// Once the partner has left, the check-in page promises nothing for them: no "your
/// partner reads it" under the note, and no close of the round that would reveal to no
/// one.
#[test]
fn after_the_partner_left_the_checkin_page_speaks_of_no_partner() {
    let relay = duet_tests::Relay::start();
    let (alex, sam) = duet_tests::pair(&relay);
    alex.ok(&["goal", "add", "Walk", "--area", "trust"]);
    alex.ok(&["rate", "Walk", "1"]);
    alex.ok(&["goal", "add", "Talk", "--area", "trust"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    let app = App::start(&alex);
    let before = app.get("/checkin").body;
    assert!(before.contains("your partner reads it"), "{before}");
    assert!(before.contains("Close the check-in now"), "{before}");
    drop(app);
    let export = sam.home.with_extension("export.json");
    sam.ok(&["leave", "--yes", "--export", export.to_str().expect("path")]);
    alex.ok(&["sync"]);
    let app = App::start(&alex);
    let after = app.get("/checkin").body;
    assert!(after.contains("no longer in the shared space"), "{after}");
    assert!(!after.contains("your partner reads it"), "{after}");
    assert!(!after.contains("Close the check-in now"), "{after}");
    // Nor a safety code to compare "once your partner has joined".
    let devices = app.get("/devices").body;
    assert!(
        !devices.contains("Once your partner has joined"),
        "{devices}"
    );
}

/// With the partner gone, ratings open no round; the check-in still moves from goal to
/// goal and ends (it offered the first goal again after each rating, each one a new
/// rating, and Today kept asking to rate them all).
#[test]
fn a_checkin_alone_after_the_partner_left_moves_on_and_ends() {
    let relay = duet_tests::Relay::start();
    let (alex, sam) = duet_tests::pair(&relay);
    alex.ok(&["goal", "add", "Walk", "--area", "trust"]);
    alex.ok(&["goal", "add", "Talk", "--area", "trust"]);
    alex.ok(&["sync"]);
    sam.ok(&["sync"]);
    let export = sam.home.with_extension("export.json");
    sam.ok(&["leave", "--yes", "--export", export.to_str().expect("path")]);
    alex.ok(&["sync"]);
    let app = App::start(&alex);
    let goal_of = |page: &str| {
        let field = "name=\"goal\" value=\"";
        let at = page.find(field).expect("a rating form") + field.len();
        let len = page[at..].find('"').expect("the value's end");
        page[at..at + len].to_string()
    };
    let first = goal_of(&app.get("/checkin").body);
    let rated = app.post("/checkin", &[("goal", &first), ("level", "1")]);
    assert_eq!(rated.status, 303, "{}", rated.body);
    let to = rated.header("location").expect("led on").to_string();
    let second = goal_of(&app.get(&to).body);
    assert_ne!(first, second, "the next goal is offered");
    let rated = app.post("/checkin", &[("goal", &second), ("level", "0")]);
    let to = rated.header("location").expect("led on").to_string();
    let done = app.get(&to).body;
    assert!(
        done.contains("You have rated every goal in this check-in"),
        "{done}"
    );
    let today = app.get("/").body;
    assert!(!today.contains("Rate 2 goals"), "{today}");
}

/// Today with every goal achieved (or paused) does not ask for a first goal.
#[test]
fn today_with_no_active_goal_left_does_not_ask_for_a_first_one() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Walk", "--area", "trust"]);
    d.ok(&["goal", "status", "Walk", "achieved"]);
    let app = App::start(&d);
    let today = app.get("/").body;
    assert!(!today.contains("Add your first one"), "{today}");
    assert!(today.contains("No active goals right now"), "{today}");
}

/// A device removed from every space offers no backup (it would bring back a device
/// that can do nothing) and no relay to change, and still marks its own row.
#[test]
fn a_device_removed_from_every_space_offers_no_backup_and_marks_itself() {
    let relay = duet_tests::Relay::start();
    let (alex, _sam) = duet_tests::pair(&relay);
    let phone = Device::new();
    phone.ok(&["join", &alex.device_code(), "--name", "Alex"]);
    let app = App::start(&phone);
    let before = app.get("/devices").body;
    assert!(before.contains("Download a backup"), "{before}");
    drop(app);
    let key = phone.json(&["status"])["device"]
        .as_str()
        .expect("its key")
        .to_string();
    alex.ok(&["device", "remove", &key[..12], "--yes"]);
    let _ = phone.run(&["sync"]);
    let app = App::start(&phone);
    let after = app.get("/devices").body;
    assert!(!after.contains("Download a backup"), "{after}");
    assert!(!after.contains("Change the relay"), "{after}");
    assert!(after.contains("removed (this device)"), "{after}");
}

/// Years of check-ins hold thousands of events: the History page shows the newest 500
/// and a button to older ones (it showed the 500 with no way to the rest).
#[test]
fn the_history_page_leads_to_older_events() {
    use duet_core::doc::NewGoal;
    use duet_core::store::SpaceKind;
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    // 600 goals in one edit through duet-core (a process per goal is slow).
    let mut dev = duet_core::device::Device::open(&d.home).expect("open");
    dev.edit(SpaceKind::Shared, |doc, me| {
        let mut changes = Vec::new();
        for g in 0..600 {
            let goal = NewGoal {
                title: format!("Goal {g}"),
                area: Some(duet_core::Area::Trust),
                ..Default::default()
            };
            changes.extend(doc.add_goal(&me.person_id, goal, duet_testkit::now_ms())?.1);
        }
        Ok(((), changes))
    })
    .expect("goals");
    drop(dev);
    let app = App::start(&d);
    let lines = |page: &str| page.matches("<span class=\"when\">").count();
    let first = app.get("/history").body;
    assert_eq!(lines(&first), 500, "{first}");
    assert!(first.contains("Show older events"), "{first}");
    assert!(first.contains("name=\"pages\" value=\"2\""), "{first}");
    let all = app.get("/history?pages=2").body;
    assert!(lines(&all) > 600, "{}", lines(&all));
    assert!(!all.contains("Show older events"), "{all}");
}

#[test]
fn the_reflections_page_shows_the_newest_and_leads_to_older_ones() {
    use duet_core::store::SpaceKind;
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    // 60 shared reflections in one edit through duet-core (a process each is slow).
    let mut dev = duet_core::device::Device::open(&d.home).expect("open");
    dev.edit(SpaceKind::Shared, |doc, me| {
        let mut changes = Vec::new();
        for i in 0..60 {
            let at = duet_testkit::now_ms() - 60_000 + i * 1_000;
            let text = format!("Reflection number {i} of the year");
            changes.extend(doc.reflect(&me.person_id, None, None, &text, at)?.1);
        }
        Ok(((), changes))
    })
    .expect("reflections");
    drop(dev);
    let app = App::start(&d);
    let threads = |page: &str| page.matches("<article class=\"thread\"").count();
    let first = app.get("/reflections").body;
    assert_eq!(threads(&first), 50, "{first}");
    assert!(
        first.contains("Reflection number 59 of"),
        "the newest is shown"
    );
    assert!(!first.contains("Reflection number 9 of"), "the oldest wait");
    assert!(first.contains("Show older reflections"), "{first}");
    assert!(first.contains("name=\"pages\" value=\"2\""), "{first}");
    let all = app.get("/reflections?pages=2").body;
    assert_eq!(threads(&all), 60);
    assert!(all.contains("Reflection number 0 of"));
    assert!(!all.contains("Show older reflections"), "{all}");
    // A reply to the oldest leads back to the older ones, where it is (it led to the
    // first page, which does not show it).
    let at = all
        .rfind("/reply?pages=2\"")
        .expect("a reply form that leads back");
    let start = all[..at].rfind("action=\"").expect("its action") + "action=\"".len();
    let action = &all[start..at + "/reply?pages=2".len()];
    let replied = app.post(action, &[("text", "Still true a year on")]);
    let back = replied.header("location").expect("a redirect");
    assert!(back.starts_with("/reflections?pages=2&shown="), "{back}");
    let page = app.get(back).body;
    assert!(page.contains("Your reply is saved."), "{page}");
    assert!(page.contains("Still true a year on"), "{page}");
}

/// A reflection answered, edited or withdrawn on its goal's page leads back to that page
/// (each led to the list of reflections, away from the goal).
#[test]
fn a_reflection_acted_on_from_its_goal_page_leads_back_there() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Sunday walk", "--area", "quality-time"]);
    d.ok(&["reflect", "--goal", "Sunday", "The walk felt short"]);
    let app = App::start(&d);
    let goal = app.first_goal_link();
    let page = app.get(&goal).body;
    let id = goal.trim_start_matches("/goals/");
    let from = format!("?from_goal={id}\"");
    let action_of = |page: &str, ending: &str| {
        let at = page.find(&format!("{ending}{from}")).expect(ending);
        let start = page[..at].rfind("action=\"").expect("its action") + "action=\"".len();
        page[start..at + ending.len() + from.len() - 1].to_string()
    };
    let edit = action_of(&page, "/edit");
    let edited = app.post(&edit, &[("text", "The walk felt long")]);
    let back = edited.header("location").expect("a redirect");
    assert_eq!(page_of(back), goal, "{back}");
    let shown = app.get(back).body;
    assert!(shown.contains("The edit is saved."), "{shown}");
    assert!(shown.contains("The walk felt long"), "{shown}");
    // Withdrawing asks first; both the question's answers lead back to the goal.
    let withdraw = action_of(&shown, "/withdraw");
    let asked = app.post(&withdraw, &[]).body;
    assert!(asked.contains(&format!("href=\"{goal}\"")), "{asked}");
    let done = app.post(&action_of(&asked, "/withdraw"), &[("confirm", "yes")]);
    assert_eq!(page_of(done.header("location").expect("a redirect")), goal);
}

/// Each form says what it did in a status line at the top of the page it leads to: a
/// person who uses a screen reader lands there and would otherwise have to search the
/// page to learn whether it worked (and a step the partner had marked done meanwhile
/// changed nothing, without a word).
#[test]
fn each_form_says_what_it_did_at_the_top_of_the_page() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let app = App::start(&d);
    let said = |r: &duet_tests::app::Answer| {
        assert_eq!(r.status, 303, "{}", r.body);
        let page = app.get(r.header("location").expect("a redirect")).body;
        // Where the keyboard starts (`data-result`).
        let at = page
            .find("role=\"status\" data-result>")
            .expect("a status line");
        page[at..].split('<').next().unwrap_or_default().to_string()
    };
    let added = app.post("/goals", &[("title", "Sunday walk")]);
    assert!(said(&added).contains("The goal is added."));
    let goal = page_of(added.header("location").expect("the goal"));
    let id = goal.trim_start_matches("/goals/").to_string();
    let step = app.post(&format!("{goal}/steps"), &[("text", "Find a route")]);
    assert!(said(&step).contains("The step is added."));
    let sid = d.json(&["goal", "show", &id])["steps"][0]["id"]
        .as_str()
        .expect("a step")
        .to_string();
    // Done meanwhile elsewhere: the button changes nothing, and says so.
    d.ok(&["step", "done", &id, &sid]);
    let done = app.post(&format!("{goal}/steps/{sid}/done"), &[]);
    let line = said(&done);
    assert!(
        line.contains("done already, by Alex: nothing changed"),
        "{line}"
    );
    let reopened = app.post(&format!("{goal}/steps/{sid}/reopen"), &[]);
    assert!(said(&reopened).contains("The step is open again."));
    let status = app.post(&format!("{goal}/status"), &[("status", "paused")]);
    assert!(said(&status).contains("The goal is paused now."));
    let again = app.post(&format!("{goal}/status"), &[("status", "paused")]);
    assert!(said(&again).contains("The goal was paused already: nothing changed."));
    let cli = d.ok(&["goal", "status", &id, "paused"]);
    assert!(cli.contains("was paused already; nothing changed"), "{cli}");
    let wrote = app.post("/reflections", &[("text", "A good week")]);
    assert!(said(&wrote).contains("Your reflection is saved."));
}

/// A right-to-left title keeps its place in the Undo button (the level and the quotes
/// were drawn to its side: "(1-) "…"), and each step's buttons say which step they act
/// on to a screen reader, which heard "Mark done" once per step.
#[test]
fn undo_and_step_buttons_name_their_texts_in_any_script() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "מדברים על כסף", "--area", "other"]);
    let app = App::start(&d);
    let goal = app.first_goal_link();
    let added = app.post(
        &format!("{goal}/steps"),
        &[("text", "לקנות פרחים"), ("who", "nobody")],
    );
    assert_eq!(added.status, 303, "{}", added.body);
    let page = app.get(&goal).body;
    for button in ["Mark done", "Change"] {
        assert!(
            page.contains(&format!(
                "{button}<span class=\"visually-hidden\"> “לקנות פרחים”</span>"
            )),
            "{button} in {page}"
        );
    }
    d.ok(&["rate", "כסף", "-1"]);
    let history = app.get("/history").body;
    assert!(
        history.contains("Undo your blind rating of “<bdi>מדברים על כסף</bdi>” (−1)"),
        "{history}"
    );
    // The page after it says what was undone, the title set apart there too.
    let expect = history
        .split("name=\"expect\" value=\"")
        .nth(1)
        .and_then(|v| v.split('"').next())
        .expect("the undo form")
        .to_string();
    let undone = app.post("/undo", &[("expect", &expect)]);
    let said = app.get(undone.header("location").expect("a redirect")).body;
    assert!(
        said.contains("Withdrew your blind rating of “<bdi>מדברים על כסף</bdi>”"),
        "{said}"
    );
}

/// A field's edge is seen: 3:1 against the card and the page, light and dark (WCAG
/// 1.4.11; the edges were 1.3:1, a field hard to find for a person who sees little).
#[test]
fn form_fields_have_an_edge_people_can_see_light_and_dark() {
    let css = include_str!("../../cli/src/app/static/app.css");
    let colour = |block: &str, name: &str| -> f64 {
        let hex = block
            .split(&format!("--{name}: #"))
            .nth(1)
            .map(|h| &h[..6])
            .unwrap_or_else(|| panic!("--{name} in {block}"));
        let channel = |i: usize| {
            let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")) / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4)
    };
    let (light, dark) = css
        .split_once("prefers-color-scheme: dark")
        .expect("a dark scheme");
    for block in [light, dark] {
        for against in ["card", "paper"] {
            let (a, b) = (colour(block, "field"), colour(block, against));
            let ratio = (a.max(b) + 0.05) / (a.min(b) + 0.05);
            assert!(ratio >= 3.0, "--field against --{against}: {ratio:.2}:1");
        }
    }
    for rule in [
        "border: 1px solid var(--field)",
        "fieldset { border: 1px solid var(--field)",
    ] {
        assert!(css.contains(rule), "{rule}");
    }
}

/// The Undo button comes before the timeline, beside the newest events it is about (it
/// came after up to 500 events, screens down on a phone).
#[test]
fn the_undo_button_comes_before_the_timeline() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    d.ok(&["goal", "add", "Sunday walk", "--area", "quality-time"]);
    d.ok(&["rate", "walk", "1"]);
    let app = App::start(&d);
    let history = app.get("/history").body;
    let undo = history.find("class=\"undo\"").expect("the undo form");
    let timeline = history.find("class=\"timeline\"").expect("the timeline");
    assert!(undo < timeline, "{history}");
}
