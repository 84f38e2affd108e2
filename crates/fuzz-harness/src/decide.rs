//! `decide`: a policy generated from the fuzz input (written as YAML and parsed, so the parser
//! is in the loop) and arbitrary requests against it. The answers are checked against the
//! reference rules in `oracle.rs`: nothing outside every mount is allowed, a symlink never
//! carries a request into another mount, read-only mounts refuse changes in every mode, deny
//! rules win, quotas hold, blocked addresses need a rule that names them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use arbitrary::{Arbitrary, Unstructured};
use sandbox_policy::{
    parse_ip_literal, parse_policy, Decision, Effect, FsAccess, FsRequest, HostPattern, Mode,
    MountMode, NetAccess, NetRequest, Policy, ReasonCode, Request, Usage, Verdict,
};

use crate::oracle;

const MOUNTS: &[&str] = &["/", "/data", "/data-secret", "/out", "/data/sub", "/a/b"];
const GLOB_SEGMENTS: &[&str] = &[
    "data",
    "data-secret",
    "out",
    "sub",
    "secret",
    "x.log",
    "*",
    "**",
    "*.log",
    "d*",
    "b",
];
const PATH_SEGMENTS: &[&str] = &[
    "data",
    "data-secret",
    "out",
    "sub",
    "secret",
    "x.log",
    "..",
    ".",
    "",
    "*",
    "a",
    "b",
    "\0",
    "é",
    "data\0",
    "..\u{0}",
];
const OPS: &[&str] = &[
    "read", "write", "create", "delete", "list", "rename", "symlink",
];
const HOST_PATTERNS: &[&str] = &[
    "echo.test",
    "*.test",
    "*",
    "127.0.0.1",
    "::1",
    "example.com",
];
const CIDRS: &[&str] = &[
    "127.0.0.0/8",
    "10.0.0.0/8",
    "0.0.0.0/0",
    "::/0",
    "169.254.169.254/32",
    "203.0.113.0/24",
];
const PORTS: &[&str] = &["80", "443", "\"8000-8100\"", "7000"];
/// Request hosts, with the address each must parse to when it is an IP literal.
const HOSTS: &[(&str, Option<&str>)] = &[
    ("echo.test", None),
    ("ECHO.TEST.", None),
    ("a.b.test", None),
    ("example.com", None),
    ("localhost", None),
    ("*", None),
    ("", None),
    ("127.0.0.1", Some("127.0.0.1")),
    ("127.1", Some("127.0.0.1")),
    ("2130706433", Some("127.0.0.1")),
    ("0x7f.0.0.1", Some("127.0.0.1")),
    ("0177.0.0.1", Some("127.0.0.1")),
    ("[::1]", Some("::1")),
    ("::ffff:127.0.0.1", Some("127.0.0.1")),
    ("::ffff:7f00:1", Some("127.0.0.1")),
    ("0.0.0.0", Some("0.0.0.0")),
    ("0", Some("0.0.0.0")),
    ("169.254.169.254", Some("169.254.169.254")),
    ("0xa9fea9fe", Some("169.254.169.254")),
    ("100.64.0.1", Some("100.64.0.1")),
    ("224.0.0.1", Some("224.0.0.1")),
    ("10.1.2.3", Some("10.1.2.3")),
    ("203.0.113.7", Some("203.0.113.7")),
];
const ADDRESSES: &[&str] = &[
    "127.0.0.1",
    "10.0.0.1",
    "192.168.1.1",
    "172.16.0.1",
    "169.254.169.254",
    "169.254.1.1",
    "100.64.0.1",
    "224.0.0.1",
    "0.0.0.0",
    "255.255.255.255",
    "203.0.113.7",
    "93.184.216.34",
    "::1",
    "::",
    "fe80::1",
    "fd00::1",
    "ff02::1",
    "2001:db8::1",
];

#[derive(Debug, Arbitrary)]
struct MountIn {
    guest: u8,
    rw: bool,
}

#[derive(Debug, Arbitrary)]
struct FsRuleIn {
    deny: bool,
    ops: u8,
    paths: Vec<Vec<u8>>,
}

