//! Flat-table mode: data that already has one row per customer (a telecom
//! churn export, a bank's attrition table), described by a small TOML schema
//! that names each column's role.
//!
//! ```toml
//! name = "telco"
//! id = "customerID"
//!
//! [target]
//! column = "Churn"
//! positive = "Yes"
//!
//! [columns]
//! numeric = ["tenure", "MonthlyCharges", "TotalCharges"]
//! categorical = ["Contract", "PaymentMethod"]
//! ignore = []
//! ```
//!
//! Every column of the file must have a role, so nothing is dropped silently.
//!
//! Two optional sections say what the business needs beyond the model:
//! `[roles]` names the columns that hold the customer's name, owner, segment,
//! MRR, CAC and tenure (or signup date), so CLV, interventions and KPIs work
//! on the table; `[[health]]` maps input columns to the health index's
//! components, each with its direction, so the index is made of more than
//! churn risk:
//!
//! ```toml
//! [roles]
//! mrr = "MonthlyCharges"
//! tenure_months = "tenure"
//!
//! [[health]]                      # a number: the value worth 0 and the one worth 100
//! component = "support"
//! column = "tickets_90d"
//! worst = 10
//! best = 0
//!
//! [[health]]                      # a category: points per level (others: unknown)
//! component = "payment"
//! column = "PaymentMethod"
//! levels = { "Electronic check" = 30, "Credit card (automatic)" = 100 }
//!
//! [[health]]                      # adoption: the share of columns holding a value
//! component = "engagement"
//! columns = ["StreamingTV", "OnlineBackup"]
//! count_of = "Yes"
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::schema::ColumnKind;
use super::{parse_columns, read_raw, DataError, Result};
use crate::health::Component;

/// The roles of a flat table's columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlatSchema {
    /// A short name for the data set; defaults to the schema file's stem.
    #[serde(default)]
    pub name: String,
    /// The column that identifies a customer. Omitted: the table has none
    /// (many exports do not), and each row's number (1 for the first data
    /// row) is its id, in a column named [`ROW_ID`].
    #[serde(default)]
    pub id: String,
    /// Whether the id is the row number (set when `id` is omitted).
    #[serde(default)]
    pub row_ids: bool,
    /// The label.
    pub target: Target,
    /// The feature columns by role.
    pub columns: Roles,
    /// Columns that describe the customer to the business (owner, MRR, ...).
    #[serde(default, skip_serializing_if = "BusinessRoles::is_empty")]
    pub roles: BusinessRoles,
    /// Input columns that feed the health index's components.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health: Vec<HealthSignal>,
}

/// Columns a flat table's business context is read from. Each is optional;
/// a role column need not be a model input (it is read, not learned from).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessRoles {
    /// The customer's name, shown to staff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The owner (account manager) id: interventions and KPIs go by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The segment risk lists filter by (a plan, a contract type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// Monthly recurring revenue, for CLV and expected loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mrr: Option<String>,
    /// Customer acquisition cost, for CLV/CAC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cac: Option<String>,
    /// The signup date (YYYY-MM-DD): tenure at the snapshot chooses the
    /// health profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signup_date: Option<String>,
    /// Tenure in months (instead of a signup date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenure_months: Option<String>,
    /// Tenure in days (instead of a signup date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenure_days: Option<String>,
}

impl BusinessRoles {
    /// Whether no role is set.
    pub fn is_empty(&self) -> bool {
        self == &BusinessRoles::default()
    }

    /// `(key, column)` of every role that is set.
    pub fn named(&self) -> Vec<(&'static str, &str)> {
        self.set().collect()
    }

    /// Whether `column` plays a role (without collecting them: scoring asks
    /// this of every reason).
    pub fn has_column(&self, column: &str) -> bool {
        self.set().any(|(_, c)| c == column)
    }

    fn set(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("roles.name", &self.name),
            ("roles.owner", &self.owner),
            ("roles.segment", &self.segment),
            ("roles.mrr", &self.mrr),
            ("roles.cac", &self.cac),
            ("roles.signup_date", &self.signup_date),
            ("roles.tenure_months", &self.tenure_months),
            ("roles.tenure_days", &self.tenure_days),
        ]
        .into_iter()
        .filter_map(|(k, c)| c.as_deref().map(|c| (k, c)))
    }
}

