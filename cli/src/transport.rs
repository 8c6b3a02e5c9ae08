//! The HTTP transport of sync: `duet_core::sync::Transport` over blocking reqwest.
//!
//! Nothing the relay sends is read past what an honest relay could send
//! ([`MAX_ANSWER_BYTES`]): a misbehaving relay cannot make the client buffer an
//! unbounded body.

use std::time::Duration;

use duet_core::event::SpaceId;
use duet_core::identity::Identity;
use duet_core::pairing_code::PairingRelay;
use duet_core::protocol::{
    H_AFTER_HASH, H_CREATE_TOKEN, H_CURSOR, H_FORKS, H_MORE, HEALTHZ_PATH, MAX_BODY_BYTES,
    PushResponse, ReadAuth, decode_page, events_path,
};
use duet_core::protocol::{
    PairingClaim, PairingClaimed, PairingOffer, PairingOpen, PairingOpened, PairingSeal,
    PairingSealed, pairing_claim_path, pairing_claim_wait_path, pairing_path_of, pairing_seal_path,
    pairing_sealed_path, pairings_path,
};
use duet_core::sync::{AtAfter, Page, Transport, TransportError};

mod answer;
mod refusals;
use answer::read_capped;
use refusals::refused;

/// The largest answer read from a relay: a page holds at most [`MAX_BODY_BYTES`] of
/// framed events (a push answer, one short line per event of a body of that size, is
/// smaller); the slack is for what a future relay might add.
pub const MAX_ANSWER_BYTES: usize = MAX_BODY_BYTES + 64 * 1024;
/// The largest error answer read: a JSON error names the first problem and a count.
const MAX_ERROR_BYTES: usize = 64 * 1024;

/// How long to wait for a connection, and at most for a push's answer (after its upload);
/// also the grace before an answer's pace is checked ([`answer::MIN_ANSWER_RATE`]).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a request other than a push waits for the answer's head, and then for each
/// next bytes of it: a network that takes the connection and never answers (a relay
/// whose process hangs, a middlebox) is given up after this, not after the whole
/// answer's limit. Above the relay's longest hold of a request (a pairing long-poll,
/// [`duet_core::protocol::PAIRING_MAX_WAIT_SECS`]).
const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Talks to a relay over HTTP(S).
pub struct Http {
    /// Reads and pairing calls: given up after [`STALL_TIMEOUT`] of silence.
    client: reqwest::blocking::Client,
    /// Pushes, made on first use: their head comes only after the whole upload, which on
    /// a slow link may take longer than [`STALL_TIMEOUT`]; each push is given its own
    /// limit instead ([`Http::upload_limit`]), for the whole request (its answer is a
    /// line per event).
    uploads: std::sync::OnceLock<reqwest::blocking::Client>,
    connect_timeout: Duration,
    timeout: Duration,
    stall: Duration,
    progress: Option<crate::progress::Progress>,
}

impl Http {
    /// A client with sane timeouts.
    pub fn new() -> anyhow::Result<Http> {
        Http::with_timeouts(CONNECT_TIMEOUT, ANSWER_TIMEOUT, STALL_TIMEOUT)
    }

    /// A client with these timeouts (`stall`: see [`STALL_TIMEOUT`]).
    fn with_timeouts(
        connect_timeout: Duration,
        timeout: Duration,
        stall: Duration,
    ) -> anyhow::Result<Http> {
        // reqwest is built without a bundled crypto provider (aws-lc needs cmake); use ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Http::builder(connect_timeout, stall).build()?;
        Ok(Http {
            client,
            uploads: std::sync::OnceLock::new(),
            connect_timeout,
            timeout,
            stall,
            progress: None,
        })
    }

    /// A client builder with these timeouts. The blocking client's `timeout` bounds the
    /// wait for the answer's head and then each read of its body, not the whole answer
    /// (a per-request timeout would: reqwest passes that one to its async request).
    fn builder(connect_timeout: Duration, timeout: Duration) -> reqwest::blocking::ClientBuilder {
        // Redirects are not followed: a 301 or 302 turns a push into a GET (and a signed
        // read's path would no longer be the one signed); one is said with where it leads.
        reqwest::blocking::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
    }

    /// The client for pushes (no stall timeout), made on first use.
    fn uploads(&self, relay: &str) -> Result<&reqwest::blocking::Client, TransportError> {
        if let Some(client) = self.uploads.get() {
            return Ok(client);
        }
        let client = Http::builder(self.connect_timeout, self.timeout)
            .build()
            .map_err(|e| TransportError::Unreachable {
                relay: relay.to_string(),
                detail: e.to_string(),
            })?;
        Ok(self.uploads.get_or_init(|| client))
    }

