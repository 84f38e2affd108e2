//! End-to-end tests of the real `sandbox-cli` binary. Each test works in its own temp dir
//! holding a copy of `policies/` and `examples/`, so runs never touch the checkout.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod events;
mod wasi;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else if kind.is_dir() {
            // Build output of the Rust guests stays behind; tests use it where it was built.
            if entry.file_name() == "target" {
                continue;
            }
            copy_tree(&entry.path(), &target);
        } else if entry.file_name() != "result.log" {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A temp dir with copies of `policies/` and `examples/`, where the CLI runs.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&repo_root().join("policies"), &dir.path().join("policies"));
        copy_tree(&repo_root().join("examples"), &dir.path().join("examples"));
        Sandbox { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Writes a copy of the demo policy with one piece of text replaced.
    fn demo_variant(&self, rel: &str, from: &str, to: &str) {
        self.demo_variant_of(DEMO, rel, from, to);
    }

    /// Writes a copy of policy `base` with one piece of text replaced.
    fn demo_variant_of(&self, base: &str, rel: &str, from: &str, to: &str) {
        let text = std::fs::read_to_string(self.path(base)).unwrap();
        assert!(text.contains(from), "`{from}` is not in `{base}`");
        self.write(rel, &text.replace(from, to));
    }

    fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_cache(args, &self.path("cache"))
    }

    /// Runs the CLI with its module cache under `cache_home` (never the user's own).
    fn cli_with_cache(&self, args: &[&str], cache_home: &Path) -> Output {
        Command::new(env!("CARGO_BIN_EXE_sandbox-cli"))
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_BACKTRACE")
            .env("XDG_CACHE_HOME", cache_home)
            .output()
            .unwrap()
    }

    /// The files of the module cache.
    fn cache_entries(&self) -> Vec<PathBuf> {
        let dir = self.path("cache/sandbox-cli");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        files
    }

    /// Runs a plugin; returns the exit code and the report read back from `--report-file`.
    fn run(&self, policy: &str, plugin: &str, extra: &[&str]) -> (i32, Value, Output) {
        let mut args = vec![
            "run",
            "--policy",
            policy,
            "--plugin",
            plugin,
            "--report-file",
            "report.json",
        ];
        args.extend_from_slice(extra);
        let out = self.cli(&args);
        let code = out.status.code().unwrap();
        let text = std::fs::read_to_string(self.path("report.json")).unwrap_or_else(|_| {
            panic!(
                "no report; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let report: Value = serde_json::from_str(&text).unwrap();
        // With `--report-file`, stdout carries the guest's own output, not the report.
        if report["stdio"]["stdout_truncated"] == false {
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                report["stdio"]["stdout"].as_str().unwrap(),
                "the terminal did not get the guest's stdout"
            );
        }
        (code, report, out)
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// (decision, rule_id, reason_code) of every event.
fn event_triples(report: &Value) -> Vec<(String, String, String)> {
    report["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["decision"].as_str().unwrap().to_owned(),
                e["rule_id"].as_str().unwrap().to_owned(),
                e["reason_code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn triples(items: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    items
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

/// Masks what changes from run to run (wall-clock time, and the digest that covers it).
fn masked(report: &Value) -> Value {
    let mut r = report.clone();
    r["usage"]["wall_time_ms"] = Value::from("<masked>");
    r["digest"] = Value::from("<masked>");
    r
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing golden {}: run with UPDATE_GOLDEN=1",
            path.display()
        )
    });
    assert_eq!(
        actual, expected,
        "output differs from golden {name} (UPDATE_GOLDEN=1 rewrites it)"
    );
}

fn golden_report(name: &str, report: &Value) {
    golden(
        name,
        &(serde_json::to_string_pretty(&masked(report)).unwrap() + "\n"),
    );
}

const DEMO: &str = "policies/demo.yaml";
const ALLOWED: &str = "examples/plugins/capability_allowed.wat";
const DENY_HEAVY: &str = "examples/plugins/deny_heavy.wat";

#[test]
fn capability_allowed_completes_with_no_deny_and_writes_the_file() {
    let sb = Sandbox::new();
    sb.write("input.txt", "input bytes\n");
    let (code, report, _) = sb.run(
        DEMO,
        ALLOWED,
        &["--input", "input.txt", "--stdout", "guest-stdout.bin"],
    );
    assert_eq!(code, 0);
    assert_eq!(report["outcome"]["status"], "completed");
    assert_eq!(report["summary"]["denied"], 0);
    assert_eq!(
        event_triples(&report),
        triples(&[
            ("allow", "read-data", "ALLOWED"),
            ("allow", "read-data", "ALLOWED"),
            ("allow", "read-data", "ALLOWED"),
            ("allow", "write-out", "ALLOWED"),
            ("allow", "write-out", "ALLOWED"),
            ("allow", "write-out", "ALLOWED"),
        ])
    );
    assert_eq!(report["usage"]["fs_read_bytes"], 26);
    assert_eq!(report["usage"]["fs_write_bytes"], 34);
    let written = std::fs::read_to_string(sb.path("policies/fixtures/out/result.log")).unwrap();
    assert_eq!(written, "copied: hello from the data mount\n");
    assert_eq!(
        report["stdio"]["stdout"],
        "hello from the data mount\ninput bytes\n"
    );
    assert_eq!(report["stdio"]["stderr"], "capability_allowed: done\n");
    assert_eq!(
        std::fs::read(sb.path("guest-stdout.bin")).unwrap(),
        b"hello from the data mount\ninput bytes\n"
    );
    golden_report("capability_allowed.report.json", &report);
}

#[test]
fn deny_heavy_is_denied_a_dozen_ways_and_changes_nothing() {
    let sb = Sandbox::new();
    // The file the plugin tries to delete (not shipped: a README command must not lose it).
    sb.write("policies/fixtures/out/.keep", "keep me\n");
    let (code, report, _) = sb.run(DEMO, DENY_HEAVY, &[]);
    assert_eq!(code, 0);
    assert_eq!(report["outcome"]["status"], "completed");
    assert_eq!(
        event_triples(&report),
        triples(&[
            ("deny", "filesystem.mounts", "FS_PATH_OUTSIDE_MOUNTS"),
            ("deny", "filesystem.mounts", "FS_PATH_OUTSIDE_MOUNTS"),
            ("deny", "no-secrets", "FS_PATH_NOT_ALLOWED"),
            ("deny", "no-secrets", "FS_PATH_NOT_ALLOWED"),
            ("deny", "filesystem.mount:/data", "FS_READ_ONLY_MOUNT"),
            ("deny", "filesystem.default", "FS_PATH_NOT_ALLOWED"),
            ("allow", "write-out", "ALLOWED"),
            (
                "deny",
                "filesystem.quotas.write_bytes",
                "FS_WRITE_QUOTA_EXCEEDED"
            ),
            ("deny", "filesystem.mounts", "FS_PATH_OUTSIDE_MOUNTS"),
            ("deny", "filesystem.default", "FS_PATH_NOT_ALLOWED"),
            ("deny", "filesystem.paths", "FS_PATH_INVALID"),
            ("deny", "filesystem.default", "FS_PATH_NOT_ALLOWED"),
            ("deny", "filesystem.mounts", "FS_PATH_OUTSIDE_MOUNTS"),
            ("deny", "host_abi", "BAD_GUEST_POINTER"),
        ])
    );
    // The guest saw the documented error codes, in order.
    assert_eq!(
        report["stdio"]["stdout"],
        "-1\n-1\n-1\n-1\n-8\n-1\n-2\n-1\n-1\n-3\n-1\n-1\n-4\n"
    );
    let quota = &report["events"][7]["context"];
    assert_eq!(
        (quota["bytes_asked"].as_u64(), quota["quota_left"].as_u64()),
        (Some(71680), Some(65536))
    );
    let symlink = &report["events"][12]["context"];
    assert_eq!(symlink["resolved_path"], "/demo.yaml");
    assert_eq!(report["usage"]["fs_write_bytes"], 0);
    assert_eq!(report["usage"]["fs_read_bytes"], 0);
    // Nothing changed on disk.
    assert!(!sb.path("policies/fixtures/out/notes.txt").exists());
    assert!(!sb.path("policies/fixtures/out/big.log").exists());
    assert!(sb.path("policies/fixtures/out/.keep").exists());
    golden_report("deny_heavy.report.json", &report);
}

#[test]
fn same_plugin_twice_gives_identical_events_and_fuel() {
    let sb = Sandbox::new();
    let (_, first, _) = sb.run(DEMO, DENY_HEAVY, &[]);
    let (_, second, _) = sb.run(DEMO, DENY_HEAVY, &[]);
    assert_eq!(
        serde_json::to_string(&first["events"]).unwrap(),
        serde_json::to_string(&second["events"]).unwrap()
    );
    assert_eq!(
        first["usage"]["fuel_consumed"],
        second["usage"]["fuel_consumed"]
    );
    assert_eq!(first["summary"], second["summary"]);
    assert!(first["usage"]["fuel_consumed"].as_u64().unwrap() > 0);
}

#[test]
fn spinning_plugin_exhausts_its_fuel() {
    let sb = Sandbox::new();
    let (code, report, _) = sb.run(DEMO, "examples/plugins/spin_forever.wat", &[]);
    assert_eq!(code, 4);
    assert_eq!(report["outcome"]["status"], "fuel_exhausted");
    assert_eq!(
        event_triples(&report),
        triples(&[("deny", "budgets.fuel", "FUEL_EXHAUSTED")])
    );
    assert_eq!(report["usage"]["fuel_consumed"], 50_000_000);
}

#[test]
fn spinning_plugin_with_ample_fuel_hits_the_wall_clock_timeout() {
    let sb = Sandbox::new();
    // The shipped policy of the README's outcome table.
    let (code, report, _) = sb.run(
        "policies/timeout.yaml",
        "examples/plugins/spin_forever.wat",
        &[],
    );
    assert_eq!(code, 5);
    assert_eq!(report["outcome"]["status"], "timeout");
    assert_eq!(
        event_triples(&report),
        triples(&[("deny", "budgets.timeout_ms", "TIMEOUT")])
    );
    assert!(report["usage"]["wall_time_ms"].as_f64().unwrap() >= 200.0);
}

#[test]
fn growing_memory_without_end_hits_the_ceiling() {
    let sb = Sandbox::new();
    let (code, report, _) = sb.run(DEMO, "examples/plugins/grow_memory.wat", &[]);
    assert_eq!(code, 6);
    assert_eq!(report["outcome"]["status"], "memory_limit");
    let event = &report["events"][0];
    assert_eq!(event["reason_code"], "MEMORY_LIMIT");
    assert_eq!(event["context"]["asked"], 64 * 1024 * 1024 + 65536);
    assert_eq!(event["context"]["limit"], 64 * 1024 * 1024);
    assert_eq!(report["usage"]["peak_memory_bytes"], 64 * 1024 * 1024);
}

#[test]
fn initial_memory_beyond_the_ceiling_is_a_memory_limit_too() {
    let sb = Sandbox::new();
    sb.write(
        "big.wat",
        "(module (memory (export \"memory\") 2000) (func (export \"_start\")))",
    );
    let (code, report, _) = sb.run(DEMO, "big.wat", &[]);
    assert_eq!(code, 6);
    assert_eq!(report["events"][0]["context"]["asked"], 2000 * 65536);
}

#[test]
fn endless_recursion_traps_and_the_host_survives() {
    let sb = Sandbox::new();
    let (code, report, _) = sb.run(DEMO, "examples/plugins/recurse_forever.wat", &[]);
    assert_eq!(code, 3);
    assert_eq!(report["outcome"]["status"], "trapped");
    assert!(report["outcome"]["message"]
        .as_str()
        .unwrap()
        .contains("call stack exhausted"));
    assert_eq!(
        event_triples(&report),
        triples(&[("deny", "run.trap", "TRAPPED")])
    );
}

#[test]
fn symlinks_and_dotdot_cannot_leave_the_mount() {
    let sb = Sandbox::new();
    // A real file outside the mount, and links to it planted inside.
    sb.write("outside/secret.txt", "outside the mount\n");
    let data = sb.path("policies/fixtures/data");
    std::os::unix::fs::symlink(sb.path("outside/secret.txt"), data.join("abs-link")).unwrap();
    std::os::unix::fs::symlink("../../../outside/secret.txt", data.join("rel-link")).unwrap();
    std::os::unix::fs::symlink("../../../outside", data.join("dir-link")).unwrap();
    std::os::unix::fs::symlink("hello.txt", data.join("inner-link")).unwrap();
    sb.write(
        "probe.wat",
        r#"(module
  (import "sandbox" "fs_read" (func $read (param i32 i32 i64 i32 i32) (result i32)))
  (import "sandbox" "output_write" (func $out (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "/data/abs-link")
  (data (i32.const 32) "/data/rel-link")
  (data (i32.const 64) "/data/dir-link/secret.txt")
  (data (i32.const 96) "/data/../outside/secret.txt")
  (data (i32.const 128) "/data/inner-link")
  (func $try (param $ptr i32) (param $len i32)
    (local $n i32)
    (local.set $n (call $read (local.get $ptr) (local.get $len) (i64.const 0) (i32.const 1024) (i32.const 1024)))
    (if (i32.gt_s (local.get $n) (i32.const 0)) (then (drop (call $out (i32.const 1024) (local.get $n))))))
  (func (export "_start")
    (call $try (i32.const 0) (i32.const 14))
    (call $try (i32.const 32) (i32.const 14))
    (call $try (i32.const 64) (i32.const 25))
    (call $try (i32.const 96) (i32.const 27))
    (call $try (i32.const 128) (i32.const 16))))"#,
    );
    let (code, report, _) = sb.run(DEMO, "probe.wat", &[]);
    assert_eq!(code, 0);
    assert_eq!(
        event_triples(&report),
        triples(&[
            ("deny", "filesystem.mounts", "FS_PATH_OUTSIDE_MOUNTS"),
            ("deny", "filesystem.mounts", "FS_PATH_OUTSIDE_MOUNTS"),
            ("deny", "filesystem.mounts", "FS_PATH_OUTSIDE_MOUNTS"),
            ("deny", "filesystem.mounts", "FS_PATH_OUTSIDE_MOUNTS"),
            ("allow", "read-data", "ALLOWED"),
        ])
    );
    // Only the link that stays inside was followed.
    assert_eq!(report["stdio"]["stdout"], "hello from the data mount\n");
    assert_eq!(
        report["events"][4]["context"]["resolved_path"],
        "/data/hello.txt"
    );
}

#[test]
fn audit_mode_logs_rule_denies_without_enforcing_them() {
    let sb = Sandbox::new();
    sb.demo_variant("policies/audit.yaml", "mode: enforce", "mode: audit");
    let (code, report, _) = sb.run("policies/audit.yaml", DENY_HEAVY, &[]);
    assert_eq!(code, 0);
    let events = report["events"].as_array().unwrap();
    let by_reason = |reason: &str| {
        events
            .iter()
            .filter(|e| e["reason_code"] == reason)
            .collect::<Vec<_>>()
    };
    // Rules and quotas relaxed: logged as deny, not enforced.
    for e in by_reason("FS_PATH_NOT_ALLOWED")
        .iter()
        .chain(by_reason("FS_WRITE_QUOTA_EXCEEDED").iter())
    {
        assert_eq!(
            (e["decision"].as_str(), e["enforced"].as_bool()),
            (Some("deny"), Some(false)),
            "{e}"
        );
    }
    // Mounts, read-only mounts and invalid paths still enforced.
    for reason in [
        "FS_PATH_OUTSIDE_MOUNTS",
        "FS_READ_ONLY_MOUNT",
        "FS_PATH_INVALID",
    ] {
        for e in by_reason(reason) {
            assert_eq!(e["enforced"], true, "{e}");
        }
    }
    // The relaxed write really happened; the secret was really read.
    assert!(sb.path("policies/fixtures/out/notes.txt").exists());
    assert!(report["usage"]["fs_read_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn on_deny_trap_ends_the_run_at_the_first_deny() {
    let sb = Sandbox::new();
    sb.demo_variant("policies/trap.yaml", "on_deny: error", "on_deny: trap");
    let (code, report, _) = sb.run("policies/trap.yaml", DENY_HEAVY, &[]);
    assert_eq!(code, 3);
    assert_eq!(report["outcome"]["status"], "trapped");
    assert!(report["outcome"]["message"]
        .as_str()
        .unwrap()
        .contains("on_deny: trap"));
    assert_eq!(
        event_triples(&report),
        triples(&[
            ("deny", "filesystem.mounts", "FS_PATH_OUTSIDE_MOUNTS"),
            ("deny", "run.trap", "TRAPPED")
        ])
    );
    assert_eq!(report["events"][0]["context"]["result"], "ended_run");
}

#[test]
fn the_event_log_is_bounded_and_counts_what_it_did_not_record() {
    let sb = Sandbox::new();
    sb.demo_variant(
        "policies/small-log.yaml",
        "max_events: 10000",
        "max_events: 5",
    );
    let (_, report, _) = sb.run("policies/small-log.yaml", DENY_HEAVY, &[]);
    assert_eq!(report["events"].as_array().unwrap().len(), 5);
    assert_eq!(report["events_summary"]["recorded"], 5);
    assert_eq!(report["events_summary"]["not_recorded"], 9);
    assert_eq!(report["summary"]["denied"], 13);
    let counted: u64 = report["events_summary"]["by_rule"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 14);
}

#[test]
fn explain_names_the_rule_the_policy_line_and_the_fix() {
    let sb = Sandbox::new();
    sb.run(DEMO, DENY_HEAVY, &[]);
    for (index, name) in [
        (2, "deny-rule"),
        (5, "default-deny"),
        (7, "write-quota"),
        (12, "symlink-escape"),
        (4, "read-only"),
    ] {
        let out = sb.cli(&[
            "explain",
            "--report-file",
            "report.json",
            "--event-index",
            &index.to_string(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        golden(
            &format!("explain-{name}.txt"),
            &String::from_utf8(out.stdout).unwrap(),
        );
    }
    let out = sb.cli(&[
        "explain",
        "--report-file",
        "report.json",
        "--event-index",
        "5",
        "--format",
        "json",
    ]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["reason_code"], "FS_PATH_NOT_ALLOWED");
    assert_eq!(json["rule_id"], "filesystem.default");
    let yaml = json["suggestion"]["yaml"].as_str().unwrap();
    assert!(
        yaml.contains("ops: [write, create]") && yaml.contains("\"/out/notes.txt\""),
        "{yaml}"
    );
}

#[test]
fn the_suggested_change_really_allows_the_request() {
    let sb = Sandbox::new();
    sb.run(DEMO, DENY_HEAVY, &[]);
    let out = sb.cli(&[
        "explain",
        "--report-file",
        "report.json",
        "--event-index",
        "5",
        "--format",
        "json",
    ]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let demo = std::fs::read_to_string(sb.path(DEMO)).unwrap();
    // Apply the suggested rule to the policy and decide the same request again.
    let rule_line = json["suggestion"]["yaml"]
        .as_str()
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned();
    let widened = demo.replace(
        "  quotas: { read_bytes",
        &format!("{rule_line}\n  quotas: {{ read_bytes"),
    );
    let policy = sandbox_policy::parse_policy(&widened, Path::new(".")).unwrap();
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(sb.path("report.json")).unwrap()).unwrap();
    let request: sandbox_policy::Request =
        serde_json::from_value(report["events"][5]["request"].clone()).unwrap();
    let decision = policy.decide(&sandbox_policy::Usage::default(), &request);
    assert_eq!(decision.verdict, sandbox_policy::Verdict::Allow);
}

#[test]
fn explain_reads_a_lone_event() {
    let sb = Sandbox::new();
    let (_, report, _) = sb.run(DEMO, DENY_HEAVY, &[]);
    sb.write("event.json", &report["events"][2].to_string());
    let out = sb.cli(&["explain", "--event-json", "event.json", "--policy", DEMO]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("rule:    no-secrets"), "{text}");
    assert!(text.contains("18:7 |"), "{text}");
}

#[test]
fn edited_reports_are_detected_by_verify_and_explain() {
    let sb = Sandbox::new();
    sb.run(DEMO, DENY_HEAVY, &[]);
    let out = sb.cli(&["report", "verify", "--report-file", "report.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(sb.path("report.json")).unwrap();
    // Turn a deny into an allow, as someone hiding it would.
    let mut report: Value = serde_json::from_str(&text).unwrap();
    report["events"][2]["decision"] = Value::from("allow");
    sb.write("edited.json", &report.to_string());
    let out = sb.cli(&["report", "verify", "--report-file", "edited.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("event 2"), "{}", stderr(&out));
    let out = sb.cli(&[
        "explain",
        "--report-file",
        "edited.json",
        "--event-index",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(1));
    // An edit outside the events breaks the digest.
    let mut report: Value = serde_json::from_str(&text).unwrap();
    report["usage"]["fs_write_bytes"] = Value::from(1);
    sb.write("edited2.json", &report.to_string());
    let out = sb.cli(&["report", "verify", "--report-file", "edited2.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("digest"), "{}", stderr(&out));
}

#[test]
fn explain_refuses_an_out_of_range_index_with_a_clear_error() {
    let sb = Sandbox::new();
    sb.run(DEMO, ALLOWED, &[]);
    let out = sb.cli(&[
        "explain",
        "--report-file",
        "report.json",
        "--event-index",
        "99",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("out of range"), "{}", stderr(&out));
    let out = sb.cli(&[
        "explain",
        "--report-file",
        "missing.json",
        "--event-index",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing.json"));
}

fn assert_start_failure(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(out));
    let err = stderr(out);
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
}

/// A policy refused before anything ran: its errors as `lint` shows them (each with a
/// snippet), then one sentence counting them.
fn assert_policy_failure(out: &Output, needle: &str, errors: usize) {
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(out));
    let err = stderr(out);
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        err.matches("\nerror[").count() + usize::from(err.starts_with("error[")),
        errors,
        "{err}"
    );
    assert_eq!(err.matches(" = help: ").count(), errors, "{err}");
    let last = err.trim_end().lines().last().unwrap();
    assert!(
        last.starts_with("error: could not use policy `") && last.contains("due to"),
        "{err}"
    );
}

#[test]
fn bad_inputs_fail_to_start_with_one_clear_sentence() {
    let sb = Sandbox::new();
    sb.write("bad-policy.yaml", "version: 1\nbudgets:\n  fuel: lots\n");
    let out = sb.cli(&["run", "--policy", "bad-policy.yaml", "--plugin", ALLOWED]);
    assert_policy_failure(&out, "bad-policy.yaml:3:9", 1);
    let out = sb.cli(&["run", "--policy", "nope.yaml", "--plugin", ALLOWED]);
    assert_start_failure(&out, "nope.yaml");
    let out = sb.cli(&["run", "--policy", DEMO, "--plugin", "nope.wasm"]);
    assert_start_failure(&out, "nope.wasm");
    sb.write("garbage.wasm", "\0asm garbage");
    let out = sb.cli(&["run", "--policy", DEMO, "--plugin", "garbage.wasm"]);
    assert_start_failure(&out, "not a valid WebAssembly module");
    sb.write("imports.wat", r#"(module (import "env" "system" (func)) (import "wasi_unstable" "fd_write" (func)) (func (export "_start")))"#);
    let out = sb.cli(&["run", "--policy", DEMO, "--plugin", "imports.wat"]);
    assert_start_failure(&out, "`env::system`, `wasi_unstable::fd_write`");
    sb.write(
        "shared.wat",
        r#"(module (memory 1 1 shared) (func (export "_start")))"#,
    );
    let out = sb.cli(&["run", "--policy", DEMO, "--plugin", "shared.wat"]);
    assert_start_failure(&out, "shared memories");
    let out = sb.cli(&[
        "run", "--policy", DEMO, "--plugin", ALLOWED, "--entry", "main",
    ]);
    assert_start_failure(&out, "no exported function `main`");
    sb.write(
        "policies/tiny.yaml",
        "version: 1\nlimits: { module_bytes: 10 }\n",
    );
    let out = sb.cli(&["run", "--policy", "policies/tiny.yaml", "--plugin", ALLOWED]);
    assert_start_failure(&out, "limits.module_bytes");
    sb.write(
        "policies/nomount.yaml",
        "version: 1\nfilesystem:\n  mounts: [{ guest: /x, host: ./does-not-exist }]\n",
    );
    let out = sb.cli(&[
        "run",
        "--policy",
        "policies/nomount.yaml",
        "--plugin",
        ALLOWED,
    ]);
    assert_policy_failure(&out, "does-not-exist", 1);
    assert!(
        !sb.path("report.json").exists(),
        "no report for a run that did not start"
    );
}

#[test]
fn usage_errors_exit_2() {
    let sb = Sandbox::new();
    assert_eq!(sb.cli(&["run", "--policy", DEMO]).status.code(), Some(2));
    assert_eq!(sb.cli(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        sb.cli(&["policy", "template", "--preset", "lax"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn policy_verbs_work_on_the_committed_policies() {
    let sb = Sandbox::new();
    let out = sb.cli(&["policy", "lint", "--policy", DEMO]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = sb.cli(&[
        "policy",
        "lint",
        "--policy",
        "policies/noisy.yaml",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["warnings"].as_u64().unwrap() >= 5, "{json}");
    sb.write("policies/broken.yaml", "version: 1\nfilesystem:\n  rules:\n    - { id: x, effect: allow, ops: [read], paths: [\"data/**\"] }\n");
    let out = sb.cli(&[
        "policy",
        "lint",
        "--policy",
        "policies/broken.yaml",
        "--format",
        "sarif",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(
        sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"],
        4
    );
    for preset in ["strict", "balanced", "dev"] {
        let file = format!("policies/{preset}.yaml");
        let out = sb.cli(&["policy", "template", "--preset", preset, "--output", &file]);
        assert_eq!(out.status.code(), Some(0));
        let out = sb.cli(&["policy", "lint", "--policy", &file]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{preset}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let out = sb.cli(&["policy", "schema"]);
    let schema: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(schema["properties"]["filesystem"].is_object());
}

/// Every committed policy parses, and every sample plugin has a known outcome under the
/// demo policy: a new file without an expectation fails here.
#[test]
fn every_committed_policy_and_plugin_is_exercised() {
    let sb = Sandbox::new();
    for entry in std::fs::read_dir(repo_root().join("policies")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let rel = format!("policies/{}", path.file_name().unwrap().to_string_lossy());
            let out = sb.cli(&["policy", "lint", "--policy", &rel]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{rel}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
    let expected = [
        ("capability_allowed.wat", 0),
        ("deny_heavy.wat", 0),
        ("spin_forever.wat", 4),
        ("grow_memory.wat", 6),
        ("recurse_forever.wat", 3),
        // No echo server listens on the demo's port 7000 here: the connect fails and the
        // plugin traps on the error code.
        ("net_client.wat", 3),
    ];
    for entry in std::fs::read_dir(repo_root().join("examples/plugins")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let Some((_, code)) = expected.iter().find(|(n, _)| *n == name) else {
            panic!("examples/plugins/{name} has no expected outcome in this test");
        };
        let (got, _, _) = sb.run(DEMO, &format!("examples/plugins/{name}"), &[]);
        assert_eq!(got, *code, "{name}");
    }
}

#[test]
fn report_records_the_wasmtime_version_from_cargo_lock() {
    let lock = std::fs::read_to_string(repo_root().join("Cargo.lock")).unwrap();
    let needle = format!(
        "name = \"wasmtime\"\nversion = \"{}\"",
        sandbox_runtime::report::WASMTIME_VERSION
    );
    assert!(
        lock.contains(&needle),
        "update WASMTIME_VERSION to the version in Cargo.lock"
    );
}

/// A one-connection echo server on an ephemeral loopback port, bounded in time.
fn echo_once() -> (u16, std::thread::JoinHandle<Vec<u8>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let thread = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            stream.write_all(&buf[..n]).unwrap();
        }
        seen
    });
    (port, thread)
}

#[test]
fn net_client_talks_to_the_allowed_echo_server_and_is_denied_a_forbidden_host() {
    let sb = Sandbox::new();
    let (port, server) = echo_once();
    sb.demo_variant(
        "policies/net.yaml",
        "ports: [7000]",
        &format!("ports: [{port}]"),
    );
    std::fs::write(sb.path("port.bin"), port.to_le_bytes()).unwrap();
    let (code, report, _) = sb.run(
        "policies/net.yaml",
        "examples/plugins/net_client.wat",
        &["--input", "port.bin"],
    );
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["stdio"]["stdout"], "ping from the sandbox\n-1\n");
    assert_eq!(server.join().unwrap(), b"ping from the sandbox\n");
    let events = event_triples(&report);
    assert_eq!(events[0], ("allow".into(), "echo".into(), "ALLOWED".into()));
    assert_eq!(report["events"][0]["capability"], "net.connect");
    assert_eq!(report["events"][0]["context"]["address"], "127.0.0.1");
    assert_eq!(
        events.last().unwrap(),
        &(
            "deny".into(),
            "network.default".into(),
            "NET_HOST_NOT_ALLOWED".into()
        )
    );
    assert_eq!(report["usage"]["net_connections"], 1);
    assert_eq!(report["usage"]["net_egress_bytes"], 22);
    assert_eq!(report["usage"]["net_ingress_bytes"], 22);
}

#[test]
fn regression_input_read_past_the_end_returns_zero_instead_of_crashing() {
    let sb = Sandbox::new();
    sb.write(
        "past-end.wat",
        r#"(module (import "sandbox" "input_read" (func $ir (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (if (i32.ne (call $ir (i32.const 0) (i32.const 10) (i32.const 100)) (i32.const 0)) (then unreachable))))"#,
    );
    let (code, report, out) = sb.run(DEMO, "past-end.wat", &[]);
    assert_eq!(code, 0, "{}", stderr(&out));
    assert_eq!(report["outcome"]["status"], "completed");
}

#[test]
fn regression_a_fifo_in_a_mount_does_not_hang_the_run() {
    let sb = Sandbox::new();
    let status = Command::new("mkfifo")
        .arg(sb.path("policies/fixtures/data/fifo"))
        .status()
        .unwrap();
    assert!(status.success());
    sb.write(
        "fifo.wat",
        r#"(module (import "sandbox" "fs_read" (func $read (param i32 i32 i64 i32 i32) (result i32)))
  (import "sandbox" "output_write" (func $out (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "/data/fifo")
  (data (i32.const 32) "-0")
  (func (export "_start")
    (i32.store8 (i32.const 33) (i32.sub (i32.const 48) (call $read (i32.const 0) (i32.const 10) (i64.const 0) (i32.const 1024) (i32.const 16))))
    (drop (call $out (i32.const 32) (i32.const 2)))))"#,
    );
    let (code, report, _) = sb.run(DEMO, "fifo.wat", &[]);
    assert_eq!(code, 0);
    assert_eq!(report["stdio"]["stdout"], "-9", "ERR_WRONG_KIND");
}

#[test]
fn regression_an_import_with_the_wrong_type_fails_at_load() {
    let sb = Sandbox::new();
    sb.write("wrong-type.wat", r#"(module (import "sandbox" "log" (func (param i64))) (memory (export "memory") 1) (func (export "_start")))"#);
    let out = sb.cli(&["run", "--policy", DEMO, "--plugin", "wrong-type.wat"]);
    assert_start_failure(&out, "wrong type");
    sb.write(
        "policies/forever.yaml",
        "version: 1\nbudgets: { timeout_ms: 18446744073709551615 }\n",
    );
    let out = sb.cli(&[
        "run",
        "--policy",
        "policies/forever.yaml",
        "--plugin",
        ALLOWED,
    ]);
    assert_policy_failure(&out, "timeout_ms", 1);
}

// ---- policy learn, diff and replay; the usage-run script ----

/// Deny events whose reason a policy rule or quota could turn into an allow.
fn grantable_denies(report: &Value) -> Vec<Value> {
    report["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["decision"] == "deny"
                && sandbox_policy::ReasonCode::parse(e["reason_code"].as_str().unwrap())
                    .is_some_and(sandbox_policy::learn::grantable)
        })
        .cloned()
        .collect()
}

/// An echo server on an ephemeral loopback port for `connections` connections, one after the
/// other, bounded in time. Returns everything it received.
fn echo_serving(connections: usize) -> (u16, std::thread::JoinHandle<Vec<u8>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let thread = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..connections {
            let (mut stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            let mut buf = [0u8; 1024];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
                stream.write_all(&buf[..n]).unwrap();
            }
        }
        seen
    });
    (port, thread)
}

fn learn(sb: &Sandbox, args: &[&str]) -> Output {
    let mut all = vec!["policy", "learn"];
    all.extend_from_slice(args);
    let out = sb.cli(&all);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    out
}

fn lint_json(sb: &Sandbox, policy: &str) -> Value {
    let out = sb.cli(&["policy", "lint", "--policy", policy, "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn policy_learn_on_deny_heavy_grants_what_it_did_and_nothing_next_to_it() {
    let sb = Sandbox::new();
    let out = learn(
        &sb,
        &[
            "--plugin",
            DENY_HEAVY,
            "--policy",
            DEMO,
            "--output",
            "learned.yaml",
        ],
    );
    let summary = String::from_utf8(out.stdout).unwrap();
    assert!(
        summary.starts_with("learned policy written to `learned.yaml` from 15 events"),
        "{summary}"
    );
    assert!(
        summary.contains("deny rule `no-secrets` matched events 2, 3"),
        "{summary}"
    );
    let text = std::fs::read_to_string(sb.path("learned.yaml")).unwrap();
    // Each rule names the events it came from; what no rule can allow is listed.
    assert!(
        text.contains("    # events 2, 3: fs.read, fs.stat\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "{ id: read-data, effect: allow, ops: [read], paths: [\"/data/secret/key.txt\"] }"
        ),
        "{text}"
    );
    assert!(
        text.contains("paths: [\"/out/big.log\", \"/out/notes.txt\"]"),
        "{text}"
    );
    for line in [
        "#   event 0: fs.read `/etc/passwd`: FS_PATH_OUTSIDE_MOUNTS",
        "#   event 4: fs.write `/data/hello.txt`: FS_READ_ONLY_MOUNT",
        "#   event 13: fs.read `/data/escape -> /demo.yaml`: FS_PATH_OUTSIDE_MOUNTS",
        "#   event 14: abi.memory: BAD_GUEST_POINTER",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    let (policy, _) = sandbox_policy::load_policy(&sb.path("learned.yaml")).unwrap();
    assert_eq!(policy.mode.value, sandbox_policy::Mode::Enforce);
    for mount in &policy.filesystem.mounts {
        assert!(Path::new(&mount.host).is_absolute(), "{}", mount.host);
    }
    let lint = lint_json(&sb, "learned.yaml");
    assert_eq!(
        (lint["errors"].as_u64(), lint["warnings"].as_u64()),
        (Some(0), Some(0)),
        "{lint}"
    );

    // Run again under it: nothing a rule could allow is denied any more.
    let (code, report, _) = sb.run("learned.yaml", DENY_HEAVY, &[]);
    assert_eq!(code, 0);
    assert_eq!(grantable_denies(&report), Vec::<Value>::new());
    let allowed: Vec<String> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["decision"] == "allow")
        .map(|e| {
            format!(
                "{} {}",
                e["capability"].as_str().unwrap(),
                e["context"]["path"].as_str().unwrap()
            )
        })
        .collect();
    for expected in [
        "fs.read /data/secret/key.txt",
        "fs.stat /data/secret/key.txt",
        "fs.write /out/big.log",
        "fs.list /out",
    ] {
        assert!(
            allowed.iter().any(|a| a == expected),
            "{expected}: {allowed:?}"
        );
    }

    // Neighbours of what it touched stay denied.
    sb.write(
        "probe.wat",
        r#"(module
  (import "sandbox" "fs_read" (func $read (param i32 i32 i64 i32 i32) (result i32)))
  (import "sandbox" "fs_write" (func $write (param i32 i32 i32 i32 i32) (result i32)))
  (import "sandbox" "fs_list" (func $list (param i32 i32 i32 i32) (result i32)))
  (import "sandbox" "fs_delete" (func $delete (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "/data/secret/other.txt")
  (data (i32.const 32) "/data/hello.txt")
  (data (i32.const 64) "/out/big.log2")
  (data (i32.const 96) "/data")
  (data (i32.const 128) "/out/notes.txt")
  (func (export "_start")
    (drop (call $read (i32.const 0) (i32.const 22) (i64.const 0) (i32.const 1024) (i32.const 64)))
    (drop (call $read (i32.const 32) (i32.const 15) (i64.const 0) (i32.const 1024) (i32.const 64)))
    (drop (call $write (i32.const 64) (i32.const 13) (i32.const 1024) (i32.const 4) (i32.const 0)))
    (drop (call $list (i32.const 96) (i32.const 5) (i32.const 1024) (i32.const 64)))
    (drop (call $delete (i32.const 128) (i32.const 14)))))"#,
    );
    let (code, report, _) = sb.run("learned.yaml", "probe.wat", &[]);
    assert_eq!(code, 0);
    assert_eq!(
        event_triples(&report),
        triples(&[("deny", "filesystem.default", "FS_PATH_NOT_ALLOWED"); 5])
    );
}

#[test]
fn policy_learn_on_net_client_grants_its_echo_host_and_port_only() {
    let sb = Sandbox::new();
    // One connection for the learn run, one for the run under the learned policy.
    let (port, server) = echo_serving(2);
    sb.demo_variant(
        "policies/net.yaml",
        "ports: [7000]",
        &format!("ports: [{port}]"),
    );
    std::fs::write(sb.path("port.bin"), port.to_le_bytes()).unwrap();
    learn(
        &sb,
        &[
            "--plugin",
            "examples/plugins/net_client.wat",
            "--policy",
            "policies/net.yaml",
            "--input",
            "port.bin",
            "--output",
            "net-learned.yaml",
        ],
    );
    let text = std::fs::read_to_string(sb.path("net-learned.yaml")).unwrap();
    assert!(
        text.contains(&format!(
            "{{ id: net-echo-test, effect: allow, hosts: [\"echo.test\"], cidrs: [\"127.0.0.1/32\"], ports: [{port}] }}"
        )),
        "{text}"
    );
    assert!(
        text.contains("    # events 0-2: net.connect, net.receive, net.send\n"),
        "{text}"
    );
    assert!(
        text.contains("resolve: { \"echo.test\": \"127.0.0.1\" }"),
        "{text}"
    );
    assert!(
        text.contains("egress_bytes: 28, ingress_bytes: 28 }"),
        "{text}"
    );
    let lint = lint_json(&sb, "net-learned.yaml");
    assert_eq!(lint["errors"], 0, "{lint}");

    let (code, report, _) = sb.run(
        "net-learned.yaml",
        "examples/plugins/net_client.wat",
        &["--input", "port.bin"],
    );
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["summary"]["denied"], 0, "{report}");
    assert!(report["stdio"]["stdout"]
        .as_str()
        .unwrap()
        .starts_with("ping from the sandbox\n"));
    assert_eq!(
        server.join().unwrap(),
        b"ping from the sandbox\nping from the sandbox\n"
    );

    // The echo host on another port, and the next loopback address, stay denied.
    let neighbour = if port == u16::MAX { port - 1 } else { port + 1 };
    let mut input = neighbour.to_le_bytes().to_vec();
    input.extend_from_slice(&port.to_le_bytes());
    std::fs::write(sb.path("probe.bin"), input).unwrap();
    sb.write(
        "probe.wat",
        r#"(module
  (import "sandbox" "input_read" (func $input_read (param i32 i32 i32) (result i32)))
  (import "sandbox" "net_connect" (func $connect (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "echo.test")
  (data (i32.const 32) "127.0.0.2")
  (func (export "_start")
    (drop (call $input_read (i32.const 1024) (i32.const 4) (i32.const 0)))
    (drop (call $connect (i32.const 0) (i32.const 9) (i32.load16_u (i32.const 1024))))
    (drop (call $connect (i32.const 32) (i32.const 9) (i32.load16_u (i32.const 1026))))))"#,
    );
    let (code, report, _) = sb.run("net-learned.yaml", "probe.wat", &["--input", "probe.bin"]);
    assert_eq!(code, 0);
    assert_eq!(
        event_triples(&report),
        triples(&[
            ("deny", "net-echo-test", "NET_PORT_NOT_ALLOWED"),
            ("deny", "network.default", "NET_HOST_NOT_ALLOWED"),
        ])
    );
}

#[test]
fn policy_learn_from_the_strict_template_grants_nothing_outside_mounts() {
    let sb = Sandbox::new();
    // Guest arguments after `--` are accepted as `run` accepts them.
    let out = learn(
        &sb,
        &[
            "--plugin",
            DENY_HEAVY,
            "--output",
            "strict-learned.yaml",
            "--allow-empty",
            "--",
            "a",
            "b",
        ],
    );
    assert!(
        stderr(&out).contains("warning: the learning run made 12 filesystem requests, none inside the base policy's mounts"),
        "{}",
        stderr(&out)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 filesystem rules, 0 network rules"));
    let text = std::fs::read_to_string(sb.path("strict-learned.yaml")).unwrap();
    assert!(text.contains("#   base:   the strict template"), "{text}");
    assert!(!text.contains("filesystem:"), "{text}");
    assert!(
        text.contains("#   event 2: fs.read `/data/secret/key.txt`: FS_PATH_OUTSIDE_MOUNTS"),
        "{text}"
    );
    assert_eq!(lint_json(&sb, "strict-learned.yaml")["errors"], 0);
}

#[test]
fn policy_learn_refuses_bad_inputs_with_one_sentence() {
    let sb = Sandbox::new();
    let out = sb.cli(&[
        "policy",
        "learn",
        "--plugin",
        "nope.wasm",
        "--output",
        "x.yaml",
    ]);
    assert_start_failure(&out, "nope.wasm");
    sb.write("bad-policy.yaml", "version: 1\nbudgets:\n  fuel: lots\n");
    let out = sb.cli(&[
        "policy",
        "learn",
        "--plugin",
        DENY_HEAVY,
        "--policy",
        "bad-policy.yaml",
        "--output",
        "x.yaml",
    ]);
    assert_policy_failure(&out, "bad-policy.yaml:3:9", 1);
    assert_eq!(
        sb.cli(&["policy", "learn", "--plugin", DENY_HEAVY])
            .status
            .code(),
        Some(2)
    );
    assert!(!sb.path("x.yaml").exists());
}

#[test]
fn replay_of_the_deny_heavy_report_turns_grantable_denies_into_allows_under_its_learned_policy() {
    let sb = Sandbox::new();
    let (_, report, _) = sb.run(DEMO, DENY_HEAVY, &[]);
    learn(
        &sb,
        &[
            "--plugin",
            DENY_HEAVY,
            "--policy",
            DEMO,
            "--output",
            "learned.yaml",
        ],
    );
    let out = sb.cli(&[
        "policy",
        "replay",
        "--report-file",
        "report.json",
        "--policy",
        "learned.yaml",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let replay: Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = replay["events"].as_array().unwrap();
    // Every event with a request is replayed; the bad pointer has none.
    assert_eq!(events.len(), report["events"].as_array().unwrap().len() - 1);
    assert_eq!(replay["not_replayable"], serde_json::json!([13]));
    let mut turned = 0;
    for e in events {
        let old_reason =
            sandbox_policy::ReasonCode::parse(e["old"]["reason_code"].as_str().unwrap()).unwrap();
        match e["old"]["decision"].as_str().unwrap() {
            "deny" if sandbox_policy::learn::grantable(old_reason) => {
                assert_eq!(e["new"]["decision"], "allow", "{e}");
                assert_eq!(e["change"], "now_allowed", "{e}");
                turned += 1;
            }
            "deny" => {
                assert_eq!(e["new"]["decision"], "deny", "{e}");
                assert_eq!(e["new"]["reason_code"], e["old"]["reason_code"], "{e}");
            }
            _ => assert_eq!(e["new"]["decision"], "allow", "{e}"),
        }
    }
    assert_eq!(turned, 6);
    assert_eq!(replay["summary"]["now_allowed"], 6);
    assert_eq!(replay["summary"]["now_denied"], 0);

    // The text form, through the `--report` alias; `--fail-on-change` makes a change exit 1.
    let out = sb.cli(&[
        "policy",
        "replay",
        "--report",
        "report.json",
        "--policy",
        "learned.yaml",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("13 requests decided again: 6 now allowed, 0 now denied"),
        "{text}"
    );
    assert!(
        text.contains("  event 7: `fs.write` `/out/big.log`: now allowed: deny by `filesystem.quotas.write_bytes` (FS_WRITE_QUOTA_EXCEEDED) -> allow by `write-create-out` (ALLOWED)\n"),
        "{text}"
    );
    let out = sb.cli(&[
        "policy",
        "replay",
        "--report",
        "report.json",
        "--policy",
        "learned.yaml",
        "--fail-on-change",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let out = sb.cli(&[
        "policy",
        "replay",
        "--report",
        "report.json",
        "--policy",
        DEMO,
        "--fail-on-change",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the run's own policy changes nothing"
    );
}

#[test]
fn replay_under_the_strict_template_turns_every_allow_into_a_deny() {
    let sb = Sandbox::new();
    sb.cli(&[
        "policy",
        "template",
        "--preset",
        "strict",
        "--output",
        "strict.yaml",
    ]);
    for plugin in [DENY_HEAVY, ALLOWED] {
        let (_, report, _) = sb.run(DEMO, plugin, &[]);
        let allows = report["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["decision"] == "allow")
            .count();
        assert!(allows > 0, "{plugin}");
        let out = sb.cli(&[
            "policy",
            "replay",
            "--report-file",
            "report.json",
            "--policy",
            "strict.yaml",
            "--format",
            "json",
        ]);
        let replay: Value = serde_json::from_slice(&out.stdout).unwrap();
        for e in replay["events"].as_array().unwrap() {
            assert_eq!(e["new"]["decision"], "deny", "{e}");
            if e["old"]["decision"] == "allow" {
                assert_eq!(e["change"], "now_denied", "{e}");
            }
        }
        assert_eq!(replay["summary"]["now_denied"], allows, "{plugin}");
    }
}

#[test]
fn replay_refuses_an_edited_report() {
    let sb = Sandbox::new();
    let (_, mut report, _) = sb.run(DEMO, DENY_HEAVY, &[]);
    report["events"][2]["request"]["path"] = Value::from("/data/hello.txt");
    sb.write("edited.json", &report.to_string());
    let out = sb.cli(&[
        "policy",
        "replay",
        "--report-file",
        "edited.json",
        "--policy",
        DEMO,
    ]);
    assert_start_failure(&out, "event 2");
}

#[test]
fn policy_diff_output_is_pinned_for_a_widened_glob_an_added_host_and_a_raised_quota() {
    let sb = Sandbox::new();
    for (name, from, to) in [
        ("widen-glob", "\"/out/*.log\"", "\"/out/**\""),
        (
            "add-host",
            "hosts: [\"echo.test\"]",
            "hosts: [\"echo.test\", \"api.example.com\"]",
        ),
        ("raise-quota", "write_bytes: 64KiB", "write_bytes: 1MiB"),
    ] {
        let new = format!("policies/{name}.yaml");
        sb.demo_variant(&new, from, to);
        let out = sb.cli(&["policy", "diff", "--old", DEMO, "--new", &new]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        golden(
            &format!("diff-{name}.txt"),
            &String::from_utf8(out.stdout).unwrap(),
        );
        let out = sb.cli(&[
            "policy", "diff", "--old", DEMO, "--new", &new, "--format", "json", "--pretty",
        ]);
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8(out.stdout).unwrap();
        let json: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["summary"]["allows"], 1, "{name}: {json}");
        assert_eq!(json["summary"]["denies"], 0, "{name}: {json}");
        golden(&format!("diff-{name}.json"), &text);
        // The other way round, the same change is a narrowing.
        let out = sb.cli(&[
            "policy", "diff", "--old", &new, "--new", DEMO, "--format", "json",
        ]);
        let back: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (
                back["summary"]["allows"].as_u64(),
                back["summary"]["denies"].as_u64()
            ),
            (Some(0), Some(1)),
            "{name}: {back}"
        );
    }
    let out = sb.cli(&["policy", "diff", "--old", DEMO, "--new", DEMO]);
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("no change in what the policy allows or denies"));
}

/// The usage-run script in its fast mode, against the binary these tests built: every
/// artifact is written and has the shape the script promises.
#[test]
fn usage_run_fast_mode_writes_every_artifact() {
    let artifacts = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(repo_root().join("scripts/usage_run.sh"))
        .env("XDG_CACHE_HOME", cache.path())
        .env("RUN_TESTS", "0")
        .env("RUN_BENCH", "0")
        .env("ARTIFACT_DIR", artifacts.path())
        .env("SANDBOX_CLI", env!("CARGO_BIN_EXE_sandbox-cli"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    let read = |name: &str| {
        std::fs::read_to_string(artifacts.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let json = |name: &str| -> Value {
        serde_json::from_str(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let allowed = json("allowed_report.json");
    assert_eq!(allowed["outcome"]["status"], "completed");
    assert_eq!(allowed["summary"]["denied"], 0);
    let denied = json("denied_report.json");
    let denies = denied["summary"]["denied"].as_u64().unwrap();
    assert!(denies > 0);

    let mut lone = 0;
    let mut explained = 0;
    for entry in std::fs::read_dir(artifacts.path().join("explain_events")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let e = json(&format!("explain_events/{name}"));
        assert_eq!(e["decision"], "deny", "{name}");
        assert!(
            e["rule_id"].is_string() && e["suggestion"]["summary"].is_string(),
            "{name}"
        );
        if name.starts_with("lone_event_") {
            lone += 1;
        } else {
            explained += 1;
        }
    }
    assert_eq!((lone, explained as u64), (1, denies));

    let lint = json("policy_lint_noisy.json");
    assert_eq!(lint["errors"], 0);
    assert!(lint["warnings"].as_u64().unwrap() > 0);

    let learned = read("learned_policy.yaml");
    let policy = sandbox_policy::parse_policy(&learned, artifacts.path()).unwrap();
    assert_eq!(policy.mode.value, sandbox_policy::Mode::Enforce);
    assert!(!policy.filesystem.rules.is_empty());

    let bench = json("benchmark.json");
    assert_eq!(bench["iterations"], 3);
    assert!(bench["note"].as_str().unwrap().contains("RUN_BENCH=0"));
    let cases = bench["cases"].as_array().unwrap();
    let names: Vec<&str> = cases.iter().map(|c| c["case"].as_str().unwrap()).collect();
    assert_eq!(
        names[..3],
        [
            "capability_allowed",
            "capability_allowed_no_cache",
            "deny_heavy"
        ]
    );
    for c in cases {
        let ms = |k: &str| c[k].as_f64().unwrap_or_else(|| panic!("{k} in {c}"));
        assert_eq!(c["iterations"], 3);
        assert!(ms("min_ms") > 0.0);
        assert!(
            ms("min_ms") <= ms("median_ms")
                && ms("median_ms") <= ms("p95_ms")
                && ms("p95_ms") <= ms("max_ms"),
            "{c}"
        );
        assert!(
            ms("min_ms") <= ms("mean_ms") && ms("mean_ms") <= ms("max_ms"),
            "{c}"
        );
    }

    let summary = read("summary.md");
    assert!(
        summary.contains("| run the deny-heavy plugin | passed |"),
        "{summary}"
    );
    assert!(
        summary.contains("| tests (./scripts/test.sh) | skipped | RUN_TESTS=0 |"),
        "{summary}"
    );
    for artifact in [
        "allowed_report.json",
        "denied_report.json",
        "explain_events/",
        "policy_lint_noisy.json",
        "learned_policy.yaml",
        "benchmark.json",
    ] {
        assert!(summary.contains(artifact), "{artifact} in {summary}");
    }
    assert!(!summary.contains("FAILED"), "{summary}");
}

/// The README's commands table keeps up with the CLI: every `policy` subcommand is in it.
#[test]
fn readme_lists_every_policy_subcommand() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let sb = Sandbox::new();
    let help = String::from_utf8(sb.cli(&["policy", "--help"]).stdout).unwrap();
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(
        commands.contains(&"learn") && commands.contains(&"replay"),
        "{help}"
    );
    for command in commands {
        assert!(
            readme.contains(&format!("| `sandbox-cli policy {command}")),
            "README's commands table has no `sandbox-cli policy {command}`"
        );
    }
}

#[test]
fn run_caches_the_compiled_module_by_default_and_not_with_no_cache() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    let (code, uncached, _) = sb.run(DEMO, DENY_HEAVY, &["--no-cache"]);
    assert_eq!(code, 0);
    assert!(sb.cache_entries().is_empty(), "--no-cache stored something");

    let (code, first, _) = sb.run(DEMO, DENY_HEAVY, &[]);
    assert_eq!(code, 0);
    let entries = sb.cache_entries();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0].extension().is_some_and(|e| e == "cwasm"));
    let mode = std::fs::metadata(sb.path("cache/sandbox-cli"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    let stored = std::fs::read(&entries[0]).unwrap();

    // The second run reads the entry and leaves it as it was; the report does not change.
    let (code, second, _) = sb.run(DEMO, DENY_HEAVY, &[]);
    assert_eq!(code, 0);
    assert_eq!(std::fs::read(&entries[0]).unwrap(), stored);
    for report in [&first, &second] {
        assert_eq!(report["events"], uncached["events"]);
        assert_eq!(
            report["usage"]["fuel_consumed"],
            uncached["usage"]["fuel_consumed"]
        );
    }
}

#[test]
fn a_corrupt_cache_entry_is_detected_and_recompiled() {
    let sb = Sandbox::new();
    let (_, expected, _) = sb.run(DEMO, DENY_HEAVY, &[]);
    let entry = sb.cache_entries().pop().expect("an entry");
    let good = std::fs::read(&entry).unwrap();
    // Flip bytes in the compiled code, then cut the file short: both are caught by the digest.
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    for b in &mut flipped[middle..middle + 16] {
        *b ^= 0xff;
    }
    for damaged in [flipped, good[..good.len() / 3].to_vec()] {
        std::fs::write(&entry, &damaged).unwrap();
        let (code, report, _) = sb.run(DEMO, DENY_HEAVY, &[]);
        assert_eq!(code, 0);
        assert_eq!(report["events"], expected["events"]);
        assert_eq!(report["stdio"], expected["stdio"]);
        assert_eq!(
            std::fs::read(&entry).unwrap(),
            good,
            "the entry was not replaced"
        );
    }
}

#[test]
fn a_stale_cache_entry_for_another_module_is_not_run() {
    let sb = Sandbox::new();
    sb.run(DEMO, ALLOWED, &[]);
    let allowed_entry = sb.cache_entries().pop().unwrap();
    let (_, expected, _) = sb.run(DEMO, DENY_HEAVY, &[]);
    let deny_entry = sb
        .cache_entries()
        .into_iter()
        .find(|p| *p != allowed_entry)
        .unwrap();
    let deny_bytes = std::fs::read(&deny_entry).unwrap();
    // An intact entry, digest and all, but of the other plugin, under deny_heavy's key.
    std::fs::copy(&allowed_entry, &deny_entry).unwrap();
    let (code, report, _) = sb.run(DEMO, DENY_HEAVY, &[]);
    assert_eq!(code, 0);
    assert_eq!(report["events"], expected["events"], "ran the wrong module");
    assert_eq!(std::fs::read(&deny_entry).unwrap(), deny_bytes);
}

#[test]
fn an_unwritable_cache_folder_means_no_cache_not_an_error() {
    let sb = Sandbox::new();
    // A file where the cache folder should be: nothing can be created beneath it.
    sb.write("not-a-folder", "");
    let out = sb.cli_with_cache(
        &["run", "--policy", DEMO, "--plugin", DENY_HEAVY],
        &sb.path("not-a-folder"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"]["status"], "completed");
}

// ---- `run` like `wasmtime run` ----

/// Runs the CLI with `stdin` as its standard input (a pipe).
fn cli_with_stdin(sb: &Sandbox, args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sandbox-cli"))
        .args(args)
        .current_dir(sb.dir.path())
        .env("XDG_CACHE_HOME", sb.path("cache"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

const RESULT_LOG: &str = "policies/fixtures/out/result.log";

#[test]
fn run_with_report_file_sends_the_report_there_only_and_a_summary_to_stderr() {
    let sb = Sandbox::new();
    sb.write("input.txt", "echo me\n");
    let (code, report, out) = sb.run(DEMO, ALLOWED, &["--input", "input.txt"]);
    assert_eq!(code, 0);
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(stdout.ends_with("echo me\n"), "guest output: {stdout}");
    assert!(!stdout.contains("schema_version"), "{stdout}");
    let err = stderr(&out);
    // The guest's stderr, then the summary.
    let guest_stderr = report["stdio"]["stderr"].as_str().unwrap();
    assert_eq!(guest_stderr, "capability_allowed: done\n");
    assert_eq!(
        err,
        format!(
            "{guest_stderr}sandbox-cli: completed; {} allowed, 0 denied; report in `report.json`\n",
            report["summary"]["allowed"]
        )
    );
    // --quiet: no summary; the guest's output still reaches the terminal.
    let (_, _, out) = sb.run(DEMO, ALLOWED, &["--input", "input.txt", "--quiet"]);
    assert_eq!(stderr(&out), guest_stderr);
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .ends_with("echo me\n"));
}

#[test]
fn run_passes_stdin_with_input_dash_and_when_piped() {
    let sb = Sandbox::new();
    for extra in [&["--input", "-"][..], &[][..]] {
        let mut args = vec!["run", "--policy", DEMO, "--plugin", ALLOWED];
        args.extend_from_slice(extra);
        let out = cli_with_stdin(&sb, &args, b"from stdin\n");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let captured = report["stdio"]["stdout"].as_str().unwrap();
        assert!(captured.ends_with("from stdin\n"), "{extra:?}: {captured}");
    }
}

#[test]
fn run_exit_code_guest_propagates_proc_exit() {
    let sb = Sandbox::new();
    sb.write(
        "exit2.wat",
        r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 2))))"#,
    );
    let args = ["run", "--policy", DEMO, "--plugin", "exit2.wat", "--quiet"];
    let out = sb.cli(&[&args[..], &["--report-file", "r.json"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = sb.cli(
        &[
            &args[..],
            &["--report-file", "r.json", "--exit-code", "guest"],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&std::fs::read(sb.path("r.json")).unwrap()).unwrap();
    assert_eq!(report["outcome"]["exit_code"], 2);
    // Other outcomes keep their own codes.
    let out = sb.cli(&[
        "run",
        "--policy",
        DEMO,
        "--plugin",
        "examples/plugins/recurse_forever.wat",
        "--exit-code",
        "guest",
    ]);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn run_checks_every_output_path_before_running_anything() {
    let sb = Sandbox::new();
    let base = ["run", "--policy", DEMO, "--plugin", ALLOWED];
    for (flag, path, needle) in [
        (
            "--report-file",
            "missing/r.json",
            "folder `missing` does not exist",
        ),
        (
            "--stdout",
            "missing/o.bin",
            "folder `missing` does not exist",
        ),
        ("--stderr", "nope/e.bin", "folder `nope` does not exist"),
    ] {
        let out = sb.cli(&[&base[..], &[flag, path]].concat());
        assert_start_failure(&out, needle);
        assert!(out.stdout.is_empty());
        assert!(!sb.path(RESULT_LOG).exists(), "{flag}: the plugin ran");
    }
    // A symlink as the last component is not followed; its target is untouched.
    sb.write("target.txt", "keep");
    std::os::unix::fs::symlink(sb.path("target.txt"), sb.path("link.json")).unwrap();
    let out = sb.cli(&[&base[..], &["--report-file", "link.json"]].concat());
    assert_start_failure(&out, "`link.json`: it is a symbolic link");
    assert_eq!(
        std::fs::read_to_string(sb.path("target.txt")).unwrap(),
        "keep"
    );
    // A FIFO (with or without a reader) and a device are refused.
    let status = Command::new("mkfifo")
        .arg(sb.path("fifo"))
        .status()
        .unwrap();
    assert!(status.success());
    let out = sb.cli(&[&base[..], &["--stdout", "fifo"]].concat());
    assert_start_failure(&out, "`fifo`: it is a FIFO");
    let out = sb.cli(&[&base[..], &["--stderr", "/dev/null"]].concat());
    assert_start_failure(&out, "`/dev/null`: it is a device");
    assert!(!sb.path(RESULT_LOG).exists(), "the plugin ran");
}

#[test]
fn run_warns_about_an_output_file_inside_a_read_write_mount() {
    let sb = Sandbox::new();
    let out = sb.cli(&[
        "run",
        "--policy",
        DEMO,
        "--plugin",
        ALLOWED,
        "--report-file",
        "policies/fixtures/out/r.json",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "warning: report `policies/fixtures/out/r.json` is inside the policy's read-write mount `/out`"
        ),
        "{}",
        stderr(&out)
    );
    assert!(sb.path("policies/fixtures/out/r.json").exists());
    let out = sb.cli(&[
        "run",
        "--policy",
        DEMO,
        "--plugin",
        ALLOWED,
        "--report-file",
        "r.json",
    ]);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}

#[test]
fn run_survives_a_closed_stdout_and_a_full_disk_keeping_the_outcome_exit_code() {
    let sb = Sandbox::new();
    let spin = "examples/plugins/spin_forever.wat";
    for (plugin, expected) in [(DENY_HEAVY, 0), (spin, 4)] {
        // A pipe whose reader is gone: EPIPE ends output quietly.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_sandbox-cli"))
            .args(["run", "--policy", DEMO, "--plugin", plugin])
            .current_dir(sb.dir.path())
            .env("XDG_CACHE_HOME", sb.path("cache"))
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(expected), "{}", stderr(&out));
        assert_eq!(stderr(&out), "", "a closed pipe is not an error");
        // `> /dev/full`: one sentence, and the outcome's exit code stands.
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_sandbox-cli"))
            .args(["run", "--policy", DEMO, "--plugin", plugin])
            .current_dir(sb.dir.path())
            .env("XDG_CACHE_HOME", sb.path("cache"))
            .stdout(full)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(expected), "{}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: cannot write to stdout: "), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

// ---- diagnostics and the CLI's surface ----

#[test]
fn run_shows_every_policy_error_with_the_snippet_lint_shows() {
    let sb = Sandbox::new();
    sb.write(
        "typos.yaml",
        "version: 1\nfilesytem: {}\nmdoe: audit\nbudgets: { fule: 1 }\n",
    );
    let out = sb.cli(&["run", "--policy", "typos.yaml", "--plugin", ALLOWED]);
    assert_policy_failure(&out, "did you mean `filesystem`?", 3);
    let err = stderr(&out);
    assert!(err.contains("did you mean `mode`?") && err.contains("did you mean `fuel`?"));
    let lint = sb.cli(&["policy", "lint", "--policy", "typos.yaml"]);
    assert_eq!(lint.status.code(), Some(1));
    let lint = String::from_utf8(lint.stdout).unwrap();
    // The same findings, word for word; lint adds its count line, run its closing sentence.
    assert!(lint.starts_with(err.rsplit_once("error: could not use").unwrap().0));
    assert!(lint.ends_with("3 errors, 0 warnings\n"), "{lint}");
}

#[test]
fn a_missing_mount_folder_is_said_once_in_the_same_words_by_lint_and_run() {
    let sb = Sandbox::new();
    sb.write(
        "policies/nomount.yaml",
        "version: 1\nbudgets: { fuel: 1000, timeout_ms: 1000, memory_bytes: 1MiB }\nfilesystem:\n  mounts: [{ guest: /x, host: ./does-not-exist }]\n  rules: [{ id: r, effect: allow, ops: [read], paths: [\"/x/**\"] }]\n  quotas: { read_bytes: 1KiB }\n",
    );
    let run = sb.cli(&[
        "run",
        "--policy",
        "policies/nomount.yaml",
        "--plugin",
        ALLOWED,
    ]);
    assert_policy_failure(&run, "error[missing-mount-folder]", 1);
    let run_err = stderr(&run);
    assert_eq!(run_err.matches("does-not-exist").count(), 2, "{run_err}");
    let lint = sb.cli(&["policy", "lint", "--policy", "policies/nomount.yaml"]);
    assert_eq!(lint.status.code(), Some(0), "a warning for lint");
    let lint = String::from_utf8(lint.stdout).unwrap();
    let body = |text: &str| -> String {
        text.lines()
            .filter(|l| {
                !l.starts_with("error") && !l.starts_with("warning") && !l.contains(" errors, ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(lint.contains("warning[missing-mount-folder]: host folder `./does-not-exist` of mount `/x` does not exist"), "{lint}");
    assert!(run_err.contains("error[missing-mount-folder]: host folder `./does-not-exist` of mount `/x` does not exist"), "{run_err}");
    assert!(
        body(&lint).starts_with(body(&run_err).trim_end()),
        "lint:\n{lint}\nrun:\n{run_err}"
    );
    // --deny-warnings makes lint fail on it.
    let strict = sb.cli(&[
        "policy",
        "lint",
        "--policy",
        "policies/nomount.yaml",
        "--deny-warnings",
    ]);
    assert_eq!(strict.status.code(), Some(1));
    let clean = sb.cli(&["policy", "lint", "--policy", DEMO, "--deny-warnings"]);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );
}

#[test]
fn entry_errors_list_the_exports_with_their_types_and_components_are_named() {
    let sb = Sandbox::new();
    sb.write(
        "two.wat",
        r#"(module (memory (export "mem") 1) (func (export "add") (param i32 i64) (result i32) (local.get 0)) (func (export "_start")))"#,
    );
    let out = sb.cli(&[
        "run", "--policy", DEMO, "--plugin", "two.wat", "--entry", "add",
    ]);
    assert_start_failure(
        &out,
        "no exported function `add` of type `() -> ()`; its exports: `mem`: memory, `add`: (i32, i64) -> (i32), `_start`: () -> ()",
    );
    sb.write("component.wat", "(component)");
    let out = sb.cli(&["run", "--policy", DEMO, "--plugin", "component.wat"]);
    assert_start_failure(
        &out,
        "is a WebAssembly component; `sandbox-cli` runs core modules only",
    );
    assert!(!stderr(&out).contains("enable the feature"));
}

/// Every subcommand path of the CLI, for help and version checks.
const SUBCOMMANDS: &[&[&str]] = &[
    &["run"],
    &["explain"],
    &["policy", "lint"],
    &["policy", "template"],
    &["policy", "schema"],
    &["policy", "learn"],
    &["policy", "diff"],
    &["policy", "replay"],
    &["report", "verify"],
    &["completions"],
    &["cache", "list"],
    &["cache", "clean"],
];

#[test]
fn every_flag_has_help_and_every_subcommand_knows_the_version() {
    let sb = Sandbox::new();
    let version = format!(" {}\n", env!("CARGO_PKG_VERSION"));
    for path in SUBCOMMANDS {
        let out = sb.cli(&[&path[..], &["--version"]].concat());
        assert_eq!(out.status.code(), Some(0), "{path:?}: {}", stderr(&out));
        let printed = String::from_utf8(out.stdout).unwrap();
        assert!(
            printed.starts_with("sandbox-cli") && printed.ends_with(&version),
            "{path:?}: {printed}"
        );
        // `-h`: one line per flag, its help beside it.
        let out = sb.cli(&[&path[..], &["-h"]].concat());
        assert_eq!(out.status.code(), Some(0), "{path:?}");
        let help = String::from_utf8(out.stdout).unwrap();
        for line in help.lines() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("--") || (trimmed.starts_with('-') && trimmed.len() > 1) {
                // `--flag <VALUE>  text`: a flag without help has nothing after its name.
                assert!(
                    trimmed.contains("  "),
                    "{path:?}: flag without help: `{line}`"
                );
            }
        }
    }
}

#[test]
fn completions_are_printed_for_each_shell() {
    let sb = Sandbox::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = sb.cli(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains("sandbox-cli"), "{shell}");
        assert!(
            script.contains("deny-warnings"),
            "{shell}: the lint flag is completed"
        );
    }
    assert_eq!(sb.cli(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn sarif_names_the_tool_version_and_each_rule_has_help() {
    let sb = Sandbox::new();
    let out = sb.cli(&[
        "policy",
        "lint",
        "--policy",
        "policies/noisy.yaml",
        "--format",
        "sarif",
    ]);
    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    let driver = &sarif["runs"][0]["tool"]["driver"];
    assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
    let rules = driver["rules"].as_array().unwrap();
    assert!(!rules.is_empty());
    for rule in rules {
        let help = rule["help"]["text"].as_str().unwrap();
        assert!(!help.is_empty(), "{rule}");
    }
}

#[test]
fn cache_list_and_clean_show_and_remove_the_compiled_modules() {
    let sb = Sandbox::new();
    let out = sb.cli(&["cache", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains(": 0 entries, 0 bytes"));
    let out = sb.cli(&["run", "--policy", DEMO, "--plugin", ALLOWED]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(sb.cache_entries().len(), 1);
    let out = sb.cli(&["cache", "list"]);
    let list = String::from_utf8(out.stdout).unwrap();
    assert!(list.contains(": 1 entry, "), "{list}");
    assert!(
        list.contains(".cwasm") && list.contains("seconds old"),
        "{list}"
    );
    let out = sb.cli(&["cache", "clean"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .starts_with("removed 1 entry ("));
    assert!(sb.cache_entries().is_empty());
}

// ---- explain: the whole change; policy fix ----

#[test]
fn explain_all_explains_every_deny_and_a_missing_policy_is_said_plainly() {
    let sb = Sandbox::new();
    let (_, report, _) = sb.run(DEMO, DENY_HEAVY, &["--quiet"]);
    let denies = report["summary"]["denied"].as_u64().unwrap() as usize;
    let out = sb.cli(&["explain", "--report-file", "report.json", "--all"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(&format!("{denies} denies in `report.json`\n")),
        "{text}"
    );
    assert_eq!(text.matches(" denied\n").count(), denies, "{text}");
    let out = sb.cli(&[
        "explain",
        "--report-file",
        "report.json",
        "--all",
        "--format",
        "json",
    ]);
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all.as_array().unwrap().len(), denies);
    // From another folder the report's relative policy path does not resolve: said plainly,
    // and no deny is explained as a built-in default.
    std::fs::create_dir(sb.path("elsewhere")).unwrap();
    std::fs::copy(sb.path("report.json"), sb.path("elsewhere/r.json")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sandbox-cli"))
        .args(["explain", "--report-file", "r.json", "--event-index", "5"])
        .current_dir(sb.path("elsewhere"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("policy:  `policies/demo.yaml` cannot be found from here"),
        "{text}"
    );
    assert!(text.contains("give `--policy`"), "{text}");
    assert!(!text.contains("built-in default"), "{text}");
}

#[test]
fn explain_suggests_the_whole_change_a_deny_needs() {
    let sb = Sandbox::new();
    sb.run(DEMO, DENY_HEAVY, &["--quiet"]);
    let suggestion = |index: &str| -> String {
        let out = sb.cli(&[
            "explain",
            "--report-file",
            "report.json",
            "--event-index",
            index,
            "--format",
            "json",
        ]);
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        json["suggestion"]["yaml"].as_str().unwrap().to_owned()
    };
    // A write on a read-only mount: the mount and the rule together.
    let yaml = suggestion("4");
    assert!(yaml.contains("mode: rw"), "{yaml}");
    assert!(
        yaml.contains("ops: [write, create], paths: [\"/data/hello.txt\"]"),
        "{yaml}"
    );
    // A quota: headroom, and the policy's other quota kept in the flow map.
    let yaml = suggestion("7");
    assert_eq!(
        yaml,
        "filesystem:\n  quotas: { read_bytes: 1MiB, write_bytes: 88KiB }\n"
    );
    // A new file: create and write together.
    assert!(suggestion("5").contains("ops: [write, create]"));
}

#[test]
fn policy_fix_merges_the_changes_keeps_comments_and_proves_them_by_replay() {
    let sb = Sandbox::new();
    sb.run(DEMO, DENY_HEAVY, &["--quiet"]);
    // `sb.run` writes `report.json` each time: keep this run's report apart.
    std::fs::copy(sb.path("report.json"), sb.path("denied.json")).unwrap();
    let before = std::fs::read_to_string(sb.path(DEMO)).unwrap();
    let out = sb.cli(&[
        "policy",
        "fix",
        "--policy",
        DEMO,
        "--report-file",
        "denied.json",
        "--output",
        "policies/fixed.yaml",
        "--event-index",
        "4,5,7",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(
        said.contains("replay of `denied.json` under it: 3 of 3 denies now allowed"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(sb.path(DEMO)).unwrap(),
        before,
        "the input policy is untouched"
    );
    let fixed = std::fs::read_to_string(sb.path("policies/fixed.yaml")).unwrap();
    // Every comment of the original is still there.
    for comment in before.lines().filter(|l| l.trim_start().starts_with('#')) {
        assert!(fixed.contains(comment), "lost `{comment}`");
    }
    assert!(
        fixed.contains("read_bytes: 1MiB, write_bytes: 88KiB"),
        "{fixed}"
    );
    assert!(
        fixed.contains("{ guest: /data, host: ./fixtures/data, mode: rw }"),
        "{fixed}"
    );
    // The rerun under the fixed policy has none of those denies.
    let (code, rerun, _) = sb.run("policies/fixed.yaml", DENY_HEAVY, &["--quiet"]);
    assert_eq!(code, 0);
    for seq in [4, 5, 7] {
        let e = &rerun["events"].as_array().unwrap();
        let path = &report_path_of(&sb, seq);
        assert!(
            e.iter()
                .any(|e| &e["context"]["path"] == path && e["decision"] == "allow"),
            "event {seq} ({path}) is still denied"
        );
    }
    // Every deny by default: the deliberate deny rule and what no rule can allow stay, listed.
    let out = sb.cli(&[
        "policy",
        "fix",
        "--policy",
        DEMO,
        "--report-file",
        "denied.json",
        "--output",
        "policies/all.yaml",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(
        said.contains("event 2: left denied: deny rule `no-secrets` matched it on purpose"),
        "{said}"
    );
    assert!(
        said.contains("event 4: left denied: its mount is read-only"),
        "{said}"
    );
    // A fix that cannot work exits 1: a policy whose deny rule the fix cannot see past.
    sb.demo_variant(
        "policies/blocked.yaml",
        "  quotas: { read_bytes",
        "    - { id: no-out, effect: deny, ops: [write, create, delete, list], paths: [\"/out/**\"] }\n  quotas: { read_bytes",
    );
    let out = sb.cli(&[
        "policy",
        "fix",
        "--policy",
        "policies/blocked.yaml",
        "--report-file",
        "denied.json",
        "--output",
        "policies/still.yaml",
        "--event-index",
        "5",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("still denies 1 of the chosen"),
        "{}",
        stderr(&out)
    );
}

/// The path of event `seq` of `denied.json`.
fn report_path_of(sb: &Sandbox, seq: usize) -> Value {
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(sb.path("denied.json")).unwrap()).unwrap();
    report["events"][seq]["context"]["path"].clone()
}

// ---- safe learning ----

#[test]
fn policy_learn_refuses_a_run_that_taught_nothing_unless_allow_empty() {
    let sb = Sandbox::new();
    sb.write("noop.wat", r#"(module (func (export "_start")))"#);
    for (args, needle) in [
        (
            vec!["--plugin", DENY_HEAVY],
            "made 12 filesystem requests, none inside the base policy's mounts",
        ),
        (
            vec!["--plugin", "noop.wat", "--policy", DEMO],
            "recorded no events",
        ),
        (
            vec![
                "--plugin",
                "examples/plugins/spin_forever.wat",
                "--policy",
                DEMO,
            ],
            "ended `fuel_exhausted`",
        ),
    ] {
        let mut all = vec!["policy", "learn", "--output", "out.yaml"];
        all.extend_from_slice(&args);
        let out = sb.cli(&all);
        assert_start_failure(&out, needle);
        assert!(
            stderr(&out).contains("give `--allow-empty`"),
            "{}",
            stderr(&out)
        );
        assert!(!sb.path("out.yaml").exists(), "{args:?}: written anyway");
        all.push("--allow-empty");
        let out = sb.cli(&all);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(stderr(&out).contains(&format!("warning: the learning run {needle}")));
        std::fs::remove_file(sb.path("out.yaml")).unwrap();
    }
}

#[test]
fn policy_learn_grants_create_with_write_so_the_policy_works_on_a_clean_folder() {
    let sb = Sandbox::new();
    // The file exists during learning: the run only writes it, never creates it.
    sb.write(RESULT_LOG, "old\n");
    let out = learn(
        &sb,
        &[
            "--plugin",
            ALLOWED,
            "--policy",
            DEMO,
            "--output",
            "learned.yaml",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("learned policy written"));
    let learned = std::fs::read_to_string(sb.path("learned.yaml")).unwrap();
    assert!(
        learned.contains(r#"ops: [write, create], paths: ["/out/result.log"]"#),
        "{learned}"
    );
    // On a clean folder the file must be created: no deny.
    std::fs::remove_file(sb.path(RESULT_LOG)).unwrap();
    let (code, report, _) = sb.run("learned.yaml", ALLOWED, &["--quiet"]);
    assert_eq!(code, 0);
    assert_eq!(report["summary"]["denied"], 0, "{}", report["events"]);
}

#[test]
fn policy_learn_marks_every_grant_beyond_the_base_policy_for_review() {
    let sb = Sandbox::new();
    let out = learn(
        &sb,
        &[
            "--plugin",
            DENY_HEAVY,
            "--policy",
            DEMO,
            "--output",
            "learned.yaml",
        ],
    );
    let said = String::from_utf8(out.stdout).unwrap();
    let learned = std::fs::read_to_string(sb.path("learned.yaml")).unwrap();
    let lines: Vec<&str> = learned.lines().collect();
    let mut rules = 0;
    for (i, line) in lines.iter().enumerate() {
        let Some(id) = line
            .trim_start()
            .strip_prefix("- { id: ")
            .and_then(|rest| rest.split(',').next())
        else {
            continue;
        };
        if lines.iter().all(|l| !l.contains("- { guest:")) || !line.contains("ops:") {
            continue;
        }
        rules += 1;
        // Every learned rule here allows something the demo policy denied.
        assert!(
            lines[i - 1].trim_start().starts_with("# REVIEW: "),
            "rule `{id}` is not marked:\n{learned}"
        );
        let listed = said.contains(&format!("review: rule `{id}` allows "))
            || lines[i - 1].contains("deny rule");
        assert!(listed, "rule `{id}` is not in the summary:\n{said}");
    }
    assert_eq!(rules, 4, "{learned}");
    assert_eq!(lint_json(&sb, "learned.yaml")["errors"], 0);
}

// ---- the README as a test ----

/// A command of the README: `$ ` commands with the output shown under them, or a plain
/// command block's line (which must succeed).
#[derive(Debug)]
struct ReadmeCommand {
    line: usize,
    command: String,
    /// `None` for a plain command (its output is not shown in the README).
    expected: Option<Vec<String>>,
}

/// Every command in the README's indented code blocks (fenced blocks are code, not commands),
/// with `\` continuations joined.
fn readme_commands(readme: &str) -> Vec<ReadmeCommand> {
    let mut commands: Vec<ReadmeCommand> = Vec::new();
    let mut in_fence = false;
    let mut in_block = false;
    let mut plain_block = false;
    let mut continuing = false;
    let mut prev_blank = true;
    for (i, raw) in readme.lines().enumerate() {
        if raw.starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        let code = raw.strip_prefix("    ").filter(|_| !in_fence);
        match code {
            Some(text) if in_block || prev_blank => {
                if !in_block {
                    in_block = true;
                    plain_block = !text.starts_with("$ ");
                }
                if continuing {
                    let last = commands.last_mut().unwrap();
                    last.command.push(' ');
                    last.command
                        .push_str(text.trim().trim_end_matches('\\').trim_end());
                } else if let Some(cmd) = text.strip_prefix("$ ") {
                    commands.push(ReadmeCommand {
                        line: i + 1,
                        command: cmd.trim_end_matches('\\').trim_end().to_owned(),
                        expected: Some(Vec::new()),
                    });
                } else if plain_block {
                    commands.push(ReadmeCommand {
                        line: i + 1,
                        command: text.trim_end_matches('\\').trim_end().to_owned(),
                        expected: None,
                    });
                } else if let Some(last) = commands.last_mut() {
                    last.expected.as_mut().unwrap().push(text.to_owned());
                }
                continuing = text.ends_with('\\');
            }
            _ => {
                in_block = false;
                continuing = false;
            }
        }
        prev_blank = raw.trim().is_empty();
    }
    commands
}

/// Whether `actual` matches `expected`, where a `...` line stands for any lines (or none).
fn lines_match(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=actual.len()).any(|skip| lines_match(rest, &actual[skip..]))
        }
        Some((first, rest)) => actual
            .split_first()
            .is_some_and(|(a, more)| a.trim_end() == first.trim_end() && lines_match(rest, more)),
    }
}

/// Commands of the README the test does not run, with why; any other command must run.
const README_NOT_RUN: &[(&str, &str)] = &[
    ("./scripts/test.sh", "it is this test suite"),
    (
        "rustup target add wasm32-wasip1",
        "installed before the tests run",
    ),
    (
        "cargo build --release --target wasm32-wasip1 --manifest-path examples/guests/Cargo.toml",
        "the tests build the guests (the WASI tests' `guest`) and copy them in",
    ),
];

#[test]
fn every_readme_command_runs_and_prints_what_the_readme_shows() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let commands = readme_commands(&readme);
    assert!(commands.len() >= 10, "{commands:#?}");
    let sb = Sandbox::new();
    // The Rust guests, where the README's commands look for them.
    let built = Path::new(&wasi::guest("copy")).parent().unwrap().to_owned();
    let guests = sb.path("examples/guests/target/wasm32-wasip1/release");
    std::fs::create_dir_all(&guests).unwrap();
    for entry in std::fs::read_dir(&built).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wasm") {
            std::fs::copy(&path, guests.join(path.file_name().unwrap())).unwrap();
        }
    }
    // `sandbox-cli` on PATH, as after `cargo install`.
    let bin = sb.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_sandbox-cli"), bin.join("sandbox-cli")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let tracked = shipped_hashes(sb.dir.path());
    let mut ran = 0;
    for cmd in &commands {
        if let Some((_, why)) = README_NOT_RUN.iter().find(|(c, _)| *c == cmd.command) {
            assert!(!why.is_empty());
            continue;
        }
        let shell = cmd
            .command
            .strip_prefix("cargo run -p sandbox-cli -- ")
            .map(|rest| format!("sandbox-cli {rest}"))
            .unwrap_or_else(|| cmd.command.clone());
        let out = Command::new("sh")
            .args(["-c", &shell])
            .current_dir(sb.dir.path())
            .env("PATH", &path)
            .env("XDG_CACHE_HOME", sb.path("cache"))
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        ran += 1;
        assert_eq!(
            out.status.code(),
            Some(0),
            "README line {}: `{}` failed: {}",
            cmd.line,
            cmd.command,
            stderr(&out)
        );
        let Some(expected) = &cmd.expected else {
            continue;
        };
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let actual: Vec<&str> = printed.lines().collect();
        assert!(
            lines_match(expected, &actual),
            "README line {}: `{}` printed\n{printed}\nbut the README shows\n{}",
            cmd.line,
            cmd.command,
            expected.join("\n")
        );
    }
    assert!(ran >= 8, "only {ran} README commands ran");
    // No README command changed a shipped file.
    assert_eq!(
        shipped_hashes(sb.dir.path()),
        tracked,
        "a README command changed a file the repository ships"
    );
    for (c, _) in README_NOT_RUN {
        assert!(
            commands.iter().any(|cmd| cmd.command == *c),
            "`{c}` is no longer in the README: drop it from README_NOT_RUN"
        );
    }
}

/// (path, SHA-256) of every file git tracks under `policies/` and `examples/plugins/`, as the
/// copy in `root` holds it now ("missing" when a command deleted it).
fn shipped_hashes(root: &Path) -> Vec<(String, String)> {
    let out = Command::new("git")
        .args(["ls-files", "-z", "policies", "examples/plugins"])
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(out.status.success(), "git ls-files failed");
    let files: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .split('\0')
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    assert!(files.iter().any(|f| f == DEMO), "{files:?}");
    files
        .into_iter()
        .map(|f| {
            let hash = match std::fs::read(root.join(&f)) {
                Ok(bytes) => sandbox_runtime::sha256_hex(&bytes),
                Err(_) => "missing".to_owned(),
            };
            (f, hash)
        })
        .collect()
}

#[test]
fn readme_lines_match_with_elision() {
    let e = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(lines_match(&e(&["a", "...", "d"]), &["a", "b", "c", "d"]));
    assert!(lines_match(&e(&["a", "...", "d"]), &["a", "d"]));
    assert!(!lines_match(&e(&["a", "d"]), &["a", "b", "d"]));
    assert!(!lines_match(&e(&["a", "..."]), &["b"]));
}

#[test]
fn policy_learn_generalize_names_folders_and_says_what_that_widens() {
    let sb = Sandbox::new();
    let out = learn(
        &sb,
        &[
            "--plugin",
            DENY_HEAVY,
            "--policy",
            DEMO,
            "--output",
            "policies/general.yaml",
            "--generalize",
        ],
    );
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(
        said.contains("generalized: rule `write-create-out` now allows write, create on every file directly in `/out` (it named `/out/big.log`, `/out/notes.txt`)"),
        "{said}"
    );
    let text = std::fs::read_to_string(sb.path("policies/general.yaml")).unwrap();
    assert!(
        text.contains(r#"ops: [write, create], paths: ["/out/*"] }"#),
        "{text}"
    );
    assert!(
        text.contains("# REVIEW: generalized: rule `write-create-out`"),
        "{text}"
    );
    // A rule that only lists a folder stays exact.
    assert!(text.contains(r#"ops: [list], paths: ["/out"] }"#), "{text}");
    assert_eq!(lint_json(&sb, "policies/general.yaml")["errors"], 0);
    let (code, rerun, _) = sb.run("policies/general.yaml", DENY_HEAVY, &["--quiet"]);
    assert_eq!(code, 0);
    assert!(grantable_denies(&rerun).is_empty(), "{}", rerun["events"]);
}

/// With `--report-file`, the guest's stdout reaches the terminal while the guest still runs:
/// the line arrives while the process is alive (it then spins until its 3 s budget ends).
#[test]
fn run_streams_guest_output_as_the_guest_writes_it() {
    use std::io::BufRead;
    let sb = Sandbox::new();
    sb.write(
        "spin.yaml",
        "version: 1\nbudgets: { fuel: 1_000_000_000_000, timeout_ms: 3000, memory_bytes: 1MiB }\n",
    );
    sb.write(
        "talk_then_spin.wat",
        r#"(module
  (import "sandbox" "output_write" (func $out (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "ready\n")
  (func (export "_start") (drop (call $out (i32.const 0) (i32.const 6))) (loop br 0)))"#,
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_sandbox-cli"))
        .args([
            "run",
            "--policy",
            "spin.yaml",
            "--plugin",
            "talk_then_spin.wat",
        ])
        .args(["--report-file", "report.json", "--quiet"])
        .current_dir(sb.path(""))
        .env("XDG_CACHE_HOME", sb.path("cache"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let still_running = child.try_wait().unwrap().is_none();
    let status = child.wait().unwrap();
    assert_eq!(line, "ready\n");
    assert!(still_running, "the output came only after the run ended");
    assert_eq!(status.code(), Some(5), "the spin ends by the wall clock");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(sb.path("report.json")).unwrap()).unwrap();
    assert_eq!(
        report["stdio"]["stdout"], "ready\n",
        "still captured in the report"
    );
}

/// Learning in audit mode records a connection the base policy denies, answers it with the
/// deny's error, and never makes it; `--allow-network` makes it.
#[test]
fn policy_learn_never_connects_where_the_base_policy_denies_unless_allow_network() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let sb = Sandbox::new();
    // 127.0.0.1 is named by a rule, but the connection quota is 0: a quota deny, which audit
    // mode relaxes (a blocked address it would not).
    sb.write(
        "base.yaml",
        &format!(
            "version: 1\nbudgets: {{ fuel: 10_000_000, timeout_ms: 5000, memory_bytes: 1MiB }}\nnetwork:\n  rules: [{{ id: lan, effect: allow, cidrs: [\"127.0.0.1/32\"], ports: [{port}] }}]\n  quotas: {{ connections: 0, egress_bytes: 1KiB, ingress_bytes: 1KiB }}\n"
        ),
    );
    sb.write(
        "connect.wat",
        &format!(
            r#"(module
  (import "sandbox" "net_connect" (func $connect (param i32 i32 i32) (result i32)))
  (import "sandbox" "output_write" (func $out (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "127.0.0.1")
  (func (export "_start")
    (i32.store (i32.const 64) (call $connect (i32.const 0) (i32.const 9) (i32.const {port})))
    (drop (call $out (i32.const 64) (i32.const 4)))))"#
        ),
    );
    let accepted = |listener: &std::net::TcpListener| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let mut n = 0;
        while listener.accept().is_ok() {
            n += 1;
        }
        n
    };
    let learn = |extra: &[&str]| {
        let mut args = vec![
            "policy",
            "learn",
            "--plugin",
            "connect.wat",
            "--policy",
            "base.yaml",
            "--output",
            "learned.yaml",
            "--allow-empty",
        ];
        args.extend_from_slice(extra);
        let out = sb.cli(&args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    };
    learn(&[]);
    assert_eq!(
        accepted(&listener),
        0,
        "learning connected where BASE denies"
    );
    let learned = std::fs::read_to_string(sb.path("learned.yaml")).unwrap();
    assert!(
        learned.contains(&port.to_string()),
        "the connect is still learned:\n{learned}"
    );
    learn(&["--allow-network"]);
    assert_eq!(
        accepted(&listener),
        1,
        "--allow-network makes the connection"
    );
}
