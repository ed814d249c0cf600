//! Entry points for the fuzz targets in `fuzz/` and for the regression
//! tests that replay their corpora (`tests/it/fuzz_corpus.rs`). Each takes
//! arbitrary bytes and must return (an `Ok` or an error), never panic,
//! hang, or allocate without bound.

use std::path::Path;

use crate::config::Config;
use crate::data::{self, flat, Format, LoadOptions};
use crate::models::{Batch, FittedModel};
use crate::serve::state::{RecordSchema, Slot};

/// A score request against a fixed schema of the churnguard feature inputs.
pub fn score_payload(bytes: &[u8]) {
    let (numeric, categorical) = crate::features::model_inputs();
    let mut index = crate::serve::state::FieldIndex::default();
    index.insert("customer_id".to_string(), Slot::Id);
    for (j, n) in numeric.iter().enumerate() {
        index.insert(n.to_string(), Slot::Numeric(j));
    }
    for (j, n) in categorical.iter().enumerate() {
        index.insert(n.to_string(), Slot::Categorical(j));
    }
    for (name, f) in crate::serve::state::CONTEXT_FIELDS {
        index.entry(name.to_string()).or_insert(Slot::Context(*f));
    }
    let schema = RecordSchema {
        id: "customer_id".into(),
        numeric: numeric.iter().map(|s| s.to_string()).collect(),
        categorical: categorical.iter().map(|s| s.to_string()).collect(),
        index,
        mrr_input: numeric.iter().position(|n| *n == "mrr"),
        segment_input: categorical.iter().position(|n| *n == "plan"),
    };
    if let Ok(records) = crate::serve::score::parse(bytes, &schema, 64) {
        let (batch, contexts, ignored) = records.into_batch(&schema);
        assert_eq!(batch.len(), contexts.len());
        assert_eq!(batch.len(), ignored.len());
    }
}

/// Event tables and a flat table from CSV or Parquet bytes.
pub fn table(bytes: &[u8], format: Format) {
    let opts = LoadOptions {
        as_of: chrono::NaiveDate::from_ymd_opt(2030, 1, 1).expect("a valid date"),
    };
    for table in ["customers", "payments", "usage", "churn_events"] {
        let _ = data::load_table_bytes(bytes, format, table, opts);
    }
    let schema = flat::FlatSchema::parse(
        "name = \"fuzz\"\nid = \"id\"\n[target]\ncolumn = \"y\"\npositive = \"1\"\n[columns]\nnumeric = [\"a\"]\ncategorical = [\"b\"]\n",
        Path::new("fuzz.toml"),
    )
    .expect("the fuzz schema parses");
    if let Ok(raw) = data::read_raw_bytes(bytes, format, Path::new("fuzz")) {
        let _ = flat::flat_from_frame(raw.clone(), Path::new("fuzz"), &schema);
        let _ = flat::inputs_from_frame(raw, Path::new("fuzz"), &schema);
    }
}

/// The TOML configs: `churnguard.toml`, a training config, a flat schema.
pub fn config(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let _ = Config::from_toml(text, "fuzz.toml");
    let _ = crate::train::TrainConfig::from_toml(text);
    let _ = flat::FlatSchema::parse(text, Path::new("fuzz.toml"));
}

/// A model artifact: it loads only if it validates, and then it scores.
pub fn model(bytes: &[u8]) {
    let Ok(model) = serde_json::from_slice::<FittedModel>(bytes) else {
        return;
    };
    if model.validate().is_err() {
        return;
    }
    let p = &model.preprocessor;
    let rows = 3;
    let batch = Batch {
        ids: (0..rows).map(|i| i.to_string()).collect(),
        numeric_names: p
            .numeric
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
            .into(),
        numeric: ndarray::Array2::from_shape_fn((rows, p.numeric.len()), |(i, j)| {
            [f64::NAN, 0.0, 1e6][i] + j as f64
        }),
        categorical_names: p
            .categorical
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
            .into(),
        categorical: p
            .categorical
            .iter()
            .map(|c| {
                vec![
                    None,
                    c.levels.first().cloned(),
                    Some("never-seen".to_string()),
                ]
            })
            .collect(),
    };
    if let Ok(scores) = model.score_batch(&batch, 3) {
        assert_eq!(scores.probabilities.len(), rows);
    }
}

/// The target a corpus folder belongs to.
pub fn run(target: &str, bytes: &[u8]) {
    match target {
        "score_payload" => score_payload(bytes),
        "table_csv" => table(bytes, Format::Csv),
        "table_parquet" => table(bytes, Format::Parquet),
        "config_toml" => config(bytes),
        "model_load" => model(bytes),
        other => panic!("unknown fuzz target {other}"),
    }
}
