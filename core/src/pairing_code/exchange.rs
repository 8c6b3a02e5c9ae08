//! Both sides of a short-code exchange, over the relay's pairing mailboxes
//! ([`PairingRelay`], implemented by each front end's HTTP client).
//!
//! Creator: open a mailbox with SPAKE2 message A, show the code, wait for the claim,
//! check the partner's confirmation, then seal the long code (or burn the mailbox).
//! Partner: read A, answer with B and the confirmation, wait for the sealed long code.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use super::{Exchange, ShortCode, ShortCodeError};
use crate::event::SpaceId;
use crate::identity::Identity;
use crate::protocol::{
    ErrorCode, PAIRING_MAX_LIFETIME_SECS, PAIRING_MAX_WAIT_SECS, PairingClaim, PairingClaimed,
    PairingOffer, PairingOpen, PairingOpened, PairingSeal, PairingSealed,
};
use crate::sync::TransportError;

/// The relay's pairing calls (docs/protocol.md, "Short pairing codes"). The first three
/// are the creator's, signed by a member device of `space`; the last three are the
/// partner's, who is no member yet.
pub trait PairingRelay {
    /// `POST /v1/spaces/{space}/pairings`: opens a mailbox.
    fn open_pairing(
        &self,
        relay: &str,
        space: &SpaceId,
        body: &PairingOpen,
        signer: &Identity,
    ) -> Result<PairingOpened, TransportError>;
    /// `GET .../pairings/{nameplate}/claim?wait=SECS`: the claim, or `None` when none
    /// came within the wait.
    fn wait_claim(
        &self,
        relay: &str,
        space: &SpaceId,
        nameplate: u32,
        wait_secs: u64,
        signer: &Identity,
    ) -> Result<Option<PairingClaim>, TransportError>;
    /// `POST .../pairings/{nameplate}/sealed`: the sealed long code, or the abort.
    fn seal_pairing(
        &self,
        relay: &str,
        space: &SpaceId,
        nameplate: u32,
        body: &PairingSeal,
        signer: &Identity,
    ) -> Result<(), TransportError>;
    /// `GET /v1/pairings/{nameplate}`: the creator's message.
    fn pairing_offer(&self, relay: &str, nameplate: u32) -> Result<PairingOffer, TransportError>;
    /// `POST /v1/pairings/{nameplate}/claim`: the one claim.
    fn claim_pairing(
        &self,
        relay: &str,
        nameplate: u32,
        body: &PairingClaim,
    ) -> Result<PairingClaimed, TransportError>;
    /// `GET /v1/pairings/{nameplate}/sealed?token=T&wait=SECS`: the sealed long code, or
    /// `None` when it did not come within the wait.
    fn wait_sealed(
        &self,
        relay: &str,
        nameplate: u32,
        token: &str,
        wait_secs: u64,
    ) -> Result<Option<PairingSealed>, TransportError>;
}

/// How long the partner waits for the creator's device after claiming.
const ANSWER_WAIT: Duration = Duration::from_secs(120);

/// Why a short-code exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum PairingError {
    /// What was typed is not a short code.
    #[error(transparent)]
    Code(#[from] ShortCodeError),
    /// The relay could not be reached or refused otherwise.
    #[error(transparent)]
    Transport(TransportError),
    /// No open mailbox has this number.
    #[error(
        "no short code with the number {0} is open on this relay: it expired, was used, or the \
         number or the relay is wrong (both partners must use the same relay); check it with \
         your partner or ask for a new code"
    )]
    NoSuchCode(u32),
    /// The mailbox was claimed already.
    #[error(
        "this short code was already used (a short code works for one try); ask your partner \
         for a new one"
    )]
    Used,
    /// Partner's side: the creator found that the words did not match.
    #[error("the code did not match; check it with your partner and ask for a new one")]
    WrongCode,
    /// Creator's side: someone claimed the code with other words.
    #[error(
        "the code was tried with other words (a typo, or someone else trying codes), so it is \
         burned and nobody can use it now; make a new one and read it out carefully"
    )]
    Burned,
    /// Creator's side: nobody claimed the code in time.
    #[error("the short code expired unused; make a new one when your partner is ready")]
    Expired,
    /// Partner's side: the creator's device did not answer the claim.
    #[error(
        "your partner's device did not answer within 2 minutes (it may have stopped waiting); \
         the code is used up: ask your partner for a new one"
    )]
    NoAnswer,
    /// The relay holds as many open codes as it allows.
    #[error("the relay refused to open another short code: {0}")]
    TooMany(String),
    /// A message that no honest partner or relay sends.
    #[error("the pairing went wrong: {0}; make a new code and try again")]
    BadMessage(&'static str),
}

impl PairingError {
    /// Maps the relay's refusals of the pairing calls; `nameplate` for "no such code".
    fn from_transport(e: TransportError, nameplate: u32) -> PairingError {
        match &e {
            TransportError::Refused { body, .. } => match body.error {
                ErrorCode::NoSuchPairing => PairingError::NoSuchCode(nameplate),
                ErrorCode::PairingUsed => PairingError::Used,
                ErrorCode::PairingBurned => PairingError::WrongCode,
                ErrorCode::TooManyPairings => PairingError::TooMany(body.message.clone()),
                _ => PairingError::Transport(e),
            },
            _ => PairingError::Transport(e),
        }
    }
}

