//! Tidy tests: the conventions and invariants ARCHITECTURE.md states, checked
//! by reading the source tree and the crates' manifests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use churnguard::data::TABLES;

use crate::support::root;

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Every workspace crate's folder under `crates/`, by package name.
fn crates() -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        let manifest = dir.join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&manifest).unwrap();
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        let name = parsed["package"]["name"].as_str().unwrap().to_string();
        out.insert(name, dir);
    }
    out
}

/// Every Rust file of the workspace's own code (root package and crates).
fn all_sources() -> Vec<(String, String)> {
    let mut files = rust_files(&root().join("src"));
    for dir in crates().values() {
        files.extend(rust_files(&dir.join("src")));
    }
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// Whether `text` names the crate `name` as a path (`name::` or `use name`),
/// not as the tail of another word (`batch::`).
fn mentions_path(text: &str, name: &str) -> bool {
    let pattern = format!("{name}::");
    text.match_indices(&pattern).any(|(i, _)| {
        !text[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    }) || text.contains(&format!("use {name}"))
}

/// The layers, bottom up. A crate may depend only on crates of a lower
/// layer; a new crate must be placed here (the test fails until it is).
const LAYERS: &[(&str, u8)] = &[
    ("churnguard-core", 0),
    ("churnguard-train", 1),
    ("churnguard-neural", 1),
    ("churnguard-store", 1),
    ("churnguard-python", 1),
    ("churnguard-app", 2),
    ("churnguard-server", 3),
    ("churnguard", 4),
];

fn layer(name: &str) -> u8 {
    LAYERS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("crate {name} has no layer in tidy.rs's LAYERS"))
        .1
}

/// The workspace crates a manifest depends on, in every dependency table.
fn workspace_deps(manifest: &Path) -> Vec<(String, String)> {
    let parsed: toml::Table = toml::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
    let mut out = Vec::new();
    for table in ["dependencies", "dev-dependencies", "build-dependencies"] {
        if let Some(deps) = parsed.get(table).and_then(|d| d.as_table()) {
            for name in deps.keys().filter(|n| n.starts_with("churnguard")) {
                out.push((table.to_string(), name.clone()));
            }
        }
    }
    out
}

#[test]
fn the_crate_graph_only_points_down() {
    let mut manifests: Vec<(String, PathBuf)> = crates()
        .into_iter()
        .map(|(name, dir)| (name, dir.join("Cargo.toml")))
        .collect();
    manifests.push(("churnguard".into(), root().join("Cargo.toml")));
    for (name, manifest) in manifests {
        for (table, dep) in workspace_deps(&manifest) {
            assert!(
                layer(&dep) < layer(&name),
                "{name} depends on {dep} ({table}): a crate may depend only on lower layers"
            );
        }
    }
}

#[test]
fn heavy_dependencies_stay_in_their_crate() {
    // Direct dependencies, by crate: what each layer may not pull in.
    let banned: &[(&str, &[&str])] = &[
        (
            "churnguard-core",
            &[
                "tokio", "sqlx", "axum", "tower", "clap", "tch", "anyhow", "pyo3",
            ],
        ),
        (
            "churnguard-train",
            &["tokio", "sqlx", "axum", "clap", "tch", "anyhow"],
        ),
        (
            "churnguard-store",
            &["axum", "clap", "tch", "anyhow", "polars"],
        ),
        ("churnguard-app", &["axum", "clap", "tch", "anyhow"]),
        ("churnguard-server", &["clap", "tch", "anyhow"]),
        ("churnguard", &["tch"]),
        // The Python package is the core and nothing else: no runtime,
        // database, HTTP, torch, nor the layers that bring them.
        (
            "churnguard-python",
            &[
                "tokio",
                "sqlx",
                "axum",
                "clap",
                "tch",
                "anyhow",
                "churnguard-train",
                "churnguard-store",
                "churnguard-app",
                "churnguard-server",
            ],
        ),
    ];
    let dirs = crates();
    for (name, words) in banned {
        let manifest = if *name == "churnguard" {
            root().join("Cargo.toml")
        } else {
            dirs[*name].join("Cargo.toml")
        };
        let parsed: toml::Table =
            toml::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
        let deps = parsed
            .get("dependencies")
            .and_then(|d| d.as_table())
            .cloned()
            .unwrap_or_default();
        for word in *words {
            assert!(
                !deps.contains_key(*word),
                "{name} depends on {word}, which belongs to another layer"
            );
        }
    }
}

/// The packages in `cargo tree` of the core crate's normal dependencies,
/// with `extra` arguments.
fn core_tree(extra: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--locked",
            "-p",
            "churnguard-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .args(extra)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_core_crate_pulls_in_no_runtime_database_http_cli_or_torch() {
    // What a library user (and the Python package) gets with the core crate.
    let all = core_tree(&[]);
    assert!(
        all.iter().any(|n| n == "polars"),
        "the tree looks wrong: {all:?}"
    );
    for banned in ["sqlx", "axum", "clap", "tch", "torch-sys", "pyo3"] {
        assert!(
            !all.iter().any(|n| n == banned),
            "churnguard-core pulls in {banned}"
        );
    }
    // polars 0.55 itself depends on tokio (polars-core → polars-async, and
    // its streaming engine's cloud reader → reqwest → hyper); nothing else
    // may. With polars' subtree pruned, none of them is left.
    let without_polars = core_tree(&["--prune", "polars"]);
    for banned in ["tokio", "hyper", "reqwest", "tower", "futures-util"] {
        assert!(
            !without_polars.iter().any(|n| n == banned),
            "churnguard-core pulls in {banned} other than through polars: {without_polars:?}"
        );
    }
}

#[test]
fn every_source_file_starts_with_a_module_doc() {
    for (rel, text) in all_sources() {
        assert!(
            text.starts_with("//!"),
            "{rel} must start with a `//!` doc comment"
        );
    }
}

#[test]
fn the_domain_does_no_io_and_knows_no_shell() {
    // In the core crate only data/ touches the filesystem; nothing in the
    // domain prints or knows the command line, HTTP or the database.
    let banned = [
        "std::fs",
        "fs_err",
        "clap",
        "axum",
        "tokio",
        "std::io::stdout",
        "println!",
        "eprintln!",
        "sqlx::",
    ];
    for (rel, text) in all_sources() {
        let domain = (rel.starts_with("crates/core/src/")
            && !rel.starts_with("crates/core/src/data/"))
            || rel.starts_with("crates/train/src/");
        if !domain {
            continue;
        }
        for word in banned {
            assert!(
                !text.contains(word),
                "{rel} mentions `{word}`: the domain must not do I/O"
            );
        }
    }
    for (rel, text) in all_sources() {
        if !rel.starts_with("src/") {
            assert!(
                !text.contains("anyhow"),
                "{rel} uses anyhow: only the binary's edge may"
            );
        }
        if !rel.starts_with("src/cli") && rel != "src/main.rs" {
            assert!(
                !text.contains("use clap"),
                "{rel} uses clap: only src/cli may"
            );
        }
        let may_touch_files = rel.starts_with("crates/core/src/data/")
            || rel.starts_with("src/cli")
            || rel.starts_with("crates/python/src/")
            || rel == "crates/app/src/registry.rs";
        if !may_touch_files {
            assert!(
                !text.contains("std::fs") && !text.contains("fs_err"),
                "{rel} touches the filesystem: only core's data/, the registry and the CLI may"
            );
        }
    }
}

#[test]
fn only_the_store_speaks_sql_only_the_server_speaks_http_only_neural_links_torch() {
    for (rel, text) in all_sources() {
        if !rel.starts_with("crates/store/") {
            assert!(
                !text.contains("sqlx::") && !text.contains("use sqlx"),
                "{rel} uses sqlx: only the store may"
            );
        }
        if !rel.starts_with("crates/server/") {
            assert!(
                !text.contains("axum::") && !text.contains("use axum"),
                "{rel} uses axum: only the server may"
            );
        }
        if !rel.starts_with("crates/neural/") {
            assert!(
                !mentions_path(&text, "tch"),
                "{rel} uses tch: only churnguard-neural may"
            );
        }
    }
}

#[test]
fn no_ignored_or_should_panic_tests() {
    let mut files: Vec<PathBuf> = rust_files(&root().join("src"));
    files.extend(rust_files(&root().join("tests")));
    for dir in crates().values() {
        files.extend(rust_files(dir));
    }
    let (ignore, should_panic) = (concat!("#[", "ignore"), concat!("#[", "should_panic"));
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains(ignore) && !text.contains(should_panic),
            "{}",
            path.display()
        );
    }
}

