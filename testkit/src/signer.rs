//! A device key signing its own hash chain in one space: each event it makes (genesis,
//! invite, join, changes, any membership operation) carries the next sequence number and
//! the hash of the one before.

use duet_core::crypto::SpaceKey;
use duet_core::event::{Event, Header, Kind, MembershipOp, SpaceId};
use duet_core::identity::{DeviceKey, Identity, keypair_from_seed};
use duet_core::protocol::ReadAuth;
use ed25519_dalek::Signer;

/// A device signing its own hash chain in one space.
pub struct ChainSigner {
    /// The device's identity (its keys and person).
    pub id: Identity,
    /// The sequence number of the last event signed (0 before the first).
    pub seq: u64,
    /// The hash of the last event signed (zeros before the first).
    pub prev: [u8; 32],
}

impl ChainSigner {
    /// A fresh device with a new identity and an empty chain.
    pub fn new(name: &str) -> ChainSigner {
        ChainSigner {
            id: Identity::generate(name),
            seq: 0,
            prev: [0; 32],
        }
    }

    /// Another device of the same person.
    pub fn sibling(&self, name: &str) -> ChainSigner {
        let mut d = ChainSigner::new(name);
        d.id.person_id = self.id.person_id.clone();
        d
    }

    /// The device's public key.
    pub fn key(&self) -> DeviceKey {
        self.id.device_key()
    }

    /// The device's person id as bytes.
    pub fn person(&self) -> [u8; 16] {
        self.id.person()
    }

    /// The header of this device's next event.
    pub fn header(&self, kind: Kind, space: SpaceId) -> Header {
        Header {
            kind,
            space,
            author: self.key(),
            seq: self.seq + 1,
            prev: self.prev,
            time: crate::now_ms(),
        }
    }

    /// This device's X25519 key (published at genesis and join).
    pub fn x25519(&self) -> [u8; 32] {
        duet_core::keywrap::x25519_public(&self.id)
    }

    /// Makes `ev` the chain's last event.
    pub fn advance(&mut self, ev: &Event) {
        self.seq = ev.header().seq;
        self.prev = ev.hash();
    }

    /// Signs the next event: a membership operation.
    pub fn membership(&mut self, space: SpaceId, op: &MembershipOp) -> Event {
        let ev = Event::membership(self.header(op.kind(), space), op, &self.id);
        self.advance(&ev);
        ev
    }

    /// [`ChainSigner::membership`] with the event's time set to `time`.
    pub fn membership_at(&mut self, space: SpaceId, op: &MembershipOp, time: i64) -> Event {
        let mut h = self.header(op.kind(), space);
        h.time = time;
        let ev = Event::membership(h, op, &self.id);
        self.advance(&ev);
        ev
    }

    /// Signs the genesis of a new space owned by this device.
    pub fn genesis(&mut self, space: SpaceId, personal: bool) -> Event {
        let op = MembershipOp::Genesis {
            person: self.person(),
            personal,
            x25519: self.x25519(),
        };
        self.membership(space, &op)
    }

    /// An invite with the key made from `seed`, valid until `expires_at`.
    pub fn invite(&mut self, space: SpaceId, seed: [u8; 32], expires_at: i64) -> Event {
        let (_, invite_key) = keypair_from_seed(seed);
        self.membership(
            space,
            &MembershipOp::Invite {
                invite_key,
                expires_at,
                person: None,
            },
        )
    }

    /// A join with the invite of this seed.
    pub fn join(&mut self, space: SpaceId, seed: [u8; 32]) -> Event {
        let op = self.join_op(space, seed);
        self.membership(space, &op)
    }

    /// The join operation with the invite of this seed, not signed into the chain yet.
    pub fn join_op(&self, space: SpaceId, seed: [u8; 32]) -> MembershipOp {
        let (sk, invite_key) = keypair_from_seed(seed);
        let person = self.person();
        let msg = MembershipOp::join_message(&space, &self.key(), &person);
        MembershipOp::Join {
            invite_key,
            person,
            x25519: self.x25519(),
            invite_sig: sk.sign(&msg).to_bytes(),
        }
    }

    /// Signs the next event: `plain` encrypted with `key` as a `changes` event.
    pub fn changes(&mut self, space: SpaceId, key: &SpaceKey, plain: &[u8]) -> Event {
        let ev = Event::changes(self.header(Kind::Changes, space), plain, key, &self.id);
        self.advance(&ev);
        ev
    }

    /// Signed read headers for `GET path?query`.
    pub fn read_auth(&self, path: &str, query: &str) -> ReadAuth {
        ReadAuth::sign(&self.id, "GET", path, query)
    }
}
