//! The capability broker: one per run, the only code that touches the host's files. Every
//! request passes [`Broker::check`], which asks the policy's `decide`, accounts usage and
//! records the event. Like Wasmtime's limiter it has three outcomes: allow, refuse (the guest
//! gets an error code) and trap (`on_deny: trap` ends the run).

use std::sync::Arc;
use std::time::Instant;

use sandbox_policy::{
    Decision, FsQuery, OnDeny, Policy, ReasonCode, Request, RuleRef, Usage, Verdict,
};

use crate::events::{Event, EventLog, Outcome};
use crate::fs::Mounts;
use crate::net::Connections;

/// What a host operation returns to its front end when it does not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// The policy refused it; the reason is in the event.
    Denied(ReasonCode),
    /// The policy refused it and asks for the run to end (`on_deny: trap`).
    DeniedTrap {
        reason: ReasonCode,
        rule_id: String,
        capability: &'static str,
    },
    /// Allowed, but there is no such file or directory.
    NotFound,
    /// Allowed, but the path names a directory where a file was needed, or the reverse.
    WrongKind,
    /// Allowed, but a component of the path, or the path itself, is not a directory where
    /// one was needed.
    NotDir,
    /// Allowed, but the host operation failed.
    Io,
    /// Allowed, but the file or directory to create already exists.
    Exists,
    /// Allowed, but the directory to remove is not empty.
    NotEmpty,
    /// Arguments the host cannot act on (bad flags, oversized buffers).
    Invalid,
    /// Pointer or length outside guest memory.
    Fault,
    /// The wait ran out (a receive with no data, a connect that did not finish).
    TimedOut,
    /// Allowed, but the peer could not be reached or the connection failed.
    Unreachable,
}

/// A request the broker let through: the decision (an allow, or a deny that audit mode
/// relaxed) and the recorded event, to attach the outcome to.
pub(crate) struct Allowed {
    pub event: Option<usize>,
    pub decision: Decision,
}

pub struct Broker {
    pub(crate) policy: Arc<Policy>,
    pub(crate) mounts: Mounts,
    pub(crate) usage: Usage,
    pub(crate) log: EventLog,
    pub(crate) connections: Connections,
    /// When the run's wall-clock budget ends: host calls that wait never wait past it.
    pub(crate) deadline: Instant,
}

impl Broker {
    /// A broker for one run; `deadline` is when the run's wall-clock budget ends.
    pub fn new(policy: Arc<Policy>, mounts: Mounts, deadline: Instant) -> Broker {
        Broker::with_log(policy, mounts, deadline, EventLog::new(0))
    }

    /// A broker that records into `log`, emptied first (its storage is kept).
    pub(crate) fn with_log(
        policy: Arc<Policy>,
        mounts: Mounts,
        deadline: Instant,
        mut log: EventLog,
    ) -> Broker {
        let max = usize::try_from(policy.limits.max_events.value).unwrap_or(usize::MAX);
        log.clear(max);
        Broker {
            log,
            policy,
            mounts,
            usage: Usage::default(),
            connections: Connections::default(),
            deadline,
        }
    }

    /// The one chokepoint: decide, record, and turn the decision into one of three outcomes:
    /// `Ok` (go ahead), `Err(Denied)` (the guest gets an error code) or `Err(DeniedTrap)`.
    pub(crate) fn check(&mut self, request: Request) -> Result<Allowed, HostError> {
        let decision = self.policy.decide(&self.usage, &request);
        let capability = request.capability();
        let index = self.log.record_request(decision, request);
        self.conclude(decision, index, capability)
    }

    /// [`Broker::check`] for a borrowed filesystem request: the host-call path, which
    /// allocates nothing to decide and record it.
    pub(crate) fn check_fs(&mut self, query: &FsQuery<'_>) -> Result<Allowed, HostError> {
        let decision = self.policy.decide_fs(&self.usage, query);
        let index = self.log.record_fs(decision, query);
        self.conclude(decision, index, query.op.capability())
    }

    fn conclude(
        &mut self,
        decision: Decision,
        index: Option<usize>,
        capability: &'static str,
    ) -> Result<Allowed, HostError> {
        if decision.permits() {
            return Ok(Allowed {
                event: index,
                decision,
            });
        }
        if self.policy.on_deny == OnDeny::Trap {
            self.log.set_outcome(index, Outcome::EndedRun);
            return Err(HostError::DeniedTrap {
                reason: decision.reason,
                rule_id: self.policy.rule_id(decision.rule),
                capability,
            });
        }
        Err(HostError::Denied(decision.reason))
    }

    /// Records a guest mistake that no policy could allow (bad pointer, bad handle).
    pub(crate) fn record_fault(
        &mut self,
        capability: &'static str,
        reason: ReasonCode,
        rule: &'static str,
        outcome: Outcome,
    ) {
        self.log.record(Event {
            capability,
            decision: Decision::hard_deny(RuleRef::Builtin(rule), reason),
            request: None,
            outcome,
        });
    }

    /// Records a budget event (fuel, timeout, memory) at the end of a run.
    pub(crate) fn record_budget(
        &mut self,
        capability: &'static str,
        rule: &'static str,
        reason: ReasonCode,
        outcome: Outcome,
    ) {
        let mut decision = Decision::hard_deny(RuleRef::Builtin(rule), reason);
        decision.verdict = Verdict::Deny;
        self.log.record(Event {
            capability,
            decision,
            request: None,
            outcome,
        });
    }

    pub fn usage(&self) -> &Usage {
        &self.usage
    }

    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// Takes the event log out (leaving an empty one), to be used again by another call.
    pub(crate) fn take_log(&mut self) -> EventLog {
        std::mem::replace(&mut self.log, EventLog::new(0))
    }

    /// Starts over as if new: no usage, no events; the log's storage is kept.
    pub(crate) fn reset(&mut self) {
        let max = usize::try_from(self.policy.limits.max_events.value).unwrap_or(usize::MAX);
        self.usage = Usage::default();
        self.log.clear(max);
    }
}
