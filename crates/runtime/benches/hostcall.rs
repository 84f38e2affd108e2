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
use sandbox_runtime::{bench_support, Allocation, Broker, Mounts, Status};
use wasmtime::{Caller, Extern, Linker, Module, Store, TypedFunc};

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
    broker: Broker,
}

type Loop = TypedFunc<(i32, i32, i32), ()>;

/// The guest's path argument, checked as the ABI checks it.
fn path_of<'a>(
    caller: &'a mut Caller<'_, State>,
    ptr: i32,
    len: i32,
) -> Option<(&'a [u8], &'a mut State)> {
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return None;
    };
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
    let mounts = Mounts::open(&policy).unwrap();
    let fresh = || State {
        broker: Broker::new(
            Arc::clone(&policy),
            mounts.clone(),
            Instant::now() + Duration::from_secs(3600),
        ),
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
                    Some((path, state)) => i32::from(bench_support::check_fs(
                        &mut state.broker,
                        FsAccess::Read,
                        path,
                        0,
                    )),
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
        let run = instance.get_typed_func(&mut store, "run").unwrap();
        (store, run)
    };
    // Each iteration starts a fresh broker, as a call does, so every event is recorded.
    // `expect`: the allows and denies the last iteration's broker counted.
    let mut iterate =
        |name: &str, linker: &Linker<State>, ptr: i32, len: i32, expect: (u64, u64)| {
            let (mut store, run) = setup(linker);
            c.benchmark_group("hostcall")
                .throughput(Throughput::Elements(N.into()))
                .bench_function(name, |b| {
                    b.iter(|| {
                        *store.data_mut() = fresh();
                        run.call(&mut store, (ptr, len, N as i32)).unwrap();
                    })
                });
            let log = store.data().broker.log();
            assert_eq!((log.allowed(), log.denied()), expect, "{name}");
        };
    let n = u64::from(N);
    iterate("noop_import", &bare, 0, 15, (0, 0));
    iterate("policy_allow", &checked, 0, 15, (n, 0));
    iterate("policy_deny", &checked, 64, 20, (0, n));

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
