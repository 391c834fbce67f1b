//! The PostgreSQL source: logical replication (pgoutput) over a replication slot, with a
//! backfill that reads the slot's exported snapshot.
//!
//! Roles: [`config`] (what the pipeline hands over), `wire` (protocol client: TCP, TLS,
//! authentication, simple queries, buffered framing), `tls`, `catalog` (tables, columns, types,
//! publication, slot), `types` and `text` (type mapping and text parsers, see
//! `docs/type-mapping.md`), `pgoutput` (stream decoder), `rows` (limits and cell decoding),
//! `snapshot` (backfill), `stream` (streaming, status updates, heartbeats).
//!
//! [`PostgresSource::start`] checks the server (version ≥ 14, `wal_level=logical`, UTF-8) and that
//! the role may open a replication session, resolves the tables, prepares the publication and the slot:
//!
//! - with [`Resume::backfill`]: the slot is dropped if it exists (it is ours by name) and created
//!   with an exported snapshot; backfill sessions import the snapshot, lock the tables against
//!   DDL (`ACCESS SHARE`) and read the schemas inside it; streaming later starts at the slot's
//!   consistent point, so snapshot and stream neither overlap nor leave a gap;
//! - without, and no slot: the slot is created without a snapshot ([`Started::capture_starts_now`]);
//! - without, and a slot: streaming resumes from the checkpoint's LSN; a slot already confirmed
//!   beyond it means someone else consumed changes the lake lacks, which is refused.

pub mod config;

mod binary;
mod catalog;
mod cleanup;
mod pgoutput;
mod rows;
mod snapshot;
mod stream;
mod text;
mod tls;
mod types;
mod wire;

use std::sync::Arc;

pub use cleanup::drop_replication_objects;
pub use config::{PostgresSourceConfig, SslMode};
pub use wire::ServerError;

use crate::change::{ChangeBuffer, Position, TableName};
use crate::source::{ErrorKind, Event, Limits, Progress, Resume, Source, SourceError, Started};

use catalog::{
    Publication, TableState, check_server, describe_tables, find_tables, prepare_publication,
    read_slot,
};
use rows::Decoding;
use snapshot::Backfill;
use stream::{Stream, Tracker};
use types::TypeCache;
use wire::{Conn, Session, quote_ident, quote_literal};

/// A PostgreSQL logical replication source. Create it with [`PostgresSource::new`], then drive
/// it through [`Source`].
pub struct PostgresSource {
    /// The configuration.
    config: PostgresSourceConfig,
    /// Everything [`Source::start`] set up; `None` before.
    run: Option<Run>,
}

/// State of one started run.
struct Run {
    /// What both phases need.
    shared: Shared,
    /// The phase.
    phase: Phase,
}

/// State used by the backfill and the stream alike.
pub(crate) struct Shared {
    /// The configuration.
    pub(crate) config: PostgresSourceConfig,
    /// The included tables, in configuration order, as currently known.
    pub(crate) tables: Vec<TableState>,
    /// Types resolved so far.
    pub(crate) types: TypeCache,
    /// The publication as read at start.
    pub(crate) publication: Publication,
    /// Buffers and warnings of value decoding.
    pub(crate) decoding: Decoding,
    /// Acknowledgement and lag bookkeeping.
    pub(crate) tracker: Tracker,
    /// Rows at or before this position are already in the lake.
    pub(crate) committed: Option<Position>,
}

/// Where a run is.
enum Phase {
    /// Copying the snapshot; the replication session waits idle (its snapshot must live).
    Backfill {
        /// The copy.
        backfill: Backfill,
        /// The replication session that exported the snapshot.
        replication: Conn,
        /// The slot's consistent point.
        start_lsn: u64,
    },
    /// Ready to send `START_REPLICATION` on the next call.
    Ready {
        /// The replication session.
        replication: Conn,
        /// Where to start.
        start_lsn: u64,
    },
    /// Streaming.
    Streaming(Box<Stream>),
    /// An error ended the run (its sessions are closed); only a new `start` helps.
    Broken,
}

