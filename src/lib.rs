//! The `churnguard` command line, and the one import path over the
//! workspace's crates for tests, benchmarks and fuzz targets.
//!
//! The crates, bottom up (ARCHITECTURE.md draws the graph):
//!
//! - `churnguard-core`: data, features, evaluation, models' inference and the
//!   pure-Rust families' fitting, health, value, interventions, KPI, scoring;
//! - `churnguard-train`: splits, calibration, evaluation, the champion rule,
//!   the training report;
//! - `churnguard-neural`: the neural family's trainer, the only crate with
//!   libtorch (an executable of its own);
//! - `churnguard-store`: SQLite and PostgreSQL;
//! - `churnguard-app`: configuration, the model registry, the operations;
//! - `churnguard-server`: the HTTP API and the web app;
//! - this crate: the command line ([`cli`]) and the composed
//!   configuration file ([`config`]).
//!
//! The modules below re-export those crates under short names, so
//! `churnguard::data::…` is `churnguard_core::data::…`.
#![warn(missing_docs)]

pub mod cli;
pub mod config;
#[doc(hidden)]
pub mod fuzz_harness;

pub use churnguard_app::{neural, registry, service};
pub use churnguard_core::{data, error, eval, features, hash, health, interventions, kpi};
pub use churnguard_core::{models, monitor, scoring, value};
pub use churnguard_server as serve;
pub use churnguard_store as store;
pub use churnguard_train as train;
pub use churnguard_train::report;
