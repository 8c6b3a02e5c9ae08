//! Short pairing codes: the mailboxes through which two partners' devices run a SPAKE2
//! exchange and hand over a sealed invite code (docs/protocol.md, "Short pairing
//! codes").
//!
//! The relay only carries opaque messages: SPAKE2 messages, a key confirmation and a
//! ciphertext, none of which tells it the code's words or the invite. Mailboxes live in
//! memory only (never in the database, never logged with their contents), each takes
//! exactly one claim (a wrong guess burns it), expires after its lifetime, and their
//! number is capped per space ([`MAX_PER_SPACE`]) and in all ([`MAX_OPEN`]) so that
//! nobody can exhaust the relay's memory with them. Long-polls wait on a
//! [`tokio::sync::watch`] channel per mailbox, for at most
//! [`protocol::PAIRING_MAX_WAIT_SECS`].
//!
//! The mailboxes belong to the router [`crate::app`] builds (an [`Extension`] layer), so
//! a relay process serves one set. Several relay instances behind one address do not
//! share mailboxes: both partners must reach the same instance for a short code to work.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use duet_core::event::SpaceId;
use duet_core::protocol::{
    self, PAIRING_DEFAULT_LIFETIME_SECS, PAIRING_MAX_LIFETIME_SECS, PAIRING_MAX_SEALED_CHARS,
    PAIRING_MAX_WAIT_SECS, PairingClaim, PairingClaimed, PairingOffer, PairingOpen, PairingOpened,
    PairingSeal, PairingSealed,
};
use tokio::sync::watch;

use crate::error::ApiError;
use crate::limits::{ClientAddr, MAX_TRACKED_KEYS, Rate, RateLimiter};
use crate::routes::{Admitted, blocking, read_auth};
use crate::state::AppState;

/// Open mailboxes per space at most.
pub const MAX_PER_SPACE: usize = 4;
/// Open mailboxes on the relay at most.
pub const MAX_OPEN: usize = 10_000;
/// A SPAKE2 message's length: a side byte and an Ed25519 point.
const MSG_BYTES: usize = 33;
/// Random picks per size of nameplate before trying a longer one.
const PICKS: usize = 16;
/// Nameplates grow from 3 to 4 to 5 digits when the shorter ones are crowded.
const NAMEPLATE_RANGES: [u32; 3] = [999, 9_999, duet_core::pairing_code::MAX_NAMEPLATE];

/// How a mailbox ended, once the creator spoke.
#[derive(Debug, Clone)]
enum End {
    /// The creator sealed the long code (base64).
    Sealed(String),
    /// The creator burned the mailbox: the confirmation did not match.
    Burned,
}

/// The partner's claim.
#[derive(Debug, Clone)]
struct Claim {
    msg: String,
    confirm: String,
    token: String,
}

/// One open mailbox.
#[derive(Debug)]
struct Mailbox {
    space: SpaceId,
    msg: String,
    expires: Instant,
    claim: Option<Claim>,
    end: Option<End>,
    /// Bumped on each change, to wake the long-polls.
    changed: watch::Sender<()>,
}

/// The relay's open pairing mailboxes, by nameplate, and how often each address may try
/// a code (read a mailbox's offer or claim it).
#[derive(Debug, Clone)]
pub struct Pairings {
    boxes: Arc<Mutex<HashMap<u32, Mailbox>>>,
    tries: Arc<Option<RateLimiter<IpAddr>>>,
}

/// Tries of a code per address: a partner who joins makes two (the offer, the claim),
/// a few more after a typo; a stranger sweeping the open codes to burn them gets one
/// every half minute once the first 16 are spent.
const TRIES: Rate = Rate {
    per_sec: 1.0 / 30.0,
    burst: 16,
};

impl Default for Pairings {
    fn default() -> Self {
        Pairings {
            boxes: Arc::default(),
            tries: Arc::new(RateLimiter::new("pairing tries", TRIES, MAX_TRACKED_KEYS)),
        }
    }
}

fn no_such(nameplate: u32) -> ApiError {
    ApiError::NoSuchPairing(format!(
        "no pairing code {nameplate} is open on this relay: it expired, was used, or the \
         number is wrong; ask for a new code"
    ))
}

fn used() -> ApiError {
    ApiError::PairingUsed(
        "this pairing code was already claimed; a short code allows one try. Ask for a new \
         code"
            .to_string(),
    )
}

