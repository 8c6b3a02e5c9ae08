//! A sync that cannot reach its relay says which failure it was and what to check (issue
//! 19, acceptance 4): a host that does not resolve, a closed port, https against a
//! plain-HTTP relay and http against a TLS server, each with its own message; "run `duet
//! sync` again" only where running it again can help. A relay URL with a path is refused
//! at once. Nothing leaves the loopback: the unresolvable host is under `.invalid`
//! (RFC 2606), which never resolves. A relay whose clock is ten minutes off (a small box
//! without network time) is still synced with, and the person is told which clock differs.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use duet_tests::{Device, Relay, Watcher, pair};

const RETRY: &str = "run `duet sync` again";

/// How long a failing sync may take before the test calls it hung.
const DEADLINE: Duration = Duration::from_secs(60);

/// A device set up with `relay` as its relay URL (its spaces sent at once only if a Duet
/// relay answers there).
fn device_with_relay(relay: &str) -> Device {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex", "--relay", relay]);
    d
}

/// Runs `duet sync`, which must fail; returns its stderr.
fn failing_sync(d: &Device) -> String {
    let mut child = d
        .command(&["sync"])
        .stdout(Stdio::null())
        .spawn()
        .expect("duet starts");
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for duet") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("duet sync did not end within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    // 3 where the same sync can pass later as it is (where it advises running it
    // again), 1 where something must change first.
    let expected = if stderr.contains(RETRY) { 3 } else { 1 };
    assert_eq!(status.code(), Some(expected), "sync should fail: {stderr}");
    assert!(
        !stderr.contains("error sending request"),
        "the failure is told apart: {stderr}"
    );
    stderr
}

#[test]
fn a_host_that_does_not_resolve_is_named_with_what_to_check() {
    let d = device_with_relay("http://duet-relay.invalid:8787");
    let err = failing_sync(&d);
    assert!(err.contains("cannot resolve duet-relay.invalid"), "{err}");
    assert!(
        err.contains("check the relay address (`duet relay set URL`) and your network"),
        "{err}"
    );
    assert!(!err.contains(RETRY), "a retry cannot fix an address: {err}");
}

