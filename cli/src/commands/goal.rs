//! `duet goal`: add, list, show, edit goals and set their status.

use std::collections::BTreeMap;

use duet_core::app::{
    GoalChanges, GoalDetail, GoalRecord, GoalShowJson, NewGoalInput, Owner, RatingRecord,
    SealedRecord, sorted_steps,
};
use duet_core::ids::short;
use duet_core::model::Goal;
use duet_core::{Area, Level, Status};
use serde_json::json;

use super::Ctx;
use super::export::PROBLEMS_NAMED;
use crate::output::{name_of, safe_line, short_id};

fn level_text(s: &str) -> Result<(i8, String), String> {
    let (l, t) = s
        .split_once('=')
        .ok_or_else(|| format!("expected LEVEL=TEXT, e.g. -2=\"We did not talk\" (got {s:?})"))?;
    let level: Level = l
        .parse()
        .map_err(|e: duet_core::vocab::LevelError| e.to_string())?;
    Ok((level.value(), t.to_string()))
}

/// A title: not blank (a usage error, as any other malformed argument).
fn title_text(s: &str) -> Result<String, String> {
    if duet_core::app::blank(s) {
        return Err(
            "the title is empty (or only invisible characters); give the goal a few words".into(),
        );
    }
    Ok(s.to_string())
}

/// A due day as YYYY-MM-DD, a day that exists; a usage error in one line otherwise
/// (checked here rather than by clap, whose errors take three lines).
fn due_day(s: &str) -> Result<String, crate::UsageError> {
    super::calendar_day(s)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .ok_or_else(|| crate::UsageError(format!("--due {}", super::bad_day(s))))
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
        #[arg(value_parser = title_text)]
        title: String,
        /// communication, trust, emotional-support, empathy, conflict-resolution,
        /// intimacy, quality-time, shared-vision or other.
        #[arg(long, value_parser = area_words(), ignore_case = true)]
        area: Area,
        /// Why this goal matters to you both.
        #[arg(long, allow_hyphen_values = true)]
        why: Option<String>,
        /// The expected outcome (GAS level 0), ideally a SMART statement.
        #[arg(long, allow_hyphen_values = true)]
        expected: Option<String>,
        /// Another GAS level's description, as LEVEL=TEXT (repeatable).
        #[arg(long = "level", value_parser = level_text, allow_hyphen_values = true, value_name = "LEVEL=TEXT")]
        levels: Vec<(i8, String)>,
        /// Due date, YYYY-MM-DD.
        #[arg(long)]
        due: Option<String>,
        /// A goal of your own (about you; your partner still sees and rates it).
        #[arg(long)]
        mine: bool,
    },
    /// List active goals (all with --all).
    #[command(after_help = "Examples:\n  duet goal list\n  duet goal list --all")]
    List {
        /// Include paused, achieved and archived goals.
        #[arg(long)]
        all: bool,
    },
    /// Show one goal with its levels, steps and ratings.
    #[command(
        after_help = "Examples:\n  duet goal show \"Weekly check-in\"\n  duet goal show weekly       # the start or a word of the title is enough"
    )]
    Show {
        /// The goal: its title, a word or the start of it, or the start of its id.
        goal: String,
    },
    /// Edit a goal's fields.
    #[command(
        after_help = "Example:\n  duet goal edit weekly --due 2026-12-31 --why \"We drift apart when we stop talking\""
    )]
    Edit {
        /// The goal: its title, a word or the start of it, or the start of its id.
        goal: String,
        /// New title.
        #[arg(long, value_parser = title_text, allow_hyphen_values = true)]
        title: Option<String>,
        /// New area.
        #[arg(long, value_parser = area_words(), ignore_case = true)]
        area: Option<Area>,
        /// New why.
        #[arg(long, allow_hyphen_values = true)]
        why: Option<String>,
        /// New expected outcome (level 0).
        #[arg(long, allow_hyphen_values = true)]
        expected: Option<String>,
        /// New level description, LEVEL=TEXT (repeatable).
        #[arg(long = "level", value_parser = level_text, allow_hyphen_values = true, value_name = "LEVEL=TEXT")]
        levels: Vec<(i8, String)>,
        /// New due date, YYYY-MM-DD, or "none" to clear it.
        #[arg(long)]
        due: Option<String>,
        /// Your GAS weight for this goal (default 1).
        #[arg(long, allow_hyphen_values = true)]
        weight: Option<f64>,
        /// Whose goal it is: `shared` (both of yours) or `me` (your own). A goal of your
        /// partner's own is theirs to change.
        #[arg(long, value_name = "shared|me")]
        owner: Option<Owner>,
    },
    /// Set a goal's status: active, paused, achieved or archived.
    #[command(
        after_help = "Examples:\n  duet goal status weekly paused   # a break, not the end\n  duet goal status weekly active"
    )]
    Status {
        /// The goal: its title, a word or the start of it, or the start of its id.
        goal: String,
        /// The new status.
        #[arg(value_parser = status_words(), ignore_case = true)]
        status: Status,
    },
}

