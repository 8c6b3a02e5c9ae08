//! Guarded parsing of the Automerge content of `changes` events from other devices.
//!
//! Any member holding the space key can sign anything, so the content of a `changes`
//! event (an Automerge bundle, codec 1, or raw change chunks, codec 2) is hostile until
//! parsed. Automerge 0.12's parsers are not built for that: the bundle parser is marked
//! experimental and can panic or loop for a very long time on malformed input (both
//! found by `core/tests/decoders.rs`); it never checks the checksum in a chunk header;
//! and compressed change chunks and DEFLATE bundle columns are inflated without any size
//! limit (a 1 MiB event made a partner's sync use 3.2 GB). So before content reaches it:
//!
//! - every chunk header is checked here: magic bytes, chunk type, exact length, and the
//!   SHA-256 checksum Automerge writes (for a compressed change, that of the inflated
//!   change), which refuses corrupted bytes at once;
//! - everything compressed is inflated here first, against one budget per event
//!   ([`MAX_INFLATED_BYTES`]): a compressed change chunk is handed to Automerge already
//!   inflated, a bundle's DEFLATE columns are measured before Automerge inflates them, and
//!   content past the budget is refused without being inflated further;
//! - the parse runs on its own thread with a deadline that grows with the input
//!   ([`deadline_for`]), so that crafted content with valid checksums cannot hang the
//!   device: past the deadline it is refused and the stuck thread is left to end with the
//!   process (the sync stops after a few of those, see `sync`);
//! - every column's runs are walked before Automerge reads them (`columns`): a run-length
//!   encoded column may declare billions of values in a few bytes, and Automerge's
//!   parsers trust the counts (they spin past a column's end, or reserve memory for a
//!   count, which aborts the process: no thread contains that);
//! - the operations are counted before anything else reads them ([`MAX_OPS_PER_EVENT`]):
//!   run-length encoding lets a few bytes stand for billions of operations, which the
//!   owner rules would otherwise expand in memory;
//! - a panic in the parser ends only that thread and becomes an ordinary error; the
//!   panic message is kept off the terminal.

mod columns;

use std::io::Read;
use std::sync::{Once, mpsc};
use std::time::Duration;

use sha2::{Digest, Sha256};

use columns::{MAX_COLUMN_VALUES, Reader};

/// The deadline of any parse: a small input parses in milliseconds; the slack is for
/// slow devices and loaded machines.
pub const BASE_DEADLINE: Duration = Duration::from_secs(3);
/// Added to the deadline per started MiB of input. A full-size event's bundle parses in
/// well under a second even in a debug build.
pub const DEADLINE_PER_MIB: Duration = Duration::from_secs(2);
/// How many bytes the content of one event may expand to once decompressed (and how
/// many bytes of change chunks Automerge is handed for one event). An honest event is
/// at most [`MAX_EVENT_BYTES`] compressed; its columns compress a few times at most, and
/// `sync` splits what it sends so that every event it makes fits.
pub const MAX_INFLATED_BYTES: usize = 8 * MAX_EVENT_BYTES;

/// Largest event accepted anywhere: `crate::event::MAX_EVENT_BYTES`, restated here so
/// that the parser of untrusted payloads depends on nothing above it (a test keeps the
/// two equal).
const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// Why a changes plaintext could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PayloadError {
    /// Empty plaintext.
    #[error("empty changes payload")]
    Empty,
    /// Codec byte unknown to this build.
    #[error(
        "changes in a format this version of Duet does not know (codec {0}): sent by a newer version (a newer Duet here reads them) or made by hand"
    )]
    UnknownCodec(u8),
    /// The Automerge data did not parse.
    #[error("changes do not parse: {0}")]
    Malformed(String),
    /// Decompressed, the content would exceed what one event may cost in memory.
    #[error(
        "the changes expand to more than {limit} bytes when decompressed (a compression bomb); refused without reading further"
    )]
    TooLarge {
        /// The cap, in decompressed bytes per event.
        limit: usize,
    },
    /// More Automerge operations than one event may carry.
    #[error(
        "the changes hold more than {limit} operations, more than one event may carry; refused"
    )]
    TooManyOps {
        /// The cap, in operations per event.
        limit: u64,
    },
    /// The parser did not finish before its deadline (crafted content can make it spin).
    #[error(
        "the Automerge content did not parse within {} s; refused (crafted or corrupted content)",
        .0.as_secs_f64()
    )]
    Stalled(std::time::Duration),
}

