//! What was typed into a refused form is shown back with the refusal: a reflection
//! written for ten minutes is not lost because the relay was down or a field was too
//! long. A page's failure ([`super::server::PageError`]) marks its response with
//! [`Refusal`]; the guard, which read the form, then renders the problem with the texts
//! typed into it (read-only, to copy) and a link back to the page the form came from.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// The form fields people write into, with the words the page shows them under.
const TYPED: &[(&str, &str)] = &[
    ("title", "Title"),
    ("why", "Why it matters"),
    ("text", "Text"),
    ("note", "Note"),
    ("name", "Name"),
];

/// Marks a page's refusal: its status and what it says.
#[derive(Clone)]
pub struct Refusal {
    pub status: StatusCode,
    pub text: String,
}

/// The texts typed into a form (its body), under their labels; empty ones are left out.
pub fn typed(form: &[u8]) -> Vec<(&'static str, String)> {
    url::form_urlencoded::parse(form)
        .filter(|(_, v)| !v.trim().is_empty())
        .filter_map(|(k, v)| {
            TYPED
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, label)| (*label, v.into_owned()))
        })
        .collect()
}

/// The refusal again with what was typed, when the response is a marked refusal and
/// something was typed; otherwise the response as it was.
pub fn keep(resp: Response, typed: &[(&'static str, String)], back: &str) -> Response {
    if typed.is_empty() {
        return resp;
    }
    let Some(refusal) = resp.extensions().get::<Refusal>().cloned() else {
        return resp;
    };
    let page = super::pages::layout::problem_kept(&refusal.text, typed, Some(back));
    (refusal.status, Html(page.into_string())).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_texts_people_write_are_kept() {
        let form = b"csrf=secret&once=abc&text=We+talked+%C3%A9&level=1&title=&why=+";
        assert_eq!(typed(form), vec![("Text", "We talked é".to_string())]);
    }
}
