//! Relay memory: the relay process's peak resident memory (RSS) while it stores S spaces
//! of E events each and serves every one of them to a reader once. It shows that the
//! relay keeps events on disk, not in memory (the target is a peak RSS under 100 MB
//! with 10,000 spaces of 100 events). It prints figures and never asserts them.
//!
//!     cargo run --release -p duet-tests --bin relay_rss
//!     cargo run --release -p duet-tests --bin relay_rss -- --spaces 1000 --events 100
//!
//! Options: `--spaces S` (default 10000), `--events E` per space, the genesis included
//! (default 100), `--clients C` concurrent connections (default 4).
//!
//! The example starts itself again as the relay (`--serve-relay DB_PATH`, an internal
//! mode): that child opens a fresh database in a temporary directory with rate limits
//! and quotas off, serves on 127.0.0.1 (port chosen by the system, printed on its
//! stdout) with `serve_state` on a two-thread runtime, and stops when its stdin closes.
//! So the figures are the relay's alone, not the client's. The parent pushes, per
//! space, a genesis and E-1 `changes` events of 100 plaintext bytes signed by the
//! space's owner device (generated and signed inside C client tasks, one space at a
//! time), then reads every space back with signed `GET` requests, paging with the
//! cursor while `duet-more: 1`. Memory is the child's `VmHWM` (peak) and `VmRSS`
//! (current) from `/proc/PID/status` (Linux), in MB of 2^20 bytes.

use std::io::{BufRead as _, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use duet_core::crypto::SpaceKey;
use duet_core::event::{Event, SpaceId};
use duet_core::identity::Identity;
use duet_core::protocol::MAX_BODY_BYTES;
use duet_tests::relay_client::{Conn, Dev, next_flag, unlimited_config};

/// The internal flag that makes this program the relay.
const SERVE_FLAG: &str = "--serve-relay";
/// Plaintext bytes of each `changes` event.
const PAYLOAD: usize = 100;
/// At most this many events per push request (more are split).
const MAX_PUSH_EVENTS: usize = 1000;
/// How long the relay may take to stop once its stdin is closed.
const EXIT_DEADLINE: Duration = Duration::from_secs(30);

/// Command-line options.
struct Options {
    /// Spaces on the relay.
    spaces: usize,
    /// Events per space, the genesis included.
    events: usize,
    /// Concurrent client connections.
    clients: usize,
}

/// The options, as `--help` and errors name them.
const OPTIONS: &str = "--spaces S --events E --clients C";

fn options(args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
    let mut o = Options {
        spaces: 10_000,
        events: 100,
        clients: 4,
    };
    let mut args = args;
    while let Some((flag, value)) = next_flag(&mut args, OPTIONS)? {
        let number = |v: &str| duet_tests::relay_client::number(&flag, v);
        match flag.as_str() {
            "--spaces" => o.spaces = number(&value)?,
            "--events" => o.events = number(&value)?,
            "--clients" => o.clients = number(&value)?,
            other => bail!("unknown option {other}; options: {OPTIONS}"),
        }
    }
    if o.spaces == 0 || o.events == 0 || o.clients == 0 {
        bail!("--spaces, --events and --clients must be at least 1");
    }
    Ok(o)
}

/// The relay, run in the child process: serves until stdin closes.
fn serve_relay(db: &Path) -> anyhow::Result<()> {
    let state = duet_relay::open_state(&db.into(), unlimited_config())?;
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{port}")?;
            out.flush()?;
        }
        let shutdown = async {
            // Stdin closes when the parent is done (or gone).
            let _ = tokio::task::spawn_blocking(|| {
                std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink())
            })
            .await;
        };
        duet_relay::serve_state(listener, state, shutdown).await
    })
}

/// The relay child process; killed on drop if it is still running.
struct Relay {
    child: Child,
    addr: SocketAddr,
}

