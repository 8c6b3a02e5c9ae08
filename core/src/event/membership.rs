//! Membership payloads (genesis, invite, join, remove): signed, in the clear.

use super::{Event, EventError, Kind, SpaceId};
use crate::identity::DeviceKey;

/// Domain separation prefix of the invite key's signature inside a join event.
pub const JOIN_DOMAIN: &[u8] = b"duet/join/v1\0";

/// A membership event's payload, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipOp {
    /// Payload: person id (16) || personal flag (1) || X25519 public key (32).
    Genesis {
        /// The creator's person id.
        person: [u8; 16],
        /// Whether this is a personal space (only its owner's devices may join).
        personal: bool,
        /// The creator device's X25519 key (new space keys are wrapped to it).
        x25519: [u8; 32],
    },
    /// Payload: invite public key (32) || expires at, ms since epoch (8), then for a
    /// device code || the person id (16) the new device joins as. Without it the invite
    /// admits a new person (the partner).
    Invite {
        /// The one-time invite key.
        invite_key: DeviceKey,
        /// After this instant the invite admits no one.
        expires_at: i64,
        /// For a device code: the person (the inviter's own) the new device belongs to.
        /// `None`: a partner invite, which admits a person not yet in the space.
        person: Option<[u8; 16]>,
    },
    /// Payload: invite public key (32) || person id (16) || X25519 public key (32) ||
    /// invite signature (64) over JOIN_DOMAIN || space id || joining device key || person id.
    Join {
        /// The invite key being used.
        invite_key: DeviceKey,
        /// The joining person's id.
        person: [u8; 16],
        /// The joining device's X25519 key.
        x25519: [u8; 32],
        /// The invite key's signature binding the joiner.
        invite_sig: [u8; 64],
    },
    /// Payload: removed device key (32) || new epoch (u32) || ephemeral X25519 public key
    /// (32) || recipient count (u16) || per recipient: device key (32) || wrapped new
    /// space key (72) || commitment to the new key (32; absent in removals made before
    /// it existed). Every remaining member is a recipient; the removed device is not.
    Remove {
        /// The device that loses membership.
        device: DeviceKey,
        /// The epoch the new space key starts.
        epoch: u32,
        /// Ephemeral X25519 public key of the key wrapping.
        eph: [u8; 32],
        /// The new space key wrapped for each remaining member device.
        keys: Vec<(DeviceKey, [u8; crate::keywrap::WRAPPED_LEN])>,
        /// [`crate::keywrap::commitment`] to the new key, checked by every recipient.
        commit: Option<[u8; 32]>,
    },
    /// Payload: the invite public key (32) of an unused invite, which then admits no one.
    Revoke {
        /// The invite key withdrawn.
        invite_key: DeviceKey,
    },
    /// Payload: empty. The author's person leaves the space: every device of that person
    /// stops being a member. The key does not change here (the leaver cannot make a key
    /// it does not know): a remaining member's [`MembershipOp::Rotate`] follows.
    Leave,
    /// Payload: new epoch (u32) || ephemeral X25519 public key (32) || recipient count
    /// (u16) || per recipient: device key (32) || wrapped new space key (72) || commitment
    /// to the new key (32). A new key for exactly the current members.
    Rotate {
        /// The epoch the new space key starts.
        epoch: u32,
        /// Ephemeral X25519 public key of the key wrapping.
        eph: [u8; 32],
        /// The new space key wrapped for each member device.
        keys: Vec<(DeviceKey, [u8; crate::keywrap::WRAPPED_LEN])>,
        /// [`crate::keywrap::commitment`] to the new key.
        commit: [u8; 32],
    },
}

/// A new space key handed out by a removal or a rotation.
#[derive(Debug, Clone, Copy)]
pub struct Rekey<'a> {
    /// The epoch it starts.
    pub epoch: u32,
    /// Ephemeral X25519 public key of the wrapping.
    pub eph: &'a [u8; 32],
    /// The key wrapped per recipient.
    pub keys: &'a [(DeviceKey, [u8; crate::keywrap::WRAPPED_LEN])],
    /// The commitment to the key, when the event carries one.
    pub commit: Option<&'a [u8; 32]>,
}

