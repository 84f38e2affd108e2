//! The run report (`schema_version: 1`): built once when the run is over, with each event's
//! hash chained to the one before and a digest over the whole report.

use std::time::Duration;

use sandbox_policy::{ReasonCode, Request, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::broker::events::{Event, EventLog, Outcome};
use crate::broker::Broker;
use crate::state::Capture;

pub mod escape;
mod read;

pub use escape::{escape_text, needs_escape, SHOWN_TEXT_BYTES};
pub use read::{read_event, verify_report};
pub mod stream;

/// The report format's version.
pub const SCHEMA_VERSION: u32 = 1;
pub use crate::engine::{SANDBOX_VERSION, WASMTIME_VERSION};

/// How the run ended: `outcome.status` in the report, written in snake case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The entry returned, or the guest called `proc_exit` (its code is in `outcome.exit_code`).
    Completed,
    /// The guest trapped, or `on_deny: trap` ended the run at a deny.
    Trapped,
    /// The run used all of `budgets.fuel`.
    FuelExhausted,
    /// The run passed its `budgets.timeout_ms` wall-clock budget.
    Timeout,
    /// A memory or table grow asked for more than the policy allows.
    MemoryLimit,
    /// The run was cancelled from outside: a signal to `sandbox-cli run`, or an embedder's
    /// cancel handle.
    Cancelled,
}

impl Status {
    /// The `run` exit code for this outcome.
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Completed => 0,
            Status::Trapped => 3,
            Status::FuelExhausted => 4,
            Status::Timeout => 5,
            Status::MemoryLimit => 6,
            // SIGINT's; `run` exits 143 when SIGTERM cancelled it.
            Status::Cancelled => 130,
        }
    }
}

/// The report of one run, as written in JSON: what ran, under which limits, how it ended,
/// what it used and every decision made, sealed by an event hash chain and a digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The report format's version: [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The versions of the sandbox and of Wasmtime that ran the plugin.
    pub sandbox: SandboxInfo,
    /// How the run ended.
    pub outcome: OutcomeInfo,
    /// The plugin that ran.
    pub plugin: PluginInfo,
    /// The policy it ran under.
    pub policy: PolicyInfo,
    /// The budgets, limits and quotas in force, as the policy set them.
    pub limits: LimitsInfo,
    /// What the run used.
    pub usage: UsageInfo,
    /// The recorded events in order, each hash-chained to the one before; at most
    /// `limits.max_events` of them, the rest are counted in `events_summary`.
    pub events: Vec<ReportEvent>,
    /// Counts of recorded and unrecorded events, per rule, reason and decision.
    pub events_summary: EventsSummary,
    /// The guest's captured stdout and stderr.
    pub stdio: StdioInfo,
    /// Counts of every decision, recorded or not.
    pub summary: Summary,
    /// SHA-256 (hex) of the canonical JSON of the whole report without this field, so that
    /// [`verify_report`] detects an edit anywhere.
    pub digest: String,
}

/// Which build ran the plugin: `sandbox` in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxInfo {
    /// This crate's version, [`SANDBOX_VERSION`].
    pub version: String,
    /// The embedded Wasmtime's version, [`WASMTIME_VERSION`].
    pub wasmtime: String,
}

/// How the run ended: `outcome` in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeInfo {
    /// The kind of ending, which also picks the `run` exit code.
    pub status: Status,
    /// One sentence for a person, e.g. which budget ran out and its size.
    pub message: String,
    /// The code the guest passed to `proc_exit`; absent when it did not call it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// The plugin that ran: `plugin` in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// The plugin's path as given (for an embedder, the name passed to [`crate::Sandbox::load`]).
    pub path: String,
    /// SHA-256 (hex) of the plugin's bytes.
    pub sha256: String,
}

/// The policy the plugin ran under: `policy` in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyInfo {
    /// The policy file's path, or `(embedded)` when the embedder gave no source.
    pub path: String,
    /// SHA-256 (hex) of the policy file's bytes (of nothing for an embedded policy).
    pub sha256: String,
    /// The policy's `name`.
    pub name: String,
    /// The policy's `mode`: `enforce` or `audit`.
    pub mode: String,
}

