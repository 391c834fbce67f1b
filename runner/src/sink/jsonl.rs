//! Newline-delimited JSON: one change per line, nulls written explicitly so a missing key
//! never has to be interpreted.

use arrow_array::RecordBatch;
use arrow_json::writer::{LineDelimited, WriterBuilder};

use super::FileEncoder;

/// Writes JSON Lines; binary values appear as hex strings, timestamps as RFC 3339.
pub struct JsonLinesEncoder;

impl FileEncoder for JsonLinesEncoder {
    fn extension(&self) -> &'static str {
        "jsonl"
    }

    fn encode(&self, batch: RecordBatch) -> Result<Vec<u8>, String> {
        let mut writer = WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, LineDelimited>(Vec::new());
        writer.write(&batch).map_err(|err| err.to_string())?;
        writer.finish().map_err(|err| err.to_string())?;
        Ok(writer.into_inner())
    }
}
