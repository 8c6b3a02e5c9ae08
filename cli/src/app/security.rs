//! What keeps other web pages and other local users out of `duet app`: a local server is
//! reachable by every page the user's browser opens (DNS rebinding, cross-site forms) and
//! by every process on the machine. Every request passes [`guard`]:
//!
//! - the Host header must be this server's own, `127.0.0.1:PORT`, so a rebound DNS name
//!   of a foreign site is refused (421); not `localhost:PORT`, which a browser may reach
//!   at `[::1]:PORT`, where another local user could listen and serve a page of that
//!   origin (the app holds `[::1]:PORT` itself when it can, see `super::serve`);
//! - the session secret must come with it: once in the printed URL
//!   (`/s/SCOPE/?key=SECRET`, which sets an HttpOnly SameSite=Strict cookie for the
//!   path `/s/SCOPE` and redirects to `/s/SCOPE/`), then in the cookie; without it, 403
//!   and a page saying to open the URL `duet app` printed. The cookie's path keeps the
//!   browser from sending it to other servers on 127.0.0.1 (see [`super::scope`]);
//! - a state-changing request must be a POST whose Origin is this server's own origin and
//!   whose form carries the CSRF token of this server run (compared in constant time);
//! - every answer, refusals included, carries a Content-Security-Policy without inline
//!   script or any other origin, `nosniff`, no referrer to other origins and no caching;
//!   never a CORS header.
//!
//! docs/threat-model.md lists each with its test (tests/tests/app_security.rs).

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::server::App;

/// The policy of every page: scripts, styles and images from this server only (no inline
/// script), forms only to itself, never framed, no other origin at all.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// The printable report's policy: the report as `duet report --html` writes it carries
/// its style sheet inline (it is one self-contained file), so inline styles are allowed
/// there; still no script of any kind and no other origin.
pub const REPORT_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
     form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The name of the form field holding the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// The name of the form field that makes each rendered form count once.
pub const ONCE_FIELD: &str = "once";

/// The largest form body accepted: a text of the longest allowed (100,000 characters)
/// in any script, percent-encoded, with room for the other fields.
const MAX_FORM: usize = 2 * 1024 * 1024;

/// The largest upload accepted (a multipart form: a backup file brought back on the setup
/// page). A larger backup is restored with `duet restore`, which reads up to 1 GiB.
pub const MAX_UPLOAD: usize = 256 * 1024 * 1024;

/// This server run's secrets and where it listens.
#[derive(Clone)]
pub struct Session {
    /// The secret of the printed URL and the cookie.
    pub secret: String,
    /// The path under which the browser keeps the cookie (see [`super::scope`]).
    pub scope: String,
    /// The CSRF token of every form.
    pub csrf: String,
    /// The port the server listens on.
    pub port: u16,
    /// The forms sent (by their `once` value), so that a double click or a resend
    /// writes once.
    sent: std::sync::Arc<std::sync::Mutex<super::once::Sent>>,
}

impl Session {
    /// Fresh random secrets for a server on `port`.
    pub fn new(port: u16) -> anyhow::Result<Session> {
        Ok(Session {
            secret: random_hex()?,
            scope: random_hex()?[..32].to_string(),
            csrf: random_hex()?,
            port,
            sent: Default::default(),
        })
    }

    /// The cookie's name: cookies do not tell ports apart, so two apps (two homes) on
    /// one machine each have their own.
    fn cookie_name(&self) -> String {
        format!("duet-session-{}", self.port)
    }

    /// The URL to open, with the secret.
    pub fn url(&self) -> String {
        format!(
            "http://127.0.0.1:{}{}/?key={}",
            self.port,
            self.prefix(),
            self.secret
        )
    }

    /// The path every page is under in the browser: `/s/SCOPE`.
    pub fn prefix(&self) -> String {
        format!("/s/{}", self.scope)
    }

    /// Whether a Host header names this server.
    fn host_ok(&self, host: &str) -> bool {
        host == self.origin_host()
    }

