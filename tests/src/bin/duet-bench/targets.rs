//! Issue 6's targets, each a ratio of two figures measured in the same run.

use crate::figures::{Figures, show};

/// Which way a ratio must go.
#[derive(Clone, Copy)]
pub enum Bound {
    AtMost(f64),
    AtLeast(f64),
    Below(f64),
}

/// One target: `numerator / (scale x denominator)` against a bound.
pub struct Target {
    pub what: &'static str,
    pub numerator: String,
    pub denominator: Option<String>,
    pub scale: f64,
    pub bound: Bound,
}

/// The outcome of one target in this run.
pub struct Outcome {
    pub what: &'static str,
    pub figure: String,
    pub ratio: f64,
    pub bound: String,
    pub met: bool,
}

fn ratio(what: &'static str, num: &str, den: &str, scale: f64, bound: Bound) -> Target {
    Target {
        what,
        numerator: num.into(),
        denominator: Some(den.into()),
        scale,
        bound,
    }
}

/// The targets, for the largest CLI size `n` of the run.
pub fn targets(n: usize) -> Vec<Target> {
    let cli = |m: &str| format!("cli_{n}_{m}");
    let load = cli("automerge_load");
    vec![
        ratio(
            "relay ingest, 64 single-event pushers / 2-core verify_strict",
            "relay_ingest_c64",
            "verify_strict_one_core",
            2.0,
            Bound::AtLeast(0.5),
        ),
        ratio(
            "issue 18: relay on one core, 64 single-event pushers / one core's verify_strict",
            "pinned_relay_ingest_c64",
            "pinned_verify_strict_one_core",
            1.0,
            Bound::AtLeast(0.5),
        ),
        ratio(
            "issue 18: PostgreSQL single-event ingest (64 pushers) / SQLite's",
            "pg_relay_ingest_c64",
            "relay_ingest_c64",
            1.0,
            Bound::AtLeast(0.5),
        ),
        ratio(
            "issue 18: batched ingest, two instances on one PostgreSQL database / one",
            "pg_relay_batched_ingest_c4_two_instances",
            "pg_relay_batched_ingest_c4",
            1.0,
            Bound::AtLeast(1.6),
        ),
        ratio(
            "relay ingest, 64 single-event pushers / one fsync per event",
            "relay_ingest_c64",
            "fsync_per_event_baseline",
            1.0,
            Bound::AtLeast(4.0),
        ),
        ratio(
            "relay batched ingest (4 clients) / one-core batch verification",
            "relay_batched_ingest_c4",
            "batch_verify_one_core",
            1.0,
            Bound::AtLeast(0.8),
        ),
        ratio(
            "wire bytes for 10,000 offline ratings / Automerge's compressed save",
            "cli_10000_wire_bytes",
            "cli_10000_automerge_save_bytes",
            1.0,
            Bound::AtMost(1.25),
        ),
        ratio(
            "`goal list` / Automerge load",
            &cli("goal_list"),
            &load,
            1.0,
            Bound::AtMost(0.1),
        ),
        ratio(
            "`progress --json` / Automerge load",
            &cli("progress_json"),
            &load,
            1.0,
            Bound::AtMost(0.1),
        ),
        ratio(
            "`progress` / Automerge load",
            &cli("progress"),
            &load,
            1.0,
            Bound::AtMost(0.1),
        ),
        ratio(
            "`history --limit 50` / Automerge load",
            &cli("history_limit_50"),
            &load,
            1.0,
            Bound::AtMost(0.1),
        ),
        ratio(
            "`rate` / Automerge load",
            &cli("rate"),
            &load,
            1.0,
            Bound::AtMost(1.0),
        ),
        Target {
            what: "issue 18: a rating in a long-running process, largest store (s)",
            numerator: cli("rate_in_long_running_process"),
            denominator: None,
            scale: 1.0,
            bound: Bound::AtMost(0.01),
        },
        ratio(
            "join / Automerge load",
            &cli("join"),
            &load,
            1.0,
            Bound::AtMost(2.0),
        ),
        ratio(
            "Duet push time / samod push time (10,000 edits)",
            "cli_10000_push",
            "peer_10000_samod_push_seconds",
            1.0,
            Bound::Below(1.0),
        ),
        ratio(
            "Duet push bytes / samod push bytes (10,000 edits)",
            "cli_10000_wire_bytes",
            "peer_10000_samod_push_bytes",
            1.0,
            Bound::Below(1.0),
        ),
        ratio(
            "Duet fresh-device time / samod fresh-device time (10,000 edits)",
            "cli_10000_join",
            "peer_10000_samod_fresh_sync_seconds",
            1.0,
            Bound::Below(1.0),
        ),
        ratio(
            "Duet fresh-device bytes / samod fresh-device bytes (10,000 edits)",
            "cli_10000_join_bytes",
            "peer_10000_samod_fresh_sync_bytes",
            1.0,
            Bound::Below(1.0),
        ),
        Target {
            what: "issue 8: a rating on one watching device, until the partner's watcher prints it, slowest of 12, one SQLite relay (s)",
            numerator: "live_rating_to_partner_max".into(),
            denominator: None,
            scale: 1.0,
            bound: Bound::Below(1.0),
        },
        Target {
            what: "issue 8: the same across two relay instances on PostgreSQL (s)",
            numerator: "pg_live_rating_to_partner_max".into(),
            denominator: None,
            scale: 1.0,
            bound: Bound::Below(1.0),
        },
        Target {
            what: "relay peak RSS, 10,000 spaces x 100 events (MB)",
            numerator: "rss_10000_relay_peak_rss_after_reads".into(),
            denominator: None,
            scale: 1.0,
            bound: Bound::Below(100.0),
        },
        Target {
            what: "issue 18: relay peak RSS, 100,000 spaces x 10 events, default space cache (MB)",
            numerator: "rss_100000x10_relay_peak_rss_after_reads".into(),
            denominator: None,
            scale: 1.0,
            bound: Bound::Below(150.0),
        },
    ]
}

/// Evaluates every target whose figures this run measured, printing a ratio line each.
pub fn evaluate(figs: &mut Figures, n: usize) -> Vec<Outcome> {
    let mut out = Vec::new();
    for t in targets(n) {
        let Some(num) = figs.get(&t.numerator) else {
            continue;
        };
        let (ratio, figure) = match &t.denominator {
            Some(d) => {
                let Some(den) = figs.get(d).filter(|v| *v > 0.0) else {
                    continue;
                };
                let den_shown = if t.scale == 1.0 {
                    show(den)
                } else {
                    format!("({} x {})", show(t.scale), show(den))
                };
                (
                    num / (t.scale * den),
                    format!("{} / {den_shown}", show(num)),
                )
            }
            None => (num, show(num)),
        };
        let (met, bound) = match t.bound {
            Bound::AtMost(b) => (ratio <= b, format!("<= {}", show(b))),
            Bound::AtLeast(b) => (ratio >= b, format!(">= {}", show(b))),
            Bound::Below(b) => (ratio < b, format!("< {}", show(b))),
        };
        // Ratios the scenarios did not print themselves get a `bench:` line here.
        let name = match &t.denominator {
            Some(d) => format!("{}_over_{d}", t.numerator),
            None => t.numerator.clone(),
        };
        if t.denominator
            .as_deref()
            .is_some_and(|d| !d.starts_with("cli_"))
        {
            figs.add(&name, ratio, "ratio");
        }
        out.push(Outcome {
            what: t.what,
            figure,
            ratio,
            bound,
            met,
        });
    }
    out
}
