//! Events out of the process, end to end: `run --events` (the JSON Lines stream matches the
//! report byte for byte, obeys the event bound, survives SIGKILL line by line), SIGINT and
//! SIGTERM during a run and during compilation, and `--events-file` for `report verify`,
//! `explain` and `policy replay`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{stderr, Sandbox, DEMO, DENY_HEAVY};

/// A policy that lets a spinning plugin spin for a minute.
const SPIN_POLICY: &str = "version: 1\nname: spin\nbudgets: { fuel: 1_000_000_000_000, timeout_ms: 60000, memory_bytes: 1MiB }\n";

/// Asks for `/etc/passwd` three times (three denies), then spins.
const DENY_THEN_SPIN: &str = r#"(module
  (import "sandbox" "fs_stat" (func $fs_stat (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "/etc/passwd")
  (func (export "_start")
    (drop (call $fs_stat (i32.const 0) (i32.const 11) (i32.const 64)))
    (drop (call $fs_stat (i32.const 0) (i32.const 11) (i32.const 64)))
    (drop (call $fs_stat (i32.const 0) (i32.const 11) (i32.const 64)))
    (loop $forever (br $forever))))"#;

fn lines(sb: &Sandbox, rel: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(sb.path(rel)).unwrap();
    assert!(text.ends_with('\n'), "the stream ends inside a line");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("line `{l}`: {e}")))
        .collect()
}

