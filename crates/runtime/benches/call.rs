//! Calling into the plugin: a no-op export called bare (a typed function on an instance in a
//! store with fuel and an epoch deadline) against the sandbox's call of its entry in a
//! prepared call (the same instance kind, budgets armed, result classified). Then whole
//! in-process calls end to end: setup, run, report.

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use sandbox_runtime::{Allocation, Status};
use wasmtime::{Linker, Module, Store};

const NOOP: &str = "(module (func (export \"_start\")))";

/// The sample plugin's host operations done with std: read, stat and list under `data`, write
/// then append `out/result.log`.
fn native_sample_io(fixtures: &std::path::Path) {
    use std::io::Write;
    let text = std::fs::read(fixtures.join("data/hello.txt")).unwrap();
    std::fs::metadata(fixtures.join("data/hello.txt")).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(fixtures.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    let out = fixtures.join("out/result.log");
    std::fs::write(&out, b"copied: ").unwrap();
    let mut file = std::fs::OpenOptions::new().append(true).open(&out).unwrap();
    file.write_all(&text).unwrap();
}

fn bench(c: &mut Criterion) {
    // Budgets that a long measurement cannot exhaust.
    let sandbox = common::plain(
        "budgets: { fuel: 1_000_000_000_000_000, timeout_ms: 3_600_000, memory_bytes: 1MiB }\n",
    );
    let plugin = sandbox.load("noop.wat", NOOP.as_bytes(), "_start").unwrap();
    let engine = plugin.engine().clone();
    let module = Module::new(&engine, NOOP).unwrap();
    let mut store = Store::new(&engine, ());
    store.set_fuel(u64::MAX / 2).unwrap();
    store.set_epoch_deadline(u64::MAX / 2);
    let instance = Linker::new(&engine)
        .instantiate(&mut store, &module)
        .unwrap();
    let func = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .unwrap();
    let mut call = plugin.instantiate(b"");
    assert!(call.bench_invoke());

    let mut group = c.benchmark_group("call_noop_export");
    group.bench_function("bare", |b| b.iter(|| func.call(&mut store, ()).unwrap()));
    group.bench_function("sandbox", |b| b.iter(|| assert!(call.bench_invoke())));
    group.finish();
    drop(call);

    let mut group = c.benchmark_group("call_end_to_end");
    let demo = common::Demo::new(&[]);
    let demo_sandbox = demo.sandbox(Allocation::Pooling);
    for (name, bytes) in [
        ("noop", NOOP.as_bytes().to_vec()),
        ("sample_plugin", common::example("capability_allowed.wat")),
    ] {
        let plugin = demo_sandbox.load(name, &bytes, "_start").unwrap();
        assert_eq!(
            plugin.call(b"input").report.outcome.status,
            Status::Completed
        );
        group.bench_function(BenchmarkId::new("sandbox", name), |b| {
            b.iter(|| plugin.call(b"input"))
        });
    }
    // What the sample plugin's file operations cost done directly, for scale.
    let fixtures = demo.dir.path().join("policies/fixtures");
    group.bench_function(BenchmarkId::new("native_io", "sample_plugin"), |b| {
        b.iter(|| native_sample_io(&fixtures))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = bench
}
criterion_main!(benches);
