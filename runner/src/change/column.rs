//! One typed Arrow builder per [`ColumnType`], so a source's values go straight into Arrow
//! buffers.

use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ListArray, StructArray};
use arrow_buffer::{NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field};

use super::schema::{ColumnType, interval_fields};

/// The builder of one column (or of a list's elements).
#[derive(Debug)]
pub(crate) enum ColumnBuilder {
    /// [`ColumnType::Bool`].
    Bool(BooleanBuilder),
    /// [`ColumnType::Int16`].
    Int16(Int16Builder),
    /// [`ColumnType::Int32`].
    Int32(Int32Builder),
    /// [`ColumnType::Int64`].
    Int64(Int64Builder),
    /// [`ColumnType::Float32`].
    Float32(Float32Builder),
    /// [`ColumnType::Float64`].
    Float64(Float64Builder),
    /// [`ColumnType::Decimal`] (precision and scale set on the builder).
    Decimal(Decimal128Builder),
    /// [`ColumnType::Utf8`], [`ColumnType::Json`] and [`ColumnType::Text`].
    Utf8(StringBuilder),
    /// [`ColumnType::Binary`].
    Binary(BinaryBuilder),
    /// [`ColumnType::Date`].
    Date(Date32Builder),
    /// [`ColumnType::Time`].
    Time(Time64MicrosecondBuilder),
    /// [`ColumnType::Timestamp`] and [`ColumnType::TimestampTz`] (time zone set on the builder).
    Timestamp(TimestampMicrosecondBuilder),
    /// [`ColumnType::Interval`].
    Interval(Box<IntervalBuilder>),
    /// [`ColumnType::List`].
    List(Box<ListBuilder>),
}

/// The three child builders of an interval struct plus the struct's own validity.
#[derive(Debug)]
pub(crate) struct IntervalBuilder {
    /// Months.
    pub(crate) months: Int32Builder,
    /// Days.
    pub(crate) days: Int32Builder,
    /// Microseconds.
    pub(crate) micros: Int64Builder,
    /// Which structs are valid.
    pub(crate) nulls: NullBufferBuilder,
}

/// A list column: offsets into the element builder plus the lists' validity.
#[derive(Debug)]
pub(crate) struct ListBuilder {
    /// `offsets[i]..offsets[i + 1]` are the elements of list `i`; starts with `[0]`.
    pub(crate) offsets: Vec<i32>,
    /// Which lists are valid.
    pub(crate) nulls: NullBufferBuilder,
    /// The element builder.
    pub(crate) elements: ColumnBuilder,
    /// The element field (nullable, named `item`).
    pub(crate) field: Arc<Field>,
}

impl ColumnBuilder {
    /// An empty builder for `column_type`.
    pub(crate) fn new(column_type: &ColumnType) -> Self {
        match column_type {
            ColumnType::Bool => ColumnBuilder::Bool(BooleanBuilder::new()),
            ColumnType::Int16 => ColumnBuilder::Int16(Int16Builder::new()),
            ColumnType::Int32 => ColumnBuilder::Int32(Int32Builder::new()),
            ColumnType::Int64 => ColumnBuilder::Int64(Int64Builder::new()),
            ColumnType::Float32 => ColumnBuilder::Float32(Float32Builder::new()),
            ColumnType::Float64 => ColumnBuilder::Float64(Float64Builder::new()),
            ColumnType::Decimal { precision, scale } => ColumnBuilder::Decimal(
                Decimal128Builder::new().with_data_type(DataType::Decimal128(*precision, *scale)),
            ),
            ColumnType::Utf8 | ColumnType::Json | ColumnType::Text => {
                ColumnBuilder::Utf8(StringBuilder::new())
            }
            ColumnType::Binary => ColumnBuilder::Binary(BinaryBuilder::new()),
            ColumnType::Date => ColumnBuilder::Date(Date32Builder::new()),
            ColumnType::Time => ColumnBuilder::Time(Time64MicrosecondBuilder::new()),
            ColumnType::Timestamp | ColumnType::TimestampTz => ColumnBuilder::Timestamp(
                TimestampMicrosecondBuilder::new().with_data_type(column_type.arrow_type()),
            ),
            ColumnType::Interval => ColumnBuilder::Interval(Box::new(IntervalBuilder {
                months: Int32Builder::new(),
                days: Int32Builder::new(),
                micros: Int64Builder::new(),
                nulls: NullBufferBuilder::new(0),
            })),
            ColumnType::List(element) => ColumnBuilder::List(Box::new(ListBuilder {
                offsets: vec![0],
                nulls: NullBufferBuilder::new(0),
                elements: ColumnBuilder::new(element),
                field: Arc::new(element.element_field()),
            })),
        }
    }

