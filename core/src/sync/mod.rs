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
//!
//! Here are the entry point and the public types; `push` sends this device's events,
//! `pull` reads pages, `verify` checks one event and `process` files it, `package`
//! turns local changes into events, `local` is the store's state a sync works on, and
//! `summary` says what arrived, what waits and what the relay did.

mod give_back;
mod leave_check;
mod local;
mod package;
mod page_run;
mod process;
mod pull;
pub(crate) mod push;
mod set_aside;
mod stop;
mod summary;
mod verify;

use crate::advice::{Advice, NextStep, Warning};
use std::collections::BTreeMap;

use crate::doc::SpaceDoc;
use crate::event::SpaceId;
use crate::identity::Identity;
use crate::membership::SpaceState;
use crate::protocol::{ErrorBody, ErrorCode, PushResponse};
use crate::store::{SpaceRecord, Store, StoreError};
use local::Local;
use package::package_and_push;
pub(crate) use package::package_local;
use pull::Pull;
use push::push_unacked;
pub use summary::{Arrivals, MembershipAct, MembershipNews, PUSH_REFUSED};

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
    #[error("cannot reach the relay at {relay}: {detail}")]
    Unreachable {
        /// URL.
        relay: String,
        /// What the network layer said.
        detail: String,
    },
    /// The relay's host name did not resolve: no name server knows it (a wrong address),
    /// or, `for_now`, none answered (a device offline: it passes as it is).
    #[error(
        "cannot resolve {host}{}",
        if *.for_now { " (no name server answered: is this device offline?)" } else { "" }
    )]
    Unresolved {
        /// The host name.
        host: String,
        /// The resolver's failure was a temporary one (`EAI_AGAIN`).
        for_now: bool,
    },
    /// Nothing listens at the relay's address.
    #[error("cannot reach the relay: connection refused at {host}:{port}")]
    ConnectionRefused {
        /// The host.
        host: String,
        /// The port.
        port: u16,
    },
    /// The URL says https but the relay answered in plain HTTP.
    #[error("the relay at {relay} speaks plain HTTP but the URL says https")]
    PlainHttp {
        /// URL.
        relay: String,
    },
    /// The URL says http but the relay answered like a TLS (https) server.
    #[error("the relay at {relay} speaks TLS (https) but the URL says http")]
    ExpectsTls {
        /// URL.
        relay: String,
    },
    /// The relay was reached, but its answer stopped partway (a connection cut or
    /// stalled on the way back): nothing is lost, the next sync reads it again.
    #[error("the relay at {relay} stopped answering partway (the connection was cut or stalled)")]
    CutOff {
        /// URL.
        relay: String,
    },
    /// No answer in time.
    #[error("the relay at {relay} did not answer: timed out after {secs} s")]
    TimedOut {
        /// URL.
        relay: String,
        /// The time waited.
        secs: u64,
    },
    /// The relay answered with an error.
    #[error("the relay refused ({status} {}): {}", body.error, refused_words(body))]
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
         unread (a misbehaving relay or a proxy in the way)"
    )]
    TooLarge {
        /// URL.
        relay: String,
        /// The most this client reads of one answer.
        limit: usize,
    },
}

/// What a refusal says: Duet's words where the relay's own speak of its internals, else
/// the relay's message, cut to a line (a relay's text is not Duet's to repeat at length).
fn refused_words(body: &ErrorBody) -> String {
    match body.error {
        ErrorCode::NoSuchSpace => "this relay does not hold the space (it was never created \
             there, the relay lost its database, or this device points at another relay than \
             its partner's)"
            .to_string(),
        // The client's own words for an answer that was not a relay's (a redirect, a
        // proxy's page): whole, with the address they name (a relay's own cut at 400).
        ErrorCode::HttpError => crate::protocol::one_line(&body.message, 600, ' '),
        _ => crate::protocol::clipped_line(&body.message, 400),
    }
}

