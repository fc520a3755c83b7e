//! Where people reach the server (the bound address, a public URL, the origins allowed to call
//! `/v1`), and which Host and Origin headers therefore name it. Pure checks on strings: the
//! layers that refuse what fails them are in `auth` and `openai`.

use std::net::SocketAddr;
use std::sync::Arc;

/// Where people reach the server: the address it listens on, and the public URL of a reverse
/// proxy in front of it (`--public-url`), whose host is then ours too.
#[derive(Clone, Debug)]
pub struct Site {
    pub bound: SocketAddr,
    /// `http(s)://host[:port]`, as `cli::parse_public_url` checked it.
    pub public_url: Option<String>,
    /// Origins whose pages may call the `/v1` API (`--cors-origin`), in the same form.
    pub cors_origins: Arc<[String]>,
}

impl Site {
    /// The public URL's `host[:port]`, as a browser sends it in Host.
    fn public_host(&self) -> Option<&str> {
        self.public_url.as_deref().and_then(|u| u.split_once("://")).map(|(_, host)| host)
    }

    /// Whether a page from `origin` may call the `/v1` API.
    pub fn cors_allows(&self, origin: &str) -> bool {
        self.cors_origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// Whether people reach the server over https.
    pub fn is_https(&self) -> bool {
        self.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
    }

    /// A Host header that names this server.
    pub fn host_allowed(&self, host: &str) -> bool {
        self.public_host().is_some_and(|p| p.eq_ignore_ascii_case(host)) || host_allowed(host, &self.bound)
    }

    /// An Origin that is this server: the page's own (same host as the request), or the public
    /// URL (a proxy may pass on its own Host, not the browser's). `null` is refused unless the
    /// browser's own `Sec-Fetch-Site` says the request came from this origin: under
    /// `Referrer-Policy: no-referrer` a browser sends `Origin: null` on a form's POST even to
    /// its own site (the Sign out button), and page scripts cannot set `Sec-Fetch-*`.
    pub fn origin_allowed(&self, origin: &str, host: &str, fetch_site: Option<&str>) -> bool {
        if origin == "null" {
            return fetch_site == Some("same-origin");
        }
        if let Some(public) = self.public_url.as_deref() {
            // The public host is reached one way only: an http page on an https host is not ours.
            if public.eq_ignore_ascii_case(origin) {
                return true;
            }
            if self
                .public_host()
                .is_some_and(|p| origin.split_once("://").is_some_and(|(_, h)| h.eq_ignore_ascii_case(p)))
            {
                return false;
            }
        }
        let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
        origin_host == host
    }
}

/// A Host is ours when it is the bound address, or localhost / a loopback IP on its port.
fn host_allowed(host: &str, bound: &SocketAddr) -> bool {
    let port = bound.port().to_string();
    let (name, p) = match host.rsplit_once(':') {
        Some((n, p)) if !n.ends_with(']') || n.starts_with('[') => (n, p),
        _ => (host, ""),
    };
    if p != port {
        return false;
    }
    let name = name.trim_start_matches('[').trim_end_matches(']');
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match name.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback() || ip == bound.ip() || bound.ip().is_unspecified(),
        // A name other than localhost: only when the server listens on all interfaces is it
        // reachable by a name, and then the operator chose that exposure.
        Err(_) => bound.ip().is_unspecified(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_that_are_ours() {
        let bound: std::net::SocketAddr = "127.0.0.1:3000".parse().unwrap();
        for ok in ["127.0.0.1:3000", "localhost:3000", "LOCALHOST:3000", "[::1]:3000"] {
            assert!(host_allowed(ok, &bound), "{ok}");
        }
        for bad in ["evil.example:3000", "127.0.0.1:3001", "localhost", "", "10.0.0.5:3000"] {
            assert!(!host_allowed(bad, &bound), "{bad}");
        }
        let any: std::net::SocketAddr = "0.0.0.0:3000".parse().unwrap();
        assert!(host_allowed("myhost.lan:3000", &any));
    }

    #[test]
    fn a_public_url_adds_its_host_and_origin() {
        let site = Site {
            bound: "127.0.0.1:3000".parse().unwrap(),
            public_url: Some("https://brain.example.com".into()),
            cors_origins: Arc::from([]),
        };
        assert!(site.is_https());
        assert!(site.host_allowed("brain.example.com"));
        assert!(site.host_allowed("127.0.0.1:3000"));
        assert!(!site.host_allowed("evil.example"));
        // Behind a proxy that passes its own Host, the browser's Origin is the public URL.
        assert!(site.origin_allowed("https://brain.example.com", "127.0.0.1:3000", None));
        assert!(site.origin_allowed("http://127.0.0.1:3000", "127.0.0.1:3000", None));
        assert!(
            !site.origin_allowed("http://brain.example.com", "127.0.0.1:3000", None),
            "another scheme is another origin"
        );
        assert!(!site.origin_allowed("https://evil.example", "127.0.0.1:3000", None));
        assert!(!site.origin_allowed("null", "127.0.0.1:3000", None));
        assert!(!site.origin_allowed("null", "127.0.0.1:3000", Some("cross-site")));
        // Our own form's POST under no-referrer.
        assert!(site.origin_allowed("null", "127.0.0.1:3000", Some("same-origin")));
    }
}
