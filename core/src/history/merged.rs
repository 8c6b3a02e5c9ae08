//! Texts of a goal (and of its steps) changed on both sides while apart. Automerge merges concurrent edits
//! of one text character by character, so two renames made apart read as a mix of both
//! ("Weekly Sutal (Sundays)day talk"), and nothing else would say so. The history tells
//! it: the last edit of a field, in history order, left the field reading its `after`;
//! when the field reads otherwise now, an edit made without seeing that one was merged
//! into it. Editing the field again (having seen the mix) settles it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{HistoryEvent, HistoryKind};
use crate::model::Goal;

/// A goal text that reads as a merge of edits made on both sides while apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MergedText {
    /// The goal's id.
    pub goal: String,
    /// Its title now.
    pub title: String,
    /// The field, as the history names it: `title`, `why`, `level:-2` … `level:+2`;
    /// a step's text is `step:` and the step's id.
    pub field: String,
    /// What the field reads now (cut to one line as the history shows texts).
    pub reads: String,
}

/// The texts of `goals` whose last edit in `edits` (goal field edits in history order)
/// is not what they read now.
pub fn merged_texts(edits: &[HistoryEvent], goals: &[Goal]) -> Vec<MergedText> {
    let mut last: BTreeMap<(&str, String), &str> = BTreeMap::new();
    for e in edits {
        let field = match (e.kind, &e.field, &e.item) {
            (HistoryKind::StepEdited, _, Some(step)) => format!("step:{step}"),
            (HistoryKind::FieldEdited, Some(f), _) if is_text(f) => f.clone(),
            _ => continue,
        };
        if let (Some(g), Some(after)) = (&e.goal, &e.after) {
            last.insert((g.as_str(), field), after.as_str());
        }
    }
    // By id: a space with thousands of edited goals is not searched once per field.
    let by_id: BTreeMap<&str, &Goal> = goals.iter().map(|x| (x.id.as_str(), x)).collect();
    let mut out = Vec::new();
    for ((g, field), after) in last {
        let Some(goal) = by_id.get(g) else {
            continue;
        };
        let Some(now) = text_of(goal, &field) else {
            continue;
        };
        let reads = super::derive::short_text(now);
        if reads != after {
            out.push(MergedText {
                goal: g.to_string(),
                title: goal.title.as_str().to_string(),
                field,
                reads,
            });
        }
    }
    out
}

/// A digest of a text, as a reflection edit's history row keeps it (the text itself a
/// withdrawal must take out of every view).
pub(crate) fn text_mark(s: &str) -> String {
    hex::encode(&crate::crypto::sha256(s.as_bytes())[..16])
}

/// The reflections, of `texts` (id and text now), whose last edit in `edits` (reflection
/// edits in history order) left another text than they hold now: edits made on two
/// devices while apart, merged letter by letter.
pub fn merged_reflections<'a>(
    edits: &[HistoryEvent],
    texts: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<(&'a str, &'a str)> {
    let mut last: BTreeMap<&str, &str> = BTreeMap::new();
    for e in edits {
        if let (Some(r), Some(after)) = (&e.item, &e.after) {
            last.insert(r.as_str(), after.as_str());
        }
    }
    texts
        .into_iter()
        .filter(|(id, text)| last.get(id).is_some_and(|after| *after != text_mark(text)))
        .collect()
}

/// Whether the history field names a text merged character by character.
fn is_text(field: &str) -> bool {
    field == "title" || field == "why" || field.starts_with("level:")
}

/// The current text of a goal's field, by its history name.
fn text_of<'g>(goal: &'g Goal, field: &str) -> Option<&'g str> {
    match field {
        "title" => Some(goal.title.as_str()),
        "why" => Some(goal.why.as_str()),
        _ if field.starts_with("step:") => {
            let step = field.strip_prefix("step:")?;
            goal.steps.get(step).map(|s| s.text.as_str())
        }
        _ => {
            let level: i8 = field.strip_prefix("level:")?.parse().ok()?;
            Some(goal.levels.get(level).map_or("", |t| t.as_str()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(field: &str, after: &str) -> HistoryEvent {
        HistoryEvent {
            goal: Some("g1".into()),
            field: Some(field.into()),
            after: Some(after.into()),
            ..HistoryEvent::by(
                HistoryKind::FieldEdited,
                0,
                None,
                String::new(),
                String::new(),
                String::new(),
            )
        }
    }

    fn goal(title: &str) -> Goal {
        Goal {
            id: "g1".into(),
            area: crate::vocab::Area::Trust.into(),
            title: autosurgeon::Text::with_value(title),
            why: autosurgeon::Text::with_value(""),
            levels: crate::model::Levels::default(),
            owner: "shared".into(),
            status: crate::vocab::Status::Active.into(),
            due: None,
            created_by: "p".into(),
            created_at: 1,
            weights: BTreeMap::new(),
            steps: BTreeMap::new(),
        }
    }

    #[test]
    fn a_title_reading_what_its_last_edit_left_is_not_merged() {
        let edits = [
            edit("title", "Weekly check-in"),
            edit("title", "Weekly Sunday talk"),
        ];
        assert!(merged_texts(&edits, &[goal("Weekly Sunday talk")]).is_empty());
    }

    #[test]
    fn a_title_reading_otherwise_was_merged_from_edits_made_apart() {
        let edits = [
            edit("title", "Weekly Sunday talk"),
            edit("title", "Weekly talk (Sundays)"),
        ];
        let merged = merged_texts(&edits, &[goal("Weekly Sutal (Sundays)day talk")]);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].field, "title");
        assert_eq!(merged[0].reads, "Weekly Sutal (Sundays)day talk");
    }

    #[test]
    fn a_step_text_is_read_from_its_step() {
        let mut g = goal("T");
        g.steps.insert(
            "s1".into(),
            crate::model::Step {
                id: "s1".into(),
                text: autosurgeon::Text::with_value("Buy running shoes together"),
                assignee: None,
                created_by: "p".into(),
                created_at: 1,
                done_by: None,
                done_at: None,
            },
        );
        let step_edit = |after: &str| HistoryEvent {
            item: Some("s1".into()),
            ..edit("", after)
        };
        let mut e = step_edit("Buy shoes together");
        e.kind = HistoryKind::StepEdited;
        let merged = merged_texts(&[e], &[g]);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].field, "step:s1");
    }

    #[test]
    fn a_level_text_is_read_from_its_level() {
        let edits = [edit("level:+1", "Twice a week")];
        assert!(
            merged_texts(&edits, &[goal("T")]).len() == 1,
            "level +1 reads empty"
        );
    }
}
