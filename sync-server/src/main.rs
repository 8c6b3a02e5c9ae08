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
use duet_relay::{Config, Rate};

/// Duet's relay: stores and forwards signed, encrypted events it cannot read.
#[derive(Debug, Parser)]
#[command(name = "duet-relay", version, about)]
struct Args {
    /// Address to listen on (use port 0 for any free port).
    #[arg(long, env = "DUET_RELAY_LISTEN", default_value = "127.0.0.1:8787")]
    listen: String,
    /// The database: a SQLite file (created if missing), or a PostgreSQL URL
    /// (postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE) for several relay instances.
    #[arg(long, env = "DUET_RELAY_DB", default_value = "duet-relay.db")]
    db: String,
    /// Seconds a client has to send a request's headers (also the idle time allowed on a
    /// kept-alive connection); 0 = no limit.
    #[arg(long, env = "DUET_RELAY_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    header_timeout_secs: u64,
    /// Seconds a request may take, body upload included (then 408 `timeout`); 0 = no limit.
    #[arg(long, env = "DUET_RELAY_REQUEST_TIMEOUT_SECS", default_value_t = 60)]
    request_timeout_secs: u64,
    /// Requests handled at once; more are refused with 503 `overloaded`. 0 = no limit.
    #[arg(long, env = "DUET_RELAY_MAX_IN_FLIGHT", default_value_t = 256)]
    max_in_flight: usize,
    /// Open connections at once; more wait until one closes. 0 = no limit.
    #[arg(long, env = "DUET_RELAY_MAX_CONNECTIONS", default_value_t = 512)]
    max_connections: usize,
    /// Requests per second per client address (token bucket); 0 = no limit.
    #[arg(long, env = "DUET_RELAY_RATE_PER_IP", default_value_t = 50.0, value_parser = parse_rate)]
    rate_per_ip: f64,
    /// Requests a client address may make at once after an idle period.
    #[arg(long, env = "DUET_RELAY_BURST_PER_IP", default_value_t = 100)]
    burst_per_ip: u32,
    /// Requests per second per device (reads, and pushes by their authors); 0 = no limit.
    #[arg(long, env = "DUET_RELAY_RATE_PER_DEVICE", default_value_t = 20.0, value_parser = parse_rate)]
    rate_per_device: f64,
    /// Requests a device may make at once after an idle period.
    #[arg(long, env = "DUET_RELAY_BURST_PER_DEVICE", default_value_t = 40)]
    burst_per_device: u32,
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
    /// Cap on the database file's size in bytes; a push that would grow it further gets
    /// 507 `storage_full`. 0 = no limit.
    #[arg(long, env = "DUET_RELAY_MAX_DB_BYTES", default_value_t = 0)]
    max_db_bytes: u64,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 0.0 => Ok(r),
        _ => Err(format!(
            "`{s}` is not a rate: give requests per second as a number >= 0 (e.g. 50 or 0.5); 0 turns the limit off"
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
            max_connections: self.max_connections,
            rate_per_ip: Rate {
                per_sec: self.rate_per_ip,
                burst: self.burst_per_ip,
            },
            rate_per_device: Rate {
                per_sec: self.rate_per_device,
                burst: self.burst_per_device,
            },
            client_ip_header: self.client_ip_header.clone(),
            space_max_events: self.space_max_events,
            space_max_bytes: self.space_max_bytes,
            max_db_bytes: self.max_db_bytes,
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let db = duet_relay::store::Location::parse(&args.db);
    let shown = db.display();
    let config = args.config();
    let state = tokio::task::spawn_blocking(move || duet_relay::open_state_at(&db, config))
        .await
        .context("the task opening the relay database failed")??;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| {
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
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "duet-relay listening on http://{addr}")
            .and_then(|()| out.flush())
            .context("cannot write to stdout")?;
    }
    tracing::info!(%addr, db = %shown, "relay started");
    tracing::info!(config = ?args.config(), "limits");
    duet_relay::serve_state(listener, state, shutdown_signal()).await?;
    tracing::info!("relay stopped");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    run(Args::parse()).await
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
