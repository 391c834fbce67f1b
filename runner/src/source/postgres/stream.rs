//! Streaming: `START_REPLICATION`, pgoutput messages turned into rows, standby status updates
//! and heartbeats.
//!
//! Reads go through the connection's [`FrameReader`] (large reads, messages decoded in place).
//! The write half belongs to a small task that sends a standby status update every
//! `status_interval` and whenever the server asks for one, so the connection stays alive even
//! while the pipeline is busy flushing and does not call [`Stream::next`]. It reports the
//! pipeline's acknowledged LSN as flushed and applied (never anything beyond it: that is what
//! moves the slot), and how far the stream was read as written: PostgreSQL uses the written
//! position only for monitoring and, at shutdown, to let the walsender exit once everything
//! was received (reporting the acknowledged LSN there would hold a fast shutdown until
//! `wal_sender_timeout`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::change::{ChangeBuffer, Column, Op, Position, RowMeta, TableName, TableSchema};
use crate::source::{ErrorKind, Event, Limits, SourceError};

use super::Shared;
use super::catalog::{SourceColumn, TableState, describe_tables, resolve_types};
use super::config::PostgresSourceConfig;
use super::pgoutput::{
    CopyMessage, DecodeError, Message, OldTuple, Relation, Tuple, TupleCell, status_update,
};
use super::rows::{Gate, buffer_error, gate};
use super::wire::{
    Conn, FrameReader, ServerError, Session, WireError, Writer, quote_ident, quote_literal,
};

/// Messages processed between two deadline checks while data keeps arriving.
const DEADLINE_CHECK_EVERY: u32 = 1024;

/// Keepalives asking for a reply, in a row at the same position with no data between, that mean
/// the server is shutting down: a walsender in its final phase asks again after every reply until
/// the client confirms everything it sent, which the source must not do for changes the pipeline
/// has not made durable. (A healthy walsender asks only when no reply came for half of
/// `wal_sender_timeout`, which the status task never lets happen.) The source then disconnects,
/// so the server's shutdown is not held up, and the pipeline resumes later from its checkpoint.
const SHUTDOWN_PINGS: u32 = 10;

/// The SQL a heartbeat runs: a non-transactional logical message (allowed for any role).
const HEARTBEAT_SQL: &str =
    "SELECT pg_catalog.pg_logical_emit_message(false, 'lakestream', 'heartbeat')";

/// A streaming replication session.
pub(crate) struct Stream {
    /// Incoming CopyData.
    reader: FrameReader,
    /// The status-update task (owns the write half).
    status: StatusTask,
    /// The heartbeat task, when enabled (held to be aborted with the stream).
    _heartbeat: Option<AbortOnDrop>,
    /// Decoding state.
    state: StreamState,
    /// The `wal_end` of the last keepalives that asked for a reply, and how many in a row did
    /// without data in between.
    pings: (u64, u32),
}

/// Where decoding stands.
#[derive(Debug, Default)]
struct StreamState {
    /// Relation OID → index of the included table, `None` for tables not included.
    relations: HashMap<u32, Option<usize>>,
    /// The transaction being read.
    tx: Option<Tx>,
    /// Rows of the current (not yet consumed) message already written or skipped, so a
    /// message interrupted by a limit resumes at its next row.
    msg_done: usize,
}

/// The transaction being read.
#[derive(Debug, Clone, Copy)]
struct Tx {
    /// Commit LSN: the `log` of its rows.
    final_lsn: u64,
    /// Commit time, microseconds since the Unix epoch.
    commit_ts: i64,
    /// Transaction id.
    xid: u32,
    /// The next row's `seq`.
    seq: u64,
}

/// What handling one message led to.
struct Handled {
    /// Whether the message is done (else it is decoded again on the next call).
    consumed: bool,
    /// An event to return.
    event: Option<Event>,
}

impl Handled {
    /// The message is done; carry on.
    const DONE: Handled = Handled {
        consumed: true,
        event: None,
    };
}

