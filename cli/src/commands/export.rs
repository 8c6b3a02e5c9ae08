//! `duet export`: everything of both spaces, for backup or for a therapist.
//!
//! It reads the read models, not the document, and one entity this version cannot read
//! never stops it: everything readable is written, and each unreadable entity is listed
//! with its collection, id, reason and raw content (`problems` in JSON, a "could not
//! read" section in text), so a partner's malformed entity never traps the other data.

use anyhow::Context as _;
use duet_core::app::Export;
use duet_core::readmodel::Problem;

use super::Ctx;
use crate::output::{Out, name_of, safe, safe_line, when};

/// Export everything of the shared and personal space.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write the export to FILE, readable by you only (mode 0600), instead of standard
    /// output (a file the shell's `>` makes is readable by every user of the machine
    /// under the usual umask; replaced if it exists, as a newer export); `-` is
    /// standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<std::path::PathBuf>,
}

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
    for line in problem_lines(problems, named) {
        out.line(line)?;
    }
    Ok(())
}

/// The lines of [`print_problems`].
fn problem_lines(problems: &[Problem], named: Option<usize>) -> Vec<String> {
    if problems.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![
        "\nCould not read (kept in the document; shown once it is fixed or duet is upgraded):"
            .to_string(),
    ];
    let named = named.unwrap_or(problems.len());
    for p in problems.iter().take(named) {
        lines.push(format!(
            "  {} {}: {}",
            safe_line(&p.collection),
            safe_line(&p.id),
            safe_line(&p.reason)
        ));
        // JSON escapes C0 controls but not C1 ones: made safe like any partner text.
        lines.push(format!("    raw: {}", safe_line(&p.raw.to_string())));
    }
    if problems.len() > named {
        lines.push(format!(
            "  and {} more (`duet export` lists them all)",
            problems.len() - named
        ));
    }
    lines
}

/// Runs `duet export`.
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let export = ctx.device()?.export()?;
    let Some(file) = a.output.as_ref().filter(|f| f.as_os_str() != "-") else {
        if ctx.out.json {
            return ctx.out.json(&export);
        }
        for line in text_lines(&export) {
            ctx.out.line(line)?;
        }
        return Ok(());
    };
    let bytes = if ctx.out.json {
        let mut v = serde_json::to_vec_pretty(&export)?;
        v.push(b'\n');
        v
    } else {
        // Made safe as the lines printed on a terminal are.
        let lines: Vec<String> = text_lines(&export)
            .iter()
            .map(|l| format!("{}\n", safe(l)))
            .collect();
        lines.concat().into_bytes()
    };
    // Written and said before a signal stops the command.
    let _held = crate::interrupt::hold();
    let replaced = file.is_file();
    crate::output::write_private(file, &bytes, &ctx.home).with_context(|| {
        format!(
            "cannot write the export to {}; nothing was changed",
            file.display()
        )
    })?;
    if !ctx.out.json {
        ctx.out.line(format!(
            "Wrote the export to {} (readable by you only{}).",
            file.display(),
            if replaced {
                "; it replaced the file that was there"
            } else {
                ""
            }
        ))?;
    }
    Ok(())
}

/// The export as text, line by line.
fn text_lines(export: &Export) -> Vec<String> {
    let mut lines = Vec::new();
    let spaces = [&export.shared, &export.personal];
    for (space, title) in spaces
        .iter()
        .zip(["Shared space", "Personal space (only you)"])
    {
        let (view, problems) = (&space.view, &space.problems);
        let people = duet_core::names::shown(&view.people);
        lines.push(format!("# {title}"));
        // This person's ratings still sealed: the partner has not seen them (an export
        // handed on read them as seen).
        let sealed: std::collections::HashSet<&str> = duet_core::rituals::waiting_seals(view)
            .into_iter()
            .map(|s| s.id.as_str())
            .collect();
        for g in &view.goals {
            // Whose goal it is, as `goal show` and the report say (one person's own goal
            // read as a goal of both).
            let whose = super::goal::whose(g, &people)
                .map(|w| format!("; {w}"))
                .unwrap_or_default();
            lines.push(format!(
                "\n## {} [{}; {}{whose}]",
                safe_line(g.title.as_str()),
                safe_line(g.area.as_str()),
                safe_line(g.status.as_str())
            ));
            if !g.why.as_str().is_empty() {
                lines.push(format!("Why: {}", safe_line(g.why.as_str())));
            }
            for l in (-2i8..=2).rev() {
                if let Some(t) = g.levels.get(l).filter(|t| !t.as_str().is_empty()) {
                    lines.push(format!(
                        "  {}: {}",
                        crate::output::signed_level(l),
                        safe_line(t.as_str())
                    ));
                }
            }
            for s in g.steps.values() {
                lines.push(format!(
                    "  [{}] {}",
                    if s.done_at.is_some() { "x" } else { " " },
                    safe_line(s.text.as_str())
                ));
            }
            let ratings = view.ratings.iter().filter(|r| r.goal == g.id);
            lines.extend(ratings.map(|r| rating_line(r, &people, &sealed)));
        }
        if !view.reflections.is_empty() {
            lines.push("\n## Reflections".to_string());
            lines.extend(reflection_lines(view, &people));
        }
        if !space.never_sent.is_empty() {
            lines.push(
                "\n## Never sent (made on this device and not sent before its membership ended: your partner never had these)"
                    .to_string(),
            );
            lines.extend(space.never_sent.iter().map(|n| {
                format!(
                    "- {}  {}",
                    crate::output::when(n.at_ms),
                    safe_line(&n.summary)
                )
            }));
        }
        lines.extend(problem_lines(problems, None));
        lines.push(String::new());
    }
    lines
}

