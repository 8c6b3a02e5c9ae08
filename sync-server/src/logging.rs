//! Throttled logging. Log lines that anyone can cause at will (a refused anonymous
//! request, a fork from an equivocating member) are let through at most once per
//! period; each line that does go out carries the number of lines suppressed since the
//! previous one, so a flood cannot flood the log (or fill the disk under it) and the
//! operator still sees how many there were.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Lets a log line through at most once per period and counts the others.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    /// At most one line per `every`.
    pub const fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            state: Mutex::new(State {
                last: None,
                suppressed: 0,
            }),
        }
    }

    /// At most one line per second.
    pub const fn per_second() -> Throttle {
        Throttle::new(Duration::from_secs(1))
    }

    /// `Some(suppressed)` when a line may be logged now, with the number of lines
    /// suppressed since the last one let through; `None` when this one is suppressed.
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    /// [`Throttle::allow`] at `now`.
    pub fn allow_at(&self, now: Instant) -> Option<u64> {
        let mut s = lock(&self.state);
        let due = s
            .last
            .is_none_or(|t| now.saturating_duration_since(t) >= self.every);
        if due {
            s.last = Some(now);
            Some(std::mem::take(&mut s.suppressed))
        } else {
            s.suppressed = s.suppressed.saturating_add(1);
            None
        }
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| {
        m.clear_poison();
        poisoned.into_inner()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_goes_out_and_carries_the_count_of_the_others() {
        let t = Throttle::new(Duration::from_secs(1));
        let start = Instant::now();
        assert_eq!(t.allow_at(start), Some(0));
        for i in 1..=99u64 {
            let at = start + Duration::from_millis(i * 5);
            assert_eq!(t.allow_at(at), None);
        }
        assert_eq!(t.allow_at(start + Duration::from_secs(1)), Some(99));
        assert_eq!(t.allow_at(start + Duration::from_millis(1500)), None);
        assert_eq!(t.allow_at(start + Duration::from_secs(3)), Some(1));
    }
}
