//! Lints on grants too wide to be meant (issue 13, classes 7 and 11): address blocks wider
//! than a /8, several blocks that together cover most of an address family, blocks that take
//! in link-local or cloud-metadata addresses, and mounts whose host folders overlap.

use std::net::IpAddr;
use std::path::{Component, PathBuf};

use super::{warn, Finding, Severity};
use crate::model::{Effect, Policy};
use crate::net::Cidr;

/// Prefixes shorter than these are `broad-net-grant` on their own.
const NARROWEST_BROAD_V4: u8 = 8;
const NARROWEST_BROAD_V6: u8 = 16;

/// The span of a block as a range of addresses, in a family of `bits` bits.
fn block_range(cidr: &Cidr) -> (u128, u128) {
    let (start, bits) = match cidr.network {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32u32),
        IpAddr::V6(v6) => (u128::from(v6), 128u32),
    };
    let host_bits = bits - u32::from(cidr.prefix);
    let size_minus_one = if host_bits == 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    (start, start.saturating_add(size_minus_one))
}

/// True when two blocks share any address.
fn overlaps(a: &Cidr, b: &Cidr) -> bool {
    a.network.is_ipv4() == b.network.is_ipv4() && (a.contains(b.network) || b.contains(a.network))
}

/// Addresses covered by the union of `blocks` (all of one family), minus one, so that the
/// whole IPv6 space still fits in a `u128`. `None` when there are no blocks.
fn union_size_minus_one(mut ranges: Vec<(u128, u128)>) -> Option<u128> {
    ranges.sort_unstable();
    let mut total: Option<u128> = None;
    let mut current: Option<(u128, u128)> = None;
    let add = |(s, e): (u128, u128), total: &mut Option<u128>| {
        let n = e - s;
        *total = Some(match *total {
            None => n,
            Some(t) => t.saturating_add(n).saturating_add(1),
        });
    };
    for (s, e) in ranges {
        current = match current {
            Some((cs, ce)) if s <= ce.saturating_add(1) => Some((cs, ce.max(e))),
            Some(done) => {
                add(done, &mut total);
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    if let Some(done) = current {
        add(done, &mut total);
    }
    total
}

/// `broad-net-grant` for allow rules whose address blocks are wider than a /8 (a /16 for
/// IPv6), take in link-local or cloud-metadata addresses, or together cover more than half
/// of an address family. Blocks of prefix 0 are reported by the rule-by-rule lint already.
pub(super) fn wide_address_blocks(policy: &Policy, out: &mut Vec<Finding>) {
    let allows = || {
        policy
            .network
            .rules
            .iter()
            .filter(|r| r.effect == Effect::Allow)
    };
    let block = |network: IpAddr, prefix: u8| Cidr { network, prefix };
    // Most specific first, so a metadata address is named as such.
    let special = [
        (
            "cloud metadata",
            block(IpAddr::from([169, 254, 169, 254]), 32),
        ),
        (
            "cloud metadata",
            block(IpAddr::from([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254]), 128),
        ),
        ("link-local", block(IpAddr::from([169, 254, 0, 0]), 16)),
        (
            "link-local",
            block(IpAddr::from([0xfe80, 0, 0, 0, 0, 0, 0, 0]), 10),
        ),
    ];
    for rule in allows() {
        for cidr in rule.cidrs.iter().filter(|c| c.prefix > 0) {
            let narrowest = if cidr.network.is_ipv4() {
                NARROWEST_BROAD_V4
            } else {
                NARROWEST_BROAD_V6
            };
            if cidr.prefix < narrowest {
                warn(
                    out,
                    "broad-net-grant",
                    rule.span,
                    format!(
                        "network rule `{}` allows `{cidr}`, a block wider than a /{narrowest}",
                        rule.id
                    ),
                    "name the address block the plugin needs, e.g. `cidrs: [\"203.0.113.0/24\"]`"
                        .into(),
                );
            }
            if let Some((kind, _)) = special.iter().find(|(_, s)| overlaps(cidr, s)) {
                warn(
                    out,
                    "broad-net-grant",
                    rule.span,
                    format!(
                        "network rule `{}` allows `{cidr}`, which takes in {kind} addresses",
                        rule.id
                    ),
                    format!("leave {kind} addresses out of the block, unless the plugin really must reach them"),
                );
            }
        }
    }
    if allows().any(|r| r.cidrs.iter().any(|c| c.prefix == 0)) {
        return;
    }
    for (v4, family, half) in [(true, "IPv4", 1u128 << 31), (false, "IPv6", 1u128 << 127)] {
        let blocks: Vec<(u128, u128)> = allows()
            .flat_map(|r| r.cidrs.iter())
            .filter(|c| c.network.is_ipv4() == v4)
            .map(block_range)
            .collect();
        let Some(first) = allows().find(|r| r.cidrs.iter().any(|c| c.network.is_ipv4() == v4))
        else {
            continue;
        };
        if union_size_minus_one(blocks).is_some_and(|n| n >= half) {
            warn(
                out,
                "broad-net-grant",
                first.span,
                format!("the allow rules' address blocks together cover more than half of the {family} address space"),
                "name the address blocks the plugin needs, not most of the internet".into(),
            );
        }
    }
}

/// A path with `.` and `..` taken out lexically.
fn lexical(path: PathBuf) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

impl Policy {
    /// Pairs of mounts (by index, the earlier first) whose host folders overlap: the same
    /// folder, or one inside the other, compared lexically as written relative to the policy
    /// file's folder. Host symlinks are not followed.
    pub fn overlapping_mounts(&self) -> Vec<(usize, usize)> {
        let hosts: Vec<PathBuf> = self
            .filesystem
            .mounts
            .iter()
            .map(|m| lexical(self.mount_host_path(m)))
            .collect();
        let mut pairs = Vec::new();
        for (j, b) in hosts.iter().enumerate() {
            for (i, a) in hosts.iter().enumerate().take(j) {
                if a.starts_with(b) || b.starts_with(a) {
                    pairs.push((i, j));
                }
            }
        }
        pairs
    }
}

/// `overlapping-mounts` (an error): two mounts share host folders, so a guest could change
/// through one what the other promises, unless either says `overlap: intended`. One finding
/// per later mount, naming the first earlier mount it overlaps.
pub(super) fn overlapping_mounts(policy: &Policy, out: &mut Vec<Finding>) {
    let mounts = &policy.filesystem.mounts;
    let mut reported = vec![false; mounts.len()];
    for (i, j) in policy.overlapping_mounts() {
        let (a, b) = (&mounts[i], &mounts[j]);
        if a.overlap_intended || b.overlap_intended || reported[j] {
            continue;
        }
        reported[j] = true;
        out.push(Finding {
            lint_id: "overlapping-mounts",
            severity: Severity::Error,
            span: b.span,
            message: format!(
                "mounts `{}` and `{}` overlap on the host (`{}` and `{}`): one can change what the other exposes",
                a.guest, b.guest, a.host, b.host
            ),
            hint: "mount folders that do not overlap, or add `overlap: intended` to one of the two mounts if sharing is meant".into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::{lint_policy_text, LintReport, Severity};
    use std::path::Path;

    fn lint(text: &str) -> LintReport {
        lint_policy_text(
            &format!("version: 1\nbudgets: {{ fuel: 1000, timeout_ms: 1000, memory_bytes: 16MiB }}\n{text}"),
            Path::new("/nonexistent-sandbox-lint-test/policy.yaml"),
        )
    }

    fn messages(report: &LintReport, id: &str) -> Vec<String> {
        report
            .findings
            .iter()
            .filter(|f| f.lint_id == id)
            .map(|f| f.message.clone())
            .collect()
    }

    fn net(cidrs: &str) -> LintReport {
        lint(&format!(
            "network:\n  rules: [{{ id: r, effect: allow, cidrs: [{cidrs}], ports: [443] }}]\n  quotas: {{ connections: 1, egress_bytes: 1 }}\n"
        ))
    }

    #[test]
    fn blocks_wider_than_a_slash_8_or_taking_in_link_local_are_broad() {
        for (cidrs, count, part) in [
            (
                r#""10.0.0.0/7""#,
                1,
                "`10.0.0.0/7`, a block wider than a /8",
            ),
            (r#""169.254.1.0/24""#, 1, "takes in link-local addresses"),
            (
                r#""169.254.0.0/16""#,
                1,
                "takes in cloud metadata addresses",
            ),
            (
                r#""169.254.169.254/32""#,
                1,
                "takes in cloud metadata addresses",
            ),
            (r#""fe80::/16""#, 1, "takes in link-local addresses"),
            (r#""2000::/3""#, 1, "a block wider than a /16"),
            // Each too wide, one takes in 169.254/16, and together three quarters of IPv4.
            (
                r#""0.0.0.0/1", "128.0.0.0/2""#,
                4,
                "cover more than half of the IPv4",
            ),
            (r#""10.0.0.0/8""#, 0, ""),
            (r#""203.0.113.0/24", "198.51.100.0/24""#, 0, ""),
        ] {
            let report = net(cidrs);
            let got = messages(&report, "broad-net-grant");
            assert_eq!(got.len(), count, "{cidrs}: {got:?}");
            assert!(
                count == 0 || got.iter().any(|m| m.contains(part)),
                "{cidrs}: {part} not in {got:?}"
            );
            assert!(!report.has_errors());
        }
        // Two halves cover everything.
        let halves = messages(&net(r#""0.0.0.0/1", "128.0.0.0/1""#), "broad-net-grant");
        assert!(
            halves.iter().any(|m| m.contains("more than half")),
            "{halves:?}"
        );
        // Many /9s together: no one is wider than a /8, the union is most of the space.
        let many: Vec<String> = (1..=140u32)
            .flat_map(|a| [format!("\"{a}.0.0.0/9\""), format!("\"{a}.128.0.0/9\"")])
            .collect();
        let report = net(&many.join(", "));
        assert!(!report.has_errors(), "{report:#?}");
        let got = messages(&report, "broad-net-grant");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got.iter().any(|m| m.contains("more than half of the IPv4")),
            "{got:?}"
        );
    }

    fn mounts(a: &str, b: &str) -> LintReport {
        lint(&format!(
            "filesystem:\n  mounts:\n    - {{ guest: /a, {a} }}\n    - {{ guest: /b, {b} }}\n  rules: [{{ id: r, effect: allow, ops: [read], paths: [\"/a/**\", \"/b/**\"] }}]\n  quotas: {{ write_bytes: 1 }}\n"
        ))
    }

    #[test]
    fn overlapping_mounts_are_an_error_unless_intended() {
        for (a, b) in [
            ("host: ./site, mode: rw", "host: ./site/cache, mode: ro"),
            ("host: ./x, mode: ro", "host: ./x/, mode: rw"),
            ("host: ./x/../y, mode: ro", "host: ./y/z, mode: rw"),
            ("host: ./a/b, mode: ro", "host: ./a, mode: rw"),
        ] {
            let report = mounts(a, b);
            let found: Vec<_> = report
                .findings
                .iter()
                .filter(|f| f.lint_id == "overlapping-mounts")
                .collect();
            assert_eq!(found.len(), 1, "{a} / {b}: {report:#?}");
            assert_eq!(found[0].severity, Severity::Error);
            assert!(report.has_errors());
            let intended = mounts(a, &format!("{b}, overlap: intended"));
            assert!(!intended.has_errors(), "{intended:#?}");
        }
        for (a, b) in [
            ("host: ./site, mode: rw", "host: ./site2, mode: ro"),
            ("host: ./a/b, mode: ro", "host: ./a/c, mode: ro"),
        ] {
            assert!(!mounts(a, b).has_errors(), "{a} / {b}");
        }
    }
}
