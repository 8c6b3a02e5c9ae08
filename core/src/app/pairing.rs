//! Pairing and reading the joint record: making an invite and announcing it to the
//! relay, joining with a code (undone when the relay refuses it), the joint history and
//! the progress figures. The command line and the app call the same operations.

use std::path::Path;

use crate::app::RevokeTarget;
use crate::clock::Clock;
use crate::device::{Device, DeviceError};
use crate::event::SpaceId;
use crate::history::{HistoryEvent, HistoryQuery};
use crate::invite::{DeviceCode, InviteCode};
use crate::progress::Progress;
use crate::readmodel::Parts;
use crate::store::SpaceKind;
use crate::sync::{SyncError, SyncReport, Transport, TransportError};

use super::pairing_errors::not_sent;
pub use super::pairing_errors::{InviteError, JoinError};

/// A device that joined with a code and synced once.
#[derive(Debug)]
pub struct Joined {
    /// The new device.
    pub device: Device,
    /// The shared space it joined.
    pub space: SpaceId,
    /// What the first sync did, per space.
    pub reports: Vec<(SpaceKind, SyncReport)>,
    /// The first sync's failure after the shared space's join went through (the relay
    /// refused to create this person's personal space, say): joined, and a later sync
    /// finishes the rest.
    pub unfinished: Option<DeviceError>,
    /// Where the device of an earlier join the relay refused for good was set aside,
    /// when its person had written on it meanwhile (a private reflection while the
    /// relay was out of reach, say).
    pub set_aside: Option<std::path::PathBuf>,
}

/// A home that already joined `space` (an earlier `duet join` with the code, stopped
/// before its sync finished, or run to the end) is that device again: the same join
/// finishes with a sync instead of being refused as a home set up already (the advice
/// to use another home would spend the partner's invite on nothing). A home whose whole
/// join the relay refused for good joined nothing: it is given up and set up again with
/// the new code, whatever space that code is for; given up by deleting it, or, when its
/// person wrote on it meanwhile, by setting it aside in a folder of the home (its path).
fn joining_already(
    set_up: impl Fn() -> Result<Device, DeviceError>,
    home: &Path,
    space: SpaceId,
    clock: Clock,
) -> Result<(Device, Option<std::path::PathBuf>), JoinError> {
    let dev = match set_up() {
        Err(DeviceError::Store(crate::store::StoreError::AlreadyInitialised(name))) => {
            let refused = || {
                JoinError::Setup(DeviceError::Store(
                    crate::store::StoreError::AlreadyInitialised(name.clone()),
                ))
            };
            let mut dev = Device::open_with(home, clock).map_err(|_| refused())?;
            if dev.joined_nothing_for_good().map_err(JoinError::Setup)? {
                if dev.wrote_anything().map_err(JoinError::Setup)? {
                    let aside = dev.set_home_aside().map_err(JoinError::Setup)?;
                    return Ok((set_up().map_err(JoinError::Setup)?, Some(aside)));
                }
                let db = dev.store.path().to_path_buf();
                drop(dev);
                // A watcher left running on it would remove the new store's log; none
                // opens it while its files go.
                let deleting = crate::store::OpenLock::to_move(home, crate::store::MOVE_WAIT)
                    .ok()
                    .flatten();
                if deleting.is_none() || crate::store::in_use(&db) {
                    return Err(JoinError::Setup(DeviceError::HomeInUse(home.into())));
                }
                remove_store(&db);
                drop(deleting);
                return Ok((set_up().map_err(JoinError::Setup)?, None));
            }
            match dev.space(SpaceKind::Shared) {
                Ok(rec) if rec.id == space => dev,
                _ => return Err(refused()),
            }
        }
        other => other.map_err(JoinError::Setup)?,
    };
    Ok((dev, None))
}

/// Deletes the store at `db` with its log (its files closed first).
fn remove_store(db: &Path) {
    for file in crate::store::files_of(db) {
        let _ = std::fs::remove_file(file);
    }
}

/// A join refused for good at its first sync, as the relay's refusal it carries (which
/// gives the device up, [`JoinError::Refused`]); any other failure as it is.
fn relay_refusal(e: DeviceError) -> DeviceError {
    match e {
        DeviceError::JoinRefused {
            refusal: Some(refused),
            ..
        } => {
            let (status, body) = *refused;
            DeviceError::Sync(SyncError::Transport(TransportError::Refused {
                status,
                body,
            }))
        }
        e => e,
    }
}

