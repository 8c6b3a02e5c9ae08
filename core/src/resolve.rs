//! Finding a goal or step from what a user typed, as people type it: its id or the
//! start of it, or its title (for a step, its text) whole, its start, or a word of it,
//! all case-insensitive.

use crate::ids::short;

/// Whether `c` is a bidirectional control: an embedding, override or isolate, or an
/// invisible directional mark (left-to-right U+200E, right-to-left U+200F, Arabic letter
/// U+061C). A mark at the end of a partner's name or title pulls the neutral text after
/// it ("+1" beside it) into its direction as surely as an override does.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}'
    )
}

/// `s` in double quotes as people read it (accents, emoji and their joiners kept),
/// with what could act instead of show escaped as `\u{…}`: control characters and the
/// bidirectional controls (a partner's title, quoted in an error, must not reverse the
/// rest of the line). Quotes and backslashes inside are escaped, as Rust writes them.
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || is_bidi_control(c) => {
                out.extend(c.escape_unicode());
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Why a reference did not name exactly one item.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ResolveError {
    /// Nothing matched.
    #[error("no {what} matches {}; {hint}", quoted(.query))]
    Unknown {
        /// "goal" or "step".
        what: &'static str,
        /// What the user typed.
        query: String,
        /// Which ones exist.
        hint: String,
    },
    /// Several matched.
    #[error(
        "{} matches several {what}s: {candidates}; {}",
        quoted(.query),
        match (*.same, *.what == "step") {
            (true, true) => "their texts are the same: give the start of the id",
            (true, false) => "their titles are the same: give the start of the id",
            (false, true) => "type more of the text, or the start of the id",
            (false, false) => "type more of the title, or the start of the id",
        }
    )]
    Ambiguous {
        /// "goal" or "step".
        what: &'static str,
        /// What the user typed.
        query: String,
        /// `id-prefix "title"` of each candidate.
        candidates: String,
        /// Whether the candidates' titles are the same (typing more of one cannot help).
        same: bool,
    },
    /// Nothing was typed (or only spaces): a wrong argument rather than an unknown item.
    #[error("an empty {what} name names no {what}; give a word of it or the start of its id")]
    Empty {
        /// "goal" or "step".
        what: &'static str,
    },
    /// A name several people of the space have (their names look alike).
    #[error("{} names several people: {candidates}; give the name as shown, with its id", quoted(.query))]
    SeveralPeople {
        /// What the user typed.
        query: String,
        /// The names they are shown by.
        candidates: String,
    },
}

/// What was typed, as an error says it back: its start, when it is long (a pasted
/// text in place of a goal's name).
fn said(q: &str) -> String {
    const SAID_CHARS: usize = 80;
    match q.char_indices().nth(SAID_CHARS) {
        Some((end, _)) => format!("{}...", &q[..end]),
        None => q.to_string(),
    }
}

/// The rules in order of preference: the first that matches anything decides, so an
/// exact title wins over a goal whose title merely starts with it, and several matches
/// of one rule are ambiguous rather than settled by a weaker rule. A title's start and
/// a whole word of a title are one rule: `date` for "Date ideas" and "Weekly date
/// night" names either as much as the other (it once took the first silently, and
/// `step done` marked the wrong step done).
/// The start of an id is that rule too: `b` for the goal "Budget together" and a goal
/// whose id starts with b names either (the id once won silently, and `rate b 2` rated
/// the other goal).
/// The starts and words of titles are compared without accents (`cafe` finds "Café"),
/// the whole title with them (two titles apart only by an accent stay apart).
const RULES: [fn(&Item, &Query) -> bool; 4] = [
    |it, q| it.id == q.lower,
    |it, q| it.title == q.lower,
    |it, q| {
        it.id.starts_with(&q.lower)
            || it.folded.starts_with(&q.folded)
            || word_at(&it.folded, &q.folded, true)
    },
    |it, q| word_at(&it.folded, &q.folded, false),
];

/// What was typed, as it is compared.
struct Query {
    /// Composed and lower-cased ([`comparable`]).
    lower: String,
    /// Without accents too ([`folded`]).
    folded: String,
}

