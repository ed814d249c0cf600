//! Fitting the uplift model: per playbook, a two-model (T-learner) on the
//! project's own families, judged by its Qini coefficient on held-out
//! experiment outcomes, then refitted on everything.
//!
//! **Which rows each model learns from.** The treated part of a playbook
//! (a shift of the control model's logit, see `LogitShift`) learns from
//! that playbook's treated customers. The control model learns
//! from the playbook's randomised control customers *and* from the
//! customers nobody treated in the same period (`Arm::Untreated` rows): the
//! control arm alone is a tenth of the treated one, too few to learn a
//! churn surface from. Adding untreated customers is sound because the
//! policy chooses whom to treat from the scores, which are functions of the
//! features both models see (selection on observables); the one input of the
//! choice the models do not see is which owner's capacity a customer
//! competed for. The held-out evaluation uses only the randomised arms, so
//! the reported Qini coefficient needs no such assumption.
//!
//! **Which models are kept.** A playbook's model steers effort only if it
//! showed skill where it could not have memorised: the lower end of its
//! held-out Qini coefficient's 90% bootstrap interval must be above zero
//! (`require_skill`). Measured on the generated company of the uplift
//! experiment test, the models of a 10% control arm did not (Qini −0.010
//! and +0.003, intervals around zero), and targeting by them prevented 13%
//! less churn than risk × value; a playbook without a kept model is
//! targeted by risk × value, so a model that showed no skill never steers
//! the effort.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use churnguard_core::hash::stable_unit;
use churnguard_core::interventions::{qini, LogitShift, QiniReport, TwoModel, UpliftModel};
use churnguard_core::models::{Batch, LogisticParams, Preprocessor};

use crate::fit::{fit, Learners, Settings};
use crate::{Result, TrainInput};

/// Which arm a unit of the uplift data was in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpliftArm {
    /// Treated by the playbook.
    Treated,
    /// Randomised into the playbook's control group.
    Control,
    /// Not considered by any playbook in the period (no record): learns the
    /// control surface of every playbook, never judges a model.
    Untreated,
}

/// The experiment's units: features at the decision, the playbook (none for
/// untreated units), the arm, and whether the customer churned within the
/// outcome window.
#[derive(Debug, Clone)]
pub struct UpliftInput {
    /// Feature rows; `batch.ids` are the customer ids.
    pub batch: Batch,
    /// Per row, the playbook (`None` for [`UpliftArm::Untreated`]).
    pub playbooks: Vec<Option<String>>,
    /// Per row, its arm.
    pub arms: Vec<UpliftArm>,
    /// Per row, 1 when the customer churned within the outcome window.
    pub churned: Vec<u8>,
}

/// How the uplift model is fitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpliftConfig {
    /// The family and settings of the control churn model; defaults to a
    /// logistic regression.
    pub settings: Settings,
    /// The ridge penalty of the treated arm's logit shift (on standardised
    /// inputs); defaults to `50` (a playbook's treated arm is small, and the
    /// shift should stay near a constant unless the data insist).
    pub shift_l2: f64,
    /// Share of customers held out to judge the model, by stable hash;
    /// defaults to `0.3`.
    pub holdout_share: f64,
    /// A playbook needs this many customers who churned and this many who
    /// did not, in each randomised arm of the held-out part and in the
    /// treated arm of the fitting part; defaults to `10`.
    pub min_outcomes: usize,
    /// Seed of the hold-out split and the fits; defaults to `7`.
    pub seed: u64,
    /// Keep a playbook's model only when the lower end of its held-out
    /// Qini coefficient's 90% interval is above zero, i.e. when it ranks
    /// the customers the playbook moves better than chance on randomised
    /// customers it never saw; defaults to `true`. A playbook without a
    /// model is targeted by risk × value under `targeting = "uplift"`, so
    /// a model that cannot tell who responds never steers the effort.
    pub require_skill: bool,
}

impl Default for UpliftConfig {
    fn default() -> Self {
        UpliftConfig {
            settings: Settings::Logistic(LogisticParams::default()),
            shift_l2: 50.0,
            holdout_share: 0.3,
            min_outcomes: 10,
            seed: 7,
            require_skill: true,
        }
    }
}

/// One playbook's uplift fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaybookUplift {
    /// Playbook name.
    pub playbook: String,
    /// Treated units.
    pub treated: usize,
    /// Randomised control units.
    pub control: usize,
    /// The held-out Qini evaluation (randomised arms only); `None` when the
    /// playbook was skipped.
    pub held_out: Option<QiniReport>,
    /// Why the playbook has no model, when it has none.
    pub skipped: Option<String>,
}

/// The fitted model and what was measured on the way.
#[derive(Debug, Clone)]
pub struct UpliftFit {
    /// The two-models of the playbooks with enough outcomes.
    pub model: UpliftModel,
    /// Every playbook seen, fitted or skipped.
    pub playbooks: Vec<PlaybookUplift>,
    /// Untreated units the control models also learnt from.
    pub untreated: usize,
}

/// The control model on `control` rows, then the treated arm's shift of
/// its logit on `treated` rows.
fn two_model(
    config: &UpliftConfig,
    input: &TrainInput,
    treated: &[usize],
    control: &[usize],
    learners: &mut Learners<'_>,
) -> Result<TwoModel> {
    let control_model = fit(&config.settings, input, control, &[], config.seed, learners)?;
    let batch = input.batch.select(treated);
    let p_control = control_model.predict(&batch)?;
    let preprocessor = Preprocessor::fit(&batch)?;
    let (z, _) = preprocessor.transform(&batch)?;
    let y: Vec<u8> = treated.iter().map(|&i| input.labels[i]).collect();
    let shift = LogitShift::fit(preprocessor, &z, &y, &p_control, config.shift_l2)?;
    Ok(TwoModel {
        control: control_model,
        treated: shift,
    })
}