    /// `127.0.0.1:PORT`: the one address this server answers at.
    fn origin_host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// 32 random bytes as hex.
fn random_hex() -> anyhow::Result<String> {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf)
        .map_err(|e| anyhow::anyhow!("the system's random number generator failed: {e}"))?;
    Ok(hex::encode(buf))
}

/// Compares two secrets in time that depends only on their lengths.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Sets the security headers on every answer, whatever produced it.
pub async fn headers(req: Request, next: Next) -> Response {
    let report = req.uri().path() == "/report/print";
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let csp = if report { REPORT_CSP } else { CSP };
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Not `no-referrer`: under it browsers send `Origin: null` with every form POST
    // (Fetch standard), and the Origin check would refuse the app's own forms. Under
    // `same-origin` no address ever leaves for another origin, and the Origin is real.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

/// Lets a request through only from this server's own pages (see the module comment).
pub async fn guard(State(app): State<App>, req: Request, next: Next) -> Response {
    let s = &app.session;
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !s.host_ok(host) {
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "This address is not Duet's",
            "Duet answers only at 127.0.0.1 with its own port (not at localhost, which another program on this computer could answer). Open the URL `duet app` printed.",
        );
    }
    if let Some(key) = query_value(req.uri().query(), "key")
        && req.method() == Method::GET
        && same_secret(&key, &s.secret)
    {
        return enter(s, req.uri().path(), req.headers());
    }
    if !has_cookie(req.headers(), &s.cookie_name(), &s.secret) {
        // A form from this server's address but another run of it (Duet was started
        // again on the same port since the page was shown): nothing it typed is lost.
        if req.method() == Method::POST && from_own_origin(s, req.headers()) {
            return stale_form(req, STARTED_AGAIN).await;
        }
        return refuse(
            StatusCode::FORBIDDEN,
            "Open Duet from its link",
            "This page needs the link `duet app` printed when it started (it holds a key made for that run). \
             Open that URL in this browser, or start `duet app` again for a new one.",
        );
    }
    match *req.method() {
        Method::GET | Method::HEAD => next.run(req).await,
        Method::POST => match checked_post(s, req).await {
            Ok((req, form)) => {
                let back = back_to(req.headers(), s.port);
                let typed = super::kept::typed(&form.body);
                let Some(once) = form.once else {
                    return super::kept::keep(next.run(req).await, &typed, &back);
                };
                // The same copy of a page sent again with other words in it (Back, an
                // edit, Send) is a new form: only the same words count once.
                let once = super::once::with_content(&once, &form.body);
                use super::once::Seen;
                let to = match super::once::after_first(&s.sent, &once).await {
                    Seen::New => None,
                    Seen::Done(to) => Some(to),
                    // Still not done after a minute: back to the page it came from.
                    Seen::Pending => Some(back.clone()),
                };
                if let Some(to) = to {
                    return (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
                }
                let resp = next.run(req).await;
                // Pages answer a change with a redirect; a refused form may be sent again.
                let led_to = resp
                    .status()
                    .is_redirection()
                    .then(|| resp.headers().get(header::LOCATION))
                    .flatten()
                    .and_then(|l| l.to_str().ok())
                    .map(str::to_string);
                super::once::finish(&s.sent, &once, led_to);
                super::kept::keep(resp, &typed, &back)
            }
            Err(resp) => resp,
        },
        _ => refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "Not something Duet does",
            "Duet's pages only read (GET) and send forms (POST).",
        ),
    }
}

