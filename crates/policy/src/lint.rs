//! `policy lint`: parse errors plus warnings about policies that parse but are likely wrong
//! (shadowed rules, broad grants, missing budgets and quotas, mounts and rules that cannot
//! meet). Lint reads only the policy text, except that it checks mount host folders exist.
//!
//! Every finding has a stable kebab-case id: the parse error kind id for errors (see
//! [`crate::PolicyErrorKind::id`]) and one of [`WARNING_LINTS`] for warnings.

mod wide;

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use crate::glob::GlobPattern;
use crate::model::{Effect, FsOperation, FsRule, Mode, MountMode, NetRule, Policy, Setting};
use crate::net::HostPattern;
use crate::parse::parse_policy;
use crate::path::is_within;
use crate::span::Span;

/// Budgets above these are reported as `unbounded-budget`.
pub const MAX_REASONABLE_FUEL: u64 = 10_000_000_000;
pub const MAX_REASONABLE_TIMEOUT_MS: u64 = 600_000;
pub const MAX_REASONABLE_MEMORY_BYTES: u64 = 4 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One thing lint has to say about a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub lint_id: &'static str,
    pub severity: Severity,
    /// Where it is; `line == 0` means the whole file.
    pub span: Span,
    pub message: String,
    /// One line on how to fix it.
    pub hint: String,
}

/// Every finding for one policy, sorted by (line, column, lint id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LintReport {
    pub findings: Vec<Finding>,
}

impl LintReport {
    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }
    pub fn error_count(&self) -> usize {
        self.count(Severity::Error)
    }
    pub fn warning_count(&self) -> usize {
        self.count(Severity::Warning)
    }
    fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }
}

/// The warning lints, with a one-line description each (SARIF `shortDescription`).
pub const WARNING_LINTS: &[(&str, &str)] = &[
    (
        "audit-mode",
        "the policy is in audit mode: rules and quotas are not enforced",
    ),
    (
        "broad-fs-grant",
        "an allow rule grants paths from the guest root, across every mount",
    ),
    (
        "broad-net-grant",
        "an allow rule grants every host or every address",
    ),
    ("missing-budget", "a budget is left to its built-in default"),
    (
        "missing-mount-folder",
        "a mount's host folder does not exist",
    ),
    (
        "net-allow-without-quota",
        "network traffic is allowed without a connection or egress quota",
    ),
    (
        "rule-outside-mounts",
        "a filesystem rule names a path outside every mount",
    ),
    (
        "rw-mount-without-write-quota",
        "a writable mount has no write quota",
    ),
    (
        "shadowed-rule",
        "a rule adds nothing: other rules already decide everything it covers",
    ),
    (
        "unbounded-budget",
        "a budget is far above what a plugin normally needs",
    ),
    ("unused-mount", "no allow rule reaches a mount"),
];

/// A one-line description of any lint id, errors included.
pub fn describe_lint(id: &str) -> &'static str {
    if let Some((_, text)) = WARNING_LINTS.iter().find(|(known, _)| *known == id) {
        return text;
    }
    match id {
        "syntax" => "the policy is not valid YAML",
        "unknown-key" => "a key the policy format does not have",
        "missing-key" => "a required key is missing",
        "wrong-type" => "a value has the wrong type",
        "unsupported-version" => "the policy version is not supported",
        "duplicate-rule-id" => "two rules share an id",
        "invalid-size" => "a size or count is not valid",
        "invalid-glob" => "a path glob is not valid",
        "invalid-path" => "a guest or host path is not valid",
        "invalid-host" => "a host pattern or pinned address is not valid",
        "invalid-port" => "a port or port range is not valid",
        "invalid-cidr" => "an address block is not valid",
        "invalid-value" => "a value is not one the key accepts",
        "overlapping-mounts" => "two mounts share host folders without `overlap: intended`",
        "io" => "the policy could not be read",
        _ => "a problem in the policy",
    }
}

/// Lints policy text. `policy_path` is shown in output and its parent folder is the base for
/// mount host folders.
pub fn lint_policy_text(text: &str, policy_path: &Path) -> LintReport {
    let base_dir = policy_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut findings = match parse_policy(text, base_dir) {
        Err(errors) => errors
            .errors
            .into_iter()
            .map(|e| Finding {
                lint_id: e.kind.id(),
                severity: Severity::Error,
                span: e.span,
                message: e.message,
                hint: e.help,
            })
            .collect(),
        Ok(policy) => lint_policy(&policy, text),
    };
    // Stable: findings at the same place keep the order they were made in.
    findings.sort_by_key(|f| (f.span.line, f.span.column, f.lint_id));
    LintReport { findings }
}

/// The warnings for a policy that parsed, in no particular order.
fn lint_policy(policy: &Policy, text: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    audit_mode(policy, &mut out);
    budgets(policy, text, &mut out);
    // One budget for the glob-against-mount checks of both mount lints.
    let work = Work::new();
    mounts(policy, &work, &mut out);
    fs_rules(policy, &work, &mut out);
    net_rules(policy, &mut out);
    wide::wide_address_blocks(policy, &mut out);
    wide::overlapping_mounts(policy, &mut out);
    out
}

fn warn(out: &mut Vec<Finding>, id: &'static str, span: Span, message: String, hint: String) {
    out.push(Finding {
        lint_id: id,
        severity: Severity::Warning,
        span,
        message,
        hint,
    });
}

fn audit_mode(policy: &Policy, out: &mut Vec<Finding>) {
    if policy.mode.value == Mode::Audit {
        warn(
            out,
            "audit-mode",
            policy.mode.span.unwrap_or(Span::UNKNOWN),
            "`mode: audit` is set: rules and quotas only log what they would deny".into(),
            "switch to `mode: enforce` once the policy is tuned (`policy learn` can write one)"
                .into(),
        );
    }
}

/// Where a top-level `key:` is written in block style. The model keeps the place of each
/// section's value (its first entry), but a missing entry is best shown at the key.
fn top_level_key(text: &str, key: &str) -> Option<Span> {
    text.lines().enumerate().find_map(|(i, line)| {
        let rest = line.strip_prefix(key)?.trim_start();
        rest.starts_with(':').then(|| Span::new(i as u64 + 1, 1))
    })
}

