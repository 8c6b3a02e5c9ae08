//! The relay's wire protocol, shared by the relay and every client: the one place that
//! names its paths, headers, error codes and messages (docs/protocol.md describes them).
//!
//! - `POST /v1/spaces/{space}/events` ([`events_path`]): body is a batch: repeated
//!   `u32 length || event`. Answer: JSON [`PushResponse`].
//! - `GET /v1/spaces/{space}/events?after=C&limit=N`, signed with the read headers below
//!   ([`ReadAuth::headers`]). Answer body: repeated `u64 cursor || u32 length || event`;
//!   header `duet-more: 1` when more events are waiting.
//! - `GET /v1/spaces/{space}/live` ([`live_path`]): a WebSocket, signed like a read, on
//!   which the relay sends [`LiveMessage`]s and pings every [`PING_EVERY`].
//! - `GET /healthz` ([`HEALTHZ_PATH`]).
//! - Short pairing codes: a member opens a mailbox ([`PAIRINGS_ROUTE`]), the partner
//!   claims it by its number ([`PAIRING_ROUTE`] and the routes after it); see
//!   docs/protocol.md, "Short pairing codes".
//! - Errors: JSON [`ErrorBody`] with a stable [`ErrorCode`].
//!
//! A read request is signed by a member device over
//! `READ_DOMAIN || method \n path \n query \n timestamp \n nonce`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::identity::{DeviceKey, Identity, verify};

/// The axum route of a space's events (push and read); `{space}` is the space id.
pub const EVENTS_ROUTE: &str = "/v1/spaces/{space}/events";
/// The axum route of a space's live socket.
pub const LIVE_ROUTE: &str = "/v1/spaces/{space}/live";
/// The relay's health check (not rate limited).
pub const HEALTHZ_PATH: &str = "/healthz";

/// The path of a space's events, e.g. `/v1/spaces/00ff.../events`. Takes any display
/// form of a space id, so that tests can aim at malformed ones.
pub fn events_path<S: std::fmt::Display + ?Sized>(space: &S) -> String {
    EVENTS_ROUTE.replace("{space}", &space.to_string())
}

/// The path of a space's live socket.
pub fn live_path<S: std::fmt::Display + ?Sized>(space: &S) -> String {
    LIVE_ROUTE.replace("{space}", &space.to_string())
}

/// The axum route where a member opens a short-code pairing mailbox for its space
/// (`POST`, signed like a read, body [`PairingOpen`], answer [`PairingOpened`]).
pub const PAIRINGS_ROUTE: &str = "/v1/spaces/{space}/pairings";
/// The axum route where the mailbox's creator long-polls for the claim (`GET`, signed,
/// `?wait=SECS`; answer [`PairingClaim`], or 204 when none came in time).
pub const PAIRING_CLAIM_WAIT_ROUTE: &str = "/v1/spaces/{space}/pairings/{nameplate}/claim";
/// The axum route where the creator leaves the sealed long code, or burns the mailbox
/// (`POST`, signed, body [`PairingSeal`], answer 204).
pub const PAIRING_SEAL_ROUTE: &str = "/v1/spaces/{space}/pairings/{nameplate}/sealed";
/// The axum route where the partner reads the creator's first message (`GET`, no
/// signature; answer [`PairingOffer`]).
pub const PAIRING_ROUTE: &str = "/v1/pairings/{nameplate}";
/// The axum route where the partner claims the mailbox, once (`POST` [`PairingClaim`],
/// answer [`PairingClaimed`]).
pub const PAIRING_CLAIM_ROUTE: &str = "/v1/pairings/{nameplate}/claim";
/// The axum route where the partner long-polls for the sealed long code (`GET`,
/// `?token=T&wait=SECS`; answer [`PairingSealed`], 204 when not yet, 410 when burned).
pub const PAIRING_SEALED_ROUTE: &str = "/v1/pairings/{nameplate}/sealed";
/// The longest wait a pairing long-poll may ask for, in seconds.
pub const PAIRING_MAX_WAIT_SECS: u64 = 25;
/// The default lifetime of a short code's mailbox, in seconds (10 minutes).
pub const PAIRING_DEFAULT_LIFETIME_SECS: u64 = 600;
/// The longest lifetime of a short code's mailbox, in seconds (1 hour).
pub const PAIRING_MAX_LIFETIME_SECS: u64 = 3600;
/// The largest sealed long code a mailbox holds, in base64 characters.
pub const PAIRING_MAX_SEALED_CHARS: usize = 32 * 1024;

