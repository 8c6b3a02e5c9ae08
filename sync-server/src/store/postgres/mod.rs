//! The relay's PostgreSQL backend, for several relay instances over one database.
//!
//! The same tables as the SQLite backend (`events` with a `BIGSERIAL` cursor, `forks`,
//! `fork_counts`),
//! migrated forward on open under an advisory lock (two instances starting at once do
//! not both migrate). PostgreSQL's default `synchronous_commit = on` makes a commit
//! durable before the relay answers.
//!
//! What keeps one order per space across instances: a writer takes
//! `pg_advisory_xact_lock` on each space of its group (in ascending order, so two
//! instances never deadlock) before reading anything of them, and holds it until its
//! commit. Writers of a space are therefore serialized, so its cursors grow in commit
//! order and a reader never sees a cursor appear below one it has already read; the
//! unique constraints on `(space, hash)` and `(space, author, seq)` refuse a second copy
//! or a fork even if a bug let two writers through. New cursors are announced with
//! `pg_notify` inside the transaction, so every instance hears of a commit exactly when
//! it becomes visible ([`listen`]). The writer's transaction is built for few round
//! trips per group of pushes, not per push ([`txn`]).
//!
//! The `postgres` crate is synchronous (it runs its own small runtime), like rusqlite:
//! it is only called from plain threads (the writer, the listener) and the blocking
//! pool, never from an async task.

use duet_core::event::{Event, SpaceId};
use postgres::{Client, GenericClient, NoTls, ToStatement};

use super::{
    Backend, ForkRoom, Page, Reader, Reads, StoreError, fill_page, to_hash, to_i64, to_u64,
};

mod listen;
mod schema;
mod txn;

pub use listen::{CHANNEL, ListenerGuard, listen, parse_announcement};
pub use schema::{SCHEMA_VERSION, create_schema};
pub use txn::PgTxn;

/// A URL with its password replaced by `***`, for messages and logs: in its user part
/// and in a `password=` parameter.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let mut out = match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => format!("{scheme}://{rest}"),
        },
        None => format!("{scheme}://{rest}"),
    };
    if let Some(q) = query {
        let params: Vec<String> = q
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => p.to_string(),
            })
            .collect();
        out = format!("{out}?{}", params.join("&"));
    }
    out
}
/// Runs `f` on a thread of its own: the `postgres` crate must not be called from a
/// thread that drives async tasks (it blocks on its own runtime).
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Connects to `url`, giving up after 10 s unless the URL says otherwise
/// (`connect_timeout`): a request waits on a reconnection, and a database host that
/// drops packets would otherwise hold it for minutes.
fn connect(url: &str) -> Result<Client, StoreError> {
    let mut config: postgres::Config = url.parse()?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    // PostgreSQL's notices ("relation duet_schema already exists, skipping" at every
    // start) ask nothing of an operator; its warnings are logged.
    config.notice_callback(|notice| {
        if notice.severity() == "WARNING" {
            tracing::warn!("PostgreSQL: {}", notice.message());
        }
    });
    Ok(off_runtime(move || config.connect(NoTls))?)
}

/// The lock key of a space: its first 8 bytes (ids are random).
fn lock_key(space: &SpaceId) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&space.0[..8]);
    i64::from_be_bytes(b)
}

