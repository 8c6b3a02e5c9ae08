//! Two copies of one device (a lost device restored from a backup while the old one still
//! runs, or a copied home) sign as one device and write as one Automerge actor. When the
//! other copy's changes arrive with the numbers this copy gave its own unsent changes,
//! the pull stops ([`another_copy_numbered`]); the sync sets this copy's unsent changes
//! aside and syncs again, and here, after that pull, makes them again after the other
//! copy's with their content unchanged, so that they go out in the same sync.

use automerge::{Change, ReadDoc};

use super::SyncError;
use super::local::Local;
use super::pull::Pull;
use crate::advice::{NextStep, Warning};
use crate::doc::{SpaceDoc, Tip};
use crate::store::Store;

/// Whether `changes` (of an event signed by this device, but not made by this copy)
/// reuse a sequence number this copy already gave one of its own changes.
pub(super) fn another_copy_numbered(doc: &SpaceDoc, changes: &[Change]) -> bool {
    let am = doc.automerge();
    let actor = am.get_actor();
    let last = am.get_last_local_change().map_or(0, |c| c.seq());
    changes.iter().any(|c| {
        c.actor_id() == actor && c.seq() <= last && am.get_change_by_hash(&c.hash()).is_none()
    })
}

/// Makes this copy's set-aside changes again after everything the document holds now,
/// applies and stores them as unsent changes, and says so; nothing when none wait.
pub(super) fn take_back(
    store: &mut Store,
    local: &mut Local,
    pull: &mut Pull<'_>,
) -> Result<(), SyncError> {
    let (me, rec) = (pull.me, pull.rec);
    // Almost always none: looked at before taking the home's write lock. A pull that
    // stopped before the relay's end may not have brought all the other copy's changes
    // yet (nor its events, whose sequence numbers this copy's next event would take):
    // they wait for the sync that reads to the end.
    if pull.report.incomplete || store.set_aside(&rec.id)?.is_empty() {
        return Ok(());
    }
    let _lock = store.write_lock()?;
    local.refresh(store, rec)?;
    let aside = store.set_aside(&rec.id)?;
    if aside.is_empty() {
        return Ok(());
    }
    let (_, doc) = local.with_doc(store, me, rec)?;
    let tip = Tip::of(doc);
    let seq = tip.last().map_or(0, |(_, seq)| seq) + 1;
    let heads = doc.heads();
    let (rows, aside): (Vec<i64>, Vec<Change>) = aside.into_iter().unzip();
    let set_aside = aside.len();
    // A change made before the copies parted (unsent when the backup or the copy was
    // taken) may have been sent by the other copy: the document holds it, byte for byte.
    // Made again it would be a second change creating what that one created, which
    // every device refuses; the others may build on it, and its ids stay valid.
    let unsent: Vec<Change> = aside
        .into_iter()
        .filter(|c| doc.automerge().get_change_by_hash(&c.hash()).is_none())
        .collect();
    let remade = crate::repair::remake_after(&unsent, seq, tip.max_op() + 1, heads)?;
    doc.apply(remade.clone())?;
    store.take_back_set_aside(&rec.id, &rows, &remade, doc)?;
    local.seen = store.data_version()?;
    pull.report.remade = remade.len();
    pull.report.warnings.push(Warning::then(
        said(remade.len(), set_aside - remade.len()),
        NextStep::UseOneCopy,
    ));
    Ok(())
}

/// What a sync says of this copy's changes set aside: `remade` made again, `sent` found
/// sent already by the other copy.
fn said(remade: usize, sent: usize) -> String {
    let n = |k: usize, one: &'static str, more: &'static str| if k == 1 { one } else { more };
    let mut said = "another copy of this device (restored from a backup, or a copy of its home) \
                    sent changes first; "
        .to_string();
    if remade > 0 {
        said += &format!(
            "this copy's {remade} unsent change{} {} made again after them",
            n(remade, "", "s"),
            n(remade, "was", "were"),
        );
    }
    if sent > 0 {
        said += &format!(
            "{}{sent} unsent change{} of this copy {} among them, sent by that copy already",
            if remade > 0 { "; " } else { "" },
            n(sent, "", "s"),
            n(sent, "was", "were"),
        );
    }
    said + " and nothing is lost"
}
