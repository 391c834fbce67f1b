//! Table schemas as the change buffer sees them: source columns mapped to a source-agnostic
//! [`ColumnType`], and the Arrow schema of the change files (metadata columns first).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow_schema::extension::{EXTENSION_TYPE_METADATA_KEY, EXTENSION_TYPE_NAME_KEY};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

use super::TableName;

/// Names of the metadata columns that precede the table's own columns in every change file, in
/// order: `_op, _position, _seq, _commit_ts, _txid, _unchanged`.
pub const METADATA_COLUMNS: [&str; 6] = [
    "_op",
    "_position",
    "_seq",
    "_commit_ts",
    "_txid",
    "_unchanged",
];

/// Field metadata key carrying the column's type as the source names it (e.g.
/// `numeric(10,2)`), so readers see what a text fallback column really holds.
pub const SOURCE_TYPE_KEY: &str = "lakestream.source_type";

/// Field metadata key set to `"true"` on the columns that identify a row (primary key).
pub const KEY_KEY: &str = "lakestream.key";

/// Schema metadata key carrying `schema.table`.
pub const TABLE_KEY: &str = "lakestream.table";

/// Schema metadata key carrying the schema's fingerprint as 16 hex digits.
pub const FINGERPRINT_KEY: &str = "lakestream.fingerprint";

/// A column's logical type, independent of any source database. Each maps to exactly one Arrow
/// type ([`ColumnType::arrow_type`]); sinks derive their own representation from that.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// Arrow `Boolean`.
    Bool,
    /// Arrow `Int16`.
    Int16,
    /// Arrow `Int32`.
    Int32,
    /// Arrow `Int64`.
    Int64,
    /// Arrow `Float32` (NaN and infinities kept).
    Float32,
    /// Arrow `Float64` (NaN and infinities kept).
    Float64,
    /// Arrow `Decimal128(precision, scale)`; `1 <= precision <= 38`, `0 <= scale <= precision`.
    Decimal {
        /// Total number of significant digits.
        precision: u8,
        /// Digits after the decimal point.
        scale: i8,
    },
    /// Arrow `Utf8`.
    Utf8,
    /// Arrow `Utf8` holding JSON text, tagged with the canonical `arrow.json` extension type.
    Json,
    /// Arrow `Binary`.
    Binary,
    /// Arrow `Date32` (days since 1970-01-01).
    Date,
    /// Arrow `Time64(µs)` (microseconds since midnight).
    Time,
    /// Arrow `Timestamp(µs)` without time zone (wall-clock time).
    Timestamp,
    /// Arrow `Timestamp(µs, "+00:00")` (an instant; see [`instant_type`]).
    TimestampTz,
    /// Arrow `Struct{months: Int32, days: Int32, micros: Int64}`: the three independent parts of
    /// a calendar interval (a month is not a fixed number of days, nor a day of microseconds).
    Interval,
    /// Arrow `List` of the element type (elements nullable). Elements are never lists.
    List(Box<ColumnType>),
    /// Arrow `Utf8` holding the source's own text representation of a type with no faithful
    /// logical mapping (geometric types, ranges, multi-dimensional arrays …).
    Text,
}

impl ColumnType {
    /// The Arrow type of this column in change files.
    pub fn arrow_type(&self) -> DataType {
        match self {
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Int16 => DataType::Int16,
            ColumnType::Int32 => DataType::Int32,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float32 => DataType::Float32,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
            ColumnType::Utf8 | ColumnType::Json | ColumnType::Text => DataType::Utf8,
            ColumnType::Binary => DataType::Binary,
            ColumnType::Date => DataType::Date32,
            ColumnType::Time => DataType::Time64(TimeUnit::Microsecond),
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            ColumnType::TimestampTz => instant_type(),
            ColumnType::Interval => DataType::Struct(interval_fields()),
            ColumnType::List(element) => DataType::List(Arc::new(element.element_field())),
        }
    }

    /// The nullable `item` field of a list whose elements have this type.
    pub(crate) fn element_field(&self) -> Field {
        self.arrow_field("item", HashMap::new())
    }

    /// A nullable Arrow field of this type; JSON columns get the `arrow.json` extension tag.
    fn arrow_field(&self, name: &str, mut metadata: HashMap<String, String>) -> Field {
        if *self == ColumnType::Json {
            metadata.insert(EXTENSION_TYPE_NAME_KEY.to_owned(), "arrow.json".to_owned());
            metadata.insert(EXTENSION_TYPE_METADATA_KEY.to_owned(), String::new());
        }
        Field::new(name, self.arrow_type(), true).with_metadata(metadata)
    }
}

