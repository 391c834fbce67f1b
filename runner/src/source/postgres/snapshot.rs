//! The backfill: every included table copied (`COPY … TO STDOUT (FORMAT binary)`) inside the
//! snapshot the replication slot exported, on one or more ordinary sessions that imported it.
//! Columns without a binary reader are cast to text by the server (see
//! [`CopyFormat`](super::types::CopyFormat)).
//!
//! Rows are `_op = r` at `log = consistent_point - 1`, `seq` counting rows across the whole
//! backfill, so they sort before every streamed change. The COPY streams live in this struct
//! between [`Source::next`](crate::source::Source::next) calls: a full buffer pauses them
//! (TCP back-pressure holds the server) and the next call resumes exactly where it stopped.

use std::collections::VecDeque;

use futures::future::select_all;

use crate::change::{ChangeBuffer, Op, Position, RowMeta};
use crate::source::{BackfillProgress, ErrorKind, Event, Limits, SourceError};

use super::binary::{Fields, is_trailer, strip_header};
use super::catalog::TableState;
use super::rows::{Decoding, Gate, buffer_error, gate};
use super::types::CopyFormat;
use super::wire::{Conn, WireError, quote_ident};

/// Rows processed between two deadline checks while data keeps arriving.
const DEADLINE_CHECK_EVERY: u32 = 4096;

/// A running backfill.
pub(crate) struct Backfill {
    /// `consistent_point - 1`: the `log` of every snapshot row.
    log: u64,
    /// The next row's `seq`.
    seq: u64,
    /// Tables (indexes into the source's table list) not started yet.
    pending: VecDeque<usize>,
    /// Sessions inside the snapshot.
    workers: Vec<Worker>,
    /// Tables completely copied.
    tables_done: usize,
    /// Tables to copy.
    tables_total: usize,
    /// Rows appended.
    rows: u64,
}

/// One session of the backfill.
struct Worker {
    /// The session, in a transaction that imported the snapshot.
    conn: Conn,
    /// The table being copied, if any.
    table: Option<usize>,
    /// The copy's header is still ahead (it arrives in front of the first tuple).
    header: bool,
}

impl Worker {
    /// Consumes a data frame of the copy. The header stays expected until then: a full buffer
    /// leaves the first frame to be read again by the next call.
    fn consume_data(&mut self, len: usize) {
        self.conn.reader.consume(len);
        self.header = false;
    }
}

impl Backfill {
    /// A backfill of `tables` tables on `conns` (each already inside the snapshot), whose rows
    /// sit at `consistent_point - 1`.
    pub(crate) fn new(conns: Vec<Conn>, tables: usize, consistent_point: u64) -> Self {
        Backfill {
            log: consistent_point.saturating_sub(1),
            seq: 0,
            pending: (0..tables).collect(),
            workers: conns
                .into_iter()
                .map(|conn| Worker {
                    conn,
                    table: None,
                    header: false,
                })
                .collect(),
            tables_done: 0,
            tables_total: tables,
            rows: 0,
        }
    }

    /// How far it got.
    pub(crate) fn progress(&self) -> BackfillProgress {
        BackfillProgress {
            tables_done: self.tables_done,
            tables: self.tables_total,
            rows: self.rows,
        }
    }

