//! What a sync tells the person: who sent what, which events wait, and the relay's
//! misbehaviour worth an alert.

use crate::advice::{NextStep, Warning};
use crate::words::count;
use std::collections::BTreeMap;

use automerge::Change;

use super::SyncReport;
use crate::event::Event;
use crate::membership::SpaceState;
use crate::model::Person;

/// What arrived from one person.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Arrivals {
    /// Display name (or a short device key).
    pub from: String,
    /// Count per kind of change ("rating", "reflection", ...).
    pub counts: BTreeMap<String, usize>,
    /// The seals revealed and the rounds closed by the counted changes: two devices of
    /// one person that both closed a round close it and reveal each seal twice, which
    /// is one closed round and one revealed rating to the partner.
    #[serde(skip)]
    settled: std::collections::BTreeSet<String>,
    /// The reflection edits counted, by hex change hash: what a note of reflections
    /// merged letter by letter is about ([`crate::device::Device::merged_reflections`]).
    #[serde(skip)]
    pub reflection_edits: std::collections::BTreeSet<String>,
}

impl Arrivals {
    /// "2 ratings and 1 reflection from Sam".
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .counts
            .iter()
            .map(|(k, n)| format!("{n} {}", if *n == 1 { k.clone() } else { plural(k) }))
            .collect();
        let list = match parts.len() {
            0 => "nothing".to_string(),
            1 => parts[0].clone(),
            n => format!("{} and {}", parts[..n - 1].join(", "), parts[n - 1]),
        };
        format!("{list} from {}", self.from)
    }
}

/// Who a [`MembershipNews`] names before their name has arrived.
const UNNAMED: &str = "your partner";

/// A change of who is in the space that arrived from another device.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MembershipNews {
    /// Who did it: their name (a person id until the sync names it).
    pub who: String,
    /// What they did.
    pub what: MembershipAct,
    /// For a removal, whose device was removed (a person id until named); its key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_of: Option<String>,
    /// For a removal, the device removed.
    #[serde(skip)]
    pub removed: Option<[u8; 32]>,
}

/// What a [`MembershipNews`] says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MembershipAct {
    /// A person's first device joined.
    Joined,
    /// A person added another device of theirs.
    AddedDevice,
    /// A person removed a device (their own, or the other person's).
    RemovedDevice,
    /// A person left the space, with all their devices.
    Left,
}

impl MembershipNews {
    /// "Sam left the shared space", for a space of `kind` ("shared", "personal").
    pub fn summary(&self, kind: &str) -> String {
        let who = &self.who;
        match self.what {
            MembershipAct::Joined => format!("{who} joined the {kind} space"),
            MembershipAct::AddedDevice => format!("{who} added a device"),
            MembershipAct::RemovedDevice => match &self.device_of {
                Some(of) if of != who => format!("{who} removed a device of {of}"),
                _ => format!("{who} removed one of their devices"),
            },
            MembershipAct::Left => format!("{who} left the {kind} space"),
        }
    }
}

/// What an accepted membership event signed by another device says, if anything worth
/// telling: who joined, added or removed a device, or left. Not this device's own
/// removal: the sync says that as the end of its membership.
pub(super) fn membership_news(
    state: &SpaceState,
    ev: &Event,
    me: &crate::identity::DeviceKey,
) -> Option<MembershipNews> {
    use crate::event::MembershipOp;
    let person_of = |device: &[u8; 32]| {
        state
            .all_devices()
            .get(device)
            .map(|m| hex::encode(m.person))
    };
    let author = ev.header().author;
    let who = person_of(&author)?;
    let mut removed = None;
    let (what, device_of) = match MembershipOp::decode(ev).ok()? {
        MembershipOp::Join { person, .. } => {
            let devices = state
                .all_devices()
                .values()
                .filter(|m| m.person == person)
                .count();
            let what = if devices <= 1 {
                MembershipAct::Joined
            } else {
                MembershipAct::AddedDevice
            };
            (what, None)
        }
        MembershipOp::Remove { device, .. } if device != *me => {
            removed = Some(device);
            (MembershipAct::RemovedDevice, person_of(&device))
        }
        MembershipOp::Leave => (MembershipAct::Left, None),
        _ => return None,
    };
    Some(MembershipNews {
        who,
        what,
        device_of,
        removed,
    })
}

fn plural(k: &str) -> String {
    match k {
        "status change" => "status changes".into(),
        k => format!("{k}s"),
    }
}

fn label(message: Option<&str>) -> &'static str {
    match message {
        Some("add goal") => "goal",
        Some("rate") => "rating",
        Some("reflect") => "reflection",
        Some("add step") => "step",
        Some("complete step") => "completed step",
        Some("edit goal") => "edit",
        Some("set status") => "status change",
        Some("set person") => "name update",
        Some("rate sealed") => "sealed rating",
        Some("reveal") => REVEALED,
        Some("withdraw rating") => "withdrawn rating",
        Some("close round") => CLOSED,
        Some("edit reflection") => EDITED_REFLECTION,
        Some("withdraw reflection") => "withdrawn reflection",
        Some(crate::doc::UNDO_MESSAGE) => "undo",
        Some("reopen step") => "reopened step",
        Some("edit step") => "step edit",
        Some("assign step") => "step assignment",
        _ => "other change",
    }
}