/// The budgets, limits and quotas the run had, taken from the policy (built-in defaults where
/// it sets none): `limits` in the report. Quotas the policy does not set are absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitsInfo {
    /// `budgets.fuel`: Wasmtime fuel units the run may consume.
    pub fuel: u64,
    /// `budgets.timeout_ms`: the wall-clock budget, in ms.
    pub timeout_ms: u64,
    /// `budgets.memory_bytes`: the ceiling on linear memory, in bytes.
    pub memory_bytes: u64,
    /// `limits.max_events`: how many events the report records before it only counts them.
    pub max_events: u64,
    /// `limits.module_bytes`: the largest plugin accepted, in bytes.
    pub module_bytes: u64,
    /// `stdio.stdout_bytes`: how much of the guest's stdout is captured, in bytes.
    pub stdout_bytes: u64,
    /// `stdio.stderr_bytes`: how much of the guest's stderr is captured, in bytes.
    pub stderr_bytes: u64,
    /// `filesystem.quotas.read_bytes`: bytes the guest may read from files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_read_bytes: Option<u64>,
    /// `filesystem.quotas.write_bytes`: bytes the guest may write to files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_write_bytes: Option<u64>,
    /// `network.quotas.connections`: connections the guest may open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_connections: Option<u64>,
    /// `network.quotas.egress_bytes`: bytes the guest may send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_egress_bytes: Option<u64>,
    /// `network.quotas.ingress_bytes`: bytes the guest may receive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_ingress_bytes: Option<u64>,
}

/// What the run used: `usage` in the report. All but `wall_time_ms` are deterministic for the
/// same plugin, policy, input and host files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageInfo {
    /// Wasmtime fuel units consumed.
    pub fuel_consumed: u64,
    /// Wall-clock time from instantiation to the end of the call, in ms (rounded to the µs).
    pub wall_time_ms: f64,
    /// The largest total of linear memory the run reached, across all its memories, in bytes.
    pub peak_memory_bytes: u64,
    /// Bytes read from files.
    pub fs_read_bytes: u64,
    /// Bytes written to files (link targets included).
    pub fs_write_bytes: u64,
    /// Files, folders and links the guest created (`filesystem.quotas.entries`).
    #[serde(default)]
    pub fs_entries_created: u64,
    /// Network connections opened.
    pub net_connections: u64,
    /// Bytes sent over the network.
    pub net_egress_bytes: u64,
    /// Bytes received from the network.
    pub net_ingress_bytes: u64,
}

/// One recorded decision, an element of `events` in the report: the policy crate's one event
/// type, shared with `learn` and `replay`.
pub use sandbox_policy::RecordedEvent as ReportEvent;

/// How many events there were, recorded or not: `events_summary` in the report. Events past
/// `limits.max_events` are counted here, never dropped silently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventsSummary {
    /// Events written in `events`.
    pub recorded: u64,
    /// Events past `limits.max_events`, counted but not written.
    pub not_recorded: u64,
    /// Every event (recorded or not) counted per rule, reason, decision and enforcement, in
    /// order of first appearance.
    pub by_rule: Vec<RuleCount>,
}

/// How many events share one rule, reason, decision and enforcement: an element of
/// `events_summary.by_rule`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleCount {
    /// The rule, default or budget that decided, as in [`ReportEvent::rule_id`].
    pub rule_id: String,
    /// Why it decided as it did.
    pub reason_code: ReasonCode,
    /// `allow` or `deny`.
    pub decision: Verdict,
    /// False for denies that `mode: audit` relaxed.
    pub enforced: bool,
    /// How many events there were.
    pub count: u64,
}

/// The guest's output, captured up to the policy's `stdio` caps: `stdio` in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StdioInfo {
    /// The captured stdout, decoded as UTF-8 (lossy), at most `stdio.stdout_bytes` bytes.
    pub stdout: String,
    /// The captured stderr, decoded as UTF-8 (lossy), at most `stdio.stderr_bytes` bytes.
    pub stderr: String,
    /// True when the guest wrote more to stdout than was captured.
    pub stdout_truncated: bool,
    /// True when the guest wrote more to stderr than was captured.
    pub stderr_truncated: bool,
}

/// Counts of every decision the run made, recorded in `events` or not: `summary` in the
/// report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Decisions that allowed.
    pub allowed: u64,
    /// Decisions that denied, including denies audit mode relaxed and budget events.
    pub denied: u64,
}

