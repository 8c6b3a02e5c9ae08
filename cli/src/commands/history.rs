//! `duet history`: the couple's joint timeline, newest last.

use duet_core::history::{history, membership_history};
use duet_core::store::SpaceKind;
use duet_core::sync::fold_state;

use super::{Ctx, parse_day, resolve_goal};
use crate::output::when;

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
    let dev = ctx.device()?;
    let (rec, doc, _) = dev.load(SpaceKind::Shared)?;
    let goal = a
        .goal
        .as_deref()
        .map(|q| resolve_goal(&doc.goals()?, q))
        .transpose()?;
    let state = fold_state(&dev.store, &rec.id)?;
    let mut events = history(&doc, state.all_devices())?;
    // Devices joining and being removed, placed by time among the document's events.
    let people: std::collections::BTreeMap<String, String> = doc
        .people()?
        .into_iter()
        .map(|(k, p)| (k, p.name))
        .collect();
    let stored: Vec<duet_core::event::Event> = dev
        .store
        .events(&rec.id)?
        .into_iter()
        .filter_map(|b| duet_core::event::Event::decode(b).ok())
        .collect();
    for m in membership_history(&stored, &people) {
        let at = events
            .iter()
            .position(|e| e.at > m.at)
            .unwrap_or(events.len());
        events.insert(at, m);
    }
    events.retain(|e| {
        goal.as_ref().is_none_or(|g| e.goal.as_ref() == Some(g))
            && a.since.is_none_or(|s| e.at >= s)
            && a.until.is_none_or(|u| e.at < u + 86_400_000)
            && a.by
                .as_ref()
                .is_none_or(|b| e.author_name.eq_ignore_ascii_case(b))
    });
    if let Some(n) = a.limit {
        let skip = events.len().saturating_sub(n);
        events.drain(..skip);
    }
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    if ctx.out.json {
        for e in &events {
            writeln!(out, "{}", serde_json::to_string(e)?)?;
        }
        return Ok(());
    }
    if events.is_empty() {
        ctx.out.line("No history matches.");
    }
    for e in &events {
        writeln!(out, "{}  {}", when(e.at), e.summary)?;
    }
    Ok(())
}
