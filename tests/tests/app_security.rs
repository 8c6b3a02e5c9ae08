//! `duet app`'s protections over plain HTTP (docs/threat-model.md, "The local app"): a
//! request without the session secret, with a foreign Host header (DNS rebinding), a
//! cross-origin POST, a POST without the CSRF token: each refused, and nothing changed;
//! every answer carries a Content-Security-Policy without inline script or any other
//! origin, and never a CORS header; a partner's goal title `<script>` renders as text;
//! a change another `duet` process makes on the home, and the partner's change synced
//! by the app's own live thread, reach the page.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use duet_tests::app::{Answer, App, encode};
use duet_tests::{Device, Relay, pair};

fn goals(d: &Device) -> usize {
    d.json(&["goal", "list"]).as_array().expect("a list").len()
}

#[track_caller]
fn refused(a: &Answer, status: u16, says: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert!(a.body.contains(says), "{}", a.body);
}

#[test]
fn requests_without_the_secret_with_a_foreign_host_or_a_forged_form_are_refused() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let app = App::start(&d);
    let (cookie, origin, port) = (app.cookie(), app.origin(), app.port);

    // No secret, a wrong one, a wrong cookie: the page says to open the printed URL.
    refused(&app.request("GET", "/", &[], ""), 403, "duet app");
    refused(&app.request("GET", "/?key=0000", &[], ""), 403, "duet app");
    let wrong = format!("duet-session-{port}={}", "0".repeat(64));
    refused(
        &app.request("GET", "/", &[("Cookie", &wrong)], ""),
        403,
        "duet app",
    );
    refused(
        &app.request("GET", "/static/app.js", &[], ""),
        403,
        "duet app",
    );

    // The printed URL sets the cookie (HttpOnly, SameSite=Strict) and drops the key.
    let enter = app.request("GET", &format!("/?key={}", app.key), &[], "");
    assert_eq!(enter.status, 303);
    assert_eq!(
        enter.header("location"),
        Some(format!("{}/", app.prefix).as_str())
    );
    let set = enter.header("set-cookie").expect("a cookie");
    assert!(set.starts_with(&cookie), "{set}");
    assert!(
        set.contains("HttpOnly")
            && set.contains("SameSite=Strict")
            && set.split("; ").any(|a| a == format!("Path={}", app.prefix)),
        "{set}"
    );
    assert_eq!(app.get("/").status, 200);
    // The key with an old run's path (a bookmark) leads to Today under this run's.
    let old_path = app.request(
        "GET",
        &format!("/s/0123456789abcdef/?key={}", app.key),
        &[],
        "",
    );
    assert_eq!(
        old_path.header("location"),
        Some(format!("{}/", app.prefix).as_str())
    );

    // DNS rebinding: a foreign name, or this name with another port.
    for host in [
        format!("evil.example:{port}"),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        "127.0.0.1".to_string(),
    ] {
        let a = app.request("GET", "/", &[("Host", &host), ("Cookie", &cookie)], "");
        refused(&a, 421, "not Duet's");
    }
    // Nor `localhost`: a browser may reach it at [::1], where another local user could
    // serve a page of that origin and post its forms here.
    let localhost = format!("localhost:{port}");
    let a = app.request("GET", "/", &[("Host", &localhost), ("Cookie", &cookie)], "");
    refused(&a, 421, "not Duet's");

    // Forged forms: foreign Origin, no Origin, no token, a wrong token, no cookie.
    let csrf = app.csrf();
    let good = encode(&[("csrf", &csrf), ("title", "Forged")]);
    let no_token = encode(&[("title", "Forged")]);
    let bad_token = encode(&[("csrf", &"f".repeat(64)), ("title", "Forged")]);
    let local_origin = format!("http://localhost:{port}");
    let attempts: [(&[(&str, &str)], &str); 6] = [
        (
            &[("Cookie", &cookie), ("Origin", "http://evil.example")],
            &good,
        ),
        (&[("Cookie", &cookie), ("Origin", &local_origin)], &good),
        (&[("Cookie", &cookie)], &good),
        (&[("Cookie", &cookie), ("Origin", &origin)], &no_token),
        (&[("Cookie", &cookie), ("Origin", &origin)], &bad_token),
        (&[("Origin", &origin)], &good),
    ];
    for (headers, body) in attempts {
        let a = app.request("POST", "/goals", headers, body);
        assert_eq!(a.status, 403, "{headers:?} {body}: {}", a.body);
    }
    let put = app.request(
        "PUT",
        "/goals",
        &[("Cookie", &cookie), ("Origin", &origin)],
        &good,
    );
    assert_eq!(put.status, 405);
    // The pairing, device and correction forms are guarded alike: a foreign page makes
    // no invite code and removes no device.
    let confirm = encode(&[("csrf", &csrf), ("confirm", "yes")]);
    for path in [
        "/devices/invite",
        "/devices/add",
        "/devices/verify",
        "/devices/abcdef/remove",
        "/setup/join",
        "/undo",
    ] {
        let foreign = [
            ("Cookie", cookie.as_str()),
            ("Origin", "http://evil.example"),
        ];
        let a = app.request("POST", path, &foreign, &confirm);
        assert_eq!(a.status, 403, "{path}: {}", a.body);
    }
    assert_eq!(goals(&d), 0, "a refused request changed nothing");

    // The same form from the app's own page goes through.
    let ok = app.post(
        "/goals",
        &[("title", "Weekly check-in"), ("level0", "We talk")],
    );
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(goals(&d), 1);
}

