//! Events out of the embedding API: an event sink on the builder gets each call's events as
//! they are recorded (the same objects and hashes as the report), allowed requests with their
//! outcome; and a cancel handle ends a call in progress from another thread.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sandbox_policy::parse_policy;
use sandbox_runtime::report::stream::verify_events;
use sandbox_runtime::report::{Report, ReportEvent};
use sandbox_runtime::{
    CancelHandle, EventSink, JsonLinesSink, OutputStreams, RunInfo, Sandbox, Status,
};

/// Two denies (outside every mount), one allowed write, a deny, then a spin.
const WRITE_THEN_SPIN: &str = r#"(module
  (import "sandbox" "fs_stat" (func $fs_stat (param i32 i32 i32) (result i32)))
  (import "sandbox" "fs_write" (func $fs_write (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "/etc/passwd")
  (data (i32.const 32) "/out/a.log")
  (func (export "_start")
    (drop (call $fs_stat (i32.const 0) (i32.const 11) (i32.const 64)))
    (drop (call $fs_stat (i32.const 0) (i32.const 11) (i32.const 64)))
    (drop (call $fs_write (i32.const 32) (i32.const 10) (i32.const 0) (i32.const 5) (i32.const 0)))
    (drop (call $fs_stat (i32.const 0) (i32.const 11) (i32.const 64)))
    (loop $forever (br $forever))))"#;

/// Everything a sink was handed, in order, as text.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<String>>,
    /// Set when the third event arrives: the plugin has reached its spin.
    at_spin: Mutex<Option<CancelHandle>>,
}

impl EventSink for Recorder {
    fn run_started(&self, run: &RunInfo) {
        self.seen
            .lock()
            .unwrap()
            .push(format!("run {}", run.run_id));
    }

    fn event(&self, _run: &RunInfo, event: &ReportEvent) {
        let mut seen = self.seen.lock().unwrap();
        seen.push(serde_json::to_string(event).unwrap());
        if event.seq == 4 {
            if let Some(cancel) = self.at_spin.lock().unwrap().take() {
                // From another thread, as a service's control plane would.
                std::thread::spawn(move || cancel.cancel_because("test"));
            }
        }
    }

    fn run_ended(&self, _run: &RunInfo, report: &Report) {
        self.seen
            .lock()
            .unwrap()
            .push(format!("end {}", report.digest));
    }
}

#[test]
fn a_sink_gets_the_reports_events_as_recorded_and_a_cancel_handle_ends_the_call() {
    let out_dir = tempfile::tempdir().unwrap();
    let text = format!(
        "version: 1\nname: sinks\nbudgets: {{ fuel: 1_000_000_000_000, timeout_ms: 60000, memory_bytes: 1MiB }}\nfilesystem:\n  mounts:\n    - {{ guest: /out, host: {}, mode: rw }}\n  rules:\n    - {{ id: w, effect: allow, ops: [write, create], paths: [\"/out/**\"] }}\n",
        out_dir.path().display()
    );
    let policy = Arc::new(parse_policy(&text, Path::new(".")).unwrap());
    let recorder = Arc::new(Recorder::default());
    let lines = tempfile::NamedTempFile::new().unwrap();
    let jsonl = Arc::new(JsonLinesSink::new(lines.reopen().unwrap()));
    let sandbox = Sandbox::builder(policy)
        .event_sink(recorder.clone())
        .event_sink(jsonl.clone())
        .build()
        .unwrap();
    let plugin = sandbox
        .load("write_then_spin.wat", WRITE_THEN_SPIN.as_bytes(), "_start")
        .unwrap();
    let cancel = CancelHandle::new();
    *recorder.at_spin.lock().unwrap() = Some(cancel.clone());
    let started = Instant::now();
    let out = plugin.call_cancellable(b"", &[], OutputStreams::default(), &cancel);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(cancel.is_cancelled());
    let report = out.report;
    assert_eq!(report.outcome.status, Status::Cancelled);
    // Two denies, the write's `fs.create` and `fs.write` (done), a deny, the cancel.
    assert_eq!(report.events.len(), 6);
    assert_eq!(report.events[2].capability, "fs.create");
    assert_eq!(report.events[3].context["result"], "done");
    assert_eq!(report.events[3].context["bytes_done"], 5);
    assert_eq!(report.events[5].context["cancelled_by"], "test");

    let seen = recorder.seen.lock().unwrap();
    assert!(seen[0].starts_with("run "));
    let streamed: Vec<ReportEvent> = seen[1..7]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(streamed, report.events);
    assert_eq!(seen[7], format!("end {}", report.digest));
    assert_eq!(seen.len(), 8);

    let stream = verify_events(&std::fs::read_to_string(lines.path()).unwrap()).unwrap();
    assert_eq!(stream.events, report.events);
    assert_eq!(stream.end.unwrap().digest, report.digest);
    assert_eq!(jsonl.error(), None);
}

#[test]
fn a_handle_cancelled_before_the_call_ends_it_at_once() {
    let policy = Arc::new(
        parse_policy(
            "version: 1\nname: p\nbudgets: { fuel: 1_000_000_000_000, timeout_ms: 60000 }\n",
            Path::new("."),
        )
        .unwrap(),
    );
    let sandbox = Sandbox::builder(policy).build().unwrap();
    let plugin = sandbox
        .load(
            "spin.wat",
            b"(module (func (export \"_start\") (loop br 0)))",
            "_start",
        )
        .unwrap();
    let cancel = CancelHandle::new();
    cancel.cancel();
    let started = Instant::now();
    let out = plugin.call_cancellable(b"", &[], OutputStreams::default(), &cancel);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(out.report.outcome.status, Status::Cancelled);
    assert!(out
        .report
        .outcome
        .message
        .contains("cancelled by the embedder"));
    // A later call with a fresh handle is not cancelled.
    let call = plugin.instantiate(b"");
    let handle = call.cancel_handle();
    assert!(!handle.is_cancelled());
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        handle.cancel();
    });
    assert_eq!(call.run().report.outcome.status, Status::Cancelled);
}
