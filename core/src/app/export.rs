//! Everything of both spaces as one typed value: `duet export`, and the local app's
//! download. Read from the read models; one entity this version cannot read never stops
//! it (it is listed in `problems` with its raw content).

use std::collections::BTreeMap;

use serde::Serialize;

use super::records::{GoalRecord, RatingRecord, ReflectionRecord, SealedRecord, iso};
use crate::device::{Device, DeviceError};
use crate::readmodel::{Problem, View};
use crate::store::SpaceKind;

/// The export format's name and version.
pub const EXPORT_FORMAT: &str = "duet-export/1";

/// Who exported.
#[derive(Debug, Clone, Serialize)]
pub struct ExportMe {
    /// Display name.
    pub name: String,
    /// Person id.
    pub person: String,
    /// Hex device key.
    pub device: String,
}

/// A person's entry in a space's export.
#[derive(Debug, Clone, Serialize)]
pub struct PersonRecord {
    /// Display name.
    pub name: String,
}

/// One space's content.
#[derive(Debug, Clone, Serialize)]
pub struct SpaceExport {
    /// Space id.
    pub space: String,
    /// Person id -> person.
    pub people: BTreeMap<String, PersonRecord>,
    /// Goals.
    pub goals: Vec<GoalRecord>,
    /// Ratings.
    pub ratings: Vec<RatingRecord>,
    /// Reflections.
    pub reflections: Vec<ReflectionRecord>,
    /// Ratings still sealed (blind check-ins): who rated which goal when, not the level.
    pub sealed: Vec<SealedRecord>,
    /// Entities this version could not read, with their raw content.
    pub problems: Vec<Problem>,
    /// What this device wrote that never reached the space (its membership ended
    /// first): shown here only, never seen by the partner (shared space only).
    pub never_sent: Vec<NeverSentRecord>,
    /// The typed content, for text renderings (not part of the JSON).
    #[serde(skip)]
    pub view: View,
}

/// A change of the export's device that never reached the space, as its history says it.
#[derive(Debug, Clone, Serialize)]
pub struct NeverSentRecord {
    /// The history's kind of event (`goal_created`, `rating_given`, ...).
    pub kind: crate::history::HistoryKind,
    /// When (RFC 3339 UTC).
    pub at: String,
    /// When, in ms since the Unix epoch (for text renderings; not part of the JSON).
    #[serde(skip)]
    pub at_ms: i64,
    /// The goal concerned.
    pub goal: Option<String>,
    /// The step, rating or reflection concerned.
    pub item: Option<String>,
    /// The history's line.
    pub summary: String,
}

/// `duet export`: both spaces.
#[derive(Debug, Clone, Serialize)]
pub struct Export {
    /// Always [`EXPORT_FORMAT`].
    pub format: &'static str,
    /// When it was made (RFC 3339 UTC).
    pub exported_at: String,
    /// Who exported.
    pub me: ExportMe,
    /// The shared space.
    pub shared: SpaceExport,
    /// The personal space.
    pub personal: SpaceExport,
}

impl SpaceExport {
    /// The export of a space's content (deterministic: equal content, equal value).
    pub fn new(id: String, view: View, problems: Vec<Problem>) -> SpaceExport {
        SpaceExport {
            space: id,
            people: view
                .people
                .iter()
                .map(|(k, p)| {
                    (
                        k.clone(),
                        PersonRecord {
                            name: p.name.clone(),
                        },
                    )
                })
                .collect(),
            goals: view.goals.iter().map(GoalRecord::from).collect(),
            ratings: view.ratings.iter().map(RatingRecord::from).collect(),
            reflections: view
                .reflections
                .iter()
                .map(ReflectionRecord::from)
                .collect(),
            sealed: crate::rituals::waiting_seals(&view)
                .into_iter()
                .map(SealedRecord::from)
                .collect(),
            problems,
            never_sent: Vec::new(),
            view,
        }
    }
}

impl Device {
    /// Everything of the shared and the personal space.
    pub fn export(&mut self) -> Result<Export, DeviceError> {
        let mut shared = self.space_export(SpaceKind::Shared)?;
        if self.never_sent_count()? > 0 {
            shared.never_sent = self
                .history(crate::history::HistoryQuery::default())?
                .into_iter()
                .filter(|e| e.never_sent)
                .map(|e| NeverSentRecord {
                    kind: e.kind,
                    at: iso(e.at),
                    at_ms: e.at,
                    goal: e.goal,
                    item: e.item,
                    summary: e.summary,
                })
                .collect();
        }
        let personal = self.space_export(SpaceKind::Personal)?;
        Ok(Export {
            format: EXPORT_FORMAT,
            exported_at: iso(self.now()),
            me: ExportMe {
                name: self.me.name.clone(),
                person: self.me.person_id.to_string(),
                device: hex::encode(self.me.device_key()),
            },
            shared,
            personal,
        })
    }

    /// One space's content and unreadable entities.
    pub fn space_export(&mut self, kind: SpaceKind) -> Result<SpaceExport, DeviceError> {
        let id = self.space(kind)?.id.to_string();
        let view = self.view(kind)?;
        let problems = self.problems(kind, &view);
        Ok(SpaceExport::new(id, view, problems))
    }
}
