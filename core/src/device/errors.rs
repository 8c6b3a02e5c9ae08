//! Why a device workflow failed: [`DeviceError`], each with the next step a front end
//! words.

use crate::advice::{Advice, NextStep};
use crate::doc::DocError;
use crate::store::StoreError;
use crate::sync::SyncError;

/// Why a device workflow failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// Store failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Document failure.
    #[error(transparent)]
    Doc(#[from] DocError),
    /// Sync failure.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The name is empty.
    #[error("a name is required")]
    EmptyName,
    /// The invite has expired already, this long ago (ms) by this device's clock.
    #[error("this invite code expired {} ago by this device's clock{}", crate::words::span(.0 / 1000), clock_hint(*.0))]
    InviteExpired(i64),
    /// The device code has expired already, this long ago (ms) by this device's clock.
    #[error("this device code expired {} ago by this device's clock{}", crate::words::span(.0 / 1000), clock_hint(*.0))]
    DeviceCodeExpired(i64),
    /// What the user typed names no goal or step, or several.
    #[error(transparent)]
    Resolve(#[from] crate::resolve::ResolveError),
    /// No current device's key starts with what the user typed.
    #[error("no current device matches {0:?}")]
    NoSuchDevice(String),
    /// What the user typed names only a device that was removed or whose person left.
    #[error(
        "device {0:?} is no longer in your spaces (it was removed, or its person left): nothing more to do"
    )]
    DeviceGone(String),
    /// Several current devices' keys start with what the user typed.
    #[error("{0:?} matches several devices; type more of the key")]
    AmbiguousDevice(String),
    /// The device named is the one being used.
    #[error("this is the device you are using; remove it from another of your devices")]
    ThisDevice,
    /// The shared space's membership is not known yet.
    #[error("the shared space has not been synced yet")]
    NotSynced,
    /// A confirmation of a safety code that is no longer the space's: a device joined or
    /// left since it was shown.
    #[error(
        "the safety code changed since it was shown (a device joined or left), or was \
         mistyped: it is now {0}; compare this code in person before confirming it"
    )]
    SafetyCodeChanged(String),
    /// A confirmation of something that cannot be a safety code (not its number of digits,
    /// or letters in it): a typo, not a change of the space.
    #[error(
        "that is not a safety code: it has {got} digits where the code has {expected} (in groups of five, as it is shown); type the code both devices show, after comparing it in person"
    )]
    SafetyCodeMalformed {
        /// Digits typed.
        got: usize,
        /// Digits of a safety code.
        expected: usize,
    },
    /// A confirmation of the safety code with no partner's device in the shared space to
    /// compare it with: nothing is recorded. `Some(name)` once the partner has gone.
    #[error("{}", no_partner_to_compare(.0.as_deref()))]
    NoPartnerToCompare(Option<String>),
    /// A goal weight that is not a number more than 0 (up to the model's limit).
    #[error(
        "the weight must be a number more than 0 and at most {max} (got {0}): it says how much \
         this goal counts in your T-score; to leave a goal out of the scores, pause it \
         (set its status to paused)",
        max = crate::model::limits::MAX_WEIGHT
    )]
    BadWeight(f64),
    /// `rate --amend` with no earlier rating of this person that counts (the goal's
    /// title): none yet, or the latest was undone.
    #[error(
        "this device has no rating of yours of goal {0:?} that counts (none yet, it was \
         undone, or it was made on another device of yours and has not arrived: sync first), \
         so there is nothing to correct; rate it afresh instead"
    )]
    NothingToAmend(String),
    /// A correction asked from a page that showed another latest rating than there is
    /// now: it would correct a rating the person did not see.
    #[error(
        "your latest rating of goal {0:?} is not the one shown when you asked to correct it \
         (another was made since, on this device or another); nothing was written: look at \
         the goal again and correct the latest if it is wrong"
    )]
    CorrectedMeanwhile(String),
    /// One check-in naming a goal twice (two words of one title, say): two ratings of it
    /// in one sitting would both count, the second as a new blind rating.
    #[error("this check-in rates goal {0:?} twice; nothing was written: give each goal once")]
    RatedTwice(String),
    /// A home beside which a restore stopped half-way left its folder (that device's
    /// keys and store): a new device set up here would sit beside a half-restored one.
    #[error(
        "a restore into {0} was stopped before it finished, and its folder {1} (which holds \
         that device's keys) is still beside it: run the restore again to bring that device \
         back, or delete that folder to set up a new device here"
    )]
    RestoreStopped(std::path::PathBuf, std::path::PathBuf),
    /// `undo` with nothing of this person's to undo.
    #[error(
        "there is nothing of yours to undo on this device: no rating, reflection or step \
         completion (one made on another device of yours is here once this one syncs)"
    )]
    NothingToUndo,
    /// `undo` from a page that named another act than the latest one now (a page left
    /// open while something newer was done, in another window or on the command line).
    #[error(
        "your latest rating, reflection or step completion is no longer the one that page named (something newer was done since, or it was undone already elsewhere); nothing was undone"
    )]
    UndoMoved,
    /// Editing, withdrawing or replying to a reflection that cannot take it.
    #[error("{0}")]
    Reflection(String),
    /// Editing, withdrawing or replying to a reflection that cannot take it, with what
    /// to do instead.
    #[error("{0}")]
    ReflectionThen(String, NextStep),
    /// This device is no longer a member of the shared space (removed, or its person
    /// left): it refuses shared edits rather than queue what can never be sent.
    #[error("{}", .0.describe())]
    Departed(crate::store::Departed),
    /// This device's clock disagreed with the relay's at the latest sync by more than
    /// [`crate::device::CLOCK_TOLERANCE_MS`] (the relay's ahead by this many ms; negative:
    /// behind).
    #[error(
        "{}; nothing was written: a rating and a check-in are dated by this device's clock, and your partner's device places them (and opens blind ratings together) by it",
        super::clock_check::clock_disagreed(*.0)
    )]
    ClockOff(i64),
    /// This device's clock went back this many ms since the sync that measured it (not
    /// as a clock ahead of the relay's set right would).
    #[error(
        "this device's clock went back {} since its latest sync, so it no longer reads the relay's time; nothing was written: a rating and a check-in are dated by this device's clock, and your partner's device places them (and opens blind ratings together) by it",
        super::clock_check::about(*.0)
    )]
    ClockMovedBack(i64),
    /// A rating dated well before its goal was made (by whichever device made it): this
    /// device's clock is behind, and the rating would open the goal's progress and the
    /// report's period before the goal existed.
    #[error(
        "this device's clock reads {now}, before this goal was made ({made}), so the rating would be dated before it; nothing was written"
    )]
    ClockBeforeGoal {
        /// This device's time, as its clock reads it.
        now: String,
        /// When the goal was made.
        made: String,
    },
    /// A partner invite once the partner has joined.
    #[error(
        "{} has joined already: a shared space holds two persons, so it takes no more partner invites",
        crate::names::one_line(.0)
    )]
    PartnerJoined(String),
    /// A partner invite once the partner has left or been removed.
    #[error(
        "{name} is no longer in this shared space, and it takes no new partner: it holds your history with {name}, which a new partner would read",
        name = crate::names::one_line(.0)
    )]
    PartnerGone(String),
    /// No open invite matches what the user gave.
    #[error("no open invite matches {0:?}")]
    NoSuchInvite(String),
    /// A shared write, or a goal looked up, in a space whose join never finished: its
    /// goals have not arrived yet (nothing is lost; the next sync finishes the join).
    #[error(
        "joining is not finished: the first sync with the relay did not complete, so the shared goals have not arrived on this device yet (nothing is lost)"
    )]
    JoinUnfinished,
    /// A write in a space whose join the relay refused for good (the code died first).
    #[error("{alert}")]
    JoinRefused {
        /// What the refusal left, as `duet status` says it.
        alert: String,
        /// This device's key, when it is in the shared space all the same.
        device: Option<String>,
        /// The relay's refusal, when a sync just met it (a join's first sync gives the
        /// device up on it, [`crate::app::JoinError::Refused`]).
        refusal: Option<Box<(u16, crate::protocol::ErrorBody)>>,
    },
    /// A step for `partner` before a partner has joined.
    #[error(
        "no partner has joined this shared space yet; give the step to `me` or `nobody`, or name your partner once they have joined"
    )]
    NoPartner,
    /// A step given to someone who is no longer in the shared space.
    #[error(
        "{0} is no longer in this shared space and would never see the step; give it to `me` or `nobody`"
    )]
    AssigneeGone(String),
    /// The home's store is open in another process (or connection), so it cannot be set
    /// aside or replaced safely.
    #[error(
        "another duet command kept {} open for several seconds (a `duet sync --watch`, or `duet app`, or a script running duet again and again); stop it, then try again; nothing was changed",
        .0.display()
    )]
    HomeInUse(std::path::PathBuf),
}

