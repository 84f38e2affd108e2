//! `policy fix`: merges the changes `explain` suggests for a report's denies into the policy
//! text (editing lines, so comments and layout stay), writes the result, and proves it by
//! replaying the report under it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{anyhow, Context};
use sandbox_policy::replay::replay as replay_events;
use sandbox_policy::{FsAccess, Policy, ReasonCode, Request, Span, Verdict};
use sandbox_runtime::report::{Report, ReportEvent};

use crate::args::FixArgs;
use crate::explain::{names_one_path, ops_together, round_size, slug, with_headroom};
use crate::output::OutputFile;
use crate::policy_load::{load_policy, Mounts};
use crate::text::{neutralize, one_line, yaml_quoted};
use crate::Exit;

/// What the fix changes, merged over every chosen deny.
#[derive(Default)]
struct Plan {
    /// Path → operations to allow on exactly it.
    fs_rules: BTreeMap<String, BTreeSet<&'static str>>,
    /// Host → ports to allow.
    net_rules: BTreeMap<String, BTreeSet<u16>>,
    /// Mounts to make read-write.
    mounts_rw: BTreeSet<String>,
    /// Filesystem quota key → bytes the run needs (before headroom).
    fs_quotas: BTreeMap<&'static str, u64>,
    /// Network quota key → what the run needs.
    net_quotas: BTreeMap<&'static str, u64>,
    /// Denies left as they are, with why.
    kept: Vec<(u64, String)>,
}

/// Runs `policy fix`.
pub fn fix(args: FixArgs) -> anyhow::Result<Exit> {
    let output = OutputFile::check(&args.output, "fixed policy")?;
    let report_text = std::fs::read_to_string(&args.report_file)
        .with_context(|| format!("cannot read report `{}`", args.report_file.display()))?;
    let report = sandbox_runtime::verify_report(&report_text)
        .map_err(|e| anyhow!("report `{}`: {e}", args.report_file.display()))?;
    let (policy, bytes) = load_policy(&args.policy, Mounts::MayBeMissing)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow!("policy `{}` is not UTF-8 text", args.policy.display()))?;
    let chosen = chosen_events(&report, &args.event_index)?;
    let plan = plan(&report, &chosen, &policy, !args.event_index.is_empty());
    let merged = apply(&plan, &policy, &text).map_err(|e| {
        anyhow!(
            "cannot merge the changes into `{}`: {e}",
            args.policy.display()
        )
    })?;
    let folder = args
        .policy
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fixed = sandbox_policy::parse_policy(&merged, folder)
        .map_err(|e| anyhow!("the merged policy does not parse (a bug in `policy fix`): {e}"))?;
    output.write(merged.as_bytes())?;
    warn_relative_mounts(&policy, folder, &args.output);
    let still = still_denied(&report, &chosen, &fixed, &plan);
    say(&args, &plan, &chosen, &still);
    Ok(if still.is_empty() {
        Exit::Ok
    } else {
        Exit::Failure
    })
}

/// The denies to fix: those named by `--event-index`, else every deny.
fn chosen_events<'a>(
    report: &'a Report,
    indexes: &[usize],
) -> anyhow::Result<Vec<&'a ReportEvent>> {
    if indexes.is_empty() {
        return Ok(report
            .events
            .iter()
            .filter(|e| e.decision == Verdict::Deny)
            .collect());
    }
    indexes
        .iter()
        .map(|&i| {
            let e = report.events.get(i).ok_or_else(|| {
                anyhow!(
                    "the report has {} recorded events; event {i} is out of range (0-based)",
                    report.events.len()
                )
            })?;
            match e.decision {
                Verdict::Deny => Ok(e),
                Verdict::Allow => Err(anyhow!("event {i} was allowed: there is nothing to fix")),
            }
        })
        .collect()
}

