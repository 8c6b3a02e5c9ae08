//! The writer's group transaction on PostgreSQL, shaped so that a group of pushes costs a
//! handful of round trips to the server rather than several per push:
//!
//! - `BEGIN` and the space locks go in one message ([`WriteTxn::lock_spaces`]);
//! - one query then reads, for every space of the group, its newest cursor and which of
//!   the pushed hashes are stored ([`WriteTxn::prefetch`]), and takes from the cursor
//!   sequence one value per pushed event; the spaces are locked, so only this
//!   transaction can change those answers, and it keeps them up to date with its own
//!   inserts;
//! - an accepted push takes its cursors from those values, in order, and its rows wait
//!   in memory; they all go in with one `INSERT` (a prepared statement) before the
//!   commit, or before any read the transaction cannot answer itself. The values were
//!   taken after the locks, so a space's cursors still grow in commit order (values
//!   left unused are gaps, which cursors may have). Nothing is inserted under a
//!   savepoint: an insert can only fail for a reason that aborts the whole transaction
//!   anyway (the checks before it rule out duplicates and forks), and then the group
//!   fails as a failed commit does (or, if a read sent the rows, the writer answers the
//!   push being checked with the error and handles the others again, as it does when
//!   SQLite rolls a transaction back);
//! - the announcements to the other instances and `COMMIT` go in one last message.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;

use duet_core::event::{Event, SpaceId};
use postgres::{Client, Statement};

use super::{
    CHANNEL, INSERT_EVENTS, cursors_of_in, for_each_event_in, fork_room_in, hash_at_cursor_in,
    insert_rows, lock_key, newest_in, spaces_of_author_in, stored_at_in,
};
use crate::store::{ForkRoom, Reads, StoreError, WriteTxn, to_hash, to_i64, to_u64};

/// Statements prepared on the writer's connection, by their text (prepared statements
/// belong to the session, whatever becomes of the transaction that prepared them).
#[derive(Default)]
pub(super) struct Statements(HashMap<&'static str, Statement>);

impl Statements {
    fn get(&mut self, client: &mut Client, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(s) = self.0.get(sql) {
            return Ok(s.clone());
        }
        let s = client.prepare(sql)?;
        self.0.insert(sql, s.clone());
        Ok(s)
    }
}

/// What the transaction knows of its locked spaces without asking the server.
#[derive(Default)]
struct Known {
    /// The newest cursor of each prefetched space.
    newest: HashMap<SpaceId, u64>,
    /// Each prefetched hash, with its cursor if it is stored.
    stored: HashMap<(SpaceId, [u8; 32]), Option<u64>>,
    /// Cursors taken from the sequence for this group's events, ascending.
    free: VecDeque<u64>,
}

/// Rows accepted but not yet sent, one vector per column.
#[derive(Default)]
struct Rows {
    cursors: Vec<i64>,
    spaces: Vec<String>,
    hashes: Vec<Vec<u8>>,
    authors: Vec<Vec<u8>>,
    seqs: Vec<i64>,
    kinds: Vec<&'static str>,
    bytes: Vec<Vec<u8>>,
    received: Vec<i64>,
}

/// Inserts rows whose cursors were taken from the sequence.
const INSERT_NUMBERED: &str = "INSERT INTO events
        (cursor, space, hash, author, seq, kind, bytes, received_at)
     SELECT * FROM UNNEST($1::int8[], $2::text[], $3::bytea[], $4::bytea[], $5::int8[],
                          $6::text[], $7::bytea[], $8::int8[])";

/// The newest cursor of each space, and the cursor of those of the hashes that are
/// stored, in one query.
const PREFETCH: &str = "SELECT s.space, NULL::bytea,
        (SELECT COALESCE(MAX(e.cursor), 0) FROM events e WHERE e.space = s.space)
     FROM UNNEST($1::text[]) AS s(space)
     UNION ALL
     SELECT e.space, e.hash, e.cursor
     FROM UNNEST($2::text[], $3::bytea[]) AS w(space, hash)
     JOIN events e ON e.space = w.space AND e.hash = w.hash
     UNION ALL
     SELECT NULL::text, NULL::bytea, nextval(pg_get_serial_sequence('events', 'cursor'))
     FROM generate_series(1, $4::int8)";

/// The writer's open transaction on PostgreSQL.
pub struct PgTxn<'a> {
    client: &'a mut Client,
    statements: &'a mut Statements,
    /// `BEGIN` was sent (it goes with the first message).
    begun: bool,
    /// Committed: nothing to roll back when dropped.
    finished: bool,
    /// PostgreSQL aborts a transaction on any error.
    aborted: bool,
    known: Known,
    /// Rows accepted, sent before the commit or the next read that needs them.
    rows: Rows,
    /// Cursors to announce with the commit.
    announcements: Vec<(SpaceId, u64)>,
}

