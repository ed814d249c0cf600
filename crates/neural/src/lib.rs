//! The neural family's trainer: the one crate that links tch (libtorch).
//!
//! It builds the `churnguard-neural` executable, which `churnguard train`
//! runs as a child process when asked for the neural family (the wire
//! format is `churnguard_core::models::neural::job`). Keeping libtorch in a
//! process of its own means the `churnguard` binary, the server and the
//! Python package never link or initialise it; the price is one pipe of the
//! preprocessed rows per neural fit (tens of milliseconds against seconds of
//! training). Without the `torch` feature this crate is empty, so the
//! workspace builds on machines without libtorch.
#![warn(missing_docs)]

#[cfg(feature = "torch")]
pub mod trainer;
