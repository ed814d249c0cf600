//! churnguard turns raw customer data into churn predictions, a customer
//! health index and action.
//!
//! The library is the product; the `churnguard` binary is a thin shell over
//! it. Layers, bottom up:
//!
//! - [`data`]: the data model, reading and validating CSV/Parquet tables,
//!   flat tables with a TOML schema, and the seeded synthetic company;
//! - [`features`]: point-in-time features and churn labels on polars' lazy API;
//! - [`eval`]: metrics (ROC-AUC, PR-AUC, log loss, Brier, calibration, lift) and calibrators;
//! - [`models`]: the model families behind `ChurnModel`, with their preprocessing;
//! - [`train`]: splits, fitting, calibration, the champion rule;
//! - [`registry`]: versioned models on disk, atomic writes, the champion alias;
//! - [`report`]: the self-contained HTML training report;
//! - [`cli`]: the command line.
//!
//! ```
//! use churnguard::data::synthetic::{generate, GeneratorParams};
//! use churnguard::features::{build_features, default_snapshots, FeatureParams};
//!
//! let company = generate(&GeneratorParams { n_customers: 200, ..Default::default() }).unwrap();
//! let snapshots = default_snapshots(&company.tables, 90, 6).unwrap();
//! let table = build_features(&company.tables, &FeatureParams { snapshots, horizon_days: 90 }).unwrap();
//! assert!(table.height() > 0);
//! ```
#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod data;
pub mod eval;
pub mod features;
#[doc(hidden)]
pub mod fuzz_harness;
pub mod health;
pub mod interventions;
pub mod kpi;
pub mod models;
pub mod registry;
pub mod report;
pub mod scoring;
pub mod serve;
pub mod service;
pub mod store;
pub mod train;
pub mod value;
