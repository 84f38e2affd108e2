//! `policy diff`: what a new policy allows that the old one did not, and what it now denies,
//! for the reviewer of a policy change. Rules are compared by what they grant, not by id: a
//! renamed rule is no change, a widened glob is. Coverage uses the same sound check as lint
//! (a grant is "already allowed" only when one old grant provably covers it), so a change
//! that cannot be proven harmless is listed rather than hidden.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::glob::GlobPattern;
use crate::model::{Effect, FsOperation, FsRule, Mode, MountMode, NetRule, OnDeny, Policy};
use crate::net::{blocked_address_kind, Cidr, HostPattern, PortRange};
use crate::yaml_text::{group_digits, size_words};

/// One change, in words, with the part of the policy it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The policy key, e.g. `filesystem.rules` or `budgets.fuel`.
    pub section: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    pub message: String,
}

/// The difference between two policies, from the old one's point of view.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PolicyDiff {
    /// What the new policy allows that the old one did not.
    pub allows: Vec<Change>,
    /// What the new policy denies that the old one allowed.
    pub denies: Vec<Change>,
    /// Changes that are neither, such as a new `resolve` pin.
    pub other: Vec<Change>,
}

impl PolicyDiff {
    pub fn is_empty(&self) -> bool {
        self.allows.is_empty() && self.denies.is_empty() && self.other.is_empty()
    }
}

fn change(section: &str, rule_id: Option<&str>, message: String) -> Change {
    Change {
        section: section.to_owned(),
        rule_id: rule_id.map(str::to_owned),
        message,
    }
}

/// Compares two policies. Mount folders are compared as written, joined to each policy's
/// folder; [`diff_with`] lets the caller resolve them first (e.g. to canonical paths).
pub fn diff(old: &Policy, new: &Policy) -> PolicyDiff {
    diff_with(old, new, &|path| path)
}

/// Whether a policy has an allow rule in a section: without one its quotas limit nothing.
fn allows_fs(p: &Policy) -> bool {
    p.filesystem.rules.iter().any(|r| r.effect == Effect::Allow)
}

fn allows_net(p: &Policy) -> bool {
    p.network.rules.iter().any(|r| r.effect == Effect::Allow)
}

/// [`diff`], with `resolve` applied to every mount's host folder before comparing.
pub fn diff_with(old: &Policy, new: &Policy, resolve: &dyn Fn(PathBuf) -> PathBuf) -> PolicyDiff {
    let mut d = PolicyDiff::default();
    modes(old, new, &mut d);
    budgets(old, new, &mut d);
    mounts(old, new, resolve, &mut d);
    fs_rules(old, new, &mut d);
    // A quota matters only where both policies let traffic through; otherwise the rule
    // changes above already say what changed.
    if allows_fs(old) && allows_fs(new) {
        fs_quotas(old, new, &mut d);
    }
    net_rules(old, new, &mut d);
    if allows_net(old) && allows_net(new) {
        net_quotas(old, new, &mut d);
    }
    resolve_pins(old, new, &mut d);
    stdio_env_limits(old, new, &mut d);
    d
}

fn fs_quotas(old: &Policy, new: &Policy, d: &mut PolicyDiff) {
    numbers(
        d,
        "filesystem.quotas.read_bytes",
        old.filesystem.quotas.read_bytes.map(|q| q.value),
        new.filesystem.quotas.read_bytes.map(|q| q.value),
        size_words,
    );
    numbers(
        d,
        "filesystem.quotas.write_bytes",
        old.filesystem.quotas.write_bytes.map(|q| q.value),
        new.filesystem.quotas.write_bytes.map(|q| q.value),
        size_words,
    );
}

