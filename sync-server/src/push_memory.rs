//! The memory pushes (and read pages not yet sent, `Share::cover_page`) may hold at
//! once: every push takes a share of it as its body
//! arrives (counted from the bytes received, never from the length it declares), and
//! is cut off (503 `overloaded`) when the next part of its share is not free. Nothing
//! queues behind a flood, and the relay's memory for pushes stays within the budget
//! whatever strangers send, from however many addresses. One address holds at most a
//! quarter of it (or one largest push, if more), so that a single stranger cannot take
//! every couple's share; and since a push holds only what it has sent, and is cut off
//! once it pauses longer than the grace ([`crate::body`]), holding the budget takes
//! sending a quarter of it again every few seconds (256 MiB each 5 s by default, some
//! 400 Mbit/s), not declaring it.

use std::net::IpAddr;
use std::sync::Arc;

use duet_core::protocol::MAX_BODY_BYTES;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::caps::{self, Counts};
use crate::error::ApiError;
use crate::limits::{PAGE_MEMORY_FACTOR, PUSH_MEMORY_FACTOR};
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

/// The budget, in KiB.
pub struct PushMemory {
    budget: Arc<Semaphore>,
    size: u32,
    /// What each address holds now, in KiB, capped at its part.
    per_address: Counts<IpAddr>,
    /// What each address's unsent pages hold, in KiB, capped at a smaller part: a page
    /// is held for as long as its reader takes to read it, so a few addresses reading
    /// at the minimum rate would otherwise hold the whole budget cheaply.
    pages_per_address: Counts<IpAddr>,
}

/// A push's share of the budget (and of its address's part), grown as its body arrives
/// and given back when dropped.
pub struct Share {
    budget: Arc<Semaphore>,
    size: u32,
    from: Option<IpAddr>,
    per_address: Counts<IpAddr>,
    kib: u32,
    permit: Option<OwnedSemaphorePermit>,
    address: Option<caps::Held<IpAddr>>,
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Share({} KiB)", self.kib)
    }
}

impl PushMemory {
    /// A budget of `bytes`; none for 0 (no limit).
    pub fn new(bytes: u64) -> Option<PushMemory> {
        let size = u32::try_from((bytes / 1024).max(1)).unwrap_or(u32::MAX);
        // One address's part: a quarter, or one largest push if that is more.
        let part = (size / 4).max(kib_of(MAX_BODY_BYTES as u64, PUSH_MEMORY_FACTOR, size));
        // Its unsent pages: a sixteenth, or one largest page if that is more.
        let pages = (size / 16).max(kib_of(MAX_BODY_BYTES as u64, PAGE_MEMORY_FACTOR, size));
        Some(PushMemory {
            budget: Arc::new(Semaphore::new(size as usize)),
            size,
            per_address: Counts::new(part as usize).filter(|_| bytes > 0)?,
            pages_per_address: Counts::new(pages as usize)?,
        })
    }

    /// An empty share for a read's page to `from`, to cover with [`Share::cover_page`]:
    /// counted against the address's part for pages.
    pub fn page_share(&self, from: Option<IpAddr>) -> Share {
        Share {
            per_address: self.pages_per_address.clone(),
            ..self.share(from)
        }
    }

    /// An empty share for a push from `from`, to grow with [`Share::cover`].
    pub fn share(&self, from: Option<IpAddr>) -> Share {
        Share {
            budget: Arc::clone(&self.budget),
            size: self.size,
            from,
            per_address: self.per_address.clone(),
            kib: 0,
            permit: None,
            address: None,
        }
    }
}

impl Share {
    /// Grows the share to [`PUSH_MEMORY_FACTOR`] times a body of `received` bytes (at
    /// most the whole budget: such a push goes alone); refused when the budget lacks it,
    /// or when the address would hold more than its part. A refusal keeps what was held
    /// before it, and nothing more.
    pub fn cover(&mut self, received: u64) -> Result<(), ApiError> {
        self.cover_at(received, PUSH_MEMORY_FACTOR)
    }

