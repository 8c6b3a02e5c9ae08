//! Correcting a mistake: undoing this person's last rating, reflection (or edit of one)
//! or step completion, and reopening steps. A correction never erases: the history keeps what
//! was corrected and says so.

use serde::Serialize;

use crate::device::{Device, DeviceError};
use crate::doc::New;
use crate::ids::new_id;
use crate::model::Rating;
use crate::readmodel::View;
use crate::rituals::{effective_ratings, waiting_seals};
use crate::store::SpaceKind;
use crate::vocab::Level;

/// What [`Device::undo_preview`] finds to take back.
#[derive(Debug, Clone)]
pub enum UndoPreview {
    /// This person made nothing that can be taken back.
    Nothing,
    /// Their latest act withdrew a reflection: a withdrawal is not taken back, and
    /// nothing older is in its place (as [`Device::undo`] refuses, saying so).
    AfterWithdrawal,
    /// What would be taken back, and the id [`Device::undo_expecting`] wants.
    Would(Undone, String),
}

/// What `undo` undid.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "undid", rename_all = "snake_case")]
pub enum Undone {
    /// A rating (or sealed rating) was withdrawn.
    Rating {
        /// The rating or seal withdrawn.
        id: String,
        /// Its goal.
        goal: String,
        /// The goal's title (so that the person sees which rating went).
        title: String,
        /// The level withdrawn (none for a sealed one this device cannot open).
        level: Option<Level>,
        /// It was a blind rating still sealed.
        sealed: bool,
        /// A sealed one the partner had already rated against (as far as this device
        /// knows): it is shown to them, withdrawn, so that the check-in stays two-sided.
        answered: bool,
        /// It was a correction: the level of the rating it corrected, which counts
        /// again (none when that one is sealed, or it was not a correction).
        restored: Option<Level>,
    },
    /// A reflection was withdrawn, or (`edit`) its latest edit taken back.
    Reflection {
        /// Its id.
        id: String,
        /// Whether it was a private one (in the personal space).
        private: bool,
        /// What it said (so that the person sees which one went, or which was edited).
        text: String,
        /// The latest act was an edit of it: `undo` takes the edit back (the words it had
        /// before it are written again) and the reflection stays.
        edit: bool,
        /// For an edit taken back, the words it has again (none in a preview).
        restored: Option<String>,
        /// It is a reply to another reflection.
        reply: bool,
    },
    /// A step completion was undone: the step is open again.
    Step {
        /// The goal.
        goal: String,
        /// The step.
        step: String,
        /// The goal's title.
        title: String,
        /// What the step says.
        text: String,
        /// Who else had marked it done (while apart, both did): reopened, it is open
        /// for them too.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        also_done_by: Vec<String>,
    },
}

/// This person's latest rating of `goal` that counts (a rating, or a seal still
/// waiting), if any: what `rate --amend` corrects.
pub(crate) fn latest_own(view: &View, me: &str, goal: &str) -> Option<String> {
    latest_own_rating(view, me, Some(goal), |at| (true, at)).map(|(id, _, _)| id)
}

/// How far after this device's "now" an act may be dated and still be taken for the
/// latest by `undo`: later is a clock that was wrong when it was made, and undoing it
/// would take back something other than what was just done.
const AHEAD_OF_NOW_MS: i64 = 10 * 60_000;

/// How recent an act is for `undo` (and for a reflection named `last`): acts dated well
/// after now (by a clock gone wrong) come before every other, then by time.
pub(crate) fn undo_rank(at: i64, now: i64) -> (bool, i64) {
    (at <= now.saturating_add(AHEAD_OF_NOW_MS), at)
}

/// (id, goal, time) of this person's latest rating that counts, of one goal or any.
fn latest_own_rating(
    view: &View,
    me: &str,
    goal: Option<&str>,
    rank: impl Fn(i64) -> (bool, i64),
) -> Option<(String, String, i64)> {
    let mine = |g: &str, rater: &str| rater == me && goal.is_none_or(|want| want == g);
    let ratings = effective_ratings(view);
    let rated = ratings
        .iter()
        .filter(|r| mine(&r.goal, &r.rater))
        .map(|r| (r.id.clone(), r.goal.clone(), r.at));
    let sealed = waiting_seals(view)
        .into_iter()
        .filter(|s| mine(&s.goal, &s.rater))
        .map(|s| (s.id.clone(), s.goal.clone(), s.at));
    rated
        .chain(sealed)
        .max_by_key(|(id, _, at)| (rank(*at), id.clone()))
}

