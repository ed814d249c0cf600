//! Tests of the policy, the planner and the outcome statistics.

use std::collections::HashMap;

use super::*;
use crate::health::{Band, Direction};

fn customer(id: &str, band: Band) -> PolicyInput {
    PolicyInput {
        customer_id: id.into(),
        health: match band {
            Band::Red => 30.0,
            Band::Yellow => 55.0,
            Band::Green => 80.0,
        },
        band,
        previous_band: Some(band),
        health_change: Some(0.0),
        direction: Direction::Flat,
        churn_type: Some(ChurnType::Voluntary),
        churn_probability: 0.4,
        clv: 2000.0,
        clv_segment: ClvSegment::Medium,
        payment_failures: Some(0.0),
        account_manager: Some("am-7".into()),
        suppressed: false,
    }
}

/// A policy without a control group, so plans are easy to read.
fn no_control() -> InterventionPolicy {
    InterventionPolicy {
        control_share: 0.0,
        ..Default::default()
    }
}

const DAY: i64 = 86_400;
const NOW: i64 = 20_000 * DAY;

#[test]
fn the_presets_fire_in_order() {
    let p = InterventionPolicy::default();
    p.check().unwrap();
    let pick = |c: &PolicyInput| p.first_match(c).map(|r| r.playbook.as_str());
    let mut c = customer("1", Band::Green);
    assert_eq!(pick(&c), None);
    c.payment_failures = Some(2.0);
    assert_eq!(pick(&c), Some("payment_recovery"));
    let mut c = customer("2", Band::Red);
    assert_eq!(pick(&c), Some("csm_call"));
    c.clv_segment = ClvSegment::High;
    assert_eq!(pick(&c), Some("executive_escalation"));
    let mut c = customer("3", Band::Yellow);
    assert_eq!(pick(&c), Some("nurture_email"));
    c.direction = Direction::Down;
    c.health_change = Some(-8.0);
    assert_eq!(pick(&c), Some("success_plan_checkin"));
}

#[test]
fn conditions_on_band_entry_drop_and_type() {
    let mut p = no_control();
    p.rules = vec![Rule {
        name: "fell into red, involuntary".into(),
        playbook: "payment_recovery".into(),
        when: Conditions {
            bands: vec![Band::Red],
            entered_band: Some(true),
            min_health_drop: Some(10.0),
            churn_types: vec![ChurnType::Involuntary],
            ..Default::default()
        },
    }];
    p.check().unwrap();
    let mut c = customer("1", Band::Red);
    c.previous_band = Some(Band::Yellow);
    c.health_change = Some(-12.0);
    c.churn_type = Some(ChurnType::Involuntary);
    assert!(p.first_match(&c).is_some());
    c.health_change = Some(-9.0);
    assert!(p.first_match(&c).is_none(), "drop too small");
    c.health_change = Some(-12.0);
    c.previous_band = Some(Band::Red);
    assert!(p.first_match(&c).is_none(), "already red");
    c.previous_band = None;
    c.churn_type = None;
    assert!(p.first_match(&c).is_none(), "type unknown");
}

#[test]
fn a_plan_creates_updates_and_closes() {
    let p = no_control();
    let customers = vec![customer("1", Band::Red), customer("2", Band::Yellow)];
    let first = plan(&p, &customers, &[], "run-1", NOW, &PlanContext::default());
    assert_eq!(first.created.len(), 2);
    let call = first.created.iter().find(|i| i.customer_id == "1").unwrap();
    assert_eq!(call.playbook, "csm_call");
    assert_eq!(call.owner, "am-7");
    assert_eq!(call.status, Status::Open);
    assert_eq!(call.due_at, NOW + 48 * 3600);
    let email = first.created.iter().find(|i| i.customer_id == "2").unwrap();
    assert_eq!(email.owner, "automation");

    // Next day: still red -> the open call is updated, not repeated; the
    // yellow customer recovered to green -> closed.
    let stored: Vec<Intervention> = first
        .created
        .iter()
        .enumerate()
        .map(|(k, i)| Intervention {
            id: k as i64 + 1,
            ..i.clone()
        })
        .collect();
    let mut next = vec![customer("1", Band::Red), customer("2", Band::Green)];
    next[0].churn_probability = 0.6;
    let second = plan(
        &p,
        &next,
        &stored,
        "run-2",
        NOW + DAY,
        &PlanContext::default(),
    );
    assert!(second.created.is_empty(), "{:?}", second.created);
    assert_eq!(second.updated.len(), 1);
    assert_eq!(second.updated[0].churn_probability, 0.6);
    assert_eq!(second.updated[0].last_seen_at, NOW + DAY);
    let email_id = stored.iter().find(|i| i.customer_id == "2").unwrap().id;
    assert_eq!(second.recovered, vec![email_id]);
}

