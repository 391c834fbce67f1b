//! `data "streaming_runner"`: a runner's settings and live status, by id (for runners managed
//! elsewhere, or for checks and outputs).

use serde::Serialize;
use tfplugin::{
    Attribute, Block, Context, DataSource, Diagnostic, ReadDataRequest, ReadDataResponse, Schema,
};

use crate::address::RunnerAddress;
use crate::observe::{self, rfc3339};
use crate::rules::string_rule;

/// The data source.
pub struct RunnerDataSource;

#[derive(Serialize)]
struct RunnerData {
    id: String,
    runner_id: String,
    name: String,
    description: String,
    control_store: String,
    deployment: String,
    desired_state: String,
    heartbeat_interval: String,
    status: String,
    status_reason: String,
    last_heartbeat: Option<String>,
    runner_version: Option<String>,
    pipeline_id: Option<String>,
}

#[tfplugin::async_trait]
impl DataSource for RunnerDataSource {
    fn type_name(&self) -> &str {
        "streaming_runner"
    }

    fn schema(&self) -> Schema {
        let computed = |name: &str, description: &str| {
            Attribute::string(name).computed().description(description)
        };
        Schema::new(
            Block::new()
                .description("A runner's settings and live status, read from its control store.")
                .attribute(
                    Attribute::string("id")
                        .required()
                        .description("The runner's id, `<control_store>/runners/<runner_id>`.")
                        .validator(string_rule(
                            "the id of a streaming_runner",
                            RunnerAddress::parse,
                        )),
                )
                .attribute(computed(
                    "runner_id",
                    "The runner's id inside the control store.",
                ))
                .attribute(computed("name", "Display name."))
                .attribute(computed("description", "Free text."))
                .attribute(computed("control_store", "The control store URL."))
                .attribute(computed(
                    "deployment",
                    "The deployment target, e.g. `local`.",
                ))
                .attribute(computed(
                    "desired_state",
                    "`running` or `stopped`, as the platform runs it.",
                ))
                .attribute(computed(
                    "heartbeat_interval",
                    "Interval between heartbeats.",
                ))
                .attribute(computed(
                    "status",
                    "`pending`, `running`, `stopped` or `unknown` (as on the resource).",
                ))
                .attribute(computed("status_reason", "Why the runner has its status."))
                .attribute(computed(
                    "last_heartbeat",
                    "Time of the last heartbeat (RFC 3339).",
                ))
                .attribute(computed("runner_version", "Version of the runner binary."))
                .attribute(computed(
                    "pipeline_id",
                    "The assigned pipeline's id, if any.",
                )),
        )
    }

    async fn read(&self, context: &Context, request: ReadDataRequest) -> ReadDataResponse {
        let id = request.config.attribute("id").as_str().unwrap_or_default();
        let address = match RunnerAddress::parse(id) {
            Ok(address) => address,
            Err(message) => return failed(Diagnostic::error("Invalid Runner Id", message)),
        };
        let view = match observe::runner(&address, context).await {
            Ok(Some(view)) => view,
            Ok(None) => {
                return failed(Diagnostic::error(
                    "Runner Not Found",
                    format!(
                        "There is no runner {} in {}.",
                        address.runner_id, address.control_store
                    ),
                ));
            }
            Err(diagnostic) => return failed(diagnostic),
        };
        let data = RunnerData {
            id: address.id(),
            runner_id: address.runner_id.clone(),
            name: view.record.spec.name.clone(),
            description: view.record.spec.description.clone(),
            control_store: address.control_store.to_string(),
            deployment: view.record.deployment.kind.clone(),
            desired_state: if view.observation.running {
                "running"
            } else {
                "stopped"
            }
            .into(),
            heartbeat_interval: view.record.spec.heartbeat_interval.clone(),
            status: view.health.as_str().into(),
            status_reason: view.reason.clone(),
            last_heartbeat: view.status.as_ref().map(|s| rfc3339(s.heartbeat_at)),
            runner_version: view.status.as_ref().map(|s| s.runner_version.clone()),
            pipeline_id: view
                .desired
                .pipeline
                .as_ref()
                .map(|p| p.pipeline_id.clone()),
        };
        match self.schema().to_value(&data) {
            Ok(state) => ReadDataResponse {
                state,
                ..ReadDataResponse::default()
            },
            Err(diagnostic) => failed(diagnostic),
        }
    }
}

fn failed(diagnostic: Diagnostic) -> ReadDataResponse {
    ReadDataResponse {
        diagnostics: diagnostic.into(),
        ..ReadDataResponse::default()
    }
}
