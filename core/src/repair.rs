//! Repair of a change log that holds two local changes with the same sequence number.
//!
//! Before the home had a write lock, two `duet` processes could each load a space's
//! document and commit "the next change" of this device's actor: two different changes
//! with the same actor and sequence number (and the same op counters). Both are stored,
//! and from then on Automerge refuses to load the log (`duplicate seq N found for
//! actor ...`). Nothing is wrong with either change's content, only with its place in
//! the actor's sequence.
//!
//! [`remake`] turns a change into a new change of the same actor with the same content
//! at another place: a new sequence number, new op counters and new dependencies.
//! [`repair_duplicates`] finds, in a space's stored log, the local changes that repeat
//! an earlier (actor, seq) and those built on them, and re-makes each after everything
//! kept, so the log loads again and nothing the user typed is lost.
//!
//! What this module does not do (the store does it): delete the rows and insert the
//! re-made changes in one transaction, as local changes not yet pushed; discard the
//! space's snapshot (a process that raced may have written one that holds a replaced
//! change, or that claims rows it never saw); and check that no replaced row had been
//! pushed. In the races we know, a replaced change was never pushed, because no
//! process could load the document once both were stored.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::num::NonZeroU64;
use std::panic::{AssertUnwindSafe, catch_unwind};

use automerge::legacy::{ElementId, Key, ObjectId, OpId, SortedVec};
use automerge::{ActorId, Automerge, AutomergeError, Change, ChangeHash, ExpandedChange};

/// Why a change could not be re-made or a log could not be repaired.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    /// Sequence numbers and op counters start at 1.
    #[error("a change needs a sequence number and a start op of at least 1")]
    Zero,
    /// The change's operations could not be read back.
    #[error("change {0} cannot be decoded")]
    Undecodable(ChangeHash),
    /// The new op counters would not fit the change format (32 bits).
    #[error("change {0} would need op counters beyond the format's limit")]
    CounterTooLarge(ChangeHash),
    /// Two changes of another device share a sequence number: only that device can
    /// re-make its changes, so this device cannot repair the log.
    #[error(
        "two changes of another device ({actor}) share sequence number {seq}; only that device can repair them"
    )]
    ForeignDuplicate {
        /// The other device's actor.
        actor: ActorId,
        /// The repeated sequence number.
        seq: u64,
    },
    /// A change of another device depends on a local change that has to be re-made,
    /// so replacing it would leave that change without its dependency.
    #[error(
        "change {hash} of another device depends on change {dep}, which repeats a sequence number of this device"
    )]
    ForeignDependsOnDuplicate {
        /// The other device's change.
        hash: ChangeHash,
        /// The local change it depends on.
        dep: ChangeHash,
    },
    /// The kept and re-made changes still do not form a document.
    #[error("the repaired document does not load: {0}")]
    Apply(#[from] AutomergeError),
    /// Automerge panicked while applying the changes (it does on some malformed ops).
    #[error("the repaired document does not load: automerge failed on its changes")]
    ApplyPanicked,
}

/// Op counters of one original change and where its re-made copy starts.
#[derive(Debug, Clone, Copy)]
struct Shift {
    /// First op counter of the original change.
    start: u64,
    /// One past its last op counter.
    end: u64,
    /// First op counter of the re-made change.
    new_start: u64,
}

/// Re-makes `change` as a change of the same actor with the same operations, message,
/// time and extra bytes, but sequence number `seq`, first op counter `start_op` and
/// dependencies `deps`.
///
/// Every reference to one of the change's own operations (as an object, a list or text
/// element, or a predecessor) is moved along with it; references to other operations
/// are kept. The caller chooses `seq`, `start_op` and `deps` so that the result fits
/// the document: the actor's next sequence number, the document's largest op counter
/// plus one, and its heads.
pub fn remake(
    change: &Change,
    seq: u64,
    start_op: u64,
    deps: Vec<ChangeHash>,
) -> Result<Change, RepairError> {
    remake_with(change, seq, start_op, deps, &[])
}