/// What ran, as the report names it; computed once per loaded plugin, not per call.
#[derive(Debug, Clone)]
pub(crate) struct Subject {
    pub plugin_path: String,
    pub plugin_sha256: String,
    pub policy_path: String,
    pub policy_sha256: String,
}

pub(crate) struct ReportInput<'a> {
    pub status: Status,
    pub message: String,
    pub exit_code: Option<i32>,
    pub subject: &'a Subject,
    pub broker: &'a Broker,
    pub fuel_consumed: u64,
    pub wall_time: Duration,
    pub peak_memory: u64,
    pub stdout: &'a Capture,
    pub stderr: &'a Capture,
}

/// SHA-256 of `bytes`, as lowercase hex: the form every digest in the report takes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub(crate) fn build(input: ReportInput<'_>) -> Report {
    let broker = input.broker;
    let policy = broker.policy();
    let usage = broker.usage();
    let mut previous = String::new();
    // Each event becomes JSON once: for its hash, and again (hash included) for the digest.
    let mut event_values = Vec::with_capacity(broker.log().events().len());
    let events: Vec<ReportEvent> = (0..broker.log().events().len())
        .map(|seq| {
            let (e, value) = chained_event(policy, broker.log(), seq, &mut previous);
            event_values.push(value);
            e
        })
        .collect();
    let by_rule = broker
        .log()
        .summary()
        .map(|((rule, reason, verdict, enforced), count)| RuleCount {
            rule_id: policy.rule_id(rule),
            reason_code: reason,
            decision: verdict,
            enforced,
            count,
        })
        .collect();
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        sandbox: SandboxInfo {
            version: SANDBOX_VERSION.to_owned(),
            wasmtime: WASMTIME_VERSION.to_owned(),
        },
        outcome: OutcomeInfo {
            status: input.status,
            message: input.message,
            exit_code: input.exit_code,
        },
        plugin: PluginInfo {
            path: input.subject.plugin_path.clone(),
            sha256: input.subject.plugin_sha256.clone(),
        },
        policy: PolicyInfo {
            path: input.subject.policy_path.clone(),
            sha256: input.subject.policy_sha256.clone(),
            name: policy.name.clone(),
            mode: policy.mode.value.as_str().to_owned(),
        },
        limits: limits_of(policy),
        usage: UsageInfo {
            fuel_consumed: input.fuel_consumed,
            wall_time_ms: (input.wall_time.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            peak_memory_bytes: input.peak_memory,
            fs_read_bytes: usage.fs_read_bytes,
            fs_write_bytes: usage.fs_write_bytes,
            fs_entries_created: usage.fs_entries_created,
            net_connections: usage.net_connections,
            net_egress_bytes: usage.net_egress_bytes,
            net_ingress_bytes: usage.net_ingress_bytes,
        },
        events_summary: EventsSummary {
            recorded: events.len() as u64,
            not_recorded: broker.log().not_recorded(),
            by_rule,
        },
        events,
        stdio: StdioInfo {
            stdout: String::from_utf8_lossy(&input.stdout.bytes).into_owned(),
            stderr: String::from_utf8_lossy(&input.stderr.bytes).into_owned(),
            stdout_truncated: input.stdout.truncated,
            stderr_truncated: input.stderr.truncated,
        },
        summary: Summary {
            allowed: broker.log().allowed(),
            denied: broker.log().denied(),
        },
        digest: String::new(),
    };
    report.digest = report_digest(&mut report, event_values);
    report
}

/// The budgets, limits and quotas of `policy`, as the report lists them.
fn limits_of(policy: &sandbox_policy::Policy) -> LimitsInfo {
    let fs_quotas = &policy.filesystem.quotas;
    let net_quotas = &policy.network.quotas;
    LimitsInfo {
        fuel: policy.budgets.fuel.value,
        timeout_ms: policy.budgets.timeout_ms.value,
        memory_bytes: policy.budgets.memory_bytes.value,
        max_events: policy.limits.max_events.value,
        module_bytes: policy.limits.module_bytes.value,
        stdout_bytes: policy.stdio.stdout_bytes.value,
        stderr_bytes: policy.stdio.stderr_bytes.value,
        fs_read_bytes: fs_quotas.read_bytes.map(|q| q.value),
        fs_write_bytes: fs_quotas.write_bytes.map(|q| q.value),
        net_connections: net_quotas.connections.map(|q| q.value),
        net_egress_bytes: net_quotas.egress_bytes.map(|q| q.value),
        net_ingress_bytes: net_quotas.ingress_bytes.map(|q| q.value),
    }
}

