//! The couple's rituals read from a space's content: which check-in rounds are open,
//! whether a rating must be sealed, which of this person's seals are due to be revealed,
//! and the ratings and reflections that count once corrections and withdrawals apply.
//!
//! Rounds: the first sealed rating that finds no open round opens one, which ends by
//! itself after the period the rater's device sets (7 days by default) or when either
//! partner closes it. A rating answers the partner's in the round they rated in, and
//! opens their seal there; two seals made while apart, each in a round of its own, open
//! each other when the rounds were open together, and the two rounds are one complete
//! check-in of the goal (`marks`). A round where both have rated a goal is done with it:
//! a new rating of the goal is blind again, in a newer round.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::model::{Rating, Reflection, Round, Seal};
use crate::view::View;
use marks::Marks;

mod marks;

/// How long a check-in round stays open unless a partner closes it: 7 days.
pub const DEFAULT_ROUND_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// The rounds open at `now`, oldest first.
pub fn open_rounds(view: &View, now: i64) -> Vec<&Round> {
    view.rounds.iter().filter(|r| !r.is_over(now)).collect()
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
/// check-in (`current_rounds`; a round paired while apart counts with its pair, which
/// the newer of the two may have left behind).
pub fn rated_now(view: &View, goal: &str, now: i64, who: impl Fn(&str) -> bool) -> bool {
    let marks = Marks::of(view, goal);
    current_rounds(view, &marks, now)
        .iter()
        .any(|r| marks.rated_in_check_in(&r.id, &who))
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
/// round where `me` has not rated it; of several, the newest (after `me` took back
/// ratings, older rounds wait for an answer too, and the current check-in is the newest).
/// `None`: the rating is blind.
pub fn answered_round(view: &View, me: &str, goal: &str, now: i64) -> Option<String> {
    // (A hostile writer may repeat a round's id: the latest opening counts.)
    let mut open: HashMap<&str, i64> = HashMap::new();
    for r in open_rounds(view, now) {
        let at = open.entry(r.id.as_str()).or_insert(r.opened_at);
        *at = (*at).max(r.opened_at);
    }
    let is_open = |round: &str| open.contains_key(round);
    let marks = Marks::of(view, goal);
    // A seal `me` answered already (the sealer's reveal not heard of yet) is not
    // answered again: the new rating is blind, in a newer round.
    let answered_seal = waiting_seals(view)
        .into_iter()
        .filter(|s| {
            s.goal == goal
                && s.rater != me
                && is_open(&s.round)
                && !marks.paired(&s.round)
                && !marks.rated_in(&s.round, |x| x == me)
        })
        .map(|s| s.round.as_str())
        .max_by_key(|r| (open.get(r).copied(), *r));
    let answered_rating = || {
        marks
            .list
            .iter()
            .filter(|&&(w, r)| {
                w != me && is_open(r) && !marks.complete(r) && !marks.rated_in(r, |x| x == me)
            })
            .map(|&(_, r)| r)
            .max_by_key(|r| (open.get(r).copied(), *r))
    };
    answered_seal.or_else(answered_rating).map(str::to_string)
}

/// The round [`answered_round`] names, when it is last week's check-in rather than this
/// week's: `me` has rated nothing in it, and the partner's rating of `goal` there is
/// older than its round's time less a day (six days of seven; half the time of a round
/// of two days or less). Answered, the rating was made in the clear, the
/// partner saw it before rating this week, and the two stayed a week apart from then
/// on (each week's answer to the week before). Such a round is closed by the rating
/// (`Device::rate`), which is then blind in a new round that the partner's answers; a
/// round closed at the moment the new one opens was never open with it, so the two are
/// not paired (`marks`).
pub fn stale_round(view: &View, me: &str, goal: &str, now: i64) -> Option<String> {
    answered_round(view, me, goal, now).filter(|id| is_stale(view, me, goal, id, now))
}

/// [`answered_round`] unless it is [`stale_round`]: the round a rating made now answers
/// (the rounds read once).
pub fn answered_now(view: &View, me: &str, goal: &str, now: i64) -> Option<String> {
    answered_round(view, me, goal, now).filter(|id| !is_stale(view, me, goal, id, now))
}

/// Whether round `id`, which a rating of `goal` by `me` would answer, is last week's
/// check-in ([`stale_round`]).
fn is_stale(view: &View, me: &str, goal: &str, id: &str, now: i64) -> bool {
    let Some(round) = view
        .rounds
        .iter()
        .filter(|r| r.id == id)
        .max_by_key(|r| r.opened_at)
    else {
        return false;
    };
    let in_round = |round: Option<&str>| round == Some(id);
    let seals = view
        .seals
        .iter()
        .map(|s| (&s.goal, &s.rater, Some(s.round.as_str()), s.at));
    let ratings = view
        .ratings
        .iter()
        .map(|r| (&r.goal, &r.rater, r.round.as_deref(), r.at));
    let mut theirs = None;
    for (g, rater, _, at) in seals.chain(ratings).filter(|m| in_round(m.2)) {
        if rater == me {
            return false; // this person's own check-in too
        }
        if g == goal {
            theirs = theirs.max(Some(at));
        }
    }
    const DAY: i64 = 24 * 60 * 60 * 1000;
    let length = round.ends_at.saturating_sub(round.opened_at);
    let old = (length / 2).max(length.saturating_sub(DAY));
    theirs.is_some_and(|at| now.saturating_sub(at) > old)
}

/// Whether `me` has seen another person's rating of `goal` without rating it since: it
/// is in the clear in a round closed early (by `me`, or by that person, whose close
/// revealed their own rating) without `me` having rated the goal there, and `me` has
/// rated the goal neither there nor since the close. A rating `me` makes then cannot be
/// blind, so it is made in the clear, in that round (returned): sealed, it would ask the
/// partner to rate again to see an answer to a rating they gave already.
pub fn seen_by_closing(view: &View, me: &str, goal: &str) -> Option<String> {
    let marks = Marks::of(view, goal);
    let taken_back = withdrawn(view);
    // Read once, not once per closed round: years of weekly rounds (or a hostile
    // writer's thousands) would each walk every rating.
    let seen: BTreeSet<&str> = view
        .ratings
        .iter()
        .filter(|r| r.goal == goal && r.rater != me && !taken_back.contains(r.id.as_str()))
        .filter_map(|r| r.round.as_deref())
        .collect();
    let seen_in = |round: &str| seen.contains(round);
    // A rating `me` took back (`undo`) is not an answer, nor is the withdrawal itself:
    // rated again, the goal is still seen, and the rating in the clear (it was sealed,
    // and the partner had to rate again to see the answer to a rating already given).
    let standing = |id: &str| !taken_back.contains(id);
    let ratings = view
        .ratings
        .iter()
        .filter(|r| r.withdrawn != Some(true) && standing(&r.id))
        .map(|r| (&r.goal, &r.rater, r.at));
    let seals = view
        .seals
        .iter()
        .filter(|s| standing(&s.id))
        .map(|s| (&s.goal, &s.rater, s.at));
    let my_last = ratings
        .chain(seals)
        .filter(|(g, w, _)| *g == goal && *w == me)
        .map(|(_, _, at)| at)
        .max();
    let rated_since = |t: i64| my_last.is_some_and(|last| last >= t);
    // Of several, the latest closed.
    view.rounds
        .iter()
        .filter(|r| {
            r.closed_at.is_some_and(|at| {
                seen_in(&r.id) && !marks.rated_in(&r.id, |w| w == me) && !rated_since(at)
            })
        })
        .max_by_key(|r| (r.closed_at, r.id.as_str()))
        .map(|r| r.id.clone())
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

/// The ids of the ratings and seals a withdrawal took back. The reveals of one seal
/// (two devices of its rater revealed it at once) are one rating: taking back one of
/// them takes back the others too.
fn withdrawn(view: &View) -> BTreeSet<&str> {
    let mut out: BTreeSet<&str> = view
        .ratings
        .iter()
        .filter(|r| r.withdrawn == Some(true))
        .filter_map(|r| r.corrects.as_deref())
        .collect();
    let seals: BTreeSet<&str> = view
        .ratings
        .iter()
        .filter(|r| out.contains(r.id.as_str()))
        .filter_map(|r| r.reveals.as_deref())
        .collect();
    out.extend(
        view.ratings
            .iter()
            .filter(|r| r.reveals.as_deref().is_some_and(|s| seals.contains(s)))
            .map(|r| r.id.as_str()),
    );
    out
}

/// What a rating or seal id stands for when it is corrected or taken back: a reveal
/// stands for the seal it reveals (its other reveals are the same rating), anything
/// else for itself.
fn one_rating<'v>(view: &'v View) -> impl Fn(&'v str) -> &'v str {
    let seal_of: BTreeMap<&str, &str> = view
        .ratings
        .iter()
        .filter_map(|r| Some((r.id.as_str(), r.reveals.as_deref()?)))
        .collect();
    move |id| seal_of.get(id).copied().unwrap_or(id)
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
/// withdrawn replaces nothing: undoing a correction brings back what it corrected. A
/// sealed correction is withdrawn through the rating that revealed it (`undo` takes
/// back the newest rating, which is that reveal once the partner has rated).
pub fn superseded(view: &View) -> BTreeSet<&str> {
    let taken_back = withdrawn(view);
    let replaces = |id: &str, withdrawal: bool| withdrawal || !taken_back.contains(id);
    let reveal_taken_back: BTreeSet<&str> = view
        .ratings
        .iter()
        .filter(|r| taken_back.contains(r.id.as_str()))
        .filter_map(|r| r.reveals.as_deref())
        .collect();
    view.ratings
        .iter()
        .filter(|r| replaces(&r.id, r.withdrawn == Some(true)))
        .filter_map(|r| r.corrects.as_deref())
        .chain(
            view.seals
                .iter()
                .filter(|s| replaces(&s.id, false) && !reveal_taken_back.contains(s.id.as_str()))
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

/// `me`'s seals taken back (`undo`) and never revealed that another person answered
/// without knowing of the withdrawal: a clear rating of theirs in the seal's round (made
/// against the seal while it waited, when `me` has no other rating there), or their
/// reveal of a seal of the goal in a round open together with this one, made before that
/// round was over, that nothing standing explains (paired with this seal while apart).
/// They rated believing both ratings open together, so this one is revealed too (and
/// stays withdrawn): a blind check-in never shows one side only.
pub fn answered_withdrawn<'v>(view: &'v View, me: &str) -> Vec<&'v Seal> {
    let taken_back = withdrawn(view);
    let revealed: BTreeSet<&str> = view
        .ratings
        .iter()
        .filter_map(|r| r.reveals.as_deref())
        .collect();
    let mine: Vec<&Seal> = view
        .seals
        .iter()
        .filter(|s| s.rater == me && taken_back.contains(s.id.as_str()))
        .filter(|s| !revealed.contains(s.id.as_str()))
        .collect();
    if mine.is_empty() {
        return mine;
    }
    let rounds = marks::rounds_by_id(view);
    let marks = Marks::of_goals(view, &taken_back, &rounds, None);
    let seals: HashMap<&str, &Seal> = view.seals.iter().map(|s| (s.id.as_str(), s)).collect();
    // Others' standing ratings by goal, read once: a person may have many undone seals.
    let mut others: HashMap<&str, Vec<&Rating>> = HashMap::new();
    for r in view
        .ratings
        .iter()
        .filter(|r| r.rater != me && r.withdrawn != Some(true))
        .filter(|r| !taken_back.contains(r.id.as_str()))
    {
        others.entry(r.goal.as_str()).or_default().push(r);
    }
    let open_at = |round: &str, at: i64| {
        rounds
            .get(round)
            .is_some_and(|rs| rs.iter().any(|r| !r.is_over(at)))
    };
    let together = |a: &str, b: &str| {
        let (Some(a), Some(b)) = (rounds.get(a), rounds.get(b)) else {
            return false;
        };
        a.iter().any(|x| b.iter().any(|y| x.overlaps(y)))
    };
    mine.into_iter()
        .filter(|s| {
            let m = marks.get(s.goal.as_str());
            if m.is_some_and(|m| m.rated_in(&s.round, |w| w == me)) {
                return false;
            }
            // Their reveal was due to a pairing with this seal alone: nothing standing
            // (another rater in their round, a pairing) and not their round's end.
            let paired_with_this = |theirs: &Seal, at: i64| {
                theirs.round != s.round
                    && open_at(&theirs.round, at)
                    && together(&theirs.round, &s.round)
                    && m.is_none_or(|m| {
                        !m.paired(&theirs.round)
                            && !m.rated_in(&theirs.round, |w| w != theirs.rater)
                    })
            };
            others
                .get(s.goal.as_str())
                .into_iter()
                .flatten()
                .any(|r| match r.reveals.as_deref() {
                    None => r.round.as_deref() == Some(s.round.as_str()),
                    Some(theirs) => seals.get(theirs).is_some_and(|t| paired_with_this(t, r.at)),
                })
        })
        .collect()
}

/// The other people's seals whose time has come, as `me` reads the space: only their
/// rater's devices can reveal them, at their next rating or sync.
pub fn opening_seals<'v>(view: &'v View, me: &str, now: i64) -> Vec<&'v Seal> {
    seals_due(view, now, |s| s.rater != me)
}

/// The waiting seals `which` takes whose time has come. A partner may have written
/// thousands of seals: the view is read once into lookups (rounds by id, who rated each
/// goal in which round and which rounds were paired while apart), never once per seal.
fn seals_due(view: &View, now: i64, which: impl Fn(&Seal) -> bool) -> Vec<&Seal> {
    let rounds = marks::rounds_by_id(view);
    // A round this device does not know counts as over: nothing must stay sealed for
    // want of it.
    let over = |round: &str| {
        rounds
            .get(round)
            .is_none_or(|rs| rs.iter().all(|r| r.is_over(now)))
    };
    let taken_back = withdrawn(view);
    let marks = Marks::of_goals(view, &taken_back, &rounds, None);
    // Read only when a seal was made after its round's close (rare), once for them all.
    let latest = std::cell::OnceCell::new();
    waiting_seals(view)
        .into_iter()
        .filter(|s| which(s))
        .filter(|s| {
            let answered = marks.get(s.goal.as_str()).is_some_and(|m| answered(s, m));
            match sealed_after_close(s, &rounds) {
                Some(length) => {
                    let latest = latest.get_or_init(|| latest_marks(view, &taken_back));
                    answered || late_seal_due(s, length, now, latest)
                }
                None => answered || over(&s.round),
            }
        })
        .collect()
}

/// When each rater last rated or sealed each goal, by goal (not counting what was taken
/// back): a few raters a goal, so a seal looks its goal up once.
type LatestMarks<'v> = HashMap<&'v str, Vec<(&'v str, i64)>>;

fn latest_marks<'v>(view: &'v View, taken_back: &BTreeSet<&str>) -> LatestMarks<'v> {
    let ratings = view
        .ratings
        .iter()
        .filter(|r| r.withdrawn != Some(true))
        .map(|r| (r.goal.as_str(), r.rater.as_str(), r.at, r.id.as_str()));
    let seals = view
        .seals
        .iter()
        .map(|s| (s.goal.as_str(), s.rater.as_str(), s.at, s.id.as_str()));
    let mut latest: LatestMarks = HashMap::new();
    for (goal, rater, at, _) in ratings.chain(seals).filter(|m| !taken_back.contains(m.3)) {
        let raters = latest.entry(goal).or_default();
        match raters.iter_mut().find(|(w, _)| *w == rater) {
            Some((_, last)) => *last = (*last).max(at),
            None => raters.push((rater, at)),
        }
    }
    latest
}

/// For a seal dated after its round was closed (made on a device that had not heard of
/// the close), how long the round was meant to last; `None` for any other seal. Its
/// round's being over must not open it: its partner never rated against it.
fn sealed_after_close(seal: &Seal, rounds: &marks::Rounds) -> Option<i64> {
    let entries = rounds.get(seal.round.as_str())?;
    let closed = entries.iter().filter_map(|r| r.closed_at).min()?;
    (seal.at > closed).then(|| {
        entries
            .iter()
            .map(|r| r.ends_at.saturating_sub(r.opened_at))
            .max()
            .unwrap_or_default()
    })
}

/// A seal made after its round was closed opens as a round of its own would: once
/// another person has rated the goal (or sealed a rating of it) after it, or once its
/// round's length has passed since it.
fn late_seal_due(seal: &Seal, length: i64, now: i64, latest: &LatestMarks) -> bool {
    now >= seal.at.saturating_add(length)
        || latest.get(seal.goal.as_str()).is_some_and(|raters| {
            raters
                .iter()
                .any(|&(rater, at)| rater != seal.rater && at > seal.at)
        })
}

/// Whether a seal's time has come short of its round's end: someone other than its
/// rater has rated the goal in its round, or its round was paired with another rater's
/// while apart (`marks`: the two rated while apart, each opening a round, and both
/// seals open together, whichever round ends first). Its rater's devices reveal it at
/// their next rating or sync; until then its partner is told it opens then.
fn answered(seal: &Seal, marks: &Marks) -> bool {
    marks.rated_in(&seal.round, |w| w != seal.rater) || marks.paired(&seal.round)
}

/// The ratings that count: a correction replaces what it corrects, a withdrawal removes
/// it, and a seal revealed twice (by two devices of its rater) counts once. Two
/// corrections of one rating (made on two devices of its rater while apart) are one
/// correction: the later made counts, as if it had corrected the other.
pub fn effective_ratings(view: &View) -> Vec<Rating> {
    // A correction may name a seal or any reveal of it; it then replaces every reveal.
    let one = one_rating(view);
    let taken_back = withdrawn(view);
    let mut gone: BTreeSet<&str> = BTreeSet::new();
    // The correction that counts for each rating corrected: (made at, id).
    let mut latest: BTreeMap<&str, (i64, &str)> = BTreeMap::new();
    for r in &view.ratings {
        let withdrawal = r.withdrawn == Some(true);
        // A withdrawn correction replaces nothing (undo brings back what it corrected).
        if let Some(target) = r.corrects.as_deref()
            && (withdrawal || !taken_back.contains(r.id.as_str()))
        {
            gone.insert(one(target));
            // Two reveals of one sealed correction are one correction (`one`).
            let made = (r.at, one(&r.id));
            if !withdrawal {
                let kept = latest.entry(one(target)).or_insert(made);
                if made.1 != kept.1 && made > *kept {
                    gone.insert(kept.1);
                    *kept = made;
                } else if made.1 != kept.1 {
                    gone.insert(made.1);
                }
            }
        }
        if r.withdrawn == Some(true) {
            gone.insert(r.id.as_str());
        }
    }
    let mut seen_reveals = BTreeSet::new();
    view.ratings
        .iter()
        .filter(|r| !gone.contains(one(&r.id)))
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
