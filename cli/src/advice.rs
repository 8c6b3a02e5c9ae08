//! The command line's words for core's next steps ([`NextStep`]): the advice that ends an
//! error or a warning names `duet` commands here, never in core.

use duet_core::advice::{Advice, NextStep, Warning};
use duet_core::device::DeviceError;
use duet_core::invite::InviteCodeError;
use duet_core::pairing_code::PairingError;
use duet_core::store::StoreError;
use duet_core::sync::{SyncError, TransportError};

/// What a sealed rating says on a device that left the shared space or was removed
/// from it: the reveals go under keys it never learns.
pub const STAYS_SEALED: &str =
    "this device is no longer in the shared space, so it stays sealed here";

/// What to do when a relay does not hold a space this device syncs.
const RELAY_LOST_SPACE: &str = "check the URL with `duet status`; if it is right, the relay \
     no longer holds this space (restored from an older backup, or its data lost): tell its \
     operator, and keep this device's data (it holds the space)";

/// Why a device code was withdrawn, and what to do.
const DEVICE_CODE_WITHDRAWN: &str = "it was withdrawn on your other device (`duet invite \
     revoke`, or a device removal or your partner's leave, which withdraw every open code), \
     the device that made it was removed, or you left the shared space there (a device of \
     someone who left cannot join it); if you have not left, make a new one on your other \
     device (`duet device add`)";

/// [`NextStep::SetClock`].
const SET_CLOCK: &str = "set this device's clock right (automatic date and time), then run \
     `duet sync`; if it is right already, the relay's clock is wrong: ask its operator to set it";

/// [`NextStep::CheckClock`].
const CHECK_CLOCK: &str = "run `duet sync` (it checks this device's clock against the \
     relay's) and rate again: if this device's clock is right, the goal was dated ahead by the \
     device that made it, and is rated once a sync finds this clock right; if not, set this \
     device's clock right (automatic date and time) first";

/// What to do next, in the command line's words.
pub fn say(step: &NextStep) -> String {
    match step {
        NextStep::SetUp => {
            "run `duet init --name NAME` or `duet join CODE --name NAME` first".into()
        }
        NextStep::OtherHome => {
            "use another --home, or begin again in this one with `duet start-over` (a device \
             still in a space with a partner leaves it first: `duet leave`)"
                .into()
        }
        NextStep::CheckHomePermissions => "check the permissions of --home / DUET_HOME".into(),
        NextStep::MountWritable => "the disk that holds --home / DUET_HOME is mounted read-only (the system does so after a disk error): mount it for writing again, then run the command again".into(),
        NextStep::GiveName => "pass --name NAME".into(),
        NextStep::SetRelay => "run `duet relay set URL` first".into(),
        NextStep::CheckRelayThenSync => "check that it is running and the URL is right \
             (`duet status`), then run `duet sync` again"
            .into(),
        NextStep::CheckRelayUrl => "check the URL with `duet status`".into(),
        NextStep::RelayLostSpace => RELAY_LOST_SPACE.into(),
        NextStep::SyncAgain => "run `duet sync` again to read on".into(),
        NextStep::DropWaiting => {
            "once they are dropped (`duet sync --drop-waiting`), sync reads on".into()
        }
        NextStep::NewInvite => "ask your partner for a new one (`duet invite`)".into(),
        NextStep::NewDeviceCode => {
            "make a new one on your other device (`duet device add`)".into()
        }
        NextStep::PartnerSyncsInvite => "a code made offline reaches the relay with its \
             maker's next sync: ask your partner to run `duet sync`, then join again; \
             otherwise ask for a new one (`duet invite`)"
            .into(),
        NextStep::OtherDeviceSyncsCode => "a code made offline reaches the relay with its \
             device's next sync: run `duet sync` on your other device, then join again; \
             otherwise make a new one there (`duet device add`)"
            .into(),
        NextStep::DeviceCodeWithdrawn => DEVICE_CODE_WITHDRAWN.into(),
        NextStep::CopyInviteAgain => {
            "ask your partner to run `duet invite` again and copy the whole code (or `duet invite --short` and read its short code again)".into()
        }
        NextStep::VerifyAndReAdd => {
            "compare `duet verify` with your partner, then remove and re-add this device".into()
        }
        NextStep::MakeCodeAgain => {
            "a device that has still to join needs a new code (`duet device add`)".into()
        }
        NextStep::AddOwnDevice | NextStep::StartOverForSomeoneNew => partner_gone(step),
        NextStep::InviteUsedUp => "ask your partner for a new invite; if it was a device of \
             yours that joined with it, run `duet device add` there to make a code for this one"
            .into(),
        NextStep::RemoveOwnDevice { device } => format!(
            "if it is lost or you no longer trust it, run `duet device remove {}`",
            crate::output::short_key(device)
        ),
        NextStep::JoinAgain { device } => join_again(device.as_deref()),
        NextStep::WriteReflection => "write one with `duet reflect TEXT`".into(),
        NextStep::ListReflections => {
            "`duet reflections` (and `duet reflections --private`) lists them with their ids".into()
        }
        NextStep::ReplyInstead { reflection } => reply_instead(reflection),
        NextStep::ReadWhatYouHave => READ_WHAT_YOU_HAVE.into(),
        NextStep::RestoreFromBackup => "move the home away and bring the device back from your \
             backup file with `duet restore FILE --home DIR` (made by `duet backup`)"
            .into(),
        NextStep::FreeSpace => {
            "free some space on the disk that holds --home / DUET_HOME, then run the command again"
                .into()
        }
        NextStep::CheckClock => CHECK_CLOCK.into(),
        NextStep::SetClock => SET_CLOCK.into(),
        NextStep::UseOneCopy | NextStep::ReplaceDevice | NextStep::CompareSafetyCode => {
            copies_and_trust(step)
        }
        NextStep::CreationToken { relay } => format!(
            "ask its operator for one and run `duet relay set {0} --token TOKEN` (or \
             `DUET_CREATE_TOKEN=TOKEN duet relay set {0}`, out of the process list)",
            relay.as_deref().unwrap_or("URL")
        ),
    }
}