#[derive(Debug, Arbitrary)]
struct NetRuleIn {
    deny: bool,
    hosts: Vec<u8>,
    cidrs: Vec<u8>,
    ports: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
enum PathIn {
    Pieces {
        absolute: bool,
        segments: Vec<u8>,
        trailing_slash: bool,
    },
    Raw(String),
}

#[derive(Debug, Arbitrary)]
struct FsIn {
    op: u8,
    path: PathIn,
    resolved: Option<PathIn>,
    not_utf8: bool,
    bytes: u16,
}

#[derive(Debug, Arbitrary)]
struct NetIn {
    op: u8,
    host: u8,
    port: u16,
    address: Option<u8>,
    bytes: u16,
}

#[derive(Debug, Arbitrary)]
enum RequestIn {
    Fs(FsIn),
    Net(NetIn),
}

#[derive(Debug, Arbitrary)]
struct Input {
    audit: bool,
    mounts: Vec<MountIn>,
    fs_rules: Vec<FsRuleIn>,
    read_quota: Option<u16>,
    write_quota: Option<u16>,
    net_rules: Vec<NetRuleIn>,
    connections: Option<u8>,
    egress: Option<u16>,
    ingress: Option<u16>,
    usage: [u16; 5],
    requests: Vec<RequestIn>,
}

fn pick<'a>(table: &[&'a str], index: u8) -> &'a str {
    table[usize::from(index) % table.len()]
}

fn quoted(text: &str) -> String {
    // A JSON string is a valid YAML double-quoted scalar.
    serde_json::to_string(text).unwrap_or_default()
}

fn policy_yaml(input: &Input) -> String {
    let mut y = format!(
        "version: 1\nmode: {}\n",
        if input.audit { "audit" } else { "enforce" }
    );
    let mounts: Vec<&MountIn> = input.mounts.iter().take(4).collect();
    if !mounts.is_empty() {
        y.push_str("filesystem:\n  mounts:\n");
        for (i, m) in mounts.iter().enumerate() {
            y.push_str(&format!(
                "    - {{ guest: {}, host: ./m{i}, mode: {} }}\n",
                quoted(pick(MOUNTS, m.guest)),
                if m.rw { "rw" } else { "ro" }
            ));
        }
        let rules: Vec<&FsRuleIn> = input
            .fs_rules
            .iter()
            .take(6)
            .filter(|r| !r.paths.is_empty())
            .collect();
        if !rules.is_empty() {
            y.push_str("  rules:\n");
        }
        for (i, r) in rules.iter().enumerate() {
            let ops: Vec<&str> = (0..OPS.len())
                .filter(|b| r.ops & (1 << b) != 0)
                .map(|b| OPS[b])
                .collect();
            let ops = if ops.is_empty() { vec!["read"] } else { ops };
            let paths: Vec<String> = r
                .paths
                .iter()
                .take(3)
                .map(|segments| {
                    let joined: Vec<&str> = segments
                        .iter()
                        .take(5)
                        .map(|s| pick(GLOB_SEGMENTS, *s))
                        .collect();
                    quoted(&format!("/{}", joined.join("/")))
                })
                .collect();
            y.push_str(&format!(
                "    - {{ id: fs{i}, effect: {}, ops: [{}], paths: [{}] }}\n",
                if r.deny { "deny" } else { "allow" },
                ops.join(", "),
                paths.join(", ")
            ));
        }
        let mut quotas = Vec::new();
        if let Some(q) = input.read_quota {
            quotas.push(format!("read_bytes: {q}"));
        }
        if let Some(q) = input.write_quota {
            quotas.push(format!("write_bytes: {q}"));
        }
        if !quotas.is_empty() {
            y.push_str(&format!("  quotas: {{ {} }}\n", quotas.join(", ")));
        }
    }
    let rules: Vec<&NetRuleIn> = input.net_rules.iter().take(4).collect();
    if !rules.is_empty() {
        y.push_str("network:\n  rules:\n");
        for (i, r) in rules.iter().enumerate() {
            let hosts: Vec<String> = r
                .hosts
                .iter()
                .take(2)
                .map(|h| quoted(pick(HOST_PATTERNS, *h)))
                .collect();
            let cidrs: Vec<String> = r
                .cidrs
                .iter()
                .take(2)
                .map(|c| quoted(pick(CIDRS, *c)))
                .collect();
            let ports: Vec<&str> = r.ports.iter().take(2).map(|p| pick(PORTS, *p)).collect();
            let mut fields = vec![
                format!("id: net{i}"),
                format!("effect: {}", if r.deny { "deny" } else { "allow" }),
            ];
            if !hosts.is_empty() {
                fields.push(format!("hosts: [{}]", hosts.join(", ")));
            }
            if !cidrs.is_empty() {
                fields.push(format!("cidrs: [{}]", cidrs.join(", ")));
            }
            if !ports.is_empty() {
                fields.push(format!("ports: [{}]", ports.join(", ")));
            }
            y.push_str(&format!("    - {{ {} }}\n", fields.join(", ")));
        }
        let mut quotas = Vec::new();
        if let Some(q) = input.connections {
            quotas.push(format!("connections: {q}"));
        }
        if let Some(q) = input.egress {
            quotas.push(format!("egress_bytes: {q}"));
        }
        if let Some(q) = input.ingress {
            quotas.push(format!("ingress_bytes: {q}"));
        }
        if !quotas.is_empty() {
            y.push_str(&format!("  quotas: {{ {} }}\n", quotas.join(", ")));
        }
    }
    y
}

