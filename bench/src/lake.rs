//! Reading what the runner published, for the latency case: each row's commit time (its
//! `_commit_ts` column) against the time its file became visible. Files are published by a
//! rename of a complete temporary file, which keeps the file's modification time (its last
//! write, a moment before the rename), so the mtime is when readers could first see the row.

use std::path::Path;
use std::time::UNIX_EPOCH;

use arrow_array::{Array, TimestampMicrosecondArray};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Error, IoContext, Result};

/// Commit-to-visible latency of every row in the Parquet files of `folder`, in milliseconds.
pub fn commit_to_visible_ms(folder: &Path) -> Result<Vec<f64>> {
    let mut latencies = Vec::new();
    let entries = std::fs::read_dir(folder).context(|| format!("listing {}", folder.display()))?;
    for entry in entries {
        let path = entry
            .context(|| format!("listing {}", folder.display()))?
            .path();
        if path.extension().is_none_or(|e| e != "parquet") {
            continue;
        }
        let visible_us = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .context(|| format!("reading the mtime of {}", path.display()))?
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Error::Failed(format!("{} predates 1970", path.display())))?
            .as_micros() as f64;
        for commit_us in commit_times(&path)? {
            latencies.push((visible_us - commit_us as f64) / 1000.0);
        }
    }
    Ok(latencies)
}

/// The `_commit_ts` values (µs since the epoch) of a change file.
fn commit_times(path: &Path) -> Result<Vec<i64>> {
    let parquet_error = |source| Error::Parquet {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).context(|| format!("opening {}", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_error)?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), ["_commit_ts"]);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(parquet_error)?;
    let mut times = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|err| Error::Failed(format!("{}: {err}", path.display())))?;
        let column = batch
            .column(0)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .ok_or_else(|| {
                Error::Failed(format!(
                    "{}: _commit_ts is not a microsecond timestamp",
                    path.display()
                ))
            })?;
        times.extend(column.iter().flatten());
    }
    Ok(times)
}
