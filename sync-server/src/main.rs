//! The `duet-relay` binary: one database file, one port.
//!
//! After binding it prints exactly one line to stdout, `duet-relay listening on
//! http://ADDR`, with the real bound address, and logs to stderr (`RUST_LOG`, default
//! `info`). It stops gracefully on SIGINT or SIGTERM.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// Duet's relay: stores and forwards signed, encrypted events it cannot read.
#[derive(Debug, Parser)]
#[command(name = "duet-relay", version, about)]
struct Args {
    /// Address to listen on (use port 0 for any free port).
    #[arg(long, env = "DUET_RELAY_LISTEN", default_value = "127.0.0.1:8787")]
    listen: String,
    /// The SQLite database file (created if missing).
    #[arg(long, env = "DUET_RELAY_DB", default_value = "duet-relay.db")]
    db: PathBuf,
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
    let db = args.db.clone();
    let state = tokio::task::spawn_blocking(move || duet_relay::open_state(&db))
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
    tracing::info!(%addr, db = %args.db.display(), "relay started");
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
