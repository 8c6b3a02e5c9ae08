//! The names people are shown by. A person's name is theirs to choose, so two people of
//! a space can have names that look alike: the same name (a couple of two Alexes), the
//! same in other letter case, or letters of another script that look the same ("Аlex"
//! with a Cyrillic А, chosen by a partner who wants to pass for the other in the
//! history or the therapist's report). Each such person is then shown with the start of
//! their person id ("Alex #2af3"), long enough to tell them apart; everyone else by
//! their name alone. Exports keep the names as written.

use std::collections::BTreeMap;

use crate::model::Person;
use crate::resolve::ResolveError;

/// The fewest hex digits of a person id shown after a name that looks like another's.
const ID_DIGITS: usize = 4;

/// How a name looks: its Unicode skeleton (UTS #39, which maps letters to the letters
/// they are mistaken for), in lower case, letters and digits only (so that spaces,
/// punctuation and invisible characters tell nothing apart).
fn looks(name: &str) -> String {
    unicode_security::confusable_detection::skeleton(name)
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// The name each person is shown by (person id → name), given everyone of the space.
pub fn shown(people: &BTreeMap<String, Person>) -> BTreeMap<String, String> {
    let looks: Vec<(&str, &str, String)> = people
        .iter()
        .map(|(id, p)| (id.as_str(), p.name.as_str(), looks(&p.name)))
        .collect();
    looks
        .iter()
        .map(|(id, name, look)| {
            let alike: Vec<&str> = looks
                .iter()
                .filter(|(other, _, l)| other != id && l == look)
                .map(|(other, _, _)| *other)
                .collect();
            let shown = if alike.is_empty() {
                name.to_string()
            } else {
                format!("{name} #{}", distinct_prefix(id, &alike))
            };
            (id.to_string(), shown)
        })
        .collect()
}

/// The name, as shown, of the one person `query` names (case-insensitively): by the
/// name they are shown by, or by their name as written when only one has it.
pub fn find(people: &BTreeMap<String, Person>, query: &str) -> Result<String, ResolveError> {
    let id = find_id(people, query)?;
    Ok(shown(people).remove(&id).unwrap_or(id))
}

/// The person id of the one person `query` names, as [`find`] finds them.
pub fn find_id(people: &BTreeMap<String, Person>, query: &str) -> Result<String, ResolveError> {
    let query = query.trim();
    let shown = shown(people);
    if let Some((id, _)) = shown.iter().find(|(_, s)| s.eq_ignore_ascii_case(query)) {
        return Ok(id.clone());
    }
    let named: Vec<&str> = people
        .iter()
        .filter(|(_, p)| p.name.eq_ignore_ascii_case(query))
        .map(|(id, _)| id.as_str())
        .collect();
    match named[..] {
        [one] => Ok(one.to_string()),
        [] => Err(ResolveError::Unknown {
            what: "person",
            query: query.to_string(),
            // On one line: a name is a partner's words, and a line break in it printed
            // a line of their own under the error.
            hint: format!(
                "the shared space's people are {}",
                shown
                    .values()
                    .map(|n| one_line(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
        _ => Err(ResolveError::SeveralPeople {
            query: query.to_string(),
            candidates: named
                .iter()
                .filter_map(|id| shown.get(*id))
                .map(|n| one_line(n))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// A person's name on one line, as an error says it: it is their words, and a line
/// break in it printed a line of theirs under the error.
pub fn one_line(name: &str) -> String {
    crate::protocol::one_line(name, 200, ' ')
}

/// The shortest start of `id` (at least [`ID_DIGITS`] characters) that none of
/// `others` starts with: a person id can be chosen to share any short start.
fn distinct_prefix<'a>(id: &'a str, others: &[&str]) -> &'a str {
    let mut n = ID_DIGITS.min(id.len());
    while n < id.len() && others.iter().any(|o| o.get(..n) == id.get(..n)) {
        n += 1;
    }
    id.get(..n).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people(list: &[(&str, &str)]) -> BTreeMap<String, Person> {
        list.iter()
            .map(|(id, name)| {
                (
                    id.to_string(),
                    Person {
                        name: name.to_string(),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn different_names_are_shown_as_written() {
        let shown = shown(&people(&[("aaaa1111", "Alex"), ("bbbb2222", "Sam")]));
        assert_eq!(shown["aaaa1111"], "Alex");
        assert_eq!(shown["bbbb2222"], "Sam");
    }

    #[test]
    fn names_that_look_alike_are_told_apart_by_their_person_ids() {
        for other in [
            "Alex",
            "alex",
            " ALEX ",
            "\u{410}lex",   // Cyrillic А
            "Al\u{435}x",   // Cyrillic е
            "A\u{200b}lex", // a zero-width space inside
            "AIex",         // a capital I for the l
            "\u{1d400}lex", // mathematical bold A
        ] {
            let shown = shown(&people(&[("aaaa1111", "Alex"), ("bbbb2222", other)]));
            assert_eq!(shown["aaaa1111"], "Alex #aaaa", "{other:?}");
            assert_eq!(shown["bbbb2222"], format!("{other} #bbbb"), "{other:?}");
        }
    }

    #[test]
    fn ids_chosen_to_share_a_start_are_shown_until_they_differ() {
        let shown = shown(&people(&[("2af3c1d9e0", "Alex"), ("2af3c1d9f0", "Alex")]));
        assert_eq!(shown["2af3c1d9e0"], "Alex #2af3c1d9e");
        assert_eq!(shown["2af3c1d9f0"], "Alex #2af3c1d9f");
    }
}
