//! The couple's rituals read from a space's content: which check-in rounds are open,
//! whether a rating must be sealed, which of this person's seals are due to be revealed,
//! and the ratings and reflections that count once corrections and withdrawals apply.
//!
//! Rounds: the first sealed rating that finds no open round opens one, which ends by
//! itself after the period the rater's device sets (7 days by default) or when either
//! partner closes it. A rating answers the partner's in the round they rated in, and
//! opens their seal there; two seals made while apart, each in a round of its own, open
//! each other when the rounds were open together. A round where both have rated a goal
//! is done with it: a new rating of the goal is blind again, in a newer round.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::model::{Rating, Reflection, Round, Seal};
use crate::view::View;

/// How long a check-in round stays open unless a partner closes it: 7 days.
pub const DEFAULT_ROUND_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// The rounds open at `now`, oldest first.
pub fn open_rounds(view: &View, now: i64) -> Vec<&Round> {
    view.rounds.iter().filter(|r| !r.is_over(now)).collect()
}

/// Whether `round` is over at `now` (a round this device does not know counts as over:
/// nothing must stay sealed for want of it).
pub fn round_over(view: &View, round: &str, now: i64) -> bool {
    view.rounds
        .iter()
        .filter(|r| r.id == round)
        .all(|r| r.is_over(now))
}

/// Who has rated a goal in which round: (rater, round) of each of its ratings and seals
/// that their rater did not take back, in the view's order (seals first), and looked up
/// by round. A rating or seal taken back does not count as rated: rating and undoing
/// before a sync must not open the other's seal.
#[derive(Default)]
struct Marks<'v> {
    list: Vec<(&'v str, &'v str)>,
    by_round: HashMap<&'v str, Vec<&'v str>>,
    /// The (rater, round) of the seals alone.
    sealed: Vec<(&'v str, &'v str)>,
}

impl<'v> Marks<'v> {
    /// The marks of one goal.
    fn of(view: &'v View, goal: &str) -> Self {
        let taken_back = withdrawn(view);
        Self::of_goals(view, &taken_back, Some(goal))
            .remove(goal)
            .unwrap_or_default()
    }

    /// The marks of every goal (or of `only` that one), in one pass over the view.
    fn of_goals(
        view: &'v View,
        taken_back: &BTreeSet<&str>,
        only: Option<&str>,
    ) -> HashMap<&'v str, Marks<'v>> {
        let wanted =
            |goal: &str, id: &str| only.is_none_or(|g| g == goal) && !taken_back.contains(id);
        let mut goals: HashMap<&str, Marks> = HashMap::new();
        for s in view.seals.iter().filter(|s| wanted(&s.goal, &s.id)) {
            let m = goals.entry(s.goal.as_str()).or_default();
            m.sealed.push((s.rater.as_str(), s.round.as_str()));
            m.add(&s.rater, &s.round);
        }
        for r in view.ratings.iter().filter(|r| wanted(&r.goal, &r.id)) {
            if let Some(round) = r.round.as_deref() {
                goals
                    .entry(r.goal.as_str())
                    .or_default()
                    .add(&r.rater, round);
            }
        }
        goals
    }

    fn add(&mut self, rater: &'v str, round: &'v str) {
        self.list.push((rater, round));
        self.by_round.entry(round).or_default().push(rater);
    }

    /// Whether someone `who` accepts has rated the goal in `round`.
    fn rated_in(&self, round: &str, who: impl Fn(&str) -> bool) -> bool {
        self.by_round
            .get(round)
            .is_some_and(|raters| raters.iter().any(|&w| who(w)))
    }

    /// Whether anyone has rated the goal in `round`.
    fn rated(&self, round: &str) -> bool {
        self.by_round.contains_key(round)
    }

    /// Whether two people have rated the goal in `round`: its check-in of the goal is
    /// complete there, and a new rating of it starts another.
    fn complete(&self, round: &str) -> bool {
        self.by_round
            .get(round)
            .is_some_and(|raters| raters.iter().any(|&w| w != raters[0]))
    }
}

