//! Devices: the list with who each belongs to, finding one by key prefix, removing it
//! from both spaces, the safety code to compare in person, and which devices are not
//! verified yet.

use serde::Serialize;

use super::records::iso;
use crate::device::{Device, DeviceError};
use crate::identity::DeviceKey;
use crate::readmodel::Parts;
use crate::store::SpaceKind;

/// A device of the shared space, current or removed.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceRow {
    /// Hex device key.
    pub device: String,
    /// Person id.
    pub person: String,
    /// The person's name, once synced.
    pub name: Option<String>,
    /// When it joined (RFC 3339).
    pub joined_at: String,
    /// When it last pushed (RFC 3339).
    pub last_pushed_at: Option<String>,
    /// Joined, ms (for text renderings).
    #[serde(skip)]
    pub joined_ms: i64,
    /// Last pushed, ms.
    #[serde(skip)]
    pub last_pushed_ms: Option<i64>,
    /// Whether the user verified it (this device always is).
    pub verified: bool,
    /// Whether it is no longer a member (removed, or its person left).
    pub removed: bool,
    /// Whether that was its person leaving (not a removal).
    pub left: bool,
    /// Whether it is the device being used.
    pub this_device: bool,
    /// Removed from the shared space (by the partner) but still in this person's
    /// personal space: it still reads their private reflections until they remove it.
    #[serde(default)]
    pub reads_personal: bool,
}

/// Removing a device of the other partner: whose it is, and whether it is their last.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartnerRemoval {
    /// The partner's name.
    pub name: String,
    /// Whether it is their last current device of the shared space.
    pub last_device: bool,
}

/// A shared-space device the user has not verified yet.
#[derive(Debug, Clone, Serialize)]
pub struct UnverifiedDevice {
    /// Hex device key.
    pub device: String,
    /// Person id.
    pub person: String,
    /// The person's name, once synced.
    pub name: Option<String>,
}

/// The safety code of the shared space.
#[derive(Debug, Clone, Serialize)]
pub struct Safety {
    /// Six groups of five digits.
    pub code: String,
    /// How many member devices it covers.
    pub devices: usize,
    /// Whether the user just confirmed it matched.
    pub confirmed: bool,
    /// Whether every device it covers was verified in person (now or before).
    pub verified: bool,
}

/// What [`Device::remove_device_everywhere`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeviceRemoved {
    /// The spaces the device was removed from.
    pub spaces: Vec<SpaceKind>,
    /// The open codes withdrawn with it (made before the removal, they carry the keys
    /// of the epoch it ends).
    pub codes_withdrawn: usize,
}

impl Device {
    /// Person id -> name in the shared space, from the read models (a partner's
    /// malformed entity never stops a listing).
    fn shared_names(&mut self) -> Result<std::collections::BTreeMap<String, String>, DeviceError> {
        let people = self.view_parts(SpaceKind::Shared, Parts::Goals)?.people;
        Ok(crate::names::shown(&people))
    }

    /// Every device the shared space has known, with its person and state.
    pub fn device_list(&mut self) -> Result<Vec<DeviceRow>, DeviceError> {
        let rec = self.space(SpaceKind::Shared)?;
        let state = crate::sync::fold_state(&self.store, &rec.id)?;
        let names = self.shared_names()?;
        let verified = self.store.verified(&rec.id)?;
        let last = state.last_times();
        let me = self.me.device_key();
        let personal = self.space(SpaceKind::Personal)?;
        let personal = crate::sync::fold_state(&self.store, &personal.id)?;
        Ok(state
            .all_devices()
            .iter()
            .map(|(key, m)| {
                let person = hex::encode(m.person);
                DeviceRow {
                    device: hex::encode(key),
                    name: names.get(&person).cloned(),
                    person,
                    joined_at: iso(m.joined_at),
                    last_pushed_at: last.get(key).map(|t| iso(*t)),
                    joined_ms: m.joined_at,
                    last_pushed_ms: last.get(key).copied(),
                    verified: *key == me || verified.contains(key),
                    removed: state.is_removed(key),
                    left: state.departure(key).is_some_and(|d| d.left),
                    this_device: *key == me,
                    reads_personal: state.is_removed(key) && personal.is_member(key),
                }
            })
            .collect())
    }

    /// What removing `device` means when it is the partner's: their name, and whether it
    /// is their last current device (then they lose the shared space). `None` for a
    /// device of this person.
    pub fn partner_removal(
        &mut self,
        device: &DeviceKey,
    ) -> Result<Option<PartnerRemoval>, DeviceError> {
        let rec = self.space(SpaceKind::Shared)?;
        let state = crate::sync::fold_state(&self.store, &rec.id)?;
        let Some(person) = state.members().get(device).map(|m| m.person) else {
            return Ok(None);
        };
        if self.me.person_id == *hex::encode(person).as_str() {
            return Ok(None);
        }
        let names = self.shared_names()?;
        let others = state
            .members()
            .iter()
            .filter(|(k, m)| m.person == person && *k != device)
            .count();
        Ok(Some(PartnerRemoval {
            name: names
                .get(&hex::encode(person))
                .cloned()
                .unwrap_or_else(|| "your partner".into()),
            last_device: others == 0,
        }))
    }

