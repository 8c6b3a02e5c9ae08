//! `duet history`: the couple's joint timeline, newest last.

use duet_core::history::{HistoryQuery, timeline};
use duet_core::readmodel::Parts;
use duet_core::store::SpaceKind;

use super::{Ctx, parse_day, resolve_goal};
use crate::output::{safe_line, when};

/// Show the joint history of the shared space, newest last.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  duet history --goal \"Weekly check-in\" --since 2026-01-01\n  duet history --by Sam --limit 20 --json"
)]
pub struct Args {
    /// Only events about this goal (id prefix or exact title).
    #[arg(long)]
    goal: Option<String>,
    /// Only events on or after this day (YYYY-MM-DD, UTC).
    #[arg(long, value_parser = parse_day)]
    since: Option<i64>,
    /// Only events on or before this day (YYYY-MM-DD, UTC).
    #[arg(long, value_parser = parse_day)]
    until: Option<i64>,
    /// Only events by this person (name, case-insensitive).
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
    /// Only the last N events.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
}

/// Runs `duet history`.
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let mut dev = ctx.device()?;
    let rec = dev.space(SpaceKind::Shared)?;
    let goal = match a.goal.as_deref() {
        Some(q) => {
            let view = dev.view_parts(SpaceKind::Shared, Parts::Goals)?;
            Some(resolve_goal(&view.goals, q)?)
        }
        None => None,
    };
    let query = HistoryQuery {
        goal,
        since: a.since,
        // `--until DAY` includes that whole day.
        until: a.until.map(|u| u + 86_400_000),
        by: a.by,
        last: a.limit,
    };
    let me = dev.me.clone();
    let events = timeline(&mut dev.store, &rec.id, &me, &query)?;
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    if ctx.out.json {
        for e in &events {
            writeln!(out, "{}", serde_json::to_string(e)?)?;
        }
        return Ok(());
    }
    if events.is_empty() {
        ctx.out.line("No history matches.")?;
    }
    for e in &events {
        // The summary quotes titles, names and notes: one line, made terminal-safe.
        writeln!(out, "{}  {}", when(e.at), safe_line(&e.summary))?;
    }
    Ok(())
}
