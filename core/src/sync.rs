//! The sync algorithm, over an abstract [`Transport`] (the CLI supplies HTTP).
//!
//! One sync of a space: (1) push every event of this device the relay has not
//! acknowledged (a join first of all); (2) pull everything after the cursor and verify
//! each event here, trusting nothing the relay says: signature, space, membership, the
//! author's hash chain, the key epoch, decryption, and that every Automerge change inside
//! is authored by the signer's actor; events whose predecessor, invite or key has not
//! arrived wait; refused events are kept as evidence and reported; (3) package local
//! changes into `changes` events under the newest key epoch (one event unless the backlog
//! exceeds the event size limit) and push them. Own events are stored before they are
//! sent, so a sync interrupted at any point resends the same events and the relay treats
//! them as duplicates.
//!
//! Neither the relay nor a partner can make a sync endless or unbounded: it reads at
//! most [`MAX_PAGES_PER_SYNC`] pages and stops when the relay says more wait but serves
//! nothing new; an event whose content is refused is stored (with the cursor past it) at
//! once, so an interrupted sync never reads it again; after [`MAX_STALLS_PER_SYNC`]
//! contents that stalled the parser it stops reading; and it keeps at most
//! [`crate::store::MAX_HELD_EVENTS`] waiting events. Each time it says why, and the next
//! sync goes on from where it stopped.

use std::collections::BTreeMap;

use automerge::Change;

use crate::doc::SpaceDoc;
use crate::event::SpaceId;
use crate::event::{
    Event, Header, Kind, MAX_EVENT_BYTES, MembershipOp, PayloadError, decode_changes,
    encode_changes,
};
use crate::identity::{Identity, actor_for};
use crate::membership::{AdmitError, SpaceState};
use crate::protocol::{
    ErrorBody, EventStatus, MAX_BODY_BYTES, MAX_READ_LIMIT, PushResponse, encode_batch,
};
use crate::store::{
    Accepted, MAX_HELD_BYTES, MAX_HELD_EVENTS, Refused, SpaceRecord, Store, StoreError,
};

/// Pages one sync reads at most (a page holds up to 1,000 events or 16 MiB): a relay
/// that always says more wait cannot keep a sync going. The next sync reads on.
pub const MAX_PAGES_PER_SYNC: usize = 256;
/// Contents refused at the parser's deadline after which a sync stops reading: each
/// costs seconds and leaves a parser thread spinning until the process ends. The next
/// sync reads on (those already refused are never read again).
pub const MAX_STALLS_PER_SYNC: usize = 2;

/// Why talking to the relay failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No answer.
    #[error(
        "cannot reach the relay at {relay}: {detail}; check that it is running and the URL is right (`duet status`), then run `duet sync` again"
    )]
    Unreachable {
        /// URL.
        relay: String,
        /// What the network layer said.
        detail: String,
    },
    /// The relay answered with an error.
    #[error("the relay refused ({status} {}): {}", body.error, body.message)]
    Refused {
        /// HTTP status.
        status: u16,
        /// The error body.
        body: ErrorBody,
    },
    /// The relay's answer made no sense.
    #[error("the relay sent an invalid answer: {0}")]
    BadResponse(String),
    /// The relay's answer was larger than any honest answer.
    #[error(
        "the relay at {relay} sent an answer larger than {limit} bytes, more than any relay sends; it was refused \
         unread (a misbehaving relay or a proxy in the way: check the URL with `duet status`)"
    )]
    TooLarge {
        /// URL.
        relay: String,
        /// The most this client reads of one answer.
        limit: usize,
    },
}

/// One page of a read: `(cursor, event bytes)` in cursor order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// The events.
    pub events: Vec<(u64, Vec<u8>)>,
    /// Whether more events wait after this page.
    pub more: bool,
    /// The space's newest cursor at the relay, when it says.
    pub newest: Option<u64>,
    /// Fork attempts the relay refused in this space, when it says.
    pub forks: Option<u64>,
}

