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
    /// Why the policy could not be read: then no line of it is shown, and nothing is
    /// explained as a built-in default.
    #[serde(skip_serializing_if = "Option::is_none")]
    policy_error: Option<String>,
    policy_lines: Vec<PolicyLine>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<String>,
    suggestion: Suggestion,
}

/// The policy an explanation reads its lines from, loaded once for every event.
struct PolicySource {
    /// The path shown (as given, or as the report names it).
    path: Option<PathBuf>,
    /// The policy and its text, when it could be read and parsed.
    loaded: Option<(Policy, String)>,
    /// Why it could not be, said plainly.
    error: Option<String>,
}

impl PolicySource {
    /// `--policy`, else the report's policy: as the report names it (relative to where the
    /// run was started), else relative to the report's folder.
    fn load(
        given: Option<&PathBuf>,
        report: Option<&(PathBuf, String)>,
        report_file: Option<&PathBuf>,
        notes: &mut Vec<String>,
    ) -> PolicySource {
        let mut path = given.cloned().or_else(|| report.map(|(p, _)| p.clone()));
        if let (None, Some(p), Some(file)) = (given, &path, report_file) {
            let beside = file.parent().map(|dir| dir.join(p));
            if !p.exists() && p.is_relative() {
                if let Some(beside) = beside.filter(|b| b.exists()) {
                    path = Some(beside);
                }
            }
        }
        let Some(p) = path.clone() else {
            return PolicySource {
                path,
                loaded: None,
                error: None,
            };
        };
        match crate::bounded::load_policy(&p) {
            Ok((policy, text)) => {
                if let Some((_, sha)) = report {
                    if *sha != sandbox_runtime::sha256_hex(text.as_bytes()) && given.is_none() {
                        notes.push(format!(
                            "policy `{}` has changed since the run; its lines may not match",
                            p.display()
                        ));
                    }
                }
                PolicySource {
                    path,
                    loaded: Some((policy, text)),
                    error: None,
                }
            }
            Err(e) if !p.exists() => PolicySource {
                path,
                loaded: None,
                error: Some(format!(
                    "`{}` cannot be found from here ({e}); give `--policy` with its path",
                    p.display()
                )),
            },
            Err(e) => PolicySource {
                path,
                loaded: None,
                error: Some(format!("`{}` cannot be used: {e}", p.display())),
            },
        }
    }
}

/// The events to explain: one (`--event-index`, `--event-json`) or every deny (`--all`), and
/// the report's policy path and SHA-256.
type Events = (Vec<ReportEvent>, Option<(PathBuf, String)>);

fn load_events(args: &ExplainArgs, notes: &mut Vec<String>) -> anyhow::Result<Events> {
    if let Some(path) = &args.event_json {
        let text = crate::bounded::read_text(path, "event", crate::bounded::MAX_REPORT_BYTES)?;
        // The report reader's strict parse: a key written twice is refused.
        let event: ReportEvent = sandbox_runtime::report::read_event(&text)
            .map_err(|e| anyhow!("event `{}` is not a report event: {e}", path.display()))?;
        notes.push("a lone event cannot be checked against its report's hash chain".to_owned());
        return Ok((vec![event], None));
    }
    if args.report_file.is_none() && args.events_file.is_none() {
        return Err(anyhow!(
            "give `--report-file` with `--event-index` or `--all`, or `--event-json`"
        ));
    }
    let (report, path) = crate::events_file::read_verified(
        args.report_file.as_deref(),
        args.events_file.as_deref(),
    )?;
    let policy = Some((PathBuf::from(&report.policy.path), report.policy.sha256));
    if args.all {
        let denies = report
            .events
            .into_iter()
            .filter(|e| e.decision == Verdict::Deny)
            .collect();
        return Ok((denies, policy));
    }
    let index = args.event_index.unwrap_or(0);
    let count = report.events.len();
    let event = report.events.into_iter().nth(index).ok_or_else(|| {
        anyhow!("report `{}` has {count} recorded events; `--event-index {index}` is out of range (0-based)", path.display())
    })?;
    Ok((vec![event], policy))
}

