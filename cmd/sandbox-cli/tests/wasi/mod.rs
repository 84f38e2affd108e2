//! The WASI preview 1 front end, end to end: real Rust programs built for `wasm32-wasip1`
//! (`examples/guests`) and small WAT modules run through the CLI, with their output, exit
//! codes, events and usage checked, and the host's files hashed around escape attempts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use super::{masked, repo_root, stderr, Sandbox};

mod conformance;

const GUESTS_POLICY: &str = "policies/guests.yaml";

/// Builds the Rust guests once per test binary (cargo's own lock serialises concurrent
/// builds) and returns the path of `name.wasm`.
pub(crate) fn guest(name: &str) -> String {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let guests = repo_root().join("examples/guests");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "--release", "--target", "wasm32-wasip1", "--target-dir"])
            .arg(guests.join("target"))
            .arg("--manifest-path")
            .arg(guests.join("Cargo.toml"))
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .output()
            .expect("cargo runs");
        assert!(
            out.status.success(),
            "building the Rust guests failed (is the target installed? `rustup target add wasm32-wasip1`):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        guests.join("target/wasm32-wasip1/release")
    });
    let path = dir.join(format!("{name}.wasm"));
    assert!(path.exists(), "{} was not built", path.display());
    path.display().to_string()
}

/// `(capability, decision, rule_id, reason_code, path)` of every event.
fn events(report: &Value) -> Vec<(String, String, String, String, String)> {
    report["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
            (
                s(&e["capability"]),
                s(&e["decision"]),
                s(&e["rule_id"]),
                s(&e["reason_code"]),
                s(&e["request"]["path"]),
            )
        })
        .collect()
}

fn stdout_of(report: &Value) -> &str {
    report["stdio"]["stdout"].as_str().unwrap()
}

fn sha256_tree(root: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path, sandbox_runtime::sha256_hex(&bytes)));
            } else {
                let target = std::fs::read_link(&path).unwrap();
                out.push((path, format!("link:{}", target.display())));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn copy_guest_copies_a_file_and_every_access_is_an_event() {
    let sb = Sandbox::new();
    let (code, report, _) = sb.run(
        GUESTS_POLICY,
        &guest("copy"),
        &["--", "/data/hello.txt", "/out/copy.txt"],
    );
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["outcome"]["status"], "completed");
    assert!(report["outcome"].get("exit_code").is_none());
    assert_eq!(
        stdout_of(&report),
        "copied 26 bytes from /data/hello.txt to /out/copy.txt\n"
    );
    let copied = std::fs::read(sb.path("policies/fixtures/out/copy.txt")).unwrap();
    assert_eq!(copied, b"hello from the data mount\n");
    assert_eq!(report["usage"]["fs_read_bytes"], 26);
    assert_eq!(report["usage"]["fs_write_bytes"], 26);
    let events = events(&report);
    assert!(events.iter().all(|e| e.1 == "allow"), "{events:?}");
    let seen: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| (e.0.as_str(), e.2.as_str(), e.4.as_str()))
        .collect();
    assert!(seen.contains(&("fs.read", "read-data", "/data/hello.txt")));
    assert!(seen.contains(&("fs.create", "work-in-out", "/out/copy.txt")));
    assert!(seen.contains(&("fs.write", "work-in-out", "/out/copy.txt")));
    assert_eq!(report["summary"]["denied"], 0);
}

#[test]
fn copy_guest_is_refused_a_secret_with_eacces_and_a_read_only_mount_with_erofs() {
    let sb = Sandbox::new();
    let (code, report, _) = sb.run(
        GUESTS_POLICY,
        &guest("copy"),
        &["--", "/data/secret/key.txt", "/out/key.txt"],
    );
    assert_eq!(code, 0, "a guest's own exit code is not the CLI's");
    assert_eq!(report["outcome"]["exit_code"], 1);
    assert!(
        report["stdio"]["stderr"]
            .as_str()
            .unwrap()
            .contains("Permission denied"),
        "{report}"
    );
    let denied: Vec<_> = events(&report)
        .into_iter()
        .filter(|e| e.1 == "deny")
        .collect();
    assert_eq!(
        denied,
        vec![(
            "fs.read".into(),
            "deny".into(),
            "no-secrets".into(),
            "FS_PATH_NOT_ALLOWED".into(),
            "/data/secret/key.txt".into()
        )]
    );
    assert!(!sb.path("policies/fixtures/out/key.txt").exists());

    let (_, report, _) = sb.run(
        GUESTS_POLICY,
        &guest("copy"),
        &["--", "/data/hello.txt", "/data/copy.txt"],
    );
    assert_eq!(report["outcome"]["exit_code"], 2);
    assert!(
        report["stdio"]["stderr"]
            .as_str()
            .unwrap()
            .contains("Read-only file system"),
        "{report}"
    );
    let reasons: Vec<String> = events(&report)
        .into_iter()
        .filter(|e| e.1 == "deny")
        .map(|e| e.3)
        .collect();
    assert_eq!(reasons, ["FS_READ_ONLY_MOUNT"]);
    assert!(!sb.path("policies/fixtures/data/copy.txt").exists());
}

