//! Apache Parquet, Snappy-compressed, one row group per file for files of the usual size.
//!
//! Columns are encoded one at a time, each appended to the file as soon as it is encoded and
//! released right after: only one column's encoder state (its dictionary and pages) lives
//! beside the batch and the growing file, and the batch shrinks while the file grows.
//! `ArrowWriter` keeps every column's encoder until the row group closes, which for a wide
//! table is as much memory again as the batch itself.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch};
use parquet::arrow::ArrowSchemaConverter;
use parquet::arrow::add_encoded_arrow_schema_to_metadata;
use parquet::arrow::arrow_writer::{ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;

use super::FileEncoder;

/// Writes Parquet files readable by DuckDB, Spark, Athena and pyarrow without Lakestream code.
pub struct ParquetEncoder;

impl FileEncoder for ParquetEncoder {
    fn extension(&self) -> &'static str {
        "parquet"
    }

    fn encode(&self, batch: RecordBatch) -> Result<Vec<u8>, String> {
        encode(batch).map_err(|err| err.to_string())
    }
}

/// The file's bytes: the batch in row groups of at most the default row count (one for files of
/// the usual size), with the Arrow schema in the metadata as `ArrowWriter` writes it.
fn encode(batch: RecordBatch) -> Result<Vec<u8>, ParquetError> {
    let mut properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!(
            "lakestream streaming-runner {}",
            env!("CARGO_PKG_VERSION")
        ))
        .build();
    let (schema, columns, rows) = batch.into_parts();
    add_encoded_arrow_schema_to_metadata(&schema, &mut properties);
    let parquet_schema = ArrowSchemaConverter::new()
        .with_coerce_types(properties.coerce_types())
        .convert(&schema)?;
    let max_rows = properties
        .max_row_group_row_count()
        .unwrap_or(usize::MAX)
        .max(1);
    let mut writer = SerializedFileWriter::new(
        Vec::new(),
        parquet_schema.root_schema_ptr(),
        Arc::new(properties),
    )?;
    let factory = ArrowRowGroupWriterFactory::new(&writer, Arc::clone(&schema));
    let mut columns: Vec<Option<ArrayRef>> = columns.into_iter().map(Some).collect();
    let groups = rows.div_ceil(max_rows).max(1);
    for group in 0..groups {
        let offset = group * max_rows;
        let len = max_rows.min(rows - offset);
        let last = group + 1 == groups;
        let mut row_group = writer.next_row_group()?;
        let mut leaf_writers = factory.create_column_writers(group)?.into_iter();
        for (field, column) in schema.fields().iter().zip(&mut columns) {
            // The last row group takes the column, so it is freed once encoded.
            let array = if last { column.take() } else { column.clone() }
                .expect("a column is taken only by the last row group")
                .slice(offset, len);
            for leaf in compute_leaves(field, &array)? {
                let mut leaf_writer = leaf_writers
                    .next()
                    .expect("the factory makes one writer per leaf of the schema");
                leaf_writer.write(&leaf)?;
                leaf_writer.close()?.append_to_row_group(&mut row_group)?;
            }
        }
        row_group.close()?;
    }
    writer.into_inner()
}
