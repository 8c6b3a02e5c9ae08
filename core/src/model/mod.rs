//! The typed shape of a space's Automerge document.
//!
//! These structs are mapped to and from the document with `autosurgeon`. Enumerations
//! (area, status, owner) are stored as short strings and parsed at the edges, so a
//! document written by a newer version with a new area still hydrates on an older one.
//! Text that both partners co-edit is [`autosurgeon::Text`] (a CRDT text object);
//! every other scalar is last-writer-wins. Collections are maps keyed by random ids, so
//! concurrent additions from both partners never collide.
//!
//! A partner's device can write any value, so every field is checked against the
//! model's ranges ([`limits`]) when it is read from the document: an entity with a value
//! out of range (a level of 2^53, a date in the year 300,000, a weight of infinity, a
//! megabyte name) does not hydrate, and the read models list it as a problem instead of
//! handing it to `progress` or `report`. [`Rating::validate`] and its siblings apply the
//! same checks to entities that come from elsewhere (read models stored by an older
//! version).

use std::collections::BTreeMap;

/// Co-edited text (an Automerge Text object), as the entities hold it.
pub use autosurgeon::Text;
use autosurgeon::{Hydrate, HydrateError, Prop, ReadDoc, Reconcile};
use serde::{Deserialize, Serialize};

use crate::vocab::{Area, Status, Word};

/// The current document schema version, stored at the root as `schema`.
pub const SCHEMA_VERSION: u64 = 1;

/// A person known to the space: one partner (the devices they own sign as them).
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Person {
    /// Display name chosen at `duet init` / `duet join`.
    #[autosurgeon(hydrate = "check::name")]
    pub name: String,
}

/// The five Goal Attainment Scaling level descriptions of a goal.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize, Default)]
pub struct Levels {
    /// -2: much less than expected.
    #[serde(with = "text_serde")]
    #[autosurgeon(hydrate = "check::text")]
    pub much_less: Text,
    /// -1: less than expected.
    #[serde(with = "text_serde")]
    #[autosurgeon(hydrate = "check::text")]
    pub less: Text,
    /// 0: the expected outcome, written as a SMART statement.
    #[serde(with = "text_serde")]
    #[autosurgeon(hydrate = "check::text")]
    pub expected: Text,
    /// +1: more than expected.
    #[serde(with = "text_serde")]
    #[autosurgeon(hydrate = "check::text")]
    pub more: Text,
    /// +2: much more than expected.
    #[serde(with = "text_serde")]
    #[autosurgeon(hydrate = "check::text")]
    pub much_more: Text,
}

impl Levels {
    /// The description of one level (-2..=2).
    pub fn get(&self, level: i8) -> Option<&Text> {
        match level {
            -2 => Some(&self.much_less),
            -1 => Some(&self.less),
            0 => Some(&self.expected),
            1 => Some(&self.more),
            2 => Some(&self.much_more),
            _ => None,
        }
    }

    /// The mutable description of one level (-2..=2).
    pub fn get_mut(&mut self, level: i8) -> Option<&mut Text> {
        match level {
            -2 => Some(&mut self.much_less),
            -1 => Some(&mut self.less),
            0 => Some(&mut self.expected),
            1 => Some(&mut self.more),
            2 => Some(&mut self.much_more),
            _ => None,
        }
    }
}

/// An actionable step of a goal.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Step {
    /// Random id, unique within the goal.
    #[key]
    #[autosurgeon(hydrate = "check::id")]
    pub id: String,
    /// What to do (co-edited text).
    #[serde(with = "text_serde")]
    #[autosurgeon(hydrate = "check::text")]
    pub text: Text,
    /// Person id of the partner who takes it on, if any.
    #[autosurgeon(hydrate = "check::opt_id")]
    pub assignee: Option<String>,
    /// Person id of who added it.
    #[autosurgeon(hydrate = "check::id")]
    pub created_by: String,
    /// Milliseconds since the Unix epoch.
    #[autosurgeon(hydrate = "check::time")]
    pub created_at: i64,
    /// Person id of who marked it done.
    #[autosurgeon(hydrate = "check::opt_id")]
    pub done_by: Option<String>,
    /// When it was marked done (ms since epoch).
    #[autosurgeon(hydrate = "check::opt_time")]
    pub done_at: Option<i64>,
}

