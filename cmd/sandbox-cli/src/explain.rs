//! `explain`: one event in words a person can act on: what was decided, by which rule, why,
//! the policy lines involved, and the smallest policy change that would allow it.

use std::path::PathBuf;

use anyhow::anyhow;
use sandbox_policy::{FsAccess, Policy, ReasonCode, Request, Span, Verdict};
use sandbox_runtime::report::ReportEvent;
use serde::Serialize;
use serde_json::Value;

use crate::args::{ExplainArgs, TextOrJson};
use crate::text::{neutralize, one_line, shown, to_json, yaml_quoted};
use crate::Exit;

#[derive(Serialize)]
struct PolicyLine {
    line: u32,
    column: u32,
    text: String,
}

#[derive(Serialize)]
struct Suggestion {
    summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    yaml: Option<String>,
}

#[derive(Serialize)]
struct Explanation {
    event_index: u64,
    decision: Verdict,
    enforced: bool,
    capability: String,
    rule_id: String,
    reason_code: ReasonCode,
    meaning: String,
    context: serde_json::Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<String>,
    policy_lines: Vec<PolicyLine>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<String>,
    suggestion: Suggestion,
}

pub fn explain(args: ExplainArgs) -> anyhow::Result<Exit> {
    let mut notes = Vec::new();
    let (event, report_policy) = match (&args.event_json, &args.report_file) {
        (Some(path), _) => {
            let text = crate::bounded::read_text(path, "event", crate::bounded::MAX_REPORT_BYTES)?;
            let event: ReportEvent = sandbox_runtime::report::read_event(&text)
                .map_err(|e| anyhow!("event `{}` is not a report event: {e}", path.display()))?;
            notes.push("a lone event cannot be checked against its report's hash chain".to_owned());
            (event, None)
        }
        (None, Some(path)) => {
            let text = crate::bounded::read_text(path, "report", crate::bounded::MAX_REPORT_BYTES)?;
            let report = sandbox_runtime::verify_report(&text)
                .map_err(|e| anyhow!("report `{}`: {e}", path.display()))?;
            let index = args.event_index.unwrap_or(0);
            let count = report.events.len();
            let event = report.events.into_iter().nth(index).ok_or_else(|| {
                anyhow!("report `{}` has {count} recorded events; `--event-index {index}` is out of range (0-based)", path.display())
            })?;
            (
                event,
                Some((PathBuf::from(&report.policy.path), report.policy.sha256)),
            )
        }
        (None, None) => {
            return Err(anyhow!(
                "give `--report-file` with `--event-index`, or `--event-json`"
            ))
        }
    };

    let policy_path = args
        .policy
        .clone()
        .or_else(|| report_policy.as_ref().map(|(p, _)| p.clone()));
    let mut policy_lines = Vec::new();
    let mut loaded: Option<Policy> = None;
    if let Some(path) = &policy_path {
        match crate::bounded::load_policy(path) {
            Ok((policy, text)) => {
                if let Some((_, sha)) = &report_policy {
                    if *sha != sandbox_runtime::sha256_hex(text.as_bytes()) && args.policy.is_none()
                    {
                        notes.push(format!(
                            "policy `{}` has changed since the run; its lines may not match",
                            path.display()
                        ));
                    }
                }
                for span in spans_for(&policy, &event) {
                    if let Some(line) = text.lines().nth(span.line.saturating_sub(1) as usize) {
                        policy_lines.push(PolicyLine {
                            line: span.line,
                            column: span.column,
                            text: line.to_owned(),
                        });
                    }
                }
                loaded = Some(policy);
            }
            Err(e) => notes.push(format!(
                "policy `{}` could not be read: {e}",
                path.display()
            )),
        }
    }

    let explanation = Explanation {
        event_index: event.seq,
        decision: event.decision,
        enforced: event.enforced,
        capability: event.capability.clone(),
        rule_id: event.rule_id.clone(),
        reason_code: event.reason_code,
        meaning: event.reason_code.meaning().to_owned(),
        context: event.context.clone(),
        policy: policy_path.map(|p| p.display().to_string()),
        policy_lines,
        notes,
        suggestion: suggest(&event, loaded.as_ref()),
    };
    match args.format {
        TextOrJson::Json => print!("{}", to_json(&explanation, args.pretty)?),
        TextOrJson::Text => print!("{}", neutralize(&render_text(&explanation))),
    }
    Ok(Exit::Ok)
}

