//! The data of the report for a therapist (`duet report`): every goal in scope (of any
//! status, with the date its status was set, its level descriptions, steps and each
//! partner's ratings), both partners' T-scores over time, the reflections grouped by goal
//! and the period covered. Front ends render it (the command line as one self-contained
//! HTML file).

use std::collections::BTreeMap;

use serde::Serialize;

use super::records::{GoalRecord, RatingRecord};
use crate::device::{Device, DeviceError};
use crate::history::{HistoryKind, HistoryQuery};
use crate::model::{Goal, Rating, Reflection};
use crate::progress::{GoalProgress, Progress, TPoint};
use crate::readmodel::View;
use crate::store::SpaceKind;

/// One day in milliseconds: the shortest span a chart covers.
const DAY_MS: i64 = 86_400_000;

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
    /// The prompt it answers.
    pub prompt: Option<String>,
    /// The text.
    pub text: String,
    /// Whether it is from the personal space (held only by the author's devices).
    pub private: bool,
    /// The reflection it answers, if it is a reply.
    pub reply_to: Option<String>,
    /// When its author last edited it.
    pub edited_at: Option<i64>,
    /// Its replies, oldest first (a reply to a reply is listed under the first).
    pub replies: Vec<ReportReflection>,
}

/// The reflections about one goal, or about none.
#[derive(Debug, Clone, Serialize)]
pub struct ReflectionGroup {
    /// The goal id; `None` for the reflections about no goal.
    pub goal: Option<String>,
    /// The goal's title, when this device can read the goal.
    pub title: Option<String>,
    /// The reflections, oldest first.
    pub reflections: Vec<ReportReflection>,
}

/// One partner's ratings of one goal.
#[derive(Debug, Clone, Serialize)]
pub struct PartnerRatings {
    /// Person id.
    pub person: String,
    /// Display name.
    pub name: String,
    /// The ratings from `since` on, oldest first (corrections applied).
    pub ratings: Vec<RatingRecord>,
    /// Their ratings still sealed (blind, not revealed yet): when, never how.
    pub sealed: Vec<super::SealedRecord>,
}

/// One goal as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ReportGoal {
    /// The goal: title, area, why, status, level descriptions, steps.
    pub goal: GoalRecord,
    /// When the goal got its current status (ms since the Unix epoch): the last status
    /// change in the joint history, or its creation.
    pub status_since: i64,
    /// Whether the status was changed since the goal was created.
    pub status_changed: bool,
    /// Whether the goal counts towards the T-scores (active and achieved goals do).
    pub counts: bool,
    /// Each partner's rating series (for the chart), latest levels and their gap.
    pub progress: GoalProgress,
    /// Each partner's ratings with their notes, in the order of `progress.partners`.
    pub ratings: Vec<PartnerRatings>,
}

/// The days the report covers.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Period {
    /// The first moment: the `since` bound, else the first rating or reflection shown
    /// (ms since the Unix epoch).
    pub from: i64,
    /// The last rating or reflection shown (or when the report was made, when none is).
    pub to: i64,
    /// Whether `from` is the `since` bound (a UTC day) rather than a moment of the data.
    pub bounded: bool,
}

/// Everything a report shows.
#[derive(Debug, Clone, Serialize)]
pub struct ReportData {
    /// Progress on the goals that count towards the T-scores; each series keeps only
    /// ratings from `since` on, while the current T-scores stand on the whole history.
    /// `progress.people` maps person ids to names, in the order the report lists them.
    pub progress: Progress,
    /// Every goal in scope, whatever its status: active, paused, achieved, archived.
    pub goals: Vec<ReportGoal>,
    /// Per person id: the T-scores from `since` on, for the chart.
    pub t_by_person: BTreeMap<String, Vec<TPoint>>,
    /// The joint T-scores from `since` on, for the chart.
    pub t_joint: Vec<TPoint>,
    /// The reflections in scope by goal, in the order of `goals`, then those about no
    /// goal.
    pub reflections: Vec<ReflectionGroup>,
    /// The period covered.
    pub period: Period,
    /// The start of the charts' time axis (ms since the Unix epoch): `period.from`.
    pub t0: i64,
    /// The end of the charts' time axis, at least a day after `t0`.
    pub t1: i64,
    /// When the report was made.
    pub made_at: i64,
}

