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
//! - if SQLite rolls the whole transaction back by itself while one push is being
//!   stored (it may, on SQLITE_FULL or an I/O error), that push gets the error and the
//!   other pushes of the group go back to the head of the queue, to be checked again
//!   in the next group.
//!
//! Reads whose space is not cached yet ask the thread to fold it ([`Job::Load`]), so the
//! cache is only ever filled and changed here, from committed data.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use duet_core::event::{Event, Kind, MembershipOp, SpaceId};
use duet_core::membership::{AdmitError, SpaceState};
use duet_core::protocol::{EventResult, EventStatus, H_CREATE_TOKEN, PushResponse};
use tokio::sync::oneshot;

use crate::creation::{CREATION_HEADROOM_PERCENT, CREATION_WINDOW_MS, Credential};
use crate::error::ApiError;
use crate::limits::Config;
use crate::live::{Committed, Live};
use crate::logging::Throttle;
use crate::store::{Backend, Reads, StoreError, Usage, WriteTxn};

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

/// Fork logs: at most a line a second, however fast a member equivocates.
static FORK_LOG: Throttle = Throttle::per_second();

/// Refused creations: at most a line a second, however fast strangers try.
static CREATION_LOG: Throttle = Throttle::per_second();

/// Spaces of an author looked at to find one it is a member of (a device is in two
/// spaces in practice; the bound keeps the work small whatever the database holds).
const MEMBER_SPACES_LOOKED_AT: u32 = 16;

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
pub(crate) type SpaceCache = Arc<Mutex<HashMap<SpaceId, Cached>>>;

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

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    commits: AtomicU64,
    events: AtomicU64,
    largest_group: AtomicU64,
}

/// The handle to the writer thread. Dropping it lets the thread finish the jobs already
/// queued, then waits for it.
pub(crate) struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    cache: SpaceCache,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Starts the writer thread over `store` (the write connection).
    pub(crate) fn start<B: Backend>(
        store: B,
        cache: SpaceCache,
        config: Config,
        live: Live,
    ) -> Result<Writer, StoreError> {
        let (jobs, queue) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let shared_cache = cache.clone();
        let thread = {
            let counters = counters.clone();
            std::thread::Builder::new()
                .name("duet-relay-writer".to_string())
                .spawn(move || {
                    let mut w = Worker {
                        store,
                        cache,
                        config,
                        forks: ForkLimits::default(),
                        counters,
                        live,
                        fail_commits: 0,
                    };
                    w.run(&queue);
                })
                .map_err(StoreError::Thread)?
        };
        Ok(Writer {
            jobs: Some(jobs),
            cache: shared_cache,
            thread: Some(thread),
            counters,
        })
    }

    /// The cache of committed space states this writer keeps.
    pub(crate) fn cache(&self) -> SpaceCache {
        self.cache.clone()
    }

    /// Queues a job; an internal error if the thread is gone.
    pub(crate) fn send(&self, job: Job) -> Result<(), ApiError> {
        self.jobs
            .as_ref()
            .and_then(|j| j.send(job).ok())
            .ok_or_else(writer_gone)
    }

    /// The counters so far.
    pub(crate) fn stats(&self) -> WriterStats {
        let c = &self.counters;
        WriterStats {
            requests: c.requests.load(Ordering::Relaxed),
            commits: c.commits.load(Ordering::Relaxed),
            events: c.events.load(Ordering::Relaxed),
            largest_group: c.largest_group.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop once the queue is empty.
        self.jobs.take();
        if let Some(t) = self.thread.take()
            && t.thread().id() != std::thread::current().id()
            && t.join().is_err()
        {
            tracing::error!("the relay's writer thread panicked");
        }
    }
}

/// The error for a push or load whose answer never came (the writer thread is gone or
/// dropped the job while panicking).
pub(crate) fn writer_gone() -> ApiError {
    ApiError::Internal("the writer thread did not answer".to_string())
}

/// The state owned by the writer thread.
struct Worker<B: Backend> {
    store: B,
    cache: SpaceCache,
    config: Config,
    forks: ForkLimits,
    counters: Arc<Counters>,
    /// Where committed cursors are announced to live sockets.
    live: Live,
    /// This many next commits fail as if the disk were full (0 outside tests).
    fail_commits: usize,
}

/// What happened to a group's transaction while handling one push.
enum Step {
    /// The push was handled (accepted or refused); the transaction is still open.
    Handled(Result<PushResponse, ApiError>),
    /// SQLite rolled the whole transaction back: this push gets the error, the others
    /// must be handled again.
    Lost(ApiError),
}

