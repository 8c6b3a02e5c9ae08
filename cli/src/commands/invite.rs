//! `duet invite`: a single-use code for the partner's device, announced to the relay.

use duet_core::app::InviteError;
use serde_json::json;

use super::Ctx;
use crate::output::{data, note};
use crate::transport::Http;

/// The shortest and longest lifetime of an invite or device code.
const LIFETIME: std::ops::RangeInclusive<std::time::Duration> =
    std::time::Duration::from_secs(60)..=std::time::Duration::from_secs(30 * 86_400);

/// Parses an invite lifetime like `30m`, `24h`, `7d` or `1h 30m` (humantime); a bare
/// number is hours. Returns milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let with_unit = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        format!("{s}h")
    } else {
        s.to_string()
    };
    let d = humantime::parse_duration(&with_unit)
        .map_err(|e| format!("expected a duration like 30m, 24h or 7d (got {s:?}: {e})"))?;
    if !LIFETIME.contains(&d) {
        return Err("the invite lifetime must be between 1 minute and 30 days".into());
    }
    i64::try_from(d.as_millis()).map_err(|_| "the invite lifetime is too long".into())
}

/// Print a single-use invite code for your partner's device; list or revoke invites.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct InviteArgs {
    /// How long the code stays valid: 30m, 24h, 7d [default: 24h; 10m with --short,
    /// which allows at most 1h].
    #[arg(long, value_parser = parse_duration)]
    expires: Option<i64>,
    /// Print a short code to read aloud (like 417-aardvark-adroitness) and wait until
    /// your partner's device has used it.
    #[arg(long)]
    short: bool,
    #[command(subcommand)]
    action: Option<InviteCmd>,
}

/// What to do with the invites already made.
#[derive(Debug, clap::Subcommand)]
pub enum InviteCmd {
    /// List the invites of both spaces: open, used, revoked, expired.
    #[command(after_help = "Examples:\n  duet invite list\n  duet invite list --json")]
    List,
    /// Withdraw an open invite (by its code or the start of its id), or all of them.
    #[command(after_help = "Examples:\n  duet invite revoke --all")]
    Revoke(RevokeArgs),
}

/// `duet invite revoke`.
#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// The invite code, or the start of its id from `duet invite list`.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    code: Option<String>,
    /// Revoke every open invite of both spaces.
    #[arg(long)]
    all: bool,
}

/// Runs `duet invite`.
pub fn run(ctx: &Ctx, a: InviteArgs) -> anyhow::Result<()> {
    match a.action {
        Some(InviteCmd::List) => return super::invite_list::list(ctx),
        Some(InviteCmd::Revoke(r)) => return super::invite_list::revoke(ctx, r.code, r.all),
        None => {}
    }
    if a.short {
        return super::invite_short::run(ctx, a.expires);
    }
    let mut dev = ctx.device()?;
    let code = dev
        .invite_partner(&Http::new()?, a.expires.unwrap_or(24 * 3_600_000))
        .map_err(invite_failure)?;
    if ctx.out.json {
        return ctx.out.json(&json!({
            "code": code.encode(),
            "expires_at": crate::output::iso(code.expires_at),
        }));
    }
    if !ctx.out.quiet {
        note("Give this code to your partner in person or over a channel you both trust.");
        note(&format!(
            "Anyone who has it can join your shared space until it is used or expires ({}).",
            crate::output::when(code.expires_at)
        ));
    }
    data(&code.encode())?;
    Ok(())
}

/// An invite or device code that is not ready, in the command line's words.
pub fn invite_failure(e: InviteError) -> anyhow::Error {
    match e {
        InviteError::Make(e) => e.into(),
        // The relay must know the invite before the partner can use it.
        InviteError::Unsent(e) => anyhow::Error::new(e).context(
            "the invite was created but could not reach the relay; run `duet sync` before your partner joins",
        ),
        InviteError::Refused(w) => anyhow::anyhow!(
            "the invite was created but the relay refused it, so your partner could not use it: {}",
            crate::advice::warning(&w)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn lifetimes_read_as_people_write_them() {
        assert_eq!(parse_duration("30m"), Ok(30 * 60_000));
        assert_eq!(parse_duration("24h"), Ok(24 * 3_600_000));
        assert_eq!(parse_duration("7d"), Ok(7 * 86_400_000));
        assert_eq!(parse_duration("1h 30m"), Ok(90 * 60_000));
        assert_eq!(
            parse_duration("2"),
            Ok(2 * 3_600_000),
            "a bare number is hours"
        );
    }

    #[test]
    fn lifetimes_out_of_range_or_unreadable_are_refused() {
        assert!(parse_duration("31d").is_err(), "over 30 days");
        assert!(parse_duration("720d").is_err(), "over 30 days");
        assert!(parse_duration("10s").is_err(), "under a minute");
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
    }
}
