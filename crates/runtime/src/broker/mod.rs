//! The capability broker: one per call, the one place where a request is decided. Every
//! request passes [`Broker::check`] (or [`Broker::check_fs`]), which asks the policy's
//! `decide`, charges the quota, records the event and, on an allow, hands back a [`Permit`]:
//! the only value the capabilities in `cap/` accept before they touch the host. Like Wasmtime's
//! limiter it has three outcomes: allow (a permit), refuse (the guest gets an error code) and
//! trap (`on_deny: trap` ends the run).
//!
//! The broker holds no host handle: files and sockets live in `cap/`, which cannot decide.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sandbox_policy::{
    Decision, FsQuery, OnDeny, Policy, ReasonCode, Request, RuleRef, Usage, Verdict,
};

pub(crate) mod events;

use events::{Event, EventLog, Outcome};

/// Where recorded events go as they become final (the report layer turns them into report
/// events for an embedder's sink). Called on the host-call path only when a sink was asked
/// for.
pub(crate) trait EventTap: Send {
    /// Event `seq` of `log` is final: its decision and outcome will not change.
    fn recorded(&mut self, policy: &Policy, log: &EventLog, seq: usize);
}

/// The cancel state of one call, shared with the handles that can cancel it from another
/// thread. Once set, the broker's deadline has passed: Wasm code stops at the next epoch
/// check and a blocking host call at the end of its current slice.
#[derive(Debug, Default)]
pub(crate) struct CancelFlag {
    cancelled: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl CancelFlag {
    /// Cancels the call; the first reason given is kept.
    pub(crate) fn cancel(&self, reason: &str) {
        let mut kept = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if kept.is_none() {
            *kept = Some(reason.to_owned());
        }
        self.cancelled.store(true, Ordering::Release);
    }

    /// Whether the call was cancelled.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// The reason given to [`CancelFlag::cancel`].
    pub(crate) fn reason(&self) -> String {
        let kept = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        kept.clone().unwrap_or_else(|| "cancelled".to_owned())
    }
}

/// The event outcome of a failed operation.
pub(crate) fn failure_outcome(e: &HostError) -> Outcome {
    match e {
        HostError::NotFound => Outcome::NotFound,
        HostError::WrongKind | HostError::NotDir => Outcome::Failed {
            error: "wrong kind of file".into(),
        },
        other => Outcome::Failed {
            error: format!("{other:?}").to_lowercase(),
        },
    }
}

/// What a host operation returns to its front end when it does not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostError {
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
    /// The wait ran out (a receive with no data, a connect that did not finish).
    TimedOut,
    /// The fuel left could not pay for the work the call would do: the run ends as
    /// `fuel_exhausted`, before the work.
    OutOfFuel,
    /// The run's wall-clock budget ended while the call worked: the run ends as `timeout`.
    DeadlinePassed,
    /// Allowed, but the peer could not be reached or the connection failed.
    Unreachable,
    /// Allowed, but the path names a symlink where the call does not follow one (or a
    /// symlink loop).
    Loop,
    /// Allowed, but the two paths of a hard link lie in different mounts.
    CrossMount,
    /// Allowed, but the host does not permit it (a hard link to a directory).
    NotPermitted,
}

/// A request the broker let through: the decision (an allow, or a deny that audit mode
/// relaxed) and the recorded event, to attach the outcome to. Only [`Broker::check`] and
/// [`Broker::check_fs`] make one (its fields are private to this module), and a capability
/// operation that touches the host takes one, so no host operation happens undecided.
#[must_use = "a permit is spent by the host operation it allows, then by `Broker::finish`"]
pub(crate) struct Permit {
    event: Option<usize>,
    decision: Decision,
}

impl Permit {
    /// The decision this permit carries (an allow, or an audit-mode deny that was relaxed).
    pub(crate) fn decision(&self) -> &Decision {
        &self.decision
    }
}

/// The decision point of one call: the policy, the usage so far, the event log and the
/// call's deadline.
pub(crate) struct Broker {
    policy: Arc<Policy>,
    usage: Usage,
    log: EventLog,
    /// When the run's wall-clock budget ends: host calls that wait never wait past it.
    deadline: Instant,
    meter: Meter,
    /// In audit mode, a connection or name lookup the policy would deny is recorded as
    /// relaxed but not made (the guest gets the deny's error): `policy learn` reaches no host
    /// the base policy forbids.
    pub(crate) refuse_relaxed_network: bool,
    /// Set from another thread to end the call now.
    cancel: Arc<CancelFlag>,
    /// Where final events go as they are recorded, if anywhere.
    tap: Option<Box<dyn EventTap>>,
    /// Events handed to the tap so far.
    tapped: usize,
    /// The first event whose outcome a host operation may still set: it and the events after
    /// it wait for the end of the host call.
    open: Option<usize>,
}

