//! `duet export`: everything of both spaces, for backup or for a therapist.

use std::collections::BTreeMap;

use duet_core::doc::SpaceDoc;
use duet_core::store::SpaceKind;
use serde_json::{Value, json};

use super::Ctx;
use crate::output::{goal_json, iso, name_of, rating_json, reflection_json, when};

/// Export everything of the shared and personal space.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// The JSON form of a space's content (deterministic: equal documents give equal JSON).
pub fn space_json(id: &str, doc: &SpaceDoc) -> anyhow::Result<Value> {
    let people: BTreeMap<String, Value> = doc
        .people()?
        .into_iter()
        .map(|(k, p)| (k, json!({ "name": p.name })))
        .collect();
    Ok(json!({
        "space": id,
        "people": people,
        "goals": doc.goals()?.iter().map(goal_json).collect::<Vec<_>>(),
        "ratings": doc.ratings()?.iter().map(rating_json).collect::<Vec<_>>(),
        "reflections": doc.reflections()?.iter().map(reflection_json).collect::<Vec<_>>(),
    }))
}

/// Runs `duet export`.
pub fn run(ctx: &Ctx, _a: Args) -> anyhow::Result<()> {
    let dev = ctx.device()?;
    let (shared_rec, shared, _) = dev.load(SpaceKind::Shared)?;
    let (personal_rec, personal, _) = dev.load(SpaceKind::Personal)?;
    if ctx.out.json {
        return ctx.out.json(&json!({
            "format": "duet-export/1",
            "exported_at": iso(duet_core::ids::now_ms()),
            "me": {
                "name": dev.me.name,
                "person": dev.me.person_id,
                "device": hex::encode(dev.me.device_key()),
            },
            "shared": space_json(&shared_rec.id.to_string(), &shared)?,
            "personal": space_json(&personal_rec.id.to_string(), &personal)?,
        }));
    }
    for (title, doc) in [
        ("Shared space", &shared),
        ("Personal space (only you)", &personal),
    ] {
        let people: BTreeMap<String, String> = doc
            .people()?
            .into_iter()
            .map(|(k, p)| (k, p.name))
            .collect();
        println!("# {title}");
        for g in doc.goals()? {
            println!("\n## {} [{}; {}]", g.title.as_str(), g.area, g.status);
            if !g.why.as_str().is_empty() {
                println!("Why: {}", g.why.as_str());
            }
            for l in (-2i8..=2).rev() {
                if let Some(t) = g.levels.get(l).filter(|t| !t.as_str().is_empty()) {
                    println!("  {l:+}: {}", t.as_str());
                }
            }
            for s in g.steps.values() {
                println!(
                    "  [{}] {}",
                    if s.done_at.is_some() { "x" } else { " " },
                    s.text.as_str()
                );
            }
            for r in doc.ratings()?.iter().filter(|r| r.goal == g.id) {
                println!(
                    "  {} {} rated {:+}{}",
                    when(r.at),
                    name_of(&people, &r.rater),
                    r.level,
                    r.note
                        .as_deref()
                        .map(|n| format!(": {n}"))
                        .unwrap_or_default()
                );
            }
        }
        let reflections = doc.reflections()?;
        if !reflections.is_empty() {
            println!("\n## Reflections");
            for r in reflections {
                println!(
                    "  {} {}: {}",
                    when(r.at),
                    name_of(&people, &r.author),
                    r.text.as_str()
                );
            }
        }
        println!();
    }
    Ok(())
}
