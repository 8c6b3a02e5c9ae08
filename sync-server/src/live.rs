//! Live push: `GET /v1/spaces/{space}/live`, a WebSocket on which a member device hears
//! of new events the moment they are committed, so that it pulls them at once instead of
//! polling.
//!
//! The socket carries no event content, only the space's newest cursor as a text message
//! `{"cursor":N}`: first the cursor when the socket opens (so a device that reconnects
//! pulls what it missed), then one message per commit that moved the cursor. The device
//! then pulls with an ordinary signed read. Commits reach the sockets through
//! [`Live`], a broadcast channel the writer feeds after each durable commit; with several
//! relay instances, each instance's channel is also fed by the other instances' commits
//! (see docs/self-hosting.md). The socket is opened with the same signed headers as a
//! read, by a member device; membership is checked again before each message, so a
//! removed device stops hearing anything. The relay pings every [`PING_EVERY`] so that
//! both ends notice a dead connection.
//!
//! A socket is long-lived and holds a file descriptor, so it is capped per device,
//! per space, per client address and in all ([`AppState`]'s live slots, 429 beyond),
//! and it keeps the connection slot it was upgraded from: a flood of sockets meets the
//! caps of one address or one space, not everyone's.

use axum::extract::ws::{CloseFrame, close_code};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use duet_core::event::SpaceId;
use duet_core::identity::DeviceKey;
use duet_core::protocol::{LiveMessage, PING_EVERY};
use tokio::sync::{broadcast, watch};

use crate::ConnectionSlot;
use crate::error::ApiError;
use crate::limits::ClientAddr;
use crate::routes::{blocking, parse_space, read_auth};
use crate::state::AppState;

/// Why a socket closes when the relay stops (with code 1001, "going away").
pub const STOPPING: &str = "the relay is stopping";

/// Commits not yet sent to a slow socket before it is told the newest cursor instead.
const CHANNEL_CAPACITY: usize = 4096;

/// The largest message (and frame) a client may send on its live socket: it has nothing
/// to say there (its messages are ignored) beyond a control frame's 125 bytes, and the
/// WebSocket library would otherwise gather up to 64 MiB of one message per socket,
/// outside every memory budget. A larger one closes the socket.
const MAX_CLIENT_MESSAGE: usize = 4096;

pub use crate::store::Committed;

/// What the live sockets hear.
#[derive(Debug, Clone, Copy)]
pub enum News {
    /// A commit moved a space's cursor.
    Commit(Committed),
    /// Commits may have gone unheard (another instance's, while the connection that
    /// hears them was lost): every socket checks its space's newest cursor.
    Missed,
}

/// The broadcast channel of commits, shared by the writer and every live socket; and
/// the relay's stop, which every socket hears so that it closes with a word (code 1001,
/// "going away") rather than being dropped when the process exits.
#[derive(Clone)]
pub struct Live {
    tx: broadcast::Sender<News>,
    stopping: std::sync::Arc<watch::Sender<bool>>,
    /// How many sockets are open: the relay waits for them to close when it stops.
    open: std::sync::Arc<watch::Sender<usize>>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            tx: broadcast::channel(CHANNEL_CAPACITY).0,
            stopping: std::sync::Arc::new(watch::channel(false).0),
            open: std::sync::Arc::new(watch::channel(0).0),
        }
    }
}

/// Counts a socket open while it lives.
struct OpenSocket(std::sync::Arc<watch::Sender<usize>>);

