//! The backup file's envelope: magic, version, a header naming the key derivation, and
//! the ciphertext. The passphrase is stretched with Argon2id (parameters and salt in the
//! header) into a 256-bit key that seals the contents with XChaCha20-Poly1305, the whole
//! header being the associated data.
//!
//! Layout (integers big-endian; docs/data-model.md "Backup file" says the same):
//!
//! | bytes | field |
//! | --- | --- |
//! | 8 | magic `DUETBKUP` |
//! | 2 | format version ([`VERSION`]) |
//! | 1 | key derivation: 1 = Argon2id v1.3 |
//! | 4, 4, 4 | Argon2 memory (KiB), iterations, parallelism |
//! | 16 | salt |
//! | 24 | XChaCha20 nonce |
//! | 16 | passphrase check: SHA-256("duet backup passphrase check" ‖ key), first 16 bytes |
//! | 8 | ciphertext length |
//! | 8 | header sum: SHA-256 of the bytes above, first 8 bytes |
//! | n | ciphertext (contents and the 16-byte tag) |
//!
//! The check tells a wrong passphrase from a damaged file (it reveals nothing the AEAD
//! would not: testing a guess costs one Argon2id either way); the header sum tells a
//! damaged header from a wrong passphrase; the length tells a truncated file before any
//! key is derived.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use super::BackupError;
use crate::crypto::sha256;
use crate::ids::random_bytes;

/// The first bytes of every backup file.
pub const MAGIC: &[u8; 8] = b"DUETBKUP";
/// The format version this duet writes (and the newest it reads).
pub const VERSION: u16 = 1;
/// Header length, magic and version included.
pub const HEADER_LEN: usize = 8 + 2 + 1 + 12 + 16 + 24 + 16 + 8 + 8;
const KDF_ARGON2ID: u8 = 1;
const CHECK_DOMAIN: &[u8] = b"duet backup passphrase check";
const TAG_LEN: usize = 16;

/// Argon2id's cost parameters, stored in each file's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// What `duet backup` writes: RFC 9106's second recommended setting (64 MiB, 3
    /// passes, 4 lanes), a fraction of a second on a laptop and a costly guess for an
    /// attacker who holds the file.
    pub const DEFAULT: KdfParams = KdfParams {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 4,
    };

    /// The most a file may ask for (1 GiB, 16 passes, 16 lanes): a file asking for more
    /// was not written by duet and would only make the reader spend memory and time.
    const MAX: KdfParams = KdfParams {
        memory_kib: 1024 * 1024,
        iterations: 16,
        parallelism: 16,
    };

    fn within_bounds(&self) -> bool {
        (1..=Self::MAX.parallelism).contains(&self.parallelism)
            && (1..=Self::MAX.iterations).contains(&self.iterations)
            && self.memory_kib >= 8 * self.parallelism
            && self.memory_kib <= Self::MAX.memory_kib
    }
}

/// The key the passphrase and salt give.
fn derive(
    passphrase: &str,
    salt: &[u8; 16],
    p: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, BackupError> {
    let params =
        argon2::Params::new(p.memory_kib, p.iterations, p.parallelism, Some(32)).map_err(|e| {
            BackupError::Damaged(format!("its key derivation parameters are invalid ({e})"))
        })?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|e| BackupError::Damaged(format!("its key derivation failed ({e})")))?;
    Ok(key)
}

fn check_of(key: &[u8; 32]) -> [u8; 16] {
    let mut input = Zeroizing::new(CHECK_DOMAIN.to_vec());
    input.extend_from_slice(key);
    let mut out = [0u8; 16];
    out.copy_from_slice(&sha256(&input)[..16]);
    out
}

/// Seals `contents` under `passphrase`: the whole file's bytes.
pub fn seal(contents: &[u8], passphrase: &str, p: KdfParams) -> Result<Vec<u8>, BackupError> {
    let salt: [u8; 16] = random_bytes();
    let nonce: [u8; 24] = random_bytes();
    let key = derive(passphrase, &salt, p)?;
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_be_bytes());
    header.push(KDF_ARGON2ID);
    header.extend_from_slice(&p.memory_kib.to_be_bytes());
    header.extend_from_slice(&p.iterations.to_be_bytes());
    header.extend_from_slice(&p.parallelism.to_be_bytes());
    header.extend_from_slice(&salt);
    header.extend_from_slice(&nonce);
    header.extend_from_slice(&check_of(&key));
    header.extend_from_slice(&((contents.len() + TAG_LEN) as u64).to_be_bytes());
    let sum = sha256(&header);
    header.extend_from_slice(&sum[..8]);
    let cipher = XChaCha20Poly1305::new(&(*key).into());
    let ct = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: contents,
                aad: &header,
            },
        )
        .map_err(|_| BackupError::Damaged("encryption failed".into()))?;
    header.extend_from_slice(&ct);
    Ok(header)
}

/// A parsed header.
struct Header<'a> {
    params: KdfParams,
    salt: [u8; 16],
    nonce: [u8; 24],
    check: [u8; 16],
    aad: &'a [u8],
    ciphertext: &'a [u8],
}

fn be32(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(x)
}

