//! Host names, IP literals, CIDRs and ports: normalised before any matching.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Lower-cases a host name and drops one trailing dot (`API.Example.COM.` → `api.example.com`).
pub fn normalize_host(host: &str) -> String {
    let host = host.strip_suffix('.').unwrap_or(host);
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.to_ascii_lowercase()
}

/// Parses an IP literal in every form a resolver or `inet_aton` would accept: dotted decimal,
/// a single 32-bit number (`2130706433`), hex (`0x7f.0.0.1`), octal (`0177.0.0.1`), short forms
/// (`127.1`), and IPv6 (IPv4-mapped and IPv4-compatible forms become the IPv4 address).
pub fn parse_ip_literal(text: &str) -> Option<IpAddr> {
    let text = normalize_host(text);
    if text.contains(':') {
        let v6: Ipv6Addr = text.parse().ok()?;
        return Some(canonical_ip(IpAddr::V6(v6)));
    }
    parse_inet_aton(&text).map(IpAddr::V4)
}

/// IPv4-mapped (`::ffff:a.b.c.d`) addresses are the IPv4 address they carry.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// The IPv4 address an IPv6 address reaches, when it embeds one: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, but not `::` or `::1`), NAT64
/// (`64:ff9b::a.b.c.d`, and `64:ff9b:1::a.b.c.d` in its /96 form) and 6to4
/// (`2002:aabb:ccdd::/48` reaches `a.b.c.d` through its relay). Decisions are made on the
/// address reached, so no IPv6 spelling carries a request around an IPv4 rule or block.
pub fn embedded_ipv4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else {
        return None;
    };
    let bits = u128::from(v6);
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    let seg = v6.segments();
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    if bits >> 32 == 0 && bits > 1 {
        return Some(low32);
    }
    if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return Some(low32);
    }
    if bits >> 32 == 0x0064_ff9b_0001_0000_0000_0000 {
        return Some(low32);
    }
    if seg[0] == 0x2002 {
        let [a, b] = seg[1].to_be_bytes();
        let [c, d] = seg[2].to_be_bytes();
        return Some(Ipv4Addr::new(a, b, c, d));
    }
    None
}

/// The address a decision is made on: the IPv4 address an IPv6 form embeds (see
/// [`embedded_ipv4`]), or the address itself.
pub fn decision_ip(ip: IpAddr) -> IpAddr {
    match embedded_ipv4(ip) {
        Some(v4) => IpAddr::V4(v4),
        None => canonical_ip(ip),
    }
}

fn parse_inet_aton(text: &str) -> Option<Ipv4Addr> {
    if text.is_empty() || text.ends_with('.') {
        return None;
    }
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut numbers = Vec::with_capacity(parts.len());
    for part in &parts {
        numbers.push(parse_inet_number(part)?);
    }
    let (last, head) = numbers.split_last()?;
    for n in head {
        if *n > 255 {
            return None;
        }
    }
    let tail_bits = 8 * (4 - head.len() as u32);
    if tail_bits < 32 && *last >= (1u64 << tail_bits) || *last > u64::from(u32::MAX) {
        return None;
    }
    let mut value: u64 = 0;
    for (i, n) in head.iter().enumerate() {
        value |= n << (24 - 8 * i as u32);
    }
    value |= last;
    Some(Ipv4Addr::from(u32::try_from(value).ok()?))
}

