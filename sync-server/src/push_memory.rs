//! The memory pushes may hold at once: every push takes a share of it, counted from its
//! declared length, before its body is read, and is refused at once (503 `overloaded`)
//! when the share is not free. Nothing queues behind a flood, and the relay's memory for
//! pushes stays within the budget whatever strangers send, from however many addresses.

use std::sync::Arc;

use duet_core::protocol::MAX_BODY_BYTES;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;
use crate::limits::PUSH_MEMORY_FACTOR;

/// The budget, in KiB.
pub struct PushMemory {
    budget: Arc<Semaphore>,
    size: u32,
}

impl PushMemory {
    /// A budget of `bytes`; none for 0 (no limit).
    pub fn new(bytes: u64) -> Option<PushMemory> {
        (bytes > 0).then(|| {
            let size = u32::try_from((bytes / 1024).max(1)).unwrap_or(u32::MAX);
            PushMemory {
                budget: Arc::new(Semaphore::new(size as usize)),
                size,
            }
        })
    }

    /// A push's share: [`PUSH_MEMORY_FACTOR`] times its declared length (the largest body
    /// when it declares none), at most the whole budget (such a push goes alone).
    pub fn reserve(&self, declared: Option<u64>) -> Result<OwnedSemaphorePermit, ApiError> {
        let largest = MAX_BODY_BYTES as u64;
        let body = declared.unwrap_or(largest).min(largest);
        let kib = (body * PUSH_MEMORY_FACTOR).div_ceil(1024).max(1);
        let kib = u32::try_from(kib).unwrap_or(u32::MAX).min(self.size);
        self.budget
            .clone()
            .try_acquire_many_owned(kib)
            .map_err(|_| ApiError::overloaded())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_four_times_the_body_and_a_push_larger_than_the_budget_goes_alone() {
        let m = PushMemory::new(8 * 1024 * 1024).expect("a budget");
        let first = m.reserve(Some(1024 * 1024)).expect("4 MiB of 8");
        let second = m.reserve(Some(1024 * 1024)).expect("the other 4 MiB");
        assert!(m.reserve(Some(1)).is_err(), "nothing left");
        drop((first, second));
        let alone = m.reserve(None).expect("the largest body takes it all");
        assert!(m.reserve(Some(1)).is_err());
        drop(alone);
        assert!(PushMemory::new(0).is_none());
    }
}
