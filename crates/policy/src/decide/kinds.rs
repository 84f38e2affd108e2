//! The requests beyond file operations and connections (issue 12, point 3): every decision
//! the sandbox makes is made here, with a rule id, a reason code and a capability name, so
//! each becomes an event and replays like any other.
//!
//! | request | capability | allow rule id | deny rule id / reason code |
//! |---|---|---|---|
//! | [`OpenFilesRequest`] | `fs.open` | `limits.open_files` | `limits.open_files` / `FS_OPEN_FILES_EXCEEDED` |
//! | [`OpenConnectionsRequest`] | `net.open` | `network.open_connections` | `network.open_connections` or `network.quotas.connections` / `NET_CONNECTION_QUOTA_EXCEEDED` |
//! | [`LinkRequest`] | `fs.symlink_target` | `filesystem.links` | `filesystem.links` / `FS_LINK_TARGET_OUTSIDE_MOUNT`; `filesystem.paths` / `FS_PATH_INVALID`; `filesystem.mounts` / `FS_PATH_OUTSIDE_MOUNTS`; `filesystem.quotas.write_bytes` / `FS_WRITE_QUOTA_EXCEEDED` |
//! | [`EnvRequest`] | `env.read` | `env` | `env.default` / `ENV_NOT_ALLOWED` |
//! | [`ClockRequest`] | `clock.read` | `deterministic` (virtual) or `clock.host` | never denied |
//! | [`RandomRequest`] | `random.read` | `deterministic` (seeded) or `random.host` | never denied |
//!
//! Name lookups are a [`NetRequest`](super::NetRequest) with
//! [`NetAccess::Resolve`](super::NetAccess::Resolve), decided in the parent module.

use serde::{Deserialize, Serialize};

use super::{Decision, QuotaState, RuleRef, Usage};
use crate::model::Policy;
use crate::path::{normalize_guest_str, MAX_GUEST_PATH_BYTES};
use crate::reason::ReasonCode;

/// Most connections a run may hold open at once, whatever its connection quota: the
/// runtime's table of open connections has this many slots.
pub const MAX_OPEN_CONNECTIONS: u64 = 64;

/// May the guest open one more file or directory handle? Asked before the open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenFilesRequest {
    /// Files and directories the guest holds open now (preopened mounts excluded).
    pub open_now: u64,
    /// The path being opened, for the event's reader; not decided here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// May the guest open one more connection? Asked before connecting, so a connection over a
/// cap never reaches the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenConnectionsRequest {
    /// Connections the guest holds open now.
    pub open_now: u64,
}

/// A symbolic link the guest wants to create: the link's path and the target text it would
/// store. The link's own path is decided as an `fs.symlink` [`FsRequest`](super::FsRequest);
/// this request decides the target.
///
/// **The rule.** A target is allowed only when it is relative, has no `..` component and,
/// joined lexically to the link's folder, names a path inside the link's own mount and in no
/// other (nested) mount. Such a target can only name something beneath the folder that holds
/// the link, so it stays inside the mount's host folder however the link, or a folder that
/// holds it, is later renamed, and however links made under the same rule are chained: no
/// sequence of calls leaves a link that leads out. Access *through* a link is decided when it
/// is used, on the path as asked and as resolved, so the target needs no rule of its own.
/// The target's bytes count against `filesystem.quotas.write_bytes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRequest {
    /// The guest path of the link to create.
    pub link: String,
    /// The target text as the guest wrote it (lossy UTF-8 when `not_utf8`).
    pub target: String,
    /// True when the target bytes were not UTF-8.
    #[serde(default, skip_serializing_if = "super::is_false")]
    pub not_utf8: bool,
}

/// The environment variables the runtime is about to give the guest, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvRequest {
    /// The names given; each must be set by the policy's `env`.
    pub names: Vec<String>,
}

/// Which clock the guest reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockKind {
    /// Wall-clock time.
    Realtime,
    /// A clock that only moves forward.
    Monotonic,
    /// CPU time of the process.
    ProcessCputime,
    /// CPU time of the thread.
    ThreadCputime,
}

