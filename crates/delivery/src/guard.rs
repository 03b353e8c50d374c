//! The SSRF guard: by default a webhook may only reach globally reachable addresses.
//!
//! A URL is checked on the addresses its host resolves to, when the connection is made, not when
//! the trigger is saved: a name that resolves to a public address today can point at
//! 127.0.0.1 tomorrow. Operators allow internal networks explicitly with
//! `--allow-private-targets`.
//!
//! What is refused is data, not code: [`V4_RANGES`] and [`V6_RANGES`] are the rows of IANA's
//! IPv4 and IPv6 Special-Purpose Address Registries that are not globally reachable (plus
//! multicast, and on IPv6 everything outside global unicast `2000::/3`), so a refusal names
//! its range ("198.18.0.0/15 benchmarking"). IPv6 forms that carry an IPv4 address (mapped,
//! IPv4-compatible, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the IPv4 address
//! they carry: `64:ff9b::7f00:1` is loopback.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Networks that are reachable even though they are not globally reachable.
#[derive(Debug, Clone, Default)]
pub struct TargetPolicy {
    pub allowed: Vec<IpNet>,
}

/// A target address the policy refuses, and the range that refuses it.
#[derive(Debug, Clone, thiserror::Error)]
pub struct Blocked {
    pub addr: IpAddr,
    /// The range the address is in, e.g. `127.0.0.0/8 loopback`; for an IPv6 address that
    /// carries an IPv4 address, the range of the carried address.
    pub range: &'static Range,
    /// The IPv6 range whose addresses carry an IPv4 address (`64:ff9b::/96 ...`), when the
    /// verdict was reached through the carried address.
    pub via: Option<&'static Range>,
    /// The IPv4 address an IPv6 address carries: an allowed network written in IPv4 form
    /// opens it too.
    carried: Option<Ipv4Addr>,
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "target address {} is in {}", self.addr, self.range)?;
        if let Some(via) = self.via {
            write!(f, " (carried in {via})")?;
        }
        // "and not allowed" is what the UI's plain-language errors recognise.
        write!(
            f,
            ", which is not globally reachable and not allowed; allow its network with \
             --allow-private-targets"
        )
    }
}

/// One row of a special-purpose table: a network and the name the registry gives it.
#[derive(Debug)]
pub struct Range {
    /// The network as written in the registry, e.g. `198.18.0.0/15`.
    pub cidr: &'static str,
    /// The registry's name for it, e.g. `benchmarking`.
    pub name: &'static str,
    net: u128,
    len: u8,
    rule: Rule,
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.cidr, self.name)
    }
}

/// What a range means for the addresses in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Refused.
    Refuse,
    /// Refused; the IPv4 address it carries lets an allowed IPv4 network open it.
    RefuseCarrying(Carry),
    /// Judged as the IPv4 address it carries (refused only if that is refused).
    AsCarried(Carry),
}

/// Where an IPv6 address carries an IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carry {
    /// The last 32 bits (mapped, IPv4-compatible, NAT64 well-known prefix).
    Low32,
    /// Bits 16 to 48 (6to4, RFC 3056).
    Bits16To48,
}

impl Carry {
    fn extract(self, ip: u128) -> Ipv4Addr {
        let bits = match self {
            Carry::Low32 => ip as u32,
            Carry::Bits16To48 => (ip >> 80) as u32,
        };
        Ipv4Addr::from(bits)
    }
}

impl Range {
    fn contains(&self, ip: u128, width: u32) -> bool {
        let host_bits = width - u32::from(self.len);
        // Every row the scans reach has `len` >= 1, so the shift stays below the width (the
        // `::/0` row is handled by `outside_global_unicast`).
        (ip ^ self.net) >> host_bits == 0
    }
}

const fn v4(cidr: &'static str, a: [u8; 4], len: u8, name: &'static str) -> Range {
    Range {
        cidr,
        name,
        net: u32::from_be_bytes(a) as u128,
        len,
        rule: Rule::Refuse,
    }
}