impl MembershipOp {
    /// The event kind this op travels as.
    pub fn kind(&self) -> Kind {
        match self {
            MembershipOp::Genesis { .. } => Kind::Genesis,
            MembershipOp::Invite { .. } => Kind::Invite,
            MembershipOp::Join { .. } => Kind::Join,
            MembershipOp::Remove { .. } => Kind::Remove,
            MembershipOp::Revoke { .. } => Kind::Revoke,
            MembershipOp::Leave => Kind::Leave,
            MembershipOp::Rotate { .. } => Kind::Rotate,
        }
    }

    /// The new key a removal or rotation hands out.
    pub fn rekey(&self) -> Option<Rekey<'_>> {
        match self {
            MembershipOp::Remove {
                epoch,
                eph,
                keys,
                commit,
                ..
            } => Some(Rekey {
                epoch: *epoch,
                eph,
                keys,
                commit: commit.as_ref(),
            }),
            MembershipOp::Rotate {
                epoch,
                eph,
                keys,
                commit,
            } => Some(Rekey {
                epoch: *epoch,
                eph,
                keys,
                commit: Some(commit),
            }),
            _ => None,
        }
    }

    /// The payload bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            MembershipOp::Genesis {
                person,
                personal,
                x25519,
            } => {
                out.extend_from_slice(person);
                out.push(u8::from(*personal));
                out.extend_from_slice(x25519);
            }
            MembershipOp::Invite {
                invite_key,
                expires_at,
                person,
            } => {
                out.extend_from_slice(invite_key);
                out.extend_from_slice(&expires_at.to_be_bytes());
                if let Some(person) = person {
                    out.extend_from_slice(person);
                }
            }
            MembershipOp::Join {
                invite_key,
                person,
                x25519,
                invite_sig,
            } => {
                out.extend_from_slice(invite_key);
                out.extend_from_slice(person);
                out.extend_from_slice(x25519);
                out.extend_from_slice(invite_sig);
            }
            MembershipOp::Remove {
                device,
                epoch,
                eph,
                keys,
                commit,
            } => {
                out.extend_from_slice(device);
                push_rekey(&mut out, *epoch, eph, keys);
                if let Some(c) = commit {
                    out.extend_from_slice(c);
                }
            }
            MembershipOp::Revoke { invite_key } => out.extend_from_slice(invite_key),
            MembershipOp::Leave => {}
            MembershipOp::Rotate {
                epoch,
                eph,
                keys,
                commit,
            } => {
                push_rekey(&mut out, *epoch, eph, keys);
                out.extend_from_slice(commit);
            }
        }
        out
    }

    /// Decodes the payload of a membership event.
    pub fn decode(event: &Event) -> Result<MembershipOp, EventError> {
        let p = event.payload();
        let take32 = |r: std::ops::Range<usize>| -> [u8; 32] {
            let mut a = [0u8; 32];
            a.copy_from_slice(&p[r]);
            a
        };
        match event.kind() {
            Kind::Genesis => {
                if p.len() != 49 || p[16] > 1 {
                    return Err(EventError::BadPayload("genesis"));
                }
                let mut person = [0u8; 16];
                person.copy_from_slice(&p[..16]);
                Ok(MembershipOp::Genesis {
                    person,
                    personal: p[16] == 1,
                    x25519: take32(17..49),
                })
            }
            Kind::Invite => {
                if p.len() != 40 && p.len() != 56 {
                    return Err(EventError::BadPayload("invite"));
                }
                let mut t = [0u8; 8];
                t.copy_from_slice(&p[32..40]);
                let person = (p.len() == 56).then(|| {
                    let mut person = [0u8; 16];
                    person.copy_from_slice(&p[40..56]);
                    person
                });
                Ok(MembershipOp::Invite {
                    invite_key: take32(0..32),
                    expires_at: i64::from_be_bytes(t),
                    person,
                })
            }
            Kind::Join => {
                if p.len() != 144 {
                    return Err(EventError::BadPayload("join"));
                }
                let mut person = [0u8; 16];
                person.copy_from_slice(&p[32..48]);
                let mut invite_sig = [0u8; 64];
                invite_sig.copy_from_slice(&p[80..144]);
                Ok(MembershipOp::Join {
                    invite_key: take32(0..32),
                    person,
                    x25519: take32(48..80),
                    invite_sig,
                })
            }
            Kind::Remove => decode_remove(p),
            Kind::Revoke if p.len() == 32 => Ok(MembershipOp::Revoke {
                invite_key: take32(0..32),
            }),
            Kind::Revoke => Err(EventError::BadPayload("revoke")),
            Kind::Leave if p.is_empty() => Ok(MembershipOp::Leave),
            Kind::Leave => Err(EventError::BadPayload("leave")),
            Kind::Rotate => decode_rotate(p),
            Kind::Changes => Err(EventError::BadPayload("changes (not a membership event)")),
        }
    }

    /// The message an invite key signs to admit `joiner` as `person` into `space`.
    pub fn join_message(space: &SpaceId, joiner: &DeviceKey, person: &[u8; 16]) -> Vec<u8> {
        let mut m = JOIN_DOMAIN.to_vec();
        m.extend_from_slice(&space.0);
        m.extend_from_slice(joiner);
        m.extend_from_slice(person);
        m
    }
}