/// The shared space's invite whose key this secret makes, as `dev` holds it (none when
/// it cannot be read).
fn shared_invite(dev: &Device, secret: [u8; 32]) -> Option<crate::membership::Invite> {
    let key = crate::identity::keypair_from_seed(secret).1;
    let rec = dev.space(SpaceKind::Shared).ok()?;
    let state = crate::sync::fold_state(&dev.store, &rec.id).ok()?;
    state.invites().get(&key).cloned()
}

/// Whether the partner invite with this secret was made by the person of `dev` (a home
/// set up already that tries its own code).
fn made_it(dev: &Device, secret: [u8; 32]) -> bool {
    shared_invite(dev, secret).is_some_and(|inv| inv.by == Some(dev.me.person()))
}

/// Whether a name typed at a join is the device code's person's (case and spaces
/// around it aside).
fn same_name(typed: &str, code_name: &str) -> bool {
    typed.trim().to_lowercase() == code_name.trim().to_lowercase()
}

/// Whether `dev` joined the shared space with the invite of this secret.
fn joined_with(dev: &Device, secret: [u8; 32]) -> bool {
    shared_invite(dev, secret).is_some_and(|inv| inv.joined == Some(dev.me.device_key()))
}

impl Device {
    /// Makes a single-use partner invite valid for `ttl_ms` and announces it to the
    /// relay, failing when the relay did not take it (the partner could not use it).
    pub fn invite_partner(
        &mut self,
        transport: &dyn Transport,
        ttl_ms: i64,
    ) -> Result<InviteCode, InviteError> {
        self.news.clear();
        let code = self.invite(ttl_ms).map_err(InviteError::Make)?;
        let refused = match self.sync_aside(transport) {
            // The shared space, the only one the partner's join needs, went through
            // (the relay refused to create the personal space, say): the code works.
            Err(_) if self.all_sent(&[SpaceKind::Shared]) => return Ok(code),
            Err(e) => not_sent(code.encode(), code.expires_at, e),
            // A code the relay does not know (e.g. the shared space could not be created
            // there without a creation token) would only fail on the partner's side.
            Ok(reports) => match reports
                .into_iter()
                .find_map(|(k, r)| (k == SpaceKind::Shared).then_some(r.push_refused).flatten())
            {
                Some(w) => InviteError::Refused(w),
                None if !self.all_sent(&[SpaceKind::Shared]) => InviteError::Refused(unkept()),
                // The sync may have learnt that the partner joined meanwhile (with
                // another code): this one could then admit no one.
                None => match self.ensure_partner_slot() {
                    Ok(()) => return Ok(code),
                    Err(e) => {
                        let _ = self.revoke_invites(&RevokeTarget::Code(code.encode()));
                        return Err(InviteError::Make(e));
                    }
                },
            },
        };
        Err(self.withdraw_refused(code.encode(), refused))
    }

    /// Whether the relay has everything this device wrote in the spaces of `kinds`
    /// (false when that cannot be read).
    fn all_sent(&self, kinds: &[SpaceKind]) -> bool {
        kinds.iter().all(|kind| {
            self.store
                .space(*kind)
                .and_then(|rec| self.store.has_unsent(&rec.id))
                .is_ok_and(|unsent| !unsent)
        })
    }

    /// A code whose invite the relay refused is never shown: it is withdrawn here, so
    /// that it does not become a live invite once the relay takes this device's events
    /// (the creation token given later). A code not sent yet stays: it is shown.
    fn withdraw_refused(&mut self, code: String, e: InviteError) -> InviteError {
        if matches!(e, InviteError::Refused(_)) {
            let _ = self.revoke_invites(&RevokeTarget::Code(code));
        }
        e
    }

    /// Makes a one-time code that adds another device of this person, valid for
    /// `ttl_ms`, and announces it to the relay.
    pub fn invite_own_device(
        &mut self,
        transport: &dyn Transport,
        ttl_ms: i64,
    ) -> Result<DeviceCode, InviteError> {
        // The code carries the keys this device holds: a removal it has not read yet
        // (made on another device while this one was on but not syncing) left the new
        // device a member without the space's key, unable to read or send, for good.
        // Read first (offline, the code is made as before and goes out with the next
        // sync), and a removal read by the sync that sends the code withdraws it.
        self.news.clear();
        let _ = self.sync_aside(transport);
        let keys = self.newest_epochs();
        let code = self.add_device(ttl_ms).map_err(InviteError::Make)?;
        match self.sync_aside(transport) {
            // A half the relay refused (withdrawn by the sync, or left to withdraw here):
            // the code would admit no one.
            Ok(reports) => match reports.into_iter().find_map(|(_, r)| r.push_refused) {
                Some(w) => Err(self.withdraw_refused(code.encode(), InviteError::Refused(w))),
                None if !self.all_sent(&[SpaceKind::Shared, SpaceKind::Personal]) => {
                    Err(self.withdraw_refused(code.encode(), InviteError::Refused(unkept())))
                }
                None if self.newest_epochs() != keys => {
                    Err(self.withdraw_refused(code.encode(), InviteError::Refused(rekeyed())))
                }
                None => Ok(code),
            },
            Err(e) => {
                let e = not_sent(code.encode(), code.expires_at, e);
                Err(self.withdraw_refused(code.encode(), e))
            }
        }
    }

