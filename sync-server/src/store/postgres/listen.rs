//! Hearing other instances' commits: each writer announces its new cursors with
//! `pg_notify` on [`CHANNEL`] inside its transaction, and a thread of each instance
//! LISTENs and hands every announcement to a callback (the relay's live sockets).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use duet_core::event::SpaceId;

use crate::store::{Committed, StoreError};

/// The channel of `pg_notify` on which commits are announced.
pub const CHANNEL: &str = "duet_live";

/// Parses a `pg_notify` payload `SPACEHEX:CURSOR`.
pub fn parse_announcement(payload: &str) -> Option<Committed> {
    let (space, cursor) = payload.split_once(':')?;
    Some(Committed {
        space: SpaceId::parse(space)?,
        cursor: cursor.parse().ok()?,
    })
}

/// Stops the listener thread when dropped.
#[derive(Debug)]
pub struct ListenerGuard {
    stop: Arc<AtomicBool>,
}

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts a thread that LISTENs on [`CHANNEL`] and hands every commit announced by any
/// instance (this one included) to `on_commit`. It reconnects with backoff when the
/// connection is lost, then calls `on_missed` (commits announced meanwhile went unheard),
/// and ends when the returned guard is dropped.
pub fn listen(
    url: &str,
    on_commit: impl Fn(Committed) + Send + 'static,
    on_missed: impl Fn() + Send + 'static,
) -> Result<ListenerGuard, StoreError> {
    let stop = Arc::new(AtomicBool::new(false));
    let guard = ListenerGuard { stop: stop.clone() };
    let url = url.to_string();
    std::thread::Builder::new()
        .name("duet-relay-listen".into())
        .spawn(move || {
            const FIRST_WAIT: Duration = Duration::from_millis(250);
            let mut backoff = FIRST_WAIT;
            let mut lost = false;
            while !stop.load(Ordering::Relaxed) {
                let listening = || {
                    backoff = FIRST_WAIT;
                    if lost {
                        tracing::info!("hearing other instances' commits again");
                        on_missed();
                    }
                };
                match listen_once(&url, &on_commit, listening, &stop) {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(
                            "lost the PostgreSQL connection that hears other instances' commits: \
                             {e}; reconnecting in {:.1} s",
                            backoff.as_secs_f64()
                        );
                        lost = true;
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
            }
        })
        .map_err(StoreError::Thread)?;
    Ok(guard)
}

fn listen_once(
    url: &str,
    on_commit: &impl Fn(Committed),
    listening: impl FnOnce(),
    stop: &AtomicBool,
) -> Result<(), StoreError> {
    // As the stores connect (with their connect timeout), off the async threads.
    let mut client = super::connect(url)?;
    client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
    listening();
    while !stop.load(Ordering::Relaxed) {
        let mut notes = client.notifications();
        let mut iter = notes.timeout_iter(Duration::from_millis(250));
        while let Some(note) = postgres::fallible_iterator::FallibleIterator::next(&mut iter)? {
            if let Some(c) = parse_announcement(note.payload()) {
                on_commit(c);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_announcement_is_a_space_and_a_cursor_and_anything_else_is_ignored() {
        let space = SpaceId::generate();
        assert_eq!(
            parse_announcement(&format!("{space}:42")),
            Some(Committed { space, cursor: 42 })
        );
        for bad in [
            "",
            "42",
            "nothex:1",
            &format!("{space}:"),
            &format!("{space}:-1"),
        ] {
            assert_eq!(parse_announcement(bad), None, "{bad}");
        }
    }
}
