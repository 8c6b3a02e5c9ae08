//! `duet reflect`: write a reflection, shared or private.

use std::io::Read;

use anyhow::Context;
use duet_core::ids::short;
use duet_core::store::SpaceKind;
use serde_json::json;

use super::{Ctx, resolve_goal};

/// Write a reflection. Private ones stay in your personal space (your devices only).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  duet reflect --goal weekly \"Sunday talk went well\"\n  echo \"Only for me\" | duet reflect --private -"
)]
pub struct Args {
    /// The goal it is about (id prefix or exact title).
    #[arg(long)]
    goal: Option<String>,
    /// The prompt it answers.
    #[arg(long)]
    prompt: Option<String>,
    /// Keep it in your personal space: your partner never receives it.
    #[arg(long)]
    private: bool,
    /// The reflection; `-` reads it from standard input.
    text: String,
}

/// Runs `duet reflect`.
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let text = if a.text == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the reflection from standard input")?;
        s.trim_end().to_string()
    } else {
        a.text
    };
    let mut dev = ctx.device()?;
    let goal = match &a.goal {
        Some(q) => Some(resolve_goal(
            &dev.view_parts(SpaceKind::Shared, duet_core::readmodel::Parts::Goals)?
                .goals,
            q,
        )?),
        None => None,
    };
    let kind = if a.private {
        SpaceKind::Personal
    } else {
        SpaceKind::Shared
    };
    let id = dev.edit(kind, |doc, me| {
        let (id, c) = doc.reflect(
            &me.person_id,
            goal.as_deref(),
            a.prompt.as_deref(),
            &text,
            crate::clock::now(),
        )?;
        Ok((id, c.into_iter().collect()))
    })?;
    if ctx.out.json {
        return ctx.out.json(&json!({ "id": id, "private": a.private }));
    }
    ctx.out.line(format!(
        "Saved {} reflection {}.",
        if a.private { "private" } else { "shared" },
        short(&id)
    ))?;
    Ok(())
}
