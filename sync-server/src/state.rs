//! The relay's shared state and its two operations, push and read, independent of HTTP.
//!
//! - Pushes are decoded (signatures verified) by the caller's thread, charged to their
//!   authors' rate limits, then handed to the single writer thread ([`crate::writer`]),
//!   which owns the write connection and commits concurrent pushes in groups, one
//!   durable transaction per group, and answers each push once its group is on disk.
//! - One reader connection for pages (WAL lets it read while the writer commits).
//! - Each space's [`SpaceState`] (members, invites, chain heads) and usage (events and
//!   bytes stored, against the per-space quotas of the [`Config`]) cached in memory,
//!   built on first use by folding the space's stored events in cursor order, and
//!   replaced only after a group has committed. Only the writer thread changes it.
//! - A replay cache of read nonces, pruned once their timestamp leaves the window.
//! - The per-device rate limiter, charged once a device is authenticated.
//!
//! [`AppState::push`] and [`AppState::read`] block (SQLite, signature checks, waiting
//! for the writer): call them from `tokio::task::spawn_blocking` or a plain thread. The
//! HTTP handler instead verifies with [`AppState::prepare_push`] on the blocking pool and
//! awaits the writer with [`AppState::submit`], so no thread waits on a commit.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use duet_core::event::SpaceId;
use duet_core::identity::DeviceKey;
use duet_core::membership::{AdmitError, SpaceState};
use duet_core::protocol::{MAX_BODY_BYTES, PushResponse, READ_WINDOW_SECS, ReadAuth};
use tokio::sync::oneshot;

use crate::caps::{Counts, Held};
pub use crate::creation::Credential;
use crate::error::ApiError;
use crate::limits::{Config, Guards, MAX_TRACKED_KEYS, RateLimiter, Tally};
use crate::live::Live;
use crate::store::postgres::PgStore;
use crate::store::{Location, Reader, Store, StoreError};
use crate::writer::{Job, SpaceCache, SpaceStates, Writer, lock, writer_gone};

mod prepare;
mod replay;

pub use prepare::INLINE_VERIFY_BYTES;
use replay::ReplayCache;

pub use crate::writer::{PreparedPush, WriterStats};

/// Live sockets one device may hold open at once (a device watches each of its spaces).
pub const MAX_LIVE_PER_DEVICE: usize = 8;

/// The caps on open live sockets: per device, per person of a space, per space, per
/// client address, in all.
struct LiveCaps {
    per_device: Option<Counts<DeviceKey>>,
    /// Half a space's sockets (rounded up) per person in it: one partner's devices
    /// cannot take the socket the other's device needs.
    per_person: Option<Counts<(SpaceId, [u8; 16])>>,
    per_space: Option<Counts<SpaceId>>,
    per_ip: Option<Counts<IpAddr>>,
    total: Option<Counts<()>>,
    /// Refusals, logged as a summary (a flood of them must not flood the log).
    refused: Mutex<Tally>,
}

impl LiveCaps {
    fn new(config: &Config) -> LiveCaps {
        LiveCaps {
            per_device: Counts::new(MAX_LIVE_PER_DEVICE),
            per_person: Counts::new(config.max_live_per_space.div_ceil(2)),
            per_space: Counts::new(config.max_live_per_space),
            per_ip: Counts::new(config.max_live_per_ip),
            total: Counts::new(config.max_live_sockets),
            refused: Mutex::new(Tally::default()),
        }
    }
}

/// One open live socket, counted against each cap until dropped.
pub(crate) struct LiveSlot {
    _device: Option<Held<DeviceKey>>,
    _person: Option<Held<(SpaceId, [u8; 16])>>,
    _space: Option<Held<SpaceId>>,
    _ip: Option<Held<IpAddr>>,
    _total: Option<Held<()>>,
}

/// Takes one unit of `counts` for `key` (nothing when there is no cap), or the 429 that
/// names which cap is full.
fn hold<K: std::hash::Hash + Eq + Clone>(
    counts: &Option<Counts<K>>,
    key: K,
    what: &str,
) -> Result<Option<Held<K>>, ApiError> {
    let Some(counts) = counts else {
        return Ok(None);
    };
    counts
        .try_hold(key)
        .map(Some)
        .map_err(|full| ApiError::RateLimited {
            message: format!("too many live connections {what} ({full}); close one or retry later"),
            retry_after: LIVE_RETRY_AFTER_SECS,
        })
}

