//! Short pairing codes at the application layer: the creator opens one for an invite it
//! just made, the partner redeems one for the long invite code it stands for
//! ([`crate::pairing_code`] holds the exchange).

use crate::device::Device;
use crate::invite::InviteCode;
use crate::pairing_code::{Creator, PairingError, PairingRelay, ShortCode, claim_long_code};

impl Device {
    /// Opens a short code on the relay for `invite` (made by [`Device::invite`] and
    /// synced, so that the relay knows it), living `lifetime_ms` (at most an hour).
    /// Show [`Creator::code`], then call [`Creator::finish`] with this device's
    /// identity to wait for the partner and hand over the invite.
    pub fn open_short_code(
        &self,
        transport: &impl PairingRelay,
        invite: &InviteCode,
        lifetime_ms: i64,
    ) -> Result<Creator, PairingError> {
        let lifetime_secs = u64::try_from(lifetime_ms / 1000).unwrap_or(0).max(1);
        Creator::open(
            transport,
            &invite.relay,
            invite.space,
            &self.me,
            invite.encode(),
            lifetime_secs,
        )
    }

    /// The partner's side: the long invite code that the short code `typed` stands for,
    /// fetched through `relay` (a short code names no relay). Join with it as with a
    /// typed long code.
    pub fn redeem_short_code(
        transport: &impl PairingRelay,
        relay: &str,
        typed: &str,
    ) -> Result<InviteCode, PairingError> {
        let code = ShortCode::parse(typed)?;
        let long = claim_long_code(transport, relay, &code)?;
        InviteCode::decode(&long)
            .map_err(|_| PairingError::BadMessage("the sealed invite code does not decode"))
    }
}
