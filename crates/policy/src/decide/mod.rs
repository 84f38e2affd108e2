//! `decide`: a pure function of (policy, usage so far, request) to a decision. It touches no
//! file and no socket: the broker resolves paths and names first and passes what it found in
//! the request, so a recorded request can be decided again later (replay) with the same result.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

mod kinds;

pub use kinds::{
    ClockKind, ClockRequest, EnvRequest, LinkRequest, OpenConnectionsRequest, OpenFilesRequest,
    RandomRequest, MAX_OPEN_CONNECTIONS,
};

use crate::model::{Effect, FsOperation, Mode, MountMode, NetRule, Policy};
use crate::net::{
    blocked_address_kind, is_valid_host_name, normalize_host, parse_ip_literal,
    without_empty_labels,
};
use crate::path::normalize_guest_str;
use crate::reason::ReasonCode;

/// What the broker asks about a file. `Stat` (metadata) is granted by `read` or `list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsAccess {
    /// Read a file's bytes.
    Read,
    /// Write to a file (also opening with truncate).
    Write,
    /// Create a file or directory.
    Create,
    /// Remove a file or directory.
    Delete,
    /// List a directory.
    List,
    /// Rename (asked for the source and the destination).
    Rename,
    /// Create a symbolic link at the path.
    Symlink,
    /// Read metadata.
    Stat,
}

impl FsAccess {
    /// The access as written in requests, e.g. `read`.
    pub fn as_str(self) -> &'static str {
        match self {
            FsAccess::Read => "read",
            FsAccess::Write => "write",
            FsAccess::Create => "create",
            FsAccess::Delete => "delete",
            FsAccess::List => "list",
            FsAccess::Rename => "rename",
            FsAccess::Symlink => "symlink",
            FsAccess::Stat => "stat",
        }
    }

    /// The policy operations that grant this access.
    pub fn granted_by(self) -> &'static [FsOperation] {
        match self {
            FsAccess::Read => &[FsOperation::Read],
            FsAccess::Write => &[FsOperation::Write],
            FsAccess::Create => &[FsOperation::Create],
            FsAccess::Delete => &[FsOperation::Delete],
            FsAccess::List => &[FsOperation::List],
            FsAccess::Rename => &[FsOperation::Rename],
            FsAccess::Symlink => &[FsOperation::Symlink],
            FsAccess::Stat => &[FsOperation::Read, FsOperation::List],
        }
    }

    /// True for accesses that change what is on disk (refused on read-only mounts).
    pub fn mutates(self) -> bool {
        matches!(
            self,
            FsAccess::Write
                | FsAccess::Create
                | FsAccess::Delete
                | FsAccess::Rename
                | FsAccess::Symlink
        )
    }

    /// The capability name used in events, e.g. `fs.read`.
    pub fn capability(self) -> &'static str {
        match self {
            FsAccess::Read => "fs.read",
            FsAccess::Write => "fs.write",
            FsAccess::Create => "fs.create",
            FsAccess::Delete => "fs.delete",
            FsAccess::List => "fs.list",
            FsAccess::Rename => "fs.rename",
            FsAccess::Symlink => "fs.symlink",
            FsAccess::Stat => "fs.stat",
        }
    }
}

/// A filesystem request as the guest asked it, plus what the broker found when it resolved
/// the path beneath its mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsRequest {
    /// What is asked.
    pub op: FsAccess,
    /// The path as the guest wrote it (lossy UTF-8 when `not_utf8`).
    pub path: String,
    /// True when the path bytes were not UTF-8.
    #[serde(default, skip_serializing_if = "is_false")]
    pub not_utf8: bool,
    /// The guest path after following symlinks, when it differs from the normalised path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<String>,
    /// Bytes to read or write; 0 for operations that move no data.
    #[serde(default)]
    pub bytes: u64,
}

/// A filesystem request borrowed from the broker's buffers: what [`Policy::decide_fs`]
/// decides, so the host-call path need not build an owned [`FsRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsQuery<'a> {
    /// What is asked.
    pub op: FsAccess,
    /// The path as the guest wrote it.
    pub path: &'a str,
    /// True when the path bytes were not UTF-8.
    pub not_utf8: bool,
    /// The guest path after following symlinks, when known.
    pub resolved: Option<&'a str>,
    /// Bytes to read or write.
    pub bytes: u64,
}

impl FsRequest {
    /// The request borrowed, for [`Policy::decide_fs`].
    pub fn as_query(&self) -> FsQuery<'_> {
        FsQuery {
            op: self.op,
            path: &self.path,
            not_utf8: self.not_utf8,
            resolved: self.resolved.as_deref(),
            bytes: self.bytes,
        }
    }
}

impl FsQuery<'_> {
    /// An owned copy, for an event.
    pub fn to_request(&self) -> FsRequest {
        FsRequest {
            op: self.op,
            path: self.path.to_owned(),
            not_utf8: self.not_utf8,
            resolved: self.resolved.map(str::to_owned),
            bytes: self.bytes,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// What the broker asks about the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetAccess {
    /// Open a connection to `host:port`.
    Connect,
    /// Send bytes on a connection.
    Send,
    /// Receive bytes on a connection.
    Receive,
    /// May this name be sent to a resolver? Asked before any lookup (capability
    /// `net.resolve`); `port` is the port the connection will use.
    Resolve,
}

/// A network request. `Send` and `Receive` name the connection they use, so that the rule
/// that allowed the connection is also the rule of each transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetRequest {
    /// What is asked.
    pub op: NetAccess,
    /// The host as the guest wrote it (a name or an IP literal).
    pub host: String,
    /// The port.
    pub port: u16,
    /// The address the name resolved to (or the literal), once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// Bytes to send or receive; 0 for a connect or a lookup.
    #[serde(default)]
    pub bytes: u64,
}

impl NetRequest {
    /// The capability name used in events, e.g. `net.connect`.
    pub fn capability(&self) -> &'static str {
        match self.op {
            NetAccess::Connect => "net.connect",
            NetAccess::Send => "net.send",
            NetAccess::Receive => "net.receive",
            NetAccess::Resolve => "net.resolve",
        }
    }
}

