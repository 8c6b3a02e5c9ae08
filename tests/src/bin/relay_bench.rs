//! Relay push throughput: how many small signed `changes` events per second the relay
//! stores durably when C clients push at once, one event per request, and how many
//! requests share each commit (group commit). It prints figures and never asserts them.
//!
//!     cargo run --release -p duet-tests --bin relay_bench
//!     cargo run --release -p duet-tests --bin relay_bench -- --events 6400 \
//!         --spaces 8 --clients 1,4,16,64 --payload 100
//!
//! The same run first measures two limits of this machine, so the relay's figure can be
//! read as a ratio of them: one fsync'd SQLite transaction per event (the naive relay's
//! ceiling, through the relay's own `Store::insert_events`), and ed25519 `verify_strict`
//! per second on one core (the relay verifies every event it stores), and ed25519 batch
//! verification on one core (the ceiling for batched pushes).
//!
//! For each C a fresh relay (temporary database, rate limits and quotas off) is served
//! in process on 127.0.0.1:0 by `serve_state` on its own two-thread runtime. K spaces are
//! created; client i writes to space i mod K with its own device (another device of the
//! owner's person, joined by a device code's invite), over
//! one kept-alive HTTP/1.1 connection with a minimal client on `tokio::net::TcpStream`.
//! Events are signed before the clock starts.
//!
//! A second table pushes the same events in batches (`--batch B` events per request,
//! default 100) from 1 and 4 clients: the ceiling then is the relay's verification and
//! the disk, not the round trip per event. On PostgreSQL the 4 batched clients then push
//! to two relay instances over the same database (two clients each), to measure what a
//! second instance adds. Each batched run also prints how many of the machine's cores
//! were busy on average while it ran (`..._cores_busy`, every process's time from
//! `/proc/stat`): a second instance can add only what the first left idle.
//!
//! `--pin R,C` (the harness passes it where `taskset` exists and the machine has two
//! cores) runs every relay thread on core R and the clients on core C, so that the
//! single-event figures are the relay's alone, beside one core's `verify_strict`; it
//! measures only the single-event table.
//!
//! `--log FILTER` (e.g. `info`, the relay binary's default) makes the relay log to stderr
//! as its binary does; without it the relay logs nothing, and the figures leave out what
//! its logs cost.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use duet_core::crypto::SpaceKey;
use duet_core::event::{Event, MembershipOp, SpaceId};
use duet_core::identity::keypair_from_seed;
use duet_relay::AppState;
use duet_relay::store::postgres::PgStore;
use duet_relay::store::{Location, Store};
use duet_tests::relay_client::{Conn, Dev, next_flag, unlimited_config};
use ed25519_dalek::{Signer, SigningKey};

/// Command-line options.
#[derive(Clone)]
struct Options {
    /// Events pushed per value of C (split evenly between the clients).
    events: usize,
    /// Spaces on the relay.
    spaces: usize,
    /// Values of C.
    clients: Vec<usize>,
    /// Plaintext bytes per event.
    payload: usize,
    /// Events per request in the batched runs.
    batch: usize,
    /// Run on PostgreSQL (a fresh schema of this server per relay) instead of SQLite.
    postgres: Option<String>,
    /// Pushes timed for the live-push latency.
    live: usize,
    /// Cores for the relay and for the clients (`--pin R,C`).
    pin: Option<(usize, usize)>,
    /// Log as the relay binary does, with this filter (`--log info`), to stderr.
    log: Option<String>,
}

