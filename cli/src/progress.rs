//! Progress on stderr while a sync talks to the relay (a join pulling a long history, a
//! sync of many events): drawn only when stderr is a terminal and neither `--quiet` nor
//! `--json` is given, and cleared when the work ends. Core knows nothing of it: the HTTP
//! transport reports each page it receives and each batch it sends (a page is applied
//! before the next one is asked for, so the count also says how far applying got).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::Out;

/// A progress line on stderr; cleared when dropped.
pub struct Progress {
    bar: ProgressBar,
    /// Events received so far.
    received: AtomicU64,
    /// The cursor the first page was read after.
    start: AtomicU64,
}

impl Progress {
    /// A progress line for `what`, or `None` where none is wanted (not a terminal,
    /// `--quiet`, `--json`).
    pub fn start(out: &Out, what: &str) -> Option<Progress> {
        if out.quiet || out.json || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(spinner_style());
        bar.set_prefix(what.to_string());
        bar.set_message("connecting to the relay");
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.tick();
        Some(Progress {
            bar,
            received: AtomicU64::new(0),
            start: AtomicU64::new(u64::MAX),
        })
    }

    /// A page of `events` arrived: it was read after cursor `after`, ends at cursor
    /// `last`, and the relay's newest cursor is `newest` (when it says).
    pub fn page(&self, after: u64, events: usize, last: u64, newest: Option<u64>, more: bool) {
        let start =
            match self
                .start
                .compare_exchange(u64::MAX, after, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => after,
                Err(start) => start,
            };
        let received = self.received.fetch_add(events as u64, Ordering::Relaxed) + events as u64;
        if let Some(newest) = newest.filter(|n| *n > start) {
            if self.bar.length().is_none() {
                self.bar.set_style(bar_style());
            }
            self.bar.set_length(newest - start);
            self.bar
                .set_position(last.saturating_sub(start).min(newest - start));
        }
        let events = duet_core::words::count(received as usize, "event", "events");
        self.bar.set_message(if more {
            format!("received {events}")
        } else {
            format!("received {events}; applying")
        });
    }

    /// A batch of `bytes` is being sent.
    pub fn sending(&self, bytes: usize) {
        self.bar
            .set_message(format!("sending changes ({} KB)", bytes.div_ceil(1024)));
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix}: {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix}: {msg} [{bar:24}] {percent}%")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}