fn path_text(path: &PathIn) -> String {
    match path {
        PathIn::Raw(text) => text.clone(),
        PathIn::Pieces {
            absolute,
            segments,
            trailing_slash,
        } => {
            let joined: Vec<&str> = segments
                .iter()
                .take(10)
                .map(|s| pick(PATH_SEGMENTS, *s))
                .collect();
            let mut text = joined.join("/");
            if *absolute {
                text.insert(0, '/');
            }
            if *trailing_slash {
                text.push('/');
            }
            text
        }
    }
}

fn fs_op(index: u8) -> FsAccess {
    const ALL: [FsAccess; 8] = [
        FsAccess::Read,
        FsAccess::Write,
        FsAccess::Create,
        FsAccess::Delete,
        FsAccess::List,
        FsAccess::Rename,
        FsAccess::Symlink,
        FsAccess::Stat,
    ];
    ALL[usize::from(index) % ALL.len()]
}

/// (mounts, rules, requests) of the policy and requests an input decodes to, if it parses.
pub fn shape(data: &[u8]) -> Option<(usize, usize, usize)> {
    let input = Input::arbitrary_take_rest(Unstructured::new(data)).ok()?;
    let policy = parse_policy(&policy_yaml(&input), Path::new("/nonexistent-fuzz-base")).ok()?;
    Some((
        policy.filesystem.mounts.len(),
        policy.filesystem.rules.len() + policy.network.rules.len(),
        input.requests.len().min(16),
    ))
}

