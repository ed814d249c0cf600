//! Input and output of churnguard's tables: the only domain-side module that
//! touches the filesystem.
//!
//! Event tables (customers, employees, subscriptions, …) are read from a
//! directory holding one `<table>.parquet` or `<table>.csv` per table, checked
//! against [`schema::TABLES`] and returned as typed polars frames in
//! [`Tables`]. Flat tables (one row per customer, such as a telecom export)
//! are handled by [`flat`]. [`synthetic`] is the seeded generator of a whole
//! company, the embedded default data.

pub mod columns;
pub mod flat;
pub mod partition;
pub mod schema;
pub mod synthetic;
mod validate;

use std::path::{Path, PathBuf};

use polars::prelude::*;

pub use schema::{ColumnKind, ColumnSpec, TableSpec, TABLES};
pub use validate::{parse_columns, TableReport};

/// Result alias of the data layer.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Everything that can go wrong while reading, checking or writing tables.
///
/// Every variant names the file and, where there is one, the column and the
/// number of offending rows with the first of them (1-based, as a spreadsheet
/// shows it, not counting the header).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or directory could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error (shown in the message, not chained, so it prints once).
        error: std::io::Error,
    },
    /// A table that is required was found neither as Parquet nor as CSV.
    #[error("{dir}: table `{table}` not found (expected {table}.parquet or {table}.csv)")]
    MissingTable {
        /// The data directory.
        dir: PathBuf,
        /// The table's name.
        table: String,
    },
    /// The file is neither `.parquet` nor `.csv`.
    #[error("{path}: unsupported file type (use .parquet or .csv)")]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
    },
    /// polars could not parse the file at all.
    #[error("{path}: cannot read: {message}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// polars' message.
        message: String,
    },
    /// A required column is absent.
    #[error("{path}: missing required column `{column}`")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
    },
    /// Values that do not parse as the column's type.
    #[error("{path}: column `{column}` expects {expected}: {count} bad value(s), first at row {row}: {value:?}")]
    BadValue {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// The type expected, in words.
        expected: String,
        /// How many rows are bad.
        count: usize,
        /// The first bad row (1-based).
        row: usize,
        /// The first bad value as read.
        value: String,
    },
    /// A required value is missing.
    #[error(
        "{path}: column `{column}` must not be empty: {count} missing value(s), first at row {row}"
    )]
    MissingValue {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// How many rows are missing it.
        count: usize,
        /// The first such row (1-based).
        row: usize,
    },
    /// An id column holds the same id more than once.
    #[error(
        "{path}: column `{column}` must be unique: {count} duplicate row(s), first id {value}"
    )]
    DuplicateId {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// How many rows repeat an earlier id.
        count: usize,
        /// The first repeated id.
        value: String,
    },
    /// A column that holds amounts or counts has negative values.
    #[error("{path}: column `{column}` must not be negative: {count} negative value(s), first at row {row}: {value}")]
    Negative {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// How many rows are negative.
        count: usize,
        /// The first such row (1-based).
        row: usize,
        /// Its value.
        value: f64,
    },
    /// A value outside the range a column allows (an NPS of 11, say).
    #[error("{path}: column `{column}` must lie in {range}: {count} value(s) outside, first at row {row}: {value}")]
    OutOfRange {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// The allowed range, in words.
        range: String,
        /// How many rows are outside.
        count: usize,
        /// The first such row (1-based).
        row: usize,
        /// Its value.
        value: String,
    },
    /// Dates after the as-of date (today unless given).
    #[error(
        "{path}: column `{column}` has {count} date(s) after {as_of}, first at row {row}: {value}"
    )]
    FutureDate {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// The as-of date.
        as_of: chrono::NaiveDate,
        /// How many rows are in the future.
        count: usize,
        /// The first such row (1-based).
        row: usize,
        /// Its date.
        value: chrono::NaiveDate,
    },
    /// A date that must come after another one comes before it.
    #[error("{path}: column `{column}` must not be before `{before}`: {count} row(s) out of order, first at row {row}")]
    DateOrder {
        /// The file.
        path: PathBuf,
        /// The later column.
        column: String,
        /// The column it must not precede.
        before: String,
        /// How many rows are out of order.
        count: usize,
        /// The first such row (1-based).
        row: usize,
    },
    /// Rows refer to an id that the referenced table does not hold.
    #[error("{path}: column `{column}` refers to {count} row(s) with ids missing from `{table}`, first id {value}")]
    UnknownReference {
        /// The referring file.
        path: PathBuf,
        /// The referring column.
        column: String,
        /// The referenced table.
        table: String,
        /// How many rows refer to unknown ids.
        count: usize,
        /// The first unknown id.
        value: String,
    },
    /// A table with no rows where rows are required.
    #[error("{path}: table is empty")]
    EmptyTable {
        /// The file.
        path: PathBuf,
    },
    /// A flat-table target with fewer than two classes.
    #[error("{path}: target column `{column}` has a single class ({detail}); a churn model needs churners and non-churners")]
    SingleClass {
        /// The file.
        path: PathBuf,
        /// The target column.
        column: String,
        /// What was found.
        detail: String,
    },
    /// A flat-table schema that is inconsistent.
    #[error("{path}: {message}")]
    BadSchema {
        /// The schema file.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
    /// Generator parameters out of range.
    #[error("invalid generator setting `{field}`: {message}")]
    BadParam {
        /// The setting.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// An error inside polars that is not the input's fault.
    #[error("{context}: {source}")]
    Polars {
        /// What was being done.
        context: String,
        /// polars' error.
        source: PolarsError,
    },
}

impl DataError {
    pub(crate) fn polars(context: impl Into<String>) -> impl FnOnce(PolarsError) -> DataError {
        let context = context.into();
        move |source| DataError::Polars { context, source }
    }

    /// Whether the error is the input's fault (exit code 2) rather than the
    /// machine's (exit code 1).
    pub fn is_bad_input(&self) -> bool {
        use crate::error::HasKind;
        self.kind() != crate::error::ErrorKind::Internal
    }
}

impl crate::error::HasKind for DataError {
    fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            DataError::Io { error, .. } => match error.kind() {
                std::io::ErrorKind::NotFound => ErrorKind::NotFound,
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::InvalidData => {
                    ErrorKind::BadInput
                }
                _ => ErrorKind::Internal,
            },
            DataError::Polars { .. } => ErrorKind::Internal,
            _ => ErrorKind::BadInput,
        }
    }
}

