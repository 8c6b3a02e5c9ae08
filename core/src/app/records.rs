//! The serialisable form of the document's entities, as `duet export --json`, `duet goal
//! show --json` and the local app give them: times as RFC 3339 UTC, levels keyed "-2".."2",
//! steps in the order they were added (docs/data-model.md, "Export").

use std::collections::BTreeMap;

use chrono::TimeZone;
use serde::Serialize;

use crate::model::{Goal, Rating, Reflection, Seal, Step};

/// RFC 3339 UTC with milliseconds; the raw number when it is out of chrono's range.
pub fn iso(ms: i64) -> String {
    chrono::Utc
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// A step of a goal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRecord {
    /// Step id.
    pub id: String,
    /// What to do.
    pub text: String,
    /// Person id it is assigned to.
    pub assignee: Option<String>,
    /// Person id that added it.
    pub created_by: String,
    /// When it was added.
    pub created_at: String,
    /// Whether it is done.
    pub done: bool,
    /// Person id that completed it.
    pub done_by: Option<String>,
    /// When it was completed.
    pub done_at: Option<String>,
}

/// A goal with its level descriptions and steps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GoalRecord {
    /// Goal id.
    pub id: String,
    /// Area (communication, trust, ...).
    pub area: String,
    /// Title.
    pub title: String,
    /// Why it matters.
    pub why: String,
    /// The five level descriptions, keyed "-2".."2" ("" when not written).
    pub levels: BTreeMap<String, String>,
    /// Owner: "shared" or a person id.
    pub owner: String,
    /// active, paused, achieved or archived.
    pub status: String,
    /// Due day, YYYY-MM-DD.
    pub due: Option<String>,
    /// Person id that created it.
    pub created_by: String,
    /// When it was created.
    pub created_at: String,
    /// Weight per person id.
    pub weights: BTreeMap<String, f64>,
    /// Steps, oldest first.
    pub steps: Vec<StepRecord>,
}

/// One partner's GAS rating.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RatingRecord {
    /// Rating id.
    pub id: String,
    /// Goal id.
    pub goal: String,
    /// Person id of the rater.
    pub rater: String,
    /// When it was made.
    pub at: String,
    /// GAS level, -2..2.
    pub level: i64,
    /// The rater's note.
    pub note: Option<String>,
    /// The rating it corrects (this one counts instead), if it is a correction.
    pub corrects: Option<String>,
    /// Whether it was given blind (sealed, then revealed).
    pub blind: bool,
    /// The seal it revealed (the id `duet rate` printed for the blind rating), if any.
    pub reveals: Option<String>,
}

/// A rating still sealed: that it exists, not what it says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SealedRecord {
    /// Seal id.
    pub id: String,
    /// Goal id.
    pub goal: String,
    /// Person id of the rater.
    pub rater: String,
    /// When it was made.
    pub at: String,
    /// When it was made, ms (for reckoning with, as a report's period does).
    #[serde(skip)]
    pub at_ms: i64,
}

/// A reflection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReflectionRecord {
    /// Reflection id.
    pub id: String,
    /// Person id of the author.
    pub author: String,
    /// When it was written.
    pub at: String,
    /// Goal it is about.
    pub goal: Option<String>,
    /// The prompt it answers.
    pub prompt: Option<String>,
    /// The text.
    pub text: String,
    /// The reflection it answers, if it is a reply.
    pub reply_to: Option<String>,
    /// When its author last edited it.
    pub edited_at: Option<String>,
}

impl From<&Step> for StepRecord {
    fn from(s: &Step) -> Self {
        StepRecord {
            id: s.id.clone(),
            text: s.text.as_str().to_string(),
            assignee: s.assignee.clone(),
            created_by: s.created_by.clone(),
            created_at: iso(s.created_at),
            done: s.done_at.is_some(),
            done_by: s.done_by.clone(),
            done_at: s.done_at.map(iso),
        }
    }
}

impl From<&Goal> for GoalRecord {
    fn from(g: &Goal) -> Self {
        let levels = (-2i8..=2)
            .map(|l| {
                let text = g.levels.get(l).map(|t| t.as_str().to_string());
                (l.to_string(), text.unwrap_or_default())
            })
            .collect();
        GoalRecord {
            id: g.id.clone(),
            area: g.area.to_string(),
            title: g.title.as_str().to_string(),
            why: g.why.as_str().to_string(),
            levels,
            owner: g.owner.clone(),
            status: g.status.to_string(),
            due: g.due.clone(),
            created_by: g.created_by.clone(),
            created_at: iso(g.created_at),
            weights: g.weights.clone(),
            steps: sorted_steps(g).into_iter().map(StepRecord::from).collect(),
        }
    }
}

/// A goal's steps in the order they were added (ties by id).
pub fn sorted_steps(g: &Goal) -> Vec<&Step> {
    let mut steps: Vec<&Step> = g.steps.values().collect();
    steps.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    steps
}

impl From<&Rating> for RatingRecord {
    fn from(r: &Rating) -> Self {
        RatingRecord {
            id: r.id.clone(),
            goal: r.goal.clone(),
            rater: r.rater.clone(),
            at: iso(r.at),
            level: r.level.get(),
            note: r.note.clone(),
            corrects: r.corrects.clone(),
            blind: r.reveals.is_some(),
            reveals: r.reveals.clone(),
        }
    }
}

impl From<&Reflection> for ReflectionRecord {
    fn from(r: &Reflection) -> Self {
        ReflectionRecord {
            id: r.id.clone(),
            author: r.author.clone(),
            at: iso(r.at),
            goal: r.goal.clone(),
            prompt: r.prompt.clone(),
            text: r.text.as_str().to_string(),
            reply_to: r.reply_to.clone(),
            edited_at: r.edited_at.map(iso),
        }
    }
}

impl From<&Seal> for SealedRecord {
    fn from(s: &Seal) -> Self {
        SealedRecord {
            id: s.id.clone(),
            goal: s.goal.clone(),
            rater: s.rater.clone(),
            at: iso(s.at),
            at_ms: s.at,
        }
    }
}
