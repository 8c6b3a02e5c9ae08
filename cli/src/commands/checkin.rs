//! `duet checkin`: rate the active goals blind, one after the other, or close the round.

use duet_core::Level;
use duet_core::app::{CheckinGoal, Rated};
use serde_json::json;

use super::Ctx;
use crate::output::safe_line;

/// A check-in: rate each active goal on your own. Your ratings stay sealed from your
/// partner until they have rated the same goal, or the round closes (after 7 days, or
/// with --close); then both of you see both.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Answers piped in: two lines per active goal, in the order listed, a level (-2..2, empty to skip) then a note (empty for none); a wrong level stops with nothing rated.\n\nExamples:\n  duet checkin                          # asks, goal by goal (or reads answers piped in)\n  duet checkin --rate weekly=1 --note \"weekly=Two good talks\" --period 14d\n  duet checkin --close                  # reveal this round's ratings now"
)]
pub struct Args {
    /// Rate without questions: GOAL=LEVEL (repeat for each goal).
    #[arg(long = "rate", value_name = "GOAL=LEVEL", allow_hyphen_values = true)]
    rate: Vec<String>,
    /// A note for a goal rated with --rate: GOAL=TEXT.
    #[arg(
        long = "note",
        value_name = "GOAL=TEXT",
        requires = "rate",
        allow_hyphen_values = true
    )]
    note: Vec<String>,
    /// How long the round this check-in opens stays open, when none is open: 3d, 14d
    /// (default 7d).
    #[arg(long, value_name = "DURATION", value_parser = parse_period)]
    period: Option<i64>,
    /// Close the open round now: your sealed ratings are revealed at once, your
    /// partner's when their device next syncs.
    #[arg(long, conflicts_with_all = ["rate", "note", "period"])]
    close: bool,
}

/// Runs `duet checkin`.
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let mut dev = ctx.device()?;
    if a.close {
        return close(ctx, &mut dev);
    }
    // What was rated is said before a signal stops the command (see crate::interrupt).
    let (ratings, rated, _held) = if a.rate.is_empty() {
        // Answers come from standard input: a terminal, or lines piped in; a clock that
        // would refuse them is said before asking.
        dev.ensure_clock_agrees()?;
        let goals = dev.checkin_plan()?.goals;
        if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            // Each answer is saved as it is given: a walk left with Ctrl-C (or Ctrl-D)
            // keeps the goals rated so far.
            let mut rated = Vec::new();
            ask(ctx, &goals, false, &mut |answer| {
                let (r, _held) = crate::interrupt::saving(&mut dev, |dev| {
                    dev.checkin(std::slice::from_ref(&answer), a.period)
                })?;
                if !ctx.out.json {
                    for r in &r {
                        super::rate::print_rated(ctx, r, answer.1, false)?;
                    }
                }
                rated.extend(r);
                Ok(())
            })?;
            (Vec::new(), rated, None)
        } else {
            let mut answers = Vec::new();
            ask(ctx, &goals, true, &mut |answer| {
                answers.push(answer);
                Ok(())
            })?;
            let (rated, held) =
                crate::interrupt::saving(&mut dev, |dev| dev.checkin(&answers, a.period))?;
            (answers, rated, Some(held))
        }
    } else {
        let ratings = parse(&a.rate, &a.note)?;
        let (rated, held) =
            crate::interrupt::saving(&mut dev, |dev| dev.checkin(&ratings, a.period))?;
        (ratings, rated, Some(held))
    };
    if ctx.out.json {
        return ctx.out.json(&json!({ "rated": rated }));
    }
    // (Answers given on a terminal were said as each was saved.)
    for (r, (_, level, _)) in rated.iter().zip(&ratings) {
        super::rate::print_rated(ctx, r, *level, false)?;
    }
    // A round already open keeps its own end: say so rather than drop --period unsaid.
    let opened = rated.iter().any(|r| r.opened_round);
    if let Some(end) = a
        .period
        .filter(|_| !opened)
        .and(rated.iter().find(|r| r.sealed))
        .and_then(|r| r.round_ends_at)
    {
        crate::output::note(&format!(
            "note: a check-in round was already open (until {}); --period applies only to a new round",
            crate::output::when(end)
        ));
    }
    if rated.is_empty() {
        ctx.out.line("Nothing rated.")?;
    }
    summary(ctx, &rated)
}