#[test]
fn cooldown_blocks_a_repeat_and_then_lets_it_through() {
    let p = no_control();
    let mut done = plan(
        &p,
        &[customer("1", Band::Red)],
        &[],
        "r1",
        NOW,
        &PlanContext::default(),
    )
    .created;
    done[0].id = 1;
    done[0].status = Status::Done;
    let again = plan(
        &p,
        &[customer("1", Band::Red)],
        &done,
        "r2",
        NOW + 10 * DAY,
        &PlanContext::default(),
    );
    assert!(again.created.is_empty());
    assert_eq!(again.choices[0].action, "cooldown");
    let later = plan(
        &p,
        &[customer("1", Band::Red)],
        &done,
        "r3",
        NOW + 31 * DAY,
        &PlanContext::default(),
    );
    assert_eq!(later.created.len(), 1);
}

#[test]
fn open_interventions_expire_after_the_grace_period() {
    let p = no_control();
    let mut open = plan(
        &p,
        &[customer("1", Band::Red)],
        &[],
        "r1",
        NOW,
        &PlanContext::default(),
    )
    .created;
    open[0].id = 9;
    let still = plan(
        &p,
        &[],
        &open,
        "r2",
        NOW + 10 * DAY,
        &PlanContext::default(),
    );
    assert!(still.expired.is_empty());
    let gone = plan(
        &p,
        &[],
        &open,
        "r3",
        NOW + 17 * DAY,
        &PlanContext::default(),
    );
    assert_eq!(gone.expired, vec![9]);
}

#[test]
fn capacity_goes_to_the_highest_expected_value() {
    let mut p = no_control();
    p.owners
        .get_mut("account_manager")
        .unwrap()
        .capacity_per_day = 2;
    let customers: Vec<PolicyInput> = (0..5)
        .map(|k| {
            let mut c = customer(&k.to_string(), Band::Red);
            c.clv = 1000.0 * f64::from(k + 1);
            c
        })
        .collect();
    let out = plan(&p, &customers, &[], "r1", NOW, &PlanContext::default());
    let mut ids: Vec<&str> = out.created.iter().map(|i| i.customer_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec!["3", "4"]);
    assert_eq!(
        out.choices
            .iter()
            .filter(|c| c.action == "capacity")
            .count(),
        3
    );
    // The same day, a second run finds the capacity used.
    let stored: Vec<Intervention> = out.created.clone();
    let more = plan(
        &p,
        &[customer("99", Band::Red)],
        &stored,
        "r1b",
        NOW + 3600,
        &PlanContext::default(),
    );
    assert!(more.created.is_empty());
}

#[test]
fn the_control_group_is_a_stable_tenth() {
    let p = InterventionPolicy::default();
    let n = 20_000;
    let control = (0..n).filter(|k| p.is_control(&k.to_string())).count();
    let share = control as f64 / n as f64;
    assert!((share - 0.10).abs() < 0.01, "{share}");
    assert_eq!(p.is_control("12345"), p.is_control("12345"));
    // A new experiment draws a different group.
    let q = InterventionPolicy {
        experiment: "holdout-2".into(),
        ..Default::default()
    };
    let moved = (0..n)
        .filter(|k| p.is_control(&k.to_string()) != q.is_control(&k.to_string()))
        .count();
    assert!(moved > n / 20, "{moved}");
    // Control records are never open (capacity for everyone, so the walk
    // reaches all 200 and about a tenth are held out).
    let mut p = p;
    p.owners
        .get_mut("account_manager")
        .unwrap()
        .capacity_per_day = 1_000;
    let customers: Vec<PolicyInput> = (0..200)
        .map(|k| customer(&k.to_string(), Band::Red))
        .collect();
    let out = plan(&p, &customers, &[], "r1", NOW, &PlanContext::default());
    let controls: Vec<&Intervention> = out
        .created
        .iter()
        .filter(|i| i.arm == Arm::Control)
        .collect();
    assert!(!controls.is_empty());
    assert!(controls.iter().all(|i| i.status == Status::Control));
    assert!(controls.iter().all(|i| p.is_control(&i.customer_id)));
}

