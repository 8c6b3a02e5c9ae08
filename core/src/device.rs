//! This device: its identity, its store and its spaces, and the few workflows that span
//! them (init, join, edit, invite, sync). Front ends (the CLI) call these.

use std::path::Path;
use std::sync::Arc;

use automerge::Change;

use crate::clock::Clock;
use crate::crypto::SpaceKey;
use crate::doc::{DocError, SpaceDoc};
use crate::event::{Event, Header, Kind, MembershipOp, SpaceId};
use crate::identity::{Identity, keypair_from_seed};
use crate::ids::random_bytes;
use crate::invite::{DeviceCode, InviteCode, SpaceGrant};
use crate::readmodel::{Parts, View};
use crate::store::{Begun, JoinedSpace, OpenStats, SpaceKind, SpaceRecord, Store, StoreError};
use crate::sync::SyncError;

mod clock_check;
pub use clock_check::{CLOCK_TOLERANCE_MS, clock_disagrees};
mod errors;
mod join_refused;
pub use errors::DeviceError;
mod new_entities;
mod start_over;
pub use start_over::{SET_ASIDE_PREFIX, StartOver, Unsent, set_aside_in};
mod syncing;

/// An opened device.
#[derive(Debug)]
pub struct Device {
    /// The local store: private to core, reached through the application layer
    /// ([`crate::app`]).
    pub(crate) store: Store,
    /// This device's identity.
    pub me: Identity,
    /// Where "now" comes from.
    clock: Clock,
    /// Documents kept between writes in a long-running process.
    docs: crate::doc_cache::DocCache,
    /// Whole views kept between reads in a long-running process that asks for it.
    views: crate::view_cache::ViewCache,
    /// What the syncs made inside the last operation that makes a code read, for its
    /// caller to say ([`Device::take_news`]): a partner's removal of one's device read
    /// there was said nowhere, and the next sync was "Up to date". Each such operation
    /// starts it anew, so a process that never takes it (`duet app`) keeps one's worth.
    pub(crate) news: Vec<(crate::store::SpaceKind, crate::sync::SyncReport)>,
}

fn genesis(me: &Identity, space: SpaceId, personal: bool, now: i64) -> Event {
    let op = MembershipOp::Genesis {
        person: me.person(),
        personal,
        x25519: crate::keywrap::x25519_public(me),
    };
    Event::membership(
        Header {
            kind: Kind::Genesis,
            space,
            author: me.device_key(),
            seq: 1,
            prev: [0; 32],
            time: now,
        },
        &op,
        me,
    )
}

/// Refuses to set up a new device in `home` beside the folder a restore stopped
/// half-way left there (it holds that device's keys): running the restore again brings
/// that device back, or the folder is deleted first.
pub fn ensure_no_stopped_restore(home: &Path) -> Result<(), DeviceError> {
    match crate::store::stopped_restore(home) {
        Some(folder) => Err(DeviceError::RestoreStopped(home.to_path_buf(), folder)),
        None => Ok(()),
    }
}

/// A name a person may be shown by, checked before anything is made: an empty or
/// invisible name, or one past the limit, refused with nothing written to the home.
fn check_name(name: &str) -> Result<(), DeviceError> {
    if name.trim().is_empty() {
        return Err(DeviceError::EmptyName);
    }
    if crate::doc::blank(name) {
        return Err(crate::doc::DocError::Empty("name").into());
    }
    crate::model::Person {
        name: name.trim().to_string(),
    }
    .validate()
    .map_err(|e| DeviceError::from(crate::doc::DocError::from(e)))
}

fn new_space(
    me: &Identity,
    kind: SpaceKind,
    relay: Option<&str>,
    now: i64,
) -> Result<(SpaceRecord, Vec<Event>, Vec<Change>), DocError> {
    let id = SpaceId::generate();
    let (mut doc, first) = SpaceDoc::create(me.actor(), now)?;
    let mut changes = vec![first];
    changes.extend(doc.set_person(&me.person_id, &me.name, now)?);
    let rec = SpaceRecord {
        id,
        kind,
        key: SpaceKey::generate(),
        relay: relay.map(str::to_string),
        cursor: 0,
    };
    Ok((
        rec,
        vec![genesis(me, id, kind == SpaceKind::Personal, now)],
        changes,
    ))
}

