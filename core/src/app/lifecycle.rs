//! A couple's lifecycle: device codes and device removal, the invites of the spaces
//! (revoked; listed in `invite_rows`), a partner invite only while the partner has not joined, leaving the
//! shared space, and what a device that is no longer a member may still do (read and
//! export; no shared edits).

use super::invite_rows::{InviteRow, invite_state};
use crate::device::{Device, DeviceError};
use crate::event::{Event, Header, MembershipOp};
use crate::identity::{DeviceKey, keypair_from_seed};
use crate::invite::{DeviceCode, InviteCode};
use crate::membership::SpaceState;
use crate::readmodel::Parts;
use crate::store::{Departed, SpaceKind};
use crate::sync::Redo;

/// The partner, as the shared space's membership says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Partner {
    /// No one else has joined yet.
    NotYet,
    /// In the space, by name.
    Here(String),
    /// Was in the space and no device of theirs is now (they left, or their last
    /// device was removed).
    Gone(String),
}

/// Which invites `revoke` withdraws.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeTarget {
    /// Every open invite of both spaces.
    All,
    /// The invite of a code (both halves of a device code).
    Code(String),
    /// The open invite whose key starts with these hex digits.
    Id(String),
}

impl Device {
    /// How this device's membership of the shared space ended, if it did.
    pub fn departed(&self) -> Result<Option<Departed>, DeviceError> {
        let rec = self.store.space(SpaceKind::Shared)?;
        Ok(self.store.departed(&rec.id)?)
    }

    /// How this device's membership of the personal space ended (removed by another
    /// device of this person), if it did.
    pub fn personal_departed(&self) -> Result<Option<Departed>, DeviceError> {
        let rec = self.store.space(SpaceKind::Personal)?;
        Ok(self.store.departed(&rec.id)?)
    }

    /// The changes made here that never reached the shared space before this device
    /// departed it (hex hashes, as in the history's `change`): none while it is a
    /// member, whose next sync sends them.
    pub fn never_sent(&self) -> Result<std::collections::BTreeSet<String>, DeviceError> {
        match self.departed_shared_space()? {
            Some(space) => Ok(self.store.pending_hashes(&space)?),
            None => Ok(Default::default()),
        }
    }

    /// How many of [`Device::never_sent`] there are, counted without reading them.
    pub fn never_sent_count(&self) -> Result<usize, DeviceError> {
        self.never_sent_in(SpaceKind::Shared)
    }

    /// How many changes made here never reached the personal space before this device
    /// was removed from it (private reflections its person's other devices never see).
    pub fn never_sent_private_count(&self) -> Result<usize, DeviceError> {
        self.never_sent_in(SpaceKind::Personal)
    }

    /// How many changes made here never reached the space of `kind` before this
    /// device's membership of it ended (none while it is a member).
    fn never_sent_in(&self, kind: SpaceKind) -> Result<usize, DeviceError> {
        let rec = self.store.space(kind)?;
        if self.store.departed(&rec.id)?.is_none() {
            return Ok(0);
        }
        Ok(usize::try_from(self.store.pending_count(&rec.id)?).unwrap_or(0))
    }

    /// The shared space's id, when this device's membership of it ended.
    fn departed_shared_space(&self) -> Result<Option<crate::event::SpaceId>, DeviceError> {
        let rec = self.store.space(SpaceKind::Shared)?;
        Ok(self.store.departed(&rec.id)?.map(|_| rec.id))
    }

    /// Whether this device may still write to the space of `kind` (it has not left it
    /// and was not removed from it): what a page offers forms for.
    pub fn member_of(&self, kind: SpaceKind) -> Result<bool, DeviceError> {
        let rec = self.store.space(kind)?;
        Ok(self.store.departed(&rec.id)?.is_none())
    }

    /// Refuses when this device is no longer a member of the space of `kind`.
    pub(crate) fn ensure_member(&self, kind: SpaceKind) -> Result<(), DeviceError> {
        let rec = self.store.space(kind)?;
        match self.store.departed(&rec.id)? {
            Some(d) => Err(DeviceError::Departed(d)),
            None => Ok(()),
        }
    }

