//! The app's words for core's next steps ([`NextStep`]): what a person who only uses the
//! app does next, naming its pages and buttons. The command line's words
//! (`crate::advice`) name `duet` commands; the few steps only a terminal can take say so.

use duet_core::advice::{Advice, NextStep, Warning};
use duet_core::sync::TransportError;

/// Where the relay and the partner's devices are looked after in the app.
pub const DEVICES_PAGE: &str = "the Partner and devices page";

/// Removing one of one's own devices.
fn remove_own(device: &str) -> String {
    format!(
        "if it is lost or you no longer trust it, remove device {} on {DEVICES_PAGE}",
        crate::output::short_key(device)
    )
}

/// Joining again, for a device whose join was refused: one that joined nothing joins
/// again on the setup page; one in the shared space joins in a new folder and is
/// removed from there afterwards.
fn join_again(device: Option<&str>) -> String {
    match device {
        Some(device) => format!(
            "to have them here, make a new code on your other device ({DEVICES_PAGE}), or ask \
             your partner for one, and join with it in a new folder (in a terminal: `duet app \
             --home DIR`), then remove device {} there",
            crate::output::short_key(device)
        ),
        None => "ask your partner for a new invite (or make a device code on your other \
                 device) and join with it again on the setup page (Today leads there)"
            .into(),
    }
}

/// What to do when a relay does not hold a space this device syncs.
fn relay_lost_space() -> String {
    format!(
        "check the relay's address on {DEVICES_PAGE}; if it is right, the relay no longer \
         holds this space (restored from an older backup, or its data lost): tell its \
         operator, and keep this device's data (it holds the space)"
    )
}

/// Starting over in this app's folder.
fn start_over() -> String {
    format!(
        "to start over, use Start over on {DEVICES_PAGE} (offered once this device left its \
         shared space or the partner did, or while nobody else has joined it)"
    )
}

/// What to do about a device copied, stuck, or perhaps misbehaving.
fn copies_and_trust(step: &NextStep) -> String {
    match step {
        NextStep::UseOneCopy => format!(
            "use one copy only: to use both, add the second as a device of its own (Add \
             another device of yours, on {DEVICES_PAGE})"
        ),
        NextStep::ReplaceDevice => format!(
            "its person can go on with a new device (a device code made on {DEVICES_PAGE} \
             there), then remove the old one"
        ),
        NextStep::CompareSafetyCode => {
            format!("compare the safety code with your partner (on {DEVICES_PAGE})")
        }
        _ => String::new(),
    }
}