const fn v6(cidr: &'static str, s: [u16; 8], len: u8, name: &'static str, rule: Rule) -> Range {
    let mut net = 0u128;
    let mut i = 0;
    while i < 8 {
        net = (net << 16) | s[i] as u128;
        i += 1;
    }
    Range {
        cidr,
        name,
        net,
        len,
        rule,
    }
}

/// IPv4 ranges that are not globally reachable: the IANA IPv4 Special-Purpose Address
/// Registry's rows with "Globally Reachable = False" (the deprecated 6to4 relay anycast
/// included), and multicast. Rows inside others (`0.0.0.0/32`, the `192.0.0.0/29` service
/// continuity prefix, the dummy and NAT64 discovery addresses in `192.0.0.0/24`) are left out;
/// the registry's globally reachable exceptions inside `192.0.0.0/24` (the PCP and TURN
/// anycast addresses) are refused with it: no webhook receiver lives there. The first row
/// that contains an address decides.
pub static V4_RANGES: [Range; 16] = [
    v4("0.0.0.0/8", [0, 0, 0, 0], 8, "\"this network\""),
    v4("10.0.0.0/8", [10, 0, 0, 0], 8, "private-use"),
    v4(
        "100.64.0.0/10",
        [100, 64, 0, 0],
        10,
        "shared address space (carrier-grade NAT)",
    ),
    v4("127.0.0.0/8", [127, 0, 0, 0], 8, "loopback"),
    v4("169.254.0.0/16", [169, 254, 0, 0], 16, "link-local"),
    v4("172.16.0.0/12", [172, 16, 0, 0], 12, "private-use"),
    v4(
        "192.0.0.0/24",
        [192, 0, 0, 0],
        24,
        "IETF protocol assignments",
    ),
    v4(
        "192.0.2.0/24",
        [192, 0, 2, 0],
        24,
        "documentation (TEST-NET-1)",
    ),
    v4(
        "192.88.99.0/24",
        [192, 88, 99, 0],
        24,
        "6to4 relay anycast (deprecated)",
    ),
    v4("192.168.0.0/16", [192, 168, 0, 0], 16, "private-use"),
    v4("198.18.0.0/15", [198, 18, 0, 0], 15, "benchmarking"),
    v4(
        "198.51.100.0/24",
        [198, 51, 100, 0],
        24,
        "documentation (TEST-NET-2)",
    ),
    v4(
        "203.0.113.0/24",
        [203, 0, 113, 0],
        24,
        "documentation (TEST-NET-3)",
    ),
    v4("224.0.0.0/4", [224, 0, 0, 0], 4, "multicast"),
    v4(
        "255.255.255.255/32",
        [255, 255, 255, 255],
        32,
        "limited broadcast",
    ),
    v4("240.0.0.0/4", [240, 0, 0, 0], 4, "reserved"),
];

