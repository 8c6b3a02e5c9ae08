//! What a backup holds, once decrypted: this device's identity and, per space, its keys,
//! relay, document, the local changes not yet sent and the own events, those the relay
//! acknowledged and those it has not. Serialized as JSON (bytes in base64), versioned by the envelope.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::BackupError;
use crate::crypto::SpaceKey;
use crate::device::Device;
use crate::event::SpaceId;
use crate::identity::Identity;
use crate::store::{SpaceKind, SpaceRecord};

/// The decrypted contents of a backup file.
#[derive(Serialize, Deserialize)]
pub(super) struct Contents {
    /// When it was written (ms since the Unix epoch).
    pub(super) written_at: i64,
    pub(super) device: DeviceSecrets,
    pub(super) spaces: Vec<SpaceBackup>,
}

/// The device's identity.
#[derive(Serialize, Deserialize)]
pub(super) struct DeviceSecrets {
    /// The ed25519 secret key, base64.
    secret: String,
    person_id: String,
    name: String,
}

/// One space.
#[derive(Serialize, Deserialize)]
pub(super) struct SpaceBackup {
    pub(super) id: String,
    /// `shared` or `personal`.
    pub(super) kind: String,
    pub(super) relay: Option<String>,
    pub(super) create_token: Option<String>,
    /// Every key this device holds, by epoch (epoch 0 first), base64.
    pub(super) keys: Vec<(u32, String)>,
    /// The Automerge document (`save()`), base64.
    pub(super) document: String,
    /// Hashes (hex) of the local changes not yet packaged into an event.
    pub(super) pending: Vec<String>,
    /// This device's events the relay has not acknowledged, base64, oldest first.
    pub(super) unsent_events: Vec<String>,
    /// This device's events the relay acknowledged, base64, oldest first: given back to
    /// a relay that lost them. Absent from backups written before they were kept.
    #[serde(default)]
    pub(super) sent_events: Vec<String>,
    /// The devices verified in person (hex key, the safety code compared): a restored
    /// device need not compare codes again for what it had already confirmed. Absent
    /// from backups written before it was kept.
    #[serde(default)]
    pub(super) verified: Vec<(String, String)>,
}

fn damaged(what: &str) -> BackupError {
    BackupError::Damaged(format!("its {what} does not read"))
}

pub(super) fn unb64(s: &str, what: &str) -> Result<Vec<u8>, BackupError> {
    B64.decode(s).map_err(|_| damaged(what))
}

fn key32(s: &str, what: &str) -> Result<[u8; 32], BackupError> {
    let bytes = Zeroizing::new(unb64(s, what)?);
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| damaged(what))
}

impl Contents {
    /// Everything of `dev` a restore needs.
    pub(super) fn collect(dev: &Device) -> Result<Contents, BackupError> {
        let store = &dev.store;
        let me = store.require_identity()?;
        let mut spaces = Vec::new();
        for rec in store.spaces()? {
            let (doc, _) = store.load_doc(&rec.id, &me)?;
            let keys = store
                .epoch_keys(&rec.id)?
                .into_iter()
                .map(|(e, k)| (e, B64.encode(k.as_bytes())))
                .collect();
            spaces.push(SpaceBackup {
                id: rec.id.to_string(),
                kind: rec.kind.as_str().to_string(),
                relay: rec.relay.clone(),
                create_token: store.create_token(&rec.id)?,
                keys,
                document: B64.encode(doc.save()),
                pending: store
                    .pending_changes(&rec.id)?
                    .iter()
                    .map(|(_, c)| hex::encode(c.hash().0))
                    .collect(),
                unsent_events: store
                    .unacked_events(&rec.id)?
                    .iter()
                    .map(|e| B64.encode(e))
                    .collect(),
                sent_events: store
                    .acked_own_events(&rec.id, &me.device_key())?
                    .iter()
                    .map(|e| B64.encode(e))
                    .collect(),
                verified: store
                    .verified_codes(&rec.id)?
                    .into_iter()
                    .map(|(k, code)| (hex::encode(k), code))
                    .collect(),
            });
        }
        Ok(Contents {
            written_at: dev.now(),
            device: DeviceSecrets {
                secret: B64.encode(me.secret_bytes()),
                person_id: me.person_id.as_str().to_string(),
                name: me.name.clone(),
            },
            spaces,
        })
    }

    /// The identity it holds.
    pub(super) fn identity(&self) -> Result<Identity, BackupError> {
        let secret = Zeroizing::new(key32(&self.device.secret, "device key")?);
        Identity::from_parts(
            *secret,
            self.device.person_id.clone(),
            self.device.name.clone(),
        )
        .map_err(|_| damaged("person id"))
    }
}

impl SpaceBackup {
    /// The space's record as a fresh store keeps it: cursor 0, so that the first sync
    /// reads the whole history, this device's own events included.
    pub(super) fn record(&self) -> Result<SpaceRecord, BackupError> {
        let id = SpaceId::parse(&self.id).ok_or_else(|| damaged("space id"))?;
        let kind = match self.kind.as_str() {
            "shared" => SpaceKind::Shared,
            "personal" => SpaceKind::Personal,
            _ => return Err(damaged("space kind")),
        };
        let key = self
            .keys
            .iter()
            .find(|(e, _)| *e == 0)
            .ok_or_else(|| damaged("space key"))?;
        Ok(SpaceRecord {
            id,
            kind,
            key: SpaceKey::from_bytes(key32(&key.1, "space key")?),
            relay: self.relay.clone(),
            cursor: 0,
        })
    }

    /// The devices verified in person, by the code each was compared with; entries
    /// that do not read are left out (they are only marks, compared again at worst).
    pub(super) fn verified(&self) -> Vec<(crate::identity::DeviceKey, String)> {
        self.verified
            .iter()
            .filter_map(|(k, code)| {
                let key = <[u8; 32]>::try_from(hex::decode(k).ok()?).ok()?;
                Some((key, code.clone()))
            })
            .collect()
    }

    /// The keys of the epochs after the first.
    pub(super) fn later_keys(&self) -> Result<Vec<(u32, SpaceKey)>, BackupError> {
        self.keys
            .iter()
            .filter(|(e, _)| *e > 0)
            .map(|(e, k)| Ok((*e, SpaceKey::from_bytes(key32(k, "space key")?))))
            .collect()
    }
}