fn pairing_path(route: &str, space: Option<&str>, nameplate: u32) -> String {
    let path = route.replace("{nameplate}", &nameplate.to_string());
    match space {
        Some(space) => path.replace("{space}", space),
        None => path,
    }
}

/// The path where a member opens a mailbox for `space`.
pub fn pairings_path<S: std::fmt::Display + ?Sized>(space: &S) -> String {
    PAIRINGS_ROUTE.replace("{space}", &space.to_string())
}

/// The path where the creator waits for the claim of mailbox `nameplate`.
pub fn pairing_claim_wait_path<S: std::fmt::Display + ?Sized>(space: &S, nameplate: u32) -> String {
    pairing_path(
        PAIRING_CLAIM_WAIT_ROUTE,
        Some(&space.to_string()),
        nameplate,
    )
}

/// The path where the creator seals (or burns) mailbox `nameplate`.
pub fn pairing_seal_path<S: std::fmt::Display + ?Sized>(space: &S, nameplate: u32) -> String {
    pairing_path(PAIRING_SEAL_ROUTE, Some(&space.to_string()), nameplate)
}

/// The path where the partner reads mailbox `nameplate`'s first message.
pub fn pairing_path_of(nameplate: u32) -> String {
    pairing_path(PAIRING_ROUTE, None, nameplate)
}

/// The path where the partner claims mailbox `nameplate`.
pub fn pairing_claim_path(nameplate: u32) -> String {
    pairing_path(PAIRING_CLAIM_ROUTE, None, nameplate)
}

/// The path where the partner waits for mailbox `nameplate`'s sealed long code.
pub fn pairing_sealed_path(nameplate: u32) -> String {
    pairing_path(PAIRING_SEALED_ROUTE, None, nameplate)
}

/// Opens a mailbox: the creator's SPAKE2 message (side A), base64.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PairingOpen {
    /// Base64 (standard, padded) SPAKE2 message A.
    pub msg: String,
    /// Asked lifetime in seconds; the relay caps it at [`PAIRING_MAX_LIFETIME_SECS`]
    /// and uses [`PAIRING_DEFAULT_LIFETIME_SECS`] without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_secs: Option<u64>,
}

/// The relay's answer to [`PairingOpen`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct PairingOpened {
    /// The mailbox's number, the first part of the short code.
    pub nameplate: u32,
    /// When the mailbox goes away, ms since the epoch.
    pub expires_at: i64,
}

/// The creator's message, as the partner reads it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PairingOffer {
    /// Base64 SPAKE2 message A.
    pub msg: String,
}

/// The partner's claim: its SPAKE2 message and its key confirmation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PairingClaim {
    /// Base64 SPAKE2 message B.
    pub msg: String,
    /// Hex SHA-256 of the confirmation domain and the shared key.
    pub confirm: String,
}

/// The relay's answer to a claim: the token that reads the sealed code.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PairingClaimed {
    /// Random hex token.
    pub token: String,
}

/// The creator's last word: the sealed long code, or `abort` (burns the mailbox).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PairingSeal {
    /// Base64 of `nonce (24) || XChaCha20-Poly1305 ciphertext` of the long code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
    /// The confirmation did not match: burn the mailbox.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abort: bool,
}

/// The sealed long code, as the partner reads it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PairingSealed {
    /// Base64 of `nonce || ciphertext`.
    pub sealed: String,
}

/// How often the relay pings an open live socket; a client that hears nothing for a few
/// of these takes the connection as dead.
pub const PING_EVERY: Duration = Duration::from_secs(20);

/// A message of the live socket (a JSON text message): the space's newest cursor, sent
/// when the socket opens and after each commit that moves it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct LiveMessage {
    /// The space's newest cursor.
    pub cursor: u64,
}