/// A goal's title as the view holds it (empty for a goal it does not hold).
fn goal_title(view: &View, goal: &str) -> String {
    view.goals
        .iter()
        .find(|g| g.id == goal)
        .map(|g| g.title.as_str().to_string())
        .unwrap_or_default()
}

/// The act `undo` takes back.
enum Latest {
    /// A rating or a seal: its id and goal.
    Rating { id: String, goal: String },
    /// A reflection, whether it is private, and the change of its edit when the act is
    /// an edit of it.
    Reflection {
        r: Box<crate::model::Reflection>,
        private: bool,
        edit: Option<automerge::ChangeHash>,
        /// The act was its withdrawal, asked for: nothing `undo` can take back.
        withdrawn: bool,
    },
    /// A step this person completed.
    Step { goal: String, step: String },
}

impl Latest {
    /// The act's id: the rating's, the reflection's or the step's.
    fn id(&self) -> &str {
        match self {
            Latest::Rating { id, .. } => id,
            Latest::Reflection { r, .. } => &r.id,
            Latest::Step { step, .. } => step,
        }
    }
}

/// This person's shared reflections as acts `undo` may meet: withdrawn ones too, whose
/// withdrawal, when it is the latest act, stops `undo`.
fn reflection_acts(view: &View, me: &str) -> Vec<(String, Latest, i64)> {
    view.reflections
        .iter()
        .filter(|r| r.author == me)
        .map(|r| {
            let latest = Latest::Reflection {
                r: Box::new(r.clone()),
                private: false,
                edit: None,
                withdrawn: r.withdrawn_at.is_some(),
            };
            (r.id.clone(), latest, r.at)
        })
        .collect()
}

/// What `undo` says when this person's latest act withdrew reflection `id`: a withdrawal
/// cannot be taken back, and taking back an older act instead would withdraw or change
/// something the person is not looking at.
fn withdrawn_last(id: &str) -> DeviceError {
    DeviceError::ReflectionThen(
        format!(
            "your latest act withdrew your reflection {}: a withdrawal cannot be taken back, \
             and nothing older is taken back in its place; to withdraw or edit another \
             reflection, name it",
            crate::ids::short(id)
        ),
        crate::advice::NextStep::ListReflections,
    )
}

/// A step completion undone (or to undo): its goal's title and its text.
fn step_undone(view: &View, goal: String, step: String) -> Undone {
    let text = view
        .goals
        .iter()
        .find(|g| g.id == goal)
        .and_then(|g| g.steps.get(&step))
        .map(|s| s.text.as_str().to_string())
        .unwrap_or_default();
    Undone::Step {
        title: goal_title(view, &goal),
        goal,
        step,
        text,
        also_done_by: Vec::new(),
    }
}

impl Device {
    /// Undoes this person's latest rating, reflection (shared or private) or step
    /// completion, whichever was made last (see [`Device::latest_act`]): a rating is
    /// withdrawn, a reflection withdrawn, a step reopened.
    pub fn undo(&mut self) -> Result<Undone, DeviceError> {
        self.undo_expecting(None)
    }

    /// [`Device::undo`], only if the latest act is still the one with id `expected` (a
    /// rating's, a reflection's or a step's, as [`Device::undo_preview`] gave it): a page
    /// left open, or a second window, would otherwise undo an act its person never saw
    /// named there ([`DeviceError::UndoMoved`]).
    pub fn undo_expecting(&mut self, expected: Option<&str>) -> Result<Undone, DeviceError> {
        // From choosing the latest act to withdrawing it: two undos at once (a second
        // process, the app) would otherwise both withdraw the same one.
        let _lock = self.store.write_lock()?;
        // "Latest" is read by the times acts were dated: on a clock found wrong, it
        // would pick another act than the one just made.
        self.ensure_clock_agrees()?;
        let view = self.raw_view(SpaceKind::Shared)?;
        let latest = self.latest_act(&view)?.ok_or(DeviceError::NothingToUndo)?;
        if expected.is_some_and(|e| e != latest.id()) {
            return Err(DeviceError::UndoMoved);
        }
        match latest {
            Latest::Rating { id, goal } => self.undo_rating(&view, id, goal),
            Latest::Reflection { r, withdrawn, .. } if withdrawn => Err(withdrawn_last(&r.id)),
            Latest::Reflection {
                r, private, edit, ..
            } => {
                let restored = match edit {
                    Some(change) => Some(self.undo_reflection_edit(&r.id, private, &change)?),
                    None => {
                        self.withdraw_reflection_by(&r.id, private, true)?;
                        None
                    }
                };
                Ok(Undone::Reflection {
                    reply: r.reply_to.is_some(),
                    id: r.id,
                    private,
                    text: r.text.as_str().to_string(),
                    edit: edit.is_some(),
                    restored,
                })
            }
            Latest::Step { goal, step } => {
                let mut undone = step_undone(&view, goal, step);
                if let Undone::Step {
                    goal,
                    step,
                    also_done_by,
                    ..
                } = &mut undone
                {
                    *also_done_by = self.others_who_completed(goal, step)?;
                    self.reopen_step(goal, step)?;
                }
                Ok(undone)
            }
        }
    }