    /// How long a push of `len` bytes may take: the stall limit, and the upload's time at
    /// [`MIN_UPLOAD_RATE`] besides, within the whole answer's limit. A few kilobytes (a
    /// rating) wait no longer for a silent relay than a read does.
    fn upload_limit(&self, len: usize) -> Duration {
        let sending = Duration::from_secs(len as u64 / MIN_UPLOAD_RATE);
        (self.stall + sending).min(self.timeout)
    }

    /// The same client, showing what it receives and sends on `progress`.
    pub fn with_progress(mut self, progress: Option<crate::progress::Progress>) -> Http {
        self.progress = progress;
        self
    }

    /// Says which network failure `e` was, from the error and its causes: the host did
    /// not resolve, nothing listens at the port, TLS against a plain-HTTP relay or the
    /// reverse, a timeout; anything else as the network layer put it.
    /// `started`: when the request was sent (a timeout says how long it really waited:
    /// a connection that stops moving may be given up before the whole answer's limit).
    fn unreachable(
        &self,
        relay: &str,
        e: reqwest::Error,
        started: std::time::Instant,
    ) -> TransportError {
        let url = url::Url::parse(relay).ok();
        let host = url
            .as_ref()
            .and_then(|u| u.host_str())
            .unwrap_or(relay)
            .to_string();
        let https = url.as_ref().is_some_and(|u| u.scheme() == "https");
        let relay = relay.to_string();
        if e.is_timeout() {
            // A push's limit is its own (`upload_limit`): what was waited is what is said.
            let waited = match e.is_connect() {
                true => started.elapsed().min(self.connect_timeout),
                false => started.elapsed(),
            };
            return TransportError::TimedOut {
                relay,
                secs: (waited.as_secs_f64().round() as u64).max(1),
            };
        }
        if e.is_body() || e.is_decode() {
            return TransportError::CutOff { relay };
        }
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(c) = cause {
            let io = c.downcast_ref::<std::io::Error>();
            if io.is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused) {
                let port = url.as_ref().and_then(|u| u.port_or_known_default());
                return TransportError::ConnectionRefused {
                    host,
                    port: port.unwrap_or_default(),
                };
            }
            // A plain-HTTP answer ("HTTP/1.1 400") read as a TLS record.
            let tls = c.downcast_ref::<rustls::Error>();
            if https && matches!(tls, Some(rustls::Error::InvalidMessage(_))) {
                return TransportError::PlainHttp { relay };
            }
            let text = c.to_string();
            // Reached, then closed before a whole head came back (hyper's words, stable;
            // its error type is not one of ours).
            // Or reset (a relay killed, restarted or behind a proxy that gave up mid-way).
            let cut = |k: std::io::ErrorKind| {
                use std::io::ErrorKind::*;
                matches!(
                    k,
                    UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe
                )
            };
            if text.contains("connection closed before message completed")
                || io.is_some_and(|io| cut(io.kind()))
            {
                return TransportError::CutOff { relay };
            }
            // hyper-util's resolver errors are not public types; their words are stable.
            if text.contains("dns error") || text.contains("failed to lookup address") {
                return unresolved(host, &text);
            }
            // A TLS server's first bytes (a record header, an alert) are no HTTP status line.
            if !https && text.contains("invalid HTTP version") {
                return TransportError::ExpectsTls { relay };
            }
            // An io::Error's source() skips the error it wraps: look inside it instead.
            cause = match io.and_then(|io| io.get_ref()) {
                Some(inner) => Some(inner),
                None => c.source(),
            };
        }
        TransportError::Unreachable {
            relay,
            detail: with_causes(e.without_url()),
        }
    }

    /// Sends a request, waiting and retrying (a few times) when the relay says it is busy
    /// (429 or 503 with a short `Retry-After`); any other answer is returned as it is.
    fn send_with_backoff(
        &self,
        relay: &str,
        build: impl Fn() -> reqwest::blocking::RequestBuilder,
    ) -> Result<reqwest::blocking::Response, TransportError> {
        const ATTEMPTS: usize = 4;
        const MAX_WAIT_SECS: u64 = 30;
        let mut attempt = 1;
        loop {
            let started = std::time::Instant::now();
            let resp = build()
                .send()
                .map_err(|e| self.unreachable(relay, e, started))?;
            crate::relay_clock::observe(
                resp.headers()
                    .get(reqwest::header::DATE)
                    .and_then(|v| v.to_str().ok()),
            );
            let busy = matches!(resp.status().as_u16(), 429 | 503);
            let asked = retry_after_secs(resp.headers());
            if let Some(secs) = asked.filter(|s| busy && *s > MAX_WAIT_SECS) {
                // Said, so that "run it again" is not read as "at once".
                crate::output::note(&format!(
                    "note: the relay asks this device to wait {} before its next request",
                    duet_core::words::span(i64::try_from(secs).unwrap_or(i64::MAX))
                ));
            }
            let wait = asked.filter(|s| *s <= MAX_WAIT_SECS);
            match wait {
                Some(secs) if busy && attempt < ATTEMPTS => {
                    // At least a second, whatever the relay says: the same as said.
                    let secs = secs.max(1);
                    crate::output::note(&format!("note: the relay is busy; retrying in {secs} s"));
                    std::thread::sleep(Duration::from_secs(secs));
                    attempt += 1;
                }
                _ => return Ok(resp),
            }
        }
    }
}