    /// Whether the partner was in the shared space and no device of theirs is now (they
    /// left, or their last device was removed): no one is left to rate blind against.
    pub(crate) fn partner_gone(&self) -> Result<bool, DeviceError> {
        let rec = self.store.space(SpaceKind::Shared)?;
        if !self.store.has_departures(&rec.id)? {
            return Ok(false);
        }
        let state = crate::sync::fold_state(&self.store, &rec.id)?;
        Ok(matches!(
            other_person(&state, self.me.person()),
            Some((_, false))
        ))
    }

    /// Refuses a partner invite once a second person has been in the shared space: a
    /// leftover invite would let a third person read the couple's history.
    pub(crate) fn ensure_partner_slot(&mut self) -> Result<(), DeviceError> {
        self.ensure_member(SpaceKind::Shared)?;
        match self.partner()? {
            Partner::NotYet => Ok(()),
            Partner::Here(name) => Err(DeviceError::PartnerJoined(name)),
            Partner::Gone(name) => Err(DeviceError::PartnerGone(name)),
        }
    }

    /// Whether the partner has joined the shared space, is in it, or is no longer.
    pub fn partner(&mut self) -> Result<Partner, DeviceError> {
        let rec = self.store.space(SpaceKind::Shared)?;
        let state = crate::sync::fold_state(&self.store, &rec.id)?;
        let Some((other, present)) = other_person(&state, self.me.person()) else {
            return Ok(Partner::NotYet);
        };
        let people = crate::names::shown(&self.view_parts(SpaceKind::Shared, Parts::Goals)?.people);
        let name = people
            .get(&hex::encode(other))
            .cloned()
            .unwrap_or_else(|| "your partner".into());
        Ok(if present {
            Partner::Here(name)
        } else {
            Partner::Gone(name)
        })
    }

    /// Signs a membership event as this device's next event in a space and stores it
    /// (the next sync pushes it).
    pub(crate) fn sign_own(
        &mut self,
        kind: SpaceKind,
        op: &MembershipOp,
    ) -> Result<Event, DeviceError> {
        let _lock = self.store.write_lock()?;
        let ev = self.signed_own(kind, op)?;
        let rec = self.store.space(kind)?;
        self.store
            .record_own_events(&rec.id, std::slice::from_ref(&ev), &[])?;
        Ok(ev)
    }

    /// This device's next membership event in `kind`'s space, signed and not stored (the
    /// caller holds the home's lock until it is).
    fn signed_own(&self, kind: SpaceKind, op: &MembershipOp) -> Result<Event, DeviceError> {
        let rec = self.store.space(kind)?;
        let (seq, prev) = self
            .store
            .own_head(&rec.id, &self.me.device_key())?
            .unwrap_or((0, [0; 32]));
        let ev = Event::membership(
            Header {
                kind: op.kind(),
                space: rec.id,
                author: self.me.device_key(),
                seq: seq + 1,
                prev,
                time: self.now(),
            },
            op,
            &self.me,
        );
        Ok(ev)
    }

    /// A membership event crafted by hand, signed with this device's keys: for tests
    /// that act as a hostile partner's modified client.
    #[cfg(feature = "test-util")]
    pub fn sign_membership(
        &mut self,
        kind: SpaceKind,
        op: &MembershipOp,
    ) -> Result<Event, DeviceError> {
        self.sign_own(kind, op)
    }

    /// Authorises one more device of this person in both spaces, valid for `ttl_ms`. The
    /// invite events are stored now and pushed by the next sync.
    pub fn add_device(&mut self, ttl_ms: i64) -> Result<DeviceCode, DeviceError> {
        let _lock = self.store.write_lock()?;
        let me = Some(self.me.person());
        // One expiry for both halves: it also tells which two invites are one code's.
        let expires_at = self.now().saturating_add(ttl_ms);
        let shared = self.invite_in(SpaceKind::Shared, expires_at, me)?;
        let personal = self.invite_in(SpaceKind::Personal, expires_at, me)?;
        let relay = self
            .space(SpaceKind::Shared)?
            .relay
            .ok_or(crate::sync::SyncError::NoRelay)?;
        Ok(DeviceCode {
            relay,
            person: self.me.person(),
            name: self.me.name.clone(),
            expires_at,
            shared,
            personal,
        })
    }

