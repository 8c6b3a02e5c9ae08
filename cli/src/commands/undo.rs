//! `duet undo`: take back your latest rating, reflection (or edit of one) or step
//! completion.

use duet_core::Level;
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
    ctx.out.line(said(&undone, Words::Terminal))?;
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

/// Where `undo`'s sentences are read: a terminal, or the app's pages, which quote with
/// curly quotes and write a level's minus as − (and set the texts apart, [`texts`]).
#[derive(Debug, Clone, Copy)]
pub enum Words {
    /// Plain quotes and ASCII, as every command prints.
    Terminal,
    /// As the app's own words.
    Page,
}

impl Words {
    /// A title or text as `undo` names it: quoted, cut to a list's width.
    fn quoted(self, text: &str) -> String {
        let text = shown(text);
        match self {
            Words::Terminal => format!("\"{text}\""),
            Words::Page => format!("“{text}”"),
        }
    }

    /// A level as a number.
    fn level(self, level: &Level) -> String {
        match self {
            Words::Terminal => level.to_string(),
            Words::Page => level.to_string().replace('-', "−"),
        }
    }
}

/// A title or text as `undo`'s sentences hold it: cut to a list's width.
fn shown(text: &str) -> String {
    safe_line(&clip(text, LIST_TITLE_CHARS)).into_owned()
}

/// The people's texts in `undo`'s sentences about `undone`, as they appear there: a page
/// sets them apart from its words (a right-to-left title drew the level and the quotes
/// beside it into its own run).
pub fn texts(undone: &Undone) -> Vec<String> {
    match undone {
        Undone::Rating { title, .. } => vec![shown(title)],
        Undone::Reflection { text, restored, .. } => std::iter::once(text)
            .chain(restored)
            .map(|t| shown(t))
            .collect(),
        Undone::Step { title, text, .. } => vec![shown(text), shown(title)],
    }
}

/// What `undo` would take back, named for a button ("Undo …").
pub fn named(undone: &Undone, w: Words) -> String {
    match undone {
        Undone::Rating {
            title,
            level,
            sealed,
            ..
        } => format!(
            "your {}rating of {}{}",
            if *sealed { "blind " } else { "" },
            w.quoted(title),
            level.map_or(String::new(), |l| format!(" ({})", w.level(&l)))
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
            w.quoted(text)
        ),
        Undone::Step { title, text, .. } => {
            format!(
                "completing the step {} of {}",
                w.quoted(text),
                w.quoted(title)
            )
        }
    }
}

/// What a withdrawn rating leaves the partner to see.
fn seen_by_partner(sealed: bool, answered: bool) -> &'static str {
    match (sealed, answered) {
        (true, true) => {
            "; your partner had already rated against it, so they see it, withdrawn, \
             at your next sync"
        }
        (true, false) => "; as far as this device knows, your partner has not seen it",
        // In the clear, or revealed: even unsent, taking it back sends it, withdrawn
        // (Automerge keeps what a withdrawal builds on), so the partner sees the level in
        // the history.
        (false, _) => "; the shared history keeps it, level and all, marked withdrawn",
    }
}

/// What was undone, in a sentence that names it (the goal's title, the level, the text).
pub fn said(undone: &Undone, w: Words) -> String {
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
            w.quoted(title),
            short(goal),
            level.map_or(String::new(), |l| format!(
                ": {} ({})",
                w.level(&l),
                l.meaning()
            )),
            seen_by_partner(*sealed, *answered),
            restored.map_or(String::new(), |l| format!(
                "; it corrected your earlier rating, {}, which counts again",
                w.level(&l)
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
            w.quoted(restored)
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
            w.quoted(text)
        ),
        Undone::Step {
            title,
            text,
            also_done_by,
            ..
        } if !also_done_by.is_empty() => format!(
            "Reopened the step {} of {}. {} had marked it done too, while apart: it is open for both of you again ({} can mark it done again).",
            w.quoted(text),
            w.quoted(title),
            crate::output::safe_line(&also_done_by.join(" and ")),
            crate::output::safe_line(&also_done_by.join(" or "))
        ),
        Undone::Step { title, text, .. } => {
            format!(
                "Reopened the step {} of {}.",
                w.quoted(text),
                w.quoted(title)
            )
        }
    }
}