impl Advice for TransportError {
    fn next_step(&self) -> Option<NextStep> {
        match self {
            TransportError::Unreachable { .. }
            | TransportError::ConnectionRefused { .. }
            | TransportError::Unresolved { for_now: true, .. }
            | TransportError::TimedOut { .. } => Some(NextStep::CheckRelayThenSync),
            TransportError::CutOff { .. } => Some(NextStep::SyncAgain),
            TransportError::Unresolved { .. }
            | TransportError::PlainHttp { .. }
            | TransportError::ExpectsTls { .. } => Some(NextStep::CheckRelayUrl),
            TransportError::TooLarge { .. } => Some(NextStep::CheckRelayUrl),
            TransportError::Refused { status: 403, body } if body.error.wants_a_token() => {
                Some(NextStep::CreationToken { relay: None })
            }
            TransportError::Refused { body, .. } if body.error == ErrorCode::NoSuchSpace => {
                Some(NextStep::RelayLostSpace)
            }
            TransportError::Refused { .. } | TransportError::BadResponse(_) => None,
        }
    }
}

impl Advice for SyncError {
    fn next_step(&self) -> Option<NextStep> {
        match self {
            SyncError::NoRelay => Some(NextStep::SetRelay),
            SyncError::Transport(e) => e.next_step(),
            SyncError::Store(e) => e.next_step(),
            _ => None,
        }
    }
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
    /// What the relay stores at the cursor the page starts after.
    pub at_after: AtAfter,
}

/// What a relay says it stores at the cursor a page starts after
/// ([`crate::protocol::H_AFTER_HASH`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AtAfter {
    /// Nothing said (a page from the start, or a relay that does not tell).
    #[default]
    Unsaid,
    /// No event is stored there.
    Nothing,
    /// The hash of the event stored there.
    Event([u8; 32]),
}

