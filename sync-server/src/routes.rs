//! The HTTP handlers: push a batch of events, read a page of events, health check, and
//! JSON answers for unknown routes and oversized bodies.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use duet_core::event::SpaceId;
use duet_core::protocol::{
    self, H_AFTER_HASH, H_CURSOR, H_DEVICE, H_FORKS, H_MORE, H_NONCE, H_SIGNATURE, H_TIME,
    MAX_READ_LIMIT, PushResponse, ReadAuth,
};

use crate::body::{PushBody, Stopped};
use crate::error::ApiError;
use crate::limits::{ClientAddr, InFlight};
use crate::state::{AppState, ReadRequest};

/// Client text quoted in an error message: escaped, and cut to a few dozen characters so
/// that a long URL never makes a long answer.
fn quoted(text: &str) -> String {
    const MAX_CHARS: usize = 64;
    let mut out: String = text.escape_debug().take(MAX_CHARS).collect();
    if text.escape_debug().nth(MAX_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// Validates the `{space}` segment of a `/v1/spaces/{space}/…` address before anything
/// else uses it, as it was sent: not percent-decoded (`%61…` was taken for `a…`), since
/// an id is 32 lower-case hex characters and only those (docs/protocol.md).
pub(crate) fn parse_space(uri: &Uri) -> Result<SpaceId, ApiError> {
    uri.path()
        .strip_prefix("/v1/spaces/")
        .and_then(|rest| rest.split('/').next())
        .and_then(SpaceId::parse)
        .ok_or_else(|| {
            ApiError::BadSpaceId(
                "the space id in the URL must be exactly 32 lower-case hex characters".to_string(),
            )
        })
}

/// Runs blocking work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("worker task failed: {e}")))?
}

/// `POST /v1/spaces/{space}/events`: stores a batch of events, all or nothing, and
/// answers once they are durable.
pub async fn push_events(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<PushResponse>, ApiError> {
    let space = parse_space(request.uri())?;
    let address = request
        .extensions()
        .get::<ClientAddr>()
        .and_then(|ClientAddr(ip)| *ip);
    let credential = state.credential(
        request
            .headers()
            .get(protocol::H_CREATE_TOKEN)
            .map(|v| v.as_bytes()),
        address,
    );
    // The push's share of the relay's push memory grows as its body arrives, and is
    // held by the push until it is answered (also past a client that went away: the
    // share goes with the push to the blocking pool and the writer).
    let share = state.push_memory_share(address);
    let (body, share) = paced_body(request, &state, share, ApiError::too_large_body).await?;
    // Only now is the push one of the requests in flight.
    let _slot = state.guards().enter(address)?;
    let now = duet_core::ids::now_ms();
    let inline = body.len() <= crate::state::INLINE_VERIFY_BYTES;
    let prepare = {
        let state = state.clone();
        move || {
            let mut prepared = state.prepare_push_with(space, &body, now, credential)?;
            prepared.memory = share.map(Box::new);
            Ok(prepared)
        }
    };
    // Signatures are verified on the blocking pool, except for a push small enough to
    // hold one event or two (tens of microseconds, less than the trip to another
    // thread and back); the commit is awaited without holding a thread (the writer
    // answers once the push's group is durable).
    let prepared = if inline {
        prepare()?
    } else {
        blocking(prepare).await?
    };
    let resp = state.submit(prepared).await?;
    Ok(Json(resp))
}

/// A request body read in full, then counted among the requests in flight (a `POST`
/// takes its slot only once its body is in, see [`crate::limits::guard`]).
pub struct Admitted(pub Bytes, pub InFlight);

impl FromRequest<AppState> for Admitted {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Admitted, ApiError> {
        let address = request
            .extensions()
            .get::<ClientAddr>()
            .and_then(|ClientAddr(ip)| *ip);
        // Only the pairing routes take one: a body past their limit is a pairing's. One
        // that trickles in is cut off at the minimum rate, as a push's is.
        let (body, _) = paced_body(request, state, None, crate::pairing::too_large).await?;
        let slot = state.guards().enter(address)?;
        Ok(Admitted(body, slot))
    }
}

/// A request's body read in full at the minimum body rate (and within `share` of the
/// push memory, if given): a slower body is cut off (408), one past the route's limit
/// is answered with `too_large`. Returns the body and the share it grew.
async fn paced_body(
    request: Request,
    state: &AppState,
    share: Option<crate::push_memory::Share>,
    too_large: fn() -> ApiError,
) -> Result<(Bytes, Option<crate::push_memory::Share>), ApiError> {
    let config = state.config();
    let (parts, body) = request.into_parts();
    let (body, watch) = PushBody::new(body, config.min_body_rate, config.body_grace, share);
    let request = Request::from_parts(parts, Body::new(body));
    let read = Bytes::from_request(request, &()).await;
    let share = watch.take_share();
    read.map(|bytes| (bytes, share))
        .map_err(|e| match watch.reason() {
            Some(Stopped::NoMemory) => ApiError::overloaded(),
            Some(Stopped::TooSlow) => {
                ApiError::body_too_slow(config.min_body_rate, config.body_grace)
            }
            None if e.status() == StatusCode::PAYLOAD_TOO_LARGE => too_large(),
            None => {
                ApiError::Malformed(format!("cannot read the request body: {e}; send it again"))
            }
        })
}

/// Parses `after=CURSOR&limit=N` (both optional; a limit above the maximum is lowered).
pub fn parse_query(query: &str) -> Result<(u64, u32), ApiError> {
    let bad = |what: String| {
        ApiError::BadQuery(format!(
            "{what}; the query is `after=CURSOR&limit=N` with a decimal cursor and \
             1 <= N (at most {MAX_READ_LIMIT} are served)"
        ))
    };
    let number = |v: &str| -> Option<u64> {
        if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        v.parse().ok()
    };
    let mut after = None;
    let mut limit = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| bad(format!("`{}` has no value", quoted(pair))))?;
        let slot = match key {
            "after" => &mut after,
            "limit" => &mut limit,
            other => return Err(bad(format!("unknown parameter `{}`", quoted(other)))),
        };
        if slot.is_some() {
            return Err(bad(format!("`{key}` is given twice")));
        }
        *slot = Some(
            number(value)
                .ok_or_else(|| bad(format!("`{key}` is not a number: `{}`", quoted(value))))?,
        );
    }
    let limit = match limit {
        None => MAX_READ_LIMIT,
        Some(0) => return Err(bad("`limit` is 0".to_string())),
        Some(n) => u32::try_from(n)
            .unwrap_or(MAX_READ_LIMIT)
            .min(MAX_READ_LIMIT),
    };
    // Cursors are stored as SQL integers (at most 2^63 - 1): an `after` past them all
    // reads what follows it, nothing, rather than failing in the database.
    let after = after.unwrap_or(0).min(i64::MAX as u64);
    Ok((after, limit))
}