fn join_event(me: &Identity, space: SpaceId, secret: [u8; 32], now: i64) -> Event {
    let person = me.person();
    let (invite_key, invite_pub) = keypair_from_seed(secret);
    let msg = MembershipOp::join_message(&space, &me.device_key(), &person);
    let invite_sig = {
        use ed25519_dalek::Signer;
        invite_key.sign(&msg).to_bytes()
    };
    Event::membership(
        Header {
            kind: Kind::Join,
            space,
            author: me.device_key(),
            seq: 1,
            prev: [0; 32],
            time: now,
        },
        &MembershipOp::Join {
            invite_key: invite_pub,
            person,
            x25519: crate::keywrap::x25519_public(me),
            invite_sig,
        },
        me,
    )
}

impl Device {
    /// Creates this device's identity, its shared space and its personal space.
    pub fn init(home: &Path, name: &str, relay: Option<&str>) -> Result<Device, DeviceError> {
        Device::init_with(home, name, relay, Clock::System)
    }

    /// [`Device::init`] on a given clock.
    pub fn init_with(
        home: &Path,
        name: &str,
        relay: Option<&str>,
        clock: Clock,
    ) -> Result<Device, DeviceError> {
        Device::init_with_token(home, name, relay, None, clock)
    }

    /// [`Device::init_with`], keeping the relay operator's creation token with the new
    /// spaces in the same transaction (a process killed halfway keeps both or neither).
    pub fn init_with_token(
        home: &Path,
        name: &str,
        relay: Option<&str>,
        create_token: Option<&str>,
        clock: Clock,
    ) -> Result<Device, DeviceError> {
        check_name(name)?;
        ensure_no_stopped_restore(home)?;
        let mut store = Store::open(home, true)?;
        store.set_clock(clock);
        let _lock = store.write_lock()?;
        if let Some(existing) = store.identity()? {
            return Err(StoreError::AlreadyInitialised(existing.name).into());
        }
        let me = Identity::generate(name.trim());
        let now = clock.now();
        let shared = new_space(&me, SpaceKind::Shared, relay, now)?;
        let personal = new_space(&me, SpaceKind::Personal, relay, now)?;
        let begun = Begun {
            joined: Vec::new(),
            create_token: create_token.map(str::to_string),
        };
        store.initialise_all(&me, &[shared, personal], &begun)?;
        Ok(Device::assemble(store, me, clock))
    }

    /// A device over an opened store, with nothing kept in memory yet.
    fn assemble(store: Store, me: Identity, clock: Clock) -> Device {
        Device {
            store,
            me,
            clock,
            docs: Default::default(),
            views: Default::default(),
            news: Vec::new(),
        }
    }

    /// What the syncs made inside the last operations read (see [`Device::news`]'s
    /// field), taken once.
    pub fn take_news(&mut self) -> Vec<(crate::store::SpaceKind, crate::sync::SyncReport)> {
        std::mem::take(&mut self.news)
    }

    /// Creates this device's identity and personal space, and prepares the join of the
    /// partner's shared space from an invite code. The join completes on the next sync.
    pub fn join(home: &Path, code: &InviteCode, name: &str) -> Result<Device, DeviceError> {
        Device::join_with(home, code, name, Clock::System)
    }

    /// [`Device::join`] on a given clock.
    pub fn join_with(
        home: &Path,
        code: &InviteCode,
        name: &str,
        clock: Clock,
    ) -> Result<Device, DeviceError> {
        check_name(name)?;
        let now = clock.now();
        if code.expires_at < now {
            return Err(DeviceError::InviteExpired(
                now.saturating_sub(code.expires_at),
            ));
        }
        let mut store = Store::open(home, true)?;
        store.set_clock(clock);
        let _lock = store.write_lock()?;
        if let Some(existing) = store.identity()? {
            return Err(StoreError::AlreadyInitialised(existing.name).into());
        }
        let me = Identity::generate(name.trim());
        let now = clock.now();
        let personal = new_space(&me, SpaceKind::Personal, Some(&code.relay), now)?;
        let shared = JoinedSpace {
            rec: SpaceRecord {
                id: code.space,
                kind: SpaceKind::Shared,
                key: code.key.clone(),
                relay: Some(code.relay.clone()),
                cursor: 0,
            },
            join: join_event(&me, code.space, code.secret, now),
            later_keys: code.later_keys.clone(),
        };
        let begun = Begun {
            joined: vec![shared],
            create_token: None,
        };
        store.initialise_all(&me, &[personal], &begun)?;
        Ok(Device::assemble(store, me, clock))
    }

