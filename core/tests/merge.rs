//! Two devices editing the same space concurrently converge to one document.

use duet_core::doc::{GoalEdit, NewGoal, SpaceDoc};
use duet_core::identity::Identity;
use duet_core::{Area, Level, Status};

fn apply_all(to: &mut SpaceDoc, from: &SpaceDoc) {
    let changes = from.automerge().get_changes(&[]);
    to.apply(changes).expect("changes apply");
}

#[test]
fn concurrent_ratings_title_edits_archive_and_step_all_survive_and_converge() {
    let alex = Identity::generate("Alex");
    let sam = Identity::generate("Sam");
    let (mut a, _) = SpaceDoc::create(alex.actor(), 1_000).expect("create");
    let (goal, _) = a
        .add_goal(
            &alex.person_id,
            NewGoal {
                title: "Weekly check-in".into(),
                area: Some(Area::Communication),
                ..Default::default()
            },
            2_000,
        )
        .expect("add goal");
    // Sam's device starts from Alex's document, then both go offline.
    let mut b = SpaceDoc::empty(sam.actor());
    apply_all(&mut b, &a);
    assert_eq!(
        b.goal(&goal).expect("goal synced").title.as_str(),
        "Weekly check-in"
    );

    a.rate(&goal, &alex.person_id, Level::EXPECTED, Some("good"), 3_000)
        .expect("rate a");
    b.rate(&goal, &sam.person_id, Level::LESS, None, 3_001)
        .expect("rate b");
    a.edit_goal(
        &goal,
        GoalEdit {
            title: Some("Weekly check-in on Sunday".into()),
            ..Default::default()
        },
        3_002,
    )
    .expect("edit a");
    b.edit_goal(
        &goal,
        GoalEdit {
            title: Some("Our weekly check-in".into()),
            ..Default::default()
        },
        3_003,
    )
    .expect("edit b");
    a.set_status(&goal, Status::Archived, 3_004)
        .expect("archive");
    let (step, _) = b
        .add_step(&goal, &sam.person_id, "Set a reminder", 3_005)
        .expect("step");

    let a_before = a.clone();
    apply_all(&mut a, &b);
    apply_all(&mut b, &a_before);

    for doc in [&a, &b] {
        let ratings = doc.ratings().expect("ratings");
        assert_eq!(ratings.len(), 2, "both concurrent ratings survive");
        let g = doc.goal(&goal).expect("goal");
        let title = g.title.as_str().to_string();
        // Character-level merge: both insertions are kept around the shared text.
        assert!(
            title.contains("on Sunday") && title.contains("Our"),
            "title merged: {title}"
        );
        assert_eq!(g.status, duet_core::Status::Archived);
        assert!(
            g.steps.contains_key(&step),
            "the step added while archiving survives"
        );
    }
    // Identical: the same set of changes (heads) and the same materialised content.
    let mut ha = a.heads();
    let mut hb = b.heads();
    ha.sort();
    hb.sort();
    assert_eq!(ha, hb, "both documents hold the same changes");
    assert_eq!(a.ratings().expect("ratings"), b.ratings().expect("ratings"));
    assert_eq!(a.goals().expect("goals"), b.goals().expect("goals"));
}

#[test]
fn a_reflection_is_edited_and_withdrawn_after_the_partner_built_on_it() {
    let alex = Identity::generate("Alex");
    let sam = Identity::generate("Sam");
    let (mut a, _) = SpaceDoc::create(alex.actor(), 1_000).expect("create");
    let (id, _) = a
        .reflect(&alex.person_id, None, None, "We listened more", 2_000)
        .expect("reflect");
    // Sam's change comes after Alex's and depends on it, so Alex's newest change is no
    // longer a head of Alex's document once Sam's arrives.
    let mut b = SpaceDoc::empty(sam.actor());
    apply_all(&mut b, &a);
    b.add_goal(
        &sam.person_id,
        NewGoal {
            title: "Walk on Sundays".into(),
            ..Default::default()
        },
        3_000,
    )
    .expect("sam's goal");
    apply_all(&mut a, &b);
    a.edit_reflection(&id, "We listened more, and argued less", 4_000)
        .expect("an edit after the partner's change");
    a.withdraw_reflection(&id, false, 5_000)
        .expect("a withdrawal after the partner's change");
    apply_all(&mut b, &a);
    let r = b.reflections().expect("reflections");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].text.as_str(), "");
}
