//! The WASI preview 1 front end, end to end: real Rust programs built for `wasm32-wasip1`
//! (`examples/guests`) and small WAT modules run through the CLI, with their output, exit
//! codes, events and usage checked, and the host's files hashed around escape attempts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use super::{masked, repo_root, stderr, Sandbox};

const GUESTS_POLICY: &str = "policies/guests.yaml";

/// Builds the Rust guests once per test binary (cargo's own lock serialises concurrent
/// builds) and returns the path of `name.wasm`.
fn guest(name: &str) -> String {
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
            "dotdot: error 76",
            "dotdot-secret: error 76",
            // libc finds no preopen for a host path and never asks the host.
            "absolute: error 44",
            "raw-absolute: errno 76",
            "raw-dotdot: errno 76",
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
            "/data/../../../../etc/passwd".to_owned(),
            format!("/data/../../../../../../..{secret}"),
            secret.clone(),
            "/out/../../../../../../etc/passwd".to_owned(),
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
    let after: Vec<_> = sha256_tree(sb.dir.path())
        .into_iter()
        .filter(|(p, _)| !p.ends_with("report.json"))
        .collect();
    let before: Vec<_> = before
        .into_iter()
        .filter(|(p, _)| !p.ends_with("report.json"))
        .collect();
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
