//! `duet step`: add actionable steps to a goal and mark them done.

use duet_core::ids::short;
use serde_json::json;

use super::Ctx;
use crate::output::short_id;

/// Step subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum StepCmd {
    /// Add a step to a goal.
    #[command(after_help = "Example:\n  duet step add weekly \"Set a Sunday alarm\"")]
    Add {
        /// The goal: its title, a word or the start of it, or the start of its id.
        goal: String,
        /// What to do.
        text: String,
    },
    /// Mark a step done.
    #[command(
        after_help = "Example:\n  duet step done weekly alarm     # a word of the goal and of the step is enough"
    )]
    Done {
        /// The goal: its title, a word or the start of it, or the start of its id.
        goal: String,
        /// The step: its text, a word or the start of it, or the start of its id.
        step: String,
    },
    /// Reopen a step that was marked done.
    Reopen {
        /// Goal id prefix or exact title.
        goal: String,
        /// Step id prefix.
        step: String,
    },
}

/// Runs a step subcommand.
pub fn run(ctx: &Ctx, cmd: StepCmd) -> anyhow::Result<()> {
    let mut dev = ctx.device()?;
    match cmd {
        StepCmd::Add { goal, text } => {
            let (gid, sid) = dev.add_step(&goal, &text)?;
            if ctx.out.json {
                return ctx.out.json(&json!({ "goal": gid, "id": sid }));
            }
            ctx.out.line(format!(
                "Added step {} to goal {}.",
                short(&sid),
                short_id(&gid)
            ))?;
        }
        StepCmd::Done { goal, step } => {
            let sid = dev.complete_step(&goal, &step)?;
            if ctx.out.json {
                return ctx.out.json(&json!({ "id": sid, "done": true }));
            }
            ctx.out
                .line(format!("Step {} done. Well done.", short_id(&sid)))?;
        }
        StepCmd::Reopen { goal, step } => {
            let sid = dev.reopen_step(&goal, &step)?;
            if ctx.out.json {
                return ctx.out.json(&json!({ "id": sid, "done": false }));
            }
            ctx.out
                .line(format!("Step {} is open again.", short_id(&sid)))?;
        }
    }
    Ok(())
}