pub fn decide(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let yaml = policy_yaml(&input);
    // Generated policies can still be refused (two mounts at one guest path, a deny rule
    // with no ports on the wrong side of a rule): those are the parser's business.
    let Ok(policy) = parse_policy(&yaml, Path::new("/nonexistent-fuzz-base")) else {
        return;
    };
    let [r, w, c, e, i] = input.usage;
    let usage = Usage {
        fs_read_bytes: u64::from(r),
        fs_write_bytes: u64::from(w),
        net_connections: u64::from(c % 8),
        net_egress_bytes: u64::from(e),
        net_ingress_bytes: u64::from(i),
        ..Usage::default()
    };
    for request in input.requests.iter().take(16) {
        let request = match request {
            RequestIn::Fs(f) => Request::Fs(FsRequest {
                op: fs_op(f.op),
                path: path_text(&f.path),
                not_utf8: f.not_utf8,
                resolved: f.resolved.as_ref().map(path_text),
                bytes: u64::from(f.bytes),
            }),
            RequestIn::Net(n) => Request::Net(NetRequest {
                op: [NetAccess::Connect, NetAccess::Send, NetAccess::Receive]
                    [usize::from(n.op % 3)],
                host: HOSTS[usize::from(n.host) % HOSTS.len()].0.to_owned(),
                port: n.port,
                address: n
                    .address
                    .map(|a| pick(ADDRESSES, a).parse().expect("table address")),
                bytes: u64::from(n.bytes),
            }),
        };
        let decision = policy.decide(&usage, &request);
        assert_eq!(
            decision,
            policy.decide(&usage, &request),
            "decide is not a pure function"
        );
        assert!(!policy.rule_id(decision.rule).is_empty());
        assert!(
            decision.enforced || policy.mode.value == Mode::Audit,
            "a relaxed deny in enforce mode"
        );
        assert_eq!(
            decision.verdict == Verdict::Allow,
            decision.reason == ReasonCode::Allowed
        );
        match &request {
            Request::Fs(f) => check_fs(&policy, &usage, f, &decision, &yaml),
            Request::Net(n) => check_net(&policy, &usage, n, &decision, &yaml),
            // This target generates only file and network requests.
            _ => {}
        }
    }
}

fn check_fs(policy: &Policy, usage: &Usage, r: &FsRequest, d: &Decision, yaml: &str) {
    let ctx = || format!("{r:?} -> {d:?}\n{yaml}");
    let mounts: Vec<String> = policy
        .filesystem
        .mounts
        .iter()
        .map(|m| m.guest.clone())
        .collect();
    let asked = if r.not_utf8 {
        None
    } else {
        oracle::normalize(&r.path)
    };
    let Some(asked) = asked else {
        assert_eq!(d.reason, ReasonCode::FsPathInvalid, "{}", ctx());
        assert!(!d.permits(), "{}", ctx());
        return;
    };
    let mount = oracle::mount_of(&asked, &mounts);
    let resolved = r.resolved.as_deref().map(oracle::normalize);
    if !d.permits() {
        if mount.is_none() {
            assert_eq!(d.reason, ReasonCode::FsPathOutsideMounts, "{}", ctx());
        }
        return;
    }
    // Allowed (or relaxed by audit): the path lies in a mount, and so does what it resolved to.
    let Some(mount) = mount else {
        panic!("allowed a path outside every mount: {}", ctx());
    };
    match &resolved {
        None => {}
        Some(None) => panic!(
            "allowed a request whose resolved path is invalid: {}",
            ctx()
        ),
        Some(Some(res)) => assert_eq!(
            oracle::mount_of(res, &mounts),
            Some(mount),
            "a symlink carried an allowed request out of its mount: {}",
            ctx()
        ),
    }
    let m = &policy.filesystem.mounts[mount];
    assert!(
        !(r.op.mutates() && m.mode == MountMode::ReadOnly),
        "a change allowed on a read-only mount: {}",
        ctx()
    );
    let paths: Vec<&str> = std::iter::once(asked.as_str())
        .chain(resolved.iter().flatten().map(String::as_str))
        .collect();
    let covers = |effect: Effect, path: &str| {
        policy.filesystem.rules.iter().any(|rule| {
            rule.effect == effect
                && r.op.granted_by().iter().any(|op| rule.ops.contains(*op))
                && rule
                    .paths
                    .iter()
                    .any(|g| oracle::glob_matches(g.as_str(), path))
        })
    };
    if d.verdict == Verdict::Allow {
        for path in &paths {
            assert!(!covers(Effect::Deny, path), "a deny rule lost: {}", ctx());
            assert!(
                covers(Effect::Allow, path),
                "allowed with no rule: {}",
                ctx()
            );
        }
        let quota = match r.op {
            FsAccess::Read => policy
                .filesystem
                .quotas
                .read_bytes
                .map(|q| (q.value, usage.fs_read_bytes)),
            FsAccess::Write => policy
                .filesystem
                .quotas
                .write_bytes
                .map(|q| (q.value, usage.fs_write_bytes)),
            _ => None,
        };
        if let Some((limit, used)) = quota {
            assert!(used + r.bytes <= limit, "allowed past the quota: {}", ctx());
        }
    }
}

