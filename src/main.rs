//! The `churnguard` binary: a thin shell over [`churnguard::cli`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    churnguard::cli::run(churnguard::cli::Cli::parse())
}