/// Largest request body the relay accepts (a few maximal events).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Default and maximum events per read.
pub const MAX_READ_LIMIT: u32 = 1000;
/// How far a read's timestamp may be from the relay's clock, in seconds.
pub const READ_WINDOW_SECS: i64 = 300;
/// Domain separation prefix of read signatures.
pub const READ_DOMAIN: &[u8] = b"duet/read/v1\0";
/// Header: hex device key of the reader.
pub const H_DEVICE: &str = "duet-device";
/// Header: Unix seconds when the request was signed.
pub const H_TIME: &str = "duet-time";
/// Header: random hex nonce, never reused.
pub const H_NONCE: &str = "duet-nonce";
/// Header: hex ed25519 signature.
pub const H_SIGNATURE: &str = "duet-signature";
/// Response header on reads: `1` when more events wait after this page.
pub const H_MORE: &str = "duet-more";
/// Response header on reads: the space's newest cursor. A client whose own cursor is
/// beyond it is talking to a relay that lost (or hides) events it already served.
pub const H_CURSOR: &str = "duet-cursor";
/// Response header on reads: how many fork (equivocation) attempts the relay refused in
/// this space and keeps as evidence. Clients warn their users when it is not zero.
pub const H_FORKS: &str = "duet-forks";
/// Response header on reads starting after a cursor above 0: the hex SHA-256 of the
/// space's event stored at that cursor, or `-` when none is. A client whose last read
/// event is not there is talking to a relay that lost events and numbers new ones anew
/// (restored from an older backup).
pub const H_AFTER_HASH: &str = "duet-after-hash";
/// Request header on pushes: the relay operator's creation token. Needed (unless the
/// relay runs with open registration) by a push that creates a space, i.e. whose batch
/// holds the genesis of a space the relay does not have; clients send it only while
/// their genesis is unacknowledged. Refusals: 403 `create_token_required` (absent) or
/// `bad_create_token` (not one of the relay's tokens).
pub const H_CREATE_TOKEN: &str = "duet-create-token";
/// The longest creation token, in bytes.
pub const MAX_CREATE_TOKEN_LEN: usize = 256;

/// Whether `token` can be a creation token: 1 to [`MAX_CREATE_TOKEN_LEN`] printable
/// ASCII characters without spaces (it travels as a header value; relays make 32 hex
/// characters). Clients refuse any other, and relays refuse to be given one.
pub fn is_create_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_CREATE_TOKEN_LEN
        && token.bytes().all(|b| b.is_ascii_graphic())
}

/// The JSON body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `bad_signature`.
    pub error: ErrorCode,
    /// What was wrong and what to do.
    pub message: String,
    /// Per-event results, when the error concerns a pushed batch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<EventResult>,
}

/// Declares [`ErrorCode`] with each variant's wire string, written once.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $code:literal,)*) => {
        /// The stable machine-readable code of an error answer (`error` in [`ErrorBody`]),
        /// sent as a snake_case string. A code this version does not know (from a newer
        /// relay) is kept as [`ErrorCode::Other`].
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)*
            /// A code this version does not know.
            Other(String),
        }

        impl ErrorCode {
            /// Every code this version knows, for tests and documentation.
            pub const KNOWN: &[ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The wire string.
            pub fn as_str(&self) -> &str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                    ErrorCode::Other(code) => code,
                }
            }

            /// The code a wire string names; unknown strings become [`ErrorCode::Other`].
            pub fn parse(code: &str) -> ErrorCode {
                match code {
                    $($code => ErrorCode::$variant,)*
                    // Kept to be said, so kept short and on one line: a relay's
                    // code cannot print a line of its own under the error.
                    other => ErrorCode::Other(one_line(other, 64, '?')),
                }
            }
        }
    };
}