/// The `Retry-After` of a refused live socket: sockets are long-lived, so a slot frees
/// up slowly.
const LIVE_RETRY_AFTER_SECS: u64 = 30;

/// The relay's state, shared by every request handler. Cheap to clone. When the last
/// clone is dropped, the writer thread finishes the pushes already queued and stops.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

struct Shared {
    writer: Writer,
    /// With PostgreSQL: the thread hearing other instances' commits (stops when dropped).
    _listener: Option<crate::store::postgres::ListenerGuard>,
    live: Live,
    live_caps: LiveCaps,
    reader: Mutex<Box<dyn Reader>>,
    spaces: SpaceCache,
    nonces: Mutex<ReplayCache>,
    config: Config,
    guards: Guards,
    devices: Option<RateLimiter<DeviceKey>>,
    /// Signatures verified per client address (`Config::verify_per_ip`).
    signatures: Option<RateLimiter<IpAddr>>,
    /// Cores this process may run on (a batch's signatures are shared out among them).
    cores: usize,
    /// The memory pushes may hold at once (`Config::max_push_memory`).
    push_memory: Option<crate::push_memory::PushMemory>,
}

/// A page served to a reader.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadAnswer {
    /// `(cursor, event bytes)` in cursor order.
    pub events: Vec<(u64, Vec<u8>)>,
    /// Whether more events wait after the page.
    pub more: bool,
    /// The space's newest cursor (0 if none), from the same snapshot as the page.
    pub newest: u64,
    /// Fork attempts refused in this space (evidence kept, and attempts only counted).
    pub forks: u64,
    /// The hash of the event stored at the cursor the page starts after (`None` when
    /// none is, or when the page starts at 0).
    pub at_after: Option<[u8; 32]>,
}

/// A verified read request.
#[derive(Debug, Clone)]
pub struct ReadRequest {
    /// The signed headers.
    pub auth: ReadAuth,
    /// The request path, exactly as sent.
    pub path: String,
    /// The raw query string, exactly as sent ("" when absent).
    pub query: String,
    /// Events after this cursor.
    pub after: u64,
    /// At most this many events.
    pub limit: u32,
}

impl AppState {
    /// Opens the relay database at `db` (a SQLite file, or a PostgreSQL URL; created
    /// and migrated as needed) with `config`, and starts its writer thread (and, with
    /// PostgreSQL, the thread that hears other instances' commits). The relay's one
    /// constructor: `db.into()` makes a [`Location`] of a path.
    pub fn open(db: &Location, config: Config) -> Result<AppState, StoreError> {
        let live = Live::default();
        let (writer, reader, listener): (Writer, Box<dyn Reader>, _) = match db {
            Location::Sqlite(path) => {
                let store = Store::open(path)?;
                if config.max_db_bytes > 0 {
                    let pages = store.set_max_bytes(config.max_db_bytes)?;
                    let size = store.size_bytes()?;
                    if size > config.max_db_bytes {
                        // SQLite keeps a cap below the file at the file's size: a cap
                        // mistyped that low refuses every push from the start.
                        tracing::warn!(
                            max_db_bytes = config.max_db_bytes,
                            size,
                            "--max-db-bytes is below the database's size, which it keeps: \
                             pushes that need room are refused (507 storage_full) until the \
                             cap is raised above the size"
                        );
                    } else {
                        tracing::info!(
                            max_db_bytes = config.max_db_bytes,
                            pages,
                            "database size capped"
                        );
                    }
                }
                let reader = Box::new(Store::open(path)?);
                let writer = Writer::start(
                    store,
                    SpaceStates::shared(config.space_cache),
                    config.clone(),
                    live.clone(),
                )?;
                (writer, reader, None)
            }
            Location::Postgres(url) => {
                let store = PgStore::open(url)?;
                let reader = Box::new(PgStore::open(url)?);
                let listener = {
                    let live = live.clone();
                    let again = live.clone();
                    crate::store::postgres::listen(
                        url,
                        move |c| live.notify(c),
                        move || again.missed(),
                    )?
                };
                let writer = Writer::start(
                    store,
                    SpaceStates::shared(config.space_cache),
                    config.clone(),
                    live.clone(),
                )?;
                (writer, reader, Some(listener))
            }
        };
        let spaces = writer.cache();
        Ok(AppState {
            inner: Arc::new(Shared {
                writer,
                _listener: listener,
                live,
                live_caps: LiveCaps::new(&config),
                reader: Mutex::new(reader),
                spaces,
                nonces: Mutex::new(ReplayCache::default()),
                guards: Guards::new(&config),
                devices: RateLimiter::new("per-device", config.rate_per_device, MAX_TRACKED_KEYS),
                signatures: RateLimiter::new(
                    "signatures per address",
                    config.verify_per_ip,
                    MAX_TRACKED_KEYS,
                ),
                cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
                push_memory: crate::push_memory::PushMemory::new(config.max_push_memory),
                config,
            }),
        })
    }

