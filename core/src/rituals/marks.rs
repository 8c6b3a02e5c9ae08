//! Who has rated a goal in which round, and which rounds act as one because the two
//! partners sealed the goal in them while apart. Built once per view (a partner may have
//! written thousands of seals), read by every blind rule in `rituals`.
//!
//! Pairing: two partners who seal a goal while apart each open a round of their own.
//! Each such round (one rater's marks, a seal among them) is taken oldest first and
//! paired with the oldest earlier one, of another rater and not yet paired, that was
//! open with it at some moment (`Round::overlaps`). A paired round is a complete
//! check-in of the goal, as if both had rated in one round; a round opened later by a
//! new rating of the goal is not answered by a seal the pair already spent.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use crate::model::Round;
use crate::view::View;

/// The rounds of a view by id.
pub(super) type Rounds<'v> = HashMap<&'v str, Vec<&'v Round>>;

/// The rounds of `view` by id (a hostile writer may repeat one).
pub(super) fn rounds_by_id(view: &View) -> Rounds<'_> {
    let mut rounds: Rounds = HashMap::new();
    for r in &view.rounds {
        rounds.entry(r.id.as_str()).or_default().push(r);
    }
    rounds
}

/// Who has rated a goal in which round: (rater, round) of each of its ratings and seals
/// that their rater did not take back, in the view's order (seals first), looked up by
/// round, and the rounds paired while apart. A rating or seal taken back does not count
/// as rated: rating and undoing before a sync must not open the other's seal.
#[derive(Default)]
pub(super) struct Marks<'v> {
    pub(super) list: Vec<(&'v str, &'v str)>,
    by_round: HashMap<&'v str, Vec<&'v str>>,
    /// The rounds holding a seal of the goal.
    sealed: HashSet<&'v str>,
    /// The rounds paired with another rater's round while apart.
    paired: HashSet<&'v str>,
    /// Each paired round's pair.
    pairs: HashMap<&'v str, &'v str>,
}

impl<'v> Marks<'v> {
    /// The marks of one goal.
    pub(super) fn of(view: &'v View, goal: &str) -> Self {
        let taken_back = super::withdrawn(view);
        Self::of_goals(view, &taken_back, &rounds_by_id(view), Some(goal))
            .remove(goal)
            .unwrap_or_default()
    }

    /// The marks of every goal (or of `only` that one), in one pass over the view.
    pub(super) fn of_goals(
        view: &'v View,
        taken_back: &BTreeSet<&str>,
        rounds: &Rounds,
        only: Option<&str>,
    ) -> HashMap<&'v str, Marks<'v>> {
        let wanted =
            |goal: &str, id: &str| only.is_none_or(|g| g == goal) && !taken_back.contains(id);
        let mut goals: HashMap<&str, Marks> = HashMap::new();
        for s in view.seals.iter().filter(|s| wanted(&s.goal, &s.id)) {
            let m = goals.entry(s.goal.as_str()).or_default();
            m.sealed.insert(s.round.as_str());
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
        for m in goals.values_mut() {
            m.pair(rounds);
        }
        goals
    }

    fn add(&mut self, rater: &'v str, round: &'v str) {
        self.list.push((rater, round));
        self.by_round.entry(round).or_default().push(rater);
    }

    /// Pairs the rounds one rater sealed the goal in alone, oldest first, each with the
    /// oldest unpaired earlier one of another rater open together with it.
    fn pair(&mut self, rounds: &Rounds) {
        // (opened, last moment, id, rater) of each round sealed in by one rater alone.
        let mut alone: Vec<(i64, i64, &'v str, &'v str)> = self
            .sealed
            .iter()
            .filter_map(|&id| {
                let raters = self.by_round.get(id)?;
                let one = raters.iter().all(|&w| w == raters[0]);
                let entries = rounds.get(id)?;
                let opened = entries.iter().map(|r| r.opened_at).min()?;
                let last = entries.iter().map(|r| r.last_moment()).max()?;
                (one && opened < last).then_some((opened, last, id, raters[0]))
            })
            .collect();
        alone.sort_unstable();
        // Per rater, their unpaired rounds so far, oldest first. A round that ended
        // before the one at hand opened can pair with no later one and is dropped.
        type Waiting<'v> = VecDeque<(i64, i64, &'v str)>;
        let mut waiting: HashMap<&str, Waiting<'v>> = HashMap::new();
        for (opened, last, id, rater) in alone {
            let mut oldest: Option<((i64, i64, &str), &str)> = None;
            for (&other, queue) in waiting.iter_mut().filter(|(w, _)| **w != rater) {
                while queue.front().is_some_and(|&(_, end, _)| end <= opened) {
                    queue.pop_front();
                }
                if let Some(&front) = queue.front()
                    && oldest.is_none_or(|(o, _)| front < o)
                {
                    oldest = Some((front, other));
                }
            }
            match oldest.and_then(|(_, other)| waiting.get_mut(other)?.pop_front()) {
                Some((_, _, q)) => {
                    self.paired.insert(q);
                    self.paired.insert(id);
                    self.pairs.insert(q, id);
                    self.pairs.insert(id, q);
                }
                None => waiting
                    .entry(rater)
                    .or_default()
                    .push_back((opened, last, id)),
            }
        }
    }

    /// Whether someone `who` accepts has rated the goal in `round`.
    pub(super) fn rated_in(&self, round: &str, who: impl Fn(&str) -> bool) -> bool {
        self.by_round
            .get(round)
            .is_some_and(|raters| raters.iter().any(|&w| who(w)))
    }

    /// Whether someone `who` accepts has rated the goal in `round` or in the round paired
    /// with it: the two are one check-in of the goal.
    pub(super) fn rated_in_check_in(&self, round: &str, who: impl Fn(&str) -> bool) -> bool {
        self.rated_in(round, &who)
            || self
                .pairs
                .get(round)
                .is_some_and(|pair| self.rated_in(pair, &who))
    }

    /// Whether anyone has rated the goal in `round`.
    pub(super) fn rated(&self, round: &str) -> bool {
        self.by_round.contains_key(round)
    }

    /// Whether `round` was paired with another rater's round while apart.
    pub(super) fn paired(&self, round: &str) -> bool {
        self.paired.contains(round)
    }

    /// Whether the goal's check-in is complete in `round`: two people rated it there,
    /// or it was paired while apart. A new rating of the goal starts another.
    pub(super) fn complete(&self, round: &str) -> bool {
        self.paired(round)
            || self
                .by_round
                .get(round)
                .is_some_and(|raters| raters.iter().any(|&w| w != raters[0]))
    }
}
