//! The server of `duet app`: its shared state, the routes, and the one way a page reaches
//! the device ([`App::with_device`]: one device kept open for the server's life and used
//! on a blocking thread, one request at a time, with the same application-layer calls as
//! the command line; keeping it lets writes reuse the document it holds).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use duet_core::clock::Clock;
use duet_core::device::Device;
use maud::Markup;

use super::live::LiveState;
use super::pages;
use super::security::{self, Session};

/// The one device of the app, once opened: an async lock, so that a page waits for it
/// only so long ([`BUSY_AFTER`]) while another page holds it through a network wait.
pub type DeviceSlot = Arc<tokio::sync::Mutex<Option<Device>>>;

/// How long a page waits for the device another page holds before it says so: a page
/// that reaches the relay (an invite, a removal) holds it until the relay answers, which
/// on a network that never answers is the transport's whole stall limit.
const BUSY_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

/// The device stayed held by another page for [`BUSY_AFTER`]: nothing was done.
#[derive(Debug)]
struct Busy;

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "nothing was done yet: Duet is still busy with another page, which waits for \
             the relay (the network may be slow or not answering); try again in a moment",
        )
    }
}

impl std::error::Error for Busy {}

/// What every request shares.
#[derive(Clone)]
pub struct App {
    /// The home of the device.
    pub home: PathBuf,
    /// The clock (`DUET_NOW` pins it, as for the command line).
    pub clock: Clock,
    /// This run's secrets and port.
    pub session: Arc<Session>,
    /// What the live thread last saw (relay, last sync).
    pub live: Arc<Mutex<LiveState>>,
    /// The device, once opened (none before first-run setup made it).
    pub device: DeviceSlot,
    /// The live thread's hold on its own device (let go before the home is set aside).
    pub live_hold: Arc<super::hold::LiveHold>,
    /// What the forms of the Partner and devices page made (a code, a notice), shown by
    /// the page they redirect to.
    pub outcomes: Arc<Mutex<pages::devices::Outcomes>>,
    /// Told about every change of the store, for `/events`.
    pub changes: tokio::sync::broadcast::Sender<()>,
    /// Becomes true when the server stops (ends the event streams).
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

/// A page's failure: rendered as a calm page saying what to do next in the app's words.
pub struct PageError(anyhow::Error);

impl<E: Into<anyhow::Error>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let err = self.0;
        // No device in this home yet: the first-run setup.
        if crate::advice::next_step(&err) == Some(duet_core::advice::NextStep::SetUp) {
            return see_other("/setup");
        }
        let text = match super::advice::hint(&err) {
            Some(hint) => format!("{err:#}; {hint}"),
            None => format!("{err:#}"),
        };
        let status = if err.downcast_ref::<Busy>().is_some() {
            StatusCode::SERVICE_UNAVAILABLE
        } else if crate::advice::next_step(&err).is_some() {
            StatusCode::CONFLICT
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        let mut resp = (status, Html(pages::layout::problem(&text).into_string())).into_response();
        // The guard shows what was typed into the form with it (`super::kept`).
        resp.extensions_mut()
            .insert(super::kept::Refusal { status, text });
        resp
    }
}

/// What a page handler returns.
pub type PageResult = Result<Response, PageError>;

/// A page's query, parsed as [`axum::extract::Query`] does; one that does not parse (an
/// address typed or edited by hand) gets the calm problem page, not the parser's text.
pub struct PageQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for PageQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(q)) => Ok(PageQuery(q)),
            Err(e) => {
                let text = format!(
                    "This page's address holds something Duet does not make ({}); go back \
                     and use the page's links and forms.",
                    e.body_text()
                );
                let page = pages::layout::problem(&text).into_string();
                Err((StatusCode::BAD_REQUEST, Html(page)).into_response())
            }
        }
    }
}

impl App {
    /// Runs `f` on the device on a blocking thread (the store is SQLite and the document
    /// Automerge: both block); opens it on first use and keeps it.
    pub async fn with_device<T, F>(&self, f: F) -> Result<T, PageError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Device) -> anyhow::Result<T> + Send + 'static,
    {
        let (home, clock) = (self.home.clone(), self.clock);
        let slot = self.device.clone().lock_owned();
        let Ok(mut kept) = tokio::time::timeout(BUSY_AFTER, slot).await else {
            return Err(PageError(Busy.into()));
        };
        let joined = tokio::task::spawn_blocking(move || {
            // Opened while the home could not be written (a full disk), the device is a
            // copy in memory that refuses every form: opened again once it can be (a
            // failure to open it leaves the copy to read, and the next page asks again).
            if let Some(dev) = kept.as_mut() {
                let _ = dev.reopen_if_writable();
            }
            if kept.is_none() {
                let mut dev = Device::open_with(&home, clock)
                    .map_err(anyhow::Error::from)
                    .map_err(|e| e.context(format!("cannot open duet in {}", home.display())))?;
                // Pages read the same views again and again between changes.
                dev.keep_views();
                // Said where the app was started: a form waits for a command writing.
                dev.on_wait(std::sync::Arc::new(|| {
                    crate::output::note(
                        "note: another duet command is writing to this home; the app waits for it",
                    );
                }));
                *kept = Some(dev);
            }
            match kept.as_mut() {
                Some(dev) => f(dev),
                None => Err(anyhow::anyhow!("the device could not be opened")),
            }
        })
        .await;
        match joined {
            Ok(r) => r.map_err(PageError),
            Err(e) => Err(PageError(anyhow::anyhow!("the page failed: {e}"))),
        }
    }

    /// A whole page: the layout around `main`, with the status line.
    pub fn page(&self, title: &str, nav: pages::layout::Nav, main: Markup) -> Response {
        let status = self.live.lock().map(|l| l.clone()).unwrap_or_default();
        Html(pages::layout::page(title, nav, Some(&status), main).into_string()).into_response()
    }

    /// The CSRF token to put in every form.
    pub fn csrf(&self) -> &str {
        &self.session.csrf
    }
}

