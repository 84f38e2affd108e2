//! `report_read`: the body is `sandbox_fuzz_harness::report_read`, which `cargo test` also replays.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sandbox_fuzz_harness::report_read(data);
});
