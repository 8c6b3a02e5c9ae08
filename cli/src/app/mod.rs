//! `duet app`: the same Duet in the browser, for partners who never open a terminal.
//!
//! A local web server on 127.0.0.1 serves server-rendered pages (maud, which escapes
//! every value) that call the same application-layer operations as the command line
//! (`duet_core::app`), and a small style sheet and script from the binary. The printed
//! URL carries a one-time secret; [`security`] says what keeps other pages and users out.
//! A background thread syncs like `duet sync --watch` and tells open pages about every
//! change (server-sent events), also those another `duet` process makes on this home.
//! docs/app.md describes it for people.

mod advice;
mod hold;
mod kept;
mod launch;
mod listen;
mod live;
mod once;
mod pages;
mod scope;
mod security;
mod server;

use std::io::Write;
use std::sync::{Arc, Mutex};

use anyhow::Context;

use crate::commands::Ctx;

/// Open Duet in your browser: a local app on this device, with the same data as the
/// command line.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  duet app\n  duet app --port 8080 --no-open")]
pub struct Args {
    /// The port to listen on (127.0.0.1 only; default: a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Do not open the browser; only print the URL.
    #[arg(long)]
    no_open: bool,
}

/// `duet app --json` prints this one line once the server listens.
#[derive(serde::Serialize)]
struct Started<'a> {
    url: &'a str,
}

/// Runs `duet app` until Ctrl-C (or SIGTERM).
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    // Fail early, with the command line's words, when the home cannot be read; a home
    // without a device yet gets the first-run setup page.
    if let Err(e) = ctx.device()
        && crate::advice::next_step(&e) != Some(duet_core::advice::NextStep::SetUp)
    {
        return Err(e);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the app's server")?;
    let done = rt.block_on(serve(ctx, a));
    // Requests still on a blocking thread get a moment; nothing else is waited for.
    rt.shutdown_timeout(std::time::Duration::from_millis(500));
    done
}

async fn serve(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", a.port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on 127.0.0.1:{}; choose another port with --port N, or leave it out for a free one",
                a.port
            )
        })?;
    let port = listener.local_addr()?.port();
    let session = Arc::new(security::Session::new(port)?);
    let url = session.url();
    let (changes, _) = tokio::sync::broadcast::channel(16);
    let (stop_tx, stopping) = tokio::sync::watch::channel(false);
    let app = server::App {
        home: ctx.home.clone(),
        clock: ctx.clock,
        session,
        live: Arc::new(Mutex::new(live::LiveState::default())),
        device: Arc::new(tokio::sync::Mutex::new(None)),
        live_hold: Arc::default(),
        outcomes: Arc::default(),
        changes,
        stopping,
    };
    let watcher = live::start(&app);
    hold_ipv6_loopback(port, &app).await;
    if ctx.out.json {
        // One line, so that a program reading it knows when the server listens.
        crate::output::data(&serde_json::to_string(&Started { url: &url })?)?;
    } else {
        ctx.out.line(format!(
            "Duet is open at {url}\nThat link holds a key made for this run: keep it to yourself. Press Ctrl-C to stop."
        ))?;
    }
    let _ = std::io::stdout().flush();
    // Kept until the server stops (the file is removed then).
    let _launch_page = if a.no_open {
        None
    } else {
        launch::open_browser(&url)
    };
    let shutdown = async move {
        stop_signal().await;
        let _ = stop_tx.send(true);
    };
    listen::serve(listener, server::router(app), shutdown).await;
    watcher.stop();
    if !ctx.out.json {
        ctx.out.line("Stopped.")?;
    }
    Ok(())
}

/// Listens on `[::1]:PORT` too, where a browser may look for `localhost:PORT`: held by
/// the app (which refuses that name, see `security`), it cannot be taken by another
/// local user's server to receive the printed link's key or serve pages of the origin
/// `localhost:PORT`. A machine without IPv6 has no such address to take.
async fn hold_ipv6_loopback(port: u16, app: &server::App) {
    let Ok(listener) = tokio::net::TcpListener::bind(("::1", port)).await else {
        return;
    };
    let mut stopping = app.stopping.clone();
    let stopped = async move {
        let _ = stopping.wait_for(|s| *s).await;
    };
    tokio::spawn(listen::serve(
        listener,
        server::router(app.clone()),
        stopped,
    ));
}

/// Ctrl-C, SIGTERM, or SIGHUP (the terminal it runs in was closed): each stops the
/// server cleanly (the launch page is removed then).
async fn stop_signal() {
    let _size = crate::interrupt::survive_file_size_limit();
    let on = |kind: tokio::signal::unix::SignalKind| async move {
        match tokio::signal::unix::signal(kind) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = on(tokio::signal::unix::SignalKind::terminate()) => {}
        _ = on(tokio::signal::unix::SignalKind::hangup()) => {}
    }
}