/// One connection to the relay's PostgreSQL database.
pub struct PgStore {
    /// `Some` until dropped (taken to be closed off the async threads), or until a
    /// reconnection failed.
    client: Option<Client>,
    /// Where to connect again when the connection is lost (a restart of PostgreSQL, a
    /// session ended by its operator, a failover).
    url: String,
    /// The database was found out of reach and not since reached: said once in the log,
    /// not at every request refused meanwhile.
    away: bool,
    /// The writer's statements, prepared once per connection (a statement sent as text
    /// costs a second round trip to prepare it each time).
    statements: txn::Statements,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Closing blocks on the crate's own runtime, which must not happen on a thread
        // that drives async tasks (an `AppState` may be dropped there).
        if let Some(client) = self.client.take() {
            off_runtime(move || drop(client));
        }
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` and migrates the schema (creating it on an empty database).
    pub fn open(url: &str) -> Result<PgStore, StoreError> {
        let mut store = PgStore {
            client: Some(connect(url)?),
            url: url.to_string(),
            away: false,
            statements: txn::Statements::default(),
        };
        off_runtime(|| schema::migrate(store.client()?))?;
        Ok(store)
    }

    /// The connection, made again first when it was lost: until PostgreSQL answers
    /// again, each request is refused as retryable ([`StoreError::Unreachable`]).
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.reconnect()?;
        }
        self.client
            .as_mut()
            .ok_or(StoreError::Corrupt("the PostgreSQL connection is closed"))
    }

    fn reconnect(&mut self) -> Result<(), StoreError> {
        if let Some(old) = self.client.take() {
            off_runtime(move || drop(old));
        }
        // Prepared statements belong to the connection they were prepared on.
        self.statements = txn::Statements::default();
        match connect(&self.url) {
            Ok(client) => {
                tracing::info!("connected again to the PostgreSQL database");
                self.client = Some(client);
                self.away = false;
                Ok(())
            }
            Err(e) => {
                if !std::mem::replace(&mut self.away, true) {
                    tracing::warn!(
                        "the PostgreSQL database is out of reach: {e}; requests are refused with 503 until it answers"
                    );
                }
                Err(StoreError::Unreachable(e.to_string()))
            }
        }
    }

    /// Stores `events` (all of `space`) in one durable transaction; returns their cursors
    /// and the space's newest cursor (the benchmarks' one-commit-per-event baseline).
    pub fn insert_events(
        &mut self,
        space: &SpaceId,
        events: &[&Event],
        received_at: i64,
    ) -> Result<(Vec<u64>, u64), StoreError> {
        let mut tx = self.client()?.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key(space)])?;
        let cursors = insert_rows(&mut tx, INSERT_EVENTS, space, events, received_at)?;
        let newest = newest_in(&mut tx, space)?;
        tx.commit()?;
        Ok((cursors, newest))
    }
}

fn spaces_of_author_in(
    q: &mut impl GenericClient,
    author: &[u8; 32],
    limit: u32,
) -> Result<Vec<SpaceId>, StoreError> {
    let rows = q.query(
        "SELECT space FROM events WHERE author = $1 AND seq = 1 LIMIT $2",
        &[&&author[..], &i64::from(limit)],
    )?;
    rows.iter()
        .map(|r| SpaceId::parse(&r.get::<_, String>(0)).ok_or(StoreError::Corrupt("space id")))
        .collect()
}

fn newest_in(q: &mut impl GenericClient, space: &SpaceId) -> Result<u64, StoreError> {
    let row = q.query_one(
        "SELECT COALESCE(MAX(cursor), 0) FROM events WHERE space = $1",
        &[&space.to_string()],
    )?;
    to_u64(row.get(0), "cursor")
}

fn hash_at_cursor_in(
    q: &mut impl GenericClient,
    space: &SpaceId,
    cursor: u64,
) -> Result<Option<[u8; 32]>, StoreError> {
    q.query_opt(
        "SELECT hash FROM events WHERE cursor = $1 AND space = $2",
        &[&to_i64(cursor, "cursor")?, &space.to_string()],
    )?
    .map(|r| to_hash(r.get(0)))
    .transpose()
}

fn stored_at_in(
    q: &mut impl GenericClient,
    space: &SpaceId,
    author: &[u8; 32],
    seq: u64,
) -> Result<Option<(u64, [u8; 32])>, StoreError> {
    q.query_opt(
        "SELECT cursor, hash FROM events WHERE space = $1 AND author = $2 AND seq = $3",
        &[&space.to_string(), &&author[..], &to_i64(seq, "seq")?],
    )?
    .map(|r| Ok((to_u64(r.get(0), "cursor")?, to_hash(r.get(1))?)))
    .transpose()
}

fn fork_room_in(
    q: &mut impl GenericClient,
    space: &SpaceId,
    event: &Event,
) -> Result<ForkRoom, StoreError> {
    let row = q.query_one(
        "SELECT COUNT(*) FILTER (WHERE hash = $2),
                COUNT(*) FILTER (WHERE author = $3),
                COALESCE(SUM(LENGTH(bytes)), 0)::BIGINT
         FROM forks WHERE space = $1",
        &[
            &space.to_string(),
            &&event.hash()[..],
            &&event.header().author[..],
        ],
    )?;
    let kept: i64 = row.get(0);
    Ok(ForkRoom {
        kept: kept > 0,
        device_rows: to_u64(row.get(1), "fork count")?,
        space_bytes: to_u64(row.get(2), "fork bytes")?,
    })
}

/// Fork attempts refused in `space`: evidence kept plus attempts only counted.
fn fork_attempts_in(q: &mut impl GenericClient, space: &SpaceId) -> Result<u64, StoreError> {
    let row = q.query_one(
        "SELECT (SELECT COUNT(*) FROM forks WHERE space = $1)
              + (SELECT COALESCE(SUM(refused), 0) FROM fork_counts WHERE space = $1)::BIGINT",
        &[&space.to_string()],
    )?;
    to_u64(row.get(0), "fork count")
}

fn for_each_event_in(
    q: &mut impl GenericClient,
    space: &SpaceId,
    after: u64,
    f: &mut dyn FnMut(u64, Vec<u8>),
) -> Result<(), StoreError> {
    // In slices, so that a large space is never held in memory at once.
    const SLICE: i64 = 1000;
    let mut after = i64::try_from(after).unwrap_or(i64::MAX);
    loop {
        let rows = q.query(
            "SELECT cursor, bytes FROM events WHERE space = $1 AND cursor > $2
             ORDER BY cursor LIMIT $3",
            &[&space.to_string(), &after, &SLICE],
        )?;
        let n = rows.len();
        for row in rows {
            let cursor: i64 = row.get(0);
            after = cursor;
            f(to_u64(cursor, "cursor")?, row.get(1));
        }
        if (n as i64) < SLICE {
            return Ok(());
        }
    }
}

/// Inserts a batch of events of one space, in their order.
const INSERT_EVENTS: &str =
    "INSERT INTO events (space, hash, author, seq, kind, bytes, received_at)
     SELECT $1, t.h, t.a, t.s, t.k, t.b, $7
     FROM UNNEST($2::bytea[], $3::bytea[], $4::int8[], $5::text[], $6::bytea[])
          WITH ORDINALITY AS t(h, a, s, k, b, n)
     ORDER BY t.n
     RETURNING hash, cursor";

/// Inserts `events` with one statement (one round trip), in their order: the cursors
/// come from the sequence row by row in that order, which is checked.
fn insert_rows(
    tx: &mut impl GenericClient,
    statement: &(impl ToStatement + ?Sized),
    space: &SpaceId,
    events: &[&Event],
    received_at: i64,
) -> Result<Vec<u64>, StoreError> {
    let hashes: Vec<[u8; 32]> = events.iter().map(|e| e.hash()).collect();
    let hash_refs: Vec<&[u8]> = hashes.iter().map(|h| &h[..]).collect();
    let authors: Vec<&[u8]> = events.iter().map(|e| &e.header().author[..]).collect();
    let seqs: Vec<i64> = events
        .iter()
        .map(|e| to_i64(e.header().seq, "seq"))
        .collect::<Result<_, _>>()?;
    let kinds: Vec<&str> = events.iter().map(|e| e.header().kind.as_str()).collect();
    let bytes: Vec<&[u8]> = events.iter().map(|e| e.bytes()).collect();
    let rows = tx.query(
        statement,
        &[
            &space.to_string(),
            &hash_refs,
            &authors,
            &seqs,
            &kinds,
            &bytes,
            &received_at,
        ],
    )?;
    let mut at: std::collections::HashMap<Vec<u8>, u64> = std::collections::HashMap::new();
    for row in rows {
        at.insert(row.get(0), to_u64(row.get(1), "cursor")?);
    }
    let cursors: Vec<u64> = hash_refs
        .iter()
        .map(|h| {
            at.get(*h)
                .copied()
                .ok_or(StoreError::Corrupt("an inserted event has no cursor"))
        })
        .collect::<Result<_, _>>()?;
    // The order of a batch is its chain order: it must be the cursors' order too.
    if !cursors.windows(2).all(|w| w[0] < w[1]) {
        return Err(StoreError::Corrupt(
            "PostgreSQL numbered a batch out of order",
        ));
    }
    Ok(cursors)
}

/// PostgreSQL keeps its index by hash: the writer's prefetch asks by hash for the
/// pushes of many spaces in one query, and this for those it did not prefetch.
fn cursors_of_in(
    q: &mut impl GenericClient,
    space: &SpaceId,
    hashes: &[[u8; 32]],
) -> Result<std::collections::HashMap<[u8; 32], u64>, StoreError> {
    let refs: Vec<&[u8]> = hashes.iter().map(|h| &h[..]).collect();
    let rows = q.query(
        "SELECT hash, cursor FROM events WHERE space = $1 AND hash = ANY($2)",
        &[&space.to_string(), &refs],
    )?;
    let mut out = std::collections::HashMap::new();
    for row in rows {
        out.insert(to_hash(row.get(0))?, to_u64(row.get(1), "cursor")?);
    }
    Ok(out)
}

macro_rules! reads_over {
    ($ty:ty, $this:ident) => {
        impl Reads for $ty {
            fn stored_at(
                &mut self,
                space: &SpaceId,
                author: &[u8; 32],
                seq: u64,
            ) -> Result<Option<(u64, [u8; 32])>, StoreError> {
                let $this = self;
                $this.guard(|q| stored_at_in(q, space, author, seq))
            }

            fn newest_cursor(&mut self, space: &SpaceId) -> Result<u64, StoreError> {
                let $this = self;
                $this.guard(|q| newest_in(q, space))
            }

            fn hash_at_cursor(
                &mut self,
                space: &SpaceId,
                cursor: u64,
            ) -> Result<Option<[u8; 32]>, StoreError> {
                let $this = self;
                $this.guard(|q| hash_at_cursor_in(q, space, cursor))
            }

            fn fork_room(
                &mut self,
                space: &SpaceId,
                event: &Event,
            ) -> Result<ForkRoom, StoreError> {
                let $this = self;
                $this.guard(|q| fork_room_in(q, space, event))
            }

            fn for_each_event(
                &mut self,
                space: &SpaceId,
                after: u64,
                f: &mut dyn FnMut(u64, Vec<u8>),
            ) -> Result<(), StoreError> {
                let $this = self;
                $this.guard(|q| for_each_event_in(q, space, after, f))
            }

            fn spaces_of_author(
                &mut self,
                author: &[u8; 32],
                limit: u32,
            ) -> Result<Vec<SpaceId>, StoreError> {
                let $this = self;
                $this.guard(|q| spaces_of_author_in(q, author, limit))
            }
        }
    };
}

impl PgStore {
    fn guard<T>(
        &mut self,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        f(self.client()?)
    }
}

reads_over!(PgStore, s);

impl Backend for PgStore {
    type Txn<'a> = PgTxn<'a>;

    fn begin(&mut self) -> Result<PgTxn<'_>, StoreError> {
        self.client()?;
        let PgStore {
            client, statements, ..
        } = self;
        let client = client
            .as_mut()
            .ok_or(StoreError::Corrupt("the PostgreSQL connection is closed"))?;
        Ok(PgTxn::new(client, statements))
    }
}

impl Reader for PgStore {
    fn page_and_newest(
        &mut self,
        space: &SpaceId,
        after: u64,
        limit: u32,
        max_bytes: usize,
    ) -> Result<(Page, u64, u64), StoreError> {
        let mut tx = self
            .client()?
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let rows = tx.query(
            "SELECT cursor, bytes FROM events WHERE space = $1 AND cursor > $2
             ORDER BY cursor LIMIT $3",
            &[
                &space.to_string(),
                &i64::try_from(after).unwrap_or(i64::MAX),
                &(i64::from(limit) + 1),
            ],
        )?;
        let (out, more) = fill_page(
            rows.iter()
                .map(|r| Ok((to_u64(r.get(0), "cursor")?, r.get(1)))),
            limit,
            max_bytes,
        )?;
        let newest = newest_in(&mut tx, space)?;
        let forks = fork_attempts_in(&mut tx, space)?;
        tx.commit()?;
        Ok(((out, more), newest, forks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_shown_in_messages_hides_its_password_only() {
        assert_eq!(
            redact("postgres://duet:s3cret@db.internal:5432/duet"),
            "postgres://duet:***@db.internal:5432/duet"
        );
        assert_eq!(redact("postgres://duet@db/duet"), "postgres://duet@db/duet");
        assert_eq!(
            redact("postgres://db/duet?user=duet&password=s3cret&sslmode=disable"),
            "postgres://db/duet?user=duet&password=***&sslmode=disable"
        );
        // A password with an `@` left unencoded: all of it hidden, not its tail shown.
        assert_eq!(
            redact("postgres://duet:ab@SECRETPART@db:5432/duet"),
            "postgres://duet:***@db:5432/duet"
        );
        assert_eq!(redact("not a url"), "not a url");
    }
}