/// One input column's part in a health component. Exactly one form:
/// `column` with `worst` and `best` (a number, scored linearly from 0 at
/// `worst` to 100 at `best`, clamped, so `worst > best` means lower is
/// better); `column` with `levels` (a category, points per level; a level not
/// listed is unknown, not zero); or `columns` with `count_of` (100 × the
/// share of the columns holding that value: adoption of add-ons).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSignal {
    /// The component it feeds: engagement, satisfaction, payment or support.
    pub component: Component,
    /// The input column (number or category forms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// The value worth 0 points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst: Option<f64>,
    /// The value worth 100 points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<f64>,
    /// Points (0–100) per level of a categorical input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels: Option<std::collections::BTreeMap<String, f64>>,
    /// Categorical inputs counted together (adoption form).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// The value counted in `columns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_of: Option<String>,
}

/// A checked [`HealthSignal`], in the form scoring evaluates. It borrows
/// the signal: scoring resolves the rules on every request.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalRule<'a> {
    /// A numeric input scored linearly from `worst` (0) to `best` (100).
    Linear {
        /// The input.
        column: &'a str,
        /// Value worth 0 points.
        worst: f64,
        /// Value worth 100 points.
        best: f64,
    },
    /// A categorical input's points per level.
    Levels {
        /// The input.
        column: &'a str,
        /// Points per level.
        points: &'a std::collections::BTreeMap<String, f64>,
    },
    /// 100 × the share of `columns` equal to `value`.
    Share {
        /// The inputs.
        columns: &'a [String],
        /// The value counted.
        value: &'a str,
    },
}

impl HealthSignal {
    /// The signal's rule; `Err` says what is wrong, for the schema's error.
    pub fn rule(&self) -> std::result::Result<SignalRule<'_>, String> {
        let what = || format!("health signal for `{}`", self.component);
        match (
            &self.column,
            (self.worst, self.best),
            &self.levels,
            self.columns.is_empty(),
            &self.count_of,
        ) {
            (Some(column), (Some(worst), Some(best)), None, true, None) => {
                if !(worst.is_finite() && best.is_finite()) || worst == best {
                    return Err(format!(
                        "{} on `{column}`: `worst` and `best` must be different finite numbers",
                        what()
                    ));
                }
                Ok(SignalRule::Linear {
                    column,
                    worst,
                    best,
                })
            }
            (Some(column), (None, None), Some(levels), true, None) => {
                if levels.is_empty() {
                    return Err(format!("{} on `{column}`: `levels` is empty", what()));
                }
                if let Some((level, p)) = levels
                    .iter()
                    .find(|(_, p)| !(0.0..=100.0).contains(*p))
                {
                    return Err(format!(
                        "{} on `{column}`: level `{level}` has {p} points; points are 0–100",
                        what()
                    ));
                }
                Ok(SignalRule::Levels {
                    column,
                    points: levels,
                })
            }
            (None, (None, None), None, false, Some(value)) => Ok(SignalRule::Share {
                columns: &self.columns,
                value,
            }),
            _ => Err(format!(
                "{}: give `column` with `worst` and `best`, `column` with `levels`, or `columns` with `count_of`",
                what()
            )),
        }
    }
}

/// The id column of a table without one: the row number.
pub const ROW_ID: &str = "row";

/// The label column and which of its values means "churned".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The column's name.
    pub column: String,
    /// The value that marks a churner, as written in the file.
    pub positive: String,
}

/// Column roles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    /// Numeric inputs; blank cells are missing values.
    #[serde(default)]
    pub numeric: Vec<String>,
    /// Categorical inputs; blank cells are missing values.
    #[serde(default)]
    pub categorical: Vec<String>,
    /// Columns read but not used (leaky or irrelevant ones).
    #[serde(default)]
    pub ignore: Vec<String>,
}

