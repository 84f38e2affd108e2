//! The typed policy: what `parse` produces and `decide` reads. Every value written in the file
//! keeps the place it was written, so lint and explain can point at it.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::glob::GlobPattern;
use crate::net::{Cidr, HostPattern, PortRange};
use crate::span::Span;

/// Built-in budgets for a policy that leaves them out: bounded, never unlimited.
pub const DEFAULT_FUEL: u64 = 100_000_000;
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;
pub const DEFAULT_MAX_EVENTS: u64 = 10_000;
pub const DEFAULT_MODULE_BYTES: u64 = 64 << 20;
pub const DEFAULT_OPEN_FILES: u64 = 64;
pub const DEFAULT_STDIO_BYTES: u64 = 64 << 10;
/// Table elements and instances are capped even though the policy has no key for them yet.
pub const DEFAULT_TABLE_ELEMENTS: u64 = 100_000;
pub const DEFAULT_INSTANCES: u64 = 1;

/// A value with the place it was written; `span` is `None` for a built-in default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub span: Option<Span>,
}

impl<T> Setting<T> {
    pub fn default_value(value: T) -> Self {
        Setting { value, span: None }
    }
    pub fn is_explicit(&self) -> bool {
        self.span.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Enforce,
    Audit,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDeny {
    /// The guest gets an error code and goes on.
    Error,
    /// The run ends with a trap at the first enforced deny.
    Trap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountMode {
    ReadOnly,
    ReadWrite,
}

impl MountMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MountMode::ReadOnly => "ro",
            MountMode::ReadWrite => "rw",
        }
    }
}

/// The filesystem operations a rule can grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsOperation {
    Read,
    Write,
    Create,
    Delete,
    List,
    Rename,
    Symlink,
}

impl FsOperation {
    pub const ALL: [FsOperation; 7] = [
        FsOperation::Read,
        FsOperation::Write,
        FsOperation::Create,
        FsOperation::Delete,
        FsOperation::List,
        FsOperation::Rename,
        FsOperation::Symlink,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FsOperation::Read => "read",
            FsOperation::Write => "write",
            FsOperation::Create => "create",
            FsOperation::Delete => "delete",
            FsOperation::List => "list",
            FsOperation::Rename => "rename",
            FsOperation::Symlink => "symlink",
        }
    }

    pub fn parse(text: &str) -> Option<FsOperation> {
        FsOperation::ALL.into_iter().find(|op| op.as_str() == text)
    }

    /// Operations that change what is on disk, refused on a read-only mount.
    pub fn mutates(self) -> bool {
        !matches!(self, FsOperation::Read | FsOperation::List)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of operations, as a bit set so that matching costs nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FsOperations(u8);

impl FsOperations {
    pub fn insert(&mut self, op: FsOperation) {
        self.0 |= op.bit();
    }
    pub fn contains(self, op: FsOperation) -> bool {
        self.0 & op.bit() != 0
    }
    pub fn is_subset_of(self, other: FsOperations) -> bool {
        self.0 & !other.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = FsOperation> {
        FsOperation::ALL
            .into_iter()
            .filter(move |op| self.contains(*op))
    }
}

#[derive(Debug, Clone)]
pub struct Mount {
    /// Normalised absolute guest path, e.g. `/data`.
    pub guest: String,
    /// The host folder as written; relative paths are taken from the policy file's folder.
    pub host: String,
    pub mode: MountMode,
    /// `overlap: intended`: the policy says this mount's host folder may overlap another
    /// mount's (the same folder, or one inside the other). Without it lint refuses overlaps.
    pub overlap_intended: bool,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct FsRule {
    pub id: String,
    pub effect: Effect,
    pub ops: FsOperations,
    pub paths: Vec<GlobPattern>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct NetRule {
    pub id: String,
    pub effect: Effect,
    pub hosts: Vec<HostPattern>,
    /// The host patterns as written, for messages.
    pub host_texts: Vec<String>,
    pub cidrs: Vec<Cidr>,
    /// Empty means every port (only allowed on deny rules).
    pub ports: Vec<PortRange>,
    pub span: Span,
}

impl NetRule {
    pub fn port_matches(&self, port: u16) -> bool {
        self.ports.is_empty() || self.ports.iter().any(|r| r.contains(port))
    }

    /// Whether the rule names this address explicitly, by CIDR or IP literal.
    pub fn names_address(&self, address: IpAddr) -> bool {
        self.cidrs.iter().any(|c| c.contains(address))
            || self
                .hosts
                .iter()
                .any(|h| matches!(h, HostPattern::Address(ip) if crate::net::decision_ip(*ip) == crate::net::decision_ip(address)))
    }
}

#[derive(Debug, Clone, Default)]
pub struct FsQuotas {
    pub read_bytes: Option<Setting<u64>>,
    pub write_bytes: Option<Setting<u64>>,
    /// Files, directories and links a run may create, in total.
    pub entries: Option<Setting<u64>>,
}

#[derive(Debug, Clone, Default)]
pub struct NetQuotas {
    pub connections: Option<Setting<u64>>,
    pub egress_bytes: Option<Setting<u64>>,
    pub ingress_bytes: Option<Setting<u64>>,
}

#[derive(Debug, Clone)]
pub struct Budgets {
    pub fuel: Setting<u64>,
    pub timeout_ms: Setting<u64>,
    pub memory_bytes: Setting<u64>,
    /// Where the `budgets` key was written, if it was.
    pub span: Option<Span>,
}

#[derive(Debug, Clone, Default)]
pub struct Filesystem {
    pub mounts: Vec<Mount>,
    pub rules: Vec<FsRule>,
    pub quotas: FsQuotas,
    pub span: Option<Span>,
}

#[derive(Debug, Clone, Default)]
pub struct Network {
    pub rules: Vec<NetRule>,
    pub quotas: NetQuotas,
    /// Static name → address pins, looked up before the system resolver.
    pub resolve: Vec<(String, IpAddr)>,
    pub span: Option<Span>,
}

#[derive(Debug, Clone)]
pub struct Stdio {
    pub stdout_bytes: Setting<u64>,
    pub stderr_bytes: Setting<u64>,
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_events: Setting<u64>,
    pub module_bytes: Setting<u64>,
    pub open_files: Setting<u64>,
}

/// A validated policy. Build one with [`crate::parse_policy`] or [`crate::load_policy`].
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub mode: Setting<Mode>,
    pub on_deny: OnDeny,
    pub deterministic: bool,
    pub budgets: Budgets,
    pub filesystem: Filesystem,
    pub network: Network,
    pub stdio: Stdio,
    pub env: Vec<(String, String)>,
    pub limits: Limits,
    /// The folder relative host paths are taken from (the policy file's folder).
    pub base_dir: PathBuf,
}

impl Policy {
    /// The host folder of a mount, resolved against the policy's folder.
    pub fn mount_host_path(&self, mount: &Mount) -> PathBuf {
        // Drop `.` components so reports show `policies/fixtures/data`, not `policies/./fixtures/data`.
        let path: PathBuf = self
            .base_dir
            .join(&mount.host)
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect();
        if path.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            path
        }
    }

    /// The mount that covers a normalised guest path: the deepest one, when mounts nest.
    pub fn mount_for(&self, guest_path: &str) -> Option<(usize, &Mount)> {
        self.filesystem
            .mounts
            .iter()
            .enumerate()
            .filter(|(_, m)| crate::path::is_within(guest_path, &m.guest))
            .max_by_key(|(_, m)| m.guest.len())
    }
}
