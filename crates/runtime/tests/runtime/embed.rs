//! The embedding API: calls of one loaded plugin are isolated from each other (memory,
//! globals, quotas, fuel, events), run concurrently with their own reports, end their budgets
//! the same way as the CLI, and the module cache never trusts an entry it cannot verify.

use std::path::Path;
use std::sync::Arc;

use sandbox_policy::{parse_policy, Policy};
use sandbox_runtime::{Allocation, CacheStatus, ModuleCache, Plugin, Rejected, Sandbox, Status};

/// A policy with one read-write mount at `/out` on `out` (if given) and these extra lines.
fn policy(out: Option<&Path>, extra: &str) -> Arc<Policy> {
    let mut text = String::from("version: 1\nname: embed-test\n");
    if let Some(out) = out {
        text.push_str(&format!(
            "filesystem:\n  mounts:\n    - {{ guest: /out, host: {}, mode: rw }}\n  rules:\n    - {{ id: write-out, effect: allow, ops: [write, create], paths: [\"/out/**\"] }}\n  quotas: {{ write_bytes: 100 }}\n",
            out.display()
        ));
    }
    text.push_str(extra);
    Arc::new(parse_policy(&text, Path::new(".")).unwrap_or_else(|e| panic!("{e}\n{text}")))
}

fn example(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/plugins")
        .join(name);
    std::fs::read(path).unwrap()
}

/// Writes what it found (memory byte 100 and a global, as two ASCII digits) to stdout, then
/// changes both: a later call that saw the change would print something else.
const REMEMBERS: &str = r#"(module
  (import "sandbox" "output_write" (func $write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 0))
  (func (export "_start")
    (i32.store8 (i32.const 0) (i32.add (i32.const 48) (i32.load8_u (i32.const 100))))
    (i32.store8 (i32.const 1) (i32.add (i32.const 48) (global.get $g)))
    (drop (call $write (i32.const 0) (i32.const 2)))
    (i32.store8 (i32.const 100) (i32.add (i32.load8_u (i32.const 100)) (i32.const 1)))
    (global.set $g (i32.add (global.get $g) (i32.const 1)))))"#;

#[test]
fn memory_and_globals_written_by_one_call_are_not_seen_by_the_next() {
    for allocation in [Allocation::Pooling, Allocation::OnDemand] {
        let sandbox = Sandbox::builder(policy(None, ""))
            .allocation(allocation)
            .max_concurrent_calls(1)
            .build()
            .unwrap();
        let plugin = sandbox
            .load("remembers.wat", REMEMBERS.as_bytes(), "_start")
            .unwrap();
        // One slot: with pooling every call reuses the same memory slot.
        assert_eq!(plugin.allocation(), allocation);
        for call in 0..5 {
            let out = plugin.call(b"");
            assert_eq!(out.report.outcome.status, Status::Completed);
            assert_eq!(out.stdout, b"00", "{allocation:?} call {call}");
        }
    }
}

/// Writes 60 bytes to /out/log.txt, then spends fuel in a loop of 10,000 rounds.
const WRITES_AND_SPINS: &str = r#"(module
  (import "sandbox" "fs_write" (func $fs_write (param i32 i32 i32 i32 i32) (result i32)))
  (import "sandbox" "output_write" (func $write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "/out/log.txt")
  (func (export "_start")
    (local $i i32)
    (if (i32.ne (call $fs_write (i32.const 0) (i32.const 12) (i32.const 64) (i32.const 60) (i32.const 1)) (i32.const 60))
      (then (drop (call $write (i32.const 0) (i32.const 4)))))
    (loop $spin
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $spin (i32.lt_u (local.get $i) (i32.const 10000))))))"#;