fn budgets(policy: &Policy, text: &str, out: &mut Vec<Finding>) {
    let b = &policy.budgets;
    let section = b
        .span
        .map(|span| top_level_key(text, "budgets").unwrap_or(span));
    /// How a budget is named, bounded and shown.
    type Show = fn(u64) -> String;
    let budgets: [(&str, Setting<u64>, u64, Show, &str); 3] = [
        (
            "fuel",
            b.fuel,
            MAX_REASONABLE_FUEL,
            group_digits,
            "fuel: 100_000_000",
        ),
        (
            "timeout_ms",
            b.timeout_ms,
            MAX_REASONABLE_TIMEOUT_MS,
            group_digits,
            "timeout_ms: 5000",
        ),
        (
            "memory_bytes",
            b.memory_bytes,
            MAX_REASONABLE_MEMORY_BYTES,
            format_size,
            "memory_bytes: 64MiB",
        ),
    ];
    for (name, setting, ceiling, show, example) in budgets {
        match setting.span {
            None => warn(
                out,
                "missing-budget",
                section.unwrap_or(Span::UNKNOWN),
                format!(
                    "`budgets.{name}` is not set: the built-in default of {} applies",
                    show(setting.value)
                ),
                format!("set `budgets.{name}` to what the plugin needs, e.g. `{example}`"),
            ),
            Some(span) if setting.value > ceiling => warn(
                out,
                "unbounded-budget",
                span,
                format!(
                    "`budgets.{name}` is {}, above the lint ceiling of {}",
                    show(setting.value),
                    show(ceiling)
                ),
                format!(
                    "lower `budgets.{name}` to what the plugin needs: a runaway plugin holds the host until it runs out"
                ),
            ),
            Some(_) => {}
        }
    }
}

fn mounts(policy: &Policy, work: &Work, out: &mut Vec<Finding>) {
    let fs = &policy.filesystem;
    for mount in &fs.mounts {
        if mount.mode == MountMode::ReadWrite && fs.quotas.write_bytes.is_none() {
            warn(
                out,
                "rw-mount-without-write-quota",
                mount.span,
                format!(
                    "mount `{}` is writable but `filesystem.quotas.write_bytes` is not set",
                    mount.guest
                ),
                "add `filesystem.quotas.write_bytes`, e.g. `write_bytes: 64MiB`, so a plugin cannot fill the disk"
                    .into(),
            );
        }
        let reached = fs.rules.iter().any(|r| {
            r.effect == Effect::Allow && r.paths.iter().any(|g| reaches(g, &mount.guest, work))
        });
        if !reached {
            warn(
                out,
                "unused-mount",
                mount.span,
                format!("mount `{}` is not reached by any allow rule", mount.guest),
                format!(
                    "add an allow rule for `{}`, or remove the mount",
                    beneath(&mount.guest)
                ),
            );
        }
        match std::fs::metadata(policy.mount_host_path(mount)) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => warn(
                out,
                "missing-mount-folder",
                mount.span,
                format!("host path `{}` of mount `{}` is not a folder", mount.host, mount.guest),
                "point `host:` at a folder (relative paths start at the policy file's folder)".into(),
            ),
            Err(_) => warn(
                out,
                "missing-mount-folder",
                mount.span,
                format!("host folder `{}` of mount `{}` does not exist", mount.host, mount.guest),
                "create the folder before `run`, or fix `host:` (relative paths start at the policy file's folder)"
                    .into(),
            ),
        }
    }
}

fn fs_rules(policy: &Policy, work: &Work, out: &mut Vec<Finding>) {
    let rules = &policy.filesystem.rules;
    let mounts = &policy.filesystem.mounts;
    let example_mount = mounts.first().map(|m| m.guest.as_str()).unwrap_or("/data");
    let covers = CoverIndex::new(rules);
    for (index, rule) in rules.iter().enumerate() {
        if let Some(finding) = fs_shadow(rules, &covers, index) {
            out.push(finding);
        }
        if rule.effect == Effect::Allow {
            if let Some(glob) = rule
                .paths
                .iter()
                .find(|g| !g.is_literal() && g.literal_prefix() == "/")
            {
                let message = if glob.as_str() == "/**" {
                    format!("rule `{}` allows every path in the guest", rule.id)
                } else {
                    format!(
                        "rule `{}` allows `{}`, which starts at the guest root and spans every mount",
                        rule.id,
                        glob.as_str()
                    )
                };
                warn(
                    out,
                    "broad-fs-grant",
                    rule.span,
                    message,
                    format!(
                        "narrow the glob to the folder the plugin needs, e.g. `{}`",
                        beneath(example_mount)
                    ),
                );
            }
        }
        for glob in &rule.paths {
            if !mounts.iter().any(|m| reaches(glob, &m.guest, work)) {
                let hint = match mounts.first() {
                    Some(m) => format!(
                        "fix the path to lie beneath a mount such as `{}`, or mount the folder it needs",
                        m.guest
                    ),
                    None => "add a mount under `filesystem.mounts` for the folder it needs".into(),
                };
                warn(
                    out,
                    "rule-outside-mounts",
                    rule.span,
                    format!(
                        "path `{}` of rule `{}` is outside every mount: it can never match",
                        glob.as_str(),
                        rule.id
                    ),
                    hint,
                );
            }
        }
    }
}

/// Pairwise checks (rule against rule, glob against mount) one lint may make. Real policies
/// need far fewer; a huge generated one (thousands of rules under one folder) would otherwise
/// take seconds. Past the budget lint only misses findings: it never reports a wrong one.
const MAX_PAIR_CHECKS: u32 = 2_000_000;

/// Counts pairwise checks against [`MAX_PAIR_CHECKS`].
struct Work(std::cell::Cell<u32>);

impl Work {
    fn new() -> Work {
        Work(std::cell::Cell::new(MAX_PAIR_CHECKS))
    }
    /// Takes one check from the budget; false once it is spent.
    fn take(&self) -> bool {
        self.take_n(1)
    }
    /// Takes `n` units (a check that costs more than one step); false once it is spent.
    fn take_n(&self, n: usize) -> bool {
        let left = self.0.get();
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.0.set(left.saturating_sub(n));
        left >= n
    }
    fn spent(&self) -> bool {
        self.0.get() == 0
    }
}

/// Every filesystem rule path by its literal prefix. A glob can only be covered by globs whose
/// literal prefix is its own or an ancestor of it (everything a glob matches lies beneath its
/// prefix), so coverage checks look in those few buckets instead of at every rule.
struct CoverIndex<'a> {
    by_prefix: HashMap<String, Vec<(usize, &'a GlobPattern)>>,
    work: Work,
}