#[test]
fn a_closed_port_says_connection_refused_and_that_a_retry_helps() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    }; // dropped: nothing listens there now
    let d = Device::new();
    let url = format!("http://127.0.0.1:{port}");
    // Set up offline all the same, and told at once that no relay answers there.
    let init = d.run(&["init", "--name", "Alex", "--relay", &url]);
    assert_eq!(init.code, 0, "{init:?}");
    assert!(
        init.stderr
            .contains(&format!("no duet relay answers at {url} now")),
        "{}",
        init.stderr
    );
    let err = failing_sync(&d);
    assert!(
        err.contains(&format!("connection refused at 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(err.contains("is the relay running there?"), "{err}");
    assert!(err.contains(RETRY), "a relay started later helps: {err}");
}

#[test]
fn https_against_a_plain_http_relay_says_so_and_names_the_right_url() {
    let relay = Relay::start();
    let https = relay.url.replacen("http://", "https://", 1);
    let d = device_with_relay(&https);
    let err = failing_sync(&d);
    assert!(
        err.contains(&format!(
            "the relay at {https} speaks plain HTTP but the URL says https"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("`duet relay set {}`", relay.url)),
        "{err}"
    );
    assert!(!err.contains(RETRY), "the same URL fails again: {err}");
}

#[test]
fn a_server_that_redirects_is_named_with_where_it_leads_and_not_followed() {
    // An http:// address whose server sends everyone elsewhere (here, to the relay
    // itself): following it turned the push into a GET the relay refused as unsigned.
    let relay = Relay::start();
    let target = relay.url.clone();
    let addr = serving(move |path| {
        format!(
            "HTTP/1.1 301 Moved Permanently\r\nLocation: {target}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    });
    let d = device_with_relay(&format!("http://{addr}"));
    let err = failing_sync(&d);
    assert!(
        err.contains(&format!("redirects to {}", relay.url))
            && err.contains(&format!("(`duet relay set {}`)", relay.url)),
        "{err}"
    );
    assert!(!err.contains("unauthenticated"), "{err}");
}

/// A web server on a free loopback port that answers every request with what `answer`
/// makes of its path; returns its address.
fn serving(answer: impl Fn(&str) -> String + Send + 'static) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = [0u8; 4096];
            let n = stream.read(&mut request).unwrap_or(0);
            let head = String::from_utf8_lossy(&request[..n]).into_owned();
            let path = head.split(' ').nth(1).unwrap_or("/").to_string();
            let _ = stream.write_all(answer(&path).as_bytes());
        }
    });
    addr
}

/// A web server answering every request with `status` and an HTML `page`, as a proxy
/// set up halfway does; returns its address.
fn answering(status: &'static str, page: &'static str) -> std::net::SocketAddr {
    serving(move |_| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
            page.len()
        )
    })
}

#[test]
fn a_proxy_set_up_halfway_is_said_in_its_own_terms() {
    // nginx's default 1 MB body limit, and nginx's answer to http on its TLS port.
    let small = answering(
        "413 Request Entity Too Large",
        "<html><head><title>413 Request Entity Too Large</title></head></html>",
    );
    let err = failing_sync(&device_with_relay(&format!("http://{small}")));
    assert!(err.contains("client_max_body_size 16m"), "{err}");
    let tls = answering(
        "400 Bad Request",
        "<html><center>The plain HTTP request was sent to HTTPS port</center></html>",
    );
    let err = failing_sync(&device_with_relay(&format!("http://{tls}")));
    assert!(err.contains(&format!("use https://{tls}")), "{err}");
    // Caddy's (Go's) answer to the same.
    let go = answering(
        "400 Bad Request",
        "Client sent an HTTP request to an HTTPS server.\n",
    );
    let err = failing_sync(&device_with_relay(&format!("http://{go}")));
    assert!(err.contains(&format!("use https://{go}")), "{err}");
}

/// A proxy in front of a relay that is down answers with its own page (nginx's 502):
/// the same sync passes once the relay is back, so it is said to be run again (exit 3).
#[test]
fn a_proxys_page_for_a_relay_that_is_down_says_to_sync_again() {
    let addr = answering(
        "502 Bad Gateway",
        "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
    );
    let err = failing_sync(&device_with_relay(&format!("http://{addr}")));
    assert!(err.contains(RETRY), "{err}");
    assert!(err.contains("502"), "{err}");
    assert!(!err.contains("<html"), "{err}");
}

/// A web server at a mistyped address answers with a page of HTML: said as "not a Duet
/// relay", without the page pasted into the message.
#[test]
fn a_web_server_that_is_not_a_relay_is_named_as_such_without_its_page() {
    let addr = answering(
        "404 Not Found",
        "<!DOCTYPE HTML><html><body><h1>Not Found</h1></body></html>",
    );
    let d = device_with_relay(&format!("http://{addr}"));
    let err = failing_sync(&d);
    assert!(err.contains("did not answer as a Duet relay"), "{err}");
    assert!(!err.contains("<html") && !err.contains("DOCTYPE"), "{err}");
    assert!(!err.contains(RETRY), "it stays a web server: {err}");
}

/// A relay's own words in a refusal are cut to one line: a lying relay cannot add a line
/// under its error that reads like Duet's output.
#[test]
fn a_relays_refusal_cannot_print_a_line_of_its_own() {
    let body = r#"{"error":"odd\npersonal: sent 2 changes","message":"try later\nshared: 3 goals from Alex\r\u2028personal: sent 1 change"}"#;
    let addr = serving(move |_| {
        format!(
            "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    });
    let err = failing_sync(&device_with_relay(&format!("http://{addr}")));
    assert!(err.contains("try later"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!err.contains('\u{2028}'), "{err}");
}

#[test]
fn a_relay_that_does_not_hold_the_space_is_said_in_words_and_not_to_need_a_retry() {
    let first = Relay::start();
    let second = Relay::start();
    let d = device_with_relay(&first.url);
    d.ok(&["sync"]);
    d.ok(&["relay", "set", &second.url]);
    let err = failing_sync(&d);
    assert!(err.contains("no_such_space"), "{err}");
    assert!(
        err.contains("this relay does not hold the space")
            && err.contains("`duet status`")
            && err.contains("tell its operator"),
        "{err}"
    );
    assert!(!err.contains("genesis"), "the relay's own words: {err}");
    assert!(
        !err.contains(RETRY),
        "the same relay answers the same: {err}"
    );
}

#[test]
fn http_against_a_tls_server_says_so_and_names_the_right_url() {
    // A TLS server answers a plain-HTTP request with a TLS alert record.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            // Alert, TLS 1.2, length 2: fatal, protocol_version.
            let _ = stream.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]);
        }
    });
    let http = format!("http://{addr}");
    let d = device_with_relay(&http);
    let err = failing_sync(&d);
    assert!(
        err.contains(&format!(
            "the relay at {http} speaks TLS (https) but the URL says http"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("`duet relay set https://{addr}`")),
        "{err}"
    );
    assert!(!err.contains(RETRY), "the same URL fails again: {err}");
}

#[test]
fn a_relay_url_with_a_path_is_refused_when_set() {
    let d = Device::new();
    d.ok(&["init", "--name", "Alex"]);
    let r = d.run(&["relay", "set", "http://127.0.0.1:8787/relay"]);
    assert_eq!(r.code, 2, "a usage error: {}", r.stderr);
    assert!(
        r.stderr
            .contains("a relay is an origin only, without a path"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("https://relay.example.org"),
        "it shows what a relay URL looks like: {}",
        r.stderr
    );
}

#[test]
fn a_relay_whose_clock_is_ten_minutes_ahead_is_synced_with_and_the_clocks_are_named() {
    // libfaketime moves the relay's clock (and so its `Date`); `.ci/run` installs it.
    if !duet_tests::faketime_or_skip() {
        return;
    }
    let relay = duet_tests::relay_with_clock("+10m");
    // Reads signed by this machine's clock are 600 s from the relay's: refused, then
    // signed again with the relay's time (the join reads the space, too).
    let (alex, sam) = pair(&relay);
    alex.ok(&["goal", "add", "Clockwork walk", "--area", "quality-time"]);
    let run = alex.run(&["sync"]);
    run.ok();
    assert!(
        run.stderr
            .contains("this device's clock is 10 minutes behind the relay's"),
        "{}",
        run.stderr
    );
    let run = sam.run(&["sync"]);
    assert!(
        run.ok().contains("1 goal from Alex"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    assert!(
        relay.log().contains("stale_request"),
        "the relay refused first"
    );
    // A new process's live sockets (one per space, opened at once) sign again too.
    let mut watcher = Watcher::start(&sam);
    alex.ok(&["reflect", "On time after all"]);
    alex.ok(&["sync"]);
    watcher.wait_for("1 reflection from Alex");
    let lines = watcher.stop();
    assert!(!lines.iter().any(|l| l.contains("401")), "{lines:#?}");
}

#[test]
fn a_watcher_behind_a_proxy_that_drops_websocket_upgrades_says_so_and_still_syncs() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    // A proxy that passes requests on without their `Connection: upgrade`, as nginx
    // does without the upgrade lines of docs/self-hosting.md.
    let proxy = duet_tests::proxy::RelayProxy::start(&relay.url, |_| None);
    sam.ok(&["relay", "set", &proxy.url]);
    let mut watcher = Watcher::start(&sam);
    watcher.wait_for("does not pass the `Upgrade` and `Connection` headers");
    alex.ok(&["reflect", "Heard without a live socket"]);
    alex.ok(&["sync"]);
    // No live news comes: the watcher's own syncs bring it.
    watcher.wait_for("1 reflection from Alex");
    watcher.stop();
}

#[test]
fn a_relay_set_where_nothing_answers_is_kept_and_said_at_once() {
    let relay = Relay::start();
    let d = device_with_relay(&relay.url);
    // A port nothing listens on (bound, then freed).
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let typo = format!("http://127.0.0.1:{port}");
    let run = d.run(&["relay", "set", &typo]);
    run.ok();
    assert!(
        run.stderr.contains("no duet relay answers at")
            && run.stderr.contains("connection refused"),
        "{}",
        run.stderr
    );
    assert_eq!(d.json(&["status"])["spaces"][0]["relay"], typo.as_str());
    // The right one is set without a word.
    let run = d.run(&["relay", "set", &relay.url]);
    run.ok();
    assert!(!run.stderr.contains("no duet relay"), "{}", run.stderr);
}

/// An invite made while the relay is down is given (it works once a sync sends it), with
/// a warning saying so, instead of an open invite nobody ever saw the code of.
#[test]
fn an_invite_made_while_the_relay_is_down_is_given_and_works_after_a_sync() {
    let mut relay = Relay::start();
    let alex = device_with_relay(&relay.url);
    alex.ok(&["sync"]);
    relay.kill();
    let made = alex.run(&["invite"]);
    let code = made.ok().trim().to_string();
    assert!(code.starts_with("duet2-"), "{code}");
    assert!(
        made.stderr.contains("has not reached the relay yet")
            && made.stderr.contains("run `duet sync`"),
        "{}",
        made.stderr
    );
    let phone = alex.json(&["device", "add"]);
    assert_eq!(phone["sent"], false, "{phone}");
    relay.restart();
    alex.ok(&["sync"]);
    let sam = Device::new();
    sam.ok(&["join", &code, "--name", "Sam"]);
}

#[test]
fn a_push_over_the_spaces_quota_is_said_with_the_changes_kept_and_no_backup_story() {
    let relay = Relay::start_with(&["--space-max-events", "12"]);
    let (alex, _sam) = pair(&relay);
    let mut refused = None;
    for i in 0..12 {
        alex.ok(&["reflect", &format!("note {i}")]);
        let r = alex.run(&["sync"]);
        if r.code != 0 {
            refused = Some(r.stderr);
            break;
        }
    }
    let err = refused.expect("the quota is reached");
    assert!(err.contains("quota_exceeded"), "{err}");
    assert!(err.contains("they are kept on this device"), "{err}");
    assert!(!err.contains("old backup"), "not a restored relay: {err}");
    let status = alex.ok(&["status"]);
    assert!(
        status.contains("the relay refused this device's changes") && status.contains("quota"),
        "status says why changes wait: {status}"
    );
}

#[test]
fn a_watcher_whose_live_socket_never_opens_still_syncs_and_says_why() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    // A proxy (a café's captive portal, a stalled tunnel) that takes the WebSocket
    // upgrade and never answers, holding the connection open.
    let proxy = duet_tests::proxy::RelayProxy::start_holding_upgrades(&relay.url);
    sam.ok(&["relay", "set", &proxy.url]);
    let mut watcher = Watcher::start(&sam);
    alex.ok(&["reflect", "Heard while the socket hangs"]);
    alex.ok(&["sync"]);
    // The watcher's own syncs bring it, and the open gives up and says so.
    watcher.printed("1 reflection from Alex");
    watcher.printed("did not answer within");
    watcher.stop();
}

#[test]
fn an_answer_cut_off_partway_is_said_as_such_not_as_a_relay_out_of_reach() {
    // A connection that drops on the way back: the head and the start of an answer,
    // then nothing.
    let cut = serving(|_| {
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n{\"accepted\":"
            .to_string()
    });
    let err = failing_sync(&device_with_relay(&format!("http://{cut}")));
    assert!(err.contains("stopped answering partway"), "{err}");
    assert!(err.contains("run `duet sync` again"), "{err}");
    assert!(!err.contains("check that it is running"), "{err}");
    // Cut within the head, or closed with no answer at all after the request: the
    // relay (or something on the way) was reached all the same.
    for answer in ["HTTP/1.1 200 OK\r\nContent-Ty", ""] {
        let cut = serving(move |_| answer.to_string());
        let err = failing_sync(&device_with_relay(&format!("http://{cut}")));
        assert!(
            err.contains("stopped answering partway"),
            "{answer:?}: {err}"
        );
        assert!(
            !err.contains("check that it is running"),
            "{answer:?}: {err}"
        );
    }
}

/// A relay killed while it reads a request (or a proxy that gives up on it) resets the
/// connection: said as an answer cut off, with the network layer's words behind it,
/// not as a relay out of reach ("error sending request" alone).
#[test]
fn a_connection_reset_while_sending_is_said_as_cut_off() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            // Closing with the request unread makes the kernel answer with a reset.
            let mut first = [0u8; 1];
            let _ = stream.read(&mut first);
            drop(stream);
        }
    });
    let err = failing_sync(&device_with_relay(&format!("http://{addr}")));
    assert!(err.contains("stopped answering partway"), "{err}");
    assert!(!err.contains("error sending request"), "{err}");
}