fn net_quotas(old: &Policy, new: &Policy, d: &mut PolicyDiff) {
    let (oq, nq) = (&old.network.quotas, &new.network.quotas);
    numbers(
        d,
        "network.quotas.connections",
        oq.connections.map(|q| q.value),
        nq.connections.map(|q| q.value),
        group_digits,
    );
    numbers(
        d,
        "network.quotas.egress_bytes",
        oq.egress_bytes.map(|q| q.value),
        nq.egress_bytes.map(|q| q.value),
        size_words,
    );
    numbers(
        d,
        "network.quotas.ingress_bytes",
        oq.ingress_bytes.map(|q| q.value),
        nq.ingress_bytes.map(|q| q.value),
        size_words,
    );
}

fn modes(old: &Policy, new: &Policy, d: &mut PolicyDiff) {
    match (old.mode.value, new.mode.value) {
        (Mode::Enforce, Mode::Audit) => d.allows.push(change(
            "mode",
            None,
            "`mode` is now `audit`: rule and quota denials are only logged, not enforced".into(),
        )),
        (Mode::Audit, Mode::Enforce) => d.denies.push(change(
            "mode",
            None,
            "`mode` is now `enforce`: rule and quota denials are enforced".into(),
        )),
        _ => {}
    }
    match (old.on_deny, new.on_deny) {
        (OnDeny::Error, OnDeny::Trap) => d.denies.push(change(
            "on_deny",
            None,
            "`on_deny` is now `trap`: the first enforced deny ends the run".into(),
        )),
        (OnDeny::Trap, OnDeny::Error) => d.allows.push(change(
            "on_deny",
            None,
            "`on_deny` is now `error`: a deny returns an error code and the run goes on".into(),
        )),
        _ => {}
    }
    if old.deterministic != new.deterministic {
        d.other.push(change(
            "deterministic",
            None,
            format!(
                "`deterministic` is now `{}`: the guest's clocks and randomness are {}",
                new.deterministic,
                if new.deterministic { "virtual" } else { "real" }
            ),
        ));
    }
}

/// A limit where more is more permissive; `None` means no limit.
fn numbers(
    d: &mut PolicyDiff,
    section: &str,
    old: Option<u64>,
    new: Option<u64>,
    show: fn(u64) -> String,
) {
    match (old, new) {
        (Some(o), Some(n)) if n > o => d.allows.push(change(
            section,
            None,
            format!("raises `{section}` from {} to {}", show(o), show(n)),
        )),
        (Some(o), Some(n)) if n < o => d.denies.push(change(
            section,
            None,
            format!("lowers `{section}` from {} to {}", show(o), show(n)),
        )),
        (Some(o), None) => d.allows.push(change(
            section,
            None,
            format!("removes `{section}` (was {}): no limit", show(o)),
        )),
        (None, Some(n)) => d.denies.push(change(
            section,
            None,
            format!("sets `{section}` to {} (there was no limit)", show(n)),
        )),
        _ => {}
    }
}

fn budgets(old: &Policy, new: &Policy, d: &mut PolicyDiff) {
    let (o, n) = (&old.budgets, &new.budgets);
    numbers(
        d,
        "budgets.fuel",
        Some(o.fuel.value),
        Some(n.fuel.value),
        group_digits,
    );
    numbers(
        d,
        "budgets.timeout_ms",
        Some(o.timeout_ms.value),
        Some(n.timeout_ms.value),
        |v| format!("{} ms", group_digits(v)),
    );
    numbers(
        d,
        "budgets.memory_bytes",
        Some(o.memory_bytes.value),
        Some(n.memory_bytes.value),
        size_words,
    );
}

