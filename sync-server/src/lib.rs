//! duet-relay: stores and forwards signed, encrypted Duet events it cannot read.
//!
//! The relay accepts batches of events for a space, verifies each one's signature,
//! membership and hash chain with the same state machine the clients use
//! ([`duet_core::membership`]), stores them durably and idempotently in SQLite, assigns
//! cursors, and serves pages of events to member devices that sign their reads. The
//! wire protocol is [`duet_core::protocol`].
//!
//! - [`app`] builds the router over an [`AppState`];
//! - [`serve`] / [`serve_state`] run it on a listener until a shutdown signal;
//! - [`Embedded`] runs a relay on its own thread (for `duet demo` and tests).

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use duet_core::protocol::MAX_BODY_BYTES;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

pub mod error;
pub mod routes;
pub mod state;
pub mod store;

pub use error::ApiError;
pub use state::AppState;

/// How long open connections may finish their requests after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The relay's router.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route(
            "/v1/spaces/{space}/events",
            get(routes::read_events).post(routes::push_events),
        )
        .route("/healthz", get(routes::healthz))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(routes::json_too_large))
        .layer(TraceLayer::new_for_http())
}

/// Opens the database at `db` and serves the relay on `listener` until `shutdown`
/// completes; requests in flight then get [`SHUTDOWN_GRACE`] to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    db: &Path,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let path = db.to_path_buf();
    let state = tokio::task::spawn_blocking(move || open_state(&path))
        .await
        .context("the task opening the relay database failed")??;
    serve_state(listener, state, shutdown).await
}

/// Opens the relay database with an error that says what to do.
pub fn open_state(db: &Path) -> anyhow::Result<AppState> {
    AppState::open(db).with_context(|| {
        format!(
            "cannot open the relay database {}; check that its directory exists and is \
             writable, or choose another file with --db (DUET_RELAY_DB)",
            db.display()
        )
    })
}

/// Serves the relay over an already opened state until `shutdown` completes.
pub async fn serve_state(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let mut graceful_rx = rx.clone();
    let mut deadline_rx = rx;
    let server = axum::serve(listener, app(state)).with_graceful_shutdown(async move {
        // An error means the sender is gone: shut down as well.
        let _ = graceful_rx.wait_for(|stop| *stop).await;
        tracing::info!("shutting down: finishing requests in flight");
    });
    let deadline = async move {
        let _ = deadline_rx.wait_for(|stop| *stop).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        r = server => r.context("the relay's server failed")?,
        () = deadline => tracing::warn!("connections still open after the grace period were dropped"),
    }
    Ok(())
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
    /// Opens the database at `db_path` and starts serving; returns once the port is bound.
    pub fn start(db_path: &Path) -> anyhow::Result<Embedded> {
        let state = open_state(db_path)?;
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
