//! The one clock core reads: the system clock, or a fixed time that a front end or a test
//! gives it (`DUET_NOW`), so that event times, invite expiry and edit times agree and can
//! be tested.

/// Where "now" comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// A fixed time, milliseconds since the Unix epoch.
    Fixed(i64),
}

/// `DUET_NOW` holds neither milliseconds nor an RFC 3339 time.
#[derive(Debug, thiserror::Error)]
#[error(
    "DUET_NOW must be milliseconds since 1970 or an RFC 3339 time (got {0:?}); unset it to use the system clock"
)]
pub struct BadClock(pub String);

/// The earliest time a system clock is believed: 2025-01-01T00:00:00Z, before this
/// version was made. A clock before it lost its time (a device set back to 1970 or
/// 2000), and every rating, reflection and check-in dated by it would be misplaced on
/// the partner's device for good.
pub const EARLIEST_BELIEVED_MS: i64 = 1_735_689_600_000;

/// The system clock reads a time before [`EARLIEST_BELIEVED_MS`] (or before 1970).
#[derive(Debug, thiserror::Error)]
#[error(
    "this device's clock reads {0}, before this version of Duet was made, so anything dated by it would be misplaced; set the clock right (automatic time), then run the command again"
)]
pub struct ClockBehind(pub String);

/// Checks that the system clock reads a believable time ([`EARLIEST_BELIEVED_MS`]):
/// checked before a command reads it (chrono's `Utc::now` panics before 1970).
pub fn check_system_clock() -> Result<(), ClockBehind> {
    let now = std::time::SystemTime::now();
    let ms = match now.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    };
    if ms >= EARLIEST_BELIEVED_MS {
        return Ok(());
    }
    Err(ClockBehind(utc_minute(ms)))
}

/// A time as an error names it: "2026-05-01 10:00 UTC" (the raw number out of range).
pub fn utc_minute(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| format!("{ms} ms since 1970"))
}

impl Clock {
    /// Milliseconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        match self {
            Clock::System => crate::ids::now_ms(),
            Clock::Fixed(ms) => *ms,
        }
    }

    /// The clock `DUET_NOW` names (milliseconds since 1970, or an RFC 3339 time), or the
    /// system clock when it is not set.
    pub fn from_env() -> Result<Clock, BadClock> {
        match std::env::var("DUET_NOW") {
            Err(_) => Ok(Clock::System),
            Ok(v) => Clock::parse(&v).ok_or(BadClock(v)),
        }
    }

    /// Parses a fixed time: milliseconds since 1970 or an RFC 3339 time.
    pub fn parse(v: &str) -> Option<Clock> {
        let v = v.trim();
        v.parse::<i64>()
            .ok()
            .or_else(|| {
                chrono::DateTime::parse_from_rfc3339(v)
                    .ok()
                    .map(|t| t.timestamp_millis())
            })
            .map(Clock::Fixed)
    }
}

#[cfg(test)]
mod tests {
    use super::Clock;

    #[test]
    fn a_fixed_clock_reads_milliseconds_or_rfc3339() {
        assert_eq!(Clock::parse("1000"), Some(Clock::Fixed(1000)));
        assert_eq!(
            Clock::parse("1970-01-01T00:00:02Z"),
            Some(Clock::Fixed(2000))
        );
        assert_eq!(Clock::parse("yesterday"), None);
        assert_eq!(Clock::Fixed(7).now(), 7);
    }
}