/// The person id (hex) of the device that signed `ev`, or a short device key.
pub(super) fn person_key(state: &SpaceState, ev: &Event) -> String {
    state
        .members()
        .get(&ev.header().author)
        .map(|m| hex::encode(m.person))
        .unwrap_or_else(|| format!("device {}", hex::encode(&ev.header().author[..6])))
}

/// Counts `changes` from `from` (a person id, see [`person_key`]) by kind.
pub(super) fn tally<'c>(
    arrivals: &mut BTreeMap<String, Arrivals>,
    from: String,
    changes: impl IntoIterator<Item = &'c Change>,
) {
    let entry = arrivals.entry(from.clone()).or_insert_with(|| Arrivals {
        from,
        ..Default::default()
    });
    for ch in changes {
        let kind = label(ch.message());
        let settles = settled_by(kind, ch);
        // Counted once the first time it settles something not settled yet.
        let new = settles
            .iter()
            .filter(|s| !entry.settled.contains(*s))
            .count();
        if !settles.is_empty() && new == 0 {
            continue;
        }
        entry.settled.extend(settles);
        if kind == EDITED_REFLECTION {
            entry.reflection_edits.insert(ch.hash().to_string());
        }
        *entry.counts.entry(kind.to_string()).or_default() += 1;
    }
}

/// What [`label`] calls a reveal and a close.
const REVEALED: &str = "revealed rating";
const CLOSED: &str = "closed round";
const EDITED_REFLECTION: &str = "reflection edit";

/// What a reveal or a close settles: the seal its rating `reveals`, the rounds it sets
/// `closed_by` on (Automerge objects, the same on every device). Nothing for the rest.
fn settled_by(kind: &str, change: &Change) -> Vec<String> {
    use automerge::{ScalarValue, legacy::Key, legacy::OpType};
    if kind != REVEALED && kind != CLOSED {
        return Vec::new();
    }
    let ops = change.decode().operations;
    ops.into_iter()
        .filter_map(|op| match (op.key, op.action) {
            (Key::Map(key), OpType::Put(ScalarValue::Str(seal)))
                if kind == REVEALED && key == "reveals" =>
            {
                Some(format!("seal {seal}"))
            }
            (Key::Map(key), _) if kind == CLOSED && key == "closed_by" => {
                Some(format!("round {}", op.obj))
            }
            _ => None,
        })
        .collect()
}

/// Arrivals keyed by person id, under the person's name where the space lists it.
pub(super) fn named(
    mut arrivals: BTreeMap<String, Arrivals>,
    people: &BTreeMap<String, Person>,
) -> Vec<Arrivals> {
    let names = crate::names::shown(people);
    for a in arrivals.values_mut() {
        if let Some(name) = names.get(&a.from) {
            a.from = name.clone();
        }
    }
    arrivals.into_values().collect()
}

/// Puts membership news under the names the space lists (person ids where it lists
/// none).
pub(super) fn name_news(news: &mut [MembershipNews], people: &BTreeMap<String, Person>) {
    let names = crate::names::shown(people);
    // A person whose name has not arrived yet (a join seen by a watcher before the
    // joiner's first changes) is the partner: this person's own name is always known
    // here. A person id was printed, which nothing else shows.
    let name = |id: &mut String| {
        *id = names
            .get(id.as_str())
            .cloned()
            .unwrap_or_else(|| UNNAMED.to_string());
    };
    for n in news {
        name(&mut n.who);
        if let Some(of) = n.device_of.as_mut() {
            name(of);
        }
    }
}

/// Warns of the events still waiting (`held`), by author; those of a device that
/// `state` (this device's view of the space) has seen removed or gone apart.
pub(super) fn report_waiting(
    held: &[(u64, Vec<u8>)],
    state: &crate::membership::SpaceState,
    report: &mut SyncReport,
) {
    if held.is_empty() {
        return;
    }
    let mut authors: BTreeMap<String, usize> = BTreeMap::new();
    let mut departed: BTreeMap<String, (usize, crate::membership::Departure)> = BTreeMap::new();
    for (_, bytes) in held {
        if let Ok(ev) = Event::decode(bytes.clone()) {
            let author = ev.header().author;
            let short = hex::encode(&author[..6]);
            match state.departure(&author) {
                Some(d) => departed.entry(short).or_insert((0, *d)).0 += 1,
                None => *authors.entry(short).or_default() += 1,
            }
        }
    }
    report_after_departure(&departed, report);
    // A line per device, for a few: a relay can make up any number of devices.
    const SHOWN: usize = 5;
    let mut authors: Vec<(String, usize)> = authors.into_iter().collect();
    authors.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for (author, n) in authors.iter().take(SHOWN) {
        report.warnings.push(Warning::new(format!(
            "{} from device {author} {} for an earlier event or a key the relay has not served \
             (withheld or lost); each sync asks the relay for it again, and {} applied when it \
             arrives",
            count(*n, "event", "events"),
            if *n == 1 { "waits" } else { "wait" },
            if *n == 1 { "it is" } else { "they are" }
        )));
    }
    if authors.len() > SHOWN {
        let rest = &authors[SHOWN..];
        report.warnings.push(Warning::new(format!(
            "{} more from {} wait likewise",
            count(
                rest.iter().map(|(_, n)| n).sum::<usize>(),
                "event",
                "events"
            ),
            count(rest.len(), "other device", "other devices")
        )));
    }
    report.waiting = held.len();
}

