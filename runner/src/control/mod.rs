//! Deployed mode: the runner follows `desired.json` in its control-store prefix, writes
//! `status.json` every heartbeat, and holds the runner lease while it consumes.

mod lease;

use std::time::Duration;

use lakestream_control::store::Fetched;
use lakestream_control::{RunnerControl, StoreError};
use lakestream_spec::control::{
    Assignment, Desired, Phase, PipelineState, RetirementStatus, RunnerState, RunnerStatus,
};
use object_store::UpdateVersion;
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use lease::{HeldLease, LeaseError};

use crate::metrics::Published;
use crate::pipeline::launch::{self, Launch};
use crate::pipeline::worker::WorkerEnd;
use crate::pipeline::{Fencing, StatusBoard};
use crate::retire;

/// Heartbeats a lease survives without renewal.
const LEASE_HEARTBEATS: u32 = 3;
/// Longest interval between two reads of `desired.json`.
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Why deployed mode stopped.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// `runner.json` is missing: the runner was deleted or the id is wrong.
    #[error("runner {runner_id} does not exist in {store} (no runner.json)")]
    UnknownRunner {
        /// The id.
        runner_id: String,
        /// The control store.
        store: String,
    },
    /// `runner.json` holds settings this runner cannot use.
    #[error("runner.json: {0}")]
    BadRecord(String),
    /// Another instance took over.
    #[error(transparent)]
    Lease(#[from] LeaseError),
    /// A newer instance owns the pipeline's checkpoint.
    #[error("{0}")]
    Fenced(String),
    /// The control store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What runs now, and what it was started for.
struct Running {
    assignment: Assignment,
    board: StatusBoard,
    cancel: CancellationToken,
    task: Option<JoinHandle<WorkerEnd>>,
}

/// Follows one runner's desired state.
pub struct Supervisor {
    control: RunnerControl,
    instance_id: String,
    started_at: OffsetDateTime,
    heartbeat: Duration,
    desired: Desired,
    desired_version: Option<UpdateVersion>,
    running: Option<Running>,
    retired: Vec<RetirementStatus>,
    published: Published,
}

impl Supervisor {
    /// Reads `runner.json` and prepares to follow the runner's desired state; the running
    /// pipeline's status is published to `published` (for `/metrics`).
    pub async fn new(
        control: RunnerControl,
        published: Published,
    ) -> Result<Self, SupervisorError> {
        let record = control
            .record()
            .await?
            .ok_or_else(|| SupervisorError::UnknownRunner {
                runner_id: control.runner_id().to_owned(),
                store: control.store().url().to_string(),
            })?;
        let heartbeat = record
            .spec
            .heartbeat_interval()
            .map_err(SupervisorError::BadRecord)?;
        Ok(Self {
            control,
            instance_id: instance_id(),
            started_at: OffsetDateTime::now_utc(),
            heartbeat,
            desired: Desired::default(),
            desired_version: None,
            running: None,
            retired: Vec::new(),
            published,
        })
    }

    /// Runs until `shutdown` is cancelled or the lease is lost.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), SupervisorError> {
        let ttl = self.heartbeat * LEASE_HEARTBEATS;
        let runner_id = self.control.runner_id().to_owned();
        let mut lease = HeldLease::acquire(self.control.clone(), &self.instance_id, ttl, &shutdown, |lease| {
            tracing::info!(holder = %lease.holder, "another instance holds the runner lease; waiting for it to expire");
        })
        .await?;
        tracing::info!(runner = %runner_id, generation = lease.generation(), "holding the runner lease");

        let poll = self.heartbeat.min(MAX_POLL_INTERVAL);
        let mut poll_timer = tokio::time::interval(poll);
        let mut heartbeat_timer = tokio::time::interval(self.heartbeat);
        let outcome = loop {
            tokio::select! {
                _ = shutdown.cancelled() => break Ok(()),
                _ = poll_timer.tick() => {
                    if let Err(err) = self.poll_desired(lease.generation()).await {
                        tracing::warn!(error = %err, "reading desired.json failed; will retry");
                    }
                }
                _ = heartbeat_timer.tick() => {
                    if let Err(err) = lease.renew().await {
                        break Err(err.into());
                    }
                    if let Some(end) = self.finished_worker().await {
                        break Err(end);
                    }
                    self.write_status().await;
                }
            }
        };
        self.stop_pipeline().await;
        self.write_status().await;
        if outcome.is_ok() {
            lease.release().await?;
        }
        outcome
    }

    async fn poll_desired(&mut self, generation: u64) -> Result<(), StoreError> {
        match self
            .control
            .desired_if_changed(self.desired_version.as_ref())
            .await?
        {
            Fetched::Unchanged => return Ok(()),
            Fetched::Missing => {
                self.desired = Desired::default();
                self.desired_version = None;
            }
            Fetched::Changed(doc) => {
                self.desired = doc.value;
                self.desired_version = Some(doc.version);
            }
        }
        self.apply(generation).await;
        self.write_status().await;
        Ok(())
    }

    /// Makes what runs match `desired`: stops and starts the pipeline only when its
    /// assignment changed, and carries out retirements.
    async fn apply(&mut self, generation: u64) {
        let wanted = self
            .desired
            .pipeline
            .clone()
            .filter(|_| self.desired.runner_state == RunnerState::Running);
        let unchanged = matches!((&self.running, &wanted), (Some(running), Some(want)) if running.assignment == *want);
        if !unchanged {
            self.stop_pipeline().await;
            if let Some(assignment) = wanted {
                let running = self.start_pipeline(assignment, generation).await;
                self.published.set(Some(running.board.clone()));
                self.running = Some(running);
            }
        }
        for retirement in self.desired.retire.clone() {
            if self
                .retired
                .iter()
                .any(|r| r.pipeline_id == retirement.pipeline_id)
            {
                continue;
            }
            let error = retire::retire(&self.control, &retirement).await.err();
            if let Some(error) = &error {
                tracing::warn!(pipeline = %retirement.pipeline_id, %error, "could not clean up a retired pipeline");
            }
            self.retired.push(RetirementStatus {
                pipeline_id: retirement.pipeline_id.clone(),
                error,
            });
        }
    }

    async fn start_pipeline(&self, assignment: Assignment, generation: u64) -> Running {
        let board = StatusBoard::new(&assignment.pipeline_id, assignment.version);
        board.update(|status| {
            status.restart_generation = assignment.restart_generation;
        });
        let cancel = CancellationToken::new();
        if assignment.state == PipelineState::Paused {
            board.set_phase(Phase::Paused);
            return Running {
                assignment,
                board,
                cancel,
                task: None,
            };
        }
        let version = match self
            .control
            .version(&assignment.pipeline_id, assignment.version)
            .await
        {
            Ok(Some(version)) => version,
            Ok(None) => {
                board.set_phase(Phase::Failed);
                board.record_failure(&format!(
                    "version {} of pipeline {} is not in the control store",
                    assignment.version, assignment.pipeline_id
                ));
                return Running {
                    assignment,
                    board,
                    cancel,
                    task: None,
                };
            }
            Err(err) => {
                board.set_phase(Phase::Failed);
                board.record_failure(&err.to_string());
                return Running {
                    assignment,
                    board,
                    cancel,
                    task: None,
                };
            }
        };
        let launch = Launch {
            pipeline_id: assignment.pipeline_id.clone(),
            spec: version.spec,
            checkpoint_store: self.control.store().clone(),
            checkpoint_path: self.control.paths().checkpoint(&assignment.pipeline_id),
            fencing: Fencing::Lease(generation),
            backfill_generation: assignment.backfill_generation,
        };
        tracing::info!(pipeline = %assignment.pipeline_id, version = assignment.version, "starting pipeline");
        let task = launch::spawn(launch, board.clone(), cancel.clone());
        Running {
            assignment,
            board,
            cancel,
            task: Some(task),
        }
    }

    async fn stop_pipeline(&mut self) {
        self.published.set(None);
        if let Some(mut running) = self.running.take() {
            running.cancel.cancel();
            if let Some(task) = running.task.take() {
                let _ = task.await;
                tracing::info!(pipeline = %running.assignment.pipeline_id, "pipeline stopped");
            }
        }
    }

    /// A worker that ended on its own was fenced out by a newer instance.
    async fn finished_worker(&mut self) -> Option<SupervisorError> {
        let running = self.running.as_mut()?;
        if !running.task.as_ref()?.is_finished() {
            return None;
        }
        match running.task.take()?.await {
            Ok(WorkerEnd::Fenced(error)) => Some(SupervisorError::Fenced(error.to_string())),
            _ => None,
        }
    }

    async fn write_status(&self) {
        let pipeline = self
            .running
            .as_ref()
            .map(|running| running.board.snapshot());
        let status = RunnerStatus {
            runner_id: self.control.runner_id().to_owned(),
            instance_id: self.instance_id.clone(),
            runner_version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: self.started_at,
            heartbeat_at: OffsetDateTime::now_utc(),
            heartbeat_interval_ms: self.heartbeat.as_millis() as u64,
            observed_generation: self.desired.generation,
            pipeline,
            retired: self.retired.clone(),
        };
        if let Err(err) = self.control.put_status(&status).await {
            tracing::warn!(error = %err, "writing status.json failed; will retry at the next heartbeat");
        }
    }
}

/// A process-unique id: host, process id and start time.
fn instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!(
        "{}-{}-{}",
        host.trim(),
        std::process::id(),
        OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000
    )
}
