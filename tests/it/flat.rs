//! Flat-table mode on the real Telco and credit-card data (skipped when absent)
//! and on small hand-made tables.

use std::path::Path;

use churnguard::data::flat::{load_flat, FlatSchema};
use churnguard::data::DataError;

use crate::support::{root, shared_data};

fn schema(name: &str) -> FlatSchema {
    FlatSchema::load(&root().join("data/schemas").join(name)).unwrap()
}

#[test]
fn telco_loads_with_eleven_missing_total_charges() {
    let Some(path) = shared_data("telco/telco_churn.csv") else {
        return;
    };
    let table = load_flat(&path, &schema("telco.toml")).unwrap();
    assert_eq!(table.summary.rows, 7043);
    assert_eq!(table.summary.positives, 1869);
    assert_eq!(
        table.summary.missing,
        vec![("TotalCharges".to_string(), 11)]
    );
    assert_eq!(table.frame.column("TotalCharges").unwrap().null_count(), 11);
    assert!(table.summary.to_string().contains("TotalCharges: 11"));
}

#[test]
fn credit_card_loads_without_the_leaky_columns() {
    let Some(path) = shared_data("credit_card_churners/bank_churners.csv") else {
        return;
    };
    let table = load_flat(&path, &schema("credit_card.toml")).unwrap();
    assert_eq!(table.summary.rows, 10127);
    assert_eq!(table.summary.positives, 1627);
    assert!(table
        .frame
        .get_column_names()
        .iter()
        .all(|c| !c.starts_with("Naive_Bayes")));
}

#[test]
fn a_column_without_a_role_is_an_error_not_silently_dropped() {
    let Some(path) = shared_data("credit_card_churners/bank_churners.csv") else {
        return;
    };
    let mut s = schema("credit_card.toml");
    s.columns.ignore.clear();
    let err = load_flat(&path, &s).unwrap_err().to_string();
    assert!(
        err.contains("Naive_Bayes") && err.contains("columns.ignore"),
        "{err}"
    );
}

fn write(dir: &Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("t.csv");
    std::fs::write(&p, text).unwrap();
    p
}

fn tiny_schema() -> FlatSchema {
    FlatSchema::parse(
        "id = \"id\"\n[target]\ncolumn = \"y\"\npositive = \"Yes\"\n[columns]\nnumeric = [\"x\"]\ncategorical = [\"c\"]\n",
        Path::new("tiny.toml"),
    )
    .unwrap()
}

#[test]
fn single_class_target_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "id,x,c,y\n1,1.0,a,No\n2,2.0,b,No\n");
    let err = load_flat(&p, &tiny_schema()).unwrap_err();
    assert!(matches!(err, DataError::SingleClass { .. }), "{err}");
    assert!(err.to_string().contains("\"No\""), "{err}");
}

#[test]
fn bad_numbers_and_duplicate_ids_name_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "id,x,c,y\n1,1.0,a,No\n2,abc,b,Yes\n");
    let err = load_flat(&p, &tiny_schema()).unwrap_err().to_string();
    assert!(
        err.contains("`x`") && err.contains("row 2") && err.contains("abc"),
        "{err}"
    );
    let p = write(dir.path(), "id,x,c,y\n1,1.0,a,No\n1,2.0,b,Yes\n");
    let err = load_flat(&p, &tiny_schema()).unwrap_err().to_string();
    assert!(err.contains("duplicate"), "{err}");
    let p = write(dir.path(), "id,x,y\n1,1.0,No\n2,2.0,Yes\n");
    let err = load_flat(&p, &tiny_schema()).unwrap_err().to_string();
    assert!(err.contains("missing required column `c`"), "{err}");
}