/// How a client reaches a relay.
pub trait Transport {
    /// Pushes a framed batch of events. `create_token` is the relay operator's creation
    /// token, given only when the batch creates the space (it holds the space's
    /// genesis); send it in the [`crate::protocol::H_CREATE_TOKEN`] header.
    fn push(
        &self,
        relay: &str,
        space: &SpaceId,
        body: Vec<u8>,
        create_token: Option<&str>,
    ) -> Result<PushResponse, TransportError>;
    /// Pulls a page of `(cursor, event)` after `after`; the flag says whether more wait.
    fn pull(
        &self,
        relay: &str,
        space: &SpaceId,
        after: u64,
        limit: u32,
        reader: &Identity,
    ) -> Result<Page, TransportError>;
}

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// No relay configured.
    #[error("no relay is set for this space; run `duet relay set URL` first")]
    NoRelay,
    /// Transport failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The document failed.
    #[error(transparent)]
    Doc(#[from] crate::doc::DocError),
    /// Building an event failed.
    #[error("cannot package local changes: {0}")]
    Package(String),
}

/// What arrived from one person.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Arrivals {
    /// Display name (or a short device key).
    pub from: String,
    /// Count per kind of change ("rating", "reflection", ...).
    pub counts: BTreeMap<String, usize>,
}

impl Arrivals {
    /// "2 ratings and 1 reflection from Sam".
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .counts
            .iter()
            .map(|(k, n)| format!("{n} {}", if *n == 1 { k.clone() } else { plural(k) }))
            .collect();
        let list = match parts.len() {
            0 => "nothing".to_string(),
            1 => parts[0].clone(),
            n => format!("{} and {}", parts[..n - 1].join(", "), parts[n - 1]),
        };
        format!("{list} from {}", self.from)
    }
}

fn plural(k: &str) -> String {
    match k {
        "status change" => "status changes".into(),
        k => format!("{k}s"),
    }
}

/// The outcome of syncing one space.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SyncReport {
    /// Events pushed (new or resent).
    pub pushed_events: usize,
    /// Local changes packaged into new events.
    pub pushed_changes: usize,
    /// Events pulled and accepted.
    pub received_events: usize,
    /// What arrived, per person.
    pub arrivals: Vec<Arrivals>,
    /// Events refused, with reasons.
    pub warnings: Vec<String>,
    /// The cursor after the pull.
    pub cursor: u64,
    /// Why the relay refused this device's own events, if it did (they stay stored
    /// locally and are offered again on the next sync).
    pub push_refused: Option<String>,
    /// The relay serves less than this device already received (rolled back).
    pub rollback: bool,
    /// Authentic events waiting for an earlier event of their author.
    pub waiting: usize,
    /// Fork (equivocation) attempts the relay reports for this space.
    pub forks: u64,
    /// The sync stopped reading before the relay's end (too many pages, contents that
    /// stalled the parser, too many waiting events, or a relay serving nothing new):
    /// the warnings say why; the next sync reads on.
    pub incomplete: bool,
    /// The space's document is there but does not list this person yet (a freshly
    /// joined space): the caller adds the name.
    #[serde(skip)]
    pub unnamed: bool,
    /// Devices whose removal by this device was withdrawn after a conflict.
    #[serde(skip)]
    pub redo_removals: Vec<crate::identity::DeviceKey>,
}

/// Rebuilds a space's verified state from the events stored on this device.
pub fn fold_state(store: &Store, space: &SpaceId) -> Result<SpaceState, StoreError> {
    Ok(SpaceState::fold(&store.stored_events(space)?))
}

fn label(message: Option<&str>) -> &'static str {
    match message {
        Some("add goal") => "goal",
        Some("rate") => "rating",
        Some("reflect") => "reflection",
        Some("add step") => "step",
        Some("complete step") => "completed step",
        Some("edit goal") => "edit",
        Some("set status") => "status change",
        Some("set person") => "name update",
        _ => "other change",
    }
}

/// Splits changes into plaintexts under the event size limit (halving on overflow).
fn package(doc: &SpaceDoc, changes: &[Change]) -> Result<Vec<(Vec<u8>, usize)>, SyncError> {
    let plain =
        encode_changes(doc.automerge(), changes).map_err(|e| SyncError::Package(e.to_string()))?;
    // Leave room for the header, nonce, tag and signature; and stay within what a
    // receiver reads of one event (decompressed size and operations, see `bundle`).
    let fits = plain.len() + 1024 <= MAX_EVENT_BYTES
        && crate::bundle::inflated_len(&plain[1..])
            .is_ok_and(|n| n <= crate::bundle::MAX_INFLATED_BYTES)
        && changes.iter().map(|c| c.len() as u64).sum::<u64>() <= crate::bundle::MAX_OPS_PER_EVENT;
    if fits || changes.len() == 1 {
        return Ok(vec![(plain, changes.len())]);
    }
    let (a, b) = changes.split_at(changes.len() / 2);
    let mut out = package(doc, a)?;
    out.extend(package(doc, b)?);
    Ok(out)
}

