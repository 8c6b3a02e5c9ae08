//! `duet sync --watch`: one live socket per space, a sync whenever the relay says a space
//! moved or this device has unsent changes, until interrupted.

use std::sync::mpsc::{Receiver, RecvTimeoutError};

use duet_core::app::LiveTarget;
use duet_core::device::Device;
use duet_core::sync::SyncError;

use super::Ctx;
use crate::live::{self, POLL_WHILE_DOWN, Signal};
use crate::output::note;
use crate::transport::Http;

/// How often `duet sync --watch` looks for changes other `duet` commands made on this
/// device (one `PRAGMA data_version`, no table read).
const LOCAL_CHECK: std::time::Duration = std::time::Duration::from_millis(200);

/// What the watch loop remembers between signals.
struct Watch {
    /// When the last sync ran.
    last_sync: std::time::Instant,
    /// The last sync failed.
    failed: bool,
    /// What the last syncs said that is said once while it lasts.
    failure_said: Said,
    /// Live sockets still listening.
    listening: usize,
    /// Whether the relay was lost (said once, and "connected again" once).
    lost: bool,
    /// The spaces whose socket is open: until each is (a socket still opening, say
    /// through a proxy that holds the upgrade), the watcher syncs on its own too.
    up: Vec<duet_core::store::SpaceKind>,
    /// A sync stopped early (a page cap, a stalled parse): read on at the next check.
    more: bool,
    /// The store's data version at the last check.
    seen: i64,
    /// Live sockets the relay refused since the last sync, with its words: said after a
    /// sync has learnt why (a leave or removal is then said by the sync instead).
    refused: Vec<(duet_core::store::SpaceKind, String)>,
    /// Where the sockets listen.
    targets: Vec<LiveTarget>,
    /// Where they must listen now (`duet relay set` ran meanwhile, say).
    retarget: Option<Vec<LiveTarget>>,
    /// When to open again the sockets the relay refused while this device is still in
    /// their space (a relay restarted on the wrong database says `no_such_space` until
    /// its operator puts the right one back), and the refusals said meanwhile.
    reopen: Option<(std::time::Instant, Vec<String>)>,
}

/// One live socket per target, on a channel of their own: the sockets of an earlier
/// call end once its receiver is dropped.
fn listen(dev: &Device, targets: &[LiveTarget]) -> Receiver<Signal> {
    let (tx, rx) = std::sync::mpsc::channel();
    for t in targets {
        live::spawn(t.relay.clone(), t.space, t.kind, dev.me.clone(), tx.clone());
    }
    rx
}

