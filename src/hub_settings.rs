//! The hub's settings, read as the rest of the ecosystem reads them (huggingface_hub, hf-hub,
//! llama.cpp): `HF_ENDPOINT` (default `https://huggingface.co`; mirrors and the tests set it) and
//! `HF_TOKEN`, else the token file `$HF_HOME/token` (default `~/.cache/huggingface/token`, where
//! `huggingface-cli login` writes it). The token is never printed: [`Token`]'s Debug hides it.

use std::path::PathBuf;

/// The hub everyone uses.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// A hub access token. Debug and Display never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// The token, for the `Authorization` header only.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(hidden)")
    }
}

/// Where the hub is and how to sign in to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubSettings {
    /// `scheme://host[:port]` with no trailing slash (a path prefix is kept: a mirror may have one).
    pub endpoint: String,
    pub token: Option<Token>,
    /// Where the token came from, for `localbrain` to say without showing it.
    pub token_source: Option<String>,
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("HF_ENDPOINT={0:?} is not an http:// or https:// address")]
    Endpoint(String),
}

impl HubSettings {
    /// From the process's environment and the token file.
    pub fn from_env() -> Result<HubSettings, SettingsError> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
    }

    /// From `var` (an environment), reading the token file it points at.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<HubSettings, SettingsError> {
        let endpoint = var("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let endpoint = endpoint.trim().trim_end_matches('/').to_string();
        let usable = ["http://", "https://"].iter().any(|s| endpoint.starts_with(s))
            && host_of(&endpoint).is_some_and(|h| !h.is_empty());
        if !usable {
            return Err(SettingsError::Endpoint(endpoint));
        }
        let from_env =
            ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"].into_iter().find_map(|k| var(k).map(|t| (t, k.to_string())));
        let (token, token_source) = match from_env {
            Some((t, source)) => (Some(t), Some(source)),
            None => {
                let file = token_file(&var);
                match file.as_ref().and_then(|f| std::fs::read_to_string(f).ok()) {
                    Some(t) => (Some(t), file.map(|f| f.display().to_string())),
                    None => (None, None),
                }
            }
        };
        let token = token.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).map(Token);
        let token_source = token.as_ref().and(token_source);
        Ok(HubSettings { endpoint, token, token_source })
    }

    /// The endpoint's `host[:port]`, for telling its file URLs from others.
    pub fn host(&self) -> &str {
        host_of(&self.endpoint).unwrap_or_default()
    }

    /// Whether `url` is on the hub itself (same scheme, host and port), the only place the token
    /// may go.
    pub fn is_hub_url(&self, url: &str) -> bool {
        url.strip_prefix(&self.endpoint).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// `$HF_HOME/token`, else `~/.cache/huggingface/token` (`$XDG_CACHE_HOME` honoured, as hf does).
fn token_file(var: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(home) = var("HF_HOME") {
        return Some(PathBuf::from(home).join("token"));
    }
    let cache =
        var("XDG_CACHE_HOME").map(PathBuf::from).or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("huggingface").join("token"))
}

/// `host[:port]` of `scheme://host[:port]/...`.
fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    Some(rest.split(['/', '?', '#']).next().unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<HubSettings, SettingsError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        HubSettings::from_lookup(|k| vars.get(k).cloned())
    }

    #[test]
    fn the_endpoint_defaults_to_the_hub_and_a_mirror_replaces_it() {
        let s = settings(&[]).unwrap();
        assert_eq!((s.endpoint.as_str(), s.host()), (DEFAULT_ENDPOINT, "huggingface.co"));
        let s = settings(&[("HF_ENDPOINT", "http://127.0.0.1:8080/")]).unwrap();
        assert_eq!((s.endpoint.as_str(), s.host()), ("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(s.is_hub_url("http://127.0.0.1:8080/org/repo/resolve/main/x.gguf"));
        assert!(!s.is_hub_url("http://127.0.0.1:80800/x") && !s.is_hub_url("http://127.0.0.1:9/cdn/x"));
        assert!(matches!(settings(&[("HF_ENDPOINT", "ftp://mirror")]), Err(SettingsError::Endpoint(_))));
    }

    #[test]
    fn the_token_comes_from_hf_token_else_the_token_file_and_is_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "hf_fromfile\n").unwrap();
        let home = dir.path().to_str().unwrap();
        let s = settings(&[("HF_TOKEN", "hf_fromenv"), ("HF_HOME", home)]).unwrap();
        assert_eq!(s.token.as_ref().unwrap().secret(), "hf_fromenv");
        let s = settings(&[("HF_HOME", home)]).unwrap();
        assert_eq!(s.token.as_ref().unwrap().secret(), "hf_fromfile");
        assert!(!format!("{s:?}").contains("hf_fromfile"), "Debug hides the token");
        assert_eq!(settings(&[("HOME", home)]).unwrap().token, None, "no file under ~/.cache/huggingface");
    }
}