type Wrapped = Vec<(DeviceKey, [u8; crate::keywrap::WRAPPED_LEN])>;

/// A rekey payload's epoch, ephemeral key and wrapped keys, and the bytes after them.
type RekeyParts<'a> = (u32, [u8; 32], Wrapped, &'a [u8]);

fn push_rekey(out: &mut Vec<u8>, epoch: u32, eph: &[u8; 32], keys: &Wrapped) {
    out.extend_from_slice(&epoch.to_be_bytes());
    out.extend_from_slice(eph);
    out.extend_from_slice(&(keys.len().min(u16::MAX as usize) as u16).to_be_bytes());
    for (d, w) in keys.iter().take(u16::MAX as usize) {
        out.extend_from_slice(d);
        out.extend_from_slice(w);
    }
}

/// Reads `epoch || eph || count || entries` from the start of `p`; returns them and the
/// rest of `p` after the entries.
fn read_rekey<'a>(p: &'a [u8], what: &'static str) -> Result<RekeyParts<'a>, EventError> {
    const ENTRY: usize = 32 + crate::keywrap::WRAPPED_LEN;
    if p.len() < 38 {
        return Err(EventError::BadPayload(what));
    }
    let mut eph = [0u8; 32];
    eph.copy_from_slice(&p[4..36]);
    let n = u16::from_be_bytes([p[36], p[37]]) as usize;
    let body = 38 + n * ENTRY;
    if p.len() < body {
        return Err(EventError::BadPayload(what));
    }
    let keys = (0..n)
        .map(|i| {
            let at = 38 + i * ENTRY;
            let mut d = [0u8; 32];
            d.copy_from_slice(&p[at..at + 32]);
            let mut w = [0u8; crate::keywrap::WRAPPED_LEN];
            w.copy_from_slice(&p[at + 32..at + ENTRY]);
            (d, w)
        })
        .collect();
    Ok((
        u32::from_be_bytes([p[0], p[1], p[2], p[3]]),
        eph,
        keys,
        &p[body..],
    ))
}

/// Reads a remove payload: the removed device, the new epoch, the ephemeral key, the
/// wrapped keys of every recipient and, in removals made since it exists, the commitment.
fn decode_remove(p: &[u8]) -> Result<MembershipOp, EventError> {
    if p.len() < 32 {
        return Err(EventError::BadPayload("remove"));
    }
    let mut device = [0u8; 32];
    device.copy_from_slice(&p[..32]);
    let (epoch, eph, keys, rest) = read_rekey(&p[32..], "remove")?;
    let commit = match rest.len() {
        0 => None,
        32 => {
            let mut c = [0u8; 32];
            c.copy_from_slice(rest);
            Some(c)
        }
        _ => return Err(EventError::BadPayload("remove")),
    };
    Ok(MembershipOp::Remove {
        device,
        epoch,
        eph,
        keys,
        commit,
    })
}

/// Reads a rotate payload: like a removal's without the device, the commitment required.
fn decode_rotate(p: &[u8]) -> Result<MembershipOp, EventError> {
    let (epoch, eph, keys, rest) = read_rekey(p, "rotate")?;
    let commit: [u8; 32] = rest
        .try_into()
        .map_err(|_| EventError::BadPayload("rotate"))?;
    Ok(MembershipOp::Rotate {
        epoch,
        eph,
        keys,
        commit,
    })
}
