//! The relay's protective limits: its [`Config`], token-bucket [`RateLimiter`]s with a
//! bounded memory, and the [`guard`] middleware that every request passes first.
//!
//! The guard, outermost after tracing, does in order:
//!
//! 1. finds the client address (the TCP peer, or the configured header's) and leaves it
//!    in the request as a [`ClientAddr`] for the handlers;
//! 2. the per-client-address rate limit (IPv6 addresses per /64; not for `/healthz`),
//!    answering 429 `rate_limited` with `Retry-After`;
//! 3. the per-address limit on requests in flight (429 `rate_limited`, `Retry-After: 1`),
//!    so that one client's slow requests cannot take the relay's whole budget;
//! 4. the global limit on requests in flight, shedding the excess at once with 503
//!    `overloaded` and `Retry-After: 1` (no queue builds up behind a flood). `/healthz`
//!    is outside both in-flight limits: it answers whatever else is stuck;
//! 5. the request timeout around everything after it, body upload included, answering
//!    408 `timeout`;
//! 6. gives the slot back once the answer is made: a read's page still going out holds
//!    its share of the memory until it has gone out ([`crate::answer`]), and the socket
//!    holds the client to the minimum rate while the relay's writes wait on it
//!    ([`crate::paced`]).
//!
//! The per-device limit is applied where the device is known and authenticated: after a
//! read's signature verifies, and after a push's events are decoded (their signatures
//! verified), in [`crate::state`]. A header naming someone else's device therefore
//! cannot spend that device's allowance. The caps on connections per address are
//! applied when a connection is accepted ([`crate::serve_state`]), those on live
//! sockets when one opens ([`crate::live`]), and the minimum body rate while a push's
//! body is read ([`crate::body`]).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::caps::{Counts, Held};
use crate::error::ApiError;
use crate::state::AppState;

/// How many keys (addresses or devices) a rate limiter tracks at most. Past it, buckets
/// that are full again (idle keys) are dropped, then the least recently used ones.
pub const MAX_TRACKED_KEYS: usize = 65_536;

/// How often (at most) a limiter logs how many requests it refused.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// A token-bucket rate: `per_sec` requests per second on average, up to `burst` at once.
/// A `per_sec` of 0 (or less, or not a number) turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second (fractions allowed); 0 = no limit.
    pub per_sec: f64,
    /// Bucket size: requests allowed at once after an idle period (at least 1).
    pub burst: u32,
}

impl Rate {
    /// No limit.
    pub const OFF: Rate = Rate {
        per_sec: 0.0,
        burst: 0,
    };
}