/// The areas as the parser's possible values: shell completion offers them, and a typo
/// gets the parser's "a similar value exists".
fn area_words() -> impl clap::builder::TypedValueParser<Value = Area> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(Area::ALL.iter().map(|a| a.as_str()))
        .try_map(|s| s.parse::<Area>())
}

/// The statuses as the parser's possible values (see [`area_words`]).
fn status_words() -> impl clap::builder::TypedValueParser<Value = Status> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(Status::ALL.iter().map(|a| a.as_str()))
        .try_map(|s| s.parse::<Status>())
}

/// Runs `duet goal`.
pub fn run(ctx: &Ctx, cmd: GoalCmd) -> anyhow::Result<()> {
    match cmd {
        GoalCmd::Add {
            title,
            area,
            why,
            expected,
            levels,
            due,
            mine,
        } => {
            let levels = level_texts(levels, expected)?;
            let due = due.as_deref().map(due_day).transpose()?;
            let mut dev = ctx.device()?;
            let input = NewGoalInput {
                title,
                area: Some(area),
                why,
                levels,
                due,
                mine,
            };
            let (id, _held) = crate::interrupt::saving(&mut dev, |dev| dev.add_goal(input))?;
            if ctx.out.json {
                ctx.out.json(&json!({ "id": id }))?;
            } else {
                ctx.out.line(format!("Added goal {}.", short(&id)))?;
            }
            // A JSON line on stderr under --json, as every note.
            same_title_note(&mut dev, &id);
            Ok(())
        }
        GoalCmd::List { all } => super::goal_list::list(ctx, all),
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
            owner,
        } => {
            let changes = GoalChanges {
                title,
                area,
                why,
                levels: level_texts(levels, expected)?,
                // `--due none` clears the due day.
                due: match due {
                    Some(d) if d.trim().eq_ignore_ascii_case("none") => Some(None),
                    Some(d) => Some(Some(due_day(&d)?)),
                    None => None,
                },
                weight,
                owner,
            };
            edit(ctx, &goal, changes)
        }
        GoalCmd::Status { goal, status } => set_status(ctx, &goal, status),
    }
}

/// `duet goal status`: the status set, or that the goal had it already.
fn set_status(ctx: &Ctx, goal: &str, status: Status) -> anyhow::Result<()> {
    let mut dev = ctx.device()?;
    let ((id, changed), _held) =
        crate::interrupt::saving(&mut dev, |dev| dev.set_goal_status(goal, status))?;
    if ctx.out.json {
        return ctx
            .out
            .json(&json!({ "id": id, "status": status.as_str(), "changed": changed }));
    }
    ctx.out.line(if changed {
        format!("Goal {} is now {status}.", short_id(&id))
    } else {
        format!(
            "Goal {} was {status} already; nothing changed.",
            short_id(&id)
        )
    })?;
    Ok(())
}

/// `duet goal edit`: the changes made, said.
fn edit(ctx: &Ctx, goal: &str, changes: GoalChanges) -> anyhow::Result<()> {
    let retitled = changes.title.is_some();
    let mut dev = ctx.device()?;
    let ((id, changed), _held) =
        crate::interrupt::saving(&mut dev, |dev| dev.edit_goal(goal, changes))?;
    if ctx.out.json {
        return ctx.out.json(&json!({ "id": id, "changed": changed }));
    }
    ctx.out.line(if changed {
        format!("Edited goal {}.", short_id(&id))
    } else {
        "Nothing to change.".to_string()
    })?;
    // A title another goal has too names neither, as after `goal add`.
    if retitled && changed {
        same_title_note(&mut dev, &id);
    }
    Ok(())
}