/// One row a message produces.
#[derive(Clone, Copy)]
struct Plan<'a> {
    /// The included table.
    table: usize,
    /// `c`, `u`, `d` or `t`.
    op: Op,
    /// The values (`None` for a truncate: all null).
    tuple: Option<Tuple<'a>>,
    /// The full old row, to fill unchanged TOASTed values of an update.
    fill: Option<Tuple<'a>>,
}

impl Stream {
    /// Sends `START_REPLICATION` from `start_lsn` on the replication session and starts the
    /// status task (reporting `acked`) and, when configured, the heartbeat task.
    pub(crate) async fn start(
        mut conn: Conn,
        config: &PostgresSourceConfig,
        start_lsn: u64,
        acked: u64,
    ) -> Result<Stream, SourceError> {
        let sql = format!(
            "START_REPLICATION SLOT {} LOGICAL {} (proto_version '1', publication_names {}, messages 'true')",
            config.slot,
            lakestream_spec::position::lsn_text(start_lsn),
            quote_literal(&quote_ident(&config.publication))
        );
        conn.start_copy(&sql).await.map_err(|e| {
            e.context(format!(
                "could not stream from replication slot \"{}\"",
                config.slot
            ))
        })?;
        let Conn { reader, writer, .. } = conn;
        let status = StatusTask::spawn(writer, acked, config.status_interval);
        let heartbeat = (!config.heartbeat_interval.is_zero()).then(|| {
            AbortOnDrop(tokio::spawn(heartbeats(
                config.clone(),
                config.heartbeat_interval,
            )))
        });
        Ok(Stream {
            reader,
            status,
            _heartbeat: heartbeat,
            state: StreamState::default(),
            pings: (0, 0),
        })
    }

    /// Reports `lsn` (already checked to be an advance) to the server now.
    pub(crate) fn ack(&self, lsn: u64) {
        self.status.report(lsn);
    }

    /// Appends changes into `buf` until an event.
    pub(crate) async fn next(
        &mut self,
        buf: &mut ChangeBuffer,
        limits: &Limits,
        shared: &mut Shared,
    ) -> Result<Event, SourceError> {
        let mut since_check = 0u32;
        loop {
            if let Some(failure) = self.status.failure() {
                return Err(SourceError::new(
                    ErrorKind::Disconnected,
                    format!(
                        "replication connection to {} lost: {failure}",
                        shared.config.endpoint()
                    ),
                ));
            }
            since_check += 1;
            if since_check >= DEADLINE_CHECK_EVERY {
                since_check = 0;
                if tokio::time::Instant::now() >= limits.deadline {
                    return Ok(Event::Deadline);
                }
            }
            let frame = match self.reader.peek() {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    match tokio::time::timeout_at(limits.deadline, self.reader.fill()).await {
                        Err(_) => return Ok(Event::Deadline),
                        Ok(Ok(())) => continue,
                        Ok(Err(e)) => return Err(stream_error(e, &shared.config)),
                    }
                }
                Err(e) => return Err(stream_error(e, &shared.config)),
            };
            let len = frame.len;
            match frame.tag {
                b'd' => {}
                b'N' => {
                    self.reader.consume(len);
                    continue;
                }
                b'E' => {
                    let error = ServerError::parse(frame.body);
                    return Err(stream_error(WireError::Server(error), &shared.config));
                }
                b'c' => {
                    return Err(SourceError::new(
                        ErrorKind::Disconnected,
                        format!(
                            "server at {} ended the replication stream",
                            shared.config.endpoint()
                        ),
                    ));
                }
                other => {
                    return Err(stream_error(
                        WireError::Protocol(format!(
                            "unexpected message {:?} while streaming",
                            char::from(other)
                        )),
                        &shared.config,
                    ));
                }
            }
            match CopyMessage::parse(frame.body).map_err(decode_error)? {
                CopyMessage::Keepalive { wal_end, reply } => {
                    shared.tracker.server_end = shared.tracker.server_end.max(wal_end);
                    self.status.received(wal_end);
                    if self.state.tx.is_none() {
                        // Everything committed before the walsender's position was sent and
                        // read, and nothing is open: safe to acknowledge once the buffer is
                        // durable. This is what moves the slot on idle or filtered databases.
                        shared.tracker.idle_ack(wal_end);
                    }
                    if reply {
                        if wal_end == self.pings.0 {
                            self.pings.1 += 1;
                        } else {
                            self.pings = (wal_end, 1);
                        }
                        if self.pings.1 >= SHUTDOWN_PINGS {
                            return Err(SourceError::new(
                                ErrorKind::Disconnected,
                                format!(
                                    "server at {} is shutting down and waits for changes the pipeline has not acknowledged yet; disconnecting so it can stop (streaming resumes from the checkpoint)",
                                    shared.config.endpoint()
                                ),
                            ));
                        }
                        self.status.wake();
                    }
                    self.reader.consume(len);
                }
                CopyMessage::XLogData { start, data, .. } => {
                    self.pings = (0, 0);
                    shared.tracker.server_end = shared.tracker.server_end.max(start);
                    self.status.received(start);
                    let message = Message::parse(data).map_err(decode_error)?;
                    if let Message::Relation(relation) = message {
                        self.reader.consume(len);
                        if let Some(event) = self.state.relation(relation, shared).await? {
                            return Ok(event);
                        }
                        continue;
                    }
                    let handled = self.state.handle(message, buf, limits, shared)?;
                    if handled.consumed {
                        self.reader.consume(len);
                    }
                    if let Some(event) = handled.event {
                        return Ok(event);
                    }
                }
            }
        }
    }
}

