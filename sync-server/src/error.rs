//! The relay's error answers: each failure has a stable machine-readable code, an HTTP
//! status and a message saying what was wrong and what to do, sent as the JSON
//! [`ErrorBody`] of the wire protocol.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use duet_core::event::{EventError, SpaceId};
use duet_core::membership::AdmitError;
use duet_core::protocol::{ErrorBody, ErrorCode, EventResult, EventStatus};

use crate::batch::{BadBody, FrameError};
use crate::logging::Throttle;
use crate::store::StoreError;

/// Refused requests are logged at info level, at most a line a second: anyone can send
/// them as fast as the network allows.
static REFUSED_LOG: Throttle = Throttle::per_second();

/// Pushes refused because the database is full: at most a line a second (each device
/// retries at every sync, and the log would grow fastest when the disk is full).
static FULL_LOG: Throttle = Throttle::per_second();

/// Every way a request can fail. The message of each variant is sent to the client.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// 400 `malformed`: framing, decoding, version, payload, or an event for another space.
    #[error("{0}")]
    Malformed(String),
    /// 400 `bad_space_id`: the space in the path is not 32 lower-case hex characters.
    #[error("{0}")]
    BadSpaceId(String),
    /// 400 `bad_query`: the read query is not `after=CURSOR&limit=N`.
    #[error("{0}")]
    BadQuery(String),
    /// 401 `bad_signature`: an event's or a read's signature does not verify.
    #[error("{0}")]
    BadSignature(String),
    /// 401 `unauthenticated`: a read without the signed headers.
    #[error("{0}")]
    Unauthenticated(String),
    /// 401 `stale_request`: a read signed too far from the relay's clock.
    #[error("{0}")]
    StaleRequest(String),
    /// 401 `replayed_request`: a read nonce already used.
    #[error("{0}")]
    ReplayedRequest(String),
    /// 401 `bad_invite_signature`: a join's invite signature does not verify.
    #[error("{0}")]
    BadInviteSignature(String),
    /// 403 `not_a_member`: the author or reader is not (or no longer) a member.
    #[error("{0}")]
    NotAMember(String),
    /// 403 `invite_used`: the invite was already spent.
    #[error("{0}")]
    InviteUsed(String),
    /// 403 `invite_revoked`: a member revoked the invite.
    #[error("{0}")]
    InviteRevoked(String),
    /// 403 `invite_expired`: the invite expired.
    #[error("{0}")]
    InviteExpired(String),
    /// 403 `unknown_invite`: no such invite in the space.
    #[error("{0}")]
    UnknownInvite(String),
    /// 403 `create_token_required`: creating a space needs a creation token and the
    /// push sent none.
    #[error("{0}")]
    CreateTokenRequired(String),
    /// 403 `bad_create_token`: the creation token is not one of the relay's.
    #[error("{0}")]
    BadCreateToken(String),
    /// 403 `token_exhausted`: the creation token has created as many spaces as allowed.
    #[error("{0}")]
    TokenExhausted(String),
    /// 429 `too_many_spaces`: this address created as many spaces today as allowed.
    #[error("{0}")]
    TooManySpaces(String),
    /// 404 `no_such_space`: the space has no genesis on this relay.
    #[error("{0}")]
    NoSuchSpace(String),
    /// 404 `not_found`: no such route.
    #[error("{0}")]
    NotFound(String),
    /// 405 `method_not_allowed`: the route exists but not with this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 404 `no_such_pairing`: no open pairing mailbox with this number.
    #[error("{0}")]
    NoSuchPairing(String),
    /// 410 `pairing_used`: the pairing mailbox was claimed already.
    #[error("{0}")]
    PairingUsed(String),
    /// 410 `pairing_burned`: the creator burned the pairing mailbox.
    #[error("{0}")]
    PairingBurned(String),
    /// 429 `too_many_pairings`: as many pairing mailboxes open as allowed.
    #[error("{0}")]
    TooManyPairings(String),
    /// 409 `fork`: the author already has another event with this seq.
    #[error("{0}")]
    Fork(String),
    /// 409 `broken_chain`: a gap in the author's seq, or prev does not match.
    #[error("{0}")]
    BrokenChain(String),
    /// 409 `conflict`: the space exists, the device is already a member, and the like.
    #[error("{0}")]
    Conflict(String),
    /// 408 `timeout`: the request (body upload included) took longer than allowed.
    #[error("{0}")]
    Timeout(String),
    /// 413 `too_large`: the body or an event exceeds its limit.
    #[error("{0}")]
    TooLarge(String),
    /// 429 `rate_limited`: too many requests from this address or device; sent with
    /// `Retry-After`.
    #[error("{message}")]
    RateLimited {
        /// What was limited and what to do.
        message: String,
        /// Seconds to wait before retrying (the `Retry-After` header).
        retry_after: u64,
    },
    /// 503 `overloaded`: the relay is handling as many requests as it allows; sent with
    /// `Retry-After: 1`.
    #[error("{0}")]
    Overloaded(String),
    /// 507 `quota_exceeded`: the push would take the space over its quota.
    #[error("{0}")]
    QuotaExceeded(String),
    /// 507 `storage_full`: the relay's storage is full (SQLite reported SQLITE_FULL).
    #[error("{0}")]
    StorageFull(String),
    /// 507 `storage_full`: the database is past the share of `--max-db-bytes` in which
    /// spaces are created; the rest is kept for the spaces that exist (logged by the
    /// writer, not as a full disk).
    #[error("{0}")]
    NoRoomForSpaces(String),
    /// 500 `internal`: the detail is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
    /// A pushed batch was refused: `error` is the first rejection, `results` has one
    /// entry per event of the batch.
    #[error("{error}")]
    Batch {
        /// The first rejection.
        error: Box<ApiError>,
        /// Per event: duplicate, rejected (with reason) or not stored.
        results: Vec<EventResult>,
    },
}

