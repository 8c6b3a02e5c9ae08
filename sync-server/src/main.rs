//! The `duet-relay` binary: one database file, one port.
//!
//! After binding it prints exactly one line to stdout, `duet-relay listening on
//! http://ADDR`, with the real bound address, and logs to stderr (`RUST_LOG`, default
//! `info`). It stops gracefully on SIGINT or SIGTERM. Every limit is a flag with an
//! environment variable (see `--help` and docs/self-hosting.md).

use std::io::{IsTerminal, Write};

use std::time::Duration;

use anyhow::Context;
use axum::http::HeaderName;
use clap::Parser;
use duet_relay::creation::{self, CreateTokens};
use duet_relay::{Config, Rate, db_file, fds};

mod signals;
use signals::{shutdown_signal, survive_file_size_limit};

/// Duet's relay: stores and forwards signed, encrypted events it cannot read.
#[derive(Debug, Parser)]
#[command(name = "duet-relay", version, about)]
struct Args {
    /// Address to listen on (use port 0 for any free port).
    #[arg(long, env = "DUET_RELAY_LISTEN", default_value = "127.0.0.1:8787")]
    listen: String,
    /// The database: a SQLite file (created if missing), or a PostgreSQL URL
    /// (postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE) for several relay instances.
    #[arg(
        long,
        env = "DUET_RELAY_DB",
        default_value = "duet-relay.db",
        hide_env_values = true,
        value_parser = non_empty_db
    )]
    db: String,
    /// Seconds a client has to send a request's headers (also the idle time allowed on a
    /// kept-alive connection); 0 = no limit.
    #[arg(long, env = "DUET_RELAY_HEADER_TIMEOUT_SECS", default_value_t = 10, value_parser = seconds)]
    header_timeout_secs: u64,
    /// Seconds a request may take, body upload included (then 408 `timeout`); 0 = no limit.
    #[arg(long, env = "DUET_RELAY_REQUEST_TIMEOUT_SECS", default_value_t = 60, value_parser = seconds)]
    request_timeout_secs: u64,
    /// Requests handled at once; more are refused with 503 `overloaded`. 0 = no limit.
    #[arg(long, env = "DUET_RELAY_MAX_IN_FLIGHT", default_value_t = 256)]
    max_in_flight: usize,
    /// Requests handled at once per client address; more are refused with 429
    /// `rate_limited`. `/healthz` is not counted. 0 = no limit.
    #[arg(long, env = "DUET_RELAY_MAX_IN_FLIGHT_PER_IP", default_value_t = 32)]
    max_in_flight_per_ip: usize,
    /// Open connections at once, live sockets included; more wait until one closes.
    /// Lowered at start to fit the open-file limit (0 = as many as it allows).
    #[arg(long, env = "DUET_RELAY_MAX_CONNECTIONS", default_value_t = 4096)]
    max_connections: usize,
    /// Open connections at once per client address (the TCP peer), live sockets
    /// included; more are closed at once. Not applied with --client-ip-header. 0 = no
    /// limit.
    #[arg(long, env = "DUET_RELAY_MAX_CONNECTIONS_PER_IP", default_value_t = 64)]
    max_connections_per_ip: usize,
    /// Live sockets open at once; more are refused with 429. Lowered at start to three
    /// quarters of the connections (0 = as many as that).
    #[arg(long, env = "DUET_RELAY_MAX_LIVE_SOCKETS", default_value_t = 3072)]
    max_live_sockets: usize,
    /// Live sockets open at once per client address; more are refused with 429. 0 = no
    /// limit.
    #[arg(long, env = "DUET_RELAY_MAX_LIVE_PER_IP", default_value_t = 32)]
    max_live_per_ip: usize,
    /// Live sockets open at once per space; more are refused with 429. 0 = no limit.
    #[arg(long, env = "DUET_RELAY_MAX_LIVE_PER_SPACE", default_value_t = 32)]
    max_live_per_space: usize,
    /// Bytes per second a push body must arrive at, after the grace; a slower body is
    /// cut off with 408 `timeout`. A client must take answers at this rate too, once
    /// the relay's writes wait on it, or its connection is closed. 0 = no minimum.
    #[arg(long, env = "DUET_RELAY_MIN_BODY_RATE", default_value_t = 4096)]
    min_body_rate: u64,
    /// Seconds a push body may fall behind the minimum rate.
    #[arg(long, env = "DUET_RELAY_BODY_GRACE_SECS", default_value_t = 5, value_parser = seconds)]
    body_grace_secs: u64,
    /// Requests per second per client address (token bucket); 0 = no limit.
    #[arg(long, env = "DUET_RELAY_RATE_PER_IP", default_value_t = 50.0, value_parser = parse_rate, allow_negative_numbers = true)]
    rate_per_ip: f64,
    /// Requests a client address may make at once after an idle period.
    #[arg(long, env = "DUET_RELAY_BURST_PER_IP", default_value_t = 100, value_parser = at_least_one)]
    burst_per_ip: u32,
    /// Requests per second per device (reads, and pushes by their authors); 0 = no limit.
    #[arg(long, env = "DUET_RELAY_RATE_PER_DEVICE", default_value_t = 20.0, value_parser = parse_rate, allow_negative_numbers = true)]
    rate_per_device: f64,
    /// Requests a device may make at once after an idle period.
    #[arg(long, env = "DUET_RELAY_BURST_PER_DEVICE", default_value_t = 40, value_parser = at_least_one)]
    burst_per_device: u32,
    /// Signatures per second per client address: every event of a push is counted
    /// before it is verified; 0 = no limit.
    #[arg(long, env = "DUET_RELAY_VERIFY_PER_IP", default_value_t = duet_relay::limits::DEFAULT_VERIFY_PER_IP.per_sec, value_parser = parse_rate, allow_negative_numbers = true)]
    verify_per_ip: f64,
    /// Signatures a client address may have verified at once after an idle period (a
    /// larger push still goes through, and the address waits out the excess).
    #[arg(long, env = "DUET_RELAY_VERIFY_BURST_PER_IP", default_value_t = duet_relay::limits::DEFAULT_VERIFY_PER_IP.burst, value_parser = at_least_one)]
    verify_burst_per_ip: u32,
    /// Take the client address for the per-address limit from this header (its last
    /// address), e.g. X-Forwarded-For. Only behind a proxy that sets it.
    #[arg(long, env = "DUET_RELAY_CLIENT_IP_HEADER", value_parser = parse_header_name)]
    client_ip_header: Option<HeaderName>,
    /// Events stored per space (not fork evidence); 0 = no limit.
    #[arg(long, env = "DUET_RELAY_SPACE_MAX_EVENTS", default_value_t = 1_000_000)]
    space_max_events: u64,
    /// Bytes of events stored per space (not fork evidence); 0 = no limit.
    #[arg(long, env = "DUET_RELAY_SPACE_MAX_BYTES", default_value_t = 1024 * 1024 * 1024)]
    space_max_bytes: u64,
    /// Space states kept in memory (about 4 KB for a couple's space, at most about
    /// 250 KB for a space at its limits of 128 devices and 512 invites per person); less recently
    /// used spaces are read again from the database when needed. 0 = no limit.
    #[arg(long, env = "DUET_RELAY_SPACE_CACHE", default_value_t = duet_relay::limits::DEFAULT_SPACE_CACHE)]
    space_cache: usize,
    /// Cap on the database file's size in bytes; a push that would grow it further gets
    /// 507 `storage_full`. 0 = no limit.
    #[arg(long, env = "DUET_RELAY_MAX_DB_BYTES", default_value_t = 0)]
    max_db_bytes: u64,
    /// Memory for pushes handled at once, in bytes (each counted at four times its
    /// body); a push that does not fit gets 503 `overloaded` at once. 0 = no limit.
    #[arg(long, env = "DUET_RELAY_MAX_PUSH_MEMORY", default_value_t = duet_relay::limits::DEFAULT_PUSH_MEMORY)]
    max_push_memory: u64,
    /// Let anyone who reaches the relay create spaces, without a creation token. Only
    /// for a relay that strangers cannot reach.
    /// (The variable takes true/false, 1/0, yes/no or on/off.)
    #[arg(long, env = "DUET_RELAY_OPEN_REGISTRATION",
          value_parser = clap::builder::BoolishValueParser::new())]
    open_registration: bool,
    /// A token that lets a couple create spaces (`duet init --relay URL --token TOKEN`);
    /// repeat the flag for several, or give them comma-separated in the variable.
    /// Without tokens or --open-registration, the relay makes one and keeps it in
    /// `<db>.create-token` (SQLite; PostgreSQL needs a token or the flag).
    #[arg(
        long = "create-token",
        value_name = "TOKEN",
        env = "DUET_RELAY_CREATE_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    create_tokens: Vec<String>,
    /// Spaces created per client address per day; more get 429 `too_many_spaces`.
    /// 0 = no limit.
    #[arg(long, env = "DUET_RELAY_MAX_CREATIONS_PER_IP", default_value_t = 16)]
    max_creations_per_ip: u64,
    /// Spaces created with one token, ever; more get 403 `token_exhausted`. 0 = no limit.
    #[arg(
        long,
        env = "DUET_RELAY_MAX_CREATIONS_PER_TOKEN",
        default_value_t = 256
    )]
    max_creations_per_token: u64,
}

