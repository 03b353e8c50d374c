//! The SSRF guard: by default a webhook may only reach public addresses.
//!
//! A URL is checked on the addresses its host resolves to, when the connection is made, not when
//! the trigger is saved: a name that resolves to a public address today can point at
//! 127.0.0.1 tomorrow. Operators allow internal networks explicitly with
//! `--allow-private-targets`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Networks that are reachable even though they are not public.
#[derive(Debug, Clone, Default)]
pub struct TargetPolicy {
    pub allowed: Vec<IpNet>,
}

/// A target address the policy refuses.
#[derive(Debug, Clone, thiserror::Error)]
pub struct Blocked {
    pub addr: IpAddr,
    pub reason: &'static str,
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "target address {} is {} and not allowed; allow its network with --allow-private-targets",
            self.addr, self.reason
        )
    }
}

impl TargetPolicy {
    /// Parses a comma-separated list of CIDRs (a bare address means just that address).
    pub fn parse(list: &str) -> Result<TargetPolicy, String> {
        let mut allowed = Vec::new();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let net = match part.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => match part.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => {
                        return Err(format!(
                            "{part:?} is not a CIDR such as 10.0.0.0/8 or an IP address"
                        ))
                    }
                },
            };
            allowed.push(net);
        }
        Ok(TargetPolicy { allowed })
    }

    /// Whether a call may connect to `ip`.
    pub fn check(&self, ip: IpAddr) -> Result<(), Blocked> {
        let Some(reason) = non_public(ip) else {
            return Ok(());
        };
        let canonical = canonical(ip);
        if self
            .allowed
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical))
        {
            return Ok(());
        }
        Err(Blocked { addr: ip, reason })
    }
}

/// IPv6 addresses that carry an IPv4 address are judged as that IPv4 address: a host or a
/// translator on the path may turn them back into it. They are IPv4-mapped
/// (`::ffff:127.0.0.1`), IPv4-compatible (`::127.0.0.1`, deprecated, still routed by some
/// stacks), NAT64's well-known prefix (`64:ff9b::127.0.0.1`, RFC 6052) and 6to4
/// (`2002:7f00:1::`, RFC 3056).
fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else {
        return ip;
    };
    let o = v6.octets();
    let embedded = match v6.segments() {
        // `::` and `::1` are IPv6's own unspecified and loopback addresses.
        _ if v6.is_unspecified() || v6.is_loopback() => return ip,
        [0, 0, 0, 0, 0, 0xffff | 0, _, _] | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => {
            [o[12], o[13], o[14], o[15]]
        }
        [0x2002, ..] => [o[2], o[3], o[4], o[5]],
        _ => return ip,
    };
    IpAddr::V4(Ipv4Addr::from(embedded))
}

/// Why an address is not public, or `None` if it is.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (carrier-grade NAT)")
    } else if ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        Some("broadcast, multicast or reserved")
    } else {
        None
    }
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if first & 0xfe00 == 0xfc00 {
        Some("private (unique local)")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else {
        None
    }
}

/// Resolves names with the system resolver and drops the addresses the policy refuses; if none
/// is left the connection fails with [`Blocked`].
pub(crate) struct GuardedResolver {
    policy: Arc<TargetPolicy>,
}

impl GuardedResolver {
    pub(crate) fn new(policy: Arc<TargetPolicy>) -> GuardedResolver {
        GuardedResolver { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let mut first_blocked = None;
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match policy.check(a.ip()) {
                    Ok(()) => true,
                    Err(blocked) => {
                        first_blocked.get_or_insert(blocked);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                if let Some(blocked) = first_blocked {
                    return Err(Box::new(blocked) as Box<dyn std::error::Error + Send + Sync>);
                }
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn non_public_addresses_are_refused_by_default() {
        let policy = TargetPolicy::default();
        for addr in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            // IPv4 carried in IPv6 (found by the guard fuzz target).
            "::127.0.0.1",
            "64:ff9b::169.254.169.254",
            "2002:c0a8:101::1",
        ] {
            assert!(policy.check(ip(addr)).is_err(), "{addr} should be refused");
        }
        for addr in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "64:ff9b::8.8.8.8",
            "2002:808:808::1",
        ] {
            assert!(policy.check(ip(addr)).is_ok(), "{addr} should be allowed");
        }
    }

    #[test]
    fn allowed_networks_open_the_guard() {
        let policy = TargetPolicy::parse("127.0.0.0/8, 10.0.0.5").unwrap();
        assert!(policy.check(ip("127.0.0.1")).is_ok());
        assert!(policy.check(ip("::ffff:127.0.0.1")).is_ok());
        assert!(policy.check(ip("10.0.0.5")).is_ok());
        assert!(policy.check(ip("10.0.0.6")).is_err());
        assert!(TargetPolicy::parse("not-a-net").is_err());
    }

    #[test]
    fn blocked_messages_say_what_to_do() {
        let err = TargetPolicy::default().check(ip("127.0.0.1")).unwrap_err();
        assert!(err.to_string().contains("loopback"));
        assert!(err.to_string().contains("--allow-private-targets"));
    }
}
