//! `duet app` in real headless Chromium, driven over the DevTools protocol
//! (`support/browser.rs`), one relay for everything.
//!
//! First two partners who never open a terminal: Alex sets up in the app and makes an
//! invite there; Sam, on a fresh home, types the code into the app's join form; they
//! compare safety codes; Alex adds a goal with its level texts, both rate it blind in
//! their apps, Alex writes a reflection and Sam's reply (in Sam's app) appears in Alex's
//! open page without a reload; Alex adds a device (a third home joins with the device
//! code on the command line) and removes it again, confirming; the report renders.
//! axe-core checks every page (no serious or critical violation).
//!
//! Then mixed use (Alex in the app, Sam on the command line) converges, and Today fits a
//! phone-sized window in dark mode. A screenshot of each step is left in
//! `target/tmp/app/` for a person to look at.

#[path = "support/browser.rs"]
mod browser;

use std::time::{Duration, Instant};

use browser::{Browser, DEADLINE};
use duet_tests::app::App;
use duet_tests::{Device, Relay, pair};
use serde_json::json;

/// Chromium, or `None` after saying the test is skipped (`.ci/run` installs it).
fn chromium_or_skip() -> Option<std::path::PathBuf> {
    let found = duet_tests::chromium();
    if found.is_none() {
        eprintln!(
            "skipped: install chromium (Debian package `chromium`) to run the app browser test"
        );
    }
    found
}

/// Polls a CLI condition with the deadline.
fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !f() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn two_partners_pair_and_work_in_the_app_alone_or_with_the_command_line() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let relay = Relay::start();
    let mut a = Browser::start(&chromium);
    let mut s = Browser::start(&chromium);
    let mut problems = Vec::new();
    app_alone(&relay, &mut a, &mut s, &mut problems);
    assert!(
        problems.is_empty(),
        "axe-core found serious or critical accessibility problems:\n{}",
        problems.join("\n")
    );
    drop(s);
    mixed_with_the_command_line(&relay, &mut a);
}

