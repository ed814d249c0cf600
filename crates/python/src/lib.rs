//! `churnguard._core`: the Rust half of the Python package. Data crosses
//! the boundary as Parquet bytes (the Python half converts polars and
//! pyarrow frames), and every domain call is the core crate's: features are
//! built, models predict and customers are scored exactly as the CLI does.
//! Errors are raised as `churnguard.ChurnguardError` with the core's
//! messages, which name the table, column, row or key at fault.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use churnguard_core::data::flat::FlatSchema;
use churnguard_core::data::{self, Format, LoadOptions};
use churnguard_core::features::{self, FeatureParams};
use churnguard_core::health::HealthConfig;
use churnguard_core::interventions::InterventionPolicy;
use churnguard_core::models::{Batch, FittedModel};
use churnguard_core::scoring::{self, CustomerContext, ScoringConfig, Settings};
use churnguard_core::value::lifetime::LifetimeCurve;
use churnguard_core::value::ValueConfig;
use polars::prelude::*;
use pyo3::create_exception;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

create_exception!(
    _core,
    ChurnguardError,
    pyo3::exceptions::PyException,
    "A churnguard error: bad input (naming the table, column, row or key) or a model that cannot be used."
);

fn fail(e: impl std::fmt::Display) -> PyErr {
    ChurnguardError::new_err(e.to_string())
}

fn read_parquet(bytes: &[u8], what: &str) -> PyResult<DataFrame> {
    data::read_raw_bytes(bytes, Format::Parquet, Path::new(what)).map_err(fail)
}

fn write_parquet<'py>(py: Python<'py>, df: &mut DataFrame) -> PyResult<Bound<'py, PyBytes>> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .finish(df)
        .map_err(|e| fail(format!("writing the result: {e}")))?;
    Ok(PyBytes::new(py, &buf))
}

fn parse_day(s: &str, what: &str) -> PyResult<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| fail(format!("{what} {s:?}: expected YYYY-MM-DD")))
}

/// Builds the feature table from the event tables (`{name: parquet bytes}`),
/// one row per customer active at each snapshot, labelled over
/// `horizon_days` where the data reaches. `as_of` (default today) rejects
/// later dates as future ones.
#[pyfunction]
#[pyo3(signature = (tables, snapshots, horizon_days = 90, as_of = None))]
fn build_features<'py>(
    py: Python<'py>,
    tables: HashMap<String, Bound<'py, PyBytes>>,
    snapshots: Vec<String>,
    horizon_days: u32,
    as_of: Option<String>,
) -> PyResult<Bound<'py, PyBytes>> {
    let opts = match as_of {
        Some(d) => LoadOptions {
            as_of: parse_day(&d, "as_of")?,
        },
        None => LoadOptions::default(),
    };
    let bytes: HashMap<String, &[u8]> = tables
        .iter()
        .map(|(name, b)| (name.clone(), b.as_bytes()))
        .collect();
    let tables = data::tables_from_bytes(&bytes, Format::Parquet, opts).map_err(fail)?;
    let snapshots = if snapshots.is_empty() {
        vec![features::latest_snapshot(&tables).map_err(fail)?]
    } else {
        snapshots
            .iter()
            .map(|s| match s.as_str() {
                "latest" => features::latest_snapshot(&tables).map_err(fail),
                _ => parse_day(s, "snapshot"),
            })
            .collect::<PyResult<Vec<_>>>()?
    };
    let mut frame = features::build_features(
        &tables,
        &FeatureParams {
            snapshots,
            horizon_days,
        },
    )
    .map_err(fail)?;
    write_parquet(py, &mut frame)
}

/// What the package reads of a version's `manifest.json` (the registry's
/// other fields are for the service).
#[derive(serde::Deserialize)]
struct ManifestView {
    id: String,
    family: serde_json::Value,
    input: FlatSchema,
    #[serde(default)]
    horizon_days: Option<u32>,
    #[serde(default)]
    lifetime: Option<LifetimeCurve>,
}

/// A model version from a churnguard registry.
#[pyclass(module = "churnguard._core", frozen)]
struct Model {
    manifest: ManifestView,
    model: FittedModel,
    value: ValueConfig,
}

impl Model {
    /// The frame's rows as the model's inputs; a schema without an id
    /// column numbers the rows from 1.
    fn batch(&self, frame: &mut DataFrame) -> PyResult<Batch> {
        let schema = &self.manifest.input;
        if schema.row_ids && frame.column(data::flat::ROW_ID).is_err() {
            let rows: Vec<String> = (1..=frame.height()).map(|i| i.to_string()).collect();
            frame
                .with_column(Column::new(data::flat::ROW_ID.into(), rows))
                .map_err(fail)?;
        }
        let id = if schema.row_ids {
            data::flat::ROW_ID
        } else {
            schema.id.as_str()
        };
        Batch::from_frame(
            frame,
            id,
            &schema.columns.numeric,
            &schema.columns.categorical,
        )
        .map_err(fail)
    }

    fn id_column(&self) -> &str {
        if self.manifest.input.row_ids {
            data::flat::ROW_ID
        } else {
            &self.manifest.input.id
        }
    }
}