/// The first line of a run's event stream: what runs, under which policy, with a new run id.
pub(crate) fn run_info(policy: &sandbox_policy::Policy, subject: &Subject) -> stream::RunInfo {
    stream::RunInfo {
        kind: "run".to_owned(),
        schema_version: SCHEMA_VERSION,
        run_id: stream::new_run_id(),
        sandbox: SandboxInfo {
            version: SANDBOX_VERSION.to_owned(),
            wasmtime: WASMTIME_VERSION.to_owned(),
        },
        plugin: PluginInfo {
            path: subject.plugin_path.clone(),
            sha256: subject.plugin_sha256.clone(),
        },
        policy: PolicyInfo {
            path: subject.policy_path.clone(),
            sha256: subject.policy_sha256.clone(),
            name: policy.name.clone(),
            mode: policy.mode.value.as_str().to_owned(),
        },
        limits: limits_of(policy),
    }
}

/// Event `seq` of `log` as the report writes it, with its hash chained to `previous` (which
/// becomes this event's hash), and its JSON with the hash. The report and the event stream
/// both make their events here, so the two agree byte for byte.
pub(crate) fn chained_event(
    policy: &sandbox_policy::Policy,
    log: &EventLog,
    seq: usize,
    previous: &mut String,
) -> (ReportEvent, Value) {
    let event = &log.events()[seq];
    let request = log.request(event);
    let mut e = ReportEvent {
        seq: seq as u64,
        decision: event.decision.verdict,
        enforced: event.decision.enforced,
        capability: event.capability.to_owned(),
        rule_id: policy.rule_id(event.decision.rule),
        reason_code: event.decision.reason,
        context: context(policy, event, request.as_ref()),
        request,
        hash: String::new(),
    };
    let mut value = event_value(&e);
    e.hash = hash_with_previous(previous, &value);
    if let Value::Object(map) = &mut value {
        map.insert("hash".into(), e.hash.clone().into());
    }
    previous.clone_from(&e.hash);
    (e, value)
}

/// Longest text kept in an event's context; the full path is in its `request`.
const CONTEXT_TEXT_BYTES: usize = 256;

/// Context text, cut (on a character boundary) past [`CONTEXT_TEXT_BYTES`] so a plugin asking
/// for long paths cannot multiply the report's size.
fn clip(text: &str) -> Value {
    if text.len() <= CONTEXT_TEXT_BYTES {
        return text.into();
    }
    let mut end = CONTEXT_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len()).into()
}

