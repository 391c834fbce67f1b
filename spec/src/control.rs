//! The control store: the only channel between provider and runner.
//!
//! ```text
//! <control_store>/runners/<runner_id>/
//!   runner.json                           provider, at create      RunnerRecord
//!   desired.json                          provider, conditional    Desired
//!   pipelines/<pipeline_id>/versions/<n>.json   provider, immutable   PipelineVersion
//!   status.json                           runner, every heartbeat  RunnerStatus
//!   lease.json                            runner, conditional      Lease
//!   checkpoints/<pipeline_id>.json        runner, conditional      Checkpoint
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::pipeline::PipelineSpec;
use crate::position::Position;
use crate::runner::RunnerSpec;

/// Paths of one runner's documents, relative to the control store's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerPaths {
    prefix: String,
}

impl RunnerPaths {
    /// The paths for `runner_id`.
    pub fn new(runner_id: &str) -> Self {
        Self {
            prefix: format!("runners/{runner_id}"),
        }
    }

    /// The folder holding everything of this runner.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `runner.json`.
    pub fn record(&self) -> String {
        format!("{}/runner.json", self.prefix)
    }

    /// `desired.json`.
    pub fn desired(&self) -> String {
        format!("{}/desired.json", self.prefix)
    }

    /// `status.json`.
    pub fn status(&self) -> String {
        format!("{}/status.json", self.prefix)
    }

    /// `lease.json`.
    pub fn lease(&self) -> String {
        format!("{}/lease.json", self.prefix)
    }

    /// The folder of a pipeline's versions.
    pub fn versions(&self, pipeline_id: &str) -> String {
        format!("{}/pipelines/{pipeline_id}/versions", self.prefix)
    }

    /// One immutable pipeline version.
    pub fn version(&self, pipeline_id: &str, version: u64) -> String {
        format!("{}/{version}.json", self.versions(pipeline_id))
    }

    /// A pipeline's checkpoint.
    pub fn checkpoint(&self, pipeline_id: &str) -> String {
        format!("{}/checkpoints/{pipeline_id}.json", self.prefix)
    }
}

/// `runner.json`: who the runner is and how it was deployed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunnerRecord {
    /// The runner's id.
    pub runner_id: String,
    /// The runner's settings.
    pub spec: RunnerSpec,
    /// How and where it is deployed.
    pub deployment: DeploymentRecord,
    /// Version of the provider that created it.
    pub provider_version: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A runner's deployment as the provider created it: the target and its target-specific
/// settings and handles (process id, ARNs …), so an import can rebuild the resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// The deployment target (`local`, `fargate`, …).
    pub kind: String,
    /// Target-specific settings, owned by the provider's module for that target.
    #[serde(default)]
    pub settings: serde_json::Value,
}

/// Whether a runner should be running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunnerState {
    /// Deployed and consuming.
    #[default]
    Running,
    /// Deployment scaled to zero.
    Stopped,
}

/// Whether a pipeline should be consuming.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PipelineState {
    /// Consuming the source.
    #[default]
    Running,
    /// Not consuming; the slot keeps its position.
    Paused,
}

/// `desired.json`: what the provider wants the runner to do. Written with conditional puts;
/// every change increments `generation`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Desired {
    /// Increases with every change; the runner reports the one it has applied.
    pub generation: u64,
    /// Runner state.
    pub runner_state: RunnerState,
    /// The one pipeline assigned to this runner.
    pub pipeline: Option<Assignment>,
    /// Pipelines that were unassigned and whose source objects the runner should drop.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retire: Vec<Retirement>,
}

/// A pipeline assigned to a runner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// The pipeline's id.
    pub pipeline_id: String,
    /// The version to run.
    pub version: u64,
    /// Running or paused.
    pub state: PipelineState,
    /// A backfill is wanted while the checkpoint's completed backfill generation is lower.
    /// 0 means no backfill (a pipeline created paused, to migrate a slot).
    pub backfill_generation: u64,
    /// Changing it takes the pipeline out of `crash_loop` (the provider's `restart_trigger`).
    pub restart_generation: u64,
}

/// A pipeline removed from a runner, with what to clean up at the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retirement {
    /// The pipeline's id.
    pub pipeline_id: String,
    /// The version whose connection settings reach the source.
    pub version: u64,
    /// Drop the replication slot, and the publication when the runner created it.
    pub drop_slot: bool,
}

