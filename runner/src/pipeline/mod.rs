//! The pipeline: backfill, then stream, flushing the change buffer into the lake and
//! committing checkpoints, exactly once across crashes.
//!
//! One [`Attempt`] runs the source from the checkpoint until it is cancelled or fails;
//! [`worker`] wraps attempts in retries with backoff and the crash-loop rule. The flush
//! protocol (intent → files → commit → acknowledge) is described in `ARCHITECTURE.md`,
//! "Exactly once".
//!
//! A flush's files are encoded and written on a task of their own while the source fills the
//! next buffer, so decoding and encoding overlap. At most one flush is being written: the next
//! flush first waits for it and commits it, so intents, files and commits stay in order and
//! nothing is acknowledged before the files holding it are published.

mod checkpoint;
pub mod launch;
mod status;
#[cfg(test)]
mod tests;
pub mod worker;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use lakestream_spec::control::{Intent, Phase};
use lakestream_spec::pipeline::SchemaChangePolicy;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::change::{ChangeBuffer, Position, TableBatch};
use crate::sink::{Lake, SinkError, file_name, table_folder};
use crate::source::{Event, Limits, Resume, Source, SourceError};

pub use checkpoint::{CheckpointError, CheckpointFile, Fencing};
pub use status::StatusBoard;

/// Files written at once during a flush.
const WRITE_CONCURRENCY: usize = 4;
/// How often an idle pipeline records source progress (so the slot advances) in its checkpoint.
const IDLE_ACK_INTERVAL: Duration = Duration::from_secs(10);
/// Longest time between two looks at cancellation and status while the source is busy.
const TICK: Duration = Duration::from_secs(1);
/// Longest time between two looks at a flush being written, so its commit (and the source's
/// acknowledgement) follows its files promptly while the source keeps reading.
const WRITE_POLL: Duration = Duration::from_millis(20);

/// Why an attempt ended badly.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Writing a file failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The checkpoint could not be written, or a newer instance owns it.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A table's columns changed and the policy is `fail`.
    #[error(
        "the columns of {table} changed ({change}) and on_schema_change is \"fail\"; change the policy to \"evolve\" to continue"
    )]
    SchemaChanged {
        /// The table.
        table: String,
        /// What changed.
        change: String,
    },
    /// The spec cannot run (it passed validation, but the runner's environment cannot serve it).
    #[error("{0}")]
    Setup(String),
}

impl PipelineError {
    /// Whether a newer instance took over: this one must stop for good.
    pub fn is_fenced(&self) -> bool {
        matches!(self, Self::Checkpoint(CheckpointError::Fenced { .. }))
    }
}

/// Everything an attempt needs besides its source.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The pipeline's id: names its files and checkpoint.
    pub pipeline_id: String,
    /// Source tables as `(schema, table)`, for cleaning up their folders.
    pub tables: Vec<(String, String)>,
    /// Longest time a change waits in the buffer.
    pub flush_interval: Duration,
    /// Buffer size that triggers a flush.
    pub max_buffer_bytes: usize,
    /// What to do on a schema change.
    pub on_schema_change: SchemaChangePolicy,
    /// The backfill generation wanted; a backfill runs while the checkpoint's is lower.
    pub backfill_generation: u64,
}

/// How an attempt ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Cancelled; everything buffered was committed first.
    Cancelled,
}

/// One run of a pipeline from its checkpoint.
pub struct Attempt<S> {
    source: S,
    lake: Lake,
    checkpoint: CheckpointFile,
    fencing: Fencing,
    settings: Settings,
    status: StatusBoard,
    cancel: CancellationToken,
    /// End of the last flush, committed or not: the `from` of the next file names.
    flushed_to: Option<Position>,
    last_idle_ack: Instant,
    /// The flush whose files are being written, if any.
    writing: Option<Writing>,
}

/// A flush whose intent is recorded and whose files are being written on their own task.
struct Writing {
    /// Encodes and publishes the files.
    task: JoinHandle<Result<Written, SinkError>>,
    /// What the checkpoint records once the files are published.
    commit: Commit,
}

/// What completing a flush records.
#[derive(Debug, Clone, Copy)]
enum Commit {
    /// A streaming flush: the lake holds everything up to `to`; `ack` may be acknowledged.
    Stream {
        /// The flush's last position.
        to: Position,
        /// The source coordinate to acknowledge.
        ack: Option<u64>,
    },
    /// Part of a backfill: only the counters (the backfill commits as a whole).
    BackfillPart,
}

