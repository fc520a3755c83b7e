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

/// The variables that can send a request through a proxy, and REQUEST_METHOD, which turns them
/// all off.
const VARIABLES: [&str; 9] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "REQUEST_METHOD",
];

/// The proxy downloads go through, from this process's environment: `None` when none is set.
/// See [`describe`] for the form.
pub fn from_env() -> Option<String> {
    describe(|name| std::env::var(name).ok())
}

/// Describes the proxy settings `var` returns (a variable's value, `None` when unset), passwords
/// as `***`: `http://user:***@proxy:3128`, followed by `for https URLs` (or `http`) when the two
/// kinds of URL go different ways, and by `(not for a, b)` when `NO_PROXY` lists hosts.
pub fn describe(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let through = |https| match route(&var, https) {
        Route::Through { url, .. } => Some(redact(&url)),
        Route::Direct | Route::Unusable { .. } => None,
    };
    let proxies = match (through(true), through(false)) {
        (None, None) => return None,
        (Some(s), Some(p)) if s == p => s,
        (Some(s), Some(p)) => format!("{s} for https URLs, {p} for http URLs"),
        (Some(s), None) => format!("{s} for https URLs"),
        (None, Some(p)) => format!("{p} for http URLs"),
    };
    let direct: Vec<String> = first_set(&var, ["NO_PROXY", "no_proxy"])
        .map(|(_, v)| v)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .collect();
    Some(if direct.is_empty() { proxies } else { format!("{proxies} (not for {})", direct.join(", ")) })
}

/// The proxy variables as this process read them once, when the engine built its HTTP client
/// (the moment reqwest reads them too).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyVars(Vec<(&'static str, String)>);

impl ProxyVars {
    /// The variables set in this process's environment.
    pub fn from_env() -> Self {
        ProxyVars(VARIABLES.iter().filter_map(|&n| std::env::var(n).ok().map(|v| (n, v))).collect())
    }

    /// Where a request to `url` goes, as reqwest decides it (`NO_PROXY` aside: a host it lists
    /// is reached directly whatever this says).
    pub fn route(&self, url: &str) -> Route {
        let https = url.get(..6).is_some_and(|s| s.eq_ignore_ascii_case("https:"));
        route(&|name: &str| self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()), https)
    }
}

/// Where the requests of one kind of URL (https or http) go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Straight to the host: no proxy variable is set (or REQUEST_METHOD is).
    Direct,
    /// Through the proxy at `url` (the scheme made explicit), set in `variable`.
    Through { variable: &'static str, url: String },
    /// The person set `variable` to `value`, which is not a proxy address reqwest can use: it
    /// would ignore it and go straight to the host, around the proxy the person meant.
    Unusable { variable: &'static str, value: String },
}

/// The route for https (or http) URLs, by hyper-util's rules (see the module's docs): the
/// kind's own pair, else the `ALL_PROXY` pair, else direct. A set value that is not usable
/// (and that no usable one replaces) is [`Route::Unusable`]; an empty one counts as unset.
fn route(var: &impl Fn(&str) -> Option<String>, https: bool) -> Route {
    if var("REQUEST_METHOD").is_some() {
        return Route::Direct;
    }
    let own = first_set(var, if https { ["HTTPS_PROXY", "https_proxy"] } else { ["HTTP_PROXY", "http_proxy"] });
    let all = first_set(var, ["ALL_PROXY", "all_proxy"]);
    for (variable, value) in own.iter().chain(all.iter()) {
        if let Some(url) = usable_proxy(value) {
            return Route::Through { variable, url };
        }
    }
    match own.into_iter().chain(all).find(|(_, v)| !v.trim().is_empty()) {
        Some((variable, value)) => Route::Unusable { variable, value: redact(&value) },
        None => Route::Direct,
    }
}

/// The first variable of `names` that is set, with its value.
fn first_set(var: &impl Fn(&str) -> Option<String>, names: [&'static str; 2]) -> Option<(&'static str, String)> {
    names.iter().find_map(|&n| var(n).map(|v| (n, v)))
}

/// The proxy URL as it will be used (scheme made explicit), or `None` when hyper-util would
/// ignore the value: a scheme it does not speak, or no host it can parse.
fn usable_proxy(value: &str) -> Option<String> {
    let url = match value.split_once("://") {
        Some((scheme, _)) => {
            let known = ["http", "https", "socks4", "socks4a", "socks5", "socks5h"];
            if !known.iter().any(|k| k.eq_ignore_ascii_case(scheme)) {
                return None;
            }
            value.to_string()
        }
        None if value.is_empty() => return None,
        None => format!("http://{value}"),
    };
    let parsed = reqwest::Url::parse(&url).ok()?;
    parsed.host_str().filter(|h| !h.is_empty())?;
    Some(url)
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
    fn a_set_value_reqwest_would_ignore_is_unusable_unless_a_usable_one_replaces_it() {
        use super::Route;
        let route = |vars: &[(&str, &str)], https| {
            let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            super::route(&|name: &str| vars.get(name).cloned(), https)
        };
        let unusable = |variable, value: &str| Route::Unusable { variable, value: value.to_string() };
        assert_eq!(route(&[("HTTP_PROXY", "ftp://p:21")], false), unusable("HTTP_PROXY", "ftp://p:21"));
        assert_eq!(route(&[("ALL_PROXY", "not a proxy")], true), unusable("ALL_PROXY", "not a proxy"));
        assert_eq!(route(&[("https_proxy", "ftp://u:pw@p:21")], true), unusable("https_proxy", "ftp://u:***@p:21"));
        // The other kind's variable does not matter; an empty one counts as unset.
        assert_eq!(route(&[("HTTP_PROXY", "ftp://p:21")], true), Route::Direct);
        assert_eq!(route(&[("HTTPS_PROXY", "")], true), Route::Direct);
        assert_eq!(
            route(&[("HTTPS_PROXY", "ftp://p:21"), ("ALL_PROXY", "p:3128")], true),
            Route::Through { variable: "ALL_PROXY", url: "http://p:3128".into() }
        );
        assert_eq!(route(&[("REQUEST_METHOD", "GET"), ("ALL_PROXY", "ftp://p:21")], true), Route::Direct);
    }

    #[test]
    fn a_cgi_program_ignores_every_proxy_variable() {
        assert_eq!(described(&[("REQUEST_METHOD", "GET"), ("ALL_PROXY", "http://p:1")]), None);
    }
}
