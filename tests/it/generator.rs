//! The synthetic company: determinism, plausible churn, mess, ground truth.

use churnguard::data::synthetic::{generate, oracle_probability, GeneratorParams};
use churnguard::data::{self, Format, LoadOptions};
use churnguard::features::{build_features, FeatureParams};
use polars::prelude::*;

use crate::support::small_company;

fn params(n: usize, seed: u64) -> GeneratorParams {
    GeneratorParams {
        n_customers: n,
        seed,
        ..Default::default()
    }
}

#[test]
fn same_seed_gives_same_company_and_other_seeds_differ() {
    let a = generate(&params(300, 11)).unwrap();
    let b = generate(&params(300, 11)).unwrap();
    let c = generate(&params(300, 12)).unwrap();
    for ((name, x), (_, y)) in a.tables.iter().zip(b.tables.iter()) {
        assert!(
            x.equals_missing(y),
            "table {name} differs for the same seed"
        );
    }
    assert!(a.truth.hazard.equals_missing(&b.truth.hazard));
    assert!(
        !a.tables.usage.equals_missing(&c.tables.usage),
        "a different seed should differ"
    );
}

#[test]
fn churn_rate_is_plausible_and_both_types_occur() {
    let company = small_company();
    let snapshots = [
        "2023-07-01",
        "2023-10-01",
        "2024-01-01",
        "2024-04-01",
        "2024-07-01",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let table = build_features(
        &company.tables,
        &FeatureParams {
            snapshots,
            horizon_days: 90,
        },
    )
    .unwrap();
    let churned = table.column("churned").unwrap().i32().unwrap();
    let rate = churned.iter().flatten().map(i64::from).sum::<i64>() as f64 / churned.len() as f64;
    assert!(
        (0.03..0.25).contains(&rate),
        "90-day churn rate {rate:.3} outside 3%..25%"
    );
    let types = table.column("churn_type").unwrap().str().unwrap();
    let involuntary = types.iter().filter(|t| *t == Some("involuntary")).count() as f64;
    let share = involuntary / churned.iter().flatten().map(i64::from).sum::<i64>() as f64;
    assert!(
        share > 0.05 && share < 0.6,
        "involuntary share {share:.3} implausible"
    );
}

#[test]
fn data_has_realistic_mess() {
    let t = &small_company().tables;
    let unanswered = t.surveys.column("score").unwrap().null_count();
    assert!(
        unanswered > t.surveys.height() / 5,
        "surveys should often go unanswered"
    );
    let with_usage: std::collections::HashSet<i64> = t
        .usage
        .column("customer_id")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    let no_usage = t.customers.height() - with_usage.len();
    assert!(
        no_usage > 10,
        "some customers never use the product, found {no_usage}"
    );
    let late = t
        .payments
        .column("days_late")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .filter(|d| *d > 0)
        .count();
    assert!(late > 50, "some payments are late, found {late}");
    let failed = t
        .payments
        .column("status")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .filter(|s| *s == "failed")
        .count();
    assert!(failed > 50, "some payments fail, found {failed}");
    let changes = t
        .subscriptions
        .column("change_type")
        .unwrap()
        .str()
        .unwrap();
    for kind in ["upgrade", "downgrade"] {
        assert!(
            changes.iter().flatten().any(|c| c == kind),
            "no {kind} in subscriptions"
        );
    }
}

#[test]
fn oracle_matches_observed_churn_on_average() {
    let company = small_company();
    let snapshot = "2024-01-01".parse().unwrap();
    let table = build_features(
        &company.tables,
        &FeatureParams {
            snapshots: vec![snapshot],
            horizon_days: 90,
        },
    )
    .unwrap();
    let ids: Vec<i64> = table
        .column("customer_id")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    let oracle = oracle_probability(&company.truth.hazard, &ids, snapshot, 90).unwrap();
    let churned = table.column("churned").unwrap().i32().unwrap();
    let observed = churned.iter().flatten().map(i64::from).sum::<i64>() as f64 / ids.len() as f64;
    let expected = oracle.iter().sum::<f64>() / ids.len() as f64;
    assert!(
        (observed - expected).abs() < 0.03,
        "oracle mean {expected:.4} vs observed churn {observed:.4}"
    );
    // The oracle ranks churners far above non-churners.
    let mut pos = Vec::new();
    let mut neg = Vec::new();
    for (p, y) in oracle.iter().zip(churned.into_no_null_iter()) {
        if y == 1 {
            pos.push(*p)
        } else {
            neg.push(*p)
        }
    }
    let mut wins = 0.0;
    for p in &pos {
        for n in &neg {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    let auc = wins / (pos.len() * neg.len()) as f64;
    assert!(
        auc > 0.75,
        "oracle AUC {auc:.3} too low: the latent model is too noisy"
    );
}

#[test]
fn better_managers_keep_more_customers() {
    let company = small_company();
    let skill: std::collections::HashMap<i64, f64> = company
        .truth
        .employees
        .column("employee_id")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .zip(
            company
                .truth
                .employees
                .column("skill")
                .unwrap()
                .f64()
                .unwrap()
                .into_no_null_iter(),
        )
        .collect();
    let churned: std::collections::HashSet<i64> = company
        .tables
        .churn_events
        .column("customer_id")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    let (mut hi, mut lo) = ((0.0, 0.0), (0.0, 0.0));
    for (id, am) in company
        .tables
        .customers
        .column("customer_id")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .zip(
            company
                .tables
                .customers
                .column("account_manager_id")
                .unwrap()
                .i64()
                .unwrap()
                .into_no_null_iter(),
        )
    {
        let slot = if skill[&am] > 0.0 { &mut hi } else { &mut lo };
        slot.0 += f64::from(u8::from(churned.contains(&id)));
        slot.1 += 1.0;
    }
    let (r_hi, r_lo) = (hi.0 / hi.1, lo.0 / lo.1);
    assert!(
        r_hi < r_lo,
        "skilled managers' churn {r_hi:.3} should be below {r_lo:.3}"
    );
}

#[test]
fn tables_round_trip_through_parquet_and_csv() {
    let mut company = generate(&params(200, 3)).unwrap();
    for format in [Format::Parquet, Format::Csv] {
        let dir = tempfile::tempdir().unwrap();
        data::write_company(&mut company, dir.path(), format).unwrap();
        let back = data::load_tables(dir.path(), LoadOptions::default()).unwrap();
        for ((name, x), (_, y)) in company.tables.iter().zip(back.iter()) {
            assert_eq!(x.height(), y.height(), "{name} ({format:?}) row count");
            assert_eq!(
                x.get_column_names(),
                y.get_column_names(),
                "{name} ({format:?}) columns"
            );
            for c in x.columns() {
                let other = y.column(c.name()).unwrap();
                assert_eq!(c.dtype(), other.dtype(), "{name}.{} type", c.name());
                if c.dtype() != &DataType::Float64 {
                    assert!(
                        c.as_materialized_series()
                            .equals_missing(other.as_materialized_series()),
                        "{name}.{} ({format:?}) values",
                        c.name()
                    );
                }
            }
        }
        let truth = data::load_truth(dir.path()).unwrap();
        assert_eq!(truth.hazard.height(), company.truth.hazard.height());
    }
}

#[test]
fn bad_generator_settings_are_rejected() {
    let err = generate(&params(0, 1)).unwrap_err().to_string();
    assert!(err.contains("customers"), "{err}");
    let err = generate(&GeneratorParams {
        months: 1,
        ..params(10, 1)
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("months"), "{err}");
    let err = generate(&GeneratorParams {
        start: "2099-01-01".parse().unwrap(),
        ..params(10, 1)
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("after today"), "{err}");
}

#[test]
fn data_ends_with_the_simulated_period_not_with_scheduled_due_dates() {
    let end = small_company().tables.data_end().unwrap();
    let last_day: chrono::NaiveDate = "2024-12-31".parse().unwrap();
    assert!(
        end <= last_day && end > last_day - chrono::Duration::days(10),
        "data ends {end}"
    );
    let latest = churnguard::features::latest_snapshot(&small_company().tables).unwrap();
    assert_eq!(latest, end + chrono::Duration::days(1));
}
