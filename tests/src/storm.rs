//! The many-processes storm of issue 12: on one home with a partner and a relay, W `duet`
//! processes write at once for R rounds, each running a seeded random mix of `rate`,
//! `reflect`, `reflect --private`, `step add`, `goal edit` and `sync`, beside one
//! `sync --watch` on the same home and a partner who writes and syncs on the other side.
//! Every command's text carries a unique marker, so afterwards each change can be looked
//! for in both partners' `export --json`.
//!
//! The verdict is a list of problems (empty when the storm lost nothing):
//!
//! - no command, watcher line or final sync mentions a document error;
//! - a command that exited 0 has its marker exactly once in this device's export and,
//!   after this device closes the check-in round (so every blind rating is revealed, as
//!   for a couple that shares openly) and a final sync on both sides, in the partner's
//!   (a private reflection only on this device, never on the partner's);
//! - a command that exited non-zero is allowed only when it says another duet command
//!   held the home's write lock for the whole bounded wait, and then it changed nothing
//!   (its marker is in neither export); any other failure is a problem;
//! - both stores pass `PRAGMA integrity_check`, and a write after the storm works and
//!   reaches the partner.
//!
//! `tests/many_processes.rs` runs it at [`Size::ci`]; the benchmark harness runs it at
//! [`Size::full`] with 1, 2, 4 and 8 writers and reports commands per second.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc::channel;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How many processes write at once, and how many commands each runs.
#[derive(Clone, Copy, Debug)]
pub struct Size {
    /// Concurrent writer processes.
    pub writers: usize,
    /// Commands each writer runs, one after another.
    pub rounds: usize,
}

impl Size {
    /// What `cargo test` runs: eight processes, a few rounds (seconds in a debug build).
    pub fn ci() -> Size {
        Size {
            writers: 8,
            rounds: 5,
        }
    }

    /// Issue 12's acceptance size, run by the benchmark harness: 8 writers x 20 rounds.
    pub fn full() -> Size {
        Size {
            writers: 8,
            rounds: 20,
        }
    }
}

/// Overrides the seed of the command mix (decimal or 0x-hex), to replay a failing run.
pub const SEED_ENV: &str = "DUET_STORM_SEED";

/// The seed of the command mix: `DUET_STORM_SEED`, else a fixed one.
pub fn seed() -> u64 {
    std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| match s.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => s.parse().ok(),
        })
        .unwrap_or(0x5eed_d0e7_0012)
}

/// Options for the storm's relay: no per-address or per-device request rate. The storm
/// is about one home's local processes; with the relay's default rate (20 requests per
/// second per device) its syncs would sleep out `Retry-After`, and the harness's figure
/// would measure the relay's limit instead of the home's write lock.
pub const RELAY_OPTIONS: [&str; 4] = ["--rate-per-ip", "0", "--rate-per-device", "0"];

/// The phrase of the lock's bounded-wait failure (core/src/lock.rs, `LockError::Busy`)
/// and of its waiting notice: the one failure a storm command is allowed.
pub const LOCK_BUSY: &str = "another duet command";

/// Text that means the document or the store broke (issue 12's symptoms).
const DOCUMENT_ERRORS: [&str; 3] = ["duplicate seq", "derive a clock", "document error"];

/// Longer than the lock's default wait (60 s), so a timed-out command reports itself
/// before the storm gives up on it.
const COMMAND_DEADLINE: Duration = Duration::from_secs(120);

/// How long the watcher may take to start and to hand back its output after it is stopped.
const WATCH_DEADLINE: Duration = Duration::from_secs(60);

/// A tiny xorshift64: deterministic per seed, and no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // xorshift never leaves zero; mix the seed so that small seeds differ at once.
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What a storm command does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `rate GOAL LEVEL --note MARKER`
    Rate,
    /// `reflect MARKER`
    Reflect,
    /// `reflect --private MARKER`
    PrivateReflect,
    /// `step add GOAL MARKER`
    StepAdd,
    /// `goal edit GOAL --why MARKER` (on a goal no other command edits, so that the
    /// marker must survive: the why is last-writer-wins)
    GoalEdit,
    /// `sync`
    Sync,
}