impl Relay {
    fn start(db: &Path) -> anyhow::Result<Relay> {
        let exe = std::env::current_exe().context("cannot find this program to run the relay")?;
        let mut child = Command::new(exe)
            .arg(SERVE_FLAG)
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start the relay process")?;
        let stdout = child.stdout.take();
        // From here on, dropping `relay` stops the child.
        let mut relay = Relay {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let mut line = String::new();
        if let Some(out) = stdout {
            std::io::BufReader::new(out)
                .read_line(&mut line)
                .context("cannot read the relay's port")?;
        }
        let port: u16 = line.trim().parse().with_context(|| {
            format!(
                "the relay process did not print its port (it printed `{}`)",
                line.trim().escape_debug()
            )
        })?;
        relay.addr.set_port(port);
        Ok(relay)
    }

    /// `(VmHWM, VmRSS)` of the relay, in kB.
    fn memory_kb(&self) -> anyhow::Result<(u64, u64)> {
        let path = format!("/proc/{}/status", self.child.id());
        let status =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().strip_suffix("kB"))
                .and_then(|v| v.trim().parse().ok())
                .with_context(|| format!("{path} has no `{name} N kB` line"))
        };
        Ok((field("VmHWM:")?, field("VmRSS:")?))
    }

    /// Closes the relay's stdin and waits for it to exit (killing it after a deadline).
    fn stop(mut self) -> anyhow::Result<()> {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + EXIT_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("the relay process exited with {status}");
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.child.kill()?;
                self.child.wait()?;
                bail!(
                    "the relay process did not stop within {} s of its stdin closing; killed it",
                    EXIT_DEADLINE.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Splits a space's events into push requests within the relay's body limit.
fn batches(events: &[Event]) -> Vec<&[Event]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, ev) in events.iter().enumerate() {
        let size = 4 + ev.bytes().len();
        if i > start && (bytes + size > MAX_BODY_BYTES / 2 || i - start >= MAX_PUSH_EVENTS) {
            out.push(&events[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < events.len() {
        out.push(&events[start..]);
    }
    out
}

/// One ingest client: takes the next space, creates it and pushes its events, until
/// every space is done. Returns the spaces it made with their owners.
async fn ingest(
    addr: SocketAddr,
    opts: Arc<Options>,
    next: Arc<AtomicUsize>,
    done: Arc<AtomicUsize>,
) -> anyhow::Result<Vec<(SpaceId, Identity)>> {
    let mut conn = Conn::open(addr).await?;
    let mut made = Vec::new();
    let payload = [b'x'; PAYLOAD];
    let tenth = (opts.spaces / 10).max(1);
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= opts.spaces {
            return Ok(made);
        }
        let space = SpaceId::generate();
        let key = SpaceKey::generate();
        let mut owner = Dev::new(&format!("owner {i}"));
        let mut events = Vec::with_capacity(opts.events);
        events.push(owner.genesis(space, false));
        for _ in 1..opts.events {
            events.push(owner.changes(space, &key, &payload));
        }
        for batch in batches(&events) {
            conn.push(&space, batch)
                .await
                .with_context(|| format!("pushing to space {i}"))?;
        }
        made.push((space, owner.id));
        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(tenth) {
            eprintln!("relay_rss: {n}/{} spaces stored", opts.spaces);
        }
    }
}

/// One read client: reads the next space until every space is read; returns
/// (requests, events).
async fn read_spaces(
    addr: SocketAddr,
    owners: Arc<Vec<(SpaceId, Identity)>>,
    expected: u64,
    next: Arc<AtomicUsize>,
) -> anyhow::Result<(u64, u64)> {
    let mut conn = Conn::open(addr).await?;
    let (mut requests, mut events) = (0, 0);
    while let Some((space, owner)) = owners.get(next.fetch_add(1, Ordering::Relaxed)) {
        let (r, e) = conn.read_all(space, owner).await?;
        if e != expected {
            bail!("space {space}: read {e} events, expected {expected}");
        }
        requests += r;
        events += e;
    }
    Ok((requests, events))
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// Bytes of the database and its WAL and shared-memory files.
fn db_bytes(db: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            std::fs::metadata(p).ok().map(|m| m.len())
        })
        .sum()
}

fn bench(
    out: &mut impl std::io::Write,
    name: &str,
    value: String,
    unit: &str,
) -> anyhow::Result<()> {
    writeln!(out, "bench: {name} {value} {unit}")?;
    out.flush()?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some(SERVE_FLAG) {
        args.next();
        let db = args.next().context("--serve-relay needs a database path")?;
        return serve_relay(Path::new(&db));
    }
    let opts = Arc::new(options(args)?);
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("relay.db");
    let relay = Relay::start(&db)?;
    let addr = relay.addr;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "relay memory: {} spaces x {} events ({} B plaintext), {} client connections, \
         relay pid {} on {addr}",
        opts.spaces,
        opts.events,
        PAYLOAD,
        opts.clients,
        relay.child.id()
    )?;
    let (_, idle_kb) = relay.memory_kb()?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    // Ingest.
    let start = Instant::now();
    let owners = runtime.block_on(async {
        let next = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..opts.clients)
            .map(|_| tokio::spawn(ingest(addr, opts.clone(), next.clone(), done.clone())))
            .collect();
        let mut owners = Vec::with_capacity(opts.spaces);
        for t in tasks {
            owners.extend(t.await??);
        }
        anyhow::Ok(owners)
    })?;
    let ingest_secs = start.elapsed().as_secs_f64();
    let (ingest_hwm_kb, ingest_rss_kb) = relay.memory_kb()?;
    let stored = (opts.spaces * opts.events) as u64;

    // Reads.
    let owners = Arc::new(owners);
    let start = Instant::now();
    let (requests, read) = runtime.block_on(async {
        let next = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..opts.clients)
            .map(|_| {
                tokio::spawn(read_spaces(
                    addr,
                    owners.clone(),
                    opts.events as u64,
                    next.clone(),
                ))
            })
            .collect();
        let (mut requests, mut events) = (0, 0);
        for t in tasks {
            let (r, e) = t.await??;
            requests += r;
            events += e;
        }
        anyhow::Ok((requests, events))
    })?;
    let read_secs = start.elapsed().as_secs_f64();
    let (reads_hwm_kb, reads_rss_kb) = relay.memory_kb()?;
    let live_db = db_bytes(&db);
    drop(runtime);
    relay.stop()?;
    let final_db = db_bytes(&db);

    let o = &mut out;
    bench(o, "relay_rss_spaces", opts.spaces.to_string(), "spaces")?;
    bench(o, "relay_events_stored", stored.to_string(), "events")?;
    bench(o, "relay_ingest_seconds", format!("{ingest_secs:.2}"), "s")?;
    bench(
        o,
        "relay_ingest_events_per_second",
        format!("{:.0}", stored as f64 / ingest_secs),
        "events/s",
    )?;
    bench(o, "relay_rss_idle", format!("{:.1}", mb(idle_kb)), "MB")?;
    bench(
        o,
        "relay_peak_rss_after_ingest",
        format!("{:.1}", mb(ingest_hwm_kb)),
        "MB",
    )?;
    bench(
        o,
        "relay_rss_after_ingest",
        format!("{:.1}", mb(ingest_rss_kb)),
        "MB",
    )?;
    bench(
        o,
        "relay_peak_rss_after_reads",
        format!("{:.1}", mb(reads_hwm_kb)),
        "MB",
    )?;
    bench(
        o,
        "relay_rss_after_reads",
        format!("{:.1}", mb(reads_rss_kb)),
        "MB",
    )?;
    bench(o, "relay_read_requests", requests.to_string(), "reads")?;
    bench(o, "relay_events_read", read.to_string(), "events")?;
    bench(o, "relay_read_seconds", format!("{read_secs:.2}"), "s")?;
    bench(
        o,
        "relay_reads_per_second",
        format!("{:.0}", requests as f64 / read_secs),
        "reads/s",
    )?;
    bench(
        o,
        "relay_read_events_per_second",
        format!("{:.0}", read as f64 / read_secs),
        "events/s",
    )?;
    bench(
        o,
        "relay_db_mb_while_serving",
        format!("{:.1}", live_db as f64 / 1048576.0),
        "MB",
    )?;
    bench(
        o,
        "relay_db_mb",
        format!("{:.1}", final_db as f64 / 1048576.0),
        "MB",
    )?;

    let peak = mb(ingest_hwm_kb.max(reads_hwm_kb));
    writeln!(out)?;
    writeln!(
        out,
        "The relay stored {stored} events in {} spaces ({:.1} MB on disk) in {ingest_secs:.1} s \
         and served them all back in {read_secs:.1} s ({requests} signed reads). Its peak \
         RSS was {peak:.1} MB ({:.1} MB when idle, {:.1} MB after the reads): {} the \
         100 MB target.",
        opts.spaces,
        final_db as f64 / 1048576.0,
        mb(idle_kb),
        mb(reads_rss_kb),
        if peak < 100.0 { "under" } else { "OVER" },
    )?;
    out.flush()?;
    Ok(())
}
