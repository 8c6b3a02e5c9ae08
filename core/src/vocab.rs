//! The small closed vocabularies of the domain: goal areas, goal statuses and GAS levels.
//!
//! Each parses from the words a user types and prints the same word back, which is also
//! the string stored in the document.

use std::fmt;
use std::str::FromStr;

/// Why a word was not one of the vocabulary's words.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{what} must be one of: {allowed} (got {got:?})")]
pub struct VocabError {
    what: &'static str,
    allowed: String,
    got: String,
}

macro_rules! vocab {
    ($(#[$doc:meta])* $name:ident, $what:literal, { $($(#[$vdoc:meta])* $variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            /// Every value, in display order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and displayed word.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }

        impl Vocabulary for $name {
            fn word(self) -> &'static str { self.as_str() }
        }

        impl FromStr for $name {
            type Err = VocabError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let lower = s.trim().to_ascii_lowercase().replace(['_', ' '], "-");
                match lower.as_str() {
                    $($word => Ok($name::$variant),)+
                    _ => Err(VocabError {
                        what: $what,
                        allowed: [$($word),+].join(", "),
                        got: s.to_string(),
                    }),
                }
            }
        }
    };
}

vocab!(
    /// The area of the relationship a goal belongs to.
    Area, "area", {
    /// Talking and listening.
    Communication => "communication",
    /// Reliability and honesty.
    Trust => "trust",
    /// Being there for each other.
    EmotionalSupport => "emotional-support",
    /// Understanding the other's feelings.
    Empathy => "empathy",
    /// Handling disagreement.
    ConflictResolution => "conflict-resolution",
    /// Closeness.
    Intimacy => "intimacy",
    /// Time together.
    QualityTime => "quality-time",
    /// Setting goals together.
    SharedVision => "shared-vision",
    /// Anything else.
    Other => "other",
});

vocab!(
    /// Where a goal stands. Goals are never deleted, only archived.
    Status, "status", {
    /// Being worked on.
    Active => "active",
    /// On hold for now.
    Paused => "paused",
    /// Reached.
    Achieved => "achieved",
    /// Put away (kept in history).
    Archived => "archived",
});

/// A closed vocabulary: each value has one stored word.
pub trait Vocabulary: Copy + FromStr + 'static {
    /// The stored and displayed word.
    fn word(self) -> &'static str;
}

/// A vocabulary word as a document holds it: one this version knows, or a word of a
/// newer version kept as written, so that a goal with a newer status still opens (and
/// is written back unchanged).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Word<T> {
    /// A word this version knows.
    Known(T),
    /// A word it does not know.
    Other(String),
}

impl<T: Vocabulary> Word<T> {
    /// Reads a stored word: only the exact stored form is a known word.
    pub fn read(s: &str) -> Self {
        match s.parse::<T>() {
            Ok(t) if t.word() == s => Word::Known(t),
            _ => Word::Other(s.to_string()),
        }
    }

    /// The stored word.
    pub fn as_str(&self) -> &str {
        match self {
            Word::Known(t) => t.word(),
            Word::Other(s) => s,
        }
    }

    /// The known value, if this version knows the word.
    pub fn known(&self) -> Option<T> {
        match self {
            Word::Known(t) => Some(*t),
            Word::Other(_) => None,
        }
    }
}

impl<T: Vocabulary> From<T> for Word<T> {
    fn from(t: T) -> Self {
        Word::Known(t)
    }
}

impl<T: Vocabulary + PartialEq> PartialEq<T> for Word<T> {
    fn eq(&self, other: &T) -> bool {
        self.known() == Some(*other)
    }
}

impl<T: Vocabulary> fmt::Display for Word<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<T: Vocabulary> serde::Serialize for Word<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de, T: Vocabulary> serde::Deserialize<'de> for Word<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Word::read(&String::deserialize(d)?))
    }
}

impl<T: Vocabulary> autosurgeon::Reconcile for Word<T> {
    type Key<'a> = autosurgeon::reconcile::NoKey;
    fn reconcile<R: autosurgeon::Reconciler>(&self, mut r: R) -> Result<(), R::Error> {
        r.str(self.as_str())
    }
}

/// A GAS level: -2 much less than expected .. +2 much more than expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Level(i8);