fn count(rows: &[usize], churned: &[u8]) -> (usize, usize) {
    let yes = rows.iter().filter(|&&i| churned[i] == 1).count();
    (yes, rows.len() - yes)
}

/// Fits the uplift model of every playbook in `input` (see the module
/// documentation for the design).
pub fn fit_uplift(input: &UpliftInput, config: &UpliftConfig) -> Result<UpliftFit> {
    let n = input.batch.ids.len();
    if input.playbooks.len() != n || input.arms.len() != n || input.churned.len() != n {
        return Err(crate::TrainError::Uplift(format!(
            "{n} feature rows but {} playbooks, {} arms, {} outcomes",
            input.playbooks.len(),
            input.arms.len(),
            input.churned.len()
        )));
    }
    if !(0.0..1.0).contains(&config.holdout_share) {
        return Err(crate::TrainError::BadConfig {
            key: "uplift.holdout_share".into(),
            message: format!("must be within 0..1, got {}", config.holdout_share),
        });
    }
    let salt = format!("uplift-holdout-{}", config.seed);
    let held_out: Vec<bool> = input
        .batch
        .ids
        .iter()
        .map(|id| stable_unit(&salt, id) < config.holdout_share)
        .collect();
    let untreated: Vec<usize> = (0..n)
        .filter(|&i| input.arms[i] == UpliftArm::Untreated)
        .collect();
    let train_input = TrainInput {
        batch: input.batch.clone(),
        labels: input.churned.clone(),
        snapshots: None,
        horizon_days: 0,
        churn_types: None,
    };
    let mut quiet = |_: crate::Progress| {};
    let mut learners = Learners {
        neural: None,
        progress: &mut quiet,
    };
    let names: std::collections::BTreeSet<&str> = input
        .playbooks
        .iter()
        .flatten()
        .map(String::as_str)
        .collect();
    let mut model = UpliftModel {
        playbooks: BTreeMap::new(),
    };
    let mut reports = Vec::new();
    for name in names {
        let of = |arm: UpliftArm, held: Option<bool>| -> Vec<usize> {
            (0..n)
                .filter(|&i| {
                    input.arms[i] == arm
                        && input.playbooks[i].as_deref() == Some(name)
                        && held.is_none_or(|h| held_out[i] == h)
                })
                .collect()
        };
        let treated_all = of(UpliftArm::Treated, None);
        let control_all = of(UpliftArm::Control, None);
        let mut report = PlaybookUplift {
            playbook: name.to_string(),
            treated: treated_all.len(),
            control: control_all.len(),
            held_out: None,
            skipped: None,
        };
        let (fit_t, fit_c) = (of(UpliftArm::Treated, Some(false)), {
            let mut rows = of(UpliftArm::Control, Some(false));
            rows.extend(untreated.iter().filter(|&&i| !held_out[i]));
            rows
        });
        let (held_t, held_c) = (
            of(UpliftArm::Treated, Some(true)),
            of(UpliftArm::Control, Some(true)),
        );
        let enough = |rows: &[usize]| {
            let (yes, no) = count(rows, &input.churned);
            yes >= config.min_outcomes && no >= config.min_outcomes
        };
        let too_few = [
            ("treated (fit)", &fit_t),
            ("control and untreated (fit)", &fit_c),
            ("treated (held out)", &held_t),
            ("control (held out)", &held_c),
        ]
        .into_iter()
        .find(|(_, rows)| !enough(rows));
        if let Some((what, rows)) = too_few {
            let (yes, no) = count(rows, &input.churned);
            report.skipped = Some(format!(
                "too few outcomes in {what}: {yes} churned and {no} retained, {} of each needed",
                config.min_outcomes
            ));
            reports.push(report);
            continue;
        }
        // Judged on the held-out randomised arms, then refitted on all.
        let part = two_model(config, &train_input, &fit_t, &fit_c, &mut learners)?;
        let held: Vec<usize> = held_t.iter().chain(&held_c).copied().collect();
        let predicted = part.uplift(&input.batch.select(&held))?;
        let arms: Vec<bool> = held
            .iter()
            .map(|&i| input.arms[i] == UpliftArm::Treated)
            .collect();
        let churned: Vec<bool> = held.iter().map(|&i| input.churned[i] == 1).collect();
        report.held_out = qini(&predicted, &arms, &churned);
        if config.require_skill {
            let lower = report.held_out.as_ref().map(|q| q.qini_interval[0]);
            if !lower.is_some_and(|lo| lo > 0.0) {
                let q = report.held_out.as_ref();
                report.skipped = Some(format!(
                    "no skill shown on held-out outcomes: Qini coefficient {:+.4} (90% interval \
                     {:+.4} to {:+.4}) is not above zero, so this playbook is targeted by risk × value",
                    q.map_or(f64::NAN, |q| q.qini_coefficient),
                    q.map_or(f64::NAN, |q| q.qini_interval[0]),
                    q.map_or(f64::NAN, |q| q.qini_interval[1]),
                ));
                reports.push(report);
                continue;
            }
        }
        let mut all_c = control_all.clone();
        all_c.extend(&untreated);
        let whole = two_model(config, &train_input, &treated_all, &all_c, &mut learners)?;
        model.playbooks.insert(name.to_string(), whole);
        reports.push(report);
    }
    Ok(UpliftFit {
        model,
        playbooks: reports,
        untreated: untreated.len(),
    })
}