/// How many Automerge operations one event may carry. Each costs memory when the owner
/// rules expand it; an honest event stays far below (a change with more operations than
/// this, such as a pasted text of a million characters, is refused by its receiver).
pub const MAX_OPS_PER_EVENT: u64 = 1 << 20;

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const CHANGE_CHUNK: u8 = 1;
const COMPRESSED_CHANGE_CHUNK: u8 = 2;
const BUNDLE_CHUNK: u8 = 3;
/// The bit of a column specification that marks its data as DEFLATE-compressed.
const COLUMN_DEFLATE: u64 = 0b1000;
const PARSER_THREAD: &str = "duet-bundle-parse";

/// Sets the deadline of every parse, in milliseconds, in place of [`deadline_for`]'s
/// (for a device much slower than the defaults allow for, and for tests of what a
/// stalled parse does).
pub const DEADLINE_VAR: &str = "DUET_PARSE_DEADLINE_MS";

/// The deadline for parsing `len` bytes of content: [`BASE_DEADLINE`] plus
/// [`DEADLINE_PER_MIB`] per started MiB, or [`DEADLINE_VAR`]'s when it gives more.
/// Content that misses its deadline is refused for good, so a release build never
/// takes less than the default (a debug build does: the tests of a stalled parse make
/// every parse miss one).
pub fn deadline_for(len: usize) -> Duration {
    let mib = u32::try_from(len.div_ceil(1 << 20)).unwrap_or(u32::MAX);
    let default = BASE_DEADLINE.saturating_add(DEADLINE_PER_MIB.saturating_mul(mib));
    match deadline_var() {
        Ok(Some(ms)) if cfg!(debug_assertions) => Duration::from_millis(ms),
        Ok(Some(ms)) => Duration::from_millis(ms).max(default),
        _ => default,
    }
}

/// [`DEADLINE_VAR`]'s milliseconds when it is set; an error that says what is wrong
/// with it when it holds no number, or (in a release build) less than the default.
pub fn deadline_var() -> Result<Option<u64>, String> {
    match std::env::var(DEADLINE_VAR) {
        Ok(v) => checked_deadline(&v, cfg!(debug_assertions)).map(Some),
        Err(_) => Ok(None),
    }
}

/// A deadline variable's value `v`, in milliseconds; `below`: whether one under the
/// default is taken.
fn checked_deadline(v: &str, below: bool) -> Result<u64, String> {
    let base = BASE_DEADLINE.as_millis();
    let Ok(ms) = v.trim().parse::<u64>() else {
        return Err(format!(
            "{DEADLINE_VAR} must be milliseconds (got {v:?}); unset it to use the default \
             ({base} ms plus {} ms per MiB)",
            DEADLINE_PER_MIB.as_millis()
        ));
    };
    if u128::from(ms) < base && !below {
        return Err(format!(
            "{DEADLINE_VAR}={ms} is below the default of {base} ms, and content that misses \
             its deadline is refused for good; unset it, or set more on a slow device"
        ));
    }
    Ok(ms)
}

/// What one parse may cost.
#[derive(Debug, Clone, Copy)]
struct Limits {
    deadline: Duration,
    inflated: usize,
    ops: u64,
    /// The most values one column may declare.
    columns: u64,
}

impl Limits {
    fn for_input(len: usize) -> Limits {
        Limits {
            deadline: deadline_for(len),
            inflated: MAX_INFLATED_BYTES,
            ops: MAX_OPS_PER_EVENT,
            columns: MAX_COLUMN_VALUES,
        }
    }
}

/// Parses a bundle (codec 1) into its changes, within [`deadline_for`] its size.
pub fn parse(data: &[u8]) -> Result<Vec<automerge::Change>, PayloadError> {
    parse_bundle(data, Limits::for_input(data.len()))
}

/// Parses a bundle into its changes, refusing it if the parse takes longer than `deadline`.
pub fn parse_within(
    data: &[u8],
    deadline: Duration,
) -> Result<Vec<automerge::Change>, PayloadError> {
    parse_bundle(
        data,
        Limits {
            deadline,
            ..Limits::for_input(data.len())
        },
    )
}

