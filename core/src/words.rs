//! Counting in words: "1 goal", "2 goals" (never "goal(s)").

/// `n` and the noun, singular for one, the plural otherwise.
pub fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(count(1, "goal", "goals"), "1 goal");
        assert_eq!(count(0, "goal", "goals"), "0 goals");
        assert_eq!(count(2, "event", "events"), "2 events");
    }
}