/// A read of a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockRequest {
    /// The clock read.
    pub clock: ClockKind,
}

/// Random bytes for the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RandomRequest {
    /// How many bytes.
    pub bytes: u64,
}

/// Rule id of the decisions on link targets.
const LINKS: &str = "filesystem.links";
/// Rule id of clock and random reads in deterministic mode: the sources are virtual.
const DETERMINISTIC: &str = "deterministic";

/// Why a link target is refused, before any mount is consulted.
enum TargetProblem {
    Invalid,
    Escapes,
}

/// The guest path a link target names, joined lexically to the link's folder; refuses
/// absolute targets and any `..`.
fn link_target_path(link_dir: &str, target: &str) -> Result<String, TargetProblem> {
    if target.is_empty() || target.contains('\0') || target.len() > MAX_GUEST_PATH_BYTES {
        return Err(TargetProblem::Invalid);
    }
    if target.starts_with('/') {
        return Err(TargetProblem::Escapes);
    }
    let mut named = link_dir.trim_end_matches('/').to_owned();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(TargetProblem::Escapes),
            name => {
                named.push('/');
                named.push_str(name);
            }
        }
    }
    if named.is_empty() {
        named.push('/');
    }
    Ok(named)
}

impl Policy {
    /// Decides whether the guest may open one more file: `limits.open_files` caps the files
    /// and directories it holds open at once. Enforced in audit mode too: it guards the
    /// host's descriptors, not the guest's rights.
    pub fn decide_open_files(&self, request: &OpenFilesRequest) -> Decision {
        let limit = self.limits.open_files.value;
        let state = QuotaState {
            name: "limits.open_files",
            limit,
            used: request.open_now,
            asked: 1,
        };
        let rule = RuleRef::Builtin("limits.open_files");
        if request.open_now >= limit {
            return Decision::hard_deny(rule, ReasonCode::FsOpenFilesExceeded)
                .with_quota(Some(state));
        }
        Decision::allow(rule).with_quota(Some(state))
    }

    /// Decides whether the guest may open one more connection, before it is made: at most
    /// [`MAX_OPEN_CONNECTIONS`] open at once (enforced in every mode), and no more in total
    /// than `network.quotas.connections` (a quota: audit mode relaxes it).
    pub fn decide_open_connections(
        &self,
        usage: &Usage,
        request: &OpenConnectionsRequest,
    ) -> Decision {
        let open = QuotaState {
            name: "network.open_connections",
            limit: MAX_OPEN_CONNECTIONS,
            used: request.open_now,
            asked: 1,
        };
        if request.open_now >= MAX_OPEN_CONNECTIONS {
            return Decision::hard_deny(
                RuleRef::Builtin(open.name),
                ReasonCode::NetConnectionQuotaExceeded,
            )
            .with_quota(Some(open));
        }
        if let Some(q) = self.network.quotas.connections {
            let total = QuotaState {
                name: "network.quotas.connections",
                limit: q.value,
                used: usage.net_connections,
                asked: 1,
            };
            if total.used.saturating_add(1) > total.limit {
                return Decision::rule_deny(
                    self,
                    RuleRef::Builtin(total.name),
                    ReasonCode::NetConnectionQuotaExceeded,
                )
                .with_quota(Some(total));
            }
            return Decision::allow(RuleRef::Builtin(total.name)).with_quota(Some(total));
        }
        Decision::allow(RuleRef::Builtin(open.name)).with_quota(Some(open))
    }

