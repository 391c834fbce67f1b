//! `streaming_runner`: one deployment of the runner binary, with its folder in the control
//! store. Create writes `runner.json` and `desired.json`, deploys, and waits for the first
//! heartbeat; refresh combines the heartbeat with what the platform sees, so a runner that
//! died outside Terraform shows up in the plan (as `desired_state` "stopped" → "running") and
//! the next apply brings it back.
//!
//! The deployment target is whichever block is written (`local`, `fargate`, `eks`); each target's
//! module owns its block and its record (`crate::deploy`).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::LazyLock;
use std::time::Duration;

use lakestream_spec::control::{DeploymentRecord, RunnerRecord, RunnerState};
use lakestream_spec::{RunnerSpec, StoreUrl, rules, runner};
use serde::{Deserialize, Serialize};
use tfplugin::plan_modifier::{requires_replace, use_state_for_unknown};
use tfplugin::validator::{custom, exactly_one_of, one_of};
use tfplugin::{
    ApplyResponse, Attribute, AttributePath, Block, Context, CreateRequest, DeleteRequest,
    Diagnostic, Diagnostics, ImportRequest, ImportResponse, ModifyPlan, ReadRequest, ReadResponse,
    Resource, Schema, Timeouts, UpdateRequest, Value,
};
use time::OffsetDateTime;

use crate::address::{RunnerAddress, new_id};
use crate::context::ProviderContext;
use crate::deploy::eks::{self, Eks, EksBlock};
use crate::deploy::fargate::{self, Fargate, FargateBlock, FargateRecord};
use crate::deploy::local::{self, Local, LocalBlock};
use crate::deploy::{self, Deployment, RunnerTarget};
use crate::observe::{self, RunnerView, rfc3339, store_error};
use crate::rules::string_rule;
use crate::wait::{self, Check, WaitError};

/// Default time to wait for a runner's first heartbeat.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// The deployment blocks; exactly one is written.
const TARGETS: [&str; 3] = ["local", "fargate", "eks"];

/// The `streaming_runner` resource.
pub struct RunnerResource;

/// The resource's Terraform shape.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct RunnerModel {
    id: Option<String>,
    runner_id: Option<String>,
    name: String,
    description: Option<String>,
    control_store: String,
    desired_state: Option<String>,
    heartbeat_interval: Option<String>,
    wait_for_heartbeat: Option<bool>,
    local: Option<LocalBlock>,
    fargate: Option<FargateBlock>,
    eks: Option<EksBlock>,
    status: Option<String>,
    status_reason: Option<String>,
    last_heartbeat: Option<String>,
    runner_version: Option<String>,
    pipeline_id: Option<String>,
    timeouts: Option<BTreeMap<String, Option<String>>>,
}

impl RunnerModel {
    fn running(&self) -> bool {
        self.desired_state.as_deref() != Some("stopped")
    }

    fn spec(&self) -> RunnerSpec {
        RunnerSpec {
            name: self.name.clone(),
            description: self.description.clone().unwrap_or_default(),
            heartbeat_interval: self
                .heartbeat_interval
                .clone()
                .unwrap_or_else(|| runner::DEFAULT_HEARTBEAT_INTERVAL.into()),
        }
    }

    /// The deployment target this configuration names, with its settings.
    async fn deployment(
        &self,
        target: &RunnerTarget,
        previous: Option<&RunnerRecord>,
        context: &Context,
    ) -> Result<Box<dyn Deployment>, Diagnostic> {
        let at = |block: &str| AttributePath::root(block);
        match (&self.local, &self.fargate, &self.eks) {
            (Some(block), None, None) => {
                let settings = block.settings(target).map_err(|err| {
                    Diagnostic::attribute_error(
                        at("local"),
                        "Invalid Local Deployment",
                        err.message,
                    )
                })?;
                Ok(Box::new(Local { settings }))
            }
            (None, Some(block), None) => {
                let provider = context.provider_data::<ProviderContext>().ok();
                let clients = deploy::aws(provider.as_deref()).await.map_err(|err| {
                    Diagnostic::attribute_error(at("fargate"), "AWS Unavailable", err.message)
                })?;
                let previous = previous
                    .filter(|r| r.deployment.kind == "fargate")
                    .and_then(|r| {
                        serde_json::from_value::<FargateRecord>(r.deployment.settings.clone()).ok()
                    });
                Ok(Box::new(Fargate::new(
                    block.settings(previous.as_ref()),
                    clients,
                )))
            }
            (None, None, Some(block)) => {
                let provider = context.provider_data::<ProviderContext>().ok();
                let clients = deploy::aws(provider.as_deref()).await.map_err(|err| {
                    Diagnostic::attribute_error(at("eks"), "AWS Unavailable", err.message)
                })?;
                Ok(Box::new(Eks::new(block.settings(), clients)))
            }
            _ => Err(Diagnostic::error(
                "Invalid Deployment",
                format!("Exactly one of {} must be written.", TARGETS.join(", ")),
            )),
        }
    }
}

