//! `duet rate`: one partner's GAS rating of a goal.

use duet_core::Level;
use serde_json::json;

use super::Ctx;
use crate::output::short_id;

/// Rate a goal on the GAS scale: -2 much less than expected, -1 less, 0 as expected,
/// 1 more, 2 much more. Ratings are blind: until your partner has rated the goal in
/// this check-in round too, their devices receive only a sealed commitment.
#[derive(Debug, clap::Args)]
#[command(
    allow_negative_numbers = true,
    after_help = "Examples:
  duet rate \"Weekly check-in\" -1 --note \"We skipped one Sunday\"
  duet rate weekly 1      # the start or a word of the title is enough
  duet rate weekly 1 --amend      # I typed -1, I meant +1"
)]
pub struct Args {
    /// The goal: its title, a word or the start of it, or the start of its id.
    goal: String,
    /// GAS level: -2, -1, 0, 1 or 2.
    #[arg(allow_hyphen_values = true)]
    level: Level,
    /// A note about this rating.
    #[arg(long, allow_hyphen_values = true)]
    note: Option<String>,
    /// Correct your latest rating of this goal (both stay in the history).
    #[arg(long)]
    amend: bool,
}

/// Runs `duet rate`.
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    super::within_text_limit("the note (--note)", a.note.as_deref())?;
    let mut dev = ctx.device()?;
    let (rated, _held) = crate::interrupt::saving(&mut dev, |dev| match a.amend {
        true => dev.amend_rating(&a.goal, a.level, a.note.as_deref()),
        false => dev.rate(&a.goal, a.level, a.note.as_deref()),
    })?;
    if ctx.out.json {
        return ctx.out.json(&json!({
            "id": rated.id,
            "goal": rated.goal,
            "level": rated.level,
            "sealed": rated.sealed,
            "amended": a.amend,
            "revealed": rated.revealed,
        }));
    }
    print_rated(ctx, &rated, a.level, a.amend)?;
    note_dated_ahead(ctx, &mut dev, &rated.goal)
}

/// Says so when the goal is not among those progress shows (paused or archived), or
/// when this person's latest rating of it is still one dated ahead of this device's
/// clock (given while a clock was wrong): it, not the one just given, stays the latest
/// until its time comes, unless `--amend` replaces it.
fn note_dated_ahead(
    ctx: &Ctx,
    dev: &mut duet_core::device::Device,
    goal: &str,
) -> anyhow::Result<()> {
    if ctx.out.quiet {
        return Ok(());
    }
    let p = dev.progress(None)?;
    // Progress shows the goals that count (active and achieved): a rating of a paused
    // or archived goal is kept, but shown nowhere until the goal counts again.
    if !p.goals.iter().any(|g| g.goal == goal) {
        ctx.out.line(format!(
            "note: goal {} is paused or archived, so `duet progress` does not show it; \
             `duet goal status {} active` counts it again.",
            short_id(goal),
            short_id(goal)
        ))?;
        return Ok(());
    }
    let ahead = p
        .goals
        .iter()
        .filter(|g| g.goal == goal)
        .flat_map(|g| &g.partners)
        .find(|s| s.person == p.me && s.dated_ahead);
    if let Some(s) = ahead
        && let Some(at) = s.latest_at
    {
        ctx.out.line(format!(
            "note: your latest rating of this goal is still the {} dated {} (a clock was \
             wrong when you gave it?); if that date is wrong, replace it with `duet rate \
             {} LEVEL --amend`.",
            super::progress::level(s.latest),
            crate::output::day(at),
            short_id(goal)
        ))?;
    }
    Ok(())
}

/// One line per rating, saying whether the partner can see it yet.
pub fn print_rated(
    ctx: &Ctx,
    rated: &duet_core::app::Rated,
    level: Level,
    amend: bool,
) -> anyhow::Result<()> {
    // A round already over (a correction of a rating in last week's round) is not
    // waited for: its rating is revealed at once (the line after says so), or waits for
    // the partner only.
    let now = ctx.clock.now();
    let sealed = match rated.round_ends_at.filter(|_| rated.sealed) {
        Some(at) if at > now => format!(
            "; sealed until your partner rates it too or the check-in round ends ({}; either of you may close it sooner)",
            crate::output::when(at)
        ),
        Some(_) if rated.revealed == 0 => "; sealed until your partner rates it too".to_string(),
        _ => String::new(),
    };
    ctx.out.line(format!(
        "{} \"{}\" ({}) at {} ({}){}.",
        if amend {
            "Corrected your rating of"
        } else {
            "Rated"
        },
        crate::output::safe_line(&crate::output::clip(
            &rated.title,
            crate::output::LIST_TITLE_CHARS
        )),
        short_id(&rated.goal),
        level,
        level.meaning(),
        sealed
    ))?;
    // Which rating it replaced: on a device not synced yet, the newest it holds may be
    // an older one than meant (one made since on another device stays as it is), and a
    // revealed one is corrected in the clear.
    if let Some(at) = rated.corrected_at.filter(|_| amend) {
        ctx.out.line(format!(
            "It replaces your rating given {}, the newest this device holds{}.",
            crate::output::when(at),
            if rated.sealed {
                ""
            } else {
                "; your partner had seen it, and sees the correction too"
            }
        ))?;
        ctx.out.line(
            "(A rating of yours made since on another device is not replaced: if there is \
             one, `duet undo` this, `duet sync`, then amend again.)",
        )?;
    }
    if rated.revealed > 0 {
        ctx.out.line(format!(
            "Revealed {} to your partner.",
            duet_core::words::count(rated.revealed, "sealed rating", "sealed ratings")
        ))?;
    }
    Ok(())
}
