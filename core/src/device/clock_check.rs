//! Whether this device's clock agrees with the relay's. Ratings and check-in closes are
//! dated by this device's clock and compared with the partner's on their device: a clock
//! days off put a blind rating in a round the partner's never meets (both stayed
//! sealed, each device waiting for the other) and made a close reveal one side only.
//! Each sync records how far the relay's clock is (the `Date` of its answers); a rating
//! or a close is refused while the latest sync found the two apart by more than
//! [`CLOCK_TOLERANCE_MS`].

use super::{Device, DeviceError};
use crate::advice::{NextStep, Warning};
use crate::clock::Clock;
use crate::store::{SpaceKind, SpaceRecord};
use crate::sync::{SyncReport, Transport};

/// How far this device's clock may be from the relay's: devices that keep their time
/// automatically are within a second; a `Date` has whole seconds.
pub const CLOCK_TOLERANCE_MS: i64 = 5 * 60 * 1000;

/// The most a clock found behind the relay's may have been behind to be taken as set
/// right once it reads the relay's time of that sync (a clock further behind stays
/// refused until a sync measures it again: days on could be days of use).
const SET_RIGHT_BEHIND_MS: i64 = 60 * 60 * 1000;

/// "this device's clock is 10 days ahead of the relay's", from how far the relay's
/// clock is ahead of this device's (ms; negative: behind).
pub fn clock_disagrees(relay_ahead: i64) -> String {
    format!("this device's clock is {}", apart(relay_ahead))
}

/// "10 days ahead of the relay's", from how far the relay's clock is ahead of this
/// device's (ms; negative: behind).
fn apart(relay_ahead: i64) -> String {
    let which = if relay_ahead > 0 {
        "behind"
    } else {
        "ahead of"
    };
    format!("{} {which} the relay's", about(relay_ahead))
}

/// "at this device's latest sync, its clock was 10 days ahead of the relay's": what a
/// refusal says, from the latest measurement (the clock may have been set since; only a
/// sync measures it again).
pub fn clock_disagreed(relay_ahead: i64) -> String {
    format!(
        "at this device's latest sync, its clock was {}",
        apart(relay_ahead)
    )
}

/// A difference of clocks in words, to the nearest minute (a `Date` has whole seconds
/// and an answer takes some; "47 hours" for two days less a few seconds would mislead).
pub(super) fn about(ms: i64) -> String {
    let ms = ms.saturating_abs();
    // Near the tolerance, "5 minutes" would read as within it: the seconds are said.
    if ms < 2 * CLOCK_TOLERANCE_MS - 30_000 {
        let secs = (ms + 500) / 1000;
        let (m, s) = (secs / 60, secs % 60);
        let minutes = crate::words::count(m as usize, "minute", "minutes");
        return match (m, s) {
            (_, 0) => minutes,
            (0, _) => crate::words::count(s as usize, "second", "seconds"),
            _ => format!(
                "{minutes} {}",
                crate::words::count(s as usize, "second", "seconds")
            ),
        };
    }
    let minutes = ms.saturating_add(30_000) / 60_000;
    crate::words::span(minutes.saturating_mul(60))
}

/// How far before its goal's making a rating may be dated: the two devices' clocks may
/// each be minutes off, and the rounds take a day.
const BEFORE_GOAL_MS: i64 = 60 * 60 * 1000;

/// Refuses a rating dated (`now`) well before its goal was made (`made`).
fn ensure_after(now: i64, made: i64) -> Result<(), DeviceError> {
    if now >= made.saturating_sub(BEFORE_GOAL_MS) {
        return Ok(());
    }
    Err(DeviceError::ClockBeforeGoal {
        now: crate::clock::utc_minute(now),
        made: crate::clock::utc_minute(made),
    })
}

