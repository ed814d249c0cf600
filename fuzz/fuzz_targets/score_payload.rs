//! Fuzz target `score_payload`: see `churnguard::fuzz_harness`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    churnguard::fuzz_harness::run("score_payload", data);
});