/// Syncs one space with its relay.
pub fn sync_space(
    store: &mut Store,
    me: &Identity,
    rec: &SpaceRecord,
    transport: &dyn Transport,
) -> Result<SyncReport, SyncError> {
    let relay = rec.relay.clone().ok_or(SyncError::NoRelay)?;
    let mut report = SyncReport::default();

    // 1. Push what is already packaged but not acknowledged (a join first of all).
    let mut push_refusal = push_unacked(store, rec, &relay, transport, &mut report)?;

    // 2. Pull and verify everything after the cursor. The home's write lock is held
    // while a page is verified, applied and stored, never while waiting for the relay;
    // what another process committed in between is loaded again first.
    let mut local = {
        let _lock = store.write_lock()?;
        Local::load(store, me, rec)?
    };
    let mut cursor = rec.cursor;
    let mut pull = Pull {
        rec,
        me,
        keys: local.keys.clone(),
        arrivals: BTreeMap::new(),
        stalls: 0,
        report: &mut report,
    };
    let mut pages = 0usize;
    loop {
        // If the pull fails after a refused push, the push's reason is the real one
        // (e.g. a join the relay refused leaves the device unable to read).
        let Page {
            events: page,
            more,
            newest,
            forks,
        } = match transport.pull(&relay, &rec.id, cursor, MAX_READ_LIMIT, me) {
            Ok(page) => page,
            Err(e) => return Err(push_refusal.take().unwrap_or(e).into()),
        };
        pages += 1;
        let page_start = cursor;
        if let Some(newest) = newest.filter(|n| *n < cursor) {
            pull.report.rollback = true;
            pull.report.warnings.push(format!(
                "the relay now ends at cursor {newest} but this device already received events up to {cursor}: \
                 it lost or hides events (restored from an old backup, or tampered with); nothing here was changed"
            ));
        }
        if let Some(n) = forks.filter(|n| *n > 0) {
            pull.report.forks = n;
        }
        let lock = store.write_lock()?;
        let refreshed = local.refresh(store, me, rec)?;
        if refreshed {
            pull.keys = local.keys.clone();
        }
        let Local {
            doc,
            state,
            seen: version,
            ..
        } = &mut local;
        let received_before = pull.report.received_events;
        let (mut held_count, mut held_bytes) = store.held_stats(&rec.id)?;
        let mut stop: Option<Stop> = None;
        let mut batch = Batch::default();
        let mut seen = std::collections::HashSet::new();
        // The relay's order is the cursor order; a page served shuffled is put back.
        let mut page = page;
        page.sort_by_key(|(c, _)| *c);
        for (c, bytes) in page {
            if pull.stalls >= MAX_STALLS_PER_SYNC {
                stop = Some(Stop::Stalls);
                break;
            }
            // Entries are processed whatever order the relay served them in (the hash
            // chain, not the cursor, decides what fits); the cursor only moves forward.
            let before = cursor;
            cursor = cursor.max(c);
            let hash = crate::crypto::sha256(&bytes);
            if !seen.insert(hash) {
                continue; // served twice in one page
            }
            if store.has_event(&rec.id, &hash)? {
                if let Ok(ev) = Event::decode(bytes) {
                    let _ = state.admit(&ev, None);
                }
                batch.own.push((hash, c));
                continue;
            }
            let len = bytes.len();
            let held = batch.held.len();
            pull.process(state, doc, &mut batch, c, bytes)?;
            if batch.held.len() > held {
                held_count += 1;
                held_bytes += len;
                if held_count > MAX_HELD_EVENTS || held_bytes > MAX_HELD_BYTES {
                    // Not kept, and the cursor stays before it: read again once the
                    // waiting events fit or are dropped.
                    batch.held.pop();
                    held_count -= 1;
                    cursor = before;
                    stop = Some(Stop::Held);
                    break;
                }
            }
            if batch.flush {
                // Refused content is recorded at once, with the cursor past it: an
                // interrupted sync never reads it again.
                store.store_pulled(&rec.id, &batch.as_pulled(), cursor, doc)?;
                batch = Batch::default();
            }
        }
        // Events that were waiting for a predecessor may fit now; they cannot unless
        // something changed since they were last checked.
        let changed = pages == 1 || refreshed || pull.report.received_events > received_before;
        let mut waiting: Vec<(u64, Vec<u8>)> = Vec::new();
        if changed {
            waiting = store.held(&rec.id)?;
            waiting.append(&mut batch.held);
        }
        while !waiting.is_empty() {
            let mut progressed = false;
            let mut still = Vec::new();
            for (c, bytes) in waiting {
                let hash = crate::crypto::sha256(&bytes);
                // Served again and taken meanwhile: not checked twice.
                if batch.accepted.iter().any(|a| a.event.hash() == hash)
                    || store.has_event(&rec.id, &hash)?
                {
                    batch.released.push(hash);
                    continue;
                }
                if pull.stalls >= MAX_STALLS_PER_SYNC {
                    stop.get_or_insert(Stop::Stalls);
                    still.push((c, bytes));
                    continue;
                }
                let before = batch.accepted.len() + batch.refused.len();
                pull.process(state, doc, &mut batch, c, bytes.clone())?;
                if batch.accepted.len() + batch.refused.len() > before {
                    progressed = true;
                    batch.released.push(hash);
                } else {
                    batch.held.pop();
                    still.push((c, bytes));
                }
                if batch.flush {
                    store.store_pulled(&rec.id, &batch.as_pulled(), cursor, doc)?;
                    batch = Batch::default();
                }
            }
            waiting = still;
            if !progressed {
                break;
            }
        }
        batch.held.append(&mut waiting);
        store.store_pulled(&rec.id, &batch.as_pulled(), cursor, doc)?;
        *version = store.data_version()?;
        drop(lock);
        let stop = match stop {
            Some(stop) => Some(stop),
            None if !more => None,
            None if cursor <= page_start => Some(Stop::Stuck),
            None if pages >= MAX_PAGES_PER_SYNC => Some(Stop::Pages),
            None => continue,
        };
        if let Some(stop) = stop {
            pull.report.incomplete = true;
            pull.report.warnings.push(stop.warning(cursor, held_count));
        }
        break;
    }
    // 3. Package local changes under the newest key epoch this device knows (after the
    // pull, so edits made offline during a removal go out under the new key), then push.
    if push_refusal.is_none() {
        let lock = store.write_lock()?;
        if local.refresh(store, me, rec)? {
            pull.keys = local.keys.clone();
        }
        let epoch = local.state.epoch();
        match pull.keys.get(&epoch).cloned() {
            Some(key) => {
                let packaged = package_pending(store, me, rec, &local.doc, epoch, &key)?;
                drop(lock);
                if packaged > 0 {
                    pull.report.pushed_changes = packaged;
                    push_refusal = push_unacked(store, rec, &relay, transport, pull.report)?;
                }
            }
            None => pull.report.warnings.push(format!(
                "the space is at key epoch {epoch} but this device has no key for it (a rotation event may be withheld); local changes wait"
            )),
        }
    }
    let _ = push_refusal;
    let held = store.held(&rec.id)?;
    if !held.is_empty() {
        let mut authors: BTreeMap<String, usize> = BTreeMap::new();
        for (_, bytes) in &held {
            if let Ok(ev) = Event::decode(bytes.clone()) {
                *authors
                    .entry(hex::encode(&ev.header().author[..6]))
                    .or_default() += 1;
            }
        }
        // A line per device, for a few: a relay can make up any number of devices.
        const SHOWN: usize = 5;
        let mut authors: Vec<(String, usize)> = authors.into_iter().collect();
        authors.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        for (author, n) in authors.iter().take(SHOWN) {
            pull.report.warnings.push(format!(
                "{n} event(s) from device {author} wait for an earlier event or a key the relay has not served \
                 (withheld or lost); they will be applied when it arrives"
            ));
        }
        if authors.len() > SHOWN {
            let rest = &authors[SHOWN..];
            pull.report.warnings.push(format!(
                "{} more event(s) from {} other device(s) wait likewise",
                rest.iter().map(|(_, n)| n).sum::<usize>(),
                rest.len()
            ));
        }
        pull.report.waiting = held.len();
    }
    let _lock = store.write_lock()?;
    local.refresh(store, me, rec)?;
    let doc = &local.doc;
    // Names can only be resolved once the people map has arrived (it may come in the
    // same pull), so arrivals are keyed by person id until here.
    let people = doc.people()?;
    pull.report.unnamed = doc.is_initialised() && !people.contains_key(&me.person_id);
    let mut arrivals = std::mem::take(&mut pull.arrivals);
    for a in arrivals.values_mut() {
        if let Some(p) = people.get(&a.from) {
            a.from = p.name.clone();
        }
    }
    report.arrivals = arrivals.into_values().collect();
    report.cursor = cursor;
    if report.forks > 0 {
        report.warnings.push(format!(
            "the relay refused {} attempt(s) by a device to sign two different events with the same \
             sequence number (equivocation); it kept the first and holds the other as evidence",
            report.forks
        ));
    }
    let mut alerts = Vec::new();
    if report.rollback {
        alerts.push(format!("the relay served less than this device already had (cursor {cursor}); it may have lost or be hiding events"));
    }
    if report.forks > 0 {
        alerts.push(format!(
            "{} equivocation attempt(s) by a device of this space, refused by the relay",
            report.forks
        ));
    }
    let alert = (!alerts.is_empty()).then(|| alerts.join("; "));
    store.set_alert(&rec.id, alert.as_deref())?;
    // A space just joined has no read models yet: build them once, from the document
    // in hand, rather than entity by entity while its whole history arrives.
    store.ensure_view(&rec.id, doc)?;
    Ok(report)
}

