//! `policy replay`: decides every request a report recorded again under another policy,
//! without running anything, and lists what changes. Each event's request holds everything
//! `decide` reads, so the only state to rebuild is the usage so far: it is replayed from the
//! bytes each allowed request moved (as recorded, or as asked when the original run did not
//! let it through).
//!
//! Replay answers "what would this policy have said to these requests"; it cannot know what
//! the plugin would have done next with a different answer.

use std::borrow::Cow;
use std::net::IpAddr;

use serde::Serialize;

use crate::decide::{FsAccess, NetAccess, NetRequest, Request, Usage, Verdict};
use crate::model::Policy;
use crate::net::{normalize_host, parse_ip_literal};
use crate::reason::ReasonCode;

pub use crate::event::RecordedEvent;

/// A decision as a report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decided {
    /// Allow or deny.
    pub decision: Verdict,
    /// False when audit mode relaxed a deny.
    pub enforced: bool,
    /// The rule that decided.
    pub rule_id: String,
    /// Why.
    pub reason_code: ReasonCode,
}

impl Decided {
    fn permits(&self) -> bool {
        self.decision == Verdict::Allow || !self.enforced
    }
}

/// How a request's fate changes under the new policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Denied before, allowed now.
    NowAllowed,
    /// Allowed before, denied now.
    NowDenied,
    /// A deny that audit mode only logged now blocks the request.
    NowEnforced,
    /// A deny that blocked the request is now only logged (audit mode).
    NowRelaxed,
}

impl ChangeKind {
    /// The change in words, e.g. `now allowed`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::NowAllowed => "now allowed",
            ChangeKind::NowDenied => "now denied",
            ChangeKind::NowEnforced => "now enforced",
            ChangeKind::NowRelaxed => "now only logged",
        }
    }
}

/// One replayed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replayed {
    /// The recorded event's `seq`.
    pub seq: u64,
    /// The capability asked for.
    pub capability: String,
    /// What was asked: a path or `host:port`.
    pub target: String,
    /// The decision the report recorded.
    pub old: Decided,
    /// The decision under the new policy.
    pub new: Decided,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// How the request's fate changes; `None` when it does not.
    pub change: Option<ChangeKind>,
    /// The address the new policy's `network.resolve` pins the name to: a run under the new
    /// policy connects there, so the request was decided with it instead of what was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned: Option<IpAddr>,
    /// True when the new outcome lets a name through that the recorded run never looked up
    /// (and the new policy does not pin): a real run would look it up and decide the address
    /// it finds, which may still be blocked or denied. The new outcome is provisional.
    #[serde(skip_serializing_if = "is_false")]
    pub depends_on_lookup: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The request as a run under `policy` would make it: a host name that the policy's
/// `network.resolve` pins goes to the pinned address, whatever the recorded run found.
/// Returns the pinned address when it was used.
fn with_pins<'a>(policy: &Policy, request: &'a Request) -> (Cow<'a, Request>, Option<IpAddr>) {
    let Request::Net(r) = request else {
        return (Cow::Borrowed(request), None);
    };
    let host = normalize_host(&r.host);
    if parse_ip_literal(&host).is_some() {
        return (Cow::Borrowed(request), None);
    }
    match policy.pinned_address(&host) {
        Some(pin) => {
            let pinned = NetRequest {
                address: Some(pin),
                ..r.clone()
            };
            (Cow::Owned(Request::Net(pinned)), Some(pin))
        }
        None => (Cow::Borrowed(request), None),
    }
}

/// True when a let-through connection to a name rests on a lookup the recorded run never made.
fn rests_on_a_lookup(request: &Request, pinned: Option<IpAddr>, permits: bool) -> bool {
    match request {
        Request::Net(r) => {
            permits
                && pinned.is_none()
                && r.address.is_none()
                && r.op == NetAccess::Connect
                && parse_ip_literal(&normalize_host(&r.host)).is_none()
        }
        _ => false,
    }
}

/// A budget the run used, against the new policy's limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetCheck {
    /// The budget's key, e.g. `budgets.fuel`.
    pub budget: &'static str,
    /// What the run used.
    pub used: f64,
    /// The new policy's limit.
    pub limit: u64,
    /// True when the use fits the new limit.
    pub fits: bool,
}

