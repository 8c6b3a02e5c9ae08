//! `duet export`: everything of both spaces, for backup or for a therapist.
//!
//! It reads the read models, not the document, and one entity this version cannot read
//! never stops it: everything readable is written, and each unreadable entity is listed
//! with its collection, id, reason and raw content (`problems` in JSON, a "could not
//! read" section in text), so a partner's malformed entity never traps the other data.

use duet_core::readmodel::Problem;

use super::Ctx;
use crate::output::{Out, name_of, safe, safe_line, when};

/// Export everything of the shared and personal space.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// How many unreadable entities a command other than `export` names one by one; the
/// rest are counted (a partner can write thousands, which would bury the output).
pub const PROBLEMS_NAMED: usize = 5;

/// Prints the "could not read" section of a space (nothing when all was read): every
/// entity, or the first `named` of them and a count of the rest.
pub fn print_problems(
    out: &Out,
    problems: &[Problem],
    named: Option<usize>,
) -> Result<(), crate::output::StdoutError> {
    if problems.is_empty() {
        return Ok(());
    }
    out.line(
        "\nCould not read (kept in the document; shown once it is fixed or duet is upgraded):",
    )?;
    let named = named.unwrap_or(problems.len());
    for p in problems.iter().take(named) {
        out.line(format!(
            "  {} {}: {}",
            safe_line(&p.collection),
            safe_line(&p.id),
            safe_line(&p.reason)
        ))?;
        // JSON escapes C0 controls but not C1 ones: made safe like any partner text.
        out.line(format!("    raw: {}", safe_line(&p.raw.to_string())))?;
    }
    if problems.len() > named {
        out.line(format!(
            "  and {} more (`duet export` lists them all)",
            problems.len() - named
        ))?;
    }
    Ok(())
}

/// Runs `duet export`.
pub fn run(ctx: &Ctx, _a: Args) -> anyhow::Result<()> {
    let export = ctx.device()?.export()?;
    if ctx.out.json {
        return ctx.out.json(&export);
    }
    let spaces = [export.shared, export.personal];
    let out = ctx.out;
    for (space, title) in spaces
        .iter()
        .zip(["Shared space", "Personal space (only you)"])
    {
        let (view, problems) = (&space.view, &space.problems);
        let people = duet_core::names::shown(&view.people);
        out.line(format!("# {title}"))?;
        for g in &view.goals {
            out.line(format!(
                "\n## {} [{}; {}]",
                safe_line(g.title.as_str()),
                safe_line(g.area.as_str()),
                safe_line(g.status.as_str())
            ))?;
            if !g.why.as_str().is_empty() {
                out.line(format!("Why: {}", safe_line(g.why.as_str())))?;
            }
            for l in (-2i8..=2).rev() {
                if let Some(t) = g.levels.get(l).filter(|t| !t.as_str().is_empty()) {
                    out.line(format!("  {l:+}: {}", safe_line(t.as_str())))?;
                }
            }
            for s in g.steps.values() {
                out.line(format!(
                    "  [{}] {}",
                    if s.done_at.is_some() { "x" } else { " " },
                    safe_line(s.text.as_str())
                ))?;
            }
            for r in view.ratings.iter().filter(|r| r.goal == g.id) {
                out.line(format!(
                    "  {} {} rated {:+}{}",
                    when(r.at),
                    name_of(&people, &r.rater),
                    r.level.get(),
                    r.note
                        .as_deref()
                        .map(|n| format!(": {}", safe_line(n)))
                        .unwrap_or_default()
                ))?;
            }
        }
        if !view.reflections.is_empty() {
            out.line("\n## Reflections")?;
            for r in &view.reflections {
                // A reflection may run over several lines: they stay lines, indented
                // under their heading so none can pass for a heading of its own.
                out.line(format!(
                    "  {} {}: {}",
                    when(r.at),
                    name_of(&people, &r.author),
                    safe(r.text.as_str()).replace('\n', "\n    ")
                ))?;
            }
        }
        print_problems(&out, problems, None)?;
        out.line("")?;
    }
    Ok(())
}