const KINDS: [Kind; 6] = [
    Kind::Rate,
    Kind::Reflect,
    Kind::PrivateReflect,
    Kind::StepAdd,
    Kind::GoalEdit,
    Kind::Sync,
];

/// One command of the storm and what it did.
#[derive(Debug)]
pub struct Done {
    /// Which writer ran it (`None`: the partner).
    pub writer: Option<usize>,
    /// Its place in that writer's sequence.
    pub round: usize,
    /// What it does.
    pub kind: Kind,
    /// The unique text it writes (empty for `sync`).
    pub marker: String,
    /// The goal it rates, adds a step to or edits.
    pub goal: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// What it did.
    pub ran: Ran,
}

/// What a process did.
#[derive(Debug, Default)]
pub struct Ran {
    /// Exit code (-1: killed, did not start or did not finish in time).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Wall time, lock waits included.
    pub seconds: f64,
}

impl Ran {
    fn lock_busy(&self) -> bool {
        self.code != 0 && self.stderr.contains(LOCK_BUSY)
    }
}

/// What the storm did and what was wrong afterwards.
#[derive(Debug)]
pub struct Outcome {
    /// The size it ran at.
    pub size: Size,
    /// The seed of its command mix.
    pub seed: u64,
    /// The writers' commands.
    pub commands: Vec<Done>,
    /// The partner's commands during the storm.
    pub partner: Vec<Done>,
    /// Wall time from the writers' start until the last finished.
    pub seconds: f64,
    /// Everything the watcher printed.
    pub watcher: Vec<String>,
    /// What went wrong; empty when the storm lost nothing.
    pub problems: Vec<String>,
}

impl Outcome {
    /// The writers' commands per second of wall time.
    pub fn commands_per_second(&self) -> f64 {
        self.commands.len() as f64 / self.seconds.max(1e-9)
    }

    /// Writer commands that gave up after the lock's bounded wait.
    pub fn lock_timeouts(&self) -> usize {
        self.commands.iter().filter(|c| c.ran.lock_busy()).count()
    }

    /// One line: size, seed, counts and time.
    pub fn summary(&self) -> String {
        let ok = self.commands.iter().filter(|c| c.ran.code == 0).count();
        let slowest = self
            .commands
            .iter()
            .map(|c| c.ran.seconds)
            .fold(0.0, f64::max);
        format!(
            "{} writer{} x {} rounds (seed {:#x}): {} commands, {ok} exited 0, {} gave up waiting for the lock, {:.2} s ({:.1} cmd/s, slowest command {slowest:.2} s)",
            self.size.writers,
            if self.size.writers == 1 { "" } else { "s" },
            self.size.rounds,
            self.seed,
            self.commands.len(),
            self.lock_timeouts(),
            self.seconds,
            self.commands_per_second()
        )
    }

    /// The summary and the first problems, for an assertion message.
    pub fn report(&self) -> String {
        const SHOWN: usize = 40;
        let mut s = self.summary();
        s.push_str(&format!("\n{} problems:", self.problems.len()));
        for p in self.problems.iter().take(SHOWN) {
            s.push_str("\n- ");
            s.push_str(p);
        }
        if self.problems.len() > SHOWN {
            s.push_str(&format!("\n- ... and {} more", self.problems.len() - SHOWN));
        }
        s
    }
}

/// Processes that rate at once decide blind or clear, and whether to open a check-in
/// round, under the home's write lock: with no round closed during the storm, this
/// person opened at most one (two processes deciding from the same state open two).
fn one_round_opened_here(home: &Path, problems: &mut Vec<String>) {
    let opened = duet_core::device::Device::open(home).and_then(|mut d| {
        let me = d.me.person_id.to_string();
        let view = d.raw_view(duet_core::store::SpaceKind::Shared)?;
        Ok(view.rounds.iter().filter(|r| r.opened_by == me).count())
    });
    match opened {
        Ok(0 | 1) => {}
        Ok(n) => problems.push(format!(
            "this person opened {n} check-in rounds during the storm: ratings made at once decided from the same state"
        )),
        Err(e) => problems.push(format!("reading this device's rounds failed: {e}")),
    }
}

