//! The application layer: every user action as one call on [`Device`] that returns typed
//! data (serde structs and enums), never text.
//!
//! Front ends (the `duet` command line, the local app) parse what the user asked, call
//! one of these, and render the value as text or JSON; none of them reaches the store or
//! the document. Errors are typed ([`DeviceError`]): the front end adds the advice that
//! names its own commands.
//!
//! [`Device`]: crate::device::Device
//! [`DeviceError`]: crate::device::DeviceError

mod checkin;
mod checkin_plan;
mod corrections;
mod devices;
mod edits;
mod exclusive;
mod export;
mod goals;
pub(crate) mod invite_rows;
pub(crate) mod lifecycle;
mod merged_reflections;
mod pairing;
mod pairing_errors;
mod records;
mod reflections;
mod report;
mod settings;
mod short_codes;
mod status;
mod steps;
mod watch;

/// Whether a typed text shows nothing (white space and invisible characters only).
pub use crate::doc::blank;
pub use checkin::{Closed, Rated};
pub use checkin_plan::{CheckinGoal, CheckinPlan, RoundInfo};
pub use corrections::{UndoPreview, Undone};
pub use devices::{DeviceRemoved, DeviceRow, PartnerRemoval, Safety, UnverifiedDevice};
pub use edits::{GoalChanges, NewGoalInput, Owner, ReflectionInput};
pub use export::{EXPORT_FORMAT, Export, ExportMe, PersonRecord, SpaceExport};
pub use goals::{GoalDetail, GoalList, GoalShowJson, overdue};
pub use invite_rows::InviteRow;
pub use lifecycle::{Partner, RevokeTarget};
pub use merged_reflections::MergedReflection;
pub use pairing::{InviteError, JoinError, Joined};
pub use records::{
    GoalRecord, RatingRecord, ReflectionRecord, SealedRecord, StepRecord, iso, sorted_steps,
};
pub use reflections::{OwnReflection, ReflectionItem, ReflectionQuery};
pub use report::{
    PartnerRatings, Period, ReflectionGroup, ReportData, ReportGoal, ReportQuery, ReportReflection,
};
pub use status::{LeftStatus, MemberStatus, RefusedStatus, SpaceStatus, Status};
pub use steps::{AlreadyDone, Assigned, Assignee, Completed};
pub use watch::LiveTarget;