/// Everything an operator can tune. [`Config::default`] is what the binary uses when no
/// flag is given; every limit has an "off" value (0, or `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// A client must send a request's complete headers within this time (also the idle
    /// time allowed on a kept-alive connection); `None` = no limit.
    pub header_timeout: Option<Duration>,
    /// A request, body upload included, must be answered within this time; `None` = no
    /// limit.
    pub request_timeout: Option<Duration>,
    /// Requests handled at once; more are refused with 503 `overloaded`. 0 = no limit.
    pub max_in_flight: usize,
    /// Requests handled at once per client address; more are refused with 429
    /// `rate_limited`. 0 = no limit.
    pub max_in_flight_per_ip: usize,
    /// Open connections at once, live sockets included; more wait in the listen
    /// backlog. 0 = no limit.
    pub max_connections: usize,
    /// Open connections at once per TCP peer address (live sockets included); more are
    /// closed at once. Not applied with `client_ip_header` (every connection then comes
    /// from the proxy). 0 = no limit.
    pub max_connections_per_ip: usize,
    /// Live sockets open at once in all; more are refused with 429. 0 = no limit.
    pub max_live_sockets: usize,
    /// Live sockets open at once per client address. 0 = no limit.
    pub max_live_per_ip: usize,
    /// Live sockets open at once per space. 0 = no limit.
    pub max_live_per_space: usize,
    /// A push body must arrive at this many bytes per second at least, after
    /// `body_grace`; a slower one is cut off with 408 `timeout`. 0 = no minimum.
    pub min_body_rate: u64,
    /// How far (in time) a body may fall behind `min_body_rate`.
    pub body_grace: Duration,
    /// Per client address.
    pub rate_per_ip: Rate,
    /// Per device: its reads, and its pushed events that extend its chain (a copy of an
    /// event the relay holds, replayed by anyone, is charged to the sender's address).
    pub rate_per_device: Rate,
    /// Signatures per second per client address: every event a push carries is counted
    /// against its address before its signature is verified. A push larger than the
    /// burst goes through from a full bucket and leaves it in debt, so an address's
    /// long-run rate is `per_sec` whatever its pushes hold.
    pub verify_per_ip: Rate,
    /// When set, the client address is taken from this request header (the last address
    /// in it) instead of the TCP peer. Only for a relay behind a proxy that sets it.
    pub client_ip_header: Option<HeaderName>,
    /// Events stored per space (not fork evidence); 0 = no limit.
    pub space_max_events: u64,
    /// Bytes of events stored per space (not fork evidence); 0 = no limit.
    pub space_max_bytes: u64,
    /// Size cap of the database file, enforced by SQLite (`PRAGMA max_page_count`);
    /// 0 = no limit. Space creation is refused once the database is past
    /// [`crate::creation::CREATION_HEADROOM_PERCENT`] of it, so that existing spaces keep
    /// room to push.
    pub max_db_bytes: u64,
    /// Anyone may create spaces (no creation token needed). Off by default: a relay
    /// reachable from the internet would otherwise store any stranger's data.
    pub open_registration: bool,
    /// The creation tokens this relay accepts (see [`crate::creation`]).
    pub create_tokens: crate::creation::CreateTokens,
    /// Spaces created per client address per day; 0 = no limit.
    pub max_creations_per_ip: u64,
    /// Spaces created with one token, ever; 0 = no limit.
    pub max_creations_per_token: u64,
    /// Space states kept in memory (a few KB each); the least recently used beyond it
    /// are folded again from the database when next needed. 0 = no limit.
    pub space_cache: usize,
    /// Memory for pushes handled at once, in bytes: each push is counted at
    /// [`PUSH_MEMORY_FACTOR`] times its body (the body, the events decoded from it and
    /// their bookkeeping); one that does not fit is refused at once with 503
    /// `overloaded`. 0 = no limit.
    pub max_push_memory: u64,
}

/// How many times its body a push is counted against [`Config::max_push_memory`]: a
/// body of the smallest events held about four times its size once decoded (measured:
/// 32 pushes of 16 MiB took 2.1 GB).
pub const PUSH_MEMORY_FACTOR: u64 = 4;

/// How many times its size a read's page is counted against [`Config::max_push_memory`]
/// until it has gone out: the events read and the page framed from them.
pub const PAGE_MEMORY_FACTOR: u64 = 2;

/// The default [`Config::max_push_memory`]: 1 GiB, sixteen bodies of the largest size
/// at once, and thousands of couples' ordinary pushes.
pub const DEFAULT_PUSH_MEMORY: u64 = 1024 * 1024 * 1024;

/// Space states the relay keeps in memory by default: about 40 MB of typical couples'
/// spaces (a couple's space with its few devices is about 4 KB).
pub const DEFAULT_SPACE_CACHE: usize = 10_000;

/// The default signature budget of a client address: about a sixth of one core's
/// `verify_strict` rate on a small machine, so that a handful of addresses replaying
/// signed bodies cannot keep the relay's cores busy, while a device handing back a
/// whole history (96,000 events in a 16 MiB push) waits some 15 s before the next push.
pub const DEFAULT_VERIFY_PER_IP: Rate = Rate {
    per_sec: 5_000.0,
    burst: 20_000,
};

impl Default for Config {
    fn default() -> Self {
        Config {
            header_timeout: Some(Duration::from_secs(10)),
            request_timeout: Some(Duration::from_secs(60)),
            max_in_flight: 256,
            max_in_flight_per_ip: 32,
            max_connections: 4096,
            max_connections_per_ip: 64,
            max_live_sockets: 3072,
            max_live_per_ip: 32,
            max_live_per_space: 32,
            min_body_rate: 4096,
            body_grace: Duration::from_secs(5),
            rate_per_ip: Rate {
                per_sec: 50.0,
                burst: 100,
            },
            rate_per_device: Rate {
                per_sec: 20.0,
                burst: 40,
            },
            verify_per_ip: DEFAULT_VERIFY_PER_IP,
            client_ip_header: None,
            space_max_events: 1_000_000,
            space_max_bytes: 1024 * 1024 * 1024,
            max_db_bytes: 0,
            open_registration: false,
            create_tokens: crate::creation::CreateTokens::default(),
            max_creations_per_ip: 16,
            max_creations_per_token: 256,
            space_cache: DEFAULT_SPACE_CACHE,
            max_push_memory: DEFAULT_PUSH_MEMORY,
        }
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| {
        m.clear_poison();
        poisoned.into_inner()
    })
}

