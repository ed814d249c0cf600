//! The experiment behind every save rate churnguard shows, checked against
//! the generator's truth under the policy users get (default capacities,
//! binding): the treated-vs-control interval covers a known effect, and the
//! first design (control drawn before capacity) does not; and an uplift
//! model learnt from the experiment's outcomes targets the customers a
//! playbook truly moves.

use std::collections::HashMap;

use churnguard::data::columns;
use churnguard::data::synthetic::{
    apply_treatment_effects, apply_true_effects, effect_of, oracle_probability, true_effects,
    Company, Treatment, EFFECT_PLAYBOOKS,
};
use churnguard::interventions::{
    self, Arm, Intervention, InterventionPolicy, Plan, PlanContext, PolicyInput, Targeting,
};
use churnguard::models::Batch;
use churnguard::scoring::ScoredCustomer;
use churnguard::train::uplift::{fit_uplift, UpliftArm, UpliftConfig, UpliftInput};

use crate::truth::{company, inputs, score};

/// The snapshot the companies are scored at; the first plan runs that day.
const SNAPSHOT: &str = "2024-07-01";
/// Daily plans run on this many consecutive days (cooldowns keep a
/// customer from being picked twice for the same playbook).
const PLAN_DAYS: i64 = 5;
/// The coverage test plans one day: with the scores held fixed, later days
/// would only work through the queue that capacity left, and capacity would
/// no longer bind.
const COVERAGE_PLAN_DAYS: i64 = 1;
/// The homogeneous effect: the share of treated would-be churners saved.
const TRUE_EFFECT: f64 = 0.30;
const WINDOW_DAYS: u32 = 90;

type Planner =
    fn(&InterventionPolicy, &[PolicyInput], &[Intervention], &str, i64, &PlanContext) -> Plan;

fn churn_days(events: &polars::prelude::DataFrame) -> HashMap<String, i32> {
    columns::strs(events, "customer_id")
        .unwrap()
        .into_iter()
        .zip(columns::days(events, "churn_date").unwrap())
        .filter_map(|(i, d)| Some((i?, d?)))
        .collect()
}

fn day_start(date: &str) -> i64 {
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp()
}

/// Runs the planner once a day for `days` days, as `churnguard score`
/// would, on the customers still active that day; returns every
/// record created, with ids.
pub(crate) fn run_plans(
    days: i64,
    planner: Planner,
    policy: &InterventionPolicy,
    customers: &[PolicyInput],
    churned_on: &HashMap<String, i32>,
    first_day: i64,
    context: &PlanContext,
) -> Vec<Intervention> {
    let mut records: Vec<Intervention> = Vec::new();
    for d in 0..days {
        let now = first_day + d * 86_400;
        let today = now.div_euclid(86_400) as i32;
        let active: Vec<PolicyInput> = customers
            .iter()
            .filter(|c| {
                churned_on
                    .get(&c.customer_id)
                    .is_none_or(|&day| day > today)
            })
            .cloned()
            .collect();
        let plan = planner(policy, &active, &records, &format!("day-{d}"), now, context);
        for mut r in plan.created {
            r.id = records.len() as i64 + 1;
            records.push(r);
        }
    }
    records
}

/// One company's estimate of the effect under a design.
struct Estimate {
    treated: usize,
    control: usize,
    relative: f64,
    ci: (f64, f64),
}

impl Estimate {
    fn covers(&self, truth: f64) -> bool {
        self.ci.0 <= truth && truth <= self.ci.1
    }
}