/// Both partners in their apps only, from first-run setup to the report.
fn app_alone(relay: &Relay, a: &mut Browser, s: &mut Browser, problems: &mut Vec<String>) {
    let (alex, sam) = (Device::new(), Device::new());
    let alex_app = App::start(&alex);
    let sam_app = App::start(&sam);
    let (ao, so) = (alex_app.base(), sam_app.base());

    // First-run setup: Alex starts new, with the relay.
    a.open(&alex_app.url);
    a.wait("location.pathname.endsWith('/setup')");
    problems.extend(a.axe("setup"));
    a.screenshot("1-setup");
    a.submit(
        "form[action$='/setup']",
        &[("#name", "Alex"), ("#relay", relay.url.as_str())],
    );
    a.wait("document.querySelector('h1').innerText === 'Today'");

    // Alex makes an invite: the code large, and as a QR code.
    a.open(&format!("{ao}/devices"));
    problems.extend(a.axe("devices"));
    a.submit("form[action$='/devices/invite']", &[]);
    a.wait("!!document.querySelector('#made-code') && !!document.querySelector('.qr svg')");
    // The keyboard starts at the code's heading (it stayed at the page's start).
    a.wait("document.activeElement.id === 'made'");
    let code = a.eval("document.querySelector('#made-code').innerText");
    let code = code.as_str().expect("the invite code").trim().to_string();
    assert!(code.starts_with("duet2-"), "an invite code: {code}");
    // It is copied with one button: a keyboard cannot select a paragraph's text.
    a.call(
        "Browser.grantPermissions",
        json!({"permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]}),
    );
    a.call(
        "Emulation.setFocusEmulationEnabled",
        json!({"enabled": true}),
    );
    a.eval("document.querySelector('button[data-copy=made-code]').click()");
    a.wait("document.querySelector('#made-code-copied').innerText.startsWith('Copied')");
    assert_eq!(a.eval("navigator.clipboard.readText()"), json!(code));
    problems.extend(a.axe("invite"));
    a.screenshot("2-invite");

    // Sam, on a fresh home, types it into the join form.
    s.open(&sam_app.url);
    s.wait("location.pathname.endsWith('/setup')");
    s.type_into("#join-name", "Sam");
    s.type_into("#code", &code);
    s.screenshot("3-join");
    s.submit("form[action$='/setup/join']", &[]);
    s.wait("document.querySelector('h1').innerText === 'Today'");

    // Both see the same safety code, to compare in person; Alex confirms it.
    let safety = "!!document.querySelector('#safety-code') && document.querySelector('main').innerText.includes('Sam')";
    a.open_until(&format!("{ao}/devices"), safety);
    s.open_until(&format!("{so}/devices"), safety);
    let code_of = |b: &mut Browser| b.eval("document.querySelector('#safety-code').innerText");
    assert_eq!(code_of(a), code_of(s), "the safety codes match");
    a.submit("form[action$='/devices/verify']", &[]);
    a.wait("!document.querySelector('main').innerText.includes('not verified')");
    a.screenshot("4-devices");

    goal_and_blind_checkin(&ao, &so, a, s, problems);
    reflection_and_live_reply(&ao, &so, a, s, problems);
    device_added_and_removed(&ao, a);

    a.open(&format!("{ao}/history"));
    assert!(a.text().contains("Sunday walk"));
    problems.extend(a.axe("history"));
    a.open(&format!("{ao}/report"));
    problems.extend(a.axe("report"));
    a.screenshot("9-report");
    a.open(&format!("{ao}/report/print"));
    a.wait("document.title.startsWith('Progress report')");
    problems.extend(a.axe("report-print"));
}

/// Alex adds a goal with its level texts; both rate it blind in their apps.
fn goal_and_blind_checkin(
    ao: &str,
    so: &str,
    a: &mut Browser,
    s: &mut Browser,
    problems: &mut Vec<String>,
) {
    a.open(&format!("{ao}/"));
    problems.extend(a.axe("today-empty"));
    a.submit(
        "form[action$='/goals']",
        &[
            ("#title", "Sunday walk"),
            ("#level2", "We walk every Sunday and talk"),
            ("#level1", "We walk most Sundays"),
            ("#level0", "We walk twice a month"),
            ("#level-1", "We walk once a month"),
            ("#level-2", "We never walk"),
        ],
    );
    a.wait("location.pathname.includes('/goals/')");
    problems.extend(a.axe("goal"));
    a.screenshot("5-goal");

    // Sam rates first: sealed.
    s.open_until(
        &format!("{so}/checkin"),
        "document.querySelector('main').innerText.includes('We walk most Sundays')",
    );
    problems.extend(s.axe("checkin"));
    s.eval("document.querySelector('#level1').click()");
    s.submit("form.checkin", &[("#note", "Two good walks")]);
    s.wait("location.search.includes('sealed=true')");

    // Alex hears that Sam rated (never how), and rates.
    a.open_until(
        &format!("{ao}/checkin"),
        "document.querySelector('main').innerText.includes('Your partner has rated this goal')",
    );
    assert!(
        !a.text().contains("Two good walks"),
        "Sam's note stays sealed"
    );
    a.screenshot("6-checkin");
    a.eval("document.querySelector('#level0').click()");
    a.submit("form.checkin", &[("#note", "It felt short")]);
    a.wait("location.search.includes('rated=')");

    // Both levels are revealed in both apps.
    a.open_until(
        &format!("{ao}/"),
        "document.querySelector('main').innerText.includes('Sam: +1')",
    );
    s.open_until(
        &format!("{so}/"),
        "document.querySelector('main').innerText.includes('Alex: 0')",
    );
    problems.extend(a.axe("today"));
    a.screenshot("7-today");
}

/// Alex writes a reflection; Sam replies in Sam's app; the reply appears in Alex's open
/// page without a reload.
fn reflection_and_live_reply(
    ao: &str,
    so: &str,
    a: &mut Browser,
    s: &mut Browser,
    problems: &mut Vec<String>,
) {
    a.open(&format!("{ao}/reflections"));
    a.submit("form.write", &[("#text", "I liked our walk on Sunday")]);
    a.wait("document.querySelector('main').innerText.includes('I liked our walk')");
    problems.extend(a.axe("reflections"));
    a.eval("window.__stayed = true");
    s.open_until(
        &format!("{so}/reflections"),
        "!!document.querySelector('form.reply textarea')",
    );
    s.submit(
        "form.reply",
        &[("form.reply textarea", "Me too, let us go again")],
    );
    a.wait("document.querySelector('main').innerText.includes('Me too, let us go again')");
    assert_eq!(
        a.eval("window.__stayed === true"),
        json!(true),
        "the page was not reloaded"
    );
    a.screenshot("8-reflections");
}

/// Alex adds a device (a third home joins with the device code, on the command line),
/// then removes it in the app, confirming first.
fn device_added_and_removed(ao: &str, a: &mut Browser) {
    a.open(&format!("{ao}/devices"));
    a.submit("form[action$='/devices/add']", &[]);
    a.wait("!!document.querySelector('#made-code')");
    let code = a.eval("document.querySelector('#made-code').innerText");
    let third = Device::new();
    third.ok(&["join", code.as_str().expect("a device code").trim()]);
    let rows = third.json(&["device", "list"]);
    let key = rows
        .as_array()
        .and_then(|r| r.iter().find(|d| d["this_device"] == true))
        .and_then(|d| d["device"].as_str())
        .expect("the third device's key")[..12]
        .to_string();
    let form = format!("form[action$='/devices/{key}/remove']");
    a.open_until(
        &format!("{ao}/devices"),
        &format!("!!document.querySelector({})", json!(form)),
    );
    a.submit(&form, &[]);
    a.wait("document.querySelector('h1').innerText.startsWith('Remove your device')");
    assert!(a.text().contains("one of your own devices"));
    a.screenshot("10-remove-confirm");
    // The question is a page of its own: a reload shows it again (an answer to a POST
    // would ask to send the form again).
    a.eval("window.__before_reload = true; location.reload()");
    a.wait(
        "window.__before_reload === undefined && !!document.querySelector('h1') && document.querySelector('h1').innerText.startsWith('Remove your device')",
    );
    a.submit(&form, &[]);
    a.wait("location.pathname.endsWith('/devices')");
    let row = format!(
        "[...document.querySelectorAll('tr')].some(r => r.innerText.includes({}) && r.innerText.includes('removed'))",
        json!(key)
    );
    a.wait(&row);
    a.screenshot("11-removed");
}

/// Alex uses the app, Sam the command line: the same flows converge.
fn mixed_with_the_command_line(relay: &Relay, b: &mut Browser) {
    let (alex, sam) = pair(relay);
    alex.ok(&["sync"]);
    let alex_app = App::start(&alex);
    let sam_app = App::start(&sam);

    // Alex opens the printed URL and adds a goal with its level texts.
    b.open(&alex_app.url);
    b.wait("document.querySelector('h1').innerText === 'Today'");
    b.screenshot("mixed-today-empty");
    b.submit(
        "form[action$='/goals']",
        &[
            ("#title", "Sunday walk"),
            ("#level2", "We walk every Sunday and talk"),
            ("#level1", "We walk most Sundays"),
            ("#level0", "We walk twice a month"),
            ("#level-1", "We walk once a month"),
            ("#level-2", "We never walk"),
        ],
    );
    b.wait("location.pathname.includes('/goals/')");
    assert!(b.text().contains("We walk twice a month"));
    b.screenshot("mixed-goal");

    // Sam rates it blind with the command line.
    until("Sam sees the goal", || {
        sam.ok(&["sync"]);
        sam.ok(&["goal", "list"]).contains("Sunday walk")
    });
    sam.ok(&["rate", "walk", "1", "--note", "Two good walks"]);
    sam.ok(&["sync"]);

    // Alex's check-in hears that Sam rated (never how), and rates in the app.
    b.open(&format!("{}/checkin", alex_app.base()));
    b.wait("document.querySelector('main').innerText.includes('Your partner has rated this goal')");
    assert!(
        !b.text().contains("Two good walks"),
        "Sam's note stays sealed"
    );
    b.screenshot("mixed-checkin");
    b.eval("document.querySelector('#level0').click()");
    b.submit("form.checkin", &[("#note", "It felt short")]);
    b.wait("location.search.includes('rated=')");
    // What the form did is where the keyboard (and a screen reader) starts.
    b.wait("document.activeElement.innerText.startsWith('Rated')");

    // Once Sam syncs, both ratings are revealed, in both apps and both command lines.
    until("both levels revealed to Sam", || {
        sam.ok(&["sync"]);
        let p = sam.json(&["progress"]);
        p["goals"][0]["partners"].as_array().is_some_and(|s| {
            s.iter()
                .all(|s| !s["latest"].is_null() && s["sealed"] == false)
        })
    });
    b.open(&format!("{}/", alex_app.base()));
    b.wait("document.querySelector('main').innerText.includes('Sam: +1')");
    b.screenshot("mixed-today");
    sam_app.wait_for("/", "Alex</bdi></strong>: 0");

    // A reflection in the app; Sam's reply (CLI) appears in the open page, no reload.
    b.open(&format!("{}/reflections", alex_app.base()));
    b.submit("form.write", &[("#text", "I liked our walk on Sunday")]);
    b.wait("document.querySelector('main').innerText.includes('I liked our walk')");
    b.eval("window.__stayed = true");
    until("Sam sees the reflection", || {
        sam.ok(&["sync"]);
        sam.ok(&["reflections"]).contains("I liked our walk")
    });
    sam.ok(&["reflect", "--reply", "last", "Me too, let us go again"]);
    sam.ok(&["sync"]);
    b.wait("document.querySelector('main').innerText.includes('Me too, let us go again')");
    assert_eq!(
        b.eval("window.__stayed === true"),
        json!(true),
        "the page was not reloaded"
    );
    b.screenshot("mixed-reflections");

    // History and the report.
    b.open(&format!("{}/history", alex_app.base()));
    assert!(b.text().contains("Sunday walk"));
    b.screenshot("mixed-history");
    b.open(&format!("{}/report/print", alex_app.base()));
    b.wait("document.title.startsWith('Progress report')");
    assert!(
        b.eval("document.body.innerText")
            .as_str()
            .unwrap_or("")
            .contains("We walk twice a month")
    );
    b.screenshot("mixed-report");

    // A phone-sized window in dark mode: one column, no sideways scrolling, also with a
    // title of one long word and a reflection holding a long address.
    let long_word = "Communication".repeat(15);
    alex.ok(&[
        "goal",
        "add",
        &long_word,
        "--area",
        "trust",
        "--level",
        &format!("2={long_word}"),
    ]);
    alex.ok(&["step", "add", &long_word[..40], &"Listen".repeat(40)]);
    // A rating's note in the goal's table, one long word (the table grew to 870 px).
    alex.ok(&[
        "rate",
        &long_word[..40],
        "1",
        "--note",
        &"Listening".repeat(12),
    ]);
    alex.ok(&[
        "reflect",
        "Read https://www.example.org/articles/relationships/communication/how-to-have-a-weekly-check-in-that-actually-works?utm_source=newsletter",
    ]);
    b.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 375, "height": 812, "deviceScaleFactor": 2, "mobile": true}),
    );
    b.call(
        "Emulation.setEmulatedMedia",
        json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
    );
    b.open(&format!("{}/", alex_app.base()));
    let long_goal = b.eval(&format!(
        "[...document.querySelectorAll('a')].find(a => a.innerText.startsWith('{}')).getAttribute('href')",
        &long_word[..20]
    ));
    // Links lead under the app's own path (where the cookie is sent).
    let long_goal = long_goal
        .as_str()
        .expect("the long goal's link")
        .strip_prefix(&alex_app.prefix)
        .expect("a link under the app's path")
        .to_string();
    for page in duet_tests::app::PAGES
        .into_iter()
        .chain([long_goal.as_str(), "/report/print"])
    {
        b.open(&format!("{}{page}", alex_app.base()));
        assert_eq!(
            // Against the phone's width: a mobile browser widens its layout to the page
            // (`innerWidth` followed a table to 829 px and the check passed).
            b.eval("document.documentElement.scrollWidth <= screen.width"),
            json!(true),
            "{page} scrolls sideways on a phone ({} px wide)",
            b.eval("document.documentElement.scrollWidth")
        );
        // Nor is any control out of reach past the window's right edge.
        let past = b.eval(
            "[...document.querySelectorAll('main a, main button, main input, main select, main textarea')]\
             .filter(e => e.getBoundingClientRect().right > screen.width + 0.5)\
             .map(e => e.outerHTML.slice(0, 120))",
        );
        assert_eq!(past, json!([]), "{page}: controls past a phone's width");
    }
    b.screenshot("mixed-today-phone-dark");
    b.open(&format!("{}/devices", alex_app.base()));
    b.screenshot("mixed-devices-phone-dark");
}