impl ReportData {
    /// How many of the reflections are private (held only by the author's devices).
    pub fn private_reflections(&self) -> usize {
        self.reflections
            .iter()
            .flat_map(|g| &g.reflections)
            .filter(|r| r.private)
            .count()
    }
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
        let now = self.now();
        progress.mark_dated_ahead(now);
        progress.me = self.me.person_id.to_string();
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
        for g in &mut progress.goals {
            keep_since(g, since);
        }
        let status_set = self.status_changes()?;
        let mut goals = report_goals(&view, only.as_deref(), since, &status_set);
        for g in &mut goals {
            g.progress.mark_dated_ahead(now);
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
        found.retain(|(r, _)| {
            since.is_none_or(|s| r.at >= s)
                && only.as_deref().is_none_or(|g| r.goal.as_deref() == Some(g))
        });
        let reflections = group(found, &goals, &progress.people);
        let made_at = self.now();
        let period = period(&goals, &reflections, since, made_at);
        Ok(ReportData {
            progress,
            goals,
            t_by_person,
            t_joint,
            reflections,
            period,
            t0: period.from,
            t1: period.to.max(period.from + DAY_MS),
            made_at,
        })
    }

    /// When each goal's status was last changed, by goal id: the time of the last
    /// status change of the goal in the joint history.
    fn status_changes(&mut self) -> Result<BTreeMap<String, i64>, DeviceError> {
        let rec = self.space(SpaceKind::Shared)?;
        let rows = self
            .store
            .history_rows(&rec.id, &self.me, &HistoryQuery::default(), None)?;
        // Rows come in history order, so the last one of a goal wins.
        Ok(rows
            .into_iter()
            .filter(|(_, e)| e.kind == HistoryKind::StatusChanged)
            .filter_map(|(_, e)| Some((e.goal?, e.at)))
            .collect())
    }
}

/// Keeps only the ratings from `since` on in a goal's series.
fn keep_since(g: &mut GoalProgress, since: Option<i64>) {
    if let Some(s) = since {
        for partner in &mut g.partners {
            partner.ratings.retain(|r| r.at >= s);
        }
    }
}

/// The goals in scope (the one asked for, or all), of every status: active first, then
/// paused, achieved and archived, each by creation time.
fn report_goals(
    view: &View,
    only: Option<&str>,
    since: Option<i64>,
    status_set: &BTreeMap<String, i64>,
) -> Vec<ReportGoal> {
    let mut goals: Vec<&Goal> = view
        .goals
        .iter()
        .filter(|g| only.is_none_or(|id| g.id == id))
        .collect();
    goals.sort_by(|a, b| a.status.cmp(&b.status));
    let ids: Vec<String> = goals.iter().map(|g| g.id.clone()).collect();
    let mut series: BTreeMap<String, GoalProgress> = crate::progress::progress(view, Some(&ids))
        .goals
        .into_iter()
        .map(|g| (g.goal.clone(), g))
        .collect();
    let mut ratings: Vec<&Rating> = view
        .ratings
        .iter()
        .filter(|r| since.is_none_or(|s| r.at >= s) && r.validate().is_ok())
        .collect();
    ratings.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    goals
        .into_iter()
        .filter_map(|g| {
            let mut progress = series.remove(&g.id)?;
            keep_since(&mut progress, since);
            let ratings = progress
                .partners
                .iter()
                .map(|p| PartnerRatings {
                    person: p.person.clone(),
                    name: p.name.clone(),
                    ratings: ratings
                        .iter()
                        .filter(|r| r.goal == g.id && r.rater == p.person)
                        .map(|r| RatingRecord::from(*r))
                        .collect(),
                    sealed: crate::rituals::waiting_seals(view)
                        .into_iter()
                        .filter(|s| s.goal == g.id && s.rater == p.person)
                        .map(super::SealedRecord::from)
                        .collect(),
                })
                .collect();
            let changed = status_set.get(&g.id).copied();
            Some(ReportGoal {
                goal: GoalRecord::from(g),
                status_since: changed.unwrap_or(g.created_at),
                status_changed: changed.is_some(),
                counts: only.is_some() || crate::progress::in_scope(g),
                progress,
                ratings,
            })
        })
        .collect()
}

