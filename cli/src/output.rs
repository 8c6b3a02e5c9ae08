//! How commands print: human text, or JSON with stable field names (`--json`), and
//! nothing but errors with `--quiet`.

use std::collections::BTreeMap;

use chrono::TimeZone;
use duet_core::model::{Goal, Rating, Reflection};
use serde::Serialize;
use serde_json::{Value, json};

/// Global output settings.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    /// Print JSON.
    pub json: bool,
    /// Print nothing on success.
    pub quiet: bool,
}

impl Out {
    /// Prints a human line unless quiet.
    pub fn line(&self, s: impl AsRef<str>) {
        if !self.quiet {
            println!("{}", s.as_ref());
        }
    }

    /// Prints a warning on stderr (even when quiet: it is about the user's data).
    pub fn warn(&self, s: impl AsRef<str>) {
        eprintln!("warning: {}", s.as_ref());
    }

    /// Prints a JSON value (pretty), streamed to stdout.
    pub fn json(&self, v: &impl Serialize) -> anyhow::Result<()> {
        use std::io::Write as _;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        serde_json::to_writer_pretty(&mut out, v)?;
        writeln!(out)?;
        out.flush()?;
        Ok(())
    }
}

/// `YYYY-MM-DD HH:MM` in local time.
pub fn when(ms: i64) -> String {
    chrono::Local
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// RFC 3339 UTC, for JSON.
pub fn iso(ms: i64) -> String {
    chrono::Utc
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// A person's display name from the people map.
pub fn name_of(people: &BTreeMap<String, String>, person: &str) -> String {
    people
        .get(person)
        .cloned()
        .unwrap_or_else(|| duet_core::ids::short(person).to_string())
}

/// The JSON form of a goal.
pub fn goal_json(g: &Goal) -> Value {
    let mut levels = serde_json::Map::new();
    for l in -2i8..=2 {
        let text = g
            .levels
            .get(l)
            .map(|t| t.as_str().to_string())
            .unwrap_or_default();
        levels.insert(format!("{l}"), Value::String(text));
    }
    let steps: Vec<Value> = {
        let mut s: Vec<_> = g.steps.values().collect();
        s.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        s.iter()
            .map(|s| {
                json!({
                    "id": s.id,
                    "text": s.text.as_str(),
                    "assignee": s.assignee,
                    "created_by": s.created_by,
                    "created_at": iso(s.created_at),
                    "done": s.done_at.is_some(),
                    "done_by": s.done_by,
                    "done_at": s.done_at.map(iso),
                })
            })
            .collect()
    };
    json!({
        "id": g.id,
        "area": g.area,
        "title": g.title.as_str(),
        "why": g.why.as_str(),
        "levels": levels,
        "owner": g.owner,
        "status": g.status,
        "due": g.due,
        "created_by": g.created_by,
        "created_at": iso(g.created_at),
        "weights": g.weights,
        "steps": steps,
    })
}

/// The JSON form of a rating.
pub fn rating_json(r: &Rating) -> Value {
    json!({
        "id": r.id,
        "goal": r.goal,
        "rater": r.rater,
        "at": iso(r.at),
        "level": r.level,
        "note": r.note,
    })
}

/// The JSON form of a reflection.
pub fn reflection_json(r: &Reflection) -> Value {
    json!({
        "id": r.id,
        "author": r.author,
        "at": iso(r.at),
        "goal": r.goal,
        "prompt": r.prompt,
        "text": r.text.as_str(),
    })
}

/// ANSI colour, on only when wanted: `--color always`, or `auto` on a terminal without
/// `NO_COLOR` set.
#[derive(Debug, Clone, Copy)]
pub struct Colour {
    /// Whether to emit escape codes.
    pub enabled: bool,
}

impl Colour {
    /// Decides from the flag, the environment and the terminal.
    pub fn decide(choice: ColorChoice) -> Colour {
        use std::io::IsTerminal;
        let enabled = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stdout().is_terminal()
            }
        };
        Colour { enabled }
    }

    fn wrap(&self, code: &str, s: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    /// Bold text.
    pub fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }

    /// Dim text.
    pub fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }

    /// A level coloured by direction: below expected, expected, above.
    pub fn level(&self, level: Option<i64>, s: &str) -> String {
        match level {
            Some(l) if l < 0 => self.wrap("33", s),
            Some(l) if l > 0 => self.wrap("32", s),
            Some(_) => self.wrap("36", s),
            None => s.to_string(),
        }
    }
}

/// The `--color` choices.
#[derive(Debug, Clone, Copy, clap::ValueEnum, Default)]
pub enum ColorChoice {
    /// Colour on a terminal unless NO_COLOR is set.
    #[default]
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}
