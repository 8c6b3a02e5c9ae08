//! `duet history`: the couple's joint timeline, newest last.

use duet_core::history::HistoryQuery;

use super::{Ctx, parse_day, parse_day_end};
use crate::output::{LIST_TITLE_CHARS, clip, safe_line, when};

/// The widest a history line is printed without `--full`, in terminal columns (its
/// time, 16, and two spaces, then the summary): a title or note of thousands of
/// characters would fill the screen with one event. `--full` and `--json` give every
/// line whole.
const LINE_COLUMNS: usize = 160;
const SUMMARY_COLUMNS: usize = LINE_COLUMNS - 18;

/// After a change made here that never reached the space (this device's membership
/// ended first): the partner never saw it.
const NEVER_SENT: &str = "  (never sent: shown on this device only)";
/// The mark of an event dated after this device's clock (a device whose clock was wrong).
const DATED_AHEAD: &str = "  (dated ahead of this device's clock)";

/// Show the joint history of the shared space, newest last.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  duet history --goal \"Weekly check-in\" --since 2026-01-01\n  duet history --by Sam --limit 20 --json\n  duet history --full          # with each reflection's text"
)]
pub struct Args {
    /// Only events about this goal (its title, a word or the start of it, or the start of
    /// its id).
    #[arg(long)]
    goal: Option<String>,
    /// Only events on or after this day (YYYY-MM-DD, local time).
    #[arg(long, value_parser = parse_day)]
    since: Option<i64>,
    /// Only events on or before this day (YYYY-MM-DD, local time).
    #[arg(long, value_parser = parse_day_end)]
    until: Option<i64>,
    /// Only events by this person (name, case-insensitive).
    #[arg(long, value_name = "NAME", value_parser = super::non_blank)]
    by: Option<String>,
    /// Only the last N events.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Show each reflection's text under its line (withdrawn ones stay withdrawn), and
    /// every line whole (without it a line is cut at 160 columns).
    #[arg(long)]
    full: bool,
}

/// Runs `duet history`.
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    // (`until` is the end of its day: the same day twice is that day.)
    if let (Some(since), Some(until)) = (a.since, a.until)
        && since >= until
    {
        anyhow::bail!(crate::UsageError(
            "--since is after --until, so no event could match; give the earlier day to --since"
                .into()
        ));
    }
    let query = HistoryQuery {
        goal: a.goal,
        since: a.since,
        until: a.until,
        by: a.by,
        last: a.limit,
    };
    let mut dev = ctx.view_device()?;
    let events = dev.history(query)?;
    let texts = if a.full {
        dev.reflection_texts()?
    } else {
        Default::default()
    };
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    if ctx.out.json {
        for e in &events {
            writeln!(out, "{}", serde_json::to_string(e)?)?;
        }
        return Ok(());
    }
    if ctx.out.quiet {
        return Ok(());
    }
    if events.is_empty() {
        ctx.out.line("No history matches.")?;
    }
    for e in &events {
        // The summary quotes titles, names and notes: one line, made terminal-safe. A
        // long goal title is cut first, so that what follows it (a level, a note) shows.
        let summary = match (&e.goal_title, a.full) {
            (Some(t), false) if t.chars().count() > LIST_TITLE_CHARS => e.summary.replacen(
                &format!("\"{t}\""),
                &format!("\"{}\"", clip(t, LIST_TITLE_CHARS)),
                1,
            ),
            _ => e.summary.clone(),
        };
        let line = safe_line(&summary);
        let shown = if a.full {
            line.as_ref().into()
        } else {
            clip(&line, SUMMARY_COLUMNS)
        };
        let mark = match (e.never_sent, e.dated_ahead) {
            (true, _) => NEVER_SENT,
            (false, true) => DATED_AHEAD,
            (false, false) => "",
        };
        writeln!(out, "{}  {}{mark}", when(e.at), shown)?;
        let text = (e.kind == duet_core::history::HistoryKind::ReflectionWritten)
            .then(|| e.item.as_ref().and_then(|i| texts.get(i)))
            .flatten();
        for line in text.into_iter().flat_map(|t| t.lines()) {
            writeln!(out, "                    {}", safe_line(line))?;
        }
    }
    Ok(())
}
