//! Report: the therapist report exactly as `duet report --html` renders it (the same
//! data call and the same page), opened on its own (`/report/print`) for the browser to
//! print or save; the app's page says what it holds and offers a print button.

use crate::app::server::PageQuery;
use axum::extract::State;
use axum::response::{Html, IntoResponse};
use duet_core::app::ReportQuery;
use maud::html;
use serde::Deserialize;

use super::layout::Nav;
use crate::app::server::{App, PageResult};

/// `?private=on` adds this person's own private reflections, as `--include-private`.
#[derive(Deserialize, Default)]
pub struct ReportOptions {
    private: Option<String>,
}

/// `GET /report`.
pub async fn report(State(app): State<App>) -> PageResult {
    let main = html! {
        h1 { "Report for your therapist" }
        p {
            "The report puts every goal, both partners' ratings over time with their notes, "
            "the steps and the shared reflections on one printable page to hand over or print."
        }
        p class="actions" {
            a href="/report/print" id="open-report" { "Open the report" }
            " "
            button type="button" class="print" data-print="/report/print" hidden { "Print the report" }
        }
        form method="get" action="/report/print" {
            div class="check" {
                input type="checkbox" id="private" name="private" value="on";
                label for="private" { "Also include my private reflections (never my partner's); the report then says so at the top" }
            }
            button type="submit" { "Open the report with them" }
        }
        p class="muted" { "In the report, your browser's Print (Ctrl+P) can also save it as a PDF." }
    };
    Ok(app.page("Report", Nav::Report, main))
}

/// `GET /report/print`: the report's own page.
pub async fn printable(
    State(app): State<App>,
    PageQuery(o): PageQuery<ReportOptions>,
) -> PageResult {
    let query = ReportQuery {
        goal: None,
        since: None,
        include_private: o.private.is_some(),
    };
    let data = app.with_device(move |dev| Ok(dev.report(&query)?)).await?;
    Ok(Html(crate::commands::report::page(&data).into_string()).into_response())
}
