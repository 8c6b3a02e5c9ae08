//! The blind rules read through lookups built once per view (`rituals`, so that thousands
//! of a partner's seals do not make a rating take seconds) decide exactly as the rules
//! read straight from docs/data-model.md, one seal and one round at a time: over random
//! views of two goals, three raters, rounds open together or apart, closed, unknown or
//! dated ahead, seals and ratings that correct, reveal and withdraw one another, every
//! rater's due seals, the partner's opening seals, and where a new rating goes are the
//! same.

use std::collections::BTreeSet;

use duet_core::Level;
use duet_core::model::{Rating, Round, Seal};
use duet_core::rituals;
use duet_core::view::View;
use proptest::prelude::*;

const HOUR: i64 = 60 * 60 * 1000;
const RATERS: [&str; 3] = ["pa", "pb", "pc"];
const GOALS: [&str; 2] = ["g0", "g1"];

/// The rules as docs/data-model.md states them, one seal and one round at a time.
mod reference {
    use super::*;

    /// What withdrawals took back; the reveals of one seal are one rating, so taking
    /// back one reveal takes back every reveal of its seal.
    fn withdrawn(view: &View) -> BTreeSet<&str> {
        let named: BTreeSet<&str> = view
            .ratings
            .iter()
            .filter(|r| r.withdrawn == Some(true))
            .filter_map(|r| r.corrects.as_deref())
            .collect();
        let seal_taken_back = |seal: &str| {
            view.ratings
                .iter()
                .any(|o| named.contains(o.id.as_str()) && o.reveals.as_deref() == Some(seal))
        };
        let siblings = view
            .ratings
            .iter()
            .filter(|r| r.reveals.as_deref().is_some_and(seal_taken_back))
            .map(|r| r.id.as_str());
        named.iter().copied().chain(siblings).collect()
    }

