//! Rating under the blind rules (`duet rate`, `duet checkin`): a rating is sealed while
//! the partner has not rated the goal in the open round, given in the clear once they
//! have; this person's seals are revealed when their time comes (after each rating,
//! each sync, and when a round is closed).

use serde::Serialize;

use crate::device::{Device, DeviceError};
use crate::doc::{New, SEALED_MESSAGE};
use crate::ids::new_id;
use crate::model::{Rating, Round, Seal};
use crate::rituals::{
    DEFAULT_ROUND_MS, answered_round, answered_withdrawn, blind_round, due_reveals, open_rounds,
    seen_by_closing, stale_round, waiting_seals,
};
use crate::seal::{Binding, Sealed, commitment, new_salt, open_box, seal_box};
use crate::store::SpaceKind;
use crate::vocab::Level;

/// What a rating did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rated {
    /// The id of the rating, or of the seal when it was sealed.
    pub id: String,
    /// The goal id.
    pub goal: String,
    /// The goal's title (a confirmation names it: a query may match another goal than
    /// meant, and an id alone would not show it).
    pub title: String,
    /// Whether it was sealed (the partner sees only that it exists until they rate).
    pub sealed: bool,
    /// How many of this person's sealed ratings were revealed with it.
    pub revealed: usize,
    /// The level given, -2..=2.
    pub level: i8,
    /// For a sealed rating, when its check-in round ends (ms): it is revealed then at
    /// the latest.
    pub round_ends_at: Option<i64>,
    /// This rating opened that round (a check-in's `--period` applies only then).
    pub opened_round: bool,
    /// For a correction, when the rating it replaces was given (ms): the newest this
    /// device holds, which may be older than one made on another device not synced yet.
    pub corrected_at: Option<i64>,
}

/// What closing the open rounds did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Closed {
    /// How many open rounds were closed.
    pub rounds: usize,
    /// How many of this person's sealed ratings were revealed.
    pub revealed: usize,
    /// How many of this person's ratings stay sealed: made after a close this device had
    /// not heard of (docs/data-model.md, "Revealing"), each opens once another person
    /// rates its goal after it, or once its round's length has passed.
    pub still_sealed: usize,
    /// How many sealed ratings of others the rounds closed held, as far as this device
    /// knows: they open when their raters' devices next sync.
    pub others_sealed: usize,
}

/// One rating to make: goal query, level, note; `corrects` names the rating replaced.
struct RatingInput<'a> {
    goal: &'a str,
    level: Level,
    note: Option<&'a str>,
    amend: bool,
    /// How long a round opened by this rating stays open (ms).
    period: i64,
    /// The time of a check-in's ratings, one for all (the progress series reads the
    /// last point of a time as where the check-in left the score); `None`: now.
    at: Option<i64>,
    /// With `amend`, the rating the person saw as their latest: another one is refused.
    shown: Option<&'a str>,
}

/// A rating's note, none when blank. Its length is checked here, not only by the model:
/// a sealed note is boxed unchecked, and one too long would be refused at its reveal,
/// failing every sync after.
fn checked_note(note: Option<&str>) -> Result<Option<String>, DeviceError> {
    let Some(note) = note.filter(|n| !n.trim().is_empty()) else {
        return Ok(None);
    };
    crate::model::valid::length(note, crate::model::limits::MAX_TEXT_CHARS)
        .map_err(crate::doc::DocError::from)?;
    Ok(Some(note.to_string()))
}

impl Device {
    /// Rates a goal for this person under the blind rules.
    pub fn rate(
        &mut self,
        goal: &str,
        level: Level,
        note: Option<&str>,
    ) -> Result<Rated, DeviceError> {
        self.rate_with(RatingInput {
            goal,
            level,
            note,
            amend: false,
            period: DEFAULT_ROUND_MS,
            at: None,
            shown: None,
        })
    }

    /// Corrects this person's latest rating of a goal: the new one replaces it in
    /// progress, report and export; both stay in the history.
    pub fn amend_rating(
        &mut self,
        goal: &str,
        level: Level,
        note: Option<&str>,
    ) -> Result<Rated, DeviceError> {
        self.amend_shown_rating(goal, level, note, None)
    }