/// Counts refusals and logs a summary at most every [`REPORT_EVERY`], so that a flood
/// does not flood the log too. The first refusal is logged at once; those after it within
/// the period are logged when it ends, whether or not another refusal comes (the count
/// waited for the next one, so an operator saw "refused=1" through a whole flood).
#[derive(Debug, Default)]
pub(crate) struct Tally(Arc<Mutex<Counted>>);

#[derive(Debug, Default)]
struct Counted {
    refused: u64,
    last_report: Option<Instant>,
    report_pending: bool,
    /// The limit counted, for the report said when the relay stops.
    what: Option<&'static str>,
}

/// Refusals counted since the last report when the relay stops are said then (they
/// waited for a period the stop cut short, and were never logged).
impl Drop for Counted {
    fn drop(&mut self) {
        if let Some(what) = self.what.filter(|_| self.refused > 0) {
            self.report(what, Instant::now());
        }
    }
}

impl Counted {
    fn report(&mut self, what: &'static str, now: Instant) {
        tracing::warn!(
            limit = what,
            refused = self.refused,
            "requests refused by a limit since the last report"
        );
        self.refused = 0;
        self.last_report = Some(now);
    }
}

impl Tally {
    pub(crate) fn note(&self, what: &'static str, now: Instant) {
        let mut c = lock(&self.0);
        c.refused += 1;
        c.what = Some(what);
        let last = match c.last_report {
            Some(t) if now.saturating_duration_since(t) < REPORT_EVERY => t,
            _ => return c.report(what, now),
        };
        if c.report_pending {
            return;
        }
        // Outside a runtime (a test's direct call) the count waits for the next refusal.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        c.report_pending = true;
        let counted = Arc::clone(&self.0);
        runtime.spawn(async move {
            tokio::time::sleep_until((last + REPORT_EVERY).into()).await;
            let mut c = lock(&counted);
            c.report_pending = false;
            if c.refused > 0 {
                c.report(what, Instant::now());
            }
        });
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Debug)]
struct Buckets<K> {
    map: HashMap<K, Bucket>,
    tally: Tally,
}

/// Token buckets per key, in bounded memory: at most `max_keys` keys are tracked.
#[derive(Debug)]
pub struct RateLimiter<K> {
    name: &'static str,
    per_sec: f64,
    burst: f64,
    max_keys: usize,
    buckets: Mutex<Buckets<K>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter at `rate`, or `None` when the rate is off. `name` appears in the log.
    pub fn new(name: &'static str, rate: Rate, max_keys: usize) -> Option<RateLimiter<K>> {
        // `!(x > 0)` is also true for NaN.
        if !(rate.per_sec > 0.0 && rate.per_sec.is_finite()) {
            return None;
        }
        Some(RateLimiter {
            name,
            per_sec: rate.per_sec,
            burst: f64::from(rate.burst.max(1)),
            max_keys: max_keys.max(1),
            buckets: Mutex::new(Buckets {
                map: HashMap::new(),
                tally: Tally::default(),
            }),
        })
    }

    /// Takes one token for `key` now; `Err(seconds)` says when to retry.
    pub fn check(&self, key: &K) -> Result<(), u64> {
        self.check_all_at(std::slice::from_ref(key), Instant::now())
    }

    /// Takes one token for each of `keys` at `now`, or none at all if any of them has no
    /// token left; `Err(seconds)` is the wait until all of them would have one.
    pub fn check_all_at(&self, keys: &[K], now: Instant) -> Result<(), u64> {
        self.take_all_at(keys, 1, now)
    }

    /// Takes `cost` tokens for `key` at `now`. A cost above the burst is allowed from a
    /// full bucket and leaves it in debt (paid back at the rate before the next), so one
    /// large request always goes through and the long-run rate still holds.
    pub fn take_at(&self, key: &K, cost: u64, now: Instant) -> Result<(), u64> {
        self.take_all_at(std::slice::from_ref(key), cost, now)
    }