/// The first visit with the secret (`/?key=SECRET`, or any page's path with it): the
/// cookie, and on to the same path without the key, so that it leaves the address bar
/// and the browser's history. A path starting with `//` would leave this server (a
/// scheme-relative URL): it goes to `/` instead. A visit another site sent the browser
/// on (`Sec-Fetch-Site: cross-site`: the page `duet app` opens the browser with is a
/// local file) goes on from a page of this server's own: a redirect would stay in that
/// site's navigation, and the browser would not send the SameSite=Strict cookie with it.
fn enter(s: &Session, path: &str, headers: &HeaderMap) -> Response {
    // Under the scope, where the browser sends the cookie (a page's plain path, or the
    // scope's, is routed here with the scope taken off).
    // A path of another run's scope (`/s/OTHER/`, an old link) leads to Today.
    let to = if path.starts_with("//") || path.starts_with("/s/") {
        "/"
    } else {
        path
    };
    let to = &format!("{}{to}", s.prefix());
    let cookie = format!(
        "{}={}; HttpOnly; SameSite=Strict; Path={}",
        s.cookie_name(),
        s.secret,
        s.prefix()
    );
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site");
    let mut resp = if cross_site {
        let page = html! {
            (maud::DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta http-equiv="refresh" content=(format!("0;url={to}"));
                    title { "Duet" }
                }
                body { main { p { a href=(to) { "Open Duet" } } } }
            }
        };
        axum::response::Html(page.into_string()).into_response()
    } else {
        (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// The page a form was sent from (its Referer, when it is this server's), else Today.
fn back_to(headers: &HeaderMap, port: u16) -> String {
    let referer = headers
        .get(header::REFERER)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    referer
        .strip_prefix(&format!("http://127.0.0.1:{port}"))
        .filter(|path| path.starts_with('/') && !path.starts_with("//"))
        .unwrap_or("/")
        .to_string()
}

/// What a form from another run of Duet is told (its page was shown before a restart).
const STARTED_AGAIN: &str = "Duet was started again since this page was shown, and takes \
     only forms of pages shown since. Nothing was saved. Open Duet again from the window it \
     opened when it started (or the link `duet app` printed), and send your words from \
     there.";

/// Whether a request comes from a page of this server's address (its Origin).
fn from_own_origin(s: &Session, headers: &HeaderMap) -> bool {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    origin == format!("http://{}", s.origin_host())
}

/// A form of this server's address refused as from another run: said with the words
/// typed into it, to copy (an upload or a form too large is refused without them).
async fn stale_form(req: Request, text: &str) -> Response {
    let bytes = axum::body::to_bytes(req.into_body(), MAX_FORM)
        .await
        .unwrap_or_default();
    let typed = super::kept::typed(&bytes);
    let page = super::pages::layout::stale_kept(text, &typed);
    (
        StatusCode::FORBIDDEN,
        axum::response::Html(page.into_string()),
    )
        .into_response()
}

/// A form sent, as the guard read it.
struct SentForm {
    /// The body (the page reads it again from the request).
    body: Bytes,
    /// Its `once` value, if any.
    once: Option<String>,
}

/// A POST passes with this server's Origin and the CSRF token in its form; the body is
/// read here (bounded) and handed on unchanged, with the form's `once` value if any.
async fn checked_post(s: &Session, req: Request) -> Result<(Request, SentForm), Response> {
    let csrf_refused = || {
        refuse(
            StatusCode::FORBIDDEN,
            "This form did not come from Duet",
            "Duet accepts changes only from its own pages. Go back, reload the page and send it again.",
        )
    };
    if !from_own_origin(s, req.headers()) {
        return Err(csrf_refused());
    }
    let (parts, body) = req.into_parts();
    let upload = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|t| t.starts_with("multipart/form-data"));
    let too_large = || {
        let text = if upload {
            "The file is larger than Duet takes in a page (256 MiB). Bring the device back \
             with `duet restore FILE` on the command line instead."
        } else {
            "The form holds more than 2 MiB. Go back, shorten the text (at most 100,000 \
             characters) and send it again."
        };
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "This is more than Duet takes at once",
            text,
        )
    };
    let limit = if upload { MAX_UPLOAD } else { MAX_FORM };
    let bytes: Bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())?;
    if upload {
        // An upload has nothing typed to show back; its `once` makes a double click
        // lead to the first one's outcome, as for every form.
        let (token, once) = multipart_guard_fields(&parts, &bytes).await;
        if !same_secret(&token.unwrap_or_default(), &s.csrf) {
            return Err(csrf_refused());
        }
        let once = once.filter(|v| !v.is_empty());
        let req = Request::from_parts(parts, Body::from(bytes));
        return Ok((
            req,
            SentForm {
                body: Bytes::new(),
                once,
            },
        ));
    }
    let field = |name: &str| {
        url::form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if !same_secret(&field(CSRF_FIELD).unwrap_or_default(), &s.csrf) {
        // Of this server's address, with its cookie: a page of an earlier run of it
        // (the cookie was set again since), or one whose token was edited.
        let typed = super::kept::typed(&bytes);
        let page = super::pages::layout::stale_kept(STARTED_AGAIN, &typed);
        return Err((
            StatusCode::FORBIDDEN,
            axum::response::Html(page.into_string()),
        )
            .into_response());
    }
    let once = field(ONCE_FIELD).filter(|v| !v.is_empty());
    let bytes = with_lf(bytes);
    let req = Request::from_parts(parts, Body::from(bytes.clone()));
    Ok((req, SentForm { body: bytes, once }))
}

