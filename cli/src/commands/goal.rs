//! `duet goal`: add, list, show, edit goals and set their status.

use anyhow::Context;
use std::collections::BTreeMap;

use duet_core::doc::{GoalEdit, NewGoal};
use duet_core::ids::short;
use duet_core::model::Goal;
use duet_core::readmodel::Problem;
use duet_core::store::SpaceKind;
use duet_core::{Area, Level, Status};
use serde_json::json;

use super::{Ctx, resolve_goal};
use crate::output::{goal_json, name_of, rating_json, safe_line, short_id, when};

/// Parses `LEVEL=TEXT`, e.g. `-2=We did not talk at all`.
fn level_text(s: &str) -> Result<(i8, String), String> {
    let (l, t) = s
        .split_once('=')
        .ok_or_else(|| format!("expected LEVEL=TEXT, e.g. -2=\"We did not talk\" (got {s:?})"))?;
    let level: Level = l
        .parse()
        .map_err(|e: duet_core::vocab::LevelError| e.to_string())?;
    Ok((level.value(), t.to_string()))
}

/// Goal subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum GoalCmd {
    /// Add a goal.
    #[command(
        after_help = "Example:\n  duet goal add \"Weekly check-in\" --area communication \\\n    --expected \"We talk 30 minutes every Sunday\" --level -2=\"We do not talk\" --level 2=\"We talk twice a week\""
    )]
    Add {
        /// The goal's title.
        title: String,
        /// communication, trust, emotional-support, empathy, conflict-resolution,
        /// intimacy, quality-time, shared-vision or other.
        #[arg(long)]
        area: Area,
        /// Why this goal matters to you both.
        #[arg(long)]
        why: Option<String>,
        /// The expected outcome (GAS level 0), ideally a SMART statement.
        #[arg(long)]
        expected: Option<String>,
        /// Another GAS level's description, as LEVEL=TEXT (repeatable).
        #[arg(long = "level", value_parser = level_text, allow_hyphen_values = true, value_name = "LEVEL=TEXT")]
        levels: Vec<(i8, String)>,
        /// Due date, YYYY-MM-DD.
        #[arg(long)]
        due: Option<String>,
    },
    /// List active goals (all with --all).
    List {
        /// Include paused, achieved and archived goals.
        #[arg(long)]
        all: bool,
    },
    /// Show one goal with its levels, steps and ratings.
    Show {
        /// Goal id prefix or exact title.
        goal: String,
    },
    /// Edit a goal's fields.
    Edit {
        /// Goal id prefix or exact title.
        goal: String,
        /// New title.
        #[arg(long)]
        title: Option<String>,
        /// New area.
        #[arg(long)]
        area: Option<Area>,
        /// New why.
        #[arg(long)]
        why: Option<String>,
        /// New expected outcome (level 0).
        #[arg(long)]
        expected: Option<String>,
        /// New level description, LEVEL=TEXT (repeatable).
        #[arg(long = "level", value_parser = level_text, allow_hyphen_values = true, value_name = "LEVEL=TEXT")]
        levels: Vec<(i8, String)>,
        /// New due date, YYYY-MM-DD, or "none" to clear it.
        #[arg(long)]
        due: Option<String>,
        /// Your GAS weight for this goal (default 1).
        #[arg(long)]
        weight: Option<f64>,
    },
    /// Set a goal's status: active, paused, achieved or archived.
    Status {
        /// Goal id prefix or exact title.
        goal: String,
        /// The new status.
        status: Status,
    },
}

