//! Front ends: the import modules a guest links against. Each one translates guest arguments
//! (through `guest`) into capability calls and their results into its own error codes; none
//! touches the host or decides.
//!
//! - [`sandbox`]: the native `sandbox` ABI (`docs/host-abi.md`).
//! - [`wasi_p1`]: WASI preview 1 (`wasi_snapshot_preview1`).

pub mod sandbox;
pub mod wasi_p1;

/// True for the imports the sandbox defines: the `sandbox` ABI and WASI preview 1.
pub(crate) fn provides(module: &str, name: &str) -> bool {
    (module == sandbox::MODULE && sandbox::FUNCTIONS.contains(&name))
        || (module == wasi_p1::MODULE && wasi_p1::FUNCTIONS.contains(&name))
}