    /// The device of `home` set up to join with `code` (or the one set up before,
    /// finishing its join), with the space the code is for and its invite's secret.
    fn joining_with(
        home: &Path,
        code: &str,
        name: Option<&str>,
        clock: Clock,
    ) -> Result<(Device, SpaceId, [u8; 32], Option<std::path::PathBuf>), JoinError> {
        crate::device::ensure_no_stopped_restore(home).map_err(JoinError::Setup)?;
        if crate::invite::is_device_code(code) {
            let code = DeviceCode::decode(code).map_err(JoinError::Code)?;
            let other = |n: &&str| !n.trim().is_empty() && !same_name(n, &code.name);
            if name.filter(other).is_some() {
                // On one line: the name is whoever made the code's words.
                let name = crate::names::one_line(&code.name);
                return Err(JoinError::DeviceCodeOfAnother(name));
            }
            let set_up = || Device::join_own_with(home, &code, clock);
            let (dev, aside) = joining_already(set_up, home, code.shared.space, clock)?;
            return Ok((dev, code.shared.space, code.shared.secret, aside));
        }
        let code = InviteCode::decode(code).map_err(JoinError::Code)?;
        let name = name
            .filter(|n| !n.trim().is_empty())
            .ok_or(JoinError::NameRequired)?;
        let set_up = || Device::join_with(home, &code, name, clock);
        let (dev, aside) = joining_already(set_up, home, code.space, clock)?;
        if made_it(&dev, code.secret) {
            return Err(JoinError::OwnInvite);
        }
        Ok((dev, code.space, code.secret, aside))
    }

    /// Joins with a code in `home`: a partner's invite (with `name`) or a device code
    /// from `duet device add`; then the first sync. When the relay refuses the join
    /// before storing any of it, the half-made device is given up (and the home removed
    /// when this made it).
    pub fn join_code(
        home: &Path,
        code: &str,
        name: Option<&str>,
        clock: Clock,
        transport: &dyn Transport,
    ) -> Result<Joined, JoinError> {
        let home_existed = home.exists();
        let device_code = crate::invite::is_device_code(code);
        let (mut device, space, secret, set_aside) = Device::joining_with(home, code, name, clock)?;
        // A home set up before is taken only to finish its own join (its sync may learn
        // that the device was removed meanwhile, which is said first).
        let joined_before = home_existed && !device.joining().map_err(JoinError::Setup)?;
        match device.sync(transport).map_err(relay_refusal) {
            // A home set up already, whose device turns out removed (or left): the sync
            // only learnt it.
            Ok(reports) => match device.store.departed(&space).ok().flatten() {
                Some(ended) => Err(JoinError::Departed(ended.describe())),
                // The same join run again (the first was interrupted after it went
                // through): done, as the first would have said.
                None if joined_before && !joined_with(&device, secret) => {
                    Err(JoinError::AlreadyJoined)
                }
                None => Ok(Joined {
                    device,
                    space,
                    reports,
                    unfinished: None,
                    set_aside,
                }),
            },
            // The relay stored part of the join (the shared space's join, say) before it
            // refused the rest (the personal space, past its creation limit): the device
            // is a member now, so it is kept (given up, the space would hold a member
            // whose keys nobody has, and the partner could never invite again); the
            // next sync sends the rest.
            // (When that cannot be read, the device is kept too: it loses nothing.)
            Err(e)
                if device
                    .store
                    .relay_holds_own_event(&device.me.device_key())
                    .unwrap_or(true) =>
            {
                // The shared space's join went through: this person joined their partner.
                match device.joined_shared() {
                    Ok(true) if !joined_before => Ok(Joined {
                        device,
                        space,
                        reports: Vec::new(),
                        unfinished: Some(e),
                        set_aside,
                    }),
                    _ => Err(JoinError::FirstSync(e)),
                }
            }
            Err(DeviceError::Sync(SyncError::Transport(TransportError::Refused {
                status,
                body,
            }))) => {
                device.abandon(!home_existed);
                Err(JoinError::Refused {
                    status,
                    error: body.error.to_string(),
                    message: body.message,
                    device_code,
                })
            }
            Err(e) => Err(JoinError::FirstSync(e)),
        }
    }

