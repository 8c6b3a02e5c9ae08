//! Caps on what is held open at once, per key: connections and requests in flight per
//! client address, live sockets per address, per space and in all.
//!
//! Rate limits bound how often a client may ask; these bound how much it may hold at
//! the same time, which is what a slow or idle client spends the relay's slots and file
//! descriptors on. A [`Held`] counts one unit against its key until it is dropped, so a
//! slot is given back however its request, connection or socket ends. Memory is bounded
//! by what is open: a key whose count falls to zero is forgotten.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

/// Locks a mutex whose data stays consistent even if a holder panicked.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| {
        m.clear_poison();
        poisoned.into_inner()
    })
}

/// How many units each key holds, with one cap for every key.
#[derive(Debug, Clone)]
pub struct Counts<K> {
    cap: usize,
    map: Arc<Mutex<HashMap<K, usize>>>,
}

/// A refusal: the key already holds `cap` units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{held} held, at most {cap}")]
pub struct Full {
    /// Units the key held when it asked.
    pub held: usize,
    /// The cap.
    pub cap: usize,
}

impl<K: Hash + Eq + Clone> Counts<K> {
    /// Counts capped at `cap` per key, or `None` when `cap` is 0 (no cap).
    pub fn new(cap: usize) -> Option<Counts<K>> {
        (cap > 0).then(|| Counts {
            cap,
            map: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// The cap per key.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// One more unit for `key`, or [`Full`] when it already holds the cap.
    pub fn try_hold(&self, key: K) -> Result<Held<K>, Full> {
        self.try_hold_many(key, 1)
    }

    /// `units` more for `key`, or [`Full`] when they would take it past the cap.
    pub fn try_hold_many(&self, key: K, units: usize) -> Result<Held<K>, Full> {
        let mut map = lock(&self.map);
        let held = map.get(&key).copied().unwrap_or(0);
        if held.saturating_add(units) > self.cap {
            return Err(Full {
                held,
                cap: self.cap,
            });
        }
        map.insert(key.clone(), held + units);
        Ok(Held {
            map: Arc::clone(&self.map),
            key,
            units,
            cap: self.cap,
        })
    }

    /// Units `key` holds now.
    pub fn held(&self, key: &K) -> usize {
        lock(&self.map).get(key).copied().unwrap_or(0)
    }

    /// Keys holding at least one unit.
    pub fn keys(&self) -> usize {
        lock(&self.map).len()
    }
}

/// Units counted against a key until dropped.
#[derive(Debug)]
pub struct Held<K: Hash + Eq> {
    map: Arc<Mutex<HashMap<K, usize>>>,
    key: K,
    units: usize,
    cap: usize,
}

impl<K: Hash + Eq> Held<K> {
    /// `units` more for the same key, or [`Full`] when they would take it past the cap
    /// (what is held stays held).
    pub fn grow(&mut self, units: usize) -> Result<(), Full> {
        let mut map = lock(&self.map);
        let held = map.get(&self.key).copied().unwrap_or(0);
        if held.saturating_add(units) > self.cap {
            return Err(Full {
                held,
                cap: self.cap,
            });
        }
        if let Some(n) = map.get_mut(&self.key) {
            *n += units;
            self.units += units;
        }
        Ok(())
    }
}

impl<K: Hash + Eq> Drop for Held<K> {
    fn drop(&mut self) {
        let mut map = lock(&self.map);
        if let Some(n) = map.get_mut(&self.key) {
            *n = n.saturating_sub(self.units);
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_up_to_its_cap_and_gets_units_back_when_they_drop() {
        assert!(Counts::<u8>::new(0).is_none(), "0 is no cap");
        let c = Counts::new(2).expect("a cap");
        let a = c.try_hold(1u8).expect("first");
        let b = c.try_hold(1u8).expect("second");
        assert_eq!(c.try_hold(1u8).err(), Some(Full { held: 2, cap: 2 }));
        // Another key has its own count.
        let other = c.try_hold(2u8).expect("another key");
        assert_eq!((c.held(&1), c.held(&2), c.keys()), (2, 1, 2));
        drop(a);
        let mut again = c.try_hold(1u8).expect("a unit came back");
        assert_eq!(again.grow(1).err(), Some(Full { held: 2, cap: 2 }));
        drop(b);
        again.grow(1).expect("grown into the unit given back");
        assert_eq!(c.held(&1), 2);
        let b = c.try_hold(3u8).expect("another key");
        drop((b, again, other));
        // Nothing held: nothing remembered.
        assert_eq!(c.keys(), 0);
    }
}