#[test]
fn quotas_fuel_and_events_start_afresh_for_every_call() {
    let out_dir = tempfile::tempdir().unwrap();
    // Present from the start, so no call but the first would differ by a `create` event.
    std::fs::write(out_dir.path().join("log.txt"), "").unwrap();
    // 100 bytes of write quota hold one call's 60 bytes, not two; the fuel holds one loop.
    let sandbox = Sandbox::builder(policy(
        Some(out_dir.path()),
        "budgets: { fuel: 150_000, timeout_ms: 5000, memory_bytes: 1MiB }\n",
    ))
    .build()
    .unwrap();
    let plugin = sandbox
        .load("writes.wat", WRITES_AND_SPINS.as_bytes(), "_start")
        .unwrap();
    let first = plugin.call(b"");
    assert_eq!(first.report.outcome.status, Status::Completed);
    assert!(
        first.report.usage.fuel_consumed > 75_000,
        "two calls' fuel would not fit"
    );
    for _ in 0..3 {
        let next = plugin.call(b"");
        assert_eq!(next.report.outcome.status, Status::Completed);
        assert!(next.stdout.is_empty(), "a write was refused");
        assert_eq!(next.report.usage.fs_write_bytes, 60);
        assert_eq!(
            next.report.usage.fuel_consumed,
            first.report.usage.fuel_consumed
        );
        // The sandbox hands each call an event log an earlier call used: emptied.
        assert_eq!(next.report.events, first.report.events);
        assert_eq!(next.report.events_summary, first.report.events_summary);
        assert_eq!(next.report.summary, first.report.summary);
    }
    let written = std::fs::read(out_dir.path().join("log.txt")).unwrap();
    assert_eq!(written.len(), 4 * 60, "every call appended its bytes");
}

/// Copies its input to stdout after a loop whose length depends on the input, so calls on
/// different threads overlap and finish in any order.
const ECHO: &str = r#"(module
  (import "sandbox" "input_read" (func $read (param i32 i32 i32) (result i32)))
  (import "sandbox" "output_write" (func $write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $n i32) (local $i i32)
    (local.set $n (call $read (i32.const 0) (i32.const 4096) (i32.const 0)))
    (loop $spin
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $spin (i32.lt_u (local.get $i) (i32.mul (i32.load8_u (i32.const 0)) (i32.const 100)))))
    (drop (call $write (i32.const 0) (local.get $n)))))"#;