    fn marks<'v>(view: &'v View, goal: &str) -> Vec<(&'v str, &'v str)> {
        let taken_back = withdrawn(view);
        let stands = |id: &str| !taken_back.contains(id);
        let seals = view
            .seals
            .iter()
            .filter(|s| s.goal == goal && stands(&s.id))
            .map(|s| (s.rater.as_str(), s.round.as_str()));
        let ratings = view
            .ratings
            .iter()
            .filter(|r| r.goal == goal && stands(&r.id))
            .filter_map(|r| Some((r.rater.as_str(), r.round.as_deref()?)));
        seals.chain(ratings).collect()
    }

    fn rated_in(marks: &[(&str, &str)], round: &str, who: impl Fn(&str) -> bool) -> bool {
        marks.iter().any(|&(rater, r)| r == round && who(rater))
    }

    /// The rounds of `goal` paired while apart.
    fn paired(view: &View, goal: &str) -> BTreeSet<String> {
        pairs(view, goal)
            .into_iter()
            .flat_map(|(a, b)| [a, b])
            .collect()
    }

    /// The round paired with `round` while apart, if any.
    fn pair_of(view: &View, goal: &str, round: &str) -> Option<String> {
        pairs(view, goal).into_iter().find_map(|(a, b)| {
            if a == round {
                Some(b)
            } else if b == round {
                Some(a)
            } else {
                None
            }
        })
    }

    /// The pairs of rounds of `goal` paired while apart: each round one rater alone
    /// sealed the goal in, oldest first, pairs with the oldest earlier unpaired one of
    /// another rater open together with it.
    fn pairs(view: &View, goal: &str) -> Vec<(String, String)> {
        let marks = marks(view, goal);
        let taken_back = withdrawn(view);
        let span = |id: &str| {
            let entries: Vec<&Round> = view.rounds.iter().filter(|r| r.id == id).collect();
            let opened = entries.iter().map(|r| r.opened_at).min()?;
            let last = entries.iter().map(|r| r.last_moment()).max()?;
            (opened < last).then_some((opened, last))
        };
        let mut alone: Vec<(i64, i64, String, String)> = view
            .seals
            .iter()
            .filter(|s| s.goal == goal && !taken_back.contains(s.id.as_str()))
            .filter(|s| marks.iter().all(|&(w, r)| r != s.round || w == s.rater))
            .filter_map(|s| {
                let (opened, last) = span(&s.round)?;
                Some((opened, last, s.round.clone(), s.rater.clone()))
            })
            .collect();
        alone.sort();
        alone.dedup();
        let mut unpaired: Vec<(i64, i64, String, String)> = Vec::new();
        let mut pairs = Vec::new();
        for r in alone {
            let partner = unpaired
                .iter()
                .position(|u| u.3 != r.3 && u.0 < r.1 && r.0 < u.1);
            match partner {
                Some(i) => pairs.push((unpaired.remove(i).2, r.2)),
                None => unpaired.push(r),
            }
        }
        pairs
    }

    fn complete(view: &View, goal: &str, marks: &[(&str, &str)], round: &str) -> bool {
        let mut raters = marks.iter().filter(|(_, r)| *r == round).map(|(w, _)| *w);
        paired(view, goal).contains(round)
            || raters
                .next()
                .is_some_and(|first| raters.any(|other| other != first))
    }

    fn current_rounds<'v>(
        view: &'v View,
        goal: &str,
        marks: &[(&str, &str)],
        now: i64,
    ) -> Vec<&'v Round> {
        let open = rituals::open_rounds(view, now);
        let rated = |round: &str| marks.iter().any(|(_, r)| *r == round);
        let left_behind = |r: &Round| {
            complete(view, goal, marks, &r.id)
                && open
                    .iter()
                    .any(|l| l.opened_at > r.opened_at && rated(&l.id))
        };
        open.iter().copied().filter(|r| !left_behind(r)).collect()
    }

    /// Rated in a current round, or in the round paired with it (one check-in).
    pub fn other_rated(view: &View, me: &str, goal: &str, now: i64) -> bool {
        let marks = marks(view, goal);
        let other = |w: &str| w != me;
        current_rounds(view, goal, &marks, now).iter().any(|r| {
            rated_in(&marks, &r.id, other)
                || pair_of(view, goal, &r.id).is_some_and(|p| rated_in(&marks, &p, other))
        })
    }

    pub fn answered_round(view: &View, me: &str, goal: &str, now: i64) -> Option<String> {
        let open = rituals::open_rounds(view, now);
        let is_open = |round: &str| open.iter().any(|r| r.id == round);
        let marks = marks(view, goal);
        // Of several rounds, the newest (its latest opening, then its id).
        let newest = |round: &str| {
            let opened = open.iter().filter(|r| r.id == round).map(|r| r.opened_at);
            (opened.max(), round.to_string())
        };
        let answered_seal = rituals::waiting_seals(view)
            .into_iter()
            .filter(|s| {
                s.goal == goal
                    && s.rater != me
                    && is_open(&s.round)
                    && !paired(view, goal).contains(&s.round)
                    && !rated_in(&marks, &s.round, |x| x == me)
            })
            .map(|s| s.round.as_str())
            .max_by_key(|r| newest(r));
        let answered_rating = || {
            marks
                .iter()
                .filter(|&&(w, r)| {
                    w != me
                        && is_open(r)
                        && !complete(view, goal, &marks, r)
                        && !rated_in(&marks, r, |x| x == me)
                })
                .map(|&(_, r)| r)
                .max_by_key(|r| newest(r))
        };
        answered_seal.or_else(answered_rating).map(str::to_string)
    }

    pub fn blind_round(view: &View, goal: &str, now: i64) -> Option<String> {
        let marks = marks(view, goal);
        rituals::open_rounds(view, now)
            .into_iter()
            .filter(|r| !complete(view, goal, &marks, &r.id))
            .max_by_key(|r| (r.opened_at, r.id.as_str()))
            .map(|r| r.id.clone())
    }

    /// A round this device does not know counts as over.
    fn round_over(view: &View, round: &str, now: i64) -> bool {
        view.rounds
            .iter()
            .filter(|r| r.id == round)
            .all(|r| r.is_over(now))
    }

    pub fn seals_due(view: &View, now: i64, which: impl Fn(&Seal) -> bool) -> Vec<String> {
        rituals::waiting_seals(view)
            .into_iter()
            .filter(|s| which(s))
            .filter(|s| {
                let answered = rated_in(&marks(view, &s.goal), &s.round, |w| w != s.rater)
                    || paired(view, &s.goal).contains(&s.round);
                answered
                    || match late(view, s) {
                        Some(length) => late_due(view, s, length, now),
                        None => round_over(view, &s.round, now),
                    }
            })
            .map(|s| s.id.clone())
            .collect()
    }

    /// A seal dated after its round was first closed: the round's length.
    fn late(view: &View, seal: &Seal) -> Option<i64> {
        let entries: Vec<&Round> = view.rounds.iter().filter(|r| r.id == seal.round).collect();
        let closed = entries.iter().filter_map(|r| r.closed_at).min()?;
        if seal.at <= closed {
            return None;
        }
        entries.iter().map(|r| r.ends_at - r.opened_at).max()
    }

    /// Its length passed since it, or another rater rated or sealed the goal after it.
    fn late_due(view: &View, seal: &Seal, length: i64, now: i64) -> bool {
        let back = withdrawn(view);
        now >= seal.at + length
            || view.ratings.iter().any(|r| {
                r.withdrawn != Some(true)
                    && r.goal == seal.goal
                    && r.rater != seal.rater
                    && r.at > seal.at
                    && !back.contains(r.id.as_str())
            })
            || view.seals.iter().any(|o| {
                o.goal == seal.goal
                    && o.rater != seal.rater
                    && o.at > seal.at
                    && !back.contains(o.id.as_str())
            })
    }
}