/// The fuel one host call may spend on work whose size is known only as it goes (path
/// components, directory entries): opened by the front end with the fuel left, charged by the
/// capability before each piece of work, settled by the front end when the call returns.
#[derive(Debug, Default, Clone, Copy)]
struct Meter {
    left: u64,
    spent: u64,
}

impl Broker {
    /// A broker for one run; `deadline` is when the run's wall-clock budget ends.
    #[cfg(any(test, feature = "bench-hooks"))]
    pub(crate) fn new(policy: Arc<Policy>, deadline: Instant) -> Broker {
        Broker::with_log(policy, deadline, EventLog::new(0))
    }

    /// A broker that records into `log`, emptied first (its storage is kept).
    pub(crate) fn with_log(policy: Arc<Policy>, deadline: Instant, mut log: EventLog) -> Broker {
        let max = usize::try_from(policy.limits.max_events.value).unwrap_or(usize::MAX);
        log.clear(max);
        Broker {
            log,
            policy,
            usage: Usage::default(),
            deadline,
            meter: Meter::default(),
            refuse_relaxed_network: false,
            cancel: Arc::default(),
            tap: None,
            tapped: 0,
            open: None,
        }
    }

    /// Hands each final event to `tap` as it is recorded.
    pub(crate) fn set_tap(&mut self, tap: Box<dyn EventTap>) {
        self.tap = Some(tap);
    }

    /// The call's cancel state, shared with its cancel handles.
    pub(crate) fn set_cancel(&mut self, cancel: Arc<CancelFlag>) {
        self.cancel = cancel;
    }

    /// The call's cancel state.
    pub(crate) fn cancel_flag(&self) -> &Arc<CancelFlag> {
        &self.cancel
    }

    /// Hands the tap every event that is final, in order. An allowed request's event waits
    /// for the end of its host call, which may still set its outcome.
    fn tap_final(&mut self) {
        let Some(tap) = &mut self.tap else {
            return;
        };
        let end = self.open.unwrap_or(self.log.events().len());
        while self.tapped < end {
            tap.recorded(&self.policy, &self.log, self.tapped);
            self.tapped += 1;
        }
    }

    /// Every event so far is final (the host call or the run is over): hands them to the tap.
    pub(crate) fn events_final(&mut self) {
        self.open = None;
        self.tap_final();
    }

    /// The one chokepoint: decide, record, and turn the decision into one of three outcomes:
    /// `Ok` (go ahead), `Err(Denied)` (the guest gets an error code) or `Err(DeniedTrap)`.
    pub(crate) fn check(&mut self, request: Request) -> Result<Permit, HostError> {
        let decision = self.policy.decide(&self.usage, &request);
        let capability = request.capability();
        let index = self.log.record_request(decision, request);
        let result = self.conclude(decision, index, capability);
        self.tap_final();
        result
    }

    /// [`Broker::check`] for a limit that guards another request (one more open file, one
    /// more connection): decided the same way, but an allow is not recorded, since the request
    /// it guards records its own event; a deny is recorded as any deny.
    pub(crate) fn check_limit(&mut self, request: Request) -> Result<Permit, HostError> {
        let decision = self.policy.decide(&self.usage, &request);
        // Relaxed denies (audit mode) are recorded too: `policy learn` grants from them.
        if decision.verdict == Verdict::Allow {
            return Ok(Permit {
                event: None,
                decision,
            });
        }
        let capability = request.capability();
        let index = self.log.record_request(decision, request);
        self.conclude(decision, index, capability)
    }

    /// [`Broker::check`] for a borrowed filesystem request: the host-call path, which
    /// allocates nothing to decide and record it.
    pub(crate) fn check_fs(&mut self, query: &FsQuery<'_>) -> Result<Permit, HostError> {
        let decision = self.policy.decide_fs(&self.usage, query);
        let index = self.log.record_fs(decision, query);
        let result = self.conclude(decision, index, query.op.capability());
        self.tap_final();
        result
    }