/// Parses raw changes (codec 2: each `u32 length || change chunk`), within
/// [`deadline_for`] their size.
pub fn parse_raw(data: &[u8]) -> Result<Vec<automerge::Change>, PayloadError> {
    parse_raw_with(data, Limits::for_input(data.len()))
}

/// How many bytes a bundle's columns hold once inflated (what a receiver counts against
/// [`MAX_INFLATED_BYTES`]); checks the header too.
pub fn inflated_len(data: &[u8]) -> Result<usize, PayloadError> {
    let body = chunk_body(data, BUNDLE_CHUNK)?;
    walk_bundle(body, usize::MAX, None)
}

fn parse_bundle(data: &[u8], limits: Limits) -> Result<Vec<automerge::Change>, PayloadError> {
    let body = chunk_body(data, BUNDLE_CHUNK)?;
    verify_checksum(data[4..8].try_into().ok(), BUNDLE_CHUNK, body)?;
    guarded(data.to_vec(), limits.deadline, move |bytes| {
        let body = chunk_body(bytes, BUNDLE_CHUNK)?;
        walk_bundle(body, limits.inflated, Some(limits.columns))?;
        let bundle = automerge::Bundle::try_from(bytes).map_err(malformed)?;
        // The declared operation counts first: converting a bundle whose run-length
        // columns stand for billions of operations would take as long as it says.
        let declared = bundle
            .iter_changes()
            .map(|c| c.max_op.saturating_sub(c.start_op).saturating_add(1))
            .fold(0u64, u64::saturating_add);
        if declared > limits.ops {
            return Err(PayloadError::TooManyOps { limit: limits.ops });
        }
        let changes = bundle.to_changes().map_err(malformed)?;
        count_ops(&changes, limits.ops)?;
        Ok(changes)
    })
}

fn parse_raw_with(data: &[u8], limits: Limits) -> Result<Vec<automerge::Change>, PayloadError> {
    guarded(data.to_vec(), limits.deadline, move |mut rest| {
        // Every chunk is checked (and inflated, within the budget) before Automerge
        // reads any of them.
        let mut budget = limits.inflated;
        let mut chunks = Vec::new();
        while !rest.is_empty() {
            let Some((len, tail)) = rest.split_first_chunk::<4>() else {
                return Err(PayloadError::Malformed("truncated change length".into()));
            };
            let len = u32::from_be_bytes(*len) as usize;
            if tail.len() < len {
                return Err(PayloadError::Malformed("truncated change".into()));
            }
            let (chunk, next) = tail.split_at(len);
            chunks.push(checked_change(chunk, &mut budget, limits)?);
            rest = next;
        }
        let mut out = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            out.push(automerge::Change::from_bytes(chunk).map_err(malformed)?);
            count_ops(&out, limits.ops)?;
        }
        Ok(out)
    })
}

fn malformed(e: impl std::fmt::Display) -> PayloadError {
    PayloadError::Malformed(e.to_string())
}

/// Refuses changes that together carry more than `limit` operations.
fn count_ops(changes: &[automerge::Change], limit: u64) -> Result<(), PayloadError> {
    let total = changes
        .iter()
        .map(|c| c.len() as u64)
        .fold(0u64, u64::saturating_add);
    if total > limit {
        return Err(PayloadError::TooManyOps { limit });
    }
    Ok(())
}

/// Checks one change chunk of a raw payload and returns it as Automerge should read it:
/// a change chunk as it is, a compressed one inflated here (within `budget`, which it
/// uses up) and re-headed as a plain change chunk.
fn checked_change(
    chunk: &[u8],
    budget: &mut usize,
    limits: Limits,
) -> Result<Vec<u8>, PayloadError> {
    let cap = limits.inflated;
    let bad = |why: &str| PayloadError::Malformed(format!("change chunk: {why}"));
    if chunk.len() < 10 {
        return Err(bad("too short"));
    }
    if chunk[0..4] != MAGIC {
        return Err(bad("not an Automerge chunk"));
    }
    let checksum: [u8; 4] = chunk[4..8].try_into().map_err(|_| bad("too short"))?;
    let kind = chunk[8];
    if kind != CHANGE_CHUNK && kind != COMPRESSED_CHANGE_CHUNK {
        return Err(bad("not a change chunk"));
    }
    let body = chunk_body(chunk, kind)?;
    let body = if kind == CHANGE_CHUNK {
        take_budget(budget, body.len(), cap)?;
        std::borrow::Cow::Borrowed(body)
    } else {
        std::borrow::Cow::Owned(inflate(body, budget, cap)?)
    };
    // A compressed chunk carries the checksum of the change it inflates to.
    verify_checksum(Some(checksum), CHANGE_CHUNK, &body)?;
    columns::check_change(&body, limits.columns).map_err(|why| bad(&why))?;
    let mut out = Vec::with_capacity(body.len() + 19);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&checksum);
    out.push(CHANGE_CHUNK);
    write_uleb(&mut out, body.len() as u64);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Uses `n` bytes of the budget, or refuses.