#[test]
fn concurrent_calls_on_several_threads_each_get_their_own_report() {
    // Fewer pool slots than threads: calls also wait for each other's slots.
    let sandbox = Sandbox::builder(policy(None, ""))
        .max_concurrent_calls(2)
        .build()
        .unwrap();
    let plugin = sandbox.load("echo.wat", ECHO.as_bytes(), "_start").unwrap();
    assert_eq!(plugin.allocation(), Allocation::Pooling);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let plugin: Plugin = plugin.clone();
            std::thread::spawn(move || {
                for i in 0..20 {
                    let input = format!("thread {t} call {i}");
                    let out = plugin.call(input.as_bytes());
                    assert_eq!(out.report.outcome.status, Status::Completed);
                    assert_eq!(out.stdout, input.as_bytes());
                    assert_eq!(out.report.stdio.stdout, input);
                    assert!(out.report.events.is_empty());
                    assert!(sandbox_runtime::verify_report(
                        &serde_json::to_string(&out.report).unwrap()
                    )
                    .is_ok());
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a thread's call went wrong");
    }
}

#[test]
fn budgets_end_pooled_calls_as_they_end_cli_runs_and_the_next_call_is_unaffected() {
    let sandbox = Sandbox::builder(policy(
        None,
        "budgets: { fuel: 1_000_000_000_000, timeout_ms: 100, memory_bytes: 1MiB }\n",
    ))
    .build()
    .unwrap();
    assert_eq!(sandbox.allocation(), Allocation::Pooling);
    let spin = sandbox
        .load("spin.wat", &example("spin_forever.wat"), "_start")
        .unwrap();
    let grow = sandbox
        .load("grow.wat", &example("grow_memory.wat"), "_start")
        .unwrap();
    let echo = sandbox.load("echo.wat", ECHO.as_bytes(), "_start").unwrap();
    for _ in 0..2 {
        let out = spin.call(b"");
        assert_eq!(out.report.outcome.status, Status::Timeout);
        assert!(
            out.report.usage.wall_time_ms >= 100.0,
            "{}",
            out.report.usage.wall_time_ms
        );
        // The limiter refuses the growth before the pool would: `memory_limit`, not a trap.
        let out = grow.call(b"");
        assert_eq!(out.report.outcome.status, Status::MemoryLimit);
        assert_eq!(out.report.usage.peak_memory_bytes, 1 << 20);
        assert_eq!(echo.call(b"ok").stdout, b"ok");
    }

    let fuel = Sandbox::builder(policy(None, "budgets: { fuel: 100_000 }\n"))
        .build()
        .unwrap();
    let spin = fuel
        .load("spin.wat", &example("spin_forever.wat"), "_start")
        .unwrap();
    assert_eq!(spin.call(b"").report.outcome.status, Status::FuelExhausted);
}

#[test]
fn the_pool_falls_back_to_on_demand_and_says_why() {
    // A ceiling above what a pool slot holds: the whole sandbox allocates on demand.
    let big = Sandbox::builder(policy(None, "budgets: { memory_bytes: 8GiB }\n"))
        .build()
        .unwrap();
    assert_eq!(big.allocation(), Allocation::OnDemand);
    assert!(
        big.fallback_reason().unwrap().contains("memory_bytes"),
        "{:?}",
        big.fallback_reason()
    );

    // A plugin whose initial memory is beyond the ceiling: that plugin alone falls back, and
    // the limiter still ends its calls with `memory_limit`.
    let sandbox = Sandbox::builder(policy(None, "budgets: { memory_bytes: 1MiB }\n"))
        .build()
        .unwrap();
    let huge = sandbox
        .load(
            "huge.wat",
            b"(module (memory 32) (func (export \"_start\")))",
            "_start",
        )
        .unwrap();
    assert_eq!(huge.allocation(), Allocation::OnDemand);
    assert!(
        huge.fallback_reason().unwrap().contains("pool"),
        "{:?}",
        huge.fallback_reason()
    );
    assert_eq!(huge.call(b"").report.outcome.status, Status::MemoryLimit);
    // Two memories: more than a slot holds, fine on demand.
    let two = sandbox
        .load(
            "two.wat",
            b"(module (memory 1) (memory 1) (func (export \"_start\")))",
            "_start",
        )
        .unwrap();
    assert_eq!(two.allocation(), Allocation::OnDemand);
    assert_eq!(two.call(b"").report.outcome.status, Status::Completed);
    // Whatever fits keeps the pool.
    let small = sandbox.load("echo.wat", ECHO.as_bytes(), "_start").unwrap();
    assert_eq!(small.allocation(), Allocation::Pooling);
    assert_eq!(small.fallback_reason(), None);
}

#[test]
fn a_sandbox_call_reports_exactly_what_a_cli_run_reports() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/demo.yaml");
    let sandbox = Sandbox::builder_from_file(&demo).unwrap().build().unwrap();
    let plugin = sandbox
        .load("deny_heavy.wat", &example("deny_heavy.wat"), "_start")
        .unwrap();
    // The CLI's way: an on-demand sandbox made for one call.
    let once = Sandbox::builder_from_file(&demo)
        .unwrap()
        .allocation(Allocation::OnDemand)
        .build()
        .unwrap();
    let run = once
        .load("deny_heavy.wat", &example("deny_heavy.wat"), "_start")
        .unwrap()
        .call(b"");
    let call = plugin.call(b"");
    let mut a = run.report;
    let mut b = call.report;
    assert!(a.events.len() > 10);
    // Only the measured time and the digest over it differ.
    a.usage.wall_time_ms = 0.0;
    b.usage.wall_time_ms = 0.0;
    a.digest.clear();
    b.digest.clear();
    assert_eq!(a, b);
}

#[test]
fn a_plugin_that_does_not_load_is_refused_before_any_call() {
    let sandbox = Sandbox::builder(policy(None, "limits: { module_bytes: 100 }\n"))
        .build()
        .unwrap();
    let err = |bytes: &[u8], entry: &str| {
        sandbox
            .load("p.wat", bytes, entry)
            .err()
            .unwrap()
            .to_string()
    };
    assert!(err(&[0u8; 101], "_start").contains("module_bytes"));
    assert!(err(b"(module", "_start").contains("not a valid WebAssembly module"));
    assert!(err(b"(module (import \"env\" \"f\" (func)))", "_start").contains("`env::f`"));
    assert!(err(b"(module)", "_start").contains("`_start`"));
}

// --- the module cache ------------------------------------------------------------------------

fn cached_sandbox(dir: &Path) -> Sandbox {
    Sandbox::builder(policy(None, ""))
        .cache(Some(ModuleCache::new(dir)))
        .build()
        .unwrap()
}

fn only_entry(dir: &Path) -> std::path::PathBuf {
    let entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries.into_iter().next().unwrap()
}

#[test]
fn a_cached_module_is_read_back_and_behaves_as_compiled() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let first = cached_sandbox(&dir)
        .load("echo.wat", ECHO.as_bytes(), "_start")
        .unwrap();
    assert_eq!(first.cache_status(), CacheStatus::Miss { stored: true });
    // A new sandbox, as a new process would have.
    let second = cached_sandbox(&dir)
        .load("echo.wat", ECHO.as_bytes(), "_start")
        .unwrap();
    assert_eq!(second.cache_status(), CacheStatus::Hit);
    assert_eq!(second.call(b"cached").stdout, b"cached");
    // The entry check still runs on a cached module.
    let err = cached_sandbox(&dir)
        .load("echo.wat", ECHO.as_bytes(), "main")
        .err()
        .unwrap();
    assert!(err.to_string().contains("`main`"), "{err}");
    // No cache at all.
    let none = Sandbox::builder(policy(None, "")).build().unwrap();
    let plugin = none.load("echo.wat", ECHO.as_bytes(), "_start").unwrap();
    assert_eq!(plugin.cache_status(), CacheStatus::Disabled);
}

