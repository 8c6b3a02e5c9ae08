//! Who may write and read a space, and each author's hash chain: the state machine that
//! the relay and every client fold over a space's events in the same order.
//!
//! Rules (docs/protocol.md has the full text):
//! - genesis must be the space's first event; its author becomes the first member;
//! - invite: a member authorises a one-time invite key until it expires, either for a
//!   new person (a partner invite) or, as a device code, for the inviter's own person;
//! - join: a non-member device, carrying the invite key's signature over the space, its
//!   own key and its person id, is admitted once; the invite is then spent. A partner
//!   invite admits only a person not yet in the space, and a shared space holds at most
//!   two persons; a device code admits only the person it names. So nobody can add a
//!   device in the other partner's name;
//! - remove: a member ends a member device's right to write and read;
//! - revoke: a member withdraws an unused invite, which then admits no one;
//! - leave: a member's person leaves a shared space: all that person's devices stop
//!   being members; a remaining member then rotates the key (rotate: a new epoch for
//!   exactly the current members), since the leaver knew the old one;
//! - a partner invite admits a new person only while the space has never had two
//!   persons: once the partner has joined, a leftover partner invite admits no one;
//! - changes: only members may author them;
//! - every author's events form a chain: seq = previous seq + 1 and prev = hash of the
//!   previous event. Another event with a seq already used is a fork.

use std::collections::{BTreeMap, BTreeSet};

use crate::event::{Event, EventError, Header, Kind, MembershipOp, SpaceId};
use crate::identity::{DeviceKey, verify};

mod errors;
pub use errors::AdmitError;

/// A member device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The person the device belongs to.
    pub person: [u8; 16],
    /// Author time of the event that admitted it.
    pub joined_at: i64,
    /// The device's X25519 key, to which new space keys are wrapped.
    pub x25519: [u8; 32],
}

/// An invite as the space knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// After this instant it admits no one (ms since the Unix epoch).
    pub expires_at: i64,
    /// A device joined with it.
    pub used: bool,
    /// A member withdrew it.
    pub revoked: bool,
    /// The device that authorised it, and when (its event's time).
    pub issuer: DeviceKey,
    /// When it was authorised (author's clock, ms).
    pub issued_at: i64,
    /// For a device code, the person it admits; `None` for a partner invite.
    pub person: Option<[u8; 16]>,
    /// The person of the device that issued it.
    pub by: Option<[u8; 16]>,
    /// The device that joined with it.
    pub joined: Option<DeviceKey>,
}

/// How a device stopped being a member: removed by a member, or left with its person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Departure {
    /// The device that signed the removal or the leave.
    pub by: DeviceKey,
    /// When (the event's author time, ms).
    pub at: i64,
    /// That event's seq in its author's chain (with `by`, the event the relay serves a
    /// removed device up to).
    pub seq: u64,
    /// Its person left (a leave), rather than a removal by a member.
    pub left: bool,
}

/// The devices each person may ever join to a space (removed and departed ones count):
/// far more than one person's phones and computers over many years, and a bound on what
/// every device and the relay fold and keep for the space (a member who joins device
/// after device would otherwise make each push cost more). Counted per person, so that
/// one partner spending their own devices leaves the other's untouched; a space holds at
/// most two persons, so at most 256 devices.
pub const MAX_DEVICES_PER_PERSON: usize = 128;

/// The invites (partner invites and device codes) each person's devices may ever make
/// in a space, for the same reasons: each is kept with the space's state, and one
/// partner spending theirs leaves the other free to add devices (at most 1,024 a space).
pub const MAX_INVITES_PER_PERSON: usize = 512;

/// The verified state of one space.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpaceState {
    space: Option<SpaceId>,
    genesis: Option<[u8; 32]>,
    personal: bool,
    owner: [u8; 16],
    members: BTreeMap<DeviceKey, Member>,
    ever: BTreeMap<DeviceKey, Member>,
    removed: BTreeMap<DeviceKey, Departure>,
    invites: BTreeMap<DeviceKey, Invite>,
    /// A leave happened since the last new key: the leaver knows the current one.
    stale_key: bool,
    heads: BTreeMap<DeviceKey, (u64, [u8; 32])>,
    last_time: BTreeMap<DeviceKey, i64>,
    epoch: u32,
}

impl SpaceState {
    /// The state after admitting `events` in order; events that do not fit are skipped
    /// (own events not yet placed by the relay are admitted when they come back in its
    /// order).
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> SpaceState {
        let mut state = SpaceState::default();
        for ev in events {
            let _ = state.admit(ev, None);
        }
        state
    }

    /// Whether the space has its genesis.
    pub fn exists(&self) -> bool {
        self.space.is_some()
    }

