//! The app's live side: a background thread that syncs like `duet sync --watch` (one live
//! socket per space through [`crate::live`], a sync whenever the relay says a space moved
//! or this home has unsent changes) and notices what other `duet` processes commit to the
//! home (the store's data version, polled); every change is told to open pages through
//! `/events` (server-sent events), and the status line is refreshed from `Device::status`.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use duet_core::advice::Advice;
use duet_core::app::LiveTarget;
use duet_core::device::{Device, DeviceError};
use duet_core::sync::{SyncError, TransportError};
use futures_util::Stream;

use super::server::App;
use crate::live::Signal;
use crate::transport::Http;

/// How often the thread looks for changes other processes made (one `PRAGMA
/// data_version`, as `duet sync --watch` does).
const LOCAL_CHECK: Duration = Duration::from_millis(250);

/// How long a sync's warning stays on the status line.
pub const SAID_FOR_MS: i64 = 24 * 3_600_000;

/// How a sync's warning of a clock that disagrees with the relay's begins
/// (`duet_core::device::clock_disagrees`).
const CLOCK_WARNING: &str = "this device's clock is";

/// The most sync warnings the status line keeps (the newest).
const SAID_KEPT: usize = 5;

/// What the status line shows, as the live thread last saw it.
#[derive(Debug, Clone, Default)]
pub struct LiveState {
    /// Whether a relay is set (`None` until the live thread has opened the device: a
    /// home just joined in the app is not said to have none).
    pub has_relay: Option<bool>,
    /// A relay is set, but this device is in no space it can still sync (removed, or
    /// left with no personal space to sync): not "no relay set".
    pub syncs_none: bool,
    /// Whether the relay answered last time (None: not tried yet).
    pub reachable: Option<bool>,
    /// When the last sync finished (ms).
    pub last_sync: Option<i64>,
    /// Local changes not yet sent.
    pub pending: i64,
    /// What went wrong with the relay or the last sync, until a sync succeeds.
    pub problem: Option<String>,
    /// Warnings about this device's spaces in plain words (relay alerts, waiting events,
    /// unverified devices), as of the last change.
    pub warnings: Vec<String>,
    /// Whether a device of the shared space is not verified yet (said after the
    /// warnings; cleared at once by the page that records a verification, before this
    /// thread's next look at the store).
    pub unverified: bool,
    /// Spaces whose live socket the relay refused, with its words (said among the
    /// warnings unless the space is one this device departed, which says more).
    pub stopped: Vec<(&'static str, String)>,
    /// What syncs said (the warnings `duet sync` prints: another copy of this device
    /// wrote first, the relay lost events and was given them back...), with when, each
    /// shown for [`SAID_FOR_MS`]: the next sync, seconds later, says nothing of it.
    pub said: Vec<(i64, String)>,
    /// Set once the relay was set again in the app (a creation token given, say): the
    /// live thread syncs and opens its sockets again, also those the relay refused.
    pub relisten: bool,
}

/// The running thread, to stop it.
pub struct Watcher {
    stop: Arc<AtomicBool>,
}

impl Watcher {
    /// Asks the thread to stop (it does within one check).
    pub fn stop(self) {
        self.stop.fetch_or(true, Ordering::Relaxed);
    }
}

/// Starts the live thread.
pub fn start(app: &App) -> Watcher {
    let stop = Arc::new(AtomicBool::new(false));
    let w = Live {
        home: app.home.clone(),
        clock: app.clock,
        state: app.live.clone(),
        changes: app.changes.clone(),
        stop: stop.clone(),
        device: app.device.clone(),
        joined_nothing: std::cell::Cell::new(false),
        hold: app.live_hold.clone(),
    };
    let _ = std::thread::Builder::new()
        .name("duet-app-live".into())
        .spawn(move || w.run());
    Watcher { stop }
}

/// The live sockets listened to, and where.
struct Sockets {
    targets: Vec<LiveTarget>,
    rx: Receiver<Signal>,
}

impl Sockets {
    fn has_relay(&self) -> bool {
        !self.targets.is_empty()
    }
}

struct Live {
    home: std::path::PathBuf,
    clock: duet_core::clock::Clock,
    state: Arc<Mutex<LiveState>>,
    changes: tokio::sync::broadcast::Sender<()>,
    stop: Arc<AtomicBool>,
    /// The server's device slot: held by the setup and join forms while they make the
    /// device, so that this thread never opens one half made (a refused join is given up).
    device: super::server::DeviceSlot,
    /// Set by a sync that found this device's whole join refused for good: the thread
    /// lets go of the device, whose home a new code on the setup page sets up again.
    joined_nothing: std::cell::Cell<bool>,
    /// Whether this thread holds a device, for a page that sets the home aside.
    hold: Arc<super::hold::LiveHold>,
}

/// A failed sync is tried again after this long, then twice as long each time...
const RETRY_FIRST: Duration = Duration::from_secs(2);

/// ...up to this long: no socket says when a relay that refused (an invite it does not
/// know yet, a join not accepted yet) would now accept.
const RETRY_MOST: Duration = Duration::from_secs(60);

/// Sockets the relay refused are opened again after a sync succeeds (a join it has now
/// accepted), at most this often.
const RELISTEN_EVERY: Duration = Duration::from_secs(30);

/// When a failed sync is tried again.
#[derive(Default)]
struct Retry {
    failures: u32,
    at: Option<Instant>,
}

impl Retry {
    /// Notes a sync's outcome; `None` is a failure.
    fn note(&mut self, outcome: Option<bool>) {
        if outcome.is_some() {
            *self = Retry::default();
            return;
        }
        let wait = RETRY_FIRST
            .saturating_mul(1 << self.failures.min(5))
            .min(RETRY_MOST);
        self.failures += 1;
        self.at = Some(Instant::now() + wait);
    }