/// The schema, built once: plans of large fleets read and upgrade every resource, and building
/// it (validators included) costs more than the rest of a read.
fn schema() -> &'static Schema {
    static SCHEMA: LazyLock<Schema> = LazyLock::new(build_schema);
    &SCHEMA
}

fn build_schema() -> Schema {
    let computed =
        |name: &str, description: &str| Attribute::string(name).computed().description(description);
    Schema::new(
        Block::new()
            .description(
                "A Lakestream CDC runner: one deployment of the `streaming-runner` binary, plus its folder in the \
                 control store. The runner and the provider never talk directly; they share the control store.",
            )
            .attribute(
                Attribute::string("id")
                    .computed()
                    .description("The runner's address: `<control_store>/runners/<runner_id>`. Pipelines reference it; `terraform import` takes it.")
                    .plan_modifier(use_state_for_unknown()),
            )
            .attribute(
                Attribute::string("runner_id")
                    .computed()
                    .description("The runner's id inside the control store: its name's slug and a random suffix.")
                    .plan_modifier(use_state_for_unknown()),
            )
            .attribute(
                Attribute::string("name")
                    .required()
                    .description("Display name.")
                    .validator(string_rule("1 to 30 characters of `A-Z`, `a-z`, `0-9`, space (not first), `-` and `_`", |name| {
                        rules::display_name(name, rules::RUNNER_NAME_MAX)
                    })),
            )
            .attribute(
                Attribute::string("description")
                    .optional()
                    .computed()
                    .default("")
                    .description("Free text.")
                    .validator(string_rule("at most 256 characters", runner::description)),
            )
            .attribute(
                Attribute::string("control_store")
                    .required()
                    .description("Where provider and runner exchange documents (the runner needs read and write access).")
                    .validator(string_rule(
                        "`file:///<absolute folder>`, `s3://<bucket>/<prefix>`, `az://<container>/<prefix>` or `abfss://<container>@<account>.dfs.core.windows.net/<prefix>`",
                        StoreUrl::parse,
                    ))
                    .validator(custom("A runner deployed in the cloud needs a cloud store, not a local folder", |request| {
                        if !request.value.as_str().is_some_and(|url| url.starts_with("file:")) {
                            return Ok(());
                        }
                        match TARGETS.iter().find(|target| **target != "local" && request.sibling_is_set(target) == Some(true)) {
                            Some(target) => Err(format!(
                                "{}: a {target} runner runs outside this machine and cannot reach a local folder; use an s3://, az:// or abfss:// store",
                                request.path
                            )),
                            None => Ok(()),
                        }
                    }))
                    .plan_modifier(requires_replace()),
            )
            .attribute(
                Attribute::string("desired_state")
                    .optional()
                    .computed()
                    .default("running")
                    .description(
                        "`running` or `stopped` (deployed, scaled to zero). Refresh reports what the platform runs, so a \
                         runner that died outside Terraform plans as a change back to `running`.",
                    )
                    .validator(one_of(&["running", "stopped"])),
            )
            .attribute(
                Attribute::string("heartbeat_interval")
                    .optional()
                    .computed()
                    .default(runner::DEFAULT_HEARTBEAT_INTERVAL)
                    .description(
                        "How often the runner writes its status (Go duration syntax). After three missed heartbeats the \
                         runner's status is `unknown`. Changing it restarts the runner.",
                    )
                    .validator(string_rule("a duration from `1s` to `5m`", runner::heartbeat_interval)),
            )
            .attribute(
                Attribute::bool("wait_for_heartbeat")
                    .optional()
                    .computed()
                    .default(true)
                    .description("Whether create and update wait (within `timeouts`) until the runner reports a heartbeat."),
            )
            .block(local::block())
            .block(fargate::block())
            .block(eks::block())
            .validator(exactly_one_of(&TARGETS))
            .attribute(computed("status", "`pending` (deployed, no heartbeat yet), `running` (fresh heartbeat), `stopped` (not running) or `unknown` (heartbeat older than three intervals)."))
            .attribute(computed("status_reason", "Why the runner has its status, in the platform's words where it has any."))
            .attribute(computed("last_heartbeat", "Time of the last heartbeat (RFC 3339), if any."))
            .attribute(computed("runner_version", "Version of the runner binary, from its heartbeat."))
            .attribute(computed("pipeline_id", "The id of the pipeline assigned to this runner, if any."))
            .timeouts(&["create", "update", "delete"]),
    )
}