fn mounts(old: &Policy, new: &Policy, resolve: &dyn Fn(PathBuf) -> PathBuf, d: &mut PolicyDiff) {
    let host =
        |p: &Policy, m: &crate::model::Mount| resolve(p.mount_host_path(m)).display().to_string();
    for m in &new.filesystem.mounts {
        match old.filesystem.mounts.iter().find(|o| o.guest == m.guest) {
            None => d.allows.push(change(
                "filesystem.mounts",
                None,
                format!(
                    "mounts host folder `{}` at `{}` ({})",
                    host(new, m),
                    m.guest,
                    m.mode.as_str()
                ),
            )),
            Some(o) => {
                if host(old, o) != host(new, m) {
                    d.allows.push(change(
                        "filesystem.mounts",
                        None,
                        format!(
                            "mount `{}` now shows host folder `{}` (was `{}`)",
                            m.guest,
                            host(new, m),
                            host(old, o)
                        ),
                    ));
                }
                match (o.mode, m.mode) {
                    (MountMode::ReadOnly, MountMode::ReadWrite) => d.allows.push(change(
                        "filesystem.mounts",
                        None,
                        format!("mount `{}` is now writable (`rw`, was `ro`)", m.guest),
                    )),
                    (MountMode::ReadWrite, MountMode::ReadOnly) => d.denies.push(change(
                        "filesystem.mounts",
                        None,
                        format!("mount `{}` is now read-only (`ro`, was `rw`)", m.guest),
                    )),
                    _ => {}
                }
            }
        }
    }
    for o in &old.filesystem.mounts {
        if !new.filesystem.mounts.iter().any(|m| m.guest == o.guest) {
            d.denies.push(change(
                "filesystem.mounts",
                None,
                format!(
                    "no longer mounts `{}` (host folder `{}`)",
                    o.guest,
                    host(old, o)
                ),
            ));
        }
    }
}