#[test]
fn corrupt_and_stale_entries_are_rejected_recompiled_and_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    cached_sandbox(&dir)
        .load("echo.wat", ECHO.as_bytes(), "_start")
        .unwrap();
    let entry = only_entry(&dir);
    let good = std::fs::read(&entry).unwrap();

    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    for damaged in [flipped, good[..40].to_vec(), Vec::new()] {
        std::fs::write(&entry, &damaged).unwrap();
        let plugin = cached_sandbox(&dir)
            .load("echo.wat", ECHO.as_bytes(), "_start")
            .unwrap();
        assert_eq!(
            plugin.cache_status(),
            CacheStatus::Rejected {
                reason: Rejected::Corrupt,
                stored: true
            }
        );
        assert_eq!(plugin.call(b"x").stdout, b"x");
        assert_eq!(std::fs::read(&entry).unwrap(), good);
    }

    // An intact entry of another module put under this module's name.
    let other_dir = tmp.path().join("other");
    cached_sandbox(&other_dir)
        .load("remembers.wat", REMEMBERS.as_bytes(), "_start")
        .unwrap();
    std::fs::copy(only_entry(&other_dir), &entry).unwrap();
    let plugin = cached_sandbox(&dir)
        .load("echo.wat", ECHO.as_bytes(), "_start")
        .unwrap();
    assert_eq!(
        plugin.cache_status(),
        CacheStatus::Rejected {
            reason: Rejected::Stale,
            stored: true
        }
    );
    assert_eq!(plugin.call(b"echo").stdout, b"echo", "ran the other module");
    assert_eq!(std::fs::read(&entry).unwrap(), good);
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_cache_folder_or_entry_others_could_write_is_not_read_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    cached_sandbox(&dir)
        .load("echo.wat", ECHO.as_bytes(), "_start")
        .unwrap();
    let entry = only_entry(&dir);
    let good = std::fs::read(&entry).unwrap();
    let load = || {
        cached_sandbox(&dir)
            .load("echo.wat", ECHO.as_bytes(), "_start")
            .unwrap()
    };
    // A folder writable by group or others: nothing read from it, nothing stored in it.
    for mode in [0o770, 0o707, 0o1777] {
        set_mode(&dir, mode);
        let plugin = load();
        assert_eq!(
            plugin.cache_status(),
            CacheStatus::Rejected {
                reason: Rejected::Untrusted,
                stored: false
            },
            "folder mode {mode:o}"
        );
        assert_eq!(plugin.call(b"x").stdout, b"x");
    }
    set_mode(&dir, 0o700);
    assert_eq!(load().cache_status(), CacheStatus::Hit);
    // An entry writable by others is not read, and is replaced by this user's own.
    set_mode(&entry, 0o622);
    assert_eq!(
        load().cache_status(),
        CacheStatus::Rejected {
            reason: Rejected::Untrusted,
            stored: true
        }
    );
    assert_eq!(load().cache_status(), CacheStatus::Hit);
    assert_eq!(std::fs::read(&entry).unwrap(), good);
    // A link where the entry should be is not followed, even to an intact entry.
    let elsewhere = tmp.path().join("elsewhere.cwasm");
    std::fs::rename(&entry, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &entry).unwrap();
    assert_eq!(
        load().cache_status(),
        CacheStatus::Rejected {
            reason: Rejected::Untrusted,
            stored: true
        }
    );
    assert!(!std::fs::symlink_metadata(&entry).unwrap().is_symlink());
}