#[test]
fn the_app_opens_in_the_browser_from_its_launch_page_with_no_key_left_in_the_address() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex"]);
    alex.ok(&["goal", "add", "Sunday walks", "--area", "communication"]);
    let bin = tempfile::tempdir().expect("temp dir");
    let app = App::start_opening(&alex, bin.path());
    let opened = duet_tests::app::opened(bin.path());
    let page = opened
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("ARGS "))
        .expect("the opener's argument");
    // The browser the opener would start, given the same page.
    let mut b = Browser::start(&chromium);
    b.call("Page.navigate", json!({ "url": page }));
    let base = app.base();
    b.wait(&format!(
        "location.href === '{base}/' && document.readyState === 'complete' && document.body.innerText.includes('Sunday walks')"
    ));
}

#[test]
fn withdrawing_a_reflection_in_the_app_asks_first() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex"]);
    alex.ok(&["reflect", "Kept unless I say so"]);
    let app = App::start(&alex);
    let mut b = Browser::start(&chromium);
    b.open(&app.url);
    b.open(&format!("{}/reflections", app.base()));
    let withdraw = "form[action$='/withdraw']";
    // Answered "no": the form is not sent (its submit event is cancelled), and the
    // question said what withdrawing does.
    let sent = |b: &mut Browser, answer: bool| {
        b.eval(&format!(
            "(function () {{ window.confirm = function (q) {{ window.__asked = q; return {answer}; }}; \
             var e = new Event('submit', {{ bubbles: true, cancelable: true }}); \
             document.querySelector({withdraw:?}).dispatchEvent(e); return !e.defaultPrevented; }})()"
        ))
    };
    assert_eq!(sent(&mut b, false), json!(false));
    let asked = b.eval("window.__asked");
    assert!(
        asked
            .as_str()
            .is_some_and(|q| q.contains("cannot be brought back")
                && q.contains("stay in the history kept on every device")),
        "{asked}"
    );
    assert_eq!(sent(&mut b, true), json!(true));
    assert_eq!(
        alex.json(&["reflections"]).as_array().map(Vec::len),
        Some(1)
    );
    // Answered "yes": withdrawn.
    b.submit(withdraw, &[]);
    until("the reflection withdrawn", || {
        alex.json(&["reflections"]).as_array().map(Vec::len) == Some(0)
    });
}