fn op_list(ops: &[FsOperation]) -> String {
    ops.iter()
        .map(|o| o.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether some `effect` rule of `rules` grants `op` on everything `glob` matches.
fn fs_covered(rules: &[FsRule], effect: Effect, op: FsOperation, glob: &GlobPattern) -> bool {
    rules.iter().any(|r| {
        r.effect == effect && r.ops.contains(op) && r.paths.iter().any(|g| glob.is_covered_by(g))
    })
}

/// For each (rule, glob) of `from` with `effect`: the operations no `effect` rule of
/// `against` covers. In rule order.
fn fs_uncovered<'a>(
    from: &'a Policy,
    against: &Policy,
    effect: Effect,
) -> Vec<(&'a FsRule, &'a GlobPattern, Vec<FsOperation>)> {
    let mut out = Vec::new();
    for rule in from.filesystem.rules.iter().filter(|r| r.effect == effect) {
        for glob in &rule.paths {
            let ops: Vec<FsOperation> = rule
                .ops
                .iter()
                .filter(|op| !fs_covered(&against.filesystem.rules, effect, *op, glob))
                .collect();
            if !ops.is_empty() {
                out.push((rule, glob, ops));
            }
        }
    }
    out
}

/// What the same rule id said in the other policy, when it said something else.
fn fs_was(rule: &FsRule, other: &Policy) -> String {
    let Some(o) = other
        .filesystem
        .rules
        .iter()
        .find(|o| o.id == rule.id && o.effect == rule.effect)
    else {
        return " (a new rule)".into();
    };
    let paths = |r: &FsRule| {
        r.paths
            .iter()
            .map(|g| g.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    if paths(o) != paths(rule) {
        let was: Vec<String> = paths(o).iter().map(|p| format!("`{p}`")).collect();
        return format!(" (it had paths {})", was.join(", "));
    }
    let ops: Vec<FsOperation> = o.ops.iter().collect();
    format!(" (it had ops {})", op_list(&ops))
}

fn fs_rules(old: &Policy, new: &Policy, d: &mut PolicyDiff) {
    for (rule, glob, ops) in fs_uncovered(new, old, Effect::Allow) {
        d.allows.push(change(
            "filesystem.rules",
            Some(&rule.id),
            format!(
                "rule `{}` allows {} on `{}`{}",
                rule.id,
                op_list(&ops),
                glob.as_str(),
                fs_was(rule, old)
            ),
        ));
    }
    for (rule, glob, ops) in fs_uncovered(old, new, Effect::Deny) {
        d.allows.push(change(
            "filesystem.rules",
            Some(&rule.id),
            format!(
                "no longer denies {} on `{}` (deny rule `{}` was removed or narrowed)",
                op_list(&ops),
                glob.as_str(),
                rule.id
            ),
        ));
    }
    for (rule, glob, ops) in fs_uncovered(new, old, Effect::Deny) {
        d.denies.push(change(
            "filesystem.rules",
            Some(&rule.id),
            format!(
                "deny rule `{}` denies {} on `{}`{}",
                rule.id,
                op_list(&ops),
                glob.as_str(),
                fs_was(rule, old)
            ),
        ));
    }
    for (rule, glob, ops) in fs_uncovered(old, new, Effect::Allow) {
        d.denies.push(change(
            "filesystem.rules",
            Some(&rule.id),
            format!(
                "no longer allows {} on `{}` (rule `{}` was removed or narrowed)",
                op_list(&ops),
                glob.as_str(),
                rule.id
            ),
        ));
    }
}

/// One host or address block of a network rule.
enum HostAtom<'a> {
    Pattern(&'a HostPattern, &'a str),
    Cidr(&'a Cidr),
}

impl HostAtom<'_> {
    fn text(&self) -> String {
        match self {
            HostAtom::Pattern(_, text) => (*text).to_owned(),
            HostAtom::Cidr(c) => c.to_string(),
        }
    }
}

fn atoms(rule: &NetRule) -> Vec<HostAtom<'_>> {
    rule.hosts
        .iter()
        .zip(rule.host_texts.iter())
        .map(|(h, t)| HostAtom::Pattern(h, t.as_str()))
        .chain(rule.cidrs.iter().map(HostAtom::Cidr))
        .collect()
}

/// Whether every host `atom` stands for is matched by `rule` (sound, not complete).
fn host_covered(rule: &NetRule, atom: &HostAtom) -> bool {
    let any = rule.hosts.contains(&HostPattern::Any);
    match atom {
        HostAtom::Pattern(HostPattern::Any, _) => any,
        HostAtom::Pattern(HostPattern::Exact(name), _) => {
            any || rule.hosts.iter().any(|h| match h {
                HostPattern::Exact(other) => other == name,
                HostPattern::Suffix(suffix) => name.len() > suffix.len() && name.ends_with(suffix),
                _ => false,
            })
        }
        HostAtom::Pattern(HostPattern::Suffix(suffix), _) => {
            any || rule.hosts.iter().any(|h| match h {
                HostPattern::Suffix(other) => suffix.ends_with(other.as_str()),
                _ => false,
            })
        }
        // `*` reaches a blocked address only in a deny rule: an allow needs it named.
        HostAtom::Pattern(HostPattern::Address(ip), _) => {
            (any && (rule.effect == Effect::Deny || blocked_address_kind(*ip).is_none()))
                || rule.hosts.contains(&HostPattern::Address(*ip))
                || rule.cidrs.iter().any(|c| c.contains(*ip))
        }
        HostAtom::Cidr(inner) => {
            (any && rule.effect == Effect::Deny)
                || rule.cidrs.iter().any(|outer| {
                    outer.network.is_ipv4() == inner.network.is_ipv4()
                        && outer.prefix <= inner.prefix
                        && outer.contains(inner.network)
                })
        }
    }
}

const ALL_PORTS: PortRange = PortRange {
    first: 1,
    last: u16::MAX,
};

fn port_ranges(rule: &NetRule) -> Vec<PortRange> {
    if rule.ports.is_empty() {
        vec![ALL_PORTS]
    } else {
        rule.ports.clone()
    }
}

/// The parts of `range` that no range of `covers` contains.
fn uncovered_ports(range: PortRange, covers: &[PortRange]) -> Vec<PortRange> {
    let mut sorted: Vec<PortRange> = covers.to_vec();
    sorted.sort_by_key(|r| (r.first, r.last));
    let mut left = Vec::new();
    let mut next = u32::from(range.first);
    let last = u32::from(range.last);
    for c in sorted {
        if next > last {
            break;
        }
        let (first, end) = (u32::from(c.first), u32::from(c.last));
        if end < next {
            continue;
        }
        if first > next {
            left.push((next, (first - 1).min(last)));
        }
        next = next.max(end + 1);
    }
    if next <= last {
        left.push((next, last));
    }
    left.into_iter()
        .map(|(a, b)| PortRange {
            first: a as u16,
            last: b as u16,
        })
        .collect()
}

fn port_text(ranges: &[PortRange]) -> String {
    if ranges == [ALL_PORTS] {
        return "every port".into();
    }
    let items: Vec<String> = ranges
        .iter()
        .map(|r| {
            if r.first == r.last {
                r.first.to_string()
            } else {
                format!("{}-{}", r.first, r.last)
            }
        })
        .collect();
    let noun = if ranges.len() == 1 && ranges[0].first == ranges[0].last {
        "port"
    } else {
        "ports"
    };
    format!("{noun} {}", items.join(", "))
}

/// For each (rule, host) of `from` with `effect`: the ports no `effect` rule of `against`
/// covers for that host.
fn net_uncovered<'a>(
    from: &'a Policy,
    against: &Policy,
    effect: Effect,
) -> Vec<(&'a NetRule, String, Vec<PortRange>)> {
    let mut out = Vec::new();
    for rule in from.network.rules.iter().filter(|r| r.effect == effect) {
        for atom in atoms(rule) {
            let covers: Vec<PortRange> = against
                .network
                .rules
                .iter()
                .filter(|r| r.effect == effect && host_covered(r, &atom))
                .flat_map(port_ranges)
                .collect();
            let left: Vec<PortRange> = port_ranges(rule)
                .into_iter()
                .flat_map(|range| uncovered_ports(range, &covers))
                .collect();
            if !left.is_empty() {
                out.push((rule, atom.text(), left));
            }
        }
    }
    out
}

