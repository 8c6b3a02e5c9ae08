//! Where the browser keeps the app's cookie: under a path of this run's own,
//! `/s/SCOPE/…`, with SCOPE random.
//!
//! Browsers do not tell ports apart when they send cookies: a cookie set by
//! `127.0.0.1:PORT` with `Path=/` goes to every server on 127.0.0.1 the browser visits,
//! and its value is the session secret. Another local user's server (or any program
//! listening on loopback) the person opens would receive it, and with it read and change
//! everything in the app. The cookie is therefore set with `Path=/s/SCOPE`, and the
//! browser sends it only to addresses under that path, which no other server is asked
//! for: SCOPE is in the printed URL only.
//!
//! Pages and routes keep their plain paths (`/goals/ID`): a request under the scope is
//! routed with the scope taken off, and its answer has the scope put in front of each
//! path it links to (`href`, `action`, `src`, the print button's page, redirects), so
//! that the browser stays under it. A client that sends the cookie itself (a script,
//! the tests) may also use the plain paths; its answers are left as they are.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use tower::ServiceExt;

/// The largest page whose links are rewritten: far more than the longest history page;
/// a larger one is answered as a failure rather than with links that lose the cookie.
const MAX_PAGE: usize = 64 * 1024 * 1024;

/// The attributes whose value is a path of the app's.
const LINKING: [&str; 5] = ["href", "action", "src", "formaction", "data-print"];

/// `inner` served at its plain paths and under `prefix` (`/s/SCOPE`), where answers keep
/// the browser under the prefix.
pub fn router(prefix: &str, inner: Router) -> Router {
    let scoped = inner.clone().layer(axum::middleware::from_fn_with_state(
        prefix.to_string(),
        rewrite,
    ));
    let prefix = prefix.to_string();
    Router::new().fallback_service(tower::service_fn(move |mut req: Request| {
        let under = unscoped(&mut req, &prefix);
        let router = if under { scoped.clone() } else { inner.clone() };
        router.oneshot(req)
    }))
}

/// Takes the prefix off the path of a request under it (`/s/SCOPE` and `/s/SCOPE/` are
/// `/`); whether it was under it.
fn unscoped(req: &mut Request, prefix: &str) -> bool {
    let path = req.uri().path();
    if !under(path, prefix) {
        return false;
    }
    let rest = match &path[prefix.len()..] {
        "" => "/",
        rest => rest,
    };
    let plain = match req.uri().query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_string(),
    };
    let mut parts = req.uri().clone().into_parts();
    match plain.parse() {
        Ok(pq) => parts.path_and_query = Some(pq),
        Err(_) => return false,
    }
    match axum::http::Uri::from_parts(parts) {
        Ok(uri) => {
            *req.uri_mut() = uri;
            true
        }
        Err(_) => false,
    }
}

/// Puts the prefix in front of the paths an answer leads to: its redirect, and the links
/// and forms of an HTML page.
async fn rewrite(State(prefix): State<String>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let (mut parts, body) = resp.into_parts();
    if let Some(to) = parts
        .headers
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| scoped(l, &prefix))
        .and_then(|l| HeaderValue::from_str(&l).ok())
    {
        parts.headers.insert(header::LOCATION, to);
    }
    let html = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|t| t.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    if !html {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_PAGE).await else {
        parts.status = axum::http::StatusCode::INTERNAL_SERVER_ERROR;
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::from("The page was too large to show."));
    };
    let page = String::from_utf8_lossy(&bytes);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(links_scoped(&page, &prefix)))
}

/// `path` under `prefix`, when it is a plain path of this server's (not `//host`, not
/// already under the prefix).
fn scoped(path: &str, prefix: &str) -> Option<String> {
    let plain = path.starts_with('/') && !path.starts_with("//") && !under(path, prefix);
    plain.then(|| format!("{prefix}{path}"))
}

/// Whether `path` is already under `prefix`.
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
}

/// `page` with the prefix put in front of every plain path a linking attribute holds
/// (`href="/…"`). maud writes every attribute value in double quotes and escapes the
/// quotes of what it shows, so text a partner wrote never reads as an attribute here.
fn links_scoped(page: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(page.len() + 1024);
    let mut rest = page;
    while let Some(at) = rest.find("=\"/") {
        let (before, after) = rest.split_at(at + 2);
        out.push_str(before);
        let name_start = before[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .map_or(0, |i| i + 1);
        let name = &before[name_start..at];
        let value_end = after.find('"').unwrap_or(after.len());
        let value = &after[..value_end];
        match scoped(value, prefix) {
            Some(v) if LINKING.contains(&name) => out.push_str(&v),
            _ => out.push_str(value),
        }
        rest = &after[value_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "/s/abc";

    #[test]
    fn plain_paths_of_links_forms_and_scripts_go_under_the_scope() {
        let page = r#"<a href="/goals/g1">x</a><form method="post" action="/undo"><script src="/static/app.js"></script><button data-print="/report/print">"#;
        assert_eq!(
            links_scoped(page, P),
            r#"<a href="/s/abc/goals/g1">x</a><form method="post" action="/s/abc/undo"><script src="/s/abc/static/app.js"></script><button data-print="/s/abc/report/print">"#
        );
    }

    #[test]
    fn other_values_and_paths_already_scoped_or_leaving_the_server_stay() {
        let page = r#"<a href="/s/abc/devices">a</a><a href="//evil.example/">b</a><input value="/goals"><a title="/x" href="https://duet.example/">c</a>&quot;href=&quot;/x"#;
        assert_eq!(links_scoped(page, P), page);
        assert_eq!(scoped("/s/abc?x=1", P), None);
        assert_eq!(scoped("/s/abcd", P).as_deref(), Some("/s/abc/s/abcd"));
        assert_eq!(scoped("/", P).as_deref(), Some("/s/abc/"));
    }
}
