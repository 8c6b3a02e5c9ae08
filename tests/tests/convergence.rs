//! Convergence under a hostile network: 2 or 3 devices make random edits and sync on
//! random schedules while the network drops requests, loses acknowledgements, delivers
//! twice, reorders and duplicates what it serves, and the relay restarts. Afterwards every
//! device has the same document and the same history, and every device's read models
//! (kept incrementally, the progress summary among them) equal the document and the
//! tables rebuilt from it.
//!
//! The relay is the real relay code (`duet_relay::AppState` over SQLite in a temporary
//! directory), called in-process so that hundreds of cases fit in the test run; only the
//! network between device and relay is simulated, because faults are what it injects.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::PathBuf;

use duet_core::app::{Assignee, GoalChanges, Owner};
use duet_core::device::{Device, DeviceError};
use duet_core::doc::{DocError, GoalEdit, NewGoal};
use duet_core::event::SpaceId;
use duet_core::history::{HistoryEvent, HistoryKind, HistoryQuery, history, timeline};
use duet_core::identity::Identity;
use duet_core::protocol::{PushResponse, ReadAuth};
use duet_core::readmodel::View;
use duet_core::store::SpaceKind;
use duet_core::sync::{AtAfter, Page, Transport, TransportError, fold_state};
use duet_core::{Area, Level, Status};
use duet_relay::AppState;
use duet_relay::state::ReadRequest;
use proptest::prelude::*;

/// What the network does to the next request.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Deliver,
    DropRequest,
    DropResponse,
    DeliverTwice,
    ReversePage,
    DuplicateEntries,
    RestartRelay,
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        6 => Just(Fault::Deliver),
        1 => Just(Fault::DropRequest),
        1 => Just(Fault::DropResponse),
        1 => Just(Fault::DeliverTwice),
        1 => Just(Fault::ReversePage),
        1 => Just(Fault::DuplicateEntries),
        1 => Just(Fault::RestartRelay),
    ]
}

struct Net {
    relay: RefCell<AppState>,
    db: PathBuf,
    faults: RefCell<VecDeque<Fault>>,
}

impl Net {
    /// An in-process relay on a SQLite file in `dir`, with no faults queued.
    fn in_dir(dir: &std::path::Path) -> Net {
        let db = dir.join("relay.db");
        Net {
            relay: RefCell::new(open_relay(&db).expect("relay")),
            db,
            faults: RefCell::new(VecDeque::new()),
        }
    }
}

fn lost(what: &str) -> TransportError {
    TransportError::Unreachable {
        relay: "in-process".into(),
        detail: format!("{what} lost by the network"),
    }
}

/// The in-process relay: its spaces are created without a creation token.
fn open_relay(db: &std::path::Path) -> Result<AppState, duet_relay::store::StoreError> {
    let config = duet_relay::Config {
        open_registration: true,
        ..duet_relay::Config::default()
    };
    AppState::open(&db.into(), config)
}

impl Net {
    fn next(&self) -> Fault {
        let f = self
            .faults
            .borrow_mut()
            .pop_front()
            .unwrap_or(Fault::Deliver);
        if let Fault::RestartRelay = f {
            let fresh = open_relay(&self.db).expect("relay reopens");
            *self.relay.borrow_mut() = fresh;
        }
        f
    }
}

fn refused(e: duet_relay::ApiError) -> TransportError {
    TransportError::Refused {
        status: e.status().as_u16(),
        body: e.body(),
    }
}

impl Transport for Net {
    fn push(
        &self,
        _relay: &str,
        space: &SpaceId,
        body: Vec<u8>,
        _create_token: Option<&str>,
    ) -> Result<PushResponse, TransportError> {
        let now = duet_core::ids::now_ms();
        match self.next() {
            Fault::DropRequest => Err(lost("request")),
            Fault::DropResponse => {
                let _ = self.relay.borrow().push(*space, &body, now);
                Err(lost("acknowledgement"))
            }
            Fault::DeliverTwice => {
                let _ = self.relay.borrow().push(*space, &body, now);
                self.relay
                    .borrow()
                    .push(*space, &body, now)
                    .map_err(refused)
            }
            _ => self
                .relay
                .borrow()
                .push(*space, &body, now)
                .map_err(refused),
        }
    }

