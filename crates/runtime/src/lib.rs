//! Runs WebAssembly plugins under a sandbox policy: Wasmtime with fuel, epoch deadlines and a
//! resource limiter for budgets; a capability broker through which every host operation
//! passes; the `sandbox` host ABI and WASI preview 1; and the JSON report of every call.
//!
//! Embedders start at [`Sandbox`]: build it from a policy once, load a plugin once, and call
//! it many times, each call isolated and reported. The CLI runs plugins the same way.
//!
//! The crate is layered; each layer imports only the layers below it (a test enforces it):
//!
//! | layer | what it holds |
//! |---|---|
//! | `sandbox` | the embedding API: [`Sandbox`], its builder, [`Plugin`], [`Call`] |
//! | `call` | load checks, per-call state, instantiate, invoke, classify the outcome |
//! | `report` | the report, its canonical JSON, hash chain and verification |
//! | `abi` | front ends (`sandbox`, `wasi_p1`): translate guest arguments and errors only |
//! | `guest` | bounds-checked guest memory, fuel charged before copying |
//! | `state` | the Store data: broker, capabilities, stdio, limiter, WASI tables |
//! | `cap` | `fs`, `net`: the only code holding host handles; each operation takes a `Permit` |
//! | `broker` | decide (the policy crate), charge the quota, record the event, issue a `Permit` |
//! | `engine` | Wasmtime configuration, epoch thread, limiter, module cache, versions |

#![warn(missing_docs)]
#![deny(unsafe_code)]

mod abi;
mod broker;
mod call;
mod cap;
mod engine;
mod guest;
pub mod report;
mod sandbox;
mod state;

pub use abi::sandbox::{
    ERR_BAD_HANDLE, ERR_DENIED, ERR_FAULT, ERR_INVALID, ERR_IO, ERR_NOT_FOUND, ERR_QUOTA,
    ERR_READ_ONLY, ERR_TIMED_OUT, ERR_UNREACHABLE, ERR_WRONG_KIND, FUNCTIONS as ABI_FUNCTIONS,
    MODULE as ABI_MODULE, WRITE_APPEND,
};
pub use abi::wasi_p1::{
    errno as wasi_errno, GuestExit, FUNCTIONS as WASI_FUNCTIONS, MODULE as WASI_MODULE,
};
pub use call::{RunOutput, StartError};
pub use cap::fs::MountError;
pub use cap::net::{MAX_HOST_BYTES, MAX_OPEN_CONNECTIONS};
pub use engine::cache::{CacheStatus, ModuleCache, Rejected};
pub use engine::limiter::LimitHit;
pub use engine::module_limits;
pub use engine::read::{read_regular_file, ReadError};
pub use guest::MAX_IO_BYTES;
pub use report::stream::{EventSink, JsonLinesSink, RunInfo};
pub use report::{sha256_hex, verify_report, Report, Status, VerifyError};
pub use sandbox::{Allocation, Call, CancelHandle, Plugin, Sandbox, SandboxBuilder};
pub use state::{DenyTrap, OutputStreams};

/// Not part of the API: entry points for the benchmarks and the allocation test, compiled
/// only with the `bench-hooks` feature (which the crate's own dev-dependency turns on).
#[cfg(feature = "bench-hooks")]
#[doc(hidden)]
pub mod bench_support {
    use std::borrow::Cow;
    use std::sync::Arc;
    use std::time::Instant;

    use sandbox_policy::{FsAccess, FsQuery, Policy};

    use crate::broker::Broker;

    /// A broker on its own, for timing the policy check of host calls.
    pub struct BenchBroker(Broker);

    impl BenchBroker {
        /// A broker for `policy` whose deadline is `deadline`.
        pub fn new(policy: Arc<Policy>, deadline: Instant) -> BenchBroker {
            BenchBroker(Broker::new(policy, deadline))
        }

        /// The policy check of one filesystem request (decide and record the event), as the
        /// host ABI makes it after resolving the path. True when allowed.
        pub fn check_fs(&mut self, op: FsAccess, raw: &[u8], bytes: u64) -> bool {
            let (path, not_utf8) = match std::str::from_utf8(raw) {
                Ok(s) => (Cow::Borrowed(s), false),
                Err(_) => (String::from_utf8_lossy(raw), true),
            };
            let query = FsQuery {
                op,
                path: &path,
                not_utf8,
                resolved: None,
                bytes,
            };
            // The check alone (decide and record), as before the kernel: the outcome the
            // host operation would set afterwards is not part of it.
            self.0.check_fs(&query).is_ok()
        }

        /// Empties the usage and log as a sandbox does between calls, keeping the log's
        /// storage.
        pub fn reset(&mut self) {
            self.0.reset();
        }

        /// Bytes the event log holds.
        pub fn log_held_bytes(&self) -> usize {
            self.0.log().held_bytes()
        }

        /// Allowed decisions so far.
        pub fn allowed(&self) -> u64 {
            self.0.log().allowed()
        }

        /// Denied decisions so far.
        pub fn denied(&self) -> u64 {
            self.0.log().denied()
        }

        /// Events recorded in the log (the rest are only counted).
        pub fn recorded(&self) -> usize {
            self.0.log().events().len()
        }
    }
}