impl AtAfter {
    /// Reads the header's value: a hex hash, or `-`; anything else says nothing.
    pub fn parse(value: &str) -> AtAfter {
        if value == "-" {
            return AtAfter::Nothing;
        }
        hex::decode(value)
            .ok()
            .and_then(|h| <[u8; 32]>::try_from(h).ok())
            .map_or(AtAfter::Unsaid, AtAfter::Event)
    }
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
    /// How far the relay's clock was ahead of this device's system clock (ms, negative:
    /// behind) at its latest answer, when an answer said (its `Date`); None when none did.
    fn relay_ahead_ms(&self) -> Option<i64> {
        None
    }
}

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// No relay configured.
    #[error("no relay is set for this space")]
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
    /// Another copy of this device (restored from a backup, or a copied home) sent
    /// changes numbered as this copy numbered its own. A sync sets this copy's unsent
    /// changes aside and makes them again after those; this says it could not.
    #[error(
        "another copy of this device (restored from a backup, or a copy of its home) sent changes numbered as this copy's own{}",
        if *.unsent { "" } else { ", and this copy has none unsent to make again: its log cannot take them; use the other copy, or restore the backup again into a new home" }
    )]
    AnotherCopy {
        /// Whether this copy had unsent changes when it found out.
        unsent: bool,
    },
    /// Making this copy's set-aside changes again failed.
    #[error("cannot make this device's unsent changes again after another copy's: {0}")]
    Remake(#[from] crate::repair::RepairError),
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
    /// Who joined, left, or added or removed a device, in the order it happened (by
    /// person id until the end of the sync names them).
    pub membership: Vec<MembershipNews>,
    /// Events refused, with reasons.
    pub warnings: Vec<Warning>,
    /// The cursor after the pull.
    pub cursor: u64,
    /// Why the relay refused this device's own events (kept, and offered again later).
    pub push_refused: Option<Warning>,
    /// The relay lost events this device had received (it serves less, or serves other
    /// events where this device read some: restored from an older backup).
    pub rollback: bool,
    /// Events this device gave back to a relay that had lost them, and the relay took.
    pub given_back: usize,
    /// The give-back marked own events unsent: a read folds its membership anew.
    #[serde(skip)]
    pub(crate) own_unsent_on_give_back: bool,
    /// Unsent changes of this device made again after another copy of the device had
    /// sent changes with their numbers (see [`crate::store::Store::set_aside_unsent`]).
    pub remade: usize,
    /// Authentic events waiting for an earlier event of their author.
    pub waiting: usize,
    /// Fork (equivocation) attempts the relay reports for this space.
    pub forks: u64,
    /// Events waiting from devices this device saw removed (or gone) before the relay
    /// took them: the relay no longer has the removal ([`summary`]'s warning says so).
    #[serde(default)]
    pub from_departed: usize,
    /// The sync stopped reading before the relay's end (too many pages, contents that
    /// stalled the parser, too many waiting events, or a relay serving nothing new):
    /// the warnings say why; the next sync reads on.
    pub incomplete: bool,
    /// The relay served, at this cursor, something that is not an authentic event of
    /// the space where one was due: the read went on, and the next reads there again.
    #[serde(default)]
    pub not_authentic: Option<u64>,
    /// The space's document is there but does not list this person yet (a freshly
    /// joined space): the caller adds the name.
    #[serde(skip)]
    pub unnamed: bool,
    /// This device is no longer a member of the space: who ended it and when. Its sync
    /// stops there; what it holds stays readable.
    pub departed: Option<crate::store::Departed>,
    /// This sync learnt of that departure (a later sync only finds it recorded).
    #[serde(default)]
    pub departed_now: bool,
    /// Changes made on this device that never reached the space before it departed:
    /// they stay readable here (and in an export), and are never sent.
    #[serde(default)]
    pub stranded: u64,
    /// Membership changes of this device withdrawn after a conflict, to redo if the
    /// membership as it then stands still needs them.
    #[serde(skip)]
    pub redo: Vec<Redo>,
    /// Local changes were left unpackaged because a removal of this device's must be
    /// redone first: packaged now, they would go out under the key the removed device
    /// holds. The sync after the redo sends them.
    #[serde(skip)]
    pub held_for_redo: bool,
    /// This device's unsent events were withdrawn after the relay refused them (their
    /// changes wait to be packaged again): nothing of them was sent.
    #[serde(skip)]
    pub withdrawn: bool,
    /// This device's events that the relay's last answer in this sync did not
    /// acknowledge as stored (no cursor, another hash, a cursor below what was read):
    /// they stay here and go with the next sync. Counted from the answers, not from the
    /// store, where another process's sync may be sending events at the same time.
    #[serde(default)]
    pub unsent: usize,
    /// The cursor at which the relay acknowledged one of this device's events that this
    /// device had read past without finding it there (the lowest, when several): the
    /// relay, or an earlier read of it, was not truthful; what the caller does about it.
    #[serde(skip)]
    pub(crate) acked_behind: Option<u64>,
    /// The key epoch the space is at when this device holds no key for it: it joined
    /// with a code made before a removal (no key is ever given to a device after it
    /// joins), or the relay withholds the event that carries its key. Nothing written
    /// since can be read here, and local changes wait.
    pub missing_key: Option<u32>,
    /// This sync started a new key epoch because a partner left knowing the old key:
    /// the caller withdraws the codes made before it (they carry only the old keys).
    #[serde(skip)]
    pub rotated: bool,
}

impl SyncReport {
    /// Folds in what a follow-up sync of the same space did (one that sends what the
    /// first left to send): its pushes, its warnings and the cursor it reached.
    pub(crate) fn absorb(&mut self, more: SyncReport) {
        self.pushed_events += more.pushed_events;
        self.pushed_changes += more.pushed_changes;
        self.warnings.extend(more.warnings);
        self.cursor = more.cursor;
    }
}

pub use crate::store::Redo;