#[test]
fn bad_policies_name_their_key() {
    let mut p = InterventionPolicy::default();
    p.rules[1].playbook = "send_flowers".into();
    let e = p.check().unwrap_err();
    assert_eq!(e.key, "interventions.rules[1].playbook");
    assert!(e.message.contains("send_flowers"));
    let mut p = InterventionPolicy::default();
    p.playbooks[0].owner = "intern".into();
    assert_eq!(
        p.check().unwrap_err().key,
        "interventions.playbooks[0].owner"
    );
    let p = InterventionPolicy {
        control_share: 1.5,
        ..Default::default()
    };
    assert_eq!(p.check().unwrap_err().key, "interventions.control_share");
}

#[test]
fn clv_segments_split_by_quantile() {
    let p = InterventionPolicy::default();
    let clvs: Vec<f64> = (0..10).map(f64::from).collect();
    let s = clv_segments(&clvs, &p);
    assert_eq!(s[9], ClvSegment::High);
    assert_eq!(s[8], ClvSegment::High);
    assert_eq!(s[7], ClvSegment::Medium);
    assert_eq!(s[2], ClvSegment::Low);
    assert_eq!(s[3], ClvSegment::Medium);
}

#[test]
fn wilson_and_newcombe_match_published_values() {
    // Newcombe (1998), example (a): 56/70 vs 48/80, hybrid score interval
    // 0.0524 to 0.3339 for the difference 0.2.
    let r = save_rate(
        ArmCounts {
            customers: 80,
            churned: 48,
        },
        ArmCounts {
            customers: 70,
            churned: 56,
        },
    )
    .unwrap();
    assert!((r.absolute - 0.2).abs() < 1e-12);
    assert!(
        (r.absolute_ci.0 - 0.0524).abs() < 5e-4,
        "{:?}",
        r.absolute_ci
    );
    assert!(
        (r.absolute_ci.1 - 0.3339).abs() < 5e-4,
        "{:?}",
        r.absolute_ci
    );
    // Wilson 81/263: 0.2553 to 0.3662 (Newcombe 1998, Table I).
    let (lo, hi) = wilson(81, 263);
    assert!(
        (lo - 0.2553).abs() < 5e-4 && (hi - 0.3662).abs() < 5e-4,
        "{lo} {hi}"
    );
    // The relative save rate's interval contains its estimate.
    let (a, b) = r.relative_ci.unwrap();
    assert!(a <= r.relative.unwrap() && r.relative.unwrap() <= b);
}

#[test]
fn outcomes_count_each_customer_once_and_wait_for_the_window() {
    let p = no_control();
    let mut recs = plan(
        &p,
        &[customer("1", Band::Red), customer("2", Band::Red)],
        &[],
        "r1",
        NOW,
        &PlanContext::default(),
    )
    .created;
    for (k, r) in recs.iter_mut().enumerate() {
        r.id = k as i64 + 1;
    }
    let mut control = recs[1].clone();
    control.id = 3;
    control.customer_id = "3".into();
    control.arm = Arm::Control;
    recs.push(control);
    let day = (NOW / DAY) as i32;
    let churned: HashMap<String, i32> = [("1".to_string(), day + 30), ("3".to_string(), day + 10)]
        .into_iter()
        .collect();
    let pending = outcomes(&recs, &churned, day + 60, 90);
    assert_eq!(pending.pending, 1, "customer 2's window is not over");
    let done = outcomes(&recs, &churned, day + 90, 90);
    let o = done.overall.unwrap();
    assert_eq!(
        o.treated,
        ArmCounts {
            customers: 2,
            churned: 1
        }
    );
    assert_eq!(
        o.control,
        ArmCounts {
            customers: 1,
            churned: 1
        }
    );
    assert!((o.absolute - 0.5).abs() < 1e-12);
    assert_eq!(done.playbooks.len(), 1);
}

/// 300 red customers of one account manager, worth 1000 to 300000.
fn crowded_book() -> Vec<PolicyInput> {
    (0..300)
        .map(|k| {
            let mut c = customer(&format!("c{k:03}"), Band::Red);
            c.clv = 1000.0 * f64::from(k + 1);
            c
        })
        .collect()
}

