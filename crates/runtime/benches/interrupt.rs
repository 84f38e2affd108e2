//! What interruption costs compiled code: three kernels (a counting loop, recursive
//! Fibonacci, a memory-bound sum over 1 MiB) on four engines that differ only in their
//! interruption settings: none, epochs, fuel, both (the sandbox's setting).

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use wasmtime::{Config, Engine, Instance, Module, Store};

const KERNELS: &str = r#"(module
  (memory 16)
  (func (export "count") (param $n i32) (result i32)
    (local $i i32) (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (i32.xor (local.get $i) (i32.const 0x5a5a))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $acc))
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  ;; Sums 1 MiB of memory with a stride of 64 bytes (one load per cache line), `rounds` times.
  (func (export "memory") (param $rounds i32) (result i32)
    (local $p i32) (local $acc i32)
    (loop $round
      (local.set $p (i32.const 0))
      (loop $line
        (local.set $acc (i32.add (local.get $acc) (i32.load (local.get $p))))
        (i32.store (local.get $p) (local.get $acc))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (br_if $line (i32.lt_u (local.get $p) (i32.const 1048576))))
      (local.set $rounds (i32.sub (local.get $rounds) (i32.const 1)))
      (br_if $round (local.get $rounds)))
    (local.get $acc)))"#;

fn engine(epochs: bool, fuel: bool) -> Engine {
    let mut config = Config::new();
    config.epoch_interruption(epochs).consume_fuel(fuel);
    config.max_wasm_stack(1 << 20);
    Engine::new(&config).unwrap()
}

fn bench(c: &mut Criterion) {
    let variants = [
        ("none", false, false),
        ("epochs", true, false),
        ("fuel", false, true),
        ("both", true, true),
    ];
    let kernels = [
        ("loop", "count", 1_000_000),
        ("fib", "fib", 25),
        ("memory", "memory", 20),
    ];
    for (kernel, export, arg) in kernels {
        let mut group = c.benchmark_group(format!("interrupt_{kernel}"));
        for (name, epochs, fuel) in variants {
            let engine = engine(epochs, fuel);
            let module = Module::new(&engine, KERNELS).unwrap();
            let mut store = Store::new(&engine, ());
            if fuel {
                store.set_fuel(u64::MAX / 2).unwrap();
            }
            if epochs {
                store.set_epoch_deadline(u64::MAX / 2);
            }
            let instance = Instance::new(&mut store, &module, &[]).unwrap();
            let f = instance
                .get_typed_func::<i32, i32>(&mut store, export)
                .unwrap();
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| f.call(&mut store, arg).unwrap())
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = bench
}
criterion_main!(benches);
