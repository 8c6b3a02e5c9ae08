//! Finding a goal or step from what a user typed: a unique id prefix or, for goals, the
//! exact title (case-insensitive).

/// Why a reference did not name exactly one item.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ResolveError {
    /// Nothing matched.
    #[error("no {what} matches {query:?}; {hint}")]
    Unknown {
        /// "goal" or "step".
        what: &'static str,
        /// What the user typed.
        query: String,
        /// Which ones exist.
        hint: String,
    },
    /// Several matched.
    #[error("{query:?} matches several {what}s: {candidates}; type more of the id")]
    Ambiguous {
        /// "goal" or "step".
        what: &'static str,
        /// What the user typed.
        query: String,
        /// `id  title` of each candidate.
        candidates: String,
    },
}

/// Resolves `query` among `(id, title)` pairs.
pub fn resolve<'a>(
    what: &'static str,
    query: &str,
    items: impl IntoIterator<Item = (&'a str, String)>,
) -> Result<String, ResolveError> {
    let items: Vec<(&str, String)> = items.into_iter().collect();
    let q = query.trim();
    if let Some((id, _)) = items.iter().find(|(id, _)| *id == q) {
        return Ok((*id).to_string());
    }
    let mut matches: Vec<&(&str, String)> = if q.is_empty() {
        Vec::new()
    } else {
        items
            .iter()
            .filter(|(id, _)| id.starts_with(&q.to_ascii_lowercase()))
            .collect()
    };
    if matches.is_empty() {
        matches = items
            .iter()
            .filter(|(_, title)| title.trim().eq_ignore_ascii_case(q))
            .collect();
    }
    match matches.as_slice() {
        [one] => Ok(one.0.to_string()),
        [] => {
            let hint = if items.is_empty() {
                format!("there are no {what}s yet")
            } else {
                format!(
                    "known {what}s: {}",
                    items
                        .iter()
                        .map(|(id, t)| format!("{} {t:?}", crate::ids::short(id)))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            Err(ResolveError::Unknown {
                what,
                query: q.to_string(),
                hint,
            })
        }
        many => Err(ResolveError::Ambiguous {
            what,
            query: q.to_string(),
            candidates: many
                .iter()
                .map(|(id, t)| format!("{id} {t:?}"))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Vec<(&'static str, String)> {
        vec![
            ("ab12", "Weekly check-in".to_string()),
            ("ab34", "Date night".to_string()),
            ("cd56", "Listen first".to_string()),
        ]
    }

    #[test]
    fn a_unique_prefix_or_exact_title_resolves() {
        assert_eq!(resolve("goal", "cd", items()), Ok("cd56".into()));
        assert_eq!(resolve("goal", "date night", items()), Ok("ab34".into()));
    }

    #[test]
    fn ambiguous_and_unknown_references_list_candidates() {
        let err = resolve("goal", "ab", items()).unwrap_err().to_string();
        assert!(err.contains("ab12") && err.contains("ab34"), "{err}");
        let err = resolve("goal", "zz", items()).unwrap_err().to_string();
        assert!(err.contains("Listen first"), "{err}");
    }
}
