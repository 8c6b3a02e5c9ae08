//! What the columns of Automerge content declare, counted before Automerge reads them.
//!
//! Automerge's columns are run-length encoded: a few bytes declare a run of any number of
//! values. Automerge 0.12's parsers trust those counts: a literal run that declares more
//! values than its bytes hold makes the bundle parser read on past the end, one failed
//! read per declared value, for minutes or years (the spinning bundle found by fuzzing);
//! a delta column's run is expanded into memory whole; and an operation's predecessor
//! count reserves memory up front (a count in the billions aborts the process, which
//! no thread or deadline contains). So every column of a bundle or a change chunk is
//! walked here first, run by run, without expanding any run: a column that declares
//! more than [`MAX_COLUMN_VALUES`] values, a group column whose counts add up to more,
//! or a literal run longer than its bytes, is refused.
//!
//! Strings (map keys, commit messages) and actor ids are bounded too
//! ([`MAX_STRING_BYTES`], [`MAX_ACTOR_BYTES`]): every operation carries its key and the
//! path of the object it acts on, and a key of a megabyte written once and repeated in
//! a run (or sitting in the path of 100,000 operations) made each operation hash and copy
//! it, for minutes.

use super::{MAX_OPS_PER_EVENT, read_uleb};

/// The most values any one column may declare (and the most a group column's counts
/// may add up to): four per operation an event may carry, more than any honest column
/// holds (an operation has one value in each operation column, and rarely more than one
/// predecessor).
pub(super) const MAX_COLUMN_VALUES: u64 = 4 * MAX_OPS_PER_EVENT;

/// The longest string a column may hold. Duet's keys are ids of 32 characters and field
/// names; its commit messages are a few words.
pub(super) const MAX_STRING_BYTES: u64 = 1024;

/// The longest actor id. Duet's are the 32 bytes of a device key.
pub(super) const MAX_ACTOR_BYTES: u64 = 64;

/// Column types: the low three bits of a column specification (Automerge's
/// `storage/columns/column_specification.rs`).
const GROUP: u64 = 0;
const DELTA: u64 = 3;
const BOOLEAN: u64 = 4;
const STRING: u64 = 5;
const VALUE: u64 = 7;

/// Checks one column's data (already inflated) against `limit`; the reason otherwise.
pub(super) fn check_column(spec: u64, data: &[u8], limit: u64) -> Result<(), String> {
    let kind = spec & 0b111;
    let column = spec >> 4;
    let declared = match kind {
        // Raw bytes, read only as far as the value metadata says (and bounded by them).
        VALUE => return Ok(()),
        BOOLEAN => booleans(data, limit),
        _ => runs(kind, data, limit),
    };
    declared.map_err(|why| format!("column {column} (type {kind}) {why}"))
}

/// A boolean column: alternating run lengths (false first).
fn booleans(data: &[u8], limit: u64) -> Result<(), String> {
    let mut r = Reader(data);
    let mut total = 0u64;
    while !r.0.is_empty() {
        let n = r.uleb().ok_or("has a bad run length")?;
        total = total.saturating_add(n);
        if total > limit {
            return Err(format!("declares more than {limit} values"));
        }
    }
    Ok(())
}

/// A run-length encoded column: each run is a signed count, then one value repeated
/// (count > 0), that many literal values (count < 0), or a count of nulls (count = 0).
fn runs(kind: u64, data: &[u8], limit: u64) -> Result<(), String> {
    let mut r = Reader(data);
    let mut values = 0u64;
    // For a group column: the total its counts stand for.
    let mut grouped = 0u64;
    while !r.0.is_empty() {
        let count = r.sleb().ok_or("has a bad run count")?;
        match count {
            1.. => {
                let n = count.unsigned_abs();
                let v = skip_value(kind, &mut r)?;
                values = values.saturating_add(n);
                grouped = grouped.saturating_add(n.saturating_mul(v));
            }
            ..0 => {
                let n = count.unsigned_abs();
                // Every literal takes at least one byte.
                if n > r.0.len() as u64 {
                    return Err(format!(
                        "declares a literal run of {n} values in {} bytes",
                        r.0.len()
                    ));
                }
                for _ in 0..n {
                    let v = skip_value(kind, &mut r)?;
                    grouped = grouped.saturating_add(v);
                }
                values = values.saturating_add(n);
            }
            0 => {
                let nulls = r.uleb().ok_or("has a bad null count")?;
                values = values.saturating_add(nulls);
            }
        }
        if values > limit {
            return Err(format!("declares more than {limit} values"));
        }
        if kind == GROUP && grouped > limit {
            return Err(format!("groups more than {limit} values"));
        }
    }
    Ok(())
}

