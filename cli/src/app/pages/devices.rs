//! Partner and devices: making an invite for the partner (the code large and as a QR
//! code), a code for another device of one's own, the safety code to compare in person,
//! and every device of the shared space with removing one (asked to confirm first, as
//! `duet device remove` asks). The same application-layer calls as `duet invite`,
//! `duet device` and `duet verify`. The page also holds the open codes
//! ([`super::invites`]), the relay ([`super::relay`]) and leaving ([`super::leave`]).

use crate::app::server::PageQuery;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::Response;
use duet_core::app::{DeviceRow, InviteError, InviteRow, Partner, PartnerRemoval, Safety};
use duet_core::device::DeviceError;
use duet_core::store::Departed;
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

use super::layout::{Nav, csrf};
use crate::app::server::{App, PageResult, see_other};
use crate::bidi::bdi;
use crate::output::when;
use crate::transport::Http;

/// How long an invite or device code made in the app stays valid (as `duet invite`).
const CODE_LIFETIME_MS: i64 = 24 * 3_600_000;

/// How many outcomes of forms are kept for their pages (the oldest are forgotten).
const OUTCOMES_KEPT: usize = 32;

/// What the page's forms made, by the token of the page they redirect to
/// (`/devices?shown=TOKEN`): a reload or a double click shows the same code, and a
/// resent form makes no second one. A code is shown there only while it is open: the
/// address stays in the browser's history, and a code used, withdrawn or expired is
/// nobody's business any more.
#[derive(Default)]
pub struct Outcomes(std::collections::VecDeque<(String, Made)>);

/// Answers a form of this page: what it made is kept, and the browser is sent to the
/// page that shows it.
pub fn done(app: &App, made: Made) -> Response {
    see_other(&format!("/devices?shown={}", remember(app, made)))
}

/// Sends the browser back to `path` with `text` said at the top of the page, in a status
/// line: a person who uses a screen reader lands at the top and hears what the form did
/// (most forms said nothing, and the page looked as before).
pub fn told(app: &App, path: &str, text: impl Into<String>) -> Response {
    let token = remember(app, Made::Notice(text.into()));
    let sep = if path.contains('?') { '&' } else { '?' };
    see_other(&format!("{path}{sep}shown={token}"))
}

/// Keeps what a form made for the page it redirects to; the token names it there.
pub fn remember(app: &App, made: Made) -> String {
    let token = crate::app::once::fresh();
    if let Ok(mut kept) = app.outcomes.lock() {
        kept.0.push_back((token.clone(), made));
        while kept.0.len() > OUTCOMES_KEPT {
            kept.0.pop_front();
        }
    }
    token
}

/// What became of something a form made (a short code used or burned), shown from now
/// on under the same `token`.
pub fn replace(app: &App, token: &str, made: Made) {
    if let Ok(mut kept) = app.outcomes.lock()
        && let Some(slot) = kept.0.iter_mut().find(|(t, _)| t == token)
    {
        slot.1 = made;
    }
}

/// What a form made, kept under `token` (nothing once forgotten or for no token).
pub fn recall(app: &App, token: &str) -> Made {
    app.outcomes
        .lock()
        .ok()
        .and_then(|kept| {
            kept.0
                .iter()
                .find(|(t, _)| !token.is_empty() && t == token)
                .map(|(_, made)| made.clone())
        })
        .unwrap_or(Made::Nothing)
}

/// The `shown` query of a page that shows what a form made.
#[derive(Deserialize, Default)]
pub struct ShownQuery {
    #[serde(default)]
    pub shown: String,
}

/// What the page shows above the rest: a code just made, what a form did, or nothing.
#[derive(Clone)]
pub enum Made {
    Nothing,
    /// An invite for the partner (`invite`) or a device code, and why it has not
    /// reached the relay yet, if it has not.
    Code {
        code: String,
        expires_at: i64,
        invite: bool,
        unsent: Option<String>,
    },
    /// A short code to read aloud, while the partner's device has not used it yet
    /// (`super::short_code`).
    Short {
        code: String,
        relay: String,
        expires_at: i64,
    },
    /// What a form did, in a sentence.
    Notice(String),
    /// What a form did, in a sentence holding people's texts, set apart on the page.
    NoticeApart(String, Vec<String>),
    /// What a form did, and what is not right yet.
    Warning(String),
}

