//! The HTTP server: `churnguard serve`.

pub mod config;

pub use config::ServeConfig;