/// The options, as `--help` and errors name them.
const OPTIONS: &str = "--events N --spaces K --clients 1,4,16,64 --payload BYTES --batch B \
                       --live N --postgres URL --pin R,C --log FILTER";

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        events: 6400,
        spaces: 8,
        clients: vec![1, 4, 16, 64],
        payload: 100,
        batch: 100,
        postgres: None,
        live: 200,
        pin: None,
        log: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some((flag, value)) = next_flag(&mut args, OPTIONS)? {
        let number = |v: &str| duet_tests::relay_client::number(&flag, v);
        match flag.as_str() {
            "--events" => o.events = number(&value)?,
            "--spaces" => o.spaces = number(&value)?.max(1),
            "--payload" => o.payload = number(&value)?,
            "--batch" => o.batch = number(&value)?.max(1),
            "--live" => o.live = number(&value)?.max(1),
            "--postgres" => o.postgres = Some(value),
            "--log" => o.log = Some(value),
            "--pin" => {
                let (r, c) = value
                    .split_once(',')
                    .context("--pin: give the relay's core and the clients', e.g. 0,1")?;
                o.pin = Some((number(r)?, number(c)?));
            }
            "--clients" => {
                o.clients = value
                    .split(',')
                    .map(number)
                    .collect::<anyhow::Result<_>>()?;
            }
            other => bail!("unknown option {other}; options: {OPTIONS}"),
        }
    }
    if o.clients.contains(&0) {
        bail!("--clients: every value must be at least 1");
    }
    Ok(o)
}

/// One durable transaction per event, through the relay's own store (SQLite with
/// `synchronous=FULL`, or PostgreSQL with its default `synchronous_commit`).
fn fsync_baseline(n: usize, postgres: Option<&str>) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let space = SpaceId::generate();
    let key = SpaceKey::generate();
    let mut dev = Dev::new("baseline");
    let events: Vec<Event> = (0..n)
        .map(|i| dev.changes(space, &key, format!("{i:0>100}").as_bytes()))
        .collect();
    let start;
    match postgres {
        None => {
            let mut store = Store::open(&dir.path().join("baseline.db"))?;
            start = Instant::now();
            for ev in &events {
                store.insert_events(&space, &[ev], 0)?;
            }
        }
        Some(base) => {
            let url = fresh_schema(base)?;
            let mut store = PgStore::open(&url)?;
            start = Instant::now();
            for ev in &events {
                store.insert_events(&space, &[ev], 0)?;
            }
        }
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// A fresh schema on the PostgreSQL server at `base`, as a URL.
fn fresh_schema(base: &str) -> anyhow::Result<String> {
    let schema = format!("bench_{}", hex::encode(duet_core::ids::random_bytes::<6>()));
    Ok(duet_relay::store::postgres::create_schema(base, &schema)?)
}

/// Where each relay of the run keeps its data: a fresh SQLite file, or a fresh schema.
fn fresh_location(opts: &Options, dir: &tempfile::TempDir) -> anyhow::Result<Location> {
    Ok(match &opts.postgres {
        None => Location::Sqlite(dir.path().join("relay.db")),
        Some(base) => Location::Postgres(fresh_schema(base)?),
    })
}

/// ed25519 `verify_strict` per second on this thread, and `Event::decode` (which also
/// parses and hashes) per second.
fn verify_baseline(n: usize, payload: usize) -> anyhow::Result<(f64, f64)> {
    let sk = SigningKey::from_bytes(&duet_core::ids::random_bytes::<32>());
    let vk = sk.verifying_key();
    let msg = vec![7u8; 106 + 40 + payload];
    let sig = sk.sign(&msg);
    let start = Instant::now();
    for _ in 0..n {
        vk.verify_strict(std::hint::black_box(&msg), &sig)
            .context("the signature verifies")?;
    }
    let verify = n as f64 / start.elapsed().as_secs_f64();

    let mut dev = Dev::new("decode");
    let ev = dev.changes(
        SpaceId::generate(),
        &SpaceKey::generate(),
        &vec![1; payload],
    );
    let bytes = ev.bytes().to_vec();
    let start = Instant::now();
    for _ in 0..n {
        Event::decode(std::hint::black_box(bytes.clone())).context("the event decodes")?;
    }
    let decode = n as f64 / start.elapsed().as_secs_f64();
    Ok((verify, decode))
}

/// ed25519 batch verification (`verify_batch`, 100 signatures by 100 keys per call) per
/// signature per second on this thread: the ceiling for batched pushes. The
/// relay does not use it (it is not strict, see docs/benchmarks.md).
fn batch_verify_baseline(n: usize, payload: usize) -> anyhow::Result<f64> {
    const BATCH: usize = 100;
    let keys: Vec<SigningKey> = (0..BATCH)
        .map(|_| SigningKey::from_bytes(&duet_core::ids::random_bytes::<32>()))
        .collect();
    let msgs: Vec<Vec<u8>> = (0..BATCH)
        .map(|i| vec![i as u8; 106 + 40 + payload])
        .collect();
    let sigs: Vec<_> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
    let vks: Vec<_> = keys.iter().map(|k| k.verifying_key()).collect();
    let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    let rounds = n.div_ceil(BATCH);
    let start = Instant::now();
    for _ in 0..rounds {
        ed25519_dalek::verify_batch(std::hint::black_box(&refs), &sigs, &vks)
            .context("the batch verifies")?;
    }
    Ok((rounds * BATCH) as f64 / start.elapsed().as_secs_f64())
}

/// What one run with C clients measured.
struct Run {
    clients: usize,
    events: usize,
    requests: usize,
    seconds: f64,
    commits: u64,
    writer_requests: u64,
    largest_group: u64,
    p50: Duration,
    p99: Duration,
    /// How many of the machine's cores were busy on average while it ran (every
    /// process's time: relays, PostgreSQL, clients), where `/proc/stat` tells.
    cores_busy: Option<f64>,
}

/// The machine's busy and total CPU time so far, in clock ticks summed over its cores
/// (`/proc/stat`'s first line; idle and I/O wait are not busy), with its core count.
fn machine_cpu() -> Option<(u64, u64, usize)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let mut lines = stat.lines();
    let ticks: Vec<u64> = lines
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4)?;
    let cores = lines.filter(|l| l.starts_with("cpu")).count();
    Some((total - idle, total, cores))
}