/// Everything `decide` can be asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Request {
    /// A file operation.
    Fs(FsRequest),
    /// A connection, transfer or name lookup.
    Net(NetRequest),
    /// One more open file (`limits.open_files`).
    #[serde(rename = "fs_open")]
    FsOpen(OpenFilesRequest),
    /// One more open connection, before connecting.
    #[serde(rename = "net_open")]
    NetOpen(OpenConnectionsRequest),
    /// The target of a link the guest creates.
    #[serde(rename = "fs_link")]
    FsLink(LinkRequest),
    /// The environment given to the guest.
    Env(EnvRequest),
    /// A clock read.
    Clock(ClockRequest),
    /// Random bytes.
    Random(RandomRequest),
}

impl Request {
    /// The capability name used in events, e.g. `fs.read` or `env.read`.
    pub fn capability(&self) -> &'static str {
        match self {
            Request::Fs(r) => r.op.capability(),
            Request::Net(r) => r.capability(),
            Request::FsOpen(_) => "fs.open",
            Request::NetOpen(_) => "net.open",
            Request::FsLink(_) => "fs.symlink_target",
            Request::Env(_) => "env.read",
            Request::Clock(_) => "clock.read",
            Request::Random(_) => "random.read",
        }
    }

    /// Bytes the request asks to move (0 for requests that move none).
    pub fn bytes(&self) -> u64 {
        match self {
            Request::Fs(r) => r.bytes,
            Request::Net(r) => r.bytes,
            Request::FsLink(r) => r.target.len() as u64,
            Request::Random(r) => r.bytes,
            Request::FsOpen(_) | Request::NetOpen(_) | Request::Env(_) | Request::Clock(_) => 0,
        }
    }

    /// What the request asked for, in words for a comment or a listing: a path (with the
    /// path it resolved to, when that differs) or `host:port`.
    pub fn target(&self) -> String {
        match self {
            Request::Fs(r) => match &r.resolved {
                Some(resolved) => format!("{} -> {resolved}", r.path),
                None => r.path.clone(),
            },
            Request::Net(r) => format!("{}:{}", r.host, r.port),
            Request::FsOpen(r) => r.path.clone().unwrap_or_default(),
            Request::NetOpen(r) => format!("{} open", r.open_now),
            Request::FsLink(r) => format!("{} => {}", r.link, r.target),
            Request::Env(r) => r.names.join(","),
            Request::Clock(r) => format!("{:?}", r.clock).to_ascii_lowercase(),
            Request::Random(r) => format!("{} bytes", r.bytes),
        }
    }
}

/// Counters of what the run has used so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Bytes read from files.
    pub fs_read_bytes: u64,
    /// Bytes written to files (and link targets).
    pub fs_write_bytes: u64,
    /// Connections let through.
    pub net_connections: u64,
    /// Bytes sent.
    pub net_egress_bytes: u64,
    /// Bytes received.
    pub net_ingress_bytes: u64,
    /// Files, directories and links the guest created (`filesystem.quotas.entries`). Left
    /// out of JSON while 0, so existing outputs keep their bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fs_entries_created: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
/// Allow or deny.
pub enum Verdict {
    /// The request may go ahead.
    Allow,
    /// The request is refused (unless audit mode relaxed it: see [`Decision::enforced`]).
    Deny,
}

/// Which part of the policy decided. Kept as an index so that deciding allocates nothing;
/// [`Policy::rule_id`] turns it into the id written in events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleRef {
    /// A filesystem rule, by index.
    FsRule(usize),
    /// A network rule, by index.
    NetRule(usize),
    /// A mount, by index (read-only mounts).
    Mount(usize),
    /// A built-in part of the policy, e.g. `filesystem.default` or `budgets.fuel`.
    Builtin(&'static str),
}

/// Which quota a decision was measured against, and where it stood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaState {
    /// The quota's key, e.g. `filesystem.quotas.write_bytes`.
    pub name: &'static str,
    /// Its limit.
    pub limit: u64,
    /// What the run used before this request.
    pub used: u64,
    /// What this request asks.
    pub asked: u64,
}

impl QuotaState {
    /// What is left of the quota before this request.
    pub fn left(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }
}

/// The outcome of `decide`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Allow or deny.
    pub verdict: Verdict,
    /// False when `mode: audit` relaxed a deny: the request goes ahead, the deny is logged.
    pub enforced: bool,
    /// The part of the policy that decided.
    pub rule: RuleRef,
    /// Why.
    pub reason: ReasonCode,
    /// The quota measured, when one was.
    pub quota: Option<QuotaState>,
    /// The mount that covers the request's path, when one does.
    pub mount: Option<usize>,
    /// The kind of blocked address, for `NET_ADDRESS_BLOCKED`.
    pub address_kind: Option<&'static str>,
}

impl Decision {
    /// True when the request may go ahead (allowed, or a deny that audit mode relaxed).
    pub fn permits(&self) -> bool {
        self.verdict == Verdict::Allow || !self.enforced
    }

    fn allow(rule: RuleRef) -> Decision {
        Decision {
            verdict: Verdict::Allow,
            enforced: true,
            rule,
            reason: ReasonCode::Allowed,
            quota: None,
            mount: None,
            address_kind: None,
        }
    }

    /// A deny that holds in every mode (mounts, invalid input, blocked addresses, budgets).
    pub fn hard_deny(rule: RuleRef, reason: ReasonCode) -> Decision {
        Decision {
            verdict: Verdict::Deny,
            enforced: true,
            rule,
            reason,
            quota: None,
            mount: None,
            address_kind: None,
        }
    }

    /// A deny from a rule or quota: relaxed (logged, not enforced) in audit mode.
    fn rule_deny(policy: &Policy, rule: RuleRef, reason: ReasonCode) -> Decision {
        Decision {
            enforced: policy.mode.value == Mode::Enforce,
            ..Decision::hard_deny(rule, reason)
        }
    }

