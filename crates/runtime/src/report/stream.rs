//! Events out of the process while the run goes on: the [`EventSink`] an embedder gives the
//! [`SandboxBuilder`](crate::SandboxBuilder), the JSON Lines sink `sandbox-cli run --events`
//! writes through, and the check of such a stream ([`verify_events`]).
//!
//! A stream is one `{"kind":"run",...}` line ([`RunInfo`]), then each recorded event exactly
//! as the report's `events` holds it (same `seq`, same hash chain), then one
//! `{"kind":"end",...}` line ([`RunEnd`]). Events are handed to sinks as they become final,
//! within the report's event bound.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    chained_event, hash_with_previous, EventsSummary, LimitsInfo, OutcomeInfo, PluginInfo,
    PolicyInfo, Report, ReportEvent, SandboxInfo, Status, StdioInfo, Summary, UsageInfo,
    SCHEMA_VERSION,
};
use crate::broker::events::EventLog;
use crate::broker::EventTap;

/// Receives a call's events as they are recorded: implement it to forward events your own
/// way. One sink serves every call of a sandbox, from any thread: tell calls apart by
/// [`RunInfo::run_id`]. A sink must not block for long; the call waits for it.
pub trait EventSink: Send + Sync {
    /// A call starts (before its instance is made).
    fn run_started(&self, run: &RunInfo) {
        let _ = run;
    }

    /// An event was recorded and is final: the same object, `seq` and `hash` as in the
    /// report's `events`.
    fn event(&self, run: &RunInfo, event: &ReportEvent);

    /// The call ended; `report` is the one the call returns.
    fn run_ended(&self, run: &RunInfo, report: &Report) {
        let _ = (run, report);
    }
}

/// What a run is, known when it starts: the first line of an event stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Always `run`.
    pub kind: String,
    /// The report format's version: [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// A random id (32 hex digits), new for every call.
    pub run_id: String,
    /// The versions of the sandbox and of Wasmtime.
    pub sandbox: SandboxInfo,
    /// The plugin, with its SHA-256.
    pub plugin: PluginInfo,
    /// The policy, with its SHA-256.
    pub policy: PolicyInfo,
    /// The budgets, limits and quotas in force.
    pub limits: LimitsInfo,
}

/// How a run ended: the last line of an event stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEnd {
    /// Always `end`.
    pub kind: String,
    /// The run this ends.
    pub run_id: String,
    /// As in the report.
    pub outcome: OutcomeInfo,
    /// As in the report.
    pub usage: UsageInfo,
    /// As in the report.
    pub summary: Summary,
    /// As in the report: `recorded` is the count of event lines before this one.
    pub events_summary: EventsSummary,
    /// The report's digest, tying the stream to the report of the same run.
    pub digest: String,
}

impl RunEnd {
    /// The end line of `report`'s run.
    pub fn of(run: &RunInfo, report: &Report) -> RunEnd {
        RunEnd {
            kind: "end".to_owned(),
            run_id: run.run_id.clone(),
            outcome: report.outcome.clone(),
            usage: report.usage.clone(),
            summary: report.summary.clone(),
            events_summary: report.events_summary.clone(),
            digest: report.digest.clone(),
        }
    }
}

/// A new run id: 16 random bytes as hex (a counter and the time where no randomness is had).
pub(crate) fn new_run_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes[..8].copy_from_slice(&now.to_le_bytes());
        bytes[8..].copy_from_slice(&n.to_le_bytes());
    }
    hex::encode(bytes)
}

/// The broker's tap for a call with sinks: makes each final event into its report form, with
/// the hash chained as the report chains it, and hands it to every sink.
pub(crate) struct SinkTap {
    pub(crate) run: Arc<RunInfo>,
    pub(crate) sinks: Arc<[Arc<dyn EventSink>]>,
    previous: String,
}

impl SinkTap {
    pub(crate) fn new(run: Arc<RunInfo>, sinks: Arc<[Arc<dyn EventSink>]>) -> SinkTap {
        SinkTap {
            run,
            sinks,
            previous: String::new(),
        }
    }
}

impl EventTap for SinkTap {
    fn recorded(&mut self, policy: &sandbox_policy::Policy, log: &EventLog, seq: usize) {
        let (event, _) = chained_event(policy, log, seq, &mut self.previous);
        for sink in self.sinks.iter() {
            sink.event(&self.run, &event);
        }
    }
}

/// The JSON Lines sink: one JSON object per line, each line written with one `write` and
/// flushed before the call goes on, so a process killed at any point leaves whole lines.
/// After a write fails it writes nothing more; [`JsonLinesSink::error`] says why.
pub struct JsonLinesSink<W: Write + Send> {
    out: Mutex<(W, Option<String>)>,
}

impl<W: Write + Send> JsonLinesSink<W> {
    /// A sink writing to `out` (an unbuffered file, so each line is one write).
    pub fn new(out: W) -> JsonLinesSink<W> {
        JsonLinesSink {
            out: Mutex::new((out, None)),
        }
    }

    /// The first write error, if any.
    pub fn error(&self) -> Option<String> {
        let out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.1.clone()
    }

    fn line(&self, value: &impl Serialize) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if out.1.is_some() {
            return;
        }
        let mut line = match serde_json::to_vec(value) {
            Ok(line) => line,
            Err(e) => {
                out.1 = Some(e.to_string());
                return;
            }
        };
        line.push(b'\n');
        if let Err(e) = out.0.write_all(&line).and_then(|()| out.0.flush()) {
            out.1 = Some(e.to_string());
        }
    }
}