/// Every request replayed, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replay {
    /// The replayed requests, in the order they were recorded.
    pub events: Vec<Replayed>,
    /// Seqs of events with no request (budget events, guest faults): nothing to decide.
    pub not_replayable: Vec<u64>,
    /// The usage the new policy would have let through.
    pub usage: Usage,
}

impl Replay {
    /// The replayed requests whose fate changes.
    pub fn changes(&self) -> impl Iterator<Item = &Replayed> {
        self.events.iter().filter(|e| e.change.is_some())
    }

    /// Replayed requests whose new outcome rests on a lookup the recorded run never made.
    pub fn depending_on_lookups(&self) -> impl Iterator<Item = &Replayed> {
        self.events.iter().filter(|e| e.depends_on_lookup)
    }

    /// How many requests change in this way.
    pub fn count(&self, kind: ChangeKind) -> usize {
        self.events
            .iter()
            .filter(|e| e.change == Some(kind))
            .count()
    }
}

fn classify(old: &Decided, new: &Decided) -> Option<ChangeKind> {
    match (old.decision, new.decision) {
        (Verdict::Deny, Verdict::Allow) => Some(ChangeKind::NowAllowed),
        (Verdict::Allow, Verdict::Deny) => Some(ChangeKind::NowDenied),
        (Verdict::Deny, Verdict::Deny) if old.enforced != new.enforced => Some(if new.enforced {
            ChangeKind::NowEnforced
        } else {
            ChangeKind::NowRelaxed
        }),
        _ => None,
    }
}

/// Adds what a let-through request moved to the usage, as the broker accounts it.
fn account(usage: &mut Usage, request: &Request, moved: u64) {
    let add = |counter: &mut u64, n: u64| *counter = counter.saturating_add(n);
    match request {
        Request::Fs(r) => match r.op {
            FsAccess::Read => add(&mut usage.fs_read_bytes, moved),
            FsAccess::Write => add(&mut usage.fs_write_bytes, moved),
            FsAccess::Create | FsAccess::Symlink => add(&mut usage.fs_entries_created, 1),
            _ => {}
        },
        Request::Net(r) => match r.op {
            // The broker counts a connection once it is let through, whether or not it connects.
            NetAccess::Connect => add(&mut usage.net_connections, 1),
            NetAccess::Send => add(&mut usage.net_egress_bytes, moved),
            NetAccess::Receive => add(&mut usage.net_ingress_bytes, moved),
            NetAccess::Resolve => {}
        },
        // A link's target text is written to the host.
        Request::FsLink(r) => add(&mut usage.fs_write_bytes, r.target.len() as u64),
        Request::FsOpen(_)
        | Request::NetOpen(_)
        | Request::Env(_)
        | Request::Clock(_)
        | Request::Random(_) => {}
    }
}

/// Decides every recorded request again under `policy`.
pub fn replay(policy: &Policy, events: &[RecordedEvent]) -> Replay {
    let mut usage = Usage::default();
    let mut replayed = Vec::new();
    let mut not_replayable = Vec::new();
    for event in events {
        let Some(recorded) = &event.request else {
            not_replayable.push(event.seq);
            continue;
        };
        let (request, pinned) = with_pins(policy, recorded);
        let request = request.as_ref();
        let decision = policy.decide(&usage, request);
        let new = Decided {
            decision: decision.verdict,
            enforced: decision.enforced,
            rule_id: policy.rule_id(decision.rule),
            reason_code: decision.reason,
        };
        if new.permits() {
            let asked = request.bytes();
            let mut moved = event.bytes_done().unwrap_or(asked);
            // A receive is capped at the ingress quota left, as the broker caps it.
            if let (Request::Net(r), Some(q)) = (request, decision.quota) {
                if r.op == NetAccess::Receive && decision.enforced {
                    moved = moved.min(q.left());
                }
            }
            account(&mut usage, request, moved);
        }
        let old = Decided {
            decision: event.decision,
            enforced: event.enforced,
            rule_id: event.rule_id.clone(),
            reason_code: event.reason_code,
        };
        replayed.push(Replayed {
            seq: event.seq,
            capability: event.capability.clone(),
            target: request.target(),
            change: classify(&old, &new),
            depends_on_lookup: rests_on_a_lookup(request, pinned, new.permits()),
            pinned,
            old,
            new,
        });
    }
    Replay {
        events: replayed,
        not_replayable,
        usage,
    }
}

