//! Avro object container files, Snappy-compressed (what Matillion's users already consume).

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_avro::compression::CompressionCodec;
use arrow_avro::writer::WriterBuilder;
use arrow_avro::writer::format::AvroOcfFormat;
use arrow_schema::{Field, Schema};

use super::FileEncoder;

/// Writes Avro OCF. Avro names allow only `[A-Za-z_][A-Za-z0-9_]*`, so other column names are
/// rewritten (each disallowed character becomes `_`, a leading digit gets a `_` prefix); the
/// original name is kept in the field's `lakestream.source_name` property.
pub struct AvroEncoder;

impl FileEncoder for AvroEncoder {
    fn extension(&self) -> &'static str {
        "avro"
    }

    fn encode(&self, batch: RecordBatch) -> Result<Vec<u8>, String> {
        let avro_schema = Arc::new(avro_safe(&batch.schema()));
        let mut writer = WriterBuilder::new(avro_schema.as_ref().clone())
            .with_compression(Some(CompressionCodec::Snappy))
            .build::<_, AvroOcfFormat>(Vec::new())
            .map_err(|err| err.to_string())?;
        let (_, columns, _) = batch.into_parts();
        let batch = RecordBatch::try_new(avro_schema, columns).map_err(|err| err.to_string())?;
        writer.write(&batch).map_err(|err| err.to_string())?;
        writer.finish().map_err(|err| err.to_string())?;
        let random_marker = *writer
            .sync_marker()
            .expect("container files have a sync marker");
        let mut bytes = writer.into_inner();
        make_sync_marker_deterministic(&mut bytes, &random_marker);
        Ok(bytes)
    }
}

/// Replaces the random 16-byte sync marker (in the header and after every block) with one
/// derived from the file's content, so the same batches always give the same bytes and a
/// replayed flush rewrites an identical object. The marker only has to be unlikely to occur in
/// the data, which a content hash is as much as a random draw.
fn make_sync_marker_deterministic(bytes: &mut [u8], random_marker: &[u8; 16]) {
    let mut places = Vec::new();
    let mut start = 0;
    while let Some(offset) = bytes[start..].windows(16).position(|w| w == random_marker) {
        places.push(start + offset);
        start += offset + 16;
    }
    for &place in &places {
        bytes[place..place + 16].fill(0);
    }
    let mut marker = [0u8; 16];
    for (half, salt) in marker.chunks_mut(8).zip([0x6c61_6b65u64, 0x7374_7265]) {
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&salt, &mut hasher);
        std::hash::Hash::hash(&*bytes, &mut hasher);
        half.copy_from_slice(&std::hash::Hasher::finish(&hasher).to_le_bytes());
    }
    for &place in &places {
        bytes[place..place + 16].copy_from_slice(&marker);
    }
}

fn avro_safe(schema: &Schema) -> Schema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| {
            let name = avro_name(field.name());
            if &name == field.name() {
                field.as_ref().clone()
            } else {
                let mut metadata = field.metadata().clone();
                metadata.insert("lakestream.source_name".to_owned(), field.name().clone());
                field
                    .as_ref()
                    .clone()
                    .with_name(name)
                    .with_metadata(metadata)
            }
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

fn avro_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_avro_names() {
        assert_eq!(avro_name("order id"), "order_id");
        assert_eq!(avro_name("1st"), "_1st");
        assert_eq!(avro_name("_op"), "_op");
    }
}