/// The open rounds that hold a goal's current check-in: a round where both have rated it
/// is left behind once a round opened later holds a new rating of it (last week's round
/// still open for an hour when this week's check-in starts).
fn current_rounds<'v>(view: &'v View, marks: &Marks, now: i64) -> Vec<&'v Round> {
    let open = open_rounds(view, now);
    let newest_rated = open
        .iter()
        .filter(|l| marks.rated(&l.id))
        .map(|l| l.opened_at)
        .max();
    let left_behind =
        |r: &Round| marks.complete(&r.id) && newest_rated.is_some_and(|t| t > r.opened_at);
    open.into_iter().filter(|r| !left_behind(r)).collect()
}

/// Whether someone `who` accepts has rated `goal` (sealed or not) in its current
/// check-in (`current_rounds`).
pub fn rated_now(view: &View, goal: &str, now: i64, who: impl Fn(&str) -> bool) -> bool {
    let marks = Marks::of(view, goal);
    current_rounds(view, &marks, now)
        .iter()
        .any(|r| marks.rated_in(&r.id, &who))
}

/// Whether someone other than `me` has rated `goal` (sealed or not) in its current
/// check-in.
pub fn other_rated(view: &View, me: &str, goal: &str, now: i64) -> bool {
    rated_now(view, goal, now, |w| w != me)
}

/// The open round whose rating by another person a rating of `goal` by `me` answers, so
/// that it is made in the clear there (the partner is already committed): the round of
/// their waiting seal of the goal (the answer must open it on the sealer's device
/// whatever that device's clock says of older rounds), else of their rating of it in a
/// round where `me` has not rated it. `None`: the rating is blind.
pub fn answered_round(view: &View, me: &str, goal: &str, now: i64) -> Option<String> {
    let open: HashSet<&str> = open_rounds(view, now)
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    let is_open = |round: &str| open.contains(round);
    let marks = Marks::of(view, goal);
    let answered_seal = waiting_seals(view)
        .into_iter()
        .find(|s| s.goal == goal && s.rater != me && is_open(&s.round))
        .map(|s| s.round.as_str());
    let answered_rating = || {
        marks
            .list
            .iter()
            .find(|&&(w, r)| w != me && is_open(r) && !marks.rated_in(r, |x| x == me))
            .map(|&(_, r)| r)
    };
    answered_seal.or_else(answered_rating).map(str::to_string)
}

/// The open round a blind rating of `goal` goes in: the newest one where the goal's
/// check-in is not complete (`None`: a new round).
pub fn blind_round(view: &View, goal: &str, now: i64) -> Option<String> {
    let marks = Marks::of(view, goal);
    open_rounds(view, now)
        .into_iter()
        .filter(|r| !marks.complete(&r.id))
        .max_by_key(|r| (r.opened_at, r.id.as_str()))
        .map(|r| r.id.clone())
}

/// The rounds a view must hold the ratings of to decide as the whole space would: the
/// open ones and those that were open together with one of them.
pub fn deciding_rounds(rounds: &[Round], now: i64) -> Vec<String> {
    let open: Vec<&Round> = rounds.iter().filter(|r| !r.is_over(now)).collect();
    let mut ids: Vec<String> = rounds
        .iter()
        .filter(|r| open.iter().any(|o| o.id == r.id || o.overlaps(r)))
        .map(|r| r.id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The ids of the ratings and seals a withdrawal took back.
fn withdrawn(view: &View) -> BTreeSet<&str> {
    view.ratings
        .iter()
        .filter(|r| r.withdrawn == Some(true))
        .filter_map(|r| r.corrects.as_deref())
        .collect()
}

/// The seals no rating reveals yet.
pub fn unrevealed(view: &View) -> Vec<&Seal> {
    let revealed: BTreeSet<&str> = view
        .ratings
        .iter()
        .filter_map(|r| r.reveals.as_deref())
        .collect();
    view.seals
        .iter()
        .filter(|s| !revealed.contains(s.id.as_str()))
        .collect()
}

/// The ids a later rating or seal corrects (or withdraws). A correction that was itself
/// withdrawn replaces nothing: undoing a correction brings back what it corrected.
pub fn superseded(view: &View) -> BTreeSet<&str> {
    let taken_back = withdrawn(view);
    let replaces = |id: &str, withdrawal: bool| withdrawal || !taken_back.contains(id);
    view.ratings
        .iter()
        .filter(|r| replaces(&r.id, r.withdrawn == Some(true)))
        .filter_map(|r| r.corrects.as_deref())
        .chain(
            view.seals
                .iter()
                .filter(|s| replaces(&s.id, false))
                .filter_map(|s| s.corrects.as_deref()),
        )
        .collect()
}

/// The seals still waiting to be revealed: not revealed, not corrected or withdrawn.
pub fn waiting_seals(view: &View) -> Vec<&Seal> {
    let gone = superseded(view);
    unrevealed(view)
        .into_iter()
        .filter(|s| !gone.contains(s.id.as_str()))
        .collect()
}

/// `me`'s seals whose time has come: their round is over, or `answered`. A seal corrected or withdrawn
/// since is never revealed.
pub fn due_reveals<'v>(view: &'v View, me: &str, now: i64) -> Vec<&'v Seal> {
    seals_due(view, now, |s| s.rater == me)
}