#[test]
fn every_answer_has_a_strict_policy_and_no_cors_headers() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let app = App::start(&d);
    let cookie = app.cookie();
    let evil = [
        ("Cookie", cookie.as_str()),
        ("Origin", "http://evil.example"),
    ];
    let answers = [
        app.get("/"),
        app.get("/checkin"),
        app.get("/reflections"),
        app.get("/history"),
        app.get("/report"),
        app.get("/static/app.js"),
        app.get("/no-such-page"),
        app.request("GET", "/", &[], ""),
        app.request("GET", "/", &evil, ""),
        app.request("POST", "/goals", &evil, "title=x"),
    ];
    for a in &answers {
        let csp = a.header("content-security-policy").expect("a CSP");
        let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
        assert!(directives.contains(&"default-src 'none'"), "{csp}");
        assert!(directives.contains(&"script-src 'self'"), "{csp}");
        assert!(directives.contains(&"frame-ancestors 'none'"), "{csp}");
        for forbidden in ["unsafe-inline", "unsafe-eval", "http:", "https:", "*"] {
            assert!(!csp.contains(forbidden), "{forbidden} in {csp}");
        }
        assert_eq!(a.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(a.header("referrer-policy"), Some("same-origin"));
        assert_eq!(a.header("cache-control"), Some("no-store"));
        assert!(
            !a.headers
                .iter()
                .any(|(n, _)| n.starts_with("access-control-")),
            "a CORS header: {:?}",
            a.headers
        );
        // Every script of every page comes from the app's own file.
        for script in a.body.split("<script").skip(1) {
            assert!(
                script.trim_start().starts_with("src=\"/static/"),
                "inline script: {script}"
            );
        }
    }
    // The printable report carries its own inline styles, and still no script at all.
    let report = app.get("/report/print");
    assert_eq!(report.status, 200);
    let csp = report.header("content-security-policy").expect("a CSP");
    assert!(
        csp.starts_with("default-src 'none'") && !csp.contains("script"),
        "{csp}"
    );
    assert!(!report.body.contains("<script"));
}

/// Reads `/events` until a `change` event (panics at the deadline).
fn wait_for_event(app: &App, then: impl FnOnce()) {
    let mut s = TcpStream::connect(("127.0.0.1", app.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let head = format!(
        "GET /events HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nCookie: {}\r\nAccept: text/event-stream\r\n\r\n",
        app.port,
        app.cookie()
    );
    s.write_all(head.as_bytes()).expect("write");
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    assert!(line.contains("200"), "{line}");
    then();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        line.clear();
        r.read_line(&mut line)
            .expect("an event before the deadline");
        if line.contains("event: change") {
            return;
        }
        assert!(Instant::now() < deadline, "no change event");
    }
}

#[test]
fn a_partners_script_title_renders_as_text_and_changes_arrive_live() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    alex.ok(&["sync"]);
    sam.ok(&[
        "goal",
        "add",
        "<script>alert(1)</script>",
        "--area",
        "trust",
        "--expected",
        "<b>ok</b>",
    ]);
    sam.ok(&["sync"]);
    let app = App::start(&alex);

    // The app's live thread syncs; the title is escaped text, never markup.
    let today = app.wait_for("/", "&lt;script&gt;alert(1)&lt;/script&gt;");
    assert!(!today.body.contains("<script>alert"), "{}", today.body);
    assert!(today.body.contains("&lt;b&gt;ok&lt;/b&gt;"));

    // A change made with the CLI on Alex's own home is announced on /events.
    wait_for_event(&app, || {
        alex.ok(&["reflect", "From the terminal"]);
    });
    app.wait_for("/reflections", "From the terminal");

    // The app's live thread sends it; Sam's reply (CLI) arrives through the relay.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        sam.ok(&["sync"]);
        if sam.ok(&["reflections"]).contains("From the terminal") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the app never sent Alex's reflection"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    sam.ok(&["reflect", "--reply", "last", "Heard you <i>there</i>"]);
    sam.ok(&["sync"]);
    let page = app.wait_for("/reflections", "Heard you &lt;i&gt;there&lt;/i&gt;");
    assert!(page.body.contains("Shared with your partner"));
}