impl Device {
    /// Refuses a rating dated now, by the system clock, well before its goal was made
    /// (`made`), unless the latest sync found this clock right: then the device that made
    /// the goal was ahead, and refusing would leave the goal unrated by both partners
    /// until its date. A fixed clock (`DUET_NOW`) is the tester's own, as for the relay's.
    pub(crate) fn ensure_after_goal(&self, made: i64) -> Result<(), DeviceError> {
        match self.clock {
            Clock::System => ensure_after(self.now(), made).or_else(|refused| {
                let shared = self.store.space(SpaceKind::Shared)?;
                let measured = self.store.relay_clock(&shared.id)?.is_some();
                match measured && self.ensure_clock_agrees().is_ok() {
                    true => Ok(()),
                    false => Err(refused),
                }
            }),
            Clock::Fixed(_) => Ok(()),
        }
    }

    /// Refuses a rating or a close while the latest sync found this device's clock more
    /// than [`CLOCK_TOLERANCE_MS`] from the relay's, or since it the clock went back
    /// (more than the tolerance) other than to about the relay's time from ahead of it (a
    /// clock that was ahead, set right; the next sync measures it again), unless it was
    /// behind by at most [`SET_RIGHT_BEHIND_MS`] and reads the relay's time of then. A
    /// fixed clock (`DUET_NOW`) is the tester's own.
    pub fn ensure_clock_agrees(&self) -> Result<(), DeviceError> {
        if self.clock != Clock::System {
            return Ok(());
        }
        let rec = self.store.space(SpaceKind::Shared)?;
        let Some((ahead, at)) = self.store.relay_clock(&rec.id)? else {
            return Ok(());
        };
        let now = self.now();
        if now < at {
            // The relay's time now is at least `at + ahead`, as the clock read then.
            let set_right = ahead < -CLOCK_TOLERANCE_MS
                && now >= at.saturating_add(ahead).saturating_sub(CLOCK_TOLERANCE_MS);
            if set_right {
                return Ok(());
            }
            if now < at.saturating_sub(CLOCK_TOLERANCE_MS) {
                return Err(DeviceError::ClockMovedBack(at - now));
            }
        }
        if ahead.saturating_abs() <= CLOCK_TOLERANCE_MS {
            return Ok(());
        }
        // A clock found behind by at most an hour that now reads at least the relay's
        // time then: set right, or that much later, and either way within what the
        // rounds take (a day): rating offline goes on (a sync measures it again).
        let then = at.saturating_add(ahead).saturating_sub(CLOCK_TOLERANCE_MS);
        if (1..=SET_RIGHT_BEHIND_MS).contains(&ahead) && now >= then {
            return Ok(());
        }
        Err(DeviceError::ClockOff(ahead))
    }

    /// Records how far the relay's clock is from this device's after a sync of the
    /// shared space (the one whose times the partner compares; the only one read), and
    /// warns when they disagree.
    pub(super) fn record_relay_clock(
        &mut self,
        rec: &SpaceRecord,
        transport: &dyn Transport,
        report: &mut SyncReport,
    ) -> Result<(), DeviceError> {
        if rec.kind != SpaceKind::Shared || self.clock != Clock::System {
            return Ok(());
        }
        let Some(ahead) = transport.relay_ahead_ms() else {
            return Ok(());
        };
        let now = self.now();
        self.store.set_relay_clock(&rec.id, ahead, now)?;
        if report.departed.is_none() && ahead.saturating_abs() > CLOCK_TOLERANCE_MS {
            report.warnings.push(Warning::then(
                format!(
                    "{}: ratings and check-ins are dated by this device's clock, and your \
                     partner's device places them (and opens blind ratings together) by it; \
                     until the clocks agree (within {}) this device refuses to rate or close \
                     a check-in",
                    clock_disagrees(ahead),
                    about(CLOCK_TOLERANCE_MS)
                ),
                NextStep::SetClock,
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::about;

    #[test]
    fn a_difference_near_the_tolerance_is_said_to_the_second_and_a_large_one_rounded() {
        assert_eq!(about(310_200), "5 minutes 10 seconds");
        assert_eq!(about(-300_000), "5 minutes");
        assert_eq!(about(40_000), "40 seconds");
        assert_eq!(about(599_400), "10 minutes");
        assert_eq!(about(2 * 86_400_000 - 3_000), "2 days");
    }
}
