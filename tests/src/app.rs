//! `duet app` under test: the process on a device's home (`--no-open --json`, its URL read
//! from its one JSON line), and plain HTTP/1.1 requests to it over `TcpStream` with any
//! Host, Origin, cookie and form the test chooses (the security tests forge them).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Child;
use std::time::{Duration, Instant};

/// The pages of the app's navigation that every device has (a goal's page is per goal).
pub const PAGES: [&str; 5] = ["/", "/checkin", "/reflections", "/history", "/devices"];

use crate::Device;

/// A running `duet app`, killed when dropped.
pub struct App {
    child: Child,
    /// The printed URL, with the secret.
    pub url: String,
    /// Its port.
    pub port: u16,
    /// The session secret.
    pub key: String,
    /// The path the browser keeps the session cookie for (`/s/SCOPE`): pages opened in
    /// a browser are under it.
    pub prefix: String,
    /// What it wrote on stderr so far (read as it comes, so the pipe never fills).
    said: std::sync::Arc<std::sync::Mutex<String>>,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Body as text.
    pub body: String,
    /// Body as bytes (a download).
    pub bytes: Vec<u8>,
}

impl Answer {
    /// The first header of this name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Writes a system opener (`xdg-open`) into `dir` that writes down what `duet app` ran it
/// with, as any local user could read it from `ps` (its arguments), the file they name
/// (a `file://` URL) and that file's mode, into `dir/opened`. Returns the `PATH` to start
/// the app with.
pub fn recording_opener(dir: &std::path::Path) -> String {
    let record = dir.join("opened");
    let opener = dir.join("xdg-open");
    let script = format!(
        "#!/bin/sh\nf=$(printf '%s' \"$1\" | sed 's|^file://||')\n\
         {{ echo \"ARGS $*\"; cat \"$f\"; echo \"MODE $(stat -c %a \"$f\")\"; }} > {0}.tmp\n\
         mv {0}.tmp {0}\n",
        record.display()
    );
    std::fs::write(&opener, script).expect("write the opener");
    let mut perms = std::fs::metadata(&opener).expect("opener").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&opener, perms).expect("make it executable");
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// What the [`recording_opener`] in `dir` wrote, once it has run: `ARGS ...`, the file's
/// content, `MODE ...`.
pub fn opened(dir: &std::path::Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(seen) = std::fs::read_to_string(dir.join("opened")) {
            return seen;
        }
        assert!(Instant::now() < deadline, "the opener was never run");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl App {
    /// Starts `duet app --no-open --json` on `d` and waits for its URL.
    pub fn start(d: &Device) -> App {
        App::start_env(d, &[])
    }

    /// [`App::start`] with extra environment variables (e.g. `DUET_NOW`).
    pub fn start_env(d: &Device, env: &[(&str, &str)]) -> App {
        App::start_args(d, &["app", "--no-open", "--json"], env)
    }

    /// `duet app --json` on `d`, opening the browser with a [`recording_opener`] put in
    /// `dir`. The page it opens is written in `dir` too (`TMPDIR`), so a test that ends
    /// by killing the app leaves no page with its key in the system's temporary folder.
    pub fn start_opening(d: &Device, dir: &std::path::Path) -> App {
        let path = recording_opener(dir);
        let tmp = dir.to_string_lossy();
        App::start_args(d, &["app", "--json"], &[("PATH", &path), ("TMPDIR", &tmp)])
    }

    /// `duet ARGS` on `d` (an app command printing its URL as JSON), with `env`.
    pub fn start_args(d: &Device, args: &[&str], env: &[(&str, &str)]) -> App {
        let mut child = d
            .command(args)
            .envs(env.iter().copied())
            .spawn()
            .expect("duet app starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        if let Some(stderr) = child.stderr.take() {
            let said = said.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { return };
                    if let Ok(mut s) = said.lock() {
                        s.push_str(&line);
                        s.push('\n');
                    }
                }
            });
        }
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("duet app prints its URL");
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let url = v["url"].as_str().expect("url").to_string();
        let rest = url
            .strip_prefix("http://127.0.0.1:")
            .expect("a 127.0.0.1 URL");
        let (port_and_prefix, key) = rest.split_once("/?key=").expect("a key in the URL");
        let (port, prefix) = port_and_prefix
            .split_once('/')
            .expect("a path of its own in the URL");
        App {
            port: port.parse().expect("a port"),
            key: key.to_string(),
            prefix: format!("/{prefix}"),
            url: url.clone(),
            child,
            said,
        }
    }

    /// What the app wrote on stderr so far.
    pub fn said(&self) -> String {
        self.said.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The process id of `duet app` (its memory is read from /proc by the benchmark).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// This server's origin.
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Where a browser opens the app's pages: the origin and the path the session cookie
    /// is kept for (`http://127.0.0.1:PORT/s/SCOPE`).
    pub fn base(&self) -> String {
        format!("{}{}", self.origin(), self.prefix)
    }

    /// The session cookie header value.
    pub fn cookie(&self) -> String {
        format!("duet-session-{}={}", self.port, self.key)
    }

    /// A GET with the session cookie.
    pub fn get(&self, path: &str) -> Answer {
        let cookie = self.cookie();
        self.request("GET", path, &[("Cookie", &cookie)], "")
    }

    /// The path of the first goal page Today links to.
    pub fn first_goal_link(&self) -> String {
        let today = self.get("/").body;
        today
            .split("href=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .find(|h| h.starts_with("/goals/"))
            .expect("Today links a goal")
            .to_string()
    }

    /// The CSRF token from a page's form (Today's; the Partner and devices page's on a
    /// device that left, whose Today has none; or the setup page's on a home without a
    /// device).
    pub fn csrf(&self) -> String {
        let field = "name=\"csrf\" value=\"";
        let page = ["/", "/devices"]
            .into_iter()
            .map(|path| self.get(path).body)
            .find(|p| p.contains(field))
            .unwrap_or_else(|| self.get("/setup").body);
        let at = page.find(field).expect("a CSRF field on Today or Setup") + field.len();
        page[at..at + 64].to_string()
    }

    /// A form POST as the app's own page sends it: cookie, Origin and CSRF token.
    pub fn post(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        self.post_with(path, form, &[])
    }

    /// A form POST sent from the page at `from` (its Referer, as a browser sends it).
    pub fn post_from(&self, from: &str, path: &str, form: &[(&str, &str)]) -> Answer {
        let referer = format!("{}{from}", self.origin());
        self.post_with(path, form, &[("Referer", &referer)])
    }

    fn post_with(&self, path: &str, form: &[(&str, &str)], extra: &[(&str, &str)]) -> Answer {
        let csrf = self.csrf();
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend_from_slice(form);
        let (cookie, origin) = (self.cookie(), self.origin());
        let mut headers = vec![("Cookie", cookie.as_str()), ("Origin", origin.as_str())];
        headers.extend_from_slice(extra);
        self.request("POST", path, &headers, &encode(&fields))
    }

    /// A multipart form POST as the app's own page sends one with a file: cookie,
    /// Origin, the CSRF token first, then `fields`, then the file `(field, bytes)`.
    pub fn post_file(&self, path: &str, fields: &[(&str, &str)], file: (&str, &[u8])) -> Answer {
        let csrf = self.csrf();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        let (cookie, origin) = (self.cookie(), self.origin());
        let (content_type, body) = multipart(&all, file);
        self.request_raw(
            "POST",
            path,
            &[
                ("Cookie", &cookie),
                ("Origin", &origin),
                ("Content-Type", &content_type),
            ],
            &body,
        )
    }

    /// Any request: `Host: 127.0.0.1:PORT` unless `headers` names another Host; a POST
    /// is a urlencoded form.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Answer {
        let mut all = headers.to_vec();
        if method == "POST" {
            all.push(("Content-Type", "application/x-www-form-urlencoded"));
        }
        self.request_raw(method, path, &all, body.as_bytes())
    }

    /// Any request with exactly `headers` (and Host, Connection and, for a POST,
    /// Content-Length).
    pub fn request_raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to duet app");
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            head.push_str(&format!("Host: 127.0.0.1:{}\r\n", self.port));
        }
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        if method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).expect("write");
        s.write_all(body).expect("write body");
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        parse(&raw)
    }

    /// Polls a page until it contains `needle` (panics at the deadline).
    pub fn wait_for(&self, path: &str, needle: &str) -> Answer {
        self.wait_until(path, &format!("{needle:?}"), |body| body.contains(needle))
    }

    /// Polls `path` (with a deadline) until its body satisfies `shows`, described as
    /// `what` if it never does.
    pub fn wait_until(&self, path: &str, what: &str, shows: impl Fn(&str) -> bool) -> Answer {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let a = self.get(path);
            if shows(&a.body) {
                return a;
            }
            assert!(
                Instant::now() < deadline,
                "{path} never showed {what}:\n{}",
                a.body
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A form body, `application/x-www-form-urlencoded`.
pub fn encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// A `multipart/form-data` body of text `fields` and one file: its content type (with
/// the boundary) and its bytes.
pub fn multipart(fields: &[(&str, &str)], (name, file): (&str, &[u8])) -> (String, Vec<u8>) {
    let boundary = "duet-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"backup.duetbackup\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Parses a whole HTTP/1.1 answer (chunked bodies are joined).
fn parse(raw: &[u8]) -> Answer {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = raw.get(split + 4..).unwrap_or(&[]);
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let bytes = if chunked {
        dechunk(body)
    } else {
        body.to_vec()
    };
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        bytes,
    }
}

fn dechunk(mut s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = s.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&s[..eol]);
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        let rest = &s[eol + 2..];
        if n == 0 || rest.len() < n {
            break;
        }
        out.extend_from_slice(&rest[..n]);
        s = rest[n..].strip_prefix(b"\r\n").unwrap_or(&rest[n..]);
    }
    out
}