    /// Appends a null.
    pub(crate) fn append_null(&mut self) {
        match self {
            ColumnBuilder::Bool(b) => b.append_null(),
            ColumnBuilder::Int16(b) => b.append_null(),
            ColumnBuilder::Int32(b) => b.append_null(),
            ColumnBuilder::Int64(b) => b.append_null(),
            ColumnBuilder::Float32(b) => b.append_null(),
            ColumnBuilder::Float64(b) => b.append_null(),
            ColumnBuilder::Decimal(b) => b.append_null(),
            ColumnBuilder::Utf8(b) => b.append_null(),
            ColumnBuilder::Binary(b) => b.append_null(),
            ColumnBuilder::Date(b) => b.append_null(),
            ColumnBuilder::Time(b) => b.append_null(),
            ColumnBuilder::Timestamp(b) => b.append_null(),
            ColumnBuilder::Interval(b) => {
                b.months.append_value(0);
                b.days.append_value(0);
                b.micros.append_value(0);
                b.nulls.append_null();
            }
            ColumnBuilder::List(b) => {
                let end = *b.offsets.last().unwrap_or(&0);
                b.offsets.push(end);
                b.nulls.append_null();
            }
        }
    }

    /// The name of the logical kind this builder accepts, for type-mismatch errors.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            ColumnBuilder::Bool(_) => "bool",
            ColumnBuilder::Int16(_) => "int16",
            ColumnBuilder::Int32(_) => "int32",
            ColumnBuilder::Int64(_) => "int64",
            ColumnBuilder::Float32(_) => "float32",
            ColumnBuilder::Float64(_) => "float64",
            ColumnBuilder::Decimal(_) => "decimal",
            ColumnBuilder::Utf8(_) => "utf8",
            ColumnBuilder::Binary(_) => "binary",
            ColumnBuilder::Date(_) => "date",
            ColumnBuilder::Time(_) => "time",
            ColumnBuilder::Timestamp(_) => "timestamp",
            ColumnBuilder::Interval(_) => "interval",
            ColumnBuilder::List(_) => "list",
        }
    }

    /// Turns everything appended so far into an array and leaves the builder empty (its
    /// buffers move into the array, so nothing is retained).
    pub(crate) fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::Int16(b) => Arc::new(b.finish()),
            ColumnBuilder::Int32(b) => Arc::new(b.finish()),
            ColumnBuilder::Int64(b) => Arc::new(b.finish()),
            ColumnBuilder::Float32(b) => Arc::new(b.finish()),
            ColumnBuilder::Float64(b) => Arc::new(b.finish()),
            ColumnBuilder::Decimal(b) => Arc::new(b.finish()),
            ColumnBuilder::Utf8(b) => Arc::new(b.finish()),
            ColumnBuilder::Binary(b) => Arc::new(b.finish()),
            ColumnBuilder::Date(b) => Arc::new(b.finish()),
            ColumnBuilder::Time(b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(b) => Arc::new(b.finish()),
            ColumnBuilder::Interval(b) => Arc::new(StructArray::new(
                interval_fields(),
                vec![
                    Arc::new(b.months.finish()),
                    Arc::new(b.days.finish()),
                    Arc::new(b.micros.finish()),
                ],
                b.nulls.finish(),
            )),
            ColumnBuilder::List(b) => {
                let offsets = std::mem::replace(&mut b.offsets, vec![0]);
                let values = b.elements.finish();
                Arc::new(ListArray::new(
                    Arc::clone(&b.field),
                    OffsetBuffer::new(ScalarBuffer::from(offsets)),
                    values,
                    b.nulls.finish(),
                ))
            }
        }
    }
}