/// What a person needs to act on an event: the path as asked and as resolved, the host path,
/// the bytes asked and the quota left, the size a grow asked for.
fn context(
    policy: &sandbox_policy::Policy,
    event: &Event,
    request: Option<&Request>,
) -> Map<String, Value> {
    let mut c = Map::new();
    let d = &event.decision;
    if let Some(Request::Fs(r)) = request {
        c.insert("path".into(), clip(&r.path));
        let normal = (!r.not_utf8)
            .then(|| sandbox_policy::normalize_guest_path(r.path.as_bytes()).ok())
            .flatten();
        if let Some(normal) = normal {
            if normal != r.path {
                c.insert("normalized_path".into(), clip(&normal));
            }
            if let Some(resolved) = &r.resolved {
                c.insert("resolved_path".into(), clip(resolved));
            }
            if let (Some(mount), true) = (d.mount, d.permits()) {
                if let Some(m) = policy.filesystem.mounts.get(mount) {
                    c.insert("mount".into(), m.guest.clone().into());
                }
                let effective = r.resolved.as_deref().unwrap_or(&normal);
                if let Some(host) = host_path_of(policy, effective) {
                    c.insert("host_path".into(), clip(&host.display().to_string()));
                }
            }
        }
        if r.bytes > 0 || d.quota.is_some() {
            c.insert("bytes_asked".into(), r.bytes.into());
        }
    }
    if let Some(Request::Net(r)) = request {
        c.insert("host".into(), clip(&r.host));
        c.insert("port".into(), r.port.into());
        if let Some(a) = r.address {
            c.insert("address".into(), a.to_string().into());
        }
        if let Some(kind) = d.address_kind {
            c.insert("address_kind".into(), kind.into());
        }
    }
    if let Some(q) = d.quota {
        c.insert("quota".into(), q.name.into());
        c.insert("quota_limit".into(), q.limit.into());
        c.insert("quota_used".into(), q.used.into());
        c.insert("quota_left".into(), q.left().into());
    }
    match &event.outcome {
        Outcome::None => {}
        Outcome::Done { bytes } => {
            c.insert("result".into(), "done".into());
            c.insert("bytes_done".into(), (*bytes).into());
        }
        Outcome::NotFound => {
            c.insert("result".into(), "not_found".into());
        }
        Outcome::Failed { error } => {
            c.insert("result".into(), "failed".into());
            c.insert("error".into(), error.clone().into());
        }
        Outcome::Budget { limit, used } => {
            c.insert("limit".into(), (*limit).into());
            c.insert("used".into(), (*used).into());
        }
        Outcome::GrowRefused {
            resource,
            asked,
            limit,
        } => {
            c.insert("resource".into(), (*resource).into());
            c.insert("asked".into(), (*asked).into());
            c.insert("limit".into(), (*limit).into());
        }
        Outcome::BadPointer {
            function,
            ptr,
            len,
            memory_bytes,
        } => {
            c.insert("function".into(), (*function).into());
            c.insert("ptr".into(), (*ptr).into());
            c.insert("len".into(), (*len).into());
            c.insert("memory_bytes".into(), (*memory_bytes).into());
        }
        Outcome::EndedRun => {
            c.insert("result".into(), "ended_run".into());
        }
        Outcome::Cancelled { by } => {
            c.insert("cancelled_by".into(), by.clone().into());
        }
    }
    c
}

/// The host path a guest path maps to, for event context.
fn host_path_of(policy: &sandbox_policy::Policy, guest: &str) -> Option<std::path::PathBuf> {
    let (_, mount) = policy.mount_for(guest)?;
    let rel = guest[mount.guest.len()..].trim_start_matches('/');
    let base = policy.mount_host_path(mount);
    Some(if rel.is_empty() {
        base
    } else {
        base.join(std::path::Path::new(rel))
    })
}

