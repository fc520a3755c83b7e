//! The proxy downloads go through, as the environment sets it, described for people.
//!
//! The engine's reqwest client reads the proxy variables itself (reqwest 0.12.28 adds
//! `hyper_util::client::proxy::matcher::Matcher::from_system()` to every client built without
//! `.proxy()`/`.no_proxy()`: reqwest src/async_impl/client.rs `auto_sys_proxy`, src/proxy.rs
//! `Matcher::system`), so downloads need no proxy code of ours. This module only repeats that
//! reading for the machine facts (the card, `localbrain catalog`), with passwords hidden. The
//! rules, from hyper-util 0.1.21 src/client/proxy/matcher.rs (`Builder::from_env`, `build`,
//! `parse_env_uri`, `NoProxy::from_string`):
//! - https URLs use `HTTPS_PROXY`, else `https_proxy`; http URLs `HTTP_PROXY`, else `http_proxy`;
//!   either falls back to `ALL_PROXY`, else `all_proxy`. Of each pair the first one *set* wins,
//!   even when empty or unusable (then the `ALL_PROXY` pair answers).
//! - A value without a scheme means `http://`; schemes other than http, https, socks4, socks4a,
//!   socks5 and socks5h make the value unusable (ignored).
//! - `NO_PROXY` (else `no_proxy`): comma-separated hosts (each also covers its subdomains), IP
//!   addresses, CIDR ranges, or `*`; those are reached directly.
//! - With `REQUEST_METHOD` set (a CGI program) every proxy variable is ignored (httpoxy).

use crate::store::redact;

/// The proxy downloads go through, from this process's environment: `None` when none is set.
/// See [`describe`] for the form.
pub fn from_env() -> Option<String> {
    describe(|name| std::env::var(name).ok())
}

/// Describes the proxy settings `var` returns (a variable's value, `None` when unset), passwords
/// as `***`: `http://user:***@proxy:3128`, followed by `for https URLs` (or `http`) when the two
/// kinds of URL go different ways, and by `(not for a, b)` when `NO_PROXY` lists hosts.
pub fn describe(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    if var("REQUEST_METHOD").is_some() {
        return None;
    }
    let first_set = |names: [&str; 2]| names.iter().find_map(|n| var(n));
    let usable = |value: Option<String>| value.and_then(|v| usable_proxy(&v));
    let all = usable(first_set(["ALL_PROXY", "all_proxy"]));
    let https = usable(first_set(["HTTPS_PROXY", "https_proxy"])).or_else(|| all.clone());
    let http = usable(first_set(["HTTP_PROXY", "http_proxy"])).or(all);
    let proxies = match (https, http) {
        (None, None) => return None,
        (Some(s), Some(p)) if s == p => s,
        (Some(s), Some(p)) => format!("{s} for https URLs, {p} for http URLs"),
        (Some(s), None) => format!("{s} for https URLs"),
        (None, Some(p)) => format!("{p} for http URLs"),
    };
    let direct: Vec<String> = first_set(["NO_PROXY", "no_proxy"])
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .collect();
    Some(if direct.is_empty() { proxies } else { format!("{proxies} (not for {})", direct.join(", ")) })
}

/// The proxy URL as it will be used (scheme made explicit) with its password hidden, or `None`
/// when hyper-util would ignore the value.
fn usable_proxy(value: &str) -> Option<String> {
    let url = match value.split_once("://") {
        Some((scheme, rest)) => {
            let known = ["http", "https", "socks4", "socks4a", "socks5", "socks5h"];
            if !known.iter().any(|k| k.eq_ignore_ascii_case(scheme)) || rest.is_empty() {
                return None;
            }
            value.to_string()
        }
        None if value.is_empty() => return None,
        None => format!("http://{value}"),
    };
    Some(redact(&url))
}

#[cfg(test)]
mod tests {
    use super::describe;
    use std::collections::HashMap;