/// The event tables of one company, typed and validated.
///
/// Date columns are polars `Date`, ids `Int64`, amounts `Float64`. Ground
/// truth tables of the generator are not part of it: they are never features.
#[derive(Debug, Clone)]
pub struct Tables {
    /// Customers: one row each.
    pub customers: DataFrame,
    /// Employees: account managers and acquisition reps.
    pub employees: DataFrame,
    /// Sales leads, converted or not (acquisition funnel).
    pub leads: DataFrame,
    /// Subscription changes: new, upgrade, downgrade.
    pub subscriptions: DataFrame,
    /// Monthly invoices.
    pub invoices: DataFrame,
    /// Payment attempts on invoices.
    pub payments: DataFrame,
    /// Weekly product usage.
    pub usage: DataFrame,
    /// Support tickets.
    pub tickets: DataFrame,
    /// NPS and CSAT survey invitations and answers.
    pub surveys: DataFrame,
    /// Churn events: one per churned customer.
    pub churn_events: DataFrame,
}

impl Tables {
    /// The tables in the order of [`TABLES`], with their names.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &DataFrame)> {
        [
            ("customers", &self.customers),
            ("employees", &self.employees),
            ("leads", &self.leads),
            ("subscriptions", &self.subscriptions),
            ("invoices", &self.invoices),
            ("payments", &self.payments),
            ("usage", &self.usage),
            ("tickets", &self.tickets),
            ("surveys", &self.surveys),
            ("churn_events", &self.churn_events),
        ]
        .into_iter()
    }

    /// Mutable access to a table by name (for tests that perturb data).
    pub fn get_mut(&mut self, name: &str) -> Option<&mut DataFrame> {
        Some(match name {
            "customers" => &mut self.customers,
            "employees" => &mut self.employees,
            "leads" => &mut self.leads,
            "subscriptions" => &mut self.subscriptions,
            "invoices" => &mut self.invoices,
            "payments" => &mut self.payments,
            "usage" => &mut self.usage,
            "tickets" => &mut self.tickets,
            "surveys" => &mut self.surveys,
            "churn_events" => &mut self.churn_events,
            _ => return None,
        })
    }

    /// The last date any event table mentions: the end of observed data.
    pub fn data_end(&self) -> Option<chrono::NaiveDate> {
        self.iter()
            .filter_map(|(name, df)| table_data_end(name, df))
            .max()
            .map(schema::date_from_days)
    }
}