    /// The current key epoch: 0 at genesis, one more after each removal.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Hash of the space's genesis event.
    pub fn genesis(&self) -> Option<[u8; 32]> {
        self.genesis
    }

    /// Whether the space is a personal space.
    pub fn is_personal(&self) -> bool {
        self.personal
    }

    /// Current member devices.
    pub fn members(&self) -> &BTreeMap<DeviceKey, Member> {
        &self.members
    }

    /// Every device that was ever a member, removed ones included (for attributing
    /// history to the person who made it).
    pub fn all_devices(&self) -> &BTreeMap<DeviceKey, Member> {
        &self.ever
    }

    /// Whether `device` may currently write and read.
    pub fn is_member(&self, device: &DeviceKey) -> bool {
        self.members.contains_key(device)
    }

    /// Whether `device` was removed.
    pub fn is_removed(&self, device: &DeviceKey) -> bool {
        self.removed.contains_key(device)
    }

    /// How `device` stopped being a member, if it did.
    pub fn departure(&self, device: &DeviceKey) -> Option<&Departure> {
        self.removed.get(device)
    }

    /// Every invite of the space, by invite key.
    pub fn invites(&self) -> &BTreeMap<DeviceKey, Invite> {
        &self.invites
    }

    /// Whether a leaver still knows the current key: the next write should start a new
    /// epoch first ([`MembershipOp::Rotate`]).
    pub fn needs_rotation(&self) -> bool {
        self.stale_key
    }

    /// The persons who were ever in the space (removed or gone included).
    pub fn persons_ever(&self) -> BTreeSet<[u8; 16]> {
        self.ever.values().map(|m| m.person).collect()
    }

    /// The author's last accepted seq and event hash.
    pub fn head(&self, author: &DeviceKey) -> Option<(u64, [u8; 32])> {
        self.heads.get(author).copied()
    }

    /// When each author's newest admitted event was written (author's clock, ms).
    pub fn last_times(&self) -> &BTreeMap<DeviceKey, i64> {
        &self.last_time
    }

    /// Every author's chain head.
    pub fn heads(&self) -> &BTreeMap<DeviceKey, (u64, [u8; 32])> {
        &self.heads
    }

    /// Checks that `event` may come next. `now` (ms) is the checker's clock, used for
    /// invite expiry by the relay at acceptance time; clients replaying history pass
    /// `None` and check expiry against the join event's own time.
    pub fn check(
        &self,
        event: &Event,
        now: Option<i64>,
    ) -> Result<Option<MembershipOp>, AdmitError> {
        let h = event.header();
        if self.space.is_some_and(|space| space != h.space) {
            return Err(AdmitError::WrongSpace);
        }
        if !self.exists() && event.kind() != Kind::Genesis {
            return Err(AdmitError::NoSuchSpace);
        }
        self.check_chain(h)?;
        let op = if event.kind().is_membership() {
            Some(MembershipOp::decode(event)?)
        } else {
            None
        };
        if let Some(MembershipOp::Genesis { x25519, .. } | MembershipOp::Join { x25519, .. }) = &op
            && crate::keywrap::is_low_order(x25519)
        {
            return Err(AdmitError::WeakKey);
        }
        if !self.exists() {
            return match op {
                Some(MembershipOp::Genesis { .. }) => Ok(op),
                _ => Err(AdmitError::NoSuchSpace),
            };
        }
        if self.removed.contains_key(&h.author) {
            return Err(AdmitError::Removed);
        }
        match &op {
            Some(MembershipOp::Genesis { .. }) => return Err(AdmitError::SpaceExists),
            Some(MembershipOp::Join {
                invite_key,
                person,
                invite_sig,
                ..
            }) => {
                self.check_join(h, invite_key, person, invite_sig, now)?;
                return Ok(op);
            }
            _ => {}
        }
        if !self.members.contains_key(&h.author) {
            return Err(AdmitError::NotMember);
        }
        self.check_by_member(event, op.as_ref())?;
        Ok(op)
    }

    /// The author's chain goes on: the next seq, linked to the previous event. A replayed
    /// old seq is a fork or duplicate, whatever its kind.
    fn check_chain(&self, h: &Header) -> Result<(), AdmitError> {
        match self.heads.get(&h.author) {
            Some((seq, hash)) => {
                if h.seq <= *seq {
                    return Err(AdmitError::Fork(h.seq));
                }
                if h.seq != seq + 1 {
                    return Err(AdmitError::Gap {
                        expected: seq + 1,
                        got: h.seq,
                    });
                }
                if h.prev != *hash {
                    return Err(AdmitError::BrokenChain);
                }
            }
            None => {
                if h.seq != 1 {
                    return Err(AdmitError::Gap {
                        expected: 1,
                        got: h.seq,
                    });
                }
            }
        }
        Ok(())
    }

