//! `duet goal list`: the active goals (or all of them), one line each, with their
//! steps done and, past its due day, "overdue".

use duet_core::app::GoalRecord;

use super::Ctx;
use super::goal::{warn_problems, whose};
use crate::output::{LIST_TITLE_CHARS, clip, safe_line, short_id};

/// Runs `duet goal list [--all]`.
pub fn list(ctx: &Ctx, all: bool) -> anyhow::Result<()> {
    let mut dev = ctx.view_device()?;
    let list = dev.goals(all)?;
    warn_problems(ctx, &list.problems);
    let goals = &list.goals;
    if ctx.out.json {
        return ctx
            .out
            .json(&goals.iter().map(GoalRecord::from).collect::<Vec<_>>());
    }
    if goals.is_empty() && dev.joining()? {
        ctx.out.line(
            "No goals here yet: joining is not finished (the first sync did not complete). Run `duet sync` to finish it; the shared goals arrive with it.",
        )?;
        return Ok(());
    }
    if goals.is_empty() {
        // "The others" only when there are some (paused, achieved or archived).
        let none_at_all = all || dev.goals(true)?.goals.is_empty();
        ctx.out.line(if none_at_all {
            "No goals yet. Add one with `duet goal add TITLE --area AREA`."
        } else {
            "No active goals. `duet goal list --all` shows the others; `duet goal add` adds one."
        })?;
        return Ok(());
    }
    let today = crate::output::day(dev.now());
    for g in goals {
        let done = g.steps.values().filter(|s| s.done_at.is_some()).count();
        let overdue = match (duet_core::app::overdue(g, &today), &g.due) {
            (true, Some(due)) => format!("  overdue (due {})", safe_line(due)),
            _ => String::new(),
        };
        ctx.out.line(format!(
            "{}  {:<9} {:<20} {}{}  ({}/{} steps){overdue}",
            short_id(&g.id),
            safe_line(g.status.as_str()),
            safe_line(g.area.as_str()),
            safe_line(&clip(g.title.as_str(), LIST_TITLE_CHARS)),
            whose(g, &list.people)
                .map(|w| format!("  ({w})"))
                .unwrap_or_default(),
            done,
            g.steps.len()
        ))?;
    }
    Ok(())
}