/// From this many characters, a query that is both a title and the start of another
/// item's id is ambiguous (shorter starts of ids are too common to count as meant).
const ID_PREFIX_CLASH: usize = 4;

/// One candidate, lower-cased for matching.
struct Item<'a> {
    id: String,
    title: String,
    /// The title without accents ([`folded`]).
    folded: String,
    original: (&'a str, &'a str),
}

/// Resolves `query` among `(id, title)` pairs: an exact id, an exact title, a unique
/// id prefix, a unique title prefix, a unique run of whole words of a title (`weekly`
/// or `check-in` for "Weekly check-in"), then a unique run of words by their start
/// (`check` for "Weekly check-in"); all case-insensitive.
pub fn resolve<'a>(
    what: &'static str,
    query: &str,
    items: impl IntoIterator<Item = (&'a str, String)>,
) -> Result<String, ResolveError> {
    resolve_setting_aside(what, query, items, &|_| None)
}

/// [`resolve`], where `aside` names the items set aside (an archived goal: `Some`, with
/// the word an error marks it with): when several match equally and exactly one of them
/// is not set aside, it is the one meant (a couple who archived "Weekly check-in" and
/// began it again could no longer rate it by its title). Its id still names a set-aside
/// item, and one that alone matches is found as before.
pub fn resolve_setting_aside<'a>(
    what: &'static str,
    query: &str,
    items: impl IntoIterator<Item = (&'a str, String)>,
    aside: &dyn Fn(&str) -> Option<&'static str>,
) -> Result<String, ResolveError> {
    let items: Vec<(&str, String)> = items.into_iter().collect();
    let q = query.trim();
    if q.is_empty() {
        return Err(ResolveError::Empty { what });
    }
    let lower = comparable(q);
    let query = Query {
        folded: folded(&lower),
        lower: lower.clone(),
    };
    let prepared: Vec<Item> = items
        .iter()
        .map(|(id, written)| {
            let title = comparable(written.trim());
            Item {
                id: id.to_lowercase(),
                folded: folded(&title),
                title,
                original: (id, written.as_str()),
            }
        })
        .collect();
    let mut matches: Vec<&Item> = RULES
        .iter()
        .map(|rule| prepared.iter().filter(|it| rule(it, &query)).collect())
        .find(|m: &Vec<&Item>| !m.is_empty())
        .unwrap_or_default();
    // A title that reads as the start of another item's id (a partner may name a goal
    // "a3f9") does not silently take what was typed as an id: both are named.
    if lower.chars().count() >= ID_PREFIX_CLASH && matches.iter().all(|it| it.title == lower) {
        let ids = prepared.iter().filter(|it| it.id.starts_with(&lower));
        let others: Vec<&Item> = ids.filter(|it| it.title != lower).collect();
        matches.extend(others);
    }
    if matches.len() > 1 {
        let kept: Vec<&Item> = matches
            .iter()
            .copied()
            .filter(|it| aside(it.original.0).is_none())
            .collect();
        if let [one] = kept.as_slice() {
            return Ok(one.original.0.to_string());
        }
    }
    match matches.as_slice() {
        [one] => Ok(one.original.0.to_string()),
        [] => Err(ResolveError::Unknown {
            what,
            query: said(q),
            hint: if items.is_empty() {
                format!("there are no {what}s yet")
            } else {
                format!("known {what}s: {}", listed(prepared.iter(), aside))
            },
        }),
        many => Err(ResolveError::Ambiguous {
            what,
            query: said(q),
            candidates: listed(many.iter().copied(), aside),
            same: many.iter().all(|it| it.title == many[0].title),
        }),
    }
}

/// Text as it is compared: composed (NFC: a keyboard's "c" + combining cedilla is the
/// "ç" a title was written with) and in lower case.
fn comparable(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    s.nfc().collect::<String>().to_lowercase()
}

/// `s` (already [`comparable`]) without its accents: decomposed, combining marks
/// dropped ("café" reads "cafe").
fn folded(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    use unicode_normalization::char::is_combining_mark;
    s.nfd().filter(|c| !is_combining_mark(*c)).collect()
}