/// IPv6 ranges that are not globally reachable: the IANA IPv6 Special-Purpose Address
/// Registry's rows with "Globally Reachable = False", the deprecated IPv4-compatible and
/// site-local ranges, multicast, and (last) everything outside global unicast `2000::/3`,
/// which IANA has not allocated. The whole of `2001::/23` is refused although the registry
/// lists a few globally reachable anycast and ORCHID blocks inside it: no webhook receiver
/// lives there. The first row that contains an address decides.
pub static V6_RANGES: [Range; 18] = [
    v6("::/128", [0; 8], 128, "unspecified", Rule::Refuse),
    v6(
        "::1/128",
        [0, 0, 0, 0, 0, 0, 0, 1],
        128,
        "loopback",
        Rule::Refuse,
    ),
    v6(
        "::ffff:0:0/96",
        [0, 0, 0, 0, 0, 0xffff, 0, 0],
        96,
        "IPv4-mapped",
        Rule::AsCarried(Carry::Low32),
    ),
    v6(
        "::/96",
        [0; 8],
        96,
        "IPv4-compatible (deprecated)",
        Rule::RefuseCarrying(Carry::Low32),
    ),
    v6(
        "64:ff9b::/96",
        [0x64, 0xff9b, 0, 0, 0, 0, 0, 0],
        96,
        "IPv4/IPv6 translation (NAT64)",
        Rule::AsCarried(Carry::Low32),
    ),
    v6(
        "64:ff9b:1::/48",
        [0x64, 0xff9b, 1, 0, 0, 0, 0, 0],
        48,
        "local-use IPv4/IPv6 translation",
        Rule::Refuse,
    ),
    v6(
        "100::/64",
        [0x100, 0, 0, 0, 0, 0, 0, 0],
        64,
        "discard-only",
        Rule::Refuse,
    ),
    v6(
        "100:0:0:1::/64",
        [0x100, 0, 0, 1, 0, 0, 0, 0],
        64,
        "dummy IPv6 prefix",
        Rule::Refuse,
    ),
    v6(
        "2001:db8::/32",
        [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
        32,
        "documentation",
        Rule::Refuse,
    ),
    v6(
        "2001::/23",
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        23,
        "IETF protocol assignments (Teredo, benchmarking, ORCHID, ...)",
        Rule::Refuse,
    ),
    v6(
        "2002::/16",
        [0x2002, 0, 0, 0, 0, 0, 0, 0],
        16,
        "6to4",
        Rule::AsCarried(Carry::Bits16To48),
    ),
    v6(
        "3fff::/20",
        [0x3fff, 0, 0, 0, 0, 0, 0, 0],
        20,
        "documentation",
        Rule::Refuse,
    ),
    v6(
        "5f00::/16",
        [0x5f00, 0, 0, 0, 0, 0, 0, 0],
        16,
        "segment routing (SRv6) SIDs",
        Rule::Refuse,
    ),
    v6(
        "fc00::/7",
        [0xfc00, 0, 0, 0, 0, 0, 0, 0],
        7,
        "unique-local",
        Rule::Refuse,
    ),
    v6(
        "fe80::/10",
        [0xfe80, 0, 0, 0, 0, 0, 0, 0],
        10,
        "link-local",
        Rule::Refuse,
    ),
    v6(
        "fec0::/10",
        [0xfec0, 0, 0, 0, 0, 0, 0, 0],
        10,
        "site-local (deprecated)",
        Rule::Refuse,
    ),
    v6(
        "ff00::/8",
        [0xff00, 0, 0, 0, 0, 0, 0, 0],
        8,
        "multicast",
        Rule::Refuse,
    ),
    // Not a registry row: IANA has allocated only 2000::/3 for global unicast.
    v6(
        "::/0",
        [0; 8],
        0,
        "outside global unicast 2000::/3",
        Rule::Refuse,
    ),
];

/// The last row of [`V6_RANGES`] catches what lies outside `2000::/3`.
fn outside_global_unicast(ip: u128) -> bool {
    ip >> 125 != 0b001
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

    /// Whether a call may connect to `ip`. An allowed network opens an address written in it,
    /// and an IPv6 address that carries an IPv4 address in it.
    pub fn check(&self, ip: IpAddr) -> Result<(), Blocked> {
        let Some(blocked) = judge(ip) else {
            return Ok(());
        };
        let carried = blocked.carried.map(IpAddr::V4);
        let opened = self
            .allowed
            .iter()
            .any(|net| net.contains(&ip) || carried.is_some_and(|c| net.contains(&c)));
        if opened {
            Ok(())
        } else {
            Err(blocked)
        }
    }
}

/// Why an address is refused by default, or `None` if it is globally reachable.
pub fn judge(ip: IpAddr) -> Option<Blocked> {
    match ip {
        IpAddr::V4(v4) => judge_v4(v4).map(|range| Blocked {
            addr: ip,
            range,
            via: None,
            carried: None,
        }),
        IpAddr::V6(v6) => judge_v6(v6),
    }
}

fn judge_v4(ip: Ipv4Addr) -> Option<&'static Range> {
    let bits = u128::from(u32::from(ip));
    V4_RANGES.iter().find(|r| r.contains(bits, 32))
}

