//! Column typing and checks shared by event tables and flat tables.

use std::collections::HashSet;
use std::path::Path;

use chrono::NaiveDate;
use polars::prelude::*;

use super::schema::{days_from_date, ColumnKind, TableSpec};
use super::{DataError, Result, Tables};

/// Counts of what was found while typing a table, for summaries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableReport {
    /// Rows read.
    pub rows: usize,
    /// Missing values per column, in column order, only where non-zero.
    pub missing: Vec<(String, usize)>,
}

/// Parses one column into the polars type of `kind`, failing with the first
/// bad value and the number of bad values. Empty cells become nulls.
pub fn parse_columns(column: &Column, kind: ColumnKind, path: &Path) -> Result<Series> {
    let name = column.name().to_string();
    let series = column.as_materialized_series();
    let target = match kind {
        ColumnKind::Id | ColumnKind::Count | ColumnKind::Score(..) => DataType::Int64,
        ColumnKind::Amount => DataType::Float64,
        ColumnKind::Date => DataType::Date,
        ColumnKind::Text | ColumnKind::Category(_) => DataType::String,
        ColumnKind::Bool => DataType::Boolean,
    };
    let bad = |count: usize, row: usize, value: String| DataError::BadValue {
        path: path.to_path_buf(),
        column: name.clone(),
        expected: kind.describe(),
        count,
        row,
        value,
    };
    if series.dtype() == &DataType::String && target != DataType::String {
        let ca = series.str().expect("checked dtype");
        let mut first_bad: Option<(usize, String)> = None;
        let mut n_bad = 0usize;
        let mut note = |i: usize, v: &str| {
            n_bad += 1;
            if first_bad.is_none() {
                first_bad = Some((i + 1, v.to_string()));
            }
        };
        let out: Series = match target {
            DataType::Int64 => {
                let v: Int64Chunked = ca
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let s = s.map(str::trim).filter(|s| !s.is_empty())?;
                        let parsed = s.parse::<i64>().ok().or_else(|| {
                            s.parse::<f64>()
                                .ok()
                                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                                .map(|f| f as i64)
                        });
                        if parsed.is_none() {
                            note(i, s);
                        }
                        parsed
                    })
                    .collect();
                v.into_series()
            }
            DataType::Float64 => {
                let v: Float64Chunked = ca
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let s = s.map(str::trim).filter(|s| !s.is_empty())?;
                        match s.parse::<f64>() {
                            Ok(f) if f.is_finite() => Some(f),
                            _ => {
                                note(i, s);
                                None
                            }
                        }
                    })
                    .collect();
                v.into_series()
            }
            DataType::Date => {
                let v: Int32Chunked = ca
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let s = s.map(str::trim).filter(|s| !s.is_empty())?;
                        let day = s.get(..10).unwrap_or(s);
                        match NaiveDate::parse_from_str(day, "%Y-%m-%d") {
                            Ok(d)
                                if s.len() == 10
                                    || s.as_bytes()
                                        .get(10)
                                        .is_some_and(|b| *b == b' ' || *b == b'T') =>
                            {
                                Some(days_from_date(d))
                            }
                            _ => {
                                note(i, s);
                                None
                            }
                        }
                    })
                    .collect();
                v.into_series()
                    .cast(&DataType::Date)
                    .map_err(DataError::polars("casting to date"))?
            }
            DataType::Boolean => {
                let v: BooleanChunked = ca
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let s = s.map(str::trim).filter(|s| !s.is_empty())?;
                        match s.to_ascii_lowercase().as_str() {
                            "true" | "1" | "yes" => Some(true),
                            "false" | "0" | "no" => Some(false),
                            _ => {
                                note(i, s);
                                None
                            }
                        }
                    })
                    .collect();
                v.into_series()
            }
            _ => unreachable!("only the targets above are parsed"),
        };
        if let Some((row, value)) = first_bad {
            return Err(bad(n_bad, row, value));
        }
        return Ok(out.with_name(name.as_str().into()));
    }
    let ok_source = match (&target, series.dtype()) {
        (DataType::Int64, dt) => dt.is_integer(),
        (DataType::Float64, dt) => dt.is_primitive_numeric(),
        (DataType::Date, dt) => matches!(dt, DataType::Date | DataType::Datetime(..)),
        (DataType::String, dt) => {
            matches!(
                dt,
                DataType::String | DataType::Categorical(..) | DataType::Enum(..)
            ) || dt.is_integer()
        }
        (DataType::Boolean, dt) => matches!(dt, DataType::Boolean),
        _ => false,
    };
    if !ok_source {
        let row = series
            .is_not_null()
            .iter()
            .position(|b| b == Some(true))
            .map_or(1, |i| i + 1);
        let value = series
            .get(row.saturating_sub(1))
            .map(|v| v.to_string())
            .unwrap_or_default();
        return Err(DataError::BadValue {
            path: path.to_path_buf(),
            column: name.clone(),
            expected: format!("{} (found type {})", kind.describe(), series.dtype()),
            count: series.len() - series.null_count(),
            row,
            value,
        });
    }
    let mut out = series.cast(&target).map_err(DataError::polars(format!(
        "{}: casting `{name}`",
        path.display()
    )))?;
    if target == DataType::Float64 {
        let ca = out.f64().expect("cast to f64");
        if let Some((i, v)) = ca
            .iter()
            .enumerate()
            .find_map(|(i, v)| v.filter(|v| !v.is_finite()).map(|v| (i, v)))
        {
            let count = ca
                .iter()
                .filter(|v| v.is_some_and(|v| !v.is_finite()))
                .count();
            return Err(bad(count, i + 1, v.to_string()));
        }
        out = out.with_name(name.as_str().into());
    }
    Ok(out)
}

