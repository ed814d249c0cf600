//! Point-in-time features: no leakage, correct exclusions and labels.

use std::collections::HashMap;

use chrono::NaiveDate;
use churnguard::data::schema::days_from_date;
use churnguard::data::Tables;
use churnguard::features::{build_features, model_inputs, FeatureParams, Role, FEATURES};
use polars::prelude::*;

use crate::support::small_company;

fn day(c: &str) -> Expr {
    col(c).cast(DataType::Int32)
}

/// Changes and drops every row dated on or after the snapshot, in every table.
fn perturb_after(t: &Tables, snapshot: NaiveDate) -> Tables {
    let s = days_from_date(snapshot);
    let after = |c: &str| day(c).gt_eq(lit(s));
    let edit = |df: &DataFrame, mask: Expr, exprs: Vec<(&str, Expr)>| -> DataFrame {
        let exprs: Vec<Expr> = exprs
            .into_iter()
            .map(|(name, e)| when(mask.clone()).then(e).otherwise(col(name)).alias(name))
            .collect();
        // Drop every third future row, change the rest.
        df.clone()
            .lazy()
            .with_row_index("__row", None)
            .filter(
                mask.clone()
                    .not()
                    .or((col("__row") % lit(3u32)).neq(lit(0u32))),
            )
            .with_columns(exprs)
            .drop(cols(["__row"]))
            .collect()
            .unwrap()
    };
    let mut out = t.clone();
    out.usage = edit(
        &t.usage,
        after("week_start"),
        vec![
            ("sessions", (col("sessions") * lit(3i64) + lit(5i64))),
            ("minutes", (col("minutes") + lit(100.0))),
            ("features_adopted", lit(12i64)),
        ],
    );
    out.tickets = edit(
        &t.tickets,
        after("opened_date"),
        vec![("severity", lit(4i64))],
    );
    // Tickets opened before but resolved after the snapshot: the resolution is future data.
    out.tickets = out
        .tickets
        .clone()
        .lazy()
        .with_columns([when(after("resolved_date"))
            .then(col("resolution_hours") * lit(10.0))
            .otherwise(col("resolution_hours"))
            .alias("resolution_hours")])
        .collect()
        .unwrap();
    out.surveys = edit(&t.surveys, after("survey_date"), vec![("score", lit(0i64))]);
    out.payments = edit(
        &t.payments,
        after("attempt_date"),
        vec![("status", lit("failed")), ("days_late", lit(30i64))],
    );
    out.invoices = edit(
        &t.invoices,
        after("invoice_date"),
        vec![("amount", (col("amount") * lit(2.0)))],
    );
    out.subscriptions = edit(
        &t.subscriptions,
        after("effective_date"),
        vec![
            ("plan", lit("enterprise")),
            ("mrr", (col("mrr") * lit(5.0))),
            ("change_type", lit("downgrade")),
        ],
    );
    out.customers = edit(
        &t.customers,
        after("signup_date"),
        vec![("contract", lit("two_year"))],
    );
    out.churn_events = t
        .churn_events
        .clone()
        .lazy()
        .filter(
            day("churn_date")
                .lt(lit(s))
                .or((col("customer_id") % lit(2i64)).eq(lit(0i64))),
        )
        .collect()
        .unwrap();
    out
}

#[test]
fn changing_data_after_the_snapshot_changes_no_feature() {
    let company = small_company();
    for snapshot in ["2023-09-15", "2024-03-01"] {
        let snapshot: NaiveDate = snapshot.parse().unwrap();
        let params = FeatureParams {
            snapshots: vec![snapshot],
            horizon_days: 90,
        };
        let before = build_features(&company.tables, &params).unwrap();
        let perturbed = perturb_after(&company.tables, snapshot);
        assert!(
            !perturbed.usage.equals_missing(&company.tables.usage),
            "the perturbation must change data"
        );
        let after = build_features(&perturbed, &params).unwrap();
        let feature_cols: Vec<&str> = FEATURES
            .iter()
            .filter(|f| f.role != Role::Label)
            .map(|f| f.name)
            .collect();
        let a = before.select(feature_cols.clone()).unwrap();
        let b = after.select(feature_cols).unwrap();
        assert_eq!(a.height(), b.height(), "same customers at {snapshot}");
        for c in a.columns() {
            assert!(
                c.as_materialized_series()
                    .equals_missing(b.column(c.name()).unwrap().as_materialized_series()),
                "feature `{}` changed when only data after {snapshot} changed",
                c.name()
            );
        }
        // The labels, by contrast, do look ahead.
        assert!(!before
            .column("churned")
            .unwrap()
            .as_materialized_series()
            .equals_missing(after.column("churned").unwrap().as_materialized_series()));
    }
}

