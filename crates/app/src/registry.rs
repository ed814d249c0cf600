//! The versioned model registry under `models/`.
//!
//! ```text
//! models/
//!   20261124-153012-logistic-3fa2/   one folder per trained version
//!     manifest.json                  family, hyperparameters, metrics, input schema, fingerprint…
//!     model.json                     the FittedModel artifact
//!     report.html                    the training report (optional)
//!   champion                         the id of the champion (one line)
//!   champion.history                 earlier champions, oldest first (for rollback)
//!   shadow                           the id of the shadow challenger, if any (one line)
//! ```
//!
//! Every write goes to a temporary name and is renamed into place; a version
//! folder is assembled under `.tmp-<id>` and renamed whole, so a crash never
//! leaves a version that loads half-written. Listing skips temporary folders.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use churnguard_core::data::flat::FlatSchema;
use churnguard_core::error::{ErrorKind, HasKind};
use churnguard_core::eval::Metrics;
use churnguard_core::models::{Family, FittedModel};
use churnguard_train::report::ChampionComparison;
use churnguard_train::{ChurnTypeMetrics, FinalRefit, OriginResult, Protocol, Trial};

/// Result alias of the registry.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// The manifest format this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// What can go wrong in the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// No version with that id (or no champion yet).
    #[error("model `{id}` not found in {registry}{hint}")]
    NotFound {
        /// The id asked for.
        id: String,
        /// The registry root.
        registry: PathBuf,
        /// A hint such as the ids that exist.
        hint: String,
    },
    /// A manifest or model file that does not parse.
    #[error("{path}: corrupt model artifact: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A manifest from a newer churnguard.
    #[error("{path}: manifest schema_version {found} is newer than this build understands ({SCHEMA_VERSION})")]
    TooNew {
        /// The manifest.
        path: PathBuf,
        /// Its version.
        found: u32,
    },
    /// Nothing to roll back to.
    #[error("no earlier champion to roll back to")]
    NoHistory,
    /// A shadow challenger that cannot be set or promoted as asked.
    #[error("shadow challenger: {0}")]
    Shadow(String),
}

