//! `duet sync --watch`: one live socket per space, a sync whenever the relay says a space
//! moved or this device has unsent changes, until interrupted.

use duet_core::sync::SyncError;

use super::Ctx;
use crate::output::note;
use crate::transport::Http;

/// How often `duet sync --watch` looks for changes other `duet` commands made on this
/// device (one `PRAGMA data_version`, no table read).
const LOCAL_CHECK: std::time::Duration = std::time::Duration::from_millis(200);

/// Runs `duet sync --watch`: one live socket per space (`crate::live`), a sync whenever
/// the relay says a space moved or this device has unsent changes, until interrupted.
pub fn run(ctx: &Ctx) -> anyhow::Result<()> {
    use crate::live::{self, Signal};
    use std::sync::mpsc::RecvTimeoutError;

    let mut dev = ctx.device()?;
    let http = Http::new()?;
    let (tx, rx) = std::sync::mpsc::channel();
    let mut listening = 0;
    for t in dev.live_targets()? {
        live::spawn(t.relay, t.space, t.kind, dev.me.clone(), tx.clone());
        listening += 1;
    }
    drop(tx);
    if listening == 0 {
        return Err(SyncError::NoRelay.into());
    }
    ctx.out.line(
        "Watching for changes; press Ctrl-C to stop. Changes made here are sent as you make them.",
    )?;
    let mut seen = dev.data_version()?;
    let mut lost = false;
    // A sync that stopped early (a page cap, a stalled parse) reads on at the next check.
    let mut more = false;
    loop {
        let due = match rx.recv_timeout(LOCAL_CHECK) {
            Ok(Signal::Moved) => true,
            Ok(Signal::Connected(kind)) => {
                if lost {
                    ctx.out
                        .line(format!("{}: connected to the relay again", kind.as_str()))?;
                    lost = false;
                }
                false
            }
            Ok(Signal::Lost {
                space,
                error,
                retry_in,
            }) => {
                if !lost {
                    note(&format!(
                        "warning ({} space): {error}; reconnecting (next try in {:.1} s), \
                         changes made meanwhile are kept and sent then",
                        space.as_str(),
                        retry_in.as_secs_f64()
                    ));
                }
                lost = true;
                false
            }
            Ok(Signal::Refused(kind, msg)) => {
                note(&format!(
                    "warning ({} space): stopped watching: {msg}",
                    kind.as_str()
                ));
                listening -= 1;
                if listening == 0 {
                    anyhow::bail!(
                        "the relay refused every live connection; check `duet status` and the relay URL"
                    );
                }
                false
            }
            Err(RecvTimeoutError::Timeout) => {
                let now = dev.data_version()?;
                let changed = now != seen;
                seen = now;
                std::mem::take(&mut more) || (changed && dev.has_unsent()?)
            }
            Err(RecvTimeoutError::Disconnected) => {
                anyhow::bail!("every live connection stopped; run `duet sync --watch` again")
            }
        };
        if !due {
            continue;
        }
        // Several signals may be queued: one sync covers them all.
        match dev.sync(&http) {
            Ok(reports) => {
                super::sync::print_reports(ctx, &reports)?;
                more = reports.iter().any(|(_, r)| r.incomplete);
                for (kind, r) in &reports {
                    if let Some(m) = &r.push_refused {
                        note(&format!(
                            "warning ({} space): the relay refused this device's changes ({m}); they are kept here",
                            kind.as_str()
                        ));
                    }
                }
            }
            // The live thread reconnects and a sync follows; nothing is lost meanwhile.
            Err(e) => note(&format!(
                "warning: sync did not finish ({e}); retrying when the relay answers"
            )),
        }
        // `seen` is not read again here: this device's own commits do not move its
        // data_version, and a `duet` command that commits during the sync must still be
        // noticed at the next check.
    }
}
