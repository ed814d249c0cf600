//! churnguard's integration tests: one binary, one module per area.

mod actions;
mod cli;
mod features;
mod flat;
mod generator;
mod http;
mod models;
mod server;
mod store;
mod support;
mod tidy;
mod truth;
mod validation;