/// Browsers send a cookie to every port of its host: the session cookie, kept for the
/// app's own path, must not reach another server on 127.0.0.1 the person opens (another
/// local user's, say), which could then read and change everything in the app.
#[test]
fn the_session_cookie_is_not_sent_to_another_server_on_the_same_address() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex"]);
    let app = App::start(&alex);
    let mut b = Browser::start(&chromium);
    b.open(&app.url);
    b.wait("document.querySelector('h1').innerText === 'Today'");

    // Another local server, which writes down what the browser sends it.
    let other = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = other.local_addr().expect("address").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in other.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match std::io::Read::read(&mut stream, &mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
            let _ = std::io::Write::write_all(
                &mut stream,
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
            );
        }
    });
    for path in ["/", "/goals", "/devices"] {
        b.open(&format!("http://127.0.0.1:{port}{path}"));
    }
    let heads: Vec<String> = rx.try_iter().collect();
    assert!(!heads.is_empty(), "the browser reached the other server");
    for head in &heads {
        assert!(!head.contains(&app.key), "the session key leaked:\n{head}");
    }
    // The app itself still has it.
    b.open(&format!("{}/", app.base()));
    b.wait("document.querySelector('h1').innerText === 'Today'");
}

/// The page reads itself again when it hears of a change: not in place of a refusal
/// answering a form at an address that is also a page (the reason and the words kept
/// with it stayed a moment, then the plain page replaced them), and the report's print
/// button stays shown and working in the copy read again.
#[test]
fn a_refusal_and_the_print_button_stay_when_the_page_hears_a_change() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex"]);
    alex.ok(&["goal", "add", "Sunday walks", "--area", "communication"]);
    let app = App::start(&alex);
    let mut b = Browser::start(&chromium);
    b.open(&app.url);

    // The stream's opening reads the report page again: its print button stays shown.
    b.open(&format!("{}/report", app.base()));
    b.wait("document.documentElement.hasAttribute('data-updated')");
    assert_eq!(
        b.eval("document.querySelector('button[data-print]').hidden"),
        json!(false)
    );

    b.open(&format!("{}/reflections", app.base()));
    let long = "a".repeat(100_001);
    b.submit("form.write", &[("#text", &long)]);
    b.wait("document.body.innerText.includes('Something needs attention')");
    b.wait("document.documentElement.hasAttribute('data-heard')");
    let before = b.eval("document.documentElement.getAttribute('data-heard')");
    alex.ok(&["goal", "add", "Monday calls", "--area", "communication"]);
    b.wait(&format!(
        "document.documentElement.getAttribute('data-heard') !== {before}"
    ));
    assert!(
        b.text().contains("Something needs attention"),
        "the refusal stays: {}",
        b.text()
    );
}