impl Drop for PgTxn<'_> {
    fn drop(&mut self) {
        if self.begun
            && !self.finished
            && let Err(e) = self.client.batch_execute("ROLLBACK")
        {
            tracing::warn!("cannot roll a PostgreSQL transaction back: {e}");
        }
    }
}

impl<'a> PgTxn<'a> {
    pub(super) fn new(client: &'a mut Client, statements: &'a mut Statements) -> PgTxn<'a> {
        PgTxn {
            client,
            statements,
            begun: false,
            finished: false,
            aborted: false,
            known: Known::default(),
            rows: Rows::default(),
            announcements: Vec::new(),
        }
    }

    /// Runs `f` inside the transaction (beginning it first if needed); any error marks
    /// the transaction aborted.
    fn guard<T>(
        &mut self,
        f: impl FnOnce(&mut Client, &mut Statements) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let r = self
            .begin_and_flush()
            .and_then(|()| f(self.client, self.statements));
        if r.is_err() {
            self.aborted = true;
        }
        r
    }

    /// Sends `BEGIN` if not yet sent, and the rows waiting, so that the server sees
    /// everything this transaction has done.
    fn begin_and_flush(&mut self) -> Result<(), StoreError> {
        if !self.begun {
            self.begun = true;
            self.client.batch_execute("BEGIN")?;
        }
        if self.rows.cursors.is_empty() {
            return Ok(());
        }
        let r = std::mem::take(&mut self.rows);
        let statement = self.statements.get(self.client, INSERT_NUMBERED)?;
        self.client.execute(
            &statement,
            &[
                &r.cursors,
                &r.spaces,
                &r.hashes,
                &r.authors,
                &r.seqs,
                &r.kinds,
                &r.bytes,
                &r.received,
            ],
        )?;
        Ok(())
    }

    /// Numbers `events` with cursors taken by the prefetch and keeps their rows for
    /// later; `None` (nothing kept) when `space` was not prefetched or the cursors ran
    /// out.
    fn defer(&mut self, space: &SpaceId, events: &[&Event], received_at: i64) -> Option<Vec<u64>> {
        let known = &mut self.known;
        if !known.newest.contains_key(space) || known.free.len() < events.len() {
            return None;
        }
        let seqs: Vec<i64> = events
            .iter()
            .map(|e| to_i64(e.header().seq, "seq"))
            .collect::<Result<_, _>>()
            .ok()?;
        let numbers: Vec<i64> = known
            .free
            .iter()
            .take(events.len())
            .map(|c| i64::try_from(*c))
            .collect::<Result<_, _>>()
            .ok()?;
        let cursors: Vec<u64> = known.free.drain(..events.len()).collect();
        let r = &mut self.rows;
        for ((ev, n), seq) in events.iter().zip(numbers).zip(seqs) {
            r.cursors.push(n);
            r.spaces.push(space.to_string());
            r.hashes.push(ev.hash().to_vec());
            r.authors.push(ev.header().author.to_vec());
            r.seqs.push(seq);
            r.kinds.push(ev.header().kind.as_str());
            r.bytes.push(ev.bytes().to_vec());
            r.received.push(received_at);
        }
        Some(cursors)
    }

    /// Sends `sql` (statements without parameters), preceded by `BEGIN` if needed.
    fn send(&mut self, mut sql: String) -> Result<(), StoreError> {
        if !self.begun {
            sql.insert_str(0, "BEGIN;");
            self.begun = true;
        }
        let r = self.client.batch_execute(&sql);
        if r.is_err() {
            self.aborted = true;
        }
        Ok(r?)
    }
}