    /// Removes a device from a space: a signed `remove` event, pushed by the next sync.
    /// Returns false when the device is not a member of that space.
    pub fn remove_device(
        &mut self,
        kind: SpaceKind,
        device: &crate::identity::DeviceKey,
    ) -> Result<bool, DeviceError> {
        Ok(self.remove_device_withdrawing(kind, device)?.is_some())
    }

    /// [`Device::remove_device`], saying how many open codes (partner invites and
    /// device codes, each counted once) the removal withdrew; `None` when the device is
    /// not a member of that space.
    pub(crate) fn remove_device_withdrawing(
        &mut self,
        kind: SpaceKind,
        device: &crate::identity::DeviceKey,
    ) -> Result<Option<usize>, DeviceError> {
        let _lock = self.store.write_lock()?;
        self.ensure_member(kind)?;
        let rec = self.store.space(kind)?;
        let state = crate::sync::fold_state(&self.store, &rec.id)?;
        if !state.is_member(device) {
            return Ok(None);
        }
        let head = self
            .store
            .own_head(&rec.id, &self.me.device_key())?
            .unwrap_or((0, [0; 32]));
        // A new space key for the next epoch, wrapped for every remaining device: the
        // removed one cannot read anything written from now on.
        let (ev, epoch, key) =
            crate::rekey::next_epoch(&self.me, rec.id, &state, head, Some(device), self.now());
        self.store.record_removal(&rec.id, &ev, epoch, &key)?;
        // A code made before now carries the keys up to the epoch just ended, and no
        // device is ever given a key after it joins: its device would join, look set
        // up, and never read or send anything again. Every open code is withdrawn, so
        // that its join is refused with the advice to make a new one. (A device that
        // left withdrew its codes then, and makes none after.)
        // A code has one half in the shared space (a device code another in the
        // personal one): counted by that half.
        let mut withdrawn = 0;
        if self.ensure_member(SpaceKind::Shared).is_ok() {
            let revoked = self.revoke_invites(&RevokeTarget::All)?;
            withdrawn = revoked.iter().filter(|r| r.space == "shared").count();
        }
        Ok(Some(withdrawn))
    }

    /// Does again a membership change the relay refused as conflicting and that was
    /// withdrawn, unless the state it aimed at holds already (the device was removed,
    /// the invite revoked or used meanwhile). Returns whether it did.
    /// What else it did is said in `news`.
    pub(crate) fn redo(
        &mut self,
        kind: SpaceKind,
        redo: &Redo,
        news: &mut Vec<crate::advice::Warning>,
    ) -> Result<bool, DeviceError> {
        match redo {
            Redo::Removal { device, known } => {
                // Withdrawn because this device was itself removed: nothing to redo.
                let rec = self.store.space(kind)?;
                if self.store.departed(&rec.id)?.is_some() {
                    return Ok(false);
                }
                let redone = self.remove_device(kind, device)?;
                self.remove_admitted_meanwhile(kind, device, known, news)?;
                Ok(redone)
            }
            Redo::Revocation(invite_key) => {
                let _lock = self.store.write_lock()?;
                let rec = self.store.space(kind)?;
                // Leaving, a device only pushes (it pulls nothing more), so it would never
                // learn that the invite was used meanwhile, which is why a revocation it
                // signed before its leave loses: it is not signed again, the leave is.
                if self.store.departed(&rec.id)?.is_some() {
                    return Ok(false);
                }
                let state = crate::sync::fold_state(&self.store, &rec.id)?;
                match state.invites().get(invite_key) {
                    Some(inv) if !inv.revoked && !inv.used => {}
                    _ => return Ok(false),
                }
                self.sign_own(
                    kind,
                    &MembershipOp::Revoke {
                        invite_key: *invite_key,
                    },
                )?;
                Ok(true)
            }
            Redo::Leave => {
                let _lock = self.store.write_lock()?;
                let rec = self.store.space(kind)?;
                let state = crate::sync::fold_state(&self.store, &rec.id)?;
                if !state.is_member(&self.me.device_key()) {
                    return Ok(false);
                }
                self.sign_own(kind, &MembershipOp::Leave)?;
                Ok(true)
            }
        }
    }