    fn pull(
        &self,
        _relay: &str,
        space: &SpaceId,
        after: u64,
        limit: u32,
        reader: &Identity,
    ) -> Result<Page, TransportError> {
        let fault = self.next();
        if let Fault::DropRequest = fault {
            return Err(lost("request"));
        }
        let path = format!("/v1/spaces/{space}/events");
        let query = format!("after={after}&limit={limit}");
        let req = ReadRequest {
            auth: ReadAuth::sign(reader, "GET", &path, &query),
            path,
            query,
            after,
            limit,
        };
        let now = chrono_now_secs();
        let answer = self
            .relay
            .borrow()
            .read(*space, &req, now)
            .map_err(refused)?;
        let mut events = answer.events;
        match fault {
            Fault::DropResponse => return Err(lost("response")),
            Fault::ReversePage => events.reverse(),
            Fault::DuplicateEntries => {
                let copy = events.clone();
                events.extend(copy);
            }
            _ => {}
        }
        Ok(Page {
            events,
            more: answer.more,
            newest: Some(answer.newest),
            forks: Some(answer.forks),
            // As the HTTP route says it (`duet-after-hash`).
            at_after: match (after, answer.at_after) {
                (0, _) => AtAfter::Unsaid,
                (_, None) => AtAfter::Nothing,
                (_, Some(h)) => AtAfter::Event(h),
            },
        })
    }
}

fn chrono_now_secs() -> i64 {
    duet_core::ids::now_ms() / 1000
}

#[derive(Debug, Clone)]
enum Op {
    AddGoal(u8),
    Rate(usize, i8),
    /// A rating under the blind rules (sealed, in the clear, or a correction); the last
    /// flag makes it in a fresh process (a one-shot `duet rate`, which holds no document
    /// and writes on the stored tip).
    RateBlind(usize, i8, bool, bool),
    EditTitle(usize, String),
    SetStatus(usize, u8),
    AddStep(usize),
    Reflect(bool),
    /// `duet undo` (a rating, revealed or sealed, a reflection or a step), in a fresh
    /// process when set.
    Undo(bool),
    /// `duet step done` on a goal's first step: both partners may do it while apart.
    CompleteStep(usize),
    /// `duet step edit` or `duet step assign` (to me, or to either) of a goal's first
    /// step: both partners may do it while apart.
    ChangeStep(usize, u8),
    /// `duet goal edit --owner me|shared`: refused before writing when the goal is the
    /// other's own (as this device holds it).
    SetOwner(usize, bool),
    /// `duet checkin --close`: both partners may close one round while apart.
    CloseRounds,
    Sync,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => any::<u8>().prop_map(Op::AddGoal),
        4 => (any::<usize>(), -2i8..=2).prop_map(|(g, l)| Op::Rate(g, l)),
        3 => (any::<usize>(), -2i8..=2, any::<bool>(), any::<bool>())
            .prop_map(|(g, l, a, fresh)| Op::RateBlind(g, l, a, fresh)),
        2 => (any::<usize>(), "[a-z ]{0,6}").prop_map(|(g, t)| Op::EditTitle(g, t)),
        1 => (any::<usize>(), 0u8..4).prop_map(|(g, s)| Op::SetStatus(g, s)),
        1 => any::<usize>().prop_map(Op::AddStep),
        1 => any::<bool>().prop_map(Op::Reflect),
        1 => any::<bool>().prop_map(Op::Undo),
        1 => any::<usize>().prop_map(Op::CompleteStep),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(g, n)| Op::ChangeStep(g, n)),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(g, mine)| Op::SetOwner(g, mine)),
        1 => Just(Op::CloseRounds),
        4 => Just(Op::Sync),
    ]
}