impl Pairings {
    /// Counts a try of a code from `from` (none for an in-process request), or refuses
    /// it with how long to wait.
    fn try_from(&self, from: Option<&Extension<ClientAddr>>) -> Result<(), ApiError> {
        let (Some(limiter), Some(Extension(ClientAddr(Some(ip))))) = (self.tries.as_ref(), from)
        else {
            return Ok(());
        };
        limiter.check(ip).map_err(|wait| ApiError::RateLimited {
            message: format!(
                "too many short codes tried from this address; nothing was done. Retry after \
                 {wait} s, or use the long invite code"
            ),
            retry_after: wait,
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u32, Mailbox>> {
        // A panic while holding the lock leaves the map consistent (every change is one
        // insert or field write): keep serving.
        self.boxes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The open (unexpired) mailbox `nameplate`, removing it if it expired.
    fn get(
        boxes: &mut HashMap<u32, Mailbox>,
        nameplate: u32,
        now: Instant,
    ) -> Result<&mut Mailbox, ApiError> {
        if boxes.get(&nameplate).is_some_and(|b| b.expires <= now) {
            boxes.remove(&nameplate);
        }
        boxes.get_mut(&nameplate).ok_or_else(|| no_such(nameplate))
    }

    /// Opens a mailbox for `space` with the creator's message.
    fn open(
        &self,
        space: SpaceId,
        msg: String,
        lifetime: Duration,
        now: Instant,
    ) -> Result<u32, ApiError> {
        let mut boxes = self.lock();
        boxes.retain(|_, b| b.expires > now);
        let full = |what: &str| {
            ApiError::TooManyPairings(format!(
                "{what} as many short codes open as allowed; use one of them, wait for them to \
                 expire, or use the long invite code"
            ))
        };
        // A burned mailbox (a wrong try) waits only for its claimant to read that: it
        // holds no place, so that codes burned by someone else's tries cannot stop the
        // couple from making new ones.
        let burned = |b: &Mailbox| matches!(b.end, Some(End::Burned));
        if boxes
            .values()
            .filter(|b| b.space == space && !burned(b))
            .count()
            >= MAX_PER_SPACE
        {
            return Err(full("this space has"));
        }
        if boxes.len() >= MAX_OPEN {
            return Err(full("the relay has"));
        }
        let nameplate = pick_nameplate(&boxes).ok_or_else(|| full("the relay has"))?;
        boxes.insert(
            nameplate,
            Mailbox {
                space,
                msg,
                expires: now + lifetime,
                claim: None,
                end: None,
                changed: watch::channel(()).0,
            },
        );
        Ok(nameplate)
    }
}

/// A random free nameplate, as short as the crowd allows.
fn pick_nameplate(boxes: &HashMap<u32, Mailbox>) -> Option<u32> {
    for max in NAMEPLATE_RANGES {
        for _ in 0..PICKS {
            let r = u32::from_be_bytes(duet_core::ids::random_bytes());
            let n = 1 + r % max;
            if !boxes.contains_key(&n) {
                return Some(n);
            }
        }
    }
    None
}

/// The value of `name` in a query string like `wait=25&token=ab`.
fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// How long a long-poll may wait: what it asked, within the protocol's cap and well
/// inside the relay's request timeout.
fn wait_of(state: &AppState, query: &str) -> Result<Duration, ApiError> {
    let asked = match query_value(query, "wait") {
        Some(v) => v
            .parse::<u64>()
            .map_err(|_| ApiError::BadQuery("`wait` must be a number of seconds".to_string()))?,
        None => 0,
    };
    let mut wait = Duration::from_secs(asked.min(PAIRING_MAX_WAIT_SECS));
    if let Some(limit) = state.config().request_timeout {
        wait = wait.min(limit / 2);
    }
    Ok(wait)
}

/// The largest pairing body, far above any honest one (a sealed code and a few short
/// fields): a larger one is refused unread (413), so that a stranger's claim cannot make
/// the relay hold or parse megabytes.
const MAX_PAIRING_BODY: usize = PAIRING_MAX_SEALED_CHARS + 1024;

/// The answer to a pairing body past [`MAX_PAIRING_BODY`].
pub(crate) fn too_large() -> ApiError {
    ApiError::TooLarge(format!(
        "a pairing request's body is at most {MAX_PAIRING_BODY} bytes (a few hundred in \
         practice); send only the fields docs/protocol.md gives it"
    ))
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.len() > MAX_PAIRING_BODY {
        return Err(too_large());
    }
    // An object only: serde would also take the fields as an array, in their order.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::Malformed(
            "the pairing request's body is not a JSON object; see docs/protocol.md".to_string(),
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::Malformed(format!(
            "the pairing request's body is not the expected JSON ({e}); see docs/protocol.md"
        ))
    })
}

/// Whether `s` is standard base64 (padded) of at most `max` characters.
fn is_base64(s: &str, max: usize) -> bool {
    use base64::Engine as _;
    !s.is_empty() && s.len() <= max && base64::engine::general_purpose::STANDARD.decode(s).is_ok()
}

/// Whether `s` is a SPAKE2 message: standard base64 of exactly [`MSG_BYTES`] bytes (the
/// partner's side would otherwise take junk for the other side's message).
fn is_spake_message(s: &str) -> bool {
    use base64::Engine as _;
    s.len() <= 4 * MSG_BYTES.div_ceil(3)
        && base64::engine::general_purpose::STANDARD
            .decode(s)
            .is_ok_and(|m| m.len() == MSG_BYTES)
}

fn bad_message(what: &str) -> ApiError {
    ApiError::Malformed(format!("the pairing request's {what} is malformed"))
}

fn parse_nameplate(text: &str) -> Result<u32, ApiError> {
    text.parse::<u32>()
        .ok()
        .filter(|n| (1..=duet_core::pairing_code::MAX_NAMEPLATE).contains(n))
        .ok_or_else(|| ApiError::NoSuchPairing("a pairing code's number is 1 to 99999".to_string()))
}

/// Checks a member's signed pairing request for `space` (path and query as sent).
async fn authorize(
    state: &AppState,
    method: &'static str,
    space: SpaceId,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let auth = read_auth(headers)?;
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let now = duet_core::ids::now_ms().div_euclid(1000);
    let state = state.clone();
    blocking(move || state.authorize_signed(method, space, &auth, &path, &query, now)).await?;
    Ok(())
}

/// `POST /v1/spaces/{space}/pairings`: a member opens a mailbox.
pub async fn open(
    State(state): State<AppState>,
    Extension(pairings): Extension<Pairings>,
    uri: Uri,
    headers: HeaderMap,
    Admitted(body, _slot): Admitted,
) -> Result<Json<PairingOpened>, ApiError> {
    let space = crate::routes::parse_space(&uri)?;
    authorize(&state, "POST", space, &uri, &headers).await?;
    let open: PairingOpen = json_body(&body)?;
    if !is_spake_message(&open.msg) {
        return Err(bad_message("`msg`"));
    }
    let secs = open
        .lifetime_secs
        .unwrap_or(PAIRING_DEFAULT_LIFETIME_SECS)
        .clamp(1, PAIRING_MAX_LIFETIME_SECS);
    let lifetime = Duration::from_secs(secs);
    let nameplate = pairings.open(space, open.msg, lifetime, Instant::now())?;
    let expires_at = duet_core::ids::now_ms().saturating_add(lifetime.as_millis() as i64);
    Ok(Json(PairingOpened {
        nameplate,
        expires_at,
    }))
}

/// Waits until `ready` finds what it looks for in mailbox `nameplate` (`Ok(Some)`), or
/// `wait` passes (`Ok(None)`); `ready` runs under the lock, after each change.
async fn long_poll<T>(
    pairings: &Pairings,
    nameplate: u32,
    wait: Duration,
    mut ready: impl FnMut(&mut HashMap<u32, Mailbox>) -> Result<Option<T>, ApiError>,
) -> Result<Option<T>, ApiError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let mut changed = {
            let mut boxes = pairings.lock();
            if let Some(found) = ready(&mut boxes)? {
                return Ok(Some(found));
            }
            // Subscribed under the lock: no change can slip between the check and the wait.
            Pairings::get(&mut boxes, nameplate, Instant::now())?
                .changed
                .subscribe()
        };
        let woke = tokio::time::timeout_at(deadline, changed.changed()).await;
        if woke.is_err() {
            return Ok(None);
        }
    }
}

