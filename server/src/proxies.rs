//! The client's address behind a reverse proxy (`--trusted-proxy`). Every request from a proxy
//! comes from the proxy's address, so without this all its clients share one count in the guess
//! limits (login links, API keys) and one address in the log. For a connection from a listed
//! proxy, the client is the rightmost `X-Forwarded-For` address that is not itself a listed
//! proxy: the entries to its left were written by the client and can say anything. From any
//! other peer the header is ignored, so a client cannot pick its own address.

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Addresses, or networks (`10.0.0.0/8`), whose `X-Forwarded-For` is believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Arc<[IpNet]>);

/// An address and how many of its leading bits a member shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for IpNet {
    type Err = String;

    /// `192.0.2.7`, `::1`, `172.16.0.0/12`, `fd00::/8`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s.trim().split_once('/').map_or((s.trim(), None), |(a, p)| (a, Some(p)));
        let addr: IpAddr = addr.parse().map_err(|_| format!("{s:?} is not an IP address or network (10.0.0.0/8)"))?;
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("{s:?}: the prefix after / must be 0 to {bits}"))?,
        };
        Ok(IpNet { addr, prefix })
    }
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 peer on a dual-stack socket arrives as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => same_leading_bits(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => same_leading_bits(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

fn same_leading_bits(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (whole, rest) = (usize::from(bits / 8), bits % 8);
    a[..whole] == b[..whole] && (rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0)
}

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        TrustedProxies(nets.into())
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client behind `peer`, given the request's `X-Forwarded-For` values in order.
    pub fn client<'a>(&self, peer: IpAddr, forwarded_for: impl Iterator<Item = &'a str>) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for.flat_map(|v| v.split(',')).map(str::trim).collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match parse_hop(hop) {
                // Another of our proxies passed it on: look further left.
                Some(ip) if self.trusts(ip) => client = ip,
                Some(ip) => return ip,
                // Garbage from the first untrusted writer: the last trusted hop is all we know.
                None => return client,
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, or (as some cloud balancers write) an address with
/// its port, `203.0.113.5:41236` or `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// Puts the client's address, as the trusted proxies report it, where the rest of the server
/// reads it (`ConnectInfo`).
pub async fn client_address(State(proxies): State<TrustedProxies>, mut req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        let values = req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
        let client = proxies.client(peer.ip(), values);
        if client != peer.ip() {
            // The client's port is not known; 0 says so.
            req.extensions_mut().insert(ConnectInfo(SocketAddr::new(client, 0)));
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|s| s.parse().unwrap()).collect())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_parse_and_hold_what_their_prefix_says() {
        let net: IpNet = "172.16.0.0/12".parse().unwrap();
        assert!(net.contains(ip("172.31.255.1")));
        assert!(!net.contains(ip("172.32.0.1")));
        assert!(net.contains(ip("::ffff:172.20.0.5")), "an IPv4 peer on a dual-stack socket");
        let one: IpNet = "::1".parse().unwrap();
        assert!(one.contains(ip("::1")) && !one.contains(ip("::2")));
        assert!("0.0.0.0/0".parse::<IpNet>().unwrap().contains(ip("203.0.113.9")));
        assert!("fd00::/8".parse::<IpNet>().unwrap().contains(ip("fd12::1")));
        for bad in ["proxy.local", "10.0.0.0/33", "::/129", "10.0.0.0/x", ""] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_client_is_the_rightmost_address_no_trusted_proxy_wrote() {
        let p = proxies(&["10.0.0.2", "192.168.1.0/24"]);
        let proxy = ip("10.0.0.2");
        // One proxy: the address it appended.
        assert_eq!(p.client(proxy, ["203.0.113.5"].into_iter()), ip("203.0.113.5"));
        // What the client claimed sits to the left of the real address and is not believed.
        assert_eq!(p.client(proxy, ["1.2.3.4, 203.0.113.5"].into_iter()), ip("203.0.113.5"));
        // Two proxies in a row, in two header lines.
        assert_eq!(p.client(proxy, ["203.0.113.5", "192.168.1.9"].into_iter()), ip("203.0.113.5"));
        // No header, or a garbled one: the proxy itself, the last address known.
        assert_eq!(p.client(proxy, std::iter::empty()), proxy);
        assert_eq!(p.client(proxy, ["not-an-ip"].into_iter()), proxy);
        // Entries with a port, as some cloud balancers write them.
        assert_eq!(p.client(proxy, ["203.0.113.5:41236"].into_iter()), ip("203.0.113.5"));
        assert_eq!(p.client(proxy, ["[2001:db8::1]:4711"].into_iter()), ip("2001:db8::1"));
        // From anyone else the header means nothing.
        assert_eq!(p.client(ip("203.0.113.5"), ["10.9.9.9"].into_iter()), ip("203.0.113.5"));
        assert_eq!(TrustedProxies::default().client(proxy, ["203.0.113.5"].into_iter()), proxy);
    }
}
