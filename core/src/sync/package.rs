//! Packaging this device's pending local changes into signed, sealed `changes` events,
//! and pushing them.

use crate::advice::Warning;
use automerge::Change;

use super::local::Local;
use super::pull::Pull;
use super::{SyncError, Transport};
use crate::event::{CODEC_BUNDLE, Event, Header, Kind, MAX_EVENT_BYTES};
use crate::event::{encode_changes, encode_raw_changes};
use crate::identity::Identity;
use crate::store::{SpaceRecord, Store};

/// Packages pending local changes under the newest key epoch this device knows and
/// pushes them. The home's write lock is held from reloading the state until the events
/// are stored. A refusal by the relay is in the report.
pub(super) fn package_and_push(
    store: &mut Store,
    local: &mut Local,
    pull: &mut Pull<'_>,
    relay: &str,
    transport: &dyn Transport,
) -> Result<(), SyncError> {
    let (me, rec) = (pull.me, pull.rec);
    let lock = store.write_lock()?;
    if local.refresh(store, rec)? {
        pull.keys = local.keys.clone();
    }
    // A partner left knowing the current key, or a key change gave this device a key
    // other than the one it committed to: start a new one before writing anything.
    let epoch = local.state.epoch();
    let key_refused = pull.refused_key == Some(epoch) && !pull.keys.contains_key(&epoch);
    let rotate =
        (local.state.needs_rotation() || key_refused) && local.state.is_member(&me.device_key());
    if rotate {
        let head = store
            .own_head(&rec.id, &me.device_key())?
            .unwrap_or((0, [0; 32]));
        let (ev, epoch, key) =
            crate::rekey::next_epoch(me, rec.id, &local.state, head, None, store.now());
        store.record_removal(&rec.id, &ev, epoch, &key)?;
        // Folded here: this connection's own commit does not move the store's data
        // version, so a refresh would not see it, and the pending changes would be
        // sealed under the key the rotation replaces.
        let _ = local.state.admit(&ev, None);
        local.keys.insert(epoch, key);
        pull.keys = local.keys.clone();
        pull.report.rotated = true;
    }
    let epoch = local.state.epoch();
    match pull.keys.get(&epoch).cloned() {
        Some(key) => {
            let packaged = package_pending(store, me, rec, local, epoch, &key)?;
            drop(lock);
            if packaged > 0 || rotate {
                super::give_back::push_or_give_back(store, rec, relay, transport, pull.report)?;
                // Sent only once the relay has them all (a push refused or withdrawn
                // keeps them on this device, and the sync says so instead): a push
                // refused as a fork withdraws its events, which leaves none unacked, and
                // the sync said "sent 3 changes" beside the refusal.
                if store.unacked_events(&rec.id)?.is_empty() && !pull.report.withdrawn {
                    pull.report.pushed_changes = packaged;
                }
            }
        }
        None => {
            pull.report.missing_key = Some(epoch);
            pull.report.warnings.push(Warning::new(format!(
                "the space is at key epoch {epoch} but this device has no key for it: it \
                 joined with a code made before a device's removal (a device is never given \
                 a key after it joins), or the relay withholds the event with its key; \
                 nothing written since can be read here, and local changes wait"
            )))
        }
    }
    Ok(())
}

/// Packages the pending local changes of a space into signed events without pushing
/// them (the next sync does), before an event that must come after them, such as a leave,
/// after which nothing of this device's is accepted there. Returns the change count;
/// nothing is packaged while the space waits for a key rotation or lacks its key (the
/// sync does those first).
pub(crate) fn package_local(
    store: &mut Store,
    me: &Identity,
    rec: &SpaceRecord,
) -> Result<usize, SyncError> {
    let _lock = store.write_lock()?;
    let mut local = Local::load(store, rec, None, None)?;
    let epoch = local.state.epoch();
    let key = match local.keys.get(&epoch) {
        Some(key) if !local.state.needs_rotation() => key.clone(),
        _ => return Ok(0),
    };
    package_pending(store, me, rec, &mut local, epoch, &key)
}

/// At most this many pending changes go out in the raw codec when the sync has not
/// loaded the document: a bundle is built from the document, and loading a long history
/// costs far more than the few bytes a bundle saves on a handful of changes (a `rate`
/// then a `sync` at 100,000 changes would otherwise load them all).
const RAW_WITHOUT_DOCUMENT: usize = 64;

/// Encodes changes as one changes plaintext.
type Encode<'a> = dyn Fn(&[Change]) -> Result<Vec<u8>, SyncError> + 'a;

/// Splits changes into plaintexts under the event size limit (halving on overflow).
fn package(changes: &[Change], encode: &Encode<'_>) -> Result<Vec<Vec<u8>>, SyncError> {
    let plain = encode(changes)?;
    // Leave room for the header, nonce, tag and signature; and stay within what a
    // receiver reads of one event (decompressed size and operations, see `bundle`).
    let fits = plain.len() + 1024 <= MAX_EVENT_BYTES
        && (plain.first() != Some(&CODEC_BUNDLE)
            || crate::bundle::inflated_len(&plain[1..])
                .is_ok_and(|n| n <= crate::bundle::MAX_INFLATED_BYTES))
        && changes.iter().map(|c| c.len() as u64).sum::<u64>() <= crate::bundle::MAX_OPS_PER_EVENT;
    if fits || changes.len() == 1 {
        return Ok(vec![plain]);
    }
    let (a, b) = changes.split_at(changes.len() / 2);
    let mut out = package(a, encode)?;
    out.extend(package(b, encode)?);
    Ok(out)
}

/// Packages every pending local change into signed events sealed under `epoch`'s key,
/// stored (and the changes marked sent) in one transaction. Returns the change count.
fn package_pending(
    store: &mut Store,
    me: &Identity,
    rec: &SpaceRecord,
    local: &mut Local,
    epoch: u32,
    key: &crate::crypto::SpaceKey,
) -> Result<usize, SyncError> {
    let pending = store.pending_changes(&rec.id)?;
    if pending.is_empty() {
        return Ok(0);
    }
    let (mut seq, mut prev) = store
        .own_head(&rec.id, &me.device_key())?
        .unwrap_or((0, [0; 32]));
    let changes: Vec<Change> = pending.iter().map(|(_, c)| c.clone()).collect();
    let mut events = Vec::new();
    let plains = match local.loaded() {
        None if changes.len() <= RAW_WITHOUT_DOCUMENT => {
            package(&changes, &|c| Ok(encode_raw_changes(c)))?
        }
        _ => {
            let (_, doc) = local.with_doc(store, me, rec)?;
            package(&changes, &|c| {
                encode_changes(doc.automerge(), c).map_err(|e| SyncError::Package(e.to_string()))
            })?
        }
    };
    for plain in plains {
        seq += 1;
        let header = Header {
            kind: Kind::Changes,
            space: rec.id,
            author: me.device_key(),
            seq,
            prev,
            time: store.now(),
        };
        let ev = Event::changes_at(header, epoch, &plain, key, me);
        prev = ev.hash();
        events.push(ev);
    }
    let ids: Vec<i64> = pending.iter().map(|(id, _)| *id).collect();
    store.record_own_events(&rec.id, &events, &ids)?;
    Ok(changes.len())
}