/// What a sync holds of the store: the document, the verified membership state and the
/// space keys, as of SQLite's `data_version` `seen`.
struct Local {
    doc: SpaceDoc,
    state: SpaceState,
    keys: BTreeMap<u32, crate::crypto::SpaceKey>,
    seen: i64,
}

impl Local {
    /// Loads them; call with the home's write lock held.
    fn load(store: &Store, me: &Identity, rec: &SpaceRecord) -> Result<Local, SyncError> {
        let seen = store.data_version()?;
        let (doc, _) = store.load_doc(&rec.id, me)?;
        Ok(Local {
            doc,
            state: fold_state(store, &rec.id)?,
            keys: store.epoch_keys(&rec.id)?,
            seen,
        })
    }

    /// Loads them again if another process committed since; call with the lock held.
    /// Returns whether it did.
    fn refresh(
        &mut self,
        store: &Store,
        me: &Identity,
        rec: &SpaceRecord,
    ) -> Result<bool, SyncError> {
        if store.data_version()? == self.seen {
            return Ok(false);
        }
        *self = Local::load(store, me, rec)?;
        Ok(true)
    }
}

/// Packages every pending local change into signed events sealed under `epoch`'s key,
/// stored (and the changes marked sent) in one transaction. Returns the change count.
fn package_pending(
    store: &mut Store,
    me: &Identity,
    rec: &SpaceRecord,
    doc: &SpaceDoc,
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
    for (plain, _) in package(doc, &changes)? {
        seq += 1;
        let header = Header {
            kind: Kind::Changes,
            space: rec.id,
            author: me.device_key(),
            seq,
            prev,
            time: crate::ids::now_ms(),
        };
        let ev = Event::changes_at(header, epoch, &plain, key, me);
        prev = ev.hash();
        events.push(ev);
    }
    let ids: Vec<i64> = pending.iter().map(|(id, _)| *id).collect();
    store.record_own_events(&rec.id, &events, &ids)?;
    Ok(changes.len())
}

