//! Per-call setup: bare Wasmtime (`InstancePre` on the same pooling engine, a plain store)
//! against the sandbox's per-call setup (`Plugin::instantiate`: fresh broker, limiter, stdio,
//! fuel, epoch deadline, then the same `InstancePre`), on one thread and on two at once. A
//! third variant adds to bare only what Wasmtime itself needs for budgets on each store.

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use sandbox_runtime::{Allocation, Plugin};
use wasmtime::{
    InstancePre, Linker, Module, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline,
};

const EMPTY: &[u8] = b"(module (func (export \"_start\")))";
const ONE_PAGE: &[u8] = b"(module (memory (export \"memory\") 1) (data (i32.const 0) \"hello\") (func (export \"_start\")))";

/// The plugin's module on the plugin's own engine, its imports stubbed, as a bare embedder
/// would instantiate it.
fn bare_pre<T: 'static>(plugin: &Plugin, bytes: &[u8]) -> InstancePre<T> {
    let module = Module::new(plugin.engine(), bytes).unwrap();
    let mut linker = Linker::new(plugin.engine());
    linker.define_unknown_imports_as_traps(&module).unwrap();
    linker.instantiate_pre(&module).unwrap()
}

fn bare_once(pre: &InstancePre<()>) {
    let mut store = Store::new(pre.module().engine(), ());
    std::hint::black_box(pre.instantiate(&mut store).unwrap());
}

/// Bare, plus what Wasmtime needs for budgets on each store (a limiter, fuel, an epoch
/// deadline with a callback): the part of the sandbox's setup that is Wasmtime's.
fn budgeted_once(pre: &InstancePre<StoreLimits>) {
    let limits = StoreLimitsBuilder::new().memory_size(64 << 20).build();
    let mut store = Store::new(pre.module().engine(), limits);
    store.limiter(|limits| limits);
    store.set_fuel(1_000_000).unwrap();
    store.set_epoch_deadline(1000);
    store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Continue(1000)));
    std::hint::black_box(pre.instantiate(&mut store).unwrap());
}

fn sandbox_once(plugin: &Plugin) {
    std::hint::black_box(plugin.instantiate(b""));
}

fn bench(c: &mut Criterion) {
    let demo = common::Demo::new(&[]);
    let sandbox = demo.sandbox(Allocation::Pooling);
    assert_eq!(sandbox.allocation(), Allocation::Pooling);
    let cases: [(&str, Vec<u8>); 3] = [
        ("empty", EMPTY.to_vec()),
        ("one_page", ONE_PAGE.to_vec()),
        ("sample_plugin", common::example("capability_allowed.wat")),
    ];
    let mut group = c.benchmark_group("instantiate");
    for (name, bytes) in &cases {
        let plugin = sandbox.load(name, bytes, "_start").unwrap();
        assert_eq!(plugin.allocation(), Allocation::Pooling);
        let pre = bare_pre(&plugin, bytes);
        let budgeted = bare_pre(&plugin, bytes);
        group.bench_function(BenchmarkId::new("bare", name), |b| {
            b.iter(|| bare_once(&pre))
        });
        group.bench_function(BenchmarkId::new("bare_budgeted", name), |b| {
            b.iter(|| budgeted_once(&budgeted))
        });
        group.bench_function(BenchmarkId::new("sandbox", name), |b| {
            b.iter(|| sandbox_once(&plugin))
        });
    }
    group.finish();

    // Two threads instantiating at once: time per instantiation on each thread.
    let mut group = c.benchmark_group("instantiate_2_threads");
    for (name, bytes) in &cases {
        let plugin = sandbox.load(name, bytes, "_start").unwrap();
        let pre = bare_pre(&plugin, bytes);
        group.bench_function(BenchmarkId::new("bare", name), |b| {
            b.iter_custom(|iters| {
                let started = std::time::Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..2 {
                        s.spawn(|| (0..iters).for_each(|_| bare_once(&pre)));
                    }
                });
                started.elapsed()
            })
        });
        group.bench_function(BenchmarkId::new("sandbox", name), |b| {
            b.iter_custom(|iters| {
                let started = std::time::Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..2 {
                        s.spawn(|| (0..iters).for_each(|_| sandbox_once(&plugin)));
                    }
                });
                started.elapsed()
            })
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