impl<S: Source> Attempt<S> {
    /// An attempt, ready to [`run`](Self::run).
    pub fn new(
        source: S,
        lake: Lake,
        checkpoint: CheckpointFile,
        fencing: Fencing,
        settings: Settings,
        status: StatusBoard,
        cancel: CancellationToken,
    ) -> Self {
        let flushed_to = checkpoint.current().committed;
        Self {
            source,
            lake,
            checkpoint,
            fencing,
            settings,
            status,
            cancel,
            flushed_to,
            last_idle_ack: Instant::now(),
            writing: None,
        }
    }

    /// Runs until cancelled (committing what is buffered) or an error.
    pub async fn run(&mut self) -> Result<Ended, PipelineError> {
        let ended = self.run_until_end().await;
        // After an error, a flush may still be writing: let it finish (it is covered by its
        // intent) so no file of this attempt lands after the next one cleaned up.
        if let Some(writing) = self.writing.take() {
            let _ = writing.task.await;
        }
        ended
    }

    /// [`run`](Self::run), possibly leaving a flush being written behind after an error.
    async fn run_until_end(&mut self) -> Result<Ended, PipelineError> {
        self.status.set_phase(Phase::Starting);
        self.publish_totals();
        // Connect first: a source that cannot start (wrong password, missing table) must leave
        // no trace in the lake or the checkpoint.
        let current = self.checkpoint.current().clone();
        let committed = current.committed;
        let backfill = current.backfill_running.is_some()
            || self.settings.backfill_generation > current.backfill_done;
        let started = self
            .source
            .start(Resume {
                committed,
                ack: current.source_ack,
                backfill,
            })
            .await?;
        self.checkpoint.take_over(self.fencing).await?;
        tracing::info!(
            pipeline = %self.settings.pipeline_id,
            backfill = started.backfill,
            committed = ?committed.map(|p| p.to_string()),
            stream_from = %lakestream_spec::position::lsn_text(started.stream_from),
            fencing = self.checkpoint.current().fencing,
            "source started"
        );
        for (schema, table) in &self.settings.tables {
            let removed = self
                .lake
                .remove_uncommitted(
                    &table_folder(schema, table),
                    &self.settings.pipeline_id,
                    committed,
                )
                .await?;
            if !removed.is_empty() {
                tracing::info!(files = removed.len(), table = %format!("{schema}.{table}"), "removed files of a flush that never committed");
            }
        }
        let mut replay_until = None;
        if started.backfill {
            let generation = current
                .backfill_running
                .unwrap_or(self.settings.backfill_generation);
            self.checkpoint
                .update(|c| {
                    c.backfill_running = Some(generation);
                    c.pending = None;
                })
                .await?;
        } else {
            replay_until = current.pending.map(|intent| intent.to);
        }
        if started.capture_starts_now {
            tracing::warn!(
                from = started.stream_from,
                "the change log cursor was created just now: changes committed before it are not captured"
            );
        }
        let mut in_backfill = started.backfill;
        self.status.set_phase(if in_backfill {
            Phase::Backfilling
        } else {
            Phase::Streaming
        });
        for table in &started.tables {
            self.status.add_table_rows(&table.table().to_string(), 0);
        }

        let mut buffer = ChangeBuffer::new();
        let mut last_flush = Instant::now();
        loop {
            if self.cancel.is_cancelled() {
                if !in_backfill && replay_until.is_none() {
                    self.flush(&mut buffer).await?;
                }
                self.finish_writing().await?;
                return Ok(Ended::Cancelled);
            }
            let flush_due = last_flush + self.settings.flush_interval;
            let mut deadline = Instant::now() + TICK;
            if !in_backfill {
                deadline = deadline.min(flush_due);
            }
            if self.writing.is_some() {
                deadline = deadline.min(Instant::now() + WRITE_POLL);
            }
            let limits = Limits {
                deadline,
                max_buffer_bytes: self.settings.max_buffer_bytes,
                stop_after: replay_until,
            };
            let event = self.source.next(&mut buffer, &limits).await?;
            self.publish_progress();
            if self
                .writing
                .as_ref()
                .is_some_and(|writing| writing.task.is_finished())
            {
                self.finish_writing().await?;
            }
            match event {
                Event::Deadline if in_backfill => {}
                Event::Deadline => {
                    if Instant::now() >= flush_due && replay_until.is_none() {
                        self.flush(&mut buffer).await?;
                        last_flush = Instant::now();
                    }
                }
                Event::BufferFull if in_backfill => self.flush_backfill_part(&mut buffer).await?,
                Event::BufferFull => {
                    self.flush(&mut buffer).await?;
                    last_flush = Instant::now();
                }
                Event::Stopped => {
                    replay_until = None;
                    self.flush(&mut buffer).await?;
                    last_flush = Instant::now();
                }
                Event::SchemaChanged {
                    table,
                    before,
                    after,
                } => {
                    let change = describe_change(&before, &after);
                    match self.settings.on_schema_change {
                        SchemaChangePolicy::Fail => {
                            return Err(PipelineError::SchemaChanged {
                                table: table.to_string(),
                                change,
                            });
                        }
                        SchemaChangePolicy::Evolve => {
                            tracing::info!(table = %table, %change, "schema changed; new files carry the new schema");
                            self.status.add_schema_change(&table.to_string());
                        }
                    }
                }
                Event::BackfillDone => {
                    self.finish_backfill(&mut buffer, started.stream_from)
                        .await?;
                    in_backfill = false;
                    self.status.set_phase(Phase::Streaming);
                    last_flush = Instant::now();
                }
            }
        }
    }

