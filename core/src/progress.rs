//! Progress on the GAS scale: each partner's rating series per goal, their latest levels
//! side by side, the gap between them, and GAS T-scores over time.
//!
//! The T-score over items i with levels x_i and weights w_i (default 1) is
//!
//! ```text
//! T = 50 + 10 * Σ(w_i * x_i) / sqrt(0.7 * Σ w_i² + 0.3 * (Σ w_i)²)
//! ```
//!
//! A partner's T-score uses their latest rating of each goal in scope, weighted by their
//! weight for the goal. The joint T-score treats each partner's latest rating of each goal
//! as one item with that partner's weight: both partners' views count, neither is averaged
//! away, and the per-partner scores are always shown beside it.
//!
//! Only values within the model's ranges are used (a level of 2^53 would otherwise make
//! a chart's scale endless): a rating that fails [`Rating::validate`] is left out and a
//! weight out of range counts as the default 1; each is named in [`Progress::problems`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Goal, Rating};
use crate::view::View;
use crate::vocab::Status;

/// The GAS T-score of `(weight, level)` items; `None` when there are none (or all
/// weights are zero).
pub fn t_score(items: &[(f64, f64)]) -> Option<f64> {
    // The score does not change when every weight is scaled alike; scaled so that the
    // largest is 1, weights as small as 1e-200 (which the model allows) do not square
    // to zero and leave no score.
    let largest = items.iter().map(|(w, _)| *w).fold(0.0, f64::max);
    if largest <= 0.0 || !largest.is_finite() {
        return None;
    }
    let sum_w: f64 = items.iter().map(|(w, _)| w / largest).sum();
    let sum_w2: f64 = items.iter().map(|(w, _)| (w / largest).powi(2)).sum();
    let sum_wx: f64 = items.iter().map(|(w, x)| w / largest * x).sum();
    let denom = (0.7 * sum_w2 + 0.3 * sum_w * sum_w).sqrt();
    if items.is_empty() || denom == 0.0 || !denom.is_finite() {
        return None;
    }
    Some(50.0 + 10.0 * sum_wx / denom)
}

/// How far after this device's clock a latest rating must be dated to be marked
/// [`PartnerSeries::dated_ahead`]: an hour, past any drift of clocks kept by network time.
pub const AHEAD_MS: i64 = 60 * 60 * 1000;

/// Whether a time `at` is dated ahead of this device's clock `now` (more than
/// [`AHEAD_MS`]): the one rule `progress`, the history and the reflections mark by.
pub fn dated_ahead(at: i64, now: i64) -> bool {
    at > now.saturating_add(AHEAD_MS)
}

impl Progress {
    /// Marks each partner's latest rating dated more than [`AHEAD_MS`] after `now`
    /// ([`PartnerSeries::dated_ahead`]): `progress`, the app and the report say so.
    pub fn mark_dated_ahead(&mut self, now: i64) {
        for g in &mut self.goals {
            g.mark_dated_ahead(now);
        }
    }
}

impl GoalProgress {
    /// [`Progress::mark_dated_ahead`] for one goal.
    pub fn mark_dated_ahead(&mut self, now: i64) {
        for s in &mut self.partners {
            s.dated_ahead = s.latest_at.is_some_and(|t| dated_ahead(t, now));
        }
    }
}

/// One rating in a series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// When (ms since epoch, rater's clock).
    pub at: i64,
    /// GAS level -2..2.
    pub level: i64,
}

/// One partner's ratings of one goal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartnerSeries {
    /// Person id.
    pub person: String,
    /// Display name.
    pub name: String,
    /// The latest [`KEEP_POINTS`] ratings, oldest first.
    pub ratings: Vec<Point>,
    /// How many ratings there are in all.
    pub count: usize,
    /// Latest level, if rated.
    pub latest: Option<i64>,
    /// When the latest rating was given.
    pub latest_at: Option<i64>,
    /// Whether a blind rating of theirs is still sealed (shown as "has rated; rate to
    /// see it", never its level).
    pub sealed: bool,
    /// Whether that sealed rating's time has come (the other has rated the goal in the
    /// round, or the round is over): its rater's device reveals it when it next syncs.
    /// Set when read ([`crate::device::Device::progress`]), since rounds end with time.
    #[serde(default)]
    pub opening: bool,
    /// Whether that sealed rating's rater is no longer in the shared space (they left, or
    /// their last device was removed) before revealing it: it never opens. Set when read.
    #[serde(default)]
    pub left: bool,
    /// Whether the latest rating is dated more than [`AHEAD_MS`] after this device's
    /// clock: one device's clock was wrong when it was given (or is now), and it stays
    /// the latest until that time comes; `rate --amend` replaces it. Set when read.
    #[serde(default)]
    pub dated_ahead: bool,
    /// Weight for this goal (default 1).
    pub weight: f64,
}

