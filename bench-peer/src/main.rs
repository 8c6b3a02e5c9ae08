//! Benchmark peer for issue 6: how does samod (the Rust automerge-repo) do on Duet's
//! "offline partner catches up" scenario?
//!
//! Scenario: partner A makes N small edits offline (default N = 10,000), then syncs to a
//! server; partner B, fresh, syncs from the server and converges.
//!
//! Each edit resembles a Duet GAS rating: one Automerge change (message "rate", time =
//! `at`) that puts a new map under the root `ratings` map, keyed by a random 32-hex id, with
//! the fields Duet's `Rating` writes: `id`, `goal` (same for all), `rater`, `at` (int, ms),
//! `level` (int -2..=2) and `note` (null).
//!
//! What runs, all in one process on one tokio runtime, over real TCP on 127.0.0.1:
//! 1. A's samod repo (in-memory storage) creates the document with no connection and makes
//!    the N edits, one transaction each (`samod_offline_edits_seconds`). samod persists each
//!    change asynchronously, so A's document actor is then left with a queue of storage
//!    completions; `samod_offline_settle_seconds` is the wait until it has worked that off
//!    (as a real partner would have long before coming back online).
//! 2. A samod server repo (in-memory storage) serves WebSocket via axum on 127.0.0.1:0.
//! 3. A dials the server; `samod_push_seconds` runs from the start of the dial until the
//!    server's copy of the document has exactly A's heads (polled every 2 ms).
//! 4. A's dialer is closed. B (fresh repo, in-memory storage) dials the server and `find`s
//!    the document id; `samod_fresh_sync_seconds` runs from the start of B's dial until B's
//!    heads equal A's heads (B's copy is then checked to hold all N ratings).
//! 5. `samod_automerge_save_bytes` is `Automerge::save()` of A's document, for reference.
//!
//! `--connect-immediately` skips the wait in step 1. Then the push time varies wildly with
//! samod 0.16 / automerge 0.12 (0.2 s to over 200 s at N = 10,000 on a 2-core machine): while
//! a peer is connected, every queued storage completion makes the document actor call
//! automerge's `generate_sync_message`, which, for a peer that has nothing yet, builds a
//! whole-document `save()` before deciding whether there is anything to send.
//!
//! Also seen with these versions: the server usually sends B the whole-document sync message
//! twice (it answers both of B's first two messages before B's acknowledgement arrives), so
//! the fresh sync moves about twice the bytes of the push; `--trace-messages` shows it.
//!
//! Bytes are counted on the client side of each connection (A's for the push, B's for the
//! fresh sync) after the traffic has gone quiet for a moment, so trailing acknowledgements
//! are included. `*_bytes` is the payload of binary WebSocket messages in both directions
//! (what samod hands to / gets from the socket); `*_tcp_bytes` is everything read from and
//! written to the TCP socket (HTTP upgrade, WebSocket framing and masking included).
//!
//! Run (from the repository root):
//!
//! ```text
//! cargo run --release --manifest-path bench-peer/Cargo.toml -- --changes 10000
//! ```
//!
//! Options: `--changes N` (default 10000), `--timeout-secs S` (default 600, per phase),
//! `--connect-immediately` (above), `--trace-messages` (each protocol message's direction,
//! size and head, the server's sync timings and A's repo activity, on stderr).
//! `RUST_LOG=samod=debug` shows samod's own logging.
//! The package is standalone (its own `[workspace]`), so it does not affect Duet's build.

use std::{
    collections::HashSet,
    convert::Infallible,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow, bail};
