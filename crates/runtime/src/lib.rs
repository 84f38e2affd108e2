//! Runs WebAssembly plugins under a sandbox policy: Wasmtime with fuel, epoch deadlines and a
//! resource limiter for budgets; a capability broker through which every host operation
//! passes; the `sandbox` host ABI; and the JSON report of the run.
//!
//! Embedders start at [`Sandbox`]: build it from a policy once, load a plugin once, and call
//! it many times, each call isolated and reported. [`run`] is the one-shot form the CLI uses.

mod abi;
mod broker;
mod cache;
mod epoch;
pub mod events;
mod fs;
mod fs_open;
mod limiter;
mod net;
pub mod report;
mod run;
mod sandbox;
mod wasi;

pub use abi::{
    ERR_BAD_HANDLE, ERR_DENIED, ERR_FAULT, ERR_INVALID, ERR_IO, ERR_NOT_FOUND, ERR_QUOTA,
    ERR_READ_ONLY, ERR_TIMED_OUT, ERR_UNREACHABLE, ERR_WRONG_KIND, FUNCTIONS as ABI_FUNCTIONS,
    MAX_IO_BYTES, MODULE as ABI_MODULE, WRITE_APPEND,
};
pub use broker::{Broker, HostError};
pub use cache::{CacheStatus, ModuleCache, Rejected};
pub use fs::{FileStat, MountError, Mounts};
pub use limiter::LimitHit;
pub use net::{MAX_HOST_BYTES, MAX_OPEN_CONNECTIONS};
pub use report::{sha256_hex, verify_report, Report, Status, VerifyError};
pub use run::{
    engine, load_module, run, run_with_cache, run_with_engine, Capture, DenyTrap, RunConfig,
    RunOutput, StartError,
};
pub use sandbox::{Allocation, Call, Plugin, Sandbox, SandboxBuilder};
pub use wasi::{
    errno as wasi_errno, GuestExit, FUNCTIONS as WASI_FUNCTIONS, MODULE as WASI_MODULE,
};

/// Not part of the API: entry points for the benchmarks in `benches/`, which can only reach
/// public items.
#[doc(hidden)]
pub mod bench_support {
    use sandbox_policy::FsAccess;

    use crate::Broker;

    /// The policy check of one filesystem request (decide and record the event), as the host
    /// ABI makes it after resolving the path. True when allowed.
    pub fn check_fs(broker: &mut Broker, op: FsAccess, path: &[u8], bytes: u64) -> bool {
        broker.check_fs_unresolved(op, path, bytes).is_ok()
    }

    /// Empties the broker's usage and log as a sandbox does between calls, keeping the log's
    /// storage.
    pub fn reset(broker: &mut Broker) {
        broker.reset();
    }
}
