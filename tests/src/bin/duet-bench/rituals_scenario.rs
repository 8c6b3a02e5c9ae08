//! The blind rules over a space where both partners sealed the same goals thousands of
//! times while apart, each seal in a round of its own: one partner's rounds closed
//! before the other's opened (so no seal answers another and every pair is looked at),
//! the other's all open now. What
//! a rating and a sync read to decide which seals are due (`rituals::due_reveals`,
//! `opening_seals`) and where a new rating goes (`answered_round`, `blind_round`).
//! Reached only by scripting, but a partner's script must not make the other's
//! `rate` take seconds. Measured on a view built in memory, so the figure is the rules'
//! own cost.

use std::time::Instant;

use duet_core::model::{Rating, Round, Seal};
use duet_core::rituals;
use duet_core::view::View;
use duet_core::vocab::Level;

use crate::figures::Figures;

const GOALS: usize = 4;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// A view of `seals` unrevealed seals (half each partner's, spread over the goals), each
/// in a round of its own (partner B's closed ten days ago, A's open), and as many clear
/// ratings outside rounds.
fn view(seals: usize) -> View {
    let t0 = 1_800_000_000_000_i64;
    let person = |i: usize| if i.is_multiple_of(2) { "pa" } else { "pb" }.to_string();
    let goal = |i: usize| format!("g{}", i % GOALS);
    let rounds = (0..seals)
        .map(|i| {
            let closed = !i.is_multiple_of(2);
            let opened_at = t0 + i as i64 - if closed { 10 * DAY_MS } else { 0 };
            Round {
                id: format!("r{i}"),
                opened_by: person(i),
                opened_at,
                ends_at: opened_at + 7 * DAY_MS,
                closed_by: closed.then(|| person(i)),
                closed_at: closed.then_some(t0 - 9 * DAY_MS),
            }
        })
        .collect();
    let sealed = (0..seals)
        .map(|i| Seal {
            id: format!("s{i}"),
            goal: goal(i / 2),
            rater: person(i),
            at: t0 + i as i64,
            round: format!("r{i}"),
            corrects: None,
            commitment: "0".repeat(64),
            sealed: "00".into(),
        })
        .collect();
    let ratings = (0..seals)
        .map(|i| Rating {
            id: format!("c{i}"),
            goal: goal(i),
            rater: person(i),
            at: t0 - DAY_MS + i as i64,
            level: Level::EXPECTED,
            note: None,
            round: None,
            reveals: None,
            salt: None,
            corrects: None,
            withdrawn: None,
        })
        .collect();
    View {
        ratings,
        seals: sealed,
        rounds,
        ..View::default()
    }
}

/// Runs the rules once per size and records the milliseconds each took.
pub fn measure(sizes: &[usize], figs: &mut Figures) {
    for &n in sizes {
        let v = view(n);
        let now = 1_800_000_000_000_i64 + 2 * DAY_MS;
        let start = Instant::now();
        let due =
            rituals::due_reveals(&v, "pa", now).len() + rituals::opening_seals(&v, "pa", now).len();
        let due_ms = start.elapsed().as_secs_f64() * 1e3;
        let start = Instant::now();
        let answered = rituals::answered_round(&v, "pa", "g0", now).is_some();
        let blind = rituals::blind_round(&v, "g0", now).is_some();
        let rated = rituals::other_rated(&v, "pa", "g0", now);
        let rate_ms = start.elapsed().as_secs_f64() * 1e3;
        println!(
            "rituals: {n} unrevealed seals: {due} due ({due_ms:.1} ms); a rating's round \
             (answered {answered}, blind round {blind}, partner rated {rated}) {rate_ms:.1} ms"
        );
        figs.add(&format!("rituals_{n}_seals_due_reveals"), due_ms, "ms");
        figs.add(&format!("rituals_{n}_seals_rating_round"), rate_ms, "ms");
    }
}