impl Reads for PgTxn<'_> {
    fn stored_at(
        &mut self,
        space: &SpaceId,
        author: &[u8; 32],
        seq: u64,
    ) -> Result<Option<(u64, [u8; 32])>, StoreError> {
        self.guard(|q, _| stored_at_in(q, space, author, seq))
    }

    fn cursors_of(
        &mut self,
        space: &SpaceId,
        events: &[&Event],
    ) -> Result<HashMap<[u8; 32], u64>, StoreError> {
        let hashes: Vec<[u8; 32]> = events.iter().map(|e| e.hash()).collect();
        let mut out = HashMap::new();
        for h in &hashes {
            match self.known.stored.get(&(*space, *h)) {
                Some(Some(c)) => {
                    out.insert(*h, *c);
                }
                Some(None) => {}
                None => return self.guard(|q, _| cursors_of_in(q, space, &hashes)),
            }
        }
        Ok(out)
    }

    fn newest_cursor(&mut self, space: &SpaceId) -> Result<u64, StoreError> {
        if let Some(c) = self.known.newest.get(space) {
            return Ok(*c);
        }
        self.guard(|q, _| newest_in(q, space))
    }

    fn hash_at_cursor(
        &mut self,
        space: &SpaceId,
        cursor: u64,
    ) -> Result<Option<[u8; 32]>, StoreError> {
        self.guard(|q, _| hash_at_cursor_in(q, space, cursor))
    }

    fn fork_room(&mut self, space: &SpaceId, event: &Event) -> Result<ForkRoom, StoreError> {
        self.guard(|q, _| fork_room_in(q, space, event))
    }

    fn for_each_event(
        &mut self,
        space: &SpaceId,
        after: u64,
        f: &mut dyn FnMut(u64, Vec<u8>),
    ) -> Result<(), StoreError> {
        self.guard(|q, _| for_each_event_in(q, space, after, f))
    }

    fn spaces_of_author(
        &mut self,
        author: &[u8; 32],
        limit: u32,
    ) -> Result<Vec<SpaceId>, StoreError> {
        self.guard(|q, _| spaces_of_author_in(q, author, limit))
    }
}