    /// Prepares a new device of an existing person from a `duet device add` code: the
    /// same person id and name, a new device key, and joins of both the shared and the
    /// personal space. The joins complete on the next sync.
    pub fn join_own(home: &Path, code: &DeviceCode) -> Result<Device, DeviceError> {
        Device::join_own_with(home, code, Clock::System)
    }

    /// [`Device::join_own`] on a given clock.
    pub fn join_own_with(
        home: &Path,
        code: &DeviceCode,
        clock: Clock,
    ) -> Result<Device, DeviceError> {
        let now = clock.now();
        if code.expires_at < now {
            return Err(DeviceError::DeviceCodeExpired(
                now.saturating_sub(code.expires_at),
            ));
        }
        let mut store = Store::open(home, true)?;
        store.set_clock(clock);
        let _lock = store.write_lock()?;
        if let Some(existing) = store.identity()? {
            return Err(StoreError::AlreadyInitialised(existing.name).into());
        }
        let fresh = Identity::generate(&code.name);
        let me = Identity::from_parts(
            fresh.secret_bytes(),
            hex::encode(code.person),
            code.name.clone(),
        )
        .map_err(|e| StoreError::Damaged(e.to_string()))?;
        let now = clock.now();
        let joined = [
            (&code.shared, SpaceKind::Shared),
            (&code.personal, SpaceKind::Personal),
        ]
        .into_iter()
        .map(|(grant, kind)| JoinedSpace {
            rec: SpaceRecord {
                id: grant.space,
                kind,
                key: grant.key.clone(),
                relay: Some(code.relay.clone()),
                cursor: 0,
            },
            join: join_event(&me, grant.space, grant.secret, now),
            later_keys: grant.later_keys.clone(),
        })
        .collect();
        let begun = Begun {
            joined,
            create_token: None,
        };
        // Identity, spaces, joins and keys in one transaction: a process killed halfway
        // leaves an empty home that a second join may use.
        store.initialise_all(&me, &[], &begun)?;
        Ok(Device::assemble(store, me, clock))
    }

    /// Says what to do when a write waits for another `duet` process on this home
    /// (called once per wait, after about a second).
    pub fn on_wait(&self, notice: crate::lock::WaitNotice) {
        self.store.home_lock().on_wait(notice);
    }

    /// Drops every event waiting for an earlier one in every space (a relay that floods
    /// them stops the sync at the cap until they are dropped); returns how many.
    pub fn drop_waiting(&mut self) -> Result<usize, DeviceError> {
        let mut n = 0;
        for rec in self.store.spaces()? {
            n += self.store.drop_held(&rec.id)?;
        }
        Ok(n)
    }

    /// Marks every space's read models stale, so that the next read rebuilds them from
    /// the document: after a row of them did not read (a damaged byte), since they hold
    /// nothing the document does not.
    pub fn forget_read_models(&mut self) -> Result<(), DeviceError> {
        Ok(self.store.forget_read_models()?)
    }

    /// What opening this device's store repaired, if anything (told to the user once).
    pub fn repairs(&self) -> &[String] {
        self.store.repairs()
    }

    /// Opens an initialised device.
    pub fn open(home: &Path) -> Result<Device, DeviceError> {
        Device::open_with(home, Clock::System)
    }

    /// [`Device::open`] on a given clock.
    pub fn open_with(home: &Path, clock: Clock) -> Result<Device, DeviceError> {
        let mut store = Store::open(home, false)?;
        store.set_clock(clock);
        let me = store.require_identity()?;
        Ok(Device::assemble(store, me, clock))
    }

