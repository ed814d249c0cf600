//! churnguard's application layer: what the command line and the server
//! share. It composes the domain (`churnguard-core`), training
//! (`churnguard-train`) and the store (`churnguard-store`) into operations:
//!
//! - [`config`], the sections the operations use, and the layered TOML loader;
//! - [`registry`], versioned models on disk, atomic writes, the champion alias;
//! - [`service`], one function per operation (a scoring run, outcomes),
//!   each `load` → `compute` (pure) → `persist` (one transaction) → `write`;
//! - [`neural`], runs the `churnguard-neural` trainer process for the
//!   neural family.
#![warn(missing_docs)]

pub mod config;
pub mod neural;
pub mod registry;
pub mod service;

pub use config::{AppConfig, ConfigError};
