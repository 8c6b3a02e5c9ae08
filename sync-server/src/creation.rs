//! Who may create a space on this relay.
//!
//! A push whose batch holds the genesis of a space the relay does not have creates that
//! space. Unless the relay runs with open registration, a creation needs one of the
//! operator's creation tokens, sent in the [`H_CREATE_TOKEN`] header of the push, with
//! one exception: the genesis of a *personal* space whose author device is already a
//! current member of a space on this relay (a partner who just joined with an invite
//! creates their personal space without a token). Creations are also bounded per client
//! address per day and per token, counted in the database, and refused once the
//! database is past [`CREATION_HEADROOM_PERCENT`] of `--max-db-bytes`, so that the room
//! left is kept for the spaces that exist.
//!
//! Tokens are compared in constant time (as SHA-256 digests, so their lengths do not
//! leak either) and only a short digest of a token is stored, to count its creations.
//!
//! [`H_CREATE_TOKEN`]: duet_core::protocol::H_CREATE_TOKEN

use std::path::{Path, PathBuf};

use duet_core::crypto::sha256;
use duet_core::event::SpaceId;
use duet_core::protocol::H_CREATE_TOKEN;

use crate::error::ApiError;

/// Percent of `--max-db-bytes` past which spaces are no longer created.
pub const CREATION_HEADROOM_PERCENT: u64 = 90;

/// The window of the per-address creation limit.
pub const CREATION_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// Longest token accepted in the header (longer ones are refused unread).
pub const MAX_TOKEN_LEN: usize = duet_core::protocol::MAX_CREATE_TOKEN_LEN;

/// Refuses tokens given to the relay that no client could send (`duet init --token`
/// takes 1 to 256 printable characters without spaces): an empty one is most often an
/// unset shell variable, and would otherwise be dropped without a word. Tokens are
/// named by their place, never shown.
pub fn check_given(tokens: &[String]) -> Result<(), String> {
    for (i, t) in tokens.iter().enumerate() {
        let t = t.trim();
        if duet_core::protocol::is_create_token(t) {
            continue;
        }
        let why = if t.is_empty() {
            "is empty (an unset shell variable?)".to_string()
        } else if t.len() > MAX_TOKEN_LEN {
            format!("is longer than {MAX_TOKEN_LEN} characters")
        } else {
            "holds a space or a character that is not printable ASCII".to_string()
        };
        return Err(format!(
            "creation token {} of {} (--create-token, DUET_RELAY_CREATE_TOKENS) {why}; a \
             token is 1 to {MAX_TOKEN_LEN} printable ASCII characters without spaces or \
             commas, as couples' `duet init --token` accepts",
            i + 1,
            tokens.len()
        ));
    }
    Ok(())
}

/// The creation tokens a relay accepts. Its `Debug` shows only how many there are: the
/// configuration is logged at start and tokens must not end up in a log.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CreateTokens(Vec<String>);

impl std::fmt::Debug for CreateTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CreateTokens({} tokens)", self.0.len())
    }
}

impl CreateTokens {
    /// The tokens, trimmed, without empty ones.
    pub fn new(tokens: impl IntoIterator<Item = String>) -> CreateTokens {
        CreateTokens(
            tokens
                .into_iter()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect(),
        )
    }

    /// How many tokens are configured.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no token is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The id under which creations with `presented` are counted, when it is one of the
    /// tokens. Every configured token is compared, in constant time each.
    pub fn check(&self, presented: &str) -> Option<String> {
        let given = sha256(presented.as_bytes());
        let mut found = false;
        for t in &self.0 {
            found |= constant_time_eq(&sha256(t.as_bytes()), &given);
        }
        found.then(|| token_id(presented))
    }
}

/// Refused creations for want of a token: at most a line a second, however fast
/// strangers try.
static REFUSED_LOG: crate::logging::Throttle = crate::logging::Throttle::per_second();