fn parse_inet_number(part: &str) -> Option<u64> {
    if part.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(hex) = part.strip_prefix("0x") {
        (hex, 16)
    } else if part.len() > 1 && part.starts_with('0') {
        (&part[1..], 8)
    } else {
        (part, 10)
    };
    if digits.is_empty() {
        return if radix == 16 { None } else { Some(0) };
    }
    if digits.len() > 12 {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// A host pattern from a rule: an exact name, `*.example.com` (any name ending in
/// `.example.com`, at any depth, but not `example.com` itself), `*` (any host), or an IP
/// literal (matched as a normalised address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `*`: any host.
    Any,
    /// One normalised name.
    Exact(String),
    /// `*.example.com`, kept as `.example.com`.
    Suffix(String),
    /// An IP literal, normalised.
    Address(IpAddr),
}

impl HostPattern {
    /// Parses a pattern as written in a rule; the error says what is wrong.
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let host = normalize_host(text);
        if host == "*" && text.trim() == "*" {
            return Ok(HostPattern::Any);
        }
        if let Some(ip) = parse_ip_literal(&host) {
            return Ok(HostPattern::Address(ip));
        }
        if let Some(suffix) = host.strip_prefix("*.") {
            validate_dns_name(suffix, text)?;
            return Ok(HostPattern::Suffix(format!(".{suffix}")));
        }
        if host.contains('*') {
            return Err(format!(
                "host pattern `{text}`: `*` may only be a whole first label, e.g. `*.example.com`"
            ));
        }
        validate_dns_name(&host, text)?;
        Ok(HostPattern::Exact(host))
    }

    /// `host` must already be normalised; `address` is its literal form when it is one.
    pub fn matches(&self, host: &str, address: Option<IpAddr>) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Exact(name) => name == host,
            HostPattern::Suffix(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
            HostPattern::Address(ip) => address.map(decision_ip) == Some(decision_ip(*ip)),
        }
    }
}

/// True when a normalised host name (see [`normalize_host`]) is one a resolver may be
/// asked for and a rule may name: 1 to 253 bytes of labels of 1 to 63 letters, digits, `-`
/// or `_`, no label starting or ending with `-`. A name with an empty label (`a..b`, or
/// `a.b..`, whose one trailing dot [`normalize_host`] drops) is invalid. IP literals are
/// not names: check [`parse_ip_literal`] first.
pub fn is_valid_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A host name with its empty labels removed (`a..b.` → `a.b`): what a deny rule is matched
/// against when the name itself is invalid, so the event can name that rule.
pub fn without_empty_labels(name: &str) -> String {
    name.split('.')
        .filter(|label| !label.is_empty())
        .collect::<Vec<_>>()
        .join(".")
}

fn validate_dns_name(name: &str, original: &str) -> Result<(), String> {
    if is_valid_host_name(name) {
        Ok(())
    } else {
        Err(format!(
            "host pattern `{original}` is not a valid host name, IP address or `*.domain` wildcard"
        ))
    }
}