error_codes! {
    /// 400: framing, decoding, version, payload, or an event for another space.
    Malformed = "malformed",
    /// 400: the space in the path is not 32 lower-case hex characters.
    BadSpaceId = "bad_space_id",
    /// 400: the read query is not `after=CURSOR&limit=N`.
    BadQuery = "bad_query",
    /// 401: an event's or a read's signature does not verify.
    BadSignature = "bad_signature",
    /// 401: a read without the signed headers.
    Unauthenticated = "unauthenticated",
    /// 401: a read signed too far from the relay's clock.
    StaleRequest = "stale_request",
    /// 401: a read nonce already used.
    ReplayedRequest = "replayed_request",
    /// 401: a join's invite signature does not verify.
    BadInviteSignature = "bad_invite_signature",
    /// 403: the author or reader is not (or no longer) a member.
    NotAMember = "not_a_member",
    /// 403: the invite was already spent.
    InviteUsed = "invite_used",
    /// 403: a member revoked the invite.
    InviteRevoked = "invite_revoked",
    /// 403: the invite expired.
    InviteExpired = "invite_expired",
    /// 403: no such invite in the space.
    UnknownInvite = "unknown_invite",
    /// 403: creating a space needs a creation token and the push sent none.
    CreateTokenRequired = "create_token_required",
    /// 403: the creation token is not one of the relay's.
    BadCreateToken = "bad_create_token",
    /// 403: the creation token has created as many spaces as allowed.
    TokenExhausted = "token_exhausted",
    /// 429: this address created as many spaces today as allowed.
    TooManySpaces = "too_many_spaces",
    /// 404: the space has no genesis on this relay.
    NoSuchSpace = "no_such_space",
    /// 404: no such route.
    NotFound = "not_found",
    /// 404: no open pairing mailbox with this number (never opened, expired, or done).
    NoSuchPairing = "no_such_pairing",
    /// 410: the pairing mailbox was already claimed; a short code is good for one try.
    PairingUsed = "pairing_used",
    /// 410: the creator burned the mailbox (the code typed did not match).
    PairingBurned = "pairing_burned",
    /// 429: the space (or the relay) has as many open pairing mailboxes as allowed.
    TooManyPairings = "too_many_pairings",
    /// 405: the route exists but not with this method.
    MethodNotAllowed = "method_not_allowed",
    /// 409: the author already has another event with this seq.
    Fork = "fork",
    /// 409: a gap in the author's seq, or prev does not match.
    BrokenChain = "broken_chain",
    /// 409: the space exists, the device is already a member, and the like.
    Conflict = "conflict",
    /// 408: the request (body upload included) took longer than allowed.
    Timeout = "timeout",
    /// 413: the body or an event exceeds its limit.
    TooLarge = "too_large",
    /// 429: too many requests from this address or device (with `Retry-After`).
    RateLimited = "rate_limited",
    /// 503: the relay handles as many requests as it allows (with `Retry-After: 1`).
    Overloaded = "overloaded",
    /// 507: the push would take the space over its quota.
    QuotaExceeded = "quota_exceeded",
    /// 507: the relay's storage is full.
    StorageFull = "storage_full",
    /// 500: the relay failed; the detail is in its log.
    Internal = "internal",
    /// Never sent by a relay: a client's name for an error answer that was not a JSON
    /// [`ErrorBody`] (a proxy's page, say).
    HttpError = "http_error",
}

impl ErrorCode {
    /// A refusal to create a space that a creation token puts right (none given, one the
    /// relay does not know, or one that has created all it may).
    pub fn wants_a_token(&self) -> bool {
        matches!(
            self,
            ErrorCode::CreateTokenRequired | ErrorCode::BadCreateToken | ErrorCode::TokenExhausted
        )
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ErrorCode, D::Error> {
        let code = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(ErrorCode::parse(&code))
    }
}

/// What happened to one pushed event.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Stored now.
    Accepted,
    /// Already stored before (harmless).
    Duplicate,
    /// Refused; see the reason.
    Rejected,
    /// Not stored because another event of the batch was rejected.
    NotStored,
}

/// One pushed event's outcome.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventResult {
    /// Hex SHA-256 of the event.
    pub hash: String,
    /// Outcome.
    pub status: EventStatus,
    /// Why it was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its cursor in the space, when stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<u64>,
}

/// The answer to a successful push.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PushResponse {
    /// Per event, in request order.
    pub results: Vec<EventResult>,
    /// The space's newest cursor after the push.
    pub cursor: u64,
}