/// Skips one value of a column of `kind`; returns it when it is unsigned (0 otherwise).
fn skip_value(kind: u64, r: &mut Reader<'_>) -> Result<u64, String> {
    let truncated = || "has a truncated value".to_string();
    match kind {
        DELTA => r.sleb().map(|_| 0).ok_or_else(truncated),
        STRING => {
            let len = r.uleb().ok_or_else(truncated)?;
            if len > MAX_STRING_BYTES {
                return Err(format!(
                    "holds a string of {len} bytes (at most {MAX_STRING_BYTES})"
                ));
            }
            r.take(len).map(|_| 0).ok_or_else(truncated)
        }
        _ => r.uleb().ok_or_else(truncated),
    }
}

/// Checks every column of a change chunk's body (uncompressed: Automerge refuses
/// compressed columns in a change): its fixed fields first, then the operation columns.
/// The layout is Automerge 0.12's (`storage/change.rs`).
pub(super) fn check_change(body: &[u8], limit: u64) -> Result<(), String> {
    let mut r = Reader(body);
    r.skip_change_head()?;
    for (spec, data) in r.columns().ok_or("truncated columns")? {
        check_column(spec, data, limit)?;
    }
    Ok(())
}

/// A cursor over the bytes of Automerge content.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    pub(super) fn uleb(&mut self) -> Option<u64> {
        let (v, n) = read_uleb(self.0)?;
        self.0 = &self.0[n..];
        Some(v)
    }

    /// A signed LEB128 number of at most 10 bytes.
    fn sleb(&mut self) -> Option<i64> {
        let mut value: i64 = 0;
        for (i, &b) in self.0.iter().take(10).enumerate() {
            let shift = 7 * i as u32;
            value |= i64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                if shift + 7 < 64 && b & 0x40 != 0 {
                    value |= -1i64 << (shift + 7);
                }
                self.0 = &self.0[i + 1..];
                return Some(value);
            }
        }
        None
    }

    pub(super) fn take(&mut self, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok()?;
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    pub(super) fn skip_n(&mut self, count: u64, size: u64) -> Option<()> {
        self.take(count.checked_mul(size)?).map(|_| ())
    }

    /// Skips a bundle body's dependencies and actor ids, up to its columns (Automerge
    /// 0.12's `storage/bundle/storage.rs`).
    pub(super) fn skip_bundle_head(&mut self) -> Result<(), String> {
        let deps = self.uleb().ok_or("bad dependency count")?;
        self.skip_n(deps, 32).ok_or("truncated dependencies")?;
        let actors = self.uleb().ok_or("bad actor count")?;
        for _ in 0..actors {
            self.actor()?;
        }
        Ok(())
    }

    /// Skips a change chunk body's fixed fields, up to its operation columns (Automerge
    /// 0.12's `storage/change.rs`).
    pub(super) fn skip_change_head(&mut self) -> Result<(), String> {
        let deps = self.uleb().ok_or("bad dependency count")?;
        self.skip_n(deps, 32).ok_or("truncated dependencies")?;
        self.actor()?;
        self.uleb().ok_or("bad seq")?;
        self.uleb().ok_or("bad start op")?;
        self.sleb().ok_or("bad time")?;
        self.bytes().ok_or("truncated message")?;
        let others = self.uleb().ok_or("bad actor count")?;
        for _ in 0..others {
            self.actor()?;
        }
        Ok(())
    }

    /// A length-prefixed actor id, at most [`MAX_ACTOR_BYTES`] long.
    pub(super) fn actor(&mut self) -> Result<&'a [u8], String> {
        let len = self.uleb().ok_or("bad actor length")?;
        if len > MAX_ACTOR_BYTES {
            return Err(format!(
                "an actor id of {len} bytes (at most {MAX_ACTOR_BYTES})"
            ));
        }
        self.take(len).ok_or_else(|| "truncated actor".to_string())
    }

    /// Length-prefixed bytes.
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.uleb()?;
        self.take(len)
    }

    /// A column list (count, then each column's specification and length) followed by
    /// the columns' data, as (specification, data) pairs.
    pub(super) fn columns(&mut self) -> Option<Vec<(u64, &'a [u8])>> {
        let count = self.uleb()?;
        let mut lens = Vec::new();
        for _ in 0..count {
            // Every column read consumes input, so a huge count ends with the input.
            lens.push((self.uleb()?, self.uleb()?));
        }
        lens.into_iter()
            .map(|(spec, len)| Some((spec, self.take(len)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleb(v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut v = v;
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            let done = (v == 0 && byte & 0x40 == 0) || (v == -1 && byte & 0x40 != 0);
            out.push(if done { byte } else { byte | 0x80 });
            if done {
                return out;
            }
        }
    }

    #[test]
    fn signed_numbers_read_as_automerge_writes_them() {
        for v in [
            0,
            1,
            -1,
            63,
            64,
            -64,
            -65,
            1 << 40,
            -(1 << 40),
            i64::MAX,
            i64::MIN,
        ] {
            let bytes = sleb(v);
            let mut r = Reader(&bytes);
            assert_eq!(r.sleb(), Some(v), "{v}");
            assert!(r.0.is_empty());
        }
    }

    #[test]
    fn a_literal_run_longer_than_its_bytes_is_refused() {
        // An integer column (type 2): "-2^40 literals", then one value.
        let mut data = sleb(-(1 << 40));
        data.push(1);
        let err = check_column((4 << 4) | 2, &data, 10).expect_err("refused");
        assert!(err.contains("literal run"), "{err}");
        // Honest: three literals, a run of 5 sevens, 2 nulls.
        let mut data = sleb(-3);
        data.extend([1, 2, 3]);
        data.extend(sleb(5));
        data.push(7);
        data.extend(sleb(0));
        data.push(2);
        assert_eq!(check_column((4 << 4) | 2, &data, 10), Ok(()));
        assert!(check_column((4 << 4) | 2, &data, 9).is_err(), "10 values");
    }

    #[test]
    fn a_string_longer_than_a_key_or_a_message_is_refused() {
        // A string column (type 5): a run of 3 copies of one string.
        let column = |len: usize| {
            let mut data = sleb(3);
            super::super::write_uleb(&mut data, len as u64);
            data.extend(std::iter::repeat_n(b'k', len));
            data
        };
        assert_eq!(check_column((1 << 4) | 5, &column(1024), 10), Ok(()));
        let err = check_column((1 << 4) | 5, &column(1025), 10).expect_err("refused");
        assert!(err.contains("a string of 1025 bytes"), "{err}");
    }

    #[test]
    fn an_actor_id_longer_than_a_device_key_is_refused() {
        let mut long = vec![65];
        long.extend([7; 65]);
        assert!(Reader(&long).actor().is_err());
        let mut key = vec![32];
        key.extend([7; 32]);
        assert_eq!(Reader(&key).actor().map(<[u8]>::len), Ok(32));
    }

    #[test]
    fn a_group_whose_counts_add_up_past_the_limit_is_refused() {
        // One predecessor count of 2^33 (a group column, type 0), in one value.
        let mut data = sleb(1);
        data.extend([0x80, 0x80, 0x80, 0x80, 0x20]);
        let err = check_column(7 << 4, &data, 1000).expect_err("refused");
        assert!(err.contains("groups more than"), "{err}");
        // Booleans: runs of 6 false and 5 true are 11 values.
        assert!(check_column((3 << 4) | 4, &[6, 5], 10).is_err());
        assert_eq!(check_column((3 << 4) | 4, &[6, 4], 10), Ok(()));
    }
}