fn first_where(mask: impl Iterator<Item = bool>) -> (usize, usize) {
    let mut count = 0;
    let mut first = 0;
    for (i, m) in mask.enumerate() {
        if m {
            if count == 0 {
                first = i + 1;
            }
            count += 1;
        }
    }
    (count, first)
}

/// Types and checks one raw table against its spec; returns only the spec's
/// columns, in spec order.
pub(crate) fn check_table(
    spec: &TableSpec,
    raw: DataFrame,
    path: &Path,
    as_of: NaiveDate,
) -> Result<DataFrame> {
    if raw.height() == 0 && !spec.may_be_empty {
        return Err(DataError::EmptyTable {
            path: path.to_path_buf(),
        });
    }
    let as_of_days = days_from_date(as_of);
    let mut columns = Vec::with_capacity(spec.columns.len());
    for c in spec.columns {
        let column = raw.column(c.name).map_err(|_| DataError::MissingColumn {
            path: path.to_path_buf(),
            column: c.name.to_string(),
        })?;
        let s = parse_columns(column, c.kind, path)?;
        if !c.nullable && s.null_count() > 0 {
            let (count, row) = first_where(s.is_null().iter().map(|b| b.unwrap_or(false)));
            return Err(DataError::MissingValue {
                path: path.to_path_buf(),
                column: c.name.to_string(),
                count,
                row,
            });
        }
        check_values(&s, c.kind, c.name, path, as_of_days)?;
        columns.push(s.into_column());
    }
    let df = DataFrame::new(raw.height(), columns).map_err(DataError::polars("building table"))?;
    if let Some(key) = spec.key {
        let ids = df
            .column(key)
            .expect("key is a spec column")
            .i64()
            .expect("ids are i64");
        let ids: Vec<i64> = ids.into_no_null_iter().collect();
        let (dupes, first) = duplicates(&ids);
        if let Some(v) = first {
            return Err(DataError::DuplicateId {
                path: path.to_path_buf(),
                column: key.to_string(),
                count: dupes,
                value: v.to_string(),
            });
        }
    }
    for (later, earlier) in spec.date_order {
        let a = days(&df, later);
        let b = days(&df, earlier);
        let (count, row) = first_where(
            a.iter()
                .zip(b.iter())
                .map(|(a, b)| matches!((a, b), (Some(a), Some(b)) if a < b)),
        );
        if count > 0 {
            return Err(DataError::DateOrder {
                path: path.to_path_buf(),
                column: later.to_string(),
                before: earlier.to_string(),
                count,
                row,
            });
        }
    }
    Ok(df)
}