impl<W: Write + Send> EventSink for JsonLinesSink<W> {
    fn run_started(&self, run: &RunInfo) {
        self.line(run);
    }

    fn event(&self, _run: &RunInfo, event: &ReportEvent) {
        self.line(event);
    }

    fn run_ended(&self, run: &RunInfo, report: &Report) {
        self.line(&RunEnd::of(run, report));
    }
}

/// An event stream as read back and checked by [`verify_events`].
#[derive(Debug, Clone, PartialEq)]
pub struct EventStream {
    /// The first line.
    pub run: RunInfo,
    /// The event lines, in order, their chain checked.
    pub events: Vec<ReportEvent>,
    /// The last line; absent when the run was killed before it ended.
    pub end: Option<RunEnd>,
}

impl EventStream {
    /// The stream as a report, for the commands that read reports (`explain`, `policy
    /// replay`): no captured output and no digest; a stream without an `end` line gets
    /// outcome `cancelled` with a message saying the run did not end.
    pub fn to_report(&self) -> Report {
        let (outcome, usage, summary, events_summary) = match &self.end {
            Some(end) => (
                end.outcome.clone(),
                end.usage.clone(),
                end.summary.clone(),
                end.events_summary.clone(),
            ),
            None => {
                let denied = self
                    .events
                    .iter()
                    .filter(|e| e.decision == sandbox_policy::Verdict::Deny)
                    .count();
                (
                    OutcomeInfo {
                        status: Status::Cancelled,
                        message:
                            "the event stream has no `end` line: the run was killed before it ended"
                                .to_owned(),
                        exit_code: None,
                    },
                    UsageInfo {
                        fuel_consumed: 0,
                        wall_time_ms: 0.0,
                        peak_memory_bytes: 0,
                        fs_read_bytes: 0,
                        fs_write_bytes: 0,
                        fs_entries_created: 0,
                        net_connections: 0,
                        net_egress_bytes: 0,
                        net_ingress_bytes: 0,
                    },
                    Summary {
                        allowed: (self.events.len() - denied) as u64,
                        denied: denied as u64,
                    },
                    EventsSummary {
                        recorded: self.events.len() as u64,
                        not_recorded: 0,
                        by_rule: Vec::new(),
                    },
                )
            }
        };
        Report {
            schema_version: SCHEMA_VERSION,
            sandbox: self.run.sandbox.clone(),
            outcome,
            plugin: self.run.plugin.clone(),
            policy: self.run.policy.clone(),
            limits: self.run.limits.clone(),
            usage,
            events: self.events.clone(),
            events_summary,
            stdio: StdioInfo {
                stdout: String::new(),
                stderr: String::new(),
                stdout_truncated: false,
                stderr_truncated: false,
            },
            summary,
            digest: String::new(),
        }
    }
}

/// Why an event stream failed its check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// A line is not JSON, or not the object its place asks for.
    #[error("line {line}: {message}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// An event's `seq` or `hash` does not continue the chain.
    #[error("line {line}: event {seq}'s hash does not match: the event or one before it was edited, or lines were removed")]
    EventChainBroken {
        /// 1-based line number.
        line: usize,
        /// The event's position among the event lines.
        seq: u64,
    },
    /// The `end` line does not agree with the event lines before it.
    #[error("the `end` line counts {said} recorded events but the stream has {found}")]
    CountMismatch {
        /// What the end line says.
        said: u64,
        /// Event lines found.
        found: u64,
    },
}

/// Reads a JSON Lines event stream and checks it: a `run` line first, events whose `seq`
/// counts from 0 and whose hashes chain, and at most one `end` line, last, that counts them.
/// A stream cut by a kill (no `end` line) is accepted as far as it goes.
pub fn verify_events(text: &str) -> Result<EventStream, StreamError> {
    let bad = |line: usize, message: String| StreamError::Malformed { line, message };
    let mut lines = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty());
    let (first_no, first) = lines
        .next()
        .ok_or_else(|| bad(1, "the stream is empty".into()))?;
    let run: RunInfo = serde_json::from_str(first)
        .ok()
        .filter(|r: &RunInfo| r.kind == "run")
        .ok_or_else(|| bad(first_no, "the first line is not a `run` line".into()))?;
    let mut events = Vec::new();
    let mut end: Option<RunEnd> = None;
    let mut previous = String::new();
    for (no, line) in lines {
        if end.is_some() {
            return Err(bad(no, "a line follows the `end` line".into()));
        }
        let value: Value = serde_json::from_str(line).map_err(|e| bad(no, e.to_string()))?;
        if value.get("kind").is_some() {
            let e: RunEnd = serde_json::from_value(value)
                .ok()
                .filter(|e: &RunEnd| e.kind == "end" && e.run_id == run.run_id)
                .ok_or_else(|| bad(no, "not an event and not this run's `end` line".into()))?;
            end = Some(e);
            continue;
        }
        let seq = events.len() as u64;
        let expected = hash_with_previous(&previous, &value);
        let written = value.get("hash").and_then(Value::as_str).unwrap_or("");
        if written != expected || value.get("seq").and_then(Value::as_u64) != Some(seq) {
            return Err(StreamError::EventChainBroken { line: no, seq });
        }
        previous = expected;
        let event: ReportEvent =
            serde_json::from_value(value).map_err(|e| bad(no, e.to_string()))?;
        events.push(event);
    }
    if let Some(end) = &end {
        let found = events.len() as u64;
        if end.events_summary.recorded != found {
            return Err(StreamError::CountMismatch {
                said: end.events_summary.recorded,
                found,
            });
        }
    }
    Ok(EventStream { run, events, end })
}
