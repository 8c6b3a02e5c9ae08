//! `GET /healthz` ([`duet_core::protocol::HEALTHZ_PATH`]): whether this instance can
//! serve, for a monitor or a load balancer. It answers 200 `{"status": "ok"}` while its
//! database answers a read, and 503 `{"status": "unavailable"}` when it does not (a
//! PostgreSQL out of reach, a database gone): an instance that answers every request
//! with an error is then taken out of rotation. The database is asked at most once a
//! second, whatever the number of checks (the route is not rate limited).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::routes::blocking;
use crate::state::AppState;

/// How long one answer of the database stands for the instance's health.
const FRESH_FOR: Duration = Duration::from_secs(1);

/// The last answer of the database, and when it was had.
#[derive(Default)]
pub struct HealthCache {
    last: tokio::sync::Mutex<Option<(Instant, bool)>>,
}

/// `GET /healthz`.
pub async fn healthz(state: AppState, cache: Arc<HealthCache>) -> Response {
    let mut last = cache.last.lock().await;
    let healthy = match *last {
        Some((at, healthy)) if at.elapsed() < FRESH_FOR => healthy,
        _ => {
            let read = blocking(move || state.database_answers()).await;
            let healthy = read.is_ok();
            say(last.is_none_or(|(_, was)| was), read.err());
            *last = Some((Instant::now(), healthy));
            healthy
        }
    };
    if healthy {
        Json(serde_json::json!({ "status": "ok" })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "unavailable" })),
        )
            .into_response()
    }
}

/// Logs a failed check once (`was_healthy`: the check before did not fail), and the
/// recovery after it once.
fn say(was_healthy: bool, failure: Option<crate::error::ApiError>) {
    match failure {
        Some(e) if was_healthy => {
            tracing::error!(
                "health check: the database does not answer ({e}); /healthz answers 503"
            );
        }
        None if !was_healthy => {
            tracing::info!("health check: the database answers again; /healthz answers 200");
        }
        _ => {}
    }
}
