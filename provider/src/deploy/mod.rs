//! Deployment targets: one module per target behind the [`Deployment`] trait. A target turns
//! "this runner should (not) be running with these settings" into platform resources, reports
//! what the platform sees, and removes everything it created.

pub mod local;

use lakestream_spec::StoreUrl;
use tfplugin::async_trait;

/// A runner as its deployment sees it.
#[derive(Debug, Clone)]
pub struct RunnerTarget {
    /// The runner's id (passed to the runner).
    pub runner_id: String,
    /// The control store (passed to the runner).
    pub control_store: StoreUrl,
    /// Whether the runner should be running (`false`: deployed but scaled to zero).
    pub running: bool,
    /// Whether a running runner must be restarted to pick up changed settings.
    pub restart: bool,
}

/// What the platform says about a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Whether the runner runs.
    pub running: bool,
    /// The platform's words, for `status_reason` (e.g. why a process or task stopped).
    pub reason: String,
}

/// Why a deployment operation failed.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DeployError {
    /// One line naming what failed and why.
    pub message: String,
}

impl DeployError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// A deployment target. `record` is the target's JSON record, kept in `runner.json` so that a
/// later operation (or an import) finds what was created.
#[async_trait]
pub trait Deployment: Send + Sync {
    /// The target's name (`local`, `fargate`, …), also the configuration block's name.
    fn kind(&self) -> &'static str;

    /// Creates or updates the deployment so it matches `target`, starting, restarting or
    /// stopping the runner as needed; returns the new record.
    async fn apply(
        &self,
        target: &RunnerTarget,
        previous: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, DeployError>;

    /// What the platform sees now.
    async fn observe(&self, record: &serde_json::Value) -> Observation;

    /// Removes everything the deployment created.
    async fn destroy(&self, record: &serde_json::Value) -> Result<(), DeployError>;

    /// Extra detail for an error message when the runner does not come up (e.g. its last log
    /// lines).
    async fn failure_detail(&self, _record: &serde_json::Value) -> Option<String> {
        None
    }
}

/// The target that created `record`, to observe or destroy it.
pub fn for_record(
    record: &lakestream_spec::control::DeploymentRecord,
) -> Result<Box<dyn Deployment>, DeployError> {
    match record.kind.as_str() {
        "local" => {
            let settings: local::LocalDeployment = serde_json::from_value(record.settings.clone())
                .map_err(|err| {
                    DeployError::new(format!("the local deployment record is unreadable: {err}"))
                })?;
            Ok(Box::new(local::Local { settings }))
        }
        other => Err(DeployError::new(format!(
            "this provider version cannot manage {other:?} deployments; upgrade the provider"
        ))),
    }
}
