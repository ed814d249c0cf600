//! Tiered interventions: an ordered rule policy ([`InterventionPolicy`]) that
//! turns each scored customer's health into at most one playbook, with
//! owners, SLAs, priorities, cooldowns, de-duplication, automatic closing on
//! recovery, daily owner capacity, and a hash-based hold-out control group;
//! and the outcome analysis that compares treated with control.
//!
//! Pure: [`plan`] takes the scored customers and the interventions already
//! on record and returns what to create, update, close and skip; the caller
//! stores it. [`outcomes`] takes records and churn events and returns the
//! save rate with confidence intervals.

mod outcomes;
mod policy;

pub use outcomes::{
    outcomes, save_rate, summarise, wilson, ArmCounts, OutcomeReport, PlaybookOutcome, SaveRate,
};
pub use policy::*;

#[cfg(test)]
mod tests;