#[pymethods]
impl Model {
    /// Loads a version: its folder (`models/<id>`, holding `manifest.json`
    /// and `model.json`), or a registry folder and `id` (`champion` by
    /// default).
    #[staticmethod]
    #[pyo3(signature = (path, id = None))]
    fn load(path: PathBuf, id: Option<String>) -> PyResult<Model> {
        let dir = if path.join("manifest.json").is_file() {
            path
        } else {
            let id = match id.as_deref() {
                None | Some("champion") => {
                    let pointer = path.join("champion");
                    std::fs::read_to_string(&pointer)
                        .map_err(|e| {
                            fail(format!("{}: {e} (is this a registry?)", pointer.display()))
                        })?
                        .trim()
                        .to_string()
                }
                Some(id) => id.to_string(),
            };
            path.join(id)
        };
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read(&p).map_err(|e| fail(format!("{}: {e}", p.display())))
        };
        let manifest: ManifestView = serde_json::from_slice(&read("manifest.json")?)
            .map_err(|e| fail(format!("{}: {e}", dir.join("manifest.json").display())))?;
        let model: FittedModel = serde_json::from_slice(&read("model.json")?)
            .map_err(|e| fail(format!("{}: {e}", dir.join("model.json").display())))?;
        model
            .validate()
            .map_err(|e| fail(format!("{}: {e}", dir.join("model.json").display())))?;
        Ok(Model {
            manifest,
            model,
            value: ValueConfig::default(),
        })
    }

    /// The version's id.
    #[getter]
    fn id(&self) -> String {
        self.manifest.id.clone()
    }

    /// The model family (`logistic`, `tree`, `gbdt`, `neural`).
    #[getter]
    fn family(&self) -> String {
        match &self.manifest.family {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    /// The horizon of its probabilities, in days.
    #[getter]
    fn horizon_days(&self) -> u32 {
        self.manifest
            .horizon_days
            .unwrap_or(self.value.default_horizon_days)
    }

    /// The id column and the inputs the model reads (numeric, categorical).
    #[getter]
    fn inputs(&self) -> (String, Vec<String>, Vec<String>) {
        let s = &self.manifest.input;
        (
            self.id_column().to_string(),
            s.columns.numeric.clone(),
            s.columns.categorical.clone(),
        )
    }

    /// Calibrated churn probabilities of the rows (Parquet bytes in and out:
    /// the id column and `churn_probability`).
    fn predict<'py>(
        &self,
        py: Python<'py>,
        data: Bound<'py, PyBytes>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut frame = read_parquet(data.as_bytes(), "the data")?;
        let batch = self.batch(&mut frame)?;
        let p = self.model.predict(&batch).map_err(fail)?;
        let mut out = DataFrame::new(
            batch.len(),
            vec![
                Column::new(self.id_column().into(), batch.ids),
                Column::new("churn_probability".into(), p),
            ],
        )
        .map_err(fail)?;
        write_parquet(py, &mut out)
    }

    /// Scores the rows as `churnguard score` does, with the default
    /// settings: probability, churn type, health and band, the top reasons
    /// in words, CLV and expected loss (Parquet bytes in and out).
    #[pyo3(signature = (data, top_reasons = 3))]
    fn score<'py>(
        &self,
        py: Python<'py>,
        data: Bound<'py, PyBytes>,
        top_reasons: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut frame = read_parquet(data.as_bytes(), "the data")?;
        let batch = self.batch(&mut frame)?;
        // Tenure from a signup date counts to today, as `POST /v1/score` does.
        let contexts = CustomerContext::from_flat(
            &frame,
            &self.manifest.input.roles,
            chrono::Utc::now().date_naive(),
        )
        .map_err(fail)?;
        let scoring = ScoringConfig {
            top_reasons,
            ..ScoringConfig::default()
        };
        let health = HealthConfig::default();
        let policy = InterventionPolicy::default();
        let scored = scoring::score_customers(
            &self.model,
            self.horizon_days(),
            &batch,
            &contexts,
            &HashMap::new(),
            Settings {
                scoring: &scoring,
                health: &health,
                value: &self.value,
                policy: &policy,
                clv_thresholds: None,
                lifetime: self.manifest.lifetime.as_ref(),
                input: Some(&self.manifest.input),
            },
        )
        .map_err(fail)?;
        let n = scored.len();
        let text = |f: &dyn Fn(&scoring::ScoredCustomer) -> Option<String>| -> Vec<Option<String>> {
            scored.iter().map(f).collect()
        };
        let num = |f: &dyn Fn(&scoring::ScoredCustomer) -> f64| -> Vec<f64> {
            scored.iter().map(f).collect()
        };
        let mut out = DataFrame::new(
            n,
            vec![
                Column::new(
                    self.id_column().into(),
                    text(&|c| Some(c.customer_id.clone())),
                ),
                Column::new("churn_probability".into(), num(&|c| c.churn_probability)),
                Column::new(
                    "churn_type".into(),
                    text(&|c| c.churn_type.map(|t| t.name().to_string())),
                ),
                Column::new("health".into(), num(&|c| c.health.score)),
                Column::new(
                    "band".into(),
                    text(&|c| Some(c.health.band.name().to_string())),
                ),
                Column::new(
                    "reasons".into(),
                    text(&|c| {
                        Some(
                            c.reasons
                                .iter()
                                .map(scoring::reason_text)
                                .collect::<Vec<_>>()
                                .join("; "),
                        )
                    }),
                ),
                Column::new("clv".into(), num(&|c| c.clv)),
                Column::new("expected_loss".into(), num(&|c| c.expected_loss)),
            ],
        )
        .map_err(fail)?;
        write_parquet(py, &mut out)
    }

    fn __repr__(&self) -> String {
        format!(
            "<churnguard.Model {} ({})>",
            self.manifest.id,
            self.family()
        )
    }
}

/// The extension module.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ChurnguardError", m.py().get_type::<ChurnguardError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(build_features, m)?)?;
    m.add_class::<Model>()?;
    Ok(())
}