/// [`remake`], also moving references to the operations of changes re-made before
/// (`earlier`: the original changes this one was built on).
fn remake_with(
    change: &Change,
    seq: u64,
    start_op: u64,
    deps: Vec<ChangeHash>,
    earlier: &[Shift],
) -> Result<Change, RepairError> {
    let hash = change.hash();
    let new_start = NonZeroU64::new(start_op).ok_or(RepairError::Zero)?;
    if seq == 0 {
        return Err(RepairError::Zero);
    }
    let len = change.len() as u64;
    // Automerge refuses to read a change whose counters exceed 32 bits.
    if start_op.saturating_add(len) > u64::from(u32::MAX) {
        return Err(RepairError::CounterTooLarge(hash));
    }
    // `decode` unwraps actor indices; a stored change was verified when it was read,
    // but a panic here must not take the repair (and the command) down with it.
    let mut expanded: ExpandedChange = catch_unwind(AssertUnwindSafe(|| change.decode()))
        .map_err(|_| RepairError::Undecodable(hash))?;
    let old_start = expanded.start_op.get();
    let mut shifts = earlier.to_vec();
    shifts.push(Shift {
        start: old_start,
        end: old_start + len,
        new_start: start_op,
    });
    let actor = expanded.actor_id.clone();
    let moved = |id: &OpId| -> OpId {
        if id.actor() == &actor {
            for s in &shifts {
                if (s.start..s.end).contains(&id.counter()) {
                    return OpId(id.counter() - s.start + s.new_start, actor.clone());
                }
            }
        }
        id.clone()
    };
    for op in &mut expanded.operations {
        if let ObjectId::Id(id) = &op.obj {
            op.obj = ObjectId::Id(moved(id));
        }
        if let Key::Seq(ElementId::Id(id)) = &op.key {
            op.key = Key::Seq(ElementId::Id(moved(id)));
        }
        // Moving counters can change the order the format requires; collecting sorts.
        op.pred = op.pred.iter().map(&moved).collect::<SortedVec<OpId>>();
    }
    expanded.seq = seq;
    expanded.start_op = new_start;
    expanded.deps = deps;
    expanded.hash = None;
    Ok(Change::from(expanded))
}

/// A local change re-made by [`repair_duplicates`].
#[derive(Debug, Clone)]
pub struct Remade {
    /// The row of the original change (deleted).
    pub row: i64,
    /// The original change's hash.
    pub original: ChangeHash,
    /// The new change with the same content.
    pub change: Change,
}

/// What [`repair_duplicates`] found: rows to delete and changes to store instead.
#[derive(Debug, Clone, Default)]
pub struct Repair {
    /// Rows whose changes are replaced, in row order.
    pub delete: Vec<i64>,
    /// The replacements, in the order to store them (each depends on those before).
    pub remade: Vec<Remade>,
}

impl Repair {
    /// Whether the log needed no repair.
    pub fn is_empty(&self) -> bool {
        self.remade.is_empty()
    }

    /// One line for the user saying what was repaired.
    pub fn summary(&self) -> String {
        match self.remade.len() {
            0 => "nothing to repair".to_string(),
            1 => "1 change saved by two duet commands at the same time was saved again; nothing was lost".to_string(),
            n => format!(
                "{n} changes saved by duet commands running at the same time were saved again; nothing was lost"
            ),
        }
    }
}

/// An original change to re-make and the earlier ones it was built on.
struct Bad {
    row: i64,
    change: Change,
    /// Indices (into the list of bad changes) of the bad changes in its ancestry.
    ancestors: BTreeSet<usize>,
}