fn shared() -> String {
    "shared".to_string()
}

/// Progress on one goal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoalProgress {
    /// Goal id.
    pub goal: String,
    /// Title.
    pub title: String,
    /// "shared", or the person id of the partner whose own goal it is.
    #[serde(default = "shared")]
    pub owner: String,
    /// Status.
    pub status: String,
    /// The expected outcome (level 0).
    pub expected: String,
    /// One series per partner, in people order.
    pub partners: Vec<PartnerSeries>,
    /// |a - b| between the two partners' latest levels, when both rated.
    pub gap: Option<i64>,
    /// Whether the partners' latest levels are 2 or more apart on a goal still active:
    /// worth talking about ([`worth_talking`]).
    pub worth_talking: bool,
}

/// A T-score at a moment (after a rating).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TPoint {
    /// When.
    pub at: i64,
    /// The T-score then.
    pub t: f64,
}

/// Progress of a space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Per goal in scope.
    pub goals: Vec<GoalProgress>,
    /// Per person id: T-score after each of their ratings (the latest [`KEEP_T_POINTS`]).
    pub t_by_person: BTreeMap<String, Vec<TPoint>>,
    /// Joint T-score after each rating (the latest [`KEEP_T_POINTS`]).
    pub t_joint: Vec<TPoint>,
    /// How many T-scores each person's series has in all.
    pub t_count_by_person: BTreeMap<String, usize>,
    /// How many joint T-scores there are in all.
    pub t_count_joint: usize,
    /// Person id -> name.
    pub people: BTreeMap<String, String>,
    /// Values left out because they are outside the model's ranges: "rating <id>: why".
    pub problems: Vec<String>,
    /// The person id of whoever asked (set by the application layer; empty otherwise).
    pub me: String,
}

impl Progress {
    /// A person's current T-score.
    pub fn current(&self, person: &str) -> Option<f64> {
        self.t_by_person
            .get(person)
            .and_then(|v| v.last())
            .map(|p| p.t)
    }

    /// The current joint T-score.
    pub fn current_joint(&self) -> Option<f64> {
        self.t_joint.last().map(|p| p.t)
    }
}

/// How many ratings of each partner per goal a summary keeps (a sparkline's width).
pub const KEEP_POINTS: usize = 40;

/// How many T-scores of each series a summary keeps.
pub const KEEP_T_POINTS: usize = 200;

impl Progress {
    /// The summary `duet progress` shows: every goal's latest levels, gap and counts, the
    /// current T-scores and counts, and the latest points of each series; its size does
    /// not grow with the history.
    pub fn bounded(mut self) -> Progress {
        for g in &mut self.goals {
            for s in &mut g.partners {
                keep_last(&mut s.ratings, KEEP_POINTS);
            }
        }
        for v in self.t_by_person.values_mut() {
            keep_last(v, KEEP_T_POINTS);
        }
        keep_last(&mut self.t_joint, KEEP_T_POINTS);
        self
    }

