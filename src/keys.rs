//! API keys as the Settings card and the terminal show them: a key's name, the first characters
//! of its secret (to tell keys apart), when it was made and last used. The secret itself is never
//! here: it is shown once, when the key is made, and the store keeps only its SHA-256
//! (`store::api_keys`). Times are Unix milliseconds.

use serde::{Deserialize, Serialize};

/// What every key's secret starts with, so a person and a secret scanner can tell what it is.
pub const KEY_PREFIX: &str = "lb-";
/// How many characters of a secret are kept to show (`lb-` and 8 hex digits: 32 of its 256 bits).
pub const SHOWN_CHARS: usize = KEY_PREFIX.len() + 8;
/// The longest name a key may have, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// One of a user's API keys, without its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct ApiKey {
    /// Unique among its user's keys.
    pub name: String,
    /// The start of the secret (`lb-` and 8 hex digits): enough to tell keys apart, far too
    /// little to guess the rest.
    pub prefix: String,
    pub created_at: i64,
    /// When a request last came with it; `None` before its first use. Written at most about
    /// once a minute, so it is right to a minute.
    pub last_used_at: Option<i64>,
}

impl ApiKey {
    /// The prefix as shown: "lb-1a2b3c4d…".
    pub fn shown(&self) -> String {
        format!("{}…", self.prefix)
    }
}

/// A user's keys and the server's clock when it listed them, so "3 minutes ago" reads the same
/// on the server's render and in the browser.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysView {
    /// Oldest first.
    pub keys: Vec<ApiKey>,
    pub now: i64,
}

/// A key just made, with its secret: the one answer that carries a key's secret, once. Its
/// `Debug` hides the secret, so logging it leaks nothing.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewKey {
    pub key: ApiKey,
    /// `lb-` and 64 hex digits; nowhere else from now on.
    pub secret: String,
    /// The user's keys with the new one.
    pub keys: KeysView,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey").field("key", &self.key).field("secret", &"***").field("keys", &self.keys).finish()
    }
}

/// Why a key name is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("give the key a name, such as the program that will use it")]
    Empty,
    #[error("a key name is at most {MAX_NAME_CHARS} characters")]
    TooLong,
    #[error("a key name cannot hold control characters such as tabs or line breaks")]
    Control,
}

/// A key name as stored: trimmed, 1 to [`MAX_NAME_CHARS`] characters, none of them control
/// characters (a name is printed in the terminal and in logs).
pub fn clean_name(name: &str) -> Result<&str, NameError> {
    let name = name.trim();
    if name.is_empty() {
        Err(NameError::Empty)
    } else if name.chars().count() > MAX_NAME_CHARS {
        Err(NameError::TooLong)
    } else if name.chars().any(char::is_control) {
        Err(NameError::Control)
    } else {
        Ok(name)
    }
}

/// How long before `now` the time `then` was, in words: "just now", "5 minutes ago",
/// "2 hours ago", "3 days ago", "4 months ago", "2 years ago".
pub fn ago(then: i64, now: i64) -> String {
    let s = (now - then).max(0) / 1000;
    let (n, unit) = match s {
        0..60 => return "just now".to_string(),
        60..3600 => (s / 60, "minute"),
        3600..86_400 => (s / 3600, "hour"),
        86_400..5_184_000 => (s / 86_400, "day"),
        5_184_000..63_072_000 => (s / 2_592_000, "month"),
        _ => (s / 31_536_000, "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_checked() {
        assert_eq!(clean_name("  my editor "), Ok("my editor"));
        assert_eq!(clean_name("   "), Err(NameError::Empty));
        assert_eq!(clean_name(&"x".repeat(64)), Ok("x".repeat(64).as_str()));
        assert_eq!(clean_name(&"é".repeat(65)), Err(NameError::TooLong));
        assert_eq!(clean_name("a\tb"), Err(NameError::Control));
        assert_eq!(clean_name("a\u{7f}b"), Err(NameError::Control));
        assert_eq!(clean_name("ключ 🔑"), Ok("ключ 🔑"));
    }

    #[test]
    fn ages_read_in_whole_units() {
        let now = 10_000_000_000;
        assert_eq!(ago(now - 59_000, now), "just now");
        assert_eq!(ago(now + 5_000, now), "just now", "a clock a little ahead is not the future");
        assert_eq!(ago(now - 60_000, now), "1 minute ago");
        assert_eq!(ago(now - 2 * 3_600_000 - 1, now), "2 hours ago");
        assert_eq!(ago(now - 86_400_000, now), "1 day ago");
        assert_eq!(ago(now - 90 * 86_400_000, now), "3 months ago");
        assert_eq!(ago(now - 800 * 86_400_000, now), "2 years ago");
    }
}
