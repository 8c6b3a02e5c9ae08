//! duet-relay: stores and forwards signed, encrypted Duet events it cannot read.
//!
//! The relay accepts batches of events for a space, verifies each one's signature,
//! membership and hash chain with the same state machine the clients use
//! ([`duet_core::membership`]), stores them durably and idempotently in SQLite, assigns
//! cursors, and serves pages of events to member devices that sign their reads. The
//! wire protocol is [`duet_core::protocol`].
//!
//! - [`app`] builds the router over an [`AppState`], behind the [`limits::guard`]
//!   middleware (rate limits, in-flight limits, request timeout);
//! - [`serve`] / [`serve_state`] run it on a listener (HTTP/1.1, with a header-read
//!   timeout and caps on open connections, overall and per address, live sockets
//!   included) until a shutdown signal;
//! - [`fds`] raises the process's open-file limit and sizes the caps from it;
//! - [`Embedded`] runs a relay on its own thread (for `duet demo` and tests);
//! - [`Config`] holds every limit an operator can tune;
//! - [`writer`] is the single writer thread that commits concurrent pushes in groups
//!   (one durable transaction per group; each push is answered after its group's commit),
//!   counted by [`WriterStats`];
//! - [`live`] is the WebSocket on which member devices hear of new commits at once;
//! - [`pairing`] holds the in-memory mailboxes of short pairing codes.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit};
use axum::routing::get;
use duet_core::protocol::{EVENTS_ROUTE, HEALTHZ_PATH, LIVE_ROUTE, MAX_BODY_BYTES};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

pub mod answer;
pub mod batch;
pub mod body;
pub mod caps;
pub mod creation;
pub mod db_file;
pub mod error;
pub mod fds;
pub mod health;
pub mod limits;
pub mod live;
pub mod logging;
pub mod paced;
pub mod pairing;
pub mod push_memory;
mod refusal;
pub mod routes;
pub mod state;
pub mod store;
pub mod writer;

pub use error::ApiError;
pub use limits::{Config, Rate};
pub use state::AppState;
pub use writer::WriterStats;

/// What one accepted connection holds: a slot of the connection budget and one of its
/// address's. Each request of the connection carries a clone (a request extension), so
/// that a live socket, which outlives the HTTP connection it was upgraded from, keeps
/// the slot until it closes.
#[derive(Debug, Clone)]
pub struct ConnectionSlot(#[allow(dead_code)] Arc<ConnectionHold>);

#[derive(Debug)]
struct ConnectionHold {
    _budget: Option<tokio::sync::OwnedSemaphorePermit>,
    _address: Option<caps::Held<std::net::IpAddr>>,
}

/// The answer to a connection refused for its address's cap, written without reading
/// the request but once it began (`refusal`): the connection is closed right after.
fn busy_answer() -> Vec<u8> {
    let body = ApiError::RateLimited {
        message: "too many open connections from this address; close some (or wait for \
                  them to finish) and retry"
            .to_string(),
        retry_after: 5,
    }
    .body();
    let json = serde_json::to_string(&body).unwrap_or_default();
    format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
         retry-after: 5\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{json}",
        json.len()
    )
    .into_bytes()
}

/// The listen queue asked of the kernel (which caps it at `net.core.somaxconn`, 4,096 on
/// current Linux). The default of 128 overflows when a client opens connections in a
/// burst faster than they are accepted (and refused); the kernel then drops other
/// clients' connection attempts, which retry only after a second.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds `listen` (`HOST:PORT`; each address it resolves to is tried in turn) with a
/// listen queue of [`LISTEN_BACKLOG`].
pub async fn bind(listen: &str) -> std::io::Result<tokio::net::TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(listen).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        // As std and Tokio do for a listener: a restart may bind while old connections
        // of the previous process linger in TIME_WAIT.
        #[cfg(unix)]
        socket.set_reuseaddr(true)?;
        match socket
            .bind(addr)
            .and_then(|()| socket.listen(LISTEN_BACKLOG))
        {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the address resolves to nothing",
        )
    }))
}

/// How long open connections may finish their requests after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The relay's router, with the limits of the state's [`Config`].
pub fn app(state: AppState) -> Router {
    let router = Router::new()
        .route(
            EVENTS_ROUTE,
            get(routes::read_events).post(routes::push_events),
        )
        .route(LIVE_ROUTE, get(live::live_events))
        .route(HEALTHZ_PATH, {
            let cache = std::sync::Arc::new(health::HealthCache::default());
            get(
                move |axum::extract::State(state): axum::extract::State<AppState>| {
                    health::healthz(state, cache.clone())
                },
            )
        });
    pairing::routes(router)
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(state.clone())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(routes::json_too_large))
        .layer(axum::middleware::from_fn_with_state(state, limits::guard))
        // Failures are logged by the handlers and limiters themselves, at a level that
        // suits each (a flood of 429s or 503s must not flood the log).
        .layer(
            TraceLayer::new_for_http()
                // The path only: a query can hold a bearer secret (a pairing claim's
                // `token`), which the debug log wrote out.
                .make_span_with(|request: &axum::http::Request<_>| {
                    tracing::debug_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                    )
                })
                .on_failure(
                    tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG),
                ),
        )
}

