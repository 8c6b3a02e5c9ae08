//! The checks a push that creates a space passes before any of its events is looked
//! at: the right to create (open registration, a creation token, or a member's personal
//! space), the per-address and per-token limits, and the headroom of `--max-db-bytes`,
//! in that order, so that a stranger learns nothing of the relay's limits or fill.

use duet_core::event::{Event, MembershipOp, SpaceId};

use super::PreparedPush;
use super::admission::Group;
use crate::creation::{CREATION_HEADROOM_PERCENT, CREATION_WINDOW_MS, Credential};
use crate::error::ApiError;
use crate::logging::Throttle;
use crate::store::WriteTxn;

/// Refused creations: at most a line a second, however fast strangers try.
static CREATION_LOG: Throttle = Throttle::per_second();

/// Spaces of an author looked at to find one it is a member of (a device is in two
/// spaces in practice; the bound keeps the work small whatever the database holds).
const MEMBER_SPACES_LOOKED_AT: u32 = 16;

impl Group<'_> {
    /// Whether `push`, whose first event `genesis` would create its space, may do so
    /// (see the module doc). Returns what to record of the creation.
    pub(super) fn check_creation<T: WriteTxn>(
        &mut self,
        txn: &mut T,
        push: &PreparedPush,
        genesis: &Event,
    ) -> Result<Credential, ApiError> {
        let mut credential = push.credential.clone();
        if let Some(sponsor) = self.check_right_to_create(txn, push, genesis)? {
            // Recorded in the token's place, so that it is counted as a token is.
            credential.token = Some(sponsor);
        }
        self.check_creation_limits(txn, push, &credential)?;
        self.check_creation_room(txn, push.space)?;
        Ok(credential)
    }

    /// Open registration, a member's first personal space, or a valid creation token;
    /// for a member's personal space, what it is recorded under (see
    /// [`Group::personal_of_member`]): a token sent with it is neither needed nor
    /// charged (a client that sends its token with every genesis would otherwise be
    /// refused a space the rules give it once the token's count is used up).
    fn check_right_to_create<T: WriteTxn>(
        &mut self,
        txn: &mut T,
        push: &PreparedPush,
        genesis: &Event,
    ) -> Result<Option<String>, ApiError> {
        let credential = &push.credential;
        if self.config.open_registration {
            return Ok(None);
        }
        if let Some(sponsor) = self.personal_of_member(txn, genesis)? {
            return Ok(Some(sponsor));
        }
        if credential.token.is_some() {
            return Ok(None);
        }
        Err(crate::creation::refused_without_token(
            credential, push.space,
        ))
    }

    /// Spaces created per client address in the last day, and per creation token (the
    /// `credential` the creation is recorded under).
    fn check_creation_limits<T: WriteTxn>(
        &self,
        txn: &mut T,
        push: &PreparedPush,
        credential: &Credential,
    ) -> Result<(), ApiError> {
        let c = self.config;
        if c.max_creations_per_ip > 0
            && let Some(address) = credential.address
        {
            let since = push.now_ms.saturating_sub(CREATION_WINDOW_MS);
            let made = txn.creations_from(&address.to_string(), since)?;
            if made >= c.max_creations_per_ip {
                return Err(ApiError::TooManySpaces(format!(
                    "this address created {} on this relay in the last 24 hours, its limit \
                     (--max-creations-per-ip); nothing was stored. Retry tomorrow, or ask the \
                     relay's operator to raise the limit",
                    duet_core::words::count(
                        usize::try_from(made).unwrap_or(usize::MAX),
                        "space",
                        "spaces"
                    )
                )));
            }
        }
        if c.max_creations_per_token > 0
            && let Some(token) = &credential.token
        {
            let made = txn.creations_with(token)?;
            if made >= c.max_creations_per_token {
                return Err(ApiError::TokenExhausted(format!(
                    "this creation token already created {}, its limit \
                     (--max-creations-per-token); nothing was stored. Ask the relay's \
                     operator for another token",
                    duet_core::words::count(
                        usize::try_from(made).unwrap_or(usize::MAX),
                        "space",
                        "spaces"
                    )
                )));
            }
        }
        Ok(())
    }

    /// The database below the share of `--max-db-bytes` in which spaces are created.
    fn check_creation_room<T: WriteTxn>(
        &self,
        txn: &mut T,
        space: SpaceId,
    ) -> Result<(), ApiError> {
        let c = self.config;
        if c.max_db_bytes > 0
            && let Some(size) = txn.db_bytes()?
            && size.saturating_mul(100) >= c.max_db_bytes.saturating_mul(CREATION_HEADROOM_PERCENT)
        {
            if let Some(suppressed) = CREATION_LOG.allow() {
                tracing::warn!(
                    %space,
                    size,
                    max_db_bytes = c.max_db_bytes,
                    suppressed,
                    "space creation refused: the database is past {CREATION_HEADROOM_PERCENT}% \
                     of --max-db-bytes"
                );
            }
            return Err(ApiError::NoRoomForSpaces(format!(
                "this relay's database is past {CREATION_HEADROOM_PERCENT}% of its cap and \
                 keeps the rest for the spaces it already holds, so it creates no new space; \
                 nothing was stored. Ask the relay's operator to raise --max-db-bytes, or use \
                 another relay"
            )));
        }
        Ok(())
    }

    /// Whether `genesis` creates a personal space, its author is already a current
    /// member of a shared space on this relay, and has no personal space here yet (a
    /// partner who joined creates their one personal space without a token; a member
    /// cannot go on creating personal spaces with it). Each person of a shared space
    /// creates one so, whichever of their devices asks: the creation is recorded under
    /// `personal:SPACE:PERSON` and a second one is refused (before, every device a
    /// person added with a device code created one more, so one token's creation made
    /// up to 256 spaces). Returns that record's key.
    fn personal_of_member<T: WriteTxn>(
        &mut self,
        txn: &mut T,
        genesis: &Event,
    ) -> Result<Option<String>, ApiError> {
        let personal = matches!(
            MembershipOp::decode(genesis),
            Ok(MembershipOp::Genesis { personal: true, .. })
        );
        if !personal {
            return Ok(None);
        }
        let author = genesis.header().author;
        let mut sponsor = None;
        for other in txn.spaces_of_author(&author, MEMBER_SPACES_LOOKED_AT)? {
            if other == genesis.header().space {
                continue;
            }
            let state = &self.space(txn, other)?.state;
            if state.is_personal() {
                return Ok(None);
            }
            if state.is_member(&author)
                && let Some(m) = state.all_devices().get(&author)
            {
                sponsor.get_or_insert(format!("personal:{other}:{}", hex::encode(m.person)));
            }
        }
        match sponsor {
            Some(key) if txn.creations_with(&key)? == 0 => Ok(Some(key)),
            _ => Ok(None),
        }
    }
}