fn plan(report: &Report, chosen: &[&ReportEvent], policy: &Policy, named: bool) -> Plan {
    let mut plan = Plan::default();
    let u = &report.usage;
    for event in chosen {
        let keep = |plan: &mut Plan, why: String| plan.kept.push((event.seq, why));
        match (event.reason_code, &event.request) {
            (ReasonCode::FsPathNotAllowed, Some(Request::Fs(r))) => {
                if policy.filesystem.rules.iter().any(|rule| rule.id == event.rule_id) {
                    keep(&mut plan, format!("deny rule `{}` matched it on purpose", event.rule_id));
                    continue;
                }
                let path = sandbox_policy::normalize_guest_path(r.path.as_bytes())
                    .unwrap_or_else(|_| r.path.clone());
                if !names_one_path(&path) {
                    keep(&mut plan, "its path cannot be named exactly by a rule".into());
                    continue;
                }
                let op = match r.op {
                    FsAccess::Stat => "read",
                    other => other.as_str(),
                };
                let ops = plan.fs_rules.entry(path).or_default();
                ops.extend(ops_together(op).split(", ").map(static_op));
                if r.op.mutates() {
                    *plan.fs_quotas.entry("write_bytes").or_insert(u.fs_write_bytes) += r.bytes;
                } else {
                    *plan.fs_quotas.entry("read_bytes").or_insert(u.fs_read_bytes) += r.bytes;
                }
            }
            (ReasonCode::FsReadOnlyMount, Some(Request::Fs(r))) if named => {
                let Some(guest) = event.rule_id.strip_prefix("filesystem.mount:") else {
                    continue;
                };
                plan.mounts_rw.insert(guest.to_owned());
                let path = sandbox_policy::normalize_guest_path(r.path.as_bytes())
                    .unwrap_or_else(|_| r.path.clone());
                if names_one_path(&path) {
                    let ops = plan.fs_rules.entry(path).or_default();
                    ops.extend(["write", "create"]);
                }
                *plan.fs_quotas.entry("write_bytes").or_insert(u.fs_write_bytes) += r.bytes;
            }
            (ReasonCode::FsReadOnlyMount, _) => keep(
                &mut plan,
                "its mount is read-only; name the event with `--event-index` to make the mount `rw`".into(),
            ),
            (ReasonCode::FsReadQuotaExceeded | ReasonCode::FsWriteQuotaExceeded, Some(Request::Fs(r))) => {
                let (key, used) = match event.reason_code {
                    ReasonCode::FsReadQuotaExceeded => ("read_bytes", u.fs_read_bytes),
                    _ => ("write_bytes", u.fs_write_bytes),
                };
                *plan.fs_quotas.entry(key).or_insert(used) += r.bytes;
            }
            (ReasonCode::NetHostNotAllowed | ReasonCode::NetPortNotAllowed, Some(Request::Net(r))) => {
                let host = sandbox_policy::normalize_host(&r.host);
                if !matches!(
                    sandbox_policy::HostPattern::parse(&host),
                    Ok(sandbox_policy::HostPattern::Exact(_) | sandbox_policy::HostPattern::Address(_))
                ) {
                    keep(&mut plan, "its host is not a name a rule can list".into());
                    continue;
                }
                plan.net_rules.entry(host).or_default().insert(r.port);
            }
            (ReasonCode::NetConnectionQuotaExceeded, _) => {
                *plan.net_quotas.entry("connections").or_insert(u.net_connections) += 1;
            }
            (ReasonCode::NetEgressQuotaExceeded, Some(Request::Net(r))) => {
                *plan.net_quotas.entry("egress_bytes").or_insert(u.net_egress_bytes) += r.bytes;
            }
            (ReasonCode::NetIngressQuotaExceeded, Some(Request::Net(r))) => {
                *plan.net_quotas.entry("ingress_bytes").or_insert(u.net_ingress_bytes) += r.bytes;
            }
            (reason, _) => keep(&mut plan, format!("{reason}: {}", reason.remedy())),
        }
    }
    // A quota the policy leaves out means no byte limit: nothing to raise. A mount made `rw`
    // gets a write quota, as lint asks of every writable mount.
    let fs = &policy.filesystem.quotas;
    let rw = !plan.mounts_rw.is_empty();
    plan.fs_quotas.retain(|key, need| {
        let current = if *key == "read_bytes" {
            fs.read_bytes
        } else {
            fs.write_bytes
        };
        match current {
            Some(c) => c.value < *need,
            None => rw && *key == "write_bytes",
        }
    });
    let net = &policy.network.quotas;
    plan.net_quotas.retain(|key, need| {
        let current = match *key {
            "connections" => net.connections,
            "egress_bytes" => net.egress_bytes,
            _ => net.ingress_bytes,
        };
        current.is_some_and(|c| c.value < *need)
    });
    plan
}