/// What to do next, in the app's words.
pub fn say(step: &NextStep) -> String {
    match step {
        NextStep::SetUp => "set up this device first (Duet's setup page)".into(),
        NextStep::OtherHome => start_over(),
        NextStep::CheckHomePermissions => {
            "check that Duet may create and write its folder (DUET_HOME or --home)".into()
        }
        NextStep::MountWritable => {
            "the disk that holds Duet's folder is mounted read-only (the system does so after a disk error): mount it for writing again".into()
        }
        NextStep::GiveName => "give your name".into(),
        NextStep::SetRelay => format!("set a relay on {DEVICES_PAGE} first"),
        NextStep::CheckRelayThenSync => format!(
            "check that the relay is running and its address is right ({DEVICES_PAGE}); \
             Duet syncs again on its own"
        ),
        NextStep::CheckRelayUrl => format!("check the relay's address on {DEVICES_PAGE}"),
        NextStep::RelayLostSpace => relay_lost_space(),
        NextStep::SyncAgain => "Duet reads on at its next sync, on its own".into(),
        NextStep::DropWaiting => "only a terminal can drop them (`duet sync --drop-waiting`); \
             then sync reads on"
            .into(),
        NextStep::NewInvite => {
            "ask your partner for a new code (on their Partner and devices page)".to_string()
        }
        NextStep::NewDeviceCode => {
            format!("make a new device code on your other device ({DEVICES_PAGE})")
        }
        NextStep::PartnerSyncsInvite => "a code made offline reaches the relay with its \
             maker's next sync: ask your partner to sync (or open Duet), then join again; \
             otherwise ask for a new code"
            .into(),
        NextStep::OtherDeviceSyncsCode => format!(
            "a code made offline reaches the relay with its device's next sync: let your other \
             device sync, then join again; otherwise make a new code there ({DEVICES_PAGE})"
        ),
        NextStep::DeviceCodeWithdrawn => format!(
            "it was withdrawn on your other device, the device that made it was removed, or \
             you left the shared space there (a \
             device of someone who left cannot join it); if you have not left, make a new code \
             on your other device ({DEVICES_PAGE})"
        ),
        NextStep::CopyInviteAgain => {
            "ask your partner to make the code again and copy all of it".into()
        }
        NextStep::VerifyAndReAdd => format!(
            "compare the safety code with your partner ({DEVICES_PAGE}), then remove and re-add \
             this device"
        ),
        NextStep::MakeCodeAgain => {
            format!("a device that has still to join needs a new device code ({DEVICES_PAGE})")
        }
        NextStep::UseOneCopy | NextStep::ReplaceDevice | NextStep::CompareSafetyCode => {
            copies_and_trust(step)
        }
        NextStep::AddOwnDevice | NextStep::StartOverForSomeoneNew | NextStep::InviteUsedUp => {
            instead_of_invite(step)
        }
        NextStep::RemoveOwnDevice { device } => remove_own(device),
        NextStep::JoinAgain { device } => join_again(device.as_deref()),
        NextStep::WriteReflection | NextStep::ListReflections | NextStep::ReplyInstead { .. } => {
            on_reflections(step)
        }
        NextStep::ReadWhatYouHave => format!(
            "everything it had stays readable here (Today, History, Report); to use Duet here \
             again, start over (at the end of {DEVICES_PAGE})"
        ),
        NextStep::RestoreFromBackup
        | NextStep::FreeSpace
        | NextStep::SetClock
        | NextStep::CheckClock => on_this_computer(step),
        NextStep::CreationToken { .. } => format!(
            "ask its operator for one and enter it with the relay's address on {DEVICES_PAGE}"
        ),
    }
}

/// What to do on this computer: its folder, its disk, its clock.
fn on_this_computer(step: &NextStep) -> String {
    match step {
        NextStep::RestoreFromBackup => {
            "move this device's folder away and bring the device \
             back from your backup file, in a terminal: `duet restore FILE --home DIR`"
        }
        NextStep::FreeSpace => {
            "free some space on this computer's disk; Duet tries again at its next sync, and \
             a change you made can be made again"
        }
        NextStep::CheckClock => {
            "rate again after Duet's next sync, which checks this computer's clock against \
             the relay's: if it is right, the goal was dated ahead by the device that made \
             it. If it is not, set it right (automatic date and time)"
        }
        _ => {
            "set this computer's clock right (automatic date and time); Duet checks it \
             again at its next sync. If it is right already, the relay's clock is wrong: ask \
             its operator to set it"
        }
    }
    .into()
}

/// What to do about a reflection, on the Reflections page.
fn on_reflections(step: &NextStep) -> String {
    match step {
        NextStep::WriteReflection => "write one on the Reflections page",
        NextStep::ListReflections => "the Reflections page lists them",
        _ => "answer it with a reply on the Reflections page",
    }
    .into()
}

/// A warning with what to do, in the app's words.
pub fn warning(w: &Warning) -> String {
    crate::advice::warning_in(w, say)
}

/// An error's message with what to do, in the app's words. A relay's refusal to create
/// the spaces is said in words (its own message names a header and a status code).
pub fn message<E: std::fmt::Display + Advice>(e: &E) -> String {
    if let Some(step @ NextStep::CreationToken { .. }) = e.next_step() {
        return format!(
            "the relay did not accept this device's creation token (or none was given), so \
             your spaces are not on it yet; {}",
            say(&step)
        );
    }
    crate::advice::message_in(e, say)
}

