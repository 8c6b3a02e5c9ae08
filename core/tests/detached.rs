//! A change built from the document's tip alone (`Tip::put_new`, what a one-shot
//! `duet rate` or `duet reflect` writes without loading the history) is byte for byte the change the loaded
//! document makes, over histories where the partner writes in between, the devices sync
//! both ways and this device's last change is not a head.

use automerge::Change;
use duet_core::doc::{New, NewGoal, REFLECT_MESSAGE, SpaceDoc, Tip, new_reflection};
use duet_core::identity::Identity;
use duet_core::model::{Rating, Round, Seal};
use duet_core::{Level, ids::new_id};
use proptest::prelude::*;

/// One step of a couple's history.
#[derive(Debug, Clone)]
enum Step {
    /// Device 0 or 1 rates in the clear.
    Rate(usize, i8),
    /// Device 0 or 1 rates sealed, opening a round.
    Seal(usize),
    /// Device 0 or 1 writes a reflection (about the goal or not) with this text.
    Reflect(usize, bool, String),
    /// Device 0 or 1 edits the text of its newest reflection, if any.
    EditReflection(usize, String),
    /// Device 0 or 1 receives everything the other has.
    Sync(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..2usize, -2..=2i8).prop_map(|(d, l)| Step::Rate(d, l)),
        1 => (0..2usize).prop_map(Step::Seal),
        2 => (0..2usize, any::<bool>(), "[a-zé🙂][a-zé 🙂\n]{0,40}").prop_map(|(d, g, t)| Step::Reflect(d, g, t)),
        1 => (0..2usize, "[a-zé🙂][a-zé 🙂]{0,20}").prop_map(|(d, t)| Step::EditReflection(d, t)),
        2 => (0..2usize).prop_map(Step::Sync),
    ]
}

fn rating(goal: &str, rater: &str, level: i8, at: i64) -> Rating {
    Rating {
        id: new_id(),
        goal: goal.to_string(),
        rater: rater.to_string(),
        at,
        level: Level::try_from(i64::from(level)).expect("a level in range"),
        note: (level > 0).then(|| format!("note {at}")),
        round: None,
        reveals: None,
        salt: None,
        corrects: None,
        withdrawn: None,
    }
}

fn seal_and_round(goal: &str, rater: &str, at: i64) -> (Seal, Round) {
    let round = Round {
        id: new_id(),
        opened_by: rater.to_string(),
        opened_at: at,
        ends_at: at + 1_000,
        closed_by: None,
        closed_at: None,
    };
    let seal = Seal {
        id: new_id(),
        goal: goal.to_string(),
        rater: rater.to_string(),
        at,
        round: round.id.clone(),
        corrects: None,
        commitment: "c".repeat(64),
        sealed: "s".repeat(40),
    };
    (seal, round)
}

/// Writes `entities` on `doc` both ways and checks they agree; keeps the document's.
fn write_both(doc: &mut SpaceDoc, entities: &[New<'_>], message: &str, now: i64) {
    let tip = Tip::of(doc);
    let from_tip = tip.put_new(entities, message, now).expect("valid entities");
    let from_doc: Change = doc
        .put_new(entities, message, now)
        .expect("the document writes")
        .expect("a change");
    match from_tip {
        Some(c) => {
            assert_eq!(c.raw_bytes(), from_doc.raw_bytes(), "the same change");
            assert_eq!(
                tip.after(&c),
                Tip::of(doc),
                "the tip moves as the document's"
            );
        }
        // Only a collection the document did not have yet sends the caller to it.
        None => assert!(
            entities.iter().any(|e| !tip
                .collection_ids()
                .iter()
                .any(|(_, n)| *n == e.collection())),
            "the tip built nothing although every collection exists"
        ),
    }
}

/// A space made before `rounds` and `seals` came with every space: the first sealed
/// rating creates them, from the document.
fn older_space(creator: &Identity) -> SpaceDoc {
    let mut doc = SpaceDoc::empty(creator.actor());
    doc.raw_transaction("create space", 1_000, |tx| {
        use automerge::transaction::Transactable;
        tx.put(automerge::ROOT, "schema", duet_core::model::SCHEMA_VERSION)?;
        for coll in ["people", "goals", "ratings", "reflections"] {
            tx.put_object(automerge::ROOT, coll, automerge::ObjType::Map)?;
        }
        Ok(())
    })
    .expect("create");
    doc
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn a_change_from_the_tip_is_the_change_the_document_makes(
        older in any::<bool>(),
        steps in proptest::collection::vec(step(), 1..24)
    ) {
        let people = [Identity::generate("Alex"), Identity::generate("Sam")];
        let mut first = if older {
            older_space(&people[0])
        } else {
            SpaceDoc::create(people[0].actor(), 1_000).expect("create").0
        };
        let (goal, _) = first
            .add_goal(&people[0].person_id, NewGoal { title: "Walks".into(), ..Default::default() }, 2_000)
            .expect("goal");
        let mut second = SpaceDoc::empty(people[1].actor());
        second.apply(first.automerge().get_changes(&[])).expect("join");
        let mut docs = [first, second];
        let mut own: [Vec<String>; 2] = [Vec::new(), Vec::new()];
        for (i, s) in steps.into_iter().enumerate() {
            let now = 10_000 + i as i64;
            match s {
                Step::Rate(d, level) => {
                    let r = rating(&goal, &people[d].person_id, level, now);
                    write_both(&mut docs[d], &[New::Rating(&r)], "rate", now);
                }
                Step::Seal(d) => {
                    let (seal, round) = seal_and_round(&goal, &people[d].person_id, now);
                    write_both(&mut docs[d], &[New::Round(&round), New::Seal(&seal)], "rate sealed", now);
                }
                Step::Reflect(d, about_goal, text) => {
                    let about = about_goal.then_some(goal.as_str());
                    let r = new_reflection(&people[d].person_id, about, None, &text, now);
                    write_both(&mut docs[d], &[New::Reflection(&r)], REFLECT_MESSAGE, now);
                    own[d].push(r.id);
                }
                Step::EditReflection(d, text) => {
                    if let Some(id) = own[d].last() {
                        docs[d].edit_reflection(id, &text, now).expect("edit");
                    }
                }
                Step::Sync(d) => {
                    let other = docs[1 - d].automerge().get_changes(&[]);
                    docs[d].apply(other).expect("sync");
                }
            }
        }
    }
}

#[test]
fn a_tip_with_no_counters_left_builds_nothing_and_never_panics() {
    let alex = Identity::generate("Alex");
    let (mut doc, _) = SpaceDoc::create(alex.actor(), 1_000).expect("create");
    let (goal, _) = doc
        .add_goal(
            &alex.person_id,
            NewGoal {
                title: "Walks".into(),
                ..Default::default()
            },
            2_000,
        )
        .expect("goal");
    // As if a partner's change had used the top of the counters' range.
    let mut kept = serde_json::to_value(Tip::of(&doc)).expect("a tip as JSON");
    kept["max_op"] = serde_json::json!(u64::MAX);
    let tip: Tip = serde_json::from_value(kept).expect("the tip back");
    let r = rating(&goal, &alex.person_id, 1, 3_000);
    let built = tip
        .put_new(&[New::Rating(&r)], "rate", 3_000)
        .expect("valid rating");
    assert!(built.is_none(), "the write goes to the document");
}