/// The other people's seals whose time has come, as `me` reads the space: only their
/// rater's devices can reveal them, at their next rating or sync.
pub fn opening_seals<'v>(view: &'v View, me: &str, now: i64) -> Vec<&'v Seal> {
    seals_due(view, now, |s| s.rater != me)
}

/// The waiting seals `which` takes whose time has come. A partner may have written
/// thousands of seals: the view is read once into lookups (rounds by id, who rated each
/// goal in which round, the rounds each rater's seals may be answered from), never once
/// per seal.
fn seals_due(view: &View, now: i64, which: impl Fn(&Seal) -> bool) -> Vec<&Seal> {
    let mut rounds: HashMap<&str, Vec<&Round>> = HashMap::new();
    for r in &view.rounds {
        rounds.entry(r.id.as_str()).or_default().push(r);
    }
    let over = |round: &str| {
        rounds
            .get(round)
            .is_none_or(|rs| rs.iter().all(|r| r.is_over(now)))
    };
    let taken_back = withdrawn(view);
    let marks = Marks::of_goals(view, &taken_back, None);
    let no_marks = Marks::default();
    let mut apart: HashMap<(&str, &str), Spans> = HashMap::new();
    waiting_seals(view)
        .into_iter()
        .filter(|s| which(s))
        .filter(|s| {
            over(&s.round) || {
                let m = marks.get(s.goal.as_str()).unwrap_or(&no_marks);
                let spans = apart
                    .entry((s.goal.as_str(), s.rater.as_str()))
                    .or_insert_with(|| Spans::answering(m, &s.rater, &rounds));
                answered(s, m, spans, &rounds)
            }
        })
        .collect()
}

/// Whether a seal's time has come short of its round's end: someone other than its
/// rater has rated the goal in its round, or sealed it in another round open together
/// with its own, with neither round holding the other's rating of it: the two rated
/// while apart, each opening a round, and the rounds act as one (both seals open
/// together, whichever round ends first). Its rater's devices reveal it at their next
/// rating or sync; until then its partner is told it opens then. `marks`: who rated the
/// goal in which round; `apart`: the rounds of the others' seals of the goal where the
/// seal's rater has not rated it.
fn answered(
    seal: &Seal,
    marks: &Marks,
    apart: &Spans,
    rounds: &HashMap<&str, Vec<&Round>>,
) -> bool {
    // When no one else rated in the seal's round, no other rater's round is the seal's
    // own and none holds their rating there: only the overlap is left to look at.
    marks.rated_in(&seal.round, |w| w != seal.rater)
        || rounds
            .get(seal.round.as_str())
            .is_some_and(|own| own.iter().any(|r| apart.any_overlaps(r)))
}

/// Rounds as spans of time sorted by opening, with the latest end among each prefix, so
/// that whether any of them overlaps a round is one binary search.
struct Spans {
    opened: Vec<i64>,
    latest_end: Vec<i64>,
}