fn apply(dev: &mut Device, op: &Op, net: &Net, t: i64) {
    let goals = dev
        .load(SpaceKind::Shared)
        .map(|(_, d, _)| d.goals().unwrap_or_default())
        .unwrap_or_default();
    let pick = |i: usize| (!goals.is_empty()).then(|| goals[i % goals.len()].id.clone());
    match op {
        Op::AddGoal(n) => {
            let _ = dev.edit(SpaceKind::Shared, |doc, me| {
                let (_, c) = doc.add_goal(
                    &me.person_id,
                    NewGoal {
                        title: format!("goal {n}"),
                        area: Some(Area::Other),
                        ..Default::default()
                    },
                    t,
                )?;
                Ok(((), c.into_iter().collect()))
            });
        }
        Op::Rate(g, l) => {
            if let Some(id) = pick(*g) {
                let level = Level::try_from(i64::from(*l)).expect("level in range");
                dev.edit(SpaceKind::Shared, |doc, me| {
                    Ok((
                        (),
                        doc.rate(&id, &me.person_id, level, None, t)?
                            .1
                            .into_iter()
                            .collect(),
                    ))
                })
                .expect("rate");
            }
        }
        Op::RateBlind(g, l, amend, _) => {
            if let Some(id) = pick(*g) {
                let level = Level::try_from(i64::from(*l)).expect("level in range");
                let rated = if *amend {
                    dev.amend_rating(&id, level, None)
                } else {
                    dev.rate(&id, level, None)
                };
                // Nothing to correct yet is the only refusal expected here.
                if let Err(e) = rated {
                    assert!(*amend, "rate: {e}");
                }
            }
        }
        Op::EditTitle(g, text) => {
            if let Some(id) = pick(*g) {
                let title = format!("t {text}");
                dev.edit(SpaceKind::Shared, |doc, _| {
                    Ok((
                        (),
                        doc.edit_goal(
                            &id,
                            GoalEdit {
                                title: Some(title),
                                ..Default::default()
                            },
                            t,
                        )?
                        .into_iter()
                        .collect(),
                    ))
                })
                .expect("edit");
            }
        }
        Op::SetStatus(g, s) => {
            if let Some(id) = pick(*g) {
                let status = Status::ALL[*s as usize % Status::ALL.len()];
                dev.edit(SpaceKind::Shared, |doc, _| {
                    Ok(((), doc.set_status(&id, status, t)?.into_iter().collect()))
                })
                .expect("status");
            }
        }
        Op::AddStep(g) => {
            if let Some(id) = pick(*g) {
                dev.edit(SpaceKind::Shared, |doc, me| {
                    Ok((
                        (),
                        doc.add_step(&id, &me.person_id, "step", t)?
                            .1
                            .into_iter()
                            .collect(),
                    ))
                })
                .expect("step");
            }
        }
        Op::Reflect(private) => {
            let kind = if *private {
                SpaceKind::Personal
            } else {
                SpaceKind::Shared
            };
            dev.edit(kind, |doc, me| {
                Ok((
                    (),
                    doc.reflect(&me.person_id, None, None, "thoughts", t)?
                        .1
                        .into_iter()
                        .collect(),
                ))
            })
            .expect("reflect");
        }
        Op::CompleteStep(g) => {
            let step = pick(*g).and_then(|id| {
                let goal = goals.iter().find(|x| x.id == id)?;
                Some((id, goal.steps.keys().next()?.clone()))
            });
            if let Some((goal, step)) = step {
                dev.complete_step(&goal, &step).expect("step done");
            }
        }
        Op::ChangeStep(g, n) => {
            let step = pick(*g).and_then(|id| {
                let goal = goals.iter().find(|x| x.id == id)?;
                Some((id, goal.steps.keys().next()?.clone()))
            });
            if let Some((goal, step)) = step {
                let changed = match n % 3 {
                    0 => dev
                        .edit_step(&goal, &step, &format!("step {n}"))
                        .map(|_| ()),
                    1 => dev.assign_step(&goal, &step, &Assignee::Me).map(|_| ()),
                    _ => dev.assign_step(&goal, &step, &Assignee::Nobody).map(|_| ()),
                };
                changed.expect("step changed");
            }
        }
        Op::SetOwner(g, mine) => {
            if let Some(id) = pick(*g) {
                let owner = if *mine { Owner::Me } else { Owner::Shared };
                let changes = GoalChanges {
                    owner: Some(owner),
                    ..Default::default()
                };
                match dev.edit_goal(&id, changes) {
                    Ok(_) | Err(DeviceError::Doc(DocError::OthersGoal(_))) => {}
                    Err(e) => panic!("owner: {e}"),
                }
            }
        }
        Op::CloseRounds => {
            dev.close_rounds().expect("close rounds");
        }
        Op::Undo(_) => match dev.undo() {
            Ok(_) | Err(duet_core::device::DeviceError::NothingToUndo) => {}
            Err(e) => panic!("undo: {e}"),
        },
        Op::Sync => {
            // Faults make syncs fail; a failed sync must never corrupt anything. A relay
            // that loses nothing is never taken for one restored from an old backup,
            // whatever the network drops, repeats or reorders.
            if let Ok(reports) = dev.sync(net) {
                for (kind, r) in reports {
                    assert!(!r.rollback && r.given_back == 0, "{kind:?}: {r:?}");
                }
            }
        }
    }
}