/// Runs the storm with the `duet` binary `duet` on `home`, whose partner's home is
/// `partner`; both are paired through a running relay. Adds its own goals first.
pub fn run(duet: &Path, home: &Path, partner: &Path, size: Size, seed: u64) -> Outcome {
    let mut problems = Vec::new();
    let plan = plan(size, seed);

    // The goals: one every rating, step and partner rating may use, and one per
    // `goal edit`, added before the storm and known to the partner.
    let mut titles = vec![COMMON_GOAL.to_string()];
    titles.extend(
        plan.iter()
            .filter(|p| p.kind == Kind::GoalEdit)
            .map(|p| p.goal.clone()),
    );
    for t in &titles {
        setup(duet, home, &["goal", "add", t, "--area", "quality-time"]);
    }
    setup(duet, home, &["sync"]);
    setup(duet, partner, &["sync"]);

    let watcher = crate::Watcher::start_with(duet, home);
    let start = Arc::new(Barrier::new(size.writers + 2));
    let mut writers = Vec::new();
    for w in 0..size.writers {
        let mine: Vec<Planned> = plan.iter().filter(|p| p.writer == w).cloned().collect();
        let (duet, home, start) = (duet.to_path_buf(), home.to_path_buf(), start.clone());
        writers.push(std::thread::spawn(move || {
            start.wait();
            mine.into_iter()
                .map(|p| p.run(&duet, &home))
                .collect::<Vec<_>>()
        }));
    }
    // The partner writes and syncs meanwhile, so this device's syncs and watcher apply
    // incoming changes while local writes commit.
    let partner_thread = {
        let (duet, partner, start) = (duet.to_path_buf(), partner.to_path_buf(), start.clone());
        std::thread::spawn(move || {
            start.wait();
            let mut done = Vec::new();
            for round in 0..size.rounds {
                let marker = format!("pt{seed:x}r{round:03}z");
                let (kind, args) = if round % 2 == 0 {
                    let level = ["-1", "0", "1"][round % 3].to_string();
                    (
                        Kind::Rate,
                        strings(&["rate", COMMON_GOAL, &level, "--note", &marker]),
                    )
                } else {
                    (Kind::Reflect, strings(&["reflect", &marker]))
                };
                for (kind, marker, args) in [
                    (kind, marker, args),
                    (Kind::Sync, String::new(), strings(&["sync"])),
                ] {
                    let ran = run_duet(&duet, &partner, &args);
                    done.push(Done {
                        writer: None,
                        round,
                        kind,
                        marker,
                        goal: COMMON_GOAL.into(),
                        args,
                        ran,
                    });
                }
            }
            done
        })
    };
    start.wait();
    let t = Instant::now();
    let mut commands = Vec::new();
    for w in writers {
        commands.extend(w.join().expect("a writer thread panicked"));
    }
    let seconds = t.elapsed().as_secs_f64();
    let partner_commands = partner_thread.join().expect("the partner thread panicked");
    let watcher = watcher.stop();

    for c in commands.iter().chain(&partner_commands) {
        let who = match c.writer {
            Some(w) => format!("writer {w} round {}", c.round),
            None => format!("partner round {}", c.round),
        };
        if let Some(e) = document_error(&c.ran.stdout).or(document_error(&c.ran.stderr)) {
            problems.push(format!(
                "{who}: duet {} reported a document error ({e}): {}",
                c.args.join(" "),
                c.ran.stderr.trim()
            ));
        } else if c.ran.code != 0 && !(c.writer.is_some() && c.ran.lock_busy()) {
            problems.push(format!(
                "{who}: duet {} exited {} without saying that {LOCK_BUSY} held the lock: {}",
                c.args.join(" "),
                c.ran.code,
                c.ran.stderr.trim()
            ));
        }
    }
    for line in &watcher {
        if let Some(e) = document_error(line) {
            problems.push(format!(
                "the watcher reported a document error ({e}): {line}"
            ));
        }
    }

    one_round_opened_here(home, &mut problems);
    // Ratings are made blind; closing the round reveals this device's at once and the
    // partner's on its next sync, so every rating can be looked for on both sides.
    let ran = run_duet(duet, home, &strings(&["checkin", "--close"]));
    if ran.code != 0 || document_error(&ran.stderr).is_some() {
        problems.push(format!(
            "closing the round on this device exited {}: {}",
            ran.code,
            ran.stderr.trim()
        ));
    }
    // Everything reaches both sides: the partner's last pushes, this device's writes
    // and the close, then the partner's reveals.
    for (h, side) in [
        (partner, "the partner"),
        (home, "this device"),
        (partner, "the partner"),
        (home, "this device"),
    ] {
        let ran = run_duet(duet, h, &strings(&["sync"]));
        if ran.code != 0 || document_error(&ran.stderr).is_some() {
            problems.push(format!(
                "the final sync on {side} exited {}: {}",
                ran.code,
                ran.stderr.trim()
            ));
        }
    }

    check_exports(
        duet,
        home,
        partner,
        &commands,
        &partner_commands,
        &mut problems,
    );
    for (h, side) in [(home, "this device"), (partner, "the partner")] {
        if let Err(e) = integrity_check(&h.join("duet.db")) {
            problems.push(format!("the store of {side} fails integrity_check: {e}"));
        }
    }
    after_the_storm(duet, home, partner, seed, &mut problems);

    Outcome {
        size,
        seed,
        commands,
        partner: partner_commands,
        seconds,
        watcher,
        problems,
    }
}