    /// Counts a valid rating that comes after every rating counted so far (by time,
    /// then id) into a summary, exactly as [`progress`] would. `false` when it cannot
    /// (its rater has no series here): the caller computes the summary again from
    /// everything.
    pub fn append(&mut self, r: &Rating) -> bool {
        let Some(g) = self.goals.iter_mut().find(|g| g.goal == r.goal) else {
            return true; // a goal out of scope counts nowhere
        };
        let Some(s) = g.partners.iter_mut().find(|s| s.person == r.rater) else {
            return false;
        };
        let level = r.level.get();
        s.ratings.push(Point { at: r.at, level });
        keep_last(&mut s.ratings, KEEP_POINTS);
        s.count += 1;
        s.latest = Some(level);
        s.latest_at = Some(r.at);
        g.gap = gap_of(&g.partners);
        g.worth_talking = worth_talking(g.gap, &g.status);
        // Every (goal, person)'s latest level, summed in the order `t_scores` sums them.
        let mut items: Vec<(&str, &str, f64, f64)> = self
            .goals
            .iter()
            .flat_map(|g| {
                g.partners.iter().filter_map(move |s| {
                    Some((
                        g.goal.as_str(),
                        s.person.as_str(),
                        s.weight,
                        s.latest? as f64,
                    ))
                })
            })
            .collect();
        items.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let mine: Vec<(f64, f64)> = items
            .iter()
            .filter(|i| i.1 == r.rater)
            .map(|i| (i.2, i.3))
            .collect();
        let all: Vec<(f64, f64)> = items.iter().map(|i| (i.2, i.3)).collect();
        if let Some(t) = t_score(&mine) {
            let series = self.t_by_person.entry(r.rater.clone()).or_default();
            series.push(TPoint { at: r.at, t });
            keep_last(series, KEEP_T_POINTS);
            *self.t_count_by_person.entry(r.rater.clone()).or_default() += 1;
        }
        if let Some(t) = t_score(&all) {
            self.t_joint.push(TPoint { at: r.at, t });
            keep_last(&mut self.t_joint, KEEP_T_POINTS);
            self.t_count_joint += 1;
        }
        true
    }
}

/// Whether a goal counts towards T-scores: active and achieved goals do; paused and
/// archived goals do not (unless asked for by id).
pub fn in_scope(goal: &Goal) -> bool {
    goal.status == Status::Active || goal.status == Status::Achieved
}

/// Computes progress over the goals `only` (ids) or, when `None`, all goals in scope.
pub fn progress(view: &View, only: Option<&[String]>) -> Progress {
    let people: BTreeMap<String, String> = crate::names::shown(&view.people);
    let goals: Vec<&Goal> = view
        .goals
        .iter()
        .filter(|g| match only {
            Some(ids) => ids.contains(&g.id),
            None => in_scope(g),
        })
        .collect();
    let mut problems = Vec::new();
    let weights = Weights::of(&goals, &mut problems);
    let ratings = valid_ratings(view, &goals, &mut problems);
    let raters = raters(&people, &ratings);
    let sealed: std::collections::BTreeSet<(&str, &str)> = crate::rituals::waiting_seals(view)
        .into_iter()
        .map(|s| (s.goal.as_str(), s.rater.as_str()))
        .collect();
    let out_goals = goals
        .iter()
        .map(|g| {
            let mut gp = goal_progress(g, &raters, &ratings, &people, &weights);
            for s in &mut gp.partners {
                s.sealed = sealed.contains(&(g.id.as_str(), s.person.as_str()));
            }
            gp
        })
        .collect();
    let (t_by_person, t_joint) = t_scores(&ratings, &weights);
    Progress {
        goals: out_goals,
        t_count_by_person: t_by_person
            .iter()
            .map(|(p, v)| (p.clone(), v.len()))
            .collect(),
        t_count_joint: t_joint.len(),
        t_by_person,
        t_joint,
        people,
        problems,
        me: String::new(),
    }
}

/// Each partner's weight for each goal in scope, only those within the model's range.
struct Weights(BTreeMap<(String, String), f64>);

impl Weights {
    /// The weights of `goals`, naming each out-of-range one in `problems`.
    fn of(goals: &[&Goal], problems: &mut Vec<String>) -> Weights {
        let mut weights = BTreeMap::new();
        let max = crate::model::limits::MAX_WEIGHT;
        for g in goals {
            for (p, w) in &g.weights {
                if w.is_finite() && (0.0..=max).contains(w) {
                    weights.insert((g.id.clone(), p.clone()), *w);
                } else {
                    problems.push(format!(
                        "goal {} weight of {}: {w} is not a number from 0 to {max}; 1 is used",
                        g.id,
                        crate::ids::short(p)
                    ));
                }
            }
        }
        Weights(weights)
    }

    /// A partner's weight for a goal: 1 when unset or out of range.
    fn get(&self, goal: &str, person: &str) -> f64 {
        self.0
            .get(&(goal.to_string(), person.to_string()))
            .copied()
            .unwrap_or(1.0)
    }
}

