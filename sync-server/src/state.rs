//! The relay's shared state and its two operations, push and read, independent of HTTP.
//!
//! - One writer connection, held for the whole of a push, so that checking a batch
//!   against a space's state and inserting it are one atomic step.
//! - One reader connection for pages (WAL lets it read while the writer commits).
//! - Each space's [`SpaceState`] (members, invites, chain heads) cached in memory, built
//!   on first use by folding the space's stored events in cursor order, and replaced
//!   only after a push has committed. It is only changed while the writer is held.
//! - A replay cache of read nonces, pruned once their timestamp leaves the window.
//! - Each space's [`Usage`] (events and bytes stored), cached with its state, against
//!   which the per-space quotas of the [`Config`] are checked before anything is stored.
//! - The per-device rate limiter, charged once a device is authenticated.
//!
//! Every method here blocks (SQLite, signature checks): call them from
//! `tokio::task::spawn_blocking`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use duet_core::crypto::sha256;
use duet_core::event::{Event, Kind, SpaceId};
use duet_core::identity::DeviceKey;
use duet_core::membership::{AdmitError, SpaceState};
use duet_core::protocol::{
    EventResult, EventStatus, MAX_BODY_BYTES, PushResponse, READ_WINDOW_SECS, ReadAuth,
    decode_batch,
};

use crate::error::ApiError;
use crate::limits::{Config, Guards, MAX_TRACKED_KEYS, RateLimiter};
use crate::store::{Store, StoreError, Usage};

/// How often (seconds) the replay cache drops nonces whose timestamp left the window.
const PRUNE_EVERY_SECS: i64 = 10;

/// The relay's state, shared by every request handler. Cheap to clone.
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
    writer: Mutex<Store>,
    reader: Mutex<Store>,
    spaces: Mutex<HashMap<SpaceId, Cached>>,
    nonces: Mutex<ReplayCache>,
    config: Config,
    guards: Guards,
    devices: Option<RateLimiter<DeviceKey>>,
}

/// A space's state and what it stores, as of the last commit.
#[derive(Clone, Default)]
struct Cached {
    state: SpaceState,
    usage: Usage,
}

/// Read nonces seen recently, per device, with the request's timestamp.
#[derive(Default)]
struct ReplayCache {
    seen: HashMap<(DeviceKey, String), i64>,
    last_prune: i64,
}

impl ReplayCache {
    /// Records the nonce; false when it was already used (a replay).
    fn insert(&mut self, device: DeviceKey, nonce: &str, time: i64, now: i64) -> bool {
        if now - self.last_prune >= PRUNE_EVERY_SECS {
            // A request signed before `now - window` is refused as stale anyway, so its
            // nonce no longer needs remembering.
            self.seen.retain(|_, t| *t >= now - READ_WINDOW_SECS);
            self.last_prune = now;
        }
        match self.seen.entry((device, nonce.to_string())) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(time);
                true
            }
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

/// What one pushed event turned out to be while checking the batch.
enum Slot {
    /// Already stored, at this cursor.
    Stored(u64),
    /// New and admissible.
    New(Event),
    /// A second copy of the new event at this index of the batch.
    Again(usize),
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
    /// Fork attempts refused in this space (evidence kept).
    pub forks: u64,
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
    /// Opens the relay database at `db` (created and migrated as needed) with the
    /// default [`Config`].
    pub fn open(db: &Path) -> Result<AppState, StoreError> {
        AppState::open_with(db, Config::default())
    }

    /// Opens the relay database at `db` with `config`.
    pub fn open_with(db: &Path, config: Config) -> Result<AppState, StoreError> {
        let writer = Store::open(db)?;
        if config.max_db_bytes > 0 {
            let pages = writer.set_max_bytes(config.max_db_bytes)?;
            tracing::info!(
                max_db_bytes = config.max_db_bytes,
                pages,
                "database size capped"
            );
        }
        let reader = Store::open(db)?;
        Ok(AppState {
            inner: Arc::new(Shared {
                writer: Mutex::new(writer),
                reader: Mutex::new(reader),
                spaces: Mutex::new(HashMap::new()),
                nonces: Mutex::new(ReplayCache::default()),
                guards: Guards::new(&config),
                devices: RateLimiter::new("per-device", config.rate_per_device, MAX_TRACKED_KEYS),
                config,
            }),
        })
    }