    /// An empty share of the push memory ([`crate::push_memory`]) for a push from
    /// `from`, grown as its body arrives; `None` when the memory is not limited.
    pub fn push_memory_share(
        &self,
        from: Option<std::net::IpAddr>,
    ) -> Option<crate::push_memory::Share> {
        self.inner.push_memory.as_ref().map(|m| m.share(from))
    }

    /// A share of the push memory for a read's page to the client address `from`
    /// (counted against the address's smaller part for pages).
    pub fn page_memory_share(
        &self,
        from: Option<std::net::IpAddr>,
    ) -> Option<crate::push_memory::Share> {
        self.inner.push_memory.as_ref().map(|m| m.page_share(from))
    }

    /// What a push with the creation-token header `presented` (if any) from the client
    /// address `address` presents to create a space: the token is compared in constant
    /// time with each of the relay's.
    pub fn credential(&self, presented: Option<&[u8]>, address: Option<IpAddr>) -> Credential {
        let token = presented
            .filter(|t| t.len() <= crate::creation::MAX_TOKEN_LEN)
            .and_then(|t| std::str::from_utf8(t).ok())
            .and_then(|t| self.inner.config.create_tokens.check(t.trim()));
        Credential {
            presented: presented.is_some(),
            token,
            address,
        }
    }

    /// The configuration this state was opened with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// How many space states are cached in memory now (at most the configured
    /// `space_cache`).
    pub fn cached_spaces(&self) -> usize {
        lock(&self.inner.spaces).len()
    }

    /// What the writer has done so far: requests answered, commits, events stored.
    pub fn writer_stats(&self) -> WriterStats {
        self.inner.writer.stats()
    }

    /// The limits applied to every request.
    pub(crate) fn guards(&self) -> &Guards {
        &self.inner.guards
    }

    /// Charges one request to each of `devices` (distinct); 429 when one is over its rate.
    fn charge_devices(&self, devices: &[DeviceKey]) -> Result<(), ApiError> {
        match &self.inner.devices {
            Some(limiter) => limiter
                .check_all_at(devices, std::time::Instant::now())
                .map_err(|retry_after| ApiError::rate_limited("this device", retry_after)),
            None => Ok(()),
        }
    }

    /// Calls `f` with the space's committed state (asking the writer to fold it when it
    /// is not cached yet). Blocks.
    fn with_state<R>(
        &self,
        space: SpaceId,
        f: impl FnOnce(&SpaceState) -> R,
    ) -> Result<R, ApiError> {
        // The cached state is current unless a commit (of this writer, or of another
        // relay instance) moved the space since: then the writer catches it up.
        let newest = lock(&self.inner.reader).newest_cursor(&space)?;
        if let Some(s) = lock(&self.inner.spaces).get(&space)
            && s.cursor == newest
        {
            return Ok(f(&s.state));
        }
        let (reply, answer) = oneshot::channel();
        self.inner.writer.send(Job::Load(space, reply))?;
        let cached = answer.blocking_recv().map_err(|_| writer_gone())??;
        Ok(f(&cached.state))
    }

    /// Checks a signed read (or live) request: the signature, the clock window, that the
    /// device is a member of the existing space, and that the nonce is fresh. Returns the
    /// device. Blocks.
    pub fn authorize_read(
        &self,
        space: SpaceId,
        auth: &ReadAuth,
        path: &str,
        query: &str,
        now_secs: i64,
    ) -> Result<DeviceKey, ApiError> {
        self.authorize("GET", space, auth, path, query, now_secs, false)
            .map(|(device, _)| device)
    }