#[test]
fn rows_are_the_customers_active_at_the_snapshot_with_correct_labels() {
    let t = &small_company().tables;
    let snapshot: NaiveDate = "2024-02-01".parse().unwrap();
    let s = days_from_date(snapshot);
    let table = build_features(
        t,
        &FeatureParams {
            snapshots: vec![snapshot],
            horizon_days: 60,
        },
    )
    .unwrap();
    let days = |df: &DataFrame, c: &str| -> Vec<i32> {
        df.column(c)
            .unwrap()
            .cast(&DataType::Int32)
            .unwrap()
            .i32()
            .unwrap()
            .into_no_null_iter()
            .collect()
    };
    let churn: HashMap<i64, (i32, String)> = t
        .churn_events
        .column("customer_id")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .zip(days(&t.churn_events, "churn_date"))
        .zip(
            t.churn_events
                .column("churn_type")
                .unwrap()
                .str()
                .unwrap()
                .iter()
                .flatten()
                .map(String::from),
        )
        .map(|((id, d), ty)| (id, (d, ty)))
        .collect();
    let mut expected = Vec::new();
    for (id, signup) in t
        .customers
        .column("customer_id")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .zip(days(&t.customers, "signup_date"))
    {
        let gone = churn.get(&id).is_some_and(|(d, _)| *d <= s);
        if signup < s && !gone {
            expected.push(id);
        }
    }
    let got: Vec<i64> = table
        .column("customer_id")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(
        got, expected,
        "exactly the customers signed up and not yet churned"
    );
    let labels = table.column("churned").unwrap().i32().unwrap();
    let types = table.column("churn_type").unwrap().str().unwrap();
    for (i, id) in got.iter().enumerate() {
        let hit = churn.get(id).filter(|(d, _)| *d > s && *d <= s + 60);
        assert_eq!(
            labels.get(i),
            Some(i32::from(hit.is_some())),
            "label of customer {id}"
        );
        assert_eq!(
            types.get(i),
            hit.map(|(_, ty)| ty.as_str()),
            "churn type of customer {id}"
        );
    }
    let tenure = table.column("tenure_days").unwrap().i32().unwrap();
    assert!(tenure.into_no_null_iter().all(|d| d > 0));
}

#[test]
fn feature_values_match_a_hand_computation() {
    let t = &small_company().tables;
    let snapshot: NaiveDate = "2024-05-06".parse().unwrap();
    let s = days_from_date(snapshot);
    let table = build_features(
        t,
        &FeatureParams {
            snapshots: vec![snapshot],
            horizon_days: 90,
        },
    )
    .unwrap();
    let row = table.height() / 2;
    let id = table
        .column("customer_id")
        .unwrap()
        .i64()
        .unwrap()
        .get(row)
        .unwrap();
    let usage = t
        .usage
        .clone()
        .lazy()
        .filter(col("customer_id").eq(lit(id)))
        .collect()
        .unwrap();
    let weeks: Vec<i32> = usage
        .column("week_start")
        .unwrap()
        .cast(&DataType::Int32)
        .unwrap()
        .i32()
        .unwrap()
        .into_no_null_iter()
        .collect();
    let sessions: Vec<i64> = usage
        .column("sessions")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    let window = |lo: i32, hi: i32| -> i64 {
        weeks
            .iter()
            .zip(&sessions)
            .filter(|(w, _)| {
                let age = s - (**w + 7);
                age >= lo && age < hi
            })
            .map(|(_, n)| n)
            .sum()
    };
    let get = |c: &str| {
        table
            .column(c)
            .unwrap()
            .get(row)
            .unwrap()
            .try_extract::<f64>()
            .unwrap()
    };
    assert_eq!(get("sessions_30d") as i64, window(0, 28));
    assert_eq!(get("sessions_prev_30d") as i64, window(28, 56));
    assert_eq!(get("sessions_90d") as i64, window(0, 91));
    let trend = ((window(0, 28) + 1) as f64 / (window(28, 56) + 1) as f64).ln();
    assert!((get("usage_trend") - trend).abs() < 1e-9);
}

/// Usage arrives by week, so an active customer's recency is counted in
/// whole weeks: a snapshot one weekday later (no new week available) must
/// not age every active customer by a day. It did, and a fresh company
/// scored on another weekday than its training snapshots showed
/// `recency_days` drifting with PSI 8–12.
#[test]
fn recency_of_active_customers_does_not_move_with_the_snapshots_weekday() {
    let t = &small_company().tables;
    // Tuesday and Wednesday: the week that ended on Sunday is the latest
    // available at both.
    let recency = |snapshot: &str| -> HashMap<i64, (i32, i32)> {
        let table = build_features(
            t,
            &FeatureParams {
                snapshots: vec![snapshot.parse().unwrap()],
                horizon_days: 90,
            },
        )
        .unwrap();
        let ids = table.column("customer_id").unwrap().i64().unwrap().clone();
        let r = table.column("recency_days").unwrap().i32().unwrap().clone();
        let tenure = table.column("tenure_days").unwrap().i32().unwrap().clone();
        ids.into_no_null_iter()
            .zip(r.into_no_null_iter())
            .zip(tenure.into_no_null_iter())
            .map(|((id, r), tenure)| (id, (r, tenure)))
            .collect()
    };
    let tuesday = recency("2024-05-07");
    let wednesday = recency("2024-05-08");
    let mut active = 0;
    for (id, (r, tenure)) in &tuesday {
        let Some((r2, _)) = wednesday.get(id) else {
            continue;
        };
        // Never active: recency is the tenure, which does move a day.
        if r == tenure {
            continue;
        }
        active += 1;
        assert_eq!(r % 7, 0, "customer {id}: recency {r} is not whole weeks");
        assert_eq!(r, r2, "customer {id}: recency moved with the weekday");
    }
    assert!(active > 100, "only {active} active customers compared");
}

#[test]
fn schema_lists_every_output_column() {
    let t = &small_company().tables;
    let table = build_features(
        t,
        &FeatureParams {
            snapshots: vec!["2024-01-01".parse().unwrap()],
            horizon_days: 90,
        },
    )
    .unwrap();
    let names: Vec<String> = table
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let documented: Vec<String> = FEATURES.iter().map(|f| f.name.to_string()).collect();
    assert_eq!(names, documented);
    let (numeric, categorical) = model_inputs();
    assert!(numeric.len() >= 20 && categorical.len() == 4);
    for f in FEATURES {
        assert!(!f.meaning.is_empty());
    }
}