/// A change heard while the keyboard is on a link reads the page again around it: the
/// keyboard stays on that link (it fell back to the page's start, so a keyboard or
/// screen-reader user lost their place at every change the partner made).
#[test]
fn the_keyboard_keeps_its_place_when_the_page_hears_a_change() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex"]);
    alex.ok(&["goal", "add", "Sunday walks", "--area", "communication"]);
    let app = App::start(&alex);
    let mut b = Browser::start(&chromium);
    b.open(&app.url);
    b.wait("document.documentElement.hasAttribute('data-updated')");
    b.eval("document.querySelector('main a[href*=\"/goals/\"]').focus()");
    let before = b.eval("document.documentElement.getAttribute('data-updated')");
    alex.ok(&["goal", "add", "Monday calls", "--area", "communication"]);
    b.wait(&format!(
        "document.documentElement.getAttribute('data-updated') !== {before} \
         && document.body.innerText.includes('Monday calls')"
    ));
    assert_eq!(
        b.eval("document.activeElement.textContent"),
        json!("Sunday walks"),
        "the keyboard stays on the link it was on"
    );
}

/// A change heard while the user has words typed into a form waits (the words are kept),
/// and the page's live region says so; once shown, it says the page changed (a screen
/// reader heard nothing either way).
#[test]
fn a_change_waiting_for_a_draft_is_said_in_the_live_region() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex"]);
    alex.ok(&["goal", "add", "Sunday walks", "--area", "communication"]);
    let app = App::start(&alex);
    let mut b = Browser::start(&chromium);
    b.open(&app.url);
    b.wait("document.documentElement.hasAttribute('data-updated')");
    // Read again with nothing new (the stream's opening): nothing is said.
    assert_eq!(
        b.eval("document.getElementById('updates').textContent"),
        json!("")
    );
    // A draft in the add-goal form, then the focus elsewhere: the draft holds the page.
    b.eval("var t = document.getElementById('title'); t.value = 'Half-typed'; t.blur()");
    alex.ok(&["goal", "add", "Monday calls", "--area", "communication"]);
    b.wait(
        "document.getElementById('updates').textContent.includes('once you have sent or cleared')",
    );
    assert_eq!(
        b.eval("document.getElementById('title').value"),
        json!("Half-typed"),
        "the draft is kept"
    );
    // Cleared, and the field left (a headless page has no window focus to lose, so the
    // leaving is sent as the event a browser sends): the page is read again, and says so.
    b.eval(
        "var t = document.getElementById('title'); t.value = ''; \
         t.dispatchEvent(new FocusEvent('focusout', { bubbles: true }))",
    );
    b.wait(
        "document.body.innerText.includes('Monday calls') \
         && document.getElementById('updates').textContent.includes('latest changes')",
    );
}