/// `GET /v1/spaces/{space}/pairings/{nameplate}/claim?wait=SECS`: the creator waits
/// for the claim; 204 when none came in time.
pub async fn wait_claim(
    State(state): State<AppState>,
    Extension(pairings): Extension<Pairings>,
    Path((_, nameplate)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let space = crate::routes::parse_space(&uri)?;
    let nameplate = parse_nameplate(&nameplate)?;
    authorize(&state, "GET", space, &uri, &headers).await?;
    let wait = wait_of(&state, uri.query().unwrap_or(""))?;
    let claim = long_poll(&pairings, nameplate, wait, |boxes| {
        let b = Pairings::get(boxes, nameplate, Instant::now())?;
        if b.space != space {
            return Err(no_such(nameplate));
        }
        Ok(b.claim.as_ref().map(|c| PairingClaim {
            msg: c.msg.clone(),
            confirm: c.confirm.clone(),
        }))
    })
    .await?;
    Ok(match claim {
        Some(claim) => Json(claim).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// `POST /v1/spaces/{space}/pairings/{nameplate}/sealed`: the creator seals the long
/// code for the claimant, or burns the mailbox.
pub async fn seal(
    State(state): State<AppState>,
    Extension(pairings): Extension<Pairings>,
    Path((_, nameplate)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    Admitted(body, _slot): Admitted,
) -> Result<StatusCode, ApiError> {
    let space = crate::routes::parse_space(&uri)?;
    let nameplate = parse_nameplate(&nameplate)?;
    authorize(&state, "POST", space, &uri, &headers).await?;
    let seal: PairingSeal = json_body(&body)?;
    let end = match (seal.sealed, seal.abort) {
        (_, true) => End::Burned,
        (Some(sealed), false) if is_base64(&sealed, PAIRING_MAX_SEALED_CHARS) => {
            End::Sealed(sealed)
        }
        _ => return Err(bad_message("`sealed`")),
    };
    let mut boxes = pairings.lock();
    let b = Pairings::get(&mut boxes, nameplate, Instant::now())?;
    if b.space != space {
        return Err(no_such(nameplate));
    }
    if b.claim.is_none() {
        return Err(ApiError::Conflict(
            "nobody claimed this pairing code yet; wait for the claim first".to_string(),
        ));
    }
    if b.end.is_some() {
        return Err(used());
    }
    b.end = Some(end);
    b.changed.send_replace(());
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/pairings/{nameplate}`: the creator's message, for the partner.
pub async fn offer(
    Extension(pairings): Extension<Pairings>,
    from: Option<Extension<ClientAddr>>,
    Path(nameplate): Path<String>,
) -> Result<Json<PairingOffer>, ApiError> {
    pairings.try_from(from.as_ref())?;
    let nameplate = parse_nameplate(&nameplate)?;
    let mut boxes = pairings.lock();
    let b = Pairings::get(&mut boxes, nameplate, Instant::now())?;
    if b.claim.is_some() {
        return Err(used());
    }
    Ok(Json(PairingOffer { msg: b.msg.clone() }))
}

/// `POST /v1/pairings/{nameplate}/claim`: the partner's one claim.
pub async fn claim(
    Extension(pairings): Extension<Pairings>,
    from: Option<Extension<ClientAddr>>,
    Path(nameplate): Path<String>,
    Admitted(body, _slot): Admitted,
) -> Result<Json<PairingClaimed>, ApiError> {
    pairings.try_from(from.as_ref())?;
    let nameplate = parse_nameplate(&nameplate)?;
    let claim: PairingClaim = json_body(&body)?;
    if !is_spake_message(&claim.msg) {
        return Err(bad_message("`msg`"));
    }
    if claim.confirm.len() != 64 || !claim.confirm.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad_message("`confirm`"));
    }
    let mut boxes = pairings.lock();
    let b = Pairings::get(&mut boxes, nameplate, Instant::now())?;
    if b.claim.is_some() {
        return Err(used());
    }
    let token = hex::encode(duet_core::ids::random_bytes::<16>());
    b.claim = Some(Claim {
        msg: claim.msg,
        confirm: claim.confirm,
        token: token.clone(),
    });
    b.changed.send_replace(());
    Ok(Json(PairingClaimed { token }))
}

/// `GET /v1/pairings/{nameplate}/sealed?token=T&wait=SECS`: the partner waits for the
/// sealed long code (the mailbox is gone once it is read); 204 when it did not come in
/// time, 410 `pairing_burned` when the creator burned the mailbox.
pub async fn wait_sealed(
    State(state): State<AppState>,
    Extension(pairings): Extension<Pairings>,
    Path(nameplate): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let nameplate = parse_nameplate(&nameplate)?;
    let query = uri.query().unwrap_or("");
    let token = query_value(query, "token").unwrap_or("").to_string();
    let wait = wait_of(&state, query)?;
    let sealed = long_poll(&pairings, nameplate, wait, |boxes| {
        let b = Pairings::get(boxes, nameplate, Instant::now())?;
        // Only the claimant holds the token; to anyone else the mailbox does not exist.
        if b.claim.as_ref().is_none_or(|c| c.token != token) {
            return Err(no_such(nameplate));
        }
        let Some(end) = b.end.clone() else {
            return Ok(None);
        };
        boxes.remove(&nameplate);
        match end {
            End::Sealed(sealed) => Ok(Some(PairingSealed { sealed })),
            End::Burned => Err(ApiError::PairingBurned(
                "the code did not match: the other device burned it. Check the code with \
                 your partner and ask for a new one"
                    .to_string(),
            )),
        }
    })
    .await?;
    Ok(match sealed {
        Some(sealed) => Json(sealed).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// Registers the pairing routes on the relay's router.
pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    use axum::routing::{get, post};
    // A body declared beyond the pairing limit is refused before it is read, one sent
    // beyond it as soon as it passes (the relay's limit for pushes is 16 MiB).
    let small = || tower_http::limit::RequestBodyLimitLayer::new(MAX_PAIRING_BODY);
    router
        .route(protocol::PAIRINGS_ROUTE, post(open).layer(small()))
        .route(protocol::PAIRING_CLAIM_WAIT_ROUTE, get(wait_claim))
        .route(protocol::PAIRING_SEAL_ROUTE, post(seal).layer(small()))
        .route(protocol::PAIRING_ROUTE, get(offer))
        .route(protocol::PAIRING_CLAIM_ROUTE, post(claim).layer(small()))
        .route(protocol::PAIRING_SEALED_ROUTE, get(wait_sealed))
        .layer(Extension(Pairings::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(n: u8) -> SpaceId {
        SpaceId([n; 16])
    }

    #[test]
    fn a_space_gets_at_most_four_open_mailboxes_and_expired_ones_free_their_place() {
        let p = Pairings::default();
        let now = Instant::now();
        let minute = Duration::from_secs(60);
        let mut numbers = Vec::new();
        for _ in 0..MAX_PER_SPACE {
            numbers.push(p.open(space(1), "QQ==".into(), minute, now).expect("opens"));
        }
        assert!(numbers.iter().all(|n| (1..=999).contains(n)), "{numbers:?}");
        let refused = p.open(space(1), "QQ==".into(), minute, now);
        assert!(
            matches!(refused, Err(ApiError::TooManyPairings(_))),
            "{refused:?}"
        );
        assert!(
            p.open(space(2), "QQ==".into(), minute, now).is_ok(),
            "another space"
        );
        let later = now + minute + Duration::from_secs(1);
        assert!(
            p.open(space(1), "QQ==".into(), minute, later).is_ok(),
            "expired freed"
        );
        let mut boxes = p.lock();
        assert!(matches!(
            Pairings::get(&mut boxes, numbers[0], later),
            Err(ApiError::NoSuchPairing(_))
        ));
    }

    #[test]
    fn codes_burned_by_wrong_tries_free_their_place_for_new_ones() {
        let p = Pairings::default();
        let now = Instant::now();
        let minute = Duration::from_secs(60);
        let numbers: Vec<u32> = (0..MAX_PER_SPACE)
            .map(|_| p.open(space(1), "QQ==".into(), minute, now).expect("opens"))
            .collect();
        // A stranger claimed each with junk; the couple's device burned them.
        for n in &numbers {
            let mut boxes = p.lock();
            let b = Pairings::get(&mut boxes, *n, now).expect("open");
            b.end = Some(End::Burned);
        }
        assert!(
            p.open(space(1), "QQ==".into(), minute, now).is_ok(),
            "a burned code holds no place"
        );
    }

    #[test]
    fn nameplates_grow_longer_when_the_short_ones_are_taken() {
        let p = Pairings::default();
        let now = Instant::now();
        {
            let mut boxes = p.lock();
            for n in 1..=999 {
                boxes.insert(
                    n,
                    Mailbox {
                        space: SpaceId([(n % 250) as u8; 16]),
                        msg: String::new(),
                        expires: now + Duration::from_secs(60),
                        claim: None,
                        end: None,
                        changed: watch::channel(()).0,
                    },
                );
            }
        }
        let n = p
            .open(space(255), "QQ==".into(), Duration::from_secs(60), now)
            .expect("opens");
        assert!(n >= 1000, "every 3-digit number is taken: {n}");
    }

    #[test]
    fn queries_read_their_values() {
        assert_eq!(query_value("wait=25&token=ab", "token"), Some("ab"));
        assert_eq!(query_value("wait=25", "token"), None);
        assert!(is_base64("QUJD+w==", 128));
        assert!(!is_base64("QUJD\"", 128));
        assert!(!is_base64("", 128));
    }

    #[test]
    fn a_spake_message_is_base64_of_33_bytes_and_nothing_else() {
        use base64::Engine as _;
        let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
        assert!(is_spake_message(&b64(33)));
        for junk in [b64(32), b64(34), b64(96), "x".to_string(), String::new()] {
            assert!(!is_spake_message(&junk), "{junk}");
        }
    }
}