/// A round: opened at an hour, mostly in 0..12 (so that rounds often start as others
/// end) and sometimes more than a day ahead of now; open 1..12 hours, perhaps closed
/// early.
fn round() -> impl Strategy<Value = (i64, i64, Option<i64>)> {
    let opened = prop_oneof![4 => 0..12i64, 1 => 36..48i64];
    (opened, 1..12i64, proptest::option::of(0..12i64))
}

/// A seal: goal, rater, round (index; 6 is a round no one opened), corrects (index).
fn seal() -> impl Strategy<Value = (usize, usize, usize, Option<usize>)> {
    (
        0..2usize,
        0..3usize,
        0..7usize,
        proptest::option::of(0..12usize),
    )
}

/// A rating: goal, rater, round, reveals (seal index), corrects (index), withdrawal.
type RatingParts = (
    usize,
    usize,
    Option<usize>,
    Option<usize>,
    Option<usize>,
    bool,
);

fn rating() -> impl Strategy<Value = RatingParts> {
    (
        0..2usize,
        0..3usize,
        proptest::option::of(0..7usize),
        proptest::option::of(0..8usize),
        proptest::option::of(0..12usize),
        any::<bool>(),
    )
}

fn build(
    rounds: Vec<(i64, i64, Option<i64>)>,
    seals: Vec<(usize, usize, usize, Option<usize>)>,
    ratings: Vec<RatingParts>,
) -> View {
    // Ids 0..8 name seals, 8.. ratings, so a correction may name either.
    let id = |i: usize| {
        if i < 8 {
            format!("s{i}")
        } else {
            format!("c{}", i - 8)
        }
    };
    let rounds = rounds
        .into_iter()
        .enumerate()
        .map(|(i, (opened, length, closed))| Round {
            id: format!("r{i}"),
            opened_by: RATERS[i % 3].into(),
            opened_at: opened * HOUR,
            ends_at: (opened + length) * HOUR,
            closed_by: closed.map(|_| RATERS[i % 3].into()),
            closed_at: closed.map(|c| (opened + c) * HOUR),
        })
        .collect();
    let seals = seals
        .into_iter()
        .enumerate()
        .map(|(i, (goal, rater, round, corrects))| Seal {
            id: format!("s{i}"),
            goal: GOALS[goal].into(),
            rater: RATERS[rater].into(),
            at: i as i64 * HOUR,
            round: format!("r{round}"),
            corrects: corrects.map(id),
            commitment: "0".repeat(64),
            sealed: "00".into(),
        })
        .collect();
    let ratings = ratings
        .into_iter()
        .enumerate()
        .map(
            |(i, (goal, rater, round, reveals, corrects, withdrawal))| Rating {
                id: format!("c{i}"),
                goal: GOALS[goal].into(),
                rater: RATERS[rater].into(),
                at: i as i64 * HOUR,
                level: Level::EXPECTED,
                note: None,
                round: round.map(|r| format!("r{r}")),
                reveals: reveals.map(|s| format!("s{s}")),
                salt: None,
                corrects: corrects.map(id),
                withdrawn: (withdrawal && corrects.is_some()).then_some(true),
            },
        )
        .collect();
    View {
        rounds,
        seals,
        ratings,
        ..View::default()
    }
}

fn ids(seals: Vec<&Seal>) -> Vec<String> {
    seals.into_iter().map(|s| s.id.clone()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn the_rules_read_through_lookups_decide_as_the_rules_read_one_seal_at_a_time(
        rounds in proptest::collection::vec(round(), 0..6),
        seals in proptest::collection::vec(seal(), 0..8),
        ratings in proptest::collection::vec(rating(), 0..8),
        now in 0..24i64,
    ) {
        let view = build(rounds, seals, ratings);
        let now = now * HOUR;
        for me in RATERS {
            prop_assert_eq!(
                ids(rituals::due_reveals(&view, me, now)),
                reference::seals_due(&view, now, |s| s.rater == me)
            );
            prop_assert_eq!(
                ids(rituals::opening_seals(&view, me, now)),
                reference::seals_due(&view, now, |s| s.rater != me)
            );
            for goal in GOALS {
                prop_assert_eq!(
                    rituals::other_rated(&view, me, goal, now),
                    reference::other_rated(&view, me, goal, now)
                );
                prop_assert_eq!(
                    rituals::answered_round(&view, me, goal, now),
                    reference::answered_round(&view, me, goal, now)
                );
            }
        }
        for goal in GOALS {
            prop_assert_eq!(
                rituals::blind_round(&view, goal, now),
                reference::blind_round(&view, goal, now)
            );
        }
    }
}