/// A database named by nothing is a typo (an unset variable in a unit file): it made a
/// creation token file in the working directory before the database failed to open.
fn non_empty_db(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("the database is named by nothing: give a SQLite file (e.g. /var/lib/duet-relay/duet-relay.db) or a postgres:// URL".into());
    }
    Ok(s.to_string())
}

/// The slowest rate a limit takes: one request in about 17 minutes. Slower ones are
/// typos, and told clients to come back in billions of years (`Retry-After`).
const MIN_RATE: f64 = 0.001;

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        // 0 written as such: a rate too small for a float (1e-400) reads as 0, and would
        // turn the limit off.
        Ok(r) if r.is_finite() && (r >= MIN_RATE || (r == 0.0 && written_zero(s))) => Ok(r),
        _ => Err(format!(
            "`{s}` is not a rate: give requests per second as a number of at least {MIN_RATE} (e.g. 50 or 0.5); 0 turns the limit off"
        )),
    }
}

/// Whether `s` writes zero with zeros only (`0`, `0.0`, `+0`), not a number too small
/// to hold.
fn written_zero(s: &str) -> bool {
    s.trim()
        .trim_start_matches(['+', '-'])
        .chars()
        .all(|c| c == '0' || c == '.')
}

/// The longest time a time limit takes: a day. Longer ones are typos, and one near
/// 2^64 seconds overflowed the clock's arithmetic at the first connection, ending the
/// relay.
const MAX_SECS: u64 = 86_400;

