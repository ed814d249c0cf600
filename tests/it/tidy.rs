//! Tidy tests: the conventions and invariants ARCHITECTURE.md states, checked
//! by reading the source tree.

use std::path::{Path, PathBuf};

use churnguard::data::TABLES;

use crate::support::root;

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
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

#[test]
fn every_source_file_starts_with_a_module_doc() {
    for path in rust_files(&root().join("src")) {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} must start with a `//!` doc comment",
            path.display()
        );
    }
}

#[test]
fn the_domain_does_no_io_and_knows_no_shell() {
    // Only data/ (and later registry/) touch the filesystem; only cli/ and
    // main.rs know about the command line.
    let domain = [
        "features",
        "eval",
        "models",
        "train",
        "report",
        "health",
        "value",
        "interventions",
        "kpi",
        "scoring",
    ];
    let banned = [
        "std::fs",
        "fs_err",
        "clap",
        "axum",
        "tokio",
        "std::io::stdout",
        "println!",
        "sqlx::",
    ];
    for module in domain {
        for path in rust_files(&root().join("src").join(module)) {
            let text = std::fs::read_to_string(&path).unwrap();
            for word in banned {
                assert!(
                    !text.contains(word),
                    "{} mentions `{word}`: the domain must not do I/O",
                    path.display()
                );
            }
        }
    }
    for path in rust_files(&root().join("src")) {
        let rel = path
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&path).unwrap();
        if !rel.starts_with("src/cli") && rel != "src/main.rs" {
            assert!(
                !text.contains("anyhow"),
                "{rel} uses anyhow: only the binary's edge may"
            );
            assert!(!text.contains("use clap"), "{rel} uses clap: only cli/ may");
        }
        if !rel.starts_with("src/data")
            && !rel.starts_with("src/cli")
            && !rel.starts_with("src/registry")
        {
            assert!(
                !text.contains("std::fs") && !text.contains("fs_err"),
                "{rel} touches the filesystem"
            );
        }
    }
}

#[test]
fn only_the_store_speaks_sql_and_only_the_server_speaks_http() {
    for path in rust_files(&root().join("src")) {
        let rel = path
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&path).unwrap();
        if !rel.starts_with("src/store") {
            assert!(
                !text.contains("sqlx::") && !text.contains("use sqlx"),
                "{rel} uses sqlx: only store/ may"
            );
        }
        if !rel.starts_with("src/serve") {
            assert!(
                !text.contains("axum::") && !text.contains("use axum"),
                "{rel} uses axum: only serve/ may"
            );
        }
    }
}

#[test]
fn no_ignored_or_should_panic_tests() {
    let mut files = rust_files(&root().join("src"));
    files.extend(rust_files(&root().join("tests")));
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
fn ci_runs_the_readme_test_command() {
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
}

#[test]
fn architecture_code_map_names_every_module() {
    let arch = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    for entry in std::fs::read_dir(root().join("src")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if name == "lib" || name == "main" {
            continue;
        }
        assert!(
            arch.contains(&format!("src/{name}")),
            "ARCHITECTURE.md's code map lacks src/{name}"
        );
    }
}
