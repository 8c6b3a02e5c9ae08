//! Pairing and reading the joint record: joining from a code (undone when the relay
//! refuses it), the joint history and the progress figures.

use std::path::Path;

use crate::device::{Device, DeviceError};
use crate::history::{HistoryEvent, HistoryQuery};
use crate::progress::Progress;
use crate::readmodel::Parts;
use crate::store::SpaceKind;

impl Device {
    /// Gives up a device whose join the relay refused: its store files are deleted, and
    /// its home too when the join created it (and it is empty), so the same home can
    /// join again with a new code.
    pub fn abandon(self, remove_home: bool) {
        let db = self.store.path().to_path_buf();
        let home = db.parent().map(Path::to_path_buf);
        drop(self);
        for suffix in ["", "-wal", "-shm"] {
            let mut p = db.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(std::path::PathBuf::from(p));
        }
        if let Some(home) = home.filter(|_| remove_home) {
            let _ = std::fs::remove_dir(home);
        }
    }

    /// The names of the other people in the shared space.
    pub fn partners(&mut self) -> Result<Vec<String>, DeviceError> {
        let view = self.view_parts(SpaceKind::Shared, Parts::Goals)?;
        Ok(view
            .people
            .into_iter()
            .filter(|(id, _)| *id != self.me.person_id)
            .map(|(_, p)| p.name)
            .collect())
    }

    /// The joint history of the shared space as asked; `query.goal` may be what the
    /// user typed (an id prefix or an exact title).
    pub fn history(&mut self, mut query: HistoryQuery) -> Result<Vec<HistoryEvent>, DeviceError> {
        if let Some(q) = query.goal.take() {
            query.goal = Some(self.resolve_goal(&q)?);
        }
        let rec = self.space(SpaceKind::Shared)?;
        let me = self.me.clone();
        Ok(crate::history::timeline(
            &mut self.store,
            &rec.id,
            &me,
            &query,
        )?)
    }

    /// Both partners' GAS progress on the active goals (or on the one goal named).
    pub fn progress(&mut self, goal: Option<&str>) -> Result<Progress, DeviceError> {
        let view = self.view(SpaceKind::Shared)?;
        let only = goal
            .map(|q| super::goals::resolve_in(&view.goals, q))
            .transpose()?
            .map(|g| vec![g]);
        let mut p = crate::progress::progress(&view, only.as_deref());
        p.me = self.me.person_id.to_string();
        Ok(p)
    }
}
