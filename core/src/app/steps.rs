//! A goal's steps: adding one (for someone, or for nobody in particular), completing it,
//! correcting its text, and giving it to someone. Reopening is with the corrections.

use crate::device::{Device, DeviceError};
use crate::doc::DocError;
use crate::readmodel::Parts;
use crate::store::SpaceKind;

/// Who a step is for, as the user names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignee {
    /// The person using this device (`me`).
    Me,
    /// The other person of the shared space (`partner`).
    Partner,
    /// Nobody in particular (`nobody`): either of them may do it.
    Nobody,
    /// A person by name, as shown (`Sam`, or `Alex #2af3` when two names look alike).
    Named(String),
    /// A person by id, as the app's pages name each choice (a partner may be named
    /// `me` or `nobody`).
    Person(String),
}

impl Assignee {
    /// What the user typed: `me`, `partner`, `nobody` (or `none`), or a name.
    pub fn parse(who: &str) -> Assignee {
        match who.trim().to_lowercase().as_str() {
            "me" => Assignee::Me,
            "partner" => Assignee::Partner,
            "nobody" | "none" => Assignee::Nobody,
            _ => Assignee::Named(who.trim().to_string()),
        }
    }
}

/// A step marked done, or found done already.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Completed {
    /// Step id.
    pub step: String,
    /// Who had done it and when, when it was done already (nothing was written).
    pub already: Option<AlreadyDone>,
}

/// A completion found in place.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AlreadyDone {
    /// Person id of who completed it.
    pub by: Option<String>,
    /// Their name as shown.
    pub name: Option<String>,
    /// When, ms since the Unix epoch (if the step says).
    pub at: Option<i64>,
}

/// A step given to someone: the step id, and the person it is now for (`None`: either
/// partner) with the name they are shown by.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Assigned {
    /// Step id.
    pub step: String,
    /// Person id it is for.
    pub person: Option<String>,
    /// That person's name as shown.
    pub name: Option<String>,
}

impl Device {
    /// Adds a step to a goal, for someone or for nobody in particular; returns (goal id,
    /// step id).
    pub fn add_step(
        &mut self,
        goal: &str,
        text: &str,
        assignee: &Assignee,
    ) -> Result<(String, String), DeviceError> {
        let gid = self.resolve_goal(goal)?;
        let assignee = self.person_of(assignee)?;
        let now = self.now();
        let sid = self.edit(SpaceKind::Shared, |doc, me| {
            let (id, c) = doc.add_step_for(&gid, &me.person_id, text, assignee.as_deref(), now)?;
            Ok((id, c.into_iter().collect()))
        })?;
        Ok((gid, sid))
    }

    /// Marks a step of a goal done. A step done already (by either partner) is left as
    /// it is: writing over the partner's completion is refused by every other device
    /// (owner rules), and every later change of this device would wait behind it.
    pub fn complete_step(&mut self, goal: &str, step: &str) -> Result<Completed, DeviceError> {
        let (gid, sid) = self.resolve_step(goal, step)?;
        let now = self.now();
        let already = self.edit(SpaceKind::Shared, |doc, me| {
            // Read where the change is made: what every device will judge it by.
            if let Some((by, at)) = doc.step_done(&gid, &sid)? {
                let name = by
                    .as_ref()
                    .and_then(|p| crate::names::shown(&doc.people().ok()?).remove(p));
                return Ok((Some(AlreadyDone { by, name, at }), Vec::new()));
            }
            let c = doc.complete_step(&gid, &sid, &me.person_id, now)?;
            Ok((None, c.into_iter().collect()))
        })?;
        Ok(Completed { step: sid, already })
    }

    /// Corrects a step's text; returns the step id and whether anything changed.
    pub fn edit_step(
        &mut self,
        goal: &str,
        step: &str,
        text: &str,
    ) -> Result<(String, bool), DeviceError> {
        let (gid, sid) = self.resolve_step(goal, step)?;
        let now = self.now();
        let changed = self.edit(SpaceKind::Shared, |doc, _| {
            let c = doc.edit_step(&gid, &sid, text, now)?;
            Ok((c.is_some(), c.into_iter().collect()))
        })?;
        Ok((sid, changed))
    }

