//! `duet step`: add actionable steps to a goal (for someone, or for either partner),
//! mark them done, correct their text and give them to someone.

use duet_core::app::{Assignee, Completed};
use duet_core::ids::short;
use serde_json::json;

use super::Ctx;
use crate::output::short_id;

/// Step subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum StepCmd {
    /// Add a step to a goal.
    #[command(
        after_help = "Examples:\n  duet step add weekly \"Set a Sunday alarm\"\n  duet step add \"date night\" \"Book the table\" --for Sam"
    )]
    Add {
        /// The goal: its title, a word or the start of it, or the start of its id.
        goal: String,
        /// What to do.
        #[arg(value_parser = super::non_blank)]
        text: String,
        /// Who does it: `me`, `partner`, a name, or `nobody` (the default: either of you).
        #[arg(long = "for", value_name = "WHO")]
        assignee: Option<String>,
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
        /// The goal: its title, a word or the start of it, or the start of its id.
        goal: String,
        /// The step: its text, a word or the start of it, or the start of its id.
        step: String,
    },
    /// Correct a step's text (the history keeps what it said before).
    #[command(
        after_help = "Example:\n  duet step edit weekly alarm \"Set a Sunday alarm for 7 pm\""
    )]
    Edit {
        /// The goal: its title, a word or the start of it, or the start of its id.
        goal: String,
        /// The step: its text, a word or the start of it, or the start of its id.
        step: String,
        /// The step's new text.
        #[arg(value_parser = super::non_blank)]
        text: String,
    },
    /// Give a step to someone, or to nobody in particular.
    #[command(
        after_help = "Examples:\n  duet step assign \"date night\" table me\n  duet step assign \"date night\" table nobody"
    )]
    Assign {
        /// The goal: its title, a word or the start of it, or the start of its id.
        goal: String,
        /// The step: its text, a word or the start of it, or the start of its id.
        step: String,
        /// Who does it: `me`, `partner`, a name, or `nobody` (either of you).
        who: String,
    },
}

/// Runs a step subcommand.
pub fn run(ctx: &Ctx, cmd: StepCmd) -> anyhow::Result<()> {
    let mut dev = ctx.device()?;
    match cmd {
        StepCmd::Add {
            goal,
            text,
            assignee,
        } => {
            let who = assignee
                .as_deref()
                .map_or(Assignee::Nobody, Assignee::parse);
            let ((gid, sid), _held) =
                crate::interrupt::saving(&mut dev, |dev| dev.add_step(&goal, &text, &who))?;
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
            let (done, _held) =
                crate::interrupt::saving(&mut dev, |dev| dev.complete_step(&goal, &step))?;
            print_done(ctx, &dev.me.person_id.to_string(), &done)?;
        }
        StepCmd::Reopen { goal, step } => {
            let ((sid, was_done), _held) =
                crate::interrupt::saving(&mut dev, |dev| dev.reopen_step(&goal, &step))?;
            if ctx.out.json {
                return ctx
                    .out
                    .json(&json!({ "id": sid, "done": false, "changed": was_done }));
            }
            ctx.out.line(if was_done {
                format!("Step {} is open again.", short_id(&sid))
            } else {
                format!("Step {} was not done; nothing changed.", short_id(&sid))
            })?;
        }
        StepCmd::Edit { goal, step, text } => {
            let ((sid, changed), _held) =
                crate::interrupt::saving(&mut dev, |dev| dev.edit_step(&goal, &step, &text))?;
            if ctx.out.json {
                return ctx.out.json(&json!({ "id": sid, "changed": changed }));
            }
            ctx.out.line(if changed {
                format!("Step {} now reads as you wrote it.", short_id(&sid))
            } else {
                format!("Step {} already reads so; nothing changed.", short_id(&sid))
            })?;
        }
        StepCmd::Assign { goal, step, who } => {
            let (done, _held) = crate::interrupt::saving(&mut dev, |dev| {
                dev.assign_step(&goal, &step, &Assignee::parse(&who))
            })?;
            if ctx.out.json {
                return ctx.out.json(&done);
            }
            let sid = short_id(&done.step);
            let me = dev.me.person_id.to_string();
            ctx.out.line(match (&done.person, &done.name) {
                (Some(p), _) if *p == me => format!("Step {sid} is yours."),
                (Some(p), name) => format!(
                    "Step {sid} is for {}.",
                    crate::output::safe_line(name.as_deref().unwrap_or(p))
                ),
                (None, _) => format!("Step {sid} is for either of you."),
            })?;
        }
    }
    Ok(())
}

/// What `duet step done` did: done now, or found done already (by whom, when).
fn print_done(ctx: &Ctx, me: &str, done: &Completed) -> anyhow::Result<()> {
    if ctx.out.json {
        return ctx
            .out
            .json(&json!({ "id": done.step, "done": true, "already": done.already }));
    }
    let sid = short_id(&done.step);
    let on = |a: &duet_core::app::AlreadyDone| {
        a.at.map(|t| format!(" on {}", crate::output::when(t)))
            .unwrap_or_default()
    };
    ctx.out.line(match &done.already {
        None => format!("Step {sid} done. Well done."),
        Some(a) if a.by.as_deref() == Some(me) => format!(
            "Step {sid} was done already (by you{}); nothing changed.",
            a.at.map(|t| format!(", on {}", crate::output::when(t)))
                .unwrap_or_default()
        ),
        Some(a) => format!(
            "Step {sid} was done already by {}{}; nothing changed.",
            crate::output::safe_line(a.name.as_deref().unwrap_or("your partner")),
            on(a)
        ),
    })?;
    Ok(())
}