fn estimate(
    planner: Planner,
    policy: &InterventionPolicy,
    customers: &[PolicyInput],
    churn_events: &polars::prelude::DataFrame,
    observed_until: i32,
    seed: u64,
) -> Estimate {
    let churned_on = churn_days(churn_events);
    let records = run_plans(
        COVERAGE_PLAN_DAYS,
        planner,
        policy,
        customers,
        &churned_on,
        day_start(SNAPSHOT),
        &PlanContext::default(),
    );
    let effects: Vec<(String, i64, f64)> = records
        .iter()
        .filter(|r| r.arm == Arm::Treated)
        .map(|r| (r.customer_id.clone(), r.created_at, TRUE_EFFECT))
        .collect();
    let (events, prevented) =
        apply_treatment_effects(churn_events, &effects, WINDOW_DAYS, seed).unwrap();
    assert!(prevented > 0);
    // The playbooks whose owners' capacity binds: there the two designs
    // differ (automation's queue never fills, so both draw it alike).
    let bound: Vec<Intervention> = records
        .into_iter()
        .filter(|r| r.owner_role != "automation")
        .collect();
    let report = interventions::outcomes(&bound, &churn_days(&events), observed_until, WINDOW_DAYS);
    let s = report.overall.expect("both arms settled");
    Estimate {
        treated: s.treated.customers,
        control: s.control.customers,
        relative: s.relative.expect("control churned"),
        ci: s.relative_ci.expect("control churned"),
    }
}

#[test]
fn the_save_rate_interval_covers_a_known_effect_under_default_capacities() {
    const COMPANIES: u64 = 20;
    let policy = InterventionPolicy::default();
    let (mut covered, mut covered_before) = (0, 0);
    let mut capacity_turned_away = 0;
    for seed in 0..COMPANIES {
        let c = company(30_000, 1_000 + seed);
        let observed_until = churnguard::data::schema::days_from_date(c.tables.data_end().unwrap());
        let (_, scored) = score(&c.tables, SNAPSHOT);
        let customers: Vec<PolicyInput> = scored.iter().map(ScoredCustomer::policy_input).collect();
        // Capacity must bind, or this test says nothing about it.
        let first = interventions::plan(
            &policy,
            &customers,
            &[],
            "probe",
            day_start(SNAPSHOT),
            &PlanContext::default(),
        );
        capacity_turned_away += first
            .choices
            .iter()
            .filter(|c| c.action == "capacity")
            .count();
        let at = estimate(
            interventions::plan,
            &policy,
            &customers,
            &c.tables.churn_events,
            observed_until,
            seed,
        );
        let before = estimate(
            interventions::plan_control_before_capacity,
            &policy,
            &customers,
            &c.tables.churn_events,
            observed_until,
            seed,
        );
        eprintln!(
            "seed {seed}: at treatment: {} treated, {} control, save rate {:.3} ({:.3}..{:.3}){}; \
             before capacity: {} treated, {} control, save rate {:.3} ({:.3}..{:.3}){}",
            at.treated,
            at.control,
            at.relative,
            at.ci.0,
            at.ci.1,
            if at.covers(TRUE_EFFECT) {
                ""
            } else {
                " MISSES"
            },
            before.treated,
            before.control,
            before.relative,
            before.ci.0,
            before.ci.1,
            if before.covers(TRUE_EFFECT) {
                ""
            } else {
                " MISSES"
            },
        );
        covered += usize::from(at.covers(TRUE_EFFECT));
        covered_before += usize::from(before.covers(TRUE_EFFECT));
    }
    eprintln!(
        "coverage of the true effect {TRUE_EFFECT}: control at treatment {covered}/{COMPANIES}, \
         control before capacity {covered_before}/{COMPANIES}; {capacity_turned_away} \
         candidates turned away for capacity on the first days"
    );
    assert!(
        capacity_turned_away > 100 * COMPANIES as usize,
        "capacity did not bind: {capacity_turned_away}"
    );
    assert!(
        covered * 10 >= 9 * COMPANIES as usize,
        "the 95% interval covered the true effect in only {covered}/{COMPANIES} companies"
    );
    assert!(
        covered_before * 10 < 9 * COMPANIES as usize,
        "the negative control (control drawn before capacity) covered the true effect in \
         {covered_before}/{COMPANIES} companies: this test cannot tell the designs apart"
    );
}