impl<'a> CoverIndex<'a> {
    fn new(rules: &'a [FsRule]) -> CoverIndex<'a> {
        let mut by_prefix: HashMap<String, Vec<(usize, &GlobPattern)>> = HashMap::new();
        for (index, rule) in rules.iter().enumerate() {
            for glob in &rule.paths {
                by_prefix
                    .entry(glob.literal_prefix())
                    .or_default()
                    .push((index, glob));
            }
        }
        CoverIndex {
            by_prefix,
            work: Work::new(),
        }
    }

    /// The lowest-numbered rule below `limit` with `effect` that lists `op` and has a path
    /// covering `glob`.
    fn first_cover(
        &self,
        rules: &[FsRule],
        glob: &GlobPattern,
        op: FsOperation,
        effect: Effect,
        limit: usize,
    ) -> Option<usize> {
        let mut best: Option<usize> = None;
        let mut prefix = glob.literal_prefix();
        loop {
            // Buckets are in rule order: the first cover found in one is its lowest.
            for &(index, candidate) in self.by_prefix.get(&prefix).into_iter().flatten() {
                if index >= limit || best.is_some_and(|b| index >= b) {
                    break;
                }
                if !self.work.take() {
                    return best;
                }
                let rule = &rules[index];
                if rule.effect == effect && rule.ops.contains(op) && glob.is_covered_by(candidate) {
                    best = Some(index);
                    break;
                }
            }
            match prefix.rfind('/') {
                _ if prefix == "/" => return best,
                Some(0) => prefix.truncate(1),
                Some(at) => prefix.truncate(at),
                None => return best,
            }
        }
    }

    /// The ids of rules with `effect` below `limit` that together cover every (op, path) of
    /// `rule`, or None when some pair is left uncovered.
    fn covered_by(
        &self,
        rules: &[FsRule],
        rule: &FsRule,
        effect: Effect,
        limit: usize,
    ) -> Option<Vec<String>> {
        let mut ids: Vec<String> = Vec::new();
        for op in rule.ops.iter() {
            for glob in &rule.paths {
                let cover = &rules[self.first_cover(rules, glob, op, effect, limit)?];
                if !ids.contains(&cover.id) {
                    ids.push(cover.id.clone());
                }
            }
        }
        Some(ids)
    }
}

/// `shadowed-rule` for filesystem rule `index`: every (op, path) it lists is covered by
/// earlier rules of the same effect, or (for an allow rule) by deny rules anywhere.
fn fs_shadow(rules: &[FsRule], covers: &CoverIndex, index: usize) -> Option<Finding> {
    let rule = rules.get(index)?;
    if rule.paths.is_empty() || rule.ops.iter().next().is_none() || covers.work.spent() {
        return None;
    }
    if rule.effect == Effect::Allow {
        if let Some(ids) = covers.covered_by(rules, rule, Effect::Deny, rules.len()) {
            let names = id_list(&ids);
            return Some(Finding {
                lint_id: "shadowed-rule",
                severity: Severity::Warning,
                span: rule.span,
                message: format!(
                    "allow rule `{}` can never allow anything: deny {} {names} {} every operation and path it lists",
                    rule.id,
                    plural(ids.len(), "rule", "rules"),
                    plural(ids.len(), "covers", "cover"),
                ),
                hint: format!("remove `{}`, or narrow {names} if the deny is wider than meant", rule.id),
            });
        }
    }
    let ids = covers.covered_by(rules, rule, rule.effect, index)?;
    let names = id_list(&ids);
    Some(Finding {
        lint_id: "shadowed-rule",
        severity: Severity::Warning,
        span: rule.span,
        message: format!(
            "rule `{}` adds nothing: earlier {} {names} already {} every operation and path it lists",
            rule.id,
            plural(ids.len(), "rule", "rules"),
            plural(ids.len(), "covers", "cover"),
        ),
        hint: format!("remove `{}`, or narrow {names} if it grants more than meant", rule.id),
    })
}

fn net_rules(policy: &Policy, out: &mut Vec<Finding>) {
    let net = &policy.network;
    let rules = &net.rules;
    let work = Work::new();
    let denies: Vec<&NetRule> = rules.iter().filter(|r| r.effect == Effect::Deny).collect();
    for (index, rule) in rules.iter().enumerate() {
        if let Some(finding) = net_shadow(rules, &denies, index, &work) {
            out.push(finding);
        }
        if rule.effect != Effect::Allow {
            continue;
        }
        if rule.hosts.contains(&HostPattern::Any) {
            warn(
                out,
                "broad-net-grant",
                rule.span,
                format!("network rule `{}` allows every host (`*`)", rule.id),
                "list the hosts the plugin talks to, e.g. `hosts: [\"api.example.com\"]`".into(),
            );
        } else if let Some(cidr) = rule.cidrs.iter().find(|c| c.prefix == 0) {
            warn(
                out,
                "broad-net-grant",
                rule.span,
                format!("network rule `{}` allows every address (`{cidr}`)", rule.id),
                "name the address block the plugin needs, e.g. `cidrs: [\"10.1.0.0/16\"]`".into(),
            );
        }
    }
    if let Some(first) = rules.iter().find(|r| r.effect == Effect::Allow) {
        let quotas = [
            (
                "connections",
                net.quotas.connections.is_some(),
                "connections: 4",
            ),
            (
                "egress_bytes",
                net.quotas.egress_bytes.is_some(),
                "egress_bytes: 1MiB",
            ),
        ];
        for (name, present, example) in quotas {
            if !present {
                warn(
                    out,
                    "net-allow-without-quota",
                    first.span,
                    format!(
                        "network rule `{}` allows traffic but `network.quotas.{name}` is not set",
                        first.id
                    ),
                    format!("add `network.quotas.{name}`, e.g. `{example}`"),
                );
            }
        }
    }
}

/// `shadowed-rule` for network rule `index`, by one covering rule: an earlier rule of the same
/// effect, or (for an allow rule) a deny rule anywhere.
fn net_shadow(
    rules: &[NetRule],
    denies: &[&NetRule],
    index: usize,
    work: &Work,
) -> Option<Finding> {
    let rule = rules.get(index)?;
    if work.spent() {
        return None;
    }
    if rule.effect == Effect::Allow {
        if let Some(deny) = denies.iter().find(|d| work.take() && net_covers(d, rule)) {
            return Some(Finding {
                lint_id: "shadowed-rule",
                severity: Severity::Warning,
                span: rule.span,
                message: format!(
                    "network rule `{}` can never allow anything: deny rule `{}` covers every host and port it lists",
                    rule.id, deny.id
                ),
                hint: format!("remove `{}`, or narrow `{}` if the deny is wider than meant", rule.id, deny.id),
            });
        }
    }
    let earlier = rules[..index]
        .iter()
        .find(|e| work.take() && e.effect == rule.effect && net_covers(e, rule))?;
    Some(Finding {
        lint_id: "shadowed-rule",
        severity: Severity::Warning,
        span: rule.span,
        message: format!(
            "network rule `{}` adds nothing: earlier rule `{}` already covers every host and port it lists",
            rule.id, earlier.id
        ),
        hint: format!("remove `{}`, or narrow `{}` if it grants more than meant", rule.id, earlier.id),
    })
}

/// True when every (host, port) `inner` matches is matched by `outer` (sound, not complete).
fn net_covers(outer: &NetRule, inner: &NetRule) -> bool {
    let names_addresses = !inner.cidrs.is_empty()
        || inner
            .hosts
            .iter()
            .any(|h| matches!(h, HostPattern::Address(_)));
    let hosts = if outer.hosts.contains(&HostPattern::Any) {
        // An allow rule that names an address can reach a blocked address; `*` cannot, so
        // it does not make such an allow rule redundant. A deny `*` wins over everything.
        !(outer.effect == Effect::Allow && names_addresses)
    } else {
        inner.hosts.iter().all(|h| outer.hosts.contains(h))
            && inner.cidrs.iter().all(|c| outer.cidrs.contains(c))
    };
    let ports = outer.ports.is_empty()
        || (!inner.ports.is_empty()
            && inner.ports.iter().all(|p| {
                outer
                    .ports
                    .iter()
                    .any(|o| o.first <= p.first && p.last <= o.last)
            }));
    hosts && ports
}

/// True when `glob` could match `mount` itself or some path beneath it.
///
/// Answers true once `work` is spent, which only silences `unused-mount` and
/// `rule-outside-mounts` on huge policies.
fn reaches(glob: &GlobPattern, mount: &str, work: &Work) -> bool {
    // Everything the glob matches lies beneath its literal prefix, so the prefix and the
    // mount must be one within the other: a cheap test that rules out most pairs.
    let prefix = glob.literal_prefix();
    if !is_within(&prefix, mount) && !is_within(mount, &prefix) {
        return false;
    }
    // Globs and mount paths are normalised and absolute, so splitting on `/` is exact.
    let g = segments(glob.as_str());
    let m = segments(mount);
    // The table below costs one unit a cell.
    if !work.take_n((g.len() + 1) * (m.len() + 1)) {
        return true;
    }
    // can[i][j]: the glob from segment i on could match the mount from segment j on and then
    // anything beneath. Filled backwards so each cell is computed once.
    let mut can = vec![vec![false; m.len() + 1]; g.len() + 1];
    for i in (0..=g.len()).rev() {
        for j in (0..=m.len()).rev() {
            can[i][j] = if j == m.len() {
                // The mount is consumed: any rest of the glob matches some path beneath it.
                true
            } else if i == g.len() {
                false
            } else if g[i] == "**" {
                can[i + 1][j] || can[i][j + 1]
            } else {
                segment_matches(g[i], m[j]) && can[i + 1][j + 1]
            };
        }
    }
    can[0][0]
}

/// The segments of a normalised absolute path or glob (so splitting on `/` is exact).
fn segments(text: &str) -> Vec<&str> {
    text.split('/').filter(|s| !s.is_empty()).collect()
}

/// One glob segment against one name: `*` matches any run of characters within it.
fn segment_matches(pattern: &str, name: &str) -> bool {
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let middle: Vec<&str> = pieces.collect();
    let Some((last, middle)) = middle.split_last() else {
        // No `*`: the whole name had to be the literal.
        return rest.is_empty();
    };
    // Each middle piece as early as it occurs leaves the most room for the rest.
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// `/data/**` for `/data`, `/**` for `/`.
fn beneath(guest: &str) -> String {
    format!("{}/**", guest.trim_end_matches('/'))
}

fn id_list(ids: &[String]) -> String {
    ids.iter()
        .map(|id| format!("`{id}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// `100000000` → `100_000_000`, as a policy may write it.
fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('_');
        }
        out.push(c);
    }
    out
}

/// A byte count with the largest binary unit that divides it exactly.
fn format_size(n: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n > 0 && n.is_multiple_of(1u64 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    group_digits(n)
}

// ---------------------------------------------------------------------------------------
// Rendering

/// Replaces control characters (terminal escapes among them) so output cannot drive a
/// terminal; one character in, one out, so carets stay aligned.
fn neutralise(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' => ' ',
            c if c.is_control() => '\u{fffd}',
            c => c,
        })
        .collect()
}

/// Human-readable findings with the source line and a caret, then a count line. Ends with a
/// newline; no colours and no dependence on the terminal.
pub fn render_text(report: &LintReport, text: &str, display_path: &str) -> String {
    let mut out = render_findings(report, text, display_path);
    out.push_str(&summary(report));
    out.push('\n');
    out
}

/// The findings of [`render_text`] without its count line: what `run` shows for a policy it
/// refuses, in the same words and with the same snippet as `lint`.
pub fn render_findings(report: &LintReport, text: &str, display_path: &str) -> String {
    let mut out = String::new();
    let lines: Vec<&str> = text.lines().collect();
    let path = neutralise(display_path);
    for finding in &report.findings {
        let line = finding.span.line as usize;
        let width = line.max(1).to_string().len();
        let pad = " ".repeat(width);
        out.push_str(&format!(
            "{}[{}]: {}\n",
            finding.severity.as_str(),
            finding.lint_id,
            neutralise(&finding.message)
        ));
        let source = line.checked_sub(1).and_then(|i| lines.get(i));
        match source {
            Some(source) => {
                let source = neutralise(source);
                let column = (finding.span.column.max(1) as usize) - 1;
                // A column past the end of the line (or absurdly large) points just after it.
                let column = column.min(source.chars().count());
                out.push_str(&format!("{pad}--> {path}:{}\n", finding.span));
                out.push_str(&format!("{pad} |\n"));
                if source.is_empty() {
                    out.push_str(&format!("{line} |\n"));
                } else {
                    out.push_str(&format!("{line} | {source}\n"));
                }
                out.push_str(&format!("{pad} | {}^\n", " ".repeat(column)));
            }
            None if finding.span.is_known() => {
                out.push_str(&format!("{pad}--> {path}:{}\n", finding.span));
            }
            None => out.push_str(&format!("{pad}--> {path}\n")),
        }
        out.push_str(&format!("{pad} = help: {}\n\n", neutralise(&finding.hint)));
    }
    out
}

fn summary(report: &LintReport) -> String {
    let (errors, warnings) = (report.error_count(), report.warning_count());
    if errors + warnings == 0 {
        return "no findings".into();
    }
    format!(
        "{errors} {}, {warnings} {}",
        plural(errors, "error", "errors"),
        plural(warnings, "warning", "warnings")
    )
}

#[derive(Serialize)]
struct JsonReport<'a> {
    policy: &'a str,
    errors: usize,
    warnings: usize,
    findings: Vec<JsonFinding<'a>>,
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    lint_id: &'a str,
    severity: Severity,
    line: u32,
    column: u32,
    message: &'a str,
    hint: &'a str,
}

