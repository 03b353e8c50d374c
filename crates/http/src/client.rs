//! Who is on the other end of a request: the TCP peer, or — when the peer is a reverse proxy
//! hookflow was told to trust (`--trusted-proxies`) — the client the proxy says it forwards.
//!
//! The forwarded headers are whatever the client wrote, plus what each proxy on the way
//! appended. Only the hops appended by trusted proxies can be believed, so the client is the
//! rightmost hop that is not a trusted proxy: a client that writes its own `X-Forwarded-For`
//! only adds hops to the left of the one its proxy appends. A peer that is not trusted is the
//! client, whatever its headers say.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The networks whose forwarded headers are believed (`--trusted-proxies`). Empty: none, and
/// the TCP peer is always the client.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a comma-separated list of CIDRs (a bare address means just that address).
    pub fn parse(list: &str) -> Result<TrustedProxies, String> {
        let mut nets = Vec::new();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let net = match part.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => part.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
                    format!("{part:?} is not a CIDR such as 10.0.0.0/8 or an IP address")
                })?,
            };
            nets.push(net);
        }
        Ok(TrustedProxies(nets))
    }

    /// Whether `ip` is a trusted proxy (an IPv4 address written as IPv4-mapped IPv6 counts as
    /// the IPv4 address).
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let canonical = ip.to_canonical();
        self.0
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical))
    }
}

/// The client of a request that came from `peer`: `peer` itself unless it is a trusted proxy;
/// then the rightmost hop of `X-Forwarded-For` (or of `Forwarded`, when there is no
/// `X-Forwarded-For`) that is not a trusted proxy. A hop that is no address (`unknown`, an
/// obfuscated `_name`, garbage) ends the walk at the trusted hop before it: hookflow knows no
/// more than that proxy did.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let mut client = peer.to_canonical();
    if !trusted.trusts(client) {
        return client;
    }
    for hop in forwarded_hops(headers).into_iter().rev() {
        match hop {
            Some(ip) if trusted.trusts(ip) => client = ip,
            Some(ip) => return ip,
            None => return client,
        }
    }
    client
}

/// The hops the forwarded headers list, left (the first client) to right (the last proxy's
/// peer); `None` for a hop that is no address. `X-Forwarded-For` is preferred: it is the header
/// proxies set by default, and a client could otherwise add a `Forwarded` header its proxy
/// passes through untouched.
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    };
    let xff = values("x-forwarded-for");
    if !xff.is_empty() {
        return xff
            .iter()
            .flat_map(|v| v.split(','))
            .map(|hop| parse_hop(hop.trim()))
            .collect();
    }
    values("forwarded")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|element| {
            element
                .split(';')
                .filter_map(|pair| pair.split_once('='))
                .find(|(key, _)| key.trim().eq_ignore_ascii_case("for"))
                .and_then(|(_, value)| parse_hop(value.trim().trim_matches('"')))
        })
        .collect()
}

/// An address as the headers write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']')?.0.parse::<IpAddr>().ok();
    }
    let (host, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let spoofed = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            client_address(ip("198.51.100.7"), &spoofed, &trusted),
            ip("198.51.100.7")
        );
        let nobody = TrustedProxies::default();
        assert_eq!(
            client_address(ip("10.0.0.1"), &spoofed, &nobody),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = TrustedProxies::parse("10.0.0.0/8, 192.168.1.1").unwrap();
        // The client wrote "1.1.1.1" itself; its proxy appended the address it saw.
        let chain = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 192.168.1.1")]);
        assert_eq!(
            client_address(ip("10.1.2.3"), &chain, &trusted),
            ip("203.0.113.9")
        );
        // Two header lines read as one list.
        let split = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "203.0.113.9:5555"),
        ]);
        assert_eq!(
            client_address(ip("10.1.2.3"), &split, &trusted),
            ip("203.0.113.9")
        );
        // Nothing forwarded: the proxy itself.
        assert_eq!(
            client_address(ip("10.1.2.3"), &HeaderMap::new(), &trusted),
            ip("10.1.2.3")
        );
        // A hop that is no address: the trusted proxy that reported it.
        let garbage = headers(&[("x-forwarded-for", "203.0.113.9, unknown, 192.168.1.1")]);
        assert_eq!(
            client_address(ip("10.1.2.3"), &garbage, &trusted),
            ip("192.168.1.1")
        );
    }

    #[test]
    fn forwarded_is_read_when_there_is_no_x_forwarded_for() {
        let trusted = TrustedProxies::parse("::1, 10.0.0.0/8").unwrap();
        let forwarded = headers(&[(
            "forwarded",
            "for=192.0.2.60;proto=http, For=\"[2001:db8:cafe::17]:4711\";by=10.0.0.2",
        )]);
        assert_eq!(
            client_address(ip("::1"), &forwarded, &trusted),
            ip("2001:db8:cafe::17")
        );
        let both = headers(&[
            ("forwarded", "for=192.0.2.60"),
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        assert_eq!(
            client_address(ip("10.0.0.9"), &both, &trusted),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn ipv4_mapped_peers_count_as_ipv4() {
        let trusted = TrustedProxies::parse("127.0.0.1").unwrap();
        let forwarded = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            client_address(ip("::ffff:127.0.0.1"), &forwarded, &trusted),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn bad_lists_are_refused() {
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.local").is_err());
        assert!(TrustedProxies::parse("").unwrap().0.is_empty());
    }
}
