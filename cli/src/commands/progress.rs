//! `duet progress`: each partner's GAS ratings side by side, with sparklines and T-scores.

use std::io::Write;

use super::Ctx;
use crate::output::{safe_line, short_id};

/// Show progress on active goals: both partners' latest levels, their ratings over time
/// and the GAS T-scores (50 = goals met as expected).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this goal (its title, a word or the start of it, or the start of its id).
    #[arg(long)]
    goal: Option<String>,
}

/// The most ratings a sparkline shows: the latest, after a `…` when there are more.
const SPARK_WIDTH: usize = 40;

/// A sparkline of levels -2..2, the latest [`SPARK_WIDTH`] of them.
pub fn sparkline(levels: &[i64]) -> String {
    const BARS: [char; 5] = ['▁', '▂', '▄', '▆', '█'];
    let shown = &levels[levels.len().saturating_sub(SPARK_WIDTH)..];
    let more = if shown.len() < levels.len() {
        "…"
    } else {
        ""
    };
    more.chars()
        .chain(shown.iter().map(|l| BARS[(l.clamp(&-2, &2) + 2) as usize]))
        .collect()
}

pub(super) fn level(l: Option<i64>) -> String {
    match l {
        Some(l) if l > 0 => format!("+{l}"),
        Some(l) => l.to_string(),
        None => "·".to_string(),
    }
}

/// The latest T-scores of each partner and together, or what to do when there are none.
fn print_t_scores(out: &mut impl Write, p: &duet_core::progress::Progress) -> std::io::Result<()> {
    if p.current_joint().is_none() && p.people.keys().all(|id| p.current(id).is_none()) {
        let sealed = p.goals.iter().flat_map(|g| &g.partners).any(|s| s.sealed);
        if sealed {
            writeln!(
                out,
                "No T-score yet: a sealed rating counts once it is revealed."
            )?;
        } else {
            writeln!(out, "No ratings yet: `duet rate GOAL LEVEL` (-2 to 2).")?;
        }
        return Ok(());
    }
    write!(out, "GAS T-score (50 = as expected):")?;
    for (id, name) in &p.people {
        if let Some(t) = p.current(id) {
            write!(out, "  {} {t:.1}", safe_line(name))?;
        }
    }
    if let Some(t) = p.current_joint() {
        write!(out, "  together {t:.1}")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "  (50 = every goal met as expected; 10 points = one standard deviation. \"together\"\n   \
         scores both partners' latest ratings of every goal as one set, with the GAS formula\n   \
         and rho = 0.3; each partner's own score is beside it.)"
    )?;
    Ok(())
}

/// `duet progress --json`.
#[derive(serde::Serialize)]
struct ProgressJson<'a> {
    goals: &'a [duet_core::progress::GoalProgress],
    t_score: TScore,
    t_series: Series<'a>,
    people: &'a std::collections::BTreeMap<String, String>,
    /// Ratings left out and weights taken as 1, because their values are out of range.
    problems: &'a [String],
}

/// The latest T-scores: per person (by person id, as every other field; `people` names
/// them) and joint. Two partners may share a name.
#[derive(serde::Serialize)]
struct TScore {
    by_person: std::collections::BTreeMap<String, Option<f64>>,
    joint: Option<f64>,
}

/// The latest points of each T-score series, and how many each has in all.
#[derive(serde::Serialize)]
struct Series<'a> {
    by_person: &'a std::collections::BTreeMap<String, Vec<duet_core::progress::TPoint>>,
    joint: &'a [duet_core::progress::TPoint],
    count_by_person: &'a std::collections::BTreeMap<String, usize>,
    count_joint: usize,
}

/// `duet progress --json`: the bounded summary, serialised straight from it.
fn print_json(ctx: &Ctx, p: &duet_core::progress::Progress) -> anyhow::Result<()> {
    // A bounded summary (`Progress::bounded`): the latest points of each series
    // with their counts, whatever the history's length.
    let by_person = p
        .people
        .keys()
        .map(|id| (id.clone(), p.current(id)))
        .collect();
    ctx.out.json(&ProgressJson {
        goals: &p.goals,
        t_score: TScore {
            by_person,
            joint: p.current_joint(),
        },
        t_series: Series {
            by_person: &p.t_by_person,
            joint: &p.t_joint,
            count_by_person: &p.t_count_by_person,
            count_joint: p.t_count_joint,
        },
        people: &p.people,
        problems: &p.problems,
    })
}

