//! [`ChangeBuffer`]: per-table segments of typed Arrow builders that sources append rows to.
//!
//! A row is written with [`ChangeBuffer::row`], which records the metadata columns and returns
//! a [`RowWriter`]; the source then fills the table's columns in order through [`Cell`]s. Every
//! writer completes its row when dropped (missing cells become null), so the builders of a
//! segment always have equal lengths, whatever path the source takes.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_array::builder::{
    Int64Builder, ListBuilder as ArrowListBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_schema::{DataType, Field};

use super::column::{ColumnBuilder, ListBuilder};
use super::schema::TableSchema;
use super::{Op, Position, TableName};

/// Approximate bytes of the metadata columns of one row (`_op`, `_position`, `_seq`,
/// `_commit_ts`, `_txid`, `_unchanged`, offsets and validity included).
const META_BYTES_PER_ROW: usize = 5 + 20 + 8 + 8 + 8 + 4 + 1;

/// Everything about a row that is not a table column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowMeta {
    /// The change's kind (`_op`).
    pub op: Op,
    /// Its position (`_position` from `log`, `_seq` from `seq`).
    pub position: Position,
    /// Commit time in microseconds since the Unix epoch (`_commit_ts`); `None` for snapshot rows.
    pub commit_ts: Option<i64>,
    /// The source transaction id (`_txid`); `None` for snapshot rows.
    pub txid: Option<i64>,
}

/// The buffered rows of one table segment, turned into Arrow by [`ChangeBuffer::take`].
#[derive(Debug, Clone)]
pub struct TableBatch {
    /// The segment's schema (table name, columns, Arrow schema, fingerprint).
    pub schema: Arc<TableSchema>,
    /// The rows: metadata columns then the table's columns, in append order.
    pub batch: RecordBatch,
    /// The segment's number within this take for this table, from 0: a schema change inside one
    /// flush yields segments 0, 1, … (one file each). Deterministic for a given input, so a
    /// replayed flush names its files identically.
    pub segment: u32,
}

/// A source tried to write a value the column cannot hold: a bug in the source's type mapping,
/// never a data problem (sources parse values before writing them).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BufferError {
    /// The value's kind is not the column's.
    #[error("column {column:?} holds {expected} values, not {found}")]
    TypeMismatch {
        /// The column (for a list, the list column).
        column: String,
        /// What the column holds.
        expected: &'static str,
        /// What the source tried to write.
        found: &'static str,
    },
    /// More cells than the table has columns.
    #[error("table {table} has {columns} columns; the row has more values")]
    TooManyValues {
        /// The table.
        table: TableName,
        /// Its column count.
        columns: usize,
    },
}

/// The in-memory change buffer. Rows are appended per table; a table's rows go into its current
/// segment, and a row whose schema differs from that segment's starts a new one. Memory is
/// bounded by what is buffered: [`ChangeBuffer::take`] moves every builder's buffers into the
/// returned batches and keeps nothing.
#[derive(Debug, Default)]
pub struct ChangeBuffer {
    /// Tables in order of their first row since the last take.
    tables: Vec<TableSegments>,
    /// Index into `tables` of the table written last (fast path for runs of one table).
    last: usize,
    /// Row and byte counts.
    counters: Counters,
}

/// Row and byte counts, a field of its own so writers can borrow it beside a segment.
#[derive(Debug, Default)]
struct Counters {
    /// Rows buffered.
    rows: usize,
    /// Approximate bytes buffered.
    bytes: usize,
}

/// The segments of one table.
#[derive(Debug)]
struct TableSegments {
    /// The table.
    table: TableName,
    /// Its segments, oldest first; only the last one receives rows.
    segments: Vec<Segment>,
}

/// Rows of one table with one schema.
#[derive(Debug)]
struct Segment {
    /// The schema every row of the segment has.
    schema: Arc<TableSchema>,
    /// Builders of the metadata columns.
    meta: MetaBuilders,
    /// One builder per table column.
    columns: Vec<ColumnBuilder>,
}

/// Builders of the metadata columns.
#[derive(Debug)]
struct MetaBuilders {
    /// `_op`.
    op: StringBuilder,
    /// `_position`.
    position: StringBuilder,
    /// `_seq`.
    seq: Int64Builder,
    /// `_commit_ts`.
    commit_ts: TimestampMicrosecondBuilder,
    /// `_txid`.
    txid: Int64Builder,
    /// `_unchanged`.
    unchanged: ArrowListBuilder<StringBuilder>,
}