/// Runs `duet sync --watch`: one live socket per space (`crate::live`), a sync whenever
/// the relay says a space moved or this device has unsent changes, until interrupted.
pub fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let mut dev = ctx.device()?;
    let http = Http::new()?;
    let targets = dev.live_targets()?;
    if targets.is_empty() {
        return Err(SyncError::NoRelay.into());
    }
    ctx.out.line(
        "Watching for changes; press Ctrl-C to stop. Changes made here are sent as you make them.",
    )?;
    // Ctrl-C is how it is stopped: an ordinary end, as `duet app`'s.
    let quiet = ctx.out.quiet || ctx.out.json;
    let (home, clock) = (ctx.home.clone(), ctx.clock);
    crate::interrupt::signal_ends_well(move || (!quiet).then(|| stopped(&home, clock)));
    let seen = dev.data_version()?;
    // The first sync comes before the sockets open, and does not wait for their first
    // message: the spaces of a home set up offline exist on the relay only once it has
    // pushed them (sockets opened before were refused as "no such space", and the
    // watcher stopped), and a socket the relay refuses (too many open) or a proxy that
    // never upgrades left what waited here unsent until the periodic sync, 15 s on.
    let mut failure_said = Said::default();
    let (more, failed) = sync_once(ctx, &mut dev, &http, &mut failure_said)?;
    let targets = match dev.live_targets()? {
        t if t.is_empty() => targets, // left meanwhile: the sockets are refused, and said
        t => t,
    };
    let mut rx = listen(&dev, &targets);
    let mut w = Watch {
        last_sync: std::time::Instant::now(),
        failed,
        failure_said,
        listening: targets.len(),
        lost: false,
        up: Vec::new(),
        targets,
        retarget: None,
        reopen: None,
        more,
        seen,
        refused: Vec::new(),
    };
    loop {
        let mut due = match rx.recv_timeout(LOCAL_CHECK) {
            Ok(signal) => w.on_signal(ctx, signal)?,
            Err(RecvTimeoutError::Timeout) => w.on_quiet(&mut dev)?,
            // Every socket refused, to be opened again: the checks go on at their pace.
            Err(RecvTimeoutError::Disconnected) if w.reopen.is_some() => {
                std::thread::sleep(LOCAL_CHECK);
                w.on_quiet(&mut dev)?
            }
            Err(RecvTimeoutError::Disconnected) => {
                anyhow::bail!("every live connection stopped; run `duet sync --watch` again")
            }
        };
        if let Some(targets) = w.retarget.take() {
            rx = listen(&dev, &targets);
            (w.listening, w.up) = (targets.len(), Vec::new());
            if targets != w.targets {
                ctx.out
                    .line(format!("Listening at {} now.", targets[0].relay))?;
            }
            w.targets = targets;
            due = true;
        }
        if due {
            // Several signals may be queued: one sync covers them all.
            (w.more, w.failed) = sync_once(ctx, &mut dev, &http, &mut w.failure_said)?;
            w.last_sync = std::time::Instant::now();
            w.after_refusals(&dev)?;
        }
        // `seen` is not read again after a sync: this device's own commits do not move
        // its data_version, and a `duet` command that commits during the sync must
        // still be noticed at the next check.
    }
}

/// What a watch stopped with a signal says: what another process wrote just before (or
/// made while the relay was out of reach) may be unsent, and nobody should close the
/// laptop believing it went out.
fn stopped(home: &std::path::Path, clock: duet_core::clock::Clock) -> String {
    let unsent = Device::open_with(home, clock)
        .and_then(|d| d.unsent())
        .map_or(0, |u| u.events);
    match unsent {
        0 => "Stopped watching.".to_string(),
        n => format!(
            "Stopped watching. {} of this device {} not reached the relay yet: run `duet \
             sync` to send {}.",
            duet_core::words::count(n, "change", "changes"),
            if n == 1 { "has" } else { "have" },
            if n == 1 { "it" } else { "them" }
        ),
    }
}