/// Says when another goal has the title `id` was given (in any letter case): the title
/// then names neither, and each is named by the start of its id.
fn same_title_note(dev: &mut duet_core::device::Device, id: &str) {
    let Ok(list) = dev.goals(true) else { return };
    let Some(title) = list
        .goals
        .iter()
        .find(|g| g.id == id)
        .map(|g| g.title.as_str().trim().to_lowercase())
    else {
        return;
    };
    let others: Vec<String> = list
        .goals
        .iter()
        .filter(|g| g.id != id && g.title.as_str().trim().to_lowercase() == title)
        .map(|g| format!("{} ({})", short_id(&g.id), g.status.as_str()))
        .collect();
    if !others.is_empty() {
        crate::output::note(&format!(
            "note: another goal has this title too: {}; name each by the start of its id (`duet goal show {}`), or retitle one with `duet goal edit ID --title`",
            others.join(", "),
            short(id)
        ));
    }
}

/// The level descriptions given with `--level` and `--expected` (level 0); a level given
/// twice is a usage error (which one was meant cannot be told, and one would be lost).
fn level_texts(
    levels: Vec<(i8, String)>,
    expected: Option<String>,
) -> anyhow::Result<BTreeMap<i8, String>> {
    let mut lv: BTreeMap<i8, String> = BTreeMap::new();
    let given = levels.into_iter().chain(expected.map(|e| (0, e)));
    for (level, text) in given {
        if lv.insert(level, text).is_some() {
            let how = if level == 0 {
                "--expected and --level 0=TEXT (or --level 0 twice)".to_string()
            } else {
                format!("--level {level}=TEXT twice")
            };
            anyhow::bail!(crate::UsageError(format!(
                "level {level} was given twice ({how}); give each level's text once"
            )));
        }
    }
    Ok(lv)
}

/// A goal this version cannot read: what it holds is listed, then the show fails.
fn unreadable_goal(ctx: &Ctx, unreadable: &[duet_core::readmodel::Problem]) -> anyhow::Result<()> {
    if ctx.out.json {
        ctx.out.json(&json!({ "problems": unreadable }))?;
    } else {
        super::export::print_problems(&ctx.out, unreadable, Some(PROBLEMS_NAMED))?;
    }
    anyhow::bail!(
        "this goal cannot be read on this device (what it holds is listed {}); it is kept \
         in the document and shown once it is fixed or duet is upgraded",
        if ctx.out.json { "on stdout" } else { "above" }
    )
}

fn show(ctx: &Ctx, query: &str) -> anyhow::Result<()> {
    let mut dev = ctx.view_device()?;
    let detail = dev.goal_detail(query, None)?;
    let (g, ratings, problems, people, reflections, sealed) = match detail {
        GoalDetail::Found {
            goal,
            ratings,
            problems,
            people,
            reflections,
            sealed,
            ..
        } => (goal, ratings, problems, people, reflections, sealed),
        // A goal this version cannot read: show what it holds instead of "no such goal",
        // and fail, so that a script does not take the problems for the goal.
        GoalDetail::Unreadable(unreadable) => return unreadable_goal(ctx, &unreadable),
    };
    let merged = dev.merged_texts(Some(&g.id))?;
    if ctx.out.json {
        return ctx.out.json(&GoalShowJson {
            goal: GoalRecord::from(g.as_ref()),
            ratings: ratings.iter().map(RatingRecord::from).collect(),
            sealed: &sealed,
            reflections: &reflections,
            problems: &problems,
            merged_while_apart: &merged,
        });
    }
    print_goal(ctx, &g, &people, &crate::output::day(dev.now()))?;
    for m in &merged {
        ctx.out.line(format!("  {}", merged_note(m)))?;
    }
    let me = dev.me.person_id.to_string();
    // One's own blind ratings are among the ratings (this device opens them), marked
    // there; the list below is of the partner's.
    let own_sealed: Vec<&str> = sealed
        .iter()
        .filter(|s| s.rater == me)
        .map(|s| s.id.as_str())
        .collect();
    // A device that left or was removed never opens a seal again (read only when
    // something is sealed).
    let gone = !sealed.is_empty() && dev.departed()?.is_some();
    let own_mark = if gone {
        format!("  (blind: {})", crate::advice::STAYS_SEALED)
    } else {
        "  (blind: sealed until your partner rates too)".to_string()
    };
    super::goal_ratings::print_ratings(
        ctx,
        &ratings,
        &people,
        (!sealed.is_empty(), &own_sealed, &own_mark),
    )?;
    let theirs: Vec<&SealedRecord> = sealed.iter().filter(|s| s.rater != me).collect();
    super::goal_ratings::print_partner_seals(ctx, &mut dev, &theirs, &people, gone)?;
    if !reflections.is_empty() {
        ctx.out.line("  reflections:")?;
        for r in &reflections {
            for (item, pad) in
                std::iter::once((r, "    ")).chain(r.replies.iter().map(|x| (x, "      ↳ ")))
            {
                ctx.out.line(format!(
                    "{pad}{} {}: {}",
                    crate::output::day_of(&item.at),
                    safe_line(&item.author_name),
                    safe_line(&item.text)
                ))?;
            }
        }
    }
    super::export::print_problems(&ctx.out, &problems, Some(PROBLEMS_NAMED))?;
    Ok(())
}