#[test]
fn wordcount_walks_a_mount_and_skips_what_the_policy_hides() {
    let sb = Sandbox::new();
    sb.write(
        "policies/fixtures/data/notes/a.txt",
        "one two three\nfour\n",
    );
    sb.write("policies/fixtures/data/notes/b.txt", "five six");
    let (code, report, _) = sb.run(GUESTS_POLICY, &guest("wordcount"), &["--", "/data"]);
    assert_eq!(code, 0);
    assert_eq!(
        stdout_of(&report),
        "/data/hello.txt: 5\n/data/notes/a.txt: 4\n/data/notes/b.txt: 2\ntotal: 11\n"
    );
    let stderr_text = report["stdio"]["stderr"].as_str().unwrap();
    assert!(stderr_text.contains("skipped /data/secret: Permission denied"));
    assert!(stderr_text.contains("skipped /data/escape"));
    let denied: Vec<(String, String)> = events(&report)
        .into_iter()
        .filter(|e| e.1 == "deny")
        .map(|e| (e.3, e.4))
        .collect();
    assert_eq!(
        denied,
        [
            ("FS_PATH_NOT_ALLOWED".to_owned(), "/data/secret".to_owned()),
            (
                "FS_PATH_OUTSIDE_MOUNTS".to_owned(),
                "/data/escape".to_owned()
            ),
        ]
    );
    // Every byte the guest read was counted, and nothing more.
    assert_eq!(report["usage"]["fs_read_bytes"], 26 + 19 + 8);
}

#[test]
fn a_guest_cannot_read_outside_its_mounts_by_dotdot_absolute_path_or_planted_symlink() {
    let sb = Sandbox::new();
    let outside = sb.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "top secret\n").unwrap();
    sb.write("box/data/inside.txt", "inside\n");
    std::fs::create_dir_all(sb.path("box/data/sub")).unwrap();
    std::fs::create_dir_all(sb.path("box/out")).unwrap();
    let data = sb.path("box/data");
    std::os::unix::fs::symlink(outside.join("secret.txt"), data.join("link-abs")).unwrap();
    std::os::unix::fs::symlink("../../outside/secret.txt", data.join("link-rel")).unwrap();
    std::os::unix::fs::symlink("../../outside/", data.join("link-dir")).unwrap();
    let policy = std::fs::read_to_string(sb.path(GUESTS_POLICY))
        .unwrap()
        .replace("./fixtures/out", "../box/out")
        .replace("./fixtures/data", "../box/data");
    sb.write("policies/escape.yaml", &policy);
    let before = sha256_tree(sb.dir.path());

    let secret = outside.join("secret.txt").display().to_string();
    let (code, report, _) = sb.run("policies/escape.yaml", &guest("escape"), &["--", &secret]);
    assert_eq!(code, 0, "{report}");
    let lines: Vec<&str> = stdout_of(&report).lines().collect();
    assert_eq!(
        lines,
        [
            // A `..` above the directory fd, or an absolute path given to one, is EPERM
            // before anything is decided (the fd is the root of what it reaches).
            "dotdot: error 63",
            "dotdot-secret: error 63",
            // libc finds no preopen for a host path and never asks the host.
            "absolute: error 44",
            "raw-absolute: errno 63",
            "raw-dotdot: errno 63",
            "planted-absolute-link: error 76",
            "planted-relative-link: error 76",
            "planted-dir-link: error 76",
            "inside: OK inside",
            "dotdot-inside: OK inside",
        ],
        "{report}"
    );
    let outside_denies: Vec<String> = events(&report)
        .into_iter()
        .filter(|e| e.3 == "FS_PATH_OUTSIDE_MOUNTS")
        .map(|e| e.4)
        .collect();
    assert_eq!(
        outside_denies,
        [
            "/data/link-abs".to_owned(),
            "/data/link-rel".to_owned(),
            "/data/link-dir/secret.txt".to_owned(),
        ]
    );
    assert!(!report.to_string().contains("top secret"));
    assert_eq!(
        report["usage"]["fs_read_bytes"], 14,
        "only inside.txt, twice"
    );
    // The report and the CLI's module cache are the run's own output.
    let ours = |p: &PathBuf| p.ends_with("report.json") || p.starts_with(sb.path("cache"));
    let after: Vec<_> = sha256_tree(sb.dir.path())
        .into_iter()
        .filter(|(p, _)| !ours(p))
        .collect();
    let before: Vec<_> = before.into_iter().filter(|(p, _)| !ours(p)).collect();
    assert_eq!(before, after, "the run changed files on the host");
}

#[test]
fn log_writer_is_stopped_by_the_write_quota_and_the_counters_match_the_disk() {
    let sb = Sandbox::new();
    let (code, report, _) = sb.run(
        GUESTS_POLICY,
        &guest("logwriter"),
        &["--", "/out/app.log", "5000"],
    );
    assert_eq!(code, 0);
    assert_eq!(report["outcome"]["exit_code"], 3);
    let on_disk = std::fs::metadata(sb.path("policies/fixtures/out/app.log"))
        .unwrap()
        .len();
    assert!(on_disk <= 64 * 1024 && on_disk > 60 * 1024, "{on_disk}");
    assert_eq!(report["usage"]["fs_write_bytes"], on_disk);
    assert_eq!(
        stdout_of(&report),
        format!("wrote {on_disk} bytes, then: Quota exceeded (os error 19) (kind QuotaExceeded)\n")
    );
    let denied: Vec<_> = events(&report)
        .into_iter()
        .filter(|e| e.1 == "deny")
        .collect();
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0].2, "filesystem.quotas.write_bytes");
    assert_eq!(denied[0].3, "FS_WRITE_QUOTA_EXCEEDED");
    let event = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["decision"] == "deny")
        .unwrap();
    // The refused write is the first one that would cross the quota.
    let asked = event["request"]["bytes"].as_u64().unwrap();
    assert!(on_disk + asked > 64 * 1024, "{event}");
}

