//! Host calls: a Wasm loop of N calls to a no-op import, against the same loop where each
//! call makes the broker's policy check of a file request (decide and record the event) that
//! is allowed, or denied by a rule. Both imports read their arguments the way the host ABI
//! does (memory export, bounds check). Then whole `sandbox` ABI calls inside a plugin call:
//! `fs_read` outside every mount (denied, no file touched) and `fs_stat` of an allowed file
//! (path resolution beneath the mount and a `stat`).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sandbox_policy::FsAccess;
use sandbox_runtime::bench_support::BenchBroker;
use sandbox_runtime::{Allocation, Status};
use wasmtime::{Caller, Linker, Memory, Module, Store, TypedFunc};

const N: u32 = 1000;

const PROBE_LOOP: &str = r#"(module
  (import "bench" "probe" (func $probe (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "/data/hello.txt")
  (data (i32.const 64) "/data/secret/key.txt")
  (func (export "run") (param $ptr i32) (param $len i32) (param $n i32)
    (loop $l
      (drop (call $probe (local.get $ptr) (local.get $len)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (local.get $n)))))"#;

struct State {
    broker: BenchBroker,
    /// Cached after instantiation, as the sandbox caches it.
    memory: Option<Memory>,
}

type Loop = TypedFunc<(i32, i32, i32), ()>;

/// The guest's path argument, checked as the ABI checks it.
fn path_of<'a>(
    caller: &'a mut Caller<'_, State>,
    ptr: i32,
    len: i32,
) -> Option<(&'a [u8], &'a mut State)> {
    let memory = caller.data().memory?;
    let (data, state) = memory.data_and_store_mut(caller);
    let start = ptr as u32 as usize;
    let end = start.checked_add(len as u32 as usize)?;
    Some((data.get(start..end)?, state))
}

fn bench(c: &mut Criterion) {
    let demo = common::Demo::new(&[]);
    let sandbox = demo.sandbox(Allocation::Pooling);
    let engine = sandbox.engine().clone();
    let policy = Arc::clone(sandbox.policy());
    let fresh = || State {
        broker: BenchBroker::new(
            Arc::clone(&policy),
            Instant::now() + Duration::from_secs(3600),
        ),
        memory: None,
    };
    let module = Module::new(&engine, PROBE_LOOP).unwrap();

    let mut bare = Linker::<State>::new(&engine);
    bare.func_wrap("bench", "probe", |_: Caller<'_, State>, _: i32, _: i32| {
        0i32
    })
    .unwrap();
    let mut checked = Linker::<State>::new(&engine);
    checked
        .func_wrap(
            "bench",
            "probe",
            |mut caller: Caller<'_, State>, ptr: i32, len: i32| -> i32 {
                match path_of(&mut caller, ptr, len) {
                    Some((path, state)) => {
                        i32::from(state.broker.check_fs(FsAccess::Read, path, 0))
                    }
                    None => -4,
                }
            },
        )
        .unwrap();

    let setup = |linker: &Linker<State>| -> (Store<State>, Loop) {
        let mut store = Store::new(&engine, fresh());
        store.set_fuel(u64::MAX / 2).unwrap();
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = linker.instantiate(&mut store, &module).unwrap();
        store.data_mut().memory = instance.get_memory(&mut store, "memory");
        let run = instance.get_typed_func(&mut store, "run").unwrap();
        (store, run)
    };
    // Each iteration empties the broker as the sandbox does between calls, so every event is
    // recorded. `expect`: the allows and denies one iteration counts.
    let mut iterate =
        |name: &str, linker: &Linker<State>, ptr: i32, len: i32, expect: (u64, u64)| {
            let (mut store, run) = setup(linker);
            let once = |store: &mut Store<State>| {
                store.data_mut().broker.reset();
                run.call(&mut *store, (ptr, len, N as i32)).unwrap();
            };
            once(&mut store);
            let broker = &store.data().broker;
            assert_eq!((broker.allowed(), broker.denied()), expect, "{name}");
            c.benchmark_group("hostcall")
                .throughput(Throughput::Elements(N.into()))
                .bench_function(name, |b| b.iter(|| once(&mut store)));
        };
    let n = u64::from(N);
    iterate("noop_import", &bare, 0, 15, (0, 0));
    iterate("policy_allow", &checked, 0, 15, (n, 0));
    iterate("policy_deny", &checked, 64, 20, (0, n));

    // The parts of a check, without Wasm: `decide` alone, then decide and record.
    let mut group = c.benchmark_group("hostcall_parts");
    group.throughput(Throughput::Elements(N.into()));
    let usage = sandbox_policy::Usage::default();
    for (name, path) in [
        ("allow", "/data/hello.txt"),
        ("deny", "/data/secret/key.txt"),
    ] {
        let query = sandbox_policy::FsQuery {
            op: FsAccess::Read,
            path,
            not_utf8: false,
            resolved: None,
            bytes: 0,
        };
        group.bench_function(BenchmarkId::new("decide", name), |b| {
            b.iter(|| {
                for _ in 0..N {
                    std::hint::black_box(policy.decide_fs(&usage, std::hint::black_box(&query)));
                }
            })
        });
        let mut state = fresh();
        group.bench_function(BenchmarkId::new("decide_and_record", name), |b| {
            b.iter(|| {
                state.broker.reset();
                for _ in 0..N {
                    state.broker.check_fs(FsAccess::Read, path.as_bytes(), 0);
                }
            })
        });
    }
    group.finish();

    // Whole ABI calls, in a plugin call whose setup and report are spread over N host calls.
    let abi = common::Demo::new(&[("max_events: 10000", "max_events: 1")]);
    let abi_sandbox = abi.sandbox(Allocation::Pooling);
    let mut group = c.benchmark_group("hostcall_abi");
    group.throughput(Throughput::Elements(N.into()));
    for (name, call) in [
        (
            "fs_read_outside_mounts_denied",
            "(drop (call $fs_read (i32.const 0) (i32.const 11) (i64.const 0) (i32.const 1024) (i32.const 64)))",
        ),
        (
            "fs_stat_allowed",
            "(drop (call $fs_stat (i32.const 32) (i32.const 15) (i32.const 2048)))",
        ),
        ("none", "(nop)"),
    ] {
        let wat = format!(
            r#"(module
              (import "sandbox" "fs_read" (func $fs_read (param i32 i32 i64 i32 i32) (result i32)))
              (import "sandbox" "fs_stat" (func $fs_stat (param i32 i32 i32) (result i32)))
              (memory (export "memory") 1)
              (data (i32.const 0) "/etc/passwd")
              (data (i32.const 32) "/data/hello.txt")
              (func (export "_start") (local $n i32)
                (local.set $n (i32.const {N}))
                (loop $l
                  {call}
                  (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                  (br_if $l (local.get $n)))))"#
        );
        let plugin = abi_sandbox.load(name, wat.as_bytes(), "_start").unwrap();
        let out = plugin.call(b"");
        assert_eq!(out.report.outcome.status, Status::Completed);
        group.bench_function(BenchmarkId::new("plugin_call_of_1000", name), |b| {
            b.iter(|| plugin.call(b""))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = bench
}
criterion_main!(benches);
