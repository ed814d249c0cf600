//! The `churnguard` binary: a thin shell over [`churnguard::cli`].

use clap::Parser;

/// mimalloc rather than glibc's malloc: the server's request path and polars
/// allocate many small blocks from several threads, and glibc's arenas spent
/// a quarter of a loaded server's samples in `malloc`/`free`
/// (`bench/ANALYSIS.md`). libtorch's own allocations are not affected.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // `churnguard … | head` closes stdout early: that is the reader's
    // choice, not an error. Exit quietly (0) instead of panicking in println!.
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
    churnguard::cli::run(churnguard::cli::Cli::parse())
}