/// Cores busy on average between two [`machine_cpu`] readings.
fn cores_busy(before: Option<(u64, u64, usize)>, after: Option<(u64, u64, usize)>) -> Option<f64> {
    let ((b0, t0, cores), (b1, t1, _)) = (before?, after?);
    (t1 > t0).then(|| (b1 - b0) as f64 / (t1 - t0) as f64 * cores as f64)
}

/// A relay on its own runtime and thread, serving until dropped.
struct Server {
    addr: SocketAddr,
    state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// `instances` relays over one fresh database, their threads on the relay's core
    /// when pinned.
    fn start(opts: &Options, instances: usize) -> anyhow::Result<Vec<Server>> {
        let dir = tempfile::tempdir()?;
        let location = fresh_location(opts, &dir)?;
        let start = move || -> anyhow::Result<Vec<Server>> {
            if let Some((relay, _)) = opts.pin {
                // The relay's threads (runtime, writer, blocking pool, database
                // connections) are all started from this one, and inherit its core.
                pin_this_thread(relay)?;
            }
            let mut dirs = vec![dir];
            for _ in 1..instances {
                dirs.push(tempfile::tempdir()?);
            }
            dirs.into_iter()
                .map(|d| Server::start_at(&location, d))
                .collect()
        };
        std::thread::scope(|s| match s.spawn(start).join() {
            Ok(r) => r,
            Err(_) => bail!("the thread starting the relays panicked"),
        })
    }

