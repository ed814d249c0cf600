//! churnguard's integration tests: one binary, one module per area.

mod actions;
mod btyd;
mod cli;
mod columnar;
mod experiment;
mod explain;
mod faults;
mod features;
mod flat;
mod fuzz_corpus;
mod generator;
mod http;
mod idempotency;
mod lifetime;
mod models;
mod monitor;
mod properties;
mod replicas;
mod security;
mod server;
mod store;
mod support;
mod survival;
mod tidy;
mod truth;
mod validation;
