//! The writer thread and its channel: jobs queue up, are taken in groups, and each group
//! of pushes is handled in one transaction, committed once, and answered after the
//! commit (see the parent module for what that guarantees).

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use duet_core::event::SpaceId;
use duet_core::protocol::PushResponse;

use super::admission::{Group, Step};
use super::{
    Cached, ForkLimits, Job, MAX_GROUP_BYTES, MAX_GROUP_REQUESTS, PreparedPush, PushReply,
    SpaceCache, WriterStats, current, lock, writer_gone,
};
use crate::error::ApiError;
use crate::limits::Config;
use crate::live::{Committed, Live};
use crate::store::{Backend, StoreError, WriteTxn};

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) requests: AtomicU64,
    pub(super) commits: AtomicU64,
    pub(super) events: AtomicU64,
    pub(super) largest_group: AtomicU64,
}

/// How often the writer forgets the addresses of creations past the per-address
/// window, besides at each creation and at start (a relay for one couple creates
/// nothing after pairing: the couple's address would stay in it, and in its backups).
const FORGET_EVERY: Duration = Duration::from_secs(10 * 60);

/// Groups whose transaction the database ended (a full disk ends each one): at most a
/// line a second, so that the log does not grow fastest when the disk is full.
static LOST_LOG: crate::logging::Throttle = crate::logging::Throttle::per_second();

/// Groups whose commit failed (a full disk fails each one): as [`LOST_LOG`].
static COMMIT_LOG: crate::logging::Throttle = crate::logging::Throttle::per_second();

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

/// The state owned by the writer thread.
pub(super) struct Worker<B: Backend> {
    pub(super) store: B,
    pub(super) cache: SpaceCache,
    pub(super) config: Config,
    pub(super) forks: ForkLimits,
    pub(super) counters: Arc<Counters>,
    /// Where committed cursors are announced to live sockets.
    pub(super) live: Live,
    /// This many next commits fail as if the disk were full (0 outside tests).
    pub(super) fail_commits: usize,
}

