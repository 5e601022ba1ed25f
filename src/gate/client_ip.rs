//! Who the client is (`server.trusted_proxies`).
//!
//! The TCP peer, unless the peer is a trusted proxy: then its `X-Forwarded-For` is believed,
//! and the client is the right-most address in it that is not itself a trusted proxy (the
//! left-most entries are whatever the client claimed, so they are never taken on trust). A
//! trusted proxy's `X-Forwarded-For` is appended to, never replaced, and its
//! `X-Forwarded-Proto` / `-Host` are passed on; everyone else's are replaced.

use http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// What the gate knows about the client of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's address, for rate limits, logs and `X-Real-IP`.
    pub ip: Option<IpAddr>,
    /// The TCP peer: appended to `X-Forwarded-For`.
    pub peer: Option<IpAddr>,
    /// Set only when the peer is a trusted proxy: what it said.
    pub proxy: Option<ProxySaid>,
}

/// A trusted proxy's `X-Forwarded-*` headers as it sent them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxySaid {
    /// Every `X-Forwarded-For` field, joined with `", "`.
    pub forwarded_for: Option<String>,
    pub proto: Option<String>,
    pub host: Option<String>,
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = ip.to_canonical();
    trusted.iter().any(|net| net.contains(&ip))
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:80`,
/// `[2001:db8::1]:80`) or in quotes.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim().trim_matches('"');
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

fn first_text(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get(name)?.to_str().ok()?.trim();
    (!value.is_empty()).then(|| value.to_string())
}

/// Resolve the client of a request from `peer` (the TCP peer) and the request `headers`.
pub fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> ClientInfo {
    let peer = peer.map(|p| p.to_canonical());
    let Some(from_proxy) = peer.filter(|p| !trusted.is_empty() && is_trusted(*p, trusted)) else {
        return ClientInfo {
            ip: peer,
            peer,
            proxy: None,
        };
    };
    let fields: Vec<&[u8]> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    // Right to left: each trusted hop vouches for the address to its left.
    let mut client = from_proxy;
    'walk: for field in fields.iter().rev() {
        let Ok(field) = std::str::from_utf8(field) else {
            break;
        };
        for entry in field.rsplit(',') {
            if entry.trim().is_empty() {
                continue;
            }
            match parse_entry(entry) {
                Some(ip) => {
                    client = ip;
                    if !is_trusted(ip, trusted) {
                        break 'walk;
                    }
                }
                // Not an address: nothing to its left can be vouched for.
                None => break 'walk,
            }
        }
    }
    let forwarded_for = (!fields.is_empty()).then(|| {
        fields
            .iter()
            .map(|f| String::from_utf8_lossy(f).trim().to_string())
            .filter(|f| !f.is_empty())
            .collect::<Vec<_>>()
            .join(", ")
    });
    ClientInfo {
        ip: Some(client),
        peer,
        proxy: Some(ProxySaid {
            forwarded_for: forwarded_for.filter(|f| !f.is_empty()),
            proto: first_text(headers, "x-forwarded-proto"),
            host: first_text(headers, "x-forwarded-host"),
        }),
    }
}

impl ClientInfo {
    /// `X-Forwarded-For` for the upstream: a trusted proxy's list with the peer appended, or
    /// the peer alone.
    pub fn forwarded_for(&self) -> Option<String> {
        let chain = self.proxy.as_ref().and_then(|p| p.forwarded_for.as_deref());
        match (chain, self.peer) {
            (Some(chain), Some(peer)) => Some(format!("{chain}, {peer}")),
            (Some(chain), None) => Some(chain.to_string()),
            (None, Some(peer)) => Some(peer.to_string()),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    fn headers(list: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in list {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_claims() {
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
        ]);
        for trusted in [nets(&[]), nets(&["10.0.0.0/8"])] {
            let c = resolve(ip("192.0.2.1"), &h, &trusted);
            assert_eq!(c.ip, ip("192.0.2.1"));
            assert_eq!(c.proxy, None);
            assert_eq!(c.forwarded_for().as_deref(), Some("192.0.2.1"));
        }
        assert_eq!(resolve(None, &h, &nets(&["0.0.0.0/0"])).ip, None);
    }

    #[test]
    fn trusted_proxy_names_the_rightmost_untrusted_address_and_is_appended() {
        let trusted = nets(&["10.0.0.0/8", "127.0.0.1/32"]);
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 203.0.113.9"),
            ("x-forwarded-for", "10.1.2.3"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.example.com"),
        ]);
        let c = resolve(ip("127.0.0.1"), &h, &trusted);
        // 10.1.2.3 is another trusted hop; 203.0.113.9 is who connected to the first proxy;
        // 6.6.6.6 is only the client's claim.
        assert_eq!(c.ip, ip("203.0.113.9"));
        assert_eq!(
            c.forwarded_for().as_deref(),
            Some("6.6.6.6, 203.0.113.9, 10.1.2.3, 127.0.0.1")
        );
        let said = c.proxy.unwrap();
        assert_eq!(said.proto.as_deref(), Some("https"));
        assert_eq!(said.host.as_deref(), Some("app.example.com"));
    }

    #[test]
    fn trusted_proxy_without_forwarded_for_is_the_client() {
        let c = resolve(ip("10.0.0.5"), &HeaderMap::new(), &nets(&["10.0.0.0/8"]));
        assert_eq!(c.ip, ip("10.0.0.5"));
        assert_eq!(c.forwarded_for().as_deref(), Some("10.0.0.5"));
        assert_eq!(c.proxy, Some(ProxySaid::default()));
    }

    #[test]
    fn all_trusted_means_the_leftmost() {
        let h = headers(&[("x-forwarded-for", "10.9.9.9,10.8.8.8")]);
        let c = resolve(ip("10.0.0.5"), &h, &nets(&["10.0.0.0/8"]));
        assert_eq!(c.ip, ip("10.9.9.9"));
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_vouched_hop() {
        let trusted = nets(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "203.0.113.9, unknown, 10.2.2.2")]);
        assert_eq!(resolve(ip("10.0.0.5"), &h, &trusted).ip, ip("10.2.2.2"));
        let h = headers(&[("x-forwarded-for", "not-an-ip")]);
        assert_eq!(resolve(ip("10.0.0.5"), &h, &trusted).ip, ip("10.0.0.5"));
    }

    #[test]
    fn ports_quotes_ipv6_and_mapped_addresses() {
        let trusted = nets(&["10.0.0.0/8", "2001:db8::/32"]);
        let h = headers(&[("x-forwarded-for", "\"[2001:db9::7]:4711\", 198.51.100.2:80")]);
        assert_eq!(resolve(ip("10.0.0.5"), &h, &trusted).ip, ip("198.51.100.2"));
        let h = headers(&[("x-forwarded-for", "2001:db9::7")]);
        assert_eq!(
            resolve(ip("2001:db8::1"), &h, &trusted).ip,
            ip("2001:db9::7")
        );
        // A v4 peer seen on a dual-stack socket is matched against v4 networks.
        let c = resolve(ip("::ffff:10.0.0.5"), &h, &trusted);
        assert_eq!(c.ip, ip("2001:db9::7"));
        assert_eq!(c.peer, ip("10.0.0.5"));
    }
}