/// The budgets a run used against `policy`'s: fuel and peak memory are exact, wall time is
/// only indicative (it varies from run to run).
pub fn budget_checks(
    policy: &Policy,
    fuel_used: u64,
    peak_memory_bytes: u64,
    wall_time_ms: f64,
) -> Vec<BudgetCheck> {
    let b = &policy.budgets;
    vec![
        BudgetCheck {
            budget: "budgets.fuel",
            used: fuel_used as f64,
            limit: b.fuel.value,
            fits: fuel_used <= b.fuel.value,
        },
        BudgetCheck {
            budget: "budgets.memory_bytes",
            used: peak_memory_bytes as f64,
            limit: b.memory_bytes.value,
            fits: peak_memory_bytes <= b.memory_bytes.value,
        },
        BudgetCheck {
            budget: "budgets.timeout_ms",
            used: wall_time_ms,
            limit: b.timeout_ms.value,
            fits: wall_time_ms <= b.timeout_ms.value as f64,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{FsRequest, NetRequest};
    use crate::parse::parse_policy;
    use std::path::Path;

    fn policy(text: &str) -> Policy {
        parse_policy(text, Path::new(".")).unwrap()
    }

    fn write(seq: u64, path: &str, bytes: u64, verdict: Verdict) -> RecordedEvent {
        let reason = if verdict == Verdict::Allow {
            ReasonCode::Allowed
        } else {
            ReasonCode::FsPathNotAllowed
        };
        let request = Request::Fs(FsRequest {
            op: FsAccess::Write,
            path: path.into(),
            not_utf8: false,
            resolved: None,
            bytes,
        });
        let mut e =
            RecordedEvent::new(seq, "fs.write", verdict, true, "old", reason, Some(request));
        e.set_bytes_done((verdict == Verdict::Allow).then_some(bytes));
        e
    }

    const OUT: &str =
        "version: 1\nfilesystem:\n  mounts: [{ guest: /out, host: ./out, mode: rw }]\n";

    #[test]
    fn usage_is_replayed_so_quotas_bite_in_order() {
        let p = policy(&format!(
            "{OUT}  rules: [{{ id: w, effect: allow, ops: [write], paths: [\"/out/**\"] }}]\n  quotas: {{ write_bytes: 100 }}\n"
        ));
        let events = [
            write(0, "/out/a", 60, Verdict::Deny),
            write(1, "/out/b", 30, Verdict::Allow),
            write(2, "/out/c", 20, Verdict::Allow),
        ];
        let r = replay(&p, &events);
        assert_eq!(r.events[0].change, Some(ChangeKind::NowAllowed));
        assert_eq!(r.events[1].change, None);
        // 60 + 30 used; 20 more crosses 100.
        assert_eq!(r.events[2].change, Some(ChangeKind::NowDenied));
        assert_eq!(
            r.events[2].new.reason_code,
            ReasonCode::FsWriteQuotaExceeded
        );
        assert_eq!(r.usage.fs_write_bytes, 90);
        assert_eq!(
            (
                r.count(ChangeKind::NowAllowed),
                r.count(ChangeKind::NowDenied)
            ),
            (1, 1)
        );
    }

    #[test]
    fn audit_policies_relax_and_events_without_requests_are_skipped() {
        let p = policy(&format!("{OUT}mode: audit\n"));
        let mut budget = write(1, "", 0, Verdict::Deny);
        budget.request = None;
        budget.reason_code = ReasonCode::FuelExhausted;
        let r = replay(&p, &[write(0, "/out/a", 1, Verdict::Deny), budget]);
        assert_eq!(r.events.len(), 1);
        assert_eq!(r.events[0].change, Some(ChangeKind::NowRelaxed));
        assert_eq!(r.not_replayable, [1]);
    }

    #[test]
    fn receives_are_capped_at_the_ingress_quota_left() {
        let p = policy(
            "version: 1\nnetwork:\n  rules: [{ id: e, effect: allow, hosts: [\"h.test\"], ports: [1] }]\n  quotas: { ingress_bytes: 10 }\n",
        );
        let recv = |seq| {
            let request = Request::Net(NetRequest {
                op: NetAccess::Receive,
                host: "h.test".into(),
                port: 1,
                address: None,
                bytes: 4096,
            });
            let mut e = RecordedEvent::new(
                seq,
                "net.receive",
                Verdict::Allow,
                true,
                "e",
                ReasonCode::Allowed,
                Some(request),
            );
            e.set_bytes_done(Some(8));
            e
        };
        let r = replay(&p, &[recv(0), recv(1), recv(2)]);
        assert_eq!(r.usage.net_ingress_bytes, 10);
        assert_eq!(r.events[2].change, Some(ChangeKind::NowDenied));
    }

    fn connect(seq: u64, host: &str, address: Option<&str>, verdict: Verdict) -> RecordedEvent {
        let request = Request::Net(NetRequest {
            op: NetAccess::Connect,
            host: host.into(),
            port: 443,
            address: address.map(|a| a.parse().unwrap()),
            bytes: 0,
        });
        let reason = match verdict {
            Verdict::Allow => ReasonCode::Allowed,
            Verdict::Deny => ReasonCode::NetHostNotAllowed,
        };
        RecordedEvent::new(
            seq,
            "net.connect",
            verdict,
            true,
            "old",
            reason,
            Some(request),
        )
    }

    #[test]
    fn names_are_decided_with_the_new_policys_pins() {
        // Denied by name before any lookup; the new policy pins the name into a CIDR it allows.
        let p = policy(
            "version: 1\nnetwork:\n  rules: [{ id: lan, effect: allow, cidrs: [\"10.0.0.0/8\"], ports: [443] }]\n  resolve: { API.test.: 10.0.0.5 }\n",
        );
        let r = replay(&p, &[connect(0, "api.test", None, Verdict::Deny)]);
        assert_eq!(r.events[0].change, Some(ChangeKind::NowAllowed), "{r:?}");
        assert_eq!(r.events[0].new.rule_id, "lan");
        assert_eq!(r.events[0].pinned, Some("10.0.0.5".parse().unwrap()));
        assert!(!r.events[0].depends_on_lookup);
        // Recorded at a public address; the new pin leads to loopback, which is blocked.
        let p = policy(
            "version: 1\nnetwork:\n  rules: [{ id: api, effect: allow, hosts: [\"api.test\"], ports: [443] }]\n  resolve: { api.test: 127.0.0.1 }\n",
        );
        let r = replay(
            &p,
            &[connect(
                0,
                "api.test",
                Some("93.184.216.34"),
                Verdict::Allow,
            )],
        );
        assert_eq!(r.events[0].change, Some(ChangeKind::NowDenied));
        assert_eq!(r.events[0].new.reason_code, ReasonCode::NetAddressBlocked);
    }

    #[test]
    fn an_outcome_that_rests_on_a_lookup_never_made_says_so() {
        let p = policy(
            "version: 1\nnetwork:\n  rules: [{ id: api, effect: allow, hosts: [\"api.test\"], ports: [443] }]\n",
        );
        let r = replay(
            &p,
            &[
                connect(0, "api.test", None, Verdict::Deny),
                connect(1, "api.test", Some("93.184.216.34"), Verdict::Allow),
                connect(2, "other.test", None, Verdict::Deny),
            ],
        );
        let flagged: Vec<u64> = r.depending_on_lookups().map(|e| e.seq).collect();
        // Only the name let through without an address: the others are decided in full.
        assert_eq!(flagged, [0]);
        assert_eq!(r.events[0].change, Some(ChangeKind::NowAllowed));
        let json = serde_json::to_value(&r.events[0]).unwrap();
        assert_eq!(json["depends_on_lookup"], true);
        assert!(serde_json::to_value(&r.events[1])
            .unwrap()
            .get("depends_on_lookup")
            .is_none());
    }

    #[test]
    fn budgets_are_checked_against_the_new_limits() {
        let p = policy("version: 1\nbudgets: { fuel: 100, memory_bytes: 64KiB, timeout_ms: 10 }\n");
        let checks = budget_checks(&p, 101, 65536, 2.5);
        assert_eq!(
            checks
                .iter()
                .map(|c| (c.budget, c.fits))
                .collect::<Vec<_>>(),
            [
                ("budgets.fuel", false),
                ("budgets.memory_bytes", true),
                ("budgets.timeout_ms", true)
            ]
        );
    }
}
