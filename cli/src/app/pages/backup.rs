//! Backing up and bringing back a device from the app, as `duet backup` and `duet
//! restore` do, with the same core calls: the backup is sealed in memory under a
//! passphrase typed twice and handed to the browser as a download (the home gets no
//! file); on the setup page of a home without a device, a lost device is brought back
//! from an uploaded backup file and its passphrase (a multipart form: the guard reads
//! its CSRF token there, `crate::app::security`).

use axum::Form;
use axum::extract::{Multipart, State};
use axum::http::header;
use axum::response::IntoResponse;
use duet_core::backup::{self, BackupError};
use duet_core::device::Device;
use maud::{Markup, html};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::devices::{Made, done};
use super::layout::csrf;
use crate::app::server::{App, PageError, PageResult};
use crate::output::when;
use crate::transport::Http;

/// The backup section of the Partner and devices page.
pub fn section(token: &str) -> Markup {
    html! {
        section aria-labelledby="backup" {
            h2 id="backup" { "Back up this device" }
            p { "A backup holds this device's keys and everything it holds, sealed under a passphrase. If this device is lost, open Duet on the new one and choose “Bring back a lost device” with the file and the passphrase. Keep the two apart: together they are this device." }
            form method="post" action="/backup" class="setup" {
                (csrf(token))
                label for="backup-passphrase" { "Passphrase (at least 10 characters: several words)" }
                input id="backup-passphrase" name="passphrase" type="password" required minlength="10" autocomplete="new-password";
                label for="backup-again" { "The same passphrase again" }
                input id="backup-again" name="again" type="password" required minlength="10" autocomplete="new-password";
                button type="submit" { "Download a backup" }
            }
        }
    }
}

/// The restore section of the setup page (a home without a device).
pub fn restore_section(token: &str) -> Markup {
    html! {
        h2 { "Bring back a lost device" }
        p { "If you backed up a device that is now lost, bring it back here from the backup file and its passphrase: it continues where the backup left off, and reads the rest from the relay." }
        form method="post" action="/setup/restore" enctype="multipart/form-data" class="setup" {
            (csrf(token))
            label for="restore-file" { "The backup file" }
            input id="restore-file" name="backup" type="file" required;
            label for="restore-passphrase" { "Its passphrase" }
            input id="restore-passphrase" name="passphrase" type="password" required autocomplete="current-password";
            label for="restore-relay" { "The relay's new address (only if it moved since the backup)" }
            input id="restore-relay" name="relay" type="url" placeholder="https://relay.example.org" autocomplete="off";
            label for="restore-token" { "The relay's creation token (only if the backed-up device had a wrong one, or none)" }
            input id="restore-token" name="token" type="text" autocomplete="off";
            button type="submit" { "Bring it back" }
        }
    }
}

/// The backup form. The passphrases are never shown back (`crate::app::kept` shows only
/// the fields people write texts into).
#[derive(Deserialize)]
pub struct BackupForm {
    #[serde(default)]
    passphrase: String,
    #[serde(default)]
    again: String,
}

/// `POST /backup`: the backup file as a download, named after today.
pub async fn backup(State(app): State<App>, Form(f): Form<BackupForm>) -> PageResult {
    let (passphrase, again) = (Zeroizing::new(f.passphrase), Zeroizing::new(f.again));
    if *passphrase != *again {
        return Err(anyhow::anyhow!(
            "the two passphrases differ; no backup was made: type the same passphrase in both fields"
        )
        .into());
    }
    let sealed = app
        .with_device(move |dev| backup::seal(dev, &passphrase).map_err(in_app_words))
        .await?;
    let day = when(app.clock.now()).chars().take(10).collect::<String>();
    let disposition = format!("attachment; filename=\"duet-backup-{day}.duetbackup\"");
    let headers = [
        (header::CONTENT_TYPE, "application/octet-stream".to_string()),
        (header::CONTENT_DISPOSITION, disposition),
        (header::CACHE_CONTROL, "no-store".to_string()),
    ];
    Ok((headers, sealed.bytes).into_response())
}