/// Rebuilds a space's verified state from the events stored on this device.
pub fn fold_state(store: &Store, space: &SpaceId) -> Result<SpaceState, StoreError> {
    Ok(SpaceState::fold(&store.stored_events(space)?))
}

/// A space's document as of a mark (the space's newest change row): what a process
/// keeps between syncs and writes.
pub type KeptDoc = (i64, SpaceDoc);

/// Syncs one space with its relay, starting from `kept` when nothing of the space was
/// stored since its mark (no load of the history); gives back the document as the sync
/// leaves it, with its mark (none when this device has left the space).
pub fn sync_space(
    store: &mut Store,
    me: &Identity,
    rec: &SpaceRecord,
    transport: &dyn Transport,
    kept: Option<KeptDoc>,
) -> Result<(SyncReport, Option<KeptDoc>), SyncError> {
    match sync_once(store, me, rec, transport, kept) {
        // Another copy of this device took the numbers of this copy's unsent changes:
        // set them aside, take that copy's, and make them again after (in the same
        // sync, before packaging); once only.
        Err(SyncError::AnotherCopy { .. }) => {
            if store.set_aside_unsent(&rec.id)? == 0 {
                return Err(SyncError::AnotherCopy { unsent: false });
            }
            sync_once(store, me, rec, transport, None)
        }
        other => other,
    }
}

/// One sync of a space (see [`sync_space`]).
fn sync_once(
    store: &mut Store,
    me: &Identity,
    rec: &SpaceRecord,
    transport: &dyn Transport,
    kept: Option<KeptDoc>,
) -> Result<(SyncReport, Option<KeptDoc>), SyncError> {
    let relay = rec.relay.clone().ok_or(SyncError::NoRelay)?;
    let mut report = SyncReport::default();
    // A device no longer in the space only sends what it signed while it was (a leave
    // itself, say): the relay would refuse anything new, and serves nothing after.
    let departed = store.departed(&rec.id)?;
    let mut push_refusal = match &departed {
        Some(d) => {
            let mut refusal = push_unacked(store, rec, &relay, transport, &mut report)?;
            push::warn_acked_behind(&mut report);
            if d.left && refusal.is_none() {
                let relay = (relay.as_str(), transport);
                refusal = leave_check::give_back_lost_leave(store, rec, me, relay, &mut report)?;
            }
            // Unless its leave was withdrawn because another copy of this device (restored
            // from a backup) sent events of its own first: the relay still counts it a
            // member, so it reads what the copy sent (packaging nothing of its own), and
            // the leave is signed again after the copy's events (`Redo::Leave`).
            if !(d.left && report.redo.contains(&Redo::Leave)) {
                excuse_refusal(&refusal, &mut report);
                report.departed = Some(d.clone());
                report.stranded = u64::try_from(store.pending_count(&rec.id)?).unwrap_or(0);
                return Ok((report, None));
            }
            refusal
        }
        // 1. Push what is already packaged but not acknowledged (a join first of all); a
        // relay that lost one of them is given back what it took, and read from the start.
        None => give_back::push_or_give_back(store, rec, &relay, transport, &mut report)?,
    };
    let reread;
    let rec = if report.rollback {
        reread = store.space(rec.kind)?;
        &reread
    } else {
        rec
    };

    // 2. Pull and verify everything after the cursor, a page at a time.
    let mut local = {
        let _lock = store.write_lock()?;
        let start = pull::start_cursor(store, rec)?;
        Local::load(store, rec, kept, Some(start))?
    };
    let mut pull = Pull::new(rec, me, local.keys.clone(), &mut report);
    let cursor = pull.read_all(store, &mut local, &relay, transport, &mut push_refusal)?;
    local.read_done();
    pull.warn_queued();

    // 3. Package local changes under the newest key epoch this device knows (after the
    // pull, so edits made offline during a removal go out under the new key), then push;
    // first, make again what was set aside for another copy of this device.
    set_aside::take_back(store, &mut local, &mut pull)?;
    let removal_to_redo = pull
        .report
        .redo
        .iter()
        .any(|r| matches!(r, Redo::Removal { .. }));
    if local.state.departure(&me.device_key()).is_some() || departed.is_some() {
        excuse_refusal(&push_refusal, pull.report);
    } else if removal_to_redo {
        pull.report.held_for_redo = true;
    } else if push_refusal.is_none() {
        package_and_push(store, &mut local, &mut pull, &relay, transport)?;
    }
    summary::report_waiting(&store.held(&rec.id)?, &local.state, pull.report);
    let arrivals = std::mem::take(&mut pull.arrivals);
    report.cursor = cursor;
    let mark = finish(store, me, rec, &mut local, arrivals, &mut report)?;
    if report.departed.is_none() {
        report.departed = departed;
    }
    Ok((report, local.into_doc().map(|doc| (mark, doc))))
}

