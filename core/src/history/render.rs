//! What events show but their changes do not fix: the author's person and current name,
//! the goal's current title and the summary line; and the events that come from outside
//! the document (devices joining or being removed, what this device refused).

use std::collections::{BTreeMap, HashMap};

use super::{HistoryEvent, HistoryKind, RefusedRecord};
use crate::event::{Event, MembershipOp};
use crate::identity::DeviceKey;
use crate::membership::{Member, SpaceState};

/// Fills in what an event shows but its change does not fix: the author's person and
/// current name, the goal's current title, and the summary line.
pub fn name_events(
    events: &mut [HistoryEvent],
    devices: &BTreeMap<DeviceKey, Member>,
    people: &BTreeMap<String, String>,
    title: &dyn Fn(&str) -> Option<String>,
) {
    let mut titles: HashMap<String, Option<String>> = HashMap::new();
    for ev in events {
        let device: Option<DeviceKey> =
            hex::decode(&ev.device).ok().and_then(|b| b.try_into().ok());
        ev.author = device
            .as_ref()
            .and_then(|d| devices.get(d))
            .map(|m| hex::encode(m.person));
        ev.author_name = ev
            .author
            .as_ref()
            .and_then(|p| people.get(p).cloned())
            .unwrap_or_else(|| format!("device {}", &ev.device[..8.min(ev.device.len())]));
        if let Some(g) = &ev.goal {
            ev.goal_title = titles.entry(g.clone()).or_insert_with(|| title(g)).clone();
        }
        ev.summary = summary(ev, people);
    }
}

/// A goal field as people read it: `level:+2` is "level +2 text".
fn field_words(field: &str) -> String {
    match field.strip_prefix("level:") {
        Some(level) => format!("level {level} text"),
        None if field == "due" => "due date".to_string(),
        None => field.to_string(),
    }
}

/// The one readable line of an event.
fn summary(ev: &HistoryEvent, people: &BTreeMap<String, String>) -> String {
    let who = &ev.author_name;
    let goal = ev
        .goal_title
        .clone()
        .map(|t| format!("\"{t}\""))
        .unwrap_or_else(|| "a goal".into());
    let q = |s: &Option<String>| {
        s.clone()
            .map(|s| format!("\"{s}\""))
            .unwrap_or_else(|| "(none)".into())
    };
    match ev.kind {
        HistoryKind::GoalCreated => goal_created(ev, who, people),
        HistoryKind::FieldEdited if ev.field.as_deref() == Some("owner") => {
            owner_changed(ev, who, &goal, people)
        }
        // Each partner's own (`weights/<P>`, written only by P's devices).
        HistoryKind::FieldEdited if ev.field.as_deref() == Some("weight") => format!(
            "{who} set their weight for {goal} to {}",
            ev.after.as_deref().unwrap_or("?")
        ),
        HistoryKind::FieldEdited => format!(
            "{who} changed the {} of {goal}: {} -> {}",
            field_words(ev.field.as_deref().unwrap_or("field")),
            q(&ev.before),
            q(&ev.after)
        ),
        HistoryKind::StatusChanged => format!(
            "{who} set {goal} from {} to {}",
            ev.before.as_deref().unwrap_or("?"),
            ev.after.as_deref().unwrap_or("?")
        ),
        HistoryKind::StepAdded | HistoryKind::StepEdited | HistoryKind::StepAssigned => {
            step_summary(ev, who, &goal, people)
        }
        HistoryKind::StepDone => format!("{who} completed step {} of {goal}", q(&ev.after)),
        HistoryKind::RatingGiven => rating_summary(ev, who, &goal),
        HistoryKind::ReflectionWritten
        | HistoryKind::ReflectionEdited
        | HistoryKind::ReflectionWithdrawn => reflection_summary(ev, who, &goal),
        HistoryKind::RatingSealed if ev.field.as_deref() == Some("correction") => {
            format!("{who} corrected their blind rating of {goal} (sealed until both have rated)")
        }
        HistoryKind::RatingSealed => {
            format!("{who} rated {goal} blind (sealed until both have rated)")
        }
        HistoryKind::RatingWithdrawn => format!("{who} withdrew a rating of {goal}"),
        HistoryKind::RoundClosed => format!("{who} closed the check-in round"),
        HistoryKind::StepReopened => format!("{who} reopened step {} of {goal}", q(&ev.after)),
        HistoryKind::DeviceJoined => format!(
            "a device of {} joined ({})",
            ev.before.as_deref().unwrap_or("someone"),
            short_device(ev.item.as_deref())
        ),
        HistoryKind::DeviceRemoved => format!(
            "{who} removed device {} of {}",
            short_device(ev.item.as_deref()),
            ev.before.as_deref().unwrap_or("someone")
        ),
        HistoryKind::PersonLeft => format!("{who} left the shared space"),
        HistoryKind::InviteRevoked => format!(
            "{who} revoked an unused invite ({})",
            short_device(ev.item.as_deref())
        ),
        HistoryKind::PersonNamed => format!("{} joined the space", joined_name(ev, people)),
        HistoryKind::ChangeRefused => format!(
            "REFUSED a change from {who}'s device {}: {}; nothing of it was applied",
            &ev.device[..12.min(ev.device.len())],
            ev.after.as_deref().unwrap_or("")
        ),
    }
}