fn to_json<T: Serialize>(value: &T, pretty: bool) -> String {
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    // Plain structs of strings and numbers always serialise; keep a valid document regardless.
    text.unwrap_or_else(|_| "{}".into())
}

/// `{"policy", "errors", "warnings", "findings": [{lint_id, severity, line, column, message,
/// hint}]}`; no trailing newline.
pub fn render_json(report: &LintReport, display_path: &str, pretty: bool) -> String {
    let doc = JsonReport {
        policy: display_path,
        errors: report.error_count(),
        warnings: report.warning_count(),
        findings: report
            .findings
            .iter()
            .map(|f| JsonFinding {
                lint_id: f.lint_id,
                severity: f.severity,
                line: f.span.line,
                column: f.span.column,
                message: &f.message,
                hint: &f.hint,
            })
            .collect(),
    };
    to_json(&doc, pretty)
}

pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The tool's `informationUri` in SARIF: the package's `homepage` or `repository` from
/// Cargo.toml, absent while the package names neither.
pub const SARIF_INFORMATION_URI: Option<&str> = match option_env!("CARGO_PKG_HOMEPAGE") {
    Some(uri) if !uri.is_empty() => Some(uri),
    _ => match option_env!("CARGO_PKG_REPOSITORY") {
        Some(uri) if !uri.is_empty() => Some(uri),
        _ => None,
    },
};

