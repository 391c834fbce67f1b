//! Starting a pipeline from its spec: the one place that turns a [`PipelineSpec`] into a
//! source, a lake and retrying attempts. Standalone and deployed modes both come here.

use lakestream_control::Store;
use lakestream_spec::PipelineSpec;
use lakestream_spec::pipeline::PostgresSpec;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::worker::{self, WorkerEnd};
use super::{Attempt, CheckpointFile, Fencing, PipelineError, Settings, StatusBoard};
use crate::change::TableName;
use crate::secret;
use crate::sink::Lake;
use crate::source::postgres::{PostgresSource, PostgresSourceConfig};

/// A pipeline to start.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The pipeline's id.
    pub pipeline_id: String,
    /// What to run.
    pub spec: PipelineSpec,
    /// Where the checkpoint lives.
    pub checkpoint_store: Store,
    /// The checkpoint's path in that store.
    pub checkpoint_path: String,
    /// How this instance fences older ones out.
    pub fencing: Fencing,
    /// The backfill generation wanted.
    pub backfill_generation: u64,
}

/// Starts the pipeline on a task; it runs until `cancel` (or for good after a fencing).
pub fn spawn(
    launch: Launch,
    status: StatusBoard,
    cancel: CancellationToken,
) -> JoinHandle<WorkerEnd> {
    let max_failures = launch.spec.max_consecutive_failures;
    tokio::spawn(async move {
        let attempt = || run_attempt(&launch, status.clone(), cancel.clone());
        worker::run(attempt, max_failures, status.clone(), cancel.clone()).await
    })
}

async fn run_attempt(
    launch: &Launch,
    status: StatusBoard,
    cancel: CancellationToken,
) -> Result<super::Ended, PipelineError> {
    let spec = &launch.spec;
    let postgres = spec
        .source
        .postgres
        .as_ref()
        .ok_or_else(|| PipelineError::Setup("the spec has no source".into()))?;
    let source = PostgresSource::new(postgres_config(postgres, &launch.pipeline_id).await?);
    let target_url = spec.target.store_url().map_err(PipelineError::Setup)?;
    let lake = Lake::open(&target_url, spec.target.format)?;
    let checkpoint = CheckpointFile::read(
        launch.checkpoint_store.clone(),
        launch.checkpoint_path.clone(),
        &launch.pipeline_id,
    )
    .await?;
    let mut attempt = Attempt::new(
        source,
        lake,
        checkpoint,
        launch.fencing,
        settings(launch)?,
        status,
        cancel,
    );
    attempt.run().await
}

fn settings(launch: &Launch) -> Result<Settings, PipelineError> {
    let spec = &launch.spec;
    let tables = match &spec.source.postgres {
        Some(postgres) => postgres.table_names().map_err(PipelineError::Setup)?,
        None => Vec::new(),
    };
    Ok(Settings {
        pipeline_id: launch.pipeline_id.clone(),
        tables,
        flush_interval: spec.target.flush_interval().map_err(PipelineError::Setup)?,
        max_buffer_bytes: usize::try_from(
            spec.target
                .target_file_size()
                .map_err(PipelineError::Setup)?,
        )
        .unwrap_or(usize::MAX),
        on_schema_change: spec.on_schema_change,
        backfill_generation: launch.backfill_generation,
    })
}

/// The PostgreSQL source's configuration, with the password resolved now (so a rotated
/// secret is picked up by the next attempt).
pub async fn postgres_config(
    spec: &PostgresSpec,
    pipeline_id: &str,
) -> Result<PostgresSourceConfig, PipelineError> {
    let connection = spec.connection().map_err(PipelineError::Setup)?;
    let tables = spec
        .table_names()
        .map_err(PipelineError::Setup)?
        .into_iter()
        .map(|(schema, name)| TableName::new(schema, name))
        .collect();
    let mut config = PostgresSourceConfig::new(
        connection.host,
        connection.port,
        connection.database,
        connection.user,
        tables,
        spec.publication_name(pipeline_id),
        spec.slot_name(pipeline_id),
    );
    config.sslmode = connection.sslmode;
    config.ssl_root_cert = spec.ssl_root_cert.as_ref().map(Into::into);
    config.create_publication = spec.create_publication;
    config.password = match &spec.password {
        Some(reference) => Some(
            secret::resolve(reference)
                .await
                .map_err(|err| PipelineError::Setup(err.to_string()))?,
        ),
        None => None,
    };
    Ok(config)
}