/// What the page reads from the device.
struct Shown {
    /// Whether the code a form made is still open (none for no code).
    code_open: Option<bool>,
    rows: Vec<DeviceRow>,
    safety: Option<Safety>,
    partner: Partner,
    relay: Option<String>,
    invites: Vec<InviteRow>,
    departed: Option<Departed>,
    /// This device was removed from the personal space too.
    personal_gone: bool,
    /// Why this home may start over, if it may, with what has not reached the relay.
    start_over: Option<(duet_core::device::StartOver, duet_core::device::Unsent)>,
}

/// `GET /devices`, with what a form just made when `shown` names it.
pub async fn devices(State(app): State<App>, PageQuery(q): PageQuery<ShownQuery>) -> PageResult {
    let made = recall(&app, &q.shown);
    show(&app, made).await
}

/// The page, with `made` above the rest.
async fn show(app: &App, made: Made) -> PageResult {
    let code = match &made {
        Made::Code { code, .. } => Some(code.clone()),
        _ => None,
    };
    let shown = app
        .with_device(move |dev| {
            let safety = match dev.safety(false) {
                Ok(s) => Some(s),
                Err(DeviceError::NotSynced) => None,
                Err(e) => return Err(e.into()),
            };
            let code_open = match code {
                Some(code) => Some(dev.code_state(&code)? == Some("open")),
                None => None,
            };
            Ok(Shown {
                code_open,
                rows: dev.device_list()?,
                safety,
                partner: dev.partner()?,
                relay: dev.relay()?,
                invites: dev.invites()?,
                departed: dev.departed()?,
                personal_gone: dev.personal_departed()?.is_some(),
                start_over: match dev.may_start_over()? {
                    Some(why) => Some((why, dev.unsent_before_starting_over(why)?)),
                    None => None,
                },
            })
        })
        .await?;
    let Shown {
        code_open,
        rows,
        safety,
        partner,
        relay,
        invites,
        departed,
        personal_gone,
        start_over,
    } = shown;
    let made = match code_open {
        Some(false) => Made::Notice(
            "That code is shown no more: it was used, withdrawn or has expired (Open codes \
             below says which)."
                .into(),
        ),
        _ => made,
    };
    let token = app.csrf().to_string();
    // A device that left (or was removed) can do nothing more here but read.
    let member = departed.is_none();
    let main = html! {
        h1 { "Partner and devices" }
        (made_code(&made))
        @if member {
            (pairing_sections(&partner, &token))
            @if !matches!(partner, Partner::Gone(_)) {
                (safety_section(safety.as_ref(), matches!(partner, Partner::Here(_)), &token))
            }
        }
        section aria-labelledby="list" {
            h2 id="list" { "Devices in your shared space" }
            (device_table(&rows, member.then_some(token.as_str())))
        }
        @if member { (super::invites::section(&invites, &token)) }
        // In no space at all, nothing syncs and a backup brings back a device that can
        // do nothing: what it holds leaves by the export (the leave section's).
        @if member || !personal_gone {
            (super::relay::section(relay.as_deref(), &token))
            (super::backup::section(&token))
        }
        (super::leave::section(departed.as_ref(), personal_gone, &token))
        (super::start_over::section(start_over, &token))
    };
    Ok(app.page("Partner and devices", Nav::Devices, main))
}

/// Inviting the partner (or where they are) and adding a device of one's own.
fn pairing_sections(partner: &Partner, token: &str) -> Markup {
    html! {
        section aria-labelledby="invite" {
            h2 id="invite" { "Invite your partner" }
            @match partner {
                Partner::NotYet => {
                    p { "Make a code and give it to your partner in person or over a channel you both trust. It works once, for 24 hours." }
                    form method="post" action="/devices/invite" {
                        (csrf(token))
                        button type="submit" { "Make an invite code" }
                    }
                    p { "Not side by side? A short code of a number and two words can be read aloud over the phone: it works once, for 10 minutes, while Duet stays open here." }
                    form method="post" action="/devices/short" {
                        (csrf(token))
                        button type="submit" { "Make a short code to read aloud" }
                    }
                }
                Partner::Here(name) => p { "You share this space with " (bdi(name)) "." },
                Partner::Gone(name) => p { (bdi(name)) " is no longer in your shared space (they left, or their last device was removed). It stays yours to read and write. Sharing Duet with someone else starts anew: Start over, at the end of this page." },
            }
        }
        section aria-labelledby="add" {
            h2 id="add" { "Add another device of yours" }
            p { "A device code lets your phone or another computer join both your spaces, your private reflections too: keep it to yourself." }
            form method="post" action="/devices/add" {
                (csrf(token))
                button type="submit" { "Make a device code" }
            }
        }
    }
}

