//! What a runner and its pipeline look like right now, from the control store and the
//! platform. Resources (on refresh) and data sources read through here, so `status` means the
//! same everywhere.

use lakestream_control::RunnerControl;
use lakestream_spec::control::{
    Assignment, Desired, PipelineStatus, PipelineVersion, RunnerHealth, RunnerRecord, RunnerState,
    RunnerStatus, runner_health,
};
use tfplugin::{Context, Diagnostic};
use time::OffsetDateTime;

use crate::address::{PipelineAddress, RunnerAddress};
use crate::context::ProviderContext;
use crate::deploy::{self, Observation};

/// A runner as seen now.
pub struct RunnerView {
    /// Its documents.
    pub control: RunnerControl,
    /// `runner.json`.
    pub record: RunnerRecord,
    /// `desired.json` (default when absent).
    pub desired: Desired,
    /// `status.json`, the last heartbeat.
    pub status: Option<RunnerStatus>,
    /// What the platform sees.
    pub observation: Observation,
    /// The derived `status`.
    pub health: RunnerHealth,
    /// Why, for `status_reason`.
    pub reason: String,
}

/// A diagnostic for a control store that cannot be read.
pub fn store_error(error: impl std::fmt::Display) -> Diagnostic {
    Diagnostic::error("Control Store Unavailable", error.to_string())
}

/// Reads a runner; `None` when it does not exist (no `runner.json`).
pub async fn runner(
    address: &RunnerAddress,
    context: &Context,
) -> Result<Option<RunnerView>, Diagnostic> {
    let control = ProviderContext::of(context).runner_control(address).await?;
    let Some(record) = control.record().await.map_err(store_error)? else {
        return Ok(None);
    };
    let desired = control
        .desired()
        .await
        .map_err(store_error)?
        .map(|doc| doc.value)
        .unwrap_or_default();
    let status = control.status().await.map_err(store_error)?;
    let provider = context.provider_data::<ProviderContext>().ok();
    let observation = deploy::for_record(&record.deployment, provider.as_deref())
        .await
        .map_err(|err| Diagnostic::error("Deployment Unavailable", err.message))?
        .observe(&record.deployment.settings)
        .await;
    let (health, reason) = if desired.runner_state == RunnerState::Running && !observation.running {
        (RunnerHealth::Stopped, observation.reason.clone())
    } else {
        runner_health(
            desired.runner_state,
            status.as_ref(),
            OffsetDateTime::now_utc(),
        )
    };
    Ok(Some(RunnerView {
        control,
        record,
        desired,
        status,
        observation,
        health,
        reason,
    }))
}

/// A pipeline as seen now.
pub struct PipelineView {
    /// Its runner.
    pub runner: RunnerView,
    /// The runner's assignment, when it is this pipeline's.
    pub assignment: Option<Assignment>,
    /// The latest version.
    pub latest: PipelineVersion,
    /// The runner's report about this pipeline, when it reports on it.
    pub status: Option<PipelineStatus>,
}

/// Reads a pipeline; `None` when its runner or its versions are gone.
pub async fn pipeline(
    address: &PipelineAddress,
    context: &Context,
) -> Result<Option<PipelineView>, Diagnostic> {
    let Some(runner) = runner(&address.runner, context).await? else {
        return Ok(None);
    };
    let id = &address.pipeline_id;
    let numbers = runner
        .control
        .version_numbers(id)
        .await
        .map_err(store_error)?;
    let Some(&latest_number) = numbers.last() else {
        return Ok(None);
    };
    let Some(latest) = runner
        .control
        .version(id, latest_number)
        .await
        .map_err(store_error)?
    else {
        return Ok(None);
    };
    let assignment = runner
        .desired
        .pipeline
        .clone()
        .filter(|a| a.pipeline_id == *id);
    let status = runner
        .status
        .as_ref()
        .and_then(|s| s.pipeline.clone())
        .filter(|p| p.pipeline_id == *id);
    Ok(Some(PipelineView {
        runner,
        assignment,
        latest,
        status,
    }))
}

/// RFC 3339 text of a timestamp, as stored in Terraform attributes.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