fn net_rules(old: &Policy, new: &Policy, d: &mut PolicyDiff) {
    for (rule, host, ports) in net_uncovered(new, old, Effect::Allow) {
        d.allows.push(change(
            "network.rules",
            Some(&rule.id),
            format!(
                "rule `{}` allows `{host}` on {}",
                rule.id,
                port_text(&ports)
            ),
        ));
    }
    for (rule, host, ports) in net_uncovered(old, new, Effect::Deny) {
        d.allows.push(change(
            "network.rules",
            Some(&rule.id),
            format!(
                "no longer denies `{host}` on {} (deny rule `{}` was removed or narrowed)",
                port_text(&ports),
                rule.id
            ),
        ));
    }
    for (rule, host, ports) in net_uncovered(new, old, Effect::Deny) {
        d.denies.push(change(
            "network.rules",
            Some(&rule.id),
            format!(
                "deny rule `{}` denies `{host}` on {}",
                rule.id,
                port_text(&ports)
            ),
        ));
    }
    for (rule, host, ports) in net_uncovered(old, new, Effect::Allow) {
        d.denies.push(change(
            "network.rules",
            Some(&rule.id),
            format!(
                "no longer allows `{host}` on {} (rule `{}` was removed or narrowed)",
                port_text(&ports),
                rule.id
            ),
        ));
    }
}

fn resolve_pins(old: &Policy, new: &Policy, d: &mut PolicyDiff) {
    let o: BTreeMap<&str, _> = old
        .network
        .resolve
        .iter()
        .map(|(n, a)| (n.as_str(), a))
        .collect();
    let n: BTreeMap<&str, _> = new
        .network
        .resolve
        .iter()
        .map(|(n, a)| (n.as_str(), a))
        .collect();
    for (name, address) in &n {
        match o.get(name) {
            None => d.other.push(change(
                "network.resolve",
                None,
                format!("pins `{name}` to `{address}`"),
            )),
            Some(was) if was != address => d.other.push(change(
                "network.resolve",
                None,
                format!("pins `{name}` to `{address}` (was `{was}`)"),
            )),
            _ => {}
        }
    }
    for (name, was) in &o {
        if !n.contains_key(name) {
            d.other.push(change(
                "network.resolve",
                None,
                format!("no longer pins `{name}` (was `{was}`): the system resolver answers"),
            ));
        }
    }
}