/// The seconds an answer's `Retry-After` asks to wait (the relay sends whole seconds).
/// Shared with the live sockets' handshake answers.
pub fn retry_after_secs(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

impl Http {
    /// Sends a signed read (`build` signs it with the time given), signing it again once
    /// with the relay's time when the relay refused it as signed too far from its clock
    /// ([`crate::relay_clock`]).
    fn send_signed(
        &self,
        relay: &str,
        build: impl Fn(i64) -> reqwest::blocking::RequestBuilder,
    ) -> Result<reqwest::blocking::Response, TransportError> {
        let signed_at = std::cell::Cell::new(0);
        let resp = self.send_with_backoff(relay, || {
            signed_at.set(crate::relay_clock::signing_time());
            build(signed_at.get())
        })?;
        let date = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok());
        if crate::relay_clock::learn(resp.status().as_u16(), date, signed_at.get()) {
            return self.send_with_backoff(relay, || build(crate::relay_clock::signing_time()));
        }
        Ok(resp)
    }
}

impl Http {
    /// Whether a duet relay answers at `relay` now (its health check), waiting a few
    /// seconds at most: `duet relay set` says so at once when nothing does (a typo, a
    /// relay that is down), rather than at the next sync.
    pub fn probe(relay: &str) -> Result<(), TransportError> {
        const WAIT: Duration = Duration::from_secs(5);
        let http =
            Http::with_timeouts(WAIT, WAIT, WAIT).map_err(|e| TransportError::Unreachable {
                relay: relay.to_string(),
                detail: e.to_string(),
            })?;
        let url = format!("{}{HEALTHZ_PATH}", relay.trim_end_matches('/'));
        let started = std::time::Instant::now();
        let resp = http
            .client
            .get(&url)
            .send()
            .map_err(|e| http.unreachable(relay, e, started))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(refused(relay, resp))
        }
    }
}

/// The slowest upload a push's limit allows for ([`Http::upload_limit`]): a push of
/// 1 MiB, the most one carries, is given the whole answer's limit.
const MIN_UPLOAD_RATE: u64 = 8 * 1024;

impl Transport for Http {
    fn relay_ahead_ms(&self) -> Option<i64> {
        crate::relay_clock::observed_ahead_ms()
    }

    fn push(
        &self,
        relay: &str,
        space: &SpaceId,
        body: Vec<u8>,
        create_token: Option<&str>,
    ) -> Result<PushResponse, TransportError> {
        let url = format!("{}{}", relay.trim_end_matches('/'), events_path(space));
        if let Some(p) = &self.progress {
            p.sending(body.len());
        }
        let uploads = self.uploads(relay)?;
        let limit = self.upload_limit(body.len());
        let resp = self.send_with_backoff(relay, || {
            let request = uploads
                .post(&url)
                .timeout(limit)
                .header("content-type", "application/octet-stream")
                .body(body.clone());
            match create_token {
                Some(token) => request.header(H_CREATE_TOKEN, token),
                None => request,
            }
        })?;
        if !resp.status().is_success() {
            return Err(refused(relay, resp));
        }
        let body = read_capped(relay, resp, MAX_ANSWER_BYTES, self.timeout)?;
        serde_json::from_slice::<PushResponse>(&body)
            .map_err(|e| TransportError::BadResponse(e.to_string()))
    }