/// The ratings of `goals` that are within the model's ranges, by time; each one left out
/// is named in `problems`.
fn valid_ratings<'v>(
    view: &'v View,
    goals: &[&Goal],
    problems: &mut Vec<String>,
) -> Vec<&'v Rating> {
    let goal_ids: std::collections::BTreeSet<&str> = goals.iter().map(|g| g.id.as_str()).collect();
    let mut ratings: Vec<&Rating> = Vec::new();
    for r in view
        .ratings
        .iter()
        .filter(|r| goal_ids.contains(r.goal.as_str()))
    {
        match r.validate() {
            Ok(()) => ratings.push(r),
            Err(e) => problems.push(format!("rating {}: {e}; left out", r.id)),
        }
    }
    ratings.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    ratings
}

/// Everyone with a series: the space's people, then anyone else who rated (so no
/// rating goes unshown).
fn raters(people: &BTreeMap<String, String>, ratings: &[&Rating]) -> Vec<String> {
    let mut raters: Vec<String> = people.keys().cloned().collect();
    for r in ratings {
        if !raters.contains(&r.rater) {
            raters.push(r.rater.clone());
        }
    }
    raters
}

/// One goal's series per partner and the gap between their latest levels.
fn goal_progress(
    g: &Goal,
    raters: &[String],
    ratings: &[&Rating],
    people: &BTreeMap<String, String>,
    weights: &Weights,
) -> GoalProgress {
    let partners: Vec<PartnerSeries> = raters
        .iter()
        .map(|p| {
            let pts: Vec<Point> = ratings
                .iter()
                .filter(|r| r.goal == g.id && &r.rater == p)
                .map(|r| Point {
                    at: r.at,
                    level: r.level.get(),
                })
                .collect();
            PartnerSeries {
                person: p.clone(),
                name: people
                    .get(p)
                    .cloned()
                    .unwrap_or_else(|| crate::ids::short(p).to_string()),
                latest: pts.last().map(|x| x.level),
                latest_at: pts.last().map(|x| x.at),
                sealed: false,
                opening: false,
                left: false,
                dated_ahead: false,
                count: pts.len(),
                ratings: pts,
                weight: weights.get(&g.id, p),
            }
        })
        .collect();
    let gap = gap_of(&partners);
    GoalProgress {
        goal: g.id.clone(),
        title: g.title.as_str().to_string(),
        owner: g.owner.clone(),
        status: g.status.to_string(),
        expected: g.levels.expected.as_str().to_string(),
        partners,
        worth_talking: worth_talking(gap, &g.status.to_string()),
        gap,
    }
}

/// Whether a gap is worth talking about: 2 levels or more on a goal still active. On a
/// goal no longer worked on (achieved, archived) a gap is history, not a talk to have.
pub fn worth_talking(gap: Option<i64>, status: &str) -> bool {
    gap.is_some_and(|g| g >= 2) && status == Status::Active.as_str()
}

/// |a - b| between the partners' latest levels, when at least two have rated.
fn gap_of(partners: &[PartnerSeries]) -> Option<i64> {
    let latest: Vec<i64> = partners.iter().filter_map(|p| p.latest).collect();
    (latest.len() >= 2).then(|| {
        let max = latest.iter().max().copied().unwrap_or(0);
        let min = latest.iter().min().copied().unwrap_or(0);
        max - min
    })
}

/// Drops all but the last `n` items.
fn keep_last<T>(v: &mut Vec<T>, n: usize) {
    if v.len() > n {
        v.drain(..v.len() - n);
    }
}