    /// The store, for tests that craft what no front end can.
    #[cfg(feature = "test-util")]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The store, writable, for tests that craft what no front end can.
    #[cfg(feature = "test-util")]
    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    /// Whether this device was read from a copy in memory (its home could not be written
    /// when it was opened: a full disk, a read-only mount), so that every write is
    /// refused. A process that holds it (`sync --watch`, `duet app`) opens it again once
    /// the home can be written: the copy never learns that it can.
    pub fn is_read_only_copy(&self) -> bool {
        self.store.is_read_only()
    }

    /// Opened while its home could not be written (see [`Device::is_read_only_copy`]),
    /// this device is opened again from its home if that takes writes now; returns
    /// whether it was. Cheap while it still cannot (nothing is copied), so a process
    /// may ask before every page or sync. Keeps how writers wait and whether views are
    /// kept; the documents are read anew.
    pub fn reopen_if_writable(&mut self) -> Result<bool, DeviceError> {
        if !self.store.is_read_only() {
            return Ok(false);
        }
        let Some(mut store) = Store::open_if_writable(&self.store.home())? else {
            return Ok(false);
        };
        store.set_clock(self.clock);
        store.home_lock().keep_settings_of(self.store.home_lock());
        let me = store.require_identity()?;
        let mut opened = Device::assemble(store, me, self.clock);
        opened.views.on = self.views.on;
        opened.news = std::mem::take(&mut self.news);
        *self = opened;
        Ok(true)
    }

    /// Now, on this device's clock (ms since the Unix epoch).
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// A space's record.
    pub fn space(&self, kind: SpaceKind) -> Result<SpaceRecord, DeviceError> {
        Ok(self.store.space(kind)?)
    }

    /// Loads a space's document.
    pub fn load(&self, kind: SpaceKind) -> Result<(SpaceRecord, SpaceDoc, OpenStats), DeviceError> {
        let rec = self.store.space(kind)?;
        let (doc, stats) = self.store.load_doc(&rec.id, &self.me)?;
        Ok((rec, doc, stats))
    }

    /// The typed content of a space as reading commands show it, from the read models
    /// (no document load): corrections applied, withdrawn ratings and reflections left out.
    pub fn view(&mut self, kind: SpaceKind) -> Result<View, DeviceError> {
        let mut view = self.view_parts(kind, Parts::All)?;
        self.open_own_seals(&mut view)?;
        Ok(crate::rituals::effective(view))
    }

    /// [`Device::view`], shared: a process that keeps views (`duet app`) gives the same
    /// one to every page while the tables are as they were, instead of a copy of every
    /// rating for each.
    pub fn shown_view(&mut self, kind: SpaceKind) -> Result<Arc<View>, DeviceError> {
        if !self.views.on {
            return Ok(Arc::new(self.view(kind)?));
        }
        let rec = self.store.space(kind)?;
        // Read before the view: a change stored in between makes the next read miss.
        let key = self.store.view_state(&rec.id, &self.me)?;
        if let Some(view) = self.views.shown(&rec.id, &key) {
            return Ok(view);
        }
        let view = Arc::new(self.view(kind)?);
        self.views.keep_shown(rec.id, key, &view);
        Ok(view)
    }

    /// Everything of a space as written: every rating, correction, withdrawal and seal
    /// (what the rituals decide from).
    pub fn raw_view(&mut self, kind: SpaceKind) -> Result<View, DeviceError> {
        self.view_parts(kind, Parts::All)
    }

    /// What the blind rules need when this person rates or reveals (see
    /// [`crate::store::Store::ritual_view`]); with `amend_goal`, also this person's ratings of it.
    pub(crate) fn ritual_view(&mut self, amend_goal: Option<&str>) -> Result<View, DeviceError> {
        let rec = self.store.space(SpaceKind::Shared)?;
        let me = self.me.person_id.to_string();
        let own = amend_goal.map(|g| (g, me.as_str()));
        Ok(self.store.ritual_view(&rec.id, &self.me, own)?)
    }