    /// Streaming flush: commits the flush being written (if any), records the intent and
    /// starts writing the files; [`finish_writing`](Self::finish_writing) commits and
    /// acknowledges them.
    async fn flush(&mut self, buffer: &mut ChangeBuffer) -> Result<(), PipelineError> {
        self.finish_writing().await?;
        let progress = self.source.progress();
        if buffer.is_empty() {
            return self.record_idle_progress(progress.ack).await;
        }
        let to = progress
            .position
            .expect("a non-empty buffer has a last position");
        let ack = progress.ack.or(self.checkpoint.current().source_ack);
        self.checkpoint
            .update(|c| {
                c.pending = Some(Intent {
                    to,
                    source_ack: ack,
                })
            })
            .await?;
        self.start_writing(buffer.take(), to, Commit::Stream { to, ack });
        Ok(())
    }

    /// Waits for the flush being written, if any, and commits it: the checkpoint records it,
    /// then (streaming) the source acknowledges it.
    async fn finish_writing(&mut self) -> Result<(), PipelineError> {
        let Some(writing) = self.writing.take() else {
            return Ok(());
        };
        let written = writing.task.await.expect("writing files does not panic")?;
        let count = |c: &mut lakestream_spec::control::Checkpoint| {
            c.rows_delivered += written.rows;
            c.bytes_delivered += written.bytes;
            c.files_written += written.files;
        };
        match writing.commit {
            Commit::Stream { to, ack } => {
                self.checkpoint
                    .update(|c| {
                        c.committed = Some(to);
                        c.source_ack = ack;
                        c.pending = None;
                        count(c);
                    })
                    .await?;
                if let Some(ack) = ack {
                    self.source.ack(ack).await?;
                }
                self.last_idle_ack = Instant::now();
                self.after_commit();
            }
            Commit::BackfillPart => {
                self.checkpoint.update(count).await?;
                self.publish_totals();
            }
        }
        Ok(())
    }

    /// With nothing buffered, records that the source moved on (no change of ours in between),
    /// now and then, so the slot advances on idle or filtered databases.
    async fn record_idle_progress(&mut self, ack: Option<u64>) -> Result<(), PipelineError> {
        let Some(ack) = ack else { return Ok(()) };
        let behind = self
            .checkpoint
            .current()
            .source_ack
            .is_none_or(|recorded| ack > recorded);
        if behind && self.last_idle_ack.elapsed() >= IDLE_ACK_INTERVAL {
            self.checkpoint.update(|c| c.source_ack = Some(ack)).await?;
            self.source.ack(ack).await?;
            self.last_idle_ack = Instant::now();
            self.after_commit();
        }
        Ok(())
    }

    /// Part of a backfill: files only, after an intent that fences out older instances. A
    /// backfill commits as a whole in [`finish_backfill`](Self::finish_backfill); if the runner
    /// dies before, its files are removed and the backfill starts again.
    async fn flush_backfill_part(
        &mut self,
        buffer: &mut ChangeBuffer,
    ) -> Result<(), PipelineError> {
        self.finish_writing().await?;
        let Some(to) = self
            .source
            .progress()
            .position
            .filter(|_| !buffer.is_empty())
        else {
            return Ok(());
        };
        self.checkpoint
            .update(|c| {
                c.pending = Some(Intent {
                    to,
                    source_ack: None,
                })
            })
            .await?;
        self.start_writing(buffer.take(), to, Commit::BackfillPart);
        Ok(())
    }