fn days(df: &DataFrame, name: &str) -> Int32Chunked {
    df.column(name)
        .expect("spec column")
        .cast(&DataType::Int32)
        .expect("date casts to i32")
        .i32()
        .expect("i32")
        .clone()
}

fn check_values(
    s: &Series,
    kind: ColumnKind,
    name: &str,
    path: &Path,
    as_of_days: i32,
) -> Result<()> {
    if values_plainly_valid(s, kind, name, as_of_days) {
        return Ok(());
    }
    match kind {
        ColumnKind::Count | ColumnKind::Amount => {
            let f = s.cast(&DataType::Float64).expect("numeric casts to f64");
            let ca = f.f64().expect("f64");
            let (count, row) = first_where(ca.iter().map(|v| v.is_some_and(|v| v < 0.0)));
            if count > 0 {
                return Err(DataError::Negative {
                    path: path.to_path_buf(),
                    column: name.to_string(),
                    count,
                    row,
                    value: ca.get(row - 1).unwrap_or_default(),
                });
            }
        }
        ColumnKind::Score(lo, hi) => {
            let ca = s.i64().expect("scores are i64");
            let (count, row) = first_where(ca.iter().map(|v| v.is_some_and(|v| v < lo || v > hi)));
            if count > 0 {
                return Err(DataError::OutOfRange {
                    path: path.to_path_buf(),
                    column: name.to_string(),
                    range: format!("{lo}..={hi}"),
                    count,
                    row,
                    value: ca.get(row - 1).unwrap_or_default().to_string(),
                });
            }
        }
        ColumnKind::Category(values) => {
            let ca = s.str().expect("categories are text");
            let (count, row) =
                first_where(ca.iter().map(|v| v.is_some_and(|v| !values.contains(&v))));
            if count > 0 {
                return Err(DataError::BadValue {
                    path: path.to_path_buf(),
                    column: name.to_string(),
                    expected: kind.describe(),
                    count,
                    row,
                    value: ca.get(row - 1).unwrap_or_default().to_string(),
                });
            }
        }
        ColumnKind::Date if super::schema::SCHEDULED_DATES.contains(&name) => {}
        ColumnKind::Date => {
            let d = s.cast(&DataType::Int32).expect("date casts to i32");
            let ca = d.i32().expect("i32");
            let (count, row) = first_where(ca.iter().map(|v| v.is_some_and(|v| v > as_of_days)));
            if count > 0 {
                return Err(DataError::FutureDate {
                    path: path.to_path_buf(),
                    column: name.to_string(),
                    as_of: super::schema::date_from_days(as_of_days),
                    count,
                    row,
                    value: super::schema::date_from_days(ca.get(row - 1).unwrap_or_default()),
                });
            }
        }
        ColumnKind::Id | ColumnKind::Text | ColumnKind::Bool => {}
    }
    Ok(())
}

