//! Decisions that used to be made outside `decide`, now requests the policy decides with a
//! rule, a reason and an event: which names may reach the resolver, one more open connection
//! (before connecting), link targets and their bytes, created entries, overlapping mounts.

use crate::harness::*;

const WASI: &str = r#"
  (import "wasi_snapshot_preview1" "path_symlink" (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_create_directory" (func $mkdir (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (import "sandbox" "output_write" (func $out (param i32 i32) (result i32)))
"#;

/// Runs a WASI module whose `_start` stores each result at 1024 + 4*i and writes them out.
fn wasi_results(case: &Case, data: &str, calls: &[&str]) -> Run {
    let mut body = String::new();
    for (i, call) in calls.iter().enumerate() {
        body.push_str(&format!(
            "(i32.store (i32.const {}) {call})\n",
            1024 + 4 * i
        ));
    }
    case.run(&format!(
        "(module {WASI} (memory (export \"memory\") 1) {data}
           (func (export \"_start\") {body}
             (drop (call $out (i32.const 1024) (i32.const {})))))",
        4 * calls.len()
    ))
}

/// With only a CIDR rule, a name no host pattern names never reaches the resolver: before,
/// `localhost` was looked up (a CIDR might allow its address) and connected.
#[test]
fn a_cidr_rule_alone_sends_no_name_to_the_resolver() {
    let server = Server::start(Serve::Echo);
    let case = Case::new();
    case.policy(&format!(
        "version: 1\nnetwork:\n  rules: [{{ id: lan, effect: allow, cidrs: [\"127.0.0.0/8\"], ports: [{}] }}]\n",
        server.port
    ));
    let run = case.run(
        &Plugin::new()
            .connect(b"localhost", i32::from(server.port))
            .wat(),
    );
    assert_eq!(run.results(), vec![-1]);
    assert_eq!(
        run.triples(),
        t(&[("deny", "network.default", "NET_HOST_NOT_ALLOWED")])
    );
    assert_eq!(run.events()[0]["capability"], "net.resolve");
    assert_eq!(server.accepted(), 0);
}

/// The 65th connection held open at once is refused before it is made: the server sees 64.
#[test]
fn one_more_open_connection_than_the_table_holds_never_reaches_the_peer() {
    let server = Server::start(Serve::Silent);
    let case = Case::new();
    case.policy(&format!(
        "version: 1\nbudgets: {{ fuel: 100_000_000, timeout_ms: 20000, memory_bytes: 1MiB }}\nnetwork:\n  rules: [{{ id: lan, effect: allow, cidrs: [\"127.0.0.1/32\"], ports: [{}] }}]\n  quotas: {{ connections: 1000 }}\n",
        server.port
    ));
    let mut plugin = Plugin::new();
    for _ in 0..65 {
        plugin = plugin.connect(b"127.0.0.1", i32::from(server.port));
    }
    let run = case.run(&plugin.wat());
    let results = run.results();
    assert!(results[..64].iter().all(|&h| h >= 1), "{results:?}");
    assert_eq!(results[64], -2, "ERR_QUOTA");
    assert_eq!(
        run.triples().last().unwrap(),
        &(
            "deny".into(),
            "network.open_connections".into(),
            "NET_CONNECTION_QUOTA_EXCEEDED".into()
        )
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(server.accepted(), 64);
}

/// A link's target is decided as a request of its own, and its bytes count against the write
/// quota: with 8 bytes left, a 12-byte target is refused (`EDQUOT`) and an 8-byte one made.
#[test]
fn link_target_bytes_count_against_the_write_quota() {
    let case = Case::new();
    case.policy(
        &FS_POLICY
            .replace("write_bytes: 64KiB", "write_bytes: 8")
            .replace(
                "ops: [read, write, create, delete, list]",
                "ops: [read, write, create, delete, list, symlink]",
            ),
    );
    let before = case.snapshot();
    let run = wasi_results(
        &case,
        r#"(data (i32.const 100) "twelve-bytes") (data (i32.const 120) "eightbyt")
           (data (i32.const 140) "long") (data (i32.const 150) "short")"#,
        &[
            "(call $path_symlink (i32.const 100) (i32.const 12) (i32.const 4) (i32.const 140) (i32.const 4))",
            "(call $path_symlink (i32.const 120) (i32.const 8) (i32.const 4) (i32.const 150) (i32.const 5))",
        ],
    );
    assert_eq!(run.results(), vec![19, 0], "EDQUOT, then success");
    assert_eq!(run.usage("fs_write_bytes"), 8);
    assert_eq!(run.usage("fs_entries_created"), 1);
    case.assert_changed(&before, &["out/short"]);
    assert!(run.triples().contains(&(
        "deny".into(),
        "filesystem.quotas.write_bytes".into(),
        "FS_WRITE_QUOTA_EXCEEDED".into()
    )));
}

/// `filesystem.quotas.entries` stops an inode flood at the number the policy sets.
#[test]
fn the_entries_quota_stops_creates_at_its_number() {
    let case = Case::new();
    case.policy(&FS_POLICY.replace("write_bytes: 64KiB }", "write_bytes: 64KiB, entries: 2 }"));
    let run = wasi_results(
        &case,
        r#"(data (i32.const 100) "a") (data (i32.const 110) "b") (data (i32.const 120) "c")"#,
        &[
            "(call $mkdir (i32.const 4) (i32.const 100) (i32.const 1))",
            "(call $mkdir (i32.const 4) (i32.const 110) (i32.const 1))",
            "(call $mkdir (i32.const 4) (i32.const 120) (i32.const 1))",
        ],
    );
    assert_eq!(run.results(), vec![0, 0, 19]);
    assert_eq!(run.usage("fs_entries_created"), 2);
    assert!(!case.path("tree/out/c").exists());
    assert_eq!(
        run.triples().last().unwrap(),
        &(
            "deny".into(),
            "filesystem.quotas.entries".into(),
            "FS_ENTRIES_QUOTA_EXCEEDED".into()
        )
    );
}

/// Two mounts over one host folder (read-only and read-write) never start, unless the policy
/// says the overlap is intended.
#[test]
fn overlapping_mounts_are_refused_at_start_unless_intended() {
    let case = Case::new();
    let overlapping = FS_POLICY.replace(
        "    - { guest: /out, host: ./tree/out, mode: rw }\n",
        "    - { guest: /out, host: ./tree/out, mode: rw }\n    - { guest: /also, host: ./tree/data, mode: rw }\n",
    );
    case.policy(&overlapping);
    case.write("plugin.wat", b"(module (func (export \"_start\")))");
    let out = case.cli(&["run", "--policy", "policy.yaml", "--plugin", "plugin.wat"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("overlap"), "{stderr}");
    case.policy(&overlapping.replace(
        "{ guest: /also, host: ./tree/data, mode: rw }",
        "{ guest: /also, host: ./tree/data, mode: rw, overlap: intended }",
    ));
    let run = case.run("(module (func (export \"_start\")))");
    assert_eq!(run.status(), "completed");
}

/// The environment handed to a WASI guest is a decided request with its event.
#[test]
fn the_environment_handed_over_is_decided_and_recorded() {
    let case = Case::new();
    case.policy(&format!("{FS_POLICY}env: {{ LANG: C }}\n"));
    let run = wasi_results(
        &case,
        "",
        &["(call $environ_get (i32.const 200) (i32.const 300))"],
    );
    assert_eq!(run.results(), vec![0]);
    assert_eq!(run.triples(), t(&[("allow", "env", "ALLOWED")]));
    assert_eq!(run.events()[0]["capability"], "env.read");
}