/// The line of a new goal, and whose own it is when one person's.
fn goal_created(ev: &HistoryEvent, who: &str, people: &BTreeMap<String, String>) -> String {
    let title = ev
        .after
        .as_ref()
        .map_or_else(|| "(none)".to_string(), |t| format!("\"{t}\""));
    match &ev.person {
        Some(p) if ev.author.as_ref() == Some(p) => {
            format!("{who} created goal {title}, their own")
        }
        Some(p) => format!(
            "{who} created goal {title}, {}'s own",
            person_name(people, p)
        ),
        None => format!("{who} created goal {title}"),
    }
}

/// The line of a goal made one person's own, or a goal of both.
fn owner_changed(
    ev: &HistoryEvent,
    who: &str,
    goal: &str,
    people: &BTreeMap<String, String>,
) -> String {
    match ev.after.as_deref() {
        Some("shared") => format!("{who} made {goal} a goal of you both"),
        Some(p) if ev.author.as_deref() == Some(p) => format!("{who} made {goal} their own goal"),
        Some(p) => format!("{who} made {goal} {}'s own goal", person_name(people, p)),
        None => format!("{who} changed whose goal {goal} is"),
    }
}

/// The line of a step added (for someone), corrected or given to someone.
fn step_summary(
    ev: &HistoryEvent,
    who: &str,
    goal: &str,
    people: &BTreeMap<String, String>,
) -> String {
    let q = |s: &Option<String>| {
        s.clone()
            .map(|s| format!("\"{s}\""))
            .unwrap_or_else(|| "(none)".into())
    };
    match ev.kind {
        HistoryKind::StepAdded => match &ev.person {
            Some(p) => format!(
                "{who} added step {} to {goal}, for {}",
                q(&ev.after),
                person_name(people, p)
            ),
            None => format!("{who} added step {} to {goal}", q(&ev.after)),
        },
        HistoryKind::StepEdited => format!(
            "{who} corrected step {} of {goal}: now {}",
            q(&ev.before),
            q(&ev.after)
        ),
        HistoryKind::StepAssigned => match &ev.person {
            Some(p) if ev.author.as_ref() == Some(p) => {
                format!("{who} took on step {} of {goal}", q(&ev.after))
            }
            Some(p) => format!(
                "{who} gave step {} of {goal} to {}",
                q(&ev.after),
                person_name(people, p)
            ),
            None => format!(
                "{who} left step {} of {goal} to either of you",
                q(&ev.after)
            ),
        },
        _ => String::new(),
    }
}

/// A person's name as shown, or "someone not in this space" for an id no person of the
/// space has (a partner's client may write any id).
fn person_name(people: &BTreeMap<String, String>, id: &str) -> String {
    people
        .get(id)
        .cloned()
        .unwrap_or_else(|| "someone not in this space".to_string())
}

/// The name a person joined (or renamed themselves) with: the name then, or as shown
/// now (with the person's id, when it looks like another's) while it is still theirs.
fn joined_name(ev: &HistoryEvent, people: &BTreeMap<String, String>) -> String {
    let now = ev.item.as_ref().and_then(|p| people.get(p));
    match (&ev.after, now) {
        (Some(then), Some(now))
            if now == then
                || now
                    .strip_prefix(then.as_str())
                    .is_some_and(|r| r.starts_with(" #")) =>
        {
            now.clone()
        }
        (Some(then), _) => then.clone(),
        (None, now) => now.cloned().unwrap_or_default(),
    }
}

/// The line of a rating: its level with what the level means, and its note.
fn rating_summary(ev: &HistoryEvent, who: &str, goal: &str) -> String {
    let level = ev
        .level
        .and_then(|l| crate::Level::try_from(l).ok())
        .map(|l| format!("{l} ({})", l.meaning()))
        .unwrap_or_else(|| "?".into());
    let note = ev
        .after
        .as_ref()
        .map(|n| format!(": {n}"))
        .unwrap_or_default();
    match ev.field.as_deref() {
        Some("correction") => format!("{who} corrected their rating of {goal} to {level}{note}"),
        // The opening of a blind rating the history showed when it was made: not a
        // second rating.
        Some("revealed") => format!("{who}'s blind rating of {goal} was revealed: {level}{note}"),
        _ => format!("{who} rated {goal} {level}{note}"),
    }
}