    /// The configuration this state was opened with.
    pub fn config(&self) -> &Config {
        &self.inner.config
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

    /// Locks the writer. If a previous holder panicked, the cache may be out of step with
    /// the database, so it is dropped and rebuilt on demand.
    fn writer(&self) -> MutexGuard<'_, Store> {
        match self.inner.writer.lock() {
            Ok(g) => g,
            Err(poisoned) => {
                self.inner.writer.clear_poison();
                lock(&self.inner.spaces).clear();
                poisoned.into_inner()
            }
        }
    }

    /// The space's state and usage: cached, or folded from its stored events. Call with
    /// the writer held (it is the only one that changes the cache).
    fn state_locked(&self, writer: &Store, space: SpaceId) -> Result<Cached, StoreError> {
        if let Some(s) = lock(&self.inner.spaces).get(&space) {
            return Ok(s.clone());
        }
        let mut state = SpaceState::default();
        let mut usage = writer.fork_usage(&space)?;
        let mut bad = 0usize;
        writer.for_each_event(&space, |cursor, bytes| {
            usage = usage.plus(1, bytes.len() as u64);
            let admitted = Event::decode(bytes)
                .map_err(AdmitError::from)
                .and_then(|ev| state.admit(&ev, None));
            if let Err(e) = admitted {
                bad += 1;
                tracing::warn!(%space, cursor, "stored event does not fold: {e}");
            }
        })?;
        if bad > 0 {
            tracing::error!(%space, bad, "stored events were skipped while rebuilding the space's state");
        }
        let cached = Cached { state, usage };
        if cached.state.exists() {
            lock(&self.inner.spaces).insert(space, cached.clone());
        }
        Ok(cached)
    }

    /// Calls `f` with the space's current state.
    fn with_state<R>(
        &self,
        space: SpaceId,
        f: impl FnOnce(&SpaceState) -> R,
    ) -> Result<R, StoreError> {
        if let Some(s) = lock(&self.inner.spaces).get(&space) {
            return Ok(f(&s.state));
        }
        let writer = self.writer();
        let cached = self.state_locked(&writer, space)?;
        Ok(f(&cached.state))
    }

    /// Checks and stores a pushed batch (all or nothing). `now_ms` is the relay's clock.
    pub fn push(&self, space: SpaceId, body: &[u8], now_ms: i64) -> Result<PushResponse, ApiError> {
        let raws = decode_batch(body).map_err(|e| {
            ApiError::Malformed(format!(
                "{e}; a push body is one or more `u32 big-endian length || event`"
            ))
        })?;
        let hashes: Vec<[u8; 32]> = raws.iter().map(|r| sha256(r)).collect();
        // Signatures are verified before taking the writer, so pushes verify in parallel.
        // Events after the first undecodable one are never examined.
        let mut decoded = Vec::with_capacity(raws.len());
        for raw in raws {
            let ev = Event::decode(raw).map_err(ApiError::from_event_error);
            let failed = ev.is_err();
            decoded.push(ev);
            if failed {
                break;
            }
        }
        // Authors are authenticated now: charge each one request.
        let mut authors: Vec<DeviceKey> = decoded
            .iter()
            .filter_map(|ev| ev.as_ref().ok().map(|ev| ev.header().author))
            .collect();
        authors.sort_unstable();
        authors.dedup();
        self.charge_devices(&authors)?;

        let mut writer = self.writer();
        let Cached {
            state: mut work,
            usage,
        } = self.state_locked(&writer, space)?;
        let mut slots: Vec<Slot> = Vec::with_capacity(hashes.len());
        let mut new_in_batch: HashMap<[u8; 32], usize> = HashMap::new();
        let mut rejection = None;

        for (i, ev) in decoded.into_iter().enumerate() {
            let hash = hashes[i];
            if let Some(cursor) = writer.cursor_of(&space, &hash)? {
                slots.push(Slot::Stored(cursor));
                continue;
            }
            if let Some(&first) = new_in_batch.get(&hash) {
                slots.push(Slot::Again(first));
                continue;
            }
            match ev.and_then(|ev| self.check_one(&mut writer, &mut work, space, ev, now_ms)) {
                Ok(ev) => {
                    new_in_batch.insert(hash, i);
                    slots.push(Slot::New(ev));
                }
                Err(e) => {
                    rejection = Some((i, e));
                    break;
                }
            }
        }

        if let Some((bad, error)) = rejection {
            let mut results = Vec::with_capacity(hashes.len());
            for (i, hash) in hashes.iter().enumerate() {
                let (status, cursor, reason) = match slots.get(i) {
                    Some(Slot::Stored(c)) => (EventStatus::Duplicate, Some(*c), None),
                    Some(_) => (EventStatus::NotStored, None, None),
                    None if i == bad => (EventStatus::Rejected, None, Some(error.message())),
                    None => match writer.cursor_of(&space, hash)? {
                        Some(c) => (EventStatus::Duplicate, Some(c), None),
                        None => (EventStatus::NotStored, None, None),
                    },
                };
                results.push(EventResult {
                    hash: hex::encode(hash),
                    status,
                    reason,
                    cursor,
                });
            }
            return Err(ApiError::Batch {
                error: Box::new(error),
                results,
            });
        }

        let new: Vec<&Event> = slots
            .iter()
            .filter_map(|s| match s {
                Slot::New(ev) => Some(ev),
                _ => None,
            })
            .collect();
        let new_bytes: u64 = new.iter().map(|ev| ev.bytes().len() as u64).sum();
        let after = usage.plus(new.len() as u64, new_bytes);
        self.check_quota(space, usage, after)?;
        let (cursors, newest) = if new.is_empty() {
            (Vec::new(), writer.newest_cursor(&space)?)
        } else {
            writer.insert_events(&space, &new, now_ms)?
        };
        // Committed: now the cache may move on.
        if !new.is_empty() && work.exists() {
            lock(&self.inner.spaces).insert(
                space,
                Cached {
                    state: work,
                    usage: after,
                },
            );
        }
        drop(writer);

        let mut cursor_at: HashMap<usize, u64> = HashMap::new();
        let mut next = cursors.iter();
        let mut results = Vec::with_capacity(slots.len());
        for (i, slot) in slots.iter().enumerate() {
            let (status, cursor) = match slot {
                Slot::Stored(c) => (EventStatus::Duplicate, Some(*c)),
                Slot::New(_) => {
                    let c = next.next().copied();
                    if let Some(c) = c {
                        cursor_at.insert(i, c);
                    }
                    (EventStatus::Accepted, c)
                }
                Slot::Again(first) => (EventStatus::Duplicate, cursor_at.get(first).copied()),
            };
            results.push(EventResult {
                hash: hex::encode(hashes[i]),
                status,
                reason: None,
                cursor,
            });
        }
        tracing::info!(
            %space,
            accepted = cursors.len(),
            duplicates = slots.len() - cursors.len(),
            cursor = newest,
            "push stored"
        );
        Ok(PushResponse {
            results,
            cursor: newest,
        })
    }