/// Reads the four signed-read headers.
pub(crate) fn read_auth(headers: &HeaderMap) -> Result<ReadAuth, ApiError> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(device), Some(time), Some(nonce), Some(signature)) =
        (get(H_DEVICE), get(H_TIME), get(H_NONCE), get(H_SIGNATURE))
    else {
        return Err(ApiError::Unauthenticated(format!(
            "reads must be signed by a member device: send the headers {H_DEVICE}, {H_TIME}, \
             {H_NONCE} and {H_SIGNATURE}, each in visible ASCII"
        )));
    };
    // A header value may hold spaces and tabs, which no nonce does (protocol.md).
    if nonce.is_empty() || nonce.len() > 64 || !nonce.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::Unauthenticated(format!(
            "{H_NONCE} must be 1 to 64 visible ASCII characters (no spaces)"
        )));
    }
    let time = time.parse::<i64>().map_err(|_| {
        ApiError::Unauthenticated(format!(
            "{H_TIME} must be the signing time in Unix seconds (a decimal integer)"
        ))
    })?;
    Ok(ReadAuth {
        device: device.to_string(),
        time,
        nonce: nonce.to_string(),
        signature: signature.to_string(),
    })
}

/// `GET /v1/spaces/{space}/events?after=C&limit=N`: a page of events for a member.
pub async fn read_events(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    address: Option<axum::Extension<ClientAddr>>,
) -> Result<Response, ApiError> {
    let space = parse_space(&uri)?;
    let query = uri.query().unwrap_or("").to_string();
    let (after, limit) = parse_query(&query)?;
    let req = ReadRequest {
        auth: read_auth(&headers)?,
        path: uri.path().to_string(),
        query,
        after,
        limit,
    };
    let now = duet_core::ids::now_ms().div_euclid(1000);
    let memory = state.clone();
    let answer = blocking(move || state.read(space, &req, now)).await?;
    let page = protocol::encode_page(&answer.events);
    // The page holds its share of the memory until it has gone out: a client that
    // opens many reads and takes none holds no more than the budget lets it.
    let share = match memory.page_memory_share(address.and_then(|a| a.0.0)) {
        Some(mut share) => {
            share.cover_page(page.len() as u64)?;
            Some(share)
        }
        None => None,
    };
    let mut response = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::HeaderName::from_static(H_MORE),
                HeaderValue::from_static(if answer.more { "1" } else { "0" }),
            ),
            (
                header::HeaderName::from_static(H_CURSOR),
                HeaderValue::from(answer.newest),
            ),
            (
                header::HeaderName::from_static(H_FORKS),
                HeaderValue::from(answer.forks),
            ),
        ],
        page,
    )
        .into_response();
    if let Some(share) = share {
        response = response.map(|body| Body::new(crate::answer::Held::new(body, share)));
    }
    if after > 0 {
        let at_after = answer.at_after.map_or_else(|| "-".to_string(), hex::encode);
        if let Ok(value) = HeaderValue::from_str(&at_after) {
            response
                .headers_mut()
                .insert(header::HeaderName::from_static(H_AFTER_HASH), value);
        }
    }
    Ok(response)
}

