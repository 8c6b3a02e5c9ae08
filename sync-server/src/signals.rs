//! The relay binary's signals: the ones that stop it gracefully, and SIGXFSZ, which
//! must not kill it.

/// Registers the shutdown signals (SIGTERM, SIGINT, SIGHUP) now and returns the future
/// that completes on the first of them. Registering before the relay says it is listening matters: a SIGTERM sent
/// right after that line must stop the relay cleanly, never take the default action.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        // SIGHUP's default action kills at once, with no word to live sockets and no
        // grace for requests in flight; operators send it expecting a reload, and a
        // terminal that closes sends it too. The relay has nothing to reload: it stops
        // as on SIGTERM.
        let hup = signal(SignalKind::hangup());
        async move {
            match (term, int, hup) {
                (Ok(mut term), Ok(mut int), Ok(mut hup)) => tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = int.recv() => tracing::info!("SIGINT received"),
                    _ = hup.recv() => tracing::info!(
                        "SIGHUP received: the relay has nothing to reload, it stops as on \
                         SIGTERM (restart it to take a new configuration)"
                    ),
                },
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                    tracing::error!("cannot listen for shutdown signals: {e}");
                    std::future::pending::<()>().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    }
}

/// Handles SIGXFSZ, whose default action kills the process: a write past the process's
/// file-size limit (`ulimit -f`, systemd's `LimitFSIZE`) then fails instead (EFBIG), the
/// group's commit is rolled back, its pushes are refused, and the relay goes on serving.
pub(crate) fn survive_file_size_limit() {
    #[cfg(any(target_os = "linux", target_os = "macos"))]
    {
        use tokio::signal::unix::{SignalKind, signal};
        /// SIGXFSZ on Linux (x86, ARM) and macOS.
        const SIGXFSZ: i32 = 25;
        match signal(SignalKind::from_raw(SIGXFSZ)) {
            Ok(mut raised) => {
                tokio::spawn(async move {
                    while raised.recv().await.is_some() {
                        tracing::error!(
                            "a write went past this process's file-size limit (ulimit -f, \
                             LimitFSIZE): the pushes of that commit were refused; raise the limit"
                        );
                    }
                });
            }
            Err(e) => tracing::warn!("cannot handle SIGXFSZ (the file-size limit): {e}"),
        }
    }
}