/// What to do about an error, in the app's words: for a network failure, what to check
/// for that failure; otherwise the next step core names.
pub fn hint(err: &anyhow::Error) -> Option<String> {
    let network = crate::advice::transport_error(err).and_then(network_hint);
    network.or_else(|| crate::advice::next_step(err).map(|step| say(&step)))
}

/// What to check after a network failure that core tells apart.
fn network_hint(e: &TransportError) -> Option<String> {
    let other_scheme = |relay: &str, from: &str, to: &str| {
        format!(
            "change the relay's address to {to}{} on {DEVICES_PAGE}",
            relay.strip_prefix(from).unwrap_or(relay)
        )
    };
    Some(match e {
        TransportError::Unresolved { for_now: true, .. } => "check your network".into(),
        TransportError::Unresolved { .. } => {
            format!("check the relay's address ({DEVICES_PAGE}) and your network")
        }
        TransportError::ConnectionRefused { .. } => {
            format!("is the relay running there? ({DEVICES_PAGE} shows its address)")
        }
        TransportError::PlainHttp { relay } => other_scheme(relay, "https://", "http://"),
        TransportError::ExpectsTls { relay } => other_scheme(relay, "http://", "https://"),
        TransportError::TimedOut { .. } => {
            "check your network and that the relay is running".into()
        }
        _ => return None,
    })
}

/// What to do instead of a partner invite: add a device of one's own, (the partner
/// gone) start over to share Duet with someone new, or (the invite used) ask for a new
/// one.
fn instead_of_invite(step: &NextStep) -> String {
    if matches!(step, NextStep::InviteUsedUp) {
        format!(
            "ask your partner for a new invite; if it was a device of yours that joined with \
             it, make a device code for this one there ({DEVICES_PAGE})"
        )
    } else if matches!(step, NextStep::StartOverForSomeoneNew) {
        format!(
            "to share Duet with someone new, start over (at the end of {DEVICES_PAGE}: this \
             device is kept, readable, in a folder on this computer); to add another device \
             of yours, make a device code there instead"
        )
    } else {
        format!("to add another device of yours, make a device code on {DEVICES_PAGE} instead")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apps_advice_names_its_pages_and_only_says_duet_where_a_terminal_is_needed() {
        let steps = [
            NextStep::SetUp,
            NextStep::GiveName,
            NextStep::SetRelay,
            NextStep::CheckRelayThenSync,
            NextStep::CheckRelayUrl,
            NextStep::RelayLostSpace,
            NextStep::SyncAgain,
            NextStep::NewInvite,
            NextStep::NewDeviceCode,
            NextStep::PartnerSyncsInvite,
            NextStep::OtherDeviceSyncsCode,
            NextStep::DeviceCodeWithdrawn,
            NextStep::CopyInviteAgain,
            NextStep::VerifyAndReAdd,
            NextStep::AddOwnDevice,
            NextStep::InviteUsedUp,
            NextStep::UseOneCopy,
            NextStep::ReplaceDevice,
            NextStep::CompareSafetyCode,
            NextStep::MakeCodeAgain,
            NextStep::RemoveOwnDevice {
                device: "ab".repeat(32),
            },
            NextStep::ReadWhatYouHave,
            NextStep::StartOverForSomeoneNew,
            NextStep::WriteReflection,
            NextStep::ListReflections,
            NextStep::ReplyInstead {
                reflection: "ab".repeat(16),
            },
            NextStep::CreationToken {
                relay: Some("https://relay.example.org".into()),
            },
        ];
        for step in steps {
            let words = say(&step);
            assert!(!words.contains("duet "), "{step:?}: {words}");
        }
        assert!(say(&NextStep::DropWaiting).contains("terminal"));
        assert!(say(&NextStep::RestoreFromBackup).contains("terminal"));
        let join_again = NextStep::JoinAgain {
            device: Some("cd".repeat(32)),
        };
        assert!(say(&join_again).contains("terminal"));
        let joined_nothing = NextStep::JoinAgain { device: None };
        assert!(say(&joined_nothing).contains("setup page (Today leads there)"));
    }
}
