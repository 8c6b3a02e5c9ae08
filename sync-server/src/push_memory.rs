//! The memory pushes may hold at once: every push takes a share of it, counted from its
//! declared length, before its body is read, and is refused at once (503 `overloaded`)
//! when the share is not free. Nothing queues behind a flood, and the relay's memory for
//! pushes stays within the budget whatever strangers send, from however many addresses.
//! One address holds at most a quarter of it (or one largest push, if more), so that a
//! single stranger's slow pushes cannot take every couple's share.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use duet_core::protocol::MAX_BODY_BYTES;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;
use crate::limits::PUSH_MEMORY_FACTOR;
use crate::logging::Throttle;

/// Refusals are logged at most every 10 seconds, with how many were not.
static REFUSED_LOG: Throttle = Throttle::new(std::time::Duration::from_secs(10));

/// Logs a refusal (throttled) and returns the answer.
fn refused(why: &str) -> ApiError {
    if let Some(suppressed) = REFUSED_LOG.allow() {
        tracing::warn!(
            suppressed,
            "pushes refused for memory: {why} (--max-push-memory); the client is told to retry"
        );
    }
    ApiError::overloaded()
}

/// What each address holds now, in KiB.
type Held = Arc<Mutex<HashMap<IpAddr, u32>>>;

/// The budget, in KiB.
pub struct PushMemory {
    budget: Arc<Semaphore>,
    size: u32,
    /// What each address holds now, in KiB.
    held: Held,
}

/// A push's share of the budget, given back when dropped.
pub struct Share {
    _permit: OwnedSemaphorePermit,
    of: Option<(IpAddr, u32, Held)>,
}

impl Drop for Share {
    fn drop(&mut self) {
        if let Some((ip, kib, held)) = self.of.take() {
            let mut held = held
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(h) = held.get_mut(&ip) {
                *h = h.saturating_sub(kib);
                if *h == 0 {
                    held.remove(&ip);
                }
            }
        }
    }
}

impl PushMemory {
    /// A budget of `bytes`; none for 0 (no limit).
    pub fn new(bytes: u64) -> Option<PushMemory> {
        (bytes > 0).then(|| {
            let size = u32::try_from((bytes / 1024).max(1)).unwrap_or(u32::MAX);
            PushMemory {
                budget: Arc::new(Semaphore::new(size as usize)),
                size,
                held: Arc::default(),
            }
        })
    }

    /// A push's share: [`PUSH_MEMORY_FACTOR`] times its declared length (the largest body
    /// when it declares none), at most the whole budget (such a push goes alone); refused
    /// when the budget lacks it, or when its address would hold more than its part.
    pub fn reserve(&self, declared: Option<u64>, from: Option<IpAddr>) -> Result<Share, ApiError> {
        let kib = |body: u64| {
            let kib = (body * PUSH_MEMORY_FACTOR).div_ceil(1024).max(1);
            u32::try_from(kib).unwrap_or(u32::MAX).min(self.size)
        };
        let largest = MAX_BODY_BYTES as u64;
        let share = kib(declared.unwrap_or(largest).min(largest));
        let Some(ip) = from else {
            return Ok(Share {
                _permit: self.take(share)?,
                of: None,
            });
        };
        let part = (self.size / 4).max(kib(largest));
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = held.get(&ip).copied().unwrap_or(0);
        if now.saturating_add(share) > part {
            return Err(refused("one address holds its quarter of the push memory"));
        }
        let permit = self.take(share)?;
        held.insert(ip, now + share);
        Ok(Share {
            _permit: permit,
            of: Some((ip, share, self.held.clone())),
        })
    }

    fn take(&self, kib: u32) -> Result<OwnedSemaphorePermit, ApiError> {
        self.budget
            .clone()
            .try_acquire_many_owned(kib)
            .map_err(|_| refused("pushes in flight hold the whole push memory"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_four_times_the_body_and_a_push_larger_than_the_budget_goes_alone() {
        let m = PushMemory::new(8 * 1024 * 1024).expect("a budget");
        let first = m.reserve(Some(1024 * 1024), None).expect("4 MiB of 8");
        let second = m.reserve(Some(1024 * 1024), None).expect("the other 4 MiB");
        assert!(m.reserve(Some(1), None).is_err(), "nothing left");
        drop((first, second));
        let alone = m
            .reserve(None, None)
            .expect("the largest body takes it all");
        assert!(m.reserve(Some(1), None).is_err());
        drop(alone);
        assert!(PushMemory::new(0).is_none());
    }

    #[test]
    fn one_address_holds_at_most_a_quarter_and_gives_it_back() {
        let stranger = Some(IpAddr::from([127, 0, 0, 2]));
        let couple = Some(IpAddr::from([127, 0, 0, 1]));
        // 1 GiB: a quarter is four of the largest pushes (64 MiB each).
        let m = PushMemory::new(1 << 30).expect("a budget");
        let held: Vec<Share> = (0..4)
            .map(|_| m.reserve(None, stranger).expect("within its quarter"))
            .collect();
        assert!(m.reserve(Some(1), stranger).is_err(), "past its quarter");
        let theirs = m
            .reserve(None, couple)
            .expect("another address still pushes");
        drop(held);
        m.reserve(None, stranger).expect("given back when answered");
        drop(theirs);
        // A budget smaller than four of the largest still lets one largest push through.
        let small = PushMemory::new(64 << 20).expect("a budget");
        small.reserve(None, stranger).expect("one largest push");
    }
}
