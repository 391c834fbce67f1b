//! `data "streaming_pipeline_status"`: a pipeline's live status, for checks (`postcondition`,
//! `check` blocks) and outputs.

use serde::Serialize;
use tfplugin::{
    Attribute, Block, Context, DataSource, Diagnostic, ObjectNesting, ReadDataRequest,
    ReadDataResponse, Schema,
};

use crate::address::PipelineAddress;
use crate::observe::{self, rfc3339};
use crate::rules::string_rule;

/// The data source.
pub struct PipelineStatusDataSource;

#[derive(Serialize)]
struct StatusData {
    id: String,
    pipeline_id: String,
    name: String,
    state: String,
    phase: String,
    version: u64,
    deployed_version: Option<u64>,
    source_position: Option<String>,
    lag_seconds: Option<f64>,
    lag_bytes: Option<u64>,
    rows_delivered: Option<u64>,
    bytes_delivered: Option<u64>,
    files_written: Option<u64>,
    last_error: Option<String>,
    consecutive_failures: Option<u64>,
    reported_at: Option<String>,
    tables: Vec<TableData>,
}

#[derive(Serialize)]
struct TableData {
    table: String,
    phase: String,
    rows_delivered: u64,
    schema_changes: u64,
}

#[tfplugin::async_trait]
impl DataSource for PipelineStatusDataSource {
    fn type_name(&self) -> &str {
        "streaming_pipeline_status"
    }

    fn schema(&self) -> Schema {
        let string = |name: &str, description: &str| {
            Attribute::string(name).computed().description(description)
        };
        let number = |name: &str, description: &str| {
            Attribute::number(name).computed().description(description)
        };
        Schema::new(
            Block::new()
                .description("A pipeline's live status as its runner last reported it.")
                .attribute(
                    Attribute::string("id")
                        .required()
                        .description("The pipeline's id, `<runner id>/pipelines/<pipeline_id>`.")
                        .validator(string_rule(
                            "the id of a streaming_pipeline",
                            PipelineAddress::parse,
                        )),
                )
                .attribute(string(
                    "pipeline_id",
                    "The pipeline's id inside the control store.",
                ))
                .attribute(string("name", "Display name (of the latest version)."))
                .attribute(string("state", "`running` or `paused`, as assigned."))
                .attribute(string(
                    "phase",
                    "`starting`, `backfilling`, `streaming`, `paused`, `failed` or `crash_loop`.",
                ))
                .attribute(number("version", "The latest version."))
                .attribute(number("deployed_version", "The version the runner runs."))
                .attribute(string(
                    "source_position",
                    "The last source position durably in the lake.",
                ))
                .attribute(number(
                    "lag_seconds",
                    "Age of the oldest change not yet in the lake, in seconds.",
                ))
                .attribute(number(
                    "lag_bytes",
                    "Source log not yet acknowledged, in bytes.",
                ))
                .attribute(number("rows_delivered", "Rows written to the lake."))
                .attribute(number(
                    "bytes_delivered",
                    "Bytes of files written to the lake.",
                ))
                .attribute(number("files_written", "Files written to the lake."))
                .attribute(string(
                    "last_error",
                    "The last error, until the pipeline runs cleanly again.",
                ))
                .attribute(number(
                    "consecutive_failures",
                    "Failures since the last success.",
                ))
                .attribute(string(
                    "reported_at",
                    "When the runner wrote this status (RFC 3339).",
                ))
                .attribute(
                    Attribute::nested(
                        "tables",
                        ObjectNesting::List,
                        vec![
                            string("table", "`schema.table`."),
                            string("phase", "`backfilling` or `streaming`."),
                            number(
                                "rows_delivered",
                                "Rows written for this table by the current runner process.",
                            ),
                            number(
                                "schema_changes",
                                "Schema changes the current runner process has seen.",
                            ),
                        ],
                    )
                    .computed()
                    .description("Per source table."),
                ),
        )
    }

    async fn read(&self, context: &Context, request: ReadDataRequest) -> ReadDataResponse {
        let id = request.config.attribute("id").as_str().unwrap_or_default();
        let address = match PipelineAddress::parse(id) {
            Ok(address) => address,
            Err(message) => return failed(Diagnostic::error("Invalid Pipeline Id", message)),
        };
        let view = match observe::pipeline(&address, context).await {
            Ok(Some(view)) => view,
            Ok(None) => {
                return failed(Diagnostic::error(
                    "Pipeline Not Found",
                    format!("There is no pipeline {}.", address.id()),
                ));
            }
            Err(diagnostic) => return failed(diagnostic),
        };
        let status = view.status.as_ref();
        let data = StatusData {
            id: address.id(),
            pipeline_id: address.pipeline_id.clone(),
            name: view.latest.spec.name.clone(),
            state: match &view.assignment {
                Some(a) if a.state == lakestream_spec::control::PipelineState::Running => {
                    "running".into()
                }
                _ => "paused".into(),
            },
            phase: status.map_or_else(|| "starting".into(), |s| s.phase.as_str().into()),
            version: view.latest.version,
            deployed_version: status
                .map(|s| s.deployed_version)
                .or(view.assignment.as_ref().map(|a| a.version)),
            source_position: status.and_then(|s| s.source_position.clone()),
            lag_seconds: status.and_then(|s| s.lag_seconds),
            lag_bytes: status.and_then(|s| s.lag_bytes),
            rows_delivered: status.map(|s| s.rows_delivered),
            bytes_delivered: status.map(|s| s.bytes_delivered),
            files_written: status.map(|s| s.files_written),
            last_error: status.and_then(|s| s.last_error.clone()),
            consecutive_failures: status.map(|s| u64::from(s.consecutive_failures)),
            reported_at: view.runner.status.as_ref().map(|s| rfc3339(s.heartbeat_at)),
            tables: status
                .map(|s| {
                    s.tables
                        .iter()
                        .map(|t| TableData {
                            table: t.table.clone(),
                            phase: t.phase.as_str().into(),
                            rows_delivered: t.rows_delivered,
                            schema_changes: u64::from(t.schema_changes),
                        })
                        .collect()
                })
                .unwrap_or_default(),
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