/// Runs `duet progress`.
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let mut dev = ctx.view_device()?;
    let p = dev.progress(a.goal.as_deref())?;
    // A device that left or was removed never learns the keys its partner's reveals
    // go under: nothing sealed opens here any more.
    let gone = dev.departed()?.is_some();
    drop(dev);
    if ctx.out.json {
        return print_json(ctx, &p);
    }
    if ctx.out.quiet {
        return Ok(());
    }
    let c = ctx.colour;
    let mut out = std::io::stdout().lock();
    if p.goals.is_empty() {
        writeln!(
            out,
            "No active goals to show. `duet goal list --all` shows the others."
        )?;
        return Ok(());
    }
    for g in &p.goals {
        let whose = g
            .partners
            .iter()
            .find(|s| s.person == g.owner)
            .map(|s| format!("  ({}'s goal)", safe_line(&s.name)))
            .unwrap_or_default();
        // An achieved goal still counts in the T-scores: said so, as the report does.
        let active = g.status == duet_core::vocab::Status::Active.as_str();
        let status = if active {
            String::new()
        } else {
            format!("  ({})", safe_line(&g.status))
        };
        writeln!(
            out,
            "{}  {}{whose}{status}",
            c.bold(&short_id(&g.goal)),
            // Cut as in `goal list`; `goal show` and `--json` give it whole.
            c.bold(&safe_line(&crate::output::clip(
                &g.title,
                crate::output::LIST_TITLE_CHARS
            )))
        )?;
        for s in &g.partners {
            print_partner(&mut out, c, s, &p.me, gone)?;
        }
        match g.gap {
            Some(0) => writeln!(out, "    {}", c.dim("you agree"))?,
            // Only on a goal still worked on (`progress::worth_talking`).
            Some(n) if g.worth_talking => writeln!(
                out,
                "    {}",
                c.bold(&format!("{n} levels apart: worth talking about"))
            )?,
            Some(n) => writeln!(
                out,
                "    {}",
                c.dim(&format!("{n} level{} apart", if n == 1 { "" } else { "s" }))
            )?,
            None => {}
        }
    }
    writeln!(out)?;
    if p.goals
        .iter()
        .flat_map(|g| &g.partners)
        .any(|s| s.dated_ahead)
    {
        writeln!(
            out,
            "A rating dated ahead was given on a device whose clock was wrong (or this one's \
             is). If its date is wrong, its rater replaces it with \
             `duet rate GOAL LEVEL --amend`.\n"
        )?;
    }
    Ok(print_t_scores(&mut out, &p)?)
}

/// "you rated blind" or "NAME rated blind".
fn rated_blind(name: &str, mine: bool) -> String {
    if mine {
        "you rated blind".to_string()
    } else {
        format!("{} rated blind", safe_line(name))
    }
}

/// One partner's line of a goal: latest level, its day and a sparkline, then what the
/// blind rules or a misdated latest rating add.
fn print_partner(
    out: &mut impl Write,
    c: crate::output::Colour,
    s: &duet_core::progress::PartnerSeries,
    me: &str,
    gone: bool,
) -> std::io::Result<()> {
    let levels: Vec<i64> = s.ratings.iter().map(|r| r.level).collect();
    let on = s
        .latest_at
        .map(|t| format!(" on {}", crate::output::day(t)))
        .unwrap_or_else(|| " ".repeat(14));
    let line = format!(
        "    {} latest {:>2}{on}   {}",
        crate::output::pad(&safe_line(&s.name), 12),
        c.level(s.latest, &level(s.latest)),
        sparkline(&levels)
    );
    writeln!(out, "{}", line.trim_end())?;
    if s.dated_ahead {
        writeln!(
            out,
            "    {}",
            c.bold("dated ahead of this device's clock: it stays the latest until then")
        )?;
    }
    if s.sealed {
        let who = if gone {
            format!(
                "{}: {}",
                rated_blind(&s.name, s.person == me),
                crate::advice::STAYS_SEALED
            )
        } else if s.person == me {
            "you have rated blind: sealed until your partner rates too".to_string()
        } else if s.left {
            format!(
                "{} is no longer in the shared space: their blind rating stays sealed",
                safe_line(&s.name)
            )
        } else if s.opening {
            let name = safe_line(&s.name);
            format!("{name} has rated; shown once {name}'s device syncs")
        } else {
            format!("{} has rated; rate to see it", safe_line(&s.name))
        };
        writeln!(out, "    {}", c.dim(&who))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{SPARK_WIDTH, sparkline};

    #[test]
    fn a_sparkline_shows_the_latest_ratings_within_its_width() {
        assert_eq!(sparkline(&[-2, 0, 2]), "▁▄█");
        let long: Vec<i64> = (0..1000).map(|i| i % 5 - 2).collect();
        let line = sparkline(&long);
        assert_eq!(line.chars().count(), SPARK_WIDTH + 1);
        assert!(line.starts_with('…'));
    }
}