/// One snapshot of a company: its feature rows, the customers as the policy
/// sees them, and each customer's oracle churn probability over the window.
struct Period {
    start: i64,
    batch: Batch,
    customers: Vec<PolicyInput>,
    oracle: HashMap<String, f64>,
}

fn period(c: &Company, snapshot: &str) -> Period {
    let (frame, scored) = score(&c.tables, snapshot);
    let (numeric, categorical) = inputs();
    let batch = Batch::from_frame(&frame, "customer_id", &numeric, &categorical).unwrap();
    let ids: Vec<i64> = batch.ids.iter().map(|s| s.parse().unwrap()).collect();
    let p = oracle_probability(
        &c.truth.hazard,
        &ids,
        snapshot.parse().unwrap(),
        WINDOW_DAYS,
    )
    .unwrap();
    Period {
        start: day_start(snapshot),
        oracle: batch.ids.iter().cloned().zip(p).collect(),
        customers: scored.iter().map(ScoredCustomer::policy_input).collect(),
        batch,
    }
}

/// The churn a set of treatments truly prevents, in expectation: the sum of
/// each treated customer's oracle probability × the playbook's true effect
/// on them (negative effects count against it).
fn truly_prevented(
    records: &[Intervention],
    period: &Period,
    effects: &HashMap<String, [f64; 5]>,
) -> f64 {
    records
        .iter()
        .filter(|r| r.arm == Arm::Treated)
        .map(|r| {
            period.oracle[&r.customer_id]
                * effect_of(&effects[&r.customer_id], &r.playbook).unwrap()
        })
        .sum()
}