impl OpenSocket {
    fn new(open: &std::sync::Arc<watch::Sender<usize>>) -> OpenSocket {
        open.send_modify(|n| *n += 1);
        OpenSocket(open.clone())
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Live {
    /// Tells every live socket of the space that its cursor moved. Never blocks; with
    /// no socket open it does nothing.
    pub fn notify(&self, c: Committed) {
        let _ = self.tx.send(News::Commit(c));
    }

    /// Tells every live socket that commits may have gone unheard.
    pub fn missed(&self) {
        let _ = self.tx.send(News::Missed);
    }

    /// A receiver of every commit from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<News> {
        self.tx.subscribe()
    }

    /// Closes every socket (the relay stops), and waits up to `within` for them to be
    /// closed.
    pub async fn close_all(&self, within: std::time::Duration) {
        self.stopping.send_replace(true);
        let mut open = self.open.subscribe();
        let _ = tokio::time::timeout(within, open.wait_for(|n| *n == 0)).await;
    }
}

/// `GET /v1/spaces/{space}/live`: upgrades a member's signed request to a live socket.
///
/// The socket keeps its connection's slot (`connection`, left in the request by the
/// accept loop): an upgraded connection leaves hyper, but it still holds a file
/// descriptor, so it stays counted in the connection budget, overall and per address.
pub async fn live_events(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    client: Option<Extension<ClientAddr>>,
    connection: Option<Extension<ConnectionSlot>>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let space = parse_space(&uri)?;
    let auth = read_auth(&headers)?;
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let now = duet_core::ids::now_ms().div_euclid(1000);
    let (device, person) = {
        let state = state.clone();
        blocking(move || {
            let device = state.authorize_read(space, &auth, &path, &query, now)?;
            // A member a moment ago: `None` only if removed in between.
            let person = state.person_of(space, device)?.ok_or_else(|| {
                ApiError::NotAMember("this device is no longer a member of this space".to_string())
            })?;
            Ok::<_, ApiError>((device, person))
        })
        .await?
    };
    let upgrade = upgrade.map_err(|e| {
        ApiError::BadQuery(format!(
            "this endpoint is a WebSocket: send a WebSocket upgrade request ({e})"
        ))
    })?;
    let ip = client.and_then(|Extension(ClientAddr(ip))| ip);
    let slot = state.live_slot((device, person), space, ip)?;
    let upgrade = upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE);
    Ok(upgrade.on_upgrade(move |socket| async move {
        serve_socket(socket, state, space, device).await;
        drop(slot);
        drop(connection);
    }))
}

fn cursor_message(cursor: u64) -> Message {
    let text = serde_json::to_string(&LiveMessage { cursor }).unwrap_or_default();
    Message::Text(text.into())
}

/// The socket's life: the current cursor, then one message per commit of the space.
async fn serve_socket(mut socket: WebSocket, state: AppState, space: SpaceId, device: DeviceKey) {
    let _open = OpenSocket::new(&state.live().open);
    let mut stopping = state.live().stopping.subscribe();
    // Subscribe before reading the cursor, so no commit falls between the two.
    let mut commits = state.live().subscribe();
    let Some(mut last) = newest(&state, space).await else {
        return;
    };
    if socket.send(cursor_message(last)).await.is_err() {
        return;
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        let moved_to = tokio::select! {
            c = commits.recv() => match c {
                Ok(News::Commit(c)) if c.space == space && c.cursor > last => Some(c.cursor),
                Ok(News::Commit(_)) => None,
                // Too slow to keep up, or commits went unheard: send the newest cursor,
                // which covers what was lost.
                Ok(News::Missed) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    newest_again(&state, space).await.filter(|c| *c > last)
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => None,
            },
            () = async { let _ = stopping.wait_for(|s| *s).await; } => {
                let frame = CloseFrame {
                    code: close_code::AWAY,
                    reason: STOPPING.into(),
                };
                let _ = socket.send(Message::Close(Some(frame))).await;
                break;
            }
            _ = ping.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
                None
            }
        };
        let Some(cursor) = moved_to else {
            continue;
        };
        if !still_member(&state, space, device).await {
            let _ = socket.send(Message::Close(None)).await;
            break;
        }
        last = cursor;
        if socket.send(cursor_message(cursor)).await.is_err() {
            break;
        }
    }
}

async fn newest(state: &AppState, space: SpaceId) -> Option<u64> {
    let state = state.clone();
    blocking(move || state.newest_cursor(space)).await.ok()
}

/// The newest cursor when commits may have gone unheard, asked again a moment later
/// when the database does not answer (the connection that reads it is made again at the
/// next request, after PostgreSQL came back): the check must not be lost.
async fn newest_again(state: &AppState, space: SpaceId) -> Option<u64> {
    for wait in [0, 1, 2, 4] {
        if wait > 0 {
            tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
        }
        if let Some(c) = newest(state, space).await {
            return Some(c);
        }
    }
    None
}

async fn still_member(state: &AppState, space: SpaceId, device: DeviceKey) -> bool {
    let state = state.clone();
    blocking(move || state.is_member(space, device))
        .await
        .unwrap_or(false)
}