    fn with_quota(mut self, quota: Option<QuotaState>) -> Decision {
        self.quota = quota;
        self
    }

    fn with_mount(mut self, mount: Option<usize>) -> Decision {
        self.mount = mount;
        self
    }
}

impl Policy {
    /// The id written in events for a [`RuleRef`].
    pub fn rule_id(&self, rule: RuleRef) -> String {
        match rule {
            RuleRef::FsRule(i) => self.filesystem.rules.get(i).map(|r| r.id.clone()),
            RuleRef::NetRule(i) => self.network.rules.get(i).map(|r| r.id.clone()),
            RuleRef::Mount(i) => self
                .filesystem
                .mounts
                .get(i)
                .map(|m| format!("filesystem.mount:{}", m.guest)),
            RuleRef::Builtin(name) => Some(name.to_owned()),
        }
        .unwrap_or_else(|| "unknown".to_owned())
    }

    /// Decides one request against this policy and the usage so far.
    pub fn decide(&self, usage: &Usage, request: &Request) -> Decision {
        match request {
            Request::Fs(r) => self.decide_fs(usage, &r.as_query()),
            Request::Net(r) => self.decide_net(usage, r),
            Request::FsOpen(r) => self.decide_open_files(r),
            Request::NetOpen(r) => self.decide_open_connections(usage, r),
            Request::FsLink(r) => self.decide_link(usage, r),
            Request::Env(r) => self.decide_env(r),
            Request::Clock(r) => self.decide_clock(r),
            Request::Random(r) => self.decide_random(r),
        }
    }

    /// [`Policy::decide`] for a borrowed filesystem request; allocates nothing when its paths
    /// are already normal.
    pub fn decide_fs(&self, usage: &Usage, request: &FsQuery<'_>) -> Decision {
        let invalid = Decision::hard_deny(
            RuleRef::Builtin("filesystem.paths"),
            ReasonCode::FsPathInvalid,
        );
        if request.not_utf8 {
            return invalid;
        }
        let Ok(asked) = normalize_guest_str(request.path) else {
            return invalid;
        };
        let outside = Decision::hard_deny(
            RuleRef::Builtin("filesystem.mounts"),
            ReasonCode::FsPathOutsideMounts,
        );
        let Some((mount_index, mount)) = self.mount_for(&asked) else {
            return outside;
        };
        let resolved = match request.resolved {
            None => None,
            Some(r) => match normalize_guest_str(r) {
                Ok(r) if r == asked => None,
                Ok(r) => Some(r),
                Err(_) => return outside,
            },
        };
        // A symlink may not carry a request into another mount or out of every mount.
        if let Some(r) = &resolved {
            match self.mount_for(r) {
                Some((i, _)) if i == mount_index => {}
                _ => return outside.with_mount(Some(mount_index)),
            }
        }
        if request.op.mutates() && mount.mode == MountMode::ReadOnly {
            return Decision::hard_deny(RuleRef::Mount(mount_index), ReasonCode::FsReadOnlyMount)
                .with_mount(Some(mount_index));
        }
        let granted = request.op.granted_by();
        let covers = |index: usize, effect: Effect, path: &str| {
            let rule = &self.filesystem.rules[index];
            rule.effect == effect
                && granted.iter().any(|op| rule.ops.contains(*op))
                && rule.paths.iter().any(|g| g.matches(path))
        };
        let rules = 0..self.filesystem.rules.len();
        // Deny rules win, on the path as asked and as resolved.
        if let Some(i) = rules.clone().find(|&i| {
            covers(i, Effect::Deny, &asked)
                || resolved
                    .as_deref()
                    .is_some_and(|r| covers(i, Effect::Deny, r))
        }) {
            return Decision::rule_deny(self, RuleRef::FsRule(i), ReasonCode::FsPathNotAllowed)
                .with_mount(Some(mount_index));
        }
        let allow_asked = rules.clone().find(|&i| covers(i, Effect::Allow, &asked));
        let allow = match (&resolved, allow_asked) {
            (_, None) => None,
            (None, found) => found,
            (Some(r), Some(_)) => rules.clone().find(|&i| covers(i, Effect::Allow, r)),
        };
        let Some(rule_index) = allow else {
            return Decision::rule_deny(
                self,
                RuleRef::Builtin("filesystem.default"),
                ReasonCode::FsPathNotAllowed,
            )
            .with_mount(Some(mount_index));
        };
        let quota = match request.op {
            FsAccess::Read => self.filesystem.quotas.read_bytes.map(|q| {
                (
                    "filesystem.quotas.read_bytes",
                    q.value,
                    usage.fs_read_bytes,
                    ReasonCode::FsReadQuotaExceeded,
                )
            }),
            FsAccess::Write => self.filesystem.quotas.write_bytes.map(|q| {
                (
                    "filesystem.quotas.write_bytes",
                    q.value,
                    usage.fs_write_bytes,
                    ReasonCode::FsWriteQuotaExceeded,
                )
            }),
            _ => None,
        };
        let quota = quota.map(|(name, limit, used, reason)| {
            (
                QuotaState {
                    name,
                    limit,
                    used,
                    asked: request.bytes,
                },
                reason,
            )
        });
        // Each create or symlink makes one entry, counted against `entries`.
        let entries = match request.op {
            FsAccess::Create | FsAccess::Symlink => self.filesystem.quotas.entries.map(|q| {
                (
                    QuotaState {
                        name: "filesystem.quotas.entries",
                        limit: q.value,
                        used: usage.fs_entries_created,
                        asked: 1,
                    },
                    ReasonCode::FsEntriesQuotaExceeded,
                )
            }),
            _ => None,
        };
        let quota = quota.or(entries);
        if let Some((state, reason)) = quota {
            if state.used.saturating_add(state.asked) > state.limit {
                return Decision::rule_deny(self, RuleRef::Builtin(state.name), reason)
                    .with_quota(Some(state))
                    .with_mount(Some(mount_index));
            }
        }
        Decision::allow(RuleRef::FsRule(rule_index))
            .with_quota(quota.map(|(s, _)| s))
            .with_mount(Some(mount_index))
    }