/// A level outside -2..=2.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("GAS level must be -2, -1, 0, 1 or 2 (got {0:?})")]
pub struct LevelError(pub String);

impl Level {
    /// -2: much less than expected.
    pub const MUCH_LESS: Level = Level(-2);
    /// -1: less than expected.
    pub const LESS: Level = Level(-1);
    /// 0: the expected outcome.
    pub const EXPECTED: Level = Level(0);
    /// +1: more than expected.
    pub const MORE: Level = Level(1);
    /// +2: much more than expected.
    pub const MUCH_MORE: Level = Level(2);

    /// The level's value, -2..=2.
    pub fn value(self) -> i8 {
        self.0
    }

    /// The level as the integer the document stores.
    pub fn get(self) -> i64 {
        i64::from(self.0)
    }

    /// The plain-words meaning of the level.
    pub fn meaning(self) -> &'static str {
        match self.0 {
            -2 => "much less than expected",
            -1 => "less than expected",
            0 => "expected outcome",
            1 => "more than expected",
            _ => "much more than expected",
        }
    }
}

impl serde::Serialize for Level {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.get())
    }
}

impl<'de> serde::Deserialize<'de> for Level {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Level::try_from(i64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Stored as an Automerge int, as it always was.
impl autosurgeon::Reconcile for Level {
    type Key<'a> = autosurgeon::reconcile::NoKey;
    fn reconcile<R: autosurgeon::Reconciler>(&self, mut r: R) -> Result<(), R::Error> {
        r.i64(self.get())
    }
}

impl TryFrom<i64> for Level {
    type Error = LevelError;
    fn try_from(v: i64) -> Result<Self, Self::Error> {
        if (-2..=2).contains(&v) {
            Ok(Level(v as i8))
        } else {
            Err(LevelError(v.to_string()))
        }
    }
}

impl FromStr for Level {
    type Err = LevelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // A typographic minus (U+2212) or a dash a keyboard put in for "-" (an en dash:
        // many phones and editors do) is read as the minus it stands for.
        let typed = s.trim();
        let plain = match typed.strip_prefix(['\u{2212}', '\u{2013}']) {
            Some(rest) => format!("-{rest}"),
            None => typed.to_string(),
        };
        // What was typed, said back at most 40 characters long (a line of megabytes piped
        // into `checkin` came back whole on stderr).
        let said = || match s.char_indices().nth(40) {
            Some((at, _)) => LevelError(format!("{}…", &s[..at])),
            None => LevelError(s.to_string()),
        };
        let v: i64 = plain.trim_start_matches('+').parse().map_err(|_| said())?;
        Level::try_from(v).map_err(|_| said())
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 > 0 {
            write!(f, "+{}", self.0)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_unknown_words_list_the_choices() {
        for a in Area::ALL {
            assert_eq!(a.as_str().parse::<Area>(), Ok(*a));
        }
        assert_eq!("Quality time".parse::<Area>(), Ok(Area::QualityTime));
        let err = "romance".parse::<Area>().unwrap_err().to_string();
        assert!(
            err.contains("communication") && err.contains("romance"),
            "{err}"
        );
    }

    #[test]
    fn a_word_of_a_newer_version_is_kept_as_written() {
        assert_eq!(Word::<Status>::read("paused"), Status::Paused);
        let newer = Word::<Status>::read("on-hold");
        assert_eq!(newer, Word::Other("on-hold".into()));
        assert_eq!(newer.as_str(), "on-hold");
        assert_eq!(newer.known(), None);
        // Only the stored form is the known word; a typed variant is another word.
        assert_eq!(Word::<Area>::read("Quality time").known(), None);
    }

    #[test]
    fn levels_outside_minus_two_to_two_are_refused() {
        assert_eq!("-1".parse::<Level>().map(Level::value), Ok(-1));
        assert_eq!("+2".parse::<Level>().map(Level::value), Ok(2));
        assert!("3".parse::<Level>().is_err());
        assert!("-3".parse::<Level>().is_err());
        assert!("one".parse::<Level>().is_err());
        // A typographic minus and an en dash, as phones and editors type them.
        assert_eq!("\u{2212}1".parse::<Level>().map(Level::value), Ok(-1));
        assert_eq!("\u{2013}2".parse::<Level>().map(Level::value), Ok(-2));
        assert!("\u{2212}\u{2212}1".parse::<Level>().is_err());
    }
}