/// The places in the policy that decided an event: its rule, or for a built-in default the
/// lines that came closest (the mounts, or the rules that cover the path for other operations).
fn spans_for(policy: &Policy, event: &ReportEvent) -> Vec<Span> {
    let rule_id = event.rule_id.as_str();
    let fs = &policy.filesystem;
    let net = &policy.network;
    if rule_id == "filesystem.mounts" {
        return fs.mounts.iter().map(|m| m.span).collect();
    }
    if rule_id == "filesystem.default" {
        if let Some(Request::Fs(r)) = &event.request {
            let path = sandbox_policy::normalize_guest_path(r.path.as_bytes()).unwrap_or_default();
            return fs
                .rules
                .iter()
                .filter(|rule| {
                    rule.paths.iter().any(|g| {
                        g.matches(&path) || sandbox_policy::is_within(&path, &g.literal_prefix())
                    })
                })
                .map(|rule| rule.span)
                .collect();
        }
    }
    if let Some(rule) = fs.rules.iter().find(|r| r.id == rule_id) {
        return vec![rule.span];
    }
    if let Some(rule) = net.rules.iter().find(|r| r.id == rule_id) {
        return vec![rule.span];
    }
    if let Some(guest) = rule_id.strip_prefix("filesystem.mount:") {
        return fs
            .mounts
            .iter()
            .filter(|m| m.guest == guest)
            .map(|m| m.span)
            .collect();
    }
    let span = match rule_id {
        "budgets.fuel" => policy.budgets.fuel.span,
        "budgets.timeout_ms" => policy.budgets.timeout_ms.span,
        "budgets.memory_bytes" => policy.budgets.memory_bytes.span,
        "filesystem.quotas.read_bytes" => fs.quotas.read_bytes.and_then(|q| q.span),
        "filesystem.quotas.write_bytes" => fs.quotas.write_bytes.and_then(|q| q.span),
        "network.quotas.connections" => net.quotas.connections.and_then(|q| q.span),
        "network.quotas.egress_bytes" => net.quotas.egress_bytes.and_then(|q| q.span),
        "network.quotas.ingress_bytes" => net.quotas.ingress_bytes.and_then(|q| q.span),
        "network.default" | "network.addresses" => net.span,
        _ => None,
    };
    span.into_iter().collect()
}

fn context_u64(event: &ReportEvent, key: &str) -> Option<u64> {
    event.context.get(key).and_then(Value::as_u64)
}

/// Next size up that reads well in a policy: whole KiB or MiB.
fn round_size(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    const KIB: u64 = 1 << 10;
    if bytes >= MIB {
        format!("{}MiB", bytes.div_ceil(MIB))
    } else if bytes >= KIB {
        format!("{}KiB", bytes.div_ceil(KIB))
    } else {
        bytes.to_string()
    }
}

fn parent_dir(path: &str) -> String {
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/".to_owned(),
        Some((parent, _)) => parent.to_owned(),
    }
}