/// The reflections by goal, oldest first in each group: the report's goals in order,
/// then goals this device cannot read, then the reflections about no goal.
/// Moves each reply under the reflection it answers (or that one's root), within one
/// group; a reply whose reflection is not in the group stays where it is.
fn nest_replies(list: &mut Vec<ReportReflection>) {
    let roots: std::collections::HashMap<String, String> =
        crate::rituals::thread_roots(list.iter().map(|r| (r.id.as_str(), r.reply_to.as_deref())))
            .into_iter()
            .map(|(id, root)| (id.to_string(), root.to_string()))
            .collect();
    let root_of = |id: &str| roots.get(id).cloned().unwrap_or_else(|| id.to_string());
    let (roots_first, replies): (Vec<_>, Vec<_>) = std::mem::take(list)
        .into_iter()
        .partition(|r| root_of(&r.id) == r.id);
    *list = roots_first;
    let at: std::collections::HashMap<String, usize> = list
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.clone(), i))
        .collect();
    for reply in replies {
        if let Some(&i) = at.get(&root_of(&reply.id)) {
            list[i].replies.push(reply);
        }
    }
}

fn group(
    mut found: Vec<(Reflection, bool)>,
    goals: &[ReportGoal],
    people: &BTreeMap<String, String>,
) -> Vec<ReflectionGroup> {
    found.sort_by(|(a, _), (b, _)| (a.at, &a.id).cmp(&(b.at, &b.id)));
    let mut by_goal: BTreeMap<Option<String>, Vec<ReportReflection>> = BTreeMap::new();
    for (r, private) in found {
        by_goal
            .entry(r.goal.clone())
            .or_default()
            .push(ReportReflection {
                author_name: people.get(&r.author).cloned(),
                id: r.id,
                author: r.author,
                at: r.at,
                goal: r.goal,
                prompt: r.prompt,
                text: r.text.as_str().to_string(),
                private,
                reply_to: r.reply_to,
                edited_at: r.edited_at,
                replies: Vec::new(),
            });
    }
    for list in by_goal.values_mut() {
        nest_replies(list);
    }
    let mut out = Vec::new();
    for g in goals {
        if let Some(reflections) = by_goal.remove(&Some(g.goal.id.clone())) {
            out.push(ReflectionGroup {
                goal: Some(g.goal.id.clone()),
                title: Some(g.goal.title.clone()),
                reflections,
            });
        }
    }
    let about_none = by_goal.remove(&None);
    let rest = by_goal.into_iter().chain(about_none.map(|r| (None, r)));
    out.extend(rest.map(|(goal, reflections)| ReflectionGroup {
        goal,
        title: None,
        reflections,
    }));
    out
}