/// The first 12 hex digits of a device key.
fn short_device(device: Option<&str>) -> &str {
    device.map(|d| &d[..12.min(d.len())]).unwrap_or("?")
}

/// What this device refused of what others sent, as history: the device that signed
/// it, its person, and why (the reason is in `after`). `state` is the space's folded
/// membership, which the caller already holds.
pub fn refused_history(
    refused: &[RefusedRecord],
    state: &SpaceState,
    people: &BTreeMap<String, String>,
) -> Vec<HistoryEvent> {
    refused
        .iter()
        .map(|(hash, reason, bytes, at)| {
            let ev = Event::decode(bytes.clone()).ok();
            let device = ev.as_ref().map(|e| e.header().author);
            let person =
                device.and_then(|d| state.all_devices().get(&d).map(|m| hex::encode(m.person)));
            let name = person
                .as_ref()
                .and_then(|p| people.get(p).cloned())
                .unwrap_or_else(|| "an unknown device".into());
            let mut e = HistoryEvent::by(
                HistoryKind::ChangeRefused,
                ev.as_ref().map_or(*at, |e| e.header().time),
                person,
                name,
                device.map(hex::encode).unwrap_or_default(),
                hex::encode(hash),
            );
            e.after = Some(reason.clone());
            e.summary = summary(&e, people);
            e
        })
        .collect()
}

/// Membership events of a space as history: devices joining and being removed (who
/// removed whom, and when), partners leaving and invites revoked. `events` are the space's events in the relay's order.
pub fn membership_history(
    events: &[Event],
    people: &BTreeMap<String, String>,
) -> Vec<HistoryEvent> {
    let mut state = SpaceState::default();
    let mut out = Vec::new();
    for ev in events {
        let before = state.clone();
        if state.admit(ev, None).is_err() {
            continue;
        }
        let name_of = |device: &DeviceKey| -> (Option<String>, String) {
            let person = state
                .all_devices()
                .get(device)
                .or_else(|| before.all_devices().get(device))
                .map(|m| hex::encode(m.person));
            let name = person
                .as_ref()
                .and_then(|p| people.get(p).cloned())
                .unwrap_or_else(|| "someone".into());
            (person, name)
        };
        let h = ev.header();
        let (author, author_name) = name_of(&h.author);
        let base = HistoryEvent::by(
            HistoryKind::DeviceJoined,
            h.time,
            author,
            author_name,
            hex::encode(h.author),
            hex::encode(ev.hash()),
        );
        let mut e = match MembershipOp::decode(ev) {
            Ok(MembershipOp::Join { .. }) | Ok(MembershipOp::Genesis { .. }) => HistoryEvent {
                item: Some(hex::encode(h.author)),
                before: Some(base.author_name.clone()),
                ..base
            },
            Ok(MembershipOp::Remove { device, .. }) => HistoryEvent {
                kind: HistoryKind::DeviceRemoved,
                item: Some(hex::encode(device)),
                before: Some(name_of(&device).1),
                ..base
            },
            Ok(MembershipOp::Leave) => HistoryEvent {
                kind: HistoryKind::PersonLeft,
                ..base
            },
            Ok(MembershipOp::Revoke { invite_key }) => HistoryEvent {
                kind: HistoryKind::InviteRevoked,
                item: Some(hex::encode(invite_key)),
                ..base
            },
            _ => continue,
        };
        e.summary = summary(&e, people);
        out.push(e);
    }
    out
}

/// What was done to a reflection (written, replied, edited, an edit taken back,
/// withdrawn), and " on GOAL" when it is about a goal.
fn reflection_summary(ev: &HistoryEvent, who: &str, goal: &str) -> String {
    let did = match (ev.kind, ev.field.as_deref()) {
        (HistoryKind::ReflectionWritten, Some("reply")) => {
            return format!("{who} replied to a reflection");
        }
        (HistoryKind::ReflectionWithdrawn, Some("reply")) => {
            return format!("{who} withdrew a reply");
        }
        (HistoryKind::ReflectionWritten, _) => "wrote",
        (HistoryKind::ReflectionEdited, Some("undone")) => "took back an edit of",
        (HistoryKind::ReflectionEdited, _) => "edited",
        _ => "withdrew",
    };
    match ev.goal {
        Some(_) => format!("{who} {did} a reflection on {goal}"),
        None => format!("{who} {did} a reflection"),
    }
}
