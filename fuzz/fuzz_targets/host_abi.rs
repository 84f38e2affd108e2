//! `host_abi`: the body is `sandbox_fuzz_harness::host_abi`, which `cargo test` also replays.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sandbox_fuzz_harness::host_abi(data);
});