/// What a form did, in its sentence (nothing for a code: `made_code` shows it).
pub fn said(made: &Made) -> Markup {
    match made {
        Made::Notice(text) => html! { p class="notice" role="status" data-result { (text) } },
        Made::NoticeApart(text, texts) => {
            let pieces: Vec<&str> = texts.iter().map(String::as_str).collect();
            html! { p class="notice" role="status" data-result { (crate::bidi::isolated_in(text, &pieces)) } }
        }
        Made::Warning(text) => html! { p class="warning" role="status" data-result { (text) } },
        Made::Nothing | Made::Code { .. } | Made::Short { .. } => html! {},
    }
}

/// A code just made: large, and for an invite also as a QR code.
fn made_code(made: &Made) -> Markup {
    let (code, expires_at, invite, unsent) = match made {
        Made::Nothing | Made::Notice(_) | Made::NoticeApart(..) | Made::Warning(_) => {
            return said(made);
        }
        Made::Short {
            code,
            relay,
            expires_at,
        } => return super::short_code::waiting(code, relay, *expires_at),
        Made::Code {
            code,
            expires_at,
            invite,
            unsent,
        } => (code, *expires_at, *invite, unsent),
    };
    html! {
        section class="made" aria-labelledby="made" {
            @if invite {
                h2 id="made" data-result { "Your invite code" }
                p { "Give it to your partner in person or over a channel you both trust. Anyone who has it can join your shared space until it is used or expires (" (when(expires_at)) ")." }
            } @else {
                h2 id="made" data-result { "Your device code" }
                p { "On your other device, open Duet and choose \"Join with a code\" on its setup page. It expires " (when(expires_at)) "." }
            }
            @if let Some(why) = unsent {
                p class="warning" role="status" { "This code has not reached the relay yet (" (why) "). It works once Duet has synced, which it tries again on its own while the app is open." }
            }
            p class="code" id="made-code" { (code) }
            (super::layout::copy_button("made-code"))
            @if let Some(svg) = qr_svg(code) {
                div class="qr" { (PreEscaped(svg)) }
            }
        }
    }
}

/// The code as an inline SVG QR code (no script, no image request), named for screen
/// readers; none when the code is too long for one.
fn qr_svg(code: &str) -> Option<String> {
    use qrcode::render::svg;
    let qr = qrcode::QrCode::new(code.as_bytes()).ok()?;
    let image = qr
        .render::<svg::Color>()
        .min_dimensions(240, 240)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build();
    // Inline in HTML: no XML declaration; a role and a name for assistive technology.
    let start = image.find("<svg")?;
    Some(image[start..].replacen(
        "<svg",
        "<svg role=\"img\" aria-label=\"QR code of the code above\"",
        1,
    ))
}

/// The safety code and the button that records it matched (once the partner has
/// joined: before, there is no one to compare it with).
fn safety_section(safety: Option<&Safety>, partner_here: bool, token: &str) -> Markup {
    html! {
        section aria-labelledby="safety" {
            h2 id="safety" { "Safety code" }
            @match safety {
                None => p class="muted" { "Not known until this device has synced with your partner's." },
                Some(_) if !partner_here => p class="muted" { "Once your partner has joined, you compare a code here with the one on their device, in person." },
                Some(s) => {
                    p { "Compare it with the one on your partner's device, in person. If both show the same code, no one else's device is in your shared space." }
                    p class="code" id="safety-code" { (s.code) }
                    p class="muted" { "It covers " (duet_core::words::count(s.devices, "device", "devices")) "." }
                    @if s.verified {
                        p class="notice" { "Verified: you compared this code in person. Compare again whenever you like." }
                    }
                    form method="post" action="/devices/verify" {
                        (csrf(token))
                        // The code compared: a device that joined since is not confirmed.
                        input type="hidden" name="code" value=(s.code);
                        button type="submit" { "We compared it and it matches" }
                    }
                }
            }
        }
    }
}