/// A shared relationship goal.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Goal {
    /// Random id (32 hex chars); users type any unique prefix.
    #[key]
    #[autosurgeon(hydrate = "check::id")]
    pub id: String,
    /// The area; stored as its word.
    #[autosurgeon(hydrate = "check::word")]
    pub area: Word<Area>,
    /// Short title (co-edited text).
    #[serde(with = "text_serde")]
    #[autosurgeon(hydrate = "check::text")]
    pub title: Text,
    /// Why this goal matters (co-edited text).
    #[serde(with = "text_serde")]
    #[autosurgeon(hydrate = "check::text")]
    pub why: Text,
    /// The five GAS level descriptions.
    pub levels: Levels,
    /// `shared`, or the person id of the partner who owns it.
    #[autosurgeon(hydrate = "check::id")]
    pub owner: String,
    /// Where it stands; stored as its word.
    #[autosurgeon(hydrate = "check::word")]
    pub status: Word<Status>,
    /// Optional due date, `YYYY-MM-DD`.
    #[autosurgeon(hydrate = "check::due")]
    pub due: Option<String>,
    /// Person id of the creator.
    #[autosurgeon(hydrate = "check::id")]
    pub created_by: String,
    /// Creation time, ms since epoch.
    #[autosurgeon(hydrate = "check::time")]
    pub created_at: i64,
    /// GAS weight per person id (absent means 1).
    #[autosurgeon(hydrate = "check::weights")]
    pub weights: BTreeMap<String, f64>,
    /// Steps keyed by their id.
    pub steps: BTreeMap<String, Step>,
}

/// One partner's GAS rating of a goal at a moment. Append-only.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Rating {
    /// Random id.
    #[key]
    #[autosurgeon(hydrate = "check::id")]
    pub id: String,
    /// Goal id.
    #[autosurgeon(hydrate = "check::id")]
    pub goal: String,
    /// Person id of the rater.
    #[autosurgeon(hydrate = "check::id")]
    pub rater: String,
    /// When it was given, ms since epoch.
    #[autosurgeon(hydrate = "check::time")]
    pub at: i64,
    /// GAS level, -2..=2.
    #[autosurgeon(hydrate = "check::level")]
    pub level: crate::vocab::Level,
    /// Optional note.
    #[autosurgeon(hydrate = "check::opt_text")]
    pub note: Option<String>,
    /// The check-in round it was given in (null: outside rounds, as before them).
    #[serde(default)]
    #[autosurgeon(hydrate = "check::opt_id")]
    pub round: Option<String>,
    /// The seal (`seals/<id>`) this rating reveals: level, note and `salt` match the
    /// seal's commitment, or every device refuses the rating.
    #[serde(default)]
    #[autosurgeon(hydrate = "check::opt_id")]
    pub reveals: Option<String>,
    /// The commitment's salt, 64 hex characters, when it reveals a seal.
    #[serde(default)]
    #[autosurgeon(hydrate = "check::opt_id")]
    pub salt: Option<String>,
    /// An earlier rating (or seal) of the same rater that this one corrects.
    #[serde(default)]
    #[autosurgeon(hydrate = "check::opt_id")]
    pub corrects: Option<String>,
    /// When true, this rating withdraws `corrects` and its own level means nothing.
    #[serde(default)]
    #[autosurgeon(hydrate = "check::opt_bool")]
    pub withdrawn: Option<bool>,
}

/// A rating given blind: only a commitment to the level and note, and the two sealed
/// under a key of the rater's personal space, which the other partner never holds.
/// Created once, never changed; a rating with `reveals` = its id opens it.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Seal {
    /// Random id.
    #[key]
    #[autosurgeon(hydrate = "check::id")]
    pub id: String,
    /// Goal id.
    #[autosurgeon(hydrate = "check::id")]
    pub goal: String,
    /// Person id of the rater.
    #[autosurgeon(hydrate = "check::id")]
    pub rater: String,
    /// When the rating was given, ms since epoch.
    #[autosurgeon(hydrate = "check::time")]
    pub at: i64,
    /// The round it was given in.
    #[autosurgeon(hydrate = "check::id")]
    pub round: String,
    /// An earlier rating or seal of the same rater that it corrects.
    #[autosurgeon(hydrate = "check::opt_id")]
    pub corrects: Option<String>,
    /// SHA-256 commitment to the rating, 64 hex characters (`crate::seal`).
    #[autosurgeon(hydrate = "check::id")]
    pub commitment: String,
    /// The level, note and salt, encrypted for the rater's own devices, as hex.
    #[autosurgeon(hydrate = "check::sealed")]
    pub sealed: String,
}