impl fmt::Display for ColumnType {
    /// A short canonical spelling (`decimal(10,2)`, `list<int32>` …), also the input of the
    /// schema fingerprint, so it must never change for an existing type.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnType::Bool => f.write_str("bool"),
            ColumnType::Int16 => f.write_str("int16"),
            ColumnType::Int32 => f.write_str("int32"),
            ColumnType::Int64 => f.write_str("int64"),
            ColumnType::Float32 => f.write_str("float32"),
            ColumnType::Float64 => f.write_str("float64"),
            ColumnType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            ColumnType::Utf8 => f.write_str("utf8"),
            ColumnType::Json => f.write_str("json"),
            ColumnType::Binary => f.write_str("binary"),
            ColumnType::Date => f.write_str("date"),
            ColumnType::Time => f.write_str("time"),
            ColumnType::Timestamp => f.write_str("timestamp"),
            ColumnType::TimestampTz => f.write_str("timestamptz"),
            ColumnType::Interval => f.write_str("interval"),
            ColumnType::List(element) => write!(f, "list<{element}>"),
            ColumnType::Text => f.write_str("text"),
        }
    }
}

/// The child fields of an interval struct: `months: int32, days: int32, micros: int64`, all
/// non-null (the struct itself carries the null).
pub(crate) fn interval_fields() -> Fields {
    Fields::from(vec![
        Field::new("months", DataType::Int32, false),
        Field::new("days", DataType::Int32, false),
        Field::new("micros", DataType::Int64, false),
    ])
}

/// One column of a source table.
#[derive(Debug, Clone)]
pub struct Column {
    /// The column's name in the source (and in the lake).
    pub name: String,
    /// The type as the source spells it (`numeric(10,2)`, `character varying(20)`, `mood` …),
    /// kept as field metadata.
    pub source_type: String,
    /// The logical type the values are written as.
    pub column_type: ColumnType,
    /// Part of the row's identity (primary key, or replica identity when there is none).
    pub key: bool,
    /// Whether the source declares the column nullable, when known. Informational only: change
    /// files always allow nulls (a delete carries only the key) and schema comparison ignores it.
    pub nullable: Option<bool>,
}

impl Column {
    /// Whether two columns are the same for the purpose of schema changes (nullability aside).
    fn same_as(&self, other: &Column) -> bool {
        self.name == other.name
            && self.source_type == other.source_type
            && self.column_type == other.column_type
            && self.key == other.key
    }
}

/// Why a [`TableSchema`] could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SchemaError {
    /// Two columns share a name.
    #[error("table {table} has two columns named {column:?}")]
    DuplicateColumn {
        /// The table.
        table: TableName,
        /// The repeated name.
        column: String,
    },
    /// A column is named like one of the change files' metadata columns.
    #[error(
        "column {column:?} of table {table} collides with Lakestream's metadata column of the same name"
    )]
    ReservedColumn {
        /// The table.
        table: TableName,
        /// The colliding name.
        column: String,
    },
    /// A type outside what [`ColumnType`] documents (list of lists, decimal out of range).
    #[error("column {column:?} of table {table} has unsupported type {column_type}")]
    UnsupportedType {
        /// The table.
        table: TableName,
        /// The column.
        column: String,
        /// The offending type.
        column_type: ColumnType,
    },
}

/// A table's shape: its name, its columns, the Arrow schema of its change files and a stable
/// fingerprint. Immutable and shared (`Arc`) between the source, the buffer and the sinks.
#[derive(Debug, Clone)]
pub struct TableSchema {
    /// The source table.
    table: TableName,
    /// Its columns, in source order.
    columns: Vec<Column>,
    /// Metadata columns then the table's columns.
    arrow: SchemaRef,
    /// FNV-1a over the canonical description; see [`TableSchema::fingerprint`].
    fingerprint: u64,
}