/// Any unknown route.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!(
        "no such endpoint `{}`; the relay serves {}, {}, {}, the pairing routes under \
         /v1/pairings and {} (docs/protocol.md)",
        quoted(uri.path()),
        protocol::events_path("SPACE"),
        protocol::live_path("SPACE"),
        protocol::PAIRINGS_ROUTE.replace("{space}", "SPACE"),
        protocol::HEALTHZ_PATH,
    ))
}

/// A known route with the wrong method: what that route takes (the `Allow` header says
/// the same to a program).
pub async fn method_not_allowed(uri: Uri) -> ApiError {
    let path = uri.path();
    let takes = if path == protocol::HEALTHZ_PATH {
        "the health check is a GET"
    } else if path.ends_with("/live") {
        "the live socket is opened with a GET (a WebSocket upgrade)"
    } else if path.ends_with("/events") {
        "POST pushes events, GET reads them"
    } else {
        "the pairing routes take the methods docs/protocol.md gives each (see `Allow`)"
    };
    ApiError::MethodNotAllowed(format!("this method is not allowed here: {takes}"))
}

/// Turns the plain 413 of the body limit layer into the JSON error body, in the words of
/// the route's limit (a push's, or a pairing message's).
pub async fn json_too_large(request: Request, next: axum::middleware::Next) -> Response {
    let pairing = request.uri().path().contains("/pairings");
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        return match pairing {
            true => crate::pairing::too_large().into_response(),
            false => ApiError::too_large_body().into_response(),
        };
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_client_text_is_escaped_and_cut_short() {
        assert_eq!(quoted("a\nb"), "a\\nb");
        let long = "x".repeat(100_000);
        assert_eq!(quoted(&long).chars().count(), 65);
        assert!(quoted(&long).ends_with('…'));
        let Err(e) = parse_query(&format!("after={long}")) else {
            panic!("a long value is not a cursor");
        };
        assert!(e.message().len() < 400, "{}", e.message());
    }

    #[test]
    fn the_query_is_after_and_limit_with_defaults_and_a_cap() {
        assert_eq!(parse_query(""), Ok((0, MAX_READ_LIMIT)));
        assert_eq!(parse_query("after=7"), Ok((7, MAX_READ_LIMIT)));
        assert_eq!(parse_query("limit=5&after=9"), Ok((9, 5)));
        assert_eq!(parse_query("limit=99999999999"), Ok((0, MAX_READ_LIMIT)));
        let past_every_cursor = i64::MAX as u64;
        for huge in ["after=9223372036854775808", "after=18446744073709551615"] {
            assert_eq!(parse_query(huge), Ok((past_every_cursor, MAX_READ_LIMIT)));
        }
        for bad in [
            "limit=0",
            "after=",
            "after=+1",
            "after=1e3",
            "x=1",
            "after=1&after=1",
            "after",
        ] {
            assert!(
                matches!(parse_query(bad), Err(ApiError::BadQuery(_))),
                "{bad}"
            );
        }
    }
}