/// Opens the database at `db` and serves the relay on `listener` with the default
/// [`Config`] until `shutdown` completes; requests in flight then get
/// [`SHUTDOWN_GRACE`] to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    db: &Path,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let location = store::Location::from(db);
    let state = tokio::task::spawn_blocking(move || open_state(&location, Config::default()))
        .await
        .context("the task opening the relay database failed")??;
    serve_state(listener, state, shutdown).await
}

/// [`AppState::open`] with an error that says what to do.
pub fn open_state(db: &store::Location, config: Config) -> anyhow::Result<AppState> {
    AppState::open(db, config).map_err(|e| {
        let context = opening_hint(db, &e);
        anyhow::Error::new(e).context(context)
    })
}

/// What to check when the relay database does not open: what the error says first (a
/// full disk, a damaged file, a newer schema, a file the relay may not write), then where
/// the database is.
fn opening_hint(db: &store::Location, e: &store::StoreError) -> String {
    let shown = db.display();
    if e.is_damaged() {
        return format!("cannot open {shown}: {}", store::DAMAGED);
    }
    if e.is_full() {
        return format!(
            "cannot open the relay database {shown}: the disk is full; free space on it, then \
             start the relay again (nothing stored is lost)"
        );
    }
    if matches!(e, store::StoreError::TooNew { .. }) {
        return format!("cannot open the relay database {shown}");
    }
    if e.is_not_writable() {
        return format!(
            "cannot open the relay database {shown} for writing: check that the relay's user \
             may read and write the file, its -wal and -shm files and its directory"
        );
    }
    match db {
        store::Location::Sqlite(path) => format!(
            "cannot open the relay database {}; check that its directory exists and is \
             writable, or choose another file with --db (DUET_RELAY_DB)",
            path.display()
        ),
        store::Location::Postgres(_) => format!(
            "cannot open the PostgreSQL database {}; check that the server answers, that \
             the database exists and that the user may create tables in it (--db / \
             DUET_RELAY_DB, postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE; the password \
             goes in the URL, percent-encoded: the relay reads no PGPASSWORD or .pgpass)",
            db.display()
        ),
    }
}

/// Whether an accept error concerns only the one connection (the listener is fine).
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Serves the relay over an already opened state until `shutdown` completes, with the
/// state's [`Config`]: HTTP/1.1 only, each connection closed if a request's headers do
/// not arrive within the header timeout, at most `max_connections` open at once, live
/// sockets included (more wait in the listen backlog), and at most
/// `max_connections_per_ip` from one TCP peer address (more get a 429 and are closed at
/// once).
pub async fn serve_state(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let config = state.config().clone();
    let live = state.live().clone();
    let router = app(state);
    let (tx, mut stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let connections =
        (config.max_connections > 0).then(|| Arc::new(limits::semaphore(config.max_connections)));
    // Per TCP peer; behind a proxy (a client address header) every peer is the proxy,
    // whose clients the header tells apart only once a request is read.
    let per_address = if config.client_ip_header.is_some() {
        None
    } else {
        caps::Counts::<std::net::IpAddr>::new(config.max_connections_per_ip)
    };
    let busy = refusal::Refusals::new(busy_answer());
    let refused = limits::Tally::default();
    // Each connection task holds a clone of `open`; when all are gone, `all_closed` ends.
    let (open, all_closed) = tokio::sync::mpsc::channel::<()>(1);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // Capped at a year: hyper adds it to the current time, which must not overflow.
        .header_read_timeout(
            config
                .header_timeout
                .map(|d| d.min(Duration::from_secs(365 * 24 * 3600))),
        );

    while let Some((permit, stream, peer)) =
        accept(&listener, connections.as_ref(), &mut stop).await
    {
        let address = match &per_address {
            Some(counts) => match counts.try_hold(limits::bucket_key(peer.ip())) {
                Ok(held) => Some(held),
                Err(_) => {
                    // Refused, nothing served: the address already holds its share,
                    // and a slot spent on it is one taken from others.
                    busy.refuse(stream);
                    refused.note("connections per address", std::time::Instant::now());
                    continue;
                }
            },
            None => None,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        let slot = ConnectionSlot(Arc::new(ConnectionHold {
            _budget: permit,
            _address: address,
        }));
        let pace = (config.min_body_rate, config.body_grace);
        let connection = Connection {
            stream,
            peer,
            slot,
            pace,
        };
        connection.spawn(&builder, &router, stop.clone(), open.clone());
    }

    drop(listener);
    stop_serving(&live, open, all_closed).await;
    Ok(())
}

/// Once no connection is accepted any more: tells each live socket that the relay stops
/// (they left hyper when they were upgraded), then waits for the requests in flight, each
/// within [`SHUTDOWN_GRACE`].
async fn stop_serving(
    live: &live::Live,
    open: tokio::sync::mpsc::Sender<()>,
    mut all_closed: tokio::sync::mpsc::Receiver<()>,
) {
    tracing::info!("shutting down: finishing requests in flight");
    live.close_all(SHUTDOWN_GRACE).await;
    drop(open);
    tokio::select! {
        _ = all_closed.recv() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("connections still open after the grace period were dropped");
        }
    }
}

/// Waits for a free slot of the connection budget (if there is one), then for a
/// connection; `None` once shutdown is asked.
async fn accept(
    listener: &tokio::net::TcpListener,
    budget: Option<&Arc<tokio::sync::Semaphore>>,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<(
    Option<tokio::sync::OwnedSemaphorePermit>,
    tokio::net::TcpStream,
    SocketAddr,
)> {
    let permit = match budget {
        Some(slots) => tokio::select! {
            p = slots.clone().acquire_owned() => p.ok(),
            // An error means the sender is gone: shut down as well.
            _ = stop.wait_for(|s| *s) => return None,
        },
        None => None,
    };
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => return None,
        };
        match accepted {
            Ok((stream, peer)) => return Some((permit, stream, peer)),
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // E.g. out of file descriptors: wait for connections to close.
                tracing::error!("cannot accept a connection: {e}");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = stop.wait_for(|s| *s) => return None,
                }
            }
        }
    }
}

