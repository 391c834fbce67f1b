//! Sinks: change batches encoded as files (one module per format) and published to the lake.
//!
//! Every format implements [`FileEncoder`]; [`Lake`] names files, encodes off the async
//! threads, and publishes each file whole (object stores publish complete objects; the local
//! store writes a temporary file and renames it), so readers never see a partial file.

mod avro;
mod jsonl;
mod lake;
mod parquet;

use arrow_array::RecordBatch;
use lakestream_spec::pipeline::Format;

pub use lake::{Lake, WrittenFile, file_name, table_folder};

/// Why a file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The batches could not be encoded in the format.
    #[error("cannot encode {format} for {table}: {reason}")]
    Encode {
        /// The format.
        format: &'static str,
        /// The table folder.
        table: String,
        /// What the encoder said.
        reason: String,
    },
    /// The store refused the write.
    #[error(transparent)]
    Store(#[from] lakestream_control::StoreError),
}

/// Turns a record batch into the bytes of one file.
pub trait FileEncoder: Send + Sync {
    /// File extension, without a dot.
    fn extension(&self) -> &'static str;

    /// Encodes `batch` as one complete file. Deterministic: the same batch gives the same bytes,
    /// so a replayed flush rewrites identical objects. The batch is taken by value so an encoder
    /// can release each part of it as soon as that part is encoded.
    fn encode(&self, batch: RecordBatch) -> Result<Vec<u8>, String>;
}

/// The encoder for a format.
pub fn encoder(format: Format) -> Box<dyn FileEncoder> {
    match format {
        Format::Parquet => Box::new(parquet::ParquetEncoder),
        Format::Jsonl => Box::new(jsonl::JsonLinesEncoder),
        Format::Avro => Box::new(avro::AvroEncoder),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::change::{
        ChangeBuffer, Column, ColumnType, Op, Position, RowMeta, TableName, TableSchema,
    };

    /// Every logical column type and every metadata column, as a source produces them, encodes
    /// in every format (a zone name such as `UTC` once broke JSON Lines here).
    #[test]
    fn a_change_file_of_every_column_type_encodes_in_every_format() {
        let types = [
            ColumnType::Bool,
            ColumnType::Int16,
            ColumnType::Int32,
            ColumnType::Int64,
            ColumnType::Float32,
            ColumnType::Float64,
            ColumnType::Decimal {
                precision: 12,
                scale: 2,
            },
            ColumnType::Utf8,
            ColumnType::Json,
            ColumnType::Binary,
            ColumnType::Date,
            ColumnType::Time,
            ColumnType::Timestamp,
            ColumnType::TimestampTz,
            ColumnType::Interval,
            ColumnType::List(Box::new(ColumnType::TimestampTz)),
            ColumnType::Text,
        ];
        let columns = types
            .iter()
            .enumerate()
            .map(|(i, column_type)| Column {
                name: format!("c{i}"),
                source_type: format!("{column_type:?}"),
                column_type: column_type.clone(),
                key: i == 0,
                nullable: Some(true),
            })
            .collect();
        let schema =
            Arc::new(TableSchema::new(TableName::new("public", "every"), columns).unwrap());
        let mut buffer = ChangeBuffer::new();
        let mut row = buffer.row(
            &schema,
            RowMeta {
                op: Op::Update,
                position: Position::new(7, 0),
                commit_ts: Some(1_700_000_000_000_000),
                txid: Some(42),
            },
        );
        for _ in &types {
            row.cell().unwrap().null();
        }
        drop(row);
        let batch = buffer.take().remove(0).batch;
        for format in [Format::Parquet, Format::Jsonl, Format::Avro] {
            match encoder(format).encode(batch.clone()) {
                Ok(bytes) => assert!(!bytes.is_empty(), "{format:?}"),
                Err(error) => panic!("{format:?}: {error}"),
            }
        }
    }
}
