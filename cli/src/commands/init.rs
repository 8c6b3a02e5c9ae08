//! `duet init`: create this device's identity and its two spaces.

use duet_core::device::{Device, DeviceError};
use duet_core::store::StoreError;
use serde_json::json;

use super::Ctx;
use crate::output::safe_line;

/// Create this device's identity, your shared space and your personal space.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Your name, as your partner will see it.
    #[arg(long, value_parser = super::non_blank)]
    name: String,
    /// The relay to sync through (you can set it later with `duet relay set URL`).
    #[arg(long, value_name = "URL")]
    relay: Option<String>,
    /// The creation token the relay's operator gave you (a relay lets only couples with
    /// one create spaces). Kept on this device, sent once to create your spaces.
    /// Or set DUET_CREATE_TOKEN, which other users of the machine cannot read (a command
    /// line shows in their process list).
    #[arg(long, value_name = "TOKEN", requires = "relay")]
    token: Option<String>,
}

/// Runs `duet init`.
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let relay = a
        .relay
        .as_deref()
        .map(super::relay::check_relay_url)
        .transpose()?;
    let token = super::relay::given_token(a.token, relay.is_some());
    let token = super::relay::creation_token(token.as_deref())?;
    // Set up and said before a signal stops the command (stopped between, a rerun was
    // refused as a home set up already, with nothing said).
    let held = crate::interrupt::hold();
    let mut dev =
        match Device::init_with_token(&ctx.home, &a.name, relay.as_deref(), token, ctx.clock) {
            Ok(dev) => dev,
            // Run again with the relay (and the token a warning asked for): most often
            // meant to put the relay or its token right, which `relay set` does.
            Err(DeviceError::Store(StoreError::AlreadyInitialised(name))) if relay.is_some() => {
                anyhow::bail!(
                    "this home already has a duet identity ({}); to give it this relay and its \
                 creation token, run `duet relay set URL --token TOKEN`, then `duet sync`; to \
                 set up another device, use another --home",
                    safe_line(&name)
                )
            }
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("cannot initialise duet in {}", ctx.home.display())));
            }
        };
    welcome(ctx, &dev)?;
    drop(held);
    // As `relay set` does: a mistyped address is said now, not at the first sync.
    if let Some(url) = &relay
        && super::relay::answers(ctx, url)
    {
        spaces_made(ctx, &mut dev)?;
    }
    Ok(())
}

/// The first sync makes the spaces at once: a relay that refuses to (a creation token
/// it needs, refuses, or has used up) is said now, where it can be put right (as the
/// app's setup does), not at the first `duet invite` or `duet sync`. A failure to reach
/// it waits for that sync.
fn spaces_made(ctx: &Ctx, dev: &mut Device) -> anyhow::Result<()> {
    let http = crate::transport::Http::new()?;
    if let Err(e) = dev.sync(&http)
        && crate::advice::relay_refused(&e)
    {
        ctx.out.warn(format!(
            "this device is set up, but {}; until then everything stays on this device",
            crate::advice::message(&e)
        ));
    }
    Ok(())
}

/// What `init` says of the device it set up.
fn welcome(ctx: &Ctx, dev: &Device) -> anyhow::Result<()> {
    if ctx.out.json {
        return ctx.out.json(&json!({
            "name": dev.me.name,
            "person": dev.me.person_id,
            "device": hex::encode(dev.me.device_key()),
            "home": ctx.home,
        }));
    }
    ctx.out.line(format!(
        "Welcome, {}. Your goals live in {}.",
        safe_line(&dev.me.name),
        ctx.home.display()
    ))?;
    // Without a relay, `duet invite` fails: the step before it is said.
    ctx.out.line(if dev.relay()?.is_some() {
        "Next: `duet goal add TITLE --area AREA`, and `duet invite` to pair with your partner."
    } else {
        "Next: `duet goal add TITLE --area AREA`; to pair with your partner, set your relay (`duet relay set URL`), then `duet invite`."
    })?;
    Ok(())
}