/// What to say of a goal text merged from edits made on both sides while apart, with
/// the command that sets it.
pub fn merged_note(m: &duet_core::history::MergedText) -> String {
    let goal = short_id(&m.goal);
    let (what, command) = match m.field.as_str() {
        "title" => (
            "title".to_string(),
            format!("duet goal edit {goal} --title TITLE"),
        ),
        "why" => (
            "why".to_string(),
            format!("duet goal edit {goal} --why TEXT"),
        ),
        step if step.starts_with("step:") => {
            let step = short_id(step.trim_start_matches("step:"));
            (
                format!("text of step {step}"),
                format!("duet step edit {goal} {step} TEXT"),
            )
        }
        level => {
            let l = level.strip_prefix("level:").unwrap_or(level);
            (
                format!("level {l} text"),
                format!("duet goal edit {goal} --level {l}=TEXT"),
            )
        }
    };
    format!(
        "note: the {what} of goal {goal} was changed on two devices while apart, and the two \
         changes were merged letter by letter: it reads \"{}\". Set it as it should read: \
         `{command}`",
        safe_line(&m.reads),
    )
}

/// "Alex's goal" for a goal of one person's own; `None` for a shared one.
pub fn whose(g: &Goal, people: &BTreeMap<String, String>) -> Option<String> {
    (g.owner != "shared").then(|| format!("{}'s goal", name_of(people, &g.owner)))
}

/// A goal's title, fields, level descriptions and steps.
fn print_goal(
    ctx: &Ctx,
    g: &Goal,
    people: &BTreeMap<String, String>,
    today: &str,
) -> Result<(), crate::output::StdoutError> {
    let out = ctx.out;
    out.line(format!(
        "{}  {}",
        short_id(&g.id),
        safe_line(g.title.as_str())
    ))?;
    out.line(format!(
        "  area: {}   status: {}   due: {}{}{}",
        safe_line(g.area.as_str()),
        safe_line(g.status.as_str()),
        safe_line(g.due.as_deref().unwrap_or("-")),
        if duet_core::app::overdue(g, today) {
            " (overdue)"
        } else {
            ""
        },
        whose(g, people)
            .map(|w| format!("   {w}"))
            .unwrap_or_default()
    ))?;
    if !g.why.as_str().is_empty() {
        out.line(format!("  why: {}", safe_line(g.why.as_str())))?;
    }
    // Weights change the T-scores, so they are shown once one is not the default 1.
    if g.weights.values().any(|w| *w != 1.0) {
        let each: Vec<String> = g
            .weights
            .iter()
            .map(|(p, w)| format!("{} {w}", name_of(people, p)))
            .collect();
        out.line(format!(
            "  weights: {} (others 1; how much it counts in each T-score)",
            each.join(", ")
        ))?;
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
        for s in sorted_steps(g) {
            out.line(format!(
                "    [{}] {}  {}{}",
                if s.done_at.is_some() { "x" } else { " " },
                short_id(&s.id),
                safe_line(s.text.as_str()),
                s.assignee
                    .as_deref()
                    .map(|a| format!("  (for {})", name_of(people, a)))
                    .unwrap_or_default()
            ))?;
        }
    }
    Ok(())
}

pub(super) fn warn_problems(ctx: &Ctx, problems: &[String]) {
    for p in problems.iter().take(PROBLEMS_NAMED) {
        ctx.out.warn(format!(
            "cannot read {}; it is kept, and shown once it is fixed or duet is upgraded",
            safe_line(p)
        ));
    }
    if problems.len() > PROBLEMS_NAMED {
        ctx.out.warn(format!(
            "cannot read {} more; `duet export` lists them all",
            problems.len() - PROBLEMS_NAMED
        ));
    }
}
