//! `duet undo`: take back your latest rating, reflection (or edit of one) or step
//! completion.

use duet_core::app::Undone;
use duet_core::ids::short;

use crate::output::{LIST_TITLE_CHARS, clip, safe_line};

use super::Ctx;

/// Undo your latest rating, reflection or step completion (whichever came last): a
/// rating or reflection is withdrawn, a step reopened; after an edit of a reflection, the
/// edit is taken back (its words before it written again). The history keeps both and
/// says so.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  duet undo")]
pub struct Args {}

/// Runs `duet undo`.
pub fn run(ctx: &Ctx, _a: Args) -> anyhow::Result<()> {
    let mut dev = ctx.device()?;
    let (undone, _held) = crate::interrupt::saving(&mut dev, |dev| dev.undo())?;
    if ctx.out.json {
        return ctx.out.json(&undone);
    }
    ctx.out.line(said(&undone))?;
    Ok(())
}

/// A reflection as `undo` names it: a reply, a private reflection, a reflection.
fn what(private: bool, reply: bool) -> &'static str {
    match (private, reply) {
        (_, true) => "reply",
        (true, false) => "private reflection",
        (false, false) => "shared reflection",
    }
}

/// A title or text as `undo` names it: quoted, cut to a list's width.
fn quoted(text: &str) -> String {
    format!("\"{}\"", safe_line(&clip(text, LIST_TITLE_CHARS)))
}

/// What `undo` would take back, named for a button ("Undo …").
pub fn named(undone: &Undone) -> String {
    match undone {
        Undone::Rating {
            title,
            level,
            sealed,
            ..
        } => format!(
            "your {}rating of {}{}",
            if *sealed { "blind " } else { "" },
            quoted(title),
            level.map_or(String::new(), |l| format!(" ({l})"))
        ),
        Undone::Reflection {
            private,
            text,
            edit,
            reply,
            ..
        } => format!(
            "{}your {} {}",
            if *edit { "the edit of " } else { "" },
            what(*private, *reply),
            quoted(text)
        ),
        Undone::Step { title, text, .. } => {
            format!("completing the step {} of {}", quoted(text), quoted(title))
        }
    }
}

/// What was undone, in a sentence that names it (the goal's title, the level, the text).
pub fn said(undone: &Undone) -> String {
    match undone {
        Undone::Rating {
            goal,
            title,
            level,
            sealed,
            answered,
            restored,
            ..
        } => format!(
            "Withdrew your {}rating of {} ({}){}{}{}.",
            if *sealed { "blind " } else { "" },
            quoted(title),
            short(goal),
            level.map_or(String::new(), |l| format!(": {l} ({})", l.meaning())),
            match (sealed, answered) {
                (true, true) => {
                    "; your partner had already rated against it, so they see it, withdrawn, \
                     at your next sync"
                }
                (true, false) => "; as far as this device knows, your partner has not seen it",
                // In the clear, or revealed: even unsent, taking it back sends it,
                // withdrawn (Automerge keeps what a withdrawal builds on), so the partner
                // sees the level in the history.
                (false, _) => "; the shared history keeps it, level and all, marked withdrawn",
            },
            restored.map_or(String::new(), |l| format!(
                "; it corrected your earlier rating, {l}, which counts again"
            ))
        ),
        Undone::Reflection {
            id,
            private,
            reply,
            restored: Some(restored),
            ..
        } => format!(
            "Took back your edit of your {} {}: it reads {} again.",
            what(*private, *reply),
            short(id),
            quoted(restored)
        ),
        Undone::Reflection {
            id,
            private,
            text,
            reply,
            ..
        } => format!(
            "Withdrew your {} {} ({}).",
            what(*private, *reply),
            short(id),
            quoted(text)
        ),
        Undone::Step {
            title,
            text,
            also_done_by,
            ..
        } if !also_done_by.is_empty() => format!(
            "Reopened the step {} of {}. {} had marked it done too, while apart: it is open for both of you again ({} can mark it done again).",
            quoted(text),
            quoted(title),
            crate::output::safe_line(&also_done_by.join(" and ")),
            crate::output::safe_line(&also_done_by.join(" or "))
        ),
        Undone::Step { title, text, .. } => {
            format!("Reopened the step {} of {}.", quoted(text), quoted(title))
        }
    }
}