/// The last event date (days since 1970) one table mentions (scheduled
/// dates such as invoices' due dates are not events).
pub(crate) fn table_data_end(name: &str, df: &DataFrame) -> Option<i32> {
    let spec = schema::table(name)?;
    spec.columns
        .iter()
        .filter(|c| c.kind == ColumnKind::Date && !schema::SCHEDULED_DATES.contains(&c.name))
        .filter_map(|col| {
            let days = df.column(col.name).ok()?.cast(&DataType::Int32).ok()?;
            days.i32().ok()?.max()
        })
        .max()
}

/// Where a table lives in a data directory: Parquet is preferred to CSV.
pub fn table_path(dir: &Path, table: &str) -> Option<PathBuf> {
    ["parquet", "csv"]
        .iter()
        .map(|ext| dir.join(format!("{table}.{ext}")))
        .find(|p| p.is_file())
}

/// Reads a CSV or Parquet file as it is, every CSV column as text.
pub fn read_raw(path: &Path) -> Result<DataFrame> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !path.exists() {
        return Err(DataError::Io {
            path: path.to_path_buf(),
            error: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    let unreadable = |e: PolarsError| DataError::Unreadable {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    match ext {
        "parquet" => {
            let file = fs_err::File::open(path).map_err(|error| DataError::Io {
                path: path.to_path_buf(),
                error,
            })?;
            parquet_guarded(path, || ParquetReader::new(file.into_parts().0).finish())
                .and_then(|r| r.map_err(unreadable))
        }
        "csv" => CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .with_parse_options(CsvParseOptions::default().with_missing_is_null(true))
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|r| r.finish())
            .map_err(unreadable),
        _ => Err(DataError::UnsupportedFormat {
            path: path.to_path_buf(),
        }),
    }
}

/// Runs a Parquet read, turning a panic inside the reader into an error:
/// polars-parquet 0.55 panics on some malformed footers (found by
/// `fuzz/run`; the crash is kept in `fuzz/artifacts/table_parquet/`).
fn parquet_guarded<T>(path: &Path, read: impl FnOnce() -> T) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).map_err(|_| {
        DataError::Unreadable {
            path: path.to_path_buf(),
            message: "malformed Parquet metadata (the reader gave up)".into(),
        }
    })
}

/// Reads a CSV or Parquet file held in memory, as [`read_raw`] reads one
/// on disk; `name` names it in errors.
pub fn read_raw_bytes(bytes: &[u8], format: Format, name: &Path) -> Result<DataFrame> {
    let unreadable = |e: PolarsError| DataError::Unreadable {
        path: name.to_path_buf(),
        message: e.to_string(),
    };
    match format {
        Format::Parquet => parquet_guarded(name, || {
            ParquetReader::new(std::io::Cursor::new(bytes)).finish()
        })
        .and_then(|r| r.map_err(unreadable)),
        Format::Csv => CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .with_parse_options(CsvParseOptions::default().with_missing_is_null(true))
            .into_reader_with_file_handle(std::io::Cursor::new(bytes))
            .finish()
            .map_err(unreadable),
    }
}

