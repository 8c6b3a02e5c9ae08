//! The bounded cache of space states: a relay that keeps one space in memory, with two
//! couples taking turns, folds each space again from the database at every push, and
//! answers exactly as a relay that keeps everything cached: membership, forks and quotas.

mod common;

use common::{Couple, Device, Relay};
use duet_relay::limits::Config;

/// One push and what the relay said: the status and the error code, if any.
type Outcome = (u16, Option<String>);

async fn outcome(c: &Couple, events: &[&duet_core::event::Event]) -> Outcome {
    let a = c.relay.push(&c.space, events).await;
    let code = (!a.status.is_success()).then(|| a.error().error.as_str().to_string());
    (a.status.as_u16(), code)
}

/// The other couple reads its space (which takes the cache's place when it holds one).
async fn other_turn(relay: &Relay, other: &mut duet_testkit::Couple) {
    let (page, _) = relay.read_page(&other.alex, &other.space, "").await;
    assert_eq!(page.len(), 3);
}

/// The same script against a relay caching `space_cache` spaces: after every step,
/// another couple's push takes the cache's place.
async fn script(space_cache: usize) -> (Vec<Outcome>, usize, usize) {
    let config = Config {
        space_cache,
        space_max_events: 6,
        ..Config::default()
    };
    let mut a = Couple::on(Relay::with_config(config)).await;
    let (mut other, first) = duet_testkit::Couple::signed([9u8; 32]);
    let [g, i] = &first.owner;
    a.relay.push(&other.space, &[g, i]).await.push();
    a.relay.push(&other.space, &[&first.join]).await.push();
    let mut out = Vec::new();
    // A stranger writes into the couple's space: refused.
    let mut eve = Device::new("Eve");
    let forged = eve.changes(a.space, &a.key, b"not a member");
    out.push(outcome(&a, &[&forged]).await);
    other_turn(&a.relay, &mut other).await;
    // Alex writes; then signs another event with the same seq: a fork.
    let at = (a.alex.seq, a.alex.prev);
    let first = a.alex.changes(a.space, &a.key, b"first");
    out.push(outcome(&a, &[&first]).await);
    other_turn(&a.relay, &mut other).await;
    (a.alex.seq, a.alex.prev) = at;
    let fork = a.alex.changes(a.space, &a.key, b"a different first");
    out.push(outcome(&a, &[&fork]).await);
    (a.alex.seq, a.alex.prev) = (first.header().seq, first.hash());
    // Up to the quota of 6 events, and one past it.
    for n in 0..3 {
        other_turn(&a.relay, &mut other).await;
        let more = a
            .sam
            .changes(a.space, &a.key, format!("more {n}").as_bytes());
        out.push(outcome(&a, &[&more]).await);
    }
    let forks = a.relay.forks().len();
    (out, forks, a.relay.state.cached_spaces())
}

crate::conformance! {
    #[tokio::test]
    async fn a_space_evicted_and_reloaded_answers_as_one_kept_in_memory() {
        let (evicting, forks, cached) = script(1).await;
        assert_eq!(cached, 1, "the cache holds one space");
        let (keeping, forks_kept, cached_all) = script(0).await;
        assert_eq!(cached_all, 2, "an unbounded cache holds both");
        assert_eq!(evicting, keeping, "the same answers, evicted or not");
        assert_eq!(forks, forks_kept);
        assert_eq!(forks, 1, "the fork is kept as evidence");
        let codes: Vec<Option<&str>> = evicting.iter().map(|(_, c)| c.as_deref()).collect();
        assert_eq!(
            codes,
            [
                Some("not_a_member"),
                None,
                Some("fork"),
                None,
                None,
                Some("quota_exceeded"),
            ],
            "{evicting:?}"
        );
    }
}
