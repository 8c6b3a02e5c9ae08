//! `duet relay set`: the relay every space syncs through, and the creation token.

use crate::UsageError;
use crate::output::safe_line;

use super::Ctx;

/// Checks that a relay URL is http(s)://host[:port].
pub fn check_relay_url(url: &str) -> anyhow::Result<()> {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url
            .split("://")
            .nth(1)
            .is_some_and(|rest| !rest.is_empty() && !rest.contains(' '));
    if !ok {
        return Err(UsageError(format!(
            "relay URL must look like https://relay.example.org or http://127.0.0.1:8787 (got {url:?})"
        ))
        .into());
    }
    Ok(())
}

/// Relay subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RelayCmd {
    /// Set the relay URL for every space on this device.
    Set {
        /// e.g. https://relay.example.org or http://127.0.0.1:8787
        url: String,
        /// The creation token the relay's operator gave you, needed by a relay that
        /// lets only couples with one create spaces (kept here, never shown).
        #[arg(long, value_name = "TOKEN")]
        token: Option<String>,
    },
}

/// The creation token given on the command line, checked: `None` when none was given.
pub fn creation_token(token: Option<&str>) -> anyhow::Result<Option<&str>> {
    let Some(token) = token.map(str::trim) else {
        return Ok(None);
    };
    // A header value: printable ASCII, no spaces (the relay makes 32 hex characters).
    if token.is_empty() || token.len() > 256 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        anyhow::bail!(
            "the creation token must be 1 to 256 printable characters without spaces; copy \
             it exactly as the relay's operator gave it"
        );
    }
    Ok(Some(token))
}

/// Runs `duet relay`.
pub fn run(ctx: &Ctx, cmd: RelayCmd) -> anyhow::Result<()> {
    match cmd {
        RelayCmd::Set { url, token } => {
            check_relay_url(&url)?;
            let token = creation_token(token.as_deref())?;
            ctx.device()?.set_relay(&url, token)?;
            ctx.out.line(format!(
                "Relay set to {}. Run `duet sync` to send your changes.",
                safe_line(&url)
            ))?;
            Ok(())
        }
    }
}