fn suggest(event: &ReportEvent, policy: Option<&Policy>) -> Suggestion {
    let plain = |summary: &str| Suggestion {
        summary: summary.to_owned(),
        yaml: None,
    };
    if event.decision == Verdict::Allow {
        return plain("nothing: the request was allowed");
    }
    let fs = match &event.request {
        Some(Request::Fs(r)) => Some(r),
        _ => None,
    };
    let net = match &event.request {
        Some(Request::Net(r)) => Some(r),
        _ => None,
    };
    let path = fs.map(|r| {
        event
            .context
            .get("resolved_path")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| {
                sandbox_policy::normalize_guest_path(r.path.as_bytes())
                    .unwrap_or_else(|_| r.path.clone())
            })
    });
    let op = fs.map(|r| match r.op {
        FsAccess::Stat => "read",
        other => other.as_str(),
    });
    match event.reason_code {
        ReasonCode::FsPathNotAllowed => {
            let (Some(path), Some(op)) = (path, op) else {
                return plain("add an allow rule for this request");
            };
            let deny_rule =
                policy.and_then(|p| p.filesystem.rules.iter().find(|r| r.id == event.rule_id));
            if let Some(rule) = deny_rule {
                return Suggestion {
                    summary: format!(
                        "deny rule `{}` matches `{path}` and deny rules always win: narrow or remove it (this is a deliberate deny; think before you do)",
                        rule.id
                    ),
                    yaml: None,
                };
            }
            if !names_one_path(&path) {
                return plain(UNNAMEABLE_PATH);
            }
            let id = format!("allow-{op}-{}", slug(&path));
            Suggestion {
                summary: format!("add a rule that allows `{op}` on `{path}` under `filesystem.rules`"),
                yaml: Some(format!(
                    "filesystem:\n  rules:\n    - {{ id: {id}, effect: allow, ops: [{op}], paths: [{}] }}\n",
                    yaml_quoted(&path)
                )),
            }
        }
        ReasonCode::FsPathOutsideMounts => {
            let Some(path) = path else {
                return plain("mount the host folder that holds the path");
            };
            if event.context.contains_key("resolved_path") {
                return Suggestion {
                    summary: format!(
                        "none: `{}` is a symlink that resolves to `{path}`, outside its mount, and no policy can allow a link to leave its mount; have the plugin use a path inside a mount",
                        fs.map(|r| r.path.as_str()).unwrap_or("")
                    ),
                    yaml: None,
                };
            }
            if !names_one_path(&path) {
                return plain(UNNAMEABLE_PATH);
            }
            let op = op.unwrap_or("read");
            let guest = parent_dir(&path);
            let mode = if fs.is_some_and(|r| r.op.mutates()) {
                "rw"
            } else {
                "ro"
            };
            Suggestion {
                summary: format!(
                    "no mount covers `{path}`: only if the plugin should see it, mount the host folder at `{guest}` and allow `{op}` (a symlink or `..` that leaves its mount can never be allowed)"
                ),
                yaml: Some(format!(
                    "filesystem:\n  mounts:\n    - {{ guest: {}, host: ./HOST_FOLDER, mode: {mode} }}\n  rules:\n    - {{ id: allow-{op}-{}, effect: allow, ops: [{op}], paths: [{}] }}\n",
                    yaml_quoted(&guest),
                    slug(&path),
                    yaml_quoted(&path)
                )),
            }
        }
        ReasonCode::FsReadOnlyMount => {
            let mount = policy.and_then(|p| {
                let guest = event.rule_id.strip_prefix("filesystem.mount:")?;
                p.filesystem.mounts.iter().find(|m| m.guest == guest)
            });
            match mount {
                Some(m) => Suggestion {
                    summary: format!("mount `{}` is read-only: make it `rw` and cap writes with a quota", m.guest),
                    yaml: Some(format!(
                        "filesystem:\n  mounts:\n    - {{ guest: {}, host: {}, mode: rw }}\n  quotas: {{ write_bytes: 1MiB }}\n",
                        m.guest, m.host
                    )),
                },
                None => plain("set the mount's `mode: rw`"),
            }
        }
        ReasonCode::FsReadQuotaExceeded | ReasonCode::FsWriteQuotaExceeded => {
            let key = if event.reason_code == ReasonCode::FsReadQuotaExceeded {
                "read_bytes"
            } else {
                "write_bytes"
            };
            let need = context_u64(event, "quota_used")
                .unwrap_or(0)
                .saturating_add(context_u64(event, "bytes_asked").unwrap_or(0));
            Suggestion {
                summary: format!("raise `filesystem.quotas.{key}` to at least {need} bytes"),
                yaml: Some(format!(
                    "filesystem:\n  quotas: {{ {key}: {} }}\n",
                    round_size(need)
                )),
            }
        }
        ReasonCode::NetHostNotAllowed | ReasonCode::NetPortNotAllowed => {
            let Some(r) = net else {
                return plain("add a network rule for the host and port");
            };
            let host = sandbox_policy::normalize_host(&r.host);
            // Only a host a rule can name exactly: a plugin asking for `*` or `*.com` must
            // not get a suggestion that allows every host.
            if !matches!(
                sandbox_policy::HostPattern::parse(&host),
                Ok(sandbox_policy::HostPattern::Exact(_) | sandbox_policy::HostPattern::Address(_))
            ) {
                return plain("the host is not a name or address a rule can list; fix the plugin");
            }
            Suggestion {
                summary: format!("allow `{host}` on port {} with a network rule", r.port),
                yaml: Some(format!(
                    "network:\n  rules:\n    - {{ id: allow-{}, effect: allow, hosts: [{}], ports: [{}] }}\n",
                    slug(&host),
                    yaml_quoted(&host),
                    r.port
                )),
            }
        }
        ReasonCode::NetAddressBlocked => {
            let address = event
                .context
                .get("address")
                .and_then(Value::as_str)
                .unwrap_or("ADDRESS");
            let port = net.map(|r| r.port).unwrap_or(0);
            let cidr = if address.contains(':') {
                format!("{address}/128")
            } else {
                format!("{address}/32")
            };
            Suggestion {
                summary: format!("`{address}` is a blocked address; only if reaching it is intended, name it by CIDR"),
                yaml: Some(format!(
                    "network:\n  rules:\n    - {{ id: allow-{}, effect: allow, cidrs: [\"{cidr}\"], ports: [{port}] }}\n",
                    slug(address)
                )),
            }
        }
        ReasonCode::NetConnectionQuotaExceeded
        | ReasonCode::NetEgressQuotaExceeded
        | ReasonCode::NetIngressQuotaExceeded => {
            let key = match event.reason_code {
                ReasonCode::NetConnectionQuotaExceeded => "connections",
                ReasonCode::NetEgressQuotaExceeded => "egress_bytes",
                _ => "ingress_bytes",
            };
            let need = context_u64(event, "quota_used")
                .unwrap_or(0)
                .saturating_add(context_u64(event, "bytes_asked").unwrap_or(1));
            let value = if key == "connections" {
                need.to_string()
            } else {
                round_size(need)
            };
            Suggestion {
                summary: format!("raise `network.quotas.{key}` to at least {need}"),
                yaml: Some(format!("network:\n  quotas: {{ {key}: {value} }}\n")),
            }
        }
        ReasonCode::FuelExhausted => {
            let limit = context_u64(event, "limit").unwrap_or(0);
            Suggestion {
                summary: "raise `budgets.fuel` if the work is legitimate (an endless loop needs a fix, not more fuel)".into(),
                yaml: Some(format!("budgets:\n  fuel: {}\n", limit.saturating_mul(2).max(1))),
            }
        }
        ReasonCode::Timeout => {
            let limit = context_u64(event, "limit").unwrap_or(0);
            Suggestion {
                summary: "raise `budgets.timeout_ms` if the work is legitimate".into(),
                yaml: Some(format!(
                    "budgets:\n  timeout_ms: {}\n",
                    limit.saturating_mul(2).max(1)
                )),
            }
        }
        ReasonCode::MemoryLimit => {
            let asked = context_u64(event, "asked").unwrap_or(0);
            if event.context.get("resource").and_then(Value::as_str) == Some("table") {
                return plain(
                    "the plugin grew a table past the sandbox's element cap; fix the plugin",
                );
            }
            Suggestion {
                summary: format!("raise `budgets.memory_bytes` to at least {asked} bytes if the plugin really needs it"),
                yaml: Some(format!("budgets:\n  memory_bytes: {}\n", round_size(asked))),
            }
        }
        other => plain(other.remedy()),
    }
}

