//! Apache Parquet, Snappy-compressed, one row group per file for files of the usual size.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::FileEncoder;

/// Writes Parquet files readable by DuckDB, Spark, Athena and pyarrow without Lakestream code.
pub struct ParquetEncoder;

impl FileEncoder for ParquetEncoder {
    fn extension(&self) -> &'static str {
        "parquet"
    }

    fn encode(&self, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>, String> {
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!(
                "lakestream streaming-runner {}",
                env!("CARGO_PKG_VERSION")
            ))
            .build();
        let mut writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(properties))
            .map_err(|err| err.to_string())?;
        for batch in batches {
            writer.write(batch).map_err(|err| err.to_string())?;
        }
        writer.into_inner().map_err(|err| err.to_string())
    }
}