/// Runs a goal subcommand.
pub fn run(ctx: &Ctx, cmd: GoalCmd) -> anyhow::Result<()> {
    match cmd {
        GoalCmd::Add {
            title,
            area,
            why,
            expected,
            levels,
            due,
        } => {
            let mut lv: BTreeMap<i8, String> = levels.into_iter().collect();
            if let Some(e) = expected {
                lv.insert(0, e);
            }
            let new = NewGoal {
                title,
                area: Some(area),
                why: why.unwrap_or_default(),
                levels: lv,
                owner: None,
                due,
            };
            let mut dev = ctx.device()?;
            let id = dev.edit(SpaceKind::Shared, |doc, me| {
                let (id, c) = doc.add_goal(&me.person_id, new, crate::clock::now())?;
                Ok((id, c.into_iter().collect()))
            })?;
            if ctx.out.json {
                return ctx.out.json(&json!({ "id": id }));
            }
            ctx.out.line(format!("Added goal {}.", short(&id)))?;
            Ok(())
        }
        GoalCmd::List { all } => list(ctx, all),
        GoalCmd::Show { goal } => show(ctx, &goal),
        GoalCmd::Edit {
            goal,
            title,
            area,
            why,
            expected,
            levels,
            due,
            weight,
        } => {
            let mut lv: BTreeMap<i8, String> = levels.into_iter().collect();
            if let Some(e) = expected {
                lv.insert(0, e);
            }
            let mut dev = ctx.device()?;
            let id = resolve_goal(
                &dev.view_parts(SpaceKind::Shared, duet_core::readmodel::Parts::Goals)?
                    .goals,
                &goal,
            )?;
            let person = dev.me.person_id.clone();
            let edit = GoalEdit {
                title,
                area,
                why,
                levels: lv,
                due: due.map(|d| {
                    if d.eq_ignore_ascii_case("none") {
                        None
                    } else {
                        Some(d)
                    }
                }),
                weight: weight.map(|w| (person, w)),
            };
            if let Some((_, w)) = &edit.weight
                && (!w.is_finite() || *w < 0.0)
            {
                {
                    return Err(crate::UsageError(format!(
                        "--weight must be a number of 0 or more (got {w})"
                    ))
                    .into());
                }
            }
            let changed = dev.edit(SpaceKind::Shared, |doc, _| {
                let c = doc.edit_goal(&id, edit, crate::clock::now())?;
                Ok((c.is_some(), c.into_iter().collect()))
            })?;
            ctx.out.line(if changed {
                format!("Edited goal {}.", short_id(&id))
            } else {
                "Nothing to change.".to_string()
            })?;
            Ok(())
        }
        GoalCmd::Status { goal, status } => {
            let mut dev = ctx.device()?;
            let id = resolve_goal(
                &dev.view_parts(SpaceKind::Shared, duet_core::readmodel::Parts::Goals)?
                    .goals,
                &goal,
            )?;
            dev.edit(SpaceKind::Shared, |doc, _| {
                let c = doc.set_status(&id, status, crate::clock::now())?;
                Ok(((), c.into_iter().collect()))
            })?;
            ctx.out
                .line(format!("Goal {} is now {status}.", short_id(&id)))?;
            Ok(())
        }
    }
}

fn list(ctx: &Ctx, all: bool) -> anyhow::Result<()> {
    let mut dev = ctx.device()?;
    let view = dev.view_parts(SpaceKind::Shared, duet_core::readmodel::Parts::Goals)?;
    warn_problems(ctx, &view);
    let goals: Vec<Goal> = view
        .goals
        .into_iter()
        .filter(|g| all || g.status == Status::Active.as_str())
        .collect();
    if ctx.out.json {
        return ctx
            .out
            .json(&goals.iter().map(goal_json).collect::<Vec<_>>());
    }
    if goals.is_empty() {
        ctx.out.line(if all {
            "No goals yet. Add one with `duet goal add TITLE --area AREA`."
        } else {
            "No active goals. `duet goal list --all` shows the others; `duet goal add` adds one."
        })?;
        return Ok(());
    }
    for g in &goals {
        let done = g.steps.values().filter(|s| s.done_at.is_some()).count();
        ctx.out.line(format!(
            "{}  {:<9} {:<20} {}  ({}/{} steps)",
            short_id(&g.id),
            safe_line(&g.status),
            safe_line(&g.area),
            safe_line(g.title.as_str()),
            done,
            g.steps.len()
        ))?;
    }
    Ok(())
}

