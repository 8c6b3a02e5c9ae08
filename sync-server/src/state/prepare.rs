//! The first half of a push, before the writer sees it: the body split into events,
//! the cheap checks of their headers, the address charged for the signatures it asks
//! the relay to verify, the signatures verified, and the authors of new events charged.
//!
//! The order is the defence: what costs a signature is counted against the sender's
//! address before it is spent, and a device's own budget is spent only by events that
//! extend its chain, so that a copy of a genuine event, replayed by whoever holds one,
//! costs its sender and never locks its author out.

use duet_core::crypto::sha256;
use duet_core::event::{Event, Kind, SpaceId};
use duet_core::identity::DeviceKey;
use duet_core::membership::AdmitError;

use super::AppState;
use crate::creation::Credential;
use crate::error::ApiError;
use crate::writer::{PreparedPush, lock};

/// Pushes up to this size are verified on the async thread that received them.
pub const INLINE_VERIFY_BYTES: usize = 2048;

impl AppState {
    /// The first half of a push, run on the caller's thread (it verifies signatures:
    /// call it off the async threads): splits the body into events, decodes them and
    /// verifies every signature, and charges each author of a new event one request of
    /// its rate limit.
    ///
    /// Malformed input costs bounded work and gets a small answer: a framing error
    /// stops at one pass over the body and names the first bad frame with a count; an
    /// event that does not decode stops the decoding and is the only one answered for.
    /// Nothing of a malformed body reaches the writer.
    pub fn prepare_push(
        &self,
        space: SpaceId,
        body: &[u8],
        now_ms: i64,
    ) -> Result<PreparedPush, ApiError> {
        self.prepare_push_with(space, body, now_ms, Credential::default())
    }

    /// [`AppState::prepare_push`] with what the push presents to create a space.
    pub fn prepare_push_with(
        &self,
        space: SpaceId,
        body: &[u8],
        now_ms: i64,
        credential: Credential,
    ) -> Result<PreparedPush, ApiError> {
        let frames = crate::batch::split(body).map_err(ApiError::from_bad_body)?;
        let count = frames.len();
        // An event for another space is refused from its header: a body replayed to a
        // made-up space costs no signature.
        for (i, frame) in frames.iter().enumerate() {
            // Every frame is at least an event's header long (`split`).
            let claimed = Event::claimed_space(frame).unwrap_or(SpaceId([0; 16]));
            if claimed != space {
                let at = (i + 1, count);
                return Err(ApiError::event_for_another_space(
                    at,
                    sha256(frame),
                    claimed,
                    space,
                ));
            }
        }
        // A body for a space this relay does not hold is refused before any signature is
        // verified, unless it starts with the genesis that would create it: a body signed
        // once and replayed to a made-up space then costs the relay a lookup, not 96,000
        // signatures at every replay.
        // A push small enough to be verified on an async thread (a few events: cheap to
        // verify, and a database read must not block that thread) is not looked up.
        // One that would create it without a creation token is verified no further
        // than its genesis until that could be a member's personal space.
        let genesis = frames
            .first()
            .filter(|f| Event::claimed_kind(f) == Some(Kind::Genesis));
        if body.len() > INLINE_VERIFY_BYTES && !self.holds(space)? {
            let Some(genesis) = genesis else {
                return Err(ApiError::from_admit_error(AdmitError::NoSuchSpace));
            };
            if !self.may_try_to_create(&credential, genesis)? {
                return Err(crate::creation::refused_without_token(&credential, space));
            }
        }
        self.charge_signatures(credential.address, count)?;
        // Signatures are verified before the writer sees the push, so pushes verify in
        // parallel. Events after the first undecodable one are never examined.
        // A large batch is verified on every core.
        let events = crate::batch::decode_all(&frames, self.inner.cores).map_err(|(i, e)| {
            ApiError::undecodable(
                e,
                i + 1,
                count,
                sha256(frames.get(i).copied().unwrap_or(&[])),
            )
        })?;
        let hashes: Vec<[u8; 32]> = events.iter().map(Event::hash).collect();
        self.charge_devices(&self.authors_of_new_events(space, &events))?;
        Ok(PreparedPush {
            space,
            hashes,
            events,
            now_ms,
            credential,
            memory: None,
        })
    }

    /// Whether a push creating a space may have its signatures verified: open
    /// registration, a valid creation token, or a genesis signed by a device with events
    /// in another space here (perhaps a member's personal space; the writer judges it in
    /// full). Anything else costs one signature and a lookup, however many events the
    /// body holds: a body signed once and replayed without a token is refused so.
    /// Blocks.
    fn may_try_to_create(&self, credential: &Credential, genesis: &[u8]) -> Result<bool, ApiError> {
        if self.config().open_registration || credential.token.is_some() {
            return Ok(true);
        }
        let Ok(genesis) = Event::decode(genesis.to_vec()) else {
            return Ok(false);
        };
        let author = genesis.header().author;
        Ok(!lock(&self.inner.reader)
            .spaces_of_author(&author, 1)?
            .is_empty())
    }

    /// Whether the relay holds `space`: its cached state, else a stored event. Blocks.
    fn holds(&self, space: SpaceId) -> Result<bool, ApiError> {
        if lock(&self.inner.spaces)
            .get(&space)
            .is_some_and(|s| s.state.exists())
        {
            return Ok(true);
        }
        Ok(lock(&self.inner.reader).newest_cursor(&space)? > 0)
    }

    /// Charges `address` for `count` signatures to verify; 429 when it is over its
    /// budget (nothing is charged for an in-process push, which has no address).
    fn charge_signatures(
        &self,
        address: Option<std::net::IpAddr>,
        count: usize,
    ) -> Result<(), ApiError> {
        let (Some(limiter), Some(address)) = (&self.inner.signatures, address) else {
            return Ok(());
        };
        limiter
            .take_at(&address, count as u64, std::time::Instant::now())
            .map_err(|retry_after| {
                ApiError::rate_limited("this address (signatures to verify)", retry_after)
            })
    }

    /// The distinct authors of events past their author's head in the space's cached
    /// state: those that may extend a chain. An event at or below its author's head is
    /// a copy the relay holds (or a fork, refused): it is not its author's request. A
    /// space not cached charges every author (its state is read only by the writer).
    fn authors_of_new_events(&self, space: SpaceId, events: &[Event]) -> Vec<DeviceKey> {
        let mut spaces = lock(&self.inner.spaces);
        let cached = spaces.get(&space);
        let mut authors: Vec<DeviceKey> = events
            .iter()
            .map(Event::header)
            .filter(|h| {
                cached
                    .and_then(|c| c.state.head(&h.author))
                    .is_none_or(|(seq, _)| h.seq > seq)
            })
            .map(|h| h.author)
            .collect();
        drop(spaces);
        authors.sort_unstable();
        authors.dedup();
        authors
    }
}