fn seconds(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if n <= MAX_SECS => Ok(n),
        _ => Err(format!(
            "`{s}` is not a time limit: give whole seconds from 0 to {MAX_SECS} (a day)"
        )),
    }
}

/// A burst of at least one: a burst of 0 would let no request through once the bucket
/// is empty (a limit is turned off with its rate, 0).
fn at_least_one(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "`{s}` is not a burst: give a whole number of at least 1 (turn a limit off with its rate, 0)"
        )),
    }
}

fn parse_header_name(s: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(s.trim().as_bytes())
        .map_err(|_| format!("`{s}` is not a valid HTTP header name"))
}

/// Seconds to a timeout, 0 meaning none.
fn secs(n: u64) -> Option<Duration> {
    (n > 0).then(|| Duration::from_secs(n))
}

impl Args {
    fn config(&self) -> Config {
        Config {
            header_timeout: secs(self.header_timeout_secs),
            request_timeout: secs(self.request_timeout_secs),
            max_in_flight: self.max_in_flight,
            max_in_flight_per_ip: self.max_in_flight_per_ip,
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            max_live_sockets: self.max_live_sockets,
            max_live_per_ip: self.max_live_per_ip,
            max_live_per_space: self.max_live_per_space,
            min_body_rate: self.min_body_rate,
            body_grace: Duration::from_secs(self.body_grace_secs),
            rate_per_ip: Rate {
                per_sec: self.rate_per_ip,
                burst: self.burst_per_ip,
            },
            rate_per_device: Rate {
                per_sec: self.rate_per_device,
                burst: self.burst_per_device,
            },
            verify_per_ip: Rate {
                per_sec: self.verify_per_ip,
                burst: self.verify_burst_per_ip,
            },
            client_ip_header: self.client_ip_header.clone(),
            space_max_events: self.space_max_events,
            space_max_bytes: self.space_max_bytes,
            max_db_bytes: self.max_db_bytes,
            open_registration: self.open_registration,
            create_tokens: CreateTokens::new(self.create_tokens.iter().cloned()),
            max_creations_per_ip: self.max_creations_per_ip,
            max_creations_per_token: self.max_creations_per_token,
            space_cache: self.space_cache,
            max_push_memory: self.max_push_memory,
        }
    }
}

