//! `duet undo`: take back your latest rating, reflection or step completion.

use duet_core::app::Undone;
use duet_core::ids::short;

use crate::output::{LIST_TITLE_CHARS, clip, safe_line};

use super::Ctx;

/// Undo your latest rating, reflection or step completion (whichever came last): a
/// rating or reflection is withdrawn, a step reopened. The history keeps both and says so.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  duet undo")]
pub struct Args {}

/// Runs `duet undo`.
pub fn run(ctx: &Ctx, _a: Args) -> anyhow::Result<()> {
    let mut dev = ctx.device()?;
    let undone = dev.undo()?;
    if ctx.out.json {
        return ctx.out.json(&undone);
    }
    ctx.out.line(match &undone {
        Undone::Rating { goal, .. } => {
            format!("Withdrew your latest rating of goal {}.", short(goal))
        }
        Undone::Reflection { id, private, text } => format!(
            "Withdrew your {}reflection {} (\"{}\").",
            if *private { "private " } else { "" },
            short(id),
            safe_line(&clip(text, LIST_TITLE_CHARS))
        ),
        Undone::Step { step, .. } => format!("Reopened step {}.", short(step)),
    })?;
    Ok(())
}
