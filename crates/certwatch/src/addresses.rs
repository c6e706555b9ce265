//! The SSRF rule: addresses from DNS that a check refuses to connect to unless
//! [`CheckOptions::allow_private_targets`](crate::CheckOptions::allow_private_targets) is set.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The kind of special-use address `ip` is (loopback, private, link-local, ...), or `None`
/// for a globally routable unicast address.
///
/// ```
/// use certwatch::special_use_address;
/// assert_eq!(special_use_address("127.0.0.1".parse().unwrap()), Some("loopback"));
/// assert_eq!(special_use_address("10.1.2.3".parse().unwrap()), Some("private"));
/// assert_eq!(special_use_address("fe80::1".parse().unwrap()), Some("link-local"));
/// assert_eq!(special_use_address("::ffff:192.168.0.1".parse().unwrap()), Some("private"));
/// assert_eq!(special_use_address("9.9.9.9".parse().unwrap()), None);
/// assert_eq!(special_use_address("2a01:4f8::1".parse().unwrap()), None);
/// ```
pub fn special_use_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    let kind = if ip.is_loopback() {
        "loopback"
    } else if ip.is_private() {
        "private"
    } else if ip.is_link_local() {
        "link-local"
    } else if o[0] == 0 {
        "unspecified (0.0.0.0/8)"
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        "shared address space (100.64.0.0/10)"
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        "IETF protocol assignment (192.0.0.0/24)"
    } else if ip.is_documentation() {
        "documentation"
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        "benchmarking (198.18.0.0/15)"
    } else if ip.is_multicast() {
        "multicast"
    } else if o[0] >= 240 {
        "reserved (240.0.0.0/4)"
    } else {
        return None;
    };
    Some(kind)
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return special_v4(v4);
    }
    let s = ip.segments();
    let kind = if ip.is_loopback() {
        "loopback"
    } else if ip.is_unspecified() {
        "unspecified"
    } else if (s[0] & 0xfe00) == 0xfc00 {
        "private"
    } else if (s[0] & 0xffc0) == 0xfe80 {
        "link-local"
    } else if (s[0] & 0xffc0) == 0xfec0 {
        "site-local (deprecated)"
    } else if ip.is_multicast() {
        "multicast"
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        "documentation"
    } else if s[0] == 0x2001 && s[1] < 0x0200 {
        "IETF protocol assignment (2001::/23)"
    } else if s[0] == 0x0064 && s[1] == 0xff9b {
        "NAT64 (64:ff9b::/96)"
    } else if s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0 {
        "discard-only (100::/64)"
    } else if s[0] == 0 {
        "reserved (::/8)"
    } else {
        return None;
    };
    Some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> Option<&'static str> {
        special_use_address(s.parse().unwrap())
    }

    #[test]
    fn refuses_special_use_ranges() {
        for (ip, k) in [
            ("127.0.0.3", "loopback"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.100.0.1", "shared address space (100.64.0.0/10)"),
            ("0.1.2.3", "unspecified (0.0.0.0/8)"),
            ("255.255.255.255", "reserved (240.0.0.0/4)"),
            ("224.0.0.1", "multicast"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00::1", "private"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("::ffff:127.0.0.1", "loopback"),
        ] {
            assert_eq!(kind(ip), Some(k), "{ip}");
        }
    }

    #[test]
    fn accepts_global_unicast() {
        for ip in [
            "1.1.1.1",
            "100.128.0.1",
            "172.32.0.1",
            "2600::1",
            "2001:4860::8888",
        ] {
            assert_eq!(kind(ip), None, "{ip}");
        }
    }
}
