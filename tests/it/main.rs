//! churnguard's integration tests: one binary, one module per area.

mod cli;
mod features;
mod flat;
mod generator;
mod models;
mod support;
mod tidy;
mod validation;