impl Segment {
    /// An empty segment for `schema`.
    fn new(schema: Arc<TableSchema>) -> Self {
        let columns = schema
            .columns()
            .iter()
            .map(|c| ColumnBuilder::new(&c.column_type))
            .collect();
        Segment {
            schema,
            meta: MetaBuilders {
                op: StringBuilder::new(),
                position: StringBuilder::new(),
                seq: Int64Builder::new(),
                commit_ts: TimestampMicrosecondBuilder::new()
                    .with_data_type(super::schema::instant_type()),
                txid: Int64Builder::new(),
                unchanged: ArrowListBuilder::new(StringBuilder::new()).with_field(Field::new(
                    "item",
                    DataType::Utf8,
                    false,
                )),
            },
            columns,
        }
    }

    /// Finishes every builder into one record batch.
    fn finish(mut self) -> RecordBatch {
        let mut arrays: Vec<arrow_array::ArrayRef> = vec![
            Arc::new(self.meta.op.finish()),
            Arc::new(self.meta.position.finish()),
            Arc::new(self.meta.seq.finish()),
            Arc::new(self.meta.commit_ts.finish()),
            Arc::new(self.meta.txid.finish()),
            Arc::new(self.meta.unchanged.finish()),
        ];
        arrays.extend(self.columns.iter_mut().map(ColumnBuilder::finish));
        RecordBatch::try_new(Arc::clone(self.schema.arrow_schema()), arrays)
            .expect("a segment's builders are created from its own schema and complete every row")
    }
}

impl ChangeBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        ChangeBuffer::default()
    }

    /// Rows buffered since the last take.
    pub fn rows(&self) -> usize {
        self.counters.rows
    }

    /// Approximate memory held by the buffered rows, in bytes (values, offsets and metadata
    /// columns; builder slack not counted). What the pipeline compares with its budget.
    pub fn bytes(&self) -> usize {
        self.counters.bytes
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.counters.rows == 0
    }

    /// Starts a row of `schema`'s table: writes the metadata columns and returns the writer for
    /// the table's columns. A schema that differs from the table's current segment starts a new
    /// segment. The row is complete when the writer is dropped.
    pub fn row(&mut self, schema: &Arc<TableSchema>, meta: RowMeta) -> RowWriter<'_> {
        let segment = segment_for(&mut self.tables, &mut self.last, schema);
        let m = &mut segment.meta;
        m.op.append_value(meta.op.as_str());
        let hex = log_hex(meta.position.log);
        m.position
            .append_value(std::str::from_utf8(&hex).unwrap_or_default());
        m.seq
            .append_value(i64::try_from(meta.position.seq).unwrap_or(i64::MAX));
        m.commit_ts.append_option(meta.commit_ts);
        m.txid.append_option(meta.txid);
        self.counters.bytes += META_BYTES_PER_ROW;
        RowWriter {
            segment,
            next: 0,
            counters: &mut self.counters,
        }
    }

    /// Everything buffered, one batch per table segment (tables in order of their first row,
    /// segments in order), and an empty buffer. Builders are dropped, so memory is released.
    pub fn take(&mut self) -> Vec<TableBatch> {
        self.counters = Counters::default();
        self.last = 0;
        let mut batches = Vec::new();
        for table in std::mem::take(&mut self.tables) {
            for (segment, part) in (0u32..).zip(table.segments) {
                let schema = Arc::clone(&part.schema);
                let batch = part.finish();
                if batch.num_rows() > 0 {
                    batches.push(TableBatch {
                        schema,
                        batch,
                        segment,
                    });
                }
            }
        }
        batches
    }
}

/// The segment that receives `schema`'s next row: the table's last segment if it has the same
/// shape, else a new one.
fn segment_for<'t>(
    tables: &'t mut Vec<TableSegments>,
    last: &mut usize,
    schema: &Arc<TableSchema>,
) -> &'t mut Segment {
    let index = match tables.get(*last) {
        Some(t) if t.table == *schema.table() => *last,
        _ => match tables.iter().position(|t| t.table == *schema.table()) {
            Some(index) => index,
            None => {
                tables.push(TableSegments {
                    table: schema.table().clone(),
                    segments: Vec::new(),
                });
                tables.len() - 1
            }
        },
    };
    *last = index;
    let segments = &mut tables[index].segments;
    let reuse = segments
        .last()
        .is_some_and(|s| Arc::ptr_eq(&s.schema, schema) || s.schema.same_shape(schema));
    if !reuse {
        segments.push(Segment::new(Arc::clone(schema)));
    }
    let last_index = segments.len() - 1;
    &mut segments[last_index]
}

