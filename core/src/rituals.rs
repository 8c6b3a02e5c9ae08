//! The couple's rituals read from a space's content: which check-in rounds are open,
//! whether a rating must be sealed, which of this person's seals are due to be revealed,
//! and the ratings and reflections that count once corrections and withdrawals apply.
//!
//! Rounds: the first sealed rating that finds no open round opens one, which ends by
//! itself after the period the rater's device sets (7 days by default) or when either
//! partner closes it. Rounds opened by both partners while apart are open together and
//! act as one: a rating counts as "in the round" if it is in any open round.

use std::collections::{BTreeMap, BTreeSet, HashMap};

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

/// Whether someone other than `me` has rated `goal` (sealed or not) in an open round.
pub fn other_rated(view: &View, me: &str, goal: &str, now: i64) -> bool {
    let open: BTreeSet<&str> = open_rounds(view, now)
        .into_iter()
        .map(|r| r.id.as_str())
        .collect();
    let in_open = |round: Option<&str>| round.is_some_and(|r| open.contains(r));
    // A rating its rater took back does not count as rated: rating and undoing before a
    // sync must not open the other's seal.
    let taken_back = withdrawn(view);
    let stands = |id: &str| !taken_back.contains(id);
    view.seals
        .iter()
        .any(|s| s.goal == goal && s.rater != me && in_open(Some(&s.round)) && stands(&s.id))
        || view.ratings.iter().any(|r| {
            r.goal == goal && r.rater != me && in_open(r.round.as_deref()) && stands(&r.id)
        })
}

/// The open round a new rating of `goal` by `me` goes in: the round of another rater's
/// waiting seal of the goal (a rating in the clear answers it, and must open it on the
/// sealer's device whatever that device's clock says of older rounds), else of their
/// rating of it, else the oldest open round.
pub fn round_for(view: &View, me: &str, goal: &str, now: i64) -> Option<String> {
    let open = open_rounds(view, now);
    let is_open = |round: &str| open.iter().any(|r| r.id == round);
    let answered_seal = waiting_seals(view)
        .into_iter()
        .filter(|s| s.goal == goal && s.rater != me && is_open(&s.round))
        .map(|s| s.round.as_str())
        .next();
    let answered_rating = || {
        view.ratings
            .iter()
            .filter(|r| r.goal == goal && r.rater != me)
            .filter_map(|r| r.round.as_deref())
            .find(|round| is_open(round))
    };
    answered_seal
        .or_else(answered_rating)
        .or_else(|| open.first().map(|r| r.id.as_str()))
        .map(str::to_string)
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

/// `me`'s seals whose time has come: their round is over, or someone else has rated the
/// same goal in an open round. A seal corrected or withdrawn since is never revealed.
pub fn due_reveals<'v>(view: &'v View, me: &str, now: i64) -> Vec<&'v Seal> {
    waiting_seals(view)
        .into_iter()
        .filter(|s| s.rater == me)
        .filter(|s| reveal_is_due(view, s, now))
        .collect()
}

/// The other people's seals whose time has come, as `me` reads the space: only their
/// rater's devices can reveal them, at their next rating or sync.
pub fn opening_seals<'v>(view: &'v View, me: &str, now: i64) -> Vec<&'v Seal> {
    waiting_seals(view)
        .into_iter()
        .filter(|s| s.rater != me)
        .filter(|s| reveal_is_due(view, s, now))
        .collect()
}

/// Whether the time has come for `seal` to be revealed: its round is over, or someone
/// other than its rater has rated the goal in an open round. Its rater's devices reveal
/// it at their next rating or sync; until then its partner is told it opens then.
pub fn reveal_is_due(view: &View, seal: &Seal, now: i64) -> bool {
    round_over(view, &seal.round, now) || other_rated(view, &seal.rater, &seal.goal, now)
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