impl Watch {
    /// Reacts to a live socket's signal; true when a sync is due.
    fn on_signal(&mut self, ctx: &Ctx, signal: Signal) -> anyhow::Result<bool> {
        match signal {
            Signal::Moved => return Ok(true),
            Signal::Connected(kind) => {
                if !self.up.contains(&kind) {
                    self.up.push(kind);
                }
                // Back once every socket is: the relay is one for both spaces, and the
                // first socket back named its space as if the other were not still down.
                if self.up.len() >= self.listening {
                    self.reopen = None;
                    if std::mem::take(&mut self.lost) {
                        ctx.out.line("Connected to the relay again.")?;
                    }
                }
            }
            Signal::Lost {
                space,
                error,
                answered,
                retry_in,
            } => {
                self.up.retain(|k| *k != space);
                // Said once: of the relay when it was lost (its stop is every space's),
                // of the space when the relay refused that space's socket for now.
                if !self.lost {
                    let whose = match answered {
                        true => format!(" ({} space)", space.as_str()),
                        false => String::new(),
                    };
                    note(&format!(
                        "warning{whose}: {error}; reconnecting (next try in {} s), and \
                         syncing every {} s meanwhile",
                        retry_in.as_secs_f64(),
                        POLL_WHILE_DOWN.as_secs()
                    ));
                }
                self.lost = true;
            }
            // A sync learns why (this device left or was removed, say) and says it.
            Signal::Refused(kind, msg) => {
                self.up.retain(|k| *k != kind);
                self.refused.push((kind, msg));
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// After a sync: the refused sockets of spaces this device is still in are warned
    /// about (those it departed the sync has said); an error when nothing is left to
    /// watch.
    fn after_refusals(&mut self, dev: &Device) -> anyhow::Result<()> {
        if self.refused.is_empty() {
            return Ok(());
        }
        let targets = dev.live_targets()?;
        for (kind, msg) in std::mem::take(&mut self.refused) {
            self.listening = self.listening.saturating_sub(1);
            if !targets.iter().any(|t| t.kind == kind) {
                continue;
            }
            // Still a member: the relay may be put right (its operator restarted it on
            // the wrong database, say). Said once while it lasts; tried again and synced
            // meanwhile, and "connected to the relay again" once it is back.
            let said = format!(
                "warning ({} space): live connection refused: {msg}",
                kind.as_str()
            );
            let next = std::time::Instant::now() + POLL_WHILE_DOWN;
            let (at, told) = self.reopen.get_or_insert_with(|| (next, Vec::new()));
            *at = next;
            if !told.contains(&said) {
                note(&format!(
                    "{said}; trying again every {} s, and syncing meanwhile (check `duet \
                     status` and the relay URL)",
                    POLL_WHILE_DOWN.as_secs()
                ));
                told.push(said);
            }
            self.lost = true;
        }
        if targets.is_empty() {
            // A failure, as `duet sync`'s in that state: a service that restarts the
            // watch must learn that nothing will ever sync here again.
            return Err(super::sync::in_no_space());
        }
        Ok(())
    }

    /// Between signals: a sync is due when a sync stopped early, when another process
    /// committed and left something unsent, or every [`POLL_WHILE_DOWN`] while a live
    /// socket is not open (lost, or still opening) or the last sync failed.
    fn on_quiet(&mut self, dev: &mut Device) -> anyhow::Result<bool> {
        // Started on a full disk, the device is a copy that never sees the disk freed
        // nor another command's write: opened again (a new connection, whose count is
        // its own), it syncs at once what waited.
        let reopened = dev.reopen_if_writable().unwrap_or(false);
        let now = dev.data_version()?;
        let changed = reopened || now != self.seen;
        self.seen = now;
        if changed {
            // A relay set by another command: listen there (a space left is said by
            // the sync, and its socket is refused).
            let targets = dev.live_targets()?;
            if !targets.is_empty() && targets.iter().any(|t| !self.targets.contains(t)) {
                self.retarget = Some(targets);
            }
        }
        if self
            .reopen
            .as_ref()
            .is_some_and(|(at, _)| *at <= std::time::Instant::now())
        {
            self.retarget = Some(dev.live_targets()?).filter(|t| !t.is_empty());
            if let Some((at, _)) = &mut self.reopen {
                *at = std::time::Instant::now() + POLL_WHILE_DOWN;
            }
        }
        let down = self.up.len() < self.listening || self.reopen.is_some();
        // A clock the last sync found wrong is measured again as often: set right, the
        // next sync lets the person rate again.
        let poll = self.last_sync.elapsed() >= POLL_WHILE_DOWN
            && (down || self.failed || dev.ensure_clock_agrees().is_err());
        Ok(std::mem::take(&mut self.more) || poll || reopened || (changed && dev.has_unsent()?))
    }
}

/// Drops from `reports` the warnings the sync before said too (`said`, which becomes
/// this sync's): a device without the space's key said the same three every 15 s.
fn drop_said_again(
    reports: &mut [(duet_core::store::SpaceKind, duet_core::sync::SyncReport)],
    said: &mut Vec<(duet_core::store::SpaceKind, duet_core::advice::Warning)>,
) {
    let now: Vec<_> = reports
        .iter()
        .flat_map(|(k, r)| r.warnings.iter().map(move |w| (*k, w.clone())))
        .collect();
    for (k, r) in reports.iter_mut() {
        r.warnings
            .retain(|w| !said.iter().any(|(sk, sw)| sk == k && sw == w));
    }
    *said = now;
}

/// What the watch's syncs said that is said once while it lasts: the failure said last,
/// while syncs keep failing the same way, and the warnings of the last sync.
#[derive(Default)]
struct Said {
    failure: Option<String>,
    warnings: Vec<(duet_core::store::SpaceKind, duet_core::advice::Warning)>,
    /// What to do without a space's key was said (again once a sync has the key).
    no_key: bool,
}

/// One sync, reported; returns whether it stopped early and should read on, and whether
/// it failed (only noted: it is tried again). A failure the same as the one said last
/// is not said again (a laptop offline all evening would print it every 15 s); the
/// first sync after a failure says it went through.
fn sync_once(
    ctx: &Ctx,
    dev: &mut Device,
    http: &Http,
    said: &mut Said,
) -> anyhow::Result<(bool, bool)> {
    let failure_said = &mut said.failure;
    // Started while the home could not be written (a full disk, a read-only mount), the
    // device is a copy in memory: opened again once the home takes writes, or every
    // sync would fail as the first did, long after the disk was freed.
    let _ = dev.reopen_if_writable();
    match dev.sync(http) {
        Ok(mut reports) => {
            if failure_said.take().is_some() {
                note("the sync goes through again");
            }
            drop_said_again(&mut reports, &mut said.warnings);
            super::sync::print_reports(ctx, &reports)?;
            // As `duet sync` says it: no later sync mends it.
            let lacks_key = super::sync::lacks_key(&reports);
            if lacks_key && !said.no_key {
                note(&format!(
                    "note: this device cannot read what is written there now; {}",
                    super::sync::NO_KEY_ADVICE
                ));
            }
            said.no_key = lacks_key;
            super::sync::note_merged_texts(dev, &reports)?;
            for (kind, r) in &reports {
                if let Some(m) = &r.push_refused {
                    note(&format!(
                        "warning ({} space): the relay refused this device's changes ({}); they are kept here",
                        kind.as_str(),
                        crate::advice::warning(m)
                    ));
                }
            }
            Ok((reports.iter().any(|(_, r)| r.incomplete), false))
        }
        Err(e) => {
            let said = crate::advice::message(&e);
            if failure_said.as_deref() != Some(said.as_str()) {
                note(&format!(
                    "warning: sync did not finish ({said}); trying again every {} s and at every \
                     change, without saying it again until it goes through or fails otherwise",
                    POLL_WHILE_DOWN.as_secs()
                ));
                *failure_said = Some(said);
            }
            Ok((false, true))
        }
    }
}

#[cfg(test)]
mod tests {
    use duet_core::advice::Warning;
    use duet_core::store::SpaceKind;
    use duet_core::sync::SyncReport;

    fn warning(text: &str) -> (SpaceKind, SyncReport) {
        let mut r = SyncReport::default();
        r.warnings.push(Warning::new(text));
        (SpaceKind::Shared, r)
    }

    #[test]
    fn a_warning_is_said_again_only_after_a_sync_without_it() {
        let mut said = Vec::new();
        let mut first = vec![warning("no key for epoch 3")];
        super::drop_said_again(&mut first, &mut said);
        assert_eq!(first[0].1.warnings.len(), 1, "said the first time");
        let mut second = vec![warning("no key for epoch 3")];
        super::drop_said_again(&mut second, &mut said);
        assert!(second[0].1.warnings.is_empty(), "not again while it lasts");
        let mut quiet = vec![(SpaceKind::Shared, SyncReport::default())];
        super::drop_said_again(&mut quiet, &mut said);
        let mut back = vec![warning("no key for epoch 3")];
        super::drop_said_again(&mut back, &mut said);
        assert_eq!(back[0].1.warnings.len(), 1, "said again once it came back");
    }
}
