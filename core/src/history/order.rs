//! The order of the history: causal (a change never before one it depends on), and
//! among changes free to go next, by the author's timestamp and then by hash.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use automerge::{Change, ChangeHash};

/// Orders changes causally; ties (changes free to go next) by time, then hash.
pub fn causal_order(changes: Vec<Change>) -> Vec<Change> {
    let meta: Vec<(ChangeHash, i64, Vec<ChangeHash>)> = changes
        .iter()
        .map(|c| (c.hash(), c.timestamp(), c.deps().to_vec()))
        .collect();
    let mut by_hash: HashMap<ChangeHash, Change> =
        changes.into_iter().map(|c| (c.hash(), c)).collect();
    causal_order_of(&meta)
        .into_iter()
        .filter_map(|h| by_hash.remove(&h))
        .collect()
}

/// [`causal_order`] over change metadata: (hash, timestamp, deps). Deps outside the set
/// are ignored.
pub fn causal_order_of(changes: &[(ChangeHash, i64, Vec<ChangeHash>)]) -> Vec<ChangeHash> {
    let time: HashMap<ChangeHash, i64> = changes.iter().map(|(h, t, _)| (*h, *t)).collect();
    let mut waiting: HashMap<ChangeHash, usize> = HashMap::new();
    let mut dependents: HashMap<ChangeHash, Vec<ChangeHash>> = HashMap::new();
    let mut ready = BinaryHeap::new();
    for (hash, at, deps) in changes {
        let missing: Vec<ChangeHash> = deps
            .iter()
            .copied()
            .filter(|d| time.contains_key(d))
            .collect();
        if missing.is_empty() {
            ready.push(Reverse((*at, *hash)));
        } else {
            waiting.insert(*hash, missing.len());
            for d in missing {
                dependents.entry(d).or_default().push(*hash);
            }
        }
    }
    let mut out = Vec::with_capacity(changes.len());
    let mut done: HashSet<ChangeHash> = HashSet::new();
    while let Some(Reverse((_, h))) = ready.pop() {
        if !done.insert(h) {
            continue;
        }
        for d in dependents.remove(&h).unwrap_or_default() {
            if let Some(n) = waiting.get_mut(&d) {
                *n -= 1;
                if *n == 0 {
                    waiting.remove(&d);
                    if let Some(t) = time.get(&d) {
                        ready.push(Reverse((*t, d)));
                    }
                }
            }
        }
        out.push(h);
    }
    out
}