#[test]
fn schema_errors_name_the_key() {
    let err = FlatSchema::parse(
        "id = \"a\"\n[target]\ncolumn = \"a\"\npositive = \"1\"\n[columns]\nnumeric = [\"b\"]\n",
        Path::new("s.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("target.column") && err.contains("more than one role"),
        "{err}"
    );
    let err = FlatSchema::parse(
        "id = \"a\"\n[target]\ncolumn = \"y\"\npositive = \"1\"\n[columns]\nnumerc = [\"b\"]\n",
        Path::new("s.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("numerc"), "{err}");
}

#[test]
fn a_table_without_an_id_column_is_numbered_by_row() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "x,c,y\n1.0,a,No\n2.0,b,Yes\n3.0,a,No\n");
    let schema = FlatSchema::parse(
        "[target]\ncolumn = \"y\"\npositive = \"Yes\"\n[columns]\nnumeric = [\"x\"]\ncategorical = [\"c\"]\n",
        Path::new("noid.toml"),
    )
    .unwrap();
    assert!(schema.row_ids && schema.id == churnguard::data::flat::ROW_ID);
    let t = load_flat(&p, &schema).unwrap();
    let ids: Vec<String> = t
        .frame
        .column("row")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap().to_string())
        .collect();
    assert_eq!(ids, ["1", "2", "3"]);
    assert!(t.summary.row_ids);
    assert!(
        t.summary.to_string().contains("row's number"),
        "{}",
        t.summary
    );
    // A column already called `row` makes the numbering ambiguous: said so.
    let p = write(dir.path(), "row,x,c,y\n7,1.0,a,No\n8,2.0,b,Yes\n");
    let err = load_flat(&p, &schema).unwrap_err().to_string();
    assert!(err.contains("`row`"), "{err}");
}

#[test]
fn health_signals_and_roles_are_checked_with_the_key_named() {
    let base = "id = \"id\"\n[target]\ncolumn = \"y\"\npositive = \"Yes\"\n[columns]\nnumeric = [\"x\"]\ncategorical = [\"c\"]\n";
    let err = |extra: &str| {
        FlatSchema::parse(&format!("{base}{extra}"), Path::new("s.toml"))
            .unwrap_err()
            .to_string()
    };
    let e = err("[[health]]\ncomponent = \"churn_risk\"\ncolumn = \"x\"\nworst = 0\nbest = 1\n");
    assert!(e.contains("churn_risk"), "{e}");
    let e = err("[[health]]\ncomponent = \"engagement\"\ncolumn = \"c\"\nworst = 0\nbest = 1\n");
    assert!(
        e.contains("`c`") && e.contains("not a numeric input"),
        "{e}"
    );
    let e = err("[[health]]\ncomponent = \"engagement\"\ncolumn = \"x\"\nworst = 1\nbest = 1\n");
    assert!(e.contains("different"), "{e}");
    let e = err("[[health]]\ncomponent = \"payment\"\ncolumn = \"c\"\nlevels = { a = 150 }\n");
    assert!(e.contains("150") && e.contains("0–100"), "{e}");
    let e =
        err("[[health]]\ncomponent = \"payment\"\ncolumn = \"c\"\nworst = 0\nlevels = { a = 1 }\n");
    assert!(e.contains("give `column` with `worst` and `best`"), "{e}");
    let e = err("[[health]]\ncomponent = \"mood\"\ncolumn = \"x\"\nworst = 0\nbest = 1\n");
    assert!(e.contains("mood"), "{e}");
    let e = err("[roles]\nmrr = \"y\"\n");
    assert!(e.contains("roles.mrr") && e.contains("target"), "{e}");
    let e = err("[roles]\nowners = \"o\"\n");
    assert!(e.contains("owners"), "{e}");
    // Role columns are known columns: a table with an owner column loads.
    let schema = FlatSchema::parse(
        &format!("{base}[roles]\nowner = \"o\"\n"),
        Path::new("s.toml"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "id,x,c,o,y\n1,1.0,a,ann,No\n2,2.0,b,bob,Yes\n");
    load_flat(&p, &schema).unwrap();
}
