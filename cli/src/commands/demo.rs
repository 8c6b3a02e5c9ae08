//! `duet demo`: the whole two-partner flow in temporary folders, with an embedded relay
//! on 127.0.0.1. It drives the same engine as the other commands.

use std::collections::BTreeMap;

use anyhow::Context;
use duet_core::app::SpaceExport;
use duet_core::device::Device;
use duet_core::doc::{GoalEdit, NewGoal};
use duet_core::ids::{now_ms, short};
use duet_core::readmodel::View;
use duet_core::store::SpaceKind;
use duet_core::{Area, Level};

use super::Ctx;
use crate::transport::Http;

/// Run a two-partner demo with an embedded relay in temporary folders.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep the temporary folders and print where they are.
    #[arg(long)]
    keep: bool,
}

fn say(ctx: &Ctx, s: impl AsRef<str>) -> std::io::Result<()> {
    ctx.out.line(s)
}

/// Runs `duet demo`.
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("duet-demo-")
        .tempdir()
        .context("cannot create a temporary folder")?;
    // A local demo: the embedded relay is reachable from this machine only, and its
    // spaces need no creation token.
    let config = duet_relay::Config {
        open_registration: true,
        ..duet_relay::Config::default()
    };
    let relay = duet_relay::Embedded::start_with(&dir.path().join("relay.db"), config)
        .context("cannot start the embedded relay")?;
    let http = Http::new()?;
    say(
        ctx,
        format!(
            "Relay running at {} (database in {}).",
            relay.url(),
            dir.path().display()
        ),
    )?;

    let mut alex = Device::init(&dir.path().join("alex"), "Alex", Some(&relay.url()))?;
    say(ctx, "\n[Alex] duet init --name Alex")?;
    let checkin = alex.edit(SpaceKind::Shared, |doc, me| {
        let mut levels = BTreeMap::new();
        levels.insert(-2, "We do not talk about the week at all".to_string());
        levels.insert(
            -1,
            "We talk, but less than 30 minutes or get distracted".to_string(),
        );
        levels.insert(
            0,
            "We talk for 30 minutes every Sunday evening, phones away".to_string(),
        );
        levels.insert(1, "We talk every Sunday and once more midweek".to_string());
        levels.insert(
            2,
            "We talk twice a week and plan the next week together".to_string(),
        );
        let (id, c) = doc.add_goal(
            &me.person_id,
            NewGoal {
                title: "Weekly check-in".into(),
                area: Some(Area::Communication),
                why: "We drift apart when the week gets busy".into(),
                levels,
                owner: None,
                due: None,
            },
            now_ms(),
        )?;
        Ok((id, c.into_iter().collect()))
    })?;
    say(
        ctx,
        format!(
            "[Alex] duet goal add \"Weekly check-in\" --area communication ...   -> {}",
            short(&checkin)
        ),
    )?;
    let code = alex.invite(24 * 3_600_000)?;
    alex.sync(&http)?;
    say(
        ctx,
        "[Alex] duet invite   -> a one-time code, handed to Sam in person",
    )?;

    let mut sam = Device::join(&dir.path().join("sam"), &code, "Sam")?;
    sam.sync(&http)?;
    say(
        ctx,
        "\n[Sam]  duet join duet1-... --name Sam   -> joined, 1 goal synced",
    )?;

    say(ctx, "\nBoth go offline and edit on their own:")?;
    alex.edit(SpaceKind::Shared, |doc, me| {
        let (_, c1) = doc.rate(
            &checkin,
            &me.person_id,
            Level::EXPECTED,
            Some("Good talk on Sunday"),
            now_ms(),
        )?;
        let (_, c2) = doc.add_step(
            &checkin,
            &me.person_id,
            "Put a recurring reminder in both calendars",
            now_ms(),
        )?;
        Ok(((), c1.into_iter().chain(c2).collect()))
    })?;
    say(
        ctx,
        "[Alex] duet rate \"Weekly check-in\" 0 --note \"Good talk on Sunday\"",
    )?;
    say(
        ctx,
        "[Alex] duet step add \"Weekly check-in\" \"Put a recurring reminder in both calendars\"",
    )?;
    alex.edit(SpaceKind::Personal, |doc, me| {
        let (_, c) = doc.reflect(
            &me.person_id,
            None,
            None,
            "I was tired but glad we talked.",
            now_ms(),
        )?;
        Ok(((), c.into_iter().collect()))
    })?;
    say(
        ctx,
        "[Alex] duet reflect --private \"I was tired but glad we talked.\"   (stays on Alex's devices)",
    )?;

    let date = sam.edit(SpaceKind::Shared, |doc, me| {
        let (_, c1) = doc.rate(
            &checkin,
            &me.person_id,
            Level::LESS,
            Some("We cut it short"),
            now_ms(),
        )?;
        let c2 = doc.edit_goal(
            &checkin,
            GoalEdit {
                title: Some("Weekly check-in (Sunday)".into()),
                ..Default::default()
            },
            now_ms(),
        )?;
        let (id, c3) = doc.add_goal(
            &me.person_id,
            NewGoal {
                title: "Date night".into(),
                area: Some(Area::QualityTime),
                why: String::new(),
                levels: [(0i8, "One evening out together every two weeks".to_string())]
                    .into_iter()
                    .collect(),
                owner: None,
                due: None,
            },
            now_ms(),
        )?;
        let (_, c4) = doc.reflect(
            &me.person_id,
            Some(&checkin),
            None,
            "I liked that we put the phones away.",
            now_ms(),
        )?;
        Ok((id, c1.into_iter().chain(c2).chain(c3).chain(c4).collect()))
    })?;
    say(
        ctx,
        "[Sam]  duet rate \"Weekly check-in\" -1 --note \"We cut it short\"",
    )?;
    say(
        ctx,
        "[Sam]  duet goal edit \"Weekly check-in\" --title \"Weekly check-in (Sunday)\"",
    )?;
    say(
        ctx,
        "[Sam]  duet goal add \"Date night\" --area quality-time",
    )?;
    say(
        ctx,
        "[Sam]  duet reflect --goal \"Weekly check-in\" \"I liked that we put the phones away.\"",
    )?;
    let _ = date;

    say(ctx, "\nThey sync (the relay only ever sees ciphertext):")?;
    for who in ["Sam", "Alex", "Sam"] {
        let dev = if who == "Sam" { &mut sam } else { &mut alex };
        let reports = dev.sync(&http)?;
        for (kind, r) in reports {
            for arr in &r.arrivals {
                say(
                    ctx,
                    format!(
                        "[{who}] duet sync   -> {} space: {}",
                        kind.as_str(),
                        arr.summary()
                    ),
                )?;
            }
        }
    }

    say(ctx, "\nThe merged shared goals, identical on both devices:")?;
    let (_, a_doc, _) = alex.load(SpaceKind::Shared)?;
    let (_, s_doc, _) = sam.load(SpaceKind::Shared)?;
    let people: BTreeMap<String, String> = a_doc
        .people()?
        .into_iter()
        .map(|(k, p)| (k, p.name))
        .collect();
    for g in a_doc.goals()? {
        say(
            ctx,
            format!("  {}  {} [{}]", short(&g.id), g.title.as_str(), g.area),
        )?;
        let expected = g.levels.expected.as_str().to_string();
        if !expected.is_empty() {
            say(ctx, format!("      expected: {expected}"))?;
        }
        for r in a_doc.ratings()?.iter().filter(|r| r.goal == g.id) {
            let level = Level::try_from(r.level)
                .map(|l| l.to_string())
                .unwrap_or_default();
            say(
                ctx,
                format!(
                    "      {:<5} rated {level:>2}  {}",
                    people.get(&r.rater).cloned().unwrap_or_default(),
                    r.note.clone().unwrap_or_default()
                ),
            )?;
        }
        for s in g.steps.values() {
            say(ctx, format!("      step: {}", s.text.as_str()))?;
        }
    }
    let p = duet_core::progress::progress(&View::of(&a_doc), None);
    let mut line = String::from("\nGAS T-scores (50 = as expected):");
    for (id, name) in &p.people {
        if let Some(t) = p.current(id) {
            line.push_str(&format!("  {name} {t:.1}"));
        }
    }
    if let Some(t) = p.current_joint() {
        line.push_str(&format!("  together {t:.1}"));
    }
    say(ctx, line)?;
    say(
        ctx,
        "Try it yourself: `duet history`, `duet progress`, `duet report --html FILE` (run `duet demo --keep` to keep the folders).",
    )?;
    let same = serde_json::to_value(SpaceExport::new(String::new(), View::of(&a_doc), vec![]))?
        == serde_json::to_value(SpaceExport::new(String::new(), View::of(&s_doc), vec![]))?;
    say(
        ctx,
        format!("\nAlex's and Sam's shared documents are identical: {same}"),
    )?;
    let (_, s_personal, _) = sam.load(SpaceKind::Personal)?;
    let (_, a_personal, _) = alex.load(SpaceKind::Personal)?;
    say(
        ctx,
        format!(
            "Alex's private reflections: {} on Alex's device, {} on Sam's.",
            a_personal.reflections()?.len(),
            s_personal
                .reflections()?
                .iter()
                .filter(|r| r.author == alex.me.person_id)
                .count()
        ),
    )?;
    if a.keep {
        let kept = dir.keep();
        say(
            ctx,
            format!(
                "\nKept the demo folders in {} (try `duet --home {}/alex status`).",
                kept.display(),
                kept.display()
            ),
        )?;
    }
    drop(relay);
    anyhow::ensure!(
        same,
        "the demo's devices did not converge; please report this bug"
    );
    Ok(())
}