fn show(ctx: &Ctx, query: &str) -> anyhow::Result<()> {
    let mut dev = ctx.device()?;
    let view = dev.view(SpaceKind::Shared)?;
    let problems = super::export::problems(&dev, SpaceKind::Shared, &view);
    let id = match resolve_goal(&view.goals, query) {
        Ok(id) => id,
        // A goal this version cannot read: show what it holds instead of "no such goal".
        Err(e) => {
            let unreadable: Vec<Problem> = problems
                .iter()
                .filter(|p| p.collection == "goals" && p.id.starts_with(query.trim()))
                .cloned()
                .collect();
            if unreadable.len() != 1 {
                return Err(e);
            }
            if ctx.out.json {
                return ctx.out.json(&json!({ "problems": unreadable }));
            }
            return super::export::print_problems(&ctx.out, &unreadable).map_err(Into::into);
        }
    };
    let g = view
        .goal(&id)
        .cloned()
        .with_context(|| format!("goal {id} is not in the shared space; run `duet goal list`"))?;
    let ratings: Vec<_> = view.ratings.iter().filter(|r| r.goal == id).collect();
    // Unreadable entities of this goal: itself or anything that names it.
    let problems: Vec<Problem> = problems
        .into_iter()
        .filter(|p| {
            (p.collection == "goals" && p.id == id)
                || p.raw.get("goal").and_then(|v| v.as_str()) == Some(id.as_str())
        })
        .collect();
    if ctx.out.json {
        let mut v = goal_json(&g);
        v["ratings"] = ratings.iter().map(|r| rating_json(r)).collect();
        v["problems"] = json!(problems);
        return ctx.out.json(&v);
    }
    let people: BTreeMap<String, String> = view
        .people
        .iter()
        .map(|(k, p)| (k.clone(), p.name.clone()))
        .collect();
    let out = ctx.out;
    out.line(format!(
        "{}  {}",
        short_id(&g.id),
        safe_line(g.title.as_str())
    ))?;
    out.line(format!(
        "  area: {}   status: {}   due: {}",
        safe_line(&g.area),
        safe_line(&g.status),
        safe_line(g.due.as_deref().unwrap_or("-"))
    ))?;
    if !g.why.as_str().is_empty() {
        out.line(format!("  why: {}", safe_line(g.why.as_str())))?;
    }
    out.line("  levels:")?;
    for l in (-2i8..=2).rev() {
        let text = g.levels.get(l).map(|t| t.as_str()).unwrap_or_default();
        out.line(format!(
            "    {:>2}  {}",
            Level::try_from(i64::from(l))
                .map(|x| x.to_string())
                .unwrap_or_default(),
            if text.is_empty() {
                "-".into()
            } else {
                safe_line(text)
            }
        ))?;
    }
    if !g.steps.is_empty() {
        out.line("  steps:")?;
        let mut steps: Vec<_> = g.steps.values().collect();
        steps.sort_by_key(|s| (s.created_at, s.id.clone()));
        for s in steps {
            out.line(format!(
                "    [{}] {}  {}",
                if s.done_at.is_some() { "x" } else { " " },
                short_id(&s.id),
                safe_line(s.text.as_str())
            ))?;
        }
    }
    if !ratings.is_empty() {
        out.line("  ratings:")?;
        for r in &ratings {
            let level = Level::try_from(r.level)
                .map(|l| l.to_string())
                .unwrap_or_else(|_| r.level.to_string());
            out.line(format!(
                "    {}  {:<10} {:>2}{}",
                when(r.at),
                name_of(&people, &r.rater),
                level,
                r.note
                    .as_deref()
                    .map(|n| format!("  {}", safe_line(n)))
                    .unwrap_or_default()
            ))?;
        }
    }
    super::export::print_problems(&out, &problems)?;
    Ok(())
}

/// Says on stderr which parts of the document this version could not read.
fn warn_problems(ctx: &Ctx, view: &duet_core::readmodel::View) {
    for p in &view.problems {
        ctx.out.warn(format!(
            "cannot read {}; it is kept, and shown once it is fixed or duet is upgraded",
            safe_line(p)
        ));
    }
}
