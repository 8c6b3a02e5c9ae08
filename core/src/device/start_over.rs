//! Starting over in the same home: this device's store is set aside in a folder inside
//! the home (nothing is deleted: `duet --home FOLDER` still reads it), and the home can
//! then be set up anew or join with a code. Offered where going on in the home cannot
//! help: the device left its shared space or was removed from it, the partner is gone
//! from it, or nobody else ever joined it (set up with "start new" where the partner's
//! code was meant).

use std::path::PathBuf;

use super::{Device, DeviceError};
use crate::lock::HomeLock;
use crate::store::{SpaceKind, StoreError};

/// Why a home may start over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOver {
    /// This device left its shared space or was removed from it: it can never sync
    /// there again.
    Departed,
    /// Nobody but this device was ever in the shared space.
    Alone,
    /// The partner is no longer in the shared space (left, or every device of theirs
    /// was removed): sharing Duet with someone else starts anew.
    PartnerGone,
}

/// What this device signed that the relay has not acknowledged yet, in both spaces:
/// events a sync may still deliver (made while a member, a leave among them), which a
/// store set aside never sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unsent {
    /// How many events and changes not yet in one (in a space still this device's: a
    /// space it left or was removed from takes no new change).
    pub events: usize,
    /// Whether this device's leave is among them (the partner would still count this
    /// person in the space).
    pub leave: bool,
}

impl Unsent {
    /// What is unsent and what that means for the partner, in words.
    pub fn describe(&self) -> String {
        let s = |n: usize| if n == 1 { "" } else { "s" };
        if self.leave {
            let others = self.events.saturating_sub(1);
            let and = if others == 0 {
                String::new()
            } else {
                format!(" (and {others} other change{} of this device)", s(others))
            };
            format!(
                "this device's leave{and} has not reached the relay yet: your partner would go \
                 on seeing you in the shared space, and could invite nobody else"
            )
        } else {
            format!(
                "{} change{} of this device {} not reached the relay yet: your partner (and your \
                 other devices) would never see {}",
                self.events,
                s(self.events),
                if self.events == 1 { "has" } else { "have" },
                if self.events == 1 { "it" } else { "them" },
            )
        }
    }
}

/// The start of the name of a folder a store is set aside in (the UTC time follows).
pub const SET_ASIDE_PREFIX: &str = "set-aside-";

impl Device {
    /// Why this home may start over, or `None` while it is a device of a shared space
    /// with someone else in it (there, leaving or removing it comes first).
    pub fn may_start_over(&self) -> Result<Option<StartOver>, DeviceError> {
        let shared = self.store.space(SpaceKind::Shared)?;
        if self.store.departed(&shared.id)?.is_some() {
            return Ok(Some(StartOver::Departed));
        }
        let state = crate::sync::fold_state(&self.store, &shared.id)?;
        if state.persons_ever().len() <= 1 {
            return Ok((state.all_devices().len() <= 1).then_some(StartOver::Alone));
        }
        let me = self.me.person_id.bytes();
        let partner_here = state.members().values().any(|m| m.person != me);
        Ok((!partner_here).then_some(StartOver::PartnerGone))
    }

    /// What of this device has not reached the relay yet ([`Unsent`]), when it starts
    /// over for `why`: starting over first asks for a sync. Nothing for a space nobody
    /// else was ever in: what it never sent, nobody misses.
    pub fn unsent_before_starting_over(&self, why: StartOver) -> Result<Unsent, DeviceError> {
        if why == StartOver::Alone {
            return Ok(Unsent::default());
        }
        self.unsent()
    }

    /// What of this device has not reached the relay yet: events not acknowledged, and
    /// changes not yet in an event (in a space this device is still in).
    pub fn unsent(&self) -> Result<Unsent, DeviceError> {
        let mut unsent = Unsent::default();
        for kind in [SpaceKind::Shared, SpaceKind::Personal] {
            let rec = self.store.space(kind)?;
            let kinds = self.store.unacked_kinds(&rec.id)?;
            unsent.events += kinds.len();
            if self.store.departed(&rec.id)?.is_none() {
                unsent.events += usize::try_from(self.store.pending_count(&rec.id)?).unwrap_or(0);
            }
            unsent.leave |= kinds
                .iter()
                .any(|k| k == crate::event::Kind::Leave.as_str());
        }
        Ok(unsent)
    }

    /// Sets this device's store aside in a new folder of its home (moved, not copied:
    /// the database and its log together) and gives the folder. The home's write lock
    /// is held while the files move, so no other `duet` process writes meanwhile, and
    /// nothing moves while another process has the store open, nor does one open it
    /// while they move (the open lock, [`crate::store::OpenLock`];
    /// [`DeviceError::HomeInUse`]): the caller closes its own others first.
    pub fn set_home_aside(self) -> Result<PathBuf, DeviceError> {
        let db = self.store.path().to_path_buf();
        let io = |path: &std::path::Path| {
            let path = path.to_path_buf();
            move |cause| DeviceError::from(StoreError::Io { path, cause })
        };
        let home = db.parent().map(PathBuf::from).unwrap_or_default();
        let when = chrono::DateTime::from_timestamp_millis(self.clock.now())
            .unwrap_or_default()
            .format("%Y-%m-%dT%H-%M-%S%.3fZ");
        let aside = home.join(format!("{SET_ASIDE_PREFIX}{when}"));
        let lock = HomeLock::open(&home).map_err(StoreError::from)?;
        let _held = lock.acquire().map_err(StoreError::from)?;
        drop(self);
        // Held until the files have moved: no process opens the store meanwhile (one
        // that opened it first keeps it from moving).
        let lock_file = home.join(crate::store::OPEN_LOCK_FILE);
        let moving = crate::store::OpenLock::to_move(&home, crate::store::MOVE_WAIT)
            .map_err(io(&lock_file))?;
        if moving.is_none() || crate::store::in_use(&db) {
            return Err(DeviceError::HomeInUse(home));
        }
        crate::store::private::create_dir(&aside, false).map_err(io(&aside))?;
        // The database goes first: a log left without it is named as what is left of a
        // store (not taken for a new home), where a database moved without its log
        // would be read as it was at its last checkpoint.
        for (i, from) in crate::store::files_of(&db).into_iter().enumerate() {
            let Some(name) = from.file_name() else {
                continue;
            };
            match std::fs::rename(&from, aside.join(name)) {
                Ok(()) => {}
                // Closed last, SQLite folded its log into the database and removed it.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && i > 0 => {}
                Err(e) => return Err(io(&from)(e)),
            }
        }
        Ok(aside)
    }
}

/// The folders of `home` that hold a store set aside, by name, oldest first.
pub fn set_aside_in(home: &std::path::Path) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(home)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join(crate::store::DB_FILE).is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name.starts_with(SET_ASIDE_PREFIX))
        .collect();
    found.sort();
    found
}
