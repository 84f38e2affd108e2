//! The host-call path allocates nothing: deciding and recording a filesystem request, and a
//! whole `sandbox` ABI call that is denied before any file is touched. Allocations are counted
//! per thread, so the other tests of this binary running in parallel do not disturb the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sandbox_policy::{parse_policy, FsAccess};
use sandbox_runtime::bench_support::BenchBroker;
use sandbox_runtime::{Sandbox, Status};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the allocator also runs while thread-locals are torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is passed on unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

const POLICY: &str = "version: 1\nname: alloc\nfilesystem:\n  mounts:\n    - { guest: /data, host: DIR, mode: ro }\n  rules:\n    - { id: read-data, effect: allow, ops: [read], paths: [\"/data/**\"] }\n    - { id: no-secrets, effect: deny, ops: [read], paths: [\"/data/secret/**\"] }\nlimits: { max_events: 64 }\n";

#[test]
fn deciding_and_recording_a_file_request_allocates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let text = POLICY.replace("DIR", &dir.path().display().to_string());
    let policy = Arc::new(parse_policy(&text, Path::new(".")).unwrap());
    let mut broker = BenchBroker::new(policy, Instant::now() + Duration::from_secs(60));
    let cases: [(&[u8], bool); 3] = [
        (b"/data/hello.txt", true),
        (b"/data/secret/key", false),
        (b"/etc/passwd", false),
    ];
    // The first of each kind sets up the log's storage and its summary entry.
    for (path, allowed) in cases {
        assert_eq!(broker.check_fs(FsAccess::Read, path, 0), allowed);
    }
    // 3 x 20 more: recorded while the log has room (64), counted after.
    let n = allocations_in(|| {
        for _ in 0..20 {
            for (path, allowed) in cases {
                assert_eq!(broker.check_fs(FsAccess::Read, path, 0), allowed);
            }
        }
    });
    assert_eq!(n, 0, "allocations on the check path");
    assert_eq!(broker.allowed(), 21);
    assert_eq!(broker.denied(), 42);
    assert_eq!(broker.recorded(), 63);
}

#[test]
fn a_denied_abi_call_costs_no_allocation_however_often_the_plugin_makes_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = POLICY.replace("DIR", &dir.path().display().to_string());
    let sandbox = Sandbox::builder(Arc::new(parse_policy(&text, Path::new(".")).unwrap()))
        .build()
        .unwrap();
    let plugin = |n: u32| {
        let wat = format!(
            r#"(module
              (import "sandbox" "fs_read" (func $fs_read (param i32 i32 i64 i32 i32) (result i32)))
              (memory (export "memory") 1)
              (data (i32.const 0) "/etc/passwd")
              (func (export "_start") (local $n i32)
                (local.set $n (i32.const {n}))
                (loop $l
                  (drop (call $fs_read (i32.const 0) (i32.const 11) (i64.const 0) (i32.const 64) (i32.const 64)))
                  (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                  (br_if $l (local.get $n)))))"#
        );
        sandbox.load("reads.wat", wat.as_bytes(), "_start").unwrap()
    };
    let (few, many) = (plugin(100), plugin(10_000));
    // Warm both up: Wasmtime sets up some things on first use.
    for p in [&few, &many] {
        let out = p.call(b"");
        assert_eq!(out.report.outcome.status, Status::Completed);
    }
    let mut denied = (0, 0);
    let a = allocations_in(|| denied.0 = few.call(b"").report.summary.denied);
    let b = allocations_in(|| denied.1 = many.call(b"").report.summary.denied);
    assert_eq!(denied, (100, 10_000));
    assert_eq!(
        a, b,
        "9,900 more denied host calls changed the allocation count"
    );
}