impl<B: Backend> Worker<B> {
    fn run(&mut self, queue: &mpsc::Receiver<Job>) {
        let mut pending: VecDeque<Job> = VecDeque::new();
        loop {
            if pending.is_empty() {
                match queue.recv() {
                    Ok(job) => pending.push_back(job),
                    Err(_) => return,
                }
            }
            while let Ok(job) = queue.try_recv() {
                pending.push_back(job);
            }
            let group = take_group(&mut pending);
            let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
                self.run_group(group, &mut pending);
            }));
            if ran.is_err() {
                // The jobs of the group were dropped unanswered (their callers get an
                // internal error); the open transaction was rolled back. The cache may be
                // out of step: rebuild it on demand.
                tracing::error!("the relay's writer panicked while handling a group of pushes");
                lock(&self.cache).clear();
            }
        }
    }

    fn run_group(&mut self, group: Vec<Job>, pending: &mut VecDeque<Job>) {
        let mut pushes = Vec::new();
        let mut loads = Vec::new();
        for job in group {
            match job {
                Job::Push(p, reply) => pushes.push((p, reply)),
                Job::Load(space, reply) => loads.push((space, reply)),
            }
        }
        if !pushes.is_empty() {
            self.commit_group(pushes, pending);
        }
        for (space, reply) in loads {
            let state = self.cached(space).map_err(ApiError::from);
            let _ = reply.send(state);
        }
    }

    /// The committed state of `space`: cached, or folded from the database and cached
    /// (when the space exists). Only called outside a group's transaction.
    fn cached(&mut self, space: SpaceId) -> Result<Cached, StoreError> {
        let cached = lock(&self.cache).get(&space).cloned();
        let folded = current(&mut self.store, space, cached)?;
        if folded.state.exists() {
            lock(&self.cache).insert(space, folded.clone());
        }
        Ok(folded)
    }

    /// Handles `pushes` in one transaction and answers them all after its commit.
    fn commit_group(
        &mut self,
        pushes: Vec<(PreparedPush, PushReply)>,
        pending: &mut VecDeque<Job>,
    ) {
        let Worker {
            store,
            cache,
            config,
            forks,
            counters,
            live,
            fail_commits,
        } = self;
        let mut txn = match store.begin() {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("cannot begin a write transaction: {e}");
                let e = ApiError::from(e);
                for (_, reply) in pushes {
                    counters.requests.fetch_add(1, Ordering::Relaxed);
                    let _ = reply.send(Err(e.clone()));
                }
                return;
            }
        };
        // Writers of these spaces (on other relay instances) wait until this commit.
        let mut spaces: Vec<SpaceId> = pushes.iter().map(|(p, _)| p.space).collect();
        spaces.sort_unstable_by_key(|s| s.0);
        spaces.dedup();
        if let Err(e) = txn.lock_spaces(&spaces) {
            tracing::error!("cannot lock the spaces of a group: {e}");
            let e = ApiError::from(e);
            for (_, reply) in pushes {
                counters.requests.fetch_add(1, Ordering::Relaxed);
                let _ = reply.send(Err(e.clone()));
            }
            return;
        }
        let mut group = Group {
            cache,
            config,
            forks: *forks,
            work: HashMap::new(),
            wrote: false,
            stored: 0,
        };
        let mut done: Vec<(PreparedPush, PushReply, Result<PushResponse, ApiError>)> =
            Vec::with_capacity(pushes.len());
        let mut rest = pushes.into_iter();
        while let Some((push, reply)) = rest.next() {
            match group.handle(&mut txn, &push) {
                Step::Handled(result) => done.push((push, reply, result)),
                Step::Lost(error) => {
                    tracing::warn!(
                        requeued = done.len() + rest.len(),
                        "SQLite rolled back a group's transaction: {error}; the other \
                         pushes of the group are handled again"
                    );
                    counters.requests.fetch_add(1, Ordering::Relaxed);
                    let _ = reply.send(Err(error));
                    drop(txn);
                    let again: Vec<Job> = done
                        .into_iter()
                        .map(|(p, r, _)| Job::Push(p, r))
                        .chain(rest.map(|(p, r)| Job::Push(p, r)))
                        .collect();
                    for job in again.into_iter().rev() {
                        pending.push_front(job);
                    }
                    return;
                }
            }
        }

        // The newest cursor of each space the group's pushes reached, for the live sockets.
        let mut moved: HashMap<SpaceId, u64> = HashMap::new();
        for (push, _, result) in &done {
            if let Ok(r) = result {
                let c = moved.entry(push.space).or_default();
                *c = (*c).max(r.cursor);
            }
        }
        if group.wrote {
            // Other instances hear of the new cursors when (and only if) this commits.
            let announced = moved
                .iter()
                .try_for_each(|(space, cursor)| txn.announce(space, *cursor));
            if let Err(e) = announced {
                tracing::warn!("cannot announce a group's commit to other instances: {e}");
            }
            let committed = if *fail_commits > 0 {
                *fail_commits -= 1;
                drop(txn);
                Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                    None,
                )))
            } else {
                txn.commit()
            };
            if let Err(e) = committed {
                tracing::error!(
                    requests = done.len(),
                    "a group's commit failed; all its pushes are refused: {e}"
                );
                let e = ApiError::from(e);
                for (_, reply, _) in done {
                    counters.requests.fetch_add(1, Ordering::Relaxed);
                    let _ = reply.send(Err(e.clone()));
                }
                return;
            }
            counters.commits.fetch_add(1, Ordering::Relaxed);
            counters
                .largest_group
                .fetch_max(done.len() as u64, Ordering::Relaxed);
        } else {
            // Nothing to make durable (only duplicates and refusals): roll back.
            drop(txn);
        }
        counters.events.fetch_add(group.stored, Ordering::Relaxed);
        // Committed: now the cache may move on.
        {
            let mut cache = lock(group.cache);
            for (space, c) in group.work {
                if c.state.exists() {
                    cache.insert(space, c);
                }
            }
        }
        tracing::debug!(requests = done.len(), wrote = group.wrote, "group handled");
        if group.wrote {
            // Durable now: tell this instance's live sockets.
            for (space, cursor) in moved {
                live.notify(Committed { space, cursor });
            }
        }
        for (_, reply, result) in done {
            counters.requests.fetch_add(1, Ordering::Relaxed);
            let _ = reply.send(result);
        }
    }
}