    /// Withdraws open invites with signed `revoke` events (pushed by the next sync; the
    /// relay and every device then refuse a join with them). Returns those revoked.
    pub fn revoke_invites(&mut self, target: &RevokeTarget) -> Result<Vec<InviteRow>, DeviceError> {
        // From reading which invites are open to signing their revocations: another
        // process on this home revoking the same invite meanwhile would make a second
        // revocation that the relay refuses.
        let _lock = self.store.write_lock()?;
        self.ensure_member(SpaceKind::Shared)?;
        let wanted = wanted_keys(target);
        let (open, rest): (Vec<InviteRow>, Vec<InviteRow>) = self
            .invites()?
            .into_iter()
            .filter(|r| r.state == "open")
            .partition(|r| match (target, &wanted) {
                (RevokeTarget::All, _) => true,
                (RevokeTarget::Id(prefix), _) => r.id.starts_with(&prefix.to_lowercase()),
                (RevokeTarget::Code(_), keys) => keys.contains(&r.id),
            });
        let label = match target {
            RevokeTarget::All => "all",
            RevokeTarget::Code(c) | RevokeTarget::Id(c) => c.as_str(),
        };
        if open.is_empty() && *target != RevokeTarget::All {
            return Err(DeviceError::NoSuchInvite(label.chars().take(24).collect()));
        }
        if matches!(target, RevokeTarget::Id(_)) && open.len() > 1 {
            return Err(DeviceError::NoSuchInvite(format!(
                "{label} (it matches {} invites; type more of the id)",
                open.len()
            )));
        }
        // One half of a device code withdraws the whole code: the other half alone would
        // still let a device into the other space.
        let pairs: Vec<String> = open.iter().filter_map(|r| r.pair.clone()).collect();
        let mut open = open;
        open.extend(rest.into_iter().filter(|r| pairs.contains(&r.id)));
        for row in &open {
            let kind = if row.space == "personal" {
                SpaceKind::Personal
            } else {
                SpaceKind::Shared
            };
            let mut invite_key: DeviceKey = [0; 32];
            hex::decode_to_slice(&row.id, &mut invite_key)
                .map_err(|_| DeviceError::NoSuchInvite(row.id.clone()))?;
            self.sign_own(kind, &MembershipOp::Revoke { invite_key })?;
        }
        Ok(open)
    }