impl TableSchema {
    /// Validates the columns (unique names, none reserved, supported types) and derives the
    /// Arrow schema and fingerprint.
    pub fn new(table: TableName, columns: Vec<Column>) -> Result<Self, SchemaError> {
        for (i, column) in columns.iter().enumerate() {
            if METADATA_COLUMNS.contains(&column.name.as_str()) {
                return Err(SchemaError::ReservedColumn {
                    table,
                    column: column.name.clone(),
                });
            }
            if columns[..i].iter().any(|c| c.name == column.name) {
                return Err(SchemaError::DuplicateColumn {
                    table,
                    column: column.name.clone(),
                });
            }
            if !supported(&column.column_type, false) {
                return Err(SchemaError::UnsupportedType {
                    table,
                    column: column.name.clone(),
                    column_type: column.column_type.clone(),
                });
            }
        }
        let fingerprint = fingerprint(&table, &columns);
        let mut fields = change_file_fields();
        fields.extend(columns.iter().map(|column| {
            let mut metadata =
                HashMap::from([(SOURCE_TYPE_KEY.to_owned(), column.source_type.clone())]);
            if column.key {
                metadata.insert(KEY_KEY.to_owned(), "true".to_owned());
            }
            column.column_type.arrow_field(&column.name, metadata)
        }));
        let metadata = HashMap::from([
            (TABLE_KEY.to_owned(), table.to_string()),
            (FINGERPRINT_KEY.to_owned(), format!("{fingerprint:016x}")),
        ]);
        let arrow = Arc::new(Schema::new_with_metadata(fields, metadata));
        Ok(TableSchema {
            table,
            columns,
            arrow,
            fingerprint,
        })
    }

    /// The source table.
    pub fn table(&self) -> &TableName {
        &self.table
    }

    /// The table's columns in source order (metadata columns excluded).
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The Arrow schema of the change files: [`METADATA_COLUMNS`] then the table's columns.
    pub fn arrow_schema(&self) -> &SchemaRef {
        &self.arrow
    }

    /// A hash of the table name and each column's name, source type, logical type and key flag
    /// (not nullability), stable across processes and releases: equal fingerprints mean the same
    /// change-file shape.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Whether `other` has the same shape (what decides a new segment and a schema-change event).
    pub fn same_shape(&self, other: &TableSchema) -> bool {
        self.fingerprint == other.fingerprint
            && self.table == other.table
            && self.columns.len() == other.columns.len()
            && self
                .columns
                .iter()
                .zip(&other.columns)
                .all(|(a, b)| a.same_as(b))
    }
}

/// The metadata fields that start every change file: `_op utf8, _position utf8, _seq int64,
/// _commit_ts timestamp(µs, "+00:00"), _txid int64, _unchanged list<utf8>`.
pub fn change_file_fields() -> Vec<Field> {
    vec![
        Field::new("_op", DataType::Utf8, false),
        Field::new("_position", DataType::Utf8, false),
        Field::new("_seq", DataType::Int64, false),
        Field::new("_commit_ts", instant_type(), true),
        Field::new("_txid", DataType::Int64, true),
        Field::new("_unchanged", unchanged_type(), false),
    ]
}

/// `list<utf8>` with non-null items: the type of `_unchanged`.
pub(crate) fn unchanged_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, false)))
}

/// Whether the type is within what [`ColumnType`] promises (decimal bounds, no nested lists).
fn supported(column_type: &ColumnType, in_list: bool) -> bool {
    match column_type {
        ColumnType::Decimal { precision, scale } => {
            (1..=38).contains(precision) && *scale >= 0 && (*scale as u8) <= *precision
        }
        ColumnType::List(element) => !in_list && supported(element, true),
        _ => true,
    }
}

/// FNV-1a (64-bit) over `table \0 (name \0 source_type \0 type \0 key \0)*`: a hash whose value
/// is defined here, not by the standard library, so it stays stable.
fn fingerprint(table: &TableName, columns: &[Column]) -> u64 {
    let mut hash = Fnv::default();
    hash.write(table.schema.as_bytes());
    hash.write(b".");
    hash.write(table.name.as_bytes());
    hash.write(b"\0");
    for column in columns {
        hash.write(column.name.as_bytes());
        hash.write(b"\0");
        hash.write(column.source_type.as_bytes());
        hash.write(b"\0");
        hash.write(column.column_type.to_string().as_bytes());
        hash.write(b"\0");
        hash.write(if column.key { b"k\0" } else { b"-\0" });
    }
    hash.0
}

/// The 64-bit FNV-1a hash state.
struct Fnv(u64);