/// `duet checkin --close`: closes the open rounds and says what opened and what stays
/// sealed.
fn close(ctx: &Ctx, dev: &mut duet_core::device::Device) -> anyhow::Result<()> {
    let closed = dev.close_rounds()?;
    if ctx.out.json {
        return ctx.out.json(&closed);
    }
    // A partner who left is said nothing of: their ratings were opened as they left.
    let partner_here = !dev.partners_by_presence()?.0.is_empty();
    if closed.rounds == 0 {
        // As far as this device knows: a round opened elsewhere arrives with a sync.
        ctx.out.line(if partner_here {
            "No check-in round is open on this device (one your partner opened arrives with `duet sync`)."
        } else {
            "No check-in round is open on this device."
        })?;
    } else if closed.revealed == 0 && closed.others_sealed == 0 {
        // Nothing to open on either side: the sentence of the partner's ratings to come
        // would speak of none.
        ctx.out.line(
            "Closed the check-in round; nothing in it was still sealed (as far as this \
             device knows: ratings made since its last sync arrive with `duet sync`).",
        )?;
    } else if closed.revealed == 0 {
        ctx.out.line(if partner_here {
            "Closed the check-in round; you had no sealed rating in it. Your partner's \
             sealed ratings open when their device next syncs; once you have seen one, \
             your rating of that goal is given in the clear."
        } else {
            "Closed the check-in round; you had no sealed rating in it."
        })?;
    } else {
        ctx.out.line(format!(
            "Closed the check-in round; revealed {}.{}",
            duet_core::words::count(
                closed.revealed,
                "of your sealed ratings",
                "of your sealed ratings"
            ),
            match (partner_here, closed.revealed, closed.others_sealed) {
                (false, ..) => "",
                (true, 1, 0) => " Your partner sees it after you both sync.",
                (true, _, 0) => " Your partner sees them after you both sync.",
                (true, 1, _) => " Your partner sees it after you both sync, and their sealed ratings open when their device next syncs.",
                (true, ..) => " Your partner sees them after you both sync, and their sealed ratings open when their device next syncs.",
            }
        ))?;
    }
    if closed.still_sealed > 0 {
        let (which, opens) = match closed.still_sealed {
            1 => ("1 of your ratings stays".to_string(), "it opens"),
            n => (format!("{n} of your ratings stay"), "each opens"),
        };
        ctx.out.line(format!(
            "{which} sealed: made in a round already closed (on a device that had not \
             heard of the close), {opens} once your partner rates that goal, or once a \
             round's length has passed since."
        ))?;
    }
    Ok(())
}

fn summary(ctx: &Ctx, rated: &[Rated]) -> anyhow::Result<()> {
    let sealed = rated.iter().filter(|r| r.sealed).count();
    if sealed > 0 {
        ctx.out.line(format!(
            "{} sealed: run `duet sync` so your partner knows you have rated.",
            duet_core::words::count(sealed, "rating is", "ratings are")
        ))?;
    }
    Ok(())
}

/// A round's length like `3d` or `2w` (humantime), from 1 hour to 90 days; ms.
fn parse_period(s: &str) -> Result<i64, String> {
    let d = humantime::parse_duration(s.trim())
        // humantime's own reason names units (ns, sec) no round can have.
        .map_err(|_| {
            format!("expected a number of hours, days or weeks, like 12h, 3d or 2w (got {s:?})")
        })?;
    if d < std::time::Duration::from_secs(3600) || d > std::time::Duration::from_secs(90 * 86_400) {
        return Err("a check-in round lasts from 1 hour to 90 days".into());
    }
    i64::try_from(d.as_millis()).map_err(|_| "that period is too long".into())
}

/// `GOAL=LEVEL` and `GOAL=TEXT` pairs; a note must name a goal that is rated.
fn parse(
    rates: &[String],
    notes: &[String],
) -> anyhow::Result<Vec<(String, Level, Option<String>)>> {
    let split = |s: &str, what: &str| -> anyhow::Result<(String, String)> {
        s.rsplit_once('=')
            .filter(|(g, _)| !g.trim().is_empty())
            .map(|(g, v)| (g.trim().to_string(), v.to_string()))
            .ok_or_else(|| crate::UsageError(format!("expected GOAL={what}, got {s:?}")).into())
    };
    let mut out = Vec::new();
    for r in rates {
        let (goal, level) = split(r, "LEVEL")?;
        let level: Level = level
            .trim()
            .parse()
            .map_err(|e| crate::UsageError(format!("{r:?}: {e}")))?;
        out.push((goal, level, None));
    }
    for n in notes {
        // A title and a note may both hold `=`: the goal is the first start, up to an
        // `=`, that names a goal given with --rate (else up to the first `=`).
        let splits = n
            .match_indices('=')
            .map(|(i, _)| (n[..i].trim(), &n[i + 1..]));
        let (goal, text) = splits
            .clone()
            .find(|(g, _)| out.iter().any(|(rated, _, _)| rated == g))
            .or_else(|| splits.clone().next())
            .map(|(g, t)| (g.to_string(), t.to_string()))
            .ok_or_else(|| crate::UsageError(format!("expected GOAL=TEXT, got {n:?}")))?;
        let slot = out.iter_mut().find(|(g, _, _)| *g == goal).ok_or_else(|| {
            crate::UsageError(format!(
                "--note {goal:?} names no goal given with --rate; give the same GOAL to both"
            ))
        })?;
        slot.2 = Some(text);
    }
    Ok(out)
}

/// How answers are piped in, said when one is wrong.
const PIPED_ANSWERS: &str = "Piped answers are two lines per active goal, in the order \
    `duet checkin` lists them: a level (-2 to 2, or an empty line to skip the goal), then a \
    note (an empty line for none); or rate with --rate GOAL=LEVEL";

