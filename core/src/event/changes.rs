//! The plaintext of a `changes` event: a codec byte, then Automerge changes.

/// Codec byte of a changes plaintext: an Automerge bundle (compressed columnar changes).
pub const CODEC_BUNDLE: u8 = 1;
/// Codec byte of a changes plaintext: raw Automerge changes, each `u32 length || bytes`.
pub const CODEC_RAW: u8 = 2;

/// Why a changes plaintext could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PayloadError {
    /// Empty plaintext.
    #[error("empty changes payload")]
    Empty,
    /// Codec byte unknown to this build.
    #[error("unknown changes codec {0}; upgrade duet")]
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

/// Encodes `changes` (all present in `doc`) as a changes plaintext, as a bundle.
pub fn encode_changes(
    doc: &automerge::Automerge,
    changes: &[automerge::Change],
) -> Result<Vec<u8>, automerge::AutomergeError> {
    let bundle = doc.bundle(changes.iter().map(|c| c.hash()))?;
    let mut out = Vec::with_capacity(bundle.bytes().len() + 1);
    out.push(CODEC_BUNDLE);
    out.extend_from_slice(bundle.bytes());
    Ok(out)
}

/// Encodes raw changes (the fallback codec).
pub fn encode_raw_changes(changes: &[automerge::Change]) -> Vec<u8> {
    let mut out = vec![CODEC_RAW];
    for c in changes {
        out.extend_from_slice(&(c.raw_bytes().len() as u32).to_be_bytes());
        out.extend_from_slice(c.raw_bytes());
    }
    out
}

/// Decodes a changes plaintext into Automerge changes (not yet applied). The content is
/// untrusted (any member can sign anything): both codecs are parsed by [`crate::bundle`],
/// with bounded memory and a deadline.
pub fn decode_changes(plain: &[u8]) -> Result<Vec<automerge::Change>, PayloadError> {
    let (&codec, data) = plain.split_first().ok_or(PayloadError::Empty)?;
    match codec {
        CODEC_BUNDLE => crate::bundle::parse(data),
        CODEC_RAW => crate::bundle::parse_raw(data),
        other => Err(PayloadError::UnknownCodec(other)),
    }
}