/// Reads and validates one event table held in memory (the fuzz targets
/// and tests use it; files go through [`load_table`]).
pub fn load_table_bytes(
    bytes: &[u8],
    format: Format,
    table: &str,
    opts: LoadOptions,
) -> Result<DataFrame> {
    let name = PathBuf::from(format!("{table}.{}", format.extension()));
    let spec = schema::table(table).ok_or_else(|| DataError::MissingTable {
        dir: name.clone(),
        table: table.to_string(),
    })?;
    validate::check_table(
        spec,
        read_raw_bytes(bytes, format, &name)?,
        &name,
        opts.as_of,
    )
}

/// Options for [`load_tables`].
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Dates after this day are rejected as future dates; defaults to today.
    pub as_of: chrono::NaiveDate,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            as_of: chrono::Local::now().date_naive(),
        }
    }
}

/// Reads and validates every event table of a data directory.
pub fn load_tables(dir: &Path, opts: LoadOptions) -> Result<Tables> {
    if !dir.is_dir() {
        return Err(DataError::Io {
            path: dir.to_path_buf(),
            error: std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
        });
    }
    let mut frames = Vec::with_capacity(TABLES.len());
    for spec in TABLES {
        let path = table_path(dir, spec.name).ok_or_else(|| DataError::MissingTable {
            dir: dir.to_path_buf(),
            table: spec.name.to_string(),
        })?;
        let raw = read_raw(&path)?;
        frames.push(validate::check_table(spec, raw, &path, opts.as_of)?);
    }
    assemble(frames, dir)
}

/// Validates a company's event tables held in memory (the Python package
/// passes them so): `tables` maps each table's name to its bytes in
/// `format`. Errors name the table as `<memory>/<table>.<ext>`.
pub fn tables_from_bytes(
    tables: &std::collections::HashMap<String, &[u8]>,
    format: Format,
    opts: LoadOptions,
) -> Result<Tables> {
    let dir = Path::new("<memory>");
    if let Some(unknown) = tables
        .keys()
        .find(|name| !TABLES.iter().any(|spec| spec.name == name.as_str()))
    {
        return Err(DataError::BadSchema {
            path: dir.join(unknown),
            message: format!(
                "`{unknown}` is not an event table (expected {})",
                TABLES.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
            ),
        });
    }
    let mut frames = Vec::with_capacity(TABLES.len());
    for spec in TABLES {
        let bytes = tables
            .get(spec.name)
            .ok_or_else(|| DataError::MissingTable {
                dir: dir.to_path_buf(),
                table: spec.name.to_string(),
            })?;
        let name = dir.join(format!("{}.{}", spec.name, format.extension()));
        let raw = read_raw_bytes(bytes, format, &name)?;
        frames.push(validate::check_table(spec, raw, &name, opts.as_of)?);
    }
    assemble(frames, dir)
}

/// The typed tables, in the order of [`TABLES`], as a checked [`Tables`].
fn assemble(frames: Vec<DataFrame>, dir: &Path) -> Result<Tables> {
    let mut it = frames.into_iter();
    let mut next = || it.next().expect("one frame per table");
    let tables = Tables {
        customers: next(),
        employees: next(),
        leads: next(),
        subscriptions: next(),
        invoices: next(),
        payments: next(),
        usage: next(),
        tickets: next(),
        surveys: next(),
        churn_events: next(),
    };
    validate::check_relations(&tables, dir)?;
    Ok(tables)
}

/// Reads and validates one event table from a file (such as a later
/// `churn_events` export); `table` names its spec in [`TABLES`].
pub fn load_table(path: &Path, table: &str, opts: LoadOptions) -> Result<DataFrame> {
    let spec = schema::table(table).ok_or_else(|| DataError::MissingTable {
        dir: path.to_path_buf(),
        table: table.to_string(),
    })?;
    validate::check_table(spec, read_raw(path)?, path, opts.as_of)
}

/// File format for written tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Apache Parquet (default).
    Parquet,
    /// Comma-separated text with a header; dates as `YYYY-MM-DD`.
    Csv,
}