/// What the walk says of a goal before asking: its title, level texts, the partner's
/// steps and who has rated it.
fn describe(
    say: &dyn Fn(&str) -> Result<(), crate::output::StdoutError>,
    g: &CheckinGoal,
) -> Result<(), crate::output::StdoutError> {
    say(&format!("\n{}", safe_line(&g.title)))?;
    for (l, text) in &g.levels {
        if !text.is_empty() {
            say(&format!(
                "  {}  {}",
                crate::output::signed_level(*l),
                safe_line(text)
            ))?;
        }
    }
    for s in &g.partner_steps {
        say(&format!("  your partner did: {}", safe_line(s)))?;
    }
    match (g.answers, g.partner_rated, g.rated) {
        (true, _, false) => say("  your partner has rated it; rate to see theirs")?,
        (true, _, true) => say("  your partner has rated it again; rate again to see theirs")?,
        (false, true, true) => say(
            "  you have both rated it in this check-in; rating again starts a new blind rating",
        )?,
        (false, false, true) => {
            say("  you have rated it in this check-in already; rating again adds a new rating")?
        }
        (false, _, false) => {}
    }
    Ok(())
}

/// Walks the goals on the terminal: descriptions, the partner's steps, a level, a note.
/// Each answer goes to `save` as it is given (`piped`: the answers come from a pipe, not
/// a terminal).
fn ask(
    ctx: &Ctx,
    goals: &[CheckinGoal],
    piped: bool,
    save: &mut dyn FnMut((String, Level, Option<String>)) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    // The walk is a conversation: with --json its words go to stderr, with the prompts,
    // and stdout holds the JSON alone.
    let say = |s: &str| -> Result<(), crate::output::StdoutError> {
        if ctx.out.json {
            crate::output::note(s);
            Ok(())
        } else {
            ctx.out.line(s)
        }
    };
    // A prompt waits on the same line in words; with --json every stderr line is JSON.
    let prompt = |s: &str| {
        if ctx.out.json {
            crate::output::note(s);
        } else {
            eprint!("{s} ");
        }
    };
    if goals.is_empty() {
        say("No active goals to rate: `duet goal add TITLE --area AREA` adds one.")?;
    }
    // Answers piped in cannot be asked again: a wrong one would shift every answer after
    // it onto the next goal.
    let mut stdin = std::io::stdin().lock();
    let mut lines = std::iter::from_fn(move || answer_line(&mut stdin).transpose());
    for g in goals {
        describe(&say, g)?;
        let level = loop {
            prompt("Your level (-2..2, Enter to skip):");
            let Some(line) = lines.next().transpose()? else {
                return Ok(());
            };
            if line.trim().is_empty() {
                break None;
            }
            match line.trim().parse::<Level>() {
                Ok(l) => break Some(l),
                Err(e) if piped => anyhow::bail!(crate::UsageError(format!(
                    "{e} (the answer for \"{}\"); nothing was rated. {PIPED_ANSWERS}",
                    safe_line(&g.title)
                ))),
                Err(e) if ctx.out.json => crate::output::note(&e.to_string()),
                Err(e) => eprintln!("{e}"),
            }
        };
        let Some(level) = level else {
            // Piped answers are two lines a goal, a skipped one too: its note line (empty)
            // is read here, or every later answer would land on the goal before it.
            if piped && lines.next().transpose()?.is_none() {
                return Ok(());
            }
            continue;
        };
        prompt("A note (optional):");
        let note = lines.next().transpose()?.filter(|n| !n.trim().is_empty());
        save((g.id.clone(), level, note))?;
    }
    Ok(())
}

/// The longest answer line read (a note can be 100,000 characters of four bytes).
const ANSWER_MAX: u64 = 512 * 1024;

/// The next answer on standard input without its line end, read at most
/// [`ANSWER_MAX`] bytes at a time (a line of gigabytes was read whole); `None` at its end.
fn answer_line(input: &mut impl std::io::BufRead) -> anyhow::Result<Option<String>> {
    use std::io::{BufRead as _, Read as _};
    let mut line = Vec::new();
    let read = input.take(ANSWER_MAX + 1).read_until(b'\n', &mut line)?;
    if read == 0 {
        return Ok(None);
    }
    if line.len() as u64 > ANSWER_MAX {
        anyhow::bail!(crate::UsageError(format!(
            "an answer on standard input is longer than {} KiB; nothing was rated",
            ANSWER_MAX / 1024
        )));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    String::from_utf8(line).map(Some).map_err(|_| {
        crate::UsageError("an answer on standard input is not UTF-8 text; nothing was rated".into())
            .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_names_the_goal_given_with_rate_though_both_hold_an_equals_sign() {
        let rated = parse(
            &["a=b goal=1".to_string()],
            &["a=b goal=x=y, said plainly".to_string()],
        )
        .expect("parsed");
        assert_eq!(rated.len(), 1);
        assert_eq!(rated[0].0, "a=b goal");
        assert_eq!(rated[0].2.as_deref(), Some("x=y, said plainly"));
        // A goal without `=`: the note is what follows the first one.
        let plain = parse(&["walk=2".to_string()], &["walk=a=b".to_string()]).expect("parsed");
        assert_eq!(plain[0].2.as_deref(), Some("a=b"));
    }
}