/// Events the relay took from devices after a removal or leave it no longer has (this
/// device saw it): a relay restored from an older backup on which a removed device
/// wrote first, or one that does not tell the truth. They are never applied here.
fn report_after_departure(
    departed: &BTreeMap<String, (usize, crate::membership::Departure)>,
    report: &mut SyncReport,
) {
    for (author, (n, d)) in departed.iter().take(5) {
        after_departure(report, author, *n, d);
    }
}

/// Counts and names `n` events the relay took from device `author` (short hex) after its
/// departure `d`, which this device saw and the relay no longer shows.
pub(super) fn after_departure(
    report: &mut SyncReport,
    author: &str,
    n: usize,
    d: &crate::membership::Departure,
) {
    report.from_departed += n;
    report.warnings.push(Warning::new(format!(
        "{} from device {author}, which {} on {}, {} not applied: the relay took {} after \
         that and no longer shows the {} (restored from an older backup, or not telling \
         the truth); this device keeps the space as it saw it; tell the relay's operator",
        count(n, "event", "events"),
        if d.left {
            "left the space"
        } else {
            "this device saw removed"
        },
        crate::clock::utc_minute(d.at),
        if n == 1 { "is" } else { "are" },
        if n == 1 { "it" } else { "them" },
        if d.left { "leave" } else { "removal" },
    )));
}

/// How a space's alert begins its part about a refused push (a front end that shows
/// the refusal in its own words leaves that part out).
pub const PUSH_REFUSED: &str = "the relay refused this device's changes";

/// Returns the space's alert (what the relay did that the person should know of even
/// after this sync's output is gone; `duet status` shows it), and warns of forks the
/// relay refused when there are more than the `previous` alert counted: the relay counts
/// them in every read, and the same count said at every sync would drown the rest.
pub(super) fn relay_alert(report: &mut SyncReport, previous: Option<&str>) -> Option<String> {
    let cursor = report.cursor;
    let forks = count(
        report.forks as usize,
        "equivocation attempt",
        "equivocation attempts",
    );
    if report.forks > 0 && !previous.is_some_and(|p| p.contains(&format!("{forks} by"))) {
        report.warnings.push(Warning::then(
            format!(
                "the relay says it refused {} by a device to sign two different events with the \
                 same sequence number (equivocation); it kept the first and holds the other as \
                 evidence. A copy of a device does that (a home copied, or restored from a backup \
                 while the first still runs): use one copy only. If no device of yours was copied, a key \
                 may have been stolen",
                count(
                    usize::try_from(report.forks).unwrap_or(usize::MAX),
                    "attempt",
                    "attempts"
                )
            ),
            NextStep::CompareSafetyCode,
        ));
    }
    let mut alerts = Vec::new();
    if report.rollback {
        alerts.push(format!(
            "the relay served less than this device already had, or other events in their place (cursor {cursor}); \
             it may have lost or be hiding events; this device gave back {} it held",
            count(report.given_back, "event", "events")
        ));
    }
    if let Some(at) = report.not_authentic {
        alerts.push(format!(
            "the relay served at cursor {at} something that is not an event of this space; \
             this device reads past it, and reads there again at every sync until the relay serves \
             the event due there"
        ));
    }
    if report.forks > 0 {
        alerts.push(format!(
            "{forks} by a device of this space, refused by the relay"
        ));
    }
    // Until a push goes through: the changes wait here, and `duet status` says why
    // (last, so that a front end can leave it out).
    if let Some(w) = &report.push_refused {
        alerts.push(format!(
            "{PUSH_REFUSED} ({}); they are kept here and sent once it takes them",
            w.text
        ));
    }
    (!alerts.is_empty()).then(|| alerts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A watcher that saw the partner's join before their name printed their person
    /// id ("3766e912... joined the shared space"), which nothing else shows.
    #[test]
    fn a_joiner_not_named_yet_is_the_partner_not_an_id() {
        let mut news = vec![MembershipNews {
            who: "3766e912aa00".into(),
            what: MembershipAct::Joined,
            device_of: None,
            removed: None,
        }];
        name_news(&mut news, &BTreeMap::new());
        assert_eq!(
            news[0].summary("shared"),
            "your partner joined the shared space"
        );
    }
}
