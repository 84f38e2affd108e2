//! The run's event log: every decision the broker and the budgets make, recorded as plain
//! values (no JSON, no formatting) and turned into report JSON only when the run is over.
//! The log is bounded; past the bound, events are counted per rule and reason, never lost.

use std::collections::HashMap;

use sandbox_policy::{Decision, ReasonCode, Request, RuleRef, Verdict};

/// What happened after an allowed request, or what a budget event measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing beyond the decision.
    None,
    /// The operation moved this many bytes.
    Done { bytes: u64 },
    /// Allowed, but the file or directory does not exist.
    NotFound,
    /// Allowed, but the host operation failed.
    Failed { error: String },
    /// A budget ran out or a limit was hit.
    Budget { limit: u64, used: u64 },
    /// `memory.grow` or `table.grow` asked for more than the policy grants.
    GrowRefused {
        resource: &'static str,
        asked: u64,
        limit: u64,
    },
    /// A host call passed memory outside the guest's linear memory.
    BadPointer {
        function: &'static str,
        ptr: u64,
        len: u64,
        memory_bytes: u64,
    },
    /// `on_deny: trap` ended the run at this deny.
    EndedRun,
}

/// One decision, as recorded on the host-call path.
#[derive(Debug, Clone)]
pub struct Event {
    pub capability: &'static str,
    pub decision: Decision,
    pub request: Option<Request>,
    pub outcome: Outcome,
}

type SummaryKey = (RuleRef, ReasonCode, Verdict, bool);

/// Bounded storage for events plus counters for all of them.
#[derive(Debug)]
pub struct EventLog {
    events: Vec<Event>,
    max_recorded: usize,
    not_recorded: u64,
    by_rule: HashMap<SummaryKey, u64>,
    /// Order in which summary keys first appeared, so summaries are deterministic.
    key_order: Vec<SummaryKey>,
    allowed: u64,
    denied: u64,
}

impl EventLog {
    pub fn new(max_recorded: usize) -> EventLog {
        EventLog {
            events: Vec::with_capacity(max_recorded.min(1024)),
            max_recorded,
            not_recorded: 0,
            by_rule: HashMap::new(),
            key_order: Vec::new(),
            allowed: 0,
            denied: 0,
        }
    }

    /// Records an event; returns its index if it was kept.
    pub fn record(&mut self, event: Event) -> Option<usize> {
        let d = &event.decision;
        match d.verdict {
            Verdict::Allow => self.allowed += 1,
            Verdict::Deny => self.denied += 1,
        }
        let key = (d.rule, d.reason, d.verdict, d.enforced);
        match self.by_rule.get_mut(&key) {
            Some(count) => *count += 1,
            None => {
                self.by_rule.insert(key, 1);
                self.key_order.push(key);
            }
        }
        if self.events.len() < self.max_recorded {
            self.events.push(event);
            Some(self.events.len() - 1)
        } else {
            self.not_recorded += 1;
            None
        }
    }

    /// Sets the outcome of a recorded event (after the host operation ran).
    pub fn set_outcome(&mut self, index: Option<usize>, outcome: Outcome) {
        if let Some(event) = index.and_then(|i| self.events.get_mut(i)) {
            event.outcome = outcome;
        }
    }

    pub fn events(&self) -> &[Event] {
        &self.events
    }

    pub fn not_recorded(&self) -> u64 {
        self.not_recorded
    }

    pub fn allowed(&self) -> u64 {
        self.allowed
    }

    pub fn denied(&self) -> u64 {
        self.denied
    }

    /// Counts per (rule, reason, verdict, enforced), in order of first appearance.
    pub fn summary(&self) -> impl Iterator<Item = (SummaryKey, u64)> + '_ {
        self.key_order
            .iter()
            .map(|k| (*k, self.by_rule.get(k).copied().unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deny() -> Event {
        Event {
            capability: "fs.write",
            decision: Decision::hard_deny(
                RuleRef::Builtin("filesystem.mounts"),
                ReasonCode::FsPathOutsideMounts,
            ),
            request: None,
            outcome: Outcome::None,
        }
    }

    #[test]
    fn past_the_bound_events_are_counted_not_dropped() {
        let mut log = EventLog::new(3);
        for _ in 0..10 {
            log.record(deny());
        }
        assert_eq!(log.events().len(), 3);
        assert_eq!(log.not_recorded(), 7);
        assert_eq!(log.denied(), 10);
        let summary: Vec<_> = log.summary().collect();
        assert_eq!(summary.len(), 1);
        assert_eq!(summary[0].1, 10);
    }
}