    /// The current device of either space whose hex key starts with `query`.
    pub fn find_device(&self, query: &str) -> Result<DeviceKey, DeviceError> {
        // Devices of both spaces: a device may have joined only the personal space.
        let q = query.trim().to_ascii_lowercase();
        let mut matches: Vec<DeviceKey> = Vec::new();
        // A device no longer current (removed, or its person left), said as such.
        let mut gone = false;
        for kind in [SpaceKind::Shared, SpaceKind::Personal] {
            let rec = self.space(kind)?;
            let state = crate::sync::fold_state(&self.store, &rec.id)?;
            let hit = |k: &DeviceKey| !q.is_empty() && hex::encode(k).starts_with(&q);
            for k in state.members().keys() {
                if hit(k) && !matches.contains(k) {
                    matches.push(*k);
                }
            }
            gone |= state
                .all_devices()
                .keys()
                .any(|k| hit(k) && !state.is_member(k));
        }
        match matches.as_slice() {
            [one] if *one == self.me.device_key() => Err(DeviceError::ThisDevice),
            [one] => Ok(*one),
            [] if gone => Err(DeviceError::DeviceGone(query.to_string())),
            [] => Err(DeviceError::NoSuchDevice(query.to_string())),
            _ => Err(DeviceError::AmbiguousDevice(query.to_string())),
        }
    }

    /// Removes a device from every space it belongs to (signed removals and new space
    /// keys, pushed by the next sync); says from which spaces, and how many open codes
    /// the removals withdrew.
    pub fn remove_device_everywhere(
        &mut self,
        device: &DeviceKey,
    ) -> Result<DeviceRemoved, DeviceError> {
        let mut removed = DeviceRemoved::default();
        for kind in [SpaceKind::Shared, SpaceKind::Personal] {
            // After a leave the personal space stays this person's: a lost device must
            // still be taken out of it, though the shared space can no longer change.
            let rec = self.space(kind)?;
            if kind == SpaceKind::Shared && self.store.departed(&rec.id)?.is_some() {
                continue;
            }
            if let Some(withdrawn) = self.remove_device_withdrawing(kind, device)? {
                removed.spaces.push(kind);
                removed.codes_withdrawn += withdrawn;
            }
        }
        Ok(removed)
    }

    /// Finishes a removal of a device of this person's that reached one space only (a
    /// `device remove` stopped between its two removals: killed, or the machine went
    /// down): the device is taken out of the other space too, where it would go on
    /// reading what is written there. Only a removal signed by a device of this person's
    /// is finished (a partner's is said to the person, not acted on). Returns each
    /// device taken out, with the space it was taken out of.
    pub(crate) fn finish_own_removals(
        &mut self,
    ) -> Result<Vec<(SpaceKind, DeviceKey)>, DeviceError> {
        let _lock = self.store.write_lock()?;
        let (me, person) = (self.me.device_key(), self.me.person());
        let kinds = [SpaceKind::Shared, SpaceKind::Personal];
        let recs = self.store.spaces()?;
        let mut states = Vec::new();
        for kind in kinds {
            // A device holding one space only has no other to finish a removal in.
            let Some(rec) = recs.iter().find(|r| r.kind == kind) else {
                return Ok(Vec::new());
            };
            let departed = self.store.departed(&rec.id)?.is_some();
            states.push((crate::sync::fold_state(&self.store, &rec.id)?, departed));
        }
        let removed_by_me = |state: &crate::membership::SpaceState, d: &DeviceKey| {
            state
                .departure(d)
                .filter(|dep| !dep.left)
                .and_then(|dep| state.all_devices().get(&dep.by))
                .is_some_and(|m| m.person == person)
        };
        let mut todo = Vec::new();
        for (i, kind) in kinds.into_iter().enumerate() {
            let ((here, departed), (there, _)) = (&states[i], &states[1 - i]);
            if *departed || !here.is_member(&me) {
                continue;
            }
            for d in here.members().keys().filter(|d| **d != me) {
                if removed_by_me(there, d) {
                    todo.push((kind, *d));
                }
            }
        }
        let mut done = Vec::new();
        for (kind, d) in todo {
            if self.remove_device(kind, &d)? {
                done.push((kind, d));
            }
        }
        Ok(done)
    }