/// The period the report covers: from the `since` bound or the first rating (sealed
/// ones listed too) or reflection shown, to the last one (or `now`, when none is shown).
fn period(
    goals: &[ReportGoal],
    reflections: &[ReflectionGroup],
    since: Option<i64>,
    now: i64,
) -> Period {
    let ratings = goals
        .iter()
        .flat_map(|g| &g.progress.partners)
        .flat_map(|p| p.ratings.iter().map(|r| r.at));
    let quoted = reflections
        .iter()
        .flat_map(|g| g.reflections.iter().map(|r| r.at));
    // The partner's ratings still sealed are listed too (when, never how).
    let sealed = goals
        .iter()
        .flat_map(|g| &g.ratings)
        .flat_map(|p| p.sealed.iter().map(|s| s.at_ms));
    let (first, last) = ratings
        .chain(quoted)
        .chain(sealed)
        .fold((None, None), |(lo, hi), t| {
            (
                Some(lo.map_or(t, |lo: i64| lo.min(t))),
                Some(hi.map_or(t, |hi: i64| hi.max(t))),
            )
        });
    let from = since.or(first).unwrap_or(now);
    Period {
        from,
        to: last.unwrap_or(now).max(from),
        bounded: since.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::ReportQuery;
    use crate::app::{NewGoalInput, ReflectionInput};
    use crate::clock::Clock;
    use crate::device::Device;
    use crate::vocab::{Level, Status};

    const NOW: i64 = 1_700_000_000_000;

    fn device(dir: &std::path::Path, now: i64) -> Device {
        Device::open_with(&dir.join("h"), Clock::Fixed(now)).expect("open")
    }

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
        assert_eq!((all.period.from, all.period.to), (NOW, NOW));
        assert_eq!(all.progress.goals[0].partners[0].ratings.len(), 1);
        let texts: Vec<(&str, bool)> = all.reflections[0]
            .reflections
            .iter()
            .map(|r| (r.text.as_str(), r.private))
            .collect();
        assert_eq!(texts, [("shared", false)]);
        assert_eq!(all.reflections[0].goal, None, "about no goal");
        assert_eq!(all.private_reflections(), 0);
        assert_eq!(
            all.reflections[0].reflections[0].author_name.as_deref(),
            Some("Alex")
        );

        let query = ReportQuery {
            include_private: true,
            ..Default::default()
        };
        let with_private = dev.report(&query).expect("report");
        assert_eq!(with_private.reflections[0].reflections.len(), 2);
        assert_eq!(with_private.private_reflections(), 1);

        let later = ReportQuery {
            since: Some(NOW + 1),
            ..Default::default()
        };
        let later = dev.report(&later).expect("report");
        assert!(later.progress.goals[0].partners[0].ratings.is_empty());
        assert!(later.goals[0].ratings[0].ratings.is_empty());
        assert!(later.reflections.is_empty() && later.t_joint.is_empty());
        assert_eq!(later.progress.current_joint(), all.progress.current_joint());
        assert!(later.period.bounded);
        assert_eq!((later.t0, later.t1), (NOW + 1, NOW + 1 + super::DAY_MS));
    }

    #[test]
    fn every_goal_comes_with_its_status_date_ratings_and_reflections() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut dev = Device::init_with(&dir.path().join("h"), "Alex", None, Clock::Fixed(NOW))
            .expect("init");
        let new = |title: &str| NewGoalInput {
            title: title.into(),
            ..Default::default()
        };
        let paused = dev.add_goal(new("Walk")).expect("goal");
        let active = dev.add_goal(new("Talk")).expect("goal");
        dev.rate(&paused, Level::EXPECTED, Some("a note"))
            .expect("rate");
        dev.close_rounds().expect("the lone rating is revealed");
        let later = NOW + 3 * super::DAY_MS;
        drop(dev);
        let mut dev = device(dir.path(), later);
        dev.set_goal_status(&paused, Status::Paused).expect("pause");
        let about = ReflectionInput {
            text: "about the walk".into(),
            goal: Some(paused.clone()),
            ..Default::default()
        };
        dev.reflect(about).expect("reflect");

        let r = dev.report(&ReportQuery::default()).expect("report");
        let titles: Vec<&str> = r.goals.iter().map(|g| g.goal.title.as_str()).collect();
        assert_eq!(titles, ["Talk", "Walk"], "active first, the paused one too");
        let (talk, walk) = (&r.goals[0], &r.goals[1]);
        assert_eq!(talk.goal.id, active);
        assert!(!talk.status_changed && talk.status_since == NOW && talk.counts);
        assert!(walk.status_changed && walk.status_since == later && !walk.counts);
        assert_eq!(walk.goal.status, "paused");
        let notes: Vec<Option<&str>> = walk.ratings[0]
            .ratings
            .iter()
            .map(|x| x.note.as_deref())
            .collect();
        assert_eq!(notes, [Some("a note")]);
        assert_eq!(r.reflections.len(), 1);
        assert_eq!(r.reflections[0].goal.as_deref(), Some(paused.as_str()));
        assert_eq!(r.reflections[0].title.as_deref(), Some("Walk"));
        assert_eq!((r.period.from, r.period.to), (NOW, later));
        assert!(
            r.progress.goals.iter().all(|g| g.goal != paused),
            "no T-score"
        );
    }
}
