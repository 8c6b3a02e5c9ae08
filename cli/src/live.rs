//! Listening to a relay's live socket ([`duet_core::protocol::live_path`], docs/protocol.md)
//! for one space, on a thread of its own. The thread reconnects with backoff when the
//! socket is lost and tells the watcher (`duet sync --watch`) when to sync; the relay's
//! first message after every (re)connection carries the space's cursor, so a sync follows
//! each reconnection and nothing committed meanwhile is missed.

use std::net::TcpStream;
use std::sync::mpsc::Sender;
use std::time::Duration;

use duet_core::event::SpaceId;
use duet_core::identity::Identity;
use duet_core::protocol::{ErrorBody, ErrorCode, LiveMessage, PING_EVERY, ReadAuth, live_path};
use duet_core::store::SpaceKind;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// How often a watching process (`duet sync --watch`, `duet app`) syncs on its own while
/// a live socket is down (or, for the watcher, a sync failed): a proxy that does not pass
/// WebSocket upgrades must not leave it waiting for news that never comes.
pub const POLL_WHILE_DOWN: Duration = Duration::from_secs(15);

/// How long opening a live socket may take, the connection and the WebSocket handshake
/// each: a proxy (or a captive portal) that takes the upgrade and never answers must
/// not leave the watcher waiting on it for good.
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);
/// Three missed pings mean the connection is dead.
const READ_TIMEOUT: Duration = PING_EVERY.saturating_mul(3);
/// The first wait after a lost connection; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What a listening thread tells the watcher.
#[derive(Debug)]
pub enum Signal {
    /// The socket is open (again).
    Connected(SpaceKind),
    /// The relay says the space's newest cursor moved (or the socket just opened): sync.
    Moved,
    /// The socket was lost or could not open; the thread retries after the wait.
    Lost {
        space: SpaceKind,
        error: String,
        /// The relay answered the space's socket with a refusal for now (its live
        /// sockets all taken, say): said of the space, where a lost relay is said of the
        /// relay.
        answered: bool,
        retry_in: Duration,
    },
    /// The relay refused the socket for good (not a member, no such space); the thread
    /// has stopped.
    Refused(SpaceKind, String),
}

/// Why one connection ended.
enum Ended {
    Retry(String),
    /// The relay answered this socket's request with a refusal for now, and its
    /// `Retry-After` (zero without one; a space's or an address's live sockets all
    /// taken, say): retried no sooner. Said of its space, where a lost connection is
    /// said of the relay.
    RetryAfter(String, Duration),
    Refused(String),
}

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

/// Starts the listening thread of one space. It ends when the watcher stops listening
/// (its receiver is dropped) or the relay refuses the socket for good.
pub fn spawn(relay: String, space: SpaceId, kind: SpaceKind, me: Identity, tx: Sender<Signal>) {
    let _ = std::thread::Builder::new()
        .name(format!("duet-live-{}", kind.as_str()))
        .spawn(move || listen(&relay, space, kind, &me, &tx));
}

fn listen(relay: &str, space: SpaceId, kind: SpaceKind, me: &Identity, tx: &Sender<Signal>) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let ended = match connect(relay, space, me) {
            Ok(mut ws) => {
                backoff = FIRST_BACKOFF;
                if tx.send(Signal::Connected(kind)).is_err() {
                    return;
                }
                read_until_lost(&mut ws, tx)
            }
            Err(e) => e,
        };
        let (error, answered) = match ended {
            Ended::Refused(msg) => {
                let _ = tx.send(Signal::Refused(kind, msg));
                return;
            }
            Ended::Retry(msg) => (msg, false),
            Ended::RetryAfter(msg, wait) => {
                backoff = backoff.max(wait.min(MAX_BACKOFF));
                (msg, true)
            }
        };
        let lost = Signal::Lost {
            space: kind,
            error,
            answered,
            retry_in: backoff,
        };
        if tx.send(lost).is_err() {
            return;
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Opens the socket with a signed request, like a read; signed again once with the
/// relay's time when the relay refused it as signed too far from its clock.
fn connect(relay: &str, space: SpaceId, me: &Identity) -> Result<Socket, Ended> {
    let base = relay.trim_end_matches('/');
    let ws_base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        return Err(Ended::Refused(format!(
            "the relay URL {relay:?} is not http(s)://; set it with `duet relay set URL`"
        )));
    };
    let path = live_path(&space);
    let mut signed_again = false;
    loop {
        let mut req = format!("{ws_base}{path}")
            .into_client_request()
            .map_err(|e| Ended::Refused(format!("bad relay URL {relay:?}: {e}")))?;
        let signed_at = crate::relay_clock::signing_time();
        let auth = ReadAuth::sign_at(me, "GET", &path, "", signed_at);
        for (name, value) in auth.headers() {
            let value = HeaderValue::from_str(&value)
                .map_err(|e| Ended::Retry(format!("cannot sign the request: {e}")))?;
            req.headers_mut().insert(name, value);
        }
        let ws = match open(req) {
            Ok((ws, _)) => ws,
            Err(tungstenite::Error::Http(resp)) => {
                let status = resp.status().as_u16();
                let date = resp.headers().get("date").and_then(|v| v.to_str().ok());
                if !signed_again && crate::relay_clock::learn(status, date, signed_at) {
                    signed_again = true;
                    continue;
                }
                let after =
                    crate::transport::retry_after_secs(resp.headers()).map(Duration::from_secs);
                return Err(match (refusal(status, resp.body().as_deref()), after) {
                    (Ended::RetryAfter(msg, _), Some(after)) => Ended::RetryAfter(msg, after),
                    (ended, _) => ended,
                });
            }
            Err(e) => {
                return Err(Ended::Retry(format!(
                    "cannot reach the relay at {relay}: {}",
                    unreachable(&e)
                )));
            }
        };
        let tcp = match ws.get_ref() {
            MaybeTlsStream::Plain(s) => Some(s),
            MaybeTlsStream::Rustls(s) => Some(s.get_ref()),
            _ => None,
        };
        if let Some(tcp) = tcp {
            let _ = tcp.set_read_timeout(Some(READ_TIMEOUT));
        }
        return Ok(ws);
    }
}