#[test]
fn probe_sees_its_args_policy_env_and_stdin_and_nothing_of_the_host() {
    let sb = Sandbox::new();
    sb.write("input.txt", "hello stdin\n");
    let out = Command::new(env!("CARGO_BIN_EXE_sandbox-cli"))
        .args(["run", "--policy", GUESTS_POLICY, "--plugin"])
        .arg(guest("probe"))
        .args(["--input", "input.txt", "--report-file", "report.json"])
        .args(["--", "one", "two words"])
        .env("HOST_SECRET_TOKEN", "leaked")
        .env("XDG_CACHE_HOME", sb.path("cache"))
        .current_dir(sb.dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value =
        serde_json::from_slice(&std::fs::read(sb.path("report.json")).unwrap()).unwrap();
    let text = stdout_of(&report);
    assert!(!text.contains("leaked") && !text.contains("HOST_SECRET_TOKEN"));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], r#"args: ["probe.wasm", "one", "two words"]"#);
    assert_eq!(lines[1], r#"env: [("LANG", "C"), ("PROBE_DIR", "/out")]"#);
    assert_eq!(lines[2], r#"stdin: "hello stdin""#);
    let tail: Vec<&str> = lines[6..].to_vec();
    assert_eq!(
        tail,
        [
            "mkdir: ok",
            "write: ok",
            "rename: ok",
            "symlink: ok",
            "readlink: b.txt",
            "read through link: alpha",
            r#"listing: ["b.txt", "link"]"#,
            "stat: 5 bytes, file true",
            "unlink link: ok",
            "unlink: ok",
            "rmdir: ok",
        ]
    );
    let capabilities: Vec<String> = events(&report).into_iter().map(|e| e.0).collect();
    for needed in [
        "fs.create",
        "fs.write",
        "fs.rename",
        "fs.symlink",
        "fs.stat",
        "fs.read",
        "fs.list",
        "fs.delete",
    ] {
        assert!(
            capabilities.iter().any(|c| c == needed),
            "{needed}: {capabilities:?}"
        );
    }
    assert!(!sb.path("policies/fixtures/out/probe").exists());
}

#[test]
fn deterministic_runs_give_identical_output_and_reports() {
    let sb = Sandbox::new();
    sb.write("input.txt", "same input\n");
    let run = |report: &str| {
        let out = sb.cli(&[
            "run",
            "--policy",
            GUESTS_POLICY,
            "--plugin",
            &guest("probe"),
            "--input",
            "input.txt",
            "--report-file",
            report,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let report: Value =
            serde_json::from_slice(&std::fs::read(sb.path(report)).unwrap()).unwrap();
        report
    };
    let first = run("first.json");
    let second = run("second.json");
    assert_eq!(masked(&first), masked(&second));
    let text = stdout_of(&first);
    // The virtual clock starts at 2000-01-01 and advances with fuel and sleeps only.
    let realtime: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("realtime_ns: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!((946_684_800_000_000_000..946_684_801_000_000_000).contains(&realtime));
    let elapsed: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("monotonic_ns_elapsed: "))
        .and_then(|l| l.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(elapsed >= 5_000_000, "the 5 ms sleep advances the clock");
}

#[test]
fn real_clocks_and_randomness_without_deterministic() {
    let sb = Sandbox::new();
    sb.demo_variant_of(
        GUESTS_POLICY,
        "policies/real.yaml",
        "deterministic: true",
        "deterministic: false",
    );
    let random = |sb: &Sandbox| {
        let (code, report, _) = sb.run("policies/real.yaml", &guest("probe"), &[]);
        assert_eq!(code, 0);
        let text = stdout_of(&report).to_owned();
        let realtime: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("realtime_ns: "))
            .unwrap()
            .parse()
            .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        assert!(
            now - realtime < 60_000_000_000,
            "realtime is the host's time"
        );
        text.lines()
            .find(|l| l.starts_with("random: "))
            .unwrap()
            .to_owned()
    };
    assert_ne!(random(&sb), random(&sb));
}

#[test]
fn proc_exit_is_a_normal_outcome_with_the_exit_code_in_the_report() {
    let sb = Sandbox::new();
    sb.demo_variant_of(
        GUESTS_POLICY,
        "policies/exit.yaml",
        "PROBE_DIR: /out",
        "PROBE_DIR: /out, PROBE_EXIT: \"7\"",
    );
    let (code, report, _) = sb.run("policies/exit.yaml", &guest("probe"), &[]);
    assert_eq!(code, 0);
    assert_eq!(report["outcome"]["status"], "completed");
    assert_eq!(report["outcome"]["exit_code"], 7);
    assert_eq!(
        report["outcome"]["message"],
        "the plugin exited with code 7"
    );
    assert!(stdout_of(&report).ends_with("exiting with 7\n"));
}

#[test]
fn stdout_is_capped_by_the_policy_and_written_raw_with_stdout_flag() {
    let sb = Sandbox::new();
    sb.demo_variant_of(
        GUESTS_POLICY,
        "policies/small-stdout.yaml",
        "stdout_bytes: 64KiB",
        "stdout_bytes: 20",
    );
    let (code, report, _) = sb.run(
        "policies/small-stdout.yaml",
        &guest("copy"),
        &["--stdout", "out.bin", "--", "/data/hello.txt", "/out/c.txt"],
    );
    assert_eq!(code, 0);
    assert_eq!(stdout_of(&report), "copied 26 bytes from");
    assert_eq!(report["stdio"]["stdout_truncated"], true);
    assert_eq!(
        std::fs::read(sb.path("out.bin")).unwrap(),
        b"copied 26 bytes from"
    );
}

#[test]
fn net_echo_guest_uses_sandbox_guest_to_reach_an_allowed_server_only() {
    let sb = Sandbox::new();
    let (port, server) = super::echo_once();
    let policy = std::fs::read_to_string(sb.path(GUESTS_POLICY))
        .unwrap()
        .replace(
            "stdio:",
            &format!(
                "network:\n  rules:\n    - {{ id: echo, effect: allow, hosts: [echo.test], cidrs: [\"127.0.0.1/32\"], ports: [{port}] }}\n  resolve: {{ echo.test: 127.0.0.1 }}\n  quotas: {{ connections: 2, egress_bytes: 1KiB, ingress_bytes: 1KiB }}\nstdio:"
            ),
        );
    sb.write("policies/net.yaml", &policy);
    let port_text = port.to_string();
    let (code, report, _) = sb.run(
        "policies/net.yaml",
        &guest("net_echo"),
        &["--", "echo.test", &port_text, "ping over tcp"],
    );
    assert_eq!(code, 0, "{report}");
    assert_eq!(stdout_of(&report), "reply: ping over tcp\n");
    assert_eq!(server.join().unwrap(), b"ping over tcp");
    assert_eq!(report["usage"]["net_connections"], 1);
    assert_eq!(report["usage"]["net_egress_bytes"], 13);

    let (code, report, _) = sb.run(
        "policies/net.yaml",
        &guest("net_echo"),
        &["--", "example.com", "443", "x"],
    );
    assert_eq!(code, 0);
    assert_eq!(report["outcome"]["exit_code"], 1);
    assert_eq!(
        stdout_of(&report),
        "connect example.com:443: denied by the sandbox policy (Denied)\n"
    );
    let reasons: Vec<String> = events(&report).into_iter().map(|e| e.3).collect();
    assert_eq!(reasons, ["NET_HOST_NOT_ALLOWED"]);
}

#[test]
fn on_deny_trap_ends_a_wasi_run_at_the_first_deny() {
    let sb = Sandbox::new();
    sb.demo_variant_of(
        GUESTS_POLICY,
        "policies/trap.yaml",
        "on_deny: error",
        "on_deny: trap",
    );
    let (code, report, _) = sb.run(
        "policies/trap.yaml",
        &guest("copy"),
        &["--", "/data/secret/key.txt", "/out/key.txt"],
    );
    assert_eq!(code, 3);
    assert_eq!(report["outcome"]["status"], "trapped");
    assert!(report["outcome"]["message"]
        .as_str()
        .unwrap()
        .contains("no-secrets"));
}

/// A WAT module using raw preview 1 calls, with a `/out` mount first (fd 3).
fn wat_guest(sb: &Sandbox, name: &str, body: &str) -> String {
    let rel = format!("{name}.wat");
    sb.write(
        &rel,
        &format!(
            r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_set_size"
    (func $set_size (param i32 i64) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "f0.txt")
  (data (i32.const 32) "grow.bin")
  (global $fd (mut i32) (i32.const 0))
  ;; Opens the 6-byte path at 16 (digit at 17 patched by the caller) for writing, creating it.
  (func $open (param $ptr i32) (param $len i32) (result i32)
    (call $path_open (i32.const 3) (i32.const 0) (local.get $ptr) (local.get $len)
      (i32.const 1) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 8)))
  (func (export "_start") {body}))"#
        ),
    );
    rel
}

#[test]
fn open_files_past_the_limit_are_refused_with_emfile() {
    let sb = Sandbox::new();
    sb.demo_variant_of(
        GUESTS_POLICY,
        "policies/few-files.yaml",
        "open_files: 16",
        "open_files: 3",
    );
    // Opens f0..f4 without closing; exits with the errno of each open, as digits.
    let plugin = wat_guest(
        &sb,
        "open_many",
        r#"(local $i i32) (local $codes i32)
    (loop $next
      (i32.store8 (i32.const 17) (i32.add (i32.const 48) (local.get $i)))
      (local.set $codes (i32.add (i32.mul (local.get $codes) (i32.const 100))
        (call $open (i32.const 16) (i32.const 6))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const 4))))
    (call $proc_exit (local.get $codes))"#,
    );
    let (code, report, _) = sb.run("policies/few-files.yaml", &plugin, &[]);
    assert_eq!(code, 0, "{report}");
    // Three opens succeed (errno 0), the fourth gets EMFILE (33).
    assert_eq!(report["outcome"]["exit_code"], 33);
    let denied: Vec<(String, String)> = events(&report)
        .into_iter()
        .filter(|e| e.1 == "deny")
        .map(|e| (e.2, e.3))
        .collect();
    assert_eq!(
        denied,
        [(
            "limits.open_files".to_owned(),
            "FS_OPEN_FILES_EXCEEDED".to_owned()
        )]
    );
    assert!(!sb.path("policies/fixtures/out/f3.txt").exists());
}

#[test]
fn growing_a_file_by_setting_its_size_counts_against_the_write_quota() {
    let sb = Sandbox::new();
    let plugin = wat_guest(
        &sb,
        "grow",
        r#"(local $first i32) (local $second i32)
    (drop (call $open (i32.const 32) (i32.const 8)))
    ;; 1 MiB is past the 64 KiB quota; 1000 bytes is not.
    (local.set $first (call $set_size (i32.load (i32.const 8)) (i64.const 1048576)))
    (local.set $second (call $set_size (i32.load (i32.const 8)) (i64.const 1000)))
    (call $proc_exit (i32.add (i32.mul (local.get $first) (i32.const 100)) (local.get $second)))"#,
    );
    let (code, report, _) = sb.run(GUESTS_POLICY, &plugin, &[]);
    assert_eq!(code, 0, "{report}");
    // EDQUOT (19) for the first, success for the second.
    assert_eq!(report["outcome"]["exit_code"], 1900);
    let size = std::fs::metadata(sb.path("policies/fixtures/out/grow.bin"))
        .unwrap()
        .len();
    assert_eq!(size, 1000);
    assert_eq!(report["usage"]["fs_write_bytes"], 1000);
    let denied: Vec<String> = events(&report)
        .into_iter()
        .filter(|e| e.1 == "deny")
        .map(|e| e.3)
        .collect();
    assert_eq!(denied, ["FS_WRITE_QUOTA_EXCEEDED"]);
}

#[test]
fn a_bad_pointer_in_a_wasi_call_is_efault_and_an_event_not_a_crash() {
    let sb = Sandbox::new();
    // fd_write to stdout with an iovec array that starts 4 bytes before the end of memory.
    let plugin = wat_guest(
        &sb,
        "bad_pointer",
        r#"(call $proc_exit (call $fd_write (i32.const 1) (i32.const 65532) (i32.const 1) (i32.const 0)))"#,
    );
    let (code, report, _) = sb.run(GUESTS_POLICY, &plugin, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["outcome"]["exit_code"], 21);
    let event = &report["events"][0];
    assert_eq!(event["reason_code"], "BAD_GUEST_POINTER");
    assert_eq!(event["context"]["function"], "fd_write");
}

#[test]
fn a_module_importing_an_unknown_wasi_function_fails_to_load() {
    let sb = Sandbox::new();
    sb.write(
        "unknown.wat",
        r#"(module (import "wasi_snapshot_preview1" "thread_spawn" (func (param i32) (result i32)))
             (func (export "_start")))"#,
    );
    let out = sb.cli(&["run", "--policy", GUESTS_POLICY, "--plugin", "unknown.wat"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("`wasi_snapshot_preview1::thread_spawn`"));
}

/// A WAT module with the raw preview 1 calls the hostile cases use. Under `guests.yaml`, fd 3 is
/// the read-write `/out` and fd 4 the read-only `/data`. `$exit_with` ends the run with a value
/// the test reads back as the report's `exit_code`.
fn hostile_guest(sb: &Sandbox, name: &str, data: &str, body: &str) -> String {
    let rel = format!("{name}.wat");
    sb.write(
        &rel,
        &format!(
            r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_symlink"
    (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_link"
    (func $path_link (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_rename"
    (func $path_rename (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_create_directory"
    (func $path_create_directory (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit_with (param i32)))
  (memory (export "memory") 1)
  {data}
  (func (export "_start") {body}))"#
        ),
    );
    rel
}

/// `(errno of each step)` packed two decimal digits per step, as the guests below exit.
fn errnos(report: &Value) -> i64 {
    report["outcome"]["exit_code"].as_i64().unwrap()
}

#[test]
fn a_read_only_mount_opened_with_truncate_or_create_is_refused_and_unchanged() {
    let sb = Sandbox::new();
    // path_open on /data (fd 4): "hello.txt" with O_TRUNC, then "new.txt" with O_CREAT.
    let plugin = hostile_guest(
        &sb,
        "ro_trunc",
        r#"(data (i32.const 100) "hello.txt") (data (i32.const 120) "new.txt")"#,
        r#"(call $exit_with (i32.add
      (i32.mul (i32.const 100) (call $path_open (i32.const 4) (i32.const 0) (i32.const 100)
        (i32.const 9) (i32.const 8) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 0)))
      (call $path_open (i32.const 4) (i32.const 0) (i32.const 120) (i32.const 7)
        (i32.const 1) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 0))))"#,
    );
    let (code, report, _) = sb.run(GUESTS_POLICY, &plugin, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(errnos(&report), 6969, "EROFS twice");
    let denied: Vec<(String, String, String)> = events(&report)
        .into_iter()
        .filter(|e| e.1 == "deny")
        .map(|e| (e.0, e.3, e.4))
        .collect();
    assert_eq!(
        denied,
        [
            (
                "fs.write".to_owned(),
                "FS_READ_ONLY_MOUNT".to_owned(),
                "/data/hello.txt".to_owned()
            ),
            (
                "fs.create".to_owned(),
                "FS_READ_ONLY_MOUNT".to_owned(),
                "/data/new.txt".to_owned()
            ),
        ]
    );
    assert_eq!(
        std::fs::read(sb.path("policies/fixtures/data/hello.txt")).unwrap(),
        b"hello from the data mount\n"
    );
    assert!(!sb.path("policies/fixtures/data/new.txt").exists());
}

#[test]
fn guest_made_symlinks_and_hard_links_cannot_reach_outside() {
    let sb = Sandbox::new();
    // 1: symlink /out/abs -> /etc/passwd (absolute: refused). 2: symlink /out/rel ->
    // ../../../../etc/passwd (relative but leaving the mount: refused). 3: open /out/rel
    // for reading (there is no such link). 4: hard link /data/hello.txt -> /out/h.txt
    // (refused).
    let plugin = hostile_guest(
        &sb,
        "links",
        r#"(data (i32.const 100) "/etc/passwd") (data (i32.const 120) "abs")
           (data (i32.const 140) "../../../../etc/passwd") (data (i32.const 170) "rel")
           (data (i32.const 180) "hello.txt") (data (i32.const 190) "h.txt")"#,
        r#"(local $codes i32)
    (local.set $codes (call $path_symlink (i32.const 100) (i32.const 11) (i32.const 3) (i32.const 120) (i32.const 3)))
    (local.set $codes (i32.add (i32.mul (local.get $codes) (i32.const 100))
      (call $path_symlink (i32.const 140) (i32.const 22) (i32.const 3) (i32.const 170) (i32.const 3))))
    (local.set $codes (i32.add (i32.mul (local.get $codes) (i32.const 100))
      (call $path_open (i32.const 3) (i32.const 1) (i32.const 170) (i32.const 3)
        (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 0))))
    (local.set $codes (i32.add (i32.mul (local.get $codes) (i32.const 100))
      (call $path_link (i32.const 4) (i32.const 0) (i32.const 180) (i32.const 9) (i32.const 3) (i32.const 190) (i32.const 5))))
    (call $exit_with (local.get $codes))"#,
    );
    let (code, report, _) = sb.run(GUESTS_POLICY, &plugin, &[]);
    assert_eq!(code, 0, "{report}");
    // EINVAL, EINVAL, ENOENT, EROFS (a hard link needs `write` on the old path, which the
    // read-only mount refuses).
    assert_eq!(errnos(&report), 28_28_44_69);
    let out = sb.path("policies/fixtures/out");
    for name in ["abs", "rel", "h.txt"] {
        assert!(std::fs::symlink_metadata(out.join(name)).is_err(), "{name}");
    }
    // Both symlinks were allowed by the rules, then refused for their targets.
    let failed: Vec<String> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["capability"] == "fs.symlink")
        .map(|e| e["context"]["error"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(failed, ["invalid", "invalid"], "{report}");
}

/// A link whose `..` stays inside the mount where it is made can leave the mount once the
/// link is moved higher: guest-made link targets may not contain `..` at all, so no sequence
/// of symlink and rename calls leaves a link on the host that points out of its mount.
#[test]
fn a_guest_made_link_moved_by_rename_never_points_out_of_its_mount() {
    let sb = Sandbox::new();
    // 1: mkdir /out/a. 2: mkdir /out/a/b. 3: symlink /out/a/b/l -> ../x (inside /out while
    // the link sits in /out/a/b). 4: rename /out/a/b/l -> /out/l (there it would be /x).
    // 5: symlink /out/a/d -> b/. (down only: allowed).
    let plugin = hostile_guest(
        &sb,
        "moved-link",
        r#"(data (i32.const 100) "a") (data (i32.const 110) "a/b") (data (i32.const 120) "../x")
           (data (i32.const 130) "a/b/l") (data (i32.const 140) "l") (data (i32.const 150) "b/.")
           (data (i32.const 160) "a/d")"#,
        r#"(local $codes i32)
    (local.set $codes (call $path_create_directory (i32.const 3) (i32.const 100) (i32.const 1)))
    (local.set $codes (i32.add (i32.mul (local.get $codes) (i32.const 100))
      (call $path_create_directory (i32.const 3) (i32.const 110) (i32.const 3))))
    (local.set $codes (i32.add (i32.mul (local.get $codes) (i32.const 100))
      (call $path_symlink (i32.const 120) (i32.const 4) (i32.const 3) (i32.const 130) (i32.const 5))))
    (local.set $codes (i32.add (i32.mul (local.get $codes) (i32.const 100))
      (call $path_rename (i32.const 3) (i32.const 130) (i32.const 5) (i32.const 3) (i32.const 140) (i32.const 1))))
    (local.set $codes (i32.add (i32.mul (local.get $codes) (i32.const 100))
      (call $path_symlink (i32.const 150) (i32.const 3) (i32.const 3) (i32.const 160) (i32.const 3))))
    (call $exit_with (local.get $codes))"#,
    );
    let (code, report, _) = sb.run(GUESTS_POLICY, &plugin, &[]);
    assert_eq!(code, 0, "{report}");
    // success, success, EINVAL, ENOENT, success (the leading zeros drop out).
    assert_eq!(errnos(&report), 28_44_00);
    let out = sb.path("policies/fixtures/out");
    assert!(std::fs::symlink_metadata(out.join("l")).is_err());
    assert!(std::fs::symlink_metadata(out.join("a/b/l")).is_err());
    assert_eq!(
        std::fs::read_link(out.join("a/d")).unwrap(),
        std::path::Path::new("b/.")
    );
}

#[test]
fn renames_cannot_move_files_out_of_a_mount_or_off_a_read_only_one() {
    let sb = Sandbox::new();
    sb.write("policies/fixtures/out/mine.txt", "mine\n");
    // 1: /out/mine.txt -> /out/../../escaped.txt. 2: /data/hello.txt -> /out/stolen.txt.
    // 3: /out/mine.txt -> /data/planted.txt. 4: /out/mine.txt -> /out/renamed.txt (allowed).
    let plugin = hostile_guest(
        &sb,
        "renames",
        r#"(data (i32.const 100) "mine.txt") (data (i32.const 120) "../../escaped.txt")
           (data (i32.const 140) "hello.txt") (data (i32.const 160) "stolen.txt")
           (data (i32.const 180) "planted.txt") (data (i32.const 200) "renamed.txt")"#,
        r#"(local $codes i32)
    (local.set $codes (call $path_rename (i32.const 3) (i32.const 100) (i32.const 8) (i32.const 3) (i32.const 120) (i32.const 17)))
    (local.set $codes (i32.add (i32.mul (local.get $codes) (i32.const 100))
      (call $path_rename (i32.const 4) (i32.const 140) (i32.const 9) (i32.const 3) (i32.const 160) (i32.const 10))))
    (local.set $codes (i32.add (i32.mul (local.get $codes) (i32.const 100))
      (call $path_rename (i32.const 3) (i32.const 100) (i32.const 8) (i32.const 4) (i32.const 180) (i32.const 11))))
    (local.set $codes (i32.add (i32.mul (local.get $codes) (i32.const 100))
      (call $path_rename (i32.const 3) (i32.const 100) (i32.const 8) (i32.const 3) (i32.const 200) (i32.const 11))))
    (call $exit_with (local.get $codes))"#,
    );
    let before = sha256_tree(&sb.path("policies/fixtures/data"));
    let (code, report, _) = sb.run(GUESTS_POLICY, &plugin, &[]);
    assert_eq!(code, 0, "{report}");
    // EPERM (`..` above the directory fd), EROFS, EROFS, success.
    assert_eq!(errnos(&report), 63_69_69_00);
    assert_eq!(before, sha256_tree(&sb.path("policies/fixtures/data")));
    assert!(!sb.path("escaped.txt").exists() && !sb.path("policies/escaped.txt").exists());
    assert!(!sb.path("policies/fixtures/out/stolen.txt").exists());
    assert_eq!(
        std::fs::read(sb.path("policies/fixtures/out/renamed.txt")).unwrap(),
        b"mine\n"
    );
}

#[test]
fn a_symlink_swapped_in_while_the_guest_opens_in_a_loop_never_escapes() {
    let sb = Sandbox::new();
    let outside = sb.path("outside-secret.txt");
    std::fs::write(&outside, "top secret\n").unwrap();
    let data = sb.path("policies/fixtures/data");
    std::fs::write(data.join("plain.txt"), "plain\n").unwrap();
    // The guest opens /data/swap 3000 times; each time it reads up to 16 bytes and echoes them.
    let plugin = hostile_guest(
        &sb,
        "race",
        r#"(data (i32.const 100) "swap")"#,
        r#"(local $i i32)
    (loop $again
      (if (i32.eqz (call $path_open (i32.const 4) (i32.const 1) (i32.const 100) (i32.const 4)
            (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 8)))
        (then
          ;; iovec at 16: { ptr 64, len 16 }; the count read lands at 32.
          (i32.store (i32.const 16) (i32.const 64))
          (i32.store (i32.const 20) (i32.const 16))
          (drop (call $fd_read (i32.load (i32.const 8)) (i32.const 16) (i32.const 1) (i32.const 32)))
          (i32.store (i32.const 20) (i32.load (i32.const 32)))
          (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 36)))
          (drop (call $fd_close (i32.load (i32.const 8))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 3000))))"#,
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let swap = data.join("swap");
        // A relative link stays inside the mount; the absolute one names a host file outside.
        let (plain, outside) = (PathBuf::from("plain.txt"), outside.clone());
        std::thread::spawn(move || {
            let mut flips = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::remove_file(&swap);
                let target = if flips.is_multiple_of(2) {
                    &plain
                } else {
                    &outside
                };
                let _ = std::os::unix::fs::symlink(target, &swap);
                flips += 1;
            }
            flips
        })
    };
    sb.demo_variant_of(
        GUESTS_POLICY,
        "policies/race.yaml",
        "stdout_bytes: 64KiB",
        "stdout_bytes: 1MiB",
    );
    let (code, report, _) = sb.run("policies/race.yaml", &plugin, &[]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let flips = swapper.join().unwrap();
    assert_eq!(code, 0, "{report}");
    assert!(flips > 10, "the swapper ran ({flips} flips)");
    let text = stdout_of(&report);
    assert!(!text.contains("secret"), "the race escaped: {text}");
    assert!(!report.to_string().contains("top secret"));
    // Both states were met: reads of the plain file, and denies of the link out.
    assert!(text.contains("plain"), "no open ever succeeded");
    assert!(
        events(&report)
            .iter()
            .any(|e| e.3 == "FS_PATH_OUTSIDE_MOUNTS"),
        "the link out was never seen"
    );
    // Only `plain.txt`'s bytes were ever read.
    assert_eq!(
        report["usage"]["fs_read_bytes"].as_u64().unwrap() % 6,
        0,
        "{}",
        report["usage"]
    );
}

#[test]
fn a_write_past_the_end_of_a_file_is_charged_for_the_hole_it_makes() {
    let sb = Sandbox::new();
    sb.write(
        "pwrite.wat",
        r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pwrite"
    (func $fd_pwrite (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit_with (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "sparse.bin")
  (data (i32.const 200) "0123456789")
  (func (export "_start")
    (drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 10)
      (i32.const 1) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 8)))
    ;; iovec at 16: { ptr 200, len 10 }
    (i32.store (i32.const 16) (i32.const 200))
    (i32.store (i32.const 20) (i32.const 10))
    ;; 10 bytes at 1 MiB (a hole past the 64 KiB quota), then 10 bytes at 30000.
    (call $exit_with (i32.add
      (i32.mul (i32.const 100) (call $fd_pwrite (i32.load (i32.const 8)) (i32.const 16)
        (i32.const 1) (i64.const 1048576) (i32.const 24)))
      (call $fd_pwrite (i32.load (i32.const 8)) (i32.const 16) (i32.const 1)
        (i64.const 30000) (i32.const 24))))))"#,
    );
    let (code, report, _) = sb.run(GUESTS_POLICY, "pwrite.wat", &[]);
    assert_eq!(code, 0, "{report}");
    // EDQUOT for the first, success for the second.
    assert_eq!(errnos(&report), 1900);
    let file = std::fs::read(sb.path("policies/fixtures/out/sparse.bin")).unwrap();
    assert_eq!(file.len(), 30_010);
    assert_eq!(&file[30_000..], b"0123456789");
    assert!(file[..30_000].iter().all(|b| *b == 0));
    // The hole counts: the write quota bounds how far files grow.
    assert_eq!(report["usage"]["fs_write_bytes"], 30_010);
    let denied: Vec<(String, String)> = events(&report)
        .into_iter()
        .filter(|e| e.1 == "deny")
        .map(|e| (e.2, e.3))
        .collect();
    assert_eq!(
        denied,
        [(
            "filesystem.quotas.write_bytes".to_owned(),
            "FS_WRITE_QUOTA_EXCEEDED".to_owned()
        )]
    );
}