fn static_op(op: &str) -> &'static str {
    match op {
        "read" => "read",
        "write" => "write",
        "create" => "create",
        "delete" => "delete",
        "list" => "list",
        "rename" => "rename",
        _ => "symlink",
    }
}

/// Replays the report under the fixed policy: the chosen denies that the plan meant to
/// allow and that are still denied.
fn still_denied(report: &Report, chosen: &[&ReportEvent], fixed: &Policy, plan: &Plan) -> Vec<u64> {
    // The report's events are the type replay reads.
    let replayed = replay_events(fixed, &report.events);
    let kept: BTreeSet<u64> = plan.kept.iter().map(|(seq, _)| *seq).collect();
    let targets: BTreeSet<u64> = chosen
        .iter()
        .map(|e| e.seq)
        .filter(|seq| !kept.contains(seq))
        .collect();
    replayed
        .events
        .iter()
        .filter(|r| targets.contains(&r.seq))
        .filter(|r| r.new.decision == Verdict::Deny && r.new.enforced)
        .map(|r| r.seq)
        .collect()
}

fn say(args: &FixArgs, plan: &Plan, chosen: &[&ReportEvent], still: &[u64]) {
    let mut out = format!(
        "fixed policy written to `{}`: {} filesystem {}, {} network {}, {} {} made `rw`, {} {} raised\n",
        args.output.display(),
        plan.fs_rules.len(),
        plural(plan.fs_rules.len(), "rule", "rules"),
        plan.net_rules.len(),
        plural(plan.net_rules.len(), "rule", "rules"),
        plan.mounts_rw.len(),
        plural(plan.mounts_rw.len(), "mount", "mounts"),
        plan.fs_quotas.len() + plan.net_quotas.len(),
        plural(plan.fs_quotas.len() + plan.net_quotas.len(), "quota", "quotas"),
    );
    let fixed = chosen.len() - plan.kept.len() - still.len();
    out.push_str(&format!(
        "replay of `{}` under it: {fixed} of {} {} now allowed\n",
        args.report_file.display(),
        chosen.len(),
        plural(chosen.len(), "deny", "denies")
    ));
    for (seq, why) in &plan.kept {
        out.push_str(&format!("  event {seq}: left denied: {}\n", one_line(why)));
    }
    for seq in still {
        out.push_str(&format!(
            "  event {seq}: still denied under the fixed policy\n"
        ));
    }
    out!("{}", neutralize(&out));
    if !still.is_empty() {
        errln!(
            "error: the fixed policy still denies {} of the chosen {}; see `sandbox-cli policy replay --report-file {} --policy {}`",
            still.len(),
            plural(chosen.len(), "deny", "denies"),
            neutralize(&args.report_file.display().to_string()),
            neutralize(&args.output.display().to_string())
        );
    }
}