/// The committed state of `space`: `cached` if the database has nothing newer, else
/// `cached` (or an empty state) with the events after its cursor folded in.
fn current(
    q: &mut impl Reads,
    space: SpaceId,
    cached: Option<Cached>,
) -> Result<Cached, StoreError> {
    let newest = q.newest_cursor(&space)?;
    match cached {
        Some(c) if c.cursor == newest => Ok(c),
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
    Ok(Cached {
        state,
        usage,
        cursor,
    })
}

/// Takes the next group off the queue: at least one job, then while it stays under
/// [`MAX_GROUP_REQUESTS`] and [`MAX_GROUP_BYTES`].
fn take_group(pending: &mut VecDeque<Job>) -> Vec<Job> {
    let mut group = Vec::new();
    let mut bytes = 0usize;
    while let Some(job) = pending.front() {
        let size = match job {
            Job::Push(p, _) => p.bytes(),
            Job::Load(..) => 0,
        };
        if !group.is_empty()
            && (group.len() >= MAX_GROUP_REQUESTS || bytes + size > MAX_GROUP_BYTES)
        {
            break;
        }
        bytes += size;
        match pending.pop_front() {
            Some(job) => group.push(job),
            None => break,
        }
    }
    group
}

/// What one pushed event turned out to be while checking the batch.
enum Slot<'a> {
    /// Already stored, at this cursor.
    Stored(u64),
    /// New and admissible.
    New(&'a Event),
    /// A second copy of the new event at this index of the batch.
    Again(usize),
}

/// A group in progress: the working state of every space it touched.
struct Group<'a> {
    cache: &'a SpaceCache,
    config: &'a Config,
    forks: ForkLimits,
    /// Per space: the committed state plus the pushes of this group accepted so far.
    work: HashMap<SpaceId, Cached>,
    /// Whether anything was written (events or fork evidence).
    wrote: bool,
    /// Events stored by the group.
    stored: u64,
}