/// Repairs a space's change log: `changes` is every stored change of the space in row
/// order, `local` this device's actor.
///
/// A local change whose (actor, seq) repeats one kept earlier in the log is re-made,
/// as is any local change built on a re-made one (unlikely: no process could load the
/// document after the race, but a process that raced may have gone on committing from
/// its own copy). The first change to claim a sequence number is kept. Re-made changes
/// take the actor's next free sequence numbers, op counters above every op in the log,
/// and the heads of the document of all kept (and earlier re-made) changes as
/// dependencies, so they apply after everything.
///
/// Returns an empty [`Repair`] when the log has no repeated sequence number. Fails
/// when a repeated sequence number or a change built on a replaced one belongs to
/// another device, or when the result still does not load.
///
/// Assumes a local change is stored after the changes it depends on, as every store
/// write does; a change of another device stored before its dependencies is fine.
pub fn repair_duplicates(
    changes: Vec<(i64, Change)>,
    local: &ActorId,
) -> Result<Repair, RepairError> {
    let sorted = sort_log(changes, local)?;
    if sorted.bad.is_empty() {
        return Ok(Repair::default());
    }
    remake_bad(sorted)
}

/// A change log sorted by [`sort_log`]: what stays and what is re-made.
struct Sorted {
    /// Changes that stay as they are, in log order.
    kept: Vec<Change>,
    /// Local changes to re-make, in log order.
    bad: Vec<Bad>,
    /// The highest op counter in the log, replaced changes included.
    max_op: u64,
    /// The local actor's first sequence number not taken by a kept change.
    next_seq: u64,
}

/// Sorts the log into kept changes and local changes to re-make (a repeated (actor,
/// seq), or built on a change to re-make). Fails if such a change is another device's.
fn sort_log(changes: Vec<(i64, Change)>, local: &ActorId) -> Result<Sorted, RepairError> {
    let mut max_op = 0;
    let mut seen: HashSet<ChangeHash> = HashSet::new();
    let mut claimed: HashSet<(ActorId, u64)> = HashSet::new();
    let mut bad_index: HashMap<ChangeHash, usize> = HashMap::new();
    let mut bad: Vec<Bad> = Vec::new();
    let mut kept: Vec<Change> = Vec::new();
    let mut next_seq = 1;
    for (row, change) in changes {
        // Counters above every op in the log, replaced ones included, cannot collide.
        max_op = max_op.max(change.max_op());
        let hash = change.hash();
        if !seen.insert(hash) {
            continue;
        }
        let bad_deps: Vec<(ChangeHash, usize)> = change
            .deps()
            .iter()
            .filter_map(|d| bad_index.get(d).map(|&i| (*d, i)))
            .collect();
        let key = (change.actor_id().clone(), change.seq());
        let repeated = claimed.contains(&key);
        if !repeated && bad_deps.is_empty() {
            if change.actor_id() == local {
                next_seq = next_seq.max(change.seq() + 1);
            }
            claimed.insert(key);
            kept.push(change);
            continue;
        }
        if change.actor_id() != local {
            return Err(match bad_deps.first() {
                Some(&(dep, _)) if !repeated => {
                    RepairError::ForeignDependsOnDuplicate { hash, dep }
                }
                _ => RepairError::ForeignDuplicate {
                    actor: key.0,
                    seq: key.1,
                },
            });
        }
        let mut ancestors = BTreeSet::new();
        for &(_, i) in &bad_deps {
            ancestors.insert(i);
            ancestors.extend(bad[i].ancestors.iter().copied());
        }
        bad_index.insert(hash, bad.len());
        bad.push(Bad {
            row,
            change,
            ancestors,
        });
    }
    Ok(Sorted {
        kept,
        bad,
        max_op,
        next_seq,
    })
}

