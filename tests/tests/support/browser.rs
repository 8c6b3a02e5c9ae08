//! Headless Chromium driven over the DevTools protocol (a WebSocket to the page; no
//! driver binary needed), for the browser test of `duet app`: open, fill, type, submit,
//! wait, screenshot, and the axe-core accessibility check (vendored in tests/vendor/).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// axe-core, injected into each page checked.
const AXE: &str = include_str!("../../vendor/axe-core/axe.min.js");

/// Generous: CI is slow and Chromium is heavy.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// Headless Chromium with one page, driven over the DevTools protocol.
pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    next: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub fn start(chromium: &Path) -> Browser {
        let profile = tempfile::tempdir().expect("profile");
        let mut child = Command::new("timeout")
            .arg("600")
            .arg(chromium)
            .args(duet_tests::HEADLESS_CHROMIUM)
            .args(["--remote-debugging-port=0", "--window-size=900,1200"])
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
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.try_call(method, params)
            .unwrap_or_else(|v| panic!("{method}: {v}"))
    }

    /// One DevTools command; its result, or the answer that carried an error.
    fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
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
                return if v["error"].is_null() {
                    Ok(v["result"].clone())
                } else {
                    Err(v)
                };
            }
        }
    }

    /// Evaluates JavaScript in the page (promises awaited); its value.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(r["exceptionDetails"].is_null(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Whether `expr` is true in the page now; false while the page is between two
    /// documents (an evaluation the navigation cut short).
    fn holds(&mut self, expr: &str) -> bool {
        let asked = json!({"expression": format!("!!({expr})"), "returnByValue": true, "awaitPromise": true});
        match self.try_call("Runtime.evaluate", asked) {
            Ok(r) => r["result"]["value"] == json!(true),
            Err(v) if v.to_string().contains("navigated or closed") => false,
            Err(v) => panic!("Runtime.evaluate: {v}"),
        }
    }

    /// Polls until `expr` is true in the page.
    pub fn wait(&mut self, expr: &str) {
        let deadline = Instant::now() + DEADLINE;
        while !self.holds(expr) {
            assert!(
                Instant::now() < deadline,
                "never true: {expr}\n{}",
                self.eval("document.body ? document.body.innerText : ''")
            );
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// Opens a URL and waits for the page to load.
    pub fn open(&mut self, url: &str) {
        self.eval("window.__left = true");
        self.call("Page.navigate", json!({"url": url}));
        self.wait("!window.__left && document.readyState === 'complete'");
    }

    /// The text of the page's main content.
    pub fn text(&mut self) -> String {
        self.eval("document.querySelector('main').innerText")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Submits the form holding `selector`, after filling `fields` (selector, value).
    pub fn submit(&mut self, form: &str, fields: &[(&str, &str)]) {
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
    pub fn screenshot(&mut self, name: &str) {
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

impl Browser {
    /// Types `text` into the field `selector` as a person would (focus, then the keys'
    /// text through the input pipeline).
    pub fn type_into(&mut self, selector: &str, text: &str) {
        self.eval(&format!(
            "document.querySelector({}).focus()",
            json!(selector)
        ));
        self.call("Input.insertText", json!({"text": text}));
    }

    /// Reopens `url` until `expr` holds (for what arrives by a sync, on a page that
    /// is not live, like one a form answered).
    pub fn open_until(&mut self, url: &str, expr: &str) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            self.open(url);
            if self.eval(&format!("!!({expr})")) == json!(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "never true on {url}: {expr}\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Runs axe-core on the page; its serious and critical violations, each as one
    /// line naming the page, the rule, what it asks and where.
    pub fn axe(&mut self, page: &str) -> Vec<String> {
        if self.eval("typeof axe === 'undefined'") == json!(true) {
            self.eval(&format!("{AXE};0"));
        }
        let found = self.eval(
            "axe.run(document, {resultTypes: ['violations']}).then(r => ({rules: r.passes.length + r.violations.length + r.incomplete.length, bad: r.violations\
             .filter(v => v.impact === 'serious' || v.impact === 'critical')\
             .map(v => v.impact + ' ' + v.id + ': ' + v.help + ' at ' + v.nodes.map(n => n.target.join(' ')).join(', '))}))",
        );
        assert!(
            found["rules"].as_u64().unwrap_or(0) > 0,
            "axe-core checked nothing on {page}: {found}"
        );
        eprintln!("axe-core on {page}: {} rules applied", found["rules"]);
        found["bad"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| format!("{page}: {}", v.as_str().unwrap_or_default()))
            .collect()
    }
}