#[test]
fn a_watcher_listens_at_the_relay_set_while_it_runs() {
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    // Set up first behind a proxy that drops WebSocket upgrades; then the right address
    // is set by another command while the watcher runs.
    let proxy = duet_tests::proxy::RelayProxy::start(&relay.url, |_| None);
    sam.ok(&["relay", "set", &proxy.url]);
    let mut watcher = Watcher::start(&sam);
    watcher.printed("does not pass the `Upgrade` and `Connection` headers");
    sam.ok(&["relay", "set", &relay.url]);
    watcher.printed(&format!("Listening at {} now", relay.url));
    watcher.printed("Connected to the relay again");
    alex.ok(&["reflect", "Heard at the new address"]);
    alex.ok(&["sync"]);
    watcher.printed("1 reflection from Alex");
    watcher.stop();
}

#[test]
fn a_relay_set_that_holds_none_of_the_spaces_is_said_at_once_with_the_old_one() {
    let relay = duet_tests::Relay::start();
    let other = duet_tests::Relay::start();
    let (alex, _sam) = duet_tests::pair(&relay);
    let r = alex.run(&["relay", "set", &other.url]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("does not hold your shared space") && r.stderr.contains(&relay.url),
        "{}",
        r.stderr
    );
    // Back on the couple's relay, nothing to say.
    let back = alex.run(&["relay", "set", &relay.url]);
    assert_eq!(back.code, 0, "{back:?}");
    assert!(!back.stderr.contains("does not hold"), "{}", back.stderr);
}