#[test]
fn data_readme_documents_every_table_and_column() {
    let readme = std::fs::read_to_string(root().join("data/README.md")).unwrap();
    for table in TABLES {
        assert!(
            readme.contains(&format!("### `{}`", table.name)),
            "data/README.md lacks table {}",
            table.name
        );
        for c in table.columns {
            assert!(
                readme.contains(&format!("| `{}` |", c.name)),
                "data/README.md lacks {}.{}",
                table.name,
                c.name
            );
        }
    }
}

#[test]
fn ci_runs_the_readme_test_command_and_requires_what_tests_may_skip() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    assert!(
        readme.contains("./scripts/test"),
        "README.md must give ./scripts/test as the test command"
    );
    assert!(
        ci.contains("./scripts/test"),
        ".ci/run must call ./scripts/test"
    );
    for flag in [
        "CHURNGUARD_REQUIRE_POSTGRES=1",
        "CHURNGUARD_REQUIRE_FAULTS=1",
        "CHURNGUARD_REQUIRE_SHARED_DATA=1",
        "CHURNGUARD_REQUIRE_SPARK=1",
    ] {
        assert!(ci.contains(flag), ".ci/run must set {flag}");
    }
}

#[test]
fn architecture_names_every_crate_and_module() {
    let arch = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    for (name, dir) in crates() {
        assert!(
            arch.contains(&format!("`{name}`")),
            "ARCHITECTURE.md does not name the crate {name}"
        );
        for entry in std::fs::read_dir(dir.join("src")).unwrap() {
            let path = entry.unwrap().path();
            let module = path.file_stem().unwrap().to_string_lossy().to_string();
            if module == "lib" || module == "main" {
                continue;
            }
            let rel = path
                .strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let rel = rel.trim_end_matches(".rs");
            assert!(arch.contains(rel), "ARCHITECTURE.md's code map lacks {rel}");
        }
    }
}