/// Pushes every event of this device the relay has not acknowledged, in batches under
/// the body limit. A refusal is remembered (and returned) rather than failing the sync,
/// so the partner's events can still be pulled.
fn push_unacked(
    store: &mut Store,
    rec: &SpaceRecord,
    relay: &str,
    transport: &dyn Transport,
    report: &mut SyncReport,
) -> Result<Option<TransportError>, SyncError> {
    let unacked = store.unacked_events(&rec.id)?;
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut size = 0;
    let mut batches = Vec::new();
    for ev in unacked {
        if !batch.is_empty() && size + ev.len() + 4 > MAX_BODY_BYTES {
            batches.push(std::mem::take(&mut batch));
            size = 0;
        }
        size += ev.len() + 4;
        batch.push(ev);
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    let token = store.create_token(&rec.id)?;
    for batch in batches {
        // The token goes only with the batch that creates the space: it never leaves
        // the device otherwise.
        let creates = batch
            .iter()
            .any(|ev| Event::decode(ev.clone()).is_ok_and(|e| e.kind() == Kind::Genesis));
        let create_token = token.as_deref().filter(|_| creates);
        let resp = match transport.push(
            relay,
            &rec.id,
            encode_batch(batch.iter().map(Vec::as_slice)),
            create_token,
        ) {
            Ok(resp) => resp,
            Err(TransportError::Refused { status, body }) => {
                // A membership change of ours lost a race with a concurrent one (stale
                // epoch, already removed...): withdraw it and what followed it; the changes
                // are packaged again and the removal redone if still needed.
                if status == 409
                    && body.error == "conflict"
                    && let Some(first) = body
                        .results
                        .iter()
                        .find(|r| r.status == EventStatus::Rejected)
                        .and_then(|r| hex::decode(&r.hash).ok())
                        .and_then(|h| <[u8; 32]>::try_from(h).ok())
                {
                    let keys = store.epoch_keys(&rec.id)?;
                    if let Some(redo) = store.withdraw_unacked(&rec.id, &first, &keys)? {
                        report.warnings.push(format!(
                            "a membership change from this device conflicted with a concurrent one ({}); it was withdrawn and will be redone if still needed",
                            body.message
                        ));
                        report.redo_removals.extend(redo);
                        return Ok(None);
                    }
                }
                report.push_refused = Some(
                    if status == 403
                        && matches!(
                            body.error.as_str(),
                            "create_token_required" | "bad_create_token"
                        )
                    {
                        format!(
                            "the relay at {relay} only lets couples with a creation token create spaces; ask its operator for one and run `duet relay set {relay} --token TOKEN`"
                        )
                    } else {
                        format!("{status} {}: {}", body.error, body.message)
                    },
                );
                return Ok(Some(TransportError::Refused { status, body }));
            }
            Err(e) => return Err(e.into()),
        };
        let mut acked = Vec::new();
        for (r, ev) in resp.results.iter().zip(&batch) {
            if matches!(r.status, EventStatus::Accepted | EventStatus::Duplicate) {
                acked.push(crate::crypto::sha256(ev));
            }
        }
        report.pushed_events += acked.len();
        store.mark_acked(&rec.id, &acked)?;
    }
    Ok(None)
}

/// Why a sync stopped reading before the relay's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// [`MAX_PAGES_PER_SYNC`] pages read.
    Pages,
    /// The relay said more wait but served nothing past the cursor.
    Stuck,
    /// [`MAX_STALLS_PER_SYNC`] contents stalled the parser.
    Stalls,
    /// [`MAX_HELD_EVENTS`] (or [`MAX_HELD_BYTES`]) events wait already.
    Held,
}

