//! `duet relay set`: the relay every space syncs through, and the creation token.

use crate::UsageError;
use crate::output::safe_line;

use super::Ctx;

/// Checks that a relay URL is an origin, `http(s)://host[:port]` (a trailing `/` is
/// fine): the protocol's paths are absolute, so a path, query or credentials would be
/// dropped or break later. Returns it as it is kept: the origin in ASCII (spaces around
/// it, a trailing `/`, a default port and letters a host name spells otherwise, such
/// as full-width ones, are gone), the form every request and live socket can use.
pub fn check_relay_url(raw: &str) -> anyhow::Result<String> {
    let bad = |why: &str| -> anyhow::Error {
        UsageError(format!(
            "relay URL must look like https://relay.example.org or http://127.0.0.1:8787 ({why}; got {raw:?})"
        ))
        .into()
    };
    // "127.0.0.1:8787" or "relay.example.org" (or "localhost:8787", which reads as a
    // scheme of its own): the scheme was left out.
    if !raw.contains("://") {
        return Err(bad("put http:// or https:// in front"));
    }
    let url = url::Url::parse(raw.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("only http and https work"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("a host is needed"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a relay is an origin only, without a path"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("no user name or password in the URL"));
    }
    Ok(url.origin().ascii_serialization())
}

/// After the relay was changed (from `old`, if one was set): `Some(warning)` when the
/// new relay `new` does not hold the shared space this device has read from its old one
/// (a relay of its own, or another couple's address), so that the person is told at
/// once, not by every later sync. One signed read of a single event, which changes
/// nothing; `None` when the relay holds the space, or the read failed otherwise (the
/// next sync says why).
pub fn holds_no_spaces(
    dev: &mut duet_core::device::Device,
    old: Option<&str>,
    new: &str,
) -> Option<String> {
    use duet_core::sync::Transport;
    let status = dev.status().ok()?;
    let shared = status
        .spaces
        .iter()
        .find(|s| s.kind == "shared" && s.departed.is_none() && s.cursor > 0)?;
    let space = duet_core::event::SpaceId::parse(&shared.space)?;
    let http = crate::transport::Http::new().ok()?;
    let Err(duet_core::sync::TransportError::Refused { body, .. }) =
        http.pull(new, &space, 0, 1, &dev.me)
    else {
        return None;
    };
    (body.error == duet_core::protocol::ErrorCode::NoSuchSpace).then(|| {
        format!(
            "the relay at {} does not hold your shared space, so nothing syncs through it{}",
            safe_line(new),
            match old {
                Some(old) if old != new => format!(
                    "; it was {}, which your partner's devices still use: set it back unless \
                     you are both moving",
                    safe_line(old)
                ),
                _ => String::new(),
            }
        )
    })
}

/// Relay subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RelayCmd {
    /// Set the relay URL for every space on this device.
    Set {
        /// e.g. https://relay.example.org or http://127.0.0.1:8787
        url: String,
        /// The creation token the relay's operator gave you, needed by a relay that
        /// lets only couples with one create spaces (kept here, never shown). Or set
        /// DUET_CREATE_TOKEN, which other users of the machine cannot read (a command line
        /// shows in their process list).
        #[arg(long, value_name = "TOKEN")]
        token: Option<String>,
    },
}

/// The creation token of `--token`, else of DUET_CREATE_TOKEN where a relay is set
/// (`wanted`): a command line is in every user's process list, the environment only in
/// its owner's. Empty counts as unset.
pub fn given_token(flag: Option<String>, wanted: bool) -> Option<String> {
    flag.or_else(|| {
        wanted
            .then(|| std::env::var("DUET_CREATE_TOKEN").ok())
            .flatten()
            .filter(|t| !t.trim().is_empty())
    })
}

/// The creation token given on the command line, checked: `None` when none was given.
pub fn creation_token(token: Option<&str>) -> anyhow::Result<Option<&str>> {
    let Some(token) = token.map(str::trim) else {
        return Ok(None);
    };
    // A header value: printable ASCII, no spaces (the relay makes 32 hex characters).
    if !duet_core::protocol::is_create_token(token) {
        anyhow::bail!(
            "the creation token must be 1 to 256 printable characters without spaces; copy \
             it exactly as the relay's operator gave it"
        );
    }
    Ok(Some(token))
}

/// Whether a duet relay answers at `url` now; a warning says so when none does (the
/// address is kept all the same: the relay may be started later).
pub fn answers(ctx: &Ctx, url: &str) -> bool {
    let Err(e) = crate::transport::Http::probe(url) else {
        return true;
    };
    ctx.out.warn(format!(
        "no duet relay answers at {} now ({e}); it is set anyway, and `duet sync` uses it once one does. Check the address if the relay should be up",
        safe_line(url)
    ));
    false
}

/// Runs `duet relay`.
pub fn run(ctx: &Ctx, cmd: RelayCmd) -> anyhow::Result<()> {
    match cmd {
        RelayCmd::Set { url, token } => {
            let url = check_relay_url(&url)?;
            let token = given_token(token, true);
            let token = creation_token(token.as_deref())?;
            let mut dev = ctx.device()?;
            let old = dev.relay()?;
            dev.set_relay(&url, token)?;
            // Whether it holds this device's spaces is asked only of a relay that answers.
            if answers(ctx, &url)
                && old.is_some()
                && let Some(warning) = holds_no_spaces(&mut dev, old.as_deref(), &url)
            {
                ctx.out.warn(warning);
            }
            if ctx.out.json {
                return ctx.out.json(&serde_json::json!({
                    "relay": url,
                    "token": token.is_some(),
                }));
            }
            ctx.out.line(format!(
                "Relay set to {}. Run `duet sync` to send your changes.",
                safe_line(&url)
            ))?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_relay_url;

    #[test]
    fn a_relay_is_an_http_origin() {
        for ok in [
            "https://relay.example.org",
            "http://127.0.0.1:8787",
            "http://127.0.0.1:8787/",
            "https://[::1]:443",
        ] {
            assert!(check_relay_url(ok).is_ok(), "{ok}");
        }
        for (typed, kept) in [
            (" http://127.0.0.1:8787/ ", "http://127.0.0.1:8787"),
            ("https://Relay.Example.org:443", "https://relay.example.org"),
            ("http://ｌｏｃａｌｈｏｓｔ:8787", "http://localhost:8787"),
        ] {
            assert_eq!(check_relay_url(typed).expect(typed), kept);
        }
        for bad in [
            "relay.example.org",
            "ftp://relay.example.org",
            "http://host/relay",
            "http://host/?x=1",
            "https://user:pw@host",
            "http://",
            "http:// spaced",
        ] {
            let err = check_relay_url(bad).expect_err(bad).to_string();
            assert!(err.contains("relay URL must look like"), "{err}");
        }
        // The scheme left out is said in those words, not a parser's.
        for bare in ["127.0.0.1:8787", "relay.example.org", "localhost:8787"] {
            let err = check_relay_url(bare).expect_err(bare).to_string();
            assert!(err.contains("put http:// or https:// in front"), "{err}");
        }
    }
}
