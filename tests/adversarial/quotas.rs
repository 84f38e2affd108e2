//! Quotas: the first byte over a quota is refused, a refused call does nothing at all, and
//! the counters in the report match the bytes on disk.
//!
//! Writing past the end of a file and growing a file by setting its size need a file offset
//! or `fd_filestat_set_size`, which only the WASI front end has; its suite covers them.

use crate::harness::*;

fn policy(quotas: &str, budgets: &str) -> String {
    FS_POLICY
        .replace(
            "quotas: { read_bytes: 1MiB, write_bytes: 64KiB }",
            &format!("quotas: {{ {quotas} }}"),
        )
        .replace(
            "budgets: { fuel: 50_000_000, timeout_ms: 5000, memory_bytes: 16MiB }",
            &format!("budgets: {{ {budgets} }}"),
        )
}

fn count_of(run: &Run, rule: &str, reason: &str) -> u64 {
    run.report["events_summary"]["by_rule"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["rule_id"] == rule && r["reason_code"] == reason)
        .map(|r| r["count"].as_u64().unwrap())
        .sum()
}

/// A million one-byte appends against a 1000-byte quota. Fuel ends the loop long before a
/// million (each denied call still costs fuel), so the test takes seconds; what it proves:
/// exactly 1000 writes went through, the 1001st byte was the first refused, and the report
/// stays small while it counts every refusal.
#[test]
fn a_million_one_byte_writes_stop_at_the_first_byte_over_quota() {
    let case = Case::new();
    case.policy(&policy(
        "write_bytes: 1000",
        "fuel: 3_000_000, timeout_ms: 60000, memory_bytes: 16MiB",
    ));
    let before = case.snapshot();
    let mut plugin = Plugin::new();
    let path = plugin.bytes(b"/out/drip.log");
    let byte = plugin.bytes(b"x");
    let plugin = plugin.raw(&format!(
        "(local.set $i (i32.const 0))
         (local.set $j (i32.const -1))
         (loop $again
           (local.set $n (call $fs_write {path} {byte} (i32.const {WRITE_APPEND})))
           ;; Emit where the first refusal came, and its code.
           (if (i32.and (i32.ne (local.get $n) (i32.const 1)) (i32.lt_s (local.get $j) (i32.const 0)))
             (then (local.set $j (local.get $i)) (call $emit (local.get $i)) (call $emit (local.get $n))))
           (local.set $i (i32.add (local.get $i) (i32.const 1)))
           (br_if $again (i32.lt_u (local.get $i) (i32.const 1000000))))
         (call $emit (i32.const 1000000))"
    ));
    let run = case.run(&plugin.wat());
    assert_eq!(run.code, 4, "{}", run.report["outcome"]);
    assert_eq!(run.status(), "fuel_exhausted");
    assert_eq!(
        run.results(),
        [1000, ERR_QUOTA],
        "fuel ends it before a million"
    );
    let on_disk = std::fs::metadata(case.path("tree/out/drip.log"))
        .unwrap()
        .len();
    assert_eq!(on_disk, 1000);
    assert_eq!(run.usage("fs_write_bytes"), on_disk);
    // One create and 1000 writes allowed; every refusal counted, recorded or not.
    assert_eq!(count_of(&run, "write-out", "ALLOWED"), 1001);
    let refused = count_of(
        &run,
        "filesystem.quotas.write_bytes",
        "FS_WRITE_QUOTA_EXCEEDED",
    );
    assert!(
        refused > 50_000,
        "only {refused} refusals: the loop ended early"
    );
    assert_eq!(
        run.report["summary"]["denied"].as_u64().unwrap(),
        refused + 1
    );
    assert_eq!(run.report["events_summary"]["recorded"], 10_000);
    assert!(
        run.report_text.len() < 8 << 20,
        "report of {} bytes",
        run.report_text.len()
    );
    let first_refusal = &run.events()[1001];
    assert_eq!(first_refusal["reason_code"], "FS_WRITE_QUOTA_EXCEEDED");
    assert_eq!(first_refusal["context"]["quota_used"], 1000);
    assert_eq!(first_refusal["context"]["quota_left"], 0);
    case.assert_changed(&before, &["out/drip.log"]);
}