impl Stop {
    fn warning(self, cursor: u64, held: usize) -> String {
        match self {
            Stop::Pages => format!(
                "read {MAX_PAGES_PER_SYNC} pages in this sync and the relay has more; stopped at cursor {cursor}: \
                 run `duet sync` again to read on"
            ),
            Stop::Stuck => format!(
                "the relay says more events wait after cursor {cursor} but serves nothing new; stopped reading \
                 (the relay is misbehaving); the next sync asks again"
            ),
            Stop::Stalls => format!(
                "stopped reading at cursor {cursor}: {MAX_STALLS_PER_SYNC} events carried content that did not parse in time \
                 (refused and recorded, never read again); run `duet sync` again to read on"
            ),
            Stop::Held => format!(
                "stopped reading at cursor {cursor}: {held} events already wait for an earlier event or a key \
                 (at most {MAX_HELD_EVENTS} or {} MiB are kept); a relay serving this many that never fit is misbehaving. \
                 Once they are dropped (`duet sync --drop-waiting`), sync reads on",
                MAX_HELD_BYTES >> 20
            ),
        }
    }
}

/// What one page of a pull produced, stored in one transaction (or more: a refused
/// content is stored at once, see `flush`).
#[derive(Default)]
struct Batch {
    accepted: Vec<Accepted>,
    refused: Vec<Refused>,
    own: Vec<([u8; 32], u64)>,
    held: Vec<(u64, Vec<u8>)>,
    released: Vec<[u8; 32]>,
    new_keys: Vec<(u32, crate::crypto::SpaceKey)>,
    /// Content was refused: store what this batch holds now.
    flush: bool,
}