/// The goal every rating and step may use.
const COMMON_GOAL: &str = "Storm walk";

/// A command decided before the storm.
#[derive(Clone, Debug)]
struct Planned {
    writer: usize,
    round: usize,
    kind: Kind,
    marker: String,
    goal: String,
    level: i64,
}

/// The seeded mix: each writer's commands in order; a `goal edit` gets a goal of its own.
fn plan(size: Size, seed: u64) -> Vec<Planned> {
    let mut rng = Rng::new(seed);
    let mut plan = Vec::new();
    for w in 0..size.writers {
        for r in 0..size.rounds {
            // The first round covers every kind (with six writers or more), all started
            // at once; the rest is the seeded mix.
            let kind = if r == 0 {
                KINDS[w % KINDS.len()]
            } else {
                KINDS[rng.below(KINDS.len())]
            };
            let level = rng.below(5) as i64 - 2;
            plan.push(Planned {
                writer: w,
                round: r,
                kind,
                // The trailing `z` keeps `...r1z` from matching inside `...r10z`.
                marker: format!("st{seed:x}w{w:02}r{r:03}z"),
                goal: format!("Storm edit w{w} r{r}"),
                level,
            });
        }
    }
    // Ratings and steps land on the common goal or on any edited one.
    let edited: Vec<String> = plan
        .iter()
        .filter(|p| p.kind == Kind::GoalEdit)
        .map(|p| p.goal.clone())
        .collect();
    for p in plan.iter_mut().filter(|p| p.kind != Kind::GoalEdit) {
        let i = rng.below(edited.len() + 1);
        p.goal = edited.get(i).cloned().unwrap_or_else(|| COMMON_GOAL.into());
    }
    plan
}

impl Planned {
    fn args(&self) -> Vec<String> {
        let (m, g) = (self.marker.as_str(), self.goal.as_str());
        match self.kind {
            Kind::Rate => strings(&["rate", g, &self.level.to_string(), "--note", m]),
            Kind::Reflect => strings(&["reflect", m]),
            Kind::PrivateReflect => strings(&["reflect", "--private", m]),
            Kind::StepAdd => strings(&["step", "add", g, m]),
            Kind::GoalEdit => strings(&["goal", "edit", g, "--why", m]),
            Kind::Sync => strings(&["sync"]),
        }
    }