#[derive(Serialize)]
struct Sarif<'a> {
    #[serde(rename = "$schema")]
    schema: &'a str,
    version: &'a str,
    runs: Vec<SarifRun<'a>>,
}

#[derive(Serialize)]
struct SarifRun<'a> {
    tool: SarifTool<'a>,
    results: Vec<SarifResult<'a>>,
}

#[derive(Serialize)]
struct SarifTool<'a> {
    driver: SarifDriver<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifDriver<'a> {
    name: &'a str,
    version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    information_uri: Option<&'a str>,
    rules: Vec<SarifRule<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRule<'a> {
    id: &'a str,
    short_description: SarifText,
    /// How to fix it (the hint of the rule's first finding).
    help: SarifText,
    default_configuration: SarifConfiguration,
}

#[derive(Serialize)]
struct SarifConfiguration {
    level: Severity,
}

#[derive(Serialize)]
struct SarifText {
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'a str,
    rule_index: usize,
    level: Severity,
    message: SarifText,
    locations: Vec<SarifLocation>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifLocation {
    physical_location: SarifPhysical,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifPhysical {
    artifact_location: SarifArtifact,
    region: SarifRegion,
}

#[derive(Serialize)]
struct SarifArtifact {
    uri: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRegion {
    start_line: u32,
    start_column: u32,
}

/// SARIF 2.1.0: one run of `sandbox-cli`, a rule per lint id used, a result per finding. Every
/// result has a region with `startLine` ≥ 1 (1 for whole-file findings). No trailing newline.
pub fn render_sarif(report: &LintReport, display_path: &str, pretty: bool) -> String {
    // Rules in order of first use, so `ruleIndex` is stable for the same findings.
    let mut rules: Vec<SarifRule> = Vec::new();
    let mut results = Vec::new();
    let uri = sarif_uri(display_path);
    for f in &report.findings {
        let rule_index = match rules.iter().position(|r| r.id == f.lint_id) {
            Some(i) => i,
            None => {
                rules.push(SarifRule {
                    id: f.lint_id,
                    short_description: SarifText {
                        text: describe_lint(f.lint_id).into(),
                    },
                    help: SarifText {
                        text: f.hint.clone(),
                    },
                    default_configuration: SarifConfiguration { level: f.severity },
                });
                rules.len() - 1
            }
        };
        results.push(SarifResult {
            rule_id: f.lint_id,
            rule_index,
            level: f.severity,
            message: SarifText {
                text: format!("{} (help: {})", f.message, f.hint),
            },
            locations: vec![SarifLocation {
                physical_location: SarifPhysical {
                    artifact_location: SarifArtifact { uri: uri.clone() },
                    region: SarifRegion {
                        start_line: f.span.line.max(1),
                        start_column: f.span.column.max(1),
                    },
                },
            }],
        });
    }
    let doc = Sarif {
        schema: SARIF_SCHEMA,
        version: "2.1.0",
        runs: vec![SarifRun {
            tool: SarifTool {
                driver: SarifDriver {
                    name: "sandbox-cli",
                    version: env!("CARGO_PKG_VERSION"),
                    information_uri: SARIF_INFORMATION_URI,
                    rules,
                },
            },
            results,
        }],
    };
    to_json(&doc, pretty)
}

/// A path as a URI reference: `/` separators, percent-encoding outside the unreserved set,
/// `file://` for absolute paths.
fn sarif_uri(path: &str) -> String {
    let path = path.replace('\\', "/");
    let mut out = String::new();
    if path.starts_with('/') {
        out.push_str("file://");
    }
    for byte in path.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(byte as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lint(text: &str) -> LintReport {
        // A base folder that does not exist, so mount folders are always missing here.
        lint_policy_text(
            text,
            Path::new("/nonexistent-sandbox-lint-test/policy.yaml"),
        )
    }

    fn ids(report: &LintReport) -> Vec<&'static str> {
        report.findings.iter().map(|f| f.lint_id).collect()
    }

    fn count(report: &LintReport, id: &str) -> usize {
        report.findings.iter().filter(|f| f.lint_id == id).count()
    }

    /// Budgets and quotas that silence the lints about them.
    const BUDGETS: &str = "budgets: { fuel: 1000, timeout_ms: 1000, memory_bytes: 16MiB }\n";

    fn with_budgets(rest: &str) -> String {
        format!("version: 1\n{BUDGETS}{rest}")
    }

    /// A policy that should give no findings but `missing-mount-folder`.
    fn clean() -> String {
        with_budgets(
            r#"filesystem:
  mounts:
    - { guest: /data, host: ./data, mode: ro }
    - { guest: /out, host: ./out, mode: rw }
  rules:
    - { id: read-data, effect: allow, ops: [read, list], paths: ["/data/**"] }
    - { id: write-out, effect: allow, ops: [write, create], paths: ["/out/*.log"] }
    - { id: no-secrets, effect: deny, ops: [read], paths: ["/data/secret/**"] }
  quotas: { read_bytes: 1MiB, write_bytes: 64KiB }
network:
  rules:
    - { id: api, effect: allow, hosts: ["api.example.com", "*.example.org"], ports: [443, "8000-8100"] }
    - { id: lan, effect: allow, cidrs: ["127.0.0.0/8"], ports: [7000] }
    - { id: no-metadata, effect: deny, cidrs: ["169.254.169.254/32"] }
  quotas: { connections: 4, egress_bytes: 1MiB }
"#,
        )
    }

    #[test]
    fn clean_policy_has_only_missing_folder_findings() {
        let report = lint(&clean());
        assert_eq!(
            ids(&report),
            ["missing-mount-folder", "missing-mount-folder"],
            "{report:#?}"
        );
        assert!(!report.has_errors());
    }

    #[test]
    fn strict_policy_without_mounts_has_no_findings() {
        let report = lint(&with_budgets("name: x\n"));
        assert!(report.findings.is_empty(), "{report:#?}");
    }

    #[test]
    fn parse_errors_become_error_findings() {
        let report = lint("version: 1\nbogus: 3\n");
        assert_eq!(ids(&report), ["unknown-key"]);
        assert!(report.has_errors());
        assert_eq!(report.error_count(), 1);
        let report = lint(&with_budgets(
            "filesystem:\n  rules:\n    - { id: a, effect: allow, ops: [read], paths: [\"data/**\"] }\n",
        ));
        assert_eq!(ids(&report), ["invalid-glob"]);
        // The span of a quoted value is its opening quote.
        assert_eq!(
            report.findings[0].span,
            Span {
                line: 5,
                column: 52
            }
        );
    }

    #[test]
    fn shadowed_fs_rules() {
        let text = with_budgets(
            r#"filesystem:
  mounts: [{ guest: /data, host: ./data }]
  rules:
    - { id: all, effect: allow, ops: [read, list], paths: ["/data/**"] }
    - { id: logs, effect: allow, ops: [read], paths: ["/data/logs/**", "/data/a.txt"] }
    - { id: deny-x, effect: deny, ops: [read], paths: ["/data/x/**"] }
    - { id: x-file, effect: allow, ops: [read], paths: ["/data/x/y.txt"] }
  quotas: { read_bytes: 1MiB }
"#,
        );
        let report = lint(&text);
        let shadowed: Vec<&Finding> = report
            .findings
            .iter()
            .filter(|f| f.lint_id == "shadowed-rule")
            .collect();
        assert_eq!(shadowed.len(), 2, "{report:#?}");
        assert!(
            shadowed[0].message.contains("`logs` adds nothing"),
            "{}",
            shadowed[0].message
        );
        assert!(shadowed[0].message.contains("`all`"));
        assert!(
            shadowed[1].message.contains("`x-file` can never allow"),
            "{}",
            shadowed[1].message
        );
        assert!(shadowed[1].message.contains("`deny-x`"));
    }

    #[test]
    fn a_rule_covered_by_two_earlier_rules_together_is_shadowed() {
        let text = with_budgets(
            r#"filesystem:
  mounts: [{ guest: /data, host: ./data }]
  rules:
    - { id: a, effect: allow, ops: [read], paths: ["/data/a/**"] }
    - { id: b, effect: allow, ops: [read], paths: ["/data/b/**"] }
    - { id: ab, effect: allow, ops: [read], paths: ["/data/a/x", "/data/b/y"] }
    - { id: wider, effect: allow, ops: [read, list], paths: ["/data/a/x"] }
"#,
        );
        let report = lint(&text);
        assert_eq!(count(&report, "shadowed-rule"), 1, "{report:#?}");
        let f = report
            .findings
            .iter()
            .find(|f| f.lint_id == "shadowed-rule")
            .unwrap();
        assert!(f.message.contains("rules `a`, `b`"), "{}", f.message);
    }

    #[test]
    fn shadowed_net_rules() {
        let rules = r#"network:
  rules:
    - { id: web, effect: allow, hosts: ["api.example.com", "b.example.com"], ports: ["1-1000"] }
    - { id: api, effect: allow, hosts: ["API.example.com."], ports: [443] }
    - { id: api-high, effect: allow, hosts: ["api.example.com"], ports: [8443] }
    - { id: lan, effect: allow, cidrs: ["10.0.0.0/8"], ports: [80] }
  quotas: { connections: 4, egress_bytes: 1MiB }
"#;
        let shadowed = |text: &str| -> Vec<String> {
            lint(text)
                .findings
                .into_iter()
                .filter(|f| f.lint_id == "shadowed-rule")
                .map(|f| f.message)
                .collect()
        };
        let found = shadowed(&with_budgets(rules));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].contains("`api` adds nothing"), "{}", found[0]);
        assert!(found[0].contains("`web`"));

        // A deny rule for every host and port leaves every allow rule with nothing to do.
        let with_deny = rules.replace(
            "  quotas:",
            "    - { id: nothing, effect: deny, hosts: [\"*\"] }\n  quotas:",
        );
        let found = shadowed(&with_budgets(&with_deny));
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(
            found.iter().all(|m| m.contains("deny rule `nothing`")),
            "{found:#?}"
        );
    }

    #[test]
    fn allow_star_does_not_shadow_a_rule_naming_an_address() {
        let text = with_budgets(
            r#"network:
  rules:
    - { id: any, effect: allow, hosts: ["*"], ports: [80] }
    - { id: lan, effect: allow, cidrs: ["10.0.0.0/8"], ports: [80] }
    - { id: named, effect: allow, hosts: ["example.com"], ports: [80] }
  quotas: { connections: 4, egress_bytes: 1MiB }
"#,
        );
        let report = lint(&text);
        assert_eq!(count(&report, "shadowed-rule"), 1, "{report:#?}");
        assert_eq!(count(&report, "broad-net-grant"), 1);
    }

    #[test]
    fn broad_fs_grant() {
        for (glob, fires) in [
            ("/**", true),
            ("/*", true),
            ("/*/x", true),
            ("/data/**", false),
            ("/data", false),
        ] {
            let text = with_budgets(&format!(
                "filesystem:\n  mounts: [{{ guest: /data, host: ./d }}]\n  rules: [{{ id: r, effect: allow, ops: [read], paths: [\"{glob}\"] }}]\n  quotas: {{ read_bytes: 1MiB }}\n"
            ));
            let report = lint(&text);
            assert_eq!(
                count(&report, "broad-fs-grant"),
                usize::from(fires),
                "{glob}: {report:#?}"
            );
        }
        // Deny rules may be as broad as they like.
        let text = with_budgets(
            "filesystem:\n  mounts: [{ guest: /data, host: ./d }]\n  rules:\n    - { id: r, effect: allow, ops: [read], paths: [\"/data/**\"] }\n    - { id: d, effect: deny, ops: [read], paths: [\"/**/.git/**\"] }\n",
        );
        assert_eq!(count(&lint(&text), "broad-fs-grant"), 0);
    }

    #[test]
    fn broad_net_grant() {
        for (rule, fires) in [
            (r#"hosts: ["*"]"#, true),
            (r#"cidrs: ["0.0.0.0/0"]"#, true),
            (r#"cidrs: ["::/0"]"#, true),
            (r#"hosts: ["*.example.com"]"#, false),
            (r#"cidrs: ["10.0.0.0/8"]"#, false),
        ] {
            let text = with_budgets(&format!(
                "network:\n  rules: [{{ id: r, effect: allow, {rule}, ports: [443] }}]\n  quotas: {{ connections: 1, egress_bytes: 1 }}\n"
            ));
            let report = lint(&text);
            assert_eq!(
                count(&report, "broad-net-grant"),
                usize::from(fires),
                "{rule}: {report:#?}"
            );
            assert_eq!(report.findings.len(), usize::from(fires), "{report:#?}");
        }
    }

    #[test]
    fn rw_mount_without_write_quota() {
        let policy = |quota: &str| {
            with_budgets(&format!(
                "filesystem:\n  mounts: [{{ guest: /out, host: ./o, mode: rw }}]\n  rules: [{{ id: w, effect: allow, ops: [write], paths: [\"/out/**\"] }}]\n{quota}"
            ))
        };
        assert_eq!(count(&lint(&policy("")), "rw-mount-without-write-quota"), 1);
        let quota = "  quotas: { write_bytes: 1MiB }\n";
        assert_eq!(
            count(&lint(&policy(quota)), "rw-mount-without-write-quota"),
            0
        );
    }

    #[test]
    fn missing_and_unbounded_budgets() {
        let report = lint("version: 1\n");
        assert_eq!(ids(&report), ["missing-budget"; 3]);
        assert!(report.findings.iter().all(|f| f.span == Span::UNKNOWN));
        assert!(report.findings[0].message.contains("`budgets.fuel`"));
        assert!(report.findings[0].message.contains("100_000_000"));
        assert!(report.findings[2].message.contains("64MiB"));

        let report = lint("version: 1\nbudgets:\n  fuel: 1000\n");
        assert_eq!(ids(&report), ["missing-budget"; 2]);
        assert!(report
            .findings
            .iter()
            .all(|f| f.span == Span { line: 2, column: 1 }));
        let report = lint("version: 1\nbudgets: { fuel: 1000 }\n");
        assert!(report
            .findings
            .iter()
            .all(|f| f.span == Span { line: 2, column: 1 }));
        // A key that is not at the start of a line keeps the place of the value.
        let report = lint("{ version: 1, budgets: { fuel: 1000 } }\n");
        assert_eq!(ids(&report), ["missing-budget"; 2]);
        assert!(
            report.findings.iter().all(|f| f.span.line == 1),
            "{report:#?}"
        );

        let report = lint(
            "version: 1\nbudgets:\n  fuel: 20_000_000_000\n  timeout_ms: 600_001\n  memory_bytes: 5GiB\n",
        );
        assert_eq!(ids(&report), ["unbounded-budget"; 3]);
        assert_eq!(report.findings[0].span.line, 3);
        assert!(
            report.findings[2].message.contains("5GiB"),
            "{}",
            report.findings[2].message
        );

        let at_ceiling = "version: 1\nbudgets:\n  fuel: 10_000_000_000\n  timeout_ms: 600_000\n  memory_bytes: 4GiB\n";
        assert!(lint(at_ceiling).findings.is_empty());
    }

    #[test]
    fn net_allow_without_quota() {
        let policy = |quotas: &str| {
            with_budgets(&format!(
                "network:\n  rules: [{{ id: api, effect: allow, hosts: [\"api.example.com\"], ports: [443] }}]\n{quotas}"
            ))
        };
        assert_eq!(count(&lint(&policy("")), "net-allow-without-quota"), 2);
        assert_eq!(
            count(
                &lint(&policy("  quotas: { connections: 2 }\n")),
                "net-allow-without-quota"
            ),
            1
        );
        let full = "  quotas: { connections: 2, egress_bytes: 1KiB }\n";
        assert!(lint(&policy(full)).findings.is_empty());
        // Deny rules alone need no quota.
        let deny =
            with_budgets("network:\n  rules: [{ id: d, effect: deny, hosts: [\"x.com\"] }]\n");
        assert!(lint(&deny).findings.is_empty());
    }

    #[test]
    fn audit_mode() {
        let report = lint(&with_budgets("mode: audit\n"));
        assert_eq!(ids(&report), ["audit-mode"]);
        assert_eq!(report.findings[0].span.line, 3);
        assert!(lint(&with_budgets("mode: enforce\n")).findings.is_empty());
    }

    #[test]
    fn unused_mount_and_rule_outside_mounts() {
        let text = with_budgets(
            r#"filesystem:
  mounts:
    - { guest: /data, host: ./d }
    - { guest: /cache, host: ./c }
    - { guest: /deep/nested, host: ./n }
  rules:
    - { id: r, effect: allow, ops: [read], paths: ["/data/**", "/etc/passwd", "/*.conf"] }
    - { id: n, effect: allow, ops: [read], paths: ["/deep/*/x.txt"] }
    - { id: cache-deny, effect: deny, ops: [read], paths: ["/cache/**"] }
  quotas: { read_bytes: 1MiB }
"#,
        );
        let report = lint(&text);
        let unused: Vec<&str> = report
            .findings
            .iter()
            .filter(|f| f.lint_id == "unused-mount")
            .map(|f| f.message.as_str())
            .collect();
        assert_eq!(unused, ["mount `/cache` is not reached by any allow rule"]);
        let outside: Vec<&str> = report
            .findings
            .iter()
            .filter(|f| f.lint_id == "rule-outside-mounts")
            .map(|f| f.message.as_str())
            .collect();
        assert_eq!(outside.len(), 2, "{outside:#?}");
        assert!(outside[0].contains("`/etc/passwd`"));
        assert!(outside[1].contains("`/*.conf`"));
    }

    #[test]
    fn rules_without_mounts_are_outside() {
        let text = with_budgets(
            "filesystem:\n  rules: [{ id: r, effect: deny, ops: [read], paths: [\"/data/**\"] }]\n",
        );
        assert_eq!(ids(&lint(&text)), ["rule-outside-mounts"]);
    }

    #[test]
    fn reaches_is_segment_exact() {
        let g = |t: &str| GlobPattern::parse(t).unwrap();
        let work = Work::new();
        let reaches = |glob: &GlobPattern, mount: &str| reaches(glob, mount, &work);
        assert!(reaches(&g("/**"), "/data"));
        assert!(reaches(&g("/*"), "/data"));
        assert!(reaches(&g("/data"), "/data"));
        assert!(reaches(&g("/data/x/**"), "/data"));
        assert!(reaches(&g("/d*/x"), "/data"));
        assert!(reaches(&g("/**/x"), "/a/b/c"));
        assert!(reaches(&g("/a/**/c/**"), "/a/b/c/d"));
        assert!(!reaches(&g("/data-x/**"), "/data"));
        assert!(!reaches(&g("/"), "/data"));
        assert!(!reaches(&g("/a/b"), "/a/b/c"));
        assert!(!reaches(&g("/*.txt"), "/data"));
        for (pattern, name, expected) in [
            ("a", "a", true),
            ("a", "ab", false),
            ("a*", "abc", true),
            ("*c", "abc", true),
            ("a*c", "ac", true),
            ("a*b*c", "axbyc", true),
            ("a*b*c", "axcyb", false),
            ("ab*ba", "aba", false),
            ("*.x1", "m5", false),
        ] {
            assert_eq!(segment_matches(pattern, name), expected, "{pattern} {name}");
            // The same answer as the policy's own glob matcher.
            let glob = GlobPattern::parse(&format!("/{pattern}")).unwrap();
            assert_eq!(
                glob.matches(&format!("/{name}")),
                expected,
                "{pattern} {name}"
            );
        }
        // Many `**` segments stay cheap.
        let many = format!("/{}", vec!["**"; 500].join("/"));
        assert!(reaches(&g(&many), "/a/b/c/d/e/f/g/h"));
    }

    #[test]
    fn huge_policies_stay_fast_and_sound() {
        // Thousands of rules in one folder: more pairs than the coverage budget allows.
        let mut text = with_budgets(
            "filesystem:\n  mounts: [{ guest: /data, host: ./d }]\n  quotas: { read_bytes: 1 }\n  rules:\n",
        );
        for i in 0..3000 {
            text.push_str(&format!(
                "    - {{ id: r{i}, effect: allow, ops: [read, write], paths: [\"/data/*.x{i}\"] }}\n"
            ));
        }
        text.push_str("    - { id: last, effect: allow, ops: [read], paths: [\"/data/a.x1\"] }\n");
        text.push_str("network:\n  quotas: { connections: 1, egress_bytes: 1 }\n  rules:\n");
        for i in 0..3000 {
            text.push_str(&format!(
                "    - {{ id: n{i}, effect: allow, hosts: [\"h{i}.example.com\"], ports: [443] }}\n"
            ));
        }
        let report = lint(&text);
        // Only the mount folder: a spent budget misses shadowed rules, never invents them.
        assert_eq!(
            ids(&report),
            ["missing-mount-folder"],
            "{:#?}",
            &report.findings
        );

        // Thousands of mounts that no rule reaches: some are reported, the rest are missed.
        let mut text = with_budgets("filesystem:\n  quotas: { read_bytes: 1 }\n  mounts:\n");
        for i in 0..2000 {
            // Distinct host folders: the same folder twice would be `overlapping-mounts`.
            text.push_str(&format!("    - {{ guest: /data/m{i}, host: ./m{i} }}\n"));
        }
        text.push_str("  rules:\n");
        for i in 0..3000 {
            text.push_str(&format!(
                "    - {{ id: r{i}, effect: allow, ops: [read], paths: [\"/data/*.x{i}\"] }}\n"
            ));
        }
        let report = lint(&text);
        let unused = count(&report, "unused-mount");
        assert!(unused > 0 && unused < 2000, "{unused}");
        assert_eq!(count(&report, "missing-mount-folder"), 2000);
        assert_eq!(report.findings.len(), 2000 + unused);
    }

    #[test]
    fn missing_mount_folder_depends_on_the_host() {
        let dir = std::env::temp_dir().join(format!("sandbox-lint-unit-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("file"), b"x").unwrap();
        let text = with_budgets(
            "filesystem:\n  mounts:\n    - { guest: /data, host: ./data }\n    - { guest: /f, host: ./file }\n    - { guest: /m, host: ./missing }\n  rules: [{ id: r, effect: allow, ops: [read], paths: [\"/**\"] }]\n  quotas: { read_bytes: 1MiB }\n",
        );
        let report = lint_policy_text(&text, &dir.join("policy.yaml"));
        std::fs::remove_dir_all(&dir).unwrap();
        let messages: Vec<&str> = report
            .findings
            .iter()
            .filter(|f| f.lint_id == "missing-mount-folder")
            .map(|f| f.message.as_str())
            .collect();
        assert_eq!(
            messages,
            [
                "host path `./file` of mount `/f` is not a folder",
                "host folder `./missing` of mount `/m` does not exist"
            ]
        );
    }

    #[test]
    fn findings_are_sorted_by_place_then_id() {
        let report = lint(&clean());
        let mut sorted = report.findings.clone();
        sorted.sort_by_key(|f| (f.span.line, f.span.column, f.lint_id));
        assert_eq!(report.findings, sorted);
    }

    #[test]
    fn every_warning_id_is_described() {
        let mut ids: Vec<&str> = WARNING_LINTS.iter().map(|(id, _)| *id).collect();
        let before = ids.clone();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids, before, "WARNING_LINTS stays sorted and unique");
        assert_eq!(describe_lint("nope"), "a problem in the policy");
    }

    #[test]
    fn text_rendering_neutralises_escapes_and_survives_odd_spans() {
        let report = LintReport {
            findings: vec![
                Finding {
                    lint_id: "syntax",
                    severity: Severity::Error,
                    span: Span {
                        line: 1,
                        column: u32::MAX,
                    },
                    message: "bad \u{1b}[31mred".into(),
                    hint: "fix".into(),
                },
                Finding {
                    lint_id: "syntax",
                    severity: Severity::Error,
                    span: Span {
                        line: 99,
                        column: 1,
                    },
                    message: "past the end".into(),
                    hint: "fix".into(),
                },
            ],
        };
        let text = render_text(&report, "a\tb\u{1b}c\n", "p.yaml");
        assert!(!text.contains('\u{1b}'));
        assert!(text.contains("1 | a b\u{fffd}c\n  |      ^\n"), "{text}");
        assert!(text.contains("--> p.yaml:99:1\n"), "{text}");
        assert!(text.ends_with("2 errors, 0 warnings\n"));
        let sarif: serde_json::Value =
            serde_json::from_str(&render_sarif(&report, "my dir/p.yaml", false)).unwrap();
        let location = &sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"];
        assert_eq!(location["artifactLocation"]["uri"], "my%20dir/p.yaml");
    }

    #[test]
    fn number_formats() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1_000");
        assert_eq!(group_digits(10_000_000_000), "10_000_000_000");
        assert_eq!(format_size(64 << 20), "64MiB");
        assert_eq!(format_size(4 << 30), "4GiB");
        assert_eq!(format_size(1000), "1_000");
        assert_eq!(format_size(0), "0");
    }
}