#[test]
fn the_control_group_is_drawn_where_treatment_happens() {
    let p = InterventionPolicy::default();
    let capacity = p.owners["account_manager"].capacity_per_day as usize;
    let out = plan(&p, &crowded_book(), &[], "r1", NOW, &PlanContext::default());
    let value = |i: &Intervention| i.expected_value;
    let treated: Vec<&Intervention> = out
        .created
        .iter()
        .filter(|i| i.arm == Arm::Treated)
        .collect();
    let control: Vec<&Intervention> = out
        .created
        .iter()
        .filter(|i| i.arm == Arm::Control)
        .collect();
    // Control takes no slot: the treated arm still fills the capacity.
    assert_eq!(treated.len(), capacity);
    // Control customers come from the same stretch of the ranking as the
    // treated ones: none ranks below the last treated customer.
    let last_treated = treated
        .iter()
        .map(|i| value(i))
        .fold(f64::INFINITY, f64::min);
    assert!(control.iter().all(|i| value(i) > last_treated));
    // Every customer above the last treated one is in one of the arms.
    let above = out
        .choices
        .iter()
        .filter(|c| c.expected_value.unwrap() >= last_treated)
        .count();
    assert_eq!(above, treated.len() + control.len());

    // The first design held customers out before capacity: its control
    // group reaches far below the treated customers.
    let biased =
        plan_control_before_capacity(&p, &crowded_book(), &[], "r1", NOW, &PlanContext::default());
    let low_controls = biased
        .created
        .iter()
        .filter(|i| i.arm == Arm::Control && value(i) < last_treated)
        .count();
    assert!(low_controls > 10, "{low_controls}");
}

#[test]
fn the_gate_skips_actions_worth_less_than_they_cost() {
    let p = no_control();
    let mut cheap = customer("1", Band::Red);
    cheap.churn_probability = 0.05;
    cheap.clv = 1000.0; // 0.05 × 1000 × 0.25 − 60 < 0
    let out = plan(
        &p,
        &[cheap.clone()],
        &[],
        "r1",
        NOW,
        &PlanContext::default(),
    );
    assert!(out.created.is_empty());
    let choice = &out.choices[0];
    assert_eq!(choice.action, "gated");
    assert!((choice.expected_value.unwrap() - (0.05 * 1000.0 * 0.25 - 60.0)).abs() < 1e-9);
    assert_eq!(choice.effect, Some(0.25));
    // Without the gate the action goes ahead, and the record keeps what the
    // decision assumed.
    let ungated = InterventionPolicy {
        value_gate: false,
        ..no_control()
    };
    let out = plan(&ungated, &[cheap], &[], "r1", NOW, &PlanContext::default());
    let i = &out.created[0];
    assert_eq!((i.effect, i.cost), (0.25, 60.0));
    assert!(i.expected_value < 0.0);
}

#[test]
fn measured_effects_replace_the_prior_as_evidence_grows() {
    let p = no_control();
    let c = customer("1", Band::Red); // 0.4 × 2000 × effect − 60
    let context = |customers| PlanContext {
        measured: [(
            "csm_call".to_string(),
            MeasuredEffect {
                relative_save: 0.0,
                customers,
            },
        )]
        .into_iter()
        .collect(),
        ..Default::default()
    };
    // 50 customers of evidence against a prior worth 200: 0.2, still worth it.
    let few = plan(&p, std::slice::from_ref(&c), &[], "r1", NOW, &context(50));
    assert_eq!(few.choices[0].action, "new");
    assert!((few.choices[0].effect.unwrap() - 0.2).abs() < 1e-12);
    // 5000 customers saying it does nothing: about 0.01, not worth a call.
    let many = plan(&p, &[c], &[], "r1", NOW, &context(5000));
    assert_eq!(many.choices[0].action, "gated");
}

#[test]
fn uplift_targeting_ranks_by_predicted_saved_value() {
    let mut p = no_control();
    p.targeting = Targeting::Uplift;
    p.owners
        .get_mut("account_manager")
        .unwrap()
        .capacity_per_day = 1;
    let mut risky = customer("risky", Band::Red);
    risky.churn_probability = 0.9;
    let mut movable = customer("movable", Band::Red);
    movable.churn_probability = 0.3;
    let annoyed = customer("annoyed", Band::Red);
    let uplift = [("risky", 0.02), ("movable", 0.15), ("annoyed", -0.05)]
        .into_iter()
        .map(|(id, u)| ((id.to_string(), "csm_call".to_string()), u))
        .collect();
    let context = PlanContext {
        uplift,
        ..Default::default()
    };
    let out = plan(&p, &[risky, movable, annoyed], &[], "r1", NOW, &context);
    let action = |id: &str| {
        out.choices
            .iter()
            .find(|c| c.customer_id == id)
            .unwrap()
            .action
    };
    assert_eq!(action("movable"), "new");
    assert_eq!(action("risky"), "gated", "0.02 × 2000 − 60 < 0");
    assert_eq!(action("annoyed"), "gated");
    assert!((out.created[0].expected_value - (0.15 * 2000.0 - 60.0)).abs() < 1e-9);
}
