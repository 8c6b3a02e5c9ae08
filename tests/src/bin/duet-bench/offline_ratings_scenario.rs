//! A couple who both rate one goal many times while apart, then sync: each rating
//! travels sealed (blind), and the syncs that bring the partner's seals reveal one's own,
//! one change per reveal. Each reveal once read every seal and, sorting before the last
//! rating counted, computed the progress summary from every rating: the sync grew with
//! the square of the ratings (20 s at 800 each). Timed at two sizes to show the growth.

use std::time::Instant;

use duet_tests::{Device, Relay, pair};

use crate::figures::Figures;

/// Times `d`'s sync, in seconds.
fn timed_sync(d: &Device) -> f64 {
    let t = Instant::now();
    d.ok(&["sync"]);
    t.elapsed().as_secs_f64()
}

/// Both partners rate one goal `n` times apart; Alex syncs (sends), Sam syncs (gets
/// Alex's seals, reveals Sam's), Alex syncs (gets Sam's seals and reveals, reveals
/// Alex's). Figures: the two syncs that reveal, and their sum.
fn measure_one(n: usize, figs: &mut Figures) {
    let relay = Relay::start();
    let (a, b) = pair(&relay);
    a.ok(&["goal", "add", "Evening walk", "--area", "quality-time"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    for d in [&a, &b] {
        for i in 0..n {
            d.ok(&["-q", "rate", "Evening walk", ["-1", "0", "1", "2"][i % 4]]);
        }
    }
    a.ok(&["sync"]);
    let sam = timed_sync(&b);
    let alex = timed_sync(&a);
    println!("offline ratings: {n} each; Sam's sync {sam:.3} s, Alex's {alex:.3} s");
    figs.add(&format!("offline_ratings_{n}_sam_sync"), sam, "s");
    figs.add(&format!("offline_ratings_{n}_alex_sync"), alex, "s");
    figs.add(&format!("offline_ratings_{n}_syncs"), sam + alex, "s");
}

/// Runs the scenario at each size of `sizes`.
pub fn measure(sizes: &[usize], figs: &mut Figures) {
    println!("== a couple's offline ratings, revealed by their syncs ==");
    for &n in sizes {
        measure_one(n, figs);
    }
}
