//! Helpers shared by the relay's integration tests: a relay over a real database (a
//! SQLite file, or a fresh schema of a real PostgreSQL server) driven in-process through
//! the real router. Devices that sign events, the relay process, the HTTP client and the
//! couple's events come from the test kit (`duet-testkit`).
//!
//! The conformance suite: tests written once inside [`conformance!`] run twice, on
//! SQLite and on PostgreSQL. The PostgreSQL half needs a server named by the
//! `DUET_TEST_POSTGRES` URL (`.ci/run` starts one with `.ci/postgres`); without it each
//! PostgreSQL test prints that it was skipped and passes.

#![allow(dead_code)]

pub mod process;
pub mod stranger;

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use duet_core::crypto::SpaceKey;
use duet_core::event::{Event, MembershipOp, SpaceId};
use duet_core::protocol::{ErrorBody, PushResponse, ReadAuth, encode_batch};
use duet_relay::store::Location;
use duet_relay::{AppState, Config, app};
use tower::ServiceExt;

// Each test file uses some of these re-exports.
#[allow(unused_imports)]
pub use duet_core::protocol::events_path;
#[allow(unused_imports)]
pub use duet_testkit::{ChainSigner as Device, now_ms, pg::PG_ENV};

/// One row of fork evidence.
pub struct ForkRow {
    pub author: Vec<u8>,
    pub seq: i64,
    pub existing_hash: Vec<u8>,
    pub bytes: Vec<u8>,
}

/// The backend the current conformance test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

thread_local! {
    static BACKEND: std::cell::Cell<Backend> = const { std::cell::Cell::new(Backend::Sqlite) };
}

/// Runs the rest of this test on `backend`. For PostgreSQL, false (with a note) when no
/// server is configured: the test is then skipped.
pub fn use_backend(backend: Backend) -> bool {
    BACKEND.with(|b| b.set(backend));
    if backend == Backend::Postgres && std::env::var(PG_ENV).is_err() {
        eprintln!(
            "skipped: the PostgreSQL half of the conformance suite needs {PG_ENV} \
             (e.g. {PG_ENV}=\"$(.ci/postgres)\", as .ci/run does)"
        );
        return false;
    }
    true
}

/// Runs `f` on a plain thread (the `postgres` crate must not run on an async thread).
pub fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().expect("the helper thread panicked"))
}

/// A fresh schema on the test server, as a URL whose connections use it.
pub fn fresh_postgres() -> String {
    let base = std::env::var(PG_ENV).expect("DUET_TEST_POSTGRES is set");
    duet_testkit::pg::schema_on(&base)
}

/// A relay over a fresh database of the current test's backend.
pub struct Relay {
    pub dir: tempfile::TempDir,
    /// The SQLite file (unused on PostgreSQL).
    pub db: PathBuf,
    pub location: Location,
    pub state: AppState,
}

