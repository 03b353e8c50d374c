//! The SSRF guard and webhook URLs: `TargetPolicy::check` on any address, `TargetPolicy::parse`
//! on any `--allow-private-targets` list, and a URL as saving a trigger checks it (the
//! engine's `check_action`, then the transport's refusal of literal addresses the policy
//! forbids).
//!
//! Input: its first byte picks the mode, the rest is the payload.
//! - 0: an address, 16 bytes for IPv6 or 4 for IPv4 (fewer: no input).
//! - 1: an allow-list as the CLI takes it, then addresses it must open.
//! - otherwise: a webhook URL (UTF-8).
//!
//! The default policy is judged against an oracle written from the IANA special-purpose
//! registries: an address is refused exactly when it, or the IPv4 address it embeds
//! (IPv4-mapped, IPv4-compatible, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`), is loopback,
//! unspecified, private, link-local, shared (CGNAT), multicast or reserved.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use hookflow_delivery::guard::judge;
use hookflow_delivery::{DeliveryConfig, HttpTransport, TargetPolicy};
use hookflow_engine::model::CallWebhook;
use hookflow_engine::transport::Transport;
use hookflow_engine::triggers::check_action;
use hookflow_fuzz::{event_type, sample};
use hookflow_templating::TemplateSet;
use libfuzzer_sys::fuzz_target;

static TRANSPORT: LazyLock<HttpTransport> = LazyLock::new(|| {
    HttpTransport::new(DeliveryConfig::default()).expect("the default client builds")
});
static SET: LazyLock<TemplateSet> = LazyLock::new(TemplateSet::new);

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        0 => {
            let ip = if let Ok(octets) = <[u8; 16]>::try_from(rest) {
                IpAddr::V6(Ipv6Addr::from(octets))
            } else if let Ok(octets) = <[u8; 4]>::try_from(rest) {
                IpAddr::V4(Ipv4Addr::from(octets))
            } else {
                return;
            };
            check_address(ip);
        }
        1 => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            let (list, addresses) = text.split_once('\n').unwrap_or((text, ""));
            let Ok(policy) = TargetPolicy::parse(list) else {
                return;
            };
            for ip in addresses
                .lines()
                .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            {
                let opened = policy.allowed.iter().any(|net| net.contains(&ip));
                let verdict = policy.check(ip);
                if opened {
                    assert!(verdict.is_ok(), "{list:?} lists {ip}, yet {verdict:?}");
                }
                if verdict.is_err() {
                    // An allow-list only opens: what it refuses, the default refuses too.
                    let default = TargetPolicy::default().check(ip);
                    assert!(
                        default.is_err(),
                        "{list:?} refuses {ip}, the default does not"
                    );
                }
            }
        }
        _ => {
            let Ok(url) = std::str::from_utf8(rest) else {
                return;
            };
            check_url(url);
        }
    }
});

fn check_address(ip: IpAddr) {
    let verdict = TargetPolicy::default().check(ip);
    // The oracle is a floor: the guard refuses at least these (it also refuses the rest of
    // the IANA registries' non-global rows, which its own table tests cover).
    if forbidden(ip) {
        assert!(
            verdict.is_err(),
            "{ip} must be refused, yet the guard allows it"
        );
    }
    // Every refusal names the registry row it comes from.
    assert_eq!(judge(ip).is_some(), verdict.is_err(), "{ip}");
    // An IPv4 address and its IPv4-mapped IPv6 form are one address.
    if let IpAddr::V4(v4) = ip {
        let mapped = TargetPolicy::default().check(IpAddr::V6(v4.to_ipv6_mapped()));
        assert_eq!(
            mapped.is_err(),
            verdict.is_err(),
            "{ip} and its mapped form differ"
        );
    }
    // The same address written inside a URL is judged the same when a trigger is saved.
    let url = match ip {
        IpAddr::V4(v4) => format!("https://{v4}/hook"),
        IpAddr::V6(v6) => format!("https://[{v6}]/hook"),
    };
    assert_eq!(
        TRANSPORT.check_url(&url).is_err(),
        verdict.is_err(),
        "{url}"
    );
}

fn check_url(url: &str) {
    let ty = event_type(url);
    let ctx = sample(&ty);
    let call = CallWebhook::to(url);
    let _ = check_action(&SET, &call, &ty, &ctx);
    let verdict = TRANSPORT.check_url(url);
    if url.contains("{{") {
        return; // The transport probes merge fields with a stand-in value first.
    }
    let host = url::Url::parse(url).ok().and_then(|u| match u.host() {
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        _ => None,
    });
    if let Some(ip) = host {
        assert_eq!(
            verdict.is_err(),
            TargetPolicy::default().check(ip).is_err(),
            "{url:?} is {ip}: {verdict:?}"
        );
        if forbidden(ip) {
            assert!(verdict.is_err(), "{url:?} is {ip}, which must be refused");
        }
    } else {
        assert!(
            verdict.is_ok(),
            "{url:?} has no literal address: {verdict:?}"
        );
    }
}

/// The oracle: addresses the default policy must refuse (a floor, written independently of
/// the guard's table).
fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => forbidden_v4(v4),
            None => forbidden_v6(v6),
        },
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    a == 0 // "this network"
        || a == 10 // private
        || a == 127 // loopback
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254) // link-local
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 168) // private
        || a >= 224 // multicast, reserved, broadcast
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || first & 0xfe00 == 0xfc00 // unique local
        || first & 0xffc0 == 0xfe80 // link-local
        || first & 0xff00 == 0xff00 // multicast
}

/// The IPv4 address an IPv6 address stands for, in the forms a host or a translator on the
/// path may turn back into IPv4.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low), // IPv4-mapped
        [0, 0, 0, 0, 0, 0, _, _] => Some(low),      // IPv4-compatible (deprecated)
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low), // NAT64 well-known prefix
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )), // 6to4
        _ => None,
    }
}