impl PostgresSource {
    /// A source for `config` (nothing happens until [`Source::start`]).
    pub fn new(config: PostgresSourceConfig) -> Self {
        PostgresSource { config, run: None }
    }

    /// The configuration.
    pub fn config(&self) -> &PostgresSourceConfig {
        &self.config
    }

    /// Whether the last [`Source::start`] created the publication (so dropping it later is
    /// ours to do); `false` before a start and when it already existed.
    pub fn publication_created(&self) -> bool {
        self.run
            .as_ref()
            .is_some_and(|run| run.shared.publication.created)
    }
}

impl Source for PostgresSource {
    async fn start(&mut self, resume: Resume) -> Result<Started, SourceError> {
        self.run = None;
        let config = &self.config;
        config.validate()?;
        let mut catalog = Conn::connect(config, Session::Ordinary).await?;
        check_server(&mut catalog, config).await?;
        // Before changing anything: a role that may not replicate fails here.
        let mut replication = Conn::connect(config, Session::Replication).await?;
        let found =
            find_tables(&mut catalog, &config.tables, resume.backfill, &config.user).await?;
        let described: Vec<(TableName, u32, u8)> = config
            .tables
            .iter()
            .cloned()
            .zip(found)
            .map(|(name, (oid, kind))| (name, oid, kind))
            .collect();
        let partitioned: Vec<TableName> = described
            .iter()
            .filter(|(_, _, kind)| *kind == b'p')
            .map(|(name, _, _)| name.clone())
            .collect();
        let publication = prepare_publication(&mut catalog, config, &partitioned).await?;
        if !publication.unpublished.is_empty() {
            tracing::warn!(
                publication = %config.publication,
                unpublished = ?publication.unpublished,
                "the publication does not publish every kind of change; those changes are not captured"
            );
        }
        let slot = read_slot(&mut catalog, &config.slot).await?;
        let mut types = TypeCache::default();

        let started;
        let tables;
        let phase;
        if resume.backfill {
            if slot.is_some() {
                drop_slot(&mut replication, config).await?;
            }
            let (consistent_point, snapshot) = create_slot(&mut replication, config, true).await?;
            let snapshot = snapshot.ok_or_else(|| {
                SourceError::new(
                    ErrorKind::Protocol,
                    format!(
                        "replication slot \"{}\" was created without a snapshot",
                        config.slot
                    ),
                )
            })?;
            let sessions = config.backfill_connections.min(config.tables.len()).max(1);
            let all: Vec<TableName> = described.iter().map(|(t, _, _)| t.clone()).collect();
            let mut conns = Vec::with_capacity(sessions);
            for _ in 0..sessions {
                conns.push(import_snapshot(config, &snapshot, &all).await?);
            }
            tables = describe_tables(&mut conns[0], &described, &publication, &mut types).await?;
            started = Started {
                tables: tables.iter().map(|t| Arc::clone(&t.schema)).collect(),
                backfill: true,
                stream_from: consistent_point,
                capture_starts_now: false,
            };
            phase = Phase::Backfill {
                backfill: Backfill::new(conns, tables.len(), consistent_point),
                replication,
                start_lsn: consistent_point,
            };
        } else {
            tables = describe_tables(&mut catalog, &described, &publication, &mut types).await?;
            let (start_lsn, capture_starts_now) = match slot {
                None => {
                    let (consistent_point, _) =
                        create_slot(&mut replication, config, false).await?;
                    tracing::warn!(
                        slot = %config.slot,
                        from = %lakestream_spec::position::lsn_text(consistent_point),
                        "created the replication slot without a backfill: changes committed before it are not captured"
                    );
                    (consistent_point, true)
                }
                Some(info) => {
                    let confirmed = check_slot(config, &info, resume.ack)?;
                    (resume.ack.unwrap_or(0).max(confirmed), false)
                }
            };
            started = Started {
                tables: tables.iter().map(|t| Arc::clone(&t.schema)).collect(),
                backfill: false,
                stream_from: start_lsn,
                capture_starts_now,
            };
            phase = Phase::Ready {
                replication,
                start_lsn,
            };
        }
        catalog.close().await;

        let mut tracker = Tracker::default();
        tracker.acked = Some(resume.ack.unwrap_or(0).max(started.stream_from));
        self.run = Some(Run {
            shared: Shared {
                config: self.config.clone(),
                tables,
                types,
                publication,
                decoding: Decoding::default(),
                tracker,
                committed: resume.committed,
            },
            phase,
        });
        Ok(started)
    }