    /// [`AppState::authorize_read`] for a request with another method (a member's signed
    /// `POST` of the pairing routes).
    pub fn authorize_signed(
        &self,
        method: &str,
        space: SpaceId,
        auth: &ReadAuth,
        path: &str,
        query: &str,
        now_secs: i64,
    ) -> Result<DeviceKey, ApiError> {
        self.authorize(method, space, auth, path, query, now_secs, false)
            .map(|(device, _)| device)
    }

    /// [`AppState::authorize_signed`], also admitting (when `departed` is set) a device
    /// that was removed or left: then with the author and seq of the event that ended
    /// its membership, the last one it may read.
    #[allow(clippy::too_many_arguments)]
    fn authorize(
        &self,
        method: &str,
        space: SpaceId,
        auth: &ReadAuth,
        path: &str,
        query: &str,
        now_secs: i64,
        departed: bool,
    ) -> Result<(DeviceKey, Option<(DeviceKey, u64)>), ApiError> {
        let device = auth.verify(method, path, query).ok_or_else(|| {
            ApiError::BadSignature(
                "the read signature does not verify: sign `GET`, the path, the query, the \
                 time and the nonce with the device key named in duet-device"
                    .to_string(),
            )
        })?;
        // `abs_diff`: a time 2^63 s away must not wrap into the window.
        if now_secs.abs_diff(auth.time) > READ_WINDOW_SECS.unsigned_abs() {
            return Err(ApiError::StaleRequest(format!(
                "the read was signed at {} but the relay's clock says {now_secs}; the \
                 difference exceeds {READ_WINDOW_SECS} s. Check this device's clock and retry",
                auth.time
            )));
        }
        let (exists, member, departure) = self.with_state(space, |s| {
            (
                s.exists(),
                s.is_member(&device),
                s.departure(&device).map(|d| (d.by, d.seq)),
            )
        })?;
        if !exists {
            return Err(ApiError::from_admit_error(AdmitError::NoSuchSpace));
        }
        let until = departure.filter(|_| departed && !member);
        if !member && until.is_none() {
            let next = match departure {
                // A removed device (or one that left) reads up to its end, never live.
                Some(_) => {
                    "a device that was removed or left reads up to that event only \
                            (GET of the events), and never joins again"
                }
                None => "only member devices may read: join with an invite first",
            };
            return Err(ApiError::NotAMember(format!(
                "device {} is not a member of this space; {next}",
                hex::encode(device)
            )));
        }
        // Nonces are only remembered for devices that are or were members, which bounds
        // the cache.
        if !lock(&self.inner.nonces).insert(device, &auth.nonce, auth.time, now_secs) {
            return Err(ApiError::ReplayedRequest(
                "this read's nonce was already used: sign every request afresh with a new \
                 random nonce"
                    .to_string(),
            ));
        }
        // Charged only now: a copy of a signed read (from a proxy's log, a day old, or
        // sent again) is refused above without spending the device's allowance, which
        // would otherwise lock the device out for as long as its copies are replayed.
        self.charge_devices(&[device])?;
        Ok((device, until))
    }

    /// Whether `device` is a current member of `space`. Blocks.
    pub fn is_member(&self, space: SpaceId, device: DeviceKey) -> Result<bool, ApiError> {
        self.with_state(space, |s| s.is_member(&device))
    }

    /// The person whose device `device` is, while it is a member of `space`. Blocks.
    pub fn person_of(
        &self,
        space: SpaceId,
        device: DeviceKey,
    ) -> Result<Option<[u8; 16]>, ApiError> {
        self.with_state(space, |s| s.members().get(&device).map(|m| m.person))
    }

    /// Whether the database answers a read, and (SQLite) is still the file at its path.
    pub fn database_answers(&self) -> Result<(), ApiError> {
        Ok(lock(&self.inner.reader).answers()?)
    }

    /// The space's newest cursor (0 when it has no events). Blocks.
    pub fn newest_cursor(&self, space: SpaceId) -> Result<u64, ApiError> {
        Ok(lock(&self.inner.reader).newest_cursor(&space)?)
    }

