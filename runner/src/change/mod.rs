//! The in-memory change buffer: what sources append to and sinks read from.
//!
//! Source- and sink-agnostic. A source describes each table once as a [`TableSchema`]
//! (columns mapped to a logical [`ColumnType`]) and appends rows straight into typed Arrow
//! builders through [`ChangeBuffer::row`], so no row is ever materialised as a tree of values.
//! [`ChangeBuffer::take`] turns everything into one [`TableBatch`] per table segment and empties
//! the buffer. See `ARCHITECTURE.md` ("Positions", "Change buffer").

mod buffer;
mod column;
mod schema;

use std::fmt;

pub use buffer::{BufferError, Cell, ChangeBuffer, ListCell, RowMeta, RowWriter, TableBatch};
/// Positions are shared with the control store's checkpoints, so the type lives in the spec
/// crate; see `ARCHITECTURE.md` ("Positions").
pub use lakestream_spec::Position;
pub use schema::{
    Column, ColumnType, METADATA_COLUMNS, SchemaError, TableSchema, change_file_fields,
    instant_type,
};

/// The kind of a change, written to the lake's `_op` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `r`: a row read by a backfill (snapshot).
    Read,
    /// `c`: an insert.
    Create,
    /// `u`: an update (the new row).
    Update,
    /// `d`: a delete (the old key, or the whole old row under `REPLICA IDENTITY FULL`).
    Delete,
    /// `t`: a truncate of the whole table (all columns null).
    Truncate,
}

impl Op {
    /// The one-letter code written to `_op`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Op::Read => "r",
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Truncate => "t",
        }
    }
}

impl fmt::Display for Op {
    /// The one-letter code, as in the lake.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A source table, `schema.name` (PostgreSQL schema; MySQL database).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableName {
    /// The namespace: PostgreSQL schema, MySQL database.
    pub schema: String,
    /// The table's name inside its namespace.
    pub name: String,
}

impl TableName {
    /// A table name from its namespace and name (taken verbatim, case-sensitive).
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        TableName {
            schema: schema.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for TableName {
    /// `schema.name`, unquoted (for messages and folder names).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_have_one_letter_codes() {
        let codes: Vec<_> = [Op::Read, Op::Create, Op::Update, Op::Delete, Op::Truncate]
            .iter()
            .map(|op| op.as_str())
            .collect();
        assert_eq!(codes, ["r", "c", "u", "d", "t"]);
    }
}