    fn pull(
        &self,
        relay: &str,
        space: &SpaceId,
        after: u64,
        limit: u32,
        reader: &Identity,
    ) -> Result<Page, TransportError> {
        let path = events_path(space);
        let query = format!("after={after}&limit={limit}");
        let url = format!("{}{path}?{query}", relay.trim_end_matches('/'));
        // Every attempt is signed afresh: the relay refuses a reused nonce.
        let resp = self.send_signed(relay, |time| {
            let auth = ReadAuth::sign_at(reader, "GET", &path, &query, time);
            auth.headers()
                .into_iter()
                .fold(self.client.get(&url), |request, (name, value)| {
                    request.header(name, value)
                })
        })?;
        if !resp.status().is_success() {
            return Err(refused(relay, resp));
        }
        let more = resp
            .headers()
            .get(H_MORE)
            .is_some_and(|v| v.as_bytes() == b"1");
        // Absent, a count is not said (the relay does not tell); present, it must be one:
        // a garbled `duet-cursor` ignored would turn off the check that a read ended early.
        let header = |name: &str| match resp.headers().get(name) {
            None => Ok(None),
            Some(v) => v
                .to_str()
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .map(Some)
                .ok_or_else(|| {
                    TransportError::BadResponse(format!("its {name} header is not a count"))
                }),
        };
        let newest = header(H_CURSOR)?;
        let forks = header(H_FORKS)?;
        let at_after = resp
            .headers()
            .get(H_AFTER_HASH)
            .and_then(|v| v.to_str().ok())
            .map_or(AtAfter::Unsaid, AtAfter::parse);
        let body = read_capped(relay, resp, MAX_ANSWER_BYTES, self.timeout)?;
        let page = decode_page(&body).map_err(|e| TransportError::BadResponse(e.to_string()))?;
        if let Some(p) = &self.progress {
            let last = page.last().map_or(after, |(c, _)| *c);
            p.page(after, page.len(), last, newest, more);
        }
        Ok(Page {
            events: page,
            more,
            newest,
            forks,
            at_after,
        })
    }
}

/// The relay's JSON answer to a pairing call, or its refusal.
fn pairing_answer<T: serde::de::DeserializeOwned>(
    relay: &str,
    resp: reqwest::blocking::Response,
) -> Result<T, TransportError> {
    if !resp.status().is_success() {
        return Err(refused(relay, resp));
    }
    let body = read_capped(relay, resp, MAX_ERROR_BYTES, ANSWER_TIMEOUT)?;
    serde_json::from_slice(&body).map_err(|e| TransportError::BadResponse(e.to_string()))
}

impl Http {
    /// A pairing request to `path?query`, signed like a read when `signer` is given
    /// (each attempt afresh), with a JSON body when `body` is given.
    fn pairing_call(
        &self,
        relay: &str,
        method: reqwest::Method,
        (path, query): (&str, &str),
        body: Option<&[u8]>,
        signer: Option<&Identity>,
    ) -> Result<reqwest::blocking::Response, TransportError> {
        let base = relay.trim_end_matches('/');
        let url = if query.is_empty() {
            format!("{base}{path}")
        } else {
            format!("{base}{path}?{query}")
        };
        self.send_signed(relay, |time| {
            let mut request = self.client.request(method.clone(), &url);
            if let Some(signer) = signer {
                let auth = ReadAuth::sign_at(signer, method.as_str(), path, query, time);
                for (name, value) in auth.headers() {
                    request = request.header(name, value);
                }
            }
            match body {
                Some(body) => request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_vec()),
                None => request,
            }
        })
    }
}

fn to_json(v: &impl serde::Serialize) -> Result<Vec<u8>, TransportError> {
    serde_json::to_vec(v).map_err(|e| TransportError::BadResponse(e.to_string()))
}

impl PairingRelay for Http {
    fn open_pairing(
        &self,
        relay: &str,
        space: &SpaceId,
        body: &PairingOpen,
        signer: &Identity,
    ) -> Result<PairingOpened, TransportError> {
        let path = pairings_path(space);
        let body = to_json(body)?;
        let resp = self.pairing_call(
            relay,
            reqwest::Method::POST,
            (&path, ""),
            Some(&body),
            Some(signer),
        )?;
        pairing_answer(relay, resp)
    }

    fn wait_claim(
        &self,
        relay: &str,
        space: &SpaceId,
        nameplate: u32,
        wait_secs: u64,
        signer: &Identity,
    ) -> Result<Option<PairingClaim>, TransportError> {
        let path = pairing_claim_wait_path(space, nameplate);
        let query = format!("wait={wait_secs}");
        let resp = self.pairing_call(
            relay,
            reqwest::Method::GET,
            (&path, &query),
            None,
            Some(signer),
        )?;
        if resp.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        pairing_answer(relay, resp).map(Some)
    }