/// A framing error in a batch or page.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("malformed batch framing: {0}")]
pub struct FramingError(pub &'static str);

/// A relay's words, to be said on one line: at most `max` characters, each control
/// character or line separator put as `with` (a line break would let the relay print a
/// line of its own under the error, reading like Duet's output).
pub fn one_line(s: &str, max: usize, with: char) -> String {
    s.chars()
        .take(max)
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                with
            } else {
                c
            }
        })
        .collect()
}

/// A relay's message on one line (as [`one_line`]), at most `max` characters: a longer
/// one is cut after its last whole word and ends with "…" (cut mid-word, a refusal's
/// advice read as finished).
pub fn clipped_line(s: &str, max: usize) -> String {
    let line = one_line(s, max.saturating_add(1), ' ');
    if line.chars().count() <= max {
        return line;
    }
    let cut: String = line.chars().take(max).collect();
    let words = cut.rfind(' ').map_or(cut.as_str(), |i| cut[..i].trim_end());
    format!("{words}…")
}

/// Frames events for a push body.
pub fn encode_batch<'a>(events: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        out.extend_from_slice(&(e.len() as u32).to_be_bytes());
        out.extend_from_slice(e);
    }
    out
}

/// Splits a push body into event byte strings.
pub fn decode_batch(mut body: &[u8]) -> Result<Vec<Vec<u8>>, FramingError> {
    let mut out = Vec::new();
    while !body.is_empty() {
        if body.len() < 4 {
            return Err(FramingError("truncated length prefix"));
        }
        let (len, rest) = body.split_at(4);
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if rest.len() < len {
            return Err(FramingError("event shorter than its length prefix"));
        }
        let (ev, rest) = rest.split_at(len);
        out.push(ev.to_vec());
        body = rest;
    }
    if out.is_empty() {
        return Err(FramingError("empty batch"));
    }
    Ok(out)
}

/// Frames a page of `(cursor, event)` for a read response.
pub fn encode_page(events: &[(u64, Vec<u8>)]) -> Vec<u8> {
    // Sized once: a page of up to 16 MiB must not be copied while it grows.
    let mut out = Vec::with_capacity(events.iter().map(|(_, e)| 12 + e.len()).sum());
    for (cursor, e) in events {
        out.extend_from_slice(&cursor.to_be_bytes());
        out.extend_from_slice(&(e.len() as u32).to_be_bytes());
        out.extend_from_slice(e);
    }
    out
}

/// Parses a read response body.
pub fn decode_page(mut body: &[u8]) -> Result<Vec<(u64, Vec<u8>)>, FramingError> {
    let mut out = Vec::new();
    while !body.is_empty() {
        if body.len() < 12 {
            return Err(FramingError("truncated page entry"));
        }
        let mut c = [0u8; 8];
        c.copy_from_slice(&body[..8]);
        let len = u32::from_be_bytes([body[8], body[9], body[10], body[11]]) as usize;
        let rest = &body[12..];
        if rest.len() < len {
            return Err(FramingError("event shorter than its length prefix"));
        }
        let cursor = u64::from_be_bytes(c);
        // Past every cursor a relay stores (its database's integers are signed).
        if cursor > i64::MAX as u64 {
            return Err(FramingError("a cursor above 2^63 - 1"));
        }
        out.push((cursor, rest[..len].to_vec()));
        body = &rest[len..];
    }
    Ok(out)
}

/// The bytes a reader signs.
pub fn read_message(method: &str, path: &str, query: &str, time: i64, nonce: &str) -> Vec<u8> {
    let mut m = READ_DOMAIN.to_vec();
    m.extend_from_slice(format!("{method}\n{path}\n{query}\n{time}\n{nonce}").as_bytes());
    m
}

/// The four header values of a signed read.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadAuth {
    /// Hex device key.
    pub device: String,
    /// Unix seconds.
    pub time: i64,
    /// Random hex nonce.
    pub nonce: String,
    /// Hex signature.
    pub signature: String,
}

impl ReadAuth {
    /// Signs a read request now.
    pub fn sign(id: &Identity, method: &str, path: &str, query: &str) -> ReadAuth {
        Self::sign_at(id, method, path, query, chrono::Utc::now().timestamp())
    }

