//! Budgets and the host boundary: CPU, wall clock, memory and tables end a run with a report
//! and a distinct exit code, never a crash; host calls survive any pointer and length; a host
//! call that blocks is still bounded by the run's deadline; guest text cannot drive a terminal.

use crate::harness::*;

fn budget_policy(budgets: &str) -> String {
    format!("version: 1\nbudgets: {{ {budgets} }}\nstdio: {{ stdout_bytes: 64KiB, stderr_bytes: 64KiB }}\n")
}

fn last_event(run: &Run) -> (String, String, String) {
    run.triples().last().cloned().expect("a budget event")
}

fn module(items: &str) -> String {
    format!("(module\n{IMPORTS}{items})")
}

#[test]
fn an_empty_endless_loop_ends_by_fuel() {
    let case = Case::new();
    case.policy(&budget_policy(
        "fuel: 1_000_000, timeout_ms: 60000, memory_bytes: 1MiB",
    ));
    let run = case.run(&module(
        "(memory (export \"memory\") 1) (func (export \"_start\") (loop br 0))",
    ));
    assert_eq!(run.code, 4);
    assert_eq!(run.status(), "fuel_exhausted");
    assert_eq!(
        run.triples(),
        t(&[("deny", "budgets.fuel", "FUEL_EXHAUSTED")])
    );
    assert_eq!(run.usage("fuel_consumed"), 1_000_000);
}

#[test]
fn an_empty_endless_loop_with_ample_fuel_ends_by_the_wall_clock() {
    let case = Case::new();
    case.policy(&budget_policy(
        "fuel: 1_000_000_000_000_000, timeout_ms: 300, memory_bytes: 1MiB",
    ));
    let run = case.run(&module(
        "(memory (export \"memory\") 1) (func (export \"_start\") (loop br 0))",
    ));
    assert_eq!(run.code, 5);
    assert_eq!(run.status(), "timeout");
    assert_eq!(
        last_event(&run),
        ("deny".into(), "budgets.timeout_ms".into(), "TIMEOUT".into())
    );
}

/// Wasmtime charges bulk memory instructions one unit of fuel per byte, before doing the
/// work: a 64 MiB fill with little fuel left ends the run at once, and a copy one unit short
/// of its cost never runs.
#[test]
fn huge_memory_fill_and_copy_with_little_fuel_left_end_by_fuel() {
    let case = Case::new();
    case.policy(&budget_policy(
        "fuel: 300, timeout_ms: 60000, memory_bytes: 64MiB",
    ));
    let run = case.run(&module(
        r#"(memory (export "memory") 1024)
  (func (export "_start")
    (loop $again
      (memory.fill (i32.const 0) (i32.const 0xab) (i32.const 0x4000000))
      (memory.copy (i32.const 0) (i32.const 0x2000000) (i32.const 0x2000000))
      (br $again)))"#,
    ));
    assert_eq!(run.code, 4, "{}", run.report["outcome"]);
    assert_eq!(
        run.triples(),
        t(&[("deny", "budgets.fuel", "FUEL_EXHAUSTED")])
    );

    // A 64 KiB copy costs 65536 units plus 5 for the instructions around it: 65,000 units
    // do not start it, 70,000 run it.
    let copy = module(
        r#"(memory (export "memory") 2)
  (func (export "_start") (memory.copy (i32.const 0) (i32.const 100) (i32.const 65536)))"#,
    );
    case.policy(&budget_policy(
        "fuel: 65_000, timeout_ms: 60000, memory_bytes: 1MiB",
    ));
    assert_eq!(case.run(&copy).code, 4, "short of the copy's cost");
    case.policy(&budget_policy(
        "fuel: 70_000, timeout_ms: 60000, memory_bytes: 1MiB",
    ));
    let run = case.run(&copy);
    assert_eq!(run.code, 0);
    assert_eq!(run.usage("fuel_consumed"), 65_541);

    // With fuel for it, a fill past the end of memory traps; the host survives and reports.
    case.policy(&budget_policy(
        "fuel: 1_000_000_000_000, timeout_ms: 60000, memory_bytes: 1MiB",
    ));
    let run = case.run(&module(
        r#"(memory (export "memory") 1)
  (func (export "_start") (memory.fill (i32.const 0) (i32.const 1) (i32.const -1)))"#,
    ));
    assert_eq!(run.code, 3);
    assert!(run.report["outcome"]["message"]
        .as_str()
        .unwrap()
        .contains("out of bounds memory access"));
}

