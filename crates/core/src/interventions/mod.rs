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

mod experiment;
mod outcomes;
mod policy;
pub mod uplift;

pub use experiment::{
    customers_per_arm, measured_effects, playbook_power, power_plan, shrunk_effect, MeasuredEffect,
    PlaybookPower, PowerPlan, ASSUMED_CONTROL_RATE,
};
pub use outcomes::{
    outcomes, save_rate, summarise, wilson, ArmCounts, OutcomeReport, OwnerOutcome,
    PlaybookOutcome, SaveRate,
};
pub use policy::*;
pub use uplift::{qini, LogitShift, QiniReport, TwoModel, UpliftModel};

#[cfg(test)]
mod tests;
