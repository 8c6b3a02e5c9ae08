//! The documents a process keeps between writes and syncs (`duet sync --watch` and
//! `duet app` above all), so that a write there costs what the change costs, not a load
//! of the whole history.
//!
//! A kept document is used only while its space's newest change row is the one it was
//! kept at: any change of the space stored since (a pull, another process's write) makes
//! the next write or sync load the document again. Rows of `changes` are only ever added
//! (a repair that deletes some runs when a store is opened, before anything is kept).

use crate::doc::SpaceDoc;
use crate::event::SpaceId;

/// At most one document per space (a device has two spaces).
#[derive(Debug, Default)]
pub(crate) struct DocCache {
    kept: Vec<(SpaceId, i64, SpaceDoc)>,
}

impl DocCache {
    /// The document of `space` if it was kept at `mark` (the space's newest change row);
    /// taken out, so that a write that fails leaves nothing half-changed behind.
    pub(crate) fn take(&mut self, space: &SpaceId, mark: i64) -> Option<SpaceDoc> {
        let (kept_at, doc) = self.take_marked(space)?;
        (kept_at == mark).then_some(doc)
    }

    /// The document of `space` with the mark it was kept at, taken out: for a caller that
    /// checks the mark itself, later, under the home's write lock (a sync).
    pub(crate) fn take_marked(&mut self, space: &SpaceId) -> Option<(i64, SpaceDoc)> {
        let at = self.kept.iter().position(|(s, _, _)| s == space)?;
        let (_, kept_at, doc) = self.kept.swap_remove(at);
        Some((kept_at, doc))
    }

    /// Whether the document of `space` is kept at `mark` (a write there costs what the
    /// change costs).
    pub(crate) fn holds(&self, space: &SpaceId, mark: i64) -> bool {
        self.kept.iter().any(|(s, at, _)| s == space && *at == mark)
    }

    /// Keeps `doc` as the document of `space` at `mark`.
    pub(crate) fn keep(&mut self, space: SpaceId, mark: i64, doc: SpaceDoc) {
        self.kept.retain(|(s, _, _)| *s != space);
        self.kept.push((space, mark, doc));
    }
}