    /// Decides a link target by the rule documented on [`LinkRequest`].
    pub fn decide_link(&self, usage: &Usage, request: &LinkRequest) -> Decision {
        let invalid = Decision::hard_deny(
            RuleRef::Builtin("filesystem.paths"),
            ReasonCode::FsPathInvalid,
        );
        let Ok(link) = normalize_guest_str(&request.link) else {
            return invalid;
        };
        let Some((mount_index, _)) = self.mount_for(&link) else {
            return Decision::hard_deny(
                RuleRef::Builtin("filesystem.mounts"),
                ReasonCode::FsPathOutsideMounts,
            );
        };
        if request.not_utf8 {
            return invalid.with_mount(Some(mount_index));
        }
        let link_dir = link.rsplit_once('/').map_or("/", |(dir, _)| dir);
        let outside = Decision::hard_deny(
            RuleRef::Builtin(LINKS),
            ReasonCode::FsLinkTargetOutsideMount,
        )
        .with_mount(Some(mount_index));
        let named = match link_target_path(link_dir, &request.target) {
            Ok(named) => named,
            Err(TargetProblem::Invalid) => return invalid.with_mount(Some(mount_index)),
            Err(TargetProblem::Escapes) => return outside,
        };
        // Inside the link's folder, but perhaps in a mount nested beneath it: on the host
        // that is another folder than the guest sees.
        match normalize_guest_str(&named) {
            Ok(named) if self.mount_for(&named).map(|(i, _)| i) == Some(mount_index) => {}
            Ok(_) => return outside,
            Err(_) => return invalid.with_mount(Some(mount_index)),
        }
        let bytes = request.target.len() as u64;
        if let Some(q) = self.filesystem.quotas.write_bytes {
            let state = QuotaState {
                name: "filesystem.quotas.write_bytes",
                limit: q.value,
                used: usage.fs_write_bytes,
                asked: bytes,
            };
            if state.used.saturating_add(bytes) > state.limit {
                return Decision::rule_deny(
                    self,
                    RuleRef::Builtin(state.name),
                    ReasonCode::FsWriteQuotaExceeded,
                )
                .with_quota(Some(state))
                .with_mount(Some(mount_index));
            }
            return Decision::allow(RuleRef::Builtin(LINKS))
                .with_quota(Some(state))
                .with_mount(Some(mount_index));
        }
        Decision::allow(RuleRef::Builtin(LINKS)).with_mount(Some(mount_index))
    }

    /// Decides the environment given to the guest: only variables the policy's `env` sets,
    /// never the host's (enforced in every mode).
    pub fn decide_env(&self, request: &EnvRequest) -> Decision {
        let granted = |name: &String| self.env.iter().any(|(k, _)| k == name);
        if request.names.iter().all(granted) {
            Decision::allow(RuleRef::Builtin("env"))
        } else {
            Decision::hard_deny(RuleRef::Builtin("env.default"), ReasonCode::EnvNotAllowed)
        }
    }

    /// Decides a clock read: always allowed; the rule says whether the clock is virtual
    /// (`deterministic`, a function of fuel consumed) or the host's (`clock.host`).
    pub fn decide_clock(&self, _request: &ClockRequest) -> Decision {
        Decision::allow(RuleRef::Builtin(if self.deterministic {
            DETERMINISTIC
        } else {
            "clock.host"
        }))
    }

