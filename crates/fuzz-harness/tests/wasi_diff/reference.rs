//! The reference side of the `wasi_diff` harness: Wasmtime's own WASI preview 1
//! (`wasmtime_wasi::p1`), with the tree's folder preopened as the sandbox mounts it. Shared
//! by the corpus test and the cargo-fuzz target (`fuzz/fuzz_targets/wasi_diff.rs`).

use std::path::Path;
use std::sync::OnceLock;

use wasmtime::{Engine, Linker, Module, Store};
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// Runs the module's `_start` with `root` preopened read-write as `mount`; returns its stdout.
pub fn run_reference(wat: &str, root: &Path, mount: &str) -> Vec<u8> {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    let engine = ENGINE.get_or_init(Engine::default);
    let module = Module::new(engine, wat).expect("the script's module compiles");
    let mut linker: Linker<WasiP1Ctx> = Linker::new(engine);
    p1::add_to_linker_sync(&mut linker, |ctx| ctx).expect("preview 1 links");
    let stdout = MemoryOutputPipe::new(1 << 20);
    let ctx = WasiCtxBuilder::new()
        .stdout(stdout.clone())
        .preopened_dir(root, mount, FsPerms::ReadWrite)
        .expect("preopen")
        .build_p1();
    let mut store = Store::new(engine, ctx);
    let instance = linker
        .instantiate(&mut store, &module)
        .expect("the script instantiates");
    instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .expect("_start")
        .call(&mut store, ())
        .expect("the script runs under Wasmtime");
    drop(store);
    stdout.contents().to_vec()
}