    fn conclude(
        &mut self,
        decision: Decision,
        index: Option<usize>,
        capability: &'static str,
    ) -> Result<Permit, HostError> {
        if decision.permits() {
            if self.tap.is_some() && self.open.is_none() {
                self.open = index;
            }
            return Ok(Permit {
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
        self.tap_final();
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
        self.tap_final();
    }

    /// What the call has used so far.
    pub(crate) fn usage(&self) -> &Usage {
        &self.usage
    }

    /// The usage counters, for a capability to count what an allowed operation really moved.
    pub(crate) fn usage_mut(&mut self) -> &mut Usage {
        &mut self.usage
    }

    /// The policy the broker decides by (capabilities read mount geometry from it).
    pub(crate) fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// The events recorded so far.
    pub(crate) fn log(&self) -> &EventLog {
        &self.log
    }

    /// The wall-clock budget left: what a blocking host operation may wait at most.
    pub(crate) fn remaining(&self) -> std::time::Duration {
        if self.cancel.is_cancelled() {
            return std::time::Duration::ZERO;
        }
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// A permit for an operation on a handle whose open was decided already (seek, sync,
    /// metadata, close): no new decision and no event, but the capability still touches the
    /// host only with a permit in hand.
    pub(crate) fn handle_permit(&self) -> Permit {
        let mut decision = Decision::hard_deny(RuleRef::Builtin("handles"), ReasonCode::Allowed);
        decision.verdict = Verdict::Allow;
        Permit {
            event: None,
            decision,
        }
    }

    /// Opens the fuel meter of a host call with the fuel the store has left.
    pub(crate) fn meter_open(&mut self, fuel_left: u64) {
        self.meter = Meter {
            left: fuel_left,
            spent: 0,
        };
    }

    /// Charges `units` of fuel before the work they pay for; when the fuel left cannot pay,
    /// the call stops here and the run ends as `fuel_exhausted`.
    pub(crate) fn charge_fuel(&mut self, units: u64) -> Result<(), HostError> {
        let spent = self.meter.spent.saturating_add(units);
        if spent > self.meter.left {
            self.meter.spent = self.meter.left;
            return Err(HostError::OutOfFuel);
        }
        self.meter.spent = spent;
        Ok(())
    }

    /// Gives back fuel charged for work that turned out smaller than its bound.
    pub(crate) fn refund_fuel(&mut self, units: u64) {
        self.meter.spent = self.meter.spent.saturating_sub(units);
    }

    /// Closes the meter: the fuel the call's capabilities charged, for the front end to burn.
    pub(crate) fn meter_close(&mut self) -> u64 {
        // The host call is over: no outcome of its events changes any more.
        if self.open.is_some() {
            self.events_final();
        }
        std::mem::take(&mut self.meter).spent
    }

    /// `Err(DeadlinePassed)` once the run's wall-clock budget has ended: long host work checks
    /// it between slices, so no call runs far past the budget.
    pub(crate) fn check_deadline(&self) -> Result<(), HostError> {
        if Instant::now() >= self.deadline || self.cancel.is_cancelled() {
            Err(HostError::DeadlinePassed)
        } else {
            Ok(())
        }
    }

    /// Records the outcome of the operation a permit allowed, and spends the permit.
    pub(crate) fn finish(
        &mut self,
        permit: Permit,
        result: Result<u64, HostError>,
    ) -> Result<u64, HostError> {
        match &result {
            Ok(n) => self
                .log
                .set_outcome(permit.event, Outcome::Done { bytes: *n }),
            Err(e) => self.log.set_outcome(permit.event, failure_outcome(e)),
        }
        result
    }

    /// Records an outcome other than a plain success or failure for a permit's event.
    pub(crate) fn set_outcome(&mut self, permit: &Permit, outcome: Outcome) {
        self.log.set_outcome(permit.event, outcome);
    }

    /// Records a bad handle (a guest mistake no policy can allow) and returns its error.
    pub(crate) fn bad_handle(&mut self, capability: &'static str, handle: i32) -> HostError {
        self.record_fault(
            capability,
            ReasonCode::HandleInvalid,
            "handles",
            Outcome::Failed {
                error: format!("handle {handle} is not open"),
            },
        );
        HostError::Denied(ReasonCode::HandleInvalid)
    }

    /// Takes the event log out (leaving an empty one), to be used again by another call.
    pub(crate) fn take_log(&mut self) -> EventLog {
        std::mem::replace(&mut self.log, EventLog::new(0))
    }

    /// Starts over as if new: no usage, no events; the log's storage is kept.
    #[cfg(any(test, feature = "bench-hooks"))]
    pub(crate) fn reset(&mut self) {
        let max = usize::try_from(self.policy.limits.max_events.value).unwrap_or(usize::MAX);
        self.usage = Usage::default();
        self.log.clear(max);
        self.tapped = 0;
        self.open = None;
    }
}
