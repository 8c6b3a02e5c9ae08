//! A relay's refusal, and what answers in its place when something else does (a
//! redirect, a proxy set up halfway, a web server at a mistyped address), said in words
//! with what to check.

use duet_core::protocol::{ErrorBody, ErrorCode, MAX_BODY_BYTES};
use duet_core::sync::TransportError;

use super::{ANSWER_TIMEOUT, MAX_ERROR_BYTES, read_capped};

/// The relay's refusal (or what answered in its place) of a request.
pub(super) fn refused(relay: &str, resp: reqwest::blocking::Response) -> TransportError {
    let status = resp.status().as_u16();
    if resp.status().is_redirection() {
        return redirected(relay, status, resp.headers().get(reqwest::header::LOCATION));
    }
    let text = match read_capped(relay, resp, MAX_ERROR_BYTES, ANSWER_TIMEOUT) {
        Ok(body) => String::from_utf8_lossy(&body).into_owned(),
        Err(e) => e.to_string(),
    };
    let body = serde_json::from_str::<ErrorBody>(&text).unwrap_or_else(|_| ErrorBody {
        error: ErrorCode::HttpError,
        message: not_a_relays_answer(relay, status, &text),
        results: Vec::new(),
    });
    TransportError::Refused { status, body }
}

/// A redirect (an http:// address whose server sends clients to https://, most often):
/// said with where it leads, since the relay's address must be the one it answers at.
fn redirected(
    relay: &str,
    status: u16,
    location: Option<&reqwest::header::HeaderValue>,
) -> TransportError {
    let to = location
        .and_then(|v| v.to_str().ok())
        .and_then(|l| url::Url::parse(relay).ok()?.join(l).ok())
        .map(|u| u.origin().ascii_serialization());
    let message = match to {
        Some(to) if to != relay.trim_end_matches('/') => format!(
            "the server at {relay} redirects to {to} (HTTP {status}); Duet does not follow \
             redirects: if that is the relay, use its address directly (`duet relay set {to}`)"
        ),
        _ => format!(
            "the server at {relay} answered with a redirect (HTTP {status}), which Duet does not \
             follow; check the relay's address (`duet status`) and the proxy in front of it"
        ),
    };
    TransportError::Refused {
        status,
        body: ErrorBody {
            error: ErrorCode::HttpError,
            message: crate::output::safe_line(&message).into_owned(),
            results: Vec::new(),
        },
    }
}

/// An error answer that is not a Duet relay's (a web server at a mistyped address, a
/// proxy in front of a relay that is down): said as such; a page of HTML is not pasted
/// into the message, a line of plain text is.
fn not_a_relays_answer(relay: &str, status: u16, text: &str) -> String {
    let text = text.trim();
    // Two proxy answers a couple's relay meets when the proxy is set up halfway.
    if status == 413 {
        return format!(
            "a proxy in front of the relay at {relay} refused a request as too large (HTTP \
             413): it must take bodies of up to {} MiB (nginx: `client_max_body_size 16m;`); \
             nothing was lost",
            MAX_BODY_BYTES.div_ceil(1 << 20)
        );
    }
    // nginx's words, Go's (Caddy's), Apache's.
    let https_words = [
        "sent to HTTPS port",
        "HTTP request to an HTTPS server",
        "plain HTTP to an SSL-enabled server port",
    ];
    if https_words.iter().any(|w| text.contains(w)) {
        let https = relay.replacen("http://", "https://", 1);
        return format!(
            "the server at {relay} speaks https on that port (its proxy said so); use {https}"
        );
    }
    // A proxy whose relay is down or late says so in its own page.
    if matches!(status, 500 | 502 | 504) {
        return format!(
            "the server at {relay} answered HTTP {status} with a page that is not a Duet \
             relay's: most often a proxy whose relay behind it is down or slow; nothing was lost"
        );
    }
    let said = if text.is_empty() || text.starts_with('<') {
        String::new()
    } else {
        let line: String = text
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(200)
            .collect();
        format!(" (it said: {line})")
    };
    format!(
        "the server at {relay} did not answer as a Duet relay{said}; check the address, and \
         that the relay runs behind any proxy in front of it"
    )
}