impl Group<'_> {
    /// Handles one push inside the group's transaction.
    fn handle<T: WriteTxn>(&mut self, txn: &mut T, push: &PreparedPush) -> Step {
        let result = self.push(txn, push);
        if txn.is_open() {
            return Step::Handled(result);
        }
        Step::Lost(result.err().unwrap_or_else(|| {
            ApiError::Internal("the write transaction was rolled back".to_string())
        }))
    }

    /// The working state of `space`: from this group, the cache, or folded from the
    /// database (the space is untouched by this group, so that is its committed state).
    fn space<T: WriteTxn>(
        &mut self,
        txn: &mut T,
        space: SpaceId,
    ) -> Result<&mut Cached, StoreError> {
        if !self.work.contains_key(&space) {
            // The group holds the space's lock: what the database has now is final.
            let cached = lock(self.cache).get(&space).cloned();
            let c = current(txn, space, cached)?;
            if c.state.exists() {
                lock(self.cache).insert(space, c.clone());
            }
            self.work.insert(space, c);
        }
        self.work
            .get_mut(&space)
            .ok_or(StoreError::Corrupt("working state vanished"))
    }

    /// Checks and stores one push (all or nothing), exactly as a lone push.
    fn push<T: WriteTxn>(
        &mut self,
        txn: &mut T,
        push: &PreparedPush,
    ) -> Result<PushResponse, ApiError> {
        let space = push.space;
        let now_ms = push.now_ms;
        let hashes = &push.hashes;
        let Cached {
            state: mut work,
            usage,
            ..
        } = self.space(txn, space)?.clone();
        let mut slots: Vec<Slot<'_>> = Vec::with_capacity(hashes.len());
        let mut new_in_batch: HashMap<[u8; 32], usize> = HashMap::new();
        let mut rejection = None;
        // Which of the batch are stored already (earlier pushes of this group included).
        let stored = txn.cursors_of(&space, hashes)?;
        // A push that creates the space must be allowed to (token, limits, headroom)
        // before any of its events is looked at.
        let creation = match push.events.first() {
            Some(first) if !work.exists() && first.kind() == Kind::Genesis => {
                Some(self.check_creation(txn, push, first)?)
            }
            _ => None,
        };

        for (i, ev) in push.events.iter().enumerate() {
            let hash = hashes[i];
            if let Some(&cursor) = stored.get(&hash) {
                slots.push(Slot::Stored(cursor));
                continue;
            }
            if let Some(&first) = new_in_batch.get(&hash) {
                slots.push(Slot::Again(first));
                continue;
            }
            match self.check_one(txn, &mut work, space, ev, now_ms) {
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
                    None => match stored.get(hash) {
                        Some(c) => (EventStatus::Duplicate, Some(*c), None),
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
                Slot::New(ev) => Some(*ev),
                _ => None,
            })
            .collect();
        let new_bytes: u64 = new.iter().map(|ev| ev.bytes().len() as u64).sum();
        let after = usage.plus(new.len() as u64, new_bytes);
        self.check_quota(space, usage, after)?;
        let (cursors, newest) = if new.is_empty() {
            (Vec::new(), txn.newest_cursor(&space)?)
        } else {
            if let Some(c) = &creation {
                // Counted before the rows go in: a creation that then fails still
                // counts against the limits, which errs on the side of the relay.
                let address = c.address.map(|a| a.to_string());
                txn.record_creation(&space, now_ms, address.as_deref(), c.token.as_deref())?;
            }
            let cursors = txn.insert_events(&space, &new, now_ms)?;
            self.wrote = true;
            self.stored += cursors.len() as u64;
            // Cursors only grow: the last one inserted is the space's newest.
            let newest = match cursors.last() {
                Some(c) => *c,
                None => txn.newest_cursor(&space)?,
            };
            (cursors, newest)
        };
        if !new.is_empty() {
            *self.space(txn, space)? = Cached {
                state: work,
                usage: after,
                cursor: newest,
            };
        }

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
    /// Whether `push`, whose first event `genesis` would create its space, may do so:
    /// with open registration, a creation token, or (for a personal space) an author
    /// that is already a member of a space here; then within the per-address and
    /// per-token limits, and below the headroom of `--max-db-bytes` (checked in that
    /// order, so that a stranger learns nothing of the relay's limits or fill). Returns what to
    /// record of the creation.
    fn check_creation<T: WriteTxn>(
        &mut self,
        txn: &mut T,
        push: &PreparedPush,
        genesis: &Event,
    ) -> Result<Credential, ApiError> {
        let c = self.config;
        let credential = &push.credential;
        let space = push.space;
        let allowed = c.open_registration
            || credential.token.is_some()
            || self.is_personal_of_member(txn, genesis)?;
        if !allowed {
            if let Some(suppressed) = CREATION_LOG.allow() {
                tracing::info!(
                    %space,
                    presented = credential.presented,
                    suppressed,
                    "space creation refused: no valid creation token"
                );
            }
            let what = "this relay only lets couples with a creation token create spaces; \
                        nothing was stored. Ask the relay's operator for a token and run \
                        `duet relay set URL --token TOKEN`";
            return Err(if credential.presented {
                ApiError::BadCreateToken(format!(
                    "the creation token sent in {H_CREATE_TOKEN} is not one of this relay's: {what}"
                ))
            } else {
                ApiError::CreateTokenRequired(format!(
                    "creating a space needs a creation token in {H_CREATE_TOKEN}: {what}"
                ))
            });
        }
        if c.max_creations_per_ip > 0
            && let Some(address) = credential.address
        {
            let since = push.now_ms.saturating_sub(CREATION_WINDOW_MS);
            let made = txn.creations_from(&address.to_string(), since)?;
            if made >= c.max_creations_per_ip {
                return Err(ApiError::TooManySpaces(format!(
                    "this address created {made} spaces on this relay in the last 24 hours, \
                     its limit (--max-creations-per-ip); nothing was stored. Retry tomorrow, \
                     or ask the relay's operator to raise the limit"
                )));
            }
        }
        if c.max_creations_per_token > 0
            && let Some(token) = &credential.token
        {
            let made = txn.creations_with(token)?;
            if made >= c.max_creations_per_token {
                return Err(ApiError::TokenExhausted(format!(
                    "this creation token already created {made} spaces, its limit \
                     (--max-creations-per-token); nothing was stored. Ask the relay's \
                     operator for another token"
                )));
            }
        }
        if c.max_db_bytes > 0
            && let Some(size) = txn.db_bytes()?
            && size.saturating_mul(100) >= c.max_db_bytes.saturating_mul(CREATION_HEADROOM_PERCENT)
        {
            if let Some(suppressed) = CREATION_LOG.allow() {
                tracing::warn!(
                    %space,
                    size,
                    max_db_bytes = c.max_db_bytes,
                    suppressed,
                    "space creation refused: the database is past {CREATION_HEADROOM_PERCENT}% \
                     of --max-db-bytes"
                );
            }
            return Err(ApiError::NoRoomForSpaces(format!(
                "this relay's database is past {CREATION_HEADROOM_PERCENT}% of its cap and \
                 keeps the rest for the spaces it already holds, so it creates no new space; \
                 nothing was stored. Ask the relay's operator to raise --max-db-bytes, or use \
                 another relay"
            )));
        }
        Ok(credential.clone())
    }

    /// Whether `genesis` creates a personal space, its author is already a current
    /// member of a shared space on this relay, and has no personal space here yet (a
    /// partner who joined creates their one personal space without a token; a member
    /// cannot go on creating personal spaces with it).
    fn is_personal_of_member<T: WriteTxn>(
        &mut self,
        txn: &mut T,
        genesis: &Event,
    ) -> Result<bool, ApiError> {
        let personal = matches!(
            MembershipOp::decode(genesis),
            Ok(MembershipOp::Genesis { personal: true, .. })
        );
        if !personal {
            return Ok(false);
        }
        let author = genesis.header().author;
        let mut member = false;
        for other in txn.spaces_of_author(&author, MEMBER_SPACES_LOOKED_AT)? {
            if other == genesis.header().space {
                continue;
            }
            let state = &self.space(txn, other)?.state;
            if state.is_personal() {
                return Ok(false);
            }
            member |= state.is_member(&author);
        }
        Ok(member)
    }

    fn check_quota(&self, space: SpaceId, before: Usage, after: Usage) -> Result<(), ApiError> {
        let c = self.config;
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

    /// Keeps `ev` as evidence that its author (a current member: membership is checked
    /// first) forked their chain at a seq where `existing` is stored, if the device's and
    /// the space's evidence have room; otherwise counts the attempt only. Evidence is
    /// not counted against the space's quota.
    fn record_fork<T: WriteTxn>(
        &mut self,
        txn: &mut T,
        space: SpaceId,
        ev: &Event,
        existing: &[u8; 32],
        now_ms: i64,
    ) -> Evidence {
        let author = ev.header().author;
        let recorded = txn.fork_room(&space, ev).and_then(|room| {
            if room.kept {
                return Ok(None);
            }
            let size = ev.bytes().len() as u64;
            let fits = room.device_rows < self.forks.per_device
                && room.space_bytes.saturating_add(size) <= self.forks.space_bytes;
            if fits {
                txn.insert_fork(ev, existing, now_ms)?;
                Ok(Some(Evidence::Kept))
            } else {
                txn.count_fork(&space, &author)?;
                Ok(Some(Evidence::Counted))
            }
        });
        let evidence = match recorded {
            Ok(None) => return Evidence::Kept,
            Ok(Some(e)) => e,
            Err(e) => {
                // The push is still refused as a fork; only the evidence is missing.
                tracing::error!(%space, "cannot record fork evidence: {e}");
                return Evidence::Failed;
            }
        };
        self.wrote = true;
        if let Some(suppressed) = FORK_LOG.allow() {
            tracing::warn!(
                %space,
                author = %hex::encode(author),
                seq = ev.header().seq,
                kept = matches!(evidence, Evidence::Kept),
                suppressed,
                "fork refused: a member signed two events with one seq"
            );
        }
        evidence
    }

    /// Admits one new, authentic event into the working state.
    fn check_one<'e, T: WriteTxn>(
        &mut self,
        txn: &mut T,
        work: &mut SpaceState,
        space: SpaceId,
        ev: &'e Event,
        now_ms: i64,
    ) -> Result<&'e Event, ApiError> {
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
        // Membership before the chain: whatever its seq, a removed or unknown device's
        // event is refused here, so it never reaches the fork evidence (rules 6 and 9
        // of docs/protocol.md; a genesis or a join goes on to the full check).
        if work.exists() {
            if work.is_removed(&h.author) {
                return Err(ApiError::from_admit_error(AdmitError::Removed));
            }
            if !work.is_member(&h.author) && !matches!(ev.kind(), Kind::Join | Kind::Genesis) {
                return Err(ApiError::from_admit_error(AdmitError::NotMember));
            }
        }
        match work.admit(ev, Some(now_ms)) {
            Ok(_) => Ok(ev),
            Err(AdmitError::Fork(seq)) if work.is_member(&h.author) => {
                let author = h.author;
                match txn.hash_at(&space, &author, seq)? {
                    Some(existing) if existing != ev.hash() => {
                        let evidence = self.record_fork(txn, space, ev, &existing, now_ms);
                        Err(ApiError::Fork(format!(
                            "fork: device {} already has event {} with seq {seq} in this \
                             space; the relay keeps that one and {}. A device must never \
                             sign two events with the same seq: sync before writing again",
                            hex::encode(author),
                            hex::encode(existing),
                            match evidence {
                                Evidence::Kept => "keeps this conflicting event as evidence",
                                Evidence::Counted => {
                                    "counts this conflicting event (the evidence it keeps \
                                     of this device's forks is full)"
                                }
                                Evidence::Failed => "could not record this conflicting event",
                            }
                        )))
                    }
                    _ => Err(ApiError::from_admit_error(AdmitError::Fork(seq))),
                }
            }
            Err(e) => Err(ApiError::from_admit_error(e)),
        }
    }
}

