//! churnguard's integration tests: one binary, one module per area.

mod actions;
mod cli;
mod faults;
mod features;
mod flat;
mod generator;
mod http;
mod models;
mod security;
mod server;
mod store;
mod support;
mod tidy;
mod truth;
mod validation;
