//! The one event type: a decided request as a report records it. The runtime's report, its
//! `--events` JSON Lines, `policy learn` and `policy replay` all read and write this type, so
//! its fields and their order are the report's event object (DESIGN.md, "Report"):
//!
//! ```json
//! { "seq": 0, "decision": "allow", "enforced": true, "capability": "fs.read",
//!   "rule_id": "read-data", "reason_code": "ALLOWED", "request": { ... },
//!   "context": { ... }, "hash": "..." }
//! ```
//!
//! Reports chain each event's `hash` over its canonical JSON, so serialising this type must
//! never change a byte of an existing report: add fields only with `skip_serializing_if`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::decide::{Request, Verdict};
use crate::reason::ReasonCode;

/// The context key where the runtime records the bytes an operation really moved.
pub const BYTES_DONE: &str = "bytes_done";

/// One recorded event, exactly as a report holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// Position in the run's event log, from 0.
    pub seq: u64,
    /// What was decided.
    pub decision: Verdict,
    /// False when `mode: audit` relaxed a deny: the request went ahead and the deny was logged.
    pub enforced: bool,
    /// The capability asked for, e.g. `fs.read` or `net.connect`.
    pub capability: String,
    /// The rule (or built-in part of the policy, e.g. `filesystem.default`) that decided.
    pub rule_id: String,
    /// Why it was decided so.
    pub reason_code: ReasonCode,
    /// Everything `decide` read, so the request can be decided again; `None` for events
    /// that decide nothing (budgets, guest faults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Request>,
    /// What a person needs to act: paths, host, address, bytes asked and done, quota left.
    pub context: Map<String, Value>,
    /// SHA-256 chaining this event to the one before; empty until the report is built.
    pub hash: String,
}

impl RecordedEvent {
    /// An event with an empty context and no hash yet.
    pub fn new(
        seq: u64,
        capability: impl Into<String>,
        decision: Verdict,
        enforced: bool,
        rule_id: impl Into<String>,
        reason_code: ReasonCode,
        request: Option<Request>,
    ) -> RecordedEvent {
        RecordedEvent {
            seq,
            decision,
            enforced,
            capability: capability.into(),
            rule_id: rule_id.into(),
            reason_code,
            request,
            context: Map::new(),
            hash: String::new(),
        }
    }

    /// Bytes the operation really moved (`context.bytes_done`), when it ran.
    pub fn bytes_done(&self) -> Option<u64> {
        self.context.get(BYTES_DONE).and_then(Value::as_u64)
    }

    /// Sets (or, with `None`, removes) `context.bytes_done`.
    pub fn set_bytes_done(&mut self, bytes: Option<u64>) {
        match bytes {
            Some(n) => self.context.insert(BYTES_DONE.to_owned(), n.into()),
            None => self.context.remove(BYTES_DONE),
        };
    }

    /// True when the request went ahead: allowed, or a deny that audit mode relaxed.
    pub fn permitted(&self) -> bool {
        self.decision == Verdict::Allow || !self.enforced
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{FsAccess, FsRequest};

    /// An event as the runtime writes it into a report (field order and all).
    const REPORT_EVENT: &str = r#"{"seq":3,"decision":"deny","enforced":false,"capability":"fs.write","rule_id":"filesystem.default","reason_code":"FS_PATH_NOT_ALLOWED","request":{"kind":"fs","op":"write","path":"/out/a.log","bytes":12},"context":{"bytes_done":12,"path":"/out/a.log"},"hash":"ab12"}"#;

    #[test]
    fn a_report_event_round_trips_byte_for_byte() {
        let event: RecordedEvent = serde_json::from_str(REPORT_EVENT).unwrap();
        assert_eq!(event.decision, Verdict::Deny);
        assert_eq!(event.reason_code, ReasonCode::FsPathNotAllowed);
        assert_eq!(event.bytes_done(), Some(12));
        assert!(event.permitted());
        assert_eq!(serde_json::to_string(&event).unwrap(), REPORT_EVENT);
    }

    #[test]
    fn an_event_without_a_request_leaves_the_key_out() {
        let mut event = RecordedEvent::new(
            0,
            "budget",
            Verdict::Deny,
            true,
            "budgets.fuel",
            ReasonCode::FuelExhausted,
            None,
        );
        assert!(!event.permitted());
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"seq":0,"decision":"deny","enforced":true,"capability":"budget","rule_id":"budgets.fuel","reason_code":"FUEL_EXHAUSTED","context":{},"hash":""}"#
        );
        event.set_bytes_done(Some(4));
        assert_eq!(event.bytes_done(), Some(4));
        event.set_bytes_done(None);
        assert!(event.context.is_empty());
        event.request = Some(Request::Fs(FsRequest {
            op: FsAccess::Read,
            path: "/d".into(),
            not_utf8: false,
            resolved: None,
            bytes: 0,
        }));
        let back: RecordedEvent =
            serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
        assert_eq!(back, event);
    }
}