/// The read models a device keeps incrementally equal both the document itself and
/// the tables rebuilt from it, in both spaces.
fn assert_read_models_match(dev: &mut Device) {
    assert_ritual_view_decides_as_the_whole_view(dev);
    assert_kept_progress_is_the_progress_of_every_rating(dev);
    for kind in [SpaceKind::Shared, SpaceKind::Personal] {
        let (rec, doc, _) = dev.load(kind).expect("load");
        let incremental = dev.raw_view(kind).expect("view");
        let from_doc = View::of(&doc);
        assert_eq!(
            incremental, from_doc,
            "read models differ from the document ({kind:?})"
        );
        assert_eq!(from_doc.goals, doc.goals().expect("goals"));
        assert_eq!(from_doc.ratings, doc.ratings().expect("ratings"));
        assert_eq!(
            from_doc.reflections,
            doc.reflections().expect("reflections")
        );
        assert_eq!(from_doc.people, doc.people().expect("people"));
        let me = dev.me.clone();
        let state = fold_state(dev.store(), &rec.id).expect("state");
        let from_doc_history = history(&doc, state.all_devices()).expect("history");
        let doc_events = |dev: &mut Device| -> Vec<HistoryEvent> {
            timeline(dev.store_mut(), &rec.id, &me, &HistoryQuery::default())
                .expect("timeline")
                .into_iter()
                .filter(|e| {
                    !matches!(
                        e.kind,
                        HistoryKind::DeviceJoined | HistoryKind::DeviceRemoved
                    )
                })
                .collect()
        };
        assert_eq!(
            doc_events(dev),
            from_doc_history,
            "history tables differ ({kind:?})"
        );
        dev.store_mut().rebuild_view(&rec.id, &me).expect("rebuild");
        assert_eq!(
            dev.raw_view(kind).expect("view"),
            from_doc,
            "rebuilt tables differ ({kind:?})"
        );
        assert_eq!(
            doc_events(dev),
            from_doc_history,
            "rebuilt history differs ({kind:?})"
        );
    }
}