    /// [`Device::amend_rating`] of the rating a page showed as the latest (`shown`, from
    /// [`Device::latest_own_rating`]): refused when another is the latest by now.
    pub fn amend_shown_rating(
        &mut self,
        goal: &str,
        level: Level,
        note: Option<&str>,
        shown: Option<&str>,
    ) -> Result<Rated, DeviceError> {
        self.rate_with(RatingInput {
            goal,
            level,
            note,
            amend: true,
            period: DEFAULT_ROUND_MS,
            at: None,
            shown,
        })
    }

    /// The id of this person's latest rating of `goal` that counts (or is sealed): what a
    /// correction corrects.
    pub fn latest_own_rating(&mut self, goal: &str) -> Result<Option<String>, DeviceError> {
        let (gid, _, _) = self.resolve_goal_made(goal)?;
        let view = self.ritual_view(Some(&gid))?;
        Ok(super::corrections::latest_own(
            &view,
            self.me.person_id.as_str(),
            &gid,
        ))
    }

    /// Rates several goals, one after the other (a check-in); a round it opens stays
    /// open for `period` ms (default 7 days) unless a partner closes it.
    pub fn checkin(
        &mut self,
        ratings: &[(String, Level, Option<String>)],
        period: Option<i64>,
    ) -> Result<Vec<Rated>, DeviceError> {
        // Check every answer first: a typo, a goal dated ahead of this clock or a note
        // too long rates nothing, as the refusal says (not the goals before it).
        self.ensure_clock_agrees()?;
        let mut named = std::collections::BTreeSet::new();
        for (goal, _, note) in ratings {
            let (gid, title, made) = self.resolve_goal_made(goal)?;
            if !named.insert(gid) {
                return Err(DeviceError::RatedTwice(title.as_str().to_string()));
            }
            self.ensure_after_goal(made)?;
            checked_note(note.as_deref())?;
        }
        let at = self.now();
        ratings
            .iter()
            .map(|(goal, level, note)| {
                self.rate_with(RatingInput {
                    goal,
                    level: *level,
                    note: note.as_deref(),
                    amend: false,
                    period: period.unwrap_or(DEFAULT_ROUND_MS),
                    at: Some(at),
                    shown: None,
                })
            })
            .collect()
    }

    fn rate_with(&mut self, input: RatingInput<'_>) -> Result<Rated, DeviceError> {
        // From reading the rounds and seals to writing: another process rating at the
        // same time would otherwise decide from the same state (two rounds opened).
        let _lock = self.store.write_lock()?;
        self.ensure_clock_agrees()?;
        let (gid, title, made) = self.resolve_goal_made(input.goal)?;
        let now = input.at.unwrap_or_else(|| self.now());
        self.ensure_after_goal(made)?;
        let me = self.me.person_id.to_string();
        let (view, corrects) = self.view_to_rate(&gid, title.as_str(), input.amend, now)?;
        if let Some(shown) = input.shown
            && corrects.as_deref() != Some(shown)
        {
            return Err(DeviceError::CorrectedMeanwhile(title.as_str().to_string()));
        }
        let note = checked_note(input.note)?;
        // A correction of a sealed rating stays sealed, in the same round; one of a
        // revealed rating is made in the clear (the first is already seen).
        let corrected_seal = corrects
            .as_deref()
            .and_then(|c| view.seals.iter().find(|s| s.id == c));
        let corrected_at = corrects.as_deref().and_then(|c| {
            let rating = view.ratings.iter().find(|r| r.id == c).map(|r| r.at);
            rating.or(corrected_seal.map(|s| s.at))
        });
        // Or not blind at all: the partner's rating was seen when this person closed its
        // round; the rating answers it there.
        let answered =
            answered_round(&view, &me, &gid, now).or_else(|| seen_by_closing(&view, &me, &gid));
        let in_clear = match (&corrects, corrected_seal) {
            (Some(_), Some(_)) => false,
            (Some(_), None) => true,
            // Blind against no one: the partner left (or was removed).
            (None, _) => answered.is_some() || self.partner_gone()?,
        };
        // A correction stays in the round of what it corrects: made in the partner's
        // newer round, a correction of last week's rating would count as rating this
        // week's and open the partner's new blind rating.
        let round = match (corrected_seal, &corrects) {
            (Some(s), _) => Some(s.round.clone()),
            (None, Some(c)) => view
                .ratings
                .iter()
                .find(|r| r.id == *c)
                .and_then(|r| r.round.clone()),
            (None, None) => answered.or_else(|| blind_round(&view, &gid, now)),
        };
        let (id, round_end) = if in_clear {
            let rating = Rating {
                id: new_id(),
                goal: gid.clone(),
                rater: me,
                at: now,
                level: input.level,
                note,
                round,
                reveals: None,
                salt: None,
                corrects,
                withdrawn: None,
            };
            self.put_new(SpaceKind::Shared, &[New::Rating(&rating)], "rate", now)?;
            (rating.id, None)
        } else {
            let (id, ends) = self.seal_in_round(&view, &gid, round, &input, corrects, note, now)?;
            (id, Some(ends))
        };
        let revealed = self.reveal_due()?;
        Ok(Rated {
            id,
            goal: gid,
            title,
            sealed: round_end.is_some(),
            revealed,
            level: input.level.value(),
            round_ends_at: round_end.map(|(at, _)| at),
            opened_round: round_end.is_some_and(|(_, opened)| opened),
            corrected_at,
        })
    }