use automerge::{
    Automerge, AutomergeError, ChangeHash, ObjType, ROOT, ReadDoc, ScalarValue,
    transaction::{CommitOptions, Transactable},
};
use axum::{Router, extract::ws::WebSocketUpgrade, routing::get};
use futures::{SinkExt, StreamExt, TryStreamExt, future::BoxFuture};
use rand::Rng;
use samod::{
    BackoffConfig, DialError, Dialer, DialerEvent, DialerHandle, DocHandle, DocumentId, PeerId,
    Repo, RepoEvent, RepoObserver, Transport, Url,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::{Message, protocol::WebSocketConfig};

/// Versions pinned (with `=`) in Cargo.toml; printed so results are attributable.
const SAMOD_VERSION: &str = "0.16.0";
const AUTOMERGE_VERSION: &str = "0.12.0";
/// Large enough for a whole-document sync message of a big N.
const MAX_WS_MESSAGE: usize = 1 << 30;
const POLL: Duration = Duration::from_millis(2);
static START: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

struct Args {
    changes: usize,
    timeout: Duration,
    trace: bool,
    connect_immediately: bool,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        changes: 10_000,
        timeout: Duration::from_secs(600),
        trace: false,
        connect_immediately: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--changes" => args.changes = value("--changes")?.parse().context("--changes")?,
            "--timeout-secs" => {
                args.timeout =
                    Duration::from_secs(value("--timeout-secs")?.parse().context("--timeout-secs")?)
            }
            "--trace-messages" => args.trace = true,
            "--connect-immediately" => args.connect_immediately = true,
            "-h" | "--help" => {
                println!(
                    "usage: duet-bench-peer [--changes N] [--timeout-secs S] [--trace-messages] \
                     [--connect-immediately]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    if args.changes == 0 {
        bail!("--changes must be at least 1");
    }
    Ok(args)
}

/// Byte and message counters for one client connection (both directions).
#[derive(Default)]
struct Counters {
    ws_sent: AtomicU64,
    ws_received: AtomicU64,
    ws_messages: AtomicU64,
    tcp_written: AtomicU64,
    tcp_read: AtomicU64,
    dial_retries: AtomicU64,
    /// `--trace-messages`: print each protocol message's direction and size to stderr.
    trace: Option<&'static str>,
}

impl Counters {
    fn new(who: &'static str, trace: bool) -> Arc<Self> {
        Arc::new(Counters {
            trace: trace.then_some(who),
            ..Counters::default()
        })
    }

    fn trace(&self, dir: &str, data: &[u8]) {
        if let Some(who) = self.trace {
            // samod messages are CBOR maps with string keys: the head shows type and ids.
            let head: String = String::from_utf8_lossy(&data[..data.len().min(48)])
                .chars()
                .map(|c| if c.is_ascii_graphic() { c } else { '.' })
                .collect();
            eprintln!(
                "trace: {:?} {who} {dir} {} bytes {head}",
                START.elapsed(),
                data.len()
            );
        }
    }

    fn payload(&self) -> u64 {
        self.ws_sent.load(Ordering::Relaxed) + self.ws_received.load(Ordering::Relaxed)
    }
    fn tcp(&self) -> u64 {
        self.tcp_written.load(Ordering::Relaxed) + self.tcp_read.load(Ordering::Relaxed)
    }

    /// Waits until no byte has moved for `quiet` (at most `max`), so late acks are counted.
    async fn settle(&self, quiet: Duration, max: Duration) {
        let deadline = Instant::now() + max;
        let mut last = self.tcp();
        let mut since = Instant::now();
        while Instant::now() < deadline && since.elapsed() < quiet {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let now = self.tcp();
            if now != last {
                last = now;
                since = Instant::now();
            }
        }
    }

    fn report(&self, prefix: &str) {
        bench(&format!("{prefix}_bytes"), self.payload(), "bytes");
        bench(
            &format!("{prefix}_bytes_up"),
            self.ws_sent.load(Ordering::Relaxed),
            "bytes",
        );
        bench(
            &format!("{prefix}_bytes_down"),
            self.ws_received.load(Ordering::Relaxed),
            "bytes",
        );
        bench(
            &format!("{prefix}_ws_messages"),
            self.ws_messages.load(Ordering::Relaxed),
            "messages",
        );
        bench(&format!("{prefix}_tcp_bytes"), self.tcp(), "bytes");
        bench(
            &format!("{prefix}_dial_retries"),
            self.dial_retries.load(Ordering::Relaxed),
            "retries",
        );
    }
}

/// A TCP stream that counts the bytes read and written.
struct CountingStream {
    inner: tokio::net::TcpStream,
    counters: Arc<Counters>,
}

impl AsyncRead for CountingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            let n = (buf.filled().len() - before) as u64;
            self.counters.tcp_read.fetch_add(n, Ordering::Relaxed);
        }
        result
    }
}

impl AsyncWrite for CountingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            self.counters
                .tcp_written
                .fetch_add(n as u64, Ordering::Relaxed);
        }
        result
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A samod [`Dialer`] over tokio-tungstenite that counts what crosses the wire. It mirrors
/// samod's own `TungsteniteDialer` (binary messages carry the protocol; text is an error;
/// ping/pong/close are not protocol messages) but without TLS, which loopback doesn't need.
struct CountingWsDialer {
    url: Url,
    addr: SocketAddr,
    counters: Arc<Counters>,
}

