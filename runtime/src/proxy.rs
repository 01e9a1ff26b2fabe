//! The client's address when the runtime sits behind a reverse proxy or load balancer (an ingress,
//! DigitalOcean's App Platform, nginx): the per-IP rate limits and the request log use the address
//! in `X-Forwarded-For`, but only when the connection comes from a proxy listed in
//! `PITBOX_TRUSTED_PROXIES` (comma-separated addresses or CIDR blocks, e.g.
//! `10.0.0.0/8,127.0.0.1`). From anyone else the header is ignored: a client could otherwise
//! name any address it likes and never be limited. Read through [`crate::config`]; this module
//! reads no env var itself.

use std::net::IpAddr;
use std::str::FromStr;

use actix_web::{web, HttpRequest};

use crate::config::Config;

/// One address block: `10.0.0.0/8`, `fd00::/8`, or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let err = || format!("{s:?} is not an IP address or CIDR block (like 10.0.0.0/8)");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net = IpAddr::from_str(addr.trim()).map_err(|_| err())?.to_canonical();
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(err)?,
            None => max,
        };
        Ok(Cidr { net, prefix })
    }
}

/// The proxies whose `X-Forwarded-For` is believed; empty (the default) believes nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl FromStr for TrustedProxies {
    type Err = String;
    fn from_str(s: &str) -> Result<TrustedProxies, String> {
        s.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(Cidr::from_str)
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }
}

impl TrustedProxies {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The client behind `peer`: `peer` itself unless it is a trusted proxy; then the
    /// `X-Forwarded-For` chain is read from the right (the entry the nearest proxy added), past
    /// every trusted proxy, to the first address that is not one. An entry that is not an
    /// address stops the walk at the last hop that was believed.
    pub fn client_ip<'a>(&self, peer: IpAddr, forwarded_for: impl Iterator<Item = &'a str>) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for.flat_map(|h| h.split(',')).map(str::trim).collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else { return client };
            client = ip;
            if !self.contains(ip) {
                return ip;
            }
        }
        client
    }
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:5678` (some proxies add the port).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    IpAddr::from_str(hop)
        .ok()
        .or_else(|| std::net::SocketAddr::from_str(hop).ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

/// The client address of `req` for rate limits and logs (see the module doc); `None` only for a
/// request without a peer (a test request).
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let Some(config) = req.app_data::<web::Data<Config>>() else { return Some(peer) };
    if config.trusted_proxies.is_empty() {
        return Some(peer);
    }
    let headers = req.headers().get_all("x-forwarded-for").filter_map(|v| v.to_str().ok());
    Some(config.trusted_proxies.client_ip(peer, headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_and_addresses() {
        let t: TrustedProxies = "10.0.0.0/8, 127.0.0.1,fd00::/8".parse().unwrap();
        assert!(t.contains(ip("10.200.3.4")));
        assert!(t.contains(ip("127.0.0.1")));
        assert!(t.contains(ip("::ffff:127.0.0.1")), "IPv4-mapped peers count as IPv4");
        assert!(!t.contains(ip("127.0.0.2")));
        assert!(t.contains(ip("fd12::1")));
        assert!(!t.contains(ip("2001:db8::1")));
        assert!("0.0.0.0/0".parse::<TrustedProxies>().unwrap().contains(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129"] {
            let e = bad.parse::<TrustedProxies>().unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
    }

    #[test]
    fn forwarded_for_only_from_trusted_peers() {
        let t: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let xff = |peer: &str, h: &[&str]| t.client_ip(ip(peer), h.iter().copied());
        // An untrusted peer: its header is ignored.
        assert_eq!(xff("203.0.113.9", &["198.51.100.1"]), ip("203.0.113.9"));
        // A trusted proxy: the client it names.
        assert_eq!(xff("10.0.0.2", &["198.51.100.1"]), ip("198.51.100.1"));
        // A client that forges an entry gets the address the proxy saw, not the forged one.
        assert_eq!(xff("10.0.0.2", &["1.1.1.1, 198.51.100.1"]), ip("198.51.100.1"));
        // Two proxies in a row, headers split over two lines, ports.
        assert_eq!(xff("10.0.0.2", &["198.51.100.1:4000", "10.0.0.7"]), ip("198.51.100.1"));
        assert_eq!(xff("10.0.0.2", &["[2001:db8::5]:443"]), ip("2001:db8::5"));
        // No header, or garbage: the proxy itself.
        assert_eq!(xff("10.0.0.2", &[]), ip("10.0.0.2"));
        assert_eq!(xff("10.0.0.2", &["unknown"]), ip("10.0.0.2"));
        // Only trusted hops: the leftmost.
        assert_eq!(xff("10.0.0.2", &["10.0.0.9, 10.0.0.8"]), ip("10.0.0.9"));
    }
}
