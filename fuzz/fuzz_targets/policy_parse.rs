//! `policy_parse`: the body is `sandbox_fuzz_harness::policy_parse`, which `cargo test` also replays.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sandbox_fuzz_harness::policy_parse(data);
});
