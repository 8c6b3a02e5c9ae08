//! duet-core: the engine of Duet.
//!
//! It holds the shared goals document ([`doc`], [`model`]), the device identity and
//! crypto ([`identity`], [`crypto`]), the signed event envelope ([`event`]), the
//! membership state machine shared with the relay ([`membership`]), the relay wire
//! protocol ([`protocol`]), the local SQLite store ([`store`]), and the sync algorithm
//! over an abstract transport ([`sync`]). It knows nothing of HTTP servers or terminals.

pub mod advice;
pub mod app;
pub mod backup;
pub mod bundle;
pub mod clock;
pub mod crypto;
pub mod device;
pub mod doc;
mod doc_cache;
pub mod event;
pub mod history;
pub mod identity;
pub mod ids;
pub mod invite;
pub mod keywrap;
pub mod lock;
pub mod membership;
pub mod model;
pub mod names;
mod opwalk;
pub mod pairing_code;
pub mod progress;
pub mod protocol;
pub mod readmodel;
pub mod rekey;
pub mod repair;
pub mod resolve;
pub mod rituals;
pub mod rules;
pub mod seal;
pub mod store;
pub mod sync;
pub mod verify;
pub mod view;
mod view_cache;
pub mod vocab;
pub mod words;

pub use vocab::{Area, Level, Status, Word};