/// The progress summary the read models keep (updated rating by rating where it can
/// be) equals the one computed from every rating of the document, and what `progress`
/// shows (the summary with this person's own sealed ratings) equals the computation
/// from the whole view; also once the tables are rebuilt.
fn assert_kept_progress_is_the_progress_of_every_rating(dev: &mut Device) {
    use duet_core::progress::progress;
    use duet_core::rituals::effective;
    let Ok(rec) = dev.store().space(SpaceKind::Shared) else {
        return;
    };
    let me = dev.me.clone();
    let (_, doc, _) = dev.load(SpaceKind::Shared).expect("load");
    let all = effective(View::of(&doc));
    for rebuilt in [false, true] {
        if rebuilt {
            dev.store_mut().rebuild_view(&rec.id, &me).expect("rebuild");
        }
        let (kept, _) = dev
            .store_mut()
            .progress_summary(&rec.id, &me, &me.person_id)
            .expect("summary")
            .expect("a summary is kept");
        assert_eq!(
            kept.progress,
            progress(&all, None).bounded(),
            "kept progress differs (rebuilt: {rebuilt})"
        );
        assert_eq!(
            kept.last,
            all.ratings.iter().map(|r| (r.at, r.id.clone())).max()
        );
        let shown = dev.progress(None).expect("progress");
        let mut full = progress(&dev.view(SpaceKind::Shared).expect("view"), None).bounded();
        full.me = me.person_id.to_string();
        // The partner's sealed ratings whose time has come, decided from the whole space.
        let (raw, now) = (dev.raw_view(SpaceKind::Shared).expect("view"), dev.now());
        let opening = duet_core::rituals::opening_seals(&raw, &full.me, now);
        for g in &mut full.goals {
            for s in &mut g.partners {
                s.opening = s.sealed
                    && opening
                        .iter()
                        .any(|w| w.goal == g.goal && w.rater == s.person);
            }
        }
        assert_eq!(shown, full, "progress differs (rebuilt: {rebuilt})");
    }
}

/// The few ratings a rating reads for the blind rules (`Store::ritual_view`) decide
/// exactly as the whole space would: what is due to reveal, waiting, rated by the
/// other, and this person's ratings of a goal (what a correction corrects).
fn assert_ritual_view_decides_as_the_whole_view(dev: &mut Device) {
    use duet_core::rituals::{
        answered_round, blind_round, due_reveals, effective_ratings, other_rated, waiting_seals,
    };
    let Ok(rec) = dev.store().space(SpaceKind::Shared) else {
        return;
    };
    let me = dev.me.clone();
    let who = me.person_id.to_string();
    let now = dev.now();
    let whole = dev.raw_view(SpaceKind::Shared).expect("view");
    let part = dev
        .store_mut()
        .ritual_view(&rec.id, &me, None)
        .expect("ritual view");
    assert_eq!(
        due_reveals(&part, &who, now),
        due_reveals(&whole, &who, now)
    );
    assert_eq!(waiting_seals(&part), waiting_seals(&whole));
    for g in &whole.goals {
        assert_eq!(
            other_rated(&part, &who, &g.id, now),
            other_rated(&whole, &who, &g.id, now)
        );
        assert_eq!(
            answered_round(&part, &who, &g.id, now),
            answered_round(&whole, &who, &g.id, now)
        );
        assert_eq!(
            blind_round(&part, &g.id, now),
            blind_round(&whole, &g.id, now)
        );
        let own = dev
            .store_mut()
            .ritual_view(&rec.id, &me, Some((&g.id, &who)))
            .expect("ritual view");
        let mine = |v: &View| -> Vec<_> {
            effective_ratings(v)
                .into_iter()
                .filter(|r| r.goal == g.id && r.rater == who)
                .collect()
        };
        assert_eq!(mine(&own), mine(&whole));
    }
}

/// Everything a partner can see of the shared space, and its history.
fn fingerprint(dev: &Device) -> (String, String) {
    let (rec, doc, _) = dev.load(SpaceKind::Shared).expect("load");
    let goals: Vec<_> = doc
        .goals()
        .expect("goals")
        .iter()
        .map(|g| {
            format!(
                "{} {} {} {} steps={}",
                g.id,
                g.title.as_str(),
                g.status,
                g.area,
                g.steps.len()
            )
        })
        .collect();
    let ratings: Vec<_> = doc
        .ratings()
        .expect("ratings")
        .iter()
        .map(|r| format!("{} {} {}", r.id, r.rater, r.level))
        .collect();
    let reflections: Vec<_> = doc
        .reflections()
        .expect("reflections")
        .iter()
        .map(|r| r.id.clone())
        .collect();
    let people: Vec<_> = doc
        .people()
        .expect("people")
        .into_iter()
        .map(|(k, p)| format!("{k}={}", p.name))
        .collect();
    let state = fold_state(dev.store(), &rec.id).expect("state");
    let h = history(&doc, state.all_devices()).expect("history");
    let h: Vec<String> = h
        .iter()
        .map(|e| format!("{:?} {} {} {:?}", e.kind, e.change, e.author_name, e.goal))
        .collect();
    (
        format!("{goals:?}\n{ratings:?}\n{reflections:?}\n{people:?}"),
        h.join("\n"),
    )
}