impl Format {
    /// The format a path's extension names, if any.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("parquet") => Some(Format::Parquet),
            Some("csv") => Some(Format::Csv),
            _ => None,
        }
    }

    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
        }
    }
}

/// Writes a frame atomically: to a temporary file beside `path`, then renamed.
pub fn write_frame(df: &mut DataFrame, path: &Path) -> Result<()> {
    let format = Format::from_path(path).ok_or_else(|| DataError::UnsupportedFormat {
        path: path.to_path_buf(),
    })?;
    let tmp = tmp_path(path);
    let io = |error| DataError::Io {
        path: path.to_path_buf(),
        error,
    };
    let file = fs_err::File::create(&tmp).map_err(io)?;
    let mut writer = std::io::BufWriter::new(file);
    let res = match format {
        Format::Parquet => ParquetWriter::new(&mut writer)
            .with_compression(ParquetCompression::Snappy)
            .finish(df)
            .map(|_| ()),
        Format::Csv => CsvWriter::new(&mut writer).include_header(true).finish(df),
    };
    let res = res
        .map_err(DataError::polars(format!("writing {}", path.display())))
        .and_then(|_| {
            use std::io::Write;
            writer.flush().map_err(io)?;
            writer
                .into_inner()
                .map_err(|e| io(e.into_error()))?
                .sync_all()
                .map_err(io)
        });
    if let Err(e) = res {
        let _ = fs_err::remove_file(&tmp);
        return Err(e);
    }
    fs_err::rename(&tmp, path).map_err(io)
}

/// A Parquet file written one frame at a time (partitioned runs stream
/// their results into it), published atomically by [`ParquetSink::finish`]:
/// until then the rows go to a hidden temporary file beside it. Every frame
/// is cast to the first one's column types.
pub struct ParquetSink {
    path: PathBuf,
    tmp: PathBuf,
    writer: Option<(
        polars::io::parquet::write::BatchedWriter<fs_err::File>,
        Schema,
    )>,
    rows: usize,
}

impl ParquetSink {
    /// A sink for `path` (nothing is written before the first frame).
    pub fn new(path: &Path) -> ParquetSink {
        ParquetSink {
            path: path.to_path_buf(),
            tmp: tmp_path(path),
            writer: None,
            rows: 0,
        }
    }

    /// Appends a frame's rows.
    pub fn write(&mut self, df: &DataFrame) -> Result<()> {
        let context = format!("writing {}", self.path.display());
        if self.writer.is_none() {
            let file = fs_err::File::create(&self.tmp).map_err(|error| DataError::Io {
                path: self.path.clone(),
                error,
            })?;
            let schema = df.schema().as_ref().clone();
            // Unbuffered: the writer emits whole pages, and a BufWriter
            // dropped inside polars' writer would swallow a failed flush.
            let writer = ParquetWriter::new(file)
                .with_compression(ParquetCompression::Snappy)
                .batched(&schema)
                .map_err(DataError::polars(context.clone()))?;
            self.writer = Some((writer, schema));
        }
        let (writer, schema) = self.writer.as_mut().expect("created above");
        let columns = schema
            .iter()
            .map(|(name, dtype)| df.column(name).and_then(|c| c.cast(dtype)))
            .collect::<PolarsResult<Vec<Column>>>()
            .map_err(DataError::polars(context.clone()))?;
        let mut frame =
            DataFrame::new(df.height(), columns).map_err(DataError::polars(context.clone()))?;
        frame.align_chunks_par();
        writer
            .write_batch(&frame)
            .map_err(DataError::polars(context))?;
        self.rows += df.height();
        Ok(())
    }

    /// Closes the file and moves it into place; returns the rows written.
    /// A sink that saw no frame writes nothing.
    pub fn finish(mut self) -> Result<usize> {
        let Some((writer, _)) = self.writer.take() else {
            return Ok(0);
        };
        let io = |error| DataError::Io {
            path: self.path.clone(),
            error,
        };
        writer.finish().map_err(DataError::polars(format!(
            "writing {}",
            self.path.display()
        )))?;
        drop(writer);
        fs_err::File::open(&self.tmp)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
        fs_err::rename(&self.tmp, &self.path).map_err(io)?;
        Ok(self.rows)
    }
}