/// An answer: status, headers, body.
pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn error(&self) -> ErrorBody {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not an error body ({e}): {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn push(&self) -> PushResponse {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "push failed: {}",
            String::from_utf8_lossy(&self.body)
        );
        serde_json::from_slice(&self.body).expect("a push response")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends `req` through `router` and reads the whole answer.
pub async fn send_to(router: axum::Router, req: Request<Body>) -> Answer {
    let resp = router.oneshot(req).await.expect("the router never fails");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body")
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

impl Relay {
    pub fn new() -> Relay {
        Relay::with_config(Config::default())
    }

    /// A relay with these limits.
    pub fn with_config(config: Config) -> Relay {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("relay.db");
        let location = match BACKEND.with(|b| b.get()) {
            Backend::Sqlite => Location::Sqlite(db.clone()),
            Backend::Postgres => Location::Postgres(fresh_postgres()),
        };
        let state = open(&location, config);
        Relay {
            dir,
            db,
            location,
            state,
        }
    }

    /// A second relay instance over the same database (another process would be the
    /// same: nothing is shared but the database).
    pub fn another_instance(&self) -> AppState {
        open(&self.location, Config::default())
    }

    /// A new relay state over the same database (as after a restart).
    pub fn restart(&mut self) {
        self.restart_with(Config::default());
    }

    /// A restart with these limits.
    pub fn restart_with(&mut self, config: Config) {
        self.state = open(&self.location, config);
    }

    pub async fn send(&self, req: Request<Body>) -> Answer {
        send_to(app(self.state.clone()), req).await
    }

    pub async fn push_raw(&self, path: &str, body: Vec<u8>) -> Answer {
        let req = Request::post(path)
            .header("content-type", "application/octet-stream")
            .body(Body::from(body))
            .expect("request");
        self.send(req).await
    }

    pub async fn push(&self, space: &SpaceId, events: &[&Event]) -> Answer {
        let body = encode_batch(events.iter().map(|e| e.bytes()));
        self.push_raw(&events_path(space), body).await
    }

    pub async fn read_with(&self, path: &str, query: &str, auth: Option<&ReadAuth>) -> Answer {
        let uri = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        };
        let mut req = Request::get(uri);
        if let Some(a) = auth {
            for (name, value) in a.headers() {
                req = req.header(name, value);
            }
        }
        self.send(req.body(Body::empty()).expect("request")).await
    }

    /// A signed read by `reader`.
    pub async fn read(&self, reader: &Device, space: &SpaceId, query: &str) -> Answer {
        let path = events_path(space);
        let auth = reader.read_auth(&path, query);
        self.read_with(&path, query, Some(&auth)).await
    }

    /// A signed read, decoded into `(cursor, event bytes)` and the more flag.
    pub async fn read_page(
        &self,
        reader: &Device,
        space: &SpaceId,
        query: &str,
    ) -> (Vec<(u64, Vec<u8>)>, bool) {
        let a = self.read(reader, space, query).await;
        assert_eq!(
            a.status,
            StatusCode::OK,
            "read failed: {}",
            String::from_utf8_lossy(&a.body)
        );
        assert_eq!(a.header("content-type"), Some("application/octet-stream"));
        let more = match a.header(duet_core::protocol::H_MORE) {
            Some("1") => true,
            Some("0") => false,
            other => panic!("bad duet-more header {other:?}"),
        };
        (
            duet_core::protocol::decode_page(&a.body).expect("a page"),
            more,
        )
    }

    /// Runs a query returning rows of byte strings and integers, on either backend.
    fn rows(&self, sql: &str, space: Option<&SpaceId>) -> Vec<Vec<Cell>> {
        match &self.location {
            Location::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).expect("open db");
                let mut stmt = conn.prepare(sql).expect("prepare");
                let n = stmt.column_count();
                let params: Vec<String> = space.map(|s| s.to_string()).into_iter().collect();
                stmt.query_map(rusqlite::params_from_iter(params), |r| {
                    (0..n)
                        .map(|i| {
                            Ok(match r.get_ref(i)? {
                                rusqlite::types::ValueRef::Integer(v) => Cell::Int(v),
                                rusqlite::types::ValueRef::Blob(b) => Cell::Bytes(b.to_vec()),
                                other => panic!("unexpected column {other:?}"),
                            })
                        })
                        .collect()
                })
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows")
            }
            Location::Postgres(url) => off_runtime(|| {
                let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
                let sql = sql.replace("?1", "$1");
                let space = space.map(|s| s.to_string());
                let rows = match &space {
                    Some(s) => c.query(sql.as_str(), &[s]),
                    None => c.query(sql.as_str(), &[]),
                }
                .expect("query");
                rows.iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| match r.try_get::<_, i64>(i) {
                                Ok(v) => Cell::Int(v),
                                Err(_) => Cell::Bytes(r.get(i)),
                            })
                            .collect()
                    })
                    .collect()
            }),
        }
    }

    /// Events stored, in all spaces.
    pub fn event_count(&self) -> i64 {
        self.rows("SELECT COUNT(*) FROM events", None)[0][0].int()
    }

    /// Fork evidence rows.
    pub fn forks(&self) -> Vec<ForkRow> {
        self.rows(
            "SELECT author, seq, existing_hash, bytes FROM forks ORDER BY id",
            None,
        )
        .into_iter()
        .map(|r| ForkRow {
            author: r[0].bytes(),
            seq: r[1].int(),
            existing_hash: r[2].bytes(),
            bytes: r[3].bytes(),
        })
        .collect()
    }

    /// Stored hashes of a space in cursor order.
    pub fn stored_hashes(&self, space: &SpaceId) -> Vec<Vec<u8>> {
        self.rows(
            "SELECT hash FROM events WHERE space = ?1 ORDER BY cursor",
            Some(space),
        )
        .into_iter()
        .map(|r| r[0].bytes())
        .collect()
    }
}

