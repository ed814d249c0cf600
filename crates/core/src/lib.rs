//! churnguard's domain: everything that turns customer data into churn
//! predictions, a health index and action, with no async runtime, database,
//! HTTP, command line or libtorch. The Python package and every shell
//! (CLI, server) build on this crate.
//!
//! Modules, bottom up:
//!
//! - [`hash`], the stable hash that assigns customers to experiment arms and
//!   partitions;
//! - [`data`], the data model, reading and validating CSV/Parquet tables,
//!   flat tables with a TOML schema, and the seeded synthetic company (the
//!   only module that touches the filesystem);
//! - [`features`], point-in-time features and churn labels on polars' lazy API;
//! - [`eval`], metrics (ROC-AUC, PR-AUC, log loss, Brier, calibration, lift)
//!   and calibrators;
//! - [`models`], the model families behind `ChurnModel` (artifacts, fitting of
//!   the pure-Rust families, inference of every family) with their
//!   preprocessing;
//! - [`health`], [`value`]: the health index and customer value;
//! - [`interventions`], the intervention policy, experiment and outcomes;
//! - [`kpi`], employee scorecards;
//! - [`monitor`], the training baseline, drift, realised performance and
//!   retrain triggers;
//! - [`scoring`], one customer's probability, reasons, value, health and
//!   trend, shared by batch and online scoring.
//!
//! ```
//! use churnguard_core::data::synthetic::{generate, GeneratorParams};
//! use churnguard_core::features::{build_features, default_snapshots, FeatureParams};
//!
//! let company = generate(&GeneratorParams { n_customers: 200, ..Default::default() }).unwrap();
//! let snapshots = default_snapshots(&company.tables, 90, 6).unwrap();
//! let table = build_features(&company.tables, &FeatureParams { snapshots, horizon_days: 90 }).unwrap();
//! assert!(table.height() > 0);
//! ```
#![warn(missing_docs)]

pub mod data;
pub mod error;
pub mod eval;
pub mod features;
pub mod hash;
pub mod health;
pub mod interventions;
pub mod kpi;
pub mod models;
pub mod monitor;
pub mod scoring;
pub mod value;

pub use error::{ErrorKind, HasKind};