/// The value of the `once` field of the form posting to `action` on `page`.
fn once_of(page: &str, action: &str) -> String {
    let form = &page[page
        .find(&format!("action=\"{action}\""))
        .expect("the form")..];
    let field = "name=\"once\" value=\"";
    let at = form.find(field).expect("a once field") + field.len();
    form[at..at + 32].to_string()
}

#[test]
fn a_form_sent_twice_writes_once_and_a_refused_or_edited_one_may_be_sent_again() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let app = App::start(&d);
    let today = app.get("/").body;
    let once = once_of(&today, "/goals");

    // A refused form (an empty title) does not spend its value: sent again, fixed, it counts.
    let empty = app.post("/goals", &[("once", &once), ("title", " ")]);
    assert_ne!(empty.status, 303, "{}", empty.body);
    // Its reason is an alert, where the keyboard starts (`data-result`, app.js).
    assert!(
        empty
            .body
            .contains("class=\"problem\" role=\"alert\" data-result"),
        "{}",
        empty.body
    );
    let first = app.post("/goals", &[("once", &once), ("title", "Sunday walk")]);
    assert_eq!(first.status, 303, "{}", first.body);
    assert!(
        first
            .header("location")
            .is_some_and(|l| l.starts_with("/goals/"))
    );
    // A double click, or a reload that sends it again: nothing more is written.
    let again = app.post("/goals", &[("once", &once), ("title", "Sunday walk")]);
    assert_eq!(again.status, 303, "{}", again.body);
    assert_eq!(goals(&d), 1);
    // The same copy sent again with other words (Back, an edit, Send) is not dropped.
    let edited = app.post("/goals", &[("once", &once), ("title", "Sunday walk, long")]);
    assert_eq!(edited.status, 303, "{}", edited.body);
    assert_ne!(edited.header("location"), first.header("location"));
    assert_eq!(goals(&d), 2);
    // Another rendering of the form is another form.
    let once = once_of(&app.get("/").body, "/goals");
    assert_eq!(
        app.post("/goals", &[("once", &once), ("title", "Walk")])
            .status,
        303
    );
    assert_eq!(goals(&d), 3);
}

#[test]
fn the_safety_code_confirmed_is_the_one_the_page_showed() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    // Alex's device learns that Sam joined (before, there is no one to compare with).
    alex.ok(&["sync"]);
    let app = App::start(&alex);
    let page = app.get("/devices").body;
    let at = page.find("name=\"code\" value=\"").expect("the code field") + 19;
    let shown = page[at..].split('"').next().expect("the code").to_string();

    // Sam adds a device after Alex's page was shown; Alex's app learns of it.
    let sam2 = Device::new();
    sam2.ok(&[
        "join",
        sam.json(&["device", "add"])["code"].as_str().expect("code"),
    ]);
    alex.ok(&["sync"]);
    let stale = app.post("/devices/verify", &[("code", &shown)]);
    assert_ne!(stale.status, 303, "{}", stale.body);
    assert!(stale.body.contains("safety code changed"), "{}", stale.body);
    let unverified = alex.json(&["device", "list"]);
    assert!(
        unverified
            .as_array()
            .expect("devices")
            .iter()
            .filter(|row| row["this_device"] != true)
            .all(|row| row["verified"] != true),
        "nothing confirmed: {unverified}"
    );

    // The code shown now is confirmed.
    let page = app.get("/devices").body;
    let at = page.find("name=\"code\" value=\"").expect("the code field") + 19;
    let shown = page[at..].split('"').next().expect("the code").to_string();
    let confirmed = app.post("/devices/verify", &[("code", &shown)]);
    assert_eq!(confirmed.status, 303);
    // The page it leads to no longer says a device is not verified.
    let after = app.get(confirmed.header("location").expect("the page"));
    assert!(!after.body.contains("not verified yet"), "{}", after.body);
}