/// A partner who joins reads the history once, from the relay: naming themselves and the
/// sync that sends the name (and every later sync or write of that process) start from
/// the document that pull left, not from a load of the store.
#[test]
fn a_join_loads_no_document_once_its_pull_has_built_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let net = Net::in_dir(dir.path());
    let mut alex =
        Device::init(&dir.path().join("a"), "Alex", Some("http://in-process")).expect("init");
    let level = Level::try_from(1).expect("level");
    for n in 0..3 {
        alex.add_goal(duet_core::app::NewGoalInput {
            title: format!("goal {n}"),
            ..Default::default()
        })
        .expect("goal");
        alex.rate(&format!("goal {n}"), level, None).expect("rate");
    }
    let code = alex.invite(3_600_000).expect("invite");
    alex.sync(&net).expect("alex syncs");
    let mut sam = Device::join(&dir.path().join("s"), &code, "Sam").expect("join");
    let before = sam.store().documents_loaded();
    sam.sync(&net).expect("sam's first sync");
    // At most one load per space, as its pull brings the first change (both empty before
    // the pull), none after.
    let spaces = sam.store().spaces().expect("spaces").len() as u64;
    assert!(sam.store().documents_loaded() - before <= spaces);
    let people = sam.goals(true).expect("goals");
    assert_eq!(people.goals.len(), 3);
    let before = sam.store().documents_loaded();
    sam.rate("goal 0", level, None).expect("sam rates");
    sam.sync(&net).expect("sam syncs again");
    assert_eq!(
        sam.store().documents_loaded(),
        before,
        "a later write or sync loaded it"
    );
    alex.sync(&net).expect("alex hears of sam");
    assert_read_models_match(&mut sam);
    assert_read_models_match(&mut alex);
    let names: Vec<String> = alex.partners().expect("partners").into_iter().collect();
    assert_eq!(names, ["Sam"], "sam's name reached alex");
}

