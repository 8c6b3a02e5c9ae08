//! The relay's single writer: a dedicated thread that owns the write connection and the
//! cache of space states, and commits concurrent pushes in groups (group commit).
//!
//! Pushes arrive already decoded (signatures verified on the blocking pool, see
//! [`crate::state::AppState::prepare_push`]) as [`Job`]s on a channel. The thread takes
//! every job waiting (up to [`MAX_GROUP_REQUESTS`] requests or [`MAX_GROUP_BYTES`] of
//! events), opens one transaction, and handles the pushes in arrival order against a
//! working copy of each space's state:
//!
//! - each push is checked all or nothing exactly as a lone push would be: a refused push
//!   stores nothing (fork evidence aside) and gets its own error, and the working state
//!   does not take it in, so the other pushes of the group are unaffected; the rows of an
//!   accepted push go in under their own savepoint;
//! - membership comes first: an event whose author was removed, or is not a member and
//!   does not join, is refused (403) before its chain is looked at, so only current
//!   members can ever leave fork evidence; that evidence is bounded per device and per
//!   space ([`ForkLimits`]) and kept outside the space's quota (attempts past the bounds
//!   are only counted);
//! - the group is then committed once (`synchronous=FULL`: one fsync for all of them),
//!   the cache takes the working states, and only then is every push answered:
//!   acknowledged still means durable;
//! - if the commit fails, every push of the group gets that error (507 `storage_full`
//!   for SQLITE_FULL) and the cache keeps the committed states;
//! - if the database ends the whole transaction while one push is being stored (SQLite
//!   may roll it back on SQLITE_FULL or an I/O error; PostgreSQL aborts it on any
//!   failed statement, and its pushes are inserted without a savepoint each, see
//!   [`crate::store::postgres`]), that push gets the error and the other pushes of the
//!   group go back to the head of the queue, to be checked again in the next group.
//!
//! Reads whose space is not cached yet ask the thread to fold it ([`Job::Load`]), so the
//! cache is only ever filled and changed here, from committed data.
//!
//! The work is split: [`queue`] is the thread, its channel and the group's one
//! transaction; [`admission`] is what a pushed event must pass to be stored (space,
//! membership, chain, forks, quota), and [`creation`] what a push that creates a space
//! must pass first.

use std::sync::{Arc, Mutex, MutexGuard};

use duet_core::event::{Event, SpaceId};
use duet_core::membership::{AdmitError, SpaceState};
use duet_core::protocol::PushResponse;
use tokio::sync::oneshot;

use crate::error::ApiError;
use crate::store::{Reads, StoreError, Usage};

mod admission;
mod creation;
mod queue;
#[cfg(test)]
mod tests;

pub(crate) use queue::Writer;

/// At most this many push requests share one transaction.
pub const MAX_GROUP_REQUESTS: usize = 512;

/// A group stops taking requests once it holds this many bytes of events (a single
/// larger request still forms a group of its own).
pub const MAX_GROUP_BYTES: usize = 64 * 1024 * 1024;

/// Fork evidence kept per device in a space: the first conflicting events; later
/// attempts are only counted.
pub const FORK_EVIDENCE_PER_DEVICE: u64 = 4;

/// Bytes of fork evidence kept per space, whatever the number of devices (four maximal
/// events); later attempts are only counted.
pub const FORK_EVIDENCE_BYTES_PER_SPACE: u64 = 16 * 1024 * 1024;

/// How much fork evidence is kept. Evidence is outside the space's quota (an
/// equivocating member must not be able to fill it and lock the partner out), so it has
/// bounds of its own; the attempts past them are counted in the `duet-forks` total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForkLimits {
    /// Evidence rows per device and space.
    pub per_device: u64,
    /// Evidence bytes per space.
    pub space_bytes: u64,
}

impl Default for ForkLimits {
    fn default() -> Self {
        ForkLimits {
            per_device: FORK_EVIDENCE_PER_DEVICE,
            space_bytes: FORK_EVIDENCE_BYTES_PER_SPACE,
        }
    }
}

/// A space's state and what it stores, as of the last commit (in the cache) or as of
/// the pushes handled so far (in a group's working copy).
#[derive(Clone, Default)]
pub(crate) struct Cached {
    pub(crate) state: SpaceState,
    /// The space's events (fork evidence is not counted against the quota).
    pub(crate) usage: Usage,
    /// The space's newest cursor this state was folded up to. Another relay instance
    /// may have committed after it: the writer checks it against the database before
    /// using the state, and folds in what it missed.
    pub(crate) cursor: u64,
}

/// The cache of space states, shared with readers; written only by the writer thread.
pub(crate) type SpaceCache = Arc<Mutex<SpaceStates>>;

/// Space states by space, bounded: past its capacity the least recently used space is
/// evicted, and folded again from the database when next needed (so a relay holding
/// many spaces keeps only the busy ones in memory).
pub(crate) struct SpaceStates(lru::LruCache<SpaceId, Cached>);