/// Empty files cost no quota bytes; what bounds how many a plugin makes is fuel (there is no
/// file-count quota). The files on disk are exactly the creates the report allowed.
#[test]
fn many_empty_files_are_bounded_by_fuel_and_every_one_is_accounted() {
    let case = Case::new();
    case.policy(&policy(
        "write_bytes: 0",
        "fuel: 150_000, timeout_ms: 60000, memory_bytes: 16MiB",
    ));
    let mut plugin = Plugin::new();
    let (at, len) = plugin.place(b"/out/f0000.log");
    let name = format!("(i32.const {at}) (i32.const {len})");
    // The four hex digits after `/out/f` are rewritten from the counter on each turn.
    let digits = at + 6;
    let plugin = plugin.raw(&format!(
        "(local.set $i (i32.const 0))
         (loop $again
           (local.set $j (i32.const 0))
           (loop $digit
             (local.set $n (i32.and (i32.shr_u (local.get $i) (i32.mul (i32.sub (i32.const 3) (local.get $j)) (i32.const 4))) (i32.const 15)))
             (i32.store8 (i32.add (i32.const {digits}) (local.get $j))
               (i32.add (local.get $n) (select (i32.const 48) (i32.const 87) (i32.lt_u (local.get $n) (i32.const 10)))))
             (local.set $j (i32.add (local.get $j) (i32.const 1)))
             (br_if $digit (i32.lt_u (local.get $j) (i32.const 4))))
           (local.set $n (call $fs_write {name} (i32.const 0) (i32.const 0) (i32.const 0)))
           (if (i32.ne (local.get $n) (i32.const 0)) (then (call $emit (local.get $n))))
           (local.set $i (i32.add (local.get $i) (i32.const 1)))
           (br_if $again (i32.lt_u (local.get $i) (i32.const 65536))))"
    ));
    let run = case.run(&plugin.wat());
    assert_eq!(run.code, 4, "{}", run.report["outcome"]);
    assert!(
        run.results().is_empty(),
        "no create failed: {:?}",
        run.results()
    );
    let files = std::fs::read_dir(case.path("tree/out")).unwrap().count() as u64;
    assert!(files > 500, "only {files} files");
    assert!(files < 65536, "fuel did not bound the loop");
    let creates = count_of(&run, "write-out", "ALLOWED");
    // Each file: one create and one zero-byte write, both allowed.
    assert_eq!(creates, 2 * files);
    assert_eq!(run.usage("fs_write_bytes"), 0);
    for entry in std::fs::read_dir(case.path("tree/out")).unwrap() {
        let entry = entry.unwrap();
        assert_eq!(entry.metadata().unwrap().len(), 0);
        assert!(entry.file_name().to_string_lossy().starts_with('f'));
    }
}

