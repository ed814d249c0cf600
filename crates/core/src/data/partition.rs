//! Partitioned data folders: a company's event tables split by customer, so
//! that features (and the work after them) run one partition at a time with
//! memory bounded by the partition, not by the customer count.
//!
//! A customer's partition is `stable_u64("churnguard-partition", id) mod N`
//! ([`crate::hash::stable_u64`], a documented formula that other tools can
//! reproduce). `churnguard partition --data DIR --partitions N --out OUT`
//! writes hive-style folders `OUT/part=K/` (K = 0..N−1), each a complete data
//! folder holding its customers' rows of every table (employees, who are
//! not customers, are copied into each; leads never converted go to part 0),
//! and `OUT/partitions.json` with the count, the salt, and the company-wide
//! data end and first signup (one partition's dates are not the company's:
//! default snapshots come from these). Every row lands in exactly one part,
//! so each part passes the same validation as the whole.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    columns, create_dir, read_raw, schema, table_data_end, table_path, validate, write_frame,
    write_text, DataError, LoadOptions, Result, TABLES,
};

/// The salt of the partition hash.
pub const SALT: &str = "churnguard-partition";

/// The file that marks a partitioned folder.
pub const MANIFEST: &str = "partitions.json";

/// The partition of a customer id among `partitions`.
pub fn partition_of(customer_id: &str, partitions: u32) -> u32 {
    (crate::hash::stable_u64(SALT, customer_id) % u64::from(partitions.max(1))) as u32
}

/// What `partitions.json` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionManifest {
    /// Number of partitions.
    pub partitions: u32,
    /// The salt of the hash (always [`SALT`]).
    pub salt: String,
    /// The last event date of the whole company.
    pub data_end: NaiveDate,
    /// The first signup of the whole company.
    pub first_signup: NaiveDate,
    /// Customers per partition.
    pub customers: Vec<usize>,
}

/// The folder of partition `k` under `root`.
pub fn part_dir(root: &Path, k: u32) -> PathBuf {
    root.join(format!("part={k}"))
}

/// The manifest of a partitioned folder, or `None` for a plain data folder.
pub fn read_manifest(dir: &Path) -> Result<Option<PartitionManifest>> {
    let path = dir.join(MANIFEST);
    if !path.is_file() {
        return Ok(None);
    }
    let text = super::read_text(&path)?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| DataError::Unreadable {
            path,
            message: e.to_string(),
        })
}

/// Splits the data folder `src` into `partitions` parts under `out` (see
/// the module docs). Reads and validates one table at a time, so memory
/// holds the largest table, not the company.
pub fn write_partitioned(
    src: &Path,
    out: &Path,
    partitions: u32,
    opts: LoadOptions,
) -> Result<PartitionManifest> {
    if partitions == 0 {
        return Err(DataError::BadSchema {
            path: out.to_path_buf(),
            message: "--partitions must be at least 1".into(),
        });
    }
    for k in 0..partitions {
        create_dir(&part_dir(out, k))?;
    }
    let mut data_end: Option<i32> = None;
    let mut first_signup: Option<i32> = None;
    let mut customers = vec![0usize; partitions as usize];
    for spec in TABLES {
        let path = table_path(src, spec.name).ok_or_else(|| DataError::MissingTable {
            dir: src.to_path_buf(),
            table: spec.name.to_string(),
        })?;
        let mut typed = validate::check_table(spec, read_raw(&path)?, &path, opts.as_of)?;
        if let Some(end) = table_data_end(spec.name, &typed) {
            data_end = Some(data_end.map_or(end, |e| e.max(end)));
        }
        let target = |k: u32| part_dir(out, k).join(format!("{}.parquet", spec.name));
        if typed.column("customer_id").is_err() {
            // Not per customer (employees): every part needs all of it.
            for k in 0..partitions {
                write_frame(&mut typed, &target(k))?;
            }
            continue;
        }
        let ids =
            columns::strs(&typed, "customer_id").map_err(|message| DataError::Unreadable {
                path: path.clone(),
                message,
            })?;
        let part: Vec<u32> = ids
            .iter()
            .map(|id| id.as_deref().map_or(0, |id| partition_of(id, partitions)))
            .collect();
        if spec.name == "customers" {
            for p in &part {
                customers[*p as usize] += 1;
            }
            first_signup = columns::days(&typed, "signup_date")
                .ok()
                .and_then(|d| d.into_iter().flatten().min());
        }
        for k in 0..partitions {
            let mask: BooleanChunked = part.iter().map(|p| *p == k).collect();
            let mut rows = typed
                .filter(&mask)
                .map_err(DataError::polars(format!("partitioning {}", spec.name)))?;
            write_frame(&mut rows, &target(k))?;
        }
    }
    let (Some(end), Some(first)) = (data_end, first_signup) else {
        return Err(DataError::EmptyTable {
            path: src.join("customers"),
        });
    };
    let manifest = PartitionManifest {
        partitions,
        salt: SALT.into(),
        data_end: schema::date_from_days(end),
        first_signup: schema::date_from_days(first),
        customers,
    };
    let json = serde_json::to_string_pretty(&manifest).expect("manifest serialises");
    // Written last: a folder with the manifest is complete.
    write_text(&out.join(MANIFEST), &json)?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_fixed_and_spread() {
        // Part of the contract: folders already written depend on them.
        assert_eq!(partition_of("1", 16), partition_of("1", 16));
        let mut counts = [0usize; 8];
        for i in 0..8000 {
            counts[partition_of(&i.to_string(), 8) as usize] += 1;
        }
        assert!(counts.iter().all(|c| (850..1150).contains(c)), "{counts:?}");
        assert_eq!(partition_of("anything", 1), 0);
    }
}