impl StreamState {
    /// Handles every message but `Relation`.
    fn handle(
        &mut self,
        message: Message<'_>,
        buf: &mut ChangeBuffer,
        limits: &Limits,
        shared: &mut Shared,
    ) -> Result<Handled, SourceError> {
        match message {
            Message::Begin {
                final_lsn,
                commit_ts,
                xid,
            } => {
                self.tx = Some(Tx {
                    final_lsn,
                    commit_ts,
                    xid,
                    seq: 0,
                });
                shared.tracker.open(commit_ts);
                Ok(Handled::DONE)
            }
            Message::Commit { end_lsn, .. } => {
                if let Some(tx) = self.tx.take() {
                    shared.tracker.commit(end_lsn, tx.commit_ts);
                }
                // A transaction boundary is the nicest place to honour the deadline.
                let event =
                    (tokio::time::Instant::now() >= limits.deadline).then_some(Event::Deadline);
                Ok(Handled {
                    consumed: true,
                    event,
                })
            }
            Message::Origin | Message::Type { .. } => Ok(Handled::DONE),
            Message::Logical {
                transactional, lsn, ..
            } => {
                if !transactional && self.tx.is_none() {
                    shared.tracker.idle_ack(lsn);
                }
                Ok(Handled::DONE)
            }
            Message::Relation(_) => Err(decode_error(DecodeError(
                "relation message in the row path".into(),
            ))),
            Message::Insert { relid, new } => {
                let Some(table) = self.table(relid)? else {
                    return Ok(Handled::DONE);
                };
                let plans = [Plan {
                    table,
                    op: Op::Create,
                    tuple: Some(new),
                    fill: None,
                }];
                self.emit(&plans, buf, limits, shared)
            }
            Message::Update { relid, old, new } => {
                let Some(table) = self.table(relid)? else {
                    return Ok(Handled::DONE);
                };
                let state = &shared.tables[table];
                let update = |fill| Plan {
                    table,
                    op: Op::Update,
                    tuple: Some(new),
                    fill,
                };
                match old {
                    None => self.emit(&[update(None)], buf, limits, shared),
                    Some(OldTuple { full, tuple }) => {
                        let fill = full.then_some(tuple);
                        if key_changed(state, full, tuple, new).map_err(decode_error)? {
                            let delete = Plan {
                                table,
                                op: Op::Delete,
                                tuple: Some(tuple),
                                fill: None,
                            };
                            self.emit(&[delete, update(fill)], buf, limits, shared)
                        } else {
                            self.emit(&[update(fill)], buf, limits, shared)
                        }
                    }
                }
            }
            Message::Delete { relid, old } => {
                let Some(table) = self.table(relid)? else {
                    return Ok(Handled::DONE);
                };
                let plans = [Plan {
                    table,
                    op: Op::Delete,
                    tuple: Some(old.tuple),
                    fill: None,
                }];
                self.emit(&plans, buf, limits, shared)
            }
            Message::Truncate { relids } => {
                let mut plans = Vec::with_capacity(relids.len());
                for relid in relids {
                    if let Some(table) = self.table(relid)? {
                        plans.push(Plan {
                            table,
                            op: Op::Truncate,
                            tuple: None,
                            fill: None,
                        });
                    }
                }
                self.emit(&plans, buf, limits, shared)
            }
        }
    }