fn stdio_env_limits(old: &Policy, new: &Policy, d: &mut PolicyDiff) {
    type Limit = (&'static str, u64, u64, fn(u64) -> String);
    let pairs: [Limit; 5] = [
        (
            "stdio.stdout_bytes",
            old.stdio.stdout_bytes.value,
            new.stdio.stdout_bytes.value,
            size_words,
        ),
        (
            "stdio.stderr_bytes",
            old.stdio.stderr_bytes.value,
            new.stdio.stderr_bytes.value,
            size_words,
        ),
        (
            "limits.max_events",
            old.limits.max_events.value,
            new.limits.max_events.value,
            group_digits,
        ),
        (
            "limits.module_bytes",
            old.limits.module_bytes.value,
            new.limits.module_bytes.value,
            size_words,
        ),
        (
            "limits.open_files",
            old.limits.open_files.value,
            new.limits.open_files.value,
            group_digits,
        ),
    ];
    for (section, o, n, show) in pairs {
        numbers(d, section, Some(o), Some(n), show);
    }
    let o: BTreeMap<&str, &str> = old
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let n: BTreeMap<&str, &str> = new
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for (key, value) in &n {
        match o.get(key) {
            None => d.allows.push(change(
                "env",
                None,
                format!("passes `{key}={value}` to the plugin"),
            )),
            Some(was) if was != value => d.other.push(change(
                "env",
                None,
                format!("sets `{key}={value}` (was `{was}`)"),
            )),
            _ => {}
        }
    }
    for key in o.keys() {
        if !n.contains_key(key) {
            d.denies.push(change(
                "env",
                None,
                format!("no longer passes `{key}` to the plugin"),
            ));
        }
    }
}

/// The diff in words: a summary line, then one line per change.
pub fn render_text(diff: &PolicyDiff, old_name: &str, new_name: &str) -> String {
    let mut out = format!(
        "policy diff `{old_name}` -> `{new_name}`: {} newly allowed, {} newly denied, {} other\n",
        diff.allows.len(),
        diff.denies.len(),
        diff.other.len()
    );
    if diff.is_empty() {
        out.push_str("no change in what the policy allows or denies\n");
    }
    let groups = [
        (
            &diff.allows,
            '+',
            format!("allowed by `{new_name}`, not by `{old_name}`:"),
        ),
        (
            &diff.denies,
            '-',
            format!("denied by `{new_name}`, allowed by `{old_name}`:"),
        ),
        (&diff.other, '~', "other changes:".to_owned()),
    ];
    for (changes, mark, title) in groups {
        if changes.is_empty() {
            continue;
        }
        out.push_str(&title);
        out.push('\n');
        for c in changes {
            out.push_str(&format!("  {mark} {}: {}\n", c.section, c.message));
        }
    }
    out
}

#[derive(Serialize)]
struct DiffJson<'a> {
    old: &'a str,
    new: &'a str,
    summary: Counts,
    allows: &'a [Change],
    denies: &'a [Change],
    other: &'a [Change],
}

#[derive(Serialize)]
struct Counts {
    allows: usize,
    denies: usize,
    other: usize,
}