impl Batch {
    fn as_pulled(&self) -> crate::store::Pulled<'_> {
        crate::store::Pulled {
            accepted: &self.accepted,
            refused: &self.refused,
            own_acked: &self.own,
            held: &self.held,
            released: &self.released,
            new_keys: &self.new_keys,
        }
    }
}

/// The per-event part of a pull.
struct Pull<'a> {
    rec: &'a SpaceRecord,
    me: &'a Identity,
    /// Space keys by epoch, including those received during this pull.
    keys: BTreeMap<u32, crate::crypto::SpaceKey>,
    arrivals: BTreeMap<String, Arrivals>,
    /// Contents refused at the parser's deadline in this sync.
    stalls: usize,
    report: &'a mut SyncReport,
}

impl Pull<'_> {
    /// Verifies one served event and files it as accepted, refused or held (waiting for
    /// an earlier event of its author).
    fn process(
        &mut self,
        state: &mut SpaceState,
        doc: &mut SpaceDoc,
        batch: &mut Batch,
        c: u64,
        bytes: Vec<u8>,
    ) -> Result<(), SyncError> {
        let hash = crate::crypto::sha256(&bytes);
        match verify_event(state, self.rec, &self.keys, bytes.clone()) {
            Ok((ev, content)) => {
                // A removal hands this device the next epoch's key, if it remains.
                if let Ok(MembershipOp::Remove {
                    epoch,
                    eph,
                    keys,
                    commit,
                    ..
                }) = MembershipOp::decode(&ev)
                    && let Some((_, wrapped)) =
                        keys.iter().find(|(d, _)| *d == self.me.device_key())
                {
                    match crate::keywrap::unwrap_committed(
                        self.me,
                        &eph,
                        wrapped,
                        &self.rec.id,
                        epoch,
                        commit.as_ref(),
                    ) {
                        Ok(key) => {
                            self.keys.insert(epoch, key.clone());
                            batch.new_keys.push((epoch, key));
                        }
                        Err(e) => self.report.warnings.push(format!(
                            "{e} (removal by device {}); this device takes no key from it and cannot write or read that epoch: compare `duet verify` with your partner, then remove and re-add this device",
                            &hex::encode(ev.header().author)[..12]
                        )),
                    }
                }
                // `verify_event` checked admissibility; admit cannot fail now. The chain
                // advances even when the content is refused, so the author's later
                // events still fit.
                let _ = state.admit(&ev, None);
                // Authentic and in sequence; now what it may touch: the owner rules
                // against the person of the device that signed it.
                let content = content.and_then(|changes| {
                    let person = state
                        .all_devices()
                        .get(&ev.header().author)
                        .map(|m| hex::encode(m.person))
                        .ok_or_else(|| {
                            ContentRefusal::from(
                                "its signer belongs to no person of this space".to_string(),
                            )
                        })?;
                    crate::rules::check(doc.automerge(), &person, &changes)
                        .map(|()| changes)
                        .map_err(|v| format!("it breaks the owner rules: {v}").into())
                });
                let changes = match content {
                    Ok(changes) => changes,
                    Err(ContentRefusal { reason, stalled }) => {
                        if stalled {
                            self.stalls += 1;
                        }
                        batch.flush = true;
                        self.report.warnings.push(format!(
                            "refused the content of event {} by device {}: {reason}",
                            &hex::encode(hash)[..12],
                            &hex::encode(ev.header().author)[..12]
                        ));
                        batch.refused.push(Refused {
                            hash,
                            reason,
                            bytes: bytes.clone(),
                        });
                        Vec::new()
                    }
                };
                if !changes.is_empty() {
                    let from = person_key(state, &ev);
                    let entry = self
                        .arrivals
                        .entry(from.clone())
                        .or_insert_with(|| Arrivals {
                            from,
                            ..Default::default()
                        });
                    for ch in &changes {
                        *entry
                            .counts
                            .entry(label(ch.message()).to_string())
                            .or_default() += 1;
                    }
                    doc.apply(changes.clone())?;
                }
                self.report.received_events += 1;
                batch.accepted.push(Accepted {
                    event: ev,
                    cursor: c,
                    changes,
                });
            }
            Err(Rejection::Wait) => batch.held.push((c, bytes)),
            Err(Rejection::NoKey(epoch)) => {
                let w = format!(
                    "events are encrypted under key epoch {epoch}, which this device has no key for: a removal (key rotation) event has not been served to it; they wait"
                );
                if !self.report.warnings.contains(&w) {
                    self.report.warnings.push(w);
                }
                batch.held.push((c, bytes));
            }
            Err(Rejection::Refuse(reason)) => {
                self.report.warnings.push(format!(
                    "refused event {} served by the relay: {reason}",
                    &hex::encode(hash)[..12]
                ));
                batch.refused.push(Refused {
                    hash,
                    reason,
                    bytes,
                });
            }
        }
        Ok(())
    }
}