impl FlatSchema {
    /// Parses and checks a schema; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<FlatSchema> {
        let bad = |message: String| DataError::BadSchema {
            path: path.to_path_buf(),
            message,
        };
        let mut schema: FlatSchema = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        if schema.id.is_empty() || schema.row_ids {
            schema.id = ROW_ID.into();
            schema.row_ids = true;
        }
        if schema.name.is_empty() {
            schema.name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "flat".into());
        }
        let mut seen = HashSet::new();
        let all = std::iter::once(("id", &schema.id))
            .chain(std::iter::once(("target.column", &schema.target.column)))
            .chain(
                schema
                    .columns
                    .numeric
                    .iter()
                    .map(|c| ("columns.numeric", c)),
            )
            .chain(
                schema
                    .columns
                    .categorical
                    .iter()
                    .map(|c| ("columns.categorical", c)),
            )
            .chain(schema.columns.ignore.iter().map(|c| ("columns.ignore", c)));
        for (key, column) in all {
            if column.is_empty() {
                return Err(bad(format!("`{key}` names an empty column")));
            }
            if !seen.insert(column.as_str()) {
                return Err(bad(format!(
                    "column `{column}` has more than one role (again in `{key}`)"
                )));
            }
        }
        if schema.columns.numeric.is_empty() && schema.columns.categorical.is_empty() {
            return Err(bad("`columns` names no numeric or categorical input".into()));
        }
        if schema.target.positive.is_empty() {
            return Err(bad("`target.positive` must not be empty".into()));
        }
        for (key, column) in schema.roles.named() {
            if column.is_empty() {
                return Err(bad(format!("`{key}` names an empty column")));
            }
            if column == schema.target.column {
                return Err(bad(format!(
                    "`{key}` names the target `{column}`: a label cannot describe the customer"
                )));
            }
        }
        let numeric: HashSet<&str> = schema.columns.numeric.iter().map(String::as_str).collect();
        let categorical: HashSet<&str> = schema
            .columns
            .categorical
            .iter()
            .map(String::as_str)
            .collect();
        for signal in &schema.health {
            if signal.component == Component::ChurnRisk {
                return Err(bad(
                    "a `[[health]]` signal feeds `churn_risk`, which is the model's own: use engagement, satisfaction, payment or support".into(),
                ));
            }
            let need = |column: &str, kinds: &HashSet<&str>, kind: &str| {
                if kinds.contains(column) {
                    Ok(())
                } else {
                    Err(bad(format!(
                        "health signal for `{}` reads `{column}`, which is not a {kind} input under `columns`: health is computed from the model's inputs, wherever it scores",
                        signal.component
                    )))
                }
            };
            match signal.rule().map_err(bad)? {
                SignalRule::Linear { column, .. } => need(column, &numeric, "numeric")?,
                SignalRule::Levels { column, .. } => need(column, &categorical, "categorical")?,
                SignalRule::Share { columns, .. } => {
                    for column in columns {
                        need(column, &categorical, "categorical")?;
                    }
                }
            }
        }
        Ok(schema)
    }

    /// Reads and checks a schema file.
    pub fn load(path: &Path) -> Result<FlatSchema> {
        FlatSchema::parse(&super::read_text(path)?, path)
    }
}

/// A checked flat table.
#[derive(Debug, Clone)]
pub struct FlatTable {
    /// Columns: the id (text), numeric inputs (`f64`, nulls for missing),
    /// categorical inputs (text), and `churned` (`i32` 0/1), in schema order.
    pub frame: DataFrame,
    /// The schema it was read with.
    pub schema: FlatSchema,
    /// What was found.
    pub summary: FlatSummary,
}

/// What loading a flat table found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlatSummary {
    /// The data file.
    pub path: PathBuf,
    /// Rows read.
    pub rows: usize,
    /// Rows whose target is the positive value.
    pub positives: usize,
    /// Missing (blank) values per input column, only where non-zero.
    pub missing: Vec<(String, usize)>,
    /// Distinct values per categorical column.
    pub categories: Vec<(String, usize)>,
    /// Whether customers are identified by their row number (no id column).
    pub row_ids: bool,
}

impl FlatSummary {
    /// The share of churners.
    pub fn positive_rate(&self) -> f64 {
        self.positives as f64 / self.rows.max(1) as f64
    }
}

impl std::fmt::Display for FlatSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.path.display())?;
        writeln!(f, "  rows:      {}", self.rows)?;
        if self.row_ids {
            writeln!(
                f,
                "  ids:       none in the table: each row's number is its id (column `{ROW_ID}`)"
            )?;
        }
        writeln!(
            f,
            "  churners:  {} ({:.2}%)",
            self.positives,
            100.0 * self.positive_rate()
        )?;
        if self.missing.is_empty() {
            writeln!(f, "  missing:   none")?;
        } else {
            writeln!(
                f,
                "  missing values (treated as missing, imputed at training):"
            )?;
            for (c, n) in &self.missing {
                writeln!(f, "    {c}: {n}")?;
            }
        }
        if !self.categories.is_empty() {
            writeln!(f, "  categorical columns (distinct values):")?;
            for (c, n) in &self.categories {
                writeln!(f, "    {c}: {n}")?;
            }
        }
        Ok(())
    }
}