/// A check-in round: the period in which both partners rate blind. Created by the first
/// sealed rating that finds no open round; closed by either partner, or by its end.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Round {
    /// Random id.
    #[key]
    #[autosurgeon(hydrate = "check::id")]
    pub id: String,
    /// Person id of who opened it.
    #[autosurgeon(hydrate = "check::id")]
    pub opened_by: String,
    /// When it opened, ms since epoch.
    #[autosurgeon(hydrate = "check::time")]
    pub opened_at: i64,
    /// When it closes by itself, ms since epoch.
    #[autosurgeon(hydrate = "check::time")]
    pub ends_at: i64,
    /// Person id of who closed it early, if anyone did.
    #[autosurgeon(hydrate = "check::opt_id")]
    pub closed_by: Option<String>,
    /// When it was closed early.
    #[autosurgeon(hydrate = "check::opt_time")]
    pub closed_at: Option<i64>,
}

/// How far ahead of a device's clock a round may say it opened and still be open there:
/// further is a clock that was wrong when it was opened, and such a round would otherwise
/// keep every check-in from being blind until its dates come (`rituals`).
pub const ROUND_AHEAD_MS: i64 = 24 * 60 * 60 * 1000;

impl Round {
    /// Whether the round is over at `now`: closed by a partner, past its end, or opened
    /// more than [`ROUND_AHEAD_MS`] after `now` (by a clock gone wrong).
    pub fn is_over(&self, now: i64) -> bool {
        self.closed_at.is_some()
            || now >= self.ends_at
            || self.opened_at > now.saturating_add(ROUND_AHEAD_MS)
    }

    /// When the round stops being open whatever the clock: its end, or its closing if
    /// that came first.
    pub fn last_moment(&self) -> i64 {
        self.closed_at.map_or(self.ends_at, |c| c.min(self.ends_at))
    }

    /// Whether the two rounds were open at some moment together (rounds opened by both
    /// partners while apart).
    pub fn overlaps(&self, other: &Round) -> bool {
        self.opened_at < other.last_moment() && other.opened_at < self.last_moment()
    }
}

/// A written reflection, optionally about a goal.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct Reflection {
    /// Random id.
    #[key]
    #[autosurgeon(hydrate = "check::id")]
    pub id: String,
    /// Person id of the author.
    #[autosurgeon(hydrate = "check::id")]
    pub author: String,
    /// When it was written, ms since epoch.
    #[autosurgeon(hydrate = "check::time")]
    pub at: i64,
    /// Goal id, if it is about one goal.
    #[autosurgeon(hydrate = "check::opt_id")]
    pub goal: Option<String>,
    /// The prompt it answers, if any.
    #[autosurgeon(hydrate = "check::opt_text")]
    pub prompt: Option<String>,
    /// The reflection itself (emptied when withdrawn).
    #[serde(with = "text_serde")]
    #[autosurgeon(hydrate = "check::text")]
    pub text: Text,
    /// The reflection this one answers, if it is a reply.
    #[serde(default)]
    #[autosurgeon(hydrate = "check::opt_id")]
    pub reply_to: Option<String>,
    /// When its author last edited it.
    #[serde(default)]
    #[autosurgeon(hydrate = "check::opt_time")]
    pub edited_at: Option<i64>,
    /// When its author withdrew it (its text is then empty).
    #[serde(default)]
    #[autosurgeon(hydrate = "check::opt_time")]
    pub withdrawn_at: Option<i64>,
}