/// Whether going from `prior` to `planned` restarts a running runner for settings the runner
/// process reads at start (a new task definition restarts a Fargate task by itself).
fn restarts(prior: &RunnerModel, planned: &RunnerModel) -> bool {
    let process = |model: &RunnerModel| {
        model
            .local
            .as_ref()
            .map(LocalBlock::process_settings)
            .map(|(a, b, c)| (a.cloned(), b.cloned(), c.cloned()))
    };
    planned.running()
        && (!prior.running()
            || prior.heartbeat_interval != planned.heartbeat_interval
            || process(prior) != process(planned))
}

impl RunnerResource {
    /// Applies `model` to the runner at `address`: `runner.json`, `desired.json`, the
    /// deployment; then waits for a heartbeat from a new instance when one was started.
    async fn converge(
        &self,
        context: &Context,
        address: &RunnerAddress,
        model: &RunnerModel,
        previous: Option<&RunnerRecord>,
        restart: bool,
        timeout: Duration,
    ) -> Result<(), Diagnostics> {
        let control = ProviderContext::of(context).runner_control(address).await?;
        let target = RunnerTarget {
            runner_id: address.runner_id.clone(),
            control_store: address.control_store.clone(),
            running: model.running(),
            restart,
            timeout,
        };
        let deployment = model
            .deployment(&target, previous, context)
            .await
            .map_err(Diagnostics::from)?;
        let state = if model.running() {
            RunnerState::Running
        } else {
            RunnerState::Stopped
        };
        control
            .update_desired(|desired| {
                desired.runner_state = state;
                Ok::<_, Infallible>(())
            })
            .await
            .map_err(|err| Diagnostics::from(store_error(err)))?;
        let same_target = previous.filter(|r| r.deployment.kind == deployment.kind());
        let mut record = RunnerRecord {
            runner_id: address.runner_id.clone(),
            spec: model.spec(),
            deployment: DeploymentRecord {
                kind: deployment.kind().into(),
                settings: same_target
                    .map(|r| r.deployment.settings.clone())
                    .unwrap_or(serde_json::Value::Null),
            },
            provider_version: crate::VERSION.into(),
            created_at: previous
                .map(|r| r.created_at)
                .unwrap_or_else(OffsetDateTime::now_utc),
        };
        // The runner reads runner.json when it starts, so it is written before deploying.
        control
            .put_record(&record)
            .await
            .map_err(|err| Diagnostics::from(store_error(err)))?;
        let instance_before = control.status().await.ok().flatten().map(|s| s.instance_id);
        let previous_settings = same_target
            .map(|r| &r.deployment.settings)
            .filter(|s| !s.is_null());
        let applied = match deployment.apply(&target, previous_settings).await {
            Ok(applied) => applied,
            Err(err) => {
                let mut diagnostic = Diagnostic::error(
                    "Runner Not Deployed",
                    format!("Deploying runner {}: {err}", address.runner_id),
                );
                // A target rolls back a create that failed, so the runner's documents go too:
                // nothing is left behind and nothing enters state.
                if previous.is_none()
                    && let Err(cleanup) = control.delete_all().await
                {
                    diagnostic.detail.push_str(&format!(
                        "\n\nRemoving the runner's control-store folder failed too: {cleanup}"
                    ));
                }
                return Err(diagnostic.into());
            }
        };
        record.deployment.settings = applied.record;
        control
            .put_record(&record)
            .await
            .map_err(|err| Diagnostics::from(store_error(err)))?;
        if applied.started && model.wait_for_heartbeat != Some(false) {
            self.wait_for_heartbeat(
                context,
                address,
                deployment.as_ref(),
                &record,
                instance_before,
                timeout,
            )
            .await?;
        }
        Ok(())
    }