/// A code that expired more than a day ago for a code just made points at this
/// device's clock (codes live 24 hours by default): said, with what to do.
fn clock_hint(ago_ms: i64) -> &'static str {
    if ago_ms > 3600 * 1000 {
        " (if the code was made just now, this device's clock is ahead: set its date and time right, then join again)"
    } else {
        ""
    }
}

impl DeviceError {
    /// The store's failure under this one, directly or through a sync.
    pub fn store_error(&self) -> Option<&StoreError> {
        match self {
            DeviceError::Store(e) | DeviceError::Sync(crate::sync::SyncError::Store(e)) => Some(e),
            _ => None,
        }
    }

    /// Whether a value typed into a write was refused (a text too long, a level or a
    /// date out of range): nothing was written, and the same write with another value
    /// passes. A command line says so as it says wrong arguments.
    pub fn is_bad_value(&self) -> bool {
        matches!(
            self,
            DeviceError::Doc(DocError::Invalid(_) | DocError::BadDate(_) | DocError::Empty(_))
                | DeviceError::BadWeight(_)
                | DeviceError::RatedTwice(_)
                | DeviceError::EmptyName
                | DeviceError::Resolve(crate::resolve::ResolveError::Empty { .. })
                | DeviceError::SafetyCodeMalformed { .. }
        )
    }
}

