//! The run's event log: every decision the broker and the budgets make, recorded as plain
//! values (no JSON, no formatting) and turned into report JSON only when the run is over.
//! The log is bounded; past the bound, events are counted per rule and reason, never lost.
//! Paths of filesystem requests are copied into one growing text buffer, so recording a
//! request allocates nothing once the buffers have grown.

use std::collections::HashMap;
use std::ops::Range;

use sandbox_policy::{
    Decision, FsAccess, FsQuery, FsRequest, NetRequest, ReasonCode, Request, RuleRef, Verdict,
};

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
    /// The run was cancelled from outside; says by what (e.g. `SIGINT`).
    Cancelled { by: String },
}

/// A request as recorded. A filesystem request's paths are ranges of the log's text; use
/// [`EventLog::request`] for the request itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    Fs {
        op: FsAccess,
        path: Range<usize>,
        not_utf8: bool,
        resolved: Option<Range<usize>>,
        bytes: u64,
    },
    Net(NetRequest),
}

/// One decision, as recorded on the host-call path.
#[derive(Debug, Clone)]
pub struct Event {
    pub capability: &'static str,
    pub decision: Decision,
    pub request: Option<Recorded>,
    pub outcome: Outcome,
}

type SummaryKey = (RuleRef, ReasonCode, Verdict, bool);

/// Bounded storage for events plus counters for all of them.
#[derive(Debug)]
pub struct EventLog {
    events: Vec<Event>,
    /// The paths of recorded filesystem requests, end to end.
    text: String,
    max_recorded: usize,
    not_recorded: u64,
    /// Index into `counts` of each summary key.
    by_rule: HashMap<SummaryKey, usize>,
    /// Summary keys in the order they first appeared (so summaries are deterministic), with
    /// their counts.
    counts: Vec<(SummaryKey, u64)>,
    /// The key counted last: loops repeat the same decision, and this skips the hash.
    last: usize,
    allowed: u64,
    denied: u64,
}

/// Events kept before the first growth of the log: enough for most calls, small enough that
/// setting up a call stays cheap.
const INITIAL_EVENTS: usize = 64;
const INITIAL_TEXT: usize = 4096;

impl EventLog {
    pub fn new(max_recorded: usize) -> EventLog {
        EventLog {
            events: Vec::new(),
            text: String::new(),
            max_recorded,
            not_recorded: 0,
            by_rule: HashMap::new(),
            counts: Vec::new(),
            last: usize::MAX,
            allowed: 0,
            denied: 0,
        }
    }

    /// Empties the log for another call, keeping its storage: a sandbox hands each call a
    /// log that earlier calls already grew, so recording touches no new memory.
    pub fn clear(&mut self, max_recorded: usize) {
        self.events.clear();
        self.text.clear();
        self.max_recorded = max_recorded;
        self.not_recorded = 0;
        self.by_rule.clear();
        self.counts.clear();
        self.last = usize::MAX;
        self.allowed = 0;
        self.denied = 0;
    }

    /// Bytes of storage the log holds on to.
    pub fn held_bytes(&self) -> usize {
        self.events.capacity() * std::mem::size_of::<Event>() + self.text.capacity()
    }

    /// Counts a decision; true when there is room to record its event.
    fn count(&mut self, d: &Decision) -> bool {
        match d.verdict {
            Verdict::Allow => self.allowed += 1,
            Verdict::Deny => self.denied += 1,
        }
        let key = (d.rule, d.reason, d.verdict, d.enforced);
        match self.counts.get_mut(self.last) {
            Some((k, count)) if *k == key => *count += 1,
            _ => match self.by_rule.get(&key) {
                Some(&index) => {
                    self.counts[index].1 += 1;
                    self.last = index;
                }
                None => {
                    self.last = self.counts.len();
                    self.by_rule.insert(key, self.last);
                    self.counts.push((key, 1));
                }
            },
        }
        if self.events.len() < self.max_recorded {
            if self.events.capacity() == 0 {
                self.events.reserve(INITIAL_EVENTS.min(self.max_recorded));
            }
            true
        } else {
            self.not_recorded += 1;
            false
        }
    }