#[test]
fn a_connection_that_sends_nothing_is_closed_and_the_app_still_answers() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let app = App::start(&d);
    // Another local user opens connections and sends nothing (or half a request).
    let mut idle = TcpStream::connect(("127.0.0.1", app.port)).expect("connect");
    let mut half = TcpStream::connect(("127.0.0.1", app.port)).expect("connect");
    half.write_all(b"GET / HTTP/1.1\r\nHost: 127.0")
        .expect("write");
    for s in [&idle, &half] {
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
    }
    // The app closes each well before the test's own deadline (it held them for good).
    let start = Instant::now();
    for s in [&mut idle, &mut half] {
        let mut buf = [0u8; 512];
        loop {
            match std::io::Read::read(s, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }
    assert!(start.elapsed() < Duration::from_secs(25), "held open");
    assert_eq!(app.get("/").status, 200);
}

#[test]
fn the_browser_is_opened_without_the_session_key_on_any_command_line() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let bin = tempfile::tempdir().expect("temp dir");
    let app = App::start_opening(&d, bin.path());
    let seen = duet_tests::app::opened(bin.path());
    let args = seen.lines().next().unwrap_or_default();
    assert!(args.contains("file://"), "{args}");
    assert!(
        !args.contains(&app.key),
        "the key is on the opener's command line: {args}"
    );
    // The page it opens, readable by this user only, sends the browser on with the key.
    assert!(seen.contains(&app.url), "{seen}");
    assert!(seen.trim_end().ends_with("MODE 600"), "{seen}");
    // Closing the terminal it runs in (SIGHUP) stops it cleanly: the page is removed.
    let page = args
        .split_whitespace()
        .nth(1)
        .and_then(|u| u.strip_prefix("file://"))
        .map(std::path::PathBuf::from)
        .expect("the page's path");
    assert!(page.exists(), "{}", page.display());
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &app.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(hup.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while page.exists() {
        assert!(Instant::now() < deadline, "the page is still there");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_form_of_a_page_shown_before_the_app_restarted_keeps_its_words() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let before = App::start(&d);
    let (port, csrf, cookie, origin) = (
        before.port.to_string(),
        before.csrf(),
        before.cookie(),
        before.origin(),
    );
    drop(before);
    // Started again on the same port: the page's cookie and token are of the last run.
    let app = App::start_args(&d, &["app", "--no-open", "--json", "--port", &port], &[]);
    let form = encode(&[
        ("csrf", &csrf),
        ("title", "Sunday walk"),
        ("why", "Ten minutes of writing"),
    ]);
    let old_page = [("Cookie", cookie.as_str()), ("Origin", origin.as_str())];
    let refused = app.request("POST", "/goals", &old_page, &form);
    assert_eq!(refused.status, 403, "{}", refused.body);
    for words in ["Ten minutes of writing", "Sunday walk", "started again"] {
        assert!(refused.body.contains(words), "{words}: {}", refused.body);
    }
    // Going back to that page would be refused again: the page says where to send them.
    assert!(
        refused.body.contains("send them from Duet's window"),
        "{}",
        refused.body
    );
    assert!(
        !refused.body.contains("go back and send"),
        "{}",
        refused.body
    );
    // With the new run's cookie (Duet opened again in another tab) but the old page.
    let (new_cookie, own) = (app.cookie(), app.origin());
    let other_tab = [("Cookie", new_cookie.as_str()), ("Origin", own.as_str())];
    let refused = app.request("POST", "/goals", &other_tab, &form);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains("Ten minutes of writing"),
        "{}",
        refused.body
    );
    assert_eq!(goals(&d), 0);
    // Another site's form is never shown back.
    let foreign = [
        ("Cookie", cookie.as_str()),
        ("Origin", "http://evil.example"),
    ];
    let refused = app.request("POST", "/goals", &foreign, &form);
    assert_eq!(refused.status, 403);
    assert!(!refused.body.contains("Ten minutes"), "{}", refused.body);
}

/// Another local user cannot listen at `[::1]:PORT` (where a browser may look for
/// `localhost:PORT`) to receive the printed link's key: the app holds that address too,
/// and refuses the name there.
#[test]
fn the_app_holds_its_port_on_the_ipv6_loopback_too() {
    use std::io::{Read, Write};
    if std::net::TcpListener::bind(("::1", 0)).is_err() {
        println!("skipped: this machine has no IPv6 loopback, so no [::1]:PORT to take");
        return;
    }
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let app = App::start(&d);
    let taken = std::net::TcpListener::bind(("::1", app.port));
    assert!(
        taken.is_err(),
        "another program could listen at [::1]:{}",
        app.port
    );
    let mut s = std::net::TcpStream::connect(("::1", app.port)).expect("the app at [::1]");
    let head = format!(
        "GET /?key={} HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n",
        app.key, app.port
    );
    s.write_all(head.as_bytes()).expect("write");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");
}