#[test]
fn memory_grow_to_the_cap_succeeds_and_one_page_past_it_ends_the_run() {
    let case = Case::new();
    case.policy(&budget_policy(
        "fuel: 1_000_000, timeout_ms: 5000, memory_bytes: 4MiB",
    ));
    let grow = |extra: &str| {
        Plugin::new()
            .raw("(call $emit (memory.grow (i32.const 62)))")
            .raw("(call $emit (memory.size))")
            .raw(extra)
            .raw("(call $emit (i32.const 12345))")
            .wat()
    };
    let run = case.run(&grow("(call $emit (memory.grow (i32.const 1)))"));
    assert_eq!(run.code, 6);
    assert_eq!(run.status(), "memory_limit");
    // The plugin's memory is 2 pages: it grew to the 64-page cap, then asked for one more.
    assert_eq!(run.results(), [2, 64]);
    assert_eq!(
        last_event(&run),
        (
            "deny".into(),
            "budgets.memory_bytes".into(),
            "MEMORY_LIMIT".into()
        )
    );
    let context = &run.events().last().unwrap()["context"];
    assert_eq!(context["resource"], "memory");
    assert_eq!(context["asked"], 65 * 65536);
    assert_eq!(context["limit"], 4 << 20);
    assert_eq!(run.report["usage"]["peak_memory_bytes"], 4 << 20);

    // A grow by 0xffffffff pages asks the ceiling too, with the size it would reach.
    let run = case.run(&grow("(call $emit (memory.grow (i32.const -1)))"));
    assert_eq!(run.code, 6, "{}", run.report["outcome"]);
    assert_eq!(run.results(), [2, 64]);
    let asked = (4u64 << 20) + 0xffff_ffff * 65536;
    assert_eq!(run.events().last().unwrap()["context"]["asked"], asked);

    // A grow past the memory's own declared maximum fails in Wasm (-1) and the run goes on.
    let run = case.run(&module(
        r#"(memory (export "memory") 1 4)
  (func (export "_start")
    (if (i32.ne (memory.grow (i32.const 10)) (i32.const -1)) (then unreachable)))"#,
    ));
    assert_eq!(run.code, 0, "{}", run.report["outcome"]);
}

/// Table growth is charged fuel per element (so little fuel ends it first) and capped by
/// the sandbox's element ceiling (100,000) when the fuel is there.
#[test]
fn table_grow_to_millions_ends_the_run_at_the_element_cap() {
    let case = Case::new();
    let plugin = Plugin::new()
        .module_items("(table $t 1 funcref)")
        .raw("(call $emit (table.grow $t (ref.null func) (i32.const 1000)))")
        .raw("(call $emit (table.grow $t (ref.null func) (i32.const 10000000)))")
        .raw("(call $emit (i32.const 12345))")
        .wat();
    case.policy(&budget_policy(
        "fuel: 1_000_000, timeout_ms: 5000, memory_bytes: 16MiB",
    ));
    let run = case.run(&plugin);
    assert_eq!(run.code, 4);
    assert_eq!(run.results(), [1]);
    case.policy(&budget_policy(
        "fuel: 100_000_000, timeout_ms: 5000, memory_bytes: 16MiB",
    ));
    let run = case.run(&plugin);
    assert_eq!(run.code, 6);
    assert_eq!(run.results(), [1]);
    let context = &run.events().last().unwrap()["context"];
    assert_eq!(context["resource"], "table");
    assert_eq!(context["asked"], 10_001_001);

    // A table declared with millions of elements never starts.
    let run = case.run(&module(
        "(memory (export \"memory\") 1) (table 20000000 funcref) (func (export \"_start\"))",
    ));
    assert_eq!(run.code, 6);
    assert_eq!(run.events().last().unwrap()["context"]["resource"], "table");
}