/// The answer to a push that would create `space` without a valid creation token (and
/// is not a member's personal space), logged at most once a second.
pub fn refused_without_token(credential: &Credential, space: SpaceId) -> ApiError {
    if let Some(suppressed) = REFUSED_LOG.allow() {
        tracing::info!(
            %space,
            presented = credential.presented,
            suppressed,
            "space creation refused: no valid creation token"
        );
    }
    // What to do with a token is the client's to say (a command, or a page).
    let what = "this relay only lets couples with a creation token from its operator \
                create spaces; nothing was stored";
    if credential.presented {
        ApiError::BadCreateToken(format!(
            "the creation token sent in {H_CREATE_TOKEN} is not one of this relay's: {what}"
        ))
    } else {
        ApiError::CreateTokenRequired(format!(
            "creating a space needs a creation token in {H_CREATE_TOKEN}: {what}"
        ))
    }
}

/// Equality of two digests that takes the same time wherever they differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the compiler from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

/// A short digest naming a token in the database (the token itself is never stored).
pub fn token_id(token: &str) -> String {
    hex::encode(&sha256(token.as_bytes())[..8])
}

/// What a push presents to create a space: its token, checked against the relay's, and
/// the client address it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credential {
    /// The header was absent.
    pub presented: bool,
    /// The id of the matching token, when the header named one.
    pub token: Option<String>,
    /// The client address (its per-address key), when the push came over the network.
    pub address: Option<std::net::IpAddr>,
}

/// Why the creation token could not be read from or written to its file.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// Reading, creating or writing the file failed.
    #[error(
        "cannot use the creation token file {}: {source}; check that its directory is \
         writable, or give tokens with --create-token (DUET_RELAY_CREATE_TOKENS) or run \
         with --open-registration",
        path.display()
    )]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The file holds no token a client could send (empty, or with spaces).
    #[error(
        "the creation token file {} holds no usable token (it is empty, or holds spaces \
         or characters that are not printable ASCII); write one of 1 to 256 printable \
         characters without spaces, delete it to have the relay make a new token, or give \
         tokens with --create-token",
        path.display()
    )]
    Unusable {
        /// The file.
        path: PathBuf,
    },
}

/// The token file kept next to a SQLite database: `<db>.create-token`.
pub fn token_file(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".create-token");
    PathBuf::from(name)
}

/// The token kept in `path`, made (32 random hex characters, written mode 0600) on
/// first use. Returns the token and whether it was just made.
pub fn load_or_make(path: &Path) -> Result<(String, bool), TokenFileError> {
    let io = |source| TokenFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let token = text.trim().to_string();
            if !duet_core::protocol::is_create_token(&token) {
                return Err(TokenFileError::Unusable {
                    path: path.to_path_buf(),
                });
            }
            return Ok((token, false));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let token = hex::encode(duet_core::ids::random_bytes::<16>());
    let mut options = std::fs::OpenOptions::new();
    // create_new: two relays starting at once must not overwrite each other's token.
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    use std::io::Write;
    file.write_all(format!("{token}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io)?;
    Ok((token, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_configured_token_matches_and_debug_hides_them() {
        let tokens = CreateTokens::new(["alpha".to_string(), " beta ".to_string(), String::new()]);
        assert_eq!(tokens.check("alpha"), Some(token_id("alpha")));
        assert_eq!(tokens.check("beta"), Some(token_id("beta")));
        assert_eq!(tokens.check("alph"), None);
        assert_eq!(tokens.check(""), None);
        assert!(CreateTokens::default().check("alpha").is_none());
        assert_eq!(format!("{tokens:?}"), "CreateTokens(2 tokens)");
    }

    #[test]
    fn the_token_file_is_made_once_private_and_then_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = token_file(&dir.path().join("relay.db"));
        assert!(path.ends_with("relay.db.create-token"));
        let (made, new) = load_or_make(&path).expect("made");
        assert!(new);
        assert_eq!(made.len(), 32);
        let (again, new) = load_or_make(&path).expect("kept");
        assert!(!new);
        assert_eq!(again, made);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