/// At most this many items are named in an error; the rest are counted.
const LISTED_ITEMS: usize = 10;

/// At most this many characters of a title are quoted in an error.
const LISTED_TITLE_CHARS: usize = 60;

/// `id-prefix "title"` of each item (the first [`LISTED_ITEMS`], titles cut to
/// [`LISTED_TITLE_CHARS`]: an error must not scroll a page away); the title
/// [`quoted`], since it is the partner's words and may hold anything; an item set
/// aside marked so (`(archived)`).
fn listed<'a, 'b: 'a>(
    items: impl Iterator<Item = &'a Item<'b>>,
    aside: &dyn Fn(&str) -> Option<&'static str>,
) -> String {
    let items: Vec<&Item> = items.collect();
    let mut out: Vec<String> = items
        .iter()
        .take(LISTED_ITEMS)
        .map(|it| {
            let title = it.original.1;
            let cut: String = title.chars().take(LISTED_TITLE_CHARS).collect();
            let more = if cut.len() < title.len() { "…" } else { "" };
            let mark = aside(it.original.0)
                .map(|word| format!(" ({word})"))
                .unwrap_or_default();
            format!("{} {}{more}{mark}", short(it.original.0), quoted(&cut))
        })
        .collect();
    if items.len() > LISTED_ITEMS {
        out.push(format!("and {} more", items.len() - LISTED_ITEMS));
    }
    out.join(", ")
}