/// Opens the socket `req` asks for, each step within [`OPEN_TIMEOUT`] (tungstenite's
/// own `connect` waits as long as the system lets it).
fn open(
    req: tungstenite::handshake::client::Request,
) -> Result<(Socket, tungstenite::handshake::client::Response), tungstenite::Error> {
    use std::net::ToSocketAddrs;
    use tungstenite::error::{Error, UrlError};
    let uri = req.uri();
    let host = uri.host().ok_or(Error::Url(UrlError::NoHostName))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let secure = uri.scheme_str() == Some("wss");
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let mut last = None;
    let mut stream = None;
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, OPEN_TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some(stream) = stream else {
        return Err(match last {
            Some(e) => Error::Io(e),
            None => Error::Url(UrlError::UnableToConnect(uri.to_string())),
        });
    };
    stream.set_read_timeout(Some(OPEN_TIMEOUT))?;
    stream.set_write_timeout(Some(OPEN_TIMEOUT))?;
    match tungstenite::client_tls_with_config(req, stream, None, None) {
        Ok(opened) => Ok(opened),
        Err(tungstenite::HandshakeError::Failure(e)) => Err(e),
        // A blocking socket whose read timed out.
        Err(tungstenite::HandshakeError::Interrupted(_)) => Err(Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no answer to the WebSocket upgrade",
        ))),
    }
}

/// Why a live connection could not be opened, in words (the library's name a "URL
/// error" for a refused connection, or the HTTP version of whatever answered).
fn unreachable(e: &tungstenite::Error) -> String {
    use tungstenite::error::{Error, UrlError};
    match e {
        Error::Url(UrlError::UnableToConnect(_)) => "nothing answers there".into(),
        Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "nothing answers there".into()
        }
        Error::Io(io) if matches!(io.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => format!(
            "it did not answer within {} s (a proxy or network that holds the connection?)",
            OPEN_TIMEOUT.as_secs()
        ),
        Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            "the connection was cut as it opened (the relay stopped or restarted, or the network broke)".into()
        }
        Error::Io(io) if io.kind() == std::io::ErrorKind::Interrupted => {
            "the connection was interrupted (this computer slept, or the network changed)".into()
        }
        Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
            "the connection was cut as it opened (the relay stopped or restarted, or the network broke)".into()
        }
        Error::Tls(_) => "the secure connection failed (an https address where the relay speaks plain http, or the reverse?)".into(),
        Error::Protocol(_) | Error::HttpFormat(_) => "what answers there is not a Duet relay".into(),
        other => other.to_string(),
    }
}