/// `log` as the 16 upper-case hex digits of `_position`, without allocating (once per row).
fn log_hex(log: u64) -> [u8; 16] {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = DIGITS[((log >> (60 - 4 * i)) & 0xF) as usize];
    }
    out
}

/// Writes the table columns of one row, in column order. Dropping it completes the row: columns
/// not written are null, and `_unchanged` is closed.
#[derive(Debug)]
pub struct RowWriter<'a> {
    /// The segment the row belongs to.
    segment: &'a mut Segment,
    /// Index of the next column to write.
    next: usize,
    /// The buffer's counters.
    counters: &'a mut Counters,
}

impl RowWriter<'_> {
    /// The next column's cell. Each call moves to the following column.
    pub fn cell(&mut self) -> Result<Cell<'_>, BufferError> {
        let index = self.next;
        let columns = self.segment.columns.len();
        let Some(builder) = self.segment.columns.get_mut(index) else {
            return Err(BufferError::TooManyValues {
                table: self.segment.schema.table().clone(),
                columns,
            });
        };
        self.next += 1;
        Ok(Cell::new(
            builder,
            &self.segment.schema.columns()[index].name,
            &mut self.counters.bytes,
        ))
    }

    /// Marks the next column as not sent by the source (an unchanged TOASTed value): its cell is
    /// null and its name goes into `_unchanged`, meaning "keep the previous value".
    pub fn unchanged(&mut self) -> Result<(), BufferError> {
        let index = self.next;
        let name = self
            .segment
            .schema
            .columns()
            .get(index)
            .map(|c| c.name.as_str());
        let Some(name) = name else {
            return Err(BufferError::TooManyValues {
                table: self.segment.schema.table().clone(),
                columns: self.segment.columns.len(),
            });
        };
        self.segment.columns[index].append_null();
        self.segment.meta.unchanged.values().append_value(name);
        self.counters.bytes += name.len() + 4;
        self.next += 1;
        Ok(())
    }

    /// Index of the next column to be written.
    pub fn position(&self) -> usize {
        self.next
    }
}

impl Drop for RowWriter<'_> {
    /// Completes the row: nulls for the columns not written, `_unchanged` closed, counters
    /// updated.
    fn drop(&mut self) {
        for builder in &mut self.segment.columns[self.next..] {
            builder.append_null();
        }
        self.segment.meta.unchanged.append(true);
        self.counters.rows += 1;
        self.counters.bytes += self.segment.columns.len() / 8 + 1;
    }
}

/// One value slot: a table column of a row, or an element of a list. Write it with exactly one
/// method; a cell dropped unwritten (or whose write failed) becomes null.
#[derive(Debug)]
pub struct Cell<'a> {
    /// The borrowed builder, taken by the method that writes the cell.
    slot: Option<Slot<'a>>,
}

/// What a [`Cell`] writes into.
#[derive(Debug)]
struct Slot<'a> {
    /// The builder that receives the value.
    builder: &'a mut ColumnBuilder,
    /// The column's name, for errors.
    column: &'a str,
    /// The buffer's byte count.
    bytes: &'a mut usize,
}

impl<'a> Slot<'a> {
    /// Appends a null (after a failed write) and returns the mismatch error.
    fn reject(self, found: &'static str) -> BufferError {
        let error = BufferError::TypeMismatch {
            column: self.column.to_owned(),
            expected: self.builder.kind(),
            found,
        };
        self.builder.append_null();
        *self.bytes += 1;
        error
    }
}