/// Cross-table checks: every reference resolves, churn follows signup.
pub(crate) fn check_relations(t: &Tables, dir: &Path) -> Result<()> {
    let ids = |df: &DataFrame, col: &str| -> IdSet {
        IdSet::new(
            df.column(col)
                .expect("spec column")
                .i64()
                .expect("ids")
                .into_no_null_iter()
                .collect(),
        )
    };
    let customers = ids(&t.customers, "customer_id");
    let employees = ids(&t.employees, "employee_id");
    let path_of = |table: &str| super::table_path(dir, table).unwrap_or_else(|| dir.join(table));
    let check = |table: &str, df: &DataFrame, col: &str, target: &str, set: &IdSet| -> Result<()> {
        let ca = df.column(col).expect("spec column").i64().expect("ids");
        let mut count = 0;
        let mut first = None;
        for id in ca.iter().flatten() {
            if !set.contains(id) {
                count += 1;
                first.get_or_insert(id);
            }
        }
        match first {
            Some(v) => Err(DataError::UnknownReference {
                path: path_of(table),
                column: col.to_string(),
                table: target.to_string(),
                count,
                value: v.to_string(),
            }),
            None => Ok(()),
        }
    };
    check(
        "customers",
        &t.customers,
        "account_manager_id",
        "employees",
        &employees,
    )?;
    check(
        "customers",
        &t.customers,
        "acquisition_rep_id",
        "employees",
        &employees,
    )?;
    check(
        "leads",
        &t.leads,
        "acquisition_rep_id",
        "employees",
        &employees,
    )?;
    check("leads", &t.leads, "customer_id", "customers", &customers)?;
    for (name, df) in t.iter().skip(3) {
        check(name, df, "customer_id", "customers", &customers)?;
    }
    // Churn must not precede signup.
    let signup: std::collections::HashMap<i64, i32> = t
        .customers
        .column("customer_id")
        .expect("id")
        .i64()
        .expect("ids")
        .into_no_null_iter()
        .zip(days(&t.customers, "signup_date").into_no_null_iter())
        .collect();
    let churn_ids = t
        .churn_events
        .column("customer_id")
        .expect("id")
        .i64()
        .expect("ids")
        .clone();
    let churn_days = days(&t.churn_events, "churn_date");
    let (count, row) = first_where(
        churn_ids
            .into_no_null_iter()
            .zip(churn_days.into_no_null_iter())
            .map(|(id, d)| signup.get(&id).is_some_and(|s| d < *s)),
    );
    if count > 0 {
        return Err(DataError::DateOrder {
            path: path_of("churn_events"),
            column: "churn_date".into(),
            before: "customers.signup_date".into(),
            count,
            row,
        });
    }
    Ok(())
}

/// Whole-column checks (vectorised minima and maxima, the distinct
/// categories) that prove a column valid without visiting each row; the
/// row-by-row scans of [`check_values`] run only when these fail, to count
/// and name the bad rows.
fn values_plainly_valid(s: &Series, kind: ColumnKind, name: &str, as_of_days: i32) -> bool {
    match kind {
        ColumnKind::Count | ColumnKind::Amount => match s.dtype() {
            DataType::Int64 => s.i64().is_ok_and(|ca| ca.min().is_none_or(|m| m >= 0)),
            DataType::Float64 => s.f64().is_ok_and(|ca| {
                // NaN is neither below nor above zero: a NaN minimum proves
                // nothing, so fall through to the scan.
                ca.min().is_none_or(|m| m >= 0.0)
            }),
            _ => false,
        },
        ColumnKind::Score(lo, hi) => s
            .i64()
            .is_ok_and(|ca| ca.min().is_none_or(|m| m >= lo) && ca.max().is_none_or(|m| m <= hi)),
        ColumnKind::Category(values) => s.str().is_ok_and(|ca| {
            ca.unique()
                .is_ok_and(|u| u.iter().all(|v| v.is_none_or(|v| values.contains(&v))))
        }),
        ColumnKind::Date if super::schema::SCHEDULED_DATES.contains(&name) => true,
        ColumnKind::Date => s.cast(&DataType::Int32).is_ok_and(|d| {
            d.i32()
                .is_ok_and(|ca| ca.max().is_none_or(|m| m <= as_of_days))
        }),
        ColumnKind::Id | ColumnKind::Text | ColumnKind::Bool => true,
    }
}

/// A span of ids at most this many times the number of ids is kept as a
/// bitmap (at most 8 bytes of bitmap per id).
const DENSE_SPAN_PER_ID: u64 = 64;