    /// The channel of commits that live sockets listen to.
    pub fn live(&self) -> &Live {
        &self.inner.live
    }

    /// Counts one more live socket for `device` (of `person`) of `space` opened from
    /// `ip`, refusing with 429 past the per-device, per-person, per-space, per-address
    /// and total caps; the slot is given back when the returned guard is dropped.
    pub(crate) fn live_slot(
        &self,
        (device, person): (DeviceKey, [u8; 16]),
        space: SpaceId,
        ip: Option<IpAddr>,
    ) -> Result<LiveSlot, ApiError> {
        let caps = &self.inner.live_caps;
        // Each unit taken is given back on a later refusal (the guards drop), so a
        // refused socket holds nothing.
        let slot = (|| {
            let device = hold(&caps.per_device, device, "for this device")?;
            let person = hold(
                &caps.per_person,
                (space, person),
                "for this person's devices in this space",
            )?;
            let space = hold(&caps.per_space, space, "for this space")?;
            let ip = match ip {
                Some(ip) => hold(&caps.per_ip, ip, "from this address")?,
                None => None,
            };
            let total = hold(&caps.total, (), "on this relay")?;
            Ok(LiveSlot {
                _device: device,
                _person: person,
                _space: space,
                _ip: ip,
                _total: total,
            })
        })();
        if slot.is_err() {
            lock(&caps.refused).note("live sockets", std::time::Instant::now());
        }
        slot
    }

    /// Checks and stores a pushed batch (all or nothing), and returns once it is durable
    /// (or refused). `now_ms` is the relay's clock. Blocks: call it off the async threads.
    pub fn push(&self, space: SpaceId, body: &[u8], now_ms: i64) -> Result<PushResponse, ApiError> {
        self.push_with(space, body, now_ms, Credential::default())
    }

    /// [`AppState::push`] with what the push presents to create a space (its token and
    /// client address).
    pub fn push_with(
        &self,
        space: SpaceId,
        body: &[u8],
        now_ms: i64,
        credential: Credential,
    ) -> Result<PushResponse, ApiError> {
        let prepared = self.prepare_push_with(space, body, now_ms, credential)?;
        let (reply, answer) = oneshot::channel();
        self.inner.writer.send(Job::Push(prepared, reply))?;
        answer.blocking_recv().map_err(|_| writer_gone())?
    }

    /// The second half of a push: queues it for the writer at once (pushes queued
    /// together share a commit), and returns a future that resolves, without blocking a
    /// thread, when its group is committed (or it is refused).
    pub fn submit(
        &self,
        prepared: PreparedPush,
    ) -> impl Future<Output = Result<PushResponse, ApiError>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let queued = self.inner.writer.send(Job::Push(prepared, reply));
        async move {
            queued?;
            answer.await.map_err(|_| writer_gone())?
        }
    }

    /// Serves a page of a space to a member device. `now_secs` is the relay's clock.
    pub fn read(
        &self,
        space: SpaceId,
        req: &ReadRequest,
        now_secs: i64,
    ) -> Result<ReadAnswer, ApiError> {
        let (_, until) = self.authorize(
            "GET", space, &req.auth, &req.path, &req.query, now_secs, true,
        )?;
        let mut reader = lock(&self.inner.reader);
        let ((mut events, mut more), mut newest, mut forks) =
            reader.page_and_newest(&space, req.after, req.limit, MAX_BODY_BYTES)?;
        // A removed (or departed) device reads on up to the event that ended its
        // membership, so that it learns who ended it and when; nothing after it, not
        // even which cursors hold events or how many forks were tried since.
        let mut last = u64::MAX;
        if let Some((by, seq)) = until {
            last = reader.cursor_at(&space, &by, seq)?.unwrap_or(0);
            events.retain(|(c, _)| *c <= last);
            more = more && events.last().is_some_and(|(c, _)| *c < last);
            newest = newest.min(last);
            forks = 0;
        }
        // Tells a reader whether the event it read last is still where it read it (a
        // relay restored from an older backup numbers new events anew).
        let at_after = match req.after {
            0 => None,
            after if after > last => None,
            after => reader.hash_at_cursor(&space, after)?,
        };
        Ok(ReadAnswer {
            events,
            more,
            newest,
            forks,
            at_after,
        })
    }
}