    /// A relay over `location` (another `Server` may share it: a second instance).
    fn start_at(location: &Location, dir: tempfile::TempDir) -> anyhow::Result<Server> {
        let state = duet_relay::open_state(location, unlimited_config())?;
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        // As many workers as the relay's cores, as the relay binary (`#[tokio::main]`)
        // starts: one when pinned (this runs on the pinned thread), else every core.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cores)
            .enable_all()
            .build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = state.clone();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("relay_bench: cannot use the socket: {e}");
                        return;
                    }
                };
                let shutdown = async move {
                    let _ = stopped.await;
                };
                if let Err(e) = duet_relay::serve_state(listener, serving, shutdown).await {
                    eprintln!("relay_bench: the relay stopped: {e:#}");
                }
            });
        });
        Ok(Server {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs this thread, and the threads it starts from now on, on `core` alone (`taskset`).
fn pin_this_thread(core: usize) -> anyhow::Result<()> {
    let me = std::fs::read_link("/proc/thread-self").context("reading /proc/thread-self")?;
    let tid = me
        .file_name()
        .and_then(|n| n.to_str())
        .context("a thread id in /proc/thread-self")?
        .to_string();
    let out = std::process::Command::new("taskset")
        .args(["-p", "-c", &core.to_string(), &tid])
        .output()
        .context("running taskset")?;
    if !out.status.success() {
        bail!(
            "taskset could not pin a thread to core {core}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Creates the spaces and the clients' devices, then times C clients pushing (client i
/// to relay instance i mod `instances`).
async fn run(
    opts: &Options,
    clients: usize,
    batch: usize,
    instances: usize,
) -> anyhow::Result<Run> {
    let servers = {
        let location_opts = opts.clone();
        tokio::task::spawn_blocking(move || Server::start(&location_opts, instances)).await??
    };
    let stats = || {
        servers.iter().fold((0, 0, 0), |(c, r, l), s| {
            let w = s.state.writer_stats();
            (c + w.commits, r + w.requests, l.max(w.largest_group))
        })
    };
    let mut setup = Conn::open(servers[0].addr).await?;
    let mut spaces = Vec::new();
    for _ in 0..opts.spaces {
        let space = SpaceId::generate();
        let mut owner = Dev::new("owner");
        let g = owner.genesis(space, false);
        setup.push(&space, &[&g]).await?;
        spaces.push((space, SpaceKey::generate(), owner));
    }
    let per_client = (opts.events / clients).max(1);
    let mut work = Vec::new();
    for i in 0..clients {
        let (space, key, owner) = &mut spaces[i % opts.spaces];
        let seed = duet_core::ids::random_bytes::<32>();
        let (_, invite_key) = keypair_from_seed(seed);
        let expires_at = duet_core::ids::now_ms() + 3_600_000;
        // A shared space holds two persons: every client is another device of the
        // owner's person, admitted with a device code's invite.
        let inv = owner.membership(
            *space,
            &MembershipOp::Invite {
                invite_key,
                expires_at,
                person: Some(owner.person()),
            },
        );
        let mut dev = owner.sibling(&format!("client {i}"));
        let join = dev.join(*space, seed);
        setup.push(space, &[&inv, &join]).await?;
        let payload = vec![b'x'; opts.payload];
        let events: Vec<Event> = (0..per_client)
            .map(|_| dev.changes(*space, key, &payload))
            .collect();
        work.push((*space, events));
    }
    drop(setup);
    let before = stats();

    let cpu_before = machine_cpu();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, (space, events)) in work.into_iter().enumerate() {
        let addr = servers[i % servers.len()].addr;
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await?;
            let mut latencies = Vec::with_capacity(events.len());
            for chunk in events.chunks(batch) {
                let refs: Vec<&Event> = chunk.iter().collect();
                let t = Instant::now();
                conn.push(&space, &refs).await?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let seconds = start.elapsed().as_secs_f64();
    let cores_busy = cores_busy(cpu_before, machine_cpu());
    let after = stats();
    latencies.sort_unstable();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(i).copied().unwrap_or_default()
    };
    Ok(Run {
        clients,
        events: per_client * clients,
        requests: latencies.len(),
        seconds,
        commits: after.0 - before.0,
        writer_requests: after.1 - before.1,
        largest_group: after.2,
        p50: at(0.5),
        p99: at(0.99),
        cores_busy,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> anyhow::Result<()> {
    let opts = options()?;
    if let Some(filter) = &opts.log {
        // As the relay binary logs (`sync-server/src/main.rs`), to this run's stderr.
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Some((relay, clients)) = opts.pin {
        // Before anything else starts: every client thread inherits this core.
        pin_this_thread(clients)?;
        println!(
            "pinned: the relay on core {relay}, the clients (and the baselines) on core {clients}"
        );
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "relay push throughput: {} cores, {} spaces, {} events per run, {} B plaintext \
         per event, one event per request",
        cores, opts.spaces, opts.events, opts.payload
    )?;

    let backend = if opts.postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    writeln!(out, "backend: {backend}")?;
    let fsync = fsync_baseline(2000, opts.postgres.as_deref())?;
    let (verify, decode) = verify_baseline(20_000, opts.payload)?;
    let batch_verify = batch_verify_baseline(20_000, opts.payload)?;
    writeln!(out)?;
    writeln!(out, "machine baselines (same run):")?;
    writeln!(
        out,
        "  {backend}, one durable transaction per event:                    {fsync:>8.0} events/s"
    )?;
    writeln!(
        out,
        "  ed25519 verify_strict, one core:                                 {verify:>8.0} /s"
    )?;
    writeln!(
        out,
        "  ed25519 batch verification (100 per batch), one core:            {batch_verify:>8.0} /s"
    )?;
    writeln!(
        out,
        "  Event::decode (verify_strict + parse + SHA-256), one core:       {decode:>8.0} /s"
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "|   C | requests | seconds | events/s | requests/s | commits | requests/commit | largest group | p50 ms | p99 ms | x fsync baseline | / verify on 1 core |"
    )?;
    writeln!(
        out,
        "| --: | -------: | ------: | -------: | ---------: | ------: | --------------: | ------------: | -----: | -----: | ---------------: | -----------------: |"
    )?;
    out.flush()?;

    let mut bench = Vec::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for &c in &opts.clients {
        let r = runtime.block_on(run(&opts, c, 1, 1))?;
        // One event per request: events/s and requests/s are the same figure.
        let rate = r.requests as f64 / r.seconds;
        let per_commit = r.writer_requests as f64 / r.commits.max(1) as f64;
        writeln!(
            out,
            "| {:>3} | {:>8} | {:>7.2} | {:>8.0} | {:>10.0} | {:>7} | {:>15.1} | {:>13} | {:>6.2} | {:>6.2} | {:>15.1}x | {:>17.0}% |",
            r.clients,
            r.requests,
            r.seconds,
            rate,
            rate,
            r.commits,
            per_commit,
            r.largest_group,
            ms(r.p50),
            ms(r.p99),
            rate / fsync,
            100.0 * rate / verify,
        )?;
        bench.push(format!(
            "bench: relay_ingest_c{} {rate:.0} events/s",
            r.clients
        ));
        out.flush()?;
    }

    if opts.pin.is_none() {
        batched(&opts, &runtime, verify, &mut out, &mut bench)?;
        live(&opts, &mut out, &mut bench)?;
    }
    bench.push(format!("bench: verify_strict_one_core {verify:.0} /s"));
    bench.push(format!("bench: batch_verify_one_core {batch_verify:.0} /s"));
    bench.push(format!("bench: event_decode_one_core {decode:.0} /s"));
    bench.push(format!(
        "bench: fsync_per_event_baseline {fsync:.0} events/s"
    ));
    writeln!(out)?;
    for line in bench {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The live-push latency, printed and added to `bench`.
fn live(
    opts: &Options,
    out: &mut impl std::io::Write,
    bench: &mut Vec<String>,
) -> anyhow::Result<()> {
    let live = live_latency(opts)?;
    writeln!(out)?;
    writeln!(
        out,
        "live push ({}, {} pushes one after another): push sent -> the other client's live \
         socket hears of it: p50 {:.2} ms, p99 {:.2} ms",
        if opts.postgres.is_some() {
            "two relay instances on one database: pushed to one, heard on the other"
        } else {
            "one relay"
        },
        opts.live,
        ms(live.0),
        ms(live.1)
    )?;
    bench.push(format!("bench: live_push_p50 {:.3} ms", ms(live.0)));
    bench.push(format!("bench: live_push_p99 {:.3} ms", ms(live.1)));
    Ok(())
}

/// The batched table (1 and 4 clients; on PostgreSQL also 4 clients on two instances),
/// printed and added to `bench`.
fn batched(
    opts: &Options,
    runtime: &tokio::runtime::Runtime,
    verify: f64,
    out: &mut impl std::io::Write,
    bench: &mut Vec<String>,
) -> anyhow::Result<()> {
    writeln!(out)?;
    writeln!(out, "batched pushes, {} events per request:", opts.batch)?;
    writeln!(out)?;
    writeln!(
        out,
        "|   C | events | requests | seconds | events/s | commits | p50 ms | p99 ms | / verify on 1 core |"
    )?;
    writeln!(
        out,
        "| --: | -----: | -------: | ------: | -------: | ------: | -----: | -----: | -----------------: |"
    )?;
    let mut runs = vec![(1, 1), (4, 1)];
    if opts.postgres.is_some() {
        runs.push((4, 2));
    }
    for (c, instances) in runs {
        let r = runtime.block_on(run(opts, c, opts.batch, instances))?;
        let rate = r.events as f64 / r.seconds;
        writeln!(
            out,
            "| {:>3}{} | {:>6} | {:>8} | {:>7.2} | {:>8.0} | {:>7} | {:>6.2} | {:>6.2} | {:>17.0}% |",
            r.clients,
            if instances > 1 { " on 2 instances" } else { "" },
            r.events,
            r.requests,
            r.seconds,
            rate,
            r.commits,
            ms(r.p50),
            ms(r.p99),
            100.0 * rate / verify,
        )?;
        let name = format!(
            "relay_batched_ingest_c{}{}",
            r.clients,
            if instances > 1 { "_two_instances" } else { "" },
        );
        bench.push(format!("bench: {name} {rate:.0} events/s"));
        // Whether the machine had cores to spare: a second instance can add only what
        // the first left idle.
        if let Some(busy) = r.cores_busy {
            bench.push(format!("bench: {name}_cores_busy {busy:.2} cores"));
        }
        out.flush()?;
    }
    Ok(())
}

/// Live-push latency: a member's live socket is open on one relay (with PostgreSQL, a
/// second instance over the same database); `opts.live` events are pushed one after
/// another to the first, and each is timed from the moment its push is sent to the
/// moment the socket says the space's cursor reached it. Returns (p50, p99).
fn live_latency(opts: &Options) -> anyhow::Result<(Duration, Duration)> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let dir = tempfile::tempdir()?;
    let location = fresh_location(opts, &dir)?;
    let pusher = Server::start_at(&location, tempfile::tempdir()?)?;
    let listener = if opts.postgres.is_some() {
        Some(Server::start_at(&location, tempfile::tempdir()?)?)
    } else {
        None
    };
    let hear_at = listener.as_ref().map_or(pusher.addr, |l| l.addr);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut latencies = runtime.block_on(async {
        let space = SpaceId::generate();
        let key = SpaceKey::generate();
        let mut owner = Dev::new("owner");
        let mut conn = Conn::open(pusher.addr).await?;
        conn.push(&space, &[owner.genesis(space, false)]).await?;

        let path = duet_core::protocol::live_path(&space);
        let auth = duet_core::protocol::ReadAuth::sign(&owner.id, "GET", &path, "");
        let mut req = format!("ws://{hear_at}{path}").into_client_request()?;
        for (name, value) in auth.headers() {
            req.headers_mut().insert(name, value.parse()?);
        }
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
        let cursor_of = |m: Message| -> Option<u64> {
            let text = m.into_text().ok()?;
            serde_json::from_str::<duet_core::protocol::LiveMessage>(text.as_str())
                .ok()
                .map(|m| m.cursor)
        };
        // The first message is the cursor when the socket opened.
        let mut heard = match ws.next().await {
            Some(m) => cursor_of(m?).unwrap_or(0),
            None => bail!("the live socket closed at once"),
        };
        let payload = vec![b'x'; opts.payload];
        let mut latencies = Vec::with_capacity(opts.live);
        for _ in 0..opts.live {
            let ev = owner.changes(space, &key, &payload);
            let t = Instant::now();
            conn.push(&space, &[&ev]).await?;
            let target = heard + 1;
            while heard < target {
                let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
                    .await
                    .map_err(|_| anyhow::anyhow!("the live socket said nothing for 10 s"))?;
                match m {
                    Some(m) => {
                        if let Some(c) = cursor_of(m?) {
                            heard = heard.max(c);
                        }
                    }
                    None => bail!("the live socket closed"),
                }
            }
            latencies.push(t.elapsed());
        }
        anyhow::Ok(latencies)
    })?;
    drop(listener);
    drop(pusher);
    latencies.sort_unstable();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(i).copied().unwrap_or_default()
    };
    Ok((at(0.5), at(0.99)))
}
