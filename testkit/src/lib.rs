//! Duet's one test kit, shared by the relay's tests (unit and integration) and the
//! end-to-end tests: a device key that signs its own hash chain ([`ChainSigner`]), a real
//! `duet-relay` process on 127.0.0.1 port 0 ([`RelayProcess`]), a plain HTTP/1.1 client
//! for the relay's endpoints ([`http`]), fresh PostgreSQL schemas ([`pg`]) and a couple
//! whose space is set up by signed events ([`Couple`]).
//!
//! Why this crate does not depend on duet-relay: the relay's own unit tests
//! (`sync-server/src/writer/tests.rs`) need the signer, and a testkit depending on the
//! relay would, there, link a second copy of the relay whose types are not the test's.
//! So the kit knows the relay only as a binary (given by path) and over HTTP; the relay's
//! in-process router harness stays in `sync-server/tests/common`.

pub mod couple;
pub mod http;
pub mod pg;
pub mod relay;
pub mod signer;

pub use couple::Couple;
pub use relay::{RelayBinary, RelayProcess, TOKEN_FILE_MODE};
pub use signer::ChainSigner;

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    duet_core::ids::now_ms()
}