/// What became of a refused fork event.
enum Evidence {
    /// Kept (now or before) in the space's fork evidence.
    Kept,
    /// Only counted: the device's or the space's evidence is full.
    Counted,
    /// Neither: the database failed (logged).
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use duet_core::crypto::SpaceKey;
    use duet_core::event::Header;
    use duet_core::identity::Identity;

    /// A device signing its own chain.
    struct Dev {
        id: Identity,
        seq: u64,
        prev: [u8; 32],
    }

    impl Dev {
        fn new(name: &str) -> Dev {
            Dev {
                id: Identity::generate(name),
                seq: 0,
                prev: [0; 32],
            }
        }

        fn header(&self, kind: Kind, space: SpaceId) -> Header {
            Header {
                kind,
                space,
                author: self.id.device_key(),
                seq: self.seq + 1,
                prev: self.prev,
                time: duet_core::ids::now_ms(),
            }
        }

        fn keep(&mut self, ev: Event) -> Event {
            self.seq = ev.header().seq;
            self.prev = ev.hash();
            ev
        }

        fn genesis(&mut self, space: SpaceId) -> Event {
            let person: [u8; 16] = hex::decode(&self.id.person_id)
                .expect("hex person id")
                .try_into()
                .expect("16 bytes");
            let op = MembershipOp::Genesis {
                person,
                personal: false,
                x25519: duet_core::keywrap::x25519_public(&self.id),
            };
            let ev = Event::membership(self.header(op.kind(), space), &op, &self.id);
            self.keep(ev)
        }