/// Raises the open-file limit and lowers the caps of `config` to fit it, saying what it
/// chose. A limit that cannot be read or raised is logged and worked with as it is.
fn fit_open_files(config: &mut Config) {
    let soft = match fds::raise() {
        Ok(l) => {
            if l.soft > l.was {
                tracing::info!(
                    was = l.was,
                    soft = l.soft,
                    hard = l.hard,
                    "open-file limit raised from {} to {} (hard limit {})",
                    l.was,
                    l.soft,
                    l.hard
                );
            } else {
                tracing::info!(
                    soft = l.soft,
                    hard = l.hard,
                    "open-file limit {} (hard limit {})",
                    l.soft,
                    l.hard
                );
            }
            l.soft
        }
        Err(fds::FdError::Raise { was, .. }) => {
            tracing::warn!(
                "cannot raise the open-file limit; sizing the caps from {was}: raise \
                 LimitNOFILE= (systemd) or `ulimit -n`"
            );
            was
        }
        Err(e) => {
            tracing::warn!("{e}; the caps are not sized from it");
            return;
        }
    };
    let sizing = fds::size(config, soft);
    for (name, was, now) in &sizing.lowered {
        let was = if *was == 0 {
            "no cap".to_string()
        } else {
            was.to_string()
        };
        // The connections fit the open-file limit; the live sockets and the connections
        // per address fit the connections (which may be the operator's own
        // --max-connections, not the limit); the live sockets per address and per space
        // fit the live sockets.
        match *name {
            "max_connections" => {
                tracing::info!("{name} lowered from {was} to {now} to fit the open-file limit");
            }
            "max_live_per_ip" | "max_live_per_space" => tracing::info!(
                "{name} lowered from {was} to {now} to fit max_live_sockets ({})",
                config.max_live_sockets
            ),
            _ => tracing::info!(
                "{name} lowered from {was} to {now} to fit max_connections ({})",
                config.max_connections
            ),
        }
    }
    tracing::info!(
        max_connections = config.max_connections,
        max_live_sockets = config.max_live_sockets,
        "sized from the open-file limit {soft}: {} connections (live sockets included), {} \
         live sockets, {} descriptors kept for the database and the log",
        config.max_connections,
        config.max_live_sockets,
        fds::kept(soft)
    );
}

/// The creation token kept in a file beside the database, and that file.
type KeptToken = (String, std::path::PathBuf);

/// The SQLite file claimed for this relay, then who may create spaces
/// ([`creation_tokens`]). Claimed first: a relay refused for another one on the file
/// (through a link, say) leaves no token file of its own beside it; refused for its token
/// file, it leaves no database it made.
fn claim_with_tokens(
    config: &mut Config,
    db: &duet_relay::store::Location,
    sqlite: Option<&std::path::Path>,
) -> anyhow::Result<(Option<db_file::Claimed>, Option<KeptToken>)> {
    let claimed = sqlite.map(db_file::claim).transpose()?;
    let kept_token = creation_tokens(config, db).inspect_err(|_| {
        if let (Some(path), Some(true)) = (sqlite, claimed.as_ref().map(|c| c.made)) {
            let _ = std::fs::remove_file(path);
        }
    })?;
    Ok((claimed, kept_token))
}