impl<B: Backend> Worker<B> {
    fn run(&mut self, queue: &mpsc::Receiver<Job>) {
        let mut pending: VecDeque<Job> = VecDeque::new();
        self.forget_creators();
        let mut forgot = Instant::now();
        loop {
            if pending.is_empty() {
                match queue.recv_timeout(FORGET_EVERY.saturating_sub(forgot.elapsed())) {
                    Ok(job) => pending.push_back(job),
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
            if forgot.elapsed() >= FORGET_EVERY {
                self.forget_creators();
                forgot = Instant::now();
            }
            if pending.is_empty() {
                continue;
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

    /// Forgets who created the spaces created before the per-address window (docs/
    /// self-hosting.md: addresses are kept 24 hours); a failure waits for the next try.
    fn forget_creators(&mut self) {
        let before = duet_core::ids::now_ms().saturating_sub(crate::creation::CREATION_WINDOW_MS);
        let forgotten = self.store.begin().and_then(|mut txn| {
            txn.forget_creators_before(before)?;
            txn.commit()
        });
        if let Err(e) = forgotten {
            tracing::warn!(
                "cannot forget the addresses of creations older than a day: {e}; tried again \
                 in {} minutes",
                FORGET_EVERY.as_secs() / 60
            );
        }
    }

    pub(super) fn run_group(&mut self, group: Vec<Job>, pending: &mut VecDeque<Job>) {
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
        let mut txn = match begin(store, &pushes) {
            Ok(t) => t,
            Err(e) => return counters.refuse_all(pushes, &ApiError::from(e)),
        };
        let mut group = Group {
            cache,
            config,
            forks: *forks,
            work: HashMap::new(),
            wrote: false,
            stored: 0,
        };
        let Some(done) = handle_all(&mut group, &mut txn, pushes, counters, pending) else {
            return;
        };
        let moved = moved_cursors(&done);
        if group.wrote {
            if let Err(e) = commit(txn, &moved, fail_commits) {
                if let Some(suppressed) = COMMIT_LOG.allow() {
                    tracing::error!(
                        requests = done.len(),
                        suppressed,
                        "a group's commit failed; all its pushes are refused: {e}"
                    );
                }
                let done = done.into_iter().map(|(p, r, _)| (p, r)).collect();
                return counters.refuse_all(done, &ApiError::from(e));
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
        for (push, reply, result) in done {
            counters.requests.fetch_add(1, Ordering::Relaxed);
            answer(push, reply, result);
        }
    }
}

/// Answers `push` with `result`, its share of the push memory given back first: a
/// client that sends its next push as soon as it hears finds the memory free.
fn answer(push: PreparedPush, reply: PushReply, result: Result<PushResponse, ApiError>) {
    drop(push);
    let _ = reply.send(result);
}

/// A push handled inside the group's transaction, and its answer once committed.
type Done = (PreparedPush, PushReply, Result<PushResponse, ApiError>);

impl Counters {
    /// Answers every push with `e`.
    fn refuse_all(&self, pushes: Vec<(PreparedPush, PushReply)>, e: &ApiError) {
        for (push, reply) in pushes {
            self.requests.fetch_add(1, Ordering::Relaxed);
            answer(push, reply, Err(e.clone()));
        }
    }
}

/// Opens the group's transaction and locks the spaces its pushes write to: writers of
/// these spaces (on other relay instances) wait until this commit.
fn begin<'s, B: Backend>(
    store: &'s mut B,
    pushes: &[(PreparedPush, PushReply)],
) -> Result<B::Txn<'s>, StoreError> {
    let mut txn = store
        .begin()
        .inspect_err(|e| failed("cannot begin a write transaction", e))?;
    let mut spaces: Vec<SpaceId> = pushes.iter().map(|(p, _)| p.space).collect();
    spaces.sort_unstable_by_key(|s| s.0);
    spaces.dedup();
    txn.lock_spaces(&spaces)
        .inspect_err(|e| failed("cannot lock the spaces of a group", e))?;
    let hashes: Vec<(SpaceId, [u8; 32])> = pushes
        .iter()
        .flat_map(|(p, _)| p.hashes.iter().map(|h| (p.space, *h)))
        .collect();
    txn.prefetch(&spaces, &hashes)
        .inspect_err(|e| failed("cannot read the state of a group's spaces", e))?;
    Ok(txn)
}

/// Logs a group's failure to start: a warning when the database's connection was lost
/// (a PostgreSQL restarted, a session ended: the group waits for the connection made
/// again, and nothing is lost), an error otherwise. Each lost session was an ERROR line,
/// a false alarm to an operator who alerts on them.
fn failed(what: &str, e: &StoreError) {
    if e.is_unreachable() {
        tracing::warn!(
            "{what}: the database connection was lost ({e}); the group is tried again once it is back"
        );
    } else {
        tracing::error!("{what}: {e}");
    }
}

/// Handles each push in turn. When the database ends the whole transaction under one,
/// that one gets the error, the others go back to the head of `pending`, and the
/// answer is `None`.
fn handle_all<T: WriteTxn>(
    group: &mut Group<'_>,
    txn: &mut T,
    pushes: Vec<(PreparedPush, PushReply)>,
    counters: &Counters,
    pending: &mut VecDeque<Job>,
) -> Option<Vec<Done>> {
    let mut done: Vec<Done> = Vec::with_capacity(pushes.len());
    let mut rest = pushes.into_iter();
    while let Some((push, reply)) = rest.next() {
        match group.handle(txn, &push) {
            Step::Handled(result) => done.push((push, reply, result)),
            Step::Lost(error) => {
                if let Some(suppressed) = LOST_LOG.allow() {
                    tracing::warn!(
                        requeued = done.len() + rest.len(),
                        suppressed,
                        "the database ended a group's transaction: {error}; the other \
                         pushes of the group are handled again"
                    );
                }
                counters.requests.fetch_add(1, Ordering::Relaxed);
                answer(push, reply, Err(error));
                let again: Vec<Job> = done
                    .into_iter()
                    .map(|(p, r, _)| Job::Push(p, r))
                    .chain(rest.map(|(p, r)| Job::Push(p, r)))
                    .collect();
                for job in again.into_iter().rev() {
                    pending.push_front(job);
                }
                return None;
            }
        }
    }
    Some(done)
}

/// The newest cursor of each space the group's pushes reached, for the live sockets.
fn moved_cursors(done: &[Done]) -> HashMap<SpaceId, u64> {
    let mut moved: HashMap<SpaceId, u64> = HashMap::new();
    for (push, _, result) in done {
        if let Ok(r) = result {
            let c = moved.entry(push.space).or_default();
            *c = (*c).max(r.cursor);
        }
    }
    moved
}

/// Announces the group's cursors to other instances (heard when, and only if, this
/// commits) and commits; `fail_commits` makes the next ones fail as a full disk would.
fn commit<T: WriteTxn>(
    mut txn: T,
    moved: &HashMap<SpaceId, u64>,
    fail_commits: &mut usize,
) -> Result<(), StoreError> {
    let announced = moved
        .iter()
        .try_for_each(|(space, cursor)| txn.announce(space, *cursor));
    if let Err(e) = announced {
        tracing::warn!("cannot announce a group's commit to other instances: {e}");
    }
    if *fail_commits > 0 {
        *fail_commits -= 1;
        drop(txn);
        return Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        )));
    }
    txn.commit()
}

/// Takes the next group off the queue: at least one job, then while it stays under
/// [`MAX_GROUP_REQUESTS`] and [`MAX_GROUP_BYTES`].
pub(super) fn take_group(pending: &mut VecDeque<Job>) -> Vec<Job> {
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