/// The ranges of the model's values. Writers should refuse input outside them (a value
/// out of range is unreadable to every device).
pub mod limits {
    /// The lowest GAS level.
    pub const MIN_LEVEL: i64 = -2;
    /// The highest GAS level.
    pub const MAX_LEVEL: i64 = 2;
    /// The earliest time a value may carry: the Unix epoch (ms).
    pub const MIN_TIME_MS: i64 = 0;
    /// The latest time a value may carry: the end of the year 9999 (ms), the last that
    /// every date formatting handles.
    pub const MAX_TIME_MS: i64 = 253_402_300_799_999;
    /// The largest GAS weight.
    pub const MAX_WEIGHT: f64 = 1_000_000.0;
    /// The longest text (a reflection, a note, a goal's texts), in characters.
    pub const MAX_TEXT_CHARS: usize = 100_000;
    /// The longest display name, in characters.
    pub const MAX_NAME_CHARS: usize = 200;
    /// The longest id or vocabulary word (person, goal and step ids, area, status,
    /// owner), in characters.
    pub const MAX_ID_CHARS: usize = 64;
    /// The longest sealed rating, in hex characters: a note of the longest text, in
    /// UTF-8, encrypted, with room for the level and salt.
    pub const MAX_SEALED_CHARS: usize = 2 * (4 * MAX_TEXT_CHARS + 1024);
}

/// A value outside the model's ranges.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum Invalid {
    /// A GAS level outside -2..=2.
    #[error("GAS level {0} is outside -2..=2")]
    Level(i64),
    /// A time outside 1970..=9999.
    #[error("time {0} (ms since 1970) is outside the years 1970 to 9999")]
    Time(i64),
    /// A weight that is not a number from 0 to [`limits::MAX_WEIGHT`].
    #[error("weight {0} is not a number from 0 to {max}", max = limits::MAX_WEIGHT)]
    Weight(f64),
    /// A text longer than its limit.
    #[error("a text may have at most {max} characters, and this one has more")]
    TooLong {
        /// Its length in characters (counted up to just past the limit).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A due date that is not `YYYY-MM-DD`.
    #[error("due date {0:?} is not a YYYY-MM-DD date")]
    Due(String),
    /// An id that is empty or holds other characters than letters, digits, `-` and `_`.
    #[error("id {0:?} is not letters, digits, '-' and '_'")]
    Id(String),
}

/// Checks of single values, shared by hydration, `validate` and the document's edits.
pub(crate) mod valid {
    use super::{Invalid, limits};

    pub fn level(v: i64) -> Result<(), Invalid> {
        if (limits::MIN_LEVEL..=limits::MAX_LEVEL).contains(&v) {
            Ok(())
        } else {
            Err(Invalid::Level(v))
        }
    }

    pub fn time(v: i64) -> Result<(), Invalid> {
        if (limits::MIN_TIME_MS..=limits::MAX_TIME_MS).contains(&v) {
            Ok(())
        } else {
            Err(Invalid::Time(v))
        }
    }

    pub fn weight(v: f64) -> Result<(), Invalid> {
        if v.is_finite() && (0.0..=limits::MAX_WEIGHT).contains(&v) {
            Ok(())
        } else {
            Err(Invalid::Weight(v))
        }
    }

    /// At most `max` characters (counting stops just past it).
    pub fn length(s: &str, max: usize) -> Result<(), Invalid> {
        // Cheap first: a character takes at least one byte.
        if s.len() <= max {
            return Ok(());
        }
        let len = s.chars().take(max + 1).count();
        if len > max {
            Err(Invalid::TooLong { len, max })
        } else {
            Ok(())
        }
    }

    /// An id: 1 to [`limits::MAX_ID_CHARS`] ASCII letters, digits, `-` and `_` (Duet
    /// makes 32 hex digits). Front ends put ids in paths and arguments: a partner's
    /// hand-made `../../leave` must not become a page's form action.
    pub fn id(s: &str) -> Result<(), Invalid> {
        length(s, limits::MAX_ID_CHARS)?;
        let fine = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        if s.is_empty() || !s.bytes().all(fine) {
            return Err(Invalid::Id(s.chars().take(20).collect()));
        }
        Ok(())
    }

