//! Ctrl-C, SIGTERM and SIGHUP in the command line's commands (not `duet app`, which
//! stops its server itself): a command stops at once, except between a write's start
//! and the words that report it. Killed there, a `rate` exited 130 with its rating saved
//! and unsaid, and the person who tried again rated twice: a signal that comes while a
//! write is held now waits until the command has said what it saved, then stops it.
//! A command can also leave something to remove on the way out (`duet demo`'s folders),
//! or make the signal its ordinary end (`duet sync --watch`, stopped with Ctrl-C).

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use duet_core::device::{Device, DeviceError};

/// What a signal finds when it comes.
struct State {
    /// Writes held (see [`Held`]).
    held: usize,
    /// The exit code of a signal that came while a write was held.
    pending: Option<i32>,
    /// Folders to remove when a signal stops the command.
    remove: Vec<PathBuf>,
    /// Set when a signal is the command's ordinary end: what gives the line it prints
    /// then (if any), and it exits 0.
    ends_well: Option<Box<dyn Fn() -> Option<String> + Send>>,
}

static STATE: Mutex<State> = Mutex::new(State {
    held: 0,
    pending: None,
    remove: Vec::new(),
    ends_well: None,
});

fn state() -> MutexGuard<'static, State> {
    STATE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Listens for the signals on a thread of its own. A signal before it listens ends the
/// process as the system does (nothing is written before it returns).
pub fn install() {
    let listening = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                use tokio::signal::unix::SignalKind;
                // A signal ignored when the process started stays ignored (`nohup duet
                // sync --watch &`, a background job's SIGINT): listening for it would
                // let it stop the command.
                let ignored = ignored_at_start();
                let listen = |number: u32, kind: SignalKind| {
                    let ignored = ignored & (1 << (number - 1)) != 0;
                    (!ignored)
                        .then(|| tokio::signal::unix::signal(kind).ok())
                        .flatten()
                };
                let mut int = listen(2, SignalKind::interrupt());
                let mut term = listen(15, SignalKind::terminate());
                let mut hup = listen(1, SignalKind::hangup());
                let _size = survive_file_size_limit();
                let _ = listening.0.send(());
                loop {
                    let code = tokio::select! {
                        _ = next(&mut int) => 130,
                        _ = next(&mut term) => 143,
                        _ = next(&mut hup) => 129,
                    };
                    on_signal(code);
                }
            });
        });
    // Returns once the signals are listened for, so that a write never starts before.
    if spawned.is_ok() {
        let _ = listening.1.recv();
    }
}

/// Handles SIGXFSZ (in the tokio runtime it is called in), whose default action kills
/// the process silently: a write past the file-size limit (`ulimit -f`) then fails
/// (EFBIG) and is said as an error. Killed, a `reflect` had printed "Saved" and exited
/// 153, and `status` died without a word. Kept for the process's life (the handler
/// stays even if the stream is dropped).
pub fn survive_file_size_limit() -> Option<tokio::signal::unix::Signal> {
    #[cfg(any(target_os = "linux", target_os = "macos"))]
    {
        /// SIGXFSZ on Linux (x86, ARM) and macOS.
        const SIGXFSZ: i32 = 25;
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(SIGXFSZ)).ok()
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    None
}

/// The next signal of `s`; never, without it.
async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// The signals ignored when the process started, as the kernel says them (bit n - 1 for
/// signal n; none where /proc does not say).
fn ignored_at_start() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("SigIgn:"))
                .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        })
        .unwrap_or(0)
}

fn on_signal(code: i32) {
    let mut s = state();
    if s.held > 0 {
        s.pending.get_or_insert(code);
        return;
    }
    // The state stays locked: a write cannot start while the process ends.
    stop(&mut s, code)
}

fn stop(s: &mut State, code: i32) -> ! {
    for dir in &s.remove {
        remove_now(dir);
    }
    let mut out = std::io::stdout().lock();
    if let Some(say) = &s.ends_well {
        if let Some(line) = say() {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
        std::process::exit(0);
    }
    let _ = out.flush();
    std::process::exit(code)
}

/// Removes `dir` while other threads may still write there (the demo's embedded relay,
/// a partner's home being made): a file added during the removal failed it as not empty
/// (five quick tries were not enough on a loaded machine). The folder is renamed first,
/// so that what is written by path no longer lands in it, then removed, again until a
/// deadline, and so is the path itself if a thread made it anew.
fn remove_now(dir: &std::path::Path) {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    let aside = name.map(|n| dir.with_file_name(format!(".{n}-removed")));
    let aside = aside.filter(|a| std::fs::rename(dir, a).is_ok());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let left: Vec<&std::path::Path> = [Some(dir), aside.as_deref()]
            .into_iter()
            .flatten()
            .filter(|d| std::fs::remove_dir_all(d).is_err() && d.exists())
            .collect();
        if left.is_empty() || std::time::Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A write held against signals, until dropped: after the command said what it wrote.
#[must_use = "the write is held until this is dropped"]
pub struct Held(());

impl Drop for Held {
    fn drop(&mut self) {
        let mut s = state();
        s.held = s.held.saturating_sub(1);
        if s.held == 0
            && let Some(code) = s.pending
        {
            stop(&mut s, code);
        }
    }
}

/// Runs a write `f` under the home's lock (waiting for it can still be interrupted),
/// and holds signals from then on until the returned [`Held`] is dropped: keep it
/// until the write has been reported.
pub fn saving<T, E: From<DeviceError>>(
    dev: &mut Device,
    f: impl FnOnce(&mut Device) -> Result<T, E>,
) -> Result<(T, Held), E> {
    dev.exclusively(|dev| {
        let held = hold();
        Ok((f(dev)?, held))
    })
}

/// Holds signals until the returned [`Held`] is dropped, for a write that takes no
/// home lock (a file written beside: a signal would leave its temporary file behind).
pub fn hold() -> Held {
    state().held += 1;
    Held(())
}

/// `dir` is no longer removed if a signal stops the command (it is kept on purpose).
pub fn keep_on_stop(dir: &std::path::Path) {
    state().remove.retain(|d| d != dir);
}

/// `dir` is removed if a signal stops the command.
pub fn remove_on_stop(dir: PathBuf) {
    state().remove.push(dir);
}

/// A signal is this command's ordinary end: it prints the line `say` gives then (if
/// any) and exits 0.
pub fn signal_ends_well(say: impl Fn() -> Option<String> + Send + 'static) {
    state().ends_well = Some(Box::new(say));
}
