//! The bodies of the cargo-fuzz targets in `fuzz/`. Each takes the fuzzer's bytes and panics
//! only when an invariant of the sandbox breaks, so the same function serves `cargo fuzz run`
//! and the workspace tests that replay the committed seed corpora (`tests/replay.rs`).
//!
//! - [`policy_parse`]: any bytes in, an error or a policy out, never a panic; lint agrees.
//! - [`decide`]: arbitrary requests against generated, parsed policies; nothing outside every
//!   mount is ever allowed, deny rules win, read-only mounts and quotas hold.
//! - [`host_abi`]: random sequences of `sandbox` host calls with random pointers and lengths,
//!   run by the real runtime over a temp-dir mount; nothing outside the mounts changes or leaks.
//! - [`report_read`]: any bytes as a report are a report with one meaning or one clear error.
//! - [`wasi_diff`]: scripts of WASI preview 1 calls run under the sandbox and under Wasmtime's
//!   own preview 1 over identical trees; every errno, result and the trees must match.

mod decide;
mod host_abi;
mod interpreter;
mod oracle;
mod policy_parse;
mod report_read;
mod script;
pub mod seeds;
pub mod wasi_diff;

pub use decide::decide;
pub use host_abi::{host_abi, run_script, snapshot};
pub use policy_parse::policy_parse;
pub use report_read::report_read;
pub use script::{Buf, Call, Handle, HostAbiScript, Port, Ptr};

/// A small deterministic generator (xorshift64*), so tests can feed thousands of varied inputs
/// through the targets without a dependency and with the same inputs on every run.
pub struct SeededBytes(u64);

impl SeededBytes {
    pub fn new(seed: u64) -> SeededBytes {
        SeededBytes(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `len` pseudo-random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}