        fn changes(&mut self, space: SpaceId, key: &SpaceKey, plain: &[u8]) -> Event {
            let ev = Event::changes(self.header(Kind::Changes, space), plain, key, &self.id);
            self.keep(ev)
        }
    }

    fn prepared(space: SpaceId, events: &[&Event]) -> PreparedPush {
        PreparedPush {
            space,
            hashes: events.iter().map(|e| e.hash()).collect(),
            events: events.iter().map(|e| (*e).clone()).collect(),
            now_ms: duet_core::ids::now_ms(),
            credential: Default::default(),
        }
    }

    fn worker(dir: &tempfile::TempDir, max_db_bytes: u64) -> Worker<Store> {
        let store = Store::open(&dir.path().join("relay.db")).expect("open");
        if max_db_bytes > 0 {
            store.set_max_bytes(max_db_bytes).expect("cap");
        }
        Worker {
            store,
            cache: SpaceCache::default(),
            config: Config {
                open_registration: true,
                ..Config::default()
            },
            forks: ForkLimits::default(),
            counters: Arc::default(),
            live: Live::default(),
            fail_commits: 0,
        }
    }

    /// Hands `pushes` to the worker as one queue (the first group holds them all) and
    /// runs groups until the queue is empty; returns the answers in order.
    fn run(
        w: &mut Worker<Store>,
        pushes: Vec<PreparedPush>,
    ) -> Vec<Result<PushResponse, ApiError>> {
        let mut answers = Vec::new();
        let mut pending = VecDeque::new();
        for p in pushes {
            let (reply, answer) = oneshot::channel();
            pending.push_back(Job::Push(p, reply));
            answers.push(answer);
        }
        while !pending.is_empty() {
            let group = take_group(&mut pending);
            w.run_group(group, &mut pending);
        }
        answers
            .into_iter()
            .map(|mut a| a.try_recv().expect("every push is answered"))
            .collect()
    }

    fn accepted_cursor(r: &Result<PushResponse, ApiError>) -> u64 {
        let resp = r.as_ref().expect("accepted");
        assert_eq!(resp.results.len(), 1);
        assert_eq!(resp.results[0].status, EventStatus::Accepted);
        resp.results[0].cursor.expect("a cursor")
    }