#[test]
fn deep_recursion_traps_and_the_host_survives_with_a_report() {
    let case = Case::new();
    case.policy(&budget_policy(
        "fuel: 1_000_000_000, timeout_ms: 10000, memory_bytes: 1MiB",
    ));
    // Wide frames, and a host call at every level.
    let run = case.run(
        &Plugin::new()
            .module_items(
                r#"(func $down (param $d i64) (result i64)
    (local i64 i64 i64 i64 i64 i64 i64 i64)
    (drop (call $input_len))
    (i64.add (call $down (i64.add (local.get $d) (i64.const 1))) (i64.const 1)))"#,
            )
            .raw("(drop (call $down (i64.const 0)))")
            .wat(),
    );
    assert_eq!(run.code, 3);
    assert_eq!(run.status(), "trapped");
    assert!(
        run.report["outcome"]["message"]
            .as_str()
            .unwrap()
            .contains("call stack exhausted"),
        "{}",
        run.report["outcome"]
    );
    assert_eq!(
        last_event(&run),
        ("deny".into(), "run.trap".into(), "TRAPPED".into())
    );
}

/// Pointers near 4 GiB and lengths near 4 GiB, against a one-page memory: each call is a
/// fault with an event, never a crash, a trap or a large host allocation.
#[test]
fn host_calls_with_pointers_near_4_gib_and_huge_lengths_are_faults() {
    let case = Case::new();
    let mut plugin = Plugin::new();
    let path = plugin.bytes(b"/data/hello.txt");
    let calls = [
        "(call $fs_read (i32.const 0xfffffff0) (i32.const 0x20) (i64.const 0) (i32.const 0) (i32.const 16))".to_owned(),
        "(call $fs_read (i32.const 256) (i32.const 0xffffffff) (i64.const 0) (i32.const 0) (i32.const 16))".to_owned(),
        format!("(call $fs_read {path} (i64.const 0) (i32.const 0xffffff00) (i32.const 0x100))"),
        format!("(call $fs_read {path} (i64.const 0) (i32.const 131060) (i32.const 0xffffffff))"),
        "(call $output_write (i32.const -1) (i32.const -1))".to_owned(),
        "(call $log (i32.const 131072) (i32.const 1))".to_owned(),
        format!("(call $fs_write {path} (i32.const 1) (i32.const 0xffffffff) (i32.const 0))"),
        format!("(call $fs_stat {path} (i32.const 131064))"),
        format!("(call $fs_list {path} (i32.const 0x80000000) (i32.const 0x80000000))"),
        "(call $net_connect (i32.const 0) (i32.const 0xffffffff) (i32.const 80))".to_owned(),
        "(call $net_send (i32.const 1) (i32.const 0x7fffffff) (i32.const 0x7fffffff))".to_owned(),
        "(call $input_read (i32.const 131071) (i32.const 2) (i32.const 0))".to_owned(),
    ];
    let n = calls.len();
    for call in &calls {
        plugin = plugin.raw(&format!("(call $emit {call})"));
    }
    // At the very end of memory, a zero length is valid.
    let plugin = plugin
        .raw(&format!(
            "(call $emit (call $fs_read {path} (i64.const 0) (i32.const 131072) (i32.const 0)))"
        ))
        .raw("(call $emit (call $log (i32.const 131072) (i32.const 0)))");
    let run = case.run(&plugin.wat());
    assert_eq!(run.code, 0, "{}", run.report["outcome"]);
    let mut expected = vec![ERR_FAULT; n];
    expected.extend([0, 0]);
    assert_eq!(run.results(), expected);
    let fault = ("deny", "host_abi", "BAD_GUEST_POINTER");
    let mut triples = n_times(n, fault);
    triples.push(("allow".into(), "read-data".into(), "ALLOWED".into()));
    assert_eq!(run.triples(), triples);
    let first = &run.events()[0]["context"];
    assert_eq!(first["function"], "fs_read");
    assert_eq!(first["ptr"], 0xffff_fff0u32);
    assert_eq!(first["memory_bytes"], 131072);
}