    /// Refuses a push that would take the space from `before` to `after`, over a quota.
    fn check_quota(&self, space: SpaceId, before: Usage, after: Usage) -> Result<(), ApiError> {
        let c = &self.inner.config;
        let over_events = c.space_max_events > 0 && after.events > c.space_max_events;
        let over_bytes = c.space_max_bytes > 0 && after.bytes > c.space_max_bytes;
        if !over_events && !over_bytes {
            return Ok(());
        }
        tracing::warn!(
            %space,
            events = before.events,
            bytes = before.bytes,
            "push refused: over the space's quota"
        );
        Err(ApiError::QuotaExceeded(format!(
            "this push would bring the space to {} events and {} bytes, over this relay's \
             quota of {} events and {} bytes per space (0 = no limit); nothing was stored. \
             The space already holds {} events and {} bytes; ask the relay's operator to \
             raise --space-max-events / --space-max-bytes",
            after.events,
            after.bytes,
            c.space_max_events,
            c.space_max_bytes,
            before.events,
            before.bytes
        )))
    }

    /// Records fork evidence if it fits the space's quota, and counts it; false when it
    /// was not recorded (it would not fit, or SQLite failed).
    fn record_fork(
        &self,
        writer: &mut Store,
        space: SpaceId,
        ev: &Event,
        existing: &[u8; 32],
        now_ms: i64,
    ) -> bool {
        let c = &self.inner.config;
        let usage = lock(&self.inner.spaces)
            .get(&space)
            .map(|s| s.usage)
            .unwrap_or_default();
        let after = usage.plus(1, ev.bytes().len() as u64);
        if (c.space_max_events > 0 && after.events > c.space_max_events)
            || (c.space_max_bytes > 0 && after.bytes > c.space_max_bytes)
        {
            tracing::warn!(%space, "fork evidence not recorded: the space is at its quota");
            return false;
        }
        match writer.insert_fork(ev, existing, now_ms) {
            Ok(new) => {
                if new && let Some(s) = lock(&self.inner.spaces).get_mut(&space) {
                    s.usage = after;
                }
                tracing::warn!(
                    %space,
                    author = %hex::encode(ev.header().author),
                    seq = ev.header().seq,
                    "fork: evidence recorded"
                );
                true
            }
            Err(e) => {
                tracing::error!(%space, "cannot record fork evidence: {e}");
                false
            }
        }
    }

