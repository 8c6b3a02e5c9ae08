//! A removed device and an equivocating member against the relay, with real keys and
//! events signed as an attacker would sign them (issue 13, finding 2).
//!
//! Membership comes before the chain: a removed or unknown device's push is refused with
//! 403 whatever its seq, and never becomes fork evidence. A member's fork evidence is
//! bounded per device and kept outside the space's quota, so forks cannot fill the
//! space and lock the partners out; the attempts past the bound are still counted in
//! `duet-forks`.

mod common;

use axum::http::StatusCode;
use common::{Couple, Device, Relay, now_ms, remove_op};
use duet_core::crypto::SpaceKey;
use duet_core::event::{Event, SpaceId};
use duet_core::protocol::ErrorCode;
use duet_core::protocol::H_FORKS;
use duet_relay::{Config, Rate};

/// Fork evidence rows the relay keeps per device (`duet_relay::writer`).
const KEPT_PER_DEVICE: usize = 4;

/// Random (incompressible) plaintext.
fn noise(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        out.extend_from_slice(&duet_core::ids::random_bytes::<32>());
    }
    out.truncate(len);
    out
}

/// Signs `n` different events that all take the seq after `at` (seq, prev) of `dev`'s
/// chain: forks of the event stored there. The device's own chain is left as it was.
fn forks_after(
    dev: &mut Device,
    at: (u64, [u8; 32]),
    n: usize,
    size: usize,
    (space, key): (SpaceId, &SpaceKey),
) -> Vec<Event> {
    let kept = (dev.seq, dev.prev);
    let out = (0..n)
        .map(|_| {
            (dev.seq, dev.prev) = at;
            dev.changes(space, key, &noise(size))
        })
        .collect();
    (dev.seq, dev.prev) = kept;
    out
}

/// The `duet-forks` count a member reads.
async fn forks_header(c: &Couple, reader: &Device) -> u64 {
    let a = c.relay.read(reader, &c.space, "").await;
    assert_eq!(a.status, StatusCode::OK);
    a.header(H_FORKS)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {H_FORKS} header: {:?}", a.headers))
}