    async fn wait_for_heartbeat(
        &self,
        context: &Context,
        address: &RunnerAddress,
        deployment: &dyn Deployment,
        record: &RunnerRecord,
        instance_before: Option<String>,
        timeout: Duration,
    ) -> Result<(), Diagnostics> {
        let control = ProviderContext::of(context).runner_control(address).await?;
        let outcome = wait::until(context, timeout, || async {
            let observation = deployment.observe(&record.deployment.settings).await;
            if !observation.running {
                return Check::Failed(observation.reason);
            }
            match control.status().await {
                Ok(Some(status)) if Some(&status.instance_id) != instance_before.as_ref() => {
                    Check::Done(())
                }
                Ok(_) => Check::Pending(format!(
                    "no heartbeat from the new runner yet ({})",
                    observation.reason
                )),
                Err(err) => Check::Pending(err.to_string()),
            }
        })
        .await;
        let detail = |why: String| async move {
            match deployment.failure_detail(&record.deployment.settings).await {
                Some(extra) => format!("{why}\n\n{extra}"),
                None => why,
            }
        };
        match outcome {
            Ok(()) => Ok(()),
            Err(WaitError::Failed(reason)) => Err(Diagnostic::error("Runner Exited", detail(format!("Runner {}: {reason}.", address.runner_id)).await).into()),
            Err(WaitError::TimedOut(last)) => Err(Diagnostic::error(
                "Runner Did Not Report",
                detail(format!(
                    "Runner {} wrote no heartbeat within {timeout:?} ({last}). Raise timeouts.create, set wait_for_heartbeat = false, or check the runner's log.",
                    address.runner_id
                ))
                .await,
            )
            .into()),
            Err(WaitError::Cancelled) => Err(Diagnostic::error("Interrupted", "Terraform asked the provider to stop while waiting for the runner.").into()),
        }
    }

    /// The state for a runner as seen now; configuration-only attributes come from `known`.
    fn state(
        &self,
        view: &RunnerView,
        address: &RunnerAddress,
        known: &RunnerModel,
    ) -> Result<Value, Diagnostic> {
        let settings = &view.record.deployment.settings;
        let (local, fargate, eks) = match view.record.deployment.kind.as_str() {
            "local" => (
                Some(LocalBlock::from_record(settings, view.observation.running)),
                None,
                None,
            ),
            "fargate" => (None, Some(FargateBlock::from_record(settings)), None),
            "eks" => (None, None, Some(EksBlock::from_record(settings))),
            _ => (None, None, None),
        };
        let model = RunnerModel {
            id: Some(address.id()),
            runner_id: Some(address.runner_id.clone()),
            name: view.record.spec.name.clone(),
            description: Some(view.record.spec.description.clone()),
            control_store: address.control_store.to_string(),
            desired_state: Some(
                if view.observation.running {
                    "running"
                } else {
                    "stopped"
                }
                .into(),
            ),
            heartbeat_interval: Some(view.record.spec.heartbeat_interval.clone()),
            wait_for_heartbeat: Some(known.wait_for_heartbeat.unwrap_or(true)),
            local,
            fargate,
            eks,
            status: Some(view.health.as_str().into()),
            status_reason: Some(view.reason.clone()),
            last_heartbeat: view.status.as_ref().map(|s| rfc3339(s.heartbeat_at)),
            runner_version: view.status.as_ref().map(|s| s.runner_version.clone()),
            pipeline_id: view
                .desired
                .pipeline
                .as_ref()
                .map(|p| p.pipeline_id.clone()),
            timeouts: known.timeouts.clone(),
        };
        schema().to_value(&model)
    }