impl Default for Fnv {
    /// The FNV-1a 64-bit offset basis.
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    /// Mixes bytes in.
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The Arrow type of an instant: microseconds with the zone written as the offset `+00:00`.
/// Every writer understands an offset (JSON Lines cannot render a zone name such as `UTC`
/// without a time-zone database), and Parquet still marks the column as adjusted to UTC.
pub fn instant_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("+00:00")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, column_type: ColumnType) -> Column {
        Column {
            name: name.to_owned(),
            source_type: column_type.to_string(),
            column_type,
            key: name == "id",
            nullable: None,
        }
    }

    #[test]
    fn arrow_schema_has_metadata_columns_first_and_json_tag() {
        let schema = TableSchema::new(
            TableName::new("public", "t"),
            vec![
                column("id", ColumnType::Int64),
                column("doc", ColumnType::Json),
                column("tags", ColumnType::List(Box::new(ColumnType::Utf8))),
                column("span", ColumnType::Interval),
                column(
                    "price",
                    ColumnType::Decimal {
                        precision: 10,
                        scale: 2,
                    },
                ),
                column("at", ColumnType::TimestampTz),
            ],
        )
        .expect("schema");
        let arrow = schema.arrow_schema();
        let names: Vec<_> = arrow.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            [
                "_op",
                "_position",
                "_seq",
                "_commit_ts",
                "_txid",
                "_unchanged",
                "id",
                "doc",
                "tags",
                "span",
                "price",
                "at"
            ]
        );
        let doc = arrow.field_with_name("doc").expect("doc");
        assert_eq!(doc.data_type(), &DataType::Utf8);
        assert_eq!(
            doc.metadata()
                .get(EXTENSION_TYPE_NAME_KEY)
                .map(String::as_str),
            Some("arrow.json")
        );
        assert_eq!(
            arrow
                .field_with_name("id")
                .expect("id")
                .metadata()
                .get(KEY_KEY)
                .map(String::as_str),
            Some("true")
        );
        assert_eq!(
            arrow.field_with_name("price").expect("price").data_type(),
            &DataType::Decimal128(10, 2)
        );
        assert!(matches!(
            arrow.field_with_name("span").expect("span").data_type(),
            DataType::Struct(fields) if fields.len() == 3
        ));
        assert_eq!(
            arrow.metadata().get(TABLE_KEY).map(String::as_str),
            Some("public.t")
        );
    }

    #[test]
    fn fingerprint_is_stable_and_ignores_nullability() {
        let columns = vec![
            column("id", ColumnType::Int64),
            column("name", ColumnType::Utf8),
        ];
        let a = TableSchema::new(TableName::new("public", "t"), columns.clone()).expect("a");
        // Pinned: a change here would split every existing pipeline's files on upgrade.
        assert_eq!(
            a.fingerprint(),
            0x010c_8d8c_7b43_120c,
            "{:016x}",
            a.fingerprint()
        );
        let mut nullable = columns.clone();
        nullable[1].nullable = Some(false);
        let b = TableSchema::new(TableName::new("public", "t"), nullable).expect("b");
        assert!(a.same_shape(&b));
        let mut retyped = columns;
        retyped[1].column_type = ColumnType::Text;
        let c = TableSchema::new(TableName::new("public", "t"), retyped).expect("c");
        assert!(!a.same_shape(&c));
        assert_ne!(a.fingerprint(), c.fingerprint());
    }

    #[test]
    fn rejects_reserved_duplicate_and_unsupported_columns() {
        let table = TableName::new("public", "t");
        assert!(matches!(
            TableSchema::new(table.clone(), vec![column("_op", ColumnType::Utf8)]),
            Err(SchemaError::ReservedColumn { .. })
        ));
        assert!(matches!(
            TableSchema::new(
                table.clone(),
                vec![
                    column("a", ColumnType::Utf8),
                    column("a", ColumnType::Int32)
                ]
            ),
            Err(SchemaError::DuplicateColumn { .. })
        ));
        let nested = ColumnType::List(Box::new(ColumnType::List(Box::new(ColumnType::Int32))));
        assert!(matches!(
            TableSchema::new(table.clone(), vec![column("a", nested)]),
            Err(SchemaError::UnsupportedType { .. })
        ));
        assert!(matches!(
            TableSchema::new(
                table,
                vec![column(
                    "a",
                    ColumnType::Decimal {
                        precision: 39,
                        scale: 0
                    }
                )]
            ),
            Err(SchemaError::UnsupportedType { .. })
        ));
    }
}