    /// Gives up a device whose join the relay refused: its store files are deleted, and
    /// its home too when the join created it (and it is empty), so the same home can
    /// join again with a new code.
    pub fn abandon(self, remove_home: bool) {
        let db = self.store.path().to_path_buf();
        let home = db.parent().map(Path::to_path_buf);
        drop(self);
        let deleting = home.as_deref().and_then(|h| {
            crate::store::OpenLock::to_move(h, std::time::Duration::ZERO)
                .ok()
                .flatten()
        });
        remove_store(&db);
        drop(deleting);
        if let Some(home) = home.filter(|_| remove_home) {
            // The home's lock files were made with it: nothing else of it is left.
            let _ = std::fs::remove_file(home.join(crate::lock::LOCK_FILE));
            let _ = std::fs::remove_file(home.join(crate::store::OPEN_LOCK_FILE));
            let _ = std::fs::remove_dir(home);
        }
    }

    /// The names of the other people in the shared space.
    pub fn partners(&mut self) -> Result<Vec<String>, DeviceError> {
        let view = self.view_parts(SpaceKind::Shared, Parts::Goals)?;
        Ok(crate::names::shown(&view.people)
            .into_iter()
            .filter(|(id, _)| *id != self.me.person_id)
            .map(|(_, name)| name)
            .collect())
    }

    /// The partners' names (not this person's) split by whether they are still in the
    /// shared space: with a current device, or gone (every device of theirs left or was
    /// removed). A device that joins after its partner left is not told it joined "with"
    /// them.
    pub fn partners_by_presence(&mut self) -> Result<(Vec<String>, Vec<String>), DeviceError> {
        let view = self.view_parts(SpaceKind::Shared, Parts::Goals)?;
        let present = self.present_people()?;
        let me = self.me.person_id.to_string();
        let (here, gone): (Vec<_>, Vec<_>) = crate::names::shown(&view.people)
            .into_iter()
            .filter(|(id, _)| *id != me)
            .partition(|(id, _)| present.contains(id));
        let names = |v: Vec<(String, String)>| v.into_iter().map(|(_, n)| n).collect();
        Ok((names(here), names(gone)))
    }

    /// The ids of the people with a current device in the shared space (this person
    /// included while this device is in it).
    pub fn present_people(&self) -> Result<std::collections::BTreeSet<String>, DeviceError> {
        let rec = self.space(SpaceKind::Shared)?;
        let state = crate::sync::fold_state(&self.store, &rec.id)?;
        Ok(state
            .members()
            .values()
            .map(|m| hex::encode(m.person))
            .collect())
    }

    /// The joint history of the shared space as asked; `query.goal` may be what the
    /// user typed (an id prefix or an exact title).
    pub fn history(&mut self, mut query: HistoryQuery) -> Result<Vec<HistoryEvent>, DeviceError> {
        if let Some(q) = query.goal.take() {
            query.goal = Some(self.resolve_goal(&q)?);
        }
        // A name no one of the space has is a typo, not an empty history.
        if let Some(name) = query.by.take() {
            let people = self.view_parts(SpaceKind::Shared, Parts::Goals)?.people;
            query.by = Some(crate::names::find(&people, &name)?);
        }
        let rec = self.space(SpaceKind::Shared)?;
        let me = self.me.clone();
        let mut events = crate::history::timeline(&mut self.store, &rec.id, &me, &query)?;
        let never_sent = self.never_sent()?;
        let now = self.now();
        for e in &mut events {
            e.never_sent = never_sent.contains(&e.change);
            e.dated_ahead = crate::progress::dated_ahead(e.at, now);
        }
        Ok(events)
    }

    /// Both partners' GAS progress on the active goals (or on the one goal named), as a
    /// bounded summary ([`Progress::bounded`]). For the active goals it is read from the
    /// summary the read models keep, with this person's own sealed ratings counted in
    /// (they see their own blind levels); computed from every rating when those do not
    /// come after everything the summary counted, or for one goal.
    pub fn progress(&mut self, goal: Option<&str>) -> Result<Progress, DeviceError> {
        let kept = match goal {
            None => self.kept_progress()?,
            Some(_) => None,
        };
        let mut p = match kept {
            Some(p) => p,
            None => {
                let view = self.view(SpaceKind::Shared)?;
                let only = goal
                    .map(|q| super::goals::resolve_in(&view.goals, q))
                    .transpose()?
                    .map(|g| vec![g]);
                let mut p = crate::progress::progress(&view, only.as_deref()).bounded();
                p.me = self.me.person_id.to_string();
                p
            }
        };
        self.mark_opening(&mut p)?;
        p.mark_dated_ahead(self.now());
        Ok(p)
    }

