//! Why making an invite or joining with a code failed, and what to do next about it.

use crate::advice::{Advice, NextStep, Warning};
use crate::device::DeviceError;
use crate::invite::InviteCodeError;
use crate::sync::{SyncError, TransportError};

/// Why an invite (or a device code) is not ready for the other device to use.
#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    /// It could not be made (no relay, the partner joined already, ...).
    #[error(transparent)]
    Make(DeviceError),
    /// It was made but the sync that announces it failed: it is stored here and goes
    /// out with the next sync, and works from then on (so the code is given too).
    #[error("the code was created but has not reached the relay yet")]
    Unsent {
        /// The code, as given to the partner (or typed on the other device).
        code: String,
        /// When it stops admitting anyone (ms).
        expires_at: i64,
        /// Why the sync failed.
        #[source]
        source: Box<DeviceError>,
    },
    /// The relay refused the shared space's changes, so it does not know the invite.
    #[error("no code to give: the relay refused the invite, so a code would admit no one")]
    Refused(Warning),
}

impl Advice for InviteError {
    fn next_step(&self) -> Option<NextStep> {
        match self {
            InviteError::Make(e) => e.next_step(),
            InviteError::Unsent { .. } => Some(NextStep::SyncAgain),
            InviteError::Refused(w) => w.next.clone(),
        }
    }
}

/// A code whose announcing sync failed: given, when the relay could not be reached (it
/// works once a sync sends it); refused, when the relay answered no (it would not).
pub(super) fn not_sent(code: String, expires_at: i64, e: DeviceError) -> InviteError {
    if let DeviceError::Sync(SyncError::Transport(TransportError::Refused { .. })) = &e {
        let text = e.to_string();
        return InviteError::Refused(match e.next_step() {
            Some(step) => Warning::then(text, step),
            None => Warning::new(text),
        });
    }
    InviteError::Unsent {
        code,
        expires_at,
        source: Box::new(e),
    }
}

/// Why joining with a code failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The code is not a Duet code, or is damaged.
    #[error(transparent)]
    Code(InviteCodeError),
    /// A partner's invite code needs the name the partner will see.
    #[error("a name is required with a partner's invite code")]
    NameRequired,
    /// A device code (it makes this device one of its maker's, who can read all they
    /// wrote, private reflections included) given with another person's name: most
    /// likely a partner handed the wrong code. Refused before anything is used up.
    #[error(
        "this is a device code of {0}'s, not a partner's invite: it makes this device one of {0}'s, with everything {0} wrote, private reflections included (if you are {0}, join without giving a name)"
    )]
    DeviceCodeOfAnother(String),
    /// This device could not be prepared (the home is set up already, the code expired, ...).
    #[error(transparent)]
    Setup(DeviceError),
    /// The relay said no (a used, expired or unknown code); the half-made device was
    /// given up, so the same home can join with a new code.
    #[error("the relay refused to let this device join: {message} ({status} {error})")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The relay's error code.
        error: String,
        /// The relay's words.
        message: String,
        /// Whether the code was a device code (made on one's own other device).
        device_code: bool,
    },
    /// The partner invite was made by this very person: a device that tries its own
    /// code joins no one (it said "joined" while the invite stayed open).
    #[error(
        "this is your own invite, made on this device or another of yours: give the code to your partner, who joins with it on their device"
    )]
    OwnInvite,
    /// A code given to a home whose device is in the space already (its join finished):
    /// its own device code, or one another device used.
    #[error(
        "this device is in this shared space already, so the code joins nothing here: a device code is for your new device (join with it there, or in a new home on this computer), an invite for your partner's"
    )]
    AlreadyJoined,
    /// This home's device no longer belongs to the space (it was removed, or its person
    /// left): no code brings it back, and a join "finished" in it joined nothing.
    #[error(
        "{0}; a device that was removed or left cannot join again: what it holds stays readable here, and a new device joins in a new home"
    )]
    Departed(String),
    /// Joined on this device, but the first sync failed; the next sync finishes it.
    #[error("joined locally, but the first sync failed")]
    FirstSync(#[source] DeviceError),
}

impl Advice for JoinError {
    fn next_step(&self) -> Option<NextStep> {
        match self {
            JoinError::Code(e) => e.next_step(),
            JoinError::NameRequired => Some(NextStep::GiveName),
            JoinError::Setup(e) => e.next_step(),
            JoinError::Refused {
                error, device_code, ..
            } => {
                use crate::protocol::ErrorCode;
                let is = |code: ErrorCode| error.as_str() == code.as_str();
                // A space or invite the relay has not heard of: made offline, maybe.
                let unknown = is(ErrorCode::UnknownInvite) || is(ErrorCode::NoSuchSpace);
                Some(match (unknown, *device_code) {
                    (true, false) => NextStep::PartnerSyncsInvite,
                    (true, true) => NextStep::OtherDeviceSyncsCode,
                    (false, true) if is(ErrorCode::InviteRevoked) => NextStep::DeviceCodeWithdrawn,
                    (false, true) => NextStep::NewDeviceCode,
                    // Used, or the space holds two people already: a new invite would
                    // not help; a device of one of them joins with a device code.
                    (false, false) if is(ErrorCode::InviteUsed) => NextStep::InviteUsedUp,
                    (false, false) if is(ErrorCode::NotAMember) => NextStep::AddOwnDevice,
                    (false, false) => NextStep::NewInvite,
                })
            }
            JoinError::FirstSync(_) => Some(NextStep::SyncAgain),
            JoinError::DeviceCodeOfAnother(_) => Some(NextStep::NewInvite),
            JoinError::OwnInvite | JoinError::AlreadyJoined => None,
            JoinError::Departed(_) => Some(NextStep::OtherHome),
        }
    }
}