crate::conformance! {
    #[tokio::test]
    async fn a_removed_device_is_refused_with_403_whatever_its_seq_and_leaves_no_fork_evidence() {
        let mut c = Couple::new().await;
        // An event of Alex's that Sam's device read while it was a member.
        let read_then = c.alex.changes(c.space, &c.key, b"alex's note sam read");
        c.relay.push(&c.space, &[&read_then]).await.push();
        let after_join = (c.sam.seq, c.sam.prev);
        let last = c.sam.changes(c.space, &c.key, b"sam's last stored event");
        c.relay.push(&c.space, &[&last]).await.push();
        let op = remove_op(c.space, c.sam.key(), 1, &[(c.alex.key(), c.alex.x25519())]);
        let remove = c.alex.membership(c.space, &op);
        c.relay.push(&c.space, &[&remove]).await.push();
        let seed = [11u8; 32];
        let invite = c.alex.invite(c.space, seed, now_ms() + 3_600_000);
        c.relay.push(&c.space, &[&invite]).await.push();
        let before = c.relay.stored_hashes(&c.space);

        // What the removed device can still sign with its own key: forks of its last
        // stored event (large ones, as in the quota attack), its next event, a gap, and
        // a join with a live invite.
        let mut attempts = forks_after(&mut c.sam, after_join, 3, 256 * 1024, (c.space, &c.key));
        attempts.push(c.sam.changes(c.space, &c.key, b"next"));
        c.sam.seq += 5;
        attempts.push(c.sam.changes(c.space, &c.key, b"after a gap"));
        attempts.push(c.sam.join(c.space, seed));
        for ev in &attempts {
            let a = c.relay.push(&c.space, &[ev]).await;
            assert_eq!(
                (a.status, a.error().error),
                (StatusCode::FORBIDDEN, ErrorCode::NotAMember),
                "seq {}",
                ev.header().seq
            );
            // Not told to ask for an invite: a removed device never joins again.
            let said = a.error().message;
            assert!(said.contains("never writes or joins here again"), "{said}");
        }
        // A stranger's key is refused the same way, whatever its seq.
        let mut eve = Device::new("Eve");
        (eve.seq, eve.prev) = (6, [1; 32]);
        let stray = eve.changes(c.space, &c.key, b"seq 7 from nowhere");
        let a = c.relay.push(&c.space, &[&stray]).await;
        assert_eq!(
            (a.status, a.error().error),
            (StatusCode::FORBIDDEN, ErrorCode::NotAMember)
        );

        assert_eq!(c.relay.stored_hashes(&c.space), before);
        assert!(c.relay.forks().is_empty(), "no evidence from a non-member");
        assert_eq!(forks_header(&c, &c.alex).await, 0, "nobody is warned");
        // The remaining member writes on.
        let ev = c.alex.changes(c.space, &c.key, b"alex carries on");
        let newest = c.relay.push(&c.space, &[&ev]).await.push().cursor;
        // Re-sending its old stored event, the removed device learns that event's
        // cursor, not how far the space moved since its removal.
        let again = c.relay.push(&c.space, &[&last]).await.push();
        let its_own = again.results[0].cursor.expect("a duplicate's cursor");
        assert!(its_own < newest);
        assert_eq!(again.cursor, its_own, "the answer leaks the space's newest cursor");
        // So does re-sending an old event of a current member's, which it holds too.
        let copied = c.relay.push(&c.space, &[&read_then]).await.push();
        let its_own = copied.results[0].cursor.expect("a duplicate's cursor");
        assert!(its_own < newest);
        assert_eq!(copied.cursor, its_own, "the answer leaks the space's newest cursor");
        // A duplicate is answered with its own events' cursor (here the newest).
        assert_eq!(c.relay.push(&c.space, &[&ev]).await.push().cursor, newest);
    }

    #[tokio::test]
    async fn a_members_fork_spam_is_bounded_outside_the_quota_and_the_partners_still_push() {
        const ATTEMPTS: usize = 40;
        const FORK_SIZE: usize = 200 * 1024;
        let config = Config {
            space_max_bytes: 2 * 1024 * 1024,
            rate_per_device: Rate::OFF,
            rate_per_ip: Rate::OFF,
            ..Config::default()
        };
        let mut c = Couple::on(Relay::with_config(config.clone())).await;
        let at = (c.alex.seq, c.alex.prev);
        let first = c.alex.changes(c.space, &c.key, b"the event alex keeps");
        c.relay.push(&c.space, &[&first]).await.push();

        // 40 forks of 200 KiB: 8 MB of conflicting events against a 2 MiB quota.
        let forks = forks_after(&mut c.alex, at, ATTEMPTS, FORK_SIZE, (c.space, &c.key));
        for ev in &forks {
            let a = c.relay.push(&c.space, &[ev]).await;
            assert_eq!(
                (a.status, a.error().error),
                (StatusCode::CONFLICT, ErrorCode::Fork)
            );
        }
        let kept = c.relay.forks();
        assert_eq!(kept.len(), KEPT_PER_DEVICE, "evidence is bounded per device");
        assert!(kept.iter().all(|f| f.author == c.alex.key().to_vec()));
        assert!(kept.iter().all(|f| f.existing_hash == first.hash().to_vec()));
        // Every attempt is counted, and both partners are told.
        assert_eq!(forks_header(&c, &c.sam).await, ATTEMPTS as u64);
        assert_eq!(forks_header(&c, &c.alex).await, ATTEMPTS as u64);
        // Sending a kept one again adds nothing.
        let a = c.relay.push(&c.space, &[&forks[0]]).await;
        assert_eq!(a.status, StatusCode::CONFLICT);
        assert_eq!(c.relay.forks().len(), KEPT_PER_DEVICE);
        assert_eq!(forks_header(&c, &c.sam).await, ATTEMPTS as u64);

        // The evidence takes none of the quota: the partner stores 1 MiB, and the
        // equivocating member its next event.
        let big = c.sam.changes(c.space, &c.key, &noise(1024 * 1024));
        c.relay.push(&c.space, &[&big]).await.push();
        let next = c.alex.changes(c.space, &c.key, b"alex's next event");
        c.relay.push(&c.space, &[&next]).await.push();

        // After a restart the quota is counted from the events alone, and the forks too.
        c.relay.restart_with(config);
        let more = c.sam.changes(c.space, &c.key, &noise(600 * 1024));
        c.relay.push(&c.space, &[&more]).await.push();
        assert_eq!(forks_header(&c, &c.sam).await, ATTEMPTS as u64);
        // The quota itself still holds.
        let over = c.sam.changes(c.space, &c.key, &noise(1024 * 1024));
        let a = c.relay.push(&c.space, &[&over]).await;
        assert_eq!(a.error().error, ErrorCode::QuotaExceeded);
    }
}