impl HasKind for RegistryError {
    fn kind(&self) -> ErrorKind {
        match self {
            RegistryError::Io { error, .. } if error.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            RegistryError::Io { .. } => ErrorKind::Internal,
            RegistryError::NotFound { .. } => ErrorKind::NotFound,
            // A damaged or too-new artifact is the operator's to fix, not a bug.
            RegistryError::Corrupt { .. } | RegistryError::TooNew { .. } => ErrorKind::BadInput,
            RegistryError::NoHistory | RegistryError::Shadow(_) => ErrorKind::Conflict,
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError + '_ {
    move |error| RegistryError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Row counts of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowCounts {
    /// Rows used to fit.
    pub train: usize,
    /// Rows used for calibration, early stopping and the champion choice.
    pub validation: usize,
    /// Held-out rows the reported metrics come from.
    pub test: usize,
}

/// What a version folder's `manifest.json` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format version.
    pub schema_version: u32,
    /// The version id.
    pub id: String,
    /// The model family.
    pub family: Family,
    /// churnguard's version that trained it.
    pub churnguard_version: String,
    /// When it was trained (UTC, RFC 3339).
    pub created_at: String,
    /// The data set's name (schema name or file stem).
    pub dataset: String,
    /// The training data's fingerprint (FNV-1a 64 of the file's bytes).
    pub data_fingerprint: String,
    /// The family's hyperparameters.
    pub hyperparameters: serde_json::Value,
    /// How the data was split.
    pub split: String,
    /// Row counts.
    pub rows: RowCounts,
    /// Share of churners in the training rows.
    pub class_balance: f64,
    /// Metrics on validation rows (calibrated).
    pub validation: Metrics,
    /// Metrics on held-out test rows (calibrated).
    pub test: Metrics,
    /// The decision threshold chosen by cost.
    pub threshold: f64,
    /// The input schema the model expects.
    pub input: FlatSchema,
    /// Seconds spent fitting.
    pub fit_seconds: f64,
    /// Milliseconds to score 1,000 rows.
    pub predict_ms_per_1k: f64,
    /// The label horizon in days the probabilities refer to (feature
    /// tables); absent for flat tables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizon_days: Option<u32>,
    /// The evaluation protocol (cross-validation or backtest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// Mean and standard deviation of the validation ROC-AUC over the
    /// folds or validation origins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_auc: Option<(f64, f64)>,
    /// Per fold or backtest origin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<OriginResult>,
    /// What the saved model was refitted on. With `all`, the test figures
    /// above were measured before the refit, on rows it has since learned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_refit: Option<FinalRefit>,
    /// The churn-type part's figures on the test churners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub churn_type: Option<ChurnTypeMetrics>,
    /// The hyperparameter search's trials, best first, when tuned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trials: Vec<Trial>,
    /// The comparison with the champion at training time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<ChampionComparison>,
    /// Survival after the horizon and revenue expansion per plan, fitted on
    /// the training snapshots (event data): what CLV sums. `None` for flat
    /// tables and older versions, which value customers with a constant
    /// retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime: Option<churnguard_core::value::lifetime::LifetimeCurve>,
}

/// A registry rooted at a directory.
#[derive(Debug, Clone)]
pub struct Registry {
    root: PathBuf,
}

const CHAMPION: &str = "champion";
/// A version's training baseline, beside its model.
pub const BASELINE: &str = "baseline.json";
const HISTORY: &str = "champion.history";

/// The file naming the shadow challenger.
const SHADOW: &str = "shadow";

impl Registry {
    /// Opens (and creates) a registry directory.
    pub fn open(root: &Path) -> Result<Registry> {
        fs_err::create_dir_all(root).map_err(io(root))?;
        Ok(Registry {
            root: root.to_path_buf(),
        })
    }

    /// The registry's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of a version.
    pub fn version_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Saves a version atomically: files are written into `.tmp-<id>/`, synced,
    /// and the folder is renamed to `<id>/`. `extra` files (such as the
    /// training report) are written alongside.
    pub fn save(
        &self,
        manifest: &Manifest,
        model: &FittedModel,
        extra: &[(&str, &[u8])],
    ) -> Result<PathBuf> {
        let tmp = self
            .root
            .join(format!(".tmp-{}-{}", manifest.id, std::process::id()));
        let _ = fs_err::remove_dir_all(&tmp);
        fs_err::create_dir_all(&tmp).map_err(io(&tmp))?;
        let manifest_json = serde_json::to_vec_pretty(manifest).expect("manifest serialises");
        let model_json = serde_json::to_vec(model).expect("model serialises");
        let mut files: Vec<(&str, &[u8])> = vec![
            ("model.json", &model_json),
            ("manifest.json", &manifest_json),
        ];
        files.extend_from_slice(extra);
        for (name, bytes) in files {
            let path = tmp.join(name);
            let mut f = fs_err::File::create(&path).map_err(io(&path))?;
            std::io::Write::write_all(&mut f, bytes).map_err(io(&path))?;
            f.sync_all().map_err(io(&path))?;
        }
        let dest = self.version_dir(&manifest.id);
        fs_err::rename(&tmp, &dest).map_err(io(&dest))?;
        sync_dir(&self.root);
        Ok(dest)
    }

    /// Every complete version, oldest first.
    pub fn list(&self) -> Result<Vec<Manifest>> {
        let mut out = Vec::new();
        for entry in fs_err::read_dir(&self.root).map_err(io(&self.root))? {
            let entry = entry.map_err(io(&self.root))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.path().is_dir() {
                continue;
            }
            let manifest_path = entry.path().join("manifest.json");
            if !manifest_path.is_file() {
                continue;
            }
            out.push(read_manifest(&manifest_path)?);
        }
        out.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    /// The champion's id, if one was promoted.
    pub fn champion(&self) -> Result<Option<String>> {
        self.read_pointer(CHAMPION)
    }

    /// The id a pointer file names; `None` when it is absent or empty.
    fn read_pointer(&self, name: &str) -> Result<Option<String>> {
        let path = self.root.join(name);
        match fs_err::read_to_string(&path) {
            Ok(s) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Resolves `champion` or an id to an existing version id.
    pub fn resolve(&self, id_or_alias: &str) -> Result<String> {
        let id = if id_or_alias == CHAMPION {
            self.champion()?.ok_or_else(|| RegistryError::NotFound {
                id: CHAMPION.into(),
                registry: self.root.clone(),
                hint: ": no champion yet; run `churnguard train` or `churnguard models promote ID`"
                    .into(),
            })?
        } else {
            id_or_alias.to_string()
        };
        if self.version_dir(&id).join("manifest.json").is_file() {
            Ok(id)
        } else {
            let ids: Vec<String> = self.list()?.into_iter().map(|m| m.id).collect();
            Err(RegistryError::NotFound {
                id,
                registry: self.root.clone(),
                hint: if ids.is_empty() {
                    " (the registry is empty)".into()
                } else {
                    format!(" (known: {})", ids.join(", "))
                },
            })
        }
    }

    /// Loads a version's manifest.
    pub fn manifest(&self, id_or_alias: &str) -> Result<Manifest> {
        let id = self.resolve(id_or_alias)?;
        read_manifest(&self.version_dir(&id).join("manifest.json"))
    }

    /// Loads a version: its manifest and its model.
    pub fn load(&self, id_or_alias: &str) -> Result<(Manifest, FittedModel)> {
        let manifest = self.manifest(id_or_alias)?;
        let path = self.version_dir(&manifest.id).join("model.json");
        let bytes = fs_err::read(&path).map_err(io(&path))?;
        let model: FittedModel =
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::Corrupt {
                path: path.clone(),
                message: e.to_string(),
            })?;
        model.validate().map_err(|e| RegistryError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if model.family() != manifest.family {
            return Err(RegistryError::Corrupt {
                path,
                message: format!(
                    "model is {} but the manifest says {}",
                    model.family(),
                    manifest.family
                ),
            });
        }
        Ok((manifest, model))
    }

    /// A version's training baseline (`baseline.json`), for drift; `None`
    /// for versions saved before baselines were kept.
    pub fn baseline(&self, id: &str) -> Result<Option<churnguard_core::monitor::Baseline>> {
        let path = self.version_dir(id).join(BASELINE);
        let bytes = match fs_err::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| RegistryError::Corrupt {
                path,
                message: e.to_string(),
            })
    }

    /// Makes `id` the champion; the previous champion goes on the history.
    pub fn promote(&self, id: &str) -> Result<()> {
        let id = self.resolve(id)?;
        let previous = self.champion()?;
        if previous.as_deref() == Some(id.as_str()) {
            return Ok(());
        }
        if let Some(prev) = previous {
            let mut history = self.history()?;
            history.push(prev);
            self.write_atomic(HISTORY, &(history.join("\n") + "\n"))?;
        }
        self.write_atomic(CHAMPION, &format!("{id}\n"))
    }

    /// The shadow challenger's id, if one is set: a version the server
    /// scores beside the champion without answering with it.
    pub fn shadow(&self) -> Result<Option<String>> {
        self.read_pointer(SHADOW)
    }

    /// Makes `id` the shadow challenger (replacing any other); the champion
    /// itself cannot shadow.
    pub fn set_shadow(&self, id: &str) -> Result<String> {
        let id = self.resolve(id)?;
        if self.champion()?.as_deref() == Some(id.as_str()) {
            return Err(RegistryError::Shadow(format!(
                "{id} is the champion; a shadow is a challenger to it"
            )));
        }
        self.write_atomic(SHADOW, &format!("{id}\n"))?;
        Ok(id)
    }

    /// Removes the shadow challenger; returns the id it had.
    pub fn clear_shadow(&self) -> Result<Option<String>> {
        let previous = self.shadow()?;
        if previous.is_some() {
            self.write_atomic(SHADOW, "")?;
        }
        Ok(previous)
    }

    /// Promotes the shadow challenger to champion (the previous champion
    /// goes on the history, so `rollback` undoes it) and clears the shadow;
    /// returns the ids of the new and the previous champion.
    pub fn promote_shadow(&self) -> Result<(String, Option<String>)> {
        let shadow = self.shadow()?.ok_or_else(|| {
            RegistryError::Shadow(
                "no shadow challenger is set; run `churnguard models shadow ID` first".into(),
            )
        })?;
        let previous = self.champion()?;
        self.promote(&shadow)?;
        self.write_atomic(SHADOW, "")?;
        Ok((shadow, previous))
    }

    /// Restores the previous champion; returns its id.
    pub fn rollback(&self) -> Result<String> {
        let mut history = self.history()?;
        let previous = history.pop().ok_or(RegistryError::NoHistory)?;
        self.resolve(&previous)?;
        self.write_atomic(CHAMPION, &format!("{previous}\n"))?;
        let text = if history.is_empty() {
            String::new()
        } else {
            history.join("\n") + "\n"
        };
        self.write_atomic(HISTORY, &text)?;
        Ok(previous)
    }

    fn history(&self) -> Result<Vec<String>> {
        let path = self.root.join(HISTORY);
        match fs_err::read_to_string(&path) {
            Ok(s) => Ok(s
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    fn write_atomic(&self, name: &str, text: &str) -> Result<()> {
        let path = self.root.join(name);
        let tmp = self
            .root
            .join(format!(".{name}.tmp-{}", std::process::id()));
        {
            let mut f = fs_err::File::create(&tmp).map_err(io(&tmp))?;
            std::io::Write::write_all(&mut f, text.as_bytes()).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
        }
        fs_err::rename(&tmp, &path).map_err(io(&path))?;
        sync_dir(&self.root);
        Ok(())
    }
}

/// A saved uplift version: its id and the bytes of its two files.
#[derive(Debug, Clone)]
pub struct UpliftFiles {
    /// Version id.
    pub id: String,
    /// `manifest.json`.
    pub manifest: Vec<u8>,
    /// `model.json`.
    pub model: Vec<u8>,
}

/// The uplift models of a registry: `<root>/uplift/<id>/{manifest.json,
/// model.json}` and `<root>/uplift/champion`, written like the churn
/// models' (a version assembled in a hidden folder and renamed whole, the
/// pointer written to a temp file and renamed). The service layer owns the
/// types; this owns the files.
#[derive(Debug, Clone)]
pub struct UpliftStore {
    root: PathBuf,
}

impl UpliftStore {
    /// The uplift folder of a registry rooted at `registry`.
    pub fn of(registry: &Path) -> UpliftStore {
        UpliftStore {
            root: registry.join("uplift"),
        }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Saves a version and makes it the uplift champion.
    pub fn save(&self, id: &str, manifest_json: &[u8], model_json: &[u8]) -> Result<PathBuf> {
        fs_err::create_dir_all(&self.root).map_err(io(&self.root))?;
        let tmp = self.root.join(format!(".tmp-{id}-{}", std::process::id()));
        let _ = fs_err::remove_dir_all(&tmp);
        fs_err::create_dir_all(&tmp).map_err(io(&tmp))?;
        for (name, bytes) in [("manifest.json", manifest_json), ("model.json", model_json)] {
            let path = tmp.join(name);
            let mut f = fs_err::File::create(&path).map_err(io(&path))?;
            std::io::Write::write_all(&mut f, bytes).map_err(io(&path))?;
            f.sync_all().map_err(io(&path))?;
        }
        let dest = self.root.join(id);
        fs_err::rename(&tmp, &dest).map_err(io(&dest))?;
        sync_dir(&self.root);
        Registry {
            root: self.root.clone(),
        }
        .write_atomic(CHAMPION, &format!("{id}\n"))?;
        Ok(dest)
    }

    /// The champion's id and the bytes of its manifest and model; `None`
    /// when no uplift model was saved.
    pub fn champion(&self) -> Result<Option<UpliftFiles>> {
        let Some(id) = (Registry {
            root: self.root.clone(),
        })
        .champion()?
        else {
            return Ok(None);
        };
        let read = |name: &str| -> Result<Vec<u8>> {
            let path = self.root.join(&id).join(name);
            fs_err::read(&path).map_err(io(&path))
        };
        Ok(Some(UpliftFiles {
            manifest: read("manifest.json")?,
            model: read("model.json")?,
            id,
        }))
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = fs_err::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn read_manifest(path: &Path) -> Result<Manifest> {
    let bytes = fs_err::read(path).map_err(io(path))?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| RegistryError::Corrupt {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let found = value
        .get("schema_version")
        .and_then(|v| v.as_u64())
        .unwrap_or(0) as u32;
    if found > SCHEMA_VERSION {
        return Err(RegistryError::TooNew {
            path: path.to_path_buf(),
            found,
        });
    }
    serde_json::from_value(value).map_err(|e| RegistryError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// FNV-1a 64-bit hash of bytes, as 16 hex digits: the data fingerprint.
pub fn fingerprint(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}