/// A relay whose clock runs two days ahead judges every code expired at the join (a
/// device code lasts a day): the refusal says that the relay's clock is ahead, so the
/// couple does not make code after code.
#[test]
fn a_join_refused_as_expired_by_a_relay_days_ahead_names_the_relays_clock() {
    if !duet_tests::faketime_or_skip() {
        return;
    }
    let relay = duet_tests::relay_with_clock("+2d");
    let alex = Device::new();
    alex.ok(&["init", "--name", "Alex", "--relay", &relay.url]);
    let code = alex.device_code();
    let phone = Device::new();
    let r = phone.run(&["join", &code]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("invite_expired"), "{}", r.stderr);
    assert!(
        r.stderr.contains("the relay's clock is") && r.stderr.contains("ahead of this device's"),
        "{}",
        r.stderr
    );
}

/// A relay started under libfaketime's `faketime` (which forks the relay and waits) is
/// gone once its test drops it: killing the wrapper alone left the relay running, an
/// idle process after every such test.
#[test]
fn a_relay_started_under_faketime_is_gone_once_dropped() {
    if !duet_tests::faketime_or_skip() {
        return;
    }
    let relay = duet_tests::relay_with_clock("+10m");
    let inner = duet_testkit::relay::children_of(relay.pid());
    assert!(!inner.is_empty(), "faketime runs the relay as its child");
    drop(relay);
    // Gone, or a zombie no one reaps here (its parent was killed first).
    let alive = |pid: &u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .is_some_and(|zombie| !zombie)
    };
    let deadline = Instant::now() + DEADLINE;
    while inner.iter().any(alive) {
        assert!(
            Instant::now() < deadline,
            "the relay outlived its test: {inner:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a relay answers that still says this device's chain has a gap after the sync
/// gave it back what it lost: 409 `broken_chain` to every push of changes.
fn chain_said_broken(events: &[duet_core::event::Event]) -> Option<(u16, String)> {
    events
        .iter()
        .any(|ev| ev.kind() == duet_core::event::Kind::Changes)
        .then(|| {
            let answer = serde_json::json!({
                "error": "broken_chain",
                "message": "sequence gap: expected seq 4, got 5",
            });
            (409, answer.to_string())
        })
}

/// A relay restored from an old backup may still refuse a push as a gap in the device's
/// chain once the sync has given back what it lost (it gives back once per sync): the
/// next sync gives back again, so it is said as a sync to run again (exit 3; it exited
/// 1, as a refusal for good).
#[test]
fn a_chain_still_said_broken_after_a_give_back_is_a_sync_to_run_again() {
    let relay = Relay::start();
    let proxy = duet_tests::proxy::RelayProxy::start(&relay.url, chain_said_broken);
    let d = device_with_relay(&proxy.url);
    d.ok(&["goal", "add", "Walk together", "--area", "trust"]);
    let r = d.run(&["sync"]);
    assert!(r.code == 3 && r.stderr.contains(RETRY), "{r:?}");
    assert!(proxy.answered() > 0, "the proxy answered the push");
}