/// A rating as the export's text gives it, with the report's marks: a correction, a
/// rating given blind, one of this person's still `sealed` from the partner.
fn rating_line(
    r: &duet_core::model::Rating,
    people: &std::collections::BTreeMap<String, String>,
    sealed: &std::collections::HashSet<&str>,
) -> String {
    let marks: Vec<&str> = [
        r.corrects.as_ref().map(|_| "corrected"),
        r.reveals.as_ref().map(|_| "rated blind"),
        sealed
            .contains(r.id.as_str())
            .then_some("sealed: not shown to the partner yet"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let marks = match marks.is_empty() {
        true => String::new(),
        false => format!(" ({})", marks.join(", ")),
    };
    format!(
        "  {} {} rated {}{marks}{}",
        when(r.at),
        name_of(people, &r.rater),
        crate::output::signed_level(r.level.get()).trim_start(),
        r.note
            .as_deref()
            .map(|n| format!(": {}", safe_line(n)))
            .unwrap_or_default()
    )
}

/// How a reply is marked, under the reflection it answers.
const REPLY: &str = "↳ ";

/// The reflections of a space, each followed by its replies (indented, marked `↳`), as
/// `duet reflections` and the report show them; a reply whose reflection is not there
/// (withdrawn) says so. A reflection may run over several lines: they stay lines,
/// indented under their heading so none can pass for a heading of its own.
fn reflection_lines(
    view: &duet_core::readmodel::View,
    people: &std::collections::BTreeMap<String, String>,
) -> Vec<String> {
    // What it is about, as `duet reflections` says it: its goal, the prompt it answers.
    let about = |r: &duet_core::model::Reflection| {
        let goal = r
            .goal
            .as_deref()
            .and_then(|g| view.goals.iter().find(|x| x.id == g));
        let goal = goal.map(|g| format!(" on \"{}\"", safe_line(g.title.as_str())));
        let prompt = r
            .prompt
            .as_deref()
            .map(|p| format!(" (to \"{}\")", safe_line(p)));
        format!("{}{}", goal.unwrap_or_default(), prompt.unwrap_or_default())
    };
    // (A reply, under its reflection, is about what that one is about.)
    let line = |r: &duet_core::model::Reflection, indent: &str, lead: &str| {
        format!(
            "{indent}{lead}{} {}{}: {}",
            when(r.at),
            name_of(people, &r.author),
            if lead == REPLY {
                String::new()
            } else {
                about(r)
            },
            safe(r.text.as_str()).replace('\n', &format!("\n{indent}    "))
        )
    };
    // Replies by the reflection they answer, read once (years of reflections made this
    // a walk of every reflection per reflection).
    let mut replies: std::collections::HashMap<&str, Vec<&duet_core::model::Reflection>> =
        std::collections::HashMap::new();
    for r in &view.reflections {
        if let Some(to) = r.reply_to.as_deref() {
            replies.entry(to).or_default().push(r);
        }
    }
    let ids: std::collections::HashSet<&str> =
        view.reflections.iter().map(|r| r.id.as_str()).collect();
    let shown = |id: &str| ids.contains(id);
    let mut lines = Vec::new();
    for r in &view.reflections {
        match r.reply_to.as_deref() {
            None => {
                lines.push(line(r, "  ", ""));
                for reply in replies.get(r.id.as_str()).into_iter().flatten() {
                    lines.push(line(reply, "    ", REPLY));
                }
            }
            Some(to) if !shown(to) => lines.push(line(
                r,
                "  ",
                "(a reply to a reflection that was withdrawn) ",
            )),
            Some(_) => {}
        }
    }
    lines
}