fn spawn(sb: &Sandbox, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sandbox-cli"))
        .args(args)
        .current_dir(sb.path(""))
        .env("XDG_CACHE_HOME", sb.path("cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `rel` holds at least `count` lines (the plugin reached its spin).
fn wait_for_lines(sb: &Sandbox, rel: &str, count: usize) {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(sb.path(rel)).unwrap_or_default();
        if text.lines().count() >= count {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "`{rel}` has only: {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, signal: i32) {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: sends a signal to the child this test started.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

#[test]
fn the_event_stream_is_the_reports_events_byte_for_byte_between_a_run_and_an_end_line() {
    let sb = Sandbox::new();
    let (code, report, _) = sb.run(DEMO, DENY_HEAVY, &["--events", "events.jsonl"]);
    assert_eq!(code, 0);
    let raw_report = std::fs::read_to_string(sb.path("report.json")).unwrap();
    let text = std::fs::read_to_string(sb.path("events.jsonl")).unwrap();
    let raw: Vec<&str> = text.lines().collect();
    let parsed = lines(&sb, "events.jsonl");
    let (first, last) = (&parsed[0], &parsed[parsed.len() - 1]);
    assert_eq!(first["kind"], "run");
    assert_eq!(first["run_id"].as_str().unwrap().len(), 32);
    assert_eq!(first["plugin"]["sha256"], report["plugin"]["sha256"]);
    assert_eq!(first["policy"]["sha256"], report["policy"]["sha256"]);
    assert_eq!(first["sandbox"], report["sandbox"]);
    let events = &parsed[1..parsed.len() - 1];
    assert_eq!(events, report["events"].as_array().unwrap().as_slice());
    assert_eq!(events.len(), 14);
    for line in &raw[1..raw.len() - 1] {
        assert!(raw_report.contains(line), "not in the report: {line}");
    }
    assert_eq!(last["kind"], "end");
    assert_eq!(last["run_id"], first["run_id"]);
    for key in ["outcome", "usage", "summary", "events_summary", "digest"] {
        assert_eq!(last[key], report[key], "{key}");
    }

    let out = sb.cli(&["report", "verify", "--events-file", "events.jsonl"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("14 events chained") && said.contains("`completed`"),
        "{said}"
    );

    let from_report = sb.cli(&[
        "explain",
        "--report-file",
        "report.json",
        "--event-index",
        "7",
    ]);
    let from_stream = sb.cli(&[
        "explain",
        "--events-file",
        "events.jsonl",
        "--event-index",
        "7",
    ]);
    assert_eq!(
        from_stream.status.code(),
        Some(0),
        "{}",
        stderr(&from_stream)
    );
    assert_eq!(from_stream.stdout, from_report.stdout);
    assert!(String::from_utf8_lossy(&from_stream.stdout).contains("FS_WRITE_QUOTA_EXCEEDED"));
    let all = sb.cli(&["explain", "--events-file", "events.jsonl", "--all"]);
    assert!(String::from_utf8_lossy(&all.stdout).starts_with("13 denies in `events.jsonl`"));

    let replay = |source: &str, file: &str| {
        let out = sb.cli(&[
            "policy", "replay", source, file, "--policy", DEMO, "--format", "json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let mut doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        doc["report"] = Value::Null;
        doc
    };
    assert_eq!(
        replay("--events-file", "events.jsonl"),
        replay("--report-file", "report.json")
    );
}

#[test]
fn the_event_stream_obeys_the_reports_event_bound() {
    let sb = Sandbox::new();
    sb.demo_variant(
        "policies/small-log.yaml",
        "max_events: 10000",
        "max_events: 5",
    );
    let (_, report, _) = sb.run(
        "policies/small-log.yaml",
        DENY_HEAVY,
        &["--events", "events.jsonl"],
    );
    let parsed = lines(&sb, "events.jsonl");
    assert_eq!(parsed.len(), 5 + 2);
    assert_eq!(parsed[6]["events_summary"]["not_recorded"], 9);
    assert_eq!(
        &parsed[1..6],
        report["events"].as_array().unwrap().as_slice()
    );
}

#[test]
fn an_edited_or_cut_stream_is_refused_by_verify_explain_and_replay() {
    let sb = Sandbox::new();
    sb.run(DEMO, DENY_HEAVY, &["--events", "events.jsonl"]);
    let text = std::fs::read_to_string(sb.path("events.jsonl")).unwrap();
    let edited = text.replacen("\"FS_PATH_OUTSIDE_MOUNTS\"", "\"FS_PATH_NOT_ALLOWED\"", 1);
    assert_ne!(edited, text);
    sb.write("edited.jsonl", &edited);
    let mut cut: Vec<&str> = text.lines().collect();
    cut.remove(3);
    sb.write("cut.jsonl", &(cut.join("\n") + "\n"));
    for file in ["edited.jsonl", "cut.jsonl"] {
        let verify = sb.cli(&["report", "verify", "--events-file", file]);
        assert_eq!(verify.status.code(), Some(1), "{file}");
        assert!(
            stderr(&verify).contains("hash does not match"),
            "{}",
            stderr(&verify)
        );
        let explain = sb.cli(&["explain", "--events-file", file, "--event-index", "0"]);
        assert_eq!(explain.status.code(), Some(1), "{file}");
        let replay = sb.cli(&["policy", "replay", "--events-file", file, "--policy", DEMO]);
        assert_eq!(replay.status.code(), Some(1), "{file}");
    }
}

#[test]
fn an_events_file_that_is_a_symlink_is_refused_before_anything_runs() {
    let sb = Sandbox::new();
    sb.write("target.txt", "keep");
    std::os::unix::fs::symlink(sb.path("target.txt"), sb.path("events.jsonl")).unwrap();
    let out = sb.cli(&[
        "run",
        "--policy",
        DEMO,
        "--plugin",
        DENY_HEAVY,
        "--events",
        "events.jsonl",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "the plugin ran");
    assert_eq!(
        std::fs::read_to_string(sb.path("target.txt")).unwrap(),
        "keep"
    );
}

#[test]
fn a_run_killed_with_sigkill_leaves_every_recorded_event_on_a_whole_line() {
    let sb = Sandbox::new();
    sb.write("spin.yaml", SPIN_POLICY);
    sb.write("deny_then_spin.wat", DENY_THEN_SPIN);
    let mut child = spawn(
        &sb,
        &[
            "run",
            "--policy",
            "spin.yaml",
            "--plugin",
            "deny_then_spin.wat",
            "--events",
            "events.jsonl",
        ],
    );
    wait_for_lines(&sb, "events.jsonl", 4);
    std::thread::sleep(Duration::from_millis(100));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), None, "the run ended by itself");
    let parsed = lines(&sb, "events.jsonl");
    assert_eq!(parsed.len(), 4, "{parsed:?}");
    assert!(parsed[1..]
        .iter()
        .all(|e| e["reason_code"] == "FS_PATH_OUTSIDE_MOUNTS"));
    let out = sb.cli(&["report", "verify", "--events-file", "events.jsonl"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no `end` line"));
    let explain = sb.cli(&[
        "explain",
        "--events-file",
        "events.jsonl",
        "--event-index",
        "2",
    ]);
    assert_eq!(explain.status.code(), Some(0), "{}", stderr(&explain));
}

/// Runs the spinning plugin, signals it once three denies are streamed, and checks the
/// `cancelled` report, its `CANCELLED` event, the stream's end line and the exit code.
fn cancel_with(signal_number: i32, name: &str, exit: i32) {
    let sb = Sandbox::new();
    sb.write("spin.yaml", SPIN_POLICY);
    sb.write("deny_then_spin.wat", DENY_THEN_SPIN);
    let child = spawn(
        &sb,
        &[
            "run",
            "--policy",
            "spin.yaml",
            "--plugin",
            "deny_then_spin.wat",
            "--events",
            "events.jsonl",
            "--report-file",
            "report.json",
        ],
    );
    wait_for_lines(&sb, "events.jsonl", 4);
    let signalled = Instant::now();
    signal(&child, signal_number);
    let out = child.wait_with_output().unwrap();
    assert!(signalled.elapsed() < Duration::from_secs(5), "slow to stop");
    assert_eq!(out.status.code(), Some(exit), "{}", stderr(&out));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(sb.path("report.json")).unwrap()).unwrap();
    assert_eq!(report["outcome"]["status"], "cancelled");
    assert!(report["outcome"]["message"]
        .as_str()
        .unwrap()
        .contains(name));
    let events = report["events"].as_array().unwrap();
    assert_eq!(events.len(), 4);
    let last = &events[3];
    assert_eq!(
        (
            &last["rule_id"],
            &last["reason_code"],
            &last["context"]["cancelled_by"]
        ),
        (&"run.cancel".into(), &"CANCELLED".into(), &name.into())
    );
    let verify = sb.cli(&["report", "verify", "--report-file", "report.json"]);
    assert_eq!(verify.status.code(), Some(0), "{}", stderr(&verify));
    let parsed = lines(&sb, "events.jsonl");
    assert_eq!(&parsed[1..5], events.as_slice());
    assert_eq!(parsed[5]["outcome"]["status"], "cancelled");
    assert_eq!(parsed[5]["digest"], report["digest"]);
}

#[test]
fn sigint_cancels_a_run_with_a_full_report_and_exit_130() {
    cancel_with(libc::SIGINT, "SIGINT", 130);
}

#[test]
fn sigterm_cancels_a_run_with_a_full_report_and_exit_143() {
    cancel_with(libc::SIGTERM, "SIGTERM", 143);
}

#[test]
fn a_signal_during_compilation_still_gives_a_cancelled_report() {
    let sb = Sandbox::new();
    sb.write("spin.yaml", SPIN_POLICY);
    // Thousands of functions: seconds of compiling in a debug build.
    let mut wat = String::from("(module (memory (export \"memory\") 1)\n");
    for i in 0..6000 {
        wat.push_str(&format!("(func $f{i} (param i32) (result i32) local.get 0"));
        for j in 0..40 {
            wat.push_str(&format!(" i32.const {j} i32.mul i32.const {j} i32.add"));
        }
        wat.push_str(")\n");
    }
    wat.push_str("(func (export \"_start\")))");
    sb.write("big.wat", &wat);
    let child = spawn(
        &sb,
        &[
            "run",
            "--policy",
            "spin.yaml",
            "--plugin",
            "big.wat",
            "--no-cache",
            "--events",
            "events.jsonl",
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    assert!(
        signalled.elapsed() < Duration::from_secs(1),
        "waited for the compiler"
    );
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"]["status"], "cancelled");
    assert!(report["outcome"]["message"]
        .as_str()
        .unwrap()
        .contains("before the plugin started"));
    let events = report["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["reason_code"], "CANCELLED");
    let parsed = lines(&sb, "events.jsonl");
    assert_eq!(parsed.len(), 3);
    assert_eq!(parsed[1], events[0]);
    assert_eq!(parsed[2]["digest"], report["digest"]);
}