/// Who may create spaces, as the relay will run: the tokens given, or the token kept
/// next to a SQLite database (made on first start). Returns the token to tell the
/// operator about, when it comes from that file.
fn creation_tokens(
    config: &mut Config,
    db: &duet_relay::store::Location,
) -> anyhow::Result<Option<(String, std::path::PathBuf)>> {
    if config.open_registration || !config.create_tokens.is_empty() {
        return Ok(None);
    }
    match db {
        duet_relay::store::Location::Sqlite(path) => {
            let file = creation::token_file(path);
            // A database there without its token file (moved without it): the token made
            // now is new, and the one the couples were given no longer creates spaces.
            // One whose spaces were all created without a token (it ran with
            // `--open-registration`) had no token to lose.
            let lost = path.metadata().is_ok_and(|m| m.len() > 0)
                && !file.exists()
                && duet_relay::store::created_with_a_token(path).unwrap_or(true);
            let (token, made) = creation::load_or_make(&file)?;
            if made && lost {
                tracing::warn!(
                    file = %file.display(),
                    "made a new space creation token for a database that had none beside \
                     it: if the database was moved here, stop the relay and move its \
                     .create-token file beside it (the token couples were given no longer \
                     creates spaces; their spaces work as before)"
                );
            } else if made {
                tracing::info!(file = %file.display(), "made a space creation token");
            }
            config.create_tokens = CreateTokens::new([token.clone()]);
            Ok(Some((token, file)))
        }
        duet_relay::store::Location::Postgres(_) => anyhow::bail!(
            "with PostgreSQL the relay keeps no token file: give the couples' creation \
             tokens with --create-token TOKEN (DUET_RELAY_CREATE_TOKENS, comma-separated), \
             or run with --open-registration if strangers cannot reach this relay"
        ),
    }
}

/// What is checked before anything starts: the creation tokens given, and the clock
/// (reads are signed with times and invites expire: a clock that lost its time is said,
/// and before 1970 the time libraries panic); a flag the backend ignores is warned of.
fn preflight(args: &Args, sqlite: bool) -> anyhow::Result<()> {
    if !sqlite && args.max_db_bytes > 0 {
        tracing::warn!(
            "--max-db-bytes applies to SQLite only and is ignored on PostgreSQL: watch the \
             database's disk instead (a full disk makes pushes fail with 507 storage_full)"
        );
    }
    creation::check_given(&args.create_tokens).map_err(anyhow::Error::msg)?;
    duet_core::clock::check_system_clock().map_err(|e| {
        anyhow::anyhow!(
            "this machine's clock reads {}, so every signed read would be refused as too old; set the clock right (NTP), then start the relay again",
            e.0
        )
    })
}

async fn run(args: Args) -> anyhow::Result<()> {
    refuse_other_urls(&args.db)?;
    let db = duet_relay::store::Location::parse(&args.db);
    let sqlite = match &db {
        duet_relay::store::Location::Sqlite(path) => Some(path.clone()),
        duet_relay::store::Location::Postgres(_) => None,
    };
    preflight(&args, sqlite.is_some())?;
    if let Some(path) = &sqlite {
        db_file::check(path)?;
    }
    // Bound before anything is made beside the database: a port in use leaves no file.
    let listener = duet_relay::bind(&args.listen).await.map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                "the address is already in use: stop the other program or choose another --listen"
            }
            std::io::ErrorKind::PermissionDenied => {
                "permission denied: choose a port above 1023 with --listen"
            }
            _ => "check --listen (DUET_RELAY_LISTEN); it takes HOST:PORT, e.g. 127.0.0.1:8787",
        };
        anyhow::anyhow!("cannot listen on {}: {e}; {hint}", args.listen)
    })?;
    // Looked at before the relay makes a token file of its own.
    let orphan_token = sqlite
        .as_deref()
        .is_some_and(|p| !p.exists() && creation::token_file(p).exists());
    let shown = db.display();
    let mut config = args.config();
    let (claimed, kept_token) = claim_with_tokens(&mut config, &db, sqlite.as_deref())?;
    let made = claimed.as_ref().is_some_and(|c| c.made);
    let registration = (config.open_registration, config.create_tokens.len());
    fit_open_files(&mut config);
    survive_file_size_limit();
    let limits = config.clone();
    let state = tokio::task::spawn_blocking(move || duet_relay::open_state(&db, config))
        .await
        .context("the task opening the relay database failed")??;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let shutdown = shutdown_signal();
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "duet-relay listening on http://{addr}")
            .and_then(|()| out.flush())
            .context("cannot write to stdout")?;
    }
    tracing::info!(%addr, db = %shown, "relay started");
    if made {
        say_made(&shown, orphan_token);
    }
    if let Some(path) = sqlite {
        check_in_background(path);
    }
    tracing::info!(config = ?limits, "limits");
    match (registration, kept_token) {
        ((true, _), _) => tracing::warn!(
            "open registration: anyone who can reach this relay may create spaces and store \
             data; without --open-registration only couples with a creation token can"
        ),
        (_, Some((token, file))) => tracing::info!(
            "space creation needs a token; give it to the couples who use this relay: duet \
             init --name NAME --relay URL --token {token} (URL as they reach this relay, e.g. \
             http://{addr}; the token is kept in {})",
            file.display()
        ),
        ((false, n), None) => tracing::info!(
            "space creation needs one of the {n} creation tokens given (--create-token); \
             couples pass theirs once: duet init --name NAME --relay URL --token TOKEN"
        ),
    }
    duet_relay::serve_state(listener, state, shutdown).await?;
    tracing::info!("relay stopped");
    Ok(())
}

