//! The acts two devices may both make while apart, of which readers count one: a seal
//! revealed by two devices of its rater (the reveal with the smallest rating id counts),
//! a check-in round closed by each partner's device (the close the document kept
//! counts). The history shows the counted one only; it showed both.

use std::collections::HashMap;

use super::{HistoryKind, HistoryRow};
use crate::model::{Rating, Round};

/// Which reveal and which close readers count, from the read models.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CountedActs {
    /// Seal id -> the smallest id of the ratings that reveal it.
    pub reveals: HashMap<String, String>,
    /// Round id -> the close time the document kept (of the closes made apart, the
    /// one Automerge's conflict rule chose).
    pub closes: HashMap<String, i64>,
}

impl CountedActs {
    /// The counted acts among `ratings` and `rounds`.
    pub fn of(ratings: &[Rating], rounds: &[Round]) -> CountedActs {
        CountedActs {
            reveals: first_reveals(ratings),
            closes: rounds
                .iter()
                .filter_map(|r| Some((r.id.clone(), r.closed_at?)))
                .collect(),
        }
    }

    /// Drops from `rows` a second reveal of a seal, and a close of rounds whose kept
    /// close is another's. A close row names its rounds (`item`, comma-separated) and
    /// the time it wrote (`after`); it stays when any of its rounds kept that time.
    pub fn drop_uncounted(&self, rows: &mut Vec<HistoryRow>) {
        rows.retain(|(_, e)| match e.kind {
            HistoryKind::RatingGiven if e.field.as_deref() == Some("revealed") => {
                match (e.before.as_deref(), e.item.as_deref()) {
                    (Some(seal), Some(id)) => self.reveals.get(seal).is_none_or(|k| k == id),
                    _ => true,
                }
            }
            HistoryKind::RoundClosed => {
                let wrote = e.after.as_deref().and_then(|t| t.parse::<i64>().ok());
                let rounds = e.item.as_deref().unwrap_or_default().split(',');
                let named: Vec<&str> = rounds.filter(|r| !r.is_empty()).collect();
                named.is_empty()
                    || named
                        .iter()
                        .any(|r| self.closes.get(*r).is_none_or(|kept| Some(*kept) == wrote))
            }
            _ => true,
        });
    }
}

/// Which rating each seal is read as revealed by, of `ratings`: the smallest id among
/// those that reveal it.
pub fn first_reveals(ratings: &[Rating]) -> HashMap<String, String> {
    let mut first: HashMap<String, String> = HashMap::new();
    for r in ratings {
        if let Some(seal) = &r.reveals {
            let kept = first.entry(seal.clone()).or_insert_with(|| r.id.clone());
            if r.id < *kept {
                *kept = r.id.clone();
            }
        }
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::HistoryEvent;

    fn row(kind: HistoryKind, device: &str) -> HistoryRow {
        let e = HistoryEvent::by(
            kind,
            1,
            Some("jo".into()),
            "Jo".into(),
            device.into(),
            String::new(),
        );
        ((1, 0), e)
    }

    fn reveal(rating: &str, seal: &str, device: &str) -> HistoryRow {
        let (at, mut e) = row(HistoryKind::RatingGiven, device);
        e.field = Some("revealed".into());
        e.before = Some(seal.into());
        e.item = Some(rating.into());
        (at, e)
    }

    fn close(rounds: &str, wrote: i64, device: &str) -> HistoryRow {
        let (at, mut e) = row(HistoryKind::RoundClosed, device);
        e.item = Some(rounds.into());
        e.after = Some(wrote.to_string());
        (at, e)
    }

    #[test]
    fn a_seal_revealed_by_two_devices_of_one_person_shows_once_as_readers_count_it() {
        let mut rows = vec![
            reveal("r-b", "seal-1", "laptop"),
            reveal("r-a", "seal-1", "phone"),
            reveal("r-c", "seal-2", "phone"),
        ];
        let counted = CountedActs {
            reveals: HashMap::from([
                ("seal-1".to_string(), "r-a".to_string()),
                ("seal-2".to_string(), "r-c".to_string()),
            ]),
            ..CountedActs::default()
        };
        counted.drop_uncounted(&mut rows);
        let kept: Vec<&str> = rows.iter().filter_map(|(_, e)| e.item.as_deref()).collect();
        assert_eq!(kept, ["r-a", "r-c"], "the smallest rating id of each seal");
    }

    #[test]
    fn a_round_closed_by_both_devices_apart_shows_the_close_the_document_kept() {
        let mut rows = vec![
            close("round-1", 100, "alex"),
            close("round-1,round-2", 200, "sam"),
            close("round-1", 300, "alex"),
        ];
        let counted = CountedActs {
            closes: HashMap::from([("round-1".to_string(), 300), ("round-2".to_string(), 200)]),
            ..CountedActs::default()
        };
        counted.drop_uncounted(&mut rows);
        let kept: Vec<&str> = rows.iter().map(|(_, e)| e.device.as_str()).collect();
        // Sam's close kept round 2's time: it closed something, and stays.
        assert_eq!(kept, ["sam", "alex"]);
    }
}