impl Dialer for CountingWsDialer {
    type Error = Infallible;

    fn url(&self) -> Url {
        self.url.clone()
    }

    fn connect(&self) -> BoxFuture<'static, Result<Transport, DialError<Infallible>>> {
        let (url, addr, counters) = (self.url.clone(), self.addr, self.counters.clone());
        Box::pin(async move {
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(dial_failed)?;
            tcp.set_nodelay(true).map_err(dial_failed)?;
            let io = CountingStream {
                inner: tcp,
                counters: counters.clone(),
            };
            let config = WebSocketConfig::default()
                .max_message_size(Some(MAX_WS_MESSAGE))
                .max_frame_size(Some(MAX_WS_MESSAGE));
            let (ws, _response) =
                tokio_tungstenite::client_async_with_config(url.as_str(), io, Some(config))
                    .await
                    .map_err(dial_failed)?;
            let (sink, stream) = ws.split();
            let rx = counters.clone();
            let stream = stream.try_filter_map(move |msg| {
                let out = match msg {
                    Message::Binary(data) => {
                        rx.ws_received
                            .fetch_add(data.len() as u64, Ordering::Relaxed);
                        rx.ws_messages.fetch_add(1, Ordering::Relaxed);
                        rx.trace("<-", &data);
                        Ok(Some(data.to_vec()))
                    }
                    Message::Text(_) => Err(tokio_tungstenite::tungstenite::Error::Io(
                        io::Error::other("unexpected text message on samod websocket"),
                    )),
                    Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => {
                        Ok(None)
                    }
                };
                futures::future::ready(out)
            });
            let sink = sink.with(move |bytes: Vec<u8>| {
                counters
                    .ws_sent
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                counters.ws_messages.fetch_add(1, Ordering::Relaxed);
                counters.trace("->", &bytes);
                futures::future::ready(Ok::<_, tokio_tungstenite::tungstenite::Error>(
                    Message::binary(bytes),
                ))
            });
            Ok(Transport::new(stream, sink))
        })
    }
}

/// Reports why a connection attempt failed (samod itself only logs it via `tracing`).
fn dial_failed<E: std::error::Error + Send + Sync + 'static>(e: E) -> DialError<Infallible> {
    eprintln!("dial: connection attempt failed: {e}");
    DialError::transient(e)
}

/// Records which documents the server repo has opened, so we can wait for A's push to
/// arrive without asking the server to `find` (i.e. pull) the document first.
#[derive(Clone, Default)]
struct OpenedDocs {
    opened: Arc<Mutex<HashSet<DocumentId>>>,
    /// `--trace-messages`: also print the server's sync-message and storage timings.
    trace: bool,
}

impl RepoObserver for OpenedDocs {
    fn observe(&self, event: &RepoEvent) {
        match event {
            RepoEvent::DocumentOpened { document_id } => {
                self.opened
                    .lock()
                    .expect("observer mutex poisoned")
                    .insert(document_id.clone());
            }
            RepoEvent::SyncMessageReceived {
                bytes,
                duration,
                queue_duration,
                ..
            } if self.trace => {
                eprintln!(
                    "trace: {:?} server applied sync message of {bytes} bytes in {duration:?} \
                     (queued {queue_duration:?})",
                    START.elapsed()
                );
            }
            RepoEvent::SyncMessageGenerated {
                bytes, duration, ..
            } if self.trace => {
                eprintln!(
                    "trace: {:?} server generated sync message of {bytes} bytes in {duration:?}",
                    START.elapsed()
                );
            }
            RepoEvent::StorageOperationCompleted { duration, .. } if self.trace => {
                eprintln!(
                    "trace: {:?} server storage op took {duration:?}",
                    START.elapsed()
                );
            }
            _ => {}
        }
    }
}

impl OpenedDocs {
    fn contains(&self, id: &DocumentId) -> bool {
        self.opened
            .lock()
            .expect("observer mutex poisoned")
            .contains(id)
    }
}

/// Counts a client repo's storage operations and hub events, to tell when it is idle.
#[derive(Clone, Default)]
struct Activity {
    storage_ops: Arc<AtomicU64>,
    storage_nanos: Arc<AtomicU64>,
    hub_events: Arc<AtomicU64>,
    hub_nanos: Arc<AtomicU64>,
}

