//! Bad input gets a clear error naming the file, column and rows.

use std::path::Path;

use churnguard::data::synthetic::{generate, GeneratorParams};
use churnguard::data::{self, DataError, Format, LoadOptions};

/// Writes a small company as CSV and returns its directory.
fn csv_company() -> tempfile::TempDir {
    let mut company = generate(&GeneratorParams {
        n_customers: 60,
        seed: 5,
        ..Default::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    data::write_company(&mut company, dir.path(), Format::Csv).unwrap();
    dir
}

/// Rewrites one CSV file line by line: `edit(line_no, line)` (0 is the header).
fn edit_csv(dir: &Path, table: &str, edit: impl Fn(usize, &str) -> Option<String>) {
    let path = dir.join(format!("{table}.csv"));
    let text = std::fs::read_to_string(&path).unwrap();
    let out: Vec<String> = text
        .lines()
        .enumerate()
        .filter_map(|(i, l)| edit(i, l))
        .collect();
    std::fs::write(&path, out.join("\n") + "\n").unwrap();
}

fn replace_field(line: &str, idx: usize, value: &str) -> String {
    let mut fields: Vec<&str> = line.split(',').collect();
    fields[idx] = value;
    fields.join(",")
}

fn load_err(dir: &Path) -> (DataError, String) {
    let err = data::load_tables(dir, LoadOptions::default()).unwrap_err();
    let msg = err.to_string();
    (err, msg)
}

#[test]
fn valid_csv_loads() {
    let dir = csv_company();
    data::load_tables(dir.path(), LoadOptions::default()).unwrap();
}

#[test]
fn missing_table_names_directory_and_table() {
    let dir = csv_company();
    std::fs::remove_file(dir.path().join("tickets.csv")).unwrap();
    let (err, msg) = load_err(dir.path());
    assert!(matches!(err, DataError::MissingTable { .. }), "{msg}");
    assert!(
        msg.contains("tickets") && msg.contains(&dir.path().display().to_string()),
        "{msg}"
    );
}

#[test]
fn missing_column_is_named() {
    let dir = csv_company();
    edit_csv(dir.path(), "customers", |_, l| {
        Some(l.split(',').take(9).collect::<Vec<_>>().join(","))
    });
    let (err, msg) = load_err(dir.path());
    assert!(
        matches!(err, DataError::MissingColumn { ref column, .. } if column == "acquisition_rep_id"),
        "{msg}"
    );
    assert!(msg.contains("customers.csv"), "{msg}");
}

#[test]
fn wrong_type_names_column_row_and_value() {
    let dir = csv_company();
    // usage: customer_id,week_start,sessions,...
    edit_csv(dir.path(), "usage", |i, l| {
        Some(if i == 3 {
            replace_field(l, 2, "many")
        } else {
            l.to_string()
        })
    });
    let (err, msg) = load_err(dir.path());
    assert!(
        matches!(err, DataError::BadValue { ref column, row: 3, count: 1, .. } if column == "sessions"),
        "{msg}"
    );
    assert!(
        msg.contains("usage.csv") && msg.contains("\"many\""),
        "{msg}"
    );
}

#[test]
fn bad_date_is_rejected() {
    let dir = csv_company();
    edit_csv(dir.path(), "customers", |i, l| {
        Some(if i == 2 {
            replace_field(l, 2, "2023-13-45")
        } else {
            l.to_string()
        })
    });
    let (err, msg) = load_err(dir.path());
    assert!(
        matches!(err, DataError::BadValue { ref column, row: 2, .. } if column == "signup_date"),
        "{msg}"
    );
}

#[test]
fn duplicate_ids_are_counted() {
    let dir = csv_company();
    edit_csv(dir.path(), "customers", |i, l| {
        Some(if i == 5 || i == 6 {
            replace_field(l, 0, "1")
        } else {
            l.to_string()
        })
    });
    let (err, msg) = load_err(dir.path());
    assert!(
        matches!(err, DataError::DuplicateId { count: 2, ref value, .. } if value == "1"),
        "{msg}"
    );
}

#[test]
fn negative_amounts_are_rejected() {
    let dir = csv_company();
    // invoices: invoice_id,customer_id,invoice_date,due_date,amount
    edit_csv(dir.path(), "invoices", |i, l| {
        Some(if i == 4 {
            replace_field(l, 4, "-12.5")
        } else {
            l.to_string()
        })
    });
    let (err, msg) = load_err(dir.path());
    assert!(
        matches!(err, DataError::Negative { ref column, row: 4, .. } if column == "amount"),
        "{msg}"
    );
    assert!(msg.contains("invoices.csv"), "{msg}");
}

#[test]
fn future_dates_are_rejected() {
    let dir = csv_company();
    edit_csv(dir.path(), "tickets", |i, l| {
        Some(if i == 1 {
            replace_field(l, 2, "2099-01-01")
        } else {
            l.to_string()
        })
    });
    let (err, msg) = load_err(dir.path());
    assert!(
        matches!(err, DataError::FutureDate { ref column, row: 1, .. } | DataError::DateOrder { ref column, row: 1, .. } if column == "opened_date" || column == "resolved_date"),
        "{msg}"
    );
}

#[test]
fn dates_out_of_order_are_rejected() {
    let dir = csv_company();
    // invoices: due_date before invoice_date
    edit_csv(dir.path(), "invoices", |i, l| {
        Some(if i == 2 {
            replace_field(l, 3, "2020-01-01")
        } else {
            l.to_string()
        })
    });
    let (err, msg) = load_err(dir.path());
    assert!(
        matches!(err, DataError::DateOrder { ref column, ref before, row: 2, .. } if column == "due_date" && before == "invoice_date"),
        "{msg}"
    );
}

#[test]
fn churn_before_signup_is_rejected() {
    let dir = csv_company();
    edit_csv(dir.path(), "churn_events", |i, l| {
        Some(if i == 1 {
            replace_field(l, 1, "2001-01-01")
        } else {
            l.to_string()
        })
    });
    let (err, msg) = load_err(dir.path());
    assert!(
        matches!(err, DataError::DateOrder { ref column, .. } if column == "churn_date"),
        "{msg}"
    );
}

#[test]
fn empty_customer_table_is_rejected() {
    let dir = csv_company();
    edit_csv(dir.path(), "customers", |i, l| {
        (i == 0).then(|| l.to_string())
    });
    let (err, msg) = load_err(dir.path());
    assert!(matches!(err, DataError::EmptyTable { .. }), "{msg}");
    assert!(msg.contains("customers.csv"), "{msg}");
}

#[test]
fn unknown_references_are_rejected() {
    let dir = csv_company();
    edit_csv(dir.path(), "usage", |i, l| {
        Some(if i == 1 {
            replace_field(l, 0, "999999")
        } else {
            l.to_string()
        })
    });
    let (err, msg) = load_err(dir.path());
    assert!(
        matches!(err, DataError::UnknownReference { count: 1, .. }),
        "{msg}"
    );
}

#[test]
fn unknown_category_is_rejected() {
    let dir = csv_company();
    edit_csv(dir.path(), "customers", |i, l| {
        Some(if i == 1 {
            replace_field(l, 4, "weekly")
        } else {
            l.to_string()
        })
    });
    let (err, msg) = load_err(dir.path());
    assert!(
        matches!(err, DataError::BadValue { ref column, .. } if column == "contract"),
        "{msg}"
    );
    assert!(msg.contains("monthly, annual, two_year"), "{msg}");
}

#[test]
fn garbage_files_do_not_panic() {
    let dir = csv_company();
    std::fs::write(
        dir.path().join("surveys.csv"),
        b"\xff\xfe\x00garbage,\"unterminated\n1,2",
    )
    .unwrap();
    let _ = data::load_tables(dir.path(), LoadOptions::default()).unwrap_err();
    std::fs::remove_file(dir.path().join("surveys.csv")).unwrap();
    std::fs::write(dir.path().join("surveys.parquet"), b"PAR1 not really").unwrap();
    let (err, msg) = load_err(dir.path());
    assert!(matches!(err, DataError::Unreadable { .. }), "{msg}");
}