    fn take_all_at(&self, keys: &[K], cost: u64, now: Instant) -> Result<(), u64> {
        let cost = cost as f64;
        let needed = cost.min(self.burst);
        let mut b = lock(&self.buckets);
        let mut wait = 0.0f64;
        for key in keys {
            let tokens = b.map.get(key).map_or(self.burst, |x| self.refill(x, now));
            if tokens < needed {
                wait = wait.max((needed - tokens) / self.per_sec);
            }
        }
        if wait > 0.0 {
            b.tally.note(self.name, now);
            // Whole seconds, rounded up (Retry-After has no fractions).
            return Err((wait.ceil() as u64).max(1));
        }
        for key in keys {
            if !b.map.contains_key(key) && b.map.len() >= self.max_keys {
                self.make_room(&mut b.map, now);
            }
            let tokens = b.map.get(key).map_or(self.burst, |x| self.refill(x, now));
            b.map.insert(
                key.clone(),
                Bucket {
                    tokens: tokens - cost,
                    last: now,
                },
            );
        }
        Ok(())
    }

    fn refill(&self, b: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        (b.tokens + elapsed * self.per_sec).min(self.burst)
    }

    /// Drops buckets that are full again (forgetting them changes nothing); if that is
    /// not enough, the least recently used, down to three quarters of the cap, so the
    /// cost of a sweep is spread over many insertions.
    fn make_room(&self, map: &mut HashMap<K, Bucket>, now: Instant) {
        map.retain(|_, b| self.refill(b, now) < self.burst);
        let target = self.max_keys - self.max_keys / 4;
        if map.len() < self.max_keys {
            return;
        }
        let mut by_age: Vec<(Instant, K)> = map.iter().map(|(k, b)| (b.last, k.clone())).collect();
        by_age.sort_unstable_by_key(|(last, _)| *last);
        let excess = map.len().saturating_sub(target);
        for (_, key) in by_age.into_iter().take(excess) {
            map.remove(&key);
        }
    }

    /// How many keys are tracked now.
    pub fn tracked(&self) -> usize {
        lock(&self.buckets).map.len()
    }
}

/// The client address of a request: the configured header's last address when set and
/// valid, else the TCP peer; `None` for a request that did not come over TCP (in-process).
pub fn client_ip(
    header: Option<&HeaderName>,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Option<IpAddr> {
    let from_header = header.and_then(|name| {
        let value = headers.get_all(name).iter().next_back()?.to_str().ok()?;
        let last = value.rsplit(',').next()?.trim();
        last.parse::<IpAddr>()
            .ok()
            .or_else(|| last.parse::<SocketAddr>().ok().map(|s| s.ip()))
    });
    from_header.or(peer.map(|p| p.ip()))
}

/// The key of an address's bucket: an IPv4 address as is (also when IPv4-mapped), an
/// IPv6 address by its /64 prefix, since one IPv6 client usually holds a whole /64.
pub fn bucket_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from_bits(
                v6.to_bits() & !u128::from(u64::MAX),
            )),
        },
    }
}

/// A semaphore of `n` permits (at most Tokio's maximum, so a huge flag cannot panic).
pub fn semaphore(n: usize) -> tokio::sync::Semaphore {
    tokio::sync::Semaphore::new(n.min(tokio::sync::Semaphore::MAX_PERMITS))
}

/// The client address of a request (the key of its per-address limits, see
/// [`bucket_key`]), left in the request's extensions by [`guard`]; `None` for a request
/// that did not come over TCP (in-process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

/// The limits shared by all requests.
#[derive(Debug)]
pub struct Guards {
    ip: Option<RateLimiter<IpAddr>>,
    in_flight: Option<Arc<tokio::sync::Semaphore>>,
    in_flight_per_ip: Option<Counts<IpAddr>>,
    overloaded: Mutex<Tally>,
    busy_address: Mutex<Tally>,
}