    async fn next(
        &mut self,
        buf: &mut ChangeBuffer,
        limits: &Limits,
    ) -> Result<Event, SourceError> {
        let Some(run) = self.run.as_mut() else {
            return Err(SourceError::new(
                ErrorKind::Config,
                "the PostgreSQL source was not started",
            ));
        };
        let result = run.next(buf, limits).await;
        if result.is_err() {
            // Close every session now: a dead run must not hold the slot (or a server that is
            // shutting down) while the pipeline backs off.
            run.phase = Phase::Broken;
        }
        result
    }

    async fn ack(&mut self, log: u64) -> Result<(), SourceError> {
        if let Some(run) = self.run.as_mut()
            && run.shared.tracker.ack(log)
            && let Phase::Streaming(stream) = &run.phase
        {
            stream.ack(log);
        }
        Ok(())
    }

    fn progress(&self) -> Progress {
        let Some(run) = self.run.as_ref() else {
            return Progress::default();
        };
        let tracker = &run.shared.tracker;
        Progress {
            position: tracker.position,
            ack: tracker.safe,
            acked: tracker.acked,
            lag_bytes: tracker.lag_bytes(),
            lag: tracker.lag(),
            backfill: match &run.phase {
                Phase::Backfill { backfill, .. } => Some(backfill.progress()),
                _ => None,
            },
        }
    }
}

impl Run {
    /// [`Source::next`] for a started run.
    async fn next(
        &mut self,
        buf: &mut ChangeBuffer,
        limits: &Limits,
    ) -> Result<Event, SourceError> {
        loop {
            match &mut self.phase {
                Phase::Backfill { backfill, .. } => {
                    let shared = &mut self.shared;
                    let event = backfill
                        .next(
                            buf,
                            limits,
                            &shared.tables,
                            shared.committed,
                            &mut shared.decoding,
                            &mut shared.tracker.position,
                        )
                        .await?;
                    if matches!(event, Event::BackfillDone)
                        && let Phase::Backfill {
                            replication,
                            start_lsn,
                            ..
                        } = std::mem::replace(&mut self.phase, Phase::Broken)
                    {
                        self.phase = Phase::Ready {
                            replication,
                            start_lsn,
                        };
                    }
                    return Ok(event);
                }
                Phase::Ready { .. } => {
                    if let Phase::Ready {
                        replication,
                        start_lsn,
                    } = std::mem::replace(&mut self.phase, Phase::Broken)
                    {
                        let acked = self.shared.tracker.acked.unwrap_or(0);
                        let stream =
                            Stream::start(replication, &self.shared.config, start_lsn, acked)
                                .await?;
                        self.phase = Phase::Streaming(Box::new(stream));
                    }
                }
                Phase::Streaming(stream) => {
                    return stream.next(buf, limits, &mut self.shared).await;
                }
                Phase::Broken => {
                    return Err(SourceError::new(
                        ErrorKind::Disconnected,
                        "the PostgreSQL source failed earlier; start it again",
                    ));
                }
            }
        }
    }
}