/// The ids of a table, for the reference checks that run over every event
/// row: a bitmap when the ids are dense (generated ids and most exports'
/// are), a sorted vector otherwise. Hashing every row of a 100-million-row
/// usage table was the slowest part of loading.
enum IdSet {
    Dense { min: i64, bits: Vec<u64> },
    Sorted(Vec<i64>),
}

impl IdSet {
    fn new(mut ids: Vec<i64>) -> IdSet {
        match dense_span(&ids) {
            Some((min, span)) => {
                let mut bits = vec![0u64; (span / 64 + 1) as usize];
                for id in ids {
                    let k = id.wrapping_sub(min) as u64;
                    bits[(k / 64) as usize] |= 1 << (k % 64);
                }
                IdSet::Dense { min, bits }
            }
            None => {
                ids.sort_unstable();
                ids.dedup();
                IdSet::Sorted(ids)
            }
        }
    }

    fn contains(&self, id: i64) -> bool {
        match self {
            IdSet::Dense { min, bits } => {
                if id < *min {
                    return false;
                }
                let k = id.wrapping_sub(*min) as u64;
                bits.get((k / 64) as usize)
                    .is_some_and(|w| w & (1 << (k % 64)) != 0)
            }
            IdSet::Sorted(v) => v.binary_search(&id).is_ok(),
        }
    }
}

/// `(min, max - min)` when the ids span at most [`DENSE_SPAN_PER_ID`] times
/// their count (plus some slack for tiny tables).
fn dense_span(ids: &[i64]) -> Option<(i64, u64)> {
    let min = *ids.iter().min()?;
    let max = *ids.iter().max()?;
    let span = (max as i128 - min as i128) as u128;
    let limit = (ids.len() as u128) * DENSE_SPAN_PER_ID as u128 + 4096;
    (span <= limit).then_some((min, span as u64))
}

/// How many ids repeat an earlier one, and the first that does.
fn duplicates(ids: &[i64]) -> (usize, Option<i64>) {
    let mut dupes = 0usize;
    let mut first = None;
    let mut note = |seen: bool, id: i64| {
        if seen {
            dupes += 1;
            first.get_or_insert(id);
        }
    };
    if let Some((min, span)) = dense_span(ids) {
        let mut bits = vec![0u64; (span / 64 + 1) as usize];
        for &id in ids {
            let k = id.wrapping_sub(min) as u64;
            let (w, b) = ((k / 64) as usize, 1u64 << (k % 64));
            note(bits[w] & b != 0, id);
            bits[w] |= b;
        }
    } else {
        let mut seen = HashSet::with_capacity(ids.len());
        for &id in ids {
            note(!seen.insert(id), id);
        }
    }
    (dupes, first)
}

#[cfg(test)]
mod id_set_tests {
    use super::*;

    #[test]
    fn dense_and_sparse_sets_agree() {
        let dense = IdSet::new(vec![5, 7, 9, 5, 200]);
        assert!(matches!(dense, IdSet::Dense { .. }));
        let sparse = IdSet::new(vec![i64::MIN, -3, 0, 5, i64::MAX]);
        assert!(matches!(sparse, IdSet::Sorted(_)));
        for id in [i64::MIN, -4, -3, 0, 4, 5, 6, 7, 9, 200, 201, i64::MAX] {
            assert_eq!(
                dense.contains(id),
                [5, 7, 9, 200].contains(&id),
                "dense {id}"
            );
            assert_eq!(
                sparse.contains(id),
                [i64::MIN, -3, 0, 5, i64::MAX].contains(&id),
                "sparse {id}"
            );
        }
        assert!(!IdSet::new(Vec::new()).contains(0));
    }

    #[test]
    fn duplicates_are_counted_and_the_first_named() {
        assert_eq!(duplicates(&[3, 1, 3, 2, 1, 3]), (3, Some(3)));
        assert_eq!(duplicates(&[i64::MAX, 0, i64::MIN, 0]), (1, Some(0)));
        assert_eq!(duplicates(&[1, 2]), (0, None));
    }
}
