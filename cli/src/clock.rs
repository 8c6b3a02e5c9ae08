//! The clock every command uses. `DUET_NOW` (milliseconds since the Unix epoch, or an
//! RFC 3339 time) pins it, so tests can play a device whose clock is wrong.

use std::sync::OnceLock;

use crate::UsageError;

static FIXED: OnceLock<Option<i64>> = OnceLock::new();

/// Reads `DUET_NOW` once; a malformed value is a usage error.
pub fn init() -> anyhow::Result<()> {
    let fixed = match std::env::var("DUET_NOW") {
        Err(_) => None,
        Ok(v) => Some(
            v.trim()
                .parse::<i64>()
                .ok()
                .or_else(|| {
                    chrono::DateTime::parse_from_rfc3339(v.trim())
                        .ok()
                        .map(|t| t.timestamp_millis())
                })
                .ok_or_else(|| {
                    UsageError(format!(
                        "DUET_NOW must be milliseconds since 1970 or an RFC 3339 time (got {v:?}); unset it to use the system clock"
                    ))
                })?,
        ),
    };
    let _ = FIXED.set(fixed);
    Ok(())
}

/// Milliseconds since the Unix epoch.
pub fn now() -> i64 {
    FIXED
        .get()
        .copied()
        .flatten()
        .unwrap_or_else(duet_core::ids::now_ms)
}
