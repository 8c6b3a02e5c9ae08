//! The CLI scenario (DESIGN.md): partner A makes N small edits offline (GAS ratings),
//! then syncs through a real relay process; partner B, on a fresh device, joins. Then the
//! read commands, one `rate` and one `reflect` run on B's store, beside Automerge's own
//! load time and compressed size of the same document.

use std::process::Command;
use std::time::Instant;

use duet_core::Level;
use duet_core::device::Device as CoreDevice;
use duet_core::ids::now_ms;
use duet_core::store::SpaceKind;
use duet_tests::{Device, Relay, bin};

use crate::figures::Figures;

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

fn run(d: &Device, args: &[&str]) -> f64 {
    let t = Instant::now();
    let out = Command::new(bin("duet"))
        .args(args)
        .env("DUET_HOME", &d.home)
        .output()
        .expect("duet runs");
    assert!(
        out.status.success(),
        "duet {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    secs(t)
}

/// A store with `n` offline ratings on partner A's device, ready to be measured.
pub struct Prepared {
    n: usize,
    relay: Relay,
    a: Device,
    b: Device,
    code: String,
    /// Seconds the offline edits took.
    edit: f64,
    /// Automerge's compressed `save()` of A's document.
    saved: Vec<u8>,
}

/// Runs the scenario with `n` offline ratings; figures are named `cli_{n}_...`.
pub fn run_scenario(n: usize, figs: &mut Figures) {
    let p = prepare(n);
    measure(p, figs, true);
}

/// Makes partner A's `n` offline ratings (one Automerge change each, committed through
/// the engine in batches of 1,000) and B's empty device.
pub fn prepare(n: usize) -> Prepared {
    println!("== CLI scenario: preparing {n} offline ratings ==");
    let relay = Relay::start();
    let a = Device::new();
    let b = Device::new();
    run(&a, &["init", "--name", "Alex", "--relay", &relay.url]);
    run(
        &a,
        &[
            "goal",
            "add",
            "Daily appreciation",
            "--area",
            "emotional-support",
        ],
    );
    let code = String::from_utf8(
        Command::new(bin("duet"))
            .args(["invite", "--quiet"])
            .env("DUET_HOME", &a.home)
            .output()
            .expect("invite")
            .stdout,
    )
    .expect("utf-8");
    let code = code.trim().to_string();

    // 1. N offline edits, one Automerge change each, committed in batches of 1,000.
    let t = Instant::now();
    let edit;
    let saved;
    {
        let mut dev = CoreDevice::open(&a.home).expect("open");
        let (_, doc, _) = dev.load(SpaceKind::Shared).expect("load");
        let goal = doc.goals().expect("goals")[0].id.clone();
        let mut done = 0;
        while done < n {
            let batch = (n - done).min(1000);
            dev.edit(SpaceKind::Shared, |doc, me| {
                let mut changes = Vec::new();
                for i in 0..batch {
                    let level = Level::try_from(((done + i) % 5) as i64 - 2).expect("level");
                    changes.extend(doc.rate(&goal, &me.person_id, level, None, now_ms())?.1);
                }
                Ok(((), changes))
            })
            .expect("ratings");
            done += batch;
        }
        edit = secs(t);
        let (_, doc, _) = dev.load(SpaceKind::Shared).expect("load");
        saved = doc.save();
    }
    Prepared {
        n,
        relay,
        a,
        b,
        code,
        edit,
        saved,
    }
}

/// `duet app` on a store: its Today and goal pages (median of five after a first
/// request, timed from the request to the whole answer over loopback, so essentially
/// the server's time) and its resident memory once they were served.
struct AppFigures {
    today: f64,
    goal: f64,
    rss_mb: Option<f64>,
}

fn app_figures(d: &Device) -> AppFigures {
    let app = duet_tests::app::App::start(d);
    let median = |path: &str| -> f64 {
        let first = app.get(path);
        assert_eq!(first.status, 200, "{path}: {}", first.body);
        let mut times: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                let a = app.get(path);
                assert_eq!(a.status, 200, "{path}");
                secs(t)
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times[2]
    };
    let goal_path = app.first_goal_link();
    let today = median("/");
    let goal = median(&goal_path);
    let rss_mb = std::fs::read_to_string(format!("/proc/{}/status", app.pid()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0);
    AppFigures {
        today,
        goal,
        rss_mb,
    }
}

/// Measures a prepared store: Automerge's own load and size, reopening A's store, A's
/// A rating made by a process that already holds the document (`sync --watch`, `duet
/// app`): the median of five, after a first write that loads it.
fn in_memory_rate(home: &std::path::Path) -> f64 {
    let mut dev = CoreDevice::open(home).expect("open");
    let level = |l: i64| Level::try_from(l).expect("level");
    dev.rate("Daily appreciation", level(0), None)
        .expect("first rate");
    let mut times: Vec<f64> = (0..5)
        .map(|i| {
            let t = Instant::now();
            dev.rate("Daily appreciation", level(i % 5 - 2), None)
                .expect("rate");
            secs(t)
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[2]
}

/// push, B's join, B's read commands, one `rate` and one `reflect`. The offline-edit time is reported
/// only with `report_edits` (not when the store was prepared while something else ran).
pub fn measure(p: Prepared, figs: &mut Figures, report_edits: bool) {
    let Prepared {
        n,
        relay,
        a,
        b,
        code,
        edit,
        saved,
    } = p;
    println!("== CLI scenario: {n} offline ratings ==");
    let save_bytes = saved.len();
    let t = Instant::now();
    let _ = automerge::Automerge::load(&saved).expect("loads");
    let am_load = secs(t);

    // 2. Reopening A's store (snapshot + tail).
    let t = Instant::now();
    let dev = CoreDevice::open(&a.home).expect("open");
    let (_, _, stats) = dev.load(SpaceKind::Shared).expect("load");
    let reopen = secs(t);
    drop(dev);

    // 3. A pushes everything.
    let relay_changes = || -> (i64, i64) {
        rusqlite::Connection::open(&relay.db)
            .expect("relay db")
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(bytes)), 0) FROM events WHERE kind = 'changes'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("sizes")
    };
    let (events_before, bytes_before) = relay_changes();
    let push = run(&a, &["sync"]);
    let (events_after, bytes_after) = relay_changes();
    let (events, wire) = (events_after - events_before, bytes_after - bytes_before);

    // 4. B joins fresh and pulls everything: every event of the space, membership too.
    let join = run(&b, &["join", &code, "--name", "Sam"]);
    let join_bytes: i64 = rusqlite::Connection::open(&relay.db)
        .expect("relay db")
        .query_row(
            "SELECT COALESCE(SUM(LENGTH(bytes)), 0) FROM events WHERE space =
               (SELECT space FROM events WHERE kind = 'changes'
                GROUP BY space ORDER BY SUM(LENGTH(bytes)) DESC LIMIT 1)",
            [],
            |r| r.get(0),
        )
        .expect("sizes");

    // 5. Read commands on B's store.
    let history = run(&b, &["history", "--json"]);
    let progress = run(&b, &["progress", "--json"]);
    let progress_text = run(&b, &["progress"]);
    let list = run(&b, &["goal", "list"]);
    let history50 = run(&b, &["history", "--limit", "50"]);
    let status = run(&b, &["status"]);
    let rate = run(&b, &["rate", "Daily appreciation", "1"]);
    let reflect = run(&b, &["reflect", "We walked after dinner and talked"]);
    // One-shot syncs with nothing new to pull: the first sends that rating.
    let sync_sends = run(&b, &["sync"]);
    let sync_idle = run(&b, &["sync"]);
    let kept = in_memory_rate(&b.home);
    let app = app_figures(&b);

    let f = |m: &str| format!("cli_{n}_{m}");
    if report_edits {
        figs.add(&f("offline_edit_per_change"), edit * 1e6 / n as f64, "us");
    }
    figs.add(&f("reopen_store"), reopen, "s");
    figs.add(
        &f("reopen_replayed_changes"),
        stats.replayed_changes as f64,
        "changes",
    );
    figs.add(&f("push"), push, "s");
    figs.add(&f("backlog_events"), events as f64, "events");
    figs.add(&f("wire_bytes"), wire as f64, "bytes");
    figs.add(&f("wire_bytes_per_change"), wire as f64 / n as f64, "bytes");
    figs.add(&f("automerge_save_bytes"), save_bytes as f64, "bytes");
    figs.add(&f("join"), join, "s");
    figs.add(&f("join_bytes"), join_bytes as f64, "bytes");
    figs.add(&f("history_json"), history, "s");
    figs.add(&f("progress_json"), progress, "s");
    figs.add(&f("progress"), progress_text, "s");
    figs.add(&f("goal_list"), list, "s");
    figs.add(&f("history_limit_50"), history50, "s");
    figs.add(&f("status"), status, "s");
    figs.add(&f("rate"), rate, "s");
    figs.add(&f("reflect"), reflect, "s");
    figs.add(&f("rate_in_long_running_process"), kept, "s");
    figs.add(&f("sync_sending_a_rating"), sync_sends, "s");
    figs.add(&f("sync_nothing_new"), sync_idle, "s");
    figs.add(&f("automerge_load"), am_load, "s");
    figs.add(&f("app_today"), app.today, "s");
    figs.add(&f("app_goal_page"), app.goal, "s");
    if let Some(mb) = app.rss_mb {
        figs.add(&f("app_rss_at_rest"), mb, "MB");
    }
    for (m, v) in [
        ("wire_bytes", wire as f64 / save_bytes as f64),
        ("join", join / am_load),
        ("goal_list", list / am_load),
        ("progress_json", progress / am_load),
        ("progress", progress_text / am_load),
        ("history_limit_50", history50 / am_load),
        ("status", status / am_load),
        ("rate", rate / am_load),
        ("reflect", reflect / am_load),
        ("sync_sending_a_rating", sync_sends / am_load),
        ("sync_nothing_new", sync_idle / am_load),
        ("app_today", app.today / am_load),
        ("app_goal_page", app.goal / am_load),
    ] {
        let over = if m == "wire_bytes" {
            "automerge_save_bytes"
        } else {
            "automerge_load"
        };
        figs.add(&f(&format!("{m}_over_{over}")), v, "ratio");
    }
}