/// Loopback, private, link-local (with metadata), CGNAT, unspecified, multicast, reserved.
fn blocked(ip: IpAddr) -> bool {
    let v4 = |a: Ipv4Addr| {
        let o = a.octets();
        o[0] == 127
            || o[0] == 10
            || (o[0] == 172 && (16..32).contains(&o[1]))
            || (o[0] == 192 && o[1] == 168)
            || (o[0] == 169 && o[1] == 254)
            || (o[0] == 100 && (64..128).contains(&o[1]))
            || o[0] == 0
            || o[0] >= 224
    };
    match ip {
        IpAddr::V4(a) => v4(a),
        IpAddr::V6(a) => {
            let s = a.segments();
            if let Some(mapped) = a.to_ipv4_mapped() {
                return v4(mapped);
            }
            a == Ipv6Addr::LOCALHOST
                || a == Ipv6Addr::UNSPECIFIED
                || s[0] & 0xffc0 == 0xfe80
                || s[0] & 0xfe00 == 0xfc00
                || s[0] & 0xff00 == 0xff00
        }
    }
}

fn check_net(policy: &Policy, usage: &Usage, r: &NetRequest, d: &Decision, yaml: &str) {
    let ctx = || format!("{r:?} -> {d:?}\n{yaml}");
    let expected_literal = HOSTS
        .iter()
        .find(|(h, _)| *h == r.host)
        .and_then(|(_, ip)| ip.map(|ip| ip.parse::<IpAddr>().expect("table literal")));
    assert_eq!(
        parse_ip_literal(&r.host),
        expected_literal,
        "IP literal `{}` parsed wrong",
        r.host
    );
    if !d.permits() {
        return;
    }
    let address = r.address.or(expected_literal);
    let host = r.host.trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let names = |rule: &sandbox_policy::NetRule, ip: IpAddr| {
        rule.cidrs.iter().any(|c| c.contains(ip))
            || rule
                .hosts
                .iter()
                .any(|h| matches!(h, HostPattern::Address(a) if *a == ip))
    };
    let host_matches = |rule: &sandbox_policy::NetRule| {
        rule.hosts.iter().any(|h| match h {
            HostPattern::Any => true,
            HostPattern::Exact(name) => name == host,
            HostPattern::Suffix(suffix) => {
                host.len() > suffix.len() && host.ends_with(suffix.as_str())
            }
            HostPattern::Address(ip) => expected_literal == Some(*ip),
        }) || address.is_some_and(|a| names(rule, a))
    };
    if let Some(ip) = address {
        if blocked(ip) {
            assert!(
                policy
                    .network
                    .rules
                    .iter()
                    .any(|rule| rule.effect == Effect::Allow
                        && rule.port_matches(r.port)
                        && names(rule, ip)),
                "a blocked address went through with no rule naming it: {}",
                ctx()
            );
        }
    }
    if d.verdict == Verdict::Allow {
        assert!(
            !policy
                .network
                .rules
                .iter()
                .any(|rule| rule.effect == Effect::Deny
                    && rule.port_matches(r.port)
                    && host_matches(rule)),
            "a network deny rule lost: {}",
            ctx()
        );
        assert!(
            policy
                .network
                .rules
                .iter()
                .any(|rule| rule.effect == Effect::Allow
                    && rule.port_matches(r.port)
                    && host_matches(rule)),
            "a connection allowed with no rule: {}",
            ctx()
        );
        let q = &policy.network.quotas;
        let within = match r.op {
            NetAccess::Connect => q
                .connections
                .is_none_or(|l| usage.net_connections < l.value),
            NetAccess::Send => q
                .egress_bytes
                .is_none_or(|l| usage.net_egress_bytes + r.bytes <= l.value),
            NetAccess::Receive => q
                .ingress_bytes
                .is_none_or(|l| usage.net_ingress_bytes < l.value),
            // A lookup moves nothing and has no quota.
            NetAccess::Resolve => true,
        };
        assert!(within, "allowed past a network quota: {}", ctx());
    }
}