/// What to do about a device copied, stuck, or perhaps misbehaving.
fn copies_and_trust(step: &NextStep) -> String {
    match step {
        NextStep::UseOneCopy => "use one copy only: to use both, add the second as a device \
             of its own (`duet device add`)"
            .into(),
        NextStep::ReplaceDevice => "its person can go on with a new device (`duet device add` \
             there, then `duet device remove` the old one)"
            .into(),
        NextStep::CompareSafetyCode => {
            "compare the safety code with your partner (`duet verify`)".into()
        }
        _ => String::new(),
    }
}

/// Joining again in a new home, for a device whose join was refused: one in the shared
/// space (`device`) is removed from there afterwards.
fn join_again(device: Option<&str>) -> String {
    match device {
        Some(device) => format!(
            "to have them here, make a new code on your other device (`duet device add`), join \
             with it in a new home (`duet join CODE --home NEWDIR`), then remove this device \
             from there (`duet device remove {}`)",
            crate::output::short_key(device)
        ),
        None => "ask for a new code (your partner's `duet invite`, or `duet device add` on \
                 your other device) and join with it again here (`duet join CODE`)"
            .into(),
    }
}

/// Answering a partner's reflection instead of changing it.
fn reply_instead(reflection: &str) -> String {
    format!(
        "answer it with `duet reflect --reply {} TEXT`",
        duet_core::ids::short(reflection)
    )
}

/// A warning with its advice: "what happened; what to do".
pub fn warning(w: &Warning) -> String {
    warning_in(w, say)
}

/// An error's message with its advice.
pub fn message<E: std::fmt::Display + Advice>(e: &E) -> String {
    message_in(e, say)
}

/// A warning with its advice in the words of `say` (the command line's, or the app's).
pub fn warning_in(w: &Warning, say: fn(&NextStep) -> String) -> String {
    match &w.next {
        Some(step) => format!("{}; {}", w.text, say(step)),
        None => w.text.clone(),
    }
}

/// An error's message with its advice in the words of `say`.
pub fn message_in<E: std::fmt::Display + Advice>(e: &E, say: fn(&NextStep) -> String) -> String {
    match e.next_step() {
        Some(step) => format!("{e}; {}", say(&step)),
        None => e.to_string(),
    }
}

/// What to do about an error, in the command line's words: for a network failure, what
/// to check for that failure; otherwise the next step core names.
pub fn hint(err: &anyhow::Error) -> Option<String> {
    let network = transport_error(err).and_then(network_hint);
    network.or_else(|| next_step(err).map(|step| say(&step)))
}

/// Whether the same sync could succeed later, unchanged: a relay that did not answer,
/// answered late, was busy or failed inside. Not a problem on this device (a home that
/// cannot be written, a full disk), not a relay that refused what was asked (not a
/// member, no such space, no room, a limit for the day, not a Duet relay), and not an
/// address that is wrong: those need a change first, which the error's hint names.
pub fn retry_helps(e: &DeviceError) -> bool {
    match e {
        DeviceError::Sync(SyncError::Transport(e)) => transport_retry_helps(e),
        _ => false,
    }
}

