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
    ("level2", "Level +2"),
    ("level1", "Level +1"),
    ("level0", "Level 0 (expected)"),
    ("level-1", "Level −1"),
    ("level-2", "Level −2"),
    ("code", "Code"),
    ("relay", "Relay address"),
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

/// The refusal again with what was typed and a link back to the page the form came
/// from, when the response is a marked refusal (or a form the page could not read: a
/// field missing, as no page of Duet's sends it); otherwise the response as it was.
pub fn keep(resp: Response, typed: &[(&'static str, String)], back: &str) -> Response {
    let refusal = match resp.extensions().get::<Refusal>().cloned() {
        Some(refusal) => refusal,
        None if unread_form(&resp) => Refusal {
            status: resp.status(),
            text: "this form arrived incomplete (a choice or a field was missing); go back, \
                   fill it in and send it again"
                .to_string(),
        },
        None => return resp,
    };
    // Today is where the plain page leads already: no second link to it.
    let back = Some(back).filter(|b| *b != "/");
    let page = super::pages::layout::problem_kept(&refusal.text, typed, back);
    (refusal.status, Html(page.into_string())).into_response()
}

/// Whether a response is the web framework's plain-text refusal of a form it could not
/// read (axum answers 400/415/422 in `text/plain` before the page runs).
fn unread_form(resp: &Response) -> bool {
    let plain = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/plain"));
    plain && resp.status().is_client_error()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_the_page_could_not_read_becomes_a_calm_page_with_what_was_typed() {
        let raw = (
            StatusCode::UNPROCESSABLE_ENTITY,
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            )],
            "Failed to deserialize form body: missing field `level`",
        )
            .into_response();
        let typed = vec![("Note", "We walked".to_string())];
        let page = keep(raw, &typed, "/checkin");
        assert_eq!(page.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let html = page
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(html.starts_with("text/html"), "{html}");
    }

    #[test]
    fn only_the_texts_people_write_are_kept() {
        let form = b"csrf=secret&once=abc&text=We+talked+%C3%A9&level=1&title=&why=+";
        assert_eq!(typed(form), vec![("Text", "We talked é".to_string())]);
    }
}
