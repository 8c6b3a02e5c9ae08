//! The whole view of each space that a long-running process (`duet app`) keeps between
//! reads, so that showing a page costs what the page computes, not a read of every
//! rating of the history.
//!
//! A kept view is used only while the space's read-model tables are at the heads they
//! were at when it was read (`rm_state`, written in the same transaction as the tables):
//! any change stored since, by this process, another one or a pull, makes the next read
//! go to the tables again. One-shot commands do not keep views (the copy would only cost).

use std::sync::Arc;

use crate::event::SpaceId;
use crate::readmodel::View;

/// At most one view per space (a device has two spaces), as written and as shown.
#[derive(Debug, Default)]
pub(crate) struct ViewCache {
    /// Whether this process keeps views at all.
    pub(crate) on: bool,
    kept: Vec<(SpaceId, Vec<u8>, View)>,
    /// The views as reading commands show them (corrections applied, own seals opened),
    /// shared rather than copied for each page.
    shown: Vec<(SpaceId, Vec<u8>, Arc<View>)>,
}

impl ViewCache {
    /// The view of `space` if it was kept at the tables' state `key`.
    pub(crate) fn get(&self, space: &SpaceId, key: &[u8]) -> Option<View> {
        self.kept
            .iter()
            .find(|(s, k, _)| s == space && k.as_slice() == key)
            .map(|(_, _, v)| v.clone())
    }

    /// Keeps `view` as the view of `space` at `key` (when this process keeps views).
    pub(crate) fn keep(&mut self, space: SpaceId, key: Vec<u8>, view: &View) {
        if !self.on {
            return;
        }
        self.kept.retain(|(s, _, _)| *s != space);
        self.kept.push((space, key, view.clone()));
    }

    /// The view of `space` as shown, if it was kept at the tables' state `key`.
    pub(crate) fn shown(&self, space: &SpaceId, key: &[u8]) -> Option<Arc<View>> {
        self.shown
            .iter()
            .find(|(s, k, _)| s == space && k.as_slice() == key)
            .map(|(_, _, v)| Arc::clone(v))
    }

    /// Keeps `view` as the view of `space` as shown at `key` (when this process keeps
    /// views).
    pub(crate) fn keep_shown(&mut self, space: SpaceId, key: Vec<u8>, view: &Arc<View>) {
        if !self.on {
            return;
        }
        self.shown.retain(|(s, _, _)| *s != space);
        self.shown.push((space, key, Arc::clone(view)));
    }
}