/// Reads decide on the bytes they would really return, so one that would cross the quota is
/// refused whole and reads nothing; reads at or past the end cost nothing.
#[test]
fn reads_that_straddle_the_quota_are_refused_whole() {
    let case = Case::new();
    let big: Vec<u8> = (0..150u8).map(|i| b'a' + i % 26).collect();
    case.write("tree/data/big.txt", &big);
    case.policy(&policy(
        "read_bytes: 100",
        "fuel: 50_000_000, timeout_ms: 5000, memory_bytes: 16MiB",
    ));
    let run = case.run(
        &Plugin::new()
            .read_at(b"/data/big.txt", 0, 60)
            .read_at(b"/data/big.txt", 60, 60)
            .read_at(b"/data/big.txt", 60, 40)
            .read_at(b"/data/big.txt", 100, 1)
            .read_at(b"/data/big.txt", 150, 10)
            .read_at(b"/data/big.txt", i64::MAX, 10)
            .read_at(b"/data/big.txt", -1, 10)
            .wat(),
    );
    assert_eq!(run.code, 0);
    assert_eq!(
        run.results(),
        [60, ERR_QUOTA, 40, ERR_QUOTA, 0, 0, ERR_INVALID]
    );
    let read = ("allow", "read-data", "ALLOWED");
    let over = (
        "deny",
        "filesystem.quotas.read_bytes",
        "FS_READ_QUOTA_EXCEEDED",
    );
    // The negative offset is refused before any decision: no event.
    assert_eq!(run.triples(), t(&[read, over, read, over, read, read]));
    assert_eq!(run.events()[1]["context"]["bytes_asked"], 60);
    assert_eq!(run.events()[1]["context"]["quota_left"], 40);
    assert_eq!(run.usage("fs_read_bytes"), 100);
    let mut expected = big[..60].to_vec();
    expected.push(b'\n');
    expected.extend_from_slice(&big[60..100]);
    expected.push(b'\n');
    assert_eq!(
        run.stderr, expected,
        "exactly the allowed bytes reached the plugin"
    );
}

#[test]
fn the_first_byte_over_the_write_quota_is_refused_and_nothing_is_half_written() {
    let case = Case::new();
    case.policy(&policy(
        "write_bytes: 100",
        "fuel: 50_000_000, timeout_ms: 5000, memory_bytes: 16MiB",
    ));
    let before = case.snapshot();
    let run = case.run(
        &Plugin::new()
            .write(b"/out/q.log", &[b'a'; 99], 0)
            .write(b"/out/q.log", b"bc", WRITE_APPEND)
            .write(b"/out/q.log", b"d", WRITE_APPEND)
            .write(b"/out/q.log", b"e", WRITE_APPEND)
            .write(b"/out/q.log", b"", WRITE_APPEND)
            // Truncating does not give quota back: the bytes were written.
            .write(b"/out/q.log", b"short", 0)
            .write(b"/out/other.log", b"f", 0)
            .wat(),
    );
    assert_eq!(run.code, 0);
    assert_eq!(
        run.results(),
        [99, ERR_QUOTA, 1, ERR_QUOTA, 0, ERR_QUOTA, ERR_QUOTA]
    );
    let ok = ("allow", "write-out", "ALLOWED");
    let over = (
        "deny",
        "filesystem.quotas.write_bytes",
        "FS_WRITE_QUOTA_EXCEEDED",
    );
    assert_eq!(
        run.triples(),
        t(&[ok, ok, over, ok, over, ok, over, ok, over])
    );
    let q = std::fs::read(case.path("tree/out/q.log")).unwrap();
    assert_eq!(q, [vec![b'a'; 99], b"d".to_vec()].concat());
    // The refused write to a new file was decided `create` (allowed) then `write` (refused)
    // before anything on disk changed: no empty file is left behind.
    assert!(!case.path("tree/out/other.log").exists());
    assert_eq!(run.usage("fs_write_bytes"), 100);
    case.assert_changed(&before, &["out/q.log"]);
}

/// Found by this suite: a read at offset `i64::MAX` returned `ERR_IO` (the seek failed)
/// where the ABI promises `0` past the end of a file.
#[test]
fn regression_a_read_at_offset_i64_max_returns_zero_instead_of_an_io_error() {
    let case = Case::new();
    let run = case.run(
        &Plugin::new()
            .read_at(b"/data/hello.txt", i64::MAX, 10)
            .read_at(b"/data/hello.txt", i64::MAX, 0)
            .read_at(b"/data/hello.txt", 1 << 62, 10)
            .wat(),
    );
    assert_eq!(run.results(), [0, 0, 0]);
    assert_eq!(run.triples(), n_times(3, ("allow", "read-data", "ALLOWED")));
    assert_eq!(run.events()[0]["context"]["result"], "done");
}