/// Generates the `Cell` method for a primitive column kind.
macro_rules! primitive_cell {
    ($(#[$doc:meta])* $method:ident, $value:ty, $variant:ident, $size:expr) => {
        $(#[$doc])*
        pub fn $method(mut self, value: $value) -> Result<(), BufferError> {
            let slot = self.take();
            match slot.builder {
                ColumnBuilder::$variant(b) => {
                    b.append_value(value);
                    *slot.bytes += $size;
                    Ok(())
                }
                _ => Err(slot.reject(stringify!($method))),
            }
        }
    };
}

impl<'a> Cell<'a> {
    /// A cell writing into `builder`.
    fn new(builder: &'a mut ColumnBuilder, column: &'a str, bytes: &'a mut usize) -> Self {
        Cell {
            slot: Some(Slot {
                builder,
                column,
                bytes,
            }),
        }
    }

    /// Takes the slot; every cell is created with one and each writing method consumes the cell.
    fn take(&mut self) -> Slot<'a> {
        self.slot
            .take()
            .expect("a cell's slot is only taken by the method that consumes the cell")
    }

    /// Writes SQL NULL.
    pub fn null(mut self) {
        let slot = self.take();
        slot.builder.append_null();
        *slot.bytes += 1;
    }

    primitive_cell!(
        /// Writes a boolean.
        bool, bool, Bool, 1
    );
    primitive_cell!(
        /// Writes a 16-bit integer.
        i16, i16, Int16, 2
    );
    primitive_cell!(
        /// Writes a 32-bit integer.
        i32, i32, Int32, 4
    );
    primitive_cell!(
        /// Writes a 64-bit integer.
        i64, i64, Int64, 8
    );
    primitive_cell!(
        /// Writes a 32-bit float.
        f32, f32, Float32, 4
    );
    primitive_cell!(
        /// Writes a 64-bit float.
        f64, f64, Float64, 8
    );
    primitive_cell!(
        /// Writes a decimal as its unscaled integer (`12.34` in a scale-2 column is `1234`).
        decimal, i128, Decimal, 16
    );
    primitive_cell!(
        /// Writes a date as days since 1970-01-01.
        date, i32, Date, 4
    );
    primitive_cell!(
        /// Writes a time of day as microseconds since midnight.
        time, i64, Time, 8
    );
    primitive_cell!(
        /// Writes a timestamp as microseconds since the Unix epoch (UTC for time-zoned columns,
        /// wall-clock otherwise).
        timestamp, i64, Timestamp, 8
    );

    /// Writes text (utf8, JSON and text-fallback columns).
    pub fn str(mut self, value: &str) -> Result<(), BufferError> {
        let slot = self.take();
        match slot.builder {
            ColumnBuilder::Utf8(b) => {
                b.append_value(value);
                *slot.bytes += value.len() + 4;
                Ok(())
            }
            _ => Err(slot.reject("utf8")),
        }
    }

    /// Writes bytes.
    pub fn binary(mut self, value: &[u8]) -> Result<(), BufferError> {
        let slot = self.take();
        match slot.builder {
            ColumnBuilder::Binary(b) => {
                b.append_value(value);
                *slot.bytes += value.len() + 4;
                Ok(())
            }
            _ => Err(slot.reject("binary")),
        }
    }

    /// Writes an interval as its three independent parts.
    pub fn interval(mut self, months: i32, days: i32, micros: i64) -> Result<(), BufferError> {
        let slot = self.take();
        match slot.builder {
            ColumnBuilder::Interval(b) => {
                b.months.append_value(months);
                b.days.append_value(days);
                b.micros.append_value(micros);
                b.nulls.append_non_null();
                *slot.bytes += 16;
                Ok(())
            }
            _ => Err(slot.reject("interval")),
        }
    }

    /// Starts a (non-null) list; write its elements through the returned [`ListCell`], which
    /// closes the list when dropped.
    pub fn list(mut self) -> Result<ListCell<'a>, BufferError> {
        let slot = self.take();
        match slot.builder {
            ColumnBuilder::List(list) => {
                *slot.bytes += 4;
                Ok(ListCell {
                    list,
                    column: slot.column,
                    bytes: slot.bytes,
                    elements: 0,
                })
            }
            builder => Err(Slot {
                builder,
                column: slot.column,
                bytes: slot.bytes,
            }
            .reject("list")),
        }
    }
}

impl Drop for Cell<'_> {
    /// An unwritten cell is null, so rows stay aligned whatever the source did.
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.builder.append_null();
        }
    }
}

