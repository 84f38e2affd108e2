//! The bottom layer: Wasmtime's configuration, the shared epoch thread, the resource limiter,
//! the compiled-module cache and the versions they are keyed by. It imports nothing else of
//! the runtime.

pub(crate) mod cache;
pub(crate) mod epoch;
pub(crate) mod limiter;
pub mod module_limits;
pub(crate) mod read;

use wasmtime::{Config, Engine};

/// The runtime's own version, as reports record it.
pub const SANDBOX_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The Wasmtime release the runtime is built on (checked against Cargo.lock by a test).
pub const WASMTIME_VERSION: &str = "48.0.8";

/// The engine settings every run uses: fuel and epochs on, threads off (shared memories would
/// grow outside the limiter).
pub(crate) fn config() -> Config {
    let mut config = Config::new();
    config.consume_fuel(true);
    config.epoch_interruption(true);
    config.max_wasm_stack(1 << 20);
    config
}

/// An engine with [`config`]'s settings, instances allocated on demand.
pub(crate) fn on_demand() -> wasmtime::Result<Engine> {
    Engine::new(&config())
}
