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
use arrow_schema::SchemaRef;
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

/// Turns record batches of one schema into the bytes of one file.
pub trait FileEncoder: Send + Sync {
    /// File extension, without a dot.
    fn extension(&self) -> &'static str;

    /// Encodes `batches` (all of `schema`) as one complete file. Deterministic: the same
    /// batches give the same bytes, so a replayed flush rewrites identical objects.
    fn encode(&self, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>, String>;
}

/// The encoder for a format.
pub fn encoder(format: Format) -> Box<dyn FileEncoder> {
    match format {
        Format::Parquet => Box::new(parquet::ParquetEncoder),
        Format::Jsonl => Box::new(jsonl::JsonLinesEncoder),
        Format::Avro => Box::new(avro::AvroEncoder),
    }
}