/// The diff as JSON: `{old, new, summary: {allows, denies, other}, allows: [...], ...}`.
pub fn render_json(diff: &PolicyDiff, old_name: &str, new_name: &str, pretty: bool) -> String {
    let doc = DiffJson {
        old: old_name,
        new: new_name,
        summary: Counts {
            allows: diff.allows.len(),
            denies: diff.denies.len(),
            other: diff.other.len(),
        },
        allows: &diff.allows,
        denies: &diff.denies,
        other: &diff.other,
    };
    let text = if pretty {
        serde_json::to_string_pretty(&doc)
    } else {
        serde_json::to_string(&doc)
    };
    text.unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_policy;
    use std::path::Path;

    const BASE: &str = r#"
version: 1
budgets: { fuel: 1_000, timeout_ms: 100, memory_bytes: 1MiB }
filesystem:
  mounts:
    - { guest: /data, host: ./data, mode: ro }
    - { guest: /out, host: ./out, mode: rw }
  rules:
    - { id: read-data, effect: allow, ops: [read, list], paths: ["/data/*.txt"] }
    - { id: no-secrets, effect: deny, ops: [read], paths: ["/data/secret/**"] }
  quotas: { read_bytes: 1KiB, write_bytes: 64KiB }
network:
  rules:
    - { id: echo, effect: allow, hosts: ["echo.test"], ports: [7000] }
  quotas: { connections: 4, egress_bytes: 1KiB }
"#;

    fn policy(text: &str) -> Policy {
        parse_policy(text, Path::new(".")).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn variant(from: &str, to: &str) -> Policy {
        assert!(BASE.contains(from), "{from}");
        policy(&BASE.replacen(from, to, 1))
    }

    fn messages(changes: &[Change]) -> Vec<&str> {
        changes.iter().map(|c| c.message.as_str()).collect()
    }

    #[test]
    fn a_policy_against_itself_and_a_renamed_rule_are_no_change() {
        let base = policy(BASE);
        assert!(diff(&base, &base).is_empty());
        let renamed = variant("id: read-data", "id: data-reads");
        assert!(
            diff(&base, &renamed).is_empty(),
            "{:?}",
            diff(&base, &renamed)
        );
    }

    #[test]
    fn a_widened_glob_is_newly_allowed_and_its_reverse_newly_denied() {
        let base = policy(BASE);
        let wide = variant("\"/data/*.txt\"", "\"/data/**\"");
        let d = diff(&base, &wide);
        assert_eq!(
            messages(&d.allows),
            ["rule `read-data` allows read, list on `/data/**` (it had paths `/data/*.txt`)"]
        );
        assert!(d.denies.is_empty() && d.other.is_empty());
        let back = diff(&wide, &base);
        assert_eq!(
            messages(&back.denies),
            ["no longer allows read, list on `/data/**` (rule `read-data` was removed or narrowed)"]
        );
    }

    #[test]
    fn an_added_host_and_port_are_newly_allowed() {
        let base = policy(BASE);
        let more = variant(
            "hosts: [\"echo.test\"], ports: [7000]",
            "hosts: [\"echo.test\", \"api.example.com\"], ports: [7000, \"7001-7002\"]",
        );
        assert_eq!(
            messages(&diff(&base, &more).allows),
            [
                "rule `echo` allows `echo.test` on ports 7001-7002",
                "rule `echo` allows `api.example.com` on ports 7000, 7001-7002",
            ]
        );
    }

    #[test]
    fn ports_split_across_rules_still_cover() {
        let split = policy(&BASE.replace(
            "    - { id: echo, effect: allow, hosts: [\"echo.test\"], ports: [7000] }",
            "    - { id: a, effect: allow, hosts: [\"echo.test\"], ports: [7000] }\n    - { id: b, effect: allow, hosts: [\"*.test\"], ports: [7001] }",
        ));
        let joined = variant("ports: [7000]", "ports: [\"7000-7001\"]");
        assert!(diff(&split, &joined).allows.is_empty());
        assert_eq!(
            uncovered_ports(
                PortRange { first: 1, last: 10 },
                &[
                    PortRange { first: 3, last: 4 },
                    PortRange { first: 6, last: 12 }
                ]
            ),
            [
                PortRange { first: 1, last: 2 },
                PortRange { first: 5, last: 5 }
            ]
        );
    }

    #[test]
    fn quotas_budgets_mounts_and_mode() {
        let base = policy(BASE);
        let raised = variant("write_bytes: 64KiB", "write_bytes: 1MiB");
        assert_eq!(
            messages(&diff(&base, &raised).allows),
            ["raises `filesystem.quotas.write_bytes` from 64KiB (65_536 bytes) to 1MiB (1_048_576 bytes)"]
        );
        let removed = variant(", egress_bytes: 1KiB", "");
        assert_eq!(
            messages(&diff(&base, &removed).allows),
            ["removes `network.quotas.egress_bytes` (was 1KiB (1_024 bytes)): no limit"]
        );
        let d = diff(&base, &variant("fuel: 1_000", "fuel: 500"));
        assert_eq!(
            messages(&d.denies),
            ["lowers `budgets.fuel` from 1_000 to 500"]
        );
        let d = diff(
            &base,
            &variant("host: ./data, mode: ro", "host: ./data, mode: rw"),
        );
        assert_eq!(
            messages(&d.allows),
            ["mount `/data` is now writable (`rw`, was `ro`)"]
        );
        let d = diff(&base, &variant("version: 1\n", "version: 1\nmode: audit\n"));
        assert_eq!(d.allows.len(), 1);
        assert!(d.allows[0].message.contains("audit"));
    }

    #[test]
    fn quotas_of_a_section_without_allow_rules_are_not_changes() {
        let base = policy(BASE);
        let no_net = policy(&BASE[..BASE.find("network:").unwrap()]);
        let d = diff(&base, &no_net);
        assert_eq!(
            messages(&d.denies),
            ["no longer allows `echo.test` on port 7000 (rule `echo` was removed or narrowed)"]
        );
        assert!(d.allows.is_empty(), "{:?}", d.allows);
    }

    #[test]
    fn mount_folders_compare_as_resolved() {
        let base = policy(BASE);
        let moved = variant("host: ./data,", "host: ./other/../data,");
        assert_eq!(diff(&base, &moved).allows.len(), 1);
        let lexical = |p: PathBuf| PathBuf::from(p.display().to_string().replace("other/../", ""));
        assert!(diff_with(&base, &moved, &lexical).is_empty());
    }

    #[test]
    fn removing_a_deny_rule_allows_and_adding_one_denies() {
        let base = policy(BASE);
        let without = policy(&BASE.replace(
            "    - { id: no-secrets, effect: deny, ops: [read], paths: [\"/data/secret/**\"] }\n",
            "",
        ));
        assert_eq!(
            messages(&diff(&base, &without).allows),
            ["no longer denies read on `/data/secret/**` (deny rule `no-secrets` was removed or narrowed)"]
        );
        assert_eq!(
            messages(&diff(&without, &base).denies),
            ["deny rule `no-secrets` denies read on `/data/secret/**` (a new rule)"]
        );
    }

    #[test]
    fn named_addresses_are_not_covered_by_a_star() {
        let star = variant("hosts: [\"echo.test\"]", "hosts: [\"*\"]");
        let named = variant(
            "hosts: [\"echo.test\"]",
            "hosts: [\"*\"], cidrs: [\"127.0.0.1/32\"]",
        );
        assert_eq!(
            messages(&diff(&star, &named).allows),
            ["rule `echo` allows `127.0.0.1/32` on port 7000"]
        );
    }

    #[test]
    fn renders_text_and_json() {
        let base = policy(BASE);
        let d = diff(&base, &variant("write_bytes: 64KiB", "write_bytes: 1MiB"));
        let text = render_text(&d, "a.yaml", "b.yaml");
        assert!(
            text.starts_with(
                "policy diff `a.yaml` -> `b.yaml`: 1 newly allowed, 0 newly denied, 0 other\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  + filesystem.quotas.write_bytes: raises"),
            "{text}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&render_json(&d, "a.yaml", "b.yaml", false)).unwrap();
        assert_eq!(json["summary"]["allows"], 1);
        assert_eq!(
            json["allows"][0]["section"],
            "filesystem.quotas.write_bytes"
        );
        assert!(render_text(&diff(&base, &base), "a", "a").contains("no change"));
    }
}