fn take_budget(budget: &mut usize, n: usize, cap: usize) -> Result<(), PayloadError> {
    *budget = budget
        .checked_sub(n)
        .ok_or(PayloadError::TooLarge { limit: cap })?;
    Ok(())
}

/// Inflates raw DEFLATE data, never past what is left of `budget` (then refused).
fn inflate(data: &[u8], budget: &mut usize, cap: usize) -> Result<Vec<u8>, PayloadError> {
    let mut out = Vec::new();
    let limit = u64::try_from(*budget).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::DeflateDecoder::new(data)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| PayloadError::Malformed(format!("compressed change: {e}")))?;
    take_budget(budget, out.len(), cap)?;
    Ok(out)
}

/// Counts what raw DEFLATE data inflates to, stopping (refused) past `budget`; keeps
/// nothing of it.
fn inflated_size(data: &[u8], budget: &mut usize, cap: usize) -> Result<(), PayloadError> {
    let limit = u64::try_from(*budget).unwrap_or(u64::MAX).saturating_add(1);
    let n = std::io::copy(
        &mut flate2::read::DeflateDecoder::new(data).take(limit),
        &mut std::io::sink(),
    )
    .map_err(|e| PayloadError::Malformed(format!("compressed column: {e}")))?;
    take_budget(budget, usize::try_from(n).unwrap_or(usize::MAX), cap)
}

/// Walks a bundle body (deps, actors, then the change and the op columns with their
/// data), as a receiver's parse and a sender's measure both do, and returns the size of its column data once inflated, refusing it past `cap`;
/// with `runs`, also refuses a column that declares more values than that
/// (`columns::check_column`). The layout is Automerge 0.12's (`storage/bundle/storage.rs`).
fn walk_bundle(body: &[u8], cap: usize, runs: Option<u64>) -> Result<usize, PayloadError> {
    let bad = |why: &str| PayloadError::Malformed(format!("bundle: {why}"));
    let mut r = Reader(body);
    r.skip_bundle_head().map_err(|why| bad(&why))?;
    let mut budget = cap;
    for section in ["change", "operation"] {
        let columns = r
            .columns()
            .ok_or_else(|| bad(&format!("truncated {section} columns")))?;
        for (spec, data) in columns {
            let data = match (spec & COLUMN_DEFLATE != 0, runs) {
                (true, Some(_)) => std::borrow::Cow::Owned(inflate(data, &mut budget, cap)?),
                (true, None) => {
                    inflated_size(data, &mut budget, cap)?;
                    continue;
                }
                (false, _) => {
                    take_budget(&mut budget, data.len(), cap)?;
                    std::borrow::Cow::Borrowed(data)
                }
            };
            if let Some(limit) = runs {
                columns::check_column(spec, &data, limit)
                    .map_err(|why| bad(&format!("{section} {why}")))?;
            }
        }
    }
    Ok(cap - budget)
}

/// Checks a chunk's header (magic, type, a length that covers exactly the rest) and
/// returns its body.
fn chunk_body(data: &[u8], kind: u8) -> Result<&[u8], PayloadError> {
    let what = if kind == BUNDLE_CHUNK {
        "bundle"
    } else {
        "change chunk"
    };
    let bad = |why: &str| PayloadError::Malformed(format!("{what} header: {why}"));
    if data.len() < 10 {
        return Err(bad("too short"));
    }
    if data[0..4] != MAGIC {
        return Err(bad("not an Automerge chunk"));
    }
    if data[8] != kind {
        return Err(bad(&format!("not a {what}")));
    }
    let (len, len_bytes) = read_uleb(&data[9..]).ok_or_else(|| bad("bad length"))?;
    let body = &data[9 + len_bytes..];
    if u64::try_from(body.len()).ok() != Some(len) {
        return Err(bad("length does not match the data"));
    }
    Ok(body)
}