const UNNAMEABLE_PATH: &str = "the path holds `*` or another character a rule cannot name literally; write a rule by hand only if the plugin really needs it";

/// Whether a rule glob written as this path matches this path alone: a plugin that asks for
/// `/out/*` must not get a suggestion that allows every file in `/out`.
fn names_one_path(path: &str) -> bool {
    sandbox_policy::GlobPattern::parse(path).is_ok_and(|g| g.is_literal())
}

fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    let out: String = out.chars().take(40).collect();
    if out.is_empty() {
        "root".to_owned()
    } else {
        out
    }
}

fn render_text(e: &Explanation) -> String {
    let mut out = String::new();
    let verdict = match (e.decision, e.enforced) {
        (Verdict::Allow, _) => "allowed",
        (Verdict::Deny, true) => "denied",
        (Verdict::Deny, false) => "would be denied (audit mode: not enforced)",
    };
    // Capability, rule id, context keys and values, the policy path and notes may come from
    // a forged report or `--event-json`: each is escaped and capped.
    out.push_str(&format!(
        "event {}: `{}` {verdict}\n",
        e.event_index,
        shown(&e.capability)
    ));
    out.push_str(&format!("  rule:    {}\n", shown(&e.rule_id)));
    out.push_str(&format!("  reason:  {} — {}\n", e.reason_code, e.meaning));
    if !e.context.is_empty() {
        out.push_str("  context:\n");
        for (key, value) in &e.context {
            let value = match value {
                Value::String(s) => shown(s),
                other => shown(&other.to_string()),
            };
            out.push_str(&format!("    {}: {value}\n", shown(key)));
        }
    }
    if let Some(policy) = &e.policy {
        if e.policy_lines.is_empty() {
            out.push_str(&format!(
                "  policy:  {} (no line of it decided this: `{}` is a built-in default)\n",
                shown(policy),
                shown(&e.rule_id)
            ));
        } else {
            out.push_str(&format!("  policy:  {}\n", shown(policy)));
            for line in &e.policy_lines {
                out.push_str(&format!(
                    "    {}:{} | {}\n",
                    line.line, line.column, line.text
                ));
            }
        }
    }
    for note in &e.notes {
        out.push_str(&format!("  note:    {}\n", one_line(note)));
    }
    out.push_str(&format!(
        "  to allow it: {}\n",
        one_line(&e.suggestion.summary)
    ));
    if let Some(yaml) = &e.suggestion.yaml {
        for line in yaml.lines() {
            out.push_str(&format!("    {line}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_to_readable_units() {
        assert_eq!(round_size(100), "100");
        assert_eq!(round_size(1025), "2KiB");
        assert_eq!(round_size((1 << 20) + 1), "2MiB");
    }

    #[test]
    fn slugs_are_rule_id_safe() {
        assert_eq!(slug("/data/Secret File.txt"), "data-secret-file-txt");
        assert_eq!(slug("/"), "root");
    }

    #[test]
    fn parent_of_paths() {
        assert_eq!(parent_dir("/etc/passwd"), "/etc");
        assert_eq!(parent_dir("/x"), "/");
    }
}
