//! BG/NBD and Gamma-Gamma against the python `lifetimes` package on real
//! transaction logs: CDNOW (39-week calibration from 1997-01-01) and UCI
//! Online Retail. The references in `tests/data/btyd_reference.json` come
//! from `bench/peers/btyd_lifetimes.py`, whose docstring states the
//! conventions both sides follow; the logs themselves live in
//! `../shared/data` and the tests skip without them (and fail without them
//! under `CHURNGUARD_REQUIRE_SHARED_DATA=1`).

use std::path::Path;

use chrono::NaiveDate;
use churnguard::value::btyd::{
    calibration_and_holdout, fit_bg_nbd, fit_gamma_gamma, holdout_comparison, BgNbdParams,
    CalibrationHoldout, GammaGammaParams, TimeUnit, Transaction,
};
use serde_json::Value;

use crate::support::shared_data;

fn reference(dataset: &str) -> Value {
    let all: Value = serde_json::from_str(include_str!("../data/btyd_reference.json")).unwrap();
    all[dataset].clone()
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("reference lacks {key}"))
}

fn date(v: &Value, key: &str) -> NaiveDate {
    NaiveDate::parse_from_str(v[key].as_str().unwrap(), "%Y-%m-%d").unwrap()
}

fn relative(ours: f64, theirs: f64) -> f64 {
    (ours - theirs).abs() / theirs.abs()
}

/// CDNOW's `customer_id,date,number_of_cds,dollar_value`.
fn cdnow(path: &Path) -> Vec<Transaction> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            Transaction {
                customer_id: f[0].parse().unwrap(),
                date: NaiveDate::parse_from_str(f[1], "%Y-%m-%d").unwrap(),
                amount: f[3].parse().unwrap(),
            }
        })
        .collect()
}

/// One CSV record's fields; double-quoted fields may hold commas and `""`.
fn fields(line: &str) -> Vec<String> {
    let (mut out, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    out.push(field);
    out
}

/// Online Retail's purchases: rows with a CustomerID, an InvoiceNo not
/// starting with `C`, Quantity > 0 and UnitPrice > 0; amount = Quantity x
/// UnitPrice, on the InvoiceDate's day (the peer script's cleaning).
fn online_retail(path: &Path) -> Vec<Transaction> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = fields(lines.next().unwrap());
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (invoice, quantity, day, price, customer) = (
        at("InvoiceNo"),
        at("Quantity"),
        at("InvoiceDate"),
        at("UnitPrice"),
        at("CustomerID"),
    );
    lines
        .filter_map(|line| {
            let f = fields(line);
            let q: f64 = f[quantity].parse().unwrap();
            let p: f64 = f[price].parse().unwrap();
            if f[customer].is_empty() || f[invoice].starts_with('C') || q <= 0.0 || p <= 0.0 {
                return None;
            }
            Some(Transaction {
                customer_id: f[customer].parse::<f64>().unwrap() as i64,
                date: NaiveDate::parse_from_str(&f[day][..10], "%Y-%m-%d").unwrap(),
                amount: q * p,
            })
        })
        .collect()
}

fn unit(r: &Value) -> TimeUnit {
    match (r["freq"].as_str().unwrap(), num(r, "freq_multiplier")) {
        ("D", 1.0) => TimeUnit::Days,
        ("D", 7.0) => TimeUnit::DaysInWeeks,
        ("W", 1.0) => TimeUnit::Weeks,
        other => panic!("no time unit for {other:?}"),
    }
}

/// The summary equals lifetimes' (counts and sums), and the named
/// customers' rows equal theirs exactly.
fn check_summary(name: &str, r: &Value, data: &CalibrationHoldout) {
    let s = &r["summary"];
    let c = &data.customers;
    assert_eq!(c.len() as f64, num(s, "customers"), "{name}: customers");
    let sums = [
        (
            "sum_frequency",
            c.iter().map(|c| f64::from(c.frequency)).sum::<f64>(),
        ),
        ("sum_recency", c.iter().map(|c| c.recency).sum::<f64>()),
        ("sum_T", c.iter().map(|c| c.age).sum::<f64>()),
        (
            "sum_monetary_value",
            c.iter().map(|c| c.monetary_value).sum::<f64>(),
        ),
    ];
    for (key, ours) in sums {
        assert!(
            relative(ours, num(s, key)) < 1e-9,
            "{name}: {key} {ours} vs {}",
            num(s, key)
        );
    }
    assert_eq!(
        data.holdout_duration,
        num(&r["holdout"], "duration"),
        "{name}"
    );
    for want in r["customers"].as_array().unwrap() {
        let id = want["customer_id"].as_i64().unwrap();
        let i = c.binary_search_by_key(&id, |c| c.customer_id).unwrap();
        let got = [
            f64::from(c[i].frequency),
            c[i].recency,
            c[i].age,
            c[i].monetary_value,
            f64::from(data.holdout_frequency[i]),
        ];
        let keys = [
            "frequency",
            "recency",
            "T",
            "monetary_value",
            "frequency_holdout",
        ];
        for (g, k) in got.iter().zip(keys) {
            assert!(
                (g - num(want, k)).abs() <= 1e-9 * num(want, k).abs().max(1.0),
                "{name} customer {id}: {k} {g}"
            );
        }
    }
}