/// Checks a chunk checksum: the first 4 bytes of SHA-256 over the chunk type, the
/// LEB128 length and the body, as Automerge computes it.
fn verify_checksum(checksum: Option<[u8; 4]>, kind: u8, body: &[u8]) -> Result<(), PayloadError> {
    let mut head = vec![kind];
    write_uleb(&mut head, body.len() as u64);
    let mut hasher = Sha256::new();
    hasher.update(&head);
    hasher.update(body);
    let digest = hasher.finalize();
    if checksum.is_none_or(|c| digest[0..4] != c) {
        return Err(PayloadError::Malformed(
            "chunk checksum mismatch (the data is corrupted)".into(),
        ));
    }
    Ok(())
}

/// Reads an unsigned LEB128 number of at most 10 bytes; returns it and its size. As
/// strict as the `leb128` crate Automerge reads with: a tenth byte above 1 overflows 64
/// bits and is refused (Automerge's boolean columns loop forever on a run length they
/// cannot read, so a check here must not let one through).
fn read_uleb(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (i, &b) in bytes.iter().take(10).enumerate() {
        if i == 9 && b > 1 {
            return None;
        }
        let part = u64::from(b & 0x7f);
        value |= part.checked_shl(7 * i as u32)?;
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Writes an unsigned LEB128 number in its shortest form (as Automerge does).
fn write_uleb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Runs `parse` over `data` on its own thread; past `deadline` the content is refused
/// and the thread is left to end with the process.
fn guarded<T: Send + 'static>(
    data: Vec<u8>,
    deadline: Duration,
    parse: impl FnOnce(&[u8]) -> Result<T, PayloadError> + Send + 'static,
) -> Result<T, PayloadError> {
    silence_parser_panics();
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name(PARSER_THREAD.into())
        .spawn(move || {
            // The receiver may have given up already; nothing is left to tell then.
            let _ = tx.send(parse(&data));
        })
        .map_err(|e| PayloadError::Malformed(format!("could not start the parser: {e}")))?;
    match rx.recv_timeout(deadline) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(PayloadError::Stalled(deadline)),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(PayloadError::Malformed(
            "the Automerge content is malformed (its parser failed)".into(),
        )),
    }
}