    fn run(self, duet: &Path, home: &Path) -> Done {
        let args = self.args();
        let ran = run_duet(duet, home, &args);
        Done {
            writer: Some(self.writer),
            round: self.round,
            kind: self.kind,
            marker: if self.kind == Kind::Sync {
                String::new()
            } else {
                self.marker
            },
            goal: self.goal,
            args,
            ran,
        }
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The document error `text` mentions, if any.
fn document_error(text: &str) -> Option<&'static str> {
    let lower = text.to_lowercase();
    DOCUMENT_ERRORS.into_iter().find(|e| lower.contains(e))
}

/// Runs `duet` on `home`, killing it (by its id) if it outlives [`COMMAND_DEADLINE`].
fn run_duet(duet: &Path, home: &Path, args: &[String]) -> Ran {
    let started = Instant::now();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = crate::duet_command(duet, home, &args).spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            return Ran {
                code: -1,
                stderr: format!("cannot start {}: {e}", duet.display()),
                ..Ran::default()
            };
        }
    };
    let pid = child.id();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(COMMAND_DEADLINE) {
        Ok(out) => out,
        Err(_) => {
            // The waiting thread still owns the unreaped child, so the id is still ours.
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            let _ = rx.recv_timeout(WATCH_DEADLINE);
            return Ran {
                code: -1,
                stderr: format!("did not finish within {COMMAND_DEADLINE:?}; killed"),
                seconds: started.elapsed().as_secs_f64(),
                ..Ran::default()
            };
        }
    };
    match out {
        Ok(o) => Ran {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            seconds: started.elapsed().as_secs_f64(),
        },
        Err(e) => Ran {
            code: -1,
            stderr: format!("waiting for duet failed: {e}"),
            ..Ran::default()
        },
    }
}

/// A preparation step that must work, storm or not.
#[track_caller]
fn setup(duet: &Path, home: &Path, args: &[&str]) -> String {
    let ran = run_duet(duet, home, &strings(args));
    assert_eq!(
        ran.code, 0,
        "duet {args:?} failed before the storm: {}",
        ran.stderr
    );
    ran.stdout
}

/// The texts of one export, by where they live.
#[derive(Default)]
struct Found {
    notes: Vec<String>,
    shared_reflections: Vec<String>,
    private_reflections: Vec<String>,
    steps: Vec<String>,
    whys: BTreeMap<String, String>,
    raw: String,
}

impl Found {
    fn of(v: &Value, raw: String) -> Found {
        let texts = |list: &Value, field: &str| -> Vec<String> {
            list.as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e[field].as_str().map(str::to_string))
                .collect()
        };
        let goals = v["shared"]["goals"].as_array().cloned().unwrap_or_default();
        Found {
            notes: texts(&v["shared"]["ratings"], "note"),
            shared_reflections: texts(&v["shared"]["reflections"], "text"),
            private_reflections: texts(&v["personal"]["reflections"], "text"),
            steps: goals
                .iter()
                .flat_map(|g| texts(&g["steps"], "text"))
                .collect(),
            whys: goals
                .iter()
                .filter_map(|g| Some((g["title"].as_str()?.into(), g["why"].as_str()?.into())))
                .collect(),
            raw,
        }
    }

    /// How often the change of `c` is in this export.
    fn count(&self, c: &Done) -> usize {
        let n = |list: &[String]| list.iter().filter(|t| **t == c.marker).count();
        match c.kind {
            Kind::Rate => n(&self.notes),
            Kind::Reflect => n(&self.shared_reflections),
            Kind::PrivateReflect => n(&self.private_reflections),
            Kind::StepAdd => n(&self.steps),
            Kind::GoalEdit => usize::from(self.whys.get(&c.goal) == Some(&c.marker)),
            Kind::Sync => 0,
        }
    }
}

/// `export --json` of `home`, or a problem.
fn export(duet: &Path, home: &Path, side: &str, problems: &mut Vec<String>) -> Option<Found> {
    let ran = run_duet(duet, home, &strings(&["export", "--json"]));
    if ran.code != 0 {
        problems.push(format!(
            "export --json on {side} exited {}: {}",
            ran.code,
            ran.stderr.trim()
        ));
        return None;
    }
    match serde_json::from_str::<Value>(&ran.stdout) {
        Ok(v) => Some(Found::of(&v, ran.stdout)),
        Err(e) => {
            problems.push(format!("export --json on {side} is not JSON: {e}"));
            None
        }
    }
}