/// Checks an existing slot before streaming from it without a backfill: pgoutput, this
/// database, not invalidated, and not confirmed beyond the checkpoint. Returns its confirmed
/// position.
fn check_slot(
    config: &PostgresSourceConfig,
    info: &catalog::SlotInfo,
    ack: Option<u64>,
) -> Result<u64, SourceError> {
    let slot = &config.slot;
    if info.plugin.as_deref() != Some("pgoutput") {
        return Err(SourceError::new(
            ErrorKind::Config,
            format!(
                "replication slot \"{slot}\" uses output plugin {}, not pgoutput",
                info.plugin.as_deref().unwrap_or("none (a physical slot)")
            ),
        ));
    }
    if info.database.as_deref() != Some(config.database.as_str()) {
        return Err(SourceError::new(
            ErrorKind::Config,
            format!(
                "replication slot \"{slot}\" belongs to database {}, not {}",
                info.database.as_deref().unwrap_or("?"),
                config.database
            ),
        ));
    }
    if info.wal_status.as_deref() == Some("lost") {
        return Err(SourceError::new(
            ErrorKind::Config,
            format!(
                "replication slot \"{slot}\" was invalidated (the WAL it needed was removed); request a backfill"
            ),
        ));
    }
    let confirmed = info.confirmed_flush.unwrap_or(0);
    if let Some(ack) = ack
        && confirmed > ack
    {
        return Err(SourceError::new(
            ErrorKind::Config,
            format!(
                "replication slot \"{slot}\" is confirmed up to {} but the checkpoint only up to {}: another client consumed changes the lake does not have; request a backfill",
                lakestream_spec::position::lsn_text(confirmed),
                lakestream_spec::position::lsn_text(ack)
            ),
        ));
    }
    Ok(confirmed)
}

/// `DROP_REPLICATION_SLOT` (before a backfill recreates it).
async fn drop_slot(conn: &mut Conn, config: &PostgresSourceConfig) -> Result<(), SourceError> {
    conn.query(&format!("DROP_REPLICATION_SLOT {}", config.slot))
        .await
        .map(drop)
        .map_err(|e| {
            e.context(format!(
                "could not drop replication slot \"{}\" to recreate it for a backfill",
                config.slot
            ))
        })
}

/// `CREATE_REPLICATION_SLOT … LOGICAL pgoutput`, exporting a snapshot or not. Returns the
/// consistent point and the snapshot name.
async fn create_slot(
    conn: &mut Conn,
    config: &PostgresSourceConfig,
    export: bool,
) -> Result<(u64, Option<String>), SourceError> {
    let option = match (conn.server_version >= 150_000, export) {
        (true, true) => "(SNAPSHOT 'export')",
        (true, false) => "(SNAPSHOT 'nothing')",
        (false, true) => "EXPORT_SNAPSHOT",
        (false, false) => "NOEXPORT_SNAPSHOT",
    };
    let slot = &config.slot;
    let rows = conn
        .query(&format!(
            "CREATE_REPLICATION_SLOT {slot} LOGICAL pgoutput {option}"
        ))
        .await
        .map_err(|e| {
            let what = format!(
                "role \"{}\" could not create replication slot \"{slot}\"",
                config.user
            );
            e.context(what)
        })?;
    let row = rows.into_iter().next().unwrap_or_default();
    let consistent_point = row
        .get(1)
        .cloned()
        .flatten()
        .and_then(|text| catalog::parse_lsn(&text))
        .ok_or_else(|| {
            SourceError::new(
                ErrorKind::Protocol,
                format!("creating replication slot \"{slot}\" returned no consistent point"),
            )
        })?;
    Ok((consistent_point, row.get(2).cloned().flatten()))
}

/// An ordinary session inside a repeatable-read, read-only transaction that imported
/// `snapshot` and holds `ACCESS SHARE` locks on every included table. Every session locks every
/// table, so no DDL can change a table until the last session still copying has finished (a
/// session commits as soon as no table is left for it).
async fn import_snapshot(
    config: &PostgresSourceConfig,
    snapshot: &str,
    tables: &[TableName],
) -> Result<Conn, SourceError> {
    let mut conn = Conn::connect(config, Session::Ordinary).await?;
    conn.query(&format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT {}",
        quote_literal(snapshot)
    ))
    .await
    .map_err(|e| e.context("could not import the slot's snapshot for the backfill"))?;
    let lock = format!(
        "LOCK TABLE {} IN ACCESS SHARE MODE",
        tables
            .iter()
            .map(|t| format!("{}.{}", quote_ident(&t.schema), quote_ident(&t.name)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    conn.query(&lock)
        .await
        .map_err(|e| e.context("could not lock the included tables for the backfill"))?;
    Ok(conn)
}