    /// What became of the invite behind `code` ("open", "used", "closed", "revoked",
    /// "expired"), as [`Device::invites`] says; none for a code of no invite here.
    pub fn code_state(&mut self, code: &str) -> Result<Option<&'static str>, DeviceError> {
        let keys = wanted_keys(&RevokeTarget::Code(code.to_string()));
        Ok(self
            .invites()?
            .into_iter()
            .find(|r| keys.contains(&r.id))
            .map(|r| r.state))
    }

    /// How many revocations this device signed that the relay has not stored yet (it
    /// was offline, or refused them): until it does, a device that never saw them could
    /// still be served a join with the invite.
    pub fn unsent_revocations(&mut self) -> Result<usize, DeviceError> {
        self.unsent_of(crate::event::Kind::Revoke)
    }

    /// How many device removals this device signed that the relay has not stored yet
    /// (it was offline, or refused them): until it does, the device can still sync.
    pub fn unsent_removals(&mut self) -> Result<usize, DeviceError> {
        self.unsent_of(crate::event::Kind::Remove)
    }

    fn unsent_of(&mut self, kind: crate::event::Kind) -> Result<usize, DeviceError> {
        let mut n = 0;
        for space in [SpaceKind::Shared, SpaceKind::Personal] {
            let rec = self.store.space(space)?;
            n += self
                .store
                .unacked_events(&rec.id)?
                .into_iter()
                .filter(|b| Event::stored_kind(b) == Some(kind))
                .count();
        }
        Ok(n)
    }

    /// Holds the home's write lock until the guard is dropped (re-entrant: this
    /// device's own writes go on), so that what other duet processes write waits: for
    /// steps a front end makes one, such as the export `leave` writes before leaving.
    pub fn hold_writes(&self) -> Result<crate::lock::WriteGuard, DeviceError> {
        Ok(self.store.write_lock()?)
    }

    /// Leaves the shared space: a signed `leave` event (pushed by the next sync) that
    /// ends the membership of every device of this person; the partner's next sync then
    /// starts a new key this person never learns. What this device holds stays
    /// readable; the personal space is untouched.
    pub fn leave(&mut self) -> Result<Departed, DeviceError> {
        // One hold of the home's lock (re-entrant) from the membership check to the
        // leave: a change another process (a watcher, a `rate`) writes meanwhile would
        // be packaged after the leave, where nothing of this person's is accepted.
        let _lock = self.store.write_lock()?;
        self.ensure_member(SpaceKind::Shared)?;
        let rec = self.store.space(SpaceKind::Shared)?;
        let state = crate::sync::fold_state(&self.store, &rec.id)?;
        if !state.is_member(&self.me.device_key()) {
            return Err(DeviceError::NotSynced);
        }
        // What this person wrote before leaving goes before the leave (after it nothing
        // of theirs is accepted): their blind ratings revealed, then every change not
        // yet sent packaged into events the next sync pushes ahead of the leave.
        self.reveal(true)?;
        crate::sync::package_local(&mut self.store, &self.me, &rec)?;
        self.revoke_own_open_invites()?;
        let ev = self.signed_own(SpaceKind::Shared, &MembershipOp::Leave)?;
        let departed = Departed {
            space: SpaceKind::Shared.as_str().to_string(),
            by: self.me.name.clone(),
            left: true,
            device: hex::encode(self.me.device_key()),
            at: ev.header().time,
        };
        self.store.record_leave(&rec.id, &ev, &departed)?;
        Ok(departed)
    }
}

impl Device {
    /// Withdraws the open codes this person made, in both spaces, before they leave:
    /// signed while still a member (after the leave nothing of theirs is accepted), so
    /// that a code handed out earlier admits no one into a space they left.
    fn revoke_own_open_invites(&mut self) -> Result<(), DeviceError> {
        let _lock = self.store.write_lock()?;
        let now = self.now();
        for kind in [SpaceKind::Shared, SpaceKind::Personal] {
            let rec = self.store.space(kind)?;
            let state = crate::sync::fold_state(&self.store, &rec.id)?;
            let mine: Vec<DeviceKey> = state
                .invites()
                .iter()
                .filter(|(_, inv)| invite_state(&state, inv, now) == "open")
                .filter(|(_, inv)| inv.by.map(hex::encode).as_deref() == Some(&self.me.person_id))
                .map(|(key, _)| *key)
                .collect();
            for invite_key in mine {
                self.sign_own(kind, &MembershipOp::Revoke { invite_key })?;
            }
        }
        Ok(())
    }
}

/// The other person who was ever in a shared space, and whether a device of theirs is a
/// member now.
fn other_person(state: &SpaceState, mine: [u8; 16]) -> Option<([u8; 16], bool)> {
    let other = state.persons_ever().into_iter().find(|p| *p != mine)?;
    Some((other, state.members().values().any(|m| m.person == other)))
}

/// The invite keys a code names (both halves of a device code); empty for other targets
/// or a code that does not decode.
fn wanted_keys(target: &RevokeTarget) -> Vec<String> {
    let RevokeTarget::Code(code) = target else {
        return Vec::new();
    };
    let key_of = |secret: [u8; 32]| hex::encode(keypair_from_seed(secret).1);
    if let Ok(c) = InviteCode::decode(code) {
        return vec![key_of(c.secret)];
    }
    if let Ok(c) = DeviceCode::decode(code) {
        return vec![key_of(c.shared.secret), key_of(c.personal.secret)];
    }
    Vec::new()
}
