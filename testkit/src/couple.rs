//! Two devices of two people in one shared space: Alex signs its genesis and an invite,
//! Sam joins with it. The caller pushes the events to whatever relay it drives.

use duet_core::crypto::SpaceKey;
use duet_core::event::{Event, SpaceId};

use crate::ChainSigner;

/// A space with an owner (Alex) and a partner (Sam) admitted by invite and join.
pub struct Couple {
    /// The shared space.
    pub space: SpaceId,
    /// A content key for the couple's `changes` events.
    pub key: SpaceKey,
    /// The owner.
    pub alex: ChainSigner,
    /// The partner.
    pub sam: ChainSigner,
}

/// The couple's first events: Alex's push (genesis and invite), then Sam's (the join).
pub struct CoupleEvents {
    /// Genesis and invite, pushed together.
    pub owner: [Event; 2],
    /// The join, pushed after them.
    pub join: Event,
}

impl Couple {
    /// A new couple with the invite of `seed`, valid for an hour, and the events that
    /// set the space up (3 events, in two pushes).
    pub fn signed(seed: [u8; 32]) -> (Couple, CoupleEvents) {
        let space = SpaceId::generate();
        let mut alex = ChainSigner::new("Alex");
        let mut sam = ChainSigner::new("Sam");
        let g = alex.genesis(space, false);
        let i = alex.invite(space, seed, crate::now_ms() + 3_600_000);
        let join = sam.join(space, seed);
        let couple = Couple {
            space,
            key: SpaceKey::generate(),
            alex,
            sam,
        };
        (
            couple,
            CoupleEvents {
                owner: [g, i],
                join,
            },
        )
    }
}