    /// Signs a read request as made at `time` (Unix seconds): a client whose clock
    /// differs from the relay's signs with the relay's time.
    pub fn sign_at(id: &Identity, method: &str, path: &str, query: &str, time: i64) -> ReadAuth {
        let nonce = hex::encode(crate::ids::random_bytes::<16>());
        let sig = id.sign(&read_message(method, path, query, time, &nonce));
        ReadAuth {
            device: hex::encode(id.device_key()),
            time,
            nonce,
            signature: hex::encode(sig),
        }
    }

    /// The request headers that carry this signature: every client sends exactly these.
    pub fn headers(&self) -> [(&'static str, String); 4] {
        [
            (H_DEVICE, self.device.clone()),
            (H_TIME, self.time.to_string()),
            (H_NONCE, self.nonce.clone()),
            (H_SIGNATURE, self.signature.clone()),
        ]
    }

    /// Verifies the signature; returns the device key when it holds.
    pub fn verify(&self, method: &str, path: &str, query: &str) -> Option<DeviceKey> {
        let device: DeviceKey = hex::decode(&self.device).ok()?.try_into().ok()?;
        let sig: [u8; 64] = hex::decode(&self.signature).ok()?.try_into().ok()?;
        if self.nonce.is_empty() || self.nonce.len() > 64 {
            return None;
        }
        let msg = read_message(method, path, query, self.time, &self.nonce);
        verify(&device, &msg, &sig).then_some(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_relay_message_is_cut_after_a_whole_word() {
        let said = "made with a device code made by another person";
        assert_eq!(clipped_line(said, 100), said);
        assert_eq!(clipped_line(said, 36), "made with a device code made by…");
        assert_eq!(clipped_line("abcdefgh", 4), "abcd…");
    }

    #[test]
    fn batches_and_pages_round_trip_and_truncation_is_an_error() {
        let evs = [b"one".to_vec(), b"three".to_vec()];
        let body = encode_batch(evs.iter().map(Vec::as_slice));
        assert_eq!(decode_batch(&body).as_deref(), Ok(&evs[..]));
        assert!(decode_batch(&body[..body.len() - 1]).is_err());
        let page = vec![(3, b"a".to_vec()), (9, b"bc".to_vec())];
        assert_eq!(decode_page(&encode_page(&page)), Ok(page));
        let past_every_cursor = encode_page(&[(1 << 63, b"a".to_vec())]);
        assert!(decode_page(&past_every_cursor).is_err());
    }

    #[test]
    fn error_codes_keep_their_wire_strings_and_unknown_ones_survive() {
        for code in ErrorCode::KNOWN {
            let json = serde_json::to_string(code).expect("serializes");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: ErrorCode = serde_json::from_str(&json).expect("parses");
            assert_eq!(&back, code);
        }
        assert_eq!(ErrorCode::NotAMember.as_str(), "not_a_member");
        let body: ErrorBody =
            serde_json::from_str(r#"{"error":"brand_new","message":"m"}"#).expect("parses");
        assert_eq!(body.error, ErrorCode::Other("brand_new".into()));
        assert_eq!(
            serde_json::to_string(&body).expect("serializes"),
            r#"{"error":"brand_new","message":"m"}"#
        );
    }

    #[test]
    fn paths_and_live_messages_keep_their_wire_form() {
        let space = "00ff";
        assert_eq!(events_path(space), "/v1/spaces/00ff/events");
        assert_eq!(live_path(space), "/v1/spaces/00ff/live");
        let m: LiveMessage = serde_json::from_str(r#"{"cursor":7}"#).expect("parses");
        assert_eq!(m, LiveMessage { cursor: 7 });
        assert_eq!(
            serde_json::to_string(&m).expect("serializes"),
            r#"{"cursor":7}"#
        );
    }

    #[test]
    fn a_read_signature_binds_path_and_query() {
        let id = Identity::generate("A");
        let auth = ReadAuth::sign(&id, "GET", "/v1/spaces/x/events", "after=0");
        assert_eq!(
            auth.verify("GET", "/v1/spaces/x/events", "after=0"),
            Some(id.device_key())
        );
        assert_eq!(auth.verify("GET", "/v1/spaces/x/events", "after=5"), None);
        assert_eq!(auth.verify("GET", "/v1/spaces/y/events", "after=0"), None);
    }
}