/// How a refused socket ends: for good when retrying cannot help (not a member, no
/// such space or endpoint), else to be tried again. Said in Duet's words: the relay's
/// own text is not shown (a lying relay would write its own warning into every page of
/// the app's status line), only a refusal code this version knows.
fn refusal(status: u16, body: Option<&[u8]>) -> Ended {
    let code = body
        .and_then(|b| serde_json::from_slice::<ErrorBody>(b).ok())
        .map(|e| e.error);
    let msg = match code {
        // Live connections all taken, in Duet's words (a relay's own are not shown).
        Some(ErrorCode::RateLimited) => format!(
            "the relay has no live connection free for now (HTTP {status}): this \
             address's, this device's or this space's are all taken, by other devices \
             (perhaps the partner's) or other processes"
        ),
        // The two refusals a couple meets, in words (the relay's own name a device by
        // its 64 hex digits and speak of genesis events).
        Some(ErrorCode::NotAMember) => "the relay does not count this device as a member \
             of this space yet (its join has not reached the relay) or any more (it was \
             removed)"
            .to_string(),
        Some(ErrorCode::NoSuchSpace) => "the relay does not have this space (it was not \
             created there yet, for example for want of a creation token, or the relay \
             lost its database)"
            .to_string(),
        // A relay answers so an upgrade that arrived without its `Upgrade` and
        // `Connection` headers: a proxy in front of it that does not pass them on.
        Some(ErrorCode::BadQuery) if status == 400 => "the live connection reached the \
             relay without its WebSocket upgrade: a proxy in front of the relay does not pass \
             the `Upgrade` and `Connection` headers (docs/self-hosting.md, \"Behind a TLS \
             reverse proxy\")"
            .to_string(),
        Some(ErrorCode::Other(_)) | None => {
            format!("the relay refused the live connection (HTTP {status})")
        }
        Some(known) => format!(
            "the relay refused the live connection (HTTP {status}, {})",
            known.as_str()
        ),
    };
    if matches!(status, 403 | 404) {
        Ended::Refused(msg)
    } else {
        Ended::RetryAfter(msg, Duration::ZERO)
    }
}

/// Reads cursor messages until the socket ends.
fn read_until_lost(ws: &mut Socket, tx: &Sender<Signal>) -> Ended {
    loop {
        match ws.read() {
            Ok(Message::Text(text)) => match serde_json::from_str::<LiveMessage>(text.as_str()) {
                Ok(_) => {
                    if tx.send(Signal::Moved).is_err() {
                        let _ = ws.close(None);
                        return Ended::Retry("the watcher stopped".into());
                    }
                }
                Err(_) => {
                    return Ended::Retry(format!(
                        "the relay sent an unexpected live message: {:?}",
                        text.as_str().chars().take(100).collect::<String>()
                    ));
                }
            },
            Ok(Message::Close(frame)) => {
                let stopping = frame.is_some_and(|f| f.code == CloseCode::Away);
                return Ended::Retry(
                    match stopping {
                        true => "the relay is stopping (restarted, or stopped by its operator)",
                        false => "the relay closed the live connection",
                    }
                    .into(),
                );
            }
            // Pings are answered by tungstenite on the next read.
            Ok(_) => {}
            Err(e) => return Ended::Retry(lost(&e)),
        }
    }
}

/// A live connection's loss in words (the socket library's name the protocol's parts
/// and the system's error numbers: "os error 4" after a laptop wakes).
fn lost(e: &tungstenite::Error) -> String {
    use std::io::ErrorKind;
    use tungstenite::error::ProtocolError;
    let why = match e {
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            "the relay dropped it without closing it (it stopped, or the network broke)"
        }
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => "it was closed",
        tungstenite::Error::Io(io) => match io.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => {
                "nothing came from the relay for a while (the network may be down, or this \
                 computer slept)"
            }
            ErrorKind::Interrupted => {
                "it was interrupted (this computer slept, or the network changed)"
            }
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => {
                "the connection was cut (the network changed, or the relay stopped)"
            }
            ErrorKind::UnexpectedEof => "the relay stopped answering on it",
            _ => return format!("the live connection was lost: {e}"),
        },
        _ => return format!("the live connection was lost: {e}"),
    };
    format!("the live connection was lost: {why}")
}

#[cfg(test)]
mod tests {
    use super::{Ended, refusal};

    fn said(e: Ended) -> String {
        match e {
            Ended::Refused(m) | Ended::Retry(m) | Ended::RetryAfter(m, _) => m,
        }
    }

    #[test]
    fn a_relays_own_words_in_a_refusal_are_not_shown() {
        let lure = br#"{"error":"unauthenticated","message":"URGENT from Duet: enter your passphrase at https://x.example"}"#;
        let msg = said(refusal(403, Some(lure)));
        assert_eq!(
            msg,
            "the relay refused the live connection (HTTP 403, unauthenticated)"
        );
        let crafted = br#"{"error":"URGENT from Duet: visit x.example","message":"m"}"#;
        assert!(!said(refusal(403, Some(crafted))).contains("URGENT"));
        assert!(!said(refusal(403, Some(b"URGENT plain text"))).contains("URGENT"));
    }

    #[test]
    fn live_connections_all_taken_are_said_in_words_and_waited_for() {
        let msg = said(refusal(
            429,
            Some(br#"{"error":"rate_limited","message":"URGENT visit x.example"}"#),
        ));
        assert!(msg.contains("no live connection free for now"), "{msg}");
        assert!(!msg.contains("URGENT"), "{msg}");
    }

    #[test]
    fn the_refusals_a_couple_meets_are_said_in_words() {
        let msg = said(refusal(
            403,
            Some(br#"{"error":"not_a_member","message":"m"}"#),
        ));
        assert!(
            msg.starts_with("the relay does not count this device as a member"),
            "{msg}"
        );
        assert!(!msg.contains("  "), "{msg}");
    }
}