impl Drop for ParquetSink {
    fn drop(&mut self) {
        // Unfinished (an error on the way): leave no half file behind.
        if let Some((writer, _)) = self.writer.take() {
            drop(writer);
            let _ = fs_err::remove_file(&self.tmp);
        }
    }
}

/// Writes text atomically (temp file, then rename).
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    let tmp = tmp_path(path);
    let io = |error| DataError::Io {
        path: path.to_path_buf(),
        error,
    };
    fs_err::write(&tmp, text).map_err(io)?;
    fs_err::rename(&tmp, path).map_err(io)
}

/// Moves the named files from `staging` into `dir` (a rename each: same
/// file system); returns their new paths.
pub fn publish(staging: &Path, dir: &Path, names: &[String]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let to = dir.join(name);
        fs_err::rename(staging.join(name), &to).map_err(|error| DataError::Io {
            path: to.clone(),
            error,
        })?;
        out.push(to);
    }
    Ok(out)
}

/// The entries of `dir` whose names start with `prefix` (such as the
/// staging folders of killed runs).
pub fn hidden_entries(dir: &Path, prefix: &str) -> Result<Vec<PathBuf>> {
    let entries = fs_err::read_dir(dir).map_err(|error| DataError::Io {
        path: dir.to_path_buf(),
        error,
    })?;
    Ok(entries
        .filter_map(std::result::Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect())
}

/// Removes a directory and everything in it; a missing one is fine.
pub fn remove_dir_all(dir: &Path) {
    let _ = fs_err::remove_dir_all(dir);
}

/// Creates a directory and its parents.
pub fn create_dir(dir: &Path) -> Result<()> {
    fs_err::create_dir_all(dir).map_err(|error| DataError::Io {
        path: dir.to_path_buf(),
        error,
    })
}

/// Reads a small text file such as a TOML schema.
pub fn read_text(path: &Path) -> Result<String> {
    fs_err::read_to_string(path).map_err(|error| DataError::Io {
        path: path.to_path_buf(),
        error,
    })
}

fn tmp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes every table of a generated company into `dir`, plus its ground
/// truth under the names listed in [`synthetic::TRUTH_TABLES`].
pub fn write_company(company: &mut synthetic::Company, dir: &Path, format: Format) -> Result<()> {
    create_dir(dir)?;
    let ext = format.extension();
    let t = &mut company.tables;
    for (name, df) in [
        ("customers", &mut t.customers),
        ("employees", &mut t.employees),
        ("leads", &mut t.leads),
        ("subscriptions", &mut t.subscriptions),
        ("invoices", &mut t.invoices),
        ("payments", &mut t.payments),
        ("usage", &mut t.usage),
        ("tickets", &mut t.tickets),
        ("surveys", &mut t.surveys),
        ("churn_events", &mut t.churn_events),
        ("truth_hazard", &mut company.truth.hazard),
        ("truth_customers", &mut company.truth.customers),
        ("truth_employees", &mut company.truth.employees),
    ] {
        write_frame(df, &dir.join(format!("{name}.{ext}")))?;
    }
    Ok(())
}

/// Reads the generator's ground truth back from a data directory.
pub fn load_truth(dir: &Path) -> Result<synthetic::Truth> {
    let read = |name: &str| -> Result<DataFrame> {
        let path = table_path(dir, name).ok_or_else(|| DataError::MissingTable {
            dir: dir.to_path_buf(),
            table: name.to_string(),
        })?;
        let df = read_raw(&path)?;
        synthetic::typed_truth(name, df, &path)
    };
    Ok(synthetic::Truth {
        hazard: read("truth_hazard")?,
        customers: read("truth_customers")?,
        employees: read("truth_employees")?,
    })
}

/// Reads a file's bytes (for fingerprints).
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    fs_err::read(path).map_err(|error| DataError::Io {
        path: path.to_path_buf(),
        error,
    })
}
