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
