//! Reflections: the shared ones with their replies (reply to each), and apart from them
//! the private ones, marked "only on your devices"; a form to write one.

use crate::app::server::PageQuery;
use axum::Form;
use axum::extract::{Path, State};
use duet_core::app::{ReflectionInput, ReflectionItem, ReflectionQuery};
use maud::{Markup, html};
use serde::Deserialize;

use super::came_from::CameFrom;
use super::devices::told;
use super::layout::{Nav, csrf};
use super::today::iso_when;
use crate::app::server::{App, PageResult};
use duet_core::store::SpaceKind;

/// The reflections each section shows (the newest), and as many more at each "Show older
/// reflections": two years of weekly ones made a page of 634 KB.
const SHOWN: usize = 50;

/// The most times "Show older reflections" widens the page (10,000 a section).
const MOST_PAGES: usize = 200;

/// `?goal=ID` preselects the goal of a new reflection; `?pages=N` shows N times
/// [`SHOWN`] reflections of each section.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    goal: Option<String>,
    pages: Option<usize>,
    /// What a form did (`super::devices::told`).
    #[serde(default)]
    shown: String,
}

/// `GET /reflections`.
pub async fn list(State(app): State<App>, PageQuery(q): PageQuery<ListQuery>) -> PageResult {
    let (shared, private, goals, me) = app
        .with_device(|dev| {
            let shared = dev.reflections(&ReflectionQuery::default())?;
            let private = dev.reflections(&ReflectionQuery {
                private: true,
                ..ReflectionQuery::default()
            })?;
            let goals: Vec<(String, String)> = dev
                .goals(false)?
                .goals
                .iter()
                .map(|g| (g.id.clone(), g.title.as_str().to_string()))
                .collect();
            let member = (
                dev.member_of(SpaceKind::Shared)?,
                dev.member_of(SpaceKind::Personal)?,
            );
            Ok((
                shared,
                private,
                goals,
                (dev.me.person_id.to_string(), member),
            ))
        })
        .await?;
    let (me, (shared_member, personal_member)) = me;
    let token = app.csrf().to_string();
    // A space this device left or was removed from takes no more writes: no forms for it.
    let forms = |member: bool| member.then_some(token.as_str());
    let pages = q.pages.unwrap_or(1).clamp(1, MOST_PAGES);
    let shown = SHOWN * pages;
    let more = (shared.len() > shown || private.len() > shown) && pages < MOST_PAGES;
    let from = CameFrom::list(pages);
    let main = html! {
        h1 { "Reflections" }
        (super::devices::said(&super::devices::recall(&app, &q.shown)))
        @if shared_member || personal_member {
            (write_form(&goals, q.goal.as_deref(), &token, shared_member))
        } @else {
            p class="muted" { "This device is no longer in your spaces: it keeps what it holds, to read." }
        }
        section aria-labelledby="shared" class="shared" {
            h2 id="shared" { "Shared with your partner" }
            @if shared.is_empty() { p class="muted" { "None yet." } }
            @for r in shared.iter().rev().take(shown) { (thread(r, &me, forms(shared_member), &from)) }
        }
        section aria-labelledby="private" class="private" {
            h2 id="private" { "Private: only on your devices" }
            p class="muted" { "Your partner never sees these; they stay on your own devices." }
            @if private.is_empty() { p class="muted" { "None yet." } }
            @for r in private.iter().rev().take(shown) { (item(r, &me, forms(personal_member), &from)) }
        }
        @if more { (older(q.goal.as_deref(), pages + 1)) }
    };
    Ok(app.page("Reflections", Nav::Reflections, main))
}

/// "Show older reflections": the same page with `pages` times [`SHOWN`] of each section
/// (a form, so that it works without script, as every page does).
fn older(goal: Option<&str>, pages: usize) -> Markup {
    html! {
        form method="get" action="/reflections" class="older" {
            @if let Some(g) = goal { input type="hidden" name="goal" value=(g); }
            input type="hidden" name="pages" value=(pages);
            button type="submit" { "Show older reflections" }
        }
    }
}

/// One reflection and what it is about; its author may edit or withdraw it (with the
/// page's `forms` token, none where this device may no longer write), each form leading
/// back to the page it is on (`from`).
fn item(r: &ReflectionItem, me: &str, forms: Option<&str>, from: &CameFrom) -> Markup {
    html! {
        div class="reflection" {
            p class="meta" {
                strong { (crate::bidi::bdi(&r.author_name)) } " · " (iso_when(&r.at))
                @if r.dated_ahead { span class="muted" { " (dated ahead of this device's clock)" } }
                @if let Some(t) = &r.goal_title { " · about " a href=(format!("/goals/{}", r.goal.as_deref().unwrap_or(""))) { (crate::bidi::bdi(t)) } }
                @if r.private { " · " span class="private-mark" { "only on your devices" } }
                @if r.edited_at.is_some() { span class="muted" { " (edited)" } }
                @if r.answers_withdrawn { span class="muted" { " · a reply to a reflection that was withdrawn" } }
            }
            @if let Some(p) = &r.prompt { p class="muted" { (p) } }
            blockquote { (r.text) }
            @if let (true, Some(token)) = (r.author == me, forms) {
                (super::edit::reflection_form(&r.id, &r.text, token, from))
                form method="post" class="inline" action=(from.action(&format!("/reflections/{}/withdraw", r.id)))
                    data-confirm=(WITHDRAW_MEANS) {
                    (csrf(token))
                    (super::confirm::field())
                    button type="submit" aria-label=(format!("Withdraw the reflection “{}”", first_words(&r.text))) { "Withdraw" }
                }
            }
        }
    }
}