impl Advice for DeviceError {
    fn next_step(&self) -> Option<NextStep> {
        match self {
            DeviceError::Store(e) => e.next_step(),
            DeviceError::Sync(e) => e.next_step(),
            DeviceError::EmptyName => Some(NextStep::GiveName),
            DeviceError::InviteExpired(_) => Some(NextStep::NewInvite),
            DeviceError::DeviceCodeExpired(_) => Some(NextStep::NewDeviceCode),
            DeviceError::Departed(_) => Some(NextStep::ReadWhatYouHave),
            DeviceError::ClockOff(_) | DeviceError::ClockMovedBack(_) => Some(NextStep::SetClock),
            DeviceError::ClockBeforeGoal { .. } => Some(NextStep::CheckClock),
            DeviceError::ReflectionThen(_, step) => Some(step.clone()),
            DeviceError::JoinRefused { device, .. } => Some(NextStep::JoinAgain {
                device: device.clone(),
            }),
            DeviceError::JoinUnfinished => Some(NextStep::SyncAgain),
            DeviceError::PartnerJoined(_) => Some(NextStep::AddOwnDevice),
            DeviceError::PartnerGone(_) => Some(NextStep::StartOverForSomeoneNew),
            _ => None,
        }
    }
}

/// Words for [`DeviceError::NoPartnerToCompare`].
fn no_partner_to_compare(gone: Option<&str>) -> String {
    match gone {
        Some(name) => format!(
            "{} is no longer in the shared space (they left, or their last device was \
             removed): there is no partner's code to compare yours with, so nothing was recorded",
            crate::names::one_line(name)
        ),
        None => "no partner has joined the shared space yet, so nothing was recorded: once \
                 they have, compare the code with theirs in person, then confirm it"
            .into(),
    }
}
