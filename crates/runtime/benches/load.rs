//! Loading the sample plugin: compiling it (what a cache miss costs, WAT parse included),
//! deserializing its compiled form from memory, and the sandbox's cached load (hash the
//! bytes, read the entry, check its digest and header, deserialize, check imports, resolve
//! the linker) on the CLI's on-demand engine.

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use sandbox_runtime::{Allocation, CacheStatus, ModuleCache, Sandbox};
use wasmtime::Module;

fn bench(c: &mut Criterion) {
    let demo = common::Demo::new(&[]);
    let cache_dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::builder_from_file(&demo.policy())
        .unwrap()
        .allocation(Allocation::OnDemand)
        .cache(Some(ModuleCache::new(cache_dir.path())))
        .build()
        .unwrap();
    let bytes = common::example("capability_allowed.wat");
    let first = sandbox.load("sample", &bytes, "_start").unwrap();
    assert_eq!(first.cache_status(), CacheStatus::Miss { stored: true });
    let engine = first.engine().clone();
    let serialized = Module::new(&engine, &bytes).unwrap().serialize().unwrap();

    let mut group = c.benchmark_group("load_sample_plugin");
    group.bench_function("compile", |b| {
        b.iter(|| Module::new(&engine, &bytes).unwrap())
    });
    group.bench_function("deserialize", |b| {
        // SAFETY: bytes just made by `Module::serialize` on this engine.
        b.iter(|| unsafe { Module::deserialize(&engine, &serialized).unwrap() })
    });
    group.bench_function("sandbox_cached_load", |b| {
        b.iter(|| {
            let plugin = sandbox.load("sample", &bytes, "_start").unwrap();
            assert_eq!(plugin.cache_status(), CacheStatus::Hit);
            plugin
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = bench
}
criterion_main!(benches);