impl ApiError {
    /// The stable code sent as `error`.
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Malformed(_) => ErrorCode::Malformed,
            ApiError::BadSpaceId(_) => ErrorCode::BadSpaceId,
            ApiError::BadQuery(_) => ErrorCode::BadQuery,
            ApiError::BadSignature(_) => ErrorCode::BadSignature,
            ApiError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            ApiError::StaleRequest(_) => ErrorCode::StaleRequest,
            ApiError::ReplayedRequest(_) => ErrorCode::ReplayedRequest,
            ApiError::BadInviteSignature(_) => ErrorCode::BadInviteSignature,
            ApiError::NotAMember(_) => ErrorCode::NotAMember,
            ApiError::InviteUsed(_) => ErrorCode::InviteUsed,
            ApiError::InviteRevoked(_) => ErrorCode::InviteRevoked,
            ApiError::InviteExpired(_) => ErrorCode::InviteExpired,
            ApiError::UnknownInvite(_) => ErrorCode::UnknownInvite,
            ApiError::CreateTokenRequired(_) => ErrorCode::CreateTokenRequired,
            ApiError::BadCreateToken(_) => ErrorCode::BadCreateToken,
            ApiError::TokenExhausted(_) => ErrorCode::TokenExhausted,
            ApiError::TooManySpaces(_) => ErrorCode::TooManySpaces,
            ApiError::NoSuchSpace(_) => ErrorCode::NoSuchSpace,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::MethodNotAllowed(_) => ErrorCode::MethodNotAllowed,
            ApiError::NoSuchPairing(_) => ErrorCode::NoSuchPairing,
            ApiError::PairingUsed(_) => ErrorCode::PairingUsed,
            ApiError::PairingBurned(_) => ErrorCode::PairingBurned,
            ApiError::TooManyPairings(_) => ErrorCode::TooManyPairings,
            ApiError::Fork(_) => ErrorCode::Fork,
            ApiError::BrokenChain(_) => ErrorCode::BrokenChain,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::Timeout(_) => ErrorCode::Timeout,
            ApiError::TooLarge(_) => ErrorCode::TooLarge,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::Overloaded(_) => ErrorCode::Overloaded,
            ApiError::QuotaExceeded(_) => ErrorCode::QuotaExceeded,
            ApiError::StorageFull(_) | ApiError::NoRoomForSpaces(_) => ErrorCode::StorageFull,
            ApiError::Internal(_) => ErrorCode::Internal,
            ApiError::Batch { error, .. } => error.code(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Malformed(_) | ApiError::BadSpaceId(_) | ApiError::BadQuery(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::BadSignature(_)
            | ApiError::Unauthenticated(_)
            | ApiError::StaleRequest(_)
            | ApiError::ReplayedRequest(_)
            | ApiError::BadInviteSignature(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotAMember(_)
            | ApiError::InviteUsed(_)
            | ApiError::InviteRevoked(_)
            | ApiError::InviteExpired(_)
            | ApiError::UnknownInvite(_)
            | ApiError::CreateTokenRequired(_)
            | ApiError::BadCreateToken(_)
            | ApiError::TokenExhausted(_) => StatusCode::FORBIDDEN,
            ApiError::TooManySpaces(_) | ApiError::TooManyPairings(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::NoSuchSpace(_) | ApiError::NotFound(_) | ApiError::NoSuchPairing(_) => {
                StatusCode::NOT_FOUND
            }
            ApiError::PairingUsed(_) | ApiError::PairingBurned(_) => StatusCode::GONE,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Fork(_) | ApiError::BrokenChain(_) | ApiError::Conflict(_) => {
                StatusCode::CONFLICT
            }
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::QuotaExceeded(_)
            | ApiError::StorageFull(_)
            | ApiError::NoRoomForSpaces(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Batch { error, .. } => error.status(),
        }
    }

    /// The message sent to the client (internal details are withheld).
    pub fn message(&self) -> String {
        match self {
            ApiError::Internal(_) => {
                // A failure can come after a commit (or be the commit's own answer lost),
                // so whether a push was stored is not known here; pushing again is safe.
                "the relay failed to handle the request. Try again later (events already \
                 stored are answered as duplicates, never stored twice), and if it persists \
                 ask the relay's operator to check its log"
                    .to_string()
            }
            ApiError::Batch { error, .. } => error.message(),
            other => other.to_string(),
        }
    }

    /// The JSON body of this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.code(),
            message: self.message(),
            results: match self {
                ApiError::Batch { results, .. } => results.clone(),
                _ => Vec::new(),
            },
        }
    }

    /// The answer to a body over the size limit.
    pub fn too_large_body() -> ApiError {
        ApiError::TooLarge(format!(
            "the request body exceeds the relay's {}-byte limit; push fewer events per request",
            duet_core::protocol::MAX_BODY_BYTES
        ))
    }

    /// The answer to a client over a rate limit; `who` is "this address" or "this
    /// device".
    pub fn rate_limited(who: &str, retry_after: u64) -> ApiError {
        ApiError::RateLimited {
            message: format!(
                "too many requests from {who}: the relay limits how often each address and \
                 device may call it; nothing was done. Retry after {retry_after} s"
            ),
            retry_after,
        }
    }

    /// The answer when the relay already handles as many requests as it allows.
    pub fn overloaded() -> ApiError {
        ApiError::Overloaded(
            "the relay is busy handling as many requests as it allows; nothing was done. \
             Retry in a moment"
                .to_string(),
        )
    }

    /// The answer to a request that took longer than `limit`.
    pub fn timeout(limit: std::time::Duration, push: bool) -> ApiError {
        let then = if push {
            "A push may or may not have been stored: push again, the relay answers \
             `duplicate` for events it already has"
        } else {
            "Send it again (over a faster connection if its body is large)"
        };
        ApiError::Timeout(format!(
            "the request was not completed within {} s (sending its body, or the relay \
             handling it) and was abandoned. {then}",
            limit.as_secs_f64()
        ))
    }

    /// The answer to a push whose body fell behind the minimum rate: nothing was stored.
    pub fn body_too_slow(rate: u64, grace: std::time::Duration) -> ApiError {
        ApiError::Timeout(format!(
            "the request body arrived slower than {rate} bytes per second (after a grace of \
             {} s), or paused longer than the grace, and was cut off; nothing was stored. \
             Push again over a faster connection",
            grace.as_secs_f64()
        ))
    }

    /// The answer when SQLite reports that the database cannot grow.
    pub fn storage_full() -> ApiError {
        ApiError::StorageFull(
            "the relay's storage is full; nothing was stored. Try again later; the relay's \
             operator must free disk space (or raise --max-db-bytes, with SQLite)"
                .to_string(),
        )
    }

    /// Maps an event that does not decode.
    pub fn from_event_error(e: EventError) -> ApiError {
        match e {
            EventError::BadSignature => ApiError::BadSignature(
                "an event's signature does not verify: it was altered or not signed by its \
                 author device; nothing was stored. Do not resend it"
                    .to_string(),
            ),
            EventError::TooLarge(_) => ApiError::TooLarge(format!(
                "{e}; split the changes into smaller events and push again"
            )),
            EventError::UnsupportedVersion(v) => ApiError::Malformed(format!(
                "an event is in format {v}, which this relay does not read (it reads format \
                 {}); nothing was stored. Upgrade the relay, or use a client of its version",
                duet_core::event::VERSION
            )),
            other => ApiError::Malformed(format!(
                "an event is malformed: {other}; nothing was stored. Fix the client and push again"
            )),
        }
    }

    /// The answer to a push body whose framing is wrong: the first error and the counts,
    /// whatever the size of the body.
    pub fn from_bad_body(e: BadBody) -> ApiError {
        let message = format!(
            "{e}; a push body is one or more `u32 big-endian length || event`; nothing was \
             stored"
        );
        match e.first {
            FrameError::TooLong { .. } => ApiError::TooLarge(message),
            _ => ApiError::Malformed(message),
        }
    }

    /// The answer to a push whose event number `index` (from 1) of `count` does not
    /// decode: that event's error, with one result (the refused event's): the events
    /// after it are not examined.
    pub fn undecodable(e: EventError, index: usize, count: usize, hash: [u8; 32]) -> ApiError {
        ApiError::refused_event(ApiError::from_event_error(e), index, count, hash)
    }

    /// An event for space `claimed` pushed to the URL of space `url`.
    pub fn wrong_space(claimed: SpaceId, url: SpaceId) -> ApiError {
        ApiError::Malformed(format!(
            "an event is for space {claimed} but was pushed to space {url}; push each event \
             to its own space's URL"
        ))
    }

    /// The answer to a push whose event number `index` (from 1) of `count` names space
    /// `claimed`, not the URL's (read from its header, before any signature is verified).
    pub fn event_for_another_space(
        (index, count): (usize, usize),
        hash: [u8; 32],
        claimed: SpaceId,
        url: SpaceId,
    ) -> ApiError {
        ApiError::refused_event(ApiError::wrong_space(claimed, url), index, count, hash)
    }

    /// `error` as the answer for the push's event number `index` of `count`.
    fn refused_event(error: ApiError, index: usize, count: usize, hash: [u8; 32]) -> ApiError {
        let at = |m: String| format!("event {index} of the {count} in the body: {m}");
        let error = match error {
            ApiError::BadSignature(m) => ApiError::BadSignature(at(m)),
            ApiError::TooLarge(m) => ApiError::TooLarge(at(m)),
            ApiError::Malformed(m) => ApiError::Malformed(at(m)),
            other => other,
        };
        ApiError::Batch {
            results: vec![EventResult {
                hash: hex::encode(hash),
                status: EventStatus::Rejected,
                reason: Some(error.message()),
                cursor: None,
            }],
            error: Box::new(error),
        }
    }

    /// A write refused because its author may not write here, with what fits its case.
    fn not_a_member(e: &AdmitError) -> ApiError {
        let next = match e {
            AdmitError::Removed => {
                " (removed, or its person left); such a device never writes or joins here \
                 again: a person who still belongs adds a new device"
            }
            AdmitError::NotOwner => "; a partner shares the shared space, never a personal one",
            _ => "; only member devices may write. Ask a member for a new invite",
        };
        ApiError::NotAMember(format!("{e}{next}"))
    }

    /// Maps an event that is authentic but not admissible now.
    pub fn from_admit_error(e: AdmitError) -> ApiError {
        match e {
            AdmitError::Event(ev) => ApiError::from_event_error(ev),
            AdmitError::NoSuchSpace => ApiError::NoSuchSpace(
                "the space does not exist on this relay: push its genesis event first, \
                 or check the space id and relay URL"
                    .to_string(),
            ),
            AdmitError::SpaceExists => ApiError::Conflict(
                "the space already exists: a genesis event can only be its first event; \
                 create a new space id instead"
                    .to_string(),
            ),
            AdmitError::WrongSpace => {
                ApiError::Malformed("the event is for another space than the URL's".to_string())
            }
            AdmitError::NotMember | AdmitError::Removed | AdmitError::NotOwner => {
                ApiError::not_a_member(&e)
            }
            // Admission refused for the person the join or device code names.
            AdmitError::WrongPerson | AdmitError::SpaceFull | AdmitError::InviteForAnother => {
                ApiError::NotAMember(format!(
                    "{e}; a partner joins with a partner invite, a person's own new device \
                     with a device code made on one of that person's devices"
                ))
            }
            AdmitError::UnknownInvite => ApiError::UnknownInvite(
                "this space has no such invite: check the invite code, or ask for a new one"
                    .to_string(),
            ),
            AdmitError::InviteRevoked => ApiError::InviteRevoked(
                "this invite was withdrawn (a member revoked it, or the device that made it is no \
                 longer in the space): ask for a new one"
                    .to_string(),
            ),
            AdmitError::LeavePersonal => {
                ApiError::Conflict(format!("{e}; leave the shared space instead"))
            }
            AdmitError::InviteUsed => ApiError::InviteUsed(
                "this invite was already used (invites admit one device once)".to_string(),
            ),
            AdmitError::InviteExpired => ApiError::InviteExpired(
                "this invite has expired: ask the person who invited you for a new one".to_string(),
            ),
            AdmitError::BadInviteSignature => ApiError::BadInviteSignature(
                "the invite signature in the join does not verify: the invite code is wrong \
                 or was altered; ask for a new invite"
                    .to_string(),
            ),
            AdmitError::TooManyDevices(_) | AdmitError::TooManyInvites(_) => {
                ApiError::QuotaExceeded(format!(
                    "{e}; nothing was stored. Removing does not help: a space counts every \
                     device and invite a person ever had in it (the partner's are counted \
                     apart); start a new space (`duet init` on a new home) if one is needed"
                ))
            }
            AdmitError::WeakKey => ApiError::Malformed(format!(
                "{e}; nothing was stored. Make the device's keys again with a fixed client"
            )),
            AdmitError::AlreadyMember
            | AdmitError::BadRecipients
            | AdmitError::NotAMemberToRemove
            | AdmitError::DuplicateInvite
            | AdmitError::InviteClosed
            | AdmitError::StaleEpoch { .. }
            | AdmitError::FutureEpoch { .. } => ApiError::Conflict(format!(
                "{e}; refresh the space (`duet sync`) and try again"
            )),
            AdmitError::Gap { .. } | AdmitError::BrokenChain => ApiError::BrokenChain(format!(
                "{e}; push the author's earlier events first, in order"
            )),
            AdmitError::Fork(_) => ApiError::Fork(format!(
                "{e}; the relay keeps the first event it received. An author must never \
                 sign two events with the same seq: sync before writing again"
            )),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_full() {
            return ApiError::storage_full();
        }
        if e.is_damaged() {
            return ApiError::Internal(format!("{e}; {}", crate::store::DAMAGED));
        }
        if e.is_unreachable() {
            // The server's words stay in the log (as an internal error's do): `/healthz`
            // logs the outage once, each request at `debug`.
            tracing::debug!("the database is out of reach: {e}");
            return ApiError::Overloaded(
                "the relay's database is out of reach for now; nothing was done. Retry in a \
                 moment"
                    .to_string(),
            );
        }
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // What is logged and whether to wait follow the refusal itself, also when it is
        // a push's first refused event (a member's pushes over a person's device or
        // invite limit were each an ERROR line of their own).
        let refusal = match &self {
            ApiError::Batch { error, .. } => error.as_ref(),
            other => other,
        };
        let retry_after = match refusal {
            ApiError::RateLimited { retry_after, .. } => Some(*retry_after),
            ApiError::Overloaded(_) => Some(1),
            _ => None,
        };
        if retry_after.is_some() {
            // A flood must not flood the log too: the limiters log summaries instead (a
            // database out of reach is logged where it is found, `PgStore::reconnect`).
            tracing::debug!(code = %self.code(), "request refused for load");
        } else if matches!(refusal, ApiError::StorageFull(_)) {
            if let Some(suppressed) = FULL_LOG.allow() {
                tracing::error!(
                    suppressed,
                    "a push was refused: the database reports it is full (the disk, or with \
                     SQLite --max-db-bytes)"
                );
            }
        } else if status.is_server_error()
            && !matches!(
                refusal,
                ApiError::QuotaExceeded(_) | ApiError::NoRoomForSpaces(_)
            )
        {
            tracing::error!(error = %self, "request failed");
        } else if let Some(suppressed) = REFUSED_LOG.allow() {
            tracing::info!(
                code = %self.code(),
                status = status.as_u16(),
                suppressed,
                "request refused: {}",
                self.message()
            );
        }
        let mut response = (status, Json(self.body())).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