/// Fits both models on one dataset and compares with lifetimes. With
/// `dropout_identified = false` (the BG/NBD maximum lies where a -> 0 with
/// a/b -> 0), only r, alpha and the likelihood are compared, and both fits
/// must sit on that ridge (a dropout per purchase a/(a+b) below 1e-6).
fn compare(name: &str, transactions: &[Transaction], dropout_identified: bool) {
    let r = reference(name);
    let data = calibration_and_holdout(
        transactions,
        date(&r, "calibration_end"),
        date(&r, "observation_end"),
        unit(&r),
    )
    .unwrap();
    check_summary(name, &r, &data);

    let bg = fit_bg_nbd(&data.customers).unwrap();
    let theirs = &r["bgnbd"];
    let theirs_params = BgNbdParams::new(
        num(theirs, "r"),
        num(theirs, "alpha"),
        num(theirs, "a"),
        num(theirs, "b"),
    )
    .unwrap();
    let ours = [
        ("r", bg.params.r),
        ("alpha", bg.params.alpha),
        ("a", bg.params.a),
        ("b", bg.params.b),
    ];
    let compared = if dropout_identified { 4 } else { 2 };
    for (key, value) in &ours[..compared] {
        let rel = relative(*value, num(theirs, key));
        eprintln!(
            "{name} BG/NBD {key}: ours {value:.6}, lifetimes {:.6}, relative difference {rel:.2e}",
            num(theirs, key)
        );
        assert!(
            rel < 0.01,
            "{name}: BG/NBD {key} {value} vs {}",
            num(theirs, key)
        );
    }
    let their_ll = theirs_params.log_likelihood(&data.customers);
    eprintln!(
        "{name} BG/NBD log-likelihood: ours {:.6}, at lifetimes' parameters {their_ll:.6}",
        bg.log_likelihood
    );
    assert!(
        bg.log_likelihood >= their_ll - 1e-6 * their_ll.abs(),
        "{name}: {} < {their_ll}",
        bg.log_likelihood
    );
    if dropout_identified {
        assert!(!bg.at_bound, "{name}: {bg:?}");
    } else {
        let dropout = |p: &BgNbdParams| p.a / (p.a + p.b);
        eprintln!(
            "{name} BG/NBD dropout per purchase a/(a+b): ours {:.1e}, lifetimes {:.1e} (not identified)",
            dropout(&bg.params),
            dropout(&theirs_params)
        );
        assert!(
            dropout(&bg.params) < 1e-6 && dropout(&theirs_params) < 1e-6,
            "{name}: {bg:?}"
        );
    }

    let gg = fit_gamma_gamma(&data.customers).unwrap();
    assert_eq!(
        gg.customers as f64,
        num(&r["summary"], "gamma_gamma_customers"),
        "{name}"
    );
    let theirs = &r["gamma_gamma"];
    for (key, value) in [("p", gg.params.p), ("q", gg.params.q), ("v", gg.params.v)] {
        let rel = relative(value, num(theirs, key));
        eprintln!("{name} Gamma-Gamma {key}: ours {value:.6}, lifetimes {:.6}, relative difference {rel:.2e}", num(theirs, key));
        assert!(
            rel < 0.01,
            "{name}: Gamma-Gamma {key} {value} vs {}",
            num(theirs, key)
        );
    }

    // lifetimes' predictions with lifetimes' parameters, recomputed.
    let their_gg =
        GammaGammaParams::new(num(theirs, "p"), num(theirs, "q"), num(theirs, "v")).unwrap();
    for want in r["customers"].as_array().unwrap() {
        let (x, t_x, age, m) = (
            num(want, "frequency") as u32,
            num(want, "recency"),
            num(want, "T"),
            num(want, "monetary_value"),
        );
        let checks = [
            ("p_alive", theirs_params.p_alive(x, t_x, age)),
            (
                "expected_holdout_purchases",
                theirs_params.expected_purchases(data.holdout_duration, x, t_x, age),
            ),
            (
                "expected_average_value",
                their_gg.expected_average_value(x, m).unwrap(),
            ),
        ];
        for (key, got) in checks {
            assert!(
                relative(got, num(want, key)) < 1e-6,
                "{name} customer {}: {key} {got} vs {}",
                want["customer_id"],
                num(want, key)
            );
        }
    }

    // The holdout period: predicted against actual purchases per customer.
    let h = holdout_comparison(&bg.params, &data);
    let want = &r["holdout"];
    eprintln!(
        "{name} holdout ({} units, {} customers): actual {}, predicted {:.1} (lifetimes {:.1}), MAE {:.4} (lifetimes {:.4}), RMSE {:.4}",
        h.duration,
        h.customers,
        h.actual_total,
        h.predicted_total,
        num(want, "predicted_total"),
        h.mean_absolute_error,
        num(want, "mean_absolute_error"),
        h.root_mean_squared_error
    );
    for b in &h.by_frequency {
        eprintln!(
            "{name}   x={}{}: {} customers, mean actual {:.3}, mean predicted {:.3}",
            b.frequency,
            if b.frequency == 7 { "+" } else { "" },
            b.customers,
            b.mean_actual,
            b.mean_predicted
        );
    }
    assert_eq!(h.actual_total, num(want, "actual_total"), "{name}");
    assert!(
        relative(h.predicted_total, num(want, "predicted_total")) < 0.01,
        "{name}: {h:?}"
    );
    assert!(
        relative(h.mean_absolute_error, num(want, "mean_absolute_error")) < 0.01,
        "{name}"
    );
}

#[test]
fn cdnow_fits_equal_lifetimes() {
    let Some(path) = shared_data("cdnow/cdnow_transactions.csv") else {
        return;
    };
    compare("cdnow", &cdnow(&path), true);
}

#[test]
fn online_retail_fits_equal_lifetimes() {
    let Some(path) = shared_data("online_retail/online_retail.csv") else {
        return;
    };
    compare("online_retail", &online_retail(&path), false);
}