impl RepoObserver for Activity {
    fn observe(&self, event: &RepoEvent) {
        match event {
            RepoEvent::StorageOperationCompleted { duration, .. } => {
                self.storage_ops.fetch_add(1, Ordering::Relaxed);
                self.storage_nanos
                    .fetch_add(duration.as_nanos() as u64, Ordering::Relaxed);
            }
            RepoEvent::HubEventProcessed { duration, .. } => {
                self.hub_events.fetch_add(1, Ordering::Relaxed);
                self.hub_nanos
                    .fetch_add(duration.as_nanos() as u64, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

impl Activity {
    /// Waits until the document's actor has worked off its queue (the storage completions of
    /// the offline edits) and no further storage operation starts.
    async fn wait_idle(&self, handle: &DocHandle, deadline: Instant) -> Result<()> {
        let mut last = u64::MAX;
        loop {
            // Tasks run in submission order, so this returns once the queue ahead of it is done.
            handle.with_document_async(|_| ()).await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now = self.storage_ops.load(Ordering::Relaxed);
            if now == last {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("A's repo did not go idle after the offline edits");
            }
            last = now;
        }
    }

    fn snapshot(&self) -> String {
        format!(
            "storage ops {} ({:?}), hub events {} ({:?})",
            self.storage_ops.load(Ordering::Relaxed),
            Duration::from_nanos(self.storage_nanos.load(Ordering::Relaxed)),
            self.hub_events.load(Ordering::Relaxed),
            Duration::from_nanos(self.hub_nanos.load(Ordering::Relaxed)),
        )
    }
}

fn bench(name: &str, value: impl std::fmt::Display, unit: &str) {
    println!("bench: {name} {value} {unit}");
}

fn seconds(name: &str, d: Duration) {
    bench(name, format!("{:.3}", d.as_secs_f64()), "s");
}

fn random_hex_id(rng: &mut impl Rng) -> String {
    let bytes: [u8; 16] = rng.random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One Duet-like GAS rating as one Automerge change.
fn rate(doc: &mut Automerge, ratings: &automerge::ObjId, id: &str, i: usize) -> Result<()> {
    let at = now_ms() + i as i64;
    doc.transact_with::<_, _, AutomergeError, _>(
        |_| {
            CommitOptions::default()
                .with_message("rate".to_string())
                .with_time(at)
        },
        |tx| {
            let r = tx.put_object(ratings, id, ObjType::Map)?;
            tx.put(&r, "id", id)?;
            tx.put(&r, "goal", "0123456789abcdef0123456789abcdef")?;
            tx.put(
                &r,
                "rater",
                if i.is_multiple_of(2) {
                    "partner-a-person"
                } else {
                    "partner-a-other"
                },
            )?;
            tx.put(&r, "at", at)?;
            tx.put(&r, "level", (i % 5) as i64 - 2)?;
            tx.put(&r, "note", ScalarValue::Null)?;
            Ok(())
        },
    )
    .map_err(|f| anyhow!("rating change failed: {}", f.error))?;
    Ok(())
}

fn ratings_obj(doc: &Automerge) -> Result<automerge::ObjId> {
    match doc.get(ROOT, "ratings")? {
        Some((automerge::Value::Object(ObjType::Map), id)) => Ok(id),
        _ => bail!("document has no ratings map"),
    }
}

fn heads(handle: &DocHandle) -> Vec<ChangeHash> {
    let mut h = handle.with_document(|d| d.get_heads());
    h.sort();
    h
}

/// Polls `handle` until its heads equal `target`, or fails at `deadline`.
async fn wait_for_heads(
    handle: &DocHandle,
    target: &[ChangeHash],
    deadline: Instant,
    what: &str,
) -> Result<()> {
    loop {
        if heads(handle) == target {
            return Ok(());
        }
        if Instant::now() > deadline {
            let n = handle.with_document(|d| d.get_changes(&[]).len());
            bail!("{what}: did not converge before the deadline ({n} changes present)");
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn dial(
    who: &'static str,
    repo: &Repo,
    url: &Url,
    addr: SocketAddr,
    counters: &Arc<Counters>,
    timeout: Duration,
) -> Result<DialerHandle<Infallible>> {
    let dialer = CountingWsDialer {
        url: url.clone(),
        addr,
        counters: counters.clone(),
    };
    // Not `max_retries: Some(0)`: samod 0.16's `Repo::dial` hands the dial request to its IO
    // loop before it registers the dialer, so on a multi-threaded runtime the first attempt
    // sometimes fails at once with "no dialer registered". A few quick retries absorb that;
    // any retry is reported (stderr and `*_dial_retries`) and its delay is in the timing.
    let backoff = BackoffConfig {
        initial_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(200),
        max_retries: Some(10),
    };
    let handle = repo.dial(backoff, Arc::new(dialer))?;
    // Surface connection trouble on stderr (samod itself only reports it via `tracing`).
    let result = {
        let mut events = handle.events();
        let established = tokio::time::timeout(timeout, handle.established());
        tokio::pin!(established);
        loop {
            tokio::select! {
                biased;
                Some(event) = events.next() => {
                    if matches!(event, DialerEvent::Reconnecting { .. }) {
                        counters.dial_retries.fetch_add(1, Ordering::Relaxed);
                    }
                    if !matches!(event, DialerEvent::Connected { .. }) {
                        eprintln!("{who}: dialer event {event:?}");
                    }
                }
                result = &mut established => break result,
            }
        }
    };
    result
        .context("timed out connecting to the server")?
        .context("could not connect to the server")?;
    Ok(handle)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    std::sync::LazyLock::force(&START);
    // samod reports connection trouble through `tracing`; RUST_LOG=samod=debug shows it.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let n = args.changes;
    println!("bench-info: samod {SAMOD_VERSION}, automerge {AUTOMERGE_VERSION}, changes {n}");
    println!(
        "bench-info: *_bytes = payload of binary WebSocket messages, both directions, counted \
         at the client; *_tcp_bytes = all TCP bytes both directions (upgrade + framing)"
    );

    // --- Partner A, offline: create the document and make N edits. ---
    let a_activity = Activity::default();
    let a = Repo::build_tokio()
        .with_peer_id(PeerId::from("partner-a"))
        .with_observer(a_activity.clone())
        .load()
        .await;
    let mut initial = Automerge::new();
    initial
        .transact::<_, _, AutomergeError>(|tx| {
            for coll in ["people", "goals", "ratings", "reflections"] {
                tx.put_object(ROOT, coll, ObjType::Map)?;
            }
            Ok(())
        })
        .map_err(|f| anyhow!("initial change failed: {}", f.error))?;
    let a_doc = a.create(initial).await?;
    let doc_id = a_doc.document_id().clone();
    let ratings = a_doc.with_document(|d| ratings_obj(d))?;
    let mut rng = rand::rng();
    let started = Instant::now();
    for i in 0..n {
        let id = random_hex_id(&mut rng);
        a_doc.with_document(|d| rate(d, &ratings, &id, i))?;
    }
    let offline = started.elapsed();
    if args.trace {
        let a_activity = a_activity.clone();
        tokio::spawn(async move {
            loop {
                eprintln!(
                    "trace: {:?} A activity: {}",
                    START.elapsed(),
                    a_activity.snapshot()
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }
    seconds("samod_offline_edits_seconds", offline);
    // samod persists each change asynchronously: the document actor still has a queue of
    // storage completions (and compactions) to work off. Wait for that, as a real partner
    // would have long done by the time they come back online. With --connect-immediately
    // the push starts with that queue pending instead (see the module doc).
    let settle = Instant::now();
    if !args.connect_immediately {
        a_activity.wait_idle(&a_doc, settle + args.timeout).await?;
        seconds("samod_offline_settle_seconds", settle.elapsed());
    }
    let a_heads = heads(&a_doc);
    let (save_bytes, a_changes) =
        a_doc.with_document(|d| (d.save().len(), d.get_changes(&[]).len()));
    bench("samod_automerge_save_bytes", save_bytes, "bytes");

    // --- The server: a samod repo behind axum's WebSocket on loopback. ---
    let opened = OpenedDocs {
        trace: args.trace,
        ..OpenedDocs::default()
    };
    let server = Repo::build_tokio()
        .with_peer_id(PeerId::from("server"))
        .with_observer(opened.clone())
        .load()
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let url: Url = format!("ws://{addr}/").parse()?;
    let acceptor = server.make_acceptor(url.clone())?;
    let app = Router::new().route(
        "/",
        get(move |upgrade: WebSocketUpgrade| {
            let acceptor = acceptor.clone();
            async move {
                upgrade
                    .max_message_size(MAX_WS_MESSAGE)
                    .max_frame_size(MAX_WS_MESSAGE)
                    .on_upgrade(move |socket| async move {
                        if let Err(e) = acceptor.accept_axum(socket, None) {
                            eprintln!("server: could not accept connection: {e}");
                        }
                    })
            }
        }),
    );
    let http = tokio::spawn(async move { axum::serve(listener, app).await });

    // --- A connects and pushes. ---
    let a_counters = Counters::new("A", args.trace);
    let started = Instant::now();
    let deadline = started + args.timeout;
    let a_dialer = dial("A", &a, &url, addr, &a_counters, args.timeout).await?;
    let a_connected = started.elapsed();
    while !opened.contains(&doc_id) {
        if Instant::now() > deadline {
            bail!("push: the server never opened the document (A did not announce it?)");
        }
        tokio::time::sleep(POLL).await;
    }
    // The server already has an actor for the document, so this resolves from local state
    // rather than asking A for it (`--trace-messages` shows no `request` message to A).
    let server_doc = tokio::time::timeout(args.timeout, server.find(doc_id.clone()))
        .await
        .context("push: timed out opening the server's copy")??
        .context("push: the server reports the document unavailable")?;
    wait_for_heads(&server_doc, &a_heads, deadline, "push").await?;
    let push = started.elapsed();
    let push_bytes_at_convergence = a_counters.payload();
    a_counters
        .settle(Duration::from_millis(300), Duration::from_secs(5))
        .await;
    seconds("samod_push_seconds", push);
    seconds("samod_push_connect_seconds", a_connected);
    a_counters.report("samod_push");
    bench(
        "samod_push_bytes_at_convergence",
        push_bytes_at_convergence,
        "bytes",
    );
    a_dialer.close();

    // --- B, fresh, syncs from the server. ---
    let b = Repo::build_tokio()
        .with_peer_id(PeerId::from("partner-b"))
        .load()
        .await;
    let b_counters = Counters::new("B", args.trace);
    let started = Instant::now();
    let deadline = started + args.timeout;
    let _b_dialer = dial("B", &b, &url, addr, &b_counters, args.timeout).await?;
    let b_connected = started.elapsed();
    let b_doc = tokio::time::timeout(args.timeout, b.find(doc_id.clone()))
        .await
        .context("fresh sync: timed out in find")??
        .context("fresh sync: the server reports the document unavailable")?;
    let found = started.elapsed();
    wait_for_heads(&b_doc, &a_heads, deadline, "fresh sync").await?;
    let fresh = started.elapsed();
    let fresh_bytes_at_convergence = b_counters.payload();
    b_counters
        .settle(Duration::from_millis(300), Duration::from_secs(5))
        .await;
    seconds("samod_fresh_sync_seconds", fresh);
    seconds("samod_fresh_sync_connect_seconds", b_connected);
    seconds("samod_fresh_find_seconds", found);
    b_counters.report("samod_fresh_sync");
    bench(
        "samod_fresh_sync_bytes_at_convergence",
        fresh_bytes_at_convergence,
        "bytes",
    );

    let b_ratings = b_doc.with_document(|d| ratings_obj(d).map(|r| d.length(&r)))?;
    if b_ratings != n {
        bail!("fresh sync: B has {b_ratings} ratings, expected {n}");
    }

    println!(
        "summary: samod {SAMOD_VERSION} (automerge {AUTOMERGE_VERSION}): partner A made {n} \
         rating edits offline ({a_changes} Automerge changes, {save_bytes} bytes saved) in \
         {:.2} s; pushing them to a samod server over WebSocket on loopback took {:.2} s and \
         {} payload bytes ({} on TCP); a fresh partner B found the document after {:.2} s, \
         converged to A's heads after {:.2} s and moved {} payload bytes ({} on TCP), and its \
         copy holds all {n} ratings. B downloaded {:.2}x what A uploaded; dial retries \
         (samod 0.16 dial race): A {}, B {}.",
        offline.as_secs_f64(),
        push.as_secs_f64(),
        a_counters.payload(),
        a_counters.tcp(),
        found.as_secs_f64(),
        fresh.as_secs_f64(),
        b_counters.payload(),
        b_counters.tcp(),
        b_counters.ws_received.load(Ordering::Relaxed) as f64
            / a_counters.ws_sent.load(Ordering::Relaxed).max(1) as f64,
        a_counters.dial_retries.load(Ordering::Relaxed),
        b_counters.dial_retries.load(Ordering::Relaxed),
    );

    b.stop().await;
    a.stop().await;
    server.stop().await;
    http.abort();
    Ok(())
}
