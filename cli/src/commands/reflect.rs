//! `duet reflect`: write a reflection, shared or private.

use std::io::Read;

use anyhow::Context;
use duet_core::app::ReflectionInput;
use duet_core::ids::short;
use serde_json::json;

use super::Ctx;

/// Write a reflection. Private ones stay in your personal space (your devices only).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  duet reflect --goal \"Weekly check-in\" \"Sunday talk went well\"\n  echo \"Only for me\" | duet reflect --private -"
)]
pub struct Args {
    /// The goal it is about (its title, a word or the start of it, or the start of its id).
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
    let id = dev.reflect(ReflectionInput {
        text,
        goal: a.goal,
        prompt: a.prompt,
        private: a.private,
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