/// Whether the command that failed with `err` can succeed later as it is: its failure
/// is a relay out of reach, late or busy ([`retry_helps`]), or another `duet` process
/// that held the home's write lock for the whole wait. Such a failure exits with
/// [`EXIT_TRY_LATER`], so that a script tells "offline" from a failure that needs a
/// change first.
pub fn try_later(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|e| e.is::<TryLater>() || store_error(e).is_some_and(StoreError::is_busy))
        || transport_error(err).is_some_and(|t| transport_retry_helps(t) || for_the_day(t))
}

/// A relay's limit of new spaces for the day: the same command passes tomorrow as it is
/// (no retry within the run: it would be refused again).
fn for_the_day(e: &TransportError) -> bool {
    matches!(e, TransportError::Refused { status: 429, body }
        if body.error == duet_core::protocol::ErrorCode::TooManySpaces)
}

/// A failure said in a command's own words that can pass later as it is (exit code
/// [`EXIT_TRY_LATER`]), where the network error under it is told in those words.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TryLater(pub String);

/// Whether `err` refused a value typed into a write (a text too long, a date that is
/// not one): the arguments were wrong, as for a usage error.
pub fn bad_value(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<DeviceError>()
            .is_some_and(DeviceError::is_bad_value)
    })
}

/// Whether `err` is a stored row that did not read as its column should hold.
pub fn damaged_row(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|e| store_error(e).is_some_and(StoreError::is_damaged_row))
}

/// The store's failure `e` is, or carries (a device's, directly or through a sync).
fn store_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a StoreError> {
    e.downcast_ref::<StoreError>().or_else(|| {
        e.downcast_ref::<DeviceError>()
            .and_then(DeviceError::store_error)
    })
}

/// The exit code of a command that can succeed later as it is ([`try_later`]).
pub const EXIT_TRY_LATER: u8 = 3;

/// Whether the network failure `e` can pass later as it is ([`retry_helps`]).
pub fn transport_retry_helps(e: &TransportError) -> bool {
    use duet_core::protocol::ErrorCode;
    match e {
        TransportError::Refused { status, body } => match status {
            429 => body.error != ErrorCode::TooManySpaces,
            408 | 503 => true,
            500..=599 => match body.error {
                ErrorCode::StorageFull => false,
                // Not a relay's answer but its proxy's: a relay down or late behind it
                // (500, 502, 504) comes back; a proxy that cannot do the request does not.
                ErrorCode::HttpError => matches!(status, 500 | 502 | 504),
                _ => true,
            },
            _ => false,
        },
        TransportError::Unresolved { for_now, .. } => *for_now,
        TransportError::PlainHttp { .. } | TransportError::ExpectsTls { .. } => false,
        _ => true,
    }
}

/// The network failure in an error's chain, if it is one.
pub fn transport_error(err: &anyhow::Error) -> Option<&TransportError> {
    // Core's errors wrap each other transparently: their chain skips the inner ones.
    err.chain().find_map(|e| {
        if let Some(DeviceError::Sync(SyncError::Transport(t))) = e.downcast_ref::<DeviceError>() {
            return Some(t);
        }
        if let Some(SyncError::Transport(t)) = e.downcast_ref::<SyncError>() {
            return Some(t);
        }
        if let Some(PairingError::Transport(t)) = e.downcast_ref::<PairingError>() {
            return Some(t);
        }
        e.downcast_ref::<TransportError>()
    })
}

/// What to check after a network failure that core tells apart.
fn network_hint(e: &TransportError) -> Option<String> {
    let other_scheme = |relay: &str, from: &str, to: &str| {
        format!(
            "set the URL with `duet relay set {to}{}`",
            relay.strip_prefix(from).unwrap_or(relay)
        )
    };
    Some(match e {
        TransportError::Unresolved { for_now: true, .. } => "check your network".into(),
        TransportError::Unresolved { .. } => {
            "check the relay address (`duet relay set URL`) and your network".into()
        }
        TransportError::ConnectionRefused { .. } => {
            "is the relay running there? (`duet status` shows the URL in use)".into()
        }
        TransportError::PlainHttp { relay } => other_scheme(relay, "https://", "http://"),
        TransportError::ExpectsTls { relay } => other_scheme(relay, "http://", "https://"),
        TransportError::TimedOut { .. } => {
            "check your network and that the relay is running (`duet status` shows the URL)".into()
        }
        _ => return None,
    })
}

/// The next step of the innermost error of the chain that knows one.
pub fn next_step(err: &anyhow::Error) -> Option<NextStep> {
    err.chain().find_map(|e| {
        if let Some(e) = e.downcast_ref::<DeviceError>() {
            e.next_step()
        } else if let Some(e) = e.downcast_ref::<SyncError>() {
            e.next_step()
        } else if let Some(e) = e.downcast_ref::<TransportError>() {
            e.next_step()
        } else if let Some(e) = e.downcast_ref::<StoreError>() {
            e.next_step()
        } else if let Some(e) = e.downcast_ref::<InviteCodeError>() {
            e.next_step()
        } else {
            None
        }
    })
}