    fn described(vars: &[(&str, &str)]) -> Option<String> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        describe(|name| vars.get(name).cloned())
    }

    #[test]
    fn no_variable_no_proxy() {
        assert_eq!(described(&[]), None);
        assert_eq!(described(&[("NO_PROXY", "localhost")]), None);
        assert_eq!(described(&[("HTTPS_PROXY", "")]), None);
    }

    #[test]
    fn passwords_are_hidden_and_a_bare_host_is_http() {
        let cases = [
            ("http://user:secret@proxy:3128", "http://user:***@proxy:3128"),
            ("user:secret@proxy:3128", "http://user:***@proxy:3128"),
            ("proxy.corp:8080", "http://proxy.corp:8080"),
            ("socks5h://u:p%40ss@127.0.0.1:1080", "socks5h://u:***@127.0.0.1:1080"),
            ("http://token@proxy:3128", "http://token@proxy:3128"),
        ];
        for (set, shown) in cases {
            assert_eq!(described(&[("ALL_PROXY", set)]).as_deref(), Some(shown), "{set}");
        }
    }

    #[test]
    fn each_kind_of_url_falls_back_to_all_proxy() {
        let all = ("ALL_PROXY", "http://all:1");
        assert_eq!(described(&[all]).as_deref(), Some("http://all:1"));
        assert_eq!(
            described(&[all, ("HTTPS_PROXY", "http://s:2")]).as_deref(),
            Some("http://s:2 for https URLs, http://all:1 for http URLs")
        );
        assert_eq!(
            described(&[all, ("http_proxy", "http://p:3")]).as_deref(),
            Some("http://all:1 for https URLs, http://p:3 for http URLs")
        );
        assert_eq!(described(&[("HTTPS_PROXY", "http://s:2")]).as_deref(), Some("http://s:2 for https URLs"));
        assert_eq!(described(&[("HTTP_PROXY", "http://p:3")]).as_deref(), Some("http://p:3 for http URLs"));
        assert_eq!(
            described(&[("HTTPS_PROXY", "http://x:1"), ("HTTP_PROXY", "http://x:1")]).as_deref(),
            Some("http://x:1")
        );
    }

    #[test]
    fn uppercase_wins_even_when_empty_and_lowercase_counts() {
        // hyper-util takes the first of the pair that is set: an empty HTTPS_PROXY hides
        // https_proxy, and the ALL_PROXY pair answers instead.
        assert_eq!(described(&[("HTTPS_PROXY", ""), ("https_proxy", "http://low:1")]), None);
        assert_eq!(
            described(&[("HTTPS_PROXY", ""), ("https_proxy", "http://low:1"), ("all_proxy", "http://all:2")])
                .as_deref(),
            Some("http://all:2")
        );
        assert_eq!(described(&[("https_proxy", "http://low:1")]).as_deref(), Some("http://low:1 for https URLs"));
        assert_eq!(
            described(&[("HTTP_PROXY", "http://up:1"), ("http_proxy", "http://low:2")]).as_deref(),
            Some("http://up:1 for http URLs")
        );
    }

    #[test]
    fn unusable_schemes_are_ignored_as_reqwest_ignores_them() {
        assert_eq!(described(&[("ALL_PROXY", "ftp://proxy:21")]), None);
        assert_eq!(described(&[("ALL_PROXY", "http://")]), None);
        assert_eq!(
            described(&[("HTTPS_PROXY", "ftp://x:1"), ("ALL_PROXY", "http://all:2")]).as_deref(),
            Some("http://all:2")
        );
    }

    #[test]
    fn no_proxy_hosts_are_named() {
        let shown = described(&[
            ("HTTPS_PROXY", "http://p:1"),
            ("HTTP_PROXY", "http://p:1"),
            ("no_proxy", " localhost, 127.0.0.1 ,"),
        ]);
        assert_eq!(shown.as_deref(), Some("http://p:1 (not for localhost, 127.0.0.1)"));
    }

    #[test]
    fn a_cgi_program_ignores_every_proxy_variable() {
        assert_eq!(described(&[("REQUEST_METHOD", "GET"), ("ALL_PROXY", "http://p:1")]), None);
    }
}
