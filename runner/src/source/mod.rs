//! Sources: one module per database, all behind the [`Source`] trait the pipeline drives.
//!
//! The contract (`ARCHITECTURE.md`, "Source contract"):
//!
//! 1. [`Source::start`] connects, prepares what the database needs (PostgreSQL: publication and
//!    replication slot) and, when [`Resume::backfill`] asks for it, pins a snapshot consistent
//!    with the change stream.
//! 2. [`Source::next`] appends rows into the pipeline's [`ChangeBuffer`] until something the
//!    pipeline must act on ([`Event`]): the deadline, a full buffer, the replay limit, a schema
//!    change, or the end of the backfill. It is cancel-safe only at those return points; the
//!    pipeline never drops it mid-way.
//! 3. After flushing the buffer and committing the checkpoint the pipeline calls
//!    [`Source::ack`] with the log coordinate [`Source::progress`] reported as safe when it took
//!    the buffer; the source reports it upstream (PostgreSQL: the slot's `confirmed_flush_lsn`)
//!    and never anything beyond it.
//!
//! Errors carry an [`ErrorKind`]; [`SourceError::retryable`] is the one question the pipeline's
//! retry policy asks. After any error the pipeline drops the source (or calls `start` again) and
//! resumes from its checkpoint.

pub mod postgres;

use std::error::Error as StdError;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::change::{ChangeBuffer, Position, TableName, TableSchema};

/// Where a (re)started source picks up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resume {
    /// The last position durably in the lake: rows at or before it are skipped (a replay after a
    /// crash re-reads them from the source). `None` on a fresh pipeline.
    pub committed: Option<Position>,
    /// The log coordinate last acknowledged by the pipeline's checkpoint: streaming restarts
    /// here. `None` when nothing was acknowledged yet (the source then starts where its slot is).
    pub ack: Option<u64>,
    /// Take a fresh snapshot (backfill) consistent with the stream before streaming. The rows it
    /// reads sort after everything streamed before.
    pub backfill: bool,
}

/// Limits of one [`Source::next`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Return [`Event::Deadline`] at this instant (at the latest at the next row boundary).
    pub deadline: tokio::time::Instant,
    /// Return [`Event::BufferFull`] once the buffer holds at least this many bytes
    /// ([`ChangeBuffer::bytes`]); an empty buffer always accepts one row, so progress is made
    /// whatever the budget.
    pub max_buffer_bytes: usize,
    /// Replay of an interrupted flush: return [`Event::Stopped`] right after the row at this
    /// position (or before the first row beyond it), so the buffer ends exactly where the
    /// interrupted flush's intent said.
    pub stop_after: Option<Position>,
}

/// What [`Source::start`] found and prepared.
#[derive(Debug, Clone)]
pub struct Started {
    /// The included tables' schemas as the source sees them now (inside the snapshot when a
    /// backfill runs): the baseline that [`Event::SchemaChanged`] is relative to.
    pub tables: Vec<Arc<TableSchema>>,
    /// Whether [`Source::next`] first runs a backfill (ended by [`Event::BackfillDone`]).
    pub backfill: bool,
    /// The log coordinate streaming starts from (PostgreSQL: an LSN).
    pub stream_from: u64,
    /// The source created its change log cursor (PostgreSQL: the replication slot) just now,
    /// without a snapshot: changes committed before [`Started::stream_from`] are not captured.
    /// The pipeline reports it; a backfill is the way to get them.
    pub capture_starts_now: bool,
}

/// Why [`Source::next`] returned. The buffer holds every row appended so far; none is half
/// written.
#[derive(Debug, Clone)]
pub enum Event {
    /// [`Limits::deadline`] passed: flush what is buffered (possibly part of a transaction; the
    /// rest follows in the next call) and call `next` again.
    Deadline,
    /// The buffer reached [`Limits::max_buffer_bytes`]: flush, then call `next` again. The source
    /// resumes exactly where it stopped, even in the middle of a transaction or a table copy.
    BufferFull,
    /// The row at [`Limits::stop_after`] was appended (or the stream passed it): the buffer ends
    /// exactly there. Calling `next` again continues after it.
    Stopped,
    /// A table's columns changed (added, dropped, retyped, key changed). Returned before any row
    /// with the new shape is appended; rows appended later land in a new buffer segment. The
    /// pipeline applies its policy: evolve (call `next` again) or fail (stop).
    SchemaChanged {
        /// The table.
        table: TableName,
        /// Its schema until now.
        before: Arc<TableSchema>,
        /// Its schema from now on.
        after: Arc<TableSchema>,
    },
    /// Every table's snapshot rows were appended; the next call streams changes from the
    /// snapshot's consistent point, with no gap and no overlap.
    BackfillDone,
}