    /// Some of the typed content of a space, from the read models (or, in a process
    /// that keeps views, from the whole view it read while the tables were as now).
    pub fn view_parts(&mut self, kind: SpaceKind, parts: Parts) -> Result<View, DeviceError> {
        let rec = self.store.space(kind)?;
        if !self.views.on || parts != Parts::All {
            return Ok(self.store.view(&rec.id, &self.me, parts)?);
        }
        let key = self.store.view_state(&rec.id, &self.me)?;
        if let Some(view) = self.views.get(&rec.id, &key) {
            return Ok(view);
        }
        let view = self.store.view(&rec.id, &self.me, parts)?;
        self.views.keep(rec.id, key, &view);
        Ok(view)
    }

    /// Keeps whole views between reads from now on (a long-running process that shows
    /// them again and again, such as `duet app`).
    pub fn keep_views(&mut self) {
        self.views.on = true;
    }

    /// Runs one or more document operations and stores their changes in one transaction.
    pub fn edit<T>(
        &mut self,
        kind: SpaceKind,
        f: impl FnOnce(&mut SpaceDoc, &Identity) -> Result<(T, Vec<Change>), DocError>,
    ) -> Result<T, DeviceError> {
        // From the load to the commit: another process's change in between would give
        // this one the same actor sequence number.
        let _lock = self.store.write_lock()?;
        let rec = self.store.space(kind)?;
        if let Some(d) = self.store.departed(&rec.id)? {
            return Err(DeviceError::Departed(d));
        }
        let mark = self.store.newest_change_row(&rec.id)?;
        let mut doc = match self.docs.take(&rec.id, mark) {
            Some(doc) => doc,
            None => self.store.load_doc(&rec.id, &self.me)?.0,
        };
        if !doc.is_initialised() {
            if self.store.join_unfinished(&rec.id, rec.cursor)? {
                return Err(self.unfinished_join(&rec)?);
            }
            return Err(DocError::Malformed("goals").into());
        }
        let (out, changes) = f(&mut doc, &self.me)?;
        self.store.commit_local(&rec.id, &changes, &doc)?;
        let mark = self.store.newest_change_row(&rec.id)?;
        self.docs.keep(rec.id, mark, doc);
        Ok(out)
    }

    /// Authorises a one-time invite to the shared space, valid for `ttl_ms`. The invite
    /// event is stored now and pushed by the next sync.
    pub fn invite(&mut self, ttl_ms: i64) -> Result<InviteCode, DeviceError> {
        let _lock = self.store.write_lock()?;
        let rec = self.store.space(SpaceKind::Shared)?;
        // A device whose join never read the space does not know who is in it (the
        // partner may be there already): its code would admit no one.
        if self.store.join_unfinished(&rec.id, rec.cursor)? {
            return Err(self.unfinished_join(&rec)?);
        }
        self.ensure_partner_slot()?;
        let relay = rec.relay.clone().ok_or(SyncError::NoRelay)?;
        let expires_at = self.clock.now().saturating_add(ttl_ms);
        let grant = self.invite_in(SpaceKind::Shared, expires_at, None)?;
        Ok(InviteCode {
            relay,
            space: grant.space,
            key: grant.key,
            later_keys: grant.later_keys,
            secret: grant.secret,
            expires_at,
        })
    }

    /// An invite in a space, admitting no one after `expires_at`: for a new person (the
    /// partner) when `for_person` is `None`, else a device code for this person.
    pub(crate) fn invite_in(
        &mut self,
        kind: SpaceKind,
        expires_at: i64,
        for_person: Option<[u8; 16]>,
    ) -> Result<SpaceGrant, DeviceError> {
        let _lock = self.store.write_lock()?;
        self.ensure_member(SpaceKind::Shared)?;
        let rec = self.store.space(kind)?;
        rec.relay.as_ref().ok_or(SyncError::NoRelay)?;
        let secret: [u8; 32] = random_bytes();
        let (_, invite_pub) = keypair_from_seed(secret);
        self.sign_own(
            kind,
            &MembershipOp::Invite {
                invite_key: invite_pub,
                expires_at,
                person: for_person,
            },
        )?;
        Ok(SpaceGrant {
            space: rec.id,
            key: rec.key.clone(),
            later_keys: self
                .store
                .epoch_keys(&rec.id)?
                .into_iter()
                .filter(|(e, _)| *e > 0)
                .map(|(_, k)| k)
                .collect(),
            secret,
        })
    }
}