pub fn explain(args: ExplainArgs) -> anyhow::Result<Exit> {
    let mut notes = Vec::new();
    let (events, report_policy) = load_events(&args, &mut notes)?;
    let source = PolicySource::load(
        args.policy.as_ref(),
        report_policy.as_ref(),
        args.report_file.as_ref().or(args.events_file.as_ref()),
        &mut notes,
    );
    let explanations: Vec<Explanation> = events
        .iter()
        .map(|event| explain_event(event, &source, notes.clone()))
        .collect();
    match (args.format, args.all) {
        (TextOrJson::Json, true) => out!("{}", to_json(&explanations, args.pretty)?),
        (TextOrJson::Json, false) => {
            for e in &explanations {
                out!("{}", to_json(e, args.pretty)?);
            }
        }
        (TextOrJson::Text, _) => {
            if args.all {
                let file = args.report_file.as_ref().or(args.events_file.as_ref());
                let file = file.map(|p| p.display().to_string());
                outln!(
                    "{} {} in `{}`\n",
                    explanations.len(),
                    if explanations.len() == 1 {
                        "deny"
                    } else {
                        "denies"
                    },
                    neutralize(&file.unwrap_or_default())
                );
            }
            let texts: Vec<String> = explanations.iter().map(render_text).collect();
            out!("{}", neutralize(&texts.join("\n")));
        }
    }
    Ok(Exit::Ok)
}

fn explain_event(event: &ReportEvent, source: &PolicySource, notes: Vec<String>) -> Explanation {
    let mut policy_lines = Vec::new();
    if let Some((policy, text)) = &source.loaded {
        for span in spans_for(policy, event) {
            if let Some(line) = text.lines().nth(span.line.saturating_sub(1) as usize) {
                policy_lines.push(PolicyLine {
                    line: span.line,
                    column: span.column,
                    text: line.to_owned(),
                });
            }
        }
    }
    Explanation {
        event_index: event.seq,
        decision: event.decision,
        enforced: event.enforced,
        capability: event.capability.clone(),
        rule_id: event.rule_id.clone(),
        reason_code: event.reason_code,
        meaning: event.reason_code.meaning().to_owned(),
        context: event.context.clone(),
        policy: source.path.as_ref().map(|p| p.display().to_string()),
        policy_error: source.error.clone(),
        policy_lines,
        notes,
        suggestion: suggest(event, source.loaded.as_ref().map(|(p, _)| p)),
    }
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
pub(crate) fn round_size(bytes: u64) -> String {
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
            let ops = ops_together(op);
            Suggestion {
                summary: format!(
                    "add a rule that allows `{ops}` on `{path}` under `filesystem.rules`{}",
                    together_note(op)
                ),
                yaml: Some(format!("filesystem:\n  rules:\n{}", rule_item(ops, &path))),
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
            let op = ops_together(op.unwrap_or("read"));
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
                    "filesystem:\n  mounts:\n    - {{ guest: {}, host: ./HOST_FOLDER, mode: {mode} }}\n  rules:\n{}",
                    yaml_quoted(&guest),
                    rule_item(op, &path)
                )),
            }
        }
        ReasonCode::FsReadOnlyMount => {
            let mount = policy.and_then(|p| {
                let guest = event.rule_id.strip_prefix("filesystem.mount:")?;
                p.filesystem.mounts.iter().find(|m| m.guest == guest)
            });
            match (mount, policy) {
                (Some(m), Some(p)) => read_only_mount(m, p, path.as_deref(), op),
                _ => plain("set the mount's `mode: rw`, and allow the write with a rule"),
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
            let value = round_size(with_headroom(need));
            Suggestion {
                summary: format!(
                    "raise `filesystem.quotas.{key}` to at least {need} bytes; {value} leaves 25% headroom"
                ),
                yaml: Some(format!(
                    "filesystem:\n  quotas: {}\n",
                    quota_map(&fs_quotas(policy), key, &value)
                )),
            }
        }
        _ => suggest_net_or_budget(event, policy),
    }
}