    /// The view a rating of goal `gid` decides from, and the rating it corrects (with
    /// `amend`). Last week's check-in, still open, is closed first, so that the rating is
    /// blind in a new round rather than an answer in the clear ([`stale_round`]).
    fn view_to_rate(
        &mut self,
        gid: &str,
        title: &str,
        amend: bool,
        now: i64,
    ) -> Result<(crate::view::View, Option<String>), DeviceError> {
        let me = self.me.person_id.to_string();
        let view = self.ritual_view(amend.then_some(gid))?;
        let corrects = amend
            .then(|| super::corrections::latest_own(&view, &me, gid))
            .map(|own| own.ok_or_else(|| DeviceError::NothingToAmend(title.to_string())))
            .transpose()?;
        // (A correction stays in the round of what it corrects: no round is closed.)
        let stale = corrects
            .is_none()
            .then(|| stale_round(&view, &me, gid, now))
            .flatten();
        let view = match stale {
            Some(stale) => self.close_stale(stale, now)?,
            None => view,
        };
        Ok((view, corrects))
    }

    /// Closes `round` at `now` (a partner's check-in of last week, [`stale_round`]) and
    /// reads the view again.
    fn close_stale(&mut self, round: String, now: i64) -> Result<crate::view::View, DeviceError> {
        self.edit(SpaceKind::Shared, |doc, me| {
            let c = doc.close_rounds(std::slice::from_ref(&round), &me.person_id, now)?;
            Ok(((), c.into_iter().collect()))
        })?;
        self.ritual_view(None)
    }

    /// Seals a rating in `round`, or in a new round of `input.period` when none; returns
    /// the seal's id, when its round ends, and whether this rating opened it.
    #[allow(clippy::too_many_arguments)]
    fn seal_in_round(
        &mut self,
        view: &crate::view::View,
        gid: &str,
        round: Option<String>,
        input: &RatingInput<'_>,
        corrects: Option<String>,
        note: Option<String>,
        now: i64,
    ) -> Result<(String, (i64, bool)), DeviceError> {
        let (round, new_round) = match round {
            Some(r) => (r, None),
            None => {
                let r = Round {
                    id: new_id(),
                    opened_by: self.me.person_id.to_string(),
                    opened_at: now,
                    ends_at: now.saturating_add(input.period),
                    closed_by: None,
                    closed_at: None,
                };
                (r.id.clone(), Some(r))
            }
        };
        let ends_at = match &new_round {
            Some(r) => r.ends_at,
            None => view
                .rounds
                .iter()
                .find(|r| r.id == round)
                .map_or(now, |r| r.ends_at),
        };
        let seal = self.make_seal(gid, &round, corrects, input.level, note, now)?;
        let entities = New::sealed(&seal, new_round.as_ref());
        self.put_new(SpaceKind::Shared, &entities, SEALED_MESSAGE, now)?;
        Ok((seal.id, (ends_at, new_round.is_some())))
    }