/// An immutable pipeline version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineVersion {
    /// The pipeline's id.
    pub pipeline_id: String,
    /// The version number, from 1.
    pub version: u64,
    /// The spec.
    pub spec: PipelineSpec,
    /// When it was written.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// What a pipeline is doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Connecting and preparing.
    #[default]
    Starting,
    /// Copying existing rows.
    Backfilling,
    /// Following the change log.
    Streaming,
    /// Paused on request.
    Paused,
    /// Failed; the runner retries with backoff.
    Failed,
    /// Failed too many times in a row; waits for a configuration change or a restart trigger.
    CrashLoop,
}

impl Phase {
    /// The phase as written in documents and Terraform attributes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Backfilling => "backfilling",
            Self::Streaming => "streaming",
            Self::Paused => "paused",
            Self::Failed => "failed",
            Self::CrashLoop => "crash_loop",
        }
    }
}

/// `status.json`: the runner's heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunnerStatus {
    /// The runner's id.
    pub runner_id: String,
    /// This process's id, unique per start.
    pub instance_id: String,
    /// The runner binary's version.
    pub runner_version: String,
    /// When this process started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When this document was written.
    #[serde(with = "time::serde::rfc3339")]
    pub heartbeat_at: OffsetDateTime,
    /// The interval between heartbeats, in milliseconds.
    pub heartbeat_interval_ms: u64,
    /// The `desired.json` generation applied.
    pub observed_generation: u64,
    /// The pipeline, when one is assigned.
    pub pipeline: Option<PipelineStatus>,
    /// Retirements carried out (or failed), by pipeline id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<RetirementStatus>,
}

/// A pipeline's live state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PipelineStatus {
    /// The pipeline's id.
    pub pipeline_id: String,
    /// The version running.
    pub deployed_version: u64,
    /// What it is doing.
    pub phase: Phase,
    /// Last position durably in the lake, as text.
    pub source_position: Option<String>,
    /// Bytes of source log not yet acknowledged.
    pub lag_bytes: Option<u64>,
    /// Age of the oldest change not yet in the lake.
    pub lag_seconds: Option<f64>,
    /// Rows written to the lake since the pipeline was created.
    pub rows_delivered: u64,
    /// Bytes of files written since the pipeline was created.
    pub bytes_delivered: u64,
    /// Files written since the pipeline was created.
    pub files_written: u64,
    /// The last error, until the pipeline runs cleanly again.
    pub last_error: Option<String>,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// The highest backfill generation completed.
    pub backfill_generation: u64,
    /// The restart generation the pipeline has seen (it leaves crash_loop when it changes).
    pub restart_generation: u64,
    /// Per table.
    pub tables: Vec<TableStatus>,
}

/// One table's live state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableStatus {
    /// `schema.table`.
    pub table: String,
    /// `backfilling` or `streaming`.
    pub phase: Phase,
    /// Rows written for this table by this process.
    pub rows_delivered: u64,
    /// How many schema changes this process has seen for the table.
    pub schema_changes: u32,
}

/// Outcome of a [`Retirement`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetirementStatus {
    /// The pipeline's id.
    pub pipeline_id: String,
    /// `None` when done, else why it failed.
    pub error: Option<String>,
}

/// `lease.json`: which runner instance may consume. See `ARCHITECTURE.md` ("Single consumer").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The holding instance's id.
    pub holder: String,
    /// Fencing generation, incremented by every takeover.
    pub generation: u64,
    /// Last renewal.
    #[serde(with = "time::serde::rfc3339")]
    pub renewed_at: OffsetDateTime,
    /// How long the lease lasts without renewal, in milliseconds.
    pub ttl_ms: u64,
}

impl Lease {
    /// Whether the lease has run out at `now`.
    pub fn expired(&self, now: OffsetDateTime) -> bool {
        now - self.renewed_at > Duration::from_millis(self.ttl_ms)
    }
}