/// `POST /setup/restore` (multipart: the file, its passphrase and, if the relay moved,
/// its new address, or a creation token the backup lacks): the device of the backup,
/// brought back into this app's home as `duet restore [--relay URL] [--token T]` does;
/// then the Partner and devices page says so.
pub async fn restore(State(app): State<App>, form: Multipart) -> PageResult {
    let RestoreForm {
        file,
        passphrase,
        relay,
        token,
    } = read_restore_form(form).await?;
    let (home, clock) = (app.home.clone(), app.clock);
    let kept = app.device.clone();
    let brought = tokio::task::spawn_blocking(move || -> anyhow::Result<backup::Restored> {
        // Held until the device is open: the live thread never opens a home half made.
        let mut kept = kept.blocking_lock();
        if kept.is_some() {
            anyhow::bail!(
                "this Duet holds a device already; a backup is brought back only on a new one"
            );
        }
        let http = Http::new()?;
        let restored = backup::restore_bytes(
            &file,
            &passphrase,
            &home,
            &http,
            clock,
            backup::Reroute {
                relay: relay.as_deref(),
                token: token.as_deref(),
            },
        )
        .map_err(in_app_words)?;
        let mut dev = Device::open_with(&home, clock)?;
        dev.keep_views();
        *kept = Some(dev);
        Ok(restored)
    })
    .await;
    let restored = match brought {
        Ok(r) => r?,
        Err(e) => return Err(anyhow::anyhow!("bringing the device back failed: {e}").into()),
    };
    // A device removed (or whose person left) since the backup comes back read-only.
    let ended: String = restored
        .spaces
        .iter()
        .filter_map(|s| s.departed.as_deref())
        .map(|d| format!(" But {d}: what it holds stays readable here."))
        .collect();
    Ok(done(
        &app,
        Made::Notice(format!(
            "{}'s device is back, from the backup written {}. If the lost device turns up, do not use it again: two copies of one device would split its history.{ended}",
            restored.name,
            when(restored.written_at)
        )),
    ))
}

/// What the restore form sent.
struct RestoreForm {
    file: axum::body::Bytes,
    passphrase: Zeroizing<String>,
    /// The relay's new address, checked as `duet relay set` checks one.
    relay: Option<String>,
    /// A creation token, checked as `duet relay set --token` checks one.
    token: Option<String>,
}

/// The fields of the restore form.
async fn read_restore_form(mut form: Multipart) -> Result<RestoreForm, PageError> {
    let cut = |e: axum::extract::multipart::MultipartError| {
        anyhow::anyhow!(
            "the form did not arrive whole ({}); choose the file and send it again",
            e.body_text()
        )
    };
    let (mut file, mut passphrase) = (None, Zeroizing::new(String::new()));
    let (mut relay, mut token) = (String::new(), String::new());
    while let Some(field) = form.next_field().await.map_err(cut)? {
        match field.name() {
            Some("backup") => file = Some(field.bytes().await.map_err(cut)?),
            Some("passphrase") => passphrase = Zeroizing::new(field.text().await.map_err(cut)?),
            Some("relay") => relay = field.text().await.map_err(cut)?,
            Some("token") => token = field.text().await.map_err(cut)?,
            _ => {}
        }
    }
    let file = file.filter(|f| !f.is_empty()).ok_or_else(|| {
        anyhow::anyhow!(
            "no backup file came with the form; choose the file Duet saved when you backed up"
        )
    })?;
    if passphrase.is_empty() {
        return Err(anyhow::anyhow!("type the backup's passphrase too").into());
    }
    // Checked before anything is read or written: a typo must not cost a restore.
    let relay = match relay.trim() {
        "" => None,
        url => Some(crate::commands::relay::check_relay_url(url).map_err(|e| {
            anyhow::anyhow!("{e}; nothing was restored: correct the relay's address, or leave it empty to use the one the backup names")
        })?),
    };
    let token = match token.trim() {
        "" => None,
        t => crate::commands::relay::creation_token(Some(t))
            .map_err(|e| anyhow::anyhow!("{e}; nothing was restored"))?
            .map(str::to_string),
    };
    Ok(RestoreForm {
        file,
        passphrase,
        relay,
        token,
    })
}

/// A backup's failure in the app's words (the command line's name its flags).
fn in_app_words(e: BackupError) -> anyhow::Error {
    let advice = match &e {
        BackupError::NotABackup => "choose the file Duet saved when you backed up",
        BackupError::UnknownVersion(_) => "bring it back with a newer Duet",
        BackupError::Truncated { .. } | BackupError::Damaged(_) => {
            "nothing was restored; use another copy of the backup file"
        }
        BackupError::WrongPassphrase => {
            "nothing was restored; check the passphrase (letters, case and spaces count) and send it again"
        }
        BackupError::ShortPassphrase(_) => "no backup was made; choose a longer passphrase",
        BackupError::HomeHasDevice(_) | BackupError::HomeNotEmpty(_) => {
            "a backup is brought back only into a new home: start `duet app --home DIR` with a new folder"
        }
        BackupError::RestoreRunning(_) => {
            "nothing was written by this one; wait for the other to finish, then open Today"
        }
        BackupError::RestoreLockNotOwn(_) => {
            "nothing was written; start `duet app --home DIR` with a folder of your own"
        }
        BackupError::Incomplete(_) | BackupError::RelayRefused(_) | BackupError::Device(_) => {
            "nothing was restored; check that the relay the backup names is reachable (or give its new address in the form, or the creation token its operator gave you), then send the form again"
        }
        // The app hands the file to the browser: it names no path of its own.
        BackupError::Exists(_)
        | BackupError::InHome(_)
        | BackupError::NotAFile(_)
        | BackupError::Io { .. }
        | BackupError::Store(_) => {
            return anyhow::Error::new(e);
        }
    };
    anyhow::anyhow!("{e}; {advice}")
}