/// Reads a flat table and checks it against its schema.
pub fn load_flat(path: &Path, schema: &FlatSchema) -> Result<FlatTable> {
    let raw = read_raw(path)?;
    flat_from_frame(raw, path, schema)
}

/// Checks an already-read frame against a schema (used by [`load_flat`] and
/// by callers that receive rows from elsewhere). Strict: every column needs a
/// role and every row a label.
pub fn flat_from_frame(raw: DataFrame, path: &Path, schema: &FlatSchema) -> Result<FlatTable> {
    typed_frame(raw, path, schema, true, true)
}

/// Reads the inputs a model needs from a file, for scoring: extra columns are
/// ignored and the target is optional (`churned` is present only if the
/// file has the target column).
pub fn load_inputs(path: &Path, schema: &FlatSchema) -> Result<FlatTable> {
    typed_frame(read_raw(path)?, path, schema, false, false)
}

/// [`load_inputs`] on a frame already read (rows filtered by the caller);
/// `path` names the source in errors.
pub fn inputs_from_frame(raw: DataFrame, path: &Path, schema: &FlatSchema) -> Result<FlatTable> {
    typed_frame(raw, path, schema, false, false)
}

/// Types a frame. `strict`: every column needs a role and every row a label.
/// `unique_ids`: the id column must be unique (not so in feature tables, where
/// a customer has one row per snapshot).
fn typed_frame(
    raw: DataFrame,
    path: &Path,
    schema: &FlatSchema,
    strict: bool,
    unique_ids: bool,
) -> Result<FlatTable> {
    if raw.height() == 0 {
        return Err(DataError::EmptyTable {
            path: path.to_path_buf(),
        });
    }
    let known: HashSet<&str> = std::iter::once(schema.id.as_str())
        .chain(std::iter::once(schema.target.column.as_str()))
        .chain(schema.columns.numeric.iter().map(String::as_str))
        .chain(schema.columns.categorical.iter().map(String::as_str))
        .chain(schema.columns.ignore.iter().map(String::as_str))
        .chain(schema.roles.named().into_iter().map(|(_, c)| c))
        .collect();
    if let Some(extra) = raw
        .get_column_names()
        .into_iter()
        .find(|c| !known.contains(c.as_str()))
    {
        return Err(DataError::BadSchema {
            path: path.to_path_buf(),
            message: format!(
                "column `{extra}` of the data has no role in the schema; list it under `columns.ignore` to drop it"
            ),
        });
    }
    let get = |name: &str| {
        raw.column(name).map_err(|_| DataError::MissingColumn {
            path: path.to_path_buf(),
            column: name.to_string(),
        })
    };
    let as_text = |c: &Column| -> Result<Series> {
        c.as_materialized_series()
            .cast(&DataType::String)
            .map_err(DataError::polars(format!(
                "{}: reading `{}` as text",
                path.display(),
                c.name()
            )))
    };
    let mut columns = Vec::new();
    let mut missing = Vec::new();
    let mut categories = Vec::new();

    // The id: present, non-empty, unique; or the row number.
    if schema.row_ids && raw.column(ROW_ID).is_ok() {
        return Err(DataError::BadSchema {
            path: path.to_path_buf(),
            message: format!(
                "the schema names no id column, so rows are numbered in a column `{ROW_ID}`, but the data has a column `{ROW_ID}`: name it as the id (`id = \"{ROW_ID}\"`) or rename it"
            ),
        });
    }
    let id = if schema.row_ids {
        let numbers: Vec<String> = (1..=raw.height()).map(|i| i.to_string()).collect();
        Series::new(ROW_ID.into(), numbers)
    } else {
        as_text(get(&schema.id)?)?
    };
    let id_ca = id.str().expect("text");
    let mut seen = HashSet::with_capacity(id_ca.len());
    let mut dupes = 0;
    let mut first_dupe = None;
    for (i, v) in id_ca.iter().enumerate() {
        match v.map(str::trim).filter(|v| !v.is_empty()) {
            None => {
                return Err(DataError::MissingValue {
                    path: path.to_path_buf(),
                    column: schema.id.clone(),
                    count: id_ca
                        .iter()
                        .filter(|v| v.is_none_or(|v| v.trim().is_empty()))
                        .count(),
                    row: i + 1,
                })
            }
            Some(v) => {
                if unique_ids && !seen.insert(v) {
                    dupes += 1;
                    first_dupe.get_or_insert(v.to_string());
                }
            }
        }
    }
    if let Some(value) = first_dupe {
        return Err(DataError::DuplicateId {
            path: path.to_path_buf(),
            column: schema.id.clone(),
            count: dupes,
            value,
        });
    }
    columns.push(id.into_column());

    for name in &schema.columns.numeric {
        let s = parse_columns(get(name)?, ColumnKind::Amount, path).map_err(|e| match e {
            DataError::BadValue {
                path,
                column,
                count,
                row,
                value,
                ..
            } => DataError::BadValue {
                path,
                column,
                expected: "a number (or a blank cell for missing)".into(),
                count,
                row,
                value,
            },
            other => other,
        })?;
        if s.null_count() > 0 {
            missing.push((name.clone(), s.null_count()));
        }
        columns.push(s.into_column());
    }
    for name in &schema.columns.categorical {
        let s = as_text(get(name)?)?;
        let ca = s.str().expect("text");
        // Blank cells are missing and values are trimmed; most columns
        // need neither, and keep their buffers.
        let clean = |v: &str| !v.is_empty() && v.trim().len() == v.len();
        let s = if ca.iter().all(|v| v.is_none_or(clean)) {
            s.with_name(name.as_str().into())
        } else {
            let cleaned: StringChunked = ca
                .iter()
                .map(|v| v.map(str::trim).filter(|v| !v.is_empty()))
                .collect();
            cleaned.into_series().with_name(name.as_str().into())
        };
        if s.null_count() > 0 {
            missing.push((name.clone(), s.null_count()));
        }
        let distinct = s.n_unique().map_err(DataError::polars(format!(
            "{}: counting `{name}`",
            path.display()
        )))?;
        categories.push((name.clone(), distinct - usize::from(s.null_count() > 0)));
        columns.push(s.into_column());
    }

    // The target: every row labelled, both classes present.
    if !strict && raw.column(&schema.target.column).is_err() {
        let rows = raw.height();
        let frame =
            DataFrame::new(rows, columns).map_err(DataError::polars("building flat table"))?;
        return Ok(FlatTable {
            frame,
            schema: schema.clone(),
            summary: FlatSummary {
                path: path.to_path_buf(),
                rows,
                positives: 0,
                missing,
                categories,
                row_ids: schema.row_ids,
            },
        });
    }
    let target = as_text(get(&schema.target.column)?)?;
    let target_ca = target.str().expect("text");
    let mut positives = 0usize;
    let mut labels = Vec::with_capacity(target_ca.len());
    for (i, v) in target_ca.iter().enumerate() {
        let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else {
            if !strict {
                // Scoring input: an empty label is simply unknown.
                labels.push(None);
                continue;
            }
            return Err(DataError::MissingValue {
                path: path.to_path_buf(),
                column: schema.target.column.clone(),
                count: target_ca
                    .iter()
                    .filter(|v| v.is_none_or(|v| v.trim().is_empty()))
                    .count(),
                row: i + 1,
            });
        };
        let positive = v == schema.target.positive;
        positives += usize::from(positive);
        labels.push(Some(i32::from(positive)));
    }
    if strict && (positives == 0 || positives == labels.len()) {
        let values: HashSet<&str> = target_ca.iter().flatten().map(str::trim).collect();
        let mut values: Vec<&str> = values.into_iter().collect();
        values.sort_unstable();
        let detail = if positives == 0 {
            format!(
                "no row has the positive value {:?}; values found: {}",
                schema.target.positive,
                values
                    .iter()
                    .take(5)
                    .map(|v| format!("{v:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            format!("every row is {:?}", schema.target.positive)
        };
        return Err(DataError::SingleClass {
            path: path.to_path_buf(),
            column: schema.target.column.clone(),
            detail,
        });
    }
    let rows = labels.len();
    columns.push(Column::new("churned".into(), labels));
    let frame = DataFrame::new(rows, columns).map_err(DataError::polars("building flat table"))?;
    Ok(FlatTable {
        frame,
        schema: schema.clone(),
        summary: FlatSummary {
            path: path.to_path_buf(),
            rows,
            positives,
            missing,
            categories,
            row_ids: schema.row_ids,
        },
    })
}

/// A feature table written by `churnguard features`, read for training or
/// evaluation as a flat table: id `customer_id`, target `churned` (`1`),
/// the given inputs, every other column ignored. Rows whose label is not
/// observed are dropped.
#[derive(Debug, Clone)]
pub struct FeatureTable {
    /// The rows with an observed label, typed.
    pub table: FlatTable,
    /// Snapshot day (days since 1970-01-01) per row.
    pub snapshots: Vec<i32>,
    /// The label horizon, from the `.schema.json` beside the file (90 if absent).
    pub horizon_days: u32,
    /// Rows dropped because their label was not observed.
    pub unlabelled: usize,
    /// Per row: 1 involuntary churn, 0 voluntary, `None` not churned or
    /// unknown (from the `churn_type` column, when present).
    pub churn_types: Option<Vec<Option<u8>>>,
}

/// The flat schema of a churnguard feature table.
pub fn feature_table_schema(
    columns: &[String],
    numeric: &[&str],
    categorical: &[&str],
) -> FlatSchema {
    let used: HashSet<&str> = numeric
        .iter()
        .chain(categorical)
        .copied()
        .chain(["customer_id", "churned"])
        .collect();
    FlatSchema {
        name: "features".into(),
        id: "customer_id".into(),
        row_ids: false,
        target: Target {
            column: "churned".into(),
            positive: "1".into(),
        },
        columns: Roles {
            numeric: numeric.iter().map(|s| s.to_string()).collect(),
            categorical: categorical.iter().map(|s| s.to_string()).collect(),
            ignore: columns
                .iter()
                .filter(|c| !used.contains(c.as_str()))
                .cloned()
                .collect(),
        },
        roles: BusinessRoles::default(),
        health: Vec::new(),
    }
}

/// Reads a feature table for training (see [`FeatureTable`]).
pub fn load_feature_table(
    path: &Path,
    numeric: &[&str],
    categorical: &[&str],
) -> Result<FeatureTable> {
    let raw = read_raw(path)?;
    for needed in ["churned", "snapshot_date", "customer_id"] {
        if raw.column(needed).is_err() {
            return Err(DataError::MissingColumn {
                path: path.to_path_buf(),
                column: format!(
                    "{needed}` (not a churnguard feature table: give --schema SCHEMA.toml for a flat table, or build one with `churnguard features"
                ),
            });
        }
    }
    let labelled = raw
        .column("churned")
        .map_err(DataError::polars("churned"))?
        .is_not_null();
    let unlabelled = labelled.iter().filter(|b| *b != Some(true)).count();
    let raw = raw.filter(&labelled).map_err(DataError::polars(format!(
        "{}: dropping unlabelled rows",
        path.display()
    )))?;
    if raw.height() == 0 {
        return Err(DataError::EmptyTable {
            path: path.to_path_buf(),
        });
    }
    let snapshot = parse_columns(
        raw.column("snapshot_date")
            .map_err(DataError::polars("snapshot_date"))?,
        ColumnKind::Date,
        path,
    )?;
    let snapshots: Vec<i32> = snapshot
        .cast(&DataType::Int32)
        .map_err(DataError::polars("snapshot_date"))?
        .i32()
        .map_err(DataError::polars("snapshot_date"))?
        .iter()
        .map(|d| d.unwrap_or_default())
        .collect();
    let columns: Vec<String> = raw
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let schema = feature_table_schema(&columns, numeric, categorical);
    let horizon_days = super::read_text(&PathBuf::from(format!("{}.schema.json", path.display())))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("horizon_days").and_then(|h| h.as_u64()))
        .map_or(90, |h| h as u32);
    let churn_types = raw.column("churn_type").ok().and_then(|c| {
        let c = c.cast(&DataType::String).ok()?;
        let ca = c.str().ok()?;
        Some(
            ca.iter()
                .map(|t| match t {
                    Some("involuntary") => Some(1),
                    Some("voluntary") => Some(0),
                    _ => None,
                })
                .collect(),
        )
    });
    let table = typed_frame(raw, path, &schema, true, false)?;
    Ok(FeatureTable {
        table,
        snapshots,
        horizon_days,
        unlabelled,
        churn_types,
    })
}