    /// Whether the time to try again has come (once per failure).
    fn due(&mut self) -> bool {
        let due = self.at.is_some_and(|t| Instant::now() >= t);
        if due {
            self.at = None;
        }
        due
    }
}

impl Live {
    fn run(self) {
        while let Some(dev) = self.open() {
            let stopped = !self.serve(dev);
            self.hold.set_holding(false);
            if stopped {
                return;
            }
            self.joined_nothing.set(false);
        }
    }

    /// Syncs and listens for `dev` until the server stops (false), or until a sync finds
    /// that its whole join was refused for good or a page sets the home aside (true: the
    /// device is let go, see [`Live::open`]).
    fn serve(&self, mut dev: Device) -> bool {
        let http = Http::new().ok();
        let targets = dev.live_targets().unwrap_or_default();
        let (mut sockets, first) = self.listen(&mut dev, targets);
        let (mut retry, mut relistened) = (Retry::default(), Instant::now());
        // A socket down (lost, never upgraded through a proxy, still opening): synced
        // every POLL_WHILE_DOWN until one says it is connected.
        let (mut down, mut last_sync) = (sockets.has_relay(), Instant::now());
        retry.note(first);
        let mut due = first == Some(true);
        let mut seen = dev.data_version().unwrap_or(0);
        while !self.stop.load(Ordering::Relaxed) {
            if self.joined_nothing.get() || self.hold.wanted() {
                return true;
            }
            // The relay set again in the app (a creation token given), or a sync that
            // succeeds where the relay refused a socket before (a join now accepted):
            // sync and listen again.
            let refused_before = self.any_stopped() && relistened.elapsed() >= RELISTEN_EVERY;
            if self.take_relisten() || refused_before {
                let targets = dev.live_targets().unwrap_or(sockets.targets.clone());
                let outcome;
                (sockets, outcome) = self.listen(&mut dev, targets);
                down = sockets.has_relay();
                relistened = Instant::now();
                retry.note(outcome);
                due |= outcome == Some(true);
            }
            // A clock the last sync found wrong is measured again as often: set right,
            // the next sync lets the person rate again.
            due |= retry.due()
                || (last_sync.elapsed() >= crate::live::POLL_WHILE_DOWN
                    && (down || dev.ensure_clock_agrees().is_err()));
            if due {
                let outcome = http.as_ref().and_then(|http| self.sync(&mut dev, http));
                retry.note(outcome);
                due = outcome == Some(true);
                last_sync = Instant::now();
            }
            match next_signal(&sockets.rx, sockets.has_relay()) {
                Some(signal) => {
                    match signal {
                        Signal::Lost { .. } => down = true,
                        Signal::Connected(_) => down = false,
                        _ => {}
                    }
                    due |= self.on_signal(signal);
                }
                None => {
                    // A copy read on a full disk never sees the pages' writes once the
                    // disk is freed: opened again (a new connection, whose count is its
                    // own), it is looked at as changed.
                    let reopened = dev.reopen_if_writable().unwrap_or(false);
                    let now = dev.data_version().unwrap_or(seen);
                    if reopened || now != seen {
                        seen = now;
                        // A relay set or changed (in the app or with `duet relay set`),
                        // or a space left: listen where the spaces now sync.
                        let targets = dev.live_targets().unwrap_or(sockets.targets.clone());
                        if targets != sockets.targets {
                            let outcome;
                            (sockets, outcome) = self.listen(&mut dev, targets);
                            down = sockets.has_relay();
                            retry.note(outcome);
                            due |= outcome == Some(true);
                        }
                        self.refresh(&mut dev);
                        self.tell();
                        due |= sockets.has_relay() && dev.has_unsent().unwrap_or(false);
                    }
                }
            }
        }
        false
    }

