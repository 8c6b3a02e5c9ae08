//! The plaintext of a `changes` event: a codec byte, then Automerge changes.

/// Codec byte of a changes plaintext: an Automerge bundle (compressed columnar changes).
pub const CODEC_BUNDLE: u8 = 1;
/// Codec byte of a changes plaintext: raw Automerge changes, each `u32 length || bytes`.
pub const CODEC_RAW: u8 = 2;

pub use crate::bundle::PayloadError;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_in_an_unknown_format_are_said_as_newer_or_made_by_hand() {
        let e = decode_changes(&[9, 1, 2, 3]).expect_err("codec 9 is unknown");
        assert_eq!(e, PayloadError::UnknownCodec(9));
        let said = e.to_string();
        assert!(
            said.contains("codec 9") && said.contains("made by hand") && said.contains("newer"),
            "{said}"
        );
    }
}