/// An address block, `10.0.0.0/8` or `fd00::/8`; a bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The first address of the block.
    pub network: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `fd00::/8` or a bare address; refuses host bits past the prefix.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| {
            format!("`{text}` is not a CIDR: write it as `10.0.0.0/8` or `fd00::/8`")
        })?;
        let network = canonical_ip(network);
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{text}`: the prefix length must be 0 to {max}"))?,
        };
        let cidr = Cidr { network, prefix };
        if cidr.mask(network) != network {
            return Err(format!(
                "`{text}` has host bits set: the block starts at `{}/{prefix}`",
                cidr.mask(network)
            ));
        }
        Ok(cidr)
    }

    fn mask(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let bits = u32::from(v4);
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                IpAddr::V4(Ipv4Addr::from(bits & mask))
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                IpAddr::V6(Ipv6Addr::from(bits & mask))
            }
        }
    }

    /// True when the block holds the address, as written or as the IPv4 address it embeds
    /// (see [`embedded_ipv4`]), so `10.0.0.0/8` also holds `64:ff9b::10.0.0.1`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let holds =
            |ip: IpAddr| ip.is_ipv4() == self.network.is_ipv4() && self.mask(ip) == self.network;
        holds(canonical_ip(ip)) || embedded_ipv4(ip).is_some_and(|v4| holds(IpAddr::V4(v4)))
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// A port or an inclusive range of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// The first port.
    pub first: u16,
    /// The last port, inclusive.
    pub last: u16,
}

impl PortRange {
    /// Parses `443` or `8000-8100`.
    pub fn parse(text: &str) -> Result<PortRange, String> {
        let port = |p: &str| {
            p.trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("`{text}` is not a port: ports are 1 to 65535"))
        };
        match text.split_once('-') {
            Some((a, b)) => {
                let (first, last) = (port(a)?, port(b)?);
                if first > last {
                    return Err(format!(
                        "port range `{text}` is backwards: write `{last}-{first}`"
                    ));
                }
                Ok(PortRange { first, last })
            }
            None => {
                let p = port(text)?;
                Ok(PortRange { first: p, last: p })
            }
        }
    }

    /// True when the port is in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

/// Addresses a plugin may reach only through a rule that names them explicitly (by CIDR or
/// IP literal): loopback, private, link-local, CGNAT, unspecified, multicast, broadcast and
/// cloud-metadata addresses. Returns what kind of address it is.
pub fn blocked_address_kind(ip: IpAddr) -> Option<&'static str> {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4 == Ipv4Addr::new(169, 254, 169, 254) {
                Some("cloud metadata")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if v4.is_private() {
                Some("private")
            } else if o[0] == 100 && (64..128).contains(&o[1]) {
                Some("carrier-grade NAT")
            } else if v4.is_unspecified() || o[0] == 0 {
                Some("unspecified")
            } else if v4.is_multicast() {
                Some("multicast")
            } else if v4.is_broadcast() || o[0] >= 240 {
                Some("reserved")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Some("cloud metadata")
            } else if seg[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if seg[0] & 0xfe00 == 0xfc00 {
                Some("private")
            } else if seg[0] & 0xff00 == 0xff00 {
                Some("multicast")
            } else if seg[0] & 0xffc0 == 0xfec0 {
                Some("site-local")
            } else if let Some(v4) = embedded_ipv4(IpAddr::V6(v6)) {
                // Mapped, compatible, NAT64 and 6to4 forms: blocked as what they reach.
                blocked_address_kind(IpAddr::V4(v4))
            } else if seg[0] == 0x0064 && seg[1] == 0xff9b && seg[2] == 0x0001 {
                // Local-use NAT64 with a prefix shorter than /96: where it leads is the
                // operator's choice, so it is blocked unless a rule names it.
                Some("local-use NAT64")
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
    }

    #[test]
    fn every_ip_literal_form_is_recognised() {
        for form in [
            "127.0.0.1",
            "2130706433",
            "0x7f000001",
            "0x7f.0.0.1",
            "0177.0.0.1",
            "0177.0.0.01",
            "127.1",
            "127.0.1",
            "::ffff:127.0.0.1",
            "[::ffff:127.0.0.1]",
            "::FFFF:7f00:1",
        ] {
            assert_eq!(parse_ip_literal(form), v4(127, 0, 0, 1), "{form}");
        }
        assert_eq!(parse_ip_literal("0"), v4(0, 0, 0, 0));
        assert_eq!(
            parse_ip_literal("::1"),
            Some(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
    }

    #[test]
    fn names_and_bad_numbers_are_not_ip_literals() {
        for text in [
            "example.com",
            "1.2.3.4.5",
            "256.0.0.1",
            "1.2.3.256",
            "08.0.0.1",
            "0x",
            "1..2",
            "1.2.3..",
            "4294967296",
        ] {
            assert_eq!(parse_ip_literal(text), None, "{text}");
        }
    }

    #[test]
    fn hosts_compare_case_insensitively_without_trailing_dot() {
        let exact = HostPattern::parse("API.example.com").unwrap();
        assert!(exact.matches(&normalize_host("api.EXAMPLE.com."), None));
        assert!(!exact.matches(&normalize_host("api.example.com.evil"), None));
        let wild = HostPattern::parse("*.example.org").unwrap();
        assert!(wild.matches("a.example.org", None));
        assert!(wild.matches("a.b.example.org", None));
        assert!(!wild.matches("example.org", None));
        assert!(!wild.matches("badexample.org", None));
    }

    #[test]
    fn ip_host_patterns_match_the_normalised_address() {
        let p = HostPattern::parse("127.0.0.1").unwrap();
        assert!(p.matches("2130706433", parse_ip_literal("2130706433")));
        assert!(!p.matches("localhost", None));
    }

    #[test]
    fn bad_host_patterns_are_refused() {
        for bad in ["api.*.com", "exa mple.com", "", "-x.com", "*.", "a..b"] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cidrs_and_ports() {
        let c = Cidr::parse("127.0.0.0/8").unwrap();
        assert!(c.contains("127.9.9.9".parse().unwrap()));
        assert!(c.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!c.contains("128.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.1/8").is_err());
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nonsense").is_err());
        assert_eq!(Cidr::parse("10.0.0.1").unwrap().prefix, 32);
        let r = PortRange::parse("8000-8100").unwrap();
        assert!(r.contains(8000) && r.contains(8100) && !r.contains(8101));
        for bad in ["0", "65536", "9-1", "x", "1-"] {
            assert!(PortRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn blocked_addresses() {
        for (ip, kind) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("192.168.0.1", "private"),
            ("172.16.0.1", "private"),
            ("169.254.169.254", "cloud metadata"),
            ("169.254.1.1", "link-local"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("0.0.0.0", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00:ec2::254", "cloud metadata"),
            ("fe80::1", "link-local"),
            ("fd12::1", "private"),
            ("::ffff:10.0.0.1", "private"),
        ] {
            assert_eq!(
                blocked_address_kind(ip.parse().unwrap()),
                Some(kind),
                "{ip}"
            );
        }
        assert_eq!(blocked_address_kind("93.184.216.34".parse().unwrap()), None);
    }

    #[test]
    fn ipv6_forms_that_embed_ipv4_are_decided_as_the_address_they_reach() {
        for (ip, kind) in [
            ("64:ff9b::127.0.0.1", Some("loopback")),
            ("64:ff9b::a9fe:a9fe", Some("cloud metadata")),
            ("64:ff9b:1::10.0.0.1", Some("private")),
            ("64:ff9b:1:abcd::1", Some("local-use NAT64")),
            ("2002:7f00:1::1", Some("loopback")),
            ("2002:c0a8:101::", Some("private")),
            ("::10.1.2.3", Some("private")),
            ("::ffff:169.254.169.254", Some("cloud metadata")),
            ("fec0::1", Some("site-local")),
            ("feff::1", Some("site-local")),
            ("64:ff9b::93.184.216.34", None),
            ("2002:5db8:d822::1", None),
            ("2001:db8::1", None),
        ] {
            assert_eq!(blocked_address_kind(ip.parse().unwrap()), kind, "{ip}");
        }
        assert_eq!(
            embedded_ipv4("2002:5db8:d822::1".parse().unwrap()),
            Some(Ipv4Addr::new(93, 184, 216, 34))
        );
        assert_eq!(embedded_ipv4("::1".parse().unwrap()), None);
        assert_eq!(embedded_ipv4("2001:db8::1".parse().unwrap()), None);
        // A CIDR or literal rule on the IPv4 address holds its IPv6 spellings too.
        let lan = Cidr::parse("10.0.0.0/8").unwrap();
        for form in [
            "64:ff9b::10.0.0.1",
            "2002:a00:1::",
            "::10.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(lan.contains(form.parse().unwrap()), "{form}");
        }
        assert!(!lan.contains("64:ff9b::b00:1".parse().unwrap()));
        let v6 = Cidr::parse("2002::/16").unwrap();
        assert!(v6.contains("2002:a00:1::".parse().unwrap()));
        let literal = HostPattern::parse("169.254.169.254").unwrap();
        assert!(literal.matches("x", parse_ip_literal("64:ff9b::a9fe:a9fe")));
    }
}