impl Spans {
    /// The rounds of the others' seals in `marks` where `rater` has not rated the goal.
    fn answering(marks: &Marks, rater: &str, rounds: &HashMap<&str, Vec<&Round>>) -> Self {
        let ids: BTreeSet<&str> = marks
            .sealed
            .iter()
            .filter(|&&(w, q)| w != rater && !marks.rated_in(q, |x| x == rater))
            .map(|&(_, q)| q)
            .collect();
        let mut spans: Vec<(i64, i64)> = ids
            .into_iter()
            .filter_map(|q| rounds.get(q))
            .flatten()
            .map(|r| (r.opened_at, r.last_moment()))
            .collect();
        spans.sort_unstable();
        let mut latest = i64::MIN;
        let latest_end = spans
            .iter()
            .map(|&(_, end)| {
                latest = latest.max(end);
                latest
            })
            .collect();
        Spans {
            opened: spans.into_iter().map(|(o, _)| o).collect(),
            latest_end,
        }
    }

    /// Whether one of the spans overlaps `r` as `Round::overlaps` says.
    fn any_overlaps(&self, r: &Round) -> bool {
        let before_end = self.opened.partition_point(|&o| o < r.last_moment());
        before_end > 0 && self.latest_end[before_end - 1] > r.opened_at
    }
}

/// The ratings that count: a correction replaces what it corrects, a withdrawal removes
/// it, and a seal revealed twice (by two devices of its rater) counts once.
pub fn effective_ratings(view: &View) -> Vec<Rating> {
    // A correction may name a seal; it then replaces the rating that reveals it.
    let reveal_of: BTreeMap<&str, &str> = view
        .ratings
        .iter()
        .filter_map(|r| Some((r.reveals.as_deref()?, r.id.as_str())))
        .collect();
    let taken_back = withdrawn(view);
    let mut gone: BTreeSet<&str> = BTreeSet::new();
    for r in &view.ratings {
        let withdrawal = r.withdrawn == Some(true);
        // A withdrawn correction replaces nothing (undo brings back what it corrected).
        if let Some(target) = r.corrects.as_deref()
            && (withdrawal || !taken_back.contains(r.id.as_str()))
        {
            gone.insert(reveal_of.get(target).copied().unwrap_or(target));
        }
        if r.withdrawn == Some(true) {
            gone.insert(r.id.as_str());
        }
    }
    let mut seen_reveals = BTreeSet::new();
    view.ratings
        .iter()
        .filter(|r| !gone.contains(r.id.as_str()))
        .filter(|r| r.reveals.as_deref().is_none_or(|s| seen_reveals.insert(s)))
        .cloned()
        .collect()
}

/// The reflections still standing (not withdrawn).
pub fn standing_reflections(view: &View) -> Vec<Reflection> {
    view.reflections
        .iter()
        .filter(|r| r.withdrawn_at.is_none())
        .cloned()
        .collect()
}

/// The view as every reading command shows it: corrections applied, withdrawn ratings
/// and reflections left out. The seals still waiting stay (shown as "has rated; rate to
/// see it"); the others go, since once a seal's reveal is withdrawn or corrected nothing
/// left in the view would say it was revealed, and it would wait again.
pub fn effective(mut view: View) -> View {
    let waiting: BTreeSet<String> = waiting_seals(&view).iter().map(|s| s.id.clone()).collect();
    view.seals.retain(|s| waiting.contains(&s.id));
    view.ratings = effective_ratings(&view);
    view.reflections = standing_reflections(&view);
    view
}

/// The thread each reflection belongs to: `reply_to` followed up to one that answers none
/// (or one not among them), at most 64 steps, so a cycle a hostile partner wrote ends.
/// Takes (id, reply_to) pairs; gives id -> the id of its thread's first reflection.
pub fn thread_roots<'a>(
    pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> HashMap<&'a str, &'a str> {
    let parent: HashMap<&str, Option<&str>> = pairs.into_iter().collect();
    parent
        .keys()
        .map(|&id| {
            let mut cur = id;
            for _ in 0..64 {
                match parent.get(cur).copied().flatten() {
                    Some(p) if parent.contains_key(p) => cur = p,
                    _ => break,
                }
            }
            (id, cur)
        })
        .collect()
}