    /// Decides random bytes: always allowed; the rule says whether they are seeded
    /// (`deterministic`) or the host's (`random.host`).
    pub fn decide_random(&self, _request: &RandomRequest) -> Decision {
        Decision::allow(RuleRef::Builtin(if self.deterministic {
            DETERMINISTIC
        } else {
            "random.host"
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{NetAccess, NetRequest, Request, Verdict};
    use crate::parse::parse_policy;
    use std::path::Path;

    const POLICY: &str = r#"
version: 1
filesystem:
  mounts:
    - { guest: /out, host: ./out, mode: rw }
    - { guest: /out/nested, host: ./nested, mode: rw }
    - { guest: /data, host: ./data, mode: ro }
  quotas: { write_bytes: 10 }
network:
  rules:
    - { id: api, effect: allow, hosts: ["api.example.com", "*.example.org"], ports: [443] }
    - { id: lan, effect: allow, cidrs: ["10.0.0.0/8"], ports: [443] }
    - { id: no-evil, effect: deny, hosts: ["evil.example.org"] }
  quotas: { connections: 2 }
  resolve: { pinned.test: 10.1.2.3 }
env: { LANG: C }
limits: { open_files: 2 }
"#;

    fn policy(extra: &str) -> Policy {
        parse_policy(&format!("{POLICY}{extra}"), Path::new(".")).unwrap()
    }

    /// (verdict, enforced, rule id, reason code, capability) of a request.
    fn outcome(
        p: &Policy,
        usage: &Usage,
        r: &Request,
    ) -> (Verdict, bool, String, &'static str, &'static str) {
        let d = p.decide(usage, r);
        (
            d.verdict,
            d.enforced,
            p.rule_id(d.rule),
            d.reason.as_str(),
            r.capability(),
        )
    }

    fn is(
        got: (Verdict, bool, String, &'static str, &'static str),
        verdict: Verdict,
        rule: &str,
        reason: &str,
    ) {
        assert_eq!(
            (got.0, got.2.as_str(), got.3),
            (verdict, rule, reason),
            "{got:?}"
        );
    }

    use Verdict::{Allow, Deny};

    #[test]
    fn open_files_are_capped_by_limits_open_files_in_every_mode() {
        for p in [policy(""), policy("mode: audit\n")] {
            let open = |n| {
                Request::FsOpen(OpenFilesRequest {
                    open_now: n,
                    path: Some("/out/a".into()),
                })
            };
            let got = outcome(&p, &Usage::default(), &open(1));
            assert_eq!(got.4, "fs.open");
            is(got, Allow, "limits.open_files", "ALLOWED");
            let got = outcome(&p, &Usage::default(), &open(2));
            assert!(got.1, "the open-file cap is enforced in audit mode too");
            is(got, Deny, "limits.open_files", "FS_OPEN_FILES_EXCEEDED");
        }
        assert_eq!(
            policy("")
                .decide_open_files(&OpenFilesRequest {
                    open_now: 5,
                    path: None
                })
                .quota
                .map(|q| (q.limit, q.used)),
            Some((2, 5))
        );
    }

    #[test]
    fn connections_are_capped_before_connecting() {
        let p = policy("");
        let open = |n| Request::NetOpen(OpenConnectionsRequest { open_now: n });
        let used = |n| Usage {
            net_connections: n,
            ..Usage::default()
        };
        let got = outcome(&p, &used(1), &open(1));
        assert_eq!(got.4, "net.open");
        is(got, Allow, "network.quotas.connections", "ALLOWED");
        is(
            outcome(&p, &used(2), &open(0)),
            Deny,
            "network.quotas.connections",
            "NET_CONNECTION_QUOTA_EXCEEDED",
        );
        // The total is a quota (audit relaxes it); the open-at-once cap holds in every mode.
        let audit = policy("mode: audit\n");
        assert!(!audit.decide(&used(2), &open(0)).enforced);
        let over = audit.decide(&Usage::default(), &open(MAX_OPEN_CONNECTIONS));
        assert_eq!((over.verdict, over.enforced), (Deny, true));
        assert_eq!(audit.rule_id(over.rule), "network.open_connections");
        let no_quota = parse_policy("version: 1\n", Path::new(".")).unwrap();
        is(
            outcome(&no_quota, &used(1000), &open(63)),
            Allow,
            "network.open_connections",
            "ALLOWED",
        );
        is(
            outcome(&no_quota, &used(0), &open(64)),
            Deny,
            "network.open_connections",
            "NET_CONNECTION_QUOTA_EXCEEDED",
        );
    }

    fn link(path: &str, target: &str) -> Request {
        Request::FsLink(LinkRequest {
            link: path.into(),
            target: target.into(),
            not_utf8: false,
        })
    }

    #[test]
    fn link_targets_stay_beneath_the_link_and_inside_its_own_mount() {
        let p = policy("");
        let u = Usage::default();
        for ok in ["a.txt", "sub/a.txt", "./a", "sub//b/", "."] {
            let got = outcome(&p, &u, &link("/out/dir/l", ok));
            assert_eq!(got.4, "fs.symlink_target");
            is(got, Allow, "filesystem.links", "ALLOWED");
        }
        for escape in [
            "/etc/passwd",
            "../x",
            "a/../b",
            "..",
            "sub/..",
            "/out/dir/a",
        ] {
            let got = outcome(&p, &u, &link("/out/dir/l", escape));
            assert!(got.1, "{escape}: enforced in every mode");
            is(
                got,
                Deny,
                "filesystem.links",
                "FS_LINK_TARGET_OUTSIDE_MOUNT",
            );
        }
        // Beneath the link's folder, but inside a nested mount: another host folder.
        is(
            outcome(&p, &u, &link("/out/l", "nested/x")),
            Deny,
            "filesystem.links",
            "FS_LINK_TARGET_OUTSIDE_MOUNT",
        );
        is(
            outcome(&p, &u, &link("/out/l", "nestedx")),
            Allow,
            "filesystem.links",
            "ALLOWED",
        );
        is(
            outcome(&p, &u, &link("/out/l", "")),
            Deny,
            "filesystem.paths",
            "FS_PATH_INVALID",
        );
        is(
            outcome(&p, &u, &link("/out/l", "a\0b")),
            Deny,
            "filesystem.paths",
            "FS_PATH_INVALID",
        );
        is(
            outcome(&p, &u, &link("/elsewhere/l", "a")),
            Deny,
            "filesystem.mounts",
            "FS_PATH_OUTSIDE_MOUNTS",
        );
        let mut bad = LinkRequest {
            link: "/out/l".into(),
            target: "a".into(),
            not_utf8: true,
        };
        is(
            outcome(&p, &u, &Request::FsLink(bad.clone())),
            Deny,
            "filesystem.paths",
            "FS_PATH_INVALID",
        );
        bad.not_utf8 = false;
        is(
            outcome(&p, &u, &Request::FsLink(bad)),
            Allow,
            "filesystem.links",
            "ALLOWED",
        );
    }

    #[test]
    fn link_target_bytes_count_against_the_write_quota() {
        let p = policy("");
        let used = Usage {
            fs_write_bytes: 5,
            ..Usage::default()
        };
        is(
            outcome(&p, &used, &link("/out/l", "abcde")),
            Allow,
            "filesystem.links",
            "ALLOWED",
        );
        let got = outcome(&p, &used, &link("/out/l", "abcdef"));
        is(
            got,
            Deny,
            "filesystem.quotas.write_bytes",
            "FS_WRITE_QUOTA_EXCEEDED",
        );
        assert_eq!(link("/out/l", "abcdef").bytes(), 6);
    }

    fn resolve(host: &str, port: u16) -> Request {
        Request::Net(NetRequest {
            op: NetAccess::Resolve,
            host: host.into(),
            port,
            address: None,
            bytes: 0,
        })
    }

    #[test]
    fn only_names_an_allow_rule_matches_go_to_the_resolver() {
        let p = policy("");
        let u = Usage::default();
        let got = outcome(&p, &u, &resolve("API.example.com.", 443));
        assert_eq!(got.4, "net.resolve");
        is(got, Allow, "api", "ALLOWED");
        is(
            outcome(&p, &u, &resolve("a.example.org", 443)),
            Allow,
            "api",
            "ALLOWED",
        );
        // A CIDR alone never allows a lookup, and a deny rule always refuses one.
        is(
            outcome(&p, &u, &resolve("anything.test", 443)),
            Deny,
            "network.default",
            "NET_HOST_NOT_ALLOWED",
        );
        is(
            outcome(&p, &u, &resolve("evil.example.org", 443)),
            Deny,
            "no-evil",
            "NET_HOST_NOT_ALLOWED",
        );
        is(
            outcome(&p, &u, &resolve("api.example.com", 80)),
            Deny,
            "api",
            "NET_PORT_NOT_ALLOWED",
        );
        // Pinned names and literals need no resolver.
        is(
            outcome(&p, &u, &resolve("Pinned.Test.", 443)),
            Allow,
            "network.resolve",
            "ALLOWED",
        );
        is(
            outcome(&p, &u, &resolve("[::1]", 443)),
            Allow,
            "network.literals",
            "ALLOWED",
        );
        // `hosts: ["*"]` opts in to resolving any name.
        let any = parse_policy(
            "version: 1\nnetwork:\n  rules: [{ id: all, effect: allow, hosts: [\"*\"], ports: [443] }]\n",
            Path::new("."),
        )
        .unwrap();
        is(
            outcome(&any, &u, &resolve("whatever.test", 443)),
            Allow,
            "all",
            "ALLOWED",
        );
    }

    #[test]
    fn invalid_names_are_never_looked_up_and_name_the_deny_rule_they_dodge() {
        let p = policy("mode: audit\n");
        let u = Usage::default();
        for bad in [
            "a..example.org",
            "api.example.com..",
            "",
            ".",
            "exa mple.org",
            "-x.example.org",
        ] {
            let got = outcome(&p, &u, &resolve(bad, 443));
            assert!(got.1, "{bad:?}: enforced in audit mode too");
            is(got, Deny, "network.hosts", "NET_HOST_INVALID");
        }
        // Other odd characters make a name no rule matches for a connection (the default
        // deny decides it), but never a lookup.
        let odd = Request::Net(NetRequest {
            op: NetAccess::Connect,
            host: "exa mple.org".into(),
            port: 443,
            address: None,
            bytes: 0,
        });
        is(
            outcome(&p, &u, &odd),
            Deny,
            "network.default",
            "NET_HOST_NOT_ALLOWED",
        );
        for dodge in [
            "evil..example.org",
            "evil.example.org..",
            ".evil.example.org",
        ] {
            for op in [NetAccess::Resolve, NetAccess::Connect] {
                let r = Request::Net(NetRequest {
                    op,
                    host: dodge.into(),
                    port: 443,
                    address: None,
                    bytes: 0,
                });
                let got = outcome(&p, &u, &r);
                assert!(got.1, "{dodge:?}");
                is(got, Deny, "no-evil", "NET_HOST_NOT_ALLOWED");
            }
        }
    }

    #[test]
    fn env_clock_and_random_are_decided_with_a_rule() {
        let p = policy("");
        let u = Usage::default();
        let env = |names: &[&str]| {
            Request::Env(EnvRequest {
                names: names.iter().map(|n| n.to_string()).collect(),
            })
        };
        let got = outcome(&p, &u, &env(&["LANG"]));
        assert_eq!(got.4, "env.read");
        is(got, Allow, "env", "ALLOWED");
        is(outcome(&p, &u, &env(&[])), Allow, "env", "ALLOWED");
        let got = outcome(&policy("mode: audit\n"), &u, &env(&["LANG", "HOME"]));
        assert!(got.1);
        is(got, Deny, "env.default", "ENV_NOT_ALLOWED");
        let clock = Request::Clock(ClockRequest {
            clock: ClockKind::Realtime,
        });
        let random = Request::Random(RandomRequest { bytes: 16 });
        is(outcome(&p, &u, &clock), Allow, "clock.host", "ALLOWED");
        is(outcome(&p, &u, &random), Allow, "random.host", "ALLOWED");
        let det = policy("deterministic: true\n");
        let got = outcome(&det, &u, &clock);
        assert_eq!(got.4, "clock.read");
        is(got, Allow, "deterministic", "ALLOWED");
        let got = outcome(&det, &u, &random);
        assert_eq!(got.4, "random.read");
        is(got, Allow, "deterministic", "ALLOWED");
    }

    #[test]
    fn new_requests_round_trip_through_json_with_their_kind() {
        for (r, kind) in [
            (
                Request::FsOpen(OpenFilesRequest {
                    open_now: 3,
                    path: None,
                }),
                "fs_open",
            ),
            (
                Request::NetOpen(OpenConnectionsRequest { open_now: 1 }),
                "net_open",
            ),
            (link("/out/l", "a"), "fs_link"),
            (
                Request::Env(EnvRequest {
                    names: vec!["LANG".into()],
                }),
                "env",
            ),
            (
                Request::Clock(ClockRequest {
                    clock: ClockKind::ProcessCputime,
                }),
                "clock",
            ),
            (Request::Random(RandomRequest { bytes: 4 }), "random"),
            (resolve("a.test", 1), "net"),
        ] {
            let json = serde_json::to_value(&r).unwrap();
            assert_eq!(json["kind"], kind, "{json}");
            assert_eq!(serde_json::from_value::<Request>(json).unwrap(), r);
        }
    }
}
