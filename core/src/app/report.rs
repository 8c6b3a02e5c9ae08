//! The data of the report for a therapist (`duet report`): both partners' progress, the
//! recent reflections and the time span the charts cover. Front ends render it (the
//! command line as one self-contained HTML file).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::device::{Device, DeviceError};
use crate::model::Reflection;
use crate::progress::{Progress, TPoint};
use crate::store::SpaceKind;

/// One day in milliseconds: the shortest span a chart covers.
const DAY_MS: i64 = 86_400_000;
/// The most reflections a report quotes (the newest ones).
const MAX_REFLECTIONS: usize = 20;

/// What the report covers.
#[derive(Debug, Clone, Default)]
pub struct ReportQuery {
    /// Only this goal (id prefix or exact title).
    pub goal: Option<String>,
    /// Only ratings and reflections at or after this time (ms since the Unix epoch).
    pub since: Option<i64>,
    /// Also this person's own private reflections (never the partner's).
    pub include_private: bool,
}

/// A reflection quoted in the report.
#[derive(Debug, Clone, Serialize)]
pub struct ReportReflection {
    /// Reflection id.
    pub id: String,
    /// Person id of the author.
    pub author: String,
    /// The author's name, when the shared space knows them.
    pub author_name: Option<String>,
    /// When it was written (ms since the Unix epoch).
    pub at: i64,
    /// The goal it is about.
    pub goal: Option<String>,
    /// The text.
    pub text: String,
    /// Whether it is from the personal space (seen only on this person's devices).
    pub private: bool,
}

/// Everything a report shows.
#[derive(Debug, Clone, Serialize)]
pub struct ReportData {
    /// Progress on the goals in scope; each series keeps only ratings from `since` on,
    /// while the current T-scores stand on the whole history. `progress.people` maps
    /// person ids to names, in the order the report lists them.
    pub progress: Progress,
    /// Per person id: the T-scores from `since` on, for the chart.
    pub t_by_person: BTreeMap<String, Vec<TPoint>>,
    /// The joint T-scores from `since` on, for the chart.
    pub t_joint: Vec<TPoint>,
    /// The newest reflections in scope (at most 20), newest first.
    pub reflections: Vec<ReportReflection>,
    /// The start of the charts' time axis (ms since the Unix epoch).
    pub t0: i64,
    /// The end of the charts' time axis, at least a day after `t0`.
    pub t1: i64,
    /// When the report was made.
    pub made_at: i64,
}

impl Device {
    /// The data of a report on the shared goals.
    pub fn report(&mut self, query: &ReportQuery) -> Result<ReportData, DeviceError> {
        let view = self.view(SpaceKind::Shared)?;
        let only = query
            .goal
            .as_deref()
            .map(|q| super::goals::resolve_in(&view.goals, q))
            .transpose()?;
        let mut progress =
            crate::progress::progress(&view, only.as_ref().map(std::slice::from_ref));
        let since = query.since;
        let from_since = |v: &[TPoint]| -> Vec<TPoint> {
            v.iter()
                .filter(|x| since.is_none_or(|s| x.at >= s))
                .cloned()
                .collect()
        };
        let t_by_person = progress
            .t_by_person
            .iter()
            .map(|(id, v)| (id.clone(), from_since(v)))
            .collect();
        let t_joint = from_since(&progress.t_joint);
        if let Some(s) = since {
            for partner in progress.goals.iter_mut().flat_map(|g| &mut g.partners) {
                partner.ratings.retain(|r| r.at >= s);
            }
        }
        let mut found: Vec<(Reflection, bool)> =
            view.reflections.into_iter().map(|r| (r, false)).collect();
        if query.include_private {
            let personal = self.view(SpaceKind::Personal)?;
            let mine = personal
                .reflections
                .into_iter()
                .filter(|r| r.author == self.me.person_id);
            found.extend(mine.map(|r| (r, true)));
        }
        let reflections = newest(found, query, only.as_deref(), &progress.people);
        let made_at = self.now();
        let (t0, t1) = span(&progress, made_at);
        Ok(ReportData {
            progress,
            t_by_person,
            t_joint,
            reflections,
            t0,
            t1,
            made_at,
        })
    }
}