#[test]
fn a_cache_folder_that_cannot_be_written_only_means_compiling() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let sandbox = cached_sandbox(&file.join("cache"));
    let plugin = sandbox.load("echo.wat", ECHO.as_bytes(), "_start").unwrap();
    assert_eq!(plugin.cache_status(), CacheStatus::Miss { stored: false });
    assert_eq!(plugin.call(b"still runs").stdout, b"still runs");
}

#[test]
fn plugins_the_pool_cannot_hold_are_cached_for_on_demand_allocation() {
    let tmp = tempfile::tempdir().unwrap();
    let two = b"(module (memory 1) (memory 1) (func (export \"_start\")))";
    let load = || {
        Sandbox::builder(policy(None, ""))
            .cache(Some(ModuleCache::new(tmp.path())))
            .build()
            .unwrap()
            .load("two.wat", two, "_start")
            .unwrap()
    };
    assert_eq!(load().cache_status(), CacheStatus::Miss { stored: true });
    let again = load();
    assert_eq!(again.cache_status(), CacheStatus::Hit);
    assert_eq!(again.allocation(), Allocation::OnDemand);
    assert_eq!(again.call(b"").report.outcome.status, Status::Completed);
}

#[test]
fn host_calls_from_a_start_function_reach_guest_memory_too() {
    // The memory export is cached after instantiation; a start function runs before that.
    let wat = br#"(module
      (import "sandbox" "output_write" (func $write (param i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "from start;from entry")
      (func $init (drop (call $write (i32.const 0) (i32.const 11))))
      (start $init)
      (func (export "_start") (drop (call $write (i32.const 11) (i32.const 10)))))"#;
    let sandbox = Sandbox::builder(policy(None, "")).build().unwrap();
    let plugin = sandbox.load("start.wat", wat, "_start").unwrap();
    for _ in 0..2 {
        assert_eq!(plugin.call(b"").stdout, b"from start;from entry");
    }
}