    pub fn due(s: &str) -> Result<(), Invalid> {
        length(s, 10)
            .ok()
            .and_then(|()| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            .map(|_| ())
            .ok_or_else(|| Invalid::Due(s.chars().take(20).collect()))
    }
}

impl Person {
    /// Checks every value against the model's ranges.
    pub fn validate(&self) -> Result<(), Invalid> {
        valid::length(&self.name, limits::MAX_NAME_CHARS)
    }
}

impl Levels {
    /// Checks every value against the model's ranges.
    pub fn validate(&self) -> Result<(), Invalid> {
        [
            &self.much_less,
            &self.less,
            &self.expected,
            &self.more,
            &self.much_more,
        ]
        .into_iter()
        .try_for_each(|t| valid::length(t.as_str(), limits::MAX_TEXT_CHARS))
    }
}

impl Step {
    /// Checks every value against the model's ranges.
    pub fn validate(&self) -> Result<(), Invalid> {
        for id in [&self.id, &self.created_by]
            .into_iter()
            .chain(self.assignee.as_ref())
            .chain(self.done_by.as_ref())
        {
            valid::length(id, limits::MAX_ID_CHARS)?;
        }
        valid::length(self.text.as_str(), limits::MAX_TEXT_CHARS)?;
        valid::time(self.created_at)?;
        self.done_at.map_or(Ok(()), valid::time)
    }
}

impl Goal {
    /// Checks every value against the model's ranges (its steps included).
    pub fn validate(&self) -> Result<(), Invalid> {
        for id in [
            self.id.as_str(),
            self.area.as_str(),
            self.owner.as_str(),
            self.status.as_str(),
            self.created_by.as_str(),
        ] {
            valid::length(id, limits::MAX_ID_CHARS)?;
        }
        valid::length(self.title.as_str(), limits::MAX_TEXT_CHARS)?;
        valid::length(self.why.as_str(), limits::MAX_TEXT_CHARS)?;
        self.levels.validate()?;
        if let Some(due) = &self.due {
            valid::due(due)?;
        }
        valid::time(self.created_at)?;
        for (person, w) in &self.weights {
            valid::length(person, limits::MAX_ID_CHARS)?;
            valid::weight(*w)?;
        }
        self.steps.values().try_for_each(Step::validate)
    }
}

impl Rating {
    /// Checks every value against the model's ranges.
    pub fn validate(&self) -> Result<(), Invalid> {
        for id in [&self.id, &self.goal, &self.rater] {
            valid::length(id, limits::MAX_ID_CHARS)?;
        }
        valid::time(self.at)?;
        valid::level(self.level.get())?;
        for id in [&self.round, &self.reveals, &self.salt, &self.corrects]
            .into_iter()
            .flatten()
        {
            valid::length(id, limits::MAX_ID_CHARS)?;
        }
        self.note
            .as_deref()
            .map_or(Ok(()), |n| valid::length(n, limits::MAX_TEXT_CHARS))
    }
}

impl Seal {
    /// Checks every value against the model's ranges.
    pub fn validate(&self) -> Result<(), Invalid> {
        for id in [
            &self.id,
            &self.goal,
            &self.rater,
            &self.round,
            &self.commitment,
        ]
        .into_iter()
        .chain(self.corrects.as_ref())
        {
            valid::length(id, limits::MAX_ID_CHARS)?;
        }
        valid::length(&self.sealed, limits::MAX_SEALED_CHARS)?;
        valid::time(self.at)
    }
}

impl Round {
    /// Checks every value against the model's ranges.
    pub fn validate(&self) -> Result<(), Invalid> {
        for id in [&self.id, &self.opened_by]
            .into_iter()
            .chain(self.closed_by.as_ref())
        {
            valid::length(id, limits::MAX_ID_CHARS)?;
        }
        valid::time(self.opened_at)?;
        valid::time(self.ends_at)?;
        self.closed_at.map_or(Ok(()), valid::time)
    }
}

impl Reflection {
    /// Checks every value against the model's ranges.
    pub fn validate(&self) -> Result<(), Invalid> {
        for id in [&self.id, &self.author]
            .into_iter()
            .chain(self.goal.as_ref())
            .chain(self.reply_to.as_ref())
        {
            valid::length(id, limits::MAX_ID_CHARS)?;
        }
        valid::time(self.at)?;
        self.prompt
            .as_deref()
            .map_or(Ok(()), |p| valid::length(p, limits::MAX_TEXT_CHARS))?;
        self.edited_at.map_or(Ok(()), valid::time)?;
        self.withdrawn_at.map_or(Ok(()), valid::time)?;
        valid::length(self.text.as_str(), limits::MAX_TEXT_CHARS)
    }
}

/// Hydration with the model's ranges: the `#[autosurgeon(hydrate = ...)]` of each field.
/// A value out of range fails to hydrate, so its entity is never read.
mod check;

/// Serde for co-edited text: its current value as a plain string. Used by the read
/// models, which keep values, not CRDT state.
mod text_serde {
    use autosurgeon::Text;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Text, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(t.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        Ok(Text::with_value(String::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ObjType, ROOT};

    /// A document holding one rating map with these fields, and the rating hydrated.
    fn rating_with(level: i64, at: i64, note: &str) -> Result<Rating, HydrateError> {
        let mut doc = AutoCommit::new();
        let r = doc.put_object(ROOT, "r", ObjType::Map).expect("rating map");
        for (k, v) in [
            ("id", "r1"),
            ("goal", "g1"),
            ("rater", "p1"),
            ("note", note),
        ] {
            doc.put(&r, k, v).expect("put");
        }
        doc.put(&r, "at", at).expect("put");
        doc.put(&r, "level", level).expect("put");
        autosurgeon::hydrate_prop(&doc, ROOT, "r")
    }

    #[test]
    fn values_outside_the_models_ranges_do_not_hydrate() {
        let ok = rating_with(-2, 1_700_000_000_000, "fine").expect("in range");
        assert_eq!(ok.validate(), Ok(()));
        let err = rating_with(9_007_199_254_740_991, 1, "").expect_err("level");
        assert!(err.to_string().contains("9007199254740991"), "{err}");
        assert!(rating_with(3, 1, "").is_err());
        assert!(rating_with(0, -1, "").is_err(), "before 1970");
        assert!(rating_with(0, i64::MAX, "").is_err(), "after 9999");
        let long = "x".repeat(limits::MAX_TEXT_CHARS + 1);
        let err = rating_with(0, 1, &long).expect_err("note too long");
        assert!(err.to_string().contains("at most"), "{err}");
    }

    #[test]
    fn an_absent_optional_field_reads_as_null() {
        let mut doc = AutoCommit::new();
        let r = doc.put_object(ROOT, "r", ObjType::Map).expect("rating map");
        for (k, v) in [("id", "r1"), ("goal", "g1"), ("rater", "p1")] {
            doc.put(&r, k, v).expect("put");
        }
        doc.put(&r, "at", 5_i64).expect("put");
        doc.put(&r, "level", 1_i64).expect("put");
        let rating: Rating = autosurgeon::hydrate_prop(&doc, ROOT, "r").expect("no note is fine");
        assert_eq!(rating.note, None);
    }

    #[test]
    fn validate_names_what_is_out_of_range() {
        // A rating's level is a `Level`: one out of range cannot even be made.
        assert!(rating_with(1, 5, "").expect("in range").validate().is_ok());
        assert!(crate::vocab::Level::try_from(i64::MAX).is_err());
        let mut g = Goal {
            id: "g".into(),
            area: Area::Trust.into(),
            title: Text::with_value("t"),
            why: Text::with_value(""),
            levels: Levels::default(),
            owner: "shared".into(),
            status: Status::Active.into(),
            due: Some("2030-02-28".into()),
            created_by: "p".into(),
            created_at: 1,
            weights: BTreeMap::from([("p".to_string(), 2.0)]),
            steps: BTreeMap::new(),
        };
        assert_eq!(g.validate(), Ok(()));
        g.weights.insert("q".into(), f64::INFINITY);
        assert_eq!(g.validate(), Err(Invalid::Weight(f64::INFINITY)));
        g.weights.clear();
        g.due = Some("someday".into());
        assert!(matches!(g.validate(), Err(Invalid::Due(_))));
    }
}
