//! `duet invite`: a single-use code for the partner's device, announced to the relay.

use duet_core::app::InviteError;
use serde_json::json;

use super::Ctx;
use crate::output::{data, note};
use crate::transport::Http;

/// The shortest and longest lifetime of an invite or device code.
const LIFETIME: std::ops::RangeInclusive<std::time::Duration> =
    std::time::Duration::from_secs(60)..=std::time::Duration::from_secs(30 * 86_400);

/// Parses an invite lifetime like `30m`, `24h`, `7d` or `1h 30m` (humantime). A bare
/// number is refused: `--expires 30` meant as minutes would give a code that anyone
/// holding it can use for 30 hours. Returns milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        // The number itself as the example, unless no unit makes it a lifetime.
        let n = if s.trim_start_matches('0').is_empty() {
            "30"
        } else {
            s
        };
        return Err(format!(
            "give the lifetime with its unit, for example {n}m for minutes or {n}h for hours \
             (got {s:?})"
        ));
    }
    let d = humantime::parse_duration(s)
        // humantime's own reason names units (ns, ms) no invite can have.
        .map_err(|_| {
            format!("expected a number of minutes, hours or days, like 30m, 24h or 7d (got {s:?})")
        })?;
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
    /// List the invites of both spaces: open, used, revoked, expired, or closed (one the
    /// relay would refuse: the device that made it is gone, or the space is full).
    #[command(after_help = "Examples:\n  duet invite list\n  duet invite list --json")]
    List,
    /// Withdraw an open invite (by its code or the start of its id), or all of them.
    #[command(after_help = "Examples:\n  duet invite revoke --all")]
    Revoke(RevokeArgs),
}

/// `duet invite revoke`: a code, or `--all` (a usage error without either names both).
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct RevokeArgs {
    /// The invite code, or the start of its id from `duet invite list`.
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
    let made = dev.invite_partner(&Http::new()?, a.expires.unwrap_or(24 * 3_600_000));
    super::sync::note_news(&dev.take_news(), ctx.out.quiet);
    let code = Made::from(made.map(|c| (c.encode(), c.expires_at)))?;
    refuse_dead_on_arrival(&mut dev, &code)?;
    if ctx.out.json {
        return code.hand_over(ctx, &mut dev);
    }
    if !ctx.out.quiet {
        note("Give this code to your partner in person or over a channel you both trust.");
        note(&format!(
            "Anyone who has it can join your shared space until it is used or expires ({}).",
            crate::output::when(code.expires_at)
        ));
    }
    code.warn_unsent(ctx, "your partner can use it");
    code.hand_over(ctx, &mut dev)
}

/// An invite that has expired by the relay's clock when it is made (this device's clock
/// is behind by more than its lifetime) is withdrawn, and the clock is named: the
/// partner would only be told "expired", with every new code the same.
fn refuse_dead_on_arrival(dev: &mut duet_core::device::Device, code: &Made) -> anyhow::Result<()> {
    match withdrawn_if_dead(dev, &code.code, code.expires_at) {
        None => Ok(()),
        Some(behind) => anyhow::bail!(
            "this device's clock is {behind} behind the relay's, so the invite would have \
             expired before your partner could use it, and was withdrawn; set this device's \
             clock right (automatic time), then run `duet invite` again (if it is right \
             already, the relay's clock is wrong: ask its operator to set it; until then an \
             invite that lasts longer, `--expires 7d`, outlives the difference)"
        ),
    }
}

/// Withdraws the invite `code` when it has expired by the relay's clock already (the
/// relay's time: the system clock moved by what a relay's answer said); returns how far
/// this device's clock is behind, in words. Shared with the app's pairing page.
pub fn withdrawn_if_dead(
    dev: &mut duet_core::device::Device,
    code: &str,
    expires_at: i64,
) -> Option<String> {
    let now = dev.now();
    let behind = crate::relay_clock::behind_by(now, expires_at - now)?;
    withdraw(dev, code);
    Some(behind)
}

/// Withdraws the invite of `code` and tells the relay at once (a failed sync leaves the
/// withdrawal to the next); whether it was withdrawn here.
fn withdraw(dev: &mut duet_core::device::Device, code: &str) -> bool {
    let target = duet_core::app::RevokeTarget::Code(code.to_string());
    let withdrawn = dev.revoke_invites(&target).is_ok();
    if withdrawn && let Ok(http) = Http::new() {
        let _ = dev.sync(&http);
    }
    withdrawn
}

