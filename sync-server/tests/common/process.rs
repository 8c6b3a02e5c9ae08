//! The real `duet-relay` binary (the one cargo built for these tests) as a child process
//! on 127.0.0.1, through the test kit's spawner and HTTP client, and a shared space set
//! up over it.

use std::path::PathBuf;

use duet_core::event::SpaceId;
use duet_testkit::{ChainSigner, Couple, RelayBinary, RelayProcess};

#[allow(unused_imports)] // each test file uses some of them
pub use duet_testkit::http::{Reply, http, parse_reply, read_reply};

/// The relay binary of this crate's integration tests.
pub struct CargoRelay;

impl RelayBinary for CargoRelay {
    const LOG_LEVEL: &'static str = "error";
    fn path() -> PathBuf {
        PathBuf::from(env!("CARGO_BIN_EXE_duet-relay"))
    }
}

/// A `duet-relay` process with a database in its own temporary directory.
pub type Proc = RelayProcess<CargoRelay>;

/// A shared space on the relay process: Alex pushed its genesis and an invite, Sam
/// joined with it (3 events, one push each).
pub struct Space {
    pub id: SpaceId,
    pub key: duet_core::crypto::SpaceKey,
    pub alex: ChainSigner,
    pub sam: ChainSigner,
}

impl Space {
    pub fn create(p: &Proc) -> Space {
        let (c, events) = Couple::signed(duet_core::ids::random_bytes::<32>());
        let [g, i] = &events.owner;
        p.push(&c.space, &[g, i]).ok();
        p.push(&c.space, &[&events.join]).ok();
        Space {
            id: c.space,
            key: c.key,
            alex: c.alex,
            sam: c.sam,
        }
    }
}