    /// Gives a step to someone, or to nobody in particular.
    pub fn assign_step(
        &mut self,
        goal: &str,
        step: &str,
        assignee: &Assignee,
    ) -> Result<Assigned, DeviceError> {
        let (gid, sid) = self.resolve_step(goal, step)?;
        let person = self.person_of(assignee)?;
        let now = self.now();
        self.edit(SpaceKind::Shared, |doc, _| {
            let c = doc.assign_step(&gid, &sid, person.as_deref(), now)?;
            Ok(((), c.into_iter().collect()))
        })?;
        let people = self.view_parts(SpaceKind::Shared, Parts::Goals)?.people;
        let name = person
            .as_ref()
            .and_then(|p| crate::names::shown(&people).remove(p));
        Ok(Assigned {
            step: sid,
            person,
            name,
        })
    }

    /// The person id an assignee names (`None` for nobody), among the people of the
    /// shared space.
    fn person_of(&mut self, assignee: &Assignee) -> Result<Option<String>, DeviceError> {
        let me = self.me.person_id.to_string();
        match assignee {
            Assignee::Me => return Ok(Some(me)),
            Assignee::Nobody => return Ok(None),
            _ => {}
        }
        let people = self.view_parts(SpaceKind::Shared, Parts::Goals)?.people;
        let person = match assignee {
            Assignee::Person(id) if people.contains_key(id) => id.clone(),
            Assignee::Named(name) | Assignee::Person(name) => crate::names::find_id(&people, name)?,
            _ => people
                .keys()
                .find(|p| **p != me)
                .cloned()
                .ok_or(DeviceError::NoPartner)?,
        };
        // Someone who left (or whose every device was removed) never sees the step.
        if person != me && !self.present_people()?.contains(&person) {
            let name = crate::names::shown(&people).remove(&person);
            return Err(DeviceError::AssigneeGone(name.unwrap_or(person)));
        }
        Ok(Some(person))
    }

    /// The (goal id, step id) that what the user typed names.
    pub(crate) fn resolve_step(
        &mut self,
        goal: &str,
        step: &str,
    ) -> Result<(String, String), DeviceError> {
        let goals = self.view_parts(SpaceKind::Shared, Parts::Goals)?.goals;
        let gid = super::goals::resolve_in(&goals, goal)?;
        let g = goals
            .iter()
            .find(|g| g.id == gid)
            .ok_or_else(|| DocError::NoSuchGoal(gid.clone()))?;
        let sid = crate::resolve::resolve(
            "step",
            step,
            g.steps
                .values()
                .map(|s| (s.id.as_str(), s.text.as_str().to_string())),
        )?;
        Ok((gid, sid))
    }
}

impl Device {
    /// Who else marked the step done since it was last reopened, by name: both partners
    /// completed it while apart, and the undo reopens it for both (the completion is one
    /// field; writing the partner's back would be a change in their name).
    pub(crate) fn others_who_completed(
        &mut self,
        goal: &str,
        step: &str,
    ) -> Result<Vec<String>, DeviceError> {
        use crate::history::HistoryKind;
        let rec = self.space(SpaceKind::Shared)?;
        let me = self.me.clone();
        let query = crate::history::HistoryQuery {
            goal: Some(goal.to_string()),
            ..Default::default()
        };
        let events = crate::history::timeline(&mut self.store, &rec.id, &me, &query)?;
        let mut others: Vec<String> = Vec::new();
        for e in events.iter().filter(|e| e.item.as_deref() == Some(step)) {
            match e.kind {
                HistoryKind::StepReopened => others.clear(),
                HistoryKind::StepDone
                    if e.author.as_deref() != Some(&*me.person_id)
                        && !others.contains(&e.author_name) =>
                {
                    others.push(e.author_name.clone());
                }
                _ => {}
            }
        }
        Ok(others)
    }
}
