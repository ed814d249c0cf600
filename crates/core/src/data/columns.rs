//! Typed column access for the layers above: a named column of a frame as a
//! plain vector. Errors are messages naming the column; each layer wraps
//! them in its own error with the table's name.

use polars::prelude::*;

/// One of this module's readers, for helpers that take the reader as an argument.
pub type Reader<T> = fn(&DataFrame, &str) -> Result<Vec<Option<T>>, String>;

fn cast(df: &DataFrame, name: &str, to: &DataType) -> Result<Column, String> {
    df.column(name)
        .map_err(|_| format!("no column `{name}`"))?
        .cast(to)
        .map_err(|e| format!("column `{name}`: {e}"))
}

/// An integer column (any integer type) as `i64`.
pub fn i64s(df: &DataFrame, name: &str) -> Result<Vec<Option<i64>>, String> {
    let c = cast(df, name, &DataType::Int64)?;
    Ok(c.i64()
        .map_err(|e| format!("column `{name}`: {e}"))?
        .iter()
        .collect())
}

/// A numeric column as `f64`.
pub fn f64s(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>, String> {
    let c = cast(df, name, &DataType::Float64)?;
    Ok(c.f64()
        .map_err(|e| format!("column `{name}`: {e}"))?
        .iter()
        .collect())
}

/// A date column as days since 1970-01-01.
pub fn days(df: &DataFrame, name: &str) -> Result<Vec<Option<i32>>, String> {
    let c = cast(df, name, &DataType::Int32)?;
    Ok(c.i32()
        .map_err(|e| format!("column `{name}`: {e}"))?
        .iter()
        .collect())
}

/// Any column as text.
pub fn strs(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>, String> {
    let c = cast(df, name, &DataType::String)?;
    Ok(c.str()
        .map_err(|e| format!("column `{name}`: {e}"))?
        .iter()
        .map(|v| v.map(str::to_string))
        .collect())
}

/// A boolean column.
pub fn bools(df: &DataFrame, name: &str) -> Result<Vec<Option<bool>>, String> {
    let c = cast(df, name, &DataType::Boolean)?;
    Ok(c.bool()
        .map_err(|e| format!("column `{name}`: {e}"))?
        .iter()
        .collect())
}
