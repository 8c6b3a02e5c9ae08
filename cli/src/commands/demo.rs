//! `duet demo`: the whole two-partner flow in temporary folders, with an embedded relay
//! on 127.0.0.1. Each step is the same application call the matching command makes.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use duet_core::app::{Export, GoalChanges, NewGoalInput, ReflectionInput};
use duet_core::device::Device;
use duet_core::ids::short;
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

fn say(ctx: &Ctx, s: impl AsRef<str>) -> Result<(), crate::output::StdoutError> {
    ctx.out.line(s)
}

/// Runs `duet demo`.
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    if ctx.out.json {
        anyhow::bail!(crate::UsageError(
            "the demo is a walk-through in words; --json is not offered: run `duet demo` without it".into()
        ));
    }
    let dir = tempfile::Builder::new()
        .prefix("duet-demo-")
        .tempdir()
        .context("cannot create a temporary folder")?;
    // Ctrl-C ends the demo without its folder's drop: the folder goes all the same.
    crate::interrupt::remove_on_stop(dir.path().to_path_buf());
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
    // Each step is held against signals: one that comes meanwhile stops the demo once
    // the step is done, on this thread, so that no step makes a home in the folder
    // while it is removed (stopped on the signal's own thread, a home made in between
    // brought the folder back after its removal).
    let (mut alex, checkin) = step(|| alex_starts(ctx, dir.path(), &relay.url()))?;
    let mut sam = step(|| sam_joins(ctx, dir.path(), &mut alex, &http))?;
    say(ctx, "\nBoth go offline and edit on their own:")?;
    step(|| alex_edits(ctx, &mut alex, &checkin))?;
    step(|| sam_edits(ctx, &mut sam, &checkin))?;
    say(
        ctx,
        "\nThey sync (the relay only ever sees ciphertext). Both rated blind: each device\n\
         reveals its own rating once it sees that the other has rated too:",
    )?;
    // Sam sends, Alex receives and reveals, Sam receives and reveals, Alex receives:
    // both end with everything.
    for _ in 0..2 {
        step(|| sync(ctx, "Sam", &mut sam, &http))?;
        step(|| sync(ctx, "Alex", &mut alex, &http))?;
    }
    let same = step(|| show_result(ctx, &mut alex, &mut sam, a.keep))?;
    if a.keep {
        let _held = crate::interrupt::hold();
        crate::interrupt::keep_on_stop(dir.path());
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

/// Runs one step of the demo holding signals until it is done ([`crate::interrupt::hold`]).
fn step<T>(f: impl FnOnce() -> T) -> T {
    let _held = crate::interrupt::hold();
    f()
}

/// Alex sets up and adds the first goal; returns Alex's device and the goal's id.
fn alex_starts(ctx: &Ctx, dir: &Path, relay: &str) -> anyhow::Result<(Device, String)> {
    let mut alex = Device::init_with(&dir.join("alex"), "Alex", Some(relay), ctx.clock)?;
    say(ctx, "\n[Alex] duet init --name Alex")?;
    let levels: BTreeMap<i8, String> = [
        (-2, "We do not talk about the week at all"),
        (-1, "We talk, but less than 30 minutes or get distracted"),
        (
            0,
            "We talk for 30 minutes every Sunday evening, phones away",
        ),
        (1, "We talk every Sunday and once more midweek"),
        (2, "We talk twice a week and plan the next week together"),
    ]
    .into_iter()
    .map(|(l, text)| (l, text.to_string()))
    .collect();
    let checkin = alex.add_goal(NewGoalInput {
        title: "Weekly check-in".into(),
        area: Some(Area::Communication),
        why: Some("We drift apart when the week gets busy".into()),
        levels,
        ..Default::default()
    })?;
    say(
        ctx,
        format!(
            "[Alex] duet goal add \"Weekly check-in\" --area communication ...   -> {}",
            short(&checkin)
        ),
    )?;
    Ok((alex, checkin))
}

/// Alex invites Sam, who joins with the code; returns Sam's device.
fn sam_joins(ctx: &Ctx, dir: &Path, alex: &mut Device, http: &Http) -> anyhow::Result<Device> {
    let code = alex.invite(24 * 3_600_000)?;
    alex.sync(http)?;
    say(
        ctx,
        "[Alex] duet invite   -> a one-time code, handed to Sam in person",
    )?;
    let mut sam = Device::join_with(&dir.join("sam"), &code, "Sam", ctx.clock)?;
    sam.sync(http)?;
    say(
        ctx,
        "\n[Sam]  duet join duet2-... --name Sam   -> joined, 1 goal synced",
    )?;
    Ok(sam)
}

/// Alex's offline edits: a rating, a step and a private reflection.
fn alex_edits(ctx: &Ctx, alex: &mut Device, checkin: &str) -> anyhow::Result<()> {
    alex.rate(checkin, Level::EXPECTED, Some("Good talk on Sunday"))?;
    alex.add_step(
        checkin,
        "Put a recurring reminder in both calendars",
        &duet_core::app::Assignee::Nobody,
    )?;
    say(
        ctx,
        "[Alex] duet rate \"Weekly check-in\" 0 --note \"Good talk on Sunday\"   (sealed until Sam rates)",
    )?;
    say(
        ctx,
        "[Alex] duet step add \"Weekly check-in\" \"Put a recurring reminder in both calendars\"",
    )?;
    alex.reflect(ReflectionInput {
        text: "I was tired but glad we talked.".into(),
        private: true,
        ..Default::default()
    })?;
    say(
        ctx,
        "[Alex] duet reflect --private \"I was tired but glad we talked.\"   (stays on Alex's devices)",
    )?;
    Ok(())
}

/// Sam's offline edits: a rating, a new title, a new goal and a shared reflection.
fn sam_edits(ctx: &Ctx, sam: &mut Device, checkin: &str) -> anyhow::Result<()> {
    sam.rate(checkin, Level::LESS, Some("We cut it short"))?;
    let retitle = GoalChanges {
        title: Some("Weekly check-in (Sunday)".into()),
        ..Default::default()
    };
    sam.edit_goal(checkin, retitle)?;
    sam.add_goal(NewGoalInput {
        title: "Date night".into(),
        area: Some(Area::QualityTime),
        levels: [(0i8, "One evening out together every two weeks".to_string())]
            .into_iter()
            .collect(),
        ..Default::default()
    })?;
    sam.reflect(ReflectionInput {
        text: "I liked that we put the phones away.".into(),
        goal: Some(checkin.to_string()),
        ..Default::default()
    })?;
    for line in [
        "[Sam]  duet rate \"Weekly check-in\" -1 --note \"We cut it short\"   (sealed until Alex rates)",
        "[Sam]  duet goal edit \"Weekly check-in\" --title \"Weekly check-in (Sunday)\"",
        "[Sam]  duet goal add \"Date night\" --area quality-time",
        "[Sam]  duet reflect --goal \"Weekly check-in\" \"I liked that we put the phones away.\"",
    ] {
        say(ctx, line)?;
    }
    Ok(())
}

/// One sync, with a line for each space that received something.
fn sync(ctx: &Ctx, who: &str, dev: &mut Device, http: &Http) -> anyhow::Result<()> {
    for (kind, r) in dev.sync(http)? {
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
    Ok(())
}

/// Prints the merged goals, the T-scores and what each device holds; returns whether
/// both shared documents are the same.
fn show_result(ctx: &Ctx, alex: &mut Device, sam: &mut Device, keep: bool) -> anyhow::Result<bool> {
    say(ctx, "\nThe merged shared goals, identical on both devices:")?;
    let (a, s) = (alex.export()?, sam.export()?);
    show_goals(ctx, &a)?;
    let p = alex.progress(None)?;
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
        if keep {
            "Try it yourself: `duet history`, `duet progress`, `duet report --html FILE`."
        } else {
            "Try it yourself: `duet history`, `duet progress`, `duet report --html FILE` (run `duet demo --keep` to keep the folders)."
        },
    )?;
    let same = serde_json::to_value(&a.shared)? == serde_json::to_value(&s.shared)?;
    say(
        ctx,
        format!("\nAlex's and Sam's shared documents are identical: {same}"),
    )?;
    let on_sams = s.personal.reflections.iter();
    say(
        ctx,
        format!(
            "Alex's private reflections: {} on Alex's device, {} on Sam's.",
            a.personal.reflections.len(),
            on_sams.filter(|r| r.author == a.me.person).count()
        ),
    )?;
    Ok(same)
}

/// The shared goals with their expected outcomes, ratings and steps.
fn show_goals(ctx: &Ctx, export: &Export) -> anyhow::Result<()> {
    let shared = &export.shared;
    for g in &shared.goals {
        say(ctx, format!("  {}  {} [{}]", short(&g.id), g.title, g.area))?;
        if let Some(expected) = g.levels.get("0").filter(|e| !e.is_empty()) {
            say(ctx, format!("      expected: {expected}"))?;
        }
        for r in shared.ratings.iter().filter(|r| r.goal == g.id) {
            let level = Level::try_from(r.level)
                .map(|l| l.to_string())
                .unwrap_or_default();
            let rater = shared.people.get(&r.rater).map(|p| p.name.as_str());
            say(
                ctx,
                format!(
                    "      {:<5} rated {level:>2}  {}",
                    rater.unwrap_or_default(),
                    r.note.as_deref().unwrap_or_default()
                ),
            )?;
        }
        for s in &g.steps {
            say(ctx, format!("      step: {}", s.text))?;
        }
    }
    Ok(())
}