/// A code made, and why it has not reached the relay yet, if it has not.
pub struct Made {
    /// The code to give.
    pub code: String,
    /// When it expires (ms).
    pub expires_at: i64,
    /// The failed sync's words, when the relay does not know the code yet.
    pub unsent: Option<String>,
}

impl Made {
    /// A code made and sent, or made and not sent yet (it works once a sync sends
    /// it, so it is given); any other failure is the command's error.
    pub fn from(made: Result<(String, i64), InviteError>) -> anyhow::Result<Made> {
        match made {
            Ok((code, expires_at)) => Ok(Made {
                code,
                expires_at,
                unsent: None,
            }),
            Err(InviteError::Unsent {
                code,
                expires_at,
                source,
            }) => Ok(Made {
                code,
                expires_at,
                unsent: Some(crate::advice::message(source.as_ref())),
            }),
            Err(e) => Err(invite_failure(e)),
        }
    }

    /// Prints the code (as JSON under `--json`, else the bare code, even under
    /// `--quiet`). A code that cannot be written (standard output closed, as in
    /// `duet device add | true`, or full) was seen by no one: it is withdrawn, and the
    /// command fails saying so, rather than leave a live code that nobody has (a closed
    /// pipe is otherwise a success, `main`).
    pub fn hand_over(&self, ctx: &Ctx, dev: &mut duet_core::device::Device) -> anyhow::Result<()> {
        let printed = if ctx.out.json {
            ctx.out.json(&json!({
                "code": self.code,
                "expires_at": crate::output::iso(self.expires_at),
                "sent": self.unsent.is_none(),
            }))
        } else {
            data(&self.code).map_err(anyhow::Error::from)
        };
        let Err(e) = printed else {
            return Ok(());
        };
        // The cause's words only: as a source, a closed pipe would read as a success.
        let why = e.root_cause().to_string();
        if !withdraw(dev, &self.code) {
            anyhow::bail!(
                "the code could not be written to standard output ({why}), so no one has it; \
                 withdraw it with `duet invite revoke` (`duet invite list` shows it), and run \
                 the command again with its output where you can read it"
            );
        }
        anyhow::bail!(
            "the code could not be written to standard output ({why}), so no one has it; it was \
             withdrawn: run the command again with its output where you can read it"
        )
    }

    /// Says, when the relay does not know the code yet, that it works once it does.
    pub fn warn_unsent(&self, ctx: &Ctx, who_can: &str) {
        if let Some(why) = &self.unsent {
            ctx.out.warn(format!(
                "the code has not reached the relay yet ({why}); {who_can} once this device has synced: run `duet sync` (or keep `duet sync --watch` running) before it is used"
            ));
        }
    }
}

/// An invite or device code that is not ready, in the command line's words.
pub fn invite_failure(e: InviteError) -> anyhow::Error {
    match e {
        InviteError::Make(e) => e.into(),
        // The relay must know the invite before the partner can use it.
        e @ InviteError::Unsent { .. } => {
            anyhow::Error::new(e).context("run `duet sync` before the code is used")
        }
        InviteError::Refused(w) => anyhow::anyhow!(
            "no code to give: the relay refused the invite, so a code would admit no one ({})",
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
    }

    #[test]
    fn a_lifetime_without_its_unit_is_refused_not_taken_as_hours() {
        let refused = parse_duration("30").expect_err("no unit");
        assert!(
            refused.contains("30m") && refused.contains("30h"),
            "{refused}"
        );
    }

    #[test]
    fn lifetimes_out_of_range_or_unreadable_are_refused() {
        assert!(parse_duration("31d").is_err(), "over 30 days");
        assert!(parse_duration("720d").is_err(), "over 30 days");
        assert!(parse_duration("10s").is_err(), "under a minute");
        assert!(parse_duration("soon").is_err());
        // No unit makes 0 a lifetime: the example is one that is.
        let zero = parse_duration("0").expect_err("no unit");
        assert!(zero.contains("for example 30m for minutes"), "{zero}");
        assert!(parse_duration("").is_err());
    }
}