/// Re-makes each bad change after everything kept and every earlier re-made change,
/// with fresh sequence numbers and op counters.
fn remake_bad(sorted: Sorted) -> Result<Repair, RepairError> {
    let Sorted {
        kept,
        bad,
        mut max_op,
        mut next_seq,
    } = sorted;
    let mut doc = Automerge::new();
    apply(&mut doc, kept)?;
    let mut shifts: Vec<Shift> = Vec::with_capacity(bad.len());
    let mut repair = Repair::default();
    for b in bad {
        let earlier: Vec<Shift> = b.ancestors.iter().map(|&i| shifts[i]).collect();
        let start_op = max_op + 1;
        let change = remake_with(&b.change, next_seq, start_op, doc.get_heads(), &earlier)?;
        apply(&mut doc, vec![change.clone()])?;
        let old_start = b.change.start_op().get();
        shifts.push(Shift {
            start: old_start,
            end: old_start + b.change.len() as u64,
            new_start: start_op,
        });
        max_op = max_op.max(change.max_op());
        next_seq += 1;
        repair.delete.push(b.row);
        repair.remade.push(Remade {
            row: b.row,
            original: b.change.hash(),
            change,
        });
    }
    Ok(repair)
}

/// Re-makes this device's unsent changes, in the order they were made (each may build
/// on the ones before it), after everything of a document whose tip is given: the
/// first takes sequence number `seq`, op counters from `start_op` and the document's
/// `heads` as dependencies; each next one follows the one before. Another copy of this
/// device (restored from a backup, or a copied home) numbered its own changes first
/// with the same sequence numbers and counters; the content stays, as [`remake`] keeps it.
pub fn remake_after(
    unsent: &[Change],
    seq: u64,
    start_op: u64,
    heads: Vec<ChangeHash>,
) -> Result<Vec<Change>, RepairError> {
    let mut shifts: Vec<Shift> = Vec::with_capacity(unsent.len());
    let mut out: Vec<Change> = Vec::with_capacity(unsent.len());
    // For each original, the indices of the unsent changes it was built on: only their
    // counters mean their operations (one made after others were set aside may use
    // the same counters for its own).
    let mut index: HashMap<ChangeHash, usize> = HashMap::new();
    let mut ancestry: Vec<BTreeSet<usize>> = Vec::with_capacity(unsent.len());
    let (mut seq, mut start_op, mut deps) = (seq, start_op, heads);
    for (i, change) in unsent.iter().enumerate() {
        let mut ancestors = BTreeSet::new();
        for d in change.deps() {
            if let Some(&j) = index.get(d) {
                ancestors.insert(j);
                ancestors.extend(ancestry[j].iter().copied());
            }
        }
        let earlier: Vec<Shift> = ancestors.iter().map(|&j| shifts[j]).collect();
        let made = remake_with(change, seq, start_op, deps, &earlier)?;
        let old_start = change.start_op().get();
        shifts.push(Shift {
            start: old_start,
            end: old_start + change.len() as u64,
            new_start: start_op,
        });
        index.insert(change.hash(), i);
        ancestry.push(ancestors);
        seq += 1;
        start_op = made.max_op() + 1;
        deps = vec![made.hash()];
        out.push(made);
    }
    Ok(out)
}