    async fn finish_backfill(
        &mut self,
        buffer: &mut ChangeBuffer,
        stream_from: u64,
    ) -> Result<(), PipelineError> {
        self.flush_backfill_part(buffer).await?;
        self.finish_writing().await?;
        let last = self.flushed_to;
        self.checkpoint
            .update(|c| {
                c.committed = last.or(c.committed);
                c.source_ack = Some(stream_from);
                c.backfill_done = c.backfill_running.take().unwrap_or(c.backfill_done);
                c.pending = None;
            })
            .await?;
        self.source.ack(stream_from).await?;
        self.after_commit();
        tracing::info!("backfill complete; streaming");
        Ok(())
    }

    /// Starts writing the files of the flush `(flushed_to, to]` (its intent is recorded).
    fn start_writing(&mut self, batches: Vec<TableBatch>, to: Position, commit: Commit) {
        debug_assert!(self.writing.is_none(), "one flush is written at a time");
        let from = self.flushed_to.unwrap_or_default();
        self.flushed_to = Some(to);
        let task = tokio::spawn(write_files(
            self.lake.clone(),
            self.settings.pipeline_id.clone(),
            self.status.clone(),
            batches,
            (from, to),
        ));
        self.writing = Some(Writing { task, commit });
    }

    fn after_commit(&self) {
        self.status.clear_failures();
        self.publish_totals();
    }

    fn publish_totals(&self) {
        let checkpoint = self.checkpoint.current();
        self.status.update(|status| {
            status.rows_delivered = checkpoint.rows_delivered;
            status.bytes_delivered = checkpoint.bytes_delivered;
            status.files_written = checkpoint.files_written;
            status.backfill_generation = checkpoint.backfill_done;
            status.source_position = checkpoint.committed.map(|p| p.to_string());
        });
    }

    fn publish_progress(&self) {
        let progress = self.source.progress();
        self.status.update(|status| {
            status.lag_bytes = Some(progress.lag_bytes);
            status.lag_seconds = Some(progress.lag.as_secs_f64());
        });
    }
}

/// Writes one file per table segment of a flush covering `(from, to]`.
async fn write_files(
    lake: Lake,
    pipeline_id: String,
    status: StatusBoard,
    batches: Vec<TableBatch>,
    (from, to): (Position, Position),
) -> Result<Written, SinkError> {
    let (lake, pipeline_id, status) = (&lake, &pipeline_id, &status);
    let writes = batches.into_iter().map(|table_batch| async move {
        let table = table_batch.schema.table();
        let folder = table_folder(&table.schema, &table.name);
        let name = file_name(pipeline_id, from, to, table_batch.segment, lake.extension());
        let file = lake.write(&folder, &name, table_batch.batch).await?;
        status.add_table_rows(&table.to_string(), file.rows);
        Ok::<_, SinkError>(file)
    });
    let files: Vec<_> = futures::stream::iter(writes)
        .buffer_unordered(WRITE_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(Written {
        rows: files.iter().map(|f| f.rows).sum(),
        bytes: files.iter().map(|f| f.bytes).sum(),
        files: files.len() as u64,
    })
}

/// What a flush's files hold.
struct Written {
    /// Rows.
    rows: u64,
    /// Bytes.
    bytes: u64,
    /// Files.
    files: u64,
}

fn describe_change(
    before: &crate::change::TableSchema,
    after: &crate::change::TableSchema,
) -> String {
    let names = |schema: &crate::change::TableSchema| -> Vec<String> {
        schema
            .columns()
            .iter()
            .map(|c| format!("{} {}", c.name, c.source_type))
            .collect()
    };
    let (old, new) = (names(before), names(after));
    let added: Vec<&String> = new.iter().filter(|c| !old.contains(c)).collect();
    let removed: Vec<&String> = old.iter().filter(|c| !new.contains(c)).collect();
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!(
            "now {}",
            added
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !removed.is_empty() {
        parts.push(format!(
            "no longer {}",
            removed
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if parts.is_empty() {
        parts.push("key or type details".to_owned());
    }
    parts.join("; ")
}
