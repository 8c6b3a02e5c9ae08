//! `duet rate`: one partner's GAS rating of a goal.

use duet_core::Level;
use serde_json::json;

use super::Ctx;
use crate::output::short_id;

/// Rate a goal on the GAS scale: -2 much less than expected, -1 less, 0 as expected,
/// 1 more, 2 much more.
#[derive(Debug, clap::Args)]
#[command(
    allow_negative_numbers = true,
    after_help = "Examples:\n  duet rate \"Weekly check-in\" -1 --note \"We skipped one Sunday\"\n  duet rate weekly 1      # the start or a word of the title is enough"
)]
pub struct Args {
    /// The goal: its title, a word or the start of it, or the start of its id.
    goal: String,
    /// GAS level: -2, -1, 0, 1 or 2.
    #[arg(allow_hyphen_values = true)]
    level: Level,
    /// A note about this rating.
    #[arg(long)]
    note: Option<String>,
}

/// Runs `duet rate`.
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let mut dev = ctx.device()?;
    let (id, gid) = dev.rate(&a.goal, a.level, a.note.as_deref())?;
    if ctx.out.json {
        return ctx
            .out
            .json(&json!({ "id": id, "goal": gid, "level": a.level.value() }));
    }
    ctx.out.line(format!(
        "Rated goal {} at {} ({}).",
        short_id(&gid),
        a.level,
        a.level.meaning()
    ))?;
    Ok(())
}