    /// How many invites the person of member `author` has made in the space.
    fn invites_by(&self, author: &DeviceKey) -> usize {
        let person = self.members.get(author).map(|m| m.person);
        self.invites.values().filter(|i| i.by == person).count()
    }

    /// A join by a device not yet a member: a live, unspent invite signed it in, for a
    /// person the invite may admit.
    fn check_join(
        &self,
        h: &Header,
        invite_key: &DeviceKey,
        person: &[u8; 16],
        invite_sig: &[u8; 64],
        now: Option<i64>,
    ) -> Result<(), AdmitError> {
        if self.members.contains_key(&h.author) {
            return Err(AdmitError::AlreadyMember);
        }
        if self.personal && *person != self.owner {
            return Err(AdmitError::NotOwner);
        }
        let devices = self.ever.values().filter(|m| m.person == *person).count();
        if devices >= MAX_DEVICES_PER_PERSON {
            return Err(AdmitError::TooManyDevices(devices));
        }
        let invite = self
            .invites
            .get(invite_key)
            .ok_or(AdmitError::UnknownInvite)?;
        // A code dies with the device that made it: a removed device's (or a departed
        // person's) codes admit no one, also those its removal could not withdraw since
        // they were made while the remover was apart (a lost phone, still online).
        if invite.revoked || !self.members.contains_key(&invite.issuer) {
            return Err(AdmitError::InviteRevoked);
        }
        if invite.used {
            return Err(AdmitError::InviteUsed);
        }
        if h.time > invite.expires_at || now.is_some_and(|now| now > invite.expires_at) {
            return Err(AdmitError::InviteExpired);
        }
        let msg = MembershipOp::join_message(&h.space, &h.author, person);
        if !verify(invite_key, &msg, invite_sig) {
            return Err(AdmitError::BadInviteSignature);
        }
        // Anyone who ever was a person of the space is not a new person (nobody takes
        // over a removed partner's name); once two persons have been in a shared space,
        // no partner invite admits another (a partner removed or gone is not replaced:
        // a new partner would read the couple's whole history).
        let persons = self.persons_ever();
        match invite.person {
            Some(p) if p != *person => Err(AdmitError::WrongPerson),
            Some(_) => Ok(()),
            // A partner invite admits a new person; also (as invites did before they
            // named their kind) a device of the issuer's own person.
            None if invite.by == Some(*person) => Ok(()),
            None if persons.contains(person) => Err(AdmitError::WrongPerson),
            None if !self.personal && persons.len() >= 2 => Err(AdmitError::SpaceFull),
            None => Ok(()),
        }
    }