    fn seal_pairing(
        &self,
        relay: &str,
        space: &SpaceId,
        nameplate: u32,
        body: &PairingSeal,
        signer: &Identity,
    ) -> Result<(), TransportError> {
        let path = pairing_seal_path(space, nameplate);
        let body = to_json(body)?;
        let resp = self.pairing_call(
            relay,
            reqwest::Method::POST,
            (&path, ""),
            Some(&body),
            Some(signer),
        )?;
        if !resp.status().is_success() {
            return Err(refused(relay, resp));
        }
        Ok(())
    }

    fn pairing_offer(&self, relay: &str, nameplate: u32) -> Result<PairingOffer, TransportError> {
        let path = pairing_path_of(nameplate);
        let resp = self.pairing_call(relay, reqwest::Method::GET, (&path, ""), None, None)?;
        pairing_answer(relay, resp)
    }

    fn claim_pairing(
        &self,
        relay: &str,
        nameplate: u32,
        body: &PairingClaim,
    ) -> Result<PairingClaimed, TransportError> {
        let path = pairing_claim_path(nameplate);
        let body = to_json(body)?;
        let resp =
            self.pairing_call(relay, reqwest::Method::POST, (&path, ""), Some(&body), None)?;
        pairing_answer(relay, resp)
    }

    fn wait_sealed(
        &self,
        relay: &str,
        nameplate: u32,
        token: &str,
        wait_secs: u64,
    ) -> Result<Option<PairingSealed>, TransportError> {
        let path = pairing_sealed_path(nameplate);
        let query = format!("token={token}&wait={wait_secs}");
        let resp = self.pairing_call(relay, reqwest::Method::GET, (&path, &query), None, None)?;
        if resp.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        pairing_answer(relay, resp).map(Some)
    }
}

/// The network layer's words, each cause after the one it explains ("error sending
/// request" alone says nothing).
fn with_causes(e: reqwest::Error) -> String {
    let mut detail = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !detail.contains(&text) {
            detail = format!("{detail}: {text}");
        }
        cause = c.source();
    }
    detail
}

