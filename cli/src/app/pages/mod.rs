//! The app's pages, one module each; every one reads and writes through the
//! application layer (`duet_core::app`) and renders with maud.

pub mod backup;
pub mod came_from;
pub mod checkin;
pub mod confirm;
pub mod devices;
pub mod edit;
pub mod goal;
pub mod history;
pub mod invites;
pub mod layout;
pub mod leave;
pub mod reflections;
pub mod relay;
pub mod report;
pub mod setup;
pub mod short_code;
pub mod start_over;
pub mod steps;
pub mod today;