/// T-scores over time, per person and joint: ratings replayed in time order, keeping
/// each partner's latest level per goal.
fn t_scores(
    ratings: &[&Rating],
    weights: &Weights,
) -> (BTreeMap<String, Vec<TPoint>>, Vec<TPoint>) {
    let mut latest: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut t_by_person: BTreeMap<String, Vec<TPoint>> = BTreeMap::new();
    let mut t_joint = Vec::new();
    for r in ratings {
        latest.insert((r.goal.clone(), r.rater.clone()), r.level.get());
        let mine: Vec<(f64, f64)> = latest
            .iter()
            .filter(|((_, p), _)| p == &r.rater)
            .map(|((g, p), x)| (weights.get(g, p), *x as f64))
            .collect();
        if let Some(t) = t_score(&mine) {
            t_by_person
                .entry(r.rater.clone())
                .or_default()
                .push(TPoint { at: r.at, t });
        }
        let all: Vec<(f64, f64)> = latest
            .iter()
            .map(|((g, p), x)| (weights.get(g, p), *x as f64))
            .collect();
        if let Some(t) = t_score(&all) {
            t_joint.push(TPoint { at: r.at, t });
        }
    }
    (t_by_person, t_joint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) {
        let a = a.expect("a score");
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn tiny_weights_score_as_their_ratios_say() {
        // As `duet goal edit --weight 1e-200` on every goal: the same score as weight 1.
        close(t_score(&[(1e-200, 1.0), (1e-200, 2.0)]), 68.60521018838128);
        let scaled = t_score(&[(1.0, 1.0), (2.0, -1.0)]).expect("a score");
        close(t_score(&[(1e-310, 1.0), (2e-310, -1.0)]), scaled);
    }

    #[test]
    fn all_goals_at_the_expected_level_give_fifty() {
        close(t_score(&[(1.0, 0.0)]), 50.0);
        close(t_score(&[(1.0, 0.0), (2.0, 0.0), (3.0, 0.0)]), 50.0);
    }

    #[test]
    fn one_goal_moves_ten_points_per_level() {
        // 50 + 10 * w x / sqrt(0.7 w² + 0.3 w²) = 50 + 10 x.
        close(t_score(&[(1.0, 1.0)]), 60.0);
        close(t_score(&[(1.0, -2.0)]), 30.0);
        close(t_score(&[(3.0, 2.0)]), 70.0);
    }

    #[test]
    fn three_weighted_goals_match_the_hand_computed_value() {
        // w = (1, 2, 3), x = (1, -1, 2): Σwx = 1 - 2 + 6 = 5; Σw² = 14; (Σw)² = 36;
        // sqrt(0.7*14 + 0.3*36) = sqrt(9.8 + 10.8) = sqrt(20.6) = 4.538722...
        // T = 50 + 50 / 4.538722 = 61.016...
        close(
            t_score(&[(1.0, 1.0), (2.0, -1.0), (3.0, 2.0)]),
            50.0 + 50.0 / 20.6f64.sqrt(),
        );
        // Three unweighted goals at +1: 50 + 10*3/sqrt(0.7*3 + 0.3*9) = 50 + 30/sqrt(4.8).
        close(
            t_score(&[(1.0, 1.0), (1.0, 1.0), (1.0, 1.0)]),
            50.0 + 30.0 / 4.8f64.sqrt(),
        );
    }

    #[test]
    fn ratings_and_weights_out_of_range_are_left_out_and_named() {
        use crate::model::{Goal, Rating};
        let goal: Goal = serde_json::from_value(serde_json::json!({
            "id": "g1", "area": "trust", "title": "Walk", "why": "",
            "levels": {"much_less": "", "less": "", "expected": "", "more": "", "much_more": ""},
            "owner": "shared", "status": "active", "due": null, "created_by": "a",
            "created_at": 1, "weights": {"a": 1e300}, "steps": {}
        }))
        .expect("a goal");
        let rating = |id: &str, level: i64, at: i64| Rating {
            id: id.into(),
            goal: "g1".into(),
            rater: "a".into(),
            at,
            level: crate::vocab::Level::try_from(level).expect("a level in range"),
            note: None,
            round: None,
            reveals: None,
            salt: None,
            corrects: None,
            withdrawn: None,
        };
        let view = View {
            goals: vec![goal],
            // (A level out of range cannot be made: `Rating::level` is a `Level`.)
            ratings: vec![rating("ok", 1, 10), rating("far", 1, i64::MAX)],
            ..View::default()
        };
        let p = progress(&view, None);
        assert_eq!(p.goals[0].partners[0].ratings.len(), 1, "{:?}", p.goals);
        close(p.current("a"), 60.0);
        assert_eq!(p.problems.len(), 2, "{:?}", p.problems);
        assert!(p.problems.iter().any(|x| x.starts_with("rating far")));
    }

    #[test]
    fn no_items_or_zero_weights_have_no_score() {
        assert_eq!(t_score(&[]), None);
        assert_eq!(t_score(&[(0.0, 1.0)]), None);
    }
}
