//! Calls per second of the sample plugin from one thread against two threads sharing one
//! `Plugin` (the pooling sandbox a service would use). The goal is at least 1.8x from the
//! second thread on a 2-core machine: calls share no lock on their way.

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sandbox_runtime::{Allocation, Status};

/// Calls per measured iteration, split evenly over the threads.
const CALLS: u64 = 64;

fn bench(c: &mut Criterion) {
    let demo = common::Demo::new(&[]);
    let sandbox = demo.sandbox(Allocation::Pooling);
    let plugin = sandbox
        .load(
            "capability_allowed.wat",
            &common::example("capability_allowed.wat"),
            "_start",
        )
        .unwrap();
    assert_eq!(
        plugin.call(b"input").report.outcome.status,
        Status::Completed
    );
    let mut group = c.benchmark_group("throughput");
    group.throughput(Throughput::Elements(CALLS));
    for threads in [1u64, 2] {
        group.bench_function(
            BenchmarkId::new("sample_plugin", format!("{threads}_threads")),
            |b| {
                b.iter(|| {
                    std::thread::scope(|scope| {
                        for _ in 0..threads {
                            scope.spawn(|| {
                                for _ in 0..CALLS / threads {
                                    let out = plugin.call(b"input");
                                    assert_eq!(out.report.outcome.status, Status::Completed);
                                }
                            });
                        }
                    })
                })
            },
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = bench
}
criterion_main!(benches);
