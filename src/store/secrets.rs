//! Secrets handed to people once (login links, session cookies, API keys) and what the database
//! keeps of them: 256 random bits, hex encoded, stored only as their SHA-256 so a copy of the
//! database opens nothing. One way of making, showing and digesting each kind.

use super::StoreError;
use sha2::{Digest, Sha256};

/// A secret handed to the user once (a login token, a session cookie value, an API key). Its
/// `Debug` never shows the value and it is never serialized.
pub struct Secret(String);

impl Secret {
    /// 256 random bits as 64 lowercase hex digits.
    pub(crate) fn new() -> Result<Secret, StoreError> {
        Secret::with_prefix("")
    }

    /// `prefix` followed by 256 random bits as 64 lowercase hex digits.
    pub(crate) fn with_prefix(prefix: &str) -> Result<Secret, StoreError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| StoreError::CorruptRow(format!("no randomness: {e}")))?;
        Ok(Secret(format!("{prefix}{}", hex(&bytes))))
    }

    /// The value, for the URL, the cookie or the one time a key is shown.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// What the database keeps of a secret: its SHA-256, hex encoded.
pub(crate) fn digest(secret: &str) -> String {
    format!("{:x}", Sha256::digest(secret.as_bytes()))
}

/// Lowercase hex of `bytes`, two digits each.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_64_hex_digits_after_their_prefix_and_never_debug_printed() {
        let s = Secret::with_prefix("lb-").unwrap();
        let rest = s.expose().strip_prefix("lb-").unwrap();
        assert_eq!(rest.len(), 64);
        assert!(rest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_ne!(Secret::new().unwrap().expose(), Secret::new().unwrap().expose());
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(digest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