    /// What [`Device::undo`] would take back now, without taking it back (a rating's
    /// `answered` is not worked out here), and the id [`Device::undo_expecting`] wants.
    pub fn undo_preview(&mut self) -> Result<UndoPreview, DeviceError> {
        let view = self.raw_view(SpaceKind::Shared)?;
        let Some(latest) = self.latest_act(&view)? else {
            return Ok(UndoPreview::Nothing);
        };
        let id = latest.id().to_string();
        let undone = match latest {
            Latest::Rating { id, goal } => self.rating_undone(&view, id, goal),
            Latest::Reflection {
                withdrawn: true, ..
            } => return Ok(UndoPreview::AfterWithdrawal),
            Latest::Reflection {
                r, private, edit, ..
            } => Undone::Reflection {
                id: r.id,
                private,
                text: r.text.as_str().to_string(),
                edit: edit.is_some(),
                restored: None,
                reply: r.reply_to.is_some(),
            },
            Latest::Step { goal, step } => step_undone(&view, goal, step),
        };
        Ok(UndoPreview::Would(undone, id))
    }

    /// This person's latest rating, reflection or step completion (see [`Device::undo`]):
    /// in each space, the one made last by the history's causal order (by the times acts
    /// carry, a clock set back an hour after a rating made `undo` take the one before
    /// it); the two spaces' latest by the order this device stored their changes when it
    /// made both (the order it made them), else by the times they carry (a sync stores
    /// the shared space's changes first: a private reflection synced from another device
    /// would come after a rating made here before it), one dated well after now
    /// counting as the oldest.
    fn latest_act(&mut self, view: &View) -> Result<Option<Latest>, DeviceError> {
        let me = self.me.person_id.to_string();
        let now = self.now();
        let shared = self.latest_shared_act(view, &me)?;
        let private = self.raw_view(SpaceKind::Personal)?;
        // Withdrawn ones too: their withdrawal, when it is the latest act, stops `undo`.
        let mut private: Vec<_> = private
            .reflections
            .into_iter()
            .filter(|r| r.author == me)
            .collect();
        let last = self.last_made(SpaceKind::Personal, private.iter().map(|r| r.id.as_str()))?;
        let found = private
            .iter()
            .position(|r| last.as_ref().is_some_and(|l| l.item == r.id));
        let private = match (found, last) {
            (Some(i), Some(l)) => Some((private.swap_remove(i), l.row, l.edit)),
            _ => private
                .into_iter()
                .filter(|r| r.withdrawn_at.is_none())
                .max_by_key(|r| (undo_rank(r.at, now), r.id.clone()))
                .map(|r| (r, None, None)),
        };
        // A private reflection written last is what the person means to take back, not
        // an older shared act the partner may have answered.
        let private_later = match (&shared, &private) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some((_, _, Some(shared))), Some((_, Some(private), _))) => private > shared,
            (Some((_, at, _)), Some((r, _, _))) => {
                (undo_rank(r.at, now), true) > (undo_rank(*at, now), false)
            }
        };
        Ok(match (private_later, private) {
            (true, Some((r, _, edit))) => Some(Latest::Reflection {
                withdrawn: r.withdrawn_at.is_some(),
                r: Box::new(r),
                private: true,
                edit,
            }),
            _ => shared.map(|(latest, _, _)| latest),
        })
    }

    /// Which of `items` of the space was made last, with its change's row in the store
    /// (see [`crate::readmodel::last_made`]).
    fn last_made<'a>(
        &mut self,
        kind: SpaceKind,
        items: impl Iterator<Item = &'a str>,
    ) -> Result<Option<crate::readmodel::LastMade>, DeviceError> {
        let items: std::collections::HashSet<&str> = items.collect();
        if items.is_empty() {
            return Ok(None);
        }
        let rec = self.store.space(kind)?;
        Ok(self.store.last_made(&rec.id, &self.me, &items)?)
    }

    /// The shared act this person made last, with the time it carries and its change's
    /// row in the store.
    fn latest_shared_act(
        &mut self,
        view: &View,
        me: &str,
    ) -> Result<Option<(Latest, i64, Option<i64>)>, DeviceError> {
        // By the id its history event has: a rating that reveals a seal was written by
        // a sync (or a close), and the act is the sealing.
        let mut acts: Vec<(String, Latest, i64)> = Vec::new();
        for r in effective_ratings(view)
            .into_iter()
            .filter(|r| r.rater == me)
        {
            let made = r.reveals.clone().unwrap_or_else(|| r.id.clone());
            acts.push((
                made,
                Latest::Rating {
                    id: r.id,
                    goal: r.goal,
                },
                r.at,
            ));
        }
        for s in waiting_seals(view).into_iter().filter(|s| s.rater == me) {
            let (id, goal) = (s.id.clone(), s.goal.clone());
            acts.push((s.id.clone(), Latest::Rating { id, goal }, s.at));
        }
        acts.extend(reflection_acts(view, me));
        for g in &view.goals {
            for s in g.steps.values() {
                if let (Some(at), Some(who)) = (s.done_at, s.done_by.as_deref())
                    && who == me
                {
                    let (goal, step) = (g.id.clone(), s.id.clone());
                    acts.push((s.id.clone(), Latest::Step { goal, step }, at));
                }
            }
        }
        let last = self.last_made(SpaceKind::Shared, acts.iter().map(|(m, _, _)| m.as_str()))?;
        // None in the history (not expected): by the times they carry, as before.
        let now = self.now();
        let found = acts
            .iter()
            .position(|(made, _, _)| last.as_ref().is_some_and(|l| l.item == *made));
        Ok(match (found, last) {
            (Some(i), Some(l)) => {
                let (_, mut latest, at) = acts.swap_remove(i);
                // (Whether it was withdrawn is the view's: a withdrawal `undo` made hides
                // the whole reflection from `last_made`, so one found withdrawn was
                // withdrawn as asked.)
                if let Latest::Reflection { edit, .. } = &mut latest {
                    *edit = l.edit;
                }
                Some((latest, at, l.row))
            }
            _ => acts
                .into_iter()
                .filter(|(_, latest, _)| {
                    !matches!(
                        latest,
                        Latest::Reflection {
                            withdrawn: true,
                            ..
                        }
                    )
                })
                .max_by_key(|(made, _, at)| (undo_rank(*at, now), made.clone()))
                .map(|(_, latest, at)| (latest, at, None)),
        })
    }

    /// Takes back the edit `change` of one of this person's reflections: the words it
    /// had just before are written again (an edit of its own: the history keeps both);
    /// returns them.
    fn undo_reflection_edit(
        &mut self,
        id: &str,
        private: bool,
        change: &automerge::ChangeHash,
    ) -> Result<String, DeviceError> {
        let kind = if private {
            SpaceKind::Personal
        } else {
            SpaceKind::Shared
        };
        let now = self.now();
        let restored = self.edit(kind, |doc, _| {
            Ok(match doc.undo_reflection_edit(id, change, now)? {
                Some((before, c)) => (Some(before), c.into_iter().collect()),
                None => (None, Vec::new()),
            })
        })?;
        restored.ok_or_else(|| {
            DeviceError::Reflection(format!(
                "the words reflection {} had before its latest edit are not on this device, so \
                 the edit cannot be taken back; edit it again instead",
                crate::ids::short(id)
            ))
        })
    }

    /// Withdraws one of this person's ratings or seals (`undo`'s choice, in `view`).
    fn undo_rating(
        &mut self,
        view: &View,
        id: String,
        goal: String,
    ) -> Result<Undone, DeviceError> {
        let me = self.me.person_id.to_string();
        let rated = view.ratings.iter().find(|r| r.id == id).map(|r| r.level);
        self.withdraw_rating(&id, &goal, rated)?;
        // A seal the partner already rated against is shown to them, withdrawn.
        let answered = rated.is_none() && {
            let after = self.raw_view(SpaceKind::Shared)?;
            crate::rituals::answered_withdrawn(&after, &me)
                .iter()
                .any(|s| s.id == id)
        };
        // Whatever is due now opens here, at once: a seal the partner answered unknowing,
        // and the rating a withdrawn correction brings back when the partner has rated
        // (else this device would call it sealed until its next sync).
        self.reveal_locked(false)?;
        let restored = self.restored_by_undo(view, &id)?;
        let mut undone = self.rating_undone(view, id, goal);
        if let Undone::Rating {
            answered: a,
            restored: r,
            ..
        } = &mut undone
        {
            (*a, *r) = (answered, restored);
        }
        Ok(undone)
    }

    /// The level that counts again once the rating or seal `id` of `view` is withdrawn:
    /// that of the one it corrected (opened here, if sealed), if it was a correction.
    fn restored_by_undo(&mut self, view: &View, id: &str) -> Result<Option<Level>, DeviceError> {
        // A revealed correction: the rating that opened it names the seal, which names
        // what it corrected.
        let rating = view.ratings.iter().find(|r| r.id == id);
        let seal = rating.and_then(|r| r.reveals.as_deref()).unwrap_or(id);
        let corrected = rating
            .and_then(|r| r.corrects.clone())
            .or_else(|| view.seals.iter().find(|s| s.id == seal)?.corrects.clone());
        let Some(c) = corrected else { return Ok(None) };
        let after = self.raw_view(SpaceKind::Shared)?;
        // Counting again in the clear, as itself or as the rating that opened it.
        Ok(effective_ratings(&after)
            .iter()
            .find(|r| r.id == c || r.reveals.as_deref() == Some(c.as_str()))
            .map(|r| r.level)
            .or_else(|| self.own_sealed_level(&after, &c)))
    }

    /// One of this person's ratings or seals of `view` as `undo` names it: its goal's
    /// title and its level (a seal's opened with the personal key), not yet whether the
    /// partner answered it.
    fn rating_undone(&self, view: &View, id: String, goal: String) -> Undone {
        let rated = view.ratings.iter().find(|r| r.id == id).map(|r| r.level);
        Undone::Rating {
            title: goal_title(view, &goal),
            level: rated.or_else(|| self.own_sealed_level(view, &id)),
            sealed: rated.is_none(),
            answered: false,
            restored: None,
            id,
            goal,
        }
    }

    /// The level inside one of this person's seals, opened with their personal key (for
    /// their own eyes only; none when this device cannot open it).
    fn own_sealed_level(&self, view: &View, seal: &str) -> Option<Level> {
        let key = self.store.space(SpaceKind::Personal).ok()?.key;
        let s = waiting_seals(view).into_iter().find(|s| s.id == seal)?;
        super::checkin::opened(&key, &self.me.person_id.to_string(), s.clone(), false)
            .map(|r| r.level)
    }

    /// Withdraws one of this person's ratings (or seals) with a rating that says so.
    pub(crate) fn withdraw_rating(
        &mut self,
        id: &str,
        goal: &str,
        level: Option<Level>,
    ) -> Result<(), DeviceError> {
        let now = self.now();
        // The withdrawal carries the withdrawn rating's level (a seal's stays sealed: 0).
        let level = level.unwrap_or(Level::EXPECTED);
        let rating = Rating {
            id: new_id(),
            goal: goal.to_string(),
            rater: self.me.person_id.to_string(),
            at: now,
            level,
            note: None,
            round: None,
            reveals: None,
            salt: None,
            corrects: Some(id.to_string()),
            withdrawn: Some(true),
        };
        self.put_new(
            SpaceKind::Shared,
            &[New::Rating(&rating)],
            "withdraw rating",
            now,
        )
    }

    /// Reopens a completed step of a goal; returns the step id and whether it was done
    /// (a step that was open is left as it is: nothing is written).
    pub fn reopen_step(&mut self, goal: &str, step: &str) -> Result<(String, bool), DeviceError> {
        let (gid, sid) = self.resolve_step(goal, step)?;
        let now = self.now();
        let changed = self.edit(SpaceKind::Shared, |doc, _| {
            let c = doc.reopen_step(&gid, &sid, now)?;
            Ok((c.is_some(), c.into_iter().collect()))
        })?;
        Ok((sid, changed))
    }
}