fn decode(b64: &str) -> Result<Vec<u8>, PairingError> {
    STANDARD
        .decode(b64)
        .map_err(|_| PairingError::BadMessage("a message is not base64"))
}

/// The creator's side, from the open mailbox to the sealed long code.
#[derive(Debug)]
pub struct Creator {
    code: ShortCode,
    exchange: Exchange,
    expires_at: i64,
    relay: String,
    space: SpaceId,
    long_code: Zeroizing<String>,
}

impl Creator {
    /// Opens a mailbox for `long_code` in `space`, living `lifetime_secs` (capped by the
    /// relay at [`PAIRING_MAX_LIFETIME_SECS`]).
    pub fn open(
        transport: &impl PairingRelay,
        relay: &str,
        space: SpaceId,
        signer: &Identity,
        long_code: String,
        lifetime_secs: u64,
    ) -> Result<Creator, PairingError> {
        // The words are chosen first: SPAKE2's first message needs them, the number
        // comes from the relay's answer.
        let mut code = ShortCode::random(0);
        let (exchange, msg) = Exchange::start_a(&code);
        let body = PairingOpen {
            msg: STANDARD.encode(msg),
            lifetime_secs: Some(lifetime_secs.min(PAIRING_MAX_LIFETIME_SECS)),
        };
        let opened = transport
            .open_pairing(relay, &space, &body, signer)
            .map_err(|e| PairingError::from_transport(e, 0))?;
        code.nameplate = opened.nameplate;
        Ok(Creator {
            code,
            exchange,
            expires_at: opened.expires_at,
            relay: relay.to_string(),
            space,
            long_code: Zeroizing::new(long_code),
        })
    }

    /// The code to read out.
    pub fn code(&self) -> ShortCode {
        self.code
    }

    /// When the mailbox goes away, ms since the epoch (the relay's clock).
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// Waits for the partner's claim (until the mailbox expires), then seals the long
    /// code when the partner's confirmation holds, or burns the mailbox when it does not.
    pub fn finish(
        self,
        transport: &impl PairingRelay,
        signer: &Identity,
    ) -> Result<(), PairingError> {
        let nameplate = self.code.nameplate;
        let left = self.expires_at.saturating_sub(crate::ids::now_ms()).max(0);
        // The relay's 404 ends the wait at expiry; this deadline only guards against a
        // relay that never says so.
        let deadline =
            Instant::now() + Duration::from_millis(left as u64) + Duration::from_secs(30);
        let claim = loop {
            if Instant::now() > deadline {
                return Err(PairingError::Expired);
            }
            let waited = transport.wait_claim(
                &self.relay,
                &self.space,
                nameplate,
                PAIRING_MAX_WAIT_SECS,
                signer,
            );
            match waited {
                Ok(Some(claim)) => break claim,
                Ok(None) => continue,
                Err(e) => {
                    return Err(match PairingError::from_transport(e, nameplate) {
                        PairingError::NoSuchCode(_) => PairingError::Expired,
                        other => other,
                    });
                }
            }
        };
        let key = decode(&claim.msg)
            .ok()
            .and_then(|msg| self.exchange.finish(&msg))
            .filter(|key| key.confirms(&claim.confirm));
        let seal = match &key {
            Some(key) => PairingSeal {
                sealed: Some(STANDARD.encode(key.seal(&self.long_code))),
                abort: false,
            },
            None => PairingSeal {
                sealed: None,
                abort: true,
            },
        };
        transport
            .seal_pairing(&self.relay, &self.space, nameplate, &seal, signer)
            .map_err(|e| PairingError::from_transport(e, nameplate))?;
        match key {
            Some(_) => Ok(()),
            None => Err(PairingError::Burned),
        }
    }
}

/// The partner's side: claims mailbox `code` on `relay` and returns the long code the
/// creator sealed for it. A wrong code gets [`PairingError::WrongCode`] (the creator
/// burns the mailbox).
pub fn claim_long_code(
    transport: &impl PairingRelay,
    relay: &str,
    code: &ShortCode,
) -> Result<Zeroizing<String>, PairingError> {
    let nameplate = code.nameplate;
    let refused = |e| PairingError::from_transport(e, nameplate);
    let offer = transport.pairing_offer(relay, nameplate).map_err(refused)?;
    let (exchange, msg_b) = Exchange::start_b(code);
    let key = exchange
        .finish(&decode(&offer.msg)?)
        .ok_or(PairingError::BadMessage(
            "the creator's message is not SPAKE2",
        ))?;
    let claim = PairingClaim {
        msg: STANDARD.encode(msg_b),
        confirm: key.confirmation(),
    };
    let PairingClaimed { token } = transport
        .claim_pairing(relay, nameplate, &claim)
        .map_err(refused)?;
    // The creator's device answers within seconds while it waits; one that stopped
    // waiting (closed, offline) would otherwise keep the partner waiting for the
    // mailbox's whole life.
    let deadline = Instant::now() + ANSWER_WAIT;
    let sealed = loop {
        if Instant::now() > deadline {
            return Err(PairingError::NoAnswer);
        }
        match transport.wait_sealed(relay, nameplate, &token, PAIRING_MAX_WAIT_SECS) {
            Ok(Some(sealed)) => break sealed,
            Ok(None) => continue,
            // The mailbox ended without a seal: the creator gave up or it expired.
            Err(e) => return Err(refused(e)),
        }
    };
    key.open(&decode(&sealed.sealed)?)
        .map(Zeroizing::new)
        .ok_or(PairingError::WrongCode)
}