/// Applies changes, turning an Automerge panic into an error: this runs while a
/// command opens its store, and a panic there would leave the user nothing to act on.
fn apply(doc: &mut Automerge, changes: Vec<Change>) -> Result<(), RepairError> {
    catch_unwind(AssertUnwindSafe(|| doc.apply_changes(changes)))
        .map_err(|_| RepairError::ApplyPanicked)??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::{CommitOptions, Transactable};
    use automerge::{AutoCommit, ObjType, ROOT, ReadDoc, Value};

    fn actor() -> ActorId {
        ActorId::from(&[7u8; 32][..])
    }

    /// A document with `ratings` (a map) and `notes` (text "hello"), by `actor()`.
    fn base() -> AutoCommit {
        let mut doc = AutoCommit::new().with_actor(actor());
        doc.put_object(ROOT, "ratings", ObjType::Map).unwrap();
        let notes = doc.put_object(ROOT, "notes", ObjType::Text).unwrap();
        doc.splice_text(&notes, 0, 0, "hello").unwrap();
        doc.commit_with(CommitOptions::default().with_message("create").with_time(1));
        doc
    }

    fn obj(doc: &AutoCommit, key: &str) -> automerge::ObjId {
        match doc.get(ROOT, key).unwrap() {
            Some((Value::Object(_), id)) => id,
            other => panic!("{key}: {other:?}"),
        }
    }

    fn commit(doc: &mut AutoCommit, message: &str, time: i64) -> Change {
        doc.commit_with(
            CommitOptions::default()
                .with_message(message)
                .with_time(time),
        );
        doc.get_last_local_change().unwrap()
    }

    /// Puts ratings/<id> = {level, note}, as a rating does.
    fn rate(doc: &mut AutoCommit, id: &str, level: i64, note: &str) -> Change {
        let ratings = obj(doc, "ratings");
        let r = doc.put_object(&ratings, id, ObjType::Map).unwrap();
        doc.put(&r, "level", level).unwrap();
        doc.put(&r, "note", note).unwrap();
        // Overwrites its own op: a predecessor inside the change itself.
        doc.put(&r, "note", format!("{note}!")).unwrap();
        commit(doc, "rate", 10)
    }

    /// Edits the text: inserts, deletes one of its own characters, and writes a nested
    /// map with a text inside.
    fn write(doc: &mut AutoCommit) -> Change {
        let notes = obj(doc, "notes");
        doc.splice_text(&notes, 5, 0, " worldd").unwrap();
        doc.splice_text(&notes, 11, 1, "").unwrap();
        doc.splice_text(&notes, 0, 1, "H").unwrap();
        let ratings = obj(doc, "ratings");
        let nested = doc.put_object(&ratings, "r2", ObjType::Map).unwrap();
        let inner = doc.put_object(&nested, "text", ObjType::Text).unwrap();
        doc.splice_text(&inner, 0, 0, "deep").unwrap();
        doc.put(&nested, "level", -1).unwrap();
        commit(doc, "write", 20)
    }

    fn doc_of(changes: Vec<Change>) -> Result<AutoCommit, AutomergeError> {
        let mut doc = AutoCommit::new();
        doc.apply_changes(changes)?;
        Ok(doc)
    }

    fn all(doc: &mut AutoCommit) -> Vec<Change> {
        doc.get_changes(&[])
    }

    fn map_get(doc: &AutoCommit, obj: &automerge::ObjId, key: &str) -> Option<String> {
        doc.get(obj, key).unwrap().map(|(v, _)| match v {
            Value::Scalar(s) => s.to_string(),
            Value::Object(t) => format!("{t:?}"),
        })
    }

    /// Two processes each commit the next change of one actor from the same state.
    fn raced() -> (Vec<Change>, Change, Change) {
        let mut a = base();
        let history = all(&mut a);
        let mut b = a.fork().with_actor(actor());
        let ca = rate(&mut a, "r1", 1, "fine");
        let cb = write(&mut b);
        (history, ca, cb)
    }

    fn assert_both_edits(doc: &AutoCommit) {
        let ratings = obj(doc, "ratings");
        let r1 = match doc.get(&ratings, "r1").unwrap() {
            Some((Value::Object(ObjType::Map), id)) => id,
            other => panic!("r1: {other:?}"),
        };
        assert_eq!(map_get(doc, &r1, "level").as_deref(), Some("1"));
        assert_eq!(map_get(doc, &r1, "note").as_deref(), Some("\"fine!\""));
        let r2 = match doc.get(&ratings, "r2").unwrap() {
            Some((Value::Object(ObjType::Map), id)) => id,
            other => panic!("r2: {other:?}"),
        };
        assert_eq!(map_get(doc, &r2, "level").as_deref(), Some("-1"));
        let inner = match doc.get(&r2, "text").unwrap() {
            Some((Value::Object(ObjType::Text), id)) => id,
            other => panic!("text: {other:?}"),
        };
        assert_eq!(doc.text(&inner).unwrap(), "deep");
        assert_eq!(doc.text(obj(doc, "notes")).unwrap(), "Hello world");
    }

    #[test]
    fn raced_changes_do_not_load_together() {
        let (history, ca, cb) = raced();
        assert_eq!(ca.seq(), cb.seq());
        assert_eq!(ca.start_op(), cb.start_op());
        let err = doc_of([history, vec![ca, cb]].concat()).unwrap_err();
        assert!(err.to_string().contains("duplicate seq"), "{err}");
    }

    #[test]
    fn remade_change_loads_with_the_other_and_keeps_its_content() {
        let (history, ca, cb) = raced();
        let remade = remake(&cb, ca.seq() + 1, ca.max_op() + 1, vec![ca.hash()]).unwrap();
        assert_eq!(remade.actor_id(), &actor());
        assert_eq!(remade.seq(), ca.seq() + 1);
        assert_eq!(remade.start_op().get(), ca.max_op() + 1);
        assert_eq!(remade.deps(), &[ca.hash()]);
        assert_eq!(remade.len(), cb.len());
        assert_eq!(remade.message(), Some("write"));
        assert_eq!(remade.timestamp(), 20);
        assert_ne!(remade.hash(), cb.hash());
        // It survives a round trip through bytes, as the store keeps it.
        let stored = Change::from_bytes(remade.raw_bytes().to_vec()).unwrap();
        let mut doc = doc_of([history, vec![ca, stored]].concat()).unwrap();
        assert_both_edits(&doc);
        // The document goes on: the actor's next change follows the re-made one.
        let mut next = doc.fork().with_actor(actor());
        next.put(ROOT, "after", 1).unwrap();
        let c = commit(&mut next, "after", 30);
        assert_eq!(c.seq(), remade.seq() + 1);
        doc.apply_changes([c]).unwrap();
        assert_eq!(map_get(&doc, &ROOT, "after").as_deref(), Some("1"));
    }

    #[test]
    fn unsent_changes_are_made_again_after_another_copys_with_their_content() {
        // Another copy of the device rated r1; this copy wrote r2 and the text, then
        // edited r2 in a change built on that one, and (those two set aside meanwhile)
        // rated r3 on the base alone, with the same counters as its first.
        let mut theirs_doc = base();
        let history = all(&mut theirs_doc);
        let mut mine = theirs_doc.fork().with_actor(actor());
        let mut beside_doc = theirs_doc.fork().with_actor(actor());
        let theirs = rate(&mut theirs_doc, "r1", 1, "fine");
        let first = write(&mut mine);
        let r2 = match mine.get(obj(&mine, "ratings"), "r2").unwrap() {
            Some((Value::Object(ObjType::Map), id)) => id,
            other => panic!("r2: {other:?}"),
        };
        mine.put(&r2, "note", "later").unwrap();
        let second = commit(&mut mine, "edit", 25);
        let beside = rate(&mut beside_doc, "r3", 0, "beside");
        assert_eq!(beside.start_op(), first.start_op());
        let remade = remake_after(
            &[first, second, beside],
            theirs.seq() + 1,
            theirs.max_op() + 1,
            vec![theirs.hash()],
        )
        .unwrap();
        assert_eq!(
            remade.iter().map(Change::seq).collect::<Vec<_>>(),
            [theirs.seq() + 1, theirs.seq() + 2, theirs.seq() + 3]
        );
        let doc = doc_of([history, vec![theirs], remade].concat()).unwrap();
        assert_both_edits(&doc);
        let ratings = obj(&doc, "ratings");
        let r2 = match doc.get(&ratings, "r2").unwrap() {
            Some((Value::Object(ObjType::Map), id)) => id,
            other => panic!("r2: {other:?}"),
        };
        assert_eq!(map_get(&doc, &r2, "note").as_deref(), Some("\"later\""));
        let r3 = match doc.get(&ratings, "r3").unwrap() {
            Some((Value::Object(ObjType::Map), id)) => id,
            other => panic!("r3: {other:?}"),
        };
        assert_eq!(map_get(&doc, &r3, "note").as_deref(), Some("\"beside!\""));
    }

    #[test]
    fn remake_refuses_zero() {
        let (_, _, cb) = raced();
        assert!(matches!(remake(&cb, 0, 5, vec![]), Err(RepairError::Zero)));
        assert!(matches!(remake(&cb, 5, 0, vec![]), Err(RepairError::Zero)));
        assert!(matches!(
            remake(&cb, 5, u64::from(u32::MAX), vec![]),
            Err(RepairError::CounterTooLarge(_))
        ));
    }

    fn rows(changes: Vec<Change>) -> Vec<(i64, Change)> {
        changes.into_iter().zip(1..).map(|(c, i)| (i, c)).collect()
    }

    fn repaired(log: &[(i64, Change)], r: &Repair) -> Vec<Change> {
        log.iter()
            .filter(|(row, _)| !r.delete.contains(row))
            .map(|(_, c)| c.clone())
            .chain(r.remade.iter().map(|m| m.change.clone()))
            .collect()
    }

    #[test]
    fn a_log_without_duplicates_needs_nothing() {
        let mut a = base();
        rate(&mut a, "r1", 1, "x");
        let r = repair_duplicates(rows(all(&mut a)), &actor()).unwrap();
        assert!(r.is_empty());
        assert!(r.delete.is_empty());
        assert_eq!(r.summary(), "nothing to repair");
    }

    #[test]
    fn three_writers_and_a_change_built_on_a_replaced_one() {
        let mut a = base();
        let partner = ActorId::from(&[9u8; 32][..]);
        let mut p = a.fork().with_actor(partner.clone());
        let from_partner = rate(&mut p, "p1", 2, "partner");
        let history = all(&mut a);
        let mut b = a.fork().with_actor(actor());
        let mut c = a.fork().with_actor(actor());
        let ca = rate(&mut a, "r1", 1, "fine");
        let cb = write(&mut b);
        let cc = rate(&mut c, "r3", 0, "third");
        // The process that wrote `cb` goes on from its own copy: a change that edits
        // the objects `cb` created.
        let r2 = match b.get(obj(&b, "ratings"), "r2").unwrap() {
            Some((_, id)) => id,
            None => panic!("r2"),
        };
        let inner = match b.get(&r2, "text").unwrap() {
            Some((_, id)) => id,
            None => panic!("text"),
        };
        b.splice_text(&inner, 4, 0, "er").unwrap();
        b.put(&r2, "level", -2).unwrap();
        let cb2 = commit(&mut b, "write more", 40);
        assert_eq!(cb2.deps(), &[cb.hash()]);

        let log = rows(
            [
                history,
                vec![
                    ca.clone(),
                    cb.clone(),
                    from_partner,
                    cc.clone(),
                    cb2.clone(),
                ],
            ]
            .concat(),
        );
        let n = log.len() as i64;
        let r = repair_duplicates(log.clone(), &actor()).unwrap();
        assert_eq!(r.delete, vec![n - 3, n - 1, n]);
        let originals: Vec<ChangeHash> = r.remade.iter().map(|m| m.original).collect();
        assert_eq!(originals, vec![cb.hash(), cc.hash(), cb2.hash()]);
        let seqs: Vec<u64> = r.remade.iter().map(|m| m.change.seq()).collect();
        assert_eq!(seqs, vec![ca.seq() + 1, ca.seq() + 2, ca.seq() + 3]);
        assert!(r.remade.iter().all(|m| m.change.actor_id() == &actor()));
        assert_eq!(
            r.summary(),
            "3 changes saved by duet commands running at the same time were saved again; nothing was lost"
        );

        let mut doc = doc_of(repaired(&log, &r)).unwrap();
        let ratings = obj(&doc, "ratings");
        for key in ["r1", "r3", "p1"] {
            assert!(doc.get(&ratings, key).unwrap().is_some(), "{key}");
        }
        let r2 = match doc.get(&ratings, "r2").unwrap() {
            Some((_, id)) => id,
            None => panic!("r2"),
        };
        assert_eq!(map_get(&doc, &r2, "level").as_deref(), Some("-2"));
        let inner = match doc.get(&r2, "text").unwrap() {
            Some((_, id)) => id,
            None => panic!("text"),
        };
        assert_eq!(doc.text(&inner).unwrap(), "deeper");
        assert_eq!(doc.text(obj(&doc, "notes")).unwrap(), "Hello world");
        // The repaired log is stable: repairing it again finds nothing.
        assert!(
            repair_duplicates(rows(all(&mut doc)), &actor())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn another_devices_duplicate_is_refused() {
        let (history, ca, cb) = raced();
        let err = repair_duplicates(
            rows([history, vec![ca, cb]].concat()),
            &ActorId::from(&[1u8; 32][..]),
        )
        .unwrap_err();
        assert!(
            matches!(err, RepairError::ForeignDuplicate { actor: ref a, .. } if a == &actor()),
            "{err}"
        );
    }

    /// The checked-in store broken by the real race (tests/fixtures/duplicate-seq):
    /// both spaces repair, and every rating and reflection reported saved is there.
    #[test]
    fn the_fixture_repairs_with_nothing_lost() {
        use rusqlite::{Connection, OpenFlags};
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/duplicate-seq"
        );
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{dir}/expected.json")).unwrap())
                .unwrap();
        // Immutable: the fixture is only read, with no lock, journal or WAL file.
        let db = Connection::open_with_flags(
            format!("file:{dir}/duet.db?immutable=1"),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
        )
        .unwrap();
        let device = hex::decode(expected["me"]["device"].as_str().unwrap()).unwrap();
        let local = ActorId::from(&device[..]);
        for kind in ["shared", "personal"] {
            let want = &expected[kind];
            let mut stmt = db
                .prepare("SELECT id, bytes FROM changes WHERE space = ?1 ORDER BY id")
                .unwrap();
            let log: Vec<(i64, Change)> = stmt
                .query_map([want["space"].as_str().unwrap()], |r| {
                    Ok((r.get(0)?, r.get::<_, Vec<u8>>(1)?))
                })
                .unwrap()
                .map(|r| {
                    let (id, b) = r.unwrap();
                    (id, Change::from_bytes(b).unwrap())
                })
                .collect();
            let all: Vec<Change> = log.iter().map(|(_, c)| c.clone()).collect();
            assert!(
                crate::doc::SpaceDoc::load(local.clone(), None, all).is_err(),
                "{kind} is broken"
            );
            let r = repair_duplicates(log.clone(), &local).unwrap();
            assert!(!r.is_empty(), "{kind}");
            let doc = crate::doc::SpaceDoc::load(local.clone(), None, repaired(&log, &r)).unwrap();
            let ratings: HashMap<String, (i64, Option<String>)> = doc
                .ratings()
                .unwrap()
                .into_iter()
                .map(|r| (r.id, (r.level.get(), r.note)))
                .collect();
            for w in want["ratings"].as_array().unwrap() {
                let got = &ratings[w["id"].as_str().unwrap()];
                assert_eq!(got.0, w["level"].as_i64().unwrap());
                assert_eq!(got.1.as_deref(), w["note"].as_str());
            }
            assert_eq!(ratings.len(), want["ratings"].as_array().unwrap().len());
            let reflections: HashMap<String, String> = doc
                .reflections()
                .unwrap()
                .into_iter()
                .map(|r| (r.id, r.text.as_str().to_string()))
                .collect();
            for w in want["reflections"].as_array().unwrap() {
                assert_eq!(
                    reflections[w["id"].as_str().unwrap()],
                    w["text"].as_str().unwrap()
                );
            }
            assert_eq!(
                reflections.len(),
                want["reflections"].as_array().unwrap().len()
            );
        }
    }
}