    /// Appends snapshot rows until an event; [`Event::BackfillDone`] once every table is copied
    /// (the sessions are then committed and closed).
    pub(crate) async fn next(
        &mut self,
        buf: &mut ChangeBuffer,
        limits: &Limits,
        tables: &[TableState],
        committed: Option<Position>,
        decoding: &mut Decoding,
        last_position: &mut Option<Position>,
    ) -> Result<Event, SourceError> {
        let mut since_check = 0u32;
        loop {
            // Give idle sessions the next tables; end the sessions nothing is left for, so they
            // do not sit idle in a transaction (and trip `idle_in_transaction_session_timeout`)
            // while the others copy.
            let mut w = 0;
            while w < self.workers.len() {
                let worker = &mut self.workers[w];
                if worker.table.is_some() {
                    w += 1;
                } else if let Some(table) = self.pending.pop_front() {
                    start_copy(&mut worker.conn, &tables[table]).await?;
                    worker.table = Some(table);
                    worker.header = true;
                    w += 1;
                } else {
                    let mut conn = self.workers.swap_remove(w).conn;
                    conn.query("COMMIT")
                        .await
                        .map_err(|e| e.context("could not end the backfill transaction"))?;
                    conn.close().await;
                }
            }
            if self.workers.is_empty() {
                return Ok(Event::BackfillDone);
            }

            // Drain what is buffered.
            let mut progressed = false;
            for w in 0..self.workers.len() {
                loop {
                    let worker = &mut self.workers[w];
                    let Some(table) = worker.table else { break };
                    let frame = match worker.conn.reader.peek() {
                        Ok(Some(frame)) => frame,
                        Ok(None) => break,
                        Err(e) => return Err(copy_error(e, &tables[table])),
                    };
                    progressed = true;
                    let (tag, len) = (frame.tag, frame.len);
                    match tag {
                        b'd' => {
                            let tuple = if worker.header {
                                strip_header(frame.body).ok_or_else(|| {
                                    copy_error(
                                        WireError::Protocol(
                                            "a binary COPY without its header".into(),
                                        ),
                                        &tables[table],
                                    )
                                })?
                            } else {
                                frame.body
                            };
                            if is_trailer(tuple) || tuple.is_empty() {
                                worker.consume_data(len);
                                continue;
                            }
                            let position = Position {
                                log: self.log,
                                seq: self.seq,
                            };
                            match gate(position, committed, limits, buf) {
                                Gate::Stop => return Ok(Event::Stopped),
                                Gate::Full => return Ok(Event::BufferFull),
                                Gate::Skip => {}
                                Gate::Write => {
                                    write_copy_row(
                                        buf,
                                        table,
                                        &tables[table],
                                        tuple,
                                        position,
                                        decoding,
                                    )?;
                                    self.rows += 1;
                                }
                            }
                            worker.consume_data(len);
                            self.seq += 1;
                            *last_position = Some(position);
                            if limits.stop_after == Some(position) {
                                return Ok(Event::Stopped);
                            }
                            since_check += 1;
                            if since_check >= DEADLINE_CHECK_EVERY {
                                since_check = 0;
                                if tokio::time::Instant::now() >= limits.deadline {
                                    return Ok(Event::Deadline);
                                }
                            }
                        }
                        b'Z' => {
                            worker.conn.reader.consume(len);
                            worker.table = None;
                            self.tables_done += 1;
                            break;
                        }
                        b'c' | b'C' | b'N' => worker.conn.reader.consume(len),
                        b'E' => {
                            let error = super::wire::ServerError::parse(frame.body);
                            return Err(copy_error(WireError::Server(error), &tables[table]));
                        }
                        other => {
                            return Err(copy_error(
                                WireError::Protocol(format!(
                                    "unexpected message {:?} in a COPY",
                                    char::from(other)
                                )),
                                &tables[table],
                            ));
                        }
                    }
                }
            }
            if progressed {
                continue;
            }

            // Wait for any active session, or the deadline.
            let (result, index) = {
                let reads = self
                    .workers
                    .iter_mut()
                    .enumerate()
                    .filter(|(_, w)| w.table.is_some())
                    .map(|(i, w)| Box::pin(async move { (w.conn.reader.fill().await, i) }));
                match tokio::time::timeout_at(limits.deadline, select_all(reads)).await {
                    Ok(((result, index), _, _)) => (result, index),
                    Err(_) => return Ok(Event::Deadline),
                }
            };
            if let Err(e) = result {
                let table = self.workers[index].table.unwrap_or_default();
                return Err(copy_error(e, &tables[table]));
            }
        }
    }
}

/// Starts the binary `COPY … TO STDOUT` of the published columns (and rows, under a row
/// filter), casting to text the columns read as text.
async fn start_copy(conn: &mut Conn, table: &TableState) -> Result<(), SourceError> {
    let name = table.name();
    let relation = format!("{}.{}", quote_ident(&name.schema), quote_ident(&name.name));
    let casts = table.columns.iter().any(|c| c.copy == CopyFormat::Text);
    let columns = table
        .columns
        .iter()
        .map(|c| match c.copy {
            CopyFormat::Text => format!("{}::text", quote_ident(&c.name)),
            _ => quote_ident(&c.name),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql = match (&table.row_filter, table.relkind) {
        (None, b'r') if !casts => format!("COPY {relation} ({columns}) TO STDOUT (FORMAT binary)"),
        (filter, _) => format!(
            "COPY (SELECT {columns} FROM {relation}{}) TO STDOUT (FORMAT binary)",
            filter
                .as_ref()
                .map(|f| format!(" WHERE {f}"))
                .unwrap_or_default()
        ),
    };
    conn.start_copy(&sql)
        .await
        .map_err(|e| e.context(format!("could not copy table {name} for the backfill")))
}

/// Writes one binary COPY tuple as an `r` row.
fn write_copy_row(
    buf: &mut ChangeBuffer,
    table_index: usize,
    table: &TableState,
    tuple: &[u8],
    position: Position,
    decoding: &mut Decoding,
) -> Result<(), SourceError> {
    let malformed = || {
        SourceError::new(
            ErrorKind::Protocol,
            format!("a malformed binary COPY row of {}", table.name()),
        )
    };
    let (count, mut fields) = Fields::of(tuple).ok_or_else(malformed)?;
    if count != table.columns.len() {
        return Err(SourceError::new(
            ErrorKind::Protocol,
            format!(
                "COPY of {} returned {count} fields for {} columns",
                table.name(),
                table.columns.len()
            ),
        ));
    }
    let mut row = buf.row(
        &table.schema,
        RowMeta {
            op: Op::Read,
            position,
            commit_ts: None,
            txid: None,
        },
    );
    for column in 0..count {
        let field = fields.next_field().map_err(|()| malformed())?;
        let cell = row.cell().map_err(buffer_error)?;
        match field {
            None => cell.null(),
            Some(bytes) => decoding.write_copied(table_index, table, column, bytes, cell)?,
        }
    }
    if !fields.is_done() {
        return Err(malformed());
    }
    Ok(())
}

/// A failure while copying `table`. A lost session also loses the exported snapshot, so the
/// backfill cannot resume; a retry (retryable kinds) starts a new one.
fn copy_error(error: WireError, table: &TableState) -> SourceError {
    error.context(format!("backfill of {} failed", table.name()))
}
