//! `duet app` in real headless Chromium, driven over the DevTools protocol (a WebSocket
//! to the page; no driver binary needed): Alex uses the app, Sam the command line, one
//! relay between them. Alex adds a goal with its level texts, both rate it blind (Sam
//! first, with `duet rate`), Alex writes a reflection and Sam's reply (CLI) appears in
//! Alex's open page without a reload; the report renders. Sam's own `duet app` shows the
//! same state (mixed use converges); Today fits a phone-sized window in dark mode. A
//! screenshot of each page is left in `target/tmp/app/` for a person to look at.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use duet_tests::app::App;
use duet_tests::{Relay, pair};
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// Generous: CI is slow and Chromium is heavy.
const DEADLINE: Duration = Duration::from_secs(90);

/// Headless Chromium with one page, driven over the DevTools protocol.
struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    next: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start(chromium: &Path) -> Browser {
        let profile = tempfile::tempdir().expect("profile");
        let mut child = Command::new("timeout")
            .arg("600")
            .arg(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--window-size=900,1200",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("ws://") {
                    let _ = tx.send(line[at..].trim().to_string());
                }
            }
        });
        let browser_ws = rx.recv_timeout(DEADLINE).expect("chromium's DevTools URL");
        let port = browser_ws
            .trim_start_matches("ws://127.0.0.1:")
            .split('/')
            .next()
            .expect("a port")
            .to_string();
        let page_ws = page_target(&port);
        let (ws, _) = tungstenite::client(
            page_ws.as_str(),
            TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect"),
        )
        .expect("DevTools socket");
        ws.get_ref()
            .set_read_timeout(Some(DEADLINE))
            .expect("timeout");
        Browser {
            child,
            ws,
            next: 0,
            _profile: profile,
        }
    }

    /// One DevTools command; its result (events meanwhile are skipped).
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(Message::text(msg)).expect("send");
        loop {
            let Message::Text(t) = self.ws.read().expect("DevTools answers") else {
                continue;
            };
            let v: Value = serde_json::from_str(t.as_str()).expect("JSON");
            if v["id"] == id {
                assert!(v["error"].is_null(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Evaluates JavaScript in the page (promises awaited); its value.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(r["exceptionDetails"].is_null(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Polls until `expr` is true in the page.
    fn wait(&mut self, expr: &str) {
        let deadline = Instant::now() + DEADLINE;
        while self.eval(&format!("!!({expr})")) != json!(true) {
            assert!(
                Instant::now() < deadline,
                "never true: {expr}\n{}",
                self.eval("document.body ? document.body.innerText : ''")
            );
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// Opens a URL and waits for the page to load.
    fn open(&mut self, url: &str) {
        self.eval("window.__left = true");
        self.call("Page.navigate", json!({"url": url}));
        self.wait("!window.__left && document.readyState === 'complete'");
    }

    /// The text of the page's main content.
    fn text(&mut self) -> String {
        self.eval("document.querySelector('main').innerText")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Submits the form holding `selector`, after filling `fields` (selector, value).
    fn submit(&mut self, form: &str, fields: &[(&str, &str)]) {
        for (sel, value) in fields {
            let js = format!(
                "document.querySelector({}).value = {}",
                json!(sel),
                json!(value)
            );
            self.eval(&js);
        }
        self.eval("window.__left = true");
        self.eval(&format!(
            "document.querySelector({}).requestSubmit()",
            json!(form)
        ));
        self.wait("!window.__left && document.readyState === 'complete'");
    }

    /// Saves a full-page screenshot.
    fn screenshot(&mut self, name: &str) {
        let r = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("image data"))
            .expect("base64");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("app");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot");
    }
}

impl Drop for Browser {
    /// Asks Chromium itself to close: killing `timeout` (or the `chromium` wrapper
    /// script) would leave the browser running on its own.
    fn drop(&mut self) {
        self.next += 1;
        let close = json!({"id": self.next, "method": "Browser.close"}).to_string();
        if self.ws.send(Message::text(close)).is_ok() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The DevTools WebSocket URL of the page target.
fn page_target(port: &str) -> String {
    let mut s = TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect");
    write!(
        s,
        "GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    // Chromium keeps the connection open: read the head, then Content-Length bytes.
    let mut r = BufReader::new(s);
    let mut length = 0;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("read");
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().expect("a length");
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).expect("the target list");
    let list: Vec<Value> = serde_json::from_slice(&body).expect("target list");
    list.iter()
        .find(|t| t["type"] == "page")
        .and_then(|t| t["webSocketDebuggerUrl"].as_str())
        .expect("a page target")
        .to_string()
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
fn two_partners_use_the_app_and_the_command_line_and_converge() {
    let Some(chromium) = duet_tests::chromium() else {
        eprintln!(
            "skipped: install chromium (Debian package `chromium`) to run the app browser test"
        );
        return;
    };
    let relay = Relay::start();
    let (alex, sam) = pair(&relay);
    alex.ok(&["sync"]);
    let alex_app = App::start(&alex);
    let sam_app = App::start(&sam);
    let mut b = Browser::start(&chromium);

    // Alex opens the printed URL and adds a goal with its level texts.
    b.open(&alex_app.url);
    b.wait("document.querySelector('h1').innerText === 'Today'");
    b.screenshot("today-empty");
    b.submit(
        "form[action='/goals']",
        &[
            ("#title", "Sunday walk"),
            ("#level2", "We walk every Sunday and talk"),
            ("#level1", "We walk most Sundays"),
            ("#level0", "We walk twice a month"),
            ("#level-1", "We walk once a month"),
            ("#level-2", "We never walk"),
        ],
    );
    b.wait("location.pathname.startsWith('/goals/')");
    assert!(b.text().contains("We walk twice a month"));
    b.screenshot("goal");

    // Sam rates it blind with the command line.
    until("Sam sees the goal", || {
        sam.ok(&["sync"]);
        sam.ok(&["goal", "list"]).contains("Sunday walk")
    });
    sam.ok(&["rate", "walk", "1", "--note", "Two good walks"]);
    sam.ok(&["sync"]);

    // Alex's check-in hears that Sam rated (never how), and rates in the app.
    b.open(&format!("{}/checkin", alex_app.origin()));
    b.wait("document.querySelector('main').innerText.includes('Your partner has rated this goal')");
    assert!(
        !b.text().contains("Two good walks"),
        "Sam's note stays sealed"
    );
    b.screenshot("checkin");
    b.eval("document.querySelector('#level0').click()");
    b.submit("form.checkin", &[("#note", "It felt short")]);
    b.wait("location.search.includes('rated=')");

    // Once Sam syncs, both ratings are revealed, in both apps and both command lines.
    until("both levels revealed to Sam", || {
        sam.ok(&["sync"]);
        let p = sam.json(&["progress"]);
        p["goals"][0]["partners"].as_array().is_some_and(|s| {
            s.iter()
                .all(|s| !s["latest"].is_null() && s["sealed"] == false)
        })
    });
    b.open(&format!("{}/", alex_app.origin()));
    b.wait("document.querySelector('main').innerText.includes('Sam: +1')");
    b.screenshot("today");
    sam_app.wait_for("/", "Alex</strong>: 0");

    // A reflection in the app; Sam's reply (CLI) appears in the open page, no reload.
    b.open(&format!("{}/reflections", alex_app.origin()));
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
    b.screenshot("reflections");

    // History and the report.
    b.open(&format!("{}/history", alex_app.origin()));
    assert!(b.text().contains("Sunday walk"));
    b.screenshot("history");
    b.open(&format!("{}/report/print", alex_app.origin()));
    b.wait("document.title.startsWith('Progress report')");
    assert!(
        b.eval("document.body.innerText")
            .as_str()
            .unwrap_or("")
            .contains("We walk twice a month")
    );
    b.screenshot("report");

    // A phone-sized window in dark mode: one column, no sideways scrolling.
    b.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true}),
    );
    b.call(
        "Emulation.setEmulatedMedia",
        json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
    );
    b.open(&format!("{}/", alex_app.origin()));
    assert_eq!(
        b.eval("document.documentElement.scrollWidth <= window.innerWidth"),
        json!(true),
        "the page scrolls sideways on a phone"
    );
    b.screenshot("today-phone-dark");
}
