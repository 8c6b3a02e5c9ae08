//! What the user can do next about an error or a warning, named in no front end's words:
//! core says which step, and each front end says it its own way (the command line names
//! its commands, a local app shows a button). Core's own messages say what happened only.

use serde::Serialize;

/// A next step the user can take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum NextStep {
    /// Create this device's identity, or join a partner's space.
    SetUp,
    /// Use another home to start over (this one is set up already).
    OtherHome,
    /// Check that the home directory can be created and written.
    CheckHomePermissions,
    /// The disk that holds the home is mounted read-only: mount it for writing again.
    MountWritable,
    /// Give a name.
    GiveName,
    /// Set the relay to sync through.
    SetRelay,
    /// Check that the relay runs and its URL is right, then sync again.
    CheckRelayThenSync,
    /// Check the relay's URL.
    CheckRelayUrl,
    /// The relay does not hold a space this device syncs: check its URL, else tell its
    /// operator (restored from an older backup, or its data lost).
    RelayLostSpace,
    /// Sync again (to read on, or to retry).
    SyncAgain,
    /// Drop the events that wait for an earlier one the relay never served.
    DropWaiting,
    /// Ask the partner for a new invite code.
    NewInvite,
    /// Make a new device code on one's other device.
    NewDeviceCode,
    /// The relay does not know the partner's invite: it may have been made offline and
    /// not synced yet (then the partner syncs and the join is tried again), or be wrong.
    PartnerSyncsInvite,
    /// The relay does not know the device code: made offline on the other device and not
    /// synced yet, or wrong.
    OtherDeviceSyncsCode,
    /// The device code was withdrawn: on the other device, or by its person's leave.
    DeviceCodeWithdrawn,
    /// Ask the partner to make the invite code again and copy all of it.
    CopyInviteAgain,
    /// Compare safety codes with the partner, then remove and re-add this device.
    VerifyAndReAdd,
    /// Make a device code to add another device of one's own.
    AddOwnDevice,
    /// A partner's invite was used already (it admits one device once): ask the partner
    /// for a new one, or, if one's own device used it, make a device code there.
    InviteUsedUp,
    /// Make a new code for a device that has still to join (the old ones were withdrawn).
    MakeCodeAgain,
    /// Remove one of one's own devices (from every space still holding it), if it is
    /// lost or no longer trusted.
    RemoveOwnDevice {
        /// The device's key, hex.
        device: String,
    },
    /// Join again with a new code: in this home when this device joined nothing, else in
    /// a new home, then remove this device (which joined the shared space only) from there.
    JoinAgain {
        /// This device's key, hex, when it joined the shared space (to remove it then).
        device: Option<String>,
    },
    /// Write a (shared) reflection first.
    WriteReflection,
    /// See the reflections with their ids (shared and private).
    ListReflections,
    /// Answer the partner's reflection with a reply instead.
    ReplyInstead {
        /// The reflection's id.
        reflection: String,
    },
    /// What this device holds stays readable and exportable here.
    ReadWhatYouHave,
    /// The partner is gone from the shared space: sharing Duet with someone new starts
    /// over (this device set aside, still readable); another own device is added instead.
    StartOverForSomeoneNew,
    /// Move the damaged home away and restore this device from a backup file.
    RestoreFromBackup,
    /// Free space on the disk that holds this device's data, then do it again.
    FreeSpace,
    /// Set this device's clock right, then sync (or, if it is right, have the relay's
    /// operator set the relay's).
    SetClock,
    /// Sync, which measures this device's clock against the relay's, then do it again: a
    /// goal dated ahead by the device that made it is rated once this clock is found
    /// right.
    CheckClock,
    /// Use one copy of a device only; to use both, add the second as a device of its own.
    UseOneCopy,
    /// A device whose changes can never be applied: its person goes on with a new device
    /// and removes the old one.
    ReplaceDevice,
    /// Compare the safety code with the partner.
    CompareSafetyCode,
    /// Ask the relay's operator for a creation token and give it for this relay.
    CreationToken {
        /// The relay that asks for one, when known.
        relay: Option<String>,
    },
}

/// Something a sync wants the user to know: what happened, and what can be done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// What happened (no advice).
    pub text: String,
    /// What the user can do about it, if anything.
    pub next: Option<NextStep>,
}

impl Warning {
    /// A warning with nothing to do about it.
    pub fn new(text: impl Into<String>) -> Warning {
        Warning {
            text: text.into(),
            next: None,
        }
    }

    /// A warning with a next step.
    pub fn then(text: impl Into<String>, next: NextStep) -> Warning {
        Warning {
            text: text.into(),
            next: Some(next),
        }
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// An error that knows what the user can do next.
pub trait Advice {
    /// The next step, if there is one.
    fn next_step(&self) -> Option<NextStep>;
}