impl WriteTxn for PgTxn<'_> {
    fn lock_spaces(&mut self, spaces: &[SpaceId]) -> Result<(), StoreError> {
        let mut keys: Vec<i64> = spaces.iter().map(lock_key).collect();
        keys.sort_unstable();
        keys.dedup();
        // One message; its statements run in order, so the locks are taken in order.
        let mut sql = String::new();
        for k in keys {
            let _ = write!(sql, "SELECT pg_advisory_xact_lock({k});");
        }
        self.send(sql)
    }

    fn prefetch(
        &mut self,
        spaces: &[SpaceId],
        hashes: &[(SpaceId, [u8; 32])],
    ) -> Result<(), StoreError> {
        let names: Vec<String> = spaces.iter().map(SpaceId::to_string).collect();
        let of: Vec<String> = hashes.iter().map(|(s, _)| s.to_string()).collect();
        let hs: Vec<&[u8]> = hashes.iter().map(|(_, h)| &h[..]).collect();
        let wanted = i64::try_from(hashes.len()).unwrap_or(i64::MAX);
        let rows = self.guard(|q, st| {
            let statement = st.get(q, PREFETCH)?;
            Ok(q.query(&statement, &[&names, &of, &hs, &wanted])?)
        })?;
        let mut known = Known::default();
        for (space, hash) in hashes {
            known.stored.insert((*space, *hash), None);
        }
        let mut free = Vec::with_capacity(hashes.len());
        for row in rows {
            let cursor = to_u64(row.get(2), "cursor")?;
            let Some(space) = row.get::<_, Option<String>>(0) else {
                free.push(cursor);
                continue;
            };
            let space = SpaceId::parse(&space).ok_or(StoreError::Corrupt("space id"))?;
            match row.get::<_, Option<Vec<u8>>>(1) {
                None => {
                    known.newest.insert(space, cursor);
                }
                Some(hash) => {
                    known.stored.insert((space, to_hash(hash)?), Some(cursor));
                }
            }
        }
        free.sort_unstable();
        known.free = free.into();
        self.known = known;
        Ok(())
    }

    fn insert_events(
        &mut self,
        space: &SpaceId,
        events: &[&Event],
        received_at: i64,
    ) -> Result<Vec<u64>, StoreError> {
        let cursors = match self.defer(space, events, received_at) {
            Some(cursors) => cursors,
            None => self.guard(|q, st| {
                let statement = st.get(q, INSERT_EVENTS)?;
                insert_rows(q, &statement, space, events, received_at)
            })?,
        };
        if let (Some(newest), Some(last)) = (self.known.newest.get_mut(space), cursors.last()) {
            *newest = *last;
            for (ev, c) in events.iter().zip(&cursors) {
                self.known.stored.insert((*space, ev.hash()), Some(*c));
            }
        }
        Ok(cursors)
    }

    fn insert_fork(
        &mut self,
        event: &Event,
        existing_hash: &[u8; 32],
        received_at: i64,
    ) -> Result<bool, StoreError> {
        let h = event.header();
        let seq = to_i64(h.seq, "seq")?;
        self.guard(|tx, _| {
            let n = tx.execute(
                "INSERT INTO forks (space, author, seq, existing_hash, hash, bytes, received_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                &[
                    &h.space.to_string(),
                    &&h.author[..],
                    &seq,
                    &&existing_hash[..],
                    &&event.hash()[..],
                    &event.bytes(),
                    &received_at,
                ],
            )?;
            Ok(n > 0)
        })
    }

    fn count_fork(&mut self, space: &SpaceId, author: &[u8; 32]) -> Result<(), StoreError> {
        self.guard(|tx, _| {
            tx.execute(
                "INSERT INTO fork_counts (space, author, refused) VALUES ($1, $2, 1)
                 ON CONFLICT (space, author) DO UPDATE SET refused = fork_counts.refused + 1",
                &[&space.to_string(), &&author[..]],
            )?;
            Ok(())
        })
    }

    fn creations_from(&mut self, address: &str, since_ms: i64) -> Result<u64, StoreError> {
        self.guard(|tx, _| {
            let n: i64 = tx
                .query_one(
                    "SELECT COUNT(*) FROM creations WHERE address = $1 AND created_at >= $2",
                    &[&address, &since_ms],
                )?
                .get(0);
            to_u64(n, "creation count")
        })
    }

    fn creations_with(&mut self, token: &str) -> Result<u64, StoreError> {
        self.guard(|tx, _| {
            let n: i64 = tx
                .query_one("SELECT COUNT(*) FROM creations WHERE token = $1", &[&token])?
                .get(0);
            to_u64(n, "creation count")
        })
    }

    fn record_creation(
        &mut self,
        space: &SpaceId,
        at_ms: i64,
        address: Option<&str>,
        token: Option<&str>,
    ) -> Result<(), StoreError> {
        self.guard(|tx, _| {
            tx.execute(
                "INSERT INTO creations (space, created_at, address, token)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&space.to_string(), &at_ms, &address, &token],
            )?;
            Ok(())
        })
    }

    fn forget_creators_before(&mut self, before_ms: i64) -> Result<(), StoreError> {
        self.guard(|tx, _| {
            tx.execute(
                "UPDATE creations SET address = NULL WHERE address IS NOT NULL AND created_at < $1",
                &[&before_ms],
            )?;
            Ok(())
        })
    }

    fn db_bytes(&mut self) -> Result<Option<u64>, StoreError> {
        // --max-db-bytes caps SQLite only; a PostgreSQL server's space is its own.
        Ok(None)
    }

    fn announce(&mut self, space: &SpaceId, cursor: u64) -> Result<(), StoreError> {
        // Sent with the commit, in the same message.
        self.announcements.push((*space, cursor));
        Ok(())
    }

    fn is_open(&self) -> bool {
        !self.aborted
    }

    fn commit(mut self) -> Result<(), StoreError> {
        if self.aborted {
            // PostgreSQL would take this COMMIT as a ROLLBACK, without an error.
            return Err(StoreError::Aborted);
        }
        if !self.begun {
            // Nothing was sent: nothing to commit.
            self.finished = true;
            return Ok(());
        }
        if let Err(e) = self.begin_and_flush() {
            self.aborted = true;
            return Err(e);
        }
        // Space ids are hex and cursors digits: nothing in the payloads needs quoting.
        let mut sql = String::new();
        for (space, cursor) in &self.announcements {
            let _ = write!(sql, "SELECT pg_notify('{CHANNEL}', '{space}:{cursor}');");
        }
        sql.push_str("COMMIT");
        self.send(sql)?;
        self.finished = true;
        Ok(())
    }
}
