//! Apache Parquet, Snappy-compressed, one row group per file for files of the usual size.
//!
//! Columns whose values are nearly all distinct (keys, sequence numbers, timestamps, free text)
//! are written without a dictionary: the encoder would hash every value into a dictionary only
//! to abandon it at its size limit, which cost a backfill a fifth of its time.
//!
//! Columns are encoded one at a time, each appended to the file as soon as it is encoded and
//! released right after: only one column's encoder state (its dictionary and pages) lives
//! beside the batch and the growing file, and the batch shrinks while the file grows.
//! `ArrowWriter` keeps every column's encoder until the row group closes, which for a wide
//! table is as much memory again as the batch itself.

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::ArrowSchemaConverter;
use parquet::arrow::add_encoded_arrow_schema_to_metadata;
use parquet::arrow::arrow_writer::{ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::{DEFAULT_DICTIONARY_PAGE_SIZE_LIMIT, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;

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
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!(
            "lakestream streaming-runner {}",
            env!("CARGO_PKG_VERSION")
        ));
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if !dictionary_pays(column) {
            builder = builder
                .set_column_dictionary_enabled(ColumnPath::new(vec![field.name().clone()]), false);
        }
    }
    let mut properties = builder.build();
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

/// Values sampled (spread across the column) to judge whether a dictionary pays.
const DICTIONARY_SAMPLE: usize = 1024;

/// Whether a dictionary is worth building for a flat column: not when the distinct values a
/// sample suggests would overflow the dictionary page (the encoder then abandons it after
/// hashing every value so far) or make up most of the rows. With `s` values sampled from `n`
/// distinct ones, about `s² / 2n` pairs repeat, so repeats estimate `n`; a sample without
/// repeats means more than `s²` distinct values. Other columns keep the encoder's default.
fn dictionary_pays(column: &ArrayRef) -> bool {
    let rows = column.len();
    if rows < 2 * DICTIONARY_SAMPLE {
        return true;
    }
    // Pseudo-random rows, since an even stride would walk in step with periodic data
    // (`g % 10000`) and see no repeats at all; rows drawn twice are dropped so that only
    // repeated values count as repeats.
    let mut rows_drawn: Vec<usize> = (0..DICTIONARY_SAMPLE as u64)
        .map(|i| (splitmix64(i) % rows as u64) as usize)
        .filter(|&i| column.is_valid(i))
        .collect();
    rows_drawn.sort_unstable();
    rows_drawn.dedup();
    let indexes = rows_drawn.into_iter();
    let (sampled, distinct, width) = match column.data_type() {
        DataType::Utf8 => {
            let strings = column.as_string::<i32>();
            distinct_of(indexes.map(|i| strings.value(i).as_bytes()))
        }
        DataType::Binary => {
            let binaries = column.as_binary::<i32>();
            distinct_of(indexes.map(|i| binaries.value(i)))
        }
        data_type => {
            let Some(width) = data_type.primitive_width() else {
                return true;
            };
            let data = column.to_data();
            let bytes = &data.buffers()[0].as_slice()[data.offset() * width..];
            distinct_of(indexes.map(|i| &bytes[i * width..(i + 1) * width]))
        }
    };
    if sampled == 0 {
        return true;
    }
    let repeats = sampled - distinct;
    let estimate = if repeats == 0 {
        sampled * sampled
    } else {
        sampled * sampled / (2 * repeats)
    };
    estimate.saturating_mul(width) <= DEFAULT_DICTIONARY_PAGE_SIZE_LIMIT && estimate < rows / 2
}

/// A well-mixed 64-bit hash of `x` (SplitMix64's finaliser).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// How many values, how many distinct ones, and their mean width in bytes.
fn distinct_of<'a>(values: impl Iterator<Item = &'a [u8]>) -> (usize, usize, usize) {
    let (mut sampled, mut bytes) = (0, 0);
    let mut seen = HashSet::with_capacity(DICTIONARY_SAMPLE);
    for value in values {
        sampled += 1;
        bytes += value.len();
        seen.insert(value);
    }
    (
        sampled,
        seen.len(),
        bytes.checked_div(sampled).unwrap_or(0).max(1),
    )
}

#[cfg(test)]
mod tests {
    use arrow_array::{Int32Array, Int64Array, StringArray};

    use super::*;

    #[test]
    fn dictionaries_only_where_values_repeat() {
        let rows = 100_000;
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows));
        let accounts: ArrayRef = Arc::new(Int32Array::from_iter_values(
            (0..rows as i32).map(|g| g % 10_000),
        ));
        let ops: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..rows).map(|g| if g % 3 == 0 { "u" } else { "i" }),
        ));
        let notes: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..rows).map(|g| format!("order {g}")),
        ));
        assert!(!dictionary_pays(&ids), "unique keys");
        assert!(dictionary_pays(&accounts), "10,000 accounts repeat");
        assert!(dictionary_pays(&ops), "a handful of values");
        assert!(!dictionary_pays(&notes), "free text");
        let small: ArrayRef = Arc::new(Int64Array::from_iter_values(0..100));
        assert!(dictionary_pays(&small), "small flushes keep the default");
    }

    #[test]
    fn files_without_dictionaries_still_read_back() {
        let rows = 10_000i64;
        let schema = Arc::new(arrow_schema::Schema::new(vec![
            arrow_schema::Field::new("id", DataType::Int64, false),
            arrow_schema::Field::new("a.b", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(0..rows)),
                Arc::new(StringArray::from_iter(
                    (0..rows).map(|g| (g % 7 != 0).then(|| format!("v{g}"))),
                )),
            ],
        )
        .unwrap();
        let bytes = encode(batch.clone()).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::from(bytes),
        )
        .unwrap();
        let metadata = reader.metadata().clone();
        let read: Vec<RecordBatch> = reader
            .with_batch_size(rows as usize)
            .build()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(read, [batch]);
        let column = metadata.row_group(0).column(0);
        assert!(
            column.dictionary_page_offset().is_none(),
            "no dictionary for unique ids"
        );
    }
}
