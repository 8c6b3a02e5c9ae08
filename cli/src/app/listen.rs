//! The app's accept loop: axum's router served by hyper with a deadline on reading a
//! request's head, so that connections that send nothing (another local user holding
//! thousands open) are closed instead of holding the app's file descriptors until the
//! person's own browser gets no answer. The relay does the same (`duet-relay`,
//! `--header-timeout-secs`).

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt;

/// How long a connection may take to send a request's head (also while idle between
/// requests): a browser sends it at once.
const HEAD_DEADLINE: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` completes; connections still open
/// then are asked to finish what they are doing.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_DEADLINE);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors, say: wait a moment rather than spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = router
            .clone()
            .map_request(|req: axum::http::Request<Incoming>| req.map(Body::new));
        let mut conn =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let ended = tokio::select! {
                r = &mut conn => Some(r),
                _ = stop.wait_for(|s| *s) => None,
            };
            if ended.is_none() {
                std::pin::Pin::new(&mut conn).graceful_shutdown();
                let _ = conn.await;
            }
        });
    }
    let _ = stop_tx.send(true);
}
