//! Writing an event: the header bytes, the payload (clear or sealed) and the signature.

use super::{
    Event, HEADER_LEN, Header, Kind, MAGIC, MembershipOp, SIG_LEN, VERSION, signing_message,
};
use crate::crypto::{SpaceKey, sha256};
use crate::identity::Identity;

pub(super) fn header_bytes(h: &Header, payload_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload_len + SIG_LEN);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(h.kind.code());
    out.extend_from_slice(&h.space.0);
    out.extend_from_slice(&h.author);
    out.extend_from_slice(&h.seq.to_be_bytes());
    out.extend_from_slice(&h.prev);
    out.extend_from_slice(&h.time.to_be_bytes());
    out
}
impl Event {
    /// Builds and signs an event. `header.author` must be `signer`'s key.
    fn sign_raw(header: Header, payload: &[u8], signer: &Identity) -> Event {
        let mut bytes = header_bytes(&header, payload.len());
        bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        bytes.extend_from_slice(payload);
        let sig = signer.sign(&signing_message(&bytes));
        bytes.extend_from_slice(&sig);
        let hash = sha256(&bytes);
        Event {
            header,
            bytes,
            hash,
        }
    }

    /// A signed membership event with its payload in the clear. The kind is the op's,
    /// whatever `header.kind` says, so a membership payload can never travel unencrypted
    /// under the `changes` kind.
    pub fn membership(mut header: Header, op: &MembershipOp, signer: &Identity) -> Event {
        header.kind = op.kind();
        Event::sign_raw(header, &op.encode(), signer)
    }

    /// A signed `changes` event of epoch 0 (the space's first key).
    pub fn changes(header: Header, plaintext: &[u8], key: &SpaceKey, signer: &Identity) -> Event {
        Event::changes_at(header, 0, plaintext, key, signer)
    }

    /// A signed `changes` event whose plaintext is sealed with the key of `epoch`. The
    /// payload is epoch (u32) || sealed; the associated data is the header without the
    /// length, followed by the epoch.
    pub fn changes_at(
        mut header: Header,
        epoch: u32,
        plaintext: &[u8],
        key: &SpaceKey,
        signer: &Identity,
    ) -> Event {
        header.kind = Kind::Changes;
        let mut aad = header_bytes(&header, 0);
        aad.extend_from_slice(&epoch.to_be_bytes());
        let mut payload = epoch.to_be_bytes().to_vec();
        payload.extend(key.seal(&aad, plaintext));
        Event::sign_raw(header, &payload, signer)
    }
}