    /// What a member's event may do: an invite is new and for the author's own person
    /// or a new one; a removal is of a member, under the next epoch, with the new key
    /// for exactly the remaining members; changes are under a known epoch.
    fn check_by_member(&self, event: &Event, op: Option<&MembershipOp>) -> Result<(), AdmitError> {
        let author = &event.header().author;
        // Counted only for an invite (a walk over the space's invites).
        let invites_made = match op {
            Some(MembershipOp::Invite { .. }) => self.invites_by(author),
            _ => 0,
        };
        match op {
            Some(MembershipOp::Invite { invite_key, .. })
                if self.invites.contains_key(invite_key) =>
            {
                Err(AdmitError::DuplicateInvite)
            }
            Some(MembershipOp::Invite { .. }) if invites_made >= MAX_INVITES_PER_PERSON => {
                Err(AdmitError::TooManyInvites(invites_made))
            }
            Some(MembershipOp::Invite {
                person: Some(p), ..
            }) if self.members.get(author).map(|m| m.person) != Some(*p) => {
                Err(AdmitError::InviteForAnother)
            }
            Some(MembershipOp::Remove { device, .. }) if !self.members.contains_key(device) => {
                Err(AdmitError::NotAMemberToRemove)
            }
            Some(MembershipOp::Remove {
                device,
                epoch,
                keys,
                ..
            }) => self.check_removal(Some(device), *epoch, keys),
            Some(MembershipOp::Rotate { epoch, keys, .. }) => {
                self.check_removal(None, *epoch, keys)
            }
            Some(MembershipOp::Revoke { invite_key }) => match self.invites.get(invite_key) {
                None => Err(AdmitError::UnknownInvite),
                Some(i) if i.revoked || i.used => Err(AdmitError::InviteClosed),
                Some(_) => Ok(()),
            },
            Some(MembershipOp::Leave) if self.personal => Err(AdmitError::LeavePersonal),
            None => match event.epoch() {
                Some(e) if e > self.epoch => Err(AdmitError::FutureEpoch {
                    current: self.epoch,
                    got: e,
                }),
                None => Err(AdmitError::Event(EventError::BadPayload("changes"))),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// A removal of member `device` (or a rotation, `None`) moves to the next epoch and
    /// hands its key to exactly the remaining members.
    fn check_removal(
        &self,
        device: Option<&DeviceKey>,
        epoch: u32,
        keys: &[(DeviceKey, [u8; crate::keywrap::WRAPPED_LEN])],
    ) -> Result<(), AdmitError> {
        if epoch != self.epoch + 1 {
            return Err(AdmitError::StaleEpoch {
                expected: self.epoch + 1,
                got: epoch,
            });
        }
        // The new key must reach exactly the remaining members.
        let mut recipients: Vec<DeviceKey> = keys.iter().map(|(d, _)| *d).collect();
        recipients.sort_unstable();
        let expected: Vec<DeviceKey> = self
            .members
            .keys()
            .filter(|k| Some(*k) != device)
            .copied()
            .collect();
        if recipients != expected {
            return Err(AdmitError::BadRecipients);
        }
        Ok(())
    }

    /// Checks and then applies `event`.
    pub fn admit(
        &mut self,
        event: &Event,
        now: Option<i64>,
    ) -> Result<Option<MembershipOp>, AdmitError> {
        let op = self.check(event, now)?;
        self.apply_checked(event, op.as_ref());
        Ok(op)
    }

    fn apply_checked(&mut self, event: &Event, op: Option<&MembershipOp>) {
        let h = event.header();
        self.heads.insert(h.author, (h.seq, event.hash()));
        let t = self.last_time.entry(h.author).or_insert(i64::MIN);
        *t = (*t).max(h.time);
        match op {
            Some(MembershipOp::Genesis {
                person,
                personal,
                x25519,
            }) => {
                self.space = Some(h.space);
                self.genesis = Some(event.hash());
                self.personal = *personal;
                self.owner = *person;
                self.add_member(h.author, *person, h.time, *x25519);
            }
            Some(MembershipOp::Invite {
                invite_key,
                expires_at,
                person,
            }) => {
                self.invites.insert(
                    *invite_key,
                    Invite {
                        expires_at: *expires_at,
                        used: false,
                        revoked: false,
                        issuer: h.author,
                        issued_at: h.time,
                        person: *person,
                        by: self.members.get(&h.author).map(|m| m.person),
                        joined: None,
                    },
                );
            }
            Some(MembershipOp::Join {
                invite_key,
                person,
                x25519,
                ..
            }) => {
                if let Some(inv) = self.invites.get_mut(invite_key) {
                    inv.used = true;
                    inv.joined = Some(h.author);
                }
                self.add_member(h.author, *person, h.time, *x25519);
            }
            Some(MembershipOp::Remove { device, epoch, .. }) => {
                self.members.remove(device);
                self.removed
                    .insert(*device, self.departure_by(event, false));
                self.epoch = *epoch;
                self.stale_key = false;
            }
            Some(MembershipOp::Rotate { epoch, .. }) => {
                self.epoch = *epoch;
                self.stale_key = false;
            }
            Some(MembershipOp::Revoke { invite_key }) => {
                if let Some(inv) = self.invites.get_mut(invite_key) {
                    inv.revoked = true;
                }
            }
            Some(MembershipOp::Leave) => self.apply_leave(event),
            None => {}
        }
    }

    /// `device` becomes a member (a genesis or a join), and is remembered as ever one.
    fn add_member(&mut self, device: DeviceKey, person: [u8; 16], at: i64, x25519: [u8; 32]) {
        let member = Member {
            person,
            joined_at: at,
            x25519,
        };
        self.ever.insert(device, member.clone());
        self.members.insert(device, member);
    }

    /// Every device of the leaving author's person stops being a member; the key is
    /// stale until a remaining member rotates it.
    fn apply_leave(&mut self, event: &Event) {
        let person = self.members.get(&event.header().author).map(|m| m.person);
        let leaving: Vec<DeviceKey> = self
            .members
            .iter()
            .filter(|(_, m)| Some(m.person) == person)
            .map(|(k, _)| *k)
            .collect();
        for device in leaving {
            self.members.remove(&device);
            self.removed.insert(device, self.departure_by(event, true));
        }
        self.stale_key = true;
    }

    fn departure_by(&self, event: &Event, left: bool) -> Departure {
        Departure {
            by: event.header().author,
            at: event.header().time,
            seq: event.header().seq,
            left,
        }
    }

    /// Whether `kind` events change membership (for callers that keep them apart).
    pub fn is_membership_kind(kind: Kind) -> bool {
        kind.is_membership()
    }
}