/// What to do instead of a partner invite: add a device of one's own, or (the partner
/// gone) start over to share Duet with someone new.
fn partner_gone(step: &NextStep) -> String {
    let own = "to add another device of yours, run `duet device add` instead";
    if matches!(step, NextStep::StartOverForSomeoneNew) {
        format!(
            "to share Duet with someone new, run `duet start-over` (this device is kept, \
             readable, in a folder of the home); {own}"
        )
    } else {
        own.to_string()
    }
}

/// What a device no longer in its space can still do, and how to use Duet on it again.
const READ_WHAT_YOU_HAVE: &str = "everything it had stays readable here (`duet goal list`, \
     `duet history`, `duet export`); to use Duet on this device again, `duet start-over` sets \
     it aside in a folder of its home";

/// Whether a sync failed because the relay answered with a refusal (not for want of
/// reaching it): at setup, the refusal to make the spaces, said at once (`duet init`,
/// the app's setup).
pub fn relay_refused(e: &duet_core::device::DeviceError) -> bool {
    use duet_core::sync::{SyncError, TransportError};
    matches!(
        e,
        duet_core::device::DeviceError::Sync(SyncError::Transport(TransportError::Refused { .. }))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_home_another_duet_process_kept_busy_for_the_whole_wait_can_pass_later() {
        use duet_core::lock::LockError;
        let busy = || {
            StoreError::Lock(LockError::Busy {
                home: "/home/alex/.duet".into(),
                waited_s: 60,
                holder: Some(4242),
                stopped: false,
            })
        };
        let as_rate = anyhow::Error::from(DeviceError::Store(busy()));
        assert!(try_later(&as_rate), "{as_rate}");
        let in_sync = anyhow::Error::from(DeviceError::Sync(SyncError::Store(busy())));
        assert!(try_later(&in_sync.context("sync")), "a sync's");
        let read_only = StoreError::Lock(LockError::ReadOnly {
            home: "/home/alex/.duet".into(),
        });
        assert!(!try_later(&anyhow::Error::from(DeviceError::Store(
            read_only
        ))));
    }

    #[test]
    fn a_retry_is_advised_only_where_the_same_sync_can_succeed() {
        use duet_core::protocol::{ErrorBody, ErrorCode};
        let sync = |t: TransportError| DeviceError::Sync(SyncError::Transport(t));
        let refused = |status: u16, error: ErrorCode| {
            sync(TransportError::Refused {
                status,
                body: ErrorBody {
                    error,
                    message: String::new(),
                    results: Vec::new(),
                },
            })
        };
        let refused_port = sync(TransportError::ConnectionRefused {
            host: "127.0.0.1".into(),
            port: 1,
        });
        assert!(retry_helps(&refused_port), "a relay started later");
        assert!(retry_helps(&refused(503, ErrorCode::Overloaded)));
        assert!(retry_helps(&refused(429, ErrorCode::RateLimited)));
        assert!(
            retry_helps(&refused(502, ErrorCode::HttpError)),
            "a proxy's page"
        );
        assert!(
            retry_helps(&refused(500, ErrorCode::HttpError)),
            "a proxy's page"
        );
        for (status, code) in [
            (429, ErrorCode::TooManySpaces),
            (404, ErrorCode::NoSuchSpace),
            (507, ErrorCode::StorageFull),
            (501, ErrorCode::HttpError),
            (403, ErrorCode::NotAMember),
        ] {
            let said = format!("{status} {code}");
            assert!(!retry_helps(&refused(status, code)), "{said}");
        }
        let read_only = DeviceError::Store(StoreError::Io {
            path: "/home".into(),
            cause: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        });
        assert!(!retry_helps(&read_only), "a problem on this device");
    }

    #[test]
    fn an_error_without_a_home_says_how_to_set_one_up() {
        let err = anyhow::Error::new(DeviceError::Store(StoreError::NotInitialised))
            .context("cannot open duet in /tmp/x");
        assert_eq!(next_step(&err), Some(NextStep::SetUp));
        assert!(say(&NextStep::SetUp).contains("duet init --name NAME"));
    }

    #[test]
    fn a_warning_ends_with_what_to_do() {
        let w = Warning::then("stopped at cursor 9", NextStep::SyncAgain);
        assert_eq!(
            warning(&w),
            "stopped at cursor 9; run `duet sync` again to read on"
        );
        assert_eq!(warning(&Warning::new("fine")), "fine");
    }
}