/// An accepted connection and the slot it holds.
struct Connection {
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    slot: ConnectionSlot,
    /// The rate (bytes a second) and grace the client must take answers at
    /// ([`paced::Paced`]): those a push body must arrive at.
    pace: (u64, Duration),
}

impl Connection {
    /// Serves the connection on a task of its own until it closes, or, once `stop` is
    /// set, until the request in flight is answered (hyper's graceful close). With
    /// upgrades, for the live WebSocket: an upgraded connection leaves hyper but keeps
    /// its slot (the live handler holds a clone of it until the socket closes).
    fn spawn(
        self,
        builder: &hyper::server::conn::http1::Builder,
        router: &Router,
        mut stop: tokio::sync::watch::Receiver<bool>,
        open: tokio::sync::mpsc::Sender<()>,
    ) {
        let Connection {
            stream,
            peer,
            slot,
            pace,
        } = self;
        let request_slot = slot.clone();
        let service = router
            .clone()
            .map_request(move |req: axum::http::Request<Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                req.extensions_mut().insert(request_slot.clone());
                req
            });
        let grace = paced::socket_grace(&stream, pace.0, pace.1);
        let mut conn = builder
            .serve_connection(
                TokioIo::new(paced::Paced::new(stream, pace.0, grace)),
                TowerToHyperService::new(service),
            )
            .with_upgrades();
        tokio::spawn(async move {
            let ended = tokio::select! {
                r = &mut conn => Some(r),
                _ = stop.wait_for(|s| *s) => None,
            };
            let ended = match ended {
                Some(r) => r,
                None => {
                    std::pin::Pin::new(&mut conn).graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!("connection ended with an error: {e}");
            }
            drop(slot);
            drop(open);
        });
    }
}

/// A relay running on its own thread and Tokio runtime, bound to 127.0.0.1 on a free
/// port. Dropping it (or [`Embedded::stop`]) shuts it down gracefully.
#[derive(Debug)]
pub struct Embedded {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Embedded {
    /// Opens the database at `db_path` and starts serving with the default [`Config`];
    /// returns once the port is bound.
    pub fn start(db_path: &Path) -> anyhow::Result<Embedded> {
        Embedded::start_with(db_path, Config::default())
    }

    /// [`Embedded::start`] with `config`.
    pub fn start_with(db_path: &Path, config: Config) -> anyhow::Result<Embedded> {
        let state = open_state(&db_path.into(), config)?;
        let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0))
            .context("cannot bind a local port for the embedded relay")?;
        std_listener
            .set_nonblocking(true)
            .context("cannot configure the embedded relay's socket")?;
        let addr = std_listener
            .local_addr()
            .context("cannot read the embedded relay's address")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the embedded relay's runtime")?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("duet-relay".to_string())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(std_listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!("embedded relay cannot use its socket: {e}");
                            return;
                        }
                    };
                    let shutdown = async move {
                        // Dropping the sender also stops the relay.
                        let _ = stopped.await;
                    };
                    if let Err(e) = serve_state(listener, state, shutdown).await {
                        tracing::error!("embedded relay stopped: {e:#}");
                    }
                });
            })
            .context("cannot start the embedded relay's thread")?;
        Ok(Embedded {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The relay's base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the relay and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let panicked = self.thread.take().is_some_and(|t| t.join().is_err());
        if panicked {
            tracing::error!("the embedded relay's thread panicked");
        }
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        self.shutdown();
    }
}
