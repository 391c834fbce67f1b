//! Deployment targets: one module per target behind the [`Deployment`] trait. A target turns
//! "this runner should (not) be running with these settings" into platform resources, reports
//! what the platform sees, and removes everything it created.

pub mod eks;
pub mod fargate;
pub mod kubernetes;
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
    /// How long the platform may take to reach the state (the resource's timeout).
    pub timeout: std::time::Duration,
}

/// What a pipeline needs its runner's identity to reach: its lake and its secrets.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The pipeline's id.
    pub pipeline_id: String,
    /// The lake folder it writes.
    pub lake: StoreUrl,
    /// The secrets its spec references.
    pub secrets: Vec<lakestream_spec::SecretRef>,
}

/// The outcome of [`Deployment::apply`].
#[derive(Debug, Clone)]
pub struct Applied {
    /// The target's new record.
    pub record: serde_json::Value,
    /// Whether a new runner instance was started (create waits for its first heartbeat).
    pub started: bool,
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

/// An error saying what was being done and why it failed: `<what>: <detail>`.
pub fn error(what: &str, detail: impl std::fmt::Display) -> DeployError {
    DeployError::new(format!("{what}: {detail}"))
}

/// A target's record as `kind` wrote it into `runner.json`.
pub fn read_record<T: serde::de::DeserializeOwned>(
    kind: &str,
    record: &serde_json::Value,
) -> Result<T, DeployError> {
    serde_json::from_value(record.clone())
        .map_err(|err| error(&format!("the {kind} deployment record is unreadable"), err))
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
    ) -> Result<Applied, DeployError>;

    /// What the platform sees now.
    async fn observe(&self, record: &serde_json::Value) -> Observation;

    /// Removes everything the deployment created.
    async fn destroy(&self, record: &serde_json::Value) -> Result<(), DeployError>;

    /// Extra detail for an error message when the runner does not come up (e.g. its last log
    /// lines).
    async fn failure_detail(&self, _record: &serde_json::Value) -> Option<String> {
        None
    }

    /// Lets the runner's identity reach what a newly assigned pipeline needs, where the
    /// deployment manages that identity (a task role it created). Default: nothing to do.
    async fn grant(&self, _record: &serde_json::Value, _grant: &Grant) -> Result<(), DeployError> {
        Ok(())
    }

    /// Takes back what [`Deployment::grant`] gave for a pipeline. Default: nothing to do.
    async fn revoke(
        &self,
        _record: &serde_json::Value,
        _pipeline_id: &str,
    ) -> Result<(), DeployError> {
        Ok(())
    }
}

/// The target that created `record`, to observe, grant or destroy it.
pub async fn for_record(
    record: &lakestream_spec::control::DeploymentRecord,
    context: Option<&crate::context::ProviderContext>,
) -> Result<Box<dyn Deployment>, DeployError> {
    match record.kind.as_str() {
        "local" => {
            let settings: local::LocalDeployment = read_record("local", &record.settings)?;
            Ok(Box::new(local::Local { settings }))
        }
        "fargate" => Ok(Box::new(fargate::Fargate::from_record(
            &record.settings,
            aws(context).await?,
        )?)),
        "eks" => Ok(Box::new(eks::Eks::from_record(
            &record.settings,
            aws(context).await?,
        )?)),
        other => Err(DeployError::new(format!(
            "this provider version cannot manage {other:?} deployments; upgrade the provider"
        ))),
    }
}

/// The AWS clients, or why there are none.
pub async fn aws(
    context: Option<&crate::context::ProviderContext>,
) -> Result<std::sync::Arc<crate::aws::AwsClients>, DeployError> {
    let context = context.ok_or_else(|| DeployError::new("the provider is not configured yet"))?;
    context
        .aws
        .clients()
        .await
        .map_err(|diagnostic| DeployError::new(diagnostic.detail))
}
