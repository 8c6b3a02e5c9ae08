//! `duet reflect`: write a reflection, shared or private.

use std::io::Read;

use duet_core::app::ReflectionInput;
use duet_core::ids::short;
use serde_json::json;

use super::Ctx;

/// The most read of a reflection piped in (`reflect -`), in bytes.
const REFLECTION_INPUT_MAX: u64 = 1024 * 1024;

/// Write a reflection, answer one, or edit or withdraw your own. Private ones stay in
/// your personal space (your devices only).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  duet reflect --goal \"Weekly check-in\" \"Sunday talk went well\"\n  echo \"Only for me\" | duet reflect --private -\n  duet reflect --reply last \"It did. Thank you for listening.\"   # your partner's newest\n  duet reflect --edit last \"It did. Thank you for listening!\"\n  duet reflect --withdraw last                                  # your newest"
)]
pub struct Args {
    /// The goal it is about (its title, a word or the start of it, or the start of its id).
    #[arg(long)]
    goal: Option<String>,
    /// The prompt it answers.
    #[arg(long)]
    prompt: Option<String>,
    /// Keep it in your personal space: your partner never receives it. With `--edit
    /// last` or `--withdraw last`: your newest private reflection (else your newest
    /// shared one).
    #[arg(long)]
    private: bool,
    /// Answer a shared reflection: an id prefix (`duet reflections` shows them), or
    /// `last` for your partner's newest.
    #[arg(long, value_name = "REFLECTION", conflicts_with_all = ["goal", "prompt", "private", "edit", "withdraw"])]
    reply: Option<String>,
    /// Replace the text of one of your reflections (an id prefix, or `last`: your
    /// newest shared one, with --private your newest private one); the text before
    /// stays in the document's history, as a withdrawn one does.
    #[arg(long, value_name = "REFLECTION", conflicts_with_all = ["goal", "prompt", "withdraw"])]
    edit: Option<String>,
    /// Withdraw one of your reflections (an id prefix, or `last` as for --edit): its
    /// text leaves every view, the report and the export (it stays in the document's
    /// history on every device of the space, those that join later included).
    #[arg(long, value_name = "REFLECTION", conflicts_with_all = ["goal", "prompt", "text"])]
    withdraw: Option<String>,
    /// The reflection; `-` reads it from standard input.
    #[arg(required_unless_present = "withdraw", value_parser = super::non_blank)]
    text: Option<String>,
}

/// The reflection's text piped in (`reflect -`), read boundedly and checked as a text
/// argument is.
fn piped_text() -> anyhow::Result<String> {
    let mut s = String::new();
    // Past the longest text a reflection may hold (100,000 characters of up to
    // four bytes) nothing more is read: gigabytes piped in were read whole.
    let mut input = std::io::stdin().lock().take(REFLECTION_INPUT_MAX + 1);
    let read = input.read_to_string(&mut s);
    if input.limit() == 0 {
        anyhow::bail!(crate::UsageError(format!(
            "standard input holds more than {} MiB, longer than a reflection may be \
             (100,000 characters); nothing was saved: shorten it",
            REFLECTION_INPUT_MAX >> 20
        )));
    }
    if let Err(e) = read {
        // Bytes that are not text are the input's fault, as for a text argument.
        if e.kind() == std::io::ErrorKind::InvalidData {
            anyhow::bail!(crate::UsageError(
                "standard input is not UTF-8 text; nothing was saved".into()
            ));
        }
        return Err(anyhow::Error::new(e).context("cannot read the reflection from standard input"));
    }
    // NUL bytes are no text anyone wrote (a binary file, `/dev/zero`): refused as
    // bytes that are not UTF-8 are, rather than saved as a blank reflection.
    if s.contains('\0') {
        anyhow::bail!(crate::UsageError(
            "standard input holds NUL bytes, so it is not text (a binary file?); \
             nothing was saved"
                .into()
        ));
    }
    // Windows line ends (a file written there, a pasted text) as the app stores
    // them: one line end, not a `\r` the partner sees.
    let s = s.replace("\r\n", "\n").trim_end().to_string();
    // As a blank text argument is: a usage error (exit 2), nothing saved.
    if s.trim().is_empty() {
        anyhow::bail!(crate::UsageError(
            "standard input held no text for the reflection; nothing was saved".into()
        ));
    }
    Ok(s)
}

/// Runs `duet reflect`.
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    super::within_text_limit("the prompt (--prompt)", a.prompt.as_deref())?;
    let mut dev = ctx.device()?;
    if let Some(id) = &a.withdraw {
        let (mine, _held) =
            crate::interrupt::saving(&mut dev, |dev| dev.withdraw_reflection(id, a.private))?;
        return changed(ctx, &mine, "withdrew", "Withdrew");
    }
    let text = match a.text.as_deref() {
        Some("-") => piped_text()?,
        Some(t) => t.to_string(),
        None => anyhow::bail!(
            "write the reflection's text after the options, or `-` to read it from standard input"
        ),
    };
    if let Some(to) = &a.reply {
        let (id, _held) = crate::interrupt::saving(&mut dev, |dev| dev.reply(to, &text))?;
        return done(ctx, &id, "replied", "Saved your reply");
    }
    if let Some(id) = &a.edit {
        let (mine, _held) =
            crate::interrupt::saving(&mut dev, |dev| dev.edit_reflection(id, a.private, &text))?;
        return changed(ctx, &mine, "edited", "Edited");
    }
    let input = ReflectionInput {
        text,
        goal: a.goal,
        prompt: a.prompt,
        private: a.private,
    };
    let (id, _held) = crate::interrupt::saving(&mut dev, |dev| dev.reflect(input))?;
    if ctx.out.json {
        return ctx.out.json(&json!({ "id": id, "private": a.private }));
    }
    ctx.out.line(format!(
        "Saved {} reflection {}.",
        if a.private { "private" } else { "shared" },
        short(&id)
    ))?;
    Ok(())
}

/// Says which reflection an edit or withdrawal changed, and whether it is private.
fn changed(
    ctx: &Ctx,
    mine: &duet_core::app::OwnReflection,
    what: &str,
    verb: &str,
) -> anyhow::Result<()> {
    if ctx.out.json {
        return ctx.out.json(
            &json!({ "id": mine.id, what: true, "private": mine.private, "reply": mine.reply }),
        );
    }
    let kind = match (mine.private, mine.reply) {
        (_, true) => "reply",
        (true, false) => "private reflection",
        (false, false) => "shared reflection",
    };
    ctx.out
        .line(format!("{verb} your {kind} {}.", short(&mine.id)))?;
    Ok(())
}

fn done(ctx: &Ctx, id: &str, what: &str, text: &str) -> anyhow::Result<()> {
    if ctx.out.json {
        return ctx.out.json(&json!({ "id": id, what: true }));
    }
    ctx.out.line(format!("{text} {}.", short(id)))?;
    Ok(())
}