/// One value of a helper query.
#[derive(Debug, Clone)]
pub enum Cell {
    Int(i64),
    Bytes(Vec<u8>),
}

impl Cell {
    pub fn int(&self) -> i64 {
        match self {
            Cell::Int(v) => *v,
            other => panic!("not an integer: {other:?}"),
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Cell::Bytes(b) => b.clone(),
            other => panic!("not bytes: {other:?}"),
        }
    }
}

/// Opens a relay state (off the async thread: PostgreSQL connects synchronously).
fn open(location: &Location, mut config: Config) -> AppState {
    // These tests push in-process, with no creation token: open registration unless a
    // test gives tokens (the default, as the binary's, needs one).
    if config.create_tokens.is_empty() {
        config.open_registration = true;
    }
    off_runtime(|| AppState::open(location, config)).expect("open relay db")
}

/// Tests written once and run on both backends: each `#[tokio::test] async fn` inside
/// becomes `sqlite::NAME` and `postgres::NAME`.
#[macro_export]
macro_rules! conformance {
    ($( $(#[$attr:meta])* async fn $name:ident() $body:block )*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$attr])*
                async fn $name() {
                    async fn body() $body
                    if $crate::common::use_backend($crate::common::Backend::Sqlite) {
                        body().await
                    }
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$attr])*
                async fn $name() {
                    async fn body() $body
                    if $crate::common::use_backend($crate::common::Backend::Postgres) {
                        body().await
                    }
                }
            )*
        }
    };
}

/// A space with an owner who pushed its genesis, and a partner admitted by invite+join.
pub struct Couple {
    pub relay: Relay,
    pub space: SpaceId,
    pub key: SpaceKey,
    pub alex: Device,
    pub sam: Device,
}

impl Couple {
    pub async fn new() -> Couple {
        Couple::on(Relay::new()).await
    }

    /// The couple's space on `relay` (3 events: genesis, invite, join).
    pub async fn on(relay: Relay) -> Couple {
        let (c, events) = duet_testkit::Couple::signed([7u8; 32]);
        let [g, i] = &events.owner;
        relay.push(&c.space, &[g, i]).await.push();
        relay.push(&c.space, &[&events.join]).await.push();
        Couple {
            relay,
            space: c.space,
            key: c.key,
            alex: c.alex,
            sam: c.sam,
        }
    }
}

/// A valid removal of `device` for `epoch`, the new key wrapped for `remaining` (device
/// key, X25519 key) members.
#[allow(dead_code)]
pub fn remove_op(
    space: SpaceId,
    device: [u8; 32],
    epoch: u32,
    remaining: &[([u8; 32], [u8; 32])],
) -> MembershipOp {
    let key = SpaceKey::generate();
    let (eph, keys) = duet_core::keywrap::wrap(&key, remaining, &space, epoch);
    MembershipOp::Remove {
        device,
        epoch,
        eph,
        keys,
        commit: Some(duet_core::keywrap::commitment(&key, &space, epoch)),
    }
}