/// Checks everything that can be checked without the passphrase.
fn parse(file: &[u8]) -> Result<Header<'_>, BackupError> {
    if file.len() < 10 || &file[..8] != MAGIC {
        return Err(BackupError::NotABackup);
    }
    let version = u16::from_be_bytes([file[8], file[9]]);
    if version != VERSION {
        return Err(BackupError::UnknownVersion(version));
    }
    if file.len() < HEADER_LEN {
        return Err(BackupError::Truncated {
            have: file.len() as u64,
            expected: HEADER_LEN as u64,
        });
    }
    let (head, rest) = file.split_at(HEADER_LEN);
    if sha256(&head[..HEADER_LEN - 8])[..8] != head[HEADER_LEN - 8..] {
        return Err(BackupError::Damaged(
            "its header does not match its checksum".into(),
        ));
    }
    if head[10] != KDF_ARGON2ID {
        return Err(BackupError::Damaged(format!(
            "it names an unknown key derivation ({})",
            head[10]
        )));
    }
    let params = KdfParams {
        memory_kib: be32(head, 11),
        iterations: be32(head, 15),
        parallelism: be32(head, 19),
    };
    if !params.within_bounds() {
        return Err(BackupError::Damaged(format!(
            "it asks for a key derivation no duet writes ({params:?})"
        )));
    }
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&head[23..39]);
    let mut nonce = [0u8; 24];
    nonce.copy_from_slice(&head[39..63]);
    let mut check = [0u8; 16];
    check.copy_from_slice(&head[63..79]);
    let mut len = [0u8; 8];
    len.copy_from_slice(&head[79..87]);
    let len = u64::from_be_bytes(len);
    let expected = (HEADER_LEN as u64).saturating_add(len);
    if (file.len() as u64) < expected {
        return Err(BackupError::Truncated {
            have: file.len() as u64,
            expected,
        });
    }
    if (file.len() as u64) > expected || len < TAG_LEN as u64 {
        return Err(BackupError::Damaged(
            "its length does not match its header".into(),
        ));
    }
    Ok(Header {
        params,
        salt,
        nonce,
        check,
        aad: head,
        ciphertext: rest,
    })
}

/// Opens a backup file's bytes with `passphrase`: the contents, wiped when dropped.
pub fn open(file: &[u8], passphrase: &str) -> Result<Zeroizing<Vec<u8>>, BackupError> {
    let h = parse(file)?;
    let key = derive(passphrase, &h.salt, h.params)?;
    if check_of(&key) != h.check {
        return Err(BackupError::WrongPassphrase);
    }
    let cipher = XChaCha20Poly1305::new(&(*key).into());
    cipher
        .decrypt(
            &XNonce::from(h.nonce),
            Payload {
                msg: h.ciphertext,
                aad: h.aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| BackupError::Damaged("its encrypted contents were altered or cut".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters: these tests are about the format, not the cost.
    const FAST: KdfParams = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn a_sealed_file_opens_with_its_passphrase_only() {
        let file = seal(b"canary-contents", "correct horse battery", FAST).expect("seal");
        assert_eq!(&file[..8], MAGIC);
        assert!(!file.windows(6).any(|w| w == b"canary"));
        let opened = open(&file, "correct horse battery").expect("open");
        assert_eq!(opened.as_slice(), b"canary-contents");
        assert!(matches!(
            open(&file, "correct horse battery!"),
            Err(BackupError::WrongPassphrase)
        ));
    }

    #[test]
    fn damage_is_told_apart_from_a_wrong_passphrase() {
        let file = seal(b"some contents here", "passphrase words", FAST).expect("seal");
        let cut = &file[..file.len() - 5];
        assert!(matches!(
            open(cut, "passphrase words"),
            Err(BackupError::Truncated { .. })
        ));
        assert!(matches!(
            open(&file[..40], "x"),
            Err(BackupError::Truncated { .. })
        ));
        let mut body = file.clone();
        let last = body.len() - 1;
        body[last] ^= 1;
        assert!(matches!(
            open(&body, "passphrase words"),
            Err(BackupError::Damaged(_))
        ));
        let mut head = file.clone();
        head[30] ^= 1; // the salt
        assert!(matches!(
            open(&head, "passphrase words"),
            Err(BackupError::Damaged(_))
        ));
        assert!(matches!(
            open(b"not a backup at all", "x"),
            Err(BackupError::NotABackup)
        ));
        let mut newer = file.clone();
        newer[9] = 9;
        assert!(matches!(
            open(&newer, "x"),
            Err(BackupError::UnknownVersion(9))
        ));
    }

    #[test]
    fn a_file_asking_for_huge_parameters_is_refused_before_any_work() {
        let mut file = seal(b"x", "passphrase words", FAST).expect("seal");
        file[11..15].copy_from_slice(&u32::MAX.to_be_bytes());
        let sum = sha256(&file[..HEADER_LEN - 8]);
        file[HEADER_LEN - 8..HEADER_LEN].copy_from_slice(&sum[..8]);
        assert!(matches!(
            open(&file, "passphrase words"),
            Err(BackupError::Damaged(_))
        ));
    }
}