fn judge_v6(ip: Ipv6Addr) -> Option<Blocked> {
    let bits = u128::from(ip);
    let addr = IpAddr::V6(ip);
    let (last, rows) = V6_RANGES.split_last().expect("the table is not empty");
    let Some(range) = rows.iter().find(|r| r.contains(bits, 128)) else {
        return outside_global_unicast(bits).then_some(Blocked {
            addr,
            range: last,
            via: None,
            carried: None,
        });
    };
    match range.rule {
        Rule::Refuse => Some(Blocked {
            addr,
            range,
            via: None,
            carried: None,
        }),
        Rule::RefuseCarrying(carry) => Some(Blocked {
            addr,
            range,
            via: None,
            carried: Some(carry.extract(bits)),
        }),
        Rule::AsCarried(carry) => {
            let v4 = carry.extract(bits);
            judge_v4(v4).map(|inner| Blocked {
                addr,
                range: inner,
                via: Some(range),
                carried: Some(v4),
            })
        }
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

    /// The range that decided about `addr` (the carrying range for carried addresses too).
    fn deciders(addr: IpAddr) -> Vec<&'static str> {
        judge(addr).map_or(Vec::new(), |b| {
            std::iter::once(b.range.cidr)
                .chain(b.via.map(|v| v.cidr))
                .collect()
        })
    }

    fn edges(range: &Range, width: u32) -> (u128, u128) {
        let host_bits = width - u32::from(range.len);
        let size_mask = if host_bits == 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        (range.net, range.net | size_mask)
    }

    fn addr(bits: u128, width: u32) -> IpAddr {
        if width == 32 {
            IpAddr::V4(Ipv4Addr::from(bits as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }

    #[test]
    fn every_row_is_written_as_its_cidr_says() {
        for (table, width) in [(&V4_RANGES[..], 32), (&V6_RANGES[..], 128)] {
            for range in table {
                let net: IpNet = range.cidr.parse().unwrap();
                assert_eq!(u32::from(net.prefix_len()), u32::from(range.len), "{range}");
                assert_eq!(net.network(), addr(range.net, width), "{range}");
            }
        }
    }

    /// For every row: its first and last address are refused by that row (or one nested in
    /// it), and the addresses
    /// just outside it on both sides are not (they are allowed, or another row refuses them).
    #[test]
    fn every_range_is_refused_from_edge_to_edge_and_no_further() {
        let v6_rows = &V6_RANGES[..V6_RANGES.len() - 1];
        for (table, width) in [(&V4_RANGES[..], 32), (v6_rows, 128)] {
            let max = if width == 32 {
                u128::from(u32::MAX)
            } else {
                u128::MAX
            };
            for range in table {
                let (first, last) = edges(range, width);
                let net: IpNet = range.cidr.parse().unwrap();
                // A row nested in this one (`255.255.255.255/32` in `240.0.0.0/4`) may decide.
                let within = |cidr: &&str| cidr.parse::<IpNet>().is_ok_and(|n| net.contains(&n));
                for inside in [first, last] {
                    let addr = addr(inside, width);
                    assert!(
                        deciders(addr).iter().any(within),
                        "{addr} must be refused by {range}, got {:?}",
                        judge(addr).map(|b| b.to_string())
                    );
                }
                let outside = [
                    first.checked_sub(1),
                    last.checked_add(1).filter(|&n| n <= max),
                ];
                for outside in outside.into_iter().flatten() {
                    let addr = addr(outside, width);
                    assert!(
                        !deciders(addr).contains(&range.cidr),
                        "{addr} lies outside {range}"
                    );
                }
            }
        }
    }

    /// The neighbours of the ranges that are globally reachable themselves.
    #[test]
    fn the_neighbours_of_the_ranges_are_reachable() {
        let policy = TargetPolicy::default();
        for addr in [
            "1.0.0.0",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "191.255.255.255",
            "192.0.1.0",
            "192.0.3.0",
            "192.88.98.255",
            "192.88.100.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "198.51.99.255",
            "198.51.101.0",
            "203.0.112.255",
            "203.0.114.0",
            "223.255.255.255",
            "93.184.216.34",
            "8.8.8.8",
            "2000::",
            "2001:200::",
            "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
            "2001:db9::",
            "2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "2003::",
            "3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "3fff:1000::",
            "2606:4700::1111",
            "2620:4f:8000::1",
        ] {
            assert!(policy.check(ip(addr)).is_ok(), "{addr} should be allowed");
        }
    }

    /// IPv4 addresses in IPv6 clothing are judged as the IPv4 address.
    #[test]
    fn carried_ipv4_addresses_are_judged_as_themselves() {
        let policy = TargetPolicy::default();
        for (addr, range) in [
            ("::ffff:127.0.0.1", "127.0.0.0/8 loopback"),
            ("::ffff:10.0.0.1", "10.0.0.0/8 private-use"),
            ("64:ff9b::7f00:1", "127.0.0.0/8 loopback"),
            ("64:ff9b::10.1.2.3", "10.0.0.0/8 private-use"),
            ("64:ff9b::169.254.169.254", "169.254.0.0/16 link-local"),
            ("64:ff9b::198.18.0.1", "198.18.0.0/15 benchmarking"),
            ("2002:7f00:1::1", "127.0.0.0/8 loopback"),
            ("2002:c0a8:101::", "192.168.0.0/16 private-use"),
            ("::127.0.0.1", "::/96 IPv4-compatible"),
            ("::8.8.8.8", "::/96 IPv4-compatible"),
            ("64:ff9b:1::7f00:1", "64:ff9b:1::/48 local-use"),
            ("64:ff9b:1::8.8.8.8", "64:ff9b:1::/48 local-use"),
            ("::ffff:0:7f00:1", "outside global unicast"),
        ] {
            let err = policy.check(ip(addr)).unwrap_err().to_string();
            assert!(err.contains(range), "{addr}: {err}");
        }
        assert!(policy
            .check(ip("64:ff9b::7f00:1"))
            .unwrap_err()
            .to_string()
            .contains("carried in 64:ff9b::/96"));
        for addr in ["::ffff:8.8.8.8", "64:ff9b::8.8.8.8", "2002:808:808::1"] {
            assert!(policy.check(ip(addr)).is_ok(), "{addr} should be allowed");
        }
    }

    #[test]
    fn allowed_networks_open_the_guard_in_either_form() {
        let policy = TargetPolicy::parse("127.0.0.0/8, 10.0.0.5, fd00::/8, 198.18.0.0/15").unwrap();
        for addr in [
            "127.0.0.1",
            "::ffff:127.0.0.1",
            "64:ff9b::7f00:1",
            "::127.0.0.1",
            "2002:7f00:1::1",
            "10.0.0.5",
            "64:ff9b::a00:5",
            "fd00::1",
            "198.19.255.255",
        ] {
            assert!(policy.check(ip(addr)).is_ok(), "{addr} should be allowed");
        }
        for addr in [
            "10.0.0.6",
            "64:ff9b::a00:6",
            "::1",
            "fc00::1",
            "192.168.0.1",
        ] {
            assert!(policy.check(ip(addr)).is_err(), "{addr} should be refused");
        }
        let v6_form = TargetPolicy::parse("64:ff9b::/96, 64:ff9b:1::/48, ::1").unwrap();
        for addr in ["64:ff9b::7f00:1", "64:ff9b:1::1", "::1"] {
            assert!(v6_form.check(ip(addr)).is_ok(), "{addr} should be allowed");
        }
        assert!(v6_form.check(ip("127.0.0.1")).is_err());
        assert!(TargetPolicy::parse("not-a-net").is_err());
    }

    #[test]
    fn blocked_messages_name_the_range_and_say_what_to_do() {
        let err = TargetPolicy::default()
            .check(ip("198.18.0.1"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("198.18.0.0/15 benchmarking"), "{err}");
        assert!(err.contains("--allow-private-targets"), "{err}");
    }
}