/// A host name that did not resolve, in the resolver's words: a temporary failure
/// (`EAI_AGAIN`, glibc's "Temporary failure in name resolution": no name server
/// answered, as on a laptop offline) passes as it is; any other (no such name) needs the
/// address checked.
fn unresolved(host: String, said: &str) -> TransportError {
    let for_now = said.to_lowercase().contains("temporary failure");
    TransportError::Unresolved { host, for_now }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// An offline device's resolver says its failure is temporary: that sync can pass
    /// later as it is (exit 3); a name no server knows cannot.
    #[test]
    fn a_name_no_server_answered_for_passes_and_an_unknown_name_does_not() {
        let offline =
            "dns error: failed to lookup address information: Temporary failure in name resolution";
        let unknown = "dns error: failed to lookup address information: Name or service not known";
        for (said, for_now) in [(offline, true), (unknown, false)] {
            let e = unresolved("relay.example.org".into(), said);
            assert!(
                matches!(e, TransportError::Unresolved { for_now: f, .. } if f == for_now),
                "{e}"
            );
            assert_eq!(crate::advice::transport_retry_helps(&e), for_now, "{e}");
        }
    }

    #[test]
    fn a_relay_that_never_answers_times_out_with_the_time_waited() {
        // Accepted by the kernel (the listener's backlog), never answered.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let relay = format!("http://{}", listener.local_addr().expect("addr"));
        let http = Http::with_timeouts(
            Duration::from_secs(5),
            Duration::from_millis(300),
            STALL_TIMEOUT,
        )
        .expect("client");
        let err = http
            .push(&relay, &SpaceId([7; 16]), Vec::new(), None)
            .expect_err("no answer");
        assert!(
            matches!(&err, TransportError::TimedOut { secs: 1, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("timed out after 1 s"), "{err}");
        drop(listener);
    }

    #[test]
    fn a_read_from_a_relay_that_never_answers_is_given_up_at_the_stall_limit() {
        // Accepted by the kernel, never answered: a hung relay, a middlebox.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let relay = format!("http://{}", listener.local_addr().expect("addr"));
        // The whole answer's limit a minute, silence given up after 300 ms: without the
        // stall limit this read would wait the whole minute and say so.
        let http = Http::with_timeouts(
            Duration::from_secs(5),
            Duration::from_secs(60),
            Duration::from_millis(300),
        )
        .expect("client");
        let me = Identity::generate("Alex");
        let err = http
            .pull(&relay, &SpaceId([7; 16]), 0, 10, &me)
            .expect_err("no answer");
        assert!(
            matches!(&err, TransportError::TimedOut { secs: 1, .. }),
            "{err:?}"
        );
        // A small push (a rating) as well; a large one is given the time to upload.
        let err = http
            .push(&relay, &SpaceId([7; 16]), vec![0; 1024], None)
            .expect_err("no answer");
        assert!(
            matches!(&err, TransportError::TimedOut { secs: 1, .. }),
            "{err:?}"
        );
        assert_eq!(http.upload_limit(1 << 20), Duration::from_secs(60));
        assert_eq!(http.upload_limit(80 * 1024), Duration::from_millis(10_300));
        drop(listener);
    }

    #[test]
    fn a_relay_that_trickles_its_answer_is_cut_off() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let relay = format!("http://{}", listener.local_addr().expect("addr"));
        // Answers at once, promises 10 MB, then sends a byte every 20 ms.
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            let mut request = [0u8; 4096];
            let _ = conn.read(&mut request);
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 10000000\r\n\r\n";
            conn.write_all(head.as_bytes()).expect("head");
            for _ in 0..500 {
                if conn.write_all(b" ").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let http = Http::with_timeouts(
            Duration::from_secs(5),
            Duration::from_millis(300),
            STALL_TIMEOUT,
        )
        .expect("client");
        // Without the pace, the read would go on until the server stops (10 s) and
        // fail as a connection closed early, not as a slow answer.
        let err = http
            .pull(
                &relay,
                &SpaceId([7; 16]),
                0,
                10,
                &Identity::generate("Alex"),
            )
            .expect_err("cut off");
        assert!(err.to_string().contains("slower than"), "{err}");
        drop(http);
        let _ = server.join();
    }

    /// A page whose `duet-cursor` is no count: a lying relay's, refused (ignored, it
    /// turned off the check that a read ended before the relay's end).
    #[test]
    fn a_page_whose_cursor_header_is_no_count_is_refused() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let relay = format!("http://{}", listener.local_addr().expect("addr"));
        let server = std::thread::spawn(move || {
            for cursor in ["banana", "12"] {
                let (mut conn, _) = listener.accept().expect("accept");
                let mut request = [0u8; 4096];
                let _ = conn.read(&mut request);
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\nduet-more: 0\r\nduet-cursor: {cursor}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
                );
                conn.write_all(head.as_bytes()).expect("head");
            }
        });
        let http = Http::new().expect("client");
        let read = || {
            http.pull(
                &relay,
                &SpaceId([7; 16]),
                0,
                10,
                &Identity::generate("Alex"),
            )
        };
        let err = read().expect_err("refused");
        assert!(matches!(err, TransportError::BadResponse(_)), "{err}");
        assert!(err.to_string().contains("duet-cursor"), "{err}");
        assert_eq!(read().expect("a count").newest, Some(12));
        let _ = server.join();
    }

    #[test]
    fn a_steady_answer_longer_than_the_timeout_still_arrives() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let relay = format!("http://{}", listener.local_addr().expect("addr"));
        // A slow link: the answer takes about 1.2 s, four times the answer timeout, at
        // some 10 KB/s (above the pace), as a 16 MiB page does on a link of 100 KB/s.
        // A page of one event at cursor 7, 12 KiB in all.
        let mut body = 7u64.to_be_bytes().to_vec();
        body.extend_from_slice(&(12 * 1024 - 12u32).to_be_bytes());
        body.resize(12 * 1024, 0);
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            let mut request = [0u8; 4096];
            let _ = conn.read(&mut request);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            conn.write_all(head.as_bytes()).expect("head");
            for chunk in body.chunks(1024) {
                conn.write_all(chunk).expect("chunk");
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let http = Http::with_timeouts(
            Duration::from_secs(5),
            Duration::from_millis(300),
            STALL_TIMEOUT,
        )
        .expect("client");
        let answer = http
            .pull(
                &relay,
                &SpaceId([7; 16]),
                0,
                10,
                &Identity::generate("Alex"),
            )
            .expect("a slow but steady answer is read to its end");
        assert_eq!(answer.events.len(), 1);
        assert_eq!(answer.events[0].0, 7);
        let _ = server.join();
    }
}
