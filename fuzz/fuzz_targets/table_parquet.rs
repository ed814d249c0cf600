//! Fuzz target `table_parquet`: see `churnguard::fuzz_harness`.
//!
//! polars-parquet panics on some malformed footers; churnguard catches that
//! panic and reports the file as unreadable. libfuzzer-sys's panic hook
//! would abort first, so this target restores a quiet hook: a panic that
//! churnguard does not catch still aborts (it cannot unwind into libFuzzer).
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: {
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| {
        churnguard::fuzz_harness::run("table_parquet", data);
    }
);
