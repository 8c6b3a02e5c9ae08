//! Counting in words: "1 goal", "2 goals" (never "goal(s)"); spans of time as
//! "10 minutes", "3 hours", "2 days".

/// `n` and the noun, singular for one, the plural otherwise.
pub fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A number of seconds in words: minutes below two hours, then hours, then days.
pub fn span(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        s if s < 2 * 3600 => count((s as usize).div_ceil(60), "minute", "minutes"),
        s if s < 2 * 86_400 => count((s / 3600) as usize, "hour", "hours"),
        s => count((s / 86_400) as usize, "day", "days"),
    }
}

#[cfg(test)]
mod tests {
    use super::{count, span};

    #[test]
    fn differences_are_said_in_minutes_hours_or_days() {
        assert_eq!(span(600), "10 minutes");
        assert_eq!(span(61), "2 minutes");
        assert_eq!(span(3 * 3600 + 5), "3 hours");
        assert_eq!(span(400 * 86_400), "400 days");
    }

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(count(1, "goal", "goals"), "1 goal");
        assert_eq!(count(0, "goal", "goals"), "0 goals");
        assert_eq!(count(2, "event", "events"), "2 events");
    }
}