/// `checkpoints/<pipeline_id>.json`: what is durably in the lake. See `ARCHITECTURE.md`
/// ("Exactly once").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The pipeline's id.
    pub pipeline_id: String,
    /// The lease generation of the writer; a higher one fences older writers out.
    pub fencing: u64,
    /// Last position durably in the lake.
    pub committed: Option<Position>,
    /// Source log coordinate that may be acknowledged upstream (PostgreSQL: an LSN).
    pub source_ack: Option<u64>,
    /// A flush that was started and not committed.
    pub pending: Option<Intent>,
    /// The highest backfill generation completed.
    pub backfill_done: u64,
    /// A backfill that was started and not completed: its generation.
    pub backfill_running: Option<u64>,
    /// Whether the runner created the publication (and so may drop it).
    pub publication_created: bool,
    /// Rows written so far.
    pub rows_delivered: u64,
    /// Bytes written so far.
    pub bytes_delivered: u64,
    /// Files written so far.
    pub files_written: u64,
}

/// A flush in progress: the range it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// Last position the flush covers.
    pub to: Position,
    /// Source coordinate to acknowledge once it is committed.
    pub source_ack: Option<u64>,
}

/// What the provider reports as a runner's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerHealth {
    /// Deployed, no heartbeat yet.
    Pending,
    /// Fresh heartbeat.
    Running,
    /// Stopped on request.
    Stopped,
    /// Heartbeat older than three intervals.
    Unknown,
}

impl RunnerHealth {
    /// As written in the Terraform attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Unknown => "unknown",
        }
    }
}

/// Heartbeats a runner may miss before it counts as `unknown`.
pub const MISSED_HEARTBEATS: u32 = 3;

/// Derives a runner's health from what it wants and its last heartbeat, with a reason for
/// `status_reason`. `started_at` is when the current deployment started (a heartbeat from an
/// earlier process does not make a new one running).
pub fn runner_health(
    state: RunnerState,
    status: Option<&RunnerStatus>,
    now: OffsetDateTime,
) -> (RunnerHealth, String) {
    if state == RunnerState::Stopped {
        return (
            RunnerHealth::Stopped,
            "stopped on request (desired_state = \"stopped\")".into(),
        );
    }
    let Some(status) = status else {
        return (
            RunnerHealth::Pending,
            "deployed; waiting for the first heartbeat".into(),
        );
    };
    let interval = Duration::from_millis(status.heartbeat_interval_ms.max(1));
    let age = now - status.heartbeat_at;
    let limit = interval * MISSED_HEARTBEATS;
    if age > limit {
        let age = Duration::try_from(age).unwrap_or_default();
        return (
            RunnerHealth::Unknown,
            format!(
                "last heartbeat {} ago, more than {MISSED_HEARTBEATS} intervals of {}",
                crate::duration::format(Duration::from_secs(age.as_secs())),
                crate::duration::format(interval)
            ),
        );
    }
    (RunnerHealth::Running, "heartbeat is fresh".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(heartbeat_at: OffsetDateTime) -> RunnerStatus {
        RunnerStatus {
            runner_id: "r".into(),
            instance_id: "i".into(),
            runner_version: "0.1.0".into(),
            started_at: heartbeat_at,
            heartbeat_at,
            heartbeat_interval_ms: 5000,
            observed_generation: 1,
            pipeline: None,
            retired: vec![],
        }
    }

    #[test]
    fn health_follows_heartbeat_age() {
        let now = OffsetDateTime::now_utc();
        assert_eq!(
            runner_health(RunnerState::Running, None, now).0,
            RunnerHealth::Pending
        );
        let fresh = status(now - Duration::from_secs(4));
        assert_eq!(
            runner_health(RunnerState::Running, Some(&fresh), now).0,
            RunnerHealth::Running
        );
        let stale = status(now - Duration::from_secs(16));
        let (health, reason) = runner_health(RunnerState::Running, Some(&stale), now);
        assert_eq!(health, RunnerHealth::Unknown);
        assert_eq!(
            reason,
            "last heartbeat 16s ago, more than 3 intervals of 5s"
        );
        assert_eq!(
            runner_health(RunnerState::Stopped, Some(&fresh), now).0,
            RunnerHealth::Stopped
        );
    }

    #[test]
    fn paths_follow_the_layout() {
        let paths = RunnerPaths::new("r1");
        assert_eq!(
            paths.version("p1", 3),
            "runners/r1/pipelines/p1/versions/3.json"
        );
        assert_eq!(paths.checkpoint("p1"), "runners/r1/checkpoints/p1.json");
    }
}
