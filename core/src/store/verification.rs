//! Devices the user verified in person by comparing a code.

use rusqlite::params;

use super::{Store, StoreError};
use crate::event::SpaceId;

impl Store {
    /// Records that the user compared `code` in person and confirmed these devices.
    pub fn confirm_verified(
        &mut self,
        space: &SpaceId,
        code: &str,
        devices: &[crate::identity::DeviceKey],
    ) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        let now = self.now();
        let tx = self.conn.transaction()?;
        for d in devices {
            tx.execute(
                "INSERT INTO verified (space, device, code, at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (space, device) DO UPDATE SET code = excluded.code, at = excluded.at",
                params![space.to_string(), d.to_vec(), code, now],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Each device verified in a space with the code it was verified by (for a backup).
    pub fn verified_codes(
        &self,
        space: &SpaceId,
    ) -> Result<Vec<(crate::identity::DeviceKey, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT device, code FROM verified WHERE space = ?1")?;
        let rows = stmt.query_map(params![space.to_string()], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (device, code) = r?;
            if let Ok(k) = device.try_into() {
                out.push((k, code));
            }
        }
        Ok(out)
    }

    /// Devices the user has verified in a space.
    pub fn verified(&self, space: &SpaceId) -> Result<Vec<crate::identity::DeviceKey>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT device FROM verified WHERE space = ?1")?;
        let rows = stmt.query_map(params![space.to_string()], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for r in rows {
            if let Ok(k) = r?.try_into() {
                out.push(k);
            }
        }
        Ok(out)
    }
}