/// JSON with object keys sorted at every level, so hashes do not depend on field order.
pub fn canonical_json(value: &Value) -> String {
    let mut out = Vec::new();
    write_canonical_without(value, None, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Writes canonical JSON into `out`: keys and scalars escaped by serde_json itself, straight
/// into the buffer (no string per key or scalar). With `skip`, that key of the outermost
/// object is left out, without copying the object.
pub(crate) fn write_canonical_without(value: &Value, skip: Option<&str>, out: &mut Vec<u8>) {
    // Writes to a `Vec` cannot fail.
    match value {
        Value::Object(map) => {
            out.push(b'{');
            // serde_json's map iterates in key order unless a crate turned on
            // `preserve_order`: sort only then.
            let sorted = map.keys().zip(map.keys().skip(1)).all(|(a, b)| a <= b);
            let mut first = true;
            let mut write_entry = |key: &String, value: &Value| {
                if skip == Some(key.as_str()) {
                    return;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                let _ = serde_json::to_writer(&mut *out, key);
                out.push(b':');
                write_canonical_without(value, None, out);
            };
            if sorted {
                for (key, value) in map {
                    write_entry(key, value);
                }
            } else {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                for (key, value) in entries {
                    write_entry(key, value);
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical_without(item, None, out);
            }
            out.push(b']');
        }
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

/// SHA-256 (hex) of `prefix` then the canonical JSON of `value` without its `skip` key.
fn canonical_hash(prefix: &str, value: &Value, skip: &str) -> String {
    // Written whole, then hashed at once: cheaper than feeding the hash many small pieces.
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(prefix.as_bytes());
    write_canonical_without(value, Some(skip), &mut out);
    sha256_hex(&out)
}

fn hash_with_previous(previous: &str, event: &Value) -> String {
    canonical_hash(previous, event, "hash")
}

/// An event as JSON, without its `hash`.
fn event_value(event: &ReportEvent) -> Value {
    let mut value = serde_json::to_value(event).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.remove("hash");
    }
    value
}

fn digest_of_value(report: &Value) -> String {
    canonical_hash("", report, "digest")
}

/// The digest of a report whose events are given as JSON already (with their hashes).
fn report_digest(report: &mut Report, events: Vec<Value>) -> String {
    let kept = std::mem::take(&mut report.events);
    let mut value = serde_json::to_value(&*report).unwrap_or(Value::Null);
    report.events = kept;
    if let Value::Object(map) = &mut value {
        map.remove("digest");
        map.insert("events".into(), Value::Array(events));
    }
    digest_of_value(&value)
}

/// Why a report failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The text does not parse as JSON; holds the parser's message.
    #[error("the report is not valid JSON: {0}")]
    NotJson(String),
    /// The JSON does not have the shape of a [`Report`]; holds the reason.
    #[error("the report does not follow schema version 1: {0}")]
    Malformed(String),
    /// An event's `hash` does not match the chain.
    #[error("event {seq}'s hash does not match: the event or one before it was edited")]
    EventChainBroken {
        /// The position in `events` of the first event whose hash does not match.
        seq: u64,
    },
    /// The `digest` does not match the report's content.
    #[error("the report's digest does not match its content: it was edited after the run")]
    DigestMismatch,
    /// The bytes can be read as two different reports (a key written twice in one object):
    /// refused before anything is checked, since readers disagree on which value counts.
    #[error("the report can be read two ways: {0}")]
    Ambiguous(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_context_text_is_clipped_on_a_character_boundary() {
        assert_eq!(clip("/data/a"), Value::from("/data/a"));
        let long = format!("/{}", "é".repeat(300));
        let clipped = clip(&long);
        let text = clipped.as_str().unwrap();
        assert!(text.len() < CONTEXT_TEXT_BYTES + 32, "{}", text.len());
        assert!(text.ends_with(&format!("… ({} bytes)", long.len())));
    }

    /// The first implementation, kept as the reference: reports hashed by it must verify.
    fn reference_canonical(value: &Value) -> String {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let body: Vec<String> = keys
                    .iter()
                    .map(|k| {
                        let key = Value::String((*k).clone()).to_string();
                        format!("{key}:{}", reference_canonical(&map[*k]))
                    })
                    .collect();
                format!("{{{}}}", body.join(","))
            }
            Value::Array(items) => {
                let body: Vec<String> = items.iter().map(reference_canonical).collect();
                format!("[{}]", body.join(","))
            }
            other => other.to_string(),
        }
    }

    #[test]
    fn canonical_json_is_byte_for_byte_what_it_always_was() {
        let value: Value = serde_json::from_str(
            r#"{"z":[1,-2,3.5,1e300,null,true],"é\"\n\u0001":"tab\t\u2028 \\ /","a":{"":{},"b":[]}}"#,
        )
        .unwrap();
        assert_eq!(canonical_json(&value), reference_canonical(&value));
    }

    /// A small report as `build` writes it, with its chain and digest.
    fn sealed_report() -> String {
        let event = |seq: u64, previous: &str| {
            let mut value = serde_json::json!({
                "seq": seq, "decision": "deny", "enforced": true, "capability": "fs.read",
                "rule_id": "filesystem.default", "reason_code": "FS_PATH_NOT_ALLOWED",
                "context": { "path": "/data/x" }
            });
            let hash = hash_with_previous(previous, &value);
            value["hash"] = hash.into();
            value
        };
        let first = event(0, "");
        let second = event(1, first["hash"].as_str().unwrap());
        let mut report = serde_json::json!({
            "schema_version": 1,
            "sandbox": { "version": "0", "wasmtime": "0" },
            "outcome": { "status": "completed", "message": "m" },
            "plugin": { "path": "p", "sha256": "s" },
            "policy": { "path": "q", "sha256": "s", "name": "n", "mode": "enforce" },
            "limits": { "fuel": 1, "timeout_ms": 1, "memory_bytes": 1, "max_events": 1,
                        "module_bytes": 1, "stdout_bytes": 1, "stderr_bytes": 1 },
            "usage": { "fuel_consumed": 1, "wall_time_ms": 0.5, "peak_memory_bytes": 0,
                       "fs_read_bytes": 0, "fs_write_bytes": 0, "net_connections": 0,
                       "net_egress_bytes": 0, "net_ingress_bytes": 0 },
            "events": [first, second],
            "events_summary": { "recorded": 2, "not_recorded": 0, "by_rule": [] },
            "stdio": { "stdout": "", "stderr": "", "stdout_truncated": false, "stderr_truncated": false },
            "summary": { "allowed": 0, "denied": 2 },
            "aardvark": "a member this version does not know, sorted before `events`"
        });
        report["digest"] = digest_of_value(&report).into();
        serde_json::to_string(&report).unwrap()
    }

    #[test]
    fn a_sealed_report_verifies_and_any_edit_or_second_meaning_is_refused() {
        let text = sealed_report();
        let report = verify_report(&text).unwrap();
        assert_eq!(report.events.len(), 2);
        assert_eq!(report.events[1].seq, 1);
        let edited = text.replacen("\"/data/x\"", "\"/data/y\"", 1);
        assert_eq!(
            verify_report(&edited),
            Err(VerifyError::EventChainBroken { seq: 0 })
        );
        let edited = text.replacen("a member this version", "a member that version", 1);
        assert_eq!(verify_report(&edited), Err(VerifyError::DigestMismatch));
        let twice = text.replacen("\"decision\"", "\"decision\":\"allow\",\"decision\"", 1);
        assert!(
            matches!(verify_report(&twice), Err(VerifyError::Ambiguous(m)) if m.contains("`decision`"))
        );
        let trailing = format!("{text} {{}}");
        assert!(matches!(
            verify_report(&trailing),
            Err(VerifyError::NotJson(_))
        ));
        let not_array = text.replacen("\"events\":[", "\"events\":{\"a\":[", 1);
        assert!(verify_report(&not_array).is_err());
        // A member that sorts before `events` but is written after it: the digest is still
        // over the canonical order.
        let member =
            "\"aardvark\":\"a member this version does not know, sorted before `events`\",";
        assert!(text.starts_with(&format!("{{{member}")));
        let moved = format!(
            "{{{},{}}}",
            &text[1 + member.len()..text.len() - 1],
            &member[..member.len() - 1]
        );
        assert_eq!(verify_report(&moved).unwrap(), report);
        let moved_edited = moved.replacen("this version", "that version", 1);
        assert_eq!(
            verify_report(&moved_edited),
            Err(VerifyError::DigestMismatch)
        );
        // Without such a member the events are streamed into the digest.
        let mut plain: Value = serde_json::from_str(&text).unwrap();
        plain.as_object_mut().unwrap().remove("aardvark");
        plain["digest"] = digest_of_value(&plain).into();
        let plain = serde_json::to_string(&plain).unwrap();
        assert_eq!(verify_report(&plain).unwrap().events.len(), 2);
        let edited = plain.replacen("\"denied\":2", "\"denied\":3", 1);
        assert_eq!(verify_report(&edited), Err(VerifyError::DigestMismatch));
    }

    /// Found by the `report_read` fuzz target: serde quotes the value it did not expect, so a
    /// report could make the error printed for it span several lines.
    #[test]
    fn regression_a_malformed_report_error_stays_on_one_line() {
        let forged = "{\"seq\": 0, \"decision\": \"d\\nerror: forged\\u001b[2J\"}";
        let report = sealed_report().replacen(
            "\"decision\":\"deny\"",
            "\"decision\":\"d\\nerror: forged\\u001b[2J\"",
            1,
        );
        for error in [
            verify_report(&report).unwrap_err(),
            read_event(forged).unwrap_err(),
        ] {
            let message = error.to_string();
            assert!(
                !message.contains('\n') && !message.contains('\u{1b}'),
                "{message}"
            );
            assert!(message.contains("d\\nerror: forged"), "{message}");
        }
        let long = format!("{{\"decision\": \"{}\"}}", "x".repeat(100_000));
        assert!(read_event(&long).unwrap_err().to_string().len() < 1024);
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let value: Value =
            serde_json::from_str(r#"{"b":{"d":1,"c":[{"z":1,"y":2}]},"a":"x"}"#).unwrap();
        assert_eq!(
            canonical_json(&value),
            r#"{"a":"x","b":{"c":[{"y":2,"z":1}],"d":1}}"#
        );
    }
}