/// A 4 GiB memory puts pointers near 4 GiB in bounds: then a huge length is an argument
/// error or a capped copy, and the host copies at most 4097 bytes of a path.
#[test]
fn huge_lengths_inside_a_4_gib_memory_never_size_a_host_allocation() {
    let case = Case::new();
    case.policy(&FS_POLICY.replace("memory_bytes: 16MiB", "memory_bytes: 4GiB"));
    let run = case.run(&module(
        r#"(memory (export "memory") 65536)
  (data (i32.const 0xffffff00) "/data/hello.txt")
  (func $emit (param $v i32)
    (i32.store (i32.const 0) (local.get $v))
    (drop (call $output_write (i32.const 0) (i32.const 4))))
  (func (export "_start")
    ;; A path of 4 GiB - 16 bytes: refused as too long after copying 4097 bytes.
    (call $emit (call $fs_read (i32.const 16) (i32.const 0xffffffef) (i64.const 0) (i32.const 0) (i32.const 0)))
    ;; Writes, outputs and sends longer than 16 MiB: refused before any copy.
    (call $emit (call $fs_write (i32.const 0xffffff00) (i32.const 15) (i32.const 0) (i32.const 0x7fffffff) (i32.const 0)))
    (call $emit (call $output_write (i32.const 0) (i32.const 0xfffffff0)))
    ;; A read into a buffer that ends at 4 GiB exactly.
    (call $emit (call $fs_read (i32.const 0xffffff00) (i32.const 15) (i64.const 0) (i32.const 0xffffffe6) (i32.const 26)))
    (drop (call $output_write (i32.const 0xffffffe6) (i32.const 26)))
    ;; A read with a 4 GiB buffer is capped at 16 MiB.
    (call $emit (call $fs_read (i32.const 0xffffff00) (i32.const 15) (i64.const 0) (i32.const 0) (i32.const -1))))"#,
    ));
    assert_eq!(run.code, 0, "{}", run.report["outcome"]);
    let results: Vec<i32> = run.stdout[..16]
        .chunks(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(results, [ERR_INVALID, ERR_INVALID, ERR_INVALID, 26]);
    assert_eq!(&run.stdout[16..42], HELLO.as_bytes());
    assert_eq!(
        i32::from_le_bytes(run.stdout[42..46].try_into().unwrap()),
        26
    );
    let read = ("allow", "read-data", "ALLOWED");
    assert_eq!(
        run.triples(),
        t(&[("deny", "filesystem.paths", "FS_PATH_INVALID"), read, read])
    );
    // The event keeps the 4097 bytes copied, not the 4 GiB asked.
    assert_eq!(
        run.events()[0]["request"]["path"].as_str().unwrap().len(),
        4097
    );
}

/// A plugin that waits in `net_recv` with a huge timeout on a server that never answers:
/// the wait is cut at the run's deadline, and the run ends `timeout`.
#[test]
fn a_plugin_blocking_in_net_recv_past_its_timeout_still_ends_at_the_deadline() {
    let server = Server::start(Serve::Silent);
    let p = i32::from(server.port);
    let case = Case::new();
    case.policy(&format!(
        "version: 1\nbudgets: {{ fuel: 1_000_000_000_000, timeout_ms: 400, memory_bytes: 16MiB }}\nnetwork:\n  rules:\n    - {{ id: lan, effect: allow, cidrs: [\"127.0.0.1/32\"], ports: [{p}] }}\n"
    ));
    let run = case.run(
        &Plugin::new()
            .connect(b"127.0.0.1", p)
            .recv(64, i32::MAX)
            .raw(&format!(
                "(loop $again (drop (call $net_recv (local.get $h) (i32.const {BUF}) (i32.const 64) (i32.const 2147483647))) (br $again))"
            ))
            .wat(),
    );
    assert_eq!(run.code, 5, "{}", run.report["outcome"]);
    // The receive waited until the deadline; the plugin is stopped at the next epoch tick, so
    // at most the timed-out receive's result came out after the connect's handle.
    let results = run.results();
    assert_eq!(results[0], 1, "{results:?}");
    assert!(
        results[1..].iter().all(|r| *r == ERR_TIMED_OUT),
        "{results:?}"
    );
    assert!(results.len() <= 3, "the loop kept running: {results:?}");
    assert_eq!(run.events()[1]["capability"], "net.receive");
    assert_eq!(run.events()[1]["context"]["error"], "timed out");
    assert_eq!(
        last_event(&run),
        ("deny".into(), "budgets.timeout_ms".into(), "TIMEOUT".into())
    );
    assert_eq!(server.accepted(), 1);
}

/// Found by this suite: the message for a table past the element ceiling counted elements
/// as bytes ("grow table to 10001001 bytes").
#[test]
fn regression_a_table_limit_message_counts_elements_not_bytes() {
    let case = Case::new();
    case.policy(&budget_policy(
        "fuel: 100_000_000, timeout_ms: 5000, memory_bytes: 16MiB",
    ));
    let run = case.run(&module(
        "(memory (export \"memory\") 1) (table 200000 funcref) (func (export \"_start\"))",
    ));
    assert_eq!(run.code, 6);
    assert_eq!(
        run.report["outcome"]["message"],
        "the plugin asked to grow table to 200000 elements; the policy allows 100000"
    );
}