/// The elements of one list value. Dropping it closes the list.
#[derive(Debug)]
pub struct ListCell<'a> {
    /// The list column.
    list: &'a mut ListBuilder,
    /// The column's name, for errors.
    column: &'a str,
    /// The buffer's byte count.
    bytes: &'a mut usize,
    /// Elements written so far.
    elements: i32,
}

impl ListCell<'_> {
    /// The next element's cell.
    pub fn element(&mut self) -> Cell<'_> {
        self.elements += 1;
        Cell::new(&mut self.list.elements, self.column, &mut *self.bytes)
    }
}

impl Drop for ListCell<'_> {
    /// Closes the list: records where its elements end.
    fn drop(&mut self) {
        let end = self.list.offsets.last().copied().unwrap_or(0) + self.elements;
        self.list.offsets.push(end);
        self.list.nulls.append_non_null();
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int32Type, Int64Type};
    use arrow_array::{Array, ListArray, StructArray};

    use super::*;
    use crate::change::{Column, ColumnType};

    fn schema(name: &str, columns: &[(&str, ColumnType)]) -> Arc<TableSchema> {
        Arc::new(
            TableSchema::new(
                TableName::new("public", name),
                columns
                    .iter()
                    .map(|(n, t)| Column {
                        name: (*n).to_owned(),
                        source_type: t.to_string(),
                        column_type: t.clone(),
                        key: *n == "id",
                        nullable: None,
                    })
                    .collect(),
            )
            .expect("schema"),
        )
    }

    fn meta(op: Op, log: u64, seq: u64) -> RowMeta {
        RowMeta {
            op,
            position: Position { log, seq },
            commit_ts: Some(1_700_000_000_000_000),
            txid: Some(42),
        }
    }

    #[test]
    fn rows_become_one_batch_with_metadata_columns() {
        let t = schema(
            "t",
            &[
                ("id", ColumnType::Int64),
                ("name", ColumnType::Utf8),
                ("tags", ColumnType::List(Box::new(ColumnType::Int32))),
                ("span", ColumnType::Interval),
            ],
        );
        let mut buf = ChangeBuffer::new();
        {
            let mut row = buf.row(&t, meta(Op::Create, 0x10, 0));
            row.cell().unwrap().i64(1).unwrap();
            row.cell().unwrap().str("one").unwrap();
            let mut list = row.cell().unwrap().list().unwrap();
            list.element().i32(7).unwrap();
            list.element().null();
            drop(list);
            row.cell().unwrap().interval(1, 2, 3).unwrap();
        }
        {
            let mut row = buf.row(&t, meta(Op::Update, 0x10, 1));
            row.cell().unwrap().i64(1).unwrap();
            row.unchanged().unwrap();
            // tags and span left unwritten: null
        }
        {
            let mut row = buf.row(
                &t,
                RowMeta {
                    op: Op::Read,
                    position: Position { log: 0x0F, seq: 9 },
                    commit_ts: None,
                    txid: None,
                },
            );
            row.cell().unwrap().i64(2).unwrap();
        }
        assert_eq!(buf.rows(), 3);
        assert!(buf.bytes() > 3 * META_BYTES_PER_ROW);

        let batches = buf.take();
        assert!(buf.is_empty());
        assert_eq!(buf.bytes(), 0);
        assert_eq!(batches.len(), 1);
        let b = &batches[0].batch;
        assert_eq!(batches[0].segment, 0);
        assert_eq!(b.num_rows(), 3);
        assert_eq!(b.schema(), *t.arrow_schema());
        let op = b.column(0).as_string::<i32>();
        assert_eq!((op.value(0), op.value(1), op.value(2)), ("c", "u", "r"));
        assert_eq!(b.column(1).as_string::<i32>().value(0), "0000000000000010");
        assert_eq!(b.column(2).as_primitive::<Int64Type>().value(1), 1);
        assert!(b.column(3).is_null(2) && b.column(4).is_null(2));
        let unchanged = b.column(5).as_any().downcast_ref::<ListArray>().unwrap();
        assert_eq!(unchanged.value(0).len(), 0);
        assert_eq!(unchanged.value(1).as_string::<i32>().value(0), "name");
        assert!(b.column(7).is_null(1), "an unchanged cell is null");
        let tags = b.column(8).as_any().downcast_ref::<ListArray>().unwrap();
        let first = tags.value(0);
        let first = first.as_primitive::<Int32Type>();
        assert_eq!(first.len(), 2);
        assert_eq!(first.value(0), 7);
        assert!(first.is_null(1));
        assert!(tags.is_null(1) && tags.is_null(2));
        let span = b.column(9).as_any().downcast_ref::<StructArray>().unwrap();
        assert!(span.is_valid(0) && span.is_null(1));
        assert_eq!(span.column(2).as_primitive::<Int64Type>().value(0), 3);
    }

    #[test]
    fn a_schema_change_starts_a_new_segment_per_table() {
        let a1 = schema("a", &[("id", ColumnType::Int64)]);
        let a2 = schema("a", &[("id", ColumnType::Int64), ("x", ColumnType::Utf8)]);
        let a2_again = schema("a", &[("id", ColumnType::Int64), ("x", ColumnType::Utf8)]);
        let b = schema("b", &[("id", ColumnType::Int32)]);
        let mut buf = ChangeBuffer::new();
        buf.row(&a1, meta(Op::Create, 1, 0))
            .cell()
            .unwrap()
            .i64(1)
            .unwrap();
        buf.row(&b, meta(Op::Create, 1, 1))
            .cell()
            .unwrap()
            .i32(1)
            .unwrap();
        buf.row(&a2, meta(Op::Create, 2, 0))
            .cell()
            .unwrap()
            .i64(2)
            .unwrap();
        // An equal schema in another Arc stays in the same segment.
        buf.row(&a2_again, meta(Op::Create, 3, 0))
            .cell()
            .unwrap()
            .i64(3)
            .unwrap();
        let batches = buf.take();
        let summary: Vec<_> = batches
            .iter()
            .map(|t| {
                (
                    t.schema.table().name.clone(),
                    t.segment,
                    t.batch.num_rows(),
                    t.batch.num_columns(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("a".into(), 0, 1, 7),
                ("a".into(), 1, 2, 8),
                ("b".into(), 0, 1, 7)
            ]
        );
        // Segments restart at 0 after a take.
        buf.row(&a2, meta(Op::Create, 4, 0))
            .cell()
            .unwrap()
            .i64(4)
            .unwrap();
        assert_eq!(buf.take()[0].segment, 0);
    }

    #[test]
    fn type_mismatches_are_errors_and_rows_stay_aligned() {
        let t = schema("t", &[("id", ColumnType::Int64), ("n", ColumnType::Int32)]);
        let mut buf = ChangeBuffer::new();
        {
            let mut row = buf.row(&t, meta(Op::Create, 1, 0));
            let error = row.cell().unwrap().str("x").unwrap_err();
            assert_eq!(
                error,
                BufferError::TypeMismatch {
                    column: "id".into(),
                    expected: "int64",
                    found: "utf8"
                }
            );
            assert!(row.cell().unwrap().list().is_err());
            assert!(matches!(
                row.cell(),
                Err(BufferError::TooManyValues { columns: 2, .. })
            ));
        }
        let batches = buf.take();
        assert_eq!(batches[0].batch.num_rows(), 1);
        assert!(batches[0].batch.column(6).is_null(0));
        assert!(batches[0].batch.column(7).is_null(0));
    }

    #[test]
    fn positions_print_as_sixteen_hex_digits() {
        assert_eq!(&log_hex(0x16B3748), b"00000000016B3748");
        assert_eq!(&log_hex(u64::MAX), b"FFFFFFFFFFFFFFFF");
        assert_eq!(
            std::str::from_utf8(&log_hex(0xA0_0000_00FF)).unwrap(),
            Position {
                log: 0xA0_0000_00FF,
                seq: 0
            }
            .log_hex()
        );
    }

    #[test]
    fn take_releases_memory() {
        let t = schema("t", &[("id", ColumnType::Int64), ("s", ColumnType::Utf8)]);
        let mut buf = ChangeBuffer::new();
        let text = "x".repeat(1000);
        for i in 0..1000 {
            let mut row = buf.row(&t, meta(Op::Create, 1, i));
            row.cell().unwrap().i64(i as i64).unwrap();
            row.cell().unwrap().str(&text).unwrap();
        }
        assert!(buf.bytes() >= 1_000_000);
        let batches = buf.take();
        assert_eq!(batches[0].batch.num_rows(), 1000);
        assert!(buf.tables.is_empty(), "no builder survives a take");
    }
}