    /// Covers a read's page of `bytes` until it has gone out: [`PAGE_MEMORY_FACTOR`]
    /// times it (the events read and the page framed from them). The same budget as
    /// pushes: unread pages must not hold what pushes are refused for.
    pub fn cover_page(&mut self, bytes: u64) -> Result<(), ApiError> {
        self.cover_at(bytes, PAGE_MEMORY_FACTOR)
    }

    fn cover_at(&mut self, bytes: u64, factor: u64) -> Result<(), ApiError> {
        let largest = MAX_BODY_BYTES as u64;
        let want = kib_of(bytes.min(largest), factor, self.size);
        let more = want.saturating_sub(self.kib);
        if more == 0 {
            return Ok(());
        }
        // The budget's part first, given back (dropped) if the address's part refuses.
        let permit = Arc::clone(&self.budget)
            .try_acquire_many_owned(more)
            .map_err(|_| refused("pushes and pages in flight hold the whole push memory"))?;
        let full = |_| {
            refused(
                "one address holds its part of the push memory (a quarter; a sixteenth for unsent pages)",
            )
        };
        match (&mut self.address, self.from) {
            (Some(held), _) => held.grow(more as usize).map_err(full)?,
            (None, Some(ip)) => {
                let held = self.per_address.try_hold_many(ip, more as usize);
                self.address = Some(held.map_err(full)?);
            }
            (None, None) => {}
        }
        match &mut self.permit {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
        self.kib = want;
        Ok(())
    }
}

/// A body's share in KiB: `factor` times its length, at most `size`.
fn kib_of(body: u64, factor: u64, size: u32) -> u32 {
    let kib = (body * factor).div_ceil(1024).max(1);
    u32::try_from(kib).unwrap_or(u32::MAX).min(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    impl PushMemory {
        /// A share covering a body of `declared` bytes at once (the largest when none).
        fn reserve(&self, declared: Option<u64>, from: Option<IpAddr>) -> Result<Share, ApiError> {
            let mut share = self.share(from);
            share.cover(declared.unwrap_or(MAX_BODY_BYTES as u64))?;
            Ok(share)
        }
    }

    #[test]
    fn a_share_grows_with_the_bytes_received_and_a_refusal_keeps_what_it_holds() {
        let ip = IpAddr::from([127, 0, 0, 2]);
        let m = PushMemory::new(8 * 1024 * 1024).expect("a budget");
        let mut slow = m.share(Some(ip));
        // Declaring nothing holds nothing: 1 KiB received holds 4 KiB.
        slow.cover(1024).expect("4 KiB");
        let other = m
            .reserve(Some(2 * 1024 * 1024 - 1024), None)
            .expect("the rest but 4 KiB");
        slow.cover(1024).expect("nothing more for the same bytes");
        assert!(slow.cover(2048).is_err(), "the budget is taken");
        assert_eq!(m.per_address.held(&ip), 4, "a refusal takes nothing more");
        assert_eq!(m.budget.available_permits(), 0);
        drop(other);
        slow.cover(2048).expect("grows once memory is given back");
        assert_eq!(slow.kib, 8);
    }

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

    #[test]
    fn one_addresss_unsent_pages_hold_at_most_a_sixteenth_beside_its_pushes() {
        let reader = Some(IpAddr::from([127, 0, 0, 2]));
        let largest = MAX_BODY_BYTES as u64;
        // 1 GiB: a sixteenth is two of the largest pages (32 MiB each, twice their size).
        let m = PushMemory::new(1 << 30).expect("a budget");
        let page = |m: &PushMemory| {
            let mut share = m.page_share(reader);
            share.cover_page(largest).map(|()| share)
        };
        let held = [page(&m).expect("one"), page(&m).expect("two")];
        assert!(page(&m).is_err(), "a third page from the same address");
        // Its pushes count against their own part.
        let push = m.reserve(None, reader).expect("a push beside its pages");
        drop(held);
        page(&m).expect("given back once sent");
        drop(push);
        // A budget smaller than two of the largest pages still sends one.
        let small = PushMemory::new(40 << 20).expect("a budget");
        let mut share = small.page_share(reader);
        share.cover_page(largest).expect("one largest page");
    }
}