/// A push refused because this device is no longer a member is no failure once the
/// device knows it departed: the departure says why, and what it had not sent stays here
/// (counted as stranded).
fn excuse_refusal(refusal: &Option<TransportError>, report: &mut SyncReport) {
    if let Some(TransportError::Refused { status, body }) = refusal
        && push::is_not_a_member(*status, body)
    {
        report.push_refused = None;
    }
}

/// The last step of a sync, under the home's write lock: names who sent what, records
/// the relay's misbehaviour as the space's alert, and builds the read models of a space
/// just joined. Returns the space's newest change row, which the document (if the sync
/// loaded one) is now at. Without a document, the read models (current, as nothing
/// arrived) say who is in the space.
fn finish(
    store: &mut Store,
    me: &Identity,
    rec: &SpaceRecord,
    local: &mut Local,
    arrivals: BTreeMap<String, Arrivals>,
    report: &mut SyncReport,
) -> Result<i64, SyncError> {
    let _lock = store.write_lock()?;
    local.refresh(store, rec)?;
    let mark = store.newest_change_row(&rec.id)?;
    // Names can only be resolved once the people map has arrived (it may come in the
    // same pull), so arrivals are keyed by person id until here.
    let named = match local.loaded() {
        None => store.named_in_view(&rec.id, &me.person_id)?,
        Some(_) => None, // the document in hand says
    };
    let people = match named {
        // Nothing arrived (no document needed) and this person is in the current read
        // models: no one to name, nothing to add.
        Some(people) => people,
        None => {
            let (_, doc) = local.with_doc(store, me, rec)?;
            let people = doc.people()?;
            report.unnamed = doc.is_initialised() && !people.contains_key(me.person_id.as_str());
            // A space just joined has no read models yet: build them once, from the
            // document in hand, rather than entity by entity while its history arrives.
            store.ensure_view(&rec.id, doc)?;
            people
        }
    };
    report.arrivals = summary::named(arrivals, &people);
    summary::name_news(&mut report.membership, &people);
    let previous = store.alert(&rec.id)?;
    let alert = summary::relay_alert(report, previous.as_deref());
    store.set_alert(&rec.id, alert.as_deref())?;
    if let Some(d) = local.state.departure(&me.device_key()) {
        let person = local
            .state
            .all_devices()
            .get(&d.by)
            .map(|m| hex::encode(m.person));
        let departed = crate::store::Departed {
            space: rec.kind.as_str().to_string(),
            by: person
                .and_then(|p| people.get(&p).map(|p| p.name.clone()))
                .unwrap_or_else(|| "a member".into()),
            left: d.left,
            device: hex::encode(d.by),
            at: d.at,
        };
        store.set_departed(&rec.id, &departed)?;
        report.departed = Some(departed);
        report.departed_now = true;
        report.stranded = u64::try_from(store.pending_count(&rec.id)?).unwrap_or(0);
    }
    Ok(mark)
}