/// One request's slot among those in flight, given back when dropped.
pub struct InFlight {
    _address: Option<Held<IpAddr>>,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Guards {
    /// A slot for a request from `key` among those in flight: 429 when its address has
    /// as many as it may, 503 when the relay has.
    pub fn enter(&self, key: Option<IpAddr>) -> Result<InFlight, ApiError> {
        let address = match (&self.in_flight_per_ip, key) {
            (Some(counts), Some(ip)) => match counts.try_hold(ip) {
                Ok(held) => Some(held),
                Err(full) => {
                    lock(&self.busy_address).note("in-flight per address", Instant::now());
                    return Err(ApiError::RateLimited {
                        message: format!(
                            "too many requests in flight from this address ({}, at most {}); \
                             wait for an answer before sending more",
                            full.held, full.cap
                        ),
                        retry_after: 1,
                    });
                }
            },
            _ => None,
        };
        let permit = match &self.in_flight {
            Some(sem) => match sem.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    lock(&self.overloaded).note("in-flight", Instant::now());
                    return Err(ApiError::overloaded());
                }
            },
            None => None,
        };
        Ok(InFlight {
            _address: address,
            _permit: permit,
        })
    }

    /// The guards for `config`.
    pub fn new(config: &Config) -> Guards {
        Guards {
            ip: RateLimiter::new("per-address", config.rate_per_ip, MAX_TRACKED_KEYS),
            in_flight: (config.max_in_flight > 0)
                .then(|| Arc::new(semaphore(config.max_in_flight))),
            in_flight_per_ip: Counts::new(config.max_in_flight_per_ip),
            overloaded: Mutex::new(Tally::default()),
            busy_address: Mutex::new(Tally::default()),
        }
    }
}