/// Back after a form was sent shows the form again with what was typed (the browser
/// fills it back in); sending it again as it was is the same form, not a second
/// reflection, goal or rating (the page came back with a new `once` value, so each
/// Back and Send wrote a copy).
#[test]
fn back_then_send_again_writes_once() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex"]);
    let app = App::start(&alex);
    let mut b = Browser::start(&chromium);
    b.open(&app.url);
    b.open(&format!("{}/reflections", app.base()));
    b.type_into("form.write textarea[name=text]", "Said once, sent twice");
    b.submit("form.write", &[]);
    until("the reflection saved", || {
        alex.json(&["reflections"]).as_array().map(Vec::len) == Some(1)
    });
    b.eval("window.__left = true");
    b.eval("history.back()");
    b.wait(
        "!window.__left && document.readyState === 'complete' \
         && document.querySelector('form.write textarea').value === 'Said once, sent twice'",
    );
    b.submit("form.write", &[]);
    assert_eq!(
        alex.json(&["reflections"]).as_array().map(Vec::len),
        Some(1),
        "Back and Send again is the same form"
    );
    // With other words it is another form.
    b.eval("window.__left = true");
    b.eval("history.back()");
    b.wait("!window.__left && document.readyState === 'complete'");
    b.eval("document.querySelector('form.write textarea').value = ''");
    b.type_into("form.write textarea[name=text]", "Something else");
    b.submit("form.write", &[]);
    until("the second reflection saved", || {
        alex.json(&["reflections"]).as_array().map(Vec::len) == Some(2)
    });
}

