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

/// `../shared/data/<rel>` if present; otherwise prints a skip line and gives `None`.
pub fn shared_data(rel: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(rel);
    if path.is_file() {
        Some(path)
    } else {
        eprintln!("skipping: ../shared/data/{rel} absent");
        None
    }
}

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}