    fn push(&mut self, event: Event) -> Option<usize> {
        self.events.push(event);
        Some(self.events.len() - 1)
    }

    /// Records an event; returns its index if it was kept. Filesystem requests are recorded
    /// with [`EventLog::record_fs`], whose ranges point into this log's text.
    pub fn record(&mut self, event: Event) -> Option<usize> {
        if !self.count(&event.decision) {
            return None;
        }
        self.push(event)
    }

    /// Records a request as decided; returns the event's index if it was kept.
    pub fn record_request(&mut self, decision: Decision, request: Request) -> Option<usize> {
        match request {
            Request::Fs(r) => self.record_fs(decision, &r.as_query()),
            Request::Net(r) => self.record(Event {
                capability: r.capability(),
                decision,
                request: Some(Recorded::Net(r)),
                outcome: Outcome::None,
            }),
            // Kinds the runtime does not ask yet (open-file and connection caps, link
            // targets, env, clocks, random): recorded without their request until wired.
            other => self.record(Event {
                capability: other.capability(),
                decision,
                request: None,
                outcome: Outcome::None,
            }),
        }
    }

    /// Records a filesystem request as decided, copying its paths into the log's text.
    pub fn record_fs(&mut self, decision: Decision, query: &FsQuery<'_>) -> Option<usize> {
        if !self.count(&decision) {
            return None;
        }
        if self.text.capacity() == 0 {
            self.text.reserve(INITIAL_TEXT);
        }
        let mut keep = |text: &str| {
            let start = self.text.len();
            self.text.push_str(text);
            start..self.text.len()
        };
        let path = keep(query.path);
        let resolved = query.resolved.map(&mut keep);
        self.push(Event {
            capability: query.op.capability(),
            decision,
            request: Some(Recorded::Fs {
                op: query.op,
                path,
                not_utf8: query.not_utf8,
                resolved,
                bytes: query.bytes,
            }),
            outcome: Outcome::None,
        })
    }

    /// The request of a recorded event, as the report shows it.
    pub fn request(&self, event: &Event) -> Option<Request> {
        let text = |range: &Range<usize>| self.text.get(range.clone()).unwrap_or("").to_owned();
        Some(match event.request.as_ref()? {
            Recorded::Fs {
                op,
                path,
                not_utf8,
                resolved,
                bytes,
            } => Request::Fs(FsRequest {
                op: *op,
                path: text(path),
                not_utf8: *not_utf8,
                resolved: resolved.as_ref().map(text),
                bytes: *bytes,
            }),
            Recorded::Net(r) => Request::Net(r.clone()),
        })
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
        self.counts.iter().copied()
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

    #[test]
    fn filesystem_requests_come_back_as_recorded_and_summaries_keep_first_seen_order() {
        let mut log = EventLog::new(2);
        let allow = Decision {
            verdict: Verdict::Allow,
            reason: ReasonCode::Allowed,
            rule: RuleRef::FsRule(0),
            ..deny().decision
        };
        let query = |path| FsQuery {
            op: FsAccess::Read,
            path,
            not_utf8: false,
            resolved: Some("/data/target"),
            bytes: 7,
        };
        log.record_fs(allow, &query("/data/a"));
        log.record(deny());
        log.record_fs(allow, &query("/data/b"));
        log.record(deny());
        assert_eq!(log.events().len(), 2);
        assert_eq!(log.not_recorded(), 2);
        assert_eq!(
            log.request(&log.events()[0]),
            Some(Request::Fs(query("/data/a").to_request()))
        );
        assert_eq!(log.request(&log.events()[1]), None);
        let counts: Vec<_> = log.summary().map(|(k, n)| (k.0, n)).collect();
        assert_eq!(
            counts,
            [
                (RuleRef::FsRule(0), 2),
                (RuleRef::Builtin("filesystem.mounts"), 2)
            ]
        );
    }
}
