//! Partitioned execution: `partition` splits a company by customer into
//! parts, `features` runs part by part and streams into one file, and the
//! result equals the unpartitioned run row for row.

use polars::prelude::*;

use crate::actions::ok;
use crate::support::trained;

fn sorted(path: &std::path::Path) -> DataFrame {
    let df = ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap();
    df.sort(
        ["customer_id", "snapshot_date"],
        SortMultipleOptions::default(),
    )
    .unwrap()
}

#[test]
fn partitioned_features_equal_the_whole_run_row_for_row() {
    let base = trained();
    let dir = tempfile::tempdir().unwrap();
    let co = base.join("co");
    let co = co.to_str().unwrap();
    let said = ok(
        &[
            "partition",
            "--data",
            co,
            "--partitions",
            "4",
            "--out",
            "parts",
        ],
        dir.path(),
    );
    assert!(said.contains("1500 customers into 4 parts"), "{said}");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("parts/partitions.json")).unwrap(),
    )
    .unwrap();
    let sizes: Vec<u64> = manifest["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(sizes.iter().sum::<u64>(), 1500);
    assert!(sizes.iter().all(|n| *n > 250), "{sizes:?}");
    // A customer's rows are all in its part (every part validates alone).
    for k in 0..4 {
        assert!(dir
            .path()
            .join(format!("parts/part={k}/usage.parquet"))
            .is_file());
    }

    // Default snapshots, and `latest`, come from the company's dates, not a part's.
    for extra in [&[][..], &["--snapshot", "latest"][..]] {
        let whole = ok(
            &[
                &["features", "--data", co, "--out", "whole.parquet"][..],
                extra,
            ]
            .concat(),
            dir.path(),
        );
        let parted = ok(
            &[
                &["features", "--data", "parts", "--out", "parted.parquet"][..],
                extra,
            ]
            .concat(),
            dir.path(),
        );
        assert!(parted.contains("from 4 parts"), "{parted}");
        let (a, b) = (
            sorted(&dir.path().join("whole.parquet")),
            sorted(&dir.path().join("parted.parquet")),
        );
        assert!(a.height() > 500, "{whole}");
        assert_eq!(a.schema(), b.schema());
        assert!(
            a.equals_missing(&b),
            "partitioned features differ ({extra:?})"
        );
    }
}

#[test]
fn a_bad_partition_count_is_refused() {
    let base = trained();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_churnguard"))
        .args(["partition", "--data", base.join("co").to_str().unwrap()])
        .args(["--partitions", "0", "--out", "parts"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--partitions must be at least 1"));
}