    /// Admits one new, authentic event into the working state.
    fn check_one(
        &self,
        writer: &mut Store,
        work: &mut SpaceState,
        space: SpaceId,
        ev: Event,
        now_ms: i64,
    ) -> Result<Event, ApiError> {
        let h = ev.header();
        if h.space != space {
            return Err(ApiError::Malformed(format!(
                "an event is for space {} but was pushed to space {space}; push each event \
                 to its own space's URL",
                h.space
            )));
        }
        if !work.exists() && ev.kind() != Kind::Genesis {
            return Err(ApiError::from_admit_error(AdmitError::NoSuchSpace));
        }
        match work.admit(&ev, Some(now_ms)) {
            Ok(_) => Ok(ev),
            Err(AdmitError::Fork(seq)) => {
                let author = h.author;
                match writer.hash_at(&space, &author, seq)? {
                    Some(existing) if existing != ev.hash() => {
                        let recorded = self.record_fork(writer, space, &ev, &existing, now_ms);
                        Err(ApiError::Fork(format!(
                            "fork: device {} already has event {} with seq {seq} in this \
                             space; the relay keeps that one{}. A device must never sign two \
                             events with the same seq: sync before writing again",
                            hex::encode(author),
                            hex::encode(existing),
                            if recorded {
                                " and has recorded this conflicting event as evidence"
                            } else {
                                ""
                            }
                        )))
                    }
                    _ => Err(ApiError::from_admit_error(AdmitError::Fork(seq))),
                }
            }
            Err(e) => Err(ApiError::from_admit_error(e)),
        }
    }

    /// Serves a page of a space to a member device. `now_secs` is the relay's clock.
    pub fn read(
        &self,
        space: SpaceId,
        req: &ReadRequest,
        now_secs: i64,
    ) -> Result<ReadAnswer, ApiError> {
        let device = req
            .auth
            .verify("GET", &req.path, &req.query)
            .ok_or_else(|| {
                ApiError::BadSignature(
                    "the read signature does not verify: sign `GET`, the path, the query, the \
                 time and the nonce with the device key named in duet-device"
                        .to_string(),
                )
            })?;
        self.charge_devices(&[device])?;
        if (now_secs - req.auth.time).abs() > READ_WINDOW_SECS {
            return Err(ApiError::StaleRequest(format!(
                "the read was signed at {} but the relay's clock says {now_secs}; the \
                 difference exceeds {READ_WINDOW_SECS} s. Check this device's clock and retry",
                req.auth.time
            )));
        }
        let (exists, member) = self.with_state(space, |s| (s.exists(), s.is_member(&device)))?;
        if !exists {
            return Err(ApiError::from_admit_error(AdmitError::NoSuchSpace));
        }
        if !member {
            return Err(ApiError::NotAMember(format!(
                "device {} is not a member of this space (or was removed); only member \
                 devices may read. Join with an invite first",
                hex::encode(device)
            )));
        }
        // Nonces are only remembered for members, which bounds the cache.
        if !lock(&self.inner.nonces).insert(device, &req.auth.nonce, req.auth.time, now_secs) {
            return Err(ApiError::ReplayedRequest(
                "this read's nonce was already used: sign every request afresh with a new \
                 random nonce"
                    .to_string(),
            ));
        }
        let ((events, more), newest, forks) = lock(&self.inner.reader).page_and_newest(
            &space,
            req.after,
            req.limit,
            MAX_BODY_BYTES,
        )?;
        Ok(ReadAnswer {
            events,
            more,
            newest,
            forks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_refused_twice_and_forgotten_once_its_time_is_stale() {
        let mut cache = ReplayCache::default();
        let now = 1_000_000;
        assert!(cache.insert([1; 32], "n", now, now));
        assert!(!cache.insert([1; 32], "n", now, now + 1));
        // Another device may use the same nonce.
        assert!(cache.insert([2; 32], "n", now, now));
        // Past the window the entry is pruned (the request would be stale anyway).
        let later = now + READ_WINDOW_SECS + PRUNE_EVERY_SECS + 1;
        assert!(cache.insert([3; 32], "m", later, later));
        assert_eq!(cache.seen.len(), 1);
    }
}