/// Installs (once) a panic hook that stays quiet for the parser thread and passes every
/// other panic to the hook that was there before.
fn silence_parser_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() != Some(PARSER_THREAD) {
                previous(info);
            }
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use std::io::Write;
    use std::time::Instant;

    #[test]
    fn a_parse_deadline_below_the_default_or_no_number_is_refused_where_it_would_refuse_content() {
        assert!(checked_deadline("abc", true).is_err_and(|e| e.contains("milliseconds")));
        assert!(checked_deadline("0", false).is_err_and(|e| e.contains("refused for good")));
        assert_eq!(checked_deadline("0", true), Ok(0), "a debug build's tests");
        assert_eq!(checked_deadline(" 60000 ", false), Ok(60_000));
    }

    #[test]
    fn the_event_size_restated_here_is_the_events() {
        assert_eq!(MAX_EVENT_BYTES, crate::event::MAX_EVENT_BYTES);
    }

    /// A bundle body, found by fuzzing, on which Automerge's parser spins for minutes,
    /// carrying a correct checksum as a hostile member could compute.
    const SPINNING: &[u8] = include_bytes!("../tests/fixtures/spinning_bundle.bin");

    /// A chunk of `kind` around `body`, with the checksum Automerge would write for
    /// `sum_of` (the body itself, or the inflated change of a compressed chunk).
    fn chunk(kind: u8, body: &[u8], sum_kind: u8, sum_of: &[u8]) -> Vec<u8> {
        let mut head = vec![sum_kind];
        write_uleb(&mut head, sum_of.len() as u64);
        let digest = Sha256::new()
            .chain_update(&head)
            .chain_update(sum_of)
            .finalize();
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&digest[0..4]);
        out.push(kind);
        write_uleb(&mut out, body.len() as u64);
        out.extend_from_slice(body);
        out
    }

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).expect("deflate");
        e.finish().expect("deflate")
    }

    /// Raw DEFLATE data of `n` zero bytes, without holding them.
    fn zeros_deflated(n: usize) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        let block = vec![0u8; 1 << 20];
        let mut left = n;
        while left > 0 {
            let k = left.min(block.len());
            e.write_all(&block[..k]).expect("deflate");
            left -= k;
        }
        e.finish().expect("deflate")
    }

    fn raw_payload(chunks: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in chunks {
            out.extend_from_slice(&(c.len() as u32).to_be_bytes());
            out.extend_from_slice(c);
        }
        out
    }

    /// A document with `n` changes of a few text-heavy operations each.
    fn doc_with(n: usize) -> automerge::Automerge {
        let mut doc = automerge::Automerge::new();
        for i in 0..n {
            let mut tx = doc.transaction();
            let key = format!("rating-{i:06}");
            let note = format!("note number {i} about how the week went; ").repeat(4);
            tx.put(automerge::ROOT, key.as_str(), note).expect("put");
            tx.put(automerge::ROOT, "level", (i % 5) as i64 - 2)
                .expect("put");
            tx.commit();
        }
        doc
    }

    /// The bundle of every change of `doc`, as Automerge writes it.
    fn bundle_of(doc: &automerge::Automerge) -> Vec<u8> {
        let changes = doc.get_changes(&[]);
        doc.bundle(changes.iter().map(|c| c.hash()))
            .expect("bundle")
            .bytes()
            .to_vec()
    }

    /// A column list with its data, re-encoded with column `spec` set to `data` (added in
    /// its place if the content left it out), followed by whatever came after it.
    fn with_column(mut r: columns::Reader<'_>, spec: u64, data: &[u8]) -> Vec<u8> {
        let mut cols: Vec<(u64, Vec<u8>)> = r
            .columns()
            .expect("columns")
            .into_iter()
            .filter(|(s, _)| s & !COLUMN_DEFLATE != spec)
            .map(|(s, d)| (s, d.to_vec()))
            .collect();
        cols.push((spec, data.to_vec()));
        cols.sort_by_key(|(s, _)| s & !COLUMN_DEFLATE);
        let mut out = Vec::new();
        write_uleb(&mut out, cols.len() as u64);
        for (s, d) in &cols {
            write_uleb(&mut out, *s);
            write_uleb(&mut out, d.len() as u64);
        }
        for (_, d) in &cols {
            out.extend_from_slice(d);
        }
        out.extend_from_slice(r.0);
        out
    }

    /// An honest bundle of a small document whose operation column `spec` says `data`.
    fn bundle_with_op_column(spec: u64, data: &[u8]) -> Vec<u8> {
        let bundle = bundle_of(&doc_with(2));
        let body = chunk_body(&bundle, BUNDLE_CHUNK).expect("body");
        let mut r = columns::Reader(body);
        r.skip_bundle_head().expect("deps and actors");
        let mut changes = columns::Reader(r.0);
        changes.columns().expect("change columns");
        // The change columns as they are, then the operation columns with `spec` replaced.
        let head = body.len() - changes.0.len();
        let mut new = body[..head].to_vec();
        new.extend(with_column(columns::Reader(changes.0), spec, data));
        chunk(BUNDLE_CHUNK, &new, BUNDLE_CHUNK, &new)
    }

    /// An honest change chunk (uncompressed) whose operation column `spec` says `data`.
    fn change_with_op_column(spec: u64, data: &[u8]) -> Vec<u8> {
        let doc = doc_with(1);
        let change = doc.get_changes(&[])[0].clone();
        let mut raw = change.raw_bytes().to_vec();
        if raw[8] == COMPRESSED_CHANGE_CHUNK {
            let mut budget = usize::MAX;
            raw = checked_change(&raw, &mut budget, Limits::for_input(raw.len())).expect("inflate");
        }
        let body = chunk_body(&raw, CHANGE_CHUNK).expect("body").to_vec();
        let mut r = columns::Reader(&body);
        r.skip_change_head().expect("the change's fixed fields");
        let head = body.len() - r.0.len();
        let mut new = body[..head].to_vec();
        new.extend(with_column(columns::Reader(r.0), spec, data));
        chunk(CHANGE_CHUNK, &new, CHANGE_CHUNK, &new)
    }

    /// The operations' insert column: a boolean column, id 3.
    const INSERT: u64 = (3 << 4) | 4;
    /// The operations' predecessor counts: a group column, id 7.
    const PRED_COUNT: u64 = 7 << 4;
    /// A run length of more than 64 bits: Automerge's reader cannot read it.
    const UNREADABLE_RUN: [u8; 10] = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f];

    #[test]
    fn a_bundle_whose_boolean_run_cannot_be_read_is_refused_before_automerge_loops_on_it() {
        // The fuzzed bundle: Automerge's boolean decoder retries an unreadable run length
        // forever (it spun past any deadline, leaving a busy thread behind).
        chunk_body(SPINNING, BUNDLE_CHUNK).expect("the fixture has a valid header");
        let crafted = bundle_with_op_column(INSERT, &UNREADABLE_RUN);
        for (what, bytes) in [("fuzzed", SPINNING), ("crafted", &crafted[..])] {
            let err = parse(bytes).expect_err("refused");
            assert!(
                matches!(&err, PayloadError::Malformed(m) if m.contains("operation column 3 (type 4)")),
                "{what}: {err}"
            );
        }
        let mut raw = vec![];
        let change = change_with_op_column(INSERT, &UNREADABLE_RUN);
        raw.extend_from_slice(&(change.len() as u32).to_be_bytes());
        raw.extend_from_slice(&change);
        let err = parse_raw(&raw).expect_err("refused");
        assert!(
            matches!(&err, PayloadError::Malformed(m) if m.contains("column 3 (type 4)")),
            "raw: {err}"
        );
    }

    #[test]
    fn content_declaring_billions_of_predecessors_is_refused_before_automerge_reserves_them() {
        // One operation with 2^33 predecessors: Automerge reserves room for them before
        // reading one, and a failed allocation aborts the whole process.
        let mut data = vec![1];
        data.extend([0x80, 0x80, 0x80, 0x80, 0x20]);
        let bundle = bundle_with_op_column(PRED_COUNT, &data);
        // The fixture the CLI's tests send is one such bundle.
        let fixture = include_bytes!("../tests/fixtures/billion_predecessors_bundle.bin");
        for bytes in [&bundle[..], fixture] {
            let err = parse(bytes).expect_err("refused");
            assert!(err.to_string().contains("groups more than"), "{err}");
        }
        let change = change_with_op_column(PRED_COUNT, &data);
        let err = parse_raw(&raw_payload(&[change])).expect_err("refused");
        assert!(err.to_string().contains("groups more than"), "{err}");
    }

    #[test]
    fn content_rewritten_with_its_own_column_still_parses() {
        // The helpers above change only what they are told to.
        let parsed = parse(&bundle_with_op_column(INSERT, &[4])).expect("parses");
        assert_eq!(parsed.len(), 2);
        let change = change_with_op_column(INSERT, &[2]);
        assert_eq!(parse_raw(&raw_payload(&[change])).expect("parses").len(), 1);
    }

    #[test]
    fn a_parse_past_its_deadline_is_refused_as_stalled() {
        // No content known stalls the parser now; the deadline stays for what is not known.
        let bundle = bundle_of(&doc_with(3000));
        let err = parse_within(&bundle, Duration::ZERO).expect_err("refused");
        assert!(matches!(err, PayloadError::Stalled(_)), "{err}");
        assert!(err.to_string().contains("did not parse within"), "{err}");
    }

    #[test]
    fn a_corrupted_bundle_is_refused_by_its_checksum() {
        let mut bytes = SPINNING.to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let err = parse(&bytes).expect_err("refused");
        assert!(err.to_string().contains("checksum"), "{err}");
    }

    #[test]
    fn the_deadline_grows_with_the_input() {
        assert_eq!(deadline_for(10), BASE_DEADLINE + DEADLINE_PER_MIB);
        assert_eq!(
            deadline_for(MAX_EVENT_BYTES),
            BASE_DEADLINE + DEADLINE_PER_MIB * 4
        );
        assert!(deadline_for(usize::MAX) > deadline_for(MAX_EVENT_BYTES));
    }

    #[test]
    fn an_honest_bundle_with_compressed_columns_parses_and_is_measured() {
        let doc = doc_with(400);
        let changes = doc.get_changes(&[]);
        let bundle = bundle_of(&doc);
        let bytes = &bundle[..];
        let inflated = inflated_len(bytes).expect("measured");
        assert!(
            inflated > bytes.len(),
            "the columns are compressed: {inflated} <= {}",
            bytes.len()
        );
        let parsed = parse(bytes).expect("parses");
        assert_eq!(parsed.len(), changes.len());
        assert!(
            parsed
                .iter()
                .zip(&changes)
                .all(|(a, b)| a.hash() == b.hash())
        );
    }

    #[test]
    fn a_bundle_column_that_inflates_past_the_cap_is_refused_quickly() {
        // No dependencies, no actors, one DEFLATE change column of 64 MiB of zeros, no
        // operation columns.
        let bomb = zeros_deflated(64 << 20);
        let mut body = vec![0, 0, 1];
        write_uleb(&mut body, (1 << 4) | COLUMN_DEFLATE);
        write_uleb(&mut body, bomb.len() as u64);
        body.extend_from_slice(&bomb);
        body.push(0);
        let bytes = chunk(BUNDLE_CHUNK, &body, BUNDLE_CHUNK, &body);
        let started = Instant::now();
        let err = parse(&bytes).expect_err("refused");
        assert_eq!(
            err,
            PayloadError::TooLarge {
                limit: MAX_INFLATED_BYTES
            }
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn honest_raw_changes_parse_plain_or_compressed() {
        let doc = doc_with(3);
        let changes = doc.get_changes(&[]);
        let mut chunks: Vec<Vec<u8>> = changes.iter().map(|c| c.raw_bytes().to_vec()).collect();
        // The last one as Automerge compresses it: the body deflated, the checksum kept.
        let plain = chunks.pop().expect("a change");
        let body = chunk_body(&plain, CHANGE_CHUNK).expect("a change chunk");
        chunks.push(chunk(
            COMPRESSED_CHANGE_CHUNK,
            &deflate(body),
            CHANGE_CHUNK,
            body,
        ));
        let parsed = parse_raw(&raw_payload(&chunks)).expect("parses");
        assert_eq!(
            parsed.iter().map(|c| c.hash()).collect::<Vec<_>>(),
            changes.iter().map(|c| c.hash()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_compressed_change_that_inflates_past_the_cap_is_refused_quickly() {
        let bomb = zeros_deflated(256 << 20);
        let bytes = raw_payload(&[chunk(COMPRESSED_CHANGE_CHUNK, &bomb, CHANGE_CHUNK, &[])]);
        let started = Instant::now();
        let err = parse_raw(&bytes).expect_err("refused");
        assert_eq!(
            err,
            PayloadError::TooLarge {
                limit: MAX_INFLATED_BYTES
            }
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn many_compressed_changes_share_one_budget() {
        // Each inflates to 5 MiB, under the cap alone, with the checksum a hostile
        // member computes; together past the cap.
        let one = zeros_deflated(5 << 20);
        let inflated = vec![0u8; 5 << 20];
        let chunks: Vec<Vec<u8>> = (0..8)
            .map(|_| chunk(COMPRESSED_CHANGE_CHUNK, &one, CHANGE_CHUNK, &inflated))
            .collect();
        let err = parse_raw(&raw_payload(&chunks)).expect_err("refused");
        assert!(matches!(err, PayloadError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn a_change_chunk_with_a_wrong_checksum_or_type_is_refused() {
        let doc = doc_with(1);
        let mut bytes = doc.get_changes(&[])[0].raw_bytes().to_vec();
        bytes[5] ^= 1;
        let err = parse_raw(&raw_payload(&[bytes.clone()])).expect_err("refused");
        assert!(err.to_string().contains("checksum"), "{err}");
        bytes[8] = BUNDLE_CHUNK;
        let err = parse_raw(&raw_payload(&[bytes])).expect_err("refused");
        assert!(err.to_string().contains("not a change chunk"), "{err}");
    }

    #[test]
    fn more_operations_than_an_event_may_carry_are_refused() {
        let doc = doc_with(10);
        let changes = doc.get_changes(&[]);
        let limits = Limits {
            ops: 5,
            ..Limits::for_input(0)
        };
        let raw = raw_payload(
            &changes
                .iter()
                .map(|c| c.raw_bytes().to_vec())
                .collect::<Vec<_>>(),
        );
        let err = parse_raw_with(&raw, limits).expect_err("refused");
        assert_eq!(err, PayloadError::TooManyOps { limit: 5 });
        let bundle = doc
            .bundle(changes.iter().map(|c| c.hash()))
            .expect("bundle");
        let err = parse_bundle(bundle.bytes(), limits).expect_err("refused");
        assert_eq!(err, PayloadError::TooManyOps { limit: 5 });
    }
}
