//! Open invites on the Partner and devices page: each invite or device code still able to
//! admit someone, with a button that withdraws it, as `duet invite list` and
//! `duet invite revoke ID` do (the same core calls; the revocation is sent at once, since
//! until the relay has it a join with the code could still be served).

use axum::extract::{Path, State};
use duet_core::app::{InviteRow, RevokeTarget};
use duet_core::device::DeviceError;
use maud::{Markup, html};

use super::devices::{Made, done};
use super::layout::csrf;
use crate::app::server::{App, PageResult};
use crate::output::when;
use crate::transport::Http;

/// The open invites with their revoke buttons; nothing when none is open.
pub fn section(rows: &[InviteRow], token: &str) -> Markup {
    // A device code is one invite in each space: listed once, withdrawn whole. The
    // partner's device codes are theirs: withdrawn here, their other half stayed open.
    let open: Vec<&InviteRow> = rows
        .iter()
        .filter(|r| r.state == "open" && !(r.space == "personal" && r.pair.is_some()))
        .filter(|r| !r.others_device_code)
        .collect();
    if open.is_empty() {
        return html! {};
    }
    html! {
        section aria-labelledby="open-invites" {
            h2 id="open-invites" { "Open codes" }
            p { "Anyone who has one of these codes can still join until it is used or expires. Withdraw a code you gave out by mistake, or one that may have been seen." }
            ul class="invites" {
                @for r in open {
                    @let short = &r.id[..12.min(r.id.len())];
                    li {
                        @if r.kind == "device" { "Device code " } @else { "Partner invite " }
                        code { (short) }
                        " made by " (crate::bidi::bdi(&r.issued_by)) ", expires " (when(r.expires_ms)) " "
                        form method="post" class="inline" action=(format!("/invites/{short}/revoke")) {
                            (csrf(token))
                            button type="submit" aria-label=(format!("Withdraw code {short}")) { "Withdraw" }
                        }
                    }
                }
            }
        }
    }
}

/// `POST /invites/{id}/revoke`: as `duet invite revoke ID` (a sync first to learn which
/// codes were used meanwhile, then the revocation, sent at once).
pub async fn revoke(State(app): State<App>, Path(id): Path<String>) -> PageResult {
    let revoked = app
        .with_device(move |dev| {
            let http = Http::new()?;
            // Offline, what this device knows is revoked and sent with a later sync.
            let _ = dev.sync(&http);
            let revoked = match dev.revoke_invites(&RevokeTarget::Id(id)) {
                // Used, expired or withdrawn since the page was shown.
                Err(DeviceError::NoSuchInvite(_)) => Vec::new(),
                r => r?,
            };
            let sent = dev.sync(&http).is_ok() && dev.unsent_revocations()? == 0;
            Ok((revoked.len(), sent))
        })
        .await?;
    let made = match revoked {
        (0, _) => Made::Notice("That code is no longer open (used, expired or withdrawn already): nothing to withdraw.".into()),
        (_, true) => Made::Notice("The code is withdrawn: nobody can join with it now.".into()),
        (_, false) => Made::Warning(
            "The code is withdrawn on this device, but the relay does not have it yet: until it does, someone with the code could still join. Duet sends it with its next sync; keep the app open until the relay is reachable."
                .into(),
        ),
    };
    Ok(done(&app, made))
}
