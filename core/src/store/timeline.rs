//! The store as the source of the joint history ([`crate::history::timeline`]): its
//! read models and event log, behind the trait the history defines, so the history
//! never depends on the store.

use super::{Store, StoreError};
use crate::event::{Event, SpaceId};
use crate::history::{
    CountedActs, HistoryPos, HistoryQuery, HistoryRow, PeopleAndGoals, RefusedRecord,
    TimelineSource,
};
use crate::identity::Identity;
use crate::readmodel::Parts;

impl TimelineSource for Store {
    type Error = StoreError;

    fn history_rows(
        &mut self,
        space: &SpaceId,
        identity: &Identity,
        q: &HistoryQuery,
        last: Option<usize>,
    ) -> Result<Vec<HistoryRow>, StoreError> {
        Store::history_rows(self, space, identity, q, last)
    }

    fn counted_acts(
        &mut self,
        space: &SpaceId,
        identity: &Identity,
    ) -> Result<CountedActs, StoreError> {
        let view = self.ritual_view(space, identity, None)?;
        Ok(CountedActs::of(&view.ratings, &view.rounds))
    }

    fn people_and_goals(
        &mut self,
        space: &SpaceId,
        identity: &Identity,
    ) -> Result<PeopleAndGoals, StoreError> {
        let view = self.view(space, identity, Parts::Goals)?;
        Ok((view.people, view.goals))
    }

    fn stored_events(&self, space: &SpaceId) -> Result<Vec<Event>, StoreError> {
        Store::stored_events(self, space)
    }

    fn refused_events(&self, space: &SpaceId) -> Result<Vec<RefusedRecord>, StoreError> {
        Store::refused_events(self, space)
    }

    fn history_first_after(
        &self,
        space: &SpaceId,
        at: i64,
    ) -> Result<Option<HistoryPos>, StoreError> {
        Store::history_first_after(self, space, at)
    }
}