    fn decide_net(&self, usage: &Usage, request: &NetRequest) -> Decision {
        if let Some(invalid) = self.decide_invalid_host(request) {
            return invalid;
        }
        if request.op == NetAccess::Resolve {
            return self.decide_resolve(usage, request);
        }
        let decision = self.decide_net_steps(usage, request);
        if decision.enforced {
            return decision;
        }
        // Audit mode relaxed a rule or quota deny: the address block still holds.
        let host = normalize_host(&request.host);
        match request.address.or(parse_ip_literal(&host)) {
            Some(address) if !self.address_named(&host, address, request.port) => {
                match blocked_address_kind(address) {
                    Some(kind) => {
                        let mut d = Decision::hard_deny(
                            RuleRef::Builtin("network.addresses"),
                            ReasonCode::NetAddressBlocked,
                        );
                        d.address_kind = Some(kind);
                        d
                    }
                    None => decision,
                }
            }
            _ => decision,
        }
    }

    /// A host name with an empty label (`a..b`, `a.b..`, or empty) is never allowed and never
    /// looked up, in any mode (DESIGN.md, "Host names"); a lookup is refused, too, for any name
    /// that [`is_valid_host_name`] refuses. When a deny rule matches the name with its empty
    /// labels removed, the event names that rule.
    fn decide_invalid_host(&self, request: &NetRequest) -> Option<Decision> {
        let host = normalize_host(&request.host);
        if parse_ip_literal(&host).is_some() {
            return None;
        }
        let empty_label = host.split('.').any(str::is_empty);
        if !empty_label && (request.op != NetAccess::Resolve || is_valid_host_name(&host)) {
            return None;
        }
        let cleaned = without_empty_labels(&host);
        let deny = self.network.rules.iter().position(|r| {
            r.effect == Effect::Deny
                && r.port_matches(request.port)
                && r.hosts.iter().any(|h| h.matches(&cleaned, None))
        });
        Some(match deny {
            Some(i) => Decision::hard_deny(RuleRef::NetRule(i), ReasonCode::NetHostNotAllowed),
            None => Decision::hard_deny(
                RuleRef::Builtin("network.hosts"),
                ReasonCode::NetHostInvalid,
            ),
        })
    }

    /// May this name be sent to a resolver? Only when the host pattern of an allow rule for
    /// the port matches it (`hosts: ["*"]` opts in to any name) and no deny rule does: a CIDR
    /// never allows a lookup, since the address is what a lookup would find. A name pinned by
    /// `network.resolve` needs no resolver (rule `network.resolve`), an IP literal neither
    /// (rule `network.literals`); a deny rule still refuses both.
    fn decide_resolve(&self, usage: &Usage, request: &NetRequest) -> Decision {
        let host = normalize_host(&request.host);
        let by_name = NetRequest {
            address: None,
            ..request.clone()
        };
        let decision = self.decide_net_steps(usage, &by_name);
        let denied_by_rule = decision.verdict == Verdict::Deny
            && matches!(decision.rule, RuleRef::NetRule(i)
                if self.network.rules.get(i).is_some_and(|r| r.effect == Effect::Deny));
        if denied_by_rule {
            return decision;
        }
        if parse_ip_literal(&host).is_some() {
            return Decision::allow(RuleRef::Builtin("network.literals"));
        }
        if self.pinned_address(&host).is_some() {
            return Decision::allow(RuleRef::Builtin("network.resolve"));
        }
        decision
    }

    /// The address `network.resolve` pins a (normalised) name to, if it does.
    pub fn pinned_address(&self, host: &str) -> Option<IpAddr> {
        self.network
            .resolve
            .iter()
            .find(|(name, _)| normalize_host(name) == host)
            .map(|(_, address)| *address)
    }

    /// Whether an allow rule matching the host and port names this address explicitly.
    fn address_named(&self, host: &str, address: IpAddr, port: u16) -> bool {
        let literal = parse_ip_literal(host);
        self.network.rules.iter().any(|r| {
            r.effect == Effect::Allow
                && r.port_matches(port)
                && r.names_address(address)
                && (r.hosts.iter().any(|h| h.matches(host, literal))
                    || r.cidrs.iter().any(|c| c.contains(address)))
        })
    }

