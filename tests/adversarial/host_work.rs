//! Work inside one host call: every call pays fuel for the work it will do before doing it,
//! long work goes in slices against the run's deadline, and bytes that left before a failure
//! still count. Each case would let one host call outrun its budgets without that.

use crate::harness::*;

/// `ERR_DENIED` of the native ABI.
const ERR_DENIED_CODE: i32 = -1;

const WASI: &str = r#"
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_get" (func $path_filestat_get (param i32 i32 i32 i32 i32) (result i32)))
"#;

fn policy(budgets: &str, extra: &str) -> String {
    format!("version: 1\nbudgets: {{ {budgets} }}\n{extra}")
}

/// A 512 MiB `random_get` with a 200 ms budget: made in slices, so the call ends at the
/// deadline instead of after the whole buffer.
#[test]
fn a_huge_random_get_ends_at_the_deadline_not_after_the_buffer() {
    let case = Case::new();
    case.policy(&policy(
        "fuel: 1_000_000_000_000, timeout_ms: 200, memory_bytes: 600MiB",
        "",
    ));
    let run = case.run(&format!(
        "(module {WASI} (memory (export \"memory\") 8200)
           (func (export \"_start\") (drop (call $random_get (i32.const 0) (i32.const 0x20000000)))))"
    ));
    assert_eq!(run.status(), "timeout");
    assert_eq!(run.code, 5);
    let wall = run.report["usage"]["wall_time_ms"].as_f64().unwrap();
    // The deadline is checked between 1 MiB slices: far less than the whole buffer's time.
    assert!(
        wall < 200.0 + 250.0,
        "the call ran {wall} ms against a 200 ms budget"
    );
}

/// The same buffer with little fuel: refused before any byte is made.
#[test]
fn a_random_get_the_fuel_cannot_pay_for_makes_nothing() {
    let case = Case::new();
    case.policy(&policy(
        "fuel: 1_000_000, timeout_ms: 60000, memory_bytes: 600MiB",
        "",
    ));
    let run = case.run(&format!(
        "(module {WASI} (memory (export \"memory\") 8200)
           (func (export \"_start\") (drop (call $random_get (i32.const 0) (i32.const 0x20000000)))))"
    ));
    assert_eq!(run.status(), "fuel_exhausted");
    assert_eq!(run.usage("fuel_consumed"), 1_000_000);
    // Making 512 MiB takes the host about a second; refused first, the call takes none of it.
    let wall = run.report["usage"]["wall_time_ms"].as_f64().unwrap();
    assert!(
        wall < 500.0,
        "the call worked {wall} ms before it was refused"
    );
}

/// 4096 subscriptions cost 4096 x 80 bytes of copying: paid before any is looked at.
#[test]
fn thousands_of_poll_subscriptions_are_paid_for_first() {
    let case = Case::new();
    case.policy(&policy(
        "fuel: 30_000, timeout_ms: 60000, memory_bytes: 16MiB",
        "",
    ));
    let run = case.run(&format!(
        "(module {WASI} (memory (export \"memory\") 64)
           (func (export \"_start\")
             (drop (call $poll_oneoff (i32.const 0) (i32.const 262144) (i32.const 4096) (i32.const 524288)))))"
    ));
    assert_eq!(run.status(), "fuel_exhausted");
    assert_eq!(run.usage("fuel_consumed"), 30_000);
}

/// A WASI path argument near 4 KiB is copied, so it is paid per byte: a thousand of them
/// cost far more than a thousand short ones.
#[test]
fn long_wasi_path_arguments_are_charged_per_byte() {
    let case = Case::new();
    case.policy(&policy(
        "fuel: 200_000, timeout_ms: 60000, memory_bytes: 16MiB",
        "",
    ));
    let path = format!("/nowhere/{}", "a".repeat(4000));
    let wat = format!(
        "(module {WASI} (memory (export \"memory\") 2) (data (i32.const 1024) \"{path}\")
           (func (export \"_start\") (local $i i32)
             (loop $l
               (drop (call $path_filestat_get (i32.const 3) (i32.const 0) (i32.const 1024) (i32.const {}) (i32.const 8192)))
               (local.set $i (i32.add (local.get $i) (i32.const 1)))
               (br_if $l (i32.lt_u (local.get $i) (i32.const 1000))))))",
        path.len()
    );
    let run = case.run(&wat);
    // 1000 x (10 + 4009 / 8) > 200_000: the loop cannot finish.
    assert_eq!(run.status(), "fuel_exhausted");
}

/// A path 1,500 folders deep ending in a link to itself: resolution keeps its folder handle
/// (one lookup per component, not one walk per prefix) and pays for each, so forty hops
/// through it end well inside the budget.
#[test]
fn a_deep_tree_ending_in_a_symlink_loop_is_resolved_in_linear_work() {
    let case = Case::new();
    case.policy(&policy(
        "fuel: 1_000_000_000, timeout_ms: 1500, memory_bytes: 16MiB",
        "filesystem:\n  mounts: [{ guest: /data, host: ./tree/data, mode: ro }]\n  rules: [{ id: all, effect: allow, ops: [read, list], paths: [\"/data/**\"] }]\n",
    ));
    let rel = "d/".repeat(1500);
    let deepest = case.path("tree/data").join(&rel);
    std::fs::create_dir_all(&deepest).unwrap();
    std::os::unix::fs::symlink("loop", deepest.join("loop")).unwrap();
    let guest = format!("/data/{rel}loop");
    let plugin = Plugin::new().stat(guest.as_bytes());
    let run = case.run(&plugin.wat());
    assert_eq!(run.status(), "completed", "{:?}", run.report["outcome"]);
    assert_eq!(run.results()[0], ERR_DENIED_CODE);
    assert_eq!(run.reasons(), vec!["FS_PATH_OUTSIDE_MOUNTS".to_owned()]);
}

/// A peer that reads 1,000 bytes and resets: the bytes the kernel took before the reset
/// left the sandbox, so they count against the egress quota although the send failed.
#[test]
fn bytes_sent_before_a_reset_count_against_the_egress_quota() {
    let server = Server::start(Serve::ResetAfter(1000));
    let case = Case::new();
    case.policy(&policy(
        "fuel: 1_000_000_000, timeout_ms: 10000, memory_bytes: 64MiB",
        &format!(
            "network:\n  rules: [{{ id: lan, effect: allow, cidrs: [\"127.0.0.1/32\"], ports: [{}] }}]\n  quotas: {{ connections: 1, egress_bytes: 64MiB, ingress_bytes: 1MiB }}\n",
            server.port
        ),
    ));
    let plugin = Plugin::new()
        .connect(b"127.0.0.1", i32::from(server.port))
        .raw("(call $emit (call $net_send (local.get $h) (i32.const 131072) (i32.const 16777216)))")
        .raw(
            "(call $emit (call $net_send (local.get $h) (i32.const 131072) (i32.const 16777216)))",
        );
    let wat = plugin.wat().replace(
        "(memory (export \"memory\") 2)",
        "(memory (export \"memory\") 260)",
    );
    let run = case.run(&wat);
    assert_eq!(run.status(), "completed", "{:?}", run.report["outcome"]);
    let results = run.results();
    assert!(results[0] >= 1, "connect failed: {results:?}");
    assert!(
        results[1..].iter().any(|&r| r < 0),
        "a send into a reset connection must fail: {results:?}"
    );
    let egress = run.usage("net_egress_bytes");
    assert!(
        egress >= 1000,
        "bytes the peer read were not counted: {egress}"
    );
    assert!(egress <= 2 * 16_777_216);
}
