//! `duet step`: add actionable steps to a goal and mark them done.

use anyhow::Context;
use duet_core::ids::short;
use duet_core::store::SpaceKind;
use serde_json::json;

use super::{Ctx, resolve_goal};
use crate::output::short_id;

/// Step subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum StepCmd {
    /// Add a step to a goal.
    Add {
        /// Goal id prefix or exact title.
        goal: String,
        /// What to do.
        text: String,
    },
    /// Mark a step done.
    Done {
        /// Goal id prefix or exact title.
        goal: String,
        /// Step id prefix.
        step: String,
    },
}

/// Runs a step subcommand.
pub fn run(ctx: &Ctx, cmd: StepCmd) -> anyhow::Result<()> {
    let mut dev = ctx.device()?;
    // Goals and steps are resolved from the read model; the edit loads the document once.
    let goals = dev
        .view_parts(SpaceKind::Shared, duet_core::readmodel::Parts::Goals)?
        .goals;
    match cmd {
        StepCmd::Add { goal, text } => {
            let gid = resolve_goal(&goals, &goal)?;
            let sid = dev.edit(SpaceKind::Shared, |doc, me| {
                let (id, c) = doc.add_step(&gid, &me.person_id, &text, crate::clock::now())?;
                Ok((id, c.into_iter().collect()))
            })?;
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
            let gid = resolve_goal(&goals, &goal)?;
            let g = goals
                .iter()
                .find(|g| g.id == gid)
                .context("the goal just resolved is gone; run `duet goal list`")?;
            let sid = duet_core::resolve::resolve(
                "step",
                &step,
                g.steps
                    .values()
                    .map(|s| (s.id.as_str(), s.text.as_str().to_string())),
            )?;
            dev.edit(SpaceKind::Shared, |doc, me| {
                let c = doc.complete_step(&gid, &sid, &me.person_id, crate::clock::now())?;
                Ok(((), c.into_iter().collect()))
            })?;
            ctx.out
                .line(format!("Step {} done. Well done.", short_id(&sid)))?;
        }
    }
    Ok(())
}