    fn code(r: &Result<PushResponse, ApiError>) -> &'static str {
        r.as_ref().err().map_or("ok", ApiError::code)
    }

    fn stored(w: &mut Worker<Store>, space: SpaceId) -> Vec<[u8; 32]> {
        let mut out = Vec::new();
        w.store
            .for_each_event(&space, 0, &mut |_, bytes: Vec<u8>| {
                out.push(duet_core::crypto::sha256(&bytes))
            })
            .expect("read");
        out
    }

    #[test]
    fn pushes_of_one_group_share_one_commit_and_a_refused_one_leaves_the_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = worker(&dir, 0);
        let (s1, s2) = (SpaceId::generate(), SpaceId::generate());
        let key = SpaceKey::generate();
        let (mut alex, mut bob, mut eve) = (Dev::new("Alex"), Dev::new("Bob"), Dev::new("Eve"));
        let g1 = alex.genesis(s1);
        let g2 = bob.genesis(s2);
        let a2 = alex.changes(s1, &key, b"2");
        // A gap: seq 4 right after 2.
        let (seq, prev) = (alex.seq, alex.prev);
        alex.seq += 1;
        let gap = alex.changes(s1, &key, b"gap");
        (alex.seq, alex.prev) = (seq, prev);
        let intruder = eve.changes(s1, &key, b"not a member");
        let b2 = bob.changes(s2, &key, b"b2");
        let a3 = alex.changes(s1, &key, b"3");
        let a4 = alex.changes(s1, &key, b"4");

        let answers = run(
            &mut w,
            vec![
                prepared(s1, &[&g1]),
                prepared(s2, &[&g2]),
                prepared(s1, &[&a2]),
                prepared(s1, &[&gap]),
                prepared(s1, &[&intruder]),
                prepared(s2, &[&b2]),
                // Admitted after a2 of the same group, not yet committed.
                prepared(s1, &[&a3]),
                prepared(s1, &[&a2]),
                // All or nothing: a4 is not stored with the intruder...
                prepared(s1, &[&a4, &intruder]),
                // ...but is on its own.
                prepared(s1, &[&a4]),
            ],
        );
        let codes: Vec<_> = answers.iter().map(code).collect();
        assert_eq!(
            codes,
            [
                "ok",
                "ok",
                "ok",
                "broken_chain",
                "not_a_member",
                "ok",
                "ok",
                "ok",
                "not_a_member",
                "ok"
            ]
        );
        let cursors: Vec<u64> = [0, 1, 2, 5, 6, 9]
            .iter()
            .map(|&i| accepted_cursor(&answers[i]))
            .collect();
        assert_eq!(
            cursors,
            [1, 2, 3, 4, 5, 6],
            "cursors follow the queue order"
        );
        // The repeated a2 is a duplicate with its cursor from the same group.
        let dup = answers[7].as_ref().expect("duplicate");
        assert_eq!(dup.results[0].status, EventStatus::Duplicate);
        assert_eq!(dup.results[0].cursor, Some(3));
        // The refused batch names each event's fate.
        match &answers[8] {
            Err(ApiError::Batch { results, .. }) => {
                assert_eq!(results[0].status, EventStatus::NotStored);
                assert_eq!(results[1].status, EventStatus::Rejected);
            }
            other => panic!("expected a refused batch, got {other:?}"),
        }
        // The space's newest cursor is as of each push.
        assert_eq!(answers[6].as_ref().map(|r| r.cursor).ok(), Some(5));

        assert_eq!(
            w.counters.commits.load(Ordering::Relaxed),
            1,
            "one commit for the whole group"
        );
        assert_eq!(w.counters.requests.load(Ordering::Relaxed), 10);
        assert_eq!(w.counters.events.load(Ordering::Relaxed), 6);
        assert_eq!(
            w.counters.largest_group.load(Ordering::Relaxed),
            10,
            "refusals are answered with their group"
        );
        assert_eq!(
            stored(&mut w, s1),
            [g1.hash(), a2.hash(), a3.hash(), a4.hash()]
        );
        assert_eq!(stored(&mut w, s2), [g2.hash(), b2.hash()]);
        let cache = lock(&w.cache);
        assert_eq!(
            cache
                .get(&s1)
                .and_then(|c| c.state.head(&alex.id.device_key())),
            Some((4, a4.hash()))
        );
        assert_eq!(cache.get(&s1).map(|c| c.usage.events), Some(4));
    }

    #[test]
    fn a_failed_commit_refuses_every_push_of_the_group_and_the_state_does_not_move() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = worker(&dir, 0);
        let (s1, s2) = (SpaceId::generate(), SpaceId::generate());
        let key = SpaceKey::generate();
        let (mut alex, mut bob, mut eve) = (Dev::new("Alex"), Dev::new("Bob"), Dev::new("Eve"));
        let g1 = alex.genesis(s1);
        assert_eq!(code(&run(&mut w, vec![prepared(s1, &[&g1])])[0]), "ok");

        w.fail_commits = 1;
        let a2 = alex.changes(s1, &key, b"2");
        let g2 = bob.genesis(s2);
        let intruder = eve.changes(s1, &key, b"no");
        let answers = run(
            &mut w,
            vec![
                prepared(s1, &[&a2]),
                prepared(s2, &[&g2]),
                prepared(s1, &[&intruder]),
            ],
        );
        for a in &answers {
            assert_eq!(code(a), "storage_full");
            assert_eq!(a.as_ref().err().map(|e| e.status().as_u16()), Some(507));
        }
        assert_eq!(stored(&mut w, s1), [g1.hash()]);
        assert!(stored(&mut w, s2).is_empty());
        assert_eq!(w.counters.commits.load(Ordering::Relaxed), 1);
        // The cache did not take the refused group in: the same pushes go through now.
        assert_eq!(
            lock(&w.cache)
                .get(&s1)
                .and_then(|c| c.state.head(&alex.id.device_key())),
            Some((1, g1.hash()))
        );
        let answers = run(&mut w, vec![prepared(s1, &[&a2]), prepared(s2, &[&g2])]);
        assert_eq!(accepted_cursor(&answers[0]), 2);
        assert_eq!(accepted_cursor(&answers[1]), 3);
        assert_eq!(w.counters.commits.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn when_sqlite_rolls_the_group_back_only_the_push_that_did_not_fit_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = worker(&dir, 64 * 1024);
        let (s1, s2) = (SpaceId::generate(), SpaceId::generate());
        let key = SpaceKey::generate();
        let (mut alex, mut bob) = (Dev::new("Alex"), Dev::new("Bob"));
        let g1 = alex.genesis(s1);
        let (seq, prev) = (alex.seq, alex.prev);
        let big = alex.changes(s1, &key, &vec![0u8; 200_000]);
        (alex.seq, alex.prev) = (seq, prev);
        let small = alex.changes(s1, &key, b"fits");
        let g2 = bob.genesis(s2);

        let answers = run(
            &mut w,
            vec![
                prepared(s1, &[&g1]),
                prepared(s1, &[&big]),
                prepared(s2, &[&g2]),
                // Same seq as the big one, which was not stored.
                prepared(s1, &[&small]),
            ],
        );
        let codes: Vec<_> = answers.iter().map(code).collect();
        assert_eq!(codes, ["ok", "storage_full", "ok", "ok"]);
        assert_eq!(stored(&mut w, s1), [g1.hash(), small.hash()]);
        assert_eq!(stored(&mut w, s2), [g2.hash()]);
        // The first transaction was lost; the three others were committed together.
        assert_eq!(w.counters.commits.load(Ordering::Relaxed), 1);
        assert_eq!(w.counters.requests.load(Ordering::Relaxed), 4);
        assert!(
            w.store.connection().is_autocommit(),
            "no transaction left open"
        );
    }

    #[test]
    fn fork_evidence_is_bounded_per_device_and_per_space_and_the_rest_is_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = worker(&dir, 0);
        w.forks = ForkLimits {
            per_device: 2,
            space_bytes: 3 * 1000,
        };
        let space = SpaceId::generate();
        let key = SpaceKey::generate();
        let (mut alex, mut sam) = (Dev::new("Alex"), Dev::new("Sam"));
        let g = alex.genesis(space);
        let seed = [5u8; 32];
        let (invite_sk, invite_key) = duet_core::identity::keypair_from_seed(seed);
        let op = MembershipOp::Invite {
            invite_key,
            expires_at: duet_core::ids::now_ms() + 60_000,
            person: None,
        };
        let inv = Event::membership(alex.header(op.kind(), space), &op, &alex.id);
        let inv = alex.keep(inv);
        let person: [u8; 16] = hex::decode(&sam.id.person_id)
            .expect("hex")
            .try_into()
            .expect("16 bytes");
        let msg = MembershipOp::join_message(&space, &sam.id.device_key(), &person);
        let op = MembershipOp::Join {
            invite_key,
            person,
            x25519: duet_core::keywrap::x25519_public(&sam.id),
            invite_sig: ed25519_dalek::Signer::sign(&invite_sk, &msg).to_bytes(),
        };
        let join = Event::membership(sam.header(op.kind(), space), &op, &sam.id);
        let join = sam.keep(join);
        let (a_at, s_at) = ((alex.seq, alex.prev), (sam.seq, sam.prev));
        let a2 = alex.changes(space, &key, b"a2");
        let s2 = sam.changes(space, &key, b"s2");
        let ok = run(&mut w, vec![prepared(space, &[&g, &inv, &join, &a2, &s2])]);
        assert_eq!(code(&ok[0]), "ok");

        // About 900 bytes each: Alex's third fork is over his bound; Sam's second is
        // over the space's.
        let fork = |d: &mut Dev, at: (u64, [u8; 32]), i: u8| {
            (d.seq, d.prev) = at;
            d.changes(space, &key, &[i; 700])
        };
        let forks = [
            fork(&mut alex, a_at, 1),
            fork(&mut alex, a_at, 2),
            fork(&mut alex, a_at, 3),
            fork(&mut sam, s_at, 4),
            fork(&mut sam, s_at, 5),
        ];
        let answers = run(
            &mut w,
            forks.iter().map(|f| prepared(space, &[f])).collect(),
        );
        assert!(answers.iter().all(|a| code(a) == "fork"));
        let kept: Vec<[u8; 32]> = {
            let conn = w.store.connection();
            let mut stmt = conn
                .prepare("SELECT hash FROM forks ORDER BY id")
                .expect("prepare");
            stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))
                .expect("query")
                .map(|h| h.expect("row").try_into().expect("32 bytes"))
                .collect()
        };
        assert_eq!(kept, [forks[0].hash(), forks[1].hash(), forks[3].hash()]);
        let (_, _, attempts) = w.store.page_and_newest(&space, 0, 1, 1).expect("read");
        assert_eq!(attempts, 5);
        // The quota counts the events only.
        assert_eq!(lock(&w.cache).get(&space).map(|c| c.usage.events), Some(5));
    }

    #[test]
    fn a_group_holds_at_most_its_cap_of_requests() {
        let mut pending = VecDeque::new();
        for _ in 0..MAX_GROUP_REQUESTS + 10 {
            let (reply, _) = oneshot::channel();
            pending.push_back(Job::Load(SpaceId::generate(), reply));
        }
        assert_eq!(take_group(&mut pending).len(), MAX_GROUP_REQUESTS);
        assert_eq!(take_group(&mut pending).len(), 10);
        assert!(take_group(&mut pending).is_empty());
    }
}
