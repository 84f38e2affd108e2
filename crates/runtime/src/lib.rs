//! Runs WebAssembly plugins under a sandbox policy: Wasmtime with fuel, epoch deadlines and a
//! resource limiter for budgets; a capability broker through which every host operation
//! passes; the `sandbox` host ABI; and the JSON report of the run.

mod abi;
mod broker;
pub mod events;
mod fs;
mod fs_open;
mod limiter;
mod net;
pub mod report;
mod run;
mod wasi;

pub use abi::{
    ERR_BAD_HANDLE, ERR_DENIED, ERR_FAULT, ERR_INVALID, ERR_IO, ERR_NOT_FOUND, ERR_QUOTA,
    ERR_READ_ONLY, ERR_WRONG_KIND, FUNCTIONS as ABI_FUNCTIONS, MAX_IO_BYTES, MODULE as ABI_MODULE,
    WRITE_APPEND,
};
pub use broker::{Broker, HostError};
pub use fs::{FileStat, MountError, Mounts};
pub use limiter::LimitHit;
pub use net::{MAX_HOST_BYTES, MAX_OPEN_CONNECTIONS};
pub use report::{sha256_hex, verify_report, Report, Status, VerifyError};
pub use run::{
    engine, load_module, run, run_with_engine, Capture, DenyTrap, RunConfig, RunOutput, StartError,
};
pub use wasi::{
    errno as wasi_errno, GuestExit, FUNCTIONS as WASI_FUNCTIONS, MODULE as WASI_MODULE,
};
