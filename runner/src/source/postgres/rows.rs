//! Writing decoded rows into the change buffer, shared by the backfill and the stream: the
//! per-row decision against the resume position and the limits, and the per-cell decoding with
//! its error and warning policy.

use std::collections::HashSet;

use crate::change::{Cell, ChangeBuffer, Position};
use crate::source::{ErrorKind, Limits, SourceError};

use super::binary::write_binary_value;
use super::catalog::{SourceColumn, TableState};
use super::text::{Scratch, ValueError, Written, write_value};

/// What to do with the next row at a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Already in the lake (at or before the resume position): count it, do not write it.
    Skip,
    /// Write it.
    Write,
    /// Beyond `stop_after`: return `Stopped` before it.
    Stop,
    /// The buffer is over budget: return `BufferFull` before it.
    Full,
}

/// The decision for a row at `position`.
pub(crate) fn gate(
    position: Position,
    committed: Option<Position>,
    limits: &Limits,
    buf: &ChangeBuffer,
) -> Gate {
    if limits.stop_after.is_some_and(|stop| position > stop) {
        Gate::Stop
    } else if committed.is_some_and(|c| position <= c) {
        Gate::Skip
    } else if !buf.is_empty() && buf.bytes() >= limits.max_buffer_bytes {
        Gate::Full
    } else {
        Gate::Write
    }
}

/// Decoding context shared by every row: reusable buffers and the columns already warned about.
#[derive(Debug, Default)]
pub(crate) struct Decoding {
    /// Buffers for element unescaping and bytea decoding.
    pub(crate) scratch: Scratch,
    /// `(table index, column index)` pairs already reported as holding unrepresentable values.
    warned: HashSet<(usize, usize)>,
}

impl Decoding {
    /// Decodes `text` for column `column` of `table` into `cell`. Unrepresentable values become
    /// null with one warning per column; undecodable ones are a fatal data error naming the
    /// column and type (never the value).
    pub(crate) fn write(
        &mut self,
        table_index: usize,
        table: &TableState,
        column: usize,
        text: &[u8],
        cell: Cell<'_>,
    ) -> Result<(), SourceError> {
        let source = source_column(table, column)?;
        let written = write_value(&source.decoder, text, cell, &mut self.scratch);
        self.outcome(table_index, table, column, written)
    }

    /// [`Decoding::write`] for a field of the backfill's binary `COPY`, carried as the column's
    /// [`CopyFormat`](super::types::CopyFormat) says.
    pub(crate) fn write_copied(
        &mut self,
        table_index: usize,
        table: &TableState,
        column: usize,
        bytes: &[u8],
        cell: Cell<'_>,
    ) -> Result<(), SourceError> {
        let source = source_column(table, column)?;
        let written =
            write_binary_value(&source.decoder, source.copy, bytes, cell, &mut self.scratch);
        self.outcome(table_index, table, column, written)
    }

    /// Applies the warning and error policy to a cell's decoding.
    fn outcome(
        &mut self,
        table_index: usize,
        table: &TableState,
        column: usize,
        written: Result<Written, ValueError>,
    ) -> Result<(), SourceError> {
        match written {
            Ok(Written::Value) => Ok(()),
            Ok(Written::Unrepresentable) => {
                if self.warned.insert((table_index, column)) {
                    let spec = &table.schema.columns()[column];
                    tracing::warn!(
                        table = %table.name(),
                        column = %spec.name,
                        source_type = %spec.source_type,
                        lake_type = %spec.column_type,
                        "a value cannot be represented in the lake type and was written as null \
                         (NaN in a decimal column, a timestamp beyond year 294246, or a \
                         multi-dimensional array in a list column); further ones are not reported"
                    );
                }
                Ok(())
            }
            Err(error) => {
                let spec = &table.schema.columns()[column];
                let kind = match error {
                    ValueError::Invalid(_) => ErrorKind::Data,
                    ValueError::Buffer(_) => ErrorKind::Protocol,
                };
                Err(SourceError::with_source(
                    kind,
                    format!(
                        "could not decode column {} of {} (type {}): {error}",
                        spec.name,
                        table.name(),
                        spec.source_type
                    ),
                    error,
                ))
            }
        }
    }
}

/// Column `column` of `table`, or a protocol error when a row has more columns than the schema.
fn source_column(table: &TableState, column: usize) -> Result<&SourceColumn, SourceError> {
    table.columns.get(column).ok_or_else(|| {
        SourceError::new(
            ErrorKind::Protocol,
            format!(
                "a row of {} has more columns than its schema ({})",
                table.name(),
                table.columns.len()
            ),
        )
    })
}

/// A change-buffer error as a source error (a bug in the mapping, never the data).
pub(crate) fn buffer_error(error: crate::change::BufferError) -> SourceError {
    SourceError::with_source(ErrorKind::Protocol, error.to_string(), error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_follow_the_contract() {
        let limits = |stop: Option<Position>| Limits {
            deadline: tokio::time::Instant::now(),
            max_buffer_bytes: 0,
            stop_after: stop,
        };
        let buf = ChangeBuffer::new();
        let p = |log, seq| Position { log, seq };
        assert_eq!(
            gate(p(5, 0), Some(p(5, 0)), &limits(None), &buf),
            Gate::Skip
        );
        assert_eq!(
            gate(p(5, 1), Some(p(5, 0)), &limits(None), &buf),
            Gate::Write,
            "an empty buffer always takes a row"
        );
        assert_eq!(
            gate(p(5, 2), None, &limits(Some(p(5, 1))), &buf),
            Gate::Stop
        );
        assert_eq!(
            gate(p(5, 1), None, &limits(Some(p(5, 1))), &buf),
            Gate::Write
        );
    }
}