/// Back after a rating shows the check-in again, now on the next goal: the level and
/// note typed for the goal before are not filled back in (sent again, they rated the
/// next goal with a level never chosen for it, and a note about another goal).
#[test]
fn back_after_a_rating_does_not_fill_the_next_goals_form() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex"]);
    alex.ok(&["goal", "add", "Walk", "--area", "trust"]);
    alex.ok(&["goal", "add", "Talk", "--area", "trust"]);
    let app = App::start(&alex);
    let mut b = Browser::start(&chromium);
    b.open(&app.url);
    b.open(&format!("{}/checkin", app.base()));
    let goal = "document.querySelector('form.checkin input[name=goal]').value";
    let first = b.eval(goal);
    b.eval("document.getElementById('level-1').click()");
    b.type_into("form.checkin textarea[name=note]", "About the first goal");
    b.submit("form.checkin", &[]);
    b.eval("window.__left = true");
    b.eval("history.back()");
    b.wait("!window.__left && document.readyState === 'complete'");
    assert_ne!(b.eval(goal), first, "the next goal is offered");
    assert_eq!(
        b.eval(
            "[document.querySelector('form.checkin input[name=level]:checked') === null, \
             document.querySelector('form.checkin textarea[name=note]').value]"
        ),
        json!([true, ""]),
        "nothing typed for the goal before is filled in"
    );
}