/// Every route, behind the guard and the security headers.
pub fn router(app: App) -> Router {
    let prefix = app.session.prefix();
    let pages = Router::new()
        .route("/", get(pages::today::today))
        .route("/goals", post(pages::goal::add_goal))
        .route("/goals/{id}", get(pages::goal::goal))
        .route("/goals/{id}/steps", post(pages::steps::add_step))
        .route(
            "/goals/{id}/steps/{step}/done",
            post(pages::steps::complete_step),
        )
        .route(
            "/goals/{id}/steps/{step}/reopen",
            post(pages::steps::reopen_step),
        )
        .route(
            "/goals/{id}/steps/{step}/edit",
            post(pages::steps::edit_step),
        )
        .route("/goals/{id}/edit", post(pages::edit::edit_goal))
        .route("/goals/{id}/status", post(pages::edit::set_status))
        .route("/goals/{id}/amend", post(pages::edit::amend))
        .route("/reflections/{id}/edit", post(pages::edit::edit_reflection))
        .route("/undo", post(pages::edit::undo))
        .route("/checkin/close", post(pages::checkin::close))
        .route(
            "/reflections/{id}/withdraw",
            post(pages::reflections::withdraw),
        )
        .route(
            "/checkin",
            get(pages::checkin::checkin).post(pages::checkin::rate),
        )
        .route(
            "/reflections",
            get(pages::reflections::list).post(pages::reflections::write),
        )
        .route("/reflections/{id}/reply", post(pages::reflections::reply))
        .route(
            "/setup",
            get(pages::setup::setup).post(pages::setup::create),
        )
        .route("/setup/join", post(pages::setup::join))
        .route("/setup/restore", post(pages::backup::restore))
        .route("/backup", post(pages::backup::backup))
        .route("/devices", get(pages::devices::devices))
        .route("/devices/invite", post(pages::devices::invite))
        .route("/devices/short", post(pages::short_code::make))
        .route("/devices/add", post(pages::devices::add))
        .route("/devices/verify", post(pages::devices::verify))
        .route("/devices/{key}/remove", post(pages::devices::remove))
        .route(
            "/devices/{key}/remove/confirm",
            get(pages::devices::remove_question),
        )
        .route("/invites/{id}/revoke", post(pages::invites::revoke))
        .route("/relay", post(pages::relay::set))
        .route("/leave", post(pages::leave::leave))
        .route("/start-over", post(pages::start_over::start_over))
        .route("/leave/confirm", get(pages::leave::question))
        .route("/export", get(pages::leave::export))
        .route("/history", get(pages::history::history))
        .route("/report", get(pages::report::report))
        .route("/report/print", get(pages::report::printable))
        .route("/events", get(super::live::events))
        .route("/static/app.css", get(css))
        .route("/static/app.js", get(js))
        .fallback(not_found)
        .method_not_allowed_fallback(form_address)
        .layer(middleware::from_fn_with_state(app.clone(), security::guard))
        .layer(middleware::from_fn(security::headers))
        // Outermost, so that the guard reads an uploaded backup under the same limit as
        // the page (a form without a file is held to less by the guard).
        .layer(DefaultBodyLimit::max(security::MAX_UPLOAD))
        .with_state(app);
    super::scope::router(&prefix, pages)
}

/// The style sheet, from the binary.
async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("static/app.css"),
    )
        .into_response()
}

/// The script, from the binary.
async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("static/app.js"),
    )
        .into_response()
}

/// A GET of a form's address (a reload or a back button on the page a form answered,
/// such as a confirmation): the page that form belongs to, not an empty error.
async fn form_address(uri: axum::http::Uri) -> Response {
    let mut parts = uri.path().trim_start_matches('/').split('/');
    let to = match (parts.next(), parts.next()) {
        (Some("devices" | "invites" | "relay" | "leave" | "backup" | "start-over"), _) => {
            "/devices".to_string()
        }
        (Some("goals"), Some(id)) if !id.is_empty() => format!("/goals/{id}"),
        (Some("reflections"), _) => "/reflections".to_string(),
        (Some("checkin"), _) => "/checkin".to_string(),
        _ => "/".to_string(),
    };
    see_other(&to)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(pages::layout::problem("There is no such page in Duet.").into_string()),
    )
        .into_response()
}

/// A redirect after a form (303: the browser then GETs the page).
pub fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}