/// A one-shot `duet rate` then `duet sync` (a process that keeps no document) when the
/// partner wrote nothing new reads none of the history: the rating goes out without a
/// document (in the raw codec) and the partner applies it like any other; a later
/// sync that does bring a change loads the document once, to check and apply it.
#[test]
fn a_sync_that_brings_nothing_new_loads_no_document() {
    let dir = tempfile::tempdir().expect("tempdir");
    let net = Net::in_dir(dir.path());
    let mut alex =
        Device::init(&dir.path().join("a"), "Alex", Some("http://in-process")).expect("init");
    let level = Level::try_from(1).expect("level");
    alex.add_goal(duet_core::app::NewGoalInput {
        title: "Weekly walk".into(),
        ..Default::default()
    })
    .expect("goal");
    let code = alex.invite(3_600_000).expect("invite");
    alex.sync(&net).expect("alex syncs");
    Device::join(&dir.path().join("s"), &code, "Sam")
        .expect("join")
        .sync(&net)
        .expect("sam's first sync");
    alex.sync(&net).expect("alex hears of sam");
    // The ratings (made blind: sealed, until both rated) a device holds by one person.
    let by = |d: &mut Device, name: &str| {
        let v = d.raw_view(SpaceKind::Shared).expect("view");
        let (id, _) = v
            .people
            .iter()
            .find(|(_, p)| p.name == name)
            .expect("named");
        let rated = v.ratings.iter().filter(|r| &r.rater == id).count();
        rated + v.seals.iter().filter(|s| &s.rater == id).count()
    };

    // A new process on Sam's home, as each `duet` command is.
    let mut sam = Device::open(&dir.path().join("s")).expect("open");
    sam.rate("Weekly walk", level, None).expect("sam rates");
    sam.sync(&net).expect("sam sends the rating");
    sam.sync(&net).expect("sam syncs, nothing new");
    assert_eq!(
        sam.store().documents_loaded(),
        0,
        "a rating and two syncs that brought nothing loaded the history"
    );
    alex.sync(&net).expect("alex receives it");
    assert_eq!(by(&mut alex, "Sam"), 1, "sam's rating reached alex");

    alex.rate("Weekly walk", level, None).expect("alex rates");
    alex.sync(&net).expect("alex sends");
    let mut sam = Device::open(&dir.path().join("s")).expect("open");
    sam.sync(&net).expect("sam receives");
    assert_eq!(
        sam.store().documents_loaded(),
        1,
        "one load, for the change"
    );
    assert_eq!(by(&mut sam, "Alex"), 1, "alex's rating reached sam");
    assert_read_models_match(&mut sam);
    assert_read_models_match(&mut alex);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn devices_converge_whatever_the_network_and_relay_do(
        third in any::<bool>(),
        steps in proptest::collection::vec((0usize..3, op()), 1..25),
        faults in proptest::collection::vec(fault(), 0..40),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let net = Net::in_dir(dir.path());
        let relay_url = "http://in-process";
        let mut homes = vec![dir.path().join("a"), dir.path().join("p0")];
        let mut devices = vec![Device::init(&homes[0], "Alex", Some(relay_url)).expect("init")];
        let code = devices[0].invite(3_600_000).expect("invite");
        devices[0].sync(&net).expect("invite reaches the relay");
        let mut d = Device::join(&homes[1], &code, "Partner0").expect("join");
        d.sync(&net).expect("join");
        devices.push(d);
        // A shared space holds two persons; the third device is Alex's second.
        if third {
            let code = devices[0].add_device(3_600_000).expect("device code");
            devices[0].sync(&net).expect("device code reaches the relay");
            homes.push(dir.path().join("a2"));
            let mut d = Device::join_own(&homes[2], &code).expect("join own");
            d.sync(&net).expect("join own");
            devices.push(d);
        }
        // The random phase, with the network misbehaving.
        *net.faults.borrow_mut() = faults.into_iter().collect();
        for (t, (who, op)) in steps.iter().enumerate() {
            let i = who % devices.len();
            if let Op::RateBlind(_, _, _, true) | Op::Undo(true) = op {
                devices[i] = Device::open(&homes[i]).expect("a fresh process opens the home");
            }
            apply(&mut devices[i], op, &net, 1_000_000 + t as i64);
            if t % 4 == 3 {
                assert_read_models_match(&mut devices[i]);
            }
        }
        // The network heals; everyone syncs until quiet. Blind ratings take longer: a
        // device reveals once it hears of the partner's seal, and the devices that synced
        // before it hear of the reveal a round later.
        net.faults.borrow_mut().clear();
        for _ in 0..4 {
            for d in devices.iter_mut() {
                d.sync(&net).expect("a sync on a healthy network succeeds");
            }
        }
        for d in devices.iter_mut() {
            assert_read_models_match(d);
        }
        let first = fingerprint(&devices[0]);
        for d in &devices[1..] {
            let other = fingerprint(d);
            prop_assert_eq!(&first.0, &other.0, "documents differ");
            prop_assert_eq!(&first.1, &other.1, "histories differ");
        }
        for d in &devices {
            let rec = d.space(SpaceKind::Shared).expect("space");
            // Honest devices never refuse each other's changes, whatever they did apart.
            prop_assert_eq!(d.store().refused_total(&rec.id).expect("refused"), 0);
            prop_assert_eq!(d.store().pending_count(&rec.id).expect("pending"), 0);
            prop_assert!(d.store().unacked_events(&rec.id).expect("unacked").is_empty());
        }
    }
}