/// The newest reflections in the query's scope, newest first, with their authors' names.
fn newest(
    mut found: Vec<(Reflection, bool)>,
    query: &ReportQuery,
    goal: Option<&str>,
    people: &BTreeMap<String, String>,
) -> Vec<ReportReflection> {
    found.retain(|(r, _)| {
        query.since.is_none_or(|s| r.at >= s) && goal.is_none_or(|g| r.goal.as_deref() == Some(g))
    });
    found.sort_by_key(|(r, _)| std::cmp::Reverse(r.at));
    found.truncate(MAX_REFLECTIONS);
    found
        .into_iter()
        .map(|(r, private)| ReportReflection {
            author_name: people.get(&r.author).cloned(),
            id: r.id,
            author: r.author,
            at: r.at,
            goal: r.goal,
            text: r.text.as_str().to_string(),
            private,
        })
        .collect()
}

/// The charts' time span: the ratings shown, or the day before `now` when there are none;
/// at least one day.
fn span(p: &Progress, now: i64) -> (i64, i64) {
    let times = || {
        p.goals
            .iter()
            .flat_map(|g| &g.partners)
            .flat_map(|s| s.ratings.iter().map(|r| r.at))
    };
    let t0 = times().min().unwrap_or(now - DAY_MS);
    let t1 = times().max().unwrap_or(now).max(t0 + DAY_MS);
    (t0, t1)
}

#[cfg(test)]
mod tests {
    use super::ReportQuery;
    use crate::app::{NewGoalInput, ReflectionInput};
    use crate::clock::Clock;
    use crate::device::Device;
    use crate::vocab::Level;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn private_reflections_come_only_when_asked_and_since_filters_ratings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut dev = Device::init_with(&dir.path().join("h"), "Alex", None, Clock::Fixed(NOW))
            .expect("init");
        let goal = dev
            .add_goal(NewGoalInput {
                title: "Talk".into(),
                ..Default::default()
            })
            .expect("goal");
        dev.rate(&goal, Level::EXPECTED, None).expect("rate");
        dev.close_rounds()
            .expect("the round closes: the lone rating is revealed");
        for (text, private) in [("shared", false), ("mine", true)] {
            let input = ReflectionInput {
                text: text.into(),
                private,
                ..Default::default()
            };
            dev.reflect(input).expect("reflect");
        }

        let all = dev.report(&ReportQuery::default()).expect("report");
        assert_eq!(all.made_at, NOW);
        assert_eq!((all.t0, all.t1), (NOW, NOW + super::DAY_MS));
        assert_eq!(all.progress.goals[0].partners[0].ratings.len(), 1);
        let texts: Vec<(&str, bool)> = all
            .reflections
            .iter()
            .map(|r| (r.text.as_str(), r.private))
            .collect();
        assert_eq!(texts, [("shared", false)]);
        assert_eq!(all.reflections[0].author_name.as_deref(), Some("Alex"));

        let query = ReportQuery {
            include_private: true,
            ..Default::default()
        };
        let with_private = dev.report(&query).expect("report");
        assert_eq!(with_private.reflections.len(), 2);
        assert!(with_private.reflections.iter().any(|r| r.private));

        let later = ReportQuery {
            since: Some(NOW + 1),
            ..Default::default()
        };
        let later = dev.report(&later).expect("report");
        assert!(later.progress.goals[0].partners[0].ratings.is_empty());
        assert!(later.reflections.is_empty() && later.t_joint.is_empty());
        assert_eq!(later.progress.current_joint(), all.progress.current_joint());
        assert_eq!((later.t0, later.t1), (NOW - super::DAY_MS, NOW));
    }
}