    /// Starts one live socket per target (the sockets listened to before end when their
    /// receiver is dropped) and syncs first: a page starts from what the relay has, and a
    /// home set up in the app gets its spaces made on the relay, which refuses to listen
    /// to a space it does not know. The sync's outcome, as [`Live::sync`].
    fn listen(&self, dev: &mut Device, targets: Vec<LiveTarget>) -> (Sockets, Option<bool>) {
        let has_relay = !targets.is_empty();
        let syncs_none = !has_relay
            && dev
                .status()
                .is_ok_and(|st| st.spaces.iter().any(|s| s.relay.is_some()));
        self.update(|s| {
            s.has_relay = Some(has_relay);
            s.syncs_none = syncs_none;
            s.reachable = None;
            s.problem = None;
            s.stopped.clear();
        });
        self.refresh(dev);
        let more = match Http::new() {
            Ok(http) if has_relay => self.sync(dev, &http),
            _ => Some(false),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        for t in &targets {
            crate::live::spawn(t.relay.clone(), t.space, t.kind, dev.me.clone(), tx.clone());
        }
        (Sockets { targets, rx }, more)
    }

    /// Opens the device, waiting while the home has none yet (the setup page makes it)
    /// or holds one whose whole join was refused for good (the setup page sets it up
    /// again); `None` when the server stops first or the home cannot be read.
    fn open(&self) -> Option<Device> {
        while !self.stop.load(Ordering::Relaxed) {
            // A setup or join form is making the device: wait until it is done.
            let Ok(making) = self.device.try_lock() else {
                std::thread::sleep(LOCAL_CHECK);
                continue;
            };
            match Device::open_with(&self.home, self.clock) {
                Ok(d) if !d.joined_nothing_for_good().unwrap_or(false) => {
                    // Said while the slot is held: a page that sets the home aside
                    // takes the slot, then waits for this device to be let go.
                    self.hold.set_holding(true);
                    return Some(d);
                }
                // Waited for without the slot: the forms take it meanwhile.
                Ok(joined_nothing) => drop(joined_nothing),
                Err(e) if e.next_step() == Some(duet_core::advice::NextStep::SetUp) => {}
                Err(e) => {
                    self.warn(super::advice::message(&e));
                    return None;
                }
            }
            drop(making);
            std::thread::sleep(LOCAL_CHECK);
        }
        None
    }

    /// Reacts to a live socket's signal; true when a sync is due.
    fn on_signal(&self, signal: Signal) -> bool {
        match signal {
            Signal::Moved => return true,
            // (Re)connected: catch up on what moved while no socket listened.
            Signal::Connected(_) => {
                self.update(|s| s.reachable = Some(true));
                return true;
            }
            // The socket library's words (a URL, "Unable to connect") are for the log of
            // `duet sync --watch`; the page says what it means.
            // One line for both spaces: each socket says so, and naming only the last
            // one to say it read as if the other were fine.
            Signal::Lost { .. } => self.update(|s| {
                s.reachable = Some(false);
                s.problem = Some(
                    "live updates paused (the connection to the relay was lost); reconnecting, and changes made meanwhile are kept and sent then"
                        .into(),
                );
            }),
            // A sync finds out why (this device was removed, a creation token the relay
            // refused...) and says it instead, or says this when it succeeds as well.
            Signal::Refused(kind, msg) => {
                self.update(|s| s.stopped.push((kind.as_str(), msg)));
                return true;
            }
        }
        false
    }

    /// One sync: whether it stopped early and should read on, or `None` when it failed
    /// (it is tried again, [`Retry`]).
    fn sync(&self, dev: &mut Device, http: &Http) -> Option<bool> {
        // Opened while the home could not be written (a full disk): a copy in memory,
        // opened again once the home takes writes (every sync failed until a restart).
        let _ = dev.reopen_if_writable();
        let more = match dev.sync(http) {
            Ok(reports) => {
                let now = self.clock.now();
                // A push the relay refused is kept here; say why and what to do.
                let refused = reports.iter().find_map(|(kind, r)| {
                    r.push_refused.as_ref().map(|w| {
                        format!(
                            "{} space: the relay refused this device's changes ({}); they are kept on this device",
                            kind.as_str(),
                            super::advice::warning(w)
                        )
                    })
                });
                let said: Vec<String> = reports
                    .iter()
                    .flat_map(|(kind, r)| {
                        r.warnings.iter().map(move |w| {
                            format!("{} space: {}", kind.as_str(), super::advice::warning(w))
                        })
                    })
                    .collect();
                self.update(|s| {
                    s.reachable = Some(true);
                    s.last_sync = Some(now);
                    s.problem = refused;
                    // A clock found right again: what an earlier sync said of it is over.
                    if !said.iter().any(|t| t.contains(CLOCK_WARNING)) {
                        s.said.retain(|(_, t)| !t.contains(CLOCK_WARNING));
                    }
                    keep_said(&mut s.said, said, now);
                });
                Some(reports.iter().any(|(_, r)| r.incomplete))
            }
            Err(e) => {
                if matches!(e, DeviceError::JoinRefused { device: None, .. }) {
                    self.joined_nothing.set(true);
                }
                // A relay that answered with a refusal is reachable; a failure on this
                // device (its folder, its disk) says nothing of the relay.
                let reachable = match &e {
                    DeviceError::Sync(SyncError::Transport(TransportError::Refused { .. })) => {
                        Some(true)
                    }
                    DeviceError::Sync(SyncError::Transport(_)) => Some(false),
                    _ => None,
                };
                if reachable.is_some() {
                    self.update(|s| s.reachable = reachable);
                }
                let again = if crate::advice::retry_helps(&e) {
                    "; trying again shortly"
                } else {
                    ""
                };
                self.warn(format!(
                    "sync did not finish ({}){again}",
                    super::advice::message(&e)
                ));
                None
            }
        };
        self.refresh(dev);
        self.tell();
        more
    }

    /// Re-reads pending changes and warnings for the status line.
    fn refresh(&self, dev: &mut Device) {
        let Ok(status) = dev.status() else { return };
        // What a space this device departed holds is never sent: not "not sent yet";
        // but a leave not sent yet is, with what was written before it (`duet status`).
        let leaving = |s: &duet_core::app::SpaceStatus| {
            s.departed.as_ref().is_some_and(|d| d.left) && s.unsent_events > 0
        };
        let pending = status
            .spaces
            .iter()
            .filter(|s| s.departed.is_none() || leaving(s))
            .map(|s| s.unsent_events as i64 + if leaving(s) { 0 } else { s.pending_changes })
            .sum();
        // What was written here after the membership ended shows on these pages like the
        // rest: said, as the command line says it.
        let stranded = dev.never_sent_count().unwrap_or(0);
        let mut warnings: Vec<String> = status
            .spaces
            .iter()
            .filter_map(|s| {
                s.departed.as_ref().map(|d| {
                    let mut said = format!(
                        "{}; what it had stays readable here, and nothing written here reaches it",
                        d.describe()
                    );
                    if s.kind == "shared" && stranded > 0 {
                        said.push_str(&format!(
                            "; {} made here never reached it: they show on this device only, and your partner never sees them (History marks them \"never sent\")",
                            duet_core::words::count(stranded, "change", "changes")
                        ));
                    }
                    said
                })
            })
            .collect();
        // A refused push is the status line's problem, said in the app's words: not
        // again among the warnings.
        let refusal_said = self.state.lock().is_ok_and(|s| s.problem.is_some());
        warnings.extend(status.spaces.iter().filter_map(|s| {
            let mut alert = s.alert.as_deref()?;
            // The refusal is the alert's last part.
            if refusal_said && let Some(at) = alert.find(duet_core::sync::PUSH_REFUSED) {
                alert = alert[..at].trim_end_matches("; ");
            }
            (!alert.is_empty()).then(|| format!("{} space: {alert}", s.kind))
        }));
        let departed = |kind: &str| {
            status
                .spaces
                .iter()
                .any(|s| s.kind == kind && s.departed.is_some())
        };
        if let Ok(s) = self.state.lock() {
            warnings.extend(
                s.stopped
                    .iter()
                    .filter(|(kind, _)| !departed(kind))
                    .map(|(kind, msg)| format!("{kind} space: stopped syncing live: {msg}")),
            );
        }
        for s in &status.spaces {
            if s.waiting_events > 0 {
                warnings.push(format!(
                    "{} space: {} from the relay wait for an earlier one it has not served",
                    s.kind,
                    duet_core::words::count(s.waiting_events, "event", "events")
                ));
            }
        }
        self.update(|s| {
            s.pending = pending;
            s.warnings = warnings;
            s.unverified = !status.unverified.is_empty();
        });
    }

    /// Whether the relay refused a live socket (its words are on the status line).
    fn any_stopped(&self) -> bool {
        self.state.lock().is_ok_and(|s| !s.stopped.is_empty())
    }

    /// Whether the relay was set again in the app since last asked.
    fn take_relisten(&self) -> bool {
        self.state
            .lock()
            .map(|mut s| std::mem::take(&mut s.relisten))
            .unwrap_or(false)
    }

    fn update(&self, f: impl FnOnce(&mut LiveState)) {
        if let Ok(mut s) = self.state.lock() {
            f(&mut s);
        }
    }

    /// Says what went wrong with the relay or a sync (until a sync succeeds).
    fn warn(&self, problem: String) {
        self.update(|s| s.problem = Some(problem));
    }

    /// Tells open pages that something changed.
    fn tell(&self) {
        let _ = self.changes.send(());
    }
}

/// The next socket signal, or `None` after [`LOCAL_CHECK`] without one (also when no
/// relay is set: then there are no sockets).
fn next_signal(rx: &Receiver<Signal>, has_relay: bool) -> Option<Signal> {
    if !has_relay {
        std::thread::sleep(LOCAL_CHECK);
        return None;
    }
    match rx.recv_timeout(LOCAL_CHECK) {
        Ok(s) => Some(s),
        Err(RecvTimeoutError::Timeout) => None,
        // Every socket was refused for good: poll the store only.
        Err(RecvTimeoutError::Disconnected) => {
            std::thread::sleep(LOCAL_CHECK);
            None
        }
    }
}

/// `/events`: one `change` event whenever the store changed; ends when the server stops.
pub async fn events(State(app): State<App>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = app.changes.subscribe();
    let stream = futures_util::stream::unfold(
        (rx, app.stopping.clone()),
        |(mut rx, mut stop)| async move {
            if *stop.borrow() {
                return None;
            }
            tokio::select! {
                r = rx.recv() => match r {
                    Ok(()) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        Some((Ok(Event::default().event("change").data("changed")), (rx, stop)))
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
                },
                _ = stop.changed() => None,
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Adds what a sync said to what earlier ones did (a warning said again moves to now),
/// forgetting what is older than [`SAID_FOR_MS`] and all but the newest [`SAID_KEPT`].
fn keep_said(kept: &mut Vec<(i64, String)>, said: Vec<String>, now: i64) {
    for text in said {
        kept.retain(|(_, t)| *t != text);
        kept.push((now, text));
    }
    kept.retain(|(at, _)| now - at < SAID_FOR_MS);
    let extra = kept.len().saturating_sub(SAID_KEPT);
    kept.drain(..extra);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_syncs_warning_stays_a_day_once_and_the_newest_five_are_kept() {
        let mut kept = Vec::new();
        keep_said(&mut kept, vec!["another copy".into()], 1_000);
        keep_said(&mut kept, Vec::new(), 2_000);
        assert_eq!(kept, vec![(1_000, "another copy".to_string())]);
        keep_said(&mut kept, vec!["another copy".into()], 3_000);
        assert_eq!(kept, vec![(3_000, "another copy".to_string())]);
        keep_said(&mut kept, Vec::new(), 3_000 + SAID_FOR_MS);
        assert!(kept.is_empty());
        let many = (0..8).map(|i| format!("warning {i}")).collect();
        keep_said(&mut kept, many, 5);
        let texts: Vec<&str> = kept.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(
            texts,
            [
                "warning 3",
                "warning 4",
                "warning 5",
                "warning 6",
                "warning 7"
            ]
        );
    }
}