/// Relative mount folders are taken from the policy file's folder: written elsewhere, the
/// fixed policy would mount other folders.
fn warn_relative_mounts(policy: &Policy, policy_folder: &Path, output: &Path) {
    let out_folder = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let same = match (policy_folder.canonicalize(), out_folder.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let relative = policy
        .filesystem
        .mounts
        .iter()
        .any(|m| Path::new(&m.host).is_relative());
    if !same && relative {
        errln!(
            "warning: `{}` is in another folder than `{}`: its relative mount folders are taken from its own folder",
            neutralize(&output.display().to_string()),
            neutralize(&policy_folder.display().to_string())
        );
    }
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// The policy text with the plan merged in.
fn apply(plan: &Plan, policy: &Policy, text: &str) -> Result<String, String> {
    let mut doc = Lines::new(text);
    for guest in &plan.mounts_rw {
        let mount = policy
            .filesystem
            .mounts
            .iter()
            .find(|m| &m.guest == guest)
            .ok_or_else(|| format!("mount `{guest}` is not in the policy"))?;
        doc.set_mount_rw(mount.span)?;
    }
    let fs_quota_spans = [
        (
            "read_bytes",
            policy.filesystem.quotas.read_bytes.and_then(|q| q.span),
        ),
        (
            "write_bytes",
            policy.filesystem.quotas.write_bytes.and_then(|q| q.span),
        ),
    ];
    for (key, need) in &plan.fs_quotas {
        let value = round_size(with_headroom(*need));
        doc.set_quota("filesystem", &fs_quota_spans, key, &value)?;
    }
    let q = &policy.network.quotas;
    let net_quota_spans = [
        ("connections", q.connections.and_then(|s| s.span)),
        ("egress_bytes", q.egress_bytes.and_then(|s| s.span)),
        ("ingress_bytes", q.ingress_bytes.and_then(|s| s.span)),
    ];
    for (key, need) in &plan.net_quotas {
        let value = match *key {
            "connections" => need.to_string(),
            _ => round_size(with_headroom(*need)),
        };
        doc.set_quota("network", &net_quota_spans, key, &value)?;
    }
    let fs_items: Vec<String> = plan
        .fs_rules
        .iter()
        .map(|(path, ops)| {
            let ops: Vec<&str> = FS_ORDER
                .iter()
                .copied()
                .filter(|o| ops.contains(o))
                .collect();
            let ops = ops.join(", ");
            format!(
                "{{ id: fix-{}-{}, effect: allow, ops: [{ops}], paths: [{}] }}",
                slug(&ops),
                slug(path),
                yaml_quoted(path)
            )
        })
        .collect();
    let last_fs = policy
        .filesystem
        .rules
        .iter()
        .map(|r| r.span)
        .max_by_key(|s| s.line);
    doc.add_rules("filesystem", last_fs, &fs_items)?;
    let net_items: Vec<String> = plan
        .net_rules
        .iter()
        .map(|(host, ports)| {
            let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
            format!(
                "{{ id: fix-{}, effect: allow, hosts: [{}], ports: [{}] }}",
                slug(host),
                yaml_quoted(host),
                ports.join(", ")
            )
        })
        .collect();
    let last_net = policy
        .network
        .rules
        .iter()
        .map(|r| r.span)
        .max_by_key(|s| s.line);
    doc.add_rules("network", last_net, &net_items)?;
    Ok(doc.text())
}

/// Operations in the order the policy format lists them.
const FS_ORDER: [&str; 7] = [
    "read", "write", "create", "delete", "list", "rename", "symlink",
];

/// Policy text as lines, edited in place.
struct Lines {
    lines: Vec<String>,
    trailing_newline: bool,
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

impl Lines {
    fn new(text: &str) -> Lines {
        Lines {
            lines: text.lines().map(str::to_owned).collect(),
            trailing_newline: text.ends_with('\n') || text.is_empty(),
        }
    }

    fn text(&self) -> String {
        let mut text = self.lines.join("\n");
        if self.trailing_newline {
            text.push('\n');
        }
        text
    }

    /// The index of the top-level `section:` line, if the policy has one in block style.
    fn section(&self, name: &str) -> Option<usize> {
        let key = format!("{name}:");
        self.lines.iter().position(|l| {
            l.starts_with(&key) && l[key.len()..].trim_start().split('#').next() == Some("")
        })
    }

    /// The index after the last line of the block that starts at `start` (lines indented more
    /// than `start`'s, skipping trailing blank lines and comments).
    fn block_end(&self, start: usize) -> usize {
        let base = indent_of(&self.lines[start]);
        let mut end = start + 1;
        let mut i = start + 1;
        while i < self.lines.len() {
            let line = &self.lines[i];
            if !is_blank_or_comment(line) {
                if indent_of(line) <= base {
                    break;
                }
                end = i + 1;
            }
            i += 1;
        }
        end
    }

    fn line_index(&self, span: Span) -> Result<usize, String> {
        let i = (span.line as usize)
            .checked_sub(1)
            .ok_or("a place is unknown")?;
        if i < self.lines.len() {
            Ok(i)
        } else {
            Err(format!("line {} is past the end", span.line))
        }
    }

    /// Makes the mount at `span` read-write.
    fn set_mount_rw(&mut self, span: Span) -> Result<(), String> {
        let i = self.line_index(span)?;
        let end = self.block_end(i).max(i + 1);
        for j in i..end {
            for ro in ["mode: ro", "mode: \"ro\"", "mode: 'ro'"] {
                if self.lines[j].contains(ro) {
                    self.lines[j] = self.lines[j].replacen(ro, "mode: rw", 1);
                    return Ok(());
                }
            }
        }
        // No mode written: it defaulted to read-only.
        let line = &mut self.lines[i];
        match line.rfind('}') {
            Some(close) => {
                let head = line[..close].trim_end().to_owned();
                *line = format!("{head}, mode: rw {}", &line[close..]);
                Ok(())
            }
            None => Err("the mount is not written as `{ guest: .., host: .. }`".into()),
        }
    }

    /// Sets `key` of `section.quotas` to `value`: its value replaced where it is written,
    /// else added beside the section's other quotas, else a new `quotas:` line.
    fn set_quota(
        &mut self,
        section: &str,
        spans: &[(&str, Option<Span>)],
        key: &str,
        value: &str,
    ) -> Result<(), String> {
        if let Some((_, Some(span))) = spans.iter().find(|(k, _)| *k == key) {
            return self.set_value(*span, value);
        }
        if let Some(span) = spans.iter().find_map(|(_, s)| *s) {
            let i = self.line_index(span)?;
            let line = &self.lines[i];
            if let Some(close) = line.rfind('}') {
                let head = line[..close].trim_end().to_owned();
                self.lines[i] = format!("{head}, {key}: {value} {}", &line[close..]);
            } else {
                let pad = " ".repeat(indent_of(line));
                self.lines.insert(i + 1, format!("{pad}{key}: {value}"));
            }
            return Ok(());
        }
        let new = format!("  quotas: {{ {key}: {value} }}");
        match self.section(section) {
            Some(s) => {
                let end = self.block_end(s);
                self.lines.insert(end, new);
            }
            None => {
                self.lines.push(format!("{section}:"));
                self.lines.push(new);
            }
        }
        Ok(())
    }

    /// Replaces the scalar that starts at `span` (up to `,`, `}`, a comment or the line's end).
    fn set_value(&mut self, span: Span, value: &str) -> Result<(), String> {
        let i = self.line_index(span)?;
        let line = &self.lines[i];
        let start = line
            .char_indices()
            .nth((span.column as usize).saturating_sub(1))
            .map(|(b, _)| b)
            .ok_or("a value's column is past its line")?;
        let rest = &line[start..];
        let len = rest.find([',', '}', '#']).unwrap_or(rest.len());
        let token = rest[..len].trim_end();
        self.lines[i] = format!("{}{value}{}", &line[..start], &line[start + token.len()..]);
        Ok(())
    }

    /// Appends list items to `section.rules`: after the last rule, else in a new `rules:`.
    fn add_rules(
        &mut self,
        section: &str,
        last: Option<Span>,
        items: &[String],
    ) -> Result<(), String> {
        if items.is_empty() {
            return Ok(());
        }
        if let Some(span) = last {
            let i = self.line_index(span)?;
            let line = &self.lines[i];
            let dash = line
                .find("- ")
                .ok_or("the last rule is not a `- ` list item")?;
            let prefix = format!("{}- ", " ".repeat(dash));
            let end = self.block_end_from(i, dash);
            for (k, item) in items.iter().enumerate() {
                self.lines.insert(end + k, format!("{prefix}{item}"));
            }
            return Ok(());
        }
        let mut new = vec!["  rules:".to_owned()];
        new.extend(items.iter().map(|item| format!("    - {item}")));
        let at = match self.section(section) {
            Some(s) => self.block_end(s),
            None => {
                self.lines.push(format!("{section}:"));
                self.lines.len()
            }
        };
        for (k, line) in new.into_iter().enumerate() {
            self.lines.insert(at + k, line);
        }
        Ok(())
    }

    /// The index after list item `start`, whose dash is at column `dash`.
    fn block_end_from(&self, start: usize, dash: usize) -> usize {
        let mut end = start + 1;
        for (i, line) in self.lines.iter().enumerate().skip(start + 1) {
            if is_blank_or_comment(line) {
                continue;
            }
            if indent_of(line) <= dash {
                break;
            }
            end = i + 1;
        }
        end
    }
}