    async fn read_state(
        &self,
        context: &Context,
        address: &RunnerAddress,
        known: &RunnerModel,
    ) -> Result<Option<Value>, Diagnostic> {
        match observe::runner(address, context).await? {
            Some(view) => self.state(&view, address, known).map(Some),
            None => Ok(None),
        }
    }

    /// Applies and then reads back, for create and update.
    async fn apply_and_read(
        &self,
        context: &Context,
        address: &RunnerAddress,
        model: &RunnerModel,
        previous: Option<&RunnerRecord>,
        restart: bool,
        timeout: Duration,
    ) -> ApplyResponse {
        let mut response = ApplyResponse::default();
        if let Err(diagnostics) = self
            .converge(context, address, model, previous, restart, timeout)
            .await
        {
            response.diagnostics.extend(diagnostics);
        }
        match self.read_state(context, address, model).await {
            Ok(Some(state)) => response.state = state,
            Ok(None) if previous.is_some() => response.diagnostics.push(Diagnostic::error(
                "Runner Vanished",
                format!(
                    "Runner {} disappeared from the control store during the update.",
                    address.id()
                ),
            )),
            Ok(None) => {}
            Err(diagnostic) => response.diagnostics.push(diagnostic),
        }
        response
    }
}

#[tfplugin::async_trait]
impl Resource for RunnerResource {
    fn type_name(&self) -> &str {
        "streaming_runner"
    }

    fn schema(&self) -> Schema {
        schema().clone()
    }

    async fn modify_plan(&self, _context: &Context, plan: &mut ModifyPlan) {
        if plan.prior.is_null() || plan.planned.is_null() {
            return;
        }
        // Every update plans the computed attributes unknown; only the settings that decide a
        // restart must be known to predict the process id. When they are not, it may change.
        let decided = ["desired_state", "heartbeat_interval", "local"]
            .iter()
            .all(|name| plan.planned.attribute(name).is_wholly_known());
        let (Ok(prior), Ok(planned)) = (
            plan.prior.to_typed::<RunnerModel>(),
            plan.planned.unknowns_as_null().to_typed::<RunnerModel>(),
        ) else {
            return;
        };
        if planned.local.is_none() {
            return;
        }
        let pid = AttributePath::root("local").attribute("pid");
        if !decided || restarts(&prior, &planned) {
            plan.planned.set_at(&pid, Value::Unknown);
        } else if !planned.running() {
            plan.planned.set_at(&pid, Value::Null);
        }
    }

    async fn create(&self, context: &Context, request: CreateRequest) -> ApplyResponse {
        let timeouts = Timeouts::from_resource(&request.planned).unwrap_or_default();
        let model: RunnerModel = match request.planned.unknowns_as_null().to_typed() {
            Ok(model) => model,
            Err(err) => return ApplyResponse::failed(Diagnostic::from(err)),
        };
        let address = match StoreUrl::parse(&model.control_store) {
            Ok(control_store) => RunnerAddress {
                control_store,
                runner_id: new_id(&model.name),
            },
            Err(message) => {
                return ApplyResponse::failed(Diagnostic::attribute_error(
                    AttributePath::root("control_store"),
                    "Invalid Attribute Value",
                    message,
                ));
            }
        };
        self.apply_and_read(
            context,
            &address,
            &model,
            None,
            false,
            timeouts.create(DEFAULT_TIMEOUT),
        )
        .await
    }

    async fn read(&self, context: &Context, request: ReadRequest) -> ReadResponse {
        let known: RunnerModel = request
            .state
            .unknowns_as_null()
            .to_typed()
            .unwrap_or_default();
        // After an import the state holds nothing but the id, so it is read from the value.
        let address = match request
            .state
            .attribute("id")
            .as_str()
            .map(RunnerAddress::parse)
        {
            Some(Ok(address)) => address,
            Some(Err(message)) => {
                return ReadResponse::failed(Diagnostic::error("Invalid Runner Id", message));
            }
            None => return ReadResponse::gone(),
        };
        match self.read_state(context, &address, &known).await {
            Ok(Some(state)) => ReadResponse::found(state),
            Ok(None) => ReadResponse::gone(),
            Err(diagnostic) => ReadResponse::failed(diagnostic),
        }
    }