/// A shared reflection with its replies and a reply form (with `forms` and `from`, as
/// [`item`]).
pub fn thread(r: &ReflectionItem, me: &str, forms: Option<&str>, from: &CameFrom) -> Markup {
    html! {
        article class="thread" id=(format!("r-{}", r.id)) {
            (item(r, me, forms, from))
            @if !r.replies.is_empty() {
                div class="replies" { @for reply in &r.replies { (item(reply, me, forms, from)) } }
            }
            // A reply whose reflection was withdrawn has no thread to answer in.
            @if let Some(token) = forms.filter(|_| !r.answers_withdrawn) { form method="post" action=(from.action(&format!("/reflections/{}/reply", r.id))) class="reply" {
                (csrf(token))
                @let id = format!("reply-{}", r.id);
                label for=(id) { "Reply" span class="visually-hidden" { " to “" (first_words(&r.text)) "”" } }
                textarea id=(id) name="text" rows="2" required {}
                button type="submit" { "Send the reply" }
            } }
        }
    }
}

/// Writing a reflection: shared by default, private when asked; only private once this
/// device is no longer in the shared space (`shared` false).
fn write_form(goals: &[(String, String)], goal: Option<&str>, token: &str, shared: bool) -> Markup {
    html! {
        form method="post" action="/reflections" class="write" {
            (csrf(token))
            h2 { "Write a reflection" }
            label for="text" { "What is on your mind?" }
            textarea id="text" name="text" rows="4" required {}
            label for="goal" { "About a goal (optional)" }
            select id="goal" name="goal" {
                option value="" { "No goal in particular" }
                @for (id, title) in goals {
                    option value=(id) selected[goal == Some(id.as_str())] { (title) }
                }
            }
            @if shared {
                div class="check" {
                    input type="checkbox" id="write-private" name="private" value="on";
                    label for="write-private" { "Private: keep it only on my devices" }
                }
            } @else {
                input type="hidden" name="private" value="on";
                p class="muted" { "You are no longer in the shared space: it stays only on your devices." }
            }
            button type="submit" { "Save the reflection" }
        }
    }
}

/// A new reflection.
#[derive(Deserialize)]
pub struct WriteForm {
    text: String,
    #[serde(default)]
    goal: String,
    #[serde(default)]
    private: Option<String>,
}

/// `POST /reflections`.
pub async fn write(State(app): State<App>, Form(f): Form<WriteForm>) -> PageResult {
    let input = ReflectionInput {
        text: f.text.trim().to_string(),
        goal: Some(f.goal).filter(|g| !g.is_empty()),
        prompt: None,
        private: f.private.is_some(),
    };
    let private = input.private;
    app.with_device(move |dev| Ok(dev.reflect(input)?)).await?;
    let said = if private {
        "Your private reflection is saved: only your devices hold it."
    } else {
        "Your reflection is saved."
    };
    Ok(told(&app, "/reflections", said))
}

/// A reply's text.
#[derive(Deserialize)]
pub struct ReplyForm {
    text: String,
}

/// `POST /reflections/{id}/reply`.
pub async fn reply(
    State(app): State<App>,
    Path(id): Path<String>,
    PageQuery(from): PageQuery<CameFrom>,
    Form(f): Form<ReplyForm>,
) -> PageResult {
    if f.text.trim().is_empty() {
        return Err(anyhow::anyhow!("the reply is empty; write something first").into());
    }
    app.with_device(move |dev| Ok(dev.reply(&id, &f.text)?))
        .await?;
    Ok(told(&app, &from.page(), "Your reply is saved."))
}

/// The start of a reflection, to tell its buttons and fields from the others' to a
/// screen reader ("Withdraw", "Reply" and "Edit" repeat down the page).
pub fn first_words(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    let words = crate::output::clip(line, 40);
    match line.len() < text.trim_end().len() && !words.ends_with('…') {
        true => format!("{words}…"),
        false => words.into_owned(),
    }
}

/// What withdrawing a reflection does, asked before it is done.
const WITHDRAW_MEANS: &str = "Withdraw this reflection? Its words leave every page and cannot be brought back, but they stay in the history kept on every device of the space.";

/// `POST /reflections/{id}/withdraw`: as `duet reflect --withdraw`; only the author's
/// own; asked first (`super::confirm`).
pub async fn withdraw(
    State(app): State<App>,
    Path(id): Path<String>,
    PageQuery(from): PageQuery<CameFrom>,
    Form(f): Form<super::confirm::Confirmed>,
) -> PageResult {
    if !f.yes() {
        let wanted = id.clone();
        let text = app
            .with_device(move |dev| {
                let mut all = dev.reflections(&ReflectionQuery::default())?;
                all.extend(dev.reflections(&ReflectionQuery {
                    private: true,
                    ..ReflectionQuery::default()
                })?);
                Ok(all
                    .iter()
                    .flat_map(|r| std::iter::once(r).chain(&r.replies))
                    .find(|r| r.id == wanted)
                    .map(|r| r.text.clone()))
            })
            .await?;
        let what = html! {
            p class="warning" { (WITHDRAW_MEANS) }
            @if let Some(text) = text { blockquote { (text) } }
        };
        return Ok(super::confirm::page(
            &app,
            Nav::Reflections,
            ("Withdraw this reflection?", what),
            &from.action(&format!("/reflections/{id}/withdraw")),
            "Yes, withdraw it",
            &from.page(),
        ));
    }
    app.with_device(move |dev| Ok(dev.withdraw_reflection(&id, false)?))
        .await?;
    Ok(told(
        &app,
        &from.page(),
        "The reflection is withdrawn: its words left every page.",
    ))
}