    /// Removes the devices that joined with a code `removed` made and that this device
    /// did not know of when it first signed the removal (`known`, the members it handed
    /// the new key to): a lost phone, still online while the removal waited offline,
    /// admitting whoever holds it. Redone without them, the removal would hand them the
    /// couple's new key. Each is said in `news`.
    pub(crate) fn remove_admitted_meanwhile(
        &mut self,
        kind: SpaceKind,
        removed: &DeviceKey,
        known: &[DeviceKey],
        news: &mut Vec<crate::advice::Warning>,
    ) -> Result<(), DeviceError> {
        let rec = self.space(kind)?;
        let state = crate::sync::fold_state(&self.store, &rec.id)?;
        let me = self.me.device_key();
        let admitted: Vec<DeviceKey> = state
            .invites()
            .values()
            .filter(|i| i.issuer == *removed)
            .filter_map(|i| i.joined)
            .filter(|d| *d != me && state.is_member(d) && !known.contains(d))
            .collect();
        for d in admitted {
            if self.remove_device(kind, &d)? {
                news.push(crate::advice::Warning::new(format!(
                    "device {} joined the {} space with a code made on the device you \
                     removed, while the removal waited to reach the relay; it was removed \
                     too",
                    &hex::encode(d)[..12],
                    kind.as_str()
                )));
            }
        }
        Ok(())
    }

    /// The safety code of the shared space's current membership; with `confirm`,
    /// records that the user compared it in person and it matched.
    pub fn safety(&mut self, confirm: bool) -> Result<Safety, DeviceError> {
        self.confirm_safety(confirm.then_some(None))
    }

    /// The shared space's safety code; with `confirm`, records that the user compared it
    /// in person and it matched. A code given with the confirmation (`Some(Some(code))`:
    /// the one the person was shown) must still be the space's: a device that joined
    /// since it was shown is not confirmed along with it.
    pub fn confirm_safety(&mut self, confirm: Option<Option<&str>>) -> Result<Safety, DeviceError> {
        let rec = self.space(SpaceKind::Shared)?;
        let state = crate::sync::fold_state(&self.store, &rec.id)?;
        let code = crate::verify::safety_code(&state).ok_or(DeviceError::NotSynced)?;
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        if let Some(Some(shown)) = confirm {
            let (typed, expected) = (digits(shown), digits(&code));
            // A code of another length, or with letters, is a typo: not said to be a
            // change of the space (nor answered with the code to paste back).
            let letters = shown.chars().any(char::is_alphabetic);
            if typed.len() != expected.len() || letters {
                return Err(DeviceError::SafetyCodeMalformed {
                    got: typed.len(),
                    expected: expected.len(),
                });
            }
            if typed != expected {
                return Err(DeviceError::SafetyCodeChanged(code));
            }
        }
        let confirm = confirm.is_some();
        if confirm {
            // A device no longer in the space has no one left to vouch for there.
            self.ensure_member(SpaceKind::Shared)?;
            // The code vouches for the partner's devices: with none there, it vouches for
            // nothing (and "Recorded" would say otherwise).
            match self.partner()? {
                crate::app::Partner::Here(_) => {}
                crate::app::Partner::Gone(name) => {
                    return Err(DeviceError::NoPartnerToCompare(Some(name)));
                }
                crate::app::Partner::NotYet => return Err(DeviceError::NoPartnerToCompare(None)),
            }
            self.store
                .confirm_verified(&rec.id, &code, &crate::verify::members(&state))?;
        }
        let verified = self.store.verified(&rec.id)?;
        Ok(Safety {
            verified: state.members().keys().all(|d| verified.contains(d)),
            code,
            devices: state.members().len(),
            confirmed: confirm,
        })
    }

    /// Members of the shared space the user has not verified yet (other than this
    /// device), with their names.
    pub fn unverified_devices(&mut self) -> Result<Vec<UnverifiedDevice>, DeviceError> {
        let rec = self.space(SpaceKind::Shared)?;
        // Nothing is left to verify in a space this device departed.
        if self.store.departed(&rec.id)?.is_some() {
            return Ok(Vec::new());
        }
        let state = crate::sync::fold_state(&self.store, &rec.id)?;
        let names = self.shared_names()?;
        self.unverified_in(&rec.id, &state, &names)
    }

    /// The members of a space's folded `state` not verified yet, named from `names`
    /// (for a caller that holds both already, as `status` does).
    pub(super) fn unverified_in(
        &self,
        space: &crate::event::SpaceId,
        state: &crate::membership::SpaceState,
        names: &std::collections::BTreeMap<String, String>,
    ) -> Result<Vec<UnverifiedDevice>, DeviceError> {
        let verified = self.store.verified(space)?;
        let me = self.me.device_key();
        Ok(state
            .members()
            .iter()
            .filter(|(k, _)| **k != me && !verified.contains(k))
            .map(|(k, m)| {
                let person = hex::encode(m.person);
                UnverifiedDevice {
                    device: hex::encode(k),
                    name: names.get(&person).cloned(),
                    person,
                }
            })
            .collect())
    }
}