    /// A seal of this person's rating: the commitment, and the box only their own
    /// devices can open.
    fn make_seal(
        &mut self,
        goal: &str,
        round: &str,
        corrects: Option<String>,
        level: Level,
        note: Option<String>,
        now: i64,
    ) -> Result<Seal, DeviceError> {
        let key = self.store.space(SpaceKind::Personal)?.key;
        let id = new_id();
        let me = self.me.person_id.to_string();
        let salt = new_salt();
        let level = level.get();
        let binding = Binding {
            seal: &id,
            goal,
            rater: &me,
            round,
            corrects: corrects.as_deref(),
            at: now,
        };
        let commitment = commitment(binding, level, note.as_deref(), &salt);
        let sealed = seal_box(&key, &id, &Sealed { level, note, salt });
        Ok(Seal {
            id,
            goal: goal.to_string(),
            rater: me,
            at: now,
            round: round.to_string(),
            corrects,
            commitment,
            sealed,
        })
    }

    /// Adds this person's own ratings still sealed to `view`, opened: they are theirs to
    /// see (the partner's stay commitments). `waiting_seals` still lists them.
    pub(crate) fn open_own_seals(
        &mut self,
        view: &mut crate::readmodel::View,
    ) -> Result<(), DeviceError> {
        let me = self.me.person_id.to_string();
        let mine: Vec<Seal> = crate::rituals::waiting_seals(view)
            .into_iter()
            .filter(|s| s.rater == me)
            .cloned()
            .collect();
        if mine.is_empty() {
            return Ok(());
        }
        let key = self.store.space(SpaceKind::Personal)?.key;
        view.ratings
            .extend(mine.into_iter().filter_map(|s| opened(&key, &me, s, false)));
        view.ratings
            .sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        Ok(())
    }

    /// Reveals this person's sealed ratings whose time has come: their round is over,
    /// the partner has rated the same goal, or the partner is gone (no one is left to
    /// rate blind against). Returns how many.
    pub fn reveal_due(&mut self) -> Result<usize, DeviceError> {
        self.reveal(false)
    }

    /// Reveals this person's sealed ratings that are due, or all of them (before
    /// leaving: after the leave nothing of theirs is accepted, and the partner would
    /// otherwise be told "rate to see it" of a rating that never opens).
    pub(crate) fn reveal(&mut self, all: bool) -> Result<usize, DeviceError> {
        let _lock = self.store.write_lock()?;
        self.reveal_locked(all)
    }