    /// The included table of a relation, `None` for tables not included; an error for a
    /// relation the server never described (out of protocol).
    fn table(&self, relid: u32) -> Result<Option<usize>, SourceError> {
        self.relations.get(&relid).copied().ok_or_else(|| {
            decode_error(DecodeError(format!(
                "change of relation {relid} before its Relation message"
            )))
        })
    }

    /// Writes (or skips) the rows of one message from `msg_done` on, stopping at the limits.
    fn emit(
        &mut self,
        plans: &[Plan<'_>],
        buf: &mut ChangeBuffer,
        limits: &Limits,
        shared: &mut Shared,
    ) -> Result<Handled, SourceError> {
        let Some(tx) = self.tx.as_mut() else {
            return Err(decode_error(DecodeError(
                "row change outside a transaction".into(),
            )));
        };
        while let Some(plan) = plans.get(self.msg_done) {
            let position = Position {
                log: tx.final_lsn,
                seq: tx.seq,
            };
            match gate(position, shared.committed, limits, buf) {
                Gate::Stop => {
                    return Ok(Handled {
                        consumed: false,
                        event: Some(Event::Stopped),
                    });
                }
                Gate::Full => {
                    return Ok(Handled {
                        consumed: false,
                        event: Some(Event::BufferFull),
                    });
                }
                Gate::Skip => {}
                Gate::Write => write_plan(plan, position, tx, buf, shared)?,
            }
            tx.seq += 1;
            self.msg_done += 1;
            shared.tracker.position = Some(position);
            if limits.stop_after == Some(position) {
                let done = self.msg_done == plans.len();
                if done {
                    self.msg_done = 0;
                }
                return Ok(Handled {
                    consumed: done,
                    event: Some(Event::Stopped),
                });
            }
        }
        self.msg_done = 0;
        Ok(Handled::DONE)
    }

    /// Handles a `Relation` message: maps the relation to an included table (or to none) and
    /// returns [`Event::SchemaChanged`] when the table's shape differs from what was known.
    async fn relation(
        &mut self,
        relation: Relation,
        shared: &mut Shared,
    ) -> Result<Option<Event>, SourceError> {
        let name = TableName::new(relation.namespace.clone(), relation.name.clone());
        let index = shared.tables.iter().position(|t| *t.name() == name);
        if let Some(Some(known)) = self.relations.get(&relation.relid)
            && Some(*known) != index
        {
            return Err(SourceError::new(
                ErrorKind::Config,
                format!(
                    "table {} was renamed to {name}; update the pipeline's tables (and the publication) to follow it",
                    shared.tables[*known].name()
                ),
            ));
        }
        self.relations.insert(relation.relid, index);
        let Some(index) = index else {
            return Ok(None);
        };
        if shared.tables[index].matches(&relation.columns) {
            shared.tables[index].oid = relation.relid;
            return Ok(None);
        }
        let previous = shared.tables[index].clone();
        let next = describe_relation(&relation, &previous, shared).await?;
        let before = Arc::clone(&shared.tables[index].schema);
        let after = Arc::clone(&next.schema);
        shared.tables[index] = next;
        if before.same_shape(&after) {
            return Ok(None);
        }
        Ok(Some(Event::SchemaChanged {
            table: name,
            before,
            after,
        }))
    }
}

/// Whether an update moved the row to another key (written as a delete of the old key then
/// the new row). With a key tuple (`K`): a column the key tuple carries differs. With a full old
/// row (`O`): one of the table's key columns differs. An unchanged TOASTed value is unchanged.
fn key_changed(
    table: &TableState,
    full: bool,
    old: Tuple<'_>,
    new: Tuple<'_>,
) -> Result<bool, DecodeError> {
    for (index, pair) in old.cells().zip(new.cells()).enumerate() {
        let (old_cell, new_cell) = (pair.0?, pair.1?);
        let relevant = if full {
            table.key.contains(&index)
        } else {
            matches!(old_cell, TupleCell::Text(_))
        };
        if relevant && new_cell != TupleCell::Unchanged && old_cell != new_cell {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Writes one planned row.
fn write_plan(
    plan: &Plan<'_>,
    position: Position,
    tx: &Tx,
    buf: &mut ChangeBuffer,
    shared: &mut Shared,
) -> Result<(), SourceError> {
    let table = &shared.tables[plan.table];
    let mut row = buf.row(
        &table.schema,
        RowMeta {
            op: plan.op,
            position,
            commit_ts: Some(tx.commit_ts),
            txid: Some(i64::from(tx.xid)),
        },
    );
    let Some(tuple) = plan.tuple else {
        return Ok(());
    };
    if tuple.len() != table.columns.len() {
        return Err(decode_error(DecodeError(format!(
            "a row of {} has {} columns, its relation {}",
            table.name(),
            tuple.len(),
            table.columns.len()
        ))));
    }
    let mut old = plan.fill.map(|t| t.cells());
    for (column, cell) in tuple.cells().enumerate() {
        let old_cell = match old.as_mut() {
            Some(cells) => cells.next().transpose().map_err(decode_error)?,
            None => None,
        };
        match (cell.map_err(decode_error)?, old_cell) {
            (TupleCell::Unchanged, Some(TupleCell::Text(text))) | (TupleCell::Text(text), _) => {
                let target = row.cell().map_err(buffer_error)?;
                shared
                    .decoding
                    .write(plan.table, table, column, text, target)?;
            }
            (TupleCell::Unchanged, Some(TupleCell::Null)) | (TupleCell::Null, _) => {
                row.cell().map_err(buffer_error)?.null();
            }
            (TupleCell::Unchanged, _) => row.unchanged().map_err(buffer_error)?,
        }
    }
    Ok(())
}

/// A new table state for a relation whose columns changed: the `Relation` message decides the
/// columns (it is what the rows are encoded with); the catalog (read now) and the previous state
/// supply source type names, key flags and nullability where the column is the same.
async fn describe_relation(
    relation: &Relation,
    previous: &TableState,
    shared: &mut Shared,
) -> Result<TableState, SourceError> {
    let mut conn = Conn::connect(&shared.config, Session::Ordinary).await?;
    resolve_types(
        &mut conn,
        &mut shared.types,
        relation.columns.iter().map(|c| c.type_oid).collect(),
    )
    .await?;
    let name = previous.name().clone();
    let current = describe_tables(
        &mut conn,
        &[(name.clone(), relation.relid, previous.relkind)],
        &shared.publication,
        &mut shared.types,
    )
    .await?
    .pop();
    conn.close().await;

    let same = |state: &TableState, column: &super::pgoutput::RelationColumn| {
        state.columns.iter().position(|c| {
            c.name == column.name && c.type_oid == column.type_oid && c.typmod == column.typmod
        })
    };
    let mut columns = Vec::with_capacity(relation.columns.len());
    let mut sources = Vec::with_capacity(relation.columns.len());
    let mut key = Vec::new();
    for (index, column) in relation.columns.iter().enumerate() {
        let known = current
            .as_ref()
            .and_then(|state| same(state, column).map(|i| (state, i)))
            .or_else(|| same(previous, column).map(|i| (previous, i)));
        let (spec, decoder, copy) = match known {
            Some((state, i)) => (
                state.schema.columns()[i].clone(),
                state.columns[i].decoder.clone(),
                state.columns[i].copy,
            ),
            None => {
                let mapping = shared.types.mapping(column.type_oid, column.typmod, 0);
                let spec = Column {
                    name: column.name.clone(),
                    source_type: shared
                        .types
                        .name(column.type_oid)
                        .map_or_else(|| format!("oid {}", column.type_oid), str::to_owned),
                    column_type: mapping.column_type,
                    key: column.key && relation.replica_identity != b'f',
                    nullable: None,
                };
                (spec, mapping.decoder, mapping.copy)
            }
        };
        if spec.key {
            key.push(index);
        }
        sources.push(SourceColumn {
            name: column.name.clone(),
            type_oid: column.type_oid,
            typmod: column.typmod,
            decoder,
            copy,
        });
        columns.push(spec);
    }
    let schema = TableSchema::new(name, columns)
        .map_err(|e| SourceError::with_source(ErrorKind::Config, e.to_string(), e))?;
    Ok(TableState {
        oid: relation.relid,
        relkind: previous.relkind,
        schema: Arc::new(schema),
        columns: sources,
        key,
        row_filter: previous.row_filter.clone(),
    })
}

/// A malformed replication message as a source error.
fn decode_error(error: DecodeError) -> SourceError {
    SourceError::with_source(ErrorKind::Protocol, error.to_string(), error)
}

/// A failure of the replication stream, naming the server (and the slot for server errors).
fn stream_error(error: WireError, config: &PostgresSourceConfig) -> SourceError {
    match &error {
        WireError::Server(server) => {
            let message = format!(
                "replication from slot \"{}\" on {} failed: {}",
                config.slot,
                config.endpoint(),
                server.message
            );
            SourceError::with_source(server.kind(), message, error)
        }
        _ => error.context(format!(
            "replication connection to {} lost",
            config.endpoint()
        )),
    }
}

/// Acknowledgement bookkeeping: what was read, what is safe to acknowledge, what was
/// acknowledged, and the commit times behind the lag.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    /// The last row position written or skipped.
    pub(crate) position: Option<Position>,
    /// The highest LSN before which every change has been read completely.
    pub(crate) safe: Option<u64>,
    /// The last LSN acknowledged.
    pub(crate) acked: Option<u64>,
    /// The highest LSN the server reported.
    pub(crate) server_end: u64,
    /// `(end LSN, commit time)` of transactions read but not acknowledged, oldest first;
    /// transactions committed within the same millisecond share an entry.
    unacked: std::collections::VecDeque<(u64, i64)>,
    /// Commit time of the transaction being read, if any.
    open: Option<i64>,
}

impl Tracker {
    /// A transaction with this commit time started.
    fn open(&mut self, commit_ts: i64) {
        self.open = Some(commit_ts);
    }

    /// A transaction ending at `end_lsn` was read completely.
    fn commit(&mut self, end_lsn: u64, commit_ts: i64) {
        self.open = None;
        self.safe = Some(self.safe.map_or(end_lsn, |s| s.max(end_lsn)));
        match self.unacked.back_mut() {
            Some(last) if commit_ts - last.1 < 1_000 => last.0 = last.0.max(end_lsn),
            _ => self.unacked.push_back((end_lsn, commit_ts)),
        }
    }

    /// Nothing is open and the server has sent everything before `lsn`.
    fn idle_ack(&mut self, lsn: u64) {
        if self.safe.is_none_or(|s| lsn > s) {
            self.safe = Some(lsn);
        }
    }

    /// `lsn` was acknowledged; returns whether it advanced.
    pub(crate) fn ack(&mut self, lsn: u64) -> bool {
        if self.acked.is_some_and(|a| lsn <= a) {
            return false;
        }
        self.acked = Some(lsn);
        while self.unacked.front().is_some_and(|(end, _)| *end <= lsn) {
            self.unacked.pop_front();
        }
        true
    }

    /// Bytes between the server's reported end and the acknowledged LSN.
    pub(crate) fn lag_bytes(&self) -> u64 {
        self.server_end.saturating_sub(self.acked.unwrap_or(0))
    }

    /// Age of the oldest transaction read but not acknowledged.
    pub(crate) fn lag(&self) -> Duration {
        let Some(oldest) = self.unacked.front().map(|(_, ts)| *ts).or(self.open) else {
            return Duration::ZERO;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        Duration::from_micros(u64::try_from(now - oldest).unwrap_or(0))
    }
}

/// The status-update task and what it shares with the stream.
struct StatusTask {
    /// State shared with the task.
    shared: Arc<StatusShared>,
    /// The task, aborted when the stream is dropped.
    _task: AbortOnDrop,
}

/// State shared between the stream and its status task.
#[derive(Debug, Default)]
struct StatusShared {
    /// The LSN to report as flushed and applied.
    acked: AtomicU64,
    /// The LSN to report as written: how far the stream was read.
    received: AtomicU64,
    /// Wakes the task for an immediate update.
    wake: Notify,
    /// Why the task stopped, if it did.
    failure: Mutex<Option<String>>,
}

impl StatusTask {
    /// Spawns the task on the write half, reporting `acked` every `interval`.
    fn spawn(writer: Writer, acked: u64, interval: Duration) -> Self {
        let shared = Arc::new(StatusShared {
            acked: AtomicU64::new(acked),
            ..StatusShared::default()
        });
        let task = tokio::spawn(send_status(writer, Arc::clone(&shared), interval));
        StatusTask {
            shared,
            _task: AbortOnDrop(task),
        }
    }

    /// Reports a new acknowledged LSN at once.
    fn report(&self, lsn: u64) {
        self.shared.acked.fetch_max(lsn, Ordering::AcqRel);
        self.shared.wake.notify_one();
    }

    /// The stream was read up to `lsn`.
    fn received(&self, lsn: u64) {
        self.shared.received.fetch_max(lsn, Ordering::AcqRel);
    }

    /// Sends an update at once (the server asked for one).
    fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// Why the task failed, if it did.
    fn failure(&self) -> Option<String> {
        self.shared
            .failure
            .lock()
            .ok()
            .and_then(|failure| failure.clone())
    }
}

/// The status task: an update now, then every `interval` or when woken.
async fn send_status(mut writer: Writer, shared: Arc<StatusShared>, interval: Duration) {
    loop {
        let flushed = shared.acked.load(Ordering::Acquire);
        let written = shared.received.load(Ordering::Acquire);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        status_update(written, flushed, now, false, &mut writer.buf);
        if let Err(e) = writer.send().await {
            if let Ok(mut failure) = shared.failure.lock() {
                *failure = Some(e.to_string());
            }
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shared.wake.notified() => {}
        }
    }
}

/// The heartbeat task: a logical message every `interval` on its own session, reconnecting
/// after failures (a heartbeat is best effort; the stream reports real failures).
async fn heartbeats(config: PostgresSourceConfig, interval: Duration) {
    let mut conn: Option<Conn> = None;
    loop {
        tokio::time::sleep(interval).await;
        if conn.is_none() {
            match Conn::connect(&config, Session::Ordinary).await {
                Ok(c) => conn = Some(c),
                Err(error) => {
                    tracing::warn!(%error, "heartbeat: could not connect");
                    continue;
                }
            }
        }
        if let Some(c) = conn.as_mut()
            && let Err(error) = c.query(HEARTBEAT_SQL).await
        {
            tracing::warn!(error = %error.context("heartbeat failed"), "heartbeat failed");
            conn = None;
        }
    }
}

/// A task handle that aborts the task when dropped (a dropped source leaves nothing behind).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
