//! `duet export`: everything of both spaces, for backup or for a therapist.
//!
//! It reads the read models, not the document, and one entity this version cannot read
//! never stops it: everything readable is written, and each unreadable entity is listed
//! with its collection, id, reason and raw content (`problems` in JSON, a "could not
//! read" section in text), so a partner's malformed entity never traps the other data.

use std::collections::BTreeMap;

use duet_core::device::Device;
use duet_core::readmodel::{Problem, View};
use duet_core::store::SpaceKind;
use serde_json::{Value, json};

use super::Ctx;
use crate::output::{
    Out, goal_json, iso, name_of, rating_json, reflection_json, safe, safe_line, when,
};

/// Export everything of the shared and personal space.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// The JSON form of a space's content (deterministic: equal content gives equal JSON).
pub fn space_json(id: &str, view: &View, problems: &[Problem]) -> Value {
    let people: BTreeMap<&String, Value> = view
        .people
        .iter()
        .map(|(k, p)| (k, json!({ "name": p.name })))
        .collect();
    json!({
        "space": id,
        "people": people,
        "goals": view.goals.iter().map(goal_json).collect::<Vec<_>>(),
        "ratings": view.ratings.iter().map(rating_json).collect::<Vec<_>>(),
        "reflections": view.reflections.iter().map(reflection_json).collect::<Vec<_>>(),
        "problems": problems,
    })
}

/// The entities of a space that could not be read, with their raw content. The
/// document is loaded only when the read model lists any; if even that fails, they are
/// given without their content rather than failing the command.
pub fn problems(dev: &Device, kind: SpaceKind, view: &View) -> Vec<Problem> {
    if view.problems.is_empty() {
        return Vec::new();
    }
    match dev.load(kind) {
        Ok((_, doc, _)) => duet_core::readmodel::problems_of(&doc),
        Err(_) => view
            .problems
            .iter()
            .map(|p| Problem::from_line(p))
            .collect(),
    }
}

/// Prints the "could not read" section of a space (nothing when all was read).
pub fn print_problems(out: &Out, problems: &[Problem]) -> std::io::Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    out.line(
        "\nCould not read (kept in the document; shown once it is fixed or duet is upgraded):",
    )?;
    for p in problems {
        out.line(format!(
            "  {} {}: {}",
            safe_line(&p.collection),
            safe_line(&p.id),
            safe_line(&p.reason)
        ))?;
        // JSON escapes C0 controls but not C1 ones: made safe like any partner text.
        out.line(format!("    raw: {}", safe_line(&p.raw.to_string())))?;
    }
    Ok(())
}

/// A space's id, content and unreadable entities.
fn read_space(dev: &mut Device, kind: SpaceKind) -> anyhow::Result<(String, View, Vec<Problem>)> {
    let id = dev.space(kind)?.id.to_string();
    let view = dev.view(kind)?;
    let problems = problems(dev, kind, &view);
    Ok((id, view, problems))
}

/// Runs `duet export`.
pub fn run(ctx: &Ctx, _a: Args) -> anyhow::Result<()> {
    let mut dev = ctx.device()?;
    let shared = read_space(&mut dev, SpaceKind::Shared)?;
    let personal = read_space(&mut dev, SpaceKind::Personal)?;
    if ctx.out.json {
        return ctx.out.json(&json!({
            "format": "duet-export/1",
            "exported_at": iso(duet_core::ids::now_ms()),
            "me": {
                "name": dev.me.name,
                "person": dev.me.person_id,
                "device": hex::encode(dev.me.device_key()),
            },
            "shared": space_json(&shared.0, &shared.1, &shared.2),
            "personal": space_json(&personal.0, &personal.1, &personal.2),
        }));
    }
    let spaces = [shared, personal];
    let out = ctx.out;
    for ((_, view, problems), title) in spaces
        .iter()
        .zip(["Shared space", "Personal space (only you)"])
    {
        let people: BTreeMap<String, String> = view
            .people
            .iter()
            .map(|(k, p)| (k.clone(), p.name.clone()))
            .collect();
        out.line(format!("# {title}"))?;
        for g in &view.goals {
            out.line(format!(
                "\n## {} [{}; {}]",
                safe_line(g.title.as_str()),
                safe_line(&g.area),
                safe_line(&g.status)
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
                    r.level,
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
        print_problems(&out, problems)?;
        out.line("")?;
    }
    Ok(())
}