    /// [`Device::reveal`] under the write lock its caller holds.
    pub(crate) fn reveal_locked(&mut self, all: bool) -> Result<usize, DeviceError> {
        // Whether a seal's time has come is read on this device's clock: one the last
        // sync found days ahead would open every seal of a round not over yet.
        if !all && self.ensure_clock_agrees().is_err() {
            return Ok(0);
        }
        let now = self.now();
        let me = self.me.person_id.to_string();
        let view = self.ritual_view(None)?;
        let mine: Vec<Seal> = waiting_seals(&view)
            .into_iter()
            .filter(|s| s.rater == me)
            .cloned()
            .collect();
        let due: Vec<Seal> = if all || (!mine.is_empty() && self.partner_gone()?) {
            mine
        } else {
            due_reveals(&view, &me, now).into_iter().cloned().collect()
        };
        let answered: Vec<Seal> = answered_withdrawn(&view, &me)
            .into_iter()
            .cloned()
            .collect();
        if due.is_empty() && answered.is_empty() {
            return Ok(0);
        }
        let key = self.store.space(SpaceKind::Personal)?.key;
        let mut again = 0;
        // Withdrawn seals the partner answered unknowing: revealed, then withdrawn again
        // (the history ends on the withdrawal, as the person meant).
        for r in answered
            .into_iter()
            .filter_map(|s| opened(&key, &me, s, true))
        {
            self.put_new(SpaceKind::Shared, &[New::Rating(&r)], "reveal", now)?;
            self.withdraw_rating(&r.id, &r.goal, Some(r.level))?;
            again += 1;
        }
        // A box this device cannot open (damaged, or sealed under a key it lacks) stays
        // sealed; another device of this person may reveal it.
        let ratings: Vec<Rating> = due
            .into_iter()
            .filter_map(|s| opened(&key, &me, s, true))
            .collect();
        // One change per reveal (the partner's sync summary counts them), each on the
        // stored tip when no document is held, like any new rating; the progress summary
        // is computed once after them, not at each.
        crate::readmodel::dropped_meanwhile(|| {
            for r in &ratings {
                self.put_new(SpaceKind::Shared, &[New::Rating(r)], "reveal", now)?;
            }
            Ok::<_, DeviceError>(())
        })?;
        Ok(ratings.len() + again)
    }

    /// After a sync of the shared space: what arrived may be the partner's rating of a
    /// goal this person rated blind, or a closed round. Reveals what is due and sends it
    /// in the same sync.
    pub(crate) fn reveal_after_sync(
        &mut self,
        transport: &dyn crate::sync::Transport,
        report: &mut crate::sync::SyncReport,
    ) -> Result<(), DeviceError> {
        if self.reveal_due()? == 0 {
            return Ok(());
        }
        let rec = self.store.space(SpaceKind::Shared)?;
        let again = self.sync_one(&rec, transport)?;
        report.pushed_events += again.pushed_events;
        report.pushed_changes += again.pushed_changes;
        report.cursor = again.cursor;
        Ok(())
    }

    /// Closes every open check-in round now, and reveals this person's sealed ratings
    /// in them; the partner's device reveals theirs when it next syncs.
    pub fn close_rounds(&mut self) -> Result<Closed, DeviceError> {
        let _lock = self.store.write_lock()?;
        self.ensure_clock_agrees()?;
        let now = self.now();
        let view = self.ritual_view(None)?;
        let open: Vec<String> = open_rounds(&view, now)
            .into_iter()
            .map(|r| r.id.clone())
            .collect();
        let me = self.me.person_id.to_string();
        let others_sealed = waiting_seals(&view)
            .into_iter()
            .filter(|s| s.rater != me && open.contains(&s.round))
            .count();
        if !open.is_empty() {
            self.edit(SpaceKind::Shared, |doc, me| {
                let c = doc.close_rounds(&open, &me.person_id, now)?;
                Ok(((), c.into_iter().collect()))
            })?;
        }
        let revealed = self.reveal_due()?;
        let view = self.ritual_view(None)?;
        let still_sealed = waiting_seals(&view)
            .into_iter()
            .filter(|s| s.rater == me)
            .count();
        Ok(Closed {
            rounds: open.len(),
            revealed,
            still_sealed,
            others_sealed,
        })
    }
}

/// One of this person's seals opened with their personal key: the rating it holds, as a
/// reveal (a new rating naming the seal, with the salt) or, for this person's own views,
/// under the seal's id. `None` when this device cannot open it.
pub(crate) fn opened(
    key: &crate::crypto::SpaceKey,
    me: &str,
    s: Seal,
    reveal: bool,
) -> Option<Rating> {
    let content = open_box(key, &s.id, &s.sealed).ok()?;
    let level = Level::try_from(content.level).ok()?;
    let (id, reveals, salt) = if reveal {
        (new_id(), Some(s.id), Some(content.salt))
    } else {
        (s.id, None, None)
    };
    Some(Rating {
        id,
        goal: s.goal,
        rater: me.to_string(),
        at: s.at,
        level,
        note: content.note,
        round: Some(s.round),
        reveals,
        salt,
        corrects: s.corrects,
        withdrawn: None,
    })
}
