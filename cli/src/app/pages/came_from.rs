//! The page a reflection's forms were sent from (the list of reflections widened to older
//! ones, or a goal's page), carried in each form's address: the answer leads back there,
//! where it led to the list's first page and the reflection acted on was out of sight.

use serde::Deserialize;

/// Where a form was sent from: `?pages=N` (the list showing N pages of each section) or
/// `?from_goal=ID` (that goal's page); neither for the list as it first opens.
#[derive(Deserialize, Default, Clone, Debug, PartialEq)]
pub struct CameFrom {
    #[serde(default)]
    pages: Option<String>,
    #[serde(default)]
    from_goal: Option<String>,
}

impl CameFrom {
    /// The list of reflections showing `pages` pages.
    pub fn list(pages: usize) -> Self {
        CameFrom {
            pages: (pages > 1).then(|| pages.to_string()),
            from_goal: None,
        }
    }

    /// A goal's page.
    pub fn goal(id: &str) -> Self {
        CameFrom {
            pages: None,
            from_goal: Some(id.to_string()),
        }
    }

    /// The page to lead back to. Only Duet's own pages: what the address holds was
    /// written by a page, but an address can be edited by hand.
    pub fn page(&self) -> String {
        if let Some(id) = self.from_goal.as_deref().filter(|id| plain(id)) {
            return format!("/goals/{id}");
        }
        match self.pages.as_deref().and_then(|p| p.parse::<usize>().ok()) {
            Some(n) if n > 1 => format!("/reflections?pages={n}"),
            _ => "/reflections".to_string(),
        }
    }

    /// A form's `action`: `path` with where the form is on.
    pub fn action(&self, path: &str) -> String {
        let page = self.page();
        match (page.strip_prefix("/goals/"), page.split_once('?')) {
            (Some(id), _) => format!("{path}?from_goal={id}"),
            (None, Some((_, query))) => format!("{path}?{query}"),
            (None, None) => path.to_string(),
        }
    }
}

/// An id that can stand in an address as it is (ids are made by devices; a partner could
/// write any text in one).
fn plain(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_sent_from_older_reflections_leads_back_to_them() {
        let from = CameFrom::list(3);
        assert_eq!(
            from.action("/reflections/r1/reply"),
            "/reflections/r1/reply?pages=3"
        );
        assert_eq!(from.page(), "/reflections?pages=3");
        assert_eq!(CameFrom::list(1).action("/x"), "/x");
        assert_eq!(CameFrom::list(1).page(), "/reflections");
    }

    #[test]
    fn a_form_sent_from_a_goal_page_leads_back_to_it() {
        let from = CameFrom::goal("g-1");
        assert_eq!(
            from.action("/reflections/r1/edit"),
            "/reflections/r1/edit?from_goal=g-1"
        );
        assert_eq!(from.page(), "/goals/g-1");
    }

    #[test]
    fn an_address_edited_by_hand_leads_only_to_duets_own_pages() {
        for from_goal in ["//evil.example", "../devices", "a?b", ""] {
            let from = CameFrom {
                pages: None,
                from_goal: Some(from_goal.into()),
            };
            assert_eq!(from.page(), "/reflections", "{from_goal}");
        }
        let from = CameFrom {
            pages: Some("2x".into()),
            from_goal: None,
        };
        assert_eq!(from.page(), "/reflections");
    }
}