#[test]
fn wasi_edge_cases_follow_posix_and_bound_the_hosts_work() {
    let sb = Sandbox::new();
    sb.write("policies/fixtures/out/file.txt", "x");
    sb.write(
        "edges.wat",
        r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_renumber" (func $fd_renumber (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_remove_directory"
    (func $rmdir (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit_with (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "created.txt")
  (data (i32.const 120) "file.txt")
  (func (export "_start") (local $codes i32)
    ;; 1: O_CREAT with read rights only makes the file (C's open(p, O_CREAT|O_RDONLY)).
    (local.set $codes (call $path_open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 11)
      (i32.const 1) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 8)))
    ;; 2: fd_renumber(3, 3) is a no-op; 3: the preopen is still there.
    (local.set $codes (i32.add (i32.mul (local.get $codes) (i32.const 100))
      (call $fd_renumber (i32.const 3) (i32.const 3))))
    (local.set $codes (i32.add (i32.mul (local.get $codes) (i32.const 100))
      (call $fd_prestat_get (i32.const 3) (i32.const 16))))
    ;; 4: removing a file as a directory is ENOTDIR.
    (local.set $codes (i32.add (i32.mul (local.get $codes) (i32.const 100))
      (call $rmdir (i32.const 3) (i32.const 120) (i32.const 8))))
    ;; 5: a million iovecs in one write are refused before the host does any work.
    (call $exit_with (i32.add (i32.mul (local.get $codes) (i32.const 100))
      (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1000000) (i32.const 24))))))"#,
    );
    let (code, report, _) = sb.run(GUESTS_POLICY, "edges.wat", &[]);
    assert_eq!(code, 0, "{report}");
    // success, success, success, ENOTDIR (54), EINVAL (28)
    assert_eq!(errnos(&report), 54_28);
    assert!(sb.path("policies/fixtures/out/created.txt").exists());
    assert!(sb.path("policies/fixtures/out/file.txt").exists());
}

