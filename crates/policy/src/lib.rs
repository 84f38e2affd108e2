//! The sandbox's policy engine: the policy model, parsing with source spans, the pure
//! `decide` function, lint and templates. It knows nothing of Wasmtime, so it builds in
//! seconds and can be fuzzed on its own.
//!
//! ```
//! use sandbox_policy::{parse_policy, FsAccess, FsRequest, Request, Usage, Verdict};
//! let policy = parse_policy(r#"
//! version: 1
//! filesystem:
//!   mounts: [{ guest: /data, host: ./data, mode: ro }]
//!   rules: [{ id: read-data, effect: allow, ops: [read], paths: ["/data/**"] }]
//! "#, std::path::Path::new(".")).unwrap();
//! let ask = |path: &str| Request::Fs(FsRequest {
//!     op: FsAccess::Read, path: path.into(), not_utf8: false, resolved: None, bytes: 10,
//! });
//! assert_eq!(policy.decide(&Usage::default(), &ask("/data/a.txt")).verdict, Verdict::Allow);
//! let denied = policy.decide(&Usage::default(), &ask("/data-secret/a.txt"));
//! assert_eq!(denied.reason.as_str(), "FS_PATH_OUTSIDE_MOUNTS");
//! ```

mod decide;
pub mod diff;
mod error;
pub mod event;
mod glob;
pub mod learn;
pub mod lint;
mod model;
mod net;
mod parse;
mod path;
mod reason;
pub mod replay;
pub mod schema;
mod size;
mod span;
pub mod templates;
mod yaml_text;

pub use decide::{
    ClockKind, ClockRequest, Decision, EnvRequest, FsAccess, FsQuery, FsRequest, LinkRequest,
    NetAccess, NetRequest, OpenConnectionsRequest, OpenFilesRequest, QuotaState, RandomRequest,
    Request, RuleRef, Usage, Verdict, MAX_OPEN_CONNECTIONS,
};
pub use error::{PolicyError, PolicyErrorKind, PolicyErrors};
pub use event::RecordedEvent;
pub use glob::GlobPattern;
pub use model::*;
pub use net::{
    blocked_address_kind, canonical_ip, decision_ip, embedded_ipv4, is_valid_host_name,
    normalize_host, parse_ip_literal, without_empty_labels, Cidr, HostPattern, PortRange,
};
pub use parse::{load_policy, parse_policy, MAX_POLICY_BYTES};
pub use path::{
    is_within, normalize_guest_path, normalize_guest_path_cow, InvalidPath, MAX_GUEST_PATH_BYTES,
};
pub use reason::ReasonCode;
pub use size::parse_size;
pub use span::Span;