/// The person id (hex) of the device that signed `ev`, or a short device key.
fn person_key(state: &SpaceState, ev: &Event) -> String {
    state
        .members()
        .get(&ev.header().author)
        .map(|m| hex::encode(m.person))
        .unwrap_or_else(|| format!("device {}", hex::encode(&ev.header().author[..6])))
}

/// Verifies one pulled event against the space's state. The outer error refuses the
/// event entirely (not authentic, or not admissible here); the inner one refuses only its
/// content (authentic and in sequence, but undecryptable or carrying forged authorship).
type Verified = (Event, Result<Vec<Change>, ContentRefusal>);

/// Why the content of an authentic event was refused.
struct ContentRefusal {
    reason: String,
    /// The parser did not finish in time (it costs seconds; a sync stops after a few).
    stalled: bool,
}

impl From<String> for ContentRefusal {
    fn from(reason: String) -> Self {
        ContentRefusal {
            reason,
            stalled: false,
        }
    }
}

/// Why a served event is not taken now.
enum Rejection {
    /// Authentic, but an earlier event of its author is missing: keep it until then.
    Wait,
    /// Not acceptable, with the reason.
    Refuse(String),
    /// Authentic and in sequence, but sealed under a key epoch this device lacks.
    NoKey(u32),
}

fn verify_event(
    state: &SpaceState,
    rec: &SpaceRecord,
    keys: &BTreeMap<u32, crate::crypto::SpaceKey>,
    bytes: Vec<u8>,
) -> Result<Verified, Rejection> {
    let ev = Event::decode(bytes).map_err(|e| Rejection::Refuse(e.to_string()))?;
    if ev.header().space != rec.id {
        return Err(Rejection::Refuse("event belongs to another space".into()));
    }
    match state.check(&ev, None) {
        Ok(_) => {}
        // An earlier event of the author, the genesis, the invite a join uses, or the
        // join of a device never seen yet may still arrive: wait for it.
        Err(AdmitError::Gap { .. } | AdmitError::NoSuchSpace | AdmitError::UnknownInvite) => {
            return Err(Rejection::Wait);
        }
        Err(AdmitError::NotMember)
            if !state.all_devices().contains_key(&ev.header().author)
                && !state.is_removed(&ev.header().author) =>
        {
            return Err(Rejection::Wait);
        }
        // Sealed under a key epoch whose rotation event has not been served here yet.
        Err(AdmitError::FutureEpoch { got, .. }) => return Err(Rejection::NoKey(got)),
        Err(AdmitError::Fork(seq)) => {
            return Err(Rejection::Refuse(format!(
                "equivocation: device {} signed two different events with seq {seq}; the first one is kept",
                &hex::encode(ev.header().author)[..12]
            )));
        }
        Err(e) => return Err(Rejection::Refuse(e.to_string())),
    }
    if ev.kind() != Kind::Changes {
        return Ok((ev, Ok(Vec::new())));
    }
    let epoch = ev.epoch().unwrap_or(0);
    let key = keys.get(&epoch).ok_or(Rejection::NoKey(epoch))?;
    let content = open_changes(&ev, key);
    Ok((ev, content))
}

fn open_changes(ev: &Event, key: &crate::crypto::SpaceKey) -> Result<Vec<Change>, ContentRefusal> {
    let plain = ev.open(key).map_err(|e| e.to_string())?;
    let changes = decode_changes(&plain).map_err(|e| ContentRefusal {
        stalled: matches!(e, PayloadError::Stalled(_)),
        reason: e.to_string(),
    })?;
    let actor = actor_for(&ev.header().author);
    if let Some(bad) = changes.iter().find(|c| c.actor_id() != &actor) {
        return Err(format!(
            "it carries a change by actor {} that is not its signer's (forged authorship)",
            bad.actor_id()
        )
        .into());
    }
    Ok(changes)
}