/// The form with every line break as LF: a browser sends a textarea's as CRLF (HTML's
/// form encoding), the command line writes LF, and the document keeps what it is given,
/// so a reflection written here showed a stray `\r` on the partner's terminal and a text
/// sent back unchanged (`was-why`) no longer matched what the page had shown.
fn with_lf(bytes: Bytes) -> Bytes {
    let has_cr = bytes.windows(3).any(|w| w.eq_ignore_ascii_case(b"%0d"));
    if !has_cr {
        return bytes;
    }
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(&bytes) {
        out.append_pair(&k, &v.replace("\r\n", "\n").replace('\r', "\n"));
    }
    Bytes::from(out.finish())
}

/// A multipart form's CSRF token and `once` value, in one pass over a copy of the
/// request (the page reads the form again); the form puts them first, so the file after
/// them is not read here.
async fn multipart_guard_fields(
    parts: &axum::http::request::Parts,
    body: &Bytes,
) -> (Option<String>, Option<String>) {
    use axum::extract::FromRequest;
    let copy = Request::from_parts(parts.clone(), Body::from(body.clone()));
    let (mut token, mut once) = (None, None);
    let Ok(mut form) = axum::extract::Multipart::from_request(copy, &()).await else {
        return (token, once);
    };
    while token.is_none() || once.is_none() {
        let Ok(Some(field)) = form.next_field().await else {
            break;
        };
        let slot = match field.name() {
            Some(CSRF_FIELD) => &mut token,
            Some(ONCE_FIELD) => &mut once,
            _ => continue,
        };
        *slot = field.text().await.ok();
    }
    (token, once)
}

/// A query parameter's value.
fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Whether the request carries the session cookie with the secret.
fn has_cookie(headers: &HeaderMap, name: &str, secret: &str) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .any(|(k, v)| k == name && same_secret(v, secret))
}

/// A calm refusal page (it loads nothing: the style sheet would need the secret too).
fn refuse(status: StatusCode, title: &str, text: &str) -> Response {
    let page = html! {
        (maud::DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { (title) " · Duet" } }
            body { main { h1 { (title) } p { (text) } } }
        }
    };
    (status, axum::response::Html(page.into_string())).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", "a"));
    }

    #[test]
    fn the_policy_allows_no_inline_script_and_no_other_origin() {
        for csp in [CSP, REPORT_CSP] {
            assert!(!csp.contains("unsafe-eval"));
            assert!(!csp.contains("http"));
            assert!(!csp.contains('*'));
        }
        assert!(!CSP.contains("unsafe-inline"));
        assert!(!REPORT_CSP.contains("script-src"));
    }
}