#[test]
fn uplift_targeting_measured_against_risk_times_value_and_the_true_uplift() {
    let c = company(20_000, 7);
    let effects = true_effects(&c.truth.customers).unwrap();
    let churned_on = churn_days(&c.tables.churn_events);
    let policy = InterventionPolicy::default();

    // The past: four stretches of daily plans under risk × value, far
    // enough apart that their outcome windows do not overlap, played out
    // with each playbook's true, heterogeneous effect.
    let past: Vec<Period> = ["2023-07-01", "2023-10-05", "2024-01-09", "2024-04-14"]
        .iter()
        .map(|s| period(&c, s))
        .collect();
    let mut treatments = Vec::new();
    let mut decided = Vec::new();
    for (k, p) in past.iter().enumerate() {
        let records = run_plans(
            PLAN_DAYS,
            interventions::plan,
            &policy,
            &p.customers,
            &churned_on,
            p.start,
            &PlanContext::default(),
        );
        for r in records.iter().filter(|r| r.arm == Arm::Treated) {
            treatments.push(Treatment {
                customer_id: r.customer_id.clone(),
                at: r.created_at,
                effect: effect_of(&effects[&r.customer_id], &r.playbook).unwrap(),
                window_probability: p.oracle[&r.customer_id],
            });
        }
        decided.push((k, records));
    }
    let (events, played) =
        apply_true_effects(&c.tables.churn_events, &treatments, WINDOW_DAYS, 7).unwrap();
    let observed = churn_days(&events);
    let churned_within = |id: &str, from: i64| -> u8 {
        let start = from.div_euclid(86_400);
        observed.get(id).is_some_and(|&d| {
            i64::from(d) > start && i64::from(d) <= start + i64::from(WINDOW_DAYS)
        }) as u8
    };

    // The experiment's units: every record, and every customer no playbook
    // touched that quarter.
    let mut rows: Vec<(usize, usize)> = Vec::new(); // (period, row in its batch)
    let (mut playbooks, mut arms, mut churned) = (Vec::new(), Vec::new(), Vec::new());
    for (k, records) in &decided {
        let p = &past[*k];
        let row_of: HashMap<&str, usize> = p
            .batch
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        let mut touched = std::collections::HashSet::new();
        for r in records {
            touched.insert(r.customer_id.as_str());
            rows.push((*k, row_of[r.customer_id.as_str()]));
            playbooks.push(Some(r.playbook.clone()));
            arms.push(match r.arm {
                Arm::Treated => UpliftArm::Treated,
                Arm::Control => UpliftArm::Control,
            });
            churned.push(churned_within(&r.customer_id, r.created_at));
        }
        for (i, id) in p.batch.ids.iter().enumerate() {
            if !touched.contains(id.as_str()) {
                rows.push((*k, i));
                playbooks.push(None);
                arms.push(UpliftArm::Untreated);
                churned.push(churned_within(id, p.start));
            }
        }
    }
    let batch = stack(&past, &rows);
    let input = UpliftInput {
        batch,
        playbooks,
        arms,
        churned,
    };
    // Every playbook's model, whether or not it showed skill on held-out
    // outcomes (what targeting did before the skill gate), and the models
    // the default keeps.
    let fit = fit_uplift(
        &input,
        &UpliftConfig {
            require_skill: false,
            ..UpliftConfig::default()
        },
    )
    .unwrap();
    let kept = fit_uplift(&input, &UpliftConfig::default()).unwrap();
    for p in &kept.playbooks {
        eprintln!(
            "default: {} {}",
            p.playbook,
            p.skipped.as_deref().unwrap_or("kept")
        );
        // The gate's rule, as the reports state it.
        let skilled = p
            .held_out
            .as_ref()
            .is_some_and(|q| q.qini_interval[0] > 0.0);
        assert_eq!(
            kept.model.playbooks.contains_key(&p.playbook),
            skilled,
            "{p:?}"
        );
    }
    let mut weighted_qini = (0.0, 0usize);
    for p in &fit.playbooks {
        match &p.held_out {
            Some(q) => {
                eprintln!(
                    "{}: {} treated, {} control; held out {} treated, {} control: Qini coefficient {:.4}, AUUC {:.4} (random {:.4})",
                    p.playbook, p.treated, p.control, q.treated, q.control,
                    q.qini_coefficient, q.auuc, q.auuc_random
                );
                weighted_qini.0 += q.qini_coefficient * q.treated as f64;
                weighted_qini.1 += q.treated;
            }
            None => eprintln!(
                "{}: {} treated, {} control: no model ({})",
                p.playbook,
                p.treated,
                p.control,
                p.skipped.as_deref().unwrap_or("")
            ),
        }
    }
    let qini = weighted_qini.0 / weighted_qini.1.max(1) as f64;

    // The next quarter, on the same company and capacities: who each
    // targeting treats, and the churn that truly prevents.
    let next = period(&c, "2024-08-01");
    let uplift_of = |model: &churnguard::interventions::UpliftModel| {
        let mut uplift = HashMap::new();
        for (name, model) in &model.playbooks {
            for (id, u) in next
                .batch
                .ids
                .iter()
                .zip(model.uplift(&next.batch).unwrap())
            {
                uplift.insert((id.clone(), name.clone()), u);
            }
        }
        uplift
    };
    let uplift = uplift_of(&fit.model);
    let by_uplift = InterventionPolicy {
        targeting: Targeting::Uplift,
        ..InterventionPolicy::default()
    };
    // Every targeting plays out over the same days, customers and churns.
    let plans_for = |policy: &InterventionPolicy, context: PlanContext| {
        run_plans(
            PLAN_DAYS,
            interventions::plan,
            policy,
            &next.customers,
            &churned_on,
            next.start,
            &context,
        )
    };
    let risk_records = plans_for(&policy, PlanContext::default());
    let uplift_records = plans_for(
        &by_uplift,
        PlanContext {
            uplift,
            ..Default::default()
        },
    );
    let gated_records = plans_for(
        &by_uplift,
        PlanContext {
            uplift: uplift_of(&kept.model),
            ..Default::default()
        },
    );
    // The ceiling: targeting by the true uplift.
    let mut true_uplift = HashMap::new();
    for id in &next.batch.ids {
        for pb in EFFECT_PLAYBOOKS {
            true_uplift.insert(
                (id.clone(), pb.to_string()),
                next.oracle[id] * effect_of(&effects[id], pb).unwrap(),
            );
        }
    }
    let oracle_records = plans_for(
        &by_uplift,
        PlanContext {
            uplift: true_uplift,
            ..Default::default()
        },
    );
    let treated = |r: &[Intervention]| r.iter().filter(|r| r.arm == Arm::Treated).count();
    let ceiling = truly_prevented(&oracle_records, &next, &effects);
    eprintln!(
        "targeting by the true uplift treats {} and truly prevents {ceiling:.1}",
        treated(&oracle_records),
    );
    let risk = truly_prevented(&risk_records, &next, &effects);
    let by_model = truly_prevented(&uplift_records, &next, &effects);
    let by_kept = truly_prevented(&gated_records, &next, &effects);
    eprintln!(
        "past: {} treatments played out ({} churns prevented, {} caused); uplift model held-out Qini \
         coefficient (treated-weighted mean over playbooks) {qini:.4}",
        treatments.len(),
        played.prevented,
        played.caused
    );
    eprintln!(
        "next quarter, {PLAN_DAYS} daily plans: risk × value treats {} and truly prevents {risk:.1} \
         churns; uplift treats {} and truly prevents {by_model:.1} ({:+.0}%)",
        treated(&risk_records),
        treated(&uplift_records),
        100.0 * (by_model / risk - 1.0)
    );
    eprintln!(
        "with the default skill gate ({} of {} playbook models kept): uplift treats {} and truly \
         prevents {by_kept:.1} ({:+.0}%)",
        kept.model.playbooks.len(),
        fit.model.playbooks.len(),
        treated(&gated_records),
        100.0 * (by_kept / risk - 1.0)
    );
    // What this world allows: ranking by the true uplift must beat risk ×
    // value by the bar, or the bar cannot be met by any model and
    // the planner's uplift path would be what is broken.
    assert!(
        ceiling >= 1.25 * risk,
        "targeting by the true uplift prevented {ceiling:.1} churns, risk × value {risk:.1}"
    );
    // The learnt model, measured and reported (README, issue 15): on this
    // company it does not reach the bar. It must at least stay a working
    // policy: treat customers and prevent churn on balance.
    assert!(qini.is_finite());
    assert!(treated(&uplift_records) > 0 && by_model > 0.0);
    // Under the default gate, a playbook whose model showed no skill is
    // targeted by risk × value: with no model kept, uplift targeting is
    // risk × value exactly.
    assert!(treated(&gated_records) > 0 && by_kept > 0.0);
    if kept.model.playbooks.is_empty() {
        assert!((by_kept - risk).abs() < 1e-9, "{by_kept} against {risk}");
    }
}

/// The feature rows `rows` (period, row) of several periods, as one batch.
fn stack(periods: &[Period], rows: &[(usize, usize)]) -> Batch {
    let first = &periods[0].batch;
    let width = first.numeric_names.len();
    let mut numeric = ndarray::Array2::zeros((rows.len(), width));
    let mut categorical = vec![Vec::with_capacity(rows.len()); first.categorical_names.len()];
    let mut ids = Vec::with_capacity(rows.len());
    for (out, &(k, i)) in rows.iter().enumerate() {
        let b = &periods[k].batch;
        numeric.row_mut(out).assign(&b.numeric.row(i));
        for (col, src) in categorical.iter_mut().zip(&b.categorical) {
            col.push(src[i].clone());
        }
        ids.push(b.ids[i].clone());
    }
    Batch {
        ids,
        numeric_names: first.numeric_names.clone(),
        numeric,
        categorical_names: first.categorical_names.clone(),
        categorical,
    }
}
