//! Shared fixtures: small seeded companies, cached per process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use churnguard::data::synthetic::{generate, Company, GeneratorParams};

/// A small company (1,500 customers, 24 months, seed 7), generated once.
pub fn small_company() -> &'static Company {
    static COMPANY: OnceLock<Company> = OnceLock::new();
    COMPANY.get_or_init(|| {
        generate(&GeneratorParams {
            n_customers: 1500,
            seed: 7,
            ..Default::default()
        })
        .expect("generator runs")
    })
}

/// `../shared/data/<rel>` if present; otherwise prints a skip line and gives
/// `None`, unless `CHURNGUARD_REQUIRE_SHARED_DATA=1` (CI sets it), where a
/// missing file fails the test: CI must never pass by skipping.
pub fn shared_data(rel: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(rel);
    if path.is_file() {
        Some(path)
    } else if std::env::var("CHURNGUARD_REQUIRE_SHARED_DATA").is_ok_and(|v| v == "1") {
        panic!("../shared/data/{rel} is absent and CHURNGUARD_REQUIRE_SHARED_DATA=1");
    } else {
        eprintln!("skipping: ../shared/data/{rel} absent");
        None
    }
}

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A small generated company (`co/`), its features (`f.parquet`, and
/// `latest.csv` at today's snapshot) and a trained registry (`models/`),
/// built once per process.
pub fn trained() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        crate::actions::ok(
            &[
                "generate",
                "--customers",
                "1500",
                "--seed",
                "7",
                "--out",
                "co",
            ],
            p,
        );
        crate::actions::ok(&["features", "--data", "co", "--out", "f.parquet"], p);
        crate::actions::ok(
            &[
                "features",
                "--data",
                "co",
                "--snapshot",
                "latest",
                "--out",
                "latest.csv",
            ],
            p,
        );
        crate::actions::ok(
            &[
                "train",
                "--data",
                "f.parquet",
                "--families",
                "logistic,tree",
                "--registry",
                "models",
            ],
            p,
        );
        dir
    })
    .path()
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// The neural trainer (`churnguard-neural`) beside the churnguard binary
/// under test. `None` only when `CHURNGUARD_NO_TORCH=1` (a build without
/// libtorch); otherwise a missing trainer fails the test, so a suite that
/// should cover the neural family can never pass by skipping it.
pub fn neural() -> Option<churnguard::neural::NeuralProcess> {
    let exe = Path::new(env!("CARGO_BIN_EXE_churnguard"))
        .with_file_name(format!("churnguard-neural{}", std::env::consts::EXE_SUFFIX));
    if exe.is_file() {
        return Some(churnguard::neural::NeuralProcess::at(&exe));
    }
    if std::env::var("CHURNGUARD_NO_TORCH").is_ok_and(|v| v == "1") {
        eprintln!("skipping the neural family: CHURNGUARD_NO_TORCH=1");
        return None;
    }
    panic!(
        "{} is missing: build it with `cargo build --workspace --bins --features churnguard-neural/torch` (scripts/test does), or set CHURNGUARD_NO_TORCH=1",
        exe.display()
    );
}

/// `train::train` with the neural trainer when there is one.
pub fn train(
    input: &churnguard::train::TrainInput,
    config: &churnguard::train::TrainConfig,
) -> churnguard::train::Result<churnguard::train::TrainReport> {
    let trainer = neural();
    let mut quiet = |_: churnguard::train::Progress| {};
    churnguard::train::train_with(
        input,
        config,
        churnguard::train::Learners {
            neural: trainer
                .as_ref()
                .map(|t| t as &dyn churnguard::train::NeuralTrainer),
            progress: &mut quiet,
        },
    )
}
