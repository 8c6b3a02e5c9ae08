//! What a check-in walks through: the active goals, each with its five level
//! descriptions, the steps the partner completed since this person last rated it, and
//! whether the partner has already rated it in the open round (never their level).

use std::collections::HashSet;

use serde::Serialize;

use super::records::iso;
use crate::device::{Device, DeviceError};
use crate::model::{Rating, Seal};
use crate::rituals::{
    DEFAULT_ROUND_MS, answered_now, effective_ratings, open_rounds, other_rated, rated_now,
    seen_by_closing, waiting_seals,
};
use crate::store::SpaceKind;
use crate::vocab::Status;

/// The open check-in round.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoundInfo {
    /// Round id.
    pub id: String,
    /// When it opened (RFC 3339 UTC).
    pub opened_at: String,
    /// When it closes by itself.
    pub ends_at: String,
}

/// One goal of a check-in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckinGoal {
    /// Goal id.
    pub id: String,
    /// Title.
    pub title: String,
    /// The level descriptions, +2 first, as (level, text); "" when not written.
    pub levels: Vec<(i8, String)>,
    /// Steps the partner completed since this person last rated the goal.
    pub partner_steps: Vec<String>,
    /// Whether the partner has rated it in the open round (sealed or not).
    pub partner_rated: bool,
    /// Whether this person has rated it in the open round; with the partner gone and no
    /// round open, in the last round's length (a week): a check-in alone still moves
    /// from goal to goal, and ends.
    pub rated: bool,
    /// Whether rating it now answers a blind rating of the partner's, which then shows:
    /// the rating is made in the clear, in that round.
    pub answers: bool,
    /// Whether rating it now is blind (sealed until the partner rates): the partner has
    /// no rating of it this rating would answer, in the clear or sealed.
    pub blind: bool,
}

/// A check-in's plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckinPlan {
    /// The open round, if one is open.
    pub round: Option<RoundInfo>,
    /// The active goals.
    pub goals: Vec<CheckinGoal>,
}

impl Device {
    /// The active goals to rate, with what helps rate them.
    pub fn checkin_plan(&mut self) -> Result<CheckinPlan, DeviceError> {
        let now = self.now();
        let me = self.me.person_id.to_string();
        let view = self.raw_view(SpaceKind::Shared)?;
        let open = open_rounds(&view, now);
        let ratings = effective_ratings(&view);
        let seals = waiting_seals(&view);
        let open_ids: HashSet<&str> = open.iter().map(|r| r.id.as_str()).collect();
        // Alone, ratings open no round: a check-in is the last round's length.
        let alone_since =
            (open.is_empty() && self.partner_gone()?).then(|| now.saturating_sub(DEFAULT_ROUND_MS));
        // Who has a rating or seal standing in an open round, by goal (whether it is
        // this person's): a revealed rating taken back leaves its seal behind, which
        // still marks the round rated for the rules every device applies; its rater
        // took it back to rate again, so it is not called rated here. One pass, not
        // one per goal.
        let standing: HashSet<(&str, bool)> = ratings
            .iter()
            .filter(|r| r.round.as_deref().is_some_and(|x| open_ids.contains(x)))
            .map(|r| (r.goal.as_str(), r.rater == me))
            .chain(
                seals
                    .iter()
                    .filter(|s| open_ids.contains(s.round.as_str()))
                    .map(|s| (s.goal.as_str(), s.rater == me)),
            )
            .collect();
        let mut goals = Vec::new();
        for g in view
            .goals
            .iter()
            .filter(|g| g.status.known() == Some(Status::Active))
        {
            let my_last = last_rated(&ratings, &seals, &g.id, &me);
            let stands = |mine: bool| standing.contains(&(g.id.as_str(), mine));
            let rated = (stands(true) && rated_now(&view, &g.id, now, |w| w == me))
                || alone_since.is_some_and(|since| my_last >= since);
            // As `rate` decides: a partner's seal waiting in the round this rating would
            // answer (not one shown already, as when the partner left).
            let answered = answered_now(&view, &me, &g.id, now);
            let answers = answered.as_ref().is_some_and(|round| {
                seals
                    .iter()
                    .any(|s| s.goal == g.id && s.rater != me && s.round == *round)
            });
            let blind = answered.is_none() && seen_by_closing(&view, &me, &g.id).is_none();
            goals.push(CheckinGoal {
                id: g.id.clone(),
                title: g.title.as_str().to_string(),
                levels: level_texts(g),
                partner_steps: super::records::sorted_steps(g)
                    .into_iter()
                    .filter(|s| s.done_by.as_deref().is_some_and(|d| d != me))
                    .filter(|s| s.done_at.is_some_and(|t| t > my_last))
                    .map(|s| s.text.as_str().to_string())
                    .collect(),
                partner_rated: stands(false) && other_rated(&view, &me, &g.id, now),
                rated,
                answers,
                blind,
            });
        }
        Ok(CheckinPlan {
            round: open.first().map(|r| RoundInfo {
                id: r.id.clone(),
                opened_at: iso(r.opened_at),
                ends_at: iso(r.ends_at),
            }),
            goals,
        })
    }
}

/// When `me` last rated `goal` (sealed or not); `i64::MIN` if never.
fn last_rated(ratings: &[Rating], seals: &[&Seal], goal: &str, me: &str) -> i64 {
    ratings
        .iter()
        .filter(|r| r.goal == goal && r.rater == me)
        .map(|r| r.at)
        .chain(
            seals
                .iter()
                .filter(|s| s.goal == goal && s.rater == me)
                .map(|s| s.at),
        )
        .max()
        .unwrap_or(i64::MIN)
}

/// A goal's level descriptions, +2 first, as (level, text); "" when not written.
fn level_texts(g: &crate::model::Goal) -> Vec<(i8, String)> {
    (-2i8..=2)
        .rev()
        .map(|l| {
            let text = g.levels.get(l).map(|t| t.as_str().to_string());
            (l, text.unwrap_or_default())
        })
        .collect()
}