/// Refuses a `--db` that reads as a URL of another kind (`mysql://…`, `postgres:/…`):
/// taken as a SQLite path, it was said as a directory to create.
fn refuse_other_urls(db: &str) -> anyhow::Result<()> {
    let postgres = db.starts_with("postgres://") || db.starts_with("postgresql://");
    let scheme = db.split_once(':').map(|(s, _)| s).filter(|s| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    match scheme {
        Some(s) if !postgres && (db.contains("://") || s.starts_with("postgres")) => {
            anyhow::bail!(
                "--db starts with `{s}:`, which is not a database this relay takes: give a \
                 SQLite file path (e.g. /var/lib/duet-relay/duet-relay.db) or a PostgreSQL \
                 URL, postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
            )
        }
        _ => Ok(()),
    }
}

/// Says that the relay starts an empty database, and warns when that looks like a
/// mistake: the creation token file of a database is there, the database is not.
fn say_made(db: &str, orphan_token: bool) {
    if orphan_token {
        tracing::warn!(
            db,
            "started a new, empty database, but the creation token file of a database at \
             this path exists: if the database was moved or the path is mistyped, stop the \
             relay and give the right --db; the couples' spaces are not in this one (their \
             devices will say the relay lost its database)"
        );
    } else {
        tracing::info!(db, "started a new, empty database");
    }
}

/// Checks the SQLite file beside serving (SQLite finds damage only on the pages it
/// reads, so a damaged file would otherwise start without a word and fail requests
/// later) and logs what it found: an error with what to do, or that the file is sound.
fn check_in_background(path: std::path::PathBuf) {
    let spawned = std::thread::Builder::new()
        .name("database-check".into())
        .spawn(move || {
            let started = std::time::Instant::now();
            match duet_relay::store::sqlite::quick_check(&path) {
                Ok(problems) if problems.is_empty() => tracing::info!(
                    "database check: {} is sound ({:.1} s)",
                    path.display(),
                    started.elapsed().as_secs_f64()
                ),
                Ok(problems) => tracing::error!(
                    found = %problems.join("; "),
                    "{}",
                    duet_relay::store::DAMAGED
                ),
                Err(e) if e.is_damaged() => {
                    tracing::error!(found = %e, "{}", duet_relay::store::DAMAGED)
                }
                Err(e) => tracing::warn!("could not check the database {}: {e}", path.display()),
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("could not start the database check: {e}");
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // An unset RUST_LOG logs at info; one that does not parse is said, not silently
    // taken for info (an operator asking for debug logs would never learn why none came).
    let (filter, unread) = match std::env::var("RUST_LOG") {
        Err(_) => (tracing_subscriber::EnvFilter::new("info"), None),
        Ok(v) => match tracing_subscriber::EnvFilter::try_new(&v) {
            Ok(f) => (f, None),
            Err(e) => (tracing_subscriber::EnvFilter::new("info"), Some((v, e))),
        },
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if let Some((v, e)) = unread {
        tracing::warn!("RUST_LOG={v:?} does not read as a log filter ({e}); logging at info");
    }
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The message and its causes, never a backtrace (RUST_BACKTRACE set for another
        // program would print one under an operator's mistake).
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A time limit near 2^64 seconds was taken, and the first connection's deadline
    /// overflowed and ended the relay; a rate of 1e-300 told clients to come back in
    /// 2^64 seconds. Both are refused at start, with the range said.
    #[test]
    fn time_limits_past_a_day_and_rates_near_zero_are_refused_at_start() {
        for flag in [
            "--body-grace-secs",
            "--header-timeout-secs",
            "--request-timeout-secs",
        ] {
            let err =
                Args::try_parse_from(["duet-relay", flag, "18446744073709551615"]).expect_err(flag);
            assert!(err.to_string().contains("from 0 to 86400"), "{err}");
            assert!(Args::try_parse_from(["duet-relay", flag, "86400"]).is_ok());
        }
        for flag in ["--rate-per-ip", "--rate-per-device", "--verify-per-ip"] {
            let err = Args::try_parse_from(["duet-relay", "--db", " "]).expect_err("--db");
            assert!(err.to_string().contains("named by nothing"), "{err}");
            for typo in ["1e-300", "-1", "1e-400"] {
                let err = Args::try_parse_from(["duet-relay", flag, typo]).expect_err(flag);
                assert!(err.to_string().contains("at least 0.001"), "{err}");
            }
            assert!(Args::try_parse_from(["duet-relay", flag, "0"]).is_ok());
        }
    }

    #[test]
    fn a_burst_of_zero_is_refused_at_start() {
        for flag in [
            "--burst-per-ip",
            "--burst-per-device",
            "--verify-burst-per-ip",
        ] {
            let err = Args::try_parse_from(["duet-relay", flag, "0"]).expect_err(flag);
            assert!(err.to_string().contains("at least 1"), "{err}");
            assert!(Args::try_parse_from(["duet-relay", flag, "1"]).is_ok());
        }
    }

    #[test]
    fn the_flags_default_to_the_library_defaults_and_zero_turns_limits_off() {
        let args = Args::try_parse_from(["duet-relay"]).expect("no flags parse");
        assert_eq!(args.config(), Config::default());
        let args = Args::try_parse_from([
            "duet-relay",
            "--header-timeout-secs",
            "0",
            "--request-timeout-secs",
            "0",
            "--rate-per-ip",
            "0",
            "--client-ip-header",
            "X-Forwarded-For",
        ])
        .expect("flags parse");
        let c = args.config();
        assert_eq!(c.header_timeout, None);
        assert_eq!(c.request_timeout, None);
        assert_eq!(c.rate_per_ip.per_sec, 0.0);
        assert_eq!(
            c.client_ip_header,
            Some(HeaderName::from_static("x-forwarded-for"))
        );
        assert!(Args::try_parse_from(["duet-relay", "--client-ip-header", "bad header"]).is_err());
        for bad in ["-1", "NaN", "inf", "fast"] {
            assert!(
                Args::try_parse_from(["duet-relay", "--rate-per-device", bad]).is_err(),
                "{bad}"
            );
        }
        let args = Args::try_parse_from(["duet-relay", "--rate-per-device", "0.5"]).expect("0.5");
        assert_eq!(args.config().rate_per_device.per_sec, 0.5);
        let args = Args::try_parse_from([
            "duet-relay",
            "--max-live-per-space",
            "3",
            "--max-live-per-ip",
            "5",
            "--max-connections-per-ip",
            "7",
            "--max-in-flight-per-ip",
            "0",
            "--min-body-rate",
            "0",
            "--body-grace-secs",
            "2",
        ])
        .expect("the caps parse");
        let c = args.config();
        assert!(!c.open_registration && c.create_tokens.is_empty());
        let args = Args::try_parse_from([
            "duet-relay",
            "--create-token",
            "first-secret",
            "--create-token",
            "second-secret",
            "--open-registration",
            "--max-creations-per-ip",
            "3",
            "--max-creations-per-token",
            "0",
        ])
        .expect("the creation flags parse");
        let t = args.config();
        assert_eq!(t.create_tokens.len(), 2);
        assert!(t.create_tokens.check("second-secret").is_some());
        assert!(t.open_registration);
        assert_eq!((t.max_creations_per_ip, t.max_creations_per_token), (3, 0));
        // The configuration is logged at start: the tokens must not be in it.
        assert!(!format!("{t:?}").contains("secret"));
        assert_eq!(
            (
                c.max_live_per_space,
                c.max_live_per_ip,
                c.max_connections_per_ip,
                c.max_in_flight_per_ip,
                c.min_body_rate,
                c.body_grace
            ),
            (3, 5, 7, 0, 0, Duration::from_secs(2))
        );
    }
}
