//! `duet reflections`: read the reflections, with who wrote them, when, about which
//! goal, and their replies.

use duet_core::app::{ReflectionItem, ReflectionQuery};
use duet_core::ids::short;

use super::Ctx;
use crate::output::{safe, safe_line};

/// List reflections with their replies (shared ones, or your private ones).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  duet reflections\n  duet reflections --goal weekly\n  duet reflections --private"
)]
pub struct Args {
    /// Only those about this goal.
    #[arg(long)]
    goal: Option<String>,
    /// Your private reflections (only on your devices) instead of the shared ones.
    #[arg(long)]
    private: bool,
}

/// Runs `duet reflections`.
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let mut dev = ctx.view_device()?;
    let goal_given = a.goal.clone();
    let items = dev.reflections(&ReflectionQuery {
        goal: a.goal,
        private: a.private,
    })?;
    if ctx.out.json {
        return ctx.out.json(&items);
    }
    if items.is_empty() {
        // None yet, or every one withdrawn (a withdrawn one is in no list): both said.
        let kind = if a.private { "private" } else { "shared" };
        let about = if goal_given.is_some() {
            " about this goal"
        } else {
            ""
        };
        // The goal as it was typed (quoted for a shell when it has a space).
        let on_goal = goal_given
            .map(|g| match g.contains(char::is_whitespace) {
                true => format!("--goal \"{}\" ", safe_line(&g)),
                false => format!("--goal {} ", safe_line(&g)),
            })
            .unwrap_or_default();
        let private = if a.private { "--private " } else { "" };
        let write = format!("`duet reflect {private}{on_goal}TEXT`");
        ctx.out.line(format!(
            "No {kind} reflections{about} (none written yet, or every one withdrawn): {write} \
             writes one."
        ))?;
    }
    // What was written before a `start-over` stays in the folder it was set aside in.
    if a.private && !ctx.out.quiet {
        for folder in duet_core::device::set_aside_in(&ctx.home) {
            let at = ctx.home.join(&folder);
            crate::output::note(&format!(
                "note: private reflections written before this home was set up anew are in {} \
                 (`duet --home {} reflections --private`)",
                at.display(),
                at.display()
            ));
        }
    }
    for r in &items {
        print(ctx, r, "")?;
        for reply in &r.replies {
            print(ctx, reply, "    ↳ ")?;
        }
    }
    Ok(())
}

fn print(ctx: &Ctx, r: &ReflectionItem, indent: &str) -> anyhow::Result<()> {
    let about = r
        .goal_title
        .as_deref()
        .map(|t| format!(" on \"{}\"", safe_line(t)))
        .unwrap_or_default();
    let edited = match (r.edited_at.is_some(), r.answers_withdrawn) {
        (true, true) => " (edited; a reply to a reflection that was withdrawn)",
        (true, false) => " (edited)",
        (false, true) => " (a reply to a reflection that was withdrawn)",
        (false, false) => "",
    };
    ctx.out.line(format!(
        "{indent}{}  {} {}{}{about}{edited}:",
        short(&r.id),
        safe_line(&r.author_name),
        crate::output::when_of(&r.at),
        // Written on a device whose clock was wrong, as `history` marks it.
        if r.dated_ahead {
            " (dated ahead of this device's clock)"
        } else {
            ""
        },
    ))?;
    let pad = " ".repeat(indent.chars().count() + 2);
    // The prompt it answers, as the app shows it above the words.
    if let Some(prompt) = r.prompt.as_deref().filter(|p| !p.trim().is_empty()) {
        ctx.out.line(format!("{pad}({})", safe_line(prompt)))?;
    }
    for line in safe(&r.text).lines() {
        ctx.out.line(format!("{pad}{line}"))?;
    }
    Ok(())
}