/// In deterministic mode the guest sees no host identity: two copies of the same folders give
/// the same `filestat` and `readdir` bytes (device, inode and link count are virtual, a
/// function of the guest path), and two runs give byte-identical reports.
#[test]
fn deterministic_runs_over_copies_of_the_folders_give_identical_bytes() {
    let wat = r#"(module
  (import "wasi_snapshot_preview1" "path_filestat_get"
    (func $stat (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_readdir" (func $readdir (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "hello.txt")
  (func (export "_start")
    (drop (call $stat (i32.const 4) (i32.const 0) (i32.const 100) (i32.const 9) (i32.const 1024)))
    (drop (call $readdir (i32.const 4) (i32.const 2048) (i32.const 2048) (i64.const 0) (i32.const 16)))
    ;; stdout: the 64-byte filestat, then the listing
    (i32.store (i32.const 0) (i32.const 1024)) (i32.store (i32.const 4) (i32.const 64))
    (i32.store (i32.const 8) (i32.const 2048)) (i32.store (i32.const 12) (i32.load (i32.const 16)))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 2) (i32.const 32)))))"#;
    let one = Sandbox::new();
    let two = Sandbox::new();
    let mut outputs = Vec::new();
    for sb in [&one, &one, &two] {
        sb.write("stat.wat", wat);
        let (code, report, _) = sb.run(GUESTS_POLICY, "stat.wat", &["--stdout", "raw.bin"]);
        assert_eq!(code, 0, "{report}");
        let text = std::fs::read_to_string(sb.path("report.json")).unwrap();
        outputs.push((std::fs::read(sb.path("raw.bin")).unwrap(), text));
    }
    assert!(
        outputs[0].0.len() > 64,
        "filestat and listing: {:?}",
        outputs[0].0
    );
    assert_eq!(
        outputs[0].0, outputs[2].0,
        "another copy of the folders showed through"
    );
    assert_eq!(
        outputs[0].1, outputs[1].1,
        "two runs gave different report bytes"
    );
}