    async fn update(&self, context: &Context, request: UpdateRequest) -> ApplyResponse {
        let timeouts = Timeouts::from_resource(&request.planned).unwrap_or_default();
        let (prior, model): (RunnerModel, RunnerModel) = match (
            request.prior.to_typed(),
            request.planned.unknowns_as_null().to_typed(),
        ) {
            (Ok(prior), Ok(model)) => (prior, model),
            (Err(err), _) | (_, Err(err)) => return ApplyResponse::failed(Diagnostic::from(err)),
        };
        let address = match RunnerAddress::parse(prior.id.as_deref().unwrap_or_default()) {
            Ok(address) => address,
            Err(message) => {
                return ApplyResponse::failed(Diagnostic::error("Invalid Runner Id", message));
            }
        };
        let previous = match ProviderContext::of(context).runner_control(&address).await {
            Ok(control) => control.record().await.map_err(store_error),
            Err(diagnostic) => Err(diagnostic),
        };
        let previous = match previous {
            Ok(previous) => previous,
            Err(diagnostic) => return ApplyResponse::failed(diagnostic),
        };
        let restart = restarts(&prior, &model);
        self.apply_and_read(
            context,
            &address,
            &model,
            previous.as_ref(),
            restart,
            timeouts.update(DEFAULT_TIMEOUT),
        )
        .await
    }

    async fn delete(&self, context: &Context, request: DeleteRequest) -> Diagnostics {
        let Some(Ok(address)) = request
            .prior
            .attribute("id")
            .as_str()
            .map(RunnerAddress::parse)
        else {
            return Diagnostics::new();
        };
        let view = match observe::runner(&address, context).await {
            Ok(Some(view)) => view,
            Ok(None) => return Diagnostics::new(),
            Err(diagnostic) => return diagnostic.into(),
        };
        if let Some(assignment) = &view.desired.pipeline {
            tracing::warn!(runner = %address.runner_id, pipeline = %assignment.pipeline_id, "deleting a runner that still has a pipeline assigned");
        }
        let provider = context.provider_data::<ProviderContext>().ok();
        let destroyed = match deploy::for_record(&view.record.deployment, provider.as_deref()).await
        {
            Ok(deployment) => deployment.destroy(&view.record.deployment.settings).await,
            Err(err) => Err(err),
        };
        if let Err(err) = destroyed {
            return Diagnostic::error(
                "Runner Not Removed",
                format!(
                    "Removing the deployment of runner {}: {err}",
                    address.runner_id
                ),
            )
            .into();
        }
        match view.control.delete_all().await {
            Ok(_) => Diagnostics::new(),
            Err(err) => store_error(err).into(),
        }
    }

    async fn import(&self, _context: &Context, request: ImportRequest) -> ImportResponse {
        match RunnerAddress::parse(&request.id) {
            Ok(address) => ImportResponse::passthrough_id(schema(), "id", &address.id()),
            Err(message) => ImportResponse {
                resources: Vec::new(),
                diagnostics: Diagnostic::error("Invalid Import Id", message).into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_only_for_settings_the_process_reads() {
        let base = RunnerModel {
            name: "a".into(),
            desired_state: Some("running".into()),
            heartbeat_interval: Some("5s".into()),
            local: Some(LocalBlock::default()),
            ..RunnerModel::default()
        };
        let renamed = RunnerModel {
            name: "b".into(),
            description: Some("d".into()),
            ..base.clone()
        };
        assert!(!restarts(&base, &renamed));
        let faster = RunnerModel {
            heartbeat_interval: Some("1s".into()),
            ..base.clone()
        };
        assert!(restarts(&base, &faster));
        let stopped = RunnerModel {
            desired_state: Some("stopped".into()),
            ..base.clone()
        };
        assert!(restarts(&stopped, &base));
        assert!(!restarts(&base, &stopped));
        let env = RunnerModel {
            local: Some(LocalBlock {
                environment: Some([("A".into(), "1".into())].into()),
                ..LocalBlock::default()
            }),
            ..base.clone()
        };
        assert!(restarts(&base, &env));
    }

    #[test]
    fn the_schema_passes_terraforms_rules() {
        tfplugin::testing::TestDriver::new(crate::StreamingProvider)
            .expect("the provider's schemas are valid");
    }
}
