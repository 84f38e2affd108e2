//! Parsing in two stages, as ripgrep parses arguments: YAML into raw values that keep their
//! places (serde-saphyr, unknown keys refused), then raw values into a validated [`Policy`],
//! collecting every mistake with its `line:column` and a hint.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::Path;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::error::{did_you_mean, PolicyError, PolicyErrorKind, PolicyErrors};
use crate::glob::GlobPattern;
use crate::model::*;
use crate::net::{normalize_host, parse_ip_literal, Cidr, HostPattern, PortRange};
use crate::path::normalize_guest_path;
use crate::size::parse_size;
use crate::span::Span;

/// Every filesystem operation's name, for suggestions.
const FS_OPS: [&str; 7] = [
    "read", "write", "create", "delete", "list", "rename", "symlink",
];

/// Longest wall-clock budget a policy may set: one day.
pub const MAX_TIMEOUT_MS: u64 = 86_400_000;

/// Policies larger than this are refused before parsing.
pub const MAX_POLICY_BYTES: usize = 1 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    version: Spanned<u64>,
    name: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    on_deny: Option<Spanned<String>>,
    deterministic: Option<bool>,
    budgets: Option<Spanned<RawBudgets>>,
    filesystem: Option<Spanned<RawFilesystem>>,
    network: Option<Spanned<RawNetwork>>,
    stdio: Option<RawStdio>,
    env: Option<BTreeMap<String, String>>,
    limits: Option<RawLimits>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudgets {
    fuel: Option<Spanned<RawSize>>,
    timeout_ms: Option<Spanned<RawSize>>,
    memory_bytes: Option<Spanned<RawSize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilesystem {
    mounts: Option<Vec<Spanned<RawMount>>>,
    rules: Option<Vec<Spanned<RawFsRule>>>,
    quotas: Option<RawFsQuotas>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMount {
    guest: Spanned<String>,
    host: Spanned<String>,
    mode: Option<Spanned<String>>,
    overlap: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFsRule {
    id: Spanned<String>,
    effect: Spanned<String>,
    ops: Vec<Spanned<String>>,
    paths: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFsQuotas {
    read_bytes: Option<Spanned<RawSize>>,
    write_bytes: Option<Spanned<RawSize>>,
    entries: Option<Spanned<RawSize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    rules: Option<Vec<Spanned<RawNetRule>>>,
    quotas: Option<RawNetQuotas>,
    resolve: Option<BTreeMap<String, Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetRule {
    id: Spanned<String>,
    effect: Spanned<String>,
    hosts: Option<Vec<Spanned<String>>>,
    cidrs: Option<Vec<Spanned<String>>>,
    ports: Option<Vec<Spanned<RawPort>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetQuotas {
    connections: Option<Spanned<RawSize>>,
    egress_bytes: Option<Spanned<RawSize>>,
    ingress_bytes: Option<Spanned<RawSize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStdio {
    stdout_bytes: Option<Spanned<RawSize>>,
    stderr_bytes: Option<Spanned<RawSize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_events: Option<Spanned<RawSize>>,
    module_bytes: Option<Spanned<RawSize>>,
    open_files: Option<Spanned<RawSize>>,
}

/// A size or count as written: a number, or text to parse (`64MiB`, `1_000`).
enum RawSize {
    Number(u64),
    Text(String),
    Invalid(String),
}

impl<'de> Deserialize<'de> for RawSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = RawSize;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a size such as `65536` or `64KiB`")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawSize, E> {
                Ok(RawSize::Number(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawSize, E> {
                Ok(u64::try_from(v)
                    .map(RawSize::Number)
                    .unwrap_or_else(|_| RawSize::Invalid(format!("`{v}` is negative"))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawSize, E> {
                Ok(RawSize::Invalid(format!("`{v}` is not a whole number")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawSize, E> {
                Ok(RawSize::Text(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawSize, E> {
                Ok(RawSize::Invalid(format!("`{v}` is not a size")))
            }
        }
        deserializer.deserialize_any(SizeVisitor)
    }
}

/// A port as written: `443` or `"8000-8100"`.
enum RawPort {
    Number(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for RawPort {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PortVisitor;
        impl Visitor<'_> for PortVisitor {
            type Value = RawPort;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a port such as `443` or a range such as `\"8000-8100\"`")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawPort, E> {
                Ok(RawPort::Number(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawPort, E> {
                Ok(RawPort::Number(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawPort, E> {
                Ok(RawPort::Text(v.to_owned()))
            }
        }
        deserializer.deserialize_any(PortVisitor)
    }
}

/// A YAML node as written, only to check its keys: every mapping's keys with their places.
enum Node {
    Map(Vec<(Spanned<KeyText>, Node)>),
    Seq(Vec<Node>),
    Scalar,
}

/// A mapping key as text (a number or boolean key is shown as written).
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = KeyText;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
                Ok(KeyText("null".to_owned()))
            }
        }
        deserializer.deserialize_any(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<KeyText>>()? {
                    entries.push((key, map.next_value::<Node>()?));
                }
                Ok(Node::Map(entries))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Node>()? {
                    items.push(item);
                }
                Ok(Node::Seq(items))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_none<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
        }
        deserializer.deserialize_any(NodeVisitor)
    }
}

/// The keys a mapping at `path` may hold (`[]` stands for a list's items); `None` where the
/// policy's author names the keys (`env`, `network.resolve`). Matches the `Raw*` structs.
fn known_keys(path: &str) -> Option<&'static [&'static str]> {
    Some(match path {
        "" => &[
            "version",
            "name",
            "mode",
            "on_deny",
            "deterministic",
            "budgets",
            "filesystem",
            "network",
            "stdio",
            "env",
            "limits",
        ],
        "budgets" => &["fuel", "timeout_ms", "memory_bytes"],
        "filesystem" => &["mounts", "rules", "quotas"],
        "filesystem.mounts[]" => &["guest", "host", "mode", "overlap"],
        "filesystem.rules[]" => &["id", "effect", "ops", "paths"],
        "filesystem.quotas" => &["read_bytes", "write_bytes", "entries"],
        "network" => &["rules", "quotas", "resolve"],
        "network.rules[]" => &["id", "effect", "hosts", "cidrs", "ports"],
        "network.quotas" => &["connections", "egress_bytes", "ingress_bytes"],
        "stdio" => &["stdout_bytes", "stderr_bytes"],
        "limits" => &["max_events", "module_bytes", "open_files"],
        _ => return None,
    })
}

/// Every unknown key of the policy, each with the key it is likely a misspelling of.
fn unknown_keys(node: &Node, path: &str, errors: &mut Vec<PolicyError>) {
    match node {
        Node::Map(entries) => {
            let known = known_keys(path);
            for (key, value) in entries {
                let name = key.value.0.as_str();
                if let Some(known) = known {
                    if !known.contains(&name) {
                        errors.push(unknown_key_error(name, path, known, span_of(key)));
                        continue;
                    }
                } else {
                    continue;
                }
                let child = match path {
                    "" => name.to_owned(),
                    _ => format!("{path}.{name}"),
                };
                unknown_keys(value, &child, errors);
            }
        }
        Node::Seq(items) => {
            for item in items {
                unknown_keys(item, &format!("{path}[]"), errors);
            }
        }
        Node::Scalar => {}
    }
}

fn unknown_key_error(name: &str, path: &str, known: &[&str], span: Span) -> PolicyError {
    let place = match path {
        "" => "at the top level".to_owned(),
        _ => format!("in `{}`", path.replace("[]", "")),
    };
    let help = match crate::error::closest(name, known) {
        Some(near) => format!("did you mean `{near}`? (keys here: {})", known.join(", ")),
        None => format!("remove it or use one of: {}", known.join(", ")),
    };
    PolicyError::new(
        PolicyErrorKind::UnknownKey,
        span,
        format!("unknown key `{name}` {place}"),
        help,
    )
}

/// A YAML syntax error in plain words, or `None` when the text is well-formed YAML.
fn syntax_error(text: &str) -> Option<PolicyError> {
    let options = serde_saphyr::options! { with_snippet: false };
    let error = serde_saphyr::from_str_with_options::<de::IgnoredAny>(text, options).err()?;
    let span = error
        .location()
        .map(|l| Span::new(l.line(), l.column()))
        .unwrap_or(Span::UNKNOWN);
    let raw = error.to_string();
    let raw = raw.split(" at line ").next().unwrap_or(&raw).trim();
    let (message, help) = if let Some(key) = raw.strip_prefix("duplicate mapping key: ") {
        let key = key.split(',').next().unwrap_or(key).trim();
        (
            format!("key `{key}` is given twice in the same mapping"),
            "keep one of them".to_owned(),
        )
    } else {
        (
            format!(
                "the file is not valid YAML: {}",
                raw.trim_end_matches('.').to_lowercase()
            ),
            "check the indentation, quotes and brackets at this place".to_owned(),
        )
    };
    Some(PolicyError::new(
        PolicyErrorKind::Syntax,
        span,
        message,
        help,
    ))
}

fn span_of<T>(spanned: &Spanned<T>) -> Span {
    Span::new(spanned.referenced.line(), spanned.referenced.column())
}

/// Reads and parses a policy file; relative mount folders are taken from its folder.
pub fn load_policy(path: &Path) -> Result<(Policy, String), PolicyErrors> {
    let io_error = |message: String| PolicyErrors {
        errors: vec![PolicyError::new(
            PolicyErrorKind::Io,
            Span::UNKNOWN,
            message,
            "check the path given with `--policy`",
        )],
    };
    let bytes = std::fs::read(path)
        .map_err(|e| io_error(format!("cannot read policy `{}`: {e}", path.display())))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| io_error(format!("policy `{}` is not UTF-8 text", path.display())))?;
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let policy = parse_policy(&text, base_dir)?;
    Ok((policy, text))
}

/// Parses policy text. `base_dir` is the folder relative mount paths are taken from.
pub fn parse_policy(text: &str, base_dir: &Path) -> Result<Policy, PolicyErrors> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(PolicyErrors {
            errors: vec![PolicyError::new(
                PolicyErrorKind::InvalidValue,
                Span::UNKNOWN,
                format!(
                    "the policy is {} bytes; at most {MAX_POLICY_BYTES} are read",
                    text.len()
                ),
                "split the policy or remove repeated rules",
            )],
        });
    }
    if let Some(error) = syntax_error(text) {
        return Err(PolicyErrors {
            errors: vec![error],
        });
    }
    // Every unknown key at once; the typed pass stops at the first mistake of its kind.
    let mut structural = Vec::new();
    let options = serde_saphyr::options! { with_snippet: false };
    if let Ok(node) = serde_saphyr::from_str_with_options::<Node>(text, options) {
        unknown_keys(&node, "", &mut structural);
    }
    match typed(text, base_dir) {
        Ok(policy) if structural.is_empty() => Ok(policy),
        Ok(_) => Err(PolicyErrors { errors: structural }),
        Err(errors) => {
            let unknown_first = errors.first().map(|e| e.kind) == Some(PolicyErrorKind::UnknownKey);
            if !unknown_first || structural.is_empty() {
                structural.extend(errors);
            } else {
                // With the unknown keys' lines blanked, the rest of the policy is checked too,
                // so one pass reports every mistake it can.
                let blanked = blank_unknown_keys(text, &structural);
                if blanked != text {
                    if let Err(more) = typed(&blanked, base_dir) {
                        structural.extend(
                            more.into_iter()
                                .filter(|e| e.kind != PolicyErrorKind::UnknownKey),
                        );
                    }
                }
            }
            structural.sort_by_key(|e| (e.span.line, e.span.column));
            structural.dedup();
            Err(PolicyErrors { errors: structural })
        }
    }
}

/// The typed pass and validation: every mistake the validator finds, or the first one the
/// YAML-to-types step stops at.
fn typed(text: &str, base_dir: &Path) -> Result<Policy, Vec<PolicyError>> {
    let options = serde_saphyr::options! { with_snippet: false };
    let raw: RawPolicy =
        serde_saphyr::from_str_with_options(text, options).map_err(|e| vec![yaml_error(&e)])?;
    let mut v = Validator {
        errors: Vec::new(),
        rule_ids: HashSet::new(),
    };
    let policy = v.policy(raw, base_dir);
    if v.errors.is_empty() {
        Ok(policy)
    } else {
        v.errors.sort_by_key(|e| (e.span.line, e.span.column));
        Err(v.errors)
    }
}

/// `text` with each unknown key written in block style (first on its line) blanked out with
/// its indented value, line numbers kept. Keys inside a flow map stay.
fn blank_unknown_keys(text: &str, errors: &[PolicyError]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for e in errors
        .iter()
        .filter(|e| e.kind == PolicyErrorKind::UnknownKey)
    {
        let Some(at) = (e.span.line as usize).checked_sub(1) else {
            continue;
        };
        let Some(line) = lines.get(at) else { continue };
        let indent = line.len() - line.trim_start_matches(' ').len();
        if e.span.column as usize != indent + 1 || line.trim_start().starts_with('-') {
            continue;
        }
        lines[at].clear();
        for next in lines.iter_mut().skip(at + 1) {
            let inner = next.len() - next.trim_start_matches(' ').len();
            if !next.trim().is_empty() && inner <= indent {
                break;
            }
            next.clear();
        }
    }
    let mut out = lines.join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn yaml_error(error: &serde_saphyr::Error) -> PolicyError {
    let span = error
        .location()
        .map(|l| Span::new(l.line(), l.column()))
        .unwrap_or(Span::UNKNOWN);
    let mut message = error.to_string();
    // The crate appends its own position; ours is in the span.
    if let Some(at) = message.find(" at line ") {
        message.truncate(at);
    }
    let message = message.trim().trim_end_matches('.').to_owned();
    let (kind, help) = if message.contains("unknown field") {
        (
            PolicyErrorKind::UnknownKey,
            "remove the key or fix its spelling; `sandbox-cli policy schema` lists every key",
        )
    } else if message.contains("missing field `version`") {
        return PolicyError::new(
            PolicyErrorKind::MissingKey,
            Span::new(1, 1),
            "the policy has no `version` key",
            "add `version: 1` as the first line",
        );
    } else if let Some(field) = missing_field(&message) {
        return PolicyError::new(
            PolicyErrorKind::MissingKey,
            span,
            format!("missing key `{field}`"),
            "add the key; `sandbox-cli policy schema` says which keys are required",
        );
    } else if message.contains("invalid type") || message.contains("expected") {
        (
            PolicyErrorKind::WrongType,
            "give the key a value of the type it expects; `sandbox-cli policy schema` shows each type",
        )
    } else {
        (
            PolicyErrorKind::Syntax,
            "fix the YAML syntax at this place (indentation, quotes, brackets)",
        )
    };
    PolicyError::new(kind, span, message, help)
}

/// The key a serde "missing field `x`" message names.
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.split("missing field `").nth(1)?;
    rest.split('`').next()
}

struct Validator {
    errors: Vec<PolicyError>,
    rule_ids: HashSet<String>,
}

impl Validator {
    fn error(&mut self, kind: PolicyErrorKind, span: Span, message: String, help: &str) {
        self.errors
            .push(PolicyError::new(kind, span, message, help));
    }

    fn policy(&mut self, raw: RawPolicy, base_dir: &Path) -> Policy {
        if raw.version.value != 1 {
            self.error(
                PolicyErrorKind::UnsupportedVersion,
                span_of(&raw.version),
                format!("policy version `{}` is not supported", raw.version.value),
                "write `version: 1`",
            );
        }
        let mode = match &raw.mode {
            None => Setting::default_value(Mode::Enforce),
            Some(m) => {
                let value = match m.value.as_str() {
                    "enforce" => Mode::Enforce,
                    "audit" => Mode::Audit,
                    other => {
                        self.error(
                            PolicyErrorKind::InvalidValue,
                            span_of(m),
                            format!(
                                "`mode: {other}` is not a mode{}",
                                did_you_mean(other, &["enforce", "audit"])
                            ),
                            "write `mode: enforce` or `mode: audit`",
                        );
                        Mode::Enforce
                    }
                };
                Setting {
                    value,
                    span: Some(span_of(m)),
                }
            }
        };
        let on_deny = match &raw.on_deny {
            None => OnDeny::Error,
            Some(o) => match o.value.as_str() {
                "error" => OnDeny::Error,
                "trap" => OnDeny::Trap,
                other => {
                    self.error(
                        PolicyErrorKind::InvalidValue,
                        span_of(o),
                        format!(
                            "`on_deny: {other}` is not a choice{}",
                            did_you_mean(other, &["error", "trap"])
                        ),
                        "write `on_deny: error` (the guest gets an error code) or `on_deny: trap`",
                    );
                    OnDeny::Error
                }
            },
        };
        let name = raw
            .name
            .map(|n| n.value)
            .unwrap_or_else(|| "unnamed".into());
        let budgets = self.budgets(raw.budgets);
        let filesystem = self.filesystem(raw.filesystem);
        let network = self.network(raw.network);
        let stdio = match raw.stdio {
            None => Stdio {
                stdout_bytes: Setting::default_value(DEFAULT_STDIO_BYTES),
                stderr_bytes: Setting::default_value(DEFAULT_STDIO_BYTES),
            },
            Some(s) => Stdio {
                stdout_bytes: self.setting_or(s.stdout_bytes, DEFAULT_STDIO_BYTES),
                stderr_bytes: self.setting_or(s.stderr_bytes, DEFAULT_STDIO_BYTES),
            },
        };
        let limits = match raw.limits {
            None => Limits {
                max_events: Setting::default_value(DEFAULT_MAX_EVENTS),
                module_bytes: Setting::default_value(DEFAULT_MODULE_BYTES),
                open_files: Setting::default_value(DEFAULT_OPEN_FILES),
            },
            Some(l) => Limits {
                max_events: self.setting_or(l.max_events, DEFAULT_MAX_EVENTS),
                module_bytes: self.setting_or(l.module_bytes, DEFAULT_MODULE_BYTES),
                open_files: self.setting_or(l.open_files, DEFAULT_OPEN_FILES),
            },
        };
        Policy {
            name,
            mode,
            on_deny,
            deterministic: raw.deterministic.unwrap_or(false),
            budgets,
            filesystem,
            network,
            stdio,
            env: raw.env.unwrap_or_default().into_iter().collect(),
            limits,
            base_dir: base_dir.to_path_buf(),
        }
    }

    fn size(&mut self, raw: Spanned<RawSize>) -> Option<Setting<u64>> {
        let span = span_of(&raw);
        let parsed = match raw.value {
            RawSize::Number(n) => Ok(n),
            RawSize::Text(text) => parse_size(&text),
            RawSize::Invalid(message) => Err(message),
        };
        match parsed {
            Ok(value) => Some(Setting {
                value,
                span: Some(span),
            }),
            Err(message) => {
                self.error(
                    PolicyErrorKind::InvalidSize,
                    span,
                    message,
                    "write a whole number (`1_000_000`) or one with a binary unit (`64KiB`, `64MiB`, `1GiB`)",
                );
                None
            }
        }
    }

    fn setting_or(&mut self, raw: Option<Spanned<RawSize>>, default: u64) -> Setting<u64> {
        raw.and_then(|r| self.size(r))
            .unwrap_or(Setting::default_value(default))
    }

    fn optional_size(&mut self, raw: Option<Spanned<RawSize>>) -> Option<Setting<u64>> {
        raw.and_then(|r| self.size(r))
    }

    fn budgets(&mut self, raw: Option<Spanned<RawBudgets>>) -> Budgets {
        let span = raw.as_ref().map(span_of);
        let raw = raw.map(|r| r.value);
        let (fuel, timeout, memory) = match raw {
            Some(b) => (b.fuel, b.timeout_ms, b.memory_bytes),
            None => (None, None, None),
        };
        let budgets = Budgets {
            fuel: self.setting_or(fuel, DEFAULT_FUEL),
            timeout_ms: self.setting_or(timeout, DEFAULT_TIMEOUT_MS),
            memory_bytes: self.setting_or(memory, DEFAULT_MEMORY_BYTES),
            span,
        };
        if budgets.timeout_ms.value > MAX_TIMEOUT_MS {
            self.error(
                PolicyErrorKind::InvalidValue,
                budgets.timeout_ms.span.unwrap_or(Span::UNKNOWN),
                format!(
                    "`budgets.timeout_ms` is {}: at most {MAX_TIMEOUT_MS} (one day) is accepted",
                    budgets.timeout_ms.value
                ),
                "give the run a wall-clock budget of at most a day",
            );
        }
        for (name, setting) in [
            ("fuel", budgets.fuel),
            ("timeout_ms", budgets.timeout_ms),
            ("memory_bytes", budgets.memory_bytes),
        ] {
            if setting.value == 0 {
                self.error(
                    PolicyErrorKind::InvalidValue,
                    setting.span.unwrap_or(Span::UNKNOWN),
                    format!("`budgets.{name}` is 0: no plugin could run"),
                    "give a positive budget, or leave the key out for the built-in default",
                );
            }
        }
        budgets
    }

    fn rule_id(&mut self, id: &Spanned<String>) {
        let span = span_of(id);
        let valid = !id.value.is_empty()
            && id.value.len() <= 64
            && id
                .value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            self.error(
                PolicyErrorKind::InvalidValue,
                span,
                format!("rule id `{}` is not a valid id", id.value),
                "use 1 to 64 letters, digits, `-` or `_` (dots are kept for built-in ids such as `filesystem.default`)",
            );
        } else if !self.rule_ids.insert(id.value.clone()) {
            self.error(
                PolicyErrorKind::DuplicateRuleId,
                span,
                format!("rule id `{}` is used twice", id.value),
                "give every rule its own id: events and explain name rules by id",
            );
        }
    }

    fn effect(&mut self, effect: &Spanned<String>) -> Effect {
        match effect.value.as_str() {
            "allow" => Effect::Allow,
            "deny" => Effect::Deny,
            other => {
                self.error(
                    PolicyErrorKind::InvalidValue,
                    span_of(effect),
                    format!(
                        "`effect: {other}` is not an effect{}",
                        did_you_mean(other, &["allow", "deny"])
                    ),
                    "write `effect: allow` or `effect: deny`",
                );
                Effect::Deny
            }
        }
    }

    /// A mount's `overlap` key: only `intended` is a value.
    fn overlap(&mut self, raw: Option<&Spanned<String>>, span: Span) -> bool {
        match raw.map(|s| s.value.as_str()) {
            None => false,
            Some("intended") => true,
            Some(other) => {
                self.error(
                    PolicyErrorKind::InvalidValue,
                    raw.map(span_of).unwrap_or(span),
                    format!("mount overlap `{other}` is not a value"),
                    "write `overlap: intended`, or leave the key out",
                );
                false
            }
        }
    }

    fn filesystem(&mut self, raw: Option<Spanned<RawFilesystem>>) -> Filesystem {
        let Some(raw) = raw else {
            return Filesystem::default();
        };
        let span = Some(span_of(&raw));
        let raw = raw.value;
        let mut mounts: Vec<Mount> = Vec::new();
        for m in raw.mounts.unwrap_or_default() {
            let span = span_of(&m);
            let m = m.value;
            let guest = match normalize_guest_path(m.guest.value.as_bytes()) {
                Ok(g) if m.guest.value.starts_with('/') && g == m.guest.value => g,
                Ok(g) => {
                    self.error(
                        PolicyErrorKind::InvalidPath,
                        span_of(&m.guest),
                        format!(
                            "mount guest path `{}` is not a normalised absolute path",
                            m.guest.value
                        ),
                        &format!("write `guest: {g}`"),
                    );
                    g
                }
                Err(why) => {
                    self.error(
                        PolicyErrorKind::InvalidPath,
                        span_of(&m.guest),
                        format!("mount guest path is invalid: {}", why.describe()),
                        "write an absolute guest path such as `/data`",
                    );
                    continue;
                }
            };
            if mounts.iter().any(|existing| existing.guest == guest) {
                self.error(
                    PolicyErrorKind::InvalidValue,
                    span_of(&m.guest),
                    format!("guest path `{guest}` is mounted twice"),
                    "mount each guest path once",
                );
            }
            if m.host.value.trim().is_empty() || m.host.value.contains('\0') {
                self.error(
                    PolicyErrorKind::InvalidPath,
                    span_of(&m.host),
                    "mount host path is empty or contains a NUL byte".into(),
                    "name a host folder, relative to the policy file's folder",
                );
            }
            let mode = match m.mode.as_ref().map(|s| s.value.as_str()) {
                None | Some("ro") => MountMode::ReadOnly,
                Some("rw") => MountMode::ReadWrite,
                Some(other) => {
                    self.error(
                        PolicyErrorKind::InvalidValue,
                        m.mode.as_ref().map(span_of).unwrap_or(span),
                        format!(
                            "mount mode `{other}` is not a mode{}",
                            did_you_mean(other, &["ro", "rw"])
                        ),
                        "write `mode: ro` (read-only, the default) or `mode: rw`",
                    );
                    MountMode::ReadOnly
                }
            };
            let overlap_intended = self.overlap(m.overlap.as_ref(), span);
            mounts.push(Mount {
                guest,
                host: m.host.value,
                mode,
                overlap_intended,
                span,
            });
        }
        let mut rules = Vec::new();
        for r in raw.rules.unwrap_or_default() {
            let span = span_of(&r);
            let r = r.value;
            self.rule_id(&r.id);
            let effect = self.effect(&r.effect);
            let mut ops = FsOperations::default();
            for op in &r.ops {
                match FsOperation::parse(&op.value) {
                    Some(o) => ops.insert(o),
                    None => self.error(
                        PolicyErrorKind::InvalidValue,
                        span_of(op),
                        format!(
                            "`{}` is not a filesystem operation{}",
                            op.value,
                            did_you_mean(&op.value, &FS_OPS)
                        ),
                        "use read, write, create, delete, list, rename or symlink",
                    ),
                }
            }
            if r.ops.is_empty() {
                self.error(
                    PolicyErrorKind::InvalidValue,
                    span_of(&r.id),
                    format!("rule `{}` lists no operations", r.id.value),
                    "list the operations it covers, e.g. `ops: [read, list]`",
                );
            }
            let mut paths = Vec::new();
            for p in &r.paths {
                match GlobPattern::parse(&p.value) {
                    Ok(g) => paths.push(g),
                    Err(message) => self.error(
                        PolicyErrorKind::InvalidGlob,
                        span_of(p),
                        message,
                        "globs are absolute guest paths; `*` matches within a segment, `**` any depth",
                    ),
                }
            }
            if r.paths.is_empty() {
                self.error(
                    PolicyErrorKind::InvalidValue,
                    span_of(&r.id),
                    format!("rule `{}` lists no paths", r.id.value),
                    "list the guest paths it covers, e.g. `paths: [\"/data/**\"]`",
                );
            }
            rules.push(FsRule {
                id: r.id.value,
                effect,
                ops,
                paths,
                span,
            });
        }
        let quotas = match raw.quotas {
            None => FsQuotas::default(),
            Some(q) => FsQuotas {
                read_bytes: self.optional_size(q.read_bytes),
                write_bytes: self.optional_size(q.write_bytes),
                entries: self.optional_size(q.entries),
            },
        };
        Filesystem {
            mounts,
            rules,
            quotas,
            span,
        }
    }

    fn network(&mut self, raw: Option<Spanned<RawNetwork>>) -> Network {
        let Some(raw) = raw else {
            return Network::default();
        };
        let span = Some(span_of(&raw));
        let raw = raw.value;
        let mut rules = Vec::new();
        for r in raw.rules.unwrap_or_default() {
            let span = span_of(&r);
            let r = r.value;
            self.rule_id(&r.id);
            let effect = self.effect(&r.effect);
            let mut hosts = Vec::new();
            let mut host_texts = Vec::new();
            for h in r.hosts.iter().flatten() {
                match HostPattern::parse(&h.value) {
                    Ok(p) => {
                        hosts.push(p);
                        host_texts.push(h.value.clone());
                    }
                    Err(message) => self.error(
                        PolicyErrorKind::InvalidHost,
                        span_of(h),
                        message,
                        "write `api.example.com`, `*.example.com`, an IP address, or `*`",
                    ),
                }
            }
            let mut cidrs = Vec::new();
            for c in r.cidrs.iter().flatten() {
                match Cidr::parse(&c.value) {
                    Ok(cidr) => cidrs.push(cidr),
                    Err(message) => self.error(
                        PolicyErrorKind::InvalidCidr,
                        span_of(c),
                        message,
                        "write an address block such as `10.0.0.0/8` or `fd00::/8`",
                    ),
                }
            }
            if r.hosts.as_ref().is_none_or(Vec::is_empty)
                && r.cidrs.as_ref().is_none_or(Vec::is_empty)
            {
                self.error(
                    PolicyErrorKind::MissingKey,
                    span_of(&r.id),
                    format!("network rule `{}` names no hosts and no cidrs", r.id.value),
                    "add `hosts: [...]` or `cidrs: [...]`",
                );
            }
            let mut ports = Vec::new();
            for p in r.ports.iter().flatten() {
                let parsed = match &p.value {
                    RawPort::Number(n) => u16::try_from(*n)
                        .ok()
                        .filter(|n| *n > 0)
                        .map(|n| PortRange { first: n, last: n })
                        .ok_or_else(|| format!("`{n}` is not a port: ports are 1 to 65535")),
                    RawPort::Text(t) => PortRange::parse(t),
                };
                match parsed {
                    Ok(range) => ports.push(range),
                    Err(message) => self.error(
                        PolicyErrorKind::InvalidPort,
                        span_of(p),
                        message,
                        "write a port such as `443` or a range such as `\"8000-8100\"`",
                    ),
                }
            }
            if effect == Effect::Allow && r.ports.as_ref().is_none_or(Vec::is_empty) {
                self.error(
                    PolicyErrorKind::MissingKey,
                    span_of(&r.id),
                    format!("allow rule `{}` lists no ports", r.id.value),
                    "list the ports it allows, e.g. `ports: [443]` (only deny rules may leave ports out, meaning every port)",
                );
            }
            rules.push(NetRule {
                id: r.id.value,
                effect,
                hosts,
                host_texts,
                cidrs,
                ports,
                span,
            });
        }
        let quotas = match raw.quotas {
            None => NetQuotas::default(),
            Some(q) => NetQuotas {
                connections: self.optional_size(q.connections),
                egress_bytes: self.optional_size(q.egress_bytes),
                ingress_bytes: self.optional_size(q.ingress_bytes),
            },
        };
        let mut resolve = Vec::new();
        for (name, address) in raw.resolve.unwrap_or_default() {
            let ip: Option<IpAddr> = parse_ip_literal(&address.value);
            match ip {
                Some(ip) if parse_ip_literal(&name).is_none() => {
                    resolve.push((normalize_host(&name), ip))
                }
                Some(_) => self.error(
                    PolicyErrorKind::InvalidHost,
                    span_of(&address),
                    format!("`resolve` pins a name, but `{name}` is already an address"),
                    "list host names only under `resolve`",
                ),
                None => self.error(
                    PolicyErrorKind::InvalidHost,
                    span_of(&address),
                    format!(
                        "`{}` is not an IP address (for `{name}` in `resolve`)",
                        address.value
                    ),
                    "pin each name to one IP address, e.g. `api.test: 127.0.0.1`",
                ),
            }
        }
        Network {
            rules,
            quotas,
            resolve,
            span,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<PolicyError> {
        parse_policy(text, Path::new(".")).unwrap_err().errors
    }

    #[test]
    fn every_misspelt_key_is_reported_at_once_with_its_likely_word() {
        let errors = errors("version: 1\nfilesytem: {}\nmdoe: audit\nbudgets: { fule: 1 }\n");
        let found: Vec<(PolicyErrorKind, u32, &str)> = errors
            .iter()
            .map(|e| (e.kind, e.span.line, e.help.as_str()))
            .collect();
        assert_eq!(found.len(), 3, "{errors:?}");
        assert!(found.iter().all(|f| f.0 == PolicyErrorKind::UnknownKey));
        assert_eq!(found.iter().map(|f| f.1).collect::<Vec<_>>(), [2, 3, 4]);
        assert!(found[0].2.starts_with("did you mean `filesystem`?"));
        assert!(found[1].2.starts_with("did you mean `mode`?"));
        assert!(found[2].2.starts_with("did you mean `fuel`?"));
        assert_eq!(errors[2].message, "unknown key `fule` in `budgets`");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_reported_in_one_pass() {
        let errors = errors(
            "version: 1\nfilesytem:\n  mounts: []\nmode: audti\nbudgets:\n  fuel: lots\n  colour: red\n",
        );
        let found: Vec<(PolicyErrorKind, u32)> =
            errors.iter().map(|e| (e.kind, e.span.line)).collect();
        assert_eq!(
            found,
            [
                (PolicyErrorKind::UnknownKey, 2),
                (PolicyErrorKind::InvalidValue, 4),
                (PolicyErrorKind::InvalidSize, 6),
                (PolicyErrorKind::UnknownKey, 7),
            ],
            "{errors:?}"
        );
    }

    #[test]
    fn misspelt_values_get_a_suggestion() {
        let errors = errors(
            "version: 1\nmode: audti\nfilesystem:\n  rules:\n    - { id: a, effect: alow, ops: [reed], paths: [\"/x\"] }\n",
        );
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "`mode: audti` is not a mode; did you mean `audit`?",
                "`effect: alow` is not an effect; did you mean `allow`?",
                "`reed` is not a filesystem operation; did you mean `read`?",
            ]
        );
    }

    #[test]
    fn yaml_syntax_errors_are_their_own_class_in_plain_words() {
        let e = &errors("version: 1\nname: [a\n")[0];
        assert_eq!(e.kind, PolicyErrorKind::Syntax);
        assert!(
            e.message.starts_with("the file is not valid YAML: "),
            "{e:?}"
        );
        let e = &errors("version: 1\nname: a\nname: b\n")[0];
        assert_eq!(e.kind, PolicyErrorKind::Syntax);
        assert_eq!(e.message, "key `name` is given twice in the same mapping");
        assert_eq!((e.span.line, e.span.column), (3, 1));
        for text in [
            "version: 1\nname: a\nname: b\n",
            "version: 1\n  name: x\n bad",
        ] {
            let e = &errors(text)[0];
            for jargon in ["DuplicateKeyPolicy", "Options", "<anon>", "u64", "scalar"] {
                assert!(!e.message.contains(jargon), "{jargon} in {e:?}");
            }
        }
    }

    #[test]
    fn a_missing_version_points_at_the_top_of_the_file() {
        let e = &errors("name: x\nmode: audit\n")[0];
        assert_eq!(e.kind, PolicyErrorKind::MissingKey);
        assert_eq!((e.span.line, e.span.column), (1, 1));
        assert_eq!(e.message, "the policy has no `version` key");
    }
}