    /// Marks the partner's sealed ratings whose time has come (see
    /// [`crate::progress::PartnerSeries::opening`]), deciding as their device will: from
    /// the blind rules' view of the rounds, seals and ratings in open rounds. Read only
    /// while a partner's rating waits.
    fn mark_opening(&mut self, p: &mut Progress) -> Result<(), DeviceError> {
        let waits = |s: &crate::progress::PartnerSeries| s.sealed && s.person != p.me;
        if !p.goals.iter().flat_map(|g| &g.partners).any(waits) {
            return Ok(());
        }
        let seals = self.opening_seals()?;
        let opening: std::collections::BTreeSet<(&str, &str)> = seals
            .iter()
            .map(|s| (s.goal.as_str(), s.rater.as_str()))
            .collect();
        let gone = self.partner_gone()?;
        for g in &mut p.goals {
            for s in &mut g.partners {
                let theirs = s.sealed && s.person != p.me;
                s.left = theirs && gone;
                s.opening =
                    theirs && !gone && opening.contains(&(g.goal.as_str(), s.person.as_str()));
            }
        }
        Ok(())
    }

    /// The other partner's ratings still sealed whose time has come (they have been
    /// answered in the round, or the round is over): their device reveals each when it
    /// next syncs. Decided as that device will, from the blind rules' view.
    pub fn opening_seals(&mut self) -> Result<Vec<crate::model::Seal>, DeviceError> {
        let now = self.now();
        let me = self.me.person_id.to_string();
        let view = self.ritual_view(None)?;
        Ok(crate::rituals::opening_seals(&view, &me, now)
            .into_iter()
            .cloned()
            .collect())
    }

    /// The kept summary with this person's own waiting seals counted in; `None` when
    /// there is none or a seal does not come after what it counted.
    fn kept_progress(&mut self) -> Result<Option<Progress>, DeviceError> {
        let rec = self.store.space(SpaceKind::Shared)?;
        let Some((mut kept, seals)) =
            self.store
                .progress_summary(&rec.id, &self.me, &self.me.person_id)?
        else {
            return Ok(None);
        };
        let mut own = crate::view::View {
            seals,
            ..Default::default()
        };
        self.open_own_seals(&mut own)?;
        if !own.ratings.iter().all(|r| kept.count_in(r)) {
            return Ok(None);
        }
        kept.progress.me = self.me.person_id.to_string();
        Ok(Some(kept.progress))
    }
}

/// A sync that went through with the code's event still unsent: the relay answered that
/// it took it and does not hold it (it lied, or lost it at once). The code is not shown:
/// it would admit no one, and the partner would learn it only at their join.
impl Device {
    /// A sync inside another operation: its reports are kept for the caller to say
    /// ([`Device::take_news`]) as well as returned.
    fn sync_aside(
        &mut self,
        transport: &dyn Transport,
    ) -> Result<Vec<(SpaceKind, crate::sync::SyncReport)>, DeviceError> {
        let reports = self.sync(transport)?;
        self.news.extend(reports.iter().cloned());
        Ok(reports)
    }

    /// Each space's newest key epoch this device holds (none for a space it cannot read).
    fn newest_epochs(&self) -> Vec<Option<u32>> {
        [SpaceKind::Shared, SpaceKind::Personal]
            .into_iter()
            .map(|k| {
                let space = self.store.space(k).ok()?;
                self.store.epoch_keys(&space.id).ok()?.keys().max().copied()
            })
            .collect()
    }
}

/// A device was removed while a code was made: the code holds the keys from before.
fn rekeyed() -> crate::advice::Warning {
    crate::advice::Warning::then(
        "a device was removed while the code was made, so the code holds the keys from \
         before the removal and would leave the new device unable to read: it is withdrawn",
        crate::advice::NextStep::MakeCodeAgain,
    )
}

fn unkept() -> crate::advice::Warning {
    crate::advice::Warning::then(
        "the relay answered that it took the code but does not hold it (if it happens again \
         after a sync, the relay is misbehaving: tell its operator)",
        crate::advice::NextStep::SyncAgain,
    )
}