/// The devices, with a Remove button each (but this one) when `token` is given, under
/// its state.
fn device_table(rows: &[DeviceRow], token: Option<&str>) -> Markup {
    html! {
        table class="devices" {
            thead { tr { th scope="col" { "Whose" } th scope="col" { "Device" } th scope="col" { "Joined" } th scope="col" { "State" } } }
            tbody {
                @for r in rows {
                    @let short = crate::output::short_key(&r.device);
                    tr {
                        td dir="auto" { (r.name.as_deref().unwrap_or("unknown")) }
                        td { code { (short) } }
                        td { (when(r.joined_ms)) }
                        td {
                            @if r.left { "left" }
                            @else if r.reads_personal { "removed from the shared space; it still reads your private reflections" }
                            @else if r.removed { "removed" }
                            @else if r.this_device { "this device" }
                            @else if r.verified { "verified" }
                            @else { "not verified" }
                            @if r.this_device && (r.left || r.removed || r.reads_personal) { " (this device)" }
                            // Under the state, not in a column of its own: the table then
                            // fits a phone's width.
                            @if let Some(token) = token.filter(|_| (!r.removed || r.reads_personal) && !r.this_device) {
                                form method="post" class="inline" action=(format!("/devices/{short}/remove")) {
                                    (csrf(token))
                                    button type="submit" aria-label=(format!("Remove device {short}")) { "Remove…" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `POST /devices/invite`: as `duet invite` (announced to the relay first).
pub async fn invite(State(app): State<App>) -> PageResult {
    let made = app
        .with_device(|dev| {
            let made = dev.invite_partner(&Http::new()?, CODE_LIFETIME_MS);
            // A clock that far behind is why a code failed, whatever else the sync saw
            // (the live sync of this app, at the same moment, could leave the code's
            // event unsent: "the relay took the code but does not hold it").
            // (A refused code is withdrawn already; one not sent is withdrawn below.)
            if matches!(made, Err(InviteError::Refused(_)))
                && let Some(behind) = crate::relay_clock::behind_by(dev.now(), CODE_LIFETIME_MS)
            {
                anyhow::bail!(clock_behind(&behind));
            }
            let made = code_made(made.map(|c| (c.encode(), c.expires_at)), true)?;
            let dead = match &made {
                Made::Code {
                    code, expires_at, ..
                } => crate::commands::invite::withdrawn_if_dead(dev, code, *expires_at),
                _ => None,
            };
            if let Some(behind) = dead {
                anyhow::bail!(clock_behind(&behind));
            }
            Ok(made)
        })
        .await?;
    Ok(done(&app, made))
}

/// Why a code made on a clock `behind` the relay's by more than its life was withdrawn.
fn clock_behind(behind: &str) -> String {
    format!(
        "this computer's clock is {behind} behind the relay's, so the code would have \
         expired before your partner could use it, and was withdrawn; set this computer's \
         clock right (automatic time), then make a new code (if it is right already, the \
         relay's clock is wrong: ask its operator to set it)"
    )
}

/// `POST /devices/add`: as `duet device add`.
pub async fn add(State(app): State<App>) -> PageResult {
    let made = app
        .with_device(|dev| {
            let made = dev.invite_own_device(&Http::new()?, CODE_LIFETIME_MS);
            code_made(made.map(|c| (c.encode(), c.expires_at)), false)
        })
        .await?;
    Ok(done(&app, made))
}

/// A code made (also one not sent yet: it works once a sync sends it, which the app
/// does on its own), or why none could be made, in the app's words.
fn code_made(made: Result<(String, i64), InviteError>, invite: bool) -> anyhow::Result<Made> {
    let (code, expires_at, unsent) = match made {
        Ok((code, expires_at)) => (code, expires_at, None),
        Err(InviteError::Unsent {
            code,
            expires_at,
            source,
        }) => (
            code,
            expires_at,
            Some(crate::app::advice::message(source.as_ref())),
        ),
        Err(InviteError::Refused(w)) => {
            anyhow::bail!(
                "the code was made but the relay refused it, so it could not be used: {}",
                crate::app::advice::warning(&w)
            )
        }
        Err(e @ InviteError::Make(_)) => anyhow::bail!(crate::app::advice::message(&e)),
    };
    Ok(Made::Code {
        code,
        expires_at,
        invite,
        unsent,
    })
}

/// The verify form: the code the page showed.
#[derive(Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    code: String,
}

/// `POST /devices/verify`: as `duet verify --confirm CODE`, with the code the page
/// showed: if a device joined or left since, nothing is confirmed and the page says so.
pub async fn verify(State(app): State<App>, Form(f): Form<VerifyForm>) -> PageResult {
    let safety = app
        .with_device(move |dev| Ok(dev.confirm_safety(Some(Some(&f.code)))?))
        .await?;
    // The page this leads to says so at once, not after the live thread's next look.
    if safety.verified
        && let Ok(mut live) = app.live.lock()
    {
        live.unverified = false;
    }
    Ok(see_other("/devices"))
}

/// `POST /devices/{key}/remove`: first the page saying what it means
/// (`GET /devices/{key}/remove/confirm`, a page of its own, so that Back and reload
/// work), then (with `confirm=yes`) the removal from both spaces, as `duet device
/// remove --yes`.
pub async fn remove(
    State(app): State<App>,
    Path(key): Path<String>,
    Form(f): Form<super::confirm::Confirmed>,
) -> PageResult {
    let confirmed = f.yes();
    let query = key.clone();
    let asked = app
        .with_device(move |dev| {
            // Learn about devices that joined since the last sync; offline, use what is known.
            if let Ok(http) = Http::new() {
                let _ = dev.sync(&http);
            }
            let device = dev.find_device(&query)?;
            if !confirmed {
                return Ok(None);
            }
            dev.remove_device_everywhere(&device)?;
            // Recorded here either way; the live sync sends it once the relay answers.
            let not_sent = |why: &str| {
                Made::Warning(format!(
                    "The device is removed on this device, but the relay does not have the removal yet ({why}); until it does, that device can still sync. Duet sends it on its own once the relay answers."
                ))
            };
            Ok(Some(match dev.sync(&Http::new()?) {
                Ok(_) if dev.unsent_removals()? > 0 => not_sent("the relay refused it"),
                Ok(_) => Made::Notice("The device is removed.".into()),
                Err(e) => not_sent(&crate::app::advice::message(&e)),
            }))
        })
        .await?;
    match asked {
        None => Ok(see_other(&format!("/devices/{key}/remove/confirm"))),
        Some(made) => Ok(done(&app, made)),
    }
}

/// `GET /devices/{key}/remove/confirm`: the question, saying what the removal means.
pub async fn remove_question(State(app): State<App>, Path(key): Path<String>) -> PageResult {
    let query = key.clone();
    let partner = app
        .with_device(move |dev| match dev.find_device(&query) {
            Ok(device) => Ok(Some(dev.partner_removal(&device)?)),
            // Reached again with Back after the removal (or the device left meanwhile).
            Err(
                duet_core::device::DeviceError::NoSuchDevice(_)
                | duet_core::device::DeviceError::DeviceGone(_),
            ) => Ok(None),
            Err(e) => Err(e.into()),
        })
        .await?;
    match partner {
        Some(partner) => Ok(confirm_page(&app, &key, partner.as_ref())),
        None => {
            let main = html! {
                h1 { "Remove a device" }
                p { "This device is not in the space any more: it was removed already, or it left." }
                p { a href="/devices" { "Back to the devices" } }
            };
            Ok(app.page("Remove a device", Nav::Devices, main))
        }
    }
}

/// Asks before removing, saying what it means (the words of `duet device remove`).
fn confirm_page(app: &App, key: &str, partner: Option<&PartnerRemoval>) -> Response {
    let what = match partner {
        None => "This is one of your own devices: it will no longer read or write your spaces."
            .to_string(),
        Some(p) if p.last_device => format!(
            "This is {0}'s only device: {0} will no longer be able to read or write your shared space, for good, as after a leave: no backup or new device of {0}'s comes back into it, and it takes no other partner (they keep what their device already holds). If {0} has only lost this device, {0} brings it back from a backup instead. Talk with {0} first.",
            p.name
        ),
        Some(p) => format!(
            "This is one of {}'s devices: it will no longer read or write your shared space.",
            p.name
        ),
    };
    let main = html! {
        h1 {
            @match partner {
                Some(p) => { "Remove " (bdi(&p.name)) "'s device " code { (key) } "?" }
                None => { "Remove your device " code { (key) } "?" }
            }
        }
        p class="warning" { (crate::bidi::isolated_in(&what, &[partner.map_or("", |p| p.name.as_str())])) }
        form method="post" action=(format!("/devices/{key}/remove")) {
            (csrf(app.csrf()))
            input type="hidden" name="confirm" value="yes";
            button type="submit" class="danger" { "Yes, remove it" }
        }
        p { a href="/devices" { "No, keep it" } }
    };
    app.page("Remove a device", Nav::Devices, main)
}