/// Whether `q` occurs in `title` starting at the start of a word and, when `whole`,
/// ending at the end of one. Words are runs of letters and digits, so "check-in" is
/// the two words "check" and "in".
fn word_at(title: &str, q: &str, whole: bool) -> bool {
    let is_word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    title.char_indices().any(|(at, _)| {
        let rest = &title[at..];
        rest.starts_with(q)
            && !is_word(title[..at].chars().next_back())
            && (!whole || !is_word(rest[q.len()..].chars().next()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_title_keeps_its_emoji_and_accents_and_shows_what_would_act() {
        assert_eq!(
            quoted("一起散步 🚶\u{200d}♀\u{fe0f} café\u{301}"),
            "\"一起散步 🚶\u{200d}♀\u{fe0f} café\u{301}\""
        );
        assert_eq!(
            quoted("evil\u{202e}txt \"x\"\n\u{1b}[2J"),
            "\"evil\\u{202e}txt \\\"x\\\"\\u{a}\\u{1b}[2J\""
        );
    }

    fn items() -> Vec<(&'static str, String)> {
        vec![
            ("ab12ef00", "Weekly check-in".to_string()),
            ("ab34ef00", "Date night".to_string()),
            ("cd56ef00", "Listen first".to_string()),
            ("ef78ef00", "Weekend walk".to_string()),
        ]
    }

    fn find(q: &str) -> Result<String, ResolveError> {
        resolve("goal", q, items())
    }

    #[test]
    fn an_exact_id_or_a_unique_id_prefix_resolves_in_any_case() {
        assert_eq!(find("cd56ef00"), Ok("cd56ef00".into()));
        assert_eq!(find("cd"), Ok("cd56ef00".into()));
        assert_eq!(find("CD5"), Ok("cd56ef00".into()));
    }

    /// `rate b 2` with "Budget together" and a goal whose id starts with b rated the
    /// other goal: a start of an id is no stronger than the start of a title.
    #[test]
    fn a_query_starting_one_goals_id_and_anothers_title_names_both() {
        let goals = || {
            vec![
                ("b7a1c2d3", "Walk 16920".to_string()),
                ("0c4e5f60", "Budget together".to_string()),
            ]
        };
        let err = resolve("goal", "b", goals()).unwrap_err();
        assert!(matches!(err, ResolveError::Ambiguous { .. }), "{err}");
        let said = err.to_string();
        assert!(
            said.contains("Walk 16920") && said.contains("Budget together"),
            "{said}"
        );
        assert_eq!(resolve("goal", "b7", goals()), Ok("b7a1c2d3".into()));
        assert_eq!(resolve("goal", "bud", goals()), Ok("0c4e5f60".into()));
    }

    #[test]
    fn an_exact_title_resolves_in_any_case() {
        assert_eq!(find("date night"), Ok("ab34ef00".into()));
        assert_eq!(find("  WEEKLY CHECK-IN "), Ok("ab12ef00".into()));
    }

    #[test]
    fn a_unique_start_of_a_title_resolves() {
        assert_eq!(find("weekl"), Ok("ab12ef00".into()));
        assert_eq!(find("Listen f"), Ok("cd56ef00".into()));
    }

    #[test]
    fn a_unique_whole_word_of_a_title_resolves() {
        assert_eq!(find("night"), Ok("ab34ef00".into()));
        assert_eq!(find("check-in"), Ok("ab12ef00".into()));
        assert_eq!(find("walk"), Ok("ef78ef00".into()));
    }

    #[test]
    fn a_unique_start_of_a_word_resolves() {
        assert_eq!(find("check"), Ok("ab12ef00".into()));
        assert_eq!(find("fir"), Ok("cd56ef00".into()));
        assert!(find("eck").is_err(), "the middle of a word is not a match");
    }

    #[test]
    fn accents_need_not_be_typed_but_tell_whole_titles_apart() {
        let items = vec![
            ("aa11", "Café ☕ talk".to_string()),
            ("bb22", "Pêcher".to_string()),
            ("cc33", "Pécher".to_string()),
        ];
        assert_eq!(resolve("goal", "cafe", items.clone()), Ok("aa11".into()));
        assert_eq!(resolve("goal", "TALK", items.clone()), Ok("aa11".into()));
        // The whole title, accents and all, names one; without them, both.
        assert_eq!(resolve("goal", "pécher", items.clone()), Ok("cc33".into()));
        assert!(matches!(
            resolve("goal", "pecher", items),
            Err(ResolveError::Ambiguous { .. })
        ));
    }

    #[test]
    fn stronger_rules_win_over_weaker_ones() {
        let items = vec![
            ("aa11", "Walk".to_string()),
            ("bb22", "Walk the dog".to_string()),
            ("cc33", "Evening walk".to_string()),
            ("dd44", "Talk more".to_string()),
            ("ee55", "dd".to_string()),
        ];
        // The exact title, though another title starts with it and one has it as a word.
        assert_eq!(resolve("goal", "walk", items.clone()), Ok("aa11".into()));
        // An exact title beats a short id prefix ("dd44"); an exact id beats everything.
        assert_eq!(resolve("goal", "DD", items.clone()), Ok("ee55".into()));
        assert_eq!(resolve("goal", "dd44", items.clone()), Ok("dd44".into()));
        // A title's start and a whole word of another title are one rule: both named.
        let rest: Vec<_> = items.into_iter().skip(1).collect();
        let err = resolve("goal", "walk", rest).unwrap_err();
        assert!(
            matches!(&err, ResolveError::Ambiguous { candidates, .. }
                if candidates.contains("Walk the dog") && candidates.contains("Evening walk")),
            "{err:?}"
        );
        // A whole word beats the start of a word.
        let words = vec![
            ("aa11", "Long walking tour".to_string()),
            ("bb22", "Evening walk".to_string()),
        ];
        assert_eq!(resolve("goal", "walk", words), Ok("bb22".into()));
    }

    #[test]
    fn a_title_that_is_the_start_of_another_goals_id_is_ambiguous() {
        let items = vec![
            ("811f0a2b", "Walk".to_string()),
            ("c0ffee00", "811f".to_string()),
        ];
        let err = resolve("goal", "811F", items.clone()).unwrap_err();
        assert!(matches!(err, ResolveError::Ambiguous { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("811f0a2b") && text.contains("c0ffee00"),
            "{text}"
        );
        // More of the id, or the other goal's own id, settles it.
        assert_eq!(
            resolve("goal", "811f0", items.clone()),
            Ok("811f0a2b".into())
        );
        assert_eq!(resolve("goal", "c0ff", items), Ok("c0ffee00".into()));
    }

    #[test]
    fn an_ambiguous_query_lists_the_candidates_and_asks_for_more() {
        let err = find("week").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ResolveError::Ambiguous { .. }), "{text}");
        assert!(
            text.contains(r#"ab12ef00 "Weekly check-in""#)
                && text.contains(r#"ef78ef00 "Weekend walk""#),
            "{text}"
        );
        assert!(!text.contains("Date night"), "only the candidates: {text}");
        assert!(text.contains("type more"), "{text}");
        let err = find("ab").unwrap_err().to_string();
        assert!(
            err.contains("ab12ef00") && err.contains("ab34ef00"),
            "{err}"
        );
    }

    /// A goal archived and begun again under its title: the title names the one not
    /// archived, the id either; with two alike not archived, the error says only the
    /// id can tell them apart.
    #[test]
    fn a_title_shared_with_an_archived_goal_names_the_one_not_archived() {
        let items = || {
            vec![
                ("aa11", "Weekly check-in".to_string()),
                ("bb22", "Weekly check-in".to_string()),
                ("cc33", "Weekly walk".to_string()),
            ]
        };
        let archived = |id: &str| (id == "aa11").then_some("archived");
        let find = |q| resolve_setting_aside("goal", q, items(), &archived);
        assert_eq!(find("weekly check-in"), Ok("bb22".into()));
        assert_eq!(find("check"), Ok("bb22".into()));
        assert_eq!(find("aa1"), Ok("aa11".into()));
        let err = find("weekly").unwrap_err().to_string();
        assert!(
            err.contains(r#"aa11 "Weekly check-in" (archived)"#),
            "{err}"
        );
        assert!(err.contains("type more of the title"), "{err}");
        let twins = resolve("goal", "weekly check-in", items()).unwrap_err();
        assert!(
            twins
                .to_string()
                .contains("titles are the same: give the start of the id"),
            "{twins}"
        );
    }

    #[test]
    fn an_unknown_or_empty_query_lists_what_exists() {
        let err = find("zz").unwrap_err().to_string();
        assert!(err.contains("no goal matches \"zz\""), "{err}");
        // A long title and many goals never make a long error.
        let long = "T".repeat(5_000);
        let many: Vec<(String, String)> = (0..40)
            .map(|i| {
                (
                    format!("{i:032x}"),
                    if i == 0 {
                        long.clone()
                    } else {
                        format!("goal {i}")
                    },
                )
            })
            .collect();
        let cut = resolve(
            "goal",
            "nosuch",
            many.iter().map(|(id, t)| (id.as_str(), t.clone())),
        )
        .unwrap_err()
        .to_string();
        assert!(cut.len() < 600, "{} characters: {cut}", cut.len());
        // Nor a long query (a pasted text in place of a goal's name).
        let pasted = find(&long).unwrap_err().to_string();
        assert!(pasted.len() < 600, "{} characters: {pasted}", pasted.len());
        assert!(cut.contains("and 30 more"), "{cut}");
        // Typed with a combining cedilla, found with the precomposed letter.
        let accents = [("cc33", "Cuddle more, ça va".to_string())];
        assert_eq!(resolve("goal", "c\u{327}a va", accents), Ok("cc33".into()));
        assert!(err.contains("Listen first"), "{err}");
        assert_eq!(find("  "), Err(ResolveError::Empty { what: "goal" }));
        let none = resolve("step", "x", Vec::new()).unwrap_err().to_string();
        assert!(none.contains("there are no steps yet"), "{none}");
    }

    #[test]
    fn titles_in_errors_are_quoted_with_their_control_characters_escaped() {
        let items = vec![
            ("ab12", "Talk\u{1b}[2J".to_string()),
            ("ab34", "Talk more".to_string()),
        ];
        let err = resolve("goal", "talk", items).unwrap_err().to_string();
        assert!(err.contains(r#""Talk\u{1b}[2J""#), "{err}");
        assert!(!err.contains('\u{1b}'), "{err}");
    }
}