    fn decide_net_steps(&self, usage: &Usage, request: &NetRequest) -> Decision {
        let host = normalize_host(&request.host);
        let literal = parse_ip_literal(&host);
        let address = request.address.or(literal);
        let host_matches = |rule: &NetRule| {
            rule.hosts.iter().any(|h| h.matches(&host, literal))
                || address.is_some_and(|a| {
                    rule.cidrs.iter().any(|c| c.contains(a)) || rule.names_address(a)
                })
        };
        let rules = &self.network.rules;
        if let Some(i) = rules.iter().position(|r| {
            r.effect == Effect::Deny && host_matches(r) && r.port_matches(request.port)
        }) {
            return Decision::rule_deny(self, RuleRef::NetRule(i), ReasonCode::NetHostNotAllowed);
        }
        let host_allowed: Vec<usize> = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.effect == Effect::Allow && host_matches(r))
            .map(|(i, _)| i)
            .collect();
        let Some(&first) = host_allowed.first() else {
            return Decision::rule_deny(
                self,
                RuleRef::Builtin("network.default"),
                ReasonCode::NetHostNotAllowed,
            );
        };
        let Some(&rule_index) = host_allowed
            .iter()
            .find(|&&i| rules[i].port_matches(request.port))
        else {
            return Decision::rule_deny(
                self,
                RuleRef::NetRule(first),
                ReasonCode::NetPortNotAllowed,
            );
        };
        let quotas = &self.network.quotas;
        let quota = match request.op {
            NetAccess::Connect => quotas.connections.map(|q| {
                (
                    QuotaState {
                        name: "network.quotas.connections",
                        limit: q.value,
                        used: usage.net_connections,
                        asked: 1,
                    },
                    ReasonCode::NetConnectionQuotaExceeded,
                )
            }),
            NetAccess::Send => quotas.egress_bytes.map(|q| {
                (
                    QuotaState {
                        name: "network.quotas.egress_bytes",
                        limit: q.value,
                        used: usage.net_egress_bytes,
                        asked: request.bytes,
                    },
                    ReasonCode::NetEgressQuotaExceeded,
                )
            }),
            NetAccess::Receive => quotas.ingress_bytes.map(|q| {
                (
                    QuotaState {
                        name: "network.quotas.ingress_bytes",
                        limit: q.value,
                        used: usage.net_ingress_bytes,
                        asked: request.bytes,
                    },
                    ReasonCode::NetIngressQuotaExceeded,
                )
            }),
            NetAccess::Resolve => None,
        };
        if let Some((state, reason)) = quota {
            // A receive is capped at the quota left by the broker; only an exhausted quota refuses it.
            let exceeded = match request.op {
                NetAccess::Receive => state.used >= state.limit,
                _ => state.used.saturating_add(state.asked) > state.limit,
            };
            if exceeded {
                return Decision::rule_deny(self, RuleRef::Builtin(state.name), reason)
                    .with_quota(Some(state));
            }
        }
        if let Some(a) = address {
            if let Some(kind) = blocked_address_kind(a) {
                let named = host_allowed
                    .iter()
                    .any(|&i| rules[i].port_matches(request.port) && rules[i].names_address(a));
                if !named {
                    let mut d = Decision::hard_deny(
                        RuleRef::Builtin("network.addresses"),
                        ReasonCode::NetAddressBlocked,
                    );
                    d.address_kind = Some(kind);
                    return d;
                }
            }
        }
        Decision::allow(RuleRef::NetRule(rule_index)).with_quota(quota.map(|(s, _)| s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_policy;
    use crate::path::normalize_guest_path;
    use std::path::Path;

    const POLICY: &str = r#"
version: 1
name: test
filesystem:
  mounts:
    - { guest: /data, host: ./data, mode: ro }
    - { guest: /out, host: ./out, mode: rw }
    - { guest: /data-secret, host: ./secret, mode: ro }
  rules:
    - { id: read-data, effect: allow, ops: [read, list], paths: ["/data/**"] }
    - { id: write-out, effect: allow, ops: [write, create], paths: ["/out/*.log"] }
    - { id: no-secrets, effect: deny, ops: [read], paths: ["/data/secret/**"] }
    - { id: write-data, effect: allow, ops: [write], paths: ["/data/**"] }
  quotas: { read_bytes: 100, write_bytes: 50 }
network:
  rules:
    - { id: api, effect: allow, hosts: ["API.example.com", "*.example.org"], ports: [443, "8000-8100"] }
    - { id: lan, effect: allow, cidrs: ["127.0.0.0/8"], ports: [7000] }
    - { id: named-local, effect: allow, hosts: ["local.test"], ports: [7001] }
    - { id: no-evil, effect: deny, hosts: ["evil.example.org"] }
  quotas: { connections: 2, egress_bytes: 100, ingress_bytes: 10 }
"#;

    fn policy() -> Policy {
        parse_policy(POLICY, Path::new(".")).unwrap()
    }

    fn audit_policy() -> Policy {
        parse_policy(
            &POLICY.replace("name: test", "name: test\nmode: audit"),
            Path::new("."),
        )
        .unwrap()
    }

    fn fs(op: FsAccess, path: &str, bytes: u64) -> Request {
        Request::Fs(FsRequest {
            op,
            path: path.into(),
            not_utf8: false,
            resolved: None,
            bytes,
        })
    }

    fn fs_via(op: FsAccess, path: &str, resolved: &str) -> Request {
        Request::Fs(FsRequest {
            op,
            path: path.into(),
            not_utf8: false,
            resolved: Some(resolved.into()),
            bytes: 0,
        })
    }

    fn net(op: NetAccess, host: &str, port: u16, address: Option<&str>, bytes: u64) -> Request {
        Request::Net(NetRequest {
            op,
            host: host.into(),
            port,
            address: address.map(|a| a.parse().unwrap()),
            bytes,
        })
    }

    fn outcome(p: &Policy, usage: &Usage, r: &Request) -> (Verdict, String, &'static str) {
        let d = p.decide(usage, r);
        (d.verdict, p.rule_id(d.rule), d.reason.as_str())
    }

    fn check(r: Request, verdict: Verdict, rule: &str, reason: &str) {
        let p = policy();
        assert_eq!(
            outcome(&p, &Usage::default(), &r),
            (verdict, rule.to_owned(), reason),
            "{r:?}"
        );
    }

    use Verdict::{Allow, Deny};

    #[test]
    fn allow_names_the_rule() {
        check(
            fs(FsAccess::Read, "/data/a.txt", 10),
            Allow,
            "read-data",
            "ALLOWED",
        );
        check(
            fs(FsAccess::List, "/data", 0),
            Allow,
            "read-data",
            "ALLOWED",
        );
        check(
            fs(FsAccess::Stat, "/data/x", 0),
            Allow,
            "read-data",
            "ALLOWED",
        );
        check(
            fs(FsAccess::Write, "/out/run.log", 10),
            Allow,
            "write-out",
            "ALLOWED",
        );
    }

    #[test]
    fn implicit_deny_names_the_default() {
        check(
            fs(FsAccess::Delete, "/out/run.log", 0),
            Deny,
            "filesystem.default",
            "FS_PATH_NOT_ALLOWED",
        );
        check(
            fs(FsAccess::Write, "/out/run.txt", 1),
            Deny,
            "filesystem.default",
            "FS_PATH_NOT_ALLOWED",
        );
        check(
            fs(FsAccess::Read, "/data-secret/key", 1),
            Deny,
            "filesystem.default",
            "FS_PATH_NOT_ALLOWED",
        );
    }

    #[test]
    fn deny_rules_win_over_allows() {
        check(
            fs(FsAccess::Read, "/data/secret/key", 1),
            Deny,
            "no-secrets",
            "FS_PATH_NOT_ALLOWED",
        );
        // The deny rule covers only reads: listing is still allowed by read-data.
        check(
            fs(FsAccess::List, "/data/secret", 0),
            Allow,
            "read-data",
            "ALLOWED",
        );
    }

    #[test]
    fn paths_outside_mounts_and_prefix_accidents() {
        check(
            fs(FsAccess::Read, "/etc/passwd", 1),
            Deny,
            "filesystem.mounts",
            "FS_PATH_OUTSIDE_MOUNTS",
        );
        check(
            fs(FsAccess::Read, "/dat", 1),
            Deny,
            "filesystem.mounts",
            "FS_PATH_OUTSIDE_MOUNTS",
        );
        check(
            fs(FsAccess::Read, "/", 1),
            Deny,
            "filesystem.mounts",
            "FS_PATH_OUTSIDE_MOUNTS",
        );
        // `/data-secret` is its own mount: `/data/**` does not reach it by prefix.
        check(
            fs(FsAccess::Read, "/data-secret/x", 1),
            Deny,
            "filesystem.default",
            "FS_PATH_NOT_ALLOWED",
        );
    }

    #[test]
    fn dotdot_is_normalised_before_matching() {
        check(
            fs(FsAccess::Read, "/data/../etc/passwd", 1),
            Deny,
            "filesystem.mounts",
            "FS_PATH_OUTSIDE_MOUNTS",
        );
        check(
            fs(FsAccess::Read, "/data/x/../../data/a", 1),
            Allow,
            "read-data",
            "ALLOWED",
        );
        check(
            fs(FsAccess::Read, "/data/x/../secret/k", 1),
            Deny,
            "no-secrets",
            "FS_PATH_NOT_ALLOWED",
        );
        check(
            fs(FsAccess::Read, "data//./a", 1),
            Allow,
            "read-data",
            "ALLOWED",
        );
        check(
            fs(FsAccess::Write, "/out/../data/x.log", 1),
            Deny,
            "filesystem.mount:/data",
            "FS_READ_ONLY_MOUNT",
        );
    }

    #[test]
    fn invalid_paths() {
        check(
            fs(FsAccess::Read, "/data/a\0b", 1),
            Deny,
            "filesystem.paths",
            "FS_PATH_INVALID",
        );
        check(
            fs(FsAccess::Read, "", 1),
            Deny,
            "filesystem.paths",
            "FS_PATH_INVALID",
        );
        let not_utf8 = Request::Fs(FsRequest {
            op: FsAccess::Read,
            path: "/data/\u{fffd}".into(),
            not_utf8: true,
            resolved: None,
            bytes: 0,
        });
        check(not_utf8, Deny, "filesystem.paths", "FS_PATH_INVALID");
    }

    #[test]
    fn symlinks_cannot_carry_a_request_around_a_deny_rule_or_out_of_a_mount() {
        check(
            fs_via(FsAccess::Read, "/data/link", "/data/secret/key"),
            Deny,
            "no-secrets",
            "FS_PATH_NOT_ALLOWED",
        );
        check(
            fs_via(FsAccess::Read, "/data/link", "/etc/passwd"),
            Deny,
            "filesystem.mounts",
            "FS_PATH_OUTSIDE_MOUNTS",
        );
        check(
            fs_via(FsAccess::Read, "/data/link", "/data-secret/x"),
            Deny,
            "filesystem.mounts",
            "FS_PATH_OUTSIDE_MOUNTS",
        );
        check(
            fs_via(FsAccess::Read, "/data/link", "/data/real.txt"),
            Allow,
            "read-data",
            "ALLOWED",
        );
    }

    #[test]
    fn read_only_mounts_refuse_changes() {
        check(
            fs(FsAccess::Write, "/data/a.txt", 1),
            Deny,
            "filesystem.mount:/data",
            "FS_READ_ONLY_MOUNT",
        );
        check(
            fs(FsAccess::Create, "/data/new", 0),
            Deny,
            "filesystem.mount:/data",
            "FS_READ_ONLY_MOUNT",
        );
    }

    #[test]
    fn quotas_decide_on_the_bytes_asked_against_usage() {
        let p = policy();
        let used = Usage {
            fs_read_bytes: 90,
            fs_write_bytes: 50,
            ..Usage::default()
        };
        assert_eq!(
            outcome(&p, &used, &fs(FsAccess::Read, "/data/a", 10)).0,
            Allow
        );
        let d = p.decide(&used, &fs(FsAccess::Read, "/data/a", 11));
        assert_eq!(
            (d.verdict, d.reason),
            (Deny, ReasonCode::FsReadQuotaExceeded)
        );
        assert_eq!(p.rule_id(d.rule), "filesystem.quotas.read_bytes");
        assert_eq!(d.quota.unwrap().left(), 10);
        assert_eq!(d.quota.unwrap().asked, 11);
        let d = p.decide(&used, &fs(FsAccess::Write, "/out/a.log", 1));
        assert_eq!(d.reason, ReasonCode::FsWriteQuotaExceeded);
        assert_eq!(
            outcome(&p, &used, &fs(FsAccess::Write, "/out/a.log", 0)).0,
            Allow
        );
        // A huge ask does not overflow.
        assert_eq!(
            p.decide(&used, &fs(FsAccess::Read, "/data/a", u64::MAX))
                .reason,
            ReasonCode::FsReadQuotaExceeded
        );
    }

    #[test]
    fn audit_mode_relaxes_rules_and_quotas_only() {
        let p = audit_policy();
        let u = Usage::default();
        for r in [
            fs(FsAccess::Read, "/data/secret/k", 1),
            fs(FsAccess::Delete, "/out/x.log", 0),
            fs(FsAccess::Read, "/data/a", 1000),
        ] {
            let d = p.decide(&u, &r);
            assert_eq!((d.verdict, d.enforced), (Deny, false), "{r:?}");
            assert!(d.permits());
        }
        for r in [
            fs(FsAccess::Read, "/etc/passwd", 1),
            fs(FsAccess::Read, "/a\0", 1),
            fs(FsAccess::Write, "/data/a", 1),
        ] {
            let d = p.decide(&u, &r);
            assert_eq!((d.verdict, d.enforced), (Deny, true), "{r:?}");
            assert!(!d.permits());
        }
        let d = p.decide(
            &u,
            &net(
                NetAccess::Connect,
                "api.test",
                7000,
                Some("93.184.216.34"),
                0,
            ),
        );
        assert_eq!(
            (d.reason, d.enforced),
            (ReasonCode::NetHostNotAllowed, false)
        );
        // A relaxed host deny never lets a request reach a blocked address.
        let d = p.decide(
            &u,
            &net(NetAccess::Connect, "api.test", 7000, Some("10.0.0.1"), 0),
        );
        assert_eq!(
            (d.reason, d.enforced),
            (ReasonCode::NetAddressBlocked, true)
        );
        let over_quota = Usage {
            net_connections: 2,
            ..Usage::default()
        };
        let d = p.decide(
            &over_quota,
            &net(
                NetAccess::Connect,
                "x.example.org",
                443,
                Some("127.0.0.1"),
                0,
            ),
        );
        assert_eq!(
            (d.reason, d.enforced),
            (ReasonCode::NetAddressBlocked, true)
        );
        let d = p.decide(
            &u,
            &net(
                NetAccess::Connect,
                "x.example.org",
                443,
                Some("10.0.0.1"),
                0,
            ),
        );
        assert_eq!(
            (d.reason, d.enforced),
            (ReasonCode::NetAddressBlocked, true)
        );
    }

    #[test]
    fn hosts_compare_case_insensitively_and_without_trailing_dot() {
        check(
            net(NetAccess::Connect, "api.EXAMPLE.com.", 443, None, 0),
            Allow,
            "api",
            "ALLOWED",
        );
        check(
            net(NetAccess::Connect, "a.b.example.org", 8050, None, 0),
            Allow,
            "api",
            "ALLOWED",
        );
        check(
            net(NetAccess::Connect, "example.org", 443, None, 0),
            Deny,
            "network.default",
            "NET_HOST_NOT_ALLOWED",
        );
        check(
            net(NetAccess::Connect, "api.example.com.evil.net", 443, None, 0),
            Deny,
            "network.default",
            "NET_HOST_NOT_ALLOWED",
        );
    }

    #[test]
    fn port_and_deny_rules() {
        check(
            net(NetAccess::Connect, "api.example.com", 80, None, 0),
            Deny,
            "api",
            "NET_PORT_NOT_ALLOWED",
        );
        check(
            net(NetAccess::Connect, "evil.example.org", 443, None, 0),
            Deny,
            "no-evil",
            "NET_HOST_NOT_ALLOWED",
        );
    }

    #[test]
    fn ip_literals_in_every_form_match_cidr_rules() {
        for form in [
            "127.0.0.1",
            "2130706433",
            "0x7f.0.0.1",
            "0177.0.0.1",
            "127.1",
            "::ffff:127.0.0.1",
        ] {
            check(
                net(NetAccess::Connect, form, 7000, None, 0),
                Allow,
                "lan",
                "ALLOWED",
            );
        }
    }

    #[test]
    fn blocked_addresses_need_an_explicit_rule() {
        // A name that resolves to loopback is blocked unless a rule names loopback by CIDR.
        check(
            net(NetAccess::Connect, "local.test", 7001, Some("127.0.0.1"), 0),
            Deny,
            "network.addresses",
            "NET_ADDRESS_BLOCKED",
        );
        check(
            net(
                NetAccess::Connect,
                "x.example.org",
                443,
                Some("169.254.169.254"),
                0,
            ),
            Deny,
            "network.addresses",
            "NET_ADDRESS_BLOCKED",
        );
        check(
            net(
                NetAccess::Connect,
                "x.example.org",
                443,
                Some("93.184.216.34"),
                0,
            ),
            Allow,
            "api",
            "ALLOWED",
        );
        // Named by CIDR: allowed.
        check(
            net(NetAccess::Connect, "local.test", 7000, Some("127.0.0.1"), 0),
            Allow,
            "lan",
            "ALLOWED",
        );
    }

    #[test]
    fn a_deny_rule_on_an_ipv4_block_holds_its_ipv6_spellings() {
        let p = parse_policy(
            "version: 1\nnetwork:\n  rules:\n    - { id: web, effect: allow, hosts: [\"*\"], ports: [443] }\n    - { id: no-net, effect: deny, cidrs: [\"93.184.0.0/16\"] }\n",
            Path::new("."),
        )
        .unwrap();
        let u = Usage::default();
        for host in [
            "93.184.216.34",
            "64:ff9b::93.184.216.34",
            "[2002:5db8:d822::1]",
            "::93.184.216.34",
        ] {
            assert_eq!(
                outcome(&p, &u, &net(NetAccess::Connect, host, 443, None, 0)),
                (Deny, "no-net".to_owned(), "NET_HOST_NOT_ALLOWED"),
                "{host}"
            );
        }
        // Blocked as what they reach, though `*` allows the name.
        for host in ["64:ff9b::7f00:1", "fec0::1", "2002:a9fe:a9fe::"] {
            assert_eq!(
                outcome(&p, &u, &net(NetAccess::Connect, host, 443, None, 0)),
                (Deny, "network.addresses".to_owned(), "NET_ADDRESS_BLOCKED"),
                "{host}"
            );
        }
    }

    #[test]
    fn the_entries_quota_counts_creates_and_symlinks() {
        let p = parse_policy(
            "version: 1\nfilesystem:\n  mounts: [{ guest: /out, host: ./out, mode: rw }]\n  rules: [{ id: w, effect: allow, ops: [create, symlink, write], paths: [\"/out/**\"] }]\n  quotas: { entries: 2 }\n",
            Path::new("."),
        )
        .unwrap();
        let used = |n| Usage {
            fs_entries_created: n,
            ..Usage::default()
        };
        assert_eq!(p.filesystem.quotas.entries.map(|q| q.value), Some(2));
        for op in [FsAccess::Create, FsAccess::Symlink] {
            assert_eq!(
                outcome(&p, &used(1), &fs(op, "/out/a", 0)),
                (Allow, "w".to_owned(), "ALLOWED")
            );
            let d = p.decide(&used(2), &fs(op, "/out/a", 0));
            assert_eq!(
                (d.verdict, p.rule_id(d.rule), d.reason.as_str()),
                (
                    Deny,
                    "filesystem.quotas.entries".to_owned(),
                    "FS_ENTRIES_QUOTA_EXCEEDED"
                )
            );
            assert_eq!(d.quota.map(|q| (q.limit, q.used, q.asked)), Some((2, 2, 1)));
        }
        // Writes into existing files create nothing.
        assert_eq!(
            outcome(&p, &used(2), &fs(FsAccess::Write, "/out/a", 1)),
            (Allow, "w".to_owned(), "ALLOWED")
        );
    }

    #[test]
    fn network_quotas() {
        let p = policy();
        let u = Usage {
            net_connections: 2,
            net_egress_bytes: 95,
            net_ingress_bytes: 10,
            ..Usage::default()
        };
        let connect = net(NetAccess::Connect, "api.example.com", 443, None, 0);
        assert_eq!(
            p.decide(&u, &connect).reason,
            ReasonCode::NetConnectionQuotaExceeded
        );
        let send = net(
            NetAccess::Send,
            "api.example.com",
            443,
            Some("93.184.216.34"),
            6,
        );
        let d = p.decide(&u, &send);
        assert_eq!(
            (d.reason, d.quota.unwrap().left()),
            (ReasonCode::NetEgressQuotaExceeded, 5)
        );
        let send5 = net(
            NetAccess::Send,
            "api.example.com",
            443,
            Some("93.184.216.34"),
            5,
        );
        assert_eq!(p.decide(&u, &send5).verdict, Allow);
        let recv = net(
            NetAccess::Receive,
            "api.example.com",
            443,
            Some("93.184.216.34"),
            4096,
        );
        assert_eq!(
            p.decide(&u, &recv).reason,
            ReasonCode::NetIngressQuotaExceeded
        );
        let fresh = Usage::default();
        assert_eq!(p.decide(&fresh, &recv).verdict, Allow);
    }

    #[test]
    fn no_network_section_denies_everything() {
        let p = parse_policy("version: 1\n", Path::new(".")).unwrap();
        let d = p.decide(
            &Usage::default(),
            &net(NetAccess::Connect, "example.com", 443, None, 0),
        );
        assert_eq!(
            (d.verdict, p.rule_id(d.rule)),
            (Deny, "network.default".to_owned())
        );
        let d = p.decide(&Usage::default(), &fs(FsAccess::Read, "/data", 0));
        assert_eq!(d.reason, ReasonCode::FsPathOutsideMounts);
    }

    #[test]
    fn requests_round_trip_through_json_for_replay() {
        for r in [
            fs_via(FsAccess::Read, "/data/l", "/data/t"),
            net(NetAccess::Send, "h", 1, Some("::1"), 3),
        ] {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), r);
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn any_op() -> impl Strategy<Value = FsAccess> {
            prop_oneof![
                Just(FsAccess::Read),
                Just(FsAccess::Write),
                Just(FsAccess::Create),
                Just(FsAccess::Delete),
                Just(FsAccess::List),
                Just(FsAccess::Rename),
                Just(FsAccess::Symlink),
                Just(FsAccess::Stat),
            ]
        }

        fn any_path() -> impl Strategy<Value = String> {
            let segment = prop_oneof![
                Just("data".to_owned()),
                Just("out".to_owned()),
                Just("..".to_owned()),
                Just(".".to_owned()),
                Just("".to_owned()),
                Just("data-secret".to_owned()),
                Just("secret".to_owned()),
                Just("etc".to_owned()),
                "[a-z.\\-]{0,6}",
                "\\PC{0,4}",
            ];
            (any::<bool>(), proptest::collection::vec(segment, 0..8)).prop_map(
                |(absolute, parts)| {
                    format!("{}{}", if absolute { "/" } else { "" }, parts.join("/"))
                },
            )
        }

        proptest! {
            #[test]
            fn decide_never_panics_and_never_allows_outside_mounts(
                op in any_op(), path in any_path(), resolved in proptest::option::of(any_path()),
                bytes in any::<u64>(), read in any::<u64>(), write in any::<u64>(),
            ) {
                for p in [policy(), audit_policy()] {
                    let usage = Usage { fs_read_bytes: read, fs_write_bytes: write, ..Usage::default() };
                    let request = Request::Fs(FsRequest { op, path: path.clone(), not_utf8: false, resolved: resolved.clone(), bytes });
                    let d = p.decide(&usage, &request);
                    let inside = |raw: &str| normalize_guest_path(raw.as_bytes()).ok().and_then(|n| p.mount_for(&n).map(|(i, _)| i));
                    if d.permits() {
                        let mount = inside(&path);
                        prop_assert!(mount.is_some(), "allowed outside every mount: {path:?}");
                        if let Some(r) = &resolved {
                            prop_assert_eq!(inside(r), mount, "resolved path left its mount: {:?}", r);
                        }
                    }
                }
            }

            #[test]
            fn net_decide_never_panics(host in "\\PC{0,20}", port in any::<u16>(), bytes in any::<u64>(), v4 in any::<u32>(), used in any::<u64>()) {
                let p = policy();
                let usage = Usage { net_connections: used, net_egress_bytes: used, net_ingress_bytes: used, ..Usage::default() };
                for op in [NetAccess::Connect, NetAccess::Send, NetAccess::Receive] {
                    let ip = IpAddr::V4(v4.into());
                    let address = Some(ip);
                    let d = p.decide(&usage, &Request::Net(NetRequest { op, host: host.clone(), port, address, bytes }));
                    if d.permits() {
                        if let Some(kind) = blocked_address_kind(ip) {
                            prop_assert!(port == 7000, "blocked {kind} address allowed on port {port}");
                        }
                    }
                }
            }
        }
    }
}