/// [`suggest`] for network and budget events.
fn suggest_net_or_budget(event: &ReportEvent, policy: Option<&Policy>) -> Suggestion {
    let plain = |summary: &str| Suggestion {
        summary: summary.to_owned(),
        yaml: None,
    };
    let net = match &event.request {
        Some(Request::Net(r)) => Some(r),
        _ => None,
    };
    match event.reason_code {
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
                round_size(with_headroom(need))
            };
            Suggestion {
                summary: format!("raise `network.quotas.{key}` to at least {need}"),
                yaml: Some(format!(
                    "network:\n  quotas: {}\n",
                    quota_map(&net_quotas(policy), key, &value)
                )),
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

/// The operations that go together with `op`: a new file needs `create` as well as `write`.
pub(crate) fn ops_together(op: &str) -> &str {
    match op {
        "write" | "create" => "write, create",
        other => other,
    }
}

/// Why [`ops_together`] widened an operation, for the summary.
fn together_note(op: &str) -> &'static str {
    match op {
        "write" | "create" => " (a new file needs `create` and `write` together)",
        _ => "",
    }
}

/// One `filesystem.rules` list item allowing `ops` on exactly `path`, to append to the list.
fn rule_item(ops: &str, path: &str) -> String {
    format!(
        "    - {{ id: allow-{}-{}, effect: allow, ops: [{ops}], paths: [{}] }}\n",
        slug(ops),
        slug(path),
        yaml_quoted(path)
    )
}

/// A write on a read-only mount needs three things at once: the mount made `rw`, a rule
/// that allows the write (unless one does already), and a write quota (kept if there is one).
fn read_only_mount(
    mount: &sandbox_policy::Mount,
    policy: &Policy,
    path: Option<&str>,
    op: Option<&str>,
) -> Suggestion {
    let mut parts = vec!["make it `rw`".to_owned()];
    let mut yaml = format!(
        "filesystem:\n  mounts:\n    - {{ guest: {}, host: {}, mode: rw }}\n",
        yaml_quoted(&mount.guest),
        yaml_quoted(&mount.host)
    );
    if let (Some(path), Some(op)) = (path, op) {
        let allowed = sandbox_policy::FsOperation::parse(op).is_some_and(|wanted| {
            policy.filesystem.rules.iter().any(|r| {
                r.effect == sandbox_policy::Effect::Allow
                    && r.ops.contains(wanted)
                    && r.paths.iter().any(|g| g.matches(path))
            })
        });
        if !allowed && names_one_path(path) {
            let ops = ops_together(op);
            parts.push(format!("allow `{ops}` on `{path}` with a rule"));
            yaml.push_str(&format!("  rules:\n{}", rule_item(ops, path)));
        }
    }
    let quotas = fs_quotas(Some(policy));
    if !quotas.iter().any(|(k, _)| *k == "write_bytes") {
        parts.push("cap writes with a quota".to_owned());
        yaml.push_str(&format!(
            "  quotas: {}\n",
            quota_map(&quotas, "write_bytes", "1MiB")
        ));
    }
    Suggestion {
        summary: format!("mount `{}` is read-only: {}", mount.guest, parts.join(", ")),
        yaml: Some(yaml),
    }
}

/// `need` plus 25%, so the next run's small variations still fit.
pub(crate) fn with_headroom(need: u64) -> u64 {
    need.saturating_add(need.div_ceil(4))
}

/// A size as the policy would write it: exact, in KiB or MiB where it divides evenly.
fn exact_size(bytes: u64) -> String {
    const KIB: u64 = 1 << 10;
    const MIB: u64 = 1 << 20;
    match bytes {
        0 => "0".to_owned(),
        b if b % MIB == 0 => format!("{}MiB", b / MIB),
        b if b % KIB == 0 => format!("{}KiB", b / KIB),
        b => b.to_string(),
    }
}

/// The filesystem quotas the policy sets, in file order.
fn fs_quotas(policy: Option<&Policy>) -> Vec<(&'static str, String)> {
    let Some(q) = policy.map(|p| &p.filesystem.quotas) else {
        return Vec::new();
    };
    [("read_bytes", q.read_bytes), ("write_bytes", q.write_bytes)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, exact_size(v.value))))
        .collect()
}

/// The network quotas the policy sets.
fn net_quotas(policy: Option<&Policy>) -> Vec<(&'static str, String)> {
    let Some(q) = policy.map(|p| &p.network.quotas) else {
        return Vec::new();
    };
    [
        ("connections", q.connections.map(|v| v.value.to_string())),
        ("egress_bytes", q.egress_bytes.map(|v| exact_size(v.value))),
        (
            "ingress_bytes",
            q.ingress_bytes.map(|v| exact_size(v.value)),
        ),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect()
}

/// A whole `quotas` flow map with `key` set to `value` and the policy's other quotas kept,
/// so pasting it over the existing line drops nothing.
fn quota_map(existing: &[(&'static str, String)], key: &str, value: &str) -> String {
    let mut entries: Vec<String> = existing
        .iter()
        .map(|(k, v)| match *k == key {
            true => format!("{k}: {value}"),
            false => format!("{k}: {v}"),
        })
        .collect();
    if !existing.iter().any(|(k, _)| *k == key) {
        entries.push(format!("{key}: {value}"));
    }
    format!("{{ {} }}", entries.join(", "))
}

const UNNAMEABLE_PATH: &str = "the path holds `*` or another character a rule cannot name literally; write a rule by hand only if the plugin really needs it";

/// Whether a rule glob written as this path matches this path alone: a plugin that asks for
/// `/out/*` must not get a suggestion that allows every file in `/out`.
pub(crate) fn names_one_path(path: &str) -> bool {
    sandbox_policy::GlobPattern::parse(path).is_ok_and(|g| g.is_literal())
}

pub(crate) fn slug(text: &str) -> String {
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
    if let Some(error) = &e.policy_error {
        out.push_str(&format!("  policy:  {}\n", one_line(error)));
    } else if let Some(policy) = &e.policy {
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