impl SpaceStates {
    /// A cache of at most `capacity` spaces (0: unbounded).
    pub(crate) fn new(capacity: usize) -> SpaceStates {
        SpaceStates(match std::num::NonZeroUsize::new(capacity) {
            Some(n) => lru::LruCache::new(n),
            None => lru::LruCache::unbounded(),
        })
    }

    /// A shared cache of at most `capacity` spaces (0: unbounded).
    pub(crate) fn shared(capacity: usize) -> SpaceCache {
        Arc::new(Mutex::new(SpaceStates::new(capacity)))
    }

    /// The cached state of `space`, marked as used.
    pub(crate) fn get(&mut self, space: &SpaceId) -> Option<&Cached> {
        self.0.get(space)
    }

    /// Caches the state of `space`, evicting the least recently used one when full.
    pub(crate) fn insert(&mut self, space: SpaceId, cached: Cached) {
        self.0.put(space, cached);
    }

    /// Forgets every state (after a failed commit).
    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    /// How many spaces are cached.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| {
        m.clear_poison();
        poisoned.into_inner()
    })
}

/// A push whose events are decoded and whose authors were charged, ready for the writer.
#[derive(Debug)]
pub struct PreparedPush {
    pub(crate) space: SpaceId,
    /// SHA-256 of each event of the batch, in order.
    pub(crate) hashes: Vec<[u8; 32]>,
    /// The batch's events, every one decoded and its signature verified.
    pub(crate) events: Vec<Event>,
    /// The relay's clock when the request arrived (ms).
    pub(crate) now_ms: i64,
    /// What the push presents to create a space (token, client address).
    pub(crate) credential: crate::creation::Credential,
    /// Its share of the push memory (`--max-push-memory`), given back when the push is
    /// dropped: answered, refused, or done after its client went away.
    pub(crate) memory: Option<Box<crate::push_memory::Share>>,
}

impl PreparedPush {
    fn bytes(&self) -> usize {
        self.events.iter().map(|e| e.bytes().len()).sum()
    }
}

/// The answer to a push.
pub(crate) type PushReply = oneshot::Sender<Result<PushResponse, ApiError>>;

/// Work for the writer thread.
pub(crate) enum Job {
    /// Check and store a push; answer once it is durable (or refused).
    Push(PreparedPush, PushReply),
    /// The committed state of a space, cached if the space exists.
    Load(SpaceId, oneshot::Sender<Result<Cached, ApiError>>),
}

/// What the writer has done since the state was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Push requests answered by the writer (accepted or refused; not those refused
    /// before reaching it, e.g. for a bad signature or a rate limit).
    pub requests: u64,
    /// Durable transactions committed (one per group that stored anything).
    pub commits: u64,
    /// Events stored.
    pub events: u64,
    /// The most push requests answered by a single commit.
    pub largest_group: u64,
}

/// The error for a push or load whose answer never came (the writer thread is gone or
/// dropped the job while panicking).
pub(crate) fn writer_gone() -> ApiError {
    ApiError::Internal("the writer thread did not answer".to_string())
}

/// Spaces found older in the database than in the cache: said at most once a second.
static WENT_BACK_LOG: crate::logging::Throttle = crate::logging::Throttle::per_second();

/// The committed state of `space`: `cached` if the database has nothing newer, else
/// `cached` (or an empty state) with the events after its cursor folded in. A database
/// that went back (a backup restored under the running relay, as a PostgreSQL dump can
/// be) is folded again from its start: the cache held heads the database no longer has,
/// and every push that gave back a lost event was refused as a fork until a restart.
fn current(
    q: &mut impl Reads,
    space: SpaceId,
    cached: Option<Cached>,
) -> Result<Cached, StoreError> {
    let newest = q.newest_cursor(&space)?;
    match cached {
        Some(c) if c.cursor == newest => Ok(c),
        Some(c) if c.cursor > newest => {
            // At most once a second: a restore under a relay of many spaces would say it
            // for each of them.
            if let Some(suppressed) = WENT_BACK_LOG.allow() {
                tracing::warn!(
                    %space,
                    was = c.cursor,
                    now = newest,
                    suppressed,
                    "the space's newest event in the database is older than the one this \
                     relay had seen (a backup restored while it ran?): its state is read \
                     again from the database; restart every instance after a restore"
                );
            }
            fold_after(q, space, Cached::default())
        }
        Some(c) => fold_after(q, space, c),
        None => fold_after(q, space, Cached::default()),
    }
}

/// `from` with the stored events of `space` after its cursor folded in, in cursor order.
fn fold_after(q: &mut impl Reads, space: SpaceId, from: Cached) -> Result<Cached, StoreError> {
    let Cached {
        mut state,
        mut usage,
        mut cursor,
    } = from;
    let mut bad = 0usize;
    q.for_each_event(&space, cursor, &mut |at, bytes| {
        cursor = at;
        usage = usage.plus(1, bytes.len() as u64);
        // Verified before it was stored: read again without the signature.
        let admitted = Event::decode_stored(bytes)
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
    Ok(Cached {
        state,
        usage,
        cursor,
    })
}