/// Where the source stands, for the pipeline's checkpoint and status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// The position of the last row appended to a buffer (or skipped as already committed).
    pub position: Option<Position>,
    /// The log coordinate that may be acknowledged once everything appended so far is durable:
    /// every change before it is in the buffer or in earlier flushes (or belongs to no included
    /// table). On an idle or fully filtered database it still advances, so the slot does too.
    /// `None` until something is safe (for instance during a backfill).
    pub ack: Option<u64>,
    /// The last coordinate acknowledged upstream.
    pub acked: Option<u64>,
    /// Bytes of change log between the server's end (as last reported by it) and `acked`.
    pub lag_bytes: u64,
    /// Age of the oldest transaction read but not yet acknowledged (zero when caught up).
    pub lag: Duration,
    /// Backfill progress while one runs.
    pub backfill: Option<BackfillProgress>,
}

/// How far a running backfill got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackfillProgress {
    /// Tables completely copied.
    pub tables_done: usize,
    /// Tables to copy.
    pub tables: usize,
    /// Rows appended so far.
    pub rows: u64,
}

/// A source of changes. See the module documentation for the call order and guarantees.
pub trait Source: Send {
    /// Connects and prepares streaming (and the backfill when `resume.backfill`). Calling it again
    /// (after an error) starts over from `resume` with fresh connections.
    fn start(
        &mut self,
        resume: Resume,
    ) -> impl Future<Output = Result<Started, SourceError>> + Send;

    /// Appends rows into `buf` until one of the [`Event`]s.
    fn next(
        &mut self,
        buf: &mut ChangeBuffer,
        limits: &Limits,
    ) -> impl Future<Output = Result<Event, SourceError>> + Send;

    /// Everything before `log` is durable in the lake: report it upstream. Values at or below
    /// the last acknowledged one are ignored.
    fn ack(&mut self, log: u64) -> impl Future<Output = Result<(), SourceError>> + Send;

    /// The current [`Progress`].
    fn progress(&self) -> Progress;
}

/// What went wrong, at the granularity the pipeline's retry policy needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The server could not be reached (refused, unreachable, timed out). Retryable.
    Connect,
    /// An established connection was lost or the server is shutting down or restarting.
    /// Retryable.
    Disconnected,
    /// A transient condition on the server: too many connections, the slot still held by a
    /// previous session, still starting up, a serialization failure. Retryable.
    Busy,
    /// Authentication failed (wrong password, no `pg_hba.conf` entry, no password configured).
    /// Fatal.
    Auth,
    /// Something named in the configuration does not exist (database, table, publication).
    /// Fatal.
    MissingObject,
    /// The role lacks a privilege it needs. Fatal.
    Permission,
    /// The configuration or the server setup cannot work (invalid names, `wal_level`, TLS
    /// refused, unsupported version, an invalidated slot). Fatal.
    Config,
    /// The server sent something this client does not understand. Fatal.
    Protocol,
    /// A value could not be decoded. Fatal: retrying would read the same bytes.
    Data,
    /// Any other error the server reported. Fatal.
    Server,
}

impl ErrorKind {
    /// Whether retrying (with backoff, from the checkpoint) can succeed.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Connect | ErrorKind::Disconnected | ErrorKind::Busy
        )
    }
}

/// A source failure: a kind, a one-line message naming the problem (never a secret), and the
/// underlying cause as the error source.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    /// The classification.
    kind: ErrorKind,
    /// One line: what failed, on what, and why.
    message: String,
    /// The cause (I/O error, server error, TLS error …).
    #[source]
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl SourceError {
    /// An error without an underlying cause.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        SourceError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// An error caused by `source`.
    pub fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        SourceError {
            kind,
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// The classification.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether the pipeline should retry (see [`ErrorKind::retryable`]).
    pub fn retryable(&self) -> bool {
        self.kind.retryable()
    }

    /// The one-line message (also the `Display` form).
    pub fn message(&self) -> &str {
        &self.message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_kinds_are_retryable() {
        let retryable: Vec<_> = [
            ErrorKind::Connect,
            ErrorKind::Disconnected,
            ErrorKind::Busy,
            ErrorKind::Auth,
            ErrorKind::MissingObject,
            ErrorKind::Permission,
            ErrorKind::Config,
            ErrorKind::Protocol,
            ErrorKind::Data,
            ErrorKind::Server,
        ]
        .into_iter()
        .filter(|k| k.retryable())
        .collect();
        assert_eq!(
            retryable,
            [ErrorKind::Connect, ErrorKind::Disconnected, ErrorKind::Busy]
        );
    }

    #[test]
    fn errors_display_their_message_and_keep_the_cause() {
        let cause = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = SourceError::with_source(
            ErrorKind::Connect,
            "could not connect to 127.0.0.1:5432",
            cause,
        );
        assert_eq!(error.to_string(), "could not connect to 127.0.0.1:5432");
        assert!(error.retryable());
        assert_eq!(
            StdError::source(&error).map(ToString::to_string).as_deref(),
            Some("refused")
        );
    }
}