fn check_exports(
    duet: &Path,
    home: &Path,
    partner: &Path,
    commands: &[Done],
    partner_commands: &[Done],
    problems: &mut Vec<String>,
) {
    let mine = export(duet, home, "this device", problems);
    let theirs = export(duet, partner, "the partner", problems);
    let history = run_duet(duet, home, &strings(&["history", "--json"]));
    if history.code != 0 {
        problems.push(format!(
            "history --json on this device exited {}: {}",
            history.code,
            history.stderr.trim()
        ));
    }
    for c in commands
        .iter()
        .chain(partner_commands)
        .filter(|c| c.kind != Kind::Sync)
    {
        let what = format!("duet {} (exit {})", c.args.join(" "), c.ran.code);
        let private = c.kind == Kind::PrivateReflect;
        for (found, side, expected) in [
            (&mine, "this device", usize::from(c.ran.code == 0)),
            (
                &theirs,
                "the partner",
                usize::from(c.ran.code == 0 && !private),
            ),
        ] {
            let Some(found) = found else { continue };
            let n = found.count(c);
            if n != expected {
                problems.push(format!(
                    "{what}: its change is in {side}'s export {n} times, expected {expected}"
                ));
            } else if expected == 0 && found.raw.contains(&c.marker) {
                problems.push(format!("{what}: its text is in {side}'s export"));
            }
        }
        if c.kind == Kind::Rate
            && c.ran.code == 0
            && history.code == 0
            && !history.stdout.contains(&c.marker)
        {
            problems.push(format!("{what}: its rating is missing from history --json"));
        }
    }
}

/// `PRAGMA integrity_check` of a SQLite database, read-only.
pub fn integrity_check(db: &Path) -> Result<(), String> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| format!("cannot open {}: {e}", db.display()))?;
    let rows: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| e.to_string())?;
    if rows == ["ok"] {
        Ok(())
    } else {
        Err(rows.join("; "))
    }
}

/// A rating after the storm is saved, syncs and reaches the partner (revealed by closing
/// the round, as a couple that shares openly does).
fn after_the_storm(
    duet: &Path,
    home: &Path,
    partner: &Path,
    seed: u64,
    problems: &mut Vec<String>,
) {
    let marker = format!("after{seed:x}z");
    let steps: [(&Path, Vec<String>); 4] = [
        (
            home,
            strings(&["rate", COMMON_GOAL, "1", "--note", &marker]),
        ),
        (home, strings(&["checkin", "--close"])),
        (home, strings(&["sync"])),
        (partner, strings(&["sync"])),
    ];
    for (h, args) in &steps {
        let ran = run_duet(duet, h, args);
        if ran.code != 0 {
            problems.push(format!(
                "after the storm, duet {} exited {}: {}",
                args.join(" "),
                ran.code,
                ran.stderr.trim()
            ));
            return;
        }
    }
    let arrived =
        export(duet, partner, "the partner", problems).is_some_and(|f| f.notes.contains(&marker));
    if !arrived {
        problems.push("a rating made after the storm did not reach the partner".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_plan_with_unique_markers_and_every_kind_at_once() {
        let size = Size::full();
        let one = plan(size, 7);
        let again = plan(size, 7);
        let kinds = |p: &[Planned]| {
            p.iter()
                .map(|c| (c.kind, c.goal.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(kinds(&one), kinds(&again));
        assert_ne!(kinds(&one), kinds(&plan(size, 8)));
        let markers: std::collections::BTreeSet<_> = one.iter().map(|c| &c.marker).collect();
        assert_eq!(markers.len(), size.writers * size.rounds);
        for k in KINDS {
            assert!(one.iter().any(|c| c.round == 0 && c.kind == k), "{k:?}");
        }
    }
}