/// The middleware in front of every route: client address, per-address rate limit,
/// per-address and global in-flight limits (not for `/healthz`; for a `POST`, taken once
/// its body is in), request timeout.
pub async fn guard(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let config = state.config();
    let guards = state.guards();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let key = client_ip(config.client_ip_header.as_ref(), request.headers(), peer).map(bucket_key);
    request.extensions_mut().insert(ClientAddr(key));
    // The health check is outside every budget: it must answer while clients are
    // refused, so that a monitor tells an overloaded relay from a dead one.
    let health = request.uri().path() == duet_core::protocol::HEALTHZ_PATH;
    if let Some(limiter) = &guards.ip
        && !health
        && let Some(ip) = key
        && let Err(retry_after) = limiter.check(&ip)
    {
        return ApiError::rate_limited("this address", retry_after).into_response();
    }
    // A request with a body (a push, a pairing message) takes its slot once the body
    // is in (`routes::Admitted`, `routes::push_events`): a slow body holds a connection,
    // which is capped per address, never a slot of the requests being worked on.
    let slot = if health || request.method() == axum::http::Method::POST {
        None
    } else {
        match guards.enter(key) {
            Ok(slot) => Some(slot),
            Err(refusal) => return refusal.into_response(),
        }
    };
    let push =
        request.method() == axum::http::Method::POST && request.uri().path().ends_with("/events");
    let response = match config.request_timeout {
        Some(limit) => match tokio::time::timeout(limit, next.run(request)).await {
            Ok(response) => response,
            Err(_) => ApiError::timeout(limit, push).into_response(),
        },
        None => next.run(request).await,
    };
    // The slot is given back with the answer made: a page still going out to a slow
    // reader holds its share of the memory (`routes::read_events`) and its connection
    // (both capped per address), not a slot of the requests being worked on. Held until
    // the page had gone out, 256 slow readers from 8 addresses took every slot, and
    // every couple's sync was refused for as long as they read.
    drop(slot);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_sec: f64, burst: u32, max_keys: usize) -> RateLimiter<u32> {
        RateLimiter::new("test", Rate { per_sec, burst }, max_keys).expect("a limit")
    }

    #[test]
    fn a_cost_above_the_burst_passes_from_a_full_bucket_and_the_debt_is_waited_out() {
        let l = limiter(1000.0, 100, 10);
        let t0 = Instant::now();
        assert_eq!(l.take_at(&1, 30, t0), Ok(()));
        // 70 left: a cost of 500 needs a full bucket (100), 30 more tokens.
        assert_eq!(l.take_at(&1, 500, t0), Err(1));
        let full = t0 + Duration::from_millis(30);
        assert_eq!(l.take_at(&1, 500, full), Ok(()));
        // 400 in debt: a single token is 0.401 s away.
        assert_eq!(l.take_at(&1, 1, full + Duration::from_millis(399)), Err(1));
        assert_eq!(l.take_at(&1, 1, full + Duration::from_millis(402)), Ok(()));
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let l = limiter(2.0, 3, 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check_all_at(&[1], t0), Ok(()));
        }
        assert_eq!(l.check_all_at(&[1], t0), Err(1));
        // Another key has its own bucket.
        assert_eq!(l.check_all_at(&[2], t0), Ok(()));
        // Half a second later one token is back (2 per second).
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(l.check_all_at(&[1], t1), Ok(()));
        assert_eq!(l.check_all_at(&[1], t1), Err(1));
        // A slow rate asks for a longer wait, in whole seconds rounded up.
        let slow = limiter(0.1, 1, 10);
        assert_eq!(slow.check_all_at(&[7], t0), Ok(()));
        assert_eq!(slow.check_all_at(&[7], t0), Err(10));
        let t2 = t0 + Duration::from_secs(4);
        assert_eq!(slow.check_all_at(&[7], t2), Err(6));
        let l = limiter(1.0, 0, 10);
        assert_eq!(l.check_all_at(&[1], t0), Ok(()), "a burst of 0 counts as 1");
        assert_eq!(l.check_all_at(&[1], t0), Err(1));
        for off in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let rate = Rate {
                per_sec: off,
                burst: 5,
            };
            assert!(RateLimiter::<u32>::new("off", rate, 10).is_none(), "{off}");
        }
        assert!(RateLimiter::<u32>::new("off", Rate::OFF, 10).is_none());
    }

    #[test]
    fn several_keys_are_charged_together_or_not_at_all() {
        let l = limiter(1.0, 1, 10);
        let t0 = Instant::now();
        assert_eq!(l.check_all_at(&[1], t0), Ok(()));
        // Key 1 is empty: key 2 is not charged either.
        assert_eq!(l.check_all_at(&[1, 2], t0), Err(1));
        assert_eq!(l.check_all_at(&[2], t0), Ok(()));
    }

    #[test]
    fn the_number_of_tracked_keys_stays_under_the_cap_under_a_flood_of_keys() {
        let cap = 100;
        let l = limiter(1.0, 5, cap);
        let t0 = Instant::now();
        // Every key is busy (not full again): eviction has to drop the oldest.
        for key in 0..10_000u32 {
            let now = t0 + Duration::from_micros(u64::from(key));
            assert_eq!(l.check_all_at(&[key], now), Ok(()));
            assert!(l.tracked() <= cap, "{} keys after {key}", l.tracked());
        }
        // The newest keys are still tracked and still limited.
        let now = t0 + Duration::from_micros(10_000);
        for _ in 0..4 {
            assert_eq!(l.check_all_at(&[9_999], now), Ok(()));
        }
        assert_eq!(l.check_all_at(&[9_999], now), Err(1));
        // Idle keys (full buckets again) are dropped first, all at once.
        let later = now + Duration::from_secs(60);
        assert_eq!(l.check_all_at(&[20_000], later), Ok(()));
        assert_eq!(l.tracked(), 1);
    }

    #[test]
    fn the_client_address_comes_from_the_configured_header_or_the_peer() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let name = HeaderName::from_static("x-forwarded-for");
        let mut headers = HeaderMap::new();
        headers.insert(
            &name,
            "198.51.100.1, 203.0.113.9".parse().expect("header value"),
        );
        assert_eq!(
            client_ip(Some(&name), &headers, Some(peer)),
            "203.0.113.9".parse().ok()
        );
        // Without the option the header is ignored.
        assert_eq!(client_ip(None, &headers, Some(peer)), Some(peer.ip()));
        // A junk header falls back to the peer.
        headers.insert(&name, "not an address".parse().expect("header value"));
        assert_eq!(
            client_ip(Some(&name), &headers, Some(peer)),
            Some(peer.ip())
        );
        headers.insert(&name, "[2001:db8::1]:443".parse().expect("header value"));
        assert_eq!(
            client_ip(Some(&name), &headers, None),
            "2001:db8::1".parse().ok()
        );
        assert_eq!(client_ip(None, &HeaderMap::new(), None), None);
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64_and_mapped_ipv4_is_ipv4() {
        let key = |s: &str| bucket_key(s.parse().expect("an address"));
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::2"));
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2::"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));
    }
}
