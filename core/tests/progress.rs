//! Progress when the partners see things differently.

use duet_core::doc::{GoalEdit, NewGoal, SpaceDoc};
use duet_core::identity::Identity;
use duet_core::progress::{progress, t_score};
use duet_core::{Area, Level, Status};

fn goal(doc: &mut SpaceDoc, by: &Identity, title: &str, at: i64) -> String {
    doc.add_goal(
        &by.person_id,
        NewGoal {
            title: title.into(),
            area: Some(Area::Communication),
            ..Default::default()
        },
        at,
    )
    .expect("goal")
    .0
}

#[test]
fn partners_who_disagree_are_shown_side_by_side_never_averaged() {
    let alex = Identity::generate("Alex");
    let sam = Identity::generate("Sam");
    let (mut doc, _) = SpaceDoc::create(alex.actor(), 0).expect("doc");
    doc.set_person(&alex.person_id, "Alex", 1).expect("alex");
    doc.set_person(&sam.person_id, "Sam", 2).expect("sam");
    let talk = goal(&mut doc, &alex, "Weekly check-in", 10);
    let walk = goal(&mut doc, &sam, "Evening walk", 11);
    let paused = goal(&mut doc, &sam, "Cook together", 12);
    doc.set_status(&paused, Status::Paused, 13).expect("pause");

    doc.rate(&talk, &alex.person_id, Level::MORE, None, 100)
        .expect("r");
    doc.rate(&talk, &sam.person_id, Level::MUCH_LESS, None, 101)
        .expect("r");
    doc.rate(&walk, &alex.person_id, Level::EXPECTED, None, 102)
        .expect("r");
    doc.rate(&walk, &sam.person_id, Level::EXPECTED, None, 103)
        .expect("r");
    doc.rate(&paused, &sam.person_id, Level::MUCH_MORE, None, 104)
        .expect("r");
    // Sam weighs the check-in double.
    doc.edit_goal(
        &talk,
        GoalEdit {
            weight: Some((sam.person_id.to_string(), 2.0)),
            ..Default::default()
        },
        105,
    )
    .expect("weight");

    let p = progress(&duet_core::readmodel::View::of(&doc), None);
    assert_eq!(p.goals.len(), 2, "paused goals do not count");
    let t = &p.goals.iter().find(|g| g.goal == talk).expect("talk");
    let latest: Vec<(String, Option<i64>)> = t
        .partners
        .iter()
        .map(|s| (s.name.clone(), s.latest))
        .collect();
    assert!(
        latest.contains(&("Alex".into(), Some(1))) && latest.contains(&("Sam".into(), Some(-2))),
        "{latest:?}"
    );
    assert_eq!(t.gap, Some(3));
    assert_eq!(
        p.goals.iter().find(|g| g.goal == walk).expect("walk").gap,
        Some(0)
    );

    // Alex: (1, +1), (1, 0). Sam: (2, -2), (1, 0). Joint: all four items.
    let alex_t = p.current(&alex.person_id).expect("alex t");
    let sam_t = p.current(&sam.person_id).expect("sam t");
    assert!((alex_t - t_score(&[(1.0, 1.0), (1.0, 0.0)]).expect("t")).abs() < 1e-9);
    assert!((sam_t - t_score(&[(2.0, -2.0), (1.0, 0.0)]).expect("t")).abs() < 1e-9);
    let joint = p.current_joint().expect("joint");
    let expected = t_score(&[(1.0, 1.0), (1.0, 0.0), (2.0, -2.0), (1.0, 0.0)]).expect("t");
    assert!((joint - expected).abs() < 1e-9, "{joint} vs {expected}");
    assert!(
        alex_t > 50.0 && sam_t < 50.0,
        "the disagreement stays visible: {alex_t} {sam_t}"
    );
    // One T point per rating in scope, per rater.
    assert_eq!(p.t_by_person[alex.person_id.as_str()].len(), 2);
    assert_eq!(p.t_joint.len(), 4);
}
