//! `wasi_diff`: a script of WASI preview 1 calls, run under the sandbox and under Wasmtime's
//! own preview 1 over identical trees; any difference but the documented ones is a finding.
#![no_main]

#[path = "../../crates/fuzz-harness/tests/wasi_diff/reference.rs"]
mod reference;

use libfuzzer_sys::fuzz_target;
use sandbox_fuzz_harness::wasi_diff::{compare, WasiScript, MOUNT};

fuzz_target!(|data: &[u8]| {
    let script = WasiScript::decode(data);
    compare(&script, &|wat, root| reference::run_reference(wat, root, MOUNT));
});
